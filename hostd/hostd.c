// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The host daemon (see hostd.h): the registry of protections, their
 * children, and the asynchronous chains that change them.
 *
 * Every chain (protect, create-standby, status, failover, unprotect,
 * re-protection) is an struct op that names its domain by name and
 * generation, never by pointer: libvirt, a peer or a child answers
 * later, and by then the domain may be gone or protected anew.  A chain
 * whose domain changed drops its result, but still answers whoever
 * waits for it (a remusctl, a peer).  Every op is bounded (peer calls
 * and child questions time out, libvirt calls end), so every request
 * is answered.
 *
 * Host states of a domain (its child adds its own in status):
 *
 *   starting --> running <--> restarting (child died: backoff 1 s..30 s)
 *      |            |  \--> takeover (standby went active) --> reprotecting --> running
 *      v            v
 *    (gone)      stopping (unprotect, destroy-standby, planned failover) --> (gone)
 *                   ^
 *   running --> releasing (unprotect: the engine stops, the disks are
 *                          copied back to files) --> stopping
 *                   \--> failed (the copy failed: the child still serves
 *                          the disks, unprotect may be asked again)
 *   failed: the domain does not run here (a host that restarted), or a
 *   step failed; status says why and what to do.
 *   handed-over: a planned failover moved the domain to its standby's
 *   host; the record stays, so that host's re-protection may make this
 *   host its standby over the domain's definition here.
 */
#include "hostd/hostd.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/child.h"
#include "common/ctl.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/prom.h"
#include "hostd/ask.h"
#include "hostd/authz.h"
#include "hostd/fence.h"
#include "hostd/peerlink.h"
#include "hostd/progress.h"
#include "hostd/request.h"
#include "hostd/words.h"
#include "tls/tls.h"

#define LOG "hostd"
#define ASK_TIMEOUT_MS 3000
#define WATCH_MS 1000
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define STOP_CHILD_MS 10000
#define STANDBY_LOST_MS 10000
/* unprotect waits this long for the engine to stop before it copies the
 * disks back (it stops within one checkpoint). */
#define ENGINE_STOP_MS 10000
#define ENGINE_POLL_MS 200
/* What the standby host may take for a create-standby, on top of the
 * peer timeout (cfg.create_standby_ms, 45 s): its child's NBD exports
 * (virtops_libvirt.c NBD_WAIT_MS, 15 s) and libvirt starting the paused
 * QEMU (libvirt itself waits up to 30 s for a new QEMU's monitor).  Under
 * TCG on a loaded host that is seconds, not the 10 s every other peer
 * request gets; the standby host drops a standby whose answer found its
 * asker gone. */
/* A standby asked to take over answers once its child says active (or
 * failed), at most this later. */
#define TAKEOVER_MS 30000
/* set-interval waits this long for the standby's host to record the new
 * settings before it answers remusctl (whose own limit is 10 s) without
 * that; the watcher then sends them again every SETTINGS_RETRY_MS. */
#define SETTINGS_SYNC_MS 5000
#define SETTINGS_RETRY_MS 30000

enum dom_state { D_STARTING, D_RUNNING, D_RESTARTING, D_TAKEOVER, D_REPROTECTING,
		 D_STOPPING, D_FAILED, D_RELEASING, D_HANDED_OVER };

static const char *const dom_state_names[] = {
	"starting", "running", "restarting", "takeover", "reprotecting", "stopping", "failed",
	"releasing", "handed-over",
};

/* A disk's block copy while one runs (protect: onto the export;
 * unprotect: back to a file). */
struct disk_copy {
	const char *what;               /* "moving", "releasing"; NULL: none */
	struct remus_hostd_copy c;
};

struct dom {
	struct remus_hostd *h;
	struct remus_hostd_dstate st;
	enum dom_state state;
	uint64_t gen;
	char last_failure[512];
	unsigned failures;
	struct remus_child *child;
	uint64_t child_started_ms;
	unsigned restarts;
	unsigned backoff_ms;
	struct remus_timer timer;       /* restart, re-protection, stop deadline */
	void *proxy;
	char ctl_path[REMUS_HOSTD_PATH_MAX], qmp_path[REMUS_HOSTD_PATH_MAX];
	char in_path[REMUS_HOSTD_PATH_MAX];
	bool watching;                  /* a status question of the watcher is out */
	struct json_object *last_status; /* the child's last answer to the watcher, or NULL */
	unsigned takeovers;             /* the standby here took over */
	uint64_t unprotected_since;     /* primary child reports no standby since (ms) */
	struct op *stop_op;             /* waits for the child's exit */
	struct op *create_op;           /* create-standby in progress (standby host) */
	struct disk_copy copies[REMUS_HOSTD_MAX_DISKS];
	struct op *takeover_op;         /* a failover answered once the child is active */
	uint64_t takeover_deadline;     /* remus_now_ms() */
	unsigned images_made;           /* bit i: this create-standby made disk i's image */
	/* The standby's copy of the settings (primary; see "the standby's
	 * copy of the settings" below): its host may hold other values than
	 * the record's interval_ms and pause_budget_ms. */
	bool settings_stale;
	bool settings_sending;          /* the watcher's resend is out */
	uint64_t settings_next_ms;      /* remus_now_ms() of its next resend */
	struct dom *next;
};

struct op;
typedef void op_stopped_fn(struct op *op, struct dom *d);

struct op {
	struct remus_hostd *h;
	char name[REMUS_HOSTD_DOMAIN_MAX];
	uint64_t gen;
	struct remus_ctl_request *req;            /* answered at the end, or NULL */
	struct remus_hostd_peer_reply *prep;      /* a peer's request, or NULL */
	struct remus_hostd_ask *ask;
	struct remus_hostd_peer_call *call;
	struct remus_hostd_request r;             /* protect's request */
	struct remus_hostd_peer_msg pm;           /* create-standby's request (xml owned) */
	char peer_id[REMUS_HOSTD_IDENTITY_MAX];   /* who asked (create-standby) */
	struct status_job *job;
	unsigned idx;
	uint64_t deadline_ms;                     /* unprotect: the engine's stop */
	struct remus_timer timer;                 /* unprotect: its next poll */
	bool recorded;                            /* create-standby over our own record */
	bool asked_again;                         /* protect: create-standby sent twice */
	/* create-standby (standby host): what it waits for now, since when it
	 * runs, and a timer that says so in the log while it takes long. */
	const char *phase;
	uint64_t started_ms;
	struct remus_timer watch;
	bool resend;                              /* set-interval: the watcher's resend */
	op_stopped_fn *after_stop;
	struct op *next;
};

struct status_job {
	struct remus_ctl_request *req;
	bool one;                 /* status of one domain: the object itself */
	unsigned remaining;
	struct json_object *list; /* array, one per domain in order */
};

struct remus_hostd {
	struct remus_loop *loop;
	struct remus_hostd_config cfg;
	const struct remus_hostd_virt_ops *ops;
	void *virt;
	struct remus_ctl *ctl;
	struct remus_hostd_peer_server *peer;
	uint16_t peer_port;
	struct remus_tls_creds *tls_server;       /* owned; NULL: insecure */
	struct remus_tls_creds *tls_client;       /* owned; NULL: insecure */
	struct remus_prom_http *metrics;
	char name[REMUS_HOSTD_HOST_MAX];
	char remusd[PATH_MAX];
	struct dom *doms;
	struct op *ops_list;
	uint64_t next_gen, next_id;
	struct remus_timer watch;
	bool stopping;
	void (*stop_done)(void *);
	void *stop_opaque;
	struct remus_timer stop_timer;
};

/* ---- small things --------------------------------------------------------- */

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *ok_answer(struct json_object *o)
{
	char *s;

	if (!o)
		o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "ok", json_object_new_boolean(true));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static void answer(struct remus_ctl_request **req, char *text)
{
	if (*req)
		remus_ctl_reply(*req, text);
	else
		free(text);
	*req = NULL;
}

static int code_of(const char *name)
{
	int c = name ? remus_hostd_code_parse(name) : -1;

	return c < 0 ? REMUS_HOSTD_E_INTERNAL : c;
}

static void peer_answer_error(struct remus_hostd_peer_reply **r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void peer_answer_error(struct remus_hostd_peer_reply **r, int code, const char *fmt, ...)
{
	struct remus_hostd_peer_msg a = { .ok = false, .code = code };
	va_list ap;

	if (!*r)
		return;
	va_start(ap, fmt);
	vsnprintf(a.error, sizeof(a.error), fmt, ap);
	va_end(ap);
	remus_hostd_peer_answer(*r, &a);
	*r = NULL;
}

/* False when the peer is gone and will never read it. */
static bool peer_answer_ok(struct remus_hostd_peer_reply **r, uint16_t repl_port)
{
	struct remus_hostd_peer_msg a = { .ok = true, .repl_port = repl_port };
	int rc;

	if (!*r)
		return true;
	rc = remus_hostd_peer_answer(*r, &a);
	*r = NULL;
	return rc == 0;
}

/* ---- domains and ops -------------------------------------------------------- */

static struct dom *dom_find(struct remus_hostd *h, const char *name)
{
	struct dom *d;

	for (d = h->doms; d; d = d->next)
		if (strcmp(d->st.domain, name) == 0)
			return d;
	return NULL;
}

static void on_dom_timer(struct remus_loop *loop, void *opaque);

/* RUN/DOMAIN.ctl, .qmp, .in and RUN/DOMAIN.TARGET.nbd are unix socket
 * paths (at most 107 bytes; a target is at most 31). */
static bool paths_fit(const struct remus_hostd *h, const char *name)
{
	return strlen(h->cfg.run_dir) + 1 + strlen(name) + 1 + 31 + 4 < REMUS_HOSTD_PATH_MAX;
}

static struct dom *dom_new(struct remus_hostd *h, const char *name)
{
	struct dom *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->h = h;
	d->gen = ++h->next_gen;
	snprintf(d->st.domain, sizeof(d->st.domain), "%s", name);
	snprintf(d->ctl_path, sizeof(d->ctl_path), "%s/%s.ctl", h->cfg.run_dir, name);
	snprintf(d->qmp_path, sizeof(d->qmp_path), "%s/%s.qmp", h->cfg.run_dir, name);
	snprintf(d->in_path, sizeof(d->in_path), "%s/%s.in", h->cfg.run_dir, name);
	d->backoff_ms = BACKOFF_MIN_MS;
	remus_timer_init(&d->timer, h->loop, on_dom_timer, d);
	d->next = h->doms;
	h->doms = d;
	return d;
}

static void op_free(struct op *op);

static void proxy_stop(struct dom *d)
{
	if (d->proxy && d->h->ops)
		d->h->ops->proxy_stop(d->h->virt, d->proxy);
	d->proxy = NULL;
}

static void dom_free(struct dom *d)
{
	struct dom **p;

	for (p = &d->h->doms; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	remus_timer_disarm(&d->timer);
	remus_child_free(d->child);
	proxy_stop(d);
	json_object_put(d->last_status);
	if (d->takeover_op)
		op_free(d->takeover_op);  /* answers: abandoned */
	free(d);
}

static void on_op_timer(struct remus_loop *loop, void *opaque);
static void on_op_watch(struct remus_loop *loop, void *opaque);
static void on_copy_progress(void *opaque, const char *target, uint64_t bytes, uint64_t total);
static void copies_begin(struct dom *d, const char *what);
static void copies_end(struct dom *d);

static struct op *op_new(struct remus_hostd *h, const char *name, uint64_t gen)
{
	struct op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->h = h;
	remus_timer_init(&op->timer, h->loop, on_op_timer, op);
	remus_timer_init(&op->watch, h->loop, on_op_watch, op);
	snprintf(op->name, sizeof(op->name), "%s", name ? name : "");
	op->gen = gen;
	op->next = h->ops_list;
	h->ops_list = op;
	return op;
}

static void op_free(struct op *op)
{
	struct op **p;

	for (p = &op->h->ops_list; *p; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			break;
		}
	remus_timer_disarm(&op->timer);
	remus_timer_disarm(&op->watch);
	answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_INTERNAL,
						  "%s: the operation was abandoned", op->name));
	peer_answer_error(&op->prep, REMUS_HOSTD_E_INTERNAL, "%s: the operation was abandoned",
			  op->name);
	remus_hostd_peer_msg_release(&op->pm);
	free(op);
}

/* The op's domain if it is still the one the op started on. */
static struct dom *op_dom(struct op *op)
{
	struct dom *d = dom_find(op->h, op->name);

	return d && d->gen == op->gen ? d : NULL;
}

static void dom_fail(struct dom *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void dom_fail(struct dom *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->last_failure, sizeof(d->last_failure), fmt, ap);
	va_end(ap);
	d->failures++;
	remus_warn(LOG, "%s: %s", d->st.domain, d->last_failure);
}

static int dom_save(struct dom *d)
{
	char err[1024];
	int rc = remus_hostd_state_save(d->h->cfg.state_dir, &d->st, err, sizeof(err));

	if (rc < 0)
		remus_err(LOG, "%s: %s", d->st.domain, err);
	return rc;
}

static void dom_unrecord(struct dom *d)
{
	char err[1024];

	if (remus_hostd_state_remove(d->h->cfg.state_dir, d->st.domain, err, sizeof(err)) < 0)
		remus_err(LOG, "%s: %s", d->st.domain, err);
}

/* ---- children --------------------------------------------------------------- */

static void on_child_exit(void *opaque, int status);

/* The child's command line from the record. */
static int child_spawn(struct dom *d)
{
	struct remus_hostd *h = d->h;
	char interval[16], budget[16], hb[16], miss[16], pmiss[16], peer[300], listen[16];
	char disk[REMUS_HOSTD_MAX_DISKS][1400];
	char env_peer[REMUS_HOSTD_HOST_MAX + 16], env_dom[300];
	const char *env[] = { env_peer, env_dom, NULL };
	/* 64 fit every option with all the disks; room for more. */
	const char *argv[80];
	int n = 0, rc;
	unsigned i;

	snprintf(interval, sizeof(interval), "%u", d->st.interval_ms);
	snprintf(budget, sizeof(budget), "%u", d->st.pause_budget_ms);
	snprintf(hb, sizeof(hb), "%u", h->cfg.heartbeat_ms);
	snprintf(miss, sizeof(miss), "%u", h->cfg.heartbeat_miss);
	snprintf(pmiss, sizeof(pmiss), "%u", h->cfg.primary_miss);
	/* The fence command learns which host to power off from these (the
	 * child's hooks inherit its environment). */
	snprintf(env_peer, sizeof(env_peer), "REMUS_PEER=%s", d->st.peer);
	snprintf(env_dom, sizeof(env_dom), "REMUS_DOMAIN=%s", d->st.domain);
	argv[n++] = h->remusd;
	if (d->st.role == REMUS_HOSTD_ROLE_PRIMARY) {
		snprintf(peer, sizeof(peer), strchr(d->st.peer, ':') ? "[%s]:%u" : "%s:%u",
			 d->st.peer, d->st.repl_port);
		argv[n++] = "primary";
		argv[n++] = "--standby";
		argv[n++] = peer;
		argv[n++] = "--interval";
		argv[n++] = interval;
		argv[n++] = "--pause-budget";
		argv[n++] = budget;
		argv[n++] = "--netbuffer";
		argv[n++] = remus_hostd_netbuffer_name(d->st.netbuffer);
		argv[n++] = "--qmp-wait";
		argv[n++] = "0";
	} else {
		snprintf(listen, sizeof(listen), "%u", d->st.repl_port);
		argv[n++] = "standby";
		argv[n++] = "--incoming";
		argv[n++] = d->in_path;
		argv[n++] = "--listen";
		argv[n++] = listen;
		/* For its engine once it took over (protect HOST:PORT);
		 * settings_push gives it any later change. */
		argv[n++] = "--interval";
		argv[n++] = interval;
		argv[n++] = "--pause-budget";
		argv[n++] = budget;
		/* A standby cannot tell a dead primary from a cut link or a
		 * stalled one: with a fence it powers the primary's host off
		 * first (docs/ARCHITECTURE.md, "Fencing a primary"). */
		if (*h->cfg.fence_command) {
			argv[n++] = "--fence";
			argv[n++] = h->cfg.fence_command;
		}
	}
	/* Both roles: a standby uses it once it protects in turn. */
	if (h->cfg.primary_miss) {
		argv[n++] = "--primary-miss";
		argv[n++] = pmiss;
	}
	/* The link's TLS (tls/tls.h), as the host is configured. */
	if (*h->cfg.tls_psk) {
		argv[n++] = "--tls-psk";
		argv[n++] = h->cfg.tls_psk;
	}
	if (*h->cfg.tls_x509_dir) {
		argv[n++] = "--tls-x509-dir";
		argv[n++] = h->cfg.tls_x509_dir;
		/* A standby takes only its owner as primary: the host that
		 * created it proved this DN on the peer port, and its primary
		 * child connects with the same client certificate.  Another
		 * host of the same CA is refused on the replication port too
		 * (authz.h refuses it on the peer port). */
		if (d->st.role == REMUS_HOSTD_ROLE_STANDBY && *d->st.owner) {
			argv[n++] = "--tls-peer-identity";
			argv[n++] = d->st.owner;
		}
	}
	if (h->cfg.insecure)
		argv[n++] = "--insecure";
	argv[n++] = "--qmp";
	argv[n++] = d->qmp_path;
	argv[n++] = "--ctl";
	argv[n++] = d->ctl_path;
	argv[n++] = "--name";
	argv[n++] = d->st.domain;
	argv[n++] = "--heartbeat";
	argv[n++] = hb;
	argv[n++] = "--miss";
	argv[n++] = miss;
	/* Both roles (a standby's engine once it protects in turn): engine
	 * v2 on this host's remusd ramfs where the domain's RAM is a shared
	 * file on it; the child finds out and says why not (status). */
	if (*h->cfg.ramfs_socket) {
		argv[n++] = "--ramfs";
		argv[n++] = h->cfg.ramfs_socket;
	}
	for (i = 0; i < d->st.ndisks; i++) {
		snprintf(disk[i], sizeof(disk[i]), "%s,image=%s/%s/%s.raw,socket=%s/%s.%s.nbd",
			 d->st.disks[i].target, h->cfg.state_dir, d->st.domain,
			 d->st.disks[i].target, h->cfg.run_dir, d->st.domain, d->st.disks[i].target);
		argv[n++] = "--disk";
		argv[n++] = disk[i];
	}
	argv[n] = NULL;
	rc = remus_child_spawn(h->loop, &(struct remus_child_opts){ .argv = argv, .env = env },
			       on_child_exit, d, &d->child);
	if (rc < 0) {
		dom_fail(d, "cannot start the %s child %s: %s", remus_hostd_role_name(d->st.role),
			 h->remusd, strerror(-rc));
		return rc;
	}
	d->child_started_ms = remus_now_ms();
	remus_info(LOG, "%s: %s child started (pid %d)", d->st.domain,
		   remus_hostd_role_name(d->st.role), (int)remus_child_pid(d->child));
	return 0;
}

