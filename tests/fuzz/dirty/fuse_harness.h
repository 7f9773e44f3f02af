/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the two FUSE servers' fuzz targets share (fuzz_dirty.c for
 * dirty/fuse_ram.c, fuzz_ramfs.c for remusd ramfs): an abort that names
 * the failed check, the INIT the kernel sends first, the input cut into
 * requests, and the checks every reply must pass.  Static: one target
 * includes it once.
 */
#ifndef REMUS_FUZZ_DIRTY_FUSE_HARNESS_H
#define REMUS_FUZZ_DIRTY_FUSE_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dirty/fuse_ram.h"

#define check(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "check failed: %s (%s:%d)\n", #cond,     \
				__FILE__, __LINE__);                             \
			abort();                                                 \
		}                                                                \
	} while (0)

/* The INIT the kernel sends first (FUSE 7.38, writeback cache). */
struct fuse_harness_init {
	struct fuse_in_header h;
	struct fuse_init_in in;
};
static const struct fuse_harness_init fuse_harness_init = {
	{ sizeof(struct fuse_harness_init), FUSE_INIT, 1, 0, 0, 0, 0, 0, 0 },
	{ 7, 38, 65536, FUSE_WRITEBACK_CACHE, 0, { 0 } }
};

/* @data from byte 1 on: records of a little-endian u16 length and that
 * many bytes (the last one cut to what is left), each given to @one. */
static void fuse_harness_records(const uint8_t *data, size_t size,
				 void (*one)(void *ctx, const uint8_t *req, size_t len),
				 void *ctx)
{
	size_t i = size ? 1 : 0;

	while (i + 2 <= size) {
		size_t n = (size_t)data[i] | (size_t)data[i + 1] << 8;

		i += 2;
		if (n > size - i)
			n = size - i;
		one(ctx, data + i, n);
		i += n;
	}
}

/* A reply's length is its parts; an error carries nothing. */
static void fuse_harness_check_reply(const struct remus_fuse_reply *rep)
{
	check(rep->hdr.len == sizeof(rep->hdr) + rep->body_len + rep->data_len);
	check(rep->body_len <= sizeof(rep->body));
	check(rep->hdr.error <= 0);
	if (rep->hdr.error)
		check(rep->body_len == 0 && rep->data_len == 0);
}

#endif
