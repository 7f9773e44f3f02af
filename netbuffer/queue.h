/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to netbuffer/: the per-epoch queue of held output frames, shared
 * by all NICs of a guest (backend-neutral; the qemu backend fills it, the
 * plug backend uses only its labels).
 *
 *     oldest                                              newest
 *     [ closed "7" ] -> [ closed "8" ] -> [ closed "7" ] -> [ open ]
 *                                              ^ commit(7) releases up to
 *                                                and including this one
 *
 * A barrier closes the open bucket under the epoch's label and opens a new
 * one.  Labels can repeat (a new protection session restarts the
 * standby's numbering), so commit(L) releases the *newest* closed bucket
 * labelled L and every bucket before it, in order: a later checkpoint
 * covers all earlier output.  Frames leave through one callback in the
 * order they were pushed, across NICs, so each NIC's order is kept.
 *
 * The open bucket holds at most epoch_limit bytes; a frame that would
 * exceed it is dropped and counted (the guest is never blocked).  In
 * pass-through mode (standby lost, policy release) frames are not held:
 * push hands them straight to the callback.
 *
 * Time is passed in by the caller (@now_ns, monotonic) so tests can drive
 * the latency statistics.
 */
#ifndef REMUS_NETBUFFER_QUEUE_H
#define REMUS_NETBUFFER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netbuffer/netbuffer.h"

/* How many of the latest releases the latency figures cover. */
#define REMUS_NBQ_LATENCY_WINDOW 4096u

/* A frame leaves the queue (committed, flushed or passed through).
 * @data (borrowed, freed after the call) holds @len bytes, the first
 * @vnet_hdr_len of them the virtio-net header; @nic is the index given to
 * push.  Must not call back into the queue. */
typedef void remus_nbq_release_cb(void *opaque, unsigned nic, const uint8_t *data,
				  uint32_t len, uint32_t vnet_hdr_len);

struct remus_nbq_frame;
struct remus_nbq_bucket;

enum remus_nbq_mode { REMUS_NBQ_HOLD, REMUS_NBQ_PASS, REMUS_NBQ_DROP };

struct remus_nbq {
	size_t epoch_limit;                 /* bytes per bucket */
	remus_nbq_release_cb *release;      /* NULL: frames are just freed */
	void *opaque;
	struct remus_nbq_bucket *head;      /* owned list, oldest first */
	struct remus_nbq_bucket *tail;      /* newest; open unless closed */
	enum remus_nbq_mode mode;
	struct remus_netbuffer_stats st;    /* queue's share of the stats */
	uint64_t lat_ns[REMUS_NBQ_LATENCY_WINDOW]; /* ring of hold times */
	uint64_t lat_total;                 /* releases recorded, ever */
};

/* @epoch_limit: 0 for 16 MiB.  @release, @opaque borrowed.  Cannot fail;
 * starts holding, with no bucket yet. */
void remus_nbq_init(struct remus_nbq *q, size_t epoch_limit,
		    remus_nbq_release_cb *release, void *opaque);
/* Frees every queued frame and bucket without releasing or counting
 * them (for teardown of the process).  Idempotent; the queue is empty and
 * still usable afterwards. */
void remus_nbq_release(struct remus_nbq *q);

/*
 * HOLD: copies the frame into the open bucket (opening one if needed).
 * Returns 0, -ENOBUFS if it would take the open bucket over epoch_limit
 * (dropped, counted in dropped_overflow), or -ENOMEM (dropped, also
 * counted as overflow: either way the guest's frame is lost).
 * PASS: hands it to the release callback at once; DROP: drops it, counted
 * in dropped_teardown; both return 0.  @data borrowed.
 */
int remus_nbq_push(struct remus_nbq *q, unsigned nic, const uint8_t *data, uint32_t len,
		   uint32_t vnet_hdr_len, uint64_t now_ns);

/* Closes the open bucket (an empty one if nothing was pushed) under
 * @label; later frames go to a new bucket.  In PASS or DROP mode only
 * counts.  Returns 0 or -ENOMEM (nothing changed). */
int remus_nbq_barrier(struct remus_nbq *q, uint64_t label);

/* Releases, in order, every bucket up to and including the newest closed
 * one labelled @label.  Returns how many buckets were released (>= 1), or
 * -ENOENT if no closed bucket has that label (nothing changes). */
int remus_nbq_commit(struct remus_nbq *q, uint64_t label, uint64_t now_ns);

/* Releases everything held, closed and open buckets, in order. */
void remus_nbq_flush(struct remus_nbq *q, uint64_t now_ns);
/* Drops everything held, counted in dropped_teardown. */
void remus_nbq_drop(struct remus_nbq *q);

/* PASS flushes what is held, DROP drops it, HOLD holds again from the
 * next push (nothing held is touched).  Idempotent. */
void remus_nbq_set_mode(struct remus_nbq *q, enum remus_nbq_mode mode, uint64_t now_ns);

/* Closed buckets waiting for a commit. */
size_t remus_nbq_closed(const struct remus_nbq *q);

/* Fills the queue's counters into @st (the others are left alone):
 * queued, released, passthrough, dropped_overflow, dropped_teardown,
 * held, max_held_bytes, held_epochs, latency, barriers, commits. */
void remus_nbq_get_stats(const struct remus_nbq *q, struct remus_netbuffer_stats *st);

#endif
