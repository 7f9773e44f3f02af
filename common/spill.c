// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Memory-then-file byte store (see spill.h).
 *
 * A segment is one anonymous mapping that starts with its own header, so
 * a store is a singly linked list of mappings and freeing a read segment
 * is one munmap: the kernel takes the pages back at once, whatever
 * malloc's thresholds would have done with them.  A fully read segment is
 * unmapped even if it is the last one; the next append maps a new one.
 */
#include "common/spill.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SEG_MIN ((size_t)64 << 10)
#define PUNCH_STEP ((uint64_t)1 << 20)
#define DEFAULT_DIR "/var/tmp"

struct remus_spill_seg {
	struct remus_spill_seg *next;
	size_t map; /* bytes mapped, this header included */
	size_t cap; /* data bytes */
	size_t len; /* data bytes appended */
	uint8_t data[];
};

static size_t page_size(void)
{
	static size_t ps;

	if (!ps) {
		long r = sysconf(_SC_PAGESIZE);

		ps = r > 0 ? (size_t)r : 4096;
	}
	return ps;
}

void remus_spill_init(struct remus_spill *s, struct remus_spill_budget *budget,
		      const char *dir)
{
	memset(s, 0, sizeof(*s));
	s->budget = budget;
	s->dir = dir;
	s->fd = -1;
}

static void seg_free(struct remus_spill *s, struct remus_spill_seg *g)
{
	if (s->budget)
		s->budget->used -= g->map;
	munmap(g, g->map);
}

/* What a release leaves to a thread: segments to unmap, a file to close. */
struct trash {
	struct remus_spill_seg *segs;
	int fd;
};

static void trash_empty(struct trash *t)
{
	while (t->segs) {
		struct remus_spill_seg *g = t->segs;

		t->segs = g->next;
		munmap(g, g->map);
	}
	if (t->fd >= 0)
		close(t->fd);
}

static void *trash_thread(void *arg)
{
	trash_empty(arg);
	free(arg);
	return NULL;
}

/* munmap(2) of resident memory and close(2) of an unlinked file free
 * their pages on the spot: for a big store, a stall of the caller's
 * loop (tens of ms per 256 MiB mapped, about 100 ms per GiB of file), so
 * a detached thread does it.  Nothing else uses those pages or that fd
 * any more, and the fd's number is reused only once the close returned.
 * Without a thread, here and now. */
static void trash_later(struct remus_spill_seg *segs, int fd)
{
	struct trash *t = malloc(sizeof(*t));
	pthread_attr_t a;
	pthread_t th;
	int rc = -1;

	if (t) {
		t->segs = segs;
		t->fd = fd;
		if (pthread_attr_init(&a) == 0) {
			pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
			rc = pthread_create(&th, &a, trash_thread, t);
			pthread_attr_destroy(&a);
		}
		if (rc == 0)
			return;
		free(t);
	}
	trash_empty(&(struct trash){ .segs = segs, .fd = fd });
}

void remus_spill_release(struct remus_spill *s)
{
	struct remus_spill_budget *b = s->budget;
	const char *dir = s->dir;
	struct remus_spill_seg *g;
	uint64_t mapped = 0;

	/* The budget gets the memory back now: it is as good as gone. */
	for (g = s->head; g; g = g->next) {
		mapped += g->map;
		if (b)
			b->used -= g->map;
	}
	if (mapped + (s->fd >= 0 ? s->file_wr - s->file_punched : 0) > REMUS_SPILL_FREE_INLINE) {
		trash_later(s->head, s->fd);
	} else {
		trash_empty(&(struct trash){ .segs = s->head, .fd = s->fd });
	}
	remus_spill_init(s, b, dir);
}

void remus_spill_move(struct remus_spill *to, struct remus_spill *from)
{
	remus_spill_release(to);
	*to = *from;
	remus_spill_init(from, from->budget, from->dir);
}

static int fail(struct remus_spill *s, int err)
{
	s->err = err;
	return err;
}

bool remus_spill_last_byte(const struct remus_spill *s, uint8_t *b)
{
	if (!s->total)
		return false;
	*b = s->last;
	return true;
}

/* A new segment for an append of @want more bytes, if the budget has
 * room for one of at least SEG_MIN bytes; NULL otherwise (*@err 0) or on
 * a failed mmap (*@err -ENOMEM). */
static struct remus_spill_seg *seg_new(struct remus_spill *s, size_t want, int *err)
{
	size_t ps = page_size(), hdr = sizeof(struct remus_spill_seg), map;
	struct remus_spill_seg *g;
	void *m;

