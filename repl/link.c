// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One session on the replication link (see link.h for what it does).
 *
 * The fd watch always asks for READ, and for WRITE while a connect is
 * under way or output is queued.  One readable or writable event runs,
 * in this order: connect completion, write, read.  Every callback may
 * close the link, so after each one the code checks that the session it
 * was serving (l->gen) is still the open one before touching it again.
 *
 * Heartbeat timeline, heartbeat_ms = H, heartbeat_miss = N:
 *
 *   open/last word        t                         t + N*H
 *   timer fires      H   2H  ...  (N-1)H   NH  (N+1)H: silence > N*H
 *                                                   and nothing unread:
 *                                                   lost (SILENT)
 */
#include "repl/link.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sock.h"
#include "tls/tls.h"

#define LOG "link"
#define GOODBYE_MS 2000u

static void on_event(struct remus_loop *loop, int fd, unsigned ev, void *opaque);
static void read_in(struct remus_link *l);
static void on_heartbeat(struct remus_loop *loop, void *opaque);
static void on_close_timeout(struct remus_loop *loop, void *opaque);
static void on_more(struct remus_loop *loop, void *opaque);
static void warn_plaintext(const struct remus_link *l);

void remus_link_init(struct remus_link *l, struct remus_loop *loop,
		     const struct remus_link_config *cfg, const struct remus_link_cbs *cbs,
		     void *opaque)
{
	memset(l, 0, sizeof(*l));
	l->loop = loop;
	l->cbs = *cbs;
	l->opaque = opaque;
	if (cfg)
		l->cfg = *cfg;
	if (!l->cfg.heartbeat_ms)
		l->cfg.heartbeat_ms = 100;
	if (!l->cfg.heartbeat_miss)
		l->cfg.heartbeat_miss = 5;
	if (!l->cfg.read_chunk)
		l->cfg.read_chunk = 64 * 1024;
	l->fd = -1;
	remus_buf_init(&l->in, REMUS_REPL_FRAME_MAX);
	remus_buf_init(&l->out, 0);
	remus_timer_init(&l->hb_timer, loop, on_heartbeat, l);
	remus_timer_init(&l->close_timer, loop, on_close_timeout, l);
	remus_timer_init(&l->more_timer, loop, on_more, l);
}

void remus_link_set_tls(struct remus_link *l, struct remus_tls_creds *creds)
{
	l->creds = creds;
	l->tls_set = true;
}

void remus_link_close(struct remus_link *l)
{
	if (l->fd >= 0) {
		remus_loop_del_fd(l->loop, l->fd);
		close(l->fd);
		l->fd = -1;
	}
	remus_timer_disarm(&l->hb_timer);
	remus_timer_disarm(&l->close_timer);
	remus_timer_disarm(&l->more_timer);
	remus_tls_free(l->tls);
	l->tls = NULL;
	l->connected = l->closing = l->input_paused = l->handshaking = false;
	l->write_err = 0;
	l->events = 0;
	remus_buf_reset(&l->in);
	remus_buf_reset(&l->out);
}

void remus_link_release(struct remus_link *l)
{
	remus_link_close(l);
	remus_buf_release(&l->in);
	remus_buf_release(&l->out);
}

static void update_events(struct remus_link *l)
{
	unsigned ev = l->input_paused ? 0 : REMUS_EV_READ;

	if (l->fd < 0)
		return;
	if (l->handshaking)
		ev = remus_tls_wants(l->tls);
	else if (!l->connected || (remus_buf_len(&l->out) && !l->write_err))
		ev |= REMUS_EV_WRITE;
	if (ev != l->events) {
		remus_loop_mod_fd(l->loop, l->fd, ev);
		l->events = ev;
	}
}

/* Common part of connect and attach: takes @fd and @tls. */
static int open_session(struct remus_link *l, int fd, struct remus_tls *tls, bool connected,
			const char *peer)
{
	int rc;

	l->events = REMUS_EV_READ | (connected ? 0 : REMUS_EV_WRITE);
	rc = remus_loop_add_fd(l->loop, fd, l->events, on_event, l);
	if (rc < 0) {
		close(fd);
		remus_tls_free(tls);
		l->events = 0;
		return rc;
	}
	l->tls = tls;
	l->handshaking = false;
	snprintf(l->peer, sizeof(l->peer), "%s", peer);
	l->fd = fd;
	l->gen++;
	l->connected = connected;
	l->closing = l->input_paused = false;
	l->write_err = 0;
	remus_buf_reset(&l->in);
	remus_buf_reset(&l->out);
	remus_repl_decoder_init(&l->dec);
	l->last_rx_ms = remus_now_ms();
	remus_timer_arm(&l->hb_timer, l->cfg.heartbeat_ms);
	return 0;
}

