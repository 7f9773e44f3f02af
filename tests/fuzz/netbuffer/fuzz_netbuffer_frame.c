// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for the netbuffer's reader of QEMU's filter-redirector
 * framing (netbuffer/frame.c), which parses what a QEMU process writes.
 *
 * Input: two control bytes, then the stream.  Byte 0: the low 7 bits cut
 * the stream into reads of that many bytes (0: one read), the top bit
 * turns vnet_hdr_support on.  Byte 1: the largest frame accepted, in units
 * of 16 bytes (0: QEMU's NET_BUFSIZE), so that small inputs reach the
 * oversize path.  Besides "no crash, no leak, no UB" it checks what a
 * fuzzer can break:
 *  - the frames and the malformed count do not depend on how the stream
 *    is cut into reads;
 *  - every frame has 1 <= length <= max and vnet_hdr_len <= length;
 *  - re-encoding the frames gives a stream that reads back to the same
 *    frames with nothing malformed (encoder and reader agree);
 *  - bytes are conserved: headers + frames + skipped bytes + what is left
 *    in a partial frame add up to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/wire.h"
#include "netbuffer/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	struct remus_buf log;   /* "len vnet bytes" per frame */
	struct remus_buf again; /* the frames re-encoded */
	bool vnet;
	uint32_t max;
	uint64_t bytes;         /* frame bytes seen */
};

static void on_frame(void *opaque, const uint8_t *frame, uint32_t len, uint32_t vnet)
{
	struct sink *s = opaque;
	uint8_t hdr[8];

	if (len == 0 || len > s->max || vnet > len || (!s->vnet && vnet != 0))
		abort();
	remus_put_be32(hdr, len);
	remus_put_be32(hdr + 4, vnet);
	if (remus_buf_append(&s->log, hdr, 8) < 0 || remus_buf_append(&s->log, frame, len) < 0)
		abort();
	if (remus_nbf_encode(&s->again, s->vnet, frame, len, vnet) < 0)
		abort();
	s->bytes += len;
}

/* Feeds @p in pieces of @piece (0: all at once). */
static void feed(struct remus_nbf_reader *r, const uint8_t *p, size_t n, size_t piece,
		 struct sink *s)
{
	size_t pos = 0, k;

	if (piece == 0)
		piece = n ? n : 1;
	while (pos < n) {
		k = n - pos < piece ? n - pos : piece;
		remus_nbf_reader_feed(r, p + pos, k, on_frame, s);
		pos += k;
	}
}

static void sink_init(struct sink *s, bool vnet, uint32_t max)
{
	memset(s, 0, sizeof(*s));
	remus_buf_init(&s->log, 0);
	remus_buf_init(&s->again, 0);
	s->vnet = vnet;
	s->max = max;
}

static void sink_release(struct sink *s)
{
	remus_buf_release(&s->log);
	remus_buf_release(&s->again);
}

static bool same(const struct remus_buf *a, const struct remus_buf *b)
{
	return remus_buf_len(a) == remus_buf_len(b) &&
	       (remus_buf_len(a) == 0 ||
		memcmp(remus_buf_data(a), remus_buf_data(b), remus_buf_len(a)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_nbf_reader whole, cut, back;
	struct sink sw, sc, sb;
	uint32_t max;
	size_t piece, hlen, left;
	bool vnet;

	if (size < 2)
		return 0;
	vnet = data[0] & 0x80;
	piece = data[0] & 0x7f;
	max = data[1] ? (uint32_t)data[1] * 16u : REMUS_NBF_MAX_FRAME;
	hlen = vnet ? 8 : 4;
	data += 2;
	size -= 2;

	sink_init(&sw, vnet, max);
	sink_init(&sc, vnet, max);
	sink_init(&sb, vnet, max);
	if (remus_nbf_reader_init(&whole, vnet, max) < 0 ||
	    remus_nbf_reader_init(&cut, vnet, max) < 0 ||
	    remus_nbf_reader_init(&back, vnet, max) < 0)
		abort();
	feed(&whole, data, size, 0, &sw);
	feed(&cut, data, size, piece, &sc);
	if (!same(&sw.log, &sc.log) || whole.malformed != cut.malformed ||
	    whole.frames != cut.frames || whole.skipped_bytes != cut.skipped_bytes ||
	    whole.state != cut.state)
		abort();

	/* Every input byte is a header, a frame byte, a skipped byte or part
	 * of the frame in progress (a skip in progress is already counted). */
	left = whole.state == REMUS_NBF_HEADER ? whole.hdr_have
	     : whole.state == REMUS_NBF_BODY ? hlen + whole.body_have : 0;
	if ((whole.frames + whole.malformed) * hlen + sw.bytes + whole.skipped_bytes + left != size)
		abort();

	feed(&back, remus_buf_data(&sw.again), remus_buf_len(&sw.again), piece, &sb);
	if (!same(&sw.log, &sb.log) || back.malformed != 0 || !remus_nbf_reader_idle(&back))
		abort();

	remus_nbf_reader_release(&whole);
	remus_nbf_reader_release(&cut);
	remus_nbf_reader_release(&back);
	sink_release(&sw);
	sink_release(&sc);
	sink_release(&sb);
	return 0;
}
