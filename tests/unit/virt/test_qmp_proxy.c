// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for virt/qmp_proxy.h: the proxy serves a fake monitor (a
 * struct remus_qmp_proxy_ops answering from a small script) over a real
 * remus_virt connection to libvirt's in-process test driver, whose
 * domain "test" stands in for the guest.  Clients are the project's own
 * QMP client (qmp/qmp.h, what remusd uses) and, where raw bytes are the
 * point, a plain socket read on the same loop.
 *
 * The fake records every command, the fds that came with it and how many
 * ran at once (the proxy promises one), and can hold a command on a gate,
 * say the domain is gone (libvirt's "domain is not running") or answer
 * garbage.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <libvirt/virterror.h>

#include "common/loop.h"
#include "common/sock.h"
#include "qmp/qmp.h"
#include "virt/qmp_proxy.h"
#include "virt/virt.h"

#define WAIT_MS 10000

/* ---- the fake monitor ---------------------------------------------------- */

static struct fake {
	pthread_mutex_t mu;
	char cmds[64][256];
	unsigned ncmds;
	unsigned nfds[64];
	int running, max_running;
	int gate;            /* read end: "slow" blocks until a byte arrives */
	virConnectDomainQemuMonitorEventCallback event_cb;
	void *event_opaque;
	virFreeCallback event_free;
	int registered, deregistered;
} fake = { .mu = PTHREAD_MUTEX_INITIALIZER, .gate = -1 };

static void fake_reset(void)
{
	pthread_mutex_lock(&fake.mu);
	fake.ncmds = 0;
	fake.running = fake.max_running = 0;
	fake.gate = -1;
	fake.event_cb = NULL;
	fake.registered = fake.deregistered = 0;
	pthread_mutex_unlock(&fake.mu);
}

static int fake_monitor(virDomainPtr dom, const char *cmd, unsigned int ninfiles,
			int *infiles, unsigned int *noutfiles, int **outfiles,
			char **result, unsigned int flags)
{
	struct json_object *o = json_tokener_parse(cmd), *ex;
	const char *name = "";
	char *reply = NULL;
	unsigned i;
	int rc = 0;

	(void)flags;
	if (o && json_object_object_get_ex(o, "execute", &ex))
		name = json_object_get_string(ex);
	pthread_mutex_lock(&fake.mu);
	if (fake.ncmds < 64) {
		snprintf(fake.cmds[fake.ncmds], sizeof(fake.cmds[0]), "%s", cmd);
		fake.nfds[fake.ncmds] = ninfiles;
		fake.ncmds++;
	}
	if (++fake.running > fake.max_running)
		fake.max_running = fake.running;
	pthread_mutex_unlock(&fake.mu);
	/* A command with fds writes its name into each. */
	for (i = 0; i < ninfiles; i++)
		if (write(infiles[i], name, strlen(name)) < 0)
			rc = -1;
	if (!strcmp(name, "query-version")) {
		reply = strdup("{\"return\": {\"qemu\": {\"major\": 10, \"minor\": 0, "
			       "\"micro\": 2}, \"package\": \"fake\"}, \"id\": \"libvirt-1\"}");
	} else if (!strcmp(name, "slow")) {
		char c;

		if (read(fake.gate, &c, 1) != 1)
			rc = -1;
		reply = strdup("{\"return\": {\"slow\": true}, \"id\": \"libvirt-9\"}");
	} else if (!strcmp(name, "fail")) {
		reply = strdup("{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}");
	} else if (!strcmp(name, "garbage")) {
		reply = strdup("{\"neither\": 1}");
	} else if (!strcmp(name, "gone")) {
		/* libvirt's "no such domain", on this thread. */
		virDomainPtr d = virDomainLookupByName(virDomainGetConnect(dom), "gone-dom");

		assert_null(d);
		rc = -1;
	} else if (!strcmp(name, "libvirt-fails")) {
		/* A libvirt error that is not about the domain: the test
		 * driver has no monitor. */
		char *r = NULL;

		assert_int_equal(virDomainQemuMonitorCommand(dom, "{}", &r, 0), -1);
		rc = -1;
	} else {
		/* Echo the arguments back. */
		struct json_object *args = NULL, *r = json_object_new_object();

		if (json_object_object_get_ex(o, "arguments", &args))
			json_object_object_add(r, "return", json_object_get(args));
		else
			json_object_object_add(r, "return", json_object_new_object());
		json_object_object_add(r, "id", json_object_new_string("libvirt-5"));
		reply = strdup(json_object_to_json_string(r));
		json_object_put(r);
	}
	pthread_mutex_lock(&fake.mu);
	fake.running--;
	pthread_mutex_unlock(&fake.mu);
	json_object_put(o);
	if (noutfiles)
		*noutfiles = 0;
	if (outfiles)
		*outfiles = NULL;
	if (rc < 0) {
		free(reply);
		return -1;
	}
	*result = reply;
	return 0;
}

static int fake_register(virConnectPtr conn, virDomainPtr dom, const char *event,
			 virConnectDomainQemuMonitorEventCallback cb, void *opaque,
			 virFreeCallback freecb, unsigned int flags)
{
	pthread_mutex_lock(&fake.mu);
	fake.event_cb = cb;
	fake.event_opaque = opaque;
	fake.event_free = freecb;
	fake.registered++;
	pthread_mutex_unlock(&fake.mu);
	return 7;
}

static int fake_deregister(virConnectPtr conn, int id)
{
	void *opaque;
	virFreeCallback f;

	assert_int_equal(id, 7);
	pthread_mutex_lock(&fake.mu);
	opaque = fake.event_opaque;
	f = fake.event_free;
	fake.event_cb = NULL;
	fake.deregistered++;
	pthread_mutex_unlock(&fake.mu);
	if (f)
		f(opaque);
	return 0;
}

static const struct remus_qmp_proxy_ops fake_ops = {
	.lookup = virDomainLookupByName,
	.monitor_command = fake_monitor,
	.event_register = fake_register,
	.event_deregister = fake_deregister,
	.domain_free = virDomainFree,
};

/* ---- fixture ---------------------------------------------------------------- */

struct env {
	struct remus_loop *loop;
	struct remus_virt *v;
	struct remus_qmp_proxy *p;
	char dir[64], path[128];
	int ready, dead, dead_rc;
	char dead_err[512];
	int opened;
};

static void run_until(struct env *e, const int *flag, int want)
{
	uint64_t end = remus_now_ms() + WAIT_MS;

	while (*flag < want) {
		assert_true(remus_now_ms() < end);
		assert_int_equal(remus_loop_run_once(e->loop, 50), 0);
	}
}

static void spin(struct env *e, unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (remus_now_ms() < end)
		assert_int_equal(remus_loop_run_once(e->loop, 10), 0);
}

static void on_open(struct remus_virt *v, int rc, const char *err, void *opaque)
{
	struct env *e = opaque;

	assert_int_equal(rc, 0);
	e->opened++;
}

static void on_state(struct remus_qmp_proxy *p, enum remus_qmp_proxy_state s, int rc,
		     const char *err, void *opaque)
{
	struct env *e = opaque;

	if (s == REMUS_QMP_PROXY_READY) {
		e->ready++;
	} else {
		e->dead++;
		e->dead_rc = rc;
		snprintf(e->dead_err, sizeof(e->dead_err), "%s", err);
	}
}

static void start_proxy(struct env *e, const char *domain)
{
	struct remus_qmp_proxy_opts o = { .ops = &fake_ops, .max_line = 4096 };

	assert_int_equal(remus_qmp_proxy_new(e->v, domain, e->path, &o, on_state, e, &e->p),
			 0);
}

static int setup_env(void **state, bool start)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	fake_reset();
	strcpy(e->dir, "/tmp/test_qmp_proxy.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/dom.qmp", e->dir);
	assert_int_equal(remus_loop_new(&e->loop), 0);
	assert_int_equal(remus_virt_open(e->loop, "test:///default", NULL, on_open, e, &e->v),
			 0);
	run_until(e, &e->opened, 1);
	if (start) {
		start_proxy(e, "test");
		run_until(e, &e->ready, 1);
	}
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return setup_env(state, true);
}

