/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The replication link between primary and standby remusd: a versioned,
 * framed protocol over one TCP connection, the codec for it, and the
 * standby's epoch assembler.
 *
 * Conversation (one connection per protected VM):
 *
 *     primary                                  standby
 *       | HELLO(version, VM name+uuid, page      |
 *       |       size, RAM blocks) -------------> | remus_repl_hello_check()
 *       | <------------ HELLO_ACK | HELLO_REJECT(reason), then close
 *       |                                        |
 *       | EPOCH_DATA(N, offset, bytes) x k ----> | assembler: append, hash
 *       | EPOCH_DEVICE(N, offset, bytes) x m --> | (all DATA before DEVICE)
 *       | COMMIT_REQ(N, sizes, XXH3 of epoch) -> | verify sizes + hash, then
 *       |                                        | and only then release N
 *       | <--------------------- COMMIT_ACK(N)   | (output commit of N)
 *       | EPOCH_DATA(N+1, ...) ...               |
 *       | <-- HEARTBEAT(seq, mono ms) -------->  | both ways, own sequence
 *       | CLOSE(reason) <----------------------> | either side, then EOF
 *
 * Frame (every integer big-endian, encoded field by field):
 *
 *      0       4      6      8        12            20       24
 *     +-------+------+------+--------+-------------+--------+--------..-+--------+
 *     | magic | type | flags| length | epoch / seq | hcheck | payload    | xxh3   |
 *     | RRL1  | be16 | be16 | be32   | be64        | be32   | length B   | be64   |
 *     +-------+------+------+--------+-------------+--------+--------..-+--------+
 *     hcheck = low 32 bits of XXH3-64(bytes 0..19)
 *     xxh3   = XXH3-64(header and payload, bytes 0..24+length-1)
 *
 * @length is bounded per type (REMUS_REPL_PAYLOAD_MAX = 16 MiB for epoch
 * chunks, exact sizes for fixed messages) and checked as soon as the 24
 * header bytes are in, before anything waits for or buffers the payload.
 * The header check exists so that a corrupted length is caught at once:
 * without it a flipped bit in @length would make the receiver wait for up
 * to 16 MiB that never form a valid frame, a stall that only the heartbeat
 * timeout would end.  @flags is reserved and must be 0.  @epoch/seq is the
 * epoch for EPOCH_DATA, EPOCH_DEVICE, COMMIT_REQ, COMMIT_ACK; the sender's
 * heartbeat sequence for HEARTBEAT; 0 otherwise.
 *
 * Why XXH3-64 and not CRC32C: TCP and Ethernet already catch line noise;
 * what is left to catch are bugs (memory corruption, broken offloads,
 * middleboxes, our own framing mistakes), for which a well-mixed 64-bit
 * hash beats a 32-bit polynomial code: an undetected error is 2^-64, not
 * 2^-32 per frame, on a link that carries millions of frames a day.  XXH3
 * runs at memory speed in portable code (CRC32C is only fast with SSE4.2
 * or the ARMv8 CRC extension), and the same function gives the end-to-end
 * epoch hash.  Neither is a MAC: against an attacker, run the link inside
 * TLS, WireGuard or IPsec.
 *
 * Payloads:
 *     HELLO         be32 version | be16 n | n B VM name | 16 B uuid |
 *                   be32 page size | be16 k | k x (be16 n | n B block id |
 *                   be64 block length)
 *                   Only the header and the version field are frozen for
 *                   all versions: a HELLO of another version decodes to
 *                   just its version, so that the reject says which.
 *     HELLO_ACK     be32 version | be32 flags | be32 RAM section id |
 *                   be64 next epoch
 *                   flags bit 0 RESUME: the standby's QEMU already holds a
 *                   stream it can continue, made of the epochs before
 *                   next epoch: committed ones, or the cleanly cut start
 *                   of one that never committed (failover/feed.h).  The
 *                   primary continues that stream: its first epoch is
 *                   numbered next epoch, written as a later epoch
 *                   (START(ram) -> PART(RAM section id)) and full (the
 *                   primary knows nothing of what the standby holds).
 *                   Without RESUME: a new stream from epoch 0, the
 *                   other fields 0.
 *     HELLO_REJECT  be16 n | n B reason (printable text)
 *     EPOCH_DATA    be64 offset in the epoch's data | bytes (rest)
 *     EPOCH_DEVICE  be64 offset in the epoch's device state | bytes (rest)
 *     EPOCH_DISK    be16 disk | u8 op | u8 0 | be64 offset | be32 length |
 *                   data (WRITE: exactly length bytes; ZERO, TRIM: none)
 *     COMMIT_REQ    be64 data length | be64 device length |
 *                   be64 XXH3-64(data || device) | be64 disk ops |
 *                   be64 disk bytes | be64 XXH3-64(EPOCH_DISK payloads)
 *     DISK_HASHES   be16 disk | be16 n | n B disk name | be64 disk size |
 *                   be32 extent size | be64 first extent | be32 count |
 *                   count x 16 B XXH3-128 (high, low; big-endian)
 *     DISK_HASHES_END  be16 number of disks
 *     COMMIT_ACK    (empty)
 *     HEARTBEAT     be64 sender's CLOCK_MONOTONIC in ms
 *     CLOSE         be16 n | n B reason (printable text)
 *
 * Disks (diskrepl/): the primary sends every guest write as EPOCH_DISK of
 * the epoch it belongs to, interleaved with that epoch's chunks in any
 * order, and the COMMIT_REQ covers them too, so one COMMIT_ACK commits
 * memory and disk together.  The standby answers a HELLO it accepts with
 * DISK_HASHES for each of its disks, then DISK_HASHES_END, then
 * HELLO_ACK: the primary compares the hashes with its own image and sends
 * the extents that differ (as EPOCH_DISK WRITEs of the first epoch)
 * before it starts that epoch's migration.  No disks: just the END.
 *
 * Within an epoch every EPOCH_DATA precedes every EPOCH_DEVICE, as RAM
 * precedes the device sections in a migration stream; that lets both
 * ends hash data || device incrementally, so verifying an epoch at commit
 * costs no extra pass over it.  Offsets make a missing or repeated chunk
 * visible at the next chunk, not only at commit.
 *
 * Errors: the decoder and the assembler are sticky (first error wins and
 * is returned by every later call) and keep a human-readable message; the
 * replication link is then dead and must be torn down.  A standby never
 * applies a partial or corrupt epoch: the assembler releases an epoch only
 * after its COMMIT_REQ matched sizes and hash, and rejects it whole
 * otherwise.  Nothing here logs; callers log the message with the peer's
 * address.  Not thread-safe; everything belongs to the loop's thread.
 */
