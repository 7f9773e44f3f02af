// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for controller/dedup: a page is dropped exactly when the
 * standby will hold its content, counting earlier pages of the same and
 * of unacknowledged epochs, and an aborted epoch leaves no trace.
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
#include "controller/dedup.h"
#include "migstream/migstream.h"

#define PAGE 4096

static struct remus_migstream_block blocks[2] = {
	{ .name = "pc.ram", .length = 16 * PAGE, .first_page = 0, .index = 0 },
	{ .name = "vga.vram", .length = 4 * PAGE, .first_page = 16, .index = 1 },
};

static uint8_t pa[PAGE], pb[PAGE], pc_[PAGE], pz[PAGE];

static int offer(struct remus_dedup *d, int block, uint64_t page, const uint8_t *data)
{
	struct remus_migstream_token t = {
		.kind = data ? REMUS_MS_RAM_PAGE : REMUS_MS_RAM_ZERO,
		.block = &blocks[block],
		.page_offset = page * PAGE,
		.page = data,
		.page_size = PAGE,
	};

	return remus_dedup_filter(d, &t);
}

static int setup(void **state)
{
	struct remus_dedup *d = NULL;

	memset(pa, 'a', PAGE);
	memset(pb, 'b', PAGE);
	memset(pc_, 'c', PAGE);
	memset(pz, 0, PAGE);
	if (remus_dedup_new(&d) < 0)
		return -1;
	if (remus_dedup_set_layout(d, blocks, 2, PAGE) < 0)
		return -1;
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	remus_dedup_free(*state);
	return 0;
}

static void test_unchanged_page_dropped_after_ack(void **state)
{
	struct remus_dedup *d = *state;

	assert_int_equal(remus_dedup_begin_epoch(d, 1), 0);
	assert_int_equal(offer(d, 0, 3, pa), 1);
	assert_int_equal(offer(d, 1, 3, pa), 1); /* same content, other page */
	remus_dedup_commit(d, 1);
	assert_int_equal(remus_dedup_begin_epoch(d, 2), 0);
	assert_int_equal(offer(d, 0, 3, pa), 0);
	assert_int_equal(offer(d, 1, 3, pa), 0);
	assert_int_equal(offer(d, 0, 4, pa), 1); /* never sent */
}

/* A, B, A inside one epoch: the standby ends with A only if all three go. */
static void test_same_epoch_rewrites_are_sent(void **state)
{
	struct remus_dedup *d = *state;

	assert_int_equal(remus_dedup_begin_epoch(d, 1), 0);
	assert_int_equal(offer(d, 0, 0, pa), 1);
	assert_int_equal(offer(d, 0, 0, pa), 0); /* already in this epoch's stream */
	assert_int_equal(offer(d, 0, 0, pb), 1);
	assert_int_equal(offer(d, 0, 0, pa), 1);
}

static void test_abort_restores_what_standby_holds(void **state)
{
	struct remus_dedup *d = *state;
	struct remus_dedup_stats st;

	assert_int_equal(remus_dedup_begin_epoch(d, 1), 0);
	assert_int_equal(offer(d, 0, 1, pa), 1);
	assert_int_equal(offer(d, 0, 2, pa), 1);
	remus_dedup_commit(d, 1);
	remus_dedup_get_stats(d, &st);
	assert_int_equal(st.undo_entries, 0);

	assert_int_equal(remus_dedup_begin_epoch(d, 2), 0);
	assert_int_equal(offer(d, 0, 1, pb), 1);
	assert_int_equal(offer(d, 0, 5, pb), 1); /* unknown before */
	/* epoch 3 starts before 2 is acknowledged (pipelining) */
	assert_int_equal(remus_dedup_begin_epoch(d, 3), 0);
	assert_int_equal(offer(d, 0, 1, pb), 0); /* 2 delivers it first */
	assert_int_equal(offer(d, 0, 2, pc_), 1);
	remus_dedup_get_stats(d, &st);
	assert_int_equal(st.undo_entries, 3);
	/* the standby never commits 2: 2 and 3 are gone */
	remus_dedup_abort(d, 2);
	assert_int_equal(remus_dedup_begin_epoch(d, 4), 0);
	assert_int_equal(offer(d, 0, 1, pa), 0); /* back to epoch 1's A */
	assert_int_equal(offer(d, 0, 2, pa), 0);
	assert_int_equal(offer(d, 0, 5, pb), 1); /* unknown again */
	assert_int_equal(offer(d, 0, 1, pb), 1);
}

static void test_commit_then_abort_keeps_committed(void **state)
{
	struct remus_dedup *d = *state;

	assert_int_equal(remus_dedup_begin_epoch(d, 1), 0);
	assert_int_equal(offer(d, 0, 1, pa), 1);
	assert_int_equal(remus_dedup_begin_epoch(d, 2), 0);
	assert_int_equal(offer(d, 0, 1, pb), 1);
	remus_dedup_commit(d, 1);
	remus_dedup_abort(d, 2);
	assert_int_equal(remus_dedup_begin_epoch(d, 3), 0);
	assert_int_equal(offer(d, 0, 1, pa), 0);
	/* epochs go forward */
	assert_int_equal(remus_dedup_begin_epoch(d, 1), -EINVAL);
}

