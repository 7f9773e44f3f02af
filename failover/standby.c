// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The standby role (see standby.h for the protocol and the takeover).
 *
 * Three fds meet here: the listening socket, the link to the primary (one
 * session at a time; a second primary is refused), and the standby QEMU's
 * incoming socket, which failover/feed.h writes in bounded steps.  An
 * epoch's COMMIT_ACK goes out as soon as the epoch is complete and
 * verified in our store (memory, then a spill file): from then on it
 * survives the primary, which is what the primary's output commit needs.
 *
 * Where an epoch's data goes:
 *
 *   nothing committed yet      (direct) to the feed as each EPOCH_DATA is
 *                              accepted; the assembler only checks it
 *   a committed epoch exists   (spilled) to the assembler's store, within
 *                              the epoch budget (--epoch-mem), the rest in
 *                              a spill file; at commit the store is queued
 *                              on the feed, which streams it to QEMU
 *
 * Reading the link stops while the feed has enough to do
 * (remus_feed_wants_input()), so QEMU's speed bounds what we hold; the
 * primary's words then wait in the socket, which the liveness check
 * counts as heard (late_beats), never as silence.
 *
 * Takeover timeline (each step waits for the previous one):
 *
 *   lost --> fence cmd exits 0 --> qemu_out drained, tail queued -->
 *   tail written --> query-migrate "completed" --> cont --> running,
 *   announce-self, activation hook (not waited for)
 *
 * The state changes in set_state() only, checked against the table of
 * standby.h (common/state.h).
 */
#include "failover/standby.h"

#include <errno.h>
#include <json-c/json.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/child.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"
#include "common/spill.h"
#include "common/state.h"
#include "failover/feed.h"
#include "failover/ramflush.h"
#include "migstream/migstream.h"
#include "qmp/qmp.h"
#include "repl/link.h"
#include "repl/repl.h"
#include "tls/tls.h"

#define LOG "standby"
#define LOAD_TIMEOUT_MS 30000u
#define FENCE_TIMEOUT_MS 30000u

struct remus_standby {
	struct remus_loop *loop;
	struct remus_qmp *qmp;
	struct remus_standby_config cfg;
	char *incoming, *vm_name, *fence, *activate, *listen_host;
	char *peer_identity; /* owned; NULL: any primary the credentials trust */
	struct remus_standby_hooks hooks;
	enum remus_standby_state state;

	int listen_fd;
	uint16_t port;
	struct remus_tls_acceptor *acceptor; /* owned: TLS handshakes before a session */

	/* session with the primary (repl/link.h runs it) */
	struct remus_link link;
	char peer[64];
	struct remus_repl_assembler asmb;
	bool hello_ok;
	bool link_paused;         /* not reading: the feed has enough to do */
	uint32_t page_size;       /* the guest's, from HELLO */
	uint64_t sessions;

	/* the standby QEMU's incoming stream, and the epochs' memory */
	struct remus_feed *feed;
	struct remus_spill_budget budget; /* every epoch store's memory */
	char *spill_dir;
	uint64_t stream_end;      /* epoch number after the last one in the stream */

	/* what a takeover needs */
	bool have_commit;
	uint64_t committed_epoch;
	struct remus_spill last_dev; /* the last committed epoch's device part */
	uint64_t epochs_committed;
	uint64_t bytes_committed;
	uint64_t epochs_direct;   /* committed while passed on as they came */
	uint64_t epochs_spilled;  /* committed with a part in a spill file */
	uint64_t bytes_spilled;   /* written to spill files, all epochs */

	/* takeover */
	struct remus_failover_report rep;
	uint64_t t_lost_ns;
	bool tail_queued;
	bool qemu_gone;           /* the feed failed: QEMU's incoming stream is over */
	struct remus_child *fence_child; /* the fence command while it runs */
	struct remus_child *hook_child;  /* the activation hook while it runs */
	struct remus_timer step_timer;   /* polls the standby QEMU's load */
	uint64_t deadline_ms;

	/* the standby QEMU's RAM file, kept clean while receiving (ramflush.h) */
	struct remus_qmp_ram_backend ramb; /* the QMP chain that finds it */
	struct remus_ramflush *flush;      /* owned; NULL: not flushing */
	char flush_why[5120];              /* why not, or "" while asking */
};