#ifndef REMUS_REPL_REPL_H
#define REMUS_REPL_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/spill.h"

struct XXH3_state_s; /* <xxhash.h>, kept out of this header */

#define REMUS_REPL_VERSION 1u
#define REMUS_REPL_MAGIC 0x52524c31u /* "RRL1" */

/* Header field offsets; the layout is pinned below and in repl.c. */
enum {
	REMUS_REPL_OFF_MAGIC = 0,
	REMUS_REPL_OFF_TYPE = 4,
	REMUS_REPL_OFF_FLAGS = 6,
	REMUS_REPL_OFF_LENGTH = 8,
	REMUS_REPL_OFF_SEQ = 12,
	REMUS_REPL_OFF_HCHECK = 20,
	REMUS_REPL_HDR_LEN = 24,
	REMUS_REPL_TRAILER_LEN = 8,
};
_Static_assert(REMUS_REPL_OFF_TYPE == REMUS_REPL_OFF_MAGIC + 4, "magic is be32");
_Static_assert(REMUS_REPL_OFF_FLAGS == REMUS_REPL_OFF_TYPE + 2, "type is be16");
_Static_assert(REMUS_REPL_OFF_LENGTH == REMUS_REPL_OFF_FLAGS + 2, "flags is be16");
_Static_assert(REMUS_REPL_OFF_SEQ == REMUS_REPL_OFF_LENGTH + 4, "length is be32");
_Static_assert(REMUS_REPL_OFF_HCHECK == REMUS_REPL_OFF_SEQ + 8, "seq is be64");
_Static_assert(REMUS_REPL_HDR_LEN == REMUS_REPL_OFF_HCHECK + 4, "hcheck is be32");

/* Largest payload of any frame, and so of one epoch chunk (plus 8 bytes
 * of offset): big enough to amortise the per-frame cost, small enough
 * that a receive buffer of REMUS_REPL_FRAME_MAX is cheap. */
