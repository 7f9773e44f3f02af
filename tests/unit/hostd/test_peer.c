// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Peer protocol messages (hostd/peer.h): each message survives format ->
 * parse; each kind of bad line is refused with a message that says what;
 * an XML of almost 1 MiB fits a line and one over it does not.
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

#include "hostd/peer.h"
#include "hostd/request.h"

static char err[512];

static void roundtrip(const struct remus_hostd_peer_msg *m, struct remus_hostd_peer_msg *out)
{
	char *line = remus_hostd_peer_format(m);

	assert_non_null(line);
	assert_null(strchr(line, '\n'));
	err[0] = 0;
	if (remus_hostd_peer_parse(line, strlen(line), out, err, sizeof(err)) != 0)
		fail_msg("'%s' refused: %s", line, err);
	free(line);
}

static void test_hello(void **state)
{
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_HELLO, .version = 1 }, b;

	snprintf(m.host, sizeof(m.host), "hostA");
	roundtrip(&m, &b);
	assert_int_equal(b.kind, REMUS_HOSTD_PEER_HELLO);
	assert_int_equal(b.version, 1);
	assert_string_equal(b.host, "hostA");
	remus_hostd_peer_msg_release(&b);
}

static void test_create_standby(void **state)
{
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST,
					  .req = REMUS_HOSTD_PEER_CREATE_STANDBY, .id = 7 }, b;

	snprintf(m.domain, sizeof(m.domain), "web1");
	snprintf(m.uuid, sizeof(m.uuid), "6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f");
	m.xml = strdup("<domain type='qemu'><name>web1</name>\n<uuid>\"x\"</uuid></domain>");
	m.ndisks = 1;
	snprintf(m.disks[0].target, sizeof(m.disks[0].target), "vda");
	snprintf(m.disks[0].format, sizeof(m.disks[0].format), "qcow2");
	m.disks[0].size = 1ull << 40;
	m.options = (struct remus_hostd_peer_options){ 200, 150, 100, 5, REMUS_HOSTD_NB_OFF,
						       REMUS_HOSTD_REPROTECT_MANUAL };
	snprintf(m.primary, sizeof(m.primary), "hostA");
	m.primary_port = 7790;
	m.takeover = 3;
	roundtrip(&m, &b);
	assert_int_equal(b.kind, REMUS_HOSTD_PEER_REQUEST);
	assert_int_equal(b.req, REMUS_HOSTD_PEER_CREATE_STANDBY);
	assert_int_equal(b.id, 7);
	assert_string_equal(b.domain, "web1");
	assert_string_equal(b.uuid, m.uuid);
	assert_string_equal(b.xml, m.xml);
	assert_int_equal(b.ndisks, 1);
	assert_memory_equal(&b.disks[0], &m.disks[0], sizeof(m.disks[0]));
	assert_memory_equal(&b.options, &m.options, sizeof(m.options));
	assert_string_equal(b.primary, "hostA");
	assert_int_equal(b.primary_port, 7790);
	assert_int_equal(b.takeover, 3);
	remus_hostd_peer_msg_release(&b);
	remus_hostd_peer_msg_release(&m);
}

