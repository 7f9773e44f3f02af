// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The standby's epoch journal (format and crash-safety argument in
 * journal.h).
 *
 * One walker, visit(), reads and checks an entry; recovery uses it to find
 * a committed epoch and then to replay it, and apply uses it to replay the
 * epoch just made durable, so the code that runs after a crash is the code
 * that runs every epoch.  A record is applied only after its checksum over
 * head and data was verified: a record that fits the 4 MiB read window is
 * verified and written from the window; a larger one is streamed twice.
 */
#include "diskrepl/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/log.h"
#include "common/wire.h"
#include "diskrepl/fileio.h"

#define LOG "diskrepl"
#define WBUF_LEN (1u << 20)
#define RBUF_LEN (4u << 20)
/* Start writeback of appended bytes every so often, so that the commit's
 * fdatasync finds little left to write. */
#define WRITEBACK_EVERY (8ull << 20)
/* After applying an epoch larger than this the file is truncated instead
 * of overwritten in place, so a one-off initial copy does not keep
 * gigabytes allocated. */
#define SHRINK_ABOVE (64ull << 20)

#define HDR REMUS_JOURNAL_HDR_LEN
#define ENT REMUS_JOURNAL_ENTRY_LEN
/* A JREC stores the op as its enum value: the file format depends on it. */
_Static_assert(REMUS_REPL_DISK_WRITE == 1 && REMUS_REPL_DISK_ZERO == 2 &&
	       REMUS_REPL_DISK_TRIM == 3, "journal JREC op values are on disk");

enum jstate {
	J_OPEN,    /* accepting appends to the open epoch */
	J_DURABLE, /* an epoch is committed and durable, not yet applied */
	J_BROKEN,  /* a commit failed midway: the file's state is unknown */
};

struct entry {
	uint32_t tag, image, op;
	uint64_t seq, epoch, a, b, ehash;
	bool target_ok; /* JREC: image and range exist */
};

struct remus_journal {
	char *path;                        /* owned */
	int fd;                            /* owned, flock()ed */
	struct remus_image *const *images; /* borrowed array of borrowed images */
	size_t nimages;
	uint64_t max_size;
	enum jstate state;

	/* The open epoch. */
	uint64_t seq;       /* of its entries */
	uint64_t epoch;     /* valid when nrec > 0 */
	uint64_t nrec;      /* records appended */
	uint64_t rec_bytes; /* their bytes in the file */
	uint64_t op_bytes;  /* sum of their lengths */
	int poison;         /* 0 or the error of a failed append */
	XXH3_state_t *rec_hash;   /* owned; one entry's check */
	XXH3_state_t *epoch_hash; /* owned; the open epoch's records */

	/* Appending: [wbuf_off, wbuf_off + wlen) is buffered, tail is the end. */
	uint8_t *wbuf; /* owned, WBUF_LEN */
	size_t wlen;
	uint64_t wbuf_off;
	uint64_t tail;
	uint64_t writeback_to; /* writeback started up to here */
	bool file_dirty;       /* entries may exist beyond the header */

	/* The durable epoch (J_DURABLE). */
	bool c_empty; /* no ops: nothing in the file */
	uint64_t c_epoch, c_seq, c_off, c_nrec, c_op_bytes;
	uint64_t apply_pos; /* next record to apply */
	double c_ms;        /* time spent on it so far */

	/* Read window: [roff, roff + rlen) of the file in rbuf. */
	uint8_t *rbuf; /* owned, RBUF_LEN */
	uint64_t roff;
	size_t rlen;

