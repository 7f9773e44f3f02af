// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * State files (hostd/state.h): a record survives the round trip; every
 * torn prefix of a good file and every kind of garbage is refused with a
 * message naming the file and what is wrong; a write cut by the file
 * size limit (a real short write: EFBIG) or a tmp left by a crash never
 * costs the previous good record; files are 0600; load_all reports bad
 * files, leaves them, and removes stale tmps.  Where unprotect moves a
 * disk back to: its original file, else a new one next to remusd's image.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostd/state.h"

static char dir[64];
static char err[1024];

static void sample(struct remus_hostd_dstate *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->domain, sizeof(s->domain), "%s", name);
	snprintf(s->uuid, sizeof(s->uuid), "6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f");
	s->role = REMUS_HOSTD_ROLE_STANDBY;
	snprintf(s->peer, sizeof(s->peer), "hostA");
	s->peer_port = 7790;
	s->repl_port = 7801;
	s->interval_ms = 200;
	s->pause_budget_ms = 150;
	s->netbuffer = REMUS_HOSTD_NB_PLUG;
	s->reprotect = REMUS_HOSTD_REPROTECT_MANUAL;
	s->since_ms = 1764613800123ull;
	snprintf(s->owner, sizeof(s->owner), "CN=hostA,O=example");
	s->takeover = 7;
	s->ndisks = 2;
	snprintf(s->disks[0].target, sizeof(s->disks[0].target), "vda");
	snprintf(s->disks[0].format, sizeof(s->disks[0].format), "qcow2");
	s->disks[0].size = 1ull << 34;
	snprintf(s->disks[0].source, sizeof(s->disks[0].source), "/var/lib/libvirt/images/w.qcow2");
	snprintf(s->disks[1].target, sizeof(s->disks[1].target), "vdb");
	snprintf(s->disks[1].format, sizeof(s->disks[1].format), "raw");
	s->disks[1].size = 4096;
}