static void test_small_requests_and_answers(void **state)
{
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST, .id = 8 }, b;
	enum remus_hostd_peer_req r;

	snprintf(m.domain, sizeof(m.domain), "web1");
	/* (set-interval has its own test: it carries the settings) */
	for (unsigned k = 0; k < 4; k++) {
		r = (enum remus_hostd_peer_req[]){ REMUS_HOSTD_PEER_DESTROY_STANDBY,
						   REMUS_HOSTD_PEER_FAILOVER, REMUS_HOSTD_PEER_PING,
						   REMUS_HOSTD_PEER_QUERY }[k];
		m.req = r;
		roundtrip(&m, &b);
		assert_int_equal(b.req, r);
		assert_int_equal(b.id, 8);
		assert_string_equal(b.domain, r == REMUS_HOSTD_PEER_PING ? "" : "web1");
		remus_hostd_peer_msg_release(&b);
	}
	m = (struct remus_hostd_peer_msg){ .kind = REMUS_HOSTD_PEER_ANSWER, .id = 7, .ok = true,
					   .repl_port = 7800 };
	roundtrip(&m, &b);
	assert_int_equal(b.kind, REMUS_HOSTD_PEER_ANSWER);
	assert_true(b.ok);
	assert_int_equal(b.repl_port, 7800);
	assert_int_equal(b.code, -1);
	m = (struct remus_hostd_peer_msg){ .kind = REMUS_HOSTD_PEER_ANSWER, .id = 9,
					   .code = REMUS_HOSTD_E_NO_BRIDGE };
	snprintf(m.error, sizeof(m.error), "hostB has no bridge br0: create it");
	roundtrip(&m, &b);
	assert_false(b.ok);
	assert_int_equal(b.id, 9);
	assert_int_equal(b.code, REMUS_HOSTD_E_NO_BRIDGE);
	assert_string_equal(b.error, m.error);
	assert_false(b.runs_primary);
	/* A refusal from a host that runs the domain as primary says with
	 * which takeover count (hostd/fence.h); 0 is a count too. */
	for (uint64_t t = 0; t <= 1; t++) {
		m = (struct remus_hostd_peer_msg){ .kind = REMUS_HOSTD_PEER_ANSWER, .id = 10,
						   .code = REMUS_HOSTD_E_EXISTS,
						   .runs_primary = true, .takeover = t };
		snprintf(m.error, sizeof(m.error), "runs here");
		roundtrip(&m, &b);
		assert_false(b.ok);
		assert_true(b.runs_primary);
		assert_int_equal(b.takeover, t);
	}
	/* query's answers: how the answering host holds the domain, with
	 * its count; none at all (no record there, or its copy does not
	 * run there). */
	for (int role = 0; role < 3; role++) {
		m = (struct remus_hostd_peer_msg){ .kind = REMUS_HOSTD_PEER_ANSWER, .id = 11,
						   .ok = true, .runs_primary = role == 1,
						   .holds_standby = role == 2, .takeover = role ? 4 : 0 };
		roundtrip(&m, &b);
		assert_true(b.ok);
		assert_int_equal(b.runs_primary, role == 1);
		assert_int_equal(b.holds_standby, role == 2);
		assert_int_equal(b.takeover, role ? 4 : 0);
	}
}

/* set-interval carries the primary's current settings to the standby's
 * record (hostd.c: they survive a takeover). */
static void test_set_interval(void **state)
{
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST, .id = 11,
					  .req = REMUS_HOSTD_PEER_SET_INTERVAL }, b;
	char *line;

	snprintf(m.domain, sizeof(m.domain), "web1");
	m.options.interval_ms = 300;
	m.options.pause_budget_ms = 250;
	line = remus_hostd_peer_format(&m);
	assert_non_null(line);
	assert_string_equal(line, "{\"req\":\"set-interval\",\"id\":11,\"domain\":\"web1\","
			    "\"interval_ms\":300,\"pause_budget_ms\":250}");
	free(line);
	roundtrip(&m, &b);
	assert_int_equal(b.req, REMUS_HOSTD_PEER_SET_INTERVAL);
	assert_string_equal(b.domain, "web1");
	assert_int_equal(b.options.interval_ms, 300);
	assert_int_equal(b.options.pause_budget_ms, 250);
	remus_hostd_peer_msg_release(&b);
	assert_string_equal(remus_hostd_peer_req_name(REMUS_HOSTD_PEER_SET_INTERVAL),
			    "set-interval");
}

static void refused(const char *line, const char *why)
{
	struct remus_hostd_peer_msg b;

	err[0] = 0;
	assert_int_equal(remus_hostd_peer_parse(line, strlen(line), &b, err, sizeof(err)), -EINVAL);
	remus_hostd_peer_msg_release(&b);
	if (!strstr(err, why))
		fail_msg("'%s': error '%s' does not say '%s'", line, err, why);
}

