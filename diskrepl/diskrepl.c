// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskrepl roles: NBD exports over raw images, forwarding on the primary,
 * journalled epochs on the standby, and the hash-compare resync (see
 * diskrepl.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include "diskrepl/diskrepl.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/loop.h"
#include "repl/repl.h"
#include "common/wire.h"
#include "diskrepl/extent.h"
#include "diskrepl/fileio.h"
#include "diskrepl/image.h"
#include "diskrepl/journal.h"
#include "diskrepl/nbd_server.h"

#define LOG "diskrepl"
#define EXTENT_DEFAULT (64u << 10)
/* Resync: bytes read and hashed per loop slice, and the link backlog
 * above which it waits for the link to drain. */
#define RESYNC_SLICE (8u << 20)
#define RESYNC_HIGH_WATER ((size_t)32 << 20)

struct disk {
	struct remus_diskrepl *dr; /* back pointer, borrowed */
	uint16_t index;
	char *name, *image_path, *socket_path; /* owned */
	struct remus_image *im;                /* owned */
	struct remus_nbd_server *nbd;          /* owned */
	uint64_t size, nextents;
	/* standby: hash of every extent of the committed image, and which
	 * extents the open epoch touches (rehashed at commit) */
	XXH128_hash_t *hashes;                 /* owned, nextents */
	struct remus_extent_map touched;
	/* primary: the standby's hashes for the resync */
	XXH128_hash_t *peer;                   /* owned, nextents */
	uint64_t peer_have;                    /* extents received */
	/* counters */
	uint64_t forwarded_ops, forwarded_bytes, local_only_ops, guest_writes_on_standby;
	uint64_t resync_sent_extents, resync_zero_extents, resync_compared;
};

struct remus_diskrepl {
	struct remus_loop *loop;
	bool standby;
	uint32_t extent;
	struct disk *disks;
	size_t ndisks;
	struct remus_journal *journal; /* standby, owned */
	struct remus_image **ims;      /* owned array (the journal borrows it) */
	char *journal_path;

	remus_diskrepl_forward_cb *forward;
	remus_diskrepl_backlog_cb *backlog;
	void *fwd_opaque;

	/* resync (primary) */
	bool hashes_end;
	bool resyncing;
	size_t rs_disk;
	uint64_t rs_extent;
	uint64_t rs_t0_ms, rs_last_log_ms;
	struct remus_timer rs_timer; /* next resync slice */
	remus_diskrepl_done_cb *rs_done;
	void *rs_opaque;
	uint8_t *rs_buf; /* owned, extent bytes */
	char rs_why[256];
	double last_resync_ms;
	uint64_t last_resync_bytes;

	/* standby */
	uint64_t epochs_committed;
	double last_commit_ms;
};

/* ---- NBD ops ----------------------------------------------------------- */

static int forward(struct disk *d, enum remus_repl_disk_op op, uint64_t off, uint32_t len,
		   const void *data)
{
	struct remus_diskrepl *dr = d->dr;
	int rc;

	if (dr->standby) {
		/* Only the guest after a failover writes here; its writes are
		 * this host's alone. */
		d->guest_writes_on_standby++;
		return 0;
	}
	if (!dr->forward) {
		d->local_only_ops++;
		return 0;
	}
	rc = dr->forward(dr->fwd_opaque, d->index, op, off, len, data);
	if (rc == 0) {
		d->forwarded_ops++;
		if (op == REMUS_REPL_DISK_WRITE)
			d->forwarded_bytes += len;
	} else {
		d->local_only_ops++;
	}
	/* The write is done locally either way: a lost session never fails
	 * the guest's I/O; the next session's resync carries it. */
	return 0;
}

/* Every guest change to a disk, whichever NBD command asked for it: done
 * on the local image (durably with FUA), then forwarded as @op. */
static int modify(struct disk *d, enum remus_repl_disk_op op, uint64_t off, uint32_t len,
		  const void *buf, uint32_t flags)
{
	int rc;

	switch (op) {
	case REMUS_REPL_DISK_WRITE:
		rc = remus_image_write(d->im, off, len, buf);
		break;
	case REMUS_REPL_DISK_ZERO:
		rc = remus_image_zero(d->im, off, len, !(flags & REMUS_NBD_CMD_FLAG_NO_HOLE));
		break;
	case REMUS_REPL_DISK_TRIM:
		rc = remus_image_trim(d->im, off, len);
		break;
	default:
		return -EINVAL;
	}
	if (rc == 0 && (flags & REMUS_NBD_CMD_FLAG_FUA))
		rc = remus_image_flush(d->im);
	return rc ? rc : forward(d, op, off, len, buf);
}

static int op_read(void *opaque, uint64_t off, uint32_t len, void *buf)
{
	struct disk *d = opaque;

	return remus_image_read(d->im, off, len, buf);
}

/* The NBD commands that change a disk, mapped to their disk op. */
static int op_write(void *opaque, uint64_t off, uint32_t len, const void *buf, uint32_t flags)
{
	return modify(opaque, REMUS_REPL_DISK_WRITE, off, len, buf, flags);
}

static int op_zero(void *opaque, uint64_t off, uint32_t len, uint32_t flags)
{
	return modify(opaque, REMUS_REPL_DISK_ZERO, off, len, NULL, flags);
}

static int op_trim(void *opaque, uint64_t off, uint32_t len, uint32_t flags)
{
	return modify(opaque, REMUS_REPL_DISK_TRIM, off, len, NULL, flags);
}

static int op_flush(void *opaque)
{
	struct disk *d = opaque;

	return remus_image_flush(d->im);
}

static const struct remus_nbd_ops nbd_ops = {
	.read = op_read,
	.write = op_write,
	.write_zeroes = op_zero,
	.trim = op_trim,
	.flush = op_flush,
};

/* ---- setup ------------------------------------------------------------- */

static int disk_open(struct remus_diskrepl *dr, struct disk *d,
		     const struct remus_diskrepl_disk *c, uint64_t create_size)
{
	int rc;

	d->dr = dr;
	d->name = strdup(c->name);
	d->image_path = strdup(c->image);
	d->socket_path = strdup(c->socket);
	if (!d->name || !d->image_path || !d->socket_path)
		return -ENOMEM;
	rc = remus_image_open(c->image, create_size != 0, create_size, &d->im);
	if (rc < 0) {
		remus_err(LOG, "disk %s: cannot open image %s: %s%s", c->name, c->image,
			  strerror(-rc), rc == -ENOENT ? " (create it, e.g. with "
			  "qemu-img create -f raw, or truncate -s SIZE)" : "");
		return rc;
	}
	d->size = remus_image_size(d->im);
	d->nextents = remus_image_extent_count(d->im, dr->extent);
	if (d->size == 0) {
		remus_err(LOG, "disk %s: image %s is empty", c->name, c->image);
		return -EINVAL;
	}
	rc = remus_extent_map_init(&d->touched, d->size, dr->extent);
	if (rc < 0)
		return rc;
	return 0;
}

static int disk_serve(struct remus_diskrepl *dr, struct disk *d)
{
	struct remus_nbd_export ex = {
		.name = d->name,
		.description = "remus-qemu replicated disk",
		.size = d->size,
		.ops = &nbd_ops,
		.opaque = d,
	};
	int rc;

	rc = remus_nbd_server_new(dr->loop, d->socket_path, &d->nbd);
	if (rc == 0)
		rc = remus_nbd_server_add_export(d->nbd, &ex);
	if (rc < 0)
		remus_err(LOG, "disk %s: cannot serve %s on %s: %s", d->name, d->image_path,
			  d->socket_path, strerror(-rc));
	else
		remus_info(LOG, "disk %s: serving %s (%" PRIu64 " bytes) as NBD export '%s' "
			   "on %s (%s)", d->name, d->image_path, d->size, d->name,
			   d->socket_path, dr->standby ? "standby" : "primary");
	return rc;
}

static void resync_step(struct remus_loop *loop, void *opaque);

int remus_diskrepl_new(struct remus_loop *loop, const struct remus_diskrepl_config *cfg,
		       struct remus_diskrepl **out)
{
	struct remus_diskrepl *dr;
	struct remus_image **ims = NULL;
	uint64_t recovered = UINT64_MAX;
	int rc = -ENOMEM;

	if (cfg->ndisks == 0 || cfg->ndisks > REMUS_REPL_MAX_DISKS)
		return -EINVAL;
	dr = calloc(1, sizeof(*dr));
	if (!dr)
		return -ENOMEM;
	dr->loop = loop;
	remus_timer_init(&dr->rs_timer, loop, resync_step, dr);
	dr->standby = cfg->standby;
	dr->extent = cfg->extent_size ? cfg->extent_size : EXTENT_DEFAULT;
	dr->disks = calloc(cfg->ndisks, sizeof(*dr->disks));
	ims = dr->ims = calloc(cfg->ndisks, sizeof(*ims));
	if (!dr->disks || !ims)
		goto out;
	dr->ndisks = cfg->ndisks;
	for (size_t i = 0; i < cfg->ndisks; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->disks[i].name, cfg->disks[j].name) == 0) {
				remus_err(LOG, "disk name '%s' given twice", cfg->disks[i].name);
				rc = -EINVAL;
				goto out;
			}
		dr->disks[i].index = (uint16_t)i;
		rc = disk_open(dr, &dr->disks[i], &cfg->disks[i],
			       cfg->standby ? cfg->create_size : 0);
		if (rc < 0)
			goto out;
		ims[i] = dr->disks[i].im;
	}
	if (dr->standby) {
		if (cfg->journal) {
			dr->journal_path = strdup(cfg->journal);
		} else if (asprintf(&dr->journal_path, "%s.journal", cfg->disks[0].image) < 0) {
			dr->journal_path = NULL;
		}
		if (!dr->journal_path) {
			rc = -ENOMEM;
			goto out;
		}
		rc = remus_journal_open(dr->journal_path, ims, dr->ndisks, &dr->journal, &recovered);
		if (rc < 0) {
			remus_err(LOG, "cannot open the disk journal %s: %s", dr->journal_path,
				  strerror(-rc));
			goto out;
		}
		if (recovered != UINT64_MAX)
			remus_warn(LOG, "journal %s: epoch %" PRIu64 " was committed but not fully "
				   "applied when this standby stopped; applied it again",
				   dr->journal_path, recovered);
		for (size_t i = 0; i < dr->ndisks; i++) {
			struct disk *d = &dr->disks[i];

			d->hashes = calloc(d->nextents, sizeof(*d->hashes));
			if (!d->hashes) {
				rc = -ENOMEM;
				goto out;
			}
			rc = remus_image_hash_extents(d->im, dr->extent, 0, d->nextents, d->hashes);
			if (rc < 0) {
				remus_err(LOG, "disk %s: cannot read %s to hash it: %s", d->name,
					  d->image_path, strerror(-rc));
				goto out;
			}
		}
	}
	for (size_t i = 0; i < dr->ndisks; i++) {
		rc = disk_serve(dr, &dr->disks[i]);
		if (rc < 0)
			goto out;
	}
	*out = dr;
	dr = NULL;
	rc = 0;