int remus_link_connect(struct remus_link *l, const char *host, uint16_t port,
		       const char *peer)
{
	int fd;

	if (l->fd >= 0)
		return -EISCONN;
	fd = remus_tcp_connect(host, port, true);
	if (fd < 0)
		return fd;
	snprintf(l->host, sizeof(l->host), "%s", host);
	return open_session(l, fd, NULL, false, peer);
}

int remus_link_attach(struct remus_link *l, int fd, const char *peer)
{
	return remus_link_attach_tls(l, fd, NULL, peer);
}

int remus_link_attach_tls(struct remus_link *l, int fd, struct remus_tls *tls,
			  const char *peer)
{
	int rc;

	if (l->fd >= 0) {
		close(fd);
		remus_tls_free(tls);
		return -EISCONN;
	}
	rc = open_session(l, fd, tls, true, peer);
	if (rc == 0)
		warn_plaintext(l);
	return rc;
}

struct remus_buf *remus_link_out(struct remus_link *l)
{
	return &l->out;
}

/* Writes what the socket takes.  A failure is remembered, and the output
 * dropped, for the read pass to report (link.h says why). */
static void write_out(struct remus_link *l)
{
	ssize_t r;

	if (l->write_err || !remus_buf_len(&l->out))
		return;
	r = l->tls ? remus_tls_write(l->tls, &l->out) : remus_buf_write_fd(&l->out, l->fd);
	if (r < 0 && r != -EAGAIN) {
		l->write_err = (int)-r;
		remus_buf_reset(&l->out);
	}
}

void remus_link_send(struct remus_link *l)
{
	if (l->fd < 0)
		return;
	if (l->connected)
		write_out(l);
	update_events(l);
}

