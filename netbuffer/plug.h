/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to netbuffer/: the kernel "plug" backend's primitives, used by
 * netbuffer.c behind the public interface of netbuffer/netbuffer.h (and by
 * its own tests).  After Xen's libxl_netbuffer.c and remus-netbuf-setup.
 *
 * What a hypervisor host gets for the guest's tap device @tap (frames the
 * guest sends arrive there as ingress):
 *
 *   guest --> tap --ingress qdisc, u32 match-all--> mirred redirect
 *                                                      |
 *   host stack / bridge <-- ifb re-injects <-- sch_plug root of IFB rnb-<tap>
 *
 * Frames leave the IFB as if they had just been received on the tap, so
 * whatever the host does with the tap's traffic (bridge, routing) is
 * unchanged, only delayed.  Frames towards the guest are never touched.
 *
 * Everything here talks synchronously to the kernel over rtnetlink: each
 * call returns once the kernel has applied it (a few hundred microseconds),
 * which is what makes a barrier exact.  Builds without libnl get
 * plug_none.c, whose every call fails with -ENOTSUP.
 */
#ifndef REMUS_NETBUFFER_PLUG_H
#define REMUS_NETBUFFER_PLUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct remus_netbuffer_plug;

/* What the plug qdisc holds right now, from its kernel statistics. */
struct remus_netbuffer_plug_stats {
	uint64_t held_packets; /* queued in the plug (any epoch) */
	uint64_t held_bytes;
	uint64_t dropped;      /* refused since open: queue over limit_bytes */
};

/* True if this build has the plug backend (libnl-route). */
bool remus_netbuffer_plug_built(void);

/* Writes the name of the IFB device used for @tap (borrowed) into @out
 * (@size >= 16): "rnb-<tap>", truncated to IFNAMSIZ-1 characters.
 * Returns 0, -EINVAL for a bad tap name, -ENOTSUP without libnl. */
int remus_netbuffer_plug_ifb_name(const char *tap, char *out, size_t size);

/* Starts holding the output of the guest behind @tap (borrowed): creates
 * the IFB device (up, MTU of the tap, alias "remus-netbuffer tap=<tap>"),
 * a plug qdisc as its root with a @limit_bytes queue, then an ingress
 * qdisc on @tap whose match-all u32 filter redirects everything to the IFB.
 * The plug starts in buffer mode: from the moment the filter is in place,
 * every frame is held in the first (open) epoch.
 *
 * Idempotent across crashes: an IFB with our name and alias, and an
 * ingress qdisc on @tap that carries only our filter (or nothing, next to
 * our IFB), are leftovers of an earlier run and are removed first.
 *
 * Returns 0 and a handle in *@out (owned; free with
 * remus_netbuffer_plug_free), or -errno with a logged message, leaving
 * the host as it was:
 *   -EINVAL   bad name or @limit_bytes 0 or > INT32_MAX
 *   -ENODEV   no device @tap
 *   -ENOENT   the kernel lacks ifb, sch_plug, sch_ingress, cls_u32 or
 *             act_mirred (the message names the module to modprobe)
 *   -EBUSY    @tap has a foreign ingress/clsact qdisc or filter
 *   -EEXIST   a device with the IFB's name exists and is not ours
 *   -EPERM    no CAP_NET_ADMIN
 *   -ENOTSUP  built without libnl */
int remus_netbuffer_plug_open(const char *tap, uint32_t limit_bytes,
			      struct remus_netbuffer_plug **out);

/* Closes the current epoch: what is queued now is released by the next
 * commit, frames after it wait for a later one.  Also ends a
 * release_all: output is held again from here on.
 *
 * sch_plug remembers only one closed epoch.  A barrier while an earlier
 * closed epoch is still uncommitted cannot be given to the kernel without
 * losing that epoch, so it is merged: its frames stay in the kernel's open
 * epoch and leave with the commit after the next barrier that reaches the
 * kernel (later, never earlier).  Returns 0 or -errno (state unchanged). */
int remus_netbuffer_plug_barrier(struct remus_netbuffer_plug *p);

/* Commits the oldest closed epoch: releases its frames, in order, unless
 * they were merged into a later epoch by the rule above.  A commit with no
 * closed epoch does nothing.  Returns 0 or -errno (state unchanged). */
int remus_netbuffer_plug_commit(struct remus_netbuffer_plug *p);

/* Releases everything queued and lets frames pass straight through (for
 * running unprotected); the IFB, qdiscs and filter stay installed, and the
 * next barrier holds again.  Returns 0 or -errno. */
int remus_netbuffer_plug_release_all(struct remus_netbuffer_plug *p);

/* Reads the plug qdisc's statistics into *@st.  Returns 0 or -errno. */
int remus_netbuffer_plug_stats(struct remus_netbuffer_plug *p,
			       struct remus_netbuffer_plug_stats *st);

/* Releases everything queued (waiting up to 100 ms for the queue to
 * drain), then removes the filter, the ingress qdisc and the IFB: the host
 * is left as it was before open.  Failures are logged with the command
 * that finishes the job by hand.  Frees @p; NULL is fine. */
void remus_netbuffer_plug_free(struct remus_netbuffer_plug *p);

#endif