out:
	remus_diskrepl_free(dr);
	return rc;
}

void remus_diskrepl_free(struct remus_diskrepl *dr)
{
	if (!dr)
		return;
	remus_diskrepl_session_end(dr);
	for (size_t i = 0; i < dr->ndisks; i++) {
		struct disk *d = &dr->disks[i];

		remus_nbd_server_free(d->nbd);
		remus_image_free(d->im);
		remus_extent_map_release(&d->touched);
		free(d->hashes);
		free(d->peer);
		free(d->name);
		free(d->image_path);
		free(d->socket_path);
	}
	remus_journal_free(dr->journal);
	free(dr->ims);
	free(dr->journal_path);
	free(dr->disks);
	free(dr->rs_buf);
	free(dr);
}

/* ---- primary: forwarding and resync ------------------------------------ */

void remus_diskrepl_set_forward(struct remus_diskrepl *dr, remus_diskrepl_forward_cb *fn,
				remus_diskrepl_backlog_cb *backlog, void *opaque)
{
	dr->forward = fn;
	dr->backlog = backlog;
	dr->fwd_opaque = opaque;
}

static struct disk *find_disk(struct remus_diskrepl *dr, const struct remus_repl_text *name)
{
	for (size_t i = 0; i < dr->ndisks; i++)
		if (strlen(dr->disks[i].name) == name->len &&
		    memcmp(dr->disks[i].name, name->p, name->len) == 0)
			return &dr->disks[i];
	return NULL;
}

