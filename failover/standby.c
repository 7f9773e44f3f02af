// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The standby role (see standby.h for the protocol and the takeover).
 *
 * Three fds meet here: the listening socket, the link to the primary (one
 * session at a time; a second primary is refused), and the standby QEMU's
 * incoming socket, to which committed epochs are written as fast as QEMU
 * reads them (qemu_out).  An epoch's COMMIT_ACK goes out as soon as the
 * epoch is complete and verified in our memory: from then on it survives
 * the primary, which is what the primary's output commit needs.
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
#include "common/state.h"
#include "migstream/migstream.h"
#include "qmp/qmp.h"
#include "repl/link.h"
#include "repl/repl.h"

#define LOG "standby"
#define QEMU_OUT_LIMIT ((size_t)2 << 30)
#define LOAD_TIMEOUT_MS 30000u
#define FENCE_TIMEOUT_MS 30000u

struct remus_standby {
	struct remus_loop *loop;
	struct remus_qmp *qmp;
	struct remus_standby_config cfg;
	char *incoming, *vm_name, *fence, *activate, *listen_host;
	struct remus_standby_hooks hooks;
	enum remus_standby_state state;

	int listen_fd;
	uint16_t port;

	/* session with the primary (repl/link.h runs it) */
	struct remus_link link;
	char peer[64];
	struct remus_repl_assembler asmb;
	bool hello_ok;
	uint64_t sessions;

	/* the standby QEMU's incoming stream */
	int qemu_fd;
	bool qemu_connected;
	bool stream_used;         /* a session's bytes went to this QEMU */
	struct remus_buf qemu_out;
	uint64_t qemu_written;
	struct remus_timer qemu_retry;

	/* what a takeover needs */
	bool have_commit;
	uint64_t committed_epoch;
	struct remus_buf last_dev;
	bool have_sid;
	uint32_t ram_sid;
	uint64_t epochs_committed;
	uint64_t bytes_committed;

	/* takeover */
	struct remus_failover_report rep;
	uint64_t t_lost_ns;
	bool tail_queued;
	struct remus_child *fence_child; /* the fence command while it runs */
	struct remus_child *hook_child;  /* the activation hook while it runs */
	struct remus_timer step_timer;   /* polls the standby QEMU's load */
	uint64_t deadline_ms;
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

/* ---- the standby QEMU's incoming socket ------------------------------ */

static void qemu_update_events(struct remus_standby *s)
{
	unsigned ev = REMUS_EV_READ;

	if (s->qemu_fd < 0)
		return;
	if (!s->qemu_connected || remus_buf_len(&s->qemu_out))
		ev |= REMUS_EV_WRITE;
	remus_loop_mod_fd(s->loop, s->qemu_fd, ev);
}

static void qemu_connect(struct remus_standby *s);

static void on_qemu_retry(struct remus_loop *loop, void *opaque)
{
	struct remus_standby *s = opaque;

	qemu_connect(s);
}

static void qemu_fail(struct remus_standby *s, const char *what, int err)
{
	remus_err(LOG, "standby QEMU incoming socket %s: %s: %s", s->incoming, what,
		  strerror(err));
	if (s->qemu_fd >= 0) {
		remus_loop_del_fd(s->loop, s->qemu_fd);
		close(s->qemu_fd);
		s->qemu_fd = -1;
	}
	s->qemu_connected = false;
	if (s->state == REMUS_STANDBY_FAILOVER) {
		s->rep.rc = -err;
		failover_step(s);
	}
}

static void on_qemu_event(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_standby *s = opaque;
	char drop[4096];
	ssize_t r;

	if (!s->qemu_connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			/* QEMU may not be listening yet: try again shortly. */
			remus_loop_del_fd(s->loop, fd);
			close(fd);
			s->qemu_fd = -1;
			if (!remus_timer_armed(&s->qemu_retry))
				remus_timer_arm(&s->qemu_retry, 50);
			return;
		}
		s->qemu_connected = true;
		remus_info(LOG, "connected to the standby QEMU's incoming socket %s", s->incoming);
	}
	if (ev & (REMUS_EV_READ | REMUS_EV_ERROR)) {
		/* The destination's return path: nothing in it matters to us. */
		r = read(fd, drop, sizeof(drop));
		if (r == 0 && s->state != REMUS_STANDBY_ACTIVE) {
			if (s->state == REMUS_STANDBY_FAILOVER && s->tail_queued &&
			    !remus_buf_len(&s->qemu_out)) {
				/* QEMU closes after loading the tail: expected. */
				remus_loop_del_fd(s->loop, fd);
				close(fd);
				s->qemu_fd = -1;
				return;
			}
			qemu_fail(s, "closed by QEMU", EPIPE);
			return;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			qemu_fail(s, "read", errno);
			return;
		}
	}
	if (ev & REMUS_EV_WRITE && remus_buf_len(&s->qemu_out)) {
		size_t before = remus_buf_len(&s->qemu_out);

		r = remus_buf_write_fd(&s->qemu_out, fd);
		if (r < 0 && r != -EAGAIN) {
			qemu_fail(s, "write", (int)-r);
			return;
		}
		s->qemu_written += before - remus_buf_len(&s->qemu_out);
		if (!remus_buf_len(&s->qemu_out) && s->state == REMUS_STANDBY_FAILOVER)
			failover_step(s);
	}
	if (s->qemu_fd >= 0)
		qemu_update_events(s);
}

