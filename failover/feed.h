/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to failover/: the feed, everything the standby writes to its
 * QEMU's incoming socket, in order and in bounded steps on the loop.
 *
 * Three kinds of bytes go out, one after the other:
 *
 *   direct   the data of an epoch while nothing is committed, as it
 *            arrives (remus_feed_direct_*): parsed with migstream's
 *            parser and passed on whole records only, so that the
 *            stream can be cut cleanly whenever the session dies;
 *   queued   committed epochs (remus_feed_push): their stores
 *            (common/spill.h, memory then file) are read PUMP_STEP
 *            bytes at a time as the socket takes them;
 *   the takeover tail, queued the same way.
 *
 *   link --> direct parser --whole records--> out --> QEMU
 *   commit --> queue [store][store] --pump 1 MiB--^
 *
 * Memory: @out stays below REMUS_FEED_OUT_LIMIT (the standby stops
 * reading its link while remus_feed_wants_input() is false: direct
 * bytes above REMUS_FEED_HIGH_WATER or REMUS_FEED_MAX_QUEUED epochs
 * waiting), the parser holds at most REMUS_FEED_PARSER_MAX, and the
 * queued stores' memory is in the standby's epoch budget.
 *
 * Where the stream stands.  Bytes of a direct epoch reach QEMU as whole
 * records only, and the feed knows whether the last one left a RAM
 * section open.  A session that dies before the commit is cut there
 * (remus_feed_direct_cut): an open section gets its EOS and footer from
 * us, which QEMU loads like any section QEMU ended itself; everything
 * held back (the header, configuration and START(ram) of a new stream
 * until its MEM_SIZE record is complete, and the incomplete record at the
 * end) is dropped.  So the stream is always in one of three states:
 * NEW (QEMU has nothing: a new stream starts from its header),
 * RESUMABLE (QEMU has a header and a RAM section id, and the stream
 * ends between sections: a full epoch can continue it), or BROKEN (QEMU
 * closed the socket or a write failed: its incoming migration is over,
 * and only a restarted standby QEMU can take a stream again).
 */
#ifndef REMUS_FAILOVER_FEED_H
#define REMUS_FAILOVER_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct remus_loop;
struct remus_spill;
struct remus_feed;

/* Hard limit of the output buffer; see above for why it is never hit. */
#define REMUS_FEED_OUT_LIMIT ((size_t)32 << 20)
/* Direct bytes waiting above which the link is not read. */
#define REMUS_FEED_HIGH_WATER ((size_t)8 << 20)
/* Committed epochs waiting for QEMU above which the link is not read. */
#define REMUS_FEED_MAX_QUEUED 4u
/* Input the direct parser holds at once. */
#define REMUS_FEED_PARSER_MAX ((size_t)1 << 20)

enum remus_feed_stream {
	REMUS_FEED_NEW,       /* nothing of a stream reached QEMU */
	REMUS_FEED_RESUMABLE, /* a stream QEMU can go on with */
	REMUS_FEED_BROKEN,    /* QEMU's incoming migration is over */
};

struct remus_feed_hooks {
	/* Bytes were written: room for more input, or everything queued is
	 * written (remus_feed_idle()). */
	void (*progress)(void *opaque);
	/* The stream is BROKEN: QEMU closed the socket, a write or a read of
	 * a spilled epoch failed.  @what and @err say which. */
	void (*failed)(void *opaque, const char *what, int err);
	void *opaque;
};

/* Returns 0 and a new feed for the incoming socket @path (borrowed,
 * copied) in *@out (owned: remus_feed_free()), or -ENOMEM.  @hooks is
 * copied.  Nothing is connected until remus_feed_connect(). */
int remus_feed_new(struct remus_loop *loop, const char *path,
		   const struct remus_feed_hooks *hooks, struct remus_feed **out);
/* Stops watching, frees what is queued.  NULL ok. */
void remus_feed_free(struct remus_feed *f);
/* Connects now, and again every 50 ms while QEMU does not listen yet. */
void remus_feed_connect(struct remus_feed *f);
bool remus_feed_connected(const struct remus_feed *f);

/* The stream's state; with RESUMABLE, *@sid (may be NULL) is its RAM
 * section id. */
enum remus_feed_stream remus_feed_stream(const struct remus_feed *f, uint32_t *sid);

/*
 * Starts a direct epoch: a new stream's first epoch if the stream is NEW,
 * otherwise a later epoch continuing it.  @page_size: the guest's (from
 * HELLO).  Returns 0, -EALREADY if one is open, -EPIPE if the stream is
 * BROKEN, -ENOMEM.
 */
int remus_feed_direct_begin(struct remus_feed *f, uint32_t page_size);
bool remus_feed_direct_open(const struct remus_feed *f);
/*
 * The next @n bytes (borrowed) of the direct epoch.  Whole records go out
 * at once, the rest waits for the next call.  Returns 0, or -EBADMSG /
 * -EMSGSIZE with a message (remus_feed_error()) for bytes that are not a
 * stream the standby QEMU can take here; the epoch must then be dropped
 * (remus_feed_direct_cut()).
 */
int remus_feed_direct_data(struct remus_feed *f, const uint8_t *p, size_t n);
/* The direct epoch committed: returns 0 if its data ended between two
 * sections, else -EBADMSG with a message (cut it then). */
int remus_feed_direct_end(struct remus_feed *f);
/* The direct epoch will not commit: ends the stream cleanly after its
 * last whole record (see above).  Returns true if some of the epoch
 * reached the stream.  No-op (false) without a direct epoch. */
bool remus_feed_direct_cut(struct remus_feed *f);

/* Queues a committed epoch's data: takes @data's contents (the store is
 * left empty).  Returns 0 or -ENOMEM (@data unchanged). */
int remus_feed_push(struct remus_feed *f, struct remus_spill *data);
/* Queues @n bytes of @p (borrowed, copied).  Returns 0 or -ENOMEM. */
int remus_feed_push_bytes(struct remus_feed *f, const void *p, size_t n);
/* The takeover tail is queued: QEMU closing the socket once it has read
 * everything is the expected end, not a failure. */
void remus_feed_expect_close(struct remus_feed *f);

/* Nothing waits to be written. */
bool remus_feed_idle(const struct remus_feed *f);
/* False while the standby should not read more epoch data (see above). */
bool remus_feed_wants_input(const struct remus_feed *f);
/* Borrowed; the last direct-stream error, "" if none. */
const char *remus_feed_error(const struct remus_feed *f);

struct remus_feed_stats {
	uint64_t written;         /* bytes written to QEMU */
	uint64_t queued;          /* bytes waiting: output buffer + queued stores */
	uint64_t queued_in_files; /* ... of which in spill files */
	unsigned epochs_queued;
	uint64_t direct_bytes;    /* bytes passed on by direct epochs */
	uint64_t cuts;            /* direct epochs cut */
};
void remus_feed_stats(const struct remus_feed *f, struct remus_feed_stats *st);

#endif
