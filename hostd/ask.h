/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One question to a child's control socket (remusd primary|standby
 * --ctl PATH), asked on the loop: connect (non-blocking), send the word
 * request line ("status", "set-interval 100", ...), read the JSON answer
 * line, then the callback.  Bounded: the whole exchange gets
 * @timeout_ms, an answer at most REMUS_HOSTD_ASK_MAX bytes.  The host
 * daemon never blocks on a child that hangs.
 */
#ifndef REMUS_HOSTD_ASK_H
#define REMUS_HOSTD_ASK_H

#include <stddef.h>

#define REMUS_HOSTD_ASK_MAX (1u << 20)

struct remus_loop;
struct remus_hostd_ask;

/*
 * The answer: @rc 0 with @answer (borrowed, the line without newline,
 * valid during the call), or -errno (-ENOENT/-ECONNREFUSED: nothing
 * listens, -ETIMEDOUT, -ECONNRESET: closed without an answer, -EMSGSIZE)
 * with @answer NULL.  Called once, from the loop, never from inside
 * remus_hostd_ask(); the ask is freed after it returns.
 */
typedef void remus_hostd_ask_cb(void *opaque, int rc, const char *answer);

/*
 * Asks @request (borrowed, copied; no newline) at @path (borrowed).
 * Returns 0 with *@out (borrowed handle, valid until @cb ran or
 * remus_hostd_ask_cancel()), or -ENOMEM with nothing started.  A
 * connect failure is reported through @cb, too.
 */
int remus_hostd_ask(struct remus_loop *loop, const char *path, const char *request,
		    unsigned timeout_ms, remus_hostd_ask_cb *cb, void *opaque,
		    struct remus_hostd_ask **out);

/* Abandons @a: @cb is not called.  NULL ok. */
void remus_hostd_ask_cancel(struct remus_hostd_ask *a);

#endif