static void failover_step(struct remus_standby *s);
static void start_failover(struct remus_standby *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- the state machine (standby.h draws it) ------------------------- */

static const char *const state_names[REMUS_STANDBY_NSTATES] = {
	[REMUS_STANDBY_WAITING] = "waiting",
	[REMUS_STANDBY_RECEIVING] = "receiving",
	[REMUS_STANDBY_FAILOVER] = "failover",
	[REMUS_STANDBY_ACTIVE] = "active",
	[REMUS_STANDBY_FAILED] = "failed",
};

#define TO(st) REMUS_STATE_BIT(REMUS_STANDBY_##st)
static const uint32_t state_allowed[REMUS_STANDBY_NSTATES] = {
	[REMUS_STANDBY_WAITING] = TO(RECEIVING) | TO(FAILOVER) | TO(FAILED),
	[REMUS_STANDBY_RECEIVING] = TO(WAITING) | TO(FAILOVER) | TO(FAILED),
	[REMUS_STANDBY_FAILOVER] = TO(ACTIVE) | TO(FAILED),
	[REMUS_STANDBY_ACTIVE] = 0,
	[REMUS_STANDBY_FAILED] = 0,
};
#undef TO

static const struct remus_state_machine machine = {
	.component = LOG,
	.names = state_names,
	.allowed = state_allowed,
	.nstates = REMUS_STANDBY_NSTATES,
};

/* calloc() starts a standby in WAITING. */
_Static_assert(REMUS_STANDBY_WAITING == 0, "a zeroed standby must be WAITING");

const char *remus_standby_state_name(enum remus_standby_state st)
{
	return remus_state_name(&machine, st);
}

bool remus_standby_state_transition_ok(enum remus_standby_state from,
				       enum remus_standby_state to)
{
	return remus_state_allowed(&machine, from, to);
}

static void refuse_on_internal_error(struct remus_standby *s, const char *msg);

/*
 * The one place the state changes.  Returns 0, or -EPROTO after an
 * illegal change in a release build (a debug build aborts).  What
 * happens then depends on where we are: WAITING or RECEIVING, the standby
 * refuses further epochs and goes FAILED (refuse_on_internal_error);
 * FAILOVER, the takeover goes on, since the primary is gone and stopping
 * now would leave the guest running nowhere; ACTIVE (the guest runs
 * here) and FAILED stay as they are.  The caller returns without going
 * on with the step it was in.
 */
static int set_state(struct remus_standby *s, enum remus_standby_state to, const char *why)
{
	enum remus_standby_state from = s->state;
	char msg[256];

	if (remus_state_change(&machine, from, to, why) == 0) {
		s->state = to;
		return 0;
	}
	if (from == REMUS_STANDBY_WAITING || from == REMUS_STANDBY_RECEIVING) {
		snprintf(msg, sizeof(msg), "internal error: illegal state change %s -> %s (%s)",
			 remus_standby_state_name(from), remus_standby_state_name(to), why);
		refuse_on_internal_error(s, msg);
	}
	return -EPROTO;
}

static double since_lost_ms(const struct remus_standby *s)
{
	return (double)(remus_now_ns() - s->t_lost_ns) / 1e6;
}

/* ---- QMP ------------------------------------------------------------- */

/* Submits @cmd (takes @args); @fn runs with the reply (opaque: @s) unless
 * the standby was freed meanwhile.  Returns 0, or -errno with @fn never
 * called. */
static int standby_qmp(struct remus_standby *s, const char *cmd, struct json_object *args,
		       remus_qmp_reply_cb *fn)
{
	return remus_qmp_execute_owned(s->qmp, s, cmd, args, -1, 0, fn, s);
}

/* ---- the link to the primary ----------------------------------------- */

/* An ack or a refusal goes out at once: the primary's output commit waits
 * for the ack.  A write error is reported by the link once the primary's
 * last words are read (repl/link.h). */
static void link_send_now(struct remus_standby *s)
{
	remus_link_send(&s->link);
}

/* Reading the link waits while the feed has enough to write (see the top
 * of this file); the feed's progress resumes it. */
static void link_throttle(struct remus_standby *s)
{
	bool pause = !remus_feed_wants_input(s->feed);

	if (pause != s->link_paused) {
		s->link_paused = pause;
		remus_link_pause_input(&s->link, pause);
	}
}

/* Ends the session.  A direct epoch in progress is cut cleanly: its whole
 * records stay in the standby QEMU's stream, which goes on after it. */
static void link_end(struct remus_standby *s)
{
	if (s->feed && remus_feed_direct_cut(s->feed))
		s->stream_end = s->asmb.next_epoch + 1;
	s->link_paused = false;
	remus_link_close(&s->link);
	s->hello_ok = false;
	if (s->state == REMUS_STANDBY_RECEIVING)
		set_state(s, REMUS_STANDBY_WAITING, "session ended");
}

/* The primary went away.  With a committed epoch that is a failover
 * unless the primary said goodbye. */
static void primary_lost(struct remus_standby *s, bool said_close, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void primary_lost(struct remus_standby *s, bool said_close, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (said_close || !s->have_commit || s->cfg.no_auto_failover) {
		bool direct = remus_feed_direct_open(s->feed);
		size_t dropped = remus_repl_assembler_discard(&s->asmb);

		if (s->hooks.discard)
			s->hooks.discard(s->hooks.opaque);
		remus_warn(LOG, "%s; session ended%s (%zu uncommitted bytes %s)", why,
			   said_close ? "" : !s->have_commit ? ", nothing committed to take over from"
							     : ", automatic failover is off",
			   dropped, direct ? "received, their whole records kept in the standby "
					     "QEMU's stream" : "dropped");
		link_end(s);
		return;
	}
	start_failover(s, "%s", why);
}

/* Epoch @ep is complete and verified: make it durable (disk, our store),
 * hand its data to the feed, keep its device part, acknowledge it. */
static void on_epoch(struct remus_standby *s, struct remus_repl_epoch *ep)
{
	bool direct = remus_feed_direct_open(s->feed);
	uint64_t data_len = direct ? s->asmb.data_len : remus_spill_total(&ep->data);
	uint64_t dev_len = remus_spill_total(&ep->device);
	uint64_t spilled = remus_spill_spilled(&ep->data) + remus_spill_spilled(&ep->device);
	uint8_t last = 0xff;
	int rc;

	/* A device part that does not end in EOF would fail the takeover
	 * that needs it: refuse it now, while the last one still works. */
	if (!remus_spill_last_byte(&ep->device, &last) || last != REMUS_MIG_EOF) {
		primary_lost(s, false, "epoch %llu from %s: its device part %s",
			     (unsigned long long)ep->epoch, s->peer,
			     dev_len ? "does not end in EOF" : "is empty");
		return;
	}
	if (direct) {
		if (remus_feed_direct_end(s->feed) < 0) {
			primary_lost(s, false, "epoch %llu from %s: %s",
				     (unsigned long long)ep->epoch, s->peer,
				     remus_feed_error(s->feed));
			return;
		}
		/* All of it is in the stream now, committed or not. */
		s->stream_end = ep->epoch + 1;
	}
	/* Disk first: if its epoch cannot be made durable, memory must not
	 * move on either. */
	if (s->hooks.commit && (rc = s->hooks.commit(s->hooks.opaque, ep->epoch)) < 0) {
		primary_lost(s, true, "epoch %llu: cannot commit its disk writes: %s",
			     (unsigned long long)ep->epoch, strerror(-rc));
		return;
	}
	if (!direct && (rc = remus_feed_push(s->feed, &ep->data)) < 0) {
		primary_lost(s, true, "epoch %llu: cannot queue it for the standby QEMU: %s",
			     (unsigned long long)ep->epoch, strerror(-rc));
		return;
	}
	/* Keep the device part of the newest committed epoch. */
	remus_spill_move(&s->last_dev, &ep->device);
	s->have_commit = true;
	s->committed_epoch = ep->epoch;
	s->stream_end = ep->epoch + 1;
	s->epochs_committed++;
	s->bytes_committed += data_len + dev_len;
	if (direct)
		s->epochs_direct++;
	if (spilled) {
		s->epochs_spilled++;
		s->bytes_spilled += spilled;
	}
	/* Later epochs must not touch the stream before their commit. */
	remus_repl_assembler_pass_data(&s->asmb, false);
	remus_repl_put_commit_ack(remus_link_out(&s->link), ep->epoch);
	link_send_now(s);
	remus_debug(LOG, "epoch %llu committed: %llu data + %llu device bytes, %s%llu spilled",
		    (unsigned long long)ep->epoch, (unsigned long long)data_len,
		    (unsigned long long)dev_len, direct ? "passed on as they came, " : "",
		    (unsigned long long)spilled);
}

static void handle_hello(struct remus_standby *s, const struct remus_repl_msg *m)
{
	struct remus_repl_hello want = { .version = REMUS_REPL_VERSION };
	struct remus_repl_hello_ack ack = { 0 };
	char reason[REMUS_REPL_REASON_MAX];
	enum remus_feed_stream stream;
	uint32_t sid = 0;
	int rc;

	/* Compare with ourselves: same version, and the VM name if we were
	 * given one.  RAM layout: the standby QEMU checks each block's size
	 * when the stream arrives and fails the load on a mismatch. */
	want = m->u.hello;
	want.version = REMUS_REPL_VERSION;
	if (s->vm_name) {
		want.vm_name.p = s->vm_name;
		want.vm_name.len = strlen(s->vm_name);
	}
	rc = remus_repl_hello_check(&want, &m->u.hello, reason, sizeof(reason));
	if (rc == 0 && s->state != REMUS_STANDBY_WAITING) {
		snprintf(reason, sizeof(reason), "standby is %s, not accepting a primary",
			 remus_standby_state_name(s->state));
		rc = -EBUSY;
	}
	stream = remus_feed_stream(s->feed, &sid);
	if (rc == 0 && stream == REMUS_FEED_BROKEN) {
		snprintf(reason, sizeof(reason), "the standby QEMU's incoming migration is over "
			 "(it closed its socket or could not be written to): restart the standby "
			 "QEMU with -incoming and then remusd standby");
		rc = -EPIPE;
	}
	if (rc < 0) {
		remus_err(LOG, "refusing primary %s: %s", s->peer, reason);
		remus_repl_put_reject(remus_link_out(&s->link), reason);
		link_send_now(s);
		link_end(s);
		return;
	}
	/* A QEMU that holds a stream continues it: the primary sends a full
	 * later epoch numbered after the last one in it.  That holds for a
	 * stream cut before its first commit too (failover/feed.h). */
	ack.version = REMUS_REPL_VERSION;
	if (stream == REMUS_FEED_RESUMABLE) {
		ack.flags = REMUS_REPL_ACK_RESUME;
		ack.ram_sid = sid;
		ack.next_epoch = s->stream_end;
	}
	remus_repl_assembler_release(&s->asmb);
	remus_repl_assembler_init(&s->asmb, ack.next_epoch, 0);
	remus_repl_assembler_store(&s->asmb, &s->budget, s->spill_dir);
	s->page_size = m->u.hello.page_size;
	/* Nothing committed, nothing to protect: the standby QEMU may load
	 * the epochs as they come until one commits. */
	remus_repl_assembler_pass_data(&s->asmb, !s->have_commit);
	if (s->hooks.discard)
		s->hooks.discard(s->hooks.opaque);
	if (s->hooks.session_open && (rc = s->hooks.session_open(s->hooks.opaque,
								 remus_link_out(&s->link))) < 0) {
		snprintf(reason, sizeof(reason), "the standby cannot describe its disks: %s",
			 strerror(-rc));
		remus_err(LOG, "refusing primary %s: %s", s->peer, reason);
		remus_repl_put_reject(remus_link_out(&s->link), reason);
		link_send_now(s);
		link_end(s);
		return;
	}
	if (set_state(s, REMUS_STANDBY_RECEIVING, "HELLO accepted") < 0)
		return;
	s->hello_ok = true;
	s->sessions++;
	remus_repl_encode(remus_link_out(&s->link), &(struct remus_repl_msg){
		.type = REMUS_REPL_HELLO_ACK, .u.ack = ack });
	link_send_now(s);
	if (stream == REMUS_FEED_RESUMABLE)
		remus_info(LOG, "primary %s protects VM '%.*s'; session %llu, resuming the stream "
			   "at epoch %llu%s", s->peer, (int)m->u.hello.vm_name.len,
			   m->u.hello.vm_name.p, (unsigned long long)s->sessions,
			   (unsigned long long)ack.next_epoch,
			   s->have_commit ? "" : " (nothing committed yet: loaded as it comes)");
	else
		remus_info(LOG, "primary %s protects VM '%.*s'; session %llu, new stream "
			   "(its first epoch is loaded as it comes)", s->peer,
			   (int)m->u.hello.vm_name.len, m->u.hello.vm_name.p,
			   (unsigned long long)s->sessions);
}

/* An epoch could not be kept here (memory, the spill file, ...): that is
 * no reason to take over from a primary that is fine.  It is told why
 * (CLOSE) and the session ends; it will connect again.  @err: -errno to
 * add to @what, or 0. */
static void epoch_failed_here(struct remus_standby *s, uint64_t epoch, const char *what,
			      int err)
{
	char reason[REMUS_REPL_REASON_MAX];

	snprintf(reason, sizeof(reason), "standby cannot keep epoch %llu: %s%s%s",
		 (unsigned long long)epoch, what, err ? ": " : "", err ? strerror(-err) : "");
	if (remus_repl_put_close(remus_link_out(&s->link), reason) == 0)
		link_send_now(s);
	primary_lost(s, true, "%s", reason);
}

static void handle_msg(struct remus_standby *s, const struct remus_repl_msg *m)
{
	struct remus_repl_epoch ep;
	int rc, rc2;

	if (!s->hello_ok && m->type != REMUS_REPL_HELLO) {
		primary_lost(s, true, "primary %s sent %s before HELLO", s->peer,
			     remus_repl_type_name(m->type));
		return;
	}
	switch (m->type) {
	case REMUS_REPL_HELLO:
		if (s->hello_ok) {
			primary_lost(s, false, "primary %s sent a second HELLO", s->peer);
			return;
		}
		handle_hello(s, m);
		return;
	case REMUS_REPL_EPOCH_DISK:
		rc = remus_repl_assembler_feed(&s->asmb, m, NULL);
		if (rc < 0) {
			primary_lost(s, false, "epoch from primary %s rejected: %s", s->peer,
				     remus_repl_assembler_error(&s->asmb));
			return;
		}
		if (!s->hooks.disk_op) {
			primary_lost(s, true, "primary %s replicates a disk, but this standby "
				     "serves none: start it with the same --disk options", s->peer);
			return;
		}
		rc = s->hooks.disk_op(s->hooks.opaque, m);
		if (rc < 0)
			primary_lost(s, true, "epoch %llu: cannot keep a disk write from %s: %s",
				     (unsigned long long)m->seq, s->peer, strerror(-rc));
		return;
	case REMUS_REPL_EPOCH_DATA:
	case REMUS_REPL_EPOCH_DEVICE:
	case REMUS_REPL_COMMIT_REQ:
		remus_repl_epoch_init(&ep);
		rc = remus_repl_assembler_feed(&s->asmb, m, &ep);
		/* A passing epoch's data goes to the standby QEMU as it comes
		 * (an epoch without data still opens and ends its stream part). */
		if (rc >= 0 && s->asmb.passing && !remus_feed_direct_open(s->feed) &&
		    (rc2 = remus_feed_direct_begin(s->feed, s->page_size)) < 0) {
			remus_repl_epoch_release(&ep);
			epoch_failed_here(s, m->seq, "cannot pass it to the standby QEMU", rc2);
			return;
		}
		if (rc == 0 && m->type == REMUS_REPL_EPOCH_DATA && s->asmb.passing &&
		    remus_feed_direct_data(s->feed, m->u.chunk.p, m->u.chunk.len) < 0) {
			remus_repl_epoch_release(&ep);
			primary_lost(s, false, "epoch %llu from primary %s is not a stream the "
				     "standby QEMU can take: %s", (unsigned long long)m->seq,
				     s->peer, remus_feed_error(s->feed));
			return;
		}
		if (rc == 1)
			on_epoch(s, &ep);
		remus_repl_epoch_release(&ep);
		if (rc < 0 && remus_repl_assembler_local_error(&s->asmb))
			epoch_failed_here(s, m->seq, remus_repl_assembler_error(&s->asmb), 0);
		else if (rc < 0)
			primary_lost(s, false, "epoch from primary %s rejected: %s", s->peer,
				     remus_repl_assembler_error(&s->asmb));
		else if (remus_link_is_open(&s->link))
			link_throttle(s);
		return;
	case REMUS_REPL_HEARTBEAT:
		return;
	case REMUS_REPL_CLOSE:
		primary_lost(s, true, "primary %s closed the link: %.*s", s->peer,
			     (int)m->u.reason.len, m->u.reason.p);
		return;
	default:
		primary_lost(s, false, "primary %s sent an unexpected %s", s->peer,
			     remus_repl_type_name(m->type));
		return;
	}
}

/* ---- the link's callbacks (repl/link.h) ------------------------------ */

static void on_link_msg(void *opaque, const struct remus_repl_msg *m)
{
	handle_msg(opaque, m);
}

/* Whatever ended the link without CLOSE (EOF, an error, a bad frame,
 * silence) may be the primary's death: a failover if anything was
 * committed.  Silence found only unread is not silence (the link counts
 * it in late_beats instead). */
static void on_link_lost(void *opaque, enum remus_link_loss why, const char *reason)
{
	primary_lost(opaque, false, "%s", reason);
}

static const struct remus_link_cbs link_cbs = {
	.msg = on_link_msg,
	.lost = on_link_lost,
};

/* Sends @reason as a HELLO_REJECT and closes the connection: @c and
 * @tls taken. */
static void reject_primary(int c, struct remus_tls *tls, const char *reason)
{
	struct remus_buf b;

	remus_buf_init(&b, 0);
	if (remus_repl_put_reject(&b, reason) == 0) {
		if (tls)
			(void)remus_tls_write(tls, &b);
		else
			(void)!write(c, remus_buf_data(&b), remus_buf_len(&b));
	}
	remus_buf_release(&b);
	remus_tls_free(tls);
	close(c);
}

/* A primary that authenticated (tls/tls.h's acceptor; at once without
 * TLS): @c and @tls taken.  Only now may it take the one session. */
static void on_accept(void *opaque, int c, struct remus_tls *tls, const char *addr)
{
	struct remus_standby *s = opaque;
	const char *ident = tls ? remus_tls_peer_identity(tls) : "";
	char label[96], reason[REMUS_REPL_REASON_MAX];
	int rc;

	/* Authenticated is not enough when the standby belongs to one
	 * primary (hostd passes its record's owner): another host the same
	 * CA signed for is refused before it can hold the one session, send
	 * an epoch, or end a session that committed one (a takeover). */
	if (s->peer_identity && strcmp(ident, s->peer_identity) != 0) {
		snprintf(reason, sizeof(reason), "'%.150s' is not the primary this standby is for "
			 "('%.150s'); nothing changed", *ident ? ident : "(no identity)",
			 s->peer_identity);
		remus_err(LOG, "refusing primary %s: %s", addr, reason);
		reject_primary(c, tls, reason);
		return;
	}
	if (remus_link_is_open(&s->link) || s->state == REMUS_STANDBY_FAILOVER ||
	    s->state == REMUS_STANDBY_ACTIVE || s->state == REMUS_STANDBY_FAILED) {
		if (remus_link_is_open(&s->link))
			snprintf(reason, sizeof(reason), "standby is busy with primary %s", s->peer);
		else if (s->qemu_gone && s->state == REMUS_STANDBY_FAILED)
			snprintf(reason, sizeof(reason), "%s", s->rep.reason);
		else
			snprintf(reason, sizeof(reason), "standby is %s, not accepting a primary",
				 remus_standby_state_name(s->state));
		remus_warn(LOG, "refusing primary %s: %s", addr, reason);
		reject_primary(c, tls, reason);
		return;
	}
	snprintf(s->peer, sizeof(s->peer), "%s", addr);
	snprintf(label, sizeof(label), "primary %s", s->peer);
	rc = remus_link_attach_tls(&s->link, c, tls, label);
	if (rc < 0) {
		/* As if the primary had closed at once: nothing was committed
		 * in this session, so it ends without a takeover. */
		remus_err(LOG, "cannot watch the link to primary %s: %s; closing it", s->peer,
			  strerror(-rc));
		return;
	}
	remus_info(LOG, "primary connected from %s%s", s->peer,
		   remus_link_is_tls(&s->link) ? " (TLS)" : "");
}

/* No more primaries: the handshakes under way are dropped too. */
static void stop_listening(struct remus_standby *s)
{
	remus_tls_acceptor_free(s->acceptor);
	s->acceptor = NULL;
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
	}
}

/* ---- takeover, in the order it runs ---------------------------------- */

static void run_activate_hook(struct remus_standby *s);

static void failover_done(struct remus_standby *s, int rc)
{
	remus_timer_disarm(&s->step_timer);
	s->rep.rc = rc;
	if (set_state(s, rc == 0 ? REMUS_STANDBY_ACTIVE : REMUS_STANDBY_FAILED,
		      rc == 0 ? "guest running" : "takeover failed") < 0)
		return;
	if (rc == 0) {
		remus_info(LOG, "FAILOVER done: guest running from epoch %llu; lost->fenced %.1f ms, "
			   "->tail written %.1f ms, ->loaded %.1f ms, ->running %.1f ms "
			   "(last word from the primary %.1f ms before it was declared lost)",
			   (unsigned long long)s->rep.epoch, s->rep.fenced_ms, s->rep.tail_written_ms,
			   s->rep.loaded_ms, s->rep.running_ms, s->rep.since_last_rx_ms);
		run_activate_hook(s);
	} else {
		remus_err(LOG, "FAILOVER failed: %s (after %.1f ms)", strerror(-rc), since_lost_ms(s));
	}
	if (s->hooks.failover_done)
		s->hooks.failover_done(s->hooks.opaque, &s->rep);
}

static void on_announced(struct remus_qmp *q, int rc, struct json_object *ret,
		          const char *err, void *opaque)
{
	if (rc < 0)
		remus_warn(LOG, "announce-self: %s", err);
}

static void on_running(struct remus_qmp *q, int rc, struct json_object *ret,
		        const char *err, void *opaque)
{
	struct remus_standby *s = opaque;
	struct json_object *a;

	if (rc < 0) {
		remus_err(LOG, "cont on the standby QEMU: %s", err);
		failover_done(s, rc);
		return;
	}
	s->rep.running_ms = since_lost_ms(s);
	/* Let switches learn the guest's MACs on this host. */
	a = json_object_new_object();
	json_object_object_add(a, "initial", json_object_new_int(50));
	json_object_object_add(a, "max", json_object_new_int(550));
	json_object_object_add(a, "rounds", json_object_new_int(5));
	json_object_object_add(a, "step", json_object_new_int(100));
	standby_qmp(s, "announce-self", a, on_announced);
	failover_done(s, 0);
}

static void on_status(struct remus_qmp *q, int rc, struct json_object *ret,
		       const char *err, void *opaque)
{
	struct remus_standby *s = opaque;
	struct json_object *st;

	if (rc < 0) {
		failover_done(s, rc);
		return;
	}
	/* Device state from a completed migration records 'paused'. */
	if (json_object_object_get_ex(ret, "status", &st) &&
	    strcmp(json_object_get_string(st), "running") == 0) {
		on_running(q, 0, NULL, NULL, s);
		return;
	}
	if (standby_qmp(s, "cont", NULL, on_running) < 0)
		failover_done(s, -EIO);
}

static void poll_load(struct remus_loop *loop, void *opaque);

static void on_load_status(struct remus_qmp *q, int rc, struct json_object *ret,
		            const char *err, void *opaque)
{
	struct remus_standby *s = opaque;
	struct json_object *st;
	const char *status = "";

	if (rc < 0) {
		remus_err(LOG, "query-migrate on the standby QEMU: %s", err);
		failover_done(s, rc);
		return;
	}
	if (json_object_object_get_ex(ret, "status", &st))
		status = json_object_get_string(st);
	if (strcmp(status, "completed") == 0) {
		s->rep.loaded_ms = since_lost_ms(s);
		if (standby_qmp(s, "query-status", NULL, on_status) < 0)
			failover_done(s, -EIO);
		return;
	}
	if (strcmp(status, "failed") == 0 || remus_now_ms() > s->deadline_ms) {
		struct json_object *d = NULL;

		json_object_object_get_ex(ret, "error-desc", &d);
		remus_err(LOG, "the standby QEMU did not load the checkpoint: status '%s'%s%s",
			  status, d ? ": " : "", d ? json_object_get_string(d) : "");
		failover_done(s, -EIO);
		return;
	}
	remus_timer_arm(&s->step_timer, 1);
}

static void poll_load(struct remus_loop *loop, void *opaque)
{
	struct remus_standby *s = opaque;

	if (standby_qmp(s, "query-migrate", NULL, on_load_status) < 0)
		failover_done(s, -EIO);
}

/* Runs @cmd with /bin/sh -c, REMUS_EVENT=@event and REMUS_EPOCH set; its
 * output goes where ours goes.  Returns 0 with *@out, or -errno. */
static int spawn_hook(struct remus_standby *s, const char *cmd, const char *event,
		      unsigned timeout_ms, remus_child_done_cb *done, struct remus_child **out)
{
	char ev[64], ep[64];
	const char *env[] = { ev, ep, NULL };
	struct remus_child_opts o = { .shell = cmd, .env = env, .timeout_ms = timeout_ms };

	snprintf(ev, sizeof(ev), "REMUS_EVENT=%s", event);
	snprintf(ep, sizeof(ep), "REMUS_EPOCH=%llu", (unsigned long long)s->committed_epoch);
	return remus_child_spawn(s->loop, &o, done, s, out);
}

static void on_fence_done(void *opaque, int status)
{
	struct remus_standby *s = opaque;

	remus_child_free(s->fence_child);
	s->fence_child = NULL;
	if (status == -ETIMEDOUT) {
		remus_err(LOG, "fence command '%s' timed out after %u ms; NOT taking over",
			  s->fence, FENCE_TIMEOUT_MS);
		failover_done(s, -ETIMEDOUT);
		return;
	}
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		remus_err(LOG, "fence command '%s' failed (status %d); NOT taking over: the "
			  "primary may still run", s->fence, status < 0 ? -1 : status);
		failover_done(s, -EPERM);
		return;
	}
	s->rep.fenced_ms = since_lost_ms(s);
	failover_step(s);
}

