// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The memory-then-file store (common/spill.h): bytes stay in memory up to
 * the budget and spill to an unnamed file after it, read back in any
 * chunking they come out in order and hash alike; the budget is never
 * exceeded, is shared by stores and returns as bytes are read or a store
 * is released; once spilled a store stays in its file, and what is read
 * of it is given back to the file system; a big store is freed without
 * its caller waiting; a file that cannot be written or read back makes
 * the store fail stickily.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "common/spill.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

struct env {
	char dir[64];
	uint8_t *data; /* DATA_LEN bytes, a pattern no two positions share */
};
#define DATA_LEN (3 * MiB + 12345)

static int setup(void **state)
{
	struct env *v = calloc(1, sizeof(*v));
	size_t i;

	assert_non_null(v);
	snprintf(v->dir, sizeof(v->dir), "/tmp/remus-spill-test-XXXXXX");
	assert_non_null(mkdtemp(v->dir));
	v->data = malloc(DATA_LEN);
	assert_non_null(v->data);
	for (i = 0; i < DATA_LEN; i++)
		v->data[i] = (uint8_t)(i * 2654435761u >> 13);
	*state = v;
	return 0;
}

static int teardown(void **state)
{
	struct env *v = *state;

	rmdir(v->dir);
	free(v->data);
	free(v);
	return 0;
}

/* Entries of @dir besides . and .. */
static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Appends @len bytes of @p in pieces of @step. */
static void append_in(struct remus_spill *s, const uint8_t *p, size_t len, size_t step)
{
	size_t off, k;

	for (off = 0; off < len; off += k) {
		k = len - off < step ? len - off : step;
		assert_int_equal(remus_spill_append(s, p + off, k), 0);
	}
}

/* Reads everything back in pieces of at most @step; returns its XXH3 and
 * checks it against @want byte for byte. */
static uint64_t read_back(struct remus_spill *s, const uint8_t *want, size_t len, size_t step)
{
	uint8_t *buf = malloc(step);
	XXH3_state_t *h = XXH3_createState();
	size_t off = 0;
	ssize_t r;
	uint64_t d;

	assert_non_null(buf);
	assert_non_null(h);
	XXH3_64bits_reset(h);
	while ((r = remus_spill_read(s, buf, step)) > 0) {
		assert_true(off + (size_t)r <= len);
		assert_memory_equal(buf, want + off, (size_t)r);
		XXH3_64bits_update(h, buf, (size_t)r);
		off += (size_t)r;
		assert_int_equal(remus_spill_unread(s), len - off);
	}
	assert_int_equal(r, 0);
	assert_int_equal(off, len);
	d = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	free(buf);
	return d;
}

static void test_memory_only(void **state)
{
	struct env *v = *state;
	struct remus_spill s;
	uint8_t b;

	remus_spill_init(&s, NULL, v->dir);
	assert_false(remus_spill_last_byte(&s, &b));
	append_in(&s, v->data, DATA_LEN, 100000);
	assert_int_equal(remus_spill_total(&s), DATA_LEN);
	assert_int_equal(remus_spill_mem_unread(&s), DATA_LEN);
	assert_int_equal(remus_spill_spilled(&s), 0);
	assert_int_equal(s.fd, -1);
	assert_true(remus_spill_last_byte(&s, &b));
	assert_int_equal(b, v->data[DATA_LEN - 1]);
	assert_true(read_back(&s, v->data, DATA_LEN, 7777) == XXH3_64bits(v->data, DATA_LEN));
	/* Read out, the store takes appends again. */
	append_in(&s, v->data, 1000, 1000);
	assert_int_equal(remus_spill_total(&s), DATA_LEN + 1000);
	read_back(&s, v->data, 1000, 1000);
	remus_spill_release(&s);
	remus_spill_release(&s); /* idempotent */
}

