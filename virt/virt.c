// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The libvirt connection on the loop (see virt.h for the contract).
 *
 * One mutex guards three lists of items:
 *
 *     queued (FIFO) --worker takes--> running --work returns--> completed (FIFO)
 *                                                                   |
 *     mailbox post (any thread) ------------------------------------+
 *     open result, connection closed (workers, libvirt's thread) ---+
 *                                                                   v
 *                               eventfd readable -> loop pops one item at a time
 *
 * The loop pops completed items one at a time and calls back without the
 * lock, so a callback may submit, cancel an owner or close a mailbox; a
 * cancelled item is simply not in a list any more, or is marked.  Worker 0
 * opens the connection before it takes any work; the other workers wait
 * until the open is over, so no work sees a NULL connection (a failed open
 * completes every call with the open's error instead of running it).
 *
 * Lock order: a mailbox's lock, then v->mu.  A post holds the mailbox's
 * lock while it touches @v, and close takes it, so once a mailbox is
 * closed no thread is inside @v through it: that is what lets the owner
 * free @v after closing its mailboxes while libvirt still holds one.
 *
 * Re-entrancy: the eventfd watch and remus_virt_free() bracket callbacks
 * with `depth`; free() from inside a callback only marks, and the memory
 * goes when the outermost callback returns (as in qmp.c).
 */
#include "virt/virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "common/log.h"
#include "common/loop.h"

#define COMP "virt"
#define MAX_WORKERS 64u

enum item_kind {
	ITEM_CALL,
	ITEM_MSG,    /* a mailbox message */
	ITEM_OPEN,   /* the open's result */
	ITEM_CLOSED, /* libvirt closed the connection */
};

struct item {
	struct item *next;
	enum item_kind kind;
	/* ITEM_CALL */
	const void *owner;
	remus_virt_work_fn *work;
	remus_virt_done_cb *done;
	remus_virt_free_fn *free_fn;
	void *opaque;
	bool cancelled;  /* done must not run; set on the loop thread */
	/* ITEM_CALL and ITEM_OPEN results; ITEM_CLOSED reason */
	int rc;
	char *err;       /* owned */
	/* ITEM_MSG */
	struct remus_virt_mbox *mbox; /* a reference */
	void *msg;       /* owned */
};

struct remus_virt_mbox {
	pthread_mutex_t lock;
	unsigned refs;           /* under lock */
	bool closed;             /* written on the loop thread under lock */
	struct remus_virt *v;    /* borrowed; valid while not closed */
	remus_virt_mbox_cb *cb;
	remus_virt_free_fn *msg_free;
	void *opaque;
};

struct remus_virt {
	struct remus_loop *loop; /* borrowed */
	char *uri;               /* owned; NULL: libvirt's default */
	remus_virt_open_cb *open_cb;
	remus_virt_closed_cb *closed_cb;
	void *opaque;
	int efd;                 /* eventfd, watched by the loop */
	bool watched;

	pthread_mutex_t mu;
	pthread_cond_t cond;     /* workers: work queued, open over, stopping */
	struct item *queued, *queued_tail;
	struct item *running;
	struct item *completed, *completed_tail;
	virConnectPtr conn;      /* set by worker 0; read after open_over */
	bool open_over;
	int open_rc;
	char *open_err;          /* owned; the open's error, for later calls */
	bool stopping;
	bool close_cb_registered;

	pthread_t *threads;
	unsigned nthreads;       /* started */
	size_t npending;         /* loop thread: calls whose done is due */
	unsigned depth;          /* loop thread */
	bool freeing;            /* loop thread */
};

struct worker_arg {
	struct remus_virt *v;
	unsigned index;
};

/* ---- process-wide libvirt set-up -------------------------------------- */

static pthread_once_t event_once = PTHREAD_ONCE_INIT;
static int event_rc;

/* libvirt prints every error on stderr by default; ours are reported
 * with context by whoever called, so libvirt's own copy goes to debug. */
static void quiet_error(void *opaque, virErrorPtr e)
{
	(void)opaque;
	if (e && e->message)
		remus_debug(COMP, "libvirt: %s", e->message);
}

static void *event_thread(void *arg)
{
	(void)arg;
	for (;;) {
		if (virEventRunDefaultImpl() < 0)
			remus_warn(COMP, "libvirt event loop: %s", virGetLastErrorMessage());
	}
	return NULL;
}

static void event_setup(void)
{
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (virInitialize() < 0) {
		event_rc = -EIO;
		return;
	}
	virSetErrorFunc(NULL, quiet_error);
	if (virEventRegisterDefaultImpl() < 0) {
		event_rc = -EIO;
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, event_thread, NULL);
	pthread_attr_destroy(&attr);
	event_rc = r ? -r : 0;
}

/* ---- small helpers ---------------------------------------------------- */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;
	int r;

	va_start(ap, f);
	r = vasprintf(&s, f, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

static const char *uri_name(const struct remus_virt *v)
{
	return v->uri ? v->uri : "(default)";
}

static void item_free(struct item *it)
{
	if (!it)
		return;
	free(it->err);
	free(it);
}

static void wake_loop(struct remus_virt *v)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is readable then. */
	if (write(v->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		remus_warn(COMP, "libvirt %s: cannot wake the loop: %s", uri_name(v),
			   strerror(errno));
}

/* Appends @it to the completed list; caller holds v->mu. */
static void complete_locked(struct remus_virt *v, struct item *it)
{
	it->next = NULL;
	if (v->completed_tail)
		v->completed_tail->next = it;
	else
		v->completed = it;
	v->completed_tail = it;
	wake_loop(v);
}

static void list_remove(struct item **head, struct item **tail, struct item *it)
{
	struct item **pp, *prev = NULL;

	for (pp = head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp == it) {
			*pp = it->next;
			if (tail && *tail == it)
				*tail = prev;
			it->next = NULL;
			return;
		}
	}
}

/* The message of a failed work: its own, libvirt's, or strerror. */
static char *work_error(struct remus_virt *v, int rc, char *own)
{
	virErrorPtr e = virGetLastError();
	char *s;

	if (own) {
		s = fmt("libvirt %s: %s", uri_name(v), own);
		free(own);
	} else if (e && e->message) {
		s = fmt("libvirt %s: %s", uri_name(v), e->message);
	} else {
		s = fmt("libvirt %s: %s", uri_name(v), strerror(rc < 0 ? -rc : EIO));
	}
	return s;
}

/* ---- workers ---------------------------------------------------------- */

static void on_conn_closed(virConnectPtr conn, int reason, void *opaque)
{
	struct remus_virt *v = opaque;
	struct item *it = calloc(1, sizeof(*it));
	const char *why;

	(void)conn;
	switch (reason) {
	case VIR_CONNECT_CLOSE_REASON_EOF: why = "eof"; break;
	case VIR_CONNECT_CLOSE_REASON_KEEPALIVE: why = "keepalive"; break;
	case VIR_CONNECT_CLOSE_REASON_CLIENT: why = "client"; break;
	default: why = "error"; break;
	}
	if (!it) {
		remus_err(COMP, "libvirt %s: connection closed (%s), out of memory to report it",
			  uri_name(v), why);
		return;
	}
	it->kind = ITEM_CLOSED;
	it->err = strdup(why);
	pthread_mutex_lock(&v->mu);
	complete_locked(v, it);
	pthread_mutex_unlock(&v->mu);
}

static void do_open(struct remus_virt *v)
{
	struct item *it = calloc(1, sizeof(*it));
	virConnectPtr conn;
	char *err = NULL;
	int rc = 0;

	virResetLastError();
	conn = virConnectOpen(v->uri);
	if (!conn) {
		rc = -EIO;
		err = fmt("libvirt %s: cannot open: %s", uri_name(v),
			  virGetLastErrorMessage());
	} else if (virConnectRegisterCloseCallback(conn, on_conn_closed, v, NULL) == 0) {
		v->close_cb_registered = true;
	} else {
		/* Local drivers have no close callback: nothing to report. */
		virResetLastError();
	}
	pthread_mutex_lock(&v->mu);
	v->conn = conn;
	v->open_rc = rc;
	v->open_err = err ? strdup(err) : NULL;
	v->open_over = true;
	if (it) {
		it->kind = ITEM_OPEN;
		it->rc = rc;
		it->err = err;
		err = NULL;
		complete_locked(v, it);
	}
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->mu);
	free(err);
}

static void *worker(void *arg)
{
	struct worker_arg *wa = arg;
	struct remus_virt *v = wa->v;
	unsigned index = wa->index;

	free(wa);
	if (index == 0)
		do_open(v);
	pthread_mutex_lock(&v->mu);
	for (;;) {
		struct item *it;
		char *own = NULL;
		int rc;

		while (!v->stopping && (!v->open_over || !v->queued))
			pthread_cond_wait(&v->cond, &v->mu);
		if (v->stopping)
			break;
		it = v->queued;
		v->queued = it->next;
		if (!v->queued)
			v->queued_tail = NULL;
		it->next = v->running;
		v->running = it;
		if (!v->conn) {
			it->rc = v->open_rc;
			it->err = v->open_err ? strdup(v->open_err) : NULL;
		} else {
			virConnectPtr conn = v->conn;

			pthread_mutex_unlock(&v->mu);
			virResetLastError();
			rc = it->work(conn, it->opaque, &own);
			if (rc > 0)
				rc = 0;
			it->rc = rc;
			if (rc < 0)
				it->err = work_error(v, rc, own);
			else
				free(own);
			pthread_mutex_lock(&v->mu);
		}
		list_remove(&v->running, NULL, it);
		complete_locked(v, it);
	}
	pthread_mutex_unlock(&v->mu);
	return NULL;
}

/* ---- the loop side ---------------------------------------------------- */

static void mbox_unref(struct remus_virt_mbox *m);

static void enter(struct remus_virt *v)
{
	v->depth++;
}

static void destroy(struct remus_virt *v);

/* Returns true if @v is gone. */
static bool leave(struct remus_virt *v)
{
	if (--v->depth > 0)
		return false;
	if (v->freeing) {
		destroy(v);
		return true;
	}
	return false;
}

/* Runs one completed item's callbacks (loop thread, without the lock). */
static void dispatch(struct remus_virt *v, struct item *it)
{
	switch (it->kind) {
	case ITEM_CALL:
		if (!it->cancelled) {
			v->npending--;
			if (it->done)
				it->done(v, it->rc, it->rc < 0 ? (it->err ? it->err : "out of memory")
						: NULL, it->opaque);
		}
		if (it->free_fn)
			it->free_fn(it->opaque);
		break;
	case ITEM_MSG:
		if (!it->mbox->closed)
			it->mbox->cb(it->msg, it->mbox->opaque);
		it->mbox->msg_free(it->msg);
		mbox_unref(it->mbox);
		break;
	case ITEM_OPEN:
		if (it->rc < 0)
			remus_err(COMP, "%s", it->err ? it->err : "cannot open libvirt");
		else
			remus_info(COMP, "libvirt %s: connected", uri_name(v));
		if (v->open_cb && !v->freeing)
			v->open_cb(v, it->rc, it->rc < 0 ? (it->err ? it->err : "out of memory")
					: NULL, v->opaque);
		break;
	case ITEM_CLOSED:
		remus_warn(COMP, "libvirt %s: connection closed (%s)", uri_name(v),
			   it->err ? it->err : "?");
		if (v->closed_cb && !v->freeing)
			v->closed_cb(v, it->err ? it->err : "error", v->opaque);
		break;
	}
	item_free(it);
}

static struct item *pop_completed(struct remus_virt *v)
{
	struct item *it;

	pthread_mutex_lock(&v->mu);
	it = v->completed;
	if (it) {
		v->completed = it->next;
		if (!v->completed)
			v->completed_tail = NULL;
		it->next = NULL;
	}
	pthread_mutex_unlock(&v->mu);
	return it;
}

static void on_efd(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct remus_virt *v = opaque;
	struct item *it;
	uint64_t n;

	(void)loop;
	(void)events;
	/* Read first: a wake-up for an item added meanwhile is not lost. */
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		remus_warn(COMP, "libvirt %s: eventfd read: %s", uri_name(v), strerror(errno));
	enter(v);
	while (!v->freeing && (it = pop_completed(v)))
		dispatch(v, it);
	leave(v);
}

static void destroy(struct remus_virt *v)
{
	struct item *it, *queued;
	unsigned i;

	/* The callbacks below may call cancel_owner or mbox_close, never
	 * free again (freeing is set), and submit fails. */
	v->depth++;
	pthread_mutex_lock(&v->mu);
	v->stopping = true;
	queued = v->queued;
	v->queued = v->queued_tail = NULL;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->mu);
	while ((it = queued)) {
		queued = it->next;
		if (!it->cancelled) {
			v->npending--;
			if (it->done)
				it->done(v, -ECANCELED, "libvirt connection closed", it->opaque);
		}
		if (it->free_fn)
			it->free_fn(it->opaque);
		item_free(it);
	}
	for (i = 0; i < v->nthreads; i++)
		pthread_join(v->threads[i], NULL);
	/* The workers are gone: what ran is in completed now. */
	while ((it = pop_completed(v))) {
		if (it->kind == ITEM_CALL && !it->cancelled) {
			it->rc = -ECANCELED;
			free(it->err);
			it->err = strdup("libvirt connection closed");
		}
		dispatch(v, it);
	}
	if (v->conn) {
		if (v->close_cb_registered)
			virConnectUnregisterCloseCallback(v->conn, on_conn_closed);
		virConnectClose(v->conn);
	}
	if (v->watched)
		remus_loop_del_fd(v->loop, v->efd);
	if (v->efd >= 0)
		close(v->efd);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->mu);
	free(v->threads);
	free(v->open_err);
	free(v->uri);
	free(v);
}

