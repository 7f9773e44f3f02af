// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The "plug" netbuffer backend on libnl-route (see netbuffer.h).
 *
 * sch_plug keeps a queue of epochs separated by barriers:
 *
 *     dequeue <- [ released | epoch N-1 ]| epoch N ]| epoch N+1 (open)
 *                                        ^barrier   ^barrier
 *
 * TCQ_PLUG_BUFFER appends a barrier, TCQ_PLUG_RELEASE_ONE lets the packets
 * up to the oldest barrier leave, TCQ_PLUG_RELEASE_INDEFINITE turns the
 * qdisc into a plain FIFO.  Each command is a "change" of the existing root
 * qdisc (RTM_NEWQDISC on the same handle), which is how Xen's Remus drives
 * it too.
 */
#include "netbuffer/plug.h"

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/plug.h>
#include <netlink/route/tc.h>

#include "common/log.h"

#define LOG "netbuffer"

struct remus_netbuffer_plug {
	struct nl_sock *sk;       /* owned */
	struct rtnl_qdisc *qdisc; /* owned */
	char ifname[IF_NAMESIZE];
	bool installed;
};

bool remus_netbuffer_plug_built(void)
{
	return true;
}

/* libnl reports -NLE_*; translate at the boundary. */
static int nlerr_to_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_NOMEM: return -ENOMEM;
	case NLE_PERM: return -EPERM;
	case NLE_NODEV: return -ENODEV;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_INVAL: return -EINVAL;
	case NLE_BUSY: return -EBUSY;
	case NLE_EXIST: return -EEXIST;
	case NLE_RANGE: return -ERANGE;
	case NLE_AGAIN: return -EAGAIN;
	default: return -EIO;
	}
}

/* Sends the qdisc's current plug command as a change of the root qdisc. */
static int plug_send(struct remus_netbuffer_plug *p, int flags, const char *what)
{
	int r = rtnl_qdisc_add(p->sk, p->qdisc, flags);

	if (r < 0) {
		int rc = nlerr_to_errno(r);

		if (rc == -ENOENT && !p->installed)
			remus_err(LOG, "%s: cannot add a plug qdisc: the kernel has no "
				  "sch_plug (load it with 'modprobe sch_plug')", p->ifname);
		else
			remus_err(LOG, "%s: plug %s failed: %s", p->ifname, what,
				  nl_geterror(r));
		return rc;
	}
	return 0;
}

int remus_netbuffer_plug_open(const char *ifname, uint32_t limit_bytes,
			      struct remus_netbuffer_plug **out)
{
	struct remus_netbuffer_plug *p;
	unsigned ifindex;
	int rc, r;

	if (!ifname || strlen(ifname) >= IF_NAMESIZE || limit_bytes == 0 ||
	    limit_bytes > INT32_MAX)
		return -EINVAL;
	ifindex = if_nametoindex(ifname);
	if (ifindex == 0) {
		remus_err(LOG, "no network device '%s' to plug: create it first "
			  "(an ifb device fed by the guest tap)", ifname);
		return -ENODEV;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	strcpy(p->ifname, ifname);
	p->sk = nl_socket_alloc();
	p->qdisc = rtnl_qdisc_alloc();
	if (!p->sk || !p->qdisc) {
		rc = -ENOMEM;
		goto out;
	}
	r = nl_connect(p->sk, NETLINK_ROUTE);
	if (r < 0) {
		remus_err(LOG, "%s: cannot open rtnetlink: %s", ifname, nl_geterror(r));
		rc = nlerr_to_errno(r);
		goto out;
	}
	rtnl_tc_set_ifindex(TC_CAST(p->qdisc), (int)ifindex);
	rtnl_tc_set_parent(TC_CAST(p->qdisc), TC_H_ROOT);
	rtnl_tc_set_handle(TC_CAST(p->qdisc), TC_HANDLE(0x52ed, 0));
	r = rtnl_tc_set_kind(TC_CAST(p->qdisc), "plug");
	if (r < 0) {
		remus_err(LOG, "libnl has no 'plug' qdisc module: %s", nl_geterror(r));
		rc = nlerr_to_errno(r);
		goto out;
	}
	/* Install (replacing the default root qdisc), then the first barrier:
	 * from here on output is held until a commit. */
	rtnl_qdisc_plug_set_limit(p->qdisc, (int)limit_bytes);
	rc = plug_send(p, NLM_F_CREATE | NLM_F_REPLACE, "install");
	if (rc < 0)
		goto out;
	p->installed = true;
	rc = remus_netbuffer_plug_barrier(p);
	if (rc < 0)
		goto out;
	remus_info(LOG, "%s: plug qdisc installed, holding output (limit %u bytes)",
		   ifname, limit_bytes);
	*out = p;
	p = NULL;
	rc = 0;
out:
	remus_netbuffer_plug_close(p);
	return rc;
}

int remus_netbuffer_plug_barrier(struct remus_netbuffer_plug *p)
{
	rtnl_qdisc_plug_buffer(p->qdisc);
	return plug_send(p, 0, "barrier");
}

int remus_netbuffer_plug_commit(struct remus_netbuffer_plug *p)
{
	rtnl_qdisc_plug_release_one(p->qdisc);
	return plug_send(p, 0, "release");
}

void remus_netbuffer_plug_close(struct remus_netbuffer_plug *p)
{
	if (!p)
		return;
	if (p->installed) {
		int r;

		/* Let everything out before the qdisc goes: deleting a plug
		 * qdisc drops what it holds. */
		rtnl_qdisc_plug_release_indefinite(p->qdisc);
		plug_send(p, 0, "release-all");
		r = rtnl_qdisc_delete(p->sk, p->qdisc);
		if (r < 0)
			remus_warn(LOG, "%s: cannot remove the plug qdisc: %s (remove it "
				   "with 'tc qdisc del dev %s root')", p->ifname,
				   nl_geterror(r), p->ifname);
	}
	rtnl_qdisc_put(p->qdisc);
	nl_socket_free(p->sk);
	free(p);
}
