/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by fuzz_tls.c and gen_corpus.c: the fixed pre-shared key both
 * use, written once to a private temporary file.
 */
#ifndef REMUS_FUZZ_TLS_HARNESS_H
#define REMUS_FUZZ_TLS_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls/tls.h"

#define FUZZ_TLS_KEY "remus:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"

/* Credentials of @role for FUZZ_TLS_KEY, or NULL. */
static inline struct remus_tls_creds *fuzz_tls_creds(enum remus_tls_role role)
{
	char path[] = "/tmp/remus-fuzz-tls.XXXXXX";
	struct remus_tls_creds *c = NULL;
	int fd = mkstemp(path);

	if (fd < 0)
		return NULL;
	if (write(fd, FUZZ_TLS_KEY, strlen(FUZZ_TLS_KEY)) != (ssize_t)strlen(FUZZ_TLS_KEY) ||
	    remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = path }, role, &c,
				NULL, 0) < 0)
		c = NULL;
	close(fd);
	unlink(path);
	return c;
}

#endif
