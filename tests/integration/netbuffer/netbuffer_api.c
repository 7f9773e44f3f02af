// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The public netbuffer interface with the plug backend (netbuffer_api.h):
 * netbuffer.c's dispatch to one plug per tap, checked against what really
 * leaves the taps.
 *
 * Two tun/tap devices stand in for a guest with two NICs.  Frames "from
 * the guest" are written into each tap (plug_send_frames), so they arrive
 * as the tap's ingress, go through the IFB and its plug qdisc, and reach a
 * UDP socket on the tap's own address once released; every frame carries
 * a per-tap sequence number.  Each "released" claim waits for the exact
 * next frames of every tap, then QUIET_MS longer for extras; each "held"
 * claim needs both the kernel's counters (remus_netbuffer_get_stats, which
 * reads the plug qdiscs) and a quiet receiver.
 *
 * Three netbuffers run one after the other on the same taps:
 *   1. on_lost RELEASE, default limit: setup, epochs, two barriers before
 *      a commit, status JSON, standby lost (flush, pass-through), protect,
 *      teardown(release) restoring the host;
 *   2. on_lost HOLD, a small limit: standby lost keeps holding, commits
 *      still release, overflow drops counted, teardown(release=false);
 *   3. a missing tap: setup fails and rolls back, barrier refused,
 *      teardown still completes.
 * Done callbacks must come from the loop, never inside the call.
 *
 * sch_plug keeps one closed epoch; plug.h documents that a barrier while
 * one is uncommitted is merged into the kernel's open epoch, so its
 * frames leave with the commit after the next barrier: later, never
 * earlier.  The checks expect exactly that.
 */
#include "netbuffer_api.h"

#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "common/loop.h"
#include "netbuffer/netbuffer.h"
#include "netbuffer/plug.h"
#include "support/plug_cycle.h"

#define NTAPS 2
#define SMALL 100      /* bytes of a test frame */
#define BIG 500        /* bytes of a frame for the limit check */
#define ARRIVE_MS 5000 /* generous: a TCG guest on a loaded machine */
#define QUIET_MS 400   /* how long "nothing more comes out" is watched */
#define DONE_MS 5000   /* for setup's and teardown's done callbacks */
#define MAX_SEQS 64
#define DEFAULT_LIMIT (16u << 20) /* netbuffer.h: epoch_limit_bytes 0 */
/* Four BIG frames fit, the fifth would pass it by half a frame (slack
 * for how the kernel counts the Ethernet header). */
#define HOLD_LIMIT (4 * BIG + BIG / 2)

struct api {
	struct plug_tap tap[NTAPS];  /* owned */
	const char *names[NTAPS];    /* borrowed from tap[i].name: the config */
	uint32_t next_out[NTAPS];    /* next sequence number due out of tap i */
	struct remus_loop *loop;     /* owned */
	struct remus_netbuffer *nb;  /* owned; the netbuffer under test, or NULL */
	char *before;                /* owned; links/qdiscs/filters before any netbuffer */
};

/* What a done callback reported. */
struct done {
	bool called;
	int rc;
	bool msg_null;
	char msg[512];
};

static void on_done(void *opaque, int rc, const char *msg)
{
	struct done *d = opaque;

	d->called = true;
	d->rc = rc;
	d->msg_null = !msg;
	snprintf(d->msg, sizeof(d->msg), "%s", msg ? msg : "");
}

/* Runs the loop until @d is called or DONE_MS pass; returns the ms taken
 * (or -1 if it was never called). */
static long long run_until_done(struct api *c, struct done *d)
{
	long long start = plug_now_ms();

	while (!d->called && plug_now_ms() - start < DONE_MS)
		remus_loop_run_once(c->loop, 50);
	return d->called ? plug_now_ms() - start : -1;
}

static struct remus_netbuffer_stats stats(struct api *c)
{
	struct remus_netbuffer_stats st;

	remus_netbuffer_get_stats(c->nb, &st);
	return st;
}

/* Polls the plugs' counters until they hold @n frames in all (or
 * ARRIVE_MS pass); returns the last reading. */
static struct remus_netbuffer_stats wait_held(struct api *c, uint64_t n)
{
	long long end = plug_now_ms() + ARRIVE_MS;
	struct remus_netbuffer_stats st = stats(c);

	while (st.held_frames != n && plug_now_ms() < end) {
		plug_sleep_ms(20);
		st = stats(c);
	}
	return st;
}

