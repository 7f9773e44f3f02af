// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd: the remus-qemu daemon of one protected VM on one host.
 *
 *   remusd primary --qmp PATH --standby HOST:PORT [options]
 *   remusd standby --qmp PATH --incoming PATH --listen [HOST:]PORT [options]
 *   remusd ctl SOCKET REQUEST...
 *
 * The primary role runs the epoch engine (controller/engine.h) against the
 * protected QEMU's QMP socket, holds the guest's output until each epoch
 * is acknowledged (netbuffer/netbuffer.h) and serves and replicates its
 * disks (diskrepl/diskrepl.h); the standby role feeds the hot standby
 * QEMU, keeps the disks' epochs, and takes over when the primary is lost
 * (failover/standby.h).  This file is the glue: it wires the engine's
 * hooks to the netbuffer and the disks.  Both roles are controlled
 * through a unix socket (common/ctl.h): status, set-interval, failover,
 * unprotect.  SIGTERM/SIGINT end the daemon (the primary first resumes the
 * guest, releases held output and tells the standby it unprotects).
 *
 * Start order with disks: remusd first (it serves the NBD sockets the
 * QEMU opens at startup and waits up to 30 s for the QMP socket), then
 * QEMU.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/log.h"
#include "common/loop.h"
#include "repl/repl.h"
#include "controller/engine.h"
#include "diskrepl/diskrepl.h"
#include "failover/standby.h"
#include "netbuffer/netbuffer.h"
#include "qmp/qmp.h"
#include "remusctl/remusctl.h"

#define LOG "remusd"

#define MAX_NB_DEVICES 16

struct daemon {
	struct remus_loop *loop;
	struct remus_qmp *qmp;
	struct remus_engine *engine;
	struct remus_standby *standby;
	struct remus_netbuffer *nb;     /* NULL: output commit off */
	struct remus_diskrepl *disks;   /* NULL: no replicated disks */
	bool nb_off;
	bool tearing_down;
	bool stopping;                  /* SIGTERM/SIGINT */
	struct remus_engine_config ecfg;
	struct remus_engine_hooks eh;
	struct remus_netbuffer_config nbc;
	const char *nb_devices[MAX_NB_DEVICES];
	char standby_host[256];         /* ecfg.standby_host points here */
	struct remus_ctl *ctl;
	FILE *metrics;    /* JSON line per committed epoch, or NULL */
	const char *report_path;
	bool exit_after_failover;
	int sigfd;
	int exit_rc;
};

static void usage(FILE *f)
{
	fputs("usage:\n"
	      "  remusd primary --qmp PATH --standby HOST:PORT [--interval MS]\n"
	      "                 [--heartbeat MS] [--miss N] [--no-dedup] [--reconnect MS]\n"
	      "                 [--ctl PATH]\n"
	      "                 [--netbuffer qemu|plug|off] [--netdev ID]... [--tap IF]...\n"
	      "                 [--nb-limit BYTES] [--nb-on-lost release|hold]\n"
	      "                 [--disk NAME,image=PATH,socket=PATH]...\n"
	      "                 [--metrics FILE] [--log LEVEL]\n"
	      "  remusd standby --qmp PATH --incoming PATH --listen [HOST:]PORT\n"
	      "                 [--heartbeat MS] [--miss N] [--vm-name NAME] [--manual]\n"
	      "                 [--fence CMD] [--on-activate CMD] [--ctl PATH]\n"
	      "                 [--report FILE] [--exit-after-failover] [--log LEVEL]\n"
	      "                 [--disk NAME,image=PATH,socket=PATH]... [--journal PATH]\n"
	      "  remusd ctl SOCKET status|set-interval MS|failover|unprotect|protect HOST:PORT\n"
	      "\n"
	      "The primary protects the QEMU whose QMP socket is --qmp: it checkpoints\n"
	      "it every --interval ms (default 1000) to the standby remusd at --standby.\n"
	      "The standby feeds the QEMU started with -incoming unix:PATH (--incoming)\n"
	      "and runs it when --miss heartbeats of --heartbeat ms (default 5 x 100)\n"
	      "are missed or the primary's link drops.  Without a standby the primary\n"
	      "keeps the guest running unprotected and reconnects every --reconnect ms\n"
	      "(default 1000); a reconnected standby gets a full epoch.\n"
	      "\n"
	      "Output commit (--netbuffer, default qemu): every frame the guest sends\n"
	      "is held until the standby acknowledged its epoch.  qemu: a\n"
	      "filter-redirector on each --netdev (default: every NIC's netdev);\n"
	      "plug: a sch_plug qdisc fed by each --tap; off: nothing is held (clients\n"
	      "may see output of state lost at failover).  --nb-limit bounds one\n"
	      "epoch's held bytes (default 16 MiB; more is dropped and counted);\n"
	      "--nb-on-lost says what happens to held output when the standby is\n"
	      "lost (default release).\n"
	      "\n"
	      "Disks (--disk, both roles, same names): remusd serves the raw image\n"
	      "PATH as NBD export NAME on the unix socket; give QEMU\n"
	      "  -blockdev driver=nbd,node-name=NAME,server.type=unix,server.path=SOCK,export=NAME\n"
	      "The primary replicates every write with its epoch; the standby applies\n"
	      "an epoch's writes only when it commits (journal: --journal, default\n"
	      "IMAGE.journal).  A new session first copies the extents that differ.\n"
	      "\n"
	      "After a failover the standby serves the guest; 'remusd ctl SOCK protect\n"
	      "HOST:PORT' protects it from there (the role switch; the netbuffer options\n"
	      "apply), with the old primary's host as the new standby.\n", f);
}

