/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One libvirt connection used from the project's event loop.
 *
 * libvirt's API blocks (an RPC to libvirtd, a QEMU monitor round trip, the
 * ~8 s capability probe of a first embedded open), and our loop must never
 * block.  So a struct remus_virt owns three kinds of thread:
 *
 *   - libvirt's event loop (virEventRegisterDefaultImpl +
 *     virEventRunDefaultImpl), one per process, started by the first
 *     remus_virt_open() and left running until the process exits (libvirt
 *     has no way to unregister it).  libvirt calls event callbacks (QMP
 *     events, connection close) there.
 *   - a few workers (opts.workers) that run blocking calls, "work", taken
 *     from one FIFO queue.  The connection is opened by the first work.
 *   - our loop's thread, where every completion ("done") runs: the workers
 *     and libvirt's thread hand results over through a queue and an
 *     eventfd that the loop watches.
 *
 *     loop thread           worker                   loop thread
 *     remus_virt_call() --> work(conn, opaque, &err) --> done(v, rc, err, opaque)
 *                                                    \-> free_fn(opaque)
 *
 *     libvirt event thread  -------------------------> loop thread
 *     remus_virt_mbox_post(m, msg)                     cb(msg, opaque)
 *
 * A module that may go away while its calls are in flight passes an owner
 * token and cancels it when it goes (like remus_qmp_cancel_owner): from
 * then on no done callback of that owner runs.  Work that already runs
 * cannot be stopped, so what work touches lives in @opaque, which the
 * call owns until it ends: free_fn(opaque) runs on the loop exactly once,
 * after done or instead of it, and must not touch the (maybe gone) owner.
 *
 * Calls run in submission order only as far as the FIFO goes: with more
 * than one worker two calls may run at once and finish in any order.  A
 * caller that needs order (the QMP proxy: replies in command order)
 * submits its next call from the previous one's done.
 *
 * Not thread-safe, except where a function says so: struct remus_virt
 * belongs to the thread that runs its loop.  A lost connection (libvirtd
 * restarted) is reported once through opts.closed_cb; calls then fail
 * with libvirt's error, and reconnecting is the owner's business (free,
 * open again).
 *
 * Typical use in the host daemon:
 *
 *     remus_virt_open(loop, "qemu:///system", NULL, on_open, ctx, &v);
 *     job = calloc(1, sizeof(*job)); job->name = strdup("web1");
 *     remus_virt_call_owned(v, ctx, lookup_work, lookup_done, job_free, job);
 *
 *     static int lookup_work(virConnectPtr conn, void *opaque, char **err)
 *     {   // on a worker: may block
 *         struct job *job = opaque;
 *         job->dom = virDomainLookupByName(conn, job->name);
 *         return job->dom ? 0 : -ENOENT;   // *err filled from libvirt
 *     }
 */
#ifndef REMUS_VIRT_VIRT_H
#define REMUS_VIRT_VIRT_H

#include <stddef.h>

#include <libvirt/libvirt.h>

struct remus_loop;
struct remus_virt;
struct remus_virt_mbox;

#define REMUS_VIRT_DEFAULT_WORKERS 4u

/*
 * Blocking work, run on a worker thread with the open connection @conn
 * (borrowed; never closed or freed by work).  Returns 0 or -errno.  On
 * failure it may set *@err to a malloc'd message (taken by the caller);
 * if it leaves *@err NULL the worker uses libvirt's last error on that
 * thread (virGetLastErrorMessage) if there is one, else strerror(-rc).
 * Must not touch the loop or anything of the loop thread except through
 * @opaque, which no one else touches until done runs.
 */
typedef int remus_virt_work_fn(virConnectPtr conn, void *opaque, char **err);

/*
 * Completion, on the loop: @rc is what work returned (or -ECANCELED from
 * remus_virt_free(), or the open's error if the connection never opened),
 * @err NULL on success, else a borrowed message that names what failed
 * ("libvirt qemu:///system: Domain not found: no domain with matching
 * name 'web1'").  May call any remus_virt_* function on @v, remus_virt_free()
 * included.
 */
typedef void remus_virt_done_cb(struct remus_virt *v, int rc, const char *err,
				void *opaque);

/* Releases a call's @opaque, on the loop. */
typedef void remus_virt_free_fn(void *opaque);

/* The connection opened (@rc 0, @err NULL) or failed (@rc < 0, @err
 * borrowed: "libvirt qemu:///embed?root=/x: cannot open: ...").  Once.
 * May call remus_virt_free(). */
typedef void remus_virt_open_cb(struct remus_virt *v, int rc, const char *err,
				void *opaque);

/* libvirt closed the open connection (libvirtd went away, keepalive
 * timeout).  @reason: a borrowed word ("eof", "keepalive", "error",
 * "client").  Once at most.  May call remus_virt_free(). */
typedef void remus_virt_closed_cb(struct remus_virt *v, const char *reason,
				  void *opaque);

struct remus_virt_opts {
	/* Worker threads; 0: REMUS_VIRT_DEFAULT_WORKERS. */
	unsigned workers;
	/* May be NULL.  Its opaque is remus_virt_open()'s @opaque. */
	remus_virt_closed_cb *closed_cb;
};

