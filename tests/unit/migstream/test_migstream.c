// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for controller/migstream: a synthetic QEMU 10.0 stream is
 * built here record by record, together with the bytes the standby must
 * get for a first and a later epoch and the device part that must be held
 * back.  The parser must return the same tokens however the stream is
 * chunked; the rewriter must produce those bytes exactly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/wire.h"
#include "common/sock.h"
#include "migstream/migstream.h"

#define PAGE 4096
#define RAM_SID 2
#define LATER_SID 7

/* Where a piece of the synthetic stream goes besides the input. */
enum {
	TO_FIRST = 1,  /* the first epoch's standby bytes */
	TO_LATER = 2,  /* a later epoch's standby bytes */
	TO_DEV = 4,    /* the held-back device part */
	TO_BOTH = TO_FIRST | TO_LATER,
};

struct sb {
	struct remus_buf in, first, later, dev;
	size_t trap; /* offset of a false vmdescription head in @in */
};

static void sb_init(struct sb *s)
{
	remus_buf_init(&s->in, 0);
	remus_buf_init(&s->first, 0);
	remus_buf_init(&s->later, 0);
	remus_buf_init(&s->dev, 0);
}

static void sb_release(struct sb *s)
{
	remus_buf_release(&s->in);
	remus_buf_release(&s->first);
	remus_buf_release(&s->later);
	remus_buf_release(&s->dev);
}

static void put(struct remus_buf *b, const void *p, size_t n)
{
	assert_int_equal(remus_buf_append(b, p, n), 0);
}

