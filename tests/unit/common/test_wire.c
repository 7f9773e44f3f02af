// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Sticky-error wire streams: round trip, big-endian layout, -ENODATA on
 * short input (so incremental parsers can rewind), bounded lengths, and
 * the first error winning on both sides.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/wire.h"

static void test_roundtrip_layout(void **state)
{
	static const uint8_t expect[] = {
		0xab, 0x12, 0x34, 0x00, 0x00, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04,
		0x05, 0x06, 0x07, 0x08, 'h', 'i',
	};
	struct remus_buf b;
	struct remus_wire_writer w;
	struct remus_wire_reader r;

	remus_buf_init(&b, 0);
	remus_wire_writer_init(&w, &b);
	remus_wire_put_u8(&w, 0xab);
	remus_wire_put_be16(&w, 0x1234);
	remus_wire_put_be32(&w, 4);
	remus_wire_put_be64(&w, 0x0102030405060708ull);
	remus_wire_put_bytes(&w, "hi", 2);
	assert_int_equal(remus_wire_writer_error(&w), 0);
	assert_int_equal(remus_buf_len(&b), sizeof(expect));
	assert_memory_equal(remus_buf_data(&b), expect, sizeof(expect));

	remus_wire_reader_init(&r, remus_buf_data(&b), remus_buf_len(&b));
	assert_int_equal(remus_wire_get_u8(&r), 0xab);
	assert_int_equal(remus_wire_get_be16(&r), 0x1234);
	assert_int_equal(remus_wire_get_len32(&r, 4), 4);
	assert_true(remus_wire_get_be64(&r) == 0x0102030405060708ull);
	assert_memory_equal(remus_wire_get_bytes(&r, 2), "hi", 2);
	assert_int_equal(remus_wire_reader_remaining(&r), 0);
	assert_int_equal(remus_wire_reader_error(&r), 0);
	remus_buf_release(&b);
}

static void test_short_input_is_enodata(void **state)
{
	static const uint8_t in[] = { 0x00, 0x00, 0x01 };
	struct remus_wire_reader r;

	remus_wire_reader_init(&r, in, sizeof(in));
	assert_int_equal(remus_wire_get_be32(&r), 0);
	assert_int_equal(remus_wire_reader_error(&r), -ENODATA);
	/* Sticky: later gets return zero and keep the first error. */
	assert_int_equal(remus_wire_get_u8(&r), 0);
	assert_null(remus_wire_get_bytes(&r, 1));
	remus_wire_reader_fail(&r, -EBADMSG);
	assert_int_equal(remus_wire_reader_error(&r), -ENODATA);
	/* A huge length must not wrap around the bounds check. */
	remus_wire_reader_init(&r, in, sizeof(in));
	assert_int_equal(remus_wire_get_u8(&r), 0);
	assert_null(remus_wire_get_bytes(&r, SIZE_MAX));
	assert_int_equal(remus_wire_reader_error(&r), -ENODATA);
}

static void test_len_bound(void **state)
{
	static const uint8_t in[] = { 0x00, 0x01, 0x00, 0x00, 0xff };
	struct remus_wire_reader r;

	remus_wire_reader_init(&r, in, sizeof(in));
	assert_int_equal(remus_wire_get_len32(&r, 0xffff), 0);
	assert_int_equal(remus_wire_reader_error(&r), -EMSGSIZE);
	assert_int_equal(remus_wire_get_u8(&r), 0);
}

static void test_writer_sticky(void **state)
{
	struct remus_buf b;
	struct remus_wire_writer w;

	remus_buf_init(&b, 5);
	remus_wire_writer_init(&w, &b);
	remus_wire_put_be32(&w, 1);
	remus_wire_put_be32(&w, 2); /* over the limit */
	remus_wire_put_u8(&w, 3);   /* would fit, but the error is sticky */
	assert_int_equal(remus_wire_writer_error(&w), -EMSGSIZE);
	assert_int_equal(remus_buf_len(&b), 4);
	remus_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_layout),
		cmocka_unit_test(test_short_input_is_enodata),
		cmocka_unit_test(test_len_bound),
		cmocka_unit_test(test_writer_sticky),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