int remus_virt_open(struct remus_loop *loop, const char *uri,
		    const struct remus_virt_opts *opts, remus_virt_open_cb *open_cb,
		    void *opaque, struct remus_virt **out)
{
	struct remus_virt *v = NULL;
	unsigned n = opts && opts->workers ? opts->workers : REMUS_VIRT_DEFAULT_WORKERS;
	unsigned i;
	int rc, r;

	if (n > MAX_WORKERS)
		n = MAX_WORKERS;
	pthread_once(&event_once, event_setup);
	if (event_rc < 0) {
		remus_err(COMP, "cannot start libvirt's event loop: %s",
			  virGetLastErrorMessage());
		return event_rc;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->efd = -1;
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cond, NULL);
	v->loop = loop;
	v->open_cb = open_cb;
	v->closed_cb = opts ? opts->closed_cb : NULL;
	v->opaque = opaque;
	if (uri && !(v->uri = strdup(uri))) {
		rc = -ENOMEM;
		goto out;
	}
	v->threads = calloc(n, sizeof(*v->threads));
	if (!v->threads) {
		rc = -ENOMEM;
		goto out;
	}
	v->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->efd < 0) {
		rc = -errno;
		goto out;
	}
	rc = remus_loop_add_fd(loop, v->efd, REMUS_EV_READ, on_efd, v);
	if (rc < 0)
		goto out;
	v->watched = true;
	for (i = 0; i < n; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));

		if (!wa) {
			rc = -ENOMEM;
			goto out;
		}
		wa->v = v;
		wa->index = i;
		r = pthread_create(&v->threads[i], NULL, worker, wa);
		if (r) {
			free(wa);
			rc = -r;
			goto out;
		}
		v->nthreads++;
	}
	remus_debug(COMP, "libvirt %s: opening with %u workers", uri_name(v), n);
	*out = v;
	v = NULL;
	rc = 0;
