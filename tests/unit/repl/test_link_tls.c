// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The replication link over TLS (repl/link.h with tls/tls.h), as remusd
 * runs it: the primary's link connects over loopback TCP and runs the
 * handshake before it counts as connected; the standby's side comes
 * authenticated from the acceptor.  Frames and heartbeats go both ways
 * through the sessions, also with a read chunk smaller than a TLS record
 * (input GnuTLS holds that the fd does not report must still be read);
 * a primary with the wrong key never gets connected and says why; a
 * standby that never answers the handshake is given up at the deadline.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/loop.h"
#include "common/sock.h"
#include "repl/link.h"
#include "repl/repl.h"
#include "tls/tls.h"

static char dir[] = "/tmp/remus-test-link-tls.XXXXXX";

struct end {
	struct remus_link link;
	unsigned msgs, heartbeats, acks, connected, lost;
	uint64_t next_ack;
	bool order_ok;
	enum remus_link_loss why;
	char reason[512];
};

struct fx {
	struct remus_loop *loop;
	struct end pri, sby;
	struct remus_tls_creds *cli, *srv;
	struct remus_tls_acceptor *acc;
	int lfd;
	uint16_t port;
	unsigned handed;
};

static void on_msg(void *opaque, const struct remus_repl_msg *m)
{
	struct end *e = opaque;

	e->msgs++;
	if (m->type == REMUS_REPL_HEARTBEAT)
		e->heartbeats++;
	if (m->type == REMUS_REPL_COMMIT_ACK) {
		if (m->seq != e->next_ack)
			e->order_ok = false;
		e->next_ack++;
		e->acks++;
	}
}

static void on_lost(void *opaque, enum remus_link_loss why, const char *reason)
{
	struct end *e = opaque;

	e->lost++;
	e->why = why;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

static void on_connected(void *opaque)
{
	((struct end *)opaque)->connected++;
}

static const struct remus_link_cbs cbs = {
	.msg = on_msg, .lost = on_lost, .connected = on_connected,
};

static void on_handed(void *opaque, int fd, struct remus_tls *tls, const char *peer)
{
	struct fx *f = opaque;

	f->handed++;
	assert_non_null(tls);
	assert_int_equal(remus_link_attach_tls(&f->sby.link, fd, tls, "primary P"), 0);
}

static struct remus_tls_creds *creds(const char *file, enum remus_tls_role role)
{
	char p[512], err[512];
	struct remus_tls_creds *c = NULL;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	if (remus_tls_creds_new(&(struct remus_tls_config){ .psk_file = p }, role, &c, err,
				sizeof(err)) < 0)
		fail_msg("%s", err);
	return c;
}

static int group_setup(void **state)
{
	char p[600];

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
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

/* Both ends; the primary's link with key @cli_key and @read_chunk. */
static struct fx *fx_new(const char *cli_key, size_t read_chunk, unsigned handshake_ms)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(remus_loop_new(&f->loop), 0);
	f->cli = creds(cli_key, REMUS_TLS_CLIENT);
	f->srv = creds("a.psk", REMUS_TLS_SERVER);
	remus_link_init(&f->pri.link, f->loop, &(struct remus_link_config){
		.heartbeat_ms = 20, .heartbeat_miss = 10, .read_chunk = read_chunk,
		.handshake_ms = handshake_ms }, &cbs, &f->pri);
	remus_link_init(&f->sby.link, f->loop, &(struct remus_link_config){
		.heartbeat_ms = 20, .heartbeat_miss = 10, .read_chunk = read_chunk }, &cbs,
		&f->sby);
	f->pri.order_ok = f->sby.order_ok = true;
	remus_link_set_tls(&f->pri.link, f->cli);
	f->lfd = remus_tcp_listen("127.0.0.1", 0, 4, &f->port);
	assert_true(f->lfd >= 0);
	return f;
}

static void fx_accept(struct fx *f)
{
	assert_int_equal(remus_tls_acceptor_new(f->loop, f->lfd, f->srv,
						&(struct remus_tls_acceptor_config){
							.what = "primary", .handshake_ms = 2000 },
						on_handed, f, &f->acc), 0);
}

static void fx_free(struct fx *f)
{
	remus_link_release(&f->pri.link);
	remus_link_release(&f->sby.link);
	remus_tls_acceptor_free(f->acc);
	close(f->lfd);
	remus_tls_creds_free(f->cli);
	remus_tls_creds_free(f->srv);
	remus_loop_free(f->loop);
	free(f);
}

static void run_until(struct fx *f, const unsigned *counter, unsigned want, unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (*counter < want && remus_now_ms() < end)
		assert_int_equal(remus_loop_run_once(f->loop, 10), 0);
}

/* Frames both ways, many records' worth. */
static void traffic(size_t read_chunk)
{
	struct fx *f = fx_new("a.psk", read_chunk, 0);
	const unsigned n = 20000; /* 20000 frames ~ several TLS records each way */

	fx_accept(f);
	assert_int_equal(remus_link_connect(&f->pri.link, "127.0.0.1", f->port, "standby S"), 0);
	run_until(f, &f->pri.connected, 1, 3000);
	assert_int_equal(f->pri.connected, 1);
	run_until(f, &f->handed, 1, 3000);
	assert_true(remus_link_is_tls(&f->pri.link));
	assert_true(remus_link_is_tls(&f->sby.link));
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(remus_repl_put_commit_ack(remus_link_out(&f->pri.link), i), 0);
		assert_int_equal(remus_repl_put_commit_ack(remus_link_out(&f->sby.link), i), 0);
	}
	remus_link_send(&f->pri.link);
	remus_link_send(&f->sby.link);
	run_until(f, &f->sby.acks, n, 5000);
	run_until(f, &f->pri.acks, n, 5000);
	assert_int_equal(f->sby.acks, n);
	assert_int_equal(f->pri.acks, n);
	assert_true(f->sby.order_ok && f->pri.order_ok);
	/* Heartbeats flow and nobody is lost. */
	run_until(f, &f->sby.heartbeats, 10, 2000);
	assert_true(f->sby.heartbeats >= 10);
	assert_int_equal(f->pri.lost + f->sby.lost, 0);
	fx_free(f);
}

