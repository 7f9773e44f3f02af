// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the replication link (repl/repl.h): every message
 * round-trips; decoding is independent of how the stream is split; any
 * flipped bit in a frame is detected; bounds are enforced from the header
 * alone; the handshake check explains its rejects; and the standby's epoch
 * assembler releases an epoch only whole and verified.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "repl/repl.h"
#include "common/wire.h"

#define TXT(s) ((struct remus_repl_text){ .p = (s), .len = sizeof(s) - 1 })

static void make_hello(struct remus_repl_hello *h, uint64_t ram)
{
	memset(h, 0, sizeof(*h));
	h->version = REMUS_REPL_VERSION;
	h->vm_name = TXT("web1");
	for (int i = 0; i < 16; i++)
		h->vm_uuid[i] = (uint8_t)(0xa0 + i);
	h->page_size = 4096;
	h->nblocks = 3;
	h->blocks[0].id = TXT("pc.ram");
	h->blocks[0].length = ram;
	h->blocks[1].id = TXT("pc.bios");
	h->blocks[1].length = 256 << 10;
	h->blocks[2].id = TXT("vga.vram");
	h->blocks[2].length = 16 << 20;
}

static const uint8_t payload[] = "page bytes of the standby stream \x00\x01\xff";

/* One message of every type, in protocol order. */
#define MAKE_ALL_MAX 16
static size_t make_all(struct remus_repl_msg *m)
{
	size_t n = 0;

	memset(m, 0, MAKE_ALL_MAX * sizeof(*m)); /* every field not set is 0 */

	memset(m, 0, 9 * sizeof(*m));
	m[n].type = REMUS_REPL_HELLO;
	make_hello(&m[n++].u.hello, 256ull << 20);
	m[n].type = REMUS_REPL_HELLO_ACK;
	m[n].u.ack.flags = REMUS_REPL_ACK_RESUME;
	m[n].u.ack.ram_sid = 3;
	m[n].u.ack.next_epoch = 17;
	m[n++].u.ack.version = REMUS_REPL_VERSION;
	m[n].type = REMUS_REPL_HELLO_REJECT;
	m[n++].u.reason = TXT("version 2 expected, got 1");
	m[n].type = REMUS_REPL_EPOCH_DATA;
	m[n].seq = 7;
	m[n].u.chunk.offset = 4096;
	m[n].u.chunk.p = payload;
	m[n++].u.chunk.len = sizeof(payload);
	m[n].type = REMUS_REPL_EPOCH_DEVICE;
	m[n].seq = 7;
	m[n].u.chunk.offset = 0;
	m[n].u.chunk.p = payload + 5;
	m[n++].u.chunk.len = 9;
	m[n].type = REMUS_REPL_COMMIT_REQ;
	m[n].seq = 7;
	m[n].u.commit.data_len = 1ull << 33;
	m[n].u.commit.device_len = 12345;
	m[n].u.commit.hash = 0x0123456789abcdefull;
	m[n].u.commit.disk_ops = 3;
	m[n].u.commit.disk_bytes = 1ull << 35;
	m[n++].u.commit.disk_hash = 0xfedcba9876543210ull;
	m[n].type = REMUS_REPL_EPOCH_DISK;
	m[n].seq = 7;
	m[n].u.disk.disk = 2;
	m[n].u.disk.op = REMUS_REPL_DISK_WRITE;
	m[n].u.disk.offset = 1ull << 40;
	m[n].u.disk.length = sizeof(payload);
	m[n++].u.disk.p = payload;
	m[n].type = REMUS_REPL_EPOCH_DISK;
	m[n].seq = 8;
	m[n].u.disk.op = REMUS_REPL_DISK_ZERO;
	m[n].u.disk.offset = 512;
	m[n++].u.disk.length = 1u << 30;
	m[n].type = REMUS_REPL_DISK_HASHES;
	m[n].u.hashes.disk = 1;
	m[n].u.hashes.name = TXT("vda");
	m[n].u.hashes.size = 64ull << 20;
	m[n].u.hashes.extent_size = 65536;
	m[n].u.hashes.first = 10;
	m[n].u.hashes.count = sizeof(payload) / 16;
	m[n++].u.hashes.p = payload;
	m[n].type = REMUS_REPL_DISK_HASHES_END;
	m[n++].u.ndisks = 2;
	m[n].type = REMUS_REPL_COMMIT_ACK;
	m[n++].seq = 7;
	m[n].type = REMUS_REPL_HEARTBEAT;
	m[n].seq = 99;
	m[n++].u.mono_ms = 123456789;
	m[n].type = REMUS_REPL_CLOSE;
	m[n++].u.reason = TXT("unprotect requested");
	assert_true(n <= MAKE_ALL_MAX);
	return n;
}

static void assert_text_eq(const struct remus_repl_text *a, const struct remus_repl_text *b)
{
	assert_int_equal(a->len, b->len);
	if (a->len)
		assert_memory_equal(a->p, b->p, a->len);
}

static void assert_msg_eq(const struct remus_repl_msg *want, const struct remus_repl_msg *got)
{
	assert_int_equal(want->type, got->type);
	assert_int_equal(want->seq, got->seq);
	switch (want->type) {
	case REMUS_REPL_HELLO: {
		const struct remus_repl_hello *a = &want->u.hello, *b = &got->u.hello;

		assert_int_equal(a->version, b->version);
		assert_text_eq(&a->vm_name, &b->vm_name);
		assert_memory_equal(a->vm_uuid, b->vm_uuid, 16);
		assert_int_equal(a->page_size, b->page_size);
		assert_int_equal(a->nblocks, b->nblocks);
		for (unsigned i = 0; i < a->nblocks; i++) {
			assert_text_eq(&a->blocks[i].id, &b->blocks[i].id);
			assert_int_equal(a->blocks[i].length, b->blocks[i].length);
		}
		break;
	}
	case REMUS_REPL_HELLO_ACK:
		assert_int_equal(want->u.ack.version, got->u.ack.version);
		assert_int_equal(want->u.ack.flags, got->u.ack.flags);
		assert_int_equal(want->u.ack.ram_sid, got->u.ack.ram_sid);
		assert_true(want->u.ack.next_epoch == got->u.ack.next_epoch);
		break;
	case REMUS_REPL_HELLO_REJECT:
	case REMUS_REPL_CLOSE:
		assert_text_eq(&want->u.reason, &got->u.reason);
		break;
	case REMUS_REPL_EPOCH_DATA:
	case REMUS_REPL_EPOCH_DEVICE:
		assert_int_equal(want->u.chunk.offset, got->u.chunk.offset);
		assert_int_equal(want->u.chunk.len, got->u.chunk.len);
		assert_memory_equal(want->u.chunk.p, got->u.chunk.p, want->u.chunk.len);
		break;
	case REMUS_REPL_COMMIT_REQ:
		assert_int_equal(want->u.commit.data_len, got->u.commit.data_len);
		assert_int_equal(want->u.commit.device_len, got->u.commit.device_len);
		assert_int_equal(want->u.commit.hash, got->u.commit.hash);
		assert_int_equal(want->u.commit.disk_ops, got->u.commit.disk_ops);
		assert_int_equal(want->u.commit.disk_bytes, got->u.commit.disk_bytes);
		assert_int_equal(want->u.commit.disk_hash, got->u.commit.disk_hash);
		break;
	case REMUS_REPL_EPOCH_DISK:
		assert_int_equal(want->u.disk.disk, got->u.disk.disk);
		assert_int_equal(want->u.disk.op, got->u.disk.op);
		assert_int_equal(want->u.disk.offset, got->u.disk.offset);
		assert_int_equal(want->u.disk.length, got->u.disk.length);
		if (want->u.disk.op == REMUS_REPL_DISK_WRITE)
			assert_memory_equal(want->u.disk.p, got->u.disk.p, want->u.disk.length);
		else
			assert_null(got->u.disk.p);
		break;
	case REMUS_REPL_DISK_HASHES:
		assert_int_equal(want->u.hashes.disk, got->u.hashes.disk);
		assert_text_eq(&want->u.hashes.name, &got->u.hashes.name);
		assert_int_equal(want->u.hashes.size, got->u.hashes.size);
		assert_int_equal(want->u.hashes.extent_size, got->u.hashes.extent_size);
		assert_int_equal(want->u.hashes.first, got->u.hashes.first);
		assert_int_equal(want->u.hashes.count, got->u.hashes.count);
		assert_memory_equal(want->u.hashes.p, got->u.hashes.p, want->u.hashes.count * 16u);
		break;
	case REMUS_REPL_DISK_HASHES_END:
		assert_int_equal(want->u.ndisks, got->u.ndisks);
		break;
	case REMUS_REPL_COMMIT_ACK:
		break;
	case REMUS_REPL_HEARTBEAT:
		assert_int_equal(want->u.mono_ms, got->u.mono_ms);
		break;
	}
}

