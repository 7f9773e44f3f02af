/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An asynchronous QMP client on the project's event loop.
 *
 * One struct remus_qmp is one connection to one QEMU monitor socket.  It
 * connects without blocking (retrying while QEMU has not created the socket
 * yet), reads the greeting, negotiates with `qmp_capabilities`, and then
 * writes queued commands in submission order.  Every command carries an
 * integer "id"; replies are matched by id, so out-of-order replies are fine.
 * Input is newline-framed JSON (one message per line, as QEMU writes it)
 * parsed with json-c, with a hard limit on the length of a line.
 *
 *     connect ──> CONNECTING ──greeting──> NEGOTIATING ──caps ok──> READY
 *                     │                        │                      │
 *                     └──── error, EOF, timeout, protocol violation ──┴──> CLOSED
 *
 * Callbacks and their guarantees:
 *  - Every accepted command's reply callback is called exactly once: with
 *    the reply, a QMP error, a timeout, the error that closed the
 *    connection, or -ECANCELED from remus_qmp_free(); or never, if its
 *    owner was cancelled first.  Never from inside remus_qmp_execute()
 *    itself.
 *  - Anything the client cannot trust (malformed JSON, a line over the limit,
 *    a reply with an id we did not send, a message that is not an object)
 *    closes the connection: every pending command fails with that error,
 *    then the state callback reports CLOSED.  Nothing is retried.
 *  - Any callback may call remus_qmp_free() on the client, or submit
 *    commands; the client stays valid until the outermost callback returns.
 *  - A module that may go away while its commands are in flight submits
 *    them with an owner token and cancels the owner when it goes (like
 *    libxl__ev_qmp_dispose): from then on no callback of that owner runs,
 *    whatever QEMU answers and whenever.
 *
 * Not thread-safe: a client belongs to the thread running its loop.
 *
 * Typical use on the loop (the daemon), and from a CLI or test:
 *
 *     remus_qmp_connect(loop, "/run/vm.qmp", NULL, on_state, ctx, &q);
 *     remus_qmp_subscribe(q, "STOP", on_stop, ctx);
 *     args = json_object_new_object();
 *     json_object_object_add(args, "fdname", json_object_new_string("mig"));
 *     remus_qmp_execute(q, "getfd", args, sock, 0, on_getfd, ctx);  // args taken
 *
 *     rc = remus_qmp_execute_sync(q, "query-status", NULL, -1, 5000, &ret, &err);
 */
#ifndef REMUS_QMP_QMP_H
#define REMUS_QMP_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct remus_loop;
struct remus_qmp;

/* Longest line (one JSON message) accepted from QEMU. */
#define REMUS_QMP_DEFAULT_MAX_LINE (16u << 20)
#define REMUS_QMP_DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define REMUS_QMP_DEFAULT_COMMAND_TIMEOUT_MS 30000u

enum remus_qmp_state {
	REMUS_QMP_CONNECTING,  /* socket connecting, or waiting for the greeting */
	REMUS_QMP_NEGOTIATING, /* greeting seen, qmp_capabilities in flight */
	REMUS_QMP_READY,       /* commands are being written */
	REMUS_QMP_CLOSED,      /* final: the fd is closed, nothing is pending */
};

/* Error codes given to callbacks (always negative):
 *   -EREMOTEIO   QEMU answered with {"error": ...}
 *   -ETIMEDOUT   the command's timeout passed (the connection stays up; a
 *                late reply is dropped), or connect/negotiation timed out
 *   -ECONNRESET  QEMU closed the socket (EOF)
 *   -EPIPE, ...  a read/write/connect error, as -errno
 *   -EBADMSG     protocol violation: malformed JSON, not an object,
 *                unexpected id, missing greeting, reply without id
 *   -EMSGSIZE    a line longer than max_line
 *   -ECANCELED   the client was freed with the command pending
 *   -ENOMEM      out of memory while handling input
 */

struct remus_qmp_opts {
	/* Until READY: connect retries, greeting and capabilities.
	 * 0: REMUS_QMP_DEFAULT_CONNECT_TIMEOUT_MS. */
	unsigned connect_timeout_ms;
	/* For commands submitted with timeout_ms 0.
	 * 0: REMUS_QMP_DEFAULT_COMMAND_TIMEOUT_MS. */
	unsigned command_timeout_ms;
	/* Longest accepted line in bytes. 0: REMUS_QMP_DEFAULT_MAX_LINE. */
	size_t max_line;
};

