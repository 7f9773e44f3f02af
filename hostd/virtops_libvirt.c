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
#include <strings.h>
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

struct lv {
	struct remus_loop *loop;
	struct remus_virt *v;
	char uri[1024];
};

enum kind { J_INSPECT, J_INSPECT_OURS, J_CREATE, J_DESTROY, J_RESUME, J_RECOVER, J_MOVE };

struct job {
	enum kind kind;
	char name[REMUS_HOSTD_DOMAIN_MAX];
	char uuid[REMUS_HOSTD_UUID_LEN + 1];
	char *xml;                      /* create: the primary's live XML */
	char incoming[REMUS_HOSTD_PATH_MAX + 8];
	struct remus_hostd_nbd nbd[REMUS_HOSTD_MAX_DISKS];
	unsigned nnbd;
	struct remus_hostd_domain_info info;
	struct remus_virt_error err;
	remus_hostd_virt_done_cb *done;
	remus_hostd_virt_info_cb *info_cb;
	void *opaque;
};

static void job_free(void *opaque)
{
	struct job *j = opaque;

	free(j->xml);
	free(j->info.xml);
	free(j);
}

static void job_done(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct job *j = opaque;
	const char *code = j->err.code[0] ? j->err.code : rc < 0 ? "internal" : NULL;
	const char *msg = j->err.message[0] ? j->err.message : err;

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

/* True when @name is defined here, shut off, with @uuid: the same domain's
 * own definition (the old primary's host after a failover keeps it).  A
 * paused standby created over it runs as its live instance, and the
 * definition is left as the user made it. */
static bool ours_inactive(virConnectPtr conn, const char *name, const char *uuid)
{
	virDomainPtr d = virDomainLookupByName(conn, name);
	char u[VIR_UUID_STRING_BUFLEN];
	bool ours = false;

	if (!d)
		return false;
	if (virDomainGetUUIDString(d, u) == 0 && strcasecmp(u, uuid) == 0 &&
	    virDomainIsActive(d) == 0)
		ours = true;
	virDomainFree(d);
	return ours;
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
	unsigned i;
	int rc;

	remus_virt_domain_init(&d);
	for (i = 0; i < j->nnbd; i++)
		nbd[i] = (struct remus_virt_nbd){ .target = j->nbd[i].target,
						  .socket = j->nbd[i].socket,
						  .export = j->nbd[i].target };
	if ((rc = remus_virt_domain_parse(j->xml, strlen(j->xml), &d, &j->err)) < 0 ||
	    (!ours_inactive(conn, j->name, j->uuid) &&
	     (rc = remus_virt_check_absent(conn, j->name, j->uuid, &j->err)) < 0) ||
	    (rc = remus_virt_check_host_nics(conn, NULL, &d, &j->err)) < 0 ||
	    (rc = remus_virt_standby_xml(j->xml, strlen(j->xml), &spec, &sxml, &j->err)) < 0 ||
	    (rc = wait_sockets(j)) < 0 ||
	    (rc = remus_virt_create_paused(conn, sxml, &dom, &j->err)) < 0)
		goto out;
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

static int work_move(virConnectPtr conn, void *opaque, char **errp)
{
	struct job *j = opaque;
	virDomainPtr dom = lookup(conn, j);
	char *dest = NULL;
	unsigned i;
	int rc = 0;

	if (!dom)
		return -ENOENT;
	rc = wait_sockets(j);
	for (i = 0; rc == 0 && i < j->nnbd; i++) {
		struct remus_virt_copy c = { .target = j->nbd[i].target, .reuse_external = true };

		rc = remus_virt_nbd_disk_xml(j->nbd[i].socket, j->nbd[i].target, &dest);
		if (rc == 0) {
			c.dest_xml = dest;
			rc = remus_virt_block_copy(dom, &c, &j->err);
		}
		free(dest);
		dest = NULL;
	}
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

static int op_create_standby(void *impl, const char *name, const char *uuid, const char *xml,
			     const char *incoming, const struct remus_hostd_nbd *nbd,
			     unsigned nnbd, remus_hostd_virt_done_cb *cb, void *opaque)
{
	struct job *j = job_new(J_CREATE, name, cb, opaque);

	if (!j)
		return -ENOMEM;
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

static int op_move(void *impl, const char *name, const struct remus_hostd_nbd *nbd,
		   unsigned nnbd, remus_hostd_virt_done_cb *cb, void *opaque)
{
	struct job *j = job_new(J_MOVE, name, cb, opaque);

	if (!j)
		return -ENOMEM;
	j->nnbd = nnbd > REMUS_HOSTD_MAX_DISKS ? REMUS_HOSTD_MAX_DISKS : nnbd;
	memcpy(j->nbd, nbd, j->nnbd * sizeof(*nbd));
	return submit(impl, j, work_move);
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

	remus_virt_cancel_owner(l->v, l);
	remus_virt_free(l->v);
	free(l);
}

static const struct remus_hostd_virt_ops libvirt_ops = {
	.inspect = op_inspect, .inspect_protected = op_inspect_ours, .create_standby = op_create_standby, .destroy = op_destroy,
	.resume_after_takeover = op_resume, .recover = op_recover, .move_disks = op_move,
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

int remus_hostd_virt_libvirt_new(struct remus_loop *loop, const char *uri,
				 const struct remus_hostd_virt_ops **ops, void **impl)
{
	struct lv *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	l->loop = loop;
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
