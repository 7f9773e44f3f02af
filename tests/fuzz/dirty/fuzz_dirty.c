// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for dirty/fuse_ram.c: arbitrary bytes as the requests the
 * kernel sends the guest RAM server over /dev/fuse.  The kernel is the
 * only sender, but the server sits in the guest's memory path, so it must
 * survive anything.
 *
 * Input: a sequence of records, each a little-endian u16 length followed
 * by that many bytes, handed to the handler as one request (a valid INIT
 * is sent first unless byte 0 of the input is odd).  Besides "no crash,
 * no leak, no UB" it checks that each reply's length is its parts, that a
 * reply's data lies inside the copy, and that the dirty count equals the
 * bits set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dirty/fuse_ram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "check failed: %s (%s:%d)\n", #cond,     \
				__FILE__, __LINE__);                             \
			abort();                                                 \
		}                                                                \
	} while (0)

#define RAM_PAGES 64

static void one(struct remus_fuse_ram *r, const uint8_t *req, size_t len)
{
	struct remus_fuse_reply rep;
	/* A copy of exactly @len bytes, so ASan sees any read beyond. */
	uint8_t *buf = malloc(len ? len : 1);

	memcpy(buf, req, len);
	remus_fuse_ram_handle(r, buf, len, &rep);
	if (!rep.none) {
		check(rep.hdr.len == sizeof(rep.hdr) + rep.body_len + rep.data_len);
		check(rep.body_len <= sizeof(rep.body));
		check(rep.hdr.error <= 0);
		if (rep.hdr.error)
			check(rep.body_len == 0 && rep.data_len == 0);
		if (rep.data_len) {
			const uint8_t *d = rep.data;

			check(d >= r->copy &&
			      d + rep.data_len <= r->copy + r->size);
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_fuse_ram r;
	uint64_t count = 0;
	size_t i;

	if (remus_fuse_ram_init(&r, RAM_PAGES * 4096) < 0)
		abort();
	if (size == 0 || !(data[0] & 1)) {
		struct {
			struct fuse_in_header h;
			struct fuse_init_in in;
		} init = { { sizeof(init), FUSE_INIT, 1, 0, 0, 0, 0, 0, 0 },
			   { 7, 38, 65536, FUSE_WRITEBACK_CACHE, 0, { 0 } } };

		one(&r, (const uint8_t *)&init, sizeof(init));
	}
	i = size ? 1 : 0;
	while (i + 2 <= size) {
		size_t n = (size_t)data[i] | (size_t)data[i + 1] << 8;

		i += 2;
		if (n > size - i)
			n = size - i;
		one(&r, data + i, n);
		i += n;
	}
	for (i = 0; i < (RAM_PAGES + 63) / 64; i++)
		count += (uint64_t)__builtin_popcountll(r.bits[i]);
	check(count == r.ndirty);
	remus_fuse_ram_release(&r);
	return 0;
}
