// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtdom_drive: one virt/domain.h operation on a libvirt connection per
 * run, for the integration scripts (test support, not a test):
 *
 *     virtdom_drive URI create XMLFILE            start a domain (running)
 *     virtdom_drive URI define-start XMLFILE      define it (persistent), start it
 *     virtdom_drive URI create-paused XMLFILE     remus_virt_create_paused
 *     virtdom_drive URI check NAME                lookup, XML, checks, versions
 *     virtdom_drive URI state NAME                "STATE REASON QEMU-STATUS"
 *     virtdom_drive URI xml NAME                  the live XML
 *     virtdom_drive URI disk NAME TARGET          "TYPE SOURCE" of one disk
 *     virtdom_drive URI qmp NAME JSON             QEMU's reply
 *     virtdom_drive URI migrate-incoming NAME URI
 *     virtdom_drive URI resume NAME TIMEOUT_MS    remus_virt_resume_when_migrated
 *     virtdom_drive URI copy-nbd NAME TARGET SOCKET EXPORT [BYTES_PER_S]
 *     virtdom_drive URI copy-file NAME TARGET PATH FORMAT
 *     virtdom_drive URI destroy NAME
 *     virtdom_drive - standby-xml XMLFILE INCOMING TARGET=SOCKET:EXPORT...
 *
 * URI is usually qemu:///embed?root=DIR: the embedded driver lives in this
 * process, so the process runs libvirt's event loop on a thread (the
 * monitor's I/O and block job events need it), and the domains it starts
 * outlive it.  Errors print "CODE: MESSAGE" on stderr and exit 1, so a
 * script checks the code the host daemon would answer with.  copy-* print
 * "progress TARGET BYTES TOTAL" lines as the copy advances.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "virt/domain.h"

static atomic_bool quit;

static void *event_loop(void *arg)
{
	while (!atomic_load(&quit))
		if (virEventRunDefaultImpl() < 0)
			break;
	return NULL;
}

static void silent(void *opaque, virErrorPtr e)
{
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "virtdom_drive: cannot read %s\n", path);
		exit(2);
	}
	buf[n] = 0;
	fclose(f);
	return buf;
}

static int report(int rc, const struct remus_virt_error *err)
{
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", err->code[0] ? err->code : "internal",
			err->message[0] ? err->message : strerror(-rc));
		return 1;
	}
	return 0;
}

static void on_progress(const char *target, uint64_t bytes, uint64_t total, void *opaque)
{
	static uint64_t last = UINT64_MAX;

	if (bytes != last)
		printf("progress %s %llu %llu\n", target, (unsigned long long)bytes,
		       (unsigned long long)total);
	fflush(stdout);
	last = bytes;
}

static int standby_xml(int argc, char **argv)
{
	struct remus_virt_nbd nbd[16];
	struct remus_virt_standby_spec spec = { 0 };
	struct remus_virt_error err = { 0 };
	char *xml, *out = NULL;
	int rc;

	if (argc < 2 || argc - 2 > 16)
		return 2;
	xml = slurp(argv[0]);
	spec.incoming = argv[1];
	for (int i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '='), *colon = strrchr(argv[i], ':');

		if (!eq || !colon || colon < eq)
			return 2;
		*eq = *colon = 0;
		nbd[spec.ndisks++] = (struct remus_virt_nbd){ argv[i], eq + 1, colon + 1 };
	}
	spec.disks = nbd;
	rc = remus_virt_standby_xml(xml, strlen(xml), &spec, &out, &err);
	if (rc == 0)
		fputs(out, stdout);
	free(out);
	free(xml);
	return report(rc, &err);
}

