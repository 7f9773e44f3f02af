// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The per-epoch queue of held frames (see queue.h).  Buckets form a singly
 * linked list, oldest first; each bucket's frames form a singly linked
 * list in push order.  Everything is O(1) per frame except commit's search
 * for its label, which is linear in the number of unacknowledged epochs
 * (a handful).
 */
#include "netbuffer/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_EPOCH_LIMIT (16u << 20)

struct remus_nbq_frame {
	struct remus_nbq_frame *next; /* owned */
	uint64_t enqueued_ns;
	uint32_t len, vnet_hdr_len;
	unsigned nic;
	uint8_t data[];
};

struct remus_nbq_bucket {
	struct remus_nbq_bucket *next; /* owned */
	uint64_t label;                /* valid once closed */
	bool closed;
	struct remus_nbq_frame *head;  /* owned list */
	struct remus_nbq_frame **tailp;
	uint64_t frames, bytes;
};

void remus_nbq_init(struct remus_nbq *q, size_t epoch_limit,
		    remus_nbq_release_cb *release, void *opaque)
{
	memset(q, 0, sizeof(*q));
	q->epoch_limit = epoch_limit ? epoch_limit : DEFAULT_EPOCH_LIMIT;
	q->release = release;
	q->opaque = opaque;
}

static void bucket_free(struct remus_nbq_bucket *b)
{
	struct remus_nbq_frame *f, *next;

	for (f = b->head; f; f = next) {
		next = f->next;
		free(f);
	}
	free(b);
}

void remus_nbq_release(struct remus_nbq *q)
{
	struct remus_nbq_bucket *b, *next;

	for (b = q->head; b; b = next) {
		next = b->next;
		bucket_free(b);
	}
	q->head = q->tail = NULL;
	q->st.held_frames = q->st.held_bytes = q->st.held_epochs = 0;
}

static struct remus_nbq_bucket *bucket_new(void)
{
	struct remus_nbq_bucket *b = calloc(1, sizeof(*b));

	if (b)
		b->tailp = &b->head;
	return b;
}

/* The open bucket, created if there is none.  NULL if out of memory. */
static struct remus_nbq_bucket *open_bucket(struct remus_nbq *q)
{
	struct remus_nbq_bucket *b;

	if (q->tail && !q->tail->closed)
		return q->tail;
	b = bucket_new();
	if (!b)
		return NULL;
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
	return b;
}

static void record_latency(struct remus_nbq *q, uint64_t ns)
{
	q->lat_ns[q->lat_total % REMUS_NBQ_LATENCY_WINDOW] = ns;
	q->lat_total++;
}

static void pass_out(struct remus_nbq *q, unsigned nic, const uint8_t *data,
		     uint32_t len, uint32_t vnet_hdr_len)
{
	if (q->release)
		q->release(q->opaque, nic, data, len, vnet_hdr_len);
}

/* Unlinks the oldest bucket and releases (or drops) its frames. */
static void pop_bucket(struct remus_nbq *q, bool send, uint64_t now_ns)
{
	struct remus_nbq_bucket *b = q->head;
	struct remus_nbq_frame *f, *next;

	q->head = b->next;
	if (!q->head)
		q->tail = NULL;
	if (b->closed)
		q->st.held_epochs--;
	for (f = b->head; f; f = next) {
		next = f->next;
		if (send) {
			/* A clock that went backwards (tests) counts as 0. */
			record_latency(q, now_ns > f->enqueued_ns ? now_ns - f->enqueued_ns : 0);
			q->st.released_frames++;
			q->st.released_bytes += f->len;
			pass_out(q, f->nic, f->data, f->len, f->vnet_hdr_len);
		} else {
			q->st.dropped_teardown++;
		}
		free(f);
	}
	q->st.held_frames -= b->frames;
	q->st.held_bytes -= b->bytes;
	free(b);
}

