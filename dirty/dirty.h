/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty tracker: which pages of guest RAM were written since the last
 * collect, learned from outside QEMU (engine v2, issue 13).  Used by
 * engine v2 (controller/engine.h) where remusd primary has --ram-dir.
 *
 * An epoch is the time between two collects.  The contract every backend
 * keeps:
 *
 *   - no page written before remus_dirty_collect() returns is ever missing
 *     from the union of what this collect and the following ones report
 *     (a page written *while* a collect runs is in this set or the next
 *     one, never in neither);
 *   - a page written before a collect *started*, while no writer runs
 *     during it (guest stopped), is in that collect's set;
 *   - pages may be over-reported (a backend states by how much).
 *
 * Backends (enum remus_dirty_kind):
 *   FULL  every page is dirty in every epoch: the fallback that needs
 *         nothing from the kernel, and the reference for tests.  Costs
 *         O(RAM) for whoever reads the pages.
 *   FUSE  guest RAM is a file on a FUSE filesystem this process serves
 *         itself (/dev/fuse, no libfuse) in writeback-cache mode.  QEMU maps
 *         it (-object memory-backend-file,mem-path=PATH,share=on); the
 *         kernel keeps the pages in its page cache and, at collect
 *         (fsync of the file, by a small forked flusher process: see
 *         fuse_ram.h), sends WRITE requests for exactly the
 *         pages written since the previous writeback and write-protects
 *         them again.  The server records those pages and keeps a copy of
 *         their content (remus_dirty_ram()).  Exact for pages written
 *         through a shared mapping (measured: 0 over-reported in the unit
 *         tests, docs/ARCHITECTURE.md "Engine v2").  Needs root (mount(2)),
 *         /dev/fuse.  Risks that stay with this backend: the server thread
 *         is in the guest's memory path (a dead process means SIGBUS in
 *         QEMU; close the tracker only after QEMU is gone); guest RAM is
 *         held twice (page cache + the copy); the kernel may also write
 *         pages back on its own between collects (they are then reported at
 *         the next collect, their content arrives early).
 *   RAMFS the same mechanism, but the server is `remusd ramfs` (dirty/ramfs.h),
 *         a process of its own that serves the RAM files of many domains
 *         (libvirt makes them, QEMU maps them); the tracker attaches to one
 *         file by path through the server's control socket, maps the
 *         server's copy (a memfd) read-only and its bitmap, and collects by
 *         fsync() of the file and clearing the bitmap.  Closing the tracker
 *         never affects the guest.  Write/read counters stay 0.
 * Soft-dirty, PAGEMAP_SCAN or userfaultfd-wp backends would be further
 * kinds behind the same calls (open on a pid + mapping instead of a path).
 *
 * Threading: a tracker is used by one thread at a time (any thread).  The
 * FUSE backend runs one private server thread from open to close;
 * remus_dirty_collect() blocks while the kernel writes the dirty pages back
 * (about 2-30 ms per 4-64 MiB measured), so do not call it from the event
 * loop on a large guest.  Errors are 0 or -errno everywhere.
 */
#ifndef REMUS_DIRTY_DIRTY_H
#define REMUS_DIRTY_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

#define REMUS_DIRTY_PAGE_SIZE 4096u

enum remus_dirty_kind {
	REMUS_DIRTY_FULL,
	REMUS_DIRTY_FUSE,
	REMUS_DIRTY_RAMFS,
};

#define REMUS_RAMFS_DEFAULT_SOCKET "/run/remus/ramfs.sock"
/* How long a RAMFS open's connect, request and reply may each take: the
 * server answers from memory, and the caller (the engine) waits on its
 * event loop, so a stuck server must not hold it longer. */
#define REMUS_RAMFS_CALL_TIMEOUT_MS 2000


struct remus_dirty_opts {
	enum remus_dirty_kind kind;
	/* Guest RAM bytes: > 0, a multiple of REMUS_DIRTY_PAGE_SIZE. */
	uint64_t size;
	/* FULL: an fd of the guest RAM (memfd or file, at least @size
	 * bytes), mapped read-only for remus_dirty_ram(); -1 for none.
	 * Borrowed: the tracker keeps its own mapping, not the fd. */
	int ram_fd;
	/* FUSE: an existing empty directory to mount on; the RAM file is
	 * MOUNT_DIR/guest.ram.  Borrowed (copied). */
	const char *mount_dir;
	/* FUSE: let other users open the file (libvirt's qemu user). */
	bool allow_other;
	/* FUSE: lift the mount's writeback limits (bdi strict_limit=0,
	 * max_ratio=100): with the default ~1% of memory the kernel writes
	 * back between collects and throttles the guest. */
	bool raise_bdi_limits;
	/* RAMFS: the guest RAM file on a `remusd ramfs` mount (QEMU's
	 * mem-path) and that server's control socket (NULL: the default
	 * /run/remus/ramfs.sock).  Borrowed (copied).  @size 0: the file's
	 * size; else it must match (-EINVAL). */
	const char *ram_path;
	const char *ramfs_socket;
};

