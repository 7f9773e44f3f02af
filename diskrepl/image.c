// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Raw image I/O (see image.h).  Plain positioned syscalls in loops that
 * survive short transfers and EINTR; fallocate modes the filesystem turns
 * down are remembered so that a filesystem without hole punching costs one
 * failed syscall per image, not one per request.
 */
#include "diskrepl/image.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "diskrepl/fileio.h"

#define LOG "diskrepl"
/* Bound on one read while hashing, and on the zero buffer's reach. */
#define HASH_CHUNK (1u << 20)
#define ZERO_CHUNK (64u << 10)

struct remus_image {
	int fd;           /* owned */
	char *path;       /* owned copy, for messages */
	uint64_t size;    /* bytes, fixed at open */
	bool no_punch;    /* the filesystem refused PUNCH_HOLE once */
	bool no_zero;     /* ... ZERO_RANGE */
	uint8_t *hashbuf; /* owned, HASH_CHUNK bytes, allocated on first hash */
};

static const uint8_t zeros[ZERO_CHUNK];

static bool unsupported(int err)
{
	return err == EOPNOTSUPP || err == ENOSYS || err == ENOTTY;
}

int remus_image_open(const char *path, bool create, uint64_t create_size,
		     struct remus_image **out)
{
	struct remus_image *im = NULL;
	bool created = false;
	struct stat st;
	int fd = -1, rc;
	const char *what = "open";

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		what = "create";
		fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
		if (fd < 0) {
			rc = -errno;
			goto fail;
		}
		created = true;
		if (create_size > (uint64_t)INT64_MAX) {
			rc = -EFBIG;
			goto fail;
		}
		if (ftruncate(fd, (off_t)create_size) < 0 || fsync(fd) < 0) {
			rc = -errno;
			goto fail;
		}
		rc = remus_sync_parent_dir(path);
		if (rc < 0)
			goto fail;
	}
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	what = "stat";
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	im = calloc(1, sizeof(*im));
	if (!im || !(im->path = strdup(path))) {
		rc = -ENOMEM;
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		im->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		what = "size (BLKGETSIZE64) of";
		if (ioctl(fd, BLKGETSIZE64, &im->size) < 0) {
			rc = -errno;
			goto fail;
		}
	} else {
		what = "use (neither a regular file nor a block device)";
		rc = -EINVAL;
		goto fail;
	}
	im->fd = fd;
	*out = im;
	return 0;
fail:
	remus_err(LOG, "cannot %s disk image %s: %s%s", what, path, strerror(-rc),
		  rc == -ENOENT ? " (create it, or ask for creation with a size)" : "");
	if (created)
		unlink(path);
	if (fd >= 0)
		close(fd);
	if (im)
		free(im->path);
	free(im);
	return rc;
}

uint64_t remus_image_size(const struct remus_image *im)
{
	return im->size;
}

const char *remus_image_path(const struct remus_image *im)
{
	return im->path;
}

static bool in_bounds(const struct remus_image *im, uint64_t off, uint32_t len)
{
	return off <= im->size && len <= im->size - off;
}

int remus_image_read(struct remus_image *im, uint64_t off, uint32_t len, void *buf)
{
	ssize_t r;

	if (!in_bounds(im, off, len))
		return -EINVAL;
	r = remus_pread_all(im->fd, buf, len, off);
	if (r < 0)
		return (int)r;
	return (size_t)r == len ? 0 : -EIO; /* the file was truncated behind our back */
}

int remus_image_write(struct remus_image *im, uint64_t off, uint32_t len, const void *buf)
{
	if (!in_bounds(im, off, len))
		return -EINVAL;
	return remus_pwrite_all(im->fd, buf, len, off);
}

/* Returns 0, 1 if @mode is not supported here (and remembers it), or
 * -errno. */
static int try_fallocate(struct remus_image *im, int mode, uint64_t off, uint32_t len)
{
	bool *no = mode & FALLOC_FL_PUNCH_HOLE ? &im->no_punch : &im->no_zero;

	if (*no)
		return 1;
	while (fallocate(im->fd, mode, (off_t)off, (off_t)len) < 0) {
		if (errno == EINTR)
			continue;
		if (unsupported(errno)) {
			*no = true;
			return 1;
		}
		return -errno;
	}
	return 0;
}

