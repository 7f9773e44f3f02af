// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Bounded buffer: growth, the limit (failure leaves contents unchanged),
 * consume + lazy compaction, fd reads and writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"

static void test_append_consume(void **state)
{
	struct remus_buf b;
	uint8_t big[1000];
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	remus_buf_init(&b, 0);
	assert_null(remus_buf_data(&b));
	assert_int_equal(remus_buf_append(&b, big, sizeof(big)), 0);
	assert_int_equal(remus_buf_len(&b), sizeof(big));
	remus_buf_consume(&b, 10);
	assert_int_equal(remus_buf_len(&b), sizeof(big) - 10);
	assert_memory_equal(remus_buf_data(&b), big + 10, sizeof(big) - 10);
	/* Appends after a consume keep order across compaction. */
	for (i = 0; i < 50; i++)
		assert_int_equal(remus_buf_append(&b, big, sizeof(big)), 0);
	assert_memory_equal(remus_buf_data(&b), big + 10, sizeof(big) - 10);
	assert_memory_equal(remus_buf_data(&b) + sizeof(big) - 10, big, sizeof(big));
	remus_buf_consume(&b, SIZE_MAX);
	assert_int_equal(remus_buf_len(&b), 0);
	remus_buf_release(&b);
	remus_buf_release(&b);
}

static void test_limit(void **state)
{
	struct remus_buf b;

	remus_buf_init(&b, 8);
	assert_int_equal(remus_buf_append(&b, "12345", 5), 0);
	assert_int_equal(remus_buf_append(&b, "6789", 4), -EMSGSIZE);
	assert_int_equal(remus_buf_len(&b), 5);
	assert_memory_equal(remus_buf_data(&b), "12345", 5);
	assert_int_equal(remus_buf_append(&b, "678", 3), 0);
	assert_int_equal(remus_buf_reserve(&b, 1), -EMSGSIZE);
	remus_buf_consume(&b, 4);
	/* Room freed by consume is usable up to the limit again. */
	assert_int_equal(remus_buf_append(&b, "abcd", 4), 0);
	assert_memory_equal(remus_buf_data(&b), "5678abcd", 8);
	remus_buf_release(&b);
}

static void test_tail_commit(void **state)
{
	struct remus_buf b;

	remus_buf_init(&b, 100);
	assert_int_equal(remus_buf_reserve(&b, 3), 0);
	assert_true(remus_buf_tailroom(&b) >= 3);
	memcpy(remus_buf_tail(&b), "xyz", 3);
	remus_buf_commit(&b, 3);
	assert_memory_equal(remus_buf_data(&b), "xyz", 3);
	remus_buf_reset(&b);
	assert_int_equal(remus_buf_len(&b), 0);
	remus_buf_release(&b);
}

static void test_fd_io(void **state)
{
	struct remus_buf in, out;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	remus_buf_init(&in, 6);
	remus_buf_init(&out, 0);
	assert_int_equal(remus_buf_read_fd(&in, sv[0], 64), -EAGAIN);
	assert_int_equal(remus_buf_append(&out, "hello world", 11), 0);
	assert_int_equal(remus_buf_write_fd(&out, sv[1]), 11);
	assert_int_equal(remus_buf_len(&out), 0);
	/* The limit caps the read; the rest stays in the socket. */
	assert_int_equal(remus_buf_read_fd(&in, sv[0], 64), 6);
	assert_int_equal(remus_buf_read_fd(&in, sv[0], 64), -EMSGSIZE);
	assert_memory_equal(remus_buf_data(&in), "hello ", 6);
	remus_buf_consume(&in, 6);
	assert_int_equal(remus_buf_read_fd(&in, sv[0], 64), 5);
	assert_memory_equal(remus_buf_data(&in), "world", 5);
	close(sv[1]);
	remus_buf_consume(&in, 5);
	assert_int_equal(remus_buf_read_fd(&in, sv[0], 64), 0);
	assert_int_equal(remus_buf_read_fd(&in, sv[0], 0), -EINVAL);
	close(sv[0]);
	remus_buf_release(&in);
	remus_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_consume),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_tail_commit),
		cmocka_unit_test(test_fd_io),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
