/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test support: small, valid QEMU 10.0 precopy streams for the tests that
 * play QEMU's part of a migration (the engine's and the standby's), and
 * what the rewriter makes of them for the standby.
 *
 * One stream is one epoch as the primary QEMU sends it to the engine,
 * split where QEMU splits it in time:
 *
 *   running     header | configuration | OPEN_RETURN_PATH, PING |
 *               START(ram){MEM_SIZE: pc.ram, EOS} footer |
 *               PART(ram){part_pages pages, EOS} footer
 *   completion  SWITCHOVER_START | END(ram){end_pages pages, EOS} footer |
 *               FULL(timer){dev_bytes} footer | EOF | vmdescription
 *
 * The guest runs while QEMU sends the first part; the second is what it
 * sends after `stop`, before it waits for the return path's SHUT and
 * closes the channel.  Page contents depend on @seed, so two epochs with
 * different seeds differ.  tests/unit/migstream builds a richer stream
 * record by record to test the parser itself; this one only needs to be
 * valid.
 */
#ifndef REMUS_TESTS_SUPPORT_MIGSTREAM_BUILD_H
#define REMUS_TESTS_SUPPORT_MIGSTREAM_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct remus_test_migstream_opts {
	uint32_t ram_sid;     /* RAM section id; 0: 2 */
	unsigned ram_pages;   /* size of pc.ram in 4 KiB pages; 0: 64 */
	unsigned part_pages;  /* data pages sent while running (< ram_pages) */
	unsigned end_pages;   /* data pages sent after stop */
	unsigned seed;        /* page contents */
	size_t dev_bytes;     /* device state bytes in FULL(timer); 0: 64 */
	const char *block;    /* the RAM block's name; NULL: "pc.ram" */
	/* As QEMU writes it with x-ignore-shared on and @block shared (engine
	 * v2): the configuration lists the capability, MEM_SIZE gives each
	 * block's mr_addr; part_pages and end_pages should then be 0 (QEMU
	 * sends no page of a shared block: more is a stream to refuse). */
	bool ignore_shared;
	/* As QEMU writes it with suppress-vmdesc on: no vmdescription after
	 * the device part's EOF. */
	bool no_vmdesc;
};

/* Appends the two parts of one epoch's stream to @running and
 * @completion (borrowed; may be the same buffer).  Fails the test on
 * ENOMEM. */
void remus_test_migstream_build(const struct remus_test_migstream_opts *o,
				struct remus_buf *running, struct remus_buf *completion);

/*
 * Runs the complete stream @p, @n bytes (borrowed), through
 * migstream/migstream.h's parser and rewriter as the engine does for the
 * first epoch of a standby stream (@first) or a later one continuing RAM
 * section @standby_sid, no dedup.  Appends the standby's bytes to @out
 * and the held-back device part to @dev (either may be NULL).  Returns 0,
 * or the parser's or rewriter's -errno.
 */
int remus_test_migstream_rewrite(const void *p, size_t n, bool first, uint32_t standby_sid,
				 struct remus_buf *out, struct remus_buf *dev);

#endif
