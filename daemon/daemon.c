// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What both roles of remusd share: start-up, signals and shutdown.
 *
 * Start-up runs in this order, and each step that fails says what it
 * was doing, on which option's object, and what to do about it:
 *
 *   0. the TLS credentials are loaded (--tls-psk, --tls-x509-dir): no
 *      TLS and no --insecure is refused, saying how to set one up
 *   1. the control socket's path is checked (before the wait for QEMU,
 *      so a typo costs no timeout); SIGTERM/SIGINT are blocked and read
 *      from a signalfd on the loop
 *   2. the metrics file (--metrics) is opened
 *   3. the disks (--disk) are served: QEMU opens its NBD sockets when it
 *      starts, before its monitor answers, so remusd starts first
 *   4. the QEMU monitor (--qmp) is connected (up to --qmp-wait ms for the
 *      socket, default 10 s; 0: no limit, for remusd serve, which makes
 *      the socket only once the disks' copy onto step 3's exports ended,
 *      and kills the child if that copy fails)
 *   5. the role starts (primary.c / standby.c)
 *   6. the control socket (--ctl) listens: a client that sees it can ask
 *      for the role's status at once
 *
 * SIGTERM/SIGINT end the daemon: the primary first resumes the guest,
 * releases held output and tells the standby it unprotects.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"
#include "daemon/daemon.h"
#include "dirty/dirty.h"
#include "qmp/qmp.h"

#define LOG "remusd"

/* How long start-up waits for the QEMU monitor to answer. */
#define QMP_READY_TIMEOUT_MS 30000

static void on_qmp_state(struct remus_qmp *q, enum remus_qmp_state st, int rc,
			 const char *err, void *opaque)
{
	struct remusd *d = opaque;

	/* Before the role runs, start-up reports the failure itself. */
	if (st != REMUS_QMP_CLOSED || !d->running)
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
	struct remusd *d = opaque;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	remus_info(LOG, "signal %u: shutting down", si.ssi_signo);
	d->stopping = true;
	if (d->disks)
		remus_warn(LOG, "this remusd serves the VM's disks: the VM loses them now");
	if (remusd_primary_stop(d))
		return;
	remus_loop_stop(loop, 0);
}

/* SIGPIPE ignored (a peer that goes away is an error return, not a
 * death); SIGTERM/SIGINT blocked and delivered through d->sigfd. */
static int watch_signals(struct remusd *d)
{
	sigset_t mask;
	int rc;

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		rc = -errno;
		remus_err(LOG, "cannot ignore SIGPIPE: %s", strerror(errno));
		return rc;
	}
	if (sigemptyset(&mask) < 0 || sigaddset(&mask, SIGTERM) < 0 ||
	    sigaddset(&mask, SIGINT) < 0 || sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		rc = -errno;
		remus_err(LOG, "cannot block SIGTERM and SIGINT: %s", strerror(errno));
		return rc;
	}
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sigfd < 0) {
		rc = -errno;
		remus_err(LOG, "cannot create a signalfd for SIGTERM and SIGINT: %s%s",
			  strerror(errno), errno == EMFILE || errno == ENFILE
			  ? " (raise the open-file limit: ulimit -n)" : "");
		return rc;
	}
	rc = remus_loop_add_fd(d->loop, d->sigfd, REMUS_EV_READ, on_signal, d);
	if (rc < 0)
		remus_err(LOG, "cannot watch the signalfd on the event loop: %s", strerror(-rc));
	return rc;
}

/* The control socket is created only once the role runs (step 6); a path
 * that can never be a socket is refused before the wait for QEMU. */
