// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The peer protocol on the loop (hostd/peerlink.h) and questions to a
 * child's control socket (hostd/ask.h), client and server in one loop:
 * a call answered at once and one answered later; a refused connect, a
 * silent server and a late answer after the call gave up; a peer that
 * sends garbage, no hello, or another version is told and dropped; an
 * ask answered, to no socket, and to a socket that never answers.
 * Over TLS (PSK): a call answered with the caller's identity passed to
 * the server, a call with another key refused on both sides and never
 * reaching the protocol, a silent connection dropped at the handshake
 * deadline, and the bound on sessions at once (the one over it closed).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/ctl.h"
#include "common/loop.h"
#include "common/sock.h"
#include "hostd/ask.h"
#include "hostd/peerlink.h"
#include "hostd/request.h"
#include "tls/tls.h"

struct fix {
	struct remus_loop *loop;
	struct remus_hostd_peer_server *srv;
	uint16_t port;
	bool defer;
	struct remus_hostd_peer_reply *held;
	struct remus_hostd_peer_msg last_req;
	char last_from[64];
	char last_identity[128];
	int calls;
	/* call results */
	int done, rc;
	struct remus_hostd_peer_msg answer;
	char err[1400];
};

static void on_request(void *opaque, struct remus_hostd_peer_reply *r,
		       const struct remus_hostd_peer_msg *req, const char *from,
		       const char *identity)
{
	struct fix *f = opaque;
	struct remus_hostd_peer_msg a = { .ok = true };

	f->calls++;
	f->last_req = *req;
	f->last_req.xml = NULL;
	snprintf(f->last_from, sizeof(f->last_from), "%s", from);
	snprintf(f->last_identity, sizeof(f->last_identity), "%s", identity);
	if (f->defer) {
		f->held = r;
		return;
	}
	if (req->req == REMUS_HOSTD_PEER_CREATE_STANDBY)
		a.repl_port = 7800;
	if (req->req == REMUS_HOSTD_PEER_FAILOVER) {
		a.ok = false;
		a.code = REMUS_HOSTD_E_NOT_RUNNING;
		snprintf(a.error, sizeof(a.error), "no standby of %s here", req->domain);
	}
	remus_hostd_peer_answer(r, &a);
}

static void on_answer(void *opaque, int rc, const struct remus_hostd_peer_msg *a,
		      const char *err)
{
	struct fix *f = opaque;

	f->done++;
	f->rc = rc;
	if (a)
		f->answer = *a;
	f->answer.xml = NULL;
	snprintf(f->err, sizeof(f->err), "%s", err ? err : "");
}

static void run_until(struct remus_loop *loop, const int *v, int want, unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (*v < want) {
		assert_true(remus_now_ms() < end);
		assert_int_equal(remus_loop_run_once(loop, 20), 0);
	}
}