static void qemu_connect(struct remus_standby *s)
{
	int fd = remus_unix_connect(s->incoming, true), rc;

	if (fd < 0) {
		if (fd != -ENOENT && fd != -ECONNREFUSED)
			remus_warn(LOG, "standby QEMU incoming socket %s: %s; retrying",
				   s->incoming, strerror(-fd));
		remus_timer_arm(&s->qemu_retry, 50);
		return;
	}
	s->qemu_fd = fd;
	s->qemu_connected = false;
	rc = remus_loop_add_fd(s->loop, fd, REMUS_EV_READ | REMUS_EV_WRITE, on_qemu_event, s);
	if (rc < 0) {
		/* Like a refused connect: try again shortly. */
		remus_warn(LOG, "cannot watch the standby QEMU's incoming socket %s: %s; "
			   "retrying", s->incoming, strerror(-rc));
		close(fd);
		s->qemu_fd = -1;
		remus_timer_arm(&s->qemu_retry, 50);
	}
}

static int qemu_queue(struct remus_standby *s, const void *p, size_t n)
{
	int rc = remus_buf_append(&s->qemu_out, p, n);

	if (rc == 0)
		qemu_update_events(s);
	return rc;
}

/* ---- the link to the primary ----------------------------------------- */

/* An ack or a refusal goes out at once: the primary's output commit waits
 * for the ack.  A write error is reported by the link once the primary's
 * last words are read (repl/link.h). */
static void link_send_now(struct remus_standby *s)
{
	remus_link_send(&s->link);
}

static void link_end(struct remus_standby *s)
{
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
		size_t dropped = remus_repl_assembler_discard(&s->asmb);

		if (s->hooks.discard)
			s->hooks.discard(s->hooks.opaque);
		remus_warn(LOG, "%s; session ended%s (%zu uncommitted bytes dropped)", why,
			   said_close ? "" : !s->have_commit ? ", nothing committed to take over from"
							     : ", automatic failover is off",
			   dropped);
		link_end(s);
		return;
	}
	start_failover(s, "%s", why);
}

static int find_ram_sid(struct remus_standby *s, const struct remus_buf *data)
{
	struct remus_migstream_opts opts = { .max_buffered = remus_buf_len(data) + 1 };
	struct remus_migstream *p = NULL;
	struct remus_migstream_token tok;
	int rc;

	rc = remus_migstream_new(&opts, &p);
	if (rc < 0)
		return rc;
	rc = remus_migstream_feed(p, remus_buf_data(data), remus_buf_len(data));
	while (rc == 0 && (rc = remus_migstream_next(p, &tok)) == 1) {
		if (tok.kind == REMUS_MS_START) {
			s->ram_sid = tok.section_id;
			s->have_sid = true;
			break;
		}
		rc = 0;
		if (remus_migstream_offset(p) >= remus_buf_len(data))
			break;
	}
	remus_migstream_free(p);
	return s->have_sid ? 0 : -EBADMSG;
}

static void on_epoch(struct remus_standby *s, struct remus_repl_epoch *ep)
{
	int rc;

	if (!s->have_sid && find_ram_sid(s, &ep->data) < 0) {
		primary_lost(s, true, "epoch 0 from %s carries no START(ram) section", s->peer);
		return;
	}
	/* Disk first: if its epoch cannot be made durable, memory must not
	 * move on either. */
	if (s->hooks.commit && (rc = s->hooks.commit(s->hooks.opaque, ep->epoch)) < 0) {
		primary_lost(s, true, "epoch %llu: cannot commit its disk writes: %s",
			     (unsigned long long)ep->epoch, strerror(-rc));
		return;
	}
	rc = qemu_queue(s, remus_buf_data(&ep->data), remus_buf_len(&ep->data));
	if (rc < 0) {
		primary_lost(s, true, "standby QEMU does not keep up (%zu bytes queued): %s",
			     remus_buf_len(&s->qemu_out), strerror(-rc));
		return;
	}
	s->stream_used = true;
	/* Keep the device part of the newest committed epoch: swap buffers. */
	remus_buf_release(&s->last_dev);
	s->last_dev = ep->device;
	remus_buf_init(&ep->device, 0);
	s->have_commit = true;
	s->committed_epoch = ep->epoch;
	s->epochs_committed++;
	s->bytes_committed += remus_buf_len(&ep->data) + remus_buf_len(&s->last_dev);
	remus_repl_put_commit_ack(remus_link_out(&s->link), ep->epoch);
	link_send_now(s);
	remus_debug(LOG, "epoch %llu committed: %zu data + %zu device bytes",
		    (unsigned long long)ep->epoch, remus_buf_len(&ep->data),
		    remus_buf_len(&s->last_dev));
}

