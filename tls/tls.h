/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TLS on the links between hosts (GnuTLS, the library libvirt uses),
 * for non-blocking stream sockets on the process's one event loop.
 *
 * Two ways to say who may talk to whom, both mutual:
 *
 *   x509   libvirt's PKI layout, so a host set up for libvirt's TLS
 *          migration needs nothing new: the CA /etc/pki/CA/cacert.pem
 *          (or DIR/cacert.pem when it exists, as libvirt does for a
 *          private pkipath), DIR/servercert.pem + DIR/private/serverkey.pem
 *          for the side that accepts, DIR/clientcert.pem +
 *          DIR/private/clientkey.pem for the side that connects (DIR is
 *          /etc/pki/libvirt on such a host; every path overridable).
 *          The peer's certificate must chain to the CA, be within its
 *          validity and, where a name is configured, carry that name (the
 *          client checks the host it connects to by default, as libvirt).
 *   psk    one pre-shared key file per pair of hosts, "IDENTITY:HEX" as
 *          GnuTLS' psktool writes it, mode 0600 (remus_tls_keygen()
 *          writes one).  Both ends prove they hold the key; (EC)DHE
 *          gives forward secrecy.
 *
 * Only TLS 1.3 is offered: both ends are this code.
 *
 * A session (struct remus_tls) wraps a connected fd it borrows.  The
 * handshake is driven by calling remus_tls_handshake() whenever the fd
 * is ready for what remus_tls_wants() says; then remus_tls_read() and
 * remus_tls_write() move bytes between the session and a struct
 * remus_buf with the same contract as remus_buf_read_fd() and
 * remus_buf_write_fd(), so a stream that used those needs one branch.
 * One thing differs from a plain socket: GnuTLS may hold input the fd no
 * longer reports readable (a record read whole but not all handed over,
 * or an end seen after data); remus_tls_has_input() says so, and the
 * caller reads again without waiting for the loop.
 *
 * The acceptor (struct remus_tls_acceptor) is the server side on the
 * loop: it accepts on a listening socket, runs a bounded number of
 * handshakes at once, each with a deadline from its accept (a peer that
 * says nothing, or dribbles bytes, is dropped when it passes), and hands
 * only authenticated connections to its owner.  Without credentials it
 * hands every connection over at once (plaintext, --insecure).
 *
 * Errors are -errno: -EACCES the peer is not who it must be (certificate
 * or key refused, by us or by it), -EPROTO a TLS protocol error,
 * -ETIMEDOUT the handshake deadline, others from the system; the
 * session's remus_tls_error() says what happened in words.  Not
 * thread-safe; GnuTLS itself is initialised by the library constructor.
 */
#ifndef REMUS_TLS_TLS_H
#define REMUS_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct remus_buf;
struct remus_loop;

enum remus_tls_role {
	REMUS_TLS_SERVER, /* accepts (the standby) */
	REMUS_TLS_CLIENT, /* connects (the primary) */
};

/* libvirt's default places. */
#define REMUS_TLS_X509_DIR_DEFAULT "/etc/pki/libvirt"
#define REMUS_TLS_CA_DEFAULT "/etc/pki/CA/cacert.pem"
/* How long a handshake may take from the accept or connect, by default. */
#define REMUS_TLS_HANDSHAKE_MS_DEFAULT 10000u
/* Handshakes an acceptor runs at once, by default; more are refused. */
#define REMUS_TLS_MAX_PENDING_DEFAULT 4u

/* What the user configured; every string borrowed (copied by
 * remus_tls_creds_new).  Exactly one of psk_file and x509_dir. */
struct remus_tls_config {
	const char *psk_file;   /* PSK: the key file */
	const char *x509_dir;   /* x509: the directory of the certificates */
	const char *ca_file;    /* NULL: DIR/cacert.pem if it exists, else the default */
	const char *cert_file;  /* NULL: DIR/{server,client}cert.pem by role */
	const char *key_file;   /* NULL: DIR/private/{server,client}key.pem, else DIR/... */
	const char *peer_name;  /* x509: the name the peer's certificate must carry;
				 * NULL: the host connected to (client), none (server) */
};

/* Loaded credentials of one role; shared by every session of it. */
struct remus_tls_creds;

/* Loads @cfg for @role.  Returns 0 and *@out (owned by the caller, free
 * with remus_tls_creds_free), or -errno with *@out untouched and @err
 * (@errlen bytes) saying which file and what to do: missing or
 * unreadable files (-ENOENT, -EACCES), a key file others can read
 * (-EPERM), malformed contents (-EINVAL). */
int remus_tls_creds_new(const struct remus_tls_config *cfg, enum remus_tls_role role,
			struct remus_tls_creds **out, char *err, size_t errlen);
/* NULL is fine. */
void remus_tls_creds_free(struct remus_tls_creds *c);
/* "PSK file /x/remus.psk" or "x509 certificate ..., CA ..." (borrowed,
 * valid while @c lives). */
const char *remus_tls_creds_describe(const struct remus_tls_creds *c);

