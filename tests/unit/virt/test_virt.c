// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for virt/virt.h against libvirt's in-process test driver
 * (test:///default: a fake hypervisor with one running domain "test"), no
 * daemon and no QEMU.  What is under test is the threading contract: work
 * runs off the loop thread, done and free_fn on it exactly once each, an
 * owner cancelled before its work returns never hears back, mailboxes
 * deliver in order and not after close, and free completes what is left.
 * Work that must still be running when the test acts waits on a pipe the
 * test writes to, so no test depends on timing.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/loop.h"
#include "virt/virt.h"

#define URI "test:///default"
#define WAIT_MS 10000

struct env {
	struct remus_loop *loop;
	struct remus_virt *v;
	int open_calls, open_rc;
	char open_err[512];
};

struct job {
	pthread_t loop_thread;
	pthread_t work_thread;
	int gate;          /* read end: work blocks until a byte arrives, or -1 */
	int work_calls;
	int done_calls, free_calls;
	int done_rc;
	char done_err[512];
	int ret;           /* what work returns */
	const char *lookup; /* a domain name work looks up, or NULL */
	int *free_counter; /* counted when the job is freed, after free_fn */
	int *done_order;   /* appends tag on done */
	int *done_n;
	int tag;
	bool done_on_loop, free_on_loop;
};

static void run_until(struct env *e, const int *flag, int want)
{
	uint64_t end = remus_now_ms() + WAIT_MS;

	while (*flag < want) {
		assert_true(remus_now_ms() < end);
		assert_int_equal(remus_loop_run_once(e->loop, 50), 0);
	}
}

static void on_open(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct env *e = opaque;

	e->open_calls++;
	e->open_rc = rc;
	snprintf(e->open_err, sizeof(e->open_err), "%s", err ? err : "");
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	assert_int_equal(remus_loop_new(&e->loop), 0);
	assert_int_equal(remus_virt_open(e->loop, URI, NULL, on_open, e, &e->v), 0);
	run_until(e, &e->open_calls, 1);
	assert_int_equal(e->open_rc, 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	remus_virt_free(e->v);
	remus_loop_free(e->loop);
	free(e);
	return 0;
}

static struct job *job_new(void)
{
	struct job *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	j->loop_thread = pthread_self();
	j->gate = -1;
	return j;
}

static int work(virConnectPtr conn, void *opaque, char **err)
{
	struct job *j = opaque;
	char c;

	j->work_thread = pthread_self();
	__atomic_add_fetch(&j->work_calls, 1, __ATOMIC_SEQ_CST);
	if (j->gate >= 0 && read(j->gate, &c, 1) != 1)
		return -EIO;
	if (j->lookup) {
		virDomainPtr d = virDomainLookupByName(conn, j->lookup);

		if (!d)
			return -ENOENT;
		virDomainFree(d);
	}
	if (j->ret == -EPERM)
		*err = strdup("own message");
	return j->ret;
}

static void done(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct job *j = opaque;

	j->done_calls++;
	j->done_rc = rc;
	j->done_on_loop = pthread_equal(pthread_self(), j->loop_thread);
	snprintf(j->done_err, sizeof(j->done_err), "%s", err ? err : "");
	if (j->done_order)
		j->done_order[(*j->done_n)++] = j->tag;
}

static void job_count_free(void *opaque)
{
	struct job *j = opaque;

	j->free_calls++;
	j->free_on_loop = pthread_equal(pthread_self(), j->loop_thread);
	if (j->free_counter)
		(*j->free_counter)++;
}

/* Work off the loop, done then free_fn on it, once each. */
static void test_call_runs_off_loop(void **state)
{
	struct env *e = *state;
	struct job *j = job_new();

	j->lookup = "test";
	assert_int_equal(remus_virt_call(e->v, work, done, job_count_free, j), 0);
	assert_int_equal(remus_virt_pending(e->v), 1);
	assert_int_equal(j->done_calls, 0); /* never from inside call */
	run_until(e, &j->free_calls, 1);
	assert_int_equal(j->work_calls, 1);
	assert_int_equal(j->done_calls, 1);
	assert_int_equal(j->done_rc, 0);
	assert_string_equal(j->done_err, "");
	assert_false(pthread_equal(j->work_thread, j->loop_thread));
	assert_true(j->done_on_loop);
	assert_true(j->free_on_loop);
	assert_int_equal(remus_virt_pending(e->v), 0);
	assert_string_equal(remus_virt_uri(e->v), URI);
	free(j);
}

/* A libvirt failure reaches done as -errno with libvirt's message. */
static void test_call_reports_libvirt_error(void **state)
{
	struct env *e = *state;
	struct job *j = job_new();

	j->lookup = "no-such-domain";
	assert_int_equal(remus_virt_call(e->v, work, done, job_count_free, j), 0);
	run_until(e, &j->free_calls, 1);
	assert_int_equal(j->done_rc, -ENOENT);
	assert_non_null(strstr(j->done_err, "libvirt " URI ": "));
	assert_non_null(strstr(j->done_err, "Domain not found"));
	free(j);
}

/* Work's own message wins; with none and no libvirt error, strerror. */
static void test_call_own_error(void **state)
{
	struct env *e = *state;
	struct job *a = job_new(), *b = job_new();

	a->ret = -EPERM;
	b->ret = -EAGAIN;
	assert_int_equal(remus_virt_call(e->v, work, done, NULL, a), 0);
	assert_int_equal(remus_virt_call(e->v, work, done, NULL, b), 0);
	run_until(e, &a->done_calls, 1);
	run_until(e, &b->done_calls, 1);
	assert_string_equal(a->done_err, "libvirt " URI ": own message");
	assert_int_equal(b->done_rc, -EAGAIN);
	assert_non_null(strstr(b->done_err, strerror(EAGAIN)));
	free(a);
	free(b);
}

/* Cancelling an owner: queued work never runs, running work finishes
 * without a done, free_fn runs for both, other owners are untouched. */
static void test_cancel_owner(void **state)
{
	struct env *e = *state;
	struct remus_virt *v;
	struct remus_loop *loop = e->loop;
	struct remus_virt_opts opts = { .workers = 1 };
	struct job *running = job_new(), *queued = job_new(), *other = job_new();
	int owner, gate[2];
	char c = 'x';

	/* One worker, so "queued" surely waits behind "running". */
	assert_int_equal(remus_virt_open(loop, URI, &opts, NULL, NULL, &v), 0);
	assert_int_equal(pipe(gate), 0);
	running->gate = gate[0];
	assert_int_equal(remus_virt_call_owned(v, &owner, work, done, job_count_free,
					       running), 0);
	assert_int_equal(remus_virt_call_owned(v, &owner, work, done, job_count_free,
					       queued), 0);
	assert_int_equal(remus_virt_call(v, work, done, job_count_free, other), 0);
	/* Wait until the first work is blocked on its gate. */
	while (!__atomic_load_n(&running->work_calls, __ATOMIC_SEQ_CST))
		usleep(1000);
	assert_int_equal(remus_virt_cancel_owner(v, &owner), 2);
	assert_int_equal(queued->free_calls, 1); /* from inside cancel */
	assert_int_equal(running->free_calls, 0);
	assert_int_equal(remus_virt_pending(v), 1);
	assert_int_equal(write(gate[1], &c, 1), 1);
	run_until(e, &other->done_calls, 1);
	run_until(e, &running->free_calls, 1);
	assert_int_equal(running->done_calls, 0);
	assert_int_equal(queued->work_calls, 0);
	assert_int_equal(queued->done_calls, 0);
	assert_int_equal(other->free_calls, 1);
	assert_int_equal(remus_virt_pending(v), 0);
	assert_int_equal(remus_virt_cancel_owner(v, &owner), 0);
	remus_virt_free(v);
	close(gate[0]);
	close(gate[1]);
	free(running);
	free(queued);
	free(other);
}

/* With one worker, calls complete in submission order. */
static void test_one_worker_keeps_order(void **state)
{
	struct env *e = *state;
	struct remus_virt *v;
	struct remus_virt_opts opts = { .workers = 1 };
	struct job *j[8];
	int order[8], n = 0, i;

	assert_int_equal(remus_virt_open(e->loop, URI, &opts, NULL, NULL, &v), 0);
	for (i = 0; i < 8; i++) {
		j[i] = job_new();
		j[i]->tag = i;
		j[i]->done_order = order;
		j[i]->done_n = &n;
		assert_int_equal(remus_virt_call(v, work, done, NULL, j[i]), 0);
	}
	run_until(e, &n, 8);
	for (i = 0; i < 8; i++) {
		assert_int_equal(order[i], i);
		free(j[i]);
	}
	remus_virt_free(v);
}

/* A failed open is reported once and fails every call with its error. */
static void test_open_failure(void **state)
{
	struct remus_loop *loop;
	struct remus_virt *v;
	struct env e = { 0 };
	struct job *j = job_new();

	(void)state;
	assert_int_equal(remus_loop_new(&loop), 0);
	e.loop = loop;
	assert_int_equal(remus_virt_open(loop, "nosuchdriver:///x", NULL, on_open, &e, &v),
			 0);
	assert_int_equal(remus_virt_call(v, work, done, job_count_free, j), 0);
	run_until(&e, &j->free_calls, 1);
	assert_int_equal(e.open_calls, 1);
	assert_true(e.open_rc < 0);
	assert_non_null(strstr(e.open_err, "libvirt nosuchdriver:///x: cannot open: "));
	assert_int_equal(j->work_calls, 0);
	assert_int_equal(j->done_rc, e.open_rc);
	assert_string_equal(j->done_err, e.open_err);
	remus_virt_free(v);
	remus_loop_free(loop);
	free(j);
}

static void *open_gate_later(void *arg)
{
	int fd = *(int *)arg;
	char c = 'x';

	usleep(100 * 1000);
	if (write(fd, &c, 1) != 1)
		abort();
	return NULL;
}

/* free: done(-ECANCELED) for what is left, free_fn for everything. */
static void test_free_cancels_pending(void **state)
{
	struct env *e = *state;
	struct remus_virt *v;
	struct remus_virt_opts opts = { .workers = 1 };
	struct job *running = job_new(), *queued = job_new();
	int gate[2];
	pthread_t t;

	assert_int_equal(remus_virt_open(e->loop, URI, &opts, NULL, NULL, &v), 0);
	assert_int_equal(pipe(gate), 0);
	running->gate = gate[0];
	assert_int_equal(remus_virt_call(v, work, done, job_count_free, running), 0);
	assert_int_equal(remus_virt_call(v, work, done, job_count_free, queued), 0);
	while (!__atomic_load_n(&running->work_calls, __ATOMIC_SEQ_CST))
		usleep(1000);
	/* Unblock it a little later, from another thread: free takes the
	 * queued call first, then waits for the running one. */
	assert_int_equal(pthread_create(&t, NULL, open_gate_later, &gate[1]), 0);
	remus_virt_free(v);
	pthread_join(t, NULL);
	assert_int_equal(running->done_calls, 1);
	assert_int_equal(running->done_rc, -ECANCELED);
	assert_int_equal(running->free_calls, 1);
	assert_int_equal(queued->done_calls, 1);
	assert_int_equal(queued->done_rc, -ECANCELED);
	assert_int_equal(queued->work_calls, 0);
	assert_int_equal(queued->free_calls, 1);
	close(gate[0]);
	close(gate[1]);
	free(running);
	free(queued);
}

/* free from inside a done: the rest is cancelled, nothing is touched
 * after the callback returns (ASan would say). */
struct self_free {
	struct remus_virt **v;
	int calls;
};

static void done_frees(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct self_free *s = opaque;

	s->calls++;
	if (*s->v) {
		remus_virt_free(*s->v);
		*s->v = NULL;
		assert_int_equal(remus_virt_call(v, work, NULL, NULL, NULL), -ESHUTDOWN);
	}
}

static int work_nop(virConnectPtr conn, void *opaque, char **err)
{
	return 0;
}

static void test_free_from_done(void **state)
{
	struct env *e = *state;
	struct remus_virt *v;
	struct self_free a, b;

	assert_int_equal(remus_virt_open(e->loop, URI, NULL, NULL, NULL, &v), 0);
	a.v = b.v = &v;
	a.calls = b.calls = 0;
	assert_int_equal(remus_virt_call(v, work_nop, done_frees, NULL, &a), 0);
	assert_int_equal(remus_virt_call(v, work_nop, done_frees, NULL, &b), 0);
	while (v)
		assert_int_equal(remus_loop_run_once(e->loop, 50), 0);
	/* Both done: one for real, the other with -ECANCELED or for real. */
	assert_int_equal(a.calls + b.calls, 2);
}

/* Mailboxes: posts from another thread arrive in order on the loop;
 * nothing after close; a post after close fails and frees the message. */
struct mrec {
	int got[64];
	int n;
	bool on_loop;
	pthread_t loop_thread;
	struct remus_virt_mbox *close_in_cb; /* close from inside the callback */
};

static int freed_msgs;

static void msg_free(void *msg)
{
	__atomic_add_fetch(&freed_msgs, 1, __ATOMIC_SEQ_CST);
	free(msg);
}

static void on_msg(void *msg, void *opaque)
{
	struct mrec *r = opaque;

	r->got[r->n++] = *(int *)msg;
	r->on_loop = pthread_equal(pthread_self(), r->loop_thread);
	if (r->close_in_cb) {
		remus_virt_mbox_close(r->close_in_cb);
		r->close_in_cb = NULL;
	}
}

struct poster {
	struct remus_virt_mbox *m;
	int from, count;
};

static void *post_thread(void *arg)
{
	struct poster *p = arg;
	int i;

	for (i = 0; i < p->count; i++) {
		int *msg = malloc(sizeof(*msg));

		*msg = p->from + i;
		if (remus_virt_mbox_post(p->m, msg) < 0)
			break;
	}
	remus_virt_mbox_unref(p->m);
	return NULL;
}

static void test_mbox_order_and_close(void **state)
{
	struct env *e = *state;
	struct remus_virt_mbox *m;
	struct mrec r = { .loop_thread = pthread_self() };
	struct poster p;
	pthread_t t;
	int *late, i;

	freed_msgs = 0;
	assert_int_equal(remus_virt_mbox_new(e->v, on_msg, msg_free, &r, &m), 0);
	p.m = remus_virt_mbox_ref(m);
	p.from = 0;
	p.count = 32;
	assert_int_equal(pthread_create(&t, NULL, post_thread, &p), 0);
	pthread_join(t, NULL);
	run_until(e, &r.n, 32);
	for (i = 0; i < 32; i++)
		assert_int_equal(r.got[i], i);
	assert_true(r.on_loop);
	assert_int_equal(freed_msgs, 32);

	/* Queued, then closed before delivery: dropped and freed. */
	remus_virt_mbox_ref(m);
	late = malloc(sizeof(*late));
	*late = 99;
	assert_int_equal(remus_virt_mbox_post(m, late), 0);
	remus_virt_mbox_close(m);
	assert_int_equal(freed_msgs, 33);
	/* The other holder's post into the closed mailbox. */
	late = malloc(sizeof(*late));
	*late = 100;
	assert_int_equal(remus_virt_mbox_post(m, late), -EPIPE);
	assert_int_equal(freed_msgs, 34);
	remus_virt_mbox_unref(m);
	assert_int_equal(remus_loop_run_once(e->loop, 20), 0);
	assert_int_equal(r.n, 32);
}

static void test_mbox_close_in_callback(void **state)
{
	struct env *e = *state;
	struct remus_virt_mbox *m;
	struct mrec r = { .loop_thread = pthread_self() };
	int i;

	freed_msgs = 0;
	assert_int_equal(remus_virt_mbox_new(e->v, on_msg, msg_free, &r, &m), 0);
	r.close_in_cb = m;
	remus_virt_mbox_ref(m);
	for (i = 0; i < 3; i++) {
		int *msg = malloc(sizeof(*msg));

		*msg = i;
		assert_int_equal(remus_virt_mbox_post(m, msg), 0);
	}
	run_until(e, &r.n, 1);
	for (i = 0; i < 5; i++)
		assert_int_equal(remus_loop_run_once(e->loop, 10), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(freed_msgs, 3);
	remus_virt_mbox_unref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_call_runs_off_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_reports_libvirt_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_call_own_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_worker_keeps_order, setup, teardown),
		cmocka_unit_test(test_open_failure),
		cmocka_unit_test_setup_teardown(test_free_cancels_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_order_and_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_close_in_callback, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
