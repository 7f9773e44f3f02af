/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The local control socket of remusd: a unix stream socket taking one
 * request line per connection ("status", "set-interval 300", "failover",
 * "unprotect") and answering one JSON line, then closing.  Requests are
 * read and answered on the loop; a client that sends more than
 * REMUS_CTL_MAX_LINE bytes without a newline, or nothing for 5 s, is
 * dropped.  The blocking client side, for CLIs, is remusctl/remusctl.h.
 */
#ifndef REMUS_COMMON_CTL_H
#define REMUS_COMMON_CTL_H

#include <stddef.h>

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
/* Stops listening, drops clients, removes the socket file.  NULL ok. */
void remus_ctl_free(struct remus_ctl *c);

/* Builds {"ok":false,"error":MSG} (owned), or NULL on ENOMEM. */
char *remus_ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
