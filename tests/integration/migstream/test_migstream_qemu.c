// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * controller/migstream against a real QEMU 10 stream.
 *
 * The group setup starts a small stopped VM (TCG, pc, 64 MiB, -S, no
 * devices), migrates it into a file with QMP `migrate uri=file:...`, then
 * twice more the way the engine runs epochs (socketpair via getfd,
 * return-path + switchover-ack, parsed live, MIG_RP_MSG_SHUT), and stops
 * QEMU (`quit`, then SIGKILL by PID if it lingers; SIGKILL by PID on every
 * error path).  The tests parse each capture in chunks of 1, 7, 4096,
 * 65536 bytes and whole, and require the same tokens each time, a device
 * part ending in EOF and a vmdescription ending the stream; the rewrite
 * plus failover tail must parse again; and a standby QEMU must load epoch
 * 0, epoch 1 and the tail as one completed incoming migration.
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
#include "controller/dedup.h"
#include "migstream/migstream.h"

struct capture {
	char path[128];  /* file: capture only */
	uint8_t *data;   /* owned */
	size_t len;
	/* fd: captures only */
	bool tail_hint_before_eof; /* dev_tail_seen() fired before the EOF */
	bool saw_open_rp, saw_switchover;
};

struct group {
	bool skipped;          /* no QEMU here */
	char dir[64];
	struct capture file;   /* migrate uri=file:..., no capabilities */
	struct capture epoch[2]; /* fd: + return-path + switchover-ack, twice */
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

/* One QEMU process and its QMP connection. */
struct qemu {
	pid_t pid;      /* -1: none */
	int fd;         /* QMP socket, commands are written here */
	FILE *f;        /* owned: QMP replies, read from a dup of @fd */
	char sock[160];
	char line[16384]; /* the last reply */
};

static const char *qemu_bin(void)
{
	return getenv("REMUS_QEMU") ? getenv("REMUS_QEMU") : "qemu-system-x86_64";
}

/* Starts QEMU (stopped, 64 MiB, no devices; "-incoming defer" if
 * @incoming) with QMP on @dir/@name.qmp and negotiates QMP.  On failure
 * the process is already gone. */
static int qemu_start(struct qemu *q, const char *dir, const char *name, bool incoming)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char qmparg[200];
	double deadline = now() + 20;
	int rc, st;

	q->pid = -1;
	q->fd = -1;
	q->f = NULL;
	snprintf(q->sock, sizeof(q->sock), "%s/%s.qmp", dir, name);
	snprintf(qmparg, sizeof(qmparg), "unix:%s,server=on,wait=off", q->sock);
	q->pid = fork();
	if (q->pid < 0)
		return -errno;
	if (q->pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		execlp(qemu_bin(), qemu_bin(), "-accel", "tcg", "-machine", "pc", "-m", "64",
		       "-display", "none", "-nodefaults", "-S", "-qmp", qmparg,
		       incoming ? "-incoming" : (char *)NULL, "defer", (char *)NULL);
		_exit(127);
	}
	strcpy(sa.sun_path, q->sock);
	for (;;) {
		if (waitpid(q->pid, &st, WNOHANG) == q->pid) {
			q->pid = -1;
			fprintf(stderr, "%s exited before QMP was up\n", qemu_bin());
			rc = -ECHILD;
			goto out;
		}
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0) {
			rc = -errno;
			goto out;
		}
		if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(q->fd);
		q->fd = -1;
		if (now() > deadline) {
			rc = -ETIMEDOUT;
			goto out;
		}
		usleep(50000);
	}
	q->f = fdopen(dup(q->fd), "r");
	if (!q->f) {
		rc = -errno;
		goto out;
	}
	if (!fgets(q->line, sizeof(q->line), q->f) || !strstr(q->line, "QMP")) {
		rc = -EPROTO;
		goto out;
	}
	rc = qmp_cmd(q->f, q->fd, "{\"execute\": \"qmp_capabilities\"}", q->line, sizeof(q->line));
out:
	if (rc < 0) {
		if (q->pid > 0) {
			kill(q->pid, SIGKILL);
			waitpid(q->pid, &st, 0);
			q->pid = -1;
		}
		if (q->f)
			fclose(q->f);
		if (q->fd >= 0)
			close(q->fd);
		q->f = NULL;
		q->fd = -1;
	}
	return rc;
}

static int qemu_cmd(struct qemu *q, const char *cmd)
{
	int rc = qmp_cmd(q->f, q->fd, cmd, q->line, sizeof(q->line));

	if (rc < 0)
		fprintf(stderr, "QMP %s: %s\n", cmd, rc == -EIO ? q->line : strerror(-rc));
	return rc;
}