static void test_traffic(void **state)
{
	traffic(0);
}

/* 100-byte reads: most records are read in pieces, the rest waits in
 * GnuTLS with nothing on the fd. */
static void test_traffic_small_reads(void **state)
{
	traffic(100);
}

static void test_wrong_key(void **state)
{
	struct fx *f = fx_new("b.psk", 0, 0);

	fx_accept(f);
	assert_int_equal(remus_link_connect(&f->pri.link, "127.0.0.1", f->port, "standby S"), 0);
	run_until(f, &f->pri.lost, 1, 3000);
	assert_int_equal(f->pri.lost, 1);
	assert_int_equal(f->pri.connected, 0);
	assert_int_equal(f->pri.why, REMUS_LINK_CONNECT_FAILED);
	assert_non_null(strstr(f->pri.reason, "standby S"));
	assert_non_null(strstr(f->pri.reason, "same key file"));
	assert_int_equal(f->handed, 0);
	assert_false(remus_link_is_open(&f->sby.link));
	fx_free(f);
}

/* A standby that accepts the TCP connection and never answers. */
static void test_handshake_deadline(void **state)
{
	struct fx *f = fx_new("a.psk", 0, 300);
	uint64_t t0 = remus_now_ms();

	assert_int_equal(remus_link_connect(&f->pri.link, "127.0.0.1", f->port, "standby S"), 0);
	run_until(f, &f->pri.lost, 1, 3000);
	assert_int_equal(f->pri.lost, 1);
	assert_int_equal(f->pri.why, REMUS_LINK_CONNECT_FAILED);
	assert_non_null(strstr(f->pri.reason, "no TLS handshake"));
	assert_true(remus_now_ms() - t0 >= 300);
	assert_true(remus_now_ms() - t0 < 2000);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traffic),
		cmocka_unit_test(test_traffic_small_reads),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_handshake_deadline),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
