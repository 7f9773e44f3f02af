// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The fake QMP server (see fake_qmp.h for what it does and why it runs on
 * the loop).  Input is read with recvmsg into one buffer and split into
 * lines; every read remembers the stream range it covered and the fds it
 * carried, so that a line can be given the fds of the read in which it
 * starts (the last line starting in that read, as the client sends an fd
 * with the first byte of its command and the kernel ends the read there).
 */
#include "support/fake_qmp.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/buf.h"
#include "common/loop.h"
#include "common/sock.h"
#include "qmp/qmp.h"

#define MAX_INPUT (64u << 20)
#define READ_CHUNK (256u << 10)
#define MAX_RX_FDS 8

struct rule {
	char *name; /* NULL: any */
	struct remus_fake_qmp_rule r;
	char *ret, *err_class, *err_desc; /* owned copies */
	unsigned left;                    /* uses left when r.times != 0 */
	struct rule *next;
};

/* An answer waiting for its delay. */
struct delayed {
	struct remus_fake_qmp *f;
	struct remus_fake_qmp_cmd *cmd;
	char *ret, *err_class, *err_desc;
	struct remus_timer timer;
	struct delayed *next;
};

struct named_fd {
	char name[128];
	int fd;
};

/* An fd read but not yet given to a command: it came in the read that
 * covered stream offsets [from, to). */
struct rx_fd {
	int fd;
	uint64_t from, to;
};

struct remus_fake_qmp {
	struct remus_loop *loop;
	int fd;         /* the connection's server end */
	int lfd;        /* listening socket, -1 */
	char *path;     /* of the listening socket */
	bool watched, paused, peer_closed;
	struct remus_fake_qmp_opts opts;
	char *greeting;

	struct remus_buf in;
	uint64_t in_off;       /* stream offset of the first byte in @in */
	struct rx_fd rx[MAX_RX_FDS];
	unsigned nrx;

	struct remus_fake_qmp_cmd **cmds;
	size_t ncmds, cap;
	size_t cursor;         /* commands returned by remus_fake_qmp_next() */

	struct rule *rules;
	struct delayed *delayed;
	struct named_fd fds[16];
	unsigned nfds;

	char *log;
	size_t log_len, log_cap;
};

/* ---- output ----------------------------------------------------------- */

/* Writes @n bytes, blocking.  A client that closed its end is not an
 * error (QEMU drops what it cannot write too); anything else is. */
static void send_all(struct remus_fake_qmp *f, const void *p, size_t n)
{
	const char *c = p;

	if (f->fd < 0)
		fail_msg("fake QMP: sending with no connection: %.*s", (int)n, c);
	while (n) {
		ssize_t r = send(f->fd, c, n, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			f->peer_closed = true;
			return;
		}
		if (r < 0)
			fail_msg("fake QMP: send: %s", strerror(errno));
		c += r;
		n -= (size_t)r;
	}
}

static void send_line(struct remus_fake_qmp *f, const char *s)
{
	send_all(f, s, strlen(s));
	send_all(f, "\n", 1);
}

void remus_fake_qmp_send(struct remus_fake_qmp *f, const char *text)
{
	send_all(f, text, strlen(text));
}

void remus_fake_qmp_sendf(struct remus_fake_qmp *f, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	remus_fake_qmp_send(f, s);
	free(s);
}

/* Sends @m (taken) with @cmd's id and marks @cmd answered. */
static void answer(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
		   struct json_object *m)
{
	if (cmd->answered)
		fail_msg("fake QMP: '%s' (#%llu) answered twice", cmd->name,
			 (unsigned long long)cmd->seq);
	if (cmd->id)
		json_object_object_add(m, "id", json_object_get(cmd->id));
	cmd->answered = true;
	send_line(f, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
	json_object_put(m);
}

void remus_fake_qmp_reply_json(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
			       struct json_object *ret)
{
	struct json_object *m = json_object_new_object();