static void spin(struct remus_loop *loop, int n)
{
	while (n--)
		assert_int_equal(remus_loop_run_once(loop, 5), 0);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_int_equal(remus_loop_new(&f->loop), 0);
	assert_int_equal(remus_hostd_peer_listen(f->loop, "127.0.0.1", 0, "hostB", 500, NULL,
						 on_request, f, &f->srv, &f->port), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	remus_hostd_peer_server_free(f->srv);
	if (f->held)
		remus_hostd_peer_answer(f->held, &(struct remus_hostd_peer_msg){ .ok = true });
	remus_loop_free(f->loop);
	free(f);
	return 0;
}

static void test_call_answered(void **state)
{
	struct fix *f = *state;
	struct remus_hostd_peer_msg req = { .req = REMUS_HOSTD_PEER_CREATE_STANDBY, .id = 42 };
	struct remus_hostd_peer_call *c;

	snprintf(req.domain, sizeof(req.domain), "web1");
	snprintf(req.uuid, sizeof(req.uuid), "6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f");
	req.xml = "<domain/>";
	snprintf(req.primary, sizeof(req.primary), "hostA");
	req.primary_port = 7790;
	req.options = (struct remus_hostd_peer_options){ 200, 300, 100, 5, REMUS_HOSTD_NB_QEMU,
							 REMUS_HOSTD_REPROTECT_AUTO };
	req.kind = REMUS_HOSTD_PEER_REQUEST;
	assert_int_equal(remus_hostd_peer_call(f->loop, "127.0.0.1", f->port, "hostA", &req,
					       2000, NULL, on_answer, f, &c), 0);
	assert_int_equal(f->done, 0);    /* never from inside the call */
	run_until(f->loop, &f->done, 1, 2000);
	assert_int_equal(f->rc, 0);
	assert_true(f->answer.ok);
	assert_int_equal(f->answer.id, 42);
	assert_int_equal(f->answer.repl_port, 7800);
	assert_string_equal(f->last_from, "hostA");
	assert_string_equal(f->last_req.domain, "web1");

	/* An error answer is an answer (rc 0). */
	req = (struct remus_hostd_peer_msg){ .kind = REMUS_HOSTD_PEER_REQUEST,
					     .req = REMUS_HOSTD_PEER_FAILOVER, .id = 43 };
	snprintf(req.domain, sizeof(req.domain), "web1");
	assert_int_equal(remus_hostd_peer_call(f->loop, "127.0.0.1", f->port, "hostA", &req,
					       2000, NULL, on_answer, f, &c), 0);
	run_until(f->loop, &f->done, 2, 2000);
	assert_int_equal(f->rc, 0);
	assert_false(f->answer.ok);
	assert_int_equal(f->answer.code, REMUS_HOSTD_E_NOT_RUNNING);
	assert_string_equal(f->answer.error, "no standby of web1 here");
}

/* Answered later; then a server that holds its answer past the call's
 * timeout, and answers after the call gave up (dropped, no crash). */
static void test_call_deferred_and_timeout(void **state)
{
	struct fix *f = *state;
	struct remus_hostd_peer_msg req = { .kind = REMUS_HOSTD_PEER_REQUEST,
					    .req = REMUS_HOSTD_PEER_PING, .id = 1 };
	struct remus_hostd_peer_call *c;

	f->defer = true;
	assert_int_equal(remus_hostd_peer_call(f->loop, "127.0.0.1", f->port, "hostA", &req,
					       3000, NULL, on_answer, f, &c), 0);
	run_until(f->loop, &f->calls, 1, 2000);
	spin(f->loop, 20);
	assert_int_equal(f->done, 0);
	assert_int_equal(remus_hostd_peer_answer(f->held, &(struct remus_hostd_peer_msg){ .ok = true }),
			 0);
	f->held = NULL;
	run_until(f->loop, &f->done, 1, 2000);
	assert_int_equal(f->rc, 0);
	assert_true(f->answer.ok);

	req.id = 2;
	assert_int_equal(remus_hostd_peer_call(f->loop, "127.0.0.1", f->port, "hostA", &req,
					       300, NULL, on_answer, f, &c), 0);
	run_until(f->loop, &f->done, 2, 3000);
	assert_int_equal(f->rc, -ETIME);
	assert_non_null(strstr(f->err, "no answer in time"));
	assert_non_null(f->held);
	spin(f->loop, 20);
	/* the asker is gone: the answer says so (the standby host then
	 * drops what nobody waits for) */
	assert_int_equal(remus_hostd_peer_answer(f->held, &(struct remus_hostd_peer_msg){ .ok = true }),
			 -ENOTCONN);
	f->held = NULL;
	spin(f->loop, 5);
}

static void test_call_refused(void **state)
{
	struct fix *f = *state;
	struct remus_hostd_peer_msg req = { .kind = REMUS_HOSTD_PEER_REQUEST,
					    .req = REMUS_HOSTD_PEER_PING, .id = 1 };
	struct remus_hostd_peer_call *c;
	uint16_t port;
	int fd = remus_tcp_listen("127.0.0.1", 0, 1, &port);

	close(fd);   /* a port nobody listens on */
	assert_int_equal(remus_hostd_peer_call(f->loop, "127.0.0.1", port, "hostA", &req, 2000,
					       NULL, on_answer, f, &c), 0);
	run_until(f->loop, &f->done, 1, 2000);
	assert_int_equal(f->rc, -ECONNREFUSED);
	assert_non_null(strstr(f->err, "127.0.0.1"));
	assert_non_null(strstr(f->err, "remusd serve running"));

	/* Cancelled: no callback. */
	assert_int_equal(remus_hostd_peer_call(f->loop, "127.0.0.1", f->port, "hostA", &req, 2000,
					       NULL, on_answer, f, &c), 0);
	remus_hostd_peer_call_cancel(c);
	spin(f->loop, 20);
	assert_int_equal(f->done, 1);
}

/* What a raw client gets for @send (after @n lines or EOF). */
static char *raw(struct fix *f, const char *send)
{
	int fd = remus_tcp_connect("127.0.0.1", f->port, false);
	char *buf = calloc(1, 4096);
	size_t n = 0;
	uint64_t end = remus_now_ms() + 2000;

	assert_true(fd >= 0);
	assert_int_equal(remus_write_all(fd, send, strlen(send)), 0);
	remus_fd_set_nonblock(fd, true);
	for (;;) {
		ssize_t r = read(fd, buf + n, 4095 - n);

		if (r > 0) {
			n += (size_t)r;
			continue;
		}
		if (r == 0 || errno != EAGAIN)
			break;
		assert_true(remus_now_ms() < end);
		assert_int_equal(remus_loop_run_once(f->loop, 10), 0);
	}
	close(fd);
	return buf;
}

static void test_server_refuses(void **state)
{
	struct fix *f = *state;
	char *a;

	a = raw(f, "GET / HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(a, "\"ok\":false"));
	assert_non_null(strstr(a, "not one JSON object"));
	free(a);
	a = raw(f, "{\"req\":\"ping\",\"id\":5}\n");
	assert_non_null(strstr(a, "\"id\":5"));
	assert_non_null(strstr(a, "no hello first"));
	free(a);
	a = raw(f, "{\"hello\":\"remus-peer\",\"version\":2,\"host\":\"x\"}\n");
	assert_non_null(strstr(a, "version 2"));
	free(a);
	a = raw(f, "{\"hello\":\"remus-peer\",\"version\":1,\"host\":\"x\"}\n"
		   "{\"req\":\"ping\",\"id\":9}\n{\"id\":1,\"ok\":true}\n");
	assert_non_null(strstr(a, "{\"hello\":\"remus-peer\",\"version\":1,\"host\":\"hostB\"}\n"));
	assert_non_null(strstr(a, "{\"id\":9,\"ok\":true}\n"));
	assert_non_null(strstr(a, "only requests"));
	free(a);
	assert_int_equal(f->calls, 1);
	/* A silent client is dropped after the server's timeout (500 ms). */
	a = raw(f, "");
	assert_string_equal(a, "");
	free(a);
}

