// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The "plug" netbuffer backend on libnl-route (see plug.h for the picture).
 *
 * sch_plug keeps one queue and three counters: packets of the open epoch,
 * packets of the one closed-but-unreleased epoch, packets released:
 *
 *     dequeue <- [ released | closed epoch ]| open epoch  <- enqueue
 *                                           ^TCQ_PLUG_BUFFER
 *
 * TCQ_PLUG_BUFFER closes the open epoch (overwriting the closed count!),
 * TCQ_PLUG_RELEASE_ONE lets the closed epoch leave, and
 * TCQ_PLUG_RELEASE_INDEFINITE turns the qdisc into a FIFO until the next
 * BUFFER.  A freshly created plug qdisc is in buffer mode.  Each command is
 * a "change" of the IFB's root qdisc (RTM_NEWQDISC on the same handle, no
 * NLM_F_CREATE), as Xen's Remus drives it.
 *
 * Because the kernel keeps a single closed epoch, we count epochs here:
 * @kernel_closed caller epochs are covered by the kernel's closed epoch,
 * @merged caller epochs were closed by a barrier the kernel never saw (an
 * earlier one was still uncommitted) and sit in the kernel's open epoch.
 * The kernel's closed epoch is released when the last caller epoch it
 * covers is committed.
 *
 * Setup order is IFB, plug, ingress qdisc, filter, so no frame reaches
 * the IFB before the plug holds it; teardown is the reverse, after a
 * release and a drain, so nothing held is dropped.
 */
#include "netbuffer/plug.h"

#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/plug.h>
#include <netlink/route/tc.h>

#include "common/log.h"

#define LOG "netbuffer"

/* Our marks: the plug's handle, the filter's priority on the tap's
 * ingress, and the IFB's alias prefix.  A filter with another priority on
 * the tap is somebody else's. */
#define PLUG_HANDLE TC_HANDLE(0x52ed, 0)
#define FILTER_PRIO 0x52ed
#define INGRESS_PARENT TC_H_MAKE(TC_H_INGRESS, 0)
#define ALIAS_PREFIX "remus-netbuffer tap="
#define DRAIN_WAIT_MS 100

struct remus_netbuffer_plug {
	struct nl_sock *sk;       /* owned */
	struct rtnl_qdisc *plug;  /* owned: the IFB's plug, reused per command */
	char tap[IF_NAMESIZE];
	char ifb[IF_NAMESIZE];
	char alias[sizeof(ALIAS_PREFIX) + IF_NAMESIZE];
	int tap_ifindex;
	int ifb_ifindex;
	/* What open made, so a failed open and close undo exactly that. */
	bool ifb_made, plug_made, ingress_made, filter_made;
	unsigned kernel_closed; /* caller epochs in the kernel's closed epoch */
	unsigned merged;        /* closed caller epochs in its open epoch */
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
	case NLE_PERM:
	case NLE_NOACCESS: return -EPERM;
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

/* Logs a failed kernel request on @p's tap and returns its -errno.  A
 * missing module (-ENOENT, or -EOPNOTSUPP for a link kind) is named. */
static int nl_fail(const struct remus_netbuffer_plug *p, int nlerr,
		   const char *what, const char *module)
{
	int rc = nlerr_to_errno(nlerr);

	if (module && (rc == -ENOENT || rc == -EOPNOTSUPP)) {
		remus_err(LOG, "%s: cannot %s: the kernel lacks %s (load it with "
			  "'modprobe %s')", p->tap, what, module, module);
		return -ENOENT;
	}
	if (rc == -EPERM)
		remus_err(LOG, "%s: cannot %s: not permitted (needs root or "
			  "CAP_NET_ADMIN)", p->tap, what);
	else
		remus_err(LOG, "%s: cannot %s: %s", p->tap, what, nl_geterror(nlerr));
	return rc;
}

int remus_netbuffer_plug_ifb_name(const char *tap, char *out, size_t size)
{
	if (!tap || !*tap || strlen(tap) >= IF_NAMESIZE || !out || size < IF_NAMESIZE)
		return -EINVAL;
	/* Truncation is the point: a name longer than IFNAMSIZ-1 is cut. */
	memcpy(out, "rnb-", 4);
	snprintf(out + 4, IF_NAMESIZE - 4, "%.*s", IF_NAMESIZE - 5, tap);
	return 0;
}

/* ---- kernel objects ---------------------------------------------------- */

/* Looks a link up by name.  Returns 1 and *@out (owned), 0 if there is
 * none, or -errno. */
static int link_get(struct remus_netbuffer_plug *p, const char *name,
		    struct rtnl_link **out)
{
	int r = rtnl_link_get_kernel(p->sk, 0, name, out);

