// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The host daemon's libvirt operations (hostd/virtops.h) on virt/: one
 * connection (virt/virt.h) whose blocking calls run on its workers and
 * complete on the loop, the domain helpers of virt/domain.h inside those
 * calls, and one QMP proxy (virt/qmp_proxy.h) per protected domain.
 *
 * Each operation is one job: a struct with what the worker reads and
 * writes, a work function (worker thread: may block), a done function
 * (loop: calls the hostd callback), freed by virt.  hostd's callbacks
 * are never called after remus_hostd_virt_libvirt_free(): virt cancels
 * the done of every job owned by this table.
 */
#include "hostd/virtops_libvirt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/log.h"
#include "virt/domain.h"
#include "virt/qmp_proxy.h"
#include "virt/virt.h"

#define LOG "virt"
/* A child serves its NBD exports within this of its start. */
#define NBD_WAIT_MS 15000
#define RESUME_TIMEOUT_MS 30000
/* A block copy fails when libvirt's progress stands still this long; one
 * that moves may take as long as the disk needs.  Under a bandwidth
 * (copy_rate) QEMU's mirror issues up to its buffer (16 MiB) at once and
 * then sleeps until the rate allows more, with cur standing still (seen
 * here: 16 MiB at 1 MiB/s sat at 100% for 16 s): the allowance grows by
 * twice that sleep. */
#define COPY_STALL_MS 60000
#define MIRROR_BURST_BYTES (16ull << 20)
/* Progress goes to the loop at most this often per disk. */
#define PROGRESS_EVERY_MS 500

struct job;

struct lv {
	struct remus_loop *loop;
	struct remus_virt *v;
	char uri[1024];
	uint64_t copy_bps;              /* block copies' bandwidth; 0: none */
	struct job *copies;             /* jobs with a progress mailbox */
};

enum kind { J_INSPECT, J_INSPECT_OURS, J_CHECK, J_CREATE, J_DESTROY, J_RESUME, J_RECOVER,
	    J_EXISTS, J_MOVE, J_RELEASE };

/* One progress report, worker -> loop. */
struct progress_msg {
	char target[32];
	uint64_t bytes, total;
};

struct job {
	enum kind kind;
	struct lv *lv;
	char name[REMUS_HOSTD_DOMAIN_MAX];
	char uuid[REMUS_HOSTD_UUID_LEN + 1];
	char *xml;                      /* create: the primary's live XML */
	char incoming[REMUS_HOSTD_PATH_MAX + 8];
	bool recorded;                  /* check, create: this host recorded name + uuid */
	struct remus_hostd_nbd nbd[REMUS_HOSTD_MAX_DISKS];
	unsigned nnbd;
	struct remus_hostd_release rel[REMUS_HOSTD_MAX_DISKS];
	unsigned nrel;
	/* Block copies: the loop's side of the mailbox (closed at done or
	 * when the table goes) and the worker's reference. */
	struct remus_virt_mbox *mb, *mb_worker;
	remus_hostd_virt_progress_cb *progress;
	long long last_post_ms;
	struct job *next_copy;
	struct remus_hostd_domain_info info;
	struct remus_virt_error err;
	remus_hostd_virt_done_cb *done;
	remus_hostd_virt_info_cb *info_cb;
	void *opaque;
};

static void copy_unlink(struct job *j)
{
	struct job **p;

	remus_virt_mbox_close(j->mb);
	j->mb = NULL;
	for (p = &j->lv->copies; j->lv && *p; p = &(*p)->next_copy)
		if (*p == j) {
			*p = j->next_copy;
			break;
		}
}

static void job_free(void *opaque)
{
	struct job *j = opaque;

	if (j->lv)
		copy_unlink(j);
	remus_virt_mbox_unref(j->mb_worker);
	free(j->xml);
	free(j->info.xml);
	free(j);
}

static void job_done(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct job *j = opaque;
	const char *code = j->err.code[0] ? j->err.code : rc < 0 ? "internal" : NULL;
	const char *msg = j->err.message[0] ? j->err.message : err;

	if (j->lv)
		copy_unlink(j);      /* no progress after done */
	if (j->kind == J_INSPECT || j->kind == J_INSPECT_OURS)
		j->info_cb(j->opaque, rc, code, msg, rc == 0 ? &j->info : NULL);
	else
		j->done(j->opaque, rc, code, msg);
}