static void stop_finished(struct dom *d);
static void stop_check(struct remus_hostd *h);
static void forget(struct op *op, struct dom *d);
static void on_destroyed_then_forget(void *opaque, int rc, const char *code, const char *msg);

static void on_dropped_standby_probed(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	if (d && d->state == D_FAILED) {
		if (rc < 0 && code && strcmp(code, "no-domain") == 0)
			forget(op, d);
		else
			dom_fail(d, "the standby domain is destroyed but still defined here (%s); "
				 "its record stays until %s protects it onto this host again",
				 rc < 0 ? msg : "it exists", d->st.peer);
	}
	op_free(op);
}

static void on_dropped_standby_destroyed(void *opaque, int rc, const char *code,
					 const char *msg)
{
	struct op *op = opaque;
	struct remus_hostd *h = op->h;
	struct dom *d = op_dom(op);

	(void)code;
	if (rc < 0)
		remus_warn(LOG, "%s: libvirt could not destroy it: %s", op->name, msg);
	if (!d || d->state != D_FAILED) {
		op_free(op);
		return;
	}
	if (h->ops->exists(h->virt, op->name, on_dropped_standby_probed, op) < 0) {
		forget(op, d);
		op_free(op);
	}
}

/* A standby whose child is gone (it died, or went with the last remusd
 * serve) took its QEMU's incoming stream with it (QEMU cannot load a
 * second one): the domain is destroyed, and its primary makes a new
 * standby (it notices within STANDBY_LOST_MS).  The record goes too,
 * unless libvirt still has a definition of the domain after the destroy
 * (the old primary's own, which a re-protection made this host the
 * standby over): then it stays (failed, no child), so that the primary's
 * create-standby finds that definition remusd's own (check_standby's
 * @recorded) instead of refusing it as never protected, as after a host
 * crash (on_recovered). */
static void standby_drop(struct dom *d)
{
	struct remus_hostd *h = d->h;
	struct op *op = op_new(h, d->st.domain, d->gen);

	remus_child_free(d->child);
	d->child = NULL;
	proxy_stop(d);
	d->state = D_FAILED;
	if (!op || h->ops->destroy(h->virt, op->name, on_dropped_standby_destroyed, op) < 0) {
		if (op)
			op_free(op);
		forget(NULL, d);
	}
}

static void on_child_exit(void *opaque, int status)
{
	struct dom *d = opaque;
	struct remus_hostd *h = d->h;
	char how[64];

	if (status >= 0 && WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
	else if (status >= 0 && WIFSIGNALED(status))
		snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "is gone (%s)", strerror(-status));
	remus_child_free(d->child);
	d->child = NULL;
	if (d->state == D_STOPPING) {
		remus_info(LOG, "%s: the %s child %s", d->st.domain,
			   remus_hostd_role_name(d->st.role), how);
		stop_finished(d);       /* may free @d */
		if (h->stopping)
			stop_check(h);
		return;
	}
	if (d->h->stopping) {
		remus_info(LOG, "%s: the %s child %s", d->st.domain,
			   remus_hostd_role_name(d->st.role), how);
		stop_check(d->h);
		return;
	}
	/* A standby child that dies while its standby is being created
	 * (it refused its options: TLS settings, a port in use...): the
	 * peer is told now rather than after its timeout, and the domain,
	 * once libvirt has made it, is destroyed (on_standby_created). */
	if (d->st.role == REMUS_HOSTD_ROLE_STANDBY && d->state == D_STARTING && d->create_op) {
		dom_fail(d, "the standby child %s at start; its message is in remusd serve's log "
			 "on %s (TLS settings? tls_psk, tls_x509_dir or insecure)", how, h->name);
		peer_answer_error(&d->create_op->prep, REMUS_HOSTD_E_INTERNAL, "%s",
				  d->last_failure);
		d->state = D_FAILED;
		return;
	}
	/* A standby child takes its QEMU's incoming migration with it (QEMU
	 * cannot load a second stream): the standby domain is destroyed and
	 * forgotten, and its primary makes a new one (it notices within
	 * STANDBY_LOST_MS). */
	if (d->st.role == REMUS_HOSTD_ROLE_STANDBY && d->state == D_RUNNING) {
		dom_fail(d, "the standby child %s; dropping this standby, its primary on %s makes "
			 "a new one", how, d->st.peer);
		standby_drop(d);
		return;
	}
	/* A child that ran a minute was fine: start the backoff again. */
	if (remus_now_ms() - d->child_started_ms > 60000)
		d->backoff_ms = BACKOFF_MIN_MS;
	dom_fail(d, "the %s child %s; restarting it in %u ms", remus_hostd_role_name(d->st.role),
		 how, d->backoff_ms);
	d->restarts++;
	d->state = D_RESTARTING;
	remus_timer_arm(&d->timer, d->backoff_ms);
	d->backoff_ms = d->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d->backoff_ms * 2;
}

/* Stops the child (SIGTERM, SIGKILL after STOP_CHILD_MS); @op's
 * after_stop runs once it is gone (at once when there is none). */
static void child_stop(struct dom *d, struct op *op, op_stopped_fn *after)
{
	d->state = D_STOPPING;
	op->after_stop = after;
	d->stop_op = op;
	if (!d->child) {
		stop_finished(d);
		return;
	}
	kill(remus_child_pid(d->child), SIGTERM);
	remus_timer_arm(&d->timer, STOP_CHILD_MS);
}

static void stop_finished(struct dom *d)
{
	struct op *op = d->stop_op;

	remus_timer_disarm(&d->timer);
	d->stop_op = NULL;
	if (op && op->after_stop)
		op->after_stop(op, d);
}

static void reprotect_try(struct dom *d);

static void on_dom_timer(struct remus_loop *loop, void *opaque)
{
	struct dom *d = opaque;

	switch (d->state) {
	case D_RESTARTING:
		if (child_spawn(d) == 0) {
			d->state = D_RUNNING;
		} else {
			remus_timer_arm(&d->timer, d->backoff_ms);
			d->backoff_ms = d->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
					: d->backoff_ms * 2;
		}
		return;
	case D_STOPPING:
		/* The child ignored SIGTERM. */
		remus_warn(LOG, "%s: the child did not stop in %u s; killing it", d->st.domain,
			   STOP_CHILD_MS / 1000);
		remus_child_free(d->child);
		d->child = NULL;
		stop_finished(d);
		return;
	case D_REPROTECTING:
		reprotect_try(d);
		return;
	default:
		return;
	}
}

/* ---- status ------------------------------------------------------------------ */

/* The state word (hostd/words.h, remusctl(8)) for what the host knows
 * when the child does not say: before its first answer, while it is
 * restarted, during a takeover and until re-protection. */
static enum remus_hostd_word user_state(const struct dom *d)
{
	static const enum remus_hostd_word words[] = {
		[D_STARTING] = REMUS_HOSTD_WORD_STARTING, [D_RUNNING] = REMUS_HOSTD_WORD_STARTING,
		[D_RESTARTING] = REMUS_HOSTD_WORD_FAILED, [D_TAKEOVER] = REMUS_HOSTD_WORD_FAILOVER,
		[D_REPROTECTING] = REMUS_HOSTD_WORD_UNPROTECTED,
		[D_STOPPING] = REMUS_HOSTD_WORD_STOPPED, [D_FAILED] = REMUS_HOSTD_WORD_FAILED,
		[D_RELEASING] = REMUS_HOSTD_WORD_RELEASING,
		[D_HANDED_OVER] = REMUS_HOSTD_WORD_HANDED_OVER,
	};

	if (d->st.role == REMUS_HOSTD_ROLE_STANDBY && d->state == D_RUNNING)
		return REMUS_HOSTD_WORD_WAITING;
	return words[d->state];
}

/* A child's status's "protected" flag for remus_hostd_word_of_child:
 * 1, 0, or -1 when @status (borrowed) has none. */
static int child_committed(struct json_object *status)
{
	struct json_object *p;

	if (!status || !json_object_object_get_ex(status, "protected", &p) ||
	    !json_object_is_type(p, json_type_boolean))
		return -1;
	return json_object_get_boolean(p) ? 1 : 0;
}

/* The state word list, status (JSON and text) and the metrics all show
 * (hostd/words.h): while the child runs, its own mapped (the watcher's
 * last answer, at most WATCH_MS old; status then puts the fresh one over
 * it, mapped the same: merge_child), otherwise the host's. */
static const char *shown_state(const struct dom *d)
{
	struct json_object *st = d->last_status && d->state == D_RUNNING && d->child ?
		json_object_object_get(d->last_status, "state") : NULL;

	if (!st || !json_object_is_type(st, json_type_string))
		return remus_hostd_word_name(user_state(d));
	return remus_hostd_word_name(remus_hostd_word_of_child(json_object_get_string(st),
							       child_committed(d->last_status)));
}

/* The host's view of @d (owned). */
static struct json_object *dom_view(const struct dom *d, bool full)
{
	struct json_object *o = json_object_new_object(), *disks;
	char peer[300];
	unsigned i;

	if (!o)
		return NULL;
	snprintf(peer, sizeof(peer), strchr(d->st.peer, ':') ? "[%s]:%u" : "%s:%u", d->st.peer,
		 d->st.peer_port);
	json_object_object_add(o, "domain", json_object_new_string(d->st.domain));
	json_object_object_add(o, "role", json_object_new_string(remus_hostd_role_name(d->st.role)));
	json_object_object_add(o, "state", json_object_new_string(shown_state(d)));
	json_object_object_add(o, "peer", d->st.peer[0] ? json_object_new_string(peer) : NULL);
	/* remusctl(8): seconds since the epoch */
	json_object_object_add(o, "since", d->st.since_ms ?
			       json_object_new_int64((int64_t)(d->st.since_ms / 1000)) : NULL);
	/* remusctl(8): which engine the primary child runs (the watcher's
	 * last answer; status puts the fresh one over it), null without one */
	json_object_object_add(o, "engine", d->last_status && d->state == D_RUNNING && d->child &&
			       json_object_object_get(d->last_status, "engine") ?
			       json_object_get(json_object_object_get(d->last_status, "engine"))
			       : NULL);
	if (!full)
		return o;
	json_object_object_add(o, "uuid", d->st.uuid[0] ? json_object_new_string(d->st.uuid) : NULL);
	json_object_object_add(o, "host_state", json_object_new_string(dom_state_names[d->state]));
	json_object_object_add(o, "interval_ms", json_object_new_int64(d->st.interval_ms));
	json_object_object_add(o, "pause_budget_ms", json_object_new_int64(d->st.pause_budget_ms));
	json_object_object_add(o, "netbuffer",
			       json_object_new_string(remus_hostd_netbuffer_name(d->st.netbuffer)));
	json_object_object_add(o, "reprotect",
			       json_object_new_string(remus_hostd_reprotect_name(d->st.reprotect)));
	json_object_object_add(o, "repl_port", json_object_new_int(d->st.repl_port));
	json_object_object_add(o, "child_pid", d->child ?
			       json_object_new_int(remus_child_pid(d->child)) : NULL);
	json_object_object_add(o, "child_restarts", json_object_new_int64(d->restarts));
	json_object_object_add(o, "failures", json_object_new_int64(d->failures));
	json_object_object_add(o, "last_failure", d->last_failure[0] ?
			       json_object_new_string(d->last_failure) : NULL);
	disks = json_object_new_array();
	for (i = 0; disks && i < d->st.ndisks; i++) {
		const struct disk_copy *c = &d->copies[i];
		struct json_object *x = json_object_new_object();
		struct json_object *p = c->what ? remus_hostd_copy_json(&c->c) : NULL;

		if (!x) {
			json_object_put(p);
			break;
		}
		json_object_object_add(x, "target", json_object_new_string(d->st.disks[i].target));
		json_object_object_add(x, "format", json_object_new_string(d->st.disks[i].format));
		json_object_object_add(x, "state", json_object_new_string(
			c->what ? c->what : d->st.role == REMUS_HOSTD_ROLE_STANDBY ? "standby"
			: "replicated"));
		/* remusctl(8): the numbers of its copy while one runs, else the
		 * size and nulls. */
		json_object_object_add(x, "bytes", p ? json_object_get(
			json_object_object_get(p, "bytes")) : NULL);
		json_object_object_add(x, "total", p ? json_object_get(
			json_object_object_get(p, "total")) :
			json_object_new_int64((int64_t)d->st.disks[i].size));
		for (const char *const *k = (const char *const[]){ "percent", "rate_bps", "eta_s",
								  NULL }; *k; k++)
			json_object_object_add(x, *k, p ? json_object_get(json_object_object_get(p, *k))
					       : NULL);
		json_object_put(p);
		json_object_array_add(disks, x);
	}
	json_object_object_add(o, "disks", disks);
	/* remusctl(8)'s keys are always there: null until the child says. */
	json_object_object_add(o, "protected", json_object_new_boolean(false));
	for (const char *const *k = (const char *const[]){ "epoch", "pause_p50_ms", "pause_p99_ms",
		"commit_p50_ms", "lag_ms", "heartbeat_age_ms", "held_frames", "initial_sync",
		"engine_reason", "engine_decided", "v2_checkpoints", NULL };
	     *k; k++)
		json_object_object_add(o, *k, NULL);
	return o;
}

/* The child's keys that status shows at the top (the rest stay under
 * "child"). */
static const char *const child_keys[] = {
	"state", "epoch", "interval_ms", "pause_budget_ms", "pause_p50_ms", "pause_p99_ms",
	"commit_p50_ms", "lag_ms", "heartbeat_age_ms", "held_frames", "initial_sync",
	"protected", "last_failure", "engine", "engine_reason", "engine_decided", "v2_checkpoints",
	NULL,
};

static void merge_child(struct json_object *view, const char *answer, bool take_state)
{
	struct json_object *c = answer ? json_tokener_parse(answer) : NULL, *v;
	const char *const *k;

	if (!c || !json_object_is_type(c, json_type_object)) {
		json_object_put(c);
		return;
	}
	for (k = child_keys; *k; k++)
		if (json_object_object_get_ex(c, *k, &v) && !json_object_is_type(v, json_type_null)) {
			if (strcmp(*k, "state") == 0) {
				/* the same word as list's (child.state keeps the
				 * child's own) */
				if (take_state)
					json_object_object_add(view, *k, json_object_new_string(
						remus_hostd_word_name(remus_hostd_word_of_child(
							json_object_get_string(v), child_committed(c)))));
				continue;
			}
			if (strcmp(*k, "initial_sync") == 0) {
				/* remusctl(8)'s keys; the engine's own under child */
				json_object_object_add(view, *k, remus_hostd_sync_json(v));
				continue;
			}
			if (strcmp(*k, "last_failure") == 0 &&
			    json_object_object_get_ex(view, "last_failure", NULL) &&
			    !json_object_is_type(json_object_object_get(view, "last_failure"),
						 json_type_null))
				continue;
			json_object_object_add(view, *k, json_object_get(v));
		}
	/* A standby protects once it holds a committed checkpoint and
	 * receives the next ones (the primary's child says it itself). */
	if (!json_object_object_get_ex(c, "protected", NULL) &&
	    json_object_object_get_ex(c, "state", &v) && take_state &&
	    strcmp(json_object_get_string(v), "receiving") == 0 &&
	    json_object_object_get_ex(c, "epochs_committed", &v) && json_object_get_int64(v) > 0)
		json_object_object_add(view, "protected", json_object_new_boolean(true));
	json_object_object_add(view, "child", c);
}

static void status_finish(struct status_job *job)
{
	struct json_object *o;

	if (job->one) {
		o = json_object_get(json_object_array_get_idx(job->list, 0));
	} else {
		o = json_object_new_object();
		if (o)
			json_object_object_add(o, "domains", json_object_get(job->list));
	}
	json_object_put(job->list);
	answer(&job->req, ok_answer(o));
	free(job);
}

static void on_status_answer(void *opaque, int rc, const char *text)
{
	struct op *op = opaque;
	struct status_job *job = op->job;
	struct json_object *view = json_object_array_get_idx(job->list, op->idx);

	op->ask = NULL;
	if (rc == 0) {
		struct dom *d = op_dom(op);

		merge_child(view, text, d && d->state == D_RUNNING);
	}
	else if (view)
		json_object_object_add(view, "child_error", json_object_new_string(strerror(-rc)));
	op->job = NULL;
	op_free(op);
	if (--job->remaining == 0)
		status_finish(job);
}

