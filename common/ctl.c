// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Control socket (see ctl.h).  Each client is a small struct with a bounded
 * input buffer and the pending answer; everything is non-blocking on the
 * loop, so a stuck client cannot stall checkpoints.  The asynchronous
 * kind hands the client itself out as the request: while the owner holds
 * it the fd is not watched (a client cannot make the loop spin or free
 * what the owner holds) and no timer runs; remus_ctl_reply() writes the
 * answer, or frees a client whose connection broke meanwhile.
 */
#include "common/ctl.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/loop.h"
#include "common/sock.h"

#define CLIENT_TIMEOUT_MS 5000

/* A client; for the asynchronous kind also the request (struct
 * remus_ctl_request is this struct). */
struct client {
	struct remus_ctl *ctl;
	int fd;
	struct remus_buf in, out;
	bool answered;
	bool pending;             /* handed to the owner, not answered yet */
	struct ucred cred;
	struct remus_timer timer; /* drops a client that takes too long */
	struct client *next;
};

struct remus_ctl {
	struct remus_loop *loop;
	int fd;
	char *path;
	remus_ctl_handler_cb *handler;     /* synchronous kind, or NULL */
	remus_ctl_request_cb *request_cb;  /* asynchronous kind */
	void *opaque;
	struct remus_ctl_opts opts;
	struct client *clients;
};

