// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for daemon/options.c: every option of remusd lands in the
 * module config it is for, with its default when absent, and every bad
 * command line is refused with a message that names the option, the
 * value given and what is expected.  The parser must not touch argv.
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

#include "daemon/daemon.h"

static int setup(void **state)
{
	struct remusd_options *o = calloc(1, sizeof(*o));

	*state = o;
	return o ? 0 : -1;
}

static int teardown(void **state)
{
	remusd_options_release(*state);
	free(*state);
	return 0;
}

static int parse_argv(struct remusd_options *o, char **argv)
{
	char **copy;
	int argc = 0, rc;

	while (argv[argc])
		argc++;
	copy = malloc(sizeof(*argv) * (size_t)argc);
	assert_non_null(copy);
	memcpy(copy, argv, sizeof(*argv) * (size_t)argc);
	remusd_options_release(o);
	rc = remusd_options_parse(o, argc, argv);
	/* argv is neither permuted nor written to. */
	for (int i = 0; i < argc; i++)
		assert_ptr_equal(argv[i], copy[i]);
	free(copy);
	return rc;
}

/* The strings (literals) and the array live until the end of the
 * calling block, as remusd_options requires. */
#define PARSE(o, ...) parse_argv((o), (char *[]){ "remusd", __VA_ARGS__, NULL })
#define PRIMARY "primary", "--qmp", "/run/p.qmp", "--standby", "sby:7000"
#define STANDBY "standby", "--qmp", "/run/s.qmp", "--incoming", "/run/in.sock", \
	"--listen", "7000"

/* Parsing failed, and the message names every one of @parts (the
 * option, the value, what is expected). */
static void expect_error(struct remusd_options *o, int rc, const char *const *parts)
{
	assert_int_equal(rc, -EINVAL);
	for (; *parts; parts++)
		if (!strstr(o->error, *parts))
			fail_msg("error '%s' does not mention '%s'", o->error, *parts);
}
#define EXPECT_ERROR(o, rc, ...) expect_error((o), (rc), (const char *const[]){ __VA_ARGS__, NULL })

/* ---- what a command line sets ----------------------------------------- */

static void test_primary_defaults(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, PRIMARY), 0);
	assert_int_equal(o->mode, REMUSD_PRIMARY);
	assert_string_equal(o->qmp_path, "/run/p.qmp");
	assert_string_equal(o->engine.standby_host, "sby");
	assert_ptr_equal(o->engine.standby_host, o->standby_host);
	assert_int_equal(o->engine.standby_port, 7000);
	assert_int_equal(o->engine.interval_ms, 1000);
	assert_int_equal(o->engine.heartbeat_ms, 0);    /* engine default */
	assert_int_equal(o->engine.heartbeat_miss, 0);
	assert_int_equal(o->engine.reconnect_ms, 0);
	assert_int_equal(o->engine.pause_budget_ms, 0);  /* engine default, 300 */
	assert_true(o->engine.dedup);
	assert_null(o->ctl_path);
	assert_null(o->metrics_path);
	assert_false(o->log_level_given);
	assert_false(o->nb_off);
	assert_int_equal(o->nb.kind, REMUS_NETBUFFER_QEMU);
	assert_null(o->nb.devices);                     /* discover every NIC */
	assert_int_equal(o->nb.ndevices, 0);
	assert_int_equal(o->nb.epoch_limit_bytes, 0);
	assert_int_equal(o->nb.on_lost, REMUS_NETBUFFER_LOST_RELEASE);
	assert_int_equal(o->disks.ndisks, 0);
	assert_false(o->disks.standby);
}