static void test_spills_beyond_budget(void **state)
{
	struct env *v = *state;
	struct remus_spill_budget b = { .limit = 256 * KiB };
	struct remus_spill s;
	struct stat st;
	size_t mem;

	remus_spill_init(&s, &b, v->dir);
	append_in(&s, v->data, DATA_LEN, 100 * KiB + 3);
	/* memory up to the budget, never beyond, the rest in the file */
	assert_true(b.used <= b.limit);
	assert_true(b.peak <= b.limit);
	assert_true(b.used > 0);
	mem = (size_t)remus_spill_mem_unread(&s);
	assert_true(mem <= b.used);
	assert_int_equal(remus_spill_spilled(&s), DATA_LEN - mem);
	assert_int_equal(remus_spill_file_unread(&s), DATA_LEN - mem);
	assert_true(s.fd >= 0);
	/* the file has no name: nothing to clean up after a crash */
	assert_int_equal(dir_entries(v->dir), 0);
	/* back in chunks that straddle memory and file: same bytes, same hash */
	assert_true(read_back(&s, v->data, DATA_LEN, 77777) == XXH3_64bits(v->data, DATA_LEN));
	/* read segments went back to the budget, the read file to the disk
	 * (but for the last, partial step) */
	assert_int_equal(b.used, 0);
	assert_int_equal(fstat(s.fd, &st), 0);
	if (!s.no_punch)
		assert_true((uint64_t)st.st_blocks * 512 <= MiB);
	assert_true(b.peak <= b.limit);
	remus_spill_release(&s);
	assert_int_equal(s.fd, -1);
}

/* Two stores, one budget: the second spills from its first byte while
 * the first holds the memory, and stays in its file after it is freed. */
static void test_shared_budget(void **state)
{
	struct env *v = *state;
	struct remus_spill_budget b = { .limit = 512 * KiB };
	struct remus_spill a, c;

	remus_spill_init(&a, &b, v->dir);
	remus_spill_init(&c, &b, v->dir);
	append_in(&a, v->data, MiB, 64 * KiB);
	assert_true(b.used <= b.limit);
	append_in(&c, v->data, 200 * KiB, 50 * KiB);
	assert_true(b.used <= b.limit);
	assert_int_equal(remus_spill_mem_unread(&c), 0);
	assert_int_equal(remus_spill_spilled(&c), 200 * KiB);
	remus_spill_release(&a); /* discard: the memory comes back at once */
	assert_int_equal(b.used, 0);
	append_in(&c, v->data + 200 * KiB, 100 * KiB, 100 * KiB);
	assert_int_equal(remus_spill_mem_unread(&c), 0);
	assert_int_equal(b.used, 0);
	read_back(&c, v->data, 300 * KiB, 4096);
	remus_spill_release(&c);
	assert_true(b.peak <= b.limit);
}

static void test_discard_and_move(void **state)
{
	struct env *v = *state;
	struct remus_spill_budget b = { .limit = 128 * KiB };
	struct remus_spill s, t;
	uint8_t buf[1000];
	size_t used;

	remus_spill_init(&s, &b, v->dir);
	remus_spill_init(&t, &b, v->dir);
	append_in(&s, v->data, MiB, MiB);
	assert_int_equal(remus_spill_read(&s, buf, sizeof(buf)), sizeof(buf));
	/* a move hands over memory and file; the budget does not change */
	used = b.used;
	remus_spill_move(&t, &s);
	assert_int_equal(b.used, used);
	assert_int_equal(remus_spill_total(&s), 0);
	assert_int_equal(remus_spill_unread(&s), 0);
	assert_int_equal(s.fd, -1);
	assert_int_equal(remus_spill_total(&t), MiB);
	read_back(&t, v->data + sizeof(buf), MiB - sizeof(buf), 65536);
	/* a discard with bytes in memory and in the file */
	append_in(&s, v->data, MiB, 4096);
	assert_true(remus_spill_spilled(&s) > 0);
	remus_spill_release(&s);
	assert_int_equal(remus_spill_total(&s), 0);
	assert_int_equal(remus_spill_unread(&s), 0);
	assert_int_equal(b.used, 0);
	remus_spill_release(&t);
}

