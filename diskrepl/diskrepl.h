/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disk replication with the same epochs as memory (docs: ARCHITECTURE.md,
 * "Disk replication").  remusd serves the protected VM's disks to its QEMU
 * over NBD on unix sockets (diskrepl/nbd_server.h), so it sees every write:
 *
 * Primary role.  A write goes to the local raw image and is forwarded
 * (the forward hook: remus_engine_disk_op()) as an EPOCH_DISK of the
 * current epoch.  QEMU drains its I/O when the guest is stopped for a
 * checkpoint, so the epoch barrier is exact, and the COMMIT_REQ covers the
 * epoch's disk writes (repl/repl.h).  Without a session the write stays
 * local; the next session's resync finds it.
 *
 * Resync.  When a standby accepts a session it first sends the XXH3-128
 * hash of every extent of its images (DISK_HASHES).  The primary hashes
 * its own extents and sends those that differ (as WRITEs, or ZEROes for
 * extents of zeros) in the session's first epoch, before that epoch's
 * migration starts; the guest keeps running and its writes are forwarded
 * as usual, in link order after any resync data they overwrite.  A fresh,
 * sparse standby image thus receives only the non-zero extents, and a
 * standby that held an earlier copy (a restarted standby, or the old
 * primary after a failover) only what changed: the comparison is the
 * dirty-extent bitmap, computed from the images themselves, so it is
 * right whatever happened to either side while they were apart.
 *
 * Standby role.  Each epoch's disk operations go to a journal
 * (diskrepl/journal.h) and reach the standby image only when the epoch
 * commits: the journal is made durable before the COMMIT_ACK, then
 * applied; a standby killed while applying redoes the epoch when it
 * starts again, never leaving half an epoch in the image.  At failover the
 * uncommitted epoch is discarded, and the same NBD server goes on serving
 * the image, now to the guest running here.
 *
 * Nothing here blocks on the network; image and journal I/O is local and
 * synchronous, bounded per call (resync hashing proceeds in slices on the
 * loop).  Not thread-safe.
 */
#ifndef REMUS_DISKREPL_DISKREPL_H
#define REMUS_DISKREPL_DISKREPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repl/repl.h" /* enum remus_repl_disk_op */

struct json_object;
struct remus_loop;
struct remus_buf;
struct remus_diskrepl;

struct remus_diskrepl_disk {
	const char *name;   /* NBD export name; also the disk's name on the link */
	const char *image;  /* raw image file */
	const char *socket; /* unix socket QEMU connects to */
};

struct remus_diskrepl_config {
	const struct remus_diskrepl_disk *disks; /* borrowed, copied */
	size_t ndisks;
	bool standby;          /* role */
	const char *journal;   /* standby: journal file; NULL: "<first image>.journal" */
	uint32_t extent_size;  /* resync granularity; 0: 64 KiB */
	/* Primary: a standby image that does not exist is created sparse on
	 * the standby; here: create a missing image of this size (0: refuse). */
	uint64_t create_size;
};

/* Primary: replicate one operation (@data borrowed, @len bytes for a
 * WRITE, NULL otherwise).  0, -ENOTCONN (no session: local only) or
 * another -errno (the session is being given up). */
typedef int remus_diskrepl_forward_cb(void *opaque, uint16_t disk, enum remus_repl_disk_op op,
				      uint64_t offset, uint32_t len, const void *data);
/* Primary: bytes queued on the link (resync pauses above a high water). */
typedef size_t remus_diskrepl_backlog_cb(void *opaque);
/* Resync finished: 0, or -errno with @why (borrowed). */
typedef void remus_diskrepl_done_cb(void *opaque, int rc, const char *why);

/*
 * Opens the images (and, standby, the journal, recovering a committed
 * epoch that was not fully applied) and starts serving each on its
 * socket.  Returns 0 with *@out (owned: remus_diskrepl_free) or -errno,
 * having logged which disk and why.
 */
int remus_diskrepl_new(struct remus_loop *loop, const struct remus_diskrepl_config *cfg,
		       struct remus_diskrepl **out);
/* Stops serving, closes everything.  NULL ok. */
void remus_diskrepl_free(struct remus_diskrepl *dr);

/* ---- primary ---- */
void remus_diskrepl_set_forward(struct remus_diskrepl *dr, remus_diskrepl_forward_cb *fn,
				remus_diskrepl_backlog_cb *backlog, void *opaque);
/* A DISK_HASHES or DISK_HASHES_END from the standby (before its
 * HELLO_ACK).  0 or -errno (logged: which disk, what differs). */
int remus_diskrepl_hashes_msg(struct remus_diskrepl *dr, const struct remus_repl_msg *m);
/* Starts the resync of a new session: returns -EINPROGRESS and calls
 * @done later, or -errno at once (no hashes from the standby, ...). */
int remus_diskrepl_resync_start(struct remus_diskrepl *dr, remus_diskrepl_done_cb *done,
				void *opaque);
/* The session ended: stop a running resync (no callback), forget the
 * standby's hashes. */
void remus_diskrepl_session_end(struct remus_diskrepl *dr);

/* The role switch after a failover: this standby's guest runs here now
 * and is to be protected from here.  Drops the uncommitted epoch, closes
 * the journal (applied by then), and forwards writes from now on.  0 or
 * -errno; a primary returns 0. */
int remus_diskrepl_become_primary(struct remus_diskrepl *dr);

/* ---- standby ---- */
/* Appends DISK_HASHES for every disk and DISK_HASHES_END to @out. */
int remus_diskrepl_put_hashes(struct remus_diskrepl *dr, struct remus_buf *out);
/* Journals one EPOCH_DISK of @m->seq (assembler-checked).  0 or -errno. */
int remus_diskrepl_standby_op(struct remus_diskrepl *dr, const struct remus_repl_msg *m);
/* Makes @epoch's disk writes durable and applies them (before its
 * COMMIT_ACK).  0 or -errno (the epoch must not be acknowledged). */
int remus_diskrepl_standby_commit(struct remus_diskrepl *dr, uint64_t epoch);
/* Drops the uncommitted epoch's writes (session lost, failover). */
void remus_diskrepl_standby_discard(struct remus_diskrepl *dr);

/* Status as a JSON array, one object per disk (owned: json_object_put()),
 * or NULL on ENOMEM. */
struct json_object *remus_diskrepl_status_json(const struct remus_diskrepl *dr);

#endif