#define CS "{\"req\":\"create-standby\",\"id\":1,\"domain\":\"w\"," \
	"\"uuid\":\"6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f\",\"xml\":\"<domain/>\""
#define OPTS "\"options\":{\"interval_ms\":200,\"pause_budget_ms\":300,\"heartbeat_ms\":100," \
	"\"miss\":5,\"netbuffer\":\"qemu\",\"reprotect\":\"auto\"}"

static void test_refused(void **state)
{
	struct remus_hostd_peer_msg b;
	const char *good = CS ",\"disks\":[]," OPTS ",\"primary\":\"a\",\"primary_port\":7790}";

	assert_int_equal(remus_hostd_peer_parse(good, strlen(good), &b, err, sizeof(err)), 0);
	/* A peer from before the fence rule sends no takeover: 0. */
	assert_int_equal(b.takeover, 0);
	remus_hostd_peer_msg_release(&b);
	refused(CS ",\"disks\":[]," OPTS ",\"primary\":\"a\",\"primary_port\":7790,"
		"\"takeover\":-1}", "\"takeover\"");
	refused(CS ",\"disks\":[]," OPTS ",\"primary\":\"a\",\"primary_port\":7790,"
		"\"takeover\":\"1\"}", "\"takeover\"");
	refused("{\"id\":1,\"ok\":false,\"error\":\"x\",\"code\":\"exists\",\"takeover\":-2}",
		"\"takeover\"");
	/* An ok answer carries a count only with its role (query). */
	refused("{\"id\":1,\"ok\":true,\"takeover\":2}", "come together");
	refused("{\"id\":1,\"ok\":true,\"role\":\"primary\"}", "come together");
	refused("{\"id\":1,\"ok\":true,\"role\":\"boss\",\"takeover\":2}",
		"\"role\" is not primary or standby");
	refused("{\"id\":1,\"ok\":true,\"role\":\"primary\",\"takeover\":-1}",
		"\"takeover\"");
	refused("{\"id\":1,\"ok\":true,\"role\":1,\"takeover\":1}", "\"role\"");
	refused("{\"req\":\"query\",\"id\":1}", "query: \"domain\"");
	refused("{\"req\":\"query\",\"id\":1,\"domain\":\"w\",\"takeover\":1}",
		"unknown key \"takeover\"");
	refused("GET / HTTP/1.1", "not one JSON object");
	refused("{\"x\":1}", "neither");
	refused("{\"hello\":\"other\",\"version\":1,\"host\":\"a\"}", "not remus-peer");
	refused("{\"hello\":\"remus-peer\",\"version\":0,\"host\":\"a\"}", "\"version\"");
	refused("{\"hello\":\"remus-peer\",\"version\":1,\"host\":\"\"}", "\"host\" is empty");
	refused("{\"hello\":\"remus-peer\",\"version\":1,\"host\":\"a\",\"x\":1}", "unknown key");
	refused("{\"req\":\"reboot\",\"id\":1}", "unknown request 'reboot'");
	refused("{\"req\":\"ping\",\"id\":-1}", "ping: \"id\"");
	refused("{\"req\":\"ping\",\"id\":1,\"domain\":\"w\"}", "unknown key \"domain\"");
	refused("{\"req\":\"failover\",\"id\":1}", "failover: \"domain\"");
	refused("{\"req\":\"failover\",\"id\":1,\"domain\":\"../x\"}", "domain name");
	refused("{\"req\":\"destroy-standby\",\"id\":1,\"domain\":\"w\",\"xml\":\"\"}",
		"unknown key \"xml\"");
	refused("{\"req\":\"set-interval\",\"id\":1,\"domain\":\"w\",\"pause_budget_ms\":300}",
		"set-interval: \"interval_ms\"");
	refused("{\"req\":\"set-interval\",\"id\":1,\"domain\":\"w\",\"interval_ms\":9,"
		"\"pause_budget_ms\":300}", "\"interval_ms\"");
	refused("{\"req\":\"set-interval\",\"id\":1,\"domain\":\"w\",\"interval_ms\":300}",
		"\"pause_budget_ms\"");
	refused("{\"req\":\"set-interval\",\"id\":1,\"domain\":\"w\",\"interval_ms\":300,"
		"\"pause_budget_ms\":0}", "\"pause_budget_ms\"");
	refused("{\"req\":\"set-interval\",\"id\":1,\"domain\":\"w\",\"interval_ms\":300,"
		"\"pause_budget_ms\":300,\"netbuffer\":\"off\"}", "unknown key \"netbuffer\"");
	refused("{\"req\":\"set-interval\",\"id\":1,\"interval_ms\":300,\"pause_budget_ms\":300}",
		"set-interval: \"domain\"");
	refused(CS "}", "create-standby: \"disks\"");
	refused(CS ",\"disks\":[{\"target\":\"vda\",\"format\":\"raw\"}]," OPTS
		",\"primary\":\"a\",\"primary_port\":7790}", "\"size\"");
	refused(CS ",\"disks\":[]}", "\"options\" is missing");
	refused(CS ",\"disks\":[],\"options\":{}}", "\"interval_ms\"");
	refused(CS ",\"disks\":[]," OPTS "}", "\"primary\"");
	refused(CS ",\"disks\":[]," OPTS ",\"primary\":\"a\",\"primary_port\":0}",
		"\"primary_port\"");
	refused("{\"req\":\"create-standby\",\"id\":1,\"domain\":\"w\",\"uuid\":\"x\"}",
		"not a UUID");
	refused("{\"req\":\"create-standby\",\"id\":1,\"domain\":\"w\","
		"\"uuid\":\"6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f\",\"xml\":\"\"}", "\"xml\"");
	refused("{\"id\":1,\"ok\":\"yes\"}", "\"ok\"");
	refused("{\"id\":1,\"ok\":false,\"error\":\"x\",\"code\":\"oops\"}", "unknown code");
	refused("{\"id\":1,\"ok\":false,\"code\":\"exists\"}", "\"error\"");
	refused("{\"id\":1,\"ok\":true,\"repl_port\":70000}", "\"repl_port\"");
}

