// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for the pure half of virt/domain.h, on XML fixtures: a live
 * domain as libvirt writes it (fixtures/web1-live.xml: qcow2 with a
 * backing chain, raw with a user alias, an empty cdrom, bridge and network
 * NICs, ptys, channels, VNC, a dynamic seclabel) and a hand-written odd one
 * (fixtures/odd-cmdline.xml: its own qemu namespace prefix and -incoming,
 * escaped names, GiB memory, no driver).  Every refusal names the object
 * and the fix and carries its control-protocol code; the standby XML keeps
 * what the migration stream needs (name, UUID, addresses, MACs, models)
 * and loses what only the running primary has.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "virt/domain.h"

static char *slurp(const char *name)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void parse_ok(const char *xml, struct remus_virt_domain *d)
{
	struct remus_virt_error err = { 0 };

	assert_int_equal(remus_virt_domain_parse(xml, strlen(xml), d, &err), 0);
	assert_string_equal(err.code, "");
}

/* After unprotect's copies back: every released disk must be a file
 * before the child serving the exports stops. */
static void test_disks_on_files(void **state)
{
	static const char xml[] =
		"<domain type='kvm'><name>web1</name><devices>"
		"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
		"<source file='/var/lib/libvirt/images/web1.raw'/><target dev='vda' bus='virtio'/></disk>"
		"<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
		"<source protocol='nbd' name='vdb'><host transport='unix' "
		"socket='/run/remus/web1.vdb.nbd'/></source><target dev='vdb' bus='virtio'/></disk>"
		"</devices></domain>";
	const char *vda[] = { "vda" }, *both[] = { "vda", "vdb" }, *vdc[] = { "vdc" };
	struct remus_virt_domain d;
	struct remus_virt_error err;

	(void)state;
	remus_virt_domain_init(&d);
	parse_ok(xml, &d);
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_disks_on_files(&d, "web1", vda, 1, &err), 0);
	assert_string_equal(err.code, "");
	assert_int_equal(remus_virt_disks_on_files(&d, "web1", both, 2, &err), -EBUSY);
	assert_string_equal(err.code, "bad-disk");
	if (!strstr(err.message, "disk vdb is still on network nbd (vdb)"))
		fail_msg("%s", err.message);
	assert_non_null(strstr(err.message, "remusctl unprotect web1 again"));
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_disks_on_files(&d, "web1", vdc, 1, &err), -ENOENT);
	assert_non_null(strstr(err.message, "no disk vdc"));
	remus_virt_domain_release(&d);
}

static void test_parse_live(void **state)
{
	char *xml = slurp("web1-live.xml");
	struct remus_virt_domain d;
	struct remus_virt_error err = { 0 };

	parse_ok(xml, &d);
	assert_string_equal(d.name, "web1");
	assert_string_equal(d.uuid, "0d6a3f8e-5b7c-4e21-9f0a-2c4b6d8e1f30");
	assert_int_equal(d.id, 7);
	assert_int_equal(d.memory_kib, 1048576);
	assert_int_equal(d.vcpus, 2);
	assert_string_equal(d.emulator, "/usr/bin/qemu-system-x86_64");
	assert_int_equal(d.ndisks, 3);
	assert_string_equal(d.disks[0].target, "vda");
	assert_string_equal(d.disks[0].bus, "virtio");
	assert_string_equal(d.disks[0].device, "disk");
	assert_string_equal(d.disks[0].type, "file");
	assert_string_equal(d.disks[0].format, "qcow2");
	assert_string_equal(d.disks[0].source, "/var/lib/libvirt/images/web1.qcow2");
	assert_false(d.disks[0].readonly);
	assert_string_equal(d.disks[1].format, "raw");
	assert_string_equal(d.disks[1].source, "/var/lib/libvirt/images/web1-data.img");
	assert_string_equal(d.disks[2].device, "cdrom");
	assert_string_equal(d.disks[2].bus, "sata");
	assert_null(d.disks[2].source);
	assert_null(d.disks[2].format);
	assert_true(d.disks[2].readonly);
	assert_int_equal(d.nnics, 2);
	assert_string_equal(d.nics[0].type, "bridge");
	assert_string_equal(d.nics[0].source, "br0");
	assert_string_equal(d.nics[0].mac, "52:54:00:12:34:56");
	assert_string_equal(d.nics[0].model, "virtio");
	assert_string_equal(d.nics[0].target_dev, "vnet3");
	assert_string_equal(d.nics[1].type, "network");
	assert_string_equal(d.nics[1].source, "default");
	assert_string_equal(d.nics[1].model, "e1000e");
	assert_int_equal(d.nqemu_args, 0);
	assert_int_equal(d.nhostdevs, 0);
	/* an empty cdrom does not stand in the way */
	assert_int_equal(remus_virt_domain_check(&d, &err), 0);
	remus_virt_domain_release(&d);
	remus_virt_domain_release(&d); /* idempotent */
	free(xml);
}

