/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one event loop of a remus-qemu process.
 *
 * Everything that waits (QMP, migration channel, replication link,
 * heartbeats, netbuffer sockets, NBD) registers here and never blocks:
 * fd watches (epoll, level-triggered) and one-shot timers on the monotonic
 * clock.  One iteration:
 *
 *     epoll_wait(until nearest timer) -> dispatch ready fds -> fire due timers
 *
 * A timer is a struct remus_timer that its owner embeds in its own struct,
 * so arming one allocates nothing and cannot fail: an epoch or heartbeat
 * timer cannot silently stay unarmed.  Callbacks may add or remove any
 * watch and arm or disarm any timer, including their own, at any time; a
 * watch removed during an iteration is never called again, even if it was
 * already reported ready, and a timer disarmed before its callback ran is
 * never called.  Not thread-safe: a loop belongs to the thread that runs it.
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
typedef void remus_timer_cb(struct remus_loop *loop, void *opaque);

/*
 * A one-shot timer, embedded by its owner (the fields are private).  A
 * zeroed struct is a disarmed timer without a callback: disarming it and
 * asking whether it is armed are fine, arming it is not (init first).
 * The owner disarms it before freeing the memory it lives in.
 */
struct remus_timer {
	struct remus_loop *loop;     /* borrowed */
	remus_timer_cb *cb;
	void *opaque;
	uint64_t due_ns;
	struct remus_timer *next;    /* in the loop's list, sorted by due_ns */
	struct remus_timer **pprev;  /* NULL: disarmed */
};

/* Returns 0 and a new loop in *@out (owned by the caller, free with
 * remus_loop_free), or -errno with *@out untouched. */
int remus_loop_new(struct remus_loop **out);
/* Frees @loop and every watch still registered, and disarms every timer
 * still armed (no callback is called; fds are not closed; the timers'
 * memory is their owners').  NULL is fine. */
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

/* Makes @t (owned by the caller; uninitialised, zeroed or disarmed, never
 * armed) a disarmed timer of @loop (borrowed: must outlive every arming)
 * that calls @cb(@loop, @opaque).  Also changes the callback of a
 * disarmed timer. */
void remus_timer_init(struct remus_timer *t, struct remus_loop *loop,
		      remus_timer_cb *cb, void *opaque);
/* Calls the callback once, @delay_ms from now; the timer is disarmed when
 * its callback runs.  Arming an armed timer moves it.  Timers due at the
 * same time fire in arming order; a timer armed by a callback while due
 * timers fire waits for the next iteration, even with delay 0, so a timer
 * that re-arms itself cannot starve fds.  Cannot fail. */
void remus_timer_arm(struct remus_timer *t, uint64_t delay_ms);
/* Cancels @t if armed (its callback will not run); otherwise nothing.
 * Idempotent. */
void remus_timer_disarm(struct remus_timer *t);
/* True from remus_timer_arm() until the callback runs or disarm. */
bool remus_timer_armed(const struct remus_timer *t);

/* Runs one iteration, waiting at most @timeout_ms for fds (-1: until a
 * timer or fd is due).  Returns 0 or -errno from epoll_wait (never
 * -EINTR, which is retried). */
int remus_loop_run_once(struct remus_loop *loop, int timeout_ms);
/* Runs until remus_loop_stop().  Returns the value passed to stop. */
int remus_loop_run(struct remus_loop *loop);
/* Makes remus_loop_run() return @rc after the current iteration. */
void remus_loop_stop(struct remus_loop *loop, int rc);

/* The longest work of one iteration so far, in ms: from epoll_wait's
 * return through the fd callbacks and timers, minus what nested
 * iterations waited.  Nothing else runs meanwhile, so a timer due then
 * (a heartbeat) fires that much late at worst; status reports it as
 * loop_max_stall_ms. */
double remus_loop_max_stall_ms(const struct remus_loop *loop);
/* Starts the measurement again (0 until the next iteration). */
void remus_loop_reset_max_stall(struct remus_loop *loop);

/* Monotonic clock. */
uint64_t remus_now_ns(void);
uint64_t remus_now_ms(void);

#endif