int remus_nbq_push(struct remus_nbq *q, unsigned nic, const uint8_t *data, uint32_t len,
		   uint32_t vnet_hdr_len, uint64_t now_ns)
{
	struct remus_nbq_bucket *b;
	struct remus_nbq_frame *f;

	if (q->mode == REMUS_NBQ_PASS) {
		q->st.passthrough_frames++;
		q->st.passthrough_bytes += len;
		pass_out(q, nic, data, len, vnet_hdr_len);
		return 0;
	}
	if (q->mode == REMUS_NBQ_DROP) {
		q->st.dropped_teardown++;
		return 0;
	}
	b = open_bucket(q);
	if (!b) {
		q->st.dropped_overflow++;
		return -ENOMEM;
	}
	if (len > q->epoch_limit - b->bytes) {
		q->st.dropped_overflow++;
		return -ENOBUFS;
	}
	f = malloc(sizeof(*f) + len);
	if (!f) {
		q->st.dropped_overflow++;
		return -ENOMEM;
	}
	f->next = NULL;
	f->enqueued_ns = now_ns;
	f->len = len;
	f->vnet_hdr_len = vnet_hdr_len;
	f->nic = nic;
	memcpy(f->data, data, len);
	*b->tailp = f;
	b->tailp = &f->next;
	b->frames++;
	b->bytes += len;
	q->st.queued_frames++;
	q->st.queued_bytes += len;
	q->st.held_frames++;
	q->st.held_bytes += len;
	if (q->st.held_bytes > q->st.max_held_bytes)
		q->st.max_held_bytes = q->st.held_bytes;
	return 0;
}

int remus_nbq_barrier(struct remus_nbq *q, uint64_t label)
{
	struct remus_nbq_bucket *b;

	if (q->mode == REMUS_NBQ_HOLD) {
		b = open_bucket(q);
		if (!b)
			return -ENOMEM;
		b->closed = true;
		b->label = label;
		q->st.held_epochs++;
	}
	q->st.barriers++;
	return 0;
}

int remus_nbq_commit(struct remus_nbq *q, uint64_t label, uint64_t now_ns)
{
	struct remus_nbq_bucket *b, *match = NULL;
	int n = 0, count = 0;

	for (b = q->head; b && b->closed; b = b->next) {
		n++;
		if (b->label == label) {
			match = b;
			count = n;
		}
	}
	if (!match)
		return -ENOENT;
	for (n = 0; n < count; n++)
		pop_bucket(q, true, now_ns);
	q->st.commits++;
	return count;
}

void remus_nbq_flush(struct remus_nbq *q, uint64_t now_ns)
{
	while (q->head)
		pop_bucket(q, true, now_ns);
}

void remus_nbq_drop(struct remus_nbq *q)
{
	while (q->head)
		pop_bucket(q, false, 0);
}

void remus_nbq_set_mode(struct remus_nbq *q, enum remus_nbq_mode mode, uint64_t now_ns)
{
	if (mode == REMUS_NBQ_PASS)
		remus_nbq_flush(q, now_ns);
	else if (mode == REMUS_NBQ_DROP)
		remus_nbq_drop(q);
	q->mode = mode;
}

size_t remus_nbq_closed(const struct remus_nbq *q)
{
	return (size_t)q->st.held_epochs;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void remus_nbq_get_stats(const struct remus_nbq *q, struct remus_netbuffer_stats *st)
{
	size_t n = q->lat_total < REMUS_NBQ_LATENCY_WINDOW ? (size_t)q->lat_total
							   : REMUS_NBQ_LATENCY_WINDOW;
	uint64_t *v;

	st->queued_frames = q->st.queued_frames;
	st->queued_bytes = q->st.queued_bytes;
	st->released_frames = q->st.released_frames;
	st->released_bytes = q->st.released_bytes;
	st->passthrough_frames = q->st.passthrough_frames;
	st->passthrough_bytes = q->st.passthrough_bytes;
	st->dropped_overflow = q->st.dropped_overflow;
	st->dropped_teardown = q->st.dropped_teardown;
	st->held_frames = q->st.held_frames;
	st->held_bytes = q->st.held_bytes;
	st->held_epochs = q->st.held_epochs;
	st->max_held_bytes = q->st.max_held_bytes;
	st->barriers = q->st.barriers;
	st->commits = q->st.commits;
	st->latency_p50_ms = st->latency_max_ms = -1;
	if (n == 0)
		return;
	/* Stats are read rarely (status, tests); sorting a copy of the
	 * window is simpler than keeping an online quantile. */
	v = malloc(n * sizeof(*v));
	if (!v)
		return;
	memcpy(v, q->lat_ns, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_u64);
	st->latency_p50_ms = (double)v[(n - 1) / 2] / 1e6;
	st->latency_max_ms = (double)v[n - 1] / 1e6;
	free(v);
}