/* Reports the end of the session once; closes it if the owner did not. */
static void lost(struct remus_link *l, enum remus_link_loss why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void lost(struct remus_link *l, enum remus_link_loss why, const char *fmt, ...)
{
	unsigned gen = l->gen;
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	l->cbs.lost(l->opaque, why, reason);
	if (l->gen == gen && l->fd >= 0 && !l->closing)
		remus_link_close(l);
}

/* A goodbye is over: the link closes and says so. */
static void goodbye_done(struct remus_link *l)
{
	remus_link_close(l);
	if (l->cbs.closed)
		l->cbs.closed(l->opaque);
}

void remus_link_goodbye(struct remus_link *l, const char *reason)
{
	if (l->fd < 0 || l->closing)
		return;
	if (!l->connected || l->write_err || remus_repl_put_close(&l->out, reason) < 0) {
		remus_link_close(l);
		return;
	}
	l->closing = true;
	remus_timer_disarm(&l->hb_timer);
	remus_timer_arm(&l->close_timer, GOODBYE_MS);
	update_events(l);
}

int remus_link_goodbye_blocking(struct remus_link *l, const char *reason,
				unsigned timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000,
			      .tv_usec = (timeout_ms % 1000) * 1000 };
	int rc;

	if (l->fd < 0 || !l->connected || l->write_err)
		return -ENOTCONN;
	rc = remus_repl_put_close(&l->out, reason);
	if (rc < 0)
		return rc;
	/* The one place a link waits: the process is about to stop, and a
	 * standby that does not read our CLOSE takes over. */
	remus_fd_set_nonblock(l->fd, false);
	setsockopt(l->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (l->tls)
		rc = remus_tls_send_all_blocking(l->tls, &l->out);
	else
		rc = remus_write_all(l->fd, remus_buf_data(&l->out), remus_buf_len(&l->out));
	remus_buf_reset(&l->out);
	return rc;
}

static void on_close_timeout(struct remus_loop *loop, void *opaque)
{
	struct remus_link *l = opaque;

	remus_warn(LOG, "%s did not take our CLOSE within %u s; closing anyway", l->peer,
		   GOODBYE_MS / 1000);
	goodbye_done(l);
}

static void on_heartbeat(struct remus_loop *loop, void *opaque)
{
	struct remus_link *l = opaque;
	uint64_t now = remus_now_ms();
	uint64_t limit = (uint64_t)l->cfg.heartbeat_ms * l->cfg.heartbeat_miss;

	if (l->fd < 0 || l->closing)
		return;
	if (l->write_err) {
		/* A write failed and the socket has reported nothing since: read
		 * what the peer sent, then report the write error. */
		read_in(l);
		return;
	}
	if (l->handshaking) {
		unsigned hs = l->cfg.handshake_ms ? l->cfg.handshake_ms
						  : REMUS_TLS_HANDSHAKE_MS_DEFAULT;

		if (now - l->last_rx_ms > hs) {
			lost(l, REMUS_LINK_CONNECT_FAILED, "no TLS handshake with %s within %u ms",
			     l->peer, hs);
			return;
		}
		remus_timer_arm(&l->hb_timer, l->cfg.heartbeat_ms);
		return;
	}
	if (!l->connected) {
		if (now - l->last_rx_ms > limit) {
			lost(l, REMUS_LINK_CONNECT_FAILED, "connecting to %s timed out", l->peer);
			return;
		}
		remus_timer_arm(&l->hb_timer, l->cfg.heartbeat_ms);
		return;
	}
	if (now - l->last_rx_ms > limit &&
	    (remus_sock_pending(l->fd) > 0 || (l->tls && remus_tls_has_input(l->tls)))) {
		/* We were busy, not the peer silent: its words wait unread. */
		l->last_rx_ms = now;
		l->late_beats++;
	}
	if (now - l->last_rx_ms > limit) {
		lost(l, REMUS_LINK_SILENT, "no word from %s for %llu ms (%u heartbeats of %u ms "
		     "missed)", l->peer, (unsigned long long)(now - l->last_rx_ms),
		     l->cfg.heartbeat_miss, l->cfg.heartbeat_ms);
		return;
	}
	remus_repl_put_heartbeat(&l->out, ++l->hb_seq, now);
	remus_link_send(l);
	remus_timer_arm(&l->hb_timer, l->cfg.heartbeat_ms);
}

/* A plaintext session the owner chose (--insecure): said at every one. */
static void warn_plaintext(const struct remus_link *l)
{
	if (l->tls_set && !l->tls)
		remus_warn(LOG, "the session with %s is neither encrypted nor authenticated "
			   "(--insecure): anyone on the path can read the guest's memory and "
			   "feed or stop this link", l->peer);
}

/* The session is up: TCP connected and, with TLS, the peer authenticated. */
static void session_up(struct remus_link *l)
{
	warn_plaintext(l);
	l->connected = true;
	l->handshaking = false;
	l->last_rx_ms = remus_now_ms();
	update_events(l);
	if (l->cbs.connected)
		l->cbs.connected(l->opaque);
}

/* One step of the TLS handshake of a connect. */
static void handshake_step(struct remus_link *l)
{
	int rc = remus_tls_handshake(l->tls);

	if (rc == -EAGAIN) {
		update_events(l);
		return;
	}
	if (rc < 0) {
		lost(l, REMUS_LINK_CONNECT_FAILED, "%s", remus_tls_error(l->tls));
		return;
	}
	remus_info(LOG, "TLS with %s: authenticated %s", l->peer,
		   remus_tls_peer_identity(l->tls));
	session_up(l);
}

/* The connect finished (writable) or failed. */
static void connect_done(struct remus_link *l, unsigned ev)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		lost(l, REMUS_LINK_CONNECT_FAILED, "cannot connect to %s: %s", l->peer,
		     strerror(err));
		return;
	}
	if (!(ev & (REMUS_EV_WRITE | REMUS_EV_ERROR)))
		return;
	if (!l->creds) {
		session_up(l);
		return;
	}
	err = remus_tls_new(l->creds, l->fd, l->host, l->peer, &l->tls);
	if (err < 0) {
		lost(l, REMUS_LINK_CONNECT_FAILED, "cannot start TLS with %s: %s", l->peer,
		     strerror(-err));
		return;
	}
	l->handshaking = true;
	l->last_rx_ms = remus_now_ms(); /* the handshake deadline counts from here */
	handshake_step(l);
}