static void ctl_status(struct remus_hostd *h, struct remus_ctl_request *req,
		       const struct remus_hostd_request *r)
{
	struct status_job *job = calloc(1, sizeof(*job));
	struct dom *d;
	struct op *op;
	unsigned idx = 0;

	if (!job || !(job->list = json_object_new_array())) {
		free(job);
		remus_ctl_reply(req, NULL);
		return;
	}
	job->req = req;
	job->one = r->has_domain;
	if (r->has_domain && !dom_find(h, r->domain)) {
		json_object_put(job->list);
		free(job);
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NO_DOMAIN,
			"domain %s is not protected on this host; remusctl list shows what is",
			r->domain));
		return;
	}
	job->remaining = 1;    /* ours, dropped below */
	for (d = h->doms; d; d = d->next) {
		if (r->has_domain && strcmp(d->st.domain, r->domain) != 0)
			continue;
		json_object_array_add(job->list, dom_view(d, true));
		if (d->child && (op = op_new(h, d->st.domain, d->gen))) {
			op->job = job;
			op->idx = idx;
			job->remaining++;
			if (remus_hostd_ask(h->loop, d->ctl_path, "status", ASK_TIMEOUT_MS,
					    on_status_answer, op, &op->ask) < 0) {
				job->remaining--;
				op->job = NULL;
				op_free(op);
			}
		}
		idx++;
	}
	if (--job->remaining == 0)
		status_finish(job);
}

static void ctl_list(struct remus_hostd *h, struct remus_ctl_request *req)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct dom *d;

	for (d = h->doms; a && d; d = d->next)
		json_object_array_add(a, dom_view(d, false));
	if (o)
		json_object_object_add(o, "domains", a);
	else
		json_object_put(a);
	remus_ctl_reply(req, ok_answer(o));
}

/* ---- set-interval, and the standby's copy of the settings --------------------- */

/*
 * The standby's copy of the settings.  A takeover, planned or not, and
 * the re-protection after it run the domain with the settings of the
 * survivor's record, which the standby's host took from create-standby.
 * So set-interval on the primary is applied by its child, recorded here,
 * and sent to the standby's host too (peer set-interval, hostd/peer.h),
 * whose record follows.  remusctl set-interval is answered once that
 * host recorded it, or at most SETTINGS_SYNC_MS later without that: the
 * new interval runs and is recorded here all the same, the answer's
 * message (and the log) says that the standby's host does not have it
 * yet, and the watcher sends the record's settings there again every
 * SETTINGS_RETRY_MS until it answers (settings_stale).  A remusd serve
 * that starts again does not know whether its last send got through: it
 * sends the settings of every primary it resumes once more.  A
 * create-standby carries them too, so a re-protection brings the new
 * standby's record up to date by itself.  What remains: if the primary's
 * host dies before the standby's host ever recorded a change, the
 * survivor goes on with the value before it (status shows which).
 *
 * On the survivor, the child that took over starts its engine (its
 * protect HOST:PORT) with the options it was started with; the record's
 * settings are given to it right after (settings_push), so that the
 * engine runs with what the user last set, whatever the child's start.
 */

/* What a peer set-interval's answer leaves: NULL when the standby's host
 * holds @op's values (or has no standby of @d to hold them: its next
 * create-standby carries them), else why not (borrowed from @a or @err).
 * @d (may be NULL) is no longer stale when those values are the record's
 * (a later change is still to be sent). */
static const char *settings_outcome(struct op *op, struct dom *d, int rc,
				    const struct remus_hostd_peer_msg *a, const char *err)
{
	const char *why = rc < 0 ? err : a->ok || a->code == REMUS_HOSTD_E_NO_DOMAIN ? NULL
			  : a->error;

	if (!why && d && d->st.interval_ms == op->r.interval_ms &&
	    d->st.pause_budget_ms == op->r.pause_budget_ms)
		d->settings_stale = false;
	return why;
}

static void on_settings_answer(void *opaque, int rc, const struct remus_hostd_peer_msg *a,
			       const char *err)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op), *dn = dom_find(op->h, op->name);
	const char *why;
	char msg[1400];

	op->call = NULL;
	if (dn && op->resend)
		dn->settings_sending = false;
	why = settings_outcome(op, d, rc, a, err);
	if (why) {
		snprintf(msg, sizeof(msg), "the standby's host %s did not record interval %u ms, "
			 "pause budget %u ms (%s); they run and are recorded here, and remusd serve "
			 "sends them there again every %u s until it does (until then a failover "
			 "would go on with its older values)", d ? d->st.peer : "?", op->r.interval_ms,
			 op->r.pause_budget_ms, why, SETTINGS_RETRY_MS / 1000);
		remus_warn(LOG, "%s: %s", op->name, msg);
		if (d)
			d->settings_next_ms = remus_now_ms() + SETTINGS_RETRY_MS;
	} else if (d && rc == 0 && a->ok) {
		remus_info(LOG, "%s: the standby's host %s recorded interval %u ms, pause budget "
			   "%u ms", op->name, d->st.peer, op->r.interval_ms, op->r.pause_budget_ms);
	}
	if (op->req) {
		struct json_object *o = why ? json_object_new_object() : NULL;

		if (o)
			json_object_object_add(o, "message", json_object_new_string(msg));
		answer(&op->req, ok_answer(o));
	}
	op_free(op);
}

/* Sends @m (borrowed) to the peer of @d as this host, for @op: its
 * answer goes to @cb with @op, and op->call holds the call meanwhile. */
static int peer_call(struct op *op, struct dom *d, struct remus_hostd_peer_msg *m,
		     unsigned timeout_ms, remus_hostd_peer_call_cb *cb)
{
	struct remus_hostd *h = op->h;

	return remus_hostd_peer_call(h->loop, d->st.peer, d->st.peer_port, h->name, m, timeout_ms,
				     h->tls_client, cb, op, &op->call);
}

/* Sends the record's settings of @d (a primary) to its standby's host;
 * @op (taken) is answered and freed by on_settings_answer.  -errno if
 * the call could not start (@op is not freed then). */
static int settings_send(struct dom *d, struct op *op, unsigned timeout_ms)
{
	struct remus_hostd *h = d->h;
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST,
					  .req = REMUS_HOSTD_PEER_SET_INTERVAL };

	m.id = ++h->next_id;
	snprintf(m.domain, sizeof(m.domain), "%s", d->st.domain);
	m.options.interval_ms = op->r.interval_ms = d->st.interval_ms;
	m.options.pause_budget_ms = op->r.pause_budget_ms = d->st.pause_budget_ms;
	d->settings_stale = true;
	return peer_call(op, d, &m, timeout_ms, on_settings_answer);
}

/* The watcher's resend of settings the standby's host may not hold. */
static void settings_resend(struct dom *d)
{
	struct op *op;

	if (!d->settings_stale || d->settings_sending || d->state != D_RUNNING ||
	    d->st.role != REMUS_HOSTD_ROLE_PRIMARY || !d->st.peer[0] ||
	    remus_now_ms() < d->settings_next_ms)
		return;
	op = op_new(d->h, d->st.domain, d->gen);
	if (!op)
		return;
	op->resend = true;
	d->settings_sending = true;
	if (settings_send(d, op, d->h->cfg.peer_timeout_ms) < 0) {
		d->settings_sending = false;
		d->settings_next_ms = remus_now_ms() + SETTINGS_RETRY_MS;
		op_free(op);
	}
}

/* The standby's host: its primary's new settings, into the record. */
static void peer_set_interval(struct remus_hostd *h, struct remus_hostd_peer_reply *rep,
			      const struct remus_hostd_peer_msg *m, const char *from)
{
	struct dom *d = dom_find(h, m->domain);
	struct remus_hostd_peer_reply *r = rep;
	unsigned old = d ? d->st.interval_ms : 0;

	if (!d) {
		peer_answer_error(&r, REMUS_HOSTD_E_NO_DOMAIN, "%s has no standby of %s", h->name,
				  m->domain);
		return;
	}
	if (d->st.role != REMUS_HOSTD_ROLE_STANDBY) {
		peer_answer_error(&r, REMUS_HOSTD_E_EXISTS, "%s is the primary on %s, not a standby "
				  "(remusctl status %s there)", m->domain, h->name, m->domain);
		return;
	}
	d->st.interval_ms = m->options.interval_ms;
	d->st.pause_budget_ms = m->options.pause_budget_ms;
	if (dom_save(d) < 0) {
		peer_answer_error(&r, REMUS_HOSTD_E_INTERNAL, "%s cannot record the settings of %s "
				  "in %s; see its log", h->name, m->domain, h->cfg.state_dir);
		return;
	}
	remus_info(LOG, "%s: interval %u ms (was %u), pause budget %u ms, from its primary on %s",
		   d->st.domain, d->st.interval_ms, old, d->st.pause_budget_ms, from);
	peer_answer_ok(&r, 0);
}

/* The child's engine after protect HOST:PORT (the survivor's role
 * switch) gets the record's settings: set-interval, then
 * set-pause-budget (op->idx counts them).  A refusal is logged; the
 * engine then runs with its own, which status shows. */
static void on_settings_pushed(void *opaque, int rc, const char *text)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);
	struct json_object *o = rc == 0 ? json_tokener_parse(text) : NULL;
	bool ok = o && json_object_get_boolean(json_object_object_get(o, "ok"));
	char line[64];

	op->ask = NULL;
	if (d && !ok)
		remus_warn(LOG, "%s: its engine did not take the recorded %s (%s); remusctl "
			   "set-interval %s %u sets it again", d->st.domain,
			   op->idx == 0 ? "interval" : "pause budget", rc < 0 ? strerror(-rc) : text,
			   d->st.domain, d->st.interval_ms);
	json_object_put(o);
	if (d && op->idx++ == 0) {
		snprintf(line, sizeof(line), "set-pause-budget %u", d->st.pause_budget_ms);
		if (remus_hostd_ask(d->h->loop, d->ctl_path, line, ASK_TIMEOUT_MS,
				    on_settings_pushed, op, &op->ask) == 0)
			return;
	}
	op_free(op);
}

/* Starts that push; @op (taken) is freed at its end. */
static void settings_push(struct dom *d, struct op *op)
{
	char line[64];

	op->idx = 0;
	snprintf(line, sizeof(line), "set-interval %u", d->st.interval_ms);
	if (remus_hostd_ask(d->h->loop, d->ctl_path, line, ASK_TIMEOUT_MS, on_settings_pushed, op,
			    &op->ask) < 0)
		op_free(op);
}

static void on_relay_answer(void *opaque, int rc, const char *text)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);
	struct json_object *o;
	bool ok = false;

	op->ask = NULL;
	if (rc < 0) {
		answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_INTERNAL,
			"%s: its child does not answer (%s); see remusctl status %s", op->name,
			strerror(-rc), op->name));
		op_free(op);
		return;
	}
	o = json_tokener_parse(text);
	if (o && json_object_get_boolean(json_object_object_get(o, "ok")))
		ok = true;
	if (!ok) {
		answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_BAD_REQUEST, "%s: %s",
			op->name, o && json_object_object_get(o, "error")
			? json_object_get_string(json_object_object_get(o, "error")) : text));
		json_object_put(o);
		op_free(op);
		return;
	}
	json_object_put(o);
	if (!d) {
		answer(&op->req, ok_answer(NULL));
		op_free(op);
		return;
	}
	d->st.interval_ms = op->r.interval_ms;
	dom_save(d);
	/* Then the standby's host (above); answered from there. */
	if (settings_send(d, op, (d->h->cfg.peer_timeout_ms < SETTINGS_SYNC_MS ? d->h->cfg.peer_timeout_ms
				   : SETTINGS_SYNC_MS)) < 0) {
		d->settings_next_ms = remus_now_ms() + SETTINGS_RETRY_MS;
		answer(&op->req, ok_answer(NULL));
		op_free(op);
	}
}

static void ctl_set_interval(struct remus_hostd *h, struct remus_ctl_request *req,
			     const struct remus_hostd_request *r)
{
	struct dom *d = dom_find(h, r->domain);
	struct op *op;
	char line[64];

	if (!d) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NO_DOMAIN,
			"domain %s is not protected on this host; remusctl list shows what is",
			r->domain));
		return;
	}
	/* A primary without an engine now (its child restarts, or it took
	 * over and waits for its old host to come back): the record takes
	 * it, the next engine starts with it (child_spawn, settings_push),
	 * and the standby's host gets it once the domain runs protected. */
	if (d->st.role == REMUS_HOSTD_ROLE_PRIMARY &&
	    (d->state == D_RESTARTING || d->state == D_REPROTECTING)) {
		struct json_object *o;
		char msg[300];

		d->st.interval_ms = r->interval_ms;
		if (dom_save(d) < 0) {
			remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_INTERNAL,
				"domain %s: cannot record the interval in %s; see the log",
				r->domain, h->cfg.state_dir));
			return;
		}
		d->settings_stale = true;
		d->settings_next_ms = 0;
		snprintf(msg, sizeof(msg), "recorded; %s is %s here, its engine runs with it once "
			 "it is protected again", r->domain, dom_state_names[d->state]);
		remus_info(LOG, "%s: interval %u ms %s", r->domain, r->interval_ms, msg);
		o = json_object_new_object();
		if (o)
			json_object_object_add(o, "message", json_object_new_string(msg));
		remus_ctl_reply(req, ok_answer(o));
		return;
	}
	if (d->st.role != REMUS_HOSTD_ROLE_PRIMARY || !d->child) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING,
			"domain %s is the %s here (state %s): run set-interval on its primary "
			"host%s%s", r->domain, remus_hostd_role_name(d->st.role),
			dom_state_names[d->state], d->st.role == REMUS_HOSTD_ROLE_STANDBY ? ", " : "",
			d->st.role == REMUS_HOSTD_ROLE_STANDBY ? d->st.peer : ""));
		return;
	}
	op = op_new(h, d->st.domain, d->gen);
	if (!op) {
		remus_ctl_reply(req, NULL);
		return;
	}
	op->req = req;
	op->r = *r;
	snprintf(line, sizeof(line), "set-interval %u", r->interval_ms);
	if (remus_hostd_ask(h->loop, d->ctl_path, line, ASK_TIMEOUT_MS, on_relay_answer, op,
			    &op->ask) < 0)
		op_free(op);
}

/* ---- protect (primary host) -------------------------------------------------- */

