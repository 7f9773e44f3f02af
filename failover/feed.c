// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The standby QEMU's incoming stream (see feed.h for what goes in it and
 * why it can always be cut cleanly).
 *
 * One loop iteration does at most: one read of the return path (dropped),
 * one write(2) of the output buffer, and one pump step that refills the
 * buffer with up to PUMP_STEP bytes of queued epochs (a memcpy from a
 * memory segment or a pread from a spill file).  A direct epoch's chunk
 * is parsed in PIECE steps when its frame arrives: at most one frame
 * (16 MiB) per call, the bound of the link itself.
 */
#include "failover/feed.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"
#include "common/spill.h"
#include "migstream/migstream.h"

#define LOG "standby"
#define PUMP_STEP ((size_t)1 << 20)
#define PIECE ((size_t)256 << 10)
#define PRE_MAX ((size_t)1 << 20)
#define RETRY_MS 50

/* A queued epoch (or piece of the takeover tail). */
struct item {
	struct item *next;
	struct remus_spill st;
};

struct remus_feed {
	struct remus_loop *loop;
	char *path;
	struct remus_feed_hooks hooks;
	int fd;
	bool connected;
	struct remus_timer retry;
	struct remus_buf out;       /* next bytes for QEMU */
	struct item *qhead, *qtail; /* committed epochs not yet in @out */
	unsigned qlen;
	bool expect_close;
	uint64_t written;

	/* the stream */
	bool used;            /* a header and START(ram) reached QEMU */
	bool broken;
	uint32_t sid;         /* with @used: the RAM section id */
	bool ignore_shared;   /* its configuration had x-ignore-shared */

	/* the direct epoch */
	bool direct;
	struct remus_migstream *parser; /* owned while @direct */
	struct remus_buf pre;  /* a new stream's bytes before its MEM_SIZE */
	uint64_t fed;          /* bytes of the epoch given to the parser */
	uint64_t passed;       /* bytes of the epoch passed to @out */
	bool in_section;       /* the last record passed left a section open */
	bool eos_sent;         /* ... and it was that section's EOS */
	char err[256];

	uint64_t direct_bytes, cuts;
};

static void update_events(struct remus_feed *f)
{
	unsigned ev = REMUS_EV_READ;

	if (f->fd < 0)
		return;
	if (!f->connected || remus_buf_len(&f->out))
		ev |= REMUS_EV_WRITE;
	remus_loop_mod_fd(f->loop, f->fd, ev);
}

static void close_fd(struct remus_feed *f)
{
	if (f->fd >= 0) {
		remus_loop_del_fd(f->loop, f->fd);
		close(f->fd);
		f->fd = -1;
	}
	f->connected = false;
}

/* The incoming migration is over (QEMU closed, or we cannot give it the
 * next bytes).  Before anything of a stream was written a restarted QEMU
 * can still take one: connect again instead. */
static void fail(struct remus_feed *f, const char *what, int err)
{
	close_fd(f);
	if (!f->used && !f->written && !f->broken) {
		remus_warn(LOG, "standby QEMU incoming socket %s: %s: %s; connecting again",
			   f->path, what, strerror(err));
		remus_timer_arm(&f->retry, RETRY_MS);
		return;
	}
	f->broken = true;
	if (f->hooks.failed)
		f->hooks.failed(f->hooks.opaque, what, err);
}

static void item_free(struct item *it)
{
	remus_spill_release(&it->st);
	free(it);
}

/* Refills @out from the queue, at most PUMP_STEP bytes per call. */
static int pump(struct remus_feed *f)
{
	size_t room;
	ssize_t r;
	int rc;

	while (f->qhead && remus_buf_len(&f->out) < PUMP_STEP) {
		room = PUMP_STEP - remus_buf_len(&f->out);
		rc = remus_buf_reserve(&f->out, room);
		if (rc < 0)
			return rc;
		r = remus_spill_read(&f->qhead->st, remus_buf_tail(&f->out), room);
		if (r < 0)
			return (int)r;
		remus_buf_commit(&f->out, (size_t)r);
		if ((size_t)r < room) {
			struct item *it = f->qhead;

			/* Read out: its memory and file go now. */
			f->qhead = it->next;
			if (!f->qhead)
				f->qtail = NULL;
			f->qlen--;
			item_free(it);
		} else {
			break;
		}
	}
	return 0;
}

