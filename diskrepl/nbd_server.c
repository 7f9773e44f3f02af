// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskrepl's NBD server on the loop (see nbd_server.h); the protocol
 * itself is nbd_proto.c.
 *
 * The server owns a listening unix socket and one struct client per
 * connection: non-blocking fd, input buffer bounded by the longest
 * message, output buffer bounded by the high water mark plus the largest
 * reply.  Input is read only while the client is not paused and its
 * replies are below the high water mark, so a client that does not read
 * its replies stops being read (its socket buffer then pushes back on
 * it), and a paused server executes nothing.  A client must finish the
 * handshake (reach transmission) within the handshake deadline from its
 * connect, however it spends its bytes, or it is closed: a client that
 * connects and says nothing would otherwise hold one of the few places
 * for ever.
 */
#include "diskrepl/nbd_server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"

#define LOG "nbd"

#define READ_CHUNK (256u << 10)
/* Buffers that grew for a large request are given back when empty. */
#define KEEP_CAP (1u << 20)

struct client {
	struct remus_nbd_server *s; /* borrowed, owns us */
	struct client *next;
	int fd;                     /* owned */
	char peer[64];
	struct remus_nbd_conn *conn; /* owned */
	struct remus_buf in, out;
	unsigned events;            /* what the loop watches now */
	bool eof;                   /* the client will send nothing more */
	bool closing;               /* session over: send the output, then close */
	bool pending;               /* complete input not handled yet */
	struct remus_timer deadline; /* the handshake's, from accept */
};

struct remus_nbd_server {
	struct remus_loop *loop; /* borrowed */
	char *path;              /* owned */
	int lfd;                 /* owned listener */
	ino_t ino;               /* of our socket file, so we never unlink another's */
	struct remus_nbd_table *table; /* owned */
	struct remus_nbd_stats stats;
	struct client *clients;  /* owned list */
	unsigned nclients;
	unsigned next_id;
	bool paused;
	struct remus_timer kick; /* resumes clients after an unpause */
	unsigned handshake_ms;
};