static void on_hook_done(void *opaque, int status)
{
	struct remus_standby *s = opaque;

	remus_child_free(s->hook_child);
	s->hook_child = NULL;
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		remus_warn(LOG, "activation hook '%s' failed (status %d)", s->activate, status);
	else
		remus_info(LOG, "activation hook '%s' done", s->activate);
}

/* The guest already runs: the hook (move a floating IP, ...) is not
 * waited for, and has no timeout. */
static void run_activate_hook(struct remus_standby *s)
{
	int rc;

	if (!s->activate)
		return;
	rc = spawn_hook(s, s->activate, "activated", 0, on_hook_done, &s->hook_child);
	if (rc < 0) {
		remus_err(LOG, "cannot run the activation hook '%s': %s", s->activate,
			  strerror(-rc));
		return;
	}
	remus_info(LOG, "activation hook '%s' started (pid %d)", s->activate,
		   (int)remus_child_pid(s->hook_child));
}

/* Runs the next step of the takeover that can run now. */
static void failover_step(struct remus_standby *s)
{
	struct remus_buf tail;
	uint32_t ram_sid = 0;
	int rc;

	if (s->state != REMUS_STANDBY_FAILOVER || remus_timer_armed(&s->step_timer) ||
	    s->fence_child)
		return;
	if (s->rep.rc < 0) {
		failover_done(s, s->rep.rc);
		return;
	}
	/* A commit means a stream with a RAM section, and its device part
	 * was checked to end in EOF. */
	if (remus_feed_stream(s->feed, &ram_sid) != REMUS_FEED_RESUMABLE) {
		remus_err(LOG, "the standby QEMU's stream cannot take the failover tail");
		failover_done(s, -EPIPE);
		return;
	}
	if (s->fence && s->rep.fenced_ms == 0) {
		rc = spawn_hook(s, s->fence, "fence", FENCE_TIMEOUT_MS, on_fence_done,
				&s->fence_child);
		if (rc < 0) {
			remus_err(LOG, "cannot run the fence command '%s': %s; NOT taking over",
				  s->fence, strerror(-rc));
			failover_done(s, -ECHILD);
		}
		return;
	}
	if (!s->tail_queued) {
		/* Every committed epoch reaches QEMU before the tail. */
		if (!remus_feed_connected(s->feed) || !remus_feed_idle(s->feed))
			return; /* the feed's progress calls back */
		remus_buf_init(&tail, 0);
		rc = remus_migstream_build_tail_open(&tail, ram_sid);
		if (rc == 0)
			rc = remus_feed_push_bytes(s->feed, remus_buf_data(&tail), remus_buf_len(&tail));
		if (rc == 0)
			rc = remus_feed_push(s->feed, &s->last_dev);
		remus_buf_reset(&tail);
		if (rc == 0)
			rc = remus_migstream_build_tail_close(&tail);
		if (rc == 0)
			rc = remus_feed_push_bytes(s->feed, remus_buf_data(&tail), remus_buf_len(&tail));
		remus_buf_release(&tail);
		if (rc < 0) {
			failover_done(s, rc);
			return;
		}
		remus_feed_expect_close(s->feed);
		s->tail_queued = true;
		return;
	}
	if (!remus_feed_idle(s->feed))
		return;
	if (s->rep.tail_written_ms == 0) {
		s->rep.tail_written_ms = since_lost_ms(s);
		s->deadline_ms = remus_now_ms() + LOAD_TIMEOUT_MS;
		poll_load(s->loop, s);
	}
}

