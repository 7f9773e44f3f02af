/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one event loop of a remus-qemu process.
 *
 * Everything that waits (QMP, migration channel, replication link,
 * heartbeats, netbuffer sockets, NBD) registers here and never blocks:
 * fd watches (epoll, level-triggered), one-shot timers on the monotonic
 * clock, and deferred calls that run before the next wait.  One iteration:
 *
 *     run deferred calls -> epoll_wait(until nearest timer) ->
 *     dispatch ready fds -> fire expired timers
 *
 * Callbacks may add or remove any watch, timer or deferred call, including
 * their own, at any time; a watch removed during an iteration is never
 * called again, even if it was already reported ready.  Not thread-safe:
 * a loop belongs to the thread that runs it.
 */
#ifndef REMUS_COMMON_LOOP_H
#define REMUS_COMMON_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct remus_loop;

/* Event bits for remus_loop_add_fd(); REMUS_EV_ERROR is only reported. */
enum {
	REMUS_EV_READ = 1u << 0,
	REMUS_EV_WRITE = 1u << 1,
	REMUS_EV_ERROR = 1u << 2, /* EPOLLERR or EPOLLHUP */
};

typedef void remus_fd_cb(struct remus_loop *loop, int fd, unsigned events,
			 void *opaque);
typedef void remus_call_cb(struct remus_loop *loop, void *opaque);

/* Timer handle; 0 is never a valid id. */
typedef uint64_t remus_timer_id;

/* Returns 0 and a new loop in *@out (owned by the caller, free with
 * remus_loop_free), or -errno with *@out untouched. */
int remus_loop_new(struct remus_loop **out);
/* Frees @loop and every watch, timer and deferred call still registered
 * (their callbacks are not called; fds are not closed).  NULL is fine. */
void remus_loop_free(struct remus_loop *loop);

/* Watches @fd (borrowed: the caller keeps it open until remus_loop_del_fd)
 * for @events.  One watch per fd.  Returns 0, -EEXIST if @fd is watched,
 * or -errno from epoll_ctl. */
int remus_loop_add_fd(struct remus_loop *loop, int fd, unsigned events,
		      remus_fd_cb *cb, void *opaque);
/* Changes the events of a watched fd.  Returns 0 or -ENOENT/-errno. */
int remus_loop_mod_fd(struct remus_loop *loop, int fd, unsigned events);
/* Stops watching @fd.  Returns 0, or -ENOENT if it was not watched. */
int remus_loop_del_fd(struct remus_loop *loop, int fd);

/* Calls @cb once, @delay_ms from now.  Returns the timer's id (never 0),
 * or 0 if out of memory. */
remus_timer_id remus_loop_add_timer(struct remus_loop *loop, uint64_t delay_ms,
				    remus_call_cb *cb, void *opaque);
/* Cancels a pending timer.  Returns true if it was pending; an id that
 * already fired or was never issued is ignored (returns false). */
bool remus_loop_del_timer(struct remus_loop *loop, remus_timer_id id);

/* Calls @cb at the start of the next iteration, before any wait.
 * Returns 0 or -ENOMEM. */
int remus_loop_defer(struct remus_loop *loop, remus_call_cb *cb, void *opaque);

/* Runs one iteration, waiting at most @timeout_ms for fds (-1: until a
 * timer or fd is due).  Returns 0 or -errno from epoll_wait (never
 * -EINTR, which is retried). */
int remus_loop_run_once(struct remus_loop *loop, int timeout_ms);
/* Runs until remus_loop_stop().  Returns the value passed to stop. */
int remus_loop_run(struct remus_loop *loop);
/* Makes remus_loop_run() return @rc after the current iteration. */
void remus_loop_stop(struct remus_loop *loop, int rc);

/* Monotonic clock. */
uint64_t remus_now_ns(void);
uint64_t remus_now_ms(void);

#endif