	if (r == -NLE_NODEV || r == -NLE_OBJ_NOTFOUND)
		return 0;
	if (r < 0)
		return nl_fail(p, r, "look up network devices", NULL);
	return 1;
}

static int link_delete(struct remus_netbuffer_plug *p, const char *name)
{
	struct rtnl_link *link = rtnl_link_alloc();
	int r;

	if (!link)
		return -ENOMEM;
	rtnl_link_set_name(link, name);
	r = rtnl_link_delete(p->sk, link);
	rtnl_link_put(link);
	if (r < 0 && r != -NLE_NODEV && r != -NLE_OBJ_NOTFOUND) {
		remus_warn(LOG, "%s: cannot remove device %s: %s (remove it with "
			   "'ip link del %s')", p->tap, name, nl_geterror(r), name);
		return nlerr_to_errno(r);
	}
	return 0;
}

static struct rtnl_qdisc *ingress_alloc(const struct remus_netbuffer_plug *p)
{
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();

	if (!q)
		return NULL;
	rtnl_tc_set_ifindex(TC_CAST(q), p->tap_ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
	rtnl_tc_set_handle(TC_CAST(q), INGRESS_PARENT);
	if (rtnl_tc_set_kind(TC_CAST(q), "ingress") < 0) {
		rtnl_qdisc_put(q);
		return NULL;
	}
	return q;
}

static int ingress_delete(struct remus_netbuffer_plug *p)
{
	struct rtnl_qdisc *q = ingress_alloc(p);
	int r;

	if (!q)
		return -ENOMEM;
	r = rtnl_qdisc_delete(p->sk, q);
	rtnl_qdisc_put(q);
	if (r < 0 && r != -NLE_OBJ_NOTFOUND && r != -NLE_INVAL) {
		remus_warn(LOG, "%s: cannot remove the ingress qdisc: %s (remove "
			   "it with 'tc qdisc del dev %s ingress')", p->tap,
			   nl_geterror(r), p->tap);
		return nlerr_to_errno(r);
	}
	return 0;
}

/* Our filter, as added and as deleted: u32 at our priority, all protocols. */
static struct rtnl_cls *filter_alloc(const struct remus_netbuffer_plug *p)
{
	struct rtnl_cls *cls = rtnl_cls_alloc();

	if (!cls)
		return NULL;
	rtnl_tc_set_ifindex(TC_CAST(cls), p->tap_ifindex);
	rtnl_tc_set_parent(TC_CAST(cls), INGRESS_PARENT);
	rtnl_cls_set_prio(cls, FILTER_PRIO);
	rtnl_cls_set_protocol(cls, ETH_P_ALL);
	if (rtnl_tc_set_kind(TC_CAST(cls), "u32") < 0) {
		rtnl_cls_put(cls);
		return NULL;
	}
	return cls;
}

static int filter_delete(struct remus_netbuffer_plug *p)
{
	struct rtnl_cls *cls = filter_alloc(p);
	int r;

	if (!cls)
		return -ENOMEM;
	/* No handle: the kernel removes every u32 node at this priority. */
	r = rtnl_cls_delete(p->sk, cls, 0);
	rtnl_cls_put(cls);
	if (r < 0 && r != -NLE_OBJ_NOTFOUND) {
		remus_warn(LOG, "%s: cannot remove the redirect filter: %s (remove "
			   "it with 'tc filter del dev %s ingress prio %d')", p->tap,
			   nl_geterror(r), p->tap, FILTER_PRIO);
		return nlerr_to_errno(r);
	}
	return 0;
}

/* Reads the plug qdisc's counters.  Returns 0 or -errno. */
static int plug_read_stats(struct remus_netbuffer_plug *p,
			   struct remus_netbuffer_plug_stats *st)
{
	struct nl_cache *cache = NULL;
	struct rtnl_qdisc *q = NULL;
	int r, rc;