static void handle_hello(struct remus_standby *s, const struct remus_repl_msg *m)
{
	struct remus_repl_hello want = { .version = REMUS_REPL_VERSION };
	struct remus_repl_hello_ack ack = { 0 };
	char reason[REMUS_REPL_REASON_MAX];
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
	if (rc == 0 && s->stream_used && !s->have_sid) {
		snprintf(reason, sizeof(reason), "the standby QEMU took part of a stream it "
			 "cannot continue; restart it with -incoming before protecting again");
		rc = -EBUSY;
	}
	if (rc < 0) {
		remus_err(LOG, "refusing primary %s: %s", s->peer, reason);
		remus_repl_put_reject(remus_link_out(&s->link), reason);
		link_send_now(s);
		link_end(s);
		return;
	}
	/* A QEMU that holds committed epochs continues its stream: the
	 * primary sends a full later epoch numbered after the last commit. */
	ack.version = REMUS_REPL_VERSION;
	if (s->stream_used) {
		ack.flags = REMUS_REPL_ACK_RESUME;
		ack.ram_sid = s->ram_sid;
		ack.next_epoch = s->committed_epoch + 1;
	}
	remus_repl_assembler_release(&s->asmb);
	remus_repl_assembler_init(&s->asmb, ack.next_epoch, 0);
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
	remus_info(LOG, "primary %s protects VM '%.*s'; session %llu, %s", s->peer,
		   (int)m->u.hello.vm_name.len, m->u.hello.vm_name.p,
		   (unsigned long long)s->sessions,
		   s->stream_used ? "resuming the stream after the last committed epoch"
				  : "new stream");
}

