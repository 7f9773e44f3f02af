// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * controller/v2stream.h: an x-ignore-shared stream as QEMU 10.0 writes it
 * for a stopped guest (built record by record here), composed with a dirty
 * set and a RAM copy, must parse as a plain v1 stream whose shared block
 * carries exactly the dirty pages with the copy's content, and nothing
 * the composer does not expect may pass.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/wire.h"
#include "controller/v2stream.h"
#include "migstream/migstream.h"

#define PG 4096u
#define MEM_PAGES 130u /* two bitmap words and a bit */
#define SID 2u

static void put(struct remus_buf *b, const void *p, size_t n)
{
	assert_int_equal(remus_buf_append(b, p, n), 0);
}

static void put8(struct remus_buf *b, uint8_t v) { put(b, &v, 1); }

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

static void put_str8(struct remus_buf *b, const char *s)
{
	put8(b, (uint8_t)strlen(s));
	put(b, s, strlen(s));
}

/*
 * header | config{pc, capabilities[x-ignore-shared], uuid} | OPEN_RETURN_PATH |
 * START(ram){MEM_SIZE mem (shared_pages), vga.vram (4 pages) with
 * mr_addr, EOS} | END(ram){PAGE vga.vram 1 [, PAGE of mem if @bad_page],
 * EOS} | FULL(timer) ... EOF | vmdescription
 */
static void build(struct remus_buf *b, uint64_t shared_pages, const char *shared_name,
		  bool bad_page)
{
	uint8_t page[PG];

	memset(page, 0x5a, sizeof(page));
	put32(b, REMUS_MIG_MAGIC);
	put32(b, REMUS_MIG_VERSION);
	put8(b, REMUS_MIG_CONFIGURATION);
	put32(b, 2);
	put(b, "pc", 2);
	put8(b, REMUS_MIG_SUBSECTION);
	put_str8(b, "configuration/capabilities");
	put32(b, 1);
	put32(b, 1);
	put_str8(b, "x-ignore-shared");
	put8(b, REMUS_MIG_SUBSECTION);
	put_str8(b, "configuration/uuid");
	put32(b, 1);
	put(b, "0123456789abcdef", 16);
	put8(b, REMUS_MIG_COMMAND);
	put8(b, 0);
	put8(b, REMUS_MIG_CMD_OPEN_RETURN_PATH);
	put8(b, 0);
	put8(b, 0);

	put8(b, REMUS_MIG_SECTION_START);
	put32(b, SID);
	put_str8(b, "ram");
	put32(b, 0);
	put32(b, 4);
	put64(b, (shared_pages * PG + 4 * PG) | REMUS_RAM_FLAG_MEM_SIZE);
	put_str8(b, shared_name);
	put64(b, shared_pages * PG);
	put64(b, 0);
	put_str8(b, "vga.vram");
	put64(b, 4 * PG);
	put64(b, 0xfd000000);
	put64(b, REMUS_RAM_FLAG_EOS);
	put8(b, REMUS_MIG_SECTION_FOOTER);
	put32(b, SID);

	put8(b, REMUS_MIG_SECTION_END);
	put32(b, SID);
	put64(b, PG | REMUS_RAM_FLAG_PAGE);
	put_str8(b, "vga.vram");
	put(b, page, PG);
	if (bad_page) {
		put64(b, 3 * PG | REMUS_RAM_FLAG_PAGE);
		put_str8(b, shared_name);
		put(b, page, PG);
	}
	put64(b, REMUS_RAM_FLAG_EOS);
	put8(b, REMUS_MIG_SECTION_FOOTER);
	put32(b, SID);

	put8(b, REMUS_MIG_SECTION_FULL);
	put32(b, 3);
	put_str8(b, "timer");
	put32(b, 0);
	put32(b, 2);
	put(b, "devicestate", 11);
	put8(b, REMUS_MIG_SECTION_FOOTER);
	put32(b, 3);
	put8(b, REMUS_MIG_EOF);
	put8(b, REMUS_MIG_VMDESCRIPTION);
	put32(b, 2);
	put(b, "{}", 2);
}

