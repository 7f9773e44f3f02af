// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The filter-redirector frame reader (netbuffer/frame.c): the same frames
 * come out however the stream is cut into reads (every split point, byte
 * by byte), malformed lengths are dropped and counted without losing the
 * frames after them, the vnet_hdr word is read only when configured, and
 * the encoder writes what the reader reads.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/wire.h"
#include "netbuffer/frame.h"

/* What the callback saw: frames concatenated as "len vnet bytes". */
struct seen {
	struct remus_buf log;
	unsigned frames;
};

static void on_frame(void *opaque, const uint8_t *frame, uint32_t len, uint32_t vnet)
{
	struct seen *s = opaque;
	uint8_t hdr[8];

	remus_put_be32(hdr, len);
	remus_put_be32(hdr + 4, vnet);
	assert_int_equal(remus_buf_append(&s->log, hdr, 8), 0);
	assert_int_equal(remus_buf_append(&s->log, frame, len), 0);
	s->frames++;
}

static void put_raw(struct remus_buf *b, bool vnet, uint32_t len, uint32_t vnet_len,
		    uint8_t fill, uint32_t body)
{
	uint8_t hdr[8];
	size_t i;

	remus_put_be32(hdr, len);
	remus_put_be32(hdr + 4, vnet_len);
	assert_int_equal(remus_buf_append(b, hdr, vnet ? 8 : 4), 0);
	for (i = 0; i < body; i++)
		assert_int_equal(remus_buf_append(b, &(uint8_t){ (uint8_t)(fill + i) }, 1), 0);
}

/* Feeds @stream cut at @cut (0: whole; SIZE_MAX: byte by byte). */
static void run(bool vnet, uint32_t max, const struct remus_buf *stream, size_t cut,
		struct seen *s, struct remus_nbf_reader *r)
{
	const uint8_t *p = remus_buf_data(stream);
	size_t n = remus_buf_len(stream), i;

	remus_buf_init(&s->log, 0);
	s->frames = 0;
	assert_int_equal(remus_nbf_reader_init(r, vnet, max), 0);
	if (cut == SIZE_MAX) {
		for (i = 0; i < n; i++)
			remus_nbf_reader_feed(r, p + i, 1, on_frame, s);
	} else {
		remus_nbf_reader_feed(r, p, cut, on_frame, s);
		remus_nbf_reader_feed(r, p + cut, n - cut, on_frame, s);
	}
}

/* Every split point and byte-by-byte give what one read gives. */
static void check_all_cuts(bool vnet, uint32_t max, const struct remus_buf *stream,
			   unsigned want_frames, uint64_t want_malformed)
{
	struct remus_nbf_reader r;
	struct seen whole, part;
	size_t cut;

	run(vnet, max, stream, 0, &whole, &r);
	assert_int_equal(whole.frames, want_frames);
	assert_int_equal(r.malformed, want_malformed);
	assert_true(remus_nbf_reader_idle(&r));
	remus_nbf_reader_release(&r);
	for (cut = 1; cut <= remus_buf_len(stream); cut++) {
		run(vnet, max, stream, cut == remus_buf_len(stream) ? SIZE_MAX : cut, &part, &r);
		assert_int_equal(part.frames, want_frames);
		assert_int_equal(r.malformed, want_malformed);
		assert_int_equal(r.frames, want_frames);
		assert_true(remus_nbf_reader_idle(&r));
		assert_int_equal(remus_buf_len(&part.log), remus_buf_len(&whole.log));
		assert_memory_equal(remus_buf_data(&part.log), remus_buf_data(&whole.log),
				    remus_buf_len(&whole.log));
		remus_nbf_reader_release(&r);
		remus_buf_release(&part.log);
	}
	remus_buf_release(&whole.log);
}

