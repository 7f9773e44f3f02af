// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for the blocking half of virt/domain.h against libvirt's
 * in-process test driver (test:///default: domain "test" running, network
 * "default" active; every connection gets a fresh copy): the codes and
 * messages of lookup, the exists check, the create's refusals, destroy of a
 * domain that is gone, the network check of NICs, libvirt's version.  What
 * the test driver cannot do (start paused, QEMU's monitor, block copy) is in the
 * integration test virt-domain-libvirt.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libvirt/virterror.h>

#include "virt/domain.h"

#define TEST_UUID "6695eb01-f6a4-8304-79aa-97f2502e193f"

static void silent(void *opaque, virErrorPtr e)
{
}

static int setup(void **state)
{
	virSetErrorFunc(NULL, silent);
	*state = virConnectOpen("test:///default");
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	virConnectClose(*state);
	return 0;
}

static void has_words(const struct remus_virt_error *err, const char *code, const char *w1,
		      const char *w2)
{
	assert_string_equal(err->code, code);
	if (!strstr(err->message, w1) || !strstr(err->message, w2))
		fail_msg("'%s' lacks '%s' or '%s'", err->message, w1, w2);
}

static void test_lookup(void **state)
{
	virConnectPtr conn = *state;
	struct remus_virt_error err = { 0 };
	virDomainPtr dom = NULL;

	assert_int_equal(remus_virt_lookup_running(conn, "test", &dom, &err), 0);
	assert_non_null(dom);
	assert_string_equal(err.code, "");

	assert_int_equal(virDomainSuspend(dom), 0);
	virDomainPtr d2 = (virDomainPtr)1;
	assert_int_equal(remus_virt_lookup_running(conn, "test", &d2, &err), -EAGAIN);
	assert_null(d2);
	has_words(&err, "not-running", "domain test is paused", "virsh resume test");
	assert_int_equal(virDomainResume(dom), 0);

	assert_int_equal(virDomainDestroy(dom), 0);
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_lookup_running(conn, "test", &d2, &err), -EAGAIN);
	has_words(&err, "not-running", "is shut off", "virsh start test");

	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_lookup_running(conn, "web9", &d2, &err), -ENOENT);
	has_words(&err, "no-domain", "no domain web9", "virsh list --all");
	virDomainFree(dom);
}

static void test_live_xml_and_checks(void **state)
{
	virConnectPtr conn = *state;
	struct remus_virt_error err = { 0 };
	struct remus_virt_domain d;
	virDomainPtr dom = NULL;
	unsigned long v = 0;
	char *xml = NULL;

	assert_int_equal(remus_virt_lookup_running(conn, "test", &dom, &err), 0);
	assert_int_equal(remus_virt_live_xml(dom, &xml, &err), 0);
	assert_int_equal(remus_virt_domain_parse(xml, strlen(xml), &d, &err), 0);
	assert_string_equal(d.uuid, TEST_UUID);
	assert_int_equal(d.nnics, 1);
	assert_string_equal(d.nics[0].source, "default");
	/* the network exists and is active on this connection */
	assert_int_equal(remus_virt_check_host_nics(conn, NULL, &d, &err), 0);
	free(d.nics[0].source);
	d.nics[0].source = strdup("lab");
	assert_int_equal(remus_virt_check_host_nics(conn, NULL, &d, &err), -ENOENT);
	has_words(&err, "no-bridge", "no such libvirt network lab", "virsh net-start lab");

	virNetworkPtr net = virNetworkLookupByName(conn, "default");
	assert_non_null(net);
	assert_int_equal(virNetworkDestroy(net), 0);
	free(d.nics[0].source);
	d.nics[0].source = strdup("default");
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_check_host_nics(conn, NULL, &d, &err), -ENOENT);
	has_words(&err, "no-bridge", "no active libvirt network default", "aa:bb:cc:dd:ee:ff");
	virNetworkFree(net);

	assert_int_equal(virConnectGetLibVersion(conn, &v), 0);
	assert_int_equal(remus_virt_check_libvirt_version(v, &err), 0);
	remus_virt_domain_release(&d);
	free(xml);
	virDomainFree(dom);
}

