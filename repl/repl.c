// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Replication link codec and standby epoch assembler (see repl.h for the
 * protocol and the frame diagram).
 *
 * Encoding reserves the whole frame in the output buffer first, so the
 * field-by-field writes that follow cannot fail half way and a failed
 * encode leaves the buffer as it was.  Decoding looks at the 24 header
 * bytes before anything else: magic, header check, type, flags and the
 * length bound are settled there, so a hostile or corrupted length never
 * makes us wait for, or buffer, a payload we would reject.  Only a complete
 * frame whose XXH3 matches is parsed, with a bounded wire reader; the frame
 * stays in the input buffer (the message borrows it) until the next call.
 */
#include "repl/repl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "common/wire.h"

_Static_assert(sizeof(XXH64_hash_t) == REMUS_REPL_TRAILER_LEN, "trailer is one XXH3-64");
_Static_assert(REMUS_REPL_FRAME_MAX == 24u + (16u << 20) + 8u, "frame bound");
_Static_assert(REMUS_REPL_HELLO_MAX >= 4 + 2 + REMUS_REPL_NAME_MAX + 16 + 4 + 2 +
		       REMUS_REPL_MAX_BLOCKS * (2 + REMUS_REPL_NAME_MAX + 8),
	       "the largest valid HELLO fits its bound");

#define NO_EXACT SIZE_MAX

const char *remus_repl_type_name(unsigned type)
{
	switch (type) {
	case REMUS_REPL_HELLO: return "HELLO";
	case REMUS_REPL_HELLO_ACK: return "HELLO_ACK";
	case REMUS_REPL_HELLO_REJECT: return "HELLO_REJECT";
	case REMUS_REPL_EPOCH_DATA: return "EPOCH_DATA";
	case REMUS_REPL_EPOCH_DEVICE: return "EPOCH_DEVICE";
	case REMUS_REPL_COMMIT_REQ: return "COMMIT_REQ";
	case REMUS_REPL_COMMIT_ACK: return "COMMIT_ACK";
	case REMUS_REPL_HEARTBEAT: return "HEARTBEAT";
	case REMUS_REPL_CLOSE: return "CLOSE";
	case REMUS_REPL_EPOCH_DISK: return "EPOCH_DISK";
	case REMUS_REPL_DISK_HASHES: return "DISK_HASHES";
	case REMUS_REPL_DISK_HASHES_END: return "DISK_HASHES_END";
	}
	return "unknown";
}

/* The EPOCH_DISK op byte: these values are the wire format. */
_Static_assert(REMUS_REPL_DISK_WRITE == 1 && REMUS_REPL_DISK_ZERO == 2 &&
	       REMUS_REPL_DISK_TRIM == 3, "EPOCH_DISK op values are on the wire");

bool remus_repl_disk_op_valid(unsigned op)
{
	return op == REMUS_REPL_DISK_WRITE || op == REMUS_REPL_DISK_ZERO ||
	       op == REMUS_REPL_DISK_TRIM;
}

const char *remus_repl_disk_op_name(unsigned op)
{
	switch (op) {
	case REMUS_REPL_DISK_WRITE: return "write";
	case REMUS_REPL_DISK_ZERO: return "zero";
	case REMUS_REPL_DISK_TRIM: return "trim";
	default: return "unknown";
	}
}

/* Payload bounds of @type: *max, and *exact for fixed-size messages
 * (NO_EXACT otherwise).  Returns false for an unknown type. */
static bool type_bounds(unsigned type, size_t *max, size_t *exact)
{
	*exact = NO_EXACT;
	switch (type) {
	case REMUS_REPL_HELLO:
		*max = REMUS_REPL_HELLO_MAX;
		return true;
	case REMUS_REPL_HELLO_ACK:
		*max = *exact = 20;
		return true;
	case REMUS_REPL_HELLO_REJECT:
	case REMUS_REPL_CLOSE:
		*max = 2 + REMUS_REPL_REASON_MAX;
		return true;
	case REMUS_REPL_EPOCH_DATA:
	case REMUS_REPL_EPOCH_DEVICE:
		*max = REMUS_REPL_PAYLOAD_MAX;
		return true;
	case REMUS_REPL_COMMIT_REQ:
		*max = *exact = 48;
		return true;
	case REMUS_REPL_EPOCH_DISK:
		*max = REMUS_REPL_PAYLOAD_MAX;
		return true;
	case REMUS_REPL_DISK_HASHES:
		*max = 2 + 2 + REMUS_REPL_NAME_MAX + 8 + 4 + 8 + 4 + REMUS_REPL_HASHES_MAX * 16u;
		return true;
	case REMUS_REPL_DISK_HASHES_END:
		*max = *exact = 2;
		return true;
	case REMUS_REPL_COMMIT_ACK:
		*max = *exact = 0;
		return true;
	case REMUS_REPL_HEARTBEAT:
		*max = *exact = 8;
		return true;
	}
	return false;
}

/* Whether the header's epoch/seq field means something for @type. */
static bool type_has_seq(unsigned type)
{
	return type == REMUS_REPL_EPOCH_DATA || type == REMUS_REPL_EPOCH_DEVICE ||
	       type == REMUS_REPL_EPOCH_DISK || type == REMUS_REPL_COMMIT_REQ || type == REMUS_REPL_COMMIT_ACK ||
	       type == REMUS_REPL_HEARTBEAT;
}

