// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for qmp/: the client talks to the fake QMP server of
 * tests/support/fake_qmp.h on the other end of a socketpair, on the same
 * loop.  Most tests drive the fake from the test body (MANUAL policy: it
 * answers nothing by itself): remus_fake_qmp_next() runs the loop until
 * the client's next command (and any fd passed with it) has arrived, and
 * the test answers it, or writes raw bytes when the bytes are the point.
 * For the synchronous helper, which runs the loop itself, the fake
 * answers from scripted rules.  Every test counts callback invocations,
 * because "called exactly once" is the contract under test.
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
#include <json-c/json.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"
#include "qmp/qmp.h"
#include "support/fake_qmp.h"

#define NAME "fake.qmp"
#define GREETING REMUS_FAKE_QMP_GREETING "\n"
#define WAIT_MS 2000

struct rec {
	int calls;
	int rc;
	char err[512];
	char ret[512];
	/* what to do from inside the callback */
	struct remus_qmp **free_q;
	int order_tag;
	int *order_log;
	int *order_n;
	const void *cancel_owner; /* cancel this owner from the callback */
	size_t cancelled;         /* what that cancel returned */
};

struct state_rec {
	int ready, closed;
	int rc;
	char err[512];
	struct remus_qmp **free_q; /* free the client when CLOSED is reported */
};

struct env {
	struct remus_loop *loop;
	struct remus_qmp *q;
	struct remus_fake_qmp *f;
	struct state_rec st;
};

/* The next command the client wrote, which must be @name: its id, for
 * tests that answer with raw bytes. */
static int64_t fake_recv(struct env *e, const char *name)
{
	return remus_fake_qmp_cmd_id(remus_fake_qmp_next(e->f, name, WAIT_MS));
}

/* ---- recorders ---------------------------------------------------------- */

static void on_reply(struct remus_qmp *q, int rc, struct json_object *ret,
		     const char *err, void *opaque)
{
	struct rec *r = opaque;

	r->calls++;
	r->rc = rc;
	snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
	snprintf(r->ret, sizeof(r->ret), "%s",
		 ret ? json_object_to_json_string_ext(ret, JSON_C_TO_STRING_PLAIN) : "");
	if (r->order_log)
		r->order_log[(*r->order_n)++] = r->order_tag;
	if (r->cancel_owner)
		r->cancelled = remus_qmp_cancel_owner(q, r->cancel_owner);
	if (r->free_q && *r->free_q) {
		struct remus_qmp *victim = *r->free_q;

		*r->free_q = NULL;
		remus_qmp_free(victim);
		/* A second free from a nested callback must be harmless too. */
	}
}

static void on_state(struct remus_qmp *q, enum remus_qmp_state state, int rc,
		     const char *err, void *opaque)
{
	struct state_rec *s = opaque;

	if (state == REMUS_QMP_READY)
		s->ready++;
	if (state == REMUS_QMP_CLOSED) {
		s->closed++;
		s->rc = rc;
		snprintf(s->err, sizeof(s->err), "%s", err ? err : "");
		if (s->free_q && *s->free_q) {
			struct remus_qmp *victim = *s->free_q;

			*s->free_q = NULL;
			remus_qmp_free(victim);
		}
	}
}

/* Runs the loop until *@counter reaches @want (2 s at most). */
static void run_until(struct remus_loop *loop, const int *counter, int want)
{
	uint64_t deadline = remus_now_ms() + 2000;

	while (*counter < want) {
		assert_int_equal(remus_loop_run_once(loop, 10), 0);
		assert_true(remus_now_ms() < deadline);
	}
}

/* Runs the loop for @ms regardless. */
static void run_for(struct remus_loop *loop, unsigned ms)
{
	uint64_t deadline = remus_now_ms() + ms;

	while (remus_now_ms() < deadline)
		assert_int_equal(remus_loop_run_once(loop, 5), 0);
}

/* ---- fixtures ----------------------------------------------------------- */

/* The fake answers nothing by itself and sends no greeting: each test
 * decides. */
static int env_open(struct env *e, const struct remus_qmp_opts *opts)
{
	struct remus_fake_qmp_opts fo = { .no_greeting = true, .policy = REMUS_FAKE_QMP_MANUAL };
	int fd;

	memset(e, 0, sizeof(*e));
	assert_int_equal(remus_loop_new(&e->loop), 0);
	assert_int_equal(remus_fake_qmp_new(e->loop, &fo, &e->f, &fd), 0);
	assert_int_equal(remus_qmp_open_fd(e->loop, fd, NAME, opts, on_state, &e->st, &e->q), 0);
	return 0;
}

static void env_close(struct env *e)
{
	remus_qmp_free(e->q);
	remus_fake_qmp_free(e->f);
	remus_loop_free(e->loop);
}

static void env_negotiate(struct env *e)
{
	remus_fake_qmp_send(e->f, GREETING);
	remus_fake_qmp_reply(e->f, remus_fake_qmp_next(e->f, "qmp_capabilities", WAIT_MS), NULL);
	run_until(e->loop, &e->st.ready, 1);
	assert_int_equal(remus_qmp_get_state(e->q), REMUS_QMP_READY);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	env_open(e, NULL);
	env_negotiate(e);
	*state = e;
	return 0;
}

static int setup_small(void **state)
{
	struct remus_qmp_opts o = { .max_line = 1024, .connect_timeout_ms = 200 };
	struct env *e = calloc(1, sizeof(*e));

	env_open(e, &o);
	env_negotiate(e);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	env_close(e);
	free(e);
	return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_greeting_and_capabilities(void **state)
{
	struct env *e = *state;
	struct json_object *g = remus_qmp_greeting(e->q), *v;

	assert_int_equal(e->st.ready, 1);
	assert_int_equal(e->st.closed, 0);
	assert_non_null(g);
	assert_true(json_object_object_get_ex(g, "version", &v));
	assert_string_equal(remus_qmp_path(e->q), NAME);
	assert_string_equal(remus_qmp_last_error(e->q), "");
}

static void test_command_reply(void **state)
{
	struct env *e = *state;
	struct json_object *args = json_object_new_object();
	struct remus_fake_qmp_cmd *c;
	struct rec r = { 0 };

	json_object_object_add(args, "uri", json_object_new_string("fd:mig/0"));
	assert_int_equal(remus_qmp_execute(e->q, "migrate", args, -1, 0, on_reply, &r), 0);
	assert_int_equal(r.calls, 0); /* never from inside execute */
	assert_int_equal(remus_qmp_pending(e->q), 1);
	c = remus_fake_qmp_next(e->f, "migrate", WAIT_MS);
	remus_fake_qmp_cmd_id(c); /* an integer id */
	assert_string_equal(remus_fake_qmp_arg(c, "uri"), "fd:mig/0"); /* no \/ escaping */
	remus_fake_qmp_reply(e->f, c, "{\"status\": \"running\"}");
	run_until(e->loop, &r.calls, 1);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.ret, "{\"status\":\"running\"}");
	assert_string_equal(r.err, "");
	assert_int_equal(remus_qmp_pending(e->q), 0);
	run_for(e->loop, 20);
	assert_int_equal(r.calls, 1);
}

