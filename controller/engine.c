// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The epoch engine, primary role (see engine.h for the life of an epoch).
 *
 * Three things run at once on the loop and meet here:
 *
 *   QMP       query-migrate (is QEMU's last migration over?) / getfd /
 *             migrate / query-migrate (converged?) / stop / query-migrate
 *             (completed?) / cont, one chain per epoch, written below in
 *             the order the steps run; migrate_cancel when the pause
 *             budget runs out or the standby is lost;
 *   channel   our end of the migration socketpair: bytes are framed by the
 *             migstream parser, rewritten for the standby and queued on
 *             the link as they arrive;
 *   link      TCP to the standby remusd (repl/repl.h frames): HELLO, epoch
 *             chunks, COMMIT_REQ out; HELLO_ACK, COMMIT_ACK, HEARTBEAT in.
 *             repl/link.h runs the session (heartbeats, liveness, reading,
 *             the output backlog, goodbye); this file is what the frames
 *             mean to the primary.
 *
 * Backpressure: when the link's output buffer passes link_high_water we
 * stop reading the channel, QEMU's socket send buffer fills and its
 * migration thread waits; reading resumes below half of it.
 *
 * One link session = one standby stream.  A session starts with a "first"
 * epoch (header, configuration, START(ram)) at epoch number 0 and the
 * standby's page set unknown; any failure ends the session, and the next
 * one starts from scratch.  Because the link is FIFO and a failed epoch
 * ends the session, the pages sent for epoch N are what the standby holds
 * by the time it applies N+1, so the dedup set is updated as pages are
 * sent, not when N is acknowledged (controller/dedup.h).
 *
 * Every QMP command is submitted with the engine as its owner;
 * remus_engine_free() cancels the owner, so no reply reaches a freed
 * engine, and so does reaching FAILED or STOPPED: the chain the replies
 * belonged to has been torn down.
 *
 * The state changes in set_state() only, checked against the table of
 * engine.h (common/state.h).
 */
#include "controller/engine.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"
#include "common/state.h"
#include "controller/backoff.h"
#include "controller/converge.h"
#include "controller/dedup.h"
#include "controller/v2stream.h"
#include "dirty/dirty.h"
#include "migstream/migstream.h"
#include "qmp/qmp.h"
#include "repl/link.h"
#include "repl/repl.h"

#define LOG "engine"
#define MIG_FD_NAME "remus-mig"
#define READ_CHUNK (1u << 20)
#define MAX_INFLIGHT 64
/* query-migrate while waiting for convergence: often enough that the stop
 * comes soon after the gate opens, rarely enough to cost nothing. */
#define GATE_POLL_MS 25u
/* Once the first pass is done, how long the gate waits for the rest to
 * fit the budget before it tries anyway (the budget then bounds the
 * pause): a guest that dirties memory faster than the channel carries
 * it would otherwise never be checkpointed, and its output never
 * released. */
#define GATE_MAX_WAIT_MS 10000u
/* query-migrate while a previous migration is ending. */
#define IDLE_POLL_MS 20u
/* Progress of an initial sync, in the log and status. */
#define PROGRESS_MS 1000u
/* After migrate_cancel, how long the guest may stay stopped waiting for
 * QEMU to show the migration ended (measured: 6 ms); past it the guest
 * is resumed anyway. */
#define CANCEL_GRACE_MS 1000u
/* Engine v2: while the guest runs, the tracker is collected this often
 * (a drain), so the collect inside the pause only has the pages written
 * since the last drain to write back.  Measured on the 2 GiB guest while
 * it fills its RAM (bench/scale, ~10 us per page written back): one
 * 100 ms epoch wrote 26687 pages and its collect alone took 277 ms of
 * the 300 ms budget; a 9.4 s full epoch of the same fill left 447k pages
 * whose collect at its checkpoint blocked the loop for 4.1 s, past the
 * standby's heartbeat deadline.  A drain blocks the loop for the pages of
 * about DRAIN_MS only (on_drain_timer). */
#define DRAIN_MS 50u
/* ... but a drain only pays for pages the guest does not write again
 * before the checkpoint (a fill writes each page once).  A guest that
 * rewrites the same pages pays a write fault per page per drain, and the
 * loop a writeback, for nothing: bench/engine's cpumem (32 MiB rewritten
 * at random) kept 0.07 of its speed under v2 at 50 ms epochs with 50 ms
 * drains, 0.25 at 100 ms.  drain_adapt halves the rate when most drained
 * pages were written again, down to one drain per DRAIN_MAX_MS (which
 * bounds what a full epoch leaves to one drain), and goes back to DRAIN_MS
 * when they were not, or when the collect in the pause took over a third
 * of the pause budget. */
#define DRAIN_MAX_MS 800u

/* MIG_RP_MSG_SHUT: be16 type 1, be16 length 4, be32 0 (no error). */
static const uint8_t rp_shut[8] = { 0, 1, 0, 4, 0, 0, 0, 0 };

struct inflight {
	uint64_t t_req_ns;
	struct remus_epoch_metrics m;
};

/* The numbers of one query-migrate answer the engine uses. */
struct mig_info {
	bool has_ram;           /* "ram" present (not before the first pass starts) */
	uint64_t dirty_syncs;   /* ram.dirty-sync-count: 1 in the first pass */
	uint64_t remaining;     /* ram.remaining, bytes */
	uint64_t total;         /* ram.total, bytes */
	uint64_t transferred;   /* ram.transferred, bytes */
};

struct remus_engine {
	struct remus_loop *loop;
	struct remus_qmp *qmp;
	struct remus_engine_config cfg;
	char *host;
	struct remus_engine_hooks hooks;
	enum remus_engine_state state;
	bool stopping; /* remus_engine_stop() asked */
	char reason[256];

	char vm_name[REMUS_REPL_NAME_MAX];
	uint8_t vm_uuid[16];
	/* RAM layout of the last epoch, for the next HELLO */
	struct remus_migstream_block blocks[REMUS_REPL_MAX_BLOCKS];
	uint32_t nblocks;
	uint32_t page_size;

	/* link */
	struct remus_link link;
	bool hello_acked;
	bool gated;       /* HELLO_ACK in, first epoch waits for session_ready */
	bool probing;     /* CLOSE waits for QEMU to show it lives (goodbye_if_alive) */
	struct remus_repl_tx tx;
	struct remus_timer reconnect_timer;
	uint64_t sessions;

	/* the epoch being run */
	uint64_t epoch;
	uint64_t checkpoints;   /* over all sessions */
	bool first;
	bool have_sid;
	uint32_t standby_sid;
	int mig_fd;
	bool mig_reading;       /* READ interest set on mig_fd */
	bool mig_eof;
	bool stop_acked;        /* QEMU answered our stop */
	bool polling;           /* query-migrate chain of the checkpoint running */
	struct remus_migstream *ps;
	struct remus_migstream_rewriter rw;
	struct remus_dedup *dedup;
	struct remus_timer epoch_timer, poll_timer;
	uint64_t t_stop_ns;
	struct remus_epoch_metrics cur;

	/* QEMU's migration as the last query-migrate showed it */
	char mig_status[24];    /* "" before any answer */
	struct mig_info mi;
	uint64_t mig_gen;       /* +1 per migrate we start */
	/* The last migration has ended (a terminal status was seen after our
	 * last migrate or migrate_cancel): the next may start. */
	bool qemu_idle;
	bool idle_query;        /* a query-migrate of the wait for that in flight */
	bool idle_cancelled;    /* we sent migrate_cancel during that wait */
	uint64_t t_idle_ns, t_idle_warn_ns;
	struct remus_timer idle_timer;

	/* the convergence gate of the running epoch */
	struct remus_converge conv;
	uint64_t t_epoch_ns;    /* the epoch's migrate answered */
	uint64_t t_interval_ns; /* its interval ended; 0 before */
	uint64_t t_pass_ns;     /* the gate first saw the first pass done; 0 */
	bool gate_query;        /* a gate or progress query-migrate in flight */
	uint64_t gate_gen;      /* mig_gen when it was sent */
	unsigned gate_polls;    /* gate polls of this epoch */
	double predicted_ms;    /* at the last gate poll */
	struct remus_timer gate_timer, progress_timer;
	uint64_t progress_bytes, progress_done, t_progress_ns;
	double chan_bps, eta_s;  /* at the last progress report */

	/* the pause budget of the checkpoint */
	struct remus_timer budget_timer;
	bool abandoning;        /* budget over: migrate_cancel sent */
	bool abandon_seen;      /* QEMU's status then was logged */
	bool qemu_done;         /* the checkpoint's migration reached a terminal status */
	uint64_t t_cancel_ns;
	uint64_t stop_bytes;    /* local_bytes when the stop was sent */
	char drop_reason[320];

	/* sessions and retries */
	struct remus_backoff backoff;
	bool session_committed; /* a COMMIT_ACK came in this session */
	uint64_t session_first_epoch;
	uint64_t t_sync_ns;     /* this session's first migrate answered; 0 */
	double last_sync_ms;    /* how long the last initial sync took; -1 */
	char last_failure[256];
	char last_failure_at[40];
	uint64_t retry_at_ms;   /* when reconnect_timer fires */
	uint64_t stretched, abandoned;
	double last_epoch_ms, max_pause_ms;

	/* COMMIT_REQs waiting for their ack, oldest first */
	struct inflight inflight[MAX_INFLIGHT];
	unsigned ninflight;
	uint64_t last_acked;
	bool any_acked;
	/* The ack of the epoch being resumed came before cont's answer: its
	 * report waits for the pause to be known. */
	bool ack_before_cont;
	struct remus_epoch_metrics acked;
	double last_pause_ms, last_commit_ms;

	/* engine v2 (engine.h); cfg.dirty is the tracker */
	bool v2;                /* v2 epochs may run (false: v1 only, or fell back) */
	bool engine_decided;    /* v1 or v2 chosen (false: QEMU's RAM still checked) */
	char engine_why[768];   /* why v1 or v2 */
	char ram_backend[128];  /* memory backend id = RAM block name */
	char v2_qom_path[160];  /* /objects/ID */
	struct remus_qmp_ram_backend ramfs_rb; /* ramfs_find's chain (qmp.h) */
	/* cfg.ramfs_socket (copied), the RAM file found from QMP and whether
	 * cfg.dirty is the tracker opened on it here (then owned) */
	char ramfs_socket[108];
	char ram_path[400];
	bool own_dirty;
	bool cap_known;         /* x-ignore-shared's setting in QEMU is known... */
	bool cap_shared;        /* ... and is this */
	bool caps_query;        /* migrate-set-capabilities of it in flight, */
	bool cap_pending;       /* ... setting this */
	/* QEMU's machine property suppress-vmdesc follows x-ignore-shared
	 * (qom-set after it): a v2 checkpoint's migration then lacks the
	 * ~100 KB vmdescription JSON it would carry every epoch (nobody
	 * reads it: the standby gets an empty one).  False where QEMU
	 * refused the qom-set: the streams keep their vmdescription. */
	bool vmdesc_off;
	bool v2_ready;          /* this session's stream holds a checkpoint at
				 * which the tracker was collected: v2 may follow */
	bool v2_epoch;          /* the running epoch is a v2 one */
	bool v2_failed;         /* its checkpoint already failed (one drop) */
	struct remus_migstream *ps_qemu; /* v2: QEMU's x-ignore-shared stream */
	struct remus_v2stream v2s;
	struct remus_buf v2buf; /* composed bytes on their way to e->ps */
	struct remus_dirty_set dset;  /* pages written since the last checkpoint's
				       * collect: drains, then the next collect */
	struct remus_dirty_set dnext; /* one collect, before it joins dset */
	struct remus_timer drain_timer;
	unsigned drain_every_ms;      /* DRAIN_MS .. DRAIN_MAX_MS (drain_adapt) */
	uint64_t v1_epochs, v2_epochs;
};

static void start_epoch(struct remus_engine *e);
static void set_shared_cap(struct remus_engine *e, bool on);
static void begin_v2_epoch(struct remus_engine *e);
static void link_connect(struct remus_engine *e);
static void schedule_reconnect(struct remus_engine *e);
/* What standby_lost() tells the standby. */
enum bye {
	BYE_NONE,     /* nothing: the link is unusable, the standby decides */
	BYE_NOW,      /* CLOSE at once (the link itself failed: silence, a bad frame) */
	BYE_IF_ALIVE, /* CLOSE once QEMU has shown it lives (goodbye_if_alive) */
};
static void standby_lost(struct remus_engine *e, enum bye bye, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void on_mig_event(struct remus_loop *loop, int fd, unsigned ev, void *opaque);

/* ---- the state machine (engine.h draws it) -------------------------- */

static const char *const state_names[REMUS_ENGINE_NSTATES] = {
	[REMUS_ENGINE_STARTING] = "starting",
	[REMUS_ENGINE_SYNCING] = "syncing",
	[REMUS_ENGINE_PROTECTED] = "protected",
	[REMUS_ENGINE_CHECKPOINT] = "checkpoint",
	[REMUS_ENGINE_UNPROTECTED] = "unprotected",
	[REMUS_ENGINE_FAILED] = "failed",
	[REMUS_ENGINE_STOPPED] = "stopped",
};

#define TO(s) REMUS_STATE_BIT(REMUS_ENGINE_##s)
#define TO_END (TO(FAILED) | TO(STOPPED))
static const uint32_t state_allowed[REMUS_ENGINE_NSTATES] = {
	[REMUS_ENGINE_STARTING] = TO(SYNCING) | TO(UNPROTECTED) | TO_END,
	/* a session is PROTECTED from its first acknowledged commit on */
	[REMUS_ENGINE_SYNCING] = TO(CHECKPOINT) | TO(PROTECTED) | TO(UNPROTECTED) | TO_END,
	[REMUS_ENGINE_PROTECTED] = TO(CHECKPOINT) | TO(UNPROTECTED) | TO_END,
	[REMUS_ENGINE_CHECKPOINT] = TO(PROTECTED) | TO(SYNCING) | TO(UNPROTECTED) | TO_END,
	/* start_epoch() without a session: stays UNPROTECTED, reconnects */
	[REMUS_ENGINE_UNPROTECTED] = TO(SYNCING) | TO(UNPROTECTED) | TO_END,
	[REMUS_ENGINE_FAILED] = 0,
	[REMUS_ENGINE_STOPPED] = 0,
};
#undef TO
#undef TO_END

static const struct remus_state_machine machine = {
	.component = LOG,
	.names = state_names,
	.allowed = state_allowed,
	.nstates = REMUS_ENGINE_NSTATES,
};

/* calloc() starts an engine in STARTING. */
_Static_assert(REMUS_ENGINE_STARTING == 0, "a zeroed engine must be STARTING");

const char *remus_engine_state_name(enum remus_engine_state s)
{
	return remus_state_name(&machine, s);
}

bool remus_engine_state_transition_ok(enum remus_engine_state from,
				      enum remus_engine_state to)
{
	return remus_state_allowed(&machine, from, to);
}

static bool state_final(enum remus_engine_state s)
{
	return s == REMUS_ENGINE_FAILED || s == REMUS_ENGINE_STOPPED;
}

static void stop_on_internal_error(struct remus_engine *e, const char *msg);

/* The one place the state changes.  Returns 0, or -EPROTO after an
 * illegal change in a release build (a debug build aborts): protection
 * has then been stopped, and the caller returns without going on with
 * the step it was in. */
static int set_state(struct remus_engine *e, enum remus_engine_state to, const char *why)
{
	enum remus_engine_state from = e->state;
	char msg[256];

	if (remus_state_change(&machine, from, to, why) == 0) {
		e->state = to;
		return 0;
	}
	if (state_final(from))
		return -EPROTO; /* protection has ended already */
	snprintf(msg, sizeof(msg), "internal error: illegal state change %s -> %s (%s)",
		 remus_engine_state_name(from), remus_engine_state_name(to), why);
	stop_on_internal_error(e, msg);
	return -EPROTO;
}

static double ms_since(uint64_t t_ns)
{
	return (double)(remus_now_ns() - t_ns) / 1e6;
}

/* An epoch's migration streams with the guest running. */
static bool epoch_running(const struct remus_engine *e)
{
	return e->state == REMUS_ENGINE_PROTECTED || e->state == REMUS_ENGINE_SYNCING;
}

/* ---- QEMU's migration status ------------------------------------------ */

static uint64_t json_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return (uint64_t)json_object_get_int64(v);
}

/* Reads a query-migrate answer into @mi; returns its status ("none" when
 * QEMU has not migrated yet: the answer is then {}), borrowed from @ret. */
static const char *parse_migration(struct json_object *ret, struct mig_info *mi)
{
	struct json_object *st, *ram;

	memset(mi, 0, sizeof(*mi));
	if (json_object_object_get_ex(ret, "ram", &ram)) {
		mi->has_ram = true;
		mi->dirty_syncs = json_u64(ram, "dirty-sync-count");
		mi->remaining = json_u64(ram, "remaining");
		mi->total = json_u64(ram, "total");
		mi->transferred = json_u64(ram, "transferred");
	}
	if (!json_object_object_get_ex(ret, "status", &st))
		return "none";
	return json_object_get_string(st);
}

/* A status after which QEMU starts a new migration: anything else
 * (setup, active, device, cancelling, ...) makes `migrate` fail, which
 * is where the "Invalid argument" sessions of issue 14 came from. */
static bool status_terminal(const char *s)
{
	return strcmp(s, "none") == 0 || strcmp(s, "completed") == 0 ||
	       strcmp(s, "cancelled") == 0 || strcmp(s, "failed") == 0;
}

static void note_status(struct remus_engine *e, const char *status)
{
	snprintf(e->mig_status, sizeof(e->mig_status), "%s", status);
	if (status_terminal(status))
		e->qemu_idle = true;
}

/* ---- QMP ------------------------------------------------------------- */

static void teardown(struct remus_engine *e);

/* Submits @cmd (takes @args); @fn runs with the reply (opaque: @e) unless
 * the engine was freed meanwhile.  Returns 0, or -errno with @fn never
 * called. */
static int engine_qmp(struct remus_engine *e, const char *cmd, struct json_object *args,
		      int fd, remus_qmp_reply_cb *fn)
{
	return remus_qmp_execute_owned(e->qmp, e, cmd, args, fd, 0, fn, e);
}

static void finish(struct remus_engine *e, enum remus_engine_state st, int rc,
		   const char *reason);

/* A QMP step failed: the primary QEMU is unusable (or gone). */
static void qmp_failed(struct remus_engine *e, const char *step, int rc, const char *err)
{
	char msg[640]; /* a step name and QEMU's error of up to 511 bytes */

	snprintf(msg, sizeof(msg), "%s failed: %s", step, err ? err : strerror(-rc));
	finish(e, REMUS_ENGINE_FAILED, rc, msg);
}

static void submit_or_fail(struct remus_engine *e, const char *cmd, struct json_object *args,
			   int fd, remus_qmp_reply_cb *fn)
{
	int rc = engine_qmp(e, cmd, args, fd, fn);

	if (rc < 0)
		qmp_failed(e, cmd, rc, remus_qmp_last_error(e->qmp));
}

/* ---- the migration channel ------------------------------------------- */

static void mig_close(struct remus_engine *e)
{
	if (e->mig_fd >= 0) {
		remus_loop_del_fd(e->loop, e->mig_fd);
		close(e->mig_fd);
		e->mig_fd = -1;
	}
	e->mig_reading = false;
	remus_migstream_free(e->ps);
	e->ps = NULL;
	remus_migstream_free(e->ps_qemu);
	e->ps_qemu = NULL;
	remus_buf_reset(&e->v2buf);
	e->v2_epoch = false;
	remus_migstream_rewriter_release(&e->rw);
	remus_timer_disarm(&e->epoch_timer);
	remus_timer_disarm(&e->poll_timer);
	remus_timer_disarm(&e->gate_timer);
	remus_timer_disarm(&e->progress_timer);
	remus_timer_disarm(&e->budget_timer);
}

/*
 * The channel QEMU migrates into, for v1 and v2 epochs alike: a socketpair
 * whose end we read on the loop (e->mig_fd) and whose other end is passed
 * to QEMU as MIG_FD_NAME with getfd, answered to @on_fd.  Our copy of
 * QEMU's end is closed on every path.  On failure e->mig_fd may still be
 * open: the caller's mig_close() releases it.
 */
static int mig_open_channel(struct remus_engine *e, remus_qmp_reply_cb *on_fd)
{
	struct json_object *args;
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	e->mig_fd = sv[1];
	remus_fd_set_nonblock(e->mig_fd, true);
	rc = remus_loop_add_fd(e->loop, e->mig_fd, REMUS_EV_READ, on_mig_event, e);
	if (rc < 0) {
		close(sv[0]);
		close(e->mig_fd);
		e->mig_fd = -1;
		return rc;
	}
	e->mig_reading = true;
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string(MIG_FD_NAME));
	rc = engine_qmp(e, "getfd", args, sv[0], on_fd);
	close(sv[0]);
	return rc;
}