int remus_diskrepl_hashes_msg(struct remus_diskrepl *dr, const struct remus_repl_msg *m)
{
	const struct remus_repl_text *name = &m->u.hashes.name;
	struct disk *d;

	if (dr->standby)
		return -EINVAL;
	if (m->type == REMUS_REPL_DISK_HASHES_END) {
		size_t missing = 0;

		if (m->u.ndisks != dr->ndisks) {
			remus_err(LOG, "the standby has %u disks, this VM %zu: start the standby "
				  "remusd with the same --disk names", m->u.ndisks, dr->ndisks);
			return -EPROTO;
		}
		for (size_t i = 0; i < dr->ndisks; i++)
			if (dr->disks[i].peer_have != dr->disks[i].nextents)
				missing++;
		if (missing) {
			remus_err(LOG, "the standby sent hashes for only part of %zu disk(s)", missing);
			return -EPROTO;
		}
		dr->hashes_end = true;
		return 0;
	}
	if (m->type != REMUS_REPL_DISK_HASHES)
		return -EINVAL;
	d = find_disk(dr, name);
	if (!d) {
		remus_err(LOG, "the standby serves a disk '%.*s' that this VM does not have: "
			  "start both remusd with the same --disk names", (int)name->len, name->p);
		return -EPROTO;
	}
	if (m->u.hashes.size != d->size) {
		remus_err(LOG, "disk %s: the standby's image has %" PRIu64 " bytes, ours %" PRIu64
			  ": make it the same size (truncate -s %" PRIu64 " IMAGE on the standby)",
			  d->name, m->u.hashes.size, d->size, d->size);
		return -EPROTO;
	}
	if (m->u.hashes.extent_size != dr->extent) {
		remus_err(LOG, "disk %s: the standby hashes %u-byte extents, we use %u", d->name,
			  m->u.hashes.extent_size, dr->extent);
		return -EPROTO;
	}
	if (m->u.hashes.first != d->peer_have ||
	    m->u.hashes.count > d->nextents - d->peer_have) {
		remus_err(LOG, "disk %s: the standby's hashes for extents %" PRIu64 "+%u are out "
			  "of order (have %" PRIu64 " of %" PRIu64 ")", d->name, m->u.hashes.first,
			  m->u.hashes.count, d->peer_have, d->nextents);
		return -EPROTO;
	}
	if (!d->peer) {
		d->peer = calloc(d->nextents, sizeof(*d->peer));
		if (!d->peer)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->u.hashes.count; i++) {
		const uint8_t *p = m->u.hashes.p + (size_t)i * 16u;

		d->peer[d->peer_have + i].high64 = remus_get_be64(p);
		d->peer[d->peer_have + i].low64 = remus_get_be64(p + 8);
	}
	d->peer_have += m->u.hashes.count;
	return 0;
}