out:
	if (v) {
		/* No callback was promised: drop the open result silently. */
		v->open_cb = NULL;
		v->freeing = true;
		destroy(v);
	}
	return rc;
}

void remus_virt_free(struct remus_virt *v)
{
	if (!v || v->freeing)
		return;
	v->freeing = true;
	if (v->depth == 0)
		destroy(v);
}

int remus_virt_call_owned(struct remus_virt *v, const void *owner,
			  remus_virt_work_fn *work, remus_virt_done_cb *done,
			  remus_virt_free_fn *free_fn, void *opaque)
{
	struct item *it;

	if (!work)
		return -EINVAL;
	if (v->freeing)
		return -ESHUTDOWN;
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->kind = ITEM_CALL;
	it->owner = owner;
	it->work = work;
	it->done = done;
	it->free_fn = free_fn;
	it->opaque = opaque;
	pthread_mutex_lock(&v->mu);
	if (v->queued_tail)
		v->queued_tail->next = it;
	else
		v->queued = it;
	v->queued_tail = it;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->mu);
	v->npending++;
	return 0;
}

int remus_virt_call(struct remus_virt *v, remus_virt_work_fn *work,
		    remus_virt_done_cb *done, remus_virt_free_fn *free_fn, void *opaque)
{
	return remus_virt_call_owned(v, NULL, work, done, free_fn, opaque);
}

