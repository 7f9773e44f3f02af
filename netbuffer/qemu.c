// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The qemu backend's QMP side (see qemu.h for the picture): it adds the
 * filter-redirector and its chardevs to a running QEMU and removes them
 * again, one command at a time, in the order below; the frames that then
 * flow are qemu_nic.c's business.  Everything is added over QMP at run
 * time, so a libvirt-managed running domain works, and nothing lives on
 * the filesystem (a libvirt QEMU runs as another user).
 *
 * Setup:
 *
 *   1. discovery (no netdevs named): qom-list /machine/peripheral and
 *      /machine/peripheral-anon, qom-get <device> netdev for each child
 *   2. leftovers: qom-list /objects, query-chardev; object-del and
 *      chardev-remove what a remusd that died without teardown left with
 *      our ids (its filter would swallow the guest's output)
 *   3. per netdev N, in order, after qemu_nic.c made its socketpairs:
 *
 *   getfd remus-nb-N-out, getfd remus-nb-N-in            (QEMU's socket ends)
 *   chardev-add remus-nb-N-out / -in   socket, addr {"type":"fd"}, client
 *   object-add filter-redirector id=remus-nb-N netdev=N queue=rx
 *              outdev=remus-nb-N-out indev=remus-nb-N-in vnet_hdr_support=on
 *
 * Teardown (also the rollback of a failed setup), one step at a time in
 * this order, continuing past errors:
 *
 *   queue -> PASS (release) or DROP        held frames go out / are dropped
 *   qom-set status=off on each filter      QEMU stops diverting; once the
 *                                          reply is here every diverted
 *                                          frame is in our socket
 *   drain outdev, wait until QEMU has read every byte we wrote to indev
 *                                          (SIOCOUTQ 0; at most 2 s)
 *   object-del, chardev-remove x2, closefd of fds not yet used
 *   close our socket ends
 *
 * If our socket ends close without teardown (remusd died), the filter
 * stays and keeps diverting into a disconnected chardev: the guest's output
 * is lost (QEMU logs "filter redirector send failed") until the objects
 * are removed, by hand (object-del remus-nb-N, chardev-remove
 * remus-nb-N-out and -in) or by the next setup, which does it first.
 * Fail-closed, measured on QEMU 10.0.2: nothing uncommitted ever leaves.
 *
 * The backend's states (qemu.h) change in set_state() only, checked by
 * common/state.h:
 *
 *   NEW -> [DISCOVER ->] SCAN -> SETUP -> READY -> TEARDOWN -> DONE
 *   DISCOVER, SCAN, SETUP -> TEARDOWN (a failed or cancelled setup rolls
 *   back), NEW -> DONE (teardown before setup)
 */
#include "netbuffer/qemu.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/state.h"
#include "netbuffer/qemu_nic.h"
#include "qmp/qmp.h"

#define LOG "netbuffer"
#define QMP_TIMEOUT_MS 10000u
#define FLUSH_POLL_MS 5u
#define FLUSH_TIMEOUT_MS 2000u

/* An object or chardev with one of our ids found at setup: a remusd that
 * died without teardown left it (its filter swallows the guest's output). */
struct leftover {
	const char *cmd;         /* "object-del" or "chardev-remove" */
	const char *id;          /* borrowed from the nic */
	size_t nic;
};

typedef void qop_cb(struct remus_nbqemu *b, struct qop *op, int rc,
		    struct json_object *ret, const char *err);

/* One QMP command in flight, submitted with @b as its QMP owner.  Owned
 * by the list of @b: the reply unlinks and frees it; remus_nbqemu_free()
 * cancels the owner (no reply reaches it afterwards) and frees the rest. */
struct qop {
	struct qop *next, *prev;
	struct remus_nbqemu *b;
	qop_cb *fn;
	size_t nic;
	char what[192];          /* "chardev-add remus-nb-n0-out", for messages */
	char *path;              /* owned, discovery: the device path asked */
};

/* ---- the state machine (drawn at the top) ------------------------------ */

static const char *const state_names[REMUS_NBQEMU_NSTATES] = {
	[Q_NEW] = "new", [Q_DISCOVER] = "discover", [Q_SCAN] = "scan", [Q_SETUP] = "setup",
	[Q_READY] = "ready", [Q_TEARDOWN] = "teardown", [Q_DONE] = "done",
};

#define TO(s) REMUS_STATE_BIT(Q_##s)
static const uint32_t state_allowed[REMUS_NBQEMU_NSTATES] = {
	[Q_NEW] = TO(DISCOVER) | TO(SCAN) | TO(DONE),
	[Q_DISCOVER] = TO(SCAN) | TO(TEARDOWN),
	[Q_SCAN] = TO(SETUP) | TO(TEARDOWN),
	[Q_SETUP] = TO(READY) | TO(TEARDOWN),
	[Q_READY] = TO(TEARDOWN),
	[Q_TEARDOWN] = TO(DONE),
	[Q_DONE] = 0,
};
#undef TO

static const struct remus_state_machine machine = {
	.component = LOG,
	.names = state_names,
	.allowed = state_allowed,
	.nstates = REMUS_NBQEMU_NSTATES,
};

/* calloc() starts a backend in NEW. */
_Static_assert(Q_NEW == 0, "a zeroed backend must be NEW");

const char *remus_nbqemu_state_name(enum remus_nbqemu_state s)
{
	return remus_state_name(&machine, s);
}

bool remus_nbqemu_state_transition_ok(enum remus_nbqemu_state from,
				      enum remus_nbqemu_state to)
{
	return remus_state_allowed(&machine, from, to);
}

/* The one place the state changes.  Returns 0, or -EPROTO after an
 * illegal change in a release build (a debug build aborts): everything
 * held is released and passes through from then on, so a backend that
 * lost track of itself never cuts the guest off; the state stays and
 * the caller returns without going on with its step. */
static int set_state(struct remus_nbqemu *b, enum remus_nbqemu_state to, const char *why)
{
	if (remus_state_change(&machine, b->state, to, why) == 0) {
		b->state = to;
		return 0;
	}
	remus_err(LOG, "internal error: releasing the guest's output");
	remus_nbq_set_mode(b->q, REMUS_NBQ_PASS, remus_now_ns());
	return -EPROTO;
}

/* Setup and teardown, in the order they run: each step sends one
 * command (or decides what comes next), and its reply handler moves on. */
static qop_cb on_list_reply;                        /* setup 1: discovery */
static void discover_next(struct remus_nbqemu *b);
static qop_cb on_netdev_reply;
static void scan_begin(struct remus_nbqemu *b);     /* setup 2: leftovers */
static qop_cb on_scan_reply;
static void left_next(struct remus_nbqemu *b);
static qop_cb on_left_reply;
static void setup_next(struct remus_nbqemu *b);     /* setup 3: per NIC */
static qop_cb on_setup_reply;
static void setup_ok(struct remus_nbqemu *b);
static void setup_fail(struct remus_nbqemu *b, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void teardown_begin(struct remus_nbqemu *b); /* teardown */
static void teardown_next(struct remus_nbqemu *b);
static void on_flush_timer(struct remus_loop *loop, void *opaque);
static qop_cb on_td_reply;
static void td_error(struct remus_nbqemu *b, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void td_finish(struct remus_nbqemu *b);

/* ---- QMP plumbing ------------------------------------------------------ */

static void op_unlink(struct remus_nbqemu *b, struct qop *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		b->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->next = op->prev = NULL;
}

static void op_free(struct qop *op)
{
	free(op->path);
	free(op);
}

static void on_reply(struct remus_qmp *qmp, int rc, struct json_object *ret,
		     const char *err, void *opaque)
{
	struct qop *op = opaque;
	struct remus_nbqemu *b = op->b;

	op_unlink(b, op);
	/* May free b: nothing touches it after this call. */
	op->fn(b, op, rc, ret, err ? err : "");
	op_free(op);
}

/* Submits @cmd with @args (taken) and @fd (borrowed, -1 none).  @op_out,
 * if not NULL, receives the op (borrowed, to attach a path).  Returns 0,
 * after which @fn runs once from the loop; or -errno, nothing pending. */
static int submit(struct remus_nbqemu *b, const char *cmd, struct json_object *args,
		  int fd, qop_cb *fn, size_t nic, const char *what, struct qop **op_out)
{
	struct qop *op = calloc(1, sizeof(*op));
	int rc;

	if (!op) {
		json_object_put(args);
		return -ENOMEM;
	}
	op->b = b;
	op->fn = fn;
	op->nic = nic;
	snprintf(op->what, sizeof(op->what), "%s", what);
	rc = remus_qmp_execute_owned(b->qmp, b, cmd, args, fd, QMP_TIMEOUT_MS, on_reply, op);
	if (rc < 0) {
		free(op);
		return rc;
	}
	op->next = b->ops;
	if (b->ops)
		b->ops->prev = op;
	b->ops = op;
	if (op_out)
		*op_out = op;
	return 0;
}

static struct json_object *obj_str(struct json_object *o, const char *key, const char *val)
{
	json_object_object_add(o, key, json_object_new_string(val));
	return o;
}

/* ---- lifecycle --------------------------------------------------------- */

int remus_nbqemu_new(struct remus_loop *loop, struct remus_qmp *qmp, struct remus_nbq *q,
		     const char *const *netdevs, size_t n, struct remus_nbqemu **out)
{
	struct remus_nbqemu *b = calloc(1, sizeof(*b));
	size_t i;

	if (!b)
		return -ENOMEM;
	b->loop = loop;
	b->qmp = qmp;
	b->q = q;
	remus_timer_init(&b->td_timer, loop, on_flush_timer, b);
	b->discover = n == 0;
	if (n) {
		b->nics = calloc(n, sizeof(*b->nics));
		if (!b->nics)
			goto nomem;
		for (i = 0; i < n; i++) {
			b->nnics++; /* before it can fail: free() releases it */
			if (remus_nbqemu_nic_init(&b->nics[i], b, (unsigned)i, netdevs[i]) < 0)
				goto nomem;
		}
	}
	*out = b;
	return 0;
nomem:
	remus_nbqemu_free(b);
	return -ENOMEM;
}

void remus_nbqemu_free(struct remus_nbqemu *b)
{
	struct qop *op;
	size_t i;

	if (!b)
		return;
	/* Replies still to come are dropped by the QMP client. */
	remus_qmp_cancel_owner(b->qmp, b);
	while ((op = b->ops)) {
		op_unlink(b, op);
		op_free(op);
	}
	remus_timer_disarm(&b->td_timer);
	for (i = 0; i < b->nnics; i++)
		remus_nbqemu_nic_release(b, &b->nics[i]);
	free(b->nics);
	for (i = 0; i < b->ncand; i++)
		free(b->cand[i]);
	free(b->cand);
	free(b->left);
	free(b);
}

size_t remus_nbqemu_ndevices(const struct remus_nbqemu *b)
{
	return b->nnics;
}

const char *remus_nbqemu_device(const struct remus_nbqemu *b, size_t i)
{
	return i < b->nnics ? b->nics[i].netdev : NULL;
}

bool remus_nbqemu_valid_id(const char *s)
{
	size_t i;

	/* QEMU's id_wellformed(): a letter, then letters, digits, -._ */
	if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (i = 1; s[i]; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._",
			    s[i]))
			return false;
	return i <= 64;
}

/* ---- setup 1: discovery of the NICs ------------------------------------ */

void remus_nbqemu_setup(struct remus_nbqemu *b, remus_nbqemu_done_cb *done, void *opaque)
{
	static const char *const roots[] = { "/machine/peripheral", "/machine/peripheral-anon" };
	struct json_object *args;
	struct qop *op;
	char what[192];
	size_t i;
	int rc;

	b->setup_done = done;
	b->setup_opaque = opaque;
	if (!b->discover) {
		scan_begin(b);
		return;
	}
	if (set_state(b, Q_DISCOVER, "discovering NICs") < 0)
		return;
	for (i = 0; i < 2; i++) {
		args = obj_str(json_object_new_object(), "path", roots[i]);
		snprintf(what, sizeof(what), "qom-list %s", roots[i]);
		op = NULL;
		rc = submit(b, "qom-list", args, -1, on_list_reply, 0, what, &op);
		if (rc == 0)
			op->path = strdup(roots[i]);
		if (rc < 0 || !op->path) {
			setup_fail(b, rc < 0 ? rc : -ENOMEM, "cannot discover the VM's NICs: "
				   "%s could not be sent: %s", what, strerror(rc < 0 ? -rc : ENOMEM));
			return;
		}
		b->lists_left++;
	}
}

static void on_list_reply(struct remus_nbqemu *b, struct qop *op, int rc,
			  struct json_object *ret, const char *err)
{
	size_t i, n;
	char **grown;

	if (b->state != Q_DISCOVER)
		return;
	if (b->cancel) {
		setup_fail(b, -ECANCELED, "netbuffer setup cancelled by teardown");
		return;
	}
	if (rc < 0) {
		setup_fail(b, rc, "cannot discover the VM's NICs: %s failed: %s", op->what, err);
		return;
	}
	n = json_object_is_type(ret, json_type_array) ? json_object_array_length(ret) : 0;
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(ret, i), *v;
		const char *name, *type;

		if (!json_object_object_get_ex(e, "name", &v) || !(name = json_object_get_string(v)) ||
		    !json_object_object_get_ex(e, "type", &v) || !(type = json_object_get_string(v)) ||
		    strncmp(type, "child<", 6) != 0)
			continue;
		grown = realloc(b->cand, (b->ncand + 1) * sizeof(*grown));
		if (!grown || asprintf(&grown[b->ncand], "%s/%s", op->path, name) < 0) {
			if (grown)
				b->cand = grown;
			setup_fail(b, -ENOMEM, "out of memory while discovering NICs");
			return;
		}
		b->cand = grown;
		b->ncand++;
	}
	if (--b->lists_left > 0)
		return;
	/* Room for every candidate, so that nics never moves once a
	 * socket watch points into it. */
	b->nics = calloc(b->ncand ? b->ncand : 1, sizeof(*b->nics));
	if (!b->nics) {
		setup_fail(b, -ENOMEM, "out of memory while discovering NICs");
		return;
	}
	discover_next(b);
}

static void discover_next(struct remus_nbqemu *b)
{
	struct json_object *args;
	struct qop *op = NULL;
	char what[192];
	int rc;

	if (b->cand_next == b->ncand) {
		if (b->nnics == 0) {
			setup_fail(b, -ENODEV, "the VM has no NIC with a netdev under "
				   "/machine/peripheral or /machine/peripheral-anon; name "
				   "the netdevs to buffer explicitly");
			return;
		}
		scan_begin(b);
		return;
	}
	args = json_object_new_object();
	obj_str(args, "path", b->cand[b->cand_next]);
	obj_str(args, "property", "netdev");
	snprintf(what, sizeof(what), "qom-get %s netdev", b->cand[b->cand_next]);
	rc = submit(b, "qom-get", args, -1, on_netdev_reply, 0, what, &op);
	if (rc < 0) {
		setup_fail(b, rc, "cannot discover the VM's NICs: %s could not be sent: %s",
			   what, strerror(-rc));
		return;
	}
	/* Moved to the op; nothing else needs it. */
	op->path = b->cand[b->cand_next];
	b->cand[b->cand_next++] = NULL;
}

static void on_netdev_reply(struct remus_nbqemu *b, struct qop *op, int rc,
			    struct json_object *ret, const char *err)
{
	const char *netdev;
	size_t i;

	if (b->state != Q_DISCOVER)
		return;
	if (b->cancel) {
		setup_fail(b, -ECANCELED, "netbuffer setup cancelled by teardown");
		return;
	}
	/* An error means "this device has no netdev property": not a NIC. */
	netdev = rc == 0 && json_object_is_type(ret, json_type_string)
			 ? json_object_get_string(ret) : NULL;
	if (netdev && netdev[0]) {
		for (i = 0; i < b->nnics; i++)
			if (strcmp(b->nics[i].netdev, netdev) == 0)
				break;
		if (i < b->nnics) {
			/* Two NICs cannot share a netdev; nothing to add. */
		} else if (!remus_nbqemu_valid_id(netdev)) {
			remus_warn(LOG, "NIC %s: netdev id '%s' is not a plain QEMU id; "
				   "its output is not buffered", op->path, netdev);
		} else {
			struct nic *n = &b->nics[b->nnics];

			/* Counted before it can fail: free() releases it. */
			if (remus_nbqemu_nic_init(n, b, (unsigned)b->nnics++, netdev) < 0) {
				setup_fail(b, -ENOMEM, "out of memory while discovering NICs");
				return;
			}
			remus_info(LOG, "NIC %s uses netdev '%s'", op->path, netdev);
		}
	}
	discover_next(b);
}

/* ---- setup 2: leftovers of an earlier run ------------------------------ */

/* Looks for objects and chardevs with our ids before adding any. */
static void scan_begin(struct remus_nbqemu *b)
{
	int rc;

	if (set_state(b, Q_SCAN, "looking for leftovers") < 0)
		return;
	b->left = calloc(3 * b->nnics, sizeof(*b->left));
	if (!b->left) {
		setup_fail(b, -ENOMEM, "out of memory");
		return;
	}
	rc = submit(b, "qom-list", obj_str(json_object_new_object(), "path", "/objects"), -1,
		    on_scan_reply, 0, "qom-list /objects", NULL);
	if (rc < 0)
		setup_fail(b, rc, "qom-list /objects could not be sent: %s", strerror(-rc));
}

/* True if the array @ret (qom-list or query-chardev) has an entry whose
 * @key is @id. */
static bool listed(struct json_object *ret, const char *key, const char *id)
{
	struct json_object *v;
	size_t i, n = json_object_is_type(ret, json_type_array) ? json_object_array_length(ret) : 0;

	for (i = 0; i < n; i++)
		if (json_object_object_get_ex(json_object_array_get_idx(ret, i), key, &v) &&
		    json_object_get_string(v) && strcmp(json_object_get_string(v), id) == 0)
			return true;
	return false;
}

static void on_scan_reply(struct remus_nbqemu *b, struct qop *op, int rc,
			  struct json_object *ret, const char *err)
{
	bool objects = strncmp(op->what, "qom-list", 8) == 0;
	struct json_object *args;
	size_t i;

	if (b->state != Q_SCAN)
		return;
	if (b->cancel) {
		setup_fail(b, -ECANCELED, "netbuffer setup cancelled by teardown");
		return;
	}
	if (rc < 0) {
		setup_fail(b, rc, "%s failed: %s", op->what, err);
		return;
	}
	/* Filters first (qom-list /objects), then chardevs they use. */
	for (i = 0; i < b->nnics; i++) {
		struct nic *n = &b->nics[i];

		if (objects && listed(ret, "name", n->id_filter))
			b->left[b->nleft++] = (struct leftover){ "object-del", n->id_filter, i };
		if (!objects && listed(ret, "label", n->id_out))
			b->left[b->nleft++] = (struct leftover){ "chardev-remove", n->id_out, i };
		if (!objects && listed(ret, "label", n->id_in))
			b->left[b->nleft++] = (struct leftover){ "chardev-remove", n->id_in, i };
	}
	if (!objects) {
		left_next(b);
		return;
	}
	args = NULL;
	rc = submit(b, "query-chardev", args, -1, on_scan_reply, 0, "query-chardev", NULL);
	if (rc < 0)
		setup_fail(b, rc, "query-chardev could not be sent: %s", strerror(-rc));
}

static void left_next(struct remus_nbqemu *b)
{
	struct leftover *l;
	char what[192];
	int rc;

	if (b->cancel) {
		setup_fail(b, -ECANCELED, "netbuffer setup cancelled by teardown");
		return;
	}
	if (b->left_next == b->nleft) {
		if (set_state(b, Q_SETUP, "no leftovers") < 0)
			return;
		setup_next(b);
		return;
	}
	l = &b->left[b->left_next++];
	snprintf(what, sizeof(what), "%s %s", l->cmd, l->id);
	remus_warn(LOG, "netdev '%s': removing %s, left by an earlier run that did not "
		   "tear down", b->nics[l->nic].netdev, l->id);
	rc = submit(b, l->cmd, obj_str(json_object_new_object(), "id", l->id), -1,
		    on_left_reply, l->nic, what, NULL);
	if (rc < 0)
		setup_fail(b, rc, "netdev '%s': %s could not be sent: %s",
			   b->nics[l->nic].netdev, what, strerror(-rc));
}

static void on_left_reply(struct remus_nbqemu *b, struct qop *op, int rc,
			  struct json_object *ret, const char *err)
{
	if (b->state != Q_SCAN)
		return;
	if (rc < 0) {
		setup_fail(b, rc, "netdev '%s': %s, left by an earlier run, could not be "
			   "removed: %s", b->nics[op->nic].netdev, op->what, err);
		return;
	}
	left_next(b);
}

/* ---- setup 3: each NIC's fds, chardevs and filter ---------------------- */

/* Issues the next setup command (n->step says which). */
static void setup_next(struct remus_nbqemu *b)
{
	struct json_object *args, *backend, *data, *addr;
	struct nic *n;
	char what[192];
	const char *cmd, *id;
	int rc, fd = -1;

	if (b->cancel) {
		setup_fail(b, -ECANCELED, "netbuffer setup cancelled by teardown");
		return;
	}
	while (b->step_nic < b->nnics && b->nics[b->step_nic].step == STEP_DONE)
		b->step_nic++;
	if (b->step_nic == b->nnics) {
		setup_ok(b);
		return;
	}
	n = &b->nics[b->step_nic];
	if (n->out_fd < 0) {
		rc = remus_nbqemu_nic_open(b, n);
		if (rc < 0) {
			setup_fail(b, rc, "netdev '%s': cannot create its sockets: %s",
				   n->netdev, strerror(-rc));
			return;
		}
	}
	args = json_object_new_object();
	switch (n->step) {
	case STEP_GETFD_OUT:
	case STEP_GETFD_IN:
		id = n->step == STEP_GETFD_OUT ? n->id_out : n->id_in;
		fd = n->step == STEP_GETFD_OUT ? n->qemu_out_fd : n->qemu_in_fd;
		cmd = "getfd";
		obj_str(args, "fdname", id);
		break;
	case STEP_CHARDEV_OUT:
	case STEP_CHARDEV_IN:
		id = n->step == STEP_CHARDEV_OUT ? n->id_out : n->id_in;
		cmd = "chardev-add";
		/* {"id", "backend": {"type": "socket", "data": {"addr":
		 *  {"type": "fd", "data": {"str": FDNAME}}, "server": false}}} */
		addr = obj_str(json_object_new_object(), "type", "fd");
		json_object_object_add(addr, "data",
				       obj_str(json_object_new_object(), "str", id));
		data = json_object_new_object();
		json_object_object_add(data, "addr", addr);
		json_object_object_add(data, "server", json_object_new_boolean(0));
		backend = obj_str(json_object_new_object(), "type", "socket");
		json_object_object_add(backend, "data", data);
		obj_str(args, "id", id);
		json_object_object_add(args, "backend", backend);
		break;
	default:
		id = n->id_filter;
		cmd = "object-add";
		obj_str(args, "qom-type", "filter-redirector");
		obj_str(args, "id", n->id_filter);
		obj_str(args, "netdev", n->netdev);
		obj_str(args, "queue", "rx");
		obj_str(args, "outdev", n->id_out);
		obj_str(args, "indev", n->id_in);
		json_object_object_add(args, "vnet_hdr_support", json_object_new_boolean(1));
		break;
	}
	snprintf(what, sizeof(what), "%s %s", cmd, id);
	rc = submit(b, cmd, args, fd, on_setup_reply, b->step_nic, what, NULL);
	/* The QMP client holds its own dup of QEMU's end until it is sent. */
	if (n->step == STEP_GETFD_OUT || n->step == STEP_GETFD_IN)
		remus_nbqemu_nic_gave_fd(n, n->step == STEP_GETFD_OUT);
	if (rc < 0)
		setup_fail(b, rc, "netdev '%s': %s could not be sent: %s", n->netdev, what,
			   strerror(-rc));
}

static void on_setup_reply(struct remus_nbqemu *b, struct qop *op, int rc,
			   struct json_object *ret, const char *err)
{
	struct nic *n = &b->nics[op->nic];

	if (b->state != Q_SETUP)
		return;
	if (rc < 0) {
		setup_fail(b, rc, "netdev '%s': %s failed: %s", n->netdev, op->what, err);
		return;
	}
	/* Record what exists now in QEMU, for teardown. */
	switch (n->step) {
	case STEP_GETFD_OUT:
		n->fd_out_passed = true;
		break;
	case STEP_GETFD_IN:
		n->fd_in_passed = true;
		break;
	case STEP_CHARDEV_OUT:
		n->chr_out_added = true;
		n->fd_out_passed = false; /* the chardev took the fd */
		break;
	case STEP_CHARDEV_IN:
		n->chr_in_added = true;
		n->fd_in_passed = false;
		break;
	case STEP_FILTER:
		n->filter_added = true;
		break;
	}
	n->step++;
	setup_next(b);
}

static void setup_ok(struct remus_nbqemu *b)
{
	remus_nbqemu_done_cb *sd = b->setup_done;

	if (set_state(b, Q_READY, "every filter added") < 0)
		return;
	b->setup_done = NULL;
	remus_info(LOG, "holding the output of %zu netdev(s) (first: '%s')", b->nnics,
		   b->nics[0].netdev);
	sd(b->setup_opaque, 0, NULL);
}

static void setup_fail(struct remus_nbqemu *b, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->setup_msg, sizeof(b->setup_msg), fmt, ap);
	va_end(ap);
	b->setup_rc = rc;
	if (rc != -ECANCELED)
		remus_err(LOG, "%s; removing what was added", b->setup_msg);
	if (!b->cancel)
		b->td_release = true; /* a failed setup loses no output */
	teardown_begin(b);
}

/* ---- teardown (also setup's rollback) ---------------------------------- */

void remus_nbqemu_teardown(struct remus_nbqemu *b, bool release,
			   remus_nbqemu_done_cb *done, void *opaque)
{
	b->td_done = done;
	b->td_opaque = opaque;
	switch (b->state) {
	case Q_NEW:
	case Q_DONE:
		if (b->state == Q_NEW && set_state(b, Q_DONE, "teardown before setup") < 0)
			return;
		b->td_done = NULL;
		done(opaque, 0, NULL);
		return;
	case Q_DISCOVER:
	case Q_SCAN:
	case Q_SETUP:
		/* A command is in flight; its reply cancels setup and rolls
		 * back with this @release. */
		b->td_release = release;
		b->cancel = true;
		return;
	case Q_TEARDOWN:
		/* Rolling back a failed setup already; it ends with both
		 * callbacks.  Honour a drop request for what is still held. */
		if (!release) {
			b->td_release = false;
			remus_nbq_set_mode(b->q, REMUS_NBQ_DROP, remus_now_ns());
		}
		return;
	case Q_READY:
		b->td_release = release;
		teardown_begin(b);
		return;
	}
}

static void teardown_begin(struct remus_nbqemu *b)
{
	if (set_state(b, Q_TEARDOWN, b->setup_rc ? "setup rolled back" : "teardown") < 0)
		return;
	remus_nbq_set_mode(b->q, b->td_release ? REMUS_NBQ_PASS : REMUS_NBQ_DROP,
			   remus_now_ns());
	teardown_next(b);
}

/* One step of teardown per call; replies and the flush timer call it
 * again.  Steps are derived from what still exists, so a failed step is
 * simply not retried. */
static void teardown_next(struct remus_nbqemu *b)
{
	struct json_object *args;
	char what[192];
	size_t i, pending;
	int rc;

	for (;;) {
		struct nic *n = NULL;
		const char *cmd = NULL;

		/* 1. Stop diverting, filter by filter. */
		for (i = 0; i < b->nnics && !cmd; i++) {
			n = &b->nics[i];
			if (n->filter_added && !n->filter_off) {
				n->filter_off = true;
				cmd = "qom-set";
				args = json_object_new_object();
				obj_str(args, "property", "status");
				obj_str(args, "value", "off");
				snprintf(what, sizeof(what), "/objects/%s", n->id_filter);
				obj_str(args, "path", what);
				snprintf(what, sizeof(what), "qom-set %s status=off", n->id_filter);
			}
		}
		/* 2. Every diverted frame is in our sockets: pass it on (or
		 * drop it) and wait until QEMU has read what we wrote. */
		if (!cmd && !b->td_flushing) {
			b->td_flushing = true;
			b->td_flush_deadline_ms = remus_now_ms() + FLUSH_TIMEOUT_MS;
		}
		if (!cmd && b->td_flush_deadline_ms) {
			pending = remus_nbqemu_flush_pending(b);
			if (pending > 0 && remus_now_ms() < b->td_flush_deadline_ms) {
				remus_timer_arm(&b->td_timer, FLUSH_POLL_MS);
				return;
			}
			if (pending > 0)
				remus_warn(LOG, "%zu released bytes not taken by QEMU within "
					   "%u ms; they are lost", pending, FLUSH_TIMEOUT_MS);
			b->td_flush_deadline_ms = 0;
			/* QEMU closes its ends below; an EOF then is expected. */
			for (i = 0; i < b->nnics; i++)
				remus_nbqemu_nic_stop_reading(b, &b->nics[i]);
		}
		/* 3. Remove objects, then the chardevs they used, then fds
		 * QEMU got but never consumed. */
		for (i = 0; i < b->nnics && !cmd; i++) {
			n = &b->nics[i];
			args = json_object_new_object();
			if (n->filter_added) {
				n->filter_added = false;
				cmd = "object-del";
				obj_str(args, "id", n->id_filter);
				snprintf(what, sizeof(what), "object-del %s", n->id_filter);
			} else if (n->chr_out_added || n->chr_in_added) {
				const char *id = n->chr_out_added ? n->id_out : n->id_in;

				*(n->chr_out_added ? &n->chr_out_added : &n->chr_in_added) = false;
				cmd = "chardev-remove";
				obj_str(args, "id", id);
				snprintf(what, sizeof(what), "chardev-remove %s", id);
			} else if (n->fd_out_passed || n->fd_in_passed) {
				const char *id = n->fd_out_passed ? n->id_out : n->id_in;

				*(n->fd_out_passed ? &n->fd_out_passed : &n->fd_in_passed) = false;
				cmd = "closefd";
				obj_str(args, "fdname", id);
				snprintf(what, sizeof(what), "closefd %s", id);
			} else {
				json_object_put(args);
			}
		}
		if (!cmd) {
			td_finish(b);
			return;
		}
		rc = submit(b, cmd, args, -1, on_td_reply, (size_t)(n - b->nics), what, NULL);
		if (rc == 0)
			return;
		if (strcmp(cmd, "closefd") != 0)
			td_error(b, rc, "netdev '%s': %s could not be sent: %s (QEMU may still "
				 "hold it; remove it by hand)", n->netdev, what, strerror(-rc));
	}
}

static void on_flush_timer(struct remus_loop *loop, void *opaque)
{
	struct remus_nbqemu *b = opaque;

	teardown_next(b);
}

static void on_td_reply(struct remus_nbqemu *b, struct qop *op, int rc,
			struct json_object *ret, const char *err)
{
	struct nic *n = &b->nics[op->nic];

	if (rc < 0 && strncmp(op->what, "closefd", 7) != 0)
		td_error(b, rc, "netdev '%s': %s failed: %s", n->netdev, op->what, err);
	teardown_next(b);
}

/* Records the first teardown error; every one is logged. */
static void td_error(struct remus_nbqemu *b, int rc, const char *fmt, ...)
{
	char msg[REMUS_NBQEMU_MSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	remus_err(LOG, "%s", msg);
	if (b->td_rc == 0) {
		b->td_rc = rc;
		snprintf(b->td_msg, sizeof(b->td_msg), "%s", msg);
	}
}

static void td_finish(struct remus_nbqemu *b)
{
	remus_nbqemu_done_cb *sd = b->setup_done, *td = b->td_done;
	void *so = b->setup_opaque, *to = b->td_opaque;
	char smsg[2 * REMUS_NBQEMU_MSG_LEN + 64], tmsg[REMUS_NBQEMU_MSG_LEN];
	int src = b->setup_rc, trc = b->td_rc;
	size_t i;

	for (i = 0; i < b->nnics; i++)
		remus_nbqemu_nic_close(b, &b->nics[i]);
	/* Even after an illegal change both callbacks run: nothing else would. */
	set_state(b, Q_DONE, "teardown done");
	b->setup_done = NULL;
	b->td_done = NULL;
	if (b->td_rc)
		snprintf(smsg, sizeof(smsg), "%s; removing what was added also failed: %s",
			 b->setup_msg, b->td_msg);
	else
		snprintf(smsg, sizeof(smsg), "%s; everything added was removed", b->setup_msg);
	snprintf(tmsg, sizeof(tmsg), "%s", b->td_msg);
	/* Neither callback frees @b (qemu.h), so both can run. */
	if (sd)
		sd(so, src, smsg);
	if (td)
		td(to, trc, trc ? tmsg : NULL);
}