static void test_parse_odd(void **state)
{
	char *xml = slurp("odd-cmdline.xml");
	struct remus_virt_domain d;
	struct remus_virt_error err = { 0 };

	parse_ok(xml, &d);
	assert_string_equal(d.name, "odd & \"quoted\"");
	assert_int_equal(d.id, -1);
	assert_int_equal(d.memory_kib, 2u << 20);
	assert_null(d.emulator);
	assert_int_equal(d.ndisks, 1);
	assert_string_equal(d.disks[0].type, "file");   /* the default */
	assert_string_equal(d.disks[0].device, "disk"); /* the default */
	assert_null(d.disks[0].format);
	assert_null(d.disks[0].bus);
	assert_string_equal(d.disks[0].source, "/images/odd disk & co.img");
	assert_int_equal(d.nnics, 2);
	assert_string_equal(d.nics[0].type, "user");
	assert_null(d.nics[0].source);
	assert_null(d.nics[0].model);
	assert_string_equal(d.nics[1].target_dev, "tap-odd");
	assert_int_equal(d.nqemu_args, 4);
	assert_string_equal(d.qemu_args[0], "-foo");
	assert_string_equal(d.qemu_args[3], "tcp:0:4444");
	/* no driver type: libvirt's default, raw */
	assert_int_equal(remus_virt_domain_check(&d, &err), 0);
	remus_virt_domain_release(&d);
	free(xml);
}

static void test_parse_refuses(void **state)
{
	static const char *const bad[] = {
		"",
		"not xml at all",
		"<domain><name>x</name>",                 /* truncated */
		"<network><name>x</name></network>",      /* not a domain */
		"<domain type='kvm'><uuid>u</uuid></domain>", /* no name */
		"<domain><name></name></domain>",         /* empty name */
		"<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><domain><name>&e;</name></domain>",
		/* namespace errors: well-formed to libxml2, but not what libvirt writes */
		"<domain><name>x</name><qemu:commandline/></domain>", /* undeclared prefix */
		"<domain xmlns:q:emu='http://libvirt.org/schemas/domain/qemu/1.0'><name>x</name>"
		"</domain>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct remus_virt_domain d;
		struct remus_virt_error err = { 0 };
		int rc = remus_virt_domain_parse(bad[i], strlen(bad[i]), &d, &err);

		if (i == 6 && rc == 0) {
			/* the external entity is never fetched */
			assert_null(strstr(d.name, "root:"));
			remus_virt_domain_release(&d);
			continue;
		}
		assert_int_equal(rc, -EINVAL);
		assert_string_equal(err.code, "bad-request");
		assert_non_null(strstr(err.message, "virDomainGetXMLDesc"));
		assert_null(d.name);
	}
}

/* One <disk> in an otherwise fine domain, checked: the code and the words
 * the message must hold. */
static void check_disk(const char *disk, int want_rc, const char *code, const char *w1,
		       const char *w2)
{
	char xml[2048];
	struct remus_virt_domain d;
	struct remus_virt_error err = { 0 };

	snprintf(xml, sizeof(xml),
		 "<domain><name>web1</name><uuid>0d6a3f8e-5b7c-4e21-9f0a-2c4b6d8e1f30</uuid>"
		 "<devices>%s</devices></domain>",
		 disk);
	parse_ok(xml, &d);
	assert_int_equal(remus_virt_domain_check(&d, &err), want_rc);
	if (want_rc) {
		assert_string_equal(err.code, code);
		assert_non_null(strstr(err.message, "web1"));
		if (!strstr(err.message, w1) || !strstr(err.message, w2))
			fail_msg("'%s' lacks '%s' or '%s'", err.message, w1, w2);
	}
	remus_virt_domain_release(&d);
}

