// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for journal recovery: the journal file is parsed after
 * crashes, so any contents must be survivable.  The input (after a control
 * byte, harness.h) becomes the journal file; two small images are reset to
 * a known pattern, and the journal is opened, which recovers.  Besides "no
 * crash, no leak, no UB" the harness checks properties a fuzzer can break:
 *  - the images change only if recovery reports a replayed epoch (an
 *    error, or "nothing to replay", leaves them byte for byte intact);
 *  - a successful open leaves the file holding just its header, and a
 *    second open replays nothing and changes nothing;
 *  - the opened journal works: an op committed after recovery is in the
 *    image.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/log.h"
#include "common/wire.h"
#include "diskrepl/journal.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char jpath[128];
static struct remus_image *images[FJ_NIMAGES];
static uint8_t *pattern[FJ_NIMAGES];
static uint8_t *scratch;

static void cleanup(void)
{
	char p[160];

	for (int i = 0; i < FJ_NIMAGES; i++) {
		remus_image_free(images[i]);
		snprintf(p, sizeof(p), "%s/img%d", dir, i);
		unlink(p);
	}
	unlink(jpath);
	rmdir(dir);
}

static void init(void)
{
	char p[160];

	snprintf(dir, sizeof(dir), "%s/fuzz-journal-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(jpath, sizeof(jpath), "%s/journal", dir);
	scratch = malloc(64 << 10);
	for (int i = 0; i < FJ_NIMAGES; i++) {
		snprintf(p, sizeof(p), "%s/img%d", dir, i);
		if (remus_image_open(p, true, fj_image_size[i], &images[i]) < 0)
			abort();
		pattern[i] = malloc(fj_image_size[i]);
		for (uint64_t k = 0; k < fj_image_size[i]; k++)
			pattern[i][k] = (uint8_t)(k * 7 + (uint64_t)i * 13 + 1);
	}
	/* Recovery logs what it drops and refuses; millions of lines help
	 * no one. */
	remus_log_set_stream(fopen("/dev/null", "w"));
	atexit(cleanup);
}

static bool images_are(uint8_t *const want[FJ_NIMAGES])
{
	for (int i = 0; i < FJ_NIMAGES; i++) {
		if (remus_image_read(images[i], 0, (uint32_t)fj_image_size[i], scratch) != 0)
			abort();
		if (memcmp(scratch, want[i], fj_image_size[i]) != 0)
			return false;
	}
	return true;
}

/* Recomputes what the format checks, where the bytes can be delimited. */
static void fix_checksums(uint8_t *p, size_t size)
{
	uint64_t pos = REMUS_JOURNAL_HDR_LEN, nrec = 0, bytes = 0, datalen;
	XXH3_state_t *eh = XXH3_createState(), *rh = XXH3_createState();
	uint32_t tag;

	if (!eh || !rh)
		abort();
	if (size >= REMUS_JOURNAL_HDR_LEN) {
		memset(p, 0, REMUS_JOURNAL_HDR_LEN);
		memcpy(p, REMUS_JOURNAL_MAGIC, 8);
		remus_put_be32(p + 8, REMUS_JOURNAL_VERSION);
		remus_put_be32(p + 12, REMUS_JOURNAL_HDR_LEN);
		remus_put_be64(p + 56, XXH3_64bits(p, 56));
	}
	XXH3_64bits_reset(eh);
	while (size >= REMUS_JOURNAL_ENTRY_LEN && pos <= size - REMUS_JOURNAL_ENTRY_LEN) {
		uint8_t *h = p + pos;

		tag = remus_get_be32(h);
		datalen = 0;
		if (tag == REMUS_JOURNAL_TAG_REC && remus_get_be32(h + 40) == REMUS_REPL_DISK_WRITE)
			datalen = remus_get_be64(h + 32);
		if (datalen > size - pos - REMUS_JOURNAL_ENTRY_LEN)
			break;
		if (tag == REMUS_JOURNAL_TAG_COMMIT) {
			remus_put_be64(h + 24, nrec);
			remus_put_be64(h + 32, bytes);
			remus_put_be64(h + REMUS_JOURNAL_OFF_EHASH, XXH3_64bits_digest(eh));
		}
		XXH3_64bits_reset(rh);
		XXH3_64bits_update(rh, h, REMUS_JOURNAL_OFF_CHECK);
		XXH3_64bits_update(rh, h + REMUS_JOURNAL_ENTRY_LEN, datalen);
		remus_put_be64(h + REMUS_JOURNAL_OFF_CHECK, XXH3_64bits_digest(rh));
		if (tag == REMUS_JOURNAL_TAG_REC) {
			XXH3_64bits_update(eh, h, REMUS_JOURNAL_ENTRY_LEN + datalen);
			nrec++;
			bytes += REMUS_JOURNAL_ENTRY_LEN + datalen;
		} else if (tag == REMUS_JOURNAL_TAG_COMMIT) {
			XXH3_64bits_reset(eh);
			nrec = bytes = 0;
		} else if (tag != REMUS_JOURNAL_TAG_APPLIED) {
			break;
		}
		pos += REMUS_JOURNAL_ENTRY_LEN + datalen;
	}
	XXH3_freeState(eh);
	XXH3_freeState(rh);
}

static void write_journal(const uint8_t *p, size_t n)
{
	int fd = open(jpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || (n > 0 && write(fd, p, n) != (ssize_t)n))
		abort();
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *after[FJ_NIMAGES] = { NULL, NULL }, *copy = NULL, probe[16];
	struct remus_journal *j = NULL;
	uint64_t rec = 0, rec2 = 0, off;
	struct stat st;
	int rc;

	if (!scratch)
		init();
	if (size < 1)
		return 0;
	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (data[0] & FJ_FIX_CHECKSUMS)
		fix_checksums(copy, size - 1);
	write_journal(copy, size - 1);
	for (int i = 0; i < FJ_NIMAGES; i++)
		if (remus_image_write(images[i], 0, (uint32_t)fj_image_size[i], pattern[i]) != 0)
			abort();

	rc = remus_journal_open(jpath, images, FJ_NIMAGES, &j, &rec);
	if (rc < 0) {
		if (rc != -EINVAL && rc != -EPROTONOSUPPORT)
			abort(); /* nothing else can go wrong with a static file */
		if (!images_are(pattern))
			abort(); /* refused, yet the images changed */
		goto out;
	}
	if (rec == UINT64_MAX && !images_are(pattern))
		abort(); /* nothing replayed, yet the images changed */
	if (stat(jpath, &st) != 0 || st.st_size != REMUS_JOURNAL_HDR_LEN)
		abort();
	/* Snapshot what recovery produced; a second open must keep it. */
	for (int i = 0; i < FJ_NIMAGES; i++) {
		after[i] = malloc(fj_image_size[i]);
		if (!after[i] ||
		    remus_image_read(images[i], 0, (uint32_t)fj_image_size[i], after[i]) != 0)
			abort();
	}
	remus_journal_free(j);
	j = NULL;
	if (remus_journal_open(jpath, images, FJ_NIMAGES, &j, &rec2) != 0 ||
	    rec2 != UINT64_MAX || !images_are(after))
		abort();
	/* And it still journals: one write, committed, is in the image. */
	off = size % (fj_image_size[1] - sizeof(probe));
	memset(probe, 0x5a, sizeof(probe));
	memcpy(after[1] + off, probe, sizeof(probe));
	if (remus_journal_append(j, 1, 1, REMUS_REPL_DISK_WRITE, off, sizeof(probe), probe) != 0 ||
	    remus_journal_commit(j, 1) != 0 || !images_are(after))
		abort();
out:
	remus_journal_free(j);
	for (int i = 0; i < FJ_NIMAGES; i++)
		free(after[i]);
	free(copy);
	return 0;
}