static void on_event(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_feed *f = opaque;
	bool progressed = false;
	char drop[4096];
	ssize_t r;
	int rc;

	if (!f->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			/* QEMU may not be listening yet: try again shortly. */
			close_fd(f);
			if (!remus_timer_armed(&f->retry))
				remus_timer_arm(&f->retry, RETRY_MS);
			return;
		}
		f->connected = true;
		remus_info(LOG, "connected to the standby QEMU's incoming socket %s", f->path);
	}
	if (ev & (REMUS_EV_READ | REMUS_EV_ERROR)) {
		/* The destination's return path: nothing in it matters to us. */
		r = read(fd, drop, sizeof(drop));
		if (r == 0) {
			if (f->expect_close && remus_feed_idle(f)) {
				/* QEMU closes after loading the tail: expected. */
				close_fd(f);
				return;
			}
			fail(f, "closed by QEMU", EPIPE);
			return;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			fail(f, "read", errno);
			return;
		}
	}
	if (ev & REMUS_EV_WRITE && remus_buf_len(&f->out)) {
		r = remus_buf_write_fd(&f->out, fd);
		if (r < 0 && r != -EAGAIN) {
			fail(f, "write", (int)-r);
			return;
		}
		if (r > 0) {
			f->written += (uint64_t)r;
			progressed = true;
			if ((rc = pump(f)) < 0) {
				fail(f, "reading a committed epoch back from its spill file", -rc);
				return;
			}
		}
	}
	update_events(f);
	if (progressed && f->hooks.progress)
		f->hooks.progress(f->hooks.opaque);
}

void remus_feed_connect(struct remus_feed *f)
{
	int fd, rc;

	if (f->fd >= 0 || f->broken)
		return;
	fd = remus_unix_connect(f->path, true);
	if (fd < 0) {
		if (fd != -ENOENT && fd != -ECONNREFUSED)
			remus_warn(LOG, "standby QEMU incoming socket %s: %s; retrying", f->path,
				   strerror(-fd));
		remus_timer_arm(&f->retry, RETRY_MS);
		return;
	}
	f->fd = fd;
	f->connected = false;
	rc = remus_loop_add_fd(f->loop, fd, REMUS_EV_READ | REMUS_EV_WRITE, on_event, f);
	if (rc < 0) {
		/* Like a refused connect: try again shortly. */
		remus_warn(LOG, "cannot watch the standby QEMU's incoming socket %s: %s; "
			   "retrying", f->path, strerror(-rc));
		close(fd);
		f->fd = -1;
		remus_timer_arm(&f->retry, RETRY_MS);
	}
}

static void on_retry(struct remus_loop *loop, void *opaque)
{
	remus_feed_connect(opaque);
}

int remus_feed_new(struct remus_loop *loop, const char *path,
		   const struct remus_feed_hooks *hooks, struct remus_feed **out)
{
	struct remus_feed *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->path = strdup(path);
	if (!f->path) {
		free(f);
		return -ENOMEM;
	}
	f->loop = loop;
	if (hooks)
		f->hooks = *hooks;
	f->fd = -1;
	remus_timer_init(&f->retry, loop, on_retry, f);
	remus_buf_init(&f->out, REMUS_FEED_OUT_LIMIT);
	remus_buf_init(&f->pre, PRE_MAX);
	*out = f;
	return 0;
}

void remus_feed_free(struct remus_feed *f)
{
	if (!f)
		return;
	close_fd(f);
	remus_timer_disarm(&f->retry);
	while (f->qhead) {
		struct item *it = f->qhead;

		f->qhead = it->next;
		item_free(it);
	}
	remus_migstream_free(f->parser);
	remus_buf_release(&f->out);
	remus_buf_release(&f->pre);
	free(f->path);
	free(f);
}

bool remus_feed_connected(const struct remus_feed *f)
{
	return f->connected;
}

enum remus_feed_stream remus_feed_stream(const struct remus_feed *f, uint32_t *sid)
{
	if (f->broken)
		return REMUS_FEED_BROKEN;
	if (!f->used)
		return REMUS_FEED_NEW;
	if (sid)
		*sid = f->sid;
	return REMUS_FEED_RESUMABLE;
}

bool remus_feed_idle(const struct remus_feed *f)
{
	return !remus_buf_len(&f->out) && !f->qhead;
}

