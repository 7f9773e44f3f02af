// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Child processes on the loop (see child.h for the contract).
 *
 * The pidfd is the only thing watched: it turns readable once the process
 * has exited, and the child is then reaped with waitpid() on its pid,
 * which cannot have been reused because the zombie holds it until we reap
 * it.  The timeout only sends SIGKILL; the report still waits for the exit
 * to be seen on the pidfd, so nothing here ever blocks the loop (only
 * remus_child_free() of a child still running waits for it to die, which
 * SIGKILL makes short).
 *
 * A process that exits on its own between the timer firing and the kill
 * landing is reported with its own status, not as timed out: "timed out"
 * means our SIGKILL ended it.
 */
#include "common/child.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/loop.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same on every architecture */
#endif

extern char **environ;

struct remus_child {
	struct remus_loop *loop; /* borrowed */
	pid_t pid;
	int pidfd;               /* owned and watched until reaped, then -1 */
	bool killed;             /* the timeout sent SIGKILL */
	struct remus_timer timer;
	remus_child_done_cb *done;
	void *opaque;
};

pid_t remus_child_pid(const struct remus_child *c)
{
	return c->pid;
}

static size_t name_len(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* The daemon's environment without the variables @extra sets, then
 * @extra.  Returns a malloc'd array of borrowed strings, or NULL. */
static char **build_env(const char *const *extra)
{
	size_t n = 0, k = 0, i, j, m = 0;
	char **env;

	while (environ[n])
		n++;
	while (extra && extra[k])
		k++;
	env = calloc(n + k + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (i = 0; i < n; i++) {
		size_t len = name_len(environ[i]);
		bool replaced = false;

		for (j = 0; j < k && !replaced; j++)
			replaced = name_len(extra[j]) == len &&
				   strncmp(extra[j], environ[i], len) == 0;
		if (!replaced)
			env[m++] = environ[i];
	}
	for (j = 0; j < k; j++)
		env[m++] = (char *)extra[j];
	return env;
}

/* Kills and reaps a child that is still running; blocks until it died. */
static void kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void unwatch(struct remus_child *c)
{
	remus_timer_disarm(&c->timer);
	if (c->pidfd >= 0) {
		remus_loop_del_fd(c->loop, c->pidfd);
		close(c->pidfd);
		c->pidfd = -1;
	}
}

static void on_exit_ready(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct remus_child *c = opaque;
	remus_child_done_cb *done = c->done;
	int status = 0, report;
	pid_t r;

	do
		r = waitpid(c->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return; /* not an exit after all; the pidfd tells again */
	if (r < 0)
		report = -errno;
	else if (c->killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		report = -ETIMEDOUT;
	else
		report = status;
	unwatch(c);
	c->done = NULL;
	/* Last: the callback may free @c. */
	if (done)
		done(c->opaque, report);
}

static void on_timeout(struct remus_loop *loop, void *opaque)
{
	struct remus_child *c = opaque;

	c->killed = true;
	kill(c->pid, SIGKILL);
}

int remus_child_spawn(struct remus_loop *loop, const struct remus_child_opts *opts,
		      remus_child_done_cb *done, void *opaque, struct remus_child **out)
{
	const char *sh_argv[] = { "/bin/sh", "-c", opts->shell, NULL };
	const char *const *argv = opts->argv ? opts->argv : sh_argv;
	struct remus_child *c = NULL;
	posix_spawnattr_t attr;
	bool attr_ok = false;
	sigset_t none, all;
	char **env = NULL;
	pid_t pid = -1;
	int rc, r;

	if (!done || (!opts->argv && !opts->shell) || (opts->argv && !opts->argv[0]))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	env = build_env(opts->env);
	if (!c || !env) {
		rc = -ENOMEM;
		goto out;
	}
	c->loop = loop;
	c->pidfd = -1;
	c->done = done;
	c->opaque = opaque;
	remus_timer_init(&c->timer, loop, on_timeout, c);
	r = posix_spawnattr_init(&attr);
	if (r) {
		rc = -r;
		goto out;
	}
	attr_ok = true;
	sigemptyset(&none);
	sigfillset(&all);
	r = posix_spawnattr_setsigmask(&attr, &none);
	if (!r)
		r = posix_spawnattr_setsigdefault(&attr, &all);
	if (!r)
		r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (r) {
		rc = -r;
		goto out;
	}
	/* glibc's posix_spawn reports a failed exec here, not as exit 127. */
	if (opts->argv)
		r = posix_spawnp(&pid, argv[0], NULL, &attr, (char *const *)argv, env);
	else
		r = posix_spawn(&pid, argv[0], NULL, &attr, (char *const *)argv, env);
	if (r) {
		pid = -1;
		rc = -r;
		goto out;
	}
	c->pid = pid;
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (c->pidfd < 0) {
		rc = -errno;
		goto out;
	}
	rc = remus_loop_add_fd(loop, c->pidfd, REMUS_EV_READ, on_exit_ready, c);
	if (rc < 0)
		goto out;
	if (opts->timeout_ms)
		remus_timer_arm(&c->timer, opts->timeout_ms);
	*out = c;
	c = NULL;
	pid = -1;
	rc = 0;
out:
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	if (pid > 0)
		kill_and_reap(pid);
	if (c && c->pidfd >= 0)
		close(c->pidfd);
	free(c);
	free(env);
	return rc;
}

void remus_child_free(struct remus_child *c)
{
	if (!c)
		return;
	if (c->pidfd >= 0) {
		unwatch(c);
		kill_and_reap(c->pid);
	}
	remus_timer_disarm(&c->timer);
	free(c);
}

void remus_child_disown(struct remus_child *c)
{
	if (!c)
		return;
	if (c->pidfd >= 0) {
		unwatch(c);
		/* Reap it now if it is already gone, so no zombie stays. */
		waitpid(c->pid, NULL, WNOHANG);
	}
	remus_timer_disarm(&c->timer);
	free(c);
}