static void test_error_reply(void **state)
{
	struct env *e = *state;
	struct rec r = { 0 };

	assert_int_equal(remus_qmp_execute(e->q, "migrate", NULL, -1, 0, on_reply, &r), 0);
	remus_fake_qmp_reply_error(e->f, remus_fake_qmp_next(e->f, "migrate", WAIT_MS),
				   "GenericError", "Migration is disabled");
	run_until(e->loop, &r.calls, 1);
	assert_int_equal(r.rc, -EREMOTEIO);
	assert_string_equal(r.err, "qmp " NAME ": 'migrate' failed: GenericError: Migration is disabled");
	assert_non_null(strstr(r.ret, "\"class\":\"GenericError\""));
	assert_string_equal(remus_qmp_last_error(e->q), r.err);
	/* A QMP error is not a protocol error: the connection stays up. */
	assert_int_equal(remus_qmp_get_state(e->q), REMUS_QMP_READY);
	assert_int_equal(e->st.closed, 0);
}

static void test_out_of_order_replies(void **state)
{
	struct env *e = *state;
	struct rec r[3] = { { 0 } };
	int64_t id[3];
	int log[3], n = 0, i;
	const char *names[3] = { "a", "b", "c" };

	for (i = 0; i < 3; i++) {
		r[i].order_tag = i;
		r[i].order_log = log;
		r[i].order_n = &n;
		assert_int_equal(remus_qmp_execute(e->q, names[i], NULL, -1, 0, on_reply, &r[i]), 0);
	}
	/* Written in submission order... */
	for (i = 0; i < 3; i++)
		id[i] = fake_recv(e, names[i]);
	/* ...answered in another order, in one burst. */
	remus_fake_qmp_sendf(e->f, "{\"return\": 2, \"id\": %lld}\n{\"return\": 0, \"id\": %lld}\n"
			     "{\"return\": 1, \"id\": %lld}\n",
			     (long long)id[2], (long long)id[0], (long long)id[1]);
	run_until(e->loop, &n, 3);
	assert_int_equal(log[0], 2);
	assert_int_equal(log[1], 0);
	assert_int_equal(log[2], 1);
	for (i = 0; i < 3; i++) {
		char want[4];

		snprintf(want, sizeof(want), "%d", i);
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].rc, 0);
		assert_string_equal(r[i].ret, want);
	}
}

struct ev_rec {
	int calls;
	char names[8][32];
	char data[8][128];
	int64_t ts[8];
	int *seq; /* shared sequence counter with replies */
	int at[8];
	struct remus_qmp **free_q;
	int unsub; /* handle to drop from inside the callback, 0: none */
};

static void on_event(struct remus_qmp *q, const char *event, struct json_object *data,
		     int64_t ts, void *opaque)
{
	struct ev_rec *r = opaque;

	if (r->calls < 8) {
		snprintf(r->names[r->calls], sizeof(r->names[0]), "%s", event);
		snprintf(r->data[r->calls], sizeof(r->data[0]), "%s",
			 data ? json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN) : "");
		r->ts[r->calls] = ts;
		r->at[r->calls] = r->seq ? (*r->seq)++ : 0;
	}
	r->calls++;
	if (r->unsub) {
		assert_int_equal(remus_qmp_unsubscribe(q, r->unsub), 0);
		r->unsub = 0;
	}
	if (r->free_q && *r->free_q) {
		struct remus_qmp *victim = *r->free_q;

		*r->free_q = NULL;
		remus_qmp_free(victim);
	}
}

static void on_reply_seq(struct remus_qmp *q, int rc, struct json_object *ret,
			 const char *err, void *opaque)
{
	struct rec *r = opaque;

	on_reply(q, rc, ret, err, opaque);
	r->order_tag = (*r->order_n)++;
}

static void test_events_interleaved(void **state)
{
	struct env *e = *state;
	struct ev_rec stop = { 0 }, all = { 0 };
	struct rec r = { 0 };
	int seq = 0;
	int64_t id;

	stop.seq = all.seq = &seq;
	r.order_n = &seq;
	assert_true(remus_qmp_subscribe(e->q, "STOP", on_event, &stop) > 0);
	assert_true(remus_qmp_subscribe(e->q, NULL, on_event, &all) > 0);
	assert_int_equal(remus_qmp_execute(e->q, "stop", NULL, -1, 0, on_reply_seq, &r), 0);
	id = fake_recv(e, "stop");
	remus_fake_qmp_sendf(e->f,
			     "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}, "
			     "\"event\": \"STOP\"}\n"
			     "{\"return\": {}, \"id\": %lld}\n"
			     "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 5}, "
			     "\"event\": \"RESUME\", \"data\": {\"x\": 1}}\n"
			     "{\"event\": \"STOP\"}\n",
			     (long long)id);
	run_until(e->loop, &all.calls, 3);
	assert_int_equal(r.calls, 1);
	assert_int_equal(stop.calls, 2);
	assert_int_equal(all.calls, 3);
	assert_string_equal(all.names[0], "STOP");
	assert_string_equal(all.names[1], "RESUME");
	assert_string_equal(all.names[2], "STOP");
	assert_string_equal(all.data[1], "{\"x\":1}");
	assert_string_equal(all.data[0], "");
	assert_true(all.ts[0] == 1700000000123456ll);
	assert_true(all.ts[1] == 1700000001000005ll);
	assert_true(all.ts[2] == -1);
	/* Interleaving is preserved: STOP(stop sub), STOP(all), reply, RESUME, ... */
	assert_int_equal(stop.at[0], 0);
	assert_int_equal(all.at[0], 1);
	assert_int_equal(r.order_tag, 2);
	assert_int_equal(all.at[1], 3);
}

