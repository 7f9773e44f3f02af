// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd's control requests, one line each (common/ctl.h carries them):
 *
 *   status             the role's status object, plus "netbuffer"/"disks",
 *                      the loop's longest stall (loop_max_stall_ms) and,
 *                      on the primary, its pause/commit histograms and
 *                      remusctl(8)'s pause_p50_ms, pause_p99_ms,
 *                      commit_p50_ms, lag_ms, held_frames
 *   set-interval MS    primary: the epoch length from the next epoch on (and
 *                      of a later protect; a standby that took over: of its
 *                      protect)
 *   set-pause-budget MS  primary: the longest pause from the next checkpoint on
 *                      (the same)
 *   failover           standby: take over now
 *   unprotect          primary: stop protecting, the guest runs here
 *   protect HOST:PORT  protect (again) from this host: after unprotect, or
 *                      on a standby that took over (the role switch)
 *
 * Every answer is one JSON line; errors are {"ok":false,"error":...} and
 * say what to send where instead.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "common/log.h"
#include "common/loop.h"
#include "daemon/daemon.h"

#define LOG "remusd"

static char *ok_reply(void)
{
	return strdup("{\"ok\":true}");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The @q quantile (nearest rank) of the last @n samples of ring @win, or
 * a JSON null without samples. */
static struct json_object *quantile(const double *win, uint64_t n, double q)
{
	double sorted[REMUSD_WINDOW], v;
	size_t k = n < REMUSD_WINDOW ? (size_t)n : REMUSD_WINDOW, rank;
	char text[32];

	if (k == 0)
		return NULL;
	memcpy(sorted, win, k * sizeof(*sorted));
	qsort(sorted, k, sizeof(*sorted), cmp_double);
	rank = (size_t)(q * (double)k + 0.999999);
	v = sorted[rank ? rank - 1 : 0];
	snprintf(text, sizeof(text), "%.3f", v); /* no 17-digit tails */
	return json_object_new_double_s(v, text);
}

/* The primary's keys of remusctl(8)'s status that only the daemon sees:
 * pause_p50_ms, pause_p99_ms, commit_p50_ms (the last REMUSD_WINDOW
 * checkpoints), lag_ms (how long ago the state the standby holds was the
 * guest's) and held_frames (output held now).  0 or -ENOMEM. */
static int add_window_keys(struct remusd *d, struct json_object *o)
{
	struct remus_netbuffer_stats st;
	struct json_object *v[5];
	static const char *const keys[5] = { "pause_p50_ms", "pause_p99_ms", "commit_p50_ms",
					     "lag_ms", "held_frames" };
	uint64_t now = remus_now_ms();

	v[0] = quantile(d->pause_win, d->npause, 0.5);
	v[1] = quantile(d->pause_win, d->npause, 0.99);
	v[2] = quantile(d->commit_win, d->ncommit, 0.5);
	v[3] = d->last_capture_ms ? json_object_new_int64((int64_t)(now > d->last_capture_ms ?
						now - d->last_capture_ms : 0)) : NULL;
	v[4] = NULL;
	if (d->nb) {
		remus_netbuffer_get_stats(d->nb, &st);
		v[4] = json_object_new_int64((int64_t)st.held_frames);
	}
	for (int i = 0; i < 5; i++)
		if (json_object_object_add(o, keys[i], v[i]) < 0) {
			for (; i < 5; i++)
				json_object_put(v[i]);
			return -ENOMEM;
		}
	return 0;
}

/* The role's status object, with "netbuffer", "disks",
 * "loop_max_stall_ms" (common/loop.h) and, on a primary, the histograms
 * "pause_seconds" and "commit_seconds" (common/prom.h's JSON form) added;
 * one JSON line (owned: free()), or NULL on ENOMEM. */
static char *status_json(struct remusd *d)
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
	if (d->engine && add_window_keys(d, o) < 0)
		goto out;
	if (d->engine) {
		part = remus_prom_hist_to_json(&d->pause_hist);
		if (!part || json_object_object_add(o, "pause_seconds", part) < 0) {
			json_object_put(part);
			goto out;
		}
		part = remus_prom_hist_to_json(&d->commit_hist);
		if (!part || json_object_object_add(o, "commit_seconds", part) < 0) {
			json_object_put(part);
			goto out;
		}
	}
	part = json_object_new_double(remus_loop_max_stall_ms(d->loop));
	if (!part || json_object_object_add(o, "loop_max_stall_ms", part) < 0) {
		json_object_put(part);
		goto out;
	}
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(o);
	return s;
}

