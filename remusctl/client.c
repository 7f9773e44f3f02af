// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Control-socket client (see remusctl.h).  One connection per request:
 * write the line, poll for the answer up to the timeout, read until the
 * newline or EOF, into a buffer that grows up to REMUS_CLI_MAX_REPLY.  Blocking by design; the daemon side never blocks.
 */
#include "remusctl/remusctl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/sock.h"

/* Like remus_write_all, but a closed peer is -EPIPE, never a SIGPIPE
 * that kills the CLI silently. */
static int send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t r = send(fd, p, len, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int remus_cli_request(const char *path, const char *request, unsigned timeout_ms,
		      char **reply)
{
	char *buf = NULL;
	size_t got = 0, cap = 0;
	int fd, rc, wrc;

	fd = remus_unix_connect(path, false);
	if (fd < 0)
		return fd;
	/* A daemon may refuse a client before reading its request (a peer
	 * check) and close: the send then fails (EPIPE, no SIGPIPE), but
	 * its answer saying why is there to read. */
	wrc = send_all(fd, request, strlen(request));
	if (wrc == 0)
		wrc = send_all(fd, "\n", 1);
	rc = 0;
	while (rc == 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;
		int n;

		if (got + 1 >= cap) {
			char *t;

			if (cap >= REMUS_CLI_MAX_REPLY) {
				rc = -EMSGSIZE;
				break;
			}
			cap = cap ? cap * 2 : 65536;
			t = realloc(buf, cap);
			if (!t) {
				rc = -ENOMEM;
				break;
			}
			buf = t;
		}
		n = poll(&p, 1, (int)timeout_ms);
		if (n == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		r = read(fd, buf + got, cap - 1 - got);
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0 || memchr(buf + got, '\n', (size_t)r)) {
			got += (size_t)r;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	if (rc == 0 && got == 0)
		rc = wrc < 0 ? wrc : -ECONNRESET;
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[got] = 0;
	/* One line: whatever follows the first newline is not the answer. */
	*strchrnul(buf, '\n') = 0;
	*reply = buf;
	return 0;
}

int remus_cli_ctl(const char *prog, const char *path, int nwords, char *const *words,
		  FILE *out, FILE *err)
{
	char req[REMUS_CTL_MAX_LINE] = "";
	size_t len = 0, wl;
	char *reply = NULL;
	int i, rc;

	if (nwords < 1) {
		fprintf(err, "%s: no request for %s: expected status, set-interval MS, "
			"failover, protect HOST:PORT or unprotect\n", prog, path);
		return 2;
	}
	for (i = 0; i < nwords; i++) {
		wl = strlen(words[i]);
		/* The line and its NUL (the newline on the wire) must fit. */
		if (len + (i > 0) + wl + 1 > sizeof(req)) {
			fprintf(err, "%s: the request '%s ...' is longer than one control line "
				"(%d bytes)\n", prog, words[0], REMUS_CTL_MAX_LINE - 1);
			return 2;
		}
		if (i > 0)
			req[len++] = ' ';
		memcpy(req + len, words[i], wl + 1);
		len += wl;
	}
	rc = remus_cli_request(path, req, REMUS_CLI_TIMEOUT_MS, &reply);
	if (rc == -ETIMEDOUT) {
		fprintf(err, "%s: %s did not answer '%s' within %u ms (is its remusd stuck?)\n",
			prog, path, req, REMUS_CLI_TIMEOUT_MS);
		return 1;
	}
	if (rc < 0) {
		fprintf(err, "%s: cannot talk to %s: %s (is remusd running with --ctl %s?)\n",
			prog, path, strerror(-rc), path);
		return 1;
	}
	fprintf(out, "%s\n", reply);
	rc = strstr(reply, "\"ok\":false") ? 1 : 0;
	free(reply);
	return rc;
}