static int parse_uint(const char *opt, const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "remusd: %s: '%s' is not a number in %u..%u\n", opt, s, min, max);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* "HOST:PORT", "[V6]:PORT" or, if @host_optional, "PORT".  Writes into
 * @host (NUL-terminated; "" when absent). */
static int parse_hostport(const char *opt, const char *s, bool host_optional,
			  char *host, size_t hostlen, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	const char *h = s, *p;
	size_t hl;
	unsigned v;

	if (!colon) {
		if (!host_optional)
			goto bad;
		hl = 0;
		p = s;
	} else {
		hl = (size_t)(colon - s);
		p = colon + 1;
		if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
			h = s + 1;
			hl -= 2;
		}
	}
	if (hl >= hostlen || parse_uint(opt, p, 1, 65535, &v) < 0)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (uint16_t)v;
	return 0;
bad:
	fprintf(stderr, "remusd: %s: expected %s, got '%s'\n", opt,
		host_optional ? "[HOST:]PORT" : "HOST:PORT", s);
	return -EINVAL;
}

/* ---- control requests ------------------------------------------------ */

static char *ok_reply(void)
{
	return strdup("{\"ok\":true}");
}

/* The role's status object, with "netbuffer" and "disks" added; one
 * JSON line (owned: free()), or NULL on ENOMEM. */
static char *status_json(struct daemon *d)
{
	struct json_object *o = d->engine ? remus_engine_status_json(d->engine)
			      : d->standby ? remus_standby_status_json(d->standby)
			      : json_object_new_object();
	struct json_object *part;
	char *s = NULL;

	if (!o)
		return NULL;
	if (d->engine || (!d->standby && !d->disks)) {
		part = d->nb ? remus_netbuffer_status_json(d->nb) : json_object_new_string("off");
		if (!part || json_object_object_add(o, "netbuffer", part) < 0) {
			json_object_put(part);
			goto out;
		}
	}
	if (d->disks) {
		part = remus_diskrepl_status_json(d->disks);
		if (!part || json_object_object_add(o, "disks", part) < 0) {
			json_object_put(part);
			goto out;
		}
	}
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(o);
	return s;
}

static int start_protecting(struct daemon *d);

/*
 * "protect HOST:PORT": protection (again) from this host.  On a primary
 * whose protection was stopped (unprotect), and on a standby that took
 * over (the role switch: the guest runs here now and the old primary's
 * host becomes the standby; its disk images are resynced by extent
 * hashes, so an intact old image costs only what changed).
 */
