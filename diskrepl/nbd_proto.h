/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diskrepl's NBD protocol layer (private header; nbd_proto.c): the
 * server's side of one NBD session over byte buffers, with no socket and
 * no loop.  nbd_server.h runs it for each client of a unix socket; the
 * unit tests and the fuzz target (tests/fuzz/nbd) drive it directly.
 *
 * QEMU connects with
 *     -blockdev driver=nbd,node-name=d0,server.type=unix,server.path=SOCK,export=NAME
 * and negotiates the fixed newstyle handshake.  We implement only what
 * QEMU needs, and refuse the rest the way the protocol lets a client fall
 * back (doc/proto.md of the NBD project):
 *
 *   handshake  NBDMAGIC IHAVEOPT flags(FIXED_NEWSTYLE|NO_ZEROES)
 *   options    GO and INFO (INFO_EXPORT always; BLOCK_SIZE, NAME and
 *              DESCRIPTION when asked), EXPORT_NAME, LIST, ABORT;
 *              everything else, in particular STRUCTURED_REPLY,
 *              EXTENDED_HEADERS, the meta-context options and STARTTLS,
 *              gets NBD_REP_ERR_UNSUP, after which QEMU uses simple
 *              replies and treats every block as allocated data
 *   commands   READ, WRITE (FUA), FLUSH, TRIM (FUA), WRITE_ZEROES (FUA,
 *              NO_HOLE), DISC; anything else is answered NBD_EINVAL
 *
 * Every request is executed synchronously, through the export's ops,
 * when it is complete in the input, and replied to in request order with
 * a simple reply.  The ops are local file I/O, short enough to run on
 * the loop.
 *
 * Untrusted input is bounded: option data <= REMUS_NBD_MAX_OPTION_DATA,
 * READ/WRITE payloads <= REMUS_NBD_MAX_PAYLOAD; a bad magic, an unknown
 * client flag, an oversized option or write fails the session with a
 * reason (the server then closes that client and logs it); out-of-range
 * requests get an error reply.
 */
#ifndef REMUS_DISKREPL_NBD_PROTO_H
#define REMUS_DISKREPL_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Command flags passed on to the ops: the wire values. */
#define REMUS_NBD_CMD_FLAG_FUA 1u     /* persist before returning */
#define REMUS_NBD_CMD_FLAG_NO_HOLE 2u /* write_zeroes: keep blocks allocated */

/* Limits.  The payload limit is the protocol's 2^25 that every client
 * honours by default; we advertise it as the maximum payload. */
#define REMUS_NBD_MAX_PAYLOAD (32u << 20)
#define REMUS_NBD_MAX_NAME 4096u         /* NBD strings are <= 4096 bytes */
#define REMUS_NBD_MAX_OPTION_DATA 8192u  /* a GO with the longest name fits */
/* A connection stops consuming input while this many reply bytes wait. */
#define REMUS_NBD_OUT_HIGH_WATER (2u << 20)

/* Synchronous I/O on one export.  Each returns 0 or -errno; the server maps
 * -EPERM/-EROFS to NBD_EPERM, -ENOSPC/-EDQUOT/-EFBIG to NBD_ENOSPC,
 * -EINVAL, -ENOMEM, -EOVERFLOW, -ENOTSUP and -ESHUTDOWN to their NBD
 * values and everything else to NBD_EIO.  Ranges are already checked
 * against the export's size, and @len is never 0.  @flags carries
 * REMUS_NBD_CMD_FLAG_* as the client sent them: with FUA the op must make
 * its effect durable before returning.  A NULL member means "not
 * supported": the matching transmission flag is not advertised and the
 * command is refused with NBD_EINVAL (read is mandatory; write is
 * mandatory unless the export is read-only). */
struct remus_nbd_ops {
	int (*read)(void *opaque, uint64_t off, uint32_t len, void *buf);
	int (*write)(void *opaque, uint64_t off, uint32_t len, const void *buf,
		     uint32_t flags);
	int (*write_zeroes)(void *opaque, uint64_t off, uint32_t len, uint32_t flags);
	int (*trim)(void *opaque, uint64_t off, uint32_t len, uint32_t flags);
	int (*flush)(void *opaque);
};

struct remus_nbd_export {
	const char *name;        /* borrowed, copied; 0..4096 bytes ("" = default) */
	const char *description; /* borrowed, copied, may be NULL; <= 4096 bytes */
	uint64_t size;           /* bytes, <= INT64_MAX */
	bool read_only;
	const struct remus_nbd_ops *ops; /* borrowed; outlives the server */
	void *opaque;                    /* borrowed; passed to every op */
};

