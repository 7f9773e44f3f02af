// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Test support: QEMU processes for integration tests (see qemu_vm.h).
 *
 * The registry of live QEMU pids is a fixed array of sig_atomic_t, written
 * by normal code and only read by the signal handler, so the handler needs
 * no locks and calls nothing but kill(2), sigaction(2) and raise(3).
 * A slot is claimed before fork() returns control to anything that could
 * fail, and cleared only after waitpid() reaped the pid, so a pid the
 * handler kills is never a recycled one.
 */
#include "support/qemu_vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_VMS 32
#define MAX_ARGS 128

static volatile sig_atomic_t registry[MAX_VMS];
/* The temp dir of each registered QEMU, for the atexit cleanup only. */
static char registry_dir[MAX_VMS][256];
static const int fatal_signals[] = { SIGTERM, SIGINT, SIGABRT, SIGSEGV };
static struct sigaction old_actions[sizeof(fatal_signals) / sizeof(fatal_signals[0])];
static bool handlers_installed;

static void kill_registered(void)
{
	int i;

	for (i = 0; i < MAX_VMS; i++) {
		pid_t pid = (pid_t)registry[i];

		if (pid > 0)
			kill(pid, SIGKILL);
	}
}

static void on_fatal_signal(int sig)
{
	size_t i;

	kill_registered();
	/* Hand the signal to whoever had it before (default action, ASan,
	 * cmocka...).  A SIGSEGV is re-delivered by the faulting instruction
	 * when we return; the others are raised again. */
	for (i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		if (fatal_signals[i] == sig)
			sigaction(sig, &old_actions[i], NULL);
	if (sig != SIGSEGV)
		raise(sig);
}

static void remove_dir(const char *dir);

/* At exit (normal context, unlike the signal handler) the temp dirs go
 * too. */
static void on_exit_kill(void)
{
	int i;

	kill_registered();
	for (i = 0; i < MAX_VMS; i++)
		if (registry[i] > 0)
			remove_dir(registry_dir[i]);
}

static void install_handlers(void)
{
	struct sigaction sa;
	size_t i;

	if (handlers_installed)
		return;
	handlers_installed = true;
	atexit(on_exit_kill);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		sigaction(fatal_signals[i], &sa, &old_actions[i]);
}

static int registry_add(pid_t pid, const char *dir)
{
	int i;

	for (i = 0; i < MAX_VMS; i++) {
		if (registry[i] == 0) {
			snprintf(registry_dir[i], sizeof(registry_dir[i]), "%s", dir);
			registry[i] = pid;
			return 0;
		}
	}
	return -ENOSPC;
}

static void registry_del(pid_t pid)
{
	int i;

	for (i = 0; i < MAX_VMS; i++)
		if (registry[i] == pid)
			registry[i] = 0;
}

static int claim_slot(void)
{
	int i;

	for (i = 0; i < MAX_VMS; i++)
		if (registry[i] == 0)
			return 0;
	return -ENOSPC;
}

const char *remus_test_accel(void)
{
	static char accel[16];
	const char *env = getenv("REMUS_ACCEL"), *build = getenv("REMUS_BUILD_DIR");
	char path[512];
	FILE *f;

	if (env && (!strcmp(env, "kvm") || !strcmp(env, "tcg")))
		return env;
	if (build) {
		snprintf(path, sizeof(path), "%s/vm-images/accel", build);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%15s", accel) == 1 &&
			    (!strcmp(accel, "kvm") || !strcmp(accel, "tcg"))) {
				fclose(f);
				return accel;
			}
			fclose(f);
		}
	}
	return "tcg";
}

static bool readable(const char *p)
{
	return p && *p && access(p, R_OK) == 0;
}

bool remus_test_guest_available(void)
{
	return readable(getenv("REMUS_GUEST_KERNEL")) && readable(getenv("REMUS_GUEST_INITRD"));
}

