// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Dirty-extent bitmap (see extent.h).  Plain 64-bit words; the set count is
 * maintained on every transition so that "how much does the standby lack"
 * is O(1) for status reports.
 */
#include "diskrepl/extent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t nwords(uint64_t nextents)
{
	return nextents / 64 + (nextents % 64 != 0);
}

int remus_extent_map_init(struct remus_extent_map *m, uint64_t disk_size,
			  uint32_t extent_size)
{
	memset(m, 0, sizeof(*m));
	if (extent_size == 0)
		return -EINVAL;
	m->disk_size = disk_size;
	m->extent_size = extent_size;
	m->nextents = disk_size / extent_size + (disk_size % extent_size != 0);
	if (m->nextents == 0)
		return 0;
	if (nwords(m->nextents) > SIZE_MAX / sizeof(uint64_t))
		return -ENOMEM;
	m->bits = calloc((size_t)nwords(m->nextents), sizeof(uint64_t));
	if (!m->bits) {
		memset(m, 0, sizeof(*m));
		return -ENOMEM;
	}
	return 0;
}

void remus_extent_map_release(struct remus_extent_map *m)
{
	free(m->bits);
	m->bits = NULL;
	m->nextents = 0;
	m->nset = 0;
}

bool remus_extent_map_test(const struct remus_extent_map *m, uint64_t idx)
{
	if (idx >= m->nextents)
		return false;
	return m->bits[idx / 64] >> (idx % 64) & 1;
}

void remus_extent_map_set(struct remus_extent_map *m, uint64_t idx)
{
	if (idx >= m->nextents || remus_extent_map_test(m, idx))
		return;
	m->bits[idx / 64] |= 1ull << (idx % 64);
	m->nset++;
}

void remus_extent_map_clear(struct remus_extent_map *m, uint64_t idx)
{
	if (!remus_extent_map_test(m, idx))
		return;
	m->bits[idx / 64] &= ~(1ull << (idx % 64));
	m->nset--;
}

void remus_extent_map_set_range(struct remus_extent_map *m, uint64_t off, uint64_t len)
{
	uint64_t i, last;

	if (len == 0 || off >= m->disk_size)
		return;
	if (len > m->disk_size - off)
		len = m->disk_size - off;
	last = (off + len - 1) / m->extent_size;
	for (i = off / m->extent_size; i <= last; i++) {
		/* Whole words at a time once aligned: a multi-GiB write
		 * (the initial copy's marking) stays cheap. */
		if (i % 64 == 0 && last - i >= 63 && m->bits[i / 64] != UINT64_MAX) {
			m->nset += 64 - (uint64_t)__builtin_popcountll(m->bits[i / 64]);
			m->bits[i / 64] = UINT64_MAX;
			i += 63;
			continue;
		}
		remus_extent_map_set(m, i);
	}
}

void remus_extent_map_set_all(struct remus_extent_map *m)
{
	remus_extent_map_set_range(m, 0, m->disk_size);
}

void remus_extent_map_clear_all(struct remus_extent_map *m)
{
	if (m->bits)
		memset(m->bits, 0, (size_t)nwords(m->nextents) * sizeof(uint64_t));
	m->nset = 0;
}

uint64_t remus_extent_map_next(const struct remus_extent_map *m, uint64_t from)
{
	uint64_t w, word;

	if (from >= m->nextents)
		return UINT64_MAX;
	w = from / 64;
	word = m->bits[w] & (UINT64_MAX << (from % 64));
	for (;;) {
		if (word)
			return w * 64 + (uint64_t)__builtin_ctzll(word);
		if (++w >= nwords(m->nextents))
			return UINT64_MAX;
		word = m->bits[w];
	}
}

void remus_extent_map_extent(const struct remus_extent_map *m, uint64_t idx, uint64_t *off,
			     uint32_t *len)
{
	uint64_t o = idx * m->extent_size;

	*off = o;
	*len = m->disk_size - o < m->extent_size ? (uint32_t)(m->disk_size - o) : m->extent_size;
}

int64_t remus_extent_map_diff(struct remus_extent_map *m, uint64_t first, uint64_t count,
			      const XXH128_hash_t *a, const XXH128_hash_t *b)
{
	int64_t ndiff = 0;
	uint64_t i;

	if (first > m->nextents || count > m->nextents - first)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		if (!XXH128_isEqual(a[i], b[i])) {
			remus_extent_map_set(m, first + i);
			ndiff++;
		}
	}
	return ndiff;
}