	r = rtnl_qdisc_alloc_cache(p->sk, &cache);
	if (r < 0)
		return nl_fail(p, r, "read qdisc statistics", NULL);
	q = rtnl_qdisc_get(cache, p->ifb_ifindex, PLUG_HANDLE);
	if (!q) {
		remus_err(LOG, "%s: the plug qdisc on %s is gone (removed by "
			  "someone else?)", p->tap, p->ifb);
		rc = -ENOENT;
		goto out;
	}
	st->held_packets = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_QLEN);
	st->held_bytes = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_BACKLOG);
	st->dropped = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_DROPS);
	rc = 0;
out:
	rtnl_qdisc_put(q);
	nl_cache_free(cache);
	return rc;
}

/* Sends one plug command (a change of the IFB's root qdisc). */
static int plug_command(struct remus_netbuffer_plug *p,
			int (*set)(struct rtnl_qdisc *), const char *what)
{
	int r;

	set(p->plug);
	r = rtnl_qdisc_add(p->sk, p->plug, 0);
	if (r < 0)
		return nl_fail(p, r, what, NULL);
	return 0;
}

/* ---- leftovers --------------------------------------------------------- */

/* What an earlier run may have left behind, and whether it is ours. */
struct leftovers {
	bool ifb;           /* our IFB exists */
	bool ingress;       /* @tap has an ingress qdisc we may remove */
};

/* Checks the IFB name: free, or ours (kind ifb, our alias).  Returns 0 or
 * -EEXIST for somebody else's device. */
static int check_ifb(struct remus_netbuffer_plug *p, struct leftovers *lo)
{
	struct rtnl_link *link = NULL;
	const char *kind, *alias;
	int rc;

	rc = link_get(p, p->ifb, &link);
	if (rc <= 0)
		return rc;
	kind = rtnl_link_get_type(link);
	alias = rtnl_link_get_ifalias(link);
	if (!kind || strcmp(kind, "ifb") != 0 || !alias || strcmp(alias, p->alias) != 0) {
		remus_err(LOG, "%s: device %s exists and is not this tap's output "
			  "buffer (kind %s, alias '%s'): remove it with 'ip link del "
			  "%s' or rename the tap", p->tap, p->ifb, kind ? kind : "?",
			  alias ? alias : "", p->ifb);
		rc = -EEXIST;
	} else {
		lo->ifb = true;
		rc = 0;
	}
	rtnl_link_put(link);
	return rc;
}

struct filter_scan {
	unsigned ours, foreign;
};

static void count_filter(struct nl_object *obj, void *arg)
{
	struct rtnl_cls *cls = (struct rtnl_cls *)obj;
	struct filter_scan *scan = arg;
	const char *kind = rtnl_tc_get_kind(TC_CAST(cls));

	/* One u32 filter shows up as several nodes (hash table, key), all
	 * with its priority and protocol. */
	if (rtnl_cls_get_prio(cls) == FILTER_PRIO && kind && strcmp(kind, "u32") == 0 &&
	    rtnl_cls_get_protocol(cls) == ETH_P_ALL)
		scan->ours++;
	else
		scan->foreign++;
}

/* Checks the tap's ingress hook: none, ours (only our filter, or empty
 * next to our leftover IFB), or foreign (-EBUSY). */
