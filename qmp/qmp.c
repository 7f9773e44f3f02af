// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * QMP client (see qmp.h for the contract).
 *
 * All commands live in one list in submission order.  A command is written
 * when every command before it has been written completely, so the list is
 * also the output queue: `off` says how much of a command's line went out.
 * The fd to pass travels with the first byte of its line (SCM_RIGHTS), so
 * QEMU's monitor has it when it parses the command.  A command leaves the
 * list when its reply arrives, when the connection closes, or - if it was
 * never started - when it times out.  A command that timed out after it
 * was (partly) written stays in the list with its callback spent: its line
 * must still be finished, and its late reply must not look like an
 * unexpected id.  Cancelling an owner spends its commands the same way,
 * so "no callback after cancel" needs no other mechanism.
 *
 * Re-entrancy: user callbacks run from the fd watch, the timers, and
 * remus_qmp_free().  Each of those entry points holds `depth`; free() only
 * closes and marks, and the memory goes when depth drops to zero, so no
 * code path touches freed memory after a callback.  Every loop that calls
 * back re-checks `state` afterwards: a callback may have closed the client.
 *
 *     fd readable -> read -> for each complete line:
 *         parse -> consume -> dispatch (greeting | event | reply)
 *                                              \-> callback (may free q)
 */
#include "qmp/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"

#define COMP "qmp"
#define CONNECT_RETRY_MS 50
#define READ_CHUNK 65536

struct cmd {
	struct cmd *next;
	struct remus_qmp *q;    /* borrowed back-pointer, for the timer */
	uint64_t id;
	char *name;             /* owned */
	char *line;             /* owned, ends in '\n' */
	size_t len, off;        /* bytes in line, bytes written */
	int fd;                 /* owned dup to pass with the first byte, or -1 */
	struct remus_timer timer; /* the command's timeout */
	unsigned timeout_ms;
	remus_qmp_reply_cb *cb; /* NULL for fire-and-forget */
	void *opaque;
	const void *owner;      /* remus_qmp_cancel_owner() token, or NULL */
	bool spent;             /* callback already called (timed out) */
	bool internal;          /* our qmp_capabilities */
};

struct sub {
	struct sub *next;
	int handle;
	char *event; /* owned; NULL: every event */
	remus_qmp_event_cb *cb;
	void *opaque;
	bool dead;
};

struct remus_qmp {
	struct remus_loop *loop; /* borrowed */
	char *path;              /* owned */
	int fd;                  /* owned, -1 while connecting or closed */
	enum remus_qmp_state state;
	struct remus_qmp_opts opts;
	remus_qmp_state_cb *state_cb;
	void *state_opaque;
	struct remus_timer deadline_timer; /* until READY */
	struct remus_timer retry_timer;    /* next connect attempt */
	int connect_err;               /* last connect error while retrying */
	unsigned watched;              /* events registered with the loop, 0: none */
	struct remus_buf in;
	struct json_tokener *tok;      /* owned */
	struct cmd *head, *tail;       /* submission order */
	size_t npending;               /* user commands whose callback is due */
	uint64_t next_id;
	struct sub *subs;              /* subscription order */
	int next_handle;
	struct json_object *greeting;  /* owned */
	char *last_error;              /* owned, NULL: none */
	int close_rc;
	unsigned depth;                /* callbacks in progress */
	bool freeing;
};

/* ---- small helpers ---------------------------------------------------- */

static const char oom_msg[] = "out of memory";

