// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Writes the seed corpus of fuzz_repl into the directory named on the
 * command line: small valid conversations (handshake, whole epochs with
 * heartbeats and acks, a reject and a close) and one with a corrupted
 * end-to-end hash, each prefixed with the fuzz target's control byte.  The
 * outputs are committed; rerun after a protocol change:
 *     build/tests/fuzz/repl/repl_gen_corpus tests/fuzz/repl/corpus
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl/repl.h"
#include "support/corpus.h"

#define TXT(s) ((struct remus_repl_text){ .p = (s), .len = sizeof(s) - 1 })

static const char *dir;

static int save(const char *name, uint8_t split, struct remus_buf *b)
{
	return remus_test_corpus_write_buf(dir, name, split, b);
}

static int put_hello(struct remus_buf *b)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_HELLO };
	struct remus_repl_hello *h = &m.u.hello;

	h->version = REMUS_REPL_VERSION;
	h->vm_name = TXT("web1");
	memcpy(h->vm_uuid, "\x6b\x1d\x2c\x3e\x4f\x50\x41\x82\x93\xa4\xb5\xc6\xd7\xe8\xf9\x0a", 16);
	h->page_size = 4096;
	h->nblocks = 2;
	h->blocks[0].id = TXT("pc.ram");
	h->blocks[0].length = 256ull << 20;
	h->blocks[1].id = TXT("vga.vram");
	h->blocks[1].length = 16ull << 20;
	return remus_repl_encode(b, &m);
}

static int put_epoch(struct remus_repl_tx *tx, struct remus_buf *b, uint64_t epoch)
{
	static const char ram[] = "\x04\x00\x00\x00\x00\x00\x10\x08 RAM page bytes, "
				  "then more RAM page bytes of the standby stream";
	static const char dev[] = "\x04\x00\x00\x00\x02 device state";
	int rc;

	if ((rc = remus_repl_tx_begin(tx, epoch)) < 0 ||
	    (rc = remus_repl_tx_data(tx, b, ram, sizeof(ram) - 1)) < 0 ||
	    (rc = remus_repl_tx_device(tx, b, dev, sizeof(dev) - 1)) < 0)
		return rc;
	return remus_repl_tx_commit(tx, b);
}

int main(int argc, char **argv)
{
	struct remus_repl_msg ack = { .type = REMUS_REPL_HELLO_ACK };
	struct remus_repl_tx tx;
	struct remus_buf b;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	remus_buf_init(&b, 0);
	remus_repl_tx_init(&tx);
	tx.chunk_max = 24;
	ack.u.ack.version = REMUS_REPL_VERSION;

	rc = put_hello(&b);
	rc = rc ? rc : remus_repl_encode(&b, &ack);
	rc = rc ? rc : save("handshake", 0, &b);

	rc = rc ? rc : put_epoch(&tx, &b, 1);
	rc = rc ? rc : remus_repl_put_commit_ack(&b, 1);
	rc = rc ? rc : remus_repl_put_heartbeat(&b, 1, 5000);
	rc = rc ? rc : put_epoch(&tx, &b, 2);
	rc = rc ? rc : save("two-epochs", 0x80, &b);

	rc = rc ? rc : put_epoch(&tx, &b, 1);
	rc = rc ? rc : save("epoch-split-7", 7, &b);

	rc = rc ? rc : remus_repl_put_reject(&b, "RAM layout differs: block pc.ram 256 MiB vs 512 MiB");
	rc = rc ? rc : remus_repl_put_close(&b, "handshake rejected");
	rc = rc ? rc : save("reject-close", 1, &b);

	rc = rc ? rc : put_epoch(&tx, &b, 1);
	if (rc == 0) /* the COMMIT_REQ's hash is the frame's last payload field */
		remus_buf_data(&b)[remus_buf_len(&b) - REMUS_REPL_TRAILER_LEN - 1] ^= 1;
	rc = rc ? rc : save("bad-checksum", 0, &b);

	/* Frames intact, but the epoch's end-to-end hash is wrong. */
	rc = rc ? rc : put_epoch(&tx, &b, 1);
	if (rc == 0) {
		struct remus_repl_msg c = { .type = REMUS_REPL_COMMIT_REQ, .seq = 2 };

		c.u.commit.data_len = tx.data_len;
		c.u.commit.device_len = tx.device_len;
		c.u.commit.hash = 0x0123456789abcdefull;
		rc = remus_repl_tx_begin(&tx, 2);
		rc = rc ? rc : remus_repl_tx_data(&tx, &b, "changed", 7);
		c.u.commit.data_len = tx.data_len;
		c.u.commit.device_len = tx.device_len;
		rc = rc ? rc : remus_repl_encode(&b, &c);
	}
	rc = rc ? rc : save("bad-epoch-hash", 0x80 | 5, &b);

	/* Disks: the standby's hashes, then an epoch with writes around it. */
	if (rc == 0) {
		static const uint8_t hashes[3 * 16] = { 1, 2, 3 };
		struct remus_repl_msg h = { .type = REMUS_REPL_DISK_HASHES };

		h.u.hashes.name.p = "vda";
		h.u.hashes.name.len = 3;
		h.u.hashes.size = 3 * 65536;
		h.u.hashes.extent_size = 65536;
		h.u.hashes.count = 3;
		h.u.hashes.p = hashes;
		rc = remus_repl_encode(&b, &h);
		h.type = REMUS_REPL_DISK_HASHES_END;
		h.u.ndisks = 1;
		rc = rc ? rc : remus_repl_encode(&b, &h);
	}
	rc = rc ? rc : remus_repl_tx_session(&tx, 1);
	rc = rc ? rc : remus_repl_tx_disk(&tx, &b, 0, REMUS_REPL_DISK_WRITE, 4096, 7, "written");
	rc = rc ? rc : remus_repl_tx_disk(&tx, &b, 0, REMUS_REPL_DISK_ZERO, 0, 4096, NULL);
	rc = rc ? rc : put_epoch(&tx, &b, 1);
	rc = rc ? rc : remus_repl_tx_disk(&tx, &b, 0, REMUS_REPL_DISK_TRIM, 8192, 512, NULL);
	rc = rc ? rc : save("disk-epoch", 0x80 | 3, &b);

	remus_repl_tx_release(&tx);
	remus_buf_release(&b);
	if (rc < 0) {
		fprintf(stderr, "repl_gen_corpus: %s: %s\n", dir, strerror(-rc));
		return 1;
	}
	return 0;
}
