/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checks of the plug netbuffer backend (netbuffer/plug.h) against the
 * running kernel, shared by the guest program plugtest (full cycle, inside
 * a Debian kernel that has sch_plug) and tests/unit/netbuffer/test_plug.c
 * (refusals on any kernel; the full cycle where the kernel allows it).
 *
 * A "tap" here is the device the guest's frames arrive on, as on a
 * hypervisor host: a tun/tap device (frames written to its fd arrive as
 * ingress) or one end of a veth pair (frames sent on the peer through a
 * packet socket arrive as ingress).  The tap gets 10.<net>.0.1/24 (net 77
 * unless chosen, so several taps can coexist); test frames are UDP from
 * 10.<net>.0.2 to a local socket on 10.<net>.0.1, so a frame that gets
 * through the buffer is counted by reading that socket.  Each frame
 * carries a sequence number, so order and exactness are checked too.
 *
 * Every check prints one line "PASS <label>/<name>: ..." or "FAIL
 * <label>/<name>: ..." on stdout (label: the tap's kind); each function
 * returns the number of failed checks.  Needs CAP_NET_ADMIN and runs in
 * whatever network namespace it is called in.
 *
 * The helpers at the end (reporting, host snapshots, frames) are shared
 * with the public-API checks of netbuffer_api.c.
 */
#ifndef REMUS_TESTS_SUPPORT_PLUG_CYCLE_H
#define REMUS_TESTS_SUPPORT_PLUG_CYCLE_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

struct plug_tap {
	char name[IF_NAMESIZE];
	char peer[IF_NAMESIZE]; /* veth peer; empty for tun */
	const char *label;      /* "tun" or "veth": prefix of check names */
	int tun_fd;             /* owned; tun/tap fd, or -1 */
	int pkt_fd;             /* owned; packet socket on the peer, or -1 */
	int udp_fd;             /* owned; receiver on 10.<net>.0.1 */
	uint8_t net;            /* the tap's subnet: 10.<net>.0.0/24 */
	unsigned char mac[6];   /* the tap's MAC: destination of test frames */
	uint32_t next_seq;
};

/* Creates tun/tap @name (borrowed), up, with its address and receiver.
 * Returns 0 or -errno (with a message on stderr). */
int plug_tap_create_tun(struct plug_tap *t, const char *name);
/* The same on subnet 10.@net.0.0/24 (a second tap next to the first). */
int plug_tap_create_tun_net(struct plug_tap *t, const char *name, uint8_t net);
/* Creates the veth pair @name/@peer (borrowed), both up, @name with the
 * address and receiver.  Returns 0 or -errno. */
int plug_tap_create_veth(struct plug_tap *t, const char *name, const char *peer);
/* Removes what plug_tap_create_* made.  Idempotent. */
void plug_tap_destroy(struct plug_tap *t);

/* Open refusals that change nothing on the host (snapshot compared):
 * -ENODEV for a missing tap, -EEXIST when a foreign device has the IFB's
 * name, -EBUSY for a foreign ingress qdisc (with a filter, empty) and a
 * clsact qdisc on the tap.  Any kernel with ifb, sch_ingress, cls_u32. */
int plug_checks_refusals(struct plug_tap *t);
/* On a kernel without sch_plug: open fails with -ENOENT and leaves no
 * IFB, qdisc or filter behind. */
int plug_checks_no_plug(struct plug_tap *t);
/* The full cycle on a kernel with sch_plug, ifb, act_mirred, sch_ingress
 * and cls_u32: hold, barrier/commit epochs in order, merged barriers,
 * release_all and hold again, the byte limit (drops counted by the qdisc),
 * close restoring the host exactly, and a crashed run's leftovers
 * replaced by the next open. */
int plug_checks_cycle(struct plug_tap *t);

/* ---- shared helpers -------------------------------------------------------- */

/* Sets the prefix of the check names printed from now on (borrowed,
 * static storage). */
void plug_check_scope(const char *label);
/* Prints "PASS|FAIL <scope>/<name>: <detail>"; returns 1 on failure, 0 on
 * success, for summing. */
int plug_check(bool ok, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void plug_sleep_ms(int ms);
long long plug_now_ms(void); /* monotonic */

/* Returns a text of every link, qdisc and filter, one per line, by name
 * (owned: free), or NULL if rtnetlink failed (message on stderr). */
char *plug_snapshot(void);
/* True if the snapshots are equal; else prints the differing lines. */
bool plug_same_host(const char *before, const char *after);
/* True if @line is a whole line of @snap (NULL: false). */
bool plug_has_line(const char *snap, const char *line);
/* How many lines of @snap start with @prefix. */
int plug_count_prefix(const char *snap, const char *prefix);

/* Sends @count UDP frames of @len bytes (42..1514) into @t's ingress, "from
 * the guest", numbered from t->next_seq on.  Returns the first number. */
uint32_t plug_send_frames(struct plug_tap *t, int count, size_t len);
/* Drops whatever @t's receiver has queued. */
void plug_flush_receiver(struct plug_tap *t);

#endif
