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
#include "fuzz/dirty/fuse_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_PAGES 64

static void one(struct remus_fuse_ram *r, const uint8_t *req, size_t len)
{
	struct remus_fuse_reply rep;
	/* A copy of exactly @len bytes, so ASan sees any read beyond. */
	uint8_t *buf = malloc(len ? len : 1);

	memcpy(buf, req, len);
	remus_fuse_ram_handle(r, buf, len, &rep);
	if (!rep.none) {
		fuse_harness_check_reply(&rep);
		if (rep.data_len) {
			const uint8_t *d = rep.data;

			check(d >= r->copy &&
			      d + rep.data_len <= r->copy + r->size);
		}
	}
	free(buf);
}

static void one_record(void *ctx, const uint8_t *req, size_t len)
{
	one(ctx, req, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_fuse_ram r;
	uint64_t count = 0;
	size_t i;

	if (remus_fuse_ram_init(&r, RAM_PAGES * 4096) < 0)
		abort();
	if (size == 0 || !(data[0] & 1))
		one(&r, (const uint8_t *)&fuse_harness_init, sizeof(fuse_harness_init));
	fuse_harness_records(data, size, one_record, &r);
	for (i = 0; i < (RAM_PAGES + 63) / 64; i++)
		count += (uint64_t)__builtin_popcountll(r.bits[i]);
	check(count == r.ndirty);
	remus_fuse_ram_release(&r);
	return 0;
}