/* A budget too small for one segment: everything goes to the file. */
static void test_tiny_budget(void **state)
{
	struct env *v = *state;
	struct remus_spill_budget b = { .limit = 4096 };
	struct remus_spill s;

	remus_spill_init(&s, &b, v->dir);
	append_in(&s, v->data, 100 * KiB, 10 * KiB);
	assert_int_equal(b.peak, 0);
	assert_int_equal(remus_spill_spilled(&s), 100 * KiB);
	read_back(&s, v->data, 100 * KiB, 3000);
	remus_spill_release(&s);
}

static void test_io_errors(void **state)
{
	struct env *v = *state;
	struct remus_spill_budget b = { .limit = 64 * KiB + 4096 };
	struct remus_spill s;
	struct rlimit old, lim;
	char missing[128];
	uint8_t buf[4096];
	ssize_t r;

	/* a directory that does not exist: the first spilled byte fails */
	snprintf(missing, sizeof(missing), "%s/missing", v->dir);
	remus_spill_init(&s, &b, missing);
	append_in(&s, v->data, 64 * KiB, 64 * KiB);
	assert_int_equal(remus_spill_append(&s, v->data, 100 * KiB), -ENOENT);
	/* sticky */
	assert_int_equal(remus_spill_append(&s, v->data, 1), -ENOENT);
	assert_int_equal(remus_spill_read(&s, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(remus_spill_error(&s), -ENOENT);
	/* release clears it and frees everything */
	remus_spill_release(&s);
	assert_int_equal(b.used, 0);
	assert_int_equal(remus_spill_error(&s), 0);
	assert_int_equal(remus_spill_append(&s, v->data, 1000), 0);
	remus_spill_release(&s);

	/* a full disk (a file size limit here): EFBIG, sticky */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 256 * KiB;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	remus_spill_init(&s, &b, v->dir);
	append_in(&s, v->data, 200 * KiB, 100 * KiB);
	assert_int_equal(remus_spill_append(&s, v->data, 200 * KiB), -EFBIG);
	assert_int_equal(remus_spill_append(&s, v->data, 1), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	remus_spill_release(&s);
	signal(SIGXFSZ, SIG_DFL);

	/* the file lost bytes behind our back: the read says so */
	remus_spill_init(&s, &b, v->dir);
	append_in(&s, v->data, 300 * KiB, 100 * KiB);
	assert_true(s.fd >= 0);
	assert_int_equal(ftruncate(s.fd, 0), 0);
	while ((r = remus_spill_read(&s, buf, sizeof(buf))) > 0)
		;
	assert_int_equal(r, -ENODATA);
	assert_int_equal(remus_spill_read(&s, buf, sizeof(buf)), -ENODATA);
	remus_spill_release(&s);
	assert_int_equal(b.used, 0);
}

/* A store bigger than REMUS_SPILL_FREE_INLINE is freed by a thread: the
 * release returns at once, the budget is free at once, the file is
 * closed soon after. */
static void test_big_release_in_background(void **state)
{
	struct env *v = *state;
	struct remus_spill_budget b = { .limit = 8 * MiB };
	struct remus_spill s;
	uint64_t waited = 0;
	size_t i;
	int fd;

	remus_spill_init(&s, &b, v->dir);
	for (i = 0; i < 16; i++) /* 8 MiB in memory, 40 in the file */
		append_in(&s, v->data, 3 * MiB, MiB);
	assert_true(remus_spill_spilled(&s) > REMUS_SPILL_FREE_INLINE);
	fd = s.fd;
	remus_spill_release(&s);
	assert_int_equal(b.used, 0);
	assert_int_equal(s.fd, -1);
	/* the thread closes it (nothing here opens a file meanwhile) */
	while (fcntl(fd, F_GETFD) != -1 && waited < 5000) {
		usleep(1000);
		waited++;
	}
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	/* the store is as good as new */
	append_in(&s, v->data, 1000, 1000);
	read_back(&s, v->data, 1000, 1000);
	remus_spill_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memory_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spills_beyond_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiny_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_release_in_background, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
