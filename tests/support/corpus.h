/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the fuzz targets' corpus generators (tests/fuzz/<parser>/gen_corpus.c)
 * share: a seed file is the target's control byte followed by the input.
 * Header-only, so a generator needs no library from tests/.
 */
#ifndef REMUS_TESTS_SUPPORT_CORPUS_H
#define REMUS_TESTS_SUPPORT_CORPUS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"

/*
 * Writes the file @dir/@name (replacing it): the control byte @ctl, then
 * @n bytes of @p (borrowed; NULL when @n is 0).  Returns 0, or -errno with
 * the file possibly half written.
 */
static inline int remus_test_corpus_write(const char *dir, const char *name, uint8_t ctl,
					  const void *p, size_t n)
{
	char path[4096];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return -errno;
	if (fwrite(&ctl, 1, 1, f) != 1 || (n > 0 && fwrite(p, 1, n, f) != n))
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* The same with the contents of @b, which is then emptied (also on error). */
static inline int remus_test_corpus_write_buf(const char *dir, const char *name, uint8_t ctl,
					      struct remus_buf *b)
{
	int rc = remus_test_corpus_write(dir, name, ctl, remus_buf_data(b), remus_buf_len(b));

	remus_buf_reset(b);
	return rc;
}

#endif