static void start_failover(struct remus_standby *s, const char *fmt, ...)
{
	va_list ap;

	if (s->state == REMUS_STANDBY_FAILOVER || s->state == REMUS_STANDBY_ACTIVE ||
	    s->state == REMUS_STANDBY_FAILED)
		return;
	s->t_lost_ns = remus_now_ns();
	memset(&s->rep, 0, sizeof(s->rep));
	va_start(ap, fmt);
	vsnprintf(s->rep.reason, sizeof(s->rep.reason), fmt, ap);
	va_end(ap);
	s->rep.since_last_rx_ms = (double)remus_link_silence_ms(&s->link);
	s->rep.discarded_bytes = remus_repl_assembler_discard(&s->asmb);
	if (s->hooks.discard)
		s->hooks.discard(s->hooks.opaque);
	s->rep.epoch = s->committed_epoch;
	if (set_state(s, REMUS_STANDBY_FAILOVER, s->rep.reason) < 0)
		return;
	/* From here QEMU's own msync at the end of the load writes back what
	 * the last flush left; a flush of ours beside it would only compete.
	 * Stopping never waits for a flush in progress. */
	remus_ramflush_stop(s->flush);
	link_end(s);
	stop_listening(s);
	remus_warn(LOG, "FAILOVER: %s; taking over from committed epoch %llu (%llu uncommitted "
		   "bytes dropped)", s->rep.reason, (unsigned long long)s->committed_epoch,
		   (unsigned long long)s->rep.discarded_bytes);
	failover_step(s);
}

