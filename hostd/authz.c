// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The authorisation of peer requests (authz.h): the owner of a record
 * against the identity TLS proved.  Pure: the host daemon looks the
 * records up and logs the refusal with the peer's name.
 */
#include "hostd/authz.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *who(const char *identity)
{
	return *identity ? identity : "an unauthenticated peer (no TLS)";
}

int remus_hostd_authorise(enum remus_hostd_peer_req req, const char *domain, const char *uuid,
			  const char *identity, const struct remus_hostd_dstate *byname,
			  const struct remus_hostd_dstate *byuuid, char *why, size_t whylen)
{
	if (req == REMUS_HOSTD_PEER_PING)
		return 0;
	if (req == REMUS_HOSTD_PEER_CREATE_STANDBY && byuuid &&
	    strcmp(byuuid->domain, domain) != 0) {
		snprintf(why, whylen, "UUID %s is domain %s's here (a %s), not %s's: a name or UUID "
			 "in use is not given to another domain", uuid ? uuid : "?",
			 byuuid->domain, remus_hostd_role_name(byuuid->role), domain);
		return -EPERM;
	}
	if (!byname || !byname->owner[0] || strcmp(byname->owner, identity) == 0)
		return 0;
	snprintf(why, whylen, "domain %s here (a %s) belongs to %s, not to %s: only its owner "
		 "may %s it", domain, remus_hostd_role_name(byname->role), byname->owner,
		 who(identity), req == REMUS_HOSTD_PEER_CREATE_STANDBY ? "replace"
			 : req == REMUS_HOSTD_PEER_FAILOVER ? "fail over"
			 : req == REMUS_HOSTD_PEER_SET_INTERVAL ? "change the interval of" 
			 : req == REMUS_HOSTD_PEER_QUERY ? "ask about" : "destroy");
	return -EPERM;
}
