/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test support: one timeline of what the fakes and hooks of a test saw,
 * for tests that check the order of a chain that runs over several
 * sockets (the engine's epoch, the standby's takeover).
 *
 * Every observer appends a short entry ("qmp:stop", "rp:SHUT",
 * "hook:barrier 1") when it sees something, on the one loop of the test,
 * so the entries are in the order things happened to the observers.
 * Two sockets read in the same loop iteration are read in epoll's order,
 * so across sockets a test should only assert orders that one event
 * causes.  A failing check prints the timeline (and the transcript of the
 * fake QMP server attached to it) before it fails the cmocka test.
 */
#ifndef REMUS_TESTS_SUPPORT_TIMELINE_H
#define REMUS_TESTS_SUPPORT_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/loop.h"

struct remus_fake_qmp;

#define REMUS_TL_MAX 2048
#define REMUS_TL_LEN 96

struct remus_tl {
	char entry[REMUS_TL_MAX][REMUS_TL_LEN];
	unsigned n;
	/* borrowed, may be NULL: printed with the timeline */
	const struct remus_fake_qmp *qmp;
};

/* Appends an entry (truncated to REMUS_TL_LEN - 1 bytes); fails the test
 * when the timeline is full. */
void remus_tl_add(struct remus_tl *tl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints every entry, and the fake QMP transcript, to stderr. */
void remus_tl_dump(const struct remus_tl *tl);
/* Index of the first entry equal to @what at or after @from, or -1. */
int remus_tl_find(const struct remus_tl *tl, const char *what, int from);
/* Index of the first entry starting with @prefix after @from, or -1. */
int remus_tl_next(const struct remus_tl *tl, const char *prefix, int from);
/* How many entries equal @what. */
unsigned remus_tl_count(const struct remus_tl *tl, const char *what);
/* Fails the test unless the NULL-terminated entries that follow occur in
 * this order, the first at or after @from.  Returns the index of the last. */
int remus_tl_order(const struct remus_tl *tl, int from, ...);

/* Runs @loop until @cond holds; after @ms fails the test, naming @cond and
 * printing @tl. */
#define REMUS_TL_RUN_UNTIL(tl, loop, cond, ms)                                  \
	do {                                                                    \
		uint64_t dl_ = remus_now_ms() + (ms);                           \
		while (!(cond)) {                                               \
			if (remus_now_ms() > dl_)                               \
				remus_tl_fail((tl), "not within %u ms: %s",     \
					      (unsigned)(ms), #cond);           \
			assert_int_equal(remus_loop_run_once((loop), 5), 0);    \
		}                                                               \
	} while (0)

/* Prints @tl and fails the test with the message. */
void remus_tl_fail(const struct remus_tl *tl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Runs @loop for @ms, whatever happens. */
void remus_test_run_for(struct remus_loop *loop, unsigned ms);

#endif
