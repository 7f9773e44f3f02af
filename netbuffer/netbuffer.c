// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The netbuffer core (see netbuffer.h): lifecycle and policy, the epoch
 * labels, and dispatch to a backend.
 *
 *   NEW --setup--> SETTING_UP --ok--> READY --teardown--> TEARING_DOWN --> DOWN
 *    \                 |  \--failed (rolled back)--> FAILED --teardown--> DOWN
 *     \                \--teardown (cancels setup)--> TEARING_DOWN
 *      \--teardown--> TEARING_DOWN
 *
 * These are the only changes set_state() lets through (common/state.h).
 *
 * The queue (queue.c) is the single source of truth for epochs: the qemu
 * backend keeps its frames in it; for the plug backend it holds empty
 * buckets whose labels tell how many plug releases a commit means, since
 * sch_plug itself only knows "release the oldest epoch".
 *
 * Done callbacks always run from a zero-delay loop timer, never inside
 * the call that started the work, and may free the netbuffer:
 * remus_netbuffer_free() cancels the timers of callbacks still pending.
 */
#include "netbuffer/netbuffer.h"

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/state.h"
#include "netbuffer/plug.h"
#include "netbuffer/qemu.h"
#include "netbuffer/queue.h"

#define LOG "netbuffer"

#define NB_NEW REMUS_NETBUFFER_NEW
#define NB_SETTING_UP REMUS_NETBUFFER_SETTING_UP
#define NB_READY REMUS_NETBUFFER_READY
#define NB_FAILED REMUS_NETBUFFER_FAILED
#define NB_TEARING_DOWN REMUS_NETBUFFER_TEARING_DOWN
#define NB_DOWN REMUS_NETBUFFER_DOWN

static const char *const state_names[REMUS_NETBUFFER_NSTATES] = {
	[NB_NEW] = "new", [NB_SETTING_UP] = "setting_up", [NB_READY] = "ready",
	[NB_FAILED] = "failed", [NB_TEARING_DOWN] = "tearing_down", [NB_DOWN] = "down",
};

#define TO(s) REMUS_STATE_BIT(NB_##s)
static const uint32_t state_allowed[REMUS_NETBUFFER_NSTATES] = {
	[NB_NEW] = TO(SETTING_UP) | TO(TEARING_DOWN),
	[NB_SETTING_UP] = TO(READY) | TO(FAILED) | TO(TEARING_DOWN),
	[NB_READY] = TO(TEARING_DOWN),
	[NB_FAILED] = TO(TEARING_DOWN),
	[NB_TEARING_DOWN] = TO(DOWN),
	[NB_DOWN] = 0,
};
#undef TO

static const struct remus_state_machine machine = {
	.component = LOG,
	.names = state_names,
	.allowed = state_allowed,
	.nstates = REMUS_NETBUFFER_NSTATES,
};

/* calloc() starts a netbuffer in NEW. */
_Static_assert(NB_NEW == 0, "a zeroed netbuffer must be NEW");

/* A done callback waiting for its timer. */
struct done_slot {
	remus_netbuffer_done_cb *fn; /* NULL: nothing pending */
	void *opaque;
	int rc;
	char *msg;                  /* owned */
	struct remus_timer timer;   /* runs fn from the loop */
};

struct remus_netbuffer {
	struct remus_loop *loop;  /* borrowed */
	struct remus_qmp *qmp;    /* borrowed; NULL for plug */
	enum remus_netbuffer_kind kind;
	enum remus_netbuffer_on_lost on_lost;
	size_t epoch_limit;
	char **devices;           /* owned copies (qemu: may be empty: discover) */
	size_t ndevices;
	enum remus_netbuffer_state state;
	bool holding;             /* false between standby_lost(RELEASE) and protect */
	struct remus_nbq q;
	struct remus_nbqemu *qemu;            /* owned, qemu backend */
	struct remus_netbuffer_plug **plugs;  /* owned, plug backend: one per tap */
	bool plugs_open;
	struct done_slot setup_cb, td_cb;
};

const char *remus_netbuffer_state_name(enum remus_netbuffer_state s)
{
	return remus_state_name(&machine, s);
}