int remus_standby_failover(struct remus_standby *s, const char *reason)
{
	if (s->state == REMUS_STANDBY_FAILOVER || s->state == REMUS_STANDBY_ACTIVE ||
	    s->state == REMUS_STANDBY_FAILED)
		return -EALREADY;
	if (!s->have_commit)
		return -ENODATA;
	start_failover(s, "%s", reason ? reason : "failover requested");
	return 0;
}

/*
 * An illegal state change while waiting or receiving (release build):
 * this standby no longer knows what it holds, so it takes no further
 * epoch and never takes over.  The uncommitted epoch is dropped, the
 * primary is told CLOSE (it keeps its guest running, unprotected, and
 * gets a refusal when it reconnects), and `status` reports FAILED with
 * @msg (borrowed) as the reason.
 */
static void refuse_on_internal_error(struct remus_standby *s, const char *msg)
{
	remus_repl_assembler_discard(&s->asmb);
	if (s->hooks.discard)
		s->hooks.discard(s->hooks.opaque);
	snprintf(s->rep.reason, sizeof(s->rep.reason), "%s", msg);
	s->rep.rc = -EPROTO;
	if (set_state(s, REMUS_STANDBY_FAILED, "refusing epochs after an internal error") < 0)
		return;
	if (remus_link_is_open(&s->link) && remus_repl_put_close(remus_link_out(&s->link), msg) == 0)
		link_send_now(s);
	link_end(s);
	remus_err(LOG, "%s: this standby takes no further epoch and will not take over; "
		  "restart it", msg);
}

