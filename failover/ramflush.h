/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Keeps the standby QEMU's file-backed guest RAM clean while it receives
 * (private to failover/).
 *
 * Why: at the end of an incoming migration QEMU msyncs every RAM block
 * that has a file (ram_load_cleanup -> qemu_ram_block_writeback), so a
 * standby whose RAM is a shared file (a libvirt domain with a file
 * memoryBacking, on `remusd ramfs` for engine v2) writes back, inside the
 * takeover, every page dirtied since the kernel last wrote the file back
 * (up to ~30 s of the stream).  Measured: docs/ARCHITECTURE.md, "The
 * standby's RAM file".  A thread fdatasync()s the file every @every_ms,
 * so at a takeover only what came since the last flush is left.
 *
 * fdatasync through FUSE takes hundreds of ms for a big backlog, so it
 * never runs on the loop: the thread only takes the lock to publish its
 * figures.  The first error is logged once, with the path and what to do;
 * the thread goes on trying (a file that comes back is flushed again) and
 * the standby never depends on it.
 */
#ifndef REMUS_FAILOVER_RAMFLUSH_H
#define REMUS_FAILOVER_RAMFLUSH_H

#include <stdint.h>

struct remus_ramflush;

struct remus_ramflush_stats {
	uint64_t flushes;   /* fdatasyncs that returned 0 */
	uint64_t errors;    /* that failed */
	double last_ms;     /* duration of the last one */
	double max_ms;      /* of the longest one */
	int last_err;       /* 0, or the last failure's -errno */
	int running;        /* 1 until remus_ramflush_stop() */
};

/* The default of @every_ms. */
#define REMUS_RAMFLUSH_EVERY_MS 1000u

/*
 * Opens @path (borrowed, copied; read-only, fdatasync needs no more) and
 * starts the flusher thread: the first flush right away, then every
 * @every_ms (0: REMUS_RAMFLUSH_EVERY_MS).  Returns 0 with *@out (owned:
 * remus_ramflush_free), or -errno (open: -ENOENT, -EACCES...; thread
 * creation) with nothing started and *@out untouched.
 */
int remus_ramflush_start(const char *path, unsigned every_ms, struct remus_ramflush **out);
/* Asks the thread to stop after the flush it may be in; never blocks
 * (for the loop, at a takeover).  Idempotent. */
void remus_ramflush_stop(struct remus_ramflush *f);
/* Stops, waits for the thread (at most one flush: blocks up to its
 * duration), closes the file, frees @f.  NULL is fine. */
void remus_ramflush_free(struct remus_ramflush *f);
/* Copies the figures so far into *@st.  Never blocks on a flush. */
void remus_ramflush_stats(struct remus_ramflush *f, struct remus_ramflush_stats *st);
/* Borrowed; valid until @f is freed. */
const char *remus_ramflush_path(const struct remus_ramflush *f);

#endif