static void test_create_paused_and_destroy(void **state)
{
	virConnectPtr conn = *state;
	struct remus_virt_error err = { 0 };
	virDomainPtr dom = NULL, again = NULL;
	int st = 0, reason = 0;
	const char *xml = "<domain type='test'><name>web1</name>"
			  "<uuid>0d6a3f8e-5b7c-4e21-9f0a-2c4b6d8e1f30</uuid>"
			  "<memory>65536</memory><os><type>hvm</type></os></domain>";
	const char *same_uuid = "<domain type='test'><name>web2</name>"
				"<uuid>" TEST_UUID "</uuid>"
				"<memory>65536</memory><os><type>hvm</type></os></domain>";

	const char *fresh = "<domain type='test'><name>web3</name>"
			    "<memory>65536</memory><os><type>hvm</type></os></domain>";

	assert_int_equal(remus_virt_check_absent(conn, "web1", "0d6a3f8e-5b7c-4e21-9f0a-2c4b6d8e1f30",
						 &err),
			 0);
	/* The test driver cannot start paused: its refusal comes back as
	 * libvirt's message, with the domain named. */
	assert_int_equal(remus_virt_create_paused(conn, fresh, false, &dom, &err), -EIO);
	assert_null(dom);
	has_words(&err, "internal", "cannot create domain web3 paused", "unsupported flags");
	memset(&err, 0, sizeof(err));
	dom = virDomainCreateXML(conn, xml, 0);
	assert_non_null(dom);
	assert_int_equal(virDomainGetState(dom, &st, &reason, 0), 0);
	assert_int_equal(st, VIR_DOMAIN_RUNNING);
	assert_int_equal(virDomainIsPersistent(dom), 0); /* transient */

	/* a second one with that name, or with another's UUID, is refused */
	assert_int_equal(remus_virt_create_paused(conn, xml, false, &again, &err), -EEXIST);
	assert_null(again);
	has_words(&err, "exists", "with the name of web1", "running");
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_create_paused(conn, same_uuid, false, &again, &err), -EEXIST);
	has_words(&err, "exists", "UUID " TEST_UUID, "virsh undefine test");
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_create_paused(conn, "<domain>", false, &again, &err), -EINVAL);
	assert_string_equal(err.code, "bad-request");

	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_destroy(dom, &err), 0);
	/* gone, and a transient domain with it: destroying it again is fine */
	assert_int_equal(remus_virt_destroy(dom, &err), 0);
	assert_string_equal(err.code, "");
	assert_int_equal(remus_virt_check_absent(conn, "web1", NULL, &err), 0);
	virDomainFree(dom);
}

/* The standby's slot against the test driver: a shut-off definition
 * with the same name and UUID is replaced only when recorded; a running
 * domain, another UUID, a definition remusd never managed are refused. */
static void test_standby_slot(void **state)
{
	virConnectPtr conn = *state;
	struct remus_virt_error err = { 0 };
	const char *U = "0d6a3f8e-5b7c-4e21-9f0a-2c4b6d8e1f30";
	const char *xml = "<domain type='test'><name>web1</name>"
			  "<uuid>0d6a3f8e-5b7c-4e21-9f0a-2c4b6d8e1f30</uuid>"
			  "<memory>65536</memory><os><type>hvm</type></os></domain>";
	virDomainPtr def;
	bool over = true;

	assert_int_equal(remus_virt_check_standby_slot(conn, "web1", U, NULL, false, &over, &err), 0);
	assert_false(over);
	def = virDomainDefineXML(conn, xml);
	assert_non_null(def);
	assert_int_equal(remus_virt_check_standby_slot(conn, "web1", U, NULL, true, &over, &err), 0);
	assert_true(over);
	assert_int_equal(remus_virt_check_standby_slot(conn, "web1", U, NULL, false, &over, &err),
			 -EEXIST);
	assert_false(over);
	has_words(&err, "exists", "never protected", "virsh undefine web1");
	memset(&err, 0, sizeof(err));
	assert_int_equal(remus_virt_check_standby_slot(conn, "web1",
						       "11111111-2222-3333-4444-555555555555", NULL,
						       true, &over, &err), -EEXIST);
	has_words(&err, "exists", "another UUID", "virsh undefine web1");
	memset(&err, 0, sizeof(err));
	/* running: the test driver's own domain "test" */
	assert_int_equal(remus_virt_check_standby_slot(conn, "test", TEST_UUID, NULL, true, &over,
						       &err), -EEXIST);
	has_words(&err, "exists", "running", "virsh destroy test");
	memset(&err, 0, sizeof(err));
	/* created over the definition: running as its live instance */
	assert_int_equal(virDomainCreate(def), 0);
	assert_int_equal(remus_virt_check_standby_slot(conn, "web1", U, NULL, true, &over, &err),
			 -EEXIST);
	virDomainDestroy(def);
	virDomainUndefine(def);
	virDomainFree(def);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_xml_and_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_paused_and_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standby_slot, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
