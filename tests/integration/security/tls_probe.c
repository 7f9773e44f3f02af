// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tls_probe: a peer that is not the primary a standby trusts, for the
 * security tests.
 *
 *     tls_probe HOST PORT plain              a plaintext HELLO
 *     tls_probe HOST PORT psk FILE           TLS with this key, then HELLO
 *     tls_probe HOST PORT x509 DIR [CA]      TLS with DIR's client
 *                                            certificate (libvirt layout),
 *                                            trusting CA (default DIR's)
 *     tls_probe HOST PORT silent             connects and says nothing
 *     tls_probe HOST PORT slowloris          a TLS record header, a byte
 *                                            every 200 ms
 *
 * Prints one line: "accepted" (the standby answered the HELLO with
 * HELLO_ACK: it took us as its primary), "refused: WHY" (the handshake
 * failed, or the standby closed without an answer) or "closed after N ms
 * (K bytes sent)" for silent and slowloris (or "open after 30000 ms").
 * Exit status 0, or 2 for a usage or local error: the caller judges.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/loop.h"
#include "common/sock.h"
#include "repl/repl.h"
#include "tls/tls.h"

static void hello(struct remus_buf *out)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_HELLO };

	m.u.hello.version = REMUS_REPL_VERSION;
	m.u.hello.vm_name.p = "probe";
	m.u.hello.vm_name.len = 5;
	m.u.hello.page_size = 4096;
	m.u.hello.nblocks = 1;
	m.u.hello.blocks[0].id.p = "pc.ram";
	m.u.hello.blocks[0].id.len = 6;
	m.u.hello.blocks[0].length = 256u << 20;
	if (remus_repl_encode(out, &m) < 0)
		exit(2);
}

/* Sends HELLO (through @t, or plain) and waits 5 s for the answer. */
static void converse(int fd, struct remus_tls *t)
{
	struct remus_buf out, in;
	struct remus_repl_decoder d;
	struct remus_repl_msg m;
	uint64_t end = remus_now_ms() + 5000;
	int k;

	remus_buf_init(&out, 0);
	remus_buf_init(&in, REMUS_REPL_FRAME_MAX);
	remus_repl_decoder_init(&d);
	hello(&out);
	while (remus_buf_len(&out)) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		ssize_t r = t ? remus_tls_write(t, &out) : remus_buf_write_fd(&out, fd);

		if (r == -EAGAIN && poll(&p, 1, 1000) >= 0)
			continue;
		if (r < 0) {
			printf("refused: sending HELLO: %s\n", t && *remus_tls_error(t) ?
			       remus_tls_error(t) : strerror((int)-r));
			return;
		}
	}
	while (remus_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		while ((k = remus_repl_decode(&d, &in, &m)) == 1) {
			if (m.type == REMUS_REPL_HELLO_ACK) {
				printf("accepted\n");
				return;
			}
			if (m.type != REMUS_REPL_HEARTBEAT && m.type != REMUS_REPL_DISK_HASHES) {
				printf("refused: the standby answered %s\n",
				       remus_repl_type_name(m.type));
				return;
			}
		}
		if (k < 0) {
			printf("refused: an answer that is no frame: %s\n",
			       remus_repl_decoder_error(&d));
			return;
		}
		if ((!t || !remus_tls_has_input(t)) && poll(&p, 1, 200) <= 0)
			continue;
		r = t ? remus_tls_read(t, &in, 65536) : remus_buf_read_fd(&in, fd, 65536);
		if (r == 0 || (r < 0 && r != -EAGAIN)) {
			printf("refused: %s\n", r == 0 ? "the standby closed the connection" :
			       t && *remus_tls_error(t) ? remus_tls_error(t) : strerror((int)-r));
			return;
		}
	}
	printf("refused: no answer in 5 s\n");
}

static void tls_mode(int fd, const struct remus_tls_config *cfg, const char *host)
{
	struct remus_tls_creds *c = NULL;
	struct remus_tls *t = NULL;
	uint64_t end = remus_now_ms() + 10000;
	char err[512];
	int rc;

	if (remus_tls_creds_new(cfg, REMUS_TLS_CLIENT, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "tls_probe: %s\n", err);
		exit(2);
	}
	if (remus_tls_new(c, fd, host, "standby", &t) < 0)
		exit(2);
	while ((rc = remus_tls_handshake(t)) == -EAGAIN && remus_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = remus_tls_wants(t) == REMUS_EV_READ ?
							   POLLIN : POLLOUT };

		poll(&p, 1, 200);
	}
	if (rc < 0)
		printf("refused: %s\n", rc == -EAGAIN ? "no handshake in 10 s" : remus_tls_error(t));
	else
		converse(fd, t);
	remus_tls_free(t);
	remus_tls_creds_free(c);
}

/* Waits for the standby to close, sending a byte every 200 ms if @dribble. */
static void hold(int fd, bool dribble)
{
	static const char header[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	uint64_t t0 = remus_now_ms();
	size_t sent = 0;

	while (remus_now_ms() - t0 < 30000) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char b[256];

		if (poll(&p, 1, 200) > 0) {
			ssize_t r = recv(fd, b, sizeof(b), 0);

			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				printf("closed after %llu ms (%zu bytes sent)\n",
				       (unsigned long long)(remus_now_ms() - t0), sent);
				return;
			}
		}
		if (dribble && send(fd, header + sent % (sizeof(header) - 1), 1, MSG_NOSIGNAL) == 1)
			sent++;
	}
	printf("open after 30000 ms (%zu bytes sent)\n", sent);
}

int main(int argc, char **argv)
{
	const char *mode;
	int fd;

	if (argc < 4) {
		fprintf(stderr, "usage: tls_probe HOST PORT plain|psk FILE|x509 DIR|silent|slowloris\n");
		return 2;
	}
	mode = argv[3];
	fd = remus_tcp_connect(argv[1], (uint16_t)atoi(argv[2]), false);
	if (fd < 0) {
		fprintf(stderr, "tls_probe: cannot connect to %s:%s: %s\n", argv[1], argv[2],
			strerror(-fd));
		return 2;
	}
	remus_fd_set_nonblock(fd, true);
	if (strcmp(mode, "plain") == 0)
		converse(fd, NULL);
	else if (strcmp(mode, "psk") == 0 && argc == 5)
		tls_mode(fd, &(struct remus_tls_config){ .psk_file = argv[4] }, argv[1]);
	else if (strcmp(mode, "x509") == 0 && (argc == 5 || argc == 6))
		tls_mode(fd, &(struct remus_tls_config){ .x509_dir = argv[4],
							 .ca_file = argc == 6 ? argv[5] : NULL },
			 argv[1]);
	else if (strcmp(mode, "silent") == 0)
		hold(fd, false);
	else if (strcmp(mode, "slowloris") == 0)
		hold(fd, true);
	else {
		fprintf(stderr, "tls_probe: unknown mode '%s'\n", mode);
		return 2;
	}
	close(fd);
	return 0;
}
