/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Child processes on the event loop (fence command, activation hook).
 *
 * A child is spawned with posix_spawn and watched through a pidfd
 * (pidfd_open, Linux >= 5.3): the pidfd becomes readable when the process
 * exits, so the loop learns of it at once, without polling and without
 * touching SIGCHLD, which belongs to the whole process.  Then the child is
 * reaped (waitpid on its own pid: nothing else can have reaped it, since
 * only we wait for it) and done_cb runs once.  A timeout, if given, sends
 * SIGKILL and the child is reported as timed out once it is gone.
 *
 *     spawn --> running --exit--------------------> reaped --> done_cb(status)
 *                  \--timeout--> SIGKILL --exit--> reaped --> done_cb(-ETIMEDOUT)
 *
 * The child inherits stdin, stdout and stderr (a hook's output goes where
 * the daemon's goes) and no other fd (everything else is O_CLOEXEC), gets
 * an empty signal mask and default signal dispositions (the daemon blocks
 * the signals it reads through a signalfd and ignores SIGPIPE; a hook must
 * not inherit that), and the daemon's environment plus the given
 * variables.
 */
#ifndef REMUS_COMMON_CHILD_H
#define REMUS_COMMON_CHILD_H

#include <sys/types.h>

struct remus_loop;
struct remus_child;

/*
 * The child is gone.  @status >= 0: its wait status (WIFEXITED,
 * WEXITSTATUS, WIFSIGNALED, WTERMSIG apply); -ETIMEDOUT: it ran past the
 * timeout and was killed; another -errno: it could not be waited for.
 * Called once, from the loop, never from inside remus_child_spawn().  May
 * call remus_child_free() on the child.
 */
typedef void remus_child_done_cb(void *opaque, int status);

struct remus_child_opts {
	/* What to run: @argv (argv[0] is the program, looked up in PATH;
	 * NULL-terminated) or, if @argv is NULL, `/bin/sh -c @shell`. */
	const char *const *argv;
	const char *shell;
	/* "NAME=VALUE" strings added to (or replacing in) the daemon's
	 * environment; NULL-terminated; NULL: none. */
	const char *const *env;
	/* Milliseconds until SIGKILL; 0: no timeout. */
	unsigned timeout_ms;
};

/*
 * Starts a child as @opts says (borrowed, copied as needed) and watches it
 * on @loop (borrowed, outlives the child).  Returns 0 with *@out (owned:
 * remus_child_free, also after done_cb ran), after which @done runs once;
 * or -errno (the program could not be started, no pidfd, out of memory)
 * with nothing running, *@out untouched and @done never called.
 */
int remus_child_spawn(struct remus_loop *loop, const struct remus_child_opts *opts,
		      remus_child_done_cb *done, void *opaque, struct remus_child **out);

/* The child's pid (also after it was reaped, for messages). */
pid_t remus_child_pid(const struct remus_child *c);

/*
 * Frees @c.  A child still running is killed (SIGKILL) and reaped before
 * this returns, and done_cb is not called.  Safe from inside done_cb.
 * NULL is fine.
 */
void remus_child_free(struct remus_child *c);

/*
 * Frees @c but lets a child still running run on (an activation hook must
 * not be cut short because the daemon stops): done_cb is not called, and
 * the process is no longer waited for; once this process exits, init
 * reaps it.  NULL is fine.
 */
void remus_child_disown(struct remus_child *c);

#endif
