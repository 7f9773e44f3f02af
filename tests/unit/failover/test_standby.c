// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The standby's takeover (failover/standby.h), driven through its public
 * API against fakes on the same loop:
 *
 *   fake QEMU      the standby QEMU: tests/support/fake_qmp.h for its
 *                  monitor, and a unix listener for its -incoming socket
 *                  that keeps every byte the standby writes.  It answers
 *                  query-migrate "active" until the whole expected stream
 *                  (committed epochs, then the failover tail) has arrived,
 *                  twice more after that, then "completed"; query-status
 *                  "paused", as QEMU after an incoming migration.
 *   fake primary   connects to the standby's port and speaks repl/repl.h:
 *                  HELLO, epochs made of tests/support/migstream_build.h
 *                  streams through migstream's rewriter (as the engine
 *                  sends them), COMMIT_REQ, heartbeats; then it falls
 *                  silent, drops the link, or says goodbye (CLOSE).
 *   hooks          fence and activation commands (shell lines that append
 *                  to a log file), failover_done, commit, discard.
 *
 * Everything goes into one timeline in the order it happened on the loop.
 * The takeover must run: discard the uncommitted epoch, fence (and not go
 * on if fencing fails), write the tail (checked byte for byte against
 * remus_migstream_build_tail() of the last committed epoch), poll
 * query-migrate until completed, cont, announce-self, run the activation
 * hook, report.
 *
 * Where epochs go (issue 14): the first epoch of a new stream reaches the
 * standby QEMU before its COMMIT_REQ, later ones only after theirs; with a
 * small --epoch-mem they go through spill files and still arrive byte for
 * byte; a first epoch cut by a lost session leaves a stream that ends
 * cleanly (whole records, the section closed) and is resumed; a standby
 * QEMU that closes its incoming socket stops the standby, which says so.
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
#include <json-c/json.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"
#include "failover/standby.h"
#include "migstream/migstream.h"
#include "qmp/qmp.h"
#include "repl/repl.h"
#include "support/fake_qmp.h"
#include "support/migstream_build.h"
#include "support/timeline.h"

#define WAIT_MS 5000
#define RAM_SID 2
#define ACTIVE_POLLS 2
#define VM_NAME "vm0"

struct env {
	struct remus_loop *loop;
	struct remus_fake_qmp *fq;
	struct remus_qmp *qmp;
	struct remus_standby *s;
	struct remus_standby_config cfg;
	char dir[64], in_path[128], hook_log[128], fence_cmd[256], activate_cmd[256];

	struct remus_tl tl;

	/* fake QEMU: its incoming socket */
	int in_lfd, in_fd;
	struct remus_buf qin;      /* every byte the standby wrote */
	struct remus_buf expect;   /* what it must write, all of it */
	size_t committed_len;      /* where the failover tail starts in @expect */
	bool tail_started, loaded, fenced_before_tail, activated_before_cont;
	unsigned polls;            /* query-migrate answered after the load */

	/* fake primary */
	int pfd;
	struct remus_buf pin, pout;
	struct remus_repl_decoder dec;
	struct remus_repl_tx tx;
	bool beating, hello_acked;
	struct remus_repl_hello_ack ack; /* the last HELLO_ACK */
	char refused[REMUS_REPL_REASON_MAX]; /* the last HELLO_REJECT or CLOSE */
	uint64_t hb_seq;
	struct remus_timer hb_timer;
	unsigned acks;
	uint64_t last_ack;

	/* what the primary sends: epochs 0 and 1 whole, a part of 2 */
	struct remus_buf data[3], dev[3];

	/* hooks */
	unsigned done_calls, discards, commits;
	struct remus_failover_report rep;
};

#define RUN_UNTIL(v, cond) REMUS_TL_RUN_UNTIL(&(v)->tl, (v)->loop, cond, WAIT_MS)

