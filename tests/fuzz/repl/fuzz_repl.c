// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for the replication link's receive path: the incremental
 * decoder and the standby epoch assembler, as remusd's standby runs them.
 *
 * Input: one byte, then the stream.  The byte's low 7 bits pick how the
 * stream is cut into reads (0: all at once, n: pieces of n bytes); its top
 * bit makes the harness recompute the header check and checksum of every
 * frame it can delimit, so that mutations get past the checksums and reach
 * the payload parser and the assembler (without it they test the
 * checksums).  Besides "no crash, no leak, no UB", it checks properties a
 * fuzzer can break:
 *  - every decoded frame re-encodes to exactly the bytes it came from
 *    (decoder and encoder agree; nothing is accepted that we would not
 *    send), except a HELLO of another version, which decodes to its
 *    version alone;
 *  - an epoch the assembler releases has the sizes and the XXH3 its
 *    COMMIT_REQ announced;
 *  - every error comes with a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "repl/repl.h"
#include "common/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reencode(const struct remus_repl_msg *m, const uint8_t *frame, size_t len)
{
	struct remus_buf b;

	if (m->type == REMUS_REPL_HELLO && m->u.hello.version != REMUS_REPL_VERSION)
		return;
	remus_buf_init(&b, 0);
	if (remus_repl_encode(&b, m) != 0 || remus_buf_len(&b) != len ||
	    memcmp(remus_buf_data(&b), frame, len) != 0)
		abort();
	remus_buf_release(&b);
}

/* Hashes what is left in @st; returns its length. */
static uint64_t hash_store(XXH3_state_t *s, struct remus_spill *st)
{
	uint8_t buf[4096];
	uint64_t n = 0;
	ssize_t r;

	while ((r = remus_spill_read(st, buf, sizeof(buf))) > 0) {
		XXH3_64bits_update(s, buf, (size_t)r);
		n += (uint64_t)r;
	}
	if (r < 0)
		abort();
	return n;
}

static void check_epoch(const struct remus_repl_msg *commit, struct remus_repl_epoch *e)
{
	XXH3_state_t *s = XXH3_createState();
	uint64_t nd, nv;

	if (!s)
		abort();
	XXH3_64bits_reset(s);
	nd = hash_store(s, &e->data);
	nv = hash_store(s, &e->device);
	if (e->epoch != commit->seq || nd != commit->u.commit.data_len ||
	    nv != commit->u.commit.device_len || XXH3_64bits_digest(s) != commit->u.commit.hash)
		abort();
	XXH3_freeState(s);
}

/* Makes every frame that @p can delimit checksum-correct. */
static void fix_checksums(uint8_t *p, size_t size)
{
	size_t pos = 0, len;

	while (size - pos >= (size_t)REMUS_REPL_HDR_LEN + REMUS_REPL_TRAILER_LEN) {
		len = remus_get_be32(p + pos + REMUS_REPL_OFF_LENGTH);
		if (len > size - pos - REMUS_REPL_HDR_LEN - REMUS_REPL_TRAILER_LEN)
			break;
		remus_put_be32(p + pos + REMUS_REPL_OFF_HCHECK,
			       (uint32_t)XXH3_64bits(p + pos, REMUS_REPL_OFF_HCHECK));
		remus_put_be64(p + pos + REMUS_REPL_HDR_LEN + len,
			       XXH3_64bits(p + pos, REMUS_REPL_HDR_LEN + len));
		pos += REMUS_REPL_HDR_LEN + len + REMUS_REPL_TRAILER_LEN;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_repl_assembler a;
	struct remus_repl_decoder d;
	struct remus_repl_epoch e;
	struct remus_repl_msg m;
	struct remus_buf in;
	size_t step, fed = 0;
	uint8_t *copy = NULL;
	int rc = 0;

	if (size < 1)
		return 0;
	step = data[0] & 0x7f ? data[0] & 0x7f : SIZE_MAX;
	if (data[0] & 0x80) {
		copy = malloc(size);
		if (!copy)
			return 0;
		memcpy(copy, data, size);
		fix_checksums(copy + 1, size - 1);
		data = copy;
	}
	data++;
	size--;

	remus_buf_init(&in, REMUS_REPL_FRAME_MAX);
	remus_repl_decoder_init(&d);
	/* A small bound so the fuzzer can reach it. */
	remus_repl_assembler_init(&a, 1, 1 << 16);
	while (fed < size && rc >= 0) {
		size_t n = size - fed < step ? size - fed : step;

		if (remus_buf_append(&in, data + fed, n) != 0)
			break;
		fed += n;
		while ((rc = remus_repl_decode(&d, &in, &m)) == 1) {
			check_reencode(&m, remus_buf_data(&in), d.consume);
			remus_repl_epoch_init(&e);
			rc = remus_repl_assembler_feed(&a, &m, &e);
			if (rc == 1) {
				check_epoch(&m, &e);
				remus_repl_epoch_release(&e);
			} else if (rc < 0 && rc != -EINVAL &&
				   remus_repl_assembler_error(&a)[0] == '\0') {
				abort();
			}
		}
		if (rc < 0 && remus_repl_decoder_error(&d)[0] == '\0')
			abort();
	}
	remus_repl_assembler_discard(&a);
	remus_repl_assembler_release(&a);
	remus_buf_release(&in);
	free(copy);
	return 0;
}