bool remus_feed_wants_input(const struct remus_feed *f)
{
	return remus_buf_len(&f->out) < REMUS_FEED_HIGH_WATER && f->qlen < REMUS_FEED_MAX_QUEUED;
}

const char *remus_feed_error(const struct remus_feed *f)
{
	return f->err;
}

void remus_feed_expect_close(struct remus_feed *f)
{
	f->expect_close = true;
}

/* ---- committed epochs and the tail ----------------------------------- */

static int push_item(struct remus_feed *f, struct item *it)
{
	int rc;

	if (f->qtail)
		f->qtail->next = it;
	else
		f->qhead = it;
	f->qtail = it;
	f->qlen++;
	rc = pump(f);
	update_events(f);
	return rc;
}

int remus_feed_push(struct remus_feed *f, struct remus_spill *data)
{
	struct item *it = calloc(1, sizeof(*it));

	if (!it)
		return -ENOMEM;
	remus_spill_init(&it->st, data->budget, data->dir);
	remus_spill_move(&it->st, data);
	return push_item(f, it);
}

int remus_feed_push_bytes(struct remus_feed *f, const void *p, size_t n)
{
	struct item *it = calloc(1, sizeof(*it));
	int rc;

	if (!it)
		return -ENOMEM;
	remus_spill_init(&it->st, NULL, NULL); /* a few bytes, memory only */
	rc = remus_spill_append(&it->st, p, n);
	if (rc < 0) {
		item_free(it);
		return rc;
	}
	return push_item(f, it);
}

/* ---- direct epochs ---------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int direct_fail(struct remus_feed *f, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->err, sizeof(f->err), fmt, ap);
	va_end(ap);
	return rc;
}

int remus_feed_direct_begin(struct remus_feed *f, uint32_t page_size)
{
	struct remus_migstream_opts o = { .max_buffered = REMUS_FEED_PARSER_MAX };
	int rc;

	if (f->direct)
		return -EALREADY;
	if (f->broken)
		return -EPIPE;
	if (page_size && (page_size & (page_size - 1)) == 0)
		o.page_bits = (uint32_t)__builtin_ctz(page_size);
	if (f->used) {
		o.continued = true;
		o.ram_sid = f->sid;
		o.ignore_shared = f->ignore_shared;
	}
	rc = remus_migstream_new(&o, &f->parser);
	if (rc < 0)
		return rc;
	remus_buf_reset(&f->pre);
	f->fed = f->passed = 0;
	f->in_section = f->eos_sent = false;
	f->err[0] = '\0';
	f->direct = true;
	return 0;
}

bool remus_feed_direct_open(const struct remus_feed *f)
{
	return f->direct;
}

/* One record of the direct epoch, in the order the parser returns them. */
static int direct_token(struct remus_feed *f, const struct remus_migstream_token *t)
{
	size_t n = (size_t)(t->end - t->start);
	int rc;

	switch (t->kind) {
	case REMUS_MS_HEADER:
	case REMUS_MS_CONFIG:
	case REMUS_MS_COMMAND:
		/* Only a new stream's parser returns these (a continued one
		 * fails on them). */
		if (t->kind == REMUS_MS_CONFIG)
			f->ignore_shared = t->ignore_shared;
		break;
	case REMUS_MS_START:
		f->sid = t->section_id;
		f->in_section = true;
		f->eos_sent = false;
		break;
	case REMUS_MS_PART:
		f->in_section = true;
		f->eos_sent = false;
		break;
	case REMUS_MS_RAM_EOS:
		f->eos_sent = true;
		break;
	case REMUS_MS_FOOTER:
		f->in_section = false;
		break;
	case REMUS_MS_RAM_MEM_SIZE:
	case REMUS_MS_RAM_ZERO:
	case REMUS_MS_RAM_PAGE:
	case REMUS_MS_RAM_MULTIFD_FLUSH:
		break;
	case REMUS_MS_END:
		return direct_fail(f, -EBADMSG, "END(ram) at offset %llu: the standby's stream "
				   "never ends before a takeover", (unsigned long long)t->start);
	default:
		return direct_fail(f, -EBADMSG, "%s at offset %llu in an epoch's data (device "
				   "state belongs in EPOCH_DEVICE)",
				   remus_migstream_kind_name(t->kind), (unsigned long long)t->start);
	}
	if (!f->used) {
		/* A new stream: nothing reaches QEMU before it can be continued,
		 * i.e. before START(ram)'s block list is complete. */
		rc = remus_buf_append(&f->pre, t->raw, n);
		if (rc < 0)
			return direct_fail(f, -EMSGSIZE, "more than %zu bytes before the first "
					   "MEM_SIZE record", (size_t)PRE_MAX);
		if (t->kind != REMUS_MS_RAM_MEM_SIZE)
			return 0;
		if (!f->in_section)
			return direct_fail(f, -EBADMSG, "MEM_SIZE outside a RAM section");
		rc = remus_buf_append(&f->out, remus_buf_data(&f->pre), remus_buf_len(&f->pre));
		if (rc == 0) {
			f->passed += remus_buf_len(&f->pre);
			f->direct_bytes += remus_buf_len(&f->pre);
			remus_buf_reset(&f->pre);
			f->used = true;
		}
	} else {
		rc = remus_buf_append(&f->out, t->raw, n);
		if (rc == 0) {
			f->passed += n;
			f->direct_bytes += n;
		}
	}
	if (rc < 0)
		return direct_fail(f, -EMSGSIZE, "cannot queue %zu more bytes for the standby "
				   "QEMU (%zu queued): %s", n, remus_buf_len(&f->out),
				   strerror(-rc));
	return 0;
}