/* ---- the standby QEMU's RAM file ------------------------------------ */

/* The chain of qmp.h found where the standby QEMU's RAM is.  A shared file
 * gets the flusher; anything else needs none, and status says why. */
static void on_ram_backend(struct remus_qmp_ram_backend *b, void *opaque)
{
	struct remus_standby *s = opaque;
	int rc;

	if (b->rc < 0)
		snprintf(s->flush_why, sizeof(s->flush_why), "cannot ask the standby QEMU "
			 "where its RAM is: %s", b->err);
	else if (!b->id[0])
		snprintf(s->flush_why, sizeof(s->flush_why), "guest RAM is not one memory "
			 "backend (%s)", b->err);
	else if (!b->mem_path[0])
		snprintf(s->flush_why, sizeof(s->flush_why), "memory backend '%s' has no file "
			 "(anonymous or memfd RAM): nothing to flush", b->id);
	else if (!b->share)
		snprintf(s->flush_why, sizeof(s->flush_why), "memory backend '%s' maps %s "
			 "share=off: its pages never reach the file", b->id, b->mem_path);
	else if (s->state == REMUS_STANDBY_WAITING || s->state == REMUS_STANDBY_RECEIVING) {
		rc = remus_ramflush_start(b->mem_path, 0, &s->flush);
		if (rc < 0) {
			snprintf(s->flush_why, sizeof(s->flush_why), "cannot open %s: %s",
				 b->mem_path, strerror(-rc));
			remus_warn(LOG, "standby QEMU's RAM file %s (memory backend '%s') cannot "
				   "be flushed: %s; a takeover will write back its dirty pages "
				   "first (slower failover)", b->mem_path, b->id, strerror(-rc));
			return;
		}
		remus_info(LOG, "standby QEMU's RAM is the file %s (memory backend '%s', "
			   "share=on): flushed every %u ms while receiving, so a takeover "
			   "does not write it back", b->mem_path, b->id, REMUS_RAMFLUSH_EVERY_MS);
		return;
	} else
		snprintf(s->flush_why, sizeof(s->flush_why), "taken over before the RAM file "
			 "%s was found", b->mem_path);
	remus_info(LOG, "standby QEMU's RAM is not flushed: %s", s->flush_why);
}

/* ---- start, free, status --------------------------------------------- */