/* ---- work, on a worker ------------------------------------------------------ */

static int work_inspect(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	struct remus_virt_domain d;
	virDomainBlockInfo bi;
	virDomainPtr dom = NULL;
	size_t i;
	int rc;

	remus_virt_domain_init(&d);
	if ((rc = remus_virt_lookup_running(conn, j->name, &dom, &j->err)) < 0 ||
	    (rc = remus_virt_check_versions(conn, dom, &j->err)) < 0 ||
	    (rc = remus_virt_live_xml(dom, &j->info.xml, &j->err)) < 0 ||
	    (rc = remus_virt_domain_parse(j->info.xml, strlen(j->info.xml), &d, &j->err)) < 0 ||
	    (j->kind == J_INSPECT && (rc = remus_virt_domain_check(&d, &j->err)) < 0))
		goto out;
	snprintf(j->info.uuid, sizeof(j->info.uuid), "%s", d.uuid);
	for (i = 0; i < d.ndisks; i++) {
		struct remus_virt_disk *k = &d.disks[i];
		struct remus_hostd_disk *o;

		bool ours = j->kind == J_INSPECT_OURS && k->type && strcmp(k->type, "network") == 0 &&
			    k->protocol && strcmp(k->protocol, "nbd") == 0;

		if (!ours && (!k->type || strcmp(k->type, "file") != 0 || !k->source))
			continue;   /* an empty cdrom: nothing to replicate */
		if (j->info.ndisks == REMUS_HOSTD_MAX_DISKS) {
			rc = remus_virt_error_set(&j->err, -E2BIG, "bad-disk", "domain %s has more "
						  "than %d disks; remusd replicates at most %d",
						  j->name, REMUS_HOSTD_MAX_DISKS,
						  REMUS_HOSTD_MAX_DISKS);
			goto out;
		}
		if (virDomainGetBlockInfo(dom, k->target, &bi, 0) < 0) {
			rc = remus_virt_error_set(&j->err, -EIO, "internal", "disk %s of domain %s: "
						  "cannot read its size: %s", k->target, j->name,
						  virGetLastErrorMessage());
			goto out;
		}
		o = &j->info.disks[j->info.ndisks++];
		snprintf(o->target, sizeof(o->target), "%s", k->target);
		snprintf(o->format, sizeof(o->format), "%s", ours ? "raw" : k->format ? k->format
			 : "raw");
		snprintf(o->source, sizeof(o->source), "%s", k->source ? k->source : "");
		o->size = bi.capacity;
	}
	rc = 0;
out:
	remus_virt_domain_release(&d);
	if (dom)
		virDomainFree(dom);
	(void)errp;
	return rc;
}

/* hostd/virtops.h exists: a lookup, nothing else.  Only libvirt's "no
 * such domain" is -ENOENT: a caller forgets a record on it. */
static int work_exists(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	virDomainPtr dom = virDomainLookupByName(conn, j->name);

	(void)errp;
	if (dom) {
		virDomainFree(dom);
		return 0;
	}
	if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
		return remus_virt_error_set(&j->err, -ENOENT, "no-domain", "no domain %s on this "
					    "host (virsh list --all)", j->name);
	return remus_virt_error_set(&j->err, -EIO, "internal", "cannot look up domain %s: %s",
				    j->name, virGetLastErrorMessage());
}

static long long mono_ms(void);

/* Waits (on the worker) for the child's NBD sockets: QEMU opens them
 * when the domain starts or the copy begins. */
static int wait_sockets(struct job *j)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	struct stat st;
	unsigned i, waited = 0;

	for (i = 0; i < j->nnbd; i++) {
		while (stat(j->nbd[i].socket, &st) < 0 || !S_ISSOCK(st.st_mode)) {
			if (waited >= NBD_WAIT_MS)
				return remus_virt_error_set(&j->err, -ETIMEDOUT, "internal", "domain "
							    "%s: remusd's NBD export %s did not "
							    "appear in %d s; see the log of its "
							    "child", j->name, j->nbd[i].socket,
							    NBD_WAIT_MS / 1000);
			nanosleep(&ts, NULL);
			waited += 50;
		}
	}
	return 0;
}

/* Refuses before anything is made (hostd/virtops.h check_standby). */
static int work_check(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	bool over;

	(void)errp;
	return remus_virt_check_standby_slot(conn, j->name, j->uuid, j->incoming, j->recorded,
					     &over, &j->err);
}

