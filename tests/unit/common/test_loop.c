// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Event loop: fd dispatch, timers in due order, deferred calls, stop, and
 * the removal rules (a watch removed mid-batch is never called again).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
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
};

static void on_tagged(struct remus_loop *loop, void *opaque)
{
	struct tagged *t = opaque;

	t->r->order[t->r->norder++] = t->tag;
}

static void test_timers_order_and_cancel(void **state)
{
	struct remus_loop *loop;
	struct rec r = { 0 };
	struct tagged a = { &r, 'a' }, b = { &r, 'b' }, c = { &r, 'c' };
	remus_timer_id ib;
	uint64_t t0 = remus_now_ms();

	assert_int_equal(remus_loop_new(&loop), 0);
	assert_int_not_equal(remus_loop_add_timer(loop, 60, on_tagged, &c), 0);
	ib = remus_loop_add_timer(loop, 20, on_tagged, &b);
	assert_int_not_equal(remus_loop_add_timer(loop, 10, on_tagged, &a), 0);
	assert_true(remus_loop_del_timer(loop, ib));
	assert_false(remus_loop_del_timer(loop, ib));
	while (r.norder < 2)
		assert_int_equal(remus_loop_run_once(loop, -1), 0);
	assert_memory_equal(r.order, "ac", 2);
	/* c was due at 60 ms: not early. */
	assert_true(remus_now_ms() - t0 >= 60);
	remus_loop_free(loop);
}

/* A timer that re-arms itself with delay 0 must not starve fds. */
struct rearm {
	int fired;
	struct rec fdrec;
};

static void on_rearm(struct remus_loop *loop, void *opaque)
{
	struct rearm *r = opaque;

	r->fired++;
	remus_loop_add_timer(loop, 0, on_rearm, r);
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
	remus_loop_add_timer(loop, 0, on_rearm, &r);
	for (i = 0; i < 3; i++)
		assert_int_equal(remus_loop_run_once(loop, 100), 0);
	assert_int_equal(r.fdrec.calls, 1);
	/* One firing per iteration, not an endless loop inside one. */
	assert_int_equal(r.fired, 3);
	remus_loop_free(loop);
	close(sv[0]);
	close(sv[1]);
}

static void on_defer(struct remus_loop *loop, void *opaque)
{
	struct tagged *t = opaque;

	t->r->order[t->r->norder++] = t->tag;
	if (t->tag == 'x') {
		static struct tagged y;

		y.r = t->r;
		y.tag = 'y';
		remus_loop_defer(loop, on_defer, &y);
	}
}

static void test_defer_fifo(void **state)
{
	struct remus_loop *loop;
	struct rec r = { 0 };
	struct tagged x = { &r, 'x' }, z = { &r, 'z' };

	assert_int_equal(remus_loop_new(&loop), 0);
	assert_int_equal(remus_loop_defer(loop, on_defer, &x), 0);
	assert_int_equal(remus_loop_defer(loop, on_defer, &z), 0);
	assert_int_equal(remus_loop_run_once(loop, 0), 0);
	/* y was deferred by x while the FIFO ran: it waits one iteration. */
	assert_int_equal(r.norder, 2);
	assert_memory_equal(r.order, "xz", 2);
	assert_int_equal(remus_loop_run_once(loop, 1000), 0);
	assert_memory_equal(r.order, "xzy", 3);
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

	assert_int_equal(remus_loop_new(&loop), 0);
	remus_loop_add_timer(loop, 5, on_timer, &r);
	remus_loop_add_timer(loop, 15, on_stop, NULL);
	assert_int_equal(remus_loop_run(loop), -ECANCELED);
	assert_int_equal(r.calls, 1);
	remus_loop_free(loop);
}

static void test_free_with_pending(void **state)
{
	struct remus_loop *loop;
	struct rec r = { 0 };
	int sv[2];

	/* Freeing with watches, timers and calls pending leaks nothing (ASan
	 * checks) and calls nothing. */
	assert_int_equal(remus_loop_new(&loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(remus_loop_add_fd(loop, sv[0], REMUS_EV_READ, on_fd, &r), 0);
	remus_loop_add_timer(loop, 1000, on_timer, &r);
	remus_loop_defer(loop, on_timer, &r);
	remus_loop_free(loop);
	remus_loop_free(NULL);
	assert_int_equal(r.calls, 0);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_readable),
		cmocka_unit_test(test_del_other_mid_batch),
		cmocka_unit_test(test_timers_order_and_cancel),
		cmocka_unit_test(test_timer_rearm_no_starvation),
		cmocka_unit_test(test_defer_fifo),
		cmocka_unit_test(test_run_stop),
		cmocka_unit_test(test_free_with_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
