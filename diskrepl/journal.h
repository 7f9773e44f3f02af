/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The standby's epoch journal (private header of diskrepl).
 *
 * The standby receives the primary's disk writes tagged with the epoch they
 * belong to, but may change its images only when that epoch commits: at
 * failover the images must hold exactly the last committed epoch, never
 * part of the next one.  Writes are therefore appended to a journal file,
 * and at commit the journal is made durable, then replayed onto the images.
 * The journal holds one epoch at a time, on disk, not in memory: an epoch
 * may be the initial full copy of a disk.
 *
 * File format (all integers big-endian):
 *
 *   offset 0, file header, 64 bytes, written once at creation:
 *      0  8  magic "REMUSJNL"
 *      8  4  version (1)
 *     12  4  header length (64)
 *     16 40  zero
 *     56  8  XXH3-64 of bytes 0..55
 *
 *   offset 64: the current epoch's entries, back to back.  Every entry has
 *   a 64-byte head; a WRITE record is followed by its data:
 *      0  4  tag: "JREC" record, "JCMT" commit, "JAPL" applied marker
 *      4  4  JREC: image index; else 0
 *      8  8  seq: a 64-bit value unique to this epoch in this file (random
 *            at open, +1 per epoch), so that no byte left over from an
 *            earlier epoch can pass as part of this one
 *     16  8  epoch
 *     24  8  JREC: image offset          JCMT: number of records
 *     32  8  JREC: length (< 2^32)       JCMT: bytes of records (heads + data)
 *     40  4  JREC: op (enum remus_repl_disk_op: 1 write, 2 zero,
 *            3 trim); else 0
 *     44  4  zero
 *     48  8  JCMT: XXH3-64 over all the epoch's record bytes; else 0
 *     56  8  XXH3-64 of bytes 0..55 followed by the data (if any)
 *
 *   [JREC ...] JCMT [JAPL], all with the same seq and epoch.
 *
 * Why each step is crash-safe (what a kill or power cut leaves; what
 * remus_journal_open() then does):
 *  1. append: records go to the file through a 1 MiB buffer, unsynced.  A
 *     crash leaves a prefix of the epoch's records, the last maybe torn,
 *     and no JCMT with this seq: recovery walks the records, finds no
 *     matching commit and discards them.  The images were not touched.
 *  2. commit: JCMT after the last record, then fdatasync.  Until fdatasync
 *     returns the epoch was never reported durable, and after a crash the
 *     file holds the whole epoch with a matching JCMT (recovery applies it)
 *     or it does not (torn or missing record or commit: the count, byte
 *     total or hash disagree, recovery discards it).  Either is all or
 *     nothing.
 *  3. apply: records are replayed in file order.  A crash leaves the
 *     images partly updated, but the epoch durable and not marked applied:
 *     recovery replays it from its first record.  Replay is idempotent:
 *     every op sets a range to content that does not depend on what was
 *     there, so replaying a prefix twice ends in the same bytes.
 *  4. images are flushed, then JAPL is written (unsynced).  A crash before
 *     JAPL reaches the disk makes recovery replay the epoch once more onto
 *     images that already hold it: harmless, because nothing but this
 *     journal has written them since (see remus_journal_discard()).
 *  5. reset: the next epoch takes the next seq and overwrites the file from
 *     offset 64 (truncating first when the last epoch made it large).  A
 *     crash may leave any mix of the old epoch's and the new one's pages:
 *     entries are accepted only with the seq of the entry at offset 64, so
 *     the walk either reads the old epoch whole (replayed, harmless as in
 *     4: nothing newer can have been applied, as that needs the new
 *     epoch's fdatasync, which makes its first record at offset 64 durable)
 *     or stops early and discards.
 * A discarded torn tail is logged; a committed epoch that names an image
 * or range that does not exist is an error (the journal belongs to other
 * images), never silently dropped.
 *
 * Lifecycle: open (recovers) -> { append* -> commit_durable -> apply } ...
 * -> free.  Calls are synchronous file I/O, for short local operations:
 * append costs a memory copy (a write every 1 MiB), commit one fdatasync of
 * the epoch's bytes (writeback is started every 8 MiB while appending so
 * that it is short), apply reads the epoch back in chunks of at most
 * 4 MiB, and remus_journal_apply_step() bounds the work of one call.
 */
#ifndef REMUS_DISKREPL_JOURNAL_H
#define REMUS_DISKREPL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "diskrepl/image.h"
#include "repl/repl.h" /* enum remus_repl_disk_op: a JREC's op field */

/* On-disk layout, shared with tests and the fuzz harness. */
#define REMUS_JOURNAL_MAGIC "REMUSJNL"
#define REMUS_JOURNAL_VERSION 1
#define REMUS_JOURNAL_HDR_LEN 64u
#define REMUS_JOURNAL_ENTRY_LEN 64u
#define REMUS_JOURNAL_TAG_REC 0x4a524543u     /* "JREC" */
#define REMUS_JOURNAL_TAG_COMMIT 0x4a434d54u  /* "JCMT" */
#define REMUS_JOURNAL_TAG_APPLIED 0x4a41504cu /* "JAPL" */
#define REMUS_JOURNAL_OFF_CHECK 56u           /* both heads' checksums */
#define REMUS_JOURNAL_OFF_EHASH 48u           /* JCMT: epoch hash */
#define REMUS_JOURNAL_MAX_DEFAULT (8ull << 30)

