// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The per-epoch queue of held frames (netbuffer/queue.c): release order
 * across NICs, barriers in the middle of the stream, commit of an older
 * epoch, labels repeated across protection sessions, the epoch byte bound,
 * pass-through and drop modes (standby lost, teardown), and the counters
 * and hold-time figures.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netbuffer/queue.h"

#define MS 1000000ull

/* Released frames, as "nic:payload" strings in release order. */
struct out {
	char log[4096];
	unsigned n;
};

static void on_release(void *opaque, unsigned nic, const uint8_t *data, uint32_t len,
		       uint32_t vnet)
{
	struct out *o = opaque;
	size_t l = strlen(o->log);

	snprintf(o->log + l, sizeof(o->log) - l, "%s%u:%.*s", o->n ? " " : "", nic,
		 (int)(len - vnet), (const char *)data + vnet);
	o->n++;
}

static void push(struct remus_nbq *q, unsigned nic, const char *s, uint64_t now)
{
	assert_int_equal(remus_nbq_push(q, nic, (const uint8_t *)s, (uint32_t)strlen(s), 0, now), 0);
}

static void test_order_across_nics(void **state)
{
	struct remus_nbq *q = malloc(sizeof(*q));
	struct out o = { .n = 0 };
	struct remus_netbuffer_stats st;

	remus_nbq_init(q, 0, on_release, &o);
	push(q, 0, "a", 0);
	push(q, 1, "b", 0);
	push(q, 0, "c", 0);
	push(q, 2, "d", 0);
	push(q, 1, "e", 0);
	assert_int_equal(remus_nbq_barrier(q, 1), 0);
	assert_int_equal(o.n, 0);
	assert_int_equal(remus_nbq_commit(q, 1, 0), 1);
	assert_string_equal(o.log, "0:a 1:b 0:c 2:d 1:e");
	memset(&st, 0, sizeof(st));
	remus_nbq_get_stats(q, &st);
	assert_int_equal(st.queued_frames, 5);
	assert_int_equal(st.released_frames, 5);
	assert_int_equal(st.released_bytes, 5);
	assert_int_equal(st.held_frames, 0);
	assert_int_equal(st.held_epochs, 0);
	assert_int_equal(st.barriers, 1);
	assert_int_equal(st.commits, 1);
	remus_nbq_release(q);
	free(q);
}

static void test_barrier_mid_stream(void **state)
{
	struct remus_nbq *q = malloc(sizeof(*q));
	struct out o = { .n = 0 };
	struct remus_netbuffer_stats st;

	remus_nbq_init(q, 0, on_release, &o);
	push(q, 0, "a1", 0);
	push(q, 1, "b1", 0);
	assert_int_equal(remus_nbq_barrier(q, 7), 0);
	/* Frames after the barrier wait for the next epoch. */
	push(q, 1, "b2", 0);
	push(q, 0, "a2", 0);
	assert_int_equal(remus_nbq_commit(q, 7, 0), 1);
	assert_string_equal(o.log, "0:a1 1:b1");
	remus_nbq_get_stats(q, &st);
	assert_int_equal(st.held_frames, 2);
	assert_int_equal(st.held_bytes, 4);
	assert_int_equal(st.held_epochs, 0);
	/* Committing the same epoch twice is unknown the second time. */
	assert_int_equal(remus_nbq_commit(q, 7, 0), -ENOENT);
	/* The open bucket is never released by a commit. */
	assert_int_equal(remus_nbq_commit(q, 8, 0), -ENOENT);
	assert_int_equal(remus_nbq_barrier(q, 8), 0);
	assert_int_equal(remus_nbq_commit(q, 8, 0), 1);
	assert_string_equal(o.log, "0:a1 1:b1 1:b2 0:a2");
	/* An epoch without output still has a bucket to commit. */
	assert_int_equal(remus_nbq_barrier(q, 9), 0);
	assert_int_equal(remus_nbq_commit(q, 9, 0), 1);
	assert_int_equal(o.n, 4);
	remus_nbq_release(q);
	free(q);
}

