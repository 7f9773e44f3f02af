// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A question to a child's control socket (see ask.h):
 *
 *   connect (non-blocking) --writable--> write "REQ\n" --readable...--> line or EOF
 *      \--fails: report on the next loop turn (a timer at 0)     --> cb, free
 *   the timer bounds the whole exchange
 */
#include "hostd/ask.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/loop.h"
#include "common/sock.h"

struct remus_hostd_ask {
	struct remus_loop *loop;
	int fd;
	bool watched;
	int early_rc;                 /* a connect that failed at once */
	struct remus_buf out, in;
	struct remus_timer timer;
	remus_hostd_ask_cb *cb;
	void *opaque;
};

static void ask_free(struct remus_hostd_ask *a)
{
	if (a->watched)
		remus_loop_del_fd(a->loop, a->fd);
	if (a->fd >= 0)
		close(a->fd);
	remus_timer_disarm(&a->timer);
	remus_buf_release(&a->out);
	remus_buf_release(&a->in);
	free(a);
}

static void finish(struct remus_hostd_ask *a, int rc)
{
	uint8_t *nl = NULL;

	if (rc == 0) {
		nl = memchr(remus_buf_data(&a->in), '\n', remus_buf_len(&a->in));
		*nl = 0;
	}
	a->cb(a->opaque, rc, rc == 0 ? (const char *)remus_buf_data(&a->in) : NULL);
	ask_free(a);
}

static void on_timer(struct remus_loop *loop, void *opaque)
{
	struct remus_hostd_ask *a = opaque;

	finish(a, a->early_rc ? a->early_rc : -ETIMEDOUT);
}

static void on_fd(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct remus_hostd_ask *a = opaque;
	socklen_t len = sizeof(int);
	ssize_t r;
	int soerr = 0;

	if (remus_buf_len(&a->out)) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr) {
			finish(a, -soerr);
			return;
		}
		r = remus_buf_write_fd(&a->out, fd);
		if (r < 0 && r != -EAGAIN) {
			finish(a, (int)r);
			return;
		}
		if (remus_buf_len(&a->out) == 0)
			remus_loop_mod_fd(loop, fd, REMUS_EV_READ);
		return;
	}
	r = remus_buf_read_fd(&a->in, fd, 65536);
	if (r == -EAGAIN)
		return;
	if (r == -EMSGSIZE || (r > 0 && remus_buf_len(&a->in) >= REMUS_HOSTD_ASK_MAX &&
			       !memchr(remus_buf_data(&a->in), '\n', remus_buf_len(&a->in)))) {
		finish(a, -EMSGSIZE);
		return;
	}
	if (r < 0) {
		finish(a, (int)r);
		return;
	}
	if (memchr(remus_buf_data(&a->in), '\n', remus_buf_len(&a->in))) {
		finish(a, 0);
		return;
	}
	if (r == 0) {
		finish(a, -ECONNRESET);
		return;
	}
}

int remus_hostd_ask(struct remus_loop *loop, const char *path, const char *request,
		    unsigned timeout_ms, remus_hostd_ask_cb *cb, void *opaque,
		    struct remus_hostd_ask **out)
{
	struct remus_hostd_ask *a = calloc(1, sizeof(*a));
	int rc;

	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->cb = cb;
	a->opaque = opaque;
	a->fd = -1;
	remus_buf_init(&a->out, 0);
	remus_buf_init(&a->in, REMUS_HOSTD_ASK_MAX);
	remus_timer_init(&a->timer, loop, on_timer, a);
	if (remus_buf_append(&a->out, request, strlen(request)) < 0 ||
	    remus_buf_append(&a->out, "\n", 1) < 0) {
		ask_free(a);
		return -ENOMEM;
	}
	rc = remus_unix_connect(path, true);
	if (rc >= 0) {
		a->fd = rc;
		rc = remus_loop_add_fd(loop, a->fd, REMUS_EV_WRITE, on_fd, a);
		if (rc == 0)
			a->watched = true;
	}
	if (rc < 0) {
		/* Reported from the loop, as promised. */
		a->early_rc = rc;
		remus_timer_arm(&a->timer, 0);
	} else {
		remus_timer_arm(&a->timer, timeout_ms);
	}
	*out = a;
	return 0;
}

void remus_hostd_ask_cancel(struct remus_hostd_ask *a)
{
	if (a)
		ask_free(a);
}