static void test_roundtrip_every_message(void **state)
{
	struct remus_repl_msg want[MAKE_ALL_MAX], got;
	struct remus_repl_decoder d;
	struct remus_buf b;
	size_t n = make_all(want);

	for (size_t i = 0; i < n; i++) {
		remus_buf_init(&b, REMUS_REPL_FRAME_MAX);
		remus_repl_decoder_init(&d);
		assert_int_equal(remus_repl_encode(&b, &want[i]), 0);
		assert_int_equal(remus_repl_decode(&d, &b, &got), 1);
		assert_msg_eq(&want[i], &got);
		/* Exactly one frame: nothing left once it is consumed. */
		assert_int_equal(remus_repl_decode(&d, &b, &got), 0);
		assert_int_equal(remus_buf_len(&b), 0);
		remus_buf_release(&b);
	}
}

static void test_shorthands(void **state)
{
	struct remus_repl_decoder d;
	struct remus_repl_msg m;
	struct remus_buf b;

	remus_buf_init(&b, 0);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_put_heartbeat(&b, 3, 1000), 0);
	assert_int_equal(remus_repl_put_commit_ack(&b, 41), 0);
	assert_int_equal(remus_repl_put_reject(&b, "VM identity mismatch"), 0);
	assert_int_equal(remus_repl_put_close(&b, "bye"), 0);
	assert_int_equal(remus_repl_decode(&d, &b, &m), 1);
	assert_int_equal(m.type, REMUS_REPL_HEARTBEAT);
	assert_int_equal(m.seq, 3);
	assert_int_equal(m.u.mono_ms, 1000);
	assert_int_equal(remus_repl_decode(&d, &b, &m), 1);
	assert_int_equal(m.type, REMUS_REPL_COMMIT_ACK);
	assert_int_equal(m.seq, 41);
	assert_int_equal(remus_repl_decode(&d, &b, &m), 1);
	assert_int_equal(m.type, REMUS_REPL_HELLO_REJECT);
	assert_int_equal(m.u.reason.len, strlen("VM identity mismatch"));
	assert_int_equal(remus_repl_decode(&d, &b, &m), 1);
	assert_int_equal(m.type, REMUS_REPL_CLOSE);
	assert_memory_equal(m.u.reason.p, "bye", 3);
	assert_int_equal(remus_repl_decode(&d, &b, &m), 0);
	remus_buf_release(&b);
}

/* Feeds @stream to a fresh decoder cut at @cut, then at every byte when
 * @bytewise, and checks the messages come out as @want. */