static void test_unsubscribe_in_callback(void **state)
{
	struct env *e = *state;
	struct ev_rec a = { 0 };
	int h;

	h = remus_qmp_subscribe(e->q, "SHUTDOWN", on_event, &a);
	assert_true(h > 0);
	a.unsub = h;
	remus_fake_qmp_send(e->f, "{\"event\": \"SHUTDOWN\"}\n{\"event\": \"SHUTDOWN\"}\n");
	run_for(e->loop, 50);
	assert_int_equal(a.calls, 1);
	assert_int_equal(remus_qmp_unsubscribe(e->q, h), -ENOENT);
}

static void test_fd_passing(void **state)
{
	struct remus_fake_qmp_cmd *c;
	int fd;
	struct env *e = *state;
	struct json_object *args = json_object_new_object();
	struct rec r = { 0 };
	char got[8] = { 0 };
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	json_object_object_add(args, "fdname", json_object_new_string("mig"));
	assert_int_equal(remus_qmp_execute(e->q, "getfd", args, p[1], 0, on_reply, &r), 0);
	/* Borrowed: the client has its own dup, so closing ours is fine. */
	close(p[1]);
	c = remus_fake_qmp_next(e->f, "getfd", WAIT_MS);
	fd = remus_fake_qmp_take_cmd_fd(c);
	assert_true(fd >= 0);
	assert_false(c->fd_misplaced);
	/* The received fd is the pipe's write end: prove it by writing. */
	assert_int_equal(write(fd, "ping", 4), 4);
	close(fd);
	assert_int_equal(read(p[0], got, sizeof(got) - 1), 4);
	assert_string_equal(got, "ping");
	/* Every reference to the write end is gone, so the pipe sees EOF:
	 * the client did not leak its dup. */
	assert_int_equal(read(p[0], got, sizeof(got)), 0);
	close(p[0]);
	remus_fake_qmp_reply(e->f, c, NULL);
	run_until(e->loop, &r.calls, 1);
	assert_int_equal(r.rc, 0);
}

static void test_fd_only_with_its_command(void **state)
{
	struct env *e = *state;
	struct rec r[3] = { { 0 } };
	struct remus_fake_qmp_cmd *c;
	int p[2];

	/* The fd must arrive with the first byte of its own command, not
	 * earlier (QEMU would attach it to the wrong command) and not later
	 * (the fake then marks it misplaced). */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(remus_qmp_execute(e->q, "query-status", NULL, -1, 0, on_reply, &r[0]), 0);
	assert_int_equal(remus_qmp_execute(e->q, "getfd", NULL, p[0], 0, on_reply, &r[1]), 0);
	assert_int_equal(remus_qmp_execute(e->q, "query-status", NULL, -1, 0, on_reply, &r[2]), 0);
	close(p[0]);
	c = remus_fake_qmp_next(e->f, "query-status", WAIT_MS);
	assert_int_equal(c->fd, -1);
	c = remus_fake_qmp_next(e->f, "getfd", WAIT_MS);
	assert_true(c->fd >= 0);
	assert_false(c->fd_misplaced);
	c = remus_fake_qmp_next(e->f, "query-status", WAIT_MS);
	assert_int_equal(c->fd, -1);
	close(p[1]);
	/* r[] lives on this stack: settle the callbacks before returning. */
	remus_qmp_free(e->q);
	e->q = NULL;
	assert_int_equal(r[0].calls + r[1].calls + r[2].calls, 3);
	assert_int_equal(r[1].rc, -ECANCELED);
}

static void test_timeout(void **state)
{
	struct env *e = *state;
	struct rec r = { 0 }, r2 = { 0 };
	uint64_t t0 = remus_now_ms();
	int64_t id, id2;

	assert_int_equal(remus_qmp_execute(e->q, "hang", NULL, -1, 50, on_reply, &r), 0);
	id = fake_recv(e, "hang");
	run_until(e->loop, &r.calls, 1);
	assert_true(remus_now_ms() - t0 >= 50);
	assert_int_equal(r.rc, -ETIMEDOUT);
	assert_string_equal(r.err, "qmp " NAME ": 'hang' failed: no reply within 50 ms");
	assert_int_equal(remus_qmp_pending(e->q), 0);
	/* The late reply is dropped quietly, not an unexpected id. */
	remus_fake_qmp_sendf(e->f, "{\"return\": {}, \"id\": %lld}\n", (long long)id);
	assert_int_equal(remus_qmp_execute(e->q, "next", NULL, -1, 0, on_reply, &r2), 0);
	id2 = fake_recv(e, "next");
	remus_fake_qmp_sendf(e->f, "{\"return\": 7, \"id\": %lld}\n", (long long)id2);
	run_until(e->loop, &r2.calls, 1);
	assert_int_equal(r2.rc, 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(e->st.closed, 0);
	/* ...but a second reply to the same id is. */
	remus_fake_qmp_sendf(e->f, "{\"return\": {}, \"id\": %lld}\n", (long long)id);
	run_until(e->loop, &e->st.closed, 1);
	assert_int_equal(e->st.rc, -EBADMSG);
}

static void test_timeout_before_written(void **state)
{
	struct remus_qmp_opts o = { .connect_timeout_ms = 2000 };
	struct env e;
	struct rec r = { 0 };

	(void)state;
	env_open(&e, &o);
	/* No greeting yet, so the command waits in the queue and expires. */
	assert_int_equal(remus_qmp_execute(e.q, "query-status", NULL, -1, 30, on_reply, &r), 0);
	run_until(e.loop, &r.calls, 1);
	assert_int_equal(r.rc, -ETIMEDOUT);
	/* It is never written: after negotiation the next thing QEMU sees is
	 * the next command. */
	env_negotiate(&e);
	assert_int_equal(remus_qmp_execute(e.q, "after", NULL, -1, 0, NULL, NULL), 0);
	fake_recv(&e, "after");
	assert_int_equal(r.calls, 1);
	env_close(&e);
}

/* Submits @n commands, lets the fake read them, then sends @bytes (and
 * closes the server end if @eof); checks every callback ran exactly once
 * with @want_rc, and the state callback once with CLOSED. */
static void check_fatal(struct env *e, int n, const char *bytes, bool eof, int want_rc,
			const char *want_err_part)
{
	struct rec r[4] = { { 0 } };
	int i, total = 0;

	assert_true(n <= 4);
	for (i = 0; i < n; i++)
		assert_int_equal(remus_qmp_execute(e->q, "cmd", NULL, -1, 0, on_reply, &r[i]), 0);
	for (i = 0; i < n; i++)
		fake_recv(e, "cmd");
	if (bytes)
		remus_fake_qmp_send(e->f, bytes);
	if (eof)
		remus_fake_qmp_close(e->f);
	run_until(e->loop, &e->st.closed, 1);
	run_for(e->loop, 20);
	for (i = 0; i < n; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].rc, want_rc);
		assert_non_null(strstr(r[i].err, "qmp " NAME ": 'cmd' failed: "));
		assert_non_null(strstr(r[i].err, want_err_part));
		total += r[i].calls;
	}
	assert_int_equal(total, n);
	assert_int_equal(e->st.closed, 1);
	assert_int_equal(e->st.rc, want_rc);
	assert_non_null(strstr(e->st.err, "qmp " NAME ": "));
	assert_non_null(strstr(e->st.err, want_err_part));
	assert_int_equal(remus_qmp_get_state(e->q), REMUS_QMP_CLOSED);
	assert_int_equal(remus_qmp_pending(e->q), 0);
	/* Closed for good: nothing new is accepted, no callback is called. */
	assert_int_equal(remus_qmp_execute(e->q, "late", NULL, -1, 0, on_reply, &r[0]), -ENOTCONN);
	run_for(e->loop, 10);
	assert_int_equal(r[0].calls, 1);
}

