// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target for qmp/: the input plays QEMU.  Byte 0 chooses what the
 * client's callbacks do (bit 0: free the client from the second reply
 * callback, bit 1: free it from the third event, bit 2: submit a new
 * command from every reply callback); the rest is the server's byte
 * stream, fed one line at a time with loop iterations in between so that
 * the client's writes interleave with the replies as they would with a
 * real QEMU.  Then the server closes the socket.
 *
 * Client ids are predictable: three commands are submitted before the
 * greeting (ids 1-3, the second with an fd), qmp_capabilities gets id 4,
 * commands submitted from callbacks get 5 and up; the seeds use them.
 *
 * REMUS_FUZZ_VERBOSE=1 prints what each input did (to check seeds reach
 * deep).  Checked besides crashes and leaks (ASan/LSan): the client closes after
 * EOF within a bounded number of iterations (no hang), and every accepted
 * command's callback ran exactly once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/loop.h"
#include "qmp/qmp.h"

#define MAX_CMDS 64

struct run {
	struct remus_loop *loop;
	struct remus_qmp *q;
	unsigned flags;
	int calls[MAX_CMDS]; /* per submitted command */
	int ncmds;
	int replies, events;
	int pipefd;
};

static void on_reply(struct remus_qmp *q, int rc, struct json_object *ret,
		     const char *err, void *opaque);

static void submit(struct run *r, const char *name, int fd)
{
	if (r->ncmds >= MAX_CMDS || !r->q)
		return;
	if (remus_qmp_execute(r->q, name, NULL, fd, 60000, on_reply,
			      &r->calls[r->ncmds]) == 0)
		r->ncmds++;
}

static struct run *current;
static FILE *devnull;

static void on_reply(struct remus_qmp *q, int rc, struct json_object *ret,
		     const char *err, void *opaque)
{
	int *calls = opaque;
	struct run *r = current;

	(*calls)++;
	if (rc < 0 && !err)
		abort(); /* every failure has a message */
	if (rc == 0 && err)
		abort();
	if (ret)
		json_object_to_json_string(ret); /* borrowed: must be valid */
	r->replies++;
	if ((r->flags & 4) && r->q)
		submit(r, "from-callback", -1);
	if ((r->flags & 1) && r->replies == 2 && r->q) {
		struct remus_qmp *victim = r->q;

		r->q = NULL;
		remus_qmp_free(victim);
	}
}

static void on_event(struct remus_qmp *q, const char *event, struct json_object *data,
		     int64_t ts, void *opaque)
{
	struct run *r = opaque;

	if (!event)
		abort();
	if (data)
		json_object_to_json_string(data);
	r->events++;
	if ((r->flags & 2) && r->events == 3 && r->q) {
		struct remus_qmp *victim = r->q;

		r->q = NULL;
		remus_qmp_free(victim);
	}
}

/* Writes all of @p to the non-blocking @fd, letting the client drain. */
static void feed(struct run *r, int fd, const uint8_t *p, size_t n)
{
	int spins = 0;

	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN)
			return; /* the client closed: the rest is moot */
		remus_loop_run_once(r->loop, 0);
		if (++spins > 100000)
			abort(); /* the client stopped reading: a hang */
	}
}

/* Reads and discards what the client wrote (fds passed are closed by the
 * kernel when read without a control buffer). */
static void drain(int fd)
{
	char buf[4096];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct remus_qmp_opts opts = { .max_line = 4096, .connect_timeout_ms = 60000 };
	struct run r = { .pipefd = -1 };
	int sv[2] = { -1, -1 }, p[2] = { -1, -1 }, i, iter;
	size_t off;

	if (size < 1)
		return 0;
	if (!devnull) {
		/* Every input closes the connection, which logs a warning. */
		devnull = fopen("/dev/null", "w");
		remus_log_set_stream(devnull);
		remus_log_set_level(REMUS_LOG_ERROR);
	}
	current = &r;
	r.flags = data[0];
	data++;
	size--;
	if (remus_loop_new(&r.loop) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(p, O_CLOEXEC) < 0)
		abort();
	if (remus_qmp_open_fd(r.loop, sv[0], "fuzz.qmp", &opts, NULL, NULL, &r.q) < 0)
		abort();
	remus_qmp_subscribe(r.q, NULL, on_event, &r);
	remus_qmp_subscribe(r.q, "STOP", on_event, &r);
	submit(&r, "query-status", -1);
	submit(&r, "getfd", p[1]);
	submit(&r, "stop", -1);
	close(p[1]);

	/* One line at a time, the client running in between. */
	for (off = 0; off < size;) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) + 1 : size - off;

		feed(&r, sv[1], data + off, n);
		off += n;
		for (i = 0; i < 3; i++)
			remus_loop_run_once(r.loop, 0);
		drain(sv[1]);
	}
	close(sv[1]);
	for (iter = 0; r.q && remus_qmp_get_state(r.q) != REMUS_QMP_CLOSED; iter++) {
		if (iter > 1000)
			abort(); /* EOF did not close the client: a hang */
		remus_loop_run_once(r.loop, 0);
	}
	if (getenv("REMUS_FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_qmp: %d commands, %d replies, %d events, closed: %s\n",
			r.ncmds, r.replies, r.events,
			r.q ? remus_qmp_last_error(r.q) : "(freed by a callback)");
	remus_qmp_free(r.q);
	for (i = 0; i < r.ncmds; i++)
		if (r.calls[i] != 1)
			abort(); /* not exactly once */
	remus_loop_free(r.loop);
	close(p[0]);
	return 0;
}
