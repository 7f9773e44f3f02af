// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The engine's state machine (controller/engine.h): the allowed changes,
 * restated from the diagram, every other change refused, and the names
 * `status` prints (the enum constants' suffixes in lower case).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "controller/engine.h"
#include "support/state_table.h"

#define S(x) REMUS_ENGINE_##x

static const struct state_pair allowed[] = {
	{ S(STARTING), S(SYNCING) }, { S(STARTING), S(UNPROTECTED) },
	{ S(STARTING), S(FAILED) }, { S(STARTING), S(STOPPED) },
	{ S(SYNCING), S(CHECKPOINT) }, { S(SYNCING), S(PROTECTED) },
	{ S(SYNCING), S(UNPROTECTED) },
	{ S(SYNCING), S(FAILED) }, { S(SYNCING), S(STOPPED) },
	{ S(PROTECTED), S(CHECKPOINT) }, { S(PROTECTED), S(UNPROTECTED) },
	{ S(PROTECTED), S(FAILED) }, { S(PROTECTED), S(STOPPED) },
	{ S(CHECKPOINT), S(PROTECTED) }, { S(CHECKPOINT), S(SYNCING) },
	{ S(CHECKPOINT), S(UNPROTECTED) },
	{ S(CHECKPOINT), S(FAILED) }, { S(CHECKPOINT), S(STOPPED) },
	{ S(UNPROTECTED), S(SYNCING) }, { S(UNPROTECTED), S(UNPROTECTED) },
	{ S(UNPROTECTED), S(FAILED) }, { S(UNPROTECTED), S(STOPPED) },
};

static bool ok(unsigned from, unsigned to)
{
	return remus_engine_state_transition_ok(from, to);
}

static void test_table(void **state)
{
	check_state_table(allowed, sizeof(allowed) / sizeof(allowed[0]),
			  REMUS_ENGINE_NSTATES, ok);
	/* a sample of refusals, spelled out */
	assert_false(ok(S(STARTING), S(CHECKPOINT)));
	assert_false(ok(S(UNPROTECTED), S(CHECKPOINT)));
	assert_false(ok(S(PROTECTED), S(PROTECTED)));
	/* protection is reached by a commit, never by a session's start */
	assert_false(ok(S(STARTING), S(PROTECTED)));
	assert_false(ok(S(UNPROTECTED), S(PROTECTED)));
	assert_false(ok(S(PROTECTED), S(SYNCING)));
	assert_false(ok(S(PROTECTED), S(STARTING)));
	assert_false(ok(S(STOPPED), S(PROTECTED)));
	assert_false(ok(S(FAILED), S(STOPPED)));
}

static void test_names(void **state)
{
	assert_string_equal(remus_engine_state_name(S(STARTING)), "starting");
	assert_string_equal(remus_engine_state_name(S(SYNCING)), "syncing");
	assert_string_equal(remus_engine_state_name(S(PROTECTED)), "protected");
	assert_string_equal(remus_engine_state_name(S(CHECKPOINT)), "checkpoint");
	assert_string_equal(remus_engine_state_name(S(UNPROTECTED)), "unprotected");
	assert_string_equal(remus_engine_state_name(S(FAILED)), "failed");
	assert_string_equal(remus_engine_state_name(S(STOPPED)), "stopped");
	assert_string_equal(remus_engine_state_name(REMUS_ENGINE_NSTATES), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