	*err = 0;
	if (want < SEG_MIN)
		want = SEG_MIN;
	map = hdr + want;
	if (map > REMUS_SPILL_SEG_MAX)
		map = REMUS_SPILL_SEG_MAX;
	map = (map + ps - 1) / ps * ps;
	if (s->budget) {
		size_t room = s->budget->limit > s->budget->used ?
			      s->budget->limit - s->budget->used : 0;

		if (map > room)
			map = room / ps * ps;
		if (map < hdr + SEG_MIN)
			return NULL;
	}
	m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		*err = -ENOMEM;
		return NULL;
	}
	g = m;
	g->next = NULL;
	g->map = map;
	g->cap = map - hdr;
	g->len = 0;
	if (s->budget) {
		s->budget->used += map;
		if (s->budget->used > s->budget->peak)
			s->budget->peak = s->budget->used;
	}
	return g;
}

/* The store's file, unnamed from the start where the file system can. */
static int open_file(struct remus_spill *s)
{
	const char *dir = s->dir ? s->dir : DEFAULT_DIR;
	char path[4096];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* No O_TMPFILE here: a named file, unlinked at once. */
		if (snprintf(path, sizeof(path), "%s/remus-spill-XXXXXX", dir) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return -errno;
	s->fd = fd;
	return 0;
}

static int write_file(struct remus_spill *s, const uint8_t *p, size_t n)
{
	ssize_t r;
	int rc;

	if (s->fd < 0 && (rc = open_file(s)) < 0)
		return rc;
	while (n) {
		r = pwrite(s->fd, p, n, (off_t)s->file_wr);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
		s->file_wr += (uint64_t)r;
	}
	return 0;
}

int remus_spill_append(struct remus_spill *s, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t left = n, k;
	int rc;

	if (s->err)
		return s->err;
	if (!n)
		return 0;
	while (left && s->fd < 0) {
		struct remus_spill_seg *g = s->tail;

		if (!g || g->len == g->cap) {
			g = seg_new(s, left, &rc);
			if (!g && rc)
				return fail(s, rc);
			if (!g)
				break; /* the budget is spent: the rest goes to the file */
			if (s->tail)
				s->tail->next = g;
			else
				s->head = g;
			s->tail = g;
		}
		k = g->cap - g->len < left ? g->cap - g->len : left;
		memcpy(g->data + g->len, b, k);
		g->len += k;
		s->mem_unread += k;
		b += k;
		left -= k;
	}
	if (left && (rc = write_file(s, b, left)) < 0)
		return fail(s, rc);
	s->total += n;
	s->last = ((const uint8_t *)p)[n - 1];
	return 0;
}

/* Gives back what was read of the file, in whole steps: its page cache
 * is freed a bit at a time instead of all at once at close. */
static void punch_read(struct remus_spill *s)
{
	uint64_t end = s->file_rd / PUNCH_STEP * PUNCH_STEP;

	if (s->no_punch || s->fd < 0 || end <= s->file_punched)
		return;
	if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)s->file_punched,
		      (off_t)(end - s->file_punched)) < 0) {
		s->no_punch = true; /* not here: the close frees it all */
		return;
	}
	s->file_punched = end;
}

ssize_t remus_spill_read(struct remus_spill *s, void *buf, size_t n)
{
	uint8_t *out = buf;
	size_t got = 0, k;
	ssize_t r;

	if (s->err)
		return s->err;
	while (got < n && s->head) {
		struct remus_spill_seg *g = s->head;

		k = g->len - s->head_off < n - got ? g->len - s->head_off : n - got;
		memcpy(out + got, g->data + s->head_off, k);
		got += k;
		s->head_off += k;
		s->mem_unread -= k;
		if (s->head_off == g->len) {
			s->head = g->next;
			if (!s->head)
				s->tail = NULL;
			s->head_off = 0;
			seg_free(s, g);
		}
	}
	while (got < n && s->file_rd < s->file_wr) {
		k = n - got;
		if (k > s->file_wr - s->file_rd)
			k = (size_t)(s->file_wr - s->file_rd);
		r = pread(s->fd, out + got, k, (off_t)s->file_rd);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail(s, -errno);
		if (r == 0)
			return fail(s, -ENODATA);
		got += (size_t)r;
		s->file_rd += (uint64_t)r;
	}
	punch_read(s);
	return (ssize_t)got;
}
