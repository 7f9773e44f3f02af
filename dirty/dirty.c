// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The dirty tracker's public calls (dirty.h): page sets, and the dispatch
 * to a backend.  FULL lives here (every page, every epoch); FUSE is
 * fuse_ram.c.  Collect hands the caller the bitmap the backend filled and
 * takes the caller's (cleared) one as the next epoch's, so a collect
 * costs one clear of the bitmap (96 KiB for 3 GiB of RAM) plus the flush,
 * never a pass over the RAM.
 */
#include "dirty/dirty.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dirty/fuse_ram.h"
#include "dirty/ramfs.h"

struct remus_dirty {
	enum remus_dirty_kind kind;
	uint64_t size, npages;
	const uint8_t *ram; /* FULL: owned read-only mapping of ram_fd, or NULL */
	struct remus_fuse_server fuse;
	struct remus_ramfs_client ramfs;
	uint64_t collects, pages_reported;
};

static size_t words(uint64_t npages)
{
	return (size_t)((npages + 63) / 64);
}

int remus_dirty_set_init(struct remus_dirty_set *set, uint64_t npages)
{
	memset(set, 0, sizeof(*set));
	if (npages == 0)
		return -EINVAL;
	set->bits = calloc(words(npages), sizeof(uint64_t));
	if (!set->bits)
		return -ENOMEM;
	set->npages = npages;
	return 0;
}

void remus_dirty_set_release(struct remus_dirty_set *set)
{
	free(set->bits);
	memset(set, 0, sizeof(*set));
}

bool remus_dirty_set_test(const struct remus_dirty_set *set, uint64_t page)
{
	return page < set->npages &&
	       (set->bits[page / 64] >> (page % 64) & 1);
}

uint64_t remus_dirty_set_next(const struct remus_dirty_set *set,
			      uint64_t from)
{
	uint64_t w, word;

	if (from >= set->npages)
		return set->npages;
	w = from / 64;
	word = set->bits[w] & (~UINT64_C(0) << (from % 64));
	for (;;) {
		if (word) {
			uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(word);

			return p < set->npages ? p : set->npages;
		}
		if (++w >= words(set->npages))
			return set->npages;
		word = set->bits[w];
	}
}

bool remus_dirty_set_next_range(const struct remus_dirty_set *set,
				uint64_t from, uint64_t *first,
				uint64_t *count)
{
	uint64_t p = remus_dirty_set_next(set, from), e;

	if (p >= set->npages)
		return false;
	e = p + 1;
	while (e < set->npages && remus_dirty_set_test(set, e))
		e++;
	*first = p;
	*count = e - p;
	return true;
}

int remus_dirty_set_merge(struct remus_dirty_set *into,
			  const struct remus_dirty_set *from)
{
	uint64_t i, n = 0;

	if (into->npages != from->npages)
		return -EINVAL;
	for (i = 0; i < (into->npages + 63) / 64; i++) {
		into->bits[i] |= from->bits[i];
		n += (uint64_t)__builtin_popcountll(into->bits[i]);
	}
	into->ndirty = n;
	return 0;
}

void remus_dirty_set_clear(struct remus_dirty_set *set)
{
	if (set->bits)
		memset(set->bits, 0, (size_t)((set->npages + 63) / 64) * sizeof(set->bits[0]));
	set->ndirty = 0;
}

uint64_t remus_dirty_set_common(const struct remus_dirty_set *a,
				const struct remus_dirty_set *b)
{
	uint64_t i, n = 0;

	if (a->npages != b->npages)
		return 0;
	for (i = 0; i < (a->npages + 63) / 64; i++)
		n += (uint64_t)__builtin_popcountll(a->bits[i] & b->bits[i]);
	return n;
}

const char *remus_dirty_kind_name(enum remus_dirty_kind kind)
{
	switch (kind) {
	case REMUS_DIRTY_FULL:
		return "full";
	case REMUS_DIRTY_FUSE:
		return "fuse";
	case REMUS_DIRTY_RAMFS:
		return "ramfs";
	}
	return "?";
}

int remus_dirty_open(const struct remus_dirty_opts *opts,
		     struct remus_dirty **out)
{
	struct remus_dirty *d = NULL;
	int rc;