static void decode_split(const uint8_t *stream, size_t len, size_t cut, bool bytewise,
			 const struct remus_repl_msg *want, size_t n)
{
	struct remus_repl_decoder d;
	struct remus_repl_msg got;
	struct remus_buf in;
	size_t fed = 0, seen = 0;
	int rc;

	remus_buf_init(&in, REMUS_REPL_FRAME_MAX);
	remus_repl_decoder_init(&d);
	while (fed < len) {
		size_t step = bytewise ? 1 : (fed < cut ? cut - fed : len - fed);

		assert_int_equal(remus_buf_append(&in, stream + fed, step), 0);
		fed += step;
		while ((rc = remus_repl_decode(&d, &in, &got)) == 1) {
			assert_true(seen < n);
			assert_msg_eq(&want[seen], &got);
			seen++;
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(seen, n);
	remus_buf_release(&in);
}

static void test_split_at_every_byte(void **state)
{
	struct remus_repl_msg want[MAKE_ALL_MAX];
	struct remus_buf all;
	size_t n = make_all(want);

	remus_buf_init(&all, 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(remus_repl_encode(&all, &want[i]), 0);
	for (size_t cut = 0; cut <= remus_buf_len(&all); cut++)
		decode_split(remus_buf_data(&all), remus_buf_len(&all), cut, false, want, n);
	decode_split(remus_buf_data(&all), remus_buf_len(&all), 0, true, want, n);
	remus_buf_release(&all);
}

/* Every single-bit error in every byte of a frame is an error, never a
 * message and never a wait for more input. */
static void test_bit_flip_anywhere_detected(void **state)
{
	struct remus_repl_msg want[MAKE_ALL_MAX], got;
	size_t n = make_all(want);

	for (size_t i = 0; i < n; i++) {
		struct remus_buf frame, in;

		remus_buf_init(&frame, 0);
		assert_int_equal(remus_repl_encode(&frame, &want[i]), 0);
		for (size_t pos = 0; pos < remus_buf_len(&frame); pos++) {
			for (int bit = 0; bit < 8; bit++) {
				struct remus_repl_decoder d;

				remus_buf_init(&in, 0);
				assert_int_equal(remus_buf_append(&in, remus_buf_data(&frame),
								  remus_buf_len(&frame)), 0);
				remus_buf_data(&in)[pos] ^= (uint8_t)(1u << bit);
				remus_repl_decoder_init(&d);
				assert_int_equal(remus_repl_decode(&d, &in, &got), -EBADMSG);
				assert_true(strlen(remus_repl_decoder_error(&d)) > 0);
				remus_buf_release(&in);
			}
		}
		remus_buf_release(&frame);
	}
}

static void test_payload_corruption_is_checksum_error(void **state)
{
	struct remus_repl_msg want[MAKE_ALL_MAX], got;
	struct remus_repl_decoder d;
	struct remus_buf b;

	make_all(want);
	remus_buf_init(&b, 0);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_encode(&b, &want[3]), 0);
	remus_buf_data(&b)[REMUS_REPL_HDR_LEN + 10] ^= 0x10;
	assert_int_equal(remus_repl_decode(&d, &b, &got), -EBADMSG);
	assert_non_null(strstr(remus_repl_decoder_error(&d), "checksum mismatch"));
	assert_non_null(strstr(remus_repl_decoder_error(&d), "EPOCH_DATA"));
	remus_buf_release(&b);
}

static void test_wrong_magic(void **state)
{
	struct remus_repl_decoder d;
	struct remus_repl_msg m;
	struct remus_buf b;

	remus_buf_init(&b, 0);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_put_heartbeat(&b, 1, 2), 0);
	memcpy(remus_buf_data(&b), "QEVM", 4);
	assert_int_equal(remus_repl_decode(&d, &b, &m), -EBADMSG);
	assert_non_null(strstr(remus_repl_decoder_error(&d), "bad magic 0x5145564d"));
	remus_buf_release(&b);
}

/* A header with a valid header check, as a buggy or hostile peer sends. */
static void put_header(uint8_t *h, uint16_t type, uint16_t flags, uint32_t len, uint64_t seq)
{
	remus_put_be32(h + REMUS_REPL_OFF_MAGIC, REMUS_REPL_MAGIC);
	remus_put_be16(h + REMUS_REPL_OFF_TYPE, type);
	remus_put_be16(h + REMUS_REPL_OFF_FLAGS, flags);
	remus_put_be32(h + REMUS_REPL_OFF_LENGTH, len);
	remus_put_be64(h + REMUS_REPL_OFF_SEQ, seq);
	remus_put_be32(h + REMUS_REPL_OFF_HCHECK,
		       (uint32_t)XXH3_64bits(h, REMUS_REPL_OFF_HCHECK));
}

static int decode_header_only(uint16_t type, uint16_t flags, uint32_t len, uint64_t seq,
			      char *msg, size_t size)
{
	uint8_t h[REMUS_REPL_HDR_LEN];
	struct remus_repl_decoder d;
	struct remus_repl_msg m;
	struct remus_buf b;
	int rc;

	/* The input buffer can hold the header and nothing more: a decoder
	 * that waited for the payload would return 0 here, not an error. */
	remus_buf_init(&b, REMUS_REPL_HDR_LEN);
	put_header(h, type, flags, len, seq);
	assert_int_equal(remus_buf_append(&b, h, sizeof(h)), 0);
	remus_repl_decoder_init(&d);
	rc = remus_repl_decode(&d, &b, &m);
	snprintf(msg, size, "%s", remus_repl_decoder_error(&d));
	remus_buf_release(&b);
	return rc;
}

static void test_oversized_length_rejected_from_header(void **state)
{
	char msg[256];

	assert_int_equal(decode_header_only(REMUS_REPL_EPOCH_DATA, 0,
					    REMUS_REPL_PAYLOAD_MAX + 1, 1, msg, sizeof(msg)),
			 -EMSGSIZE);
	assert_non_null(strstr(msg, "exceeds its bound"));
	assert_int_equal(decode_header_only(REMUS_REPL_EPOCH_DATA, 0, UINT32_MAX, 1,
					    msg, sizeof(msg)), -EMSGSIZE);
	assert_int_equal(decode_header_only(REMUS_REPL_HELLO, 0, REMUS_REPL_HELLO_MAX + 1, 0,
					    msg, sizeof(msg)), -EMSGSIZE);
	assert_int_equal(decode_header_only(REMUS_REPL_CLOSE, 0,
					    2 + REMUS_REPL_REASON_MAX + 1, 0, msg, sizeof(msg)),
			 -EMSGSIZE);
	/* Fixed-size messages must have exactly their size. */
	assert_int_equal(decode_header_only(REMUS_REPL_HEARTBEAT, 0, 9, 1, msg, sizeof(msg)),
			 -EBADMSG);
	/* At the bound the decoder waits for the payload instead. */
	assert_int_equal(decode_header_only(REMUS_REPL_EPOCH_DATA, 0, REMUS_REPL_PAYLOAD_MAX,
					    1, msg, sizeof(msg)), 0);
}

static void test_unknown_type_flags_seq(void **state)
{
	char msg[256];

	assert_int_equal(decode_header_only(42, 0, 0, 0, msg, sizeof(msg)), -EBADMSG);
	assert_non_null(strstr(msg, "unknown message type 42"));
	assert_int_equal(decode_header_only(0, 0, 0, 0, msg, sizeof(msg)), -EBADMSG);
	assert_int_equal(decode_header_only(REMUS_REPL_COMMIT_ACK, 1, 0, 3, msg, sizeof(msg)),
			 -EBADMSG);
	assert_non_null(strstr(msg, "unknown flags"));
	assert_int_equal(decode_header_only(REMUS_REPL_HELLO_ACK, 0, 20, 3, msg, sizeof(msg)),
			 -EBADMSG);
}

static void test_malformed_payload(void **state)
{
	uint8_t f[REMUS_REPL_HDR_LEN + 8 + REMUS_REPL_TRAILER_LEN];
	struct remus_repl_decoder d;
	struct remus_repl_msg m;
	struct remus_buf b;

	/* A CLOSE whose text length points past its payload, checksummed. */
	put_header(f, REMUS_REPL_CLOSE, 0, 8, 0);
	remus_put_be16(f + REMUS_REPL_HDR_LEN, 100);
	memcpy(f + REMUS_REPL_HDR_LEN + 2, "abcdef", 6);
	remus_put_be64(f + REMUS_REPL_HDR_LEN + 8, XXH3_64bits(f, REMUS_REPL_HDR_LEN + 8));
	remus_buf_init(&b, 0);
	assert_int_equal(remus_buf_append(&b, f, sizeof(f)), 0);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_decode(&d, &b, &m), -EBADMSG);
	assert_non_null(strstr(remus_repl_decoder_error(&d), "malformed"));

	/* Control characters in a reason. */
	remus_put_be16(f + REMUS_REPL_HDR_LEN, 6);
	memcpy(f + REMUS_REPL_HDR_LEN + 2, "ab\ncd\0", 6);
	remus_put_be64(f + REMUS_REPL_HDR_LEN + 8, XXH3_64bits(f, REMUS_REPL_HDR_LEN + 8));
	remus_buf_reset(&b);
	assert_int_equal(remus_buf_append(&b, f, sizeof(f)), 0);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_decode(&d, &b, &m), -EBADMSG);
	remus_buf_release(&b);
}

static void test_hello_ack_unknown_flags(void **state)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_HELLO_ACK };
	struct remus_repl_decoder d;
	struct remus_buf b;

	/* RESUME is the only flag: anything else is a newer peer we do not
	 * understand, refused rather than half-obeyed. */
	remus_buf_init(&b, 0);
	m.u.ack.version = REMUS_REPL_VERSION;
	m.u.ack.flags = REMUS_REPL_ACK_RESUME | 0x2;
	assert_int_equal(remus_repl_encode(&b, &m), 0);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_decode(&d, &b, &m), -EBADMSG);
	remus_buf_reset(&b);
	m.u.ack.flags = REMUS_REPL_ACK_RESUME;
	m.u.ack.ram_sid = 2;
	m.u.ack.next_epoch = 41;
	assert_int_equal(remus_repl_encode(&b, &m), 0);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_decode(&d, &b, &m), 1);
	assert_int_equal(m.u.ack.flags, REMUS_REPL_ACK_RESUME);
	assert_int_equal(m.u.ack.ram_sid, 2);
	assert_true(m.u.ack.next_epoch == 41);
	remus_buf_release(&b);
}

