/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One session on the replication link, as both roles run it: the primary
 * (controller/engine.c) connects to the standby, the standby
 * (failover/standby.c) accepts the primary; after that the two ends do
 * the same things, and this module does them once:
 *
 *   input      read on the loop into a bounded buffer, decoded frame by
 *              frame (repl/repl.h) and handed to the owner's msg callback;
 *   output     the owner appends whole frames to remus_link_out() and calls
 *              remus_link_send(): what the socket takes goes now, the rest
 *              when the loop says the socket is writable (the backlog);
 *   liveness   every heartbeat_ms a HEARTBEAT goes out, and the peer is
 *              lost after heartbeat_miss intervals without a word from it.
 *              A word is any byte read, and also any byte waiting unread
 *              in the socket (FIONREAD) when the interval ends: if this
 *              process was busy (a big epoch, a loaded host), the peer was
 *              not silent, and a standby must never take over for that;
 *   pause      the owner may stop reading for a while
 *              (remus_link_pause_input()) when it has enough to do with
 *              what it read; heartbeats still go out, and the peer's
 *              words waiting unread count as heard, so a pause is never
 *              taken for silence;
 *   TLS        with credentials (remus_link_set_tls, tls/tls.h) a connect
 *              runs the TLS handshake before it counts as connected (the
 *              peer authenticated; within the handshake deadline), and
 *              an accepted session arrives authenticated from the
 *              acceptor (remus_link_attach_tls); every byte goes through
 *              the session.  A link told it runs without TLS
 *              (remus_link_set_tls(l, NULL)) warns at every session;
 *   the end    the peer's EOF, a read or write error, a frame the decoder
 *              refuses, silence, or a failed connect is reported once to
 *              the lost callback with a reason; the owner decides whether
 *              to say goodbye (CLOSE, then close once it has drained, at
 *              most 2 s later) or to close at once.
 *
 * A write error is not reported at once: the peer may have said its last
 * words (a CLOSE) before the connection broke, and they must be read
 * first.  The output is dropped and the next read pass, which runs for
 * the error the socket now reports, delivers what was sent and then
 * reports the end.
 *
 * The link is a struct the owner embeds (no allocation after _init
 * except buffer growth); one session at a time, and the same struct is
 * reused for the next one.  Callbacks run from the loop only (the link's
 * fd and timers), never from inside a remus_link_* call; they may close
 * the link, say goodbye or queue output, but must not release it.
 * Everything runs on the owner's loop.
 */
#ifndef REMUS_REPL_LINK_H
#define REMUS_REPL_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/loop.h"
#include "repl/repl.h"

/* How a session ended without a goodbye of ours. */
enum remus_link_loss {
	REMUS_LINK_CONNECT_FAILED, /* the TCP connect or the TLS handshake failed or
				    * timed out */
	REMUS_LINK_PEER_CLOSED,    /* EOF: the peer closed without CLOSE */
	REMUS_LINK_IO_ERROR,       /* read or write failed */
	REMUS_LINK_BAD_FRAME,      /* the decoder refused the peer's input */
	REMUS_LINK_SILENT,         /* heartbeat_miss intervals without a word */
};

/* A decoded message; @m is borrowed for the call (its pointers point into
 * the input buffer).  HEARTBEATs are delivered too. */
typedef void remus_link_msg_cb(void *opaque, const struct remus_repl_msg *m);
/* The session ended (@why; @reason borrowed, names the peer and what
 * happened, e.g. "no word from standby 10.0.0.2:7000 for 520 ms (5
 * heartbeats of 100 ms missed)").  The link is still open: close it or
 * say goodbye; if it is neither when the callback returns, it is closed. */
typedef void remus_link_lost_cb(void *opaque, enum remus_link_loss why, const char *reason);
/* connected: a connect completed (send the first frames now); writable:
 * the socket took output, remus_link_backlog() tells how much is left;
 * closed: a goodbye finished (drained, peer gone, or 2 s passed) and the
 * link is closed. */
typedef void remus_link_event_cb(void *opaque);

struct remus_link_cbs {
	remus_link_msg_cb *msg;         /* required */
	remus_link_lost_cb *lost;       /* required */
	remus_link_event_cb *connected; /* optional */
	remus_link_event_cb *writable;  /* optional */
	remus_link_event_cb *closed;    /* optional */
};

struct remus_link_config {
	unsigned heartbeat_ms;   /* 0: 100 */
	unsigned heartbeat_miss; /* 0: 5 */
	size_t read_chunk;       /* most bytes read per readable event; 0: 64 KiB */
	unsigned handshake_ms;   /* TLS handshake deadline after the TCP connect;
				  * 0: REMUS_TLS_HANDSHAKE_MS_DEFAULT */
};

struct remus_tls;
struct remus_tls_creds;

