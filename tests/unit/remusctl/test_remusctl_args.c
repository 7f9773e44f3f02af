// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for remusctl/args.c: every subcommand's command line gives
 * exactly the request line of DESIGN-10's control protocol (options not
 * given are left out, so remusd's defaults apply); every bad command
 * line is refused with a message naming the option or argument, the
 * value and what is expected; options may come before or after the
 * subcommand; the config reader finds `ctl`.
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

#include "remusctl/cli.h"

static int parse_argv(struct remusctl_args *a, char **argv)
{
	char *copy[64];
	int argc = 0, rc;

	while (argv[argc])
		argc++;
	assert_true(argc < 64);
	memcpy(copy, argv, sizeof(*argv) * (size_t)argc);
	rc = remusctl_args_parse(a, argc, argv);
	for (int i = 0; i < argc; i++)
		assert_ptr_equal(argv[i], copy[i]); /* argv untouched */
	return rc;
}

#define PARSE(a, ...) parse_argv((a), (char *[]){ "remusctl", __VA_ARGS__, NULL })

/* The request of a command line that must parse. */
static void assert_request(const char *expected, char **argv)
{
	struct remusctl_args a;
	char *req;
	int rc = parse_argv(&a, argv);

	if (rc)
		fail_msg("parse failed: %s", a.error);
	req = remusctl_request(&a);
	assert_non_null(req);
	assert_string_equal(req, expected);
	free(req);
}

#define REQ(expected, ...) assert_request(expected, (char *[]){ "remusctl", __VA_ARGS__, NULL })

/* A command line that must fail with a message containing @needle. */
static void assert_refused(const char *needle, char **argv)
{
	struct remusctl_args a;

	assert_int_equal(parse_argv(&a, argv), -EINVAL);
	if (!strstr(a.error, needle))
		fail_msg("error '%s' lacks '%s'", a.error, needle);
}

#define BAD(needle, ...) assert_refused(needle, (char *[]){ "remusctl", __VA_ARGS__, NULL })

static void test_protect(void **state)
{
	struct remusctl_args a;

	REQ("{\"cmd\":\"protect\",\"domain\":\"web1\",\"standby\":\"hostB\"}",
	    "protect", "web1", "--standby", "hostB");
	REQ("{\"cmd\":\"protect\",\"domain\":\"web1\",\"standby\":\"hostB:7791\","
	    "\"interval_ms\":200,\"netbuffer\":\"plug\",\"pause_budget_ms\":300,"
	    "\"reprotect\":\"manual\"}",
	    "protect", "web1", "--standby=hostB:7791", "--interval", "200", "--netbuffer",
	    "plug", "--pause-budget=300", "--reprotect", "manual", "--no-wait");
	REQ("{\"cmd\":\"protect\",\"domain\":\"web1\",\"standby\":\"[fd00::2]:7790\"}",
	    "--standby", "[fd00::2]:7790", "protect", "web1");
	REQ("{\"cmd\":\"protect\",\"domain\":\"a\\\"b/c\",\"standby\":\"[::1]\"}",
	    "protect", "a\"b/c", "--standby", "[::1]");
	assert_int_equal(PARSE(&a, "protect", "web1", "--standby", "h", "--no-wait"), 0);
	assert_true(a.no_wait);
	assert_string_equal(a.domain, "web1");
	assert_int_equal(PARSE(&a, "protect", "web1", "--standby", "h"), 0);
	assert_false(a.no_wait);
	/* The last of an option given twice wins. */
	assert_int_equal(PARSE(&a, "protect", "w", "--standby", "h", "--interval", "100",
			       "--interval", "300"), 0);
	assert_int_equal(a.interval_ms, 300);
	/* -- ends the options: a domain may start with '-'. */
	REQ("{\"cmd\":\"protect\",\"domain\":\"-odd\",\"standby\":\"h\"}",
	    "protect", "--standby", "h", "--", "-odd");
}

