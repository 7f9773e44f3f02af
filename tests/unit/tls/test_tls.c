// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The TLS layer (tls/tls.h) over socketpairs and loopback TCP, both ways
 * of configuring it: a PSK handshake completes and carries 4 MiB each
 * way intact; a wrong key, a certificate of another CA, an expired one
 * and one for another name are refused, with the reason in words and
 * -EACCES; key files are written 0600, never overwritten, refused when
 * others can read them or when malformed; missing certificate files are
 * named; and the acceptor hands over only authenticated peers, drops a
 * silent and a dribbling peer at its deadline, refuses a plaintext peer
 * and bounds the handshakes under way.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/loop.h"
#include "common/sock.h"
#include "support/tls_pki.h"
#include "tls/tls.h"

static char dir[] = "/tmp/remus-test-tls.XXXXXX";

static int group_setup(void **state)
{
	char p[512];

	if (!mkdtemp(dir))
		return -1;
	if (remus_test_pki_make(dir) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/a.psk", dir);
	if (remus_tls_keygen(p, NULL, 0) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/b.psk", dir);
	return remus_tls_keygen(p, NULL, 0) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct remus_tls_creds *psk(const char *file, enum remus_tls_role role)
{
	char p[512], err[512] = "";
	struct remus_tls_creds *c = NULL;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = p }, role,
					     &c, err, sizeof(err)), 0);
	return c;
}

static struct remus_tls_creds *x509(const char *set, enum remus_tls_role role,
				    const char *ca_set, const char *peer_name)
{
	char d[512], ca[512], err[512] = "";
	struct remus_tls_creds *c = NULL;
	int rc;

	snprintf(d, sizeof(d), "%s/%s", dir, set);
	snprintf(ca, sizeof(ca), "%s/%s/cacert.pem", dir, ca_set ? ca_set : set);
	rc = remus_tls_creds_new(&(struct remus_tls_config){ .x509_dir = d, .ca_file = ca,
							     .peer_name = peer_name },
				 role, &c, err, sizeof(err));
	if (rc < 0)
		fail_msg("x509 %s: %s", set, err);
	return c;
}

struct pair {
	int fd[2];
	struct remus_tls *t[2]; /* 0 client, 1 server */
	int rc[2];
};

/* Drives both handshakes over a socketpair until both end. */
static void handshake_pair(struct pair *p, struct remus_tls_creds *cli,
			   struct remus_tls_creds *srv, const char *host)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	assert_int_equal(remus_tls_new(cli, p->fd[0], host, "standby test", &p->t[0]), 0);
	assert_int_equal(remus_tls_new(srv, p->fd[1], NULL, "primary test", &p->t[1]), 0);
	p->rc[0] = p->rc[1] = -EAGAIN;
	for (int i = 0; i < 1000 && (p->rc[0] == -EAGAIN || p->rc[1] == -EAGAIN); i++) {
		if (p->rc[0] == -EAGAIN)
			p->rc[0] = remus_tls_handshake(p->t[0]);
		if (p->rc[1] == -EAGAIN)
			p->rc[1] = remus_tls_handshake(p->t[1]);
		/* One side failed: the other learns it from the alert or
		 * the hang-up. */
		if (p->rc[0] != -EAGAIN && p->rc[0] < 0)
			shutdown(p->fd[0], SHUT_RDWR);
		if (p->rc[1] != -EAGAIN && p->rc[1] < 0)
			shutdown(p->fd[1], SHUT_RDWR);
	}
}

static void pair_free(struct pair *p)
{
	remus_tls_free(p->t[0]);
	remus_tls_free(p->t[1]);
	close(p->fd[0]);
	close(p->fd[1]);
}

/* 4 MiB each way through the sessions, in the loop's style: write what
 * goes, read what is there. */