static void test_primary_every_option(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, PRIMARY, "--interval", "300", "--heartbeat", "50",
			       "--miss", "7", "--no-dedup", "--reconnect", "250",
			       "--pause-budget", "120", "--ctl", "/run/p.ctl", "--metrics", "/tmp/m.jsonl",
			       "--log", "debug", "--netdev", "hostnet0", "--netdev", "hostnet1",
			       "--nb-limit", "65536", "--nb-on-lost", "hold",
			       "--disk", "vda,image=/v/vda.raw,socket=/run/vda.sock",
			       "--disk", "vdb,socket=/run/vdb.sock,image=/v/vdb.raw"), 0);
	assert_int_equal(o->engine.interval_ms, 300);
	assert_int_equal(o->engine.heartbeat_ms, 50);
	assert_int_equal(o->engine.heartbeat_miss, 7);
	assert_false(o->engine.dedup);
	assert_int_equal(o->engine.reconnect_ms, 250);
	assert_int_equal(o->engine.pause_budget_ms, 120);
	assert_string_equal(o->ctl_path, "/run/p.ctl");
	assert_string_equal(o->metrics_path, "/tmp/m.jsonl");
	assert_true(o->log_level_given);
	assert_int_equal(o->log_level, REMUS_LOG_DEBUG);
	assert_int_equal(o->nb.kind, REMUS_NETBUFFER_QEMU);
	assert_int_equal(o->nb.ndevices, 2);
	assert_non_null(o->nb.devices);
	assert_string_equal(o->nb.devices[0], "hostnet0");
	assert_string_equal(o->nb.devices[1], "hostnet1");
	assert_int_equal(o->nb.epoch_limit_bytes, 65536);
	assert_int_equal(o->nb.on_lost, REMUS_NETBUFFER_LOST_HOLD);
	assert_int_equal(o->disks.ndisks, 2);
	assert_ptr_equal(o->disks.disks, o->disk);
	assert_string_equal(o->disk[0].name, "vda");
	assert_string_equal(o->disk[0].image, "/v/vda.raw");
	assert_string_equal(o->disk[0].socket, "/run/vda.sock");
	assert_string_equal(o->disk[1].name, "vdb");
	assert_string_equal(o->disk[1].image, "/v/vdb.raw");
	assert_string_equal(o->disk[1].socket, "/run/vdb.sock");
	assert_false(o->disks.standby);
	assert_null(o->disks.journal);
}

static void test_standby_every_option(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, STANDBY, "--heartbeat", "20", "--miss", "3",
			       "--vm-name", "vm1", "--manual", "--fence", "fence.sh",
			       "--on-activate", "ip.sh", "--ctl", "/run/s.ctl",
			       "--report", "/tmp/r.json", "--exit-after-failover",
			       "--log", "warn", "--disk", "vda,image=/v/vda.raw,socket=/run/vda.sock",
			       "--journal", "/v/j", "--epoch-mem", "8", "--spill-dir", "/big"), 0);
	assert_int_equal(o->mode, REMUSD_STANDBY);
	assert_string_equal(o->qmp_path, "/run/s.qmp");
	assert_string_equal(o->standby.incoming_path, "/run/in.sock");
	assert_null(o->standby.listen_host);          /* any address */
	assert_int_equal(o->standby.listen_port, 7000);
	assert_int_equal(o->standby.heartbeat_ms, 20);
	assert_int_equal(o->standby.heartbeat_miss, 3);
	assert_string_equal(o->standby.vm_name, "vm1");
	assert_true(o->standby.no_auto_failover);
	assert_string_equal(o->standby.fence_cmd, "fence.sh");
	assert_string_equal(o->standby.activate_cmd, "ip.sh");
	assert_string_equal(o->ctl_path, "/run/s.ctl");
	assert_string_equal(o->report_path, "/tmp/r.json");
	assert_true(o->exit_after_failover);
	assert_int_equal(o->log_level, REMUS_LOG_WARN);
	assert_int_equal(o->disks.ndisks, 1);
	assert_true(o->disks.standby);
	assert_string_equal(o->disks.journal, "/v/j");
	assert_int_equal(o->standby.epoch_mem, 8u << 20);
	assert_string_equal(o->standby.spill_dir, "/big");
}

