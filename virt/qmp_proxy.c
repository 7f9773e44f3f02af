// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The QMP proxy (see qmp_proxy.h for the contract).
 *
 * Everything the client sends becomes an entry of one queue, in arrival
 * order: commands to forward and commands answered here alike, so that a
 * local answer never overtakes a forwarded command's reply.  pump() takes
 * entries from the head while no backend call is running: a local one is
 * answered at once, a forwarded one becomes a worker call and the queue
 * waits for its done.  Replies and events are appended to one output
 * buffer, in the order they reach the loop.
 *
 *     recvmsg -> in buffer (+ fds) -> line -> parse -> queue -> pump
 *        pump -> local answer ---------------------------------> out buffer -> client
 *             -> worker: monitor_command(dom, cmd, fds) -> done -/
 *     libvirt event thread -> line -> mailbox -> loop ----------/
 *
 * fds: the kernel never merges data received with fds into a read that
 * already returned bytes without, and qmp.h sends an fd with the first
 * byte of its command, so fds received belong to the next line that
 * completes.  They are closed once the backend call returns (libvirt has
 * sent its own copies to QEMU) or when the command is dropped.
 *
 * A client that goes away with a command running: the command finishes in
 * libvirt (it cannot be stopped) and its reply is dropped, recognised by
 * the client generation it was started for.  The next client does not wait
 * for it: order matters within one client's commands only.
 */
#include "virt/qmp_proxy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libvirt/virterror.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/loop.h"
#include "virt/qmp_proxy_wire.h"
#include "virt/virt.h"

#define COMP "qmp-proxy"
#define READ_CHUNK 65536
#define MAX_QUEUED 64 /* entries; beyond, the client is not read */

struct entry {
	struct entry *next;
	struct remus_qmp_proxy_cmd c;
	int fds[REMUS_QMP_PROXY_MAX_FDS];
	unsigned nfds;
	uint64_t t0_ns;
};

enum job_kind { JOB_SETUP, JOB_COMMAND, JOB_TEARDOWN };

/* The opaque of a worker call: everything the work touches. */
struct job {
	enum job_kind kind;
	const struct remus_qmp_proxy_ops *ops; /* borrowed, static */
	struct remus_virt *v;                  /* borrowed, for teardown */
	/* Borrowed; used only in done, which runs only while the proxy
	 * lives (it cancels its calls when it goes). */
	struct remus_qmp_proxy *p;
	char *domain;                          /* owned */
	virDomainPtr dom;                      /* a reference, or NULL */
	/* JOB_SETUP */
	struct remus_virt_mbox *mbox;          /* libvirt's reference while registering */
	int cb_id;                             /* -1: none */
	char *version;                         /* owned reply text */
	/* JOB_COMMAND */
	struct entry *e;                       /* owned */
	uint64_t client_gen;
	char *result;                          /* owned reply text */
	bool gone;                             /* the domain is gone */
	uint64_t backend_ns;
};

struct remus_qmp_proxy {
	struct remus_virt *v;        /* borrowed */
	struct remus_loop *loop;     /* borrowed */
	const struct remus_qmp_proxy_ops *ops;
	char *domain;                /* owned */
	char *path;                  /* owned */
	size_t max_line;
	remus_qmp_proxy_state_cb *state_cb;
	void *opaque;
	enum remus_qmp_proxy_state state;
	char *dead_reason;           /* owned */

	int lfd;                     /* listening socket, -1: closed */
	bool lwatched;
	virDomainPtr dom;            /* a reference once READY */
	int cb_id;                   /* monitor event registration, -1: none */
	struct remus_virt_mbox *mbox; /* the loop side's reference */
	char *greeting;              /* owned line, once READY */

	/* the client */
	int cfd;                     /* -1: none */
	unsigned cwatched;           /* events watched, 0: none */
	uint64_t client_gen;         /* bumped per client */
	bool negotiated;
	bool greeted;
	struct remus_buf in, out;
	int pend_fds[REMUS_QMP_PROXY_MAX_FDS];
	unsigned npend_fds;
	struct entry *head, *tail;
	unsigned nqueued;
	bool busy;                   /* a JOB_COMMAND is running */