/* Text that ends up in logs and reject reasons: no control characters. */
static bool text_ok(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static uint32_t header_check(const uint8_t *hdr)
{
	return (uint32_t)XXH3_64bits(hdr, REMUS_REPL_OFF_HCHECK);
}

/* Undoes appends after a failed encode.  buf.h has no truncate; len is
 * the count of unconsumed bytes and appends only ever grow it, so
 * restoring it drops exactly what this encode added. */
static void truncate_to(struct remus_buf *b, size_t len)
{
	if (b->len > len)
		b->len = len;
}

/* The 16 bytes of an EPOCH_DISK payload before its data: what is sent,
 * and what both ends hash. */
static void disk_header(uint8_t h[REMUS_REPL_DISK_HDR], const struct remus_repl_msg *m)
{
	remus_put_be16(h, m->u.disk.disk);
	h[2] = m->u.disk.op;
	h[3] = 0;
	remus_put_be64(h + 4, m->u.disk.offset);
	remus_put_be32(h + 12, m->u.disk.length);
}

static void disk_hash_update(struct XXH3_state_s *st, const struct remus_repl_msg *m)
{
	uint8_t h[REMUS_REPL_DISK_HDR];

	disk_header(h, m);
	XXH3_64bits_update(st, h, sizeof(h));
	if (m->u.disk.op == REMUS_REPL_DISK_WRITE)
		XXH3_64bits_update(st, m->u.disk.p, m->u.disk.length);
}

/* Checks @m and computes its payload size.  Returns 0, -EINVAL or
 * -EMSGSIZE. */
static int payload_size(const struct remus_repl_msg *m, size_t *size)
{
	const struct remus_repl_hello *h;
	size_t max, exact, n = 0;

	if (!type_bounds(m->type, &max, &exact))
		return -EINVAL;
	switch (m->type) {
	case REMUS_REPL_HELLO:
		h = &m->u.hello;
		if (h->vm_name.len > REMUS_REPL_NAME_MAX ||
		    (h->vm_name.len && !h->vm_name.p) ||
		    !text_ok(h->vm_name.p, h->vm_name.len) ||
		    h->nblocks > REMUS_REPL_MAX_BLOCKS)
			return -EINVAL;
		n = 4 + 2 + h->vm_name.len + 16 + 4 + 2;
		for (unsigned i = 0; i < h->nblocks; i++) {
			const struct remus_repl_text *id = &h->blocks[i].id;

			if (id->len == 0 || id->len > REMUS_REPL_NAME_MAX || !id->p ||
			    !text_ok(id->p, id->len))
				return -EINVAL;
			n += 2 + id->len + 8;
		}
		break;
	case REMUS_REPL_HELLO_REJECT:
	case REMUS_REPL_CLOSE:
		if (m->u.reason.len > REMUS_REPL_REASON_MAX ||
		    (m->u.reason.len && !m->u.reason.p) ||
		    !text_ok(m->u.reason.p, m->u.reason.len))
			return -EINVAL;
		n = 2 + m->u.reason.len;
		break;
	case REMUS_REPL_EPOCH_DATA:
	case REMUS_REPL_EPOCH_DEVICE:
		if (m->u.chunk.len && !m->u.chunk.p)
			return -EINVAL;
		if (m->u.chunk.len > REMUS_REPL_CHUNK_MAX)
			return -EMSGSIZE;
		n = 8 + m->u.chunk.len;
		break;
	case REMUS_REPL_EPOCH_DISK:
		if (!remus_repl_disk_op_valid(m->u.disk.op) || m->u.disk.length == 0 ||
		    (m->u.disk.op == REMUS_REPL_DISK_WRITE && !m->u.disk.p))
			return -EINVAL;
		n = REMUS_REPL_DISK_HDR;
		if (m->u.disk.op == REMUS_REPL_DISK_WRITE) {
			if (m->u.disk.length > REMUS_REPL_DISK_DATA_MAX)
				return -EMSGSIZE;
			n += m->u.disk.length;
		}
		break;
	case REMUS_REPL_DISK_HASHES:
		if (m->u.hashes.name.len == 0 || m->u.hashes.name.len > REMUS_REPL_NAME_MAX ||
		    !m->u.hashes.name.p || !text_ok(m->u.hashes.name.p, m->u.hashes.name.len) ||
		    m->u.hashes.count > REMUS_REPL_HASHES_MAX ||
		    (m->u.hashes.count && !m->u.hashes.p))
			return -EINVAL;
		n = 2 + 2 + m->u.hashes.name.len + 8 + 4 + 8 + 4 + (size_t)m->u.hashes.count * 16u;
		break;
	default:
		n = exact;
		break;
	}
	if (n > max)
		return -EMSGSIZE;
	*size = n;
	return 0;
}

static void put_text(struct remus_wire_writer *w, const struct remus_repl_text *t)
{
	remus_wire_put_be16(w, (uint16_t)t->len);
	remus_wire_put_bytes(w, t->p, t->len);
}

static void put_payload(struct remus_wire_writer *w, const struct remus_repl_msg *m)
{
	const struct remus_repl_hello *h = &m->u.hello;

	switch (m->type) {
	case REMUS_REPL_HELLO:
		remus_wire_put_be32(w, h->version);
		put_text(w, &h->vm_name);
		remus_wire_put_bytes(w, h->vm_uuid, sizeof(h->vm_uuid));
		remus_wire_put_be32(w, h->page_size);
		remus_wire_put_be16(w, h->nblocks);
		for (unsigned i = 0; i < h->nblocks; i++) {
			put_text(w, &h->blocks[i].id);
			remus_wire_put_be64(w, h->blocks[i].length);
		}
		break;
	case REMUS_REPL_HELLO_ACK:
		remus_wire_put_be32(w, m->u.ack.version);
		remus_wire_put_be32(w, m->u.ack.flags);
		remus_wire_put_be32(w, m->u.ack.ram_sid);
		remus_wire_put_be64(w, m->u.ack.next_epoch);
		break;
	case REMUS_REPL_HELLO_REJECT:
	case REMUS_REPL_CLOSE:
		put_text(w, &m->u.reason);
		break;
	case REMUS_REPL_EPOCH_DATA:
	case REMUS_REPL_EPOCH_DEVICE:
		remus_wire_put_be64(w, m->u.chunk.offset);
		remus_wire_put_bytes(w, m->u.chunk.p, m->u.chunk.len);
		break;
	case REMUS_REPL_COMMIT_REQ:
		remus_wire_put_be64(w, m->u.commit.data_len);
		remus_wire_put_be64(w, m->u.commit.device_len);
		remus_wire_put_be64(w, m->u.commit.hash);
		remus_wire_put_be64(w, m->u.commit.disk_ops);
		remus_wire_put_be64(w, m->u.commit.disk_bytes);
		remus_wire_put_be64(w, m->u.commit.disk_hash);
		break;
	case REMUS_REPL_EPOCH_DISK: {
		uint8_t dh[REMUS_REPL_DISK_HDR];

		disk_header(dh, m);
		remus_wire_put_bytes(w, dh, sizeof(dh));
		if (m->u.disk.op == REMUS_REPL_DISK_WRITE)
			remus_wire_put_bytes(w, m->u.disk.p, m->u.disk.length);
		break;
	}
	case REMUS_REPL_DISK_HASHES:
		remus_wire_put_be16(w, m->u.hashes.disk);
		put_text(w, &m->u.hashes.name);
		remus_wire_put_be64(w, m->u.hashes.size);
		remus_wire_put_be32(w, m->u.hashes.extent_size);
		remus_wire_put_be64(w, m->u.hashes.first);
		remus_wire_put_be32(w, m->u.hashes.count);
		remus_wire_put_bytes(w, m->u.hashes.p, (size_t)m->u.hashes.count * 16u);
		break;
	case REMUS_REPL_DISK_HASHES_END:
		remus_wire_put_be16(w, m->u.ndisks);
		break;
	case REMUS_REPL_COMMIT_ACK:
		break;
	case REMUS_REPL_HEARTBEAT:
		remus_wire_put_be64(w, m->u.mono_ms);
		break;
	}
}

int remus_repl_encode(struct remus_buf *out, const struct remus_repl_msg *m)
{
	struct remus_wire_writer w;
	uint8_t hdr[REMUS_REPL_HDR_LEN];
	size_t before = remus_buf_len(out), plen = 0, total;
	int rc;

	rc = payload_size(m, &plen);
	if (rc < 0)
		goto out;
	total = REMUS_REPL_HDR_LEN + plen + REMUS_REPL_TRAILER_LEN;
	rc = remus_buf_reserve(out, total);
	if (rc < 0)
		goto out;

	remus_put_be32(hdr + REMUS_REPL_OFF_MAGIC, REMUS_REPL_MAGIC);
	remus_put_be16(hdr + REMUS_REPL_OFF_TYPE, (uint16_t)m->type);
	remus_put_be16(hdr + REMUS_REPL_OFF_FLAGS, 0);
	remus_put_be32(hdr + REMUS_REPL_OFF_LENGTH, (uint32_t)plen);
	remus_put_be64(hdr + REMUS_REPL_OFF_SEQ, type_has_seq(m->type) ? m->seq : 0);
	remus_put_be32(hdr + REMUS_REPL_OFF_HCHECK, header_check(hdr));

	remus_wire_writer_init(&w, out);
	remus_wire_put_bytes(&w, hdr, sizeof(hdr));
	put_payload(&w, m);
	rc = remus_wire_writer_error(&w);
	if (rc == 0 && remus_buf_len(out) - before != total - REMUS_REPL_TRAILER_LEN)
		rc = -EINVAL; /* payload_size() and put_payload() disagree: a bug */
	if (rc < 0)
		goto out;
	remus_wire_put_be64(&w, XXH3_64bits(remus_buf_data(out) + before,
					    total - REMUS_REPL_TRAILER_LEN));
	rc = remus_wire_writer_error(&w);
out:
	if (rc < 0)
		truncate_to(out, before);
	return rc;
}

int remus_repl_put_heartbeat(struct remus_buf *out, uint64_t seq, uint64_t mono_ms)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_HEARTBEAT, .seq = seq };

	m.u.mono_ms = mono_ms;
	return remus_repl_encode(out, &m);
}