static void test_zero_pages(void **state)
{
	struct remus_dedup *d = *state;
	struct remus_dedup_stats st;

	assert_int_equal(remus_dedup_begin_epoch(d, 1), 0);
	assert_int_equal(offer(d, 1, 0, NULL), 1); /* unknown: send the ZERO */
	assert_int_equal(offer(d, 1, 1, pa), 1);
	remus_dedup_commit(d, 1);
	assert_int_equal(remus_dedup_begin_epoch(d, 2), 0);
	assert_int_equal(offer(d, 1, 0, NULL), 0); /* held as zero */
	assert_int_equal(offer(d, 1, 0, pz), 0);   /* a page of zeros: same */
	assert_int_equal(offer(d, 1, 1, NULL), 1); /* was A */
	remus_dedup_get_stats(d, &st);
	assert_int_equal(st.zero_dropped, 1);
	assert_int_equal(st.pages_dropped, 1);
	assert_int_equal(st.zero_sent, 2);
}

static void test_layout_change_forgets(void **state)
{
	struct remus_dedup *d = *state;
	struct remus_migstream_block nb[2];

	assert_int_equal(remus_dedup_begin_epoch(d, 1), 0);
	assert_int_equal(offer(d, 0, 1, pa), 1);
	remus_dedup_commit(d, 1);
	/* same layout: kept */
	assert_int_equal(remus_dedup_set_layout(d, blocks, 2, PAGE), 0);
	assert_int_equal(remus_dedup_begin_epoch(d, 2), 0);
	assert_int_equal(offer(d, 0, 1, pa), 0);
	/* vga.vram resized: everything unknown */
	memcpy(nb, blocks, sizeof(nb));
	nb[1].length = 8 * PAGE;
	assert_int_equal(remus_dedup_set_layout(d, nb, 2, PAGE), 0);
	assert_int_equal(offer(d, 0, 1, pa), 1);
	/* a token from the old layout is sent, not recorded */
	assert_int_equal(offer(d, 1, 1, pa), 1);
	assert_int_equal(offer(d, 1, 1, pa), 1);
	remus_dedup_reset(d);
	assert_int_equal(offer(d, 0, 1, pa), 1);
}

/* A new standby session: everything unknown, epochs restart at 0. */
static void test_reset_starts_a_new_session(void **state)
{
	struct remus_dedup *d = *state;

	assert_int_equal(remus_dedup_begin_epoch(d, 0), 0);
	assert_int_equal(offer(d, 0, 1, pa), 1);
	remus_dedup_commit(d, 0);
	assert_int_equal(remus_dedup_begin_epoch(d, 1), 0);
	assert_int_equal(offer(d, 0, 1, pa), 0);
	remus_dedup_commit(d, 1);
	remus_dedup_reset(d);
	assert_int_equal(remus_dedup_begin_epoch(d, 0), 0);
	assert_int_equal(offer(d, 0, 1, pa), 1);
	remus_dedup_commit(d, 0);
	assert_int_equal(remus_dedup_begin_epoch(d, 1), 0);
	assert_int_equal(offer(d, 0, 1, pa), 0);
}