static void test_other_subcommands(void **state)
{
	struct remusctl_args a;

	REQ("{\"cmd\":\"status\"}", "status");
	REQ("{\"cmd\":\"status\",\"domain\":\"web1\"}", "status", "web1");
	REQ("{\"cmd\":\"status\",\"domain\":\"web1\"}", "status", "web1", "--json");
	REQ("{\"cmd\":\"list\"}", "list");
	REQ("{\"cmd\":\"list\"}", "--json", "list");
	REQ("{\"cmd\":\"set-interval\",\"domain\":\"web1\",\"interval_ms\":100}",
	    "set-interval", "web1", "100");
	REQ("{\"cmd\":\"failover\",\"domain\":\"web1\"}", "failover", "web1");
	REQ("{\"cmd\":\"unprotect\",\"domain\":\"web1\",\"release_disks\":false}",
	    "unprotect", "web1");
	REQ("{\"cmd\":\"unprotect\",\"domain\":\"web1\",\"release_disks\":true}",
	    "unprotect", "--release-disks", "web1");
	REQ("{\"cmd\":\"unprotect\",\"domain\":\"web1\",\"release_disks\":false,\"force\":true}",
	    "unprotect", "web1", "--force");
	assert_int_equal(PARSE(&a, "status", "web1", "--json"), 0);
	assert_int_equal(a.cmd, REMUSCTL_STATUS);
	assert_true(a.json);
	assert_int_equal(PARSE(&a, "list"), 0);
	assert_false(a.json);
}

static void test_global_options(void **state)
{
	struct remusctl_args a;

	assert_int_equal(PARSE(&a, "--socket", "/tmp/s", "status"), 0);
	assert_string_equal(a.socket, "/tmp/s");
	assert_int_equal(PARSE(&a, "status", "--socket=/tmp/t", "web1"), 0);
	assert_string_equal(a.socket, "/tmp/t");
	assert_string_equal(a.domain, "web1");
	/* A global option's value is not taken for the subcommand. */
	assert_int_equal(PARSE(&a, "--config", "status", "list"), 0);
	assert_int_equal(a.cmd, REMUSCTL_LIST);
	assert_string_equal(a.config, "status");
	assert_int_equal(PARSE(&a, "--timeout", "30", "failover", "w"), 0);
	assert_int_equal(a.timeout_s, 30);
	assert_int_equal(PARSE(&a, "--version"), 0);
	assert_int_equal(a.cmd, REMUSCTL_VERSION);
}

static void test_help(void **state)
{
	struct remusctl_args a;

	assert_int_equal(PARSE(&a, "--help"), 0);
	assert_int_equal(a.cmd, REMUSCTL_HELP);
	assert_int_equal(a.help_cmd, REMUSCTL_NONE);
	assert_int_equal(PARSE(&a, "-h"), 0);
	assert_int_equal(a.cmd, REMUSCTL_HELP);
	/* --help on every subcommand, even with its arguments missing. */
	static const char *const subs[] = { "protect", "status", "list", "set-interval",
					    "failover", "unprotect", "keygen" };
	static const enum remusctl_cmd cmds[] = { REMUSCTL_PROTECT, REMUSCTL_STATUS,
		REMUSCTL_LIST, REMUSCTL_SET_INTERVAL, REMUSCTL_FAILOVER, REMUSCTL_UNPROTECT,
		REMUSCTL_KEYGEN };
	for (int i = 0; i < 7; i++) {
		char *usage = NULL;
		size_t len = 0;
		FILE *f;

		assert_int_equal(parse_argv(&a, (char *[]){ "remusctl", (char *)subs[i],
							    "--help", NULL }), 0);
		assert_int_equal(a.cmd, REMUSCTL_HELP);
		assert_int_equal(a.help_cmd, cmds[i]);
		assert_int_equal(parse_argv(&a, (char *[]){ "remusctl", "help",
							    (char *)subs[i], NULL }), 0);
		assert_int_equal(a.help_cmd, cmds[i]);
		assert_string_equal(remusctl_cmd_name(cmds[i]), subs[i]);
		/* Its usage names it, and not the others. */
		f = open_memstream(&usage, &len);
		remusctl_usage(f, cmds[i], false);
		fclose(f);
		assert_non_null(strstr(usage, subs[i]));
		assert_non_null(strstr(usage, "--socket PATH"));
		assert_non_null(strstr(usage, "Exit status"));
		for (int j = 0; j < 7; j++) {
			char word[64];

			snprintf(word, sizeof(word), "remusctl %s ", subs[j]);
			assert_true((strstr(usage, word) != NULL) == (i == j));
		}
		free(usage);
	}
	BAD("help: unknown subcommand 'frob'", "help", "frob");
}