static void test_decoder_error_is_sticky(void **state)
{
	struct remus_repl_decoder d;
	struct remus_repl_msg m;
	struct remus_buf b;

	remus_buf_init(&b, 0);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_put_heartbeat(&b, 1, 2), 0);
	remus_buf_data(&b)[0] ^= 1;
	assert_int_equal(remus_repl_decode(&d, &b, &m), -EBADMSG);
	remus_buf_reset(&b);
	assert_int_equal(remus_repl_put_heartbeat(&b, 1, 2), 0);
	assert_int_equal(remus_repl_decode(&d, &b, &m), -EBADMSG);
	remus_buf_release(&b);
}

static void test_encoder_bounds(void **state)
{
	static uint8_t big[REMUS_REPL_CHUNK_MAX + 1];
	struct remus_repl_msg m = { .type = REMUS_REPL_EPOCH_DATA, .seq = 1 };
	struct remus_buf b;

	remus_buf_init(&b, 0);
	assert_int_equal(remus_repl_put_heartbeat(&b, 1, 2), 0);
	m.u.chunk.p = big;
	m.u.chunk.len = sizeof(big);
	assert_int_equal(remus_repl_encode(&b, &m), -EMSGSIZE);
	m.type = 77;
	assert_int_equal(remus_repl_encode(&b, &m), -EINVAL);
	assert_int_equal(remus_repl_put_close(&b, "line\nbreak"), -EINVAL);
	/* Failed encodes leave the buffer as it was. */
	assert_int_equal(remus_buf_len(&b), REMUS_REPL_HDR_LEN + 8 + REMUS_REPL_TRAILER_LEN);
	remus_buf_release(&b);

	/* A full output buffer: -EMSGSIZE and unchanged. */
	remus_buf_init(&b, REMUS_REPL_HDR_LEN + 8 + REMUS_REPL_TRAILER_LEN - 1);
	assert_int_equal(remus_repl_put_heartbeat(&b, 1, 2), -EMSGSIZE);
	assert_int_equal(remus_buf_len(&b), 0);
	remus_buf_release(&b);
}

/* The largest HELLO and reason the bounds allow round-trip; one byte more
 * is refused by the encoder. */
static void test_field_bounds(void **state)
{
	static char name[REMUS_REPL_NAME_MAX + 1], text[REMUS_REPL_REASON_MAX + 1];
	struct remus_repl_msg m = { .type = REMUS_REPL_HELLO }, got;
	struct remus_repl_hello *h = &m.u.hello;
	struct remus_repl_decoder d;
	struct remus_buf b;

	memset(name, 'n', sizeof(name));
	memset(text, 't', sizeof(text));
	make_hello(h, 1ull << 40);
	h->vm_name.p = name;
	h->vm_name.len = REMUS_REPL_NAME_MAX;
	h->nblocks = REMUS_REPL_MAX_BLOCKS;
	for (unsigned i = 0; i < REMUS_REPL_MAX_BLOCKS; i++) {
		h->blocks[i].id.p = name;
		h->blocks[i].id.len = REMUS_REPL_NAME_MAX - i; /* distinct names */
		h->blocks[i].length = (uint64_t)i << 20;
	}
	remus_buf_init(&b, REMUS_REPL_FRAME_MAX);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_encode(&b, &m), 0);
	assert_int_equal(remus_repl_decode(&d, &b, &got), 1);
	assert_msg_eq(&m, &got);

	h->blocks[3].id.len = REMUS_REPL_NAME_MAX + 1;
	assert_int_equal(remus_repl_encode(&b, &m), -EINVAL);
	h->blocks[3].id.len = 0;
	assert_int_equal(remus_repl_encode(&b, &m), -EINVAL);
	h->blocks[3].id.len = 5;
	h->nblocks = REMUS_REPL_MAX_BLOCKS + 1;
	assert_int_equal(remus_repl_encode(&b, &m), -EINVAL);

	m.type = REMUS_REPL_CLOSE;
	m.u.reason.p = text;
	m.u.reason.len = REMUS_REPL_REASON_MAX;
	assert_int_equal(remus_repl_encode(&b, &m), 0);
	assert_int_equal(remus_repl_decode(&d, &b, &got), 1);
	assert_msg_eq(&m, &got);
	m.u.reason.len++;
	assert_int_equal(remus_repl_encode(&b, &m), -EINVAL);
	remus_buf_release(&b);
}

/* ---- handshake -------------------------------------------------------- */

static void test_hello_wrong_version_rejected(void **state)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_HELLO }, got;
	struct remus_repl_hello want;
	struct remus_repl_decoder d;
	struct remus_buf b;
	char reason[256];

	make_hello(&want, 256ull << 20);
	make_hello(&m.u.hello, 256ull << 20);
	m.u.hello.version = 2;
	remus_buf_init(&b, 0);
	remus_repl_decoder_init(&d);
	assert_int_equal(remus_repl_encode(&b, &m), 0);
	assert_int_equal(remus_repl_decode(&d, &b, &got), 1);
	assert_int_equal(got.u.hello.version, 2);
	assert_int_equal(remus_repl_hello_check(&want, &got.u.hello, reason, sizeof(reason)),
			 -EPROTONOSUPPORT);
	assert_string_equal(reason, "version 1 expected, got 2");
	remus_buf_release(&b);
}

static void test_hello_check(void **state)
{
	struct remus_repl_hello want, got;
	char reason[256];

	make_hello(&want, 256ull << 20);
	make_hello(&got, 256ull << 20);
	assert_int_equal(remus_repl_hello_check(&want, &got, reason, sizeof(reason)), 0);
	assert_string_equal(reason, "");

	/* Block order does not matter. */
	got.blocks[0] = want.blocks[2];
	got.blocks[2] = want.blocks[0];
	assert_int_equal(remus_repl_hello_check(&want, &got, reason, sizeof(reason)), 0);

	make_hello(&got, 512ull << 20);
	assert_int_equal(remus_repl_hello_check(&want, &got, reason, sizeof(reason)), -EPROTO);
	assert_string_equal(reason, "RAM layout differs: block pc.ram 256 MiB vs 512 MiB");

	make_hello(&got, 256ull << 20);
	got.nblocks = 2;
	assert_int_equal(remus_repl_hello_check(&want, &got, reason, sizeof(reason)), -EPROTO);
	assert_string_equal(reason, "RAM layout differs: block vga.vram missing");

	make_hello(&got, 256ull << 20);
	got.nblocks = 4;
	got.blocks[3].id = TXT("/rom@etc/acpi/tables");
	got.blocks[3].length = 128 << 10;
	assert_int_equal(remus_repl_hello_check(&want, &got, reason, sizeof(reason)), -EPROTO);
	assert_string_equal(reason, "RAM layout differs: unexpected block /rom@etc/acpi/tables");

	make_hello(&got, 256ull << 20);
	got.vm_name = TXT("web2");
	assert_int_equal(remus_repl_hello_check(&want, &got, reason, sizeof(reason)), -EPROTO);
	assert_true(strncmp(reason, "VM identity mismatch", 20) == 0);
	assert_non_null(strstr(reason, "\"web2\""));

	make_hello(&got, 256ull << 20);
	got.vm_uuid[15] ^= 1;
	assert_int_equal(remus_repl_hello_check(&want, &got, reason, sizeof(reason)), -EPROTO);
	assert_true(strncmp(reason, "VM identity mismatch", 20) == 0);

	make_hello(&got, 256ull << 20);
	got.page_size = 65536;
	assert_int_equal(remus_repl_hello_check(&want, &got, reason, sizeof(reason)), -EPROTO);
	assert_string_equal(reason, "page size differs: 4096 vs 65536");

	/* Same names but one repeated. */
	make_hello(&got, 256ull << 20);
	got.nblocks = 4;
	got.blocks[3] = got.blocks[1];
	assert_int_equal(remus_repl_hello_check(&want, &got, reason, sizeof(reason)), -EPROTO);
	assert_string_equal(reason, "RAM layout differs: 3 blocks vs 4");
}