static void put_be(struct remus_buf *b, uint64_t v, int bytes)
{
	uint8_t x[8];
	int i;

	for (i = 0; i < bytes; i++)
		x[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	assert_int_equal(remus_buf_append(b, x, (size_t)bytes), 0);
}

static void put_name(struct remus_buf *b, const char *name)
{
	put_be(b, strlen(name), 1);
	assert_int_equal(remus_buf_append(b, name, strlen(name)), 0);
}

/* A RAM record: header, block name unless NULL (CONTINUE), payload. */
static void put_rec(struct remus_buf *b, uint64_t hdr, const char *name, const void *p,
		    size_t n)
{
	put_be(b, hdr, 8);
	if (name)
		put_name(b, name);
	assert_int_equal(remus_buf_append(b, p, n), 0);
}

static size_t rewrite_epoch(struct remus_dedup *d, const struct remus_buf *in, bool first,
			    struct remus_migstream_rewriter *rw)
{
	struct remus_migstream *p = NULL;
	struct remus_migstream_token t;
	int rc;

	remus_migstream_rewriter_init(rw, first, 2, remus_dedup_filter, d);
	assert_int_equal(remus_migstream_new(NULL, &p), 0);
	assert_int_equal(remus_migstream_feed(p, remus_buf_data(in), remus_buf_len(in)), 0);
	remus_migstream_finish(p);
	while ((rc = remus_migstream_next(p, &t)) == 1) {
		if (t.kind == REMUS_MS_RAM_MEM_SIZE)
			assert_int_equal(remus_dedup_set_layout(d, t.blocks, t.nblocks, t.page_size), 0);
		assert_int_equal(remus_migstream_rewrite(rw, &t), 0);
	}
	assert_int_equal(rc, 0);
	assert_true(remus_migstream_complete(p));
	remus_migstream_free(p);
	return remus_buf_len(&rw->out);
}

/* The filter in the rewriter: the second epoch of an unchanged guest
 * carries no page or zero record at all, and its records stay valid. */
static void test_with_rewriter(void **state)
{
	struct remus_dedup *d = *state;
	struct remus_migstream_rewriter rw1, rw2, rw3;
	struct remus_buf in;
	uint8_t z = 0;
	size_t n1, n2, n3;
	struct remus_dedup_stats st;

	remus_buf_init(&in, 0);
	put_be(&in, REMUS_MIG_MAGIC, 4);
	put_be(&in, 3, 4);
	put_be(&in, 0x01, 1); /* START(ram) */
	put_be(&in, 2, 4);
	put_name(&in, "ram");
	put_be(&in, 0, 4);
	put_be(&in, 4, 4);
	put_be(&in, (20 * PAGE) | 0x4, 8); /* MEM_SIZE */
	put_name(&in, "pc.ram");
	put_be(&in, 16 * PAGE, 8);
	put_name(&in, "vga.vram");
	put_be(&in, 4 * PAGE, 8);
	put_be(&in, 0x10, 8);
	put_be(&in, 0x7e, 1);
	put_be(&in, 2, 4);
	put_be(&in, 0x03, 1); /* END(ram) */
	put_be(&in, 2, 4);
	put_rec(&in, 0 | 0x8, "pc.ram", pa, PAGE);
	put_rec(&in, PAGE | 0x28, NULL, pb, PAGE);
	put_rec(&in, 2 * PAGE | 0x22, NULL, &z, 1);
	put_rec(&in, 0 | 0x2, "vga.vram", &z, 1);
	put_rec(&in, PAGE | 0x28, NULL, pc_, PAGE);
	put_be(&in, 0x10, 8);
	put_be(&in, 0x7e, 1);
	put_be(&in, 2, 4);
	put_be(&in, 0x00, 1); /* EOF: an empty device part */
	put_be(&in, 0x06, 1);
	put_be(&in, 2, 4);
	assert_int_equal(remus_buf_append(&in, "{}", 2), 0);

	assert_int_equal(remus_dedup_begin_epoch(d, 0), 0);
	n1 = rewrite_epoch(d, &in, true, &rw1);
	assert_int_equal(rw1.pages_kept, 3);
	assert_int_equal(rw1.zero_kept, 2);
	remus_dedup_commit(d, 0);

	assert_int_equal(remus_dedup_begin_epoch(d, 1), 0);
	n2 = rewrite_epoch(d, &in, false, &rw2);
	assert_int_equal(rw2.pages_kept, 0);
	assert_int_equal(rw2.zero_kept, 0);
	/* PART(start) + MEM_SIZE list + EOS + footer; the END section kept
	 * nothing, so the rewriter dropped it whole */
	assert_int_equal(n2, 5 + (8 + 7 + 8 + 9 + 8) + 8 + 5);
	assert_int_equal(rw2.sections_elided, 1);
	assert_true(n2 < n1);

	/* the guest changes vga.vram page 1 only: one page, named again,
	 * since the records before it were dropped */
	assert_int_equal(remus_dedup_begin_epoch(d, 2), 0);
	/* after the last page: EOS 8, footer 5, EOF 1, vmdescription 7 */
	memset(remus_buf_data(&in) + remus_buf_len(&in) - 21 - PAGE, 'C', PAGE);
	n3 = rewrite_epoch(d, &in, false, &rw3);
	assert_int_equal(rw3.pages_kept, 1);
	/* the END section now carries a page: header, record, EOS, footer */
	assert_int_equal(n3, n2 + 5 + 8 + 9 + PAGE + 8 + 5);
	assert_int_equal(rw3.sections_elided, 0);
	{
		const uint8_t *o = remus_buf_data(&rw3.out) + 5 + 40 + 8 + 5 + 5;

		assert_int_equal(remus_get_be64(o), PAGE | 0x8);
		assert_memory_equal(o + 8, "\x08vga.vram", 9);
	}
	remus_dedup_get_stats(d, &st);
	assert_int_equal(st.pages_dropped, 5);
	remus_migstream_rewriter_release(&rw1);
	remus_migstream_rewriter_release(&rw2);
	remus_migstream_rewriter_release(&rw3);
	remus_buf_release(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unchanged_page_dropped_after_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_epoch_rewrites_are_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_restores_what_standby_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_then_abort_keeps_committed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_change_forgets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_starts_a_new_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_with_rewriter, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
