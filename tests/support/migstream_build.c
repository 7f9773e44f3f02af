// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Builder of small QEMU 10.0 streams (see migstream_build.h).  Layouts as
 * in tests/fuzz/migstream/gen_seeds.py and QEMU's migration/savevm.c and
 * migration/ram.c: a RAM record is be64 (page address | flags), the block
 * name unless CONTINUE, then the page.
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
#define BLOCK "pc.ram"

static void put(struct remus_buf *b, const void *p, size_t n)
{
	assert_int_equal(remus_buf_append(b, p, n), 0);
}

static void put8(struct remus_buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put16(struct remus_buf *b, uint16_t v)
{
	uint8_t x[2];

	remus_put_be16(x, v);
	put(b, x, 2);
}

static void put32(struct remus_buf *b, uint32_t v)
{
	uint8_t x[4];

	remus_put_be32(x, v);
	put(b, x, 4);
}

static void put64(struct remus_buf *b, uint64_t v)
{
	uint8_t x[8];

	remus_put_be64(x, v);
	put(b, x, 8);
}

static void putstr8(struct remus_buf *b, const char *s)
{
	put8(b, (uint8_t)strlen(s));
	put(b, s, strlen(s));
}

static void section(struct remus_buf *b, uint8_t type, uint32_t sid)
{
	put8(b, type);
	put32(b, sid);
}

/* @n data pages of pc.ram from page @first on, then EOS and the footer. */
static void pages(struct remus_buf *b, uint32_t sid, unsigned first, unsigned n,
		  unsigned ram_pages, unsigned seed)
{
	uint8_t page[PAGE];
	unsigned i, k;

	for (i = 0; i < n; i++) {
		unsigned idx = (first + i) % ram_pages;

		put64(b, (uint64_t)idx * PAGE | REMUS_RAM_FLAG_PAGE |
			 (i ? REMUS_RAM_FLAG_CONTINUE : 0));
		if (!i)
			putstr8(b, BLOCK);
		for (k = 0; k < PAGE; k++)
			page[k] = (uint8_t)(k * 31 + idx * 7 + seed * 13 + 1);
		put(b, page, PAGE);
	}
	put64(b, REMUS_RAM_FLAG_EOS);
	section(b, REMUS_MIG_SECTION_FOOTER, sid);
}

static void command(struct remus_buf *b, uint16_t cmd, const void *data, uint16_t len)
{
	put8(b, REMUS_MIG_COMMAND);
	put16(b, cmd);
	put16(b, len);
	put(b, data, len);
}

void remus_test_migstream_build(const struct remus_test_migstream_opts *o,
				struct remus_buf *running, struct remus_buf *completion)
{
	static const char vmdesc[] = "{\"page_size\": 4096, \"devices\": []}";
	uint32_t sid = o->ram_sid ? o->ram_sid : 2;
	unsigned ram_pages = o->ram_pages ? o->ram_pages : 64;
	size_t dev_bytes = o->dev_bytes ? o->dev_bytes : 64, i;
	uint8_t uuid[16], ping[4] = { 0, 0, 0, 7 };

	assert_true(o->part_pages < ram_pages && o->end_pages < ram_pages);
	put32(running, REMUS_MIG_MAGIC);
	put32(running, REMUS_MIG_VERSION);
	put8(running, REMUS_MIG_CONFIGURATION);
	put32(running, 14);
	put(running, "pc-i440fx-10.0", 14);
	put8(running, REMUS_MIG_SUBSECTION);
	putstr8(running, "configuration/uuid");
	put32(running, 1);
	for (i = 0; i < sizeof(uuid); i++)
		uuid[i] = (uint8_t)i;
	put(running, uuid, sizeof(uuid));
	command(running, REMUS_MIG_CMD_OPEN_RETURN_PATH, NULL, 0);
	command(running, REMUS_MIG_CMD_PING, ping, sizeof(ping));

	section(running, REMUS_MIG_SECTION_START, sid);
	putstr8(running, "ram");
	put32(running, 0); /* instance */
	put32(running, 4); /* version */
	put64(running, (uint64_t)ram_pages * PAGE | REMUS_RAM_FLAG_MEM_SIZE);
	putstr8(running, BLOCK);
	put64(running, (uint64_t)ram_pages * PAGE);
	put64(running, REMUS_RAM_FLAG_EOS);
	section(running, REMUS_MIG_SECTION_FOOTER, sid);

	section(running, REMUS_MIG_SECTION_PART, sid);
	pages(running, sid, o->seed, o->part_pages, ram_pages, o->seed);

	command(completion, REMUS_MIG_CMD_SWITCHOVER_START, NULL, 0);
	section(completion, REMUS_MIG_SECTION_END, sid);
	pages(completion, sid, o->seed + o->part_pages, o->end_pages, ram_pages, o->seed + 1);
	section(completion, REMUS_MIG_SECTION_FULL, 3);
	putstr8(completion, "timer");
	put32(completion, 0);
	put32(completion, 2);
	for (i = 0; i < dev_bytes; i++)
		put8(completion, (uint8_t)(i * 5 + o->seed));
	section(completion, REMUS_MIG_SECTION_FOOTER, 3);
	put8(completion, REMUS_MIG_EOF);
	put8(completion, REMUS_MIG_VMDESCRIPTION);
	put32(completion, (uint32_t)strlen(vmdesc));
	put(completion, vmdesc, strlen(vmdesc));
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
		put(out, remus_buf_data(&rw.out), remus_buf_len(&rw.out));
	if (dev)
		put(dev, remus_buf_data(&rw.dev), remus_buf_len(&rw.dev));
out:
	remus_migstream_free(ps);
	remus_migstream_rewriter_release(&rw);
	return rc;
}