int remus_repl_put_commit_ack(struct remus_buf *out, uint64_t epoch)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_COMMIT_ACK, .seq = epoch };

	return remus_repl_encode(out, &m);
}

static int put_reason(struct remus_buf *out, enum remus_repl_type type, const char *reason)
{
	struct remus_repl_msg m = { .type = type };

	m.u.reason.p = reason;
	m.u.reason.len = strlen(reason);
	return remus_repl_encode(out, &m);
}

int remus_repl_put_close(struct remus_buf *out, const char *reason)
{
	return put_reason(out, REMUS_REPL_CLOSE, reason);
}

int remus_repl_put_reject(struct remus_buf *out, const char *reason)
{
	return put_reason(out, REMUS_REPL_HELLO_REJECT, reason);
}

/* ---- decoder ---------------------------------------------------------- */

void remus_repl_decoder_init(struct remus_repl_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

const char *remus_repl_decoder_error(const struct remus_repl_decoder *d)
{
	return d->errmsg;
}

__attribute__((format(printf, 3, 4)))
static int decoder_fail(struct remus_repl_decoder *d, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(d->errmsg, sizeof(d->errmsg), "frame %" PRIu64 ": ", d->frames);
	if (n < 0 || (size_t)n >= sizeof(d->errmsg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(d->errmsg + n, sizeof(d->errmsg) - (size_t)n, fmt, ap);
	va_end(ap);
	d->err = err;
	return err;
}

static void get_text(struct remus_wire_reader *r, struct remus_repl_text *t, size_t max)
{
	size_t len = remus_wire_get_be16(r);
	const uint8_t *p;

	t->p = NULL;
	t->len = 0;
	if (len > max) {
		remus_wire_reader_fail(r, -EBADMSG);
		return;
	}
	p = remus_wire_get_bytes(r, len);
	if (!p)
		return;
	if (!text_ok((const char *)p, len)) {
		remus_wire_reader_fail(r, -EBADMSG);
		return;
	}
	t->p = (const char *)p;
	t->len = len;
}

/* Parses a checksummed payload of @len bytes.  Returns 0 or -EBADMSG. */
static int parse_payload(struct remus_repl_msg *m, const uint8_t *p, size_t len)
{
	struct remus_wire_reader r;
	struct remus_repl_hello *h = &m->u.hello;
	const uint8_t *b;

	remus_wire_reader_init(&r, p, len);
	switch (m->type) {
	case REMUS_REPL_HELLO:
		h->version = remus_wire_get_be32(&r);
		if (!r.err && h->version != REMUS_REPL_VERSION)
			return 0; /* only the version is frozen; the check rejects it */
		get_text(&r, &h->vm_name, REMUS_REPL_NAME_MAX);
		b = remus_wire_get_bytes(&r, sizeof(h->vm_uuid));
		if (b)
			memcpy(h->vm_uuid, b, sizeof(h->vm_uuid));
		h->page_size = remus_wire_get_be32(&r);
		h->nblocks = remus_wire_get_be16(&r);
		if (h->nblocks > REMUS_REPL_MAX_BLOCKS)
			remus_wire_reader_fail(&r, -EBADMSG);
		for (unsigned i = 0; i < h->nblocks && !r.err; i++) {
			get_text(&r, &h->blocks[i].id, REMUS_REPL_NAME_MAX);
			if (!r.err && h->blocks[i].id.len == 0)
				remus_wire_reader_fail(&r, -EBADMSG);
			h->blocks[i].length = remus_wire_get_be64(&r);
		}
		break;
	case REMUS_REPL_HELLO_ACK:
		m->u.ack.version = remus_wire_get_be32(&r);
		m->u.ack.flags = remus_wire_get_be32(&r);
		m->u.ack.ram_sid = remus_wire_get_be32(&r);
		m->u.ack.next_epoch = remus_wire_get_be64(&r);
		if (!r.err && (m->u.ack.flags & ~REMUS_REPL_ACK_RESUME))
			remus_wire_reader_fail(&r, -EBADMSG);
		break;
	case REMUS_REPL_HELLO_REJECT:
	case REMUS_REPL_CLOSE:
		get_text(&r, &m->u.reason, REMUS_REPL_REASON_MAX);
		break;
	case REMUS_REPL_EPOCH_DATA:
	case REMUS_REPL_EPOCH_DEVICE:
		m->u.chunk.offset = remus_wire_get_be64(&r);
		m->u.chunk.len = remus_wire_reader_remaining(&r);
		m->u.chunk.p = remus_wire_get_bytes(&r, m->u.chunk.len);
		break;
	case REMUS_REPL_COMMIT_REQ:
		m->u.commit.data_len = remus_wire_get_be64(&r);
		m->u.commit.device_len = remus_wire_get_be64(&r);
		m->u.commit.hash = remus_wire_get_be64(&r);
		m->u.commit.disk_ops = remus_wire_get_be64(&r);
		m->u.commit.disk_bytes = remus_wire_get_be64(&r);
		m->u.commit.disk_hash = remus_wire_get_be64(&r);
		break;
	case REMUS_REPL_EPOCH_DISK:
		m->u.disk.disk = remus_wire_get_be16(&r);
		b = remus_wire_get_bytes(&r, 2);
		m->u.disk.offset = remus_wire_get_be64(&r);
		m->u.disk.length = remus_wire_get_be32(&r);
		if (r.err)
			break;
		m->u.disk.op = b[0];
		if (!remus_repl_disk_op_valid(b[0]) || b[1] != 0 || m->u.disk.length == 0 ||
		    m->u.disk.offset > UINT64_MAX - m->u.disk.length) {
			remus_wire_reader_fail(&r, -EBADMSG);
			break;
		}
		if (m->u.disk.op == REMUS_REPL_DISK_WRITE)
			m->u.disk.p = remus_wire_get_bytes(&r, m->u.disk.length);
		break;
	case REMUS_REPL_DISK_HASHES:
		m->u.hashes.disk = remus_wire_get_be16(&r);
		get_text(&r, &m->u.hashes.name, REMUS_REPL_NAME_MAX);
		m->u.hashes.size = remus_wire_get_be64(&r);
		m->u.hashes.extent_size = remus_wire_get_be32(&r);
		m->u.hashes.first = remus_wire_get_be64(&r);
		m->u.hashes.count = remus_wire_get_be32(&r);
		if (r.err)
			break;
		if (m->u.hashes.name.len == 0 || m->u.hashes.count > REMUS_REPL_HASHES_MAX ||
		    m->u.hashes.extent_size == 0 || m->u.hashes.disk >= REMUS_REPL_MAX_DISKS) {
			remus_wire_reader_fail(&r, -EBADMSG);
			break;
		}
		m->u.hashes.p = remus_wire_get_bytes(&r, (size_t)m->u.hashes.count * 16u);
		break;
	case REMUS_REPL_DISK_HASHES_END:
		m->u.ndisks = remus_wire_get_be16(&r);
		if (!r.err && m->u.ndisks > REMUS_REPL_MAX_DISKS)
			remus_wire_reader_fail(&r, -EBADMSG);
		break;
	case REMUS_REPL_COMMIT_ACK:
		break;
	case REMUS_REPL_HEARTBEAT:
		m->u.mono_ms = remus_wire_get_be64(&r);
		break;
	}
	if (!r.err && remus_wire_reader_remaining(&r) != 0)
		remus_wire_reader_fail(&r, -EBADMSG);
	/* The payload is complete, so running out of it is malformation. */
	return r.err ? -EBADMSG : 0;
}

int remus_repl_decode(struct remus_repl_decoder *d, struct remus_buf *in,
		      struct remus_repl_msg *m)
{
	const uint8_t *p;
	size_t avail, max, exact, total;
	uint32_t magic, len, hcheck;
	uint16_t type, flags;
	uint64_t seq, sum, want;

	if (d->err)
		return d->err;
	if (d->consume) {
		remus_buf_consume(in, d->consume);
		d->consume = 0;
	}
	avail = remus_buf_len(in);
	p = remus_buf_data(in);
	if (avail < REMUS_REPL_HDR_LEN)
		return 0;

	magic = remus_get_be32(p + REMUS_REPL_OFF_MAGIC);
	if (magic != REMUS_REPL_MAGIC)
		return decoder_fail(d, -EBADMSG,
				    "bad magic 0x%08" PRIx32 " (expected 0x%08x): not a "
				    "replication stream, or framing lost",
				    magic, REMUS_REPL_MAGIC);
	hcheck = remus_get_be32(p + REMUS_REPL_OFF_HCHECK);
	if (hcheck != header_check(p))
		return decoder_fail(d, -EBADMSG, "header check mismatch: corrupted frame header");
	type = remus_get_be16(p + REMUS_REPL_OFF_TYPE);
	flags = remus_get_be16(p + REMUS_REPL_OFF_FLAGS);
	len = remus_get_be32(p + REMUS_REPL_OFF_LENGTH);
	seq = remus_get_be64(p + REMUS_REPL_OFF_SEQ);
	if (!type_bounds(type, &max, &exact))
		return decoder_fail(d, -EBADMSG, "unknown message type %u", type);
	if (flags)
		return decoder_fail(d, -EBADMSG, "%s with unknown flags 0x%04x",
				    remus_repl_type_name(type), flags);
	if (exact != NO_EXACT && len != exact)
		return decoder_fail(d, -EBADMSG,
				    "%s payload length %" PRIu32 ", must be %zu",
				    remus_repl_type_name(type), len, exact);
	if (len > max)
		return decoder_fail(d, -EMSGSIZE,
				    "%s payload length %" PRIu32 " exceeds its bound %zu",
				    remus_repl_type_name(type), len, max);
	if (!type_has_seq(type) && seq != 0)
		return decoder_fail(d, -EBADMSG, "%s with nonzero sequence %" PRIu64,
				    remus_repl_type_name(type), seq);

	total = REMUS_REPL_HDR_LEN + (size_t)len + REMUS_REPL_TRAILER_LEN;
	if (avail < total)
		return 0;
	sum = XXH3_64bits(p, REMUS_REPL_HDR_LEN + (size_t)len);
	want = remus_get_be64(p + REMUS_REPL_HDR_LEN + len);
	if (sum != want)
		return decoder_fail(d, -EBADMSG,
				    "%s (seq %" PRIu64 ", %" PRIu32 " bytes): checksum "
				    "mismatch: computed 0x%016" PRIx64 ", frame says 0x%016" PRIx64,
				    remus_repl_type_name(type), seq, len, sum, want);

	memset(m, 0, sizeof(*m));
	m->type = type;
	m->seq = seq;
	if (parse_payload(m, p + REMUS_REPL_HDR_LEN, len) < 0)
		return decoder_fail(d, -EBADMSG, "%s: malformed payload of %" PRIu32 " bytes",
				    remus_repl_type_name(type), len);
	d->consume = total;
	d->frames++;
	return 1;
}

/* ---- handshake -------------------------------------------------------- */

static bool text_eq(const struct remus_repl_text *a, const struct remus_repl_text *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static void fmt_size(char *s, size_t n, uint64_t v)
{
	if (v && v % (1ull << 30) == 0)
		snprintf(s, n, "%" PRIu64 " GiB", v >> 30);
	else if (v && v % (1ull << 20) == 0)
		snprintf(s, n, "%" PRIu64 " MiB", v >> 20);
	else if (v && v % (1ull << 10) == 0)
		snprintf(s, n, "%" PRIu64 " KiB", v >> 10);
	else
		snprintf(s, n, "%" PRIu64 " bytes", v);
}

static void fmt_uuid(char s[37], const uint8_t u[16])
{
	snprintf(s, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
		 u[11], u[12], u[13], u[14], u[15]);
}

static const struct remus_repl_ramblock *find_block(const struct remus_repl_hello *h,
						    const struct remus_repl_text *id)
{
	for (unsigned i = 0; i < h->nblocks && i < REMUS_REPL_MAX_BLOCKS; i++)
		if (text_eq(&h->blocks[i].id, id))
			return &h->blocks[i];
	return NULL;
}

int remus_repl_hello_check(const struct remus_repl_hello *want,
			   const struct remus_repl_hello *got,
			   char *reason, size_t size)
{
	char a[40], b[40];
	unsigned i;

	if (size)
		reason[0] = '\0';
	if (got->version != want->version) {
		snprintf(reason, size, "version %" PRIu32 " expected, got %" PRIu32,
			 want->version, got->version);
		return -EPROTONOSUPPORT;
	}
	if (!text_eq(&want->vm_name, &got->vm_name) ||
	    memcmp(want->vm_uuid, got->vm_uuid, sizeof(want->vm_uuid)) != 0) {
		fmt_uuid(a, want->vm_uuid);
		fmt_uuid(b, got->vm_uuid);
		snprintf(reason, size, "VM identity mismatch: expected \"%.*s\" %s, got \"%.*s\" %s",
			 (int)want->vm_name.len, want->vm_name.p ? want->vm_name.p : "", a,
			 (int)got->vm_name.len, got->vm_name.p ? got->vm_name.p : "", b);
		return -EPROTO;
	}
	if (got->page_size != want->page_size) {
		snprintf(reason, size, "page size differs: %" PRIu32 " vs %" PRIu32,
			 want->page_size, got->page_size);
		return -EPROTO;
	}
	for (i = 0; i < want->nblocks && i < REMUS_REPL_MAX_BLOCKS; i++) {
		const struct remus_repl_ramblock *w = &want->blocks[i];
		const struct remus_repl_ramblock *g = find_block(got, &w->id);

		if (!g) {
			snprintf(reason, size, "RAM layout differs: block %.*s missing",
				 (int)w->id.len, w->id.p);
			return -EPROTO;
		}
		if (g->length != w->length) {
			fmt_size(a, sizeof(a), w->length);
			fmt_size(b, sizeof(b), g->length);
			snprintf(reason, size, "RAM layout differs: block %.*s %s vs %s",
				 (int)w->id.len, w->id.p, a, b);
			return -EPROTO;
		}
	}
	for (i = 0; i < got->nblocks && i < REMUS_REPL_MAX_BLOCKS; i++) {
		const struct remus_repl_ramblock *g = &got->blocks[i];

		if (!find_block(want, &g->id)) {
			snprintf(reason, size, "RAM layout differs: unexpected block %.*s",
				 (int)g->id.len, g->id.p);
			return -EPROTO;
		}
	}
	if (got->nblocks != want->nblocks) { /* same names, one repeated */
		snprintf(reason, size, "RAM layout differs: %u blocks vs %u",
			 (unsigned)want->nblocks, (unsigned)got->nblocks);
		return -EPROTO;
	}
	return 0;
}

/* ---- primary: epoch sender -------------------------------------------- */

void remus_repl_tx_init(struct remus_repl_tx *tx)
{
	memset(tx, 0, sizeof(*tx));
	tx->chunk_max = REMUS_REPL_CHUNK_MAX;
}

void remus_repl_tx_release(struct remus_repl_tx *tx)
{
	if (tx->hash)
		XXH3_freeState(tx->hash);
	tx->hash = NULL;
	if (tx->disk_hash)
		XXH3_freeState(tx->disk_hash);
	tx->disk_hash = NULL;
	tx->open = false;
}

static int tx_disk_reset(struct remus_repl_tx *tx, uint64_t epoch)
{
	if (!tx->disk_hash && !(tx->disk_hash = XXH3_createState()))
		return -ENOMEM;
	XXH3_64bits_reset(tx->disk_hash);
	tx->disk_epoch = epoch;
	tx->disk_ops = tx->disk_bytes = 0;
	return 0;
}

int remus_repl_tx_session(struct remus_repl_tx *tx, uint64_t first_epoch)
{
	tx->open = false;
	return tx_disk_reset(tx, first_epoch);
}

int remus_repl_tx_begin(struct remus_repl_tx *tx, uint64_t epoch)
{
	if (!tx->hash && !(tx->hash = XXH3_createState()))
		return -ENOMEM;
	if ((!tx->disk_hash || tx->disk_epoch != epoch) && tx_disk_reset(tx, epoch) < 0)
		return -ENOMEM;
	XXH3_64bits_reset(tx->hash);
	tx->epoch = epoch;
	tx->data_len = tx->device_len = 0;
	tx->in_device = false;
	tx->open = true;
	return 0;
}

static int tx_chunks(struct remus_repl_tx *tx, struct remus_buf *out,
		     enum remus_repl_type type, const void *p, size_t n)
{
	struct remus_repl_msg m = { .type = type, .seq = tx->epoch };
	uint64_t *done = type == REMUS_REPL_EPOCH_DATA ? &tx->data_len : &tx->device_len;
	size_t before = remus_buf_len(out), chunk, nframes, off = 0;
	const uint8_t *bytes = p;
	int rc;

	if (!tx->open || (type == REMUS_REPL_EPOCH_DATA && tx->in_device))
		return -EINVAL;
	if (n == 0)
		return 0;
	chunk = tx->chunk_max && tx->chunk_max < REMUS_REPL_CHUNK_MAX ? tx->chunk_max
								      : REMUS_REPL_CHUNK_MAX;
	nframes = n / chunk + (n % chunk != 0);
	/* All or nothing: make room for every frame before writing one. */
	if (nframes > (SIZE_MAX - n) / (REMUS_REPL_HDR_LEN + 8 + REMUS_REPL_TRAILER_LEN))
		return -EMSGSIZE;
	rc = remus_buf_reserve(out, n + nframes * (REMUS_REPL_HDR_LEN + 8 +
						   REMUS_REPL_TRAILER_LEN));
	if (rc < 0)
		return rc;
	while (off < n) {
		m.u.chunk.offset = *done + off;
		m.u.chunk.p = bytes + off;
		m.u.chunk.len = n - off < chunk ? n - off : chunk;
		rc = remus_repl_encode(out, &m);
		if (rc < 0) {
			truncate_to(out, before);
			return rc;
		}
		off += m.u.chunk.len;
	}
	XXH3_64bits_update(tx->hash, p, n);
	*done += n;
	if (type == REMUS_REPL_EPOCH_DEVICE)
		tx->in_device = true;
	return 0;
}

int remus_repl_tx_data(struct remus_repl_tx *tx, struct remus_buf *out,
		       const void *p, size_t n)
{
	return tx_chunks(tx, out, REMUS_REPL_EPOCH_DATA, p, n);
}

int remus_repl_tx_device(struct remus_repl_tx *tx, struct remus_buf *out,
			 const void *p, size_t n)
{
	return tx_chunks(tx, out, REMUS_REPL_EPOCH_DEVICE, p, n);
}

/* Points @m at the frame of a disk operation that starts @done bytes in:
 * a WRITE is cut at REMUS_REPL_DISK_DATA_MAX, ZERO and TRIM are one frame. */
static void disk_frame_at(struct remus_repl_msg *m, uint64_t offset, uint32_t len,
			  const void *data, uint32_t done)
{
	m->u.disk.offset = offset + done;
	m->u.disk.length = len - done;
	if (m->u.disk.op == REMUS_REPL_DISK_WRITE) {
		if (m->u.disk.length > REMUS_REPL_DISK_DATA_MAX)
			m->u.disk.length = REMUS_REPL_DISK_DATA_MAX;
		m->u.disk.p = (const uint8_t *)data + done;
	}
}

int remus_repl_tx_disk(struct remus_repl_tx *tx, struct remus_buf *out, uint16_t disk,
		       enum remus_repl_disk_op op, uint64_t offset, uint32_t len,
		       const void *data)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_EPOCH_DISK };
	size_t before = remus_buf_len(out), nframes;
	uint32_t done;
	int rc;

	if (!tx->disk_hash || !remus_repl_disk_op_valid(op) || len == 0 ||
	    (op == REMUS_REPL_DISK_WRITE && !data) || offset > UINT64_MAX - len)
		return -EINVAL;
	m.seq = tx->disk_epoch;
	m.u.disk.disk = disk;
	m.u.disk.op = (uint8_t)op;
	nframes = op == REMUS_REPL_DISK_WRITE
		? len / REMUS_REPL_DISK_DATA_MAX + (len % REMUS_REPL_DISK_DATA_MAX != 0) : 1;
	rc = remus_buf_reserve(out, (op == REMUS_REPL_DISK_WRITE ? len : 0) +
			       nframes * (REMUS_REPL_HDR_LEN + REMUS_REPL_DISK_HDR +
					  REMUS_REPL_TRAILER_LEN));
	if (rc < 0)
		return rc;
	for (done = 0; done < len; done += m.u.disk.length) {
		disk_frame_at(&m, offset, len, data, done);
		rc = remus_repl_encode(out, &m);
		if (rc < 0) {
			truncate_to(out, before);
			return rc;
		}
	}
	/* Count and hash only once every frame is in: all or nothing. */
	for (done = 0; done < len; done += m.u.disk.length) {
		disk_frame_at(&m, offset, len, data, done);
		if (op == REMUS_REPL_DISK_WRITE)
			tx->disk_bytes += m.u.disk.length;
		disk_hash_update(tx->disk_hash, &m);
		tx->disk_ops++;
	}
	return 0;
}

int remus_repl_tx_commit(struct remus_repl_tx *tx, struct remus_buf *out)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_COMMIT_REQ };
	int rc;

	if (!tx->open || !tx->disk_hash || tx->disk_epoch != tx->epoch)
		return -EINVAL;
	m.seq = tx->epoch;
	m.u.commit.data_len = tx->data_len;
	m.u.commit.device_len = tx->device_len;
	m.u.commit.hash = XXH3_64bits_digest(tx->hash);
	m.u.commit.disk_ops = tx->disk_ops;
	m.u.commit.disk_bytes = tx->disk_bytes;
	m.u.commit.disk_hash = XXH3_64bits_digest(tx->disk_hash);
	rc = remus_repl_encode(out, &m);
	if (rc == 0) {
		tx->open = false;
		tx_disk_reset(tx, tx->epoch + 1); /* state exists: cannot fail */
	}
	return rc;
}

