// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The peer protocol on the loop (see peerlink.h).  Both sides read lines
 * the same way: a bounded buffer, one line at a time, parsed with
 * peer.c.  A server connection lives as long as its socket or its last
 * unanswered request, whichever is longer: a reply holds a reference,
 * so an answer to a peer that hung up meanwhile is dropped safely.
 * Bytes move through the TLS session when there is one (io_read,
 * io_write); GnuTLS may hold a record the fd no longer reports, so a
 * server connection reads again while remus_tls_has_input() says so.
 */
#include "hostd/peerlink.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"
#include "hostd/request.h"
#include "tls/tls.h"

#define LOG "peer"
#define LINE_LIMIT (REMUS_HOSTD_PEER_MAX_LINE + 1)

/* Appends "LINE\n" for @m to @b.  0, -ENOMEM or -EMSGSIZE. */
static int put_msg(struct remus_buf *b, const struct remus_hostd_peer_msg *m)
{
	char *line = remus_hostd_peer_format(m);
	int rc;

	if (!line)
		return -EMSGSIZE;
	rc = remus_buf_append(b, line, strlen(line));
	if (rc == 0)
		rc = remus_buf_append(b, "\n", 1);
	free(line);
	return rc;
}

/* The next whole line of @b parsed into @m (consumed).  1: a message,
 * 0: no whole line yet, -EMSGSIZE: a line over the limit, -EINVAL: a
 * bad line (@err). */
static int take_msg(struct remus_buf *b, struct remus_hostd_peer_msg *m, char *err,
		    size_t errlen)
{
	uint8_t *data = remus_buf_data(b), *nl;
	size_t n;
	int rc;

	nl = data ? memchr(data, '\n', remus_buf_len(b)) : NULL;
	if (!nl) {
		if (remus_buf_len(b) > REMUS_HOSTD_PEER_MAX_LINE) {
			snprintf(err, errlen, "a line longer than %u bytes",
				 REMUS_HOSTD_PEER_MAX_LINE);
			return -EMSGSIZE;
		}
		return 0;
	}
	n = (size_t)(nl - data);
	rc = remus_hostd_peer_parse((const char *)data, n, m, err, errlen);
	remus_buf_consume(b, n + 1);
	return rc < 0 ? rc : 1;
}

/* Who @tls proved the peer to be, as records keep it: the DN, or "PSK
 * identity NAME" without the cipher remus_tls_peer_identity() adds (it
 * is not part of who the peer is).  "" without TLS. */
static void identity_of(struct remus_tls *tls, char *out, size_t len)
{
	const char *id = tls ? remus_tls_peer_identity(tls) : "";
	const char *cut = strncmp(id, "PSK identity ", 13) == 0 ? strstr(id, " (") : NULL;

	snprintf(out, len, "%.*s", cut ? (int)(cut - id) : (int)strlen(id), id);
}

static ssize_t io_read(struct remus_tls *tls, struct remus_buf *b, int fd)
{
	return tls ? remus_tls_read(tls, b, 65536) : remus_buf_read_fd(b, fd, 65536);
}

static ssize_t io_write(struct remus_tls *tls, struct remus_buf *b, int fd)
{
	return tls ? remus_tls_write(tls, b) : remus_buf_write_fd(b, fd);
}

/* ---- server ------------------------------------------------------------- */

struct conn {
	struct remus_hostd_peer_server *s;  /* NULL once the server is gone */
	int fd;                             /* -1 once closed */
	struct remus_tls *tls;              /* owned; NULL: plaintext */
	struct remus_buf in, out;
	bool hello;                         /* the peer said hello */
	char from[REMUS_HOSTD_HOST_MAX];
	char addr[64];                      /* ADDR:PORT */
	char identity[REMUS_HOSTD_IDENTITY_MAX]; /* what TLS proved; "" plaintext */
	unsigned refs;                      /* 1 for the socket + one per reply */
	struct remus_timer timer;
	struct conn *next;
};

struct remus_hostd_peer_reply {
	struct conn *c;
	uint64_t id;
};