static void exchange(struct pair *p)
{
	const size_t total = 4u << 20;
	struct remus_buf out[2], in[2];
	size_t sent[2] = { 0 };

	for (int s = 0; s < 2; s++) {
		remus_buf_init(&out[s], 0);
		remus_buf_init(&in[s], 0);
	}
	for (int i = 0; i < 100000 && (remus_buf_len(&in[0]) < total ||
				       remus_buf_len(&in[1]) < total); i++) {
		for (int s = 0; s < 2; s++) {
			uint8_t chunk[8192];
			ssize_t r;

			if (sent[s] < total && remus_buf_len(&out[s]) < 65536) {
				for (size_t k = 0; k < sizeof(chunk); k++)
					chunk[k] = (uint8_t)((sent[s] + k) * 7 + s);
				assert_int_equal(remus_buf_append(&out[s], chunk, sizeof(chunk)), 0);
				sent[s] += sizeof(chunk);
			}
			r = remus_tls_write(p->t[s], &out[s]);
			assert_true(r >= 0 || r == -EAGAIN);
			do {
				r = remus_tls_read(p->t[!s], &in[!s], 256u << 10);
			} while (r > 0 || remus_tls_has_input(p->t[!s]));
			if (r != -EAGAIN) fail_msg("read %zd: %s", r, remus_tls_error(p->t[!s]));
		}
	}
	for (int s = 0; s < 2; s++) {
		const uint8_t *d = remus_buf_data(&in[!s]);

		assert_int_equal(remus_buf_len(&in[!s]), total);
		for (size_t k = 0; k < total; k += 4097)
			assert_int_equal(d[k], (uint8_t)(k * 7 + s));
	}
	for (int s = 0; s < 2; s++) {
		remus_buf_release(&out[s]);
		remus_buf_release(&in[s]);
	}
}

static void test_psk_ok(void **state)
{
	struct remus_tls_creds *cli = psk("a.psk", REMUS_TLS_CLIENT);
	struct remus_tls_creds *srv = psk("a.psk", REMUS_TLS_SERVER);
	struct pair p = { 0 };
	struct remus_buf b;

	handshake_pair(&p, cli, srv, NULL);
	assert_int_equal(p.rc[0], 0);
	assert_int_equal(p.rc[1], 0);
	assert_string_equal(remus_tls_peer_identity(p.t[1]), "PSK identity remus (AES-128-GCM)");
	exchange(&p);
	/* The peer's end, after its data, is an end (0), not an error. */
	remus_buf_init(&b, 0);
	close(p.fd[1]);
	p.fd[1] = -1;
	assert_int_equal(remus_tls_read(p.t[0], &b, 1024), 0);
	remus_buf_release(&b);
	pair_free(&p);
	remus_tls_creds_free(cli);
	remus_tls_creds_free(srv);
}

static void test_psk_wrong_key(void **state)
{
	struct remus_tls_creds *cli = psk("b.psk", REMUS_TLS_CLIENT);
	struct remus_tls_creds *srv = psk("a.psk", REMUS_TLS_SERVER);
	struct pair p = { 0 };

	handshake_pair(&p, cli, srv, NULL);
	assert_int_equal(p.rc[1], -EACCES);
	assert_true(p.rc[0] < 0 && p.rc[0] != -EAGAIN);
	assert_non_null(strstr(remus_tls_error(p.t[1]), "primary test"));
	assert_non_null(strstr(remus_tls_error(p.t[1]), "same key file"));
	pair_free(&p);
	remus_tls_creds_free(cli);
	remus_tls_creds_free(srv);
}

static void test_x509_ok(void **state)
{
	struct remus_tls_creds *cli = x509("good", REMUS_TLS_CLIENT, NULL, NULL);
	struct remus_tls_creds *srv = x509("good", REMUS_TLS_SERVER, NULL, NULL);
	struct pair p = { 0 };

	handshake_pair(&p, cli, srv, "localhost");
	if (p.rc[0] || p.rc[1])
		fail_msg("client %d %s / server %d %s", p.rc[0], remus_tls_error(p.t[0]), p.rc[1],
			 remus_tls_error(p.t[1]));
	assert_non_null(strstr(remus_tls_peer_identity(p.t[1]), "CN=localhost"));
	assert_non_null(strstr(remus_tls_peer_identity(p.t[0]), "CN=localhost"));
	exchange(&p);
	pair_free(&p);
	/* By address: the certificate names 127.0.0.1 too. */
	handshake_pair(&p, cli, srv, "127.0.0.1");
	assert_int_equal(p.rc[0], 0);
	pair_free(&p);
	remus_tls_creds_free(cli);
	remus_tls_creds_free(srv);
}

/* @cli_set's client against @srv_set's server, both trusting the good
 * CA unless they are otherca; which side refuses and why. */
