// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * controller/migstream against a real QEMU 10 stream.
 *
 * The group setup starts a small stopped VM (TCG, pc, 64 MiB, -S, no
 * devices), migrates it into a file with QMP `migrate uri=file:...` and
 * stops QEMU (`quit`, then SIGKILL by PID if it lingers; SIGKILL by PID on
 * every error path).  The tests parse that file in chunks of 1, 7, 4096,
 * 65536 bytes and whole, and require the same tokens each time, a device
 * part ending in EOF and a vmdescription ending at the end of the file;
 * the first-epoch rewrite plus failover tail must parse again.
 *
 * Needs qemu-system-x86_64 (or $REMUS_QEMU); skipped without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "controller/migstream.h"

struct capture {
	char dir[64];
	char path[128];
	uint8_t *data; /* owned */
	size_t len;
	bool skipped;
	/* engine mode only */
	bool engine_caps;
	bool tail_hint_before_eof; /* dev_tail_seen() fired before the EOF */
	bool saw_open_rp, saw_switchover;
};

struct group {
	struct capture file;   /* migrate uri=file:..., no capabilities */
	struct capture engine; /* fd: + return-path + switchover-ack */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads QMP lines until one holds "return" or "error"; copies it to @line. */
static int qmp_reply(FILE *f, char *line, size_t size)
{
	while (fgets(line, (int)size, f)) {
		if (strstr(line, "\"return\"") || strstr(line, "\"error\""))
			return strstr(line, "\"error\"") ? -EIO : 0;
	}
	return -EPIPE;
}

/* Commands go straight to the socket (@wfd), replies come through @f: one
 * FILE for both directions would need a seek between them. */
static int qmp_cmd(FILE *f, int wfd, const char *cmd, char *line, size_t size)
{
	if (dprintf(wfd, "%s\n", cmd) < 0)
		return -EPIPE;
	return qmp_reply(f, line, size);
}

/* getfd: the command with @fd attached (SCM_RIGHTS). */
static int qmp_getfd(FILE *f, int wfd, int fd, char *line, size_t size)
{
	static const char cmd[] = "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"migfd\"}}\n";
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = (void *)cmd, .iov_len = sizeof(cmd) - 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(wfd, &m, 0) != (ssize_t)iov.iov_len)
		return -errno;
	return qmp_reply(f, line, size);
}

/*
 * Reads the migration from @mfd as the engine does: the parser runs on
 * the bytes as they come; once the device part ends like EOF +
 * vmdescription, the return path gets MIG_RP_MSG_SHUT (without it the
 * source never closes the channel), then the channel is read to EOF.
 */