static void test_write_error_fails_pending(void **state)
{
	struct env *e = *state;
	struct rec r[2] = { { 0 } };
	int p[2];

	/* QEMU stops reading: the client's write gets EPIPE, which must be an
	 * error for every pending command, never a SIGPIPE. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(shutdown(remus_fake_qmp_fd(e->f), SHUT_RD), 0);
	assert_int_equal(remus_qmp_execute(e->q, "a", NULL, -1, 0, on_reply, &r[0]), 0);
	assert_int_equal(remus_qmp_execute(e->q, "getfd", NULL, p[1], 0, on_reply, &r[1]), 0);
	close(p[1]);
	run_until(e->loop, &e->st.closed, 1);
	assert_int_equal(e->st.rc, -EPIPE);
	assert_non_null(strstr(e->st.err, "write of 'a' failed: Broken pipe"));
	assert_int_equal(r[0].calls, 1);
	assert_int_equal(r[1].calls, 1);
	assert_int_equal(r[0].rc, -EPIPE);
	assert_int_equal(r[1].rc, -EPIPE);
	close(p[0]);
}

/* A command far larger than the socket buffer goes out in pieces. */
static struct json_object *big_args(size_t n)
{
	struct json_object *args = json_object_new_object();
	char *s = malloc(n + 1);

	memset(s, 'x', n);
	s[n] = '\0';
	json_object_object_add(args, "blob", json_object_new_string(s));
	free(s);
	return args;
}

/* The next command, which must be @expect with a blob of @n bytes. */
static struct remus_fake_qmp_cmd *recv_big(struct env *e, const char *expect, size_t n)
{
	struct remus_fake_qmp_cmd *c = remus_fake_qmp_next(e->f, expect, 5000);
	struct json_object *v;

	assert_non_null(c->args);
	assert_true(json_object_object_get_ex(c->args, "blob", &v));
	assert_int_equal(json_object_get_string_len(v), n);
	return c;
}

static void test_large_command_partial_writes(void **state)
{
	struct env *e = *state;
	struct rec r[2] = { { 0 } };
	struct remus_fake_qmp_cmd *big, *after;
	size_t n = 4u << 20;
	int p[2];

	/* 4 MiB is far more than the socket buffer: the client writes it in
	 * pieces between EAGAINs, with the fd on the first piece only, and
	 * the line must still arrive whole and before the next command. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(remus_qmp_execute(e->q, "big", big_args(n), p[1], 0, on_reply, &r[0]), 0);
	assert_int_equal(remus_qmp_execute(e->q, "after", NULL, -1, 0, on_reply, &r[1]), 0);
	close(p[1]);
	big = recv_big(e, "big", n);
	assert_true(big->fd >= 0);
	assert_false(big->fd_misplaced);
	after = remus_fake_qmp_next(e->f, "after", WAIT_MS);
	assert_int_equal(after->fd, -1);
	remus_fake_qmp_reply(e->f, big, NULL);
	remus_fake_qmp_reply(e->f, after, NULL);
	run_until(e->loop, &r[1].calls, 1);
	assert_int_equal(r[0].calls, 1);
	assert_int_equal(r[0].rc, 0);
	assert_int_equal(r[1].rc, 0);
	close(p[0]);
}

static void test_timeout_mid_write_keeps_stream_intact(void **state)
{
	struct env *e = *state;
	struct rec r[2] = { { 0 } };
	struct remus_fake_qmp_cmd *big, *next;
	size_t n = 2u << 20;

	/* The server does not read, so the big command is stuck half
	 * written when its timeout fires. */
	remus_fake_qmp_pause(e->f, true);
	assert_int_equal(remus_qmp_execute(e->q, "big", big_args(n), -1, 30, on_reply, &r[0]), 0);
	assert_int_equal(remus_qmp_execute(e->q, "next", NULL, -1, 0, on_reply, &r[1]), 0);
	run_until(e->loop, &r[0].calls, 1);
	assert_int_equal(r[0].rc, -ETIMEDOUT);
	/* Reading now, the rest of "big" must still come, then "next", with
	 * no torn line in between; big's late reply is dropped. */
	remus_fake_qmp_pause(e->f, false);
	big = recv_big(e, "big", n);
	next = remus_fake_qmp_next(e->f, "next", WAIT_MS);
	remus_fake_qmp_reply(e->f, big, NULL);
	remus_fake_qmp_reply(e->f, next, "2");
	run_until(e->loop, &r[1].calls, 1);
	assert_int_equal(r[0].calls, 1);
	assert_int_equal(r[1].rc, 0);
	assert_int_equal(remus_qmp_get_state(e->q), REMUS_QMP_READY);
}

static void test_malformed_json(void **state)
{
	check_fatal(*state, 2, "{\"return\": {}, \"id\": 1,,}\n", false, -EBADMSG, "protocol error");
}

static void test_trailing_garbage(void **state)
{
	check_fatal(*state, 1, "{\"return\": {}} xyz\n", false, -EBADMSG, "trailing data");
}

static void test_truncated_then_eof(void **state)
{
	check_fatal(*state, 2, "{\"return\": {}, \"id\"", true, -ECONNRESET,
		    "connection closed by QEMU");
}

static void test_line_over_limit(void **state)
{
	char *big = malloc(3000);

	memset(big, ' ', 2999);
	big[0] = '{';
	big[2999] = '\0';
	/* No newline at all: the client must not wait for one forever. */
	check_fatal(*state, 2, big, false, -EMSGSIZE, "longer than 1024 bytes");
	free(big);
}

static void test_long_line_with_newline(void **state)
{
	char *big = malloc(1200);

	memset(big, ' ', 1198);
	big[0] = '{';
	big[1197] = '}';
	big[1198] = '\n';
	big[1199] = '\0';
	check_fatal(*state, 1, big, false, -EMSGSIZE, "longer than 1024 bytes");
	free(big);
}

static void test_line_at_limit_is_fine(void **state)
{
	struct env *e = *state;
	struct rec r = { 0 };
	char line[1100];
	int64_t id;
	int n;

	assert_int_equal(remus_qmp_execute(e->q, "x", NULL, -1, 0, on_reply, &r), 0);
	id = fake_recv(e, "x");
	n = snprintf(line, sizeof(line), "{\"id\": %lld, \"return\": \"", (long long)id);
	memset(line + n, 'a', 1024 - n - 2);
	memcpy(line + 1022, "\"}\n", 4);
	assert_int_equal(strlen(line), 1025);
	remus_fake_qmp_send(e->f, line);
	run_until(e->loop, &r.calls, 1);
	assert_int_equal(r.rc, 0);
}

static void test_unexpected_id(void **state)
{
	check_fatal(*state, 2, "{\"return\": {}, \"id\": 999}\n", false, -EBADMSG,
		    "unexpected id 999");
}

static void test_id_of_wrong_type(void **state)
{
	check_fatal(*state, 1, "{\"return\": {}, \"id\": \"1\"}\n", false, -EBADMSG,
		    "unexpected id");
}

static void test_reply_without_id(void **state)
{
	check_fatal(*state, 1, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\n",
		    false, -EBADMSG, "reply without an id");
}

static void test_non_object_json(void **state)
{
	check_fatal(*state, 2, "[1, 2, 3]\n", false, -EBADMSG, "not a JSON object");
}

static void test_scalar_json(void **state)
{
	check_fatal(*state, 1, "null\n", false, -EBADMSG, "not a JSON object");
}

static void test_unknown_message(void **state)
{
	check_fatal(*state, 1, "{\"hello\": 1}\n", false, -EBADMSG, "neither reply nor event");
}

static void test_server_closes_mid_command(void **state)
{
	check_fatal(*state, 3, NULL, true, -ECONNRESET, "connection closed by QEMU");
}

static void test_server_closes_after_reply(void **state)
{
	struct env *e = *state;
	struct rec r = { 0 };
	int64_t id;

	/* Like `quit`: the reply and the EOF arrive together; the reply wins. */
	assert_int_equal(remus_qmp_execute(e->q, "quit", NULL, -1, 0, on_reply, &r), 0);
	id = fake_recv(e, "quit");
	remus_fake_qmp_sendf(e->f, "{\"return\": {}, \"id\": %lld}\n", (long long)id);
	remus_fake_qmp_close(e->f);
	run_until(e->loop, &e->st.closed, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.rc, 0);
	assert_int_equal(e->st.rc, -ECONNRESET);
}

static void test_free_from_reply_callback(void **state)
{
	struct env *e = *state;
	struct rec r[3] = { { 0 } };
	struct remus_qmp *victim = e->q;
	int64_t id;
	int i;

	r[0].free_q = &victim;
	for (i = 0; i < 3; i++)
		assert_int_equal(remus_qmp_execute(e->q, "c", NULL, -1, 0, on_reply, &r[i]), 0);
	id = fake_recv(e, "c");
	fake_recv(e, "c");
	fake_recv(e, "c");
	/* The first reply frees the client; the other replies are in the same
	 * read and must not be touched afterwards. */
	remus_fake_qmp_sendf(e->f, "{\"return\": 1, \"id\": %lld}\n{\"return\": 2, \"id\": %lld}\n"
			     "{\"event\": \"STOP\"}\n", (long long)id, (long long)id + 1);
	run_until(e->loop, &r[0].calls, 1);
	e->q = NULL;
	run_for(e->loop, 20);
	assert_null(victim);
	assert_int_equal(r[0].rc, 0);
	for (i = 1; i < 3; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].rc, -ECANCELED);
	}
	assert_int_equal(e->st.closed, 0); /* freed, not lost */
}

