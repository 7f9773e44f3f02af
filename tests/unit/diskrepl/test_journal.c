// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The standby's epoch journal against a model: two images and their
 * expected bytes, updated per op into a "pending" copy that becomes the
 * model when the epoch commits and is dropped when it is discarded.
 *
 * Covered: order of apply (a later op on the same range wins), discard,
 * empty epochs, wrong epochs and bounds (and that a failed append poisons
 * the epoch), the split commit, bounded apply steps, records larger than
 * the read and write buffers, stats, open errors, and recovery: a
 * committed epoch is replayed (also after a partial apply), an applied one
 * is not, an uncommitted one is dropped, stale records of an earlier
 * instance of the same epoch number are never joined to new ones, and a
 * journal cut at every record boundary and inside records, or with any
 * head byte flipped, recovers to exactly "epoch applied" or "not applied".
 *
 * Files live in /dev/shm when it exists: thousands of recoveries, each of
 * which syncs, stay fast there (the crash test uses a real disk).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/log.h"
#include "diskrepl/journal.h"
#include "testutil.h"

#define NIMG 2
static const uint64_t img_size[NIMG] = { 1 << 20, (256 << 10) + 7 };

struct fx {
	char dir[256];
	char jpath[512];
	char ipath[NIMG][512];
	struct remus_image *im[NIMG];
	uint8_t *model[NIMG];   /* bytes after the last committed epoch */
	uint8_t *pending[NIMG]; /* model plus the open epoch's ops */
	uint8_t *scratch;
	uint64_t seed;
	bool punch;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int i;