/* Polls query-migrate until "completed"; -EIO on "failed" or timeout. */
static int qemu_wait_completed(struct qemu *q, double secs)
{
	double deadline = now() + secs;
	int rc;

	for (;;) {
		if ((rc = qemu_cmd(q, "{\"execute\": \"query-migrate\"}")) < 0)
			return rc;
		if (strstr(q->line, "\"completed\""))
			return 0;
		if (strstr(q->line, "\"failed\"") || now() > deadline) {
			fprintf(stderr, "migration did not complete: %s", q->line);
			return -EIO;
		}
		usleep(20000);
	}
}

/* quit, then SIGKILL by PID if it lingers; always reaps.  Idempotent. */
static void qemu_stop(struct qemu *q)
{
	double end;
	int st;

	if (q->pid > 0) {
		end = now() + (q->f && qemu_cmd(q, "{\"execute\": \"quit\"}") == 0 ? 10 : 0);
		while (now() < end && waitpid(q->pid, &st, WNOHANG) != q->pid)
			usleep(20000);
		if (now() >= end) {
			kill(q->pid, SIGKILL);
			waitpid(q->pid, &st, 0);
		}
		q->pid = -1;
	}
	if (q->f)
		fclose(q->f);
	if (q->fd >= 0)
		close(q->fd);
	q->f = NULL;
	q->fd = -1;
	if (q->sock[0])
		unlink(q->sock);
}

/* Passes one end of a new socketpair to @q as "migfd"; *@mine is the
 * other end. */
static int qemu_pass_channel(struct qemu *q, int *mine)
{
	int sv[2], rc;

	*mine = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	rc = qmp_getfd(q->f, q->fd, sv[0], q->line, sizeof(q->line));
	close(sv[0]);
	if (rc < 0) {
		close(sv[1]);
		return rc;
	}
	*mine = sv[1];
	return 0;
}

static int read_file(const char *path, struct capture *c)
{
	FILE *in = fopen(path, "rb");
	struct stat st;
	int rc;

	if (!in)
		return -errno;
	if (fstat(fileno(in), &st) != 0) {
		rc = -errno;
		goto out;
	}
	c->len = (size_t)st.st_size;
	c->data = malloc(c->len ? c->len : 1);
	rc = c->data && fread(c->data, 1, c->len, in) == c->len ? 0 : -EIO;
out:
	fclose(in);
	return rc;
}

/*
 * One source QEMU: a plain migration into a file, then two migrations the
 * way the engine runs epochs (fd: socketpair, return-path,
 * switchover-ack, read live, RP SHUT).
 */
static int capture_all(struct group *g)
{
	struct qemu src = { .pid = -1, .fd = -1 };
	char cmd[300];
	int mfd = -1, rc, i;

	strcpy(g->dir, "/tmp/remus-migstream-XXXXXX");
	if (!mkdtemp(g->dir))
		return -errno;
	snprintf(g->file.path, sizeof(g->file.path), "%s/stream", g->dir);
	if ((rc = qemu_start(&src, g->dir, "src", false)) < 0)
		goto out;
	snprintf(cmd, sizeof(cmd),
		 "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:%s\"}}", g->file.path);
	if ((rc = qemu_cmd(&src, cmd)) < 0 || (rc = qemu_wait_completed(&src, 60)) < 0 ||
	    (rc = read_file(g->file.path, &g->file)) < 0)
		goto out;
	if ((rc = qemu_cmd(&src, "{\"execute\": \"migrate-set-capabilities\", \"arguments\": "
				 "{\"capabilities\": [{\"capability\": \"return-path\", \"state\": true}, "
				 "{\"capability\": \"switchover-ack\", \"state\": true}]}}")) < 0)
		goto out;
	for (i = 0; i < 2; i++) {
		/* A completed migration leaves the VM in postmigrate, which
		 * refuses another migrate; as between engine epochs, cont (the
		 * firmware runs a little and dirties pages) and stop. */
		if ((rc = qemu_cmd(&src, "{\"execute\": \"cont\"}")) < 0)
			goto out;
		usleep(100000);
		if ((rc = qemu_cmd(&src, "{\"execute\": \"stop\"}")) < 0)
			goto out;
		if ((rc = qemu_pass_channel(&src, &mfd)) < 0 ||
		    (rc = qemu_cmd(&src, "{\"execute\": \"migrate\", \"arguments\": "
					 "{\"uri\": \"fd:migfd\"}}")) < 0 ||
		    (rc = pump_migration(&g->epoch[i], mfd)) < 0 ||
		    (rc = qemu_wait_completed(&src, 60)) < 0)
			goto out;
		close(mfd);
		mfd = -1;
	}
	/* guest memory as of epoch 1, to compare the standby's with */
	snprintf(cmd, sizeof(cmd),
		 "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 0, \"size\": %d, "
		 "\"filename\": \"%s/src.mem\"}}",
		 64 << 20, g->dir);
	if ((rc = qemu_cmd(&src, cmd)) < 0)
		goto out;
	rc = 0;
out:
	if (mfd >= 0)
		close(mfd);
	qemu_stop(&src);
	return rc;
}

