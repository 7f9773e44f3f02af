// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd's primary role: the epoch engine (controller/engine.h) with its
 * hooks wired to output commit (netbuffer/netbuffer.h) and the disks
 * (diskrepl/diskrepl.h).  Start-up, in the order it runs:
 *
 *   remusd_primary_start -> netbuffer setup (QMP) -> on_nb_setup
 *                        -> remus_engine_start -> epochs...
 *
 * Per epoch the engine calls barrier (output of epoch N is closed),
 * commit (the standby acknowledged N: release it) and epoch_done
 * (metrics line: one per committed epoch, when acknowledged, and one per
 * checkpoint that stopped the guest and was not committed, "committed"
 * false, so that every pause is in the file).  A session starts with session_start (hold output
 * again; resync the disks, then remus_engine_session_ready) and ends with
 * standby_lost.  When protection ends (unprotect, QEMU gone) the held
 * output is released first (netbuffer teardown), then finish_role decides
 * whether the daemon stays to serve the VM's disks.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/loop.h"
#include "daemon/daemon.h"
#include "dirty/dirty.h"

#define LOG "remusd"

static void on_epoch_done(void *opaque, const struct remus_epoch_metrics *m)
{
	struct remusd *d = opaque;
	char nb[256] = "";

	/* Once per checkpoint: committed ones when acknowledged, abandoned
	 * ones at cont (controller/engine.h). */
	if (m->commit_ms < 0 && !m->abandoned)
		return;
	remus_prom_hist_observe(&d->pause_hist, m->pause_ms / 1000.0);
	d->pause_win[d->npause++ % REMUSD_WINDOW] = m->pause_ms;
	if (!m->abandoned) {
		uint64_t back = (uint64_t)(m->commit_ms + m->complete_ms);
		uint64_t now = remus_now_ms();

		remus_prom_hist_observe(&d->commit_hist, m->commit_ms / 1000.0);
		d->commit_win[d->ncommit++ % REMUSD_WINDOW] = m->commit_ms;
		/* The guest was captured when it stopped: about complete_ms
		 * before the COMMIT_REQ, commit_ms before the ack (now, or
		 * just before: an ack that came before cont is told at cont). */
		d->last_capture_ms = now > back ? now - back : 1;
	}
	if (!d->metrics)
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
		"\"link_backlog\":%llu,\"committed\":%s,\"pause_budget_ms\":%u,"
		"\"epoch_ms\":%.3f,\"cycle_ms\":%.3f,\"converge_wait_ms\":%.3f,"
		"\"predicted_pause_ms\":%.3f,"
		"\"loop_max_stall_ms\":%.3f,\"engine\":\"%s\",\"dirty_pages\":%llu,"
		"\"collect_ms\":%.3f,\"drains\":%u,\"drain_pages\":%llu,\"drain_ms\":%.3f,"
		"\"drain_every_ms\":%u%s}\n",
		(unsigned long long)m->epoch, m->pause_ms, m->complete_ms, m->commit_ms,
		(unsigned long long)m->local_bytes, (unsigned long long)m->sent_bytes,
		(unsigned long long)m->device_bytes, (unsigned long long)m->pages_seen,
		(unsigned long long)m->pages_changed, (unsigned long long)m->zero_seen,
		(unsigned long long)m->zero_changed, (unsigned long long)m->disk_ops,
		(unsigned long long)m->disk_bytes, (unsigned long long)m->link_backlog,
		m->abandoned ? "false" : "true", m->pause_budget_ms, m->epoch_ms, m->cycle_ms,
		m->converge_wait_ms, m->predicted_pause_ms > 1e9 ? -1.0 : m->predicted_pause_ms,
		remus_loop_max_stall_ms(d->loop), m->v2 ? "v2" : "v1",
		(unsigned long long)m->dirty_pages, m->collect_ms, m->drains,
		(unsigned long long)m->drain_pages, m->drain_ms, m->drain_every_ms, nb);
	/* A full disk must not stop checkpoints; say it once. */
	if ((fflush(d->metrics) != 0 || ferror(d->metrics)) && !d->metrics_failed) {
		d->metrics_failed = true;
		remus_warn(LOG, "cannot write the metrics file %s (--metrics): %s; epochs go on "
			   "without their metrics lines", d->opt->metrics_path, strerror(errno));
	}
}

/* ---- netbuffer and disks on the engine's hooks -------------------------- */

static int on_barrier(void *opaque, uint64_t epoch)
{
	struct remusd *d = opaque;

	return d->nb ? remus_netbuffer_barrier(d->nb, epoch) : 0;
}

static void on_commit(void *opaque, uint64_t epoch)
{
	struct remusd *d = opaque;

	if (d->nb)
		remus_netbuffer_commit(d->nb, epoch);
}