static void test_round_trip(void **state)
{
	struct remus_hostd_dstate a, b;
	char *text;

	sample(&a, "web1");
	text = remus_hostd_state_format(&a);
	assert_non_null(text);
	assert_int_equal(remus_hostd_state_parse(text, strlen(text), &b, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	free(text);
}

/* Every proper prefix of a good file (what a torn write can leave) is
 * refused. */
static void test_every_prefix_refused(void **state)
{
	struct remus_hostd_dstate a, b;
	char *text;
	size_t n, len;

	sample(&a, "web1");
	text = remus_hostd_state_format(&a);
	len = strlen(text);
	for (n = 0; n < len; n++) {
		err[0] = 0;
		if (remus_hostd_state_parse(text, n, &b, err, sizeof(err)) != -EINVAL)
			fail_msg("a prefix of %zu of %zu bytes was accepted", n, len);
		assert_true(err[0] != 0);
	}
	/* A tail of zeros (blocks allocated, never written) is refused too. */
	text = realloc(text, len + 64);
	memset(text + len, 0, 64);
	assert_int_equal(remus_hostd_state_parse(text, len + 64, &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
	/* Trailing blanks are fine. */
	memcpy(text + len, " \n", 2);
	assert_int_equal(remus_hostd_state_parse(text, len + 2, &b, err, sizeof(err)), 0);
	free(text);
}

static void refused(const char *text, const char *why)
{
	struct remus_hostd_dstate b;

	err[0] = 0;
	assert_int_equal(remus_hostd_state_parse(text, strlen(text), &b, err, sizeof(err)), -EINVAL);
	if (!strstr(err, why))
		fail_msg("'%s': error '%s' does not say '%s'", text, err, why);
}

#define GOOD_HEAD "{\"format\":\"remus-domain-state\",\"version\":1,\"domain\":\"web1\"," \
	"\"uuid\":\"6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f\",\"role\":\"primary\",\"peer\":\"b\"," \
	"\"peer_port\":7790,\"repl_port\":0,\"interval_ms\":200,\"pause_budget_ms\":300," \
	"\"netbuffer\":\"qemu\",\"reprotect\":\"auto\",\"since_ms\":5"

static void test_garbage_refused(void **state)
{
	struct remus_hostd_dstate b;
	const char *good = GOOD_HEAD ",\"disks\":[]}";

	assert_int_equal(remus_hostd_state_parse(good, strlen(good), &b, err, sizeof(err)), 0);
	assert_int_equal(b.role, REMUS_HOSTD_ROLE_PRIMARY);
	assert_int_equal(b.ndisks, 0);
	/* No owner: a record from before issue 12, which binds nobody. */
	assert_string_equal(b.owner, "");
	good = GOOD_HEAD ",\"owner\":\"PSK identity remus\",\"disks\":[]}";
	assert_int_equal(remus_hostd_state_parse(good, strlen(good), &b, err, sizeof(err)), 0);
	assert_string_equal(b.owner, "PSK identity remus");
	/* No takeover count: a record from before the fence rule, 0. */
	assert_int_equal(b.takeover, 0);
	good = GOOD_HEAD ",\"takeover\":12,\"disks\":[]}";
	assert_int_equal(remus_hostd_state_parse(good, strlen(good), &b, err, sizeof(err)), 0);
	assert_int_equal(b.takeover, 12);
	refused(GOOD_HEAD ",\"takeover\":-1,\"disks\":[]}", "\"takeover\"");
	refused(GOOD_HEAD ",\"takeover\":\"3\",\"disks\":[]}", "\"takeover\"");
	refused(GOOD_HEAD ",\"owner\":7,\"disks\":[]}", "\"owner\"");
	refused(GOOD_HEAD ",\"owner\":\"a\\u0000b\",\"disks\":[]}", "NUL");
	{
		char big[REMUS_HOSTD_IDENTITY_MAX + 400];

		snprintf(big, sizeof(big), GOOD_HEAD ",\"owner\":\"%0*d\",\"disks\":[]}",
			 REMUS_HOSTD_IDENTITY_MAX, 0);
		refused(big, "\"owner\"");
	}
	refused("", "empty");
	refused("hello", "JSON");
	refused("[1,2]", "not a JSON object");
	refused(GOOD_HEAD ",\"disks\":[]}{}", "JSON object");
	refused(GOOD_HEAD ",\"disks\":[]}x", "JSON object");
	refused("{\"format\":\"other\",\"version\":1}", "format");
	refused("{\"format\":\"remus-domain-state\",\"version\":2}", "version 2");
	refused("{\"format\":\"remus-domain-state\",\"version\":\"1\"}", "\"version\"");
	refused(GOOD_HEAD "}", "\"disks\"");
	refused(GOOD_HEAD ",\"disks\":{}}", "\"disks\"");
	refused(GOOD_HEAD ",\"disks\":[1]}", "not an object");
	refused(GOOD_HEAD ",\"disks\":[{\"target\":\"vda\",\"format\":\"raw\",\"source\":\"\","
		"\"size\":-1}]}", "\"size\"");
	refused(GOOD_HEAD ",\"disks\":[{\"target\":\"\",\"format\":\"raw\",\"source\":\"\","
		"\"size\":1}]}", "\"target\" is empty");
	refused("{\"format\":\"remus-domain-state\",\"version\":1,\"domain\":\"../etc\"}",
		"not a domain name");
	refused("{\"format\":\"remus-domain-state\",\"version\":1,\"domain\":\"w\","
		"\"uuid\":\"nope\"}", "not a UUID");
	refused("{\"format\":\"remus-domain-state\",\"version\":1,\"domain\":\"w\","
		"\"uuid\":\"6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f\",\"role\":\"boss\"}", "\"role\"");
	refused("{\"format\":\"remus-domain-state\",\"version\":1,\"domain\":\"w\","
		"\"uuid\":\"6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f\",\"role\":\"primary\","
		"\"peer\":\"b\",\"peer_port\":70000}", "\"peer_port\" is not in 1..65535");
	refused("{\"format\":\"remus-domain-state\",\"version\":1,\"domain\":\"w\\u0000x\"}", "NUL");
	refused("{'format':'remus-domain-state'}", "JSON");
}

static void test_names(void **state)
{
	assert_true(remus_hostd_domain_name_ok("web1"));
	assert_true(remus_hostd_domain_name_ok("db_2.example+x-y"));
	assert_false(remus_hostd_domain_name_ok(""));
	assert_false(remus_hostd_domain_name_ok(".hidden"));
	assert_false(remus_hostd_domain_name_ok("-opt"));
	assert_false(remus_hostd_domain_name_ok("a/b"));
	assert_false(remus_hostd_domain_name_ok("a b"));
	assert_false(remus_hostd_domain_name_ok(
		"a234567890123456789012345678901234567890123456789012345678901234"));
	assert_true(remus_hostd_uuid_ok("6F2B5C1E-3d4a-4b8e-9c1f-0a1b2c3d4e5f"));
	assert_false(remus_hostd_uuid_ok("6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5"));
	assert_false(remus_hostd_uuid_ok("6f2b5c1e+3d4a-4b8e-9c1f-0a1b2c3d4e5f"));
}

static void write_raw(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void test_save_load_mode(void **state)
{
	struct remus_hostd_dstate a, b;
	char path[256];
	struct stat st;

	sample(&a, "web1");
	assert_int_equal(remus_hostd_state_load(dir, "web1", &b, err, sizeof(err)), -ENOENT);
	assert_int_equal(remus_hostd_state_save(dir, &a, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/domains/web1.json", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/domains", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(remus_hostd_state_load(dir, "web1", &b, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* A second save replaces it whole. */
	a.role = REMUS_HOSTD_ROLE_PRIMARY;
	a.ndisks = 0;
	memset(a.disks, 0, sizeof(a.disks));
	assert_int_equal(remus_hostd_state_save(dir, &a, err, sizeof(err)), 0);
	assert_int_equal(remus_hostd_state_load(dir, "web1", &b, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(remus_hostd_state_remove(dir, "web1", err, sizeof(err)), 0);
	assert_int_equal(remus_hostd_state_load(dir, "web1", &b, err, sizeof(err)), -ENOENT);
	assert_int_equal(remus_hostd_state_remove(dir, "web1", err, sizeof(err)), 0);
	/* A bad name is never turned into a path. */
	snprintf(a.domain, sizeof(a.domain), "../x");
	assert_int_equal(remus_hostd_state_save(dir, &a, err, sizeof(err)), -EINVAL);
	assert_int_equal(remus_hostd_state_load(dir, "../x", &b, err, sizeof(err)), -EINVAL);
}

/* A write cut short for real: RLIMIT_FSIZE makes write(2) stop at 100
 * bytes (EFBIG).  The save fails naming the step, and the previous
 * record is intact; no tmp is left. */
static void test_short_write_keeps_previous(void **state)
{
	struct remus_hostd_dstate a, b;
	struct rlimit old, lim;
	char path[256];

	sample(&a, "db");
	assert_int_equal(remus_hostd_state_save(dir, &a, err, sizeof(err)), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 100;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	b = a;
	b.role = REMUS_HOSTD_ROLE_PRIMARY;
	err[0] = 0;
	assert_int_equal(remus_hostd_state_save(dir, &b, err, sizeof(err)), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_non_null(strstr(err, "write"));
	assert_non_null(strstr(err, "db.json.tmp"));
	assert_non_null(strstr(err, "intact"));
	snprintf(path, sizeof(path), "%s/domains/db.json.tmp", dir);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(remus_hostd_state_load(dir, "db", &b, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(remus_hostd_state_remove(dir, "db", err, sizeof(err)), 0);
}

struct seen {
	int good, bad;
	char names[8][64];
	char errs[8][1024];
};

static void on_each(void *opaque, const struct remus_hostd_dstate *s, const char *e)
{
	struct seen *v = opaque;

	if (s)
		snprintf(v->names[v->good++], 64, "%s", s->domain);
	else
		snprintf(v->errs[v->bad++], 1024, "%s", e);
}

/* A crash between the tmp's write and the rename leaves a torn tmp next
 * to the good record: load_all returns the good record and removes the
 * tmp.  A torn record from elsewhere is reported by name and left. */
static void test_load_all_after_crash(void **state)
{
	struct remus_hostd_dstate a;
	struct seen v = { 0 };
	char path[256], *text;

	sample(&a, "web1");
	assert_int_equal(remus_hostd_state_save(dir, &a, err, sizeof(err)), 0);
	sample(&a, "web2");
	assert_int_equal(remus_hostd_state_save(dir, &a, err, sizeof(err)), 0);
	text = remus_hostd_state_format(&a);
	snprintf(path, sizeof(path), "%s/domains/web1.json.tmp", dir);
	write_raw(path, text, strlen(text) / 2);
	snprintf(path, sizeof(path), "%s/domains/web3.json", dir);
	write_raw(path, text, strlen(text) - 1);
	snprintf(path, sizeof(path), "%s/domains/notes.txt", dir);
	write_raw(path, "x", 1);
	free(text);

	assert_int_equal(remus_hostd_state_load_all(dir, on_each, &v, err, sizeof(err)), 2);
	assert_int_equal(v.good, 2);
	assert_true((strcmp(v.names[0], "web1") == 0 && strcmp(v.names[1], "web2") == 0) ||
		    (strcmp(v.names[0], "web2") == 0 && strcmp(v.names[1], "web1") == 0));
	assert_int_equal(v.bad, 1);
	assert_non_null(strstr(v.errs[0], "web3.json"));
	assert_non_null(strstr(v.errs[0], "not usable"));
	snprintf(path, sizeof(path), "%s/domains/web1.json.tmp", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/domains/web3.json", dir);
	assert_int_equal(access(path, F_OK), 0);     /* left for the operator */
	/* web2.json recording another domain's name is refused. */
	unlink(path);
	snprintf(path, sizeof(path), "%s/domains/web2.json", dir);
	{
		char p2[256];

		snprintf(p2, sizeof(p2), "%s/domains/web9.json", dir);
		assert_int_equal(rename(path, p2), 0);
		memset(&v, 0, sizeof(v));
		assert_int_equal(remus_hostd_state_load_all(dir, on_each, &v, err, sizeof(err)),
				 1);
		assert_int_equal(v.bad, 1);
		assert_non_null(strstr(v.errs[0], "not 'web9'"));
		unlink(p2);
	}
	snprintf(path, sizeof(path), "%s/domains/notes.txt", dir);
	unlink(path);
	assert_int_equal(remus_hostd_state_remove(dir, "web1", err, sizeof(err)), 0);
	/* No directory at all: no records. */
	assert_int_equal(remus_hostd_state_load_all("/nonexistent-remus", on_each, &v, err,
						    sizeof(err)), 0);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_state.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/domains", dir);
	rmdir(path);
	return rmdir(dir);
}

/* unprotect's destination of a disk (remus_hostd_release_target). */
static void test_release_target(void **state)
{
	struct remus_hostd_disk k;
	char path[1100], fmt[16];

	memset(&k, 0, sizeof(k));
	snprintf(k.target, sizeof(k.target), "vda");
	snprintf(k.format, sizeof(k.format), "qcow2");
	snprintf(k.source, sizeof(k.source), "/var/lib/libvirt/images/web1.qcow2");
	assert_int_equal(remus_hostd_release_target("/var/lib/remus", "web1", &k, path,
						    sizeof(path), fmt, sizeof(fmt)), 1);
	assert_string_equal(path, "/var/lib/libvirt/images/web1.qcow2");
	assert_string_equal(fmt, "qcow2");
	/* a domain that came by a failover: its source is the export's name */
	snprintf(k.source, sizeof(k.source), "vda");
	snprintf(k.format, sizeof(k.format), "raw");
	assert_int_equal(remus_hostd_release_target("/var/lib/remus", "web1", &k, path,
						    sizeof(path), fmt, sizeof(fmt)), 0);
	assert_string_equal(path, "/var/lib/remus/web1/vda.released.raw");
	assert_string_equal(fmt, "raw");
	/* never remusd's own files, an odd path or an unknown format */
	snprintf(k.source, sizeof(k.source), "/var/lib/remus/web1/vda.raw");
	assert_int_equal(remus_hostd_release_target("/var/lib/remus", "web1", &k, path,
						    sizeof(path), fmt, sizeof(fmt)), 0);
	snprintf(k.source, sizeof(k.source), "/var/lib/remus");
	assert_int_equal(remus_hostd_release_target("/var/lib/remus", "web1", &k, path,
						    sizeof(path), fmt, sizeof(fmt)), 0);
	snprintf(k.source, sizeof(k.source), "/var/lib/remus2/web1.raw");
	assert_int_equal(remus_hostd_release_target("/var/lib/remus", "web1", &k, path,
						    sizeof(path), fmt, sizeof(fmt)), 1);
	snprintf(k.source, sizeof(k.source), "/images/../etc/web1.raw");
	assert_int_equal(remus_hostd_release_target("/var/lib/remus", "web1", &k, path,
						    sizeof(path), fmt, sizeof(fmt)), 0);
	snprintf(k.source, sizeof(k.source), "/images/web1.vmdk");
	snprintf(k.format, sizeof(k.format), "vmdk");
	assert_int_equal(remus_hostd_release_target("/var/lib/remus", "web1", &k, path,
						    sizeof(path), fmt, sizeof(fmt)), 0);
	assert_string_equal(fmt, "raw");
	/* too long for the caller's buffer */
	snprintf(k.format, sizeof(k.format), "raw");
	assert_int_equal(remus_hostd_release_target("/var/lib/remus", "web1", &k, path, 8, fmt,
						    sizeof(fmt)), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_prefix_refused),
		cmocka_unit_test(test_garbage_refused),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_save_load_mode),
		cmocka_unit_test(test_short_write_keeps_previous),
		cmocka_unit_test(test_load_all_after_crash),
		cmocka_unit_test(test_release_target),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
