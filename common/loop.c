// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The event loop (see loop.h for the contract).
 *
 * fd watches are heap objects registered in epoll with data.ptr pointing at
 * them.  Removing a watch while an epoll batch is being dispatched must not
 * leave a dangling pointer in that batch, so removal only marks the watch
 * dead and moves it to a graveyard that is freed after the batch.
 *
 * Timers are owned by their users (struct remus_timer, embedded) and kept
 * in one doubly linked list sorted by due time: arming inserts after the
 * last timer due no later (a linear scan), disarming unlinks, and the
 * nearest one is the head.  A remus process has a handful (epoch tick,
 * heartbeat, one per QMP command in flight), so a heap would be
 * complexity without a payoff.  `pprev` points at whatever points at the
 * timer, so unlinking works the same in the loop's list and in the batch
 * of due timers being fired, which lets a callback disarm or move any
 * other due timer before it runs.
 *
 * Stalls: an iteration's work is the time from epoll_wait's return to the
 * end of its timers, minus the time nested iterations spent waiting in
 * their own epoll_wait (a synchronous helper's wait is not work).  The
 * longest one is kept for status: it is what a heartbeat timer due in that
 * iteration was late by, at worst.
 */
#include "common/loop.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 64

struct watch {
	int fd;
	unsigned events;
	bool dead;
	remus_fd_cb *cb;
	void *opaque;
	struct watch *next; /* live list or graveyard */
};

struct remus_loop {
	int epfd;
	struct watch *watches;   /* live */
	struct watch *graveyard; /* removed during dispatch */
	struct remus_timer *timers; /* armed, by due time */
	unsigned depth; /* nested run_once calls (synchronous helpers) */
	bool stop;
	int stop_rc;
	uint64_t waited_ns;    /* in epoll_wait, all depths, since creation */
	uint64_t max_stall_ns; /* longest iteration's work */
};

uint64_t remus_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t remus_now_ms(void)
{
	return remus_now_ns() / 1000000ull;
}

int remus_loop_new(struct remus_loop **out)
{
	struct remus_loop *loop;

	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int rc = -errno;

		free(loop);
		return rc;
	}
	*out = loop;
	return 0;
}

static void free_watches(struct watch *w)
{
	while (w) {
		struct watch *next = w->next;

		free(w);
		w = next;
	}
}

void remus_loop_free(struct remus_loop *loop)
{
	if (!loop)
		return;
	free_watches(loop->watches);
	free_watches(loop->graveyard);
	/* Their owners may still disarm them: that must not touch @loop. */
	while (loop->timers)
		remus_timer_disarm(loop->timers);
	close(loop->epfd);
	free(loop);
}

static uint32_t to_epoll(unsigned events)
{
	uint32_t e = 0;

	if (events & REMUS_EV_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & REMUS_EV_WRITE)
		e |= EPOLLOUT;
	return e;
}

static struct watch **find_watch(struct remus_loop *loop, int fd)
{
	struct watch **pw;

	for (pw = &loop->watches; *pw; pw = &(*pw)->next)
		if ((*pw)->fd == fd)
			return pw;
	return NULL;
}

int remus_loop_add_fd(struct remus_loop *loop, int fd, unsigned events,
		      remus_fd_cb *cb, void *opaque)
{
	struct epoll_event ev = { 0 };
	struct watch *w;

	if (fd < 0 || !cb)
		return -EINVAL;
	if (find_watch(loop, fd))
		return -EEXIST;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->events = events;
	w->cb = cb;
	w->opaque = opaque;
	ev.events = to_epoll(events);
	ev.data.ptr = w;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int rc = -errno;

		free(w);
		return rc;
	}
	w->next = loop->watches;
	loop->watches = w;
	return 0;
}

int remus_loop_mod_fd(struct remus_loop *loop, int fd, unsigned events)
{
	struct epoll_event ev = { 0 };
	struct watch **pw = find_watch(loop, fd);

	if (!pw)
		return -ENOENT;
	ev.events = to_epoll(events);
	ev.data.ptr = *pw;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	(*pw)->events = events;
	return 0;
}

int remus_loop_del_fd(struct remus_loop *loop, int fd)
{
	struct watch **pw = find_watch(loop, fd);
	struct watch *w;

	if (!pw)
		return -ENOENT;
	w = *pw;
	*pw = w->next;
	/* The fd may already be closed by a careless caller; the watch goes
	 * away regardless, and epoll drops closed fds by itself. */
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->dead = true;
	w->next = loop->graveyard;
	loop->graveyard = w;
	return 0;
}

void remus_timer_init(struct remus_timer *t, struct remus_loop *loop,
		      remus_timer_cb *cb, void *opaque)
{
	/* @t may be uninitialised memory: nothing of it is read. */
	t->loop = loop;
	t->cb = cb;
	t->opaque = opaque;
	t->due_ns = 0;
	t->next = NULL;
	t->pprev = NULL;
}

