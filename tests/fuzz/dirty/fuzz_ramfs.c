// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for remusd ramfs (dirty/ramfs_fs.c): arbitrary bytes as the
 * /dev/fuse requests the server handles, and as the control socket's
 * request and reply messages.  The kernel is the only FUSE sender, but the
 * server is in the memory path of every guest on it, and local users
 * (with --allow-other, libvirt's qemu user) choose the operations and
 * names; the control parsers take what a client or server sent.
 *
 * Input: byte 0 is flags (bit 0: no INIT sent first; bit 1: each
 * request's header length is set to its record's, so the fuzzer reaches
 * the bodies), then records of a little-endian u16 length and that many
 * bytes, each one request.  After the requests, the whole input goes to
 * both control parsers.  Besides "no crash, no leak, no UB": a reply's
 * length is its parts, an error carries nothing, data never exceeds what
 * one reply may carry, and the file count never exceeds the nodes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dirty/ramfs.h"
#include "fuzz/dirty/fuse_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(struct remus_ramfs *fs, const uint8_t *req, size_t len,
		int fix_len)
{
	struct remus_fuse_reply rep;
	/* A copy of exactly @len bytes, so ASan sees any read beyond. */
	uint8_t *buf = malloc(len ? len : 1);

	memcpy(buf, req, len);
	if (fix_len && len >= sizeof(struct fuse_in_header)) {
		uint32_t l = (uint32_t)len;

		memcpy(buf, &l, sizeof(l));
	}
	remus_ramfs_handle(fs, buf, len, &rep);
	if (!rep.none) {
		fuse_harness_check_reply(&rep);
		check(rep.data_len <= REMUS_FUSE_MAX_WRITE);
		if (rep.data_len) {
			/* Touch every byte: ASan finds data outside a map. */
			const volatile uint8_t *d = rep.data;
			uint8_t x = 0;
			size_t i;

			for (i = 0; i < rep.data_len; i += 512)
				x ^= d[i];
			x ^= d[rep.data_len - 1];
			(void)x;
		}
	}
	free(buf);
}

static void one_as_is(void *ctx, const uint8_t *req, size_t len)
{
	one(ctx, req, len, 0);
}

static void one_fixed(void *ctx, const uint8_t *req, size_t len)
{
	one(ctx, req, len, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_ramfs fs;
	struct remus_ramfs_req q;
	struct remus_ramfs_rep r;
	int flags = size ? data[0] : 0;

	if (remus_ramfs_init(&fs) < 0)
		abort();
	if (!(flags & 1))
		one(&fs, (const uint8_t *)&fuse_harness_init, sizeof(fuse_harness_init), 0);
	fuse_harness_records(data, size, (flags & 2) ? one_fixed : one_as_is, &fs);
	check(remus_ramfs_nfiles(&fs) <= fs.nnodes);
	remus_ramfs_release(&fs);
	/* The control messages, as received. */
	if (remus_ramfs_parse_req(data, size, &q) == 0)
		check(q.op == REMUS_RAMFS_OP_ATTACH || q.op == REMUS_RAMFS_OP_STAT);
	if (remus_ramfs_parse_rep(data, size, REMUS_RAMFS_OP_ATTACH, &r) == 0)
		check(r.status <= 0 && r.status > -4096);
	return 0;
}