static void protect_done(struct op *op, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Ends a protect that failed before the standby existed: the domain is
 * forgotten, nothing was recorded. */
static void protect_done(struct op *op, int code, const char *fmt, ...)
{
	struct dom *d = op_dom(op);
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	remus_warn(LOG, "%s: protect refused: %s", op->name, msg);
	answer(&op->req, remus_hostd_answer_error((enum remus_hostd_code)code, "%s", msg));
	if (d)
		dom_free(d);
	op_free(op);
}

/* The guest's disks are on the child's exports now (or there were
 * none): only now does the child get its QMP socket, so its first
 * migration never meets the block job (QEMU refuses one during the
 * other). */
static void start_proxy(struct dom *d)
{
	struct remus_hostd *h = d->h;
	int r = h->ops->proxy_start(h->virt, d->st.domain, d->qmp_path, &d->proxy);

	if (r < 0) {
		d->state = D_FAILED;
		dom_fail(d, "cannot serve the QMP proxy %s: %s; remusctl unprotect %s", d->qmp_path,
			 strerror(-r), d->st.domain);
		remus_child_free(d->child);
		d->child = NULL;
		return;
	}
	d->state = D_RUNNING;
}

static void on_disks_moved(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	if (d)
		copies_end(d);
	if (d && rc < 0) {
		/* Not replicated: not protected.  The disks moved before the
		 * failure went back to their files (virtops.h move_disks), so
		 * the child goes, unless one could not (-EBUSY): it runs on
		 * the child's export, which must stay.  unprotect cleans up. */
		d->state = D_FAILED;
		dom_fail(d, "cannot move the disks onto remusd's NBD exports: %s; remusctl "
			 "unprotect %s", msg, d->st.domain);
		if (rc != -EBUSY) {
			remus_child_free(d->child);
			d->child = NULL;
		}
	} else if (d) {
		remus_info(LOG, "%s: disks on the replicated exports", d->st.domain);
		start_proxy(d);
	}
	op_free(op);
}

static int make_images(struct remus_hostd *h, const struct remus_hostd_dstate *st,
		       unsigned *made, char *err, size_t errlen);

static void fill_nbd(const struct dom *d, struct remus_hostd_nbd *nbd)
{
	for (unsigned i = 0; i < d->st.ndisks; i++) {
		snprintf(nbd[i].target, sizeof(nbd[i].target), "%s", d->st.disks[i].target);
		snprintf(nbd[i].socket, sizeof(nbd[i].socket), "%s/%s.%s.nbd", d->h->cfg.run_dir,
			 d->st.domain, d->st.disks[i].target);
	}
}

static void on_create_standby_answer(void *opaque, int rc,
				     const struct remus_hostd_peer_msg *a, const char *err)
{
	struct op *op = opaque;
	struct remus_hostd *h = op->h;
	struct dom *d = op_dom(op);
	struct remus_hostd_nbd nbd[REMUS_HOSTD_MAX_DISKS];
	char why[1024];

	if (d && rc == 0)
		snprintf(d->st.owner, sizeof(d->st.owner), "%s",
			 remus_hostd_peer_call_identity(op->call));
	op->call = NULL;
	if (!d) {
		op_free(op);
		return;
	}
	if (rc == -ETIME && !op->asked_again) {
		/* It said hello, then nothing: its answer is late or was lost
		 * (seen a few times in CI, cause unknown; the standby host's
		 * log says which).  A create-standby replaces a standby record
		 * of the same domain (hostd/fence.h), so it is asked once more
		 * on a new connection, with what it was asked before. */
		remus_warn(LOG, "%s: %s; asking %s once more", d->st.domain, err, d->st.peer);
		op->asked_again = true;
		op->pm.id = ++h->next_id;
		if (peer_call(op, d, &op->pm, h->cfg.peer_timeout_ms + h->cfg.create_standby_ms,
			      on_create_standby_answer) == 0)
			return;
	}
	if (rc == -ETIME) {
		protect_done(op, REMUS_HOSTD_E_PEER_UNREACHABLE, "%s, twice", err);
		return;
	}
	if (rc < 0) {
		protect_done(op, REMUS_HOSTD_E_PEER_UNREACHABLE, "%s; start it there (systemctl "
			     "start remusd), or check the name and port", err);
		return;
	}
	if (!a->ok) {
		protect_done(op, a->code, "standby host %s: %s", d->st.peer, a->error);
		return;
	}
	d->st.repl_port = a->repl_port;
	d->st.since_ms = wall_ms();
	if (make_images(h, &d->st, NULL, why, sizeof(why)) < 0) {
		protect_done(op, REMUS_HOSTD_E_INTERNAL, "%s", why);
		return;
	}
	if (dom_save(d) < 0) {
		protect_done(op, REMUS_HOSTD_E_INTERNAL, "cannot record the protection in %s; "
			     "see the log", h->cfg.state_dir);
		return;
	}
	/* The child first: it serves the disks' exports, then waits (with
	 * no limit: --qmp-wait 0) for its QMP socket, which start_proxy()
	 * makes once the disks are on those exports, however long their
	 * copy takes; a copy that fails or stalls kills the child.  Export
	 * sockets a killed child left (a protect that failed) go first: the
	 * copy waits for the new child's, not for those. */
	fill_nbd(d, nbd);
	for (unsigned i = 0; i < d->st.ndisks; i++)
		unlink(nbd[i].socket);
	if (child_spawn(d) < 0) {
		dom_unrecord(d);
		protect_done(op, REMUS_HOSTD_E_INTERNAL, "%s", d->last_failure);
		return;
	}
	remus_info(LOG, "%s: protected towards %s:%u (standby's replication port %u)",
		   d->st.domain, d->st.peer, d->st.peer_port, d->st.repl_port);
	{
		struct json_object *o = json_object_new_object();

		if (o) {
			json_object_object_add(o, "domain", json_object_new_string(d->st.domain));
			json_object_object_add(o, "state", json_object_new_string("starting"));
			json_object_object_add(o, "standby", json_object_new_string(d->st.peer));
		}
		answer(&op->req, ok_answer(o));
	}
	if (!d->st.ndisks) {
		start_proxy(d);
		op_free(op);
		return;
	}
	fill_nbd(d, nbd);
	copies_begin(d, "moving");
	if (h->ops->move_disks(h->virt, d->st.domain, nbd, d->st.ndisks, on_copy_progress,
			       on_disks_moved, op) < 0)
		on_disks_moved(op, -ENOMEM, "internal", "cannot ask libvirt to move the disks");
}

/* create-standby to the peer of @d for the domain described by @info. */
static int send_create_standby(struct op *op, struct dom *d, struct remus_hostd_domain_info *info,
			       remus_hostd_peer_call_cb *cb)
{
	struct remus_hostd *h = op->h;
	struct remus_hostd_peer_msg *m = &op->pm;
	unsigned i;

	memset(m, 0, sizeof(*m));
	m->kind = REMUS_HOSTD_PEER_REQUEST;
	m->req = REMUS_HOSTD_PEER_CREATE_STANDBY;
	m->id = ++h->next_id;
	snprintf(m->domain, sizeof(m->domain), "%s", d->st.domain);
	snprintf(m->uuid, sizeof(m->uuid), "%s", d->st.uuid);
	m->xml = info->xml;
	info->xml = NULL;
	m->ndisks = d->st.ndisks;
	for (i = 0; i < d->st.ndisks; i++) {
		snprintf(m->disks[i].target, sizeof(m->disks[i].target), "%s", d->st.disks[i].target);
		snprintf(m->disks[i].format, sizeof(m->disks[i].format), "%s", d->st.disks[i].format);
		m->disks[i].size = d->st.disks[i].size;
	}
	m->options = (struct remus_hostd_peer_options){
		.interval_ms = d->st.interval_ms, .pause_budget_ms = d->st.pause_budget_ms,
		.heartbeat_ms = h->cfg.heartbeat_ms, .miss = h->cfg.heartbeat_miss,
		.netbuffer = d->st.netbuffer, .reprotect = d->st.reprotect };
	snprintf(m->primary, sizeof(m->primary), "%s", h->name);
	m->primary_port = h->peer_port;
	m->takeover = d->st.takeover;
	return peer_call(op, d, m, h->cfg.peer_timeout_ms + h->cfg.create_standby_ms, cb);
}

static void on_inspected(void *opaque, int rc, const char *code, const char *msg,
			 struct remus_hostd_domain_info *info)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);
	unsigned i;

	if (!d) {
		op_free(op);
		return;
	}
	if (rc < 0) {
		protect_done(op, code_of(code), "%s", msg);
		return;
	}
	snprintf(d->st.uuid, sizeof(d->st.uuid), "%s", info->uuid);
	d->st.ndisks = info->ndisks;
	for (i = 0; i < info->ndisks; i++)
		d->st.disks[i] = info->disks[i];
	if (send_create_standby(op, d, info, on_create_standby_answer) < 0)
		protect_done(op, REMUS_HOSTD_E_INTERNAL, "the domain's XML does not fit a peer "
			     "message (over %u bytes)", REMUS_HOSTD_PEER_MAX_LINE);
}

static void ctl_protect(struct remus_hostd *h, struct remus_ctl_request *req,
			const struct remus_hostd_request *r)
{
	struct dom *d = dom_find(h, r->domain);
	struct op *op;

	if (d) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_EXISTS,
			"domain %s is already protected here: %s, state %s, peer %s (remusctl "
			"status %s; unprotect it first to change it)", r->domain,
			remus_hostd_role_name(d->st.role), dom_state_names[d->state], d->st.peer,
			r->domain));
		return;
	}
	if (!paths_fit(h, r->domain)) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_BAD_REQUEST,
			"domain %s: its sockets under run_dir %s would be longer than a unix socket "
			"path allows; give remusd serve a shorter run_dir", r->domain,
			h->cfg.run_dir));
		return;
	}
	if (!h->ops) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_INTERNAL,
			"this remusd serve has no libvirt operations yet; protect needs them"));
		return;
	}
	if (h->stopping) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_INTERNAL,
			"remusd serve is stopping"));
		return;
	}
	d = dom_new(h, r->domain);
	op = d ? op_new(h, r->domain, d->gen) : NULL;
	if (!op) {
		if (d)
			dom_free(d);
		remus_ctl_reply(req, NULL);
		return;
	}
	op->req = req;
	op->r = *r;
	d->state = D_STARTING;
	d->st.role = REMUS_HOSTD_ROLE_PRIMARY;
	snprintf(d->st.peer, sizeof(d->st.peer), "%s", r->standby_host);
	d->st.peer_port = r->standby_port;
	d->st.interval_ms = r->has_interval ? r->interval_ms : h->cfg.interval_ms;
	d->st.pause_budget_ms = r->has_pause_budget ? r->pause_budget_ms : h->cfg.pause_budget_ms;
	d->st.netbuffer = r->has_netbuffer ? r->netbuffer : h->cfg.netbuffer;
	d->st.reprotect = r->has_reprotect ? r->reprotect : h->cfg.reprotect;
	remus_info(LOG, "%s: protect requested, standby %s:%u", r->domain, r->standby_host,
		   r->standby_port);
	if (h->ops->inspect(h->virt, r->domain, on_inspected, op) < 0)
		protect_done(op, REMUS_HOSTD_E_INTERNAL, "cannot ask libvirt about %s", r->domain);
}

/* ---- create-standby (standby host) ------------------------------------------- */

/* A create-standby that takes long says in the log what it waits for, so
 * that a primary's "no answer in time" can be told from this side: the
 * libvirt call that did not return, or an answer that was sent. */
#define CREATE_WATCH_MS 15000

static void op_phase(struct op *op, const char *phase)
{
	op->phase = phase;
	remus_debug(LOG, "%s: create-standby: %s (%llu ms)", op->name, phase,
		    (unsigned long long)(remus_now_ms() - op->started_ms));
}

static void on_op_watch(struct remus_loop *loop, void *opaque)
{
	struct op *op = opaque;

	(void)loop;
	remus_warn(LOG, "%s: create-standby from %s still waits for %s after %llu ms",
		   op->name, op->pm.primary, op->phase ? op->phase : "?",
		   (unsigned long long)(remus_now_ms() - op->started_ms));
	remus_timer_arm(&op->watch, CREATE_WATCH_MS);
}

/* The create-standby's answer went (or could not): how long it took. */
static void op_answered(struct op *op, const char *how)
{
	remus_timer_disarm(&op->watch);
	remus_info(LOG, "%s: create-standby from %s answered (%s) after %llu ms", op->name,
		   op->pm.primary, how, (unsigned long long)(remus_now_ms() - op->started_ms));
}

/* Raw images of the record's disks under STATE_DIR/DOMAIN/, of their
 * size; an existing one is kept (its content is what a resync starts
 * from).  *@made (may be NULL) gets bit i for each image made here. */
static int make_images(struct remus_hostd *h, const struct remus_hostd_dstate *st,
		       unsigned *made, char *err, size_t errlen)
{
	char dir[1200], path[1300];
	unsigned i;
	int fd, rc;

	/* (state_dir is at most 1023 bytes, a name 63, a target 31.) */

	if (!st->ndisks)
		return 0;
	snprintf(dir, sizeof(dir), "%s/%s", h->cfg.state_dir, st->domain);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	for (i = 0; i < st->ndisks; i++) {
		snprintf(path, sizeof(path), "%s/%s.raw", dir, st->disks[i].target);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 && made)
			*made |= 1u << i;
		else if (fd < 0 && errno == EEXIST)
			fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)st->disks[i].size) < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot make the image %s of %llu bytes: %s", path,
				 (unsigned long long)st->disks[i].size, strerror(-rc));
			if (fd >= 0)
				close(fd);
			return rc;
		}
		close(fd);
	}
	return 0;
}

static uint16_t free_repl_port(struct remus_hostd *h)
{
	unsigned p;
	struct dom *d;

	for (p = h->cfg.repl_port_min; p <= h->cfg.repl_port_max; p++) {
		for (d = h->doms; d; d = d->next)
			if (d->st.role == REMUS_HOSTD_ROLE_STANDBY && d->st.repl_port == p)
				break;
		if (!d)
			return (uint16_t)p;
	}
	return 0;
}

/* A create-standby that failed leaves nothing behind: its child is
 * killed (SIGKILL, reaped at once), the sockets it or its QEMU made are
 * unlinked, and the images it made (not those an earlier protection left:
 * a resync starts from them) removed. */
static void standby_leftovers_remove(struct dom *d)
{
	struct remus_hostd *h = d->h;
	char path[REMUS_HOSTD_PATH_MAX + 1200];
	unsigned i;

	remus_child_free(d->child);
	d->child = NULL;
	proxy_stop(d);
	unlink(d->ctl_path);
	unlink(d->in_path);
	unlink(d->qmp_path);
	for (i = 0; i < d->st.ndisks; i++) {
		snprintf(path, sizeof(path), "%s/%s.%s.nbd", h->cfg.run_dir, d->st.domain,
			 d->st.disks[i].target);
		unlink(path);
		if (!(d->images_made & (1u << i)))
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s.raw", h->cfg.state_dir, d->st.domain,
			 d->st.disks[i].target);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s/%s.raw.journal", h->cfg.state_dir,
			 d->st.domain, d->st.disks[i].target);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/%s", h->cfg.state_dir, d->st.domain);
	(void)rmdir(path);      /* only if nothing else is in it */
	d->images_made = 0;
}

static void standby_answer_refusal(struct op *op, int code, const char *msg)
{
	remus_warn(LOG, "%s: create-standby refused: %s", op->name, msg);
	peer_answer_error(&op->prep, code, "%s", msg);
	op_answered(op, "refused");
}

/* A create-standby refused before it made anything: only the answer. */
static void standby_refused(struct op *op, int code, const char *msg)
{
	standby_answer_refusal(op, code, msg);
	op_free(op);
}

