/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test support: run a real QEMU for integration tests, and never leak it.
 *
 * remus_test_qemu_start() creates a private temp dir, starts
 * qemu-system-x86_64 with the standard test machine (pc, 256 MiB, 1 vCPU,
 * no default devices, serial to a file, QMP on a unix socket in that dir)
 * plus the caller's extra arguments, and registers the pid.  Every
 * registered QEMU is SIGKILLed on every way out of the test process: an
 * explicit remus_test_qemu_stop(), exit() (atexit), or a fatal signal
 * (SIGTERM, SIGINT, SIGABRT, SIGSEGV: the handler only calls kill(2) on
 * the registered pids, which is async-signal-safe, then re-raises), and,
 * should the test be SIGKILLed itself, the kernel (PR_SET_PDEATHSIG).
 * QEMU is only ever killed by pid, never by name.
 *
 * Environment (set by CTest for integration tests, see tests/CMakeLists.txt):
 *   REMUS_QEMU          binary (default qemu-system-x86_64)
 *   REMUS_GUEST_KERNEL, REMUS_GUEST_INITRD   the test guest
 *   REMUS_ACCEL         kvm or tcg; else the first word of
 *                       $REMUS_BUILD_DIR/vm-images/accel; else tcg
 *   REMUS_TEST_KEEP     if set, the temp dir is kept after stop (debugging)
 */
#ifndef REMUS_TESTS_SUPPORT_QEMU_VM_H
#define REMUS_TESTS_SUPPORT_QEMU_VM_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

struct remus_test_qemu {
	pid_t pid;             /* > 0 while running and not yet reaped */
	int exit_status;       /* waitpid() status once reaped, else -1 */
	char dir[256];         /* private temp dir (removed by stop) */
	char qmp_path[320];    /* QMP unix socket */
	char serial_path[320]; /* ttyS0 of the guest */
	char log_path[320];    /* QEMU's own stdout and stderr */
};

struct remus_test_qemu_opts {
	/* NULL-terminated, borrowed; appended after the standard arguments.
	 * Every "@DIR@" in them is replaced by the private temp dir, so
	 * sockets and images can live there (e.g. "unix:@DIR@/mig.sock"). */
	const char *const *extra_args;
	/* Boot nothing (SeaBIOS only) instead of the test guest. */
	bool no_guest;
	/* Kernel command line; NULL: "console=ttyS0 remus.run=tick". */
	const char *append;
	/* Guest RAM in MiB; 0: 256. */
	unsigned mem_mb;
};

/* The accelerator the tests use: "kvm" or "tcg" (static storage). */
const char *remus_test_accel(void);
/* True if REMUS_GUEST_KERNEL and REMUS_GUEST_INITRD name readable files. */
bool remus_test_guest_available(void);

/*
 * Starts QEMU as described above.  @vm is filled in (caller-owned storage);
 * @opts is borrowed, NULL for defaults.  Returns 0 with vm->pid running, or
 * -errno (-ENOENT if the guest is wanted but missing) with nothing left
 * behind (no process, no temp dir).  QEMU may still fail after the fork:
 * the wait functions notice and return -ECHILD.
 */
int remus_test_qemu_start(struct remus_test_qemu *vm,
			  const struct remus_test_qemu_opts *opts);

/*
 * Waits until @needle (borrowed) occurs at least @count times in the serial
 * log.  Returns 0, -ETIMEDOUT, or -ECHILD if QEMU exited first (then
 * vm->exit_status holds its status).
 */
int remus_test_qemu_wait_serial(struct remus_test_qemu *vm, const char *needle,
				unsigned count, unsigned timeout_ms);
/* Occurrences of @needle in the serial log so far (0 if unreadable). */
unsigned remus_test_qemu_serial_count(const struct remus_test_qemu *vm,
				      const char *needle);

/*
 * Waits for QEMU to exit by itself (e.g. after QMP `quit`) and reaps it.
 * Returns 0 with the waitpid() status in vm->exit_status, or -ETIMEDOUT
 * (QEMU is left running; remus_test_qemu_stop() still kills it).
 */
int remus_test_qemu_wait_exit(struct remus_test_qemu *vm, unsigned timeout_ms);

/* SIGKILLs QEMU if still running, reaps it, unregisters it and removes the
 * temp dir (unless REMUS_TEST_KEEP).  Idempotent; fine on a zeroed @vm. */
void remus_test_qemu_stop(struct remus_test_qemu *vm);

/* Prints the last @max_bytes of the serial log and of QEMU's log to @out,
 * for failure reports. */
void remus_test_qemu_dump(const struct remus_test_qemu *vm, FILE *out, size_t max_bytes);

#endif
