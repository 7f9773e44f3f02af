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
 (The interface itself arrives with the netbuffer issue; the kernel plug
 * backend's primitives are private, in netbuffer/plug.h.)
 */
#ifndef REMUS_NETBUFFER_H
#define REMUS_NETBUFFER_H

#include <stdbool.h>
#include <stdint.h>

#endif
