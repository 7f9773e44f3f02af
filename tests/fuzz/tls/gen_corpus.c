// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Writes fuzz_tls's seed corpus into DIR: key files (good, short, bad
 * hex) and a real PSK client's first flight (its ClientHello), whole and
 * cut in half.
 *
 *     tls_gen_corpus DIR
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static int put(const char *dir, const char *name, unsigned char mode, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(&mode, 1, 1, f) != 1 || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "tls_gen_corpus: cannot write %s\n", path);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct remus_tls_creds *cli;
	struct remus_tls *t = NULL;
	unsigned char hello[65536];
	ssize_t n;
	int fd[2], rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: tls_gen_corpus DIR\n");
		return 2;
	}
	rc |= put(argv[1], "key-good", 0, FUZZ_TLS_KEY, strlen(FUZZ_TLS_KEY));
	rc |= put(argv[1], "key-short", 0, "remus:0011\n", 11);
	rc |= put(argv[1], "key-badhex", 0, "id:zz0102030405060708090a0b0c0d0e0f\n", 36);
	cli = fuzz_tls_creds(REMUS_TLS_CLIENT);
	if (!cli || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0 ||
	    remus_tls_new(cli, fd[0], NULL, "gen", &t) < 0 ||
	    remus_tls_handshake(t) != -EAGAIN) {
		fprintf(stderr, "tls_gen_corpus: cannot make a client hello\n");
		return 1;
	}
	n = read(fd[1], hello, sizeof(hello));
	if (n <= 0)
		return 1;
	rc |= put(argv[1], "hello-psk", 1, hello, (size_t)n);
	rc |= put(argv[1], "hello-cut", 1, hello, (size_t)n / 2);
	rc |= put(argv[1], "plaintext", 1, "\0\0\0\x10HELLO remus", 15);
	remus_tls_free(t);
	remus_tls_creds_free(cli);
	return rc;
}
