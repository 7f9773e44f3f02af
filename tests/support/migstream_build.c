// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Builder of small QEMU 10.0 streams (see migstream_build.h).  Layouts as
 * in tests/fuzz/migstream/gen_seeds.py and QEMU's migration/savevm.c and
 * migration/ram.c: a RAM record is be64 (page address | flags), the block
 * name unless CONTINUE, then the page.  Written with common/wire.h's
 * sticky-error writer, checked once per part.
 */
#include "support/migstream_build.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/wire.h"
#include "migstream/migstream.h"

#define PAGE 4096u

static void put_str8(struct remus_wire_writer *w, const char *s)
{
	remus_wire_put_u8(w, (uint8_t)strlen(s));
	remus_wire_put_bytes(w, s, strlen(s));
}

static void section(struct remus_wire_writer *w, uint8_t type, uint32_t sid)
{
	remus_wire_put_u8(w, type);
	remus_wire_put_be32(w, sid);
}

static void command(struct remus_wire_writer *w, uint16_t cmd, const void *data, uint16_t len)
{
	remus_wire_put_u8(w, REMUS_MIG_COMMAND);
	remus_wire_put_be16(w, cmd);
	remus_wire_put_be16(w, len);
	remus_wire_put_bytes(w, data, len);
}

/* @n data pages of @block from page @first on, then EOS and the footer. */
static void pages(struct remus_wire_writer *w, uint32_t sid, const char *block, unsigned first,
		  unsigned n, unsigned ram_pages, unsigned seed)
{
	uint8_t page[PAGE];
	unsigned i, k;

	for (i = 0; i < n; i++) {
		unsigned idx = (first + i) % ram_pages;

		remus_wire_put_be64(w, (uint64_t)idx * PAGE | REMUS_RAM_FLAG_PAGE |
				       (i ? REMUS_RAM_FLAG_CONTINUE : 0));
		if (!i)
			put_str8(w, block);
		for (k = 0; k < PAGE; k++)
			page[k] = (uint8_t)(k * 31 + idx * 7 + seed * 13 + 1);
		remus_wire_put_bytes(w, page, PAGE);
	}
	remus_wire_put_be64(w, REMUS_RAM_FLAG_EOS);
	section(w, REMUS_MIG_SECTION_FOOTER, sid);
}

void remus_test_migstream_build(const struct remus_test_migstream_opts *o,
				struct remus_buf *running, struct remus_buf *completion)
{
	static const char vmdesc[] = "{\"page_size\": 4096, \"devices\": []}";
	uint32_t sid = o->ram_sid ? o->ram_sid : 2;
	const char *block = o->block ? o->block : "pc.ram";
	unsigned ram_pages = o->ram_pages ? o->ram_pages : 64;
	size_t dev_bytes = o->dev_bytes ? o->dev_bytes : 64, i;
	uint8_t uuid[16], ping[4] = { 0, 0, 0, 7 };
	struct remus_wire_writer r, c;

	assert_true(o->part_pages < ram_pages && o->end_pages < ram_pages);
	remus_wire_writer_init(&r, running);
	remus_wire_put_be32(&r, REMUS_MIG_MAGIC);
	remus_wire_put_be32(&r, REMUS_MIG_VERSION);
	remus_wire_put_u8(&r, REMUS_MIG_CONFIGURATION);
	remus_wire_put_be32(&r, 14);
	remus_wire_put_bytes(&r, "pc-i440fx-10.0", 14);
	if (o->ignore_shared) {
		remus_wire_put_u8(&r, REMUS_MIG_SUBSECTION);
		put_str8(&r, "configuration/capabilities");
		remus_wire_put_be32(&r, 1); /* version */
		remus_wire_put_be32(&r, 1); /* one capability */
		put_str8(&r, "x-ignore-shared");
	}
	remus_wire_put_u8(&r, REMUS_MIG_SUBSECTION);
	put_str8(&r, "configuration/uuid");
	remus_wire_put_be32(&r, 1);
	for (i = 0; i < sizeof(uuid); i++)
		uuid[i] = (uint8_t)i;
	remus_wire_put_bytes(&r, uuid, sizeof(uuid));
	command(&r, REMUS_MIG_CMD_OPEN_RETURN_PATH, NULL, 0);
	command(&r, REMUS_MIG_CMD_PING, ping, sizeof(ping));

