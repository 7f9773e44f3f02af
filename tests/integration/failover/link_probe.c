// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * link_probe: a misbehaving primary, for the standby's bad-input tests.
 *
 *     link_probe HOST PORT MODE [PSK_FILE]
 *
 * With PSK_FILE it speaks TLS (tls/tls.h) with that key first, as an
 * authenticated primary would: what it tests is then what a primary
 * that holds the key, and misbehaves, can do.
 * Connects to a standby remusd and plays one scenario:
 *   version    HELLO of protocol version 2: expects HELLO_REJECT naming
 *              both versions, prints the reason
 *   corrupt    HELLO, then an EPOCH_DATA frame with one payload bit
 *              flipped after its checksum was computed: expects the
 *              standby to close the link
 *   hash       HELLO, a whole epoch whose COMMIT_REQ announces a wrong
 *              end-to-end hash: expects the link closed and no COMMIT_ACK
 *              (the epoch has a device part only: the data of a first
 *              epoch goes through the standby's stream parser, which
 *              would refuse this probe's filler before the hash)
 *   garbage    HELLO, then epoch data that is no migration stream: the
 *              standby, which passes a first epoch to its QEMU as it
 *              comes, must refuse it on arrival, before any byte passes
 *   truncated  HELLO, then half of an EPOCH_DATA frame, then close
 *
 * Exit 0 when the standby behaved as expected, 1 otherwise; what it saw
 * goes to stdout.  The caller then checks the standby's status: nothing
 * may have been committed or written to its QEMU.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/buf.h"
#include "repl/repl.h"
#include "common/sock.h"
#include "tls/tls.h"

/* The TLS session, when a key file was given (blocking fd). */
static struct remus_tls *tls;

/* Reads frames until one of type @want (returns 1, copying a reason into
 * @text), EOF (returns 0) or 5 s pass (returns -1).  Heartbeats are
 * skipped. */
static int expect(int fd, unsigned want, char *text, size_t n)
{
	struct remus_buf in;
	struct remus_repl_decoder d;
	struct remus_repl_msg m;
	int rc = -1;

	remus_buf_init(&in, REMUS_REPL_FRAME_MAX);
	remus_repl_decoder_init(&d);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;
		int k;

		while ((k = remus_repl_decode(&d, &in, &m)) == 1) {
			if (m.type == REMUS_REPL_HEARTBEAT)
				continue;
			printf("standby sent %s\n", remus_repl_type_name(m.type));
			if (m.type != want)
				continue;
			if (text && (m.type == REMUS_REPL_HELLO_REJECT || m.type == REMUS_REPL_CLOSE))
				snprintf(text, n, "%.*s", (int)m.u.reason.len, m.u.reason.p);
			rc = 1;
			goto out;
		}
		if (k < 0) {
			printf("undecodable answer: %s\n", remus_repl_decoder_error(&d));
			goto out;
		}
		if ((!tls || !remus_tls_has_input(tls)) && poll(&p, 1, 5000) <= 0)
			goto out;
		r = tls ? remus_tls_read(tls, &in, 65536) : remus_buf_read_fd(&in, fd, 65536);
		if (r == 0 || (r < 0 && r != -EAGAIN)) {
			rc = 0;
			goto out;
		}
	}
out:
	remus_buf_release(&in);
	return rc;
}

static void hello(struct remus_buf *out, uint32_t version)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_HELLO };

	m.u.hello.version = version;
	m.u.hello.vm_name.p = "probe";
	m.u.hello.vm_name.len = 5;
	m.u.hello.page_size = 4096;
	m.u.hello.nblocks = 1;
	m.u.hello.blocks[0].id.p = "pc.ram";
	m.u.hello.blocks[0].id.len = 6;
	m.u.hello.blocks[0].length = 256u << 20;
	if (remus_repl_encode(out, &m) < 0)
		abort();
}

static int send_buf(int fd, struct remus_buf *b, size_t n)
{
	struct remus_buf part;
	int rc;

	if (!tls) {
		rc = remus_write_all(fd, remus_buf_data(b), n);
	} else {
		remus_buf_init(&part, 0);
		rc = remus_buf_append(&part, remus_buf_data(b), n);
		while (rc == 0 && remus_buf_len(&part)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			ssize_t r = remus_tls_write(tls, &part);

			if (r == -EAGAIN && poll(&p, 1, 5000) > 0)
				continue;
			if (r < 0)
				rc = (int)r;
		}
		remus_buf_release(&part);
	}
	remus_buf_reset(b);
	return rc;
}