/*
 * Reply callback.  @rc is 0 on success with @ret the "return" value;
 * -EREMOTEIO with @ret the "error" object ({"class", "desc"}); otherwise
 * one of the codes above with @ret NULL.  @ret is borrowed: valid only during
 * the call (json_object_get() it to keep it).  @err is NULL on success,
 * else a borrowed message naming the socket and the command, e.g.
 *   qmp /run/x.qmp: 'migrate' failed: GenericError: Migration is disabled
 */
typedef void remus_qmp_reply_cb(struct remus_qmp *q, int rc,
				struct json_object *ret, const char *err,
				void *opaque);

/*
 * Event callback.  @event (e.g. "STOP") and @data (the "data" member, or
 * NULL if absent) are borrowed for the duration of the call.
 * @timestamp_us: QEMU's wall-clock timestamp in microseconds since the
 * epoch, or -1 if the event had none.
 */
typedef void remus_qmp_event_cb(struct remus_qmp *q, const char *event,
				struct json_object *data, int64_t timestamp_us,
				void *opaque);

/*
 * State callback: called with REMUS_QMP_READY once negotiation succeeded
 * (@rc 0, @err NULL) and with REMUS_QMP_CLOSED exactly once when the
 * connection is lost (@rc < 0, @err a borrowed message naming the socket),
 * after every pending reply callback got the error.  Not called for the
 * closing done by remus_qmp_free().
 */
typedef void remus_qmp_state_cb(struct remus_qmp *q, enum remus_qmp_state state,
				int rc, const char *err, void *opaque);

/*
 * Starts connecting to the QMP unix socket at @path (borrowed, copied).
 * While the socket does not exist or refuses connections it retries every
 * 50 ms until connect_timeout_ms.  @loop is borrowed and must outlive the
 * client; @opts is borrowed (NULL: defaults); @state_cb may be NULL.
 * Returns 0 with a new client in *@out (owned: remus_qmp_free), or -errno
 * (e.g. -ENAMETOOLONG, -ENOMEM) with *@out untouched and no callback called.
 */
int remus_qmp_connect(struct remus_loop *loop, const char *path,
		      const struct remus_qmp_opts *opts,
		      remus_qmp_state_cb *state_cb, void *opaque,
		      struct remus_qmp **out);

/*
 * Like remus_qmp_connect() over an already connected stream socket @fd
 * (taken: closed by the client, also when this fails; it is made
 * non-blocking).  @name (borrowed, copied) stands for the socket path in
 * messages.  For tests and for sockets handed over by libvirt.
 */
int remus_qmp_open_fd(struct remus_loop *loop, int fd, const char *name,
		      const struct remus_qmp_opts *opts,
		      remus_qmp_state_cb *state_cb, void *opaque,
		      struct remus_qmp **out);

/*
 * Closes the connection and frees @q.  Pending commands get -ECANCELED
 * (their callbacks run from inside this call); the state callback is not
 * called.  Safe from inside any callback of @q: the memory is released
 * when the outermost callback returns.  NULL is fine; idempotent while a
 * callback of @q runs.
 */
void remus_qmp_free(struct remus_qmp *q);

/*
 * Queues @command (borrowed, copied) with @args (taken, even on failure;
 * NULL for none; must be an object) for writing, after any earlier
 * command.  Commands submitted before READY wait for the negotiation.
 * @fd: -1, or an fd to pass with SCM_RIGHTS along with the command's first
 * byte (for `getfd`, `add-fd`); borrowed: the client keeps its own dup
 * until sent, so the caller may close @fd once this returns.
 * @timeout_ms: counted from now; 0 means the client's command_timeout_ms.
 * @cb may be NULL (the reply is then dropped).
 * Returns 0, after which @cb is called exactly once, later, from the loop;
 * or -ENOTCONN (closed), -EINVAL, -ENOMEM, -errno from dup, and then @cb is
 * never called.
 */
int remus_qmp_execute(struct remus_qmp *q, const char *command,
		      struct json_object *args, int fd, unsigned timeout_ms,
		      remus_qmp_reply_cb *cb, void *opaque);

/*
 * Like remus_qmp_execute(), with @owner (borrowed, any address the caller
 * owns, usually itself; NULL: none) recorded for remus_qmp_cancel_owner().
 */
int remus_qmp_execute_owned(struct remus_qmp *q, const void *owner, const char *command,
			    struct json_object *args, int fd, unsigned timeout_ms,
			    remus_qmp_reply_cb *cb, void *opaque);

/*
 * After this returns, no reply callback of a command submitted with
 * @owner runs, ever; also when called from inside one of them (the one
 * running finishes normally).  The commands themselves stay: queued ones
 * are still written (an owner going away may have queued its last words,
 * e.g. migrate_cancel), and their replies are read and dropped.  Commands
 * of other owners are not touched.  Returns how many callbacks were
 * cancelled.  @q NULL or @owner NULL: nothing, returns 0.
 */