/* ---- TLS ---- */

struct tlsfix {
	char dir[64], good[96], wrong[96];
	struct remus_tls_creds *srv, *cli, *bad;
};

static void tls_setup(struct tlsfix *t)
{
	char err[256];

	snprintf(t->dir, sizeof(t->dir), "/tmp/test_peerlink_tls.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->good, sizeof(t->good), "%s/good.psk", t->dir);
	snprintf(t->wrong, sizeof(t->wrong), "%s/wrong.psk", t->dir);
	assert_int_equal(remus_tls_keygen(t->good, err, sizeof(err)), 0);
	assert_int_equal(remus_tls_keygen(t->wrong, err, sizeof(err)), 0);
	assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = t->good },
					     REMUS_TLS_SERVER, &t->srv, err, sizeof(err)), 0);
	assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = t->good },
					     REMUS_TLS_CLIENT, &t->cli, err, sizeof(err)), 0);
	assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = t->wrong },
					     REMUS_TLS_CLIENT, &t->bad, err, sizeof(err)), 0);
}

static void tls_teardown(struct tlsfix *t)
{
	remus_tls_creds_free(t->srv);
	remus_tls_creds_free(t->cli);
	remus_tls_creds_free(t->bad);
	unlink(t->good);
	unlink(t->wrong);
	rmdir(t->dir);
}