static void resync_finish(struct remus_diskrepl *dr, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void resync_finish(struct remus_diskrepl *dr, int rc, const char *fmt, ...)
{
	remus_diskrepl_done_cb *done = dr->rs_done;
	void *opaque = dr->rs_opaque;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dr->rs_why, sizeof(dr->rs_why), fmt, ap);
	va_end(ap);
	dr->resyncing = false;
	dr->rs_done = NULL;
	remus_timer_disarm(&dr->rs_timer);
	if (done)
		done(opaque, rc, dr->rs_why);
}

static void resync_schedule(struct remus_diskrepl *dr, unsigned ms)
{
	remus_timer_arm(&dr->rs_timer, ms);
}

/* One slice: compare extents until RESYNC_SLICE bytes were read or the
 * link is congested, then yield to the loop. */
static void resync_step(struct remus_loop *loop, void *opaque)
{
	struct remus_diskrepl *dr = opaque;
	uint64_t budget = RESYNC_SLICE, now;
	int rc;

	(void)loop;
	while (dr->rs_disk < dr->ndisks) {
		struct disk *d = &dr->disks[dr->rs_disk];
		uint64_t off;
		uint32_t len;
		XXH128_hash_t h;

		if (dr->rs_extent >= d->nextents) {
			remus_info(LOG, "disk %s: resync compared %" PRIu64 " extents, sent %" PRIu64
				   " (%" PRIu64 " as zeroes)", d->name, d->resync_compared,
				   d->resync_sent_extents, d->resync_zero_extents);
			dr->rs_disk++;
			dr->rs_extent = 0;
			continue;
		}
		if (budget == 0 || (dr->backlog && dr->backlog(dr->fwd_opaque) > RESYNC_HIGH_WATER)) {
			resync_schedule(dr, budget == 0 ? 0 : 5);
			goto progress;
		}
		off = dr->rs_extent * dr->extent;
		len = d->size - off < dr->extent ? (uint32_t)(d->size - off) : dr->extent;
		rc = remus_image_read(d->im, off, len, dr->rs_buf);
		if (rc < 0) {
			resync_finish(dr, rc, "disk %s: cannot read %s at %" PRIu64 ": %s", d->name,
				      d->image_path, off, strerror(-rc));
			return;
		}
		budget = budget > len ? budget - len : 0;
		h = XXH3_128bits(dr->rs_buf, len);
		d->resync_compared++;
		if (!XXH128_isEqual(h, d->peer[dr->rs_extent])) {
			bool zero = remus_all_zero(dr->rs_buf, len);

			rc = dr->forward(dr->fwd_opaque, d->index,
					 zero ? REMUS_REPL_DISK_ZERO : REMUS_REPL_DISK_WRITE, off, len,
					 zero ? NULL : dr->rs_buf);
			if (rc < 0) {
				resync_finish(dr, rc, "disk %s: cannot send extent %" PRIu64 ": %s",
					      d->name, dr->rs_extent, strerror(-rc));
				return;
			}
			d->resync_sent_extents++;
			d->resync_zero_extents += zero;
			dr->last_resync_bytes += zero ? 0 : len;
		}
		dr->rs_extent++;
	}
	dr->last_resync_ms = (double)(remus_now_ms() - dr->rs_t0_ms);
	remus_info(LOG, "resync done in %.0f ms: %" PRIu64 " bytes sent", dr->last_resync_ms,
		   dr->last_resync_bytes);
	resync_finish(dr, 0, "done");
	return;
progress:
	now = remus_now_ms();
	if (now - dr->rs_last_log_ms >= 1000) {
		uint64_t done = 0, total = 0;

		for (size_t i = 0; i < dr->ndisks; i++) {
			total += dr->disks[i].nextents;
			done += i < dr->rs_disk ? dr->disks[i].nextents
			      : i == dr->rs_disk ? dr->rs_extent : 0;
		}
		dr->rs_last_log_ms = now;
		remus_info(LOG, "resync: %.0f%% of extents compared, %" PRIu64 " bytes sent so far",
			   total ? 100.0 * (double)done / (double)total : 100.0,
			   dr->last_resync_bytes);
	}
}