static void test_check_disks(void **state)
{
	check_disk("<disk type='file' device='disk'><driver type='qcow2'/>"
		   "<source file='/i/a.qcow2'/><target dev='vda'/></disk>",
		   0, NULL, NULL, NULL);
	check_disk("<disk type='block' device='disk'><driver type='raw'/>"
		   "<source dev='/dev/sdb'/><target dev='vdb'/></disk>",
		   -EINVAL, "bad-disk", "vdb", "/dev/sdb");
	check_disk("<disk type='block' device='disk'><source dev='/dev/sdb'/>"
		   "<target dev='vdb'/></disk>",
		   -EINVAL, "bad-disk", "block disk", "copy it to a file");
	check_disk("<disk type='network' device='disk'><driver type='raw'/>"
		   "<source protocol='rbd' name='pool/img'/><target dev='vdc'/></disk>",
		   -EINVAL, "bad-disk", "network disk (pool/img)", "only file disks");
	check_disk("<disk type='volume' device='disk'><source pool='p' volume='v'/>"
		   "<target dev='vdd'/></disk>",
		   -EINVAL, "bad-disk", "volume disk", "vdd");
	check_disk("<disk type='file' device='disk'><driver type='vmdk'/>"
		   "<source file='/i/a.vmdk'/><target dev='vde'/></disk>",
		   -EINVAL, "bad-disk", "format vmdk", "qemu-img convert");
	check_disk("<disk type='file' device='disk'><driver type='raw'/>"
		   "<source file='/i/s.img'/><target dev='vdf'/><shareable/></disk>",
		   -EINVAL, "bad-disk", "vdf", "shareable");
	check_disk("<disk type='file' device='disk'><driver type='raw'/>"
		   "<source file='/i/r.img'/><target dev='vdg'/><readonly/></disk>",
		   -EINVAL, "bad-disk", "read-only", "make it writable");
	check_disk("<disk type='file' device='disk'><driver type='raw'/>"
		   "<source file='/i/t.img'/><target dev='vdh'/><transient/></disk>",
		   -EINVAL, "bad-disk", "transient", "vdh");
	check_disk("<disk type='file' device='cdrom'><driver type='raw'/>"
		   "<source file='/iso/debian.iso'/><target dev='sdb'/><readonly/></disk>",
		   -EINVAL, "bad-disk", "debian.iso", "virsh change-media web1 sdb --eject");
	check_disk("<disk type='file' device='lun'><source file='/i/l'/><target dev='sdc'/></disk>",
		   -EINVAL, "bad-disk", "'lun'", "detach it");
	check_disk("<disk type='file' device='disk'><driver type='raw'/><target dev='vdi'/></disk>",
		   -EINVAL, "bad-disk", "vdi", "no source file");
	check_disk("<disk type='file' device='disk'><source file='/i/n.img'/></disk>",
		   -EINVAL, "bad-disk", "no <target dev>", "fix the domain XML");
}

static void test_check_domain(void **state)
{
	static const struct {
		const char *xml, *w1, *w2;
	} bad[] = {
		{ "<domain><name>web1</name><devices/></domain>", "<uuid>", "web1" },
		{ "<domain><name>web1</name><uuid>u</uuid><devices><hostdev mode='subsystem'/>"
		  "<hostdev mode='subsystem'/></devices></domain>",
		  "2 host device", "virsh detach-device" },
		{ "<domain><name>web1</name><uuid>u</uuid><devices><interface type='hostdev'>"
		  "<mac address='52:54:00:00:00:09'/></interface></devices></domain>",
		  "52:54:00:00:00:09", "bridge or network" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct remus_virt_domain d;
		struct remus_virt_error err = { 0 };

		parse_ok(bad[i].xml, &d);
		assert_int_equal(remus_virt_domain_check(&d, &err), -EINVAL);
		assert_string_equal(err.code, "bad-request");
		if (!strstr(err.message, bad[i].w1) || !strstr(err.message, bad[i].w2))
			fail_msg("'%s' lacks '%s' or '%s'", err.message, bad[i].w1, bad[i].w2);
		remus_virt_domain_release(&d);
	}
}

static void test_versions(void **state)
{
	struct remus_virt_error err = { 0 };
	int ma = -1, mi = -1, mc = -1;
	const char *v10 = "{\"return\":{\"qemu\":{\"micro\":2,\"minor\":0,\"major\":10},"
			  "\"package\":\"Debian 1:10.0.2+ds-1~bpo12+1\"},\"id\":\"libvirt-13\"}";
	const char *v80 = "{\"qemu\":{\"micro\":0,\"minor\":0,\"major\":8},\"package\":\"\"}";
	const char *v81 = "{\"qemu\":{\"micro\":0,\"minor\":1,\"major\":8},\"package\":\"\"}";
	static const char *const junk[] = { "", "[]", "{\"return\":[]}", "{\"qemu\":{}}",
		"{\"qemu\":{\"major\":\"10\",\"minor\":0,\"micro\":0}}",
		"{\"qemu\":{\"major\":-1,\"minor\":0,\"micro\":0}}", "{\"return\":{\"qemu\":",
		"{\"error\":{\"class\":\"GenericError\",\"desc\":\"no\"}}" };

	assert_int_equal(remus_virt_check_libvirt_version(8002000, &err), 0);
	assert_int_equal(remus_virt_check_libvirt_version(11003000, &err), 0);
	assert_int_equal(remus_virt_check_libvirt_version(8001007, &err), -ENOTSUP);
	assert_string_equal(err.code, "libvirt-too-old");
	assert_non_null(strstr(err.message, "libvirt 8.1.7"));
	assert_non_null(strstr(err.message, ">= 8.2.0"));
	assert_non_null(strstr(err.message, "upgrade libvirt"));

	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_check_qemu_version(v10, strlen(v10), &ma, &mi, &mc, &err), 0);
	assert_int_equal(ma, 10);
	assert_int_equal(mi, 0);
	assert_int_equal(mc, 2);
	assert_int_equal(remus_virt_check_qemu_version(v81, strlen(v81), NULL, NULL, NULL, &err), 0);
	assert_int_equal(remus_virt_check_qemu_version(v80, strlen(v80), NULL, NULL, NULL, &err),
			 -ENOTSUP);
	assert_string_equal(err.code, "qemu-too-old");
	assert_non_null(strstr(err.message, "QEMU 8.0.0"));
	assert_non_null(strstr(err.message, ">= 8.1"));
	assert_non_null(strstr(err.message, "switchover-ack"));
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(remus_virt_check_qemu_version(junk[i], strlen(junk[i]), NULL, NULL,
							       NULL, &err),
				 -EINVAL);
		assert_string_equal(err.code, "internal");
	}
}