#define REMUS_REPL_PAYLOAD_MAX (16u << 20)
#define REMUS_REPL_CHUNK_MAX (REMUS_REPL_PAYLOAD_MAX - 8u)
#define REMUS_REPL_FRAME_MAX \
	((size_t)REMUS_REPL_HDR_LEN + REMUS_REPL_PAYLOAD_MAX + REMUS_REPL_TRAILER_LEN)
/* Bounds of HELLO fields (QEMU's RAMBlock idstr is char[256]). */
#define REMUS_REPL_NAME_MAX 256u
#define REMUS_REPL_MAX_BLOCKS 64u
#define REMUS_REPL_HELLO_MAX (64u << 10)
/* Bound of HELLO_REJECT and CLOSE reasons. */
#define REMUS_REPL_REASON_MAX 1024u
/* Default bound of one epoch being assembled (data + device). */
#define REMUS_REPL_EPOCH_MAX_DEFAULT ((size_t)4 << 30)

enum remus_repl_type {
	REMUS_REPL_HELLO = 1,
	REMUS_REPL_HELLO_ACK = 2,
	REMUS_REPL_HELLO_REJECT = 3,
	REMUS_REPL_EPOCH_DATA = 4,
	REMUS_REPL_EPOCH_DEVICE = 5,
	REMUS_REPL_COMMIT_REQ = 6,
	REMUS_REPL_COMMIT_ACK = 7,
	REMUS_REPL_HEARTBEAT = 8,
	REMUS_REPL_CLOSE = 9,
	REMUS_REPL_EPOCH_DISK = 10,
	REMUS_REPL_DISK_HASHES = 11,
	REMUS_REPL_DISK_HASHES_END = 12,
};

/*
 * The one enum of a disk operation, for every layer that handles one: the
 * primary's NBD ops forward it (diskrepl.c), EPOCH_DISK carries it (u8
 * op), and the standby's journal stores it (diskrepl/journal.h, be32 op
 * of a JREC).  The values are on the wire and on disk: never renumber
 * them (repl.c and journal.c pin them).  FLUSH does not travel: the epoch
 * barrier is what makes writes durable on the standby.
 */
enum remus_repl_disk_op {
	REMUS_REPL_DISK_WRITE = 1, /* data follows: length bytes */
	REMUS_REPL_DISK_ZERO = 2,  /* the range reads as zeros, blocks kept */
	REMUS_REPL_DISK_TRIM = 3,  /* the range's content is unspecified */
};
/* True for the three values above (@op as decoded, unchecked). */
bool remus_repl_disk_op_valid(unsigned op);
/* Returns a static "write", "zero", "trim" or "unknown", for messages. */
const char *remus_repl_disk_op_name(unsigned op);
/* Bytes of an EPOCH_DISK payload before the data. */
#define REMUS_REPL_DISK_HDR 16u
/* Largest WRITE data in one EPOCH_DISK frame. */
#define REMUS_REPL_DISK_DATA_MAX (REMUS_REPL_PAYLOAD_MAX - REMUS_REPL_DISK_HDR)
/* Bound of the hashes in one DISK_HASHES frame, and of disks per VM. */
#define REMUS_REPL_HASHES_MAX 65536u
#define REMUS_REPL_MAX_DISKS 64u

/* Returns a static name such as "EPOCH_DATA", or "unknown". */
const char *remus_repl_type_name(unsigned type);

/* Text on the wire is not NUL-terminated: print with "%.*s", (int)len, p. */
struct remus_repl_text {
	const char *p; /* borrowed */
	size_t len;
};

struct remus_repl_ramblock {
	struct remus_repl_text id; /* e.g. "pc.ram" */
	uint64_t length;           /* bytes */
};

/* HELLO_ACK flags. */
#define REMUS_REPL_ACK_RESUME 0x1u

struct remus_repl_hello_ack {
	uint32_t version;
	uint32_t flags;      /* REMUS_REPL_ACK_RESUME or 0 */
	uint32_t ram_sid;    /* with RESUME: the stream's RAM section id */
	uint64_t next_epoch; /* with RESUME: the epoch to continue with */
};

struct remus_repl_hello {
	uint32_t version;
	struct remus_repl_text vm_name;
	uint8_t vm_uuid[16];
	uint32_t page_size;
	uint16_t nblocks;
	struct remus_repl_ramblock blocks[REMUS_REPL_MAX_BLOCKS];
};

/*
 * One message.  Decoded: every pointer is borrowed from the decoder's
 * input buffer and valid until the next remus_repl_decode() call or any
 * other change to that buffer; copy what must live longer.  Encoded: the
 * pointers are borrowed for the duration of the call.
 */
