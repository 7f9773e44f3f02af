// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The replication-link session (repl/link.h) over a socketpair: our end
 * is a struct remus_link on a real loop, the test plays the peer on the
 * other end with the wire encoder and decoder.  Heartbeats go out at the
 * interval, silence is declared after heartbeat_miss intervals, unread
 * input counts as a word, frames sent before a hang-up are delivered
 * before it is reported, a bad frame ends the session with the decoder's
 * reason, a full socket keeps the output queued until the peer reads, a
 * goodbye drains then closes, a TCP connect completes or fails, and a
 * paused input is not read yet not taken for silence.
 */
#include <errno.h>
#include <fcntl.h>
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

#define HB_MS 20u

struct fx {
	struct remus_loop *loop;
	struct remus_link link;
	int peer;                       /* the test's end, non-blocking */
	/* what the callbacks saw */
	unsigned msgs, heartbeats, closes, connected, writable, closed, lost;
	uint64_t last_hb_seq;
	enum remus_link_loss why;
	char reason[512];
	char close_reason[128];
	bool goodbye_on_lost;
};

static void on_msg(void *opaque, const struct remus_repl_msg *m)
{
	struct fx *f = opaque;

	f->msgs++;
	if (m->type == REMUS_REPL_HEARTBEAT)
		f->heartbeats++;
	if (m->type == REMUS_REPL_CLOSE) {
		f->closes++;
		snprintf(f->close_reason, sizeof(f->close_reason), "%.*s",
			 (int)m->u.reason.len, m->u.reason.p);
	}
}

static void on_lost(void *opaque, enum remus_link_loss why, const char *reason)
{
	struct fx *f = opaque;

	f->lost++;
	f->why = why;
	snprintf(f->reason, sizeof(f->reason), "%s", reason);
	assert_true(remus_link_is_open(&f->link)); /* still open for a goodbye */
	if (f->goodbye_on_lost)
		remus_link_goodbye(&f->link, "lost");
}

static void on_connected(void *opaque)
{
	((struct fx *)opaque)->connected++;
}

static void on_writable(void *opaque)
{
	((struct fx *)opaque)->writable++;
}

static void on_closed(void *opaque)
{
	((struct fx *)opaque)->closed++;
}

static const struct remus_link_cbs cbs = {
	.msg = on_msg, .lost = on_lost, .connected = on_connected,
	.writable = on_writable, .closed = on_closed,
};

