// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The standby's state machine (failover/standby.h): the allowed changes,
 * restated from the diagram, every other change refused, and the names
 * `status` prints (the enum constants' suffixes in lower case).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "failover/standby.h"
#include "support/state_table.h"

#define S(x) REMUS_STANDBY_##x

static const struct state_pair allowed[] = {
	{ S(WAITING), S(RECEIVING) }, { S(WAITING), S(FAILOVER) }, { S(WAITING), S(FAILED) },
	{ S(RECEIVING), S(WAITING) }, { S(RECEIVING), S(FAILOVER) }, { S(RECEIVING), S(FAILED) },
	{ S(FAILOVER), S(ACTIVE) }, { S(FAILOVER), S(FAILED) },
};

static bool ok(unsigned from, unsigned to)
{
	return remus_standby_state_transition_ok(from, to);
}

static void test_table(void **state)
{
	check_state_table(allowed, sizeof(allowed) / sizeof(allowed[0]),
			  REMUS_STANDBY_NSTATES, ok);
	/* a sample of refusals, spelled out */
	assert_false(ok(S(ACTIVE), S(FAILOVER)));
	assert_false(ok(S(ACTIVE), S(WAITING)));
	assert_false(ok(S(FAILED), S(RECEIVING)));
	assert_false(ok(S(FAILOVER), S(WAITING)));
	assert_false(ok(S(WAITING), S(ACTIVE)));
	assert_false(ok(S(RECEIVING), S(RECEIVING)));
}

static void test_names(void **state)
{
	assert_string_equal(remus_standby_state_name(S(WAITING)), "waiting");
	assert_string_equal(remus_standby_state_name(S(RECEIVING)), "receiving");
	assert_string_equal(remus_standby_state_name(S(FAILOVER)), "failover");
	assert_string_equal(remus_standby_state_name(S(ACTIVE)), "active");
	assert_string_equal(remus_standby_state_name(S(FAILED)), "failed");
	assert_string_equal(remus_standby_state_name(REMUS_STANDBY_NSTATES), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