struct remus_hostd_peer_server {
	struct remus_loop *loop;
	int fd;
	char name[REMUS_HOSTD_HOST_MAX];
	unsigned timeout_ms;
	unsigned max_sessions, nsessions;
	uint16_t port;
	struct remus_tls_acceptor *acceptor; /* owned */
	remus_hostd_peer_request_cb *cb;
	void *opaque;
	struct conn *conns;
};

static void conn_unref(struct conn *c)
{
	if (--c->refs)
		return;
	remus_buf_release(&c->in);
	remus_buf_release(&c->out);
	free(c);
}

/* Closes the socket; the struct lives while replies hold it. */
static void conn_close(struct conn *c)
{
	struct conn **p;

	if (c->fd < 0)
		return;
	remus_debug(LOG, "peer %s: connection closed (fd %d)", c->from, c->fd);
	if (c->s) {
		for (p = &c->s->conns; *p; p = &(*p)->next)
			if (*p == c) {
				*p = c->next;
				break;
			}
		remus_loop_del_fd(c->s->loop, c->fd);
		c->s->nsessions--;
	}
	remus_timer_disarm(&c->timer);
	remus_tls_free(c->tls);
	c->tls = NULL;
	close(c->fd);
	c->fd = -1;
	c->s = NULL;
	conn_unref(c);
}

static void conn_flush(struct conn *c)
{
	ssize_t r;

	if (c->fd < 0 || !c->s)
		return;
	r = io_write(c->tls, &c->out, c->fd);
	remus_debug(LOG, "peer %s: wrote %zd bytes, %zu left", c->from, r, remus_buf_len(&c->out));
	if (r < 0 && r != -EAGAIN) {
		conn_close(c);
		return;
	}
	remus_loop_mod_fd(c->s->loop, c->fd, REMUS_EV_READ |
			  (remus_buf_len(&c->out) ? REMUS_EV_WRITE : 0));
}

/* One error answer, then the connection is dropped once it is written
 * (or at once if it cannot be). */
static void conn_refuse(struct conn *c, uint64_t id, const char *why)
{
	struct remus_hostd_peer_msg a = { .kind = REMUS_HOSTD_PEER_ANSWER, .id = id,
					  .code = REMUS_HOSTD_E_BAD_REQUEST };

	remus_warn(LOG, "peer %s (%s): %s; dropping it", c->from[0] ? c->from : "(no hello yet)",
		   c->addr, why);
	snprintf(a.error, sizeof(a.error), "%s", why);
	if (put_msg(&c->out, &a) == 0 && c->fd >= 0)
		(void)io_write(c->tls, &c->out, c->fd);
	conn_close(c);
}

static void on_conn_timeout(struct remus_loop *loop, void *opaque)
{
	struct conn *c = opaque;

	/* Silent peers are dropped; one waiting for our answer is not. */
	if (c->refs > 1) {
		remus_timer_arm(&c->timer, c->s->timeout_ms);
		return;
	}
	conn_close(c);
}