/* Refused after it made things: they go too (record, child, images). */
static void standby_failed(struct op *op, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void standby_failed(struct op *op, int code, const char *fmt, ...)
{
	struct dom *d = op_dom(op);
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	standby_answer_refusal(op, code, msg);
	if (d) {
		dom_unrecord(d);
		standby_leftovers_remove(d);
		dom_free(d);
	}
	op_free(op);
}

static void on_standby_created(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;
	struct remus_hostd *h = op->h;
	struct dom *d = op_dom(op);
	int r;

	if (!d) {
		op_free(op);
		return;
	}
	d->create_op = NULL;
	if (d->state == D_FAILED) {
		/* Its child died meanwhile; the peer knows.  Whatever libvirt
		 * made goes. */
		struct op *del = op_new(h, d->st.domain, 0);

		standby_failed(op, REMUS_HOSTD_E_INTERNAL, "%s", d->last_failure);
		if (rc == 0 && del && h->ops->destroy(h->virt, del->name, on_destroyed_then_forget,
						      del) == 0)
			return;
		if (del)
			op_free(del);
		return;
	}
	if (rc < 0) {
		standby_failed(op, code_of(code), "%s", msg);
		return;
	}
	op_phase(op, "the QMP proxy");
	r = h->ops->proxy_start(h->virt, d->st.domain, d->qmp_path, &d->proxy);
	if (r < 0) {
		standby_failed(op, REMUS_HOSTD_E_INTERNAL, "cannot serve the QMP proxy %s: %s",
			       d->qmp_path, strerror(-r));
		return;
	}
	if (dom_save(d) < 0) {
		standby_failed(op, REMUS_HOSTD_E_INTERNAL, "cannot record the standby in %s",
			       h->cfg.state_dir);
		return;
	}
	d->state = D_RUNNING;
	remus_info(LOG, "%s: standby of %s ready in %llu ms, replication port %u", d->st.domain,
		   d->st.peer, (unsigned long long)(remus_now_ms() - d->child_started_ms),
		   d->st.repl_port);
	op_answered(op, "ready");
	if (!peer_answer_ok(&op->prep, d->st.repl_port)) {
		/* Its primary gave up waiting: nobody will replicate to it. */
		struct op *del = op_new(h, d->st.domain, 0);

		dom_fail(d, "%s gave up waiting for this standby; dropping it", d->st.peer);
		standby_leftovers_remove(d);
		forget(del, d);
		if (del && h->ops->destroy(h->virt, del->name, on_destroyed_then_forget, del) < 0)
			op_free(del);
	}
	op_free(op);
}

static void create_standby_go(struct op *op, const struct remus_hostd_peer_msg *m);

/* What libvirt has here under the standby's name or UUID allows it
 * (virtops check_standby): the record it replaces, if any, goes, then
 * the standby is made.  Refused: nothing was made, the record stays. */
static void on_standby_checked(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;
	struct dom *d = op->gen ? op_dom(op) : NULL;

	if (rc < 0) {
		if (d)
			dom_fail(d, "a fresh standby for %s was refused here: %s", op->pm.primary,
				 msg);
		standby_refused(op, code_of(code), msg);
		return;
	}
	if (d) {
		dom_unrecord(d);
		dom_free(d);
	}
	create_standby_go(op, &op->pm);
}

static void standby_check(struct op *op)
{
	struct remus_hostd *h = op->h;
	char in[REMUS_HOSTD_PATH_MAX];

	snprintf(in, sizeof(in), "%s/%s.in", h->cfg.run_dir, op->pm.domain);
	op_phase(op, "libvirt to check the standby's name and UUID");
	if (h->ops->check_standby(h->virt, op->pm.domain, op->pm.uuid, in, op->recorded,
				  on_standby_checked, op) < 0) {
		char msg[REMUS_HOSTD_PATH_MAX + 64];

		snprintf(msg, sizeof(msg), "cannot ask libvirt about %s", op->pm.domain);
		standby_refused(op, REMUS_HOSTD_E_INTERNAL, msg);
	}
}

/* The old domain of a create-standby that replaces one: gone, proceed. */
static void on_old_destroyed(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;

	if (rc < 0) {
		peer_answer_error(&op->prep, code_of(code), "cannot destroy what is left of the "
				  "old domain %s here: %s", op->name, msg);
		op_free(op);
		return;
	}
	standby_check(op);
}

static void create_standby_go(struct op *op, const struct remus_hostd_peer_msg *m)
{
	struct remus_hostd *h = op->h;
	struct remus_hostd_nbd nbd[REMUS_HOSTD_MAX_DISKS];
	struct dom *d;
	char err[1024];
	unsigned i;
	uint16_t port = free_repl_port(h);

	if (!paths_fit(h, m->domain)) {
		peer_answer_error(&op->prep, REMUS_HOSTD_E_BAD_REQUEST, "domain %s: its sockets "
				  "under run_dir %s on %s would be too long; give a shorter run_dir",
				  m->domain, h->cfg.run_dir, h->name);
		op_free(op);
		return;
	}
	if (!port) {
		peer_answer_error(&op->prep, REMUS_HOSTD_E_INTERNAL, "no free replication port "
				  "in %u-%u on this host; widen repl_ports", h->cfg.repl_port_min,
				  h->cfg.repl_port_max);
		op_free(op);
		return;
	}
	if ((d = dom_find(h, m->domain))) {
		/* Another request made it meanwhile. */
		peer_answer_error(&op->prep, REMUS_HOSTD_E_EXISTS, "domain %s is already "
				  "protected on %s (%s, state %s)", m->domain, h->name,
				  remus_hostd_role_name(d->st.role), dom_state_names[d->state]);
		op_free(op);
		return;
	}
	d = dom_new(h, m->domain);
	if (!d) {
		peer_answer_error(&op->prep, REMUS_HOSTD_E_INTERNAL, "out of memory");
		op_free(op);
		return;
	}
	op->gen = d->gen;
	d->state = D_STARTING;
	d->st.role = REMUS_HOSTD_ROLE_STANDBY;
	snprintf(d->st.uuid, sizeof(d->st.uuid), "%s", m->uuid);
	snprintf(d->st.peer, sizeof(d->st.peer), "%s", m->primary);
	snprintf(d->st.owner, sizeof(d->st.owner), "%s", op->peer_id);
	d->st.peer_port = m->primary_port;
	d->st.takeover = m->takeover;
	d->st.repl_port = port;
	d->st.interval_ms = m->options.interval_ms;
	d->st.pause_budget_ms = m->options.pause_budget_ms;
	d->st.netbuffer = m->options.netbuffer;
	d->st.reprotect = m->options.reprotect;
	d->st.since_ms = wall_ms();
	d->st.ndisks = m->ndisks;
	for (i = 0; i < m->ndisks; i++) {
		snprintf(d->st.disks[i].target, sizeof(d->st.disks[i].target), "%s",
			 m->disks[i].target);
		snprintf(d->st.disks[i].format, sizeof(d->st.disks[i].format), "%s",
			 m->disks[i].format);
		d->st.disks[i].size = m->disks[i].size;
	}
	if (make_images(h, &d->st, &d->images_made, err, sizeof(err)) < 0) {
		standby_failed(op, REMUS_HOSTD_E_INTERNAL, "%s", err);
		return;
	}
	/* The child first: it serves the disks' NBD exports, which QEMU opens
	 * as it starts, and waits for the QMP proxy. */
	if (child_spawn(d) < 0) {
		standby_failed(op, REMUS_HOSTD_E_INTERNAL, "%s", d->last_failure);
		return;
	}
	fill_nbd(d, nbd);
	d->create_op = op;
	op_phase(op, "libvirt to create the standby domain (after the child's NBD exports)");
	if (h->ops->create_standby(h->virt, d->st.domain, d->st.uuid, m->xml, d->in_path,
				   op->recorded, nbd, d->st.ndisks, on_standby_created, op) < 0) {
		d->create_op = NULL;
		standby_failed(op, REMUS_HOSTD_E_INTERNAL, "cannot ask libvirt to create %s",
			       d->st.domain);
	}
}

static void peer_create_standby(struct remus_hostd *h, struct remus_hostd_peer_reply *rep,
				const struct remus_hostd_peer_msg *m, const char *from,
				const char *identity)
{
	struct dom *d = dom_find(h, m->domain);
	struct op *op;

	if (!h->ops) {
		struct remus_hostd_peer_reply *r = rep;

		peer_answer_error(&r, REMUS_HOSTD_E_INTERNAL, "remusd serve on %s has no libvirt "
				  "operations yet", h->name);
		return;
	}
	op = op_new(h, m->domain, 0);
	if (!op) {
		struct remus_hostd_peer_reply *r = rep;

		peer_answer_error(&r, REMUS_HOSTD_E_INTERNAL, "out of memory");
		return;
	}
	op->prep = rep;
	op->pm = *m;
	op->started_ms = remus_now_ms();
	remus_timer_arm(&op->watch, CREATE_WATCH_MS);
	remus_info(LOG, "%s: create-standby from %s (%s)", m->domain, from,
		   *identity ? identity : "no TLS");
	snprintf(op->peer_id, sizeof(op->peer_id), "%s", identity);
	op->pm.xml = strdup(m->xml);
	if (!op->pm.xml) {
		peer_answer_error(&op->prep, REMUS_HOSTD_E_INTERNAL, "out of memory");
		op_free(op);
		return;
	}
	if (d) {
		/* The fence rule (hostd/fence.h): a copy that may run here as
		 * the primary goes only for its own standby's host, after a
		 * takeover newer than our record (then it is the stale one:
		 * perhaps this host's remusd serve died and took the primary
		 * child with it); otherwise it is refused, and a primary that
		 * runs it here says so with its takeover count, so that a
		 * stale asker learns it is the stale one. */
		char why[1024];
		bool taking_over = d->state == D_TAKEOVER;
		enum remus_hostd_fence f = remus_hostd_fence_create(&d->st, taking_over, from,
								    m->primary, m->takeover, why,
								    sizeof(why));

		if (f == REMUS_HOSTD_FENCE_REFUSE) {
			struct remus_hostd_peer_msg a = { .ok = false, .code = REMUS_HOSTD_E_EXISTS };

			remus_warn(LOG, "%s: create-standby from %s refused: %s", m->domain, from, why);
			snprintf(a.error, sizeof(a.error), "%s: %s", h->name, why);
			/* "It runs here" only while its child lives: a child
			 * whose QEMU died exits (lost monitor), and then this
			 * host must not tell the asker to destroy its copy. */
			if ((d->st.role == REMUS_HOSTD_ROLE_PRIMARY || taking_over) && d->child) {
				a.runs_primary = true;
				a.takeover = d->st.takeover + (taking_over ? 1 : 0);
			}
			remus_hostd_peer_answer(op->prep, &a);
			op->prep = NULL;
			op_free(op);
			return;
		}
		if (strcmp(d->st.uuid, m->uuid) != 0) {
			peer_answer_error(&op->prep, REMUS_HOSTD_E_EXISTS, "%s already protects "
					  "another domain named %s (UUID %s)", h->name, m->domain,
					  d->st.uuid);
			op_free(op);
			return;
		}
		/* Ours, from an earlier protection (the old primary after a
		 * takeover, or a standby being renewed): its child and what
		 * runs of it go, then (if libvirt's definition here allows
		 * it: on_standby_checked) the record and a fresh standby; the
		 * images stay for the resync. */
		if (f == REMUS_HOSTD_FENCE_DESTROY)
			remus_warn(LOG, "%s: FENCE: destroying the copy here (%s, %s): %s",
				   m->domain, remus_hostd_role_name(d->st.role),
				   dom_state_names[d->state], why);
		remus_info(LOG, "%s: replacing what is left of it here (%s, %s) by a fresh "
			   "standby of %s", m->domain, remus_hostd_role_name(d->st.role),
			   dom_state_names[d->state], from);
		remus_timer_disarm(&d->timer);
		remus_child_free(d->child);
		d->child = NULL;
		proxy_stop(d);
		d->state = D_FAILED;
		op->gen = d->gen;
		op->recorded = true;
		op_phase(op, "libvirt to destroy the old domain");
		if (h->ops->destroy(h->virt, m->domain, on_old_destroyed, op) < 0) {
			peer_answer_error(&op->prep, REMUS_HOSTD_E_INTERNAL, "cannot ask libvirt");
			op_free(op);
		}
		return;
	}
	standby_check(op);
}

/* ---- failover, unprotect, destroy-standby ------------------------------------ */

static void forget(struct op *op, struct dom *d)
{
	proxy_stop(d);
	dom_unrecord(d);
	dom_free(d);
}

static void on_destroyed_then_forget(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;

	if (rc < 0)
		remus_warn(LOG, "%s: libvirt could not destroy it: %s", op->name, msg);
	if (op->prep) {
		if (rc < 0)
			peer_answer_error(&op->prep, code_of(code), "%s", msg);
		else
			peer_answer_ok(&op->prep, 0);
	}
	op_free(op);
}

/* destroy-standby: the child stops, the domain is destroyed, forgotten. */
static void after_standby_child(struct op *op, struct dom *d)
{
	struct remus_hostd *h = op->h;

	forget(op, d);
	if (h->ops->destroy(h->virt, op->name, on_destroyed_then_forget, op) < 0) {
		peer_answer_error(&op->prep, REMUS_HOSTD_E_INTERNAL, "cannot ask libvirt");
		op_free(op);
	}
}

static void peer_destroy_standby(struct remus_hostd *h, struct remus_hostd_peer_reply *rep,
				 const struct remus_hostd_peer_msg *m)
{
	struct dom *d = dom_find(h, m->domain);
	struct op *op;

	if (!d || d->st.role != REMUS_HOSTD_ROLE_STANDBY) {
		struct remus_hostd_peer_reply *r = rep;

		if (!d)
			peer_answer_ok(&r, 0);    /* nothing to do: done */
		else
			peer_answer_error(&r, REMUS_HOSTD_E_EXISTS, "%s is the primary on %s, not a "
					  "standby", m->domain, h->name);
		return;
	}
	op = op_new(h, d->st.domain, d->gen);
	if (!op) {
		struct remus_hostd_peer_reply *r = rep;

		peer_answer_error(&r, REMUS_HOSTD_E_INTERNAL, "out of memory");
		return;
	}
	op->prep = rep;
	remus_info(LOG, "%s: destroying the standby (asked by %s)", d->st.domain, d->st.peer);
	child_stop(d, op, after_standby_child);
}

static void on_unprotected_remote(void *opaque, int rc, const struct remus_hostd_peer_msg *a,
				  const char *err)
{
	struct op *op = opaque;
	struct json_object *o = NULL;
	char w[1400];

	op->call = NULL;
	if (rc < 0 || !a->ok) {
		/* Unprotected here all the same; the leftover is named. */
		o = json_object_new_object();
		snprintf(w, sizeof(w), "the standby could not be destroyed: %s; destroy it there "
			 "by hand (virsh destroy %s)", rc < 0 ? err : a->error, op->name);
		if (o)
			json_object_object_add(o, "warning", json_object_new_string(w));
		remus_warn(LOG, "%s: unprotected here, but %s", op->name, w);
	}
	answer(&op->req, ok_answer(o));
	op_free(op);
}

static void after_primary_child(struct op *op, struct dom *d)
{
	struct remus_hostd *h = op->h;
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST,
					  .req = REMUS_HOSTD_PEER_DESTROY_STANDBY };
	char peer[REMUS_HOSTD_HOST_MAX];
	uint16_t port = d->st.peer_port;

	snprintf(peer, sizeof(peer), "%s", d->st.peer);
	remus_info(LOG, "%s: unprotected; the guest runs here", d->st.domain);
	forget(op, d);
	m.id = ++h->next_id;
	snprintf(m.domain, sizeof(m.domain), "%s", op->name);
	if (remus_hostd_peer_call(h->loop, peer, port, h->name, &m, h->cfg.peer_timeout_ms,
				  h->tls_client, on_unprotected_remote, op, &op->call) < 0) {
		answer(&op->req, ok_answer(NULL));
		op_free(op);
	}
}

/* ---- unprotect with disks: the engine stops, the disks go back to files ------- */

/* The progress of one disk's copy, from libvirt (on the loop). */
static void on_copy_progress(void *opaque, const char *target, uint64_t bytes, uint64_t total)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	for (unsigned i = 0; d && i < d->st.ndisks; i++)
		if (strcmp(d->st.disks[i].target, target) == 0 && d->copies[i].what)
			remus_hostd_copy_update(&d->copies[i].c, bytes, total, remus_now_ms());
}

static void copies_begin(struct dom *d, const char *what)
{
	for (unsigned i = 0; i < d->st.ndisks; i++)
		d->copies[i] = (struct disk_copy){ .what = what };
}

static void copies_end(struct dom *d)
{
	memset(d->copies, 0, sizeof(d->copies));
}

static void on_released(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	if (!d) {
		op_free(op);
		return;
	}
	copies_end(d);
	if (rc < 0) {
		/* The guest runs on remusd's export still: its child must go on
		 * serving it.  If it died meanwhile, it is started again (and
		 * protects again: nothing was released). */
		dom_fail(d, "unprotect: cannot move the disks back to files: %s", msg);
		answer(&op->req, remus_hostd_answer_error(code_of(code), "domain %s: the disks "
			"could not be moved back to files: %s; %s runs on, unprotected, on "
			"remusd's NBD export (remusd serve keeps serving it); fix that and run "
			"remusctl unprotect %s again", op->name, msg, op->name, op->name));
		if (d->child) {
			d->state = D_FAILED;
		} else {
			d->state = D_RESTARTING;
			remus_timer_arm(&d->timer, 0);
		}
		op_free(op);
		return;
	}
	remus_info(LOG, "%s: disks back on plain files; stopping its child", d->st.domain);
	child_stop(d, op, after_primary_child);
}

/* The destination of every disk: its original file, or a new one. */
static void fill_release(const struct dom *d, struct remus_hostd_release *rel)
{
	struct remus_hostd_nbd nbd[REMUS_HOSTD_MAX_DISKS];

	fill_nbd(d, nbd);
	for (unsigned i = 0; i < d->st.ndisks; i++) {
		memset(&rel[i], 0, sizeof(rel[i]));
		snprintf(rel[i].target, sizeof(rel[i].target), "%s", nbd[i].target);
		snprintf(rel[i].socket, sizeof(rel[i].socket), "%s", nbd[i].socket);
		remus_hostd_release_target(d->h->cfg.state_dir, d->st.domain, &d->st.disks[i],
					   rel[i].path, sizeof(rel[i].path), rel[i].format,
					   sizeof(rel[i].format));
	}
}

static void release_go(struct op *op, struct dom *d)
{
	struct remus_hostd *h = op->h;
	struct remus_hostd_release rel[REMUS_HOSTD_MAX_DISKS];

	fill_release(d, rel);
	copies_begin(d, "releasing");
	remus_info(LOG, "%s: moving %u disk(s) back to plain files (first: %s)", d->st.domain,
		   d->st.ndisks, rel[0].path);
	if (h->ops->release_disks(h->virt, d->st.domain, rel, d->st.ndisks, on_copy_progress,
				  on_released, op) < 0)
		on_released(op, -ENOMEM, "internal", "cannot ask libvirt to copy the disks");
}

static void unprotect_poll(struct op *op);

/* The engine's state, polled until it stopped: a block copy must not
 * race a checkpoint (the guest would be paused, and the copy's writes
 * would bypass what the engine replicates). */
static void on_engine_state(void *opaque, int rc, const char *text)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);
	struct json_object *o = rc == 0 ? json_tokener_parse(text) : NULL;
	const char *st = o ? json_object_get_string(json_object_object_get(o, "state")) : NULL;

	op->ask = NULL;
	if (!d) {
		json_object_put(o);
		op_free(op);
		return;
	}
	/* stopped: the primary engine; active: a standby child that took
	 * over (nothing to stop; unprotect is not its word). */
	if (st && (strcmp(st, "stopped") == 0 || strcmp(st, "active") == 0)) {
		json_object_put(o);
		release_go(op, d);
		return;
	}
	if (!d->child) {
		json_object_put(o);
		release_go(op, d);      /* the copy says whether the disks can move */
		return;
	}
	if (remus_now_ms() >= op->deadline_ms) {
		/* @st lives in @o: put it only after the message. */
		remus_warn(LOG, "%s: its engine did not stop in %u s (state %s); copying the "
			   "disks back all the same", d->st.domain, ENGINE_STOP_MS / 1000,
			   st ? st : "unknown");
		json_object_put(o);
		release_go(op, d);
		return;
	}
	json_object_put(o);
	remus_timer_arm(&op->timer, ENGINE_POLL_MS);
}

static void on_op_timer(struct remus_loop *loop, void *opaque)
{
	unprotect_poll(opaque);
}

static void unprotect_poll(struct op *op)
{
	struct dom *d = op_dom(op);

	if (!d) {
		op_free(op);
		return;
	}
	if (!d->child || remus_hostd_ask(op->h->loop, d->ctl_path, "status", ASK_TIMEOUT_MS,
					 on_engine_state, op, &op->ask) < 0)
		on_engine_state(op, -ENOTCONN, NULL);
}

static void on_child_unprotect(void *opaque, int rc, const char *text)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	op->ask = NULL;
	if (!d) {
		op_free(op);
		return;
	}
	if (rc < 0)
		remus_warn(LOG, "%s: its child did not answer unprotect (%s)", d->st.domain,
			   strerror(-rc));
	if (!d->st.ndisks) {
		child_stop(d, op, after_primary_child);
		return;
	}
	op->deadline_ms = remus_now_ms() + ENGINE_STOP_MS;
	unprotect_poll(op);
}

/* ---- unprotect on the standby's host: a standby left behind --------------------- */

/* A standby record outlives its primary's unprotect when its host was
 * down then (the primary's destroy-standby never arrived; the record
 * comes back, failed, with the host), or when the primary's host is gone
 * for good.  Nothing else removes it, and its standby domain stays
 * defined and paused.  unprotect on this host removes it as a
 * destroy-standby from the primary would (after_standby_child), once
 * the primary's host says it does not run the domain (query); --force
 * (the request's "force") skips the question, for a host that will not
 * answer again.  A standby that is taking over is the guest: never. */

static void on_discarded(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;
	struct json_object *o = NULL;
	char w[1400];

	(void)code;
	o = json_object_new_object();
	if (o) /* remusctl's word for it: not "runs here" */
		json_object_object_add(o, "standby_discarded", json_object_new_boolean(true));
	if (rc < 0) {
		remus_warn(LOG, "%s: libvirt could not destroy the standby domain: %s", op->name,
			   msg);
		snprintf(w, sizeof(w), "libvirt could not destroy the standby domain: %s; destroy "
			 "it by hand (virsh destroy %s)", msg, op->name);
		if (o)
			json_object_object_add(o, "warning", json_object_new_string(w));
	}
	answer(&op->req, ok_answer(o));
	op_free(op);
}

static void after_standby_discard(struct op *op, struct dom *d)
{
	struct remus_hostd *h = op->h;

	remus_info(LOG, "%s: standby discarded here (remusctl unprotect); destroying its domain",
		   d->st.domain);
	forget(op, d);
	if (h->ops->destroy(h->virt, op->name, on_discarded, op) < 0) {
		answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_INTERNAL,
			"%s: its record is gone, but libvirt could not be asked to destroy the "
			"standby domain; destroy it by hand (virsh destroy %s)", op->name, op->name));
		op_free(op);
	}
}

/* Whether standby record @d's child is taking over (or has). */
static bool standby_taking_over(const struct dom *d)
{
	struct json_object *st = d->last_status ? json_object_object_get(d->last_status, "state")
				 : NULL;
	const char *s = st && json_object_is_type(st, json_type_string) ?
			json_object_get_string(st) : "";

	return d->state == D_TAKEOVER ||
	       (d->child && (strcmp(s, "active") == 0 || strcmp(s, "failover") == 0));
}