/* Spill files go to the journal's directory unless told otherwise. */
static void test_standby_spill_dir_default(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, STANDBY, "--disk", "vda,image=/v/vda.raw,socket=/run/vda.sock",
			       "--journal", "/j/ournal/vda.journal"), 0);
	assert_string_equal(o->standby.spill_dir, "/j/ournal");
	/* the journal's default is next to the first image */
	assert_int_equal(PARSE(o, STANDBY, "--disk", "vda,image=/v/vda.raw,socket=/run/vda.sock"),
			 0);
	assert_string_equal(o->standby.spill_dir, "/v");
	assert_int_equal(PARSE(o, STANDBY, "--disk", "vda,image=/vda.raw,socket=/run/vda.sock"),
			 0);
	assert_string_equal(o->standby.spill_dir, "/");
	assert_int_equal(PARSE(o, STANDBY, "--disk", "vda,image=vda.raw,socket=/run/vda.sock"),
			 0);
	assert_string_equal(o->standby.spill_dir, ".");
}

static void test_standby_defaults(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, STANDBY), 0);
	assert_int_equal(o->standby.heartbeat_ms, 0);
	assert_int_equal(o->standby.heartbeat_miss, 0);
	assert_false(o->standby.no_auto_failover);
	assert_null(o->standby.vm_name);
	assert_null(o->standby.fence_cmd);
	assert_null(o->standby.activate_cmd);
	assert_null(o->report_path);
	assert_false(o->exit_after_failover);
}

static void test_hostports(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, "primary", "--qmp", "q", "--standby", "[fe80::1]:7001"), 0);
	assert_string_equal(o->engine.standby_host, "fe80::1");
	assert_int_equal(o->engine.standby_port, 7001);
	assert_int_equal(PARSE(o, "primary", "--qmp", "q", "--standby", "10.0.0.2:65535"), 0);
	assert_string_equal(o->engine.standby_host, "10.0.0.2");
	assert_int_equal(o->engine.standby_port, 65535);
	assert_int_equal(PARSE(o, "standby", "--qmp", "q", "--incoming", "i",
			       "--listen", "127.0.0.1:7002"), 0);
	assert_string_equal(o->standby.listen_host, "127.0.0.1");
	assert_int_equal(o->standby.listen_port, 7002);
	assert_int_equal(PARSE(o, "standby", "--qmp", "q", "--incoming", "i",
			       "--listen", "[::]:7003"), 0);
	assert_string_equal(o->standby.listen_host, "::");
}

static void test_netbuffer_kinds(void **state)
{
	struct remusd_options *o = *state;

	/* --tap alone means the plug backend. */
	assert_int_equal(PARSE(o, PRIMARY, "--tap", "tap0"), 0);
	assert_int_equal(o->nb.kind, REMUS_NETBUFFER_PLUG);
	assert_string_equal(o->nb.devices[0], "tap0");
	assert_int_equal(PARSE(o, PRIMARY, "--netbuffer", "plug", "--tap", "tap0", "--tap", "tap1"),
			 0);
	assert_int_equal(o->nb.kind, REMUS_NETBUFFER_PLUG);
	assert_int_equal(o->nb.ndevices, 2);
	/* An explicit kind wins over --tap's implied one. */
	assert_int_equal(PARSE(o, PRIMARY, "--netbuffer", "qemu", "--tap", "n0"), 0);
	assert_int_equal(o->nb.kind, REMUS_NETBUFFER_QEMU);
	assert_int_equal(PARSE(o, PRIMARY, "--netbuffer", "off"), 0);
	assert_true(o->nb_off);
	/* off needs no tap, even for plug's implied kind. */
	assert_int_equal(PARSE(o, PRIMARY, "--netbuffer", "plug", "--netbuffer", "off"), 0);
	assert_true(o->nb_off);
	assert_int_equal(PARSE(o, PRIMARY, "--netbuffer", "qemu"), 0);
	assert_false(o->nb_off);
	assert_int_equal(PARSE(o, PRIMARY, "--nb-on-lost", "release"), 0);
	assert_int_equal(o->nb.on_lost, REMUS_NETBUFFER_LOST_RELEASE);
}