static void test_free_from_cancel_callback(void **state)
{
	struct env *e = *state;
	struct rec r[2] = { { 0 } };
	struct remus_qmp *victim = e->q;

	/* The callback run by free() frees again: must be a no-op. */
	r[0].free_q = &victim;
	assert_int_equal(remus_qmp_execute(e->q, "a", NULL, -1, 0, on_reply, &r[0]), 0);
	assert_int_equal(remus_qmp_execute(e->q, "b", NULL, -1, 0, on_reply, &r[1]), 0);
	remus_qmp_free(e->q);
	e->q = NULL;
	assert_int_equal(r[0].calls, 1);
	assert_int_equal(r[1].calls, 1);
	assert_int_equal(r[0].rc, -ECANCELED);
	assert_int_equal(r[1].rc, -ECANCELED);
	run_for(e->loop, 20);
	assert_int_equal(r[0].calls, 1);
}

static void test_free_from_event_callback(void **state)
{
	struct env *e = *state;
	struct ev_rec ev = { 0 };
	struct rec r = { 0 };
	struct remus_qmp *victim = e->q;
	int64_t id;

	ev.free_q = &victim;
	assert_true(remus_qmp_subscribe(e->q, NULL, on_event, &ev) > 0);
	assert_true(remus_qmp_subscribe(e->q, NULL, on_event, &ev) > 0);
	assert_int_equal(remus_qmp_execute(e->q, "c", NULL, -1, 0, on_reply, &r), 0);
	id = fake_recv(e, "c");
	remus_fake_qmp_sendf(e->f, "{\"event\": \"STOP\"}\n{\"return\": 1, \"id\": %lld}\n",
			     (long long)id);
	run_until(e->loop, &ev.calls, 1);
	e->q = NULL;
	run_for(e->loop, 20);
	assert_int_equal(ev.calls, 1); /* the second subscriber is not called */
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.rc, -ECANCELED);
}

static void test_free_from_state_callback(void **state)
{
	struct env *e = *state;
	struct rec r = { 0 };
	struct remus_qmp *victim = e->q;

	e->st.free_q = &victim;
	assert_int_equal(remus_qmp_execute(e->q, "c", NULL, -1, 0, on_reply, &r), 0);
	fake_recv(e, "c");
	remus_fake_qmp_close(e->f);
	run_until(e->loop, &e->st.closed, 1);
	e->q = NULL;
	assert_null(victim);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.rc, -ECONNRESET);
}

