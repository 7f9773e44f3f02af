// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskrepl's NBD server on a real loop and unix socket: a session end to
 * end, the socket file rules (a live server is never displaced, a stale
 * socket is, a regular file is refused, free unlinks), pause, backpressure
 * from a client that does not read its replies (and that it does not
 * stall the others), a protocol error closing only its client, the client
 * limit, and a client hanging up mid-request.  The test is the client:
 * its socket is non-blocking and every wait runs the server's loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/loop.h"
#include "common/sock.h"
#include "diskrepl/nbd_server.h"
#include "support/nbd_wire.h"

#define DISK_SIZE (16u << 20)

static char dir[] = "/tmp/remus-test-nbd-XXXXXX";

struct sfx {
	struct remus_loop *loop;
	struct remus_nbd_server *s;
	struct ramdisk disk;
	char path[256];
};

static int group_setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
	struct sfx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	ramdisk_init(&f->disk, DISK_SIZE);
	snprintf(f->path, sizeof(f->path), "%s/nbd.sock", dir);
	assert_int_equal(remus_loop_new(&f->loop), 0);
	assert_int_equal(remus_nbd_server_new(f->loop, f->path, &f->s), 0);
	assert_int_equal(remus_nbd_server_add_export(f->s, &(struct remus_nbd_export){
		.name = "disk", .size = DISK_SIZE, .ops = ramdisk_ops(), .opaque = &f->disk }), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct sfx *f = *state;

	remus_nbd_server_free(f->s);
	remus_loop_free(f->loop);
	ramdisk_release(&f->disk);
	free(f);
	return 0;
}

static void spin(struct sfx *f, int ms)
{
	uint64_t end = remus_now_ms() + (uint64_t)ms;

	while (remus_now_ms() < end)
		assert_int_equal(remus_loop_run_once(f->loop, 5), 0);
}

static int client_connect(struct sfx *f)
{
	int fd = remus_unix_connect(f->path, true);

	assert_true(fd >= 0);
	return fd;
}

/* Reads exactly @n bytes, running the server meanwhile. */
static void cread(struct sfx *f, int fd, void *buf, size_t n)
{
	uint64_t end = remus_now_ms() + 10000;
	uint8_t *p = buf;

	while (n) {
		ssize_t r = recv(fd, p, n, MSG_DONTWAIT);

		if (r > 0) {
			p += r, n -= (size_t)r;
			continue;
		}
		if (r == 0)
			fail_msg("server closed the connection with %zu bytes still expected", n);
		assert_true(errno == EAGAIN);
		assert_true(remus_now_ms() < end);
		assert_int_equal(remus_loop_run_once(f->loop, 5), 0);
	}
}

static void cwrite(struct sfx *f, int fd, const void *buf, size_t n)
{
	uint64_t end = remus_now_ms() + 10000;
	const uint8_t *p = buf;

	while (n) {
		ssize_t r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r > 0) {
			p += r, n -= (size_t)r;
			continue;
		}
		assert_true(errno == EAGAIN);
		assert_true(remus_now_ms() < end);
		assert_int_equal(remus_loop_run_once(f->loop, 5), 0);
	}
}

static void cwrite_buf(struct sfx *f, int fd, struct remus_buf *b)
{
	cwrite(f, fd, remus_buf_data(b), remus_buf_len(b));
	remus_buf_reset(b);
}

/* True once the server closed @fd's connection (within 3 s). */
static bool closed_by_server(struct sfx *f, int fd)
{
	uint64_t end = remus_now_ms() + 3000;
	uint8_t junk[4096];

	while (remus_now_ms() < end) {
		ssize_t r = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		assert_int_equal(remus_loop_run_once(f->loop, 5), 0);
	}
	return false;
}

