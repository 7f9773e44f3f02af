// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Checked state transitions (see state.h).  The abort is decided here,
 * once, by NDEBUG as the library itself was built: CMake's Debug build
 * (and the sanitizer build, which is Debug) leaves NDEBUG undefined and
 * aborts; RelWithDebInfo and Release define it and return -EPROTO.
 */
#include "common/state.h"

#include <errno.h>
#include <stdlib.h>

#include "common/log.h"

bool remus_state_allowed(const struct remus_state_machine *m, unsigned from, unsigned to)
{
	if (from >= m->nstates || to >= m->nstates || m->nstates > REMUS_STATE_MAX)
		return false;
	return (m->allowed[from] & REMUS_STATE_BIT(to)) != 0;
}

const char *remus_state_name(const struct remus_state_machine *m, unsigned s)
{
	return s < m->nstates && m->names[s] ? m->names[s] : "?";
}

int remus_state_change(const struct remus_state_machine *m, unsigned from, unsigned to,
		       const char *why)
{
	if (remus_state_allowed(m, from, to)) {
		remus_debug(m->component, "%s -> %s (%s)", remus_state_name(m, from),
			    remus_state_name(m, to), why ? why : "-");
		return 0;
	}
	remus_err(m->component, "internal error: illegal state change %s -> %s (%s)",
		  remus_state_name(m, from), remus_state_name(m, to), why ? why : "-");
#ifndef NDEBUG
	abort();
#endif
	return -EPROTO;
}