/* The line limit: an XML near 1 MiB fits, one over it is not formatted,
 * and a line over the limit is refused before JSON parsing. */
static void test_big_xml(void **state)
{
	struct remus_hostd_peer_msg m = { .kind = REMUS_HOSTD_PEER_REQUEST,
					  .req = REMUS_HOSTD_PEER_CREATE_STANDBY, .id = 1 }, b;
	size_t n = REMUS_HOSTD_PEER_MAX_LINE - 1024;
	char *line;

	snprintf(m.domain, sizeof(m.domain), "w");
	snprintf(m.uuid, sizeof(m.uuid), "6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f");
	snprintf(m.primary, sizeof(m.primary), "a");
	m.primary_port = 1;
	m.options = (struct remus_hostd_peer_options){ 200, 150, 100, 5, REMUS_HOSTD_NB_QEMU,
						       REMUS_HOSTD_REPROTECT_AUTO };
	m.xml = malloc(n + 1);
	memset(m.xml, 'x', n);
	m.xml[n] = 0;
	roundtrip(&m, &b);
	assert_int_equal(strlen(b.xml), n);
	remus_hostd_peer_msg_release(&b);
	free(m.xml);
	m.xml = malloc(REMUS_HOSTD_PEER_MAX_LINE + 1);
	memset(m.xml, 'x', REMUS_HOSTD_PEER_MAX_LINE);
	m.xml[REMUS_HOSTD_PEER_MAX_LINE] = 0;
	assert_null(remus_hostd_peer_format(&m));
	line = malloc(REMUS_HOSTD_PEER_MAX_LINE + 2);
	memset(line, ' ', REMUS_HOSTD_PEER_MAX_LINE + 1);
	assert_int_equal(remus_hostd_peer_parse(line, REMUS_HOSTD_PEER_MAX_LINE + 1, &b, err,
						sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than"));
	free(line);
	remus_hostd_peer_msg_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_create_standby),
		cmocka_unit_test(test_small_requests_and_answers),
		cmocka_unit_test(test_set_interval),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_big_xml),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