static void client_close(struct client *c, enum remus_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void client_close(struct client *c, enum remus_log_level level, const char *fmt, ...)
{
	struct remus_nbd_server *s = c->s;
	struct client **pp;
	char why[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	remus_log(level, LOG, "%s on %s: closed: %s", c->peer, s->path, why);
	for (pp = &s->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	s->nclients--;
	s->stats.active_clients--;
	remus_timer_disarm(&c->deadline);
	remus_loop_del_fd(s->loop, c->fd);
	close(c->fd);
	remus_nbd_conn_free(c->conn);
	remus_buf_release(&c->in);
	remus_buf_release(&c->out);
	free(c);
}

/* Sends queued replies until the socket is full.  Returns 0 or -errno
 * (the client is gone). */
static int client_flush(struct client *c)
{
	while (remus_buf_len(&c->out)) {
		ssize_t r = send(c->fd, remus_buf_data(&c->out), remus_buf_len(&c->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		remus_buf_consume(&c->out, (size_t)r);
	}
	if (c->out.cap > KEEP_CAP)
		remus_buf_release(&c->out);
	return 0;
}

/* Runs the protocol over buffered input.  Returns 0, or -errno after
 * closing the client. */
static int client_process(struct client *c)
{
	int rc;

	rc = remus_nbd_conn_feed(c->conn, &c->in, &c->out);
	c->pending = rc == REMUS_NBD_FEED_BLOCKED;
	if (rc == REMUS_NBD_FEED_DONE && !c->closing) {
		c->closing = true;
		remus_info(LOG, "%s on %s: %s", c->peer, c->s->path, remus_nbd_conn_error(c->conn));
	} else if (rc < 0) {
		client_close(c, REMUS_LOG_WARN, "%s", remus_nbd_conn_error(c->conn));
		return rc;
	}
	if (!remus_buf_len(&c->in) && c->in.cap > KEEP_CAP)
		remus_buf_release(&c->in);
	return 0;
}

/* Handles input and output until neither can progress, then watches
 * what the client needs.  Returns 0, or -errno after closing it. */
static int client_pump(struct client *c)
{
	unsigned want;
	int rc;

	for (;;) {
		if ((rc = client_process(c)) < 0)
			return rc;
		if ((rc = client_flush(c)) < 0) {
			client_close(c, REMUS_LOG_INFO, "sending replies failed: %s", strerror(-rc));
			return rc;
		}
		/* Again if input waits only for the flush to make room. */
		if (!c->pending || c->s->paused ||
		    remus_buf_len(&c->out) >= REMUS_NBD_OUT_HIGH_WATER)
			break;
	}
	if (remus_buf_len(&c->out) == 0) {
		if (c->closing) {
			client_close(c, REMUS_LOG_DEBUG, "session over");
			return -ECONNRESET;
		}
		if (c->eof && !c->pending) {
			if (remus_buf_len(&c->in))
				client_close(c, REMUS_LOG_INFO,
					     "hung up in the middle of a message (%zu bytes)",
					     remus_buf_len(&c->in));
			else if (remus_nbd_conn_get_state(c->conn) == REMUS_NBD_CONN_TRANSMISSION)
				client_close(c, REMUS_LOG_INFO, "hung up without NBD_CMD_DISC");
			else
				client_close(c, REMUS_LOG_INFO, "hung up during the handshake");
			return -ECONNRESET;
		}
	}
	want = 0;
	if (!c->closing && !c->eof && !c->s->paused && !c->pending &&
	    remus_buf_len(&c->out) < REMUS_NBD_OUT_HIGH_WATER)
		want |= REMUS_EV_READ;
	if (remus_buf_len(&c->out))
		want |= REMUS_EV_WRITE;
	if (want != c->events) {
		rc = remus_loop_mod_fd(c->s->loop, c->fd, want);
		if (rc < 0) {
			client_close(c, REMUS_LOG_ERROR, "cannot watch its socket: %s", strerror(-rc));
			return rc;
		}
		c->events = want;
	}
	return 0;
}

static void client_cb(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct client *c = opaque;

	if (c->events & REMUS_EV_READ && events & (REMUS_EV_READ | REMUS_EV_ERROR)) {
		ssize_t r = remus_buf_read_fd(&c->in, c->fd, READ_CHUNK);

		if (r == 0) {
			c->eof = true;
		} else if (r < 0 && r != -EAGAIN) {
			client_close(c, REMUS_LOG_INFO, "reading failed: %s", strerror((int)-r));
			return;
		}
	} else if (events & REMUS_EV_ERROR && !(events & REMUS_EV_WRITE)) {
		/* Hung up while we do not read it (paused, or its replies
		 * pile up): nothing it sent can be answered any more. */
		client_close(c, REMUS_LOG_INFO, "hung up");
		return;
	}
	client_pump(c);
}

static void on_deadline(struct remus_loop *loop, void *opaque)
{
	struct client *c = opaque;
	enum remus_nbd_conn_state st = remus_nbd_conn_get_state(c->conn);

	if (st == REMUS_NBD_CONN_CLIENT_FLAGS || st == REMUS_NBD_CONN_OPTIONS)
		client_close(c, REMUS_LOG_WARN, "no NBD handshake within %u ms; a client must "
			     "negotiate at once", c->s->handshake_ms);
}

static void accept_cb(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct remus_nbd_server *s = opaque;
	struct client *c = NULL;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int cfd, rc;

	cfd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			remus_warn(LOG, "accepting a client on %s failed: %s", s->path,
				   strerror(errno));
		return;
	}
	s->next_id++;
	if (s->nclients >= REMUS_NBD_MAX_CLIENTS) {
		remus_warn(LOG, "refusing client %u on %s: already %u clients, the most allowed",
			   s->next_id, s->path, s->nclients);
		close(cfd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	c->s = s;
	c->fd = cfd;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		snprintf(c->peer, sizeof(c->peer), "client %u (pid %ld)", s->next_id,
			 (long)cred.pid);
	else
		snprintf(c->peer, sizeof(c->peer), "client %u", s->next_id);
	remus_buf_init(&c->in, REMUS_NBD_IN_LIMIT);
	remus_buf_init(&c->out, REMUS_NBD_OUT_LIMIT);
	rc = remus_nbd_conn_new(s->table, &s->stats, c->peer, &c->conn);
	if (rc < 0)
		goto out;
	remus_nbd_conn_set_hold(c->conn, s->paused);
	rc = remus_nbd_conn_start(c->conn, &c->out);
	if (rc < 0)
		goto out;
	rc = remus_loop_add_fd(s->loop, cfd, 0, client_cb, c);
	if (rc < 0)
		goto out;
	remus_timer_init(&c->deadline, s->loop, on_deadline, c);
	remus_timer_arm(&c->deadline, s->handshake_ms);
	c->next = s->clients;
	s->clients = c;
	s->nclients++;
	s->stats.clients++;
	s->stats.active_clients++;
	remus_debug(LOG, "%s connected to %s", c->peer, s->path);
	client_pump(c);
	return;
out:
	remus_warn(LOG, "cannot set up client %u on %s: %s", s->next_id, s->path, strerror(-rc));
	if (c) {
		remus_nbd_conn_free(c->conn);
		remus_buf_release(&c->out);
		free(c);
	}
	close(cfd);
}

static void kick_cb(struct remus_loop *loop, void *opaque);

int remus_nbd_server_new(struct remus_loop *loop, const char *sock_path,
			 struct remus_nbd_server **out)
{
	struct remus_nbd_server *s = NULL;
	struct stat st;
	int rc, fd;

	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	s->lfd = -1;
	s->loop = loop;
	remus_timer_init(&s->kick, loop, kick_cb, s);
	s->handshake_ms = REMUS_NBD_HANDSHAKE_MS;
	s->path = strdup(sock_path);
	if (!s->path) {
		rc = -ENOMEM;
		goto out;
	}
	rc = remus_nbd_table_new(&s->table);
	if (rc < 0)
		goto out;
	if (lstat(sock_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			rc = -EEXIST;
			remus_err(LOG, "cannot serve NBD on %s: a file that is not a socket is "
				  "there; remove it or choose another path", sock_path);
			goto out;
		}
		/* A socket file: replace it only if nobody answers on it. */
		fd = remus_unix_connect(sock_path, true);
		if (fd >= 0 || fd == -EAGAIN) {
			if (fd >= 0)
				close(fd);
			rc = -EADDRINUSE;
			remus_err(LOG, "cannot serve NBD on %s: another server listens there; "
				  "stop it or choose another path", sock_path);
			goto out;
		}
	}
	rc = remus_unix_listen(sock_path, 16);
	if (rc < 0) {
		remus_err(LOG, "cannot listen for NBD clients on %s: %s", sock_path, strerror(-rc));
		goto out;
	}
	s->lfd = rc;
	if (lstat(sock_path, &st) == 0)
		s->ino = st.st_ino;
	rc = remus_fd_set_nonblock(s->lfd, true);
	if (rc < 0)
		goto out;
	rc = remus_loop_add_fd(loop, s->lfd, REMUS_EV_READ, accept_cb, s);
	if (rc < 0)
		goto out;
	remus_info(LOG, "serving NBD on %s", sock_path);
	*out = s;
	return 0;
out:
	if (s && s->lfd >= 0) {
		close(s->lfd);
		unlink(sock_path);
	}
	if (s) {
		remus_nbd_table_free(s->table);
		free(s->path);
		free(s);
	}
	return rc;
}

int remus_nbd_server_add_export(struct remus_nbd_server *s, const struct remus_nbd_export *e)
{
	int rc = remus_nbd_table_add(s->table, e);

	if (rc == 0)
		remus_info(LOG, "export '%s' on %s: %" PRIu64 " bytes%s", e->name, s->path, e->size,
			   e->read_only ? ", read-only" : "");
	else
		remus_err(LOG, "cannot add export '%s' on %s: %s", e && e->name ? e->name : "(null)",
			  s->path, rc == -EEXIST ? "the name is taken" : strerror(-rc));
	return rc;
}

static void kick_cb(struct remus_loop *loop, void *opaque)
{
	struct remus_nbd_server *s = opaque;
	struct client *c, *next;

	for (c = s->clients; c; c = next) {
		next = c->next;
		client_pump(c);
	}
}

void remus_nbd_server_set_paused(struct remus_nbd_server *s, bool paused)
{
	struct client *c;

	if (s->paused == paused)
		return;
	s->paused = paused;
	for (c = s->clients; c; c = c->next)
		remus_nbd_conn_set_hold(c->conn, paused);
	remus_debug(LOG, "%s on %s", paused ? "paused" : "resumed", s->path);
	/* Pausing takes effect in the conns at once; the watches follow on
	 * the next pump.  Resuming from a callback must not run ops under
	 * our caller, hence the timer. */
	if (!remus_timer_armed(&s->kick))
		remus_timer_arm(&s->kick, 0);
}

void remus_nbd_server_set_handshake_timeout(struct remus_nbd_server *s, unsigned ms)
{
	s->handshake_ms = ms;
}

void remus_nbd_server_free(struct remus_nbd_server *s)
{
	struct stat st;

	if (!s)
		return;
	while (s->clients)
		client_close(s->clients, REMUS_LOG_DEBUG, "server shutting down");
	remus_timer_disarm(&s->kick);
	if (s->lfd >= 0) {
		remus_loop_del_fd(s->loop, s->lfd);
		close(s->lfd);
		/* Another server may have replaced our socket file since. */
		if (lstat(s->path, &st) == 0 && st.st_ino == s->ino)
			unlink(s->path);
	}
	remus_nbd_table_free(s->table);
	free(s->path);
	free(s);
}

void remus_nbd_server_get_stats(const struct remus_nbd_server *s, struct remus_nbd_stats *st)
{
	*st = s->stats;
}