int remus_diskrepl_resync_start(struct remus_diskrepl *dr, remus_diskrepl_done_cb *done,
				void *opaque)
{
	if (dr->standby || !dr->forward)
		return -EINVAL;
	if (!dr->hashes_end) {
		remus_err(LOG, "the standby sent no disk hashes: start it with the same --disk "
			  "options as the primary");
		return -EPROTO;
	}
	if (!dr->rs_buf && !(dr->rs_buf = malloc(dr->extent)))
		return -ENOMEM;
	for (size_t i = 0; i < dr->ndisks; i++)
		dr->disks[i].resync_sent_extents = dr->disks[i].resync_zero_extents =
			dr->disks[i].resync_compared = 0;
	dr->resyncing = true;
	dr->rs_disk = 0;
	dr->rs_extent = 0;
	dr->rs_done = done;
	dr->rs_opaque = opaque;
	dr->rs_t0_ms = dr->rs_last_log_ms = remus_now_ms();
	dr->last_resync_bytes = 0;
	remus_info(LOG, "resync: comparing %zu disk(s) with the standby's", dr->ndisks);
	resync_schedule(dr, 0);
	return -EINPROGRESS;
}

void remus_diskrepl_session_end(struct remus_diskrepl *dr)
{
	remus_timer_disarm(&dr->rs_timer);
	if (dr->resyncing)
		remus_warn(LOG, "resync stopped: the session ended");
	dr->resyncing = false;
	dr->rs_done = NULL;
	dr->hashes_end = false;
	for (size_t i = 0; i < dr->ndisks; i++) {
		free(dr->disks[i].peer);
		dr->disks[i].peer = NULL;
		dr->disks[i].peer_have = 0;
	}
}

