/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Output commit: every packet the guest sends during epoch N is held until
 * the standby has acknowledged checkpoint N.  A backend implements four
 * hooks, called by the epoch engine in this order (after Xen's checkpoint
 * device ops):
 *
 *   setup          once, before the first epoch: start holding output
 *   barrier        each epoch, while the guest is stopped: packets queued
 *                  so far belong to the epoch being checkpointed, later
 *                  ones to the next
 *   commit         when the standby acks an epoch: release its packets
 *   teardown       once: stop holding, release or drop what is queued
 *
 * A packet in flight when the barrier is set lands in the next epoch:
 * later, never earlier.  Inbound traffic is never delayed.
 *
 * This header so far declares the kernel "plug" backend: a sch_plug qdisc
 * on a network device (an IFB fed by the guest tap's ingress), after Xen's
 * libxl_netbuffer.c.  Builds without libnl get a stub whose every call
 * fails with -ENOTSUP (plug_none.c).  The QEMU filter-redirector backend
 * comes with the netbuffer issue.
 */
#ifndef REMUS_NETBUFFER_H
#define REMUS_NETBUFFER_H

#include <stdbool.h>
#include <stdint.h>

struct remus_netbuffer_plug;

/* True if this build has the plug backend (libnl-route). */
bool remus_netbuffer_plug_built(void);

/* Installs a plug qdisc with a @limit_bytes queue as the root qdisc of
 * @ifname (borrowed), replacing what was there, and starts holding its
 * output (the first barrier).  Returns 0 and a handle in *@out (owned;
 * close with remus_netbuffer_plug_close), or -errno with a logged message:
 * -ENODEV no such device, -ENOENT the kernel has no sch_plug (modprobe
 * sch_plug), -ENOTSUP built without libnl, -EPERM not allowed. */
int remus_netbuffer_plug_open(const char *ifname, uint32_t limit_bytes,
			      struct remus_netbuffer_plug **out);
/* Inserts an epoch barrier: what is queued now is released by the next
 * commit, later packets wait for the one after.  Returns 0 or -errno. */
int remus_netbuffer_plug_barrier(struct remus_netbuffer_plug *p);
/* Releases the packets of the oldest barrier-closed epoch.  0 or -errno. */
int remus_netbuffer_plug_commit(struct remus_netbuffer_plug *p);
/* Releases everything queued, removes the qdisc (the device falls back
 * to its default qdisc) and frees @p.  NULL is fine. */
void remus_netbuffer_plug_close(struct remus_netbuffer_plug *p);

#endif
