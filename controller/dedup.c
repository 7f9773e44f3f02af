// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Per-page content hashes of what the standby holds (design in dedup.h).
 *
 * Pages are numbered across the MEM_SIZE list (block.first_page + offset
 * / page size).  The table holds one XXH128 per page and a "known" bit;
 * the undo log holds, for every change not yet acknowledged, the page,
 * its epoch and the value it replaced, in the order the changes were
 * made, so commit drops a prefix and abort pops a suffix.
 */
#include "controller/dedup.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <xxhash.h>

#define KNOWN_BIT (1ull << 63) /* in undo.page: the old value was known */

struct undo {
	uint64_t page; /* | KNOWN_BIT */
	uint64_t epoch;
	XXH128_hash_t old;
};

struct remus_dedup {
	uint64_t seed;
	uint32_t page_size;
	struct remus_migstream_block *blocks; /* owned copy of the layout */
	uint32_t nblocks;
	uint64_t npages;
	XXH128_hash_t *hash; /* owned, npages */
	uint64_t *known;     /* owned, bitmap */
	XXH128_hash_t zero;  /* hash of a zero page */

	struct undo *log;    /* owned; entries [head, len) are live */
	size_t head, len, cap;
	bool have_commit, have_epoch;
	uint64_t committed, epoch;

	struct remus_dedup_stats st;
};

int remus_dedup_new(struct remus_dedup **out)
{
	struct remus_dedup *d;
	uint64_t seed = 0;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	while (!seed) {
		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			seed = (uint64_t)(uintptr_t)d ^ 0x9e3779b97f4a7c15ull;
	}
	d->seed = seed;
	*out = d;
	return 0;
}

static void forget(struct remus_dedup *d)
{
	if (d->known)
		memset(d->known, 0, ((d->npages + 63) / 64) * sizeof(*d->known));
	d->head = d->len = 0;
}

static void drop_layout(struct remus_dedup *d)
{
	free(d->blocks);
	free(d->hash);
	free(d->known);
	d->blocks = NULL;
	d->hash = NULL;
	d->known = NULL;
	d->nblocks = 0;
	d->npages = 0;
	d->head = d->len = 0;
}

void remus_dedup_free(struct remus_dedup *d)
{
	if (!d)
		return;
	drop_layout(d);
	free(d->log);
	free(d);
}

void remus_dedup_reset(struct remus_dedup *d)
{
	/* A new standby session numbers its epochs from scratch. */
	forget(d);
	d->have_commit = d->have_epoch = false;
	d->committed = d->epoch = 0;
}

static bool same_layout(const struct remus_dedup *d, const struct remus_migstream_block *b,
			uint32_t n, uint32_t page_size)
{
	uint32_t i;

	if (!d->blocks || n != d->nblocks || page_size != d->page_size)
		return false;
	for (i = 0; i < n; i++)
		if (b[i].length != d->blocks[i].length || strcmp(b[i].name, d->blocks[i].name))
			return false;
	return true;
}

int remus_dedup_set_layout(struct remus_dedup *d, const struct remus_migstream_block *blocks,
			   uint32_t nblocks, uint32_t page_size)
{
	uint64_t npages = 0;
	uint8_t *zero = NULL;
	uint32_t i;
	int rc;

	if (same_layout(d, blocks, nblocks, page_size))
		return 0;
	drop_layout(d);
	if (!page_size || (page_size & (page_size - 1))) {
		rc = -EINVAL;
		goto out;
	}
	for (i = 0; i < nblocks; i++)
		npages += (blocks[i].length + page_size - 1) / page_size;
	d->blocks = calloc(nblocks ? nblocks : 1, sizeof(*d->blocks));
	d->hash = calloc(npages ? npages : 1, sizeof(*d->hash));
	d->known = calloc((npages + 63) / 64 + 1, sizeof(*d->known));
	zero = calloc(1, page_size);
	if (!d->blocks || !d->hash || !d->known || !zero) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(d->blocks, blocks, nblocks * sizeof(*blocks));
	d->nblocks = nblocks;
	d->npages = npages;
	d->page_size = page_size;
	d->zero = XXH3_128bits_withSeed(zero, page_size, d->seed);
	rc = 0;
out:
	if (rc < 0)
		drop_layout(d);
	free(zero);
	return rc;
}

