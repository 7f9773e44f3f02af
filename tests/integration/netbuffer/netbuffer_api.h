/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The public netbuffer interface (netbuffer/netbuffer.h) with the plug
 * backend, driven the way remusd drives it: a struct remus_loop, no QMP,
 * two tun/tap devices as the guest's NICs.  Run by plugtest inside the
 * test guest after the primitives' checks (plug_cycle.h); the traffic and
 * snapshot helpers are plug_cycle.c's.
 */
#ifndef REMUS_TESTS_NETBUFFER_API_H
#define REMUS_TESTS_NETBUFFER_API_H

/* Creates the taps "rapi0" (10.78.0.0/24) and "rapi1" (10.79.0.0/24),
 * runs every check of the public interface on them (names "api/..."; one
 * PASS/FAIL line each, with what was measured) and removes them again.
 * Needs CAP_NET_ADMIN and a kernel with sch_plug, ifb, act_mirred,
 * sch_ingress, cls_u32 and tun.  Returns the number of failed checks. */
int netbuffer_api_checks(void);

#endif