static void send_each(struct api *c, int count, size_t len)
{
	int i;

	for (i = 0; i < NTAPS; i++)
		plug_send_frames(&c->tap[i], count, len);
}

/* Collects what comes out of every tap: until tap i delivered @want[i]
 * frames (ARRIVE_MS at most; nothing awaited: QUIET_MS), then QUIET_MS
 * longer for extras.  True if each tap delivered exactly its next
 * @want[i] frames in order; next_out moves past the in-order ones.
 * @what gets a description. */
static bool released_each(struct api *c, const int *want, char *what, size_t size)
{
	uint32_t got[NTAPS][MAX_SEQS];
	int n[NTAPS] = { 0 }, i, k, total = 0;
	struct pollfd pfd[NTAPS];
	bool quiet, ok = true;
	long long end;
	size_t used = 0;

	for (i = 0; i < NTAPS; i++) {
		total += want[i];
		pfd[i].fd = c->tap[i].udp_fd;
		pfd[i].events = POLLIN;
	}
	quiet = total == 0;
	end = plug_now_ms() + (quiet ? QUIET_MS : ARRIVE_MS);
	for (;;) {
		uint8_t buf[2048];
		bool all = true;
		long long left;

		for (i = 0; i < NTAPS; i++) {
			while (n[i] < MAX_SEQS && recv(pfd[i].fd, buf, sizeof(buf), 0) >= 4)
				got[i][n[i]++] = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
						 (uint32_t)buf[2] << 8 | buf[3];
			if (n[i] < want[i])
				all = false;
		}
		if (all && !quiet) {
			quiet = true;
			end = plug_now_ms() + QUIET_MS;
		}
		left = end - plug_now_ms();
		if (left <= 0)
			break;
		poll(pfd, NTAPS, (int)left);
	}
	for (i = 0; i < NTAPS; i++) {
		int in_order = 0;

		if (n[i] != want[i])
			ok = false;
		if (used < size)
			used += (size_t)snprintf(what + used, size - used, "%s%s: %d out [",
						 i ? "; " : "", c->tap[i].name, n[i]);
		for (k = 0; k < n[i]; k++) {
			if (got[i][k] == c->next_out[i] + (uint32_t)k && in_order == k)
				in_order++;
			else
				ok = false;
			if (used < size)
				used += (size_t)snprintf(what + used, size - used, "%s%u",
							 k ? " " : "", got[i][k]);
		}
		if (used < size)
			used += (size_t)snprintf(what + used, size - used,
						 "], expected %d from %u", want[i],
						 c->next_out[i]);
		c->next_out[i] += (uint32_t)in_order;
	}
	return ok;
}

/* The same number of frames from every tap. */
static bool released(struct api *c, int each, char *what, size_t size)
{
	int want[NTAPS], i;

	for (i = 0; i < NTAPS; i++)
		want[i] = each;
	return released_each(c, want, what, size);
}

/* Every frame sent so far, from every tap. */
static bool released_all_sent(struct api *c, char *what, size_t size)
{
	int want[NTAPS], i;

	for (i = 0; i < NTAPS; i++)
		want[i] = (int)(c->tap[i].next_seq - c->next_out[i]);
	return released_each(c, want, what, size);
}

/* ---- status JSON ----------------------------------------------------------- */

/* Returns the status (owned: json_object_put) or NULL. */
static struct json_object *status(struct api *c)
{
	return remus_netbuffer_status_json(c->nb);
}

static struct json_object *jget(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static bool jstr_is(struct json_object *o, const char *key, const char *want)
{
	struct json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_string) &&
	       strcmp(json_object_get_string(v), want) == 0;
}

static bool jint_is(struct json_object *o, const char *key, int64_t want)
{
	struct json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_int) && json_object_get_int64(v) == want;
}

static bool jbool_is(struct json_object *o, const char *key, bool want)
{
	struct json_object *v = jget(o, key);

	return v && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v) == want;
}

/* "state" and "holding" of the status, as "state=ready holding=1". */
static bool status_is(struct api *c, const char *state, bool holding, char *what, size_t size)
{
	struct json_object *o = status(c);
	bool ok = jstr_is(o, "state", state) && jbool_is(o, "holding", holding);

	snprintf(what, size, "status state=%s holding=%s",
		 jget(o, "state") ? json_object_get_string(jget(o, "state")) : "(none)",
		 jget(o, "holding") ? json_object_get_string(jget(o, "holding")) : "(none)");
	json_object_put(o);
	return ok;
}