static char *ctl_protect(struct daemon *d, const char *arg)
{
	char host[256];
	uint16_t port;
	int rc;

	if (parse_hostport("protect", arg, false, host, sizeof(host), &port) < 0)
		return remus_ctl_error("protect: expected HOST:PORT of a standby remusd, got '%s'",
				       arg);
	if (d->engine && remus_engine_get_state(d->engine) != REMUS_ENGINE_STOPPED)
		return remus_ctl_error("protect: already protecting (state %s); unprotect first",
				       remus_engine_state_name(remus_engine_get_state(d->engine)));
	if (d->standby && remus_standby_get_state(d->standby) != REMUS_STANDBY_ACTIVE)
		return remus_ctl_error("protect: this is a standby whose guest does not run "
				       "here (state %s); fail over first",
				       remus_standby_state_name(remus_standby_get_state(d->standby)));
	if (d->tearing_down && d->nb)
		return remus_ctl_error("protect: still releasing the last session's output; "
				       "try again");
	remus_engine_free(d->engine);
	d->engine = NULL;
	remus_netbuffer_free(d->nb);
	d->nb = NULL;
	if (d->disks && remus_diskrepl_become_primary(d->disks) < 0)
		return remus_ctl_error("protect: cannot switch the disks to the primary role");
	snprintf(d->standby_host, sizeof(d->standby_host), "%s", host);
	d->ecfg.standby_host = d->standby_host;
	d->ecfg.standby_port = port;
	d->exit_rc = 0;
	rc = start_protecting(d);
	if (rc < 0)
		return remus_ctl_error("protect: cannot start: %s", strerror(-rc));
	remus_info(LOG, "protecting from this host now, standby %s:%u", host, port);
	return ok_reply();
}

static char *handle_ctl(void *opaque, const char *req)
{
	struct daemon *d = opaque;
	char cmd[32] = "", arg[64] = "";
	unsigned v;
	int rc;

	sscanf(req, "%31s %63s", cmd, arg);
	if (strcmp(cmd, "status") == 0)
		return status_json(d);
	if (strcmp(cmd, "set-interval") == 0) {
		if (!d->engine)
			return remus_ctl_error("set-interval: this remusd is the standby; "
					       "send it to the primary");
		if (sscanf(arg, "%u", &v) != 1 || remus_engine_set_interval(d->engine, v) < 0)
			return remus_ctl_error("set-interval: '%s' is not an interval in "
					       "10..3600000 ms", arg);
		return ok_reply();
	}
	if (strcmp(cmd, "failover") == 0) {
		if (!d->standby)
			return remus_ctl_error("failover: this remusd is the primary; "
					       "send it to the standby");
		rc = remus_standby_failover(d->standby, "failover requested through the "
					    "control socket");
		if (rc == -ENODATA)
			return remus_ctl_error("failover: no checkpoint was committed yet; "
					       "nothing to take over from");
		if (rc == -EALREADY)
			return remus_ctl_error("failover: already %s",
					       remus_standby_state_name(remus_standby_get_state(d->standby)));
		return ok_reply();
	}
	if (strcmp(cmd, "protect") == 0)
		return ctl_protect(d, arg);
	if (strcmp(cmd, "unprotect") == 0) {
		if (!d->engine)
			return remus_ctl_error("unprotect: this remusd is the standby; "
					       "send it to the primary");
		remus_engine_stop(d->engine);
		return ok_reply();
	}
	return remus_ctl_error("unknown request '%s': try status, set-interval MS, "
			       "failover, protect HOST:PORT or unprotect", cmd);
}

/* ---- hooks ----------------------------------------------------------- */

static void on_epoch_done(void *opaque, const struct remus_epoch_metrics *m)
{
	struct daemon *d = opaque;
	char nb[256] = "";

	if (!d->metrics || m->commit_ms < 0)
		return;
	if (d->nb) {
		struct remus_netbuffer_stats st;

		remus_netbuffer_get_stats(d->nb, &st);
		snprintf(nb, sizeof(nb), ",\"nb_held_frames\":%llu,\"nb_released_frames\":%llu,"
			 "\"nb_dropped\":%llu,\"nb_max_held_bytes\":%llu,\"nb_latency_p50_ms\":%.3f",
			 (unsigned long long)st.held_frames, (unsigned long long)st.released_frames,
			 (unsigned long long)(st.dropped_overflow + st.dropped_malformed),
			 (unsigned long long)st.max_held_bytes, st.latency_p50_ms);
	}
	fprintf(d->metrics,
		"{\"epoch\":%llu,\"pause_ms\":%.3f,\"complete_ms\":%.3f,\"commit_ms\":%.3f,"
		"\"local_bytes\":%llu,\"sent_bytes\":%llu,\"device_bytes\":%llu,"
		"\"pages_seen\":%llu,\"pages_changed\":%llu,\"zero_seen\":%llu,"
		"\"zero_changed\":%llu,\"disk_ops\":%llu,\"disk_bytes\":%llu,"
		"\"link_backlog\":%llu%s}\n",
		(unsigned long long)m->epoch, m->pause_ms, m->complete_ms, m->commit_ms,
		(unsigned long long)m->local_bytes, (unsigned long long)m->sent_bytes,
		(unsigned long long)m->device_bytes, (unsigned long long)m->pages_seen,
		(unsigned long long)m->pages_changed, (unsigned long long)m->zero_seen,
		(unsigned long long)m->zero_changed, (unsigned long long)m->disk_ops,
		(unsigned long long)m->disk_bytes, (unsigned long long)m->link_backlog,
		nb);
	fflush(d->metrics);
}

