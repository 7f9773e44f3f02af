// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for what an unauthenticated peer reaches first: the
 * standby's side of the TLS handshake (tls/tls.h, with GnuTLS under it),
 * and the pre-shared key file parser.
 *
 * Input: one byte, then the rest.  Byte 0 even: the rest is a key file's
 * text for remus_tls_psk_parse().  Odd: the rest is what a client sends
 * a PSK server session, written to a socketpair that is then closed; the
 * server's handshake runs until it completes or fails.  Properties
 * besides "no crash, no leak, no UB": a parsed key is 16..64 bytes with
 * a printable identity; a handshake never completes (the input cannot
 * know the key: the seed corpus holds a real first flight, which fails
 * at its binder or its end), and every failure comes with a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(const uint8_t *p, size_t n)
{
	char id[64];
	uint8_t key[64];
	size_t len = 0;

	if (remus_tls_psk_parse((const char *)p, n, id, sizeof(id), key, sizeof(key), &len) < 0)
		return;
	if (len < 16 || len > 64 || !*id)
		abort();
	for (const char *c = id; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			abort();
}

static void handshake(const uint8_t *p, size_t n)
{
	static struct remus_tls_creds *srv;
	struct remus_tls *t = NULL;
	int fd[2], rc = -EAGAIN;

	if (!srv && !(srv = fuzz_tls_creds(REMUS_TLS_SERVER)))
		abort();
	if (n > 60000)
		n = 60000; /* within the socket buffer: written at once */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) < 0)
		abort();
	if (n && write(fd[1], p, n) != (ssize_t)n)
		abort();
	shutdown(fd[1], SHUT_WR);
	if (remus_tls_new(srv, fd[0], NULL, "fuzzer", &t) < 0)
		abort();
	for (int i = 0; i < 64 && rc == -EAGAIN; i++)
		rc = remus_tls_handshake(t);
	if (rc == 0 || (rc != -EAGAIN && !*remus_tls_error(t)))
		abort();
	remus_tls_free(t);
	close(fd[0]);
	close(fd[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		handshake(data + 1, size - 1);
	else
		parse(data + 1, size - 1);
	return 0;
}