/* ---- host checks ----------------------------------------------------------- */

/* True if every tap has its IFB with a plug root and an ingress qdisc
 * with our u32 filter (as plug.h describes). */
static bool installed(const char *snap, const char *const *taps, size_t n)
{
	char line[160], ifb[IF_NAMESIZE];
	size_t i;
	bool ok = snap != NULL;

	for (i = 0; ok && i < n; i++) {
		remus_netbuffer_plug_ifb_name(taps[i], ifb, sizeof(ifb));
		snprintf(line, sizeof(line), "qdisc %s handle 52ed:0 parent root kind plug", ifb);
		ok = plug_has_line(snap, line);
		snprintf(line, sizeof(line), "link %s kind=ifb up=1 mtu=1500 alias=remus-netbuffer "
			 "tap=%s", ifb, taps[i]);
		ok = ok && plug_has_line(snap, line);
		snprintf(line, sizeof(line), "qdisc %s handle ffff:0 parent ffff:fff1 kind ingress",
			 taps[i]);
		ok = ok && plug_has_line(snap, line);
		snprintf(line, sizeof(line), "filter %s parent ffff:0 prio 21229 proto 0x3 kind u32",
			 taps[i]);
		ok = ok && plug_count_prefix(snap, line) >= 1;
	}
	return ok;
}

static bool host_as_before(struct api *c)
{
	char *now = plug_snapshot();
	bool ok = plug_same_host(c->before, now);

	free(now);
	return ok;
}

/* ---- 0: remus_netbuffer_new's refusals ------------------------------------ */

static int new_refusals(struct api *c)
{
	static const char *const bad_names[] = { "bad/name", "", "a-name-too-long-for-ifnamsiz" };
	struct remus_netbuffer_config cfg = { .kind = REMUS_NETBUFFER_PLUG };
	struct remus_netbuffer *nb = NULL;
	int rc_none, rc_bad[3], i;
	bool ok;

	rc_none = remus_netbuffer_new(c->loop, NULL, &cfg, &nb);
	ok = rc_none == -EINVAL;
	for (i = 0; i < 3; i++) {
		cfg.devices = &bad_names[i];
		cfg.ndevices = 1;
		rc_bad[i] = remus_netbuffer_new(c->loop, NULL, &cfg, &nb);
		ok = ok && rc_bad[i] == -EINVAL;
	}
	ok = ok && nb == NULL;
	remus_netbuffer_free(nb);
	return plug_check(ok && host_as_before(c), "new-refusals",
			  "no taps: %d, 'bad/name': %d, '': %d, 28-char name: %d (want -EINVAL "
			  "each), *out untouched, host unchanged", rc_none, rc_bad[0], rc_bad[1],
			  rc_bad[2]);
}

/* ---- 1: on_lost RELEASE ---------------------------------------------------- */

/* new without QMP, setup from the loop, the installed plugs. */
static int release_setup(struct api *c, int *fails)
{
	struct remus_netbuffer_config cfg = {
		.kind = REMUS_NETBUFFER_PLUG, .devices = c->names, .ndevices = NTAPS,
		.on_lost = REMUS_NETBUFFER_LOST_RELEASE,
	};
	struct done d = { 0 };
	char what[256], *snap;
	bool inside, ok;
	long long ms;
	int rc;

	rc = remus_netbuffer_new(c->loop, NULL, &cfg, &c->nb);
	*fails += plug_check(rc == 0 && c->nb && host_as_before(c), "new-without-qmp",
			     "new(loop, qmp=NULL, plug, [%s, %s]) = %d; host unchanged by new",
			     c->names[0], c->names[1], rc);
	if (rc < 0)
		return rc;
	remus_netbuffer_setup(c->nb, on_done, &d);
	inside = d.called;
	ms = run_until_done(c, &d);
	*fails += plug_check(!inside && d.called && d.rc == 0 && d.msg_null, "setup-async",
			     "done %s the call, after %lld ms, rc=%d msg=%s",
			     inside ? "inside" : "outside", ms, d.rc,
			     d.msg_null ? "NULL" : d.msg);
	if (!d.called || d.rc != 0)
		return -EIO;
	snap = plug_snapshot();
	ok = installed(snap, c->names, NTAPS) && status_is(c, "ready", true, what, sizeof(what));
	free(snap);
	*fails += plug_check(ok, "setup-installed",
			     "an IFB with a plug root and an ingress u32 redirect per tap; %s", what);
	return 0;
}