	struct remus_qmp_proxy_stats stats;
	unsigned depth;
	bool freeing;
};

static const struct remus_qmp_proxy_ops libvirt_ops = {
	.lookup = virDomainLookupByName,
	.monitor_command = virDomainQemuMonitorCommandWithFiles,
	.event_register = virConnectDomainQemuMonitorEventRegister,
	.event_deregister = virConnectDomainQemuMonitorEventDeregister,
	.domain_free = virDomainFree,
};

/* ---- helpers ------------------------------------------------------------ */

static void close_fds(int *fds, unsigned *n)
{
	unsigned i;

	for (i = 0; i < *n; i++)
		close(fds[i]);
	*n = 0;
}

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	remus_qmp_proxy_cmd_release(&e->c);
	close_fds(e->fds, &e->nfds);
	free(e);
}

static void job_free(void *opaque);

/* Removes the event registration and drops the domain, off the loop. */
static int teardown_work(virConnectPtr conn, void *opaque, char **err)
{
	struct job *j = opaque;

	if (j->cb_id >= 0 && j->ops->event_deregister(conn, j->cb_id) < 0)
		remus_warn(COMP, "qmp proxy %s: cannot remove the event registration: %s",
			   j->domain, virGetLastErrorMessage());
	j->cb_id = -1;
	if (j->dom)
		j->ops->domain_free(j->dom);
	j->dom = NULL;
	return 0;
}

/* Hands @dom and @cb_id to a teardown call (they are the job's now). */
static void teardown(struct remus_virt *v, const struct remus_qmp_proxy_ops *ops,
		     const char *domain, virDomainPtr dom, int cb_id)
{
	struct job *j;

	if (!dom && cb_id < 0)
		return;
	j = calloc(1, sizeof(*j));
	if (j) {
		j->kind = JOB_TEARDOWN;
		j->ops = ops;
		j->v = v;
		j->domain = strdup(domain);
		j->dom = dom;
		j->cb_id = cb_id;
		if (remus_virt_call(v, teardown_work, NULL, job_free, j) == 0)
			return;
		j->dom = NULL;
		free(j->domain);
		free(j);
	}
	/* The connection is going away (or no memory): libvirt drops both
	 * with it.  Freeing the domain object here is a local unref. */
	if (dom)
		ops->domain_free(dom);
}

static void job_free(void *opaque)
{
	struct job *j = opaque;

	if (j->kind == JOB_SETUP && (j->dom || j->cb_id >= 0)) {
		/* Cancelled after the work succeeded: undo it. */
		teardown(j->v, j->ops, j->domain, j->dom, j->cb_id);
		j->dom = NULL;
	}
	if (j->dom)
		j->ops->domain_free(j->dom);
	entry_free(j->e);
	free(j->result);
	free(j->version);
	free(j->domain);
	free(j);
}

static void enter(struct remus_qmp_proxy *p)
{
	p->depth++;
}

static void destroy(struct remus_qmp_proxy *p);

static bool leave(struct remus_qmp_proxy *p)
{
	if (--p->depth > 0 || !p->freeing)
		return false;
	destroy(p);
	return true;
}

/* ---- the client ---------------------------------------------------------- */

static void on_client(struct remus_loop *loop, int fd, unsigned events, void *opaque);

static void update_client_watch(struct remus_qmp_proxy *p)
{
	unsigned want = 0;
	int rc;

	if (p->cfd < 0)
		return;
	if (p->nqueued < MAX_QUEUED)
		want |= REMUS_EV_READ;
	if (remus_buf_len(&p->out))
		want |= REMUS_EV_WRITE;
	if (want == p->cwatched)
		return;
	if (!p->cwatched)
		rc = remus_loop_add_fd(p->loop, p->cfd, want, on_client, p);
	else if (!want)
		rc = remus_loop_del_fd(p->loop, p->cfd);
	else
		rc = remus_loop_mod_fd(p->loop, p->cfd, want);
	if (rc < 0)
		remus_warn(COMP, "qmp proxy %s: cannot update the client's watch: %s",
			   p->domain, strerror(-rc));
	else
		p->cwatched = want;
}

static void set_listen_watch(struct remus_qmp_proxy *p, bool on);