char *remus_ctl_error(const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[512];
	char *s;
	va_list ap;

	if (!o)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(false));
	json_object_object_add(o, "error", json_object_new_string(msg));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static void client_free(struct client *c)
{
	struct client **p;

	for (p = &c->ctl->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	remus_timer_disarm(&c->timer);
	if (!c->pending)    /* a pending client's fd is not watched */
		remus_loop_del_fd(c->ctl->loop, c->fd);
	close(c->fd);
	remus_buf_release(&c->in);
	remus_buf_release(&c->out);
	free(c);
}

static void on_client_timeout(struct remus_loop *loop, void *opaque)
{
	struct client *c = opaque;

	client_free(c);
}

static void on_client(struct remus_loop *loop, int fd, unsigned ev, void *opaque);

/* Writes @reply (taken) to @c, which is not watched by the loop. */
static void deliver(struct client *c, char *reply)
{
	ssize_t r;

	if (!reply)
		reply = strdup("{\"ok\":false,\"error\":\"out of memory\"}");
	if (!reply || remus_buf_append(&c->out, reply, strlen(reply)) < 0 ||
	    remus_buf_append(&c->out, "\n", 1) < 0) {
		free(reply);
		client_free(c);
		return;
	}
	free(reply);
	c->answered = true;
	/* Write now: the request may have been "stop the daemon", after
	 * which the loop does not come back to this client. */
	r = remus_buf_write_fd(&c->out, c->fd);
	if ((r < 0 && r != -EAGAIN) || remus_buf_len(&c->out) == 0) {
		client_free(c);
		return;
	}
	/* The rest when the socket takes it, within the client's time. */
	if (remus_loop_add_fd(c->ctl->loop, c->fd, REMUS_EV_WRITE, on_client, c) < 0) {
		client_free(c);
		return;
	}
	remus_timer_arm(&c->timer, c->ctl->opts.timeout_ms);
}

static void answer(struct client *c, const char *line)
{
	struct remus_ctl *ctl = c->ctl;

	remus_loop_del_fd(ctl->loop, c->fd);
	remus_timer_disarm(&c->timer);
	if (ctl->handler) {
		deliver(c, ctl->handler(ctl->opaque, line));
		return;
	}
	/* From here the owner holds @c; it may answer inside the callback. */
	c->pending = true;
	ctl->request_cb(ctl->opaque, (struct remus_ctl_request *)c, line);
}

void remus_ctl_reply(struct remus_ctl_request *req, char *answer_text)
{
	struct client *c = (struct client *)req;

	/* A client that went away meanwhile fails the write: freed there. */
	c->pending = false;
	deliver(c, answer_text);
}

uid_t remus_ctl_request_uid(const struct remus_ctl_request *req)
{
	return ((const struct client *)req)->cred.uid;
}

pid_t remus_ctl_request_pid(const struct remus_ctl_request *req)
{
	return ((const struct client *)req)->cred.pid;
}

static void on_client(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct client *c = opaque;
	ssize_t r;
	uint8_t *nl;

	if (c->answered) {
		r = remus_buf_write_fd(&c->out, fd);
		if ((r < 0 && r != -EAGAIN) || remus_buf_len(&c->out) == 0)
			client_free(c);
		return;
	}
	r = remus_buf_read_fd(&c->in, fd, c->ctl->opts.max_line);
	if (r == -EAGAIN)
		return;
	if (r <= 0) {
		client_free(c);
		return;
	}
	nl = memchr(remus_buf_data(&c->in), '\n', remus_buf_len(&c->in));
	if (!nl) {
		if (remus_buf_len(&c->in) >= c->ctl->opts.max_line)
			client_free(c);
		return;
	}
	*nl = 0;
	if (nl > remus_buf_data(&c->in) && nl[-1] == '\r')
		nl[-1] = 0;
	answer(c, (const char *)remus_buf_data(&c->in));
}

/* SO_PEERCRED: root, this process's user, or the configured group. */
static bool peer_allowed(const struct remus_ctl *ctl, const struct ucred *cr)
{
	if (!ctl->opts.peer_check)
		return true;
	return cr->uid == 0 || cr->uid == geteuid() ||
	       (ctl->opts.use_gid && cr->gid == ctl->opts.gid);
}

static void on_accept(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	static const char refused[] = "{\"ok\":false,\"error\":\"permission denied: the "
		"control socket takes requests from root or the configured ctl_group only; "
		"run as root\",\"code\":\"bad-request\"}\n";
	struct remus_ctl *ctl = opaque;
	struct ucred cr = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t crlen = sizeof(cr);
	struct client *c;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	ssize_t w;

	if (cfd < 0)
		return;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 && ctl->opts.peer_check) {
		close(cfd);
		return;
	}
	if (!peer_allowed(ctl, &cr)) {
		/* A new socket's buffer takes this line at once; no wait. */
		w = send(cfd, refused, sizeof(refused) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		close(cfd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return;
	}
	c->ctl = ctl;
	c->fd = cfd;
	c->cred = cr;
	remus_buf_init(&c->in, ctl->opts.max_line);
	remus_buf_init(&c->out, 0);
	if (remus_loop_add_fd(loop, cfd, REMUS_EV_READ, on_client, c) < 0) {
		close(cfd);
		free(c);
		return;
	}
	remus_timer_init(&c->timer, loop, on_client_timeout, c);
	remus_timer_arm(&c->timer, ctl->opts.timeout_ms);
	c->next = ctl->clients;
	ctl->clients = c;
}

static int listen_common(struct remus_loop *loop, const char *path,
			 const struct remus_ctl_opts *opts, remus_ctl_handler_cb *handler,
			 remus_ctl_request_cb *request_cb, void *opaque, struct remus_ctl **out)
{
	struct remus_ctl *ctl = calloc(1, sizeof(*ctl));
	bool made = false;
	int rc;

	if (!ctl)
		return -ENOMEM;
	ctl->loop = loop;
	ctl->handler = handler;
	ctl->request_cb = request_cb;
	ctl->opaque = opaque;
	if (opts)
		ctl->opts = *opts;
	if (!ctl->opts.max_line)
		ctl->opts.max_line = REMUS_CTL_MAX_LINE;
	if (!ctl->opts.timeout_ms)
		ctl->opts.timeout_ms = CLIENT_TIMEOUT_MS;
	ctl->path = strdup(path);
	ctl->fd = remus_unix_listen(path, 8);
	if (!ctl->path || ctl->fd < 0) {
		rc = ctl->fd < 0 ? ctl->fd : -ENOMEM;
		goto fail;
	}
	made = true;
	/* Set after bind: a client that connects in between is still
	 * checked by SO_PEERCRED (peer_check). */
	if ((ctl->opts.use_gid && chown(path, (uid_t)-1, ctl->opts.gid) < 0) ||
	    (ctl->opts.mode && chmod(path, ctl->opts.mode) < 0)) {
		rc = -errno;
		goto fail;
	}
	remus_fd_set_nonblock(ctl->fd, true);
	rc = remus_loop_add_fd(loop, ctl->fd, REMUS_EV_READ, on_accept, ctl);
	if (rc < 0)
		goto fail;
	*out = ctl;
	return 0;
fail:
	if (ctl->fd >= 0)
		close(ctl->fd);
	if (made)
		unlink(path);
	free(ctl->path);
	free(ctl);
	return rc;
}

int remus_ctl_listen(struct remus_loop *loop, const char *path,
		     remus_ctl_handler_cb *handler, void *opaque, struct remus_ctl **out)
{
	return listen_common(loop, path, NULL, handler, NULL, opaque, out);
}

int remus_ctl_listen_opts(struct remus_loop *loop, const char *path,
			  const struct remus_ctl_opts *opts, remus_ctl_handler_cb *handler,
			  void *opaque, struct remus_ctl **out)
{
	return listen_common(loop, path, opts, handler, NULL, opaque, out);
}

int remus_ctl_listen_async(struct remus_loop *loop, const char *path,
			   const struct remus_ctl_opts *opts, remus_ctl_request_cb *cb,
			   void *opaque, struct remus_ctl **out)
{
	return listen_common(loop, path, opts, NULL, cb, opaque, out);
}

void remus_ctl_free(struct remus_ctl *ctl)
{
	if (!ctl)
		return;
	while (ctl->clients)
		client_free(ctl->clients);
	remus_loop_del_fd(ctl->loop, ctl->fd);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
