/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to netbuffer/: the "qemu" backend.  QEMU's own filter-redirector
 * diverts the guest's output to us, we hold it per epoch and write it
 * back:
 *
 *   guest NIC ──> [filter-redirector queue=rx] ─outdev─> out socketpair ─> us
 *                       │                                                  │
 *   netdev <────────────┘<─indev─ in socketpair <── released frames ───────┘
 *
 * queue=rx because a filter on a netdev sees on its receive queue what the
 * netdev receives, i.e. what its peer, the guest's NIC, sends (net/net.c:
 * qemu_send_packet_async_with_flags runs the sender's TX filters, then the
 * peer's RX filters).  Frames written to indev re-enter after the filter
 * (qemu_netfilter_pass_to_next(netdev->peer, ...)), so they go on to the
 * netdev and never loop.
 *
 * Two layers, two files:
 *  - qemu_nic.c, the frame data path: the socketpairs, reading frames
 *    from outdev into the queue that netbuffer.c owns, writing released
 *    frames (remus_nbqemu_output()) to indev.
 *  - qemu.c, the QMP side: discovery, setup and teardown of the QEMU
 *    objects above, written in the order they run.
 */
#ifndef REMUS_NETBUFFER_QEMU_H
#define REMUS_NETBUFFER_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netbuffer/netbuffer.h"
#include "netbuffer/queue.h"

struct json_object;
struct remus_loop;
struct remus_qmp;
struct remus_nbqemu;

/* The backend's states (qemu.c draws the allowed changes). */
enum remus_nbqemu_state {
	REMUS_NBQEMU_NEW,
	REMUS_NBQEMU_DISCOVER,  /* finding the VM's NICs */
	REMUS_NBQEMU_SCAN,      /* removing what an earlier run left */
	REMUS_NBQEMU_SETUP,     /* adding chardevs and filters */
	REMUS_NBQEMU_READY,     /* holding */
	REMUS_NBQEMU_TEARDOWN,  /* removing (also a failed setup's rollback) */
	REMUS_NBQEMU_DONE,      /* final */
};
#define REMUS_NBQEMU_NSTATES (REMUS_NBQEMU_DONE + 1)

/* "new", "discover", ... (static storage; "?" out of range). */
const char *remus_nbqemu_state_name(enum remus_nbqemu_state s);
/* Whether the backend may go from @from to @to.  Pure. */
bool remus_nbqemu_state_transition_ok(enum remus_nbqemu_state from,
				      enum remus_nbqemu_state to);

/* Like remus_netbuffer_done_cb, but may be called from inside the backend
 * call that started the operation, and must not free the backend; @msg
 * borrowed. */
typedef void remus_nbqemu_done_cb(void *opaque, int rc, const char *msg);

/* @loop, @qmp, @q borrowed and outlive the backend; @netdevs (borrowed,
 * copied) NULL/0 to discover at setup.  Names must already be valid QOM
 * ids.  Returns 0 and *@out (owned: remus_nbqemu_free) or -ENOMEM. */
int remus_nbqemu_new(struct remus_loop *loop, struct remus_qmp *qmp, struct remus_nbq *q,
		     const char *const *netdevs, size_t n, struct remus_nbqemu **out);
/* Async setup, see remus_netbuffer_setup(); @done called exactly once. */
void remus_nbqemu_setup(struct remus_nbqemu *b, remus_nbqemu_done_cb *done, void *opaque);
/* Reads everything QEMU has written so far into the queue (the guest is
 * stopped, so this ends).  Returns 0 or the first read error (the NIC's
 * reader is then stopped and logged). */
int remus_nbqemu_drain(struct remus_nbqemu *b);
/* Async teardown, see remus_netbuffer_teardown(); during setup it cancels
 * it first (setup's done gets -ECANCELED).  @done called exactly once. */
void remus_nbqemu_teardown(struct remus_nbqemu *b, bool release,
			   remus_nbqemu_done_cb *done, void *opaque);
/* Immediate, no QMP; pending done callbacks are not called.  NULL ok. */
void remus_nbqemu_free(struct remus_nbqemu *b);

/* The queue's release callback lands here: writes one frame to @nic's
 * indev (buffered if the socket is full). */
void remus_nbqemu_output(struct remus_nbqemu *b, unsigned nic, const uint8_t *data,
			 uint32_t len, uint32_t vnet_hdr_len);

/* True if @s can be a netdev id and part of our object ids (QEMU's
 * id_wellformed(): a letter, then letters, digits, '-', '.', '_'; at most
 * 64 characters here). */
bool remus_nbqemu_valid_id(const char *s);

/* Adds dropped_malformed and dropped_io to @st. */
void remus_nbqemu_get_stats(const struct remus_nbqemu *b, struct remus_netbuffer_stats *st);
/* Adds "nics": [{"netdev", "filter", "frames" read, "malformed",
 * "vnet_hdr_len" of the last frame (-1 none yet), "unbuffered": its
 * outdev closed}] to @o (borrowed). */
void remus_nbqemu_status_json(const struct remus_nbqemu *b, struct json_object *o);
/* The netdevs in use (after discovery: what was found).  Borrowed. */
size_t remus_nbqemu_ndevices(const struct remus_nbqemu *b);
const char *remus_nbqemu_device(const struct remus_nbqemu *b, size_t i);

#endif