/* ---- epoch assembler ---------------------------------------------------- */

static uint8_t ram[10000], dev[3000];

static int setup_data(void **state)
{
	for (size_t i = 0; i < sizeof(ram); i++)
		ram[i] = (uint8_t)(i * 7 + 3);
	for (size_t i = 0; i < sizeof(dev); i++)
		dev[i] = (uint8_t)(i * 13 + 1);
	return 0;
}

static struct remus_repl_msg chunk(enum remus_repl_type type, uint64_t epoch,
				   uint64_t off, const uint8_t *p, size_t len)
{
	struct remus_repl_msg m = { .type = type, .seq = epoch };

	m.u.chunk.offset = off;
	m.u.chunk.p = p + off;
	m.u.chunk.len = len;
	return m;
}

static struct remus_repl_msg commit(uint64_t epoch, size_t nram, size_t ndev)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_COMMIT_REQ, .seq = epoch };
	XXH3_state_t *s = XXH3_createState();

	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, ram, nram);
	XXH3_64bits_update(s, dev, ndev);
	m.u.commit.data_len = nram;
	m.u.commit.device_len = ndev;
	m.u.commit.hash = XXH3_64bits_digest(s);
	m.u.commit.disk_hash = XXH3_64bits(NULL, 0); /* no disk writes */
	XXH3_freeState(s);
	return m;
}

/* Feeds epoch @epoch as chunks of @step bytes; every feed must return 0.
 * Returns the matching COMMIT_REQ. */
static struct remus_repl_msg feed_chunks(struct remus_repl_assembler *a, uint64_t epoch,
					 size_t step)
{
	struct remus_repl_epoch out;
	struct remus_repl_msg m;

	remus_repl_epoch_init(&out);
	for (size_t off = 0; off < sizeof(ram); off += step) {
		m = chunk(REMUS_REPL_EPOCH_DATA, epoch, off, ram,
			  sizeof(ram) - off < step ? sizeof(ram) - off : step);
		assert_int_equal(remus_repl_assembler_feed(a, &m, &out), 0);
	}
	for (size_t off = 0; off < sizeof(dev); off += step) {
		m = chunk(REMUS_REPL_EPOCH_DEVICE, epoch, off, dev,
			  sizeof(dev) - off < step ? sizeof(dev) - off : step);
		assert_int_equal(remus_repl_assembler_feed(a, &m, &out), 0);
	}
	/* Nothing was released before the commit. */
	assert_int_equal(remus_spill_total(&out.data), 0);
	assert_int_equal(remus_spill_total(&out.device), 0);
	return commit(epoch, sizeof(ram), sizeof(dev));
}

/* @s holds exactly @n bytes of @p, read back in odd-sized pieces. */
static void assert_store(struct remus_spill *s, const uint8_t *p, size_t n)
{
	uint8_t buf[4097];
	size_t off = 0;
	ssize_t r;

	assert_int_equal(remus_spill_unread(s), n);
	while ((r = remus_spill_read(s, buf, sizeof(buf))) > 0) {
		assert_true(off + (size_t)r <= n);
		assert_memory_equal(buf, p + off, (size_t)r);
		off += (size_t)r;
	}
	assert_int_equal(r, 0);
	assert_int_equal(off, n);
}

static void test_epoch_released_only_on_valid_commit(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg c;

	remus_repl_assembler_init(&a, 5, 0);
	for (uint64_t epoch = 5; epoch < 8; epoch++) {
		c = feed_chunks(&a, epoch, 999);
		remus_repl_epoch_init(&out);
		assert_int_equal(remus_repl_assembler_feed(&a, &c, &out), 1);
		assert_int_equal(out.epoch, epoch);
		assert_store(&out.data, ram, sizeof(ram));
		assert_store(&out.device, dev, sizeof(dev));
		remus_repl_epoch_release(&out);
		assert_int_equal(a.next_epoch, epoch + 1);
	}
	/* An empty epoch (nothing changed) commits too. */
	c = commit(8, 0, 0);
	remus_repl_epoch_init(&out);
	assert_int_equal(remus_repl_assembler_feed(&a, &c, &out), 1);
	assert_int_equal(remus_spill_total(&out.data) + remus_spill_total(&out.device), 0);
	remus_repl_epoch_release(&out);
	remus_repl_assembler_release(&a);
	remus_repl_assembler_release(&a); /* idempotent */
}

/* Feeds @m, expects the sticky error @err with @needle in the message and
 * no epoch in @out. */
static void expect_reject(struct remus_repl_assembler *a, const struct remus_repl_msg *m,
			  int err, const char *needle)
{
	struct remus_repl_epoch out;
	struct remus_repl_msg again;

	remus_repl_epoch_init(&out);
	assert_int_equal(remus_repl_assembler_feed(a, m, &out), err);
	assert_int_equal(remus_spill_total(&out.data), 0);
	assert_int_equal(remus_spill_total(&out.device), 0);
	assert_non_null(strstr(remus_repl_assembler_error(a), needle));
	/* The partial epoch is gone (its memory and file with it), and a
	 * valid commit cannot revive it. */
	assert_int_equal(remus_spill_total(&a->data) + remus_spill_total(&a->device), 0);
	assert_int_equal(a->data.fd, -1);
	if (a->budget)
		assert_int_equal(a->budget->used, 0);
	again = commit(a->next_epoch, sizeof(ram), sizeof(dev));
	assert_int_equal(remus_repl_assembler_feed(a, &again, &out), err);
	assert_int_equal(remus_spill_total(&out.data), 0);
}

static void test_missing_frame_rejected(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg m;

	/* A hole is seen at the next chunk. */
	remus_repl_assembler_init(&a, 1, 0);
	m = chunk(REMUS_REPL_EPOCH_DATA, 1, 0, ram, 1000);
	remus_repl_epoch_init(&out);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	m = chunk(REMUS_REPL_EPOCH_DATA, 1, 2000, ram, 1000);
	expect_reject(&a, &m, -EBADMSG, "at offset 2000, expected 1000");
	remus_repl_assembler_release(&a);

	/* A missing last chunk is seen at the commit. */
	remus_repl_assembler_init(&a, 1, 0);
	m = chunk(REMUS_REPL_EPOCH_DATA, 1, 0, ram, sizeof(ram) - 10);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	m = commit(1, sizeof(ram), 0);
	expect_reject(&a, &m, -EBADMSG, "incomplete");
	remus_repl_assembler_release(&a);

	/* A repeated chunk too. */
	remus_repl_assembler_init(&a, 1, 0);
	m = chunk(REMUS_REPL_EPOCH_DATA, 1, 0, ram, 100);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	expect_reject(&a, &m, -EBADMSG, "missing or repeated");
	remus_repl_assembler_release(&a);
}