	*out = NULL;
	if (opts->kind == REMUS_DIRTY_RAMFS) {
		if (!opts->ram_path || opts->size % REMUS_DIRTY_PAGE_SIZE != 0)
			return -EINVAL;
	} else if (opts->size == 0 ||
		   opts->size % REMUS_DIRTY_PAGE_SIZE != 0 ||
		   (opts->kind == REMUS_DIRTY_FUSE && !opts->mount_dir) ||
		   (opts->kind != REMUS_DIRTY_FUSE &&
		    opts->kind != REMUS_DIRTY_FULL)) {
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->kind = opts->kind;
	d->size = opts->size;
	d->npages = opts->size / REMUS_DIRTY_PAGE_SIZE;
	d->fuse.fuse_fd = d->fuse.stop_fd = d->fuse.flusher_fd = -1;
	d->fuse.flusher_pid = -1;
	if (d->kind == REMUS_DIRTY_RAMFS) {
		rc = remus_ramfs_client_open(&d->ramfs, opts->ram_path,
					     opts->ramfs_socket, opts->size);
		if (rc < 0)
			goto out;
		d->size = d->ramfs.size;
		d->npages = d->size / REMUS_DIRTY_PAGE_SIZE;
		/* The first epoch starts now (dirty.h). */
		rc = remus_dirty_start(d);
		if (rc < 0) {
			remus_ramfs_client_close(&d->ramfs);
			goto out;
		}
	} else 	if (d->kind == REMUS_DIRTY_FULL) {
		if (opts->ram_fd >= 0) {
			void *m = mmap(NULL, d->size, PROT_READ, MAP_SHARED,
				       opts->ram_fd, 0);

			if (m == MAP_FAILED) {
				rc = -errno;
				goto out;
			}
			d->ram = m;
		}
	} else {
		rc = remus_fuse_server_open(&d->fuse, opts->mount_dir,
					    opts->size, opts->allow_other,
					    opts->raise_bdi_limits);
		if (rc < 0)
			goto out;
	}
	*out = d;
	d = NULL;
	rc = 0;
out:
	free(d);
	return rc;
}

int remus_dirty_collect(struct remus_dirty *d, struct remus_dirty_set *set)
{
	uint64_t *mine;
	int rc;

	if (set->npages != d->npages)
		return -EINVAL;
	if (d->kind == REMUS_DIRTY_FULL) {
		memset(set->bits, 0xff, words(d->npages) * sizeof(uint64_t));
		if (d->npages % 64)
			set->bits[d->npages / 64] =
				(UINT64_C(1) << (d->npages % 64)) - 1;
		set->ndirty = d->npages;
		goto done;
	}
	if (d->kind == REMUS_DIRTY_RAMFS) {
		int64_t n = remus_ramfs_client_collect(&d->ramfs, set->bits,
						       d->npages);

		if (n < 0)
			return (int)n;
		set->ndirty = (uint64_t)n;
		goto done;
	}
	rc = remus_fuse_server_flush(&d->fuse);
	if (rc < 0)
		return rc;
	/* Cleared outside the lock; swapped in under it, so a WRITE the
	 * server handles from now on lands in the next epoch's bitmap. */
	memset(set->bits, 0, words(d->npages) * sizeof(uint64_t));
	pthread_mutex_lock(&d->fuse.ram.lock);
	mine = d->fuse.ram.bits;
	d->fuse.ram.bits = set->bits;
	set->bits = mine;
	set->ndirty = d->fuse.ram.ndirty;
	d->fuse.ram.ndirty = 0;
	pthread_mutex_unlock(&d->fuse.ram.lock);
done:
	d->collects++;
	d->pages_reported += set->ndirty;
	return 0;
}

int remus_dirty_start(struct remus_dirty *d)
{
	struct remus_dirty_set scratch;
	int rc;

	if (d->kind == REMUS_DIRTY_FULL)
		return 0;
	rc = remus_dirty_set_init(&scratch, d->npages);
	if (rc < 0)
		return rc;
	rc = remus_dirty_collect(d, &scratch);
	if (rc == 0) { /* forgotten: not a collect the caller saw */
		d->collects--;
		d->pages_reported -= scratch.ndirty;
	}
	remus_dirty_set_release(&scratch);
	return rc;
}

void remus_dirty_close(struct remus_dirty *d)
{
	if (!d)
		return;
	if (d->kind == REMUS_DIRTY_FUSE)
		remus_fuse_server_close(&d->fuse);
	if (d->kind == REMUS_DIRTY_RAMFS)
		remus_ramfs_client_close(&d->ramfs);
	if (d->ram)
		munmap((void *)d->ram, d->size);
	free(d);
}

enum remus_dirty_kind remus_dirty_kind(const struct remus_dirty *d)
{
	return d->kind;
}

uint64_t remus_dirty_npages(const struct remus_dirty *d)
{
	return d->npages;
}

const char *remus_dirty_ram_path(const struct remus_dirty *d)
{
	if (d->kind == REMUS_DIRTY_RAMFS)
		return d->ramfs.path;
	return d->kind == REMUS_DIRTY_FUSE ? d->fuse.path : NULL;
}

const uint8_t *remus_dirty_ram(const struct remus_dirty *d)
{
	if (d->kind == REMUS_DIRTY_RAMFS)
		return d->ramfs.content;
	return d->kind == REMUS_DIRTY_FUSE ? d->fuse.ram.copy : d->ram;
}

void remus_dirty_get_stats(const struct remus_dirty *d,
			   struct remus_dirty_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->collects = d->collects;
	out->pages_reported = d->pages_reported;
	if (d->kind != REMUS_DIRTY_FUSE)
		return;
	pthread_mutex_lock((pthread_mutex_t *)&d->fuse.ram.lock);
	out->write_requests = d->fuse.ram.write_requests;
	out->write_bytes = d->fuse.ram.write_bytes;
	out->read_requests = d->fuse.ram.read_requests;
	out->read_bytes = d->fuse.ram.read_bytes;
	pthread_mutex_unlock((pthread_mutex_t *)&d->fuse.ram.lock);
}
