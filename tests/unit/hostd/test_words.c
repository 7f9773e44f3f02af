// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The state words (hostd/words.h): every state of the engine and of the
 * standby reads as one of them (a checkpoint as protected), the words are
 * distinct, and remusctl(8)'s list of states under status is exactly
 * them, so that status, list, the metrics and the man page say the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/engine.h"
#include "failover/standby.h"
#include "hostd/words.h"

static void test_child_states(void **state)
{
	(void)state;
	for (int s = 0; s < REMUS_ENGINE_NSTATES; s++) {
		const char *n = remus_engine_state_name((enum remus_engine_state)s);
		enum remus_hostd_word w = remus_hostd_word_of_child(n, -1);

		if (w == REMUS_HOSTD_WORD_UNKNOWN)
			fail_msg("the engine's state %s has no word in hostd/words.c", n);
		if (strcmp(n, "checkpoint") == 0)
			assert_int_equal(w, REMUS_HOSTD_WORD_PROTECTED);
		else
			assert_string_equal(remus_hostd_word_name(w), n);
	}
	for (int s = 0; s < REMUS_STANDBY_NSTATES; s++) {
		const char *n = remus_standby_state_name((enum remus_standby_state)s);

		if (remus_hostd_word_of_child(n, -1) == REMUS_HOSTD_WORD_UNKNOWN)
			fail_msg("the standby's state %s has no word in hostd/words.c", n);
		assert_string_equal(remus_hostd_word_name(remus_hostd_word_of_child(n, -1)), n);
	}
	/* A checkpoint before the session's first commit is the initial
	 * sync's end: remusctl protect must not see protected, then
	 * syncing again. */
	assert_int_equal(remus_hostd_word_of_child("checkpoint", 0), REMUS_HOSTD_WORD_SYNCING);
	assert_int_equal(remus_hostd_word_of_child("checkpoint", 1), REMUS_HOSTD_WORD_PROTECTED);
	assert_int_equal(remus_hostd_word_of_child("protected", 0), REMUS_HOSTD_WORD_PROTECTED);
	assert_int_equal(remus_hostd_word_of_child("syncing", 1), REMUS_HOSTD_WORD_SYNCING);
	/* The host's own words are not the child's. */
	assert_int_equal(remus_hostd_word_of_child("handed-over", -1), REMUS_HOSTD_WORD_UNKNOWN);
	assert_int_equal(remus_hostd_word_of_child("reboot", -1), REMUS_HOSTD_WORD_UNKNOWN);
	assert_int_equal(remus_hostd_word_of_child(NULL, -1), REMUS_HOSTD_WORD_UNKNOWN);
	assert_string_equal(remus_hostd_word_name((enum remus_hostd_word)99), "unknown");
	for (int a = 0; a < REMUS_HOSTD_NWORDS; a++)
		for (int b = a + 1; b < REMUS_HOSTD_NWORDS; b++)
			assert_string_not_equal(remus_hostd_word_name((enum remus_hostd_word)a),
						remus_hostd_word_name((enum remus_hostd_word)b));
}

/* The paragraph of remusctl(8) that lists status's states: from ".B state"
 * followed by "string: the primary's" to "The same word as in". */
static char *man_states(void)
{
	static char text[1 << 17];
	char *start, *end;
	FILE *f = fopen(REMUS_SOURCE_DIR "/doc/man/remusctl.8", "r");
	size_t n;

	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	start = strstr(text, ".B state\nstring: the primary's");
	assert_non_null(start);
	end = strstr(start + 1, "\nThe same word as in");
	assert_non_null(end);
	*end = 0;
	return start;
}

static void test_man_page(void **state)
{
	char *para = man_states(), *line, *save = NULL;
	int seen[REMUS_HOSTD_NWORDS] = { 0 };

	(void)state;
	/* Each state is a line ".B word" or ".BR word ,". */
	for (line = strtok_r(para, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char word[64];
		int w;

		if (sscanf(line, ".B %63[a-z\\-]", word) != 1 &&
		    sscanf(line, ".BR %63[a-z\\-]", word) != 1)
			continue;
		/* groff's "\-" is a "-" */
		for (char *p = strstr(word, "\\-"); p; p = strstr(word, "\\-"))
			memmove(p, p + 1, strlen(p));
		if (strcmp(word, "state") == 0)
			continue;
		for (w = 0; w < REMUS_HOSTD_NWORDS; w++)
			if (strcmp(word, remus_hostd_word_name((enum remus_hostd_word)w)) == 0)
				break;
		if (w == REMUS_HOSTD_NWORDS)
			fail_msg("remusctl(8) lists state '%s', which status never shows", word);
		seen[w]++;
	}
	for (int w = 0; w < REMUS_HOSTD_NWORDS; w++)
		if (!seen[w])
			fail_msg("remusctl(8) does not list the state '%s'",
				 remus_hostd_word_name((enum remus_hostd_word)w));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_states),
		cmocka_unit_test(test_man_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