static void test_log_levels(void **state)
{
	struct remusd_options *o = *state;
	static const struct { const char *s; enum remus_log_level l; } levels[] = {
		{ "error", REMUS_LOG_ERROR }, { "warn", REMUS_LOG_WARN },
		{ "info", REMUS_LOG_INFO }, { "debug", REMUS_LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		assert_int_equal(PARSE(o, PRIMARY, "--log", (char *)levels[i].s), 0);
		assert_int_equal(o->log_level, levels[i].l);
	}
}

static void test_numeric_bounds_accepted(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, PRIMARY, "--interval", "10", "--heartbeat", "60000",
			       "--miss", "1000", "--reconnect", "600000",
			       "--pause-budget", "60000", "--nb-limit", "1073741824"), 0);
	assert_int_equal(o->engine.interval_ms, 10);
	assert_int_equal(o->engine.heartbeat_ms, 60000);
	assert_int_equal(o->engine.heartbeat_miss, 1000);
	assert_int_equal(o->engine.reconnect_ms, 600000);
	assert_int_equal(o->engine.pause_budget_ms, 60000);
	assert_int_equal(o->nb.epoch_limit_bytes, 1u << 30);
	assert_int_equal(PARSE(o, PRIMARY, "--interval", "3600000", "--heartbeat", "10",
			       "--miss", "1", "--reconnect", "10", "--pause-budget", "1"), 0);
	assert_int_equal(o->engine.pause_budget_ms, 1);
	assert_int_equal(o->engine.interval_ms, 3600000);
}

static void test_help_and_ctl(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, "--help"), 0);
	assert_int_equal(o->mode, REMUSD_HELP);
	assert_int_equal(PARSE(o, "-h"), 0);
	assert_int_equal(o->mode, REMUSD_HELP);
	/* --help wins over a role's missing options. */
	assert_int_equal(PARSE(o, "standby", "--help"), 0);
	assert_int_equal(o->mode, REMUSD_HELP);
	assert_int_equal(PARSE(o, "ctl", "/run/p.ctl", "set-interval", "300"), 0);
	assert_int_equal(o->mode, REMUSD_CTL);
	assert_string_equal(o->ctl_socket, "/run/p.ctl");
	assert_int_equal(o->ctl_nwords, 2);
	assert_string_equal(o->ctl_words[0], "set-interval");
	assert_string_equal(o->ctl_words[1], "300");
}

/* --name DOMAIN, both roles: kept for the log; absent is NULL; too long
 * or with a control character refused. */
static void test_name(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, PRIMARY), 0);
	assert_null(o->name);
	assert_int_equal(PARSE(o, PRIMARY, "--name", "web1"), 0);
	assert_string_equal(o->name, "web1");
	assert_int_equal(PARSE(o, STANDBY, "--name", "db.example-2"), 0);
	assert_string_equal(o->name, "db.example-2");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--name",
			      "a234567890123456789012345678901234567890123456789012345678901234"),
		     "--name", "longer than 63");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--name", "we\nb1"), "--name", "control character");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--name"), "--name", "DOMAIN");
}

/* --primary-miss: the primary role's detection, longer than the standby's
 * so that a fenced primary cannot release output first; in either order
 * with --miss, which sets both. */
static void test_primary_miss(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, STANDBY, "--primary-miss", "20", "--miss", "3"), 0);
	assert_int_equal(o->standby.heartbeat_miss, 3);
	assert_int_equal(o->engine.heartbeat_miss, 20);   /* once it protects in turn */
	remusd_options_release(o);
	assert_int_equal(PARSE(o, PRIMARY, "--miss", "4", "--primary-miss", "9"), 0);
	assert_int_equal(o->engine.heartbeat_miss, 9);
	remusd_options_release(o);
	assert_int_equal(PARSE(o, PRIMARY, "--miss", "4"), 0);
	assert_int_equal(o->engine.heartbeat_miss, 4);
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--primary-miss", "0"), "--primary-miss", "1..1000");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--primary-miss"), "--primary-miss", "N");
}