bool remus_netbuffer_state_transition_ok(enum remus_netbuffer_state from,
					 enum remus_netbuffer_state to)
{
	return remus_state_allowed(&machine, from, to);
}

enum remus_netbuffer_state remus_netbuffer_get_state(const struct remus_netbuffer *nb)
{
	return nb->state;
}

static void release_held(struct remus_netbuffer *nb);

/*
 * The one place the state changes.  Returns 0, or -EPROTO after an
 * illegal change in a release build (a debug build aborts).  Before
 * teardown the netbuffer then stops holding, so the guest is never cut
 * off by a netbuffer that lost track of itself: everything held is
 * released, output passes through, and the state becomes FAILED, so
 * the engine's next barrier fails and protection stops loudly.  During
 * and after teardown nothing is held any more and the state stays.
 */
static int set_state(struct remus_netbuffer *nb, enum remus_netbuffer_state to,
		     const char *why)
{
	enum remus_netbuffer_state from = nb->state;

	if (remus_state_change(&machine, from, to, why) == 0) {
		nb->state = to;
		return 0;
	}
	if (from != NB_TEARING_DOWN && from != NB_DOWN) {
		remus_err(LOG, "internal error: releasing the guest's output and failing; "
			  "protection stops at the next barrier");
		release_held(nb);
		nb->state = NB_FAILED; /* the fatal path, outside the table on purpose */
	}
	return -EPROTO;
}

const char *remus_netbuffer_kind_name(enum remus_netbuffer_kind k)
{
	switch (k) {
	case REMUS_NETBUFFER_QEMU: return "qemu";
	case REMUS_NETBUFFER_PLUG: return "plug";
	}
	return "?";
}

int remus_netbuffer_kind_parse(const char *s, enum remus_netbuffer_kind *out)
{
	if (s && strcmp(s, "qemu") == 0)
		*out = REMUS_NETBUFFER_QEMU;
	else if (s && strcmp(s, "plug") == 0)
		*out = REMUS_NETBUFFER_PLUG;
	else
		return -EINVAL;
	return 0;
}

/* ---- deferred done callbacks ------------------------------------------ */

static void on_done_timer(struct remus_loop *loop, void *opaque)
{
	struct done_slot *s = opaque;
	remus_netbuffer_done_cb *fn = s->fn;
	void *o = s->opaque;
	char *msg = s->msg;
	int rc = s->rc;

	s->fn = NULL;
	s->msg = NULL;
	/* May free the netbuffer, and with it @s. */
	fn(o, rc, msg);
	free(msg);
}

static void slot_fire(struct done_slot *s, int rc, const char *msg)
{
	s->rc = rc;
	free(s->msg);
	s->msg = rc && msg ? strdup(msg) : NULL;
	if (rc && !s->msg)
		s->msg = strdup("netbuffer: out of memory");
	remus_timer_arm(&s->timer, 0);
}

static void slot_cancel(struct done_slot *s)
{
	remus_timer_disarm(&s->timer);
	s->fn = NULL;
	free(s->msg);
	s->msg = NULL;
}

/* ---- creation ---------------------------------------------------------- */

static void on_release(void *opaque, unsigned nic, const uint8_t *data, uint32_t len,
		       uint32_t vnet_hdr_len)
{
	struct remus_netbuffer *nb = opaque;

	remus_nbqemu_output(nb->qemu, nic, data, len, vnet_hdr_len);
}

int remus_netbuffer_new(struct remus_loop *loop, struct remus_qmp *qmp,
			const struct remus_netbuffer_config *cfg,
			struct remus_netbuffer **out)
{
	struct remus_netbuffer *nb = NULL;
	size_t i;
	int rc;