	json_object_object_add(m, "return", ret ? ret : json_object_new_object());
	answer(f, cmd, m);
}

void remus_fake_qmp_reply(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
			  const char *ret_json)
{
	struct json_object *ret = NULL;

	if (ret_json) {
		ret = json_tokener_parse(ret_json);
		if (!ret && strcmp(ret_json, "null") != 0)
			fail_msg("fake QMP: scripted return value is not JSON: %s", ret_json);
	}
	remus_fake_qmp_reply_json(f, cmd, ret);
}

void remus_fake_qmp_reply_error(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
				const char *cls, const char *desc)
{
	struct json_object *m = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "class", json_object_new_string(cls));
	json_object_object_add(e, "desc", json_object_new_string(desc));
	json_object_object_add(m, "error", e);
	answer(f, cmd, m);
}

void remus_fake_qmp_event(struct remus_fake_qmp *f, const char *name, const char *data_json)
{
	struct json_object *m = json_object_new_object(), *ts = json_object_new_object();
	struct timeval tv;

	gettimeofday(&tv, NULL);
	json_object_object_add(m, "event", json_object_new_string(name));
	if (data_json) {
		struct json_object *d = json_tokener_parse(data_json);

		if (!d)
			fail_msg("fake QMP: event data is not JSON: %s", data_json);
		json_object_object_add(m, "data", d);
	}
	json_object_object_add(ts, "seconds", json_object_new_int64(tv.tv_sec));
	json_object_object_add(ts, "microseconds", json_object_new_int64(tv.tv_usec));
	json_object_object_add(m, "timestamp", ts);
	send_line(f, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
	json_object_put(m);
}

/* ---- what QEMU itself does -------------------------------------------- */

static void builtin_getfd(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd)
{
	const char *name = remus_fake_qmp_arg(cmd, "fdname");
	unsigned i;

	if (!name) {
		remus_fake_qmp_reply_error(f, cmd, "GenericError",
					   "Parameter 'fdname' is missing");
		return;
	}
	if (cmd->fd < 0) {
		remus_fake_qmp_reply_error(f, cmd, "GenericError",
					   "No file descriptor supplied via SCM_RIGHTS");
		return;
	}
	/* QEMU replaces an fd of the same name. */
	for (i = 0; i < f->nfds; i++)
		if (strcmp(f->fds[i].name, name) == 0)
			break;
	if (i == f->nfds) {
		assert_true(f->nfds < sizeof(f->fds) / sizeof(f->fds[0]));
		f->nfds++;
		snprintf(f->fds[i].name, sizeof(f->fds[i].name), "%s", name);
	} else {
		close(f->fds[i].fd);
	}
	f->fds[i].fd = cmd->fd;
	cmd->fd = -1;
	remus_fake_qmp_reply(f, cmd, NULL);
}

static void builtin_closefd(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd)
{
	const char *name = remus_fake_qmp_arg(cmd, "fdname");
	int fd = name ? remus_fake_qmp_take_fd(f, name) : -1;

	if (fd < 0) {
		remus_fake_qmp_reply_error(f, cmd, "GenericError",
					   "File descriptor named 'x' not found");
		return;
	}
	close(fd);
	remus_fake_qmp_reply(f, cmd, NULL);
}

static void builtin(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
		    enum remus_fake_qmp_policy policy)
{
	if (strcmp(cmd->name, "getfd") == 0) {
		builtin_getfd(f, cmd);
	} else if (strcmp(cmd->name, "closefd") == 0) {
		builtin_closefd(f, cmd);
	} else if (policy == REMUS_FAKE_QMP_NOT_FOUND && strcmp(cmd->name, "qmp_capabilities")) {
		char desc[256];

		snprintf(desc, sizeof(desc), "The command %s has not been found", cmd->name);
		remus_fake_qmp_reply_error(f, cmd, "CommandNotFound", desc);
	} else {
		remus_fake_qmp_reply(f, cmd, NULL);
	}
}

void remus_fake_qmp_builtin(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd)
{
	builtin(f, cmd, f->opts.policy == REMUS_FAKE_QMP_MANUAL ? REMUS_FAKE_QMP_RETURN
							       : f->opts.policy);
}

/* ---- rules ------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	assert_non_null(d);
	return d;
}

int remus_fake_qmp_script(struct remus_fake_qmp *f, const char *name,
			  const struct remus_fake_qmp_rule *rule)
{
	struct rule *r = calloc(1, sizeof(*r)), **pp;

	if (!r)
		return -ENOMEM;
	r->name = dup_or_null(name);
	r->r = *rule;
	r->ret = dup_or_null(rule->ret);
	r->err_class = dup_or_null(rule->err_class);
	r->err_desc = dup_or_null(rule->err_desc);
	r->left = rule->times;
	for (pp = &f->rules; *pp; pp = &(*pp)->next)
		;
	*pp = r;
	return 0;
}

static struct rule *find_rule(struct remus_fake_qmp *f, const char *name)
{
	struct rule *r, *any = NULL;

	for (r = f->rules; r; r = r->next) {
		if (r->r.times && r->left == 0)
			continue;
		if (r->name && strcmp(r->name, name) == 0)
			return r;
		if (!r->name && !any)
			any = r;
	}
	return any;
}

static void send_scripted(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
			  const char *ret, const char *err_class, const char *err_desc)
{
	if (err_class)
		remus_fake_qmp_reply_error(f, cmd, err_class, err_desc ? err_desc : "");
	else
		remus_fake_qmp_reply(f, cmd, ret);
}

static void on_delayed(struct remus_loop *loop, void *opaque)
{
	struct delayed *d = opaque, **pp;
	struct remus_fake_qmp *f = d->f;

	for (pp = &f->delayed; *pp != d; pp = &(*pp)->next)
		;
	*pp = d->next;
	if (f->fd >= 0)
		send_scripted(f, d->cmd, d->ret, d->err_class, d->err_desc);
	free(d->ret);
	free(d->err_class);
	free(d->err_desc);
	free(d);
}

static void apply(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd)
{
	struct rule *r = find_rule(f, cmd->name);
	struct delayed *d;

	if (!r) {
		if (f->opts.policy != REMUS_FAKE_QMP_MANUAL)
			builtin(f, cmd, f->opts.policy);
		return;
	}
	if (r->r.times)
		r->left--;
	if (r->r.cb) {
		r->r.cb(f, cmd, r->r.opaque);
		return;
	}
	if (r->r.silent)
		return;
	if (!r->r.delay_ms) {
		send_scripted(f, cmd, r->ret, r->err_class, r->err_desc);
		return;
	}
	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	d->f = f;
	d->cmd = cmd;
	d->ret = dup_or_null(r->ret);
	d->err_class = dup_or_null(r->err_class);
	d->err_desc = dup_or_null(r->err_desc);
	remus_timer_init(&d->timer, f->loop, on_delayed, d);
	remus_timer_arm(&d->timer, r->r.delay_ms);
	d->next = f->delayed;
	f->delayed = d;
}

/* ---- input ------------------------------------------------------------ */

static void log_append(struct remus_fake_qmp *f, const char *s)
{
	size_t n = strlen(s);

	if (f->log_len + n + 1 > f->log_cap) {
		size_t cap = (f->log_len + n + 1) * 2;
		char *p = realloc(f->log, cap);

		assert_non_null(p);
		f->log = p;
		f->log_cap = cap;
	}
	memcpy(f->log + f->log_len, s, n + 1);
	f->log_len += n;
}

static void log_cmd(struct remus_fake_qmp *f, const struct remus_fake_qmp_cmd *cmd)
{
	static const char *const keys[] = { "fdname", "uri", "path", "id" };
	struct json_object *v;
	size_t i;

	if (strcmp(cmd->name, "qmp_capabilities") == 0)
		return;
	log_append(f, cmd->name);
	for (i = 0; cmd->args && i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!json_object_object_get_ex(cmd->args, keys[i], &v))
			continue;
		log_append(f, " ");
		log_append(f, json_object_is_type(v, json_type_string) ?
			   json_object_get_string(v) :
			   json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		break;
	}
	log_append(f, ";");
}

/* Gives @cmd the fds whose read says they belong to it (see the top). */
static void attach_fds(struct remus_fake_qmp *f, struct remus_fake_qmp_cmd *cmd,
		       uint64_t start, uint64_t end)
{
	unsigned i = 0;

	while (i < f->nrx) {
		struct rx_fd *x = &f->rx[i];
		bool mine = false, misplaced = false;

		if (x->from <= start && start < x->to && end + 1 >= x->to)
			mine = true;
		else if (start < x->from && x->to <= end + 1)
			mine = misplaced = true;
		if (!mine) {
			i++;
			continue;
		}
		if (cmd->fd >= 0)
			fail_msg("fake QMP: two fds came with '%s'", cmd->name);
		cmd->fd = x->fd;
		cmd->fd_misplaced = misplaced;
		f->rx[i] = f->rx[--f->nrx];
	}
}

/* The line [@start, @end) of the stream (@end: its newline) arrived. */
static void take_line(struct remus_fake_qmp *f, const char *text, uint64_t start,
		      uint64_t end)
{
	struct remus_fake_qmp_cmd *cmd;
	struct json_object *msg, *v;

	msg = json_tokener_parse(text);
	if (!msg || !json_object_is_type(msg, json_type_object))
		fail_msg("fake QMP: the client sent a line that is not a JSON object: %.200s",
			 text);
	cmd = calloc(1, sizeof(*cmd));
	assert_non_null(cmd);
	cmd->msg = msg;
	cmd->fd = -1;
	cmd->seq = f->ncmds + 1;
	cmd->offset = start;
	cmd->t_ms = remus_now_ms();
	cmd->name = json_object_object_get_ex(msg, "execute", &v) ? json_object_get_string(v) : "";
	if (json_object_object_get_ex(msg, "arguments", &v))
		cmd->args = v;
	if (json_object_object_get_ex(msg, "id", &v))
		cmd->id = v;
	attach_fds(f, cmd, start, end);
	if (f->ncmds == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct remus_fake_qmp_cmd **a = realloc(f->cmds, cap * sizeof(*a));

		assert_non_null(a);
		f->cmds = a;
		f->cap = cap;
	}
	f->cmds[f->ncmds++] = cmd;
	log_cmd(f, cmd);
	apply(f, cmd);
}

static void split_lines(struct remus_fake_qmp *f)
{
	uint8_t *nl;

	/* A handler may close the connection, never free the fake. */
	while (f->fd >= 0 && remus_buf_len(&f->in) &&
	       (nl = memchr(remus_buf_data(&f->in), '\n', remus_buf_len(&f->in)))) {
		size_t n = (size_t)(nl - remus_buf_data(&f->in));
		uint64_t start = f->in_off;
		char *line = malloc(n + 1);

		assert_non_null(line);
		memcpy(line, remus_buf_data(&f->in), n);
		line[n] = '\0';
		remus_buf_consume(&f->in, n + 1);
		f->in_off += n + 1;
		take_line(f, line, start, start + n);
		free(line);
	}
}

/* One recvmsg.  Returns bytes read, 0 at EOF, or -errno. */
static ssize_t pull(struct remus_fake_qmp *f)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * MAX_RX_FDS)];
	} ctl;
	struct iovec iov;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	uint64_t from = f->in_off + remus_buf_len(&f->in);
	ssize_t r;
	int rc;

	rc = remus_buf_reserve(&f->in, READ_CHUNK);
	if (rc < 0)
		fail_msg("fake QMP: a line of over %u bytes", MAX_INPUT);
	iov.iov_base = remus_buf_tail(&f->in);
	iov.iov_len = READ_CHUNK;
	m.msg_control = ctl.b;
	m.msg_controllen = sizeof(ctl.b);
	do
		r = recvmsg(f->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		size_t k, n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < n; k++) {
			assert_true(f->nrx < MAX_RX_FDS);
			memcpy(&f->rx[f->nrx].fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			f->rx[f->nrx].from = from;
			f->rx[f->nrx].to = from + (uint64_t)r;
			f->nrx++;
		}
	}
	remus_buf_commit(&f->in, (size_t)r);
	return r;
}

