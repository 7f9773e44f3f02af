// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The public netbuffer API with the qemu backend, against a fake QEMU on
 * the same event loop.  The fake QMP server of tests/support/fake_qmp.h
 * keeps the fds passed with getfd; a handler here models what QEMU's
 * chardevs and filter-redirector do with them: a "guest" frame sent on a
 * netdev is written to the filter's outdev while the filter exists and is
 * on, and otherwise reaches the netdev at once; frames read from the
 * filter's indev reach the netdev.  The netdev's "wire" log is the order
 * in which frames reached it, which is what output commit is about.
 *
 * Checked: the QMP commands and ids of setup and teardown and their order
 * (status=off before object-del, chardevs after the filter); holding until
 * commit; the barrier drains what QEMU wrote before closing the epoch;
 * discovery; a failure at every setup step is rolled back completely and
 * named; both standby-lost policies and protect; teardown with release and
 * with drop; teardown during setup; free with commands in flight.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/sock.h"
#include "common/wire.h"
#include "netbuffer/frame.h"
#include "netbuffer/netbuffer.h"
#include "qmp/qmp.h"
#include "support/fake_qmp.h"

#define MAXN 8

struct fake_fd { char name[64]; int fd; };

struct fake_filter {
	char id[64], netdev[32], out[64], in[64];
	bool on;
	int in_fd;                  /* borrowed from the chardev */
	struct remus_nbf_reader rd;
};

struct fake {
	struct remus_loop *loop;
	struct remus_fake_qmp *qmp; /* its transcript: "cmd arg;" per command */
	struct fake_fd chr[MAXN];   /* chardevs: id and fd */
	struct fake_filter flt[MAXN];
	int nchr, nflt;
	const char *fail_cmd;       /* fail this command ... */
	const char *fail_arg;       /* ... for this id/fdname (NULL: any) */
	/* Per netdev n0, n1: what reached it, "payload " each. */
	char wire[2][4096];
};

static int netdev_idx(const char *netdev)
{
	return strcmp(netdev, "n1") == 0 ? 1 : 0;
}

static int take_fd(struct fake_fd *tab, int *n, const char *name)
{
	int i, fd;

	for (i = 0; i < *n; i++)
		if (strcmp(tab[i].name, name) == 0) {
			fd = tab[i].fd;
			tab[i] = tab[--*n];
			return fd;
		}
	return -1;
}

static const char *sget(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static struct fake *g_fake;

static void on_indev(void *opaque, const uint8_t *frame, uint32_t len, uint32_t vnet)
{
	struct fake_filter *fl = opaque;
	char *w = g_fake->wire[netdev_idx(fl->netdev)];

	assert_int_equal(vnet, 0);
	snprintf(w + strlen(w), 4096 - strlen(w), "%.*s ", (int)len, (const char *)frame);
}

static void on_indev_ready(struct remus_loop *loop, int fd, unsigned ev, void *opaque)
{
	struct fake_filter *fl = opaque;
	uint8_t buf[4096];
	ssize_t r = read(fd, buf, sizeof(buf));

	if (r > 0)
		remus_nbf_reader_feed(&fl->rd, buf, (size_t)r, on_indev, fl);
	else
		remus_loop_del_fd(loop, fd);
}

static struct json_object *qom_list(const char *path)
{
	struct json_object *a = json_object_new_array();
	const char *names[4], *types[4];
	int i, n = 0;

	names[n] = "type", types[n++] = "string";
	if (strcmp(path, "/machine/peripheral") == 0) {
		names[n] = "nic0", types[n++] = "child<virtio-net-pci>";
		names[n] = "serial0", types[n++] = "child<isa-serial>";
	} else {
		names[n] = "device[0]", types[n++] = "child<e1000>";
	}
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "name", json_object_new_string(names[i]));
		json_object_object_add(e, "type", json_object_new_string(types[i]));
		json_object_array_add(a, e);
	}
	return a;
}