/* ---- standby: epoch assembler ----------------------------------------- */

void remus_repl_epoch_init(struct remus_repl_epoch *e)
{
	e->epoch = 0;
	remus_spill_init(&e->data, NULL, NULL);
	remus_spill_init(&e->device, NULL, NULL);
}

void remus_repl_epoch_release(struct remus_repl_epoch *e)
{
	remus_spill_release(&e->data);
	remus_spill_release(&e->device);
}

void remus_repl_assembler_init(struct remus_repl_assembler *a,
			       uint64_t first_epoch, size_t max_bytes)
{
	memset(a, 0, sizeof(*a));
	a->next_epoch = first_epoch;
	a->max_bytes = max_bytes ? max_bytes : REMUS_REPL_EPOCH_MAX_DEFAULT;
	remus_spill_init(&a->data, NULL, NULL);
	remus_spill_init(&a->device, NULL, NULL);
}

void remus_repl_assembler_store(struct remus_repl_assembler *a,
				struct remus_spill_budget *budget, const char *dir)
{
	a->budget = budget;
	a->dir = dir;
}

void remus_repl_assembler_pass_data(struct remus_repl_assembler *a, bool on)
{
	a->pass_data = on;
}

size_t remus_repl_assembler_discard(struct remus_repl_assembler *a)
{
	size_t dropped = (size_t)(a->data_len + a->device_len);

	remus_spill_release(&a->data);
	remus_spill_release(&a->device);
	a->data_len = a->device_len = 0;
	a->open = false;
	a->in_device = false;
	return dropped;
}