static int setup_bare(void **state)
{
	return setup_env(state, false);
}

static int teardown(void **state)
{
	struct env *e = *state;

	remus_qmp_proxy_free(e->p);
	/* Let the proxy's clean-up call run (it removes the event
	 * registration) before the connection goes. */
	while (remus_virt_pending(e->v))
		assert_int_equal(remus_loop_run_once(e->loop, 50), 0);
	remus_virt_free(e->v);
	remus_loop_free(e->loop);
	unlink(e->path);
	rmdir(e->dir);
	free(e);
	return 0;
}

static struct remus_qmp *connect_qmp(struct env *e)
{
	struct remus_qmp *q;

	assert_int_equal(remus_qmp_connect(e->loop, e->path, NULL, NULL, NULL, &q), 0);
	assert_int_equal(remus_qmp_wait_ready(q, WAIT_MS), 0);
	return q;
}

/* ---- raw client ---------------------------------------------------------- */

static int raw_connect(struct env *e)
{
	int fd = remus_unix_connect(e->path, false);

	assert_true(fd >= 0);
	assert_int_equal(remus_fd_set_nonblock(fd, true), 0);
	return fd;
}

/* Reads one line (or EOF: returns NULL) while running the loop. */
static char *raw_line(struct env *e, int fd)
{
	static char buf[65536];
	size_t n = 0;
	uint64_t end = remus_now_ms() + WAIT_MS;

	for (;;) {
		ssize_t r = read(fd, buf + n, 1);

		if (r == 1) {
			if (buf[n] == '\n') {
				buf[n] = '\0';
				return buf;
			}
			n++;
			assert_true(n < sizeof(buf) - 1);
			continue;
		}
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return NULL;
		assert_true(errno == EAGAIN);
		assert_true(remus_now_ms() < end);
		assert_int_equal(remus_loop_run_once(e->loop, 10), 0);
	}
}