/* A set of pages: bit i of @bits is page i (offset i * 4096). */
struct remus_dirty_set {
	uint64_t *bits;	 /* owned, (npages + 63) / 64 words */
	uint64_t npages; /* pages the set can hold */
	uint64_t ndirty; /* bits set */
};

/* Empty set for @npages pages.  Returns 0 or -ENOMEM / -EINVAL (0 pages);
 * on error the set is released. */
int remus_dirty_set_init(struct remus_dirty_set *set, uint64_t npages);
/* Idempotent; leaves an empty set of 0 pages. */
void remus_dirty_set_release(struct remus_dirty_set *set);
bool remus_dirty_set_test(const struct remus_dirty_set *set, uint64_t page);
/* The first dirty page >= @from, or set->npages if none: iterate with
 * for (p = next(s, 0); p < s->npages; p = next(s, p + 1)). */
uint64_t remus_dirty_set_next(const struct remus_dirty_set *set,
			      uint64_t from);
/* The first run of dirty pages at or after @from as [*first, *first +
 * *count); returns false when there is none.  For range lists. */
bool remus_dirty_set_next_range(const struct remus_dirty_set *set,
				uint64_t from, uint64_t *first,
				uint64_t *count);

/* @into gets the pages of @from too; ndirty recounted.  Returns 0, or
 * -EINVAL (sets of different sizes: @into unchanged). */
int remus_dirty_set_merge(struct remus_dirty_set *into,
			  const struct remus_dirty_set *from);
/* Empties @set, keeping its size. */
void remus_dirty_set_clear(struct remus_dirty_set *set);
/* Pages in both @a and @b (0 for sets of different sizes). */
uint64_t remus_dirty_set_common(const struct remus_dirty_set *a,
				const struct remus_dirty_set *b);

struct remus_dirty;

/* Opens a tracker as @opts says; *out is owned by the caller
 * (remus_dirty_close()).  The first epoch starts here: the first collect
 * reports pages written since open (for FUSE: every page QEMU writes,
 * including its boot; RAMFS: pages written back before open are
 * forgotten).  Returns 0, or -EINVAL (bad options), -ENOMEM,
 * -EPERM/-ENODEV (FUSE: not root, no /dev/fuse), or mount's -errno;
 * nothing is left mounted on error.  RAMFS: -ENOENT (no such file, or no
 * socket), -ECONNREFUSED (no server on the socket), -EXDEV (the file is
 * not on FUSE or not on that server's mount), -EBUSY (another tracker is
 * attached to it), -ETIMEDOUT (the server did not take or answer the
 * attach within REMUS_RAMFS_CALL_TIMEOUT_MS), -EINVAL (@size differs
 * from the file's). */
int remus_dirty_open(const struct remus_dirty_opts *opts,
		     struct remus_dirty **out);
/* Starts a new epoch now: everything dirty so far is forgotten (FUSE:
 * written back into the copy, not reported).  Returns 0 or -errno. */
int remus_dirty_start(struct remus_dirty *d);
/* Ends the epoch: fills @set (initialised for remus_dirty_npages() pages,
 * its old content discarded) with the pages written since the last collect
 * or start, and starts the next epoch.  Returns 0, -EINVAL (set of another
 * size), or -errno of the flush / -EIO if the FUSE server failed: then the
 * tracker has lost track and the caller must fall back to a full copy. */
int remus_dirty_collect(struct remus_dirty *d, struct remus_dirty_set *set);
/* Unmounts (FUSE) and frees; NULL is fine.  FUSE: QEMU must not map the
 * file any more, or its next access to an uncached page faults.  RAMFS:
 * only detaches (returns once the server has dropped the attachment, at
 * most 1 s); the server goes on serving the file. */
void remus_dirty_close(struct remus_dirty *d);

enum remus_dirty_kind remus_dirty_kind(const struct remus_dirty *d);
const char *remus_dirty_kind_name(enum remus_dirty_kind kind);
uint64_t remus_dirty_npages(const struct remus_dirty *d);
/* FUSE: the path to give QEMU as mem-path; RAMFS: ram_path; FULL: NULL.  Borrowed, valid
 * until close. */
const char *remus_dirty_ram_path(const struct remus_dirty *d);
/* The content of guest RAM as the tracker sees it, @size bytes, read-only:
 * FUSE, RAMFS: the server's copy, each page as of its last writeback (so after a
 * collect with the guest stopped, the checkpoint); FULL: the mapping of
 * ram_fd, or NULL without one.  Borrowed, valid until close; stable only
 * while no writer runs. */
const uint8_t *remus_dirty_ram(const struct remus_dirty *d);

/* Counters since open, for status and benches. */
struct remus_dirty_stats {
	uint64_t collects;
	uint64_t pages_reported; /* sum of ndirty over collects */
	uint64_t write_requests; /* FUSE: WRITE requests served */
	uint64_t write_bytes;
	uint64_t read_requests; /* FUSE: READ requests (page cache misses) */
	uint64_t read_bytes;
};
void remus_dirty_get_stats(const struct remus_dirty *d,
			   struct remus_dirty_stats *out);

#endif