/* Writes a new random 256-bit key, "remus:HEX\n", to the new file
 * @path (borrowed), mode 0600 from the instant it exists, all or nothing:
 * written unnamed and then linked under @path where the filesystem has
 * O_TMPFILE, else created O_EXCL and removed again if writing fails.
 * Never replaces anything at @path, not even a dangling symlink
 * (-EEXIST).  Returns 0 or -errno with @err (@errlen bytes) naming the
 * file and what to do: -EEXIST, -ENOENT (no such directory), -EACCES
 * (not allowed to create it there), others from the system.  The
 * remusctl and remusd keygen commands are this function. */
int remus_tls_keygen(const char *path, char *err, size_t errlen);

struct remus_tls;

/* A session of @c (borrowed; outlives the session) on the connected
 * non-blocking socket @fd (borrowed: the caller closes it after
 * remus_tls_free).  @peer_host (borrowed, copied; may be NULL): the host
 * a client connected to, checked against its certificate unless the
 * configuration names the peer.  @label (borrowed, copied) names the
 * peer in messages ("standby 10.0.0.2:7000").  Returns 0 and *@out
 * (owned), or -ENOMEM / -EINVAL. */
int remus_tls_new(struct remus_tls_creds *c, int fd, const char *peer_host, const char *label,
		  struct remus_tls **out);
/* Does not close the fd.  Sends nothing (the protocol above has its own
 * goodbye).  NULL is fine. */
void remus_tls_free(struct remus_tls *t);

/* Advances the handshake.  Returns 0 when it is complete (the peer is
 * authenticated), -EAGAIN to be called again once the fd is ready for
 * remus_tls_wants(), or -EACCES/-EPROTO/-ECONNRESET/-errno (see above). */
int remus_tls_handshake(struct remus_tls *t);
/* REMUS_EV_READ or REMUS_EV_WRITE: what the session waits for now. */
unsigned remus_tls_wants(const struct remus_tls *t);

/* Reads records into @b, at most @max bytes, until the socket has no
 * more (on a blocking fd: until @max).  Returns bytes read (> 0), 0 at
 * the peer's end, -EAGAIN, -EMSGSIZE when @b is full, or -errno; an end
 * or error met after some bytes is returned by the next call. */
ssize_t remus_tls_read(struct remus_tls *t, struct remus_buf *b, size_t max);
/* Writes what the socket takes of @b as records and consumes it.
 * Returns bytes consumed (>= 0), -EAGAIN, or -errno.  Between calls the
 * front of @b must not change (GnuTLS may hold a record of it). */
ssize_t remus_tls_write(struct remus_tls *t, struct remus_buf *b);
/* Input GnuTLS holds that the fd will not report: call remus_tls_read()
 * again. */
bool remus_tls_has_input(const struct remus_tls *t);

/* What went wrong last, in words (borrowed, valid until the next call on
 * @t); "" if nothing. */
const char *remus_tls_error(const struct remus_tls *t);
/* Who the peer proved to be once the handshake is complete: "PSK
 * identity remus" or the certificate's DN (borrowed). */
const char *remus_tls_peer_identity(const struct remus_tls *t);
/* Bytes received on the socket during the handshake (a dribbling peer). */
uint64_t remus_tls_bytes_in(const struct remus_tls *t);

/* Shutting down: writes all of @b (consumed) on the session, whose fd
 * the caller made blocking (with a send timeout).  0 or -errno. */
int remus_tls_send_all_blocking(struct remus_tls *t, struct remus_buf *b);

/* Parses a key file's text (@len bytes, borrowed): "IDENTITY:HEX" and a
 * newline; the identity into @identity (@idlen bytes, NUL-terminated),
 * the key into @key (at most @keymax bytes), its length into *@keylen.
 * Returns 0 or -EINVAL (nothing meaningful written then).  For the
 * creds and the fuzz target. */
int remus_tls_psk_parse(const char *text, size_t len, char *identity, size_t idlen,
			uint8_t *key, size_t keymax, size_t *keylen);

/* ---- the acceptor ------------------------------------------------------- */

/* A connection authenticated (or accepted, without credentials): @fd
 * (taken; non-blocking, close-on-exec) and @tls (taken; NULL without
 * credentials), @peer "ADDR:PORT" (borrowed for the call). */
typedef void remus_tls_accept_cb(void *opaque, int fd, struct remus_tls *tls,
				 const char *peer);

struct remus_tls_acceptor_config {
	const char *what;         /* borrowed: who connects, for messages ("primary") */
	unsigned handshake_ms;    /* deadline from accept; 0: the default */
	unsigned max_pending;     /* handshakes at once; 0: the default */
};

struct remus_tls_acceptor;

/* Accepts on @listen_fd (borrowed; non-blocking; the caller closes it
 * after the acceptor is freed) on @loop (borrowed, outlives the
 * acceptor) with @c (borrowed, outlives it; NULL: plaintext) and calls
 * @cb for each connection that authenticated; every refusal is logged
 * naming the peer.  Returns 0 and *@out (owned), or -errno. */
int remus_tls_acceptor_new(struct remus_loop *loop, int listen_fd, struct remus_tls_creds *c,
			   const struct remus_tls_acceptor_config *cfg,
			   remus_tls_accept_cb *cb, void *opaque,
			   struct remus_tls_acceptor **out);
/* Drops the handshakes under way (closing their fds) and stops
 * watching the listener.  NULL is fine. */
void remus_tls_acceptor_free(struct remus_tls_acceptor *a);
/* Handshakes under way now. */
unsigned remus_tls_acceptor_pending(const struct remus_tls_acceptor *a);

#endif
