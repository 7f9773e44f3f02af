/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diskrepl's NBD server (private header; nbd_server.c): serves raw disk
 * images to QEMU over a unix socket, on the process's one event loop.
 * It owns the listening socket and one non-blocking client per
 * connection, with buffered input and output, and runs the protocol
 * layer (nbd_proto.h: what is negotiated, bounds on input) over those
 * buffers; it adds what needs a socket: back-pressure, pause, the client
 * limit and statistics.
 */
#ifndef REMUS_DISKREPL_NBD_SERVER_H
#define REMUS_DISKREPL_NBD_SERVER_H

#include <stdbool.h>

#include "diskrepl/nbd_proto.h"

struct remus_loop;

/* Clients served at once; more are refused at accept. */
#define REMUS_NBD_MAX_CLIENTS 16
/* A client that has not finished the handshake this long after its
 * connect is closed. */
#define REMUS_NBD_HANDSHAKE_MS 10000u

struct remus_nbd_server;

/* Listens on the unix socket @sock_path (borrowed, copied) on @loop
 * (borrowed; outlives the server).  An existing socket file is replaced
 * only if nobody accepts connections on it (-EADDRINUSE otherwise); any
 * other file there is left alone (-EEXIST).  Returns 0 and the server in
 * *@out (owned by the caller, free with remus_nbd_server_free), or -errno
 * after logging what failed on which path; *@out is untouched then. */
int remus_nbd_server_new(struct remus_loop *loop, const char *sock_path,
			 struct remus_nbd_server **out);
/* Adds an export (@e borrowed; its strings are copied, its ops and opaque
 * are kept).  Clients that connect later, or are still negotiating, can
 * use it.  Returns 0, -EEXIST if the name is taken, -EINVAL if the export
 * is malformed (no ops->read, no ops->write on a writable export, a name
 * or description over 4096 bytes, a size over INT64_MAX), or -ENOMEM;
 * the server is unchanged on failure. */
int remus_nbd_server_add_export(struct remus_nbd_server *s,
				const struct remus_nbd_export *e);
/* Paused: no client's input is read or executed, so no op is called
 * after this returns, until it is called with false; replies already
 * queued still go out.  Unpausing resumes every client on the next loop
 * iteration. */
void remus_nbd_server_set_paused(struct remus_nbd_server *s, bool paused);
/* The handshake deadline of clients that connect from now on (tests). */
void remus_nbd_server_set_handshake_timeout(struct remus_nbd_server *s, unsigned ms);
/* Closes every client (without replies to requests not yet executed)
 * and the listener, and unlinks the socket.  NULL is fine. */
void remus_nbd_server_free(struct remus_nbd_server *s);
void remus_nbd_server_get_stats(const struct remus_nbd_server *s,
				struct remus_nbd_stats *st);

#endif