/* Fields are private: use the functions below. */
struct remus_link {
	struct remus_loop *loop;        /* borrowed */
	struct remus_link_cbs cbs;
	void *opaque;
	struct remus_link_config cfg;
	char peer[96];                  /* "standby 10.0.0.2:7000", for messages */
	int fd;                         /* owned, -1: closed */
	struct remus_tls_creds *creds;  /* borrowed: connects use TLS; NULL: plaintext */
	bool tls_set;                   /* remus_link_set_tls() called */
	struct remus_tls *tls;          /* owned: this session's TLS, NULL: plaintext */
	bool handshaking;               /* TCP up, TLS handshake under way */
	char host[256];                 /* connected to: the name its certificate carries */
	unsigned gen;                   /* sessions opened, to notice a close */
	bool connected;                 /* TCP established */
	bool closing;                   /* goodbye queued: draining, then closed */
	int write_err;                  /* errno of a failed write, 0 */
	bool input_paused;              /* remus_link_pause_input() */
	unsigned events;                /* loop interest now */
	struct remus_buf in, out;
	struct remus_repl_decoder dec;
	uint64_t hb_seq;
	uint64_t last_rx_ms;            /* last word from the peer (or open) */
	uint64_t late_beats;            /* words found only in unread input */
	struct remus_timer hb_timer, close_timer;
	struct remus_timer more_timer;  /* TLS holds input the fd does not report */
};

/* Makes @l (owned by the caller) a closed link on @loop (borrowed,
 * outlives @l) that reports to @cbs (copied) with @opaque.  @cfg copied,
 * NULL for the defaults.  Cannot fail. */
void remus_link_init(struct remus_link *l, struct remus_loop *loop,
		     const struct remus_link_config *cfg, const struct remus_link_cbs *cbs,
		     void *opaque);
/* Closes the session if one is open (no callback) and frees the buffers;
 * @l can be initialised again.  Idempotent. */
void remus_link_release(struct remus_link *l);

/* Sessions from now on: connects run a TLS handshake with @creds
 * (borrowed; outlives @l) before they count as connected; NULL: plaintext,
 * and every session (also an attached one) logs a warning that it is
 * neither encrypted nor authenticated.  A link never told stays
 * plaintext, silently (tests). */
void remus_link_set_tls(struct remus_link *l, struct remus_tls_creds *creds);

/* Opens a session by a non-blocking TCP connect to @host:@port (a
 * numeric address; a name may block on DNS).  @peer (borrowed, copied)
 * names the other end in messages.  Returns 0 with the connect under way
 * (the connected or lost callback follows), or -errno with @l closed.
 * -EISCONN if a session is open. */
int remus_link_connect(struct remus_link *l, const char *host, uint16_t port,
		       const char *peer);
/* Opens a session on @fd (taken: a connected socket, closed on failure
 * too).  Returns 0, or -errno with @fd closed. */
int remus_link_attach(struct remus_link *l, int fd, const char *peer);
/* The same for a connection the TLS acceptor authenticated: @tls (taken;
 * its handshake complete, on @fd; NULL: plaintext) carries the session.
 * Returns 0, or -errno with @fd closed and @tls freed. */
int remus_link_attach_tls(struct remus_link *l, int fd, struct remus_tls *tls,
			  const char *peer);

/* The output queue, for remus_repl_put_*() and friends (borrowed; valid
 * while @l lives).  Append whole frames only, then remus_link_send(). */
struct remus_buf *remus_link_out(struct remus_link *l);
/* Writes what the socket takes of the output now and watches for the
 * rest; before the connect completes it only watches.  Calls no
 * callback: a write error is reported by the loop (see above). */
void remus_link_send(struct remus_link *l);

/* @paused: reading the peer's input stops (for the standby: its QEMU has
 * enough to load); false: it goes on.  Frames already read are delivered
 * as before; an error or hang-up the loop reports is still read and
 * delivered.  Heartbeats go on and the peer is not lost meanwhile while
 * its words wait unread (FIONREAD).  A new session starts unpaused. */
void remus_link_pause_input(struct remus_link *l, bool paused);
/* Ends the session from our side: CLOSE(@reason, borrowed) goes after
 * what is queued, the link closes once that is written (or the peer
 * hangs up, or after 2 s) and then calls closed.  Input is ignored and
 * heartbeats stop meanwhile.  Not connected yet (or CLOSE cannot be
 * queued): closes at once, without the closed callback.  Nothing when
 * closed or already saying goodbye. */
void remus_link_goodbye(struct remus_link *l, const char *reason);
/* Shutting down: queues CLOSE(@reason) and writes all output, blocking
 * for at most @timeout_ms.  Returns 0; -ENOTCONN without a connected
 * session; -errno if not everything was written.  The link stays open
 * (close or release it next). */
int remus_link_goodbye_blocking(struct remus_link *l, const char *reason,
				unsigned timeout_ms);
/* Closes the session now (queued output is dropped; no callback).
 * Idempotent. */
void remus_link_close(struct remus_link *l);

bool remus_link_is_open(const struct remus_link *l);
/* The session runs over TLS (and the peer authenticated, once connected). */
bool remus_link_is_tls(const struct remus_link *l);
/* Open, the TCP connect completed and, with TLS, the handshake. */
bool remus_link_is_connected(const struct remus_link *l);
/* Saying goodbye (remus_link_goodbye() queued CLOSE). */
bool remus_link_is_closing(const struct remus_link *l);
/* Bytes queued and not yet taken by the socket. */
size_t remus_link_backlog(const struct remus_link *l);
/* Milliseconds since the last word from the peer (since the session
 * opened before the first); 0 when closed. */
uint64_t remus_link_silence_ms(const struct remus_link *l);
/* Intervals in which the peer's words were found only unread (over all
 * sessions). */
uint64_t remus_link_late_beats(const struct remus_link *l);

#endif