static int work_create(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	struct remus_virt_nbd nbd[REMUS_HOSTD_MAX_DISKS];
	struct remus_virt_standby_spec spec = { .incoming = j->incoming, .disks = nbd,
						.ndisks = j->nnbd };
	struct remus_virt_domain d;
	virDomainPtr dom = NULL;
	char *sxml = NULL;
	long long t0, t1, t2;
	bool over = false;
	unsigned i;
	int rc;

	remus_virt_domain_init(&d);
	for (i = 0; i < j->nnbd; i++)
		nbd[i] = (struct remus_virt_nbd){ .target = j->nbd[i].target,
						  .socket = j->nbd[i].socket,
						  .export = j->nbd[i].target };
	t0 = mono_ms();
	if ((rc = remus_virt_domain_parse(j->xml, strlen(j->xml), &d, &j->err)) < 0 ||
	    (rc = remus_virt_check_standby_slot(conn, j->name, j->uuid, j->incoming, j->recorded,
						&over, &j->err)) < 0 ||
	    (rc = remus_virt_check_host_nics(conn, NULL, &d, &j->err)) < 0 ||
	    (rc = remus_virt_standby_xml(j->xml, strlen(j->xml), &spec, &sxml, &j->err)) < 0)
		goto out;
	t1 = mono_ms();
	if ((rc = wait_sockets(j)) < 0)
		goto out;
	t2 = mono_ms();
	if ((rc = remus_virt_create_paused(conn, sxml, over, &dom, &j->err)) < 0)
		goto out;
	/* What a create-standby waits for, should it come near its peer's
	 * deadline (hostd.c, cfg.create_standby_ms). */
	remus_info(LOG, "%s: standby domain made in %lld ms (checks %lld, NBD exports %lld, "
		   "libvirt create %lld)", j->name, mono_ms() - t0, t1 - t0, t2 - t1,
		   mono_ms() - t2);
	rc = 0;
out:
	remus_virt_domain_release(&d);
	free(sxml);
	if (dom)
		virDomainFree(dom);
	(void)errp;
	return rc;
}

/* The domain @name, or NULL (j->err says why: not there). */
static virDomainPtr lookup(virConnectPtr conn, struct job *j)
{
	virDomainPtr dom = virDomainLookupByName(conn, j->name);

	if (!dom)
		remus_virt_error_set(&j->err, -ENOENT, "no-domain", "no domain %s on this host "
				     "(virsh list --all)", j->name);
	return dom;
}

static int work_destroy(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	virDomainPtr dom = virDomainLookupByName(conn, j->name);
	int rc;

	if (!dom)
		return 0;    /* gone already */
	rc = remus_virt_destroy(dom, &j->err);
	virDomainFree(dom);
	(void)errp;
	return rc;
}

static int work_resume(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	virDomainPtr dom = lookup(conn, j);
	int rc;

	if (!dom)
		return -ENOENT;
	rc = remus_virt_resume_when_migrated(dom, RESUME_TIMEOUT_MS, &j->err);
	virDomainFree(dom);
	(void)errp;
	return rc;
}

/* After a remusd serve restart: the domain must exist and run (or wait
 * as a standby); a guest a checkpoint left stopped (paused, reason
 * unknown: QMP stop through the monitor) is resumed, one the user
 * paused is not. */
static int work_recover(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	virDomainPtr dom = lookup(conn, j);
	int state = 0, reason = 0, rc = 0;

	if (!dom)
		return -ENOENT;
	if (virDomainGetState(dom, &state, &reason, 0) < 0) {
		rc = remus_virt_error_set(&j->err, -EIO, "internal", "domain %s: %s", j->name,
					  virGetLastErrorMessage());
	} else if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED) {
		rc = remus_virt_error_set(&j->err, -EAGAIN, "not-running", "domain %s is not "
					  "running here", j->name);
	} else if (state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_UNKNOWN) {
		if (virDomainResume(dom) < 0)
			rc = remus_virt_error_set(&j->err, -EIO, "internal", "domain %s was left "
						  "paused by a checkpoint and cannot be resumed: %s",
						  j->name, virGetLastErrorMessage());
	}
	virDomainFree(dom);
	(void)errp;
	return rc;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* remus_virt_copy's progress (worker): to the loop, at most every
 * PROGRESS_EVERY_MS, and always when the copy is level. */