static void on_caps(struct remus_qmp *q, int rc, struct json_object *ret,
		     const char *err, void *opaque)
{
	struct remus_standby *s = opaque;

	if (rc < 0) {
		remus_err(LOG, "standby QEMU: migrate-set-capabilities failed: %s (QEMU >= 8.1 "
			  "started with -incoming is needed)", err);
		if (s->state == REMUS_STANDBY_WAITING || s->state == REMUS_STANDBY_RECEIVING)
			set_state(s, REMUS_STANDBY_FAILED, "migration capabilities refused");
		return;
	}
	remus_feed_connect(s->feed);
}

static void on_feed_progress(void *opaque)
{
	struct remus_standby *s = opaque;

	if (s->link_paused && remus_link_is_open(&s->link))
		link_throttle(s);
	if (s->state == REMUS_STANDBY_FAILOVER)
		failover_step(s);
}

/* The standby QEMU's incoming migration is over: it can neither take
 * another epoch nor be taken over, so this standby stops (FAILED) and
 * says what to do, to the log, to status and to every primary. */
static void on_feed_failed(void *opaque, const char *what, int err)
{
	struct remus_standby *s = opaque;

	remus_err(LOG, "standby QEMU incoming socket %s: %s: %s", s->incoming, what,
		  strerror(err));
	s->qemu_gone = true;
	if (s->state == REMUS_STANDBY_FAILOVER) {
		s->rep.rc = -err;
		failover_step(s);
		return;
	}
	if (s->state == REMUS_STANDBY_ACTIVE || s->state == REMUS_STANDBY_FAILED)
		return;
	snprintf(s->rep.reason, sizeof(s->rep.reason), "the standby QEMU's incoming migration "
		 "is over (%s: %s): restart the standby QEMU with -incoming, then remusd standby",
		 what, strerror(err));
	s->rep.rc = -EPIPE;
	remus_repl_assembler_discard(&s->asmb);
	if (s->hooks.discard)
		s->hooks.discard(s->hooks.opaque);
	if (remus_link_is_open(&s->link) && remus_repl_put_close(remus_link_out(&s->link), s->rep.reason) == 0)
		link_send_now(s);
	link_end(s);
	if (set_state(s, REMUS_STANDBY_FAILED, "the standby QEMU's incoming migration is over") < 0)
		return;
	remus_err(LOG, "%s; this standby takes no epoch and cannot take over", s->rep.reason);
}