/* Barrier/commit, a commit of the older of two closed epochs, the merged
 * epoch, unknown labels, the status JSON. */
static int release_epochs(struct api *c)
{
	struct remus_netbuffer_stats st;
	struct json_object *o, *s, *devs;
	char what[512];
	int fails = 0, rc, rc2;
	bool ok;

	send_each(c, 3, SMALL);
	st = wait_held(c, 3 * NTAPS);
	ok = released(c, 0, what, sizeof(what));
	fails += plug_check(ok && st.held_frames == 3 * NTAPS &&
				    st.held_bytes >= st.held_frames * (SMALL - 14) &&
				    st.held_bytes <= st.held_frames * SMALL,
			    "held-before-barrier", "3 frames of %d bytes per tap: held %llu "
			    "(%llu bytes); %s", SMALL, (unsigned long long)st.held_frames,
			    (unsigned long long)st.held_bytes, what);

	rc = remus_netbuffer_barrier(c->nb, 1);
	send_each(c, 2, SMALL); /* epoch 2 */
	wait_held(c, 5 * NTAPS);
	remus_netbuffer_commit(c->nb, 1);
	fails += plug_check(rc == 0 && released(c, 3, what, sizeof(what)),
			    "commit-releases-epoch", "barrier(1) = %d, commit(1): %s", rc, what);
	st = wait_held(c, 2 * NTAPS);
	fails += plug_check(st.held_frames == 2 * NTAPS && st.held_epochs == 0,
			    "later-epoch-held", "2 frames per tap sent after barrier(1): held "
			    "%llu, closed epochs %llu", (unsigned long long)st.held_frames,
			    (unsigned long long)st.held_epochs);

	/* Remus pipelining: the next barrier before the commit.  The plug
	 * merges epoch 3 into its open epoch (plug.h). */
	rc = remus_netbuffer_barrier(c->nb, 2);
	send_each(c, 1, SMALL); /* epoch 3 */
	wait_held(c, 3 * NTAPS);
	rc2 = remus_netbuffer_barrier(c->nb, 3);
	send_each(c, 1, SMALL); /* epoch 4 */
	st = wait_held(c, 4 * NTAPS);
	remus_netbuffer_commit(c->nb, 2);
	ok = released(c, 2, what, sizeof(what));
	fails += plug_check(rc == 0 && rc2 == 0 && st.held_epochs == 2 && ok,
			    "commit-older-of-two", "barrier(2) = %d, barrier(3) = %d, %llu closed "
			    "epochs, commit(2): %s", rc, rc2,
			    (unsigned long long)st.held_epochs, what);
	remus_netbuffer_commit(c->nb, 3);
	ok = released(c, 0, what, sizeof(what));
	st = wait_held(c, 2 * NTAPS);
	fails += plug_check(ok && st.held_frames == 2 * NTAPS, "merged-epoch-not-early",
			    "commit(3) of the merged epoch: %s; held %llu (epochs 3 and 4, one "
			    "frame each per tap)", what, (unsigned long long)st.held_frames);
	rc = remus_netbuffer_barrier(c->nb, 4);
	remus_netbuffer_commit(c->nb, 4);
	ok = released(c, 2, what, sizeof(what));
	st = wait_held(c, 0);
	fails += plug_check(rc == 0 && ok && st.held_frames == 0, "merged-epoch-released-next",
			    "barrier(4) = %d, commit(4): %s; held %llu", rc, what,
			    (unsigned long long)st.held_frames);

	send_each(c, 1, SMALL);
	wait_held(c, NTAPS);
	remus_netbuffer_commit(c->nb, 4);
	remus_netbuffer_commit(c->nb, 77);
	ok = released(c, 0, what, sizeof(what));
	st = wait_held(c, NTAPS);
	fails += plug_check(ok && st.held_frames == NTAPS, "commit-unknown-ignored",
			    "commit(4) again and commit(77): %s; held %llu",
			    what, (unsigned long long)st.held_frames);

	o = status(c);
	s = jget(o, "stats");
	devs = jget(o, "devices");
	ok = jstr_is(o, "kind", "plug") && devs && json_object_is_type(devs, json_type_array) &&
	     json_object_array_length(devs) == NTAPS &&
	     strcmp(json_object_get_string(json_object_array_get_idx(devs, 0)), c->names[0]) == 0 &&
	     strcmp(json_object_get_string(json_object_array_get_idx(devs, 1)), c->names[1]) == 0 &&
	     jstr_is(o, "state", "ready") && jbool_is(o, "holding", true) &&
	     jstr_is(o, "on_lost", "release") && jint_is(o, "epoch_limit_bytes", DEFAULT_LIMIT) &&
	     !jget(o, "nics") && jint_is(s, "barriers", 4) && jint_is(s, "commits", 4) &&
	     jint_is(s, "held_frames", NTAPS) && jint_is(s, "held_epochs", 0) &&
	     jint_is(s, "dropped_overflow", 0);
	fails += plug_check(ok, "status-json", "%s",
			    o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "(none)");
	json_object_put(o);
	return fails;
}

