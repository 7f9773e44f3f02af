// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The blocking half of virt/domain.h: the libvirt calls the host daemon
 * makes on a domain, each run on the worker thread of virt/virt.h and
 * each turning libvirt's error into a code and a message for the user.
 *
 * A disk move is libvirt's block copy (QEMU's blockdev-mirror): the copy
 * runs while the guest writes, QEMU mirrors every new write to both
 * sides, and once the bulk copy is done the job is "ready" (libvirt
 * reports cur == end only then) and stays in sync until the pivot makes
 * the destination the disk.  Aborting instead leaves the domain on its old
 * disk, whatever happened to the destination.
 *
 *     BlockCopy --> poll GetBlockJobInfo (progress) --> cur == end --> Abort(PIVOT)
 *         \--- failure, timeout, cancel ------------------> Abort(0): old disk kept
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "common/log.h"
#include "virt/domain.h"

#define LOG "virt"

static const char *lv_msg(void)
{
	const char *m = virGetLastErrorMessage();

	return m ? m : "unknown libvirt error";
}

static int lv_code(void)
{
	virErrorPtr e = virGetLastError();

	return e ? e->code : VIR_ERR_OK;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *state_name(int state)
{
	switch (state) {
	case VIR_DOMAIN_RUNNING: return "running";
	case VIR_DOMAIN_BLOCKED: return "blocked";
	case VIR_DOMAIN_PAUSED: return "paused";
	case VIR_DOMAIN_SHUTDOWN: return "shutting down";
	case VIR_DOMAIN_SHUTOFF: return "shut off";
	case VIR_DOMAIN_CRASHED: return "crashed";
	case VIR_DOMAIN_PMSUSPENDED: return "suspended by the guest";
	default: return "in no known state";
	}
}

int remus_virt_lookup_running(virConnectPtr conn, const char *name, virDomainPtr *dom,
			      struct remus_virt_error *err)
{
	virDomainPtr d;
	int state = 0, reason = 0;

	*dom = NULL;
	d = virDomainLookupByName(conn, name);
	if (!d) {
		if (lv_code() == VIR_ERR_NO_DOMAIN)
			return remus_virt_error_set(err, -ENOENT, "no-domain",
						    "no domain %s on this host: check the name "
						    "(virsh list --all)",
						    name);
		return remus_virt_error_set(err, -EIO, "internal",
					    "cannot look up domain %s: %s", name, lv_msg());
	}
	if (virDomainGetState(d, &state, &reason, 0) < 0) {
		remus_virt_error_set(err, -EIO, "internal", "cannot read the state of domain %s: %s",
				     name, lv_msg());
		virDomainFree(d);
		return -EIO;
	}
	if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_BLOCKED) {
		remus_virt_error_set(err, -EAGAIN, "not-running",
				     "domain %s is %s: only a running domain can be protected; "
				     "%s it (virsh %s %s) and retry",
				     name, state_name(state),
				     state == VIR_DOMAIN_PAUSED ? "resume" : "start",
				     state == VIR_DOMAIN_PAUSED ? "resume" : "start", name);
		virDomainFree(d);
		return -EAGAIN;
	}
	*dom = d;
	return 0;
}

/* The domain this host has under @name, else under @uuid (either may be
 * NULL): *@d (the caller frees it) or NULL, *@by says which matched.
 * 0, or -EIO with @err set when libvirt could not tell. */
static int lookup_existing(virConnectPtr conn, const char *name, const char *uuid,
			   virDomainPtr *d, const char **by, struct remus_virt_error *err)
{
	*d = NULL;
	*by = "name";
	if (name)
		*d = virDomainLookupByName(conn, name);
	if (!*d && name && lv_code() != VIR_ERR_NO_DOMAIN)
		return remus_virt_error_set(err, -EIO, "internal", "cannot look up domain %s: %s",
					    name, lv_msg());
	if (!*d && uuid && uuid[0]) {
		*by = "UUID";
		*d = virDomainLookupByUUIDString(conn, uuid);
		if (!*d && lv_code() != VIR_ERR_NO_DOMAIN)
			return remus_virt_error_set(err, -EIO, "internal",
						    "cannot look up UUID %s: %s", uuid, lv_msg());
	}
	return 0;
}

