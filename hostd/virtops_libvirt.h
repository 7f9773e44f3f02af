/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The libvirt operations of the host daemon (hostd/virtops.h) on virt/:
 * a connection to @uri whose calls run on worker threads, the domain
 * helpers, and one QMP proxy per protected domain.
 */
#ifndef REMUS_HOSTD_VIRTOPS_LIBVIRT_H
#define REMUS_HOSTD_VIRTOPS_LIBVIRT_H

#include <stdint.h>

#include "hostd/virtops.h"

struct remus_loop;

/* Opens @uri (borrowed) on @loop's workers (the open completes later; a
 * failure is logged and every operation then fails with it); the disks'
 * block copies run at most at @copy_bps bytes/s (0: no limit).  Returns 0
 * with *@ops (static) and *@impl (owned: (*ops)->free) or -errno. */
int remus_hostd_virt_libvirt_new(struct remus_loop *loop, const char *uri, uint64_t copy_bps,
				 const struct remus_hostd_virt_ops **ops, void **impl);

#endif