static void unwatch(struct remus_fake_qmp *f)
{
	if (f->watched) {
		remus_loop_del_fd(f->loop, f->fd);
		f->watched = false;
	}
}

static void on_readable(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_fake_qmp *f = opaque;
	ssize_t r = pull(f);

	if (r == -EAGAIN)
		return;
	if (r <= 0) {
		/* EOF (or a reset): the client is gone; the fd stays open
		 * for the test to close. */
		f->peer_closed = true;
		unwatch(f);
		return;
	}
	split_lines(f);
}

static void watch(struct remus_fake_qmp *f)
{
	if (f->fd < 0 || f->watched || f->paused || f->peer_closed)
		return;
	assert_int_equal(remus_loop_add_fd(f->loop, f->fd, REMUS_EV_READ, on_readable, f), 0);
	f->watched = true;
}

static void start_conn(struct remus_fake_qmp *f, int fd)
{
	f->fd = fd;
	if (!f->opts.no_greeting)
		send_line(f, f->greeting);
	watch(f);
}

static void on_accept(struct remus_loop *loop, int lfd, unsigned ev, void *opaque)
{
	struct remus_fake_qmp *f = opaque;
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return;
	/* One client, as QEMU's monitor serves one at a time. */
	remus_loop_del_fd(loop, lfd);
	start_conn(f, c);
}