/* A TLS server in place of the fixture's plaintext one. */
static void tls_server(struct fix *f, struct tlsfix *t, unsigned handshake_ms,
		       unsigned max_sessions)
{
	remus_hostd_peer_server_free(f->srv);
	assert_int_equal(remus_hostd_peer_listen(f->loop, "127.0.0.1", 0, "hostB", 5000,
						 &(struct remus_hostd_peer_tls){
							 .creds = t->srv,
							 .handshake_ms = handshake_ms,
							 .max_sessions = max_sessions },
						 on_request, f, &f->srv, &f->port), 0);
}

static void test_tls_call(void **state)
{
	struct fix *f = *state;
	struct tlsfix t;
	struct remus_hostd_peer_msg req = { .kind = REMUS_HOSTD_PEER_REQUEST,
					    .req = REMUS_HOSTD_PEER_FAILOVER, .id = 7 };
	struct remus_hostd_peer_call *c;

	tls_setup(&t);
	tls_server(f, &t, 2000, 0);
	snprintf(req.domain, sizeof(req.domain), "web1");
	assert_int_equal(remus_hostd_peer_call(f->loop, "127.0.0.1", f->port, "hostA", &req,
					       2000, t.cli, on_answer, f, &c), 0);
	run_until(f->loop, &f->done, 1, 3000);
	assert_int_equal(f->rc, 0);
	assert_int_equal(f->answer.id, 7);
	assert_int_equal(f->answer.code, REMUS_HOSTD_E_NOT_RUNNING);
	assert_int_equal(f->calls, 1);
	assert_string_equal(f->last_from, "hostA");
	assert_string_equal(f->last_identity, "PSK identity remus");

	/* Another key: refused by the handshake, no request reached the
	 * server, the caller says why. */
	req.id = 8;
	assert_int_equal(remus_hostd_peer_call(f->loop, "127.0.0.1", f->port, "hostA", &req,
					       2000, t.bad, on_answer, f, &c), 0);
	run_until(f->loop, &f->done, 2, 3000);
	assert_true(f->rc == -EACCES || f->rc == -ECONNRESET || f->rc == -EPROTO);
	assert_int_equal(f->calls, 1);
	spin(f->loop, 10);
	assert_int_equal(remus_hostd_peer_server_sessions(f->srv), 0);

	/* A plaintext caller: its hello is not TLS, refused, nothing asked. */
	req.id = 9;
	assert_int_equal(remus_hostd_peer_call(f->loop, "127.0.0.1", f->port, "hostA", &req,
					       2000, NULL, on_answer, f, &c), 0);
	run_until(f->loop, &f->done, 3, 3000);
	assert_true(f->rc < 0);
	assert_int_equal(f->calls, 1);
	tls_teardown(&t);
}

/* Connects and says nothing: closed at the handshake deadline (300 ms),
 * not before, and not after the session timeout (5 s). */
static void test_tls_silent(void **state)
{
	struct fix *f = *state;
	struct tlsfix t;
	int fd;
	char b;
	uint64_t t0, end;
	ssize_t r;

	tls_setup(&t);
	tls_server(f, &t, 300, 0);
	fd = remus_tcp_connect("127.0.0.1", f->port, false);
	assert_true(fd >= 0);
	remus_fd_set_nonblock(fd, true);
	t0 = remus_now_ms();
	end = t0 + 3000;
	while ((r = read(fd, &b, 1)) < 0 && errno == EAGAIN) {
		assert_true(remus_now_ms() < end);
		assert_int_equal(remus_loop_run_once(f->loop, 10), 0);
	}
	assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
	assert_true(remus_now_ms() - t0 >= 250);
	assert_int_equal(f->calls, 0);
	close(fd);
	tls_teardown(&t);
}

/* max_sessions 2: a third authenticated session is closed at once; the
 * two first still get answers. */