	section(&r, REMUS_MIG_SECTION_START, sid);
	put_str8(&r, "ram");
	remus_wire_put_be32(&r, 0); /* instance */
	remus_wire_put_be32(&r, 4); /* version */
	remus_wire_put_be64(&r, (uint64_t)ram_pages * PAGE | REMUS_RAM_FLAG_MEM_SIZE);
	put_str8(&r, block);
	remus_wire_put_be64(&r, (uint64_t)ram_pages * PAGE);
	if (o->ignore_shared)
		remus_wire_put_be64(&r, 0); /* mr_addr */
	remus_wire_put_be64(&r, REMUS_RAM_FLAG_EOS);
	section(&r, REMUS_MIG_SECTION_FOOTER, sid);

	section(&r, REMUS_MIG_SECTION_PART, sid);
	pages(&r, sid, block, o->seed, o->part_pages, ram_pages, o->seed);
	assert_int_equal(remus_wire_writer_error(&r), 0);

	remus_wire_writer_init(&c, completion);
	command(&c, REMUS_MIG_CMD_SWITCHOVER_START, NULL, 0);
	section(&c, REMUS_MIG_SECTION_END, sid);
	pages(&c, sid, block, o->seed + o->part_pages, o->end_pages, ram_pages, o->seed + 1);
	section(&c, REMUS_MIG_SECTION_FULL, 3);
	put_str8(&c, "timer");
	remus_wire_put_be32(&c, 0);
	remus_wire_put_be32(&c, 2);
	for (i = 0; i < dev_bytes; i++)
		remus_wire_put_u8(&c, (uint8_t)(i * 5 + o->seed));
	section(&c, REMUS_MIG_SECTION_FOOTER, 3);
	remus_wire_put_u8(&c, REMUS_MIG_EOF);
	if (!o->no_vmdesc) {
		remus_wire_put_u8(&c, REMUS_MIG_VMDESCRIPTION);
		remus_wire_put_be32(&c, (uint32_t)strlen(vmdesc));
		remus_wire_put_bytes(&c, vmdesc, strlen(vmdesc));
	}
	assert_int_equal(remus_wire_writer_error(&c), 0);
}

int remus_test_migstream_rewrite(const void *p, size_t n, bool first, uint32_t standby_sid,
				 struct remus_buf *out, struct remus_buf *dev)
{
	struct remus_migstream_rewriter rw;
	struct remus_migstream_token tok;
	struct remus_migstream *ps = NULL;
	int rc;

	remus_migstream_rewriter_init(&rw, first, standby_sid, NULL, NULL);
	rc = remus_migstream_new(NULL, &ps);
	if (rc < 0)
		goto out;
	rc = remus_migstream_feed(ps, p, n);
	if (rc < 0)
		goto out;
	remus_migstream_finish(ps);
	while ((rc = remus_migstream_next(ps, &tok)) == 1) {
		rc = remus_migstream_rewrite(&rw, &tok);
		if (rc < 0)
			goto out;
	}
	if (rc == 0 && !remus_migstream_complete(ps))
		rc = -EPIPE;
	if (rc < 0)
		goto out;
	if (out)
		assert_int_equal(remus_buf_append(out, remus_buf_data(&rw.out),
						  remus_buf_len(&rw.out)), 0);
	if (dev)
		assert_int_equal(remus_buf_append(dev, remus_buf_data(&rw.dev),
						  remus_buf_len(&rw.dev)), 0);
out:
	remus_migstream_free(ps);
	remus_migstream_rewriter_release(&rw);
	return rc;
}