struct remus_repl_msg {
	enum remus_repl_type type;
	uint64_t seq; /* epoch, heartbeat sequence, or 0 (see the diagram) */
	union {
		struct remus_repl_hello hello;     /* HELLO */
		struct remus_repl_hello_ack ack;   /* HELLO_ACK */
		struct remus_repl_text reason;     /* HELLO_REJECT, CLOSE */
		struct {                           /* EPOCH_DATA, EPOCH_DEVICE */
			uint64_t offset;
			const uint8_t *p; /* borrowed */
			size_t len;
		} chunk;
		struct {                           /* COMMIT_REQ */
			uint64_t data_len;
			uint64_t device_len;
			uint64_t hash; /* XXH3-64(data || device) */
			uint64_t disk_ops;
			uint64_t disk_bytes;  /* WRITE data bytes */
			uint64_t disk_hash;   /* XXH3-64 of the EPOCH_DISK payloads */
		} commit;
		struct {                           /* EPOCH_DISK */
			uint16_t disk;
			uint8_t op;            /* enum remus_repl_disk_op */
			uint64_t offset;
			uint32_t length;
			const uint8_t *p;      /* borrowed; WRITE: length bytes */
		} disk;
		struct {                           /* DISK_HASHES */
			uint16_t disk;
			struct remus_repl_text name;
			uint64_t size;
			uint32_t extent_size;
			uint64_t first;
			uint32_t count;
			const uint8_t *p;      /* borrowed: count x 16 bytes */
		} hashes;
		uint16_t ndisks;                   /* DISK_HASHES_END */
		uint64_t mono_ms;                  /* HEARTBEAT */
	} u;
};

/*
 * Appends one frame carrying @m (borrowed) to @out.  Returns 0; -EINVAL
 * if @m is not encodable (unknown type, a field over its bound, reason
 * text with control characters); -EMSGSIZE if the payload exceeds its
 * type's bound or @out's limit; -ENOMEM.  On failure @out is unchanged.
 */
int remus_repl_encode(struct remus_buf *out, const struct remus_repl_msg *m);

/* Shorthands for remus_repl_encode() of the small messages; @reason is a
 * borrowed C string. */
int remus_repl_put_heartbeat(struct remus_buf *out, uint64_t seq, uint64_t mono_ms);
int remus_repl_put_commit_ack(struct remus_buf *out, uint64_t epoch);
int remus_repl_put_close(struct remus_buf *out, const char *reason);
int remus_repl_put_reject(struct remus_buf *out, const char *reason);

/* Incremental decoder.  After _init every field is valid; it owns nothing,
 * so there is no _release. */
struct remus_repl_decoder {
	size_t consume;  /* bytes of the frame returned last, dropped next call */
	uint64_t frames; /* frames decoded so far (numbers error messages) */
	int err;         /* 0 or the first -errno (sticky) */
	char errmsg[192];
};

void remus_repl_decoder_init(struct remus_repl_decoder *d);
/*
 * Decodes the next frame at the front of @in (borrowed).  First drops the
 * frame returned by the previous call, so the caller never consumes from
 * @in itself.  Returns 1 with @m filled (pointers borrowed from @in, see
 * struct remus_repl_msg); 0 if @in holds no complete frame yet (read more
 * into @in and call again; a buffer limit of REMUS_REPL_FRAME_MAX is
 * enough); or a sticky -errno with remus_repl_decoder_error() set:
 * -EBADMSG (bad magic, header check or checksum mismatch, unknown type or
 * flags, malformed payload), -EMSGSIZE (length over its type's bound,
 * reported from the header alone).
 */
int remus_repl_decode(struct remus_repl_decoder *d, struct remus_buf *in,
		      struct remus_repl_msg *m);
/* Borrowed; "" while there is no error. */
const char *remus_repl_decoder_error(const struct remus_repl_decoder *d);

/*
 * Compares the HELLO the primary sent (@got) with what this standby
 * expects (@want), both borrowed.  Returns 0 if compatible; otherwise
 * -EPROTONOSUPPORT (version) or -EPROTO (identity, page size, RAM layout)
 * with a reason for HELLO_REJECT written to @reason (NUL-terminated,
 * truncated to @size), e.g. "version 1 expected, got 2",
 * "VM identity mismatch: ...",
 * "RAM layout differs: block pc.ram 256 MiB vs 512 MiB" (ours vs theirs).
 */