static void post_progress(const char *target, uint64_t bytes, uint64_t total, void *opaque)
{
	struct job *j = opaque;
	struct progress_msg *m;
	long long now = mono_ms();

	if (!j->mb_worker || (now - j->last_post_ms < PROGRESS_EVERY_MS && bytes != total))
		return;
	j->last_post_ms = now;
	m = calloc(1, sizeof(*m));
	if (!m)
		return;
	snprintf(m->target, sizeof(m->target), "%s", target);
	m->bytes = bytes;
	m->total = total;
	remus_virt_mbox_post(j->mb_worker, m);
}

/* On the loop, while the job runs (the mailbox closes at its done). */
static void on_progress(void *msg, void *opaque)
{
	struct job *j = opaque;
	struct progress_msg *m = msg;

	if (j->progress)
		j->progress(j->opaque, m->target, m->bytes, m->total);
}

/* One disk onto @dest_xml, following libvirt's progress. */
static int copy_disk(virDomainPtr dom, struct job *j, const char *target, const char *dest_xml,
		     bool reuse)
{
	uint64_t bps = j->lv->copy_bps;
	uint64_t burst_ms = bps ? 2 * MIRROR_BURST_BYTES * 1000 / bps : 0;
	struct remus_virt_copy c = { .target = target, .dest_xml = dest_xml,
				     .reuse_external = reuse, .bandwidth = bps,
				     .progress = post_progress, .opaque = j };

	c.stall_ms = COPY_STALL_MS + (int)(burst_ms > 3600000 ? 3600000 : burst_ms);

	return remus_virt_block_copy(dom, &c, &j->err);
}

/* A protect whose copy failed on disk @failed: the @moved disks before it
 * are on remusd's exports already and go back to the files they were on
 * (@orig: the live XML read before the first copy), the same live block
 * copy unprotect makes, while the child still serves those exports.  So a
 * failed protect leaves the domain as it found it: every disk on its own
 * file, live and persistent (libvirt points the persistent definition
 * back at the file at this pivot, LIBVIRT facts in docs/ARCHITECTURE.md).
 * j->err gets the copy's error and what became of the others.  Returns
 * @rc, or -EBUSY when a disk could not go back: it stays on its export,
 * whose child must then go on serving it (hostd/virtops.h). */
static int roll_back(virDomainPtr dom, struct job *j, const struct remus_virt_domain *orig,
		     unsigned moved, const char *failed, int rc)
{
	struct remus_virt_error first = j->err;
	char back[256] = "", stuck[256] = "", why[512] = "";
	char *dest = NULL;
	unsigned i;

	for (i = 0; i < moved; i++) {
		const char *t = j->nbd[i].target;
		const struct remus_virt_disk *k = remus_virt_disk_of(orig, t);
		int r = -ENOENT;

		memset(&j->err, 0, sizeof(j->err));
		if (k && k->source) {
			r = remus_virt_file_disk_xml(k->source, k->format ? k->format : "raw", &dest);
			if (r == 0)
				r = copy_disk(dom, j, t, dest, true);
			free(dest);
			dest = NULL;
		}
		if (r == 0) {
			remus_info(LOG, "%s: protect failed on disk %s; disk %s is back on %s", j->name,
				   failed, t, k->source);
			snprintf(back + strlen(back), sizeof(back) - strlen(back), "%s%s",
				 back[0] ? ", " : "", t);
			continue;
		}
		remus_warn(LOG, "%s: disk %s cannot go back to its file: %s", j->name, t,
			   j->err.message[0] ? j->err.message : "it was not a file disk");
		snprintf(stuck + strlen(stuck), sizeof(stuck) - strlen(stuck), "%s%s",
			 stuck[0] ? ", " : "", t);
		if (!why[0])
			snprintf(why, sizeof(why), "%s", j->err.message[0] ? j->err.message
				 : "its file is not known");
	}
	memset(&j->err, 0, sizeof(j->err));
	if (stuck[0]) {
		remus_virt_error_set(&j->err, -EBUSY, first.code, "%s; disk(s) %s could not go "
				     "back to their files (%s) and run on remusd's exports, which "
				     "stay served: remusctl unprotect %s moves them back",
				     first.message, stuck, why, j->name);
		return -EBUSY;
	}
	remus_virt_error_set(&j->err, rc, first.code, "%s; disk(s) %s, moved before it, are "
			     "back on their files: the domain is as it was", first.message,
			     back[0] ? back : "(none)");
	return rc;
}

