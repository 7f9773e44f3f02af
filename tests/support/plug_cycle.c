// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Checks of the plug netbuffer backend against the running kernel (see
 * plug_cycle.h).  Two kinds of evidence are combined for every "held"
 * claim, because a slow guest (TCG) could make "nothing arrived yet" pass
 * by accident: the plug qdisc's own counters must show the frames queued,
 * and the receiving socket must not have seen them.  "Released" claims
 * wait for the exact sequence numbers, then a little longer for extras.
 *
 * "The host is left as it was" is checked on a text snapshot of links,
 * qdiscs and filters taken over rtnetlink (libnl caches), compared line by
 * line before and after.
 */
#include "support/plug_cycle.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/pkt_sched.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>

#include "netbuffer/plug.h"

#define DEFAULT_NET 77 /* 10.77.0.0/24 */
#define UDP_PORT 5555
#define SMALL_FRAME 100
#define BIG_FRAME 500
#define ARRIVE_MS 5000 /* generous: TCG guests on a loaded machine */
#define QUIET_MS 400   /* how long "nothing more arrives" is watched */
#define PLUG_LIMIT (64 * 1024)
#define MAX_SEQS 64

/* ---- reporting ----------------------------------------------------------- */

/* Prefix of check names: the kind of tap the checks run on. */
static const char *scope = "?";

void plug_check_scope(const char *label)
{
	scope = label;
}

int plug_check(bool ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("%s %s/%s: ", ok ? "PASS" : "FAIL", scope, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return ok ? 0 : 1;
}

void plug_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

long long plug_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- snapshot of links, qdiscs, filters ------------------------------------ */

static void put_handle(FILE *f, uint32_t h)
{
	if (h == TC_H_ROOT)
		fprintf(f, "root");
	else
		fprintf(f, "%x:%x", TC_H_MAJ(h) >> 16, TC_H_MIN(h));
}

/* Returns a malloc'd text, one object per line (names, not indexes, so
 * lines can be searched), or NULL if rtnetlink failed. */
char *plug_snapshot(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *links = NULL, *qdiscs = NULL;
	struct nl_object *o, *c;
	char *text = NULL, name[IF_NAMESIZE + 8];
	size_t len = 0;
	FILE *f = NULL;
	bool ok = false;

	if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0 ||
	    rtnl_link_alloc_cache(sk, AF_UNSPEC, &links) < 0 ||
	    rtnl_qdisc_alloc_cache(sk, &qdiscs) < 0)
		goto out;
	f = open_memstream(&text, &len);
	if (!f)
		goto out;
	for (o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *kind = rtnl_link_get_type(l), *alias = rtnl_link_get_ifalias(l);

		/* IFF_UP only: carrier and operstate flags move by themselves. */
		fprintf(f, "link %s kind=%s up=%d mtu=%u alias=%s\n", rtnl_link_get_name(l),
			kind ? kind : "-", !!(rtnl_link_get_flags(l) & IFF_UP),
			rtnl_link_get_mtu(l), alias ? alias : "-");
	}
	for (o = nl_cache_get_first(qdiscs); o; o = nl_cache_get_next(o)) {
		struct rtnl_tc *q = (struct rtnl_tc *)o;
		struct nl_cache *filters = NULL;
		int ifindex = rtnl_tc_get_ifindex(q);

		rtnl_link_i2name(links, ifindex, name, sizeof(name));
		fprintf(f, "qdisc %s handle ", name);
		put_handle(f, rtnl_tc_get_handle(q));
		fprintf(f, " parent ");
		put_handle(f, rtnl_tc_get_parent(q));
		fprintf(f, " kind %s\n", rtnl_tc_get_kind(q));
		/* Classless qdiscs answer with nothing. */
		if (rtnl_cls_alloc_cache(sk, ifindex, rtnl_tc_get_handle(q), &filters) < 0)
			continue;
		for (c = nl_cache_get_first(filters); c; c = nl_cache_get_next(c)) {
			struct rtnl_cls *cls = (struct rtnl_cls *)c;

			fprintf(f, "filter %s parent ", name);
			put_handle(f, rtnl_tc_get_parent(TC_CAST(cls)));
			fprintf(f, " prio %u proto %#x kind %s handle %x\n",
				rtnl_cls_get_prio(cls), rtnl_cls_get_protocol(cls),
				rtnl_tc_get_kind(TC_CAST(cls)), rtnl_tc_get_handle(TC_CAST(cls)));
		}
		nl_cache_free(filters);
	}
	ok = true;
out:
	if (f)
		fclose(f);
	nl_cache_free(qdiscs);
	nl_cache_free(links);
	nl_socket_free(sk);
	if (!ok) {
		free(text);
		fprintf(stderr, "plug_cycle: cannot dump links and qdiscs over rtnetlink\n");
		return NULL;
	}
	return text;
}

