/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Output commit: every frame the guest sends during epoch N is held until
 * the standby has acknowledged checkpoint N; inbound traffic is never
 * delayed.  The epoch engine drives one struct remus_netbuffer through
 * hooks in this order (after Xen's checkpoint device ops):
 *
 *   new            once: choose the backend, nothing touches QEMU yet
 *   setup          once, async: start holding output (bucket open)
 *   barrier        each epoch, guest stopped: what the guest sent so far
 *                  belongs to the epoch being checkpointed, later frames
 *                  to the next
 *   commit         when the standby acks an epoch: release its frames and
 *                  everything older
 *   standby_lost / protect   the standby went away / a new session began
 *   teardown       once, async: stop holding, release or drop what is held
 *   free
 *
 * A frame in flight when the barrier is set lands in the next epoch:
 * later, never earlier.
 *
 * Backends:
 *  - qemu (default): per netdev a filter-redirector (queue=rx: frames the
 *    guest's NIC sends towards the netdev) added over QMP at run time, with
 *    two socket chardevs on socketpairs passed by `getfd`: QEMU writes the
 *    guest's frames to outdev, we write released frames to indev.  Works
 *    on a running libvirt domain; nothing on the filesystem.
 *  - plug: a sch_plug qdisc per host tap (netbuffer/plug.h); the kernel
 *    holds the frames, we only insert barriers and releases.
 *
 * All calls belong to the loop's thread.  Callbacks are never called from
 * inside the call that started the operation, and a done callback may
 * free the netbuffer.
 */
#ifndef REMUS_NETBUFFER_NETBUFFER_H
#define REMUS_NETBUFFER_NETBUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct remus_loop;
struct remus_qmp;
struct remus_netbuffer;

enum remus_netbuffer_kind { REMUS_NETBUFFER_QEMU, REMUS_NETBUFFER_PLUG };

/*
 * The netbuffer's lifecycle (netbuffer.c draws it).  Every change goes
 * through one checked setter (common/state.h).  An illegal change aborts
 * a debug build; a release build logs it and, before teardown, releases
 * everything held and goes FAILED (output passes through; the next
 * barrier fails).  remus_netbuffer_state_name() returns the constant's
 * suffix in lower case ("setting_up"), the name `status` prints.
 */
enum remus_netbuffer_state {
	REMUS_NETBUFFER_NEW,          /* remus_netbuffer_new() done */
	REMUS_NETBUFFER_SETTING_UP,   /* setup running */
	REMUS_NETBUFFER_READY,        /* holding (or passing, after standby_lost) */
	REMUS_NETBUFFER_FAILED,       /* setup failed (rolled back) */
	REMUS_NETBUFFER_TEARING_DOWN, /* teardown running */
	REMUS_NETBUFFER_DOWN,         /* teardown done; final */
};
#define REMUS_NETBUFFER_NSTATES (REMUS_NETBUFFER_DOWN + 1)

/* What to do with held output when the standby is lost. */
enum remus_netbuffer_on_lost {
	REMUS_NETBUFFER_LOST_RELEASE, /* release all, pass through until protect */
	REMUS_NETBUFFER_LOST_HOLD,    /* keep holding until a commit or teardown */
};

struct remus_netbuffer_config {
	enum remus_netbuffer_kind kind;
	/* Borrowed, copied by remus_netbuffer_new().
	 * qemu: netdev ids (e.g. libvirt's "hostnet0"); NULL/0 discovers every
	 *       NIC's netdev at setup (qom-list /machine/peripheral and
	 *       /machine/peripheral-anon, qom-get <device> netdev).
	 * plug: host tap names (required). */
	const char *const *devices;
	size_t ndevices;
	/* Bound of one epoch's held bytes (qemu: all NICs together; plug: the
	 * qdisc limit of each tap).  0: 16 MiB.  Frames beyond it are dropped
	 * and counted, never blocking the guest. */
	size_t epoch_limit_bytes;
	enum remus_netbuffer_on_lost on_lost;
};

struct remus_netbuffer_stats { /* cumulative unless noted */
	uint64_t queued_frames, queued_bytes;     /* accepted for holding */
	uint64_t released_frames, released_bytes; /* held, then released */
	uint64_t passthrough_frames, passthrough_bytes; /* not held (standby lost) */
	uint64_t dropped_overflow;   /* over epoch_limit_bytes, or out of memory */
	uint64_t dropped_malformed;  /* bad framing from QEMU */
	uint64_t dropped_teardown;   /* held and dropped by teardown(release=false) */
	uint64_t dropped_io;         /* released but QEMU's indev was gone */
	uint64_t held_frames, held_bytes;   /* now */
	uint64_t held_epochs;               /* now: closed epochs awaiting commit */
	uint64_t max_held_bytes;            /* high-water mark of held_bytes */
	/* Hold time (enqueue to release) of the last REMUS_NBQ_LATENCY_WINDOW
	 * (4096) held frames released; -1 if none yet. */
	double latency_p50_ms, latency_max_ms;
	uint64_t barriers, commits;
};

/* @rc 0 with @msg NULL on success, else -errno and a message (borrowed,
 * valid during the call) naming the device and the fix. */
typedef void remus_netbuffer_done_cb(void *opaque, int rc, const char *msg);

/*
 * Creates a netbuffer; touches neither QEMU nor the network.  @loop
 * borrowed, outlives the netbuffer.  @qmp borrowed, READY, outlives the
 * netbuffer (qemu backend; the plug backend ignores it, NULL fine).  @cfg
 * borrowed, copied.  Returns 0 and *@out (owned: remus_netbuffer_free), or
 * -EINVAL (plug without devices, an empty or unusable device name, qemu
 * without @qmp), -ENOTSUP (plug not built), -ENOMEM; *@out untouched.
 */
int remus_netbuffer_new(struct remus_loop *loop, struct remus_qmp *qmp,
			const struct remus_netbuffer_config *cfg,
			struct remus_netbuffer **out);

/*
 * Starts holding.  qemu: [discovery: qom-list /machine/peripheral and
 * /machine/peripheral-anon, one qom-get per device], then qom-list
 * /objects and query-chardev to find objects with our ids left by a run
 * that died without teardown (removed, with a warning), then per netdev
 * getfd x2, chardev-add x2, object-add filter-redirector (ids
 * remus-nb-<netdev>[-out|-in]).  About 5 ms for one netdev under TCG.  On
 * success every later output frame is held.  On failure everything added is removed
 * again and @msg names the netdev, the QMP command and QEMU's error.
 * @done is called exactly once, from the loop (also if teardown is called
 * meanwhile: then with -ECANCELED).  Call once.
 */
void remus_netbuffer_setup(struct remus_netbuffer *nb, remus_netbuffer_done_cb *done,
			   void *opaque);

/*
 * Epoch barrier, synchronous, with the guest stopped: drains everything
 * readable from QEMU into the open bucket, then closes it labelled @epoch.
 * Returns 0, -ENOMEM, or (plug) the qdisc's -errno, or -EINVAL before
 * setup succeeded.  In pass-through mode only drains and counts.
 */
int remus_netbuffer_barrier(struct remus_netbuffer *nb, uint64_t epoch);

/* Releases, in order, the newest closed bucket labelled @epoch and every
 * older one.  An unknown label is logged and ignored. */
void remus_netbuffer_commit(struct remus_netbuffer *nb, uint64_t epoch);

/* The standby is gone.  on_lost RELEASE: release everything held (closed
 * and open buckets) and pass frames through until protect(); HOLD: keep
 * holding.  Logged loudly either way. */
void remus_netbuffer_standby_lost(struct remus_netbuffer *nb);
/* A (new) protection session started: hold again.  No-op if holding. */
void remus_netbuffer_protect(struct remus_netbuffer *nb);

/*
 * Stops buffering: @release true releases what is held, false drops it
 * (counted in dropped_teardown); then removes every QEMU object, chardev
 * and fd it added (qemu: qom-set status=off, drain, object-del,
 * chardev-remove x2 per netdev).  Afterwards the guest's traffic flows
 * directly.  @done is called once, from the loop, with the first error
 * (cleanup goes on past errors).  Call once, after or during setup.
 */
void remus_netbuffer_teardown(struct remus_netbuffer *nb, bool release,
			      remus_netbuffer_done_cb *done, void *opaque);

/* Frees @nb at once without QMP (after teardown, or when QEMU is gone).
 * Held frames are lost.  On a live QEMU without teardown the filters stay
 * and swallow the guest's output until removed (the next setup does it).
 * Pending done callbacks are not called.  NULL ok. */
void remus_netbuffer_free(struct remus_netbuffer *nb);

void remus_netbuffer_get_stats(const struct remus_netbuffer *nb,
			       struct remus_netbuffer_stats *st);

/* Returns an owned (json_object_put()) JSON object, or NULL if out of memory:
 *   {"kind":"qemu","devices":["hostnet0"],"state":"ready","holding":true,
 *    "on_lost":"release","epoch_limit_bytes":16777216,
 *    "stats":{...every field of struct remus_netbuffer_stats...},
 *    "nics":[{"netdev":"hostnet0","filter":"remus-nb-hostnet0","frames":9,
 *             "malformed":0,"vnet_hdr_len":12,"unbuffered":false}]}
 * ("nics" only for qemu; vnet_hdr_len of the last frame, -1 before any;
 * "unbuffered": QEMU closed our outdev, that NIC's output is not held). */
struct json_object *remus_netbuffer_status_json(const struct remus_netbuffer *nb);

enum remus_netbuffer_state remus_netbuffer_get_state(const struct remus_netbuffer *nb);
/* "new", "setting_up", ... (static storage; "?" out of range). */
const char *remus_netbuffer_state_name(enum remus_netbuffer_state s);
/* Whether the netbuffer may go from @from to @to.  Pure. */
bool remus_netbuffer_state_transition_ok(enum remus_netbuffer_state from,
					 enum remus_netbuffer_state to);

/* "qemu" or "plug" (static storage; "?" for anything else). */
const char *remus_netbuffer_kind_name(enum remus_netbuffer_kind k);
/* Parses "qemu" or "plug".  Returns 0 or -EINVAL. */
int remus_netbuffer_kind_parse(const char *s, enum remus_netbuffer_kind *out);

#endif