static void test_bad_numbers(void **state)
{
	BAD("--interval: '5' is not a number of ms in 10..3600000",
	    "protect", "w", "--standby", "h", "--interval", "5");
	BAD("--interval: '3600001' is not", "protect", "w", "--standby", "h", "--interval",
	    "3600001");
	BAD("--interval: '-100' is not", "protect", "w", "--standby", "h", "--interval=-100");
	BAD("--interval: '+100' is not", "protect", "w", "--standby", "h", "--interval", "+100");
	BAD("--interval: ' 100' is not", "protect", "w", "--standby", "h", "--interval", " 100");
	BAD("--interval: '100ms' is not", "protect", "w", "--standby", "h", "--interval",
	    "100ms");
	BAD("--interval: '99999999999999999999' is not", "protect", "w", "--standby", "h",
	    "--interval", "99999999999999999999");
	BAD("--pause-budget: '0' is not a number of ms in 1..60000", "protect", "w",
	    "--standby", "h", "--pause-budget", "0");
	BAD("set-interval: 'fast' is not a number of ms in 10..3600000",
	    "set-interval", "web1", "fast");
	BAD("set-interval: '9' is not", "set-interval", "web1", "9");
	BAD("--timeout: '0' is not a number of seconds", "--timeout", "0", "list");
	BAD("--standby: 'h:0': the PORT '0' is not a number in 1..65535", "protect", "w",
	    "--standby", "h:0");
	BAD("--standby: 'h:x'", "protect", "w", "--standby", "h:x");
	BAD("--standby: 'h:65536'", "protect", "w", "--standby", "h:65536");
	BAD("--standby: 'h:'", "protect", "w", "--standby", "h:");
	BAD("--standby: ':7790' has no HOST", "protect", "w", "--standby", ":7790");
	BAD("write an IPv6 address in brackets", "protect", "w", "--standby", "fd00::2");
	BAD("--standby: '[fd00::2' is not [ADDRESS]", "protect", "w", "--standby", "[fd00::2");
	BAD("--standby: '[]:1' is not [ADDRESS]", "protect", "w", "--standby", "[]:1");
	BAD("--standby: 'a b' has a blank", "protect", "w", "--standby", "a b");
}

static void test_bad_options(void **state)
{
	BAD("unknown option '--frob' for remusctl status", "status", "--frob");
	BAD("unknown option '-x' for remusctl list", "list", "-x");
	BAD("unknown option '--frob' for remusctl", "--frob");
	BAD("--json is not an option of protect (it is one of status and list)",
	    "protect", "w", "--standby", "h", "--json");
	BAD("--standby is not an option of status (it is one of protect)",
	    "status", "--standby", "h");
	BAD("--release-disks is not an option of failover", "failover", "w",
	    "--release-disks");
	BAD("--force is not an option of failover", "failover", "w", "--force");
	BAD("--no-wait takes no value", "protect", "w", "--standby", "h", "--no-wait=yes");
	BAD("--standby: needs a value: HOST[:PORT]", "protect", "w", "--standby");
	BAD("--socket: needs a value: PATH", "status", "--socket");
	BAD("--standby: the value is empty", "protect", "w", "--standby=");
	BAD("--netbuffer: 'tap' is not qemu, plug or off", "protect", "w", "--standby", "h",
	    "--netbuffer", "tap");
	BAD("--reprotect: 'never' is not auto or manual", "protect", "w", "--standby", "h",
	    "--reprotect", "never");
	BAD("--json needs a subcommand first", "--json");
}