static void client_close(struct remus_qmp_proxy *p, const char *why)
{
	struct entry *e;

	if (p->cfd < 0)
		return;
	if (why)
		remus_warn(COMP, "qmp proxy %s: client dropped: %s", p->domain, why);
	else
		remus_debug(COMP, "qmp proxy %s: client gone", p->domain);
	if (p->cwatched)
		remus_loop_del_fd(p->loop, p->cfd);
	p->cwatched = 0;
	close(p->cfd);
	p->cfd = -1;
	p->client_gen++;
	while ((e = p->head)) {
		p->head = e->next;
		entry_free(e);
	}
	p->tail = NULL;
	p->nqueued = 0;
	close_fds(p->pend_fds, &p->npend_fds);
	remus_buf_reset(&p->in);
	remus_buf_reset(&p->out);
	p->negotiated = false;
	p->greeted = false;
	/* A command still running belongs to the old client: the next one
	 * need not wait for it (its reply is dropped). */
	p->busy = false;
	set_listen_watch(p, true);
}

/* Queues @line (taken) for the client. */
static void client_send(struct remus_qmp_proxy *p, char *line)
{
	int rc;

	if (!line) {
		client_close(p, "out of memory");
		return;
	}
	if (p->cfd < 0) {
		free(line);
		return;
	}
	rc = remus_buf_append(&p->out, line, strlen(line));
	free(line);
	if (rc < 0) {
		client_close(p, rc == -EMSGSIZE ? "it does not read its replies" :
			     "out of memory");
		return;
	}
	update_client_watch(p);
}

static void send_greeting(struct remus_qmp_proxy *p)
{
	if (p->cfd < 0 || p->greeted || p->state != REMUS_QMP_PROXY_READY)
		return;
	p->greeted = true;
	client_send(p, strdup(p->greeting));
}

/* ---- commands ------------------------------------------------------------ */

static bool gone_error(int code)
{
	return code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_OPERATION_INVALID ||
	       code == VIR_ERR_NO_CONNECT || code == VIR_ERR_INVALID_CONN ||
	       code == VIR_ERR_INVALID_DOMAIN;
}

static int command_work(virConnectPtr conn, void *opaque, char **err)
{
	struct job *j = opaque;
	unsigned int nout = 0;
	int *outfiles = NULL;
	uint64_t t0 = remus_now_ns();
	unsigned i;
	int r;

	(void)conn;
	r = j->ops->monitor_command(j->dom, j->e->c.forward, j->e->nfds,
				    j->e->nfds ? j->e->fds : NULL, &nout, &outfiles,
				    &j->result, 0);
	j->backend_ns = remus_now_ns() - t0;
	for (i = 0; i < nout; i++)
		close(outfiles[i]);
	free(outfiles);
	/* libvirt has passed its own copies of the fds on. */
	close_fds(j->e->fds, &j->e->nfds);
	if (r < 0) {
		j->gone = gone_error(virGetLastErrorCode());
		return j->gone ? -ENODEV : -EIO;
	}
	if (!j->result) {
		*err = strdup("libvirt returned no reply");
		return -EIO;
	}
	return 0;
}

static void go_dead(struct remus_qmp_proxy *p, int rc, const char *why);
static void pump(struct remus_qmp_proxy *p);
static void parse_input(struct remus_qmp_proxy *p);

static void command_done(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct job *j = opaque;
	struct remus_qmp_proxy *p;
	const char *why = NULL;
	char *line = NULL;

	p = j->p;
	enter(p);
	if (j->client_gen != p->client_gen) {
		remus_debug(COMP, "qmp proxy %s: dropped the reply to '%s' of a gone client",
			    p->domain, j->e->c.name);
		goto out;
	}
	p->busy = false;
	if (rc == 0) {
		line = remus_qmp_proxy_build_reply(j->result, j->e->c.id, &why);
		if (!line) {
			remus_warn(COMP, "qmp proxy %s: '%s': bad reply from libvirt: %s",
				   p->domain, j->e->c.name, why);
			line = remus_qmp_proxy_build_error("GenericError", why, j->e->c.id);
		}
	} else {
		line = remus_qmp_proxy_build_error("GenericError", err, j->e->c.id);
	}
	p->stats.commands++;
	{
		uint64_t total = remus_now_ns() - j->e->t0_ns;

		p->stats.total_ns += total;
		p->stats.backend_ns += j->backend_ns;
		if (total > p->stats.max_total_ns)
			p->stats.max_total_ns = total;
	}
	if (j->gone) {
		free(line);
		go_dead(p, -ENODEV, err);
		goto out;
	}
	client_send(p, line);
out:
	if (!p->freeing)
		pump(p);
	leave(p);
}