/* ---- primary: netbuffer and disks on the engine's hooks --------------- */

static int on_barrier(void *opaque, uint64_t epoch)
{
	struct daemon *d = opaque;

	return d->nb ? remus_netbuffer_barrier(d->nb, epoch) : 0;
}

static void on_commit(void *opaque, uint64_t epoch)
{
	struct daemon *d = opaque;

	if (d->nb)
		remus_netbuffer_commit(d->nb, epoch);
}

static void on_standby_lost(void *opaque, const char *reason)
{
	struct daemon *d = opaque;

	(void)reason;
	if (d->nb)
		remus_netbuffer_standby_lost(d->nb);
	if (d->disks)
		remus_diskrepl_session_end(d->disks);
}

static void on_resync_done(void *opaque, int rc, const char *why)
{
	struct daemon *d = opaque;

	remus_engine_session_ready(d->engine, rc, why);
}

static int on_session_start(void *opaque, uint64_t first_epoch)
{
	struct daemon *d = opaque;

	(void)first_epoch;
	if (d->nb)
		remus_netbuffer_protect(d->nb);
	if (d->disks)
		return remus_diskrepl_resync_start(d->disks, on_resync_done, d);
	return 0;
}

static int on_link_msg(void *opaque, const struct remus_repl_msg *m)
{
	struct daemon *d = opaque;

	return d->disks ? remus_diskrepl_hashes_msg(d->disks, m) : -EPROTO;
}

static int disk_forward(void *opaque, uint16_t disk, enum remus_repl_disk_op op, uint64_t off,
			uint32_t len, const void *data)
{
	struct daemon *d = opaque;

	if (!d->engine)
		return -ENOTCONN;
	return remus_engine_disk_op(d->engine, disk, op, off, len, data);
}

static size_t disk_backlog(void *opaque)
{
	struct daemon *d = opaque;

	return d->engine ? remus_engine_link_backlog(d->engine) : 0;
}

/* Protection ended (unprotect, or the QEMU is gone).  With disks the
 * daemon stays: the VM's disks are served from here; unless it was asked
 * to stop or the QEMU is gone. */
static void finish_role(struct daemon *d)
{
	if (d->disks && !d->stopping && d->exit_rc == 0) {
		remus_warn(LOG, "unprotected; still serving the VM's disks (stop this remusd "
			   "only after the VM; 'remusd ctl SOCK protect HOST:PORT' protects "
			   "again)");
		remus_netbuffer_free(d->nb);
		d->nb = NULL;
		return;
	}
	remus_loop_stop(d->loop, d->exit_rc);
}

static void on_nb_teardown(void *opaque, int rc, const char *msg)
{
	struct daemon *d = opaque;

	if (rc < 0)
		remus_warn(LOG, "netbuffer teardown: %s", msg ? msg : strerror(-rc));
	finish_role(d);
}

static void on_finished(void *opaque, enum remus_engine_state st, int rc, const char *reason)
{
	struct daemon *d = opaque;

	(void)rc;
	(void)reason;
	d->exit_rc = st == REMUS_ENGINE_STOPPED ? 0 : 1;
	/* Held output: the guest runs on unprotected, so release it (the
	 * standby was told CLOSE and will not take over).  With QEMU gone
	 * there is nothing to remove. */
	if (d->nb && st == REMUS_ENGINE_STOPPED && !d->tearing_down) {
		d->tearing_down = true;
		remus_netbuffer_teardown(d->nb, true, on_nb_teardown, d);
		return;
	}
	finish_role(d);
}