/* The type and source of disk @target of @dom, from its live XML. */
static int disk_of(virDomainPtr dom, const char *target, struct remus_virt_error *err)
{
	struct remus_virt_domain d;
	char *xml = NULL;
	int rc;

	if ((rc = remus_virt_live_xml(dom, &xml, err)) < 0)
		return rc;
	rc = remus_virt_domain_parse(xml, strlen(xml), &d, err);
	free(xml);
	if (rc < 0)
		return rc;
	rc = remus_virt_error_set(err, -ENOENT, "bad-request", "no disk %s", target);
	for (size_t i = 0; i < d.ndisks; i++)
		if (d.disks[i].target && strcmp(d.disks[i].target, target) == 0) {
			printf("%s %s\n", d.disks[i].type, d.disks[i].source ? d.disks[i].source : "-");
			memset(err, 0, sizeof(*err));
			rc = 0;
		}
	remus_virt_domain_release(&d);
	return rc;
}

static const char *state_word(int s)
{
	static const char *const w[] = { "nostate", "running", "blocked", "paused",
					 "shutdown", "shutoff", "crashed", "pmsuspended" };

	return s >= 0 && s < (int)(sizeof(w) / sizeof(w[0])) ? w[s] : "?";
}

static const char *paused_reason(int r)
{
	switch (r) {
	case VIR_DOMAIN_PAUSED_USER: return "user";
	case VIR_DOMAIN_PAUSED_MIGRATION: return "migration";
	case VIR_DOMAIN_PAUSED_POSTCOPY: return "postcopy";
	case VIR_DOMAIN_PAUSED_STARTING_UP: return "starting-up";
	default: return "other";
	}
}

static int state_of(virDomainPtr dom, struct remus_virt_error *err)
{
	int state, reason, rc;
	char *reply = NULL, status[32] = "?";

	if (virDomainGetState(dom, &state, &reason, 0) < 0)
		return remus_virt_error_set(err, -EIO, "internal", "%s", virGetLastErrorMessage());
	if ((rc = remus_virt_qmp(dom, "{\"execute\":\"query-status\"}", &reply, err)) < 0)
		return rc;
	/* query-status: {"return":{"status":"inmigrate","running":false}} */
	remus_virt_migrate_status(reply, strlen(reply), status, sizeof(status));
	free(reply);
	printf("%s %s %s\n", state_word(state),
	       state == VIR_DOMAIN_PAUSED ? paused_reason(reason)
	       : state == VIR_DOMAIN_RUNNING ? (reason == VIR_DOMAIN_RUNNING_UNPAUSED ? "unpaused"
						: reason == VIR_DOMAIN_RUNNING_BOOTED ? "booted"
										      : "other")
					       : "-",
	       status);
	return 0;
}