static void raw_send(int fd, const char *s)
{
	assert_int_equal(remus_write_all(fd, s, strlen(s)), 0);
}

/* ---- tests ----------------------------------------------------------------- */

/* The greeting carries query-version's answer; qmp_capabilities is
 * answered locally; a command goes to the monitor without the client's
 * id, and its reply comes back with it. */
static void test_round_trip(void **state)
{
	struct env *e = *state;
	struct remus_qmp *q = connect_qmp(e);
	struct json_object *g = remus_qmp_greeting(q), *ret = NULL, *v, *args;
	struct remus_qmp_proxy_stats st;
	char *err = NULL;
	struct stat sb;

	assert_true(json_object_object_get_ex(g, "version", &v));
	assert_true(json_object_object_get_ex(v, "package", &v));
	assert_string_equal(json_object_get_string(v), "fake");
	args = json_object_new_object();
	json_object_object_add(args, "x", json_object_new_int(42));
	assert_int_equal(remus_qmp_execute_sync(q, "echo", args, -1, WAIT_MS, &ret, &err), 0);
	assert_true(json_object_object_get_ex(ret, "x", &v));
	assert_int_equal(json_object_get_int(v), 42);
	json_object_put(ret);
	/* query-version at set-up, then echo; never qmp_capabilities. */
	assert_int_equal(fake.ncmds, 2);
	assert_string_equal(fake.cmds[1], "{\"execute\":\"echo\",\"arguments\":{\"x\":42}}");
	remus_qmp_proxy_get_stats(e->p, &st);
	assert_int_equal(st.commands, 1);
	assert_int_equal(st.local, 1);
	assert_int_equal(st.clients, 1);
	assert_true(st.total_ns >= st.backend_ns);
	assert_int_equal(stat(e->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(remus_qmp_proxy_get_state(e->p), REMUS_QMP_PROXY_READY);
	assert_string_equal(remus_qmp_proxy_path(e->p), e->path);
	remus_qmp_free(q);
}

/* QEMU's error replies and libvirt's failures reach the client as QMP
 * errors; a reply that is neither return nor error becomes one. */
static void test_errors(void **state)
{
	struct env *e = *state;
	struct remus_qmp *q = connect_qmp(e);
	char *err = NULL;

	assert_int_equal(remus_qmp_execute_sync(q, "fail", NULL, -1, WAIT_MS, NULL, &err),
			 -EREMOTEIO);
	assert_non_null(strstr(err, "GenericError: nope"));
	free(err);
	assert_int_equal(remus_qmp_execute_sync(q, "garbage", NULL, -1, WAIT_MS, NULL, &err),
			 -EREMOTEIO);
	assert_non_null(strstr(err, "neither"));
	free(err);
	assert_int_equal(remus_qmp_execute_sync(q, "libvirt-fails", NULL, -1, WAIT_MS, NULL,
						&err), -EREMOTEIO);
	assert_non_null(strstr(err, "not supported"));
	free(err);
	/* Still serving. */
	assert_int_equal(remus_qmp_execute_sync(q, "echo", NULL, -1, WAIT_MS, NULL, NULL), 0);
	assert_int_equal(remus_qmp_proxy_get_state(e->p), REMUS_QMP_PROXY_READY);
	remus_qmp_free(q);
}

struct order {
	int got[16];
	int n;
};

static void on_reply(struct remus_qmp *q, int rc, struct json_object *ret, const char *err,
		     void *opaque)
{
	struct order *o = opaque;
	struct json_object *v;

	assert_int_equal(rc, 0);
	assert_true(json_object_object_get_ex(ret, "i", &v));
	o->got[o->n++] = json_object_get_int(v);
}

/* Many commands at once: one runs at a time, replies in command order. */
static void test_order(void **state)
{
	struct env *e = *state;
	struct remus_qmp *q = connect_qmp(e);
	struct order o = { 0 };
	int i;

	for (i = 0; i < 16; i++) {
		struct json_object *a = json_object_new_object();

		json_object_object_add(a, "i", json_object_new_int(i));
		assert_int_equal(remus_qmp_execute(q, "echo", a, -1, 0, on_reply, &o), 0);
	}
	run_until(e, &o.n, 16);
	for (i = 0; i < 16; i++)
		assert_int_equal(o.got[i], i);
	assert_int_equal(fake.max_running, 1);
	remus_qmp_free(q);
}

/* An fd sent with a command reaches the monitor as an in-file (getfd). */
static void test_fd_passing(void **state)
{
	struct env *e = *state;
	struct remus_qmp *q = connect_qmp(e);
	struct json_object *a = json_object_new_object();
	int p[2];
	char buf[16] = { 0 };

	assert_int_equal(pipe(p), 0);
	json_object_object_add(a, "fdname", json_object_new_string("mig"));
	assert_int_equal(remus_qmp_execute_sync(q, "getfd", a, p[1], WAIT_MS, NULL, NULL), 0);
	close(p[1]);
	assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 5);
	assert_string_equal(buf, "getfd");
	assert_int_equal(fake.nfds[fake.ncmds - 1], 1);
	/* The proxy closed its copy: the pipe is at EOF now. */
	assert_int_equal(read(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
	/* The next command carries none. */
	assert_int_equal(remus_qmp_execute_sync(q, "echo", NULL, -1, WAIT_MS, NULL, NULL), 0);
	assert_int_equal(fake.nfds[fake.ncmds - 1], 0);
	remus_qmp_free(q);
}

struct evrec {
	int n;
	char name[64];
	int64_t ts;
	int status;
};

static void on_event(struct remus_qmp *q, const char *event, struct json_object *data,
		     int64_t ts, void *opaque)
{
	struct evrec *r = opaque;
	struct json_object *v;

	snprintf(r->name, sizeof(r->name), "%s", event);
	r->ts = ts;
	if (data && json_object_object_get_ex(data, "status", &v))
		r->status = json_object_get_int(v);
	r->n++;
}

/* Events from libvirt's thread reach the client as QMP event lines;
 * malformed ones are dropped; none before negotiation. */
static void test_events(void **state)
{
	struct env *e = *state;
	struct remus_qmp *q;
	struct evrec r = { 0 };
	struct remus_qmp_proxy_stats st;

	/* No client: dropped. */
	fake.event_cb(NULL, NULL, "STOP", 1, 2, NULL, fake.event_opaque);
	spin(e, 30);
	remus_qmp_proxy_get_stats(e->p, &st);
	assert_int_equal(st.events_dropped, 1);
	q = connect_qmp(e);
	assert_true(remus_qmp_subscribe(q, NULL, on_event, &r) > 0);
	fake.event_cb(NULL, NULL, "bad name!", 1, 2, NULL, fake.event_opaque);
	fake.event_cb(NULL, NULL, "MIGRATION", 1, 2, "[1]", fake.event_opaque);
	fake.event_cb(NULL, NULL, "MIGRATION", 1700000000, 250, "{\"status\": 7}",
		      fake.event_opaque);
	run_until(e, &r.n, 1);
	spin(e, 30);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.name, "MIGRATION");
	assert_int_equal(r.status, 7);
	assert_int_equal(r.ts, 1700000000LL * 1000000 + 250);
	remus_qmp_free(q);
}

/* QEMU's own answers to protocol mistakes, on a raw connection. */
static void test_protocol_answers(void **state)
{
	struct env *e = *state;
	int fd = raw_connect(e);
	char *l;

	l = raw_line(e, fd);
	assert_non_null(l);
	assert_non_null(strstr(l, "\"QMP\""));
	assert_non_null(strstr(l, "\"capabilities\":[]"));
	raw_send(fd, "{\"execute\": \"echo\", \"id\": \"early\"}\n");
	l = raw_line(e, fd);
	assert_non_null(strstr(l, "CommandNotFound"));
	assert_non_null(strstr(l, "\"id\":\"early\""));
	raw_send(fd, "\n{\"execute\": \"qmp_capabilities\", \"id\": [1, 2]}\n");
	l = raw_line(e, fd);
	assert_string_equal(l, "{\"return\":{},\"id\":[1,2]}");
	raw_send(fd, "{\"execute\": \"qmp_capabilities\"}\n");
	assert_non_null(strstr(raw_line(e, fd), "already complete"));
	raw_send(fd, "{\"arguments\": {}, \"id\": 5}\n");
	l = raw_line(e, fd);
	assert_non_null(strstr(l, "lacks member 'execute'"));
	assert_non_null(strstr(l, "\"id\":5"));
	raw_send(fd, "{\"execute\": \"echo\", \"arguments\": 3}\n");
	assert_non_null(strstr(raw_line(e, fd), "must be an object"));
	raw_send(fd, "{\"exec-oob\": \"echo\"}\n");
	assert_non_null(strstr(raw_line(e, fd), "out-of-band"));
	raw_send(fd, "{\"execute\": \"echo\", \"arguments\": {\"a\": \"\\u00e9/\"}, "
		     "\"id\": {\"k\": null}}\n");
	assert_string_equal(raw_line(e, fd), "{\"return\":{\"a\":\"\xc3\xa9/\"},\"id\":{\"k\":null}}");
	/* Malformed JSON closes the client. */
	raw_send(fd, "{\"execute\": \n");
	assert_null(raw_line(e, fd));
	close(fd);

	/* So does a value that is not an object, and an over-long line. */
	fd = raw_connect(e);
	assert_non_null(raw_line(e, fd));
	raw_send(fd, "[1]\n");
	assert_null(raw_line(e, fd));
	close(fd);
	fd = raw_connect(e);
	assert_non_null(raw_line(e, fd));
	raw_send(fd, "null\n"); /* json-c's null is no object at all */
	assert_null(raw_line(e, fd));
	close(fd);
	fd = raw_connect(e);
	assert_non_null(raw_line(e, fd));
	{
		char big[5000];

		memset(big, ' ', sizeof(big));
		assert_int_equal(remus_write_all(fd, big, sizeof(big)), 0);
	}
	assert_null(raw_line(e, fd));
	close(fd);
	assert_int_equal(remus_qmp_proxy_get_state(e->p), REMUS_QMP_PROXY_READY);
}

/* Too many fds with one command close the client. */
static void test_too_many_fds(void **state)
{
	struct env *e = *state;
	int fd = raw_connect(e), p[2], i;
	char *l;

	assert_non_null(raw_line(e, fd));
	raw_send(fd, "{\"execute\": \"qmp_capabilities\"}\n");
	assert_non_null(raw_line(e, fd));
	assert_int_equal(pipe(p), 0);
	for (i = 0; i < (int)REMUS_QMP_PROXY_MAX_FDS + 1; i++)
		assert_int_equal(remus_send_with_fd(fd, " ", 1, p[0]), 1);
	raw_send(fd, "{\"execute\": \"echo\"}\n");
	l = raw_line(e, fd);
	assert_null(l);
	close(fd);
	close(p[0]);
	close(p[1]);
}

/* A client that goes away with a command running: the reply is dropped,
 * the next client is served, and never sees it. */
static void test_client_gone_mid_command(void **state)
{
	struct env *e = *state;
	int gate[2], fd;
	char c = 'x';
	struct remus_qmp *q;
	struct remus_qmp_proxy_stats st;

	assert_int_equal(pipe(gate), 0);
	fake.gate = gate[0];
	fd = raw_connect(e);
	assert_non_null(raw_line(e, fd));
	raw_send(fd, "{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"slow\"}\n"
		     "{\"execute\": \"echo\"}\n");
	assert_non_null(raw_line(e, fd));
	while (!__atomic_load_n(&fake.running, __ATOMIC_SEQ_CST))
		spin(e, 5);
	close(fd);
	spin(e, 30);
	q = connect_qmp(e);
	assert_int_equal(write(gate[1], &c, 1), 1);
	assert_int_equal(remus_qmp_execute_sync(q, "echo", NULL, -1, WAIT_MS, NULL, NULL), 0);
	remus_qmp_proxy_get_stats(e->p, &st);
	assert_int_equal(st.clients, 2);
	/* query-version, slow, echo of the second client; not the first's echo. */
	assert_int_equal(fake.ncmds, 3);
	remus_qmp_free(q);
	close(gate[0]);
	close(gate[1]);
}

struct closed_rec {
	int closed;
	int rc;
};

static void on_qmp_state(struct remus_qmp *q, enum remus_qmp_state s, int rc,
			 const char *err, void *opaque)
{
	struct closed_rec *r = opaque;

	if (s == REMUS_QMP_CLOSED) {
		r->closed++;
		r->rc = rc;
	}
}

/* libvirt says the domain is gone (here: no such domain; for a dead
 * QEMU: not running): the client's monitor closes, as when
 * QEMU dies; the proxy is dead and closes later clients at once. */
static void test_domain_gone(void **state)
{
	struct env *e = *state;
	struct closed_rec r = { 0 };
	struct remus_qmp *q;
	int fd;

	assert_int_equal(remus_qmp_connect(e->loop, e->path, NULL, on_qmp_state, &r, &q), 0);
	assert_int_equal(remus_qmp_wait_ready(q, WAIT_MS), 0);
	assert_int_equal(remus_qmp_execute(q, "gone", NULL, -1, 0, NULL, NULL), 0);
	run_until(e, &r.closed, 1);
	assert_int_equal(r.rc, -ECONNRESET);
	run_until(e, &e->dead, 1);
	assert_int_equal(e->dead_rc, -ENODEV);
	assert_non_null(strstr(e->dead_err, "qmp proxy test: domain is gone: "));
	assert_non_null(strstr(e->dead_err, "Domain not found"));
	assert_int_equal(remus_qmp_proxy_get_state(e->p), REMUS_QMP_PROXY_DEAD);
	remus_qmp_free(q);
	fd = raw_connect(e);
	assert_null(raw_line(e, fd));
	close(fd);
}

/* An unknown domain: the proxy dies at set-up, naming it. */
static void test_unknown_domain(void **state)
{
	struct env *e = *state;
	int fd;

	start_proxy(e, "no-such-domain");
	run_until(e, &e->dead, 1);
	assert_int_equal(e->ready, 0);
	assert_non_null(strstr(e->dead_err, "qmp proxy no-such-domain: "));
	assert_non_null(strstr(e->dead_err, "Domain not found"));
	fd = raw_connect(e);
	assert_null(raw_line(e, fd));
	close(fd);
	assert_int_equal(fake.registered, 0);
}

/* A client that connected before set-up finished gets the greeting
 * first, then its commands run. */
static void test_client_before_ready(void **state)
{
	struct env *e = *state;
	struct remus_qmp *q;

	start_proxy(e, "test");
	assert_int_equal(remus_qmp_connect(e->loop, e->path, NULL, NULL, NULL, &q), 0);
	assert_int_equal(remus_qmp_execute_sync(q, "echo", NULL, -1, WAIT_MS, NULL, NULL), 0);
	assert_int_equal(e->ready, 1);
	remus_qmp_free(q);
}

/* Freed with a command running: the reply is dropped, the registration
 * removed, the socket file gone. */
static void test_free_mid_command(void **state)
{
	struct env *e = *state;
	int gate[2], fd;
	char c = 'x';

	assert_int_equal(pipe(gate), 0);
	fake.gate = gate[0];
	fd = raw_connect(e);
	assert_non_null(raw_line(e, fd));
	raw_send(fd, "{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"slow\"}\n");
	assert_non_null(raw_line(e, fd));
	while (!__atomic_load_n(&fake.running, __ATOMIC_SEQ_CST))
		spin(e, 5);
	remus_qmp_proxy_free(e->p);
	e->p = NULL;
	assert_int_equal(access(e->path, F_OK), -1);
	assert_null(raw_line(e, fd));
	assert_int_equal(write(gate[1], &c, 1), 1);
	while (!__atomic_load_n(&fake.deregistered, __ATOMIC_SEQ_CST))
		spin(e, 5);
	spin(e, 30);
	close(fd);
	close(gate[0]);
	close(gate[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_passing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_protocol_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone_mid_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_domain, setup_bare, teardown),
		cmocka_unit_test_setup_teardown(test_client_before_ready, setup_bare, teardown),
		cmocka_unit_test_setup_teardown(test_free_mid_command, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
