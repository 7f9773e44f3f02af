/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A byte store that keeps at most a memory budget resident and spills the
 * rest to an unlinked temporary file: append at the back, read (and so
 * drop) from the front, in bounded steps.
 *
 *     [ memory segments ............ ][ file ......................... ]
 *       ^ read position                 appended after the budget ran out
 *
 * The standby keeps an uncommitted epoch in one (repl/repl.h's assembler)
 * and streams a committed one from it to its QEMU (failover/feed.h).  A
 * remus_buf would grow by doubling and copy everything at each step: a
 * 2 GiB epoch means a 2 GiB copy on the loop and 4 GiB of address space
 * for a moment.  Here nothing is ever moved: memory is a list of segments
 * (mmap'd, 64 KiB to 1 MiB each, unmapped as soon as they are read, so
 * resident memory follows the budget both ways), and the file is written
 * and read with pwrite/pread at their own offsets.
 *
 * A budget is shared by every store of one owner (the standby's epoch
 * being assembled, the committed epochs still going to QEMU, the device
 * part kept for a takeover), so their memory together stays within one
 * limit.  It counts whole segments, not bytes, so the limit is what is
 * mapped.  Once a store has spilled, its later appends go to its file
 * too, even if memory was freed meanwhile: the bytes are always memory
 * first, file second, and reading them back is one pass in order.
 *
 * The file is created on the first spilled byte, with O_TMPFILE in the
 * store's directory (or mkstemp + unlink where the file system has no
 * O_TMPFILE): it has no name, so it disappears with the process, however
 * that ends.  Nothing is fsync'd: the bytes only have to outlive the
 * epoch, not the process.
 *
 * Freeing costs time in proportion to what is freed, in whatever call
 * frees it: about 100 ms per GiB of a file's page cache at close(2), 40 ms
 * per 256 MiB of resident segments at munmap(2) (measured here).  So what
 * has been read is given back as reading goes on (segments unmapped,
 * the file punched in 1 MiB steps), and a release that would free more
 * than REMUS_SPILL_FREE_INLINE bytes at once leaves the munmaps and the
 * close to a short-lived detached thread (as Redis's bio closes files).
 * The budget gets that memory back at once; the process's resident size
 * follows some milliseconds later.
 *
 * Errors are sticky: after a failed append or read the contents are
 * unspecified and every later append and read returns the same -errno
 * until remus_spill_release().  Not thread-safe (the freeing thread only
 * gets what no store refers to any more).
 */
#ifndef REMUS_COMMON_SPILL_H
#define REMUS_COMMON_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Memory shared by stores; set @limit, zero the rest. */
struct remus_spill_budget {
	size_t limit; /* bytes of segments all its stores may map at once */
	size_t used;  /* mapped now */
	size_t peak;  /* most mapped at once */
};

/* Largest memory segment: a read or an append touches at most one
 * segment per this many bytes. */
#define REMUS_SPILL_SEG_MAX ((size_t)1 << 20)
/* A release frees at most this much itself (segments + file). */
#define REMUS_SPILL_FREE_INLINE ((uint64_t)32 << 20)

struct remus_spill_seg; /* private */

struct remus_spill {
	struct remus_spill_budget *budget; /* borrowed; NULL: memory only, no limit */
	const char *dir;          /* borrowed: where the file goes */
	struct remus_spill_seg *head, *tail; /* owned */
	size_t head_off;          /* bytes of @head already read */
	uint64_t mem_unread;      /* bytes in segments not yet read */
	int fd;                   /* owned; -1 until the first spilled byte */
	uint64_t file_wr, file_rd; /* file bytes written, read */
	uint64_t file_punched;    /* file bytes given back (read, punched out) */
	bool no_punch;            /* the file system cannot punch holes */
	uint64_t total;           /* bytes appended since init or release */
	uint8_t last;             /* the last byte appended (total > 0) */
	int err;                  /* 0 or the first -errno (sticky) */
};

/* An empty store.  @budget (borrowed, may be NULL: memory only, never
 * spills) and @dir (borrowed, a directory; NULL: /var/tmp) must outlive
 * it.  Allocates nothing; after this, release is a no-op. */
void remus_spill_init(struct remus_spill *s, struct remus_spill_budget *budget,
		      const char *dir);
/* Unmaps the segments (their bytes go back to the budget), closes the
 * file, clears the error; the store is empty and usable with the same
 * budget and directory.  Idempotent. */
void remus_spill_release(struct remus_spill *s);
/* Moves @from's contents and storage to @to (released first), leaving
 * @from empty: the budget does not change. */
void remus_spill_move(struct remus_spill *to, struct remus_spill *from);

/*
 * Appends @n bytes of @p (borrowed): into memory while the budget allows
 * and nothing was spilled yet, the rest into the file.  Returns 0, or a
 * sticky -errno: -ENOMEM (mmap), or the file's -errno (-ENOSPC, -EIO,
 * -EROFS, ...; creating or writing it).
 */
int remus_spill_append(struct remus_spill *s, const void *p, size_t n);
/*
 * Reads up to @n unread bytes into @buf and drops them: memory segments
 * are unmapped once read.  Returns the bytes read (0: nothing unread),
 * or a sticky -errno from pread (-EIO; -ENODATA if the file is shorter
 * than what was written to it).
 */
ssize_t remus_spill_read(struct remus_spill *s, void *buf, size_t n);

/* Bytes appended since init or release (read ones included). */
static inline uint64_t remus_spill_total(const struct remus_spill *s)
{
	return s->total;
}
/* Unread bytes: in memory, in the file, both. */
static inline uint64_t remus_spill_mem_unread(const struct remus_spill *s)
{
	return s->mem_unread;
}
static inline uint64_t remus_spill_file_unread(const struct remus_spill *s)
{
	return s->file_wr - s->file_rd;
}
static inline uint64_t remus_spill_unread(const struct remus_spill *s)
{
	return s->mem_unread + (s->file_wr - s->file_rd);
}
/* Bytes ever written to the file since init or release. */
static inline uint64_t remus_spill_spilled(const struct remus_spill *s)
{
	return s->file_wr;
}
/* 0 or the sticky -errno. */
static inline int remus_spill_error(const struct remus_spill *s)
{
	return s->err;
}
/* The last byte appended; false if nothing was. */
bool remus_spill_last_byte(const struct remus_spill *s, uint8_t *b);

#endif
