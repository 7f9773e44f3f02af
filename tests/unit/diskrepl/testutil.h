/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by the diskrepl storage tests: a scratch directory that
 * is removed afterwards, whole-file reads and writes, a seeded PRNG (the
 * seed is printed, and REMUS_TEST_SEED replays a run), and a probe for
 * hole punching, which decides what a trimmed range reads as.
 */
#ifndef REMUS_TESTS_DISKREPL_TESTUTIL_H
#define REMUS_TESTS_DISKREPL_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* xorshift64*: fast, and the same sequence in a forked child. */
static inline uint64_t tu_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static inline void tu_fill(uint64_t *s, void *buf, size_t n)
{
	uint8_t *p = buf;
	uint64_t v;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		v = tu_rand(s);
		memcpy(p + i, &v, 8);
	}
	v = tu_rand(s);
	memcpy(p + i, &v, n - i);
}

static inline uint64_t tu_seed(const char *test)
{
	const char *env = getenv("REMUS_TEST_SEED");
	struct timespec ts;
	uint64_t seed;

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = env ? strtoull(env, NULL, 0) : (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20;
	if (seed == 0)
		seed = 1;
	fprintf(stderr, "%s: seed %llu (REMUS_TEST_SEED to replay)\n", test,
		(unsigned long long)seed);
	return seed;
}

/* Makes a scratch directory under @base (e.g. /tmp); @dir gets its path. */
static inline int tu_mkdtemp(const char *base, char dir[256])
{
	snprintf(dir, 256, "%s/remus-diskrepl-XXXXXX", base);
	return mkdtemp(dir) ? 0 : -errno;
}

/* Removes @dir and the plain files in it. */
static inline void tu_rmdir(const char *dir)
{
	char path[512];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Reads the whole file into a malloc'd buffer (caller frees). */
static inline uint8_t *tu_slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		goto out;
	p = malloc((size_t)st.st_size + 1);
	if (p && pread(fd, p, (size_t)st.st_size, 0) != st.st_size) {
		free(p);
		p = NULL;
	}
	*len = (size_t)st.st_size;
out:
	if (fd >= 0)
		close(fd);
	return p;
}

/* Replaces the file's contents with @len bytes of @p. */
static inline int tu_spit(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (len > 0 && pwrite(fd, p, len, 0) != (ssize_t)len)
		rc = -EIO;
	close(fd);
	return rc;
}

/* Whether the filesystem of @dir punches holes (then a trim reads back as
 * zeros; otherwise trimmed data stays). */
static inline bool tu_can_punch(const char *dir)
{
	char path[512];
	bool ok = false;
	int fd;

	snprintf(path, sizeof(path), "%s/punch-probe", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	if (ftruncate(fd, 1 << 20) == 0)
		ok = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 65536) == 0;
	close(fd);
	unlink(path);
	return ok;
}

#endif