static void refused(const char *cli_set, const char *srv_set, const char *host,
		    int refuser, const char *why)
{
	struct remus_tls_creds *cli = x509(cli_set, REMUS_TLS_CLIENT, "good", NULL);
	struct remus_tls_creds *srv = x509(srv_set, REMUS_TLS_SERVER, "good", NULL);
	struct pair p = { 0 };

	handshake_pair(&p, cli, srv, host);
	if (p.rc[refuser] != -EACCES || !strstr(remus_tls_error(p.t[refuser]), why))
		fail_msg("%s vs %s: side %d: %d '%s', wanted -EACCES '%s'", cli_set, srv_set,
			 refuser, p.rc[refuser], remus_tls_error(p.t[refuser]), why);
	if (refuser == 0) {
		assert_true(p.rc[1] < 0 && p.rc[1] != -EAGAIN);
	} else if (p.rc[0] == 0) {
		/* TLS 1.3: the client is done before the server has checked
		 * its certificate; it learns of the refusal on its first read. */
		struct remus_buf b;
		ssize_t r;

		remus_buf_init(&b, 0);
		r = remus_tls_read(p.t[0], &b, 100);
		assert_true(r < 0 && r != -EAGAIN);
		assert_non_null(strstr(remus_tls_error(p.t[0]), "refused us"));
		remus_buf_release(&b);
	}
	pair_free(&p);
	remus_tls_creds_free(cli);
	remus_tls_creds_free(srv);
}

static void test_x509_other_ca(void **state)
{
	refused("otherca", "good", "localhost", 1, "issuer is unknown");
	refused("good", "otherca", "localhost", 0, "issuer is unknown");
}

static void test_x509_expired(void **state)
{
	refused("expired", "good", "localhost", 1, "expired");
	refused("good", "expired", "localhost", 0, "expired");
}

static void test_x509_wrong_name(void **state)
{
	refused("good", "wrongname", "localhost", 0, "name");
	/* A configured peer name is checked by the server too. */
	{
		struct remus_tls_creds *cli = x509("good", REMUS_TLS_CLIENT, NULL, NULL);
		struct remus_tls_creds *srv = x509("good", REMUS_TLS_SERVER, NULL,
						   "primary.invalid");
		struct pair p = { 0 };

		handshake_pair(&p, cli, srv, "localhost");
		assert_int_equal(p.rc[1], -EACCES);
		pair_free(&p);
		remus_tls_creds_free(cli);
		remus_tls_creds_free(srv);
	}
}

static void test_keygen(void **state)
{
	char p[512], err[512], text[256];
	struct stat st;
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/k.psk", dir);
	umask(0);
	assert_int_equal(remus_tls_keygen(p, err, sizeof(err)), 0);
	umask(022);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	fd = open(p, O_RDONLY);
	n = read(fd, text, sizeof(text));
	close(fd);
	assert_int_equal(n, 6 + 64 + 1);
	assert_memory_equal(text, "remus:", 6);
	/* Never over an existing key. */
	assert_int_equal(remus_tls_keygen(p, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "exists: refusing to overwrite it"));
	/* Two keys differ. */
	{
		char q[512], t2[256];

		snprintf(q, sizeof(q), "%s/k2.psk", dir);
		assert_int_equal(remus_tls_keygen(q, err, sizeof(err)), 0);
		fd = open(q, O_RDONLY);
		assert_int_equal(read(fd, t2, sizeof(t2)), n);
		close(fd);
		assert_memory_not_equal(text, t2, (size_t)n);
	}
}

static void test_psk_file_refused(void **state)
{
	char p[512], err[512];
	struct remus_tls_creds *c = NULL;
	int fd;

	/* Readable by others. */
	snprintf(p, sizeof(p), "%s/open.psk", dir);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "remus:00112233445566778899aabbccddeeff\n", 39), 39);
	close(fd);
	chmod(p, 0644);
	assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = p },
					     REMUS_TLS_SERVER, &c, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	assert_null(c);
	/* Malformed. */
	snprintf(p, sizeof(p), "%s/bad.psk", dir);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "remus:xyz\n", 10), 10);
	close(fd);
	assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = p },
					     REMUS_TLS_CLIENT, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "IDENTITY:HEX"));
	/* Missing: the message says how to make one. */
	snprintf(p, sizeof(p), "%s/none.psk", dir);
	assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = p },
					     REMUS_TLS_CLIENT, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "remusd keygen"));
	/* Neither or both. */
	assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){ 0 },
					     REMUS_TLS_CLIENT, &c, err, sizeof(err)), -EINVAL);
}