static int group_setup(void **state)
{
	struct group *g = calloc(1, sizeof(*g));
	char probe[512];
	int rc;

	if (!g)
		return -1;
	*state = g;
	snprintf(probe, sizeof(probe), "command -v %s >/dev/null 2>&1", qemu_bin());
	if (system(probe) != 0) {
		g->skipped = true;
		return 0;
	}
	if ((rc = capture_all(g)) < 0) {
		fprintf(stderr, "capturing migration streams from %s failed: %s\n", qemu_bin(),
			strerror(-rc));
		return -1;
	}
	fprintf(stderr, "captured %zu bytes (file:), %zu + %zu bytes (fd:, engine capabilities)\n",
		g->file.len, g->epoch[0].len, g->epoch[1].len);
	return 0;
}

static int group_teardown(void **state)
{
	struct group *g = *state;

	char mem[128];

	if (g->file.path[0])
		unlink(g->file.path);
	snprintf(mem, sizeof(mem), "%s/src.mem", g->dir);
	unlink(mem);
	if (g->dir[0])
		rmdir(g->dir);
	free(g->file.data);
	free(g->epoch[0].data);
	free(g->epoch[1].data);
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
	struct remus_dedup *dedup;
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
		if (t->dedup)
			assert_int_equal(remus_dedup_set_layout(t->dedup, k->blocks, k->nblocks,
								 k->page_size),
					 0);
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
	struct group *g = *state;

	if (g->skipped)
		skip();
	check_every_chunk_size(&g->file);
}

static void test_file_stream_rewrite_and_tail(void **state)
{
	struct group *g = *state;

	if (g->skipped)
		skip();
	check_rewrite_and_tail(&g->file);
}

/* What the engine sees: commands for the return path and the switchover,
 * and a device part whose end shows before the channel closes (the
 * source only closes after MIG_RP_MSG_SHUT, which waits for that hint). */
static void test_engine_stream(void **state)
{
	struct group *g = *state;
	int i;

	if (g->skipped)
		skip();
	for (i = 0; i < 2; i++) {
		assert_true(g->epoch[i].saw_open_rp);
		assert_true(g->epoch[i].saw_switchover);
		assert_true(g->epoch[i].tail_hint_before_eof);
		check_every_chunk_size(&g->epoch[i]);
		check_rewrite_and_tail(&g->epoch[i]);
	}
}

/* Appends the standby's bytes for one epoch (@dd: dedup filter or NULL);
 * returns its RAM section id (epoch 0) and keeps its device part in @dev. */
static void rewrite_epoch(const struct capture *c, bool first, uint32_t *sid,
			  struct remus_dedup *dd, uint64_t *dropped, struct remus_buf *standby,
			  struct remus_buf *dev)
{
	struct remus_migstream_rewriter rw;
	struct toks t = { 0 };

	remus_migstream_rewriter_init(&rw, first, *sid, dd ? remus_dedup_filter : NULL, dd);
	t.rw = &rw;
	t.dedup = dd;
	parse_chunked(c->data, c->len, 65536, &t);
	assert_true(rw.device_done);
	assert_int_equal(remus_buf_append(standby, remus_buf_data(&rw.out), remus_buf_len(&rw.out)),
			 0);
	remus_buf_reset(dev);
	assert_int_equal(remus_buf_append(dev, remus_buf_data(&rw.dev), remus_buf_len(&rw.dev)), 0);
	*sid = rw.standby_sid;
	*dropped = rw.pages_dropped + rw.zero_dropped;
	remus_migstream_rewriter_release(&rw);
	toks_free(&t);
}