static void test_split_everywhere(void **state)
{
	struct remus_buf st;
	const uint8_t *log;
	struct remus_nbf_reader r;
	struct seen s;

	remus_buf_init(&st, 0);
	put_raw(&st, true, 1, 0, 0x10, 1);
	put_raw(&st, true, 60, 12, 0x20, 60);
	put_raw(&st, true, 12, 12, 0x30, 12); /* header only: allowed */
	put_raw(&st, true, 300, 10, 0x40, 300);
	check_all_cuts(true, 0, &st, 4, 0);

	/* And the content is right, with the vnet_hdr_len of each. */
	run(true, 0, &st, 0, &s, &r);
	log = remus_buf_data(&s.log);
	assert_int_equal(remus_get_be32(log), 1);
	assert_int_equal(remus_get_be32(log + 4), 0);
	assert_int_equal(log[8], 0x10);
	log += 9;
	assert_int_equal(remus_get_be32(log), 60);
	assert_int_equal(remus_get_be32(log + 4), 12);
	assert_int_equal(log[8], 0x20);
	assert_int_equal(log[8 + 59], (uint8_t)(0x20 + 59));
	remus_nbf_reader_release(&r);
	remus_buf_release(&s.log);
	remus_buf_release(&st);
}

static void test_no_vnet_hdr(void **state)
{
	struct remus_buf st;
	struct remus_nbf_reader r;
	struct seen s;

	remus_buf_init(&st, 0);
	/* Without vnet_hdr_support the second word is frame data. */
	put_raw(&st, false, 8, 0, 0x50, 8);
	put_raw(&st, false, 3, 0, 0x60, 3);
	check_all_cuts(false, 0, &st, 2, 0);
	run(false, 0, &st, 0, &s, &r);
	assert_int_equal(remus_get_be32(remus_buf_data(&s.log)), 8);
	assert_int_equal(remus_get_be32(remus_buf_data(&s.log) + 4), 0);
	assert_int_equal(remus_buf_data(&s.log)[8], 0x50);
	remus_nbf_reader_release(&r);
	remus_buf_release(&s.log);
	remus_buf_release(&st);
}

static void test_malformed_resync(void **state)
{
	struct remus_buf st;
	struct remus_nbf_reader r;
	struct seen s;

	remus_buf_init(&st, 0);
	put_raw(&st, true, 5, 0, 0x01, 5);        /* good */
	put_raw(&st, true, 0, 0, 0, 0);           /* length 0 */
	put_raw(&st, true, 20, 21, 0x02, 20);     /* vnet_hdr_len > length: skipped */
	put_raw(&st, true, 100, 0, 0x03, 100);    /* over max (64): skipped */
	put_raw(&st, true, 64, 0, 0x04, 64);      /* exactly max: good */
	put_raw(&st, true, 0, 7, 0, 0);           /* length 0 with a vnet word */
	put_raw(&st, true, 7, 7, 0x05, 7);        /* good */
	check_all_cuts(true, 64, &st, 3, 4);
	run(true, 64, &st, 0, &s, &r);
	assert_int_equal(r.skipped_bytes, 120);
	/* The frames after each malformed one came through intact. */
	assert_int_equal(remus_buf_len(&s.log), 3 * 8 + 5 + 64 + 7);
	assert_int_equal(remus_buf_data(&s.log)[8 + 5 + 8], 0x04);
	assert_int_equal(remus_buf_data(&s.log)[8 + 5 + 8 + 64 + 8], 0x05);
	remus_nbf_reader_release(&r);
	remus_buf_release(&s.log);
	remus_buf_release(&st);
}