static void timer_unlink(struct remus_timer *t)
{
	if (t->next)
		t->next->pprev = t->pprev;
	*t->pprev = t->next;
	t->next = NULL;
	t->pprev = NULL;
}

void remus_timer_disarm(struct remus_timer *t)
{
	if (t->pprev)
		timer_unlink(t);
}

bool remus_timer_armed(const struct remus_timer *t)
{
	return t->pprev != NULL;
}

void remus_timer_arm(struct remus_timer *t, uint64_t delay_ms)
{
	struct remus_loop *loop = t->loop;
	struct remus_timer **pp, *prev = NULL, *p;
	uint64_t now = remus_now_ns();

	assert(loop && t->cb);
	remus_timer_disarm(t);
	/* Saturate instead of wrapping: a huge delay means "never soon". */
	if (delay_ms > (UINT64_MAX - now) / 1000000ull)
		t->due_ns = UINT64_MAX;
	else
		t->due_ns = now + delay_ms * 1000000ull;
	/* After the last timer due no later than us: equal due times keep
	 * their arming order. */
	for (p = loop->timers; p; p = p->next)
		if (p->due_ns <= t->due_ns)
			prev = p;
		else
			break;
	pp = prev ? &prev->next : &loop->timers;
	t->next = *pp;
	if (t->next)
		t->next->pprev = &t->next;
	t->pprev = pp;
	*pp = t;
}

/* Milliseconds until the nearest timer, rounded up; -1 if none. */
static int next_timeout_ms(struct remus_loop *loop, uint64_t now)
{
	uint64_t best;

	if (!loop->timers)
		return -1;
	best = loop->timers->due_ns;
	if (best <= now)
		return 0;
	best = (best - now + 999999ull) / 1000000ull;
	return best > 86400000ull ? 86400000 : (int)best;
}

static void fire_timers(struct remus_loop *loop)
{
	uint64_t now = remus_now_ns();
	struct remus_timer *due = NULL, *t, **pp = &loop->timers;

	/* Move the due prefix of the list into a batch of its own: timers
	 * armed by a callback go to the loop's list and wait for the next
	 * round even with delay 0, so a self-arming timer cannot spin here;
	 * a timer of the batch that a callback disarms or moves leaves the
	 * batch and does not fire now. */
	while (*pp && (*pp)->due_ns <= now)
		pp = &(*pp)->next;
	if (pp == &loop->timers)
		return;
	due = loop->timers;
	due->pprev = &due;
	loop->timers = *pp;
	if (loop->timers)
		loop->timers->pprev = &loop->timers;
	*pp = NULL;
	while ((t = due)) {
		timer_unlink(t);
		t->cb(loop, t->opaque);
	}
}

int remus_loop_run_once(struct remus_loop *loop, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t t0, waited0, work;
	int n, i, t;

	t0 = remus_now_ns();
	t = next_timeout_ms(loop, t0);
	if (timeout_ms >= 0 && (t < 0 || timeout_ms < t))
		t = timeout_ms;
	do
		n = epoll_wait(loop->epfd, evs, MAX_EVENTS, t);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	waited0 = remus_now_ns();
	loop->waited_ns += waited0 - t0;
	t0 = waited0;
	waited0 = loop->waited_ns;
	loop->depth++;
	for (i = 0; i < n; i++) {
		struct watch *w = evs[i].data.ptr;
		unsigned ev = 0;

		if (w->dead)
			continue;
		if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
			ev |= REMUS_EV_READ;
		if (evs[i].events & EPOLLOUT)
			ev |= REMUS_EV_WRITE;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			ev |= REMUS_EV_ERROR;
		w->cb(loop, w->fd, ev, w->opaque);
	}
	/* A nested iteration must not free watches its outer batch may still
	 * look at. */
	if (--loop->depth == 0) {
		free_watches(loop->graveyard);
		loop->graveyard = NULL;
	}
	fire_timers(loop);
	work = remus_now_ns() - t0 - (loop->waited_ns - waited0);
	if (work > loop->max_stall_ns)
		loop->max_stall_ns = work;
	return 0;
}

double remus_loop_max_stall_ms(const struct remus_loop *loop)
{
	return (double)loop->max_stall_ns / 1e6;
}

void remus_loop_reset_max_stall(struct remus_loop *loop)
{
	loop->max_stall_ns = 0;
}

int remus_loop_run(struct remus_loop *loop)
{
	int rc;

	loop->stop = false;
	while (!loop->stop) {
		rc = remus_loop_run_once(loop, -1);
		if (rc < 0)
			return rc;
	}
	return loop->stop_rc;
}

void remus_loop_stop(struct remus_loop *loop, int rc)
{
	loop->stop = true;
	loop->stop_rc = rc;
}
