// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskrepl's NBD protocol layer without sockets: every handshake path
 * (GO, INFO, EXPORT_NAME with and without zeroes, LIST, ABORT, refused
 * and unknown options, unknown exports, malformed option data), every
 * command with its flags, bounds and error mapping, malformed magic and
 * lengths, the output high water mark and hold, and a whole session fed
 * split at every byte boundary giving the same replies and disk.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/wire.h"
#include "diskrepl/nbd_proto.h"
#include "support/nbd_wire.h"

#define DISK_SIZE (1u << 20)
#define SMALL_SIZE (64u << 10)
#define FLAGS_FULL 0x6d /* HAS_FLAGS SEND_FLUSH SEND_FUA SEND_TRIM SEND_WRITE_ZEROES */

struct fx {
	struct remus_nbd_table *t;
	struct ramdisk disk, ro, bare;
	struct remus_nbd_stats st;
	struct remus_nbd_conn *c;
	struct remus_buf in, out;
	uint8_t data[8192]; /* last option reply's data */
	uint32_t data_len;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	ramdisk_init(&f->disk, DISK_SIZE);
	ramdisk_init(&f->ro, SMALL_SIZE);
	ramdisk_init(&f->bare, SMALL_SIZE);
	assert_int_equal(remus_nbd_table_new(&f->t), 0);
	assert_int_equal(remus_nbd_table_add(f->t, &(struct remus_nbd_export){
		.name = "disk", .description = "the test disk", .size = DISK_SIZE,
		.ops = ramdisk_ops(), .opaque = &f->disk }), 0);
	assert_int_equal(remus_nbd_table_add(f->t, &(struct remus_nbd_export){
		.name = "ro", .size = SMALL_SIZE, .read_only = true,
		.ops = ramdisk_ops(), .opaque = &f->ro }), 0);
	assert_int_equal(remus_nbd_table_add(f->t, &(struct remus_nbd_export){
		.name = "bare", .size = SMALL_SIZE, .ops = ramdisk_bare_ops(),
		.opaque = &f->bare }), 0);
	assert_int_equal(remus_nbd_conn_new(f->t, &f->st, "test client", &f->c), 0);
	remus_buf_init(&f->in, REMUS_NBD_IN_LIMIT);
	remus_buf_init(&f->out, REMUS_NBD_OUT_LIMIT);
	assert_int_equal(remus_nbd_conn_start(f->c, &f->out), 0);
	assert_int_equal(remus_buf_len(&f->out), 18);
	remus_buf_reset(&f->out);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	remus_nbd_conn_free(f->c);
	remus_nbd_table_free(f->t);
	remus_buf_release(&f->in);
	remus_buf_release(&f->out);
	ramdisk_release(&f->disk);
	ramdisk_release(&f->ro);
	ramdisk_release(&f->bare);
	free(f);
	return 0;
}

static int feed(struct fx *f)
{
	return remus_nbd_conn_feed(f->c, &f->in, &f->out);
}

/* Takes one option reply off the output; its data lands in f->data. */
static void expect_rep(struct fx *f, uint32_t opt, uint32_t type)
{
	const uint8_t *p = remus_buf_data(&f->out);

	assert_true(remus_buf_len(&f->out) >= 20);
	assert_int_equal(remus_get_be64(p), REMUS_NBD_REP_MAGIC);
	assert_int_equal(remus_get_be32(p + 8), opt);
	assert_int_equal(remus_get_be32(p + 12), type);
	f->data_len = remus_get_be32(p + 16);
	assert_true(f->data_len <= sizeof(f->data));
	assert_true(remus_buf_len(&f->out) >= 20 + f->data_len);
	memcpy(f->data, p + 20, f->data_len);
	remus_buf_consume(&f->out, 20 + f->data_len);
}

/* Takes one simple reply header off the output. */
static void expect_reply(struct fx *f, uint32_t err, uint64_t cookie)
{
	const uint8_t *p = remus_buf_data(&f->out);

	assert_true(remus_buf_len(&f->out) >= 16);
	assert_int_equal(remus_get_be32(p), REMUS_NBD_SIMPLE_REPLY_MAGIC);
	assert_int_equal(remus_get_be32(p + 4), err);
	assert_int_equal(remus_get_be64(p + 8), cookie);
	remus_buf_consume(&f->out, 16);
}

static void expect_info_export(struct fx *f, uint32_t opt, uint64_t size, uint16_t flags)
{
	expect_rep(f, opt, REMUS_NBD_REP_INFO);
	assert_int_equal(f->data_len, 12);
	assert_int_equal(remus_get_be16(f->data), REMUS_NBD_INFO_EXPORT);
	assert_int_equal(remus_get_be64(f->data + 2), size);
	assert_int_equal(remus_get_be16(f->data + 10), flags);
}