void remus_repl_assembler_release(struct remus_repl_assembler *a)
{
	remus_repl_assembler_discard(a);
	if (a->hash)
		XXH3_freeState(a->hash);
	a->hash = NULL;
	if (a->disk_hash)
		XXH3_freeState(a->disk_hash);
	a->disk_hash = NULL;
}

bool remus_repl_assembler_local_error(const struct remus_repl_assembler *a)
{
	return a->err && a->err != -EPROTO && a->err != -EBADMSG && a->err != -EMSGSIZE;
}

const char *remus_repl_assembler_error(const struct remus_repl_assembler *a)
{
	return a->errmsg;
}

/* Rejects the epoch being assembled, whole: its bytes are freed here and
 * never reach the caller. */
__attribute__((format(printf, 3, 4)))
static int assembler_fail(struct remus_repl_assembler *a, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->errmsg, sizeof(a->errmsg), fmt, ap);
	va_end(ap);
	a->err = err;
	remus_repl_assembler_discard(a);
	return err;
}

/* One EPOCH_DATA or EPOCH_DEVICE chunk: offset, bound, hash, then into
 * @store unless it passes through (@store NULL); @len counts the bytes. */
static int add_chunk(struct remus_repl_assembler *a, struct remus_spill *store,
		     uint64_t *len, const struct remus_repl_msg *m)
{
	const char *what = remus_repl_type_name(m->type);
	uint64_t have = a->data_len + a->device_len;
	int rc;

	if (m->u.chunk.offset != *len)
		return assembler_fail(a, -EBADMSG,
				      "epoch %" PRIu64 ": %s at offset %" PRIu64 ", expected "
				      "%" PRIu64 ": a frame is missing or repeated",
				      m->seq, what, m->u.chunk.offset, *len);
	if (m->u.chunk.len > a->max_bytes - have)
		return assembler_fail(a, -EMSGSIZE,
				      "epoch %" PRIu64 ": %" PRIu64 " + %zu bytes exceed the epoch "
				      "bound of %zu bytes (raise it or shorten the interval)",
				      m->seq, have, m->u.chunk.len, a->max_bytes);
	if (store && (rc = remus_spill_append(store, m->u.chunk.p, m->u.chunk.len)) < 0)
		return assembler_fail(a, rc, "epoch %" PRIu64 ": cannot keep %zu more bytes "
				      "after %" PRIu64 ": %s%s%s", m->seq, m->u.chunk.len, have,
				      strerror(-rc), rc == -ENOMEM ? "" : " (spill file in ",
				      rc == -ENOMEM ? "" : store->dir ? store->dir : "/var/tmp)");
	*len += m->u.chunk.len;
	XXH3_64bits_update(a->hash, m->u.chunk.p, m->u.chunk.len);
	return 0;
}

