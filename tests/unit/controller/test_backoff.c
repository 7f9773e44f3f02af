// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for controller/backoff: the retry delay doubles per
 * consecutive failure from the base, never passes the cap (nor wraps,
 * however many failures), and a success starts again from the base.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "controller/backoff.h"

static void doubles_from_the_base(void **state)
{
	struct remus_backoff b;

	(void)state;
	remus_backoff_init(&b, 1000, REMUS_BACKOFF_CAP_MS);
	assert_int_equal(remus_backoff_delay(&b), 1000);
	assert_int_equal(remus_backoff_fail(&b), 1000);
	assert_int_equal(remus_backoff_fail(&b), 2000);
	assert_int_equal(remus_backoff_fail(&b), 4000);
	assert_int_equal(remus_backoff_fail(&b), 8000);
	assert_int_equal(remus_backoff_fail(&b), 16000);
	assert_int_equal(b.failures, 5);
	assert_int_equal(remus_backoff_delay(&b), 16000);
}

static void capped(void **state)
{
	struct remus_backoff b;
	unsigned i, d = 0;

	(void)state;
	remus_backoff_init(&b, 1000, 30000);
	for (i = 0; i < 6; i++)
		d = remus_backoff_fail(&b);
	assert_int_equal(d, 30000); /* 32000 capped */
	for (i = 0; i < 100; i++)
		assert_int_equal(remus_backoff_fail(&b), 30000);
	/* An odd cap is reached exactly, not overshot or undershot. */
	remus_backoff_init(&b, 300, 1000);
	assert_int_equal(remus_backoff_fail(&b), 300);
	assert_int_equal(remus_backoff_fail(&b), 600);
	assert_int_equal(remus_backoff_fail(&b), 1000);
	assert_int_equal(remus_backoff_fail(&b), 1000);
}

static void never_wraps(void **state)
{
	struct remus_backoff b;

	(void)state;
	remus_backoff_init(&b, UINT_MAX / 2 + 1, UINT_MAX);
	assert_int_equal(remus_backoff_fail(&b), UINT_MAX / 2 + 1);
	assert_int_equal(remus_backoff_fail(&b), UINT_MAX);
	b.failures = UINT_MAX;
	assert_int_equal(remus_backoff_fail(&b), UINT_MAX);
	assert_int_equal(b.failures, UINT_MAX);
	remus_backoff_init(&b, 1, 30000);
	b.failures = 1000;
	assert_int_equal(remus_backoff_delay(&b), 30000);
}

static void success_resets(void **state)
{
	struct remus_backoff b;

	(void)state;
	remus_backoff_init(&b, 300, 30000);
	remus_backoff_fail(&b);
	remus_backoff_fail(&b);
	assert_int_equal(remus_backoff_fail(&b), 1200);
	remus_backoff_success(&b);
	assert_int_equal(b.failures, 0);
	assert_int_equal(remus_backoff_fail(&b), 300);
}

static void base_above_cap(void **state)
{
	struct remus_backoff b;

	(void)state;
	/* --reconnect 60000 with the 30 s cap: the base is never cut. */
	remus_backoff_init(&b, 60000, 30000);
	assert_int_equal(remus_backoff_fail(&b), 60000);
	assert_int_equal(remus_backoff_fail(&b), 60000);
	remus_backoff_init(&b, 0, 10);
	assert_int_equal(remus_backoff_fail(&b), 1);
	assert_int_equal(remus_backoff_fail(&b), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(doubles_from_the_base),
		cmocka_unit_test(capped),
		cmocka_unit_test(never_wraps),
		cmocka_unit_test(success_resets),
		cmocka_unit_test(base_above_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
