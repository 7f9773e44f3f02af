/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The peer protocol (peer.h) on the loop: a TCP server that reads hello
 * and requests and lets its owner answer later, and a one-shot call that
 * connects, says hello, sends one request and waits for its answer.
 *
 *   call:    connect --> hello + request --> peer's hello --> answer --> cb
 *   server:  accept --> hello? --> request --> request_cb(reply) ... answer(reply)
 *
 * TLS (tls/tls.h, issue 12), as on the replication link: the server
 * takes connections through a struct remus_tls_acceptor, so a peer
 * reaches the protocol only once it has authenticated, within the
 * handshake deadline, in one of a bounded number of handshake slots; a
 * call authenticates the host it connects to before it sends a byte of
 * its request.  Without credentials (--insecure) both sides speak plain
 * TCP and every session is warned about.  The peer's proven identity
 * (remus_tls_peer_identity(): "PSK identity NAME" or the certificate's
 * DN; "" without TLS) is what the owner authorises requests by; the
 * hello's host name is only a label.
 *
 *   server:  accept --> TLS handshake (acceptor: slot, deadline)
 *            --> session (at most max_sessions) --> hello? --> request ...
 *
 * Bounded everywhere: lines at REMUS_HOSTD_PEER_MAX_LINE, handshakes at
 * once and their time (the acceptor), authenticated sessions at once, a
 * call and a server connection's silence at @timeout_ms (DESIGN-10:
 * 10 s).  A peer that breaks the protocol gets one error answer where it
 * can and is dropped.  A call's connect resolves its host with getaddrinfo, which
 * may block on DNS: give peers as addresses or /etc/hosts names.
 */
#ifndef REMUS_HOSTD_PEERLINK_H
#define REMUS_HOSTD_PEERLINK_H

#include <stdint.h>

#include "hostd/peer.h"

struct remus_loop;
struct remus_tls_creds;
struct remus_hostd_peer_server;
struct remus_hostd_peer_reply;
struct remus_hostd_peer_call;

/* Sessions a server holds at once by default (max_peer_sessions). */
#define REMUS_HOSTD_PEER_MAX_SESSIONS_DEFAULT 16u

/* How a server takes its peers.  @creds borrowed (outlives the server);
 * NULL: plaintext, every session warned about.  Zeros: the defaults
 * (tls.h's handshake deadline and slots, the sessions above). */
struct remus_hostd_peer_tls {
	struct remus_tls_creds *creds;
	unsigned handshake_ms;
	unsigned max_handshakes;
	unsigned max_sessions;
};

/*
 * A request from a peer that said hello as @from and proved to be
 * @identity (both borrowed, valid during the call; @identity "" without
 * TLS).  @req is borrowed for the call (copy what is kept; its xml too).
 * The owner answers exactly once with remus_hostd_peer_answer(), now or
 * later, whatever happened to the connection meanwhile.
 */
typedef void remus_hostd_peer_request_cb(void *opaque, struct remus_hostd_peer_reply *r,
					 const struct remus_hostd_peer_msg *req,
					 const char *from, const char *identity);

/*
 * Listens on @host (NULL or "": any) : @port (0: any free one, stored in
 * *@bound if not NULL), takes peers as @tls says (borrowed, copied; NULL:
 * plaintext with the default bounds), says hello as @name (borrowed,
 * copied).  Returns 0 with *@out (owned: remus_hostd_peer_server_free)
 * or -errno.
 */
int remus_hostd_peer_listen(struct remus_loop *loop, const char *host, uint16_t port,
			    const char *name, unsigned timeout_ms,
			    const struct remus_hostd_peer_tls *tls,
			    remus_hostd_peer_request_cb *cb, void *opaque,
			    struct remus_hostd_peer_server **out, uint16_t *bound);

/* Authenticated sessions open now (tests). */
unsigned remus_hostd_peer_server_sessions(const struct remus_hostd_peer_server *s);

/* Answers with @answer (borrowed; kind ANSWER, its id is set here from
 * the request) and frees @r.  Returns 0 when the answer is on its way,
 * -ENOTCONN when it was dropped because the connection is gone (the peer
 * gave up waiting: what the request made may be nobody's now). */
int remus_hostd_peer_answer(struct remus_hostd_peer_reply *r,
			    struct remus_hostd_peer_msg *answer);

/* Stops listening and drops every connection.  Replies not given yet
 * stay valid and are freed by remus_hostd_peer_answer().  NULL ok. */
void remus_hostd_peer_server_free(struct remus_hostd_peer_server *s);

/*
 * The answer to a call: @rc 0 and @answer (borrowed for the call; ok or
 * not, that is the peer's answer), or -errno (-ECONNREFUSED,
 * -EHOSTUNREACH, -ETIMEDOUT: no hello in time, -ETIME: a hello but no
 * answer in time, -EPROTO: not a remus-peer or a bad line)
 * with @err (borrowed) saying what happened, and @answer NULL.  Called
 * once from the loop, never from inside remus_hostd_peer_call(); the call
 * is freed after.
 */
typedef void remus_hostd_peer_call_cb(void *opaque, int rc,
				      const struct remus_hostd_peer_msg *answer,
				      const char *err);

/*
 * Sends @req (borrowed; formatted here, kind REQUEST) to @host:@port
 * (borrowed) as @name, over TLS with @creds (borrowed, client role,
 * outlives the call; the peer must prove it is @host, or the configured
 * peer name; NULL: plaintext, warned about).  A refused handshake is
 * -EACCES with the reason.  Returns 0 with *@out (borrowed handle, valid
 * until @cb ran or remus_hostd_peer_call_cancel) or -ENOMEM/-EMSGSIZE
 * (@req does not fit a line) with nothing started.
 */
int remus_hostd_peer_call(struct remus_loop *loop, const char *host, uint16_t port,
			  const char *name, const struct remus_hostd_peer_msg *req,
			  unsigned timeout_ms, struct remus_tls_creds *creds,
			  remus_hostd_peer_call_cb *cb, void *opaque,
			  struct remus_hostd_peer_call **out);

/* During @c's callback: who the called host proved to be ("" without
 * TLS or before the handshake; borrowed, valid during the callback). */
const char *remus_hostd_peer_call_identity(const struct remus_hostd_peer_call *c);

/* Abandons @c without calling its callback.  NULL ok. */
void remus_hostd_peer_call_cancel(struct remus_hostd_peer_call *c);

#endif