/* Answers @c with @ret (taken; NULL: {}) or, if @error, with an error. */
static void reply(struct fake *f, struct remus_fake_qmp_cmd *c, struct json_object *ret,
		  const char *error)
{
	if (error) {
		json_object_put(ret);
		remus_fake_qmp_reply_error(f->qmp, c, "GenericError", error);
	} else {
		remus_fake_qmp_reply_json(f->qmp, c, ret);
	}
}

/* Every command: what QEMU does with the fds, chardevs and filters. */
static void handle(struct remus_fake_qmp *q, struct remus_fake_qmp_cmd *c, void *opaque)
{
	struct fake *f = opaque;
	struct json_object *args = c->args, *v;
	const char *cmd = c->name, *arg = "";
	char err[128] = "";
	int i, fd;

	if (strcmp(cmd, "getfd") == 0 || strcmp(cmd, "closefd") == 0)
		arg = sget(args, "fdname");
	else if (strcmp(cmd, "qom-set") == 0 || strcmp(cmd, "qom-list") == 0 ||
		 strcmp(cmd, "qom-get") == 0)
		arg = sget(args, "path");
	else if (args)
		arg = sget(args, "id");
	if (f->fail_cmd && strcmp(cmd, f->fail_cmd) == 0 &&
	    (!f->fail_arg || strcmp(arg, f->fail_arg) == 0)) {
		fd = remus_fake_qmp_take_cmd_fd(c);
		if (fd >= 0)
			close(fd); /* QEMU does not keep what it refused */
		reply(f, c, NULL, "scripted failure");
		return;
	}
	if (strcmp(cmd, "getfd") == 0 || strcmp(cmd, "closefd") == 0) {
		/* The fake keeps getfd's fds by name, as QEMU does. */
		remus_fake_qmp_builtin(q, c);
		return;
	} else if (strcmp(cmd, "chardev-add") == 0) {
		/* backend.data.addr.data.str names the fd; server must be false */
		struct json_object *b, *d, *a, *ad;

		assert_true(json_object_object_get_ex(args, "backend", &b));
		assert_string_equal(sget(b, "type"), "socket");
		assert_true(json_object_object_get_ex(b, "data", &d));
		assert_true(json_object_object_get_ex(d, "server", &v));
		assert_false(json_object_get_boolean(v));
		assert_true(json_object_object_get_ex(d, "addr", &a));
		assert_string_equal(sget(a, "type"), "fd");
		assert_true(json_object_object_get_ex(a, "data", &ad));
		fd = remus_fake_qmp_take_fd(q, sget(ad, "str"));
		if (fd < 0) {
			snprintf(err, sizeof(err), "fd not found");
		} else {
			snprintf(f->chr[f->nchr].name, 64, "%s", arg);
			f->chr[f->nchr++].fd = fd;
		}
	} else if (strcmp(cmd, "chardev-remove") == 0) {
		fd = take_fd(f->chr, &f->nchr, arg);
		if (fd < 0)
			snprintf(err, sizeof(err), "Chardev '%s' not found", arg);
		else
			close(fd);
	} else if (strcmp(cmd, "object-add") == 0) {
		struct fake_filter *fl = &f->flt[f->nflt];

		assert_string_equal(sget(args, "qom-type"), "filter-redirector");
		assert_string_equal(sget(args, "queue"), "rx");
		assert_true(json_object_object_get_ex(args, "vnet_hdr_support", &v));
		assert_true(json_object_get_boolean(v));
		memset(fl, 0, sizeof(*fl));
		snprintf(fl->id, 64, "%s", arg);
		snprintf(fl->netdev, 32, "%s", sget(args, "netdev"));
		snprintf(fl->out, 64, "%s", sget(args, "outdev"));
		snprintf(fl->in, 64, "%s", sget(args, "indev"));
		assert_string_not_equal(fl->in, fl->out);
		fl->on = true;
		fl->in_fd = -1;
		for (i = 0; i < f->nchr; i++)
			if (strcmp(f->chr[i].name, fl->in) == 0)
				fl->in_fd = f->chr[i].fd;
		assert_true(fl->in_fd >= 0);
		assert_int_equal(remus_nbf_reader_init(&fl->rd, true, 0), 0);
		assert_int_equal(remus_loop_add_fd(f->loop, fl->in_fd, REMUS_EV_READ,
						   on_indev_ready, fl), 0);
		f->nflt++;
	} else if (strcmp(cmd, "object-del") == 0) {
		for (i = 0; i < f->nflt; i++)
			if (strcmp(f->flt[i].id, arg) == 0)
				break;
		if (i == f->nflt) {
			snprintf(err, sizeof(err), "object '%s' not found", arg);
		} else {
			/* Whatever is still in indev is lost, as in QEMU. */
			remus_loop_del_fd(f->loop, f->flt[i].in_fd);
			remus_nbf_reader_release(&f->flt[i].rd);
			f->flt[i] = f->flt[--f->nflt];
		}
	} else if (strcmp(cmd, "qom-set") == 0) {
		for (i = 0; i < f->nflt; i++)
			if (strncmp(arg, "/objects/", 9) == 0 && strcmp(arg + 9, f->flt[i].id) == 0)
				f->flt[i].on = strcmp(sget(args, "value"), "on") == 0;
	} else if (strcmp(cmd, "qom-list") == 0 && strcmp(arg, "/objects") == 0) {
		struct json_object *a = json_object_new_array(), *o;

		for (i = 0; i < f->nflt; i++) {
			o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string(f->flt[i].id));
			json_object_object_add(o, "type",
					       json_object_new_string("child<filter-redirector>"));
			json_object_array_add(a, o);
		}
		reply(f, c, a, NULL);
		return;
	} else if (strcmp(cmd, "query-chardev") == 0) {
		struct json_object *a = json_object_new_array(), *o;

		for (i = 0; i < f->nchr; i++) {
			o = json_object_new_object();
			json_object_object_add(o, "label", json_object_new_string(f->chr[i].name));
			json_object_object_add(o, "filename", json_object_new_string("unix:"));
			json_object_array_add(a, o);
		}
		reply(f, c, a, NULL);
		return;
	} else if (strcmp(cmd, "qom-list") == 0) {
		reply(f, c, qom_list(arg), NULL);
		return;
	} else if (strcmp(cmd, "qom-get") == 0) {
		const char *nd = strcmp(arg, "/machine/peripheral/nic0") == 0 ? "n0"
			       : strcmp(arg, "/machine/peripheral-anon/device[0]") == 0 ? "n1"
			       : NULL;

		if (!nd)
			snprintf(err, sizeof(err), "Property 'netdev' not found");
		reply(f, c, nd ? json_object_new_string(nd) : NULL, nd ? NULL : err);
		return;
	}
	reply(f, c, NULL, err[0] ? err : NULL);
}