static void test_migrate_status(void **state)
{
	char st[16];
	const char *c = "{\"return\":{\"status\":\"completed\",\"total-time\":5},\"id\":\"l-1\"}";

	assert_int_equal(remus_virt_migrate_status("{\"return\":{}}", 13, st, sizeof(st)), 0);
	assert_string_equal(st, "none");
	assert_int_equal(remus_virt_migrate_status(c, strlen(c), st, sizeof(st)), 0);
	assert_string_equal(st, "completed");
	assert_int_equal(remus_virt_migrate_status("{\"status\":\"active\"}", 19, st, 4), 0);
	assert_string_equal(st, "act"); /* cut to the buffer */
	assert_int_equal(remus_virt_migrate_status("{\"status\":3}", 12, st, sizeof(st)), -EINVAL);
	assert_int_equal(remus_virt_migrate_status("nope", 4, st, sizeof(st)), -EINVAL);
	assert_int_equal(remus_virt_migrate_status("{\"return\":1}", 12, st, sizeof(st)), -EINVAL);
}

static void test_error_first_wins(void **state)
{
	struct remus_virt_error err = { 0 };

	assert_int_equal(remus_virt_error_set(&err, -5, "bad-disk", "first %d", 1), -5);
	assert_int_equal(remus_virt_error_set(&err, -7, "internal", "second"), -7);
	assert_string_equal(err.code, "bad-disk");
	assert_string_equal(err.message, "first 1");
	assert_int_equal(remus_virt_error_set(NULL, -3, "x", "y"), -3);
}

static bool has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static const struct remus_virt_nbd web1_nbd[] = {
	{ "vda", "/run/remus/web1.nbd", "vda" },
	{ "vdb", "/run/remus/web1.nbd", "vdb" },
};