static void handle_msg(struct remus_standby *s, const struct remus_repl_msg *m)
{
	struct remus_repl_epoch ep;
	int rc;

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
		if (rc == 1)
			on_epoch(s, &ep);
		remus_repl_epoch_release(&ep);
		if (rc < 0)
			primary_lost(s, false, "epoch from primary %s rejected: %s", s->peer,
				     remus_repl_assembler_error(&s->asmb));
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

static void on_accept(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_standby *s = opaque;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[48] = "?", serv[8] = "?", label[96];
	int c, rc;

	c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return;
	getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv, sizeof(serv),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	if (remus_link_is_open(&s->link) || s->state == REMUS_STANDBY_FAILOVER ||
	    s->state == REMUS_STANDBY_ACTIVE || s->state == REMUS_STANDBY_FAILED) {
		struct remus_buf b;
		char reason[160];

		if (remus_link_is_open(&s->link))
			snprintf(reason, sizeof(reason), "standby is busy with primary %s", s->peer);
		else
			snprintf(reason, sizeof(reason), "standby is %s, not accepting a primary",
				 remus_standby_state_name(s->state));
		remus_warn(LOG, "refusing primary %s:%s: %s", host, serv, reason);
		remus_buf_init(&b, 0);
		if (remus_repl_put_reject(&b, reason) == 0)
			(void)!write(c, remus_buf_data(&b), remus_buf_len(&b));
		remus_buf_release(&b);
		close(c);
		return;
	}
	snprintf(s->peer, sizeof(s->peer), "%s:%s", host, serv);
	snprintf(label, sizeof(label), "primary %s", s->peer);
	rc = remus_link_attach(&s->link, c, label);
	if (rc < 0) {
		/* As if the primary had closed at once: nothing was committed
		 * in this session, so it ends without a takeover. */
		remus_err(LOG, "cannot watch the link to primary %s: %s; closing it", s->peer,
			  strerror(-rc));
		return;
	}
	remus_info(LOG, "primary connected from %s", s->peer);
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
	int rc;

	if (s->state != REMUS_STANDBY_FAILOVER || remus_timer_armed(&s->step_timer) ||
	    s->fence_child)
		return;
	if (s->rep.rc < 0) {
		failover_done(s, s->rep.rc);
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
		if (!s->qemu_connected || remus_buf_len(&s->qemu_out))
			return; /* on_qemu_event calls back when drained */
		remus_buf_init(&tail, 0);
		rc = remus_migstream_build_tail(&tail, s->ram_sid, remus_buf_data(&s->last_dev),
						remus_buf_len(&s->last_dev));
		if (rc == 0)
			rc = qemu_queue(s, remus_buf_data(&tail), remus_buf_len(&tail));
		remus_buf_release(&tail);
		if (rc < 0) {
			failover_done(s, rc);
			return;
		}
		s->tail_queued = true;
		return;
	}
	if (remus_buf_len(&s->qemu_out))
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
	link_end(s);
	if (s->listen_fd >= 0) {
		remus_loop_del_fd(s->loop, s->listen_fd);
		close(s->listen_fd);
		s->listen_fd = -1;
	}
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
	qemu_connect(s);
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
	remus_timer_init(&s->qemu_retry, loop, on_qemu_retry, s);
	remus_timer_init(&s->step_timer, loop, poll_load, s);
	s->cfg = *cfg;
	if (!s->cfg.heartbeat_ms)
		s->cfg.heartbeat_ms = 100;
	if (!s->cfg.heartbeat_miss)
		s->cfg.heartbeat_miss = 5;
	if (hooks)
		s->hooks = *hooks;
	s->listen_fd = s->qemu_fd = -1;
	remus_link_init(&s->link, loop, &(struct remus_link_config){
				.heartbeat_ms = s->cfg.heartbeat_ms,
				.heartbeat_miss = s->cfg.heartbeat_miss,
				.read_chunk = 1u << 20 }, &link_cbs, s);
	remus_buf_init(&s->qemu_out, QEMU_OUT_LIMIT);
	remus_buf_init(&s->last_dev, 0);
	remus_repl_assembler_init(&s->asmb, 0, 0);
	s->incoming = dup_opt(cfg->incoming_path, &oom);
	s->vm_name = dup_opt(cfg->vm_name, &oom);
	s->fence = dup_opt(cfg->fence_cmd, &oom);
	s->activate = dup_opt(cfg->activate_cmd, &oom);
	s->listen_host = dup_opt(cfg->listen_host, &oom);
	if (oom) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = remus_tcp_listen(s->listen_host, cfg->listen_port, 4, &s->port);
	if (rc < 0) {
		remus_err(LOG, "cannot listen on %s:%u for the primary: %s",
			  s->listen_host ? s->listen_host : "*", cfg->listen_port, strerror(-rc));
		goto fail;
	}
	s->listen_fd = rc;
	rc = remus_loop_add_fd(loop, s->listen_fd, REMUS_EV_READ, on_accept, s);
	if (rc < 0)
		goto fail;
	rc = standby_qmp(s, "migrate-set-capabilities", remus_migstream_caps_args(), on_caps);
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
	if (s->listen_fd >= 0) {
		remus_loop_del_fd(s->loop, s->listen_fd);
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	if (s->qemu_fd >= 0) {
		remus_loop_del_fd(s->loop, s->qemu_fd);
		close(s->qemu_fd);
		s->qemu_fd = -1;
	}
	remus_timer_disarm(&s->qemu_retry);
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
	remus_repl_assembler_release(&s->asmb);
	remus_link_release(&s->link);
	remus_buf_release(&s->qemu_out);
	remus_buf_release(&s->last_dev);
	free(s->incoming);
	free(s->vm_name);
	free(s->fence);
	free(s->activate);
	free(s->listen_host);
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

struct json_object *remus_standby_status_json(const struct remus_standby *s)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "role", json_object_new_string("standby"));
	json_object_object_add(o, "state", json_object_new_string(remus_standby_state_name(s->state)));
	json_object_object_add(o, "listen_port", json_object_new_int(s->port));
	json_object_object_add(o, "primary", remus_link_is_open(&s->link) ?
			       json_object_new_string(s->peer) : NULL);
	json_object_object_add(o, "sessions", json_object_new_int64((int64_t)s->sessions));
	json_object_object_add(o, "late_beats",
			       json_object_new_int64((int64_t)remus_link_late_beats(&s->link)));
	json_object_object_add(o, "committed_epoch",
			       s->have_commit ? json_object_new_int64((int64_t)s->committed_epoch) : NULL);
	json_object_object_add(o, "epochs_committed", json_object_new_int64((int64_t)s->epochs_committed));
	json_object_object_add(o, "bytes_committed", json_object_new_int64((int64_t)s->bytes_committed));
	json_object_object_add(o, "qemu_bytes_written", json_object_new_int64((int64_t)s->qemu_written));
	json_object_object_add(o, "qemu_bytes_queued",
			       json_object_new_int64((int64_t)remus_buf_len(&s->qemu_out)));
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