static void put8(struct remus_buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put16(struct remus_buf *b, uint16_t v)
{
	uint8_t x[2];

	remus_put_be16(x, v);
	put(b, x, 2);
}

static void put32(struct remus_buf *b, uint32_t v)
{
	uint8_t x[4];

	remus_put_be32(x, v);
	put(b, x, 4);
}

static void put64(struct remus_buf *b, uint64_t v)
{
	uint8_t x[8];

	remus_put_be64(x, v);
	put(b, x, 8);
}

static void putstr8(struct remus_buf *b, const char *s)
{
	put8(b, (uint8_t)strlen(s));
	put(b, s, strlen(s));
}

/* Appends @tmp to the input and to the outputs in @to, then empties it. */
static void emit(struct sb *s, struct remus_buf *tmp, int to)
{
	put(&s->in, remus_buf_data(tmp), remus_buf_len(tmp));
	if (to & TO_FIRST)
		put(&s->first, remus_buf_data(tmp), remus_buf_len(tmp));
	if (to & TO_LATER)
		put(&s->later, remus_buf_data(tmp), remus_buf_len(tmp));
	if (to & TO_DEV)
		put(&s->dev, remus_buf_data(tmp), remus_buf_len(tmp));
	remus_buf_reset(tmp);
}

/* PART/footer as the standby must see them in a later epoch. */
static void later_section(struct sb *s, uint8_t type)
{
	put8(&s->later, type);
	put32(&s->later, LATER_SID);
}

static void fill_page(uint8_t *p, unsigned seed)
{
	size_t i;

	/* Bytes that look like records: EOF, vmdescription, footers. */
	for (i = 0; i < PAGE; i++)
		p[i] = (uint8_t)((i * 7 + seed) % 9 == 0 ? 0x06 : (i + seed) % 3 == 0 ? 0 : 0x7e);
}

static void page_rec(struct sb *s, const char *block, uint64_t off, bool zero, bool cont,
		     unsigned seed)
{
	struct remus_buf t;
	uint8_t page[PAGE];

	remus_buf_init(&t, 0);
	put64(&t, off | (zero ? 0x2 : 0x8) | (cont ? 0x20 : 0));
	if (!cont)
		putstr8(&t, block);
	if (zero) {
		put8(&t, 0);
	} else {
		fill_page(page, seed);
		put(&t, page, PAGE);
	}
	emit(s, &t, TO_BOTH);
	remus_buf_release(&t);
}

static const char vmdesc_json[] = "{\"page_size\": 4096, \"devices\": [{\"name\": \"x\"}]}";

/*
 * The whole synthetic stream: header, configuration with three
 * subsections, commands, START(ram) with two blocks, a PART and the END
 * with pages, zero pages and CONTINUE records, two FULL device sections
 * whose bytes look like EOF + vmdescription, EOF and the vmdescription.
 */
static void build_stream(struct sb *s)
{
	struct remus_buf t;
	uint8_t uuid[16], junk[64];
	size_t i;

	sb_init(s);
	remus_buf_init(&t, 0);
	put32(&t, REMUS_MIG_MAGIC);
	put32(&t, 3);
	emit(s, &t, TO_FIRST);

	put8(&t, 0x07);
	put32(&t, 14);
	put(&t, "pc-i440fx-10.0", 14);
	put8(&t, 0x05);
	putstr8(&t, "configuration/target-page-bits");
	put32(&t, 1);
	put32(&t, 12);
	put8(&t, 0x05);
	putstr8(&t, "configuration/capabilities");
	put32(&t, 1);
	put32(&t, 1);
	putstr8(&t, "validate-uuid");
	put8(&t, 0x05);
	putstr8(&t, "configuration/uuid");
	put32(&t, 1);
	memset(uuid, 0x05, sizeof(uuid)); /* looks like a subsection byte */
	put(&t, uuid, 16);
	emit(s, &t, TO_FIRST);

	put8(&t, 0x08); /* OPEN_RETURN_PATH */
	put16(&t, 1);
	put16(&t, 0);
	emit(s, &t, TO_FIRST);
	put8(&t, 0x08); /* PING */
	put16(&t, 2);
	put16(&t, 4);
	put32(&t, 0x01020304);
	emit(s, &t, TO_FIRST);

	put8(&t, 0x01); /* START(ram) */
	put32(&t, RAM_SID);
	putstr8(&t, "ram");
	put32(&t, 0);
	put32(&t, 4);
	emit(s, &t, TO_FIRST);
	later_section(s, 0x02);
	put64(&t, (16 * PAGE + 4 * PAGE) | 0x4); /* MEM_SIZE */
	putstr8(&t, "pc.ram");
	put64(&t, 16 * PAGE);
	putstr8(&t, "vga.vram");
	put64(&t, 4 * PAGE);
	put64(&t, 0x10); /* EOS */
	emit(s, &t, TO_BOTH);
	put8(&t, 0x7e);
	put32(&t, RAM_SID);
	emit(s, &t, TO_FIRST);
	later_section(s, 0x7e);

	put8(&t, 0x02); /* PART(ram) */
	put32(&t, RAM_SID);
	emit(s, &t, TO_FIRST);
	later_section(s, 0x02);
	page_rec(s, "pc.ram", 0, false, false, 1);
	page_rec(s, "pc.ram", 1 * PAGE, false, true, 2);
	page_rec(s, "pc.ram", 2 * PAGE, true, true, 0);
	page_rec(s, "vga.vram", 0, false, false, 3);
	page_rec(s, "vga.vram", 3 * PAGE, true, true, 0);
	put64(&t, 0x10);
	emit(s, &t, TO_BOTH);
	put8(&t, 0x7e);
	put32(&t, RAM_SID);
	emit(s, &t, TO_FIRST);
	later_section(s, 0x7e);

	put8(&t, 0x08); /* SWITCHOVER_START: never reaches the standby */
	put16(&t, 11);
	put16(&t, 0);
	emit(s, &t, 0);

	put8(&t, 0x03); /* END(ram) -> PART(ram) */
	put32(&t, RAM_SID);
	emit(s, &t, 0);
	put8(&s->first, 0x02);
	put32(&s->first, RAM_SID);
	later_section(s, 0x02);
	page_rec(s, "pc.ram", 3 * PAGE, false, false, 4);
	page_rec(s, "pc.ram", 15 * PAGE, false, true, 5);
	page_rec(s, "pc.ram", 5 * PAGE, true, true, 0);
	put64(&t, 0x10);
	emit(s, &t, TO_BOTH);
	put8(&t, 0x7e);
	put32(&t, RAM_SID);
	emit(s, &t, TO_FIRST);
	later_section(s, 0x7e);

	put8(&t, 0x04); /* FULL timer */
	put32(&t, 3);
	putstr8(&t, "timer");
	put32(&t, 0);
	put32(&t, 2);
	/* state bytes that end like "EOF + empty vmdescription" */
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i % 5 == 0 ? 0 : i % 5 == 1 ? 6 : i);
	put(&t, junk, sizeof(junk));
	put(&t, "\x00\x06\x00\x00\x00\x02{}", 8);
	put8(&t, 0x7e);
	put32(&t, 3);
	put8(&t, 0x04); /* FULL apic */
	put32(&t, 4);
	putstr8(&t, "apic");
	put32(&t, 0);
	put32(&t, 5);
	put(&t, "\x00\x06\x00\x00\x00\x03{x}\x00", 9);
	/* a head whose length is patched below to reach the end of the
	 * stream: it swallows the real EOF, so it must not match */
	s->trap = remus_buf_len(&s->in) + remus_buf_len(&t);
	put(&t, "\x00\x06\x00\x00\x00\x00{", 7);
	put8(&t, 0x7e);
	put32(&t, 4);
	put8(&t, 0x00); /* EOF */
	emit(s, &t, TO_DEV);

	put8(&t, 0x06);
	put32(&t, (uint32_t)strlen(vmdesc_json));
	put(&t, vmdesc_json, strlen(vmdesc_json));
	emit(s, &t, 0);
	remus_buf_release(&t);
	remus_put_be32(remus_buf_data(&s->in) + s->trap + 2,
		       (uint32_t)(remus_buf_len(&s->in) - s->trap - 6));
	remus_put_be32(remus_buf_data(&s->dev) + s->trap + 2 -
			       (remus_buf_len(&s->in) - 5 - strlen(vmdesc_json) -
				remus_buf_len(&s->dev)),
		       (uint32_t)(remus_buf_len(&s->in) - s->trap - 6));
}

/* A token as the tests compare it (pointers are only valid briefly). */
struct tokrec {
	enum remus_migstream_kind kind;
	uint64_t start, end;
	int block;
	uint64_t off;
	uint32_t sid;
	uint64_t datalen;
};

struct run {
	struct tokrec toks[64];
	int n;
	int rc;
	struct remus_migstream_rewriter rw;
	bool rewrite;
};

static void record(struct run *r, const struct remus_migstream_token *t)
{
	struct tokrec *x;

	assert_true(r->n < 64);
	x = &r->toks[r->n++];
	x->kind = t->kind;
	x->start = t->start;
	x->end = t->end;
	x->block = t->block ? (int)t->block->index : -1;
	x->off = t->page_offset;
	x->sid = t->section_id;
	x->datalen = t->data_len;
	if (r->n > 1)
		assert_int_equal(r->toks[r->n - 2].end, t->start);
	assert_true(t->end > t->start);
	if (r->rewrite)
		assert_int_equal(remus_migstream_rewrite(&r->rw, t), 0);
}