static void on_nb_setup(void *opaque, int rc, const char *msg)
{
	struct daemon *d = opaque;

	if (rc == -ENODEV && d->nbc.ndevices == 0 && d->nb) {
		/* Discovery found no NIC: the VM has no network output to hold. */
		remus_info(LOG, "the VM has no NIC: no network output to hold");
		remus_netbuffer_free(d->nb);
		d->nb = NULL;
		rc = 0;
	}
	if (rc < 0) {
		remus_err(LOG, "cannot hold the guest's output: %s; fix it, or run with "
			  "--netbuffer off to protect without output commit", msg ? msg : strerror(-rc));
		d->exit_rc = 1;
		remus_loop_stop(d->loop, 1);
		return;
	}
	rc = remus_engine_start(d->loop, d->qmp, &d->ecfg, &d->eh, &d->engine);
	if (rc < 0) {
		remus_err(LOG, "cannot start the primary role: %s", strerror(-rc));
		d->exit_rc = 1;
		remus_loop_stop(d->loop, 1);
	}
}

/* Starts the primary role on d->qmp: the netbuffer first (its setup
 * starts the engine), or the engine at once with --netbuffer off. */
static int start_protecting(struct daemon *d)
{
	int rc;

	d->eh = (struct remus_engine_hooks){
		.epoch_done = on_epoch_done,
		.finished = on_finished,
		.barrier = on_barrier,
		.commit = on_commit,
		.standby_lost = on_standby_lost,
		.session_start = on_session_start,
		.link_msg = d->disks ? on_link_msg : NULL,
		.opaque = d,
	};
	d->tearing_down = false;
	if (d->disks)
		remus_diskrepl_set_forward(d->disks, disk_forward, disk_backlog, d);
	if (d->nb_off) {
		remus_warn(LOG, "output commit is OFF (--netbuffer off): clients may see "
			   "output of state that a failover loses");
		return remus_engine_start(d->loop, d->qmp, &d->ecfg, &d->eh, &d->engine);
	}
	rc = remus_netbuffer_new(d->loop, d->qmp, &d->nbc, &d->nb);
	if (rc == 0)
		remus_netbuffer_setup(d->nb, on_nb_setup, d);
	return rc;
}

/* ---- standby: disks on the standby's hooks ---------------------------- */

static int on_sby_session_open(void *opaque, struct remus_buf *out)
{
	struct daemon *d = opaque;

	return remus_diskrepl_put_hashes(d->disks, out);
}

static int on_sby_disk_op(void *opaque, const struct remus_repl_msg *m)
{
	struct daemon *d = opaque;

	return remus_diskrepl_standby_op(d->disks, m);
}

static int on_sby_commit(void *opaque, uint64_t epoch)
{
	struct daemon *d = opaque;

	return remus_diskrepl_standby_commit(d->disks, epoch);
}

static void on_sby_discard(void *opaque)
{
	struct daemon *d = opaque;

	remus_diskrepl_standby_discard(d->disks);
}

static void on_failover_done(void *opaque, const struct remus_failover_report *r)
{
	struct daemon *d = opaque;

	if (d->report_path) {
		struct json_object *o = remus_standby_status_json(d->standby);
		FILE *f = fopen(d->report_path, "w");

		if (f && o)
			fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		if (f)
			fclose(f);
		json_object_put(o);
	}
	if (r->rc < 0) {
		d->exit_rc = 1;
		remus_loop_stop(d->loop, 1);
	} else if (d->exit_after_failover) {
		remus_loop_stop(d->loop, 0);
	}
}

static void on_qmp_state(struct remus_qmp *q, enum remus_qmp_state st, int rc,
			 const char *err, void *opaque)
{
	struct daemon *d = opaque;

	if (st != REMUS_QMP_CLOSED)
		return;
	if (d->standby && remus_standby_get_state(d->standby) == REMUS_STANDBY_ACTIVE) {
		remus_warn(LOG, "%s", err);
		return;
	}
	remus_err(LOG, "lost the QEMU monitor: %s", err);
	d->exit_rc = 1;
	remus_loop_stop(d->loop, 1);
}

