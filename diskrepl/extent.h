/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Dirty-extent bitmap of one disk (private header).
 *
 * The disk is cut into extents of a fixed size (the last one may be
 * short); one bit per extent says "the standby may lack this extent".  The
 * primary sets bits for every write it serves while the standby is not
 * receiving them (unprotected, or before the initial copy), and resync
 * sets the bits whose hashes differ between the two sides
 * (remus_extent_map_diff() over remus_image_hash_extents() results), then
 * walks the set bits, sends each extent and clears its bit.
 *
 * Memory is one bit per extent: 1 TiB in 64 KiB extents is 2 MiB.
 */
#ifndef REMUS_DISKREPL_EXTENT_H
#define REMUS_DISKREPL_EXTENT_H

#include <stdbool.h>
#include <stdint.h>

#include <xxhash.h>

struct remus_extent_map {
	uint64_t *bits;       /* owned, one bit per extent */
	uint64_t disk_size;   /* bytes */
	uint64_t nextents;    /* ceil(disk_size / extent_size) */
	uint64_t nset;        /* bits set, kept current */
	uint32_t extent_size; /* bytes, > 0 */
};

/* Makes an all-clear map of @disk_size bytes in @extent_size extents.
 * Returns 0, -EINVAL (@extent_size 0) or -ENOMEM; on failure the map is
 * released (remus_extent_map_release() is a no-op on it). */
int remus_extent_map_init(struct remus_extent_map *m, uint64_t disk_size,
			  uint32_t extent_size);
/* Frees the bits.  Idempotent. */
void remus_extent_map_release(struct remus_extent_map *m);

/* Marks every extent that the byte range [@off, @off + @len) touches.
 * The part of the range beyond the disk is ignored; @len 0 marks nothing. */
void remus_extent_map_set_range(struct remus_extent_map *m, uint64_t off, uint64_t len);
void remus_extent_map_set_all(struct remus_extent_map *m);
/* @idx beyond the map: false / no-op. */
bool remus_extent_map_test(const struct remus_extent_map *m, uint64_t idx);
void remus_extent_map_set(struct remus_extent_map *m, uint64_t idx);
void remus_extent_map_clear(struct remus_extent_map *m, uint64_t idx);
void remus_extent_map_clear_all(struct remus_extent_map *m);
/* Number of set extents, O(1). */
static inline uint64_t remus_extent_map_count(const struct remus_extent_map *m)
{
	return m->nset;
}
/* Returns the first set extent index >= @from, or UINT64_MAX if none:
 *     for (i = remus_extent_map_next(m, 0); i != UINT64_MAX;
 *          i = remus_extent_map_next(m, i + 1)) ...
 * Skips 64 clear extents per word read. */
uint64_t remus_extent_map_next(const struct remus_extent_map *m, uint64_t from);
/* Byte range of extent @idx (< nextents): *@off and *@len (short for the
 * last extent). */
void remus_extent_map_extent(const struct remus_extent_map *m, uint64_t idx, uint64_t *off,
			     uint32_t *len);
/* Compares @a[i] and @b[i] (both borrowed, @count hashes, for extents
 * @first + i) and sets the bit of every extent whose hashes differ; bits
 * of equal extents are left as they are.  Returns the number of differing
 * extents, or -EINVAL (as a negative value) if the range exceeds the map. */
int64_t remus_extent_map_diff(struct remus_extent_map *m, uint64_t first, uint64_t count,
			      const XXH128_hash_t *a, const XXH128_hash_t *b);

#endif