/* Moves @owner's ITEM_CALLs of list @head into *@out; v->mu held. */
static void take_owner(struct item **head, struct item **tail, const void *owner,
		       struct item **out)
{
	struct item **pp = head, *prev = NULL;

	while (*pp) {
		struct item *it = *pp;

		if (it->kind == ITEM_CALL && it->owner == owner && !it->cancelled) {
			*pp = it->next;
			if (tail && *tail == it)
				*tail = prev;
			it->next = *out;
			*out = it;
		} else {
			prev = it;
			pp = &it->next;
		}
	}
}

size_t remus_virt_cancel_owner(struct remus_virt *v, const void *owner)
{
	struct item *gone = NULL, *it;
	size_t n = 0;

	if (!v || !owner)
		return 0;
	pthread_mutex_lock(&v->mu);
	take_owner(&v->queued, &v->queued_tail, owner, &gone);
	take_owner(&v->completed, &v->completed_tail, owner, &gone);
	for (it = v->running; it; it = it->next) {
		if (it->owner == owner && !it->cancelled) {
			/* Its free_fn runs when it completes. */
			it->cancelled = true;
			n++;
		}
	}
	pthread_mutex_unlock(&v->mu);
	while ((it = gone)) {
		gone = it->next;
		n++;
		if (it->free_fn)
			it->free_fn(it->opaque);
		item_free(it);
	}
	v->npending -= n;
	return n;
}