/* Client flags and a GO for @name, checked through the final ACK. */
static void go(struct fx *f, const char *name, uint64_t size, uint16_t flags)
{
	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	nbdw_go(&f->in, REMUS_NBD_OPT_GO, name, NULL, 0);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_info_export(f, REMUS_NBD_OPT_GO, size, flags);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ACK);
	assert_int_equal(f->data_len, 0);
	assert_int_equal(remus_buf_len(&f->out), 0);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_TRANSMISSION);
}

static void test_greeting(void **state)
{
	struct fx *f = *state;
	const uint8_t *p;

	assert_int_equal(remus_nbd_conn_start(f->c, &f->out), 0);
	p = remus_buf_data(&f->out);
	assert_memory_equal(p, "NBDMAGIC", 8);
	assert_memory_equal(p + 8, "IHAVEOPT", 8);
	assert_int_equal(remus_get_be16(p + 16),
			 REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_CLIENT_FLAGS);
}

/* What QEMU 10 sends: extended headers, structured replies, then GO with
 * a block size request; the first two must be refused with ERR_UNSUP. */
static void test_go_like_qemu(void **state)
{
	struct fx *f = *state;
	static const uint16_t infos[] = { REMUS_NBD_INFO_BLOCK_SIZE, REMUS_NBD_INFO_NAME,
					  REMUS_NBD_INFO_DESCRIPTION, 77 };

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	nbdw_opt(&f->in, REMUS_NBD_OPT_EXTENDED_HEADERS, NULL, 0);
	nbdw_opt(&f->in, REMUS_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	nbdw_opt(&f->in, REMUS_NBD_OPT_SET_META_CONTEXT, "\0\0\0\0\0\0\0\0", 8);
	nbdw_go(&f->in, REMUS_NBD_OPT_GO, "disk", infos, 4);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	assert_int_equal(remus_buf_len(&f->in), 0);
	expect_rep(f, REMUS_NBD_OPT_EXTENDED_HEADERS, REMUS_NBD_REP_ERR_UNSUP);
	assert_true(f->data_len > 0); /* a message for the user */
	expect_rep(f, REMUS_NBD_OPT_STRUCTURED_REPLY, REMUS_NBD_REP_ERR_UNSUP);
	expect_rep(f, REMUS_NBD_OPT_SET_META_CONTEXT, REMUS_NBD_REP_ERR_UNSUP);
	expect_info_export(f, REMUS_NBD_OPT_GO, DISK_SIZE, FLAGS_FULL);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_INFO);
	assert_int_equal(remus_get_be16(f->data), REMUS_NBD_INFO_NAME);
	assert_int_equal(f->data_len, 2 + 4);
	assert_memory_equal(f->data + 2, "disk", 4);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_INFO);
	assert_int_equal(remus_get_be16(f->data), REMUS_NBD_INFO_DESCRIPTION);
	assert_int_equal(f->data_len, 2 + 13);
	assert_memory_equal(f->data + 2, "the test disk", 13);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_INFO);
	assert_int_equal(f->data_len, 14);
	assert_int_equal(remus_get_be16(f->data), REMUS_NBD_INFO_BLOCK_SIZE);
	assert_int_equal(remus_get_be32(f->data + 2), 1);
	assert_int_equal(remus_get_be32(f->data + 6), 4096);
	assert_int_equal(remus_get_be32(f->data + 10), 32u << 20);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ACK);
	assert_int_equal(remus_buf_len(&f->out), 0);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_TRANSMISSION);
	assert_string_equal(remus_nbd_conn_export(f->c)->name, "disk");
}

static void test_info_then_go(void **state)
{
	struct fx *f = *state;

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_go(&f->in, REMUS_NBD_OPT_INFO, "ro", NULL, 0);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	/* Read-only: READ_ONLY and FLUSH, nothing that writes. */
	expect_info_export(f, REMUS_NBD_OPT_INFO, SMALL_SIZE, 0x1 | 0x2 | 0x4);
	expect_rep(f, REMUS_NBD_OPT_INFO, REMUS_NBD_REP_ACK);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_OPTIONS);
	assert_null(remus_nbd_conn_export(f->c));
	/* Without flush, trim and write_zeroes ops only HAS_FLAGS is left. */
	nbdw_go(&f->in, REMUS_NBD_OPT_GO, "bare", NULL, 0);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_info_export(f, REMUS_NBD_OPT_GO, SMALL_SIZE, 0x1);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ACK);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_TRANSMISSION);
}

static void test_go_unknown_export(void **state)
{
	struct fx *f = *state;

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	nbdw_go(&f->in, REMUS_NBD_OPT_GO, "nope", NULL, 0);
	nbdw_go(&f->in, REMUS_NBD_OPT_GO, "", NULL, 0);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ERR_UNKNOWN);
	assert_non_null(memmem(f->data, f->data_len, "'nope'", 6));
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ERR_UNKNOWN);
	/* The client may try again. */
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_OPTIONS);
	nbdw_go(&f->in, REMUS_NBD_OPT_GO, "disk", NULL, 0);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_info_export(f, REMUS_NBD_OPT_GO, DISK_SIZE, FLAGS_FULL);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ACK);
	assert_int_equal(f->st.protocol_errors, 0);
}

