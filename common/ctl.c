// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Control socket (see ctl.h).  Each client is a small struct with a bounded
 * input buffer and the pending answer; everything is non-blocking on the
 * loop, so a stuck client cannot stall checkpoints.
 */
#include "common/ctl.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/loop.h"
#include "common/sock.h"

#define CLIENT_TIMEOUT_MS 5000

struct client {
	struct remus_ctl *ctl;
	int fd;
	struct remus_buf in, out;
	bool answered;
	struct remus_timer timer; /* drops a client that takes too long */
	struct client *next;
};

struct remus_ctl {
	struct remus_loop *loop;
	int fd;
	char *path;
	remus_ctl_handler_cb *handler;
	void *opaque;
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
	remus_loop_del_fd(c->ctl->loop, c->fd);
	remus_timer_disarm(&c->timer);
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

static void answer(struct client *c, const char *line)
{
	char *reply = c->ctl->handler(c->ctl->opaque, line);
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
	remus_loop_mod_fd(c->ctl->loop, c->fd, REMUS_EV_WRITE);
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
	r = remus_buf_read_fd(&c->in, fd, REMUS_CTL_MAX_LINE);
	if (r == -EAGAIN)
		return;
	if (r <= 0) {
		client_free(c);
		return;
	}
	nl = memchr(remus_buf_data(&c->in), '\n', remus_buf_len(&c->in));
	if (!nl) {
		if (remus_buf_len(&c->in) >= REMUS_CTL_MAX_LINE)
			client_free(c);
		return;
	}
	*nl = 0;
	if (nl > remus_buf_data(&c->in) && nl[-1] == '\r')
		nl[-1] = 0;
	answer(c, (const char *)remus_buf_data(&c->in));
}

static void on_accept(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_ctl *ctl = opaque;
	struct client *c;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (cfd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return;
	}
	c->ctl = ctl;
	c->fd = cfd;
	remus_buf_init(&c->in, REMUS_CTL_MAX_LINE);
	remus_buf_init(&c->out, 0);
	if (remus_loop_add_fd(loop, cfd, REMUS_EV_READ, on_client, c) < 0) {
		close(cfd);
		free(c);
		return;
	}
	remus_timer_init(&c->timer, loop, on_client_timeout, c);
	remus_timer_arm(&c->timer, CLIENT_TIMEOUT_MS);
	c->next = ctl->clients;
	ctl->clients = c;
}

int remus_ctl_listen(struct remus_loop *loop, const char *path,
		     remus_ctl_handler_cb *handler, void *opaque, struct remus_ctl **out)
{
	struct remus_ctl *ctl = calloc(1, sizeof(*ctl));
	int rc;

	if (!ctl)
		return -ENOMEM;
	ctl->loop = loop;
	ctl->handler = handler;
	ctl->opaque = opaque;
	ctl->path = strdup(path);
	ctl->fd = remus_unix_listen(path, 8);
	if (!ctl->path || ctl->fd < 0) {
		rc = ctl->fd < 0 ? ctl->fd : -ENOMEM;
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
	free(ctl->path);
	free(ctl);
	return rc;
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