static void test_oversize_default_max(void **state)
{
	struct remus_buf st;

	/* QEMU's NET_BUFSIZE is accepted, one more byte is not. */
	remus_buf_init(&st, 0);
	put_raw(&st, true, REMUS_NBF_MAX_FRAME, 0, 1, REMUS_NBF_MAX_FRAME);
	put_raw(&st, true, REMUS_NBF_MAX_FRAME + 1, 0, 2, REMUS_NBF_MAX_FRAME + 1);
	put_raw(&st, true, 2, 0, 3, 2);
	{
		struct remus_nbf_reader r;
		struct seen s;

		run(true, 0, &st, 0, &s, &r);
		assert_int_equal(s.frames, 2);
		assert_int_equal(r.malformed, 1);
		assert_int_equal(r.skipped_bytes, REMUS_NBF_MAX_FRAME + 1);
		remus_nbf_reader_release(&r);
		remus_buf_release(&s.log);
		/* Split inside the skipped frame, byte by byte through it. */
		run(true, 0, &st, SIZE_MAX, &s, &r);
		assert_int_equal(s.frames, 2);
		assert_int_equal(r.malformed, 1);
		remus_nbf_reader_release(&r);
		remus_buf_release(&s.log);
	}
	remus_buf_release(&st);
}

static void test_partial_not_idle(void **state)
{
	struct remus_nbf_reader r;
	struct seen s = { .frames = 0 };
	uint8_t hdr[8];

	remus_buf_init(&s.log, 0);
	assert_int_equal(remus_nbf_reader_init(&r, true, 0), 0);
	remus_put_be32(hdr, 4);
	remus_put_be32(hdr + 4, 0);
	remus_nbf_reader_feed(&r, hdr, 3, on_frame, &s);
	assert_false(remus_nbf_reader_idle(&r));
	remus_nbf_reader_feed(&r, hdr + 3, 5, on_frame, &s);
	assert_false(remus_nbf_reader_idle(&r));
	remus_nbf_reader_feed(&r, (const uint8_t *)"abcd", 4, on_frame, &s);
	assert_true(remus_nbf_reader_idle(&r));
	assert_int_equal(s.frames, 1);
	remus_nbf_reader_release(&r);
	remus_nbf_reader_release(&r);
	remus_buf_release(&s.log);
}

static void test_encode_roundtrip(void **state)
{
	struct remus_buf out;
	struct remus_nbf_reader r;
	struct seen s;
	uint8_t frame[100];

	memset(frame, 0xab, sizeof(frame));
	remus_buf_init(&out, 0);
	assert_int_equal(remus_nbf_encode(&out, true, frame, 100, 12), 0);
	assert_int_equal(remus_nbf_encode(&out, true, frame, 1, 0), 0);
	assert_int_equal(remus_buf_len(&out), 8 + 100 + 8 + 1);
	/* Nothing QEMU's reader would choke on is written. */
	assert_int_equal(remus_nbf_encode(&out, true, frame, 0, 0), -EINVAL);
	assert_int_equal(remus_nbf_encode(&out, true, frame, 10, 11), -EINVAL);
	assert_int_equal(remus_nbf_encode(&out, true, frame, REMUS_NBF_MAX_FRAME + 1, 0), -EINVAL);
	assert_int_equal(remus_buf_len(&out), 8 + 100 + 8 + 1);
	run(true, 0, &out, 0, &s, &r);
	assert_int_equal(s.frames, 2);
	assert_int_equal(remus_get_be32(remus_buf_data(&s.log) + 4), 12);
	assert_memory_equal(remus_buf_data(&s.log) + 8, frame, 100);
	remus_nbf_reader_release(&r);
	remus_buf_release(&s.log);
	/* Without vnet_hdr the word is not written. */
	remus_buf_reset(&out);
	assert_int_equal(remus_nbf_encode(&out, false, frame, 3, 0), 0);
	assert_int_equal(remus_buf_len(&out), 4 + 3);
	/* A full buffer leaves @out unchanged. */
	remus_buf_release(&out);
	remus_buf_init(&out, 10);
	assert_int_equal(remus_nbf_encode(&out, true, frame, 3, 0), -EMSGSIZE);
	assert_int_equal(remus_buf_len(&out), 0);
	remus_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_no_vnet_hdr),
		cmocka_unit_test(test_malformed_resync),
		cmocka_unit_test(test_oversize_default_max),
		cmocka_unit_test(test_partial_not_idle),
		cmocka_unit_test(test_encode_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
