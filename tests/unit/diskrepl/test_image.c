// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Raw images and extent maps: create and open, read/write/zero/trim/flush
 * with their bounds, extent hashes checked against an independent XXH3-128
 * of the bytes (one changed byte changes exactly its extent's hash; the
 * range variant equals the full one; extents larger than the read buffer
 * stream), and the extent bitmap against a plain bool array under random
 * operations.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "diskrepl/extent.h"
#include "diskrepl/image.h"
#include "testutil.h"

struct fx {
	char dir[256];
	char path[512];
	uint64_t seed;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || tu_mkdtemp("/tmp", f->dir) < 0)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/disk.raw", f->dir);
	f->seed = tu_seed("test_image");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tu_rmdir(f->dir);
	free(f);
	return 0;
}

static void test_create_and_open(void **state)
{
	struct fx *f = *state;
	struct remus_image *im = NULL;
	struct stat st;

	/* Missing and not asked to create: an error, nothing made. */
	assert_int_equal(remus_image_open(f->path, false, 0, &im), -ENOENT);
	assert_null(im);
	assert_int_equal(access(f->path, F_OK), -1);

	assert_int_equal(remus_image_open(f->path, true, (3 << 20) + 123, &im), 0);
	assert_int_equal(remus_image_size(im), (3 << 20) + 123);
	assert_string_equal(remus_image_path(im), f->path);
	remus_image_free(im);
	/* Sparse: no data blocks for 3 MiB of nothing. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, (3 << 20) + 123);
	assert_true(st.st_blocks * 512 < 64 * 1024);

	/* An existing file keeps its size whatever create_size says. */
	assert_int_equal(remus_image_open(f->path, true, 1 << 20, &im), 0);
	assert_int_equal(remus_image_size(im), (3 << 20) + 123);
	remus_image_free(im);
	remus_image_free(NULL);

	/* A directory is not an image. */
	assert_int_equal(remus_image_open(f->dir, false, 0, &im), -EISDIR);
}

static void test_read_write_bounds(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 1 << 20;
	struct remus_image *im;
	uint8_t *want = malloc(size), *got = malloc(size);

	assert_int_equal(remus_image_open(f->path, true, size, &im), 0);
	/* A fresh sparse image reads as zeros. */
	assert_int_equal(remus_image_read(im, 0, size, got), 0);
	memset(want, 0, size);
	assert_memory_equal(got, want, size);

	tu_fill(&f->seed, want, size);
	assert_int_equal(remus_image_write(im, 0, size, want), 0);
	/* Unaligned pieces land where they are told to. */
	tu_fill(&f->seed, want + 4095, 3);
	assert_int_equal(remus_image_write(im, 4095, 3, want + 4095), 0);
	tu_fill(&f->seed, want + size - 1, 1);
	assert_int_equal(remus_image_write(im, size - 1, 1, want + size - 1), 0);
	assert_int_equal(remus_image_flush(im), 0);
	assert_int_equal(remus_image_read(im, 0, size, got), 0);
	assert_memory_equal(got, want, size);
	assert_int_equal(remus_image_read(im, 12345, 777, got), 0);
	assert_memory_equal(got, want + 12345, 777);

	/* Bounds: the last byte is fine, one more is not, and nothing
	 * wraps around. */
	assert_int_equal(remus_image_read(im, size - 1, 1, got), 0);
	assert_int_equal(remus_image_read(im, size - 1, 2, got), -EINVAL);
	assert_int_equal(remus_image_read(im, size, 0, got), 0);
	assert_int_equal(remus_image_read(im, size + 1, 0, got), -EINVAL);
	assert_int_equal(remus_image_read(im, UINT64_MAX, 2, got), -EINVAL);
	assert_int_equal(remus_image_write(im, size - 1, 2, want), -EINVAL);
	assert_int_equal(remus_image_write(im, UINT64_MAX - 1, 4, want), -EINVAL);
	assert_int_equal(remus_image_zero(im, size, 1, false), -EINVAL);
	assert_int_equal(remus_image_trim(im, size - 4096, 8192), -EINVAL);
	/* A rejected write changed nothing, and the file did not grow. */
	assert_int_equal(remus_image_read(im, 0, size, got), 0);
	assert_memory_equal(got, want, size);
	remus_image_free(im);
	assert_int_equal(remus_image_open(f->path, false, 0, &im), 0);
	assert_int_equal(remus_image_size(im), size);
	remus_image_free(im);
	free(want);
	free(got);
}

