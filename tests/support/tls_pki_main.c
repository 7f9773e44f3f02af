// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tls_pki DIR: writes the test PKI (tests/support/tls_pki.c) under the
 * existing directory DIR, for the security scripts and benches.
 */
#include <stdio.h>
#include <string.h>

#include "support/tls_pki.h"

int main(int argc, char **argv)
{
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: tls_pki DIR\n");
		return 2;
	}
	rc = remus_test_pki_make(argv[1]);
	if (rc < 0) {
		fprintf(stderr, "tls_pki: cannot make the test PKI under %s: %s\n", argv[1],
			strerror(-rc));
		return 1;
	}
	return 0;
}