static void test_capabilities_refused(void **state)
{
	struct env e;
	struct rec r = { 0 };

	(void)state;
	env_open(&e, NULL);
	assert_int_equal(remus_qmp_execute(e.q, "early", NULL, -1, 0, on_reply, &r), 0);
	remus_fake_qmp_send(e.f, GREETING);
	remus_fake_qmp_reply_error(e.f, remus_fake_qmp_next(e.f, "qmp_capabilities", WAIT_MS),
				   "GenericError", "no");
	run_until(e.loop, &e.st.closed, 1);
	assert_int_equal(e.st.ready, 0);
	assert_int_equal(e.st.rc, -EREMOTEIO);
	assert_non_null(strstr(e.st.err, "qmp_capabilities refused: GenericError: no"));
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.rc, -EREMOTEIO);
	env_close(&e);
}

static void test_no_greeting_times_out(void **state)
{
	struct remus_qmp_opts o = { .connect_timeout_ms = 60 };
	struct env e;

	(void)state;
	env_open(&e, &o);
	run_until(e.loop, &e.st.closed, 1);
	assert_int_equal(e.st.rc, -ETIMEDOUT);
	assert_non_null(strstr(e.st.err, "no QMP greeting within 60 ms"));
	env_close(&e);
}

static void test_message_before_greeting(void **state)
{
	struct env e;

	(void)state;
	env_open(&e, NULL);
	remus_fake_qmp_send(e.f, "{\"event\": \"STOP\"}\n");
	run_until(e.loop, &e.st.closed, 1);
	assert_int_equal(e.st.rc, -EBADMSG);
	assert_non_null(strstr(e.st.err, "expected the QMP greeting"));
	env_close(&e);
}

/* getfd as a test of fd passing: QEMU writes into the fd it got. */
static void getfd_writes(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd, void *opaque)
{
	int fd = remus_fake_qmp_take_cmd_fd(cmd);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "fd!", 3), 3);
	close(fd);
	remus_fake_qmp_reply(f, cmd, NULL);
}

static const struct remus_fake_qmp_rule status_running = {
	.ret = "{\"status\": \"running\", \"running\": true}",
};

static void test_sync_helper(void **state)
{
	static const struct remus_fake_qmp_rule hang = { .silent = true };
	static const struct remus_fake_qmp_rule nope = {
		.err_class = "CommandNotFound", .err_desc = "The command nope has not been found",
	};
	static const struct remus_fake_qmp_rule getfd = { .cb = getfd_writes };
	struct env *e = *state;
	struct json_object *ret = NULL, *v;
	char *err = NULL;
	char got[8] = { 0 };
	int p[2];

	/* The sync helper runs the loop itself: the fake answers by script. */
	assert_int_equal(remus_fake_qmp_script(e->f, "query-status", &status_running), 0);
	assert_int_equal(remus_fake_qmp_script(e->f, "hang", &hang), 0);
	assert_int_equal(remus_fake_qmp_script(e->f, "nope", &nope), 0);
	assert_int_equal(remus_fake_qmp_script(e->f, "getfd", &getfd), 0);

	assert_int_equal(remus_qmp_execute_sync(e->q, "query-status", NULL, -1, 1000, &ret, &err), 0);
	assert_null(err);
	assert_true(json_object_object_get_ex(ret, "status", &v));
	assert_string_equal(json_object_get_string(v), "running");
	json_object_put(ret);

	assert_int_equal(remus_qmp_execute_sync(e->q, "nope", NULL, -1, 1000, &ret, &err),
			 -EREMOTEIO);
	assert_null(ret);
	assert_string_equal(err, "qmp " NAME ": 'nope' failed: CommandNotFound: "
			    "The command nope has not been found");
	free(err);

	assert_int_equal(remus_qmp_execute_sync(e->q, "hang", NULL, -1, 40, NULL, &err),
			 -ETIMEDOUT);
	assert_non_null(strstr(err, "'hang' failed: no reply within 40 ms"));
	free(err);

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(remus_qmp_execute_sync(e->q, "getfd", NULL, p[1], 1000, NULL, NULL), 0);
	close(p[1]);
	assert_int_equal(read(p[0], got, sizeof(got) - 1), 3);
	assert_string_equal(got, "fd!");
	close(p[0]);
	assert_string_equal(remus_fake_qmp_log(e->f), "query-status;nope;hang;getfd;");

	/* Bad arguments fail at once, with a message. */
	assert_int_equal(remus_qmp_execute_sync(e->q, "x", json_object_new_array(), -1, 10,
						NULL, &err), -EINVAL);
	assert_non_null(strstr(err, "'x' failed"));
	free(err);
}

static void test_sync_on_closed_connection(void **state)
{
	struct env *e = *state;
	char *err = NULL;

	remus_fake_qmp_close(e->f);
	assert_int_equal(remus_qmp_execute_sync(e->q, "query-status", NULL, -1, 1000, NULL, &err),
			 -ECONNRESET);
	assert_non_null(strstr(err, "connection closed by QEMU"));
	free(err);
	assert_int_equal(remus_qmp_execute_sync(e->q, "query-status", NULL, -1, 1000, NULL, NULL),
			 -ENOTCONN);
}

/* ---- owners ------------------------------------------------------------- */

/* Two owners; any address they own serves as the token. */
static int owner_a, owner_b;

/* Cancelled before anything was written: the commands still go out (an
 * owner's last words must reach QEMU), their replies are dropped, and the
 * connection stays healthy. */
static void test_cancel_owner_queued(void **state)
{
	struct env *e = *state;
	struct rec r[3] = { { 0 } };
	int64_t id[2];

	assert_int_equal(remus_qmp_execute_owned(e->q, &owner_a, "migrate_cancel", NULL, -1, 0,
						 on_reply, &r[0]), 0);
	assert_int_equal(remus_qmp_execute_owned(e->q, &owner_a, "stop", NULL, -1, 0,
						 on_reply, &r[1]), 0);
	assert_int_equal(remus_qmp_pending(e->q), 2);
	assert_int_equal(remus_qmp_cancel_owner(e->q, &owner_a), 2);
	assert_int_equal(remus_qmp_pending(e->q), 0);
	assert_int_equal(remus_qmp_cancel_owner(e->q, &owner_a), 0);
	assert_int_equal(remus_qmp_cancel_owner(e->q, NULL), 0);
	assert_int_equal(remus_qmp_cancel_owner(NULL, &owner_a), 0);
	id[0] = fake_recv(e, "migrate_cancel");
	id[1] = fake_recv(e, "stop");
	remus_fake_qmp_sendf(e->f, "{\"return\": {}, \"id\": %lld}\n{\"error\": {\"class\": \"GenericError\", "
			     "\"desc\": \"x\"}, \"id\": %lld}\n", (long long)id[0], (long long)id[1]);
	run_for(e->loop, 30);
	assert_int_equal(r[0].calls + r[1].calls, 0);
	assert_int_equal(remus_qmp_get_state(e->q), REMUS_QMP_READY);
	/* The client goes on: a command of nobody's is answered. */
	assert_int_equal(remus_qmp_execute(e->q, "query-status", NULL, -1, 0, on_reply, &r[2]), 0);
	id[0] = fake_recv(e, "query-status");
	remus_fake_qmp_sendf(e->f, "{\"return\": 7, \"id\": %lld}\n", (long long)id[0]);
	run_until(e->loop, &r[2].calls, 1);
	assert_int_equal(r[2].rc, 0);
	assert_int_equal(e->st.closed, 0);
}