/* A TLS client session with the key in @psk, on blocking @fd; the fd
 * is non-blocking afterwards (a TLS read takes all it can get). */
static int start_tls(int fd, const char *psk, struct remus_tls_creds **c)
{
	char err[512];
	int rc;

	rc = remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = psk }, REMUS_TLS_CLIENT,
				 c, err, sizeof(err));
	if (rc == 0)
		rc = remus_tls_new(*c, fd, NULL, "standby", &tls);
	if (rc == 0)
		while ((rc = remus_tls_handshake(tls)) == -EAGAIN)
			;
	if (rc < 0)
		fprintf(stderr, "link_probe: TLS: %s\n", tls ? remus_tls_error(tls) : err);
	else
		remus_fd_set_nonblock(fd, true);
	return rc;
}

int main(int argc, char **argv)
{
	static uint8_t data[64 * 1024];
	struct remus_buf out;
	struct remus_repl_tx tx;
	char reason[1100] = "";
	struct remus_tls_creds *creds = NULL;
	const char *mode;
	int fd, r, ok = 0;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: link_probe HOST PORT version|corrupt|hash|garbage|truncated "
			"[PSK_FILE]\n");
		return 2;
	}
	mode = argv[3];
	fd = remus_tcp_connect(argv[1], (uint16_t)atoi(argv[2]), false);
	if (fd < 0) {
		fprintf(stderr, "link_probe: cannot connect to %s:%s\n", argv[1], argv[2]);
		return 1;
	}
	memset(data, 0x5a, sizeof(data));
	remus_buf_init(&out, 0);
	remus_repl_tx_init(&tx);
	if (argc == 5 && start_tls(fd, argv[4], &creds) < 0)
		goto out;
	if (strcmp(mode, "version") == 0) {
		hello(&out, 2);
		send_buf(fd, &out, remus_buf_len(&out));
		r = expect(fd, REMUS_REPL_HELLO_REJECT, reason, sizeof(reason));
		printf("reject reason: %s\n", reason);
		ok = r == 1 && strstr(reason, "version 1 expected, got 2");
		goto out;
	}
	hello(&out, 1);
	send_buf(fd, &out, remus_buf_len(&out));
	if (expect(fd, REMUS_REPL_HELLO_ACK, NULL, 0) != 1) {
		printf("no HELLO_ACK\n");
		goto out;
	}
	remus_repl_tx_begin(&tx, 0);
	if (strcmp(mode, "corrupt") == 0) {
		remus_repl_tx_data(&tx, &out, data, sizeof(data));
		remus_buf_data(&out)[REMUS_REPL_HDR_LEN + 100] ^= 0x04;
		send_buf(fd, &out, remus_buf_len(&out));
		r = expect(fd, REMUS_REPL_COMMIT_ACK, NULL, 0);
		ok = r == 0;
	} else if (strcmp(mode, "hash") == 0) {
		size_t n;

		remus_repl_tx_device(&tx, &out, data, 100);
		n = remus_buf_len(&out);
		remus_repl_tx_commit(&tx, &out);
		/* Re-encode the COMMIT_REQ with another hash (a valid frame). */
		out.len = n;
		remus_repl_encode(&out, &(struct remus_repl_msg){
			.type = REMUS_REPL_COMMIT_REQ, .seq = 0,
			.u.commit = { .data_len = 0, .device_len = 100, .hash = 42,
				       .disk_hash = XXH3_64bits(NULL, 0) } });
		send_buf(fd, &out, remus_buf_len(&out));
		r = expect(fd, REMUS_REPL_COMMIT_ACK, NULL, 0);
		ok = r == 0;
	} else if (strcmp(mode, "garbage") == 0) {
		remus_repl_tx_data(&tx, &out, data, sizeof(data));
		send_buf(fd, &out, remus_buf_len(&out));
		r = expect(fd, REMUS_REPL_COMMIT_ACK, NULL, 0);
		ok = r == 0;
	} else if (strcmp(mode, "truncated") == 0) {
		remus_repl_tx_data(&tx, &out, data, sizeof(data));
		send_buf(fd, &out, remus_buf_len(&out) / 2);
		ok = 1;
	} else {
		fprintf(stderr, "link_probe: unknown mode '%s'\n", mode);
	}
out:
	printf("%s: %s\n", mode, ok ? "standby behaved" : "UNEXPECTED");
	remus_tls_free(tls);
	remus_tls_creds_free(creds);
	remus_repl_tx_release(&tx);
	remus_buf_release(&out);
	close(fd);
	return ok ? 0 : 1;
}