/*
 * "protect HOST:PORT": protection (again) from this host.  On a primary
 * whose protection was stopped (unprotect), and on a standby that took
 * over (the role switch: the guest runs here now and the old primary's
 * host becomes the standby; its disk images are resynced by extent
 * hashes, so an intact old image costs only what changed).
 */
static char *ctl_protect(struct remusd *d, const char *arg)
{
	char host[REMUSD_HOST_MAX], err[256];
	uint16_t port;
	int rc;

	if (remusd_parse_hostport("protect", arg, false, host, sizeof(host), &port,
				  err, sizeof(err)) < 0)
		return remus_ctl_error("%s: give the HOST:PORT of a standby remusd's --listen",
				       err);
	if (d->engine && remus_engine_get_state(d->engine) != REMUS_ENGINE_STOPPED)
		return remus_ctl_error("protect: already protecting (state %s); unprotect first",
				       remus_engine_state_name(remus_engine_get_state(d->engine)));
	if (d->standby && remus_standby_get_state(d->standby) != REMUS_STANDBY_ACTIVE)
		return remus_ctl_error("protect: this is a standby whose guest does not run "
				       "here (state %s); fail over first",
				       remus_standby_state_name(remus_standby_get_state(d->standby)));
	if (!d->tls_client && !d->opt->insecure)
		return remus_ctl_error("protect: no TLS client credentials on this host: %s",
				       d->tls_client_err);
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
	rc = remusd_primary_start(d);
	if (rc < 0)
		return remus_ctl_error("protect: cannot start: %s", strerror(-rc));
	remus_info(LOG, "protecting from this host now, standby %s:%u", host, port);
	return ok_reply();
}

/* set-interval and set-pause-budget apply to the engine, or to the next
 * one: while protect sets up the output commit (the engine starts after
 * it), or on a standby that took over (its protect starts one).  A
 * standby still waiting for checkpoints has none to set. */
static bool engine_or_next(const struct remusd *d)
{
	return d->engine || !d->standby ||
	       remus_standby_get_state(d->standby) == REMUS_STANDBY_ACTIVE;
}

char *remusd_ctl_handle(void *opaque, const char *req)
{
	struct remusd *d = opaque;
	char cmd[32] = "", arg[64] = "";
	unsigned v;
	int rc;

	if (sscanf(req, "%31s %63s", cmd, arg) < 1)
		return remus_ctl_error("empty request: try status, set-interval MS, "
				       "set-pause-budget MS, failover, protect HOST:PORT or "
				       "unprotect");
	if (strcmp(cmd, "status") == 0)
		return status_json(d);
	if (strcmp(cmd, "set-interval") == 0) {
		if (!engine_or_next(d))
			return remus_ctl_error("set-interval: this remusd is the standby; "
					       "send it to the primary");
		if (sscanf(arg, "%u", &v) != 1 || v < 10 || v > 3600000 ||
		    (d->engine && remus_engine_set_interval(d->engine, v) < 0))
			return remus_ctl_error("set-interval: '%s' is not an interval in "
					       "10..3600000 ms", arg);
		/* --interval of a later "protect" too (a re-protection after
		 * unprotect must not go back to the start's interval), and of
		 * the engine a protect is still setting up */
		d->ecfg.interval_ms = v;
		return ok_reply();
	}
	if (strcmp(cmd, "set-pause-budget") == 0) {
		if (!engine_or_next(d))
			return remus_ctl_error("set-pause-budget: this remusd is the standby; "
					       "send it to the primary");
		if (sscanf(arg, "%u", &v) != 1 || v < 1 || v > 60000 ||
		    (d->engine && remus_engine_set_pause_budget(d->engine, v) < 0))
			return remus_ctl_error("set-pause-budget: '%s' is not a pause budget in "
					       "1..60000 ms", arg);
		/* --pause-budget of a later "protect" too */
		d->ecfg.pause_budget_ms = v;
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
			       "set-pause-budget MS, failover, protect HOST:PORT or unprotect",
			       cmd);
}