/* ---- life ------------------------------------------------------------- */

static int fake_alloc(struct remus_loop *loop, const struct remus_fake_qmp_opts *opts,
		      struct remus_fake_qmp **out)
{
	struct remus_fake_qmp *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->loop = loop;
	f->fd = f->lfd = -1;
	if (opts)
		f->opts = *opts;
	f->greeting = strdup(f->opts.greeting ? f->opts.greeting : REMUS_FAKE_QMP_GREETING);
	f->opts.greeting = NULL;
	f->log = calloc(1, 1);
	f->log_cap = 1;
	remus_buf_init(&f->in, MAX_INPUT);
	if (!f->greeting || !f->log) {
		remus_fake_qmp_free(f);
		return -ENOMEM;
	}
	*out = f;
	return 0;
}

int remus_fake_qmp_new(struct remus_loop *loop, const struct remus_fake_qmp_opts *opts,
		       struct remus_fake_qmp **out, int *client_fd)
{
	struct remus_fake_qmp *f;
	int sv[2], rc;

	rc = fake_alloc(loop, opts, &f);
	if (rc < 0)
		return rc;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		remus_fake_qmp_free(f);
		return rc;
	}
	start_conn(f, sv[1]);
	*client_fd = sv[0];
	*out = f;
	return 0;
}

