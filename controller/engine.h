/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The epoch engine, primary role (engine v1 of docs/ARCHITECTURE.md).
 *
 * Each epoch is one live migration of the protected QEMU into this process
 * over a socketpair (QMP getfd + migrate uri=fd:...), with switchover-ack
 * on and the ack never sent, so QEMU streams pages while the guest runs.
 * At the interval:
 *
 *   PROTECTED --timer--> query-migrate every 25 ms until the migration has
 *   converged (controller/converge.h) --> stop --> send RP SHUT, read to
 *   EOF --> query-migrate until completed --> barrier hooks (netbuffer,
 *   disk) --> COMMIT_REQ to the standby --> cont --> next epoch's
 *   migration (PROTECTED)
 *
 * Converged: QEMU's first pass over the guest's RAM is done and what
 * remains fits half the pause budget at the channel's measured rate, so
 * a big guest is never stopped in the middle of a pass; an epoch lasts
 * at least its interval and as long as the copy needs (stretched epochs
 * are counted).  A session's first epochs run in SYNCING: the standby
 * holds nothing yet, the guest runs UNPROTECTED, progress (bytes, rate,
 * ETA) is logged every second; the first COMMIT_ACK makes it PROTECTED.
 *
 * The pause budget bounds every stop: if the checkpoint has not completed
 * remus_converge_cancel_at_ms(budget) after `stop`, the migration is
 * cancelled, the guest is resumed as soon as QEMU shows the migration
 * ended, and the epoch is abandoned: the session ends with a CLOSE that
 * says so (the standby drops the partial epoch and does not take over)
 * and the next session starts with a full epoch.  No migration is started
 * before QEMU shows the previous one ended (none, completed, cancelled,
 * failed), cancelling it first if needed.
 *
 * The stream goes through migstream/migstream.h: framed, rewritten for
 * the standby's never-ending stream, pages the standby already holds
 * dropped by controller/dedup.h, and sent on the replication link
 * (repl/repl.h) while the epoch runs.  The standby acknowledges a
 * complete epoch with COMMIT_ACK; only then is the commit hook (release
 * the epoch's packets) called and the epoch's page hashes made the
 * standby's.  The guest does not wait for the ack (Remus pipelining).
 *
 * Losing the standby (link error, CLOSE, heartbeats missed, an abandoned
 * epoch) puts the engine in UNPROTECTED: the running migration is
 * cancelled, the guest keeps running, the lost hook says what to do with
 * held output, and the engine reconnects after --reconnect ms, doubled
 * for each further session in a row that ends without a commit, up to
 * 30 s (controller/backoff.h); a reconnected standby gets a full epoch
 * (nothing is assumed about what it holds).
 *
 * Engine v2 (issue 13; docs/ARCHITECTURE.md "Engine v2"), when the
 * config gives a dirty tracker (dirty/dirty.h) whose file is the guest's
 * RAM (QEMU: -object memory-backend-file,id=ID,mem-path=FILE,share=on
 * -machine memory-backend=ID; checked at start with qom-get): a session's
 * first epoch is a v1 epoch as above (the initial sync, with the gate and
 * the budget), with x-ignore-shared off; at its checkpoint, guest
 * stopped, the tracker is collected and its set dropped, so it starts
 * tracking from that checkpoint.  Every later epoch of the session is a
 * v2 epoch, with x-ignore-shared on:
 *
 *   PROTECTED --interval--> stop --> collect (the pages written since the
 *   last checkpoint, content from the tracker's copy) --> getfd + migrate
 *   (device state + non-shared blocks only) --> RP SHUT, read to EOF,
 *   compose (controller/v2stream.h: the v1 stream of this checkpoint)
 *   --> query-migrate until completed --> barrier --> COMMIT_REQ --> cont
 *
 * so its work follows the pages the guest changed, not its RAM.  The
 * standby gets the same stream as from v1 (no x-ignore-shared in it) and
 * is unchanged; its QEMU needs a RAM block of the same id, on any
 * backend.  A collect that fails, or a v2 stream QEMU sent that cannot be
 * composed, abandons the checkpoint and puts the engine back to v1 for
 * good (status: engine, engine_reason); a v2 checkpoint over its pause
 * budget is abandoned as in v1 and v2 goes on (its stream, cut by our
 * migrate_cancel, says nothing about v2).  The
 * collect runs on the loop (1-30 ms measured for 4-64 MiB dirty): not yet
 * on a thread.  From the moment v2 is chosen, the engine also collects
 * every 50 ms while the guest runs (a drain: in epochs, between them and
 * between sessions), so that the collect in the pause covers only what was
 * written since the last one: a guest filling its RAM at ~160 MiB/s
 * otherwise costs a collect over the pause budget, and after a full epoch
 * of seconds one that blocks the loop for seconds.  Drains slow down (to
 * one per 800 ms at most) while the pages they write back are written
 * again before the checkpoint, which costs a guest that rewrites its
 * working set a fault per page per drain for nothing, and speed up again
 * when they are not, or when the collect in the pause took over a third
 * of the pause budget (engine.c, drain_adapt).
 *
 * Everything runs on the caller's event loop; nothing blocks but the
 * tracker's collect in engine v2.
 */
#ifndef REMUS_CONTROLLER_ENGINE_H
#define REMUS_CONTROLLER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repl/repl.h" /* enum remus_repl_disk_op */

struct json_object;
struct remus_loop;
struct remus_qmp;
struct remus_engine;

/*
 * The engine's states.  Every change goes through one checked setter
 * (common/state.h): the allowed ones are
 *
 *   STARTING    -> SYNCING (a session's first migrate answered), UNPROTECTED
 *   SYNCING     -> CHECKPOINT (the migration converged), PROTECTED (the
 *                  session's first commit acknowledged), UNPROTECTED
 *   PROTECTED   -> CHECKPOINT, UNPROTECTED
 *   CHECKPOINT  -> PROTECTED (guest resumed, the session has a commit),
 *                  SYNCING (resumed, no commit yet), UNPROTECTED (resumed,
 *                  the standby gone)
 *   UNPROTECTED -> SYNCING (a new session's first migrate), UNPROTECTED
 *
 * and every non-final state -> FAILED or STOPPED.  An illegal change
 * aborts a debug build; a release build logs it and stops protection
 * (cont the guest if we stopped it, CLOSE to the standby, STOPPED with
 * rc -EPROTO through the finished hook).  remus_engine_state_name()
 * returns the constant's suffix in lower case ("protected"), the name
 * `status` prints.
 */
enum remus_engine_state {
	REMUS_ENGINE_STARTING,    /* capabilities, first migration */
	REMUS_ENGINE_SYNCING,     /* a session's epochs before its first commit:
				   * migration streaming, guest running UNPROTECTED */
	REMUS_ENGINE_PROTECTED,   /* standby in session, migration streaming, guest running */
	REMUS_ENGINE_CHECKPOINT,  /* guest stopped: completion, barrier, cont */
	REMUS_ENGINE_UNPROTECTED, /* no standby: guest runs, reconnecting */
	REMUS_ENGINE_FAILED,      /* the primary QEMU is gone; final */
	REMUS_ENGINE_STOPPED,     /* remus_engine_stop() finished; final */
};
#define REMUS_ENGINE_NSTATES (REMUS_ENGINE_STOPPED + 1)

/* What one checkpoint cost; reported through the epoch hook. */
struct remus_epoch_metrics {
	uint64_t epoch;
	double pause_ms;          /* stop sent .. cont answered */
	double complete_ms;       /* stop sent .. migration completed */
	uint64_t local_bytes;     /* bytes QEMU streamed to us this epoch */
	uint64_t sent_bytes;      /* bytes of this epoch put on the link */
	uint64_t device_bytes;    /* device part of the checkpoint */
	uint64_t pages_seen;      /* page records QEMU sent */
	uint64_t pages_changed;   /* page records forwarded (content changed) */
	uint64_t zero_seen, zero_changed;
	double commit_ms;         /* COMMIT_REQ queued .. COMMIT_ACK; -1 until acked */
	uint64_t disk_ops;        /* disk writes/zeroes/trims of the epoch */
	uint64_t disk_bytes;      /* bytes written by them */
	uint64_t link_backlog;    /* bytes still queued for the standby when the
				   * COMMIT_REQ was queued: the replication lag */
	double epoch_ms;          /* migration started .. stop sent: the real
				   * length of the epoch */
	double cycle_ms;          /* the previous checkpoint's stop .. this
				   * one's: the guest's run between two
				   * checkpoints plus the previous pause, what
				   * a client waits per epoch; 0 for a
				   * session's first checkpoint */
	double converge_wait_ms;  /* interval over .. stop sent: how long the
				   * convergence gate held the stop back */
	double predicted_pause_ms;/* what the gate expected the pause to be */
	unsigned pause_budget_ms; /* the budget this checkpoint ran under */
	bool abandoned;           /* the checkpoint was not committed (pause
				   * budget, migration failed, standby lost):
				   * reported once, at cont, commit_ms -1 */
	bool v2;                  /* a v2 epoch: pages from the tracker */
	uint64_t dirty_pages;     /* v2: pages the tracker reported */
	double collect_ms;        /* v2: the tracker's collect, in the pause */
	unsigned drains;          /* engine v2: collects while the guest ran, */
	uint64_t drain_pages;     /* ... the pages they wrote back (summed) */
	double drain_ms;          /* ... and their time (the loop's, not the
				   * guest's: it runs meanwhile) */
	unsigned drain_every_ms;  /* engine v2: the drain interval from this
				   * checkpoint on (engine.c, drain_adapt) */
};

struct remus_repl_msg;

struct remus_engine_hooks {
	/* Guest stopped, migration complete: close epoch @epoch's output
	 * (netbuffer barrier) and disk epoch.  Returns 0 or -errno (the epoch
	 * is then not committed and protection stops). */
	int (*barrier)(void *opaque, uint64_t epoch);
	/* The standby acknowledged @epoch: release its output. */
	void (*commit)(void *opaque, uint64_t epoch);
	/* The standby is gone; @reason borrowed.  Held output: per policy. */
	void (*standby_lost)(void *opaque, const char *reason);
	/* Metrics of each checkpoint, once at cont and again when acked
	 * (m->commit_ms >= 0); an abandoned one only at cont (m->abandoned).
	 * @m borrowed. */
	void (*epoch_done)(void *opaque, const struct remus_epoch_metrics *m);
	/* The standby accepted a session (HELLO_ACK); its first epoch is
	 * @first_epoch.  Output is to be held from now on.  Return 0 to start
	 * the epoch at once, -EINPROGRESS to start it when the owner calls
	 * remus_engine_session_ready() (an initial disk sync runs first), or
	 * another -errno to give the session up. */
	int (*session_start)(void *opaque, uint64_t first_epoch);
	/* A message the engine does not handle itself (the standby's
	 * DISK_HASHES, DISK_HASHES_END), @m borrowed for the call.  Returns 0,
	 * or -errno to give the session up. */
	int (*link_msg)(void *opaque, const struct remus_repl_msg *m);
	/* The engine reached FAILED or STOPPED; @reason borrowed.  STOPPED
	 * with @rc -EPROTO: an internal error (illegal state change) stopped
	 * protection; the guest runs unprotected. */
	void (*finished)(void *opaque, enum remus_engine_state state, int rc,
			 const char *reason);
	void *opaque;
};

struct remus_tls_creds;
struct remus_dirty;

/* Which engine runs epochs (status "engine"). */
enum remus_engine_kind {
	REMUS_ENGINE_AUTO, /* v2 if the tracker is QEMU's RAM, else v1 */
	REMUS_ENGINE_V1,
	REMUS_ENGINE_V2,   /* v2 or refuse to start */
};

struct remus_engine_config {
	const char *standby_host; /* borrowed; TCP host of the standby remusd */
	uint16_t standby_port;
	unsigned interval_ms;     /* epoch length; changeable at runtime */
	unsigned heartbeat_ms;    /* 0: 100 */
	unsigned heartbeat_miss;  /* beats missed before the standby is lost; 0: 5 */
	unsigned reconnect_ms;    /* first retry delay, doubled per failed
				   * session up to 30 s; 0: 1000 */
	unsigned pause_budget_ms; /* longest pause of the guest; changeable at
				   * runtime; 0: 300 */
	bool dedup;               /* forward only pages whose content changed */
	size_t link_high_water;   /* pause reading QEMU above this; 0: 64 MiB */
	/* TLS client credentials (tls/tls.h; borrowed, outlive the engine):
	 * every session authenticates the standby, by its certificate's
	 * name = standby_host unless the credentials name it.  NULL:
	 * plaintext, warned at every session when @insecure says it was
	 * meant. */
	struct remus_tls_creds *tls;
	bool insecure;
	/* Engine v2: the dirty tracker serving the guest's RAM file
	 * (borrowed, outlives the engine; NULL: v1 only), the memory
	 * backend's id (= its RAM block's name; NULL: "mem"), which engine
	 * is asked for, and why the daemon chose what it passes (borrowed,
	 * copied; shown by status when v1 runs). */
	struct remus_dirty *dirty;
	const char *ram_backend;
	enum remus_engine_kind kind;
	const char *kind_why;
	/* Engine v2 on a `remusd ramfs` server (dirty/dirty.h RAMFS), used
	 * when @dirty is NULL and @kind is not V1: at start the engine finds
	 * the guest's main RAM backend from QMP (qom-get /machine
	 * memory-backend, then the backend's mem-path and share; @ram_backend
	 * is ignored) and, for a shared file, opens a tracker on it through
	 * this control socket.  The engine owns that tracker and closes it in
	 * remus_engine_free() (closing never affects the guest).  Anything
	 * missing (anonymous RAM, share=off, no server, a file on another
	 * mount) leaves v1 with a reason naming the object and the fix (AUTO)
	 * or fails the start (V2).  NULL: no ramfs.  Borrowed, copied. */
	const char *ramfs_socket;
};

/*
 * Starts protecting the QEMU behind @qmp (borrowed, READY; must outlive
 * the engine) on @loop (borrowed).  @cfg and @hooks are copied (strings
 * too).  Returns 0 with the engine in *@out (owned: remus_engine_free), or
 * -errno; progress and failures are then reported through the hooks.
 */
int remus_engine_start(struct remus_loop *loop, struct remus_qmp *qmp,
		       const struct remus_engine_config *cfg,
		       const struct remus_engine_hooks *hooks,
		       struct remus_engine **out);
/* The session_start hook's work is done: @rc 0 starts the first epoch,
 * -errno gives the session up with @why (borrowed) as the reason. */
void remus_engine_session_ready(struct remus_engine *e, int rc, const char *why);
/* Sends a disk operation (repl/repl.h EPOCH_DISK; @data borrowed, @len
 * bytes for a WRITE) as part of the current epoch.  Returns 0; -ENOTCONN
 * when there is no session (the write stays local: the next session's
 * resync finds it); other -errno when it could not be queued (the session
 * is then given up). */
int remus_engine_disk_op(struct remus_engine *e, uint16_t disk, enum remus_repl_disk_op op,
			 uint64_t offset, uint32_t len, const void *data);
/* Bytes queued for the standby and not yet written to the socket. */
size_t remus_engine_link_backlog(const struct remus_engine *e);
/* Changes the epoch interval from the next epoch on.  0 or -EINVAL. */
int remus_engine_set_interval(struct remus_engine *e, unsigned interval_ms);
/* Changes the pause budget (1..60000 ms) from the next checkpoint on.  0
 * or -EINVAL. */
int remus_engine_set_pause_budget(struct remus_engine *e, unsigned budget_ms);
/* Stops protecting: cancels the migration, resumes the guest if we had
 * stopped it, closes the link (CLOSE "unprotect").  Asynchronous; the
 * finished hook reports STOPPED. */
void remus_engine_stop(struct remus_engine *e);
/* Frees @e immediately (no hooks called).  NULL is fine. */
void remus_engine_free(struct remus_engine *e);

enum remus_engine_state remus_engine_get_state(const struct remus_engine *e);
/* "starting", "protected", ... (static storage; "?" out of range). */
const char *remus_engine_state_name(enum remus_engine_state s);
/* Whether the engine may go from @from to @to (the table above).  Pure. */
bool remus_engine_state_transition_ok(enum remus_engine_state from,
				      enum remus_engine_state to);
/* The memory backend's id from QEMU's answer to qom-get /machine
 * memory-backend (@prop borrowed: "/objects/ID" as QEMU 10 answers, or a
 * plain "ID"), into @id (@idlen bytes).  Pure.  Returns 0, or -EINVAL
 * for NULL, an empty value (a NUMA guest's machine has none), another
 * path or one that does not fit. */
int remus_engine_ram_backend_id(const char *prop, char *id, size_t idlen);
/* Status as a JSON object (owned: json_object_put()), or NULL on ENOMEM:
 *   {"role":"primary","state":...,"standby":HOST,"epoch":N,
 *    "protected":BOOL,"pause_budget_ms":N,"initial_sync":{...}|null,
 *    "failures":N,"last_failure":{"reason":...,"time":ISO}|null,
 *    "next_retry_ms":N|null,"engine":"v1"|"v2","engine_reason":...,
 *    "engine_decided":BOOL (false: v1 while QEMU's RAM is checked),...} */
struct json_object *remus_engine_status_json(const struct remus_engine *e);

#endif
