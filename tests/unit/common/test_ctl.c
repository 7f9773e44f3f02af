// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control socket (common/ctl.h): the synchronous kind answers at
 * once and drops over-long lines; the asynchronous kind answers when its
 * owner says, from inside the callback or later, a client gone before
 * the answer frees its request at the reply, a long line fits the
 * configured limit, the socket file gets its mode, SO_PEERCRED refuses
 * other users and admits the configured group, and freeing the socket
 * with a request unanswered leaks nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/ctl.h"
#include "common/loop.h"
#include "common/sock.h"

struct fix {
	struct remus_loop *loop;
	struct remus_ctl *ctl;
	char dir[64], path[128];
	struct remus_ctl_request *held[4];
	int nheld;
	char last[70000];
	bool reply_now;
};

static char *sync_handler(void *opaque, const char *line)
{
	char *s = malloc(strlen(line) + 32);

	sprintf(s, "{\"echo\":\"%s\"}", line);
	return s;
}

static void async_cb(void *opaque, struct remus_ctl_request *req, const char *line)
{
	struct fix *f = opaque;

	snprintf(f->last, sizeof(f->last), "%s", line);
	if (f->reply_now) {
		remus_ctl_reply(req, strdup("{\"ok\":true,\"now\":1}"));
		return;
	}
	f->held[f->nheld++] = req;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_ctl.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/c.sock", f->dir);
	assert_int_equal(remus_loop_new(&f->loop), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	remus_ctl_free(f->ctl);
	remus_loop_free(f->loop);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int client_send(const char *path, const char *line)
{
	int fd = remus_unix_connect(path, false);

	assert_true(fd >= 0);
	assert_int_equal(remus_write_all(fd, line, strlen(line)), 0);
	remus_fd_set_nonblock(fd, true);
	return fd;
}

/* Runs the loop until @fd has a whole line or EOF; returns the bytes
 * read (owned), "" for EOF without any. */
static char *client_read(struct remus_loop *loop, int fd, unsigned limit_ms)
{
	char *buf = calloc(1, 80000);
	size_t n = 0;
	uint64_t deadline = remus_now_ms() + limit_ms;

	for (;;) {
		ssize_t r = read(fd, buf + n, 79999 - n);

		if (r > 0) {
			n += (size_t)r;
			if (memchr(buf, '\n', n))
				break;
			continue;
		}
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			break;
		assert_int_equal(errno, EAGAIN);
		assert_true(remus_now_ms() < deadline);
		assert_int_equal(remus_loop_run_once(loop, 20), 0);
	}
	return buf;
}

static void spin(struct remus_loop *loop, int n)
{
	while (n--)
		assert_int_equal(remus_loop_run_once(loop, 5), 0);
}

static void test_sync_unchanged(void **state)
{
	struct fix *f = *state;
	char line[2048];
	char *a;
	int fd;

	assert_int_equal(remus_ctl_listen(f->loop, f->path, sync_handler, f, &f->ctl), 0);
	fd = client_send(f->path, "status\n");
	a = client_read(f->loop, fd, 2000);
	assert_string_equal(a, "{\"echo\":\"status\"}\n");
	free(a);
	close(fd);
	/* Over REMUS_CTL_MAX_LINE without a newline: dropped, no answer. */
	memset(line, 'x', sizeof(line));
	line[sizeof(line) - 1] = 0;
	fd = client_send(f->path, line);
	a = client_read(f->loop, fd, 2000);
	assert_string_equal(a, "");
	free(a);
	close(fd);
}

static void test_async_later_and_now(void **state)
{
	struct fix *f = *state;
	struct remus_ctl_opts o = { .max_line = 65536 };
	char *a, *big;
	int fd, fd2;

	assert_int_equal(remus_ctl_listen_async(f->loop, f->path, &o, async_cb, f, &f->ctl), 0);
	fd = client_send(f->path, "{\"cmd\":\"status\"}\n");
	spin(f->loop, 10);
	assert_int_equal(f->nheld, 1);
	assert_string_equal(f->last, "{\"cmd\":\"status\"}");
	/* Nothing was answered yet, and the client is not dropped. */
	assert_int_equal(read(fd, f->last, 1), -1);
	assert_int_equal(errno, EAGAIN);
	remus_ctl_reply(f->held[0], strdup("{\"ok\":true}"));
	a = client_read(f->loop, fd, 2000);
	assert_string_equal(a, "{\"ok\":true}\n");
	free(a);
	close(fd);

	/* Answered inside the callback. */
	f->reply_now = true;
	fd = client_send(f->path, "{\"cmd\":\"list\"}\n");
	a = client_read(f->loop, fd, 2000);
	assert_string_equal(a, "{\"ok\":true,\"now\":1}\n");
	free(a);
	close(fd);

	/* A 40 KB line fits a 64 KiB limit. */
	big = malloc(40001);
	memset(big, 'y', 40000);
	big[39999] = '\n';
	big[40000] = 0;
	fd2 = client_send(f->path, big);
	a = client_read(f->loop, fd2, 2000);
	assert_string_equal(a, "{\"ok\":true,\"now\":1}\n");
	assert_int_equal(strlen(f->last), 39999);
	free(a);
	free(big);
	close(fd2);

	/* NULL answer: the client gets an error object. */
	f->reply_now = false;
	fd = client_send(f->path, "x\n");
	spin(f->loop, 10);
	assert_int_equal(f->nheld, 2);
	remus_ctl_reply(f->held[1], NULL);
	a = client_read(f->loop, fd, 2000);
	assert_non_null(strstr(a, "\"ok\":false"));
	free(a);
	close(fd);
}

/* The client hangs up before the answer: the reply frees everything
 * (ASan would say otherwise), and the socket keeps serving. */
static void test_async_client_gone(void **state)
{
	struct fix *f = *state;
	char *a;
	int fd;

	assert_int_equal(remus_ctl_listen_async(f->loop, f->path, NULL, async_cb, f, &f->ctl), 0);
	fd = client_send(f->path, "a\n");
	spin(f->loop, 10);
	assert_int_equal(f->nheld, 1);
	close(fd);
	spin(f->loop, 10);
	remus_ctl_reply(f->held[0], strdup("{\"ok\":true}"));
	spin(f->loop, 5);
	f->reply_now = true;
	fd = client_send(f->path, "b\n");
	a = client_read(f->loop, fd, 2000);
	assert_string_equal(a, "{\"ok\":true,\"now\":1}\n");
	free(a);
	close(fd);
	/* One held at free time: freed with the socket. */
	f->reply_now = false;
	fd = client_send(f->path, "c\n");
	spin(f->loop, 10);
	assert_int_equal(f->nheld, 2);
	remus_ctl_free(f->ctl);
	f->ctl = NULL;
	close(fd);
	/* The socket file is gone. */
	assert_int_equal(access(f->path, F_OK), -1);
}

/* A client running as @uid/@gid in a child process; returns its answer
 * (owned). */
static char *answer_as(struct fix *f, uid_t uid, gid_t gid)
{
	int sv[2];
	pid_t pid;
	char *a;
	int st;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[512];
		ssize_t r;
		int fd;

		close(sv[0]);
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(2);
		fd = remus_unix_connect(f->path, false);
		if (fd < 0)
			_exit(3);
		if (write(fd, "status\n", 7) != 7) {
			/* refused at accept: the write may fail; read the answer */
		}
		r = read(fd, buf, sizeof(buf) - 1);
		if (r < 0)
			r = 0;
		if (write(sv[1], buf, (size_t)r) != r)
			_exit(4);
		_exit(0);
	}
	close(sv[1]);
	remus_fd_set_nonblock(sv[0], true);
	a = client_read(f->loop, sv[0], 5000);
	close(sv[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return a;
}

static void test_peer_check_and_mode(void **state)
{
	struct fix *f = *state;
	struct remus_ctl_opts o = { .mode = 0666, .peer_check = true, .use_gid = true,
				    .gid = 65533 };
	struct stat st;
	char *a;

	if (getuid() != 0) {
		skip();
		return;
	}
	/* 0666 so that the socket's mode does not refuse first: this tests
	 * SO_PEERCRED. */
	f->reply_now = true;
	assert_int_equal(remus_ctl_listen_async(f->loop, f->path, &o, async_cb, f, &f->ctl), 0);
	chmod(f->dir, 0755);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0666);
	assert_int_equal(st.st_gid, 65533);
	a = answer_as(f, 65534, 65534);
	assert_non_null(strstr(a, "permission denied"));
	free(a);
	a = answer_as(f, 65534, 65533);      /* the configured group */
	assert_string_equal(a, "{\"ok\":true,\"now\":1}\n");
	free(a);
	a = answer_as(f, 0, 0);
	assert_string_equal(a, "{\"ok\":true,\"now\":1}\n");
	free(a);
	remus_ctl_free(f->ctl);
	f->ctl = NULL;

	/* The default root-only socket: 0600. */
	o = (struct remus_ctl_opts){ .mode = 0600, .peer_check = true };
	assert_int_equal(remus_ctl_listen_async(f->loop, f->path, &o, async_cb, f, &f->ctl), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

int main(void)
{
	/* As in remusd: a client gone is a write error, not a death. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sync_unchanged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_later_and_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_client_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_check_and_mode, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