/* protect: each disk onto its export.  A failure on one disk moves the
 * ones before it back (roll_back), so the domain is left as it was. */
static int work_move(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	virDomainPtr dom = lookup(conn, j);
	struct remus_virt_domain orig;
	char *xml = NULL, *dest = NULL;
	unsigned i, moved = 0;
	int rc;

	if (!dom)
		return -ENOENT;
	remus_virt_domain_init(&orig);
	if ((rc = remus_virt_live_xml(dom, &xml, &j->err)) < 0 ||
	    (rc = remus_virt_domain_parse(xml, strlen(xml), &orig, &j->err)) < 0 ||
	    (rc = wait_sockets(j)) < 0)
		goto out;
	for (i = 0; i < j->nnbd; i++) {
		rc = remus_virt_nbd_disk_xml(j->nbd[i].socket, j->nbd[i].target, &dest);
		if (rc < 0)
			remus_virt_error_set(&j->err, rc, "internal", "domain %s: no NBD disk XML "
					     "for disk %s", j->name, j->nbd[i].target);
		else
			rc = copy_disk(dom, j, j->nbd[i].target, dest, true);
		free(dest);
		dest = NULL;
		if (rc < 0)
			break;
		moved++;
	}
	if (rc < 0 && moved)
		rc = roll_back(dom, j, &orig, moved, j->nbd[i].target, rc);
out:
	remus_virt_domain_release(&orig);
	free(xml);
	virDomainFree(dom);
	(void)errp;
	return rc;
}

/* The live XML again, after the copies: the caller stops the child that
 * serves the exports next, so no disk of @j may be left on one, whatever
 * a copy reported (remus_virt_disks_on_files). */
static int released_check(virDomainPtr dom, struct job *j)
{
	const char *targets[REMUS_HOSTD_MAX_DISKS];
	struct remus_virt_domain d;
	char *xml = NULL;
	int rc;

	for (unsigned i = 0; i < j->nrel; i++)
		targets[i] = j->rel[i].target;
	remus_virt_domain_init(&d);
	if ((rc = remus_virt_live_xml(dom, &xml, &j->err)) == 0 &&
	    (rc = remus_virt_domain_parse(xml, strlen(xml), &d, &j->err)) == 0)
		rc = remus_virt_disks_on_files(&d, j->name, targets, j->nrel, &j->err);
	remus_virt_domain_release(&d);
	free(xml);
	return rc;
}

/* unprotect: each disk on remusd's export back to its file.  The live
 * XML says where each disk is now: a file already (a protection whose
 * move failed, or a second unprotect after a partial one) is left. */
static int work_release(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	virDomainPtr dom = lookup(conn, j);
	struct remus_virt_domain d;
	char *xml = NULL, *dest = NULL;
	struct stat st;
	unsigned i;
	int rc;

	if (!dom)
		return -ENOENT;
	remus_virt_domain_init(&d);
	if ((rc = remus_virt_live_xml(dom, &xml, &j->err)) < 0 ||
	    (rc = remus_virt_domain_parse(xml, strlen(xml), &d, &j->err)) < 0)
		goto out;
	for (i = 0; i < j->nrel; i++) {
		const struct remus_hostd_release *r = &j->rel[i];
		const struct remus_virt_disk *k = remus_virt_disk_of(&d, r->target);
		bool reuse;

		if (!k) {
			rc = remus_virt_error_set(&j->err, -ENOENT, "bad-disk", "domain %s has no "
						  "disk %s any more (detached?); its data is in "
						  "remusd's image of it, %s's export %s", j->name,
						  r->target, r->target, r->socket);
			goto out;
		}
		if (k->type && strcmp(k->type, "file") == 0) {
			remus_info(LOG, "%s: disk %s is a file already (%s): left as it is", j->name,
				   r->target, k->source ? k->source : "?");
			continue;
		}
		reuse = stat(r->path, &st) == 0;
		if (reuse && !S_ISREG(st.st_mode)) {
			rc = remus_virt_error_set(&j->err, -EINVAL, "bad-disk", "domain %s: disk %s "
						  "would go back to %s, which is not a plain file; "
						  "move it away", j->name, r->target, r->path);
			goto out;
		}
		remus_info(LOG, "%s: moving disk %s from remusd's export back to %s%s", j->name,
			   r->target, r->path, reuse ? " (written over in place)" : " (a new file)");
		rc = remus_virt_file_disk_xml(r->path, r->format, &dest);
		if (rc < 0) {
			remus_virt_error_set(&j->err, rc, "bad-disk", "domain %s: disk %s: format "
					     "%s cannot be written back", j->name, r->target,
					     r->format);
			goto out;
		}
		rc = copy_disk(dom, j, r->target, dest, reuse);
		free(dest);
		dest = NULL;
		if (rc < 0)
			goto out;
	}
	rc = released_check(dom, j);
out:
	remus_virt_domain_release(&d);
	free(xml);
	virDomainFree(dom);
	(void)errp;
	return rc;
}

