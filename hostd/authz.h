/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which peer may act on which domain (issue 12): the authorisation of the
 * peer protocol's requests, pure, so that every rule has a unit test.
 *
 * TLS (peerlink.h) proves who a peer is: "PSK identity NAME" or its
 * certificate's DN, "" without TLS.  A record of this host
 * (hostd/state.h) keeps the identity it belongs to, its owner: the
 * primary's host that created a standby here, or the standby host a
 * primary here protects onto.  A request names a domain (and, to create,
 * its UUID); it is allowed when
 *
 *   ping                          always
 *   create-standby NAME UUID      no record here holds UUID under another
 *                                 name, and the record of NAME, if any,
 *                                 belongs to this identity (or to none)
 *   destroy-standby, failover,    the record of NAME, if any, belongs to
 *   set-interval, query           this identity (or to none)
 *
 * A record without an owner (written before issue 12, or by a host
 * running --insecure) binds no identity.  Without TLS every peer is ""
 * and cannot act on a record that has an owner.  What is not remus's
 * (a domain libvirt has here that no record names) is checked against
 * libvirt when the standby is created (virt/domain.h,
 * remus_virt_check_absent): a name or UUID in use is refused there.
 */
#ifndef REMUS_HOSTD_AUTHZ_H
#define REMUS_HOSTD_AUTHZ_H

#include <stddef.h>

#include "hostd/peer.h"
#include "hostd/state.h"

/*
 * May the peer proven as @identity (borrowed) send @req for @domain (and
 * @uuid, create-standby only; both borrowed)?  @byname: this host's
 * record of @domain, or NULL; @byuuid: a record of another name with
 * @uuid, or NULL.  Returns 0, or -EPERM with @why (@whylen bytes) naming
 * the domain, its owner and the asking identity.
 */
int remus_hostd_authorise(enum remus_hostd_peer_req req, const char *domain, const char *uuid,
			  const char *identity, const struct remus_hostd_dstate *byname,
			  const struct remus_hostd_dstate *byuuid, char *why, size_t whylen);

#endif