static void on_standby_lost(void *opaque, const char *reason)
{
	struct remusd *d = opaque;

	(void)reason;
	if (d->nb)
		remus_netbuffer_standby_lost(d->nb);
	if (d->disks)
		remus_diskrepl_session_end(d->disks);
}

static void on_resync_done(void *opaque, int rc, const char *why)
{
	struct remusd *d = opaque;

	remus_engine_session_ready(d->engine, rc, why);
}

static int on_session_start(void *opaque, uint64_t first_epoch)
{
	struct remusd *d = opaque;

	(void)first_epoch;
	if (d->nb)
		remus_netbuffer_protect(d->nb);
	if (d->disks)
		return remus_diskrepl_resync_start(d->disks, on_resync_done, d);
	return 0;
}

static int on_link_msg(void *opaque, const struct remus_repl_msg *m)
{
	struct remusd *d = opaque;

	return d->disks ? remus_diskrepl_hashes_msg(d->disks, m) : -EPROTO;
}

static int disk_forward(void *opaque, uint16_t disk, enum remus_repl_disk_op op, uint64_t off,
			uint32_t len, const void *data)
{
	struct remusd *d = opaque;

	if (!d->engine)
		return -ENOTCONN;
	return remus_engine_disk_op(d->engine, disk, op, off, len, data);
}

static size_t disk_backlog(void *opaque)
{
	struct remusd *d = opaque;

	return d->engine ? remus_engine_link_backlog(d->engine) : 0;
}

/* ---- the end of protection --------------------------------------------- */

/* Protection ended (unprotect, or the QEMU is gone).  With disks the
 * daemon stays: the VM's disks are served from here; unless it was asked
 * to stop or the QEMU is gone. */
static void finish_role(struct remusd *d)
{
	if (d->dirty && !d->stopping && d->exit_rc == 0) {
		/* The guest's RAM is our file: leaving would pull it from
		 * under QEMU (SIGBUS on its next uncached page). */
		remus_warn(LOG, "unprotected; still serving the guest's RAM file %s (stop this "
			   "remusd only after the VM)", remus_dirty_ram_path(d->dirty));
		remus_netbuffer_free(d->nb);
		d->nb = NULL;
		return;
	}
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
	struct remusd *d = opaque;

	if (rc < 0)
		remus_warn(LOG, "netbuffer teardown: %s", msg ? msg : strerror(-rc));
	finish_role(d);
}

static void on_finished(void *opaque, enum remus_engine_state st, int rc, const char *reason)
{
	struct remusd *d = opaque;

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

/* ---- start-up ------------------------------------------------------------ */

static void on_nb_setup(void *opaque, int rc, const char *msg)
{
	struct remusd *d = opaque;

	if (rc == -ENODEV && d->opt->nb.ndevices == 0 && d->nb) {
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
		remus_err(LOG, "cannot start the epoch engine towards the standby %s:%u: %s",
			  d->ecfg.standby_host, d->ecfg.standby_port, strerror(-rc));
		d->exit_rc = 1;
		remus_loop_stop(d->loop, 1);
	}
}

int remusd_primary_start(struct remusd *d)
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
	if (d->opt->nb_off) {
		remus_warn(LOG, "output commit is OFF (--netbuffer off): clients may see "
			   "output of state that a failover loses");
		rc = remus_engine_start(d->loop, d->qmp, &d->ecfg, &d->eh, &d->engine);
		if (rc < 0)
			remus_err(LOG, "cannot start the epoch engine towards the standby %s:%u: %s",
				  d->ecfg.standby_host, d->ecfg.standby_port, strerror(-rc));
		return rc;
	}
	rc = remus_netbuffer_new(d->loop, d->qmp, &d->opt->nb, &d->nb);
	if (rc < 0) {
		remus_err(LOG, "cannot set up output commit (--netbuffer %s): %s; check the "
			  "--netdev/--tap names, or run with --netbuffer off",
			  remus_netbuffer_kind_name(d->opt->nb.kind), strerror(-rc));
		return rc;
	}
	remus_netbuffer_setup(d->nb, on_nb_setup, d);
	return 0;
}

bool remusd_primary_stop(struct remusd *d)
{
	if (!d->engine && d->nb && !d->tearing_down) {
		/* Still setting up the netbuffer: undo what it added. */
		d->tearing_down = true;
		remus_netbuffer_teardown(d->nb, true, on_nb_teardown, d);
		return true;
	}
	if (d->engine && remus_engine_get_state(d->engine) != REMUS_ENGINE_FAILED &&
	    remus_engine_get_state(d->engine) != REMUS_ENGINE_STOPPED) {
		remus_engine_stop(d->engine);
		return true; /* on_finished stops the loop once the guest runs */
	}
	return false;
}