/* The guest sends @payload on @netdev. */
static void guest_send(struct fake *f, const char *netdev, const char *payload)
{
	uint8_t hdr[8];
	int i, k;

	for (i = 0; i < f->nflt; i++)
		if (strcmp(f->flt[i].netdev, netdev) == 0 && f->flt[i].on)
			break;
	if (i == f->nflt) {
		char *w = f->wire[netdev_idx(netdev)];

		snprintf(w + strlen(w), 4096 - strlen(w), "%s ", payload);
		return;
	}
	for (k = 0; k < f->nchr; k++)
		if (strcmp(f->chr[k].name, f->flt[i].out) == 0)
			break;
	assert_true(k < f->nchr);
	remus_put_be32(hdr, (uint32_t)strlen(payload));
	remus_put_be32(hdr + 4, 0);
	assert_int_equal(remus_write_all(f->chr[k].fd, hdr, 8), 0);
	assert_int_equal(remus_write_all(f->chr[k].fd, payload, strlen(payload)), 0);
}

/* ---- test environment ------------------------------------------------- */

struct done {
	int calls;
	int rc;
	char msg[1024];
};

static void on_done(void *opaque, int rc, const char *msg)
{
	struct done *d = opaque;

	d->calls++;
	d->rc = rc;
	snprintf(d->msg, sizeof(d->msg), "%s", msg ? msg : "");
	assert_true((rc == 0) == (msg == NULL));
}