static int pump_migration(struct capture *c, int mfd)
{
	static const uint8_t rp_shut[] = { 0, 1, 0, 4, 0, 0, 0, 0 };
	struct remus_migstream *p = NULL;
	struct remus_migstream_token t;
	struct remus_buf all;
	double deadline = now() + 60;
	bool shut = false;
	int rc;

	remus_buf_init(&all, 0);
	if ((rc = remus_migstream_new(NULL, &p)) < 0)
		goto out;
	for (;;) {
		struct pollfd pfd = { .fd = mfd, .events = POLLIN };
		uint8_t buf[65536];
		ssize_t r;

		if (now() > deadline) {
			rc = -ETIMEDOUT;
			goto out;
		}
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		r = read(mfd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		if ((rc = remus_buf_append(&all, buf, (size_t)r)) < 0 ||
		    (rc = remus_migstream_feed(p, buf, (size_t)r)) < 0)
			goto out;
		while ((rc = remus_migstream_next(p, &t)) == 1) {
			if (t.kind == REMUS_MS_COMMAND && t.cmd == REMUS_MIG_CMD_OPEN_RETURN_PATH)
				c->saw_open_rp = true;
			if (t.kind == REMUS_MS_COMMAND && t.cmd == REMUS_MIG_CMD_SWITCHOVER_START)
				c->saw_switchover = true;
		}
		if (rc < 0) {
			fprintf(stderr, "live parse: %s\n", remus_migstream_error(p));
			goto out;
		}
		if (!shut && remus_migstream_dev_tail_seen(p)) {
			c->tail_hint_before_eof = true;
			if (write(mfd, rp_shut, sizeof(rp_shut)) != (ssize_t)sizeof(rp_shut)) {
				rc = -EIO;
				goto out;
			}
			shut = true;
		}
	}
	remus_migstream_finish(p);
	while ((rc = remus_migstream_next(p, &t)) == 1)
		;
	if (rc < 0) {
		fprintf(stderr, "live parse at EOF: %s\n", remus_migstream_error(p));
		goto out;
	}
	c->len = remus_buf_len(&all);
	c->data = malloc(c->len ? c->len : 1);
	if (!c->data) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(c->data, remus_buf_data(&all), c->len);
	rc = 0;
out:
	remus_migstream_free(p);
	remus_buf_release(&all);
	return rc;
}

static pid_t spawn_qemu(const char *qemu, const char *sock)
{
	char qmparg[160];
	pid_t pid;

	snprintf(qmparg, sizeof(qmparg), "unix:%s,server=on,wait=off", sock);
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		execlp(qemu, qemu, "-accel", "tcg", "-machine", "pc", "-m", "64", "-display",
		       "none", "-nodefaults", "-S", "-qmp", qmparg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Waits up to @secs for @pid; SIGKILLs it if still there.  Always reaps. */
static void stop_qemu(pid_t pid, double secs)
{
	double end = now() + secs;
	int st;

	if (pid <= 0)
		return;
	while (now() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

static int capture_stream(struct capture *c)
{
	const char *qemu = getenv("REMUS_QEMU") ? getenv("REMUS_QEMU") : "qemu-system-x86_64";
	char sock[128], line[8192], cmd[256];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	FILE *f = NULL, *in = NULL;
	pid_t pid = -1;
	int fd = -1, rc, sv[2] = { -1, -1 };
	double deadline;
	struct stat st;
	bool quit_sent = false;

	strcpy(c->dir, "/tmp/remus-migstream-XXXXXX");
	if (!mkdtemp(c->dir))
		return -errno;
	snprintf(sock, sizeof(sock), "%s/qmp.sock", c->dir);
	snprintf(c->path, sizeof(c->path), "%s/stream", c->dir);
	pid = spawn_qemu(qemu, sock);
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	strcpy(sa.sun_path, sock);
	deadline = now() + 20;
	for (;;) {
		int st2;

		if (waitpid(pid, &st2, WNOHANG) == pid) {
			pid = -1;
			fprintf(stderr, "%s exited before QMP was up\n", qemu);
			rc = -ECHILD;
			goto out;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(fd);
		fd = -1;
		if (now() > deadline) {
			rc = -ETIMEDOUT;
			goto out;
		}
		usleep(50000);
	}
	f = fdopen(dup(fd), "r");
	if (!f) {
		rc = -errno;
		goto out;
	}
	if (!fgets(line, sizeof(line), f) || !strstr(line, "QMP")) { /* greeting */
		rc = -EPROTO;
		goto out;
	}
	if ((rc = qmp_cmd(f, fd, "{\"execute\": \"qmp_capabilities\"}", line, sizeof(line))) < 0)
		goto out;
	if (c->engine_caps) {
		/* as the engine: a socketpair passed with getfd, return path and
		 * switchover-ack (never acknowledged; the VM is stopped) */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			rc = -errno;
			goto out;
		}
		if ((rc = qmp_getfd(f, fd, sv[0], line, sizeof(line))) < 0)
			goto out;
		close(sv[0]);
		sv[0] = -1;
		if ((rc = qmp_cmd(f, fd,
				  "{\"execute\": \"migrate-set-capabilities\", \"arguments\": "
				  "{\"capabilities\": [{\"capability\": \"return-path\", \"state\": true}, "
				  "{\"capability\": \"switchover-ack\", \"state\": true}]}}",
				  line, sizeof(line))) < 0)
			goto out;
		snprintf(cmd, sizeof(cmd),
			 "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"fd:migfd\"}}");
	} else {
		snprintf(cmd, sizeof(cmd),
			 "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:%s\"}}",
			 c->path);
	}
	if ((rc = qmp_cmd(f, fd, cmd, line, sizeof(line))) < 0) {
		fprintf(stderr, "migrate failed: %s", line);
		goto out;
	}
	if (c->engine_caps && (rc = pump_migration(c, sv[1])) < 0)
		goto out;
	deadline = now() + 60;
	for (;;) {
		if ((rc = qmp_cmd(f, fd, "{\"execute\": \"query-migrate\"}", line, sizeof(line))) < 0)
			goto out;
		if (strstr(line, "\"completed\""))
			break;
		if (strstr(line, "\"failed\"") || now() > deadline) {
			fprintf(stderr, "migration did not complete: %s", line);
			rc = -EIO;
			goto out;
		}
		usleep(50000);
	}
	if (qmp_cmd(f, fd, "{\"execute\": \"quit\"}", line, sizeof(line)) == 0)
		quit_sent = true;
	if (c->engine_caps) {
		rc = 0;
		goto out;
	}

	in = fopen(c->path, "rb");
	if (!in || fstat(fileno(in), &st) != 0) {
		rc = -errno;
		goto out;
	}
	c->len = (size_t)st.st_size;
	c->data = malloc(c->len ? c->len : 1);
	if (!c->data || fread(c->data, 1, c->len, in) != c->len) {
		rc = -EIO;
		goto out;
	}
	rc = 0;
out:
	if (in)
		fclose(in);
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	stop_qemu(pid, quit_sent ? 10 : 0);
	unlink(sock);
	return rc;
}

static int group_setup(void **state)
{
	struct group *g = calloc(1, sizeof(*g));
	const char *qemu = getenv("REMUS_QEMU") ? getenv("REMUS_QEMU") : "qemu-system-x86_64";
	char probe[512];
	int rc;

	if (!g)
		return -1;
	*state = g;
	snprintf(probe, sizeof(probe), "command -v %s >/dev/null 2>&1", qemu);
	if (system(probe) != 0) {
		g->file.skipped = g->engine.skipped = true;
		return 0;
	}
	g->engine.engine_caps = true;
	if ((rc = capture_stream(&g->file)) < 0 || (rc = capture_stream(&g->engine)) < 0) {
		fprintf(stderr, "capturing a migration stream from %s failed: %s\n", qemu,
			strerror(-rc));
		return -1;
	}
	fprintf(stderr, "captured %zu bytes (file:) and %zu bytes (fd:, engine capabilities)\n",
		g->file.len, g->engine.len);
	return 0;
}

static void capture_release(struct capture *c)
{
	if (c->path[0])
		unlink(c->path);
	if (c->dir[0])
		rmdir(c->dir);
	free(c->data);
}

static int group_teardown(void **state)
{
	struct group *g = *state;

	capture_release(&g->file);
	capture_release(&g->engine);
	free(g);
	return 0;
}

struct toks {
	uint32_t *kind;
	uint64_t *end;
	size_t n, cap;
	size_t pages, zero, dev_len, vmdesc_len;
	bool have_pc_ram;
	char vmdesc_head[16];
	struct remus_migstream_rewriter *rw;
};

static void add_tok(struct toks *t, const struct remus_migstream_token *k)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 1024;
		t->kind = realloc(t->kind, t->cap * sizeof(*t->kind));
		t->end = realloc(t->end, t->cap * sizeof(*t->end));
		assert_non_null(t->kind);
		assert_non_null(t->end);
	}
	if (t->n)
		assert_int_equal(t->end[t->n - 1], k->start);
	else
		assert_int_equal(k->start, 0);
	t->kind[t->n] = k->kind;
	t->end[t->n] = k->end;
	t->n++;
	switch (k->kind) {
	case REMUS_MS_RAM_PAGE:
		t->pages++;
		break;
	case REMUS_MS_RAM_ZERO:
		t->zero++;
		break;
	case REMUS_MS_RAM_MEM_SIZE:
		for (uint32_t i = 0; i < k->nblocks; i++)
			if (!strcmp(k->blocks[i].name, "pc.ram") && k->blocks[i].length == 64 << 20)
				t->have_pc_ram = true;
		break;
	case REMUS_MS_DEVICE:
		t->dev_len = k->data_len;
		break;
	case REMUS_MS_VMDESC:
		t->vmdesc_len = k->data_len;
		memcpy(t->vmdesc_head, k->data, k->data_len < 15 ? k->data_len : 15);
		break;
	default:
		break;
	}
	if (t->rw)
		assert_int_equal(remus_migstream_rewrite(t->rw, k), 0);
}

static void parse_chunked(const uint8_t *d, size_t n, size_t chunk, struct toks *t)
{
	struct remus_migstream *p = NULL;
	struct remus_migstream_token k;
	size_t pos = 0;
	int rc;

	assert_int_equal(remus_migstream_new(NULL, &p), 0);
	while (pos < n) {
		size_t m = chunk && chunk < n - pos ? chunk : n - pos;

		assert_int_equal(remus_migstream_feed(p, d + pos, m), 0);
		pos += m;
		while ((rc = remus_migstream_next(p, &k)) == 1)
			add_tok(t, &k);
		if (rc < 0)
			fail_msg("chunk %zu: %s", chunk, remus_migstream_error(p));
	}
	remus_migstream_finish(p);
	while ((rc = remus_migstream_next(p, &k)) == 1)
		add_tok(t, &k);
	if (rc < 0)
		fail_msg("chunk %zu at close: %s", chunk, remus_migstream_error(p));
	assert_true(remus_migstream_complete(p));
	remus_migstream_free(p);
}

static void toks_free(struct toks *t)
{
	free(t->kind);
	free(t->end);
}

static void check_every_chunk_size(struct capture *c)
{
	static const size_t chunks[] = { 0, 65536, 4096, 7, 1 };
	struct toks ref = { 0 };
	size_t i;

	if (c->skipped)
		skip();
	parse_chunked(c->data, c->len, 0, &ref);
	assert_int_equal(ref.kind[0], REMUS_MS_HEADER);
	assert_int_equal(ref.kind[1], REMUS_MS_CONFIG);
	assert_true(ref.have_pc_ram);
	assert_true(ref.pages > 0);
	assert_true(ref.zero > 0);
	assert_int_equal(ref.kind[ref.n - 2], REMUS_MS_DEVICE);
	assert_int_equal(ref.kind[ref.n - 1], REMUS_MS_VMDESC);
	assert_int_equal(ref.end[ref.n - 1], c->len);
	assert_true(ref.dev_len > 100);
	assert_memory_equal(ref.vmdesc_head, "{", 1);
	/* the device part ends with EOF, right before the vmdescription */
	assert_int_equal(c->data[ref.end[ref.n - 2] - 1], 0x00);
	assert_int_equal(c->data[ref.end[ref.n - 2]], 0x06);
	fprintf(stderr, "%zu tokens: %zu pages, %zu zero pages, device part %zu bytes, "
			"vmdescription %zu bytes\n",
		ref.n, ref.pages, ref.zero, ref.dev_len, ref.vmdesc_len);
	for (i = 1; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct toks t = { 0 };

		parse_chunked(c->data, c->len, chunks[i], &t);
		assert_int_equal(t.n, ref.n);
		assert_memory_equal(t.kind, ref.kind, ref.n * sizeof(*ref.kind));
		assert_memory_equal(t.end, ref.end, ref.n * sizeof(*ref.end));
		toks_free(&t);
	}
	toks_free(&ref);
}

/* What the standby would load at failover after epoch 0: the rewritten
 * epoch plus the tail is again a complete stream with the same pages. */
static void check_rewrite_and_tail(struct capture *c)
{
	struct remus_migstream_rewriter rw;
	struct toks t = { 0 }, s = { 0 };
	struct remus_buf standby;

	if (c->skipped)
		skip();
	remus_migstream_rewriter_init(&rw, true, 0, NULL, NULL);
	t.rw = &rw;
	parse_chunked(c->data, c->len, 4096, &t);
	assert_int_equal(remus_buf_len(&rw.dev), t.dev_len);
	remus_buf_init(&standby, 0);
	assert_int_equal(remus_buf_append(&standby, remus_buf_data(&rw.out), remus_buf_len(&rw.out)),
			 0);
	assert_int_equal(remus_migstream_build_tail(&standby, rw.standby_sid,
						    remus_buf_data(&rw.dev), remus_buf_len(&rw.dev)),
			 0);
	parse_chunked(remus_buf_data(&standby), remus_buf_len(&standby), 0, &s);
	assert_int_equal(s.pages, t.pages);
	assert_int_equal(s.zero, t.zero);
	assert_int_equal(s.dev_len, t.dev_len);
	assert_int_equal(s.vmdesc_len, 2);
	remus_buf_release(&standby);
	remus_migstream_rewriter_release(&rw);
	toks_free(&t);
	toks_free(&s);
}

static void test_file_stream_every_chunk_size(void **state)
{
	check_every_chunk_size(&((struct group *)*state)->file);
}

static void test_file_stream_rewrite_and_tail(void **state)
{
	check_rewrite_and_tail(&((struct group *)*state)->file);
}

/* What the engine sees: commands for the return path and the switchover,
 * and a device part whose end shows before the channel closes (the
 * source only closes after MIG_RP_MSG_SHUT, which waits for that hint). */
static void test_engine_stream(void **state)
{
	struct capture *c = &((struct group *)*state)->engine;

	if (c->skipped)
		skip();
	assert_true(c->saw_open_rp);
	assert_true(c->saw_switchover);
	assert_true(c->tail_hint_before_eof);
	check_every_chunk_size(c);
	check_rewrite_and_tail(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_stream_every_chunk_size),
		cmocka_unit_test(test_file_stream_rewrite_and_tail),
		cmocka_unit_test(test_engine_stream),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
