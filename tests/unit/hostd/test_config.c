// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * remusd serve's settings (hostd/config.h): the defaults, every key from
 * the file and as an option, the options winning over the file, and each
 * refusal naming the file, the line and the key (or the option) with the
 * value and what is expected, the config unchanged by a refused value.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "dirty/dirty.h"
#include "hostd/config.h"

static char err[512];

static int parse(struct remus_hostd_config *c, const char *text)
{
	err[0] = 0;
	return remus_hostd_config_parse(c, "/etc/remus/remusd.conf", text, strlen(text), err,
					sizeof(err));
}

static void expect(int rc, const char *const *parts)
{
	assert_int_equal(rc, -EINVAL);
	for (; *parts; parts++)
		if (!strstr(err, *parts))
			fail_msg("error '%s' does not mention '%s'", err, *parts);
}
#define EXPECT(rc, ...) expect((rc), (const char *const[]){ __VA_ARGS__, NULL })

static void test_defaults(void **state)
{
	struct remus_hostd_config c;

	remus_hostd_config_init(&c);
	assert_int_equal(c.listen_port, 7790);
	assert_string_equal(c.listen_host, "");
	assert_string_equal(c.connect, "qemu:///system");
	assert_string_equal(c.ctl, "/run/remus/remusd.sock");
	assert_string_equal(c.state_dir, "/var/lib/remus");
	assert_string_equal(c.run_dir, "/run/remus");
	assert_int_equal(c.metrics_port, 0);
	assert_int_equal(c.interval_ms, 1000);
	assert_int_equal(c.pause_budget_ms, 300);
	assert_int_equal(c.netbuffer, REMUS_HOSTD_NB_QEMU);
	assert_int_equal(c.reprotect, REMUS_HOSTD_REPROTECT_AUTO);
	assert_int_equal(c.repl_port_min, 7800);
	assert_int_equal(c.repl_port_max, 7899);
	assert_int_equal(c.max_peer_sessions, 16);
	assert_int_equal(c.max_handshakes, 4);
	assert_int_equal(c.primary_miss, 0);
	assert_string_equal(c.fence_command, "");
	/* hostd may not include dirty/: its copy of the default must agree */
	assert_string_equal(c.ramfs_socket, REMUS_RAMFS_DEFAULT_SOCKET);
	assert_false(c.log_level_given);
}

/* ramfs_socket: an absolute socket path, or off (every domain v1). */
static void test_ramfs_socket(void **state)
{
	struct remus_hostd_config c;

	remus_hostd_config_init(&c);
	assert_int_equal(parse(&c, "ramfs_socket = /run/lab/ramfs.sock\n"), 0);
	assert_string_equal(c.ramfs_socket, "/run/lab/ramfs.sock");
	assert_int_equal(parse(&c, "ramfs_socket = off\n"), 0);
	assert_string_equal(c.ramfs_socket, "");
	EXPECT(parse(&c, "ramfs_socket = ramfs.sock\n"), "ramfs_socket", "'ramfs.sock'",
	       "absolute path");
	EXPECT(parse(&c, "ramfs_socket =\n"), "ramfs_socket", "PATH|off");
	assert_string_equal(c.ramfs_socket, "");
}

static void test_every_key(void **state)
{
	struct remus_hostd_config c;

	remus_hostd_config_init(&c);
	assert_int_equal(parse(&c,
		"# remusd serve, host A\n"
		"\n"
		"listen = 10.0.0.1:7791\n"
		"connect = qemu+unix:///system?socket=/run/libvirt/libvirt-sock   # lab\n"
		"   ctl=/run/r/remusd.sock\n"
		"ctl_group = remus\n"
		"state_dir = /srv/remus\n"
		"run_dir = /run/r\n"
		"metrics_listen = [::1]:9790\n"
		"name = hostA\n"
		"remusd = /usr/local/bin/remusd\n"
		"interval = 200\n"
		"pause_budget = 150\n"
		"heartbeat = 50\n"
		"miss = 8\n"
		"primary_miss = 20\n"
		"fence_command = \"ipmitool -H bmc-$REMUS_PEER chassis power off # STONITH\"\n"
		"netbuffer = off\n"
		"reprotect = manual\n"
		"repl_ports = 9000-9010\n"
		"peer_timeout = 2000\n"
		"max_peer_sessions = 3\n"
		"max_handshakes = 2\n"
		"log = debug\r\n"), 0);
	assert_string_equal(c.listen_host, "10.0.0.1");
	assert_int_equal(c.listen_port, 7791);
	assert_string_equal(c.connect, "qemu+unix:///system?socket=/run/libvirt/libvirt-sock");
	assert_string_equal(c.ctl, "/run/r/remusd.sock");
	assert_string_equal(c.ctl_group, "remus");
	assert_string_equal(c.state_dir, "/srv/remus");
	assert_string_equal(c.run_dir, "/run/r");
	assert_string_equal(c.metrics_host, "::1");
	assert_int_equal(c.metrics_port, 9790);
	assert_string_equal(c.host_name, "hostA");
	assert_string_equal(c.remusd, "/usr/local/bin/remusd");
	assert_int_equal(c.interval_ms, 200);
	assert_int_equal(c.pause_budget_ms, 150);
	assert_int_equal(c.heartbeat_ms, 50);
	assert_int_equal(c.heartbeat_miss, 8);
	assert_int_equal(c.primary_miss, 20);
	assert_string_equal(c.fence_command, "ipmitool -H bmc-$REMUS_PEER chassis power off # STONITH");
	assert_int_equal(c.netbuffer, REMUS_HOSTD_NB_OFF);
	assert_int_equal(c.reprotect, REMUS_HOSTD_REPROTECT_MANUAL);
	assert_int_equal(c.repl_port_min, 9000);
	assert_int_equal(c.repl_port_max, 9010);
	assert_int_equal(c.peer_timeout_ms, 2000);
	assert_int_equal(c.max_peer_sessions, 3);
	assert_int_equal(c.max_handshakes, 2);
	assert_true(c.log_level_given);
	assert_int_equal(c.log_level, REMUS_LOG_DEBUG);
}