/* The usage text lists every option (a new one must be documented). */
static void test_usage_lists_every_option(void **state)
{
	static const char *const opts[] = {
		"--qmp", "--standby", "--interval", "--heartbeat", "--miss", "--no-dedup",
		"--reconnect", "--ctl", "--netbuffer", "--netdev", "--tap", "--nb-limit",
		"--nb-on-lost", "--disk", "--metrics", "--log", "--incoming", "--listen",
		"--vm-name", "--manual", "--fence", "--on-activate", "--report",
		"--exit-after-failover", "--journal", "--epoch-mem", "--spill-dir", "remusd ctl",
		"--name", "--primary-miss",
	};
	char buf[8192] = "";
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	(void)state;
	assert_non_null(f);
	remusd_usage(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (!strstr(buf, opts[i]))
			fail_msg("usage does not mention %s", opts[i]);
}

/* ---- what is refused, and how it is said -------------------------------- */

static void test_bad_numbers(void **state)
{
	struct remusd_options *o = *state;

	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--interval", "9"), "--interval", "'9'", "10..3600000");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--interval", "3600001"), "--interval", "'3600001'",
		     "10..3600000");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--interval", "1s"), "--interval", "'1s'", "ms");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--interval", "-5"), "--interval", "'-5'");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--interval", "99999999999999999999"), "--interval",
		     "'99999999999999999999'");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--heartbeat", "5"), "--heartbeat", "'5'", "10..60000");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--heartbeat", "60001"), "--heartbeat", "'60001'",
		     "10..60000");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--miss", "0"), "--miss", "'0'", "1..1000");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--miss", "1001"), "--miss", "'1001'", "1..1000");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--reconnect", "9"), "--reconnect", "'9'", "10..600000");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--pause-budget", "0"), "--pause-budget", "'0'",
		     "1..60000");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--pause-budget", "60001"), "--pause-budget",
		     "'60001'", "1..60000");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--nb-limit", "65535"), "--nb-limit", "'65535'",
		     "65536..1073741824", "bytes");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--nb-limit", "2G"), "--nb-limit", "'2G'");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--epoch-mem", "0"), "--epoch-mem", "'0'",
		     "1..1048576", "MiB");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--epoch-mem", "256M"), "--epoch-mem", "'256M'");
}

static void test_bad_hostports(void **state)
{
	struct remusd_options *o = *state;
	char longhost[300 + 6];

	EXPECT_ERROR(o, PARSE(o, "primary", "--qmp", "q", "--standby", "sby"), "--standby",
		     "'sby'", "HOST:PORT");
	EXPECT_ERROR(o, PARSE(o, "primary", "--qmp", "q", "--standby", "sby:0"), "--standby",
		     "'sby:0'", "1..65535");
	EXPECT_ERROR(o, PARSE(o, "primary", "--qmp", "q", "--standby", "sby:65536"), "--standby",
		     "'sby:65536'");
	EXPECT_ERROR(o, PARSE(o, "primary", "--qmp", "q", "--standby", "sby:x"), "--standby",
		     "'sby:x'");
	EXPECT_ERROR(o, PARSE(o, "standby", "--qmp", "q", "--incoming", "i", "--listen", "70x"),
		     "--listen", "'70x'", "[HOST:]PORT");
	EXPECT_ERROR(o, PARSE(o, "standby", "--qmp", "q", "--incoming", "i", "--listen", "h:"),
		     "--listen", "'h:'", "[HOST:]PORT");
	memset(longhost, 'h', 300);
	memcpy(longhost + 300, ":7000", 6);
	EXPECT_ERROR(o, PARSE(o, "primary", "--qmp", "q", "--standby", longhost), "--standby",
		     "HOST shorter than 256");
}

static void test_bad_words(void **state)
{
	struct remusd_options *o = *state;

	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--log", "loud"), "--log", "'loud'",
		     "error, warn, info or debug");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--netbuffer", "tc"), "--netbuffer", "'tc'",
		     "qemu, plug or off");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--nb-on-lost", "drop"), "--nb-on-lost", "'drop'",
		     "release or hold");
}