static int drain(struct remus_migstream *p, struct run *r)
{
	struct remus_migstream_token t;
	int rc;

	while ((rc = remus_migstream_next(p, &t)) == 1)
		record(r, &t);
	return rc;
}

/* Parses @d in chunks of @chunk bytes (0: one piece), or split once at
 * @cut if @cut > 0.  Returns the final return code of next(). */
static int parse(const uint8_t *d, size_t n, size_t chunk, size_t cut, struct run *r,
		 const struct remus_migstream_opts *opts)
{
	struct remus_migstream *p = NULL;
	size_t pos = 0;
	int rc;

	assert_int_equal(remus_migstream_new(opts, &p), 0);
	while (pos < n) {
		size_t k = n - pos;

		if (cut)
			k = pos < cut ? cut : n - pos;
		else if (chunk && chunk < k)
			k = chunk;
		if ((rc = remus_migstream_feed(p, d + pos, k)) < 0)
			goto out;
		pos += k;
		if ((rc = drain(p, r)) < 0)
			goto out;
	}
	remus_migstream_finish(p);
	rc = drain(p, r);
	if (rc == 0)
		assert_true(remus_migstream_complete(p));
out:
	r->rc = rc;
	remus_migstream_free(p);
	return rc;
}

static void assert_same_tokens(const struct run *a, const struct run *b)
{
	int i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		assert_int_equal(a->toks[i].kind, b->toks[i].kind);
		assert_int_equal(a->toks[i].start, b->toks[i].start);
		assert_int_equal(a->toks[i].end, b->toks[i].end);
		assert_int_equal(a->toks[i].block, b->toks[i].block);
		assert_int_equal(a->toks[i].off, b->toks[i].off);
		assert_int_equal(a->toks[i].sid, b->toks[i].sid);
		assert_int_equal(a->toks[i].datalen, b->toks[i].datalen);
	}
}

static void test_whole_stream_tokens(void **state)
{
	static const enum remus_migstream_kind want[] = {
		REMUS_MS_HEADER, REMUS_MS_CONFIG, REMUS_MS_COMMAND, REMUS_MS_COMMAND,
		REMUS_MS_START, REMUS_MS_RAM_MEM_SIZE, REMUS_MS_RAM_EOS, REMUS_MS_FOOTER,
		REMUS_MS_PART, REMUS_MS_RAM_PAGE, REMUS_MS_RAM_PAGE, REMUS_MS_RAM_ZERO,
		REMUS_MS_RAM_PAGE, REMUS_MS_RAM_ZERO, REMUS_MS_RAM_EOS, REMUS_MS_FOOTER,
		REMUS_MS_COMMAND, REMUS_MS_END, REMUS_MS_RAM_PAGE, REMUS_MS_RAM_PAGE,
		REMUS_MS_RAM_ZERO, REMUS_MS_RAM_EOS, REMUS_MS_FOOTER, REMUS_MS_DEVICE,
		REMUS_MS_VMDESC,
	};
	struct sb s;
	struct run *r = calloc(1, sizeof(*r));
	size_t i;

	(void)state;
	build_stream(&s);
	assert_int_equal(parse(remus_buf_data(&s.in), remus_buf_len(&s.in), 0, 0, r, NULL), 0);
	assert_int_equal(r->n, (int)(sizeof(want) / sizeof(want[0])));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(remus_migstream_kind_name(r->toks[i].kind),
				    remus_migstream_kind_name(want[i]));
	assert_int_equal(r->toks[0].start, 0);
	assert_int_equal(r->toks[r->n - 1].end, remus_buf_len(&s.in));
	/* pages: block index and offset */
	assert_int_equal(r->toks[10].block, 0);
	assert_int_equal(r->toks[10].off, PAGE);
	assert_int_equal(r->toks[13].block, 1);
	assert_int_equal(r->toks[13].off, 3 * PAGE);
	assert_int_equal(r->toks[19].off, 15 * PAGE);
	/* the device part ends at the real EOF, not at the look-alikes */
	assert_int_equal(r->toks[23].datalen, remus_buf_len(&s.dev));
	assert_int_equal(r->toks[24].datalen, strlen(vmdesc_json));
	free(r);
	sb_release(&s);
}

static void test_every_chunk_boundary(void **state)
{
	struct sb s;
	struct run *whole = calloc(1, sizeof(*whole)), *r = calloc(1, sizeof(*r));
	size_t n, cut, chunk;

	(void)state;
	build_stream(&s);
	n = remus_buf_len(&s.in);
	assert_int_equal(parse(remus_buf_data(&s.in), n, 0, 0, whole, NULL), 0);
	for (cut = 1; cut < n; cut++) {
		memset(r, 0, sizeof(*r));
		assert_int_equal(parse(remus_buf_data(&s.in), n, 0, cut, r, NULL), 0);
		assert_same_tokens(whole, r);
	}
	for (chunk = 1; chunk <= 17; chunk++) {
		memset(r, 0, sizeof(*r));
		assert_int_equal(parse(remus_buf_data(&s.in), n, chunk, 0, r, NULL), 0);
		assert_same_tokens(whole, r);
	}
	free(whole);
	free(r);
	sb_release(&s);
}