static void remove_dir(const char *dir)
{
	char p[512];
	struct dirent *e;
	DIR *d;

	if (!*dir || getenv("REMUS_TEST_KEEP"))
		return;
	d = opendir(dir);
	if (d) {
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* Returns a malloc'd copy of @arg with every "@DIR@" replaced by @dir. */
static char *expand(const char *arg, const char *dir)
{
	size_t n = 0, dl = strlen(dir);
	const char *s;
	char *out, *o;

	for (s = arg; (s = strstr(s, "@DIR@")); s += 5)
		n++;
	out = malloc(strlen(arg) + n * dl + 1);
	if (!out)
		return NULL;
	for (o = out, s = arg; *s;) {
		if (!strncmp(s, "@DIR@", 5)) {
			memcpy(o, dir, dl);
			o += dl;
			s += 5;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	return out;
}

int remus_test_qemu_start(struct remus_test_qemu *vm,
			  const struct remus_test_qemu_opts *opts)
{
	static const struct remus_test_qemu_opts defaults;
	const char *qemu = getenv("REMUS_QEMU"), *tmp = getenv("TMPDIR");
	const char *argv[MAX_ARGS];
	char *owned[MAX_ARGS];
	char mem[16], serial[400], qmp[400];
	int argc = 0, nowned = 0, i, rc, logfd = -1;
	pid_t pid;

	memset(vm, 0, sizeof(*vm));
	vm->pid = -1;
	vm->exit_status = -1;
	if (!opts)
		opts = &defaults;
	if (!qemu || !*qemu)
		qemu = "qemu-system-x86_64";
	if (!opts->no_guest && !remus_test_guest_available()) {
		fprintf(stderr, "qemu_vm: the test guest is missing: REMUS_GUEST_KERNEL=%s "
			"REMUS_GUEST_INITRD=%s (build the vm-images target)\n",
			getenv("REMUS_GUEST_KERNEL") ? getenv("REMUS_GUEST_KERNEL") : "(unset)",
			getenv("REMUS_GUEST_INITRD") ? getenv("REMUS_GUEST_INITRD") : "(unset)");
		return -ENOENT;
	}
	install_handlers();
	rc = claim_slot();
	if (rc < 0)
		return rc;

	/* Short paths: sun_path holds 108 bytes. */
	snprintf(vm->dir, sizeof(vm->dir), "%s/remus-vm-XXXXXX",
		 tmp && *tmp && strlen(tmp) < 60 ? tmp : "/tmp");
	if (!mkdtemp(vm->dir)) {
		rc = -errno;
		vm->dir[0] = '\0';
		goto out;
	}
	snprintf(vm->qmp_path, sizeof(vm->qmp_path), "%s/qmp.sock", vm->dir);
	snprintf(vm->serial_path, sizeof(vm->serial_path), "%s/serial.log", vm->dir);
	snprintf(vm->log_path, sizeof(vm->log_path), "%s/qemu.log", vm->dir);
	snprintf(mem, sizeof(mem), "%u", opts->mem_mb ? opts->mem_mb : 256);
	snprintf(serial, sizeof(serial), "file:%s", vm->serial_path);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", vm->qmp_path);

	argv[argc++] = qemu;
	argv[argc++] = "-accel";
	argv[argc++] = remus_test_accel();
	argv[argc++] = "-machine";
	argv[argc++] = "pc";
	argv[argc++] = "-m";
	argv[argc++] = mem;
	argv[argc++] = "-smp";
	argv[argc++] = "1";
	argv[argc++] = "-nographic";
	argv[argc++] = "-nodefaults";
	if (!opts->no_guest) {
		argv[argc++] = "-kernel";
		argv[argc++] = getenv("REMUS_GUEST_KERNEL");
		argv[argc++] = "-initrd";
		argv[argc++] = getenv("REMUS_GUEST_INITRD");
		argv[argc++] = "-append";
		argv[argc++] = opts->append ? opts->append : "console=ttyS0 remus.run=tick";
	}
	argv[argc++] = "-serial";
	argv[argc++] = serial;
	argv[argc++] = "-qmp";
	argv[argc++] = qmp;
	for (i = 0; opts->extra_args && opts->extra_args[i]; i++) {
		if (argc >= MAX_ARGS - 1) {
			rc = -E2BIG;
			goto out;
		}
		owned[nowned] = expand(opts->extra_args[i], vm->dir);
		if (!owned[nowned]) {
			rc = -ENOMEM;
			goto out;
		}
		argv[argc++] = owned[nowned++];
	}
	argv[argc] = NULL;

	logfd = open(vm->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0) {
		rc = -errno;
		goto out;
	}
	fflush(NULL);
	{
		pid_t parent = getpid();
		sigset_t all, old;

		/* No signal may run the handler between fork() and the
		 * registration: the new pid would be missed. */
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, &old);
		pid = fork();
		if (pid == 0) {
			int nullfd = open("/dev/null", O_RDONLY);

			sigprocmask(SIG_SETMASK, &old, NULL);
			/* Dies with the test even if the test is SIGKILLed. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(127);
			if (nullfd < 0 || dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 ||
			    dup2(logfd, 2) < 0)
				_exit(127);
			execvp(argv[0], (char *const *)argv);
			dprintf(2, "qemu_vm: cannot exec %s: %s\n", argv[0], strerror(errno));
			_exit(127);
		}
		if (pid > 0)
			registry_add(pid, vm->dir);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	vm->pid = pid;
	rc = 0;
out:
	if (logfd >= 0)
		close(logfd);
	for (i = 0; i < nowned; i++)
		free(owned[i]);
	if (rc < 0) {
		remove_dir(vm->dir);
		vm->dir[0] = '\0';
	}
	return rc;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reaps QEMU if it exited.  Returns true if it is gone. */
static bool reap(struct remus_test_qemu *vm, bool block)
{
	int status;
	pid_t r;

	if (vm->pid <= 0)
		return true;
	do
		r = waitpid(vm->pid, &status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return false;
	if (r == vm->pid)
		vm->exit_status = status;
	registry_del(vm->pid);
	vm->pid = -1;
	return true;
}

unsigned remus_test_qemu_serial_count(const struct remus_test_qemu *vm, const char *needle)
{
	size_t nl = strlen(needle), len = 0, cap = 0;
	char *buf = NULL, *p, *end;
	unsigned count = 0;
	FILE *f;

	if (!nl || !(f = fopen(vm->serial_path, "rb")))
		return 0;
	for (;;) {
		size_t r;

		if (len == cap) {
			char *n = realloc(buf, cap = cap ? cap * 2 : 65536);

			if (!n)
				break;
			buf = n;
		}
		r = fread(buf + len, 1, cap - len, f);
		if (r == 0)
			break;
		len += r;
	}
	fclose(f);
	for (p = buf, end = buf + len; p && (p = memmem(p, (size_t)(end - p), needle, nl));
	     p += nl)
		count++;
	free(buf);
	return count;
}

int remus_test_qemu_wait_serial(struct remus_test_qemu *vm, const char *needle,
				unsigned count, unsigned timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		if (remus_test_qemu_serial_count(vm, needle) >= (count ? count : 1))
			return 0;
		if (reap(vm, false))
			return -ECHILD;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(50);
	}
}

int remus_test_qemu_wait_exit(struct remus_test_qemu *vm, unsigned timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;

	while (!reap(vm, false)) {
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(20);
	}
	return 0;
}

void remus_test_qemu_stop(struct remus_test_qemu *vm)
{
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		reap(vm, true);
	}
	remove_dir(vm->dir);
	vm->dir[0] = '\0';
}

static void dump_tail(const char *what, const char *path, FILE *out, size_t max)
{
	char buf[4096];
	FILE *f = fopen(path, "rb");
	long size;
	size_t r;

	fprintf(out, "---- %s (%s) ----\n", what, path);
	if (!f) {
		fprintf(out, "(unreadable: %s)\n", strerror(errno));
		return;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && (size_t)size > max)
		fseek(f, size - (long)max, SEEK_SET);
	else
		fseek(f, 0, SEEK_SET);
	while ((r = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, r, out);
	fclose(f);
	fprintf(out, "\n---- end of %s ----\n", what);
}

void remus_test_qemu_dump(const struct remus_test_qemu *vm, FILE *out, size_t max_bytes)
{
	if (!vm->dir[0])
		return;
	dump_tail("serial", vm->serial_path, out, max_bytes);
	dump_tail("qemu log", vm->log_path, out, max_bytes);
}
