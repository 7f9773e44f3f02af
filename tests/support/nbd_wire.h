/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test helpers for diskrepl's NBD server: the client side of the wire
 * (messages appended to a remus_buf, written from the protocol document,
 * not from the server's code) and a RAM disk whose ops record what they
 * were asked.  Header-only; shared by the unit tests and the fuzz target.
 */
#ifndef REMUS_TESTS_SUPPORT_NBD_WIRE_H
#define REMUS_TESTS_SUPPORT_NBD_WIRE_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/wire.h"
#include "diskrepl/nbd_proto.h"

static inline void nbdw_flags(struct remus_buf *b, uint32_t flags)
{
	uint8_t p[4];

	remus_put_be32(p, flags);
	remus_buf_append(b, p, 4);
}

static inline void nbdw_opt(struct remus_buf *b, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[16];

	remus_put_be64(h, REMUS_NBD_OPTS_MAGIC);
	remus_put_be32(h + 8, opt);
	remus_put_be32(h + 12, len);
	remus_buf_append(b, h, sizeof(h));
	remus_buf_append(b, data, len);
}

/* NBD_OPT_GO / NBD_OPT_INFO for @name with @n info requests. */
static inline void nbdw_go(struct remus_buf *b, uint32_t opt, const char *name,
			   const uint16_t *infos, unsigned n)
{
	size_t nl = strlen(name), len = 4 + nl + 2 + 2 * (size_t)n, i;
	uint8_t *d = malloc(len);

	if (!d)
		abort();
	remus_put_be32(d, (uint32_t)nl);
	memcpy(d + 4, name, nl);
	remus_put_be16(d + 4 + nl, (uint16_t)n);
	for (i = 0; i < n; i++)
		remus_put_be16(d + 4 + nl + 2 + 2 * i, infos[i]);
	nbdw_opt(b, opt, d, (uint32_t)len);
	free(d);
}

/* A request; @payload (WRITE only, @len bytes) may be NULL otherwise. */
static inline void nbdw_req(struct remus_buf *b, uint16_t flags, uint16_t type, uint64_t cookie,
			    uint64_t off, uint32_t len, const void *payload)
{
	uint8_t h[28];

	remus_put_be32(h, REMUS_NBD_REQUEST_MAGIC);
	remus_put_be16(h + 4, flags);
	remus_put_be16(h + 6, type);
	remus_put_be64(h + 8, cookie);
	remus_put_be64(h + 16, off);
	remus_put_be32(h + 24, len);
	remus_buf_append(b, h, sizeof(h));
	if (payload)
		remus_buf_append(b, payload, len);
}

/* A RAM disk; fail != 0 makes every op return it. */
struct ramdisk {
	uint8_t *mem;
	uint64_t size;
	int fail;
	uint32_t last_flags;
	unsigned reads, writes, zeroes, trims, flushes;
};

static inline int rd_read(void *opaque, uint64_t off, uint32_t len, void *buf)
{
	struct ramdisk *d = opaque;

	d->reads++;
	if (d->fail)
		return d->fail;
	if (off > d->size || len > d->size - off)
		abort(); /* the server must have checked */
	memcpy(buf, d->mem + off, len);
	return 0;
}

static inline int rd_write(void *opaque, uint64_t off, uint32_t len, const void *buf,
			   uint32_t flags)
{
	struct ramdisk *d = opaque;

	d->writes++;
	d->last_flags = flags;
	if (d->fail)
		return d->fail;
	if (off > d->size || len > d->size - off || len == 0)
		abort();
	memcpy(d->mem + off, buf, len);
	return 0;
}

static inline int rd_zero(void *opaque, uint64_t off, uint32_t len, uint32_t flags)
{
	struct ramdisk *d = opaque;

	d->zeroes++;
	d->last_flags = flags;
	if (d->fail)
		return d->fail;
	if (off > d->size || len > d->size - off || len == 0)
		abort();
	memset(d->mem + off, 0, len);
	return 0;
}

static inline int rd_trim(void *opaque, uint64_t off, uint32_t len, uint32_t flags)
{
	struct ramdisk *d = opaque;

	d->trims++;
	d->last_flags = flags;
	if (d->fail)
		return d->fail;
	if (off > d->size || len > d->size - off || len == 0)
		abort();
	/* Trimmed bytes read back as 0xee: tests can see the op ran. */
	memset(d->mem + off, 0xee, len);
	return 0;
}

static inline int rd_flush(void *opaque)
{
	struct ramdisk *d = opaque;

	d->flushes++;
	return d->fail;
}

static inline const struct remus_nbd_ops *ramdisk_ops(void)
{
	static const struct remus_nbd_ops ops = {
		.read = rd_read, .write = rd_write, .write_zeroes = rd_zero,
		.trim = rd_trim, .flush = rd_flush,
	};
	return &ops;
}

/* Only read and write: no flush, trim or write_zeroes to advertise. */
static inline const struct remus_nbd_ops *ramdisk_bare_ops(void)
{
	static const struct remus_nbd_ops ops = { .read = rd_read, .write = rd_write };
	return &ops;
}

static inline void ramdisk_init(struct ramdisk *d, uint64_t size)
{
	memset(d, 0, sizeof(*d));
	d->mem = calloc(1, size ? size : 1);
	if (!d->mem)
		abort();
	d->size = size;
}

static inline void ramdisk_release(struct ramdisk *d)
{
	free(d->mem);
	d->mem = NULL;
}

#endif
