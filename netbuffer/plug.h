/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to netbuffer/: the kernel "plug" backend's primitives, used by
 * netbuffer.c behind the public interface of netbuffer/netbuffer.h (and by
 * its own tests).  A sch_plug qdisc holds a device's output; after Xen's
 * libxl_netbuffer.c.  Builds without libnl get plug_none.c, whose every
 * call fails with -ENOTSUP.
 */
#ifndef REMUS_NETBUFFER_PLUG_H
#define REMUS_NETBUFFER_PLUG_H

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
