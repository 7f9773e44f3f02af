// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * (d) Real crashes: a forked child commits epochs of many MB of writes and
 * zeros to a journal and image on the real disk, and is SIGKILLed, at
 * random moments (appending, committing, applying, opening) and, every
 * other round, at a known point in the middle of an apply.  The parent then
 * recovers and checks the image byte for byte against a model:
 *
 *  - every epoch the child reported durable is in the image (a durable
 *    epoch is never lost, even when the kill hit its apply), and
 *  - the image is exactly "after the last reported epoch" or exactly
 *    "after the next one" (which may have become durable just before the
 *    kill, unreported); never anything in between.
 *
 * The epochs are generated from (seed, epoch number), so parent and child
 * agree on their ops without sharing memory.  The next round's child
 * continues from the recovered image, so recovery output is itself the
 * input of later rounds.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/wire.h"
#include "diskrepl/journal.h"
#include "testutil.h"

#define IMG_SIZE (32u << 20)
#define EPOCH_BYTES (12u << 20) /* of ops per epoch */
#define ROUNDS 16
#define APPLY_STEP (1u << 20)

struct gen_op {
	enum remus_repl_disk_op op;
	uint64_t off;
	uint32_t len;
};

static uint64_t base_seed;

/* Calls @fn for every op of @epoch, with its data in @data (WRITE). */
static int for_each_op(uint64_t epoch, uint8_t *data,
		       int (*fn)(void *opaque, const struct gen_op *o, const uint8_t *data),
		       void *opaque)
{
	uint64_t s = base_seed ^ (epoch * 0x9e3779b97f4a7c15ull), total = 0;
	struct gen_op o;
	int rc;

	if (s == 0)
		s = 1;
	while (total < EPOCH_BYTES) {
		if (tu_rand(&s) % 100 < 85) {
			o.op = REMUS_REPL_DISK_WRITE;
			o.len = 4096 + (uint32_t)(tu_rand(&s) % (512 << 10));
		} else {
			o.op = REMUS_REPL_DISK_ZERO;
			o.len = 4096 + (uint32_t)(tu_rand(&s) % (1 << 20));
		}
		o.off = tu_rand(&s) % (IMG_SIZE - o.len + 1);
		if (o.op == REMUS_REPL_DISK_WRITE)
			tu_fill(&s, data, o.len);
		rc = fn(opaque, &o, data);
		if (rc < 0)
			return rc;
		total += o.len;
	}
	return 0;
}

static int model_op(void *opaque, const struct gen_op *o, const uint8_t *data)
{
	uint8_t *model = opaque;

	if (o->op == REMUS_REPL_DISK_WRITE)
		memcpy(model + o->off, data, o->len);
	else
		memset(model + o->off, 0, o->len);
	return 0;
}

struct child_ctx {
	struct remus_journal *j;
	uint64_t epoch;
};

static int journal_op(void *opaque, const struct gen_op *o, const uint8_t *data)
{
	struct child_ctx *c = opaque;

	return remus_journal_append(c->j, c->epoch, 0, o->op, o->off, o->len,
				    o->op == REMUS_REPL_DISK_WRITE ? data : NULL);
}

static void send_msg(int fd, char type, uint64_t epoch)
{
	uint8_t m[9];

	m[0] = (uint8_t)type;
	remus_put_be64(m + 1, epoch);
	if (write(fd, m, sizeof(m)) != sizeof(m))
		_exit(3);
}

/* The child: commits epochs from @epoch on until killed.  Reports 'D'
 * when an epoch is durable, 'A' when it is applied; with @stall_epoch it
 * stops in that epoch's apply after @stall_steps steps, reports 'S' and
 * waits to be killed. */