static int check_ctl_path(const char *path)
{
	struct sockaddr_un sa;
	char copy[PATH_MAX];
	const char *dir;
	struct stat st;
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		remus_err(LOG, "cannot use the control socket %s (--ctl): longer than %zu bytes, "
			  "the limit of a unix socket path; give a shorter path", path,
			  sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	snprintf(copy, sizeof(copy), "%s", path);
	dir = dirname(copy);
	if (stat(dir, &st) < 0)
		rc = -errno;
	else if (!S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	else if (access(dir, W_OK | X_OK) < 0)
		rc = -errno;
	else
		return 0;
	remus_err(LOG, "cannot use the control socket %s (--ctl): directory %s: %s; "
		  "create it, or give a path in a writable directory", path, dir, strerror(-rc));
	return rc;
}

/* Histogram buckets, in seconds: around the default pause budget (300
 * ms) for pauses, and up to the heartbeat timeouts for commits. */
static const double pause_bounds[] = { 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
				       0.3, 0.5, 1, 2, 5 };
static const double commit_bounds[] = { 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
					0.5, 1, 2, 5, 10 };
#define NBOUNDS(a) (sizeof(a) / sizeof((a)[0]))

/* --ctl-group: a name or a number. */
static int group_id(const char *group, gid_t *gid)
{
	struct group *g = getgrnam(group);
	char *end;
	unsigned long n;

	if (g) {
		*gid = g->gr_gid;
		return 0;
	}
	errno = 0;
	n = strtoul(group, &end, 10);
	if (errno || *end || end == group) {
		remus_err(LOG, "--ctl-group: no group '%s' on this host; give an existing "
			  "group's name or number", group);
		return -ENOENT;
	}
	*gid = (gid_t)n;
	return 0;
}

static void release(struct remusd *d)
{
	remus_prom_hist_release(&d->pause_hist);
	remus_prom_hist_release(&d->commit_hist);
	remus_ctl_free(d->ctl);
	remus_engine_free(d->engine);
	remus_standby_free(d->standby);
	remus_netbuffer_free(d->nb);
	remus_diskrepl_free(d->disks);
	remus_qmp_free(d->qmp);
	/* After the engine: QEMU may still map the file (see open_tracker). */
	remus_dirty_close(d->dirty);
	d->dirty = NULL;
	remus_tls_creds_free(d->tls_client);
	remus_tls_creds_free(d->tls_server);
	if (d->metrics)
		fclose(d->metrics);
	if (d->sigfd >= 0)
		close(d->sigfd);
	remus_loop_free(d->loop);
}

/* Step 0: the links between hosts are TLS unless --insecure says not. */
static int load_tls(struct remusd *d)
{
	const struct remusd_options *o = d->opt;
	bool primary = o->mode == REMUSD_PRIMARY;
	char err[512];
	int rc;

	if (o->insecure) {
		remus_warn(LOG, "--insecure: the replication link runs without TLS; anyone "
			   "who reaches it can read the guest's memory, feed the standby a VM "
			   "or make it take over");
		return 0;
	}
	if (!o->tls.psk_file && !o->tls.x509_dir) {
		remus_err(LOG, "the replication link needs TLS: give --tls-psk FILE (make one "
			  "with 'remusctl keygen FILE' (or 'remusd keygen FILE'), copy it to the "
			  "other host, and give both "
			  "remusd the same file) or --tls-x509-dir DIR (libvirt's PKI layout: "
			  "/etc/pki/libvirt with the CA in /etc/pki/CA/cacert.pem, as for "
			  "libvirt's TLS migration); --insecure runs without TLS");
		return -EINVAL;
	}
	rc = remus_tls_creds_new(&o->tls, primary ? REMUS_TLS_CLIENT : REMUS_TLS_SERVER,
				 primary ? &d->tls_client : &d->tls_server, err, sizeof(err));
	if (rc < 0) {
		remus_err(LOG, "TLS: %s", err);
		return rc;
	}
	if (!primary && remus_tls_creds_new(&o->tls, REMUS_TLS_CLIENT, &d->tls_client,
					    d->tls_client_err, sizeof(d->tls_client_err)) < 0)
		remus_info(LOG, "TLS: no client credentials for a protect after a takeover: %s",
			   d->tls_client_err);
	remus_info(LOG, "TLS: %s", remus_tls_creds_describe(primary ? d->tls_client
								  : d->tls_server));
	return 0;
}

/*
 * Engine v2's dirty tracker: guest RAM as O->ram_dir/guest.ram, served
 * from this process.  It must be there before QEMU starts (QEMU opens the
 * file at start-up), so it is opened before remusd waits for the monitor.
 * A tracker that cannot open leaves engine v1 (--engine auto) or stops
 * remusd (--engine v2); either way QEMU cannot start on the file.
 */
static int open_tracker(struct remusd *d)
{
	const struct remusd_options *o = d->opt;
	struct remus_dirty_opts dopts = {
		.kind = REMUS_DIRTY_FUSE,
		.size = (uint64_t)o->ram_size_mib << 20,
		.ram_fd = -1,
		.mount_dir = o->ram_dir,
		.raise_bdi_limits = true,
	};
	int rc;

	if (o->mode != REMUSD_PRIMARY || !o->ram_dir)
		return 0;
	rc = remus_dirty_open(&dopts, &d->dirty);
	if (rc < 0) {
		snprintf(d->engine_why, sizeof(d->engine_why), "the dirty tracker cannot serve "
			 "%s/guest.ram: %s (needs root, /dev/fuse and an empty directory)",
			 o->ram_dir, strerror(-rc));
		if (o->engine.kind == REMUS_ENGINE_V2) {
			remus_err(LOG, "--engine v2: %s", d->engine_why);
			return rc;
		}
		remus_warn(LOG, "%s; engine v1", d->engine_why);
		d->ecfg.kind_why = d->engine_why;
		return 0;
	}
	remus_info(LOG, "guest RAM file %s (%u MiB) served by the dirty tracker (%s); start "
		   "QEMU with -object memory-backend-file,id=%s,size=%uM,mem-path=%s,share=on "
		   "-machine memory-backend=%s", remus_dirty_ram_path(d->dirty), o->ram_size_mib,
		   remus_dirty_kind_name(remus_dirty_kind(d->dirty)),
		   o->engine.ram_backend ? o->engine.ram_backend : "mem", o->ram_size_mib,
		   remus_dirty_ram_path(d->dirty),
		   o->engine.ram_backend ? o->engine.ram_backend : "mem");
	d->ecfg.dirty = d->dirty;
	return 0;
}

FILE *remusd_open_output(const char *path, const char *how)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (how[0] == 'a' ? O_APPEND : O_TRUNC);
	int fd = open(path, flags, 0644), e;
	FILE *f;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, how);
	if (!f) {
		e = errno;
		close(fd);
		errno = e;
	}
	return f;
}