int remus_repl_hello_check(const struct remus_repl_hello *want,
			   const struct remus_repl_hello *got,
			   char *reason, size_t size);

/* Primary side: frames one epoch and keeps the running sizes and hash
 * that its COMMIT_REQ announces. */
struct remus_repl_tx {
	uint64_t epoch;
	/* Disk writes run ahead of the epoch's migration: those of epoch N+1
	 * arrive between N's COMMIT_REQ and N+1's _begin. */
	uint64_t disk_epoch;
	uint64_t disk_ops, disk_bytes;
	struct XXH3_state_s *disk_hash; /* owned */
	uint64_t data_len;
	uint64_t device_len;
	bool in_device;           /* device bytes sent: no more data */
	bool open;                /* between _begin and _commit */
	size_t chunk_max;         /* payload bytes per chunk frame */
	struct XXH3_state_s *hash; /* owned */
};

/* Chunks of at most REMUS_REPL_CHUNK_MAX bytes; _release is a no-op. */
void remus_repl_tx_init(struct remus_repl_tx *tx);
void remus_repl_tx_release(struct remus_repl_tx *tx);
/* A new session whose first epoch is @first_epoch: disk writes from now
 * on belong to it.  Returns 0 or -ENOMEM. */
int remus_repl_tx_session(struct remus_repl_tx *tx, uint64_t first_epoch);
/* Starts epoch @epoch, forgetting an unfinished one (and its disk writes
 * unless @epoch is the disk epoch).  Returns 0 or -ENOMEM. */
int remus_repl_tx_begin(struct remus_repl_tx *tx, uint64_t epoch);
/* Appends one disk operation of the current disk epoch as EPOCH_DISK
 * frames (WRITE data split at REMUS_REPL_DISK_DATA_MAX).  @data borrowed,
 * @len bytes for WRITE, NULL otherwise.  All or nothing; errors as
 * _data, -EINVAL for a bad op or a zero length. */
int remus_repl_tx_disk(struct remus_repl_tx *tx, struct remus_buf *out, uint16_t disk,
		       enum remus_repl_disk_op op, uint64_t offset, uint32_t len,
		       const void *data);
/*
 * Appends @n bytes of @p (borrowed) as EPOCH_DATA / EPOCH_DEVICE frames to
 * @out.  All or nothing: returns 0, or -EMSGSIZE / -ENOMEM (@out's limit;
 * wait for it to drain and retry) with @out and @tx unchanged, or -EINVAL
 * (no epoch open; data after device).
 */
int remus_repl_tx_data(struct remus_repl_tx *tx, struct remus_buf *out,
		       const void *p, size_t n);
int remus_repl_tx_device(struct remus_repl_tx *tx, struct remus_buf *out,
			 const void *p, size_t n);
/* Appends the epoch's COMMIT_REQ (covering its disk writes) and closes
 * it; later disk writes belong to the next epoch.  Errors as above. */
int remus_repl_tx_commit(struct remus_repl_tx *tx, struct remus_buf *out);

/* A committed epoch, as released by the assembler. */
struct remus_repl_epoch {
	uint64_t epoch;
	struct remus_spill data;   /* owned: the epoch's standby-stream bytes
				    * (none if they were passed through) */
	struct remus_spill device; /* owned: the epoch's device-state bytes */
};

/* Both stores empty, memory only (the assembler's feed replaces them). */
void remus_repl_epoch_init(struct remus_repl_epoch *e);
/* Frees both stores.  Idempotent. */
void remus_repl_epoch_release(struct remus_repl_epoch *e);

/*
 * Standby side: collects the chunks of epoch next_epoch and releases the
 * epoch only when its COMMIT_REQ matches.  States:
 *
 *     waiting for N --DATA/DEVICE(N)--> assembling N --COMMIT_REQ(N) ok-->
 *     released N, waiting for N+1;   any violation --> failed (sticky,
 *     the partial epoch freed)
 *
 * Where the bytes go: into two common/spill.h stores, data and device,
 * which keep them in memory up to a budget shared with the caller's
 * other stores and put the rest in a file (remus_repl_assembler_store();
 * without it, memory only).  Or, for the data, nowhere: in pass-through
 * mode (remus_repl_assembler_pass_data()) the caller takes every
 * EPOCH_DATA chunk the assembler accepts and the released epoch carries
 * no data.  The standby does that with the first epoch of a stream, which
 * its QEMU may load as it arrives (failover/standby.h).  Offsets, sizes,
 * the epoch bound and the end-to-end hash are checked the same way in
 * both modes, chunk by chunk as they arrive, so a verified epoch costs no
 * second pass over its bytes.
 */
