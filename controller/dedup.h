/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the standby already holds, per guest page, so that an epoch only
 * carries pages whose content changed.
 *
 * Every epoch is a full precopy pass: QEMU sends every non-zero page (and
 * a 9-byte ZERO record for the others) although most did not change since
 * the last checkpoint.  The controller keeps, for every page of every RAM
 * block of the MEM_SIZE list, a 128-bit XXH3 hash of the content the
 * standby will hold, and drops a PAGE whose hash equals it and a ZERO
 * record for a page the standby holds as zero (a zero page is simply the
 * hash of a zeroed page, so PAGE and ZERO content compare alike).
 *
 * Hash, not shadow copy: a shadow copy costs a page per page (4 KiB/page,
 * the guest's RAM size again) and a memcmp; the hash costs 16 B/page
 * (4 MiB per GiB of guest RAM, 0.4 %) plus a bit, and XXH3 hashes at
 * memory speed.  The price is a collision: two different contents with
 * the same hash make us drop a page the standby needs.  For accidental
 * collisions XXH3-128 behaves like a random 128-bit function: with about
 * 3 * 10^12 comparisons (a 4 GiB guest, one epoch a second, for a month)
 * the probability is about 3e12 / 2^128 ~ 1e-26.  XXH3 is not a cryptographic hash, so a
 * guest could try to build colliding pages on purpose; the hash is seeded
 * with a random 64-bit value per controller, and a guest that succeeded
 * would only corrupt its own replica.  A deployment that must rule this
 * out can turn dedup off (send everything).
 *
 * Epochs and acknowledgements.  The standby loads epochs strictly in
 * order and discards every epoch after the first one it did not commit.
 * So the state an epoch's pages are compared against is "the standby
 * after every epoch sent so far" (including earlier pages of this same
 * epoch: a page sent as A, B, A must be sent three times).  Each change
 * is logged with its epoch and the value it replaced:
 *
 *     remus_dedup_commit(e)  the standby acknowledged e: forget the undo
 *                            entries of epochs <= e (they are final)
 *     remus_dedup_abort(e)   e (and so every later epoch) will never be
 *                            loaded: undo their changes, newest first
 *
 * so an unacknowledged epoch never changes what we believe the standby
 * holds once it is aborted.  Unknown pages are always sent; every doubt
 * (a new block layout, an unknown block) makes pages unknown, never
 * "held".
 */
#ifndef REMUS_CONTROLLER_DEDUP_H
#define REMUS_CONTROLLER_DEDUP_H

#include <stdint.h>

#include "migstream/migstream.h"

struct remus_dedup;

struct remus_dedup_stats {
	uint64_t pages_sent, pages_dropped;
	uint64_t zero_sent, zero_dropped;
	uint64_t undo_entries; /* changes not yet acknowledged */
};

/* Returns 0 and a new, empty table in *@out (owned: remus_dedup_free()),
 * or -ENOMEM.  The hash seed is random. */
int remus_dedup_new(struct remus_dedup **out);
/* NULL ok. */
void remus_dedup_free(struct remus_dedup *d);

/*
 * The guest's RAM layout, from a MEM_SIZE token (@blocks borrowed).  The
 * same layout as before keeps what is known; any difference (or the first
 * call) forgets everything.  Returns 0 or -ENOMEM (then nothing is known
 * and every page is sent).
 */
int remus_dedup_set_layout(struct remus_dedup *d, const struct remus_migstream_block *blocks,
			   uint32_t nblocks, uint32_t page_size);

/* Pages from now on belong to @epoch.  Returns 0, or -EINVAL if @epoch is
 * not after the last acknowledged one or before the last begun one. */
int remus_dedup_begin_epoch(struct remus_dedup *d, uint64_t epoch);

/*
 * A remus_migstream_filter_cb: @opaque is the struct remus_dedup.  Returns
 * 0 (drop: the standby holds this content), 1 (send; recorded as what the
 * standby will hold) or -ENOMEM (nothing recorded).
 */
int remus_dedup_filter(void *opaque, const struct remus_migstream_token *tok);

/* The standby acknowledged @epoch: its changes and earlier ones are final. */
void remus_dedup_commit(struct remus_dedup *d, uint64_t epoch);
/* @epoch and every later epoch will never be loaded: undo their changes.
 * Until the next remus_dedup_begin_epoch() pages are sent, not recorded. */
void remus_dedup_abort(struct remus_dedup *d, uint64_t epoch);
/* The standby lost everything (restarted, resynced, a new session):
 * nothing is known, and epoch numbers may start again from 0. */
void remus_dedup_reset(struct remus_dedup *d);

void remus_dedup_get_stats(const struct remus_dedup *d, struct remus_dedup_stats *st);

#endif