int remus_virt_check_absent(virConnectPtr conn, const char *name, const char *uuid,
			    struct remus_virt_error *err)
{
	virDomainPtr d;
	const char *by;
	int state = 0, reason = 0, rc;

	rc = lookup_existing(conn, name, uuid, &d, &by, err);
	if (rc < 0 || !d)
		return rc;
	if (virDomainGetState(d, &state, &reason, 0) < 0)
		state = -1;
	rc = remus_virt_error_set(err, -EEXIST, "exists",
				  "this host already has a domain with the %s of %s (%s, UUID %s, "
				  "%s): undefine or rename it (virsh undefine %s) before "
				  "protecting onto this host",
				  by, name ? name : "the primary", virDomainGetName(d),
				  uuid ? uuid : "?", state_name(state), virDomainGetName(d));
	virDomainFree(d);
	return rc;
}

int remus_virt_check_standby_slot(virConnectPtr conn, const char *name, const char *uuid,
				  const char *incoming, bool recorded, bool *over,
				  struct remus_virt_error *err)
{
	struct remus_virt_existing e = { 0 };
	struct remus_virt_domain x;
	virDomainPtr d = NULL;
	const char *by;
	char u[VIR_UUID_STRING_BUFLEN] = "", *xml = NULL;
	int state = -1, reason = 0, active, rc;

	*over = false;
	remus_virt_domain_init(&x);
	rc = lookup_existing(conn, name, uuid, &d, &by, err);
	if (rc < 0 || !d)
		return rc;
	if (virDomainGetUUIDString(d, u) < 0)
		u[0] = 0;
	if (virDomainGetState(d, &state, &reason, 0) < 0)
		state = -1;
	active = virDomainIsActive(d);
	e.name = virDomainGetName(d);
	e.uuid = u[0] ? u : NULL;
	e.state = state_name(state);
	e.active = active != 0;     /* unknown (-1) counts as running: refused */
	if (incoming && (xml = virDomainGetXMLDesc(d, 0)) &&
	    remus_virt_domain_parse(xml, strlen(xml), &x, NULL) == 0)
		for (size_t i = 0; i + 1 < x.nqemu_args; i++)
			if (strcmp(x.qemu_args[i], "-incoming") == 0 &&
			    strcmp(x.qemu_args[i + 1], incoming) == 0)
				e.remus_standby = true;
	rc = remus_virt_standby_over(&e, name, uuid, recorded, err);
	if (rc == 0) {
		*over = true;
		remus_info(LOG, "%s: the standby replaces its definition here (UUID %s, %s, "
			   "%s)", e.name, u, e.state, recorded ? "recorded by remusd here"
			   : "a standby remusd made");
	}
	remus_virt_domain_release(&x);
	free(xml);
	virDomainFree(d);
	return rc;
}

int remus_virt_live_xml(virDomainPtr dom, char **xml, struct remus_virt_error *err)
{
	*xml = virDomainGetXMLDesc(dom, 0);
	if (!*xml)
		return remus_virt_error_set(err, -EIO, "internal",
					    "cannot read the XML of domain %s: %s",
					    virDomainGetName(dom), lv_msg());
	return 0;
}

/* QEMU's error in @reply, if it has one: its desc (owned) or NULL. */
static char *qmp_error(const char *reply)
{
	struct json_object *o = json_tokener_parse(reply), *e, *desc;
	char *s = NULL;

	if (o && json_object_object_get_ex(o, "error", &e)) {
		s = strdup(json_object_object_get_ex(e, "desc", &desc)
				   ? json_object_get_string(desc)
				   : json_object_to_json_string(e));
		if (!s)
			s = strdup("?");
	}
	json_object_put(o);
	return s;
}

int remus_virt_qmp(virDomainPtr dom, const char *cmd, char **reply,
		   struct remus_virt_error *err)
{
	char *res = NULL, *qerr;
	int rc;

