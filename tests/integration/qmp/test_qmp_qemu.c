// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Integration test for qmp/ against a real QEMU running the test guest:
 * connect and negotiate, query-status, STOP/RESUME events around
 * stop/cont (and the guest's tick stopping and resuming with them), an fd
 * passed with getfd and released with closefd (proved through the pipe it
 * belongs to: QEMU's copy keeps the write end open until closefd), then
 * quit and QEMU's exit.  One boot for all steps: guests under TCG are slow.
 *
 * REMUS_QMP_TEST_NO_GUEST=1 runs the same QMP steps against a QEMU that
 * boots nothing (SeaBIOS only), skipping the serial checks; for developing
 * without vm-images, never what CTest runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/log.h"
#include "common/loop.h"
#include "qmp/qmp.h"
#include "support/qemu_vm.h"

#define BOOT_TIMEOUT_MS 120000
#define CMD_TIMEOUT_MS 10000

struct events {
	int stop, resume, shutdown;
};

static void on_event(struct remus_qmp *q, const char *event, struct json_object *data,
		     int64_t ts, void *opaque)
{
	struct events *e = opaque;

	assert_true(ts > 0); /* QEMU stamps every event */
	if (!strcmp(event, "STOP"))
		e->stop++;
	else if (!strcmp(event, "RESUME"))
		e->resume++;
	else if (!strcmp(event, "SHUTDOWN"))
		e->shutdown++;
}

static struct remus_test_qemu vm;
static struct remus_loop *loop;
static struct remus_qmp *q;

/* Runs @cmd synchronously and checks success; returns the result (owned). */
static struct json_object *run(const char *cmd, struct json_object *args, int fd)
{
	struct json_object *ret = NULL;
	char *err = NULL;
	int rc = remus_qmp_execute_sync(q, cmd, args, fd, CMD_TIMEOUT_MS, &ret, &err);

	if (rc != 0) {
		fprintf(stderr, "%s (rc %d)\n", err ? err : "?", rc);
		remus_test_qemu_dump(&vm, stderr, 4096);
	}
	assert_int_equal(rc, 0);
	free(err);
	return ret;
}

static const char *status_of(struct json_object *st)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(st, "status", &v));
	return json_object_get_string(v);
}

static void wait_for(const int *counter, int want, unsigned ms)
{
	uint64_t deadline = remus_now_ms() + ms;

	while (*counter < want) {
		assert_int_equal(remus_loop_run_once(loop, 50), 0);
		assert_true(remus_now_ms() < deadline);
	}
}

static void test_qmp_against_qemu(void **state)
{
	struct events ev = { 0 };
	struct json_object *st, *args;
	char *err = NULL;
	unsigned ticks;
	int p[2], rc;
	char c;
	bool guest = !getenv("REMUS_QMP_TEST_NO_GUEST");

	(void)state;
	rc = remus_test_qemu_start(&vm, &(struct remus_test_qemu_opts){ .no_guest = !guest });
	assert_int_equal(rc, 0);
	fprintf(stderr, "qemu pid %d (accel %s), dir %s\n", (int)vm.pid, remus_test_accel(),
		vm.dir);

	/* QEMU creates the socket a little after exec: the client retries. */
	assert_int_equal(remus_loop_new(&loop), 0);
	assert_int_equal(remus_qmp_connect(loop, vm.qmp_path,
					   &(struct remus_qmp_opts){ .connect_timeout_ms = 20000 },
					   NULL, NULL, &q), 0);
	rc = remus_qmp_wait_ready(q, 30000);
	if (rc)
		fprintf(stderr, "%s\n", remus_qmp_last_error(q));
	assert_int_equal(rc, 0);
	assert_non_null(remus_qmp_greeting(q));
	assert_true(remus_qmp_subscribe(q, NULL, on_event, &ev) > 0);

	rc = guest ? remus_test_qemu_wait_serial(&vm, "GUEST-UP", 1, BOOT_TIMEOUT_MS) : 0;
	if (rc)
		remus_test_qemu_dump(&vm, stderr, 4096);
	assert_int_equal(rc, 0);

	st = run("query-status", NULL, -1);
	assert_string_equal(status_of(st), "running");
	json_object_put(st);

	/* stop: STOP event, paused, and the guest's tick stops. */
	json_object_put(run("stop", NULL, -1));
	wait_for(&ev.stop, 1, CMD_TIMEOUT_MS);
	st = run("query-status", NULL, -1);
	assert_string_equal(status_of(st), "paused");
	json_object_put(st);
	ticks = remus_test_qemu_serial_count(&vm, "tick ");
	if (guest) {
		usleep(1500 * 1000);
		assert_int_equal(remus_test_qemu_serial_count(&vm, "tick "), ticks);
	}

	/* cont: RESUME event, running, and the tick comes back. */
	json_object_put(run("cont", NULL, -1));
	wait_for(&ev.resume, 1, CMD_TIMEOUT_MS);
	st = run("query-status", NULL, -1);
	assert_string_equal(status_of(st), "running");
	json_object_put(st);
	if (guest)
		assert_int_equal(remus_test_qemu_wait_serial(&vm, "tick ", ticks + 1, 20000), 0);
	assert_int_equal(ev.stop, 1);
	assert_int_equal(ev.resume, 1);

	/* getfd: QEMU now holds the pipe's write end, so no EOF... */
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("remus-test"));
	json_object_put(run("getfd", args, p[1]));
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), -1);
	assert_int_equal(errno, EAGAIN);
	/* ...until closefd drops it. */
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("remus-test"));
	json_object_put(run("closefd", args, -1));
	assert_int_equal(read(p[0], &c, 1), 0);
	close(p[0]);
	/* A second closefd is a QMP error with a useful message. */
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("remus-test"));
	assert_int_equal(remus_qmp_execute_sync(q, "closefd", args, -1, CMD_TIMEOUT_MS, NULL,
						&err), -EREMOTEIO);
	fprintf(stderr, "expected error: %s\n", err);
	assert_non_null(strstr(err, vm.qmp_path));
	assert_non_null(strstr(err, "'closefd' failed: GenericError: "));
	free(err);

	/* quit: QEMU answers, closes the socket and exits cleanly. */
	rc = remus_qmp_execute_sync(q, "quit", NULL, -1, CMD_TIMEOUT_MS, NULL, &err);
	if (rc)
		fprintf(stderr, "quit: %s\n", err);
	/* The reply normally arrives; losing it to the exit is QEMU's right. */
	assert_true(rc == 0 || rc == -ECONNRESET);
	free(err);
	while (remus_qmp_get_state(q) != REMUS_QMP_CLOSED)
		assert_int_equal(remus_loop_run_once(loop, 100), 0);
	assert_int_equal(remus_test_qemu_wait_exit(&vm, 20000), 0);
	assert_true(WIFEXITED(vm.exit_status));
	assert_int_equal(WEXITSTATUS(vm.exit_status), 0);
	assert_int_equal(ev.shutdown, 1);
}

static int teardown(void **state)
{
	(void)state;
	remus_qmp_free(q);
	q = NULL;
	remus_loop_free(loop);
	loop = NULL;
	remus_test_qemu_stop(&vm);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_qmp_against_qemu, teardown),
	};

	remus_log_set_level(REMUS_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