static void on_signal(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct daemon *d = opaque;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	remus_info(LOG, "signal %u: shutting down", si.ssi_signo);
	d->stopping = true;
	if (d->disks)
		remus_warn(LOG, "this remusd serves the VM's disks: the VM loses them now");
	if (!d->engine && d->nb && !d->tearing_down) {
		/* Still setting up the netbuffer: undo what it added. */
		d->tearing_down = true;
		remus_netbuffer_teardown(d->nb, true, on_nb_teardown, d);
		return;
	}
	if (d->engine && remus_engine_get_state(d->engine) != REMUS_ENGINE_FAILED &&
	    remus_engine_get_state(d->engine) != REMUS_ENGINE_STOPPED) {
		remus_engine_stop(d->engine);
		return; /* on_finished stops the loop once the guest runs */
	}
	remus_loop_stop(loop, 0);
}

/* ---- main ------------------------------------------------------------ */

enum { OPT_QMP = 256, OPT_STANDBY, OPT_INTERVAL, OPT_HEARTBEAT, OPT_MISS, OPT_NO_DEDUP,
       OPT_CTL, OPT_METRICS, OPT_LOG, OPT_INCOMING, OPT_LISTEN, OPT_VM_NAME, OPT_MANUAL,
       OPT_FENCE, OPT_ACTIVATE, OPT_REPORT, OPT_EXIT_AFTER, OPT_RECONNECT, OPT_NETBUFFER,
       OPT_NETDEV, OPT_TAP, OPT_NB_LIMIT, OPT_NB_ON_LOST, OPT_DISK, OPT_JOURNAL, OPT_HELP };

static const struct option long_opts[] = {
	{ "qmp", required_argument, NULL, OPT_QMP },
	{ "standby", required_argument, NULL, OPT_STANDBY },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
	{ "miss", required_argument, NULL, OPT_MISS },
	{ "no-dedup", no_argument, NULL, OPT_NO_DEDUP },
	{ "ctl", required_argument, NULL, OPT_CTL },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "vm-name", required_argument, NULL, OPT_VM_NAME },
	{ "manual", no_argument, NULL, OPT_MANUAL },
	{ "fence", required_argument, NULL, OPT_FENCE },
	{ "on-activate", required_argument, NULL, OPT_ACTIVATE },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "exit-after-failover", no_argument, NULL, OPT_EXIT_AFTER },
	{ "reconnect", required_argument, NULL, OPT_RECONNECT },
	{ "netbuffer", required_argument, NULL, OPT_NETBUFFER },
	{ "netdev", required_argument, NULL, OPT_NETDEV },
	{ "tap", required_argument, NULL, OPT_TAP },
	{ "nb-limit", required_argument, NULL, OPT_NB_LIMIT },
	{ "nb-on-lost", required_argument, NULL, OPT_NB_ON_LOST },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "journal", required_argument, NULL, OPT_JOURNAL },
	{ "help", no_argument, NULL, OPT_HELP },
	{ 0 },
};

/* "NAME,image=PATH,socket=PATH" into @out; the strings point into @arg,
 * which is modified (commas become NULs). */