	if (reply)
		*reply = NULL;
	if (virDomainQemuMonitorCommand(dom, cmd, &res, VIR_DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT) < 0)
		return remus_virt_error_set(err, -EIO, "internal",
					    "QMP %s on domain %s through libvirt failed: %s", cmd,
					    virDomainGetName(dom), lv_msg());
	qerr = qmp_error(res);
	if (qerr) {
		rc = remus_virt_error_set(err, -EIO, "internal",
					  "QEMU of domain %s refused %s: %s",
					  virDomainGetName(dom), cmd, qerr);
		free(qerr);
		free(res);
		return rc;
	}
	if (reply)
		*reply = res;
	else
		free(res);
	return 0;
}

int remus_virt_check_versions(virConnectPtr conn, virDomainPtr dom,
			      struct remus_virt_error *err)
{
	unsigned long v = 0;
	char *reply = NULL;
	int rc;

	if (virConnectGetLibVersion(conn, &v) < 0)
		return remus_virt_error_set(err, -EIO, "internal",
					    "cannot read libvirt's version: %s", lv_msg());
	if ((rc = remus_virt_check_libvirt_version(v, err)) < 0)
		return rc;
	if ((rc = remus_virt_qmp(dom, "{\"execute\":\"query-version\"}", &reply, err)) < 0)
		return rc;
	rc = remus_virt_check_qemu_version(reply, strlen(reply), NULL, NULL, NULL, err);
	free(reply);
	return rc;
}

int remus_virt_check_host_nics(virConnectPtr conn, const char *sysfs,
			       const struct remus_virt_domain *d, struct remus_virt_error *err)
{
	char host[256] = "this host", path[512];
	struct stat st;

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "this host");
	for (size_t i = 0; i < d->nnics; i++) {
		const struct remus_virt_nic *n = &d->nics[i];
		const char *mac = n->mac ? n->mac : "(no MAC)";

		if (n->type && strcmp(n->type, "bridge") == 0) {
			if (!n->source || strchr(n->source, '/') || !n->source[0] ||
			    strcmp(n->source, ".") == 0 || strcmp(n->source, "..") == 0)
				return remus_virt_error_set(err, -ENOENT, "no-bridge",
							    "interface %s of domain %s names no "
							    "usable bridge ('%s'); fix its <source "
							    "bridge>",
							    mac, d->name, n->source ? n->source : "");
			snprintf(path, sizeof(path), "%s/class/net/%s/bridge", sysfs ? sysfs : "/sys",
				 n->source);
			if (stat(path, &st) < 0)
				return remus_virt_error_set(err, -ENOENT, "no-bridge",
							    "host %s has no bridge %s for interface "
							    "%s of domain %s: create it there (ip "
							    "link add %s type bridge) or attach the "
							    "interface to a bridge both hosts have",
							    host, n->source, mac, d->name, n->source);
		} else if (conn && n->type && strcmp(n->type, "network") == 0) {
			virNetworkPtr net = n->source ? virNetworkLookupByName(conn, n->source) : NULL;
			int active = net ? virNetworkIsActive(net) : 0;

			if (net)
				virNetworkFree(net);
			if (active != 1)
				return remus_virt_error_set(err, -ENOENT, "no-bridge",
							    "host %s has no %s libvirt network %s "
							    "for interface %s of domain %s: define "
							    "and start it there (virsh net-start %s)",
							    host, net ? "active" : "such", n->source ? n->source : "?",
							    mac, d->name, n->source ? n->source : "?");
		}
	}
	return 0;
}

int remus_virt_create_paused(virConnectPtr conn, const char *xml, bool over, virDomainPtr *dom,
			     struct remus_virt_error *err)
{
	struct remus_virt_domain d;
	bool replaced = false;
	int rc;

