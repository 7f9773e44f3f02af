// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The event loop (see loop.h for the contract).
 *
 * fd watches are heap objects registered in epoll with data.ptr pointing at
 * them.  Removing a watch while an epoll batch is being dispatched must not
 * leave a dangling pointer in that batch, so removal only marks the watch
 * dead and moves it to a graveyard that is freed after the batch.
 *
 * Timers live in a small array scanned linearly: a remus process has a
 * handful (epoch tick, heartbeat, QMP timeouts), so a heap would be
 * complexity without a payoff.  Deferred calls are a FIFO; calls deferred
 * while the FIFO runs wait for the next iteration, so a callback that
 * defers itself cannot starve the loop.
 */
#include "common/loop.h"

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

struct timer {
	remus_timer_id id;
	uint64_t due_ns;
	remus_call_cb *cb;
	void *opaque;
};

struct call {
	remus_call_cb *cb;
	void *opaque;
	struct call *next;
};

struct remus_loop {
	int epfd;
	struct watch *watches;   /* live */
	struct watch *graveyard; /* removed during dispatch */
	struct timer *timers;
	size_t ntimers, timers_cap;
	remus_timer_id next_timer_id;
	struct call *calls_head, *calls_tail;
	unsigned depth; /* nested run_once calls (synchronous helpers) */
	bool stop;
	int stop_rc;
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
	loop->next_timer_id = 1;
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
	struct call *c;

	if (!loop)
		return;
	free_watches(loop->watches);
	free_watches(loop->graveyard);
	for (c = loop->calls_head; c;) {
		struct call *next = c->next;

		free(c);
		c = next;
	}
	free(loop->timers);
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

remus_timer_id remus_loop_add_timer(struct remus_loop *loop, uint64_t delay_ms,
				    remus_call_cb *cb, void *opaque)
{
	struct timer *t;

	if (loop->ntimers == loop->timers_cap) {
		size_t cap = loop->timers_cap ? loop->timers_cap * 2 : 16;
		struct timer *n = realloc(loop->timers, cap * sizeof(*n));

		if (!n)
			return 0;
		loop->timers = n;
		loop->timers_cap = cap;
	}
	t = &loop->timers[loop->ntimers++];
	t->id = loop->next_timer_id++;
	t->due_ns = remus_now_ns() + delay_ms * 1000000ull;
	t->cb = cb;
	t->opaque = opaque;
	return t->id;
}

bool remus_loop_del_timer(struct remus_loop *loop, remus_timer_id id)
{
	size_t i;

	for (i = 0; i < loop->ntimers; i++) {
		if (loop->timers[i].id == id) {
			loop->timers[i] = loop->timers[--loop->ntimers];
			return true;
		}
	}
	return false;
}

int remus_loop_defer(struct remus_loop *loop, remus_call_cb *cb, void *opaque)
{
	struct call *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->cb = cb;
	c->opaque = opaque;
	if (loop->calls_tail)
		loop->calls_tail->next = c;
	else
		loop->calls_head = c;
	loop->calls_tail = c;
	return 0;
}

static void run_deferred(struct remus_loop *loop)
{
	struct call *c = loop->calls_head;

	/* Detach the current FIFO: calls deferred from here run next time. */
	loop->calls_head = loop->calls_tail = NULL;
	while (c) {
		struct call *next = c->next;

		c->cb(loop, c->opaque);
		free(c);
		c = next;
	}
}

/* Milliseconds until the nearest timer, rounded up; -1 if none. */
static int next_timeout_ms(struct remus_loop *loop, uint64_t now)
{
	uint64_t best = UINT64_MAX;
	size_t i;

	for (i = 0; i < loop->ntimers; i++)
		if (loop->timers[i].due_ns < best)
			best = loop->timers[i].due_ns;
	if (best == UINT64_MAX)
		return -1;
	if (best <= now)
		return 0;
	best = (best - now + 999999ull) / 1000000ull;
	return best > 86400000ull ? 86400000 : (int)best;
}

static void fire_timers(struct remus_loop *loop)
{
	uint64_t now = remus_now_ns();
	remus_timer_id limit = loop->next_timer_id;
	size_t i = 0;

	/* Timers added by a callback (id >= limit) wait for the next round even
	 * with delay 0, so a self-rearming timer cannot spin here.  The array
	 * may change under us, so restart the scan after every call. */
	while (i < loop->ntimers) {
		struct timer t = loop->timers[i];

		if (t.id >= limit || t.due_ns > now) {
			i++;
			continue;
		}
		loop->timers[i] = loop->timers[--loop->ntimers];
		t.cb(loop, t.opaque);
		i = 0;
	}
}

int remus_loop_run_once(struct remus_loop *loop, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n, i, t;

	run_deferred(loop);
	t = next_timeout_ms(loop, remus_now_ns());
	if (loop->calls_head)
		t = 0;
	if (timeout_ms >= 0 && (t < 0 || timeout_ms < t))
		t = timeout_ms;
	do
		n = epoll_wait(loop->epfd, evs, MAX_EVENTS, t);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
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
	return 0;
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