struct env {
	struct remus_loop *loop;
	struct remus_qmp *qmp;
	struct fake *f;
	struct remus_netbuffer *nb;
};

static void run_ms(struct env *e, unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (remus_now_ms() < end)
		remus_loop_run_once(e->loop, 5);
}

static void run_until(struct env *e, const int *calls, unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (*calls == 0 && remus_now_ms() < end)
		remus_loop_run_once(e->loop, 5);
	assert_int_equal(*calls, 1);
	run_ms(e, 10); /* nothing else is called */
}

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	e->f = calloc(1, sizeof(*e->f));
	g_fake = e->f;
	assert_int_equal(remus_loop_new(&e->loop), 0);
	e->f->loop = e->loop;
	remus_fake_qmp_pair(e->loop, handle, e->f, &e->f->qmp, &e->qmp);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;
	int i;

	remus_netbuffer_free(e->nb);
	remus_qmp_free(e->qmp);
	for (i = 0; i < e->f->nflt; i++) {
		remus_loop_del_fd(e->loop, e->f->flt[i].in_fd);
		remus_nbf_reader_release(&e->f->flt[i].rd);
	}
	for (i = 0; i < e->f->nchr; i++)
		close(e->f->chr[i].fd);
	remus_fake_qmp_free(e->f->qmp);
	remus_loop_free(e->loop);
	free(e->f);
	free(e);
	return 0;
}

static void nb_new(struct env *e, bool discover, enum remus_netbuffer_on_lost lost,
		   size_t limit)
{
	static const char *const devs[] = { "n0", "n1" };
	struct remus_netbuffer_config cfg = {
		.kind = REMUS_NETBUFFER_QEMU,
		.devices = discover ? NULL : devs,
		.ndevices = discover ? 0 : 2,
		.epoch_limit_bytes = limit,
		.on_lost = lost,
	};

	assert_int_equal(remus_netbuffer_new(e->loop, e->qmp, &cfg, &e->nb), 0);
}

static void nb_setup_ok(struct env *e)
{
	struct done d = { 0 };

	remus_netbuffer_setup(e->nb, on_done, &d);
	assert_int_equal(d.calls, 0); /* never from inside setup */
	run_until(e, &d.calls, 3000);
	assert_int_equal(d.rc, 0);
}

static void nb_teardown(struct env *e, bool release, int want_rc)
{
	struct done d = { 0 };

	remus_netbuffer_teardown(e->nb, release, on_done, &d);
	assert_int_equal(d.calls, 0);
	run_until(e, &d.calls, 5000);
	assert_int_equal(d.rc, want_rc);
}

/* Nothing of ours is left in the fake QEMU. */
static void assert_clean(struct fake *f)
{
	assert_int_equal(f->nflt, 0);
	assert_int_equal(f->nchr, 0);
	assert_int_equal(remus_fake_qmp_nfds(f->qmp), 0);
}

/* ---- tests ------------------------------------------------------------ */