/* ---- the table --------------------------------------------------------------- */

static int submit(struct lv *l, struct job *j, remus_virt_work_fn *work)
{
	int rc = remus_virt_call_owned(l->v, l, work, job_done, job_free, j);

	if (rc < 0)
		job_free(j);
	return rc;
}

static struct job *job_new(enum kind kind, const char *name, remus_hostd_virt_done_cb *cb,
			   void *opaque)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->kind = kind;
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->done = cb;
	j->opaque = opaque;
	return j;
}

static int op_inspect(void *impl, const char *name, remus_hostd_virt_info_cb *cb, void *opaque)
{
	struct job *j = job_new(J_INSPECT, name, NULL, opaque);

	if (!j)
		return -ENOMEM;
	j->info_cb = cb;
	return submit(impl, j, work_inspect);
}

static int op_inspect_ours(void *impl, const char *name, remus_hostd_virt_info_cb *cb,
			   void *opaque)
{
	struct job *j = job_new(J_INSPECT_OURS, name, NULL, opaque);

	if (!j)
		return -ENOMEM;
	j->info_cb = cb;
	return submit(impl, j, work_inspect);
}

static int op_check_standby(void *impl, const char *name, const char *uuid, const char *incoming,
			    bool recorded, remus_hostd_virt_done_cb *cb, void *opaque)
{
	struct job *j = job_new(J_CHECK, name, cb, opaque);

	if (!j)
		return -ENOMEM;
	snprintf(j->uuid, sizeof(j->uuid), "%s", uuid);
	snprintf(j->incoming, sizeof(j->incoming), "unix:%s", incoming);
	j->recorded = recorded;
	return submit(impl, j, work_check);
}

static int op_create_standby(void *impl, const char *name, const char *uuid, const char *xml,
			     const char *incoming, bool recorded,
			     const struct remus_hostd_nbd *nbd, unsigned nnbd,
			     remus_hostd_virt_done_cb *cb, void *opaque)
{
	struct job *j = job_new(J_CREATE, name, cb, opaque);

	if (!j)
		return -ENOMEM;
	j->recorded = recorded;
	snprintf(j->uuid, sizeof(j->uuid), "%s", uuid);
	snprintf(j->incoming, sizeof(j->incoming), "unix:%s", incoming);
	j->xml = strdup(xml);
	j->nnbd = nnbd > REMUS_HOSTD_MAX_DISKS ? REMUS_HOSTD_MAX_DISKS : nnbd;
	memcpy(j->nbd, nbd, j->nnbd * sizeof(*nbd));
	if (!j->xml) {
		job_free(j);
		return -ENOMEM;
	}
	return submit(impl, j, work_create);
}

static int op_simple(void *impl, enum kind kind, const char *name, remus_hostd_virt_done_cb *cb,
		     void *opaque, remus_virt_work_fn *work)
{
	struct job *j = job_new(kind, name, cb, opaque);

	return j ? submit(impl, j, work) : -ENOMEM;
}

static int op_destroy(void *impl, const char *name, remus_hostd_virt_done_cb *cb, void *opaque)
{
	return op_simple(impl, J_DESTROY, name, cb, opaque, work_destroy);
}

static int op_resume(void *impl, const char *name, remus_hostd_virt_done_cb *cb, void *opaque)
{
	return op_simple(impl, J_RESUME, name, cb, opaque, work_resume);
}

static int op_recover(void *impl, const char *name, remus_hostd_virt_done_cb *cb, void *opaque)
{
	return op_simple(impl, J_RECOVER, name, cb, opaque, work_recover);
}