static void test_go_malformed(void **state)
{
	struct fx *f = *state;
	uint8_t d[16];

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_opt(&f->in, REMUS_NBD_OPT_GO, "\0\0\0", 3); /* shorter than 6 */
	remus_put_be32(d, 100);                           /* name longer than the data */
	remus_put_be16(d + 4, 0);
	nbdw_opt(&f->in, REMUS_NBD_OPT_GO, d, 6);
	remus_put_be32(d, 4);                             /* 2 infos announced, 1 sent */
	memcpy(d + 4, "disk", 4);
	remus_put_be16(d + 8, 2);
	remus_put_be16(d + 10, REMUS_NBD_INFO_BLOCK_SIZE);
	nbdw_opt(&f->in, REMUS_NBD_OPT_INFO, d, 12);
	remus_put_be32(d, 0xffffffffu);                   /* length overflow */
	nbdw_opt(&f->in, REMUS_NBD_OPT_GO, d, 8);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ERR_INVALID);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ERR_INVALID);
	expect_rep(f, REMUS_NBD_OPT_INFO, REMUS_NBD_REP_ERR_INVALID);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ERR_INVALID);
	assert_int_equal(remus_buf_len(&f->out), 0);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_OPTIONS);
}

static void test_export_name(void **state)
{
	struct fx *f = *state;

	/* Without NO_ZEROES: size, flags and 124 zero bytes. */
	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_opt(&f->in, REMUS_NBD_OPT_EXPORT_NAME, "disk", 4);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	assert_int_equal(remus_buf_len(&f->out), 8 + 2 + 124);
	assert_int_equal(remus_get_be64(remus_buf_data(&f->out)), DISK_SIZE);
	assert_int_equal(remus_get_be16(remus_buf_data(&f->out) + 8), FLAGS_FULL);
	for (size_t i = 10; i < 134; i++)
		assert_int_equal(remus_buf_data(&f->out)[i], 0);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_TRANSMISSION);
}

static void test_export_name_no_zeroes(void **state)
{
	struct fx *f = *state;

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	nbdw_opt(&f->in, REMUS_NBD_OPT_EXPORT_NAME, "ro", 2);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	assert_int_equal(remus_buf_len(&f->out), 10);
	assert_int_equal(remus_get_be16(remus_buf_data(&f->out) + 8), 0x7);
}

static void test_export_name_unknown(void **state)
{
	struct fx *f = *state;

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_opt(&f->in, REMUS_NBD_OPT_EXPORT_NAME, "no\nsuch", 7);
	/* The protocol gives this option no error reply: close. */
	assert_int_equal(feed(f), -ENOENT);
	assert_int_equal(remus_buf_len(&f->out), 0);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_FAILED);
	/* The name is quoted, with the control character neutralised. */
	assert_non_null(strstr(remus_nbd_conn_error(f->c), "'no?such'"));
	assert_int_equal(feed(f), -ENOENT);
}

static void test_abort(void **state)
{
	struct fx *f = *state;

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_opt(&f->in, REMUS_NBD_OPT_ABORT, "x", 1); /* data is ignored */
	nbdw_opt(&f->in, REMUS_NBD_OPT_LIST, NULL, 0);   /* never answered */
	assert_int_equal(feed(f), REMUS_NBD_FEED_DONE);
	expect_rep(f, REMUS_NBD_OPT_ABORT, REMUS_NBD_REP_ACK);
	assert_int_equal(remus_buf_len(&f->out), 0);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_DONE);
	assert_int_equal(feed(f), REMUS_NBD_FEED_DONE);
	assert_int_equal(remus_buf_len(&f->in), 16);
	assert_int_equal(f->st.protocol_errors, 0);
}

static void test_list(void **state)
{
	struct fx *f = *state;

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_opt(&f->in, REMUS_NBD_OPT_LIST, NULL, 0);
	nbdw_opt(&f->in, REMUS_NBD_OPT_LIST, "x", 1);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_rep(f, REMUS_NBD_OPT_LIST, REMUS_NBD_REP_SERVER);
	assert_int_equal(remus_get_be32(f->data), 4);
	assert_int_equal(f->data_len, 4 + 4 + 13);
	assert_memory_equal(f->data + 4, "diskthe test disk", 17);
	expect_rep(f, REMUS_NBD_OPT_LIST, REMUS_NBD_REP_SERVER);
	assert_int_equal(f->data_len, 4 + 2);
	assert_memory_equal(f->data + 4, "ro", 2);
	expect_rep(f, REMUS_NBD_OPT_LIST, REMUS_NBD_REP_SERVER);
	assert_memory_equal(f->data + 4, "bare", 4);
	expect_rep(f, REMUS_NBD_OPT_LIST, REMUS_NBD_REP_ACK);
	expect_rep(f, REMUS_NBD_OPT_LIST, REMUS_NBD_REP_ERR_INVALID);
	assert_int_equal(remus_buf_len(&f->out), 0);
}