/* '#' inside a quoted value or inside a word is not a comment. */
static void test_quotes_and_comments(void **state)
{
	struct remus_hostd_config c;

	remus_hostd_config_init(&c);
	assert_int_equal(parse(&c, "connect = \"qemu:///embed?root=/x#y\" # c\n"
				   "ctl_group = a#b\n"
				   "listen = 7792"), 0);    /* no final newline */
	assert_string_equal(c.connect, "qemu:///embed?root=/x#y");
	assert_string_equal(c.ctl_group, "a#b");
	assert_string_equal(c.listen_host, "");
	assert_int_equal(c.listen_port, 7792);
}

static void test_file_errors(void **state)
{
	struct remus_hostd_config c, before;

	remus_hostd_config_init(&c);
	before = c;
	EXPECT(parse(&c, "interval = 200\n\nheartbeat = fast\n"), "remusd.conf:3", "heartbeat",
	       "'fast'", "10..60000");
	EXPECT(parse(&c, "\n\n\nlisten 7790\n"), "remusd.conf:4", "key = value");
	EXPECT(parse(&c, "bogus = 1\n"), "remusd.conf:1", "unknown key 'bogus'");
	EXPECT(parse(&c, "state-dir = /x\n"), "remusd.conf:1", "state_dir");
	EXPECT(parse(&c, "state_dir = x\n"), "remusd.conf:1", "state_dir", "absolute path");
	EXPECT(parse(&c, "state_dir =\n"), "state_dir", "empty");
	EXPECT(parse(&c, "miss = 2\nmiss = 3\n"), "remusd.conf:2", "miss", "second time");
	EXPECT(parse(&c, "= 3\n"), "remusd.conf:1", "no key");
	EXPECT(parse(&c, "connect = \"abc\n"), "connect", "quotes");
	EXPECT(parse(&c, "connect = \"a\"b\"\n"), "connect", "quotes");
	EXPECT(parse(&c, "listen = 0\n"), "listen", "'0'", "[HOST:]PORT");
	EXPECT(parse(&c, "listen = ::1:7790\n"), "listen", "[V6]:PORT");
	EXPECT(parse(&c, "listen = h:70000\n"), "listen", "1..65535");
	EXPECT(parse(&c, "netbuffer = tc\n"), "netbuffer", "qemu, plug or off");
	EXPECT(parse(&c, "reprotect = yes\n"), "reprotect", "auto or manual");
	EXPECT(parse(&c, "repl_ports = 9010-9000\n"), "repl_ports", "MIN-MAX");
	EXPECT(parse(&c, "repl_ports = 9000\n"), "repl_ports", "MIN-MAX");
	EXPECT(parse(&c, "log = loud\n"), "log", "'loud'", "debug");
	EXPECT(parse(&c, "interval = -5\n"), "interval");
	EXPECT(parse(&c, "interval = 9\n"), "interval", "10..");
	EXPECT(parse(&c, "primary_miss = 1001\n"), "primary_miss", "0..1000");
	EXPECT(parse(&c, "fence_command = a\tb\n"), "fence_command", "control character");
	EXPECT(parse(&c, "ctl = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"),
	       "ctl", "unix socket path");
	/* Nothing above changed the config: the failing keys refuse whole
	 * (the first line of the first case, "interval = 200", did apply). */
	before.interval_ms = 200;
	before.heartbeat_miss = 2;
	assert_memory_equal(&c, &before, sizeof(c));
	/* NUL bytes: not a text file. */
	err[0] = 0;
	EXPECT(remus_hostd_config_parse(&c, "/f", "a = b\0c", 7, err, sizeof(err)), "/f",
	       "NUL");
}

static char tmpdir[64];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