static void test_standby_live(void **state)
{
	char *xml = slurp("web1-live.xml"), *out = NULL;
	struct remus_virt_standby_spec spec = { "unix:/run/remus/web1.in", web1_nbd, 2 };
	struct remus_virt_error err = { 0 };
	struct remus_virt_domain d;

	assert_int_equal(remus_virt_standby_xml(xml, strlen(xml), &spec, &out, &err), 0);
	parse_ok(out, &d);
	assert_string_equal(d.name, "web1");
	assert_string_equal(d.uuid, "0d6a3f8e-5b7c-4e21-9f0a-2c4b6d8e1f30");
	assert_int_equal(d.id, -1); /* the primary's id is not the standby's */
	assert_int_equal(d.memory_kib, 1048576);
	assert_int_equal(d.ndisks, 3);
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(d.disks[i].type, "network");
		assert_string_equal(d.disks[i].protocol, "nbd");
		assert_string_equal(d.disks[i].format, "raw");
		assert_string_equal(d.disks[i].source, web1_nbd[i].export);
		assert_string_equal(d.disks[i].target, web1_nbd[i].target);
	}
	assert_string_equal(d.disks[2].device, "cdrom");
	assert_null(d.disks[2].source);
	assert_int_equal(d.nnics, 2);
	assert_string_equal(d.nics[0].source, "br0");
	assert_string_equal(d.nics[0].mac, "52:54:00:12:34:56");
	assert_string_equal(d.nics[0].model, "virtio");
	assert_null(d.nics[0].target_dev); /* vnet3 is made anew there */
	assert_string_equal(d.nics[1].source, "default");
	assert_string_equal(d.nics[1].mac, "52:54:00:ab:cd:ef");
	assert_int_equal(d.nqemu_args, 2);
	assert_string_equal(d.qemu_args[0], "-incoming");
	assert_string_equal(d.qemu_args[1], "unix:/run/remus/web1.in");
	remus_virt_domain_release(&d);

	assert_true(has(out, "<host transport=\"unix\" socket=\"/run/remus/web1.nbd\"/>"));
	assert_true(has(out, "cache=\"none\""));     /* the driver keeps its options */
	assert_true(has(out, "discard=\"unmap\""));
	assert_false(has(out, "io=\"native\""));     /* not for an NBD disk */
	assert_false(has(out, "backingStore"));
	assert_false(has(out, "base.qcow2"));
	assert_false(has(out, "web1.qcow2"));
	assert_false(has(out, "virtio-disk0"));      /* libvirt's aliases go */
	assert_true(has(out, "<alias name=\"ua-data\"/>")); /* the user's stay */
	assert_true(has(out, "<serial>DATA-1</serial>"));
	assert_int_equal(count(out, "<address type=\"pci\""), 6); /* every address kept */
	assert_false(has(out, "/dev/pts"));
	assert_false(has(out, "domain-7-web1"));
	/* a channel path that is not libvirt's per-run one stays */
	assert_true(has(out, "/run/libvirt/qemu/channel/7-web1/org.qemu.guest_agent.0"));
	assert_false(has(out, "port=\"5900\""));
	assert_true(has(out, "autoport=\"yes\""));
	assert_false(has(out, "+64055"));            /* generated seclabels */
	assert_true(has(out, "<seclabel type=\"dynamic\" model=\"dac\" relabel=\"yes\""));
	assert_false(has(out, "id=\"7\""));
	assert_false(has(out, "portid"));             /* the primary host's port */
	assert_false(has(out, "virbr0"));
	assert_int_equal(count(out, "xmlns:qemu="), 1);
	assert_int_equal(count(out, "<qemu:commandline>"), 1);
	free(out);
	free(xml);
}

static void test_standby_odd(void **state)
{
	char *xml = slurp("odd-cmdline.xml"), *out = NULL;
	static const struct remus_virt_nbd nbd[] = { { "hda", "/tmp/a b&'c\".sock", "e<x>" } };
	struct remus_virt_standby_spec spec = { "defer", nbd, 1 };
	struct remus_virt_error err = { 0 };
	struct remus_virt_domain d;

	assert_int_equal(remus_virt_standby_xml(xml, strlen(xml), &spec, &out, &err), 0);
	parse_ok(out, &d);
	assert_string_equal(d.name, "odd & \"quoted\"");
	assert_string_equal(d.disks[0].source, "e<x>");
	assert_string_equal(d.disks[0].format, "raw");
	/* the existing commandline, its -incoming replaced, under its prefix */
	assert_int_equal(d.nqemu_args, 4);
	assert_string_equal(d.qemu_args[0], "-foo");
	assert_string_equal(d.qemu_args[1], "bar");
	assert_string_equal(d.qemu_args[2], "-incoming");
	assert_string_equal(d.qemu_args[3], "defer");
	assert_string_equal(d.nics[1].target_dev, "tap-odd"); /* the user's tap name */
	remus_virt_domain_release(&d);
	assert_int_equal(count(out, "commandline>"), 2); /* one element: open and close */
	assert_true(has(out, "<q:env name=\"X\" value=\"1\"/>"));
	assert_false(has(out, "xmlns:qemu"));
	assert_false(has(out, "tcp:0:4444"));
	free(out);
	free(xml);
}

/* Found by fuzz_domain_xml's campaign: libvirt accepts several
 * <qemu:commandline> elements and joins their args; the standby's
 * -incoming went into the first while an -incoming of the second stayed,
 * last on QEMU's command line, so the standby would listen elsewhere. */