static void test_hold_until_commit(void **state)
{
	struct env *e = *state;
	struct fake *f = e->f;
	struct remus_netbuffer_stats st;
	struct json_object *st_obj;
	const char *js;

	nb_new(e, false, REMUS_NETBUFFER_LOST_RELEASE, 0);
	nb_setup_ok(e);
	assert_string_equal(remus_fake_qmp_log(f->qmp),
		"qom-list /objects;query-chardev;"
		"getfd remus-nb-n0-out;getfd remus-nb-n0-in;"
		"chardev-add remus-nb-n0-out;chardev-add remus-nb-n0-in;"
		"object-add remus-nb-n0;"
		"getfd remus-nb-n1-out;getfd remus-nb-n1-in;"
		"chardev-add remus-nb-n1-out;chardev-add remus-nb-n1-in;"
		"object-add remus-nb-n1;");
	assert_int_equal(f->nflt, 2);
	assert_int_equal(f->nchr, 4);
	assert_int_equal(remus_fake_qmp_nfds(f->qmp), 0);

	guest_send(f, "n0", "a1");
	guest_send(f, "n1", "b1");
	guest_send(f, "n0", "a2");
	run_ms(e, 50);
	assert_string_equal(f->wire[0], "");
	assert_string_equal(f->wire[1], "");
	assert_int_equal(remus_netbuffer_barrier(e->nb, 1), 0);
	guest_send(f, "n0", "a3");
	run_ms(e, 50);
	remus_netbuffer_commit(e->nb, 1);
	run_ms(e, 50);
	assert_string_equal(f->wire[0], "a1 a2 ");
	assert_string_equal(f->wire[1], "b1 ");
	remus_netbuffer_get_stats(e->nb, &st);
	assert_int_equal(st.queued_frames, 4);
	assert_int_equal(st.released_frames, 3);
	assert_int_equal(st.held_frames, 1);
	assert_int_equal(st.barriers, 1);
	assert_int_equal(st.commits, 1);
	assert_true(st.latency_max_ms >= 40);
	/* Unknown label: ignored. */
	remus_netbuffer_commit(e->nb, 99);
	st_obj = remus_netbuffer_status_json(e->nb);
	assert_non_null(st_obj);
	js = json_object_to_json_string_ext(st_obj, JSON_C_TO_STRING_PLAIN);
	assert_non_null(js);
	assert_non_null(strstr(js, "\"kind\":\"qemu\""));
	assert_non_null(strstr(js, "\"devices\":[\"n0\",\"n1\"]"));
	assert_non_null(strstr(js, "\"holding\":true"));
	assert_non_null(strstr(js, "\"held_frames\":1"));
	json_object_put(st_obj);

	remus_fake_qmp_log_clear(f->qmp);
	nb_teardown(e, true, 0);
	assert_string_equal(f->wire[0], "a1 a2 a3 ");
	assert_string_equal(remus_fake_qmp_log(f->qmp),
		"qom-set /objects/remus-nb-n0;qom-set /objects/remus-nb-n1;"
		"object-del remus-nb-n0;chardev-remove remus-nb-n0-out;"
		"chardev-remove remus-nb-n0-in;"
		"object-del remus-nb-n1;chardev-remove remus-nb-n1-out;"
		"chardev-remove remus-nb-n1-in;");
	assert_clean(f);
	/* The guest's traffic flows directly now. */
	guest_send(f, "n1", "b2");
	assert_string_equal(f->wire[1], "b1 b2 ");
}

static void test_barrier_drains_first(void **state)
{
	struct env *e = *state;
	struct fake *f = e->f;

	nb_new(e, false, REMUS_NETBUFFER_LOST_RELEASE, 0);
	nb_setup_ok(e);
	/* Written by QEMU just before the stop; the loop has not run. */
	guest_send(f, "n0", "x1");
	guest_send(f, "n1", "y1");
	assert_int_equal(remus_netbuffer_barrier(e->nb, 4), 0);
	guest_send(f, "n0", "x2");
	remus_netbuffer_commit(e->nb, 4);
	run_ms(e, 50);
	assert_string_equal(f->wire[0], "x1 ");
	assert_string_equal(f->wire[1], "y1 ");
	nb_teardown(e, false, 0);
	assert_string_equal(f->wire[0], "x1 ");
	{
		struct remus_netbuffer_stats st;

		remus_netbuffer_get_stats(e->nb, &st);
		assert_int_equal(st.dropped_teardown, 1);
	}
	assert_clean(f);
}