static int check_ingress(struct remus_netbuffer_plug *p, struct leftovers *lo)
{
	struct nl_cache *qdiscs = NULL, *filters = NULL;
	struct rtnl_qdisc *q = NULL;
	struct filter_scan scan = { 0, 0 };
	const char *kind;
	int r, rc;

	r = rtnl_qdisc_alloc_cache(p->sk, &qdiscs);
	if (r < 0)
		return nl_fail(p, r, "list qdiscs", NULL);
	/* ingress and clsact both sit at parent ffff:fff1. */
	q = rtnl_qdisc_get_by_parent(qdiscs, p->tap_ifindex, TC_H_INGRESS);
	if (!q) {
		rc = 0;
		goto out;
	}
	kind = rtnl_tc_get_kind(TC_CAST(q));
	if (!kind || strcmp(kind, "ingress") != 0) {
		remus_err(LOG, "%s: the tap has a %s qdisc on its ingress hook, not "
			  "ours: remove it with 'tc qdisc del dev %s %s' or use the "
			  "qemu netbuffer backend", p->tap, kind ? kind : "?", p->tap,
			  kind ? kind : "clsact");
		rc = -EBUSY;
		goto out;
	}
	r = rtnl_cls_alloc_cache(p->sk, p->tap_ifindex, INGRESS_PARENT, &filters);
	if (r < 0) {
		rc = nl_fail(p, r, "list ingress filters", NULL);
		goto out;
	}
	nl_cache_foreach(filters, count_filter, &scan);
	if (scan.foreign > 0 || (scan.ours == 0 && !lo->ifb)) {
		/* An empty one next to no IFB of ours: somebody else's too. */
		remus_err(LOG, "%s: the tap already has an ingress qdisc that is not "
			  "ours (%u foreign filter node(s)): remove it with 'tc qdisc "
			  "del dev %s ingress' or use the qemu netbuffer backend",
			  p->tap, scan.foreign, p->tap);
		rc = -EBUSY;
		goto out;
	}
	lo->ingress = true;
	rc = 0;
out:
	nl_cache_free(filters);
	rtnl_qdisc_put(q);
	nl_cache_free(qdiscs);
	return rc;
}

/* ---- setup and teardown ------------------------------------------------ */

static int make_ifb(struct remus_netbuffer_plug *p, unsigned mtu)
{
	struct rtnl_link *link = NULL, *now = NULL, *change = NULL;
	int r, rc;

	link = rtnl_link_alloc();
	change = rtnl_link_alloc();
	if (!link || !change) {
		rc = -ENOMEM;
		goto out;
	}
	rtnl_link_set_name(link, p->ifb);
	if (rtnl_link_set_type(link, "ifb") < 0) {
		rc = -ENOMEM;
		goto out;
	}
	/* Frames of any size the tap carries must fit through. */
	if (mtu > 0)
		rtnl_link_set_mtu(link, mtu);
	r = rtnl_link_add(p->sk, link, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0) {
		rc = nl_fail(p, r, "create the ifb device", "ifb");
		goto out;
	}
	p->ifb_made = true;
	rc = link_get(p, p->ifb, &now);
	if (rc <= 0) {
		if (rc == 0)
			remus_err(LOG, "%s: device %s vanished right after creation",
				  p->tap, p->ifb);
		rc = rc ? rc : -ENODEV;
		goto out;
	}
	p->ifb_ifindex = rtnl_link_get_ifindex(now);
	/* The kernel ignores an alias in a create request: set it, and bring
	 * the device up, as a change. */
	rtnl_link_set_ifalias(change, p->alias);
	rtnl_link_set_flags(change, IFF_UP);
	r = rtnl_link_change(p->sk, now, change, 0);
	if (r < 0) {
		rc = nl_fail(p, r, "bring the ifb device up", NULL);
		goto out;
	}
	rc = 0;
out:
	rtnl_link_put(change);
	rtnl_link_put(now);
	rtnl_link_put(link);
	return rc;
}

static int make_plug(struct remus_netbuffer_plug *p, uint32_t limit_bytes)
{
	int r;

	p->plug = rtnl_qdisc_alloc();
	if (!p->plug)
		return -ENOMEM;
	rtnl_tc_set_ifindex(TC_CAST(p->plug), p->ifb_ifindex);
	rtnl_tc_set_parent(TC_CAST(p->plug), TC_H_ROOT);
	rtnl_tc_set_handle(TC_CAST(p->plug), PLUG_HANDLE);
	r = rtnl_tc_set_kind(TC_CAST(p->plug), "plug");
	if (r < 0)
		return nl_fail(p, r, "set up a plug qdisc object in libnl", NULL);
	/* Created with TCQ_PLUG_LIMIT: the kernel reads the limit and starts
	 * in buffer mode (throttled, counting the open epoch). */
	rtnl_qdisc_plug_set_limit(p->plug, (int)limit_bytes);
	r = rtnl_qdisc_add(p->sk, p->plug, NLM_F_CREATE | NLM_F_REPLACE);
	if (r < 0)
		return nl_fail(p, r, "add a plug qdisc", "sch_plug");
	p->plug_made = true;
	return 0;
}