int remus_fake_qmp_listen(struct remus_loop *loop, const char *path,
			  const struct remus_fake_qmp_opts *opts,
			  struct remus_fake_qmp **out)
{
	struct remus_fake_qmp *f;
	int rc;

	rc = fake_alloc(loop, opts, &f);
	if (rc < 0)
		return rc;
	f->path = strdup(path);
	f->lfd = remus_unix_listen(path, 4);
	if (!f->path || f->lfd < 0) {
		rc = f->lfd < 0 ? f->lfd : -ENOMEM;
		remus_fake_qmp_free(f);
		return rc;
	}
	rc = remus_loop_add_fd(loop, f->lfd, REMUS_EV_READ, on_accept, f);
	if (rc < 0) {
		remus_fake_qmp_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

void remus_fake_qmp_pair(struct remus_loop *loop, remus_fake_qmp_cmd_cb *cb, void *opaque,
			 struct remus_fake_qmp **fake, struct remus_qmp **client)
{
	struct remus_fake_qmp_rule all = { .cb = cb, .opaque = opaque };
	int fd;

	assert_int_equal(remus_fake_qmp_new(loop, NULL, fake, &fd), 0);
	if (cb)
		assert_int_equal(remus_fake_qmp_script(*fake, NULL, &all), 0);
	assert_int_equal(remus_qmp_open_fd(loop, fd, "fake.qmp", NULL, NULL, NULL, client), 0);
	assert_int_equal(remus_qmp_wait_ready(*client, 5000), 0);
}

void remus_fake_qmp_close(struct remus_fake_qmp *f)
{
	if (f->fd < 0)
		return;
	unwatch(f);
	close(f->fd);
	f->fd = -1;
}

void remus_fake_qmp_free(struct remus_fake_qmp *f)
{
	size_t i;

	if (!f)
		return;
	remus_fake_qmp_close(f);
	if (f->lfd >= 0) {
		remus_loop_del_fd(f->loop, f->lfd);
		close(f->lfd);
		unlink(f->path);
	}
	while (f->delayed) {
		struct delayed *d = f->delayed;

		f->delayed = d->next;
		remus_timer_disarm(&d->timer);
		free(d->ret);
		free(d->err_class);
		free(d->err_desc);
		free(d);
	}
	while (f->rules) {
		struct rule *r = f->rules;

		f->rules = r->next;
		free(r->name);
		free(r->ret);
		free(r->err_class);
		free(r->err_desc);
		free(r);
	}
	for (i = 0; i < f->ncmds; i++) {
		if (f->cmds[i]->fd >= 0)
			close(f->cmds[i]->fd);
		json_object_put(f->cmds[i]->msg);
		free(f->cmds[i]);
	}
	for (i = 0; i < f->nrx; i++)
		close(f->rx[i].fd);
	for (i = 0; i < f->nfds; i++)
		close(f->fds[i].fd);
	free(f->cmds);
	remus_buf_release(&f->in);
	free(f->log);
	free(f->greeting);
	free(f->path);
	free(f);
}

/* ---- what tests ask --------------------------------------------------- */

int remus_fake_qmp_fd(const struct remus_fake_qmp *f)
{
	return f->fd;
}

void remus_fake_qmp_pause(struct remus_fake_qmp *f, bool paused)
{
	f->paused = paused;
	if (paused)
		unwatch(f);
	else
		watch(f);
}

bool remus_fake_qmp_peer_closed(const struct remus_fake_qmp *f)
{
	return f->peer_closed;
}

size_t remus_fake_qmp_ncmds(const struct remus_fake_qmp *f)
{
	return f->ncmds;
}

struct remus_fake_qmp_cmd *remus_fake_qmp_cmd(const struct remus_fake_qmp *f, size_t i)
{
	return i < f->ncmds ? f->cmds[i] : NULL;
}

unsigned remus_fake_qmp_count(const struct remus_fake_qmp *f, const char *name)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < f->ncmds; i++)
		n += strcmp(f->cmds[i]->name, name) == 0;
	return n;
}

