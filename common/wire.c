// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Sticky-error big-endian readers and writers (see wire.h).
 */
#include "common/wire.h"

#include <errno.h>
#include <string.h>

void remus_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void remus_put_be32(uint8_t *p, uint32_t v)
{
	remus_put_be16(p, (uint16_t)(v >> 16));
	remus_put_be16(p + 2, (uint16_t)v);
}

void remus_put_be64(uint8_t *p, uint64_t v)
{
	remus_put_be32(p, (uint32_t)(v >> 32));
	remus_put_be32(p + 4, (uint32_t)v);
}

uint16_t remus_get_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

uint32_t remus_get_be32(const uint8_t *p)
{
	return (uint32_t)remus_get_be16(p) << 16 | remus_get_be16(p + 2);
}

uint64_t remus_get_be64(const uint8_t *p)
{
	return (uint64_t)remus_get_be32(p) << 32 | remus_get_be32(p + 4);
}

void remus_wire_writer_init(struct remus_wire_writer *w, struct remus_buf *buf)
{
	w->buf = buf;
	w->err = 0;
}

void remus_wire_put_bytes(struct remus_wire_writer *w, const void *p, size_t n)
{
	int rc;

	if (w->err)
		return;
	rc = remus_buf_append(w->buf, p, n);
	if (rc < 0)
		w->err = rc;
}

void remus_wire_put_u8(struct remus_wire_writer *w, uint8_t v)
{
	remus_wire_put_bytes(w, &v, 1);
}

void remus_wire_put_be16(struct remus_wire_writer *w, uint16_t v)
{
	uint8_t b[2];

	remus_put_be16(b, v);
	remus_wire_put_bytes(w, b, sizeof(b));
}

void remus_wire_put_be32(struct remus_wire_writer *w, uint32_t v)
{
	uint8_t b[4];

	remus_put_be32(b, v);
	remus_wire_put_bytes(w, b, sizeof(b));
}

void remus_wire_put_be64(struct remus_wire_writer *w, uint64_t v)
{
	uint8_t b[8];

	remus_put_be64(b, v);
	remus_wire_put_bytes(w, b, sizeof(b));
}

void remus_wire_reader_init(struct remus_wire_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p ? len : 0;
	r->pos = 0;
	r->err = 0;
}

void remus_wire_reader_fail(struct remus_wire_reader *r, int err)
{
	if (!r->err)
		r->err = err;
}

const uint8_t *remus_wire_get_bytes(struct remus_wire_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (n > r->len - r->pos) {
		r->err = -ENODATA;
		return NULL;
	}
	p = r->p + r->pos;
	r->pos += n;
	return p;
}

uint8_t remus_wire_get_u8(struct remus_wire_reader *r)
{
	const uint8_t *p = remus_wire_get_bytes(r, 1);

	return p ? p[0] : 0;
}

uint16_t remus_wire_get_be16(struct remus_wire_reader *r)
{
	const uint8_t *p = remus_wire_get_bytes(r, 2);

	return p ? remus_get_be16(p) : 0;
}

uint32_t remus_wire_get_be32(struct remus_wire_reader *r)
{
	const uint8_t *p = remus_wire_get_bytes(r, 4);

	return p ? remus_get_be32(p) : 0;
}

uint64_t remus_wire_get_be64(struct remus_wire_reader *r)
{
	const uint8_t *p = remus_wire_get_bytes(r, 8);

	return p ? remus_get_be64(p) : 0;
}

uint32_t remus_wire_get_len32(struct remus_wire_reader *r, uint32_t max)
{
	uint32_t v = remus_wire_get_be32(r);

	if (!r->err && v > max) {
		r->err = -EMSGSIZE;
		return 0;
	}
	return v;
}