static void test_standby_two_cmdlines(void **state)
{
	static const char xml[] =
		"<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
		"<name>x</name><uuid>u</uuid>"
		"<qemu:commandline><qemu:arg value='-a'/></qemu:commandline>"
		"<qemu:commandline><qemu:arg value='-incoming'/><qemu:arg value='tcp:0:4444'/>"
		"<qemu:arg value='-b'/></qemu:commandline></domain>";
	struct remus_virt_standby_spec spec = { "defer", NULL, 0 };
	struct remus_virt_error err = { 0 };
	struct remus_virt_domain d;
	char *out = NULL;

	(void)state;
	assert_int_equal(remus_virt_standby_xml(xml, strlen(xml), &spec, &out, &err), 0);
	parse_ok(out, &d);
	assert_int_equal(d.nqemu_args, 4);
	assert_string_equal(d.qemu_args[0], "-a");
	assert_string_equal(d.qemu_args[1], "-b");
	assert_string_equal(d.qemu_args[2], "-incoming");
	assert_string_equal(d.qemu_args[3], "defer");
	assert_false(has(out, "tcp:0:4444"));
	remus_virt_domain_release(&d);
	free(out);
}

/* Found by fuzz_domain_xml's campaign: a <name> with elements inside
 * (here a whole <devices>) read as the text of all of them, so the
 * standby's rewrite of those devices renamed the domain. */
static void test_name_with_elements(void **state)
{
	static const char xml[] =
		"<domain><name>a<devices><interface type='bridge'><target dev='vnet0'/>"
		"</interface></devices>b</name><uuid>u</uuid></domain>";
	struct remus_virt_standby_spec spec = { "defer", NULL, 0 };
	struct remus_virt_error err = { 0 };
	struct remus_virt_domain d;
	char *out = NULL;

	(void)state;
	assert_int_equal(remus_virt_domain_parse(xml, strlen(xml), &d, &err), -EINVAL);
	assert_string_equal(err.code, "bad-request");
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_standby_xml(xml, strlen(xml), &spec, &out, &err), -EINVAL);
	assert_string_equal(err.code, "bad-request");
	assert_null(out);
}

static void test_standby_refuses(void **state)
{
	char *xml = slurp("web1-live.xml"), *out = (char *)1;
	struct remus_virt_standby_spec spec = { "defer", web1_nbd, 1 }; /* no vdb */
	struct remus_virt_error err = { 0 };

	assert_int_equal(remus_virt_standby_xml(xml, strlen(xml), &spec, &out, &err), -EINVAL);
	assert_null(out);
	assert_string_equal(err.code, "bad-disk");
	assert_non_null(strstr(err.message, "disk vdb of domain web1 has no NBD export"));

	memset(&err, 0, sizeof(err));
	spec.ndisks = 2;
	spec.incoming = "";
	assert_int_equal(remus_virt_standby_xml(xml, strlen(xml), &spec, &out, &err), -EINVAL);
	assert_string_equal(err.code, "bad-request");

	memset(&err, 0, sizeof(err));
	spec.incoming = "defer";
	assert_int_equal(remus_virt_standby_xml("<domain><name>x</name></domain>", 31, &spec, &out,
						&err),
			 -EINVAL);
	assert_string_equal(err.code, "bad-request");
	assert_non_null(strstr(err.message, "UUID"));
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_standby_xml("<domain>", 8, &spec, &out, &err), -EINVAL);
	assert_string_equal(err.code, "bad-request");

	/* Found by fuzz_domain_xml: a QEMU namespace bound to the prefix
	 * "q:emu" made the standby's -incoming land in elements that, read
	 * back, were in no namespace, so the standby would not wait. */
	{
		static const char odd[] =
			"<domain xmlns:q:emu='http://libvirt.org/schemas/domain/qemu/1.0'>"
			"<name>x</name><uuid>u</uuid><qemu:commandline><qemu:arg value='-incoming'/>"
			"</qemu:commandline></domain>";

		memset(&err, 0, sizeof(err));
		assert_int_equal(remus_virt_standby_xml(odd, strlen(odd), &spec, &out, &err),
				 -EINVAL);
		assert_string_equal(err.code, "bad-request");
		assert_null(out);
	}
	free(xml);
}

static void test_disk_xml(void **state)
{
	char *out = NULL;

	assert_int_equal(remus_virt_nbd_disk_xml("/run/remus/w&1.nbd", "vda", &out), 0);
	assert_string_equal(out, "<disk type=\"network\" device=\"disk\"><driver name=\"qemu\" "
				 "type=\"raw\"/><source protocol=\"nbd\" name=\"vda\"><host "
				 "transport=\"unix\" socket=\"/run/remus/w&amp;1.nbd\"/></source>"
				 "</disk>");
	free(out);
	assert_int_equal(remus_virt_file_disk_xml("/i/web1.qcow2", "qcow2", &out), 0);
	assert_string_equal(out, "<disk type=\"file\" device=\"disk\"><driver name=\"qemu\" "
				 "type=\"qcow2\"/><source file=\"/i/web1.qcow2\"/></disk>");
	free(out);
	assert_int_equal(remus_virt_file_disk_xml("/i/x", "vmdk", &out), -EINVAL);
	assert_null(out);
}