struct remus_fake_qmp_cmd *remus_fake_qmp_next(struct remus_fake_qmp *f, const char *expect,
					       unsigned timeout_ms)
{
	uint64_t deadline = remus_now_ms() + timeout_ms;
	struct remus_fake_qmp_cmd *cmd;

	while (f->cursor == f->ncmds) {
		if (remus_now_ms() > deadline)
			fail_msg("fake QMP: no command within %u ms (expected '%s'); so far: %s",
				 timeout_ms, expect ? expect : "any", f->log);
		assert_int_equal(remus_loop_run_once(f->loop, 5), 0);
	}
	cmd = f->cmds[f->cursor++];
	if (expect && strcmp(cmd->name, expect) != 0)
		fail_msg("fake QMP: expected '%s', got '%s'", expect, cmd->name);
	return cmd;
}

const char *remus_fake_qmp_log(const struct remus_fake_qmp *f)
{
	return f->log;
}

void remus_fake_qmp_log_clear(struct remus_fake_qmp *f)
{
	f->log_len = 0;
	f->log[0] = '\0';
}

const char *remus_fake_qmp_arg(const struct remus_fake_qmp_cmd *cmd, const char *key)
{
	struct json_object *v;

	if (!cmd->args || !json_object_object_get_ex(cmd->args, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t remus_fake_qmp_cmd_id(const struct remus_fake_qmp_cmd *cmd)
{
	if (!cmd->id || !json_object_is_type(cmd->id, json_type_int))
		fail_msg("fake QMP: '%s' has no integer id", cmd->name);
	return json_object_get_int64(cmd->id);
}

int remus_fake_qmp_take_cmd_fd(struct remus_fake_qmp_cmd *cmd)
{
	int fd = cmd->fd;

	cmd->fd = -1;
	return fd;
}

int remus_fake_qmp_take_fd(struct remus_fake_qmp *f, const char *fdname)
{
	unsigned i;
	int fd;

	for (i = 0; i < f->nfds; i++) {
		if (strcmp(f->fds[i].name, fdname) == 0) {
			fd = f->fds[i].fd;
			f->fds[i] = f->fds[--f->nfds];
			return fd;
		}
	}
	return -1;
}

unsigned remus_fake_qmp_nfds(const struct remus_fake_qmp *f)
{
	return f->nfds;
}