/* The hook log so far (static buffer). */
static const char *hook_log(const struct env *v)
{
	static char buf[1024];
	FILE *f = fopen(v->hook_log, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* ---- fake QEMU -------------------------------------------------------- */

static void in_close(struct env *v)
{
	if (v->in_fd < 0)
		return;
	remus_loop_del_fd(v->loop, v->in_fd);
	close(v->in_fd);
	v->in_fd = -1;
}

static void on_incoming(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct env *v = opaque;
	ssize_t r = remus_buf_read_fd(&v->qin, fd, 1u << 20);

	if (r == -EAGAIN)
		return;
	if (r <= 0) {
		remus_tl_add(&v->tl, "qemu:incoming closed by the standby");
		in_close(v);
		return;
	}
	if (v->committed_len && !v->tail_started && remus_buf_len(&v->qin) > v->committed_len) {
		v->tail_started = true;
		v->fenced_before_tail = strstr(hook_log(v), "fence") != NULL;
		remus_tl_add(&v->tl, "qemu:tail started");
	}
	if (remus_buf_len(&v->expect) && remus_buf_len(&v->qin) == remus_buf_len(&v->expect) &&
	    memcmp(remus_buf_data(&v->qin), remus_buf_data(&v->expect),
		   remus_buf_len(&v->expect)) == 0) {
		remus_tl_add(&v->tl, "qemu:tail loaded");
		v->loaded = true;
		/* QEMU closes the incoming socket after the load. */
		in_close(v);
	}
}

static void on_incoming_accept(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct env *v = opaque;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (c < 0)
		return;
	if (v->in_fd >= 0)
		fail_msg("the standby connected twice to the incoming socket");
	v->in_fd = c;
	remus_tl_add(&v->tl, "qemu:incoming connected");
	assert_int_equal(remus_loop_add_fd(loop, c, REMUS_EV_READ, on_incoming, v), 0);
}

static void qemu_cmd(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *c, void *opaque)
{
	struct env *v = opaque;
	const char *n = c->name;

	if (strcmp(n, "qmp_capabilities") != 0)
		remus_tl_add(&v->tl, "qmp:%s", n);
	if (strcmp(n, "query-migrate") == 0) {
		if (!v->loaded || v->polls++ < ACTIVE_POLLS) {
			remus_fake_qmp_reply(f, c, "{\"status\": \"active\"}");
			return;
		}
		remus_tl_add(&v->tl, "qemu:completed");
		remus_fake_qmp_reply(f, c, "{\"status\": \"completed\"}");
	} else if (strcmp(n, "query-status") == 0) {
		remus_fake_qmp_reply(f, c, "{\"status\": \"paused\", \"running\": false}");
	} else if (strcmp(n, "cont") == 0) {
		v->activated_before_cont = strstr(hook_log(v), "activate") != NULL;
		remus_fake_qmp_builtin(f, c);
	} else {
		/* qmp_capabilities, migrate-set-capabilities, announce-self */
		remus_fake_qmp_builtin(f, c);
	}
}

/* ---- fake primary ----------------------------------------------------- */

static void pri_close(struct env *v)
{
	if (v->pfd < 0)
		return;
	remus_loop_del_fd(v->loop, v->pfd);
	close(v->pfd);
	v->pfd = -1;
	v->beating = false;
}

/* Small writes, blocking; a standby that closed the link ends it. */
static void pri_flush(struct env *v)
{
	int rc = 0;

	if (v->pfd >= 0 && remus_buf_len(&v->pout))
		rc = remus_write_all(v->pfd, remus_buf_data(&v->pout), remus_buf_len(&v->pout));
	remus_buf_reset(&v->pout);
	if (rc == -EPIPE || rc == -ECONNRESET) {
		remus_tl_add(&v->tl, "pri:EOF");
		pri_close(v);
		return;
	}
	assert_int_equal(rc, 0);
}

static void on_primary(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct env *v = opaque;
	struct remus_repl_msg m;
	ssize_t r = remus_buf_read_fd(&v->pin, fd, 1u << 20);
	int rc;

	if (r == -EAGAIN)
		return;
	if (r <= 0) {
		remus_tl_add(&v->tl, "pri:EOF");
		pri_close(v);
		return;
	}
	while (v->pfd == fd && (rc = remus_repl_decode(&v->dec, &v->pin, &m)) == 1) {
		switch (m.type) {
		case REMUS_REPL_HELLO_ACK:
			v->ack = m.u.ack;
			v->hello_acked = true;
			remus_tl_add(&v->tl, "pri:HELLO_ACK");
			break;
		case REMUS_REPL_HELLO_REJECT:
		case REMUS_REPL_CLOSE:
			snprintf(v->refused, sizeof(v->refused), "%.*s", (int)m.u.reason.len,
				 m.u.reason.p);
			remus_tl_add(&v->tl, "pri:%s", remus_repl_type_name(m.type));
			break;
		case REMUS_REPL_COMMIT_ACK:
			v->acks++;
			v->last_ack = m.seq;
			remus_tl_add(&v->tl, "pri:ACK %llu", (unsigned long long)m.seq);
			break;
		case REMUS_REPL_HEARTBEAT:
			break;
		default:
			fail_msg("primary: unexpected %s", remus_repl_type_name(m.type));
		}
	}
	if (v->pfd == fd && rc < 0)
		fail_msg("primary: %s", remus_repl_decoder_error(&v->dec));
}

static void on_primary_beat(struct remus_loop *loop, void *opaque)
{
	struct env *v = opaque;

	if (v->pfd >= 0 && v->beating) {
		assert_int_equal(remus_repl_put_heartbeat(&v->pout, ++v->hb_seq, remus_now_ms()), 0);
		pri_flush(v);
	}
	remus_timer_arm(&v->hb_timer, 10);
}

/* Says HELLO; the standby answers HELLO_ACK (in v->ack). */
static void pri_hello(struct env *v)
{
	struct remus_repl_msg m = { .type = REMUS_REPL_HELLO };

	v->pfd = remus_tcp_connect("127.0.0.1", remus_standby_port(v->s), false);
	assert_true(v->pfd >= 0);
	remus_repl_decoder_init(&v->dec);
	assert_int_equal(remus_loop_add_fd(v->loop, v->pfd, REMUS_EV_READ, on_primary, v), 0);
	m.u.hello.version = REMUS_REPL_VERSION;
	m.u.hello.vm_name.p = VM_NAME;
	m.u.hello.vm_name.len = strlen(VM_NAME);
	m.u.hello.page_size = 4096;
	assert_int_equal(remus_repl_encode(&v->pout, &m), 0);
	v->hello_acked = false;
	pri_flush(v);
	v->beating = true;
	RUN_UNTIL(v, v->hello_acked);
	assert_int_equal(remus_repl_tx_session(&v->tx, v->ack.next_epoch), 0);
}

/* A session with a fresh standby QEMU: a new stream from epoch 0. */
static void pri_connect(struct env *v)
{
	pri_hello(v);
	assert_int_equal(v->ack.flags, 0);
	assert_int_equal(v->ack.next_epoch, 0);
}

/* Ends epoch @n begun by pri_send_epoch(@n, false): device part and
 * COMMIT_REQ. */
static void pri_commit_epoch(struct env *v, uint64_t n)
{
	assert_int_equal(remus_repl_tx_device(&v->tx, &v->pout, remus_buf_data(&v->dev[n]),
					      remus_buf_len(&v->dev[n])), 0);
	assert_int_equal(remus_repl_tx_commit(&v->tx, &v->pout), 0);
	pri_flush(v);
}

/* Sends epoch @n (data and device), with its COMMIT_REQ if @commit. */
static void pri_send_epoch(struct env *v, uint64_t n, bool commit)
{
	assert_int_equal(remus_repl_tx_begin(&v->tx, n), 0);
	assert_int_equal(remus_repl_tx_data(&v->tx, &v->pout, remus_buf_data(&v->data[n]),
					    remus_buf_len(&v->data[n])), 0);
	if (commit) {
		assert_int_equal(remus_repl_tx_device(&v->tx, &v->pout, remus_buf_data(&v->dev[n]),
						      remus_buf_len(&v->dev[n])), 0);
		assert_int_equal(remus_repl_tx_commit(&v->tx, &v->pout), 0);
	}
	pri_flush(v);
}

/* A session with epochs 0 and 1 committed and acknowledged, and epoch 2
 * sent in part (its data, no device part, no COMMIT_REQ). */
static void pri_protect(struct env *v)
{
	pri_connect(v);
	pri_send_epoch(v, 0, true);
	pri_send_epoch(v, 1, true);
	RUN_UNTIL(v, v->acks == 2);
	assert_int_equal(v->last_ack, 1);
	pri_send_epoch(v, 2, false);
	/* what the standby QEMU must get: the committed epochs... */
	RUN_UNTIL(v, remus_buf_len(&v->qin) ==
		     remus_buf_len(&v->data[0]) + remus_buf_len(&v->data[1]));
	remus_test_run_for(v->loop, 20);
}

/* ---- hooks ------------------------------------------------------------ */

static void h_failover_done(void *opaque, const struct remus_failover_report *r)
{
	struct env *v = opaque;

	remus_tl_add(&v->tl, "hook:failover_done %d", r->rc);
	v->done_calls++;
	v->rep = *r;
}

static int h_commit(void *opaque, uint64_t epoch)
{
	struct env *v = opaque;

	remus_tl_add(&v->tl, "hook:commit %llu", (unsigned long long)epoch);
	v->commits++;
	return 0;
}

static void h_discard(void *opaque)
{
	struct env *v = opaque;

	remus_tl_add(&v->tl, "hook:discard");
	v->discards++;
}

/* ---- fixture ---------------------------------------------------------- */

/* Epochs of @part + @end pages of a @ram-page guest; @epoch_mem: the
 * standby's memory for epochs (0: its default), spill files in v->dir. */
static int setup_with(void **state, unsigned ram, unsigned part, unsigned end,
		      size_t epoch_mem)
{
	struct remus_test_migstream_opts o = { .ram_sid = RAM_SID, .ram_pages = ram,
					       .part_pages = part, .end_pages = end };
	struct env *v = calloc(1, sizeof(*v));
	struct remus_buf stream;
	int i;

	assert_non_null(v);
	v->in_fd = v->pfd = -1;
	snprintf(v->dir, sizeof(v->dir), "/tmp/remus-sby-test-XXXXXX");
	assert_non_null(mkdtemp(v->dir));
	snprintf(v->in_path, sizeof(v->in_path), "%s/in.sock", v->dir);
	snprintf(v->hook_log, sizeof(v->hook_log), "%s/hooks.log", v->dir);
	snprintf(v->fence_cmd, sizeof(v->fence_cmd),
		 "echo \"fence $REMUS_EVENT $REMUS_EPOCH\" >> %s", v->hook_log);
	snprintf(v->activate_cmd, sizeof(v->activate_cmd),
		 "echo \"activate $REMUS_EVENT $REMUS_EPOCH\" >> %s", v->hook_log);
	assert_int_equal(remus_loop_new(&v->loop), 0);
	remus_fake_qmp_pair(v->loop, qemu_cmd, v, &v->fq, &v->qmp);
	v->tl.qmp = v->fq;
	v->in_lfd = remus_unix_listen(v->in_path, 4);
	assert_true(v->in_lfd >= 0);
	assert_int_equal(remus_loop_add_fd(v->loop, v->in_lfd, REMUS_EV_READ, on_incoming_accept,
					   v), 0);
	remus_buf_init(&v->qin, 0);
	remus_buf_init(&v->expect, 0);
	remus_buf_init(&v->pin, REMUS_REPL_FRAME_MAX);
	remus_buf_init(&v->pout, 0);
	remus_repl_tx_init(&v->tx);
	remus_timer_init(&v->hb_timer, v->loop, on_primary_beat, v);
	remus_timer_arm(&v->hb_timer, 10);
	/* Epoch 0 starts the standby's stream; 1 and 2 continue it. */
	for (i = 0; i < 3; i++) {
		o.seed = (unsigned)i;
		remus_buf_init(&stream, 0);
		remus_buf_init(&v->data[i], 0);
		remus_buf_init(&v->dev[i], 0);
		remus_test_migstream_build(&o, &stream, &stream);
		assert_int_equal(remus_test_migstream_rewrite(remus_buf_data(&stream),
							      remus_buf_len(&stream), i == 0,
							      RAM_SID, &v->data[i], &v->dev[i]), 0);
		remus_buf_release(&stream);
	}
	v->cfg = (struct remus_standby_config){
		.listen_host = "127.0.0.1",
		.incoming_path = v->in_path,
		.vm_name = VM_NAME,
		.heartbeat_ms = 20,
		/* 500 ms: a loaded machine (two cores, TCG guests of other
		 * tests) must not lose the primary by accident */
		.heartbeat_miss = 25,
		.fence_cmd = v->fence_cmd,
		.activate_cmd = v->activate_cmd,
		.epoch_mem = epoch_mem,
		.spill_dir = v->dir,
	};
	*state = v;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 64, 3, 2, 0);
}

/* Epochs of about 740 KiB and 128 KiB for them in memory: every epoch
 * but the first (which goes to QEMU as it comes) spills. */
#define SMALL_EPOCH_MEM ((size_t)128 << 10)
static int setup_spill(void **state)
{
	return setup_with(state, 256, 120, 60, SMALL_EPOCH_MEM);
}

static int teardown(void **state)
{
	struct env *v = *state;
	int i;

	remus_standby_free(v->s);
	remus_qmp_free(v->qmp);
	remus_fake_qmp_free(v->fq);
	pri_close(v);
	in_close(v);
	remus_loop_del_fd(v->loop, v->in_lfd);
	close(v->in_lfd);
	remus_timer_disarm(&v->hb_timer);
	for (i = 0; i < 3; i++) {
		remus_buf_release(&v->data[i]);
		remus_buf_release(&v->dev[i]);
	}
	remus_buf_release(&v->qin);
	remus_buf_release(&v->expect);
	remus_buf_release(&v->pin);
	remus_buf_release(&v->pout);
	remus_repl_tx_release(&v->tx);
	remus_loop_free(v->loop);
	unlink(v->in_path);
	unlink(v->hook_log);
	rmdir(v->dir);
	free(v);
	return 0;
}

static void start(struct env *v)
{
	struct remus_standby_hooks h = {
		.failover_done = h_failover_done, .commit = h_commit, .discard = h_discard,
		.opaque = v,
	};

	assert_int_equal(remus_standby_start(v->loop, v->qmp, &v->cfg, &h, &v->s), 0);
	RUN_UNTIL(v, v->in_fd >= 0);
}

/* What the standby QEMU must have read at the end of a takeover: epochs
 * 0 and 1, then the tail made of epoch 1's device part. */
static void expect_takeover_stream(struct env *v)
{
	remus_buf_reset(&v->expect);
	assert_int_equal(remus_buf_append(&v->expect, remus_buf_data(&v->data[0]),
					  remus_buf_len(&v->data[0])), 0);
	assert_int_equal(remus_buf_append(&v->expect, remus_buf_data(&v->data[1]),
					  remus_buf_len(&v->data[1])), 0);
	v->committed_len = remus_buf_len(&v->expect);
	assert_int_equal(remus_migstream_build_tail(&v->expect, RAM_SID,
						    remus_buf_data(&v->dev[1]),
						    remus_buf_len(&v->dev[1])), 0);
}

/* The takeover ran, in order, from timeline entry @from on, and left the
 * guest running from epoch 1. */
static void assert_takeover(struct env *v, int from)
{
	int at;

	at = remus_tl_order(&v->tl, from, "hook:discard", "qemu:tail started", "qemu:tail loaded",
		      "qemu:completed", "qmp:query-status", "qmp:cont", "hook:failover_done 0",
		      NULL);
	/* announce-self goes out with the report (QEMU reads it after) */
	RUN_UNTIL(v, remus_tl_count(&v->tl, "qmp:announce-self") == 1);
	remus_tl_order(&v->tl, at - 1, "qmp:announce-self", NULL);
	/* fenced before the tail went out */
	assert_true(v->fenced_before_tail);
	/* query-migrate polled until completed (twice "active" after the
	 * load); resumed once */
	assert_true(remus_tl_count(&v->tl, "qmp:query-migrate") >= ACTIVE_POLLS + 1);
	assert_int_equal(remus_tl_count(&v->tl, "qmp:cont"), 1);
	/* the standby QEMU read exactly the committed epochs and the tail */
	assert_int_equal(remus_buf_len(&v->qin), remus_buf_len(&v->expect));
	assert_memory_equal(remus_buf_data(&v->qin), remus_buf_data(&v->expect),
			    remus_buf_len(&v->expect));
	/* the activation hook runs once the guest runs, with its epoch */
	assert_false(v->activated_before_cont);
	RUN_UNTIL(v, strstr(hook_log(v), "activate activated 1\n") != NULL);
	assert_string_equal(hook_log(v), "fence fence 1\nactivate activated 1\n");
	/* the report */
	assert_int_equal(v->done_calls, 1);
	assert_int_equal(v->rep.rc, 0);
	assert_int_equal(v->rep.epoch, 1);
	assert_int_equal(v->rep.discarded_bytes, remus_buf_len(&v->data[2]));
	assert_true(v->rep.fenced_ms > 0);
	assert_true(v->rep.fenced_ms <= v->rep.tail_written_ms);
	assert_true(v->rep.tail_written_ms <= v->rep.loaded_ms);
	assert_true(v->rep.loaded_ms <= v->rep.running_ms);
	assert_int_equal(remus_standby_get_state(v->s), REMUS_STANDBY_ACTIVE);
}

/* ---- tests ------------------------------------------------------------ */

/* The primary falls silent (hung, or cut off): takeover. */
static void test_takeover_when_heartbeats_stop(void **state)
{
	struct env *v = *state;
	struct remus_fake_qmp_cmd *c;
	struct json_object *caps;
	int at;

	start(v);
	/* Set up like the primary QEMU: migstream's capability list. */
	c = remus_fake_qmp_cmd(v->fq, 1);
	assert_string_equal(c->name, "migrate-set-capabilities");
	caps = remus_migstream_caps_args();
	assert_string_equal(json_object_to_json_string_ext(c->args, JSON_C_TO_STRING_PLAIN),
			    json_object_to_json_string_ext(caps, JSON_C_TO_STRING_PLAIN));
	json_object_put(caps);
	pri_protect(v);
	assert_int_equal(remus_standby_get_state(v->s), REMUS_STANDBY_RECEIVING);
	/* Each epoch is made durable (commit hook) before it is acknowledged. */
	remus_tl_order(&v->tl, 0, "hook:commit 0", "pri:ACK 0", NULL);
	remus_tl_order(&v->tl, 0, "hook:commit 1", "pri:ACK 1", NULL);
	assert_int_equal(v->done_calls, 0);
	expect_takeover_stream(v);
	at = (int)v->tl.n;
	remus_tl_add(&v->tl, "test:primary silent");
	v->beating = false;
	RUN_UNTIL(v, v->done_calls == 1);
	assert_takeover(v, at);
	assert_non_null(strstr(v->rep.reason, "no word from primary"));
	assert_true(v->rep.since_last_rx_ms >= 500);
	assert_string_equal(remus_fake_qmp_log(v->fq),
			    "migrate-set-capabilities;qom-get /machine;query-migrate;query-migrate;query-migrate;"
			    "query-status;cont;announce-self;");
	/* No second takeover, and no primary is accepted any more. */
	assert_int_equal(remus_standby_failover(v->s, "again"), -EALREADY);
}

/* The primary's link drops without CLOSE (its host died): takeover. */
static void test_takeover_when_link_drops(void **state)
{
	struct env *v = *state;
	int at;

	start(v);
	pri_protect(v);
	expect_takeover_stream(v);
	at = (int)v->tl.n;
	pri_close(v);
	RUN_UNTIL(v, v->done_calls == 1);
	assert_takeover(v, at);
	/* A FIN, or a RST when our heartbeats were still unread in the fake
	 * primary's socket as it closed it: either way no CLOSE came. */
	if (!strstr(v->rep.reason, "closed the connection without CLOSE") &&
	    !strstr(v->rep.reason, "Connection reset by peer"))
		fail_msg("takeover for another reason: %s", v->rep.reason);
}

/* Fencing fails: the primary may still run, so no takeover at all. */
static void test_fence_failure_stops_takeover(void **state)
{
	struct env *v = *state;

	snprintf(v->fence_cmd, sizeof(v->fence_cmd),
		 "echo \"fence $REMUS_EVENT $REMUS_EPOCH\" >> %s; exit 3", v->hook_log);
	start(v);
	pri_protect(v);
	v->beating = false;
	RUN_UNTIL(v, v->done_calls == 1);
	remus_test_run_for(v->loop, 100);
	assert_int_equal(v->rep.rc, -EPERM);
	assert_int_equal(remus_standby_get_state(v->s), REMUS_STANDBY_FAILED);
	assert_string_equal(hook_log(v), "fence fence 1\n");
	/* Nothing was written after the committed epochs, nothing resumed. */
	assert_int_equal(remus_buf_len(&v->qin),
			 remus_buf_len(&v->data[0]) + remus_buf_len(&v->data[1]));
	assert_string_equal(remus_fake_qmp_log(v->fq), "migrate-set-capabilities;qom-get /machine;");
}

/* The primary says goodbye (unprotect): the session ends, no takeover,
 * and the standby waits for the next primary. */
static void test_goodbye_is_no_takeover(void **state)
{
	struct env *v = *state;

	start(v);
	pri_protect(v);
	assert_int_equal(remus_repl_put_close(&v->pout, "unprotect"), 0);
	pri_flush(v);
	pri_close(v);
	RUN_UNTIL(v, remus_standby_get_state(v->s) == REMUS_STANDBY_WAITING);
	/* Much longer than the heartbeat limit. */
	remus_test_run_for(v->loop, 400);
	assert_int_equal(remus_standby_get_state(v->s), REMUS_STANDBY_WAITING);
	assert_int_equal(v->done_calls, 0);
	assert_true(v->discards >= 1);
	assert_string_equal(hook_log(v), "");
	assert_int_equal(remus_buf_len(&v->qin),
			 remus_buf_len(&v->data[0]) + remus_buf_len(&v->data[1]));
	assert_string_equal(remus_fake_qmp_log(v->fq), "migrate-set-capabilities;qom-get /machine;");
}

/* Without automatic failover a silent primary only ends the session; the
 * operator's failover request then takes over from the last commit. */
static void test_manual_failover(void **state)
{
	struct env *v = *state;
	int at;

	v->cfg.no_auto_failover = true;
	start(v);
	assert_int_equal(remus_standby_failover(v->s, "nothing yet"), -ENODATA);
	pri_protect(v);
	v->beating = false;
	RUN_UNTIL(v, remus_standby_get_state(v->s) == REMUS_STANDBY_WAITING);
	remus_test_run_for(v->loop, 100);
	assert_int_equal(v->done_calls, 0);
	assert_string_equal(remus_fake_qmp_log(v->fq), "migrate-set-capabilities;qom-get /machine;");
	assert_string_equal(hook_log(v), "");
	expect_takeover_stream(v);
	at = (int)v->tl.n;
	remus_tl_add(&v->tl, "test:failover requested");
	assert_int_equal(remus_standby_failover(v->s, "operator"), 0);
	RUN_UNTIL(v, v->done_calls == 1);
	/* The uncommitted epoch went with the session: nothing left to
	 * discard at the takeover, but the hook still runs. */
	at = remus_tl_order(&v->tl, at, "hook:discard", "qemu:tail started", "qemu:tail loaded",
		      "qemu:completed", "qmp:query-status", "qmp:cont", NULL);
	remus_tl_order(&v->tl, at, "hook:failover_done 0", NULL);
	RUN_UNTIL(v, remus_tl_count(&v->tl, "qmp:announce-self") == 1);
	remus_tl_order(&v->tl, at, "qmp:announce-self", NULL);
	assert_true(v->fenced_before_tail);
	assert_string_equal(v->rep.reason, "operator");
	assert_int_equal(v->rep.rc, 0);
	assert_int_equal(v->rep.epoch, 1);
	assert_int_equal(remus_buf_len(&v->qin), remus_buf_len(&v->expect));
	assert_memory_equal(remus_buf_data(&v->qin), remus_buf_data(&v->expect),
			    remus_buf_len(&v->expect));
	RUN_UNTIL(v, strstr(hook_log(v), "activate activated 1\n") != NULL);
	assert_int_equal(remus_standby_get_state(v->s), REMUS_STANDBY_ACTIVE);
	assert_int_equal(remus_standby_failover(v->s, "again"), -EALREADY);
}

/* ---- where epochs go: direct, spilled, cut (issue 14) ---------------- */

/* A number from the standby's status. */
static int64_t status_int(struct env *v, const char *key)
{
	struct json_object *o = remus_standby_status_json(v->s), *x;
	int64_t n;

	assert_non_null(o);
	if (!json_object_object_get_ex(o, key, &x))
		fail_msg("status has no %s", key);
	n = json_object_get_int64(x);
	json_object_put(o);
	return n;
}

/* @n bytes of @p are a stream a new standby QEMU can load (from the
 * file header) that ends between two sections. */
static void assert_clean_stream(const uint8_t *p, size_t n)
{
	struct remus_migstream *ps = NULL;
	struct remus_migstream_token t;
	enum remus_migstream_kind last = REMUS_MS_HEADER;
	int rc;

	assert_int_equal(remus_migstream_new(NULL, &ps), 0);
	assert_int_equal(remus_migstream_feed(ps, p, n), 0);
	while ((rc = remus_migstream_next(ps, &t)) == 1)
		last = t.kind;
	if (rc < 0)
		fail_msg("not a stream: %s", remus_migstream_error(ps));
	assert_int_equal(remus_migstream_offset(ps), n);
	assert_int_equal(last, REMUS_MS_FOOTER);
	remus_migstream_free(ps);
}

/* The first epoch of a new stream has nothing committed behind it: the
 * standby QEMU gets it as it arrives, before its COMMIT_REQ.  A later
 * epoch gets there only once it committed. */
static void test_first_epoch_goes_to_qemu_before_commit(void **state)
{
	struct env *v = *state;

	start(v);
	pri_connect(v);
	pri_send_epoch(v, 0, false);
	RUN_UNTIL(v, remus_buf_len(&v->qin) == remus_buf_len(&v->data[0]));
	assert_memory_equal(remus_buf_data(&v->qin), remus_buf_data(&v->data[0]),
			    remus_buf_len(&v->data[0]));
	assert_int_equal(v->acks, 0);
	pri_commit_epoch(v, 0);
	RUN_UNTIL(v, v->acks == 1);
	assert_int_equal(status_int(v, "epochs_direct"), 1);

	pri_send_epoch(v, 1, false);
	remus_test_run_for(v->loop, 100);
	assert_int_equal(remus_buf_len(&v->qin), remus_buf_len(&v->data[0]));
	pri_commit_epoch(v, 1);
	RUN_UNTIL(v, v->acks == 2);
	RUN_UNTIL(v, remus_buf_len(&v->qin) ==
		     remus_buf_len(&v->data[0]) + remus_buf_len(&v->data[1]));
	assert_memory_equal(remus_buf_data(&v->qin) + remus_buf_len(&v->data[0]),
			    remus_buf_data(&v->data[1]), remus_buf_len(&v->data[1]));
	assert_int_equal(status_int(v, "epochs_direct"), 1);
	assert_int_equal(status_int(v, "epochs_committed"), 2);
}

/* Epochs larger than --epoch-mem: memory up to it, the rest in spill
 * files, and the standby QEMU still gets every byte, tail included. */
static void test_spilled_epochs_take_over(void **state)
{
	struct env *v = *state;
	int at;

	start(v);
	pri_protect(v);
	/* epoch 1 committed through a spill file, epoch 2 waits in one */
	assert_true(remus_buf_len(&v->data[1]) > 4 * SMALL_EPOCH_MEM);
	assert_int_equal(status_int(v, "epochs_direct"), 1);
	assert_int_equal(status_int(v, "epochs_spilled"), 1);
	assert_true(status_int(v, "bytes_spilled_total") >=
		    (int64_t)(remus_buf_len(&v->data[1]) - SMALL_EPOCH_MEM));
	assert_true(status_int(v, "epoch_bytes_spilled") >=
		    (int64_t)(remus_buf_len(&v->data[2]) - SMALL_EPOCH_MEM));
	assert_true(status_int(v, "epoch_bytes_in_memory_peak") <= (int64_t)SMALL_EPOCH_MEM);
	assert_int_equal(status_int(v, "epoch_mem_limit"), SMALL_EPOCH_MEM);
	assert_int_equal(status_int(v, "memory_bound_kb"),
			 (SMALL_EPOCH_MEM + REMUS_STANDBY_MEM_OVERHEAD) >> 10);
	assert_true(status_int(v, "peak_rss_kb") > 0);
	expect_takeover_stream(v);
	at = (int)v->tl.n;
	pri_close(v);
	RUN_UNTIL(v, v->done_calls == 1);
	assert_takeover(v, at);
	/* the spilled epochs are gone from memory and disk */
	assert_int_equal(status_int(v, "epoch_bytes_in_memory"), 0);
	assert_int_equal(status_int(v, "epoch_bytes_spilled"), 0);
	assert_true(status_int(v, "epoch_bytes_in_memory_peak") <= (int64_t)SMALL_EPOCH_MEM);
}

/* The session dies in the middle of the first epoch: the standby QEMU
 * keeps the whole records it got, the open section is closed for it, and
 * the next session continues that stream, which can then be taken over. */
static void test_cut_first_epoch_is_resumed(void **state)
{
	struct env *v = *state;
	static const uint8_t close_sec[] = { 0, 0, 0, 0, 0, 0, 0, REMUS_RAM_FLAG_EOS,
					     REMUS_MIG_SECTION_FOOTER, 0, 0, 0, RAM_SID };
	size_t cut = remus_buf_len(&v->data[0]) - 3000, n, prefix;

	start(v);
	pri_connect(v);
	/* 3000 bytes before its end: inside the last page record */
	assert_int_equal(remus_repl_tx_begin(&v->tx, 0), 0);
	assert_int_equal(remus_repl_tx_data(&v->tx, &v->pout, remus_buf_data(&v->data[0]), cut),
			 0);
	pri_flush(v);
	RUN_UNTIL(v, remus_buf_len(&v->qin) > 0);
	remus_test_run_for(v->loop, 50);
	pri_close(v);
	RUN_UNTIL(v, remus_standby_get_state(v->s) == REMUS_STANDBY_WAITING);
	remus_test_run_for(v->loop, 50);
	assert_int_equal(v->done_calls, 0);
	assert_int_equal(status_int(v, "stream_cuts"), 1);

	/* data[0] up to its last whole record, then EOS and the footer */
	n = remus_buf_len(&v->qin);
	assert_true(n > sizeof(close_sec));
	prefix = n - sizeof(close_sec);
	assert_true(prefix < cut);
	assert_true(prefix > cut - 4096 - 64);
	assert_memory_equal(remus_buf_data(&v->qin), remus_buf_data(&v->data[0]), prefix);
	assert_memory_equal(remus_buf_data(&v->qin) + prefix, close_sec, sizeof(close_sec));
	assert_clean_stream(remus_buf_data(&v->qin), n);

	/* the next primary continues it with a full later epoch */
	pri_hello(v);
	assert_int_equal(v->ack.flags, REMUS_REPL_ACK_RESUME);
	assert_int_equal(v->ack.ram_sid, RAM_SID);
	assert_int_equal(v->ack.next_epoch, 1);
	/* still nothing committed: it goes to QEMU as it comes */
	pri_send_epoch(v, 1, false);
	RUN_UNTIL(v, remus_buf_len(&v->qin) == n + remus_buf_len(&v->data[1]));
	assert_int_equal(v->acks, 0);
	pri_commit_epoch(v, 1);
	RUN_UNTIL(v, v->acks == 1);
	assert_int_equal(v->last_ack, 1);
	assert_memory_equal(remus_buf_data(&v->qin) + n, remus_buf_data(&v->data[1]),
			    remus_buf_len(&v->data[1]));
	assert_int_equal(status_int(v, "committed_epoch"), 1);

	/* a takeover from it: the stream so far, then epoch 1's tail */
	remus_buf_reset(&v->expect);
	assert_int_equal(remus_buf_append(&v->expect, remus_buf_data(&v->qin),
					  remus_buf_len(&v->qin)), 0);
	v->committed_len = remus_buf_len(&v->expect);
	assert_int_equal(remus_migstream_build_tail(&v->expect, RAM_SID,
						    remus_buf_data(&v->dev[1]),
						    remus_buf_len(&v->dev[1])), 0);
	pri_close(v);
	RUN_UNTIL(v, v->done_calls == 1);
	assert_int_equal(v->rep.rc, 0);
	assert_int_equal(v->rep.epoch, 1);
	RUN_UNTIL(v, v->loaded);
	assert_int_equal(remus_buf_len(&v->qin), remus_buf_len(&v->expect));
	assert_memory_equal(remus_buf_data(&v->qin), remus_buf_data(&v->expect),
			    remus_buf_len(&v->expect));
	RUN_UNTIL(v, strstr(hook_log(v), "activate activated 1\n") != NULL);
}

/* Cut before the new stream's block list was complete: nothing reached
 * QEMU, so the next session starts a new stream. */
static void test_cut_before_block_list_starts_over(void **state)
{
	struct env *v = *state;

	start(v);
	pri_connect(v);
	assert_int_equal(remus_repl_tx_begin(&v->tx, 0), 0);
	assert_int_equal(remus_repl_tx_data(&v->tx, &v->pout, remus_buf_data(&v->data[0]), 30),
			 0);
	pri_flush(v);
	remus_test_run_for(v->loop, 50);
	pri_close(v);
	RUN_UNTIL(v, remus_standby_get_state(v->s) == REMUS_STANDBY_WAITING);
	remus_test_run_for(v->loop, 50);
	assert_int_equal(remus_buf_len(&v->qin), 0);
	pri_connect(v); /* flags 0, epoch 0 */
	pri_send_epoch(v, 0, true);
	RUN_UNTIL(v, v->acks == 1);
	RUN_UNTIL(v, remus_buf_len(&v->qin) == remus_buf_len(&v->data[0]));
	assert_memory_equal(remus_buf_data(&v->qin), remus_buf_data(&v->data[0]),
			    remus_buf_len(&v->data[0]));
}

/* The standby QEMU closes its incoming socket: it can take neither epochs
 * nor the takeover.  The standby stops and says what to do, to the
 * primary it has and to the next one. */
static void test_qemu_gone_stops_standby(void **state)
{
	struct env *v = *state;

	start(v);
	pri_connect(v);
	pri_send_epoch(v, 0, true);
	RUN_UNTIL(v, v->acks == 1);
	RUN_UNTIL(v, remus_buf_len(&v->qin) == remus_buf_len(&v->data[0]));
	in_close(v);
	RUN_UNTIL(v, remus_standby_get_state(v->s) == REMUS_STANDBY_FAILED);
	RUN_UNTIL(v, strstr(v->refused, "restart the standby QEMU") != NULL);
	assert_int_equal(v->done_calls, 0);
	assert_int_equal(remus_standby_failover(v->s, "operator"), -EALREADY);
	pri_close(v);

	v->refused[0] = '\0';
	v->pfd = remus_tcp_connect("127.0.0.1", remus_standby_port(v->s), false);
	assert_true(v->pfd >= 0);
	remus_repl_decoder_init(&v->dec);
	assert_int_equal(remus_loop_add_fd(v->loop, v->pfd, REMUS_EV_READ, on_primary, v), 0);
	RUN_UNTIL(v, strstr(v->refused, "restart the standby QEMU") != NULL);
}

/* The standby serves one primary: a second one that connects while a
 * session runs (here without TLS, so at once; with TLS once it has
 * authenticated) gets HELLO_REJECT naming the busy session and is
 * closed, and the first session goes on: its next epoch commits. */
static void test_second_primary_rejected(void **state)
{
	struct env *v = *state;
	struct remus_repl_decoder dec;
	struct remus_repl_msg m;
	struct remus_buf in;
	uint64_t end;
	int fd, rc = 0;
	ssize_t r;

	start(v);
	pri_protect(v);
	fd = remus_tcp_connect("127.0.0.1", remus_standby_port(v->s), false);
	assert_true(fd >= 0);
	remus_fd_set_nonblock(fd, true);
	remus_buf_init(&in, 1 << 16);
	end = remus_now_ms() + 5000;
	while ((r = remus_buf_read_fd(&in, fd, 4096)) != 0) {
		assert_true(r > 0 || r == -EAGAIN);
		assert_true(remus_now_ms() < end);
		remus_test_run_for(v->loop, 10);
	}
	remus_repl_decoder_init(&dec);
	rc = remus_repl_decode(&dec, &in, &m);
	assert_int_equal(rc, 1);
	assert_int_equal(m.type, REMUS_REPL_HELLO_REJECT);
	assert_non_null(memmem(m.u.reason.p, m.u.reason.len, "busy with primary", 17));
	remus_buf_release(&in);
	close(fd);
	assert_int_equal(remus_standby_get_state(v->s), REMUS_STANDBY_RECEIVING);
	pri_commit_epoch(v, 2);
	RUN_UNTIL(v, v->acks == 3);
	assert_int_equal(v->done_calls, 0);
}

/* A peer that breaks the protocol before anything committed (here its
 * first bytes are no frame) is disconnected with a log line naming it,
 * and changes nothing: no takeover, no byte to the standby QEMU, the
 * standby waits for a primary. */
static void test_bad_frame_before_commit_no_takeover(void **state)
{
	struct env *v = *state;
	uint8_t junk[64];
	char log[4096], b;
	FILE *f = tmpfile();
	enum remus_log_level level = remus_log_get_level();
	uint64_t end;
	size_t n;
	ssize_t r;
	int fd;

	assert_non_null(f);
	memset(junk, 0xa5, sizeof(junk));
	start(v);
	remus_log_set_stream(f);
	remus_log_set_level(REMUS_LOG_INFO);
	fd = remus_tcp_connect("127.0.0.1", remus_standby_port(v->s), false);
	assert_true(fd >= 0);
	assert_int_equal(remus_write_all(fd, junk, sizeof(junk)), 0);
	remus_fd_set_nonblock(fd, true);
	end = remus_now_ms() + WAIT_MS;
	while ((r = read(fd, &b, 1)) != 0) {   /* until the standby closes it */
		if (r < 0 && errno == ECONNRESET)
			break;
		assert_true(r > 0 || errno == EAGAIN);
		assert_true(remus_now_ms() < end);
		remus_test_run_for(v->loop, 10);
	}
	close(fd);
	/* Longer than the heartbeat limit: a lost primary would be taken over. */
	remus_test_run_for(v->loop, 400);
	remus_log_set_stream(stderr);
	remus_log_set_level(level);
	rewind(f);
	n = fread(log, 1, sizeof(log) - 1, f);
	log[n] = '\0';
	fclose(f);
	assert_non_null(strstr(log, "bad frame from primary 127.0.0.1:"));
	assert_non_null(strstr(log, "bad magic"));
	assert_non_null(strstr(log, "nothing committed to take over from"));
	assert_int_equal(remus_standby_get_state(v->s), REMUS_STANDBY_WAITING);
	assert_int_equal(v->done_calls, 0);
	assert_int_equal(remus_buf_len(&v->qin), 0);
	assert_string_equal(remus_fake_qmp_log(v->fq), "migrate-set-capabilities;qom-get /machine;");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_takeover_when_heartbeats_stop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_takeover_when_link_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_failure_stops_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_goodbye_is_no_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_frame_before_commit_no_takeover, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_manual_failover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_epoch_goes_to_qemu_before_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_spilled_epochs_take_over, setup_spill,
						teardown),
		cmocka_unit_test_setup_teardown(test_cut_first_epoch_is_resumed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_before_block_list_starts_over, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_qemu_gone_stops_standby, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_primary_rejected, setup, teardown),
	};

	/* The fakes write into sockets the standby may have closed: EPIPE,
	 * not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* Losing the primary is the point: errors only, unless REMUS_LOG
	 * asks for more. */
	if (!getenv("REMUS_LOG"))
		remus_log_set_level(REMUS_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