static void test_bad_disks(void **state)
{
	struct remusd_options *o = *state;

	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--disk", "vda"), "--disk", "'vda'", "image=PATH",
		     "NAME,image=PATH,socket=PATH");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--disk", "vda,image=/a"), "--disk", "'vda,image=/a'",
		     "socket=PATH");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--disk", "vda,image=,socket=/s"), "--disk",
		     "image=PATH");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--disk", "image=/a,socket=/s"), "--disk",
		     "'image=/a,socket=/s'", "NAME");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--disk", ",image=/a,socket=/s"), "--disk", "NAME");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--disk", "vda,image=/a,sock=/s"), "--disk",
		     "'vda,image=/a,sock=/s'", "unknown key 'sock=/s'",
		     "NAME,image=PATH,socket=PATH");
}

static void test_too_many(void **state)
{
	struct remusd_options *o = *state;
	char *argv[8 + 2 * (REMUS_REPL_MAX_DISKS + 1) + 2 * REMUSD_MAX_NB_DEVICES];
	int argc = 0;

	argv[argc++] = "remusd";
	argv[argc++] = "primary";
	argv[argc++] = "--qmp";
	argv[argc++] = "q";
	argv[argc++] = "--standby";
	argv[argc++] = "h:1";
	for (int i = 0; i <= REMUSD_MAX_NB_DEVICES; i++) {
		argv[argc++] = "--netdev";
		argv[argc++] = "n";
	}
	argv[argc] = NULL;
	EXPECT_ERROR(o, parse_argv(o, argv), "--netdev", "'n'", "at most 16");

	argc = 1;
	argv[argc++] = "primary";
	argv[argc++] = "--qmp";
	argv[argc++] = "q";
	argv[argc++] = "--standby";
	argv[argc++] = "h:1";
	for (unsigned i = 0; i <= REMUS_REPL_MAX_DISKS; i++) {
		argv[argc++] = "--disk";
		argv[argc++] = "d,image=/i,socket=/s";
	}
	argv[argc] = NULL;
	EXPECT_ERROR(o, parse_argv(o, argv), "--disk", "'d,image=/i,socket=/s'", "at most 64");
}

static void test_bad_command_lines(void **state)
{
	struct remusd_options *o = *state;

	EXPECT_ERROR(o, parse_argv(o, (char *[]){ "remusd", NULL }), "role",
		     "primary, standby or ctl");
	EXPECT_ERROR(o, PARSE(o, "secondary"), "'secondary'", "primary, standby or ctl");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--bogus"), "'--bogus'", "remusd --help");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--bogus=1"), "'--bogus=1'");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "-x"), "'-x'");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--n", "1"), "'--n'", "ambiguous");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--no-dedup=yes"), "'--no-dedup=yes'", "no value");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "extra"), "'extra'", "--");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--interval"), "--interval", "needs a value", "MS");
	EXPECT_ERROR(o, PARSE(o, "primary", "--qmp"), "--qmp", "needs a value", "PATH");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--disk"), "--disk", "NAME,image=PATH,socket=PATH");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--ctl="), "--ctl", "empty", "PATH");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--netdev", ""), "--netdev", "empty", "ID");
	EXPECT_ERROR(o, PARSE(o, "ctl", "/run/p.ctl"), "ctl", "SOCKET REQUEST");
	EXPECT_ERROR(o, PARSE(o, "ctl"), "ctl", "SOCKET REQUEST");
}

static void test_role_requirements(void **state)
{
	struct remusd_options *o = *state;

	EXPECT_ERROR(o, PARSE(o, "primary", "--standby", "h:1"), "primary", "--qmp PATH");
	EXPECT_ERROR(o, PARSE(o, "primary", "--qmp", "q"), "primary", "--standby HOST:PORT");
	EXPECT_ERROR(o, PARSE(o, "standby", "--qmp", "q", "--incoming", "i"), "standby",
		     "--listen [HOST:]PORT");
	EXPECT_ERROR(o, PARSE(o, "standby", "--qmp", "q", "--listen", "1"), "standby",
		     "--incoming PATH");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--journal", "/v/j"), "--journal", "'/v/j'",
		     "remusd standby");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--epoch-mem", "64"), "--epoch-mem", "remusd standby");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--spill-dir", "/s"), "--spill-dir", "'/s'",
		     "remusd standby");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--netbuffer", "plug"), "--netbuffer plug", "--tap IF");
}