struct remus_repl_assembler {
	uint64_t next_epoch;       /* the epoch assembled or expected next */
	size_t max_bytes;          /* bound on data + device of one epoch */
	bool open;                 /* a chunk of next_epoch has arrived */
	bool in_device;            /* EPOCH_DEVICE seen: no more EPOCH_DATA */
	bool pass_data;            /* epochs opened from now on pass their data */
	bool passing;              /* the open epoch's data chunks are the
				    * caller's, not kept */
	struct remus_spill_budget *budget; /* borrowed; NULL: memory only */
	const char *dir;           /* borrowed: spill files */
	uint64_t data_len, device_len; /* bytes of the open epoch so far */
	struct remus_spill data;   /* owned */
	struct remus_spill device; /* owned */
	struct XXH3_state_s *hash; /* owned: XXH3 of data || device so far */
	uint64_t disk_ops, disk_bytes;
	struct XXH3_state_s *disk_hash; /* owned: XXH3 of EPOCH_DISK payloads */
	int err;                   /* 0 or the first -errno (sticky) */
	char errmsg[192];
};

/* @first_epoch: the epoch expected first; @max_bytes: bound on one epoch
 * (0: REMUS_REPL_EPOCH_MAX_DEFAULT).  Memory only, data kept.  Allocates
 * nothing. */
void remus_repl_assembler_init(struct remus_repl_assembler *a,
			       uint64_t first_epoch, size_t max_bytes);
/* Frees the uncommitted epoch and all storage.  Idempotent. */
void remus_repl_assembler_release(struct remus_repl_assembler *a);
/* Epochs opened from now on are kept in memory up to @budget (shared,
 * borrowed) and in files in @dir (borrowed; NULL: /var/tmp) beyond it.
 * Both must outlive the assembler and the epochs it releases. */
void remus_repl_assembler_store(struct remus_repl_assembler *a,
				struct remus_spill_budget *budget, const char *dir);
/* @on: in epochs opened from now on, accepted EPOCH_DATA chunks are the
 * caller's (the feed returned 0 for them: take @m's bytes before the
 * next decode) and the released epochs carry no data; @on false: the
 * data is kept again.  An epoch already open keeps its mode. */
void remus_repl_assembler_pass_data(struct remus_repl_assembler *a, bool on);
/*
 * Feeds one decoded EPOCH_DATA, EPOCH_DEVICE, EPOCH_DISK or COMMIT_REQ
 * (@m borrowed; chunk bytes are copied; EPOCH_DISK is only counted and
 * hashed, its data is the caller's to keep).  Returns:
 *   1  @m was a valid COMMIT_REQ: @out (overwritten, not released) now
 *      holds the complete verified epoch, owned by the caller, and the
 *      assembler waits for the next epoch;
 *   0  the chunk was accepted;
 *  -EINVAL  @m is not an epoch message (state unchanged, not sticky);
 * sticky errors, which free the uncommitted epoch (never released in
 * part) and set remus_repl_assembler_error():
 *  -EPROTO  wrong epoch (out of order, or after its commit), data after
 *           device;
 *  -EBADMSG chunk at a wrong offset (missing or repeated frame), sizes,
 *           disk counts or end-to-end hashes differ from the COMMIT_REQ;
 *  -EMSGSIZE the epoch would exceed max_bytes;
 *  -ENOMEM, or the store's file error (-ENOSPC, -EIO, ...): not the
 *           primary's fault (remus_repl_assembler_local_error()).
 */
int remus_repl_assembler_feed(struct remus_repl_assembler *a,
			      const struct remus_repl_msg *m,
			      struct remus_repl_epoch *out);
/* True if the sticky error is ours (memory, the spill file), not a
 * violation of the protocol by the primary. */
bool remus_repl_assembler_local_error(const struct remus_repl_assembler *a);
/* Failover: frees the uncommitted epoch, if any.  Returns its bytes
 * received so far, passed-through data included (for the log).
 * next_epoch and a sticky error stay. */
size_t remus_repl_assembler_discard(struct remus_repl_assembler *a);
/* Borrowed; "" while there is no error. */
const char *remus_repl_assembler_error(const struct remus_repl_assembler *a);

#endif
