// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tls_pki DIR: writes the test PKI (tests/support/tls_pki.c) under the
 * existing directory DIR, for the security scripts and benches.
 * tls_pki --hosts DIR CA_NAME NAME[=IPV4]...: a new CA and certificates
 * for each lab host NAME in DIR/NAME (the libvirt lab's x509 mode:
 * tests/lib/hosts.sh, chaos/remus-chaos --tls x509).
 */
#include <stdio.h>
#include <string.h>

#include "support/tls_pki.h"

int main(int argc, char **argv)
{
	int rc;

	if (argc >= 5 && strcmp(argv[1], "--hosts") == 0) {
		rc = remus_test_pki_make_hosts(argv[2], argv[3], argv + 4, argc - 4);
		if (rc < 0) {
			fprintf(stderr, "tls_pki: cannot make the certificates of the hosts under "
				"%s: %s\n", argv[2], strerror(-rc));
			return 1;
		}
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: tls_pki DIR | tls_pki --hosts DIR CA_NAME NAME[=IPV4]...\n");
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