/* TLS: each way lands in the config; contradictions are refused. */
static void test_tls(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, PRIMARY, "--tls-psk", "/etc/remus/k.psk"), 0);
	assert_string_equal(o->tls.psk_file, "/etc/remus/k.psk");
	assert_false(o->insecure);
	assert_int_equal(PARSE(o, STANDBY, "--tls-x509-dir", "/etc/pki/libvirt", "--tls-ca",
			       "/ca.pem", "--tls-peer-name", "hostA", "--tls-handshake-timeout",
			       "2000", "--max-handshakes", "8", "--ctl-group", "remus"), 0);
	assert_string_equal(o->tls.x509_dir, "/etc/pki/libvirt");
	assert_string_equal(o->tls.ca_file, "/ca.pem");
	assert_string_equal(o->tls.peer_name, "hostA");
	assert_int_equal(o->standby.handshake_ms, 2000);
	assert_int_equal(o->standby.max_handshakes, 8);
	assert_string_equal(o->ctl_group, "remus");
	assert_int_equal(PARSE(o, PRIMARY, "--insecure"), 0);
	assert_true(o->insecure);
	/* Neither is not a parse error: remusd_run refuses it, saying how. */
	assert_int_equal(PARSE(o, PRIMARY), 0);
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--tls-psk", "/k", "--tls-x509-dir", "/d"),
		     "--tls-psk", "--tls-x509-dir", "not both");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--tls-psk", "/k", "--insecure"), "--insecure",
		     "--tls-psk");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--tls-psk", "/k", "--tls-ca", "/ca"), "--tls-ca",
		     "--tls-x509-dir");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--tls-psk", "/k", "--tls-handshake-timeout", "500"),
		     "--tls-handshake-timeout", "standby");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--tls-handshake-timeout", "5"),
		     "--tls-handshake-timeout", "'5'", "100..600000");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--tls-psk"), "--tls-psk", "FILE");
	/* The owner a standby takes as primary: x509 and the standby only. */
	assert_int_equal(PARSE(o, STANDBY, "--tls-x509-dir", "/d", "--tls-peer-identity",
			       "CN=hostA,O=remus"), 0);
	assert_string_equal(o->standby.peer_identity, "CN=hostA,O=remus");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--tls-psk", "/k", "--tls-peer-identity", "CN=a"),
		     "--tls-peer-identity", "--tls-x509-dir");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--tls-x509-dir", "/d", "--tls-peer-identity", "CN=a"),
		     "--tls-peer-identity", "standby");
	/* keygen */
	assert_int_equal(PARSE(o, "keygen", "/etc/remus/k.psk"), 0);
	assert_int_equal(o->mode, REMUSD_KEYGEN);
	assert_string_equal(o->keygen_path, "/etc/remus/k.psk");
	EXPECT_ERROR(o, PARSE(o, "keygen"), "keygen", "FILE");
}

/* remusd ramfs: --mount is required; --socket and --allow-other are
 * optional; nothing of the roles is accepted. */
static void test_ramfs(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, "ramfs", "--mount", "/var/lib/libvirt/qemu/ram"), 0);
	assert_int_equal(o->mode, REMUSD_RAMFS);
	assert_string_equal(o->ramfs_mount, "/var/lib/libvirt/qemu/ram");
	assert_null(o->ramfs_socket); /* dirty.h's default */
	assert_false(o->ramfs_allow_other);
	assert_int_equal(PARSE(o, "ramfs", "--allow-other", "--socket", "/run/r.sock",
			       "--mount", "/m", "--log", "debug"), 0);
	assert_string_equal(o->ramfs_socket, "/run/r.sock");
	assert_true(o->ramfs_allow_other);
	assert_true(o->log_level_given);
	assert_int_equal(o->log_level, REMUS_LOG_DEBUG);
	EXPECT_ERROR(o, PARSE(o, "ramfs"), "ramfs", "--mount DIR");
	EXPECT_ERROR(o, PARSE(o, "ramfs", "--mount"), "--mount", "needs a value");
	EXPECT_ERROR(o, PARSE(o, "ramfs", "--mount", "/m", "--qmp", "/q"), "'--qmp'",
		     "--mount DIR");
	EXPECT_ERROR(o, PARSE(o, "ramfs", "--mount", "/m", "--log", "loud"), "--log",
		     "'loud'");
	assert_int_equal(PARSE(o, "ramfs", "--help"), 0);
	assert_int_equal(o->mode, REMUSD_HELP);
	EXPECT_ERROR(o, PARSE(o, "sideways"), "ramfs");
}