/* Returns a malloc'd string, or NULL when out of memory. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;
	int r;

	va_start(ap, f);
	r = vasprintf(&s, f, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

static void set_last_error(struct remus_qmp *q, const char *msg)
{
	char *s = strdup(msg);

	if (!s)
		return;
	free(q->last_error);
	q->last_error = s;
}

static void sweep_subs(struct remus_qmp *q)
{
	struct sub **ps = &q->subs;

	while (*ps) {
		struct sub *s = *ps;

		if (s->dead) {
			*ps = s->next;
			free(s->event);
			free(s);
		} else {
			ps = &s->next;
		}
	}
}

static void cmd_free(struct cmd *c)
{
	if (!c)
		return;
	remus_timer_disarm(&c->timer);
	if (c->fd >= 0)
		close(c->fd);
	free(c->name);
	free(c->line);
	free(c);
}

static void destroy(struct remus_qmp *q)
{
	struct cmd *c = q->head;
	struct sub *s;

	while (c) {
		struct cmd *next = c->next;

		cmd_free(c);
		c = next;
	}
	for (s = q->subs; s; s = q->subs) {
		q->subs = s->next;
		free(s->event);
		free(s);
	}
	remus_timer_disarm(&q->deadline_timer);
	remus_timer_disarm(&q->retry_timer);
	if (q->tok)
		json_tokener_free(q->tok);
	json_object_put(q->greeting);
	remus_buf_release(&q->in);
	free(q->last_error);
	free(q->path);
	free(q);
}

/* Every entry point that may run user callbacks brackets them with
 * enter()/leave(); leave() returns true if @q is gone. */
static void enter(struct remus_qmp *q)
{
	q->depth++;
}

static bool leave(struct remus_qmp *q)
{
	if (--q->depth > 0)
		return false;
	if (q->freeing) {
		destroy(q);
		return true;
	}
	sweep_subs(q);
	return false;
}

static void unlink_cmd(struct remus_qmp *q, struct cmd *c)
{
	struct cmd **pc, *prev = NULL;

	for (pc = &q->head; *pc; prev = *pc, pc = &(*pc)->next) {
		if (*pc == c) {
			*pc = c->next;
			if (q->tail == c)
				q->tail = prev;
			c->next = NULL;
			return;
		}
	}
}

/* The next command whose bytes may go out now, or NULL. */
static struct cmd *next_to_write(struct remus_qmp *q)
{
	struct cmd *c;

	for (c = q->head; c; c = c->next) {
		if (c->off == c->len)
			continue;
		if (q->state == REMUS_QMP_READY)
			return c;
		if (q->state == REMUS_QMP_NEGOTIATING && c->internal)
			return c;
		return NULL;
	}
	return NULL;
}

static void update_watch(struct remus_qmp *q)
{
	unsigned want;
	int rc;

	if (q->fd < 0 || !q->watched)
		return;
	want = REMUS_EV_READ | (next_to_write(q) ? REMUS_EV_WRITE : 0);
	if (want == q->watched)
		return;
	rc = remus_loop_mod_fd(q->loop, q->fd, want);
	if (rc < 0)
		remus_warn(COMP, "qmp %s: cannot update the fd watch: %s", q->path,
			   strerror(-rc));
	else
		q->watched = want;
}

/* ---- closing ---------------------------------------------------------- */

/* Calls @c's callback (if any, once) with an error built from @reason. */
static void fail_cmd(struct remus_qmp *q, struct cmd *c, int rc, const char *reason)
{
	remus_qmp_reply_cb *cb = c->cb;
	char *msg;

	if (c->spent || c->internal)
		return;
	c->spent = true;
	q->npending--;
	if (!cb)
		return;
	msg = fmt("qmp %s: '%s' failed: %s", q->path, c->name, reason);
	cb(q, rc, NULL, msg ? msg : oom_msg, c->opaque);
	free(msg);
}

/*
 * Closes the connection with @rc: every pending command fails with
 * @reason, then the state callback hears CLOSED (unless we are freeing).
 * No-op if already closed.
 */
static void conn_close(struct remus_qmp *q, int rc, const char *reason)
{
	struct cmd *c;
	char *msg;

	if (q->state == REMUS_QMP_CLOSED)
		return;
	q->state = REMUS_QMP_CLOSED;
	q->close_rc = rc;
	msg = fmt("qmp %s: %s", q->path, reason);
	set_last_error(q, msg ? msg : oom_msg);
	if (rc != -ECANCELED)
		remus_warn(COMP, "%s", msg ? msg : oom_msg);
	remus_timer_disarm(&q->deadline_timer);
	remus_timer_disarm(&q->retry_timer);
	if (q->fd >= 0) {
		if (q->watched)
			remus_loop_del_fd(q->loop, q->fd);
		close(q->fd);
		q->fd = -1;
		q->watched = 0;
	}
	remus_buf_reset(&q->in);

	/* One at a time from the head: callbacks may submit (refused), free
	 * (deferred) or cancel an owner, whose commands must still be found
	 * in the list then. */
	while ((c = q->head)) {
		unlink_cmd(q, c);
		remus_timer_disarm(&c->timer);
		fail_cmd(q, c, rc, reason);
		cmd_free(c);
	}
	if (q->state_cb && !q->freeing)
		q->state_cb(q, REMUS_QMP_CLOSED, rc, msg ? msg : oom_msg,
			    q->state_opaque);
	free(msg);
}

