/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sticky-error readers and writers for binary protocols (QEMU's migration
 * stream, the replication link, NBD, netbuffer frames).  All integers on
 * the wire are big-endian.
 *
 * The first error wins: after it every put is a no-op and every get returns
 * 0 / NULL, so a record is encoded or decoded straight through and checked
 * once at the end:
 *
 *     remus_wire_put_u8(&w, MSG_CUT);
 *     remus_wire_put_be64(&w, epoch);
 *     if ((rc = remus_wire_writer_error(&w)) < 0) goto out;
 *
 * A reader over a partial buffer reports -ENODATA when it runs out of
 * input, so an incremental parser rewinds to the record start and waits for
 * more; malformed input is -EBADMSG and oversized lengths -EMSGSIZE, set by
 * the bounded getters or by the parser with remus_wire_reader_fail().
 */
#ifndef REMUS_COMMON_WIRE_H
#define REMUS_COMMON_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct remus_wire_writer {
	struct remus_buf *buf; /* borrowed */
	int err;               /* 0 or the first -errno */
};

void remus_wire_writer_init(struct remus_wire_writer *w, struct remus_buf *buf);
void remus_wire_put_u8(struct remus_wire_writer *w, uint8_t v);
void remus_wire_put_be16(struct remus_wire_writer *w, uint16_t v);
void remus_wire_put_be32(struct remus_wire_writer *w, uint32_t v);
void remus_wire_put_be64(struct remus_wire_writer *w, uint64_t v);
void remus_wire_put_bytes(struct remus_wire_writer *w, const void *p, size_t n);
/* Returns 0 or the first error (-EMSGSIZE, -ENOMEM). */
static inline int remus_wire_writer_error(const struct remus_wire_writer *w)
{
	return w->err;
}

struct remus_wire_reader {
	const uint8_t *p; /* borrowed input */
	size_t len;
	size_t pos;
	int err; /* 0, -ENODATA (input ended), -EBADMSG, -EMSGSIZE, ... */
};

void remus_wire_reader_init(struct remus_wire_reader *r, const void *p, size_t len);
uint8_t remus_wire_get_u8(struct remus_wire_reader *r);
uint16_t remus_wire_get_be16(struct remus_wire_reader *r);
uint32_t remus_wire_get_be32(struct remus_wire_reader *r);
uint64_t remus_wire_get_be64(struct remus_wire_reader *r);
/* Returns a pointer into the input (borrowed) to @n bytes, or NULL. */
const uint8_t *remus_wire_get_bytes(struct remus_wire_reader *r, size_t n);
/* Reads a be32 length and checks it against @max (sets -EMSGSIZE). */
uint32_t remus_wire_get_len32(struct remus_wire_reader *r, uint32_t max);
/* Records @err (negative) unless an error is already recorded. */
void remus_wire_reader_fail(struct remus_wire_reader *r, int err);
static inline int remus_wire_reader_error(const struct remus_wire_reader *r)
{
	return r->err;
}
static inline size_t remus_wire_reader_remaining(const struct remus_wire_reader *r)
{
	return r->len - r->pos;
}

/* Store/load helpers for fixed layouts. */
void remus_put_be16(uint8_t *p, uint16_t v);
void remus_put_be32(uint8_t *p, uint32_t v);
void remus_put_be64(uint8_t *p, uint64_t v);
uint16_t remus_get_be16(const uint8_t *p);
uint32_t remus_get_be32(const uint8_t *p);
uint64_t remus_get_be64(const uint8_t *p);

#endif