static void test_zero_and_trim(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 4 << 20;
	bool punch = tu_can_punch(f->dir);
	struct remus_image *im;
	uint8_t *want = malloc(size), *got = malloc(size);
	struct stat st;
	blkcnt_t full;

	assert_int_equal(remus_image_open(f->path, true, size, &im), 0);
	tu_fill(&f->seed, want, size);
	assert_int_equal(remus_image_write(im, 0, size, want), 0);
	assert_int_equal(remus_image_flush(im), 0);
	assert_int_equal(stat(f->path, &st), 0);
	full = st.st_blocks;

	/* Zero without trim: zeros, neighbours intact, blocks kept. */
	memset(want + 1000, 0, 70000);
	assert_int_equal(remus_image_zero(im, 1000, 70000, false), 0);
	assert_int_equal(remus_image_read(im, 0, size, got), 0);
	assert_memory_equal(got, want, size);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(st.st_blocks >= full);

	/* Zero that may trim: zeros, and aligned whole blocks freed where the
	 * filesystem punches holes. */
	memset(want + (1 << 20), 0, 1 << 20);
	assert_int_equal(remus_image_zero(im, 1 << 20, 1 << 20, true), 0);
	assert_int_equal(remus_image_read(im, 0, size, got), 0);
	assert_memory_equal(got, want, size);
	assert_int_equal(stat(f->path, &st), 0);
	if (punch)
		assert_true(st.st_blocks * 512 <= full * 512 - (1 << 20) + 8192);

	/* Trim: zeros where holes are punched, untouched where not. */
	if (punch)
		memset(want + (3 << 20) + 5, 0, 9000);
	assert_int_equal(remus_image_trim(im, (3 << 20) + 5, 9000), 0);
	assert_int_equal(remus_image_read(im, 0, size, got), 0);
	assert_memory_equal(got, want, size);
	assert_int_equal(remus_image_zero(im, 5, 0, true), 0);
	assert_int_equal(remus_image_trim(im, 5, 0), 0);
	assert_int_equal(remus_image_flush(im), 0);
	remus_image_free(im);
	free(want);
	free(got);
}

static void check_hashes(struct remus_image *im, const uint8_t *bytes, uint64_t size,
			 uint32_t extent)
{
	uint64_t n = remus_image_extent_count(im, extent), i, len;
	XXH128_hash_t *h = calloc(n, sizeof(*h)), *r = calloc(n, sizeof(*h));

	assert_int_equal(n, size / extent + (size % extent != 0));
	assert_int_equal(remus_image_hash_extents(im, extent, 0, n, h), 0);
	for (i = 0; i < n; i++) {
		len = size - i * extent < extent ? size - i * extent : extent;
		assert_true(XXH128_isEqual(h[i], XXH3_128bits(bytes + i * extent, len)));
	}
	/* Range variant: every split gives the same hashes. */
	if (n > 3) {
		assert_int_equal(remus_image_hash_extents(im, extent, 2, n - 3, r), 0);
		assert_memory_equal(r, h + 2, (n - 3) * sizeof(*h));
		assert_int_equal(remus_image_hash_extents(im, extent, n - 1, 1, r), 0);
		assert_true(XXH128_isEqual(r[0], h[n - 1]));
	}
	assert_int_equal(remus_image_hash_extents(im, extent, n, 0, r), 0);
	assert_int_equal(remus_image_hash_extents(im, extent, n, 1, r), -EINVAL);
	assert_int_equal(remus_image_hash_extents(im, extent, 1, n, r), -EINVAL);
	assert_int_equal(remus_image_hash_extents(im, extent, UINT64_MAX, 2, r), -EINVAL);
	free(h);
	free(r);
}