static void test_unsupported_options(void **state)
{
	struct fx *f = *state;
	static const uint32_t opts[] = { REMUS_NBD_OPT_STARTTLS, 4, REMUS_NBD_OPT_LIST_META_CONTEXT,
					 12, 42, 0xffffffffu, 0 };
	size_t i;

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		nbdw_opt(&f->in, opts[i], "some data", 9);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		expect_rep(f, opts[i], REMUS_NBD_REP_ERR_UNSUP);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_OPTIONS);
}

static void test_bad_client_flags(void **state)
{
	struct fx *f = *state;

	nbdw_flags(&f->in, 0x4);
	assert_int_equal(feed(f), -EPROTO);
	assert_non_null(strstr(remus_nbd_conn_error(f->c), "client flags"));
	assert_int_equal(f->st.protocol_errors, 1);
}

static void test_bad_option_magic(void **state)
{
	struct fx *f = *state;
	uint8_t junk[16] = "GET / HTTP/1.1\r\n";

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	remus_buf_append(&f->in, junk, sizeof(junk));
	assert_int_equal(feed(f), -EPROTO);
	assert_non_null(strstr(remus_nbd_conn_error(f->c), "option magic"));
	assert_int_equal(f->st.protocol_errors, 1);
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_FAILED);
}

static void test_oversized_option(void **state)
{
	struct fx *f = *state;
	uint8_t h[16];

	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	/* Refused from the header alone, before the data arrives. */
	remus_put_be64(h, REMUS_NBD_OPTS_MAGIC);
	remus_put_be32(h + 8, REMUS_NBD_OPT_GO);
	remus_put_be32(h + 12, REMUS_NBD_MAX_OPTION_DATA + 1);
	remus_buf_append(&f->in, h, sizeof(h));
	assert_int_equal(feed(f), -EMSGSIZE);
	assert_non_null(strstr(remus_nbd_conn_error(f->c), "8193"));
	assert_int_equal(f->st.protocol_errors, 1);
}

static void test_longest_name_option(void **state)
{
	struct fx *f = *state;
	char *name = malloc(REMUS_NBD_MAX_NAME + 1);

	/* A GO naming a 4096-byte export is legal: refused as unknown. */
	assert_non_null(name);
	memset(name, 'n', REMUS_NBD_MAX_NAME);
	name[REMUS_NBD_MAX_NAME] = 0;
	nbdw_flags(&f->in, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_go(&f->in, REMUS_NBD_OPT_GO, name, NULL, 0);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_rep(f, REMUS_NBD_OPT_GO, REMUS_NBD_REP_ERR_UNKNOWN);
	free(name);
}

static void test_read_write(void **state)
{
	struct fx *f = *state;
	uint8_t pat[4096];

	go(f, "disk", DISK_SIZE, FLAGS_FULL);
	memset(pat, 0x5a, sizeof(pat));
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE, 1, 8192, sizeof(pat), pat);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 2, 8190, 4, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 3, 0, 0, NULL); /* empty read */
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, 0, 1);
	expect_reply(f, 0, 2);
	assert_true(remus_buf_len(&f->out) >= 4);
	assert_memory_equal(remus_buf_data(&f->out), "\0\0\x5a\x5a", 4);
	remus_buf_consume(&f->out, 4);
	expect_reply(f, 0, 3);
	assert_int_equal(remus_buf_len(&f->out), 0);
	assert_int_equal(f->disk.mem[8192 + 4095], 0x5a);
	assert_int_equal(f->disk.last_flags, 0);
	assert_int_equal(f->st.writes, 1);
	assert_int_equal(f->st.bytes_written, 4096);
	assert_int_equal(f->st.reads, 2);
	assert_int_equal(f->st.bytes_read, 4);
	/* The last byte of the disk, up to the end exactly. */
	nbdw_req(&f->in, REMUS_NBD_CMD_FLAG_FUA, REMUS_NBD_CMD_WRITE, 4, DISK_SIZE - 1, 1, "z");
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, 0, 4);
	assert_int_equal(f->disk.mem[DISK_SIZE - 1], 'z');
	assert_int_equal(f->disk.last_flags, REMUS_NBD_CMD_FLAG_FUA);
}