static void on_conn(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct conn *c = opaque;
	struct remus_hostd_peer_msg m;
	char err[512];
	ssize_t r;
	int rc;

	if ((ev & REMUS_EV_WRITE) && remus_buf_len(&c->out)) {
		conn_flush(c);
		if (c->fd < 0)
			return;
	}
	if (!(ev & (REMUS_EV_READ | REMUS_EV_ERROR)))
		return;
	c->refs++;  /* the callbacks below may close it */
again:
	r = io_read(c->tls, &c->in, fd);
	if (r == -EAGAIN) {
		conn_unref(c);
		return;
	}
	if (r <= 0 && r != -EMSGSIZE) {
		if (r < 0 && c->tls && *remus_tls_error(c->tls))
			remus_warn(LOG, "peer %s (%s): %s; dropping it", c->from, c->addr,
				   remus_tls_error(c->tls));
		conn_close(c);
		conn_unref(c);
		return;
	}
	remus_timer_arm(&c->timer, c->s->timeout_ms);
	while (c->fd >= 0 && (rc = take_msg(&c->in, &m, err, sizeof(err))) != 0) {
		if (rc < 0) {
			remus_hostd_peer_msg_release(&m);
			conn_refuse(c, 0, err);
			break;
		}
		if (!c->hello) {
			if (m.kind != REMUS_HOSTD_PEER_HELLO) {
				conn_refuse(c, m.kind == REMUS_HOSTD_PEER_REQUEST ? m.id : 0,
					    "no hello first: send {\"hello\":\"remus-peer\",...}");
			} else if (m.version != REMUS_HOSTD_PEER_VERSION) {
				char why[160];

				snprintf(why, sizeof(why), "peer protocol version %u; this remusd "
					 "speaks %d: run the same remus-qemu on both hosts",
					 m.version, REMUS_HOSTD_PEER_VERSION);
				conn_refuse(c, 0, why);
			} else {
				struct remus_hostd_peer_msg h = { .kind = REMUS_HOSTD_PEER_HELLO,
								  .version = REMUS_HOSTD_PEER_VERSION };

				c->hello = true;
				snprintf(c->from, sizeof(c->from), "%s", m.host);
				snprintf(h.host, sizeof(h.host), "%s", c->s->name);
				if (put_msg(&c->out, &h) < 0)
					conn_close(c);
				else
					conn_flush(c);
			}
		} else if (m.kind == REMUS_HOSTD_PEER_REQUEST) {
			struct remus_hostd_peer_reply *rep = calloc(1, sizeof(*rep));

			if (!rep) {
				conn_close(c);
			} else {
				rep->c = c;
				rep->id = m.id;
				c->refs++;
				c->s->cb(c->s->opaque, rep, &m, c->from, c->identity);
			}
		} else {
			conn_refuse(c, 0, "only requests after the hello");
		}
		remus_hostd_peer_msg_release(&m);
	}
	if (c->fd >= 0 && c->s && c->tls && remus_tls_has_input(c->tls))
		goto again;
	conn_unref(c);
}

int remus_hostd_peer_answer(struct remus_hostd_peer_reply *r,
			    struct remus_hostd_peer_msg *answer)
{
	struct conn *c = r->c;
	int rc = c->fd >= 0 ? 0 : -ENOTCONN;

	answer->kind = REMUS_HOSTD_PEER_ANSWER;
	answer->id = r->id;
	remus_debug(LOG, "peer %s: answer to request %llu (%s)%s", c->from,
		    (unsigned long long)r->id, answer->ok ? "ok" : answer->error,
		    c->fd < 0 ? ": dropped, the connection is gone" : "");
	if (c->fd >= 0) {
		if (put_msg(&c->out, answer) < 0) {
			conn_close(c);
			rc = -ENOTCONN;
		} else {
			conn_flush(c);
		}
	}
	free(r);
	conn_unref(c);
	return rc;
}

/* A peer that authenticated (or any peer, without TLS): @fd and @tls
 * taken.  Only now does it cost a session. */
