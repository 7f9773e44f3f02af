// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Child processes on the loop: exit codes and signals reported once, the
 * timeout kills, the environment is passed, argv and shell forms, free
 * and disown of a running child, many children at once, and the signal
 * mask and dispositions of the parent not leaking into the child.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/child.h"
#include "common/loop.h"

struct done {
	int calls;
	int status;
	struct remus_child **free_me; /* freed from inside the callback */
};

static void on_done(void *opaque, int status)
{
	struct done *d = opaque;

	d->calls++;
	d->status = status;
	if (d->free_me) {
		remus_child_free(*d->free_me);
		*d->free_me = NULL;
	}
}

/* Runs @loop until *@calls reaches @want; fails after @limit_ms. */
static void run_until(struct remus_loop *loop, const int *calls, int want, unsigned limit_ms)
{
	uint64_t deadline = remus_now_ms() + limit_ms;

	while (*calls < want) {
		assert_int_equal(remus_loop_run_once(loop, 50), 0);
		assert_true(remus_now_ms() < deadline);
	}
}

static int setup(void **state)
{
	struct remus_loop *loop;

	assert_int_equal(remus_loop_new(&loop), 0);
	*state = loop;
	return 0;
}

static int teardown(void **state)
{
	remus_loop_free(*state);
	return 0;
}

static struct remus_child *spawn_sh(struct remus_loop *loop, const char *cmd,
				    unsigned timeout_ms, struct done *d)
{
	struct remus_child_opts o = { .shell = cmd, .timeout_ms = timeout_ms };
	struct remus_child *c = NULL;

	assert_int_equal(remus_child_spawn(loop, &o, on_done, d, &c), 0);
	assert_non_null(c);
	assert_true(remus_child_pid(c) > 0);
	return c;
}

static void test_exit_codes(void **state)
{
	struct remus_loop *loop = *state;
	static const int codes[] = { 0, 1, 3, 255 };
	char cmd[32];
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct done d = { 0 };
		struct remus_child *c;

		snprintf(cmd, sizeof(cmd), "exit %d", codes[i]);
		c = spawn_sh(loop, cmd, 0, &d);
		assert_int_equal(d.calls, 0); /* never from inside spawn */
		run_until(loop, &d.calls, 1, 5000);
		assert_true(WIFEXITED(d.status));
		assert_int_equal(WEXITSTATUS(d.status), codes[i]);
		/* Once only. */
		assert_int_equal(remus_loop_run_once(loop, 20), 0);
		assert_int_equal(d.calls, 1);
		assert_int_equal(kill(remus_child_pid(c), 0), -1); /* reaped: gone */
		remus_child_free(c);
	}
}

static void test_argv_form(void **state)
{
	struct remus_loop *loop = *state;
	const char *argv[] = { "false", NULL };
	const char *missing[] = { "/nonexistent/remus-no-such-program", NULL };
	struct remus_child_opts o = { .argv = argv };
	struct remus_child *c = NULL;
	struct done d = { 0 };

	/* Looked up in PATH. */
	assert_int_equal(remus_child_spawn(loop, &o, on_done, &d, &c), 0);
	run_until(loop, &d.calls, 1, 5000);
	assert_true(WIFEXITED(d.status));
	assert_int_equal(WEXITSTATUS(d.status), 1);
	remus_child_free(c);
	/* A program that cannot start is an error now, not a callback. */
	c = NULL;
	o.argv = missing;
	assert_int_equal(remus_child_spawn(loop, &o, on_done, &d, &c), -ENOENT);
	assert_null(c);
	o.argv = NULL;
	assert_int_equal(remus_child_spawn(loop, &o, on_done, &d, &c), -EINVAL);
	assert_int_equal(d.calls, 1);
}