static void test_psk_parse(void **state)
{
	char id[16];
	uint8_t key[64];
	size_t n = 0;

	assert_int_equal(remus_tls_psk_parse("ab:00112233445566778899aabbccddeeff", 35, id,
					     sizeof(id), key, sizeof(key), &n), 0);
	assert_string_equal(id, "ab");
	assert_int_equal(n, 16);
	assert_int_equal(key[15], 0xff);
	/* Too short a key, no identity, odd digits, a space in the identity. */
	assert_int_equal(remus_tls_psk_parse("ab:0011", 7, id, sizeof(id), key, sizeof(key), &n),
			 -EINVAL);
	assert_int_equal(remus_tls_psk_parse(":00112233445566778899aabbccddeeff", 33, id,
					     sizeof(id), key, sizeof(key), &n), -EINVAL);
	assert_int_equal(remus_tls_psk_parse("ab:00112233445566778899aabbccddeef", 34, id,
					     sizeof(id), key, sizeof(key), &n), -EINVAL);
	assert_int_equal(remus_tls_psk_parse("a b:00112233445566778899aabbccddeeff", 36, id,
					     sizeof(id), key, sizeof(key), &n), -EINVAL);
}

static void test_x509_missing(void **state)
{
	char d[512], err[512];
	struct remus_tls_creds *c = NULL;

	snprintf(d, sizeof(d), "%s/nowhere", dir);
	assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){ .x509_dir = d,
									 .ca_file = d },
					     REMUS_TLS_SERVER, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, d));
	assert_non_null(strstr(err, "CA"));
	snprintf(d, sizeof(d), "%s/good", dir);
	{
		char ca[600];

		snprintf(ca, sizeof(ca), "%s/servercert.pem", d); /* a cert, but no key for it */
		assert_int_equal(remus_tls_creds_new(&(struct remus_tls_config){
						.x509_dir = d, .cert_file = ca,
						.key_file = ca }, REMUS_TLS_SERVER, &c, err,
						sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "servercert.pem"));
	}
}

/* ---- the acceptor on a loop ---------------------------------------------- */

struct acc {
	struct remus_loop *loop;
	unsigned handed;
	struct remus_tls *tls;
	int fd;
};

static void on_handed(void *opaque, int fd, struct remus_tls *tls, const char *peer)
{
	struct acc *a = opaque;

	a->handed++;
	remus_tls_free(a->tls);
	if (a->fd >= 0)
		close(a->fd);
	a->tls = tls;
	a->fd = fd;
}

static void run_ms(struct remus_loop *loop, unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (remus_now_ms() < end)
		remus_loop_run_once(loop, 10);
}

static int peer_open(const char *log, uint16_t port, size_t *log_len)
{
	FILE *f = fopen(log, "r");

	if (f) {
		fseek(f, 0, SEEK_END);
		*log_len = (size_t)ftell(f);
		fclose(f);
	}
	return remus_tcp_connect("127.0.0.1", port, false);
}

/* Is the connection @fd closed by the other side (EOF or reset)? */
static bool closed_by_peer(int fd)
{
	char b[256];
	ssize_t r;

	remus_fd_set_nonblock(fd, true);
	do {
		r = recv(fd, b, sizeof(b), 0);
	} while (r > 0);
	return r == 0 || (r < 0 && errno != EAGAIN);
}