static void test_commit_releases_older(void **state)
{
	struct remus_nbq *q = malloc(sizeof(*q));
	struct out o = { .n = 0 };
	struct remus_netbuffer_stats st;

	remus_nbq_init(q, 0, on_release, &o);
	push(q, 0, "e1", 0);
	remus_nbq_barrier(q, 1);
	push(q, 0, "e2", 0);
	remus_nbq_barrier(q, 2);
	push(q, 0, "e3", 0);
	remus_nbq_barrier(q, 3);
	push(q, 0, "open", 0);
	remus_nbq_get_stats(q, &st);
	assert_int_equal(st.held_epochs, 3);
	/* Commit 2 covers 1 as well (acks can be lost or coalesced). */
	assert_int_equal(remus_nbq_commit(q, 2, 0), 2);
	assert_string_equal(o.log, "0:e1 0:e2");
	/* An older label after a newer commit: unknown, nothing moves. */
	assert_int_equal(remus_nbq_commit(q, 1, 0), -ENOENT);
	assert_int_equal(o.n, 2);
	remus_nbq_get_stats(q, &st);
	assert_int_equal(st.held_epochs, 1);
	assert_int_equal(st.held_frames, 2);
	assert_int_equal(st.commits, 1);
	assert_int_equal(remus_nbq_commit(q, 3, 0), 1);
	assert_string_equal(o.log, "0:e1 0:e2 0:e3");
	remus_nbq_release(q);
	free(q);
}

static void test_repeated_labels(void **state)
{
	struct remus_nbq *q = malloc(sizeof(*q));
	struct out o = { .n = 0 };

	remus_nbq_init(q, 0, on_release, &o);
	/* Session 1 gets to epochs 5 and 6, unacknowledged (standby died,
	 * policy hold); session 2's standby numbers from 5 again. */
	push(q, 0, "s1e5", 0);
	remus_nbq_barrier(q, 5);
	push(q, 0, "s1e6", 0);
	remus_nbq_barrier(q, 6);
	push(q, 1, "s2e5", 0);
	remus_nbq_barrier(q, 5);
	push(q, 1, "s2e6", 0);
	remus_nbq_barrier(q, 6);
	/* The newest "5" is session 2's: it and everything older go. */
	assert_int_equal(remus_nbq_commit(q, 5, 0), 3);
	assert_string_equal(o.log, "0:s1e5 0:s1e6 1:s2e5");
	assert_int_equal(remus_nbq_commit(q, 6, 0), 1);
	assert_string_equal(o.log, "0:s1e5 0:s1e6 1:s2e5 1:s2e6");
	remus_nbq_release(q);
	free(q);
}

static void test_overflow(void **state)
{
	struct remus_nbq *q = malloc(sizeof(*q));
	struct out o = { .n = 0 };
	struct remus_netbuffer_stats st;
	uint8_t big[100];

	memset(big, 'x', sizeof(big));
	remus_nbq_init(q, 100, on_release, &o);
	assert_int_equal(remus_nbq_push(q, 0, big, 60, 0, 0), 0);
	assert_int_equal(remus_nbq_push(q, 1, big, 41, 0, 0), -ENOBUFS);
	assert_int_equal(remus_nbq_push(q, 1, big, 40, 0, 0), 0); /* exactly 100 */
	assert_int_equal(remus_nbq_push(q, 0, big, 1, 0, 0), -ENOBUFS);
	remus_nbq_barrier(q, 1);
	/* The bound is per epoch: the next bucket starts empty. */
	assert_int_equal(remus_nbq_push(q, 0, big, 100, 0, 0), 0);
	assert_int_equal(remus_nbq_push(q, 0, big, 1, 0, 0), -ENOBUFS);
	remus_nbq_get_stats(q, &st);
	assert_int_equal(st.dropped_overflow, 3);
	assert_int_equal(st.queued_frames, 3);
	assert_int_equal(st.queued_bytes, 200);
	assert_int_equal(st.held_bytes, 200);
	assert_int_equal(st.max_held_bytes, 200);
	remus_nbq_commit(q, 1, 0);
	assert_int_equal(o.n, 2);
	remus_nbq_get_stats(q, &st);
	assert_int_equal(st.held_bytes, 100);
	assert_int_equal(st.max_held_bytes, 200);
	remus_nbq_release(q);
	free(q);
}