static void on_discard_answer(void *opaque, int rc, const struct remus_hostd_peer_msg *a,
			      const char *err)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	op->call = NULL;
	if (!d || d->st.role != REMUS_HOSTD_ROLE_STANDBY || d->state == D_STOPPING) {
		answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING,
			"domain %s changed here while its primary's host was asked; see "
			"remusctl status %s", op->name, op->name));
	} else if (standby_taking_over(d)) {
		answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING,
			"domain %s is taking over here: it is the guest now, not a standby",
			op->name));
	} else if (rc < 0 || !a->ok) {
		answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_PEER_UNREACHABLE,
			"domain %s is the standby here of %s, which could not say whether it "
			"still runs it (%s); run remusctl unprotect %s there, or, if that host is "
			"gone for good, remusctl unprotect %s --force here discards this standby",
			op->name, d->st.peer, rc < 0 ? err : a->error, op->name, op->name));
	} else if (a->runs_primary || a->holds_standby) {
		answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING,
			"domain %s is the standby here of %s, which %s: run remusctl unprotect %s "
			"there", op->name, d->st.peer, a->runs_primary ? "runs it and protects it "
			"with this standby" : "holds a standby of it too (nothing runs it as the "
			"primary; check virsh list on both hosts)", op->name));
	} else {
		remus_info(LOG, "%s: %s does not run it any more; discarding the standby here",
			   op->name, d->st.peer);
		child_stop(d, op, after_standby_discard);
		return;
	}
	op_free(op);
}

static void ctl_unprotect_standby(struct remus_hostd *h, struct remus_ctl_request *req,
				  struct dom *d, bool force)
{
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST,
					  .req = REMUS_HOSTD_PEER_QUERY };
	struct op *op;

	if (d->state == D_STOPPING) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING,
			"domain %s is being stopped already", d->st.domain));
		return;
	}
	if (standby_taking_over(d)) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING,
			"domain %s is taking over here: it is the guest now, not a standby; "
			"remusctl status %s", d->st.domain, d->st.domain));
		return;
	}
	op = op_new(h, d->st.domain, d->gen);
	if (!op) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_INTERNAL, "out of memory"));
		return;
	}
	op->req = req;
	if (force) {
		remus_warn(LOG, "%s: discarding the standby here without asking %s (--force)",
			   d->st.domain, d->st.peer);
		child_stop(d, op, after_standby_discard);
		return;
	}
	m.id = ++h->next_id;
	snprintf(m.domain, sizeof(m.domain), "%s", d->st.domain);
	remus_info(LOG, "%s: unprotect of the standby here: asking %s:%u whether it still runs it",
		   d->st.domain, d->st.peer, d->st.peer_port);
	if (peer_call(op, d, &m, h->cfg.peer_timeout_ms, on_discard_answer) < 0) {
		answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_INTERNAL,
			"%s: cannot ask %s", d->st.domain, d->st.peer));
		op_free(op);
	}
}

/* unprotect on the primary's host: the engine stops (the guest runs on,
 * its held output released, the standby told it is over), the disks go
 * back from remusd's exports to plain files while the guest runs, the
 * child stops, the record goes, and the standby host destroys its
 * standby domain. */
static void ctl_unprotect(struct remus_hostd *h, struct remus_ctl_request *req,
			  const struct remus_hostd_request *r)
{
	struct dom *d = dom_find(h, r->domain);
	struct op *op;

	if (!d) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NO_DOMAIN,
			"domain %s is not protected on this host; remusctl list shows what is",
			r->domain));
		return;
	}
	if (d->st.role != REMUS_HOSTD_ROLE_PRIMARY) {
		ctl_unprotect_standby(h, req, d, r->force);
		return;
	}
	if (d->state == D_STOPPING || d->state == D_RELEASING) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING,
			"domain %s is being %s already", r->domain,
			d->state == D_STOPPING ? "stopped" : "unprotected"));
		return;
	}
	if (d->st.ndisks && !d->child && d->state == D_RESTARTING) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING,
			"domain %s: its disks are on remusd's NBD exports and the child that serves "
			"them is being restarted; run remusctl unprotect %s again once remusctl "
			"status %s shows it running", r->domain, r->domain, r->domain));
		return;
	}
	/* What was under way for this domain (a restart, a re-protection)
	 * ends here: its late answers find another generation. */
	d->gen = ++h->next_gen;
	remus_timer_disarm(&d->timer);
	op = op_new(h, d->st.domain, d->gen);
	if (!op) {
		remus_ctl_reply(req, NULL);
		return;
	}
	op->req = req;
	d->state = D_RELEASING;
	remus_info(LOG, "%s: unprotect requested%s", d->st.domain, d->st.ndisks ?
		   "; its disks go back to plain files" : "");
	if (!d->child) {
		on_child_unprotect(op, -ENOTCONN, NULL);
		return;
	}
	if (remus_hostd_ask(h->loop, d->ctl_path, "unprotect", ASK_TIMEOUT_MS, on_child_unprotect,
			    op, &op->ask) < 0)
		on_child_unprotect(op, -ENOTCONN, NULL);
}

/* failover on the standby's host: its child takes over now. */
static void on_child_failover(void *opaque, int rc, const char *text)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);
	struct json_object *o = rc == 0 ? json_tokener_parse(text) : NULL;
	bool ok = o && json_object_get_boolean(json_object_object_get(o, "ok"));
	const char *why = o && json_object_object_get(o, "error")
			  ? json_object_get_string(json_object_object_get(o, "error"))
			  : rc < 0 ? strerror(-rc) : text;

	op->ask = NULL;
	/* Killing the primary's child (a planned failover) makes the standby
	 * take over by itself (its link ended without CLOSE): that is a yes. */
	if (!ok && o && (strstr(why, "already failover") || strstr(why, "already active")))
		ok = true;
	if (ok && d && !d->takeover_op) {
		/* Answered once the child is active (on_watch_answer): the
		 * primary's host destroys its copy only then. */
		d->takeover_op = op;
		d->takeover_deadline = remus_now_ms() + TAKEOVER_MS;
		json_object_put(o);
		return;
	}
	if (op->req)
		answer(&op->req, ok ? ok_answer(NULL) : remus_hostd_answer_error(
			REMUS_HOSTD_E_NOT_RUNNING, "%s: the standby cannot take over: %s", op->name,
			why));
	if (op->prep) {
		if (ok)
			peer_answer_ok(&op->prep, 0);
		else
			peer_answer_error(&op->prep, REMUS_HOSTD_E_NOT_RUNNING, "%s: the standby "
					  "cannot take over: %s", op->name, why);
	}
	json_object_put(o);
	op_free(op);
}

static int standby_failover(struct remus_hostd *h, struct dom *d, struct op *op)
{
	if (!d->child || d->state != D_RUNNING)
		return -ENOTCONN;
	remus_info(LOG, "%s: failover requested: the standby takes over here", d->st.domain);
	return remus_hostd_ask(h->loop, d->ctl_path, "failover", ASK_TIMEOUT_MS, on_child_failover,
			       op, &op->ask);
}

/* Planned failover asked on the primary's host: the primary child is
 * killed first (SIGKILL: no release of held output, no resume of
 * anything; what the guest does from here is lost, as in a crash, and
 * its output goes nowhere), then the standby takes over; only then is the
 * old primary destroyed.  If the standby cannot take over, the primary
 * child is started again. */
static void on_primary_destroyed(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;

	if (rc < 0)
		remus_warn(LOG, "%s: the old primary could not be destroyed: %s; destroy it by "
			   "hand (virsh destroy %s)", op->name, msg, op->name);
	answer(&op->req, ok_answer(NULL));
	peer_answer_ok(&op->prep, 0);
	op_free(op);
}

static void on_remote_failover(void *opaque, int rc, const struct remus_hostd_peer_msg *a,
			       const char *err)
{
	struct op *op = opaque;
	struct remus_hostd *h = op->h;
	struct dom *d = op_dom(op);

	op->call = NULL;
	if (!d) {
		op_free(op);
		return;
	}
	if (rc < 0 || !a->ok) {
		answer(&op->req, remus_hostd_answer_error(rc < 0 ? REMUS_HOSTD_E_PEER_UNREACHABLE
			: a->code, "%s: the standby did not take over: %s; protection resumes here",
			op->name, rc < 0 ? err : a->error));
		peer_answer_error(&op->prep, rc < 0 ? REMUS_HOSTD_E_PEER_UNREACHABLE : a->code,
				  "%s: the standby did not take over: %s; protection resumes on %s",
				  op->name, rc < 0 ? err : a->error, h->name);
		d->state = D_RESTARTING;
		remus_timer_arm(&d->timer, 0);
		op_free(op);
		return;
	}
	/* The record stays (handed-over): the new primary's re-protection
	 * then finds the domain's definition here remusd's own. */
	remus_info(LOG, "%s: now runs on %s; destroying the old primary here", op->name,
		   d->st.peer);
	proxy_stop(d);
	d->state = D_HANDED_OVER;
	d->st.since_ms = wall_ms();
	snprintf(d->last_failure, sizeof(d->last_failure), "handed over to %s by a planned "
		 "failover; %s", d->st.peer, d->st.reprotect == REMUS_HOSTD_REPROTECT_AUTO ?
		 "it makes this host its standby again" : "remusctl protect it there to make "
		 "this host its standby again");
	if (h->ops->destroy(h->virt, op->name, on_primary_destroyed, op) < 0) {
		answer(&op->req, ok_answer(NULL));
		peer_answer_ok(&op->prep, 0);
		op_free(op);
	}
}

/* The primary's side of a planned failover (asked by remusctl here, or
 * by the standby's host for its remusctl): the primary child is killed,
 * the standby takes over, the old primary is destroyed (above). */
static void primary_handover(struct remus_hostd *h, struct dom *d, struct op *op)
{
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST,
					  .req = REMUS_HOSTD_PEER_FAILOVER };

	remus_info(LOG, "%s: planned failover to %s: stopping the primary here", d->st.domain,
		   d->st.peer);
	d->state = D_STOPPING;      /* its exit is not a crash to restart from */
	remus_child_free(d->child);
	d->child = NULL;
	m.id = ++h->next_id;
	snprintf(m.domain, sizeof(m.domain), "%s", d->st.domain);
	if (peer_call(op, d, &m, h->cfg.peer_timeout_ms + TAKEOVER_MS, on_remote_failover) < 0) {
		d->state = D_RESTARTING;
		remus_timer_arm(&d->timer, 0);
		op_free(op);
	}
}

/* failover asked on the standby's host: its primary's host did the
 * handover (the guest never ran twice), or it does not answer (gone:
 * this host takes over alone, from the last checkpoint) or knows no
 * such domain. */
static void on_handover_answer(void *opaque, int rc, const struct remus_hostd_peer_msg *a,
			       const char *err)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	op->call = NULL;
	if (rc == 0 && a->ok) {
		answer(&op->req, ok_answer(NULL));
		op_free(op);
		return;
	}
	if (d && (rc < 0 || a->code == REMUS_HOSTD_E_NO_DOMAIN)) {
		remus_warn(LOG, "%s: its primary's host %s %s: taking over alone", d->st.domain,
			   d->st.peer, rc < 0 ? "does not answer" : "does not run it");
		if (standby_failover(op->h, d, op) == 0)
			return;
	}
	answer(&op->req, remus_hostd_answer_error(rc < 0 ? REMUS_HOSTD_E_PEER_UNREACHABLE :
		(enum remus_hostd_code)a->code, "%s: no failover: %s", op->name,
		rc < 0 ? err : a->error));
	op_free(op);
}

static void ctl_failover(struct remus_hostd *h, struct remus_ctl_request *req,
			 const struct remus_hostd_request *r)
{
	struct dom *d = dom_find(h, r->domain);
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST,
					  .req = REMUS_HOSTD_PEER_FAILOVER };
	struct op *op;

	if (!d) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NO_DOMAIN,
			"domain %s is not protected on this host; remusctl list shows what is",
			r->domain));
		return;
	}
	if (d->state != D_RUNNING || !d->child) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING,
			"domain %s is %s here, not protected: nothing to fail over to", r->domain,
			dom_state_names[d->state]));
		return;
	}
	op = op_new(h, d->st.domain, d->gen);
	if (!op) {
		remus_ctl_reply(req, NULL);
		return;
	}
	op->req = req;
	if (d->st.role == REMUS_HOSTD_ROLE_PRIMARY) {
		primary_handover(h, d, op);
		return;
	}
	/* The primary's host hands over: it stops its primary before this
	 * host's standby takes over, and asks for that takeover itself
	 * (peer_failover here), which takes one peer call of its own. */
	m.id = ++h->next_id;
	snprintf(m.domain, sizeof(m.domain), "%s", d->st.domain);
	if (peer_call(op, d, &m, 2 * h->cfg.peer_timeout_ms + TAKEOVER_MS + 30000,
		      on_handover_answer) < 0 && standby_failover(h, d, op) < 0)
		op_free(op);
}

static void peer_failover(struct remus_hostd *h, struct remus_hostd_peer_reply *rep,
			  const struct remus_hostd_peer_msg *m)
{
	struct dom *d = dom_find(h, m->domain);
	struct op *op;
	struct remus_hostd_peer_reply *r = rep;

	if (d && d->st.role == REMUS_HOSTD_ROLE_PRIMARY) {
		/* Its standby's host asks for a planned failover. */
		if (d->state != D_RUNNING || !d->child) {
			peer_answer_error(&r, REMUS_HOSTD_E_NOT_RUNNING, "%s is %s on %s, not "
					  "protected: nothing to fail over (remusctl status %s "
					  "there)", m->domain, dom_state_names[d->state], h->name,
					  m->domain);
			return;
		}
		op = op_new(h, d->st.domain, d->gen);
		if (!op) {
			peer_answer_error(&r, REMUS_HOSTD_E_INTERNAL, "out of memory");
			return;
		}
		op->prep = rep;
		primary_handover(h, d, op);
		return;
	}
	if (!d) {
		peer_answer_error(&r, REMUS_HOSTD_E_NO_DOMAIN, "%s has no standby of %s",
				  h->name, m->domain);
		return;
	}
	op = op_new(h, d->st.domain, d->gen);
	if (!op) {
		peer_answer_error(&r, REMUS_HOSTD_E_INTERNAL, "out of memory");
		return;
	}
	op->prep = rep;
	if (standby_failover(h, d, op) < 0) {
		peer_answer_error(&op->prep, REMUS_HOSTD_E_NOT_RUNNING, "the standby of %s on %s "
				  "is %s, not ready to take over", m->domain, h->name,
				  dom_state_names[d->state]);
		op_free(op);
	}
}

/* ---- takeover and re-protection ----------------------------------------------- */

static void reprotect_retry(struct dom *d, const char *why)
{
	dom_fail(d, "re-protection towards %s: %s; retrying in %u s", d->st.peer, why,
		 d->backoff_ms / 1000);
	d->state = D_REPROTECTING;
	remus_timer_arm(&d->timer, d->backoff_ms);
	d->backoff_ms = d->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d->backoff_ms * 2;
}

static void on_child_protect(void *opaque, int rc, const char *text)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);
	struct json_object *o = rc == 0 ? json_tokener_parse(text) : NULL;
	bool ok = o && json_object_get_boolean(json_object_object_get(o, "ok"));

	op->ask = NULL;
	if (d && ok) {
		d->state = D_RUNNING;
		d->backoff_ms = BACKOFF_MIN_MS;
		d->st.since_ms = wall_ms();
		dom_save(d);
		remus_info(LOG, "%s: protected again, standby on %s (interval %u ms)", d->st.domain,
			   d->st.peer, d->st.interval_ms);
		json_object_put(o);
		settings_push(d, op);
		return;
	} else if (d) {
		reprotect_retry(d, rc < 0 ? strerror(-rc) : text);
	}
	json_object_put(o);
	op_free(op);
}

static void on_child_unprotected(void *opaque, int rc, const char *text)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);
	char line[300];

	op->ask = NULL;
	if (!d) {
		op_free(op);
		return;
	}
	snprintf(line, sizeof(line), strchr(d->st.peer, ':') ? "protect [%s]:%u" : "protect %s:%u",
		 d->st.peer, d->st.repl_port);
	if (remus_hostd_ask(d->h->loop, d->ctl_path, line, ASK_TIMEOUT_MS, on_child_protect, op,
			    &op->ask) < 0)
		op_free(op);
}

/* The fence rule's second half (hostd/fence.h): the copy here is
 * stale, its peer says so and proved to be the protection's owner.  The
 * child goes (its engine would go on checkpointing a copy nobody
 * replicates), libvirt destroys the domain, and the record stays as it
 * is, so that the peer's own create-standby (its takeover count is
 * newer) makes this host its standby.  Status says why meanwhile. */
static void on_fenced(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	(void)code;
	if (rc < 0)
		remus_err(LOG, "%s: FENCE: libvirt could not destroy the stale copy here: %s; "
			  "stop it by hand (virsh destroy %s)", op->name, msg, op->name);
	else
		remus_warn(LOG, "%s: FENCE: the stale copy here is destroyed", op->name);
	if (d && rc < 0)
		dom_fail(d, "the copy here is stale but libvirt could not destroy it: %s; virsh "
			 "destroy %s", msg, op->name);
	op_free(op);
}

static void fence_self(struct dom *d, const char *why)
{
	struct op *op = op_new(d->h, d->st.domain, d->gen);

	remus_warn(LOG, "%s: FENCE: destroying the copy here: %s", d->st.domain, why);
	remus_timer_disarm(&d->timer);
	remus_child_free(d->child);
	d->child = NULL;
	proxy_stop(d);
	d->state = D_FAILED;
	dom_fail(d, "fenced: %s; waiting for %s to protect it onto this host", why, d->st.peer);
	if (!op || d->h->ops->destroy(d->h->virt, d->st.domain, on_fenced, op) < 0) {
		dom_fail(d, "the copy here is stale (%s) but libvirt could not be asked to destroy "
			 "it; virsh destroy %s", why, d->st.domain);
		if (op)
			op_free(op);
	}
}