static int op_exists(void *impl, const char *name, remus_hostd_virt_done_cb *cb, void *opaque)
{
	return op_simple(impl, J_EXISTS, name, cb, opaque, work_exists);
}

/* A copy job: its progress mailbox, known to the table until done. */
static int submit_copy(struct lv *l, struct job *j, remus_hostd_virt_progress_cb *progress,
		       remus_virt_work_fn *work)
{
	int rc;

	j->progress = progress;
	rc = remus_virt_mbox_new(l->v, on_progress, NULL, j, &j->mb);
	if (rc < 0) {
		job_free(j);
		return rc;
	}
	j->mb_worker = remus_virt_mbox_ref(j->mb);
	j->lv = l;
	j->next_copy = l->copies;
	l->copies = j;
	return submit(l, j, work);
}

static int op_move(void *impl, const char *name, const struct remus_hostd_nbd *nbd,
		   unsigned nnbd, remus_hostd_virt_progress_cb *progress,
		   remus_hostd_virt_done_cb *cb, void *opaque)
{
	struct job *j = job_new(J_MOVE, name, cb, opaque);

	if (!j)
		return -ENOMEM;
	j->nnbd = nnbd > REMUS_HOSTD_MAX_DISKS ? REMUS_HOSTD_MAX_DISKS : nnbd;
	memcpy(j->nbd, nbd, j->nnbd * sizeof(*nbd));
	return submit_copy(impl, j, progress, work_move);
}

static int op_release(void *impl, const char *name, const struct remus_hostd_release *rel,
		      unsigned nrel, remus_hostd_virt_progress_cb *progress,
		      remus_hostd_virt_done_cb *cb, void *opaque)
{
	struct job *j = job_new(J_RELEASE, name, cb, opaque);

	if (!j)
		return -ENOMEM;
	j->nrel = nrel > REMUS_HOSTD_MAX_DISKS ? REMUS_HOSTD_MAX_DISKS : nrel;
	memcpy(j->rel, rel, j->nrel * sizeof(*rel));
	return submit_copy(impl, j, progress, work_release);
}

static void on_proxy_state(struct remus_qmp_proxy *p, enum remus_qmp_proxy_state state, int rc,
			   const char *err, void *opaque)
{
	if (state == REMUS_QMP_PROXY_DEAD)
		remus_warn(LOG, "%s", err);
}

static int op_proxy_start(void *impl, const char *name, const char *path, void **handle)
{
	struct lv *l = impl;
	struct remus_qmp_proxy *p = NULL;
	int rc = remus_qmp_proxy_new(l->v, name, path, NULL, on_proxy_state, NULL, &p);

	*handle = p;
	return rc;
}

static void op_proxy_stop(void *impl, void *handle)
{
	remus_qmp_proxy_free(handle);
}

static void op_free(void *impl)
{
	struct lv *l = impl;

	/* Mailboxes close before the connection goes (virt.h). */
	while (l->copies)
		copy_unlink(l->copies);
	remus_virt_cancel_owner(l->v, l);
	remus_virt_free(l->v);
	free(l);
}

static const struct remus_hostd_virt_ops libvirt_ops = {
	.inspect = op_inspect, .inspect_protected = op_inspect_ours,
	.check_standby = op_check_standby, .create_standby = op_create_standby, .destroy = op_destroy,
	.resume_after_takeover = op_resume, .recover = op_recover, .exists = op_exists,
	.move_disks = op_move, .release_disks = op_release,
	.proxy_start = op_proxy_start, .proxy_stop = op_proxy_stop, .free = op_free,
};

static void on_open(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct lv *l = opaque;

	/* Success is logged by virt/. */
	if (rc < 0)
		remus_err(LOG, "%s; protections cannot start or resume until libvirt answers "
			  "(check connect = %s)", err, l->uri);
}

int remus_hostd_virt_libvirt_new(struct remus_loop *loop, const char *uri, uint64_t copy_bps,
				 const struct remus_hostd_virt_ops **ops, void **impl)
{
	struct lv *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	l->loop = loop;
	l->copy_bps = copy_bps;
	snprintf(l->uri, sizeof(l->uri), "%s", uri);
	rc = remus_virt_open(loop, uri, NULL, on_open, l, &l->v);
	if (rc < 0) {
		free(l);
		return rc;
	}
	*ops = &libvirt_ops;
	*impl = l;
	return 0;
}
