/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fence rule: when this host may destroy its own copy of a domain
 * because the copy is stale, and when it must not (docs/ARCHITECTURE.md,
 * "When remusd serve stops or dies").  Pure, so every case has a test.
 *
 * Why it is needed: a primary child that dies (with the remusd serve of
 * its host, whose QMP proxy it talks through) looks like a dead host to
 * its standby, which takes over; but the old primary's QEMU lives on
 * under its libvirtd.  Two copies then run, and only one may stay.  The
 * one that stays is the one that took over: it is the one the standby
 * host's remusd runs on and will protect, and the old copy (its disk on a
 * dead child's export, its output no longer replicated) has nothing to
 * go on with.
 *
 * How a host tells which copy is stale: each record counts the
 * takeovers of its protection (hostd/state.h "takeover"): a standby's
 * record has its primary's count, and a standby that takes over records
 * one more as it becomes the primary.  So after a takeover the survivor
 * holds count N+1 and the old primary's host still N.  The rule:
 *
 *   this host's record    request                          decision
 *   ------------------    -------                          --------
 *   none, or a standby    create-standby, any count        none (usual path:
 *                                                            a paused standby
 *                                                            is replaced)
 *   primary (or taking    create-standby from its peer,    destroy ours (stale)
 *     over: ours + 1)       count > ours
 *   primary (or taking    any other create-standby         refuse, runs here
 *     over)
 *   primary               its create-standby refused by    destroy ours (stale)
 *                           its peer that runs the domain
 *                           as primary, count > ours,
 *                           proven to be the record's owner
 *   primary, restarted    its peer's answer to query       destroy ours (stale),
 *     (before its child     (peer.h): it runs the domain     before any child
 *     starts again)         as primary, count > ours,        starts on it
 *                           proven to be the record's owner
 *   primary, restarted    any other answer, or none        resume the child
 *                           (peer unreachable)
 *
 * Only the record's owner reaches these (hostd/authz.h checks the TLS
 * identity of every request; a refused answer's identity is checked
 * here), so another host, or a host that lies about its name, cannot
 * make this host destroy anything.  The owner itself has a count above
 * ours only after it took the domain over, which it does only when its
 * standby went active (its QEMU runs the guest), and it sends
 * create-standby only while its libvirt shows the domain running: so a
 * destroy here always leaves the copy there running.  When the peer
 * cannot be reached nothing is destroyed (no answer, no decision).
 *
 * The restart rows: a remusd serve that starts again with a primary
 * record asks the record's standby host (query) before it starts the
 * primary child, because that child gives the copy here its disks (its
 * NBD exports) and its network (it removes the filters the dead one
 * left) back: on a stale copy that is a second guest on the network with
 * the survivor's MAC.  A peer that cannot be reached (its host is down,
 * or the network between the two) gives no decision, and the child
 * starts as before: if the peer's host is down the copy here is the only
 * one, and without its child its disk and network stay dead, which for
 * an HA tool is an outage it made itself; waiting for an answer that may
 * never come would make it one with no end.  If the peer did take over
 * and is only out of reach, the two copies run until it answers (the
 * child's re-protection asks again, the rows above), as before the
 * query.  The wait for the answer is bounded by the peer timeout; the
 * guest itself is not held meanwhile (a guest a checkpoint left paused
 * is resumed first, hostd.c on_recovered).
 * Under --insecure (no identities) a peer can claim any count: that mode
 * trusts the network, as it says at every session.
 */
#ifndef REMUS_HOSTD_FENCE_H
#define REMUS_HOSTD_FENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostd/state.h"

enum remus_hostd_fence {
	REMUS_HOSTD_FENCE_NONE,    /* no copy of ours is at stake: go on as before */
	REMUS_HOSTD_FENCE_DESTROY, /* the copy here is stale: destroy it */
	REMUS_HOSTD_FENCE_REFUSE,  /* the copy here may be the live one: refuse, change nothing */
};

const char *remus_hostd_fence_name(enum remus_hostd_fence f);

/*
 * A create-standby of @rec's domain (same UUID: checked before) arrived
 * from the peer that said hello as @from, naming @primary (both borrowed)
 * as its primary, with takeover count @takeover.  @rec: this host's
 * record of the domain (borrowed) or NULL; @taking_over: its standby
 * child went active and the record is not rewritten yet (it counts as a
 * primary with one takeover more).  Returns the decision, with @why
 * (@whylen bytes) saying why for the log and the answer (DESTROY and
 * REFUSE; "" for NONE).
 */
enum remus_hostd_fence remus_hostd_fence_create(const struct remus_hostd_dstate *rec,
						bool taking_over, const char *from,
						const char *primary, uint64_t takeover,
						char *why, size_t whylen);

/*
 * The create-standby this host sent for its primary record @rec
 * (borrowed) was refused by its peer, proven as @identity (borrowed; ""
 * without TLS), which says it runs the domain as primary with count
 * @takeover (@runs_primary; false: it did not say so).  Returns DESTROY
 * (our copy is stale), or NONE (keep retrying as before; @why says why
 * nothing is destroyed when the peer claimed it runs the domain).  The
 * same decision for the peer's answer to query after a restart (the
 * restart rows): NONE then resumes the primary child.
 */
enum remus_hostd_fence remus_hostd_fence_refused(const struct remus_hostd_dstate *rec,
						 bool runs_primary, uint64_t takeover,
						 const char *identity, char *why, size_t whylen);

#endif