static void test_corrupted_epoch_hash_rejected(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_msg c;

	remus_repl_assembler_init(&a, 3, 0);
	c = feed_chunks(&a, 3, 4096);
	c.u.commit.hash ^= 1ull << 40;
	expect_reject(&a, &c, -EBADMSG, "end-to-end hash mismatch");
	remus_repl_assembler_release(&a);

	/* Same sizes, one byte of content differs in transit. */
	remus_repl_assembler_init(&a, 3, 0);
	ram[500] ^= 0xff;
	c = feed_chunks(&a, 3, 4096);
	ram[500] ^= 0xff;
	c = commit(3, sizeof(ram), sizeof(dev));
	expect_reject(&a, &c, -EBADMSG, "end-to-end hash mismatch");
	remus_repl_assembler_release(&a);
}

static void test_wrong_epoch_rejected(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg m;

	remus_repl_assembler_init(&a, 5, 0);
	m = chunk(REMUS_REPL_EPOCH_DATA, 7, 0, ram, 10);
	expect_reject(&a, &m, -EPROTO, "epoch 7 out of order: epoch 5 expected");
	remus_repl_assembler_release(&a);

	/* A chunk of the next epoch in the middle of this one. */
	remus_repl_assembler_init(&a, 5, 0);
	m = chunk(REMUS_REPL_EPOCH_DATA, 5, 0, ram, 10);
	remus_repl_epoch_init(&out);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	m = chunk(REMUS_REPL_EPOCH_DATA, 6, 10, ram, 10);
	expect_reject(&a, &m, -EPROTO, "out of order");
	remus_repl_assembler_release(&a);
}

static void test_data_after_commit_rejected(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg c, m;

	remus_repl_assembler_init(&a, 5, 0);
	c = feed_chunks(&a, 5, 4096);
	remus_repl_epoch_init(&out);
	assert_int_equal(remus_repl_assembler_feed(&a, &c, &out), 1);
	remus_repl_epoch_release(&out);
	m = chunk(REMUS_REPL_EPOCH_DATA, 5, sizeof(ram) - 1, ram, 1);
	expect_reject(&a, &m, -EPROTO, "epoch 5, which already committed");
	remus_repl_assembler_release(&a);

	/* A repeated COMMIT_REQ is the same thing. */
	remus_repl_assembler_init(&a, 5, 0);
	c = feed_chunks(&a, 5, 4096);
	assert_int_equal(remus_repl_assembler_feed(&a, &c, &out), 1);
	remus_repl_epoch_release(&out);
	expect_reject(&a, &c, -EPROTO, "already committed");
	remus_repl_assembler_release(&a);
}

static void test_data_after_device_rejected(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg m;

	remus_repl_assembler_init(&a, 0, 0);
	remus_repl_epoch_init(&out);
	m = chunk(REMUS_REPL_EPOCH_DEVICE, 0, 0, dev, 10);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	m = chunk(REMUS_REPL_EPOCH_DATA, 0, 0, ram, 10);
	expect_reject(&a, &m, -EPROTO, "EPOCH_DATA after EPOCH_DEVICE");
	remus_repl_assembler_release(&a);
}

static void test_discard_at_failover(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg c, m;

	remus_repl_assembler_init(&a, 9, 0);
	remus_repl_epoch_init(&out);
	m = chunk(REMUS_REPL_EPOCH_DATA, 9, 0, ram, 4000);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	m = chunk(REMUS_REPL_EPOCH_DATA, 9, 4000, ram, 1000);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	assert_int_equal(remus_repl_assembler_discard(&a), 5000);
	assert_int_equal(remus_repl_assembler_discard(&a), 0);
	assert_int_equal(a.next_epoch, 9);
	/* A late COMMIT_REQ for the discarded epoch releases nothing. */
	c = commit(9, 5000, 0);
	expect_reject(&a, &c, -EBADMSG, "incomplete");
	remus_repl_assembler_release(&a);
}

static void test_epoch_size_bound(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg m;

	remus_repl_assembler_init(&a, 1, 1000);
	remus_repl_epoch_init(&out);
	m = chunk(REMUS_REPL_EPOCH_DATA, 1, 0, ram, 600);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	m = chunk(REMUS_REPL_EPOCH_DEVICE, 1, 0, dev, 401);
	expect_reject(&a, &m, -EMSGSIZE, "exceed the epoch bound of 1000 bytes");
	remus_repl_assembler_release(&a);

	/* Exactly at the bound is fine. */
	remus_repl_assembler_init(&a, 1, 1000);
	m = chunk(REMUS_REPL_EPOCH_DATA, 1, 0, ram, 600);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	m = chunk(REMUS_REPL_EPOCH_DEVICE, 1, 0, dev, 400);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	remus_repl_assembler_release(&a);
}

static void test_non_epoch_message_not_sticky(void **state)
{
	struct remus_repl_msg hb = { .type = REMUS_REPL_HEARTBEAT, .seq = 1 }, c;
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;

	remus_repl_assembler_init(&a, 1, 0);
	assert_int_equal(remus_repl_assembler_feed(&a, &hb, &out), -EINVAL);
	c = feed_chunks(&a, 1, 3000);
	assert_int_equal(remus_repl_assembler_feed(&a, &hb, &out), -EINVAL);
	assert_int_equal(remus_repl_assembler_feed(&a, &c, &out), 1);
	remus_repl_epoch_release(&out);
	remus_repl_assembler_release(&a);
}

/* ---- the assembler's stores: spill files and pass-through ------------- */

#define BIG ((size_t)1 << 20)
static uint8_t big_data[BIG];

static struct remus_repl_msg commit_of(uint64_t epoch, const uint8_t *d, size_t nd,
				       const uint8_t *v, size_t nv)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_COMMIT_REQ, .seq = epoch };
	XXH3_state_t *s = XXH3_createState();

	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, d, nd);
	XXH3_64bits_update(s, v, nv);
	m.u.commit.data_len = nd;
	m.u.commit.device_len = nv;
	m.u.commit.hash = XXH3_64bits_digest(s);
	m.u.commit.disk_hash = XXH3_64bits(NULL, 0);
	XXH3_freeState(s);
	return m;
}

/* Feeds @nd bytes of @d as data and @nv of @v as device, @step at a time;
 * every feed must return 0. */
static void feed_epoch(struct remus_repl_assembler *a, uint64_t epoch, const uint8_t *d,
		       size_t nd, const uint8_t *v, size_t nv, size_t step)
{
	struct remus_repl_epoch out;
	struct remus_repl_msg m;
	size_t off, k;

	remus_repl_epoch_init(&out);
	for (off = 0; off < nd; off += k) {
		k = nd - off < step ? nd - off : step;
		m = chunk(REMUS_REPL_EPOCH_DATA, epoch, off, d, k);
		assert_int_equal(remus_repl_assembler_feed(a, &m, &out), 0);
	}
	for (off = 0; off < nv; off += k) {
		k = nv - off < step ? nv - off : step;
		m = chunk(REMUS_REPL_EPOCH_DEVICE, epoch, off, v, k);
		assert_int_equal(remus_repl_assembler_feed(a, &m, &out), 0);
	}
}

static void fill_big(void)
{
	for (size_t i = 0; i < BIG; i++)
		big_data[i] = (uint8_t)(i * 2654435761u >> 11);
}

/* An epoch bigger than the budget: memory up to it, the rest in a file,
 * verified at commit as a memory-only one, released whole. */