/* Standby lost (release, pass through), protect, teardown. */
static int release_lost_protect(struct api *c)
{
	struct remus_netbuffer_stats st;
	struct done d = { 0 };
	char what[512], what2[128];
	int fails = 0, rc;
	bool ok, inside;

	/* One frame per tap in the open epoch (from commit-unknown-ignored),
	 * closed by barrier(5), one more open. */
	rc = remus_netbuffer_barrier(c->nb, 5);
	send_each(c, 1, SMALL);
	wait_held(c, 2 * NTAPS);
	remus_netbuffer_standby_lost(c->nb);
	ok = released(c, 2, what, sizeof(what));
	st = wait_held(c, 0);
	fails += plug_check(rc == 0 && ok && st.held_frames == 0, "lost-release-flushes",
			    "a closed and an open epoch held, standby_lost: %s; held %llu",
			    what, (unsigned long long)st.held_frames);

	send_each(c, 2, SMALL);
	ok = released(c, 2, what, sizeof(what));
	fails += plug_check(ok && status_is(c, "ready", false, what2, sizeof(what2)),
			    "lost-passes-through", "2 frames per tap, no commit: %s; %s", what,
			    what2);
	rc = remus_netbuffer_barrier(c->nb, 6);
	send_each(c, 1, SMALL);
	ok = released(c, 1, what, sizeof(what));
	remus_netbuffer_commit(c->nb, 6);
	st = stats(c);
	fails += plug_check(rc == 0 && ok && st.held_frames == 0, "lost-barrier-passes",
			    "barrier(6) = %d while unprotected, then 1 frame per tap: %s; held "
			    "%llu", rc, what, (unsigned long long)st.held_frames);

	remus_netbuffer_protect(c->nb);
	send_each(c, 2, SMALL); /* the new session's epoch 1 */
	st = wait_held(c, 2 * NTAPS);
	ok = released(c, 0, what, sizeof(what));
	fails += plug_check(ok && st.held_frames == 2 * NTAPS &&
				    status_is(c, "ready", true, what2, sizeof(what2)),
			    "protect-holds-again", "2 frames per tap after protect: held %llu; "
			    "%s; %s", (unsigned long long)st.held_frames, what, what2);
	/* The standby's numbering restarts with the session: label 1 again. */
	rc = remus_netbuffer_barrier(c->nb, 1);
	send_each(c, 1, SMALL); /* epoch 2 */
	st = wait_held(c, 3 * NTAPS);
	remus_netbuffer_commit(c->nb, 1);
	ok = released(c, 2, what, sizeof(what));
	fails += plug_check(rc == 0 && ok, "protect-first-commit-exact",
			    "barrier(1) = %d (%llu closed epochs), commit(1) of the new session "
			    "releases its epoch 1: %s", rc, (unsigned long long)st.held_epochs,
			    what);
	rc = remus_netbuffer_barrier(c->nb, 2);
	remus_netbuffer_commit(c->nb, 2);
	ok = released_all_sent(c, what, sizeof(what));
	st = wait_held(c, 0);
	fails += plug_check(rc == 0 && ok && st.held_frames == 0, "protect-second-commit",
			    "barrier(2) = %d, commit(2): everything sent is out: %s; held %llu",
			    rc, what, (unsigned long long)st.held_frames);

	/* Teardown lets what is held out, then removes everything. */
	rc = remus_netbuffer_barrier(c->nb, 3);
	send_each(c, 2, SMALL);
	wait_held(c, 2 * NTAPS);
	remus_netbuffer_teardown(c->nb, true, on_done, &d);
	inside = d.called;
	run_until_done(c, &d);
	ok = released(c, 2, what, sizeof(what));
	fails += plug_check(rc == 0 && !inside && d.called && d.rc == 0 && ok,
			    "teardown-releases-held", "done %s the call, rc=%d; %s",
			    inside ? "inside" : "outside", d.rc, what);
	ok = status_is(c, "down", false, what2, sizeof(what2));
	fails += plug_check(ok && host_as_before(c), "teardown-restores-host",
			    "links, qdiscs and filters equal to before new; %s", what2);
	remus_netbuffer_free(c->nb);
	c->nb = NULL;
	return fails;
}