static void test_acceptor(void **state)
{
	struct remus_tls_creds *srv = psk("a.psk", REMUS_TLS_SERVER);
	struct remus_tls_creds *cli = psk("a.psk", REMUS_TLS_CLIENT);
	struct remus_tls_acceptor *a = NULL;
	struct acc ac = { .fd = -1 };
	struct remus_tls *t = NULL;
	uint16_t port;
	size_t dummy = 0;
	int lfd, silent, slow, plain, extra, good;
	uint64_t t0;
	int rc;

	assert_int_equal(remus_loop_new(&ac.loop), 0);
	lfd = remus_tcp_listen("127.0.0.1", 0, 8, &port);
	assert_true(lfd >= 0);
	assert_int_equal(remus_tls_acceptor_new(ac.loop, lfd, srv, &(struct remus_tls_acceptor_config){
				.what = "primary", .handshake_ms = 300, .max_pending = 3 },
				on_handed, &ac, &a), 0);

	/* A silent peer, a slowloris, a plaintext peer: none handed over. */
	t0 = remus_now_ms();
	silent = peer_open("", port, &dummy);
	slow = peer_open("", port, &dummy);
	run_ms(ac.loop, 50);
	assert_int_equal(remus_tls_acceptor_pending(a), 2);
	plain = peer_open("", port, &dummy);
	assert_int_equal(write(plain, "\0\0\0\1HELLO plaintext primary here\n", 33), 33);
	run_ms(ac.loop, 50);
	assert_true(closed_by_peer(plain)); /* refused at once: not TLS */
	/* Every slot taken: the fourth is closed at once. */
	{
		int third = peer_open("", port, &dummy);

		run_ms(ac.loop, 50);
		assert_int_equal(remus_tls_acceptor_pending(a), 3);
		extra = peer_open("", port, &dummy);
		run_ms(ac.loop, 20);
		assert_int_equal(remus_tls_acceptor_pending(a), 3);
		close(third);
	}
	assert_true(closed_by_peer(extra));
	for (int i = 0; i < 5; i++) {
		/* One byte of a record header.  On a loaded machine the 300 ms
		 * deadline can pass within these 200 ms and the acceptor close
		 * the slowloris first: then the send fails (no SIGPIPE killing
		 * the test) and the checks below say whether it was in time. */
		if (send(slow, "\x16", 1, MSG_NOSIGNAL) != 1)
			break;
		run_ms(ac.loop, 40);
	}
	while (remus_tls_acceptor_pending(a) && remus_now_ms() - t0 < 2000)
		run_ms(ac.loop, 10);
	assert_int_equal(remus_tls_acceptor_pending(a), 0);
	/* Dropped at the deadline, not before and not much after. */
	assert_true(remus_now_ms() - t0 >= 290);
	assert_true(remus_now_ms() - t0 < 1500);
	assert_true(closed_by_peer(silent));
	assert_true(closed_by_peer(slow));
	assert_int_equal(ac.handed, 0);

	/* An honest client is handed over, with its session. */
	good = remus_tcp_connect("127.0.0.1", port, true);
	assert_true(good >= 0);
	run_ms(ac.loop, 20);
	assert_int_equal(remus_tls_new(cli, good, "127.0.0.1", "standby", &t), 0);
	for (int i = 0; i < 200 && (rc = remus_tls_handshake(t)) == -EAGAIN; i++)
		run_ms(ac.loop, 5);
	assert_int_equal(rc, 0);
	for (int i = 0; i < 50 && !ac.handed; i++)
		run_ms(ac.loop, 5);
	assert_int_equal(ac.handed, 1);
	assert_non_null(ac.tls);
	{
		struct remus_buf b;

		remus_buf_init(&b, 0);
		remus_buf_append(&b, "ping", 4);
		assert_int_equal(remus_tls_write(t, &b), 4);
		remus_buf_reset(&b);
		run_ms(ac.loop, 20);
		assert_int_equal(remus_tls_read(ac.tls, &b, 100), 4);
		assert_memory_equal(remus_buf_data(&b), "ping", 4);
		remus_buf_release(&b);
	}
	remus_tls_free(t);
	close(good);
	close(silent);
	close(slow);
	close(plain);
	close(extra);
	remus_tls_acceptor_free(a);
	remus_tls_free(ac.tls);
	close(ac.fd);
	close(lfd);
	remus_loop_free(ac.loop);
	remus_tls_creds_free(srv);
	remus_tls_creds_free(cli);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_psk_ok),
		cmocka_unit_test(test_psk_wrong_key),
		cmocka_unit_test(test_x509_ok),
		cmocka_unit_test(test_x509_other_ca),
		cmocka_unit_test(test_x509_expired),
		cmocka_unit_test(test_x509_wrong_name),
		cmocka_unit_test(test_keygen),
		cmocka_unit_test(test_psk_file_refused),
		cmocka_unit_test(test_psk_parse),
		cmocka_unit_test(test_x509_missing),
		cmocka_unit_test(test_acceptor),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