static bool nothing_to_read(int fd)
{
	uint8_t b;

	return recv(fd, &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static void expect_reply(struct sfx *f, int fd, uint32_t err, uint64_t cookie)
{
	uint8_t r[16];

	cread(f, fd, r, sizeof(r));
	assert_int_equal(remus_get_be32(r), REMUS_NBD_SIMPLE_REPLY_MAGIC);
	assert_int_equal(remus_get_be32(r + 4), err);
	assert_int_equal(remus_get_be64(r + 8), cookie);
}

/* Greeting, flags and GO "disk"; leaves @fd in transmission. */
static int handshake(struct sfx *f)
{
	uint8_t g[18], rep[20 + 12 + 20];
	struct remus_buf b;
	int fd = client_connect(f);

	cread(f, fd, g, sizeof(g));
	assert_memory_equal(g, "NBDMAGICIHAVEOPT\0\3", 18);
	remus_buf_init(&b, 0);
	nbdw_flags(&b, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	nbdw_go(&b, REMUS_NBD_OPT_GO, "disk", NULL, 0);
	cwrite_buf(f, fd, &b);
	remus_buf_release(&b);
	cread(f, fd, rep, sizeof(rep));
	assert_int_equal(remus_get_be32(rep + 12), REMUS_NBD_REP_INFO);
	assert_int_equal(remus_get_be64(rep + 22), DISK_SIZE);
	assert_int_equal(remus_get_be32(rep + 32 + 12), REMUS_NBD_REP_ACK);
	return fd;
}

static struct remus_nbd_stats stats(struct sfx *f)
{
	struct remus_nbd_stats st;

	remus_nbd_server_get_stats(f->s, &st);
	return st;
}

static void test_session(void **state)
{
	struct sfx *f = *state;
	struct remus_buf b;
	uint8_t *pat = malloc(1 << 20), *back = malloc(1 << 20);
	int fd;
	size_t i;

	assert_non_null(pat);
	assert_non_null(back);
	for (i = 0; i < (1 << 20); i++)
		pat[i] = (uint8_t)(i ^ (i >> 9));
	remus_buf_init(&b, 0);
	fd = handshake(f);
	/* A 1 MiB write arrives in many reads; pipelined with a read. */
	nbdw_req(&b, REMUS_NBD_CMD_FLAG_FUA, REMUS_NBD_CMD_WRITE, 1, 4096, 1 << 20, pat);
	nbdw_req(&b, 0, REMUS_NBD_CMD_READ, 2, 4096, 1 << 20, NULL);
	nbdw_req(&b, 0, REMUS_NBD_CMD_FLUSH, 3, 0, 0, NULL);
	cwrite_buf(f, fd, &b);
	expect_reply(f, fd, 0, 1);
	expect_reply(f, fd, 0, 2);
	cread(f, fd, back, 1 << 20);
	assert_memory_equal(back, pat, 1 << 20);
	expect_reply(f, fd, 0, 3);
	assert_int_equal(f->disk.last_flags, REMUS_NBD_CMD_FLAG_FUA);
	nbdw_req(&b, 0, REMUS_NBD_CMD_DISC, 4, 0, 0, NULL);
	cwrite_buf(f, fd, &b);
	assert_true(closed_by_server(f, fd));
	close(fd);
	spin(f, 20);
	assert_int_equal(stats(f).clients, 1);
	assert_int_equal(stats(f).active_clients, 0);
	assert_int_equal(stats(f).writes, 1);
	assert_int_equal(stats(f).bytes_written, 1 << 20);
	assert_int_equal(stats(f).reads, 1);
	assert_int_equal(stats(f).bytes_read, 1 << 20);
	assert_int_equal(stats(f).flushes, 1);
	assert_int_equal(stats(f).protocol_errors, 0);
	remus_buf_release(&b);
	free(pat);
	free(back);
}

static void test_socket_file(void **state)
{
	struct sfx *f = *state;
	struct remus_nbd_server *s2 = NULL;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char other[256], file[256];
	struct stat st;
	int fd;

	/* Somebody listens on the path: never displaced. */
	assert_int_equal(remus_nbd_server_new(f->loop, f->path, &s2), -EADDRINUSE);
	assert_null(s2);
	fd = handshake(f);
	close(fd);

	/* A stale socket file (its server died) is replaced. */
	snprintf(other, sizeof(other), "%s/stale.sock", dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sun.sun_path, other);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	assert_int_equal(remus_nbd_server_new(f->loop, other, &s2), 0);
	fd = remus_unix_connect(other, true);
	assert_true(fd >= 0);
	close(fd);
	remus_nbd_server_free(s2);
	assert_int_equal(lstat(other, &st), -1); /* free unlinks */

	/* Anything else there is left alone. */
	snprintf(file, sizeof(file), "%s/file", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	s2 = NULL;
	assert_int_equal(remus_nbd_server_new(f->loop, file, &s2), -EEXIST);
	assert_null(s2);
	assert_int_equal(lstat(file, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(file);
}

static void test_free_closes_clients(void **state)
{
	struct sfx *f = *state;
	struct stat st;
	int a = handshake(f), b = client_connect(f);

	spin(f, 20);
	assert_int_equal(stats(f).active_clients, 2);
	remus_nbd_server_free(f->s);
	f->s = NULL;
	assert_int_equal(lstat(f->path, &st), -1);
	/* Both see the end of the stream (b after its greeting). */
	{
		uint8_t buf[64];

		assert_int_equal(recv(a, buf, sizeof(buf), MSG_DONTWAIT), 0);
		assert_int_equal(recv(b, buf, sizeof(buf), MSG_DONTWAIT), 18);
		assert_int_equal(recv(b, buf, sizeof(buf), MSG_DONTWAIT), 0);
	}
	close(a);
	close(b);
}

static void test_pause(void **state)
{
	struct sfx *f = *state;
	struct remus_buf b;
	uint8_t *back = malloc(8 << 20);
	int fd = handshake(f);

	assert_non_null(back);
	remus_buf_init(&b, 0);
	remus_nbd_server_set_paused(f->s, true);
	nbdw_req(&b, 0, REMUS_NBD_CMD_WRITE, 1, 0, 3, "abc");
	cwrite_buf(f, fd, &b);
	spin(f, 100);
	assert_int_equal(f->disk.writes, 0);
	assert_true(nothing_to_read(fd));
	remus_nbd_server_set_paused(f->s, false);
	expect_reply(f, fd, 0, 1);
	assert_memory_equal(f->disk.mem, "abc", 3);

	/* A reply executed before the pause still goes out during it. */
	nbdw_req(&b, 0, REMUS_NBD_CMD_READ, 2, 0, 8 << 20, NULL);
	nbdw_req(&b, 0, REMUS_NBD_CMD_READ, 3, 0, 1, NULL);
	cwrite_buf(f, fd, &b);
	while (f->disk.reads == 0)
		assert_int_equal(remus_loop_run_once(f->loop, 5), 0);
	remus_nbd_server_set_paused(f->s, true);
	expect_reply(f, fd, 0, 2);
	cread(f, fd, back, 8 << 20);
	assert_memory_equal(back, "abc", 3);
	spin(f, 50);
	assert_true(nothing_to_read(fd));
	assert_int_equal(f->disk.reads, 1);
	remus_nbd_server_set_paused(f->s, false);
	expect_reply(f, fd, 0, 3);
	cread(f, fd, back, 1);
	assert_int_equal(f->disk.reads, 2);

	/* Pausing twice and resuming once resumes (it is a flag). */
	remus_nbd_server_set_paused(f->s, true);
	remus_nbd_server_set_paused(f->s, true);
	remus_nbd_server_set_paused(f->s, false);
	nbdw_req(&b, 0, REMUS_NBD_CMD_FLUSH, 4, 0, 0, NULL);
	cwrite_buf(f, fd, &b);
	expect_reply(f, fd, 0, 4);
	close(fd);
	remus_buf_release(&b);
	free(back);
}

static void test_backpressure(void **state)
{
	struct sfx *f = *state;
	struct remus_buf b;
	uint8_t *back = malloc(1 << 20);
	int a = handshake(f), other;
	unsigned i, n = 40;

	assert_non_null(back);
	remus_buf_init(&b, 0);
	/* 40 MiB of replies asked for, none read. */
	for (i = 0; i < n; i++)
		nbdw_req(&b, 0, REMUS_NBD_CMD_READ, i, (uint64_t)i << 18, 1 << 20, NULL);
	cwrite_buf(f, a, &b);
	spin(f, 300);
	print_message("backpressure: %" PRIu64 " of %u reads executed while the client read "
		      "no reply\n", stats(f).reads, n);
	/* The server stopped at its high water mark plus what the socket
	 * holds; it neither blocked nor buffered 40 MiB. */
	assert_true(stats(f).reads >= 2);
	assert_true(stats(f).reads < 10);
	/* Meanwhile another client is served at once. */
	other = handshake(f);
	nbdw_req(&b, 0, REMUS_NBD_CMD_READ, 77, 0, 512, NULL);
	cwrite_buf(f, other, &b);
	expect_reply(f, other, 0, 77);
	cread(f, other, back, 512);
	close(other);
	/* Reading the replies lets every request through, in order. */
	for (i = 0; i < n; i++) {
		expect_reply(f, a, 0, i);
		cread(f, a, back, 1 << 20);
	}
	assert_int_equal(stats(f).reads, n + 1);
	close(a);
	remus_buf_release(&b);
	free(back);
}

static void test_protocol_error(void **state)
{
	struct sfx *f = *state;
	struct remus_buf b;
	int a = handshake(f), c = handshake(f);
	uint8_t bad[28] = { 0x25, 0x60, 0x95, 0x13 + 1 };

	remus_buf_init(&b, 0);
	cwrite(f, a, bad, sizeof(bad));
	assert_true(closed_by_server(f, a));
	assert_int_equal(stats(f).protocol_errors, 1);
	nbdw_req(&b, 0, REMUS_NBD_CMD_FLUSH, 9, 0, 0, NULL);
	cwrite_buf(f, c, &b);
	expect_reply(f, c, 0, 9);
	/* A write larger than the limit closes too, before its payload. */
	nbdw_req(&b, 0, REMUS_NBD_CMD_WRITE, 10, 0, REMUS_NBD_MAX_PAYLOAD + 1, NULL);
	cwrite_buf(f, c, &b);
	assert_true(closed_by_server(f, c));
	assert_int_equal(stats(f).protocol_errors, 2);
	close(a);
	close(c);
	remus_buf_release(&b);
}

static void test_client_limit(void **state)
{
	struct sfx *f = *state;
	int fds[REMUS_NBD_MAX_CLIENTS + 1], i, extra;
	uint8_t g[18];

	for (i = 0; i < REMUS_NBD_MAX_CLIENTS; i++) {
		fds[i] = client_connect(f);
		cread(f, fds[i], g, sizeof(g));
	}
	extra = client_connect(f);
	assert_true(closed_by_server(f, extra));
	close(extra);
	assert_int_equal(stats(f).active_clients, REMUS_NBD_MAX_CLIENTS);
	close(fds[0]);
	spin(f, 30);
	fds[REMUS_NBD_MAX_CLIENTS] = client_connect(f);
	cread(f, fds[REMUS_NBD_MAX_CLIENTS], g, sizeof(g));
	for (i = 1; i <= REMUS_NBD_MAX_CLIENTS; i++)
		close(fds[i]);
	spin(f, 30);
	assert_int_equal(stats(f).active_clients, 0);
	assert_int_equal(stats(f).clients, REMUS_NBD_MAX_CLIENTS + 1);
}

/* A client that says nothing, and one that dribbles its handshake, are
 * closed at the deadline; one that negotiated stays. */
static void test_handshake_deadline(void **state)
{
	struct sfx *f = *state;
	uint8_t g[18], flags[4] = { 0, 0, 0, 3 };
	uint64_t t0;
	int silent, slow, done;

	remus_nbd_server_set_handshake_timeout(f->s, 300);
	done = handshake(f);
	t0 = remus_now_ms();
	silent = client_connect(f);
	slow = client_connect(f);
	cread(f, slow, g, sizeof(g));
	for (int i = 0; i < 4; i++) {
		cwrite(f, slow, &flags[i], 1); /* the client flags, a byte at a time */
		spin(f, 50);
	}
	assert_true(closed_by_server(f, silent));
	assert_true(closed_by_server(f, slow));
	assert_true(remus_now_ms() - t0 >= 280);
	assert_true(remus_now_ms() - t0 < 2000);
	spin(f, 400);
	assert_true(nothing_to_read(done)); /* still open, nothing said */
	assert_int_equal(stats(f).active_clients, 1);
	close(silent);
	close(slow);
	close(done);
}

static void test_hangup_mid_request(void **state)
{
	struct sfx *f = *state;
	struct remus_buf b;
	int a = handshake(f);

	remus_buf_init(&b, 0);
	nbdw_req(&b, 0, REMUS_NBD_CMD_WRITE, 1, 0, 4096, NULL);
	remus_buf_append(&b, "half a payload", 14);
	cwrite_buf(f, a, &b);
	spin(f, 30);
	close(a);
	spin(f, 50);
	assert_int_equal(stats(f).active_clients, 0);
	assert_int_equal(f->disk.writes, 0);
	assert_int_equal(stats(f).protocol_errors, 0);
	/* And while paused: the hang-up is noticed, nothing runs. */
	a = handshake(f);
	remus_nbd_server_set_paused(f->s, true);
	nbdw_req(&b, 0, REMUS_NBD_CMD_WRITE, 2, 0, 1, "x");
	cwrite_buf(f, a, &b);
	close(a);
	spin(f, 50);
	assert_int_equal(stats(f).active_clients, 0);
	remus_nbd_server_set_paused(f->s, false);
	spin(f, 20);
	assert_int_equal(f->disk.writes, 0);
	remus_buf_release(&b);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_session),
		T(test_socket_file),
		T(test_free_closes_clients),
		T(test_pause),
		T(test_backpressure),
		T(test_protocol_error),
		T(test_client_limit),
		T(test_handshake_deadline),
		T(test_hangup_mid_request),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