static void mig_set_reading(struct remus_engine *e, bool on)
{
	if (e->mig_fd < 0 || e->mig_reading == on)
		return;
	remus_loop_mod_fd(e->loop, e->mig_fd, on ? REMUS_EV_READ : 0);
	e->mig_reading = on;
}

/* ---- the link -------------------------------------------------------- */

static void link_close(struct remus_engine *e)
{
	remus_link_close(&e->link);
	e->hello_acked = e->gated = false;
	e->ninflight = 0;
}

/* A session runs: the standby accepted us and we are not saying goodbye. */
static bool session_up(const struct remus_engine *e)
{
	return remus_link_is_open(&e->link) && e->hello_acked &&
	       !remus_link_is_closing(&e->link) && !e->probing;
}

/*
 * Ends the session from our side: CLOSE(@reason) goes after the frames
 * already queued (the queue holds whole frames only) and the link closes
 * once that has drained, or after 2 s (on_link_closed).  A standby that
 * reads CLOSE ends the session without taking over; one that only sees
 * the connection drop must assume we died, and takes over.
 */
static void link_goodbye(struct remus_engine *e, const char *reason)
{
	remus_link_goodbye(&e->link, reason);
	if (!remus_link_is_open(&e->link))
		link_close(e); /* not connected: closed at once */
}

/* Moves what the rewriter produced onto the link (once accepted). */
static int drain_rewriter(struct remus_engine *e)
{
	size_t n = remus_buf_len(&e->rw.out);
	int rc;

	if (!n || !session_up(e))
		return 0;
	rc = remus_repl_tx_data(&e->tx, remus_link_out(&e->link), remus_buf_data(&e->rw.out), n);
	if (rc < 0)
		return rc;
	e->cur.sent_bytes += n;
	remus_buf_reset(&e->rw.out);
	remus_link_send(&e->link);
	/* In a checkpoint the guest is stopped: the tail of the epoch (what
	 * the gate let fit half the budget) is buffered rather than made to
	 * wait for the link. */
	if (remus_link_backlog(&e->link) > e->cfg.link_high_water &&
	    e->state != REMUS_ENGINE_CHECKPOINT)
		mig_set_reading(e, false);
	return 0;
}

/* HELLO goes out as soon as TCP connects, before any epoch: the answer
 * decides whether the first epoch starts a stream or continues one.  The
 * RAM layout is that of the last epoch seen (none before the first). */
static int send_hello(struct remus_engine *e)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_HELLO };
	struct remus_repl_hello *h = &m.u.hello;
	uint32_t i;
	int rc;

	h->version = REMUS_REPL_VERSION;
	h->vm_name.p = e->vm_name;
	h->vm_name.len = strlen(e->vm_name);
	memcpy(h->vm_uuid, e->vm_uuid, 16);
	h->page_size = e->page_size ? e->page_size : 4096;
	h->nblocks = (uint16_t)e->nblocks;
	for (i = 0; i < e->nblocks; i++) {
		h->blocks[i].id.p = e->blocks[i].name;
		h->blocks[i].id.len = strlen(e->blocks[i].name);
		h->blocks[i].length = e->blocks[i].length;
	}
	rc = remus_repl_encode(remus_link_out(&e->link), &m);
	if (rc < 0)
		return rc;
	remus_info(LOG, "standby %s:%u: HELLO sent (vm '%s', %u RAM blocks known)",
		   e->host, e->cfg.standby_port, e->vm_name, h->nblocks);
	remus_link_send(&e->link);
	return 0;
}

static void on_commit_ack(struct remus_engine *e, uint64_t epoch)
{
	struct inflight f;

	if (e->ninflight == 0 || e->inflight[0].m.epoch != epoch) {
		standby_lost(e, BYE_IF_ALIVE, "standby acknowledged epoch %llu, which was not the "
			     "oldest pending one", (unsigned long long)epoch);
		return;
	}
	f = e->inflight[0];
	memmove(e->inflight, e->inflight + 1, --e->ninflight * sizeof(e->inflight[0]));
	f.m.commit_ms = ms_since(f.t_req_ns);
	e->last_commit_ms = f.m.commit_ms;
	e->last_acked = epoch;
	e->any_acked = true;
	remus_dedup_commit(e->dedup, epoch);
	remus_debug(LOG, "epoch %llu committed by the standby after %.1f ms",
		    (unsigned long long)epoch, f.m.commit_ms);
	if (!e->session_committed) {
		/* The first commit of the session: the standby can take over
		 * from here on, and the standby works, so retries start again
		 * from the base delay. */
		e->session_committed = true;
		remus_backoff_success(&e->backoff);
		e->last_sync_ms = e->t_sync_ns ? ms_since(e->t_sync_ns) : -1;
		remus_info(LOG, "epoch %llu committed by standby %s:%u: the VM is PROTECTED "
			   "(initial sync and first commit took %.1f s)", (unsigned long long)epoch,
			   e->host, e->cfg.standby_port, e->last_sync_ms / 1000.0);
		if (e->state == REMUS_ENGINE_SYNCING &&
		    set_state(e, REMUS_ENGINE_PROTECTED, "first commit of the session") < 0)
			return;
	}
	if (e->hooks.commit)
		e->hooks.commit(e->hooks.opaque, epoch);
	if (e->state == REMUS_ENGINE_CHECKPOINT && epoch == e->epoch) {
		e->acked = f.m;
		e->ack_before_cont = true;
		return;
	}
	if (e->hooks.epoch_done)
		e->hooks.epoch_done(e->hooks.opaque, &f.m);
}

static void link_handle(struct remus_engine *e, const struct remus_repl_msg *m)
{
	switch (m->type) {
	case REMUS_REPL_HELLO_ACK:
		if (e->hello_acked) {
			standby_lost(e, BYE_IF_ALIVE, "standby %s:%u sent a second HELLO_ACK", e->host,
				     e->cfg.standby_port);
			break;
		}
		e->hello_acked = true;
		e->session_committed = false;
		/* A session's first epoch is a full (v1) one. */
		e->v2_ready = false;
		e->t_sync_ns = 0;
		/* A new session knows nothing of what the standby holds. */
		remus_dedup_reset(e->dedup);
		e->first = !(m->u.ack.flags & REMUS_REPL_ACK_RESUME);
		e->epoch = e->first ? 0 : m->u.ack.next_epoch;
		e->session_first_epoch = e->epoch;
		e->standby_sid = m->u.ack.ram_sid;
		e->have_sid = !e->first;
		remus_info(LOG, "standby %s:%u accepted the handshake (protocol %u): %s",
			   e->host, e->cfg.standby_port, m->u.ack.version,
			   e->first ? "new stream from epoch 0" : "resuming its stream");
		if (!e->first)
			remus_info(LOG, "resuming at epoch %llu with a full epoch",
				   (unsigned long long)e->epoch);
		if (remus_repl_tx_session(&e->tx, e->epoch) < 0) {
			standby_lost(e, BYE_IF_ALIVE, "out of memory starting a session");
			break;
		}
		if (e->hooks.session_start) {
			int rc = e->hooks.session_start(e->hooks.opaque, e->epoch);

			if (rc == -EINPROGRESS) {
				e->gated = true;
				break;
			}
			if (rc < 0) {
				standby_lost(e, BYE_IF_ALIVE, "session with standby %s:%u given up: %s",
					     e->host, e->cfg.standby_port, strerror(-rc));
				break;
			}
		}
		if (e->state == REMUS_ENGINE_UNPROTECTED || e->state == REMUS_ENGINE_STARTING)
			start_epoch(e);
		break;
	case REMUS_REPL_DISK_HASHES:
	case REMUS_REPL_DISK_HASHES_END:
		if (e->hello_acked || !e->hooks.link_msg) {
			standby_lost(e, BYE_IF_ALIVE, "standby %s:%u sent %s %s", e->host,
				     e->cfg.standby_port, remus_repl_type_name(m->type),
				     e->hello_acked ? "after HELLO_ACK" : "but this VM has no disks");
			break;
		}
		if (e->hooks.link_msg(e->hooks.opaque, m) < 0)
			standby_lost(e, BYE_IF_ALIVE, "standby %s:%u: %s refused (see above)", e->host,
				     e->cfg.standby_port, remus_repl_type_name(m->type));
		break;
	case REMUS_REPL_HELLO_REJECT:
		standby_lost(e, BYE_NONE, "standby %s:%u refused the handshake: %.*s", e->host,
			     e->cfg.standby_port, (int)m->u.reason.len, m->u.reason.p);
		break;
	case REMUS_REPL_COMMIT_ACK:
		on_commit_ack(e, m->seq);
		break;
	case REMUS_REPL_HEARTBEAT:
		break;
	case REMUS_REPL_CLOSE:
		standby_lost(e, BYE_NONE, "standby %s:%u closed the link: %.*s", e->host,
			     e->cfg.standby_port, (int)m->u.reason.len, m->u.reason.p);
		break;
	default:
		standby_lost(e, BYE_IF_ALIVE, "standby %s:%u sent an unexpected %s", e->host,
			     e->cfg.standby_port, remus_repl_type_name(m->type));
		break;
	}
}