static void test_passthrough_and_hold_again(void **state)
{
	struct remus_nbq *q = malloc(sizeof(*q));
	struct out o = { .n = 0 };
	struct remus_netbuffer_stats st;

	remus_nbq_init(q, 0, on_release, &o);
	push(q, 0, "c1", 0);
	remus_nbq_barrier(q, 1);
	push(q, 1, "o1", 0);
	/* Standby lost, policy release: closed and open buckets go, in order. */
	remus_nbq_set_mode(q, REMUS_NBQ_PASS, 0);
	assert_string_equal(o.log, "0:c1 1:o1");
	/* Then frames pass straight through; barriers only count. */
	push(q, 0, "p1", 0);
	assert_string_equal(o.log, "0:c1 1:o1 0:p1");
	assert_int_equal(remus_nbq_barrier(q, 2), 0);
	assert_int_equal(remus_nbq_commit(q, 2, 0), -ENOENT);
	remus_nbq_get_stats(q, &st);
	assert_int_equal(st.passthrough_frames, 1);
	assert_int_equal(st.passthrough_bytes, 2);
	assert_int_equal(st.released_frames, 2);
	assert_int_equal(st.held_frames, 0);
	assert_int_equal(st.barriers, 2);
	/* Protect: held again from the next frame. */
	remus_nbq_set_mode(q, REMUS_NBQ_HOLD, 0);
	push(q, 0, "h1", 0);
	assert_int_equal(o.n, 3);
	remus_nbq_barrier(q, 1);
	assert_int_equal(remus_nbq_commit(q, 1, 0), 1);
	assert_string_equal(o.log, "0:c1 1:o1 0:p1 0:h1");
	/* Policy hold is the absence of a mode change: nothing leaves. */
	push(q, 0, "h2", 0);
	remus_nbq_set_mode(q, REMUS_NBQ_HOLD, 0);
	assert_int_equal(o.n, 4);
	remus_nbq_release(q);
	free(q);
}

static void test_teardown_release_drop(void **state)
{
	struct remus_nbq *q = malloc(sizeof(*q));
	struct out o = { .n = 0 };
	struct remus_netbuffer_stats st;

	remus_nbq_init(q, 0, on_release, &o);
	push(q, 0, "a", 0);
	remus_nbq_barrier(q, 1);
	push(q, 0, "b", 0);
	remus_nbq_flush(q, 0);
	assert_string_equal(o.log, "0:a 0:b");
	push(q, 0, "c", 0);
	remus_nbq_barrier(q, 2);
	push(q, 1, "d", 0);
	remus_nbq_set_mode(q, REMUS_NBQ_DROP, 0);
	assert_int_equal(o.n, 2);
	/* In drop mode, later frames are dropped too, and counted. */
	push(q, 1, "e", 0);
	remus_nbq_get_stats(q, &st);
	assert_int_equal(st.dropped_teardown, 3);
	assert_int_equal(st.held_frames, 0);
	assert_int_equal(st.held_bytes, 0);
	assert_int_equal(st.held_epochs, 0);
	assert_int_equal(st.released_frames, 2);
	assert_int_equal(o.n, 2);
	remus_nbq_release(q);
	free(q);
}

static void test_latency(void **state)
{
	struct remus_nbq *q = malloc(sizeof(*q));
	struct remus_netbuffer_stats st;
	unsigned i;

	remus_nbq_init(q, 0, NULL, NULL);
	remus_nbq_get_stats(q, &st);
	assert_true(st.latency_p50_ms == -1 && st.latency_max_ms == -1);
	/* Held 10, 20, 30 ms: p50 20, max 30. */
	push(q, 0, "a", 100 * MS);
	push(q, 0, "b", 90 * MS);
	push(q, 0, "c", 80 * MS);
	remus_nbq_barrier(q, 1);
	remus_nbq_commit(q, 1, 110 * MS);
	remus_nbq_get_stats(q, &st);
	assert_true(st.latency_p50_ms > 19.99 && st.latency_p50_ms < 20.01);
	assert_true(st.latency_max_ms > 29.99 && st.latency_max_ms < 30.01);
	/* Only the last 4096 releases count: 4096 frames held 1 ms push
	 * the 30 ms one out of the window. */
	for (i = 0; i < REMUS_NBQ_LATENCY_WINDOW; i++)
		push(q, 0, "x", 200 * MS);
	remus_nbq_barrier(q, 2);
	remus_nbq_commit(q, 2, 201 * MS);
	remus_nbq_get_stats(q, &st);
	assert_true(st.latency_max_ms > 0.99 && st.latency_max_ms < 1.01);
	assert_true(st.latency_p50_ms > 0.99 && st.latency_p50_ms < 1.01);
	/* Pass-through frames were never held: no hold time recorded. */
	remus_nbq_set_mode(q, REMUS_NBQ_PASS, 300 * MS);
	push(q, 0, "p", 0);
	remus_nbq_get_stats(q, &st);
	assert_true(st.latency_max_ms < 1.01);
	remus_nbq_release(q);
	free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_across_nics),
		cmocka_unit_test(test_barrier_mid_stream),
		cmocka_unit_test(test_commit_releases_older),
		cmocka_unit_test(test_repeated_labels),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_passthrough_and_hold_again),
		cmocka_unit_test(test_teardown_release_drop),
		cmocka_unit_test(test_latency),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