struct remus_nbd_stats {
	uint64_t clients;         /* connections accepted so far */
	uint64_t reads, writes;   /* READ / WRITE commands that succeeded */
	uint64_t bytes_read, bytes_written;
	uint64_t flushes, trims, zeroes; /* FLUSH / TRIM / WRITE_ZEROES that succeeded */
	uint64_t protocol_errors; /* clients closed for breaking the protocol */
	uint64_t active_clients;  /* connections open now */
};

/* ---- Exports and sessions ---- */

/* A set of exports, looked up by name. */
struct remus_nbd_table;

/* Returns 0 and an empty table in *@out (owned, free with
 * remus_nbd_table_free), or -ENOMEM. */
int remus_nbd_table_new(struct remus_nbd_table **out);
void remus_nbd_table_free(struct remus_nbd_table *t);
/* Same contract as remus_nbd_server_add_export(). */
int remus_nbd_table_add(struct remus_nbd_table *t, const struct remus_nbd_export *e);
/* Borrowed; NULL if there is no export called @name (@len bytes). */
const struct remus_nbd_export *remus_nbd_table_find(const struct remus_nbd_table *t,
						    const char *name, size_t len);

enum remus_nbd_conn_state {
	REMUS_NBD_CONN_CLIENT_FLAGS, /* greeting sent, waiting for client flags */
	REMUS_NBD_CONN_OPTIONS,      /* option haggling */
	REMUS_NBD_CONN_TRANSMISSION, /* requests and simple replies */
	REMUS_NBD_CONN_DONE,         /* client ended the session (ABORT, DISC) */
	REMUS_NBD_CONN_FAILED,       /* protocol error; see remus_nbd_conn_error() */
};

/* Results of remus_nbd_conn_feed() besides -errno. */
enum {
	REMUS_NBD_FEED_MORE = 0,    /* every complete message handled; need input */
	REMUS_NBD_FEED_BLOCKED = 1, /* stopped early: output above its high water
				     * mark, or held; feed again later */
	REMUS_NBD_FEED_DONE = 2,    /* session over: send the output, then close */
};

struct remus_nbd_conn;

/* One client's protocol state.  @table (borrowed) must outlive it;
 * @stats (borrowed, may be NULL) is updated as commands complete; @peer
 * (borrowed, copied) names the client in log messages ("client 3 (pid
 * 4711)").  Returns 0 and the conn in *@out (owned, free with
 * remus_nbd_conn_free), or -ENOMEM. */
int remus_nbd_conn_new(const struct remus_nbd_table *table, struct remus_nbd_stats *stats,
		       const char *peer, struct remus_nbd_conn **out);
void remus_nbd_conn_free(struct remus_nbd_conn *c);
/* Appends the server greeting to @out (borrowed).  Call once, first.
 * Returns 0 or the buffer's -errno. */
int remus_nbd_conn_start(struct remus_nbd_conn *c, struct remus_buf *out);
/* Sets how many bytes of @out make feed stop (default
 * REMUS_NBD_OUT_HIGH_WATER).  For tests. */
void remus_nbd_conn_set_out_high_water(struct remus_nbd_conn *c, size_t bytes);
/* While held, feed handles no message and returns REMUS_NBD_FEED_BLOCKED. */
void remus_nbd_conn_set_hold(struct remus_nbd_conn *c, bool hold);
/* Handles every complete message at the front of @in (borrowed),
 * consuming it and appending its replies to @out (borrowed); a message
 * that is not complete yet is left in @in, however it was split.  Stops
 * before a message when @out holds the high water mark or more, or the
 * conn is held.  Returns REMUS_NBD_FEED_MORE, _BLOCKED or _DONE, or -errno
 * when the client must be closed now: -EPROTO (protocol violation),
 * -ENOENT (NBD_OPT_EXPORT_NAME of an unknown export, which the protocol
 * answers by closing), -EMSGSIZE (an oversized option or payload), or
 * -ENOMEM; remus_nbd_conn_error() says why.  After _DONE or an error the
 * conn consumes nothing more and returns the same result again. */
int remus_nbd_conn_feed(struct remus_nbd_conn *c, struct remus_buf *in, struct remus_buf *out);
enum remus_nbd_conn_state remus_nbd_conn_get_state(const struct remus_nbd_conn *c);
/* Why the conn failed or ended ("" while fine).  Borrowed; lives as
 * long as @c. */
