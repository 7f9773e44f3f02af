// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Socket helpers: unix listen/connect (stale socket replaced, a regular
 * file never clobbered, over-long paths refused), and fd passing.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/sock.h"

static char dir[] = "/tmp/remus-test-sock-XXXXXX";

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_listen_connect(void **state)
{
	char path[256];
	int l, c, a;

	snprintf(path, sizeof(path), "%s/s.sock", dir);
	l = remus_unix_listen(path, 4);
	assert_true(l >= 0);
	close(l);
	/* The socket file is stale now; listening again replaces it. */
	l = remus_unix_listen(path, 4);
	assert_true(l >= 0);
	c = remus_unix_connect(path, false);
	assert_true(c >= 0);
	a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	assert_true(fcntl(c, F_GETFD) & FD_CLOEXEC);
	close(a);
	close(c);
	close(l);
}

/* No umask makes a listening socket world-writable (connectable): an
 * NBD socket is a guest's disk. */
static void test_listen_mode(void **state)
{
	char path[256];
	struct stat st;
	mode_t old = umask(0);
	int l;

	snprintf(path, sizeof(path), "%s/m.sock", dir);
	l = remus_unix_listen(path, 4);
	umask(old);
	assert_true(l >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	close(l);
}

static void test_refuse_regular_file(void **state)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(remus_unix_listen(path, 1), -EEXIST);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(remus_unix_connect(path, false), -ECONNREFUSED);
}

static void test_errors(void **state)
{
	char longp[200];

	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(remus_unix_connect(longp, false), -ENAMETOOLONG);
	assert_int_equal(remus_unix_connect("/nonexistent/remus.sock", false), -ENOENT);
	assert_int_equal(remus_unix_connect("", true), -EINVAL);
}

static void test_tcp(void **state)
{
	uint16_t port = 0, again = 0;
	int l, l2, c, a;

	/* Port 0: the kernel picks one and we learn which. */
	l = remus_tcp_listen("127.0.0.1", 0, 4, &port);
	assert_true(l >= 0);
	assert_int_not_equal(port, 0);
	assert_true(fcntl(l, F_GETFL) & O_NONBLOCK);
	/* The port is taken: a second listener on it fails cleanly. */
	l2 = remus_tcp_listen("127.0.0.1", port, 4, &again);
	assert_int_equal(l2, -EADDRINUSE);
	c = remus_tcp_connect("127.0.0.1", port, false);
	assert_true(c >= 0);
	assert_true(fcntl(c, F_GETFD) & FD_CLOEXEC);
	a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	assert_int_equal(write(c, "hi", 2), 2);
	{
		char buf[2];

		assert_int_equal(read(a, buf, 2), 2);
		assert_memory_equal(buf, "hi", 2);
	}
	close(a);
	close(c);
	close(l);
	/* Nobody listens there any more: refused, or in progress when
	 * non-blocking (the error then comes through SO_ERROR). */
	assert_int_equal(remus_tcp_connect("127.0.0.1", port, false), -ECONNREFUSED);
	c = remus_tcp_connect("127.0.0.1", port, true);
	assert_true(c >= 0 || c == -ECONNREFUSED);
	if (c >= 0)
		close(c);
	assert_int_equal(remus_tcp_connect("no-such-host.invalid", 1, false), -EHOSTUNREACH);
	assert_int_equal(remus_tcp_listen("no-such-host.invalid", 0, 1, &port), -EADDRNOTAVAIL);
}

static void test_send_fd(void **state)
{
	char data[4];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int sv[2], p[2], got;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(remus_send_with_fd(sv[0], "ping", 4, p[1]), 4);
	assert_int_equal(remus_send_with_fd(sv[0], "", 0, p[1]), -EINVAL);
	assert_int_equal(recvmsg(sv[1], &msg, 0), 4);
	c = CMSG_FIRSTHDR(&msg);
	assert_non_null(c);
	assert_int_equal(c->cmsg_type, SCM_RIGHTS);
	memcpy(&got, CMSG_DATA(c), sizeof(int));
	/* The received fd is the pipe's write end: data arrives on p[0]. */
	assert_int_equal(remus_write_all(got, "ok", 2), 0);
	assert_int_equal(read(p[0], data, 2), 2);
	assert_memory_equal(data, "ok", 2);
	close(got);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

/* What a busy process has not read yet counts as a word from its peer. */
static void test_pending(void **state)
{
	int sv[2];
	char buf[100];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(remus_sock_pending(sv[1]), 0);
	assert_int_equal(write(sv[0], "heartbeat", 9), 9);
	assert_int_equal(remus_sock_pending(sv[1]), 9);
	assert_int_equal(read(sv[1], buf, 4), 4);
	assert_int_equal(remus_sock_pending(sv[1]), 5);
	assert_int_equal(remus_sock_pending(-1), 0);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_connect),
		cmocka_unit_test(test_listen_mode),
		cmocka_unit_test(test_refuse_regular_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_send_fd),
		cmocka_unit_test(test_pending),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