static void test_discovery(void **state)
{
	struct env *e = *state;
	struct fake *f = e->f;
	struct json_object *st_obj;
	const char *js;

	nb_new(e, true, REMUS_NETBUFFER_LOST_RELEASE, 0);
	nb_setup_ok(e);
	assert_non_null(strstr(remus_fake_qmp_log(f->qmp), "qom-get /machine/peripheral/serial0;"));
	assert_non_null(strstr(remus_fake_qmp_log(f->qmp), "object-add remus-nb-n0;"));
	assert_non_null(strstr(remus_fake_qmp_log(f->qmp), "object-add remus-nb-n1;"));
	st_obj = remus_netbuffer_status_json(e->nb);
	assert_non_null(st_obj);
	js = json_object_to_json_string_ext(st_obj, JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(js, "\"devices\":[\"n0\",\"n1\"]"));
	json_object_put(st_obj);
	guest_send(f, "n1", "d1");
	remus_netbuffer_barrier(e->nb, 1);
	remus_netbuffer_commit(e->nb, 1);
	run_ms(e, 30);
	assert_string_equal(f->wire[1], "d1 ");
	nb_teardown(e, true, 0);
	assert_clean(f);
}

/* A failure at any setup step of the second NIC removes everything. */
static void test_setup_rollback(void **state)
{
	static const struct { const char *cmd, *arg; } steps[] = {
		{ "getfd", "remus-nb-n1-out" }, { "getfd", "remus-nb-n1-in" },
		{ "chardev-add", "remus-nb-n1-out" }, { "chardev-add", "remus-nb-n1-in" },
		{ "object-add", "remus-nb-n1" }, { "getfd", "remus-nb-n0-out" },
	};
	struct env *e = *state;
	struct fake *f = e->f;
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct done d = { 0 };
		char want[256];

		remus_fake_qmp_log_clear(f->qmp);
		f->wire[0][0] = '\0';
		f->fail_cmd = steps[i].cmd;
		f->fail_arg = steps[i].arg;
		nb_new(e, false, REMUS_NETBUFFER_LOST_RELEASE, 0);
		remus_netbuffer_setup(e->nb, on_done, &d);
		/* n0 may be set up already: its output must not be lost. */
		for (int k = 0; k < 20 && f->nflt == 0; k++)
			remus_loop_run_once(e->loop, 5);
		if (f->nflt)
			guest_send(f, "n0", "kept");
		run_until(e, &d.calls, 3000);
		assert_int_equal(d.rc, -EREMOTEIO);
		snprintf(want, sizeof(want), "netdev '%s': %s %s failed",
			 strstr(steps[i].arg, "n1") ? "n1" : "n0", steps[i].cmd, steps[i].arg);
		assert_non_null(strstr(d.msg, want));
		assert_non_null(strstr(d.msg, "scripted failure"));
		assert_non_null(strstr(d.msg, "everything added was removed"));
		assert_clean(f);
		if (strstr(steps[i].arg, "n1"))
			assert_string_equal(f->wire[0], "kept ");
		/* Barrier after a failed setup is refused; teardown is fine. */
		assert_int_equal(remus_netbuffer_barrier(e->nb, 1), -EINVAL);
		nb_teardown(e, true, 0);
		remus_netbuffer_free(e->nb);
		e->nb = NULL;
	}
	f->fail_cmd = NULL;
}

static void test_standby_lost_release_and_protect(void **state)
{
	struct env *e = *state;
	struct fake *f = e->f;
	struct remus_netbuffer_stats st;

	nb_new(e, false, REMUS_NETBUFFER_LOST_RELEASE, 0);
	nb_setup_ok(e);
	guest_send(f, "n0", "c1");
	remus_netbuffer_barrier(e->nb, 1);
	guest_send(f, "n0", "o1");
	run_ms(e, 30);
	remus_netbuffer_standby_lost(e->nb);
	run_ms(e, 30);
	assert_string_equal(f->wire[0], "c1 o1 ");
	guest_send(f, "n0", "p1");
	run_ms(e, 30);
	assert_string_equal(f->wire[0], "c1 o1 p1 ");
	remus_netbuffer_get_stats(e->nb, &st);
	assert_int_equal(st.passthrough_frames, 1);
	remus_netbuffer_protect(e->nb);
	guest_send(f, "n0", "h1");
	run_ms(e, 30);
	assert_string_equal(f->wire[0], "c1 o1 p1 ");
	/* The new session numbers from 1 again. */
	remus_netbuffer_barrier(e->nb, 1);
	remus_netbuffer_commit(e->nb, 1);
	run_ms(e, 30);
	assert_string_equal(f->wire[0], "c1 o1 p1 h1 ");
	nb_teardown(e, true, 0);
	assert_clean(f);
}

