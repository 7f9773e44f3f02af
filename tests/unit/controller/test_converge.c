// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for controller/converge: the channel's rate is the fastest
 * window of the epoch (it does not fall to the dirtying rate once the
 * first pass is done), the gate opens only after the first pass and when
 * the predicted pause fits half the budget, and the cancel point leaves a
 * reserve inside the budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "controller/converge.h"

#define MS 1000000ull
#define MB 1000000ull

static void rate_is_the_peak_window(void **state)
{
	struct remus_converge c;
	uint64_t t = 5000 * MS, bytes = 0;
	int i;

	(void)state;
	remus_converge_start(&c, t, 0);
	assert_true(remus_converge_rate(&c, t, 0) == 0);
	/* First pass: 500 MB/s for 2 s, sampled every 10 ms. */
	for (i = 0; i < 200; i++) {
		t += 10 * MS;
		bytes += 5 * MB;
		remus_converge_sample(&c, t, bytes);
	}
	assert_float_equal(remus_converge_rate(&c, t, bytes), 500e6, 1e6);
	assert_float_equal(remus_converge_recent_rate(&c), 500e6, 1e6);
	/* Then only the dirtied pages: 4 MB/s for 8 s.  The recent rate
	 * falls, the capacity does not. */
	for (i = 0; i < 800; i++) {
		t += 10 * MS;
		bytes += 40000;
		remus_converge_sample(&c, t, bytes);
	}
	assert_float_equal(remus_converge_recent_rate(&c), 4e6, 0.1e6);
	assert_float_equal(remus_converge_rate(&c, t, bytes), 500e6, 1e6);
	/* 33 MB remaining at 500 MB/s: 66 ms, inside half of 300 ms. */
	assert_float_equal(remus_converge_predict_ms(33 * MB, remus_converge_rate(&c, t, bytes)),
			   66, 0.5);
}

static void average_when_no_window_closed(void **state)
{
	struct remus_converge c;

	(void)state;
	remus_converge_start(&c, 0, 0);
	/* One burst, sampled before any window closed: the average. */
	remus_converge_sample(&c, 100 * MS, 10 * MB);
	assert_true(remus_converge_recent_rate(&c) == 0);
	assert_float_equal(remus_converge_rate(&c, 100 * MS, 10 * MB), 100e6, 1e3);
	/* A new epoch forgets the old one's peak. */
	remus_converge_sample(&c, 300 * MS, 100 * MB);
	assert_float_equal(remus_converge_rate(&c, 300 * MS, 100 * MB), 333e6, 1e6);
	remus_converge_start(&c, 1000 * MS, 0);
	assert_true(remus_converge_rate(&c, 1000 * MS, 0) == 0);
	assert_float_equal(remus_converge_rate(&c, 2000 * MS, 1 * MB), 1e6, 1e3);
}

static void predict(void **state)
{
	(void)state;
	assert_true(remus_converge_predict_ms(0, 0) == 0);
	assert_true(remus_converge_predict_ms(1, 0) >= 1e12);
	assert_float_equal(remus_converge_predict_ms(875 * MB, 135e6), 6481, 1);
}

static void gate(void **state)
{
	(void)state;
	/* First pass not done: never, however little remains. */
	assert_false(remus_converge_ready(1, 0, 300));
	assert_false(remus_converge_ready(0, 0, 300));
	/* Done, and the pause fits half the budget. */
	assert_true(remus_converge_ready(2, 150, 300));
	assert_true(remus_converge_ready(7, 0, 300));
	assert_false(remus_converge_ready(2, 151, 300));
	assert_false(remus_converge_ready(3, 1e12, 300));
}

static void downtime_limit(void **state)
{
	(void)state;
	assert_int_equal(remus_converge_downtime_limit_ms(300), 30);
	assert_int_equal(remus_converge_downtime_limit_ms(25), 2);
	assert_int_equal(remus_converge_downtime_limit_ms(19), 1);
	assert_int_equal(remus_converge_downtime_limit_ms(1), 1);
}

static void cancel_point(void **state)
{
	(void)state;
	assert_int_equal(remus_converge_cancel_at_ms(300), 250);   /* reserve 50 */
	assert_int_equal(remus_converge_cancel_at_ms(1000), 950);  /* capped at 50 */
	assert_int_equal(remus_converge_cancel_at_ms(100), 80);
	assert_int_equal(remus_converge_cancel_at_ms(20), 16);
	assert_int_equal(remus_converge_cancel_at_ms(5), 3);       /* at least 2 */
	assert_int_equal(remus_converge_cancel_at_ms(2), 1);
	assert_int_equal(remus_converge_cancel_at_ms(0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rate_is_the_peak_window),
		cmocka_unit_test(average_when_no_window_closed),
		cmocka_unit_test(predict),
		cmocka_unit_test(gate),
		cmocka_unit_test(downtime_limit),
		cmocka_unit_test(cancel_point),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
