// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The composer of engine v2's checkpoint stream: QEMU's x-ignore-shared
 * migration in, the stream engine v1 would have read out, with the dirty
 * pages of the shared block added from the tracker's copy (design in
 * v2stream.h).  Record layouts are QEMU 10.0's (migration/savevm.c,
 * migration/ram.c), as migstream/migstream.h describes them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/wire.h"
#include "controller/v2stream.h"

#define PAGE 4096u

void remus_v2stream_init(struct remus_v2stream *s, const char *block, const uint8_t *ram,
			 uint64_t ram_size, const uint64_t *bits)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->block, sizeof(s->block), "%s", block);
	s->ram = ram;
	s->ram_size = ram_size;
	s->bits = bits;
}

static int __attribute__((format(printf, 2, 3))) bad(struct remus_v2stream *s,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/*
 * 0x07, be32 len, machine name, then subsections (0x05, u8 len, name,
 * be32 version, fields) as parser A accepted them: everything but
 * "configuration/capabilities" is copied.  The fields' sizes are those
 * the parser checked (capabilities: be32 n, n x (u8 len + name); uuid: 16
 * bytes; target-page-bits: be32).
 */
static int put_config(struct remus_v2stream *s, const struct remus_migstream_token *tok,
		      struct remus_buf *out)
{
	const uint8_t *p = tok->raw;
	size_t n = (size_t)(tok->end - tok->start), pos, at;

	if (n < 5)
		return bad(s, "configuration record too short");
	pos = 5 + remus_get_be32(p + 1);
	if (pos > n)
		return bad(s, "configuration record cut");
	if (remus_buf_append(out, p, pos) < 0)
		return -ENOMEM;
	while (pos < n) {
		uint8_t slen;
		const uint8_t *name;
		size_t body;

		at = pos;
		if (p[pos] != REMUS_MIG_SUBSECTION || pos + 2 > n)
			return bad(s, "configuration: unexpected byte after the machine name");
		slen = p[pos + 1];
		name = p + pos + 2;
		pos += 2 + (size_t)slen + 4;
		if (pos > n)
			return bad(s, "configuration subsection cut");
		if (slen == 26 && memcmp(name, "configuration/capabilities", 26) == 0) {
			uint32_t k, i;

			if (pos + 4 > n)
				return bad(s, "capabilities subsection cut");
			k = remus_get_be32(p + pos);
			pos += 4;
			for (i = 0; i < k; i++) {
				if (pos >= n)
					return bad(s, "capabilities subsection cut");
				pos += 1 + (size_t)p[pos];
			}
			if (pos > n)
				return bad(s, "capabilities subsection cut");
			continue; /* dropped */
		}
		if (slen == 18 && memcmp(name, "configuration/uuid", 18) == 0)
			body = 16;
		else if (slen == 30 && memcmp(name, "configuration/target-page-bits", 30) == 0)
			body = 4;
		else
			return bad(s, "configuration: unexpected subsection");
		pos += body;
		if (pos > n)
			return bad(s, "configuration subsection cut");
		if (remus_buf_append(out, p + at, pos - at) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* be64 (total | MEM_SIZE), then per block u8 len, idstr, be64 length: the
 * list as QEMU writes it without x-ignore-shared (no mr_addr). */
static int put_mem_size(struct remus_v2stream *s, const struct remus_migstream_token *tok,
			struct remus_buf *out)
{
	uint8_t b[8];
	uint64_t total = 0;
	uint32_t i;

	for (i = 0; i < tok->nblocks; i++) {
		total += tok->blocks[i].length;
		if (strcmp(tok->blocks[i].name, s->block) != 0)
			continue;
		if (tok->blocks[i].length != s->ram_size) {
			snprintf(s->error, sizeof(s->error), "QEMU's RAM block '%s' is %llu bytes, "
				 "the tracker's file %llu", s->block,
				 (unsigned long long)tok->blocks[i].length,
				 (unsigned long long)s->ram_size);
			return -EBADMSG;
		}
		s->block_seen = true;
	}
	if (!s->block_seen)
		return bad(s, "QEMU's migration has no RAM block '%s' (the shared block)",
			   s->block);
	remus_put_be64(b, total | REMUS_RAM_FLAG_MEM_SIZE);
	if (remus_buf_append(out, b, 8) < 0)
		return -ENOMEM;
	for (i = 0; i < tok->nblocks; i++) {
		uint8_t len = (uint8_t)strlen(tok->blocks[i].name);

		remus_put_be64(b, tok->blocks[i].length);
		if (remus_buf_append(out, &len, 1) < 0 ||
		    remus_buf_append(out, tok->blocks[i].name, len) < 0 ||
		    remus_buf_append(out, b, 8) < 0)
			return -ENOMEM;
	}
	return 0;
}

int remus_v2stream_token(struct remus_v2stream *s, const struct remus_migstream_token *tok,
			 struct remus_buf *out)
{
	switch (tok->kind) {
	case REMUS_MS_CONFIG:
		return put_config(s, tok, out);
	case REMUS_MS_RAM_MEM_SIZE:
		return put_mem_size(s, tok, out);
	case REMUS_MS_START:
	case REMUS_MS_PART:
		s->in_end = false;
		break;
	case REMUS_MS_END:
		if (s->injected || s->in_end)
			return bad(s, "a second END(ram) section in one migration");
		s->in_end = true;
		break;
	case REMUS_MS_RAM_PAGE:
	case REMUS_MS_RAM_ZERO:
		if (tok->block && strcmp(tok->block->name, s->block) == 0)
			return bad(s, "QEMU sent a page of the shared block '%s': is x-ignore-shared "
				   "on and its RAM share=on?", s->block);
		break;
	case REMUS_MS_RAM_EOS:
		if (!s->in_end)
			break;
		if (!s->block_seen)
			return bad(s, "END(ram) before the block list");
		s->in_end = false;
		s->injecting = true;
		return 1;
	case REMUS_MS_DEVICE:
		if (!s->injected)
			return bad(s, "device state before the RAM section ended");
		break;
	default:
		break;
	}
	return remus_buf_append(out, tok->raw, (size_t)(tok->end - tok->start)) < 0 ? -ENOMEM : 0;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];

	return memcmp(p, zero, PAGE) == 0;
}

int remus_v2stream_pump(struct remus_v2stream *s, struct remus_buf *out, size_t max)
{
	uint64_t npages = s->ram_size / PAGE, words = (npages + 63) / 64;
	size_t start = remus_buf_len(out);
	uint8_t hdr[8 + 1 + 256];

	if (!s->injecting)
		return 0;
	while (s->cursor < npages && remus_buf_len(out) - start < max) {
		uint64_t w = s->cursor / 64, bits;
		const uint8_t *page;
		uint64_t flags;
		size_t h = 8;

		bits = s->bits[w] >> (s->cursor % 64);
		if (!bits) {
			/* the rest of this word is clean */
			s->cursor = (w + 1) * 64;
			if (w + 1 >= words)
				s->cursor = npages;
			continue;
		}
		s->cursor += (uint64_t)__builtin_ctzll(bits);
		if (s->cursor >= npages)
			break;
		page = s->ram + s->cursor * PAGE;
		flags = page_is_zero(page) ? REMUS_RAM_FLAG_ZERO : REMUS_RAM_FLAG_PAGE;
		if (s->named)
			flags |= REMUS_RAM_FLAG_CONTINUE;
		remus_put_be64(hdr, s->cursor * PAGE | flags);
		if (!s->named) {
			size_t len = strlen(s->block);

			hdr[8] = (uint8_t)len;
			memcpy(hdr + 9, s->block, len);
			h += 1 + len;
		}
		if (flags & REMUS_RAM_FLAG_ZERO) {
			hdr[h++] = 0;
			if (remus_buf_append(out, hdr, h) < 0)
				return -ENOMEM;
			s->zero_pages++;
		} else {
			if (remus_buf_append(out, hdr, h) < 0 ||
			    remus_buf_append(out, page, PAGE) < 0)
				return -ENOMEM;
			s->pages++;
		}
		s->named = true;
		s->cursor++;
	}
	if (s->cursor < npages)
		return 1;
	remus_put_be64(hdr, REMUS_RAM_FLAG_EOS);
	if (remus_buf_append(out, hdr, 8) < 0)
		return -ENOMEM;
	s->injecting = false;
	s->injected = true;
	return 0;
}