	if (!loop || !cfg || (cfg->ndevices && !cfg->devices))
		return -EINVAL;
	if (cfg->kind == REMUS_NETBUFFER_PLUG) {
		if (cfg->ndevices == 0) {
			remus_err(LOG, "the plug backend needs the host tap names of the VM's NICs");
			return -EINVAL;
		}
		if (!remus_netbuffer_plug_built()) {
			remus_err(LOG, "the plug backend is not in this build (no libnl); "
				  "use the qemu backend");
			return -ENOTSUP;
		}
	} else if (cfg->kind == REMUS_NETBUFFER_QEMU) {
		if (!qmp) {
			remus_err(LOG, "the qemu backend needs the VM's QMP connection");
			return -EINVAL;
		}
	} else {
		return -EINVAL;
	}
	for (i = 0; i < cfg->ndevices; i++) {
		const char *d = cfg->devices[i];
		bool ok = cfg->kind == REMUS_NETBUFFER_QEMU
				  ? remus_nbqemu_valid_id(d)
				  : d && d[0] && strlen(d) < IF_NAMESIZE && !strchr(d, '/');

		if (!ok) {
			remus_err(LOG, "%s device '%s' is not a valid %s", remus_netbuffer_kind_name(cfg->kind),
				  d ? d : "(null)", cfg->kind == REMUS_NETBUFFER_QEMU
				  ? "netdev id (a letter, then letters, digits, '-', '.', '_')"
				  : "interface name");
			return -EINVAL;
		}
	}