size_t remus_virt_pending(const struct remus_virt *v)
{
	return v->npending;
}

struct remus_loop *remus_virt_loop(const struct remus_virt *v)
{
	return v->loop;
}

const char *remus_virt_uri(const struct remus_virt *v)
{
	return v->uri ? v->uri : "";
}

/* ---- mailboxes -------------------------------------------------------- */

int remus_virt_mbox_new(struct remus_virt *v, remus_virt_mbox_cb *cb,
			remus_virt_free_fn *msg_free, void *opaque,
			struct remus_virt_mbox **out)
{
	struct remus_virt_mbox *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->refs = 1;
	m->v = v;
	m->cb = cb;
	m->msg_free = msg_free ? msg_free : free;
	m->opaque = opaque;
	*out = m;
	return 0;
}

int remus_virt_mbox_post(struct remus_virt_mbox *m, void *msg)
{
	struct item *it;
	int rc;

	pthread_mutex_lock(&m->lock);
	if (m->closed) {
		rc = -EPIPE;
		goto out;
	}
	it = calloc(1, sizeof(*it));
	if (!it) {
		rc = -ENOMEM;
		goto out;
	}
	it->kind = ITEM_MSG;
	it->mbox = m;
	it->msg = msg;
	msg = NULL;
	m->refs++;
	pthread_mutex_lock(&m->v->mu);
	complete_locked(m->v, it);
	pthread_mutex_unlock(&m->v->mu);
	rc = 0;
out:
	pthread_mutex_unlock(&m->lock);
	if (msg)
		m->msg_free(msg);
	return rc;
}

struct remus_virt_mbox *remus_virt_mbox_ref(struct remus_virt_mbox *m)
{
	pthread_mutex_lock(&m->lock);
	m->refs++;
	pthread_mutex_unlock(&m->lock);
	return m;
}

static void mbox_unref(struct remus_virt_mbox *m)
{
	bool last;

	pthread_mutex_lock(&m->lock);
	last = --m->refs == 0;
	pthread_mutex_unlock(&m->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void remus_virt_mbox_unref(void *m)
{
	if (m)
		mbox_unref(m);
}

void remus_virt_mbox_close(struct remus_virt_mbox *m)
{
	struct remus_virt *v;
	struct item **pp, *prev = NULL, *gone = NULL, *it;

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->closed = true;
	v = m->v;
	pthread_mutex_unlock(&m->lock);
	/* No post can reach @v through @m any more: take its queued ones. */
	pthread_mutex_lock(&v->mu);
	pp = &v->completed;
	while (*pp) {
		it = *pp;
		if (it->kind == ITEM_MSG && it->mbox == m) {
			*pp = it->next;
			if (v->completed_tail == it)
				v->completed_tail = prev;
			it->next = gone;
			gone = it;
		} else {
			prev = it;
			pp = &it->next;
		}
	}
	pthread_mutex_unlock(&v->mu);
	while ((it = gone)) {
		gone = it->next;
		m->msg_free(it->msg);
		item_free(it);
		mbox_unref(m); /* the item's reference */
	}
	mbox_unref(m);         /* the loop side's */
}