static int make_ingress(struct remus_netbuffer_plug *p)
{
	struct rtnl_qdisc *q = ingress_alloc(p);
	int r;

	if (!q)
		return -ENOMEM;
	r = rtnl_qdisc_add(p->sk, q, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_qdisc_put(q);
	if (r == -NLE_EXIST) {
		remus_err(LOG, "%s: an ingress qdisc appeared on the tap while "
			  "setting up (another tool at work?); retry, or remove it "
			  "with 'tc qdisc del dev %s ingress'", p->tap, p->tap);
		return -EBUSY;
	}
	if (r < 0)
		return nl_fail(p, r, "add an ingress qdisc", "sch_ingress");
	p->ingress_made = true;
	return 0;
}

static int make_filter(struct remus_netbuffer_plug *p)
{
	struct rtnl_cls *cls = filter_alloc(p);
	struct rtnl_act *act = rtnl_act_alloc();
	int r, rc;

	if (!cls || !act) {
		rc = -ENOMEM;
		goto out;
	}
	/* Match every frame: one key "32 bits at offset 0, mask 0". */
	if (rtnl_u32_add_key_uint32(cls, 0, 0, 0, 0) < 0 ||
	    rtnl_u32_set_cls_terminal(cls) < 0 ||
	    rtnl_tc_set_kind(TC_CAST(act), "mirred") < 0 ||
	    rtnl_mirred_set_action(act, TCA_EGRESS_REDIR) != 0 ||
	    rtnl_mirred_set_policy(act, TC_ACT_STOLEN) < 0 ||
	    rtnl_mirred_set_ifindex(act, (uint32_t)p->ifb_ifindex) < 0 ||
	    rtnl_u32_add_action(cls, act) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	r = rtnl_cls_add(p->sk, cls, NLM_F_CREATE | NLM_F_EXCL);
	if (r < 0) {
		rc = nl_fail(p, r, "add the u32 filter with a mirred redirect",
			     "cls_u32 act_mirred");
		goto out;
	}
	p->filter_made = true;
	rc = 0;
out:
	rtnl_act_put(act);
	rtnl_cls_put(cls);
	return rc;
}

/* Waits until the plug holds nothing, at most DRAIN_WAIT_MS: released
 * frames leave in softirq context, shortly after the command. */
static void drain(struct remus_netbuffer_plug *p)
{
	const struct timespec tick = { 0, 1000 * 1000 };
	struct remus_netbuffer_plug_stats st;
	int i;

	for (i = 0; i < DRAIN_WAIT_MS; i++) {
		if (plug_read_stats(p, &st) < 0 || st.held_packets == 0)
			return;
		nanosleep(&tick, NULL);
	}
	remus_warn(LOG, "%s: %llu frame(s) still queued on %s after %d ms; they "
		   "are dropped with the device", p->tap,
		   (unsigned long long)st.held_packets, p->ifb, DRAIN_WAIT_MS);
}

/* Undoes what open made, newest first. */
static void teardown(struct remus_netbuffer_plug *p)
{
	if (p->plug_made) {
		if (plug_command(p, rtnl_qdisc_plug_release_indefinite,
				 "release everything held") == 0)
			drain(p);
	}
	if (p->filter_made) {
		filter_delete(p);
		p->filter_made = false;
		/* Frames redirected just before the filter went. */
		if (p->plug_made)
			drain(p);
	}
	if (p->ingress_made) {
		ingress_delete(p);
		p->ingress_made = false;
	}
	p->plug_made = false; /* goes with the device */
	if (p->ifb_made) {
		link_delete(p, p->ifb);
		p->ifb_made = false;
	}
}

int remus_netbuffer_plug_open(const char *tap, uint32_t limit_bytes,
			      struct remus_netbuffer_plug **out)
{
	struct remus_netbuffer_plug *p = NULL;
	struct rtnl_link *link = NULL;
	struct leftovers lo = { false, false };
	unsigned mtu;
	int r, rc;

	*out = NULL;
	if (!tap || !*tap || strlen(tap) >= IF_NAMESIZE || limit_bytes == 0 ||
	    limit_bytes > INT32_MAX) {
		remus_err(LOG, "plug netbuffer: bad tap name '%s' or limit %u bytes "
			  "(1..%d)", tap ? tap : "(null)", limit_bytes, INT32_MAX);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	strcpy(p->tap, tap);
	remus_netbuffer_plug_ifb_name(tap, p->ifb, sizeof(p->ifb));
	snprintf(p->alias, sizeof(p->alias), ALIAS_PREFIX "%s", tap);
	p->sk = nl_socket_alloc();
	if (!p->sk) {
		rc = -ENOMEM;
		goto out;
	}
	r = nl_connect(p->sk, NETLINK_ROUTE);
	if (r < 0) {
		rc = nl_fail(p, r, "open an rtnetlink socket", NULL);
		goto out;
	}

	rc = link_get(p, tap, &link);
	if (rc <= 0) {
		if (rc == 0)
			remus_err(LOG, "no network device '%s' to buffer: the guest's "
				  "tap must exist (is the VM running? check 'ip link')", tap);
		rc = rc ? rc : -ENODEV;
		goto out;
	}
	p->tap_ifindex = rtnl_link_get_ifindex(link);
	mtu = rtnl_link_get_mtu(link);

	/* Classify first, change nothing until everything checks out. */
	if ((rc = check_ifb(p, &lo)) < 0 || (rc = check_ingress(p, &lo)) < 0)
		goto out;
	if (lo.ingress || lo.ifb)
		remus_warn(LOG, "%s: removing the leftovers of an earlier run (%s%s%s)",
			   tap, lo.ingress ? "ingress qdisc" : "",
			   lo.ingress && lo.ifb ? ", " : "", lo.ifb ? p->ifb : "");
	if (lo.ingress && (rc = ingress_delete(p)) < 0)
		goto out;
	if (lo.ifb && (rc = link_delete(p, p->ifb)) < 0)
		goto out;

	if ((rc = make_ifb(p, mtu)) < 0 || (rc = make_plug(p, limit_bytes)) < 0 ||
	    (rc = make_ingress(p)) < 0 || (rc = make_filter(p)) < 0)
		goto out;
	remus_info(LOG, "%s: holding the guest's output on %s (plug qdisc, limit "
		   "%u bytes)", tap, p->ifb, limit_bytes);
	*out = p;
	p = NULL;
	rc = 0;
out:
	rtnl_link_put(link);
	remus_netbuffer_plug_free(p);
	return rc;
}

int remus_netbuffer_plug_barrier(struct remus_netbuffer_plug *p)
{
	int rc;

	if (p->kernel_closed > 0) {
		/* The kernel would overwrite its closed epoch: merge instead. */
		p->merged++;
		remus_debug(LOG, "%s: barrier merged (%u epoch(s) uncommitted)",
			    p->tap, p->kernel_closed + p->merged);
		return 0;
	}
	rc = plug_command(p, rtnl_qdisc_plug_buffer, "insert an epoch barrier");
	if (rc < 0)
		return rc;
	p->kernel_closed = p->merged + 1;
	p->merged = 0;
	return 0;
}

int remus_netbuffer_plug_commit(struct remus_netbuffer_plug *p)
{
	int rc;

	if (p->kernel_closed == 0) {
		/* Nothing closed, or the oldest closed epoch was merged into the
		 * open one: its frames leave after the next barrier's commit. */
		if (p->merged > 0)
			p->merged--;
		return 0;
	}
	if (p->kernel_closed > 1) {
		p->kernel_closed--;
		return 0;
	}
	rc = plug_command(p, rtnl_qdisc_plug_release_one, "release an epoch");
	if (rc < 0)
		return rc;
	p->kernel_closed = 0;
	return 0;
}

int remus_netbuffer_plug_release_all(struct remus_netbuffer_plug *p)
{
	int rc = plug_command(p, rtnl_qdisc_plug_release_indefinite,
			      "release everything held");

	if (rc < 0)
		return rc;
	p->kernel_closed = 0;
	p->merged = 0;
	return 0;
}

int remus_netbuffer_plug_stats(struct remus_netbuffer_plug *p,
			       struct remus_netbuffer_plug_stats *st)
{
	return plug_read_stats(p, st);
}

void remus_netbuffer_plug_free(struct remus_netbuffer_plug *p)
{
	if (!p)
		return;
	if (p->sk)
		teardown(p);
	rtnl_qdisc_put(p->plug);
	nl_socket_free(p->sk);
	free(p);
}
