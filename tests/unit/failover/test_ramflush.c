// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The standby's RAM-file flusher (failover/ramflush.h) and the QMP chain
 * that finds the RAM file (qmp.h: remus_qmp_ram_backend_find).
 *
 * The flusher: a shared mapping of a file on a disk file system (here
 * /var/tmp; skipped on tmpfs, which has nothing to write back) is dirtied
 * the way QEMU's incoming migration dirties its RAM file; /proc/self/smaps
 * must show those pages clean again once the flusher ran, without anyone
 * else syncing.  A file whose fdatasync fails (/proc) counts errors and
 * never a flush; a missing one is refused at start.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/loop.h"
#include "failover/ramflush.h"
#include "qmp/qmp.h"
#include "support/fake_qmp.h"

#define FILE_MB 8
#define TMPFS_MAGIC_ 0x01021994

/* Shared_Dirty + Private_Dirty kB of our mappings of @path. */
static long dirty_kb(const char *path)
{
	char line[4352];
	long kb = 0, v;
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");
	size_t n = strlen(path);

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		size_t l = strcspn(line, "\n");
		unsigned long lo, hi;

		line[l] = '\0';
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = l > n && strcmp(line + l - n, path) == 0;
		else if (in && (sscanf(line, "Shared_Dirty: %ld kB", &v) == 1 ||
				sscanf(line, "Private_Dirty: %ld kB", &v) == 1))
			kb += v;
	}
	fclose(f);
	return kb;
}

static void wait_stats(struct remus_ramflush *f, struct remus_ramflush_stats *st,
		       uint64_t flushes, uint64_t errors)
{
	for (int i = 0; i < 1000; i++) {
		remus_ramflush_stats(f, st);
		if (st->flushes >= flushes && st->errors >= errors)
			return;
		usleep(10000);
	}
	fail_msg("flusher: %llu flushes, %llu errors after 10 s",
		 (unsigned long long)st->flushes, (unsigned long long)st->errors);
}

static void test_flush_cleans_the_mapping(void **state)
{
	char path[] = "/var/tmp/remus-ramflush-XXXXXX";
	struct remus_ramflush *f = NULL;
	struct remus_ramflush_stats st;
	struct statfs sfs;
	size_t len = (size_t)FILE_MB << 20;
	char *p;
	int fd = mkstemp(path);
	long before, after;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	assert_int_equal(fstatfs(fd, &sfs), 0);
	if (sfs.f_type == TMPFS_MAGIC_) {
		unlink(path);
		close(fd);
		skip();
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	for (size_t o = 0; o < len; o += 4096)
		p[o] = (char)(o >> 12 | 1);
	before = dirty_kb(path);
	assert_true(before >= FILE_MB * 1024 - 64);

	assert_int_equal(remus_ramflush_start(path, 50, &f), 0);
	assert_string_equal(remus_ramflush_path(f), path);
	wait_stats(f, &st, 2, 0);
	after = dirty_kb(path);
	print_message("dirty %ld kB before, %ld kB after %llu flushes (last %.1f ms, max %.1f ms)\n",
		      before, after, (unsigned long long)st.flushes, st.last_ms, st.max_ms);
	assert_true(after < 256);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.last_err, 0);
	assert_int_equal(st.running, 1);

	/* Pages dirtied later are flushed too: it keeps running.  The
	 * second flush that ends after the writes started after them. */
	for (size_t o = 0; o < len; o += 4096)
		p[o] ^= 0x40;
	remus_ramflush_stats(f, &st);
	wait_stats(f, &st, st.flushes + 2, 0);
	assert_true(dirty_kb(path) < 256);

	remus_ramflush_stop(f);
	remus_ramflush_stats(f, &st);
	assert_int_equal(st.running, 0);
	remus_ramflush_free(f);
	munmap(p, len);
	close(fd);
	unlink(path);
}

static void test_flush_error_is_counted(void **state)
{
	struct remus_ramflush *f = NULL;
	struct remus_ramflush_stats st;

	/* procfs has no fsync: every flush fails with EINVAL. */
	assert_int_equal(remus_ramflush_start("/proc/self/status", 20, &f), 0);
	wait_stats(f, &st, 0, 2);
	assert_int_equal(st.flushes, 0);
	assert_int_equal(st.last_err, -EINVAL);
	remus_ramflush_free(f);
}

