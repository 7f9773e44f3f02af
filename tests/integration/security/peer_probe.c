// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * peer_probe: another host's remusd serve as the security tests need it
 * (the peer protocol of hostd/peer.h, through hostd/peerlink.h's own
 * call, so the client side is the real one).
 *
 *     peer_probe HOST PORT CREDS ask REQUEST
 *         one request line REQUEST (JSON, hostd/peer.h) as host "probe";
 *         prints "answer: ok" or "answer: CODE: ERROR", or "failed: WHY"
 *         (not connected, handshake refused, no answer)
 *     peer_probe HOST PORT CREDS hold N
 *         opens N sessions one after the other, each authenticated and
 *         saying hello, holds them 2 s and prints one line per session:
 *         "session I: open" or "session I: closed after MS ms"
 *
 * CREDS: plain | psk FILE | x509 DIR (DIR's client certificate, libvirt
 * layout; the server must prove it is HOST).  Exit status 0, or 2 for a
 * usage or local error: the caller judges the output.
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
#include "hostd/peer.h"
#include "hostd/peerlink.h"
#include "hostd/request.h"
#include "tls/tls.h"

static int done;

static void on_answer(void *opaque, int rc, const struct remus_hostd_peer_msg *a,
		      const char *err)
{
	done = 1;
	if (rc < 0)
		printf("failed: %s\n", err);
	else if (a->ok)
		printf("answer: ok\n");
	else
		printf("answer: %s: %s\n", remus_hostd_code_name(a->code), a->error);
}

static int ask(const char *host, uint16_t port, struct remus_tls_creds *c, const char *line)
{
	struct remus_loop *loop;
	struct remus_hostd_peer_msg m;
	struct remus_hostd_peer_call *call;
	char err[512];

	if (remus_hostd_peer_parse(line, strlen(line), &m, err, sizeof(err)) < 0 ||
	    m.kind != REMUS_HOSTD_PEER_REQUEST) {
		fprintf(stderr, "peer_probe: not a request: %s\n", err);
		return 2;
	}
	if (remus_loop_new(&loop) < 0 ||
	    remus_hostd_peer_call(loop, host, port, "probe", &m, 10000, c, on_answer, NULL,
				  &call) < 0)
		return 2;
	while (!done)
		if (remus_loop_run_once(loop, 100) < 0)
			return 2;
	remus_hostd_peer_msg_release(&m);
	remus_loop_free(loop);
	return 0;
}

/* One session, authenticated (with @c) and hello said; its fd, or -1. */
static int session(const char *host, uint16_t port, struct remus_tls_creds *c,
		   struct remus_tls **t)
{
	static const char hello[] = "{\"hello\":\"remus-peer\",\"version\":1,\"host\":\"probe\"}\n";
	int fd = remus_tcp_connect(host, port, false);
	uint64_t end = remus_now_ms() + 10000;
	struct remus_buf b;
	int rc = 0;

	*t = NULL;
	if (fd < 0)
		return -1;
	remus_buf_init(&b, 0);
	if (remus_buf_append(&b, hello, strlen(hello)) < 0)
		exit(2);
	if (c) {
		remus_fd_set_nonblock(fd, true);
		if (remus_tls_new(c, fd, host, "remusd serve", t) < 0)
			exit(2);
		while ((rc = remus_tls_handshake(*t)) == -EAGAIN && remus_now_ms() < end) {
			struct pollfd p = { .fd = fd, .events = remus_tls_wants(*t) ==
								REMUS_EV_READ ? POLLIN : POLLOUT };

			poll(&p, 1, 200);
		}
		while (rc == 0 && remus_buf_len(&b) && remus_now_ms() < end)
			if (remus_tls_write(*t, &b) == -EAGAIN)
				poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, 200);
	} else if (remus_write_all(fd, hello, strlen(hello)) < 0) {
		rc = -EIO;
	}
	remus_buf_release(&b);
	if (rc < 0) {
		fprintf(stderr, "peer_probe: handshake: %s\n", *t ? remus_tls_error(*t) : "?");
		remus_tls_free(*t);
		*t = NULL;
		close(fd);
		return -1;
	}
	remus_fd_set_nonblock(fd, true);
	return fd;
}

static int hold(const char *host, uint16_t port, struct remus_tls_creds *c, int n)
{
	int fd[64];
	struct remus_tls *t[64];
	uint64_t closed[64] = { 0 }, t0;
	char b[4096];

	if (n < 1 || n > 64)
		return 2;
	for (int i = 0; i < n; i++) {
		fd[i] = session(host, port, c, &t[i]);
		usleep(100 * 1000);   /* in order: the server counts them so */
	}
	t0 = remus_now_ms();
	while (remus_now_ms() - t0 < 2000) {
		for (int i = 0; i < n; i++) {
			ssize_t r;

			if (fd[i] < 0 || closed[i])
				continue;
			r = recv(fd[i], b, sizeof(b), 0);  /* the hello's answer, or the end */
			if (r == 0 || (r < 0 && errno != EAGAIN))
				closed[i] = remus_now_ms() - t0 + 1;
		}
		usleep(20 * 1000);
	}
	for (int i = 0; i < n; i++) {
		if (fd[i] < 0)
			printf("session %d: not authenticated\n", i + 1);
		else if (closed[i])
			printf("session %d: closed after %llu ms\n", i + 1,
			       (unsigned long long)closed[i] - 1);
		else
			printf("session %d: open\n", i + 1);
		remus_tls_free(t[i]);
		if (fd[i] >= 0)
			close(fd[i]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct remus_tls_creds *c = NULL;
	char err[512];
	int a = 4, rc;

	if (argc < 5)
		goto usage;
	if (strcmp(argv[3], "psk") == 0 || strcmp(argv[3], "x509") == 0) {
		struct remus_tls_config cfg = { 0 };

		if (argc < 7)
			goto usage;
		if (argv[3][0] == 'p')
			cfg.psk_file = argv[4];
		else
			cfg.x509_dir = argv[4];
		if (remus_tls_creds_new(&cfg, REMUS_TLS_CLIENT, &c, err, sizeof(err)) < 0) {
			fprintf(stderr, "peer_probe: %s\n", err);
			return 2;
		}
		a = 5;
	} else if (strcmp(argv[3], "plain") != 0) {
		goto usage;
	}
	if (strcmp(argv[a], "ask") == 0)
		rc = ask(argv[1], (uint16_t)atoi(argv[2]), c, argv[a + 1]);
	else if (strcmp(argv[a], "hold") == 0)
		rc = hold(argv[1], (uint16_t)atoi(argv[2]), c, atoi(argv[a + 1]));
	else
		goto usage;
	remus_tls_creds_free(c);
	return rc;
usage:
	fprintf(stderr, "usage: peer_probe HOST PORT plain|psk FILE|x509 DIR ask REQUEST|hold N\n");
	return 2;
}