static void child_main(const char *jpath, const char *ipath, uint64_t epoch, int out,
		       uint64_t stall_epoch, int stall_steps)
{
	struct child_ctx c = { 0 };
	struct remus_image *im = NULL;
	uint8_t *data = malloc(1 << 20);
	uint64_t rec;
	int rc, steps;

	if (!data || remus_image_open(ipath, false, 0, &im) < 0 ||
	    remus_journal_open(jpath, &im, 1, &c.j, &rec) < 0)
		_exit(2);
	for (;; epoch++) {
		c.epoch = epoch;
		if ((rc = for_each_op(epoch, data, journal_op, &c)) < 0 ||
		    (rc = remus_journal_commit_durable(c.j, epoch)) < 0) {
			fprintf(stderr, "child: epoch %" PRIu64 ": %s\n", epoch, strerror(-rc));
			_exit(2);
		}
		send_msg(out, 'D', epoch);
		steps = 0;
		while ((rc = remus_journal_apply_step(c.j, APPLY_STEP)) == 1) {
			if (epoch == stall_epoch && ++steps == stall_steps) {
				send_msg(out, 'S', epoch);
				for (;;)
					pause();
			}
		}
		if (rc < 0) {
			fprintf(stderr, "child: applying %" PRIu64 ": %s\n", epoch, strerror(-rc));
			_exit(2);
		}
		send_msg(out, 'A', epoch);
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Reads one message; false at EOF. */
static bool read_msg(int fd, char *type, uint64_t *epoch)
{
	uint8_t m[9];
	size_t got = 0;
	ssize_t r;

	while (got < sizeof(m)) {
		r = read(fd, m + got, sizeof(m) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	*type = (char)m[0];
	*epoch = remus_get_be64(m + 1);
	return true;
}

static void test_sigkill_all_or_nothing(void **state)
{
	char dir[256], jpath[512], ipath[512];
	uint8_t *model = malloc(IMG_SIZE), *next = malloc(IMG_SIZE), *got = malloc(IMG_SIZE);
	uint8_t *data = malloc(1 << 20);
	uint64_t seed, have = 0; /* the image holds epochs 1..have */
	uint64_t durable, applied, epoch, rec;
	struct remus_image *im;
	struct remus_journal *j;
	double t_epoch = 0, t0;
	int landed_apply = 0, landed_next = 0, status, fds[2];
	char type;
	pid_t pid;

	assert_int_equal(tu_mkdtemp("/tmp", dir), 0);
	snprintf(jpath, sizeof(jpath), "%s/standby.journal", dir);
	snprintf(ipath, sizeof(ipath), "%s/standby.raw", dir);
	seed = tu_seed("test_journal_crash");
	base_seed = seed;
	memset(model, 0, IMG_SIZE);
	assert_int_equal(remus_image_open(ipath, true, IMG_SIZE, &im), 0);
	remus_image_free(im);

	for (int round = 0; round < ROUNDS; round++) {
		bool stall = round % 2 == 1;
		uint64_t stall_epoch = have + 1 + tu_rand(&seed) % 2;
		int stall_steps = 1 + (int)(tu_rand(&seed) % 6);

		assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
		t0 = now_ms();
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child_main(jpath, ipath, have + 1, fds[1],
				   stall ? stall_epoch : UINT64_MAX, stall_steps);
			_exit(4);
		}
		close(fds[1]);
		durable = applied = have;
		if (round == 0) {
			/* Calibrate: two whole epochs, then kill at once. */
			while (applied < have + 2 && read_msg(fds[0], &type, &epoch)) {
				if (type == 'D')
					durable = epoch;
				if (type == 'A')
					applied = epoch;
			}
			t_epoch = (now_ms() - t0) / 2;
		} else if (stall) {
			while (read_msg(fds[0], &type, &epoch) && type != 'S') {
				if (type == 'D')
					durable = epoch;
			}
			assert_int_equal(type, 'S');
		} else {
			usleep((useconds_t)(tu_rand(&seed) % (uint64_t)(2000 * t_epoch + 1)));
		}
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		/* Killed by us, not dead of an error of its own. */
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		while (read_msg(fds[0], &type, &epoch)) {
			if (type == 'D')
				durable = epoch;
			if (type == 'A')
				applied = epoch;
		}
		close(fds[0]);

		/* Every epoch reported durable must be in the image. */
		for (epoch = have + 1; epoch <= durable; epoch++)
			for_each_op(epoch, data, model_op, model);
		assert_int_equal(remus_image_open(ipath, false, 0, &im), 0);
		assert_int_equal(remus_journal_open(jpath, &im, 1, &j, &rec), 0);
		assert_int_equal(remus_image_read(im, 0, IMG_SIZE, got), 0);
		if (memcmp(got, model, IMG_SIZE) == 0) {
			have = durable;
			assert_true(rec == UINT64_MAX || rec == durable);
			if (stall)
				assert_int_equal(rec, durable); /* the stalled apply, replayed */
			if (rec == durable && durable > applied)
				landed_apply++;
		} else {
			/* Then it must be exactly one more epoch, made durable
			 * in the instant before the kill. */
			memcpy(next, model, IMG_SIZE);
			for_each_op(durable + 1, data, model_op, next);
			assert_memory_equal(got, next, IMG_SIZE);
			assert_true(rec == UINT64_MAX || rec == durable + 1);
			assert_false(stall);
			memcpy(model, next, IMG_SIZE);
			have = durable + 1;
			landed_next++;
		}
		remus_journal_free(j);
		remus_image_free(im);
		fprintf(stderr, "round %2d: %-6s killed after %6.1f ms; epochs durable %" PRIu64
			", applied %" PRIu64 ", image holds %" PRIu64 ", recovery replayed %s\n",
			round, stall ? "stall" : "random", now_ms() - t0, durable, applied, have,
			rec == UINT64_MAX ? "nothing" : "an epoch");
	}
	fprintf(stderr, "%d rounds, %.0f ms per %u MiB epoch; recovery replayed an "
		"interrupted apply %d times, found an unreported durable epoch %d times\n",
		ROUNDS, t_epoch, EPOCH_BYTES >> 20, landed_apply, landed_next);
	/* The stalled rounds alone guarantee interrupted applies. */
	assert_true(landed_apply >= ROUNDS / 2);
	tu_rmdir(dir);
	free(model);
	free(next);
	free(got);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigkill_all_or_nothing),
	};

	remus_log_set_level(REMUS_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