static void test_epoch_spills_to_file(void **state)
{
	char dir[] = "/tmp/remus-asm-test-XXXXXX";
	struct remus_spill_budget b = { .limit = 256 << 10 };
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg c;

	fill_big();
	assert_non_null(mkdtemp(dir));
	remus_repl_assembler_init(&a, 0, 0);
	remus_repl_assembler_store(&a, &b, dir);
	feed_epoch(&a, 0, big_data, BIG, dev, sizeof(dev), 65536 + 7);
	assert_true(b.peak <= b.limit);
	assert_true(remus_spill_spilled(&a.data) >= BIG - b.limit);
	/* the device part (after the data) spills too: the budget is spent */
	assert_int_equal(remus_spill_spilled(&a.device), sizeof(dev));
	c = commit_of(0, big_data, BIG, dev, sizeof(dev));
	remus_repl_epoch_init(&out);
	assert_int_equal(remus_repl_assembler_feed(&a, &c, &out), 1);
	assert_int_equal(out.epoch, 0);
	assert_true(remus_spill_spilled(&out.data) > 0);
	assert_store(&out.data, big_data, BIG);
	assert_store(&out.device, dev, sizeof(dev));
	remus_repl_epoch_release(&out);
	assert_int_equal(b.used, 0);

	/* One byte altered in the spilled part: the hash (taken as chunks
	 * arrive, before they are stored) catches it; memory and file go. */
	big_data[BIG - 100] ^= 1;
	feed_epoch(&a, 1, big_data, BIG, dev, sizeof(dev), 65536);
	big_data[BIG - 100] ^= 1;
	assert_true(b.used > 0);
	c = commit_of(1, big_data, BIG, dev, sizeof(dev));
	expect_reject(&a, &c, -EBADMSG, "end-to-end hash mismatch");
	assert_false(remus_repl_assembler_local_error(&a));
	remus_repl_assembler_release(&a);
	assert_int_equal(b.used, 0);
	assert_true(b.peak <= b.limit);
	assert_int_equal(rmdir(dir), 0); /* no file left behind */
}

/* A spill file that cannot be created is our failure, not the primary's. */
static void test_epoch_spill_error_is_local(void **state)
{
	struct remus_spill_budget b = { .limit = 128 << 10 };
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg m;
	int rc = 0;
	size_t off;

	fill_big();
	remus_repl_assembler_init(&a, 0, 0);
	remus_repl_assembler_store(&a, &b, "/nonexistent-remus-dir");
	remus_repl_epoch_init(&out);
	for (off = 0; off < BIG && rc == 0; off += 65536) {
		m = chunk(REMUS_REPL_EPOCH_DATA, 0, off, big_data, 65536);
		rc = remus_repl_assembler_feed(&a, &m, &out);
	}
	assert_int_equal(rc, -ENOENT);
	assert_true(remus_repl_assembler_local_error(&a));
	assert_non_null(strstr(remus_repl_assembler_error(&a), "spill file in /nonexistent"));
	assert_int_equal(b.used, 0);
	remus_repl_assembler_release(&a);
}

/* Pass-through: the data is the caller's as it is accepted, yet sizes and
 * the hash are checked at commit exactly as for a kept epoch. */
static void test_pass_through_data(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_epoch out;
	struct remus_repl_msg c, m;

	remus_repl_assembler_init(&a, 0, 0);
	remus_repl_assembler_pass_data(&a, true);
	feed_epoch(&a, 0, ram, sizeof(ram), dev, sizeof(dev), 999);
	assert_int_equal(remus_spill_total(&a.data), 0);
	assert_int_equal(a.data_len, sizeof(ram));
	c = commit(0, sizeof(ram), sizeof(dev));
	remus_repl_epoch_init(&out);
	assert_int_equal(remus_repl_assembler_feed(&a, &c, &out), 1);
	assert_int_equal(remus_spill_total(&out.data), 0);
	assert_store(&out.device, dev, sizeof(dev));
	remus_repl_epoch_release(&out);

	/* What passed through is still covered by the hash. */
	ram[7] ^= 0x10;
	feed_epoch(&a, 1, ram, sizeof(ram), dev, sizeof(dev), 999);
	ram[7] ^= 0x10;
	c = commit(1, sizeof(ram), sizeof(dev));
	expect_reject(&a, &c, -EBADMSG, "end-to-end hash mismatch");
	remus_repl_assembler_release(&a);

	/* The mode changes with the next epoch, never inside an open one. */
	remus_repl_assembler_init(&a, 0, 0);
	remus_repl_assembler_pass_data(&a, true);
	remus_repl_epoch_init(&out);
	m = chunk(REMUS_REPL_EPOCH_DATA, 0, 0, ram, 100);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	remus_repl_assembler_pass_data(&a, false);
	m = chunk(REMUS_REPL_EPOCH_DATA, 0, 100, ram, sizeof(ram) - 100);
	assert_int_equal(remus_repl_assembler_feed(&a, &m, &out), 0);
	c = commit(0, sizeof(ram), 0);
	assert_int_equal(remus_repl_assembler_feed(&a, &c, &out), 1);
	assert_int_equal(remus_spill_total(&out.data), 0);
	remus_repl_epoch_release(&out);
	feed_epoch(&a, 1, ram, sizeof(ram), dev, sizeof(dev), 4096);
	c = commit(1, sizeof(ram), sizeof(dev));
	assert_int_equal(remus_repl_assembler_feed(&a, &c, &out), 1);
	assert_store(&out.data, ram, sizeof(ram));
	remus_repl_epoch_release(&out);
	remus_repl_assembler_release(&a);
}

/* The primary's sender, the codec and the assembler together: what the
 * standby releases is byte for byte what the primary framed. */
static void test_tx_through_codec_to_assembler(void **state)
{
	struct remus_repl_assembler a;
	struct remus_repl_decoder d;
	struct remus_repl_epoch out;
	struct remus_repl_msg m;
	struct remus_repl_tx tx;
	struct remus_buf link;
	int rc, released = 0;

	remus_repl_tx_init(&tx);
	tx.chunk_max = 777;
	remus_buf_init(&link, 0);
	assert_int_equal(remus_repl_tx_data(&tx, &link, ram, 1), -EINVAL); /* not begun */
	for (uint64_t epoch = 1; epoch <= 3; epoch++) {
		assert_int_equal(remus_repl_tx_begin(&tx, epoch), 0);
		assert_int_equal(remus_repl_tx_data(&tx, &link, ram, 5000), 0);
		assert_int_equal(remus_repl_tx_data(&tx, &link, ram + 5000, sizeof(ram) - 5000), 0);
		assert_int_equal(remus_repl_tx_device(&tx, &link, dev, sizeof(dev)), 0);
		assert_int_equal(remus_repl_tx_data(&tx, &link, ram, 1), -EINVAL);
		assert_int_equal(remus_repl_tx_commit(&tx, &link), 0);
		assert_int_equal(remus_repl_tx_commit(&tx, &link), -EINVAL);
	}

	remus_repl_decoder_init(&d);
	remus_repl_assembler_init(&a, 1, 0);
	remus_repl_epoch_init(&out);
	while ((rc = remus_repl_decode(&d, &link, &m)) == 1) {
		rc = remus_repl_assembler_feed(&a, &m, &out);
		assert_true(rc >= 0);
		if (rc == 1) {
			released++;
			assert_int_equal(out.epoch, released);
			assert_store(&out.data, ram, sizeof(ram));
			assert_store(&out.device, dev, sizeof(dev));
			remus_repl_epoch_release(&out);
		}
	}
	assert_int_equal(rc, 0);
	assert_int_equal(released, 3);
	remus_repl_assembler_release(&a);
	remus_repl_tx_release(&tx);
	remus_buf_release(&link);
}