static void on_reprotect_answer(void *opaque, int rc, const struct remus_hostd_peer_msg *a,
				const char *err)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	if (d && rc == 0 && a->ok)
		snprintf(d->st.owner, sizeof(d->st.owner), "%s",
			 remus_hostd_peer_call_identity(op->call));
	if (d && rc == 0 && !a->ok && a->runs_primary) {
		char why[1024];
		enum remus_hostd_fence f = remus_hostd_fence_refused(
			&d->st, true, a->takeover, remus_hostd_peer_call_identity(op->call), why,
			sizeof(why));

		op->call = NULL;
		if (f == REMUS_HOSTD_FENCE_DESTROY) {
			fence_self(d, why);
			op_free(op);
			return;
		}
		if (why[0])
			remus_warn(LOG, "%s: %s", d->st.domain, why);
	}
	op->call = NULL;
	if (!d) {
		op_free(op);
		return;
	}
	if (rc < 0 || !a->ok) {
		reprotect_retry(d, rc < 0 ? err : a->error);
		op_free(op);
		return;
	}
	d->st.repl_port = a->repl_port;
	/* The new standby's record has the settings create-standby carried. */
	if (op->pm.options.interval_ms == d->st.interval_ms &&
	    op->pm.options.pause_budget_ms == d->st.pause_budget_ms)
		d->settings_stale = false;
	/* A primary child still trying its lost standby stops first (its
	 * guest runs on); a standby child that took over refuses unprotect,
	 * which is fine. */
	if (remus_hostd_ask(d->h->loop, d->ctl_path, "unprotect", ASK_TIMEOUT_MS,
			    on_child_unprotected, op, &op->ask) < 0)
		op_free(op);
}

static void on_reprotect_inspected(void *opaque, int rc, const char *code, const char *msg,
				   struct remus_hostd_domain_info *info)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	if (!d) {
		op_free(op);
		return;
	}
	if (rc < 0) {
		reprotect_retry(d, msg);
		op_free(op);
		return;
	}
	if (send_create_standby(op, d, info, on_reprotect_answer) < 0) {
		reprotect_retry(d, "the domain's XML does not fit a peer message");
		op_free(op);
	}
}

static void reprotect_try(struct dom *d)
{
	struct op *op = op_new(d->h, d->st.domain, d->gen);

	if (!op) {
		reprotect_retry(d, "out of memory");
		return;
	}
	remus_info(LOG, "%s: asking %s:%u to be its standby again", d->st.domain, d->st.peer,
		   d->st.peer_port);
	if (d->h->ops->inspect_protected(d->h->virt, d->st.domain, on_reprotect_inspected, op) < 0) {
		reprotect_retry(d, "cannot ask libvirt");
		op_free(op);
	}
}

static void on_takeover_resumed(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	if (!d) {
		op_free(op);
		return;
	}
	if (rc < 0)
		dom_fail(d, "the guest took over but libvirt could not resume it: %s; virsh "
			 "resume %s", msg, d->st.domain);
	else
		remus_info(LOG, "%s: the guest runs here now (libvirt resumed)", d->st.domain);
	/* One takeover more: what tells the copy that ran on the old
	 * primary's host as the stale one (hostd/fence.h). */
	d->st.role = REMUS_HOSTD_ROLE_PRIMARY;
	d->st.takeover++;
	d->st.since_ms = wall_ms();
	d->st.repl_port = 0;
	dom_save(d);
	d->backoff_ms = BACKOFF_MIN_MS;
	if (d->st.reprotect == REMUS_HOSTD_REPROTECT_AUTO) {
		d->state = D_REPROTECTING;
		remus_timer_arm(&d->timer, 0);
	} else {
		d->state = D_RUNNING;
		remus_info(LOG, "%s: reprotect manual: unprotected until remusctl protect",
			   d->st.domain);
	}
	op_free(op);
}

/* A primary child without its standby for STANDBY_LOST_MS (the standby
 * host's remusd serve or child died, and with it the standby QEMU):
 * with reprotect auto the standby is made anew, as after a takeover. */
static void watch_primary(struct dom *d, const char *state)
{
	uint64_t now = remus_now_ms();

	if (strcmp(state, "unprotected") != 0 && strcmp(state, "failed") != 0) {
		d->unprotected_since = 0;
		return;
	}
	if (!d->unprotected_since) {
		d->unprotected_since = now;
		return;
	}
	if (now - d->unprotected_since < STANDBY_LOST_MS ||
	    d->st.reprotect != REMUS_HOSTD_REPROTECT_AUTO)
		return;
	remus_warn(LOG, "%s: no standby for %u s; making a new one on %s", d->st.domain,
		   STANDBY_LOST_MS / 1000, d->st.peer);
	d->unprotected_since = 0;
	d->backoff_ms = BACKOFF_MIN_MS;
	d->state = D_REPROTECTING;
	remus_timer_arm(&d->timer, 0);
}

/* The failover asked of this standby ended: @why NULL, it is active;
 * else it failed. */
static void takeover_answer(struct dom *d, const char *why)
{
	struct op *op = d->takeover_op;

	d->takeover_op = NULL;
	if (!why) {
		answer(&op->req, ok_answer(NULL));
		peer_answer_ok(&op->prep, 0);
	} else {
		answer(&op->req, remus_hostd_answer_error(REMUS_HOSTD_E_NOT_RUNNING, "%s: the "
			"standby could not take over: %s", d->st.domain, why));
		peer_answer_error(&op->prep, REMUS_HOSTD_E_NOT_RUNNING, "%s: the standby on %s "
				  "could not take over: %s", d->st.domain, d->h->name, why);
	}
	op_free(op);
}

static void on_watch_answer(void *opaque, int rc, const char *text)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);
	struct json_object *o, *st;

	op->ask = NULL;
	{
		/* By name: unprotect changes the generation while a question
		 * of the watcher is out. */
		struct dom *dn = dom_find(op->h, op->name);

		if (dn)
			dn->watching = false;
	}
	if (!d || rc < 0) {
		op_free(op);
		return;
	}
	o = json_tokener_parse(text);
	if (o && json_object_is_type(o, json_type_object)) {
		json_object_put(d->last_status);
		d->last_status = json_object_get(o);
	}
	st = o ? json_object_object_get(o, "state") : NULL;
	if (d->takeover_op && st && strcmp(json_object_get_string(st), "active") == 0) {
		takeover_answer(d, NULL);
	} else if (d->takeover_op && st && strcmp(json_object_get_string(st), "failed") == 0) {
		const char *why = json_object_get_string(json_object_object_get(o, "last_failure"));

		takeover_answer(d, why ? why : "its child says failed; see remusctl status");
	}
	if (d->state == D_RUNNING && d->st.role == REMUS_HOSTD_ROLE_PRIMARY)
		watch_primary(d, st ? json_object_get_string(st) : "");
	if (d->state != D_RUNNING || d->st.role != REMUS_HOSTD_ROLE_STANDBY) {
		json_object_put(o);
		op_free(op);
		return;
	}
	if (st && strcmp(json_object_get_string(st), "active") == 0) {
		d->takeovers++;
		remus_warn(LOG, "%s: the standby took over (the primary on %s is gone or handed "
			   "over)", d->st.domain, d->st.peer);
		d->state = D_TAKEOVER;
		if (d->h->ops->resume_after_takeover(d->h->virt, d->st.domain, on_takeover_resumed,
						     op) == 0) {
			json_object_put(o);
			return;
		}
		d->state = D_RUNNING;
	}
	json_object_put(o);
	op_free(op);
}

static void on_watch(struct remus_loop *loop, void *opaque)
{
	struct remus_hostd *h = opaque;
	struct dom *d;
	struct op *op;

	for (d = h->doms; d; d = d->next) {
		if (d->takeover_op && remus_now_ms() > d->takeover_deadline)
			takeover_answer(d, "it did not say active in time; see remusctl status");
		settings_resend(d);
		/* Every child, for the metrics; a standby's answer also
		 * tells a takeover. */
		if (!d->child || d->watching || !h->ops)
			continue;
		op = op_new(h, d->st.domain, d->gen);
		if (!op)
			continue;
		d->watching = true;
		if (remus_hostd_ask(loop, d->ctl_path, "status", ASK_TIMEOUT_MS, on_watch_answer, op,
				    &op->ask) < 0) {
			d->watching = false;
			op_free(op);
		}
	}
	remus_timer_arm(&h->watch, WATCH_MS);
}

/* ---- metrics ----------------------------------------------------------------- */

/* A number of the child's last status, or NaN. */
static double child_num(const struct dom *d, const char *key)
{
	struct json_object *v;

	if (!d->last_status || !json_object_object_get_ex(d->last_status, key, &v) ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return 0.0 / 0.0;
	return json_object_get_double(v);
}

/* Per domain, from the host's registry and the child's last status (the
 * watcher asks every child each second; a GET never waits for one). */
static void on_collect(void *opaque, struct remus_prom *p)
{
	struct remus_hostd *h = opaque;
	static const struct { const char *key, *name, *help; enum remus_prom_type type; } nums[] = {
		{ "epoch", "remus_epoch", "The last committed checkpoint.", REMUS_PROM_GAUGE },
		{ "epochs_committed", "remus_epochs_committed_total", "Committed epochs.",
		  REMUS_PROM_COUNTER },
		{ "bytes_committed", "remus_bytes_committed_total", "Bytes committed to the standby.",
		  REMUS_PROM_COUNTER },
		{ "last_pause_ms", "remus_last_pause_seconds", "The last checkpoint's pause.",
		  REMUS_PROM_GAUGE },
		{ "held_frames", "remus_held_frames", "Output frames held until their commit.",
		  REMUS_PROM_GAUGE },
		{ "interval_ms", "remus_interval_seconds", "The checkpoint interval.",
		  REMUS_PROM_GAUGE },
	};
	static const struct { const char *key, *name, *help; } hists[] = {
		{ "pause_seconds", "remus_pause_seconds",
		  "How long each checkpoint kept the guest stopped." },
		{ "commit_seconds", "remus_commit_latency_seconds",
		  "From a checkpoint to the standby's acknowledgement." },
	};
	struct dom *d;
	size_t i;

	remus_prom_family(p, "remus_domain_state", REMUS_PROM_GAUGE,
			  "1 for each protected domain, labelled with its role and state.");
	for (d = h->doms; d; d = d->next) {
		const char *state = shown_state(d);

		remus_prom_sample(p, (const char *[]){ "domain", d->st.domain, "role",
			remus_hostd_role_name(d->st.role), "state", state, NULL }, 1);
	}
	remus_prom_family(p, "remus_child_restarts_total", REMUS_PROM_COUNTER,
			  "Times the domain's child remusd was restarted.");
	for (d = h->doms; d; d = d->next)
		remus_prom_sample_u64(p, (const char *[]){ "domain", d->st.domain, NULL }, d->restarts);
	remus_prom_family(p, "remus_failures_total", REMUS_PROM_COUNTER,
			  "Failures the host daemon saw for the domain.");
	for (d = h->doms; d; d = d->next)
		remus_prom_sample_u64(p, (const char *[]){ "domain", d->st.domain, NULL }, d->failures);
	remus_prom_family(p, "remus_failovers_total", REMUS_PROM_COUNTER,
			  "Takeovers by the standby on this host.");
	for (d = h->doms; d; d = d->next)
		remus_prom_sample_u64(p, (const char *[]){ "domain", d->st.domain, NULL }, d->takeovers);
	/* The child's own histograms (daemon/ctl.c: its status carries them
	 * whole, common/prom.h's JSON form); a child without them is left
	 * out. */
	for (i = 0; i < sizeof(hists) / sizeof(hists[0]); i++) {
		remus_prom_family(p, hists[i].name, REMUS_PROM_HISTOGRAM, hists[i].help);
		for (d = h->doms; d; d = d->next) {
			struct json_object *j = d->last_status ?
				json_object_object_get(d->last_status, hists[i].key) : NULL;
			struct remus_prom_hist hh;

			if (remus_prom_hist_from_json(&hh, j) == 0)
				remus_prom_histogram(p, (const char *[]){ "domain", d->st.domain,
									  NULL }, &hh);
			remus_prom_hist_release(&hh);
		}
	}
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		bool ms = strstr(nums[i].key, "_ms") != NULL;

		remus_prom_family(p, nums[i].name, nums[i].type, nums[i].help);
		for (d = h->doms; d; d = d->next) {
			double v = child_num(d, nums[i].key);

			if (v == v)
				remus_prom_sample(p, (const char *[]){ "domain", d->st.domain, NULL },
						  ms ? v / 1000.0 : v);
		}
	}
}

/* ---- requests ---------------------------------------------------------------- */

static void on_ctl(void *opaque, struct remus_ctl_request *req, const char *line)
{
	struct remus_hostd *h = opaque;
	struct remus_hostd_request r;
	char err[600];

	if (remus_hostd_request_parse(line, &r, err, sizeof(err)) < 0) {
		remus_ctl_reply(req, remus_hostd_answer_error(REMUS_HOSTD_E_BAD_REQUEST, "%s", err));
		return;
	}
	switch (r.cmd) {
	case REMUS_HOSTD_CMD_PROTECT: ctl_protect(h, req, &r); return;
	case REMUS_HOSTD_CMD_STATUS: ctl_status(h, req, &r); return;
	case REMUS_HOSTD_CMD_LIST: ctl_list(h, req); return;
	case REMUS_HOSTD_CMD_SET_INTERVAL: ctl_set_interval(h, req, &r); return;
	case REMUS_HOSTD_CMD_FAILOVER: ctl_failover(h, req, &r); return;
	case REMUS_HOSTD_CMD_UNPROTECT: ctl_unprotect(h, req, &r); return;
	}
	remus_ctl_reply(req, NULL);
}

static struct dom *dom_find_uuid(struct remus_hostd *h, const char *uuid)
{
	struct dom *d;

	for (d = h->doms; d; d = d->next)
		if (strcasecmp(d->st.uuid, uuid) == 0)
			return d;
	return NULL;
}

/* hostd/authz.h on this host's records; a refusal is logged naming the
 * peer and the domain, answered not-owner, and changes nothing. */
static bool peer_authorised(struct remus_hostd *h, struct remus_hostd_peer_reply **rep,
			    const struct remus_hostd_peer_msg *m, const char *from,
			    const char *identity)
{
	struct dom *byname = dom_find(h, m->domain), *byuuid = NULL;
	char why[1400];

	if (m->req == REMUS_HOSTD_PEER_CREATE_STANDBY && m->uuid[0])
		byuuid = dom_find_uuid(h, m->uuid);
	if (remus_hostd_authorise(m->req, m->domain, m->uuid, identity,
				  byname ? &byname->st : NULL, byuuid ? &byuuid->st : NULL, why,
				  sizeof(why)) == 0)
		return true;
	remus_warn(LOG, "refusing %s of %s from peer %s (%s): %s",
		   remus_hostd_peer_req_name(m->req), m->domain, from,
		   *identity ? identity : "no TLS", why);
	peer_answer_error(rep, REMUS_HOSTD_E_NOT_OWNER, "%s: %s", h->name, why);
	return false;
}

/* query (peer.h): how this host holds @m's domain, asked by the
 * restarted remusd serve of its primary's host before that one starts
 * its primary child again (on_restart_answer).  "Runs it as the primary"
 * as in a create-standby's refusal: a primary record whose child lives,
 * or a standby whose child went active (the watcher sees that within
 * WATCH_MS; its record then gets one takeover more, counted here
 * already). */
static void peer_query(struct remus_hostd *h, struct remus_hostd_peer_reply *rep,
		       const struct remus_hostd_peer_msg *m)
{
	struct remus_hostd_peer_msg a = { .ok = true };
	struct dom *d = dom_find(h, m->domain);
	struct json_object *st = d && d->last_status ?
				 json_object_object_get(d->last_status, "state") : NULL;
	bool active = st && json_object_is_type(st, json_type_string) &&
		      strcmp(json_object_get_string(st), "active") == 0;
	bool taking_over = d && d->st.role == REMUS_HOSTD_ROLE_STANDBY &&
			   (d->state == D_TAKEOVER ||
			    (d->state == D_RUNNING && d->child && active));

	if (d && (taking_over || (d->st.role == REMUS_HOSTD_ROLE_PRIMARY && d->child))) {
		a.runs_primary = true;
		a.takeover = d->st.takeover + (taking_over ? 1 : 0);
	} else if (d && d->st.role == REMUS_HOSTD_ROLE_STANDBY) {
		a.holds_standby = true;
		a.takeover = d->st.takeover;
	}
	remus_debug(LOG, "%s: query: %s (takeover %llu)", m->domain, a.runs_primary ?
		    "runs here as the primary" : a.holds_standby ? "the standby is here" :
		    "does not run here", (unsigned long long)a.takeover);
	remus_hostd_peer_answer(rep, &a);
}

static void on_peer(void *opaque, struct remus_hostd_peer_reply *rep,
		    const struct remus_hostd_peer_msg *m, const char *from, const char *identity)
{
	struct remus_hostd *h = opaque;

	remus_debug(LOG, "peer %s (%s): %s %s", from, *identity ? identity : "no TLS",
		    remus_hostd_peer_req_name(m->req), m->domain);
	if (!peer_authorised(h, &rep, m, from, identity))
		return;
	switch (m->req) {
	case REMUS_HOSTD_PEER_PING:
		peer_answer_ok(&rep, 0);
		return;
	case REMUS_HOSTD_PEER_CREATE_STANDBY:
		if (h->stopping) {
			peer_answer_error(&rep, REMUS_HOSTD_E_INTERNAL, "remusd serve on %s is "
					  "stopping", h->name);
			return;
		}
		peer_create_standby(h, rep, m, from, identity);
		return;
	case REMUS_HOSTD_PEER_DESTROY_STANDBY:
		peer_destroy_standby(h, rep, m);
		return;
	case REMUS_HOSTD_PEER_FAILOVER:
		peer_failover(h, rep, m);
		return;
	case REMUS_HOSTD_PEER_SET_INTERVAL:
		peer_set_interval(h, rep, m, from);
		return;
	case REMUS_HOSTD_PEER_QUERY:
		peer_query(h, rep, m);
		return;
	}
	peer_answer_error(&rep, REMUS_HOSTD_E_BAD_REQUEST, "unknown request");
}