int remus_image_zero(struct remus_image *im, uint64_t off, uint32_t len, bool may_trim)
{
	uint32_t n;
	int rc;

	if (!in_bounds(im, off, len))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (may_trim) {
		rc = try_fallocate(im, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
		if (rc <= 0)
			return rc;
	}
	/* KEEP_SIZE is harmless here (the range is inside the file) and makes
	 * a block device accept the mode. */
	rc = try_fallocate(im, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
	if (rc <= 0)
		return rc;
	while (len > 0) {
		n = len < ZERO_CHUNK ? len : ZERO_CHUNK;
		rc = remus_image_write(im, off, n, zeros);
		if (rc < 0)
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

int remus_image_trim(struct remus_image *im, uint64_t off, uint32_t len)
{
	int rc;

	if (!in_bounds(im, off, len))
		return -EINVAL;
	if (len == 0)
		return 0;
	rc = try_fallocate(im, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
	return rc < 0 ? rc : 0;
}

int remus_image_flush(struct remus_image *im)
{
	while (fdatasync(im->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

void remus_image_free(struct remus_image *im)
{
	if (!im)
		return;
	close(im->fd);
	free(im->hashbuf);
	free(im->path);
	free(im);
}

uint64_t remus_image_extent_count(const struct remus_image *im, uint32_t extent_size)
{
	if (extent_size == 0)
		return 0;
	return im->size / extent_size + (im->size % extent_size != 0);
}

/* Hashes one extent larger than the buffer, streaming it through. */
static int hash_big_extent(struct remus_image *im, uint64_t off, uint64_t len,
			   XXH3_state_t *st, XXH128_hash_t *out)
{
	uint32_t n;
	int rc;

	XXH3_128bits_reset(st);
	while (len > 0) {
		n = len < HASH_CHUNK ? (uint32_t)len : HASH_CHUNK;
		rc = remus_image_read(im, off, n, im->hashbuf);
		if (rc < 0)
			return rc;
		XXH3_128bits_update(st, im->hashbuf, n);
		off += n;
		len -= n;
	}
	*out = XXH3_128bits_digest(st);
	return 0;
}

int remus_image_hash_extents(struct remus_image *im, uint32_t extent_size, uint64_t first,
			     uint64_t count, XXH128_hash_t *out)
{
	uint64_t n = remus_image_extent_count(im, extent_size), i = 0, off, len, batch, k;
	XXH3_state_t *st = NULL;
	int rc;

	if (extent_size == 0 || first > n || count > n - first)
		return -EINVAL;
	if (!im->hashbuf && !(im->hashbuf = malloc(HASH_CHUNK)))
		return -ENOMEM;
	while (i < count) {
		off = (first + i) * (uint64_t)extent_size;
		if (extent_size > HASH_CHUNK) {
			if (!st && !(st = XXH3_createState())) {
				rc = -ENOMEM;
				goto out;
			}
			len = im->size - off < extent_size ? im->size - off : extent_size;
			rc = hash_big_extent(im, off, len, st, &out[i]);
			if (rc < 0)
				goto out;
			i++;
			continue;
		}
		/* Small extents: one read covers as many whole ones as fit. */
		batch = HASH_CHUNK / extent_size;
		if (batch > count - i)
			batch = count - i;
		len = batch * extent_size;
		if (len > im->size - off)
			len = im->size - off; /* the short last extent */
		rc = remus_image_read(im, off, (uint32_t)len, im->hashbuf);
		if (rc < 0)
			goto out;
		for (k = 0; k < batch; k++) {
			uint64_t eo = k * extent_size;
			uint64_t el = len - eo < extent_size ? len - eo : extent_size;

			out[i + k] = XXH3_128bits(im->hashbuf + eo, el);
		}
		i += batch;
	}
	rc = 0;
out:
	XXH3_freeState(st);
	return rc;
}