/* Queued before the negotiation finished: written after it, then dropped. */
static void test_cancel_owner_before_ready(void **state)
{
	struct env e;
	struct rec r = { 0 };
	int64_t id;

	(void)state;
	env_open(&e, NULL);
	assert_int_equal(remus_qmp_execute_owned(e.q, &owner_a, "cont", NULL, -1, 0, on_reply, &r),
			 0);
	assert_int_equal(remus_qmp_cancel_owner(e.q, &owner_a), 1);
	env_negotiate(&e);
	id = fake_recv(&e, "cont");
	remus_fake_qmp_sendf(e.f, "{\"return\": {}, \"id\": %lld}\n", (long long)id);
	run_for(e.loop, 30);
	assert_int_equal(r.calls, 0);
	assert_int_equal(e.st.closed, 0);
	env_close(&e);
}

/* Cancelled while written and waiting for the reply. */
static void test_cancel_owner_in_flight(void **state)
{
	struct env *e = *state;
	struct rec r = { 0 };
	int64_t id;

	assert_int_equal(remus_qmp_execute_owned(e->q, &owner_a, "query-migrate", NULL, -1, 0,
						 on_reply, &r), 0);
	id = fake_recv(e, "query-migrate");
	assert_int_equal(remus_qmp_cancel_owner(e->q, &owner_a), 1);
	remus_fake_qmp_sendf(e->f, "{\"return\": {\"status\": \"completed\"}, \"id\": %lld}\n",
			     (long long)id);
	run_for(e->loop, 30);
	assert_int_equal(r.calls, 0);
	assert_int_equal(remus_qmp_get_state(e->q), REMUS_QMP_READY);
	/* Nor when the connection fails later. */
	remus_fake_qmp_close(e->f);
	run_until(e->loop, &e->st.closed, 1);
	assert_int_equal(r.calls, 0);
}

/* The first reply's callback cancels its own owner: the owner's other
 * replies, in the same read, are dropped; another owner's are not. */
static void test_cancel_owner_from_own_callback(void **state)
{
	struct env *e = *state;
	struct rec a[3] = { { 0 } }, b = { 0 };
	int64_t id[4];
	int i;

	a[0].cancel_owner = &owner_a;
	for (i = 0; i < 3; i++)
		assert_int_equal(remus_qmp_execute_owned(e->q, &owner_a, "a", NULL, -1, 0,
							 on_reply, &a[i]), 0);
	assert_int_equal(remus_qmp_execute_owned(e->q, &owner_b, "b", NULL, -1, 0, on_reply, &b),
			 0);
	for (i = 0; i < 3; i++)
		id[i] = fake_recv(e, "a");
	id[3] = fake_recv(e, "b");
	remus_fake_qmp_sendf(e->f, "{\"return\": 0, \"id\": %lld}\n{\"return\": 1, \"id\": %lld}\n"
			     "{\"return\": 3, \"id\": %lld}\n{\"return\": 2, \"id\": %lld}\n",
			     (long long)id[0], (long long)id[1], (long long)id[3], (long long)id[2]);
	run_until(e->loop, &b.calls, 1);
	run_for(e->loop, 20);
	assert_int_equal(a[0].calls, 1);
	assert_int_equal(a[0].cancelled, 2); /* not itself: it is running */
	assert_int_equal(a[1].calls + a[2].calls, 0);
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.ret, "3");
	assert_int_equal(remus_qmp_pending(e->q), 0);
}

/* The connection fails with both owners' commands pending; the first
 * failure callback cancels its owner: the owner's other commands, already
 * being failed one by one, get no callback; the other owner's do. */
static void test_cancel_owner_while_closing(void **state)
{
	struct env *e = *state;
	struct rec a[2] = { { 0 } }, b[2] = { { 0 } };

	a[0].cancel_owner = &owner_a;
	assert_int_equal(remus_qmp_execute_owned(e->q, &owner_a, "a", NULL, -1, 0, on_reply,
						 &a[0]), 0);
	assert_int_equal(remus_qmp_execute_owned(e->q, &owner_b, "b", NULL, -1, 0, on_reply,
						 &b[0]), 0);
	assert_int_equal(remus_qmp_execute_owned(e->q, &owner_a, "a", NULL, -1, 0, on_reply,
						 &a[1]), 0);
	assert_int_equal(remus_qmp_execute_owned(e->q, &owner_b, "b", NULL, -1, 0, on_reply,
						 &b[1]), 0);
	fake_recv(e, "a");
	remus_fake_qmp_close(e->f);
	run_until(e->loop, &e->st.closed, 1);
	assert_int_equal(a[0].calls, 1);
	assert_int_equal(a[0].rc, -ECONNRESET);
	assert_int_equal(a[0].cancelled, 1);
	assert_int_equal(a[1].calls, 0);
	assert_int_equal(b[0].calls, 1);
	assert_int_equal(b[1].calls, 1);
	assert_int_equal(b[1].rc, -ECONNRESET);
	assert_int_equal(remus_qmp_pending(e->q), 0);
}

/* Two owners interleaved, one cancelled: only the other hears back, in
 * order; a command that already timed out is not counted again. */
