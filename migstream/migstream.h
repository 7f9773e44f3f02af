/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Framing of QEMU 10.0's precopy migration stream (main channel; no
 * multifd payload, xbzrle, rdma, postcopy or mapped-ram), the per-epoch
 * rewrite of that stream for the hot standby, and the failover tail.
 *
 * One epoch is one complete migration of the primary into the controller:
 *
 *   header | config | cmds | START(ram){MEM_SIZE..EOS} ftr |
 *   PART(ram){pages..EOS} ftr ... | SWITCHOVER_START | END(ram){..EOS} ftr |
 *   FULL(dev) ... FULL(dev) EOF | vmdescription(JSON)  -> channel closed
 *   `-------------- device part ---------------'
 *
 * The parser (remus_migstream_*) takes bytes in chunks of any size and
 * returns one token per record with absolute stream offsets.  It frames
 * everything up to the first FULL section.  FULL sections cannot be framed
 * without the device descriptions, so from the first FULL on the parser
 * only collects bytes: the "device part" ends with the EOF byte (0x00)
 * that precedes the vmdescription (0x06, be32 length, JSON).  The end is
 * found from the back, and is unambiguous only once the channel is closed
 * (remus_migstream_finish()): the vmdescription must be the exact suffix
 * of the input, its length < 16 MiB, its payload a '{'..'}' text without
 * NUL bytes, and the byte before it 0x00.  Any candidate earlier than the
 * true one would have the true EOF byte (0x00) inside its payload; any
 * later one lies inside the JSON, which has no 0x00 to precede it; the
 * candidates overlapping the true one's 5-byte head are ruled out by the
 * length bound and the leading '{' (worked through in migstream.c).
 * Before the close, remus_migstream_dev_tail_seen() says whether the bytes
 * so far end like that: a hint, which device data could fake.  With the
 * return path on, QEMU closes the channel only after MIG_RP_MSG_SHUT, so
 * the hint is what tells a reader that waits for the vmdescription when
 * to send it; a false hint only sends SHUT early, which is harmless (the
 * engine sends it right after `stop` anyway), and the close decides.
 *
 * The rewriter (remus_migstream_rewriter_*) turns the tokens of one epoch
 * into the bytes the standby QEMU gets as part of one never-ending precopy
 * stream, and holds the epoch's device part back for failover:
 *
 *   epoch 0 ("first"): header, config, commands (minus SWITCHOVER_START),
 *                      START(ram) kept; END(ram) -> PART(ram)
 *   later epochs:      header, config, commands dropped; START(ram) ->
 *                      PART(ram) with its body (MEM_SIZE list) kept;
 *                      END(ram) -> PART(ram)
 *   every epoch:       device part held back; vmdescription dropped;
 *                      a PART/END section left with no record (after the
 *                      filter) is dropped whole, header, EOS and footer
 *
 * Page and zero records go through an optional filter (dedup) that may
 * drop them; the rewriter then re-emits the block name on the next record
 * of the block that would have relied on CONTINUE.
 *
 * remus_migstream_build_tail() appends what turns the standby's stream
 * into a completed migration: END(ram){EOS} + footer, the last committed
 * device part (ending in EOF) and an empty vmdescription.
 */
#ifndef REMUS_MIGSTREAM_MIGSTREAM_H
#define REMUS_MIGSTREAM_MIGSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"

struct json_object;

/* Stream constants (QEMU migration/savevm.c, migration/ram.c). */
#define REMUS_MIG_MAGIC 0x5145564du
#define REMUS_MIG_VERSION 3u
enum {
	REMUS_MIG_EOF = 0x00,
	REMUS_MIG_SECTION_START = 0x01,
	REMUS_MIG_SECTION_PART = 0x02,
	REMUS_MIG_SECTION_END = 0x03,
	REMUS_MIG_SECTION_FULL = 0x04,
	REMUS_MIG_SUBSECTION = 0x05,
	REMUS_MIG_VMDESCRIPTION = 0x06,
	REMUS_MIG_CONFIGURATION = 0x07,
	REMUS_MIG_COMMAND = 0x08,
	REMUS_MIG_SECTION_FOOTER = 0x7e,
};
enum {
	REMUS_MIG_CMD_OPEN_RETURN_PATH = 1,
	REMUS_MIG_CMD_PING = 2,
	REMUS_MIG_CMD_SWITCHOVER_START = 11,
};
enum {
	REMUS_RAM_FLAG_ZERO = 0x002,
	REMUS_RAM_FLAG_MEM_SIZE = 0x004,
	REMUS_RAM_FLAG_PAGE = 0x008,
	REMUS_RAM_FLAG_EOS = 0x010,
	REMUS_RAM_FLAG_CONTINUE = 0x020,
	REMUS_RAM_FLAG_MULTIFD_FLUSH = 0x200,
};

/* Bounds on untrusted input. */
#define REMUS_MIGSTREAM_MAX_BLOCKS 512
#define REMUS_MIGSTREAM_MAX_NAME 256        /* machine type name, bytes */
#define REMUS_MIGSTREAM_MAX_VMDESC 0xffffffu /* < 16 MiB, see above */

enum remus_migstream_kind {
	REMUS_MS_HEADER,        /* magic + version */
	REMUS_MS_CONFIG,        /* 0x07 + machine name + subsections */
	REMUS_MS_COMMAND,       /* 0x08 cmd len data */
	REMUS_MS_START,         /* START(ram) header: sid idstr instance version */
	REMUS_MS_PART,          /* PART(ram) header: sid */
	REMUS_MS_END,           /* END(ram) header: sid */
	REMUS_MS_FOOTER,        /* 0x7e sid */
	REMUS_MS_RAM_MEM_SIZE,  /* block list */
	REMUS_MS_RAM_ZERO,      /* zero page */
	REMUS_MS_RAM_PAGE,      /* page with data */
	REMUS_MS_RAM_EOS,       /* end of a RAM section body */
	REMUS_MS_RAM_MULTIFD_FLUSH,
	REMUS_MS_DEVICE,        /* first FULL .. EOF byte inclusive */
	REMUS_MS_VMDESC,        /* 0x06 len JSON */
};

/* Returns a static name such as "RAM_PAGE". */
const char *remus_migstream_kind_name(enum remus_migstream_kind kind);

struct remus_migstream_block {
	char name[256];   /* NUL-terminated idstr */
	uint64_t length;  /* used_length in bytes */
	uint64_t mr_addr; /* only with x-ignore-shared */
	uint64_t first_page; /* index of its first page in the whole list */
	uint32_t index;   /* position in the MEM_SIZE list */
};

/*
 * One record.  Every pointer is borrowed from the parser and valid until
 * the next call on it (feed, next, finish, free).
 */
struct remus_migstream_token {
	enum remus_migstream_kind kind;
	uint64_t start, end;  /* absolute stream offsets [start, end) */
	const uint8_t *raw;   /* the record's bytes, end - start of them */
	/* START/PART/END/FOOTER, and the first FULL for DEVICE */
	uint32_t section_id;
	const char *idstr;    /* START and DEVICE (first FULL); else NULL */
	uint32_t instance_id, version_id;
	/* COMMAND */
	uint16_t cmd;
	uint16_t cmd_len;
	const uint8_t *cmd_data;
	/* CONFIG */
	const char *machine;  /* NUL-terminated */
	uint32_t page_bits;
	bool ignore_shared;
	/* RAM records */
	uint64_t ram_flags;   /* flags of the record header, CONTINUE included */
	const struct remus_migstream_block *blocks; /* MEM_SIZE: the new list */
	uint32_t nblocks;
	const struct remus_migstream_block *block;  /* ZERO/PAGE */
	uint64_t page_offset; /* ZERO/PAGE: byte offset inside @block */
	const uint8_t *page;  /* PAGE: page_size bytes of data */
	uint32_t page_size;
	/* DEVICE and VMDESC: the payload (device bytes incl. EOF, or JSON) */
	const uint8_t *data;
	size_t data_len;
};

struct remus_migstream_opts {
	uint32_t page_bits;     /* expected target page bits; 0: 12 (x86) */
	uint64_t max_ram;       /* MEM_SIZE total bound; 0: 1 TiB */
	size_t max_buffered;    /* input held at once, device part included;
				 * 0: 256 MiB */
	bool no_vmdesc;         /* the device part ends at channel EOF with
				 * EOF and no vmdescription (suppress_vmdesc) */
	/* The input continues a stream between two sections: no header or
	 * configuration comes, RAM section @ram_sid was started before (its
	 * blocks are unknown until the next MEM_SIZE), and @ignore_shared is
	 * what that stream's configuration said.  The standby parses the
	 * later epochs of its own stream this way (failover/feed.h). */
	bool continued;
	uint32_t ram_sid;
	bool ignore_shared;
};

struct remus_migstream;

/* Returns 0 and a new parser in *@out (owned: remus_migstream_free()),
 * or -ENOMEM.  @opts is copied; NULL means defaults. */
int remus_migstream_new(const struct remus_migstream_opts *opts,
			struct remus_migstream **out);
/* Frees @p and everything it owns.  NULL ok. */
void remus_migstream_free(struct remus_migstream *p);

/* Appends @len bytes of @data (borrowed, copied).  Returns 0, -EMSGSIZE
 * when more than max_buffered bytes would be held, -ENOMEM, -EINVAL after
 * remus_migstream_finish(), or the sticky error. */
int remus_migstream_feed(struct remus_migstream *p, const void *data, size_t len);
/* Like remus_migstream_feed() with one read(2) of up to @max bytes from
 * @fd straight into the parser's buffer (no intermediate copy).  Returns
 * bytes read (> 0), 0 at EOF (then call remus_migstream_finish()), -EAGAIN,
 * -EMSGSIZE (sticky, as for feed) or -errno. */
ssize_t remus_migstream_read_fd(struct remus_migstream *p, int fd, size_t max);
/* The channel is closed: no more input.  Lets the device part end be
 * decided; a stream that is not complete then fails with -EPIPE. */
void remus_migstream_finish(struct remus_migstream *p);

/*
 * Next record.  Returns 1 with *@tok filled, 0 when no record is complete
 * yet (feed more) or the stream is complete (remus_migstream_complete()),
 * -EBADMSG (malformed or unsupported input), -EMSGSIZE (a bound was
 * exceeded) or -EPIPE (the channel closed mid-stream).  Errors are sticky;
 * remus_migstream_error() says what and at which offset.
 */
int remus_migstream_next(struct remus_migstream *p, struct remus_migstream_token *tok);

/* True once the vmdescription (or, with no_vmdesc, the device part) was
 * returned. */
bool remus_migstream_complete(const struct remus_migstream *p);
/* True if the parser is collecting the device part and the bytes so far
 * end like EOF + vmdescription.  A hint only: device data can look like
 * that; the channel EOF confirms it. */
bool remus_migstream_dev_tail_seen(const struct remus_migstream *p);
/* Bytes consumed as whole records (the offset of the next record). */
uint64_t remus_migstream_offset(const struct remus_migstream *p);
/* Borrowed, "" when no error. */
const char *remus_migstream_error(const struct remus_migstream *p);
/* Page size in effect (from configuration or options). */
uint32_t remus_migstream_page_size(const struct remus_migstream *p);

/*
 * Decides about one ZERO or PAGE record on its way to the standby.
 * Returns 1 to send it, 0 to drop it, or -errno to fail the rewrite.
 */
typedef int remus_migstream_filter_cb(void *opaque, const struct remus_migstream_token *tok);

struct remus_migstream_rewriter {
	bool first;                  /* epoch 0 of the standby stream */
	bool have_sid;               /* standby_sid is known */
	uint32_t standby_sid;        /* the RAM section id the standby knows */
	remus_migstream_filter_cb *filter; /* NULL: keep everything */
	void *filter_opaque;         /* borrowed */
	bool last_valid;             /* the standby's current block is known */
	uint32_t last_block;         /* ... and is this MEM_SIZE index */
	bool device_done;
	struct remus_buf out;        /* owned: bytes for the standby */
	struct remus_buf dev;        /* owned: held-back device part */
	bool part_pending;           /* a PART/END header not yet emitted */
	bool skip_footer;            /* its section was elided: drop the footer */
	uint64_t pages_kept, pages_dropped, zero_kept, zero_dropped;
	uint64_t sections_elided;    /* PART/END sections left with no record */
};

/*
 * @first: epoch 0 of the standby's stream.  For a later epoch,
 * @standby_sid is the RAM section id of epoch 0 (remus_migstream_rewriter
 * .standby_sid after it); the epoch's own id is mapped to it.  @filter and
 * @opaque (borrowed) may be NULL.  Buffers are unbounded but for memory.
 */
void remus_migstream_rewriter_init(struct remus_migstream_rewriter *rw, bool first,
				   uint32_t standby_sid, remus_migstream_filter_cb *filter,
				   void *opaque);
/* Frees both buffers.  Idempotent. */
void remus_migstream_rewriter_release(struct remus_migstream_rewriter *rw);
/*
 * Appends the standby's bytes for @tok (borrowed) to rw->out, or the
 * device part to rw->dev.  The caller may drain rw->out at any time.
 * Returns 0, -EBADMSG (a token the standby stream cannot carry, e.g. a
 * later epoch before the first one's section id is known), -ENOMEM, or
 * what the filter returned.  On failure the epoch must be discarded.
 */
int remus_migstream_rewrite(struct remus_migstream_rewriter *rw,
			    const struct remus_migstream_token *tok);

/*
 * Appends the failover tail to @out: END(@ram_sid){EOS} + footer, @dev
 * (borrowed: a committed epoch's device part, ending in the EOF byte) and
 * an empty vmdescription.  Returns 0, -EINVAL if @dev is empty or does not
 * end in EOF, -ENOMEM or -EMSGSIZE; on failure @out is unchanged.
 */
int remus_migstream_build_tail(struct remus_buf *out, uint32_t ram_sid,
			       const uint8_t *dev, size_t dev_len);
/* The same tail in three parts, for a device part that is not in one
 * piece: _tail_open appends END(@ram_sid){EOS} + footer, the caller then
 * writes the device part, _tail_close appends the empty vmdescription.
 * Return 0, -ENOMEM or -EMSGSIZE; on failure @out is unchanged. */
int remus_migstream_build_tail_open(struct remus_buf *out, uint32_t ram_sid);
int remus_migstream_build_tail_close(struct remus_buf *out);

/*
 * Appends what closes RAM section @ram_sid when the stream is cut
 * between two of its records: EOS unless it was the last record sent
 * (@eos_sent), then the footer.  QEMU loads a section cut like that as it
 * loads one it ended itself, so the stream can go on with the next
 * section.  Returns 0, -ENOMEM or -EMSGSIZE; on failure @out is
 * unchanged.
 */
int remus_migstream_build_cut(struct remus_buf *out, uint32_t ram_sid, bool eos_sent);

/*
 * The arguments of QMP migrate-set-capabilities for engine v1, the same on
 * the primary and on the standby QEMU: return-path (the primary waits for
 * our RP SHUT) and switchover-ack (never sent, so precopy never ends by
 * itself) on, events off (nothing listens; query-migrate is polled).  The destination checks the capabilities listed in the
 * stream's configuration section against its own, so both sides must use
 * this one list.  Returns an owned json_object, or NULL on ENOMEM.
 */
struct json_object *remus_migstream_caps_args(void);

#endif
