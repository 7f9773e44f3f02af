/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Raw disk images as diskrepl serves and replicates them (private header).
 *
 * A raw image is a regular file (or a block device) whose byte N is the
 * guest disk's byte N.  The NBD server reads and writes it on the primary;
 * the epoch journal (journal.h) applies committed epochs to it on the
 * standby; resync compares the two sides' extent hashes.
 *
 * All I/O is synchronous (pread/pwrite/fallocate/fdatasync) on a file
 * opened without O_DIRECT, so it goes through the page cache: a call costs
 * a memory copy unless it flushes.  Every call is bounded by its length
 * argument (at most 4 GiB - 1), and remus_image_hash_extents() takes a
 * range so that a caller on the event loop can spread a whole-disk hash
 * over many iterations.
 *
 * Every function returns 0 or -errno and logs nothing except open, which
 * names the path in its message because it is the one a user can fix.
 * Ranges are checked against the size at open: an access that does not
 * lie entirely inside the image fails with -EINVAL and does nothing.
 */
#ifndef REMUS_DISKREPL_IMAGE_H
#define REMUS_DISKREPL_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <xxhash.h>

struct remus_image;

/* Opens the raw image at @path (borrowed) read-write.  With @create, a
 * missing file is created sparse with @create_size bytes (and its
 * directory synced); an existing file is opened as it is, whatever its
 * size.  The image's size is the file's (or block device's) size at open.
 * Returns 0 and the image in *@out (owned by the caller, free with
 * remus_image_free()), or -errno after logging what failed on which
 * path; *@out is untouched on failure. */
int remus_image_open(const char *path, bool create, uint64_t create_size,
		     struct remus_image **out);
uint64_t remus_image_size(const struct remus_image *im);
/* Borrowed; valid until remus_image_free(). */
const char *remus_image_path(const struct remus_image *im);

/* Reads @len bytes at @off into @buf (borrowed).  -EINVAL if the range is
 * not inside the image, -EIO if the file shrank under us. */
int remus_image_read(struct remus_image *im, uint64_t off, uint32_t len, void *buf);
/* Writes @len bytes of @buf (borrowed) at @off.  Not durable until
 * remus_image_flush().  On failure part of the range may be written. */
int remus_image_write(struct remus_image *im, uint64_t off, uint32_t len, const void *buf);
/* Makes the range read as zeros.  With @may_trim the blocks may be
 * deallocated (PUNCH_HOLE), else they stay allocated (ZERO_RANGE); when
 * the filesystem supports neither, zeros are written. */
int remus_image_zero(struct remus_image *im, uint64_t off, uint32_t len, bool may_trim);
/* Discards the range (PUNCH_HOLE, reads as zeros afterwards).  Where the
 * filesystem cannot punch holes this does nothing and returns 0: the
 * content of a trimmed range is unspecified, as NBD_CMD_TRIM allows. */
int remus_image_trim(struct remus_image *im, uint64_t off, uint32_t len);
/* fdatasync: every completed write, zero and trim is durable after it. */
int remus_image_flush(struct remus_image *im);
/* Closes the file without flushing and frees @im.  NULL ok. */
void remus_image_free(struct remus_image *im);

/* Number of extents of @extent_size bytes covering the image (the last
 * one may be short): ceil(size / extent_size); 0 if @extent_size is 0. */
uint64_t remus_image_extent_count(const struct remus_image *im, uint32_t extent_size);
/* Hashes extents [@first, @first + @count) with XXH3-128: out[i] is the
 * hash of the bytes of extent @first + i (a short last extent hashes only
 * its bytes).  @out (borrowed) has room for @count hashes.  Reads in
 * chunks of at most 1 MiB through one bounded buffer, so the cost is
 * O(@count * @extent_size) time and O(1 MiB) memory.  -EINVAL if
 * @extent_size is 0 or the range exceeds remus_image_extent_count(). */
int remus_image_hash_extents(struct remus_image *im, uint32_t extent_size, uint64_t first,
			     uint64_t count, XXH128_hash_t *out);

#endif