static void test_signal(void **state)
{
	struct remus_loop *loop = *state;
	struct done d = { 0 };
	struct remus_child *c;

	c = spawn_sh(loop, "kill -TERM $$; sleep 5", 0, &d);
	run_until(loop, &d.calls, 1, 5000);
	assert_true(WIFSIGNALED(d.status));
	assert_int_equal(WTERMSIG(d.status), SIGTERM);
	remus_child_free(c);
	/* Killed by someone else with SIGKILL: a signal, not a timeout. */
	memset(&d, 0, sizeof(d));
	c = spawn_sh(loop, "sleep 5", 10000, &d);
	assert_int_equal(kill(remus_child_pid(c), SIGKILL), 0);
	run_until(loop, &d.calls, 1, 5000);
	assert_true(WIFSIGNALED(d.status));
	assert_int_equal(WTERMSIG(d.status), SIGKILL);
	remus_child_free(c);
}

static void test_timeout(void **state)
{
	struct remus_loop *loop = *state;
	struct done d = { 0 };
	struct remus_child *c;
	uint64_t t0 = remus_now_ms();

	c = spawn_sh(loop, "sleep 10", 100, &d);
	run_until(loop, &d.calls, 1, 5000);
	assert_int_equal(d.status, -ETIMEDOUT);
	assert_true(remus_now_ms() - t0 >= 100);
	assert_true(remus_now_ms() - t0 < 5000);
	assert_int_equal(kill(remus_child_pid(c), 0), -1);
	remus_child_free(c);
	/* Finishing before the timeout: the timer does not fire later. */
	memset(&d, 0, sizeof(d));
	c = spawn_sh(loop, "exit 0", 100, &d);
	run_until(loop, &d.calls, 1, 5000);
	assert_int_equal(d.status, 0);
	remus_child_free(c);
	t0 = remus_now_ms();
	while (remus_now_ms() - t0 < 200)
		assert_int_equal(remus_loop_run_once(loop, 50), 0);
	assert_int_equal(d.calls, 1);
}

static void test_env(void **state)
{
	struct remus_loop *loop = *state;
	char dir[] = "/tmp/remus-child-test-XXXXXX", path[64], cmd[256], got[256] = "";
	const char *env[] = { "REMUS_EVENT=fence", "REMUS_EPOCH=42", "REMUS_REPLACED=new", NULL };
	struct remus_child_opts o = { .shell = cmd, .env = env };
	struct remus_child *c = NULL;
	struct done d = { 0 };
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/env", dir);
	snprintf(cmd, sizeof(cmd),
		 "echo \"$REMUS_EVENT $REMUS_EPOCH $REMUS_REPLACED $REMUS_KEPT\" > %s; "
		 "env | grep -c '^REMUS_REPLACED=' >> %s", path, path);
	assert_int_equal(setenv("REMUS_REPLACED", "old", 1), 0);
	assert_int_equal(setenv("REMUS_KEPT", "kept", 1), 0);
	assert_int_equal(remus_child_spawn(loop, &o, on_done, &d, &c), 0);
	run_until(loop, &d.calls, 1, 5000);
	assert_int_equal(d.status, 0);
	remus_child_free(c);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(got, 1, sizeof(got) - 1, f) > 0, 1);
	fclose(f);
	/* Ours added, one replaced (once, not twice), the rest inherited. */
	assert_string_equal(got, "fence 42 new kept\n1\n");
	unsetenv("REMUS_REPLACED");
	unsetenv("REMUS_KEPT");
	unlink(path);
	rmdir(dir);
}

/* The daemon blocks the signals it reads from a signalfd and ignores
 * SIGPIPE; a hook must start with neither. */