/* Engine v2's options: --engine, the RAM file's mount and size go
 * together, and only on the primary. */
static void test_engine_v2(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, PRIMARY), 0);
	assert_int_equal(o->engine.kind, REMUS_ENGINE_AUTO);
	assert_null(o->ram_dir);
	assert_int_equal(o->ram_size_mib, 0);
	assert_null(o->engine.ram_backend);
	assert_int_equal(PARSE(o, PRIMARY, "--engine", "v2", "--ram-dir", "/run/remus/ram",
			       "--ram-size", "1024", "--ram-backend", "ram0"), 0);
	assert_int_equal(o->engine.kind, REMUS_ENGINE_V2);
	assert_string_equal(o->ram_dir, "/run/remus/ram");
	assert_int_equal(o->ram_size_mib, 1024);
	assert_string_equal(o->engine.ram_backend, "ram0");
	assert_int_equal(PARSE(o, PRIMARY, "--engine", "v1", "--ram-dir", "/r", "--ram-size", "1"),
			 0);
	assert_int_equal(o->engine.kind, REMUS_ENGINE_V1);
	assert_int_equal(PARSE(o, PRIMARY, "--engine", "auto"), 0);
	assert_int_equal(o->engine.kind, REMUS_ENGINE_AUTO);
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--engine", "v3"), "--engine", "'v3'", "auto, v1 or v2");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--engine", "v2"), "--engine v2", "--ram-dir");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--ram-dir", "/r"), "--ram-dir and --ram-size");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--ram-size", "256"), "--ram-dir and --ram-size");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--ram-size", "0", "--ram-dir", "/r"), "--ram-size",
		     "'0'");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--ram-backend", "m"), "--ram-backend", "--ram-dir");
	EXPECT_ERROR(o, PARSE(o, STANDBY, "--ram-dir", "/r", "--ram-size", "256"), "--ram-dir",
		     "remusd primary");
}

/* Engine v2 on remusd ramfs: --ramfs SOCKET for both roles (a standby's
 * engine once it took over and protects), enough for --engine v2, and
 * not with the in-process tracker. */
static void test_engine_ramfs(void **state)
{
	struct remusd_options *o = *state;

	assert_int_equal(PARSE(o, PRIMARY), 0);
	assert_null(o->engine.ramfs_socket);
	assert_int_equal(PARSE(o, PRIMARY, "--ramfs", "/run/remus/ramfs.sock"), 0);
	assert_string_equal(o->engine.ramfs_socket, "/run/remus/ramfs.sock");
	assert_int_equal(PARSE(o, PRIMARY, "--engine", "v2", "--ramfs", "/r.sock"), 0);
	assert_int_equal(o->engine.kind, REMUS_ENGINE_V2);
	assert_int_equal(PARSE(o, STANDBY, "--ramfs", "/r.sock"), 0);
	assert_string_equal(o->engine.ramfs_socket, "/r.sock");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--ramfs", "/r.sock", "--ram-dir", "/r",
			      "--ram-size", "1"), "--ramfs and --ram-dir");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--ramfs", ""), "--ramfs", "SOCKET");
	EXPECT_ERROR(o, PARSE(o, PRIMARY, "--engine", "v2"), "--engine v2", "--ramfs");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_primary_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_ramfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_every_option, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standby_every_option, setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_miss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standby_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standby_spill_dir_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_netbuffer_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_numeric_bounds_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_and_ctl, setup, teardown),
		cmocka_unit_test(test_usage_lists_every_option),
		cmocka_unit_test_setup_teardown(test_bad_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_hostports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_words, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_disks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_command_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_role_requirements, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ramfs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