struct fixture {
	uint8_t *ram;
	uint64_t bits[(MEM_PAGES + 63) / 64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	unsigned i;

	assert_non_null(f);
	f->ram = calloc(MEM_PAGES, PG);
	assert_non_null(f->ram);
	for (i = 0; i < MEM_PAGES; i++)
		if (i != 5)
			memset(f->ram + (size_t)i * PG, (int)(i + 1), PG);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	free(f->ram);
	free(f);
	return 0;
}

static void mark(struct fixture *f, unsigned page)
{
	f->bits[page / 64] |= 1ull << (page % 64);
}

/* Runs @in through parser A and the composer (pump batches of @batch
 * bytes) into @out.  Returns the composer's or a parser's -errno. */
static int compose(const struct remus_buf *in, struct remus_v2stream *s, struct remus_buf *out,
		   size_t batch)
{
	struct remus_migstream *a = NULL;
	struct remus_migstream_token t;
	int r, rc;

	assert_int_equal(remus_migstream_new(NULL, &a), 0);
	assert_int_equal(remus_migstream_feed(a, remus_buf_data(in), remus_buf_len(in)), 0);
	remus_migstream_finish(a);
	while ((r = remus_migstream_next(a, &t)) == 1) {
		rc = remus_v2stream_token(s, &t, out);
		while (rc == 1)
			rc = remus_v2stream_pump(s, out, batch);
		if (rc < 0) {
			remus_migstream_free(a);
			return rc;
		}
	}
	if (r == 0 && !remus_migstream_complete(a))
		r = -EPIPE;
	remus_migstream_free(a);
	return r;
}

static void run_ok(struct fixture *f, size_t batch)
{
	struct remus_buf in, out;
	struct remus_v2stream s;
	struct remus_migstream *b = NULL;
	struct remus_migstream_token t;
	unsigned want[] = { 0, 1, 5, 63, 64, 129 }, nwant = 0, i;
	bool vga = false, eos_after_pages = false, config = false, mem_size = false;
	int r;

	remus_buf_init(&in, 0);
	remus_buf_init(&out, 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		mark(f, want[i]);
	build(&in, MEM_PAGES, "mem", false);
	remus_v2stream_init(&s, "mem", f->ram, (uint64_t)MEM_PAGES * PG, f->bits);
	assert_int_equal(compose(&in, &s, &out, batch), 0);
	assert_true(s.injected);
	assert_int_equal(s.pages, 5);
	assert_int_equal(s.zero_pages, 1);

	/* The composed stream is a v1 stream: no x-ignore-shared, no
	 * addresses, the dirty pages with the copy's content, in order. */
	assert_int_equal(remus_migstream_new(NULL, &b), 0);
	assert_int_equal(remus_migstream_feed(b, remus_buf_data(&out), remus_buf_len(&out)), 0);
	remus_migstream_finish(b);
	while ((r = remus_migstream_next(b, &t)) == 1) {
		switch (t.kind) {
		case REMUS_MS_CONFIG:
			assert_false(t.ignore_shared);
			assert_string_equal(t.machine, "pc");
			config = true;
			break;
		case REMUS_MS_RAM_MEM_SIZE:
			assert_int_equal(t.nblocks, 2);
			assert_string_equal(t.blocks[0].name, "mem");
			assert_int_equal(t.blocks[0].length, (uint64_t)MEM_PAGES * PG);
			assert_int_equal(t.blocks[0].mr_addr, 0);
			assert_int_equal(t.blocks[1].mr_addr, 0);
			mem_size = true;
			break;
		case REMUS_MS_RAM_PAGE:
		case REMUS_MS_RAM_ZERO:
			if (strcmp(t.block->name, "vga.vram") == 0) {
				assert_int_equal(nwant, 0);
				vga = true;
				break;
			}
			assert_true(nwant < sizeof(want) / sizeof(want[0]));
			assert_int_equal(t.page_offset, (uint64_t)want[nwant] * PG);
			if (want[nwant] == 5) {
				assert_int_equal(t.kind, REMUS_MS_RAM_ZERO);
			} else {
				assert_int_equal(t.kind, REMUS_MS_RAM_PAGE);
				assert_memory_equal(t.page, f->ram + (size_t)want[nwant] * PG, PG);
			}
			nwant++;
			break;
		case REMUS_MS_RAM_EOS:
			if (nwant == sizeof(want) / sizeof(want[0]))
				eos_after_pages = true;
			break;
		default:
			break;
		}
	}
	assert_int_equal(r, 0);
	assert_true(remus_migstream_complete(b));
	assert_true(config && mem_size && vga && eos_after_pages);
	assert_int_equal(nwant, sizeof(want) / sizeof(want[0]));
	remus_migstream_free(b);
	remus_buf_release(&in);
	remus_buf_release(&out);
}

static void test_composes_v1_stream(void **state)
{
	run_ok(*state, 1 << 20);
}

/* One page per batch: the cursor resumes where it stopped. */
static void test_small_batches(void **state)
{
	run_ok(*state, 1);
}

static void test_no_dirty_pages(void **state)
{
	struct fixture *f = *state;
	struct remus_buf in, out;
	struct remus_v2stream s;

	remus_buf_init(&in, 0);
	remus_buf_init(&out, 0);
	build(&in, MEM_PAGES, "mem", false);
	remus_v2stream_init(&s, "mem", f->ram, (uint64_t)MEM_PAGES * PG, f->bits);
	assert_int_equal(compose(&in, &s, &out, 1 << 20), 0);
	assert_true(s.injected);
	assert_int_equal(s.pages + s.zero_pages, 0);
	remus_buf_release(&in);
	remus_buf_release(&out);
}

/* A page of the shared block in QEMU's stream: x-ignore-shared was off or
 * the RAM not shared; the tracker's set would not be the whole story. */
static void test_refuses_shared_page_from_qemu(void **state)
{
	struct fixture *f = *state;
	struct remus_buf in, out;
	struct remus_v2stream s;

	remus_buf_init(&in, 0);
	remus_buf_init(&out, 0);
	build(&in, MEM_PAGES, "mem", true);
	remus_v2stream_init(&s, "mem", f->ram, (uint64_t)MEM_PAGES * PG, f->bits);
	assert_int_equal(compose(&in, &s, &out, 1 << 20), -EBADMSG);
	assert_non_null(strstr(s.error, "page of the shared block 'mem'"));
	remus_buf_release(&in);
	remus_buf_release(&out);
}

static void test_refuses_other_layout(void **state)
{
	struct fixture *f = *state;
	struct remus_buf in, out;
	struct remus_v2stream s;

	remus_buf_init(&in, 0);
	remus_buf_init(&out, 0);
	build(&in, MEM_PAGES - 1, "mem", false);
	remus_v2stream_init(&s, "mem", f->ram, (uint64_t)MEM_PAGES * PG, f->bits);
	assert_int_equal(compose(&in, &s, &out, 1 << 20), -EBADMSG);
	assert_non_null(strstr(s.error, "the tracker's file"));
	remus_buf_reset(&in);
	remus_buf_reset(&out);
	build(&in, MEM_PAGES, "pc.ram", false);
	remus_v2stream_init(&s, "mem", f->ram, (uint64_t)MEM_PAGES * PG, f->bits);
	assert_int_equal(compose(&in, &s, &out, 1 << 20), -EBADMSG);
	assert_non_null(strstr(s.error, "no RAM block 'mem'"));
	remus_buf_release(&in);
	remus_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_composes_v1_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_dirty_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_shared_page_from_qemu, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refuses_other_layout, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
