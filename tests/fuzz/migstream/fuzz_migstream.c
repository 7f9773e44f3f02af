// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for controller/migstream: the parser and the standby
 * rewriter over arbitrary input in arbitrary chunks.
 *
 * Input: byte 0 is the chunk size (0: everything at once), byte 1 picks
 * the mode (bit 0 first epoch, bit 1 drop odd pages, bit 2 drop zero
 * pages, bit 3 no vmdescription expected, bit 4 1 KiB target pages, bit 5
 * leave the channel open, bit 6 dedup as the filter, the stream twice:
 * epoch 0 acknowledged, epoch 1 aborted), the rest is the stream.  Besides "no crash, no
 * leak, no UB" it checks that tokens tile the input, and that a complete
 * first epoch, rewritten and closed with the failover tail, is again a
 * complete stream: what the standby would load must parse.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "controller/dedup.h"
#include "migstream/migstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int drop_filter(void *opaque, const struct remus_migstream_token *t)
{
	unsigned mode = *(const unsigned *)opaque;

	if (t->kind == REMUS_MS_RAM_ZERO)
		return (mode & 4) ? 0 : 1;
	if ((mode & 2) && (t->page[0] & 1))
		return 0;
	return 1;
}

/* Not assert(): it must hold in release builds too. */
#define check(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                                \
			abort();                                                 \
		}                                                                \
	} while (0)

/* Parses @d; returns true if the stream was complete.  Rewrites into @rw
 * if non-NULL. */
static bool run(const uint8_t *d, size_t n, size_t chunk, unsigned mode,
		struct remus_migstream_rewriter *rw, bool *saw_start, struct remus_dedup *dd)
{
	struct remus_migstream_opts o = {
		.page_bits = (mode & 16) ? 10 : 12,
		.max_buffered = 1 << 20,
		.no_vmdesc = (mode & 8) != 0,
	};
	struct remus_migstream *p = NULL;
	struct remus_migstream_token t;
	uint64_t last_end = 0;
	size_t pos = 0;
	bool complete = false, failed = false, closed = false;
	int rc;

	if (remus_migstream_new(&o, &p) < 0)
		return false;
	for (;;) {
		if (pos < n) {
			size_t k = chunk && chunk < n - pos ? chunk : n - pos;

			if (remus_migstream_feed(p, d + pos, k) < 0)
				break;
			pos += k;
		} else if (!(mode & 32)) {
			remus_migstream_finish(p);
			closed = true;
		}
		while ((rc = remus_migstream_next(p, &t)) == 1) {
			check(t.start == last_end);
			check(t.end > t.start && t.end <= n && t.raw);
			check(memcmp(t.raw, d + t.start, (size_t)(t.end - t.start)) == 0);
			if (t.kind == REMUS_MS_RAM_PAGE)
				check(t.page && t.page + t.page_size == t.raw + (t.end - t.start));
			if (t.kind == REMUS_MS_DEVICE)
				check(t.data_len == t.end - t.start && t.data[t.data_len - 1] == 0);
			if (t.kind == REMUS_MS_START && saw_start)
				*saw_start = true;
			if (t.kind == REMUS_MS_RAM_MEM_SIZE && dd)
				check(remus_dedup_set_layout(dd, t.blocks, t.nblocks, t.page_size) == 0);
			last_end = t.end;
			if (rw && remus_migstream_rewrite(rw, &t) < 0) {
				failed = true;
				break;
			}
		}
		if (failed || rc < 0)
			break;
		check(*remus_migstream_error(p) == '\0');
		if (remus_migstream_complete(p)) {
			complete = true;
			check(last_end == n);
			break;
		}
		if (pos == n && (mode & 32))
			break;
		/* closed, not complete and no error: impossible */
		check(!closed);
	}
	(void)remus_migstream_dev_tail_seen(p);
	remus_migstream_free(p);
	return complete && !failed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_migstream_rewriter rw;
	struct remus_buf standby;
	unsigned mode;
	size_t chunk;
	bool saw_start = false, complete;

	if (size < 2)
		return 0;
	chunk = data[0];
	mode = data[1];
	data += 2;
	size -= 2;
	if (mode & 64) {
		struct remus_dedup *dd = NULL;

		check(remus_dedup_new(&dd) == 0);
		check(remus_dedup_begin_epoch(dd, 0) == 0);
		remus_migstream_rewriter_init(&rw, true, 0, remus_dedup_filter, dd);
		run(data, size, chunk, mode, &rw, NULL, dd);
		remus_migstream_rewriter_release(&rw);
		remus_dedup_commit(dd, 0);
		check(remus_dedup_begin_epoch(dd, 1) == 0);
		remus_migstream_rewriter_init(&rw, false, 3, remus_dedup_filter, dd);
		run(data, size, chunk, mode, &rw, NULL, dd);
		remus_migstream_rewriter_release(&rw);
		remus_dedup_abort(dd, 1);
		remus_dedup_free(dd);
		return 0;
	}
	remus_migstream_rewriter_init(&rw, mode & 1, 3, (mode & 6) ? drop_filter : NULL, &mode);
	complete = run(data, size, chunk, mode, &rw, &saw_start, NULL);
	remus_buf_init(&standby, 0);
	if (complete && (mode & 1) && saw_start && !(mode & 8) && rw.device_done) {
		/* The standby's stream: this epoch, then the failover tail. */
		check(remus_buf_append(&standby, remus_buf_data(&rw.out), remus_buf_len(&rw.out)) == 0);
		check(remus_migstream_build_tail(&standby, rw.standby_sid, remus_buf_data(&rw.dev),
						 remus_buf_len(&rw.dev)) == 0);
		check(run(remus_buf_data(&standby), remus_buf_len(&standby), chunk, mode & 16,
			  NULL, NULL, NULL));
	}
	remus_buf_release(&standby);
	remus_migstream_rewriter_release(&rw);
	return 0;
}