int remusd_write_output(const char *path, const char *text)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd = -1, dfd = -1, rc;

	/* The temporary file sits beside @path so that the rename stays in
	 * one filesystem; the rename replaces a symlink at @path, never
	 * writes through it. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp) ||
	    (size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* mkostemp makes it 0600; the report is for everyone to read. */
	if (fchmod(fd, 0644) < 0) {
		rc = -errno;
		goto out;
	}
	rc = remus_write_all(fd, text, strlen(text));
	if (rc < 0)
		goto out;
	if (fsync(fd) < 0) {
		rc = -errno;
		goto out;
	}
	rc = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (rc < 0)
		goto out;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto out;
	}
	tmp[0] = '\0';
	/* The rename is durable once the directory is; a failure here
	 * leaves the new report in place, so it is not an error. */
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp[0])
		unlink(tmp);
	return rc;
}

int remusd_run(const struct remusd_options *o)
{
	struct remusd d = { .opt = o, .sigfd = -1, .ecfg = o->engine };
	const char *role = o->mode == REMUSD_PRIMARY ? "primary" : "standby";
	int rc;

	if (o->log_level_given)
		remus_log_set_level(o->log_level);
	if (o->name)
		remus_log_set_name(o->name);
	snprintf(d.standby_host, sizeof(d.standby_host), "%s", o->standby_host);
	d.ecfg.standby_host = d.standby_host;
	rc = load_tls(&d);
	if (rc < 0)
		goto out;
	d.ecfg.tls = d.tls_client;
	d.ecfg.insecure = o->insecure;
	if (o->ctl_path && (rc = check_ctl_path(o->ctl_path)) < 0)
		goto out;
	rc = remus_loop_new(&d.loop);
	if (rc < 0) {
		remus_err(LOG, "cannot create the event loop: %s", strerror(-rc));
		goto out;
	}
	/* Both roles: a standby becomes a primary by a protect request. */
	if ((rc = remus_prom_hist_init(&d.pause_hist, pause_bounds, NBOUNDS(pause_bounds))) < 0 ||
	    (rc = remus_prom_hist_init(&d.commit_hist, commit_bounds,
				       NBOUNDS(commit_bounds))) < 0) {
		remus_err(LOG, "cannot make the pause histograms: %s", strerror(-rc));
		goto out;
	}
	rc = watch_signals(&d);
	if (rc < 0)
		goto out;
	if (o->metrics_path) {
		d.metrics = remusd_open_output(o->metrics_path, "a");
		if (!d.metrics) {
			rc = -errno;
			remus_err(LOG, "cannot open the metrics file %s (--metrics): %s; give a "
				  "writable file, or no --metrics", o->metrics_path, strerror(errno));
			goto out;
		}
	}
	if (o->disks.ndisks) {
		rc = remus_diskrepl_new(d.loop, &o->disks, &d.disks);
		if (rc < 0) {
			/* diskrepl said which disk and file. */
			remus_err(LOG, "cannot serve the disks (--disk): %s; see the message above",
				  strerror(-rc));
			goto out;
		}
	}
	rc = open_tracker(&d);
	if (rc < 0)
		goto out;
	{
		/* UINT_MAX ms: 49 days, as good as no limit. */
		struct remus_qmp_opts qo = { .connect_timeout_ms = !o->qmp_wait_given
			? REMUS_QMP_DEFAULT_CONNECT_TIMEOUT_MS : o->qmp_wait_ms ? o->qmp_wait_ms
			: UINT_MAX };
		unsigned ready_ms = qo.connect_timeout_ms > UINT_MAX - QMP_READY_TIMEOUT_MS
				    ? UINT_MAX : qo.connect_timeout_ms + QMP_READY_TIMEOUT_MS;

		if (o->qmp_wait_given && !o->qmp_wait_ms)
			remus_info(LOG, "waiting for the QEMU monitor at %s with no time limit "
				   "(--qmp-wait 0)", o->qmp_path);
		rc = remus_qmp_connect(d.loop, o->qmp_path, &qo, on_qmp_state, &d, &d.qmp);
		if (rc == 0)
			rc = remus_qmp_wait_ready(d.qmp, ready_ms);
		if (rc < 0) {
			remus_err(LOG, "cannot use the QEMU monitor at %s (--qmp): %s; start QEMU "
				  "with -qmp unix:%s,server=on,wait=off (remusd waits %u s for it; "
				  "--qmp-wait)", o->qmp_path,
				  d.qmp ? remus_qmp_last_error(d.qmp) : strerror(-rc), o->qmp_path,
				  qo.connect_timeout_ms / 1000);
			goto out;
		}
	}
	rc = o->mode == REMUSD_PRIMARY ? remusd_primary_start(&d) : remusd_standby_start(&d);
	if (rc < 0) {
		remus_err(LOG, "cannot start the %s role: %s", role, strerror(-rc));
		goto out;
	}
	d.running = true;
	if (o->ctl_path) {
		/* Root, remusd's own user, or --ctl-group: a control socket
		 * can stop protection or force a takeover. */
		struct remus_ctl_opts co = { .mode = 0600, .peer_check = true };

		if (o->ctl_group) {
			rc = group_id(o->ctl_group, &co.gid);
			if (rc < 0)
				goto out;
			co.use_gid = true;
			co.mode = 0660;
		}
		rc = remus_ctl_listen_opts(d.loop, o->ctl_path, &co, remusd_ctl_handle, &d,
					   &d.ctl);
		if (rc < 0) {
			remus_err(LOG, "cannot listen on the control socket %s (--ctl): %s; give a "
				  "path in a writable directory where no other remusd listens",
				  o->ctl_path, strerror(-rc));
			goto out;
		}
	}
	rc = remus_loop_run(d.loop);
	if (rc < 0)
		remus_err(LOG, "the event loop failed: %s", strerror(-rc));
	rc = rc < 0 ? rc : d.exit_rc ? -EIO : 0;
out:
	release(&d);
	return rc < 0 ? 1 : 0;
}