/* Disk writes ride with the epoch they were made in, may run ahead of the
 * epoch's migration (those after a COMMIT_REQ belong to the next epoch),
 * and the COMMIT_REQ covers them: a lost or altered one fails the epoch. */
static void test_disk_writes_commit_with_epoch(void **state)
{
	static uint8_t big[REMUS_REPL_DISK_DATA_MAX + 5000];
	struct remus_repl_assembler a;
	struct remus_repl_decoder d;
	struct remus_repl_epoch out;
	struct remus_repl_msg m;
	struct remus_repl_tx tx;
	struct remus_buf link;
	uint64_t want_epoch[8], ops = 0, bytes = 0;
	unsigned nframes = 0, drop, released;
	int rc;

	(void)state;
	memset(big, 0x5a, sizeof(big));
	for (drop = 0; drop <= 8; drop++) {
		remus_repl_tx_init(&tx);
		remus_buf_init(&link, 0);
		assert_int_equal(remus_repl_tx_session(&tx, 4), 0);
		assert_int_equal(remus_repl_tx_disk(&tx, &link, 0, REMUS_REPL_DISK_WRITE, 0, 0, big),
				 -EINVAL);
		assert_int_equal(remus_repl_tx_disk(&tx, &link, 0, 9, 0, 1, NULL), -EINVAL);
		/* Before the epoch's migration starts (resync, early writes). */
		assert_int_equal(remus_repl_tx_disk(&tx, &link, 0, REMUS_REPL_DISK_WRITE, 4096,
						    sizeof(big), big), 0); /* 2 frames */
		assert_int_equal(remus_repl_tx_begin(&tx, 4), 0);
		assert_int_equal(remus_repl_tx_data(&tx, &link, ram, 100), 0);
		assert_int_equal(remus_repl_tx_disk(&tx, &link, 1, REMUS_REPL_DISK_ZERO, 0, 1u << 20,
						    NULL), 0);
		assert_int_equal(remus_repl_tx_device(&tx, &link, dev, 10), 0);
		assert_int_equal(remus_repl_tx_commit(&tx, &link), 0);
		/* After the COMMIT_REQ, before the next _begin: epoch 5. */
		assert_int_equal(remus_repl_tx_disk(&tx, &link, 0, REMUS_REPL_DISK_TRIM, 8192, 512,
						    NULL), 0);
		assert_int_equal(remus_repl_tx_begin(&tx, 5), 0);
		assert_int_equal(remus_repl_tx_disk(&tx, &link, 0, REMUS_REPL_DISK_WRITE, 0, 10,
						    ram), 0);
		assert_int_equal(remus_repl_tx_commit(&tx, &link), 0);

		remus_repl_decoder_init(&d);
		remus_repl_assembler_init(&a, 4, 0);
		remus_repl_epoch_init(&out);
		nframes = released = 0;
		ops = bytes = 0;
		while ((rc = remus_repl_decode(&d, &link, &m)) == 1) {
			nframes++;
			if (m.type == REMUS_REPL_EPOCH_DISK) {
				/* frames: W W data Z device commit T W commit */
				if (nframes == drop)
					continue; /* lost on the way */
				want_epoch[ops < 8 ? ops : 7] = m.seq;
				ops++;
				if (m.u.disk.op == REMUS_REPL_DISK_WRITE)
					bytes += m.u.disk.length;
			}
			rc = remus_repl_assembler_feed(&a, &m, &out);
			if (rc == 1) {
				released++;
				remus_repl_epoch_release(&out);
			}
			if (rc < 0)
				break;
		}
		if (drop == 0 || drop == 3 || drop == 5 || drop == 6) {
			/* nothing (or a non-disk frame: skipped by the test) lost */
			assert_int_equal(released, 2);
			assert_int_equal(ops, 5);
			assert_int_equal(bytes, sizeof(big) + 10);
			assert_true(want_epoch[0] == 4 && want_epoch[1] == 4 && want_epoch[2] == 4 &&
				    want_epoch[3] == 5 && want_epoch[4] == 5);
		} else {
			/* frames 1, 2, 4 are epoch 4's; 7, 8 epoch 5's */
			assert_int_equal(rc, -EBADMSG);
			assert_int_equal(released, drop >= 7 ? 1 : 0);
			assert_non_null(strstr(remus_repl_assembler_error(&a), "disk"));
		}
		remus_repl_assembler_release(&a);
		remus_repl_tx_release(&tx);
		remus_buf_release(&link);
	}
}

static void test_tx_all_or_nothing(void **state)
{
	struct remus_repl_tx tx;
	struct remus_buf link;

	remus_repl_tx_init(&tx);
	tx.chunk_max = 1000;
	remus_buf_init(&link, 5000);
	assert_int_equal(remus_repl_tx_begin(&tx, 1), 0);
	assert_int_equal(remus_repl_tx_data(&tx, &link, ram, 3000), 0);
	assert_int_equal(remus_repl_tx_data(&tx, &link, ram, 3000), -EMSGSIZE);
	assert_int_equal(remus_buf_len(&link), 3000 + 3 * (REMUS_REPL_HDR_LEN + 8 +
							   REMUS_REPL_TRAILER_LEN));
	assert_int_equal(tx.data_len, 3000);
	remus_repl_tx_release(&tx);
	remus_buf_release(&link);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_message),
		cmocka_unit_test(test_shorthands),
		cmocka_unit_test(test_split_at_every_byte),
		cmocka_unit_test(test_bit_flip_anywhere_detected),
		cmocka_unit_test(test_payload_corruption_is_checksum_error),
		cmocka_unit_test(test_wrong_magic),
		cmocka_unit_test(test_oversized_length_rejected_from_header),
		cmocka_unit_test(test_unknown_type_flags_seq),
		cmocka_unit_test(test_malformed_payload),
		cmocka_unit_test(test_hello_ack_unknown_flags),
		cmocka_unit_test(test_decoder_error_is_sticky),
		cmocka_unit_test(test_encoder_bounds),
		cmocka_unit_test(test_field_bounds),
		cmocka_unit_test(test_hello_wrong_version_rejected),
		cmocka_unit_test(test_hello_check),
		cmocka_unit_test(test_epoch_released_only_on_valid_commit),
		cmocka_unit_test(test_missing_frame_rejected),
		cmocka_unit_test(test_corrupted_epoch_hash_rejected),
		cmocka_unit_test(test_wrong_epoch_rejected),
		cmocka_unit_test(test_data_after_commit_rejected),
		cmocka_unit_test(test_data_after_device_rejected),
		cmocka_unit_test(test_discard_at_failover),
		cmocka_unit_test(test_epoch_size_bound),
		cmocka_unit_test(test_non_epoch_message_not_sticky),
		cmocka_unit_test(test_epoch_spills_to_file),
		cmocka_unit_test(test_epoch_spill_error_is_local),
		cmocka_unit_test(test_pass_through_data),
		cmocka_unit_test(test_tx_through_codec_to_assembler),
		cmocka_unit_test(test_tx_all_or_nothing),
		cmocka_unit_test(test_disk_writes_commit_with_epoch),
	};

	return cmocka_run_group_tests(tests, setup_data, NULL);
}