static void test_host_nics(void **state)
{
	char dir[] = "/tmp/test_domain.XXXXXX", path[256];
	struct remus_virt_domain d;
	struct remus_virt_error err = { 0 };
	char *xml = slurp("web1-live.xml");

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/class", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/class/net", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/class/net/br0", dir);
	assert_int_equal(mkdir(path, 0700), 0);

	parse_ok(xml, &d);
	/* br0 is an interface but no bridge */
	assert_int_equal(remus_virt_check_host_nics(NULL, dir, &d, &err), -ENOENT);
	assert_string_equal(err.code, "no-bridge");
	assert_non_null(strstr(err.message, "no bridge br0 for interface 52:54:00:12:34:56 of "
					    "domain web1"));
	assert_non_null(strstr(err.message, "ip link add br0 type bridge"));

	snprintf(path, sizeof(path), "%s/class/net/br0/bridge", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	/* the network NIC is not checked without a connection */
	assert_int_equal(remus_virt_check_host_nics(NULL, dir, &d, NULL), 0);
	free(d.nics[0].source);
	d.nics[0].source = strdup("../br0");
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_check_host_nics(NULL, dir, &d, &err), -ENOENT);
	assert_string_equal(err.code, "no-bridge");
	remus_virt_domain_release(&d);

	rmdir(path);
	snprintf(path, sizeof(path), "%s/class/net/br0", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/class/net", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/class", dir);
	rmdir(path);
	rmdir(dir);
	free(xml);
}

/* A NIC on a libvirt network whose network hands out a host bridge
 * (<forward mode='bridge'/>) or a macvtap device shows in the live XML
 * with the type its port got, not 'network': libvirt 11.3 wrote the first
 * one below, measured in the lab (tests/integration/libvirt/
 * libvirt-network.sh).  It is still a network NIC: the standby's host
 * must have the network, and the standby gets type 'network' on it,
 * without this host's port, bridge or device. */
static const char net_actual_xml[] =
	"<domain type='qemu' id='1'><name>web1</name>"
	"<uuid>b19c8aa5-588e-4c2e-b08d-f7b8dcc2e75b</uuid><devices>"
	"<interface type='bridge'><mac address='52:54:00:4c:41:01'/>"
	"<source network='lan' portid='35be0afc-eff2-442e-963a-397efd181393' bridge='br0'/>"
	"<target dev='vnet0'/><model type='virtio'/><alias name='net0'/>"
	"<address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>"
	"</interface>"
	"<interface type='direct'><mac address='52:54:00:4c:41:02'/>"
	"<source network='mvtap' portgroup='web' portid='0e7c2f43-4d31-4a8e-9c55-61b0d7a3e012' "
	"dev='eth0' mode='vepa'/><target dev='macvtap0'/><model type='virtio'/>"
	"</interface>"
	"<interface type='bridge'><mac address='52:54:00:4c:41:03'/>"
	"<source bridge='br1'/><model type='virtio'/></interface>"
	"</devices></domain>";

static void test_network_nic_actual_type(void **state)
{
	static const char *const sysfs[] = { "class", "class/net", "class/net/br1",
					     "class/net/br1/bridge" };
	struct remus_virt_standby_spec spec = { "defer", NULL, 0 };
	struct remus_virt_error err = { 0 };
	char dir[] = "/tmp/test_domain.XXXXXX", path[256];
	struct remus_virt_domain d;
	char *out = NULL;

	parse_ok(net_actual_xml, &d);
	assert_int_equal(d.nnics, 3);
	assert_string_equal(d.nics[0].type, "network");
	assert_string_equal(d.nics[0].source, "lan");
	assert_string_equal(d.nics[0].mac, "52:54:00:4c:41:01");
	assert_string_equal(d.nics[1].type, "network");
	assert_string_equal(d.nics[1].source, "mvtap");
	assert_string_equal(d.nics[2].type, "bridge"); /* a plain bridge NIC */
	assert_string_equal(d.nics[2].source, "br1");

	/* Without a connection only bridges are checked: br1 is; br0, this
	 * host's bridge under network lan, is not the standby's business. */
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(sysfs) / sizeof(sysfs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sysfs[i]);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	assert_int_equal(remus_virt_check_host_nics(NULL, dir, &d, &err), 0);
	assert_string_equal(err.code, "");
	for (size_t i = sizeof(sysfs) / sizeof(sysfs[0]); i-- > 0;) {
		snprintf(path, sizeof(path), "%s/%s", dir, sysfs[i]);
		rmdir(path);
	}
	rmdir(dir);
	remus_virt_domain_release(&d);

	assert_int_equal(remus_virt_standby_xml(net_actual_xml, strlen(net_actual_xml), &spec,
						&out, &err), 0);
	parse_ok(out, &d);
	assert_string_equal(d.nics[0].type, "network");
	assert_string_equal(d.nics[0].source, "lan");
	assert_string_equal(d.nics[0].mac, "52:54:00:4c:41:01");
	assert_string_equal(d.nics[0].model, "virtio");
	assert_null(d.nics[0].target_dev);
	assert_string_equal(d.nics[1].type, "network");
	assert_string_equal(d.nics[1].source, "mvtap");
	assert_string_equal(d.nics[2].type, "bridge");
	assert_string_equal(d.nics[2].source, "br1");
	remus_virt_domain_release(&d);
	assert_int_equal(count(out, "<interface type=\"network\">"), 2);
	assert_true(has(out, "<source network=\"lan\"/>"));
	assert_true(has(out, "<source network=\"mvtap\" portgroup=\"web\"/>"));
	assert_true(has(out, "<source bridge=\"br1\"/>"));
	assert_false(has(out, "portid"));
	assert_false(has(out, "br0"));
	assert_false(has(out, "eth0"));
	assert_false(has(out, "vepa"));
	assert_false(has(out, "macvtap0"));
	free(out);
	(void)state;
}

