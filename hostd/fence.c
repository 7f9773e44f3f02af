// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The fence rule (fence.h): which copy of a domain is stale, from the
 * takeover counts of the two hosts' records.  Pure; the host daemon
 * acts on the decision (virDomainDestroy through virt/) and logs @why.
 */
#include "hostd/fence.h"

#include <stdio.h>
#include <string.h>

const char *remus_hostd_fence_name(enum remus_hostd_fence f)
{
	switch (f) {
	case REMUS_HOSTD_FENCE_NONE:
		return "none";
	case REMUS_HOSTD_FENCE_DESTROY:
		return "destroy";
	case REMUS_HOSTD_FENCE_REFUSE:
		return "refuse";
	}
	return "?";
}

enum remus_hostd_fence remus_hostd_fence_create(const struct remus_hostd_dstate *rec,
						bool taking_over, const char *from,
						const char *primary, uint64_t takeover,
						char *why, size_t whylen)
{
	unsigned long long ours, theirs = (unsigned long long)takeover;

	if (whylen)
		why[0] = 0;
	if (!rec)
		return REMUS_HOSTD_FENCE_NONE;
	ours = (unsigned long long)rec->takeover + (taking_over ? 1 : 0);
	/* A standby (paused, never the live copy) is replaced as before,
	 * whatever the count: a fresh protection starts again at 0, and a
	 * standby record left by an unprotect that could not reach this
	 * host must not refuse it forever. */
	if (rec->role == REMUS_HOSTD_ROLE_STANDBY && !taking_over)
		return REMUS_HOSTD_FENCE_NONE;
	/* The domain may run here as its primary. */
	if (strcmp(from, rec->peer) != 0 && strcmp(primary, rec->peer) != 0) {
		snprintf(why, whylen, "domain %s runs here as the primary (its standby host is %s); "
			 "%s cannot make it a standby here", rec->domain, rec->peer, from);
		return REMUS_HOSTD_FENCE_REFUSE;
	}
	if (theirs > ours) {
		snprintf(why, whylen, "%s took domain %s over (takeover %llu; this host's record: "
			 "%llu): the copy here is stale", from, rec->domain, theirs, ours);
		return REMUS_HOSTD_FENCE_DESTROY;
	}
	snprintf(why, whylen, "domain %s runs here as the primary (takeover %llu) and %s did not "
		 "take it over since (its request says takeover %llu): the copy here is kept; if "
		 "%s runs it too, stop the copy that must go (virsh destroy %s on that host)",
		 rec->domain, ours, from, theirs, from, rec->domain);
	return REMUS_HOSTD_FENCE_REFUSE;
}

enum remus_hostd_fence remus_hostd_fence_refused(const struct remus_hostd_dstate *rec,
						 bool runs_primary, uint64_t takeover,
						 const char *identity, char *why, size_t whylen)
{
	unsigned long long ours, theirs = (unsigned long long)takeover;

	if (whylen)
		why[0] = 0;
	if (!rec || rec->role != REMUS_HOSTD_ROLE_PRIMARY || !runs_primary)
		return REMUS_HOSTD_FENCE_NONE;
	ours = (unsigned long long)rec->takeover;
	if (rec->owner[0] && strcmp(rec->owner, identity) != 0) {
		snprintf(why, whylen, "%s says it runs domain %s as the primary, but it proved to be "
			 "%s, not %s, this protection's owner: nothing is destroyed", rec->peer,
			 rec->domain, *identity ? identity : "nobody (no TLS)", rec->owner);
		return REMUS_HOSTD_FENCE_NONE;
	}
	if (theirs <= ours) {
		snprintf(why, whylen, "%s runs domain %s as the primary too, but without a takeover "
			 "newer than this host's (%llu, its own %llu): nothing is destroyed; stop the "
			 "copy that must go (virsh destroy %s on that host)", rec->peer, rec->domain,
			 ours, theirs, rec->domain);
		return REMUS_HOSTD_FENCE_NONE;
	}
	snprintf(why, whylen, "%s runs domain %s as the primary since its takeover %llu (this "
		 "host's record: %llu): the copy here is stale", rec->peer, rec->domain, theirs,
		 ours);
	return REMUS_HOSTD_FENCE_DESTROY;
}
