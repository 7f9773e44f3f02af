/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tick: the liveness signal of the test guest.  Prints "tick N" (N = 1, 2,
 * ...) on stdout (the guest's ttyS0) once per interval, forever or for
 * count= ticks, then exits 0.
 *
 *     remus.run=tick remus.args=ms=1000,count=0
 *
 * Deadlines are absolute on CLOCK_MONOTONIC (start + N * interval) and slept
 * with TIMER_ABSTIME, so a slow write or a late wake-up never accumulates
 * into drift.  When the guest is paused (a checkpoint, a migration, a
 * failover) and resumed, the deadlines already past fire back-to-back: the
 * numbers stay consecutive, which is what the tests look for; the time
 * between two lines is not a measurement of anything.
 */
#include "guest-args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void add_ns(struct timespec *t, uint64_t ns)
{
	t->tv_sec += (time_t)(ns / 1000000000u);
	t->tv_nsec += (long)(ns % 1000000000u);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
}

int main(int argc, char **argv)
{
	uint64_t ms = 1000, count = 0;
	struct guest_arg args[] = {
		{ "ms", GUEST_ARG_U64, "interval in milliseconds (default 1000)",
		  1, 3600000, &ms, NULL, 0 },
		{ "count", GUEST_ARG_U64, "ticks before exiting, 0 = forever (default 0)",
		  0, UINT64_MAX, &count, NULL, 0 },
	};
	struct timespec next;

	if (guest_args_parse("tick", args, 2, argc, argv) < 0)
		return 2;
	if (clock_gettime(CLOCK_MONOTONIC, &next) < 0) {
		perror("tick: clock_gettime(CLOCK_MONOTONIC)");
		return 1;
	}
	for (uint64_t n = 1; count == 0 || n <= count; n++) {
		char line[32];
		int r;

		add_ns(&next, ms * 1000000u);
		while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
					    &next, NULL)) == EINTR)
			;
		if (r != 0) {
			fprintf(stderr, "tick: clock_nanosleep: %s\n", strerror(r));
			return 1;
		}
		int len = snprintf(line, sizeof(line), "tick %" PRIu64 "\n", n);
		/* One write per line so lines never interleave with others. */
		if (write(STDOUT_FILENO, line, (size_t)len) != len) {
			perror("tick: write to stdout");
			return 1;
		}
	}
	return 0;
}