static void test_cancel_one_of_two_owners(void **state)
{
	struct env *e = *state;
	struct rec a[3] = { { 0 } }, b[3] = { { 0 } };
	int64_t id[6];
	int log[6], n = 0, i;

	for (i = 0; i < 3; i++) {
		b[i].order_tag = i;
		b[i].order_log = log;
		b[i].order_n = &n;
		assert_int_equal(remus_qmp_execute_owned(e->q, &owner_a, "a", NULL, -1,
							 i == 0 ? 20 : 0, on_reply, &a[i]), 0);
		assert_int_equal(remus_qmp_execute_owned(e->q, &owner_b, "b", NULL, -1, 0,
							 on_reply, &b[i]), 0);
	}
	for (i = 0; i < 6; i++)
		id[i] = fake_recv(e, i % 2 ? "b" : "a");
	run_until(e->loop, &a[0].calls, 1); /* timed out */
	assert_int_equal(a[0].rc, -ETIMEDOUT);
	assert_int_equal(remus_qmp_pending(e->q), 5);
	assert_int_equal(remus_qmp_cancel_owner(e->q, &owner_a), 2);
	assert_int_equal(remus_qmp_pending(e->q), 3);
	for (i = 5; i >= 0; i--)
		remus_fake_qmp_sendf(e->f, "{\"return\": %d, \"id\": %lld}\n", i, (long long)id[i]);
	run_until(e->loop, &n, 3);
	run_for(e->loop, 20);
	for (i = 0; i < 3; i++) {
		assert_int_equal(a[i].calls, i == 0 ? 1 : 0);
		assert_int_equal(b[i].calls, 1);
		assert_int_equal(b[i].rc, 0);
	}
	/* Answered last first. */
	assert_int_equal(log[0], 2);
	assert_int_equal(log[1], 1);
	assert_int_equal(log[2], 0);
	assert_int_equal(remus_qmp_pending(e->q), 0);
	assert_int_equal(remus_qmp_get_state(e->q), REMUS_QMP_READY);
}

/* ---- connecting by path ------------------------------------------------- */

struct acceptor {
	struct remus_fake_qmp *f;
	char path[128];
};

/* QEMU creates its monitor socket late: a fake that answers what it
 * knows and CommandNotFound otherwise. */
static void on_qemu_up(struct remus_loop *loop, void *opaque)
{
	struct remus_fake_qmp_opts fo = { .policy = REMUS_FAKE_QMP_NOT_FOUND };
	struct acceptor *a = opaque;

	assert_int_equal(remus_fake_qmp_listen(loop, a->path, &fo, &a->f), 0);
	assert_int_equal(remus_fake_qmp_script(a->f, "query-status", &status_running), 0);
}

static void test_connect_waits_for_socket(void **state)
{
	char dir[] = "/tmp/remus-qmp-test-XXXXXX";
	struct remus_loop *loop;
	struct remus_qmp *q;
	struct state_rec st = { 0 };
	struct acceptor a = { 0 };
	struct json_object *ret = NULL;
	struct remus_timer listen_later;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(a.path, sizeof(a.path), "%s/qmp.sock", dir);
	assert_int_equal(remus_loop_new(&loop), 0);
	/* Nothing listens yet: the client retries until the socket appears. */
	assert_int_equal(remus_qmp_connect(loop, a.path, NULL, on_state, &st, &q), 0);
	remus_timer_init(&listen_later, loop, on_qemu_up, &a);
	remus_timer_arm(&listen_later, 120);
	assert_int_equal(remus_qmp_wait_ready(q, 2000), 0);
	assert_int_equal(st.ready, 1);
	assert_int_equal(remus_qmp_execute_sync(q, "query-status", NULL, -1, 1000, &ret, NULL), 0);
	json_object_put(ret);
	remus_qmp_free(q);
	/* The fake answered qmp_capabilities and query-status. */
	assert_int_equal(remus_fake_qmp_ncmds(a.f), 2);
	assert_int_equal(remus_fake_qmp_count(a.f, "qmp_capabilities"), 1);
	assert_int_equal(remus_fake_qmp_count(a.f, "query-status"), 1);
	remus_fake_qmp_free(a.f);
	rmdir(dir);
	remus_loop_free(loop);
}

static void test_connect_times_out(void **state)
{
	struct remus_qmp_opts o = { .connect_timeout_ms = 80 };
	struct remus_loop *loop;
	struct remus_qmp *q;
	struct state_rec st = { 0 };
	struct rec r = { 0 };

	(void)state;
	assert_int_equal(remus_loop_new(&loop), 0);
	assert_int_equal(remus_qmp_connect(loop, "/nonexistent/remus/qmp.sock", &o, on_state,
					   &st, &q), 0);
	assert_int_equal(remus_qmp_execute(q, "query-status", NULL, -1, 5000, on_reply, &r), 0);
	assert_int_equal(remus_qmp_wait_ready(q, 2000), -ETIMEDOUT);
	assert_int_equal(st.closed, 1);
	assert_string_equal(st.err, "qmp /nonexistent/remus/qmp.sock: cannot connect within 80 ms: "
			    "No such file or directory");
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.rc, -ETIMEDOUT);
	remus_qmp_free(q);
	remus_loop_free(loop);
}

static void test_connect_bad_path(void **state)
{
	char longpath[200];
	struct remus_loop *loop;
	struct remus_qmp *q = NULL;

	(void)state;
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(remus_loop_new(&loop), 0);
	assert_int_equal(remus_qmp_connect(loop, longpath, NULL, NULL, NULL, &q), -ENAMETOOLONG);
	assert_null(q);
	remus_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_greeting_and_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_interleaved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsubscribe_in_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_passing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_only_with_its_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error_fails_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_command_partial_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_mid_write_keeps_stream_intact, setup, teardown),
		cmocka_unit_test(test_timeout_before_written),
		cmocka_unit_test_setup_teardown(test_malformed_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trailing_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_then_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_over_limit, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_with_newline, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_line_at_limit_is_fine, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_unexpected_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_of_wrong_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_without_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_object_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scalar_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_closes_mid_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_closes_after_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_reply_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_cancel_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_event_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_state_callback, setup, teardown),
		cmocka_unit_test(test_capabilities_refused),
		cmocka_unit_test(test_no_greeting_times_out),
		cmocka_unit_test(test_message_before_greeting),
		cmocka_unit_test_setup_teardown(test_cancel_owner_queued, setup, teardown),
		cmocka_unit_test(test_cancel_owner_before_ready),
		cmocka_unit_test_setup_teardown(test_cancel_owner_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_owner_from_own_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_owner_while_closing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_one_of_two_owners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_helper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_on_closed_connection, setup, teardown),
		cmocka_unit_test(test_connect_waits_for_socket),
		cmocka_unit_test(test_connect_times_out),
		cmocka_unit_test(test_connect_bad_path),
	};

	/* Closing connections is the point of many tests: keep stderr quiet. */
	remus_log_set_level(REMUS_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
