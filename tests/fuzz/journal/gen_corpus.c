// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Writes the seed corpus of fuzz_journal into the directory named on the
 * command line: journals made by the journal itself (a committed epoch of
 * writes, zeros and trims on both images, the same applied, the same cut
 * before its commit), plus a committed epoch whose record points past its
 * image (the harness fixes its checksums), a bare header and a foreign
 * file.  Each is prefixed with the harness's control byte.  The outputs
 * are committed; rerun after a format change:
 *     build/tests/fuzz/journal/journal_gen_corpus tests/fuzz/journal/corpus
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/wire.h"
#include "diskrepl/journal.h"
#include "harness.h"
#include "support/corpus.h"

static const char *outdir;
static char tmp[64], jpath[128];
static struct remus_image *images[FJ_NIMAGES];

static int save(const char *name, uint8_t ctl, const uint8_t *p, size_t n)
{
	return remus_test_corpus_write(outdir, name, ctl, p, n);
}

/* Reads the journal file into *@p (malloc'd) and *@n. */
static int slurp(uint8_t **p, size_t *n)
{
	struct stat st;
	FILE *f = fopen(jpath, "rb");
	int rc = 0;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) != 0 || !(*p = malloc((size_t)st.st_size + 1)) ||
	    fread(*p, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		rc = -EIO;
	*n = (size_t)st.st_size;
	fclose(f);
	return rc;
}

/* One epoch of every op kind over both images. */
static int fill_epoch(struct remus_journal *j, uint64_t epoch)
{
	uint8_t data[300];
	int rc;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + epoch);
	if ((rc = remus_journal_append(j, epoch, 0, REMUS_REPL_DISK_WRITE, 100, 300, data)) < 0 ||
	    (rc = remus_journal_append(j, epoch, 0, REMUS_REPL_DISK_WRITE, 200, 10, data + 7)) < 0 ||
	    (rc = remus_journal_append(j, epoch, 1, REMUS_REPL_DISK_ZERO, 4000, 99, NULL)) < 0 ||
	    (rc = remus_journal_append(j, epoch, 0, REMUS_REPL_DISK_TRIM, 4096, 8192, NULL)) < 0 ||
	    (rc = remus_journal_append(j, epoch, 1, REMUS_REPL_DISK_WRITE, 0, 64, data)) < 0)
		return rc;
	return 0;
}

static int make(bool apply, uint8_t **p, size_t *n)
{
	struct remus_journal *j = NULL;
	uint64_t rec;
	int rc;

	unlink(jpath);
	rc = remus_journal_open(jpath, images, FJ_NIMAGES, &j, &rec);
	if (rc < 0)
		return rc;
	rc = fill_epoch(j, 7);
	if (rc == 0)
		rc = apply ? remus_journal_commit(j, 7) : remus_journal_commit_durable(j, 7);
	remus_journal_free(j);
	return rc < 0 ? rc : slurp(p, n);
}

int main(int argc, char **argv)
{
	uint8_t *p = NULL;
	char img[160];
	size_t n = 0;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	snprintf(tmp, sizeof(tmp), "/tmp/journal-corpus-XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	snprintf(jpath, sizeof(jpath), "%s/journal", tmp);
	for (int i = 0; i < FJ_NIMAGES && rc == 0; i++) {
		snprintf(img, sizeof(img), "%s/img%d", tmp, i);
		rc = remus_image_open(img, true, fj_image_size[i], &images[i]);
	}

	rc = rc ? rc : make(false, &p, &n);
	rc = rc ? rc : save("committed", 0, p, n);
	rc = rc ? rc : save("committed-fix", FJ_FIX_CHECKSUMS, p, n);
	/* Cut before the commit record: uncommitted. */
	rc = rc ? rc : save("uncommitted", FJ_FIX_CHECKSUMS, p, n - REMUS_JOURNAL_ENTRY_LEN);
	/* The first record's offset far past its image. */
	if (rc == 0) {
		remus_put_be64(p + REMUS_JOURNAL_HDR_LEN + 24, 1ull << 40);
		rc = save("bad-target", FJ_FIX_CHECKSUMS, p, n);
	}
	rc = rc ? rc : save("header-only", 0, p, REMUS_JOURNAL_HDR_LEN);
	free(p);
	p = NULL;
	rc = rc ? rc : make(true, &p, &n);
	rc = rc ? rc : save("applied", 0, p, n);
	rc = rc ? rc : save("foreign", 0, (const uint8_t *)"#!/bin/sh\necho not a journal\n", 30);

	free(p);
	for (int i = 0; i < FJ_NIMAGES; i++) {
		remus_image_free(images[i]);
		snprintf(img, sizeof(img), "%s/img%d", tmp, i);
		unlink(img);
	}
	unlink(jpath);
	rmdir(tmp);
	if (rc < 0) {
		fprintf(stderr, "journal_gen_corpus: %s: %s\n", outdir, strerror(-rc));
		return 1;
	}
	return 0;
}
