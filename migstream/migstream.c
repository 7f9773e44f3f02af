// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Incremental framing parser, standby rewriter and failover tail for
 * QEMU 10.0's precopy stream (design in migstream.h).
 *
 * The parser keeps unconsumed input in one bounded buffer.  Each call to
 * remus_migstream_next() first drops the bytes of the token it returned
 * last time, then decodes one record from the front of the buffer with a
 * sticky-error reader.  A record is decoded into locals and committed to
 * the parser state only when it is complete, so running out of input
 * (-ENODATA from the reader) just means "come back with more": the next
 * call starts again at the same record.  Retrying costs O(record) and no
 * record but the device part is larger than a page plus a block list.
 *
 * Layouts checked against QEMU 10.0 migration/savevm.c (header,
 * configuration vmstate and its subsections, commands, section headers
 * and footers, EOF, vmdescription) and migration/ram.c (ram_load_precopy:
 * the record header is be64 address | flags below the target page size;
 * CONTINUE reuses the previous record's block; a zero page carries one
 * byte that must be 0).
 */
#include "migstream/migstream.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

#define DEFAULT_PAGE_BITS 12
#define MIN_PAGE_BITS 10
#define MAX_PAGE_BITS 16
#define DEFAULT_MAX_RAM (1ull << 40)
#define DEFAULT_MAX_BUFFERED ((size_t)256 << 20)
#define MAX_CAPS 64
#define SECTION_TAIL 5 /* footer, or a PART/END header: type + be32 sid */

enum state {
	ST_HEADER, /* expecting magic + version */
	ST_TOP,    /* between top-level records */
	ST_RAM,    /* inside a RAM section body */
	ST_FOOTER, /* RAM body ended with EOS; footer due */
	ST_DEVICE, /* collecting the device part until the channel closes */
	ST_VMDESC, /* device part returned; vmdescription due */
	ST_DONE,
};

struct remus_migstream {
	struct remus_migstream_opts opts;
	struct remus_buf in; /* unconsumed input, first byte at offset base */
	uint64_t base;
	size_t pending;      /* bytes of the last token, dropped on next call */
	enum state st;
	bool finished;       /* channel closed */
	int err;             /* sticky */
	char msg[256];

	uint32_t page_bits, page_size;
	bool ignore_shared;
	bool seen_config;
	uint64_t top_records; /* top-level records after the header */
	char machine[REMUS_MIGSTREAM_MAX_NAME + 1];

	bool ram_started, ram_ended;
	uint32_t ram_sid;
	enum remus_migstream_kind body_of; /* START, PART or END */
	char idstr[256];

	struct remus_migstream_block *blocks;  /* owned, MAX_BLOCKS entries */
	struct remus_migstream_block *scratch; /* owned, for a new list */
	uint32_t nblocks;
	bool have_cur;
	uint32_t cur_block;

	/* device part */
	uint32_t dev_sid, dev_instance, dev_version;
	char dev_idstr[256];
	/* The last NUL of the device part, so the end search does not rescan
	 * what it has seen (the buffer start is fixed in ST_DEVICE). */
	size_t dev_scanned;  /* bytes searched for NULs */
	bool dev_have_nul;
	size_t dev_last_nul;
	size_t vmdesc_len; /* ST_VMDESC: bytes of the vmdescription */
};

static const char *const kind_names[] = {
	[REMUS_MS_HEADER] = "HEADER",
	[REMUS_MS_CONFIG] = "CONFIG",
	[REMUS_MS_COMMAND] = "COMMAND",
	[REMUS_MS_START] = "START",
	[REMUS_MS_PART] = "PART",
	[REMUS_MS_END] = "END",
	[REMUS_MS_FOOTER] = "FOOTER",
	[REMUS_MS_RAM_MEM_SIZE] = "RAM_MEM_SIZE",
	[REMUS_MS_RAM_ZERO] = "RAM_ZERO",
	[REMUS_MS_RAM_PAGE] = "RAM_PAGE",
	[REMUS_MS_RAM_EOS] = "RAM_EOS",
	[REMUS_MS_RAM_MULTIFD_FLUSH] = "RAM_MULTIFD_FLUSH",
	[REMUS_MS_DEVICE] = "DEVICE",
	[REMUS_MS_VMDESC] = "VMDESC",
};

const char *remus_migstream_kind_name(enum remus_migstream_kind kind)
{
	if ((unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) && kind_names[kind])
		return kind_names[kind];
	return "?";
}

static const char *const state_names[] = {
	[ST_HEADER] = "file header", [ST_TOP] = "top level",
	[ST_RAM] = "RAM section body", [ST_FOOTER] = "RAM section footer",
	[ST_DEVICE] = "device part", [ST_VMDESC] = "vmdescription",
	[ST_DONE] = "end of stream",
};