static void test_zeroes_trim_flush(void **state)
{
	struct fx *f = *state;

	go(f, "disk", DISK_SIZE, FLAGS_FULL);
	memset(f->disk.mem, 0x11, DISK_SIZE);
	nbdw_req(&f->in, REMUS_NBD_CMD_FLAG_NO_HOLE, REMUS_NBD_CMD_WRITE_ZEROES, 1, 0, 512, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, 0, 1);
	assert_int_equal(f->disk.last_flags, REMUS_NBD_CMD_FLAG_NO_HOLE);
	assert_int_equal(f->disk.mem[511], 0);
	assert_int_equal(f->disk.mem[512], 0x11);
	nbdw_req(&f->in, REMUS_NBD_CMD_FLAG_FUA | REMUS_NBD_CMD_FLAG_NO_HOLE,
		 REMUS_NBD_CMD_WRITE_ZEROES, 2, 1024, 100, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, 0, 2);
	assert_int_equal(f->disk.last_flags, REMUS_NBD_CMD_FLAG_FUA | REMUS_NBD_CMD_FLAG_NO_HOLE);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE_ZEROES, 3, 2048, 1, NULL);
	nbdw_req(&f->in, REMUS_NBD_CMD_FLAG_FUA, REMUS_NBD_CMD_TRIM, 4, 4096, 4096, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_FLUSH, 5, 0, 0, NULL);
	nbdw_req(&f->in, REMUS_NBD_CMD_FLAG_FUA, REMUS_NBD_CMD_FLUSH, 6, 0, 0, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, 0, 3);
	expect_reply(f, 0, 4);
	expect_reply(f, 0, 5);
	expect_reply(f, 0, 6);
	assert_int_equal(f->disk.mem[4096], 0xee);
	assert_int_equal(f->disk.mem[8191], 0xee);
	assert_int_equal(f->disk.mem[8192], 0x11);
	assert_int_equal(f->disk.trims, 1);
	assert_int_equal(f->disk.zeroes, 3);
	assert_int_equal(f->disk.flushes, 2);
	assert_int_equal(f->st.zeroes, 3);
	assert_int_equal(f->st.trims, 1);
	assert_int_equal(f->st.flushes, 2);
	/* Zero-length trim and zeroes succeed without calling the op. */
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_TRIM, 7, 0, 0, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE_ZEROES, 8, DISK_SIZE, 0, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, 0, 7);
	expect_reply(f, 0, 8);
	assert_int_equal(f->disk.trims, 1);
	assert_int_equal(f->disk.zeroes, 3);
}

static void test_refused_commands(void **state)
{
	struct fx *f = *state;
	uint8_t byte = 1;

	go(f, "disk", DISK_SIZE, FLAGS_FULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_CACHE, 1, 0, 512, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_BLOCK_STATUS, 2, 0, 512, NULL);
	nbdw_req(&f->in, 0, 99, 3, 0, 512, NULL);
	nbdw_req(&f->in, 1u << 2 /* DF */, REMUS_NBD_CMD_READ, 4, 0, 512, NULL);
	/* NO_HOLE belongs to WRITE_ZEROES only; the payload is still
	 * consumed, so the next request is understood. */
	nbdw_req(&f->in, REMUS_NBD_CMD_FLAG_NO_HOLE, REMUS_NBD_CMD_WRITE, 5, 0, 1, &byte);
	nbdw_req(&f->in, 1u << 4 /* FAST_ZERO */, REMUS_NBD_CMD_WRITE_ZEROES, 6, 0, 1, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_FLUSH, 7, 1, 0, NULL); /* offset must be 0 */
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 8, 0, 1, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	for (uint64_t cookie = 1; cookie <= 7; cookie++)
		expect_reply(f, REMUS_NBD_EINVAL, cookie);
	expect_reply(f, 0, 8);
	assert_int_equal(remus_buf_data(&f->out)[0], 0); /* the write did not happen */
	assert_int_equal(f->disk.writes + f->disk.zeroes + f->disk.flushes, 0);
	assert_int_equal(f->st.protocol_errors, 0);
}

static void test_bounds(void **state)
{
	struct fx *f = *state;
	uint8_t two[2] = { 1, 2 };

	go(f, "disk", DISK_SIZE, FLAGS_FULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 1, DISK_SIZE - 1, 2, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 2, DISK_SIZE + 1, 0, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 3, UINT64_MAX, 1, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 4, 0, REMUS_NBD_MAX_PAYLOAD + 1, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE, 5, DISK_SIZE - 1, 2, two);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE_ZEROES, 6, UINT64_MAX - 1, 4, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_TRIM, 7, 1, DISK_SIZE, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, REMUS_NBD_EINVAL, 1);
	expect_reply(f, REMUS_NBD_EINVAL, 2);
	expect_reply(f, REMUS_NBD_EINVAL, 3);
	expect_reply(f, REMUS_NBD_EINVAL, 4);
	/* Writing past the end is NBD_ENOSPC, as the protocol asks. */
	expect_reply(f, REMUS_NBD_ENOSPC, 5);
	expect_reply(f, REMUS_NBD_ENOSPC, 6);
	expect_reply(f, REMUS_NBD_EINVAL, 7);
	assert_int_equal(remus_buf_len(&f->out), 0);
	assert_int_equal(f->disk.reads + f->disk.writes + f->disk.zeroes + f->disk.trims, 0);
}

static void test_read_only(void **state)
{
	struct fx *f = *state;

	go(f, "ro", SMALL_SIZE, 0x7);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE, 1, 0, 3, "abc");
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE_ZEROES, 2, 0, 3, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_TRIM, 3, 0, 3, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_FLUSH, 4, 0, 0, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, REMUS_NBD_EPERM, 1);
	expect_reply(f, REMUS_NBD_EPERM, 2);
	expect_reply(f, REMUS_NBD_EPERM, 3);
	expect_reply(f, 0, 4);
	assert_int_equal(f->ro.writes + f->ro.zeroes + f->ro.trims, 0);
}