/* True if @line (@n bytes, no newline) is a whole line of @text. */
static bool has_line_n(const char *text, const char *line, size_t n)
{
	const char *p = text;

	while (p && *p) {
		const char *end = strchr(p, '\n');
		size_t m = end ? (size_t)(end - p) : strlen(p);

		if (m == n && memcmp(p, line, n) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* Prints the lines of @a missing from @b with prefix @tag (for a diff). */
static void print_missing(const char *a, const char *b, const char *tag)
{
	const char *line = a;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);

		if (!has_line_n(b, line, n))
			printf("    %s %.*s\n", tag, (int)n, line);
		line = end ? end + 1 : NULL;
	}
}

/* True if @before and @after are equal; else prints the difference. */
bool plug_same_host(const char *before, const char *after)
{
	if (!before || !after)
		return false;
	if (strcmp(before, after) == 0)
		return true;
	print_missing(before, after, "-");
	print_missing(after, before, "+");
	return false;
}

bool plug_has_line(const char *snap, const char *line)
{
	return snap && has_line_n(snap, line, strlen(line));
}

int plug_count_prefix(const char *snap, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p = snap;
	int count = 0;

	while (p && *p) {
		if (strncmp(p, prefix, n) == 0)
			count++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return count;
}

/* ---- the tap and its traffic ---------------------------------------------- */

/* 10.<net>.0.@host: .1 is the tap's address, .2 the guest's. */
static struct in_addr tap_net_addr(const struct plug_tap *t, unsigned host)
{
	struct in_addr a = { htonl(10u << 24 | (uint32_t)t->net << 16 | host) };

	return a;
}

static int set_addr_up(struct plug_tap *t)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, t->name);
	sin->sin_family = AF_INET;
	sin->sin_addr = tap_net_addr(t, 1);
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
		rc = -errno;
	inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
	if (!rc && ioctl(s, SIOCSIFNETMASK, &ifr) < 0)
		rc = -errno;
	if (!rc && ioctl(s, SIOCGIFHWADDR, &ifr) < 0)
		rc = -errno;
	if (!rc)
		memcpy(t->mac, ifr.ifr_hwaddr.sa_data, 6);
	if (!rc && ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		rc = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!rc && ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		rc = -errno;
	close(s);
	if (rc)
		fprintf(stderr, "plug_cycle: cannot configure %s: %s\n", t->name, strerror(-rc));
	return rc;
}

static int open_receiver(struct plug_tap *t)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(UDP_PORT) };

	sin.sin_addr = tap_net_addr(t, 1);
	t->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (t->udp_fd < 0 || bind(t->udp_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		fprintf(stderr, "plug_cycle: cannot bind UDP 10.%u.0.1:%d: %s\n", t->net,
			UDP_PORT, strerror(errno));
		return -errno;
	}
	return 0;
}

static void tap_init(struct plug_tap *t, const char *name)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->tun_fd = t->pkt_fd = t->udp_fd = -1;
	t->next_seq = 1;
	t->net = DEFAULT_NET;
}

/* Opens a tun/tap device named @name; returns the fd or -errno. */
static int tun_open(const char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), rc;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int plug_tap_create_tun(struct plug_tap *t, const char *name)
{
	return plug_tap_create_tun_net(t, name, DEFAULT_NET);
}