	nb = calloc(1, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	nb->loop = loop;
	nb->qmp = cfg->kind == REMUS_NETBUFFER_QEMU ? qmp : NULL;
	nb->kind = cfg->kind;
	nb->on_lost = cfg->on_lost;
	nb->holding = true;
	remus_timer_init(&nb->setup_cb.timer, loop, on_done_timer, &nb->setup_cb);
	remus_timer_init(&nb->td_cb.timer, loop, on_done_timer, &nb->td_cb);
	remus_nbq_init(&nb->q, cfg->epoch_limit_bytes,
		       cfg->kind == REMUS_NETBUFFER_QEMU ? on_release : NULL, nb);
	nb->epoch_limit = nb->q.epoch_limit;
	rc = -ENOMEM;
	if (cfg->ndevices) {
		nb->devices = calloc(cfg->ndevices, sizeof(*nb->devices));
		if (!nb->devices)
			goto out;
		for (i = 0; i < cfg->ndevices; i++) {
			nb->devices[i] = strdup(cfg->devices[i]);
			if (!nb->devices[i])
				goto out;
			nb->ndevices++;
		}
	}
	if (nb->kind == REMUS_NETBUFFER_QEMU) {
		rc = remus_nbqemu_new(loop, qmp, &nb->q, (const char *const *)nb->devices,
				      nb->ndevices, &nb->qemu);
		if (rc < 0)
			goto out;
	} else {
		nb->plugs = calloc(nb->ndevices, sizeof(*nb->plugs));
		if (!nb->plugs)
			goto out;
	}
	*out = nb;
	return 0;
out:
	remus_netbuffer_free(nb);
	return rc;
}

/* ---- plug backend ------------------------------------------------------ */

static void plugs_close(struct remus_netbuffer *nb)
{
	size_t i;

	for (i = 0; i < nb->ndevices; i++) {
		remus_netbuffer_plug_free(nb->plugs[i]);
		nb->plugs[i] = NULL;
	}
	nb->plugs_open = false;
}

/* Opens a plug on every tap, or none.  Returns 0, or -errno with @msg
 * filled in. */
static int plugs_open(struct remus_netbuffer *nb, char *msg, size_t size)
{
	uint32_t limit = nb->epoch_limit > UINT32_MAX ? UINT32_MAX : (uint32_t)nb->epoch_limit;
	size_t i;
	int rc;

	for (i = 0; i < nb->ndevices; i++) {
		rc = remus_netbuffer_plug_open(nb->devices[i], limit, &nb->plugs[i]);
		if (rc < 0) {
			snprintf(msg, size, "netbuffer plug: tap '%s': cannot install the "
				 "plug qdisc: %s (details logged above)", nb->devices[i],
				 strerror(-rc));
			plugs_close(nb);
			return rc;
		}
	}
	nb->plugs_open = true;
	return 0;
}

static int plugs_barrier(struct remus_netbuffer *nb)
{
	size_t i;
	int rc, first = 0;

	for (i = 0; nb->plugs_open && i < nb->ndevices; i++) {
		rc = remus_netbuffer_plug_barrier(nb->plugs[i]);
		if (rc < 0) {
			remus_err(LOG, "tap '%s': plug barrier failed: %s; this epoch's output "
				  "may leave with the previous one", nb->devices[i], strerror(-rc));
			if (!first)
				first = rc;
		}
	}
	return first;
}

static void plugs_commit(struct remus_netbuffer *nb, int epochs)
{
	size_t i;
	int k, rc;

	for (i = 0; nb->plugs_open && i < nb->ndevices; i++)
		for (k = 0; k < epochs; k++) {
			rc = remus_netbuffer_plug_commit(nb->plugs[i]);
			if (rc < 0) {
				remus_err(LOG, "tap '%s': plug release failed: %s; its output "
					  "stays held until teardown", nb->devices[i], strerror(-rc));
				break;
			}
		}
}

static void plugs_release_all(struct remus_netbuffer *nb)
{
	size_t i;
	int rc;

	for (i = 0; nb->plugs_open && i < nb->ndevices; i++) {
		rc = remus_netbuffer_plug_release_all(nb->plugs[i]);
		if (rc < 0)
			remus_err(LOG, "tap '%s': releasing everything held failed: %s; its "
				  "output stays held until teardown", nb->devices[i],
				  strerror(-rc));
	}
}

/* ---- hooks ------------------------------------------------------------- */

static void on_qemu_setup(void *opaque, int rc, const char *msg)
{
	struct remus_netbuffer *nb = opaque;

	if (nb->state == NB_SETTING_UP)
		set_state(nb, rc == 0 ? NB_READY : NB_FAILED,
			  rc == 0 ? "qemu backend set up" : "qemu backend setup failed");
	slot_fire(&nb->setup_cb, rc, msg);
}

void remus_netbuffer_setup(struct remus_netbuffer *nb, remus_netbuffer_done_cb *done,
			   void *opaque)
{
	char msg[512];
	int rc;

	if (nb->state != NB_NEW || nb->setup_cb.fn) {
		remus_err(LOG, "setup called twice (state %s); ignored",
			  remus_netbuffer_state_name(nb->state));
		return;
	}
	nb->setup_cb.fn = done;
	nb->setup_cb.opaque = opaque;
	if (set_state(nb, NB_SETTING_UP, "setup") < 0)
		return;
	if (nb->kind == REMUS_NETBUFFER_QEMU) {
		remus_nbqemu_setup(nb->qemu, on_qemu_setup, nb);
		return;
	}
	/* plug: netlink calls are short and local; done still comes later. */
	rc = plugs_open(nb, msg, sizeof(msg));
	set_state(nb, rc == 0 ? NB_READY : NB_FAILED,
		  rc == 0 ? "plugs installed" : "plugs not installed");
	if (rc == 0)
		remus_info(LOG, "holding the output of %zu tap(s) with sch_plug (first: '%s')",
			   nb->ndevices, nb->devices[0]);
	slot_fire(&nb->setup_cb, rc, rc ? msg : NULL);
}

int remus_netbuffer_barrier(struct remus_netbuffer *nb, uint64_t epoch)
{
	int rc, rc2 = 0;

	if (nb->state != NB_READY) {
		remus_err(LOG, "barrier for epoch %llu while %s; setup must succeed first",
			  (unsigned long long)epoch, remus_netbuffer_state_name(nb->state));
		return -EINVAL;
	}
	if (nb->kind == REMUS_NETBUFFER_QEMU)
		rc2 = remus_nbqemu_drain(nb->qemu);
	else if (nb->holding)
		rc2 = plugs_barrier(nb);
	rc = remus_nbq_barrier(&nb->q, epoch);
	if (rc < 0) {
		remus_err(LOG, "barrier for epoch %llu: out of memory; its output joins the "
			  "next epoch", (unsigned long long)epoch);
		return rc;
	}
	/* A reader that stopped was logged; its NIC is unbuffered now, which
	 * the engine cannot fix by retrying, so only plug errors count. */
	return nb->kind == REMUS_NETBUFFER_PLUG ? rc2 : 0;
}

void remus_netbuffer_commit(struct remus_netbuffer *nb, uint64_t epoch)
{
	int n;

	if (nb->state != NB_READY) {
		remus_debug(LOG, "commit of epoch %llu while %s ignored",
			    (unsigned long long)epoch, remus_netbuffer_state_name(nb->state));
		return;
	}
	n = remus_nbq_commit(&nb->q, epoch, remus_now_ns());
	if (n < 0) {
		if (nb->holding)
			remus_warn(LOG, "commit of epoch %llu: no such epoch is held "
				   "(already committed, or before setup); ignored",
				   (unsigned long long)epoch);
		return;
	}
	if (nb->kind == REMUS_NETBUFFER_PLUG)
		plugs_commit(nb, n);
}

void remus_netbuffer_standby_lost(struct remus_netbuffer *nb)
{
	struct remus_netbuffer_stats st;

	if (nb->state != NB_READY || !nb->holding)
		return;
	remus_nbq_get_stats(&nb->q, &st);
	if (nb->on_lost == REMUS_NETBUFFER_LOST_HOLD) {
		remus_err(LOG, "standby lost: holding the guest's output (%llu frames, %llu "
			  "bytes held now) until a new standby commits or teardown; the "
			  "guest is cut off from the network meanwhile",
			  (unsigned long long)st.held_frames, (unsigned long long)st.held_bytes);
		return;
	}
	remus_err(LOG, "standby lost: releasing %llu held frames (%llu bytes) and passing "
		  "the guest's output through UNPROTECTED until a new protection session",
		  (unsigned long long)st.held_frames, (unsigned long long)st.held_bytes);
	release_held(nb);
}

/* Releases everything held and passes output through from now on. */
static void release_held(struct remus_netbuffer *nb)
{
	nb->holding = false;
	remus_nbq_set_mode(&nb->q, REMUS_NBQ_PASS, remus_now_ns());
	if (nb->kind == REMUS_NETBUFFER_PLUG)
		plugs_release_all(nb);
}

void remus_netbuffer_protect(struct remus_netbuffer *nb)
{
	if (nb->state != NB_READY || nb->holding)
		return;
	nb->holding = true;
	remus_nbq_set_mode(&nb->q, REMUS_NBQ_HOLD, remus_now_ns());
	if (nb->kind == REMUS_NETBUFFER_PLUG) {
		/* A plug barrier is what ends release_all; it also closes the
		 * pass-through epoch in the plug, whose frames already left.
		 * Release that empty epoch at once: otherwise the new
		 * session's first barrier would be merged with it and its
		 * output would leave one commit late (found by the in-guest
		 * API test). */
		if (plugs_barrier(nb) < 0)
			remus_err(LOG, "protect: the plug could not hold again; the guest's "
				  "output may leave before its checkpoint is acknowledged");
		plugs_commit(nb, 1);
	}
	remus_info(LOG, "holding the guest's output again");
}

static void on_qemu_teardown(void *opaque, int rc, const char *msg)
{
	struct remus_netbuffer *nb = opaque;

	set_state(nb, NB_DOWN, "teardown done");
	nb->holding = false;
	slot_fire(&nb->td_cb, rc, msg);
}

void remus_netbuffer_teardown(struct remus_netbuffer *nb, bool release,
			      remus_netbuffer_done_cb *done, void *opaque)
{
	enum remus_netbuffer_state was = nb->state;

	if (was == NB_TEARING_DOWN || was == NB_DOWN || nb->td_cb.fn) {
		remus_err(LOG, "teardown called twice; ignored");
		return;
	}
	nb->td_cb.fn = done;
	nb->td_cb.opaque = opaque;
	if (set_state(nb, NB_TEARING_DOWN, release ? "teardown, releasing" : "teardown, dropping") < 0)
		return;
	if (nb->kind == REMUS_NETBUFFER_QEMU) {
		remus_nbqemu_teardown(nb->qemu, release, on_qemu_teardown, nb);
		return;
	}
	if (nb->plugs_open && !release)
		remus_warn(LOG, "plug backend: teardown cannot drop held output; "
			   "releasing it");
	plugs_close(nb);
	on_qemu_teardown(nb, 0, NULL);
}

void remus_netbuffer_free(struct remus_netbuffer *nb)
{
	size_t i;

	if (!nb)
		return;
	slot_cancel(&nb->setup_cb);
	slot_cancel(&nb->td_cb);
	remus_nbqemu_free(nb->qemu);
	if (nb->plugs)
		plugs_close(nb);
	free(nb->plugs);
	remus_nbq_release(&nb->q);
	for (i = 0; i < nb->ndevices; i++)
		free(nb->devices[i]);
	free(nb->devices);
	free(nb);
}

/* The kernel holds the frames: what it holds now and what it refused.
 * One netlink round trip per tap. */
static void plugs_stats(const struct remus_netbuffer *nb, struct remus_netbuffer_stats *st)
{
	struct remus_netbuffer_plug_stats ps;
	size_t i;

	for (i = 0; nb->plugs_open && i < nb->ndevices; i++) {
		if (remus_netbuffer_plug_stats(nb->plugs[i], &ps) < 0)
			continue;
		st->held_frames += ps.held_packets;
		st->held_bytes += ps.held_bytes;
		st->dropped_overflow += ps.dropped;
	}
}

/* ---- status ------------------------------------------------------------ */

void remus_netbuffer_get_stats(const struct remus_netbuffer *nb,
			       struct remus_netbuffer_stats *st)
{
	memset(st, 0, sizeof(*st));
	remus_nbq_get_stats(&nb->q, st);
	if (nb->qemu)
		remus_nbqemu_get_stats(nb->qemu, st);
	if (nb->kind == REMUS_NETBUFFER_PLUG)
		plugs_stats(nb, st);
}

struct json_object *remus_netbuffer_status_json(const struct remus_netbuffer *nb)
{
	struct remus_netbuffer_stats st;
	struct json_object *o = json_object_new_object(), *s, *devs;
	size_t i, n;