	if (!f || tu_mkdtemp(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", f->dir) < 0)
		return -1;
	f->seed = tu_seed("test_journal");
	f->punch = tu_can_punch(f->dir);
	snprintf(f->jpath, sizeof(f->jpath), "%s/epochs.journal", f->dir);
	f->scratch = malloc(8 << 20);
	for (i = 0; i < NIMG; i++) {
		snprintf(f->ipath[i], sizeof(f->ipath[i]), "%s/disk%d.raw", f->dir, i);
		f->model[i] = malloc(img_size[i]);
		f->pending[i] = malloc(img_size[i]);
		if (remus_image_open(f->ipath[i], true, img_size[i], &f->im[i]) < 0)
			return -1;
		tu_fill(&f->seed, f->model[i], img_size[i]);
		memcpy(f->pending[i], f->model[i], img_size[i]);
		if (remus_image_write(f->im[i], 0, (uint32_t)img_size[i], f->model[i]) < 0)
			return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int i;

	for (i = 0; i < NIMG; i++) {
		remus_image_free(f->im[i]);
		free(f->model[i]);
		free(f->pending[i]);
	}
	free(f->scratch);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

static struct remus_journal *jopen(struct fx *f, uint64_t *recovered)
{
	struct remus_journal *j = NULL;
	uint64_t r;

	assert_int_equal(remus_journal_open(f->jpath, f->im, NIMG, &j, recovered ? recovered : &r),
			 0);
	return j;
}

/* Appends one op with fresh random data, and applies it to the pending
 * model. */
static void op(struct fx *f, struct remus_journal *j, uint64_t epoch, uint32_t img,
	       enum remus_repl_disk_op o, uint64_t off, uint32_t len)
{
	uint8_t *p = f->pending[img] + off;

	if (o == REMUS_REPL_DISK_WRITE) {
		tu_fill(&f->seed, f->scratch, len);
		memcpy(p, f->scratch, len);
	} else if (o == REMUS_REPL_DISK_ZERO || f->punch) {
		memset(p, 0, len);
	}
	assert_int_equal(remus_journal_append(j, epoch, img, o, off, len,
					      o == REMUS_REPL_DISK_WRITE ? f->scratch : NULL), 0);
}

static void committed(struct fx *f)
{
	for (int i = 0; i < NIMG; i++)
		memcpy(f->model[i], f->pending[i], img_size[i]);
}

static void discarded(struct fx *f)
{
	for (int i = 0; i < NIMG; i++)
		memcpy(f->pending[i], f->model[i], img_size[i]);
}

/* Asserts that every image holds @which (model or pending). */
static void check_images(struct fx *f, uint8_t *const which[NIMG])
{
	for (int i = 0; i < NIMG; i++) {
		assert_int_equal(remus_image_read(f->im[i], 0, (uint32_t)img_size[i], f->scratch), 0);
		assert_memory_equal(f->scratch, which[i], img_size[i]);
	}
}

static bool images_equal(struct fx *f, uint8_t *const which[NIMG])
{
	for (int i = 0; i < NIMG; i++) {
		if (remus_image_read(f->im[i], 0, (uint32_t)img_size[i], f->scratch) < 0 ||
		    memcmp(f->scratch, which[i], img_size[i]) != 0)
			return false;
	}
	return true;
}

static void restore_images(struct fx *f, uint8_t *const which[NIMG])
{
	for (int i = 0; i < NIMG; i++)
		assert_int_equal(remus_image_write(f->im[i], 0, (uint32_t)img_size[i], which[i]), 0);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void test_commit_applies_in_order(void **state)
{
	struct fx *f = *state;
	struct remus_journal_stats st;
	struct remus_journal *j = jopen(f, NULL);

	op(f, j, 1, 0, REMUS_REPL_DISK_WRITE, 0, 8192);
	op(f, j, 1, 0, REMUS_REPL_DISK_WRITE, 4096, 8192); /* overlaps: wins */
	op(f, j, 1, 0, REMUS_REPL_DISK_ZERO, 6000, 1000);  /* zeroes part of it */
	op(f, j, 1, 0, REMUS_REPL_DISK_WRITE, 6500, 100);  /* and is overwritten */
	op(f, j, 1, 1, REMUS_REPL_DISK_WRITE, img_size[1] - 5000, 5000);
	op(f, j, 1, 1, REMUS_REPL_DISK_TRIM, 65536, 65536);
	op(f, j, 1, 1, REMUS_REPL_DISK_WRITE, 65536 + 4096, 10);
	op(f, j, 1, 0, REMUS_REPL_DISK_WRITE, 100, 0);
	remus_journal_get_stats(j, &st);
	assert_int_equal(st.open_ops, 8);
	assert_int_equal(st.open_bytes, 8192 + 8192 + 1000 + 100 + 5000 + 65536 + 10);
	assert_int_equal(st.file_bytes, 8 * 64 + 8192 + 8192 + 100 + 5000 + 10);
	assert_int_equal(st.epochs_committed, 0);
	/* Nothing reaches the images before the commit. */
	check_images(f, f->model);
	assert_int_equal(remus_journal_commit(j, 1), 0);
	committed(f);
	check_images(f, f->model);
	remus_journal_get_stats(j, &st);
	assert_int_equal(st.epochs_committed, 1);
	assert_int_equal(st.ops_applied, 8);
	assert_int_equal(st.bytes_applied, 8192 + 8192 + 1000 + 100 + 5000 + 65536 + 10);
	assert_int_equal(st.open_ops, 0);
	assert_int_equal(st.open_bytes, 0);
	assert_int_equal(st.file_bytes, 0);
	assert_true(st.last_commit_ms > 0.0);

	/* The next epoch starts from the committed state. */
	op(f, j, 2, 0, REMUS_REPL_DISK_WRITE, 8000, 300);
	op(f, j, 2, 1, REMUS_REPL_DISK_ZERO, 0, (uint32_t)img_size[1]);
	op(f, j, 2, 1, REMUS_REPL_DISK_WRITE, 17, 3);
	assert_int_equal(remus_journal_commit(j, 2), 0);
	committed(f);
	check_images(f, f->model);
	remus_journal_get_stats(j, &st);
	assert_int_equal(st.epochs_committed, 2);
	assert_int_equal(st.ops_applied, 11);
	assert_string_equal(remus_journal_path(j), f->jpath);
	remus_journal_free(j);
	remus_journal_free(NULL);
}

static void test_discard(void **state)
{
	struct fx *f = *state;
	struct remus_journal_stats st;
	struct remus_journal *j = jopen(f, NULL);

	assert_int_equal(remus_journal_discard(j), 0); /* nothing open: fine */
	for (int i = 0; i < 80; i++)
		op(f, j, 5, 0, REMUS_REPL_DISK_WRITE, (uint64_t)i * 20000 % (img_size[0] - 20000),
		   20000);
	assert_true(file_size(f->jpath) > 64); /* more than the write buffer */
	assert_int_equal(remus_journal_discard(j), 0);
	discarded(f);
	check_images(f, f->model);
	/* Durably empty: nothing a later recovery could replay. */
	assert_int_equal(file_size(f->jpath), 64);
	remus_journal_get_stats(j, &st);
	assert_int_equal(st.open_ops, 0);
	assert_int_equal(st.epochs_committed, 0);
	/* The same epoch number again, with other data, commits cleanly. */
	op(f, j, 5, 0, REMUS_REPL_DISK_WRITE, 3, 777);
	assert_int_equal(remus_journal_commit(j, 5), 0);
	committed(f);
	check_images(f, f->model);
	remus_journal_free(j);
}

static void test_empty_epoch(void **state)
{
	struct fx *f = *state;
	struct remus_journal_stats st;
	struct remus_journal *j = jopen(f, NULL);
	struct stat before, after;

	assert_int_equal(stat(f->jpath, &before), 0);
	assert_int_equal(remus_journal_commit(j, 7), 0);
	assert_int_equal(remus_journal_commit_durable(j, 8), 0);
	assert_int_equal(remus_journal_apply(j), 0);
	assert_int_equal(remus_journal_apply(j), -EINVAL); /* nothing durable */
	assert_int_equal(stat(f->jpath, &after), 0);
	/* Nothing written: no commit record, no sync of new data. */
	assert_int_equal(after.st_size, 64);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	remus_journal_get_stats(j, &st);
	assert_int_equal(st.epochs_committed, 2);
	assert_int_equal(st.ops_applied, 0);
	check_images(f, f->model);
	/* An empty epoch does not pin the epoch number of the next one. */
	op(f, j, 3, 1, REMUS_REPL_DISK_WRITE, 0, 10);
	assert_int_equal(remus_journal_commit(j, 3), 0);
	committed(f);
	check_images(f, f->model);
	remus_journal_free(j);
}

static void test_wrong_epoch(void **state)
{
	struct fx *f = *state;
	struct remus_journal *j = jopen(f, NULL);
	uint8_t b[16] = { 0 };

	op(f, j, 1, 0, REMUS_REPL_DISK_WRITE, 0, 100);
	/* Committing another epoch changes nothing... */
	assert_int_equal(remus_journal_commit_durable(j, 2), -EINVAL);
	assert_int_equal(remus_journal_commit(j, 0), -EINVAL);
	check_images(f, f->model);
	/* ...and the right one still commits. */
	assert_int_equal(remus_journal_commit(j, 1), 0);
	committed(f);
	check_images(f, f->model);

	op(f, j, 4, 0, REMUS_REPL_DISK_WRITE, 0, 100);
	assert_int_equal(remus_journal_append(j, 5, 0, REMUS_REPL_DISK_WRITE, 0, 16, b), -EINVAL);
	/* The epoch lost an op: it can no longer commit, whatever follows. */
	assert_int_equal(remus_journal_append(j, 4, 0, REMUS_REPL_DISK_WRITE, 0, 16, b), -EINVAL);
	assert_int_equal(remus_journal_commit(j, 4), -EINVAL);
	check_images(f, f->model);
	assert_int_equal(remus_journal_discard(j), 0);
	discarded(f);
	op(f, j, 5, 0, REMUS_REPL_DISK_WRITE, 50, 100);
	assert_int_equal(remus_journal_commit(j, 5), 0);
	committed(f);
	check_images(f, f->model);
	remus_journal_free(j);
}

static void test_bounds(void **state)
{
	struct fx *f = *state;
	struct remus_journal *j = jopen(f, NULL);
	uint8_t b[4096] = { 0 };
	struct {
		uint32_t img;
		int op;
		uint64_t off;
		uint32_t len;
		const void *data;
	} bad[] = {
		{ 2, REMUS_REPL_DISK_WRITE, 0, 1, b },                         /* no image 2 */
		{ 0, REMUS_REPL_DISK_WRITE, img_size[0], 1, b },               /* past the end */
		{ 1, REMUS_REPL_DISK_ZERO, img_size[1] - 1, 2, NULL },         /* crosses it */
		{ 1, REMUS_REPL_DISK_TRIM, UINT64_MAX, 2, NULL },              /* wraps */
		{ 0, 9, 0, 1, NULL },                                          /* no such op */
		{ 0, REMUS_REPL_DISK_WRITE, 0, 1, NULL },                      /* no data */
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(remus_journal_append(j, 1, bad[i].img,
						      (enum remus_repl_disk_op)bad[i].op,
						      bad[i].off, bad[i].len, bad[i].data),
				 -EINVAL);
		assert_int_equal(remus_journal_commit(j, 1), -EINVAL);
		assert_int_equal(remus_journal_discard(j), 0);
	}
	/* The last byte of each image is fine. */
	op(f, j, 1, 0, REMUS_REPL_DISK_WRITE, img_size[0] - 1, 1);
	op(f, j, 1, 1, REMUS_REPL_DISK_ZERO, img_size[1] - 1, 1);
	assert_int_equal(remus_journal_commit(j, 1), 0);
	committed(f);
	check_images(f, f->model);

	/* Size bound: room for the header, one 4 KiB record, a commit and
	 * the applied marker, and not one byte more. */
	remus_journal_set_max_size(j, 64 + 64 + 4096 + 2 * 64);
	op(f, j, 2, 0, REMUS_REPL_DISK_WRITE, 0, 4096);
	assert_int_equal(remus_journal_append(j, 2, 0, REMUS_REPL_DISK_ZERO, 0, 1, NULL), -EFBIG);
	assert_int_equal(remus_journal_commit(j, 2), -EFBIG);
	assert_int_equal(remus_journal_discard(j), 0);
	discarded(f);
	op(f, j, 2, 0, REMUS_REPL_DISK_WRITE, 0, 4096);
	assert_int_equal(remus_journal_commit(j, 2), 0);
	committed(f);
	remus_journal_set_max_size(j, REMUS_JOURNAL_MAX_DEFAULT);
	check_images(f, f->model);
	remus_journal_free(j);
}

static void test_split_commit_busy(void **state)
{
	struct fx *f = *state;
	struct remus_journal *j = jopen(f, NULL);
	uint8_t b[8] = { 0 };

	op(f, j, 3, 0, REMUS_REPL_DISK_WRITE, 1000, 5000);
	assert_int_equal(remus_journal_commit_durable(j, 3), 0);
	assert_int_equal(remus_journal_commit_durable(j, 3), 0); /* already */
	assert_int_equal(remus_journal_commit_durable(j, 4), -EBUSY);
	/* Durable, not applied: the images do not have it yet, and it can
	 * be neither discarded nor extended. */
	check_images(f, f->model);
	assert_int_equal(remus_journal_discard(j), -EBUSY);
	assert_int_equal(remus_journal_append(j, 4, 0, REMUS_REPL_DISK_WRITE, 0, 8, b), -EBUSY);
	assert_int_equal(remus_journal_apply(j), 0);
	committed(f);
	check_images(f, f->model);
	/* That append was lost: epoch 4 cannot commit until discarded. */
	assert_int_equal(remus_journal_append(j, 4, 0, REMUS_REPL_DISK_WRITE, 0, 8, b), -EBUSY);
	assert_int_equal(remus_journal_commit(j, 4), -EBUSY);
	assert_int_equal(remus_journal_discard(j), 0);
	op(f, j, 4, 0, REMUS_REPL_DISK_WRITE, 0, 8);
	assert_int_equal(remus_journal_commit(j, 4), 0);
	committed(f);
	check_images(f, f->model);
	remus_journal_free(j);
}

static void test_apply_steps(void **state)
{
	struct fx *f = *state;
	struct remus_journal *j = jopen(f, NULL);
	int rc, steps = 0;

	assert_int_equal(remus_journal_apply_step(j, 1), -EINVAL);
	for (int i = 0; i < 40; i++)
		op(f, j, 9, i % 2, REMUS_REPL_DISK_WRITE,
		   tu_rand(&f->seed) % (img_size[i % 2] - 65536), 65536);
	assert_int_equal(remus_journal_commit_durable(j, 9), 0);
	/* 256 KiB per step: 4 records each, 10 steps. */
	while ((rc = remus_journal_apply_step(j, 256 << 10)) == 1)
		steps++;
	assert_int_equal(rc, 0);
	assert_int_equal(steps, 9);
	committed(f);
	check_images(f, f->model);
	remus_journal_free(j);
}

/* Records larger than the 1 MiB write buffer and the 4 MiB read window,
 * applied and recovered. */
static void test_large_records(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 12 << 20;
	struct remus_image *big;
	struct remus_journal *j = NULL;
	uint8_t *model = malloc(size), *got = malloc(size), *data = malloc(6 << 20);
	char path[600];
	uint64_t rec;

	snprintf(path, sizeof(path), "%s/big.raw", f->dir);
	assert_int_equal(remus_image_open(path, true, size, &big), 0);
	memset(model, 0, size);
	assert_int_equal(remus_journal_open(f->jpath, &big, 1, &j, &rec), 0);
	for (int round = 0; round < 2; round++) {
		uint32_t lens[] = { 5 << 20, 2 << 20, 100, 6 << 20, 4 << 20 };
		uint64_t offs[] = { 7, 3 << 20, 5, size - (6 << 20), 1 };

		for (int i = 0; i < 5; i++) {
			tu_fill(&f->seed, data, lens[i]);
			memcpy(model + offs[i], data, lens[i]);
			assert_int_equal(remus_journal_append(j, 20 + round, 0, REMUS_REPL_DISK_WRITE,
							      offs[i], lens[i], data), 0);
		}
		if (round == 0) {
			assert_int_equal(remus_journal_commit(j, 20), 0);
		} else {
			/* Crash after durability: recovery replays it. */
			assert_int_equal(remus_journal_commit_durable(j, 21), 0);
			remus_journal_free(j);
			assert_int_equal(remus_journal_open(f->jpath, &big, 1, &j, &rec), 0);
			assert_int_equal(rec, 21);
		}
		assert_int_equal(remus_image_read(big, 0, size, got), 0);
		assert_memory_equal(got, model, size);
	}
	remus_journal_free(j);
	remus_image_free(big);
	free(model);
	free(got);
	free(data);
}

static void test_recover_committed(void **state)
{
	struct fx *f = *state;
	struct remus_journal_stats st;
	struct remus_journal *j = jopen(f, NULL);
	uint64_t rec = 0;

	/* (a) durable, then the process dies before applying. */
	for (int i = 0; i < 30; i++)
		op(f, j, 42, i % 2, i % 5 == 4 ? REMUS_REPL_DISK_ZERO : REMUS_REPL_DISK_WRITE,
		   tu_rand(&f->seed) % (img_size[i % 2] - 30000), 30000);
	assert_int_equal(remus_journal_commit_durable(j, 42), 0);
	remus_journal_free(j);
	check_images(f, f->model);
	j = jopen(f, &rec);
	assert_int_equal(rec, 42);
	committed(f);
	check_images(f, f->model);
	remus_journal_get_stats(j, &st);
	assert_int_equal(st.epochs_recovered, 1);
	assert_int_equal(st.ops_applied, 30);
	remus_journal_free(j);
	assert_int_equal(file_size(f->jpath), 64);
	/* Recovery left nothing to replay a second time. */
	j = jopen(f, &rec);
	assert_int_equal(rec, UINT64_MAX);
	remus_journal_free(j);
	check_images(f, f->model);

	/* Killed halfway through applying: replayed from the start. */
	j = jopen(f, NULL);
	for (int i = 0; i < 30; i++)
		op(f, j, 43, 0, REMUS_REPL_DISK_WRITE, tu_rand(&f->seed) % (img_size[0] - 30000),
		   30000);
	assert_int_equal(remus_journal_commit_durable(j, 43), 0);
	assert_int_equal(remus_journal_apply_step(j, 200000), 1);
	remus_journal_free(j);
	assert_false(images_equal(f, f->model));
	assert_false(images_equal(f, f->pending));
	j = jopen(f, &rec);
	assert_int_equal(rec, 43);
	committed(f);
	check_images(f, f->model);
	remus_journal_free(j);
}

static void test_recover_applied_not_replayed(void **state)
{
	struct fx *f = *state;
	struct remus_journal *j = jopen(f, NULL);
	uint64_t rec = 0, size;
	uint8_t junk[100];

	op(f, j, 8, 0, REMUS_REPL_DISK_WRITE, 0, 100);
	op(f, j, 8, 1, REMUS_REPL_DISK_WRITE, 0, 100);
	assert_int_equal(remus_journal_commit(j, 8), 0);
	committed(f);
	remus_journal_free(j);
	/* Someone writes the image after the epoch was applied. */
	memset(junk, 0xa5, sizeof(junk));
	assert_int_equal(remus_image_write(f->im[0], 0, sizeof(junk), junk), 0);
	memcpy(f->model[0], junk, sizeof(junk));
	size = file_size(f->jpath);
	assert_int_equal(size, 64 + 2 * (64 + 100) + 2 * 64); /* records, commit, applied */
	j = jopen(f, &rec);
	assert_int_equal(rec, UINT64_MAX); /* the applied marker was honoured */
	remus_journal_free(j);
	discarded(f);
	check_images(f, f->model);

	/* Without the marker (lost in a crash) the epoch is replayed: that
	 * is why a failover must discard before the images get a writer. */
	j = jopen(f, NULL);
	op(f, j, 9, 0, REMUS_REPL_DISK_WRITE, 0, 100);
	assert_int_equal(remus_journal_commit(j, 9), 0);
	committed(f);
	remus_journal_free(j);
	assert_int_equal(truncate(f->jpath, (off_t)(64 + 164 + 64)), 0);
	assert_int_equal(remus_image_write(f->im[0], 0, sizeof(junk), junk), 0);
	j = jopen(f, &rec);
	assert_int_equal(rec, 9);
	check_images(f, f->model);
	remus_journal_free(j);
}

static void test_recover_uncommitted(void **state)
{
	struct fx *f = *state;
	struct remus_journal *j = jopen(f, NULL);
	uint64_t rec = 0;

	/* (b) 3 MiB of records: two thirds of them reached the file. */
	for (int i = 0; i < 100; i++)
		op(f, j, 6, 0, REMUS_REPL_DISK_WRITE, tu_rand(&f->seed) % (img_size[0] - 30000),
		   30000);
	assert_true(file_size(f->jpath) > (3 << 20) / 2);
	remus_journal_free(j);
	j = jopen(f, &rec);
	assert_int_equal(rec, UINT64_MAX);
	discarded(f);
	check_images(f, f->model);
	assert_int_equal(file_size(f->jpath), 64);
	remus_journal_free(j);
}

/* An applied epoch's bytes stay in the file (overwritten in place by the
 * next epoch).  Suppose its applied marker was lost in a power cut, and a
 * crash comes while the same epoch number is appended again: new records
 * of exactly the old records' sizes, followed by the rest of the old ones
 * at an exact record boundary, and the old commit after them.  That must
 * never be taken for one committed epoch (the seq and the epoch hash each
 * prevent it). */
static void test_stale_records_not_joined(void **state)
{
	struct fx *f = *state;
	struct remus_journal *j = jopen(f, NULL);
	const uint32_t mib = 1 << 20; /* as large as the write buffer: */
	uint64_t rec = 0;             /* such a record is in the file at once */

	op(f, j, 10, 0, REMUS_REPL_DISK_WRITE, 0, mib);
	op(f, j, 10, 0, REMUS_REPL_DISK_WRITE, 0, mib);
	op(f, j, 10, 0, REMUS_REPL_DISK_WRITE, 0, 100);
	op(f, j, 10, 0, REMUS_REPL_DISK_WRITE, 50, 100);
	assert_int_equal(remus_journal_commit(j, 10), 0);
	committed(f);
	assert_int_equal(truncate(f->jpath, (off_t)(file_size(f->jpath) - 64)), 0);
	op(f, j, 10, 0, REMUS_REPL_DISK_WRITE, 0, mib);
	op(f, j, 10, 0, REMUS_REPL_DISK_WRITE, 0, mib);
	assert_int_equal(file_size(f->jpath), 64 + 2 * (64 + mib) + 2 * (64 + 100) + 64);
	remus_journal_free(j);
	j = jopen(f, &rec);
	assert_int_equal(rec, UINT64_MAX);
	discarded(f);
	check_images(f, f->model);
	remus_journal_free(j);
}

static void test_open_errors(void **state)
{
	struct fx *f = *state;
	struct remus_journal *j = jopen(f, NULL), *j2 = NULL;
	uint8_t hdr[64], *bytes;
	uint64_t rec = 0;
	size_t len = 0;

	/* One journal, one owner. */
	assert_int_equal(remus_journal_open(f->jpath, f->im, NIMG, &j2, &rec), -EBUSY);
	assert_null(j2);
	remus_journal_free(j);

	/* Not a journal: refused and left alone. */
	assert_int_equal(tu_spit(f->jpath, "some other file\n", 16), 0);
	assert_int_equal(remus_journal_open(f->jpath, f->im, NIMG, &j, &rec), -EINVAL);
	bytes = tu_slurp(f->jpath, &len);
	assert_int_equal(len, 16);
	assert_memory_equal(bytes, "some other file\n", 16);
	free(bytes);

	/* Empty, a prefix of the header, or a zeroed header: creation was
	 * cut short, so the file is (re)initialised. */
	assert_int_equal(tu_spit(f->jpath, "", 0), 0);
	j = jopen(f, NULL);
	remus_journal_free(j);
	bytes = tu_slurp(f->jpath, &len);
	assert_int_equal(len, 64);
	memcpy(hdr, bytes, 64);
	free(bytes);
	assert_int_equal(tu_spit(f->jpath, hdr, 20), 0);
	j = jopen(f, NULL);
	remus_journal_free(j);
	memset(f->scratch, 0, 4096);
	assert_int_equal(tu_spit(f->jpath, f->scratch, 4096), 0);
	j = jopen(f, NULL);
	remus_journal_free(j);
	assert_int_equal(file_size(f->jpath), 64);

	/* Another version, or a damaged header. */
	bytes = malloc(64);
	memcpy(bytes, hdr, 64);
	bytes[11] = 2;
	assert_int_equal(tu_spit(f->jpath, bytes, 64), 0);
	assert_int_equal(remus_journal_open(f->jpath, f->im, NIMG, &j, &rec), -EPROTONOSUPPORT);
	memcpy(bytes, hdr, 64);
	bytes[30] ^= 1;
	assert_int_equal(tu_spit(f->jpath, bytes, 64), 0);
	assert_int_equal(remus_journal_open(f->jpath, f->im, NIMG, &j, &rec), -EINVAL);
	free(bytes);

	/* A committed epoch for an image that is not given is an error, not
	 * silently dropped: with the images it was written for, it replays. */
	assert_int_equal(tu_spit(f->jpath, hdr, 64), 0);
	j = jopen(f, NULL);
	op(f, j, 12, 1, REMUS_REPL_DISK_WRITE, 10, 10);
	assert_int_equal(remus_journal_commit_durable(j, 12), 0);
	remus_journal_free(j);
	assert_int_equal(remus_journal_open(f->jpath, f->im, 1, &j, &rec), -EINVAL);
	check_images(f, f->model);
	j = jopen(f, &rec);
	assert_int_equal(rec, 12);
	committed(f);
	check_images(f, f->model);
	remus_journal_free(j);
}

/* (c) A committed, unapplied epoch, cut at every record boundary, at points
 * inside heads and data, with junk after it, and with single bytes
 * flipped: recovery yields the epoch applied or not applied, exactly, and
 * applied only when the whole epoch and its commit are intact. */
static void test_torn_journal(void **state)
{
	struct fx *f = *state;
	struct remus_journal *j = jopen(f, NULL);
	uint64_t bounds[64], nb = 0, pos = 64, rec, cut, c_end;
	uint8_t *jbytes, *mutated;
	size_t jlen = 0, k, tries = 0;
	FILE *devnull;
	int rc;

	for (int i = 0; i < 24; i++) {
		enum remus_repl_disk_op o = i % 6 == 5 ? REMUS_REPL_DISK_TRIM :
				       i % 6 == 4 ? REMUS_REPL_DISK_ZERO : REMUS_REPL_DISK_WRITE;
		uint32_t len = 1 + (uint32_t)(tu_rand(&f->seed) % 20000);
		int img = i % 2;

		bounds[nb++] = pos;
		op(f, j, 77, img, o, tu_rand(&f->seed) % (img_size[img] - len), len);
		pos += 64 + (o == REMUS_REPL_DISK_WRITE ? len : 0);
	}
	bounds[nb++] = pos; /* the commit */
	c_end = pos + 64;
	assert_int_equal(remus_journal_commit_durable(j, 77), 0);
	remus_journal_free(j);
	jbytes = tu_slurp(f->jpath, &jlen);
	assert_int_equal(jlen, c_end);
	mutated = malloc(jlen + 100);

	/* Cuts. */
	for (k = 0; k < nb; k++) {
		uint64_t b = bounds[k], next = k + 1 < nb ? bounds[k + 1] : c_end;
		uint64_t cuts[] = { b, b + 1, b + 40, b + 63, b + 64,
				    b + 64 + tu_rand(&f->seed) % (next - b - 63), next - 1 };

		for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
			cut = cuts[c] < next ? cuts[c] : next - 1;
			assert_int_equal(tu_spit(f->jpath, jbytes, cut), 0);
			restore_images(f, f->model);
			j = jopen(f, &rec);
			remus_journal_free(j);
			assert_int_equal(rec, UINT64_MAX);
			check_images(f, f->model);
			tries++;
		}
	}
	/* Whole, and whole with junk after the commit: applied. */
	for (int c = 0; c < 2; c++) {
		memcpy(mutated, jbytes, jlen);
		tu_fill(&f->seed, mutated + jlen, 100);
		assert_int_equal(tu_spit(f->jpath, mutated, jlen + (c ? 100 : 0)), 0);
		restore_images(f, f->model);
		j = jopen(f, &rec);
		remus_journal_free(j);
		assert_int_equal(rec, 77);
		check_images(f, f->pending);
	}
	/* A corrupt file header is logged every time: not worth 64 lines. */
	devnull = fopen("/dev/null", "w");
	remus_log_set_stream(devnull);
	/* Flips: every byte of every head and of the file header, and random
	 * data bytes.  Any of them makes the epoch "not applied" (or, in the
	 * file header, refuses to open), never partly applied. */
	for (k = 0; k < nb + 1; k++) {
		uint64_t base = k == nb ? 0 : bounds[k];

		for (uint64_t b = 0; b < 64 + 8; b++) {
			uint64_t at = b < 64 ? base + b : 64 + tu_rand(&f->seed) % (jlen - 64);

			memcpy(mutated, jbytes, jlen);
			mutated[at] ^= (uint8_t)(1u << (tu_rand(&f->seed) % 8));
			assert_int_equal(tu_spit(f->jpath, mutated, jlen), 0);
			restore_images(f, f->model);
			rc = remus_journal_open(f->jpath, f->im, NIMG, &j, &rec);
			if (at < 64) {
				/* -EPROTONOSUPPORT when the flip hits the version */
				assert_true(rc == -EINVAL || rc == -EPROTONOSUPPORT);
			} else {
				assert_int_equal(rc, 0);
				remus_journal_free(j);
				assert_int_equal(rec, UINT64_MAX);
			}
			check_images(f, f->model);
			tries++;
		}
	}
	remus_log_set_stream(NULL);
	fclose(devnull);
	fprintf(stderr, "test_torn_journal: %zu damaged journals (%" PRIu64 " records), "
		"none applied in part\n", tries, nb - 1);
	free(jbytes);
	free(mutated);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_commit_applies_in_order),
		T(test_discard),
		T(test_empty_epoch),
		T(test_wrong_epoch),
		T(test_bounds),
		T(test_split_commit_busy),
		T(test_apply_steps),
		T(test_large_records),
		T(test_recover_committed),
		T(test_recover_applied_not_replayed),
		T(test_recover_uncommitted),
		T(test_stale_records_not_joined),
		T(test_open_errors),
		T(test_torn_journal),
	};

	/* Recovery logs what it drops; keep the test output readable. */
	remus_log_set_level(REMUS_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
