// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Bounded byte buffer (see buf.h).  Consumed bytes are reclaimed lazily:
 * reserve() first slides the data to the front when that makes room, and
 * only then reallocates, doubling up to the limit.
 */
#include "common/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void remus_buf_init(struct remus_buf *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit ? limit : SIZE_MAX / 2;
}

void remus_buf_release(struct remus_buf *b)
{
	free(b->mem);
	b->mem = NULL;
	b->start = b->len = b->cap = 0;
}

int remus_buf_reserve(struct remus_buf *b, size_t n)
{
	size_t need, cap;
	uint8_t *m;

	if (n > b->limit - b->len)
		return -EMSGSIZE;
	need = b->len + n;
	if (b->start + need <= b->cap)
		return 0;
	if (need <= b->cap) {
		memmove(b->mem, b->mem + b->start, b->len);
		b->start = 0;
		return 0;
	}
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 4 ? need : cap * 2;
	if (cap > b->limit && need <= b->limit)
		cap = b->limit;
	m = malloc(cap);
	if (!m)
		return -ENOMEM;
	if (b->len)
		memcpy(m, b->mem + b->start, b->len);
	free(b->mem);
	b->mem = m;
	b->start = 0;
	b->cap = cap;
	return 0;
}

uint8_t *remus_buf_tail(struct remus_buf *b)
{
	return b->mem ? b->mem + b->start + b->len : NULL;
}

size_t remus_buf_tailroom(const struct remus_buf *b)
{
	size_t room = b->cap - b->start - b->len;
	size_t allowed = b->limit - b->len;

	return room < allowed ? room : allowed;
}

void remus_buf_commit(struct remus_buf *b, size_t n)
{
	size_t room = remus_buf_tailroom(b);

	b->len += n <= room ? n : room;
}

int remus_buf_append(struct remus_buf *b, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	rc = remus_buf_reserve(b, n);
	if (rc < 0)
		return rc;
	memcpy(b->mem + b->start + b->len, p, n);
	b->len += n;
	return 0;
}

void remus_buf_consume(struct remus_buf *b, size_t n)
{
	if (n >= b->len) {
		b->start = b->len = 0;
		return;
	}
	b->start += n;
	b->len -= n;
}

void remus_buf_reset(struct remus_buf *b)
{
	b->start = b->len = 0;
}

ssize_t remus_buf_read_fd(struct remus_buf *b, int fd, size_t max)
{
	ssize_t r;
	size_t room;
	int rc;

	if (max == 0)
		return -EINVAL;
	if (b->len >= b->limit)
		return -EMSGSIZE;
	if (max > b->limit - b->len)
		max = b->limit - b->len;
	rc = remus_buf_reserve(b, max);
	if (rc < 0)
		return rc;
	room = remus_buf_tailroom(b);
	if (room > max)
		room = max;
	do
		r = read(fd, remus_buf_tail(b), room);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	b->len += (size_t)r;
	return r;
}

ssize_t remus_buf_write_fd(struct remus_buf *b, int fd)
{
	ssize_t r;

	if (b->len == 0)
		return 0;
	do
		r = write(fd, remus_buf_data(b), b->len);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	remus_buf_consume(b, (size_t)r);
	return r;
}