int remus_repl_assembler_feed(struct remus_repl_assembler *a,
			      const struct remus_repl_msg *m,
			      struct remus_repl_epoch *out)
{
	const char *what = remus_repl_type_name(m->type);
	uint64_t hash;

	if (m->type != REMUS_REPL_EPOCH_DATA && m->type != REMUS_REPL_EPOCH_DEVICE &&
	    m->type != REMUS_REPL_EPOCH_DISK && m->type != REMUS_REPL_COMMIT_REQ)
		return -EINVAL;
	if (a->err)
		return a->err;
	if (m->seq < a->next_epoch)
		return assembler_fail(a, -EPROTO,
				      "%s for epoch %" PRIu64 ", which already committed "
				      "(assembling epoch %" PRIu64 ")",
				      what, m->seq, a->next_epoch);
	if (m->seq > a->next_epoch)
		return assembler_fail(a, -EPROTO,
				      "%s for epoch %" PRIu64 " out of order: epoch %" PRIu64
				      " expected", what, m->seq, a->next_epoch);
	if (!a->open) {
		if ((!a->hash && !(a->hash = XXH3_createState())) ||
		    (!a->disk_hash && !(a->disk_hash = XXH3_createState())))
			return assembler_fail(a, -ENOMEM, "epoch %" PRIu64 ": out of memory",
					      m->seq);
		XXH3_64bits_reset(a->hash);
		XXH3_64bits_reset(a->disk_hash);
		a->disk_ops = a->disk_bytes = 0;
		remus_spill_release(&a->data);
		remus_spill_release(&a->device);
		remus_spill_init(&a->data, a->budget, a->dir);
		remus_spill_init(&a->device, a->budget, a->dir);
		a->data_len = a->device_len = 0;
		a->passing = a->pass_data;
		a->in_device = false;
		a->open = true;
	}

