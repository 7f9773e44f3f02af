// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The server side of TLS on the loop (see tls.h): accept, handshake
 * within a deadline, hand over.
 *
 * Why a separate stage before the owner sees the connection: the owner
 * (the standby) serves one peer at a time, and an unauthenticated peer
 * must not hold that place, nor make it do anything at all.  So a
 * connection lives here, in one of max_pending slots, until it has
 * proved who it is; a slot is freed at the deadline counted from the
 * accept, however the peer spends its bytes (a silent peer, a slowloris
 * that sends one byte a second), and when every slot is taken a new
 * connection is closed at once.  An honest peer that finds the slots
 * taken retries as it would after any failed connect.
 *
 *   accept -> slot (deadline armed) -> handshake steps on READ/WRITE
 *          -> complete: watch dropped, owner's callback(fd, tls)
 *          -> refused / deadline: logged with the peer, closed
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "tls/tls.h"

#define LOG "tls"

struct slot {
	struct remus_tls_acceptor *a; /* borrowed, owns us */
	int fd;                       /* owned; -1: free */
	struct remus_tls *tls;        /* owned */
	char peer[64];
	struct remus_timer deadline;
};

struct remus_tls_acceptor {
	struct remus_loop *loop;      /* borrowed */
	int lfd;                      /* borrowed */
	struct remus_tls_creds *c;    /* borrowed; NULL: plaintext */
	char what[32];
	unsigned handshake_ms;
	unsigned max_pending, npending;
	remus_tls_accept_cb *cb;
	void *opaque;
	struct slot *slots;           /* owned, max_pending of them */
};

static void slot_free(struct slot *s)
{
	if (s->fd < 0)
		return;
	remus_timer_disarm(&s->deadline);
	remus_loop_del_fd(s->a->loop, s->fd);
	remus_tls_free(s->tls);
	s->tls = NULL;
	close(s->fd);
	s->fd = -1;
	s->a->npending--;
}

/* One handshake step; hands over, waits, or refuses. */
static void step(struct slot *s)
{
	struct remus_tls_acceptor *a = s->a;
	struct remus_tls *tls;
	char peer[64];
	int rc, fd;

	rc = remus_tls_handshake(s->tls);
	if (rc == -EAGAIN) {
		remus_loop_mod_fd(a->loop, s->fd, remus_tls_wants(s->tls));
		return;
	}
	if (rc < 0) {
		remus_warn(LOG, "refusing %s", remus_tls_error(s->tls));
		slot_free(s);
		return;
	}
	remus_info(LOG, "%s %s authenticated: %s", a->what, s->peer,
		   remus_tls_peer_identity(s->tls));
	/* Out of the slot first: the callback may free the acceptor. */
	fd = s->fd;
	tls = s->tls;
	snprintf(peer, sizeof(peer), "%s", s->peer);
	remus_timer_disarm(&s->deadline);
	remus_loop_del_fd(a->loop, fd);
	s->tls = NULL;
	s->fd = -1;
	a->npending--;
	a->cb(a->opaque, fd, tls, peer);
}

static void on_slot_event(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	step(opaque);
}

static void on_deadline(struct remus_loop *loop, void *opaque)
{
	struct slot *s = opaque;

	remus_warn(LOG, "dropping %s %s: no TLS handshake within %u ms (%llu bytes received); "
		   "a peer must authenticate at once", s->a->what, s->peer, s->a->handshake_ms,
		   (unsigned long long)remus_tls_bytes_in(s->tls));
	slot_free(s);
}

static void on_accept(struct remus_loop *loop, int lfd, unsigned ev, void *opaque)
{
	struct remus_tls_acceptor *a = opaque;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[48] = "?", serv[8] = "?", peer[64], label[100];
	struct slot *s = NULL;
	int fd, rc;

	fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv, sizeof(serv),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(peer, sizeof(peer), "%s:%s", host, serv);
	if (!a->c) {
		a->cb(a->opaque, fd, NULL, peer);
		return;
	}
	for (unsigned i = 0; i < a->max_pending && !s; i++)
		if (a->slots[i].fd < 0)
			s = &a->slots[i];
	if (!s) {
		remus_warn(LOG, "refusing %s %s: %u TLS handshakes already under way (each has %u ms)",
			   a->what, peer, a->max_pending, a->handshake_ms);
		close(fd);
		return;
	}
	snprintf(label, sizeof(label), "%s %s", a->what, peer);
	rc = remus_tls_new(a->c, fd, NULL, label, &s->tls);
	if (rc == 0)
		rc = remus_loop_add_fd(a->loop, fd, REMUS_EV_READ, on_slot_event, s);
	if (rc < 0) {
		remus_err(LOG, "cannot start a TLS session with %s %s: %s; closing it", a->what,
			  peer, strerror(-rc));
		remus_tls_free(s->tls);
		s->tls = NULL;
		close(fd);
		return;
	}
	s->fd = fd;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	a->npending++;
	remus_timer_arm(&s->deadline, a->handshake_ms);
	step(s);
}

int remus_tls_acceptor_new(struct remus_loop *loop, int listen_fd, struct remus_tls_creds *c,
			   const struct remus_tls_acceptor_config *cfg,
			   remus_tls_accept_cb *cb, void *opaque,
			   struct remus_tls_acceptor **out)
{
	struct remus_tls_acceptor *a;
	int rc;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->lfd = listen_fd;
	a->c = c;
	a->cb = cb;
	a->opaque = opaque;
	snprintf(a->what, sizeof(a->what), "%s", cfg && cfg->what ? cfg->what : "peer");
	a->handshake_ms = cfg && cfg->handshake_ms ? cfg->handshake_ms
						   : REMUS_TLS_HANDSHAKE_MS_DEFAULT;
	a->max_pending = cfg && cfg->max_pending ? cfg->max_pending
						 : REMUS_TLS_MAX_PENDING_DEFAULT;
	a->slots = calloc(a->max_pending, sizeof(*a->slots));
	if (!a->slots) {
		free(a);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < a->max_pending; i++) {
		a->slots[i].a = a;
		a->slots[i].fd = -1;
		remus_timer_init(&a->slots[i].deadline, loop, on_deadline, &a->slots[i]);
	}
	rc = remus_loop_add_fd(loop, listen_fd, REMUS_EV_READ, on_accept, a);
	if (rc < 0) {
		free(a->slots);
		free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void remus_tls_acceptor_free(struct remus_tls_acceptor *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->max_pending; i++)
		slot_free(&a->slots[i]);
	remus_loop_del_fd(a->loop, a->lfd);
	free(a->slots);
	free(a);
}

unsigned remus_tls_acceptor_pending(const struct remus_tls_acceptor *a)
{
	return a->npending;
}
