// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QEMU filter-redirector framing (see frame.h): a three-state reader
 * (header, body, skip) that keeps its place across reads of any size, and
 * the encoder used to write released frames back to the filter's indev.
 */
#include "netbuffer/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

int remus_nbf_reader_init(struct remus_nbf_reader *r, bool vnet_hdr, uint32_t max_len)
{
	memset(r, 0, sizeof(*r));
	r->vnet_hdr = vnet_hdr;
	r->max_len = max_len ? max_len : REMUS_NBF_MAX_FRAME;
	r->state = REMUS_NBF_HEADER;
	r->body = malloc(r->max_len);
	return r->body ? 0 : -ENOMEM;
}

void remus_nbf_reader_release(struct remus_nbf_reader *r)
{
	free(r->body);
	r->body = NULL;
}

bool remus_nbf_reader_idle(const struct remus_nbf_reader *r)
{
	return r->state == REMUS_NBF_HEADER && r->hdr_have == 0;
}

static size_t min_size(size_t a, uint64_t b)
{
	return b < a ? (size_t)b : a;
}

/* A complete header is in r->hdr: decide what the frame is.  Returns true
 * if its bytes are to be read (state BODY), false if it was dropped (state
 * HEADER again or SKIP). */
static bool parse_header(struct remus_nbf_reader *r)
{
	r->hdr_have = 0;
	r->len = remus_get_be32(r->hdr);
	r->vnet_hdr_len = r->vnet_hdr ? remus_get_be32(r->hdr + 4) : 0;
	if (r->len == 0) {
		/* Nothing follows; QEMU never sends this (filter_send skips
		 * empty frames), so it is noise, but harmless noise. */
		r->malformed++;
		r->state = REMUS_NBF_HEADER;
		return false;
	}
	if (r->len > r->max_len || r->vnet_hdr_len > r->len) {
		/* The length still delimits the frame: skip it and stay in
		 * sync with the frames after it. */
		r->malformed++;
		r->skip_left = r->len;
		r->state = REMUS_NBF_SKIP;
		return false;
	}
	r->body_have = 0;
	r->state = REMUS_NBF_BODY;
	return true;
}

void remus_nbf_reader_feed(struct remus_nbf_reader *r, const uint8_t *p, size_t n,
			   remus_nbf_frame_cb *cb, void *opaque)
{
	size_t pos = 0, k, need;

	while (pos < n) {
		switch (r->state) {
		case REMUS_NBF_HEADER:
			need = r->vnet_hdr ? 8 : 4;
			k = min_size(n - pos, need - r->hdr_have);
			memcpy(r->hdr + r->hdr_have, p + pos, k);
			r->hdr_have += k;
			pos += k;
			if (r->hdr_have < need || !parse_header(r))
				break;
			if (n - pos >= r->len) {
				/* The whole frame is in this read: no copy. */
				r->state = REMUS_NBF_HEADER;
				r->frames++;
				cb(opaque, p + pos, r->len, r->vnet_hdr_len);
				pos += r->len;
			}
			break;
		case REMUS_NBF_BODY:
			k = min_size(n - pos, r->len - r->body_have);
			memcpy(r->body + r->body_have, p + pos, k);
			r->body_have += k;
			pos += k;
			if (r->body_have == r->len) {
				r->state = REMUS_NBF_HEADER;
				r->frames++;
				cb(opaque, r->body, r->len, r->vnet_hdr_len);
			}
			break;
		case REMUS_NBF_SKIP:
			k = min_size(n - pos, r->skip_left);
			r->skip_left -= k;
			r->skipped_bytes += k;
			pos += k;
			if (r->skip_left == 0)
				r->state = REMUS_NBF_HEADER;
			break;
		}
	}
}

int remus_nbf_encode(struct remus_buf *out, bool vnet_hdr, const uint8_t *frame,
		     uint32_t len, uint32_t vnet_hdr_len)
{
	uint8_t hdr[8];
	size_t hlen = vnet_hdr ? 8 : 4;
	int rc;

	if (len == 0 || len > REMUS_NBF_MAX_FRAME || vnet_hdr_len > len)
		return -EINVAL;
	remus_put_be32(hdr, len);
	remus_put_be32(hdr + 4, vnet_hdr_len);
	/* Reserve first so that a failure leaves @out unchanged. */
	rc = remus_buf_reserve(out, hlen + len);
	if (rc < 0)
		return rc;
	memcpy(remus_buf_tail(out), hdr, hlen);
	memcpy(remus_buf_tail(out) + hlen, frame, len);
	remus_buf_commit(out, hlen + len);
	return 0;
}