static void check_rewrite(bool first, size_t chunk)
{
	struct sb s;
	struct run *r = calloc(1, sizeof(*r));
	const struct remus_buf *want;

	build_stream(&s);
	want = first ? &s.first : &s.later;
	r->rewrite = true;
	remus_migstream_rewriter_init(&r->rw, first, LATER_SID, NULL, NULL);
	assert_int_equal(parse(remus_buf_data(&s.in), remus_buf_len(&s.in), chunk, 0, r, NULL), 0);
	assert_int_equal(remus_buf_len(&r->rw.out), remus_buf_len(want));
	assert_memory_equal(remus_buf_data(&r->rw.out), remus_buf_data(want), remus_buf_len(want));
	assert_int_equal(remus_buf_len(&r->rw.dev), remus_buf_len(&s.dev));
	assert_memory_equal(remus_buf_data(&r->rw.dev), remus_buf_data(&s.dev),
			    remus_buf_len(&s.dev));
	if (first)
		assert_int_equal(r->rw.standby_sid, RAM_SID);
	assert_int_equal(r->rw.pages_kept, 5);
	assert_int_equal(r->rw.zero_kept, 3);
	remus_migstream_rewriter_release(&r->rw);
	free(r);
	sb_release(&s);
}

/* remus_migstream_read_fd(): the stream read from a socket in small reads
 * gives the same tokens as feeding it; the socket's EOF is reported as 0,
 * and a bound on buffered bytes is enforced as for feed. */