	switch (m->type) {
	case REMUS_REPL_EPOCH_DATA:
		if (a->in_device)
			return assembler_fail(a, -EPROTO, "epoch %" PRIu64 ": EPOCH_DATA after "
					      "EPOCH_DEVICE", m->seq);
		return add_chunk(a, a->passing ? NULL : &a->data, &a->data_len, m);
	case REMUS_REPL_EPOCH_DEVICE:
		a->in_device = true;
		return add_chunk(a, &a->device, &a->device_len, m);
	case REMUS_REPL_EPOCH_DISK:
		disk_hash_update(a->disk_hash, m);
		a->disk_ops++;
		if (m->u.disk.op == REMUS_REPL_DISK_WRITE)
			a->disk_bytes += m->u.disk.length;
		return 0;
	default:
		break;
	}

	if (m->u.commit.data_len != a->data_len || m->u.commit.device_len != a->device_len)
		return assembler_fail(a, -EBADMSG,
				      "epoch %" PRIu64 " incomplete: COMMIT_REQ announces "
				      "%" PRIu64 " + %" PRIu64 " bytes (data + device), "
				      "received %" PRIu64 " + %" PRIu64,
				      m->seq, m->u.commit.data_len, m->u.commit.device_len,
				      a->data_len, a->device_len);
	hash = XXH3_64bits_digest(a->hash);
	if (hash != m->u.commit.hash)
		return assembler_fail(a, -EBADMSG,
				      "epoch %" PRIu64 ": end-to-end hash mismatch: assembled "
				      "0x%016" PRIx64 ", primary says 0x%016" PRIx64,
				      m->seq, hash, m->u.commit.hash);
	if (m->u.commit.disk_ops != a->disk_ops || m->u.commit.disk_bytes != a->disk_bytes)
		return assembler_fail(a, -EBADMSG,
				      "epoch %" PRIu64 " disk writes incomplete: COMMIT_REQ "
				      "announces %" PRIu64 " ops / %" PRIu64 " bytes, received "
				      "%" PRIu64 " / %" PRIu64,
				      m->seq, m->u.commit.disk_ops, m->u.commit.disk_bytes,
				      a->disk_ops, a->disk_bytes);
	hash = XXH3_64bits_digest(a->disk_hash);
	if (hash != m->u.commit.disk_hash)
		return assembler_fail(a, -EBADMSG,
				      "epoch %" PRIu64 ": disk hash mismatch: received "
				      "0x%016" PRIx64 ", primary says 0x%016" PRIx64,
				      m->seq, hash, m->u.commit.disk_hash);

	/* Hand the stores over whole; the next epoch starts empty. */
	out->epoch = m->seq;
	out->data = a->data;
	out->device = a->device;
	remus_spill_init(&a->data, a->budget, a->dir);
	remus_spill_init(&a->device, a->budget, a->dir);
	a->data_len = a->device_len = 0;
	a->open = false;
	a->in_device = false;
	a->next_epoch++;
	return 1;
}