/* Reads what is there and delivers every complete frame. */
static void read_in(struct remus_link *l)
{
	unsigned gen = l->gen;
	struct remus_repl_msg m;
	ssize_t r;
	int rc = 0;

	r = l->tls ? remus_tls_read(l->tls, &l->in, l->cfg.read_chunk)
		   : remus_buf_read_fd(&l->in, l->fd, l->cfg.read_chunk);
	if (l->closing) {
		/* Saying goodbye: the peer's words no longer matter, its
		 * hanging up ends the goodbye early. */
		if (r == 0 || (r < 0 && r != -EAGAIN))
			goodbye_done(l);
		else
			remus_buf_reset(&l->in);
		return;
	}
	if (r > 0)
		l->last_rx_ms = remus_now_ms();
	/* Frames already read count even if the connection broke after them. */
	while (l->gen == gen && l->fd >= 0 && !l->closing &&
	       (rc = remus_repl_decode(&l->dec, &l->in, &m)) == 1)
		l->cbs.msg(l->opaque, &m);
	if (l->gen != gen || l->fd < 0 || l->closing)
		return;
	if (rc < 0) {
		lost(l, REMUS_LINK_BAD_FRAME, "bad frame from %s: %s", l->peer,
		     remus_repl_decoder_error(&l->dec));
		return;
	}
	if (r == 0)
		lost(l, REMUS_LINK_PEER_CLOSED, "%s closed the connection without CLOSE", l->peer);
	else if (r < 0 && r != -EAGAIN && l->tls && *remus_tls_error(l->tls))
		lost(l, REMUS_LINK_IO_ERROR, "link to %s: %s", l->peer, remus_tls_error(l->tls));
	else if (r < 0 && r != -EAGAIN)
		lost(l, REMUS_LINK_IO_ERROR, "link to %s: read: %s", l->peer, strerror((int)-r));
	else if (l->write_err)
		lost(l, REMUS_LINK_IO_ERROR, "link to %s: write: %s", l->peer,
		     strerror(l->write_err));
	else if (l->tls && !l->input_paused && remus_tls_has_input(l->tls))
		remus_timer_arm(&l->more_timer, 0); /* the fd will not say so */
}

static void on_more(struct remus_loop *loop, void *opaque)
{
	struct remus_link *l = opaque;

	if (l->fd >= 0 && l->connected && !l->input_paused)
		read_in(l);
}

static void on_event(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_link *l = opaque;
	unsigned gen = l->gen;

	if (l->handshaking) {
		handshake_step(l);
		return;
	}
	if (!l->connected) {
		connect_done(l, ev);
		return;
	}
	if (ev & REMUS_EV_WRITE) {
		write_out(l);
		if (l->closing && (l->write_err || !remus_buf_len(&l->out))) {
			goodbye_done(l);
			return;
		}
		update_events(l);
		if (l->cbs.writable)
			l->cbs.writable(l->opaque);
		if (l->gen != gen || l->fd < 0)
			return;
	}
	if (ev & (REMUS_EV_READ | REMUS_EV_ERROR) || l->write_err)
		read_in(l);
}

void remus_link_pause_input(struct remus_link *l, bool paused)
{
	l->input_paused = paused;
	update_events(l);
	if (!paused && l->tls && l->connected && remus_tls_has_input(l->tls))
		remus_timer_arm(&l->more_timer, 0);
}

bool remus_link_is_open(const struct remus_link *l)
{
	return l->fd >= 0;
}

bool remus_link_is_tls(const struct remus_link *l)
{
	return l->fd >= 0 && l->tls;
}

bool remus_link_is_connected(const struct remus_link *l)
{
	return l->fd >= 0 && l->connected;
}

bool remus_link_is_closing(const struct remus_link *l)
{
	return l->fd >= 0 && l->closing;
}

size_t remus_link_backlog(const struct remus_link *l)
{
	return remus_buf_len(&l->out);
}

uint64_t remus_link_silence_ms(const struct remus_link *l)
{
	return l->fd >= 0 ? remus_now_ms() - l->last_rx_ms : 0;
}

uint64_t remus_link_late_beats(const struct remus_link *l)
{
	return l->late_beats;
}