int remus_diskrepl_become_primary(struct remus_diskrepl *dr)
{
	int rc;

	if (!dr->standby)
		return 0;
	rc = remus_journal_discard(dr->journal);
	if (rc < 0) {
		remus_err(LOG, "cannot switch to the primary role: the journal %s: %s",
			  dr->journal_path, strerror(-rc));
		return rc;
	}
	remus_journal_free(dr->journal);
	dr->journal = NULL;
	dr->standby = false;
	remus_info(LOG, "disks switch to the primary role: writes are replicated from now on");
	return 0;
}

/* ---- standby ----------------------------------------------------------- */

int remus_diskrepl_put_hashes(struct remus_diskrepl *dr, struct remus_buf *out)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_DISK_HASHES };
	uint8_t *buf;
	int rc = 0;

	buf = malloc((size_t)REMUS_REPL_HASHES_MAX * 16u);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < dr->ndisks && rc == 0; i++) {
		struct disk *d = &dr->disks[i];

		m.u.hashes.disk = d->index;
		m.u.hashes.name.p = d->name;
		m.u.hashes.name.len = strlen(d->name);
		m.u.hashes.size = d->size;
		m.u.hashes.extent_size = dr->extent;
		for (uint64_t first = 0; first < d->nextents && rc == 0;
		     first += REMUS_REPL_HASHES_MAX) {
			uint64_t n = d->nextents - first;

			if (n > REMUS_REPL_HASHES_MAX)
				n = REMUS_REPL_HASHES_MAX;
			for (uint64_t k = 0; k < n; k++) {
				remus_put_be64(buf + k * 16, d->hashes[first + k].high64);
				remus_put_be64(buf + k * 16 + 8, d->hashes[first + k].low64);
			}
			m.u.hashes.first = first;
			m.u.hashes.count = (uint32_t)n;
			m.u.hashes.p = buf;
			rc = remus_repl_encode(out, &m);
		}
	}
	if (rc == 0) {
		struct remus_repl_msg e = { .type = REMUS_REPL_DISK_HASHES_END };

		e.u.ndisks = (uint16_t)dr->ndisks;
		rc = remus_repl_encode(out, &e);
	}
	free(buf);
	return rc;
}

int remus_diskrepl_standby_op(struct remus_diskrepl *dr, const struct remus_repl_msg *m)
{
	struct disk *d;
	int rc;

	if (!dr->standby || m->type != REMUS_REPL_EPOCH_DISK)
		return -EINVAL;
	if (m->u.disk.disk >= dr->ndisks) {
		remus_err(LOG, "epoch %" PRIu64 ": write to disk %u, this standby has %zu",
			  m->seq, m->u.disk.disk, dr->ndisks);
		return -EPROTO;
	}
	d = &dr->disks[m->u.disk.disk];
	if (m->u.disk.offset > d->size || m->u.disk.length > d->size - m->u.disk.offset) {
		remus_err(LOG, "epoch %" PRIu64 ": disk %s: write at %" PRIu64 "+%u is beyond "
			  "its %" PRIu64 " bytes", m->seq, d->name, m->u.disk.offset,
			  m->u.disk.length, d->size);
		return -EPROTO;
	}
	/* The decoder admitted only valid ops; the journal checks again. */
	rc = remus_journal_append(dr->journal, m->seq, m->u.disk.disk,
				  (enum remus_repl_disk_op)m->u.disk.op, m->u.disk.offset,
				  m->u.disk.length, m->u.disk.p);
	if (rc < 0) {
		remus_err(LOG, "epoch %" PRIu64 ": cannot journal a write to disk %s in %s: %s",
			  m->seq, d->name, dr->journal_path, strerror(-rc));
		return rc;
	}
	remus_extent_map_set_range(&d->touched, m->u.disk.offset, m->u.disk.length);
	return 0;
}

