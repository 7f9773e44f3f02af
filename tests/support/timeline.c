// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The timeline of a test (see timeline.h): fixed-size entries in one
 * array, searched linearly; tests are short.
 */
#include "support/timeline.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/fake_qmp.h"

void remus_tl_add(struct remus_tl *tl, const char *fmt, ...)
{
	va_list ap;

	if (tl->n == REMUS_TL_MAX)
		remus_tl_fail(tl, "the timeline is full");
	va_start(ap, fmt);
	vsnprintf(tl->entry[tl->n++], REMUS_TL_LEN, fmt, ap);
	va_end(ap);
}

void remus_tl_dump(const struct remus_tl *tl)
{
	unsigned i;

	fprintf(stderr, "timeline:\n");
	for (i = 0; i < tl->n; i++)
		fprintf(stderr, "  %4u %s\n", i, tl->entry[i]);
	if (tl->qmp)
		fprintf(stderr, "QMP transcript: %s\n", remus_fake_qmp_log(tl->qmp));
}

void remus_tl_fail(const struct remus_tl *tl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	remus_tl_dump(tl);
	fail_msg("%s", msg);
	abort(); /* fail_msg does not return; say so to the compiler */
}

int remus_tl_find(const struct remus_tl *tl, const char *what, int from)
{
	unsigned i;

	for (i = from < 0 ? 0 : (unsigned)from; i < tl->n; i++)
		if (strcmp(tl->entry[i], what) == 0)
			return (int)i;
	return -1;
}

int remus_tl_next(const struct remus_tl *tl, const char *prefix, int from)
{
	unsigned i;

	for (i = from < 0 ? 0 : (unsigned)from + 1; i < tl->n; i++)
		if (strncmp(tl->entry[i], prefix, strlen(prefix)) == 0)
			return (int)i;
	return -1;
}

unsigned remus_tl_count(const struct remus_tl *tl, const char *what)
{
	unsigned i, n = 0;

	for (i = 0; i < tl->n; i++)
		n += strcmp(tl->entry[i], what) == 0;
	return n;
}

int remus_tl_order(const struct remus_tl *tl, int from, ...)
{
	const char *what, *prev = "(the start)";
	va_list ap;
	int at = from;

	va_start(ap, from);
	while ((what = va_arg(ap, const char *))) {
		int i = remus_tl_find(tl, what, at);

		if (i < 0) {
			va_end(ap);
			remus_tl_fail(tl, "'%s' does not follow '%s' (from entry %d on)", what,
				      prev, from);
		}
		at = i + 1;
		prev = what;
	}
	va_end(ap);
	return at - 1;
}

void remus_test_run_for(struct remus_loop *loop, unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (remus_now_ms() < end)
		assert_int_equal(remus_loop_run_once(loop, 5), 0);
}