static void test_bare_export(void **state)
{
	struct fx *f = *state;

	go(f, "bare", SMALL_SIZE, 0x1);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_TRIM, 1, 0, 512, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE_ZEROES, 2, 0, 512, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_FLUSH, 3, 0, 0, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, REMUS_NBD_EINVAL, 1);
	expect_reply(f, REMUS_NBD_EINVAL, 2);
	expect_reply(f, REMUS_NBD_EINVAL, 3);
}

static void test_op_errors(void **state)
{
	struct fx *f = *state;
	static const struct { int rc; uint32_t nbd; } map[] = {
		{ -EIO, REMUS_NBD_EIO }, { -ENOSPC, REMUS_NBD_ENOSPC }, { -EDQUOT, REMUS_NBD_ENOSPC },
		{ -EROFS, REMUS_NBD_EPERM }, { -EPERM, REMUS_NBD_EPERM },
		{ -EINVAL, REMUS_NBD_EINVAL }, { -ENOMEM, REMUS_NBD_ENOMEM },
		{ -ESHUTDOWN, REMUS_NBD_ESHUTDOWN }, { -EBADF, REMUS_NBD_EIO },
	};
	size_t i;

	go(f, "disk", DISK_SIZE, FLAGS_FULL);
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		f->disk.fail = map[i].rc;
		nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE, i, 0, 2, "xy");
		nbdw_req(&f->in, 0, REMUS_NBD_CMD_FLUSH, 100 + i, 0, 0, NULL);
		assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
		expect_reply(f, map[i].nbd, i);
		expect_reply(f, map[i].nbd, 100 + i);
	}
	/* A failed READ sends its error and no payload. */
	f->disk.fail = -EIO;
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 7, 0, 4096, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_TRIM, 8, 0, 4096, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE_ZEROES, 9, 0, 4096, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, REMUS_NBD_EIO, 7);
	expect_reply(f, REMUS_NBD_EIO, 8);
	expect_reply(f, REMUS_NBD_EIO, 9);
	assert_int_equal(remus_buf_len(&f->out), 0);
	assert_int_equal(f->st.writes + f->st.reads + f->st.flushes + f->st.trims + f->st.zeroes, 0);
	/* The connection goes on. */
	f->disk.fail = 0;
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 10, 0, 2, NULL);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, 0, 10);
}

static void test_bad_request_magic(void **state)
{
	struct fx *f = *state;

	go(f, "disk", DISK_SIZE, FLAGS_FULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 1, 0, 1, NULL);
	remus_buf_append(&f->in, "\x25\x60\x95\x14", 4); /* magic off by one */
	remus_buf_append(&f->in, "012345678901234567890123", 24);
	assert_int_equal(feed(f), -EPROTO);
	expect_reply(f, 0, 1); /* what came before was answered */
	assert_non_null(strstr(remus_nbd_conn_error(f->c), "0x25609514"));
	assert_int_equal(f->st.protocol_errors, 1);
}

static void test_oversized_write(void **state)
{
	struct fx *f = *state;

	go(f, "disk", DISK_SIZE, FLAGS_FULL);
	/* Closed from the header alone: the payload is never buffered. */
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE, 1, 0, REMUS_NBD_MAX_PAYLOAD + 1, NULL);
	assert_int_equal(feed(f), -EMSGSIZE);
	assert_int_equal(remus_buf_len(&f->out), 0);
	assert_int_equal(f->st.protocol_errors, 1);
}

static void test_disc(void **state)
{
	struct fx *f = *state;

	go(f, "disk", DISK_SIZE, FLAGS_FULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE, 1, 0, 1, "q");
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_DISC, 2, 0, 0, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE, 3, 0, 1, "r");
	assert_int_equal(feed(f), REMUS_NBD_FEED_DONE);
	expect_reply(f, 0, 1);
	assert_int_equal(remus_buf_len(&f->out), 0); /* DISC has no reply */
	assert_int_equal(f->disk.mem[0], 'q');
	assert_int_equal(remus_nbd_conn_get_state(f->c), REMUS_NBD_CONN_DONE);
	assert_int_equal(feed(f), REMUS_NBD_FEED_DONE);
	assert_int_equal(f->disk.writes, 1);
}