/* ---- 2: on_lost HOLD, a small limit, teardown(release=false) ------------- */

static int hold_policy(struct api *c)
{
	struct remus_netbuffer_config cfg = {
		.kind = REMUS_NETBUFFER_PLUG, .devices = c->names, .ndevices = NTAPS,
		.epoch_limit_bytes = HOLD_LIMIT, .on_lost = REMUS_NETBUFFER_LOST_HOLD,
	};
	struct remus_netbuffer_stats st;
	struct json_object *o;
	struct done d = { 0 };
	char what[512], what2[128];
	int fails = 0, rc, want[NTAPS] = { 4, 0 };
	bool ok;

	rc = remus_netbuffer_new(c->loop, NULL, &cfg, &c->nb);
	if (rc == 0) {
		remus_netbuffer_setup(c->nb, on_done, &d);
		run_until_done(c, &d);
	}
	o = rc == 0 ? status(c) : NULL;
	ok = rc == 0 && d.called && d.rc == 0 && jstr_is(o, "on_lost", "hold") &&
	     jint_is(o, "epoch_limit_bytes", HOLD_LIMIT);
	fails += plug_check(ok, "hold-setup", "new = %d, setup rc=%d; status %s", rc, d.rc,
			    o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "-");
	json_object_put(o);
	if (!ok)
		goto out;

	send_each(c, 2, SMALL); /* epoch 1 */
	wait_held(c, 2 * NTAPS);
	rc = remus_netbuffer_barrier(c->nb, 1);
	send_each(c, 1, SMALL); /* epoch 2 */
	wait_held(c, 3 * NTAPS);
	remus_netbuffer_standby_lost(c->nb);
	ok = released(c, 0, what, sizeof(what));
	st = wait_held(c, 3 * NTAPS);
	fails += plug_check(rc == 0 && ok && st.held_frames == 3 * NTAPS &&
				    status_is(c, "ready", true, what2, sizeof(what2)),
			    "lost-hold-keeps", "standby_lost: %s; held %llu; %s", what,
			    (unsigned long long)st.held_frames, what2);
	remus_netbuffer_commit(c->nb, 1);
	ok = released(c, 2, what, sizeof(what));
	st = wait_held(c, NTAPS);
	fails += plug_check(ok && st.held_frames == NTAPS, "lost-hold-commit-releases",
			    "commit(1) after the loss: %s; held %llu", what,
			    (unsigned long long)st.held_frames);
	rc = remus_netbuffer_barrier(c->nb, 2);
	remus_netbuffer_commit(c->nb, 2);
	ok = released(c, 1, what, sizeof(what));
	fails += plug_check(rc == 0 && ok, "lost-hold-next-commit", "barrier(2) = %d, "
			    "commit(2): %s", rc, what);

	/* The limit is each tap's plug queue: 8 big frames into the first. */
	plug_send_frames(&c->tap[0], 8, BIG);
	wait_held(c, 4);
	plug_sleep_ms(QUIET_MS);
	st = stats(c);
	ok = released_each(c, (const int[NTAPS]){ 0, 0 }, what, sizeof(what));
	fails += plug_check(ok && st.held_frames == 4 && st.dropped_overflow == 4 &&
				    st.held_bytes <= HOLD_LIMIT,
			    "limit-drops", "epoch_limit_bytes %d, 8 frames of %d bytes on %s: "
			    "held %llu (%llu bytes), dropped_overflow %llu; %s", HOLD_LIMIT, BIG,
			    c->names[0], (unsigned long long)st.held_frames,
			    (unsigned long long)st.held_bytes,
			    (unsigned long long)st.dropped_overflow, what);

	/* netbuffer.c: the plug cannot drop what it holds, so teardown
	 * releases it even when asked to drop (with a warning). */
	d = (struct done){ 0 };
	remus_netbuffer_teardown(c->nb, false, on_done, &d);
	run_until_done(c, &d);
	ok = released_each(c, want, what, sizeof(what));
	fails += plug_check(d.called && d.rc == 0 && ok && host_as_before(c),
			    "teardown-norelease", "teardown(release=false): rc=%d; the 4 held "
			    "frames come out: %s; host as before new", d.rc, what);
out:
	remus_netbuffer_free(c->nb);
	c->nb = NULL;
	return fails;
}