const char *remus_nbd_conn_error(const struct remus_nbd_conn *c);
/* The export chosen with GO or EXPORT_NAME, NULL before.  Borrowed. */
const struct remus_nbd_export *remus_nbd_conn_export(const struct remus_nbd_conn *c);
/* The input size limit a caller's @in buffer needs: the longest message. */
#define REMUS_NBD_IN_LIMIT (28u + REMUS_NBD_MAX_PAYLOAD)
/* The output size limit a caller's @out buffer needs. */
#define REMUS_NBD_OUT_LIMIT (REMUS_NBD_OUT_HIGH_WATER + REMUS_NBD_MAX_PAYLOAD + (1u << 20))

/* Wire values, for tests. */
#define REMUS_NBD_MAGIC 0x4e42444d41474943ull    /* "NBDMAGIC" */
#define REMUS_NBD_OPTS_MAGIC 0x49484156454f5054ull /* "IHAVEOPT" */
#define REMUS_NBD_REP_MAGIC 0x0003e889045565a9ull
#define REMUS_NBD_REQUEST_MAGIC 0x25609513u
#define REMUS_NBD_SIMPLE_REPLY_MAGIC 0x67446698u

enum {
	REMUS_NBD_OPT_EXPORT_NAME = 1,
	REMUS_NBD_OPT_ABORT = 2,
	REMUS_NBD_OPT_LIST = 3,
	REMUS_NBD_OPT_STARTTLS = 5,
	REMUS_NBD_OPT_INFO = 6,
	REMUS_NBD_OPT_GO = 7,
	REMUS_NBD_OPT_STRUCTURED_REPLY = 8,
	REMUS_NBD_OPT_LIST_META_CONTEXT = 9,
	REMUS_NBD_OPT_SET_META_CONTEXT = 10,
	REMUS_NBD_OPT_EXTENDED_HEADERS = 11,
};

#define REMUS_NBD_REP_ACK 1u
#define REMUS_NBD_REP_SERVER 2u
#define REMUS_NBD_REP_INFO 3u
#define REMUS_NBD_REP_ERR_UNSUP 0x80000001u
#define REMUS_NBD_REP_ERR_INVALID 0x80000003u
#define REMUS_NBD_REP_ERR_UNKNOWN 0x80000006u
#define REMUS_NBD_REP_ERR_TOO_BIG 0x80000009u

enum {
	REMUS_NBD_INFO_EXPORT = 0,
	REMUS_NBD_INFO_NAME = 1,
	REMUS_NBD_INFO_DESCRIPTION = 2,
	REMUS_NBD_INFO_BLOCK_SIZE = 3,
};

/* Handshake, client and transmission flags. */
#define REMUS_NBD_FLAG_FIXED_NEWSTYLE 1u
#define REMUS_NBD_FLAG_NO_ZEROES 2u
#define REMUS_NBD_FLAG_HAS_FLAGS (1u << 0)
#define REMUS_NBD_FLAG_READ_ONLY (1u << 1)
#define REMUS_NBD_FLAG_SEND_FLUSH (1u << 2)
#define REMUS_NBD_FLAG_SEND_FUA (1u << 3)
#define REMUS_NBD_FLAG_SEND_TRIM (1u << 5)
#define REMUS_NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)

enum {
	REMUS_NBD_CMD_READ = 0,
	REMUS_NBD_CMD_WRITE = 1,
	REMUS_NBD_CMD_DISC = 2,
	REMUS_NBD_CMD_FLUSH = 3,
	REMUS_NBD_CMD_TRIM = 4,
	REMUS_NBD_CMD_CACHE = 5,
	REMUS_NBD_CMD_WRITE_ZEROES = 6,
	REMUS_NBD_CMD_BLOCK_STATUS = 7,
};

/* Error values in simple replies. */
enum {
	REMUS_NBD_EPERM = 1,
	REMUS_NBD_EIO = 5,
	REMUS_NBD_ENOMEM = 12,
	REMUS_NBD_EINVAL = 22,
	REMUS_NBD_ENOSPC = 28,
	REMUS_NBD_EOVERFLOW = 75,
	REMUS_NBD_ENOTSUP = 95,
	REMUS_NBD_ESHUTDOWN = 108,
};

/* Block sizes advertised in NBD_INFO_BLOCK_SIZE: any alignment works on
 * a file, 4 KiB is the page cache's unit, payloads up to the limit. */
#define REMUS_NBD_MIN_BLOCK 1u
#define REMUS_NBD_PREF_BLOCK 4096u

#endif
