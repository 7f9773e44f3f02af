// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for the pure half of virt/domain.h: the input is a domain
 * XML (from libvirt, or from a peer's create-standby) or a QEMU reply.
 * Byte 0 chooses: 0 parse and check the domain; 1 derive the standby XML
 * (disks vda..vdd and hda, sda on NBD exports) and parse what comes out
 * again, which must succeed and keep the name; 2 QEMU's query-version;
 * 3 query-migrate's status.  Besides crashes and leaks (ASan/LSan):
 * every error carries a code and a message, every success none.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virt/domain.h"

static const struct remus_virt_nbd nbd[] = {
	{ "vda", "/run/remus/d.nbd", "vda" }, { "vdb", "/run/remus/d.nbd", "vdb" },
	{ "vdc", "/run/remus/d.nbd", "vdc" }, { "vdd", "/run/remus/d.nbd", "vdd" },
	{ "hda", "/run/remus/d.nbd", "hda" }, { "sda", "/run/remus/d.nbd", "sda" },
};

static void check_err(int rc, const struct remus_virt_error *err)
{
	if ((rc < 0) != (err->code[0] != 0) || (rc < 0 && !err->message[0]))
		abort();
}

static void derive(const char *xml, size_t len)
{
	struct remus_virt_standby_spec spec = { "unix:/run/remus/d.in", nbd, 6 };
	struct remus_virt_error err = { 0 }, err2 = { 0 };
	struct remus_virt_domain a, b;
	char *out = NULL;
	int rc = remus_virt_standby_xml(xml, len, &spec, &out, &err);

	if (rc == -ENOMEM)
		return;
	check_err(rc, &err);
	if (rc < 0)
		return;
	/* what we produce, we read back, with the same name */
	if (remus_virt_domain_parse(out, strlen(out), &b, &err2) < 0)
		abort();
	if (remus_virt_domain_parse(xml, len, &a, &err2) == 0) {
		if (strcmp(a.name, b.name) != 0 || strcmp(a.uuid, b.uuid) != 0)
			abort();
		remus_virt_domain_release(&a);
	}
	if (b.nqemu_args < 2 || strcmp(b.qemu_args[b.nqemu_args - 1], spec.incoming) != 0)
		abort();
	remus_virt_domain_release(&b);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_virt_error err = { 0 };
	struct remus_virt_domain d;
	const char *p = (const char *)data + 1;
	char st[32];
	int rc;

	if (size < 1)
		return 0;
	size--;
	switch (data[0] & 3) {
	case 0:
		rc = remus_virt_domain_parse(p, size, &d, &err);
		check_err(rc, &err);
		if (rc == 0) {
			struct remus_virt_error e2 = { 0 }, e3 = { 0 };

			check_err(remus_virt_domain_check(&d, &e2), &e2);
			check_err(remus_virt_check_host_nics(NULL, "/nonexistent", &d, &e3), &e3);
			remus_virt_domain_release(&d);
		}
		break;
	case 1:
		derive(p, size);
		break;
	case 2:
		check_err(remus_virt_check_qemu_version(p, size, NULL, NULL, NULL, &err), &err);
		break;
	case 3:
		remus_virt_migrate_status(p, size, st, sizeof(st));
		break;
	}
	return 0;
}