/* ---- the link's callbacks (repl/link.h) ------------------------------ */

static void on_link_msg(void *opaque, const struct remus_repl_msg *m)
{
	link_handle(opaque, m);
}

static void on_link_connected(void *opaque)
{
	struct remus_engine *e = opaque;

	remus_info(LOG, "connected to standby %s:%u", e->host, e->cfg.standby_port);
	if (send_hello(e) < 0)
		standby_lost(e, BYE_NONE, "cannot encode HELLO for standby %s:%u", e->host,
			     e->cfg.standby_port);
}

/* The link took output: below half the high-water mark QEMU may stream
 * again. */
static void on_link_writable(void *opaque)
{
	struct remus_engine *e = opaque;

	if (!e->mig_reading && remus_link_backlog(&e->link) < e->cfg.link_high_water / 2 &&
	    e->mig_fd >= 0 && !e->mig_eof)
		mig_set_reading(e, true);
}

/* A bad frame or silence: the standby may still listen, so tell it we go
 * (it must not take over); the connection itself failed: just close. */
static void on_link_lost(void *opaque, enum remus_link_loss why, const char *reason)
{
	bool may_listen = why == REMUS_LINK_BAD_FRAME || why == REMUS_LINK_SILENT;

	/* The link closes itself after this call unless we say goodbye in
	 * it; a link fault is no sign of QEMU's death, so no probe. */
	standby_lost(opaque, may_listen ? BYE_NOW : BYE_NONE, "%s", reason);
}

/* Our goodbye is over: the next session may start. */
static void on_link_closed(void *opaque)
{
	struct remus_engine *e = opaque;

	link_close(e);
	schedule_reconnect(e);
}

static const struct remus_link_cbs link_cbs = {
	.msg = on_link_msg,
	.lost = on_link_lost,
	.connected = on_link_connected,
	.writable = on_link_writable,
	.closed = on_link_closed,
};

static void on_reconnect(struct remus_loop *loop, void *opaque)
{
	struct remus_engine *e = opaque;

	if (remus_link_is_open(&e->link))
		return; /* still saying goodbye: reconnects when closed */
	link_connect(e);
}

/* The next try waits the back-off's delay: --reconnect after one failure,
 * doubled per further failed session in a row (controller/backoff.h). */
static void schedule_reconnect(struct remus_engine *e)
{
	unsigned delay = remus_backoff_delay(&e->backoff);

	if (remus_timer_armed(&e->reconnect_timer) || e->stopping ||
	    e->state == REMUS_ENGINE_FAILED || e->state == REMUS_ENGINE_STOPPED)
		return;
	if (e->backoff.failures > 1)
		remus_info(LOG, "standby %s:%u: next try in %u ms (%u failed sessions in a row)",
			   e->host, e->cfg.standby_port, delay, e->backoff.failures);
	e->retry_at_ms = remus_now_ms() + delay;
	remus_timer_arm(&e->reconnect_timer, delay);
}

/* One more failed session (or connection attempt): @reason (borrowed) is
 * kept for status with the time it happened. */
