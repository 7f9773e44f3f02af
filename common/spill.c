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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SEG_MIN ((size_t)64 << 10)
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

void remus_spill_release(struct remus_spill *s)
{
	struct remus_spill_budget *b = s->budget;
	const char *dir = s->dir;

	while (s->head) {
		struct remus_spill_seg *g = s->head;

		s->head = g->next;
		seg_free(s, g);
	}
	if (s->fd >= 0)
		close(s->fd);
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
	return (ssize_t)got;
}