static void on_accepted(void *opaque, int fd, struct remus_tls *tls, const char *peer)
{
	struct remus_hostd_peer_server *s = opaque;
	char id[REMUS_HOSTD_IDENTITY_MAX];
	struct conn *c;

	identity_of(tls, id, sizeof(id));
	if (s->nsessions >= s->max_sessions) {
		remus_warn(LOG, "refusing peer %s (%s): %u peer sessions already open "
			   "(max_peer_sessions)", peer, *id ? id : "no TLS", s->max_sessions);
		remus_tls_free(tls);
		close(fd);
		return;
	}
	if (!tls)
		remus_warn(LOG, "peer %s: insecure: this session runs without TLS; anyone who "
			   "can reach port %u of this host can make it create, destroy or fail "
			   "over standbys (configure tls_psk or tls_x509_dir, drop insecure)", peer,
			   s->port);
	c = calloc(1, sizeof(*c));
	if (!c) {
		remus_tls_free(tls);
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->tls = tls;
	c->refs = 1;
	snprintf(c->addr, sizeof(c->addr), "%s", peer);
	snprintf(c->identity, sizeof(c->identity), "%s", id);
	remus_buf_init(&c->in, LINE_LIMIT);
	remus_buf_init(&c->out, 0);
	if (remus_loop_add_fd(s->loop, fd, REMUS_EV_READ, on_conn, c) < 0) {
		remus_tls_free(tls);
		close(fd);
		free(c);
		return;
	}
	remus_timer_init(&c->timer, s->loop, on_conn_timeout, c);
	remus_timer_arm(&c->timer, s->timeout_ms);
	c->next = s->conns;
	s->conns = c;
	s->nsessions++;
	/* A TLS session may hold the hello already. */
	if (tls && remus_tls_has_input(tls))
		on_conn(s->loop, fd, REMUS_EV_READ, c);
}

int remus_hostd_peer_listen(struct remus_loop *loop, const char *host, uint16_t port,
			    const char *name, unsigned timeout_ms,
			    const struct remus_hostd_peer_tls *tls,
			    remus_hostd_peer_request_cb *cb, void *opaque,
			    struct remus_hostd_peer_server **out, uint16_t *bound)
{
	struct remus_hostd_peer_server *s = calloc(1, sizeof(*s));
	uint16_t b = 0;
	int rc;

	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->cb = cb;
	s->opaque = opaque;
	s->timeout_ms = timeout_ms;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->fd = remus_tcp_listen(host && *host ? host : NULL, port, 16, &b);
	if (s->fd < 0) {
		rc = s->fd;
		free(s);
		return rc;
	}
	s->max_sessions = tls && tls->max_sessions ? tls->max_sessions
						   : REMUS_HOSTD_PEER_MAX_SESSIONS_DEFAULT;
	rc = remus_tls_acceptor_new(loop, s->fd, tls ? tls->creds : NULL,
				    &(struct remus_tls_acceptor_config){
					    .what = "peer",
					    .handshake_ms = tls ? tls->handshake_ms : 0,
					    .max_pending = tls ? tls->max_handshakes : 0 },
				    on_accepted, s, &s->acceptor);
	if (rc < 0) {
		close(s->fd);
		free(s);
		return rc;
	}
	s->port = b;
	if (bound)
		*bound = b;
	*out = s;
	return 0;
}

void remus_hostd_peer_server_free(struct remus_hostd_peer_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns);
	remus_tls_acceptor_free(s->acceptor);
	close(s->fd);
	free(s);
}

unsigned remus_hostd_peer_server_sessions(const struct remus_hostd_peer_server *s)
{
	return s->nsessions;
}

/* ---- call ---------------------------------------------------------------- */

struct remus_hostd_peer_call {
	struct remus_loop *loop;
	int fd;
	bool watched, got_hello;
	bool connected, handshaking;
	struct remus_tls_creds *creds;      /* borrowed; NULL: plaintext */
	struct remus_tls *tls;              /* owned */
	char host[REMUS_HOSTD_HOST_MAX];
	char identity[REMUS_HOSTD_IDENTITY_MAX];
	int early_rc;
	uint64_t id;
	unsigned timeout_ms;
	size_t got_after_hello;             /* bytes read once the hello was in */
	char peer[REMUS_HOSTD_HOST_MAX + 8];
	struct remus_buf in, out;
	struct remus_timer timer;
	remus_hostd_peer_call_cb *cb;
	void *opaque;
};

static void call_free(struct remus_hostd_peer_call *c)
{
	if (c->watched)
		remus_loop_del_fd(c->loop, c->fd);
	remus_tls_free(c->tls);
	if (c->fd >= 0)
		close(c->fd);
	remus_timer_disarm(&c->timer);
	remus_buf_release(&c->in);
	remus_buf_release(&c->out);
	free(c);
}

static void call_done(struct remus_hostd_peer_call *c, int rc,
		      const struct remus_hostd_peer_msg *answer, const char *why)
{
	char err[1400];

	if (rc < 0)
		snprintf(err, sizeof(err), "remusd serve at %s: %s", c->peer, why);
	c->cb(c->opaque, rc, rc < 0 ? NULL : answer, rc < 0 ? err : NULL);
	call_free(c);
}