/* ---- 3: setup fails on a missing tap --------------------------------------- */

static int setup_failure(struct api *c)
{
	const char *devs[2] = { c->names[0], "rnb-nosuchtap" };
	struct remus_netbuffer_config cfg = {
		.kind = REMUS_NETBUFFER_PLUG, .devices = devs, .ndevices = 2,
	};
	struct done d = { 0 };
	char what[128];
	int fails = 0, rc;
	bool inside, ok;

	rc = remus_netbuffer_new(c->loop, NULL, &cfg, &c->nb);
	if (rc < 0)
		return plug_check(false, "setup-failure-rolls-back", "new = %d", rc);
	remus_netbuffer_setup(c->nb, on_done, &d);
	inside = d.called;
	run_until_done(c, &d);
	ok = !inside && d.called && d.rc == -ENODEV && strstr(d.msg, "rnb-nosuchtap") &&
	     host_as_before(c);
	fails += plug_check(ok, "setup-failure-rolls-back",
			    "taps [%s, rnb-nosuchtap]: done %s the call, rc=%d (want %d), msg "
			    "'%s'; host unchanged", devs[0], inside ? "inside" : "outside",
			    d.rc, -ENODEV, d.msg);
	rc = remus_netbuffer_barrier(c->nb, 1);
	ok = rc == -EINVAL && status_is(c, "failed", false, what, sizeof(what));
	d = (struct done){ 0 };
	remus_netbuffer_teardown(c->nb, true, on_done, &d);
	run_until_done(c, &d);
	fails += plug_check(ok && d.called && d.rc == 0 && host_as_before(c),
			    "failed-refuses-barrier", "barrier(1) = %d (want %d), %s; teardown "
			    "rc=%d; host unchanged", rc, -EINVAL, what, d.rc);
	remus_netbuffer_free(c->nb);
	c->nb = NULL;
	return fails;
}

int netbuffer_api_checks(void)
{
	struct api c;
	int fails = 0, i;

	memset(&c, 0, sizeof(c));
	for (i = 0; i < NTAPS; i++)
		c.tap[i].tun_fd = c.tap[i].pkt_fd = c.tap[i].udp_fd = -1;
	plug_check_scope("api");
	if (remus_loop_new(&c.loop) < 0) {
		fails += plug_check(false, "setup", "cannot create the event loop");
		goto out;
	}
	for (i = 0; i < NTAPS; i++) {
		char name[IF_NAMESIZE];

		snprintf(name, sizeof(name), "rapi%d", i);
		if (plug_tap_create_tun_net(&c.tap[i], name, (uint8_t)(78 + i)) < 0) {
			fails += plug_check(false, "setup", "cannot create the tap %s", name);
			goto out;
		}
		c.names[i] = c.tap[i].name;
		plug_flush_receiver(&c.tap[i]);
		c.next_out[i] = c.tap[i].next_seq;
	}
	c.before = plug_snapshot();
	if (!c.before) {
		fails += plug_check(false, "setup", "cannot dump links and qdiscs");
		goto out;
	}
	fails += new_refusals(&c);
	if (release_setup(&c, &fails) == 0) {
		fails += release_epochs(&c);
		fails += release_lost_protect(&c);
	}
	remus_netbuffer_free(c.nb);
	c.nb = NULL;
	fails += hold_policy(&c);
	fails += setup_failure(&c);
out:
	remus_netbuffer_free(c.nb);
	free(c.before);
	for (i = 0; i < NTAPS; i++)
		plug_tap_destroy(&c.tap[i]);
	remus_loop_free(c.loop);
	return fails;
}