static void test_standby_lost_hold(void **state)
{
	struct env *e = *state;
	struct fake *f = e->f;
	struct remus_netbuffer_stats st;

	nb_new(e, false, REMUS_NETBUFFER_LOST_HOLD, 0);
	nb_setup_ok(e);
	guest_send(f, "n0", "c1");
	remus_netbuffer_barrier(e->nb, 7);
	guest_send(f, "n0", "o1");
	remus_netbuffer_standby_lost(e->nb);
	guest_send(f, "n0", "o2");
	run_ms(e, 30);
	assert_string_equal(f->wire[0], "");
	remus_netbuffer_protect(e->nb); /* already holding: no-op */
	remus_netbuffer_barrier(e->nb, 3);
	remus_netbuffer_commit(e->nb, 3);
	run_ms(e, 30);
	assert_string_equal(f->wire[0], "c1 o1 o2 ");
	remus_netbuffer_get_stats(e->nb, &st);
	assert_int_equal(st.passthrough_frames, 0);
	assert_int_equal(st.released_frames, 3);
	nb_teardown(e, true, 0);
}

static void test_overflow_and_malformed(void **state)
{
	struct env *e = *state;
	struct fake *f = e->f;
	struct remus_netbuffer_stats st;
	uint8_t bad[8];
	int k;

	nb_new(e, false, REMUS_NETBUFFER_LOST_RELEASE, 10);
	nb_setup_ok(e);
	/* One NIC: across NICs the order frames are read in is the order
	 * of their sockets, so which one overflows would depend on it. */
	guest_send(f, "n0", "12345");
	guest_send(f, "n0", "12345");
	guest_send(f, "n0", "6"); /* 11 bytes in this epoch: dropped */
	/* QEMU sending a zero-length frame (it never does): counted. */
	for (k = 0; k < f->nchr; k++)
		if (strcmp(f->chr[k].name, "remus-nb-n0-out") == 0)
			break;
	memset(bad, 0, sizeof(bad));
	assert_int_equal(remus_write_all(f->chr[k].fd, bad, 8), 0);
	remus_netbuffer_barrier(e->nb, 1);
	remus_netbuffer_get_stats(e->nb, &st);
	assert_int_equal(st.dropped_overflow, 1);
	assert_int_equal(st.dropped_malformed, 1);
	assert_int_equal(st.held_bytes, 10);
	guest_send(f, "n0", "abc");
	remus_netbuffer_barrier(e->nb, 2);
	remus_netbuffer_commit(e->nb, 2);
	run_ms(e, 30);
	assert_string_equal(f->wire[0], "12345 12345 abc ");
	nb_teardown(e, true, 0);
}

static void test_teardown_during_setup(void **state)
{
	struct env *e = *state;
	struct fake *f = e->f;
	struct done ds = { 0 }, dt = { 0 };

	nb_new(e, false, REMUS_NETBUFFER_LOST_RELEASE, 0);
	remus_netbuffer_setup(e->nb, on_done, &ds);
	/* Let a few commands through, then tear down mid-way. */
	while (strstr(remus_fake_qmp_log(f->qmp), "chardev-add remus-nb-n0-in") == NULL)
		remus_loop_run_once(e->loop, 5);
	remus_netbuffer_teardown(e->nb, false, on_done, &dt);
	run_until(e, &dt.calls, 3000);
	assert_int_equal(ds.calls, 1);
	assert_int_equal(ds.rc, -ECANCELED);
	assert_int_equal(dt.rc, 0);
	assert_clean(f);
}

