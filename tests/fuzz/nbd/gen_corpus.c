// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Writes the seed corpus of fuzz_nbd into the directory named on the
 * command line: the conversations QEMU has (extended headers and
 * structured replies refused, GO with a block size request, every
 * command), EXPORT_NAME, LIST/INFO/ABORT, a read-only export, failing
 * ops, and malformed input, each prefixed with the target's control byte.
 * The outputs are committed; rerun after a protocol change:
 *     build/tests/fuzz/nbd/nbd_gen_corpus tests/fuzz/nbd/corpus
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/corpus.h"
#include "support/nbd_wire.h"

static const char *dir;

static int save(const char *name, uint8_t ctrl, struct remus_buf *b)
{
	return remus_test_corpus_write_buf(dir, name, ctrl, b);
}

static void commands(struct remus_buf *b)
{
	uint8_t pat[600];

	memset(pat, 0xa5, sizeof(pat));
	nbdw_req(b, 0, REMUS_NBD_CMD_WRITE, 1, 512, sizeof(pat), pat);
	nbdw_req(b, REMUS_NBD_CMD_FLAG_FUA, REMUS_NBD_CMD_WRITE, 2, 0, 4, "fua!");
	nbdw_req(b, 0, REMUS_NBD_CMD_READ, 3, 500, 700, NULL);
	nbdw_req(b, REMUS_NBD_CMD_FLAG_NO_HOLE, REMUS_NBD_CMD_WRITE_ZEROES, 4, 600, 100, NULL);
	nbdw_req(b, REMUS_NBD_CMD_FLAG_FUA, REMUS_NBD_CMD_WRITE_ZEROES, 5, 0, 2, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_TRIM, 6, 1024, 4096, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_FLUSH, 7, 0, 0, NULL);
}

static void refused(struct remus_buf *b)
{
	nbdw_req(b, 0, REMUS_NBD_CMD_READ, 10, 65535, 2, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_WRITE, 11, 65535, 2, "xx");
	nbdw_req(b, 0, REMUS_NBD_CMD_TRIM, 12, UINT64_MAX, 1, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_CACHE, 13, 0, 512, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_BLOCK_STATUS, 14, 0, 512, NULL);
	nbdw_req(b, 1u << 2, REMUS_NBD_CMD_READ, 15, 0, 512, NULL);
	nbdw_req(b, REMUS_NBD_CMD_FLAG_NO_HOLE, REMUS_NBD_CMD_WRITE, 16, 0, 1, "n");
	nbdw_req(b, 0, 200, 17, 0, 0, NULL);
	nbdw_req(b, 0, REMUS_NBD_CMD_READ, 18, 0, REMUS_NBD_MAX_PAYLOAD + 1, NULL);
}

int main(int argc, char **argv)
{
	static const uint16_t bs = REMUS_NBD_INFO_BLOCK_SIZE;
	static const uint16_t all[] = { REMUS_NBD_INFO_NAME, REMUS_NBD_INFO_DESCRIPTION,
					REMUS_NBD_INFO_BLOCK_SIZE, 9 };
	struct remus_buf b;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	remus_buf_init(&b, 0);

	/* What QEMU 10's block driver sends, then every command. */
	nbdw_flags(&b, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	nbdw_opt(&b, REMUS_NBD_OPT_EXTENDED_HEADERS, NULL, 0);
	nbdw_opt(&b, REMUS_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	nbdw_go(&b, REMUS_NBD_OPT_GO, "disk", &bs, 1);
	commands(&b);
	nbdw_req(&b, 0, REMUS_NBD_CMD_DISC, 8, 0, 0, NULL);
	rc |= save("qemu-session", 0x00, &b);

	nbdw_flags(&b, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_opt(&b, REMUS_NBD_OPT_EXPORT_NAME, NULL, 0);
	commands(&b);
	rc |= save("export-name-default", 0x07, &b);

	nbdw_flags(&b, REMUS_NBD_FLAG_FIXED_NEWSTYLE | REMUS_NBD_FLAG_NO_ZEROES);
	nbdw_opt(&b, REMUS_NBD_OPT_LIST, NULL, 0);
	nbdw_go(&b, REMUS_NBD_OPT_INFO, "disk", all, 4);
	nbdw_go(&b, REMUS_NBD_OPT_GO, "nope", NULL, 0);
	nbdw_opt(&b, REMUS_NBD_OPT_SET_META_CONTEXT, "\0\0\0\4disk\0\0\0\0", 12);
	nbdw_opt(&b, REMUS_NBD_OPT_STARTTLS, NULL, 0);
	nbdw_opt(&b, REMUS_NBD_OPT_ABORT, NULL, 0);
	rc |= save("list-info-abort", 0x03, &b);

	nbdw_flags(&b, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_go(&b, REMUS_NBD_OPT_GO, "ro", all, 3);
	commands(&b);
	rc |= save("read-only", 0x10, &b);

	commands(&b);
	refused(&b);
	nbdw_req(&b, 0, REMUS_NBD_CMD_DISC, 19, 0, 0, NULL);
	rc |= save("requests", 0x85, &b);

	commands(&b);
	rc |= save("failing-ops", 0xc1, &b);

	nbdw_req(&b, 0, REMUS_NBD_CMD_READ, 1, 0, 16, NULL);
	remus_buf_append(&b, "\x25\x60\x95\x12" "0123456789abcdefghijklmn", 28);
	rc |= save("bad-request-magic", 0x80, &b);

	nbdw_req(&b, 0, REMUS_NBD_CMD_WRITE, 1, 0, REMUS_NBD_MAX_PAYLOAD + 1, NULL);
	rc |= save("oversized-write", 0x80, &b);

	nbdw_flags(&b, REMUS_NBD_FLAG_FIXED_NEWSTYLE);
	nbdw_opt(&b, REMUS_NBD_OPT_GO, "\0\0\0\x09", 4);
	nbdw_opt(&b, 42, "junk", 4);
	nbdw_opt(&b, REMUS_NBD_OPT_EXPORT_NAME, "nope", 4);
	rc |= save("options-malformed", 0x02, &b);

	remus_buf_release(&b);
	if (rc) {
		fprintf(stderr, "%s: cannot write the corpus into %s\n", argv[0], dir);
		return 1;
	}
	return 0;
}