int remus_diskrepl_standby_commit(struct remus_diskrepl *dr, uint64_t epoch)
{
	uint64_t t0 = remus_now_ns();
	int rc;

	if (!dr->standby)
		return -EINVAL;
	rc = remus_journal_commit(dr->journal, epoch);
	if (rc < 0) {
		remus_err(LOG, "epoch %" PRIu64 ": cannot commit the disk journal %s: %s", epoch,
			  dr->journal_path, strerror(-rc));
		return rc;
	}
	/* The committed image changed where the epoch wrote: keep the hashes
	 * the next resync sends right. */
	for (size_t i = 0; i < dr->ndisks && rc == 0; i++) {
		struct disk *d = &dr->disks[i];

		for (uint64_t x = remus_extent_map_next(&d->touched, 0); x < d->nextents && rc == 0;
		     x = remus_extent_map_next(&d->touched, x + 1))
			rc = remus_image_hash_extents(d->im, dr->extent, x, 1, &d->hashes[x]);
		remus_extent_map_clear_all(&d->touched);
	}
	dr->epochs_committed++;
	dr->last_commit_ms = (double)(remus_now_ns() - t0) / 1e6;
	return rc;
}

void remus_diskrepl_standby_discard(struct remus_diskrepl *dr)
{
	int rc;

	if (!dr->standby)
		return;
	rc = remus_journal_discard(dr->journal);
	if (rc < 0)
		remus_err(LOG, "cannot discard the uncommitted epoch in %s: %s", dr->journal_path,
			  strerror(-rc));
	for (size_t i = 0; i < dr->ndisks; i++)
		remus_extent_map_clear_all(&dr->disks[i].touched);
}

/* ---- status ------------------------------------------------------------ */

struct json_object *remus_diskrepl_status_json(const struct remus_diskrepl *dr)
{
	struct json_object *a = json_object_new_array();

	if (!a)
		return NULL;
	for (size_t i = 0; i < dr->ndisks; i++) {
		const struct disk *d = &dr->disks[i];
		struct json_object *o = json_object_new_object();
		struct remus_nbd_stats st = { 0 };

		if (d->nbd)
			remus_nbd_server_get_stats(d->nbd, &st);
		json_object_object_add(o, "name", json_object_new_string(d->name));
		json_object_object_add(o, "image", json_object_new_string(d->image_path));
		json_object_object_add(o, "socket", json_object_new_string(d->socket_path));
		json_object_object_add(o, "size", json_object_new_int64((int64_t)d->size));
		json_object_object_add(o, "role", json_object_new_string(dr->standby ? "standby"
									      : "primary"));
		json_object_object_add(o, "nbd_clients", json_object_new_int64((int64_t)st.active_clients));
		json_object_object_add(o, "writes", json_object_new_int64((int64_t)st.writes));
		json_object_object_add(o, "bytes_written", json_object_new_int64((int64_t)st.bytes_written));
		if (dr->standby) {
			json_object_object_add(o, "epochs_committed",
					       json_object_new_int64((int64_t)dr->epochs_committed));
			json_object_object_add(o, "last_commit_ms",
					       json_object_new_double(dr->last_commit_ms));
			json_object_object_add(o, "guest_writes_here",
					       json_object_new_int64((int64_t)d->guest_writes_on_standby));
		} else {
			json_object_object_add(o, "forwarded_ops",
					       json_object_new_int64((int64_t)d->forwarded_ops));
			json_object_object_add(o, "forwarded_bytes",
					       json_object_new_int64((int64_t)d->forwarded_bytes));
			json_object_object_add(o, "local_only_ops",
					       json_object_new_int64((int64_t)d->local_only_ops));
			json_object_object_add(o, "resyncing", json_object_new_boolean(dr->resyncing));
			json_object_object_add(o, "resync_compared",
					       json_object_new_int64((int64_t)d->resync_compared));
			json_object_object_add(o, "resync_sent_extents",
					       json_object_new_int64((int64_t)d->resync_sent_extents));
			json_object_object_add(o, "last_resync_ms",
					       json_object_new_double(dr->last_resync_ms));
			json_object_object_add(o, "last_resync_bytes",
					       json_object_new_int64((int64_t)dr->last_resync_bytes));
		}
		json_object_array_add(a, o);
	}
	return a;
}
