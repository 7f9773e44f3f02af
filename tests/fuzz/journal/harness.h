/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What fuzz_journal and its corpus generator agree on: the images the
 * journal is opened with, and the control byte in front of every input.
 */
#ifndef REMUS_TESTS_FUZZ_JOURNAL_HARNESS_H
#define REMUS_TESTS_FUZZ_JOURNAL_HARNESS_H

#include <stdint.h>

#define FJ_NIMAGES 2
static const uint64_t fj_image_size[FJ_NIMAGES] = { 64 << 10, 4096 + 3 };

/* Control byte: with this bit the harness recomputes the file header and
 * every checksum, count and epoch hash it can delimit, so that mutations
 * reach replay instead of dying at a checksum. */
#define FJ_FIX_CHECKSUMS 0x80

#endif