static int setup(void **state)
{
	struct remus_link_config cfg = { .heartbeat_ms = HB_MS, .heartbeat_miss = 3 };
	struct fx *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(remus_loop_new(&f->loop), 0);
	remus_link_init(&f->link, f->loop, &cfg, &cbs, f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	f->peer = sv[1];
	assert_int_equal(remus_link_attach(&f->link, sv[0], "peer P"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	remus_link_release(&f->link);
	if (f->peer >= 0)
		close(f->peer);
	remus_loop_free(f->loop);
	free(f);
	return 0;
}

/* Runs the loop for @ms. */
static void run_for(struct fx *f, unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (remus_now_ms() < end)
		assert_int_equal(remus_loop_run_once(f->loop, (int)(end - remus_now_ms())), 0);
}

/* Runs the loop until *@counter reaches @want or @ms pass. */
static void run_until(struct fx *f, const unsigned *counter, unsigned want, unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (*counter < want && remus_now_ms() < end)
		assert_int_equal(remus_loop_run_once(f->loop, 10), 0);
}

static void peer_send(struct fx *f, const struct remus_buf *b)
{
	assert_int_equal(write(f->peer, remus_buf_data(b), remus_buf_len(b)),
			 (ssize_t)remus_buf_len(b));
}

static void peer_heartbeat(struct fx *f, uint64_t seq)
{
	struct remus_buf b;

	remus_buf_init(&b, 0);
	assert_int_equal(remus_repl_put_heartbeat(&b, seq, 0), 0);
	peer_send(f, &b);
	remus_buf_release(&b);
}

/* Decodes what the link sent to the peer so far; counts by type. */
struct seen {
	struct remus_buf in;
	struct remus_repl_decoder dec;
	unsigned heartbeats, closes, commit_acks, total;
	uint64_t last_seq, next_ack;
	bool seq_ok, eof;
	char close_reason[128];
};

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	remus_buf_init(&s->in, 0);
	remus_repl_decoder_init(&s->dec);
	s->seq_ok = true;
}

static void peer_read(struct fx *f, struct seen *s)
{
	struct remus_repl_msg m;
	ssize_t r;

	while ((r = remus_buf_read_fd(&s->in, f->peer, 1 << 20)) > 0)
		;
	/* A unix socket closed with our words unread reports ECONNRESET. */
	if (r == 0 || r == -ECONNRESET)
		s->eof = true;
	while (remus_repl_decode(&s->dec, &s->in, &m) == 1) {
		s->total++;
		switch (m.type) {
		case REMUS_REPL_HEARTBEAT:
			if (m.seq != s->last_seq + 1)
				s->seq_ok = false;
			s->last_seq = m.seq;
			s->heartbeats++;
			break;
		case REMUS_REPL_COMMIT_ACK:
			if (m.seq != s->next_ack)
				s->seq_ok = false;
			s->next_ack++;
			s->commit_acks++;
			break;
		case REMUS_REPL_CLOSE:
			s->closes++;
			snprintf(s->close_reason, sizeof(s->close_reason), "%.*s",
				 (int)m.u.reason.len, m.u.reason.p);
			break;
		default:
			break;
		}
	}
}

static void test_heartbeats_at_the_interval(void **state)
{
	struct fx *f = *state;
	struct seen s;
	uint64_t t0 = remus_now_ms(), i;

	seen_init(&s);
	/* The peer answers every 10 ms, so the link stays alive. */
	for (i = 1; remus_now_ms() - t0 < 10 * HB_MS; i++) {
		peer_heartbeat(f, i);
		run_for(f, 10);
		peer_read(f, &s);
	}
	/* 200 ms at 20 ms: 10 beats, fewer if the machine is loaded, never more. */
	assert_in_range(s.heartbeats, 5, 10);
	assert_true(s.seq_ok);
	assert_int_equal(f->lost, 0);
	assert_true(f->heartbeats >= i - 2); /* the peer's words were delivered */
	assert_int_equal(remus_link_late_beats(&f->link), 0);
	remus_buf_release(&s.in);
}

static void test_silence_is_loss_after_n_misses(void **state)
{
	struct fx *f = *state;
	uint64_t t0 = remus_now_ms();

	run_until(f, &f->lost, 1, 1000);
	assert_int_equal(f->lost, 1);
	assert_int_equal(f->why, REMUS_LINK_SILENT);
	/* 3 misses of 20 ms: not before 60 ms of silence */
	assert_true(remus_now_ms() - t0 >= 3 * HB_MS);
	assert_non_null(strstr(f->reason, "no word from peer P for "));
	assert_non_null(strstr(f->reason, "(3 heartbeats of 20 ms missed)"));
	/* The callback left it open: the link closed itself. */
	assert_false(remus_link_is_open(&f->link));
	assert_int_equal(remus_link_silence_ms(&f->link), 0);
}

static void test_unread_input_counts_as_a_word(void **state)
{
	struct fx *f = *state;

	/* A busy process does not get to read: stop the loop reading the
	 * link (white box: the link believes it still watches READ). */
	assert_int_equal(remus_loop_mod_fd(f->loop, f->link.fd, 0), 0);
	peer_heartbeat(f, 1);
	run_for(f, 8 * HB_MS); /* well past 3 misses */
	assert_int_equal(f->lost, 0);
	assert_true(remus_link_late_beats(&f->link) >= 1);
	assert_int_equal(f->msgs, 0);
	/* Reading again, the word is delivered; without more the peer is lost. */
	assert_int_equal(remus_loop_mod_fd(f->loop, f->link.fd, REMUS_EV_READ), 0);
	run_until(f, &f->msgs, 1, 500);
	assert_int_equal(f->heartbeats, 1);
	run_until(f, &f->lost, 1, 1000);
	assert_int_equal(f->why, REMUS_LINK_SILENT);
}

/* The owner pauses its input (it has enough to do with what it read):
 * nothing is read or delivered, heartbeats still go out, the peer's
 * words waiting unread keep it alive; resumed, they are delivered. */
static void test_paused_input(void **state)
{
	struct fx *f = *state;
	struct seen s;
	uint64_t i;

	seen_init(&s);
	remus_link_pause_input(&f->link, true);
	for (i = 1; i <= 10; i++) {
		peer_heartbeat(f, i);
		run_for(f, HB_MS);
		peer_read(f, &s);
	}
	assert_int_equal(f->msgs, 0);
	assert_int_equal(f->lost, 0);
	assert_true(remus_link_late_beats(&f->link) >= 1);
	assert_true(s.heartbeats >= 3); /* ours went out all along */
	remus_link_pause_input(&f->link, false);
	run_until(f, &f->msgs, 10, 500);
	assert_int_equal(f->heartbeats, 10);
	assert_int_equal(f->lost, 0);
	remus_buf_release(&s.in);
}

static void test_peer_close_after_its_last_words(void **state)
{
	struct fx *f = *state;
	struct remus_buf b;

	remus_buf_init(&b, 0);
	assert_int_equal(remus_repl_put_heartbeat(&b, 1, 0), 0);
	assert_int_equal(remus_repl_put_commit_ack(&b, 7), 0);
	peer_send(f, &b);
	remus_buf_release(&b);
	close(f->peer);
	f->peer = -1;
	run_until(f, &f->lost, 1, 1000);
	assert_int_equal(f->msgs, 2);
	assert_int_equal(f->lost, 1);
	assert_int_equal(f->why, REMUS_LINK_PEER_CLOSED);
	assert_string_equal(f->reason, "peer P closed the connection without CLOSE");
	assert_false(remus_link_is_open(&f->link));
}

static void test_bad_frame_closes_with_the_reason(void **state)
{
	struct fx *f = *state;
	static const uint8_t junk[64] = "this is not a replication frame, not at all....";
	struct seen s;

	peer_heartbeat(f, 1);
	assert_int_equal(write(f->peer, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	run_until(f, &f->lost, 1, 1000);
	assert_int_equal(f->heartbeats, 1); /* the good frame before it counted */
	assert_int_equal(f->why, REMUS_LINK_BAD_FRAME);
	assert_non_null(strstr(f->reason, "bad frame from peer P: "));
	assert_true(strlen(f->reason) > strlen("bad frame from peer P: "));
	assert_false(remus_link_is_open(&f->link));
	/* The peer sees the connection end. */
	seen_init(&s);
	peer_read(f, &s);
	assert_true(s.eof);
	remus_buf_release(&s.in);
}

static void test_bad_frame_goodbye(void **state)
{
	static const uint8_t junk[32] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct fx *f = *state;
	struct seen s;

	f->goodbye_on_lost = true;
	assert_int_equal(write(f->peer, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	run_until(f, &f->closed, 1, 1000);
	assert_int_equal(f->lost, 1);
	assert_int_equal(f->closed, 1);
	assert_false(remus_link_is_open(&f->link));
	seen_init(&s);
	peer_read(f, &s);
	assert_int_equal(s.closes, 1);
	assert_string_equal(s.close_reason, "lost");
	assert_true(s.eof);
	remus_buf_release(&s.in);
}

static void test_backpressure(void **state)
{
	struct fx *f = *state;
	struct remus_buf *out = remus_link_out(&f->link);
	struct seen s;
	uint64_t i, n = 200000; /* ~5 MB of acks: far more than the socket holds */
	size_t queued;

	seen_init(&s);
	for (i = 0; i < n; i++)
		assert_int_equal(remus_repl_put_commit_ack(out, i), 0);
	queued = remus_link_backlog(&f->link);
	remus_link_send(&f->link);
	/* The socket took what it could; the rest waits, nothing is lost. */
	assert_true(remus_link_backlog(&f->link) > 0);
	assert_true(remus_link_backlog(&f->link) < queued);
	peer_heartbeat(f, 1); /* filling the queue took a while: stay alive */
	run_for(f, HB_MS);
	assert_int_equal(f->lost, 0);
	assert_true(remus_link_backlog(&f->link) > 0);
	/* The peer reads: the loop writes the rest and says so. */
	while (s.commit_acks < n) {
		peer_heartbeat(f, s.commit_acks + 2);
		peer_read(f, &s);
		assert_int_equal(remus_loop_run_once(f->loop, 10), 0);
		assert_int_equal(f->lost, 0);
	}
	peer_read(f, &s);
	assert_int_equal(s.commit_acks, n);
	assert_true(s.seq_ok);
	assert_true(f->writable >= 1);
	assert_int_equal(remus_link_backlog(&f->link), 0);
	remus_buf_release(&s.in);
}

static void test_goodbye_drains_then_closes(void **state)
{
	struct fx *f = *state;
	struct seen s;

	seen_init(&s);
	assert_int_equal(remus_repl_put_commit_ack(remus_link_out(&f->link), 0), 0);
	remus_link_send(&f->link);
	remus_link_goodbye(&f->link, "unprotect");
	assert_true(remus_link_is_closing(&f->link));
	peer_heartbeat(f, 1); /* ignored while saying goodbye */
	run_until(f, &f->closed, 1, 1000);
	assert_int_equal(f->closed, 1);
	assert_int_equal(f->msgs, 0);
	assert_int_equal(f->lost, 0);
	assert_false(remus_link_is_open(&f->link));
	peer_read(f, &s);
	assert_int_equal(s.commit_acks, 1);
	assert_int_equal(s.closes, 1);
	assert_string_equal(s.close_reason, "unprotect");
	assert_true(s.eof);
	remus_buf_release(&s.in);
}

static void test_write_error_after_last_words(void **state)
{
	struct fx *f = *state;
	struct remus_buf b;

	/* The peer says CLOSE and hangs up before reading anything of ours. */
	remus_buf_init(&b, 0);
	assert_int_equal(remus_repl_put_close(&b, "bye"), 0);
	peer_send(f, &b);
	remus_buf_release(&b);
	shutdown(f->peer, SHUT_RDWR);
	assert_int_equal(remus_repl_put_commit_ack(remus_link_out(&f->link), 0), 0);
	remus_link_send(&f->link); /* EPIPE: remembered, not reported */
	assert_int_equal(f->lost, 0);
	assert_int_equal(f->msgs, 0);
	run_until(f, &f->lost, 1, 1000);
	assert_int_equal(f->closes, 1);           /* its last words came first */
	assert_string_equal(f->close_reason, "bye");
	assert_int_equal(f->lost, 1);
}

static void test_connect(void **state)
{
	struct fx *f = *state;
	uint16_t port;
	int lfd = remus_tcp_listen("127.0.0.1", 0, 1, &port), c, rc;
	struct seen s;

	assert_true(lfd >= 0);
	remus_link_close(&f->link);
	assert_int_equal(remus_link_connect(&f->link, "127.0.0.1", port, "standby Q"), 0);
	assert_false(remus_link_is_connected(&f->link));
	/* Queued before the connect completes: goes out once it has. */
	assert_int_equal(remus_repl_put_commit_ack(remus_link_out(&f->link), 0), 0);
	remus_link_send(&f->link);
	run_until(f, &f->connected, 1, 1000);
	assert_int_equal(f->connected, 1);
	assert_true(remus_link_is_connected(&f->link));
	assert_int_equal(remus_link_connect(&f->link, "127.0.0.1", port, "x"), -EISCONN);
	c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(c >= 0);
	close(f->peer);
	f->peer = c;
	seen_init(&s);
	run_for(f, 5);
	peer_read(f, &s);
	assert_int_equal(s.commit_acks, 1);
	remus_buf_release(&s.in);

	/* A port nobody listens on any more. */
	remus_link_close(&f->link);
	close(lfd);
	rc = remus_link_connect(&f->link, "127.0.0.1", port, "standby Q");
	if (rc == 0) {
		run_until(f, &f->lost, 1, 1000);
		assert_int_equal(f->lost, 1);
		assert_int_equal(f->why, REMUS_LINK_CONNECT_FAILED);
		assert_non_null(strstr(f->reason, "cannot connect to standby Q: "));
	} else {
		assert_int_equal(rc, -ECONNREFUSED);
	}
	assert_false(remus_link_is_open(&f->link));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_heartbeats_at_the_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silence_is_loss_after_n_misses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unread_input_counts_as_a_word, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paused_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_close_after_its_last_words, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_frame_closes_with_the_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_frame_goodbye, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_goodbye_drains_then_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error_after_last_words, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
