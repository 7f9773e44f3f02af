// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Event loop: fd dispatch, timers in due order (re-arm moves, disarm from
 * any callback, many timers, freeing the loop with timers armed), stop, the
 * removal rules (a watch removed mid-batch is never called again), and the
 * longest stall (work counts, waiting does not, not even a nested wait).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/loop.h"

struct rec {
	int calls;
	unsigned last_events;
	char order[32];
	size_t norder;
};

static void on_fd(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct rec *r = opaque;
	char c;

	r->calls++;
	r->last_events = ev;
	if (ev & REMUS_EV_READ)
		(void)read(fd, &c, 1);
}

static void test_fd_readable(void **state)
{
	struct remus_loop *loop;
	struct rec r = { 0 };
	int sv[2];

	assert_int_equal(remus_loop_new(&loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(remus_loop_add_fd(loop, sv[0], REMUS_EV_READ, on_fd, &r), 0);
	assert_int_equal(remus_loop_add_fd(loop, sv[0], REMUS_EV_READ, on_fd, &r), -EEXIST);
	/* Nothing to read: no call within the timeout. */
	assert_int_equal(remus_loop_run_once(loop, 10), 0);
	assert_int_equal(r.calls, 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(remus_loop_run_once(loop, 1000), 0);
	assert_int_equal(r.calls, 1);
	assert_true(r.last_events & REMUS_EV_READ);
	/* Writable interest via mod. */
	assert_int_equal(remus_loop_mod_fd(loop, sv[0], REMUS_EV_WRITE), 0);
	assert_int_equal(remus_loop_run_once(loop, 1000), 0);
	assert_int_equal(r.calls, 2);
	assert_true(r.last_events & REMUS_EV_WRITE);
	assert_int_equal(remus_loop_del_fd(loop, sv[0]), 0);
	assert_int_equal(remus_loop_del_fd(loop, sv[0]), -ENOENT);
	assert_int_equal(remus_loop_mod_fd(loop, sv[0], REMUS_EV_READ), -ENOENT);
	remus_loop_free(loop);
	close(sv[0]);
	close(sv[1]);
}

/* Two readable fds; whichever callback runs first removes the other's
 * watch: the other must not be called in the same batch. */
struct pair {
	struct remus_loop *loop;
	int fds[2];
	int calls[2];
};

static void on_pair(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct pair *p = opaque;
	int me = fd == p->fds[0] ? 0 : 1;

	p->calls[me]++;
	remus_loop_del_fd(loop, p->fds[!me]);
}

static void test_del_other_mid_batch(void **state)
{
	struct pair p = { 0 };
	int a[2], b[2];

	assert_int_equal(remus_loop_new(&p.loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	p.fds[0] = a[0];
	p.fds[1] = b[0];
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	assert_int_equal(remus_loop_add_fd(p.loop, a[0], REMUS_EV_READ, on_pair, &p), 0);
	assert_int_equal(remus_loop_add_fd(p.loop, b[0], REMUS_EV_READ, on_pair, &p), 0);
	assert_int_equal(remus_loop_run_once(p.loop, 1000), 0);
	assert_int_equal(p.calls[0] + p.calls[1], 1);
	remus_loop_free(p.loop);
	close(a[0]); close(a[1]); close(b[0]); close(b[1]);
}

static void on_timer(struct remus_loop *loop, void *opaque)
{
	struct rec *r = opaque;

	r->calls++;
}

struct tagged {
	struct rec *r;
	char tag;
	struct remus_timer t;
};

static void on_tagged(struct remus_loop *loop, void *opaque)
{
	struct tagged *t = opaque;

	assert_false(remus_timer_armed(&t->t));
	t->r->order[t->r->norder++] = t->tag;
}

static void tag_init(struct tagged *t, struct remus_loop *loop, struct rec *r, char tag)
{
	t->r = r;
	t->tag = tag;
	remus_timer_init(&t->t, loop, on_tagged, t);
}

static void run_until(struct remus_loop *loop, struct rec *r, size_t n)
{
	uint64_t t0 = remus_now_ms();

	while (r->norder < n) {
		assert_int_equal(remus_loop_run_once(loop, 100), 0);
		assert_true(remus_now_ms() - t0 < 5000);
	}
}

static void test_timers_order_and_cancel(void **state)
{
	struct remus_loop *loop;
	struct rec r = { 0 };
	struct tagged a, b, c, d, e;
	uint64_t t0 = remus_now_ms();

	assert_int_equal(remus_loop_new(&loop), 0);
	tag_init(&a, loop, &r, 'a');
	tag_init(&b, loop, &r, 'b');
	tag_init(&c, loop, &r, 'c');
	tag_init(&d, loop, &r, 'd');
	tag_init(&e, loop, &r, 'e');
	assert_false(remus_timer_armed(&a.t));
	remus_timer_arm(&c.t, 60);
	remus_timer_arm(&b.t, 20);
	remus_timer_arm(&a.t, 10);
	/* Same due time as each other: arming order. */
	remus_timer_arm(&d.t, 0);
	remus_timer_arm(&e.t, 0);
	assert_true(remus_timer_armed(&b.t));
	remus_timer_disarm(&b.t);
	assert_false(remus_timer_armed(&b.t));
	remus_timer_disarm(&b.t); /* idempotent */
	run_until(loop, &r, 4);
	assert_memory_equal(r.order, "deac", 4);
	/* c was due at 60 ms: not early. */
	assert_true(remus_now_ms() - t0 >= 60);
	/* Fired timers are disarmed; disarming them again changes nothing. */
	remus_timer_disarm(&a.t);
	assert_int_equal(remus_loop_run_once(loop, 30), 0);
	assert_int_equal(r.norder, 4);
	remus_loop_free(loop);
}

static void test_timer_rearm_moves(void **state)
{
	struct remus_loop *loop;
	struct rec r = { 0 };
	struct tagged a, b;

	assert_int_equal(remus_loop_new(&loop), 0);
	tag_init(&a, loop, &r, 'a');
	tag_init(&b, loop, &r, 'b');
	remus_timer_arm(&a.t, 10);
	remus_timer_arm(&b.t, 30);
	/* Later, then earlier again: one firing each, at the last time. */
	remus_timer_arm(&a.t, 60);
	remus_timer_arm(&b.t, 5);
	remus_timer_arm(&b.t, 20);
	run_until(loop, &r, 2);
	assert_memory_equal(r.order, "ba", 2);
	assert_int_equal(remus_loop_run_once(loop, 30), 0);
	assert_int_equal(r.norder, 2);
	remus_loop_free(loop);
}

/* Callbacks that disarm, move or re-arm timers of the same batch. */
struct juggler {
	struct remus_timer self, other, third;
	int self_calls, other_calls, third_calls;
	int mode;
};

static void on_other(struct remus_loop *loop, void *opaque)
{
	struct juggler *j = opaque;

	j->other_calls++;
}

static void on_third(struct remus_loop *loop, void *opaque)
{
	struct juggler *j = opaque;

	j->third_calls++;
}

static void on_juggle(struct remus_loop *loop, void *opaque)
{
	struct juggler *j = opaque;

	j->self_calls++;
	switch (j->mode) {
	case 0: /* disarm the other due timer of this batch */
		assert_true(remus_timer_armed(&j->other));
		remus_timer_disarm(&j->other);
		break;
	case 1: /* move the other due timer into the future */
		remus_timer_arm(&j->other, 50);
		break;
	case 2: /* disarm ourselves: already disarmed, nothing happens */
		remus_timer_disarm(&j->self);
		/* and re-init a disarmed timer with another callback */
		remus_timer_init(&j->third, loop, on_other, j);
		remus_timer_arm(&j->third, 0);
		break;
	}
}

static void test_timer_disarm_inside_callbacks(void **state)
{
	struct remus_loop *loop;
	struct juggler j;
	int mode, i;

	assert_int_equal(remus_loop_new(&loop), 0);
	for (mode = 0; mode < 3; mode++) {
		memset(&j, 0, sizeof(j));
		j.mode = mode;
		remus_timer_init(&j.self, loop, on_juggle, &j);
		remus_timer_init(&j.other, loop, on_other, &j);
		remus_timer_init(&j.third, loop, on_third, &j);
		remus_timer_arm(&j.self, 0);
		remus_timer_arm(&j.other, 0);
		usleep(2000);
		assert_int_equal(remus_loop_run_once(loop, 0), 0);
		assert_int_equal(j.self_calls, 1);
		/* other runs after self in the same batch unless self stopped it */
		assert_int_equal(j.other_calls, mode == 2 ? 1 : 0);
		switch (mode) {
		case 0:
			assert_false(remus_timer_armed(&j.other));
			assert_int_equal(remus_loop_run_once(loop, 20), 0);
			assert_int_equal(j.other_calls, 0);
			break;
		case 1:
			assert_true(remus_timer_armed(&j.other));
			for (i = 0; i < 100 && !j.other_calls; i++)
				assert_int_equal(remus_loop_run_once(loop, 100), 0);
			assert_int_equal(j.other_calls, 1);
			break;
		case 2:
			/* third, re-initialised and armed by the callback,
			 * waits for the next round, with its new callback. */
			assert_int_equal(remus_loop_run_once(loop, 100), 0);
			assert_int_equal(j.third_calls, 0);
			assert_int_equal(j.other_calls, 2);
			break;
		}
	}
	remus_loop_free(loop);
}

/* A timer that re-arms itself with delay 0 must not starve fds. */
struct rearm {
	int fired;
	struct rec fdrec;
	struct remus_timer t;
};

static void on_rearm(struct remus_loop *loop, void *opaque)
{
	struct rearm *r = opaque;

	r->fired++;
	remus_timer_arm(&r->t, 0);
}

static void test_timer_rearm_no_starvation(void **state)
{
	struct remus_loop *loop;
	struct rearm r = { 0 };
	int sv[2], i;

	assert_int_equal(remus_loop_new(&loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(remus_loop_add_fd(loop, sv[0], REMUS_EV_READ, on_fd, &r.fdrec), 0);
	remus_timer_init(&r.t, loop, on_rearm, &r);
	remus_timer_arm(&r.t, 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(remus_loop_run_once(loop, 100), 0);
	assert_int_equal(r.fdrec.calls, 1);
	/* One firing per iteration, not an endless loop inside one. */
	assert_int_equal(r.fired, 3);
	remus_timer_disarm(&r.t);
	remus_loop_free(loop);
	close(sv[0]);
	close(sv[1]);
}

/* Many timers armed in a scrambled order fire in due order, each once. */
#define MANY 500

struct many {
	struct remus_timer t[MANY];
	unsigned delay[MANY];
	unsigned fired[MANY];
	unsigned order[MANY];
	unsigned n;
};

struct many_ctx {
	struct many *m;
	unsigned i;
};

static void on_many_ctx(struct remus_loop *loop, void *opaque)
{
	struct many_ctx *c = opaque;

	c->m->fired[c->i]++;
	c->m->order[c->m->n++] = c->i;
}

static void test_many_timers(void **state)
{
	static struct many m;
	static struct many_ctx ctx[MANY];
	struct remus_loop *loop;
	unsigned i, k;

	memset(&m, 0, sizeof(m));
	assert_int_equal(remus_loop_new(&loop), 0);
	for (i = 0; i < MANY; i++) {
		/* 0..49 ms, a permutation-like spread with many equal times */
		k = (i * 7919u) % MANY;
		m.delay[i] = k / 10;
		ctx[i] = (struct many_ctx){ &m, i };
		remus_timer_init(&m.t[i], loop, on_many_ctx, &ctx[i]);
		remus_timer_arm(&m.t[i], m.delay[i]);
	}
	/* Every fourth is disarmed, every seventh moved to 10 ms later. */
	for (i = 0; i < MANY; i += 4)
		remus_timer_disarm(&m.t[i]);
	for (i = 3; i < MANY; i += 7) {
		if (i % 4 == 0)
			continue;
		m.delay[i] += 10;
		remus_timer_arm(&m.t[i], m.delay[i]);
	}
	while (m.n < MANY - (MANY + 3) / 4)
		assert_int_equal(remus_loop_run_once(loop, 100), 0);
	assert_int_equal(remus_loop_run_once(loop, 20), 0);
	assert_int_equal(m.n, MANY - (MANY + 3) / 4);
	for (i = 0; i < MANY; i++)
		assert_int_equal(m.fired[i], i % 4 == 0 ? 0 : 1);
	/* In due order: the list's invariant, read from the private field. */
	for (i = 1; i < m.n; i++)
		assert_true(m.t[m.order[i - 1]].due_ns <= m.t[m.order[i]].due_ns);
	remus_loop_free(loop);
}

static void on_stop(struct remus_loop *loop, void *opaque)
{
	remus_loop_stop(loop, -ECANCELED);
}

static void test_run_stop(void **state)
{
	struct remus_loop *loop;
	struct rec r = { 0 };
	struct remus_timer t1, t2;

	assert_int_equal(remus_loop_new(&loop), 0);
	remus_timer_init(&t1, loop, on_timer, &r);
	remus_timer_init(&t2, loop, on_stop, NULL);
	remus_timer_arm(&t1, 5);
	remus_timer_arm(&t2, 15);
	assert_int_equal(remus_loop_run(loop), -ECANCELED);
	assert_int_equal(r.calls, 1);
	remus_loop_free(loop);
}

static void test_free_with_pending(void **state)
{
	struct remus_loop *loop;
	struct rec r = { 0 };
	struct remus_timer t[3], zero;
	int sv[2], i;

	/* Freeing with watches and armed timers leaks nothing (ASan checks)
	 * and calls nothing; the timers are left disarmed, so their owners
	 * may disarm them after the loop is gone. */
	assert_int_equal(remus_loop_new(&loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(remus_loop_add_fd(loop, sv[0], REMUS_EV_READ, on_fd, &r), 0);
	for (i = 0; i < 3; i++) {
		remus_timer_init(&t[i], loop, on_timer, &r);
		remus_timer_arm(&t[i], (uint64_t)i * 1000);
	}
	remus_loop_free(loop);
	remus_loop_free(NULL);
	assert_int_equal(r.calls, 0);
	for (i = 0; i < 3; i++) {
		assert_false(remus_timer_armed(&t[i]));
		remus_timer_disarm(&t[i]);
	}
	/* A zeroed timer is a disarmed one. */
	memset(&zero, 0, sizeof(zero));
	assert_false(remus_timer_armed(&zero));
	remus_timer_disarm(&zero);
	close(sv[0]);
	close(sv[1]);
}

static void busy_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ms * 1000000L };

	nanosleep(&ts, NULL); /* the loop cannot tell sleeping from working */
}

static void on_busy(struct remus_loop *loop, void *opaque)
{
	busy_ms(*(unsigned *)opaque);
}

static void on_nested_wait(struct remus_loop *loop, void *opaque)
{
	struct remus_timer *inner = opaque;

	/* A synchronous helper: waits 300 ms in a nested iteration, whose
	 * timer then works 5 ms.  Only the work is a stall. */
	remus_timer_arm(inner, 300);
	while (remus_timer_armed(inner))
		assert_int_equal(remus_loop_run_once(loop, -1), 0);
}

/* The waits (300 ms) dwarf the work (5 ms), so a loaded machine that
 * stretches the work cannot make it look like a wait was counted. */
static void test_max_stall(void **state)
{
	struct remus_loop *loop;
	struct remus_timer t, inner;
	unsigned work = 30, small = 5;

	assert_int_equal(remus_loop_new(&loop), 0);
	assert_true(remus_loop_max_stall_ms(loop) == 0);
	/* Waiting 300 ms for a timer is no stall. */
	remus_timer_init(&t, loop, on_busy, &small);
	remus_timer_arm(&t, 300);
	assert_int_equal(remus_loop_run_once(loop, -1), 0);
	assert_true(remus_loop_max_stall_ms(loop) >= 4.5);
	assert_true(remus_loop_max_stall_ms(loop) < 250);
	/* 30 ms of work in a callback is. */
	remus_timer_init(&t, loop, on_busy, &work);
	remus_timer_arm(&t, 0);
	assert_int_equal(remus_loop_run_once(loop, -1), 0);
	assert_true(remus_loop_max_stall_ms(loop) >= 29.5);
	remus_loop_reset_max_stall(loop);
	assert_true(remus_loop_max_stall_ms(loop) == 0);
	/* A nested iteration's wait is not the outer iteration's work. */
	remus_timer_init(&inner, loop, on_busy, &small);
	remus_timer_init(&t, loop, on_nested_wait, &inner);
	remus_timer_arm(&t, 0);
	assert_int_equal(remus_loop_run_once(loop, -1), 0);
	assert_true(remus_loop_max_stall_ms(loop) >= 4.5);
	assert_true(remus_loop_max_stall_ms(loop) < 250);
	remus_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_readable),
		cmocka_unit_test(test_del_other_mid_batch),
		cmocka_unit_test(test_timers_order_and_cancel),
		cmocka_unit_test(test_timer_rearm_moves),
		cmocka_unit_test(test_timer_disarm_inside_callbacks),
		cmocka_unit_test(test_timer_rearm_no_starvation),
		cmocka_unit_test(test_many_timers),
		cmocka_unit_test(test_run_stop),
		cmocka_unit_test(test_free_with_pending),
		cmocka_unit_test(test_max_stall),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