/* Starts @e (taken) as a worker call. */
static void start_command(struct remus_qmp_proxy *p, struct entry *e)
{
	struct job *j = calloc(1, sizeof(*j));
	int rc;

	if (!j) {
		client_send(p, remus_qmp_proxy_build_error("GenericError", "out of memory",
							   e->c.id));
		entry_free(e);
		return;
	}
	j->kind = JOB_COMMAND;
	j->ops = p->ops;
	j->v = p->v;
	j->cb_id = -1;
	j->client_gen = p->client_gen;
	j->dom = p->dom;
	virDomainRef(p->dom);
	j->p = p;
	j->e = e;
	/* Counted from here: the time it waited behind the previous
	 * command is the client's pipelining, not the proxy's cost. */
	e->t0_ns = remus_now_ns();
	rc = remus_virt_call_owned(p->v, p, command_work, command_done, job_free, j);
	if (rc < 0) {
		client_send(p, remus_qmp_proxy_build_error("GenericError", strerror(-rc),
							   e->c.id));
		job_free(j);
		return;
	}
	p->busy = true;
}

static void answer_local(struct remus_qmp_proxy *p, struct entry *e)
{
	struct remus_qmp_proxy_cmd *c = &e->c;
	char *line;

	p->stats.local++;
	if (c->kind == REMUS_QMP_PROXY_REFUSE)
		line = remus_qmp_proxy_build_error("GenericError", c->error_desc, c->id);
	else if (p->negotiated)
		line = remus_qmp_proxy_build_error(
			"CommandNotFound",
			"Capabilities negotiation is already complete, command ignored",
			c->id);
	else {
		p->negotiated = true;
		line = remus_qmp_proxy_build_empty_return(c->id);
	}
	client_send(p, line);
}

/* Runs queued entries in order while no backend call is running. */
static void pump(struct remus_qmp_proxy *p)
{
	struct entry *e;

	/* Lines left in the buffer while the queue was full. */
	parse_input(p);
	while (!p->busy && p->state == REMUS_QMP_PROXY_READY && (e = p->head) &&
	       p->cfd >= 0) {
		uint64_t gen = p->client_gen;

		p->head = e->next;
		if (!p->head)
			p->tail = NULL;
		e->next = NULL;
		p->nqueued--;
		if (e->c.kind != REMUS_QMP_PROXY_FORWARD) {
			answer_local(p, e);
			entry_free(e);
		} else if (!p->negotiated) {
			p->stats.local++;
			client_send(p, remus_qmp_proxy_build_error(
					"CommandNotFound",
					"Expecting capabilities negotiation with 'qmp_capabilities'",
					e->c.id));
			entry_free(e);
		} else {
			start_command(p, e);
		}
		if (gen != p->client_gen)
			break;
		if (!p->head)
			parse_input(p);
	}
	update_client_watch(p);
}

/* Parses the buffered lines into queue entries while there is room. */
static void parse_input(struct remus_qmp_proxy *p)
{
	char *line;
	size_t len;
	int r;

	while (p->cfd >= 0 && p->nqueued < MAX_QUEUED) {
		struct entry *e;
		const char *why = NULL;

		r = remus_qmp_proxy_next_line(&p->in, p->max_line, &line, &len);
		if (r == 0)
			break;
		if (r < 0) {
			client_close(p, "a line longer than the limit");
			return;
		}
		e = calloc(1, sizeof(*e));
		if (!e) {
			client_close(p, "out of memory");
			return;
		}
		r = remus_qmp_proxy_parse_command(line, len, &e->c, &why);
		if (r == 1) {
			free(e);
			continue;
		}
		if (r < 0) {
			free(e);
			client_close(p, why);
			return;
		}
		/* fds received so far travel with this command. */
		memcpy(e->fds, p->pend_fds, p->npend_fds * sizeof(int));
		e->nfds = p->npend_fds;
		p->npend_fds = 0;
		if (p->tail)
			p->tail->next = e;
		else
			p->head = e;
		p->tail = e;
		p->nqueued++;
	}
}