static void test_hash_extents(void **state)
{
	struct fx *f = *state;
	const uint64_t size = (7u << 20) + 1000; /* a short last extent */
	static const uint32_t extents[] = { 4096, 65536, 1 << 20, 3 << 20, 16 << 20 };
	uint8_t *bytes = malloc(size);
	XXH128_hash_t *before, *after;
	struct remus_image *im;
	uint64_t n, i, pos, changed;
	size_t e;

	assert_int_equal(remus_image_open(f->path, true, size, &im), 0);
	tu_fill(&f->seed, bytes, size);
	assert_int_equal(remus_image_write(im, 0, (uint32_t)size, bytes), 0);
	/* 3 MiB and 16 MiB extents stream through the 1 MiB buffer. */
	for (e = 0; e < sizeof(extents) / sizeof(extents[0]); e++)
		check_hashes(im, bytes, size, extents[e]);
	assert_int_equal(remus_image_extent_count(im, 0), 0);
	assert_int_equal(remus_image_hash_extents(im, 0, 0, 0, NULL), -EINVAL);

	/* One changed byte changes exactly the hash of its extent. */
	n = remus_image_extent_count(im, 65536);
	before = calloc(n, sizeof(*before));
	after = calloc(n, sizeof(*after));
	assert_int_equal(remus_image_hash_extents(im, 65536, 0, n, before), 0);
	for (int round = 0; round < 8; round++) {
		pos = round == 0 ? size - 1 : round == 1 ? 0 : tu_rand(&f->seed) % size;
		bytes[pos] ^= (uint8_t)(1 + tu_rand(&f->seed) % 255);
		assert_int_equal(remus_image_write(im, pos, 1, bytes + pos), 0);
		assert_int_equal(remus_image_hash_extents(im, 65536, 0, n, after), 0);
		changed = 0;
		for (i = 0; i < n; i++) {
			if (!XXH128_isEqual(before[i], after[i])) {
				changed++;
				assert_int_equal(i, pos / 65536);
			}
		}
		assert_int_equal(changed, 1);
		memcpy(before, after, n * sizeof(*before));
	}
	free(before);
	free(after);
	free(bytes);
	remus_image_free(im);
}

static void test_extent_map_basics(void **state)
{
	struct remus_extent_map m;
	uint64_t off;
	uint32_t len;

	assert_int_equal(remus_extent_map_init(&m, 100, 0), -EINVAL);
	remus_extent_map_release(&m);
	/* 10 extents of 1000 bytes, the last one 500. */
	assert_int_equal(remus_extent_map_init(&m, 9500, 1000), 0);
	assert_int_equal(m.nextents, 10);
	assert_int_equal(remus_extent_map_count(&m), 0);
	assert_int_equal(remus_extent_map_next(&m, 0), UINT64_MAX);

	remus_extent_map_set_range(&m, 999, 2); /* straddles extents 0 and 1 */
	assert_true(remus_extent_map_test(&m, 0));
	assert_true(remus_extent_map_test(&m, 1));
	assert_false(remus_extent_map_test(&m, 2));
	remus_extent_map_set_range(&m, 5000, 0); /* empty: nothing */
	remus_extent_map_set_range(&m, 9400, 1 << 20); /* clamped to the disk */
	remus_extent_map_set_range(&m, 9500, 10);       /* beyond: nothing */
	assert_int_equal(remus_extent_map_count(&m), 3);
	assert_int_equal(remus_extent_map_next(&m, 0), 0);
	assert_int_equal(remus_extent_map_next(&m, 2), 9);
	assert_int_equal(remus_extent_map_next(&m, 10), UINT64_MAX);
	assert_false(remus_extent_map_test(&m, 10));
	remus_extent_map_set(&m, 10); /* beyond: no-op */
	assert_int_equal(remus_extent_map_count(&m), 3);

	remus_extent_map_extent(&m, 9, &off, &len);
	assert_int_equal(off, 9000);
	assert_int_equal(len, 500);
	remus_extent_map_extent(&m, 3, &off, &len);
	assert_int_equal(off, 3000);
	assert_int_equal(len, 1000);

	remus_extent_map_clear(&m, 0);
	remus_extent_map_clear(&m, 0);
	assert_int_equal(remus_extent_map_count(&m), 2);
	remus_extent_map_set_all(&m);
	assert_int_equal(remus_extent_map_count(&m), 10);
	remus_extent_map_clear_all(&m);
	assert_int_equal(remus_extent_map_count(&m), 0);
	assert_int_equal(remus_extent_map_next(&m, 0), UINT64_MAX);
	remus_extent_map_release(&m);
	remus_extent_map_release(&m);

	/* An empty disk has no extents and takes no calls badly. */
	assert_int_equal(remus_extent_map_init(&m, 0, 4096), 0);
	remus_extent_map_set_all(&m);
	assert_int_equal(remus_extent_map_count(&m), 0);
	assert_int_equal(remus_extent_map_next(&m, 0), UINT64_MAX);
	remus_extent_map_release(&m);
}

