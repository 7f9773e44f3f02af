/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Progress as remusctl(8) documents it in status, the same five keys for
 * every transfer: {bytes, total, percent, rate_bps, eta_s}.  Two sources
 * feed it: a block copy of a disk that libvirt reports (protect moves a
 * disk onto remusd's export, unprotect moves it back; hostd samples it),
 * and the engine's initial sync of the guest's memory, whose own status
 * object has other names (ram_bytes, copied_bytes, remaining_bytes) and
 * stays whole under "child".  Pure functions, so they are unit-tested.
 */
#ifndef REMUS_HOSTD_PROGRESS_H
#define REMUS_HOSTD_PROGRESS_H

#include <stdint.h>

struct json_object;

/* One copy as sampled: the first sample anchors the rate. */
struct remus_hostd_copy {
	uint64_t bytes, total;  /* the last sample */
	uint64_t bytes0, t0_ms; /* the first sample */
	uint64_t t_ms;          /* when the last sample came */
	unsigned samples;
};

/* Records one sample (@now_ms: a monotonic clock). */
void remus_hostd_copy_update(struct remus_hostd_copy *c, uint64_t bytes, uint64_t total,
			     uint64_t now_ms);

/* {bytes, total, percent, rate_bps, eta_s} of @c (owned), rate and eta
 * null until two samples a second apart; NULL before any sample or on
 * ENOMEM. */
struct json_object *remus_hostd_copy_json(const struct remus_hostd_copy *c);

/* The engine's initial_sync object @engine (borrowed) in remusctl(8)'s
 * keys (owned), or NULL if @engine is null or not such an object.  An
 * object that has "bytes" and "total" already is taken as it is. */
struct json_object *remus_hostd_sync_json(struct json_object *engine);

#endif