	struct remus_journal_stats st; /* open_* filled in on demand */
	char why[320]; /* an open error's detail */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int sync_fd(int fd)
{
	while (fdatasync(fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* ---- entries ---- */

static void put_head(uint8_t h[ENT], uint32_t tag, uint32_t image, uint64_t seq,
		     uint64_t epoch, uint64_t a, uint64_t b, uint32_t op, uint64_t ehash)
{
	memset(h, 0, ENT);
	remus_put_be32(h + 0, tag);
	remus_put_be32(h + 4, image);
	remus_put_be64(h + 8, seq);
	remus_put_be64(h + 16, epoch);
	remus_put_be64(h + 24, a);
	remus_put_be64(h + 32, b);
	remus_put_be32(h + 40, op);
	remus_put_be64(h + REMUS_JOURNAL_OFF_EHASH, ehash);
}

/* Parses a head's fields; false if it cannot be an entry at all. */
static bool parse_head(const struct remus_journal *j, const uint8_t h[ENT], struct entry *e)
{
	uint64_t size;

	e->tag = remus_get_be32(h + 0);
	e->image = remus_get_be32(h + 4);
	e->seq = remus_get_be64(h + 8);
	e->epoch = remus_get_be64(h + 16);
	e->a = remus_get_be64(h + 24);
	e->b = remus_get_be64(h + 32);
	e->op = remus_get_be32(h + 40);
	e->ehash = remus_get_be64(h + REMUS_JOURNAL_OFF_EHASH);
	e->target_ok = false;
	if (remus_get_be32(h + 44) != 0)
		return false;
	switch (e->tag) {
	case REMUS_JOURNAL_TAG_REC:
		if (!remus_repl_disk_op_valid(e->op) || e->b > UINT32_MAX || e->ehash != 0)
			return false;
		if (e->image < j->nimages) {
			size = remus_image_size(j->images[e->image]);
			e->target_ok = e->a <= size && e->b <= size - e->a;
		}
		return true;
	case REMUS_JOURNAL_TAG_COMMIT:
		return e->image == 0 && e->op == 0;
	case REMUS_JOURNAL_TAG_APPLIED:
		return e->image == 0 && e->op == 0 && e->a == 0 && e->b == 0 && e->ehash == 0;
	default:
		return false;
	}
}

/* Makes [off, off + min(want, RBUF_LEN)) contiguous in the read window if
 * the file has it.  Returns the bytes available at *p (fewer than asked
 * only at end of file) or -errno. */
static ssize_t fetch(struct remus_journal *j, uint64_t off, size_t want, const uint8_t **p)
{
	ssize_t r;
	size_t avail;

	if (want > RBUF_LEN)
		want = RBUF_LEN;
	if (off < j->roff || off - j->roff > j->rlen || j->rlen - (off - j->roff) < want) {
		r = remus_pread_all(j->fd, j->rbuf, RBUF_LEN, off);
		if (r < 0)
			return r;
		j->roff = off;
		j->rlen = (size_t)r;
	}
	avail = j->rlen - (size_t)(off - j->roff);
	*p = j->rbuf + (off - j->roff);
	return (ssize_t)(avail < want ? avail : want);
}

static int apply_op(struct remus_journal *j, const struct entry *e, uint64_t at,
		    const uint8_t *data, uint32_t n)
{
	struct remus_image *im = j->images[e->image];

	switch (e->op) {
	case REMUS_REPL_DISK_WRITE:
		return remus_image_write(im, e->a + at, n, data);
	case REMUS_REPL_DISK_ZERO:
		/* Keep the blocks allocated, as the primary's guest asked for
		 * zeros, not for a discard. */
		return remus_image_zero(im, e->a, (uint32_t)e->b, false);
	default:
		return remus_image_trim(im, e->a, (uint32_t)e->b);
	}
}

/*
 * Reads the entry at @off, which must end at or before @limit, checks its
 * checksum and fills *@e.  With @eh, a record's bytes are added to that
 * epoch hash.  With @apply, a record is applied to its image once verified.
 * Returns the entry's length in the file (> 0), 0 if the bytes at @off are
 * not a valid entry (torn, corrupt, beyond @limit), or -errno (I/O error,
 * or -EINVAL: @apply on a record whose target does not exist).
 */
static int64_t visit(struct remus_journal *j, uint64_t off, uint64_t limit, struct entry *e,
		     XXH3_state_t *eh, bool apply)
{
	uint64_t datalen, k;
	uint8_t head[ENT];
	const uint8_t *p;
	ssize_t n;
	int rc;

	if (off > limit || limit - off < ENT)
		return 0;
	n = fetch(j, off, ENT, &p);
	if (n < (ssize_t)ENT)
		return n < 0 ? n : 0;
	memcpy(head, p, ENT); /* the window may move while data streams */
	if (!parse_head(j, head, e))
		return 0;
	datalen = e->tag == REMUS_JOURNAL_TAG_REC && e->op == REMUS_REPL_DISK_WRITE ? e->b : 0;
	if (limit - off - ENT < datalen)
		return 0;
	if (apply && e->tag == REMUS_JOURNAL_TAG_REC && !e->target_ok)
		return -EINVAL;

	XXH3_64bits_reset(j->rec_hash);
	XXH3_64bits_update(j->rec_hash, head, REMUS_JOURNAL_OFF_CHECK);
	if (eh && e->tag == REMUS_JOURNAL_TAG_REC)
		XXH3_64bits_update(eh, head, ENT);
	if (ENT + datalen <= RBUF_LEN) {
		/* The usual case: head and data in the window at once. */
		n = fetch(j, off, ENT + datalen, &p);
		if (n < (ssize_t)(ENT + datalen))
			return n < 0 ? n : 0;
		XXH3_64bits_update(j->rec_hash, p + ENT, datalen);
		if (XXH3_64bits_digest(j->rec_hash) !=
		    remus_get_be64(head + REMUS_JOURNAL_OFF_CHECK))
			return 0;
		if (eh)
			XXH3_64bits_update(eh, p + ENT, datalen);
		if (apply && (rc = apply_op(j, e, 0, p + ENT, (uint32_t)datalen)) < 0)
			return rc;
		return (int64_t)(ENT + datalen);
	}
	/* A record larger than the window: verify it whole, then apply. */
	for (k = 0; k < datalen; k += (uint64_t)n) {
		n = fetch(j, off + ENT + k, (size_t)(datalen - k < RBUF_LEN ? datalen - k : RBUF_LEN), &p);
		if (n <= 0)
			return n < 0 ? n : 0;
		XXH3_64bits_update(j->rec_hash, p, (size_t)n);
		if (eh)
			XXH3_64bits_update(eh, p, (size_t)n);
	}
	if (XXH3_64bits_digest(j->rec_hash) != remus_get_be64(head + REMUS_JOURNAL_OFF_CHECK))
		return 0;
	for (k = 0; apply && k < datalen; k += (uint64_t)n) {
		n = fetch(j, off + ENT + k, (size_t)(datalen - k < RBUF_LEN ? datalen - k : RBUF_LEN), &p);
		if (n <= 0)
			return n < 0 ? n : -EIO;
		if ((rc = apply_op(j, e, k, p, (uint32_t)n)) < 0)
			return rc;
	}
	return (int64_t)(ENT + datalen);
}

/* Writes a whole entry head whose check covers only the head. */
static void seal_head(struct remus_journal *j, uint8_t h[ENT])
{
	XXH3_64bits_reset(j->rec_hash);
	XXH3_64bits_update(j->rec_hash, h, REMUS_JOURNAL_OFF_CHECK);
	remus_put_be64(h + REMUS_JOURNAL_OFF_CHECK, XXH3_64bits_digest(j->rec_hash));
}

/* ---- appending ---- */

static int flush_wbuf(struct remus_journal *j)
{
	int rc;

	if (j->wlen == 0)
		return 0;
	j->file_dirty = true;
	rc = remus_pwrite_all(j->fd, j->wbuf, j->wlen, j->wbuf_off);
	if (rc < 0)
		return rc;
	j->wbuf_off += j->wlen;
	j->wlen = 0;
	return 0;
}

static int jwrite(struct remus_journal *j, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	if (n > WBUF_LEN - j->wlen) {
		rc = flush_wbuf(j);
		if (rc < 0)
			return rc;
		if (n >= WBUF_LEN) { /* large data goes straight to the file */
			j->file_dirty = true;
			rc = remus_pwrite_all(j->fd, p, n, j->tail);
			if (rc < 0)
				return rc;
			j->tail += n;
			j->wbuf_off = j->tail;
			return 0;
		}
	}
	memcpy(j->wbuf + j->wlen, p, n);
	j->wlen += n;
	j->tail += n;
	return 0;
}

/* Starts an empty open epoch with a fresh seq, written from offset HDR. */
static void reset_open(struct remus_journal *j)
{
	j->seq++;
	j->nrec = j->rec_bytes = j->op_bytes = 0;
	j->wlen = 0;
	j->wbuf_off = j->tail = j->writeback_to = HDR;
	j->rlen = 0; /* the window would go stale under new appends */
	XXH3_64bits_reset(j->epoch_hash);
	j->state = J_OPEN;
}

/* Drops everything after the header, durably. */
static int truncate_durably(struct remus_journal *j)
{
	int rc;

	if (ftruncate(j->fd, HDR) < 0)
		return -errno;
	rc = sync_fd(j->fd);
	if (rc < 0)
		return rc;
	j->file_dirty = false;
	return 0;
}

static int check_append(struct remus_journal *j, uint64_t epoch, uint32_t image,
			enum remus_repl_disk_op op, uint64_t off, uint32_t len, const void *data)
{
	uint64_t size, need;

	if (!remus_repl_disk_op_valid(op)) {
		remus_warn(LOG, "journal %s: epoch %" PRIu64 ": unknown disk op %d", j->path,
			   epoch, (int)op);
		return -EINVAL;
	}
	if (image >= j->nimages) {
		remus_warn(LOG, "journal %s: epoch %" PRIu64 ": image %" PRIu32
			   " does not exist (%zu images)", j->path, epoch, image, j->nimages);
		return -EINVAL;
	}
	size = remus_image_size(j->images[image]);
	if (off > size || len > size - off || (op == REMUS_REPL_DISK_WRITE && len > 0 && !data)) {
		remus_warn(LOG, "journal %s: epoch %" PRIu64 ": %s of %" PRIu32 " bytes at %" PRIu64
			   " does not fit image %s (%" PRIu64 " bytes)", j->path, epoch,
			   remus_repl_disk_op_name(op),
			   len, off, remus_image_path(j->images[image]), size);
		return -EINVAL;
	}
	if (j->nrec > 0 && epoch != j->epoch) {
		remus_warn(LOG, "journal %s: op of epoch %" PRIu64 " while epoch %" PRIu64
			   " is open (commit or discard it first)", j->path, epoch, j->epoch);
		return -EINVAL;
	}
	/* Room for this record, the commit and the applied marker. */
	need = ENT + (op == REMUS_REPL_DISK_WRITE ? len : 0) + 2 * ENT;
	if (j->tail > j->max_size || need > j->max_size - j->tail) {
		remus_warn(LOG, "journal %s: epoch %" PRIu64 " exceeds the journal's bound of %"
			   PRIu64 " bytes; raise it or use shorter epochs", j->path, epoch,
			   j->max_size);
		return -EFBIG;
	}
	return 0;
}

int remus_journal_append(struct remus_journal *j, uint64_t epoch, uint32_t image,
			 enum remus_repl_disk_op op, uint64_t off, uint32_t len, const void *data)
{
	uint64_t datalen = op == REMUS_REPL_DISK_WRITE ? len : 0;
	uint8_t head[ENT];
	int rc;

	if (j->state == J_BROKEN)
		return -EIO;
	if (j->poison)
		return j->poison;
	if (j->state == J_DURABLE) {
		rc = -EBUSY;
		goto out;
	}
	rc = check_append(j, epoch, image, op, off, len, data);
	if (rc < 0)
		goto out;
	put_head(head, REMUS_JOURNAL_TAG_REC, image, j->seq, epoch, off, len, op, 0);
	XXH3_64bits_reset(j->rec_hash);
	XXH3_64bits_update(j->rec_hash, head, REMUS_JOURNAL_OFF_CHECK);
	XXH3_64bits_update(j->rec_hash, data, datalen);
	remus_put_be64(head + REMUS_JOURNAL_OFF_CHECK, XXH3_64bits_digest(j->rec_hash));
	if ((rc = jwrite(j, head, ENT)) < 0 || (rc = jwrite(j, data, datalen)) < 0) {
		remus_err(LOG, "journal %s: appending to epoch %" PRIu64 ": %s", j->path, epoch,
			  strerror(-rc));
		goto out;
	}
	XXH3_64bits_update(j->epoch_hash, head, ENT);
	XXH3_64bits_update(j->epoch_hash, data, datalen);
	j->epoch = epoch;
	j->nrec++;
	j->rec_bytes += ENT + datalen;
	j->op_bytes += len;
	if (j->tail - j->writeback_to >= WRITEBACK_EVERY) {
		if ((rc = flush_wbuf(j)) < 0 ||
		    (sync_file_range(j->fd, (off_t)j->writeback_to,
				     (off_t)(j->tail - j->writeback_to), SYNC_FILE_RANGE_WRITE) < 0 &&
		     (rc = -errno) < 0)) {
			remus_err(LOG, "journal %s: writing epoch %" PRIu64 ": %s", j->path, epoch,
				  strerror(-rc));
			goto out;
		}
		j->writeback_to = j->tail;
	}
	rc = 0;
out:
	if (rc < 0)
		j->poison = rc;
	return rc;
}

/* ---- committing and applying ---- */

int remus_journal_commit_durable(struct remus_journal *j, uint64_t epoch)
{
	double t0 = now_ms();
	uint8_t head[ENT];
	int rc;

	if (j->state == J_BROKEN)
		return -EIO;
	if (j->state == J_DURABLE)
		return epoch == j->c_epoch ? 0 : -EBUSY;
	if (j->poison)
		return j->poison;
	if (j->nrec == 0) {
		/* Nothing to make durable: the images already are this epoch. */
		j->c_empty = true;
		j->c_epoch = epoch;
		j->c_ms = now_ms() - t0;
		j->state = J_DURABLE;
		j->st.epochs_committed++;
		return 0;
	}
	if (epoch != j->epoch) {
		remus_warn(LOG, "journal %s: commit of epoch %" PRIu64 " while epoch %" PRIu64
			   " is open", j->path, epoch, j->epoch);
		return -EINVAL;
	}
	j->c_off = j->tail;
	put_head(head, REMUS_JOURNAL_TAG_COMMIT, 0, j->seq, epoch, j->nrec, j->rec_bytes, 0,
		 XXH3_64bits_digest(j->epoch_hash));
	seal_head(j, head);
	if ((rc = jwrite(j, head, ENT)) < 0 || (rc = flush_wbuf(j)) < 0 ||
	    (rc = sync_fd(j->fd)) < 0) {
		/* After a failed fdatasync the kernel may have dropped the dirty
		 * pages: only recovery can tell what is on disk now. */
		remus_err(LOG, "journal %s: committing epoch %" PRIu64 ": %s; the journal is "
			  "unusable until reopened (recovery keeps the epoch whole or drops it)",
			  j->path, epoch, strerror(-rc));
		j->state = J_BROKEN;
		return rc;
	}
	j->c_empty = false;
	j->c_epoch = epoch;
	j->c_seq = j->seq;
	j->c_nrec = j->nrec;
	j->c_op_bytes = j->op_bytes;
	j->apply_pos = HDR;
	j->state = J_DURABLE;
	j->st.epochs_committed++;
	j->c_ms = now_ms() - t0;
	return 0;
}

static int flush_images(struct remus_journal *j)
{
	size_t i;
	int rc;

	for (i = 0; i < j->nimages; i++) {
		rc = remus_image_flush(j->images[i]);
		if (rc < 0) {
			remus_err(LOG, "journal %s: flushing image %s: %s", j->path,
				  remus_image_path(j->images[i]), strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Images flushed: mark the epoch applied and open the next one. */
static int finish_apply(struct remus_journal *j)
{
	uint64_t used = j->c_off + 2 * ENT;
	uint8_t head[ENT];
	int rc;

	put_head(head, REMUS_JOURNAL_TAG_APPLIED, 0, j->c_seq, j->c_epoch, 0, 0, 0, 0);
	seal_head(j, head);
	rc = remus_pwrite_all(j->fd, head, ENT, j->c_off + ENT);
	if (rc < 0) {
		remus_err(LOG, "journal %s: marking epoch %" PRIu64 " applied: %s", j->path,
			  j->c_epoch, strerror(-rc));
		return rc;
	}
	j->st.ops_applied += j->c_nrec;
	j->st.bytes_applied += j->c_op_bytes;
	reset_open(j);
	/* Not synced: a crash before the truncation is durable only replays
	 * the applied epoch (step 4 in journal.h). */
	if (used > SHRINK_ABOVE && ftruncate(j->fd, HDR) < 0)
		remus_warn(LOG, "journal %s: cannot shrink after a %" PRIu64 "-byte epoch: %s",
			   j->path, used, strerror(errno));
	return 0;
}

int remus_journal_apply_step(struct remus_journal *j, uint64_t budget)
{
	double t0 = now_ms();
	uint64_t done = 0;
	struct entry e;
	int64_t n;
	int rc;

	if (j->state == J_BROKEN)
		return -EIO;
	if (j->state != J_DURABLE)
		return -EINVAL;
	if (j->c_empty) {
		j->state = J_OPEN;
		j->st.last_commit_ms = j->c_ms;
		return 0;
	}
	while (j->apply_pos < j->c_off && done < budget) {
		n = visit(j, j->apply_pos, j->c_off, &e, NULL, true);
		if (n > 0 && (e.tag != REMUS_JOURNAL_TAG_REC || e.seq != j->c_seq ||
			      e.epoch != j->c_epoch))
			n = 0;
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO;
			remus_err(LOG, "journal %s: applying epoch %" PRIu64 ", record at offset %"
				  PRIu64 ": %s", j->path, j->c_epoch, j->apply_pos,
				  n < 0 ? strerror(-rc) : "it no longer reads back as written "
				  "(the journal's storage is corrupting data)");
			goto out;
		}
		j->apply_pos += (uint64_t)n;
		done += e.b;
	}
	if (j->apply_pos < j->c_off) {
		rc = 1;
		goto out;
	}
	rc = flush_images(j);
	if (rc < 0)
		goto out;
	j->c_ms += now_ms() - t0;
	j->st.last_commit_ms = j->c_ms;
	return finish_apply(j);
out:
	if (rc < 0)
		j->apply_pos = HDR; /* a retry replays the whole epoch: idempotent */
	j->c_ms += now_ms() - t0;
	return rc;
}

int remus_journal_apply(struct remus_journal *j)
{
	int rc;

	while ((rc = remus_journal_apply_step(j, UINT64_MAX)) == 1)
		;
	return rc;
}

int remus_journal_commit(struct remus_journal *j, uint64_t epoch)
{
	int rc = remus_journal_commit_durable(j, epoch);

	return rc < 0 ? rc : remus_journal_apply(j);
}

int remus_journal_discard(struct remus_journal *j)
{
	int rc;

	if (j->state == J_BROKEN)
		return -EIO;
	if (j->state == J_DURABLE) {
		if (!j->c_empty)
			return -EBUSY;
		j->state = J_OPEN;
	}
	if (j->nrec > 0)
		remus_info(LOG, "journal %s: discarding uncommitted epoch %" PRIu64 " (%" PRIu64
			   " ops, %" PRIu64 " bytes)", j->path, j->epoch, j->nrec, j->op_bytes);
	reset_open(j);
	j->poison = 0;
	if (!j->file_dirty)
		return 0;
	rc = truncate_durably(j);
	if (rc < 0)
		remus_err(LOG, "journal %s: emptying after a discard: %s", j->path, strerror(-rc));
	return rc;
}

/* ---- open and recovery ---- */

static void make_header(uint8_t h[HDR])
{
	memset(h, 0, HDR);
	memcpy(h, REMUS_JOURNAL_MAGIC, 8);
	remus_put_be32(h + 8, REMUS_JOURNAL_VERSION);
	remus_put_be32(h + 12, HDR);
	remus_put_be64(h + 56, XXH3_64bits(h, 56));
}

/* Checks the header, or writes it to a new file (or to one whose creation
 * never got as far as a durable header).  *@why says what is wrong. */
static int check_header(struct remus_journal *j, bool created, const char **why)
{
	uint8_t want[HDR], have[HDR];
	struct stat st;
	ssize_t n;
	int rc;

	make_header(want);
	if (fstat(j->fd, &st) < 0) {
		*why = "stat";
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		return -EINVAL;
	}
	n = remus_pread_all(j->fd, have, HDR, 0);
	if (n < 0) {
		*why = "reading the header";
		return (int)n;
	}
	if (n == HDR && memcmp(have, want, HDR) == 0)
		return 0;
	/* A file that is not a journal is never overwritten: only one that
	 * is empty, all zeros or a prefix of our header (a crash while
	 * creating it) is (re)initialised. */
	if (!remus_all_zero(have, (size_t)n) && memcmp(have, want, (size_t)n) != 0) {
		if (n == HDR && memcmp(have, want, 8) == 0 &&
		    remus_get_be32(have + 8) != REMUS_JOURNAL_VERSION) {
			*why = "journal format version differs from this remusd's (1); apply or "
			       "drop it with the remusd that wrote it";
			return -EPROTONOSUPPORT;
		}
		*why = n == HDR && memcmp(have, want, 8) == 0 ?
			"header is corrupt; move the file away (its epoch is lost)" :
			"not a remus journal; move it away or choose another journal path";
		return -EINVAL;
	}
	if (!created && n > 0)
		remus_warn(LOG, "journal %s: header incomplete (a crash while creating it?); "
			   "reinitialising", j->path);
	*why = "initialising";
	if (ftruncate(j->fd, 0) < 0)
		return -errno;
	if ((rc = remus_pwrite_all(j->fd, want, HDR, 0)) < 0 || (rc = sync_fd(j->fd)) < 0 ||
	    (rc = remus_sync_parent_dir(j->path)) < 0)
		return rc;
	return 0;
}

/* Finds the epoch at offset HDR, replays it if it is committed and not
 * applied, and empties the file. */
static int recover(struct remus_journal *j, uint64_t *recovered, const char **why)
{
	uint64_t pos = HDR, nrec = 0, bytes = 0, bad = UINT64_MAX, seq = 0, epoch = 0, fsize;
	bool first = true, committed = false, applied = false;
	struct entry e;
	struct stat st;
	int64_t n;
	int rc;

	*recovered = UINT64_MAX;
	if (fstat(j->fd, &st) < 0) {
		*why = "stat";
		return -errno;
	}
	fsize = (uint64_t)st.st_size;
	XXH3_64bits_reset(j->epoch_hash);
	for (;;) {
		n = visit(j, pos, fsize, &e, j->epoch_hash, false);
		if (n < 0) {
			*why = "reading the journal";
			return (int)n;
		}
		if (n == 0)
			break;
		if (first) {
			if (e.tag == REMUS_JOURNAL_TAG_APPLIED)
				break;
			seq = e.seq;
			epoch = e.epoch;
			first = false;
		} else if (e.seq != seq || e.epoch != epoch) {
			break;
		}
		if (e.tag == REMUS_JOURNAL_TAG_REC) {
			if (!e.target_ok && bad == UINT64_MAX)
				bad = pos;
			nrec++;
			bytes += (uint64_t)n;
			pos += (uint64_t)n;
			continue;
		}
		if (e.tag == REMUS_JOURNAL_TAG_COMMIT && e.a == nrec && e.b == bytes &&
		    e.ehash == XXH3_64bits_digest(j->epoch_hash)) {
			committed = true;
			n = visit(j, pos + ENT, fsize, &e, NULL, false);
			applied = n > 0 && e.tag == REMUS_JOURNAL_TAG_APPLIED && e.seq == seq &&
				  e.epoch == epoch;
		}
		break;
	}

	if (committed && !applied) {
		if (bad != UINT64_MAX) {
			snprintf(j->why, sizeof(j->why), "committed epoch %" PRIu64 " has a record "
				 "at offset %" PRIu64 " for an image or range that does not exist "
				 "(%zu images given): it was written for other images; open it with "
				 "those, or move it away to drop the epoch", epoch, bad, j->nimages);
			*why = j->why;
			return -EINVAL;
		}
		for (pos = HDR; pos < HDR + bytes; pos += (uint64_t)n) {
			n = visit(j, pos, HDR + bytes, &e, NULL, true);
			if (n <= 0) {
				*why = n < 0 ? "replaying the committed epoch" :
					"replaying the committed epoch: a record no longer reads back "
					"as it did a moment ago";
				return n < 0 ? (int)n : -EIO;
			}
		}
		if ((rc = flush_images(j)) < 0) {
			*why = "flushing the images after replay";
			return rc;
		}
		*recovered = epoch;
		j->st.epochs_recovered = 1;
		j->st.ops_applied += nrec;
		remus_info(LOG, "journal %s: replayed committed epoch %" PRIu64 " (%" PRIu64
			   " records, %" PRIu64 " bytes) onto %zu images", j->path, epoch, nrec,
			   bytes, j->nimages);
	} else if (!first && !committed) {
		remus_info(LOG, "journal %s: dropped uncommitted epoch %" PRIu64 " (%" PRIu64
			   " whole records; file %" PRIu64 " bytes)", j->path, epoch, nrec, fsize);
	} else if (first && fsize > HDR) {
		remus_info(LOG, "journal %s: dropped %" PRIu64 " bytes holding no epoch", j->path,
			   fsize - HDR);
	}
	j->rlen = 0;
	if (fsize > HDR && (rc = truncate_durably(j)) < 0) {
		*why = "emptying the journal after recovery";
		return rc;
	}
	return 0;
}

void remus_journal_set_max_size(struct remus_journal *j, uint64_t bytes)
{
	j->max_size = bytes;
}

int remus_journal_open(const char *path, struct remus_image *const *images, size_t nimages,
		       struct remus_journal **out, uint64_t *recovered_epoch)
{
	struct remus_journal *j = NULL;
	const char *why = "open";
	bool created = false;
	uint64_t recovered;
	int rc;

	j = calloc(1, sizeof(*j));
	if (!j) {
		rc = -ENOMEM;
		goto out;
	}
	j->fd = -1;
	j->images = images;
	j->nimages = nimages;
	j->max_size = REMUS_JOURNAL_MAX_DEFAULT;
	j->path = strdup(path);
	j->wbuf = malloc(WBUF_LEN);
	j->rbuf = malloc(RBUF_LEN);
	j->rec_hash = XXH3_createState();
	j->epoch_hash = XXH3_createState();
	if (!j->path || !j->wbuf || !j->rbuf || !j->rec_hash || !j->epoch_hash) {
		rc = -ENOMEM;
		goto out;
	}
	j->fd = open(path, O_RDWR | O_CLOEXEC);
	if (j->fd < 0 && errno == ENOENT) {
		j->fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
		created = j->fd >= 0;
	}
	if (j->fd < 0) {
		rc = -errno;
		goto out;
	}
	if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		why = rc == -EBUSY ? "locked by another process (two remusd on one journal?)" :
			"lock";
		goto out;
	}
	rc = check_header(j, created, &why);
	if (rc < 0)
		goto out;
	/* Unique per open: stale entries from an earlier run cannot match. */
	if (getrandom(&j->seq, sizeof(j->seq), GRND_NONBLOCK) != sizeof(j->seq))
		j->seq = (uint64_t)now_ms() * 1000003u ^ (uint64_t)getpid() << 32;
	rc = recover(j, &recovered, &why);
	if (rc < 0)
		goto out;
	reset_open(j);
	if (recovered_epoch)
		*recovered_epoch = recovered;
	*out = j;
	j = NULL;
	rc = 0;
out:
	if (rc < 0)
		remus_err(LOG, "journal %s: %s: %s", path, why, strerror(-rc));
	if (j && created)
		unlink(path);
	remus_journal_free(j);
	return rc;
}

void remus_journal_get_stats(const struct remus_journal *j, struct remus_journal_stats *st)
{
	*st = j->st;
	st->open_ops = j->nrec;
	st->open_bytes = j->op_bytes;
	st->file_bytes = j->tail - HDR;
}

const char *remus_journal_path(const struct remus_journal *j)
{
	return j->path;
}

void remus_journal_free(struct remus_journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	XXH3_freeState(j->rec_hash);
	XXH3_freeState(j->epoch_hash);
	free(j->wbuf);
	free(j->rbuf);
	free(j->path);
	free(j);
}