/* Random ranges, sets and clears against a bool per extent. */
static void test_extent_map_model(void **state)
{
	struct fx *f = *state;
	const uint32_t ext = 4096;
	const uint64_t disk = 300 * 4096ull + 17; /* 301 extents: words and a tail */
	struct remus_extent_map m;
	bool model[301];
	uint64_t i, count, next, off, len, r;

	assert_int_equal(remus_extent_map_init(&m, disk, ext), 0);
	assert_int_equal(m.nextents, 301);
	memset(model, 0, sizeof(model));
	for (int round = 0; round < 3000; round++) {
		r = tu_rand(&f->seed) % 10;
		if (r < 5) {
			off = tu_rand(&f->seed) % (disk + 100);
			len = r == 0 ? tu_rand(&f->seed) % disk : tu_rand(&f->seed) % (3 * ext);
			remus_extent_map_set_range(&m, off, len);
			if (len > 0 && off < disk) {
				uint64_t end = off + len < disk ? off + len : disk;

				for (i = off / ext; i <= (end - 1) / ext; i++)
					model[i] = true;
			}
		} else if (r < 9) {
			i = tu_rand(&f->seed) % 320;
			if (r == 8) {
				remus_extent_map_set(&m, i);
				if (i < 301)
					model[i] = true;
			} else {
				remus_extent_map_clear(&m, i);
				if (i < 301)
					model[i] = false;
			}
		} else if (tu_rand(&f->seed) % 20 == 0) {
			remus_extent_map_clear_all(&m);
			memset(model, 0, sizeof(model));
		}
		count = 0;
		next = remus_extent_map_next(&m, 0);
		for (i = 0; i < 301; i++) {
			assert_int_equal(remus_extent_map_test(&m, i), model[i]);
			if (model[i]) {
				assert_int_equal(next, i);
				next = remus_extent_map_next(&m, i + 1);
				count++;
			}
		}
		assert_int_equal(next, UINT64_MAX);
		assert_int_equal(remus_extent_map_count(&m), count);
	}
	remus_extent_map_release(&m);
}

static void test_extent_map_diff(void **state)
{
	XXH128_hash_t a[200], b[200];
	struct remus_extent_map m;
	int i;

	for (i = 0; i < 200; i++)
		a[i] = b[i] = XXH3_128bits(&i, sizeof(i));
	b[0].low64 ^= 1;
	b[63].high64 ^= 1;
	b[64].low64 ^= 2;
	b[199].high64 ^= 4;
	assert_int_equal(remus_extent_map_init(&m, 250 * 512ull, 512), 0);
	remus_extent_map_set(&m, 10); /* equal extents keep their bits */
	assert_int_equal(remus_extent_map_diff(&m, 0, 200, a, b), 4);
	assert_int_equal(remus_extent_map_count(&m), 5);
	assert_true(remus_extent_map_test(&m, 0) && remus_extent_map_test(&m, 63) &&
		    remus_extent_map_test(&m, 64) && remus_extent_map_test(&m, 199) &&
		    remus_extent_map_test(&m, 10));
	/* A window of the disk: indices are offset by @first. */
	remus_extent_map_clear_all(&m);
	assert_int_equal(remus_extent_map_diff(&m, 50, 200, a, b), 4);
	assert_true(remus_extent_map_test(&m, 50) && remus_extent_map_test(&m, 249));
	assert_int_equal(remus_extent_map_diff(&m, 51, 200, a, b), -EINVAL);
	assert_int_equal(remus_extent_map_diff(&m, UINT64_MAX, 2, a, b), -EINVAL);
	remus_extent_map_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_and_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_and_trim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hash_extents, setup, teardown),
		cmocka_unit_test(test_extent_map_basics),
		cmocka_unit_test_setup_teardown(test_extent_map_model, setup, teardown),
		cmocka_unit_test(test_extent_map_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
