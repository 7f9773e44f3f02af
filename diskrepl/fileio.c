// SPDX-License-Identifier: GPL-2.0-or-later
/* Shared file I/O loops of diskrepl/ (see fileio.h). */
#include "diskrepl/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int remus_pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	const uint8_t *p = buf;
	ssize_t r;

	while (n > 0) {
		r = pwrite(fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

ssize_t remus_pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = pread(fd, p + got, n - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int remus_sync_parent_dir(const char *path)
{
	char *copy = strdup(path);
	int fd = -1, rc;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 || fsync(fd) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

bool remus_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0 && b[n - 1] == 0)
		n--;
	return n == 0;
}
