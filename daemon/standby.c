// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd's standby role: the receiver and takeover (failover/standby.h)
 * with its hooks wired to the disks (diskrepl/diskrepl.h).  A session
 * opens with the disks' extent hashes (session_open); each epoch's disk
 * writes are journaled (disk_op) and applied when the epoch commits
 * (commit), or dropped when the primary is lost mid-epoch (discard).
 * After a takeover (failover_done) the report file is written, and with
 * --exit-after-failover the daemon ends; otherwise it stays, serving the
 * guest's disks, and `protect HOST:PORT` (ctl.c) starts the primary role
 * here.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/loop.h"
#include "daemon/daemon.h"

#define LOG "remusd"

static int on_sby_session_open(void *opaque, struct remus_buf *out)
{
	struct remusd *d = opaque;

	return remus_diskrepl_put_hashes(d->disks, out);
}

static int on_sby_disk_op(void *opaque, const struct remus_repl_msg *m)
{
	struct remusd *d = opaque;

	return remus_diskrepl_standby_op(d->disks, m);
}

static int on_sby_commit(void *opaque, uint64_t epoch)
{
	struct remusd *d = opaque;

	return remus_diskrepl_standby_commit(d->disks, epoch);
}

static void on_sby_discard(void *opaque)
{
	struct remusd *d = opaque;

	remus_diskrepl_standby_discard(d->disks);
}

/* --report FILE: the standby's status after the takeover, one JSON line. */
static void write_report(struct remusd *d)
{
	const char *path = d->opt->report_path;
	struct json_object *o = remus_standby_status_json(d->standby);
	char *text = NULL;
	int rc;

	if (!o || asprintf(&text, "%s\n",
			   json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0) {
		text = NULL;
		remus_err(LOG, "cannot write the failover report %s (--report): out of memory",
			  path);
		goto out;
	}
	/* Atomic: a reader (remus-chaos, a script polling for the file)
	 * never sees half a report, and a symlink at the path is replaced. */
	rc = remusd_write_output(path, text);
	if (rc < 0)
		remus_err(LOG, "cannot write the failover report %s (--report): %s", path,
			  strerror(-rc));
out:
	free(text);
	json_object_put(o);
}

static void on_failover_done(void *opaque, const struct remus_failover_report *r)
{
	struct remusd *d = opaque;

	if (d->opt->report_path)
		write_report(d);
	if (r->rc < 0) {
		d->exit_rc = 1;
		remus_loop_stop(d->loop, 1);
	} else if (d->opt->exit_after_failover) {
		remus_loop_stop(d->loop, 0);
	}
}

int remusd_standby_start(struct remusd *d)
{
	struct remus_standby_hooks sh = {
		.failover_done = on_failover_done,
		.opaque = d,
	};
	struct remus_standby_config cfg = d->opt->standby;
	int rc;

	if (d->disks) {
		sh.session_open = on_sby_session_open;
		sh.disk_op = on_sby_disk_op;
		sh.commit = on_sby_commit;
		sh.discard = on_sby_discard;
	}
	cfg.tls = d->tls_server;
	cfg.insecure = d->opt->insecure;
	rc = remus_standby_start(d->loop, d->qmp, &cfg, &sh, &d->standby);
	if (rc < 0)
		remus_err(LOG, "cannot start the standby role (--listen %s%s%u, --incoming %s): %s",
			  d->opt->listen_host, *d->opt->listen_host ? ":" : "",
			  d->opt->standby.listen_port, d->opt->standby.incoming_path,
			  strerror(-rc));
	return rc;
}
