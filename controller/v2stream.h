/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to controller/: the stream of an engine v2 checkpoint.
 *
 * In a v2 epoch the guest's main RAM is a shared file that remusd's dirty
 * tracker serves (dirty/dirty.h), and QEMU migrates with x-ignore-shared:
 * its stream carries the device state and the small non-shared blocks
 * (VGA RAM, ROMs) but none of the shared block's pages.  This composer
 * turns that stream, token by token, into the stream engine v1 would have
 * read for the same checkpoint, so that everything downstream (the
 * engine's parser, dedup, the standby rewriter, the standby and its
 * failover tail) is unchanged:
 *
 *   x-ignore-shared stream (parser A)        composed stream (parser B)
 *   header, commands, section headers,   ->  the same bytes
 *   pages of non-shared blocks, footers,
 *   device part, vmdescription
 *   configuration with the capabilities  ->  without that subsection: the
 *   subsection (x-ignore-shared)             standby QEMU runs without the
 *                                            capability and loads the
 *                                            shared block's pages as any
 *                                            RAM block's (its RAM may be on
 *                                            any backend, same block id)
 *   MEM_SIZE with an mr_addr per block   ->  without the addresses
 *   EOS of the END(ram) section          ->  first a PAGE (or ZERO) record
 *                                            for every page of the dirty
 *                                            set, content from the
 *                                            tracker's copy, then the EOS
 *
 * The injected records come after every record QEMU sent, so no record of
 * QEMU's relies on CONTINUE across them; the first one names the block.
 * Pages go out in bounded batches (remus_v2stream_pump) so the engine
 * parses them as they are made.  The composer trusts only what parser A
 * validated; anything it does not expect (a page of the shared block in
 * QEMU's stream, the block missing or of another size than the tracker's
 * file, a second END) fails the checkpoint with a message in @error.
 */
#ifndef REMUS_CONTROLLER_V2STREAM_H
#define REMUS_CONTROLLER_V2STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "migstream/migstream.h"

struct remus_v2stream {
	char block[256];       /* the shared block's idstr */
	const uint8_t *ram;    /* borrowed: the tracker's copy, @ram_size bytes */
	uint64_t ram_size;
	const uint64_t *bits;  /* borrowed: the pages to send, ram_size / 4096 bits */
	bool block_seen;       /* MEM_SIZE listed @block with @ram_size */
	bool in_end;           /* the last section header was END(ram) */
	bool injecting;        /* END's EOS held back until the pages are out */
	bool injected;         /* done: the pages and END's EOS were emitted */
	bool named;            /* an injected record named the block */
	uint64_t cursor;       /* next page to look at */
	uint64_t pages, zero_pages; /* records injected */
	char error[512];
};

/* @block (copied), @ram, @bits borrowed and must stay unchanged until the
 * composer is done (the guest is stopped).  @ram_size a multiple of 4096. */
void remus_v2stream_init(struct remus_v2stream *s, const char *block, const uint8_t *ram,
			 uint64_t ram_size, const uint64_t *bits);
/*
 * Appends the composed bytes for @tok (borrowed) to @out.  Returns 0, 1
 * when the dirty pages are to be injected now (call remus_v2stream_pump
 * until it returns 0, before the next token), -EBADMSG with s->error set,
 * or -ENOMEM.
 */
int remus_v2stream_token(struct remus_v2stream *s, const struct remus_migstream_token *tok,
			 struct remus_buf *out);
/* Appends injected records, about @max bytes of them, to @out; after the
 * last one END's EOS.  Returns 1 (more to come), 0 (done) or -ENOMEM. */
int remus_v2stream_pump(struct remus_v2stream *s, struct remus_buf *out, size_t max);

#endif
