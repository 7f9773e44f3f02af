// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd serve's control requests (hostd/request.h): every command with
 * every key, the defaults of what is left out, and each refusal naming
 * the key and the fix; the answer's error object and its codes.
 */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hostd/request.h"

static char err[512];

static void test_protect(void **state)
{
	struct remus_hostd_request r;

	assert_int_equal(remus_hostd_request_parse(
		"{\"cmd\":\"protect\",\"domain\":\"web1\",\"standby\":\"hostB:7791\","
		"\"interval_ms\":200,\"netbuffer\":\"plug\",\"pause_budget_ms\":150,"
		"\"reprotect\":\"manual\"}", &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_PROTECT);
	assert_string_equal(r.domain, "web1");
	assert_string_equal(r.standby_host, "hostB");
	assert_int_equal(r.standby_port, 7791);
	assert_true(r.has_interval && r.has_netbuffer && r.has_pause_budget && r.has_reprotect);
	assert_int_equal(r.interval_ms, 200);
	assert_int_equal(r.netbuffer, REMUS_HOSTD_NB_PLUG);
	assert_int_equal(r.pause_budget_ms, 150);
	assert_int_equal(r.reprotect, REMUS_HOSTD_REPROTECT_MANUAL);

	assert_int_equal(remus_hostd_request_parse(
		"{\"cmd\":\"protect\",\"domain\":\"web1\",\"standby\":\"[fd00::2]\"}", &r, err,
		sizeof(err)), 0);
	assert_string_equal(r.standby_host, "fd00::2");
	assert_int_equal(r.standby_port, 7790);
	assert_false(r.has_interval || r.has_netbuffer || r.has_pause_budget || r.has_reprotect);
}

static void test_other_commands(void **state)
{
	struct remus_hostd_request r;

	assert_int_equal(remus_hostd_request_parse("{\"cmd\":\"status\"}", &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_STATUS);
	assert_false(r.has_domain);
	assert_int_equal(remus_hostd_request_parse("{\"cmd\":\"status\",\"domain\":\"a\"}", &r, err,
						   sizeof(err)), 0);
	assert_true(r.has_domain);
	assert_int_equal(remus_hostd_request_parse("{\"cmd\":\"list\"}", &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_LIST);
	assert_int_equal(remus_hostd_request_parse(
		"{\"cmd\":\"set-interval\",\"domain\":\"a\",\"interval_ms\":100}", &r, err,
		sizeof(err)), 0);
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_SET_INTERVAL);
	assert_int_equal(r.interval_ms, 100);
	assert_int_equal(remus_hostd_request_parse("{\"cmd\":\"failover\",\"domain\":\"a\"}", &r,
						   err, sizeof(err)), 0);
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_FAILOVER);
	assert_int_equal(remus_hostd_request_parse(
		"{\"cmd\":\"unprotect\",\"domain\":\"a\",\"release_disks\":true}", &r, err,
		sizeof(err)), 0);
	assert_int_equal(r.cmd, REMUS_HOSTD_CMD_UNPROTECT);
	assert_true(r.release_disks);
}

static void refused(const char *line, const char *a, const char *b)
{
	struct remus_hostd_request r;

	err[0] = 0;
	assert_int_equal(remus_hostd_request_parse(line, &r, err, sizeof(err)), -EINVAL);
	if (!strstr(err, a) || (b && !strstr(err, b)))
		fail_msg("'%s': error '%s' does not say '%s' and '%s'", line, err, a, b ? b : "");
}

static void test_refused(void **state)
{
	refused("status", "not one JSON object", NULL);
	refused("{\"cmd\":\"status\"} x", "not one JSON object", NULL);
	refused("[]", "not one JSON object", NULL);
	refused("{}", "no \"cmd\"", "protect");
	refused("{\"cmd\":1}", "no \"cmd\"", NULL);
	refused("{\"cmd\":\"reboot\"}", "unknown command 'reboot'", "set-interval");
	refused("{\"cmd\":\"list\",\"domain\":\"a\"}", "list", "unknown key \"domain\"");
	refused("{\"cmd\":\"status\",\"domian\":\"a\"}", "unknown key \"domian\"", NULL);
	refused("{\"cmd\":\"protect\",\"domain\":\"a\"}", "\"standby\" is missing", "HOST");
	refused("{\"cmd\":\"protect\",\"standby\":\"b\"}", "\"domain\" is missing", NULL);
	refused("{\"cmd\":\"protect\",\"domain\":\"a\",\"standby\":\"b:0\"}", "\"standby\"",
		"1..65535");
	refused("{\"cmd\":\"protect\",\"domain\":\"a\",\"standby\":\"::1\"}", "\"standby\"",
		"[V6]");
	refused("{\"cmd\":\"protect\",\"domain\":\"a\",\"standby\":\"\"}", "\"standby\"", NULL);
	refused("{\"cmd\":\"protect\",\"domain\":\"a/b\",\"standby\":\"b\"}", "domain 'a/b'",
		"rename");
	refused("{\"cmd\":\"protect\",\"domain\":\"a\",\"standby\":\"b\",\"interval_ms\":5}",
		"\"interval_ms\"", "10..3600000");
	refused("{\"cmd\":\"protect\",\"domain\":\"a\",\"standby\":\"b\",\"interval_ms\":\"5\"}",
		"\"interval_ms\" must be an integer", NULL);
	refused("{\"cmd\":\"protect\",\"domain\":\"a\",\"standby\":\"b\",\"netbuffer\":\"tc\"}",
		"\"netbuffer\"", "plug");
	refused("{\"cmd\":\"protect\",\"domain\":\"a\",\"standby\":\"b\",\"reprotect\":true}",
		"\"reprotect\"", "manual");
	refused("{\"cmd\":\"protect\",\"domain\":\"a\",\"standby\":\"b\",\"pause_budget_ms\":0}",
		"\"pause_budget_ms\"", "1..60000");
	refused("{\"cmd\":\"set-interval\",\"domain\":\"a\"}", "\"interval_ms\" is missing", NULL);
	refused("{\"cmd\":\"unprotect\",\"domain\":\"a\",\"release_disks\":1}", "true or false",
		NULL);
	refused("{\"cmd\":\"failover\"}", "\"domain\" is missing", NULL);
	refused("{\"cmd\":\"status\",\"domain\":\"a\\u0000b\"}", "NUL", NULL);
}

static void test_answer_error(void **state)
{
	char *a = remus_hostd_answer_error(REMUS_HOSTD_E_EXISTS, "domain %s is %s", "web1",
					   "protected");
	struct json_object *o = json_tokener_parse(a), *v;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "ok", &v) && !json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(o, "error", &v));
	assert_string_equal(json_object_get_string(v), "domain web1 is protected");
	assert_true(json_object_object_get_ex(o, "code", &v));
	assert_string_equal(json_object_get_string(v), "exists");
	json_object_put(o);
	free(a);
	for (int c = REMUS_HOSTD_E_NO_DOMAIN; c <= REMUS_HOSTD_E_NOT_OWNER; c++)
		assert_int_equal(remus_hostd_code_parse(remus_hostd_code_name(c)), c);
	assert_string_equal(remus_hostd_code_name(REMUS_HOSTD_E_QEMU_TOO_OLD), "qemu-too-old");
	assert_string_equal(remus_hostd_code_name(REMUS_HOSTD_E_NOT_OWNER), "not-owner");
	assert_int_equal(remus_hostd_code_parse("nope"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protect),
		cmocka_unit_test(test_other_commands),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_answer_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