static void conn_closef(struct remus_qmp *q, int rc, const char *f, ...)
	__attribute__((format(printf, 3, 4)));
static void conn_closef(struct remus_qmp *q, int rc, const char *f, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	conn_close(q, rc, s ? s : oom_msg);
	free(s);
}

/* ---- commands --------------------------------------------------------- */

static void on_cmd_timeout(struct remus_loop *loop, void *opaque)
{
	struct cmd *c = opaque;
	struct remus_qmp *q = c->q;
	char *reason;

	enter(q);
	reason = fmt("no reply within %u ms", c->timeout_ms);
	remus_warn(COMP, "qmp %s: '%s': %s", q->path, c->name, reason ? reason : oom_msg);
	if (c->off == 0) {
		/* Never started: QEMU will not see it at all. */
		unlink_cmd(q, c);
		fail_cmd(q, c, -ETIMEDOUT, reason ? reason : oom_msg);
		cmd_free(c);
	} else {
		/* Its reply may still come and is then dropped. */
		fail_cmd(q, c, -ETIMEDOUT, reason ? reason : oom_msg);
	}
	free(reason);
	leave(q);
}

/* Creates a command and appends it (or puts it first if @first). */
static int submit(struct remus_qmp *q, const char *command, struct json_object *args,
		  int fd, unsigned timeout_ms, remus_qmp_reply_cb *cb, void *opaque,
		  const void *owner, bool internal, struct cmd **out)
{
	struct json_object *msg = NULL;
	struct cmd *c = NULL;
	const char *s;
	size_t n;
	int rc;

	if (q->state == REMUS_QMP_CLOSED) {
		rc = -ENOTCONN;
		goto out;
	}
	if (!command || !*command || (args && !json_object_is_type(args, json_type_object))) {
		rc = -EINVAL;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	c->fd = -1;
	c->q = q;
	c->id = q->next_id++;
	c->cb = cb;
	c->opaque = opaque;
	c->owner = owner;
	c->internal = internal;
	c->timeout_ms = timeout_ms ? timeout_ms : q->opts.command_timeout_ms;
	if (fd >= 0) {
		c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (c->fd < 0) {
			rc = -errno;
			goto out;
		}
	}
	c->name = strdup(command);
	msg = json_object_new_object();
	if (!c->name || !msg ||
	    json_object_object_add(msg, "execute", json_object_new_string(command)) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	if (args) {
		json_object_object_add(msg, "arguments", args);
		args = NULL; /* msg owns it now */
	}
	if (json_object_object_add(msg, "id", json_object_new_int64((int64_t)c->id)) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN |
						JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	n = strlen(s);
	c->line = malloc(n + 1);
	if (!c->line) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(c->line, s, n);
	c->line[n] = '\n';
	c->len = n + 1;
	if (!internal) {
		remus_timer_init(&c->timer, q->loop, on_cmd_timeout, c);
		remus_timer_arm(&c->timer, c->timeout_ms);
	}
	if (internal) {
		c->next = q->head;
		q->head = c;
		if (!q->tail)
			q->tail = c;
	} else {
		if (q->tail)
			q->tail->next = c;
		else
			q->head = c;
		q->tail = c;
		q->npending++;
	}
	if (out)
		*out = c;
	c = NULL;
	update_watch(q);
	rc = 0;
out:
	json_object_put(args);
	json_object_put(msg);
	cmd_free(c);
	return rc;
}

int remus_qmp_execute(struct remus_qmp *q, const char *command,
		      struct json_object *args, int fd, unsigned timeout_ms,
		      remus_qmp_reply_cb *cb, void *opaque)
{
	return submit(q, command, args, fd, timeout_ms, cb, opaque, NULL, false, NULL);
}

int remus_qmp_execute_owned(struct remus_qmp *q, const void *owner, const char *command,
			    struct json_object *args, int fd, unsigned timeout_ms,
			    remus_qmp_reply_cb *cb, void *opaque)
{
	return submit(q, command, args, fd, timeout_ms, cb, opaque, owner, false, NULL);
}

size_t remus_qmp_cancel_owner(struct remus_qmp *q, const void *owner)
{
	struct cmd *c;
	size_t n = 0;

	if (!q || !owner)
		return 0;
	/* Spent commands stay in the list: the ones (partly) written must
	 * be finished, and a late reply is then dropped like that of a
	 * command that timed out.  Unsent ones still go out, since an owner
	 * that goes away may have queued its last words to QEMU. */
	for (c = q->head; c; c = c->next) {
		if (c->owner != owner || c->spent || c->internal)
			continue;
		c->spent = true;
		c->cb = NULL;
		q->npending--;
		n++;
	}
	return n;
}

/* ---- negotiation ------------------------------------------------------ */

static void on_caps_reply(struct remus_qmp *q, int rc, struct json_object *ret,
			  const char *err, void *opaque)
{
	if (q->state != REMUS_QMP_NEGOTIATING)
		return;
	if (rc < 0) {
		conn_closef(q, rc, "qmp_capabilities refused: %s", err ? err : "?");
		return;
	}
	q->state = REMUS_QMP_READY;
	remus_timer_disarm(&q->deadline_timer);
	remus_debug(COMP, "qmp %s: ready", q->path);
	update_watch(q);
	if (q->state_cb)
		q->state_cb(q, REMUS_QMP_READY, 0, NULL, q->state_opaque);
}

static void on_deadline(struct remus_loop *loop, void *opaque)
{
	struct remus_qmp *q = opaque;

	enter(q);
	if (q->fd < 0)
		conn_closef(q, -ETIMEDOUT, "cannot connect within %u ms: %s",
			    q->opts.connect_timeout_ms,
			    strerror(q->connect_err ? -q->connect_err : ETIMEDOUT));
	else
		conn_closef(q, -ETIMEDOUT, "no QMP %s within %u ms",
			    q->state == REMUS_QMP_CONNECTING ? "greeting" : "negotiation",
			    q->opts.connect_timeout_ms);
	leave(q);
}

/* ---- input ------------------------------------------------------------ */

static bool only_space(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/* Parses one line (@n bytes at @p, followed by its '\n') into an object.
 * Returns 0 and *@out (owned), or -EBADMSG with *@why set (static text). */
static int parse_line(struct remus_qmp *q, const char *p, size_t n,
		      struct json_object **out, const char **why)
{
	enum json_tokener_error jerr;
	struct json_object *o;
	size_t end;

	/* Parse with the newline: it terminates a bare scalar, which json-c
	 * otherwise reports as incomplete. */
	n++;
	json_tokener_reset(q->tok);
	o = json_tokener_parse_ex(q->tok, p, (int)n);
	jerr = json_tokener_get_error(q->tok);
	if (jerr == json_tokener_continue) {
		json_object_put(o);
		*why = "incomplete JSON";
		return -EBADMSG;
	}
	if (jerr != json_tokener_success) {
		*why = json_tokener_error_desc(jerr);
		return -EBADMSG;
	}
	end = json_tokener_get_parse_end(q->tok);
	if (end > n || !only_space(p + end, n - end)) {
		json_object_put(o);
		*why = "trailing data after the JSON value";
		return -EBADMSG;
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*why = "message is not a JSON object";
		return -EBADMSG;
	}
	*out = o;
	return 0;
}

static int64_t event_timestamp(struct json_object *msg)
{
	struct json_object *ts, *sec, *usec;
	int64_t s, us;

	if (!json_object_object_get_ex(msg, "timestamp", &ts) ||
	    !json_object_object_get_ex(ts, "seconds", &sec) ||
	    !json_object_object_get_ex(ts, "microseconds", &usec) ||
	    !json_object_is_type(sec, json_type_int) ||
	    !json_object_is_type(usec, json_type_int))
		return -1;
	s = json_object_get_int64(sec);
	us = json_object_get_int64(usec);
	if (s < 0 || s > INT64_MAX / 1000000 - 1 || us < 0 || us >= 1000000)
		return -1;
	return s * 1000000 + us;
}

static void dispatch_event(struct remus_qmp *q, struct json_object *msg,
			   struct json_object *name)
{
	struct json_object *data = NULL;
	int64_t ts = event_timestamp(msg);
	const char *ev;
	struct sub *s;
	int last = q->next_handle;

	if (!json_object_is_type(name, json_type_string)) {
		conn_close(q, -EBADMSG, "protocol error: event name is not a string");
		return;
	}
	ev = json_object_get_string(name);
	json_object_object_get_ex(msg, "data", &data);
	remus_debug(COMP, "qmp %s: event %s", q->path, ev);
	for (s = q->subs; s && !q->freeing; s = s->next) {
		if (s->dead || s->handle >= last)
			continue;
		if (s->event && strcmp(s->event, ev) != 0)
			continue;
		s->cb(q, ev, data, ts, s->opaque);
	}
}

static void dispatch_reply(struct remus_qmp *q, struct json_object *msg,
			   struct json_object *ret, struct json_object *error)
{
	struct json_object *id, *cls, *desc;
	remus_qmp_reply_cb *cb;
	struct cmd *c;
	int64_t v;
	char *reason = NULL, *full = NULL;

	if (!json_object_object_get_ex(msg, "id", &id)) {
		conn_close(q, -EBADMSG, "protocol error: reply without an id");
		return;
	}
	if (!json_object_is_type(id, json_type_int)) {
		conn_closef(q, -EBADMSG, "protocol error: unexpected id %s in a reply",
			    json_object_to_json_string(id));
		return;
	}
	v = json_object_get_int64(id);
	for (c = q->head; c; c = c->next)
		if ((int64_t)c->id == v)
			break;
	if (!c || c->off < c->len) {
		conn_closef(q, -EBADMSG, "protocol error: unexpected id %lld in a reply",
			    (long long)v);
		return;
	}
	unlink_cmd(q, c);
	remus_timer_disarm(&c->timer);
	if (c->spent) {
		remus_debug(COMP, "qmp %s: dropped the late reply to '%s'", q->path, c->name);
		cmd_free(c);
		return;
	}
	c->spent = true;
	if (!c->internal)
		q->npending--;
	cb = c->internal ? on_caps_reply : c->cb;
	if (!error) {
		if (cb)
			cb(q, 0, ret, NULL, c->opaque);
		cmd_free(c);
		return;
	}
	if (json_object_is_type(error, json_type_object) &&
	    json_object_object_get_ex(error, "class", &cls) &&
	    json_object_object_get_ex(error, "desc", &desc))
		reason = fmt("%s: %s", json_object_get_string(cls),
			     json_object_get_string(desc));
	else
		reason = fmt("%s", json_object_to_json_string(error));
	full = fmt("qmp %s: '%s' failed: %s", q->path, c->name, reason ? reason : "?");
	remus_debug(COMP, "%s", full ? full : oom_msg);
	set_last_error(q, full ? full : oom_msg);
	if (cb)
		cb(q, -EREMOTEIO, error, c->internal ? reason : (full ? full : oom_msg),
		   c->opaque);
	free(reason);
	free(full);
	cmd_free(c);
}

static void dispatch(struct remus_qmp *q, struct json_object *msg)
{
	struct json_object *v, *ret = NULL, *error = NULL;

	if (q->state == REMUS_QMP_CONNECTING) {
		if (!json_object_object_get_ex(msg, "QMP", &v)) {
			conn_close(q, -EBADMSG, "protocol error: expected the QMP greeting");
			return;
		}
		q->greeting = json_object_get(v);
		q->state = REMUS_QMP_NEGOTIATING;
		if (submit(q, "qmp_capabilities", NULL, -1, 0, NULL, NULL, NULL, true, NULL) < 0)
			conn_close(q, -ENOMEM, "cannot queue qmp_capabilities");
		return;
	}
	if (json_object_object_get_ex(msg, "event", &v)) {
		dispatch_event(q, msg, v);
		return;
	}
	json_object_object_get_ex(msg, "return", &ret);
	json_object_object_get_ex(msg, "error", &error);
	if (json_object_object_get_ex(msg, "return", NULL) ||
	    json_object_object_get_ex(msg, "error", NULL)) {
		dispatch_reply(q, msg, ret, error);
		return;
	}
	if (json_object_object_get_ex(msg, "QMP", NULL))
		conn_close(q, -EBADMSG, "protocol error: a second greeting");
	else
		conn_close(q, -EBADMSG, "protocol error: neither reply nor event");
}

static void process_input(struct remus_qmp *q)
{
	while (q->state != REMUS_QMP_CLOSED) {
		const char *p = (const char *)remus_buf_data(&q->in);
		size_t len = remus_buf_len(&q->in), n;
		struct json_object *msg = NULL;
		const char *why = NULL;
		const char *nl = len ? memchr(p, '\n', len) : NULL;

		if (!nl) {
			if (len > q->opts.max_line)
				conn_closef(q, -EMSGSIZE,
					    "protocol error: a line longer than %zu bytes",
					    q->opts.max_line);
			return;
		}
		n = (size_t)(nl - p);
		if (n > q->opts.max_line) {
			conn_closef(q, -EMSGSIZE, "protocol error: a line longer than %zu bytes",
				    q->opts.max_line);
			return;
		}
		if (only_space(p, n)) {
			remus_buf_consume(&q->in, n + 1);
			continue;
		}
		if (parse_line(q, p, n, &msg, &why) < 0) {
			conn_closef(q, -EBADMSG, "protocol error: %s in '%.*s%s'", why,
				    n > 80 ? 80 : (int)n, p, n > 80 ? "..." : "");
			return;
		}
		remus_buf_consume(&q->in, n + 1);
		dispatch(q, msg);
		json_object_put(msg);
	}
}

static void do_read(struct remus_qmp *q)
{
	ssize_t r = remus_buf_read_fd(&q->in, q->fd, READ_CHUNK);

	if (r > 0) {
		process_input(q);
	} else if (r == 0) {
		/* Messages before the EOF were handled in earlier reads. */
		conn_close(q, -ECONNRESET, "connection closed by QEMU");
	} else if (r == -EMSGSIZE) {
		conn_closef(q, -EMSGSIZE, "protocol error: a line longer than %zu bytes",
			    q->opts.max_line);
	} else if (r != -EAGAIN) {
		conn_closef(q, (int)r, "read failed: %s", strerror((int)-r));
	}
}

static void do_write(struct remus_qmp *q)
{
	struct cmd *c;

	while ((c = next_to_write(q))) {
		ssize_t r;

		if (c->off == 0 && c->fd >= 0) {
			r = remus_send_with_fd(q->fd, c->line, c->len, c->fd);
		} else {
			do
				r = send(q->fd, c->line + c->off, c->len - c->off,
					 MSG_NOSIGNAL);
			while (r < 0 && errno == EINTR);
			if (r < 0)
				r = errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		if (r == -EAGAIN)
			return;
		if (r < 0) {
			conn_closef(q, (int)r, "write of '%s' failed: %s", c->name,
				    strerror((int)-r));
			return;
		}
		if (c->fd >= 0) {
			/* The kernel holds its own reference now. */
			close(c->fd);
			c->fd = -1;
		}
		c->off += (size_t)r;
	}
}

static void on_fd(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct remus_qmp *q = opaque;

	enter(q);
	if (events & (REMUS_EV_READ | REMUS_EV_ERROR))
		do_read(q);
	if (q->state != REMUS_QMP_CLOSED && (events & REMUS_EV_WRITE))
		do_write(q);
	if (q->state != REMUS_QMP_CLOSED)
		update_watch(q);
	leave(q);
}

/* ---- connecting ------------------------------------------------------- */

static int attach_fd(struct remus_qmp *q, int fd)
{
	int rc;

	rc = remus_fd_set_nonblock(fd, true);
	if (rc < 0)
		return rc;
	rc = remus_loop_add_fd(q->loop, fd, REMUS_EV_READ, on_fd, q);
	if (rc < 0)
		return rc;
	q->fd = fd;
	q->watched = REMUS_EV_READ;
	return 0;
}

static bool retryable(int rc)
{
	return rc == -ENOENT || rc == -ECONNREFUSED || rc == -EAGAIN;
}

/* One connect attempt.  Returns 0 (connected or retry scheduled) or -errno. */
static int try_connect(struct remus_qmp *q);

static void on_retry(struct remus_loop *loop, void *opaque)
{
	struct remus_qmp *q = opaque;
	int rc;

	enter(q);
	rc = try_connect(q);
	if (rc < 0)
		conn_closef(q, rc, "cannot connect: %s", strerror(-rc));
	leave(q);
}

static int try_connect(struct remus_qmp *q)
{
	int fd, rc;

	fd = remus_unix_connect(q->path, true);
	if (fd >= 0) {
		rc = attach_fd(q, fd);
		if (rc < 0)
			close(fd);
		else
			remus_debug(COMP, "qmp %s: connected", q->path);
		return rc;
	}
	if (!retryable(fd))
		return fd;
	q->connect_err = fd;
	remus_timer_arm(&q->retry_timer, CONNECT_RETRY_MS);
	return 0;
}

static int client_new(struct remus_loop *loop, const char *name,
		      const struct remus_qmp_opts *opts, remus_qmp_state_cb *state_cb,
		      void *opaque, struct remus_qmp **out)
{
	struct remus_qmp *q;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->loop = loop;
	q->fd = -1;
	q->state = REMUS_QMP_CONNECTING;
	q->next_id = 1;
	q->next_handle = 1;
	if (opts)
		q->opts = *opts;
	if (!q->opts.connect_timeout_ms)
		q->opts.connect_timeout_ms = REMUS_QMP_DEFAULT_CONNECT_TIMEOUT_MS;
	if (!q->opts.command_timeout_ms)
		q->opts.command_timeout_ms = REMUS_QMP_DEFAULT_COMMAND_TIMEOUT_MS;
	if (!q->opts.max_line)
		q->opts.max_line = REMUS_QMP_DEFAULT_MAX_LINE;
	/* json-c takes an int length. */
	if (q->opts.max_line > INT_MAX - 1)
		q->opts.max_line = INT_MAX - 1;
	q->state_cb = state_cb;
	q->state_opaque = opaque;
	remus_buf_init(&q->in, q->opts.max_line + 1);
	q->path = strdup(name ? name : "?");
	q->tok = json_tokener_new();
	remus_timer_init(&q->deadline_timer, loop, on_deadline, q);
	remus_timer_init(&q->retry_timer, loop, on_retry, q);
	if (!q->path || !q->tok) {
		destroy(q);
		return -ENOMEM;
	}
	remus_timer_arm(&q->deadline_timer, q->opts.connect_timeout_ms);
	*out = q;
	return 0;
}

int remus_qmp_connect(struct remus_loop *loop, const char *path,
		      const struct remus_qmp_opts *opts,
		      remus_qmp_state_cb *state_cb, void *opaque,
		      struct remus_qmp **out)
{
	struct remus_qmp *q = NULL;
	int rc;

	if (!loop || !path || !out)
		return -EINVAL;
	rc = client_new(loop, path, opts, state_cb, opaque, &q);
	if (rc < 0)
		goto out;
	rc = try_connect(q);
	if (rc < 0) {
		remus_err(COMP, "qmp %s: cannot connect: %s", path, strerror(-rc));
		goto out;
	}
	*out = q;
	q = NULL;
	rc = 0;
out:
	if (q)
		destroy(q);
	return rc;
}

int remus_qmp_open_fd(struct remus_loop *loop, int fd, const char *name,
		      const struct remus_qmp_opts *opts,
		      remus_qmp_state_cb *state_cb, void *opaque,
		      struct remus_qmp **out)
{
	struct remus_qmp *q = NULL;
	int rc;

	if (!loop || fd < 0 || !out) {
		rc = -EINVAL;
		goto out;
	}
	rc = client_new(loop, name, opts, state_cb, opaque, &q);
	if (rc < 0)
		goto out;
	rc = attach_fd(q, fd);
	if (rc < 0)
		goto out;
	fd = -1;
	*out = q;
	q = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (q)
		destroy(q);
	return rc;
}

void remus_qmp_free(struct remus_qmp *q)
{
	if (!q || q->freeing)
		return;
	q->freeing = true;
	enter(q);
	conn_close(q, -ECANCELED, "client closed");
	leave(q);
}

/* ---- synchronous helpers ---------------------------------------------- */

struct sync_result {
	bool done;
	int rc;
	struct json_object *ret;
	char *err;
};

static void on_sync_reply(struct remus_qmp *q, int rc, struct json_object *ret,
			  const char *err, void *opaque)
{
	struct sync_result *s = opaque;

	s->done = true;
	s->rc = rc;
	s->ret = rc == 0 ? json_object_get(ret) : NULL;
	s->err = err ? strdup(err) : NULL;
}

int remus_qmp_execute_sync(struct remus_qmp *q, const char *command,
			   struct json_object *args, int fd, unsigned timeout_ms,
			   struct json_object **ret, char **err)
{
	struct sync_result s = { 0 };
	struct cmd *c = NULL;
	uint64_t id;
	int rc;

	if (ret)
		*ret = NULL;
	if (err)
		*err = NULL;
	rc = submit(q, command, args, fd, timeout_ms, on_sync_reply, &s, NULL, false, &c);
	if (rc < 0) {
		if (err)
			*err = fmt("qmp %s: '%s' failed: %s", q->path,
				   command ? command : "?", strerror(-rc));
		return rc;
	}
	id = c->id; /* c may be freed by the time we look again */
	enter(q);
	while (!s.done) {
		/* The command's own timer bounds this loop. */
		int r = remus_loop_run_once(q->loop, -1);

		if (r < 0 && !s.done) {
			/* The loop is broken; make sure the callback can no
			 * longer write into our stack frame, then give up. */
			struct cmd *p;

			for (p = q->head; p; p = p->next)
				if (p->id == id && !p->spent) {
					p->cb = NULL;
					p->spent = true;
					q->npending--;
				}
			s.rc = r;
			s.err = fmt("qmp %s: '%s' failed: event loop error: %s", q->path,
				    command, strerror(-r));
			break;
		}
	}
	leave(q);
	if (ret)
		*ret = s.ret;
	else
		json_object_put(s.ret);
	if (err)
		*err = s.err;
	else
		free(s.err);
	return s.rc;
}

int remus_qmp_wait_ready(struct remus_qmp *q, unsigned timeout_ms)
{
	uint64_t deadline = remus_now_ms() + timeout_ms;
	int rc = 0;

	enter(q);
	while (q->state != REMUS_QMP_READY && q->state != REMUS_QMP_CLOSED) {
		uint64_t now = remus_now_ms();

		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		rc = remus_loop_run_once(q->loop, deadline - now > INT_MAX ? INT_MAX
					 : (int)(deadline - now));
		if (rc < 0)
			break;
	}
	if (q->state == REMUS_QMP_CLOSED)
		rc = q->close_rc ? q->close_rc : -ENOTCONN;
	else if (q->state == REMUS_QMP_READY)
		rc = 0;
	leave(q);
	return rc;
}

/* ---- events and accessors --------------------------------------------- */

int remus_qmp_subscribe(struct remus_qmp *q, const char *event,
			remus_qmp_event_cb *cb, void *opaque)
{
	struct sub *s, **ps;

	if (!cb)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (event && !(s->event = strdup(event))) {
		free(s);
		return -ENOMEM;
	}
	s->cb = cb;
	s->opaque = opaque;
	s->handle = q->next_handle++;
	for (ps = &q->subs; *ps; ps = &(*ps)->next)
		;
	*ps = s;
	return s->handle;
}

int remus_qmp_unsubscribe(struct remus_qmp *q, int handle)
{
	struct sub *s;

	for (s = q->subs; s; s = s->next) {
		if (s->handle == handle && !s->dead) {
			s->dead = true;
			if (!q->depth)
				sweep_subs(q);
			return 0;
		}
	}
	return -ENOENT;
}

enum remus_qmp_state remus_qmp_get_state(const struct remus_qmp *q)
{
	return q->state;
}

const char *remus_qmp_path(const struct remus_qmp *q)
{
	return q->path;
}

struct json_object *remus_qmp_greeting(const struct remus_qmp *q)
{
	return q->greeting;
}

const char *remus_qmp_last_error(const struct remus_qmp *q)
{
	return q->last_error ? q->last_error : "";
}

size_t remus_qmp_pending(const struct remus_qmp *q)
{
	return q->npending;
}
