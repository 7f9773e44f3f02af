// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Checked state transitions (common/state.h): the table decides, legal
 * changes are logged at debug level, an illegal one is logged as an
 * error naming both states and then aborts a debug build (NDEBUG
 * undefined) or returns -EPROTO in a release build.  The illegal case
 * runs in a child process, so the abort is observed, not suffered.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/state.h"

enum { A, B, C, NSTATES };

static const char *const names[NSTATES] = { [A] = "a", [B] = "b", [C] = "c" };
static const uint32_t allowed[NSTATES] = {
	[A] = REMUS_STATE_BIT(B),
	[B] = REMUS_STATE_BIT(A) | REMUS_STATE_BIT(C),
	[C] = 0,
};
static const struct remus_state_machine m = {
	.component = "toy", .names = names, .allowed = allowed, .nstates = NSTATES,
};

static void test_table(void **state)
{
	unsigned from, to;

	for (from = 0; from < NSTATES; from++)
		for (to = 0; to < NSTATES; to++)
			assert_int_equal(remus_state_allowed(&m, from, to),
					 (from == A && to == B) || (from == B && to != B));
	/* Out of range is never allowed, in either position. */
	assert_false(remus_state_allowed(&m, NSTATES, A));
	assert_false(remus_state_allowed(&m, A, NSTATES));
	assert_false(remus_state_allowed(&m, A, 31));
	assert_false(remus_state_allowed(&m, 1000, 1000));
}

static void test_names(void **state)
{
	assert_string_equal(remus_state_name(&m, A), "a");
	assert_string_equal(remus_state_name(&m, C), "c");
	assert_string_equal(remus_state_name(&m, NSTATES), "?");
}

static void test_legal_change_logged_at_debug(void **state)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);

	assert_non_null(f);
	remus_log_set_stream(f);
	remus_log_set_level(REMUS_LOG_DEBUG);
	assert_int_equal(remus_state_change(&m, A, B, "because"), 0);
	assert_int_equal(remus_state_change(&m, B, C, NULL), 0);
	remus_log_set_level(REMUS_LOG_INFO);
	assert_int_equal(remus_state_change(&m, B, A, "quiet"), 0);
	remus_log_set_stream(NULL);
	fclose(f);
	assert_non_null(strstr(out, "DEBUG [toy] a -> b (because)\n"));
	assert_non_null(strstr(out, "DEBUG [toy] b -> c (-)\n"));
	assert_null(strstr(out, "quiet"));
	free(out);
}

/* Runs an illegal change in a child; returns its wait status and the log. */
static int illegal_in_child(unsigned from, unsigned to, char *log, size_t len)
{
	int pfd[2], status = 0;
	ssize_t r;
	size_t got = 0;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };
		FILE *f = fdopen(pfd[1], "w");

		setrlimit(RLIMIT_CORE, &no_core); /* the abort is expected */
		close(pfd[0]);
		setvbuf(f, NULL, _IONBF, 0);
		remus_log_set_stream(f);
		_exit(remus_state_change(&m, from, to, "test") == -EPROTO ? 42 : 1);
	}
	close(pfd[1]);
	while (got + 1 < len && (r = read(pfd[0], log + got, len - 1 - got)) > 0)
		got += (size_t)r;
	log[got] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_illegal_change_fails_loudly(void **state)
{
	static const unsigned cases[][2] = { { A, C }, { A, A }, { C, A }, { C, B }, { B, 9 } };
	char log[1024];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = illegal_in_child(cases[i][0], cases[i][1], log, sizeof(log));
		char want[128];

		snprintf(want, sizeof(want), "ERROR [toy] internal error: illegal state change "
			 "%s -> %s (test)", remus_state_name(&m, cases[i][0]),
			 remus_state_name(&m, cases[i][1]));
		assert_non_null(strstr(log, want));
#ifdef NDEBUG
		/* release build: reported, and the caller's fatal path runs */
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 42);
#else
		/* debug build: stops right there */
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGABRT);
#endif
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_legal_change_logged_at_debug),
		cmocka_unit_test(test_illegal_change_fails_loudly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