static void on_call_timer(struct remus_loop *loop, void *opaque)
{
	struct remus_hostd_peer_call *c = opaque;
	char why[200];

	if (c->early_rc) {
		snprintf(why, sizeof(why), "cannot connect: %s; is remusd serve running there, "
			 "and its listen port open?", strerror(-c->early_rc));
		call_done(c, c->early_rc, NULL, why);
		return;
	}
	if (c->got_hello) {
		/* What a late answer looked like from here: whether the request
		 * left, and whether anything came back (partly). */
		snprintf(why, sizeof(why), "no answer in time (%u ms; %s, %zu bytes came back "
			 "after its hello); see that host's remusd log", c->timeout_ms,
			 remus_buf_len(&c->out) ? "the request was not all sent" :
			 "the request was sent", c->got_after_hello + remus_buf_len(&c->in));
		call_done(c, -ETIME, NULL, why);
		return;
	}
	call_done(c, -ETIMEDOUT, NULL,
		  "no hello in time; is remusd serve running there, and its listen port open?");
}

static void on_call_fd(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_hostd_peer_call *c = opaque;
	struct remus_hostd_peer_msg m;
	socklen_t len = sizeof(int);
	char err[512], why[1100];
	int soerr = 0, rc;
	ssize_t r;

	if (!c->connected) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr) {
			snprintf(why, sizeof(why), "cannot connect: %s; is remusd serve running "
				 "there, and its listen port open?", strerror(soerr));
			call_done(c, -soerr, NULL, why);
			return;
		}
		if (!(ev & (REMUS_EV_WRITE | REMUS_EV_ERROR)))
			return;
		c->connected = true;
		if (c->creds) {
			rc = remus_tls_new(c->creds, fd, c->host, c->peer, &c->tls);
			if (rc < 0) {
				snprintf(why, sizeof(why), "cannot start TLS: %s", strerror(-rc));
				call_done(c, rc, NULL, why);
				return;
			}
			c->handshaking = true;
		} else {
			remus_warn(LOG, "call to %s: insecure: no TLS, the peer is not "
				   "authenticated and the request travels in the clear", c->peer);
		}
	}
	if (c->handshaking) {
		rc = remus_tls_handshake(c->tls);
		if (rc == -EAGAIN) {
			remus_loop_mod_fd(loop, fd, remus_tls_wants(c->tls));
			return;
		}
		if (rc < 0) {
			snprintf(why, sizeof(why), "TLS: %.1000s", remus_tls_error(c->tls));
			call_done(c, rc == -EACCES ? -EACCES : -EPROTO, NULL, why);
			return;
		}
		c->handshaking = false;
		identity_of(c->tls, c->identity, sizeof(c->identity));
		remus_debug(LOG, "call to %s: authenticated %s", c->peer, c->identity);
		remus_loop_mod_fd(loop, fd, REMUS_EV_READ | REMUS_EV_WRITE);
	}
	if (remus_buf_len(&c->out)) {
		r = io_write(c->tls, &c->out, fd);
		if (r < 0 && r != -EAGAIN) {
			snprintf(why, sizeof(why), "cannot send: %s", strerror((int)-r));
			call_done(c, (int)r, NULL, why);
			return;
		}
		if (remus_buf_len(&c->out) == 0)
			remus_loop_mod_fd(loop, fd, REMUS_EV_READ);
		return;
	}
