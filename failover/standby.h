/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The standby role: receive checkpoints, keep a hot standby QEMU fed, and
 * take over when the primary is gone.
 *
 * The standby QEMU is started (by the caller, libvirt or a test) with
 * `-incoming unix:PATH` and the same configuration as the primary.  This
 * module connects to PATH and writes to it one never-ending precopy stream
 * made of committed epochs only (migstream/migstream.h builds the epochs'
 * bytes on the primary); the device part of the last committed epoch is
 * held back.  The QEMU's return path is read and dropped.
 *
 *   primary link:  HELLO -> check, HELLO_ACK
 *                  EPOCH_DATA/DEVICE/COMMIT_REQ -> assembler (repl/repl.h)
 *                  complete, verified epoch N -> COMMIT_ACK(N), then its data
 *                  goes to the standby QEMU and its device part is kept
 *
 *   failover (heartbeats missed, link closed without CLOSE, or asked):
 *     stop taking epochs, drop the uncommitted one, run the fence command,
 *     write END(ram) + last committed device part + empty vmdescription,
 *     wait for the incoming migration to complete, cont, announce-self,
 *     run the activation hook, report the timeline.
 *
 * A link that ends with CLOSE (the primary unprotects, or gave up on this
 * session) ends the session without failover.  The standby QEMU keeps the
 * stream: a primary that connects again is told (HELLO_ACK with RESUME)
 * to continue it with a full epoch after the last one in it, so
 * protection resumes without restarting the standby QEMU.  Everything
 * runs on the caller's loop.
 *
 * The first epoch.  While nothing is committed there is nothing to
 * protect (a takeover needs a committed epoch), so the data of the first
 * epoch of a new stream goes to the standby QEMU as it arrives instead of
 * being held whole (2.2 GB for a 3 GiB guest): chunk by chunk, as the
 * assembler accepts it, and only as whole records of the stream.  If the
 * session dies before the commit, the standby QEMU holds a partial
 * epoch, which is only safe to continue if it stops at a clean boundary
 * of the stream.  Whole records make every cut one: an open RAM section
 * gets its EOS and footer from the standby (QEMU loads it like a section
 * it ended itself), and before the new stream's START(ram) block list is
 * complete nothing is passed at all.  So the answer to the next HELLO is
 * always a good one: RESUME after the cut epoch (a full epoch rewrites
 * every page, the guest's device state comes with the first commit), or
 * a new stream if nothing reached QEMU.  What cannot be continued is a
 * standby QEMU whose incoming migration is over (it closed the socket, a
 * write failed): the standby then goes FAILED, refuses every HELLO with
 * the reason, and logs what the operator must do: restart the standby
 * QEMU with -incoming, then remusd standby (it does not start QEMU
 * itself, so it cannot restart it).
 *
 * Memory.  Once an epoch committed, later epochs are kept until their
 * commit in common/spill.h stores: epoch_mem bytes in memory for all of
 * them together (the epoch being assembled, committed ones still going to
 * QEMU, the device part kept for a takeover), the rest in unlinked files
 * in spill_dir, streamed to QEMU from there 1 MiB per loop iteration
 * (failover/feed.h).  The resident memory of the standby is bounded by
 *
 *     epoch_mem + REMUS_STANDBY_MEM_OVERHEAD (64 MiB):
 *       16 MiB  the link's receive buffer (one frame)
 *       32 MiB  output to the standby QEMU (REMUS_FEED_OUT_LIMIT; the
 *               link is not read above 8 MiB of it)
 *        1 MiB  the parser of a first epoch, plus the process itself
 *
 * without disks; with --disk add the disk replication's buffers and the
 * extent hashes sent at session start (16 B per 64 KiB of disk).  Status
 * reports peak_rss_kb (VmHWM) against memory_bound_kb.
 */
#ifndef REMUS_FAILOVER_STANDBY_H
#define REMUS_FAILOVER_STANDBY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct remus_loop;
struct remus_qmp;
struct remus_standby;
struct remus_buf;
struct remus_repl_msg;

/*
 * The standby's states.  Every change goes through one checked setter
 * (common/state.h); the allowed ones are
 *
 *   WAITING <--> RECEIVING      (HELLO accepted / session ended)
 *   WAITING, RECEIVING --> FAILOVER --> ACTIVE or FAILED
 *   WAITING, RECEIVING --> FAILED   (QEMU refused the capabilities, or
 *                                    an internal error)
 *
 * An illegal change aborts a debug build.  A release build logs it and,
 * in WAITING or RECEIVING, refuses further epochs: FAILED, CLOSE to the
 * primary, the reason in `status`.  During FAILOVER the takeover goes on
 * (the guest must run somewhere); ACTIVE and FAILED are final.
 * remus_standby_state_name() returns the constant's suffix in lower case
 * ("receiving"), the name `status` prints.
 */
enum remus_standby_state {
	REMUS_STANDBY_WAITING,   /* no primary connected */
	REMUS_STANDBY_RECEIVING, /* a session is running */
	REMUS_STANDBY_FAILOVER,  /* taking over */
	REMUS_STANDBY_ACTIVE,    /* the guest runs here; final */
	REMUS_STANDBY_FAILED,    /* could not take over, or refuses epochs; final */
};
#define REMUS_STANDBY_NSTATES (REMUS_STANDBY_FAILED + 1)

/* The timeline of a failover, in ms from the moment the primary was
 * declared lost (heartbeat_lost_ms ago). */
struct remus_failover_report {
	char reason[256];
	uint64_t epoch;             /* the committed epoch the guest resumed from */
	uint64_t discarded_bytes;   /* of the uncommitted epoch */
	double since_last_rx_ms;    /* last word from the primary .. declared lost */
	double fenced_ms;           /* fence command done (0 without one) */
	double tail_written_ms;     /* failover tail written to the standby QEMU */
	double loaded_ms;           /* incoming migration completed */
	double running_ms;          /* guest running: the failover time */
	int rc;                     /* 0, or why the takeover failed */
};

struct remus_tls_creds;

struct remus_standby_config {
	const char *listen_host;    /* borrowed; NULL: any address */
	uint16_t listen_port;
	const char *incoming_path;  /* borrowed: the standby QEMU's -incoming unix socket */
	const char *vm_name;        /* borrowed; NULL: accept any */
	unsigned heartbeat_ms;      /* 0: 100 */
	unsigned heartbeat_miss;    /* 0: 5 */
	bool no_auto_failover;      /* only remus_standby_failover() takes over */
	const char *fence_cmd;      /* borrowed, /bin/sh -c; must exit 0 to go on */
	const char *activate_cmd;   /* borrowed, /bin/sh -c; run after takeover */
	size_t epoch_mem;           /* bytes of epochs kept in memory; 0: default */
	const char *spill_dir;      /* borrowed: spill files; NULL: /var/tmp */
	/* TLS (tls/tls.h): only a primary that completes a handshake with
	 * these server credentials (borrowed; outlive the standby) within
	 * handshake_ms of its connect gets the session; at most
	 * max_handshakes run at once (0: the defaults).  NULL: plaintext,
	 * warned at every session when @insecure says it was meant. */
	struct remus_tls_creds *tls;
	/* The identity (remus_tls_peer_identity(): a certificate's DN) the
	 * primary must have proved; another is refused after its handshake
	 * with a REJECT and a log line, and changes nothing.  Borrowed
	 * (copied); NULL: any primary @tls trusts. */
	const char *peer_identity;
	bool insecure;
	unsigned handshake_ms;
	unsigned max_handshakes;
};

/* The default of epoch_mem (remusd standby --epoch-mem). */
#define REMUS_STANDBY_EPOCH_MEM_DEFAULT ((size_t)256 << 20)
/* What the standby's resident memory may exceed epoch_mem by (see the
 * bound above): the link's frame buffer, the feed's output buffer and
 * parser, and the process itself. */
#define REMUS_STANDBY_MEM_OVERHEAD ((size_t)64 << 20)

struct remus_standby_hooks {
	/* Takeover finished (state ACTIVE) or failed (FAILED); @r borrowed. */
	void (*failover_done)(void *opaque, const struct remus_failover_report *r);
	/* Disks (diskrepl/diskrepl.h), all optional.  session_open: a HELLO
	 * was accepted; append what goes before the HELLO_ACK (the disk
	 * hashes) to @out (borrowed); -errno refuses the primary.  disk_op:
	 * one EPOCH_DISK of the epoch being assembled (@m borrowed).  commit:
	 * make @epoch's disk writes durable, before the epoch reaches the
	 * standby QEMU and is acknowledged.  discard: drop the uncommitted
	 * epoch's disk writes (session lost, failover).  A failing disk_op or
	 * commit ends the session without a takeover. */
	int (*session_open)(void *opaque, struct remus_buf *out);
	int (*disk_op)(void *opaque, const struct remus_repl_msg *m);
	int (*commit)(void *opaque, uint64_t epoch);
	void (*discard)(void *opaque);
	void *opaque;
};

/*
 * Starts the standby role on @loop (borrowed) for the standby QEMU behind
 * @qmp (borrowed, READY, outlives the standby): sets its migration
 * capabilities, connects to its incoming socket, listens for the primary.
 * @cfg and @hooks are copied.  Returns 0 with *@out (owned:
 * remus_standby_free) or -errno with a logged message.
 */
int remus_standby_start(struct remus_loop *loop, struct remus_qmp *qmp,
			const struct remus_standby_config *cfg,
			const struct remus_standby_hooks *hooks,
			struct remus_standby **out);
/* Takes over now (manual failover).  @reason borrowed.  Returns 0,
 * -EALREADY if a failover ran, -ENODATA if no epoch was ever committed. */
int remus_standby_failover(struct remus_standby *s, const char *reason);
/* Frees @s (no hooks called; the standby QEMU is left as it is). */
void remus_standby_free(struct remus_standby *s);

enum remus_standby_state remus_standby_get_state(const struct remus_standby *s);
/* "waiting", "receiving", ... (static storage; "?" out of range). */
const char *remus_standby_state_name(enum remus_standby_state st);
/* Whether the standby may go from @from to @to (the table above).  Pure. */
bool remus_standby_state_transition_ok(enum remus_standby_state from,
				       enum remus_standby_state to);
/* The TCP port listened on (useful with listen_port 0). */
uint16_t remus_standby_port(const struct remus_standby *s);
/* The bound on the standby's resident memory in bytes: epoch_mem +
 * REMUS_STANDBY_MEM_OVERHEAD (without disks; see above). */
uint64_t remus_standby_memory_bound(const struct remus_standby *s);
/* Status as a JSON object (owned: json_object_put()), or NULL on ENOMEM:
 *   {"role":"standby","state":...,"listen_port":N,...,"failover":{...}}
 * with the memory figures: epoch_mem_limit, epoch_bytes_in_memory (and
 * _peak), epoch_bytes_spilled (in spill files now), epochs_direct,
 * epochs_spilled, bytes_spilled_total, memory_bound_kb, rss_kb and
 * peak_rss_kb (VmRSS and VmHWM of /proc/self/status). */
struct json_object *remus_standby_status_json(const struct remus_standby *s);

#endif