static void test_bad_arguments(void **state)
{
	BAD("missing the subcommand", "--socket", "/tmp/s");
	BAD("unknown subcommand 'protekt': expected protect, status", "protekt", "web1");
	BAD("protect: missing the DOMAIN", "protect", "--standby", "h");
	BAD("protect: missing --standby HOST[:PORT]", "protect", "web1");
	BAD("protect: unexpected argument 'web2'", "protect", "web1", "web2", "--standby", "h");
	BAD("status: unexpected argument 'web2'", "status", "web1", "web2");
	BAD("list: unexpected argument 'web1' (list takes no DOMAIN", "list", "web1");
	BAD("set-interval: missing the DOMAIN", "set-interval");
	BAD("set-interval: missing MS", "set-interval", "web1");
	BAD("set-interval: unexpected argument '3'", "set-interval", "web1", "100", "3");
	BAD("failover: missing the DOMAIN", "failover");
	BAD("unprotect: missing the DOMAIN", "unprotect", "--release-disks");
	BAD("failover: the DOMAIN name is empty", "failover", "");
	BAD("failover: the DOMAIN name has a control character", "failover", "a\nb");
}

static void test_config(void **state)
{
	char out[64], err[128];
	const char *c1 = "# remusd.conf\n\nlisten = 0.0.0.0:7790\n  ctl = /run/x.sock  \n";
	const char *c2 = "ctl\t=\t/b # the socket\r\n";
	const char *c3 = "listen = 1\nthis is not a pair\nctl = /a\n";
	const char *c4 = "ctl =\n";
	const char *c5 = "control = /no\n#ctl = /commented\n";
	const char *c6 = "ctl = \"/with #hash \"\n";
	const char *c7 = "ctl = /a\nctl = /b\n";
	const char *c8 = "ctl = \"/a\n";

#define CONF(c) remusctl_config_ctl(c, strlen(c), out, sizeof(out), err, sizeof(err))
	assert_int_equal(CONF(c1), 1);
	assert_string_equal(out, "/run/x.sock");
	assert_int_equal(CONF(c2), 1);
	assert_string_equal(out, "/b");
	/* Not NUL-terminated: only @len bytes are read. */
	assert_int_equal(remusctl_config_ctl(c2, 8, out, sizeof(out), err, sizeof(err)), 1);
	assert_string_equal(out, "/b");
	assert_int_equal(CONF(c3), -EINVAL);
	assert_string_equal(err, "line 2 is not 'key = value'");
	assert_int_equal(CONF(c4), -EINVAL);
	assert_string_equal(err, "line 1: ctl is empty");
	assert_int_equal(CONF(c5), 0);
	assert_int_equal(CONF(c6), 1);
	assert_string_equal(out, "/with #hash ");
	assert_int_equal(CONF(c7), -EINVAL);
	assert_string_equal(err, "line 2: ctl: given a second time");
	assert_int_equal(CONF(c8), -EINVAL);
	assert_string_equal(err, "line 1: ctl: the value's quotes do not match");
	assert_int_equal(remusctl_config_ctl("ctl = /0123456789", 17, out, 8, err,
					     sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1: ctl is too long");
	assert_int_equal(remusctl_config_ctl("", 0, out, sizeof(out), err, sizeof(err)), 0);
	assert_int_equal(remusctl_config_ctl("ctl = /a\0b\n", 11, out, sizeof(out), err,
					     sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1 has a NUL byte");
#undef CONF
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protect),
		cmocka_unit_test(test_other_subcommands),
		cmocka_unit_test(test_global_options),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_bad_numbers),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