static void test_session_bound(void **state)
{
	struct fix *f = *state;
	int fd[3], i;
	char b;
	uint64_t end;
	ssize_t r;

	remus_hostd_peer_server_free(f->srv);
	assert_int_equal(remus_hostd_peer_listen(f->loop, "127.0.0.1", 0, "hostB", 5000,
						 &(struct remus_hostd_peer_tls){ .max_sessions = 2 },
						 on_request, f, &f->srv, &f->port), 0);
	for (i = 0; i < 3; i++) {
		fd[i] = remus_tcp_connect("127.0.0.1", f->port, false);
		assert_true(fd[i] >= 0);
		remus_fd_set_nonblock(fd[i], true);
		spin(f->loop, 5);
	}
	assert_int_equal(remus_hostd_peer_server_sessions(f->srv), 2);
	end = remus_now_ms() + 2000;
	while ((r = read(fd[2], &b, 1)) < 0 && errno == EAGAIN) {
		assert_true(remus_now_ms() < end);
		assert_int_equal(remus_loop_run_once(f->loop, 10), 0);
	}
	assert_int_equal(r, 0);
	close(fd[2]);
	/* The first still works. */
	assert_int_equal(remus_write_all(fd[0], "{\"hello\":\"remus-peer\",\"version\":1,"
					 "\"host\":\"x\"}\n{\"req\":\"ping\",\"id\":3}\n", 68), 0);
	run_until(f->loop, &f->calls, 1, 2000);
	close(fd[0]);
	close(fd[1]);
	spin(f->loop, 10);
	assert_int_equal(remus_hostd_peer_server_sessions(f->srv), 0);
}

/* ---- ask ---- */

static char *ctl_handler(void *opaque, const char *line)
{
	char *s = malloc(64);

	snprintf(s, 64, "{\"ok\":true,\"req\":\"%.20s\"}", line);
	return s;
}

struct askres {
	int done, rc;
	char answer[256];
};

static void on_ask(void *opaque, int rc, const char *answer)
{
	struct askres *r = opaque;

	r->done++;
	r->rc = rc;
	snprintf(r->answer, sizeof(r->answer), "%s", answer ? answer : "(null)");
}

static void test_ask(void **state)
{
	struct fix *f = *state;
	struct remus_ctl *ctl;
	struct remus_hostd_ask *a;
	struct askres r = { 0 };
	char dir[] = "/tmp/test_peerlink.XXXXXX", path[64], path2[64];
	int lfd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.sock", dir);
	assert_int_equal(remus_ctl_listen(f->loop, path, ctl_handler, f, &ctl), 0);
	assert_int_equal(remus_hostd_ask(f->loop, path, "set-interval 100", 2000, on_ask, &r, &a), 0);
	assert_int_equal(r.done, 0);
	run_until(f->loop, &r.done, 1, 2000);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.answer, "{\"ok\":true,\"req\":\"set-interval 100\"}");
	remus_ctl_free(ctl);

	assert_int_equal(remus_hostd_ask(f->loop, path, "status", 2000, on_ask, &r, &a), 0);
	run_until(f->loop, &r.done, 2, 2000);
	assert_int_equal(r.rc, -ENOENT);
	assert_string_equal(r.answer, "(null)");

	/* Listening but never accepting nor answering: the timeout. */
	snprintf(path2, sizeof(path2), "%s/hang.sock", dir);
	lfd = remus_unix_listen(path2, 4);
	assert_true(lfd >= 0);
	assert_int_equal(remus_hostd_ask(f->loop, path2, "status", 200, on_ask, &r, &a), 0);
	run_until(f->loop, &r.done, 3, 2000);
	assert_int_equal(r.rc, -ETIMEDOUT);
	/* Cancelled: no callback. */
	assert_int_equal(remus_hostd_ask(f->loop, path2, "status", 200, on_ask, &r, &a), 0);
	remus_hostd_ask_cancel(a);
	spin(f->loop, 10);
	assert_int_equal(r.done, 3);
	close(lfd);
	unlink(path2);
	rmdir(dir);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_call_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_deferred_and_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_silent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_bound, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