int remus_feed_direct_data(struct remus_feed *f, const uint8_t *p, size_t n)
{
	struct remus_migstream_token t;
	size_t off, k;
	int rc;

	if (!f->direct)
		return direct_fail(f, -EINVAL, "no direct epoch open");
	for (off = 0; off < n; off += k) {
		k = n - off < PIECE ? n - off : PIECE;
		rc = remus_migstream_feed(f->parser, p + off, k);
		f->fed += k;
		while (rc == 0 && (rc = remus_migstream_next(f->parser, &t)) == 1)
			rc = direct_token(f, &t);
		if (rc < 0) {
			if (!f->err[0])
				direct_fail(f, rc, "%s", remus_migstream_error(f->parser));
			return rc;
		}
	}
	update_events(f);
	return 0;
}

static void direct_close(struct remus_feed *f)
{
	remus_migstream_free(f->parser);
	f->parser = NULL;
	remus_buf_reset(&f->pre);
	f->direct = false;
}

int remus_feed_direct_end(struct remus_feed *f)
{
	if (!f->direct)
		return direct_fail(f, -EINVAL, "no direct epoch open");
	if (remus_migstream_offset(f->parser) != f->fed)
		return direct_fail(f, -EBADMSG, "the epoch's data ends inside a record (%llu of "
				   "%llu bytes were whole records)",
				   (unsigned long long)remus_migstream_offset(f->parser),
				   (unsigned long long)f->fed);
	if (!f->used)
		return direct_fail(f, -EBADMSG, "the first epoch carries no START(ram) section "
				   "with its block list");
	if (f->in_section)
		return direct_fail(f, -EBADMSG, "the epoch's data ends inside RAM section %u",
				   f->sid);
	direct_close(f);
	return 0;
}

bool remus_feed_direct_cut(struct remus_feed *f)
{
	bool some;
	int rc;

	if (!f->direct)
		return false;
	some = f->passed > 0;
	if (f->used && f->in_section) {
		rc = remus_migstream_build_cut(&f->out, f->sid, f->eos_sent);
		if (rc < 0) {
			direct_close(f);
			fail(f, "closing the cut epoch's RAM section", -rc);
			return some;
		}
		remus_info(LOG, "uncommitted epoch cut after %llu bytes: RAM section %u closed "
			   "with %s, the standby QEMU can take the rest of the stream",
			   (unsigned long long)f->passed, f->sid,
			   f->eos_sent ? "its footer" : "EOS and footer");
	}
	f->cuts++;
	direct_close(f);
	update_events(f);
	return some;
}

void remus_feed_stats(const struct remus_feed *f, struct remus_feed_stats *st)
{
	const struct item *it;

	memset(st, 0, sizeof(*st));
	st->written = f->written;
	st->queued = remus_buf_len(&f->out);
	for (it = f->qhead; it; it = it->next) {
		st->queued += remus_spill_unread(&it->st);
		st->queued_in_files += remus_spill_file_unread(&it->st);
	}
	st->epochs_queued = f->qlen;
	st->direct_bytes = f->direct_bytes;
	st->cuts = f->cuts;
}