static void test_high_water_and_hold(void **state)
{
	struct fx *f = *state;

	go(f, "disk", DISK_SIZE, FLAGS_FULL);
	remus_nbd_conn_set_out_high_water(f->c, 100);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 1, 0, 200, NULL);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_READ, 2, 0, 10, NULL);
	/* The first reply passes the mark: the second request waits. */
	assert_int_equal(feed(f), REMUS_NBD_FEED_BLOCKED);
	assert_int_equal(remus_buf_len(&f->out), 216);
	assert_int_equal(remus_buf_len(&f->in), 28);
	assert_int_equal(feed(f), REMUS_NBD_FEED_BLOCKED);
	remus_buf_consume(&f->out, 150);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	assert_int_equal(remus_buf_len(&f->out), 66 + 26);
	remus_buf_reset(&f->out);

	remus_nbd_conn_set_hold(f->c, true);
	nbdw_req(&f->in, 0, REMUS_NBD_CMD_WRITE, 3, 0, 1, "h");
	assert_int_equal(feed(f), REMUS_NBD_FEED_BLOCKED);
	assert_int_equal(f->disk.writes, 0);
	assert_int_equal(remus_buf_len(&f->out), 0);
	remus_nbd_conn_set_hold(f->c, false);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	expect_reply(f, 0, 3);
	/* A partial message is just "more" even while held. */
	remus_nbd_conn_set_hold(f->c, true);
	remus_buf_append(&f->in, "\x25\x60", 2);
	assert_int_equal(feed(f), REMUS_NBD_FEED_MORE);
	assert_int_equal(f->disk.writes, 1);
}

