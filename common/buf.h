/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A growable byte buffer with a hard size limit, consumed from the front.
 *
 *     [ consumed | data (len bytes) | free ]
 *       ^mem       ^mem + start
 *
 * Appending grows the allocation geometrically up to @limit; consuming
 * moves the start and compacts lazily, so a read/parse/consume cycle is
 * amortised O(bytes).  After remus_buf_init() every field is valid and
 * remus_buf_release() is a no-op on an unused buffer.
 */
#ifndef REMUS_COMMON_BUF_H
#define REMUS_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct remus_buf {
	uint8_t *mem;  /* owned */
	size_t start;  /* offset of the first unconsumed byte */
	size_t len;    /* unconsumed bytes */
	size_t cap;    /* allocated bytes */
	size_t limit;  /* maximum len; appends beyond fail with -EMSGSIZE */
};

/* @limit: the most bytes the buffer may hold (0: SIZE_MAX / 2). */
void remus_buf_init(struct remus_buf *b, size_t limit);
/* Frees the storage; the buffer is empty and reusable.  Idempotent. */
void remus_buf_release(struct remus_buf *b);

static inline uint8_t *remus_buf_data(const struct remus_buf *b)
{
	return b->mem ? b->mem + b->start : NULL;
}
static inline size_t remus_buf_len(const struct remus_buf *b)
{
	return b->len;
}

/* Makes room for @n more bytes.  Returns 0, -EMSGSIZE if len + @n would
 * exceed the limit, or -ENOMEM; on failure the contents are unchanged. */
int remus_buf_reserve(struct remus_buf *b, size_t n);
/* Writable space after the data, at least what remus_buf_reserve() made;
 * report what was written with remus_buf_commit(). */
uint8_t *remus_buf_tail(struct remus_buf *b);
size_t remus_buf_tailroom(const struct remus_buf *b);
void remus_buf_commit(struct remus_buf *b, size_t n);

/* Appends @n bytes of @p (borrowed).  Returns 0, -EMSGSIZE or -ENOMEM;
 * on failure the contents are unchanged. */
int remus_buf_append(struct remus_buf *b, const void *p, size_t n);
/* Drops the first @n bytes (at most len). */
void remus_buf_consume(struct remus_buf *b, size_t n);
/* Drops everything, keeps the allocation. */
void remus_buf_reset(struct remus_buf *b);

/* One read(2) of up to @max bytes appended to @b (limited by its limit).
 * Returns bytes read (> 0), 0 at EOF, -EAGAIN, -EMSGSIZE when the buffer
 * is full, or -errno. */
ssize_t remus_buf_read_fd(struct remus_buf *b, int fd, size_t max);
/* One write(2) of the buffered data; consumes what was written.  Returns
 * bytes written (>= 0), -EAGAIN or -errno. */
ssize_t remus_buf_write_fd(struct remus_buf *b, int fd);

#endif
