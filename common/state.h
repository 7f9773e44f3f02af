/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checked state transitions, after QEMU's migrate_set_state(): every
 * state machine of the project (the engine, the standby, the netbuffer
 * and its qemu backend) changes state in one setter of its own, and that
 * setter asks remus_state_change() first.
 *
 * A machine is a static table: for each from-state, the set of states it
 * may go to.  remus_state_change() logs a legal transition at debug level
 *
 *     DEBUG [engine] protected -> checkpoint (epoch timer)
 *
 * and fails loudly on an illegal one:
 *   - debug builds (NDEBUG not defined: CMake's Debug, the sanitizer
 *     build) log the error and abort(), so a test that walks into an
 *     unplanned transition stops right there with a core;
 *   - release builds (NDEBUG defined: RelWithDebInfo, Release, the daemon
 *     that runs guests) log an error naming both states and return
 *     -EPROTO; the setter then stops its machine on its fatal path (what
 *     that is, is each setter's business: the engine stops protection and
 *     resumes the guest, the standby refuses further epochs, ...).
 * The setter is the one place that stores the state: that is checked on
 * the tree by tests/unit/layout/check_state_setters.py.
 *
 * State names are the enum constants' suffixes in lower case
 * (REMUS_ENGINE_PROTECTED -> "protected"); the same names are printed by
 * `status` and in these log lines.
 */
#ifndef REMUS_COMMON_STATE_H
#define REMUS_COMMON_STATE_H

#include <stdbool.h>
#include <stdint.h>

/* The most states a machine may have (the allowed sets are bit masks). */
#define REMUS_STATE_MAX 32u
/* The bit of state @s in an allowed set. */
#define REMUS_STATE_BIT(s) (UINT32_C(1) << (s))

struct remus_state_machine {
	const char *component;     /* log tag, e.g. "engine" (static storage) */
	const char *const *names;  /* nstates names (static storage) */
	const uint32_t *allowed;   /* nstates sets: bit `to` of allowed[from] */
	unsigned nstates;          /* <= REMUS_STATE_MAX */
};

/* True when @m allows @from -> @to.  Out-of-range states are never
 * allowed.  Pure: logs nothing. */
bool remus_state_allowed(const struct remus_state_machine *m, unsigned from, unsigned to);

/* The name of @s in @m (static storage), "?" when out of range. */
const char *remus_state_name(const struct remus_state_machine *m, unsigned s);

/*
 * Asks @m whether @from -> @to may happen; @why (borrowed, may be NULL)
 * says what caused it.  Returns 0 after a debug-level line when it may.
 * When it may not: logs an error naming both states, then abort()s in a
 * debug build and returns -EPROTO in a release build.  Stores nothing:
 * the caller's setter stores the new state.
 */
int remus_state_change(const struct remus_state_machine *m, unsigned from, unsigned to,
		       const char *why);

#endif
