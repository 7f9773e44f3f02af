/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The local control socket of remusd: a unix stream socket taking one
 * request line per connection ("status", "set-interval 300", "failover",
 * "unprotect") and answering one JSON line, then closing.  Requests are
 * read and answered on the loop; a client that sends more than
 * REMUS_CTL_MAX_LINE bytes without a newline, or nothing for 5 s, is
 * dropped.  The blocking client side, for CLIs, is remusctl/remusctl.h.
 *
 * The host daemon (remusd serve) answers later: its requests need a
 * child's control socket, a peer or libvirt.  remus_ctl_listen_async()
 * hands each request line to a callback with a struct remus_ctl_request
 * that the owner answers when it can, with remus_ctl_reply():
 *
 *   accept --peer check--> read line --request_cb(req)--> ... --reply(req)--> write, close
 *              \--refused: {"ok":false,...}, close
 *
 * While the owner holds a request its client is not watched and has no
 * timeout (the owner bounds its own work): a client that went away
 * meanwhile is noticed when the answer's write fails, so the owner never
 * holds a dangling request.  It may also restrict the
 * socket: its file's mode and group, and SO_PEERCRED (uid 0, this
 * process's uid, or a member of the configured group by its primary
 * group) checked before a byte is read.  Like every socket user here, the
 * process ignores SIGPIPE: a client gone is then a write error.
 */
#ifndef REMUS_COMMON_CTL_H
#define REMUS_COMMON_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define REMUS_CTL_MAX_LINE 1024

struct remus_loop;
struct remus_ctl;

/* Answers @request (borrowed, NUL-terminated, no newline).  Returns a
 * malloc'd JSON text (the server takes and frees it), or NULL for
 * out-of-memory (the client then gets an error object). */
typedef char *remus_ctl_handler_cb(void *opaque, const char *request);

/* Listens on @path (borrowed; a stale socket there is replaced).
 * Returns 0 with *@out (owned: remus_ctl_free) or -errno. */
int remus_ctl_listen(struct remus_loop *loop, const char *path,
		     remus_ctl_handler_cb *handler, void *opaque, struct remus_ctl **out);
/* Stops listening, drops clients, removes the socket file.  Requests
 * not answered yet are freed too: their owner must drop them first
 * (never call remus_ctl_reply() after this).  NULL ok. */
void remus_ctl_free(struct remus_ctl *c);

/* The asynchronous kind (see above). */
struct remus_ctl_request;

struct remus_ctl_opts {
	size_t max_line;       /* the longest request line; 0: REMUS_CTL_MAX_LINE */
	unsigned timeout_ms;   /* a client that sends no whole line by then is
				* dropped; 0: 5000.  Does not bound the answer. */
	mode_t mode;           /* the socket file's mode (e.g. 0600); 0: as created */
	bool peer_check;       /* admit only uid 0, this uid, or primary group @gid */
	bool use_gid;          /* @gid is a group: the file is chowned to it and its
				* members admitted */
	gid_t gid;
};

/* remus_ctl_listen() with @opts (borrowed; NULL: defaults): remusd's
 * own control socket, 0600 and checked with SO_PEERCRED. */
int remus_ctl_listen_opts(struct remus_loop *loop, const char *path,
			  const struct remus_ctl_opts *opts, remus_ctl_handler_cb *handler,
			  void *opaque, struct remus_ctl **out);

/* A request line arrived: @line (borrowed, NUL-terminated, no newline,
 * valid until the callback returns).  The callback owns @req until it
 * passes it to remus_ctl_reply() (now or later, exactly once). */
typedef void remus_ctl_request_cb(void *opaque, struct remus_ctl_request *req,
				  const char *line);

/* As remus_ctl_listen(), with @opts (borrowed; NULL: defaults) and
 * answers given later.  Returns 0 with *@out, or -errno (the socket file
 * could not be made, or its mode/group not set: nothing is left). */
int remus_ctl_listen_async(struct remus_loop *loop, const char *path,
			   const struct remus_ctl_opts *opts, remus_ctl_request_cb *cb,
			   void *opaque, struct remus_ctl **out);
/* Answers @req with @answer (taken: a malloc'd JSON text without newline;
 * NULL means out of memory and sends an error object) and frees @req.
 * If the client is gone, the answer is dropped. */
void remus_ctl_reply(struct remus_ctl_request *req, char *answer);
/* The client's uid and pid (SO_PEERCRED at accept). */
uid_t remus_ctl_request_uid(const struct remus_ctl_request *req);
pid_t remus_ctl_request_pid(const struct remus_ctl_request *req);

/* Builds {"ok":false,"error":MSG} (owned), or NULL on ENOMEM. */
char *remus_ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
