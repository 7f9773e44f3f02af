// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for controller/v2stream.h: arbitrary bytes as QEMU's
 * x-ignore-shared stream, in arbitrary chunks, through parser A, the
 * composer (shared block "mem" of 64 pages, dirty set from the input) and
 * the engine's own parser B.  Input: byte 0 the chunk size (0: all at
 * once), bytes 1-8 the dirty bitmap, byte 9 the pump batch in pages, the
 * rest the stream.  Besides "no crash, no leak, no UB" it checks that a
 * complete stream the composer accepted composes into a complete stream
 * that parser B accepts, without x-ignore-shared, and that every dirty
 * page was injected.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "controller/v2stream.h"
#include "migstream/migstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAGES 64u

#define check(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                                \
			abort();                                                 \
		}                                                                \
	} while (0)

static uint8_t ram[PAGES * 4096];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_migstream_opts o = { .max_buffered = 1 << 20 };
	struct remus_migstream *a = NULL, *b = NULL;
	struct remus_migstream_token t;
	struct remus_v2stream s;
	struct remus_buf out;
	uint64_t bits = 0, want;
	size_t chunk, batch, pos = 10;
	bool failed = false;
	int r = 0, rc;

	if (size < 10)
		return 0;
	chunk = data[0];
	memcpy(&bits, data + 1, 8);
	batch = (size_t)(data[9] % 8 + 1) * 4096;
	for (unsigned i = 0; i < PAGES; i++)
		memset(ram + i * 4096, (i % 3) ? (int)i : 0, 4096);
	want = (uint64_t)__builtin_popcountll(bits);
	remus_buf_init(&out, 0);
	remus_v2stream_init(&s, "mem", ram, sizeof(ram), &bits);
	if (remus_migstream_new(&o, &a) < 0)
		goto out;
	for (;;) {
		if (pos < size) {
			size_t k = chunk && chunk < size - pos ? chunk : size - pos;

			if (remus_migstream_feed(a, data + pos, k) < 0)
				break;
			pos += k;
		} else {
			remus_migstream_finish(a);
		}
		while ((r = remus_migstream_next(a, &t)) == 1) {
			rc = remus_v2stream_token(&s, &t, &out);
			while (rc == 1)
				rc = remus_v2stream_pump(&s, &out, batch);
			if (rc < 0) {
				check(rc != -EBADMSG || s.error[0]);
				failed = true;
				break;
			}
		}
		if (failed || r < 0 || remus_migstream_complete(a) || pos >= size)
			break;
	}
	if (failed || r < 0 || !remus_migstream_complete(a))
		goto out;
	/* A complete stream the composer took: B must take what it made. */
	check(s.injected);
	check(s.pages + s.zero_pages == want);
	check(remus_migstream_new(NULL, &b) == 0);
	check(remus_migstream_feed(b, remus_buf_data(&out), remus_buf_len(&out)) == 0);
	remus_migstream_finish(b);
	while ((r = remus_migstream_next(b, &t)) == 1)
		if (t.kind == REMUS_MS_CONFIG)
			check(!t.ignore_shared);
	if (r < 0)
		fprintf(stderr, "parser B: %s\n", remus_migstream_error(b));
	check(r == 0 && remus_migstream_complete(b));
out:
	remus_migstream_free(a);
	remus_migstream_free(b);
	remus_buf_release(&out);
	return 0;
}
