/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checks a state machine's transition table (common/state.h) against the
 * allowed changes a test restates from the machine's diagram, so that a
 * change of the table has to be made twice: every listed change must be
 * accepted, every other one refused, out-of-range states included.
 * Header-only; include after <cmocka.h>.
 */
#ifndef REMUS_TESTS_SUPPORT_STATE_TABLE_H
#define REMUS_TESTS_SUPPORT_STATE_TABLE_H

#include <stdbool.h>
#include <stddef.h>

struct state_pair {
	unsigned from, to;
};

/* @ok: the machine's pure check, e.g. remus_engine_state_transition_ok. */
static inline void check_state_table(const struct state_pair *allowed, size_t n,
				     unsigned nstates, bool (*ok)(unsigned, unsigned))
{
	unsigned from, to;
	size_t i;

	for (i = 0; i < n; i++)
		assert_true(ok(allowed[i].from, allowed[i].to));
	for (from = 0; from < nstates; from++)
		for (to = 0; to < nstates; to++) {
			bool listed = false;

			for (i = 0; i < n; i++)
				listed |= allowed[i].from == from && allowed[i].to == to;
			if (!listed && ok(from, to))
				fail_msg("%u -> %u is allowed but not listed", from, to);
		}
	assert_false(ok(0, nstates));
	assert_false(ok(nstates, 0));
}

#endif