static void test_signal_state_not_inherited(void **state)
{
	struct remus_loop *loop = *state;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe;
	sigset_t block, old_mask;
	struct done d = { 0 };
	struct remus_child *c;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);
	assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);
	/* SIGTERM must end it at once; an ignored SIGPIPE would let it exit 0. */
	c = spawn_sh(loop, "kill -PIPE $$; exit 0", 0, &d);
	run_until(loop, &d.calls, 1, 5000);
	assert_true(WIFSIGNALED(d.status));
	assert_int_equal(WTERMSIG(d.status), SIGPIPE);
	remus_child_free(c);
	memset(&d, 0, sizeof(d));
	c = spawn_sh(loop, "kill -TERM $$; exit 0", 0, &d);
	run_until(loop, &d.calls, 1, 5000);
	assert_true(WIFSIGNALED(d.status));
	assert_int_equal(WTERMSIG(d.status), SIGTERM);
	remus_child_free(c);
	assert_int_equal(sigaction(SIGPIPE, &old_pipe, NULL), 0);
	assert_int_equal(sigprocmask(SIG_SETMASK, &old_mask, NULL), 0);
}

static void test_free_while_running(void **state)
{
	struct remus_loop *loop = *state;
	struct done d = { 0 };
	struct remus_child *c;
	pid_t pid;
	uint64_t t0;

	c = spawn_sh(loop, "sleep 30", 0, &d);
	pid = remus_child_pid(c);
	t0 = remus_now_ms();
	remus_child_free(c);
	/* Killed and reaped before free returned: the pid is gone. */
	assert_true(remus_now_ms() - t0 < 5000);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(remus_loop_run_once(loop, 20), 0);
	assert_int_equal(d.calls, 0);
	remus_child_free(NULL);
	/* Free from inside the done callback. */
	memset(&d, 0, sizeof(d));
	c = spawn_sh(loop, "exit 4", 0, &d);
	d.free_me = &c;
	run_until(loop, &d.calls, 1, 5000);
	assert_null(c);
	assert_int_equal(WEXITSTATUS(d.status), 4);
}

static void test_disown_lets_it_run(void **state)
{
	struct remus_loop *loop = *state;
	char dir[] = "/tmp/remus-child-test-XXXXXX", path[64], cmd[256];
	struct done d = { 0 };
	struct remus_child *c;
	struct stat st;
	uint64_t t0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/done", dir);
	snprintf(cmd, sizeof(cmd), "sleep 0.2; touch %s", path);
	c = spawn_sh(loop, cmd, 0, &d);
	remus_child_disown(c);
	remus_child_disown(NULL);
	t0 = remus_now_ms();
	while (stat(path, &st) < 0) {
		assert_int_equal(remus_loop_run_once(loop, 20), 0);
		assert_true(remus_now_ms() - t0 < 5000);
	}
	assert_int_equal(d.calls, 0);
	/* Not ours to wait for any more; reap it here so no zombie stays. */
	(void)waitpid(-1, NULL, 0);
	unlink(path);
	rmdir(dir);
}

#define MANY 40

static void test_many_children(void **state)
{
	struct remus_loop *loop = *state;
	struct remus_child *c[MANY];
	struct done d[MANY];
	char cmd[64];
	int i, total;

	memset(d, 0, sizeof(d));
	for (i = 0; i < MANY - 1; i++) {
		/* Exit in scrambled order, each with its own code. */
		snprintf(cmd, sizeof(cmd), "sleep 0.%02d; exit %d", (i * 37) % 50, i);
		c[i] = spawn_sh(loop, cmd, 0, &d[i]);
	}
	/* The last one sleeps past its timeout... */
	c[MANY - 1] = spawn_sh(loop, "sleep 10", 50, &d[MANY - 1]);
	do {
		assert_int_equal(remus_loop_run_once(loop, 50), 0);
		for (total = 0, i = 0; i < MANY; i++)
			total += d[i].calls;
	} while (total < MANY);
	for (i = 0; i < MANY - 1; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_true(WIFEXITED(d[i].status));
		assert_int_equal(WEXITSTATUS(d[i].status), i);
		remus_child_free(c[i]);
	}
	/* ...and is reported as timed out, alone. */
	assert_int_equal(d[MANY - 1].status, -ETIMEDOUT);
	remus_child_free(c[MANY - 1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_argv_form, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_state_not_inherited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disown_lets_it_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_children, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
