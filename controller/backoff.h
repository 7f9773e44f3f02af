/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How long the engine waits before it tries its standby again.
 *
 * A standby that keeps failing (refusing connections, dropping sessions,
 * sessions whose epochs are abandoned) must not be hammered, and the log
 * must not fill with one failure a second for hours; a standby that comes
 * back must be found soon.  So the first retry after a failure waits the
 * base delay (remusd's --reconnect), each further consecutive failure
 * doubles it, up to a cap, and a success (the first commit of a session)
 * starts again from the base:
 *
 *     failures  1     2      3      4      ...  n
 *     delay     base  2base  4base  8base  ...  min(base * 2^(n-1), cap)
 *
 * Pure arithmetic: no clock, no timer (the engine arms its own), so the
 * unit tests check every step.
 */
#ifndef REMUS_CONTROLLER_BACKOFF_H
#define REMUS_CONTROLLER_BACKOFF_H

/* The cap the engine uses: a standby that comes back is tried at least
 * this often. */
#define REMUS_BACKOFF_CAP_MS 30000u

struct remus_backoff {
	unsigned base_ms;  /* the first delay */
	unsigned cap_ms;   /* no delay is longer, unless base_ms is */
	unsigned failures; /* consecutive failures since the last success */
};

/* Starts @b with no failures.  @base_ms 0 counts as 1; a @cap_ms below
 * @base_ms is raised to it (the base delay is never cut). */
void remus_backoff_init(struct remus_backoff *b, unsigned base_ms, unsigned cap_ms);
/* Counts one more failure and returns the delay before the next try. */
unsigned remus_backoff_fail(struct remus_backoff *b);
/* The delay after the failures counted so far (the base delay when none
 * was counted).  Never overflows: the doubling saturates at the cap. */
unsigned remus_backoff_delay(const struct remus_backoff *b);
/* A success: the next failure waits the base delay again. */
void remus_backoff_success(struct remus_backoff *b);

#endif