size_t remus_qmp_cancel_owner(struct remus_qmp *q, const void *owner);

/*
 * Synchronous helper for simple callers (CLIs, tests): submits like
 * remus_qmp_execute() and runs the loop with remus_loop_run_once() until
 * the reply comes or the timeout passes (other watches and timers of the
 * loop keep running meanwhile).  Must not be called from inside a callback
 * of the loop: it would nest the loop under a half-finished callback.
 * On success returns 0 and, if @ret is not NULL, the "return" value in *@ret
 * (owned: json_object_put).  On failure returns the rc a callback would have
 * got (-EREMOTEIO, -ETIMEDOUT, ...) and, if @err is not NULL, the message in
 * *@err (owned: free); *@ret is then NULL.
 */
int remus_qmp_execute_sync(struct remus_qmp *q, const char *command,
			   struct json_object *args, int fd, unsigned timeout_ms,
			   struct json_object **ret, char **err);

/*
 * Runs the loop (like remus_qmp_execute_sync(), not from a callback) until
 * @q is READY (returns 0), CLOSED (returns its error) or @timeout_ms passed
 * (returns -ETIMEDOUT).
 */
int remus_qmp_wait_ready(struct remus_qmp *q, unsigned timeout_ms);

/*
 * Calls @cb for every event named @event (borrowed, copied; NULL: every
 * event), in subscription order.  A subscription added from inside an
 * event callback first sees the next event.  Returns a handle > 0 for
 * remus_qmp_unsubscribe(), or -ENOMEM.
 */
int remus_qmp_subscribe(struct remus_qmp *q, const char *event,
			remus_qmp_event_cb *cb, void *opaque);
/* Removes a subscription (also from inside a callback; it is not called
 * again).  Returns 0 or -ENOENT. */
int remus_qmp_unsubscribe(struct remus_qmp *q, int handle);

enum remus_qmp_state remus_qmp_get_state(const struct remus_qmp *q);
/* Borrowed; valid until @q is freed. */
const char *remus_qmp_path(const struct remus_qmp *q);
/* The "QMP" member of the greeting (version, capabilities), or NULL before
 * it arrived.  Borrowed; valid until @q is freed. */
struct json_object *remus_qmp_greeting(const struct remus_qmp *q);
/* The message of the error that closed @q or of the last failed command,
 * or "" if none.  Borrowed; valid until the next remus_qmp_* call on @q. */
const char *remus_qmp_last_error(const struct remus_qmp *q);
/* Commands accepted and not yet completed (for tests and status output). */
size_t remus_qmp_pending(const struct remus_qmp *q);

/*
 * Where the guest's RAM is: the one chain both roles run (the engine for
 * engine v2, the standby to keep a file-backed RAM clean), in the order
 * it runs:
 *
 *   qom-get /machine memory-backend   ("/objects/pc.ram", or an id)
 *   -> qom-get /objects/ID mem-path   (QEMU's error: memory-backend-ram
 *                                      or -memfd, no file)
 *   -> qom-get /objects/ID share
 *
 * The result says how far it got; nothing is decided here.
 */
struct remus_qmp_ram_backend {
	int rc;          /* 0: answered (see the fields); -errno: QMP failed */
	char id[128];    /* the backend's id; "" if not one backend (NUMA) */
	char mem_path[4096]; /* the file; "" for anonymous or memfd RAM */
	bool share;      /* share=on (only asked when mem_path is set) */
	char err[512];   /* QEMU's answer to the step that stopped, or "" */
	/* private: the chain's state */
	const void *owner_;
	struct remus_qmp *q_;
	void (*done_)(struct remus_qmp_ram_backend *b, void *opaque);
	void *opaque_;
};

/*
 * The backend's id from the machine's memory-backend property @prop: QEMU
 * 10 answers the QOM path ("/objects/pc.ram"), a plain id is taken as is.
 * Returns 0, or -EINVAL for a NULL, empty, nested or over-long one.  Pure.
 */
int remus_qmp_ram_backend_id(const char *prop, char *id, size_t idlen);

/*
 * Runs the chain above on @q with @owner (remus_qmp_cancel_owner() stops
 * it: @done is then never called).  @b is borrowed caller storage and must
 * stay put until @done(@b, @opaque) runs, once, from the loop.  Returns 0,
 * or -errno from submitting the first command (then @done is never called).
 */
int remus_qmp_ram_backend_find(struct remus_qmp *q, const void *owner,
			       struct remus_qmp_ram_backend *b,
			       void (*done)(struct remus_qmp_ram_backend *b, void *opaque),
			       void *opaque);

#endif