/* A whole session, as one byte string. */
static void session(struct remus_buf *b)
{
	static const uint16_t bs = REMUS_NBD_INFO_BLOCK_SIZE;
	uint8_t pat[1000];
	size_t i;

	for (i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + 3);
	nbdw_flags(b, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	nbdw_opt(b, REMUS_NBD_OPT_EXTENDED_HEADERS, NULL, 0);
	nbdw_opt(b, REMUS_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	nbdw_opt(b, REMUS_NBD_OPT_LIST, NULL, 0);
	nbdw_go(b, REMUS_NBD_OPT_INFO, "disk", &bs, 1);
	nbdw_go(b, REMUS_NBD_OPT_GO, "nope", &bs, 1);
	nbdw_go(b, REMUS_NBD_OPT_GO, "disk", &bs, 1);
	nbdw_req(b, 0, REMUS_NBD_CMD_WRITE, 0x1111, 4000, sizeof(pat), pat);
	nbdw_req(b, REMUS_NBD_CMD_FLAG_FUA, REMUS_NBD_CMD_WRITE, 0x2222, 10, 3, "abc");
	nbdw_req(b, 0, REMUS_NBD_CMD_READ, 0x3333, 3990, 1020, NULL);
	nbdw_req(b, REMUS_NBD_CMD_FLAG_NO_HOLE, REMUS_NBD_CMD_WRITE_ZEROES, 0x4444, 4100, 50, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_TRIM, 0x5555, 4500, 10, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_FLUSH, 0x6666, 0, 0, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_READ, 0x7777, DISK_SIZE, 1, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_READ, 0x8888, 0, 5000, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_DISC, 0x9999, 0, 0, NULL);
}

/* Runs @b through a fresh conn in pieces cut at @cuts (ascending). */
static void run_split(const struct remus_buf *b, const size_t *cuts, size_t ncuts,
		      struct remus_buf *out, struct ramdisk *disk)
{
	struct remus_nbd_table *t;
	struct remus_nbd_conn *c;
	struct remus_buf in;
	size_t pos = 0, i;
	int rc = REMUS_NBD_FEED_MORE;

	ramdisk_init(disk, DISK_SIZE);
	assert_int_equal(remus_nbd_table_new(&t), 0);
	assert_int_equal(remus_nbd_table_add(t, &(struct remus_nbd_export){
		.name = "disk", .size = DISK_SIZE, .ops = ramdisk_ops(), .opaque = disk }), 0);
	assert_int_equal(remus_nbd_conn_new(t, NULL, "split", &c), 0);
	remus_buf_init(&in, REMUS_NBD_IN_LIMIT);
	remus_buf_init(out, REMUS_NBD_OUT_LIMIT);
	assert_int_equal(remus_nbd_conn_start(c, out), 0);
	for (i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : remus_buf_len(b);

		/* Nothing ends before the DISC at the very end has arrived. */
		if (pos < remus_buf_len(b))
			assert_int_equal(rc, REMUS_NBD_FEED_MORE);
		remus_buf_append(&in, remus_buf_data(b) + pos, end - pos);
		pos = end;
		rc = remus_nbd_conn_feed(c, &in, out);
	}
	assert_int_equal(rc, REMUS_NBD_FEED_DONE);
	remus_nbd_conn_free(c);
	remus_nbd_table_free(t);
	remus_buf_release(&in);
}

static void test_split_everywhere(void **state)
{
	struct remus_buf b, ref, out;
	struct ramdisk ref_disk, disk;
	size_t k, cuts[2], n;

	remus_buf_init(&b, 0);
	session(&b);
	n = remus_buf_len(&b);
	run_split(&b, NULL, 0, &ref, &ref_disk);
	/* The session did what it says: replies for 9 requests, data. */
	assert_true(remus_buf_len(&ref) > 18 + 9 * 16 + 1020 + 5000);
	assert_memory_equal(ref_disk.mem + 10, "abc", 3);
	assert_int_equal(ref_disk.mem[4099], (uint8_t)(99 * 7 + 3));
	assert_int_equal(ref_disk.mem[4100], 0);
	assert_int_equal(ref_disk.mem[4500], 0xee);
	/* Every single cut, and every pair of cuts 13 bytes apart. */
	for (k = 0; k <= n; k++) {
		cuts[0] = k;
		cuts[1] = k + 13 <= n ? k + 13 : n;
		run_split(&b, cuts, 1 + (k % 2), &out, &disk);
		if (remus_buf_len(&out) != remus_buf_len(&ref) ||
		    memcmp(remus_buf_data(&out), remus_buf_data(&ref), remus_buf_len(&ref)) ||
		    memcmp(disk.mem, ref_disk.mem, DISK_SIZE))
			fail_msg("output or disk differ when the session is cut at %zu", k);
		remus_buf_release(&out);
		ramdisk_release(&disk);
	}
	remus_buf_release(&ref);
	ramdisk_release(&ref_disk);
	remus_buf_release(&b);
}

static void test_byte_by_byte(void **state)
{
	struct remus_buf b, ref, out;
	struct ramdisk ref_disk, disk;
	size_t *cuts, n, k;

	remus_buf_init(&b, 0);
	session(&b);
	n = remus_buf_len(&b);
	run_split(&b, NULL, 0, &ref, &ref_disk);
	cuts = malloc(n * sizeof(*cuts));
	assert_non_null(cuts);
	for (k = 0; k < n - 1; k++)
		cuts[k] = k + 1;
	run_split(&b, cuts, n - 1, &out, &disk);
	assert_int_equal(remus_buf_len(&out), remus_buf_len(&ref));
	assert_memory_equal(remus_buf_data(&out), remus_buf_data(&ref), remus_buf_len(&ref));
	assert_memory_equal(disk.mem, ref_disk.mem, DISK_SIZE);
	free(cuts);
	remus_buf_release(&out);
	remus_buf_release(&ref);
	remus_buf_release(&b);
	ramdisk_release(&disk);
	ramdisk_release(&ref_disk);
}

static void test_table(void **state)
{
	struct remus_nbd_table *t;
	struct remus_nbd_export e = { .name = "a", .size = 1, .ops = ramdisk_ops() };
	char *longname = malloc(REMUS_NBD_MAX_NAME + 2);

	assert_non_null(longname);
	assert_int_equal(remus_nbd_table_new(&t), 0);
	assert_int_equal(remus_nbd_table_add(t, &e), 0);
	assert_int_equal(remus_nbd_table_add(t, &e), -EEXIST);
	e.name = "b";
	e.ops = &(struct remus_nbd_ops){ .write = rd_write };
	assert_int_equal(remus_nbd_table_add(t, &e), -EINVAL); /* no read */
	e.ops = &(struct remus_nbd_ops){ .read = rd_read };
	assert_int_equal(remus_nbd_table_add(t, &e), -EINVAL); /* writable, no write */
	e.read_only = true;
	assert_int_equal(remus_nbd_table_add(t, &e), 0);
	e.name = "c";
	e.size = (uint64_t)INT64_MAX + 1;
	assert_int_equal(remus_nbd_table_add(t, &e), -EINVAL);
	e.size = 1;
	memset(longname, 'x', REMUS_NBD_MAX_NAME + 1);
	longname[REMUS_NBD_MAX_NAME + 1] = 0;
	e.name = longname;
	assert_int_equal(remus_nbd_table_add(t, &e), -EINVAL);
	longname[REMUS_NBD_MAX_NAME] = 0; /* exactly 4096 is fine */
	assert_int_equal(remus_nbd_table_add(t, &e), 0);
	e.name = NULL;
	assert_int_equal(remus_nbd_table_add(t, &e), -EINVAL);
	/* Names are copied. */
	memset(longname, 'y', 4);
	assert_null(remus_nbd_table_find(t, longname, REMUS_NBD_MAX_NAME));
	assert_non_null(remus_nbd_table_find(t, "a", 1));
	assert_null(remus_nbd_table_find(t, "a", 0));
	remus_nbd_table_free(t);
	free(longname);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_greeting),
		T(test_go_like_qemu),
		T(test_info_then_go),
		T(test_go_unknown_export),
		T(test_go_malformed),
		T(test_export_name),
		T(test_export_name_no_zeroes),
		T(test_export_name_unknown),
		T(test_abort),
		T(test_list),
		T(test_unsupported_options),
		T(test_bad_client_flags),
		T(test_bad_option_magic),
		T(test_oversized_option),
		T(test_longest_name_option),
		T(test_read_write),
		T(test_zeroes_trim_flush),
		T(test_refused_commands),
		T(test_bounds),
		T(test_read_only),
		T(test_bare_export),
		T(test_op_errors),
		T(test_bad_request_magic),
		T(test_oversized_write),
		T(test_disc),
		T(test_high_water_and_hold),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