static void test_missing_file_refused(void **state)
{
	struct remus_ramflush *f = NULL;

	assert_int_equal(remus_ramflush_start("/nonexistent/remus/pc.ram", 0, &f), -ENOENT);
	assert_null(f);
	remus_ramflush_free(NULL);
}

/* ---- the QMP chain --------------------------------------------------- */

struct qemu_ram {
	const char *backend;   /* machine memory-backend: JSON, NULL: error */
	const char *mem_path;  /* JSON, NULL: error (memory-backend-ram) */
	const char *share;     /* JSON */
};

static void answer(struct remus_fake_qmp *fq, struct remus_fake_qmp_cmd *cmd, void *opaque)
{
	const struct qemu_ram *r = opaque;
	const char *prop = remus_fake_qmp_arg(cmd, "property");
	const char *v = NULL;

	if (strcmp(cmd->name, "qom-get") != 0 || !prop) {
		remus_fake_qmp_builtin(fq, cmd);
		return;
	}
	if (strcmp(prop, "memory-backend") == 0)
		v = r->backend;
	else if (strcmp(prop, "mem-path") == 0)
		v = r->mem_path;
	else if (strcmp(prop, "share") == 0)
		v = r->share;
	if (v)
		remus_fake_qmp_reply(fq, cmd, v);
	else
		remus_fake_qmp_reply_error(fq, cmd, "GenericError",
					   "Property 'memory-backend-ram.mem-path' not found");
}

static void found(struct remus_qmp_ram_backend *b, void *opaque)
{
	(*(int *)opaque)++;
}

static void run_chain(const struct qemu_ram *r, struct remus_qmp_ram_backend *b,
		      const char *log)
{
	struct remus_loop *loop = NULL;
	struct remus_fake_qmp *fq = NULL;
	struct remus_qmp *q = NULL;
	int done = 0;

	assert_int_equal(remus_loop_new(&loop), 0);
	remus_fake_qmp_pair(loop, answer, (void *)r, &fq, &q);
	remus_fake_qmp_log_clear(fq);
	assert_int_equal(remus_qmp_ram_backend_find(q, &done, b, found, &done), 0);
	for (int i = 0; i < 200 && !done; i++)
		remus_loop_run_once(loop, 10);
	assert_int_equal(done, 1);
	assert_string_equal(remus_fake_qmp_log(fq), log);
	remus_qmp_free(q);
	remus_fake_qmp_free(fq);
	remus_loop_free(loop);
}

static void test_chain_file(void **state)
{
	struct remus_qmp_ram_backend b;

	run_chain(&(struct qemu_ram){ "\"/objects/pc.ram\"", "\"/ram/1-x/pc.ram\"", "true" }, &b,
		  "qom-get /machine;qom-get /objects/pc.ram;qom-get /objects/pc.ram;");
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.id, "pc.ram");
	assert_string_equal(b.mem_path, "/ram/1-x/pc.ram");
	assert_true(b.share);
}

static void test_chain_anonymous(void **state)
{
	struct remus_qmp_ram_backend b;

	run_chain(&(struct qemu_ram){ "\"mem\"", NULL, "true" }, &b,
		  "qom-get /machine;qom-get /objects/mem;");
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.id, "mem");
	assert_string_equal(b.mem_path, "");
	assert_non_null(strstr(b.err, "not found"));
}

static void test_chain_private_file_and_numa(void **state)
{
	struct remus_qmp_ram_backend b;

	run_chain(&(struct qemu_ram){ "\"mem\"", "\"/f\"", "false" }, &b,
		  "qom-get /machine;qom-get /objects/mem;qom-get /objects/mem;");
	assert_string_equal(b.mem_path, "/f");
	assert_false(b.share);
	run_chain(&(struct qemu_ram){ "\"\"", "\"/f\"", "true" }, &b, "qom-get /machine;");
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.id, "");
	/* The fake's default answer {} is no backend id either. */
	run_chain(&(struct qemu_ram){ "{}", "\"/f\"", "true" }, &b, "qom-get /machine;");
	assert_string_equal(b.id, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_cleans_the_mapping),
		cmocka_unit_test(test_flush_error_is_counted),
		cmocka_unit_test(test_missing_file_refused),
		cmocka_unit_test(test_chain_file),
		cmocka_unit_test(test_chain_anonymous),
		cmocka_unit_test(test_chain_private_file_and_numa),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
