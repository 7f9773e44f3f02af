// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The netbuffer's state machines: the public lifecycle (netbuffer.h) and
 * the qemu backend's (qemu.h, private to the module).  The allowed
 * changes, restated from the diagrams in netbuffer.c and qemu.c, every
 * other change refused, and the names `status` prints (the enum
 * constants' suffixes in lower case).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "netbuffer/netbuffer.h"
#include "netbuffer/qemu.h"
#include "support/state_table.h"

#define N(x) REMUS_NETBUFFER_##x
static const struct state_pair nb_allowed[] = {
	{ N(NEW), N(SETTING_UP) }, { N(NEW), N(TEARING_DOWN) },
	{ N(SETTING_UP), N(READY) }, { N(SETTING_UP), N(FAILED) },
	{ N(SETTING_UP), N(TEARING_DOWN) },
	{ N(READY), N(TEARING_DOWN) },
	{ N(FAILED), N(TEARING_DOWN) },
	{ N(TEARING_DOWN), N(DOWN) },
};

#define Q(x) REMUS_NBQEMU_##x
static const struct state_pair q_allowed[] = {
	{ Q(NEW), Q(DISCOVER) }, { Q(NEW), Q(SCAN) }, { Q(NEW), Q(DONE) },
	{ Q(DISCOVER), Q(SCAN) }, { Q(DISCOVER), Q(TEARDOWN) },
	{ Q(SCAN), Q(SETUP) }, { Q(SCAN), Q(TEARDOWN) },
	{ Q(SETUP), Q(READY) }, { Q(SETUP), Q(TEARDOWN) },
	{ Q(READY), Q(TEARDOWN) },
	{ Q(TEARDOWN), Q(DONE) },
};

static bool nb_ok(unsigned from, unsigned to)
{
	return remus_netbuffer_state_transition_ok(from, to);
}

static bool q_ok(unsigned from, unsigned to)
{
	return remus_nbqemu_state_transition_ok(from, to);
}

static void test_netbuffer_table(void **state)
{
	check_state_table(nb_allowed, sizeof(nb_allowed) / sizeof(nb_allowed[0]),
		      REMUS_NETBUFFER_NSTATES, nb_ok);
	/* a sample, spelled out */
	assert_false(nb_ok(N(NEW), N(READY)));
	assert_false(nb_ok(N(READY), N(SETTING_UP)));
	assert_false(nb_ok(N(READY), N(FAILED)));
	assert_false(nb_ok(N(DOWN), N(NEW)));
	assert_false(nb_ok(N(TEARING_DOWN), N(READY)));
	assert_false(nb_ok(N(TEARING_DOWN), N(TEARING_DOWN)));
}

static void test_qemu_backend_table(void **state)
{
	check_state_table(q_allowed, sizeof(q_allowed) / sizeof(q_allowed[0]),
		      REMUS_NBQEMU_NSTATES, q_ok);
	assert_false(q_ok(Q(NEW), Q(READY)));
	assert_false(q_ok(Q(SCAN), Q(DISCOVER)));
	assert_false(q_ok(Q(READY), Q(SETUP)));
	assert_false(q_ok(Q(TEARDOWN), Q(TEARDOWN)));
	assert_false(q_ok(Q(DONE), Q(NEW)));
}

static void test_names(void **state)
{
	assert_string_equal(remus_netbuffer_state_name(N(NEW)), "new");
	assert_string_equal(remus_netbuffer_state_name(N(SETTING_UP)), "setting_up");
	assert_string_equal(remus_netbuffer_state_name(N(READY)), "ready");
	assert_string_equal(remus_netbuffer_state_name(N(FAILED)), "failed");
	assert_string_equal(remus_netbuffer_state_name(N(TEARING_DOWN)), "tearing_down");
	assert_string_equal(remus_netbuffer_state_name(N(DOWN)), "down");
	assert_string_equal(remus_netbuffer_state_name(REMUS_NETBUFFER_NSTATES), "?");
	assert_string_equal(remus_nbqemu_state_name(Q(DISCOVER)), "discover");
	assert_string_equal(remus_nbqemu_state_name(Q(TEARDOWN)), "teardown");
	assert_string_equal(remus_nbqemu_state_name(Q(DONE)), "done");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netbuffer_table),
		cmocka_unit_test(test_qemu_backend_table),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