int remus_dedup_begin_epoch(struct remus_dedup *d, uint64_t epoch)
{
	if (d->have_commit && epoch <= d->committed)
		return -EINVAL;
	if (d->len > d->head && epoch < d->log[d->len - 1].epoch)
		return -EINVAL;
	d->epoch = epoch;
	d->have_epoch = true;
	return 0;
}

static int log_change(struct remus_dedup *d, uint64_t page)
{
	struct undo *u;

	if (d->head && d->len == d->cap) {
		/* reuse the acknowledged prefix before growing */
		memmove(d->log, d->log + d->head, (d->len - d->head) * sizeof(*d->log));
		d->len -= d->head;
		d->head = 0;
	}
	if (d->len == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 4096;
		struct undo *n = realloc(d->log, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->log = n;
		d->cap = cap;
	}
	u = &d->log[d->len++];
	u->page = page | ((d->known[page / 64] >> (page % 64) & 1) ? KNOWN_BIT : 0);
	u->epoch = d->epoch;
	u->old = d->hash[page];
	return 0;
}

int remus_dedup_filter(void *opaque, const struct remus_migstream_token *tok)
{
	struct remus_dedup *d = opaque;
	const struct remus_migstream_block *b = tok->block;
	bool zero = tok->kind == REMUS_MS_RAM_ZERO;
	XXH128_hash_t h;
	uint64_t page;
	int rc;

	if (!zero && tok->kind != REMUS_MS_RAM_PAGE)
		return 1;
	/* A layout we do not know, or no epoch: send, remember nothing. */
	if (!d->have_epoch || !b || b->index >= d->nblocks || tok->page_size != d->page_size ||
	    b->length != d->blocks[b->index].length || b->first_page != d->blocks[b->index].first_page ||
	    strcmp(b->name, d->blocks[b->index].name) || tok->page_offset >= b->length)
		goto send_unrecorded;
	page = b->first_page + tok->page_offset / d->page_size;
	h = zero ? d->zero : XXH3_128bits_withSeed(tok->page, d->page_size, d->seed);
	if ((d->known[page / 64] >> (page % 64) & 1) && XXH128_isEqual(h, d->hash[page])) {
		if (zero)
			d->st.zero_dropped++;
		else
			d->st.pages_dropped++;
		return 0;
	}
	if ((rc = log_change(d, page)) < 0)
		return rc;
	d->hash[page] = h;
	d->known[page / 64] |= 1ull << (page % 64);
	if (zero)
		d->st.zero_sent++;
	else
		d->st.pages_sent++;
	return 1;

send_unrecorded:
	if (zero)
		d->st.zero_sent++;
	else
		d->st.pages_sent++;
	return 1;
}

void remus_dedup_commit(struct remus_dedup *d, uint64_t epoch)
{
	while (d->head < d->len && d->log[d->head].epoch <= epoch)
		d->head++;
	if (d->head == d->len)
		d->head = d->len = 0;
	if (!d->have_commit || epoch > d->committed)
		d->committed = epoch;
	d->have_commit = true;
}

void remus_dedup_abort(struct remus_dedup *d, uint64_t epoch)
{
	while (d->len > d->head && d->log[d->len - 1].epoch >= epoch) {
		const struct undo *u = &d->log[--d->len];
		uint64_t page = u->page & ~KNOWN_BIT;

		d->hash[page] = u->old;
		if (u->page & KNOWN_BIT)
			d->known[page / 64] |= 1ull << (page % 64);
		else
			d->known[page / 64] &= ~(1ull << (page % 64));
	}
	d->have_epoch = false;
}

void remus_dedup_get_stats(const struct remus_dedup *d, struct remus_dedup_stats *st)
{
	*st = d->st;
	st->undo_entries = d->len - d->head;
}