static bool same_file(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool same = fa && fb;
	int ca, cb;

	while (same) {
		ca = getc(fa);
		cb = getc(fb);
		if (ca != cb)
			same = false;
		if (ca == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Writes @b to @fd, reading and discarding what comes back (the standby's
 * return path) so neither side blocks. */
static int feed_standby(int fd, const struct remus_buf *b)
{
	const uint8_t *d = remus_buf_data(b);
	size_t n = remus_buf_len(b), off = 0;
	double deadline = now() + 60;

	while (off < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
		uint8_t junk[4096];
		ssize_t r;

		if (now() > deadline)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		if (pfd.revents & POLLIN)
			(void)!read(fd, junk, sizeof(junk));
		if (pfd.revents & POLLOUT) {
			r = write(fd, d + off, n - off);
			if (r < 0 && errno != EINTR && errno != EAGAIN)
				return -errno;
			if (r > 0)
				off += (size_t)r;
		}
		if (pfd.revents & (POLLERR | POLLHUP))
			return -EPIPE;
	}
	return 0;
}

/*
 * The acceptance test of the rewriter, the tail and dedup: a real standby
 * QEMU (-incoming defer) loads epoch 0 (first), epoch 1 (later) and the
 * failover tail built from epoch 1's device part, completes the incoming
 * migration, and then holds exactly the source's guest memory of epoch 1.
 * With dedup, epoch 1 carries only what changed since epoch 0.
 */
static void check_standby(struct group *g, bool with_dedup)
{
	struct qemu sby = { .pid = -1, .fd = -1 };
	struct remus_buf standby, dev;
	struct remus_dedup *dd = NULL;
	char cmd[300], src_mem[128], sby_mem[128];
	uint64_t dropped0 = 0, dropped1 = 0;
	uint32_t sid = 0;
	int mfd = -1, rc;

	remus_buf_init(&standby, 0);
	remus_buf_init(&dev, 0);
	if (with_dedup) {
		assert_int_equal(remus_dedup_new(&dd), 0);
		assert_int_equal(remus_dedup_begin_epoch(dd, 0), 0);
	}
	rewrite_epoch(&g->epoch[0], true, &sid, dd, &dropped0, &standby, &dev);
	if (dd) {
		remus_dedup_commit(dd, 0);
		assert_int_equal(remus_dedup_begin_epoch(dd, 1), 0);
	}
	rewrite_epoch(&g->epoch[1], false, &sid, dd, &dropped1, &standby, &dev);
	assert_int_equal(dropped0, 0);
	if (dd)
		assert_true(dropped1 > 16000); /* nearly every page is unchanged */
	assert_int_equal(remus_migstream_build_tail(&standby, sid, remus_buf_data(&dev),
						    remus_buf_len(&dev)),
			 0);
	snprintf(src_mem, sizeof(src_mem), "%s/src.mem", g->dir);
	snprintf(sby_mem, sizeof(sby_mem), "%s/sby.mem", g->dir);
	snprintf(cmd, sizeof(cmd),
		 "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 0, \"size\": %d, "
		 "\"filename\": \"%s\"}}",
		 64 << 20, sby_mem);
	rc = qemu_start(&sby, g->dir, "sby", true);
	if (rc == 0)
		rc = qemu_pass_channel(&sby, &mfd);
	if (rc == 0)
		rc = qemu_cmd(&sby, "{\"execute\": \"migrate-incoming\", \"arguments\": "
				    "{\"uri\": \"fd:migfd\"}}");
	if (rc == 0)
		rc = feed_standby(mfd, &standby);
	if (rc == 0)
		rc = qemu_wait_completed(&sby, 60);
	if (rc == 0)
		rc = qemu_cmd(&sby, "{\"execute\": \"query-status\"}");
	if (rc == 0)
		fprintf(stderr, "standby loaded %zu bytes (%s dedup, %llu records dropped): %s",
			remus_buf_len(&standby), dd ? "with" : "without",
			(unsigned long long)dropped1, sby.line);
	if (rc == 0)
		rc = qemu_cmd(&sby, cmd);
	if (mfd >= 0)
		close(mfd);
	qemu_stop(&sby);
	remus_buf_release(&standby);
	remus_buf_release(&dev);
	remus_dedup_free(dd);
	assert_int_equal(rc, 0);
	assert_true(same_file(src_mem, sby_mem));
	unlink(sby_mem);
}

static void test_standby_loads_rewritten_epochs(void **state)
{
	struct group *g = *state;

	if (g->skipped)
		skip();
	check_standby(g, false);
}

static void test_standby_with_dedup(void **state)
{
	struct group *g = *state;

	if (g->skipped)
		skip();
	check_standby(g, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_stream_every_chunk_size),
		cmocka_unit_test(test_file_stream_rewrite_and_tail),
		cmocka_unit_test(test_engine_stream),
		cmocka_unit_test(test_standby_loads_rewritten_epochs),
		cmocka_unit_test(test_standby_with_dedup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