static int parse_disk(char *arg, struct remus_diskrepl_disk *out)
{
	char *save = NULL, *tok;

	memset(out, 0, sizeof(*out));
	out->name = strtok_r(arg, ",", &save);
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (strncmp(tok, "image=", 6) == 0)
			out->image = tok + 6;
		else if (strncmp(tok, "socket=", 7) == 0)
			out->socket = tok + 7;
		else
			goto bad;
	}
	if (!out->name || !*out->name || strchr(out->name, '=') || !out->image ||
	    !*out->image || !out->socket || !*out->socket)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "remusd: --disk: expected NAME,image=PATH,socket=PATH "
		"(e.g. --disk vda,image=/var/lib/vm/vda.raw,socket=/run/remus/vda.sock)\n");
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct daemon d = { .sigfd = -1, .ecfg = { .interval_ms = 1000, .dedup = true } };
	struct remus_standby_config scfg = { 0 };
	struct remus_standby_hooks sh = { 0 };
	struct remus_diskrepl_disk disks[REMUS_REPL_MAX_DISKS];
	struct remus_diskrepl_config dcfg = { .disks = disks };
	size_t ndevices = 0;
	bool nb_kind_given = false;
	const char *qmp_path = NULL, *ctl_path = NULL, *metrics = NULL;
	char host[256] = "", lhost[256] = "";
	bool primary, have_standby = false, have_listen = false;
	enum remus_log_level lvl;
	sigset_t mask;
	int c, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "ctl") == 0) {
		if (argc < 4) {
			usage(stderr);
			return 2;
		}
		return remus_cli_ctl("remusd ctl", argv[2], argc - 3, argv + 3, stdout, stderr);
	}
	if (strcmp(argv[1], "primary") && strcmp(argv[1], "standby")) {
		fprintf(stderr, "remusd: unknown role '%s': primary, standby or ctl\n", argv[1]);
		return 2;
	}
	primary = strcmp(argv[1], "primary") == 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		unsigned v;

		switch (c) {
		case OPT_QMP: qmp_path = optarg; break;
		case OPT_STANDBY:
			if (parse_hostport("--standby", optarg, false, host, sizeof(host),
					   &d.ecfg.standby_port) < 0)
				return 2;
			have_standby = true;
			break;
		case OPT_LISTEN:
			if (parse_hostport("--listen", optarg, true, lhost, sizeof(lhost),
					   &scfg.listen_port) < 0)
				return 2;
			have_listen = true;
			break;
		case OPT_INTERVAL:
			if (parse_uint("--interval", optarg, 10, 3600000, &d.ecfg.interval_ms) < 0)
				return 2;
			break;
		case OPT_HEARTBEAT:
			if (parse_uint("--heartbeat", optarg, 10, 60000, &v) < 0)
				return 2;
			d.ecfg.heartbeat_ms = scfg.heartbeat_ms = v;
			break;
		case OPT_MISS:
			if (parse_uint("--miss", optarg, 1, 1000, &v) < 0)
				return 2;
			d.ecfg.heartbeat_miss = scfg.heartbeat_miss = v;
			break;
		case OPT_NO_DEDUP: d.ecfg.dedup = false; break;
		case OPT_RECONNECT:
			if (parse_uint("--reconnect", optarg, 10, 600000, &d.ecfg.reconnect_ms) < 0)
				return 2;
			break;
		case OPT_CTL: ctl_path = optarg; break;
		case OPT_METRICS: metrics = optarg; break;
		case OPT_LOG:
			if (remus_log_parse_level(optarg, &lvl) < 0) {
				fprintf(stderr, "remusd: --log: '%s' is not error, warn, info or debug\n",
					optarg);
				return 2;
			}
			remus_log_set_level(lvl);
			break;
		case OPT_INCOMING: scfg.incoming_path = optarg; break;
		case OPT_VM_NAME: scfg.vm_name = optarg; break;
		case OPT_MANUAL: scfg.no_auto_failover = true; break;
		case OPT_FENCE: scfg.fence_cmd = optarg; break;
		case OPT_ACTIVATE: scfg.activate_cmd = optarg; break;
		case OPT_REPORT: d.report_path = optarg; break;
		case OPT_EXIT_AFTER: d.exit_after_failover = true; break;
		case OPT_NETBUFFER:
			if (strcmp(optarg, "off") == 0) {
				d.nb_off = true;
			} else if (remus_netbuffer_kind_parse(optarg, &d.nbc.kind) < 0) {
				fprintf(stderr, "remusd: --netbuffer: '%s' is not qemu, plug or off\n",
					optarg);
				return 2;
			}
			nb_kind_given = true;
			break;
		case OPT_NETDEV:
		case OPT_TAP:
			if (ndevices == MAX_NB_DEVICES) {
				fprintf(stderr, "remusd: at most %d --netdev/--tap\n", MAX_NB_DEVICES);
				return 2;
			}
			if (c == OPT_TAP && !nb_kind_given)
				d.nbc.kind = REMUS_NETBUFFER_PLUG;
			d.nb_devices[ndevices++] = optarg;
			break;
		case OPT_NB_LIMIT:
			if (parse_uint("--nb-limit", optarg, 65536, 1u << 30, &v) < 0)
				return 2;
			d.nbc.epoch_limit_bytes = v;
			break;
		case OPT_NB_ON_LOST:
			if (strcmp(optarg, "release") == 0) {
				d.nbc.on_lost = REMUS_NETBUFFER_LOST_RELEASE;
			} else if (strcmp(optarg, "hold") == 0) {
				d.nbc.on_lost = REMUS_NETBUFFER_LOST_HOLD;
			} else {
				fprintf(stderr, "remusd: --nb-on-lost: '%s' is not release or hold\n",
					optarg);
				return 2;
			}
			break;
		case OPT_DISK:
			if (dcfg.ndisks == REMUS_REPL_MAX_DISKS) {
				fprintf(stderr, "remusd: at most %u --disk\n", REMUS_REPL_MAX_DISKS);
				return 2;
			}
			if (parse_disk(optarg, &disks[dcfg.ndisks]) < 0)
				return 2;
			dcfg.ndisks++;
			break;
		case OPT_JOURNAL: dcfg.journal = optarg; break;
		case OPT_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "remusd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!qmp_path || (primary && !have_standby) ||
	    (!primary && (!have_listen || !scfg.incoming_path))) {
		fprintf(stderr, "remusd %s: missing %s\n", argv[1],
			!qmp_path ? "--qmp PATH" : primary ? "--standby HOST:PORT"
			: !have_listen ? "--listen [HOST:]PORT" : "--incoming PATH");
		return 2;
	}
	if (primary && dcfg.journal) {
		fprintf(stderr, "remusd primary: --journal is an option of the standby\n");
		return 2;
	}
	if (d.nbc.kind == REMUS_NETBUFFER_PLUG && !d.nb_off && ndevices == 0) {
		fprintf(stderr, "remusd primary: --netbuffer plug needs the guest's tap: --tap IF\n");
		return 2;
	}
	d.nbc.devices = ndevices ? d.nb_devices : NULL;
	d.nbc.ndevices = ndevices;
	dcfg.standby = !primary;
	snprintf(d.standby_host, sizeof(d.standby_host), "%s", host);
	d.ecfg.standby_host = d.standby_host;
	scfg.listen_host = *lhost ? lhost : NULL;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	rc = remus_loop_new(&d.loop);
	if (rc < 0)
		goto out;
	d.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d.sigfd < 0 || remus_loop_add_fd(d.loop, d.sigfd, REMUS_EV_READ, on_signal, &d) < 0) {
		rc = -errno;
		goto out;
	}
	if (metrics) {
		d.metrics = fopen(metrics, "a");
		if (!d.metrics) {
			rc = -errno;
			remus_err(LOG, "cannot open metrics file %s: %s", metrics, strerror(errno));
			goto out;
		}
	}
	/* Disks first: the QEMU opens its NBD sockets when it starts, before
	 * its monitor answers. */
	if (dcfg.ndisks) {
		rc = remus_diskrepl_new(d.loop, &dcfg, &d.disks);
		if (rc < 0) {
			remus_err(LOG, "cannot serve the disks: %s", strerror(-rc));
			goto out;
		}
	}
	rc = remus_qmp_connect(d.loop, qmp_path, NULL, on_qmp_state, &d, &d.qmp);
	if (rc == 0)
		rc = remus_qmp_wait_ready(d.qmp, 30000);
	if (rc < 0) {
		remus_err(LOG, "cannot use the QEMU monitor at %s: %s", qmp_path,
			  d.qmp ? remus_qmp_last_error(d.qmp) : strerror(-rc));
		goto out;
	}
	if (primary) {
		rc = start_protecting(&d);
	} else {
		sh.failover_done = on_failover_done;
		if (d.disks) {
			sh.session_open = on_sby_session_open;
			sh.disk_op = on_sby_disk_op;
			sh.commit = on_sby_commit;
			sh.discard = on_sby_discard;
		}
		sh.opaque = &d;
		rc = remus_standby_start(d.loop, d.qmp, &scfg, &sh, &d.standby);
	}
	if (rc < 0) {
		remus_err(LOG, "cannot start the %s role: %s", argv[1], strerror(-rc));
		goto out;
	}
	if (ctl_path) {
		rc = remus_ctl_listen(d.loop, ctl_path, handle_ctl, &d, &d.ctl);
		if (rc < 0) {
			remus_err(LOG, "cannot listen on control socket %s: %s", ctl_path,
				  strerror(-rc));
			goto out;
		}
	}
	rc = remus_loop_run(d.loop);
	rc = rc < 0 ? rc : d.exit_rc ? -EIO : 0;
out:
	remus_ctl_free(d.ctl);
	remus_engine_free(d.engine);
	remus_standby_free(d.standby);
	remus_netbuffer_free(d.nb);
	remus_diskrepl_free(d.disks);
	remus_qmp_free(d.qmp);
	if (d.metrics)
		fclose(d.metrics);
	if (d.sigfd >= 0)
		close(d.sigfd);
	remus_loop_free(d.loop);
	return rc < 0 ? 1 : 0;
}