int plug_tap_create_tun_net(struct plug_tap *t, const char *name, uint8_t net)
{
	int rc;

	tap_init(t, name);
	t->net = net;
	t->label = "tun";
	t->tun_fd = tun_open(name);
	if (t->tun_fd < 0) {
		rc = t->tun_fd;
		fprintf(stderr, "plug_cycle: cannot create tap %s: %s (modprobe tun)\n",
			name, strerror(-rc));
		return rc;
	}
	if ((rc = set_addr_up(t)) < 0 || (rc = open_receiver(t)) < 0)
		return rc;
	return 0;
}

/* IPv6 would send router solicitations from the peer into the tap's
 * ingress, where they would be counted as held frames. */
static void disable_ipv6(const char *dev)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", dev);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			fprintf(stderr, "plug_cycle: cannot write %s\n", path);
		close(fd);
	}
}

int plug_tap_create_veth(struct plug_tap *t, const char *name, const char *peer)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	struct ifreq ifr;
	int r, rc;

	tap_init(t, name);
	t->label = "veth";
	snprintf(t->peer, sizeof(t->peer), "%s", peer);
	if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0) {
		nl_socket_free(sk);
		return -ENOMEM;
	}
	r = rtnl_link_veth_add(sk, name, peer, getpid());
	nl_socket_free(sk);
	if (r < 0) {
		fprintf(stderr, "plug_cycle: cannot create veth %s/%s: %s\n", name, peer,
			nl_geterror(r));
		t->peer[0] = 0;
		return -EIO;
	}
	disable_ipv6(name);
	disable_ipv6(peer);
	if ((rc = set_addr_up(t)) < 0 || (rc = open_receiver(t)) < 0)
		return rc;
	t->pkt_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (t->pkt_fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, peer);
	if (ioctl(t->pkt_fd, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(t->pkt_fd, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	sll.sll_ifindex = (int)if_nametoindex(peer);
	if (bind(t->pkt_fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return -errno;
	return 0;
}

void plug_tap_destroy(struct plug_tap *t)
{
	if (t->udp_fd >= 0)
		close(t->udp_fd);
	if (t->pkt_fd >= 0)
		close(t->pkt_fd);
	if (t->tun_fd >= 0)
		close(t->tun_fd); /* a non-persistent tap goes with its fd */
	if (t->peer[0]) {
		struct nl_sock *sk = nl_socket_alloc();
		struct rtnl_link *l = rtnl_link_alloc();

		if (sk && l && nl_connect(sk, NETLINK_ROUTE) == 0) {
			rtnl_link_set_name(l, t->name);
			rtnl_link_delete(sk, l);
		}
		rtnl_link_put(l);
		nl_socket_free(sk);
	}
	t->udp_fd = t->pkt_fd = t->tun_fd = -1;
	t->peer[0] = 0;
}

static uint16_t ip_checksum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Sends one frame of @len bytes "from the guest" carrying @seq. */
static int send_frame(struct plug_tap *t, uint32_t seq, size_t len)
{
	static const uint8_t guest_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint8_t f[1514];
	uint8_t *ip = f + 14, *udp = f + 34;
	struct in_addr src = tap_net_addr(t, 2), dst = tap_net_addr(t, 1);
	uint16_t csum;
	ssize_t n;

	memset(f, 0, sizeof(f));
	memcpy(f, t->mac, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((len - 14) >> 8);
	ip[3] = (uint8_t)(len - 14);
	ip[4] = (uint8_t)(seq >> 8);
	ip[5] = (uint8_t)seq;
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	csum = ip_checksum(ip, 20);
	ip[10] = (uint8_t)(csum >> 8);
	ip[11] = (uint8_t)csum;
	udp[0] = (UDP_PORT + 1) >> 8;
	udp[1] = (UDP_PORT + 1) & 0xff;
	udp[2] = UDP_PORT >> 8;
	udp[3] = UDP_PORT & 0xff;
	udp[4] = (uint8_t)((len - 34) >> 8);
	udp[5] = (uint8_t)(len - 34);
	/* UDP checksum 0: none, allowed over IPv4. */
	udp[8] = (uint8_t)(seq >> 24);
	udp[9] = (uint8_t)(seq >> 16);
	udp[10] = (uint8_t)(seq >> 8);
	udp[11] = (uint8_t)seq;
	if (t->tun_fd >= 0)
		n = write(t->tun_fd, f, len);
	else
		n = send(t->pkt_fd, f, len, 0);
	if (n != (ssize_t)len) {
		fprintf(stderr, "plug_cycle: sending frame %u on %s failed: %s\n", seq,
			t->name, n < 0 ? strerror(errno) : "short write");
		return -EIO;
	}
	return 0;
}

/* Sends @count frames of @len bytes; returns the first sequence number. */
uint32_t plug_send_frames(struct plug_tap *t, int count, size_t len)
{
	uint32_t first = t->next_seq;
	int i;

	for (i = 0; i < count; i++)
		send_frame(t, t->next_seq++, len);
	return first;
}

/* Reads sequence numbers arriving on the receiver into @got (at most
 * MAX_SEQS) until @want have arrived or @ms passed.  Returns how many. */
static int collect(struct plug_tap *t, uint32_t *got, int want, int ms)
{
	long long end = plug_now_ms() + ms;
	int n = 0;

	for (;;) {
		uint8_t buf[2048];
		struct pollfd pfd = { t->udp_fd, POLLIN, 0 };
		long long left = end - plug_now_ms();
		ssize_t r;

		while (n < MAX_SEQS && (r = recv(t->udp_fd, buf, sizeof(buf), 0)) >= 4)
			got[n++] = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
				   (uint32_t)buf[2] << 8 | buf[3];
		if (n >= want || left <= 0 || n >= MAX_SEQS)
			return n;
		poll(&pfd, 1, (int)left);
	}
}

/* Collects until @count frames arrived (ARRIVE_MS), then QUIET_MS more
 * for extras; true if exactly @first .. @first+@count-1 arrived in order.
 * @what gets a description of what arrived. */
static bool expect_seqs(struct plug_tap *t, uint32_t first, int count, char *what,
			size_t size)
{
	uint32_t got[MAX_SEQS];
	int n = collect(t, got, count, count ? ARRIVE_MS : QUIET_MS), i;
	size_t used;
	bool ok;

	if (count && n >= count)
		n += collect(t, got + n, MAX_SEQS - n, QUIET_MS);
	ok = n == count;
	used = (size_t)snprintf(what, size, "%d arrived [", n);
	for (i = 0; i < n; i++) {
		if (got[i] != first + (uint32_t)i)
			ok = false;
		if (used < size)
			used += (size_t)snprintf(what + used, size - used, "%s%u",
						 i ? " " : "", got[i]);
	}
	if (used < size)
		snprintf(what + used, size - used, "], expected %d from %u", count, first);
	return ok;
}

/* Polls the plug's counters until it holds @n frames (or @ms pass). */
static struct remus_netbuffer_plug_stats wait_held(struct remus_netbuffer_plug *p,
						   uint64_t n, int ms)
{
	struct remus_netbuffer_plug_stats st = { 0, 0, 0 };
	long long end = plug_now_ms() + ms;

	do {
		if (remus_netbuffer_plug_stats(p, &st) < 0) {
			st.held_packets = UINT64_MAX;
			return st;
		}
		if (st.held_packets == n)
			return st;
		plug_sleep_ms(20);
	} while (plug_now_ms() < end);
	return st;
}

/* Drops whatever the receiver has queued (earlier checks' stragglers). */
void plug_flush_receiver(struct plug_tap *t)
{
	uint8_t buf[2048];

	while (recv(t->udp_fd, buf, sizeof(buf), 0) >= 0)
		;
}

/* ---- the checks ------------------------------------------------------------ */

/* Opens the backend on @tap expecting @want_rc; checks the host is
 * unchanged and that no handle was returned. */
static int refusal(const char *name, const char *tap, int want_rc)
{
	struct remus_netbuffer_plug *p = NULL;
	char *before = plug_snapshot(), *after;
	int rc, fails;

	rc = remus_netbuffer_plug_open(tap, PLUG_LIMIT, &p);
	after = plug_snapshot();
	fails = plug_check(rc == want_rc && !p && plug_same_host(before, after), name,
		      "open(%s) = %d (%s), want %d; host unchanged", tap, rc,
		      strerror(-rc), want_rc);
	remus_netbuffer_plug_free(p);
	free(before);
	free(after);
	return fails;
}

/* Puts a qdisc of @kind on @tap's ingress hook, with a u32 filter at
 * priority 1 if @filter.  Returns 0 or a libnl error. */
static int add_foreign_ingress(const char *tap, const char *kind, bool filter)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();
	struct rtnl_cls *cls = rtnl_cls_alloc();
	int ifindex = (int)if_nametoindex(tap), r = -NLE_NOMEM;

	if (!sk || !q || !cls || (r = nl_connect(sk, NETLINK_ROUTE)) < 0)
		goto out;
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
	rtnl_tc_set_handle(TC_CAST(q), TC_H_MAKE(TC_H_INGRESS, 0));
	rtnl_tc_set_kind(TC_CAST(q), kind);
	if ((r = rtnl_qdisc_add(sk, q, NLM_F_CREATE | NLM_F_EXCL)) < 0 || !filter)
		goto out;
	rtnl_tc_set_ifindex(TC_CAST(cls), ifindex);
	rtnl_tc_set_parent(TC_CAST(cls), TC_H_MAKE(TC_H_INGRESS, 0));
	rtnl_tc_set_kind(TC_CAST(cls), "u32");
	rtnl_cls_set_prio(cls, 1);
	rtnl_cls_set_protocol(cls, ETH_P_IP);
	rtnl_u32_add_key_uint32(cls, 0, 0, 0, 0);
	rtnl_u32_set_classid(cls, TC_HANDLE(1, 1));
	r = rtnl_cls_add(sk, cls, NLM_F_CREATE | NLM_F_EXCL);
out:
	if (r < 0)
		fprintf(stderr, "plug_cycle: cannot add a %s qdisc to %s: %s\n", kind, tap,
			nl_geterror(r));
	rtnl_cls_put(cls);
	rtnl_qdisc_put(q);
	nl_socket_free(sk);
	return r;
}

static void del_foreign_ingress(const char *tap)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();

	if (sk && q && nl_connect(sk, NETLINK_ROUTE) == 0) {
		rtnl_tc_set_ifindex(TC_CAST(q), (int)if_nametoindex(tap));
		rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
		rtnl_qdisc_delete(sk, q);
	}
	rtnl_qdisc_put(q);
	nl_socket_free(sk);
}

int plug_checks_refusals(struct plug_tap *t)
{
	char ifb[IF_NAMESIZE];
	int fails = 0, fd;

	scope = t->label;
	fails += refusal("refuse-missing-tap", "rnb-nosuchtap", -ENODEV);

	/* A foreign device under the IFB's name: a tap named like it. */
	remus_netbuffer_plug_ifb_name(t->name, ifb, sizeof(ifb));
	fd = tun_open(ifb);
	if (fd < 0)
		fails += plug_check(false, "refuse-foreign-ifb-name", "cannot create tap %s: %s",
			       ifb, strerror(-fd));
	else {
		fails += refusal("refuse-foreign-ifb-name", t->name, -EEXIST);
		close(fd);
	}

	if (add_foreign_ingress(t->name, "ingress", true) < 0)
		fails += plug_check(false, "refuse-foreign-ingress-filter", "setup failed");
	else
		fails += refusal("refuse-foreign-ingress-filter", t->name, -EBUSY);
	del_foreign_ingress(t->name);

	if (add_foreign_ingress(t->name, "ingress", false) < 0)
		fails += plug_check(false, "refuse-foreign-ingress-empty", "setup failed");
	else
		fails += refusal("refuse-foreign-ingress-empty", t->name, -EBUSY);
	del_foreign_ingress(t->name);

	if (add_foreign_ingress(t->name, "clsact", false) < 0)
		fails += plug_check(false, "refuse-clsact", "setup failed");
	else
		fails += refusal("refuse-clsact", t->name, -EBUSY);
	del_foreign_ingress(t->name);
	return fails;
}

int plug_checks_no_plug(struct plug_tap *t)
{
	scope = t->label;
	return refusal("no-sch_plug-enoent-clean", t->name, -ENOENT);
}

/* Open, the epoch semantics, release_all, close. */
static int cycle_epochs(struct plug_tap *t, const char *before)
{
	struct remus_netbuffer_plug *p = NULL;
	struct remus_netbuffer_plug_stats st;
	char what[512], line[128], ifb[IF_NAMESIZE], *snap = NULL;
	uint32_t a, b;
	int fails = 0, rc;

	remus_netbuffer_plug_ifb_name(t->name, ifb, sizeof(ifb));
	rc = remus_netbuffer_plug_open(t->name, PLUG_LIMIT, &p);
	fails += plug_check(rc == 0, "open", "open(%s, %d) = %d", t->name, PLUG_LIMIT, rc);
	if (rc < 0)
		return fails;

	snap = plug_snapshot();
	snprintf(line, sizeof(line), "qdisc %s handle 52ed:0 parent root kind plug", ifb);
	rc = snap && plug_has_line(snap, line);
	snprintf(line, sizeof(line), "qdisc %s handle ffff:0 parent ffff:fff1 kind ingress",
		 t->name);
	rc = rc && plug_has_line(snap, line);
	snprintf(line, sizeof(line), "link %s kind=ifb up=1 mtu=1500 alias=remus-netbuffer tap=%s",
		 ifb, t->name);
	rc = rc && plug_has_line(snap, line);
	snprintf(line, sizeof(line), "filter %s parent ffff:0 prio 21229 proto 0x3 kind u32",
		 t->name);
	fails += plug_check(rc && plug_count_prefix(snap, line) >= 1, "installed",
		       "%s up with a plug root, ingress qdisc and u32 filter on %s", ifb,
		       t->name);
	free(snap);

	a = plug_send_frames(t, 5, SMALL_FRAME);
	st = wait_held(p, 5, ARRIVE_MS);
	fails += plug_check(st.held_packets == 5 && expect_seqs(t, a, 0, what, sizeof(what)),
		       "held-before-barrier", "plug holds %llu of 5 frames; %s",
		       (unsigned long long)st.held_packets, what);

	rc = remus_netbuffer_plug_barrier(p);
	b = plug_send_frames(t, 3, SMALL_FRAME);
	wait_held(p, 8, ARRIVE_MS);
	rc = rc ? rc : remus_netbuffer_plug_commit(p);
	fails += plug_check(rc == 0 && expect_seqs(t, a, 5, what, sizeof(what)),
		       "commit-releases-epoch", "barrier+commit rc=%d; %s", rc, what);
	st = wait_held(p, 3, ARRIVE_MS);
	fails += plug_check(st.held_packets == 3, "later-epoch-held",
		       "3 frames sent after the barrier, the plug holds %llu",
		       (unsigned long long)st.held_packets);
	rc = remus_netbuffer_plug_barrier(p);
	rc = rc ? rc : remus_netbuffer_plug_commit(p);
	fails += plug_check(rc == 0 && expect_seqs(t, b, 3, what, sizeof(what)),
		       "next-commit-releases-it", "rc=%d; %s", rc, what);

	/* Two barriers before one commit: sch_plug keeps one closed epoch,
	 * so the second epoch must come out late (with the third), never
	 * early. */
	a = plug_send_frames(t, 2, SMALL_FRAME);
	wait_held(p, 2, ARRIVE_MS);
	rc = remus_netbuffer_plug_barrier(p);
	b = plug_send_frames(t, 1, SMALL_FRAME);
	wait_held(p, 3, ARRIVE_MS);
	rc = rc ? rc : remus_netbuffer_plug_barrier(p);
	plug_send_frames(t, 1, SMALL_FRAME);
	wait_held(p, 4, ARRIVE_MS);
	rc = rc ? rc : remus_netbuffer_plug_commit(p);
	fails += plug_check(rc == 0 && expect_seqs(t, a, 2, what, sizeof(what)),
		       "two-barriers-first-commit-exact", "rc=%d; %s", rc, what);
	rc = remus_netbuffer_plug_commit(p);
	st = wait_held(p, 2, ARRIVE_MS);
	fails += plug_check(rc == 0 && st.held_packets == 2 &&
			       expect_seqs(t, b, 0, what, sizeof(what)),
		       "merged-epoch-not-early", "second commit rc=%d, plug holds %llu "
		       "(want 2); %s", rc, (unsigned long long)st.held_packets, what);
	rc = remus_netbuffer_plug_barrier(p);
	rc = rc ? rc : remus_netbuffer_plug_commit(p);
	fails += plug_check(rc == 0 && expect_seqs(t, b, 2, what, sizeof(what)),
		       "merged-epoch-released-next", "rc=%d; %s", rc, what);

	rc = remus_netbuffer_plug_release_all(p);
	a = plug_send_frames(t, 3, SMALL_FRAME);
	fails += plug_check(rc == 0 && expect_seqs(t, a, 3, what, sizeof(what)),
		       "release-all-passes-through", "rc=%d; %s", rc, what);

	rc = remus_netbuffer_plug_barrier(p);
	a = plug_send_frames(t, 2, SMALL_FRAME);
	st = wait_held(p, 2, ARRIVE_MS);
	fails += plug_check(rc == 0 && st.held_packets == 2 &&
			       expect_seqs(t, a, 0, what, sizeof(what)),
		       "barrier-holds-again", "rc=%d, plug holds %llu of 2; %s", rc,
		       (unsigned long long)st.held_packets, what);
	/* That barrier closed the pass-through epoch (empty in the plug); its
	 * commit releases nothing held after it. */
	rc = remus_netbuffer_plug_commit(p);
	st = wait_held(p, 2, ARRIVE_MS);
	rc = rc ? rc : remus_netbuffer_plug_barrier(p);
	rc = rc ? rc : remus_netbuffer_plug_commit(p);
	fails += plug_check(rc == 0 && st.held_packets == 2 &&
			       expect_seqs(t, a, 2, what, sizeof(what)),
		       "hold-again-commit", "rc=%d, held %llu after the first commit; %s",
		       rc, (unsigned long long)st.held_packets, what);

	/* Close lets what is held out before removing anything. */
	remus_netbuffer_plug_barrier(p);
	a = plug_send_frames(t, 2, SMALL_FRAME);
	wait_held(p, 2, ARRIVE_MS);
	remus_netbuffer_plug_free(p);
	fails += plug_check(expect_seqs(t, a, 2, what, sizeof(what)), "close-releases-held",
		       "%s", what);
	snap = plug_snapshot();
	fails += plug_check(plug_same_host(before, snap), "close-restores-host",
		       "links, qdiscs and filters equal to before open");
	free(snap);
	return fails;
}

/* The byte limit: frames that do not fit are dropped and counted. */
static int cycle_limit(struct plug_tap *t, const char *before)
{
	/* Four frames fit, the fifth would pass the limit by half a frame
	 * (enough slack for how the kernel counts the Ethernet header). */
	const uint32_t limit = 4 * BIG_FRAME + BIG_FRAME / 2;
	struct remus_netbuffer_plug *p = NULL;
	struct remus_netbuffer_plug_stats st = { 0, 0, 0 };
	char what[512], *snap;
	uint32_t a;
	int fails = 0, rc;

	rc = remus_netbuffer_plug_open(t->name, limit, &p);
	if (rc < 0)
		return plug_check(false, "limit-drops", "open with limit %u: %d", limit, rc);
	a = plug_send_frames(t, 8, BIG_FRAME);
	st = wait_held(p, 4, ARRIVE_MS);
	plug_sleep_ms(QUIET_MS);
	remus_netbuffer_plug_stats(p, &st);
	fails += plug_check(st.held_packets == 4 && st.dropped == 4 && st.held_bytes <= limit,
		       "limit-drops", "limit %u bytes, 8 frames of %d: held %llu (%llu "
		       "bytes), dropped %llu", limit, BIG_FRAME,
		       (unsigned long long)st.held_packets,
		       (unsigned long long)st.held_bytes, (unsigned long long)st.dropped);
	rc = remus_netbuffer_plug_barrier(p);
	rc = rc ? rc : remus_netbuffer_plug_commit(p);
	fails += plug_check(rc == 0 && expect_seqs(t, a, 4, what, sizeof(what)),
		       "limit-keeps-first", "rc=%d; %s", rc, what);
	remus_netbuffer_plug_free(p);
	snap = plug_snapshot();
	fails += plug_check(plug_same_host(before, snap), "limit-close-restores-host",
		       "links, qdiscs and filters equal to before open");
	free(snap);
	return fails;
}

/* A run that dies without close; the next open cleans up after it. */
static int cycle_crash(struct plug_tap *t, const char *before)
{
	struct remus_netbuffer_plug *p = NULL;
	char what[512], line[128], ifb[IF_NAMESIZE], *snap;
	int fails = 0, rc, status = -1;
	uint32_t a;
	pid_t pid;

	remus_netbuffer_plug_ifb_name(t->name, ifb, sizeof(ifb));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* The child holds two frames and exits without closing: what
		 * a crash or kill -9 of remusd leaves behind. */
		if (remus_netbuffer_plug_open(t->name, PLUG_LIMIT, &p) < 0)
			_exit(10);
		plug_send_frames(t, 2, SMALL_FRAME);
		wait_held(p, 2, ARRIVE_MS);
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	t->next_seq += 2; /* the child used two numbers */
	snap = plug_snapshot();
	snprintf(line, sizeof(line), "link %s kind=ifb up=1", ifb);
	rc = snap && strstr(snap, line) != NULL;
	snprintf(line, sizeof(line), "qdisc %s handle ffff:0 parent ffff:fff1 kind ingress",
		 t->name);
	fails += plug_check(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && rc &&
			       plug_has_line(snap, line),
		       "crash-leaves-leftovers", "child status %#x; %s and the ingress "
		       "qdisc are still there", status, ifb);
	free(snap);

	rc = remus_netbuffer_plug_open(t->name, PLUG_LIMIT, &p);
	snap = plug_snapshot();
	snprintf(line, sizeof(line), "link %s ", ifb);
	fails += plug_check(rc == 0 && snap && plug_count_prefix(snap, line) == 1 &&
			       plug_count_prefix(snap, "qdisc ") ==
				       plug_count_prefix(before, "qdisc ") + 2,
		       "reopen-replaces-leftovers", "open = %d; one %s, one plug and one "
		       "ingress qdisc more than before", rc, ifb);
	free(snap);
	if (rc < 0)
		return fails;
	/* The dead run's frames went with its IFB; only ours come out. */
	a = plug_send_frames(t, 1, SMALL_FRAME);
	wait_held(p, 1, ARRIVE_MS);
	rc = remus_netbuffer_plug_barrier(p);
	rc = rc ? rc : remus_netbuffer_plug_commit(p);
	fails += plug_check(rc == 0 && expect_seqs(t, a, 1, what, sizeof(what)),
		       "reopen-works", "rc=%d; %s", rc, what);
	remus_netbuffer_plug_free(p);
	snap = plug_snapshot();
	fails += plug_check(plug_same_host(before, snap), "reopen-close-restores-host",
		       "links, qdiscs and filters equal to before the crashed run");
	free(snap);
	return fails;
}

int plug_checks_cycle(struct plug_tap *t)
{
	char *before;
	int fails;

	scope = t->label;
	plug_flush_receiver(t);
	before = plug_snapshot();
	if (!before)
		return plug_check(false, "snapshot", "cannot dump links and qdiscs");
	fails = cycle_epochs(t, before);
	plug_flush_receiver(t);
	fails += cycle_limit(t, before);
	plug_flush_receiver(t);
	fails += cycle_crash(t, before);
	free(before);
	return fails;
}