/* One recvmsg; returns bytes read, 0 at EOF, or -errno. */
static ssize_t client_read(struct remus_qmp_proxy *p)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * REMUS_QMP_PROXY_MAX_FDS * 2)];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = { 0 };
	struct iovec iov;
	struct cmsghdr *cm;
	ssize_t n;
	int rc;

	rc = remus_buf_reserve(&p->in, READ_CHUNK);
	if (rc < 0)
		return rc;
	iov.iov_base = remus_buf_tail(&p->in);
	iov.iov_len = READ_CHUNK;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	n = recvmsg(p->cfd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t i, nfd;
		int *fds;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(cm);
		for (i = 0; i < nfd; i++) {
			if (p->npend_fds >= REMUS_QMP_PROXY_MAX_FDS) {
				close(fds[i]);
				rc = -ETOOMANYREFS;
				continue;
			}
			p->pend_fds[p->npend_fds++] = fds[i];
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		rc = -ETOOMANYREFS;
	if (rc < 0)
		return rc;
	remus_buf_commit(&p->in, (size_t)n);
	return n;
}

static void on_client(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct remus_qmp_proxy *p = opaque;
	uint64_t gen = p->client_gen;
	ssize_t n;

	(void)loop;
	(void)fd;
	enter(p);
	if (events & REMUS_EV_READ) {
		n = client_read(p);
		if (n == 0) {
			client_close(p, NULL);
			goto out;
		}
		if (n == -ETOOMANYREFS) {
			client_close(p, "more fds than one command may carry");
			goto out;
		}
		if (n < 0 && n != -EAGAIN) {
			client_close(p, strerror((int)-n));
			goto out;
		}
		if (n > 0) {
			pump(p);
			if (gen != p->client_gen)
				goto out;
		}
	}
	if (p->cfd >= 0 && gen == p->client_gen && remus_buf_len(&p->out)) {
		n = remus_buf_write_fd(&p->out, p->cfd);
		if (n < 0 && n != -EAGAIN) {
			client_close(p, strerror((int)-n));
			goto out;
		}
		update_client_watch(p);
	} else if (p->cfd >= 0 && (events & REMUS_EV_ERROR) && !(events & REMUS_EV_READ)) {
		client_close(p, NULL);
	}
out:
	leave(p);
}

static void set_listen_watch(struct remus_qmp_proxy *p, bool on);

static void on_listen(struct remus_loop *loop, int fd, unsigned events, void *opaque)
{
	struct remus_qmp_proxy *p = opaque;
	int c;

	(void)loop;
	(void)events;
	c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0) {
		if (errno != EAGAIN && errno != EINTR)
			remus_warn(COMP, "qmp proxy %s: accept on %s: %s", p->domain, p->path,
				   strerror(errno));
		return;
	}
	if (p->state == REMUS_QMP_PROXY_DEAD || p->cfd >= 0) {
		close(c);
		return;
	}
	p->cfd = c;
	p->stats.clients++;
	remus_debug(COMP, "qmp proxy %s: client connected", p->domain);
	set_listen_watch(p, false);
	if (remus_loop_add_fd(p->loop, c, REMUS_EV_READ, on_client, p) < 0) {
		close(c);
		p->cfd = -1;
		set_listen_watch(p, true);
		return;
	}
	p->cwatched = REMUS_EV_READ;
	send_greeting(p);
}

static void set_listen_watch(struct remus_qmp_proxy *p, bool on)
{
	if (p->lfd < 0 || on == p->lwatched)
		return;
	if (on) {
		if (remus_loop_add_fd(p->loop, p->lfd, REMUS_EV_READ, on_listen, p) == 0)
			p->lwatched = true;
	} else {
		remus_loop_del_fd(p->loop, p->lfd);
		p->lwatched = false;
	}
}

/* ---- events ----------------------------------------------------------- */