static void count_failure(struct remus_engine *e, const char *reason)
{
	struct timespec ts;
	struct tm tm;

	remus_backoff_fail(&e->backoff);
	snprintf(e->last_failure, sizeof(e->last_failure), "%s", reason);
	clock_gettime(CLOCK_REALTIME, &ts);
	if (gmtime_r(&ts.tv_sec, &tm))
		strftime(e->last_failure_at, sizeof(e->last_failure_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void link_connect(struct remus_engine *e)
{
	char peer[300];
	int rc;

	/* getaddrinfo may block on DNS for a host name; remusctl resolves
	 * names before starting the engine, tests use addresses. */
	/* Only ever called once v1 or v2 is chosen (v2_check, v2_decided). */
	e->engine_decided = true;
	snprintf(peer, sizeof(peer), "standby %s:%u", e->host, e->cfg.standby_port);
	rc = remus_link_connect(&e->link, e->host, e->cfg.standby_port, peer);
	if (rc < 0) {
		char why[320];

		snprintf(why, sizeof(why), "cannot connect to standby %s:%u: %s", e->host,
			 e->cfg.standby_port, strerror(-rc));
		count_failure(e, why);
		remus_warn(LOG, "%s; retrying in %u ms", why, remus_backoff_delay(&e->backoff));
		schedule_reconnect(e);
		return;
	}
	e->sessions++;
}

/* ---- losing the standby ---------------------------------------------- */

static void on_cancelled(struct remus_qmp *q, int rc, struct json_object *ret,
		          const char *err, void *opaque)
{
	if (rc < 0)
		remus_warn(LOG, "migrate_cancel: %s", err);
}

/* Cancels QEMU's migration; the next one starts only once QEMU shows it
 * ended (start_epoch waits for that). */
static void cancel_migration(struct remus_engine *e)
{
	e->qemu_idle = false;
	engine_qmp(e, "migrate_cancel", NULL, -1, on_cancelled);
}

static void on_alive(struct remus_qmp *q, int rc, struct json_object *ret, const char *err,
		     void *opaque)
{
	struct remus_engine *e = opaque;

	e->probing = false;
	if (rc < 0) {
		/* finish() closes the link without CLOSE: the standby takes
		 * over, from the last checkpoint it committed */
		qmp_failed(e, "query-status (is QEMU alive?)", rc, err);
		return;
	}
	if (remus_link_is_open(&e->link) && !remus_link_is_closing(&e->link))
		link_goodbye(e, e->reason);
	else
		schedule_reconnect(e); /* the link failed while we asked */
	if (e->hooks.standby_lost)
		e->hooks.standby_lost(e->hooks.opaque, e->reason);
}

/*
 * CLOSE tells the standby not to take over, which is right only while our
 * guest lives.  A cut migration stream or a failed epoch is often the
 * first sign that QEMU died (its stream's EOF is read before its
 * monitor's), and a standby told CLOSE then would leave nobody running
 * the guest.  So QEMU is asked first; until it answers, the session
 * carries heartbeats only and held output stays held.
 */
static void goodbye_if_alive(struct remus_engine *e)
{
	e->probing = true;
	if (engine_qmp(e, "query-status", NULL, -1, on_alive) < 0) {
		e->probing = false;
		qmp_failed(e, "query-status (is QEMU alive?)", -EPIPE,
			   remus_qmp_last_error(e->qmp));
	}
}

/*
 * Protection stops: as @bye says, the standby is told (CLOSE) so it does
 * not take over, or not told (the link is already unusable and the
 * standby decides by itself).  The guest keeps running; reconnecting is
 * scheduled once the link is closed.
 */
static void standby_lost(struct remus_engine *e, enum bye bye, const char *fmt, ...)
{
	va_list ap;

	if (remus_link_is_closing(&e->link))
		return;
	if (e->probing) {
		/* ending already; a link that failed meanwhile closes now */
		if (bye == BYE_NONE)
			link_close(e);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
	va_end(ap);
	remus_err(LOG, "%s; the VM keeps running UNPROTECTED", e->reason);
	if (remus_link_is_open(&e->link))
		count_failure(e, e->reason);
	if (bye == BYE_IF_ALIVE && remus_link_is_open(&e->link)) {
		goodbye_if_alive(e);
	} else {
		if (bye != BYE_NONE)
			link_goodbye(e, e->reason);
		else
			link_close(e);
		if (e->hooks.standby_lost)
			e->hooks.standby_lost(e->hooks.opaque, e->reason);
	}
	if (state_final(e->state))
		return;
	if (epoch_running(e) || e->state == REMUS_ENGINE_STARTING) {
		/* The guest runs: drop this epoch's migration.  In CHECKPOINT the
		 * chain finishes (it must cont the guest) and then sees the link
		 * gone. */
		if (e->mig_fd >= 0)
			cancel_migration(e);
		mig_close(e);
		set_state(e, REMUS_ENGINE_UNPROTECTED, "standby lost");
	}
	schedule_reconnect(e);
}

/* ---- one epoch, in the order it runs --------------------------------- */

static void on_epoch_timer(struct remus_loop *loop, void *opaque);
static void checkpoint_step(struct remus_engine *e);
static void begin_migration(struct remus_engine *e);

/* Engine v2 cannot go on (the tracker failed, its stream did): v1 from
 * the next session on, for good; the current session ends with the
 * checkpoint that failed, so the standby never gets an epoch that v2 was
 * to complete. */
static void __attribute__((format(printf, 2, 3))) v2_fall_back(struct remus_engine *e,
							       const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!e->v2)
		return;
	e->v2 = false;
	e->v2_ready = false;
	n = snprintf(e->engine_why, sizeof(e->engine_why), "v1: engine v2 fell back: ");
	va_start(ap, fmt);
	vsnprintf(e->engine_why + n, sizeof(e->engine_why) - (size_t)n, fmt, ap);
	va_end(ap);
	remus_err(LOG, "%s; the next sessions run engine v1 (a full migration per epoch)",
		  e->engine_why);
}

/*
 * A drain: from the moment engine v2 is chosen, every DRAIN_MS while the
 * guest runs (in epochs, between them, between sessions; not in a
 * checkpoint, where the collect does it).  The pages always join e->dset,
 * the pages written since the last checkpoint's collect: the next v2
 * checkpoint sends them with their content as of its stop (a page written
 * again after its drain is written back again by the collect in the
 * pause; the tracker's copy follows).  Before a full (v1) checkpoint they
 * are merely over-reported: its collect starts e->dset over.  Blocks the
 * loop while the kernel writes the pages back.
 */
static void on_drain_timer(struct remus_loop *loop, void *opaque)
{
	struct remus_engine *e = opaque;
	uint64_t t0 = remus_now_ns();
	int rc;

	if (!e->v2 || !e->cfg.dirty || state_final(e->state))
		return;
	remus_timer_arm(&e->drain_timer, e->drain_every_ms);
	if (e->state == REMUS_ENGINE_CHECKPOINT)
		return;
	rc = remus_dirty_collect(e->cfg.dirty, &e->dnext);
	e->cur.drain_ms += ms_since(t0);
	e->cur.drains++;
	if (rc < 0) {
		bool v2_epoch = e->v2_epoch && epoch_running(e);

		/* the tracker lost track: no v2 checkpoint can follow */
		v2_fall_back(e, "the dirty tracker's collect failed: %s", strerror(-rc));
		remus_timer_disarm(&e->drain_timer);
		if (v2_epoch)
			standby_lost(e, BYE_IF_ALIVE, "epoch %llu: the dirty tracker's collect "
				     "failed: %s", (unsigned long long)e->epoch, strerror(-rc));
		return;
	}
	e->cur.drain_pages += e->dnext.ndirty;
	(void)remus_dirty_set_merge(&e->dset, &e->dnext); /* both the tracker's size */
}

/* At a v2 checkpoint's collect (@e->dnext: the pages written since the
 * last drain; @e->dset: what the epoch's drains wrote back): how often
 * the next epoch drains (DRAIN_MAX_MS says why). */
static void drain_adapt(struct remus_engine *e)
{
	uint64_t again = 0;
	unsigned was = e->drain_every_ms;

	if (e->cfg.pause_budget_ms && e->cur.collect_ms * 3 > e->cfg.pause_budget_ms) {
		e->drain_every_ms = DRAIN_MS;
	} else if (e->dset.ndirty) {
		again = remus_dirty_set_common(&e->dset, &e->dnext);
		if (again * 2 > e->dset.ndirty)
			e->drain_every_ms = was * 2 < DRAIN_MAX_MS ? was * 2 : DRAIN_MAX_MS;
		else
			e->drain_every_ms = was / 2 > DRAIN_MS ? was / 2 : DRAIN_MS;
	}
	if (e->drain_every_ms != was) {
		remus_debug(LOG, "epoch %llu: drains every %u ms (were %u; %llu of %llu drained "
			    "pages written again, collect %.1f ms)", (unsigned long long)e->epoch,
			    e->drain_every_ms, was, (unsigned long long)again,
			    (unsigned long long)e->dset.ndirty, e->cur.collect_ms);
		remus_timer_arm(&e->drain_timer, e->drain_every_ms);
	}
	e->cur.drain_every_ms = e->drain_every_ms;
}

/* Feeds channel bytes through parser and rewriter.  0 or -errno. */
static int process_tokens(struct remus_engine *e)
{
	struct remus_migstream_token tok;
	int r;

	while ((r = remus_migstream_next(e->ps, &tok)) == 1) {
		switch (tok.kind) {
		case REMUS_MS_RAM_MEM_SIZE:
			if (tok.nblocks > REMUS_REPL_MAX_BLOCKS)
				return -E2BIG;
			memcpy(e->blocks, tok.blocks, tok.nblocks * sizeof(e->blocks[0]));
			e->nblocks = tok.nblocks;
			e->page_size = tok.page_size;
			if (e->cfg.dedup) {
				r = remus_dedup_set_layout(e->dedup, tok.blocks, tok.nblocks,
							   tok.page_size);
				if (r < 0)
					return r;
			}
			break;
		case REMUS_MS_RAM_PAGE:
			e->cur.pages_seen++;
			break;
		case REMUS_MS_RAM_ZERO:
			e->cur.zero_seen++;
			break;
		default:
			break;
		}
		r = remus_migstream_rewrite(&e->rw, &tok);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return drain_rewriter(e);
}

/* Engine v2: at most this much composed stream at once before it is
 * parsed (and so hashed, framed and queued for the link). */
#define V2_BATCH (4u << 20)

/* Moves the composed bytes into the engine's parser and through the
 * rewriter.  0 or -errno. */
static int v2_feed(struct remus_engine *e)
{
	int rc;

	if (!remus_buf_len(&e->v2buf))
		return 0;
	rc = remus_migstream_feed(e->ps, remus_buf_data(&e->v2buf), remus_buf_len(&e->v2buf));
	remus_buf_reset(&e->v2buf);
	return rc < 0 ? rc : process_tokens(e);
}

/*
 * Engine v2: QEMU's x-ignore-shared stream through the composer
 * (controller/v2stream.h) into the engine's own parser, as if QEMU had
 * sent the v1 stream of this checkpoint.  The dirty pages are injected in
 * batches of V2_BATCH, each parsed before the next is made.  Once QEMU's
 * stream is complete, so is the composed one.  0 or -errno.
 */
static int process_v2(struct remus_engine *e)
{
	struct remus_migstream_token tok;
	int r, rc;

	while ((r = remus_migstream_next(e->ps_qemu, &tok)) == 1) {
		rc = remus_v2stream_token(&e->v2s, &tok, &e->v2buf);
		if (rc < 0)
			return rc;
		while (rc == 1) {
			rc = remus_v2stream_pump(&e->v2s, &e->v2buf, V2_BATCH);
			if (rc < 0)
				return rc;
			r = v2_feed(e);
			if (r < 0)
				return r;
		}
		if (remus_buf_len(&e->v2buf) >= V2_BATCH && (rc = v2_feed(e)) < 0)
			return rc;
	}
	if (r < 0)
		return r;
	if ((rc = v2_feed(e)) < 0)
		return rc;
	if (remus_migstream_complete(e->ps_qemu) && !remus_migstream_complete(e->ps)) {
		remus_migstream_finish(e->ps);
		return process_tokens(e);
	}
	return 0;
}

/* What went wrong in the epoch's stream, for the log ("" if nothing). */
static const char *stream_error(const struct remus_engine *e)
{
	if (e->v2_epoch && *e->v2s.error)
		return e->v2s.error;
	if (e->v2_epoch && e->ps_qemu && *remus_migstream_error(e->ps_qemu))
		return remus_migstream_error(e->ps_qemu);
	return e->ps ? remus_migstream_error(e->ps) : "";
}

/*
 * Was the stream cut (it ended early, or reading it failed), as opposed to
 * carrying something the parsers or the composer refused?  After our own
 * migrate_cancel (the pause budget ran out) QEMU closes the channel
 * wherever it is, so a cut says nothing about engine v2: that checkpoint
 * is dropped and the next epoch tries again.  A refused record says
 * something about v2 whenever it comes.
 */
static bool stream_cut(int rc)
{
	return rc != -EBADMSG && rc != -EMSGSIZE && rc != -ENOMEM;
}

static void epoch_abort(struct remus_engine *e, const char *what, int rc)
{
	const char *detail = stream_error(e);

	standby_lost(e, BYE_IF_ALIVE, "epoch %llu: %s: %s%s%s", (unsigned long long)e->epoch, what,
		     strerror(-rc), *detail ? ": " : "", detail);
}

/*
 * The channel.  At most 8 reads of READ_CHUNK per event, so one event
 * costs a bounded amount of parsing, hashing and framing and the link,
 * QMP and the heartbeats get their turn in between.
 */
static void on_mig_event(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_engine *e = opaque;
	int i, rc;

	for (i = 0; i < 8 && e->mig_fd >= 0 && e->mig_reading; i++) {
		ssize_t r = remus_migstream_read_fd(e->v2_epoch ? e->ps_qemu : e->ps, fd,
						    READ_CHUNK);

		if (r == -EAGAIN)
			return;
		if (r < 0) {
			rc = (int)r;
			goto fail;
		}
		if (r == 0) {
			e->mig_eof = true;
			mig_set_reading(e, false);
			remus_migstream_finish(e->v2_epoch ? e->ps_qemu : e->ps);
			rc = e->v2_epoch ? process_v2(e) : process_tokens(e);
			if (rc < 0)
				goto fail;
			if (e->state != REMUS_ENGINE_CHECKPOINT) {
				rc = -EPIPE;
				goto fail;
			}
			checkpoint_step(e);
			return;
		}
		e->cur.local_bytes += (uint64_t)r;
		remus_converge_sample(&e->conv, remus_now_ns(), e->cur.local_bytes);
		rc = e->v2_epoch ? process_v2(e) : process_tokens(e);
		if (rc < 0)
			goto fail;
	}
	return;
fail:
	if (e->state == REMUS_ENGINE_CHECKPOINT) {
		/* The guest is stopped: drop the checkpoint, let the chain cont
		 * it.  After our migrate_cancel a cut stream is expected. */
		e->mig_eof = true;
		mig_set_reading(e, false);
		if (e->v2_epoch && !(e->abandoning && stream_cut(rc)))
			v2_fall_back(e, "a v2 checkpoint's stream failed: %s", stream_error(e));
		if (!e->abandoning)
			standby_lost(e, BYE_IF_ALIVE, "epoch %llu: migration stream failed: %s %s",
				     (unsigned long long)e->epoch, strerror(-rc), stream_error(e));
		checkpoint_step(e);
		return;
	}
	epoch_abort(e, "migration stream failed", rc);
}

static void on_progress_timer(struct remus_loop *loop, void *opaque);

static void on_migrate(struct remus_qmp *q, int rc, struct json_object *ret,
		        const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	uint64_t now = remus_now_ns();

	if (rc < 0) {
		if (rc == -EREMOTEIO) {
			/* QEMU refused it: whatever it is doing, the next
			 * migration waits until it shows it ended. */
			e->qemu_idle = false;
			epoch_abort(e, err, rc);
			return;
		}
		qmp_failed(e, "migrate", rc, err);
		return;
	}
	/* Every query-migrate sent before it has been answered by now. */
	e->qemu_idle = false;
	if ((e->state == REMUS_ENGINE_STARTING || e->state == REMUS_ENGINE_UNPROTECTED) &&
	    set_state(e, REMUS_ENGINE_SYNCING, "a session's first epoch migrating") < 0)
		return;
	e->t_epoch_ns = now;
	e->t_interval_ns = e->t_pass_ns = 0;
	e->gate_polls = 0;
	e->predicted_ms = 0;
	remus_converge_start(&e->conv, now, e->cur.local_bytes);
	e->t_progress_ns = now;
	e->progress_bytes = e->cur.local_bytes;
	e->progress_done = 0;
	if (!e->t_sync_ns) {
		e->t_sync_ns = now;
		remus_info(LOG, "epoch %llu: %s to standby %s:%u started; the VM runs UNPROTECTED "
			   "until the standby commits it", (unsigned long long)e->epoch,
			   e->first ? "initial sync (a new stream)" : "full epoch (resuming its stream)",
			   e->host, e->cfg.standby_port);
	}
	remus_timer_arm(&e->progress_timer, PROGRESS_MS);
	remus_timer_arm(&e->epoch_timer, e->cfg.interval_ms);
}

static void on_getfd(struct remus_qmp *q, int rc, struct json_object *ret,
		      const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	struct json_object *args;

	if (rc < 0) {
		qmp_failed(e, "getfd", rc, err);
		return;
	}
	if (e->mig_fd < 0)
		return; /* the standby went away meanwhile */
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:" MIG_FD_NAME));
	e->qemu_idle = false;
	submit_or_fail(e, "migrate", args, -1, on_migrate);
}

/* Starts the epoch's migration: a new channel, passed with getfd. */
static void begin_migration(struct remus_engine *e)
{
	struct remus_migstream_opts opts = { 0 };
	int rc;

	memset(&e->cur, 0, sizeof(e->cur));
	e->cur.epoch = e->epoch;
	e->cur.commit_ms = -1;
	e->mig_eof = e->stop_acked = e->polling = false;
	e->mig_gen++;
	opts.no_vmdesc = e->vmdesc_off;
	rc = remus_migstream_new(&opts, &e->ps);
	if (rc < 0)
		goto fail;
	remus_migstream_rewriter_init(&e->rw, e->first, e->standby_sid,
				      e->cfg.dedup ? remus_dedup_filter : NULL, e->dedup);
	rc = remus_dedup_begin_epoch(e->dedup, e->epoch);
	if (rc < 0)
		goto fail;
	rc = remus_repl_tx_begin(&e->tx, e->epoch);
	if (rc < 0)
		goto fail;
	rc = mig_open_channel(e, on_getfd);
	if (rc < 0)
		goto fail;
	return;
fail:
	mig_close(e);
	qmp_failed(e, "starting an epoch", rc, NULL);
}

/*
 * Clean start: QEMU refuses `migrate` while an earlier migration has not
 * ended (an epoch we abandoned, a session lost mid-epoch, a remusd that
 * died), so before every migration we make sure the last one has:
 * query-migrate, migrate_cancel if it still runs, query-migrate every
 * IDLE_POLL_MS until the status is terminal.  The guest runs meanwhile.
 */
static void on_idle_query(struct remus_qmp *q, int rc, struct json_object *ret,
		           const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	struct mig_info mi;
	const char *status;
	uint64_t now = remus_now_ns();

	e->idle_query = false;
	if (rc < 0) {
		qmp_failed(e, "query-migrate", rc, err);
		return;
	}
	if (e->state == REMUS_ENGINE_FAILED || e->state == REMUS_ENGINE_STOPPED)
		return;
	status = parse_migration(ret, &mi);
	note_status(e, status);
	if (status_terminal(status)) {
		if (e->idle_cancelled)
			remus_info(LOG, "QEMU's previous migration ended (%s) %.0f ms after "
				   "migrate_cancel; the next one can start", status,
				   (double)(now - e->t_idle_ns) / 1e6);
		e->t_idle_ns = 0;
		start_epoch(e);
		return;
	}
	if (!e->idle_cancelled) {
		remus_warn(LOG, "QEMU still runs a migration (status %s: an epoch given up, or "
			   "an earlier remusd); cancelling it before the next one", status);
		e->idle_cancelled = true;
		cancel_migration(e);
	} else if (now - e->t_idle_warn_ns >= 5000000000ull) {
		remus_warn(LOG, "QEMU's migration is still %s %.0f s after migrate_cancel; the "
			   "next epoch waits for it to end", status,
			   (double)(now - e->t_idle_ns) / 1e9);
		e->t_idle_warn_ns = now;
	}
	remus_timer_arm(&e->idle_timer, IDLE_POLL_MS);
}

static void wait_idle(struct remus_engine *e)
{
	if (e->idle_query)
		return; /* its answer goes on */
	if (!e->t_idle_ns) {
		e->t_idle_ns = e->t_idle_warn_ns = remus_now_ns();
		e->idle_cancelled = false;
	}
	e->idle_query = true;
	submit_or_fail(e, "query-migrate", NULL, -1, on_idle_query);
}

static void on_idle_timer(struct remus_loop *loop, void *opaque)
{
	wait_idle(opaque);
}

static void on_vmdesc(struct remus_qmp *q, int rc, struct json_object *ret,
		      const char *err, void *opaque)
{
	struct remus_engine *e = opaque;

	e->caps_query = false;
	if (rc < 0 && rc != -EREMOTEIO) {
		qmp_failed(e, "qom-set /machine suppress-vmdesc", rc, err);
		return;
	}
	if (rc == 0) {
		e->vmdesc_off = e->cap_shared;
	} else if (e->cap_shared) {
		/* an older QEMU, or one that refuses it now: the vmdescription stays */
		remus_debug(LOG, "qom-set /machine suppress-vmdesc: %s; v2 migrations keep their "
			    "vmdescription", err ? err : "refused");
	}
	if (state_final(e->state) || e->state == REMUS_ENGINE_CHECKPOINT)
		return;
	start_epoch(e);
}

/* suppress-vmdesc @on, then the epoch starts (on_vmdesc). */
static void set_vmdesc(struct remus_engine *e, bool on)
{
	struct json_object *args = json_object_new_object();

	json_object_object_add(args, "path", json_object_new_string("/machine"));
	json_object_object_add(args, "property", json_object_new_string("suppress-vmdesc"));
	json_object_object_add(args, "value", json_object_new_boolean(on));
	submit_or_fail(e, "qom-set", args, -1, on_vmdesc);
}

static void on_shared_cap(struct remus_qmp *q, int rc, struct json_object *ret,
			  const char *err, void *opaque)
{
	struct remus_engine *e = opaque;

	if (rc < 0) {
		e->caps_query = false;
		qmp_failed(e, "migrate-set-capabilities x-ignore-shared", rc, err);
		return;
	}
	e->cap_known = true;
	e->cap_shared = e->cap_pending;
	set_vmdesc(e, e->cap_shared);
}

/* x-ignore-shared on for v2 epochs, off for v1 ones (their stream must
 * carry the shared block).  Only between migrations: QEMU refuses it
 * during one. */
static void set_shared_cap(struct remus_engine *e, bool on)
{
	struct json_object *args, *list, *c;

	if (e->caps_query)
		return; /* its answer starts the epoch */
	args = json_object_new_object();
	list = json_object_new_array();
	c = json_object_new_object();
	json_object_object_add(c, "capability", json_object_new_string("x-ignore-shared"));
	json_object_object_add(c, "state", json_object_new_boolean(on));
	json_object_array_add(list, c);
	json_object_object_add(args, "capabilities", list);
	e->cap_pending = on;
	e->caps_query = true;
	submit_or_fail(e, "migrate-set-capabilities", args, -1, on_shared_cap);
}

/*
 * A v2 epoch: no migration while the guest runs (the tracker follows its
 * writes); parsers, rewriter, dedup and the epoch's frames are set up now,
 * the migration starts in the checkpoint, after the collect.
 */
static void begin_v2_epoch(struct remus_engine *e)
{
	struct remus_migstream_opts opts = { 0 };
	uint64_t now = remus_now_ns();
	int rc;

	memset(&e->cur, 0, sizeof(e->cur));
	e->cur.epoch = e->epoch;
	e->cur.commit_ms = -1;
	e->cur.v2 = true;
	e->mig_eof = e->stop_acked = e->polling = e->v2_failed = false;
	e->mig_gen++;
	/* Both parsers: the composed stream ends where QEMU's does
	 * (process_v2 finishes it). */
	opts.no_vmdesc = e->vmdesc_off;
	rc = remus_migstream_new(&opts, &e->ps);
	if (rc == 0)
		rc = remus_migstream_new(&opts, &e->ps_qemu);
	if (rc < 0)
		goto fail;
	e->v2_epoch = true;
	remus_migstream_rewriter_init(&e->rw, e->first, e->standby_sid,
				      e->cfg.dedup ? remus_dedup_filter : NULL, e->dedup);
	rc = remus_dedup_begin_epoch(e->dedup, e->epoch);
	if (rc < 0)
		goto fail;
	rc = remus_repl_tx_begin(&e->tx, e->epoch);
	if (rc < 0)
		goto fail;
	e->t_epoch_ns = now;
	e->t_interval_ns = e->t_pass_ns = 0;
	e->gate_polls = 0;
	e->predicted_ms = 0;
	remus_timer_arm(&e->epoch_timer, e->cfg.interval_ms);
	return;
fail:
	mig_close(e);
	qmp_failed(e, "starting a v2 epoch", rc, NULL);
}

static void start_epoch(struct remus_engine *e)
{
	bool want;

	if (!session_up(e) || e->stopping) {
		if (set_state(e, REMUS_ENGINE_UNPROTECTED, "no session to start an epoch in") == 0)
			schedule_reconnect(e);
		return;
	}
	if (e->gated)
		return; /* remus_engine_session_ready() starts it */
	if (!e->qemu_idle) {
		wait_idle(e);
		return;
	}
	want = e->v2 && e->v2_ready;
	if (e->cfg.dirty && (!e->cap_known || e->cap_shared != want)) {
		set_shared_cap(e, want);
		return;
	}
	if (want)
		begin_v2_epoch(e);
	else
		begin_migration(e);
}

/* ---- the convergence gate --------------------------------------------- */

static void on_stopped(struct remus_qmp *q, int rc, struct json_object *ret,
		        const char *err, void *opaque);
static void drop_checkpoint(struct remus_engine *e);
static void on_query_migrate(struct remus_qmp *q, int rc, struct json_object *ret,
		              const char *err, void *opaque);
static void on_cont(struct remus_qmp *q, int rc, struct json_object *ret,
		     const char *err, void *opaque);

/* Logs how far the copy is, once per PROGRESS_MS: at info level while the
 * session has nothing committed (the guest is unprotected), at debug level
 * for a later epoch that the gate holds past its interval. */
static void report_progress(struct remus_engine *e, uint64_t now)
{
	const struct mig_info *mi = &e->mi;
	uint64_t done = mi->total > mi->remaining ? mi->total - mi->remaining : 0;
	double dt = (double)(now - e->t_progress_ns) / 1e9;
	double scan;

	if (dt < PROGRESS_MS * 0.9 / 1000.0 || !mi->has_ram)
		return;
	e->chan_bps = (double)(e->cur.local_bytes - e->progress_bytes) / dt;
	scan = done > e->progress_done ? (double)(done - e->progress_done) / dt : 0;
	/* ETA of the first pass; -1: unknown (nothing moved, or converging) */
	e->eta_s = mi->dirty_syncs < 2 && scan > 0 ? (double)mi->remaining / scan : -1;
	e->t_progress_ns = now;
	e->progress_bytes = e->cur.local_bytes;
	e->progress_done = done;
	if (e->state == REMUS_ENGINE_SYNCING && e->eta_s >= 0)
		remus_info(LOG, "initial sync, epoch %llu: %.0f of %.0f MiB copied, %.0f MiB "
			   "remaining (first pass), %.0f MB/s, ETA %.1f s; the VM runs "
			   "UNPROTECTED until the first commit", (unsigned long long)e->epoch,
			   (double)done / 1048576.0, (double)mi->total / 1048576.0,
			   (double)mi->remaining / 1048576.0, e->chan_bps / 1e6, e->eta_s);
	else if (e->state == REMUS_ENGINE_SYNCING)
		remus_info(LOG, "initial sync, epoch %llu: %.0f of %.0f MiB copied, %.0f MiB "
			   "remaining (%s), %.0f MB/s; the VM runs UNPROTECTED until the first "
			   "commit", (unsigned long long)e->epoch, (double)done / 1048576.0,
			   (double)mi->total / 1048576.0, (double)mi->remaining / 1048576.0,
			   mi->dirty_syncs >= 2 ? "first pass done, converging" :
			   "first pass, no progress: the link or the standby takes nothing",
			   e->chan_bps / 1e6);
	else if (e->t_interval_ns)
		remus_debug(LOG, "epoch %llu: %.1f s past its interval, waiting for the migration "
			    "to converge: dirty sync %llu, %.1f MiB remaining, pause predicted "
			    "%.0f ms, budget %u ms", (unsigned long long)e->epoch,
			    (double)(now - e->t_interval_ns) / 1e9,
			    (unsigned long long)mi->dirty_syncs, (double)mi->remaining / 1048576.0,
			    e->predicted_ms, e->cfg.pause_budget_ms);
}

static void checkpoint_begin(struct remus_engine *e, const char *why);

/*
 * A gate (or progress) answer.  While the interval runs it only feeds the
 * progress report; once the interval is over it decides: stop now, or
 * ask again in GATE_POLL_MS.
 */
static void on_gate_query(struct remus_qmp *q, int rc, struct json_object *ret,
			  const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	struct json_object *d = NULL;
	const char *status;
	uint64_t now = remus_now_ns();
	double rate;

	e->gate_query = false;
	if (rc < 0) {
		qmp_failed(e, "query-migrate", rc, err);
		return;
	}
	if (!epoch_running(e) || e->gate_gen != e->mig_gen || e->mig_fd < 0)
		return; /* about an epoch that is over */
	status = parse_migration(ret, &e->mi);
	note_status(e, status);
	if (status_terminal(status)) {
		json_object_object_get_ex(ret, "error-desc", &d);
		standby_lost(e, BYE_IF_ALIVE, "epoch %llu: QEMU's migration is %s while the guest runs%s%s",
			     (unsigned long long)e->epoch, status, d ? ": " : "",
			     d ? json_object_get_string(d) : "");
		return;
	}
	rate = remus_converge_rate(&e->conv, now, e->cur.local_bytes);
	e->predicted_ms = e->mi.has_ram ? remus_converge_predict_ms(e->mi.remaining, rate) : 1e12;
	if (e->mi.dirty_syncs >= 2 && !e->t_pass_ns)
		e->t_pass_ns = now;
	report_progress(e, now);
	if (!e->t_interval_ns)
		return;
	e->gate_polls++;
	if (remus_converge_ready(e->mi.dirty_syncs, e->predicted_ms, e->cfg.pause_budget_ms)) {
		checkpoint_begin(e, "migration converged");
		return;
	}
	if (e->t_pass_ns && now - e->t_pass_ns >= GATE_MAX_WAIT_MS * 1000000ull &&
	    now - e->t_interval_ns >= GATE_MAX_WAIT_MS * 1000000ull) {
		remus_warn(LOG, "epoch %llu: the migration has not converged %u s after its first "
			   "pass (%.1f MiB remaining, pause predicted %.0f ms, budget %u ms): the "
			   "guest dirties memory faster than it is copied; stopping anyway, the "
			   "pause budget bounds the pause", (unsigned long long)e->epoch,
			   GATE_MAX_WAIT_MS / 1000, (double)e->mi.remaining / 1048576.0,
			   e->predicted_ms, e->cfg.pause_budget_ms);
		checkpoint_begin(e, "migration did not converge in time");
		return;
	}
	remus_timer_arm(&e->gate_timer, GATE_POLL_MS);
}

static void gate_poll(struct remus_engine *e)
{
	if (e->gate_query)
		return; /* its answer decides */
	e->gate_query = true;
	e->gate_gen = e->mig_gen;
	submit_or_fail(e, "query-migrate", NULL, -1, on_gate_query);
}

static void on_gate_timer(struct remus_loop *loop, void *opaque)
{
	struct remus_engine *e = opaque;

	if (epoch_running(e) && e->t_interval_ns)
		gate_poll(e);
}

static void on_progress_timer(struct remus_loop *loop, void *opaque)
{
	struct remus_engine *e = opaque;

	if (!epoch_running(e))
		return;
	remus_timer_arm(&e->progress_timer, PROGRESS_MS);
	/* Past the interval the gate asks often enough. */
	if (!e->t_interval_ns && e->state == REMUS_ENGINE_SYNCING)
		gate_poll(e);
}

/* The interval is over: the checkpoint waits for the gate. */
static void on_epoch_timer(struct remus_loop *loop, void *opaque)
{
	struct remus_engine *e = opaque;

	if (!epoch_running(e))
		return;
	e->t_interval_ns = remus_now_ns();
	if (e->v2_epoch) {
		/* Nothing to converge: the checkpoint's migration is small. */
		checkpoint_begin(e, "interval over (v2)");
		return;
	}
	gate_poll(e);
}

/* ---- the checkpoint --------------------------------------------------- */

static void on_budget(struct remus_loop *loop, void *opaque);

/* Stops the guest; from here the pause budget runs. */
static void checkpoint_begin(struct remus_engine *e, const char *why)
{
	uint64_t now = remus_now_ns();

	if (set_state(e, REMUS_ENGINE_CHECKPOINT, why) < 0)
		return;
	remus_timer_disarm(&e->gate_timer);
	remus_timer_disarm(&e->progress_timer);
	e->cur.epoch_ms = (double)(now - e->t_epoch_ns) / 1e6;
	e->cur.converge_wait_ms = (double)(now - e->t_interval_ns) / 1e6;
	e->cur.predicted_pause_ms = e->predicted_ms;
	e->cur.pause_budget_ms = e->cfg.pause_budget_ms;
	e->last_epoch_ms = e->cur.epoch_ms;
	if (e->gate_polls > 1 && e->epoch != e->session_first_epoch) {
		e->stretched++;
		remus_debug(LOG, "epoch %llu stretched to %.0f ms (interval %u ms) until the "
			    "migration converged", (unsigned long long)e->epoch, e->cur.epoch_ms,
			    e->cfg.interval_ms);
	}
	/* (a session's first checkpoint follows a reconnect or the start:
	 * no cycle to measure) */
	e->cur.cycle_ms = e->t_stop_ns && e->epoch != e->session_first_epoch ?
			  (double)(now - e->t_stop_ns) / 1e6 : 0;
	e->t_stop_ns = now;
	e->stop_bytes = e->cur.local_bytes;
	e->stop_acked = e->abandoning = e->abandon_seen = e->qemu_done = e->polling = false;
	e->drop_reason[0] = '\0';
	/* The guest is stopped: read the tail at once, whatever the link's
	 * backlog (drain_rewriter). */
	if (e->mig_fd >= 0 && !e->mig_eof)
		mig_set_reading(e, true);
	remus_timer_arm(&e->budget_timer, remus_converge_cancel_at_ms(e->cfg.pause_budget_ms));
	submit_or_fail(e, "stop", NULL, -1, on_stopped);
}

/* A v2 checkpoint cannot complete: drop it once (the session ends, the
 * guest is resumed); @why is kept for the log and the metrics. */
static void v2_drop(struct remus_engine *e, const char *why)
{
	if (e->v2_failed || e->state != REMUS_ENGINE_CHECKPOINT)
		return;
	e->v2_failed = true;
	if (!*e->drop_reason)
		snprintf(e->drop_reason, sizeof(e->drop_reason), "%s", why);
	remus_timer_disarm(&e->budget_timer);
	remus_timer_disarm(&e->poll_timer);
	drop_checkpoint(e);
}

static void on_v2_migrate(struct remus_qmp *q, int rc, struct json_object *ret,
			  const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	char why[300];

	if (rc == -EREMOTEIO) {
		snprintf(why, sizeof(why), "QEMU refused the checkpoint's migration: %s", err);
		v2_fall_back(e, "%s", why);
		v2_drop(e, why);
		return;
	}
	if (rc < 0) {
		qmp_failed(e, "migrate", rc, err);
		return;
	}
	/* The source finishes only after our SHUT on its return path. */
	if (e->mig_fd >= 0 && send(e->mig_fd, rp_shut, sizeof(rp_shut), MSG_NOSIGNAL) < 0 &&
	    !e->abandoning)
		remus_warn(LOG, "epoch %llu: return path SHUT: %s", (unsigned long long)e->epoch,
			   strerror(errno));
}

static void on_v2_getfd(struct remus_qmp *q, int rc, struct json_object *ret,
			const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	char why[300];

	if (rc == -EREMOTEIO) {
		/* the migrate queued behind it fails too: one drop */
		snprintf(why, sizeof(why), "getfd of the checkpoint's channel: %s", err);
		v2_drop(e, why);
		return;
	}
	if (rc < 0)
		qmp_failed(e, "getfd", rc, err);
}

/*
 * The guest is stopped in a v2 epoch: collect the tracker (the pages
 * written since the last checkpoint; the copy now holds their content as
 * of the stop), then migrate with x-ignore-shared.  getfd and migrate are
 * queued together, so any query-migrate of the budget's chain comes after
 * the migrate and sees this migration, not the last one.
 */
static void v2_stopped(struct remus_engine *e)
{
	struct json_object *args;
	uint64_t t0 = remus_now_ns();
	int rc;
	char why[300];

	e->stop_acked = true;
	if (e->abandoning) {
		v2_drop(e, "the pause budget ran out before the stop was answered");
		return;
	}
	rc = remus_dirty_collect(e->cfg.dirty, &e->dnext);
	e->cur.collect_ms = ms_since(t0);
	if (rc < 0) {
		snprintf(why, sizeof(why), "the dirty tracker's collect failed: %s", strerror(-rc));
		v2_fall_back(e, "%s", why);
		v2_drop(e, why);
		return;
	}
	drain_adapt(e);
	(void)remus_dirty_set_merge(&e->dset, &e->dnext); /* both the tracker's size */ /* with the epoch's drains */
	e->cur.dirty_pages = e->dset.ndirty;
	remus_v2stream_init(&e->v2s, e->ram_backend, remus_dirty_ram(e->cfg.dirty),
			    remus_dirty_npages(e->cfg.dirty) * REMUS_DIRTY_PAGE_SIZE, e->dset.bits);
	rc = mig_open_channel(e, on_v2_getfd);
	if (rc < 0)
		goto fail;
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:" MIG_FD_NAME));
	e->qemu_idle = false;
	rc = engine_qmp(e, "migrate", args, -1, on_v2_migrate);
	if (rc < 0)
		goto fail;
	return;
fail:
	snprintf(why, sizeof(why), "cannot start the checkpoint's migration: %s", strerror(-rc));
	v2_drop(e, why);
}

static void on_stopped(struct remus_qmp *q, int rc, struct json_object *ret,
		        const char *err, void *opaque)
{
	struct remus_engine *e = opaque;

	if (rc < 0) {
		qmp_failed(e, "stop", rc, err);
		return;
	}
	if (e->v2_epoch) {
		v2_stopped(e);
		return;
	}
	/* QEMU now completes the migration by itself; its return-path thread
	 * waits for our SHUT before the source can finish.  After our
	 * migrate_cancel QEMU may have closed its end already. */
	if (e->mig_fd >= 0 && send(e->mig_fd, rp_shut, sizeof(rp_shut), MSG_NOSIGNAL) < 0 &&
	    !e->abandoning)
		remus_warn(LOG, "epoch %llu: return path SHUT: %s",
			   (unsigned long long)e->epoch, strerror(errno));
	e->stop_acked = true;
	if (e->mig_fd < 0)
		e->mig_eof = true;
	checkpoint_step(e);
}

static void poll_migration(struct remus_loop *loop, void *opaque)
{
	struct remus_engine *e = opaque;

	submit_or_fail(e, "query-migrate", NULL, -1, on_query_migrate);
}

static void on_poll_again(struct remus_loop *loop, void *opaque)
{
	poll_migration(loop, opaque);
}

static void commit_epoch(struct remus_engine *e);
static void drop_checkpoint(struct remus_engine *e);

/*
 * Called whenever something the checkpoint waits for happened: the stop
 * answered, the channel at EOF (or failed), QEMU's status terminal, the
 * budget over.  QEMU's `completed` can come before our EOF (the tail is
 * still in the socket) and EOF before `completed`; after migrate_cancel
 * the status is polled whether or not the channel ended.
 */
static void checkpoint_step(struct remus_engine *e)
{
	if (e->state != REMUS_ENGINE_CHECKPOINT)
		return;
	if (e->qemu_done) {
		if (strcmp(e->mig_status, "completed") == 0 && !e->mig_eof)
			return; /* EOF comes next, or the budget ends the wait */
		remus_timer_disarm(&e->budget_timer);
		remus_timer_disarm(&e->poll_timer);
		if (strcmp(e->mig_status, "completed") == 0) {
			if (e->abandoning)
				remus_info(LOG, "epoch %llu: the migration completed before our "
					   "cancel took effect; committing it", (unsigned long long)e->epoch);
			commit_epoch(e);
		} else {
			drop_checkpoint(e);
		}
		return;
	}
	if (e->polling || !(e->abandoning || (e->stop_acked && e->mig_eof)))
		return;
	e->polling = true;
	submit_or_fail(e, "query-migrate", NULL, -1, on_query_migrate);
}

/*
 * The pause budget is over.  First time: cancel the migration (QEMU
 * shows `cancelled` within milliseconds, measured 6 ms) and let the chain
 * resume the guest as soon as it does.  Second time, CANCEL_GRACE_MS
 * later: QEMU has still not ended it; resume the guest anyway.
 */
static void on_budget(struct remus_loop *loop, void *opaque)
{
	struct remus_engine *e = opaque;

	if (e->state != REMUS_ENGINE_CHECKPOINT)
		return;
	if (!e->abandoning) {
		e->abandoning = true;
		e->t_cancel_ns = remus_now_ns();
		snprintf(e->drop_reason, sizeof(e->drop_reason), "the checkpoint did not complete "
			 "within the pause budget of %u ms (stop %s, %llu B read since, channel %s)",
			 e->cfg.pause_budget_ms, e->stop_acked ? "answered" : "not answered yet",
			 (unsigned long long)(e->cur.local_bytes - e->stop_bytes),
			 e->mig_eof ? "at EOF" : "open");
		remus_warn(LOG, "epoch %llu: %s; cancelling the migration to resume the guest",
			   (unsigned long long)e->epoch, e->drop_reason);
		if (e->qemu_done) {
			/* Completed, but the stream's tail never came. */
			drop_checkpoint(e);
			return;
		}
		/* A query first: its answer says where QEMU was stuck. */
		checkpoint_step(e);
		cancel_migration(e);
		remus_timer_arm(&e->budget_timer, CANCEL_GRACE_MS);
		return;
	}
	remus_err(LOG, "epoch %llu: QEMU's migration is still %s %u ms after migrate_cancel; "
		  "resuming the guest anyway (the next migration waits until it ends)",
		  (unsigned long long)e->epoch, *e->mig_status ? e->mig_status : "?",
		  CANCEL_GRACE_MS);
	remus_timer_disarm(&e->poll_timer);
	drop_checkpoint(e);
}

static void send_cont(struct remus_engine *e)
{
	submit_or_fail(e, "cont", NULL, -1, on_cont);
}

/* The checkpoint is complete and consistent: close the epoch's output and
 * disk epoch, ask the standby to commit it, resume the guest. */
static void commit_epoch(struct remus_engine *e)
{
	bool ok = session_up(e) && e->ps && remus_migstream_complete(e->ps);
	int rc;

	e->polling = false;
	e->cur.complete_ms = ms_since(e->t_stop_ns);
	if (ok && e->hooks.barrier) {
		rc = e->hooks.barrier(e->hooks.opaque, e->epoch);
		if (rc < 0) {
			standby_lost(e, BYE_IF_ALIVE, "epoch %llu: barrier hook failed: %s",
				     (unsigned long long)e->epoch, strerror(-rc));
			ok = false;
		}
	}
	if (ok && e->ninflight == MAX_INFLIGHT) {
		standby_lost(e, BYE_IF_ALIVE, "standby %s:%u has not acknowledged %u epochs", e->host,
			     e->cfg.standby_port, MAX_INFLIGHT);
		ok = false;
	}
	if (ok && e->v2 && !e->v2_epoch) {
		/* A v1 checkpoint of a v2 engine (the session's full epoch):
		 * with the guest stopped, the tracker starts over here, so the
		 * next epoch's collect is exactly what changed since this
		 * checkpoint.  Its set is not needed, nor what the drains
		 * found before: this epoch carried all. */
		uint64_t t0 = remus_now_ns();

		rc = remus_dirty_collect(e->cfg.dirty, &e->dnext);
		e->cur.collect_ms = ms_since(t0);
		remus_dirty_set_clear(&e->dset);
		if (rc < 0)
			v2_fall_back(e, "the dirty tracker's collect failed: %s", strerror(-rc));
		else
			e->v2_ready = true;
	}
	if (e->v2_epoch) {
		/* its stream is composed: the next checkpoint's pages start here */
		if (ok)
			e->cur.local_bytes += e->v2s.pages * REMUS_DIRTY_PAGE_SIZE;
		remus_dirty_set_clear(&e->dset);
	}
	if (ok) {
		size_t dev = remus_buf_len(&e->rw.dev);

		rc = drain_rewriter(e);
		if (rc == 0 && !e->have_sid)
			rc = e->rw.have_sid ? 0 : -EBADMSG;
		if (rc == 0)
			rc = remus_repl_tx_device(&e->tx, remus_link_out(&e->link),
						  remus_buf_data(&e->rw.dev), dev);
		e->cur.disk_ops = e->tx.disk_ops;
		e->cur.disk_bytes = e->tx.disk_bytes;
		e->cur.link_backlog = remus_link_backlog(&e->link);
		if (rc == 0)
			rc = remus_repl_tx_commit(&e->tx, remus_link_out(&e->link));
		if (rc < 0) {
			standby_lost(e, BYE_IF_ALIVE, "epoch %llu: cannot queue the commit: %s",
				     (unsigned long long)e->epoch, strerror(-rc));
			ok = false;
		} else {
			e->cur.device_bytes = dev;
			e->cur.sent_bytes += dev;
			e->cur.pages_changed = e->rw.pages_kept;
			e->cur.zero_changed = e->rw.zero_kept;
			if (e->v2_epoch)
				e->v2_epochs++;
			else
				e->v1_epochs++;
			e->have_sid = true;
			e->standby_sid = e->rw.standby_sid;
			e->inflight[e->ninflight].t_req_ns = remus_now_ns();
			e->inflight[e->ninflight].m = e->cur;
			e->ninflight++;
			remus_link_send(&e->link);
		}
	}
	e->cur.abandoned = !ok;
	mig_close(e);
	send_cont(e);
}

/* The checkpoint cannot be committed: the standby must drop what it got of
 * this epoch and must not take over from it, so the session ends with a
 * CLOSE that says why (the next session starts with a full epoch); the
 * guest is resumed at once. */
static void drop_checkpoint(struct remus_engine *e)
{
	e->polling = false;
	e->v2_ready = false;
	e->cur.complete_ms = ms_since(e->t_stop_ns);
	e->cur.abandoned = true;
	if (e->abandoning)
		e->abandoned++;
	if (!*e->drop_reason)
		snprintf(e->drop_reason, sizeof(e->drop_reason), "QEMU's migration %s",
			 *e->mig_status ? e->mig_status : "did not complete");
	if (session_up(e))
		standby_lost(e, BYE_IF_ALIVE, "epoch %llu abandoned: %s", (unsigned long long)e->epoch,
			     e->drop_reason);
	mig_close(e);
	send_cont(e);
}

static void on_query_migrate(struct remus_qmp *q, int rc, struct json_object *ret,
		              const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	struct json_object *d = NULL;
	struct mig_info mi;
	const char *status;

	e->polling = false;
	if (rc < 0) {
		qmp_failed(e, "query-migrate", rc, err);
		return;
	}
	if (e->state != REMUS_ENGINE_CHECKPOINT || e->qemu_done)
		return;
	status = parse_migration(ret, &mi);
	note_status(e, status);
	if (status_terminal(status)) {
		e->qemu_done = true;
		if (strcmp(status, "completed") != 0 && !*e->drop_reason) {
			json_object_object_get_ex(ret, "error-desc", &d);
			snprintf(e->drop_reason, sizeof(e->drop_reason), "QEMU's migration %s%s%s",
				 status, d ? ": " : "", d ? json_object_get_string(d) : "");
		}
		checkpoint_step(e);
		return;
	}
	if (e->abandoning && !e->abandon_seen) {
		size_t n = strlen(e->drop_reason);

		e->abandon_seen = true;
		remus_warn(LOG, "epoch %llu: QEMU's migration was %s when the pause budget ran out",
			   (unsigned long long)e->epoch, status);
		snprintf(e->drop_reason + n, sizeof(e->drop_reason) - n, "; QEMU's migration was %s",
			 status);
	}
	e->polling = true;
	remus_timer_arm(&e->poll_timer, 1);
}

static void on_cont(struct remus_qmp *q, int rc, struct json_object *ret,
		     const char *err, void *opaque)
{
	struct remus_engine *e = opaque;

	if (rc < 0) {
		qmp_failed(e, "cont", rc, err);
		return;
	}
	e->cur.pause_ms = ms_since(e->t_stop_ns);
	e->last_pause_ms = e->cur.pause_ms;
	if (e->cur.pause_ms > e->max_pause_ms)
		e->max_pause_ms = e->cur.pause_ms;
	e->checkpoints++;
	if (e->ninflight && e->inflight[e->ninflight - 1].m.epoch == e->epoch)
		e->inflight[e->ninflight - 1].m.pause_ms = e->cur.pause_ms;
	remus_info(LOG, "epoch %llu: pause %.1f ms (complete %.1f, budget %u)%s, epoch %.0f ms "
		   "(interval %u, gate waited %.0f), local %llu B, sent %llu B, "
		   "pages %llu/%llu changed, device %llu B",
		   (unsigned long long)e->epoch, e->cur.pause_ms, e->cur.complete_ms,
		   e->cur.pause_budget_ms, e->cur.abandoned ? ", NOT COMMITTED" : "",
		   e->cur.epoch_ms, e->cfg.interval_ms, e->cur.converge_wait_ms,
		   (unsigned long long)e->cur.local_bytes, (unsigned long long)e->cur.sent_bytes,
		   (unsigned long long)e->cur.pages_changed, (unsigned long long)e->cur.pages_seen,
		   (unsigned long long)e->cur.device_bytes);
	if (e->hooks.epoch_done)
		e->hooks.epoch_done(e->hooks.opaque, &e->cur);
	if (e->ack_before_cont) {
		e->ack_before_cont = false;
		e->acked.pause_ms = e->cur.pause_ms;
		if (e->hooks.epoch_done)
			e->hooks.epoch_done(e->hooks.opaque, &e->acked);
	}
	if (e->stopping) {
		finish(e, REMUS_ENGINE_STOPPED, 0, "unprotected on request");
		return;
	}
	if (!session_up(e)) {
		if (set_state(e, REMUS_ENGINE_UNPROTECTED, "guest resumed, standby gone") == 0)
			schedule_reconnect(e);
		return;
	}
	if (set_state(e, e->session_committed ? REMUS_ENGINE_PROTECTED : REMUS_ENGINE_SYNCING,
		      "guest resumed") < 0)
		return;
	e->epoch++;
	e->first = false;
	start_epoch(e);
}

/* ---- what the disk replication and the netbuffer drive ---------------- */

void remus_engine_session_ready(struct remus_engine *e, int rc, const char *why)
{
	if (!e->gated)
		return;
	e->gated = false;
	if (!session_up(e))
		return;
	if (rc < 0) {
		standby_lost(e, BYE_IF_ALIVE, "session with standby %s:%u given up: %s", e->host,
			     e->cfg.standby_port, why ? why : strerror(-rc));
		return;
	}
	if (e->state == REMUS_ENGINE_UNPROTECTED || e->state == REMUS_ENGINE_STARTING)
		start_epoch(e);
}

int remus_engine_disk_op(struct remus_engine *e, uint16_t disk, enum remus_repl_disk_op op,
			 uint64_t offset, uint32_t len, const void *data)
{
	int rc;

	if (!session_up(e))
		return -ENOTCONN;
	rc = remus_repl_tx_disk(&e->tx, remus_link_out(&e->link), disk, op, offset, len, data);
	if (rc < 0) {
		standby_lost(e, BYE_IF_ALIVE, "cannot queue a disk write of %u bytes for the standby "
			     "(%zu bytes queued): %s", len, remus_link_backlog(&e->link),
			     strerror(-rc));
		return rc;
	}
	remus_link_send(&e->link);
	return 0;
}

size_t remus_engine_link_backlog(const struct remus_engine *e)
{
	return remus_link_backlog(&e->link);
}

/* ---- start, stop, status --------------------------------------------- */

static void finish(struct remus_engine *e, enum remus_engine_state st, int rc,
		   const char *reason)
{
	if (state_final(e->state))
		return;
	if (st == REMUS_ENGINE_FAILED || rc < 0)
		remus_err(LOG, "protection ended: %s", reason);
	else
		remus_info(LOG, "protection ended: %s", reason);
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	/* Shutting down: the one place the loop may wait (at most 2 s) so the
	 * standby reads CLOSE and does not take over. */
	if (remus_link_is_connected(&e->link) && st == REMUS_ENGINE_STOPPED &&
	    remus_link_goodbye_blocking(&e->link, "unprotect", 2000) < 0)
		remus_warn(LOG, "standby %s:%u may not have read our CLOSE", e->host,
			   e->cfg.standby_port);
	teardown(e);
	/* Commands already submitted still reach QEMU (a cont must); their
	 * replies belong to a chain that has just ended. */
	remus_qmp_cancel_owner(e->qmp, e);
	if (set_state(e, st, reason) < 0)
		return;
	if (e->hooks.finished)
		e->hooks.finished(e->hooks.opaque, st, rc, reason);
}

/* The engine that runs is decided: v2, or v1 with @why (for --engine v2
 * a refusal instead). */
static void v2_decided(struct remus_engine *e, bool v2, const char *why)
{
	if (v2) {
		e->v2 = true;
		e->drain_every_ms = DRAIN_MS;
		remus_timer_arm(&e->drain_timer, DRAIN_MS);
		snprintf(e->engine_why, sizeof(e->engine_why), "v2: %s", why);
		remus_info(LOG, "engine %s", e->engine_why);
	} else if (e->cfg.kind == REMUS_ENGINE_V2 && *e->ramfs_socket) {
		char msg[600];

		snprintf(msg, sizeof(msg), "--engine v2 cannot run: %s; or use --engine auto|v1",
			 why);
		finish(e, REMUS_ENGINE_FAILED, -EINVAL, msg);
		return;
	} else if (e->cfg.kind == REMUS_ENGINE_V2) {
		char msg[400];

		snprintf(msg, sizeof(msg), "--engine v2 cannot run: %s; start QEMU with "
			 "-object memory-backend-file,id=%s,mem-path=%s,share=on -machine "
			 "memory-backend=%s, or use --engine auto|v1", why, e->ram_backend,
			 remus_dirty_ram_path(e->cfg.dirty) ? remus_dirty_ram_path(e->cfg.dirty)
							    : "?", e->ram_backend);
		finish(e, REMUS_ENGINE_FAILED, -EINVAL, msg);
		return;
	} else {
		snprintf(e->engine_why, sizeof(e->engine_why), "v1: %s", why);
		remus_warn(LOG, "engine %s", e->engine_why);
	}
	link_connect(e);
}

static void on_v2_share(struct remus_qmp *q, int rc, struct json_object *ret,
			const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	char why[400];

	if (rc < 0 && rc != -EREMOTEIO) {
		qmp_failed(e, "qom-get share", rc, err);
		return;
	}
	if (rc < 0 || !json_object_get_boolean(ret)) {
		snprintf(why, sizeof(why), "memory backend '%s' is not share=on: %s",
			 e->ram_backend, rc < 0 ? err : "its writes stay private to QEMU");
		v2_decided(e, false, why);
		return;
	}
	snprintf(why, sizeof(why), "guest RAM (memory backend '%s') is the dirty tracker's "
		 "file %s (%s), share=on", e->ram_backend, remus_dirty_ram_path(e->cfg.dirty),
		 remus_dirty_kind_name(remus_dirty_kind(e->cfg.dirty)));
	v2_decided(e, true, why);
}

static void on_v2_path(struct remus_qmp *q, int rc, struct json_object *ret,
		       const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	const char *want = remus_dirty_ram_path(e->cfg.dirty), *got;
	struct json_object *args;
	char why[600];

	if (rc < 0 && rc != -EREMOTEIO) {
		qmp_failed(e, "qom-get mem-path", rc, err);
		return;
	}
	got = rc == 0 ? json_object_get_string(ret) : NULL;
	if (!got || !want || strcmp(got, want) != 0) {
		snprintf(why, sizeof(why), "QEMU's memory backend '%s' %s%s%s, not the tracker's "
			 "file %s", e->ram_backend, got ? "maps " : "cannot be read: ",
			 got ? got : err ? err : "?", "", want ? want : "(none)");
		v2_decided(e, false, why);
		return;
	}
	args = json_object_new_object();
	json_object_object_add(args, "path", json_object_new_string(e->v2_qom_path));
	json_object_object_add(args, "property", json_object_new_string("share"));
	submit_or_fail(e, "qom-get", args, -1, on_v2_share);
}

/* ---- engine v2 on a remusd ramfs server (cfg.ramfs_socket) ------------
 *
 * Under libvirt nobody hands remusd a tracker: the guest's RAM is a file
 * libvirt names (memory_backing_dir/N-DOMAIN/pc.ram, docs/ARCHITECTURE.md
 * "Engine v2 under libvirt") on the `remusd ramfs` mount, if the domain
 * has a shared file memoryBacking at all.  So it is found from QMP by
 * the chain the standby runs too (qmp.h, remus_qmp_ram_backend_find):
 *
 *   qom-get /machine memory-backend   ("/objects/pc.ram", or an id)
 *   -> qom-get /objects/ID mem-path   (an error: memory-backend-ram)
 *   -> qom-get /objects/ID share
 *
 * then remus_dirty_open(RAMFS, mem-path, socket) (a local round trip),
 * and every step that finds something missing decides v1 with a reason
 * naming the domain, the object and the fix.
 */

/* The backend's id from the machine's memory-backend property: QEMU 10
 * answers the QOM path ("/objects/pc.ram"), a plain id is taken as is.
 * Returns 0, or -EINVAL for an empty or over-long one. */
int remus_engine_ram_backend_id(const char *prop, char *id, size_t idlen)
{
	return remus_qmp_ram_backend_id(prop, id, idlen);
}

static const char *const memback_fix =
	"for engine v2 define <memoryBacking><source type='file'/><access mode='shared'/>"
	"</memoryBacking> and run remusd ramfs on libvirt's memory_backing_dir";

static void ramfs_opened(struct remus_engine *e, int rc)
{
	char why[1536];
	struct stat st;

	if (rc == 0) {
		snprintf(why, sizeof(why), "guest RAM of %s (memory backend '%s') is %s on "
			 "remusd ramfs (%s), share=on", e->vm_name, e->ram_backend, e->ram_path,
			 e->ramfs_socket);
		v2_decided(e, true, why);
		return;
	}
	if (rc == -ECONNREFUSED || (rc == -ENOENT && stat(e->ramfs_socket, &st) < 0))
		snprintf(why, sizeof(why), "remusd ramfs not running at %s (%s); start it on "
			 "libvirt's memory_backing_dir before libvirtd and the domain %s",
			 e->ramfs_socket, strerror(-rc), e->vm_name);
	else if (rc == -EXDEV || rc == -ENOENT)
		snprintf(why, sizeof(why), "mem-path %s of %s (memory backend '%s') is not on "
			 "the remusd ramfs of %s (%s); mount that ramfs on libvirt's "
			 "memory_backing_dir and restart the domain", e->ram_path, e->vm_name,
			 e->ram_backend, e->ramfs_socket, strerror(-rc));
	else if (rc == -EBUSY)
		snprintf(why, sizeof(why), "another tracker holds %s, the RAM of %s (-EBUSY): "
			 "is another remusd protecting it?", e->ram_path, e->vm_name);
	else if (rc == -ETIMEDOUT)
		snprintf(why, sizeof(why), "remusd ramfs at %s did not answer within %d s "
			 "(attaching %s of %s); it is stuck: restart it (systemctl restart "
			 "remus-ramfs) once no guest's RAM is on it, then protect %s again",
			 e->ramfs_socket, REMUS_RAMFS_CALL_TIMEOUT_MS / 1000, e->ram_path,
			 e->vm_name, e->vm_name);
	else
		snprintf(why, sizeof(why), "the remusd ramfs at %s cannot track %s of %s: %s",
			 e->ramfs_socket, e->ram_path, e->vm_name, strerror(-rc));
	v2_decided(e, false, why);
}

/* Opens the tracker on e->ram_path: one request on the server's local
 * socket, on the loop (it answers from memory; measured in the log). */
static void ramfs_open(struct remus_engine *e)
{
	int rc;
	struct remus_dirty_opts o = { .kind = REMUS_DIRTY_RAMFS, .ram_fd = -1,
				      .ram_path = e->ram_path,
				      .ramfs_socket = e->ramfs_socket };
	struct remus_dirty *d = NULL;
	uint64_t t0 = remus_now_ns();

	rc = remus_dirty_open(&o, &d);
	remus_info(LOG, "remusd ramfs %s: tracker on %s: %s in %.1f ms", e->ramfs_socket,
		   e->ram_path, rc < 0 ? strerror(-rc) : "open",
		   (double)(remus_now_ns() - t0) / 1e6);
	if (rc == 0) {
		rc = remus_dirty_set_init(&e->dset, remus_dirty_npages(d));
		if (rc == 0)
			rc = remus_dirty_set_init(&e->dnext, remus_dirty_npages(d));
		if (rc < 0) {
			remus_dirty_set_release(&e->dset);
			remus_dirty_close(d);
			d = NULL;
		}
	}
	if (d) {
		e->cfg.dirty = d;
		e->own_dirty = true;
	}
	ramfs_opened(e, rc);
}

/* The chain of qmp.h answered (ramfs_find): a shared file goes on to the
 * tracker, anything else decides v1 with the reason and its fix.  How far
 * the chain got tells which step a failed QMP was. */
static void on_ramfs_backend(struct remus_qmp_ram_backend *b, void *opaque)
{
	struct remus_engine *e = opaque;
	char why[1536];

	if (b->rc < 0) {
		qmp_failed(e, !b->id[0] ? "qom-get /machine memory-backend"
			   : !b->mem_path[0] ? "qom-get mem-path" : "qom-get share",
			   b->rc, b->err[0] ? b->err : NULL);
		return;
	}
	if (!b->id[0]) {
		snprintf(why, sizeof(why), "guest RAM of %s is not one memory backend (machine "
			 "property memory-backend: %s; a NUMA guest's RAM is one per node, which "
			 "engine v2 does not track)", e->vm_name, b->err[0] ? b->err : "empty");
		v2_decided(e, false, why);
		return;
	}
	snprintf(e->ram_backend, sizeof(e->ram_backend), "%s", b->id);
	/* memory-backend-ram and -memfd have no mem-path: QEMU refuses the
	 * property ("Property 'memory-backend-ram.mem-path' not found"). */
	if (!b->mem_path[0]) {
		snprintf(why, sizeof(why), "guest RAM of %s is anonymous memory (memory backend "
			 "'%s' has no mem-path); %s", e->vm_name, e->ram_backend, memback_fix);
		v2_decided(e, false, why);
		return;
	}
	if (strlen(b->mem_path) >= sizeof(e->ram_path)) {
		snprintf(why, sizeof(why), "mem-path of memory backend '%s' is over %zu bytes",
			 e->ram_backend, sizeof(e->ram_path) - 1);
		v2_decided(e, false, why);
		return;
	}
	memcpy(e->ram_path, b->mem_path, strlen(b->mem_path) + 1); /* fits: checked */
	if (!b->share) {
		snprintf(why, sizeof(why), "guest RAM of %s (memory backend '%s', %s) is not "
			 "share=on: its writes stay private to QEMU (%s); for engine v2 add "
			 "<access mode='shared'/> to its <memoryBacking>", e->vm_name,
			 e->ram_backend, e->ram_path, b->err[0] ? b->err : "share false");
		v2_decided(e, false, why);
		return;
	}
	ramfs_open(e);
}

static void ramfs_find(struct remus_engine *e)
{
	int rc = remus_qmp_ram_backend_find(e->qmp, e, &e->ramfs_rb, on_ramfs_backend, e);

	if (rc < 0)
		qmp_failed(e, "qom-get", rc, remus_qmp_last_error(e->qmp));
}

/* Engine v2 runs only if QEMU's RAM really is the tracker's file: a guest
 * whose RAM is elsewhere would write pages the tracker never sees. */
static void v2_check(struct remus_engine *e)
{
	struct json_object *args;

	if (!e->cfg.dirty && *e->ramfs_socket && e->cfg.kind != REMUS_ENGINE_V1) {
		ramfs_find(e);
		return;
	}
	if (!e->cfg.dirty || e->cfg.kind == REMUS_ENGINE_V1) {
		if (e->cfg.dirty)
			snprintf(e->engine_why, sizeof(e->engine_why), "v1: asked for (--engine v1)");
		remus_info(LOG, "engine %s", e->engine_why);
		link_connect(e);
		return;
	}
	snprintf(e->v2_qom_path, sizeof(e->v2_qom_path), "/objects/%s", e->ram_backend);
	args = json_object_new_object();
	json_object_object_add(args, "path", json_object_new_string(e->v2_qom_path));
	json_object_object_add(args, "property", json_object_new_string("mem-path"));
	submit_or_fail(e, "qom-get", args, -1, on_v2_path);
}

static void on_identity_uuid(struct remus_qmp *q, int rc, struct json_object *ret,
		              const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	struct json_object *u;

	if (rc == 0 && json_object_object_get_ex(ret, "UUID", &u)) {
		const char *s = json_object_get_string(u);
		unsigned i, b;

		for (i = 0; i < 16 && *s; i++) {
			while (*s == '-')
				s++;
			if (sscanf(s, "%2x", &b) != 1)
				break;
			e->vm_uuid[i] = (uint8_t)b;
			s += 2;
		}
	}
	v2_check(e);
}

static void on_identity_name(struct remus_qmp *q, int rc, struct json_object *ret,
		              const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	struct json_object *n;

	if (rc == 0 && json_object_object_get_ex(ret, "name", &n))
		snprintf(e->vm_name, sizeof(e->vm_name), "%s", json_object_get_string(n));
	submit_or_fail(e, "query-uuid", NULL, -1, on_identity_uuid);
}

static void on_params(struct remus_qmp *q, int rc, struct json_object *ret,
		       const char *err, void *opaque)
{
	struct remus_engine *e = opaque;

	if (rc < 0) {
		qmp_failed(e, "migrate-set-parameters", rc, err);
		return;
	}
	submit_or_fail(e, "query-name", NULL, -1, on_identity_name);
}

static void on_caps(struct remus_qmp *q, int rc, struct json_object *ret,
		     const char *err, void *opaque)
{
	struct remus_engine *e = opaque;
	struct json_object *args;

	if (rc < 0) {
		qmp_failed(e, "migrate-set-capabilities (QEMU >= 8.1 is needed for "
			   "switchover-ack)", rc, err);
		return;
	}
	args = json_object_new_object();
	/* The copy into this process must never be throttled. */
	json_object_object_add(args, "max-bandwidth", json_object_new_int64(INT64_C(1) << 40));
	/* After stop, QEMU's part that migrate_cancel cannot interrupt stays
	 * small against the pause budget (controller/converge.h). */
	json_object_object_add(args, "downtime-limit", json_object_new_int64(
		remus_converge_downtime_limit_ms(e->cfg.pause_budget_ms)));
	submit_or_fail(e, "migrate-set-parameters", args, -1, on_params);
}

int remus_engine_start(struct remus_loop *loop, struct remus_qmp *qmp,
		       const struct remus_engine_config *cfg,
		       const struct remus_engine_hooks *hooks,
		       struct remus_engine **out)
{
	struct remus_engine *e;
	int rc;

	if (!cfg->standby_host || !cfg->standby_port || cfg->interval_ms == 0)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->loop = loop;
	e->qmp = qmp;
	remus_timer_init(&e->reconnect_timer, loop, on_reconnect, e);
	remus_timer_init(&e->epoch_timer, loop, on_epoch_timer, e);
	remus_timer_init(&e->poll_timer, loop, on_poll_again, e);
	remus_timer_init(&e->gate_timer, loop, on_gate_timer, e);
	remus_timer_init(&e->progress_timer, loop, on_progress_timer, e);
	remus_timer_init(&e->budget_timer, loop, on_budget, e);
	remus_timer_init(&e->idle_timer, loop, on_idle_timer, e);
	remus_timer_init(&e->drain_timer, loop, on_drain_timer, e);
	e->cfg = *cfg;
	if (!e->cfg.heartbeat_ms)
		e->cfg.heartbeat_ms = 100;
	if (!e->cfg.heartbeat_miss)
		e->cfg.heartbeat_miss = 5;
	if (!e->cfg.reconnect_ms)
		e->cfg.reconnect_ms = 1000;
	if (!e->cfg.pause_budget_ms)
		e->cfg.pause_budget_ms = REMUS_CONVERGE_BUDGET_DEFAULT_MS;
	remus_backoff_init(&e->backoff, e->cfg.reconnect_ms, REMUS_BACKOFF_CAP_MS);
	e->last_sync_ms = -1;
	if (!e->cfg.link_high_water)
		e->cfg.link_high_water = 64u << 20;
	if (hooks)
		e->hooks = *hooks;
	e->mig_fd = -1;
	remus_link_init(&e->link, loop, &(struct remus_link_config){
				.heartbeat_ms = e->cfg.heartbeat_ms,
				.heartbeat_miss = e->cfg.heartbeat_miss,
				.read_chunk = 64 * 1024 }, &link_cbs, e);
	if (cfg->tls || cfg->insecure)
		remus_link_set_tls(&e->link, cfg->tls);
	remus_repl_tx_init(&e->tx);
	remus_migstream_rewriter_init(&e->rw, true, 0, NULL, NULL);
	e->host = strdup(cfg->standby_host);
	rc = remus_dedup_new(&e->dedup);
	if (!e->host || rc < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	e->cfg.standby_host = e->host;
	snprintf(e->ram_backend, sizeof(e->ram_backend), "%s",
		 cfg->ram_backend ? cfg->ram_backend : "mem");
	e->cfg.ram_backend = e->ram_backend;
	e->cfg.kind_why = NULL; /* borrowed: used before the first loop turn only */
	if (cfg->ramfs_socket && !cfg->dirty) {
		if (strlen(cfg->ramfs_socket) >= sizeof(e->ramfs_socket)) {
			rc = -ENAMETOOLONG;
			goto fail;
		}
		snprintf(e->ramfs_socket, sizeof(e->ramfs_socket), "%s", cfg->ramfs_socket);
	}
	e->cfg.ramfs_socket = NULL; /* e->ramfs_socket: "" for none */
	snprintf(e->engine_why, sizeof(e->engine_why), "v1: %s", cfg->kind_why ? cfg->kind_why :
		 cfg->dirty ? "checking whether QEMU's RAM is the tracker's file" :
		 *e->ramfs_socket ? "finding the guest's RAM file for remusd ramfs" :
		 cfg->kind == REMUS_ENGINE_V1 ? "asked for (--engine v1)" :
		 "no dirty tracker (no --ramfs or --ram-dir)");
	remus_buf_init(&e->v2buf, 0);
	if (cfg->dirty) {
		rc = remus_dirty_set_init(&e->dset, remus_dirty_npages(cfg->dirty));
		if (rc == 0)
			rc = remus_dirty_set_init(&e->dnext, remus_dirty_npages(cfg->dirty));
		if (rc < 0)
			goto fail;
	}
	rc = engine_qmp(e, "migrate-set-capabilities", remus_migstream_caps_args(), -1, on_caps);
	if (rc < 0)
		goto fail;
	remus_info(LOG, "protecting the VM behind %s: standby %s:%u, epoch %u ms, pause "
		   "budget %u ms, heartbeat %u ms x %u", remus_qmp_path(qmp), e->host,
		   cfg->standby_port, e->cfg.interval_ms, e->cfg.pause_budget_ms,
		   e->cfg.heartbeat_ms, e->cfg.heartbeat_miss);
	*out = e;
	return 0;
fail:
	remus_engine_free(e);
	return rc;
}

int remus_engine_set_interval(struct remus_engine *e, unsigned interval_ms)
{
	if (interval_ms < 10 || interval_ms > 3600000)
		return -EINVAL;
	remus_info(LOG, "epoch interval %u ms -> %u ms", e->cfg.interval_ms, interval_ms);
	e->cfg.interval_ms = interval_ms;
	return 0;
}

static void on_param_set(struct remus_qmp *q, int rc, struct json_object *ret,
			 const char *err, void *opaque)
{
	if (rc < 0)
		remus_warn(LOG, "migrate-set-parameters downtime-limit: %s", err);
}

int remus_engine_set_pause_budget(struct remus_engine *e, unsigned budget_ms)
{
	struct json_object *args;

	if (budget_ms < 1 || budget_ms > 60000)
		return -EINVAL;
	remus_info(LOG, "pause budget %u ms -> %u ms", e->cfg.pause_budget_ms, budget_ms);
	e->cfg.pause_budget_ms = budget_ms;
	args = json_object_new_object();
	json_object_object_add(args, "downtime-limit",
			       json_object_new_int64(remus_converge_downtime_limit_ms(budget_ms)));
	if (engine_qmp(e, "migrate-set-parameters", args, -1, on_param_set) < 0)
		remus_warn(LOG, "cannot pass the pause budget on to QEMU (downtime-limit)");
	return 0;
}

void remus_engine_stop(struct remus_engine *e)
{
	e->stopping = true;
	switch (e->state) {
	case REMUS_ENGINE_CHECKPOINT:
		return; /* on_cont finishes */
	case REMUS_ENGINE_PROTECTED:
	case REMUS_ENGINE_SYNCING:
	case REMUS_ENGINE_STARTING:
		if (e->mig_fd >= 0)
			cancel_migration(e);
		/* fall through */
	case REMUS_ENGINE_UNPROTECTED:
		finish(e, REMUS_ENGINE_STOPPED, 0, "unprotected on request");
		return;
	default:
		return;
	}
}

static void on_ignored(struct remus_qmp *q, int rc, struct json_object *ret,
		       const char *err, void *opaque)
{
	/* not called: finish() cancels the engine's replies */
}

/*
 * An illegal state change in a release build: the engine lost track of
 * where it is, so it stops protecting, the way remus_engine_stop() does
 * but without waiting for a chain that may never end.  The guest must
 * not stay stopped: in CHECKPOINT we stopped it, so it is resumed here
 * (after cancelling the migration, if it still runs).  finish() tells
 * the standby CLOSE, so it does not take over.
 */
static void stop_on_internal_error(struct remus_engine *e, const char *msg)
{
	e->stopping = true;
	if (e->mig_fd >= 0)
		engine_qmp(e, "migrate_cancel", NULL, -1, on_ignored);
	if (e->state == REMUS_ENGINE_CHECKPOINT)
		engine_qmp(e, "cont", NULL, -1, on_ignored);
	finish(e, REMUS_ENGINE_STOPPED, -EPROTO, msg);
}

/* Stops everything that could call back into @e.  Idempotent. */
static void teardown(struct remus_engine *e)
{
	link_close(e);
	mig_close(e);
	remus_timer_disarm(&e->reconnect_timer);
	remus_timer_disarm(&e->idle_timer);
	remus_timer_disarm(&e->drain_timer);
}

/* Nothing of @e runs after this: replies still to come are dropped. */
void remus_engine_free(struct remus_engine *e)
{
	if (!e)
		return;
	remus_qmp_cancel_owner(e->qmp, e);
	teardown(e);
	remus_link_release(&e->link);
	remus_repl_tx_release(&e->tx);
	remus_dedup_free(e->dedup);
	remus_dirty_set_release(&e->dset);
	remus_dirty_set_release(&e->dnext);
	remus_buf_release(&e->v2buf);
	if (e->own_dirty)
		remus_dirty_close(e->cfg.dirty);
	free(e->host);
	free(e);
}

enum remus_engine_state remus_engine_get_state(const struct remus_engine *e)
{
	return e->state;
}

static void add_double(struct json_object *o, const char *key, double v)
{
	json_object_object_add(o, key, json_object_new_double(v));
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

/* Protection, the initial sync's progress, the gate and the budget. */
static void add_pace_status(const struct remus_engine *e, struct json_object *o)
{
	bool syncing = e->state == REMUS_ENGINE_SYNCING ||
		       (e->state == REMUS_ENGINE_CHECKPOINT && !e->session_committed);
	uint64_t now = remus_now_ns();
	struct json_object *p;

	json_object_object_add(o, "protected", json_object_new_boolean(
		e->state == REMUS_ENGINE_PROTECTED ||
		(e->state == REMUS_ENGINE_CHECKPOINT && e->session_committed)));
	add_u64(o, "pause_budget_ms", e->cfg.pause_budget_ms);
	add_double(o, "max_pause_ms", e->max_pause_ms);
	add_double(o, "last_epoch_ms", e->last_epoch_ms);
	add_u64(o, "epochs_stretched", e->stretched);
	add_u64(o, "epochs_abandoned", e->abandoned);
	json_object_object_add(o, "qemu_migration",
			       json_object_new_string(*e->mig_status ? e->mig_status : "unknown"));
	json_object_object_add(o, "last_initial_sync_ms",
			       e->last_sync_ms >= 0 ? json_object_new_double(e->last_sync_ms) : NULL);
	p = NULL;
	if (syncing && e->t_sync_ns) {
		uint64_t done = e->mi.total > e->mi.remaining ? e->mi.total - e->mi.remaining : 0;

		p = json_object_new_object();
		add_u64(p, "epoch", e->epoch);
		add_double(p, "elapsed_ms", (double)(now - e->t_sync_ns) / 1e6);
		add_u64(p, "ram_bytes", e->mi.total);
		add_u64(p, "copied_bytes", done);
		add_u64(p, "remaining_bytes", e->mi.remaining);
		add_u64(p, "dirty_syncs", e->mi.dirty_syncs);
		add_u64(p, "local_bytes", e->cur.local_bytes);
		add_double(p, "rate_bps", e->chan_bps);
		json_object_object_add(p, "eta_s", e->eta_s >= 0 ?
				       json_object_new_double(e->eta_s) : NULL);
	}
	json_object_object_add(o, "initial_sync", p);
	p = NULL;
	if (epoch_running(e) && e->t_interval_ns) {
		p = json_object_new_object();
		add_double(p, "waited_ms", (double)(now - e->t_interval_ns) / 1e6);
		add_u64(p, "dirty_syncs", e->mi.dirty_syncs);
		add_u64(p, "remaining_bytes", e->mi.remaining);
		add_double(p, "predicted_pause_ms", e->predicted_ms);
	}
	json_object_object_add(o, "converging", p);
}

/* Why the last session failed, and when the next one is tried. */
static void add_retry_status(const struct remus_engine *e, struct json_object *o)
{
	struct json_object *f = NULL;
	uint64_t now = remus_now_ms();

	add_u64(o, "failures", e->backoff.failures);
	if (*e->last_failure) {
		f = json_object_new_object();
		json_object_object_add(f, "reason", json_object_new_string(e->last_failure));
		json_object_object_add(f, "time", json_object_new_string(e->last_failure_at));
	}
	json_object_object_add(o, "last_failure", f);
	json_object_object_add(o, "next_retry_ms", remus_timer_armed(&e->reconnect_timer) ?
			       json_object_new_int64(e->retry_at_ms > now ?
						     (int64_t)(e->retry_at_ms - now) : 0) : NULL);
}

struct json_object *remus_engine_status_json(const struct remus_engine *e)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "role", json_object_new_string("primary"));
	json_object_object_add(o, "state", json_object_new_string(remus_engine_state_name(e->state)));
	json_object_object_add(o, "standby", json_object_new_string(e->host));
	json_object_object_add(o, "disks_resyncing", json_object_new_boolean(e->gated));
	json_object_object_add(o, "standby_port", json_object_new_int(e->cfg.standby_port));
	json_object_object_add(o, "interval_ms", json_object_new_int((int)e->cfg.interval_ms));
	json_object_object_add(o, "epoch", json_object_new_int64((int64_t)e->epoch));
	json_object_object_add(o, "checkpoints", json_object_new_int64((int64_t)e->checkpoints));
	json_object_object_add(o, "sessions", json_object_new_int64((int64_t)e->sessions));
	json_object_object_add(o, "last_acked_epoch",
			       e->any_acked ? json_object_new_int64((int64_t)e->last_acked) : NULL);
	json_object_object_add(o, "pending_commits", json_object_new_int((int)e->ninflight));
	json_object_object_add(o, "last_pause_ms", json_object_new_double(e->last_pause_ms));
	json_object_object_add(o, "last_commit_ms", json_object_new_double(e->last_commit_ms));
	json_object_object_add(o, "link_queued_bytes",
			       json_object_new_int64((int64_t)remus_link_backlog(&e->link)));
	/* remusctl status: time since the standby's last word (null: no link). */
	json_object_object_add(o, "heartbeat_age_ms", remus_link_is_connected(&e->link) ?
			       json_object_new_int64((int64_t)remus_link_silence_ms(&e->link)) : NULL);
	if (*e->reason)
		json_object_object_add(o, "last_error", json_object_new_string(e->reason));
	add_pace_status(e, o);
	add_retry_status(e, o);
	json_object_object_add(o, "engine", json_object_new_string(e->v2 ? "v2" : "v1"));
	json_object_object_add(o, "engine_reason", json_object_new_string(e->engine_why));
	json_object_object_add(o, "engine_decided", json_object_new_boolean(e->engine_decided));
	add_u64(o, "v1_checkpoints", e->v1_epochs);
	add_u64(o, "v2_checkpoints", e->v2_epochs);
	if (e->cfg.dirty) {
		struct remus_dirty_stats st;
		struct json_object *t = json_object_new_object();

		remus_dirty_get_stats(e->cfg.dirty, &st);
		json_object_object_add(t, "kind", json_object_new_string(
			remus_dirty_kind_name(remus_dirty_kind(e->cfg.dirty))));
		json_object_object_add(t, "path", remus_dirty_ram_path(e->cfg.dirty) ?
				       json_object_new_string(remus_dirty_ram_path(e->cfg.dirty)) : NULL);
		add_u64(t, "collects", st.collects);
		add_u64(t, "pages_reported", st.pages_reported);
		add_u64(t, "write_requests", st.write_requests);
		add_u64(t, "read_requests", st.read_requests);
		json_object_object_add(o, "dirty_tracker", t);
	}
	return o;
}