	*dom = NULL;
	if ((rc = remus_virt_domain_parse(xml, strlen(xml), &d, err)) < 0)
		return rc;
	/* Checked again right here: a definition made since the caller's
	 * check is refused all the same. */
	rc = over ? remus_virt_check_standby_slot(conn, d.name, d.uuid, NULL, true, &replaced, err)
		  : remus_virt_check_absent(conn, d.name, d.uuid, err);
	if (rc == 0) {
		*dom = virDomainCreateXML(conn, xml, VIR_DOMAIN_START_PAUSED);
		if (!*dom)
			rc = remus_virt_error_set(err, -EIO, "internal",
						  "libvirt cannot create domain %s paused: %s", d.name,
						  lv_msg());
		else
			remus_info(LOG, "%s: created paused (standby)", d.name);
	}
	remus_virt_domain_release(&d);
	return rc;
}

int remus_virt_migrate_incoming(virDomainPtr dom, const char *uri,
				struct remus_virt_error *err)
{
	struct json_object *cmd = json_object_new_object(), *args = json_object_new_object();
	int rc = -ENOMEM;

	if (cmd && args &&
	    json_object_object_add(cmd, "execute", json_object_new_string("migrate-incoming")) == 0 &&
	    json_object_object_add(args, "uri", json_object_new_string(uri)) == 0 &&
	    json_object_object_add(cmd, "arguments", args) == 0) {
		args = NULL; /* cmd owns it */
		rc = remus_virt_qmp(dom, json_object_to_json_string(cmd), NULL, err);
	} else {
		remus_virt_error_set(err, rc, "internal", "out of memory");
	}
	json_object_put(args);
	json_object_put(cmd);
	return rc;
}

int remus_virt_resume_when_migrated(virDomainPtr dom, int timeout_ms,
				    struct remus_virt_error *err)
{
	const char *name = virDomainGetName(dom);
	long long deadline = now_ms() + timeout_ms;
	char status[32] = "", *reply;
	int rc, state = 0, reason = 0;

	for (;;) {
		if ((rc = remus_virt_qmp(dom, "{\"execute\":\"query-migrate\"}", &reply, err)) < 0)
			return rc;
		rc = remus_virt_migrate_status(reply, strlen(reply), status, sizeof(status));
		free(reply);
		if (rc < 0)
			return remus_virt_error_set(err, -EIO, "internal",
						    "QEMU of domain %s answered query-migrate "
						    "with no status",
						    name);
		if (strcmp(status, "completed") == 0)
			break;
		if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0)
			return remus_virt_error_set(err, -EPROTO, "internal",
						    "the incoming migration of domain %s %s: the "
						    "standby has no state to run",
						    name, status);
		if (now_ms() >= deadline)
			return remus_virt_error_set(err, -ETIMEDOUT, "internal",
						    "the incoming migration of domain %s is still "
						    "'%s' after %d ms: not resuming a half-loaded "
						    "guest",
						    name, status, timeout_ms);
		sleep_ms(20);
	}
	/* A `cont` through the monitor (the standby engine's own) may have
	 * run it already: libvirt then says running and refuses a resume. */
	if (virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING)
		return 0;
	if (virDomainResume(dom) < 0) {
		if (virDomainGetState(dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING)
			return 0;
		return remus_virt_error_set(err, -EIO, "internal", "cannot resume domain %s: %s",
					    name, lv_msg());
	}
	remus_info(LOG, "%s: incoming migration completed, resumed", name);
	return 0;
}

int remus_virt_destroy(virDomainPtr dom, struct remus_virt_error *err)
{
	int code;

	if (virDomainDestroy(dom) == 0)
		return 0;
	/* Already gone: the embedded driver may drop a transient domain as
	 * QEMU exits, before the destroy call itself returns. */
	code = lv_code();
	if (code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_OPERATION_INVALID)
		return 0;
	return remus_virt_error_set(err, -EIO, "internal", "cannot destroy domain %s: %s",
				    virDomainGetName(dom), lv_msg());
}

/* Ends the job of @target without a pivot; the domain keeps its disk. */
static void cancel_job(virDomainPtr dom, const char *target)
{
	if (virDomainBlockJobAbort(dom, target, 0) < 0 && lv_code() != VIR_ERR_OPERATION_INVALID)
		remus_warn(LOG, "%s: cannot cancel the block copy of disk %s: %s",
			   virDomainGetName(dom), target, lv_msg());
}