/* libvirt's event thread: format and hand over to the loop. */
static void on_qemu_event(virConnectPtr conn, virDomainPtr dom, const char *event,
			  long long seconds, unsigned int micros, const char *details,
			  void *opaque)
{
	struct remus_virt_mbox *m = opaque;
	char *line;

	(void)conn;
	(void)dom;
	line = remus_qmp_proxy_build_event(event, seconds, micros, details);
	if (!line) {
		remus_warn(COMP, "qmp proxy: dropped a malformed QMP event '%.64s'",
			   event ? event : "(null)");
		return;
	}
	remus_virt_mbox_post(m, line);
}

static void on_event_line(void *msg, void *opaque)
{
	struct remus_qmp_proxy *p = opaque;

	if (p->cfd < 0 || !p->negotiated) {
		p->stats.events_dropped++;
		return;
	}
	p->stats.events++;
	enter(p);
	client_send(p, strdup(msg));
	leave(p);
}

/* ---- set-up -------------------------------------------------------------- */

static int setup_work(virConnectPtr conn, void *opaque, char **err)
{
	struct job *j = opaque;
	int id;

	j->dom = j->ops->lookup(conn, j->domain);
	if (!j->dom)
		return -ENOENT;
	if (j->ops->monitor_command(j->dom, "{\"execute\":\"query-version\"}", 0, NULL,
				    NULL, NULL, &j->version, 0) < 0)
		return -EIO;
	if (!j->version) {
		*err = strdup("query-version returned nothing");
		return -EIO;
	}
	remus_virt_mbox_ref(j->mbox);
	id = j->ops->event_register(conn, j->dom, NULL, on_qemu_event, j->mbox,
				    remus_virt_mbox_unref, 0);
	if (id < 0) {
		/* Whether libvirt called freecb on a failed registration is not
		 * documented; a leaked reference costs a few bytes, a double
		 * unref a crash. */
		return -EIO;
	}
	j->cb_id = id;
	return 0;
}

static void set_state_cb(struct remus_qmp_proxy *p, enum remus_qmp_proxy_state s,
			 int rc, const char *err)
{
	p->state = s;
	if (p->state_cb && !p->freeing)
		p->state_cb(p, s, rc, err, p->opaque);
}

static void go_dead(struct remus_qmp_proxy *p, int rc, const char *why)
{
	char *msg = NULL;

	if (p->state == REMUS_QMP_PROXY_DEAD)
		return;
	if (asprintf(&msg, "qmp proxy %s: domain is gone: %s", p->domain,
		     why ? why : "?") < 0)
		msg = NULL;
	remus_warn(COMP, "%s", msg ? msg : "qmp proxy: domain is gone");
	free(p->dead_reason);
	p->dead_reason = msg;
	client_close(p, NULL);
	set_state_cb(p, REMUS_QMP_PROXY_DEAD, rc, msg ? msg : "domain is gone");
}

static void setup_done(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct job *j = opaque;
	struct remus_qmp_proxy *p = j->p;
	const char *why = NULL;
	char *msg = NULL;

	enter(p);
	if (rc == 0) {
		p->greeting = remus_qmp_proxy_build_greeting(j->version, &why);
		if (!p->greeting) {
			rc = -EBADMSG;
			if (asprintf(&msg, "qmp proxy %s: bad query-version reply: %s",
				     p->domain, why) < 0)
				msg = NULL;
		}
	}
	/* The registration and the domain are the proxy's now (or the
	 * teardown's, if it failed after all). */
	p->dom = j->dom;
	p->cb_id = j->cb_id;
	j->dom = NULL;
	j->cb_id = -1;
	if (rc < 0) {
		if (!msg && asprintf(&msg, "qmp proxy %s: %s", p->domain, err ? err : "?") < 0)
			msg = NULL;
		remus_err(COMP, "%s", msg ? msg : "qmp proxy: set-up failed");
		free(p->dead_reason);
		p->dead_reason = msg;
		client_close(p, NULL);
		set_state_cb(p, REMUS_QMP_PROXY_DEAD, rc, msg ? msg : "set-up failed");
		goto out;
	}
	remus_info(COMP, "qmp proxy %s: serving %s", p->domain, p->path);
	p->state = REMUS_QMP_PROXY_READY;
	send_greeting(p);
	pump(p);
	if (p->state_cb && !p->freeing)
		p->state_cb(p, REMUS_QMP_PROXY_READY, 0, NULL, p->opaque);
out:
	leave(p);
}