#define ARGS(...) (char *[]){ "serve", __VA_ARGS__, NULL }
#define NARGS(...) ((int)(sizeof((char *[]){ "serve", __VA_ARGS__ }) / sizeof(char *)))

/* --config FILE is read first wherever it is, the options win over it;
 * --key=value and --key value; --help. */
static void test_args(void **state)
{
	struct remus_hostd_config c;
	char path[128];
	bool help;

	snprintf(path, sizeof(path), "%s/remusd.conf", tmpdir);
	write_file(path, "interval = 200\nlisten = 7001\nctl = /run/a.sock\n");
	remus_hostd_config_init(&c);
	assert_int_equal(remus_hostd_config_from_args(&c, NARGS("--interval", "300", "--config",
		path, "--state-dir=/s", "--metrics-listen", "127.0.0.1:9100"),
		ARGS("--interval", "300", "--config", path, "--state-dir=/s", "--metrics-listen",
		     "127.0.0.1:9100"), &help, err, sizeof(err)), 0);
	assert_false(help);
	assert_int_equal(c.interval_ms, 300);
	assert_int_equal(c.listen_port, 7001);
	assert_string_equal(c.ctl, "/run/a.sock");
	assert_string_equal(c.state_dir, "/s");
	assert_string_equal(c.metrics_host, "127.0.0.1");
	assert_int_equal(c.metrics_port, 9100);

	/* The fence and the primary's detection as options (a command with
	 * blanks is one argument). */
	remus_hostd_config_init(&c);
	assert_int_equal(remus_hostd_config_from_args(&c, NARGS("--config", path, "--fence-command",
		"/usr/sbin/fence_ipmilan -a bmc-$REMUS_PEER -o off", "--primary-miss=7"),
		ARGS("--config", path, "--fence-command",
		     "/usr/sbin/fence_ipmilan -a bmc-$REMUS_PEER -o off", "--primary-miss=7"),
		&help, err, sizeof(err)), 0);
	assert_string_equal(c.fence_command, "/usr/sbin/fence_ipmilan -a bmc-$REMUS_PEER -o off");
	assert_int_equal(c.primary_miss, 7);

	remus_hostd_config_init(&c);
	assert_int_equal(remus_hostd_config_from_args(&c, NARGS("--bogus", "1", "--help"),
		ARGS("--bogus", "1", "--help"), &help, err, sizeof(err)), 0);
	assert_true(help);

	remus_hostd_config_init(&c);
	EXPECT(remus_hostd_config_from_args(&c, NARGS("--config", path, "--pause-budget", "0"),
		ARGS("--config", path, "--pause-budget", "0"), &help, err, sizeof(err)),
	       "--pause-budget", "'0'", "1..60000");
	EXPECT(remus_hostd_config_from_args(&c, NARGS("--config", path, "--bogus", "1"),
		ARGS("--config", path, "--bogus", "1"), &help, err, sizeof(err)),
	       "unknown option '--bogus'");
	EXPECT(remus_hostd_config_from_args(&c, NARGS("--config", path, "--state_dir", "/x"),
		ARGS("--config", path, "--state_dir", "/x"), &help, err, sizeof(err)),
	       "'-'");
	EXPECT(remus_hostd_config_from_args(&c, NARGS("--config", path, "stray"),
		ARGS("--config", path, "stray"), &help, err, sizeof(err)), "'stray'");
	EXPECT(remus_hostd_config_from_args(&c, NARGS("--config", path, "--interval"),
		ARGS("--config", path, "--interval"), &help, err, sizeof(err)),
	       "--interval", "needs a value");

	/* A named file that is missing is an error; its name is said. */
	assert_int_equal(remus_hostd_config_from_args(&c, NARGS("--config", "/nonexistent/r.conf"),
		ARGS("--config", "/nonexistent/r.conf"), &help, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/r.conf"));

	/* An error in the file names the file and line. */
	write_file(path, "# x\nmiss = many\n");
	remus_hostd_config_init(&c);
	EXPECT(remus_hostd_config_from_args(&c, NARGS("--config", path),
		ARGS("--config", path), &help, err, sizeof(err)), path, ":2: miss", "'many'");
	unlink(path);
}

/* The usage text lists every key as an option. */
static void test_usage(void **state)
{
	static const char *const opts[] = {
		"--listen", "--connect", "--ctl ", "--ctl-group", "--state-dir", "--run-dir",
		"--metrics-listen", "--name", "--remusd", "--interval", "--pause-budget",
		"--heartbeat", "--miss", "--primary-miss", "--fence-command", "--netbuffer", "--reprotect", "--repl-ports",
		"--peer-timeout", "--log", "--config",
	};
	char buf[8192] = "";
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	assert_non_null(f);
	remus_hostd_config_usage(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (!strstr(buf, opts[i]))
			fail_msg("usage does not mention %s", opts[i]);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ramfs_socket),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_quotes_and_comments),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_usage),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
