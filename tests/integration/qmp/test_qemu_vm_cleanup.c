// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Tests for tests/support/qemu_vm.c's promise that no QEMU outlives its
 * test: a child process starts a QEMU (booting nothing, cheap) and then
 * dies in one of the ways a test can die; the parent checks that the QEMU
 * pid is gone (or a zombie awaiting a reaper) shortly after.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/qemu_vm.h"

enum death { BY_EXIT, BY_SIGTERM, BY_SIGABRT, BY_SIGSEGV, BY_SIGKILL };

/* True if @pid no longer runs (no such process, or a zombie). */
static bool gone(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return true;
	return p[2] == 'Z' || p[2] == 'X';
}

static void child(int wfd, int rfd, enum death how)
{
	struct remus_test_qemu vm;
	volatile int *null = NULL;

	/* cmocka's handlers would turn a crash into a longjmp back into the
	 * test runner, in the child: die like a plain test program instead. */
	signal(SIGSEGV, SIG_DFL);
	signal(SIGABRT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (remus_test_qemu_start(&vm, &(struct remus_test_qemu_opts){ .no_guest = true }) < 0)
		_exit(2);
	if (write(wfd, &vm.pid, sizeof(vm.pid)) != sizeof(vm.pid) ||
	    write(wfd, vm.dir, sizeof(vm.dir)) != sizeof(vm.dir))
		_exit(2);
	/* Die only once the parent saw QEMU running (and for signals, let the
	 * parent's signal interrupt this read). */
	if (how != BY_SIGTERM && how != BY_SIGKILL) {
		char go;

		if (read(rfd, &go, 1) != 1)
			_exit(2);
	}
	switch (how) {
	case BY_EXIT:
		exit(0);
	case BY_SIGABRT:
		abort();
	case BY_SIGSEGV:
		*null = 1;
		break;
	case BY_SIGTERM:
	case BY_SIGKILL:
		pause(); /* the parent sends the signal */
		break;
	}
	_exit(3);
}

static void check(enum death how, int sig_from_parent)
{
	pid_t kid, qemu = -1;
	int p[2], go[2], status;
	char dir[256], file[320];
	uint64_t i;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(go), 0);
	fflush(NULL);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		close(p[0]);
		close(go[1]);
		child(p[1], go[0], how);
	}
	close(p[1]);
	close(go[0]);
	assert_int_equal(read(p[0], &qemu, sizeof(qemu)), sizeof(qemu));
	assert_int_equal(read(p[0], dir, sizeof(dir)), sizeof(dir));
	close(p[0]);
	assert_true(qemu > 0);
	assert_false(gone(qemu));
	if (sig_from_parent)
		kill(kid, sig_from_parent);
	else
		assert_int_equal(write(go[1], "x", 1), 1);
	close(go[1]);
	assert_int_equal(waitpid(kid, &status, 0), kid);
	for (i = 0; i < 100 && !gone(qemu); i++)
		usleep(50 * 1000);
	if (!gone(qemu))
		kill(qemu, SIGKILL); /* do not leak it even when failing */
	/* A test that dies by a signal leaves its temp dir behind (no file
	 * system work in a signal handler); clean up after the child. */
	if (strncmp(dir, "/", 1) == 0 && strstr(dir, "remus-vm-")) {
		const char *names[] = { "qmp.sock", "serial.log", "qemu.log" };

		for (i = 0; i < 3; i++) {
			snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
			unlink(file);
		}
		rmdir(dir);
	}
	assert_true(gone(qemu));
}

static void test_exit_kills_qemu(void **s) { check(BY_EXIT, 0); }
static void test_sigterm_kills_qemu(void **s) { check(BY_SIGTERM, SIGTERM); }
static void test_sigabrt_kills_qemu(void **s) { check(BY_SIGABRT, 0); }
static void test_sigsegv_kills_qemu(void **s) { check(BY_SIGSEGV, 0); }
static void test_sigkill_kills_qemu(void **s) { check(BY_SIGKILL, SIGKILL); }

static void test_stop_and_wait(void **s)
{
	struct remus_test_qemu vm;
	char dir[256];

	assert_int_equal(remus_test_qemu_start(&vm, &(struct remus_test_qemu_opts){
		.no_guest = true,
		.extra_args = (const char *const[]){ "-pidfile", "@DIR@/qemu.pid", NULL } }), 0);
	snprintf(dir, sizeof(dir), "%s", vm.dir);
	/* A running QEMU does not exit by itself. */
	assert_int_equal(remus_test_qemu_wait_exit(&vm, 200), -ETIMEDOUT);
	assert_int_equal(remus_test_qemu_wait_serial(&vm, "never printed", 1, 100), -ETIMEDOUT);
	{
		char pidfile[300];

		snprintf(pidfile, sizeof(pidfile), "%s/qemu.pid", dir);
		assert_int_equal(access(pidfile, R_OK), 0); /* @DIR@ was expanded */
	}
	remus_test_qemu_stop(&vm);
	assert_int_equal(vm.pid, -1);
	assert_true(WIFSIGNALED(vm.exit_status));
	assert_int_equal(access(dir, F_OK), -1); /* temp dir removed */
	remus_test_qemu_stop(&vm); /* idempotent */
}

static void test_bad_binary_is_noticed(void **s)
{
	struct remus_test_qemu vm;

	setenv("REMUS_QEMU", "/nonexistent/qemu", 1);
	assert_int_equal(remus_test_qemu_start(&vm, &(struct remus_test_qemu_opts){
		.no_guest = true }), 0);
	unsetenv("REMUS_QEMU");
	assert_int_equal(remus_test_qemu_wait_serial(&vm, "x", 1, 5000), -ECHILD);
	assert_true(WIFEXITED(vm.exit_status));
	assert_int_equal(WEXITSTATUS(vm.exit_status), 127);
	remus_test_qemu_stop(&vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_kills_qemu),
		cmocka_unit_test(test_sigterm_kills_qemu),
		cmocka_unit_test(test_sigabrt_kills_qemu),
		cmocka_unit_test(test_sigsegv_kills_qemu),
		cmocka_unit_test(test_sigkill_kills_qemu),
		cmocka_unit_test(test_stop_and_wait),
		cmocka_unit_test(test_bad_binary_is_noticed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