/*
 * Starts libvirt's event thread (once per process), the workers, and the
 * connection's open on a worker: virConnectOpen(@uri) (borrowed, copied;
 * NULL: libvirt's default).  Returns at once, 0 with *@out (owned:
 * remus_virt_free), after which @open_cb (may be NULL) runs once from the
 * loop; or -errno (no threads, no eventfd, no memory) with nothing started
 * and *@out untouched.  Calls may be submitted at once: they wait for the
 * open and, if it fails, complete with its error.  @loop is borrowed and
 * must outlive @v; @opts is borrowed (NULL: defaults).
 */
int remus_virt_open(struct remus_loop *loop, const char *uri,
		    const struct remus_virt_opts *opts, remus_virt_open_cb *open_cb,
		    void *opaque, struct remus_virt **out);

/*
 * Closes the connection and frees @v.  Calls not started are not run;
 * the done of every call whose owner was not cancelled runs from inside
 * this function with -ECANCELED; free_fn of every call runs.  Blocks
 * until running work returns (a libvirt call in flight) and the workers
 * exit.  Every mailbox must have been closed before.  Safe from inside a
 * done or open/closed callback of @v (the memory goes when the outermost
 * one returns).  NULL is fine.
 */
void remus_virt_free(struct remus_virt *v);

/*
 * Queues @work(conn, @opaque, &err) for a worker, then @done(v, rc, err,
 * @opaque) on the loop, then @free_fn(@opaque).  @work must not be NULL;
 * @done and @free_fn may be NULL.  @owner (borrowed, any address the
 * caller owns; NULL: none) is recorded for remus_virt_cancel_owner().
 * Returns 0, after which @done runs exactly once, later, never from
 * inside this call (unless the owner is cancelled, or @v freed), and
 * free_fn exactly once; or -ENOMEM / -ESHUTDOWN (being freed), with
 * neither callback called and @opaque still the caller's.
 */
int remus_virt_call_owned(struct remus_virt *v, const void *owner,
			  remus_virt_work_fn *work, remus_virt_done_cb *done,
			  remus_virt_free_fn *free_fn, void *opaque);
/* remus_virt_call_owned() without an owner. */
int remus_virt_call(struct remus_virt *v, remus_virt_work_fn *work,
		    remus_virt_done_cb *done, remus_virt_free_fn *free_fn, void *opaque);

/*
 * After this returns no done of a call submitted with @owner runs, ever,
 * also when called from inside one of them (the one running finishes
 * normally).  Calls not started yet are dropped (work never runs);
 * running work finishes on its worker.  free_fn of every such call still
 * runs: from inside this call for those not running, later from the loop
 * for running ones.  Returns how many done callbacks were cancelled.
 * @owner NULL: nothing, returns 0.
 */
size_t remus_virt_cancel_owner(struct remus_virt *v, const void *owner);

/* Calls submitted and not completed (their done not run yet), for tests
 * and status. */
size_t remus_virt_pending(const struct remus_virt *v);
/* The loop given to remus_virt_open() (borrowed). */
struct remus_loop *remus_virt_loop(const struct remus_virt *v);
/* The URI given to remus_virt_open() ("" for the default).  Borrowed;
 * valid until @v is freed. */
const char *remus_virt_uri(const struct remus_virt *v);

/*
 * A mailbox carries messages from another thread (libvirt's event thread:
 * QMP events, domain events) to the loop, in posting order.  Closing it
 * on the loop guarantees that its callback never runs again, while the
 * other thread may keep a reference (libvirt frees an event callback's
 * opaque whenever it likes, through virFreeCallback) and post into the
 * closed mailbox harmlessly.
 *
 * The mailbox is reference counted: remus_virt_mbox_new() gives the loop
 * side one reference, which remus_virt_mbox_close() drops; every other
 * holder takes one with remus_virt_mbox_ref() and drops it with
 * remus_virt_mbox_unref().  The memory goes with the last reference.
 */

/* Called on the loop with @msg (borrowed; freed by @msg_free after the
 * call) and the mailbox's @opaque.  May close the mailbox. */
typedef void remus_virt_mbox_cb(void *msg, void *opaque);

/*
 * Creates a mailbox of @v delivering to @cb(msg, @opaque) on @v's loop;
 * @msg_free (NULL: free) releases each message after delivery or when it
 * is dropped.  Returns 0 with *@out (one reference, the loop side's) or
 * -ENOMEM.  Loop thread only.
 */
int remus_virt_mbox_new(struct remus_virt *v, remus_virt_mbox_cb *cb,
			remus_virt_free_fn *msg_free, void *opaque,
			struct remus_virt_mbox **out);
/*
 * Any thread.  Takes @msg (also on failure, when it is released at once).
 * Returns 0 (delivered later, unless the mailbox is closed first),
 * -EPIPE if the mailbox is closed, or -ENOMEM.
 */
int remus_virt_mbox_post(struct remus_virt_mbox *m, void *msg);
/* Any thread.  Adds a reference; returns @m. */
struct remus_virt_mbox *remus_virt_mbox_ref(struct remus_virt_mbox *m);
/* Any thread.  Drops a reference (void * so that it fits libvirt's
 * virFreeCallback).  NULL is fine. */
void remus_virt_mbox_unref(void *m);
/*
 * Loop thread.  From now on @cb never runs, also when called from inside
 * it; queued messages are released; later posts fail with -EPIPE.  Drops
 * the loop side's reference.  NULL is fine.
 */
void remus_virt_mbox_close(struct remus_virt_mbox *m);

#endif