/* Which definition already here a standby may be created over: only
 * remusd's own (recorded here, or a standby it made), shut off, with the
 * same name and UUID; every refusal names the domain and the fix. */
static void test_standby_over(void **state)
{
	const char *U = "0d6a3f8e-5b7c-4e21-9f0a-2c4b6d8e1f30";
	struct remus_virt_existing off = { .name = "web1", .uuid = "0D6A3F8E-5B7C-4E21-9F0A-2C4B6D8E1F30",
					   .state = "shut off" };
	struct remus_virt_existing e;
	struct remus_virt_error err;

	(void)state;
	memset(&err, 0, sizeof(err));
	/* the old primary's host after a failover: recorded, shut off */
	assert_int_equal(remus_virt_standby_over(&off, "web1", U, true, &err), 0);
	assert_string_equal(err.code, "");
	/* not recorded, but a standby remusd made */
	e = off;
	e.remus_standby = true;
	assert_int_equal(remus_virt_standby_over(&e, "web1", U, false, &err), 0);
	/* never managed by remusd here */
	assert_int_equal(remus_virt_standby_over(&off, "web1", U, false, &err), -EEXIST);
	assert_string_equal(err.code, "exists");
	assert_non_null(strstr(err.message, "never protected"));
	assert_non_null(strstr(err.message, "virsh undefine web1"));
	/* running: never replaced, recorded or not */
	e = off;
	e.active = true;
	e.state = "running";
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_standby_over(&e, "web1", U, true, &err), -EEXIST);
	assert_non_null(strstr(err.message, "web1"));
	assert_non_null(strstr(err.message, "virsh destroy web1"));
	e.remus_standby = true;
	assert_int_equal(remus_virt_standby_over(&e, "web1", U, true, NULL), -EEXIST);
	/* same name, another UUID: another domain */
	e = off;
	e.uuid = "11111111-2222-3333-4444-555555555555";
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_standby_over(&e, "web1", U, true, &err), -EEXIST);
	assert_non_null(strstr(err.message, "another UUID"));
	assert_non_null(strstr(err.message, "virsh undefine web1"));
	/* the UUID under another name */
	e = off;
	e.name = "web9";
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_standby_over(&e, "web1", U, true, &err), -EEXIST);
	assert_non_null(strstr(err.message, "web9 with the UUID of web1"));
	/* nothing known: refused */
	memset(&e, 0, sizeof(e));
	assert_int_equal(remus_virt_standby_over(&e, "web1", U, true, NULL), -EEXIST);
	assert_int_equal(remus_virt_standby_over(&off, "web1", NULL, true, NULL), -EEXIST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_live),
		cmocka_unit_test(test_parse_odd),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_check_disks),
		cmocka_unit_test(test_check_domain),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_migrate_status),
		cmocka_unit_test(test_error_first_wins),
		cmocka_unit_test(test_standby_live),
		cmocka_unit_test(test_standby_odd),
		cmocka_unit_test(test_standby_two_cmdlines),
		cmocka_unit_test(test_name_with_elements),
		cmocka_unit_test(test_standby_refuses),
		cmocka_unit_test(test_disk_xml),
		cmocka_unit_test(test_host_nics),
		cmocka_unit_test(test_network_nic_actual_type),
		cmocka_unit_test(test_standby_over),
		cmocka_unit_test(test_disks_on_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
