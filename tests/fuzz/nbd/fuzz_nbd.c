// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for diskrepl's NBD protocol layer: client flags, option
 * haggling and transmission requests from arbitrary bytes, executed
 * against RAM disks whose ops abort on any range the server should have
 * refused.
 *
 * Input: one control byte, then the client's byte stream.
 *   bits 0-5  feed the stream in pieces of this many bytes in the second
 *             run (0: one byte at a time)
 *   bit 6     every op fails with -EIO
 *   bit 7     prefix a valid handshake (flags, GO "disk"), so that
 *             mutations reach the request parser at once
 *
 * The stream runs twice on fresh conns and disks: all at once with the
 * default output high water mark, then in pieces with a high water mark
 * of one byte (feed stops after every reply and the harness drains the
 * output).  Besides "no crash, no leak, no UB", the two runs must agree
 * byte for byte on the replies, the disks, the final state and result,
 * and a failed or ended conn must say why.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "diskrepl/nbd_proto.h"
#include "support/nbd_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DISK_SIZE 65536u
#define RO_SIZE 4096u

struct run {
	struct ramdisk disk, ro, bare;
	struct remus_buf transcript; /* every byte the server sent */
	int result;
	enum remus_nbd_conn_state state;
};

static void drain(struct remus_buf *out, struct remus_buf *transcript)
{
	if (remus_buf_append(transcript, remus_buf_data(out), remus_buf_len(out)) < 0)
		abort();
	remus_buf_reset(out);
}

static void run(struct run *r, const uint8_t *stream, size_t len, size_t piece, bool fail,
		size_t high)
{
	struct remus_nbd_table *t = NULL;
	struct remus_nbd_conn *c = NULL;
	struct remus_buf in, out;
	size_t pos = 0;
	int rc = REMUS_NBD_FEED_MORE;

	ramdisk_init(&r->disk, DISK_SIZE);
	ramdisk_init(&r->ro, RO_SIZE);
	ramdisk_init(&r->bare, RO_SIZE);
	r->disk.fail = r->ro.fail = r->bare.fail = fail ? -EIO : 0;
	memset(r->ro.mem, 0x5a, RO_SIZE);
	remus_buf_init(&r->transcript, 0);
	remus_buf_init(&in, REMUS_NBD_IN_LIMIT);
	remus_buf_init(&out, REMUS_NBD_OUT_LIMIT);
	if (remus_nbd_table_new(&t) < 0 ||
	    remus_nbd_table_add(t, &(struct remus_nbd_export){
		.name = "disk", .description = "fuzz", .size = DISK_SIZE,
		.ops = ramdisk_ops(), .opaque = &r->disk }) < 0 ||
	    remus_nbd_table_add(t, &(struct remus_nbd_export){
		.name = "ro", .size = RO_SIZE, .read_only = true,
		.ops = ramdisk_ops(), .opaque = &r->ro }) < 0 ||
	    remus_nbd_table_add(t, &(struct remus_nbd_export){
		.name = "", .size = RO_SIZE, .ops = ramdisk_bare_ops(),
		.opaque = &r->bare }) < 0 ||
	    remus_nbd_conn_new(t, NULL, "fuzz", &c) < 0 || remus_nbd_conn_start(c, &out) < 0)
		abort();
	if (high)
		remus_nbd_conn_set_out_high_water(c, high);
	while (pos < len || rc == REMUS_NBD_FEED_BLOCKED) {
		size_t n = len - pos < piece ? len - pos : piece;

		if (rc != REMUS_NBD_FEED_BLOCKED) {
			if (remus_buf_append(&in, stream + pos, n) < 0)
				abort();
			pos += n;
		}
		rc = remus_nbd_conn_feed(c, &in, &out);
		if (rc != REMUS_NBD_FEED_MORE && rc != REMUS_NBD_FEED_BLOCKED &&
		    rc != REMUS_NBD_FEED_DONE && rc != -EPROTO && rc != -EMSGSIZE && rc != -ENOENT)
			abort();
		/* Blocked only on a full output; draining it must unblock. */
		if (rc == REMUS_NBD_FEED_BLOCKED && remus_buf_len(&out) == 0)
			abort();
		drain(&out, &r->transcript);
		if (rc < 0 || rc == REMUS_NBD_FEED_DONE) {
			if (!remus_nbd_conn_error(c)[0])
				abort();
			break;
		}
	}
	drain(&out, &r->transcript); /* the greeting, when there was no input */
	r->result = rc;
	r->state = remus_nbd_conn_get_state(c);
	if ((rc < 0) != (r->state == REMUS_NBD_CONN_FAILED) ||
	    (rc == REMUS_NBD_FEED_DONE) != (r->state == REMUS_NBD_CONN_DONE))
		abort();
	remus_nbd_conn_free(c);
	remus_nbd_table_free(t);
	remus_buf_release(&in);
	remus_buf_release(&out);
}

static void release(struct run *r)
{
	ramdisk_release(&r->disk);
	ramdisk_release(&r->ro);
	ramdisk_release(&r->bare);
	remus_buf_release(&r->transcript);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t bs = REMUS_NBD_INFO_BLOCK_SIZE;
	struct remus_buf stream;
	struct run a, b;
	size_t piece;
	bool fail;

	if (size < 1)
		return 0;
	remus_log_set_level(REMUS_LOG_ERROR);
	piece = data[0] & 0x3f;
	fail = data[0] & 0x40;
	remus_buf_init(&stream, 0);
	if (data[0] & 0x80) {
		nbdw_flags(&stream, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
		nbdw_go(&stream, REMUS_NBD_OPT_GO, "disk", &bs, 1);
	}
	if (remus_buf_append(&stream, data + 1, size - 1) < 0)
		abort();

	run(&a, remus_buf_data(&stream), remus_buf_len(&stream), remus_buf_len(&stream) + 1,
	    fail, 0);
	run(&b, remus_buf_data(&stream), remus_buf_len(&stream), piece ? piece : 1, fail, 1);
	if (a.result != b.result || a.state != b.state ||
	    remus_buf_len(&a.transcript) != remus_buf_len(&b.transcript) ||
	    memcmp(remus_buf_data(&a.transcript), remus_buf_data(&b.transcript),
		   remus_buf_len(&a.transcript)) != 0 ||
	    memcmp(a.disk.mem, b.disk.mem, DISK_SIZE) != 0 ||
	    memcmp(a.bare.mem, b.bare.mem, RO_SIZE) != 0)
		abort();
	/* The read-only export is never written. */
	for (size_t i = 0; i < RO_SIZE; i++)
		if (a.ro.mem[i] != 0x5a)
			abort();
	release(&a);
	release(&b);
	remus_buf_release(&stream);
	return 0;
}
