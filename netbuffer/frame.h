/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to netbuffer/: the incremental reader of QEMU's filter-redirector
 * framing, and its encoder for the way back.
 *
 * QEMU's net/filter-mirror.c writes every frame as
 *
 *     be32 length | [be32 vnet_hdr_len, if vnet_hdr_support=on] | length bytes
 *
 * and reads the same format on the filter's indev.  The stream comes from
 * QEMU and is still treated as untrusted: the reader is bounded (a frame
 * is at most max_len bytes, default QEMU's NET_BUFSIZE), takes its input in
 * pieces of any size, and never loses sync where a length can be trusted to
 * skip by:
 *
 *     length 0                      dropped (nothing to skip)
 *     length > max_len              dropped, its length bytes skipped
 *     vnet_hdr_len > length         dropped, its length bytes skipped
 *
 * Each drop is counted in `malformed`; the reader never logs (its user
 * knows which NIC it reads and logs the first drop).
 */
#ifndef REMUS_NETBUFFER_FRAME_H
#define REMUS_NETBUFFER_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* QEMU's NET_BUFSIZE (include/net/net.h): the largest frame its socket
 * reader (net_fill_rstate) accepts on the indev; we neither accept nor
 * send anything larger. */
#define REMUS_NBF_MAX_FRAME (4096u + 65536u)

/* Called once per well-formed frame: @frame (borrowed, valid only during
 * the call) holds @len bytes (1..max_len), the first @vnet_hdr_len of
 * which are the virtio-net header (0 without vnet_hdr_support).  What to
 * do with the frame (queue, drop on overflow) is the callback's business:
 * the reader cannot fail. */
typedef void remus_nbf_frame_cb(void *opaque, const uint8_t *frame, uint32_t len,
				uint32_t vnet_hdr_len);

enum remus_nbf_state {
	REMUS_NBF_HEADER, /* collecting the 4 or 8 header bytes */
	REMUS_NBF_BODY,   /* collecting a frame's bytes into buf */
	REMUS_NBF_SKIP,   /* discarding a malformed frame's bytes */
};

struct remus_nbf_reader {
	bool vnet_hdr;        /* the filter has vnet_hdr_support=on */
	uint32_t max_len;     /* largest frame accepted */
	enum remus_nbf_state state;
	uint8_t hdr[8];
	size_t hdr_have;
	uint32_t len, vnet_hdr_len; /* of the frame being read */
	uint64_t skip_left;   /* REMUS_NBF_SKIP: bytes still to discard */
	uint8_t *body;        /* owned; max_len bytes */
	size_t body_have;
	/* Counters, cumulative. */
	uint64_t frames;      /* delivered to the callback */
	uint64_t malformed;   /* dropped as described above */
	uint64_t skipped_bytes;
};

/* @max_len: 0 for REMUS_NBF_MAX_FRAME.  The body buffer (max_len bytes)
 * is allocated here so that reading never fails later.  Returns 0 or
 * -ENOMEM (then release is still safe); release with
 * remus_nbf_reader_release(). */
int remus_nbf_reader_init(struct remus_nbf_reader *r, bool vnet_hdr, uint32_t max_len);
/* Frees the body buffer.  Idempotent. */
void remus_nbf_reader_release(struct remus_nbf_reader *r);
/* True if no frame is partly read (the stream is at a frame boundary). */
bool remus_nbf_reader_idle(const struct remus_nbf_reader *r);

/*
 * Consumes all @n bytes of @p (borrowed), calling @cb for each complete
 * frame, in order.  A frame wholly inside @p is passed without copying;
 * one split across calls is assembled in the reader.  Cannot fail.
 */
void remus_nbf_reader_feed(struct remus_nbf_reader *r, const uint8_t *p, size_t n,
			   remus_nbf_frame_cb *cb, void *opaque);

/* Appends one frame in the same format to @out: the vnet_hdr_len word
 * only if @vnet_hdr.  Returns 0, -EINVAL (len 0, len > REMUS_NBF_MAX_FRAME
 * or vnet_hdr_len > len: QEMU's reader would close the chardev), or the
 * buffer's -EMSGSIZE / -ENOMEM with @out unchanged. */
int remus_nbf_encode(struct remus_buf *out, bool vnet_hdr, const uint8_t *frame,
		     uint32_t len, uint32_t vnet_hdr_len);

#endif