again:
	r = io_read(c->tls, &c->in, fd);
	remus_debug(LOG, "call to %s: read %zd bytes (%zu buffered, hello %s)", c->peer, r,
		    remus_buf_len(&c->in), c->got_hello ? "yes" : "no");
	if (r == -EAGAIN)
		return;
	if (r > 0 && c->got_hello)
		c->got_after_hello += (size_t)r;
	if (r <= 0 && r != -EMSGSIZE) {
		if (r < 0 && c->tls && *remus_tls_error(c->tls))
			snprintf(why, sizeof(why), "TLS: %.1000s", remus_tls_error(c->tls));
		call_done(c, r == 0 ? -ECONNRESET : (int)r, NULL, r == 0 ?
			  "closed the connection without an answer" : r < 0 && c->tls &&
			  *remus_tls_error(c->tls) ? why : strerror((int)-r));
		return;
	}
	while ((rc = take_msg(&c->in, &m, err, sizeof(err))) != 0) {
		if (rc < 0) {
			remus_hostd_peer_msg_release(&m);
			snprintf(why, sizeof(why), "not a remus peer answer: %s", err);
			call_done(c, -EPROTO, NULL, why);
			return;
		}
		if (!c->got_hello) {
			if (m.kind == REMUS_HOSTD_PEER_ANSWER && !m.ok) {
				/* Refused before its hello (version skew). */
				snprintf(why, sizeof(why), "refused: %.1000s", m.error);
				remus_hostd_peer_msg_release(&m);
				call_done(c, -EPROTO, NULL, why);
				return;
			}
			if (m.kind != REMUS_HOSTD_PEER_HELLO ||
			    m.version != REMUS_HOSTD_PEER_VERSION) {
				remus_hostd_peer_msg_release(&m);
				call_done(c, -EPROTO, NULL, "did not say a version 1 remus-peer hello");
				return;
			}
			c->got_hello = true;
			c->got_after_hello = 0;
		} else if (m.kind == REMUS_HOSTD_PEER_ANSWER && m.id == c->id) {
			call_done(c, 0, &m, NULL);
			remus_hostd_peer_msg_release(&m);
			return;
		} else if (m.kind == REMUS_HOSTD_PEER_ANSWER && m.id == 0 && !m.ok) {
			snprintf(why, sizeof(why), "refused: %.1000s", m.error);
			remus_hostd_peer_msg_release(&m);
			call_done(c, -EPROTO, NULL, why);
			return;
		}
		remus_hostd_peer_msg_release(&m);
	}
	if (r == 0) {
		call_done(c, -ECONNRESET, NULL, "closed the connection without an answer");
		return;
	}
	if (c->tls && remus_tls_has_input(c->tls))
		goto again;
}

int remus_hostd_peer_call(struct remus_loop *loop, const char *host, uint16_t port,
			  const char *name, const struct remus_hostd_peer_msg *req,
			  unsigned timeout_ms, struct remus_tls_creds *creds,
			  remus_hostd_peer_call_cb *cb, void *opaque,
			  struct remus_hostd_peer_call **out)
{
	struct remus_hostd_peer_call *c = calloc(1, sizeof(*c));
	struct remus_hostd_peer_msg h = { .kind = REMUS_HOSTD_PEER_HELLO,
					  .version = REMUS_HOSTD_PEER_VERSION };
	int rc;

	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->fd = -1;
	c->cb = cb;
	c->opaque = opaque;
	c->id = req->id;
	c->timeout_ms = timeout_ms;
	c->creds = creds;
	snprintf(c->host, sizeof(c->host), "%s", host);
	snprintf(c->peer, sizeof(c->peer), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
	remus_buf_init(&c->in, LINE_LIMIT);
	remus_buf_init(&c->out, 0);
	remus_timer_init(&c->timer, loop, on_call_timer, c);
	snprintf(h.host, sizeof(h.host), "%s", name);
	if ((rc = put_msg(&c->out, &h)) < 0 || (rc = put_msg(&c->out, req)) < 0) {
		call_free(c);
		return rc;
	}
	rc = remus_tcp_connect(host, port, true);
	if (rc >= 0) {
		c->fd = rc;
		rc = remus_loop_add_fd(loop, c->fd, REMUS_EV_WRITE, on_call_fd, c);
		if (rc == 0)
			c->watched = true;
	}
	if (rc < 0) {
		c->early_rc = rc;
		remus_timer_arm(&c->timer, 0);
	} else {
		remus_timer_arm(&c->timer, timeout_ms);
	}
	*out = c;
	return 0;
}

const char *remus_hostd_peer_call_identity(const struct remus_hostd_peer_call *c)
{
	return c->identity;
}

void remus_hostd_peer_call_cancel(struct remus_hostd_peer_call *c)
{
	if (c)
		call_free(c);
}