/* Records the first error with a message; returns @rc. */
__attribute__((format(printf, 4, 5)))
static int fail(struct remus_migstream *p, int rc, uint64_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err)
		return p->err;
	p->err = rc;
	n = snprintf(p->msg, sizeof(p->msg), "migration stream offset %llu: ",
		     (unsigned long long)at);
	if (n < 0 || (size_t)n >= sizeof(p->msg))
		return rc;
	va_start(ap, fmt);
	vsnprintf(p->msg + n, sizeof(p->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

/* After a group of reads: 0 if they all succeeded, -ENODATA if input ran
 * out, else a recorded error naming @what. */
static int check(struct remus_migstream *p, const struct remus_wire_reader *r,
		 uint64_t at, const char *what)
{
	if (!r->err)
		return 0;
	if (r->err == -ENODATA)
		return -ENODATA;
	if (r->err == -EMSGSIZE)
		return fail(p, -EMSGSIZE, at, "%s: length out of bounds", what);
	return fail(p, r->err, at, "%s: malformed", what);
}

int remus_migstream_new(const struct remus_migstream_opts *opts,
			struct remus_migstream **out)
{
	struct remus_migstream *p = NULL;
	int rc;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = -ENOMEM;
		goto out;
	}
	if (opts)
		p->opts = *opts;
	if (!p->opts.page_bits)
		p->opts.page_bits = DEFAULT_PAGE_BITS;
	if (!p->opts.max_ram)
		p->opts.max_ram = DEFAULT_MAX_RAM;
	if (!p->opts.max_buffered)
		p->opts.max_buffered = DEFAULT_MAX_BUFFERED;
	if (p->opts.page_bits < MIN_PAGE_BITS || p->opts.page_bits > MAX_PAGE_BITS) {
		rc = -EINVAL;
		goto out;
	}
	p->page_bits = p->opts.page_bits;
	p->page_size = 1u << p->page_bits;
	remus_buf_init(&p->in, p->opts.max_buffered);
	p->blocks = calloc(REMUS_MIGSTREAM_MAX_BLOCKS, sizeof(*p->blocks));
	p->scratch = calloc(REMUS_MIGSTREAM_MAX_BLOCKS, sizeof(*p->scratch));
	if (!p->blocks || !p->scratch) {
		rc = -ENOMEM;
		goto out;
	}
	p->st = ST_HEADER;
	if (p->opts.continued) {
		p->st = ST_TOP;
		p->seen_config = true;
		p->ram_started = true;
		p->ram_sid = p->opts.ram_sid;
		p->ignore_shared = p->opts.ignore_shared;
		p->body_of = REMUS_MS_PART;
	}
	*out = p;
	p = NULL;
	rc = 0;
out:
	remus_migstream_free(p);
	return rc;
}

void remus_migstream_free(struct remus_migstream *p)
{
	if (!p)
		return;
	remus_buf_release(&p->in);
	free(p->blocks);
	free(p->scratch);
	free(p);
}

static int overflow(struct remus_migstream *p)
{
	return fail(p, -EMSGSIZE, p->base + remus_buf_len(&p->in),
		    "more than %zu bytes buffered in the %s (device part too large?)",
		    p->opts.max_buffered, state_names[p->st]);
}

int remus_migstream_feed(struct remus_migstream *p, const void *data, size_t len)
{
	int rc;

	if (p->err)
		return p->err;
	if (p->finished)
		return -EINVAL;
	if (!len)
		return 0;
	/* Bytes of the last token still count until the next call drops them. */
	rc = remus_buf_append(&p->in, data, len);
	return rc == -EMSGSIZE ? overflow(p) : rc;
}

ssize_t remus_migstream_read_fd(struct remus_migstream *p, int fd, size_t max)
{
	ssize_t r;

	if (p->err)
		return p->err;
	if (p->finished)
		return -EINVAL;
	r = remus_buf_read_fd(&p->in, fd, max);
	return r == -EMSGSIZE ? overflow(p) : r;
}

void remus_migstream_finish(struct remus_migstream *p)
{
	p->finished = true;
}

bool remus_migstream_complete(const struct remus_migstream *p)
{
	return p->st == ST_DONE;
}

uint64_t remus_migstream_offset(const struct remus_migstream *p)
{
	return p->base + p->pending;
}

const char *remus_migstream_error(const struct remus_migstream *p)
{
	return p->msg;
}

uint32_t remus_migstream_page_size(const struct remus_migstream *p)
{
	return p->page_size;
}

/* ---- top level ---- */

static int parse_header(struct remus_migstream *p, struct remus_wire_reader *r,
			struct remus_migstream_token *tok)
{
	uint32_t magic, version;
	int rc;

	magic = remus_wire_get_be32(r);
	if (!r->err && magic != REMUS_MIG_MAGIC)
		return fail(p, -EBADMSG, p->base, "bad magic 0x%08x, not a QEMU migration stream",
			    magic);
	version = remus_wire_get_be32(r);
	if ((rc = check(p, r, p->base, "file header")) < 0)
		return rc;
	if (version != REMUS_MIG_VERSION)
		return fail(p, -EBADMSG, p->base + 4,
			    "stream version %u, only version %u is supported", version,
			    REMUS_MIG_VERSION);
	tok->kind = REMUS_MS_HEADER;
	p->st = ST_TOP;
	return 0;
}

static bool name_is(const uint8_t *s, size_t n, const char *lit)
{
	return s && n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* The configuration vmstate: be32 len + machine name, then subsections
 * (0x05, u8 len + name, be32 version, fields) for as long as the next
 * byte is 0x05.  QEMU's loader peeks that byte too, so the record is only
 * complete once the byte after it has arrived. */
static int parse_config(struct remus_migstream *p, struct remus_wire_reader *r,
			struct remus_migstream_token *tok)
{
	uint32_t len, bits = p->page_bits;
	const uint8_t *name, *sname;
	bool ignore_shared = false;
	uint64_t at;
	int rc;

	if (p->seen_config || p->top_records)
		return fail(p, -EBADMSG, p->base,
			    "configuration section not right after the file header");
	len = remus_wire_get_len32(r, REMUS_MIGSTREAM_MAX_NAME);
	name = remus_wire_get_bytes(r, len);
	if ((rc = check(p, r, p->base, "configuration machine name")) < 0)
		return rc;
	for (;;) {
		uint8_t slen;

		if (!remus_wire_reader_remaining(r))
			return -ENODATA;
		if (r->p[r->pos] != REMUS_MIG_SUBSECTION)
			break;
		at = p->base + r->pos;
		remus_wire_get_u8(r);
		slen = remus_wire_get_u8(r);
		sname = remus_wire_get_bytes(r, slen);
		remus_wire_get_be32(r); /* subsection version */
		if ((rc = check(p, r, at, "configuration subsection")) < 0)
			return rc;
		if (name_is(sname, slen, "configuration/target-page-bits")) {
			bits = remus_wire_get_be32(r);
			if ((rc = check(p, r, at, "target-page-bits")) < 0)
				return rc;
			if (bits != p->opts.page_bits)
				return fail(p, -EBADMSG, at,
					    "page-size mismatch: stream has target-page-bits %u, expected %u",
					    bits, p->opts.page_bits);
		} else if (name_is(sname, slen, "configuration/capabilities")) {
			uint32_t n = remus_wire_get_len32(r, MAX_CAPS), i;

			for (i = 0; i < n && !r->err; i++) {
				uint8_t clen = remus_wire_get_u8(r);
				const uint8_t *cap = remus_wire_get_bytes(r, clen);

				if (r->err)
					break;
				if (name_is(cap, clen, "x-ignore-shared"))
					ignore_shared = true;
				else if (name_is(cap, clen, "mapped-ram"))
					return fail(p, -EBADMSG, at,
						    "capability mapped-ram is not supported");
			}
			if ((rc = check(p, r, at, "capabilities subsection")) < 0)
				return rc;
		} else if (name_is(sname, slen, "configuration/uuid")) {
			remus_wire_get_bytes(r, 16);
			if ((rc = check(p, r, at, "uuid subsection")) < 0)
				return rc;
		} else {
			return fail(p, -EBADMSG, at, "unknown configuration subsection '%.*s'",
				    (int)slen, sname);
		}
	}
	memcpy(p->machine, name, len);
	p->machine[len] = '\0';
	p->seen_config = true;
	p->ignore_shared = ignore_shared;
	tok->kind = REMUS_MS_CONFIG;
	tok->machine = p->machine;
	tok->page_bits = bits;
	tok->ignore_shared = ignore_shared;
	return 0;
}

static int parse_command(struct remus_migstream *p, struct remus_wire_reader *r,
			 struct remus_migstream_token *tok)
{
	uint16_t cmd, len;
	const uint8_t *data;
	int rc, want;

	cmd = remus_wire_get_be16(r);
	len = remus_wire_get_be16(r);
	if ((rc = check(p, r, p->base, "command")) < 0)
		return rc;
	switch (cmd) {
	case REMUS_MIG_CMD_OPEN_RETURN_PATH:
	case REMUS_MIG_CMD_SWITCHOVER_START:
		want = 0;
		break;
	case REMUS_MIG_CMD_PING:
		want = 4;
		break;
	default:
		/* 3..10 are postcopy, packaged and COLO commands. */
		return fail(p, -EBADMSG, p->base,
			    "unsupported command %u (only OPEN_RETURN_PATH, PING, SWITCHOVER_START)",
			    cmd);
	}
	if (len != want)
		return fail(p, -EBADMSG, p->base, "command %u with length %u, expected %d", cmd,
			    len, want);
	data = remus_wire_get_bytes(r, len);
	if ((rc = check(p, r, p->base, "command")) < 0)
		return rc;
	tok->kind = REMUS_MS_COMMAND;
	tok->cmd = cmd;
	tok->cmd_len = len;
	tok->cmd_data = data;
	return 0;
}

/* be32 sid, u8 len + idstr, be32 instance, be32 version (START and FULL). */
static int parse_section_header(struct remus_migstream *p, struct remus_wire_reader *r,
				const char *what, uint32_t *sid, char idstr[256],
				uint32_t *instance, uint32_t *version)
{
	const uint8_t *s;
	uint8_t len;
	int rc;

	*sid = remus_wire_get_be32(r);
	len = remus_wire_get_u8(r);
	s = remus_wire_get_bytes(r, len);
	*instance = remus_wire_get_be32(r);
	*version = remus_wire_get_be32(r);
	if ((rc = check(p, r, p->base, what)) < 0)
		return rc;
	if (!len || memchr(s, '\0', len))
		return fail(p, -EBADMSG, p->base, "%s: empty or invalid idstr", what);
	memcpy(idstr, s, len);
	idstr[len] = '\0';
	return 0;
}

static int parse_top(struct remus_migstream *p, struct remus_wire_reader *r,
		     struct remus_migstream_token *tok)
{
	uint32_t sid, instance, version;
	char idstr[256];
	uint8_t t;
	int rc;

	t = remus_wire_get_u8(r);
	if (r->err)
		return r->err;
	switch (t) {
	case REMUS_MIG_CONFIGURATION:
		return parse_config(p, r, tok);
	case REMUS_MIG_COMMAND:
		return parse_command(p, r, tok);
	case REMUS_MIG_SECTION_START:
		if ((rc = parse_section_header(p, r, "START section", &sid, idstr, &instance,
					       &version)) < 0)
			return rc;
		if (strcmp(idstr, "ram") != 0)
			return fail(p, -EBADMSG, p->base,
				    "START of iterable section '%s' (id %u): only ram is supported",
				    idstr, sid);
		if (p->ram_started)
			return fail(p, -EBADMSG, p->base, "second START(ram), id %u", sid);
		p->ram_started = true;
		p->ram_sid = sid;
		memcpy(p->idstr, idstr, sizeof(p->idstr));
		p->body_of = REMUS_MS_START;
		p->st = ST_RAM;
		tok->kind = REMUS_MS_START;
		tok->section_id = sid;
		tok->idstr = p->idstr;
		tok->instance_id = instance;
		tok->version_id = version;
		return 0;
	case REMUS_MIG_SECTION_PART:
	case REMUS_MIG_SECTION_END:
		sid = remus_wire_get_be32(r);
		if ((rc = check(p, r, p->base, "section header")) < 0)
			return rc;
		if (!p->ram_started || sid != p->ram_sid)
			return fail(p, -EBADMSG, p->base, "%s for unknown section id %u",
				    t == REMUS_MIG_SECTION_PART ? "PART" : "END", sid);
		if (p->ram_ended)
			return fail(p, -EBADMSG, p->base, "%s(ram) after END(ram)",
				    t == REMUS_MIG_SECTION_PART ? "PART" : "END");
		p->body_of = t == REMUS_MIG_SECTION_PART ? REMUS_MS_PART : REMUS_MS_END;
		p->st = ST_RAM;
		tok->kind = p->body_of;
		tok->section_id = sid;
		return 0;
	case REMUS_MIG_SECTION_FULL:
	case REMUS_MIG_EOF:
		if (p->ram_started && !p->ram_ended)
			return fail(p, -EBADMSG, p->base,
				    "%s before END(ram): devices with early setup (virtio-mem) are not supported",
				    t == REMUS_MIG_EOF ? "EOF" : "FULL section");
		if (t == REMUS_MIG_SECTION_FULL &&
		    (rc = parse_section_header(p, r, "FULL section", &p->dev_sid, p->dev_idstr,
					       &p->dev_instance, &p->dev_version)) < 0)
			return rc;
		/* Nothing is consumed: the device part starts at this byte. */
		p->st = ST_DEVICE;
		return -EAGAIN;
	default:
		return fail(p, -EBADMSG, p->base, "unknown section type 0x%02x at top level", t);
	}
}

/* ---- RAM section bodies ---- */

static int find_block(const struct remus_migstream_block *blocks, uint32_t n,
		      const uint8_t *name, size_t len)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (strlen(blocks[i].name) == len && memcmp(blocks[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

static int parse_mem_size(struct remus_migstream *p, struct remus_wire_reader *r,
			  uint64_t total, struct remus_migstream_token *tok)
{
	struct remus_migstream_block *nb = p->scratch, *tmp;
	uint64_t left = total, page = 0, at;
	uint32_t n = 0;
	int rc;

	if (total > p->opts.max_ram)
		return fail(p, -EMSGSIZE, p->base, "MEM_SIZE total %llu above the limit %llu",
			    (unsigned long long)total, (unsigned long long)p->opts.max_ram);
	while (left) {
		const uint8_t *name;
		uint8_t len;
		uint64_t length, mr_addr = 0;

		at = p->base + r->pos;
		len = remus_wire_get_u8(r);
		name = remus_wire_get_bytes(r, len);
		length = remus_wire_get_be64(r);
		if (p->ignore_shared)
			mr_addr = remus_wire_get_be64(r);
		if ((rc = check(p, r, at, "MEM_SIZE block")) < 0)
			return rc;
		if (n == REMUS_MIGSTREAM_MAX_BLOCKS)
			return fail(p, -EMSGSIZE, at, "MEM_SIZE lists more than %d blocks",
				    REMUS_MIGSTREAM_MAX_BLOCKS);
		if (!len || memchr(name, '\0', len))
			return fail(p, -EBADMSG, at, "MEM_SIZE block with an empty or invalid name");
		if (find_block(nb, n, name, len) >= 0)
			return fail(p, -EBADMSG, at, "MEM_SIZE lists block '%.*s' twice", (int)len,
				    name);
		if (!length || length > left)
			return fail(p, -EBADMSG, at,
				    "MEM_SIZE block '%.*s' length %llu does not fit the total %llu",
				    (int)len, name, (unsigned long long)length,
				    (unsigned long long)total);
		memcpy(nb[n].name, name, len);
		nb[n].name[len] = '\0';
		nb[n].length = length;
		nb[n].mr_addr = mr_addr;
		nb[n].first_page = page;
		nb[n].index = n;
		page += (length + p->page_size - 1) >> p->page_bits;
		left -= length;
		n++;
	}
	/* QEMU keeps its last block across a MEM_SIZE; so do we, by name. */
	if (p->have_cur) {
		int i = find_block(nb, n, (const uint8_t *)p->blocks[p->cur_block].name,
				   strlen(p->blocks[p->cur_block].name));

		p->have_cur = i >= 0;
		p->cur_block = i >= 0 ? (uint32_t)i : 0;
	}
	tmp = p->blocks;
	p->blocks = nb;
	p->scratch = tmp;
	p->nblocks = n;
	tok->kind = REMUS_MS_RAM_MEM_SIZE;
	tok->blocks = p->blocks;
	tok->nblocks = n;
	return 0;
}

static int parse_page(struct remus_migstream *p, struct remus_wire_reader *r, uint64_t flags,
		      uint64_t addr, struct remus_migstream_token *tok)
{
	const struct remus_migstream_block *b;
	const uint8_t *data = NULL;
	uint32_t idx;
	int rc, i;

	if (flags & REMUS_RAM_FLAG_CONTINUE) {
		if (!p->have_cur)
			return fail(p, -EBADMSG, p->base, "CONTINUE record with no previous block");
		idx = p->cur_block;
	} else {
		uint8_t len = remus_wire_get_u8(r);
		const uint8_t *name = remus_wire_get_bytes(r, len);

		if ((rc = check(p, r, p->base, "page record block name")) < 0)
			return rc;
		i = find_block(p->blocks, p->nblocks, name, len);
		if (i < 0)
			return fail(p, -EBADMSG, p->base, "page record for unknown block '%.*s'",
				    (int)len, name);
		idx = (uint32_t)i;
	}
	b = &p->blocks[idx];
	if (addr >= b->length)
		return fail(p, -EBADMSG, p->base, "page offset 0x%llx beyond block '%s' (%llu bytes)",
			    (unsigned long long)addr, b->name, (unsigned long long)b->length);
	if (flags & REMUS_RAM_FLAG_ZERO) {
		uint8_t v = remus_wire_get_u8(r);

		if ((rc = check(p, r, p->base, "zero page record")) < 0)
			return rc;
		if (v)
			return fail(p, -EBADMSG, p->base, "zero page record with fill byte 0x%02x", v);
		tok->kind = REMUS_MS_RAM_ZERO;
	} else {
		data = remus_wire_get_bytes(r, p->page_size);
		if ((rc = check(p, r, p->base, "page record")) < 0)
			return rc;
		tok->kind = REMUS_MS_RAM_PAGE;
	}
	p->have_cur = true;
	p->cur_block = idx;
	tok->block = b;
	tok->page_offset = addr;
	tok->page = data;
	return 0;
}

static int parse_ram(struct remus_migstream *p, struct remus_wire_reader *r,
		     struct remus_migstream_token *tok)
{
	uint64_t hdr, flags, addr, base;
	int rc;

	hdr = remus_wire_get_be64(r);
	if (r->err)
		return r->err;
	flags = hdr & (p->page_size - 1);
	addr = hdr & ~(uint64_t)(p->page_size - 1);
	base = flags & ~(uint64_t)REMUS_RAM_FLAG_CONTINUE;
	tok->ram_flags = flags;
	tok->page_size = p->page_size;
	if (base == REMUS_RAM_FLAG_ZERO || base == REMUS_RAM_FLAG_PAGE)
		return parse_page(p, r, flags, addr, tok);
	if (flags == REMUS_RAM_FLAG_MEM_SIZE)
		return parse_mem_size(p, r, addr, tok);
	if (flags == REMUS_RAM_FLAG_EOS) {
		tok->kind = REMUS_MS_RAM_EOS;
		p->st = ST_FOOTER;
		return 0;
	}
	if (flags == REMUS_RAM_FLAG_MULTIFD_FLUSH) {
		tok->kind = REMUS_MS_RAM_MULTIFD_FLUSH;
		return 0;
	}
	rc = fail(p, -EBADMSG, p->base,
		  "unsupported RAM record flags 0x%03llx (xbzrle, compression, hook or garbage)",
		  (unsigned long long)flags);
	return rc;
}

static int parse_footer(struct remus_migstream *p, struct remus_wire_reader *r,
			struct remus_migstream_token *tok)
{
	uint8_t t;
	uint32_t sid;
	int rc;

	t = remus_wire_get_u8(r);
	sid = remus_wire_get_be32(r);
	if ((rc = check(p, r, p->base, "section footer")) < 0)
		return rc;
	if (t != REMUS_MIG_SECTION_FOOTER)
		return fail(p, -EBADMSG, p->base, "expected a section footer after EOS, got 0x%02x",
			    t);
	if (sid != p->ram_sid)
		return fail(p, -EBADMSG, p->base, "footer for section %u, expected %u", sid,
			    p->ram_sid);
	if (p->body_of == REMUS_MS_END)
		p->ram_ended = true;
	p->st = ST_TOP;
	tok->kind = REMUS_MS_FOOTER;
	tok->section_id = sid;
	return 0;
}

/* ---- device part ---- */

/*
 * Finds the vmdescription that ends @d, given the position @z of the last
 * NUL in @d (if @have_nul): 0x00 (EOF) at i-1, 0x06 at i, be32
 * len at i+1 with len <= REMUS_MIGSTREAM_MAX_VMDESC and i + 5 + len == n,
 * payload '{' .. '}' with no NUL byte.  Returns i or 0 (i >= 1 always).
 *
 * Only one i can qualify.  z is the last NUL of @d.  The payload has no
 * NUL, so i + 5 > z; the EOF byte is a NUL, so i - 1 <= z: i lies in
 * [z - 4, z + 1].  Two candidates i < j in that window: j's 0x06 and its
 * preceding 0x00 then sit among i's length bytes or i's '{'.  j = i + 5
 * needs d[i+5] == 0x06, but it is '{'.  j = i + 1 needs i's length to
 * start with 0x06, above the bound (its top byte is 0).  j = i + 2 makes
 * len_j = d[i+4] << 16 | 0x7b00 | d[i+6] and len_i = 0x060000 + d[i+4]
 * (d[i+1] = d[i+3] = 0 by the bound), and len_i - len_j = 2 has no
 * solution.  j = i + 3 puts '{' in len_j's second byte (>= 0x7b0000) while
 * len_i = 0x600 | d[i+4], so len_j > len_i.  j = i + 4 puts '{' in len_j's
 * top byte, above the bound.
 */
static size_t find_vmdesc(const uint8_t *d, size_t n, bool have_nul, size_t z)
{
	size_t i, lo;

	if (n < 8 || !have_nul)
		return 0;
	lo = z >= 5 ? z - 4 : 1;
	for (i = lo; i <= z + 1 && i + 7 <= n; i++) {
		uint32_t len;

		if (d[i - 1] != REMUS_MIG_EOF || d[i] != REMUS_MIG_VMDESCRIPTION)
			continue;
		len = remus_get_be32(d + i + 1);
		if (len < 2 || len > REMUS_MIGSTREAM_MAX_VMDESC || i + 5 + (size_t)len != n)
			continue;
		if (i + 5 <= z || d[i + 5] != '{' || d[n - 1] != '}')
			continue;
		return i;
	}
	return 0;
}

/* Last NUL of the device part: the cached one, or one in the bytes after
 * it.  Returns false if there is none. */
static bool dev_last_nul(const struct remus_migstream *p, size_t *z)
{
	const uint8_t *d = remus_buf_data(&p->in), *nul;
	size_t n = remus_buf_len(&p->in);

	if (n > p->dev_scanned) {
		nul = memrchr(d + p->dev_scanned, 0, n - p->dev_scanned);
		if (nul) {
			*z = (size_t)(nul - d);
			return true;
		}
	}
	*z = p->dev_last_nul;
	return p->dev_have_nul;
}

/* Every next() call in ST_DEVICE advances the cache: O(bytes) overall. */
static void dev_scan(struct remus_migstream *p)
{
	p->dev_have_nul = dev_last_nul(p, &p->dev_last_nul);
	p->dev_scanned = remus_buf_len(&p->in);
}

bool remus_migstream_dev_tail_seen(const struct remus_migstream *p)
{
	size_t n, z;
	bool have;

	if (p->st != ST_DEVICE || p->err)
		return false;
	n = remus_buf_len(&p->in);
	if (p->opts.no_vmdesc)
		return n && remus_buf_data(&p->in)[n - 1] == REMUS_MIG_EOF;
	have = dev_last_nul(p, &z);
	return find_vmdesc(remus_buf_data(&p->in), n, have, z) != 0;
}

static int take_device(struct remus_migstream *p, struct remus_migstream_token *tok)
{
	const uint8_t *d = remus_buf_data(&p->in);
	size_t n = remus_buf_len(&p->in), at;

	dev_scan(p);
	if (!p->finished)
		return -ENODATA;
	if (p->opts.no_vmdesc) {
		if (!n || d[n - 1] != REMUS_MIG_EOF)
			return fail(p, -EBADMSG, p->base,
				    "channel closed, but the device part (%zu bytes) does not end in EOF",
				    n);
		at = n;
		p->st = ST_DONE;
	} else {
		at = find_vmdesc(d, n, p->dev_have_nul, p->dev_last_nul);
		if (!at)
			return fail(p, -EBADMSG, p->base,
				    "channel closed, but the device part (%zu bytes) does not end in EOF + vmdescription",
				    n);
		p->vmdesc_len = n - at;
		p->st = ST_VMDESC;
	}
	tok->kind = REMUS_MS_DEVICE;
	tok->section_id = p->dev_sid;
	tok->idstr = p->dev_idstr[0] ? p->dev_idstr : NULL;
	tok->instance_id = p->dev_instance;
	tok->version_id = p->dev_version;
	tok->data = d;
	tok->data_len = at;
	p->pending = at;
	return 0;
}

/* ---- driver ---- */

int remus_migstream_next(struct remus_migstream *p, struct remus_migstream_token *tok)
{
	struct remus_wire_reader r;
	int rc;

	if (p->err)
		return p->err;
	remus_buf_consume(&p->in, p->pending);
	p->base += p->pending;
	p->pending = 0;
	memset(tok, 0, sizeof(*tok));
	tok->start = p->base;
	tok->raw = remus_buf_data(&p->in);

	remus_wire_reader_init(&r, remus_buf_data(&p->in), remus_buf_len(&p->in));
	switch (p->st) {
	case ST_HEADER:
		rc = parse_header(p, &r, tok);
		break;
	case ST_TOP:
		rc = parse_top(p, &r, tok);
		if (rc == -EAGAIN)
			rc = take_device(p, tok);
		else if (!rc)
			p->top_records++;
		break;
	case ST_RAM:
		rc = parse_ram(p, &r, tok);
		break;
	case ST_FOOTER:
		rc = parse_footer(p, &r, tok);
		break;
	case ST_DEVICE:
		rc = take_device(p, tok);
		break;
	case ST_VMDESC:
		tok->kind = REMUS_MS_VMDESC;
		tok->data = remus_buf_data(&p->in) + 5;
		tok->data_len = p->vmdesc_len - 5;
		p->pending = p->vmdesc_len;
		p->st = ST_DONE;
		rc = 0;
		break;
	case ST_DONE:
	default:
		return 0;
	}
	if (rc == -ENODATA) {
		if (!p->finished)
			return 0;
		return fail(p, -EPIPE, p->base, "channel closed inside the %s (%zu bytes left over)",
			    state_names[p->st], remus_buf_len(&p->in));
	}
	if (rc < 0)
		return rc;
	if (!p->pending)
		p->pending = r.pos;
	tok->end = p->base + p->pending;
	return 1;
}

/* ---- standby rewriter ---- */

void remus_migstream_rewriter_init(struct remus_migstream_rewriter *rw, bool first,
				   uint32_t standby_sid, remus_migstream_filter_cb *filter,
				   void *opaque)
{
	memset(rw, 0, sizeof(*rw));
	rw->first = first;
	rw->have_sid = !first;
	rw->standby_sid = first ? 0 : standby_sid;
	rw->filter = filter;
	rw->filter_opaque = opaque;
	remus_buf_init(&rw->out, 0);
	remus_buf_init(&rw->dev, 0);
}

void remus_migstream_rewriter_release(struct remus_migstream_rewriter *rw)
{
	remus_buf_release(&rw->out);
	remus_buf_release(&rw->dev);
}

/* A PART header or a footer carrying the standby's section id. */
static void put_section(struct remus_wire_writer *w, uint8_t type, uint32_t sid)
{
	remus_wire_put_u8(w, type);
	remus_wire_put_be32(w, sid);
}

/* Emits the PART header held back for the current section, if any. */
static void flush_part(struct remus_migstream_rewriter *rw, struct remus_wire_writer *w)
{
	if (rw->part_pending) {
		put_section(w, REMUS_MIG_SECTION_PART, rw->standby_sid);
		rw->part_pending = false;
	}
}

static int rewrite_page(struct remus_migstream_rewriter *rw, struct remus_wire_writer *w,
			const struct remus_migstream_token *tok)
{
	bool zero = tok->kind == REMUS_MS_RAM_ZERO;
	int keep = 1;

	if (rw->filter) {
		keep = rw->filter(rw->filter_opaque, tok);
		if (keep < 0)
			return keep;
	}
	if (!keep) {
		if (zero)
			rw->zero_dropped++;
		else
			rw->pages_dropped++;
		return 0;
	}
	flush_part(rw, w);
	if ((tok->ram_flags & REMUS_RAM_FLAG_CONTINUE) &&
	    !(rw->last_valid && rw->last_block == tok->block->index)) {
		/* The standby's previous block is another one (a record was
		 * dropped, or a new epoch began): name the block again. */
		size_t len = strlen(tok->block->name);

		remus_wire_put_be64(w, remus_get_be64(tok->raw) & ~(uint64_t)REMUS_RAM_FLAG_CONTINUE);
		remus_wire_put_u8(w, (uint8_t)len);
		remus_wire_put_bytes(w, tok->block->name, len);
		remus_wire_put_bytes(w, tok->raw + 8, (size_t)(tok->end - tok->start) - 8);
	} else {
		remus_wire_put_bytes(w, tok->raw, (size_t)(tok->end - tok->start));
	}
	rw->last_valid = true;
	rw->last_block = tok->block->index;
	if (zero)
		rw->zero_kept++;
	else
		rw->pages_kept++;
	return 0;
}

int remus_migstream_rewrite(struct remus_migstream_rewriter *rw,
			    const struct remus_migstream_token *tok)
{
	struct remus_wire_writer w;
	size_t rawlen = (size_t)(tok->end - tok->start);
	int rc;

	remus_wire_writer_init(&w, &rw->out);
	switch (tok->kind) {
	case REMUS_MS_HEADER:
	case REMUS_MS_CONFIG:
		if (rw->first)
			remus_wire_put_bytes(&w, tok->raw, rawlen);
		break;
	case REMUS_MS_COMMAND:
		if (rw->first && tok->cmd != REMUS_MIG_CMD_SWITCHOVER_START)
			remus_wire_put_bytes(&w, tok->raw, rawlen);
		break;
	case REMUS_MS_START:
		if (rw->first) {
			rw->standby_sid = tok->section_id;
			rw->have_sid = true;
			remus_wire_put_bytes(&w, tok->raw, rawlen);
			break;
		}
		put_section(&w, REMUS_MIG_SECTION_PART, rw->standby_sid);
		break;
	case REMUS_MS_PART:
	case REMUS_MS_END:
		if (!rw->have_sid)
			return -EBADMSG;
		/* Held back until the section has something to carry. */
		rw->part_pending = true;
		break;
	case REMUS_MS_FOOTER:
		if (!rw->have_sid)
			return -EBADMSG;
		if (rw->skip_footer) {
			rw->skip_footer = false;
			break;
		}
		put_section(&w, REMUS_MIG_SECTION_FOOTER, rw->standby_sid);
		break;
	case REMUS_MS_RAM_MEM_SIZE:
		/* Block indexes may now name other blocks. */
		rw->last_valid = false;
		flush_part(rw, &w);
		remus_wire_put_bytes(&w, tok->raw, rawlen);
		break;
	case REMUS_MS_RAM_EOS:
		if (rw->part_pending) {
			/* Nothing was kept: the standby never sees this section.
			 * Once RAM is sent QEMU's precopy loop emits one such
			 * section per pass, thousands per epoch. */
			rw->part_pending = false;
			rw->skip_footer = true;
			rw->sections_elided++;
			break;
		}
		remus_wire_put_bytes(&w, tok->raw, rawlen);
		break;
	case REMUS_MS_RAM_MULTIFD_FLUSH:
		flush_part(rw, &w);
		remus_wire_put_bytes(&w, tok->raw, rawlen);
		break;
	case REMUS_MS_RAM_ZERO:
	case REMUS_MS_RAM_PAGE:
		if ((rc = rewrite_page(rw, &w, tok)) < 0)
			return rc;
		break;
	case REMUS_MS_DEVICE:
		if (rw->device_done)
			return -EBADMSG;
		rw->device_done = true;
		remus_buf_reset(&rw->dev);
		if ((rc = remus_buf_append(&rw->dev, tok->data, tok->data_len)) < 0)
			return rc;
		break;
	case REMUS_MS_VMDESC:
		break;
	default:
		return -EBADMSG;
	}
	return remus_wire_writer_error(&w);
}

static const uint8_t empty_vmdesc[] = { REMUS_MIG_VMDESCRIPTION, 0, 0, 0, 2, '{', '}' };

int remus_migstream_build_tail_open(struct remus_buf *out, uint32_t ram_sid)
{
	struct remus_wire_writer w;
	int rc;

	/* Reserve everything first so a failure leaves @out unchanged. */
	rc = remus_buf_reserve(out, SECTION_TAIL + 8 + SECTION_TAIL);
	if (rc < 0)
		return rc;
	remus_wire_writer_init(&w, out);
	put_section(&w, REMUS_MIG_SECTION_END, ram_sid);
	remus_wire_put_be64(&w, REMUS_RAM_FLAG_EOS);
	put_section(&w, REMUS_MIG_SECTION_FOOTER, ram_sid);
	return remus_wire_writer_error(&w);
}

int remus_migstream_build_tail_close(struct remus_buf *out)
{
	return remus_buf_append(out, empty_vmdesc, sizeof(empty_vmdesc));
}

int remus_migstream_build_tail(struct remus_buf *out, uint32_t ram_sid, const uint8_t *dev,
			       size_t dev_len)
{
	int rc;

	if (!dev || !dev_len || dev[dev_len - 1] != REMUS_MIG_EOF)
		return -EINVAL;
	if (dev_len > SIZE_MAX / 2)
		return -EMSGSIZE;
	/* Reserve everything first so a failure leaves @out unchanged. */
	rc = remus_buf_reserve(out, SECTION_TAIL + 8 + SECTION_TAIL + dev_len + sizeof(empty_vmdesc));
	if (rc < 0)
		return rc;
	/* With the room reserved, none of these can fail. */
	if ((rc = remus_migstream_build_tail_open(out, ram_sid)) == 0 &&
	    (rc = remus_buf_append(out, dev, dev_len)) == 0)
		rc = remus_migstream_build_tail_close(out);
	return rc;
}

int remus_migstream_build_cut(struct remus_buf *out, uint32_t ram_sid, bool eos_sent)
{
	struct remus_wire_writer w;
	int rc;

	rc = remus_buf_reserve(out, 8 + SECTION_TAIL);
	if (rc < 0)
		return rc;
	remus_wire_writer_init(&w, out);
	if (!eos_sent)
		remus_wire_put_be64(&w, REMUS_RAM_FLAG_EOS);
	put_section(&w, REMUS_MIG_SECTION_FOOTER, ram_sid);
	return remus_wire_writer_error(&w);
}

struct json_object *remus_migstream_caps_args(void)
{
	/* events off: libvirt turns it on at every QEMU start, and with the
	 * switchover ACK withheld QEMU then sends a MIGRATION_PASS event per
	 * dirty sync, thousands a second (measured, ../shared/LIBVIRT.md);
	 * the engine polls query-migrate instead. */
	static const struct {
		const char *name;
		bool on;
	} caps[] = { { "return-path", true }, { "switchover-ack", true }, { "events", false } };
	struct json_object *args = json_object_new_object();
	struct json_object *list = json_object_new_array();
	size_t i;

	if (!args || !list) {
		json_object_put(args);
		json_object_put(list);
		return NULL;
	}
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		struct json_object *c = json_object_new_object();

		json_object_object_add(c, "capability", json_object_new_string(caps[i].name));
		json_object_object_add(c, "state", json_object_new_boolean(caps[i].on));
		json_object_array_add(list, c);
	}
	json_object_object_add(args, "capabilities", list);
	return args;
}