static void test_read_fd(void **state)
{
	struct sb s;
	struct run *whole = calloc(1, sizeof(*whole)), *r = calloc(1, sizeof(*r));
	struct remus_migstream_opts small = { .max_buffered = 64 };
	struct remus_migstream *p = NULL;
	int sv[2];
	ssize_t got;

	(void)state;
	build_stream(&s);
	assert_int_equal(parse(remus_buf_data(&s.in), remus_buf_len(&s.in), 0, 0, whole, NULL), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(remus_write_all(sv[1], remus_buf_data(&s.in), remus_buf_len(&s.in)), 0);
	close(sv[1]);
	assert_int_equal(remus_migstream_new(NULL, &p), 0);
	while ((got = remus_migstream_read_fd(p, sv[0], 333)) > 0) {
		assert_true(got <= 333);
		assert_true(drain(p, r) >= 0);
	}
	assert_int_equal(got, 0);
	remus_migstream_finish(p);
	assert_int_equal(drain(p, r), 0);
	assert_true(remus_migstream_complete(p));
	assert_same_tokens(whole, r);
	assert_int_equal(remus_migstream_read_fd(p, sv[0], 10), -EINVAL);
	remus_migstream_free(p);
	close(sv[0]);

	/* Over the bound: sticky -EMSGSIZE with the usual message. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(remus_write_all(sv[1], remus_buf_data(&s.in), 200), 0);
	assert_int_equal(remus_migstream_new(&small, &p), 0);
	while ((got = remus_migstream_read_fd(p, sv[0], 50)) > 0)
		;
	assert_int_equal(got, -EMSGSIZE);
	assert_non_null(strstr(remus_migstream_error(p), "buffered"));
	assert_int_equal(remus_migstream_read_fd(p, sv[0], 50), -EMSGSIZE);
	remus_migstream_free(p);
	close(sv[0]);
	close(sv[1]);
	free(whole);
	free(r);
	sb_release(&s);
}

static void test_rewrite_first_epoch(void **state)
{
	(void)state;
	check_rewrite(true, 0);
	check_rewrite(true, 5);
}

static void test_rewrite_later_epoch(void **state)
{
	(void)state;
	check_rewrite(false, 0);
	check_rewrite(false, 3);
}

/* Drops pc.ram page 0 and zero page 2: the CONTINUE records after them
 * must name their block again, the others stay as they were. */
static int drop_some(void *opaque, const struct remus_migstream_token *t)
{
	int *calls = opaque;

	(*calls)++;
	if (strcmp(t->block->name, "pc.ram") == 0 &&
	    (t->page_offset == 0 || t->page_offset == 2 * PAGE))
		return 0;
	return 1;
}

static void test_rewrite_filter_renames_block(void **state)
{
	struct sb s, w;
	struct run *r = calloc(1, sizeof(*r));
	struct remus_buf t;
	const uint8_t *d;
	size_t pstart, n;
	int calls = 0;

	(void)state;
	build_stream(&s);
	r->rewrite = true;
	remus_migstream_rewriter_init(&r->rw, false, LATER_SID, drop_some, &calls);
	assert_int_equal(parse(remus_buf_data(&s.in), remus_buf_len(&s.in), 0, 0, r, NULL), 0);
	assert_int_equal(calls, 8);
	assert_int_equal(r->rw.pages_dropped, 1);
	assert_int_equal(r->rw.zero_dropped, 1);

	/* Expected: the later-epoch bytes with the PART's first three records
	 * replaced by one non-CONTINUE record for pc.ram page 1. */
	sb_init(&w);
	remus_buf_init(&t, 0);
	page_rec(&w, "pc.ram", 1 * PAGE, false, false, 2);
	d = remus_buf_data(&s.later);
	n = remus_buf_len(&s.later);
	/* START->PART(5) + MEM_SIZE(8+7+8+9+8) + EOS(8) + footer(5) + PART(5) */
	pstart = 5 + 40 + 8 + 5 + 5;
	put(&t, d, pstart);
	put(&t, remus_buf_data(&w.later), remus_buf_len(&w.later));
	/* skip page 0 (8+7+PAGE), page 1 cont (8+PAGE), zero 2 cont (9) */
	pstart += 8 + 7 + PAGE + 8 + PAGE + 9;
	put(&t, d + pstart, n - pstart);
	assert_int_equal(remus_buf_len(&r->rw.out), remus_buf_len(&t));
	assert_memory_equal(remus_buf_data(&r->rw.out), remus_buf_data(&t), remus_buf_len(&t));
	remus_buf_release(&t);
	sb_release(&w);
	remus_migstream_rewriter_release(&r->rw);
	free(r);
	sb_release(&s);
}

static void test_failover_tail(void **state)
{
	static const uint8_t dev[] = { 0x04, 0, 0, 0, 3, 1, 'x', 0, 0, 0, 0, 0, 0, 0, 1,
				       0x7e, 0, 0, 0, 3, 0x00 };
	static const uint8_t want_head[] = { 0x03, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0x10,
					     0x7e, 0, 0, 0, 9 };
	static const uint8_t want_tail[] = { 0x06, 0, 0, 0, 2, '{', '}' };
	struct remus_buf out;
	const uint8_t *o;

	(void)state;
	remus_buf_init(&out, 0);
	put(&out, "x", 1);
	assert_int_equal(remus_migstream_build_tail(&out, 9, dev, sizeof(dev)), 0);
	o = remus_buf_data(&out);
	assert_int_equal(remus_buf_len(&out),
			 1 + sizeof(want_head) + sizeof(dev) + sizeof(want_tail));
	assert_memory_equal(o + 1, want_head, sizeof(want_head));
	assert_memory_equal(o + 1 + sizeof(want_head), dev, sizeof(dev));
	assert_memory_equal(o + 1 + sizeof(want_head) + sizeof(dev), want_tail,
			    sizeof(want_tail));
	/* a device part that does not end in EOF is refused, @out untouched */
	assert_int_equal(remus_migstream_build_tail(&out, 9, dev, sizeof(dev) - 1), -EINVAL);
	assert_int_equal(remus_migstream_build_tail(&out, 9, dev, 0), -EINVAL);
	assert_int_equal(remus_buf_len(&out),
			 1 + sizeof(want_head) + sizeof(dev) + sizeof(want_tail));
	remus_buf_release(&out);
}

/* The tail appended to the rewritten first epoch gives a stream that the
 * parser accepts as one complete migration. */
static void test_standby_stream_with_tail_parses(void **state)
{
	struct sb s;
	struct run *r = calloc(1, sizeof(*r)), *r2 = calloc(1, sizeof(*r2));
	struct remus_buf standby;

	(void)state;
	build_stream(&s);
	r->rewrite = true;
	remus_migstream_rewriter_init(&r->rw, true, 0, NULL, NULL);
	assert_int_equal(parse(remus_buf_data(&s.in), remus_buf_len(&s.in), 0, 0, r, NULL), 0);
	remus_buf_init(&standby, 0);
	put(&standby, remus_buf_data(&r->rw.out), remus_buf_len(&r->rw.out));
	assert_int_equal(remus_migstream_build_tail(&standby, r->rw.standby_sid,
						    remus_buf_data(&r->rw.dev),
						    remus_buf_len(&r->rw.dev)),
			 0);
	assert_int_equal(parse(remus_buf_data(&standby), remus_buf_len(&standby), 0, 0, r2, NULL),
			 0);
	assert_int_equal(r2->toks[r2->n - 1].kind, REMUS_MS_VMDESC);
	assert_int_equal(r2->toks[r2->n - 2].kind, REMUS_MS_DEVICE);
	assert_int_equal(r2->toks[r2->n - 2].datalen, remus_buf_len(&s.dev));
	remus_buf_release(&standby);
	remus_migstream_rewriter_release(&r->rw);
	free(r);
	free(r2);
	sb_release(&s);
}

/* ---- errors ---- */

static struct remus_buf header_buf(void)
{
	struct remus_buf b;

	remus_buf_init(&b, 0);
	put32(&b, REMUS_MIG_MAGIC);
	put32(&b, 3);
	return b;
}

/* Parses @b whole, without closing the channel; expects @want and a
 * message containing @msg. */
static void expect_error(struct remus_buf *b, int want, const char *msg,
			 const struct remus_migstream_opts *opts)
{
	struct remus_migstream *p = NULL;
	struct remus_migstream_token t;
	int rc;

	assert_int_equal(remus_migstream_new(opts, &p), 0);
	assert_int_equal(remus_migstream_feed(p, remus_buf_data(b), remus_buf_len(b)), 0);
	while ((rc = remus_migstream_next(p, &t)) == 1)
		;
	assert_int_equal(rc, want);
	if (!strstr(remus_migstream_error(p), msg))
		fail_msg("error '%s' does not mention '%s'", remus_migstream_error(p), msg);
	/* sticky */
	assert_int_equal(remus_migstream_next(p, &t), want);
	assert_int_equal(remus_migstream_feed(p, "x", 1), want);
	remus_migstream_free(p);
	remus_buf_release(b);
}

static void start_ram(struct remus_buf *b, uint64_t total)
{
	put8(b, 0x01);
	put32(b, RAM_SID);
	putstr8(b, "ram");
	put32(b, 0);
	put32(b, 4);
	put64(b, total | 0x4);
}

/* The standby's own stream, parsed from its middle: a later epoch's bytes
 * with `continued` (no header, the RAM section known) give the same
 * records as in one whole stream; a continued parser refuses what only a
 * stream's beginning may carry.  A cut section is closed with EOS and the
 * footer, or the footer alone after its EOS. */
static void test_continued_stream_and_cut(void **state)
{
	struct remus_migstream_opts o = { .continued = true, .ram_sid = LATER_SID };
	struct remus_migstream *p = NULL;
	struct remus_migstream_token t;
	struct run *r = calloc(1, sizeof(*r));
	struct remus_buf b, e;
	struct sb s;
	int rc, n = 0, parts = 0;
	static const uint8_t cut_eos[] = { 0, 0, 0, 0, 0, 0, 0, 0x10, 0x7e, 0, 0, 0, LATER_SID };

	(void)state;
	build_stream(&s);
	r->rewrite = true;
	remus_migstream_rewriter_init(&r->rw, false, LATER_SID, NULL, NULL);
	assert_int_equal(parse(remus_buf_data(&s.in), remus_buf_len(&s.in), 0, 0, r, NULL), 0);
	assert_int_equal(remus_migstream_new(&o, &p), 0);
	assert_int_equal(remus_migstream_feed(p, remus_buf_data(&r->rw.out),
					      remus_buf_len(&r->rw.out)), 0);
	while ((rc = remus_migstream_next(p, &t)) == 1) {
		if (!n++)
			assert_int_equal(t.kind, REMUS_MS_PART);
		parts += t.kind == REMUS_MS_PART;
		assert_true(t.kind != REMUS_MS_HEADER && t.kind != REMUS_MS_START);
	}
	assert_int_equal(rc, 0);
	assert_true(parts >= 2);
	assert_int_equal(remus_migstream_offset(p), remus_buf_len(&r->rw.out));
	remus_migstream_free(p);

	/* what only the start of a stream may carry */
	b = header_buf();
	expect_error(&b, -EBADMSG, "unknown section type 0x51", &o);
	remus_buf_init(&b, 0);
	start_ram(&b, 4096);
	expect_error(&b, -EBADMSG, "second START(ram)", &o);
	remus_buf_init(&b, 0);
	put8(&b, 0x02);
	put32(&b, LATER_SID + 1);
	expect_error(&b, -EBADMSG, "unknown section id", &o);

	/* closing a cut section */
	remus_buf_init(&e, 0);
	put(&e, "x", 1);
	assert_int_equal(remus_migstream_build_cut(&e, LATER_SID, false), 0);
	assert_int_equal(remus_buf_len(&e), 1 + sizeof(cut_eos));
	assert_memory_equal(remus_buf_data(&e) + 1, cut_eos, sizeof(cut_eos));
	remus_buf_reset(&e);
	assert_int_equal(remus_migstream_build_cut(&e, LATER_SID, true), 0);
	assert_int_equal(remus_buf_len(&e), 5);
	assert_memory_equal(remus_buf_data(&e), cut_eos + 8, 5);
	remus_buf_release(&e);
	remus_migstream_rewriter_release(&r->rw);
	free(r);
	sb_release(&s);
}

/* The tail in three parts is the tail in one. */
static void test_failover_tail_in_parts(void **state)
{
	static const uint8_t dev[] = { 0x04, 0, 0, 0, 3, 1, 'x', 0, 0, 0, 0, 0, 0, 0, 1,
				       0x7e, 0, 0, 0, 3, 0x00 };
	struct remus_buf one, three;

	(void)state;
	remus_buf_init(&one, 0);
	remus_buf_init(&three, 0);
	assert_int_equal(remus_migstream_build_tail(&one, 9, dev, sizeof(dev)), 0);
	assert_int_equal(remus_migstream_build_tail_open(&three, 9), 0);
	put(&three, dev, sizeof(dev));
	assert_int_equal(remus_migstream_build_tail_close(&three), 0);
	assert_int_equal(remus_buf_len(&one), remus_buf_len(&three));
	assert_memory_equal(remus_buf_data(&one), remus_buf_data(&three), remus_buf_len(&one));
	remus_buf_release(&one);
	remus_buf_release(&three);
}


static void test_error_bad_magic(void **state)
{
	struct remus_buf b;

	(void)state;
	remus_buf_init(&b, 0);
	put32(&b, 0x5145564e);
	expect_error(&b, -EBADMSG, "bad magic", NULL);
	remus_buf_init(&b, 0);
	put32(&b, REMUS_MIG_MAGIC);
	put32(&b, 2);
	expect_error(&b, -EBADMSG, "version 2", NULL);
}

static void test_error_unknown_section_type(void **state)
{
	struct remus_buf b = header_buf();

	(void)state;
	put8(&b, 0x09);
	expect_error(&b, -EBADMSG, "offset 8: unknown section type 0x09", NULL);
	b = header_buf();
	put8(&b, 0x06); /* vmdescription without EOF */
	expect_error(&b, -EBADMSG, "unknown section type 0x06", NULL);
}

static void test_error_oversized(void **state)
{
	struct remus_buf b = header_buf();
	struct remus_migstream_opts o = { .max_ram = 1 << 20 };

	(void)state;
	put8(&b, 0x07);
	put32(&b, 100000); /* machine name */
	expect_error(&b, -EMSGSIZE, "length out of bounds", NULL);

	b = header_buf();
	put8(&b, 0x07);
	put32(&b, 2);
	put(&b, "pc", 2);
	put8(&b, 0x05);
	putstr8(&b, "configuration/capabilities");
	put32(&b, 1);
	put32(&b, 1000000); /* capability count */
	expect_error(&b, -EMSGSIZE, "capabilities", NULL);

	b = header_buf();
	start_ram(&b, 2u << 20);
	expect_error(&b, -EMSGSIZE, "MEM_SIZE total", &o);

	b = header_buf();
	start_ram(&b, 2 * PAGE);
	putstr8(&b, "pc.ram");
	put64(&b, 3 * PAGE); /* more than the total */
	expect_error(&b, -EBADMSG, "does not fit", NULL);

	b = header_buf();
	put8(&b, 0x08);
	put16(&b, 2);
	put16(&b, 60000); /* PING is 4 bytes */
	expect_error(&b, -EBADMSG, "command 2 with length 60000", NULL);

	b = header_buf();
	put8(&b, 0x08);
	put16(&b, 7); /* PACKAGED: postcopy */
	put16(&b, 4);
	expect_error(&b, -EBADMSG, "unsupported command 7", NULL);
}

static void test_error_page_size_mismatch(void **state)
{
	struct remus_buf b = header_buf();

	(void)state;
	put8(&b, 0x07);
	put32(&b, 2);
	put(&b, "pc", 2);
	put8(&b, 0x05);
	putstr8(&b, "configuration/target-page-bits");
	put32(&b, 1);
	put32(&b, 13);
	put8(&b, 0x01);
	expect_error(&b, -EBADMSG, "page-size mismatch", NULL);

	b = header_buf();
	put8(&b, 0x07);
	put32(&b, 2);
	put(&b, "pc", 2);
	put8(&b, 0x05);
	putstr8(&b, "configuration/frobnicate");
	put32(&b, 1);
	expect_error(&b, -EBADMSG, "unknown configuration subsection", NULL);
}

static void test_error_part_unknown_sid(void **state)
{
	struct remus_buf b = header_buf();

	(void)state;
	put8(&b, 0x02);
	put32(&b, 9);
	expect_error(&b, -EBADMSG, "PART for unknown section id 9", NULL);

	b = header_buf();
	start_ram(&b, 0);
	put64(&b, 0x10);
	put8(&b, 0x7e);
	put32(&b, RAM_SID);
	put8(&b, 0x03);
	put32(&b, RAM_SID + 1);
	expect_error(&b, -EBADMSG, "END for unknown section id 3", NULL);

	b = header_buf();
	put8(&b, 0x01);
	put32(&b, 5);
	putstr8(&b, "block");
	put32(&b, 0);
	put32(&b, 1);
	expect_error(&b, -EBADMSG, "only ram is supported", NULL);
}

static void test_error_ram_records(void **state)
{
	struct remus_buf b;

	(void)state;
	b = header_buf();
	start_ram(&b, PAGE);
	putstr8(&b, "pc.ram");
	put64(&b, PAGE);
	put64(&b, 0x40); /* XBZRLE */
	expect_error(&b, -EBADMSG, "unsupported RAM record flags 0x040", NULL);

	b = header_buf();
	start_ram(&b, PAGE);
	putstr8(&b, "pc.ram");
	put64(&b, PAGE);
	put64(&b, 0x22); /* ZERO | CONTINUE with no block yet */
	put8(&b, 0);
	expect_error(&b, -EBADMSG, "CONTINUE record with no previous block", NULL);

	b = header_buf();
	start_ram(&b, PAGE);
	putstr8(&b, "pc.ram");
	put64(&b, PAGE);
	put64(&b, PAGE | 0x2); /* beyond the block */
	putstr8(&b, "pc.ram");
	put8(&b, 0);
	expect_error(&b, -EBADMSG, "beyond block 'pc.ram'", NULL);

	b = header_buf();
	start_ram(&b, PAGE);
	putstr8(&b, "pc.ram");
	put64(&b, PAGE);
	put64(&b, 0x8);
	putstr8(&b, "nope");
	expect_error(&b, -EBADMSG, "unknown block 'nope'", NULL);

	b = header_buf();
	start_ram(&b, 0);
	put64(&b, 0x10);
	put8(&b, 0x04); /* FULL before the footer */
	put32(&b, 1);
	expect_error(&b, -EBADMSG, "expected a section footer", NULL);

	b = header_buf();
	start_ram(&b, 0);
	put64(&b, 0x10);
	put8(&b, 0x7e);
	put32(&b, RAM_SID);
	put8(&b, 0x04); /* FULL while the RAM section is still open */
	expect_error(&b, -EBADMSG, "before END(ram)", NULL);
}

/* Every proper prefix of a valid stream is "need more", never an error;
 * closing the channel there is -EPIPE. */
static void test_truncated_needs_more(void **state)
{
	struct sb s;
	size_t n, k;

	(void)state;
	build_stream(&s);
	n = remus_buf_len(&s.in);
	for (k = 0; k < n; k++) {
		struct remus_migstream *p = NULL;
		struct remus_migstream_token t;
		int rc;

		assert_int_equal(remus_migstream_new(NULL, &p), 0);
		assert_int_equal(remus_migstream_feed(p, remus_buf_data(&s.in), k), 0);
		while ((rc = remus_migstream_next(p, &t)) == 1)
			;
		assert_int_equal(rc, 0);
		assert_false(remus_migstream_complete(p));
		assert_string_equal(remus_migstream_error(p), "");
		remus_migstream_finish(p);
		while ((rc = remus_migstream_next(p, &t)) == 1)
			;
		/* A prefix cut right after a look-alike "00 06 len {..}" in
		 * the device state is a complete stream once the channel
		 * closes there; any other prefix is an error. */
		if (rc == 0) {
			assert_true(remus_migstream_complete(p));
			assert_int_equal(remus_buf_data(&s.in)[k - 1], '}');
		} else if (rc != -EPIPE && rc != -EBADMSG) {
			fail_msg("prefix %zu: rc %d", k, rc);
		}
		remus_migstream_free(p);
	}
	sb_release(&s);
}

/* The device part's end is only a hint before the channel closes. */
static void test_dev_tail_hint(void **state)
{
	struct sb s;
	struct remus_migstream *p = NULL;
	struct remus_migstream_token t;
	const uint8_t *d;
	size_t n, fake_end;
	bool seen_early = false;
	int rc;

	(void)state;
	build_stream(&s);
	d = remus_buf_data(&s.in);
	n = remus_buf_len(&s.in);
	assert_int_equal(remus_migstream_new(NULL, &p), 0);
	/* feed up to just after the look-alike "00 06 00000002 {}" in the timer
	 * section: that prefix ends like a stream, but is not one */
	fake_end = (size_t)((const uint8_t *)memmem(d, n, "\x00\x06\x00\x00\x00\x02{}", 8) - d) + 8;
	assert_int_equal(remus_migstream_feed(p, d, fake_end), 0);
	while ((rc = remus_migstream_next(p, &t)) == 1)
		;
	assert_int_equal(rc, 0);
	seen_early = remus_migstream_dev_tail_seen(p);
	assert_true(seen_early); /* the hint can be fooled ... */
	assert_int_equal(remus_migstream_feed(p, d + fake_end, n - fake_end), 0);
	assert_int_equal(remus_migstream_next(p, &t), 0);
	assert_true(remus_migstream_dev_tail_seen(p));
	remus_migstream_finish(p); /* ... the channel EOF decides */
	assert_int_equal(remus_migstream_next(p, &t), 1);
	assert_int_equal(t.kind, REMUS_MS_DEVICE);
	assert_int_equal(t.data_len, remus_buf_len(&s.dev));
	assert_string_equal(t.idstr, "timer");
	assert_int_equal(t.section_id, 3);
	assert_int_equal(remus_migstream_next(p, &t), 1);
	assert_int_equal(t.kind, REMUS_MS_VMDESC);
	assert_int_equal(t.end, n);
	assert_memory_equal(t.data, vmdesc_json, strlen(vmdesc_json));
	assert_int_equal(remus_migstream_next(p, &t), 0);
	assert_true(remus_migstream_complete(p));
	remus_migstream_free(p);
	sb_release(&s);
}

static void test_channel_closed_without_vmdesc(void **state)
{
	struct remus_buf b = header_buf();
	struct remus_migstream *p = NULL;
	struct remus_migstream_token t;
	struct remus_migstream_opts o = { .no_vmdesc = true };

	(void)state;
	put8(&b, 0x04);
	put32(&b, 1);
	putstr8(&b, "dev");
	put32(&b, 0);
	put32(&b, 1);
	put(&b, "\x01\x02", 2);
	assert_int_equal(remus_migstream_new(NULL, &p), 0);
	assert_int_equal(remus_migstream_feed(p, remus_buf_data(&b), remus_buf_len(&b)), 0);
	remus_migstream_finish(p);
	assert_int_equal(remus_migstream_next(p, &t), 1);
	assert_int_equal(remus_migstream_next(p, &t), -EBADMSG);
	assert_non_null(strstr(remus_migstream_error(p), "does not end in EOF + vmdescription"));
	remus_migstream_free(p);

	/* without a vmdescription (xen-save-devices-state, suppress_vmdesc) */
	put8(&b, 0x00);
	assert_int_equal(remus_migstream_new(&o, &p), 0);
	assert_int_equal(remus_migstream_feed(p, remus_buf_data(&b), remus_buf_len(&b)), 0);
	remus_migstream_finish(p);
	assert_int_equal(remus_migstream_next(p, &t), 1);
	assert_int_equal(remus_migstream_next(p, &t), 1);
	assert_int_equal(t.kind, REMUS_MS_DEVICE);
	assert_int_equal(t.end, remus_buf_len(&b));
	assert_int_equal(remus_migstream_next(p, &t), 0);
	assert_true(remus_migstream_complete(p));
	remus_migstream_free(p);
	remus_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_stream_tokens),
		cmocka_unit_test(test_every_chunk_boundary),
		cmocka_unit_test(test_read_fd),
		cmocka_unit_test(test_rewrite_first_epoch),
		cmocka_unit_test(test_rewrite_later_epoch),
		cmocka_unit_test(test_rewrite_filter_renames_block),
		cmocka_unit_test(test_failover_tail),
		cmocka_unit_test(test_failover_tail_in_parts),
		cmocka_unit_test(test_continued_stream_and_cut),
		cmocka_unit_test(test_standby_stream_with_tail_parses),
		cmocka_unit_test(test_error_bad_magic),
		cmocka_unit_test(test_error_unknown_section_type),
		cmocka_unit_test(test_error_oversized),
		cmocka_unit_test(test_error_page_size_mismatch),
		cmocka_unit_test(test_error_part_unknown_sid),
		cmocka_unit_test(test_error_ram_records),
		cmocka_unit_test(test_truncated_needs_more),
		cmocka_unit_test(test_dev_tail_hint),
		cmocka_unit_test(test_channel_closed_without_vmdesc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