	if (!o)
		return NULL;
	remus_netbuffer_get_stats(nb, &st);
	json_object_object_add(o, "kind", json_object_new_string(remus_netbuffer_kind_name(nb->kind)));
	devs = json_object_new_array();
	n = nb->qemu ? remus_nbqemu_ndevices(nb->qemu) : nb->ndevices;
	for (i = 0; i < n; i++)
		json_object_array_add(devs, json_object_new_string(
			nb->qemu ? remus_nbqemu_device(nb->qemu, i) : nb->devices[i]));
	json_object_object_add(o, "devices", devs);
	json_object_object_add(o, "state", json_object_new_string(
		remus_netbuffer_state_name(nb->state)));
	json_object_object_add(o, "holding", json_object_new_boolean(
		nb->holding && (nb->state == NB_READY || nb->state == NB_SETTING_UP)));
	json_object_object_add(o, "on_lost", json_object_new_string(
		nb->on_lost == REMUS_NETBUFFER_LOST_HOLD ? "hold" : "release"));
	json_object_object_add(o, "epoch_limit_bytes", json_object_new_int64((int64_t)nb->epoch_limit));
	s = json_object_new_object();
#define U(f) json_object_object_add(s, #f, json_object_new_int64((int64_t)st.f))
	U(queued_frames); U(queued_bytes); U(released_frames); U(released_bytes);
	U(passthrough_frames); U(passthrough_bytes);
	U(dropped_overflow); U(dropped_malformed); U(dropped_teardown); U(dropped_io);
	U(held_frames); U(held_bytes); U(held_epochs); U(max_held_bytes);
	U(barriers); U(commits);
#undef U
	json_object_object_add(s, "latency_p50_ms", json_object_new_double(st.latency_p50_ms));
	json_object_object_add(s, "latency_max_ms", json_object_new_double(st.latency_max_ms));
	json_object_object_add(o, "stats", s);
	if (nb->qemu)
		remus_nbqemu_status_json(nb->qemu, o);
	return o;
}