int remus_virt_block_copy(virDomainPtr dom, const struct remus_virt_copy *c,
			  struct remus_virt_error *err)
{
	const char *name = virDomainGetName(dom);
	unsigned flags = VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB;
	long long start = now_ms(), moved = start;
	unsigned long long last_cur = 0;
	virDomainBlockJobInfo info;
	virTypedParameterPtr params = NULL;
	int rc, r, nparams = 0, maxparams = 0;

	if (c->reuse_external)
		flags |= VIR_DOMAIN_BLOCK_COPY_REUSE_EXT;
	if (c->bandwidth &&
	    virTypedParamsAddULLong(&params, &nparams, &maxparams, VIR_DOMAIN_BLOCK_COPY_BANDWIDTH,
				    c->bandwidth) < 0)
		return remus_virt_error_set(err, -ENOMEM, "internal", "out of memory");
	r = virDomainBlockCopy(dom, c->target, c->dest_xml, params, nparams, flags);
	virTypedParamsFree(params, nparams);
	if (r < 0)
		return remus_virt_error_set(err, -EIO, "internal",
					    "cannot start the block copy of disk %s of domain %s: %s",
					    c->target, name, lv_msg());
	remus_info(LOG, "%s: block copy of disk %s started", name, c->target);
	for (;;) {
		if (c->cancel && atomic_load(c->cancel)) {
			rc = remus_virt_error_set(err, -ECANCELED, "internal",
						  "the block copy of disk %s of domain %s was "
						  "cancelled; the domain stays on its old disk",
						  c->target, name);
			goto fail;
		}
		r = virDomainGetBlockJobInfo(dom, c->target, &info, 0);
		if (r < 0) {
			rc = remus_virt_error_set(err, -EIO, "internal",
						  "cannot follow the block copy of disk %s of "
						  "domain %s: %s",
						  c->target, name, lv_msg());
			goto fail;
		}
		if (r == 0)
			return remus_virt_error_set(err, -EIO, "internal",
						    "the block copy of disk %s of domain %s ended "
						    "before it was ready (the destination failed?); "
						    "the domain stays on its old disk",
						    c->target, name);
		if (c->progress)
			c->progress(c->target, info.cur, info.end, c->opaque);
		/* libvirt reports cur == end only once the job is ready */
		if (info.end > 0 && info.cur == info.end) {
			if (virDomainBlockJobAbort(dom, c->target,
						   VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) == 0)
				break;
			if (lv_code() != VIR_ERR_BLOCK_COPY_ACTIVE) {
				rc = remus_virt_error_set(err, -EIO, "internal",
							  "cannot pivot disk %s of domain %s onto "
							  "its copy: %s",
							  c->target, name, lv_msg());
				goto fail;
			}
			/* not ready after all: poll again */
		}
		if (info.cur != last_cur) {
			last_cur = info.cur;
			moved = now_ms();
		} else if (c->stall_ms > 0 && now_ms() - moved > c->stall_ms) {
			rc = remus_virt_error_set(err, -ETIMEDOUT, "internal",
						  "the block copy of disk %s of domain %s made no "
						  "progress for %d s (at %llu of %llu bytes); "
						  "cancelled, the domain stays on its old disk",
						  c->target, name, c->stall_ms / 1000, info.cur,
						  info.end);
			goto fail;
		}
		if (c->timeout_ms > 0 && now_ms() - start > c->timeout_ms) {
			rc = remus_virt_error_set(err, -ETIMEDOUT, "internal",
						  "the block copy of disk %s of domain %s is at "
						  "%llu of %llu bytes after %d ms; cancelled, the "
						  "domain stays on its old disk",
						  c->target, name, info.cur, info.end, c->timeout_ms);
			goto fail;
		}
		sleep_ms(100);
	}
	remus_info(LOG, "%s: disk %s pivoted onto its copy after %lld ms", name, c->target,
		   now_ms() - start);
	return 0;
fail:
	cancel_job(dom, c->target);
	return rc;
}