static void test_free_in_flight(void **state)
{
	struct env *e = *state;
	struct done d = { 0 };

	nb_new(e, false, REMUS_NETBUFFER_LOST_RELEASE, 0);
	remus_netbuffer_setup(e->nb, on_done, &d);
	remus_loop_run_once(e->loop, 5);
	remus_netbuffer_free(e->nb);
	e->nb = NULL;
	run_ms(e, 50); /* replies arrive for a freed netbuffer */
	assert_int_equal(d.calls, 0);
}

/* A netbuffer freed without teardown (remusd died) leaves its objects in
 * QEMU; the next setup removes them first and succeeds. */
static void test_leftovers_removed(void **state)
{
	struct env *e = *state;
	struct fake *f = e->f;

	nb_new(e, false, REMUS_NETBUFFER_LOST_RELEASE, 0);
	nb_setup_ok(e);
	remus_netbuffer_free(e->nb);
	e->nb = NULL;
	assert_int_equal(f->nflt, 2);
	assert_int_equal(f->nchr, 4);
	remus_fake_qmp_log_clear(f->qmp);
	nb_new(e, false, REMUS_NETBUFFER_LOST_RELEASE, 0);
	nb_setup_ok(e);
	{
		static const char want[] =
			"qom-list /objects;query-chardev;"
			"object-del remus-nb-n0;object-del remus-nb-n1;"
			"chardev-remove remus-nb-n0-out;chardev-remove remus-nb-n0-in;"
			"chardev-remove remus-nb-n1-out;chardev-remove remus-nb-n1-in;"
			"getfd remus-nb-n0-out;";

		assert_int_equal(strncmp(remus_fake_qmp_log(f->qmp), want, strlen(want)), 0);
	}
	assert_int_equal(f->nflt, 2);
	assert_int_equal(f->nchr, 4);
	guest_send(f, "n0", "z1");
	remus_netbuffer_barrier(e->nb, 1);
	remus_netbuffer_commit(e->nb, 1);
	run_ms(e, 30);
	assert_string_equal(f->wire[0], "z1 ");
	nb_teardown(e, true, 0);
	assert_clean(f);
}

static void test_config_errors(void **state)
{
	struct env *e = *state;
	struct remus_netbuffer *nb = NULL;
	static const char *const bad[] = { "0bad" };
	struct remus_netbuffer_config cfg = { .kind = REMUS_NETBUFFER_QEMU };
	enum remus_netbuffer_kind k;

	assert_int_equal(remus_netbuffer_new(e->loop, NULL, &cfg, &nb), -EINVAL);
	cfg.devices = bad;
	cfg.ndevices = 1;
	assert_int_equal(remus_netbuffer_new(e->loop, e->qmp, &cfg, &nb), -EINVAL);
	cfg.kind = REMUS_NETBUFFER_PLUG;
	cfg.devices = NULL;
	cfg.ndevices = 0;
	assert_int_equal(remus_netbuffer_new(e->loop, NULL, &cfg, &nb), -EINVAL);
	assert_null(nb);
	assert_string_equal(remus_netbuffer_kind_name(REMUS_NETBUFFER_PLUG), "plug");
	assert_int_equal(remus_netbuffer_kind_parse("qemu", &k), 0);
	assert_int_equal(k, REMUS_NETBUFFER_QEMU);
	assert_int_equal(remus_netbuffer_kind_parse("kvm", &k), -EINVAL);
	remus_netbuffer_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hold_until_commit, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_barrier_drains_first, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_discovery, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_setup_rollback, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_standby_lost_release_and_protect,
						env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_standby_lost_hold, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_overflow_and_malformed, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_teardown_during_setup, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_free_in_flight, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_leftovers_removed, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_config_errors, env_setup, env_teardown),
	};

	remus_log_set_level(REMUS_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