/* socket, bind, chmod 0600, listen: nobody can connect before the mode
 * is right, since connecting to a socket that does not listen fails. */
static int listen_private(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = -1, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		goto out;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, 4) < 0) {
		rc = -errno;
		goto out;
	}
	return fd;
out:
	close(fd);
	return rc;
}

static void destroy(struct remus_qmp_proxy *p)
{
	client_close(p, NULL);
	remus_virt_cancel_owner(p->v, p);
	remus_virt_mbox_close(p->mbox);
	set_listen_watch(p, false);
	if (p->lfd >= 0) {
		close(p->lfd);
		unlink(p->path);
	}
	teardown(p->v, p->ops, p->domain, p->dom, p->cb_id);
	remus_buf_release(&p->in);
	remus_buf_release(&p->out);
	free(p->greeting);
	free(p->dead_reason);
	free(p->domain);
	free(p->path);
	free(p);
}

int remus_qmp_proxy_new(struct remus_virt *v, const char *domain, const char *path,
			const struct remus_qmp_proxy_opts *opts,
			remus_qmp_proxy_state_cb *state_cb, void *opaque,
			struct remus_qmp_proxy **out)
{
	struct remus_qmp_proxy *p = calloc(1, sizeof(*p));
	struct job *j = NULL;
	int rc;

	if (!p)
		return -ENOMEM;
	p->v = v;
	p->loop = remus_virt_loop(v);
	p->ops = opts && opts->ops ? opts->ops : &libvirt_ops;
	p->max_line = opts && opts->max_line ? opts->max_line : REMUS_QMP_PROXY_DEFAULT_MAX_LINE;
	p->state_cb = state_cb;
	p->opaque = opaque;
	p->lfd = -1;
	p->cfd = -1;
	p->cb_id = -1;
	p->state = REMUS_QMP_PROXY_STARTING;
	remus_buf_init(&p->in, p->max_line + READ_CHUNK);
	remus_buf_init(&p->out, REMUS_QMP_PROXY_MAX_OUTPUT);
	p->domain = strdup(domain);
	p->path = strdup(path);
	j = calloc(1, sizeof(*j));
	if (!p->domain || !p->path || !j) {
		rc = -ENOMEM;
		goto out;
	}
	rc = remus_virt_mbox_new(v, on_event_line, free, p, &p->mbox);
	if (rc < 0)
		goto out;
	rc = listen_private(path);
	if (rc < 0) {
		remus_err(COMP, "qmp proxy %s: cannot listen on %s: %s", domain, path,
			  strerror(-rc));
		goto out;
	}
	p->lfd = rc;
	set_listen_watch(p, true);
	if (!p->lwatched) {
		rc = -ENOMEM;
		goto out;
	}
	j->kind = JOB_SETUP;
	j->ops = p->ops;
	j->v = v;
	j->cb_id = -1;
	j->mbox = p->mbox;
	j->domain = strdup(domain);
	j->p = p;
	if (!j->domain) {
		rc = -ENOMEM;
		goto out;
	}
	rc = remus_virt_call_owned(v, p, setup_work, setup_done, job_free, j);
	if (rc < 0)
		goto out;
	j = NULL;
	*out = p;
	p = NULL;
out:
	if (j)
		job_free(j);
	if (p)
		destroy(p);
	return rc;
}

void remus_qmp_proxy_free(struct remus_qmp_proxy *p)
{
	if (!p || p->freeing)
		return;
	p->freeing = true;
	if (p->depth == 0)
		destroy(p);
}

enum remus_qmp_proxy_state remus_qmp_proxy_get_state(const struct remus_qmp_proxy *p)
{
	return p->state;
}

const char *remus_qmp_proxy_path(const struct remus_qmp_proxy *p)
{
	return p->path;
}

void remus_qmp_proxy_get_stats(const struct remus_qmp_proxy *p,
			       struct remus_qmp_proxy_stats *out)
{
	*out = p->stats;
}