/* ---- start, resume, stop -------------------------------------------------------- */

/* The primary child of a record, started again after a restart: its QMP
 * proxy, then the child (whose netbuffer set-up removes the filters the
 * dead one left, and whose exports serve the guest's disks again). */
static void primary_resume(struct dom *d)
{
	int r = d->h->ops->proxy_start(d->h->virt, d->st.domain, d->qmp_path, &d->proxy);

	if (r < 0) {
		d->state = D_FAILED;
		dom_fail(d, "cannot serve the QMP proxy %s: %s", d->qmp_path, strerror(-r));
	} else if (child_spawn(d) == 0) {
		d->state = D_RUNNING;
		remus_info(LOG, "%s: resumed as %s (peer %s)", d->st.domain,
			   remus_hostd_role_name(d->st.role), d->st.peer);
	} else {
		d->state = D_RESTARTING;
		remus_timer_arm(&d->timer, d->backoff_ms);
	}
}

/* The answer of the record's standby host to query (restart_ask): the
 * fence rule decides as for a create-standby it refused (fence.h): its
 * host runs the domain as the primary after a newer takeover and proved
 * to be the record's owner: the copy here is stale and goes now, before
 * any child of ours gives it back its disks and its network.  Anything
 * else resumes the primary child: the peer holds our standby (or none:
 * the child then finds no standby and the host makes a new one), or it
 * cannot be reached (hostd.h says why that resumes). */
static void on_restart_answer(void *opaque, int rc, const struct remus_hostd_peer_msg *a,
			      const char *err)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);
	char why[1024] = "";
	enum remus_hostd_fence f = REMUS_HOSTD_FENCE_NONE;

	if (d && d->state == D_STARTING && rc == 0 && a->ok)
		f = remus_hostd_fence_refused(&d->st, a->runs_primary, a->takeover,
					      remus_hostd_peer_call_identity(op->call), why,
					      sizeof(why));
	op->call = NULL;
	/* Gone, or changed meanwhile (its standby host's create-standby
	 * came first and replaces it, or an unprotect). */
	if (!d || d->state != D_STARTING) {
		op_free(op);
		return;
	}
	if (f == REMUS_HOSTD_FENCE_DESTROY) {
		fence_self(d, why);
		op_free(op);
		return;
	}
	if (rc < 0 || !a->ok)
		remus_warn(LOG, "%s: cannot ask %s whether it took the domain over (%s); resuming "
			   "the primary child here all the same (the copy here may be the only "
			   "one; if %s runs it too, the fence rule settles it once %s answers)",
			   d->st.domain, d->st.peer, rc < 0 ? err : a->error, d->st.peer,
			   d->st.peer);
	else if (why[0])
		remus_warn(LOG, "%s: %s", d->st.domain, why);
	else
		remus_info(LOG, "%s: %s %s; resuming the primary child", d->st.domain, d->st.peer,
			   a->holds_standby ? "holds its standby" : a->runs_primary ?
			   "runs it too, with no newer takeover" : "has no standby of it");
	primary_resume(d);
	op_free(op);
}

/* Asks the standby host of primary record @d (query) how it holds the
 * domain, before the primary child starts again; @op (its generation
 * @d's) goes with the call.  -errno: not asked (the caller resumes). */
static int restart_ask(struct dom *d, struct op *op)
{
	struct remus_hostd *h = d->h;
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST,
					  .req = REMUS_HOSTD_PEER_QUERY };

	m.id = ++h->next_id;
	snprintf(m.domain, sizeof(m.domain), "%s", d->st.domain);
	remus_info(LOG, "%s: asking %s:%u whether it took the domain over before resuming the "
		   "primary child here", d->st.domain, d->st.peer, d->st.peer_port);
	return peer_call(op, d, &m, h->cfg.peer_timeout_ms, on_restart_answer);
}

static void on_recovered(void *opaque, int rc, const char *code, const char *msg)
{
	struct op *op = opaque;
	struct dom *d = op_dom(op);

	if (!d) {
		op_free(op);
		return;
	}
	if (rc < 0) {
		if (d->st.role == REMUS_HOSTD_ROLE_STANDBY && code &&
		    strcmp(code, "no-domain") == 0) {
			/* Nothing to be the standby of: its primary re-protects. */
			remus_warn(LOG, "%s: the standby domain is gone (%s); forgetting it until "
				   "%s protects it again", d->st.domain, msg, d->st.peer);
			forget(op, d);
		} else if (d->st.role == REMUS_HOSTD_ROLE_STANDBY) {
			/* Its QEMU died with the host, but libvirt still has
			 * the domain's definition, shut off (the old primary's
			 * own, which a re-protection made this host the
			 * standby over), or libvirt could not say.  The record
			 * stays: it is what makes the primary's next
			 * create-standby find that definition remusd's own
			 * (check_standby's @recorded) instead of refusing it
			 * as one remusd never protected; the primary's host
			 * sends one within STANDBY_LOST_MS of its child's
			 * "unprotected" (reprotect auto).  Nothing runs here
			 * meanwhile: no child, no proxy. */
			d->state = D_FAILED;
			dom_fail(d, "the standby domain does not run here (%s); its record stays "
				 "until %s protects it onto this host again", msg, d->st.peer);
		} else {
			d->state = D_FAILED;
			dom_fail(d, "recorded as primary here but %s; if it was failed over, its "
				 "new primary re-protects it onto this host", msg);
		}
		op_free(op);
		return;
	}
	if (d->st.role == REMUS_HOSTD_ROLE_STANDBY) {
		/* Its child died with the last remusd serve, and the standby
		 * QEMU's incoming migration with it: its primary makes a new
		 * standby. */
		remus_warn(LOG, "%s: the standby's child is gone with the last remusd serve; "
			   "dropping this standby, its primary on %s makes a new one",
			   d->st.domain, d->st.peer);
		standby_drop(d);
		op_free(op);
		return;
	}
	/* A primary: its standby's host first (restart_ask). */
	if (restart_ask(d, op) == 0)
		return;
	primary_resume(d);
	op_free(op);
}

static void on_record(void *opaque, const struct remus_hostd_dstate *s, const char *err)
{
	struct remus_hostd *h = opaque;
	struct dom *d;
	struct op *op;

	if (!s) {
		remus_err(LOG, "%s", err);
		return;
	}
	d = dom_new(h, s->domain);
	if (!d)
		return;
	d->st = *s;
	d->state = D_STARTING;
	/* Whether its standby's host got the last settings is not known:
	 * they are sent once more when it runs. */
	d->settings_stale = d->st.role == REMUS_HOSTD_ROLE_PRIMARY;
	if (!h->ops) {
		d->state = D_FAILED;
		dom_fail(d, "this remusd has no libvirt operations: cannot resume it");
		return;
	}
	op = op_new(h, d->st.domain, d->gen);
	if (!op || h->ops->recover(h->virt, d->st.domain, on_recovered, op) < 0) {
		d->state = D_FAILED;
		dom_fail(d, "cannot ask libvirt about it");
		if (op)
			op_free(op);
	}
}

unsigned remus_hostd_peer_port(const struct remus_hostd *h)
{
	return h->peer_port;
}

/* The peer port's TLS, from the keys the children's links use too: both
 * roles (this host accepts peers and calls them).  No TLS and no
 * insecure is refused, saying how to set one up. */
/* The run and state directories hold what a peer or a local user must not
 * plant or replace: the records this daemon starts children from, the
 * sockets of the children and the QMP proxies.  An existing one that is
 * not ours, not a directory, or writable by group or others is refused
 * (mkdir's 0700 only applies to one we create).  Returns 0 or -EPERM,
 * -ENOTDIR, -errno, logged. */
static int private_dir(const char *path, const char *key)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		int rc = -errno;

		remus_err(LOG, "cannot check the %s %s: %s", key, path, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		remus_err(LOG, "%s %s is not a directory; give a directory only root can "
			  "write to", key, path);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		remus_err(LOG, "%s %s is %s (mode %04o, owner uid %u): anyone who can write "
			  "there can plant records or replace sockets; chown it to uid %u and "
			  "chmod go-w it", key, path, st.st_uid != geteuid() ? "not ours" :
			  "writable by group or others", (unsigned)(st.st_mode & 07777),
			  (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

static int load_tls(struct remus_hostd *h)
{
	const struct remus_hostd_config *cfg = &h->cfg;
	struct remus_tls_config tc = { 0 };
	char err[1024];
	int rc;

	if (cfg->insecure) {
		if (cfg->tls_psk[0] || cfg->tls_x509_dir[0]) {
			remus_err(LOG, "insecure contradicts tls_%s; drop one",
				  cfg->tls_psk[0] ? "psk" : "x509_dir");
			return -EINVAL;
		}
		remus_warn(LOG, "insecure: the peer port and the replication links run without "
			   "TLS; anyone who can reach this host's port %u can create, destroy and "
			   "fail over standbys here", cfg->listen_port);
		return 0;
	}
	if (cfg->tls_psk[0] && cfg->tls_x509_dir[0]) {
		remus_err(LOG, "tls_psk and tls_x509_dir: give one of them, not both");
		return -EINVAL;
	}
	if (!cfg->tls_psk[0] && !cfg->tls_x509_dir[0]) {
		remus_err(LOG, "the peer port and the replication links need TLS: set tls_psk = "
			  "FILE (make one with 'remusctl keygen FILE' and give both hosts the same "
			  "file) or tls_x509_dir = DIR (libvirt's PKI layout, /etc/pki/libvirt on "
			  "a host set up for libvirt's TLS migration) in %s; insecure = yes runs "
			  "without TLS", REMUS_HOSTD_DEFAULT_CONFIG);
		return -EINVAL;
	}
	tc.psk_file = cfg->tls_psk[0] ? cfg->tls_psk : NULL;
	tc.x509_dir = cfg->tls_x509_dir[0] ? cfg->tls_x509_dir : NULL;
	rc = remus_tls_creds_new(&tc, REMUS_TLS_SERVER, &h->tls_server, err, sizeof(err));
	if (rc == 0)
		rc = remus_tls_creds_new(&tc, REMUS_TLS_CLIENT, &h->tls_client, err, sizeof(err));
	if (rc < 0) {
		remus_err(LOG, "TLS of the peer port: %s", err);
		return rc;
	}
	remus_info(LOG, "peer port TLS: %s", remus_tls_creds_describe(h->tls_server));
	return 0;
}

int remus_hostd_new(struct remus_loop *loop, const struct remus_hostd_config *cfg,
		    const struct remus_hostd_virt_ops *ops, void *virt,
		    struct remus_hostd **out)
{
	struct remus_hostd *h = calloc(1, sizeof(*h));
	struct remus_ctl_opts co = { .max_line = REMUS_HOSTD_REQUEST_MAX + 1, .mode = 0600,
				     .peer_check = true };
	char err[1024];
	ssize_t n;
	int rc;

	if (!h) {
		if (ops && virt)
			ops->free(virt);
		return -ENOMEM;
	}
	h->loop = loop;
	h->cfg = *cfg;
	h->ops = ops;
	h->virt = virt;
	remus_timer_init(&h->watch, loop, on_watch, h);
	if (cfg->host_name[0])
		snprintf(h->name, sizeof(h->name), "%s", cfg->host_name);
	else if (gethostname(h->name, sizeof(h->name) - 1) < 0)
		snprintf(h->name, sizeof(h->name), "localhost");
	if (cfg->remusd[0]) {
		snprintf(h->remusd, sizeof(h->remusd), "%s", cfg->remusd);
	} else {
		n = readlink("/proc/self/exe", h->remusd, sizeof(h->remusd) - 1);
		if (n < 0)
			snprintf(h->remusd, sizeof(h->remusd), "remusd");
		else
			h->remusd[n] = 0;
	}
	if (cfg->ctl_group[0]) {
		struct group *gr = getgrnam(cfg->ctl_group);

		if (!gr) {
			rc = -ENOENT;
			remus_err(LOG, "ctl_group %s: no such group; create it or remove the key",
				  cfg->ctl_group);
			goto fail;
		}
		co.use_gid = true;
		co.gid = gr->gr_gid;
		co.mode = 0660;
	}
	if (mkdir(cfg->run_dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		remus_err(LOG, "cannot create the run directory %s (run_dir): %s", cfg->run_dir,
			  strerror(-rc));
		goto fail;
	}
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		remus_err(LOG, "cannot create the state directory %s (state_dir): %s",
			  cfg->state_dir, strerror(-rc));
		goto fail;
	}
	if ((rc = private_dir(cfg->run_dir, "run_dir")) < 0 ||
	    (rc = private_dir(cfg->state_dir, "state_dir")) < 0)
		goto fail;
	rc = remus_ctl_listen_async(loop, cfg->ctl, &co, on_ctl, h, &h->ctl);
	if (rc < 0) {
		remus_err(LOG, "cannot listen on the control socket %s (ctl): %s; give a path in "
			  "a writable directory where no other remusd serve listens", cfg->ctl,
			  strerror(-rc));
		goto fail;
	}
	rc = load_tls(h);
	if (rc < 0)
		goto fail;
	rc = remus_hostd_peer_listen(loop, cfg->listen_host, cfg->listen_port, h->name,
				     cfg->peer_timeout_ms, &(struct remus_hostd_peer_tls){
					     .creds = h->tls_server,
					     .handshake_ms = cfg->peer_timeout_ms,
					     .max_handshakes = cfg->max_handshakes,
					     .max_sessions = cfg->max_peer_sessions },
				     on_peer, h, &h->peer, &h->peer_port);
	if (rc < 0) {
		remus_err(LOG, "cannot listen on the peer port %s:%u (listen): %s; is another "
			  "remusd serve running?", cfg->listen_host[0] ? cfg->listen_host : "*",
			  cfg->listen_port, strerror(-rc));
		goto fail;
	}
	if (cfg->metrics_port) {
		rc = remus_prom_http_listen(loop, cfg->metrics_host, cfg->metrics_port, on_collect,
					    h, &h->metrics, NULL);
		if (rc < 0) {
			remus_err(LOG, "cannot serve metrics on %s:%u (metrics_listen): %s",
				  cfg->metrics_host[0] ? cfg->metrics_host : "*", cfg->metrics_port,
				  strerror(-rc));
			goto fail;
		}
	}
	rc = remus_hostd_state_load_all(cfg->state_dir, on_record, h, err, sizeof(err));
	if (rc < 0) {
		remus_err(LOG, "%s", err);
		goto fail;
	}
	remus_info(LOG, "remusd serve on %s: control %s, peers on port %u, %d protection%s "
		   "resumed from %s", h->name, cfg->ctl, h->peer_port, rc, rc == 1 ? "" : "s",
		   cfg->state_dir);
	remus_timer_arm(&h->watch, WATCH_MS);
	*out = h;
	return 0;
fail:
	remus_hostd_free(h);
	return rc;
}

static void stop_check(struct remus_hostd *h)
{
	struct dom *d;
	void (*done)(void *);

	for (d = h->doms; d; d = d->next)
		if (d->child)
			return;
	remus_timer_disarm(&h->stop_timer);
	done = h->stop_done;
	h->stop_done = NULL;
	if (done)
		done(h->stop_opaque);
}

/* The deadline of a stop: whoever is left is killed. */
static void on_stop_timer(struct remus_loop *loop, void *opaque)
{
	struct remus_hostd *h = opaque;
	struct dom *d;

	for (d = h->doms; d; d = d->next) {
		if (d->child) {
			remus_warn(LOG, "%s: the child did not stop in time; killing it",
				   d->st.domain);
			remus_child_free(d->child);
			d->child = NULL;
		}
	}
	stop_check(h);
}

void remus_hostd_stop(struct remus_hostd *h, unsigned timeout_ms, void (*done)(void *opaque),
		      void *opaque)
{
	struct dom *d;

	h->stopping = true;
	h->stop_done = done;
	h->stop_opaque = opaque;
	remus_timer_disarm(&h->watch);
	for (d = h->doms; d; d = d->next) {
		remus_timer_disarm(&d->timer);
		if (d->child) {
			remus_info(LOG, "%s: stopping the %s child (pid %d)", d->st.domain,
				   remus_hostd_role_name(d->st.role), (int)remus_child_pid(d->child));
			kill(remus_child_pid(d->child), SIGTERM);
		}
	}
	remus_timer_init(&h->stop_timer, h->loop, on_stop_timer, h);
	remus_timer_arm(&h->stop_timer, timeout_ms);
	stop_check(h);
}

void remus_hostd_free(struct remus_hostd *h)
{
	if (!h)
		return;
	remus_timer_disarm(&h->watch);
	remus_timer_disarm(&h->stop_timer);
	while (h->ops_list) {
		struct op *op = h->ops_list;

		remus_hostd_ask_cancel(op->ask);
		op->ask = NULL;
		remus_hostd_peer_call_cancel(op->call);
		op->call = NULL;
		if (op->job) {
			/* a status job shares its request: answer it once */
			struct status_job *job = op->job;

			op->job = NULL;
			if (--job->remaining == 0)
				status_finish(job);
		}
		op_free(op);
	}
	while (h->doms)
		dom_free(h->doms);
	if (h->ops && h->virt)
		h->ops->free(h->virt);
	remus_hostd_peer_server_free(h->peer);
	remus_tls_creds_free(h->tls_server);
	remus_tls_creds_free(h->tls_client);
	remus_prom_http_free(h->metrics);
	remus_ctl_free(h->ctl);
	free(h);
}