struct remus_journal;

/* Opens the journal at @path (borrowed; created if missing) for the
 * @nimages images of @images (borrowed array and images; both must
 * outlive the journal), takes an exclusive lock on it, and recovers: a
 * complete committed epoch not marked applied is replayed onto the images
 * and they are flushed; anything else after the header (an uncommitted or
 * torn epoch, an applied one) is dropped, and the file is left durably
 * empty.  *@recovered_epoch (NULL ok) is the replayed epoch or UINT64_MAX.
 * Returns 0 and the journal in *@out (owned, remus_journal_free()), or
 * -errno after logging what is wrong with which file: not a journal
 * (-EINVAL), another version (-EPROTONOSUPPORT), locked by another process
 * (-EBUSY), a committed epoch naming a missing image or range (-EINVAL),
 * I/O errors.  On failure the file and images are as recovery left them;
 * opening again retries. */
int remus_journal_open(const char *path, struct remus_image *const *images, size_t nimages,
		       struct remus_journal **out, uint64_t *recovered_epoch);

/* Largest file the journal may grow to (header included); default
 * REMUS_JOURNAL_MAX_DEFAULT.  Takes effect for the next append. */
void remus_journal_set_max_size(struct remus_journal *j, uint64_t bytes);

/* Appends one op of @epoch to the open epoch: @image < nimages, the range
 * [@off, @off + @len) inside it, @data (borrowed, @len bytes) only for
 * REMUS_REPL_DISK_WRITE (NULL otherwise).  Buffered, not synced.  Returns 0,
 * -EINVAL (bad image, range, op, or an epoch other than the open one's),
 * -EFBIG (the epoch would not fit under the size bound), -EBUSY (an epoch
 * is durable and not yet applied), or an I/O error.  Any failure poisons
 * the open epoch: it can no longer commit (the same error is returned)
 * until remus_journal_discard(), so a write that was lost can never be
 * committed as if it were there. */
int remus_journal_append(struct remus_journal *j, uint64_t epoch, uint32_t image,
			 enum remus_repl_disk_op op, uint64_t off, uint32_t len, const void *data);

/* Makes @epoch durable and applies it: commit_durable() then apply().
 * Returns 0 or -errno; see both. */
int remus_journal_commit(struct remus_journal *j, uint64_t epoch);
/* Writes the commit record and fdatasyncs the journal.  When it returns 0
 * the epoch survives any crash (recovery applies it); acknowledge it to
 * the primary after this.  An epoch without ops writes nothing and does
 * not sync.  @epoch must be the open epoch's (-EINVAL otherwise, nothing
 * changes) unless it has no ops.  Returns 0 when @epoch is already durable
 * and unapplied; -EBUSY if another one is; the poisoning error of a failed
 * append.  An I/O failure here breaks the journal: every later call
 * returns -EIO until it is freed, and reopening it recovers the epoch or
 * drops it (all or nothing). */
int remus_journal_commit_durable(struct remus_journal *j, uint64_t epoch);
/* Applies the durable epoch to the images in record order, flushes them,
 * marks the epoch applied and opens the next one (appends accepted again).
 * Returns 0, -EINVAL if no epoch is durable, or -errno from reading the
 * journal or writing the images (logged, with the file); on failure the
 * epoch stays durable and unapplied: call again, or free and reopen
 * (recovery replays it). */
int remus_journal_apply(struct remus_journal *j);
/* Same, in bounded pieces for an event loop: applies whole records until
 * about @budget bytes of ops were applied.  Returns 1 if records remain
 * (call again), 0 once the epoch is applied, flushed and marked, -errno as
 * remus_journal_apply(). */
int remus_journal_apply_step(struct remus_journal *j, uint64_t budget);

/* Drops the open epoch's records (failover, a broken link mid-epoch) and
 * clears a poisoned epoch.  The file is left durably empty (truncated and
 * synced, unless it already was), so no later recovery can replay an
 * earlier epoch: call it before the images get another writer (after
 * failover, before they are served to the new primary guest).  Returns 0,
 * -EBUSY if an epoch is durable but not applied (apply it first: it was
 * acknowledged), or an I/O error. */
int remus_journal_discard(struct remus_journal *j);

struct remus_journal_stats {
	uint64_t epochs_committed; /* made durable, empty ones included */
	uint64_t ops_applied;      /* records replayed onto images */
	uint64_t bytes_applied;    /* sum of their lengths */
	uint64_t open_ops;         /* records of the open epoch */
	uint64_t open_bytes;       /* sum of their lengths */
	double last_commit_ms;     /* commit_durable + apply of the last epoch */
	uint64_t file_bytes;       /* journal bytes the open epoch uses */
	uint64_t epochs_recovered; /* replayed at open (0 or 1) */
};
void remus_journal_get_stats(const struct remus_journal *j, struct remus_journal_stats *st);

/* Borrowed; valid until remus_journal_free(). */
const char *remus_journal_path(const struct remus_journal *j);

/* Closes the file and frees @j (NULL ok).  Applies, discards and syncs
 * nothing: what is in the file is what recovery will see. */
void remus_journal_free(struct remus_journal *j);

#endif