static int run(virConnectPtr conn, int argc, char **argv, struct remus_virt_error *err)
{
	const char *cmd = argv[0];
	virDomainPtr dom = NULL;
	char *xml = NULL, *dest = NULL, *reply = NULL;
	int rc = -EINVAL;

	if (strcmp(cmd, "create") == 0 && argc == 2) {
		xml = slurp(argv[1]);
		dom = virDomainCreateXML(conn, xml, 0);
		rc = dom ? 0 : remus_virt_error_set(err, -EIO, "internal", "%s",
						    virGetLastErrorMessage());
		goto out;
	}
	if (strcmp(cmd, "define-start") == 0 && argc == 2) {
		xml = slurp(argv[1]);
		dom = virDomainDefineXML(conn, xml);
		rc = dom && virDomainCreate(dom) == 0
			     ? 0
			     : remus_virt_error_set(err, -EIO, "internal", "%s",
						    virGetLastErrorMessage());
		goto out;
	}
	if (strcmp(cmd, "create-paused") == 0 && argc == 2) {
		xml = slurp(argv[1]);
		rc = remus_virt_create_paused(conn, xml, false, &dom, err);
		goto out;
	}
	if (argc < 2)
		goto out;
	if (strcmp(cmd, "check") == 0) {
		struct remus_virt_domain d;

		if ((rc = remus_virt_lookup_running(conn, argv[1], &dom, err)) < 0 ||
		    (rc = remus_virt_live_xml(dom, &xml, err)) < 0 ||
		    (rc = remus_virt_domain_parse(xml, strlen(xml), &d, err)) < 0)
			goto out;
		rc = remus_virt_domain_check(&d, err);
		if (rc == 0)
			rc = remus_virt_check_host_nics(conn, NULL, &d, err);
		if (rc == 0)
			rc = remus_virt_check_versions(conn, dom, err);
		if (rc == 0)
			printf("ok %s %s %zu disk(s) %zu nic(s)\n", d.name, d.uuid, d.ndisks, d.nnics);
		remus_virt_domain_release(&d);
		goto out;
	}
	dom = virDomainLookupByName(conn, argv[1]);
	if (!dom) {
		rc = remus_virt_error_set(err, -ENOENT, "no-domain", "%s", virGetLastErrorMessage());
		goto out;
	}
	if (strcmp(cmd, "state") == 0 && argc == 2) {
		rc = state_of(dom, err);
	} else if (strcmp(cmd, "xml") == 0 && argc == 2) {
		if ((rc = remus_virt_live_xml(dom, &xml, err)) == 0)
			fputs(xml, stdout);
	} else if (strcmp(cmd, "disk") == 0 && argc == 3) {
		rc = disk_of(dom, argv[2], err);
	} else if (strcmp(cmd, "qmp") == 0 && argc == 3) {
		if ((rc = remus_virt_qmp(dom, argv[2], &reply, err)) == 0)
			printf("%s\n", reply);
	} else if (strcmp(cmd, "migrate-incoming") == 0 && argc == 3) {
		rc = remus_virt_migrate_incoming(dom, argv[2], err);
	} else if (strcmp(cmd, "resume") == 0 && argc == 3) {
		rc = remus_virt_resume_when_migrated(dom, atoi(argv[2]), err);
	} else if (strcmp(cmd, "destroy") == 0 && argc == 2) {
		rc = remus_virt_destroy(dom, err);
	} else if ((strcmp(cmd, "copy-nbd") == 0 || strcmp(cmd, "copy-file") == 0) &&
		   (argc == 5 || argc == 6)) {
		bool nbd = strcmp(cmd, "copy-nbd") == 0;
		struct remus_virt_copy c = { .target = argv[2], .reuse_external = true,
					     .timeout_ms = 120000, .progress = on_progress };

		if (argc == 6)
			c.bandwidth = strtoull(argv[5], NULL, 10);

		rc = nbd ? remus_virt_nbd_disk_xml(argv[3], argv[4], &dest)
			 : remus_virt_file_disk_xml(argv[3], argv[4], &dest);
		if (rc < 0) {
			remus_virt_error_set(err, rc, "bad-request", "bad destination");
			goto out;
		}
		c.dest_xml = dest;
		if ((rc = remus_virt_block_copy(dom, &c, err)) == 0)
			rc = disk_of(dom, argv[2], err);
	}
out:
	if (dom)
		virDomainFree(dom);
	free(xml);
	free(dest);
	free(reply);
	return rc;
}

int main(int argc, char **argv)
{
	struct remus_virt_error err = { 0 };
	virConnectPtr conn;
	pthread_t loop;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: virtdom_drive URI|- COMMAND ARG... (see the source)\n");
		return 2;
	}
	if (strcmp(argv[1], "-") == 0) {
		if (strcmp(argv[2], "standby-xml") == 0)
			return standby_xml(argc - 3, argv + 3);
		return 2;
	}
	virSetErrorFunc(NULL, silent);
	if (virEventRegisterDefaultImpl() < 0 || pthread_create(&loop, NULL, event_loop, NULL)) {
		fprintf(stderr, "internal: cannot start libvirt's event loop\n");
		return 1;
	}
	conn = virConnectOpen(argv[1]);
	if (!conn) {
		fprintf(stderr, "internal: cannot open %s: %s\n", argv[1], virGetLastErrorMessage());
		return 1;
	}
	rc = run(conn, argc - 2, argv + 2, &err);
	if (rc == -EINVAL && !err.code[0]) {
		fprintf(stderr, "virtdom_drive: bad command line\n");
		rc = 2;
	} else {
		rc = report(rc, &err);
	}
	fflush(stdout);
	/* Closing an embedded connection shuts its driver down; the event
	 * loop thread dies with the process. */
	virConnectClose(conn);
	atomic_store(&quit, true);
	return rc;
}