static char *dup_opt(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

int remus_standby_start(struct remus_loop *loop, struct remus_qmp *qmp,
			const struct remus_standby_config *cfg,
			const struct remus_standby_hooks *hooks,
			struct remus_standby **out)
{
	struct remus_standby *s;
	bool oom = false;
	int rc;

	if (!cfg->incoming_path)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->qmp = qmp;
	remus_timer_init(&s->step_timer, loop, poll_load, s);
	s->cfg = *cfg;
	if (!s->cfg.heartbeat_ms)
		s->cfg.heartbeat_ms = 100;
	if (!s->cfg.heartbeat_miss)
		s->cfg.heartbeat_miss = 5;
	if (hooks)
		s->hooks = *hooks;
	s->listen_fd = -1;
	s->budget.limit = cfg->epoch_mem ? cfg->epoch_mem : REMUS_STANDBY_EPOCH_MEM_DEFAULT;
	s->cfg.epoch_mem = s->budget.limit;
	remus_link_init(&s->link, loop, &(struct remus_link_config){
				.heartbeat_ms = s->cfg.heartbeat_ms,
				.heartbeat_miss = s->cfg.heartbeat_miss,
				.read_chunk = 1u << 20 }, &link_cbs, s);
	s->spill_dir = dup_opt(cfg->spill_dir ? cfg->spill_dir : "/var/tmp", &oom);
	s->cfg.spill_dir = s->spill_dir;
	remus_spill_init(&s->last_dev, &s->budget, s->spill_dir);
	remus_repl_assembler_init(&s->asmb, 0, 0);
	remus_repl_assembler_store(&s->asmb, &s->budget, s->spill_dir);
	s->incoming = dup_opt(cfg->incoming_path, &oom);
	s->vm_name = dup_opt(cfg->vm_name, &oom);
	s->fence = dup_opt(cfg->fence_cmd, &oom);
	s->activate = dup_opt(cfg->activate_cmd, &oom);
	s->listen_host = dup_opt(cfg->listen_host, &oom);
	s->peer_identity = dup_opt(cfg->peer_identity, &oom);
	if (oom) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = remus_feed_new(loop, s->incoming, &(struct remus_feed_hooks){
		.progress = on_feed_progress, .failed = on_feed_failed, .opaque = s }, &s->feed);
	if (rc < 0)
		goto fail;
	rc = remus_tcp_listen(s->listen_host, cfg->listen_port, 4, &s->port);
	if (rc < 0) {
		remus_err(LOG, "cannot listen on %s:%u for the primary: %s",
			  s->listen_host ? s->listen_host : "*", cfg->listen_port, strerror(-rc));
		goto fail;
	}
	s->listen_fd = rc;
	rc = remus_tls_acceptor_new(loop, s->listen_fd, cfg->tls,
				    &(struct remus_tls_acceptor_config){
					    .what = "primary", .handshake_ms = cfg->handshake_ms,
					    .max_pending = cfg->max_handshakes },
				    on_accept, s, &s->acceptor);
	if (rc < 0)
		goto fail;
	if (cfg->tls || cfg->insecure)
		remus_link_set_tls(&s->link, NULL); /* sessions arrive authenticated, or warn */
	rc = standby_qmp(s, "migrate-set-capabilities", remus_migstream_caps_args(), on_caps);
	if (rc < 0)
		goto fail;
	rc = remus_qmp_ram_backend_find(qmp, s, &s->ramb, on_ram_backend, s);
	if (rc < 0)
		goto fail;
	remus_info(LOG, "standby for the QEMU behind %s: listening on %s:%u, heartbeat %u ms x %u",
		   remus_qmp_path(qmp), s->listen_host ? s->listen_host : "*", s->port,
		   s->cfg.heartbeat_ms, s->cfg.heartbeat_miss);
	*out = s;
	return 0;
fail:
	remus_standby_free(s);
	return rc;
}

/* Stops everything that could call back into @s: watches, timers, the
 * fence and hook children.  Idempotent. */
static void teardown(struct remus_standby *s)
{
	link_end(s);
	stop_listening(s);
	remus_feed_free(s->feed);
	s->feed = NULL;
	remus_timer_disarm(&s->step_timer);
	/* A fence still running is killed; the activation hook finishes its
	 * work (moving an address, ...) even if we go. */
	remus_child_free(s->fence_child);
	s->fence_child = NULL;
	remus_child_disown(s->hook_child);
	s->hook_child = NULL;
}

/* Nothing of @s runs after this: replies still to come are dropped. */
void remus_standby_free(struct remus_standby *s)
{
	if (!s)
		return;
	remus_qmp_cancel_owner(s->qmp, s);
	teardown(s);
	remus_ramflush_free(s->flush); /* waits for a flush in progress */
	remus_repl_assembler_release(&s->asmb);
	remus_link_release(&s->link);
	remus_spill_release(&s->last_dev);
	free(s->spill_dir);
	free(s->incoming);
	free(s->vm_name);
	free(s->fence);
	free(s->activate);
	free(s->listen_host);
	free(s->peer_identity);
	free(s);
}

enum remus_standby_state remus_standby_get_state(const struct remus_standby *s)
{
	return s->state;
}

uint16_t remus_standby_port(const struct remus_standby *s)
{
	return s->port;
}

/* A "Key:   N kB" line of /proc/self/status, in kB; -1 if missing. */
static long long proc_status_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

uint64_t remus_standby_memory_bound(const struct remus_standby *s)
{
	return s->budget.limit + REMUS_STANDBY_MEM_OVERHEAD;
}

struct json_object *remus_standby_status_json(const struct remus_standby *s)
{
	struct json_object *o = json_object_new_object();
	struct remus_feed_stats fs;
	uint64_t spilled;

	if (!o)
		return NULL;
	json_object_object_add(o, "role", json_object_new_string("standby"));
	json_object_object_add(o, "state", json_object_new_string(remus_standby_state_name(s->state)));
	json_object_object_add(o, "listen_port", json_object_new_int(s->port));
	json_object_object_add(o, "primary", remus_link_is_open(&s->link) ?
			       json_object_new_string(s->peer) : NULL);
	json_object_object_add(o, "sessions", json_object_new_int64((int64_t)s->sessions));
	/* remusctl status: time since the primary's last word (null: no link). */
	json_object_object_add(o, "heartbeat_age_ms", remus_link_is_connected(&s->link) ?
			       json_object_new_int64((int64_t)remus_link_silence_ms(&s->link)) : NULL);
	json_object_object_add(o, "late_beats",
			       json_object_new_int64((int64_t)remus_link_late_beats(&s->link)));
	json_object_object_add(o, "committed_epoch",
			       s->have_commit ? json_object_new_int64((int64_t)s->committed_epoch) : NULL);
	json_object_object_add(o, "epochs_committed", json_object_new_int64((int64_t)s->epochs_committed));
	json_object_object_add(o, "bytes_committed", json_object_new_int64((int64_t)s->bytes_committed));
	remus_feed_stats(s->feed, &fs);
	json_object_object_add(o, "qemu_bytes_written", json_object_new_int64((int64_t)fs.written));
	json_object_object_add(o, "qemu_bytes_queued", json_object_new_int64((int64_t)fs.queued));
	json_object_object_add(o, "qemu_epochs_queued", json_object_new_int64(fs.epochs_queued));
	/* Memory (standby.h states the bound). */
	spilled = remus_spill_file_unread(&s->asmb.data) + remus_spill_file_unread(&s->asmb.device) +
		  remus_spill_file_unread(&s->last_dev) + fs.queued_in_files;
	json_object_object_add(o, "epoch_mem_limit", json_object_new_int64((int64_t)s->budget.limit));
	json_object_object_add(o, "epoch_bytes_in_memory", json_object_new_int64((int64_t)s->budget.used));
	json_object_object_add(o, "epoch_bytes_spilled", json_object_new_int64((int64_t)spilled));
	json_object_object_add(o, "epoch_bytes_in_memory_peak",
			       json_object_new_int64((int64_t)s->budget.peak));
	json_object_object_add(o, "epochs_direct", json_object_new_int64((int64_t)s->epochs_direct));
	json_object_object_add(o, "epochs_spilled", json_object_new_int64((int64_t)s->epochs_spilled));
	json_object_object_add(o, "bytes_spilled_total", json_object_new_int64((int64_t)s->bytes_spilled));
	json_object_object_add(o, "stream_cuts", json_object_new_int64((int64_t)fs.cuts));
	json_object_object_add(o, "link_paused", json_object_new_boolean(s->link_paused));
	json_object_object_add(o, "memory_bound_kb",
			       json_object_new_int64((int64_t)(remus_standby_memory_bound(s) >> 10)));
	json_object_object_add(o, "rss_kb", json_object_new_int64(proc_status_kb("VmRSS")));
	json_object_object_add(o, "peak_rss_kb", json_object_new_int64(proc_status_kb("VmHWM")));
	/* The RAM file's flusher (ramflush.h): ram_file null and ram_flush_off
	 * the reason when it does not run. */
	if (s->flush) {
		struct remus_ramflush_stats fst;

		remus_ramflush_stats(s->flush, &fst);
		json_object_object_add(o, "ram_file",
				       json_object_new_string(remus_ramflush_path(s->flush)));
		json_object_object_add(o, "ram_flushing", json_object_new_boolean(fst.running));
		json_object_object_add(o, "ram_flushes", json_object_new_int64((int64_t)fst.flushes));
		json_object_object_add(o, "ram_flush_errors", json_object_new_int64((int64_t)fst.errors));
		json_object_object_add(o, "ram_flush_last_ms", json_object_new_double(fst.last_ms));
		json_object_object_add(o, "ram_flush_max_ms", json_object_new_double(fst.max_ms));
		json_object_object_add(o, "ram_flush_error", fst.last_err ?
				       json_object_new_string(strerror(-fst.last_err)) : NULL);
	} else {
		json_object_object_add(o, "ram_file", NULL);
		json_object_object_add(o, "ram_flushing", json_object_new_boolean(false));
		json_object_object_add(o, "ram_flush_off", json_object_new_string(
					       s->flush_why[0] ? s->flush_why : "asking QEMU"));
	}
	if (s->state == REMUS_STANDBY_ACTIVE || s->state == REMUS_STANDBY_FAILED) {
		struct json_object *f = json_object_new_object();

		json_object_object_add(f, "reason", json_object_new_string(s->rep.reason));
		json_object_object_add(f, "epoch", json_object_new_int64((int64_t)s->rep.epoch));
		json_object_object_add(f, "discarded_bytes",
				       json_object_new_int64((int64_t)s->rep.discarded_bytes));
		json_object_object_add(f, "fenced_ms", json_object_new_double(s->rep.fenced_ms));
		json_object_object_add(f, "tail_written_ms", json_object_new_double(s->rep.tail_written_ms));
		json_object_object_add(f, "loaded_ms", json_object_new_double(s->rep.loaded_ms));
		json_object_object_add(f, "failover_ms", json_object_new_double(s->rep.running_ms));
		json_object_object_add(f, "rc", json_object_new_int(s->rep.rc));
		json_object_object_add(o, "failover", f);
	}
	return o;
}
