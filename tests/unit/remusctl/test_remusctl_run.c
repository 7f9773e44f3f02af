// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Whole remusctl runs (remusctl_main, in-process) against a fake remusd:
 * a thread on a unix socket in a temporary directory that records each
 * request line and answers the next scripted line.  Checked: the exact
 * request lines, what reaches stdout and stderr, and the exit codes of
 * DESIGN-10 (0 ok, 1 refused/failed, 2 usage, 3 unreachable); protect's
 * wait (plain lines, the bar on a tty, failure, a vanished domain, a
 * vanished remusd, Ctrl-C); where the socket path comes from.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
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

#include "common/sock.h"
#include "remusctl/cli.h"

#define HOLD "(hold)"   /* read the request, never answer */
#define CLOSE "(close)" /* read the request, close without answering */
#define EARLY "!"         /* prefix: answer before reading, close unread */
#define MAX_REQ 32

struct fake {
	char dir[64], path[128];
	int lfd;
	pthread_t th;
	const char *const *answers; /* NULL-terminated script */
	char req[MAX_REQ][1024]; /* the request lines received */
	int nreq;
	volatile int stop;
	/* Sets *interrupt after this many requests (0: never). */
	int interrupt_after;
	volatile sig_atomic_t *interrupt;
	/* Removes the socket once the script is done (remusd gone). */
	bool vanish;
};

static void read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n < len - 1) {
		ssize_t r = read(fd, buf + n, 1);

		if (r <= 0)
			break;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
}

static void *serve(void *opaque)
{
	struct fake *f = opaque;

	for (int i = 0; f->answers[i]; i++) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		int c;

		while (!f->stop && poll(&p, 1, 50) == 0)
			;
		if (f->stop)
			break;
		c = accept(f->lfd, NULL, NULL);
		if (c < 0)
			break;
		if (f->answers[i][0] == EARLY[0]) {
			/* A peer check refusing the client: it never reads. */
			assert_int_equal(remus_write_all(c, f->answers[i] + 1,
							 strlen(f->answers[i] + 1)), 0);
			assert_int_equal(remus_write_all(c, "\n", 1), 0);
			close(c);
			continue;
		}
		if (f->nreq < MAX_REQ)
			read_line(c, f->req[f->nreq++], sizeof(f->req[0]));
		if (f->interrupt_after && f->nreq == f->interrupt_after)
			*f->interrupt = 1;
		if (strcmp(f->answers[i], HOLD) == 0) {
			char b;

			while (read(c, &b, 1) > 0) /* until the client gives up */
				;
		} else if (strcmp(f->answers[i], CLOSE) != 0) {
			assert_int_equal(remus_write_all(c, f->answers[i],
							 strlen(f->answers[i])), 0);
			assert_int_equal(remus_write_all(c, "\n", 1), 0);
		}
		close(c);
	}
	if (f->vanish) {
		close(f->lfd);
		f->lfd = -1;
		unlink(f->path);
	}
	return NULL;
}

static void fake_start(struct fake *f, const char *const *answers)
{
	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/remusctl-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/remusd.sock", f->dir);
	f->lfd = remus_unix_listen(f->path, 8);
	assert_true(f->lfd >= 0);
	f->answers = answers;
}

static void fake_run(struct fake *f)
{
	assert_int_equal(pthread_create(&f->th, NULL, serve, f), 0);
}

static void fake_stop(struct fake *f)
{
	f->stop = 1;
	pthread_join(f->th, NULL);
	if (f->lfd >= 0)
		close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
}

struct run {
	char *out, *err;
	int rc;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Runs remusctl with @argv (NULL-terminated, without argv[0]). */
static struct run run_io(struct remusctl_io io, char **argv)
{
	struct run r = { 0 };
	size_t ol = 0, el = 0;
	char *args[64] = { "remusctl" };
	int argc = 1;

	while (argv[argc - 1])
		args[argc] = argv[argc - 1], argc++;
	io.out = open_memstream(&r.out, &ol);
	io.err = open_memstream(&r.err, &el);
	io.poll_ms = io.poll_ms ? io.poll_ms : 1;
	r.rc = remusctl_main(argc, args, &io);
	fclose(io.out);
	fclose(io.err);
	return r;
}

#define RUN(...) run_io((struct remusctl_io){ 0 }, (char *[]){ __VA_ARGS__, NULL })

static void assert_contains(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("'%s' not in:\n%s", needle, text);
}

static const char status_web1[] =
	"{\"ok\":true,\"domain\":\"web1\",\"role\":\"primary\",\"state\":\"protected\","
	"\"peer\":\"hostB:7790\",\"epoch\":7,\"initial_sync\":null,\"disks\":[]}";

static void test_status(void **state)
{
	struct fake f;
	const char *script[] = { status_web1, status_web1, NULL };
	struct run r;

	fake_start(&f, script);
	fake_run(&f);
	r = RUN("status", "web1", "--socket", f.path);
	assert_int_equal(r.rc, 0);
	assert_contains(r.out, "web1\n  role:           primary\n  state:          protected\n");
	assert_contains(r.out, "  epoch:          7\n");
	assert_string_equal(r.err, "");
	run_free(&r);
	/* --json: remusd's line, unchanged. */
	r = RUN("--socket", f.path, "status", "--json", "web1");
	assert_int_equal(r.rc, 0);
	assert_int_equal(strncmp(r.out, status_web1, strlen(status_web1)), 0);
	assert_string_equal(r.out + strlen(status_web1), "\n");
	run_free(&r);
	fake_stop(&f);
	assert_int_equal(f.nreq, 2);
	assert_string_equal(f.req[0], "{\"cmd\":\"status\",\"domain\":\"web1\"}");
	assert_string_equal(f.req[1], "{\"cmd\":\"status\",\"domain\":\"web1\"}");
}

static void test_requests_exact(void **state)
{
	struct fake f;
	const char *ok = "{\"ok\":true}";
	const char *script[] = { ok, ok, ok, ok, ok, ok, ok, NULL };
	static const char *const want[] = {
		"{\"cmd\":\"status\"}",
		"{\"cmd\":\"list\"}",
		"{\"cmd\":\"set-interval\",\"domain\":\"web1\",\"interval_ms\":100}",
		"{\"cmd\":\"failover\",\"domain\":\"web1\"}",
		"{\"cmd\":\"unprotect\",\"domain\":\"web1\",\"release_disks\":false}",
		"{\"cmd\":\"unprotect\",\"domain\":\"web1\",\"release_disks\":true}",
		"{\"cmd\":\"protect\",\"domain\":\"web1\",\"standby\":\"hostB:7791\","
		"\"interval_ms\":200,\"netbuffer\":\"off\",\"pause_budget_ms\":250,"
		"\"reprotect\":\"manual\"}",
	};
	struct remusctl_io quiet = { .poll_ms = 1000000 };
	struct run r;

	fake_start(&f, script);
	fake_run(&f);
	r = RUN("status", "--socket", f.path);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "no protected domains\n");
	run_free(&r);
	r = RUN("list", "--socket", f.path);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "no protected domains\n");
	run_free(&r);
	r = RUN("set-interval", "web1", "100", "--socket", f.path);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "web1: checkpoint interval 100 ms\n");
	run_free(&r);
	r = RUN("failover", "web1", "--socket", f.path);
	assert_int_equal(r.rc, 0);
	assert_contains(r.out, "web1: failover accepted");
	run_free(&r);
	/* (unprotect's progress polls would race for the answers) */
	r = run_io(quiet, (char *[]){ "unprotect", "web1", "--socket", f.path, NULL });
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "web1: unprotected; it runs here on its own disks\n");
	run_free(&r);
	r = run_io(quiet, (char *[]){ "unprotect", "web1", "--release-disks", "--socket", f.path,
				      NULL });
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "web1: unprotected; it runs here on its own disks\n");
	run_free(&r);
	r = RUN("protect", "web1", "--standby", "hostB:7791", "--interval", "200",
		"--netbuffer", "off", "--pause-budget", "250", "--reprotect", "manual",
		"--no-wait", "--socket", f.path);
	assert_int_equal(r.rc, 0);
	/* --no-wait: the engine is not chosen yet, and says so */
	assert_string_equal(r.out, "web1: protection accepted, standby on hostB:7791\n"
		"web1: engine not decided yet: remusd picks v1 or v2 once it has checked the "
		"guest's RAM (remusctl status web1)\n");
	assert_string_equal(r.err, "");
	run_free(&r);
	fake_stop(&f);
	assert_int_equal(f.nreq, 7);
	for (int i = 0; i < 7; i++)
		assert_string_equal(f.req[i], want[i]);
}

/* unprotect's answers beyond "runs here": a standby discarded on its
 * host, and a warning (the standby libvirt could not destroy) that must
 * reach the user, not stay in the JSON. */
static void test_unprotect_answers(void **state)
{
	struct fake f;
	const char *script[] = { "{\"ok\":true,\"standby_discarded\":true}",
				 "{\"ok\":true,\"warning\":\"the standby could not be destroyed: "
				 "no route; destroy it there by hand (virsh destroy web1)\"}",
				 NULL };
	/* (no progress polls: each would take one of the answers) */
	struct remusctl_io io = { .poll_ms = 1000000 };
	struct run r;

	(void)state;
	fake_start(&f, script);
	fake_run(&f);
	r = run_io(io, (char *[]){ "unprotect", "web1", "--force", "--socket", f.path, NULL });
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "web1: the standby here is discarded; remusd no longer keeps it\n");
	assert_string_equal(r.err, "");
	run_free(&r);
	r = run_io(io, (char *[]){ "unprotect", "web1", "--socket", f.path, NULL });
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "web1: unprotected; it runs here on its own disks\n");
	assert_string_equal(r.err, "remusctl: warning: web1: the standby could not be destroyed: "
			    "no route; destroy it there by hand (virsh destroy web1)\n");
	run_free(&r);
	fake_stop(&f);
	assert_int_equal(f.nreq, 2);
	assert_string_equal(f.req[0], "{\"cmd\":\"unprotect\",\"domain\":\"web1\","
			    "\"release_disks\":false,\"force\":true}");
}

static void test_refused(void **state)
{
	struct fake f;
	const char *no = "{\"ok\":false,\"error\":\"domain web9: no such libvirt domain on "
			 "this host (virsh list --all)\",\"code\":\"no-domain\"}";
	const char *script[] = { no, no, "{\"ok\":false}",
				 "{\"ok\":false,\"error\":\"a\\u001b[2Jb\\nc\",\"code\":\"x\\ty\"}", NULL };
	struct run r;

	fake_start(&f, script);
	fake_run(&f);
	r = RUN("protect", "web9", "--standby", "h", "--socket", f.path);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "remusctl: domain web9: no such libvirt domain on this "
				   "host (virsh list --all) (no-domain)\n");
	run_free(&r);
	r = RUN("status", "web9", "--json", "--socket", f.path);
	assert_int_equal(r.rc, 1);
	assert_contains(r.out, "\"code\":\"no-domain\"}\n");
	assert_contains(r.err, "(no-domain)");
	run_free(&r);
	r = RUN("failover", "web9", "--socket", f.path);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "remusctl: remusd refused without a reason\n");
	run_free(&r);
	/* remusd's words cannot drive the terminal. */
	r = RUN("failover", "web9", "--socket", f.path);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "remusctl: a?[2Jb?c (x?y)\n");
	run_free(&r);
	fake_stop(&f);
	assert_int_equal(f.nreq, 4);
}

static void test_refused_before_reading(void **state)
{
	struct fake f;
	const char *no = EARLY "{\"ok\":false,\"error\":\"uid 1000 may not use "
			 "/run/remus/remusd.sock (run as root, or join group remus)\","
			 "\"code\":\"bad-request\"}";
	const char *script[] = { no, no, NULL };
	static char longname[300000];
	struct run r;

	fake_start(&f, script);
	fake_run(&f);
	r = RUN("list", "--socket", f.path);
	assert_int_equal(r.rc, 1);
	assert_contains(r.err, "uid 1000 may not use");
	run_free(&r);
	/* A request too long for the socket buffer: the send fails (no
	 * SIGPIPE kills remusctl) and the answer is read all the same. */
	memset(longname, 'x', sizeof(longname) - 1);
	r = RUN("status", longname, "--socket", f.path);
	assert_int_equal(r.rc, 1);
	assert_contains(r.err, "uid 1000 may not use");
	run_free(&r);
	fake_stop(&f);
}

static void test_unreachable(void **state)
{
	struct fake f;
	const char *script[] = { HOLD, CLOSE, "hello", "[1]", "{\"ok\":1}", NULL };
	char path[160];
	struct run r;
	FILE *file;

	r = RUN("status", "--socket", "/nonexistent/remusd.sock");
	assert_int_equal(r.rc, 3);
	assert_contains(r.err, "cannot talk to remusd at /nonexistent/remusd.sock: No such "
			       "file or directory (is it running?");
	assert_string_equal(r.out, "");
	run_free(&r);

	fake_start(&f, script);
	/* A file that is no socket. */
	snprintf(path, sizeof(path), "%s/plain", f.dir);
	file = fopen(path, "w");
	assert_non_null(file);
	fclose(file);
	r = RUN("list", "--socket", path);
	assert_int_equal(r.rc, 3);
	assert_contains(r.err, "cannot talk to remusd at");
	run_free(&r);
	unlink(path);

	fake_run(&f);
	r = RUN("list", "--timeout", "1", "--socket", f.path);
	assert_int_equal(r.rc, 3);
	assert_contains(r.err, "did not answer within 1 s");
	run_free(&r);
	r = RUN("list", "--socket", f.path);
	assert_int_equal(r.rc, 3);
	assert_contains(r.err, "Connection reset");
	run_free(&r);
	for (int i = 0; i < 3; i++) {
		r = RUN("list", "--socket", f.path);
		assert_int_equal(r.rc, 1);
		assert_contains(r.err, "answered something that is not a control answer");
		run_free(&r);
	}
	fake_stop(&f);
	assert_int_equal(f.nreq, 5);
}

#define STARTING "{\"ok\":true,\"domain\":\"web1\",\"state\":\"starting\"," \
	"\"initial_sync\":null,\"disks\":[]}"
#define SYNCING(b) "{\"ok\":true,\"domain\":\"web1\",\"state\":\"syncing\"," \
	"\"initial_sync\":{\"bytes\":" #b ",\"total\":1000,\"rate_bps\":100," \
	"\"eta_s\":5},\"disks\":[]}"
#define PROTECTED "{\"ok\":true,\"domain\":\"web1\",\"state\":\"protected\"," \
	"\"peer\":\"hostB:7790\"}"
#define ACCEPTED "{\"ok\":true,\"domain\":\"web1\",\"state\":\"starting\"}"

static void test_protect_wait_plain(void **state)
{
	struct fake f;
	const char *script[] = { ACCEPTED, STARTING, SYNCING(250), SYNCING(500), PROTECTED,
				 NULL };
	const char *st = "{\"cmd\":\"status\",\"domain\":\"web1\"}";
	struct remusctl_io io = { .plain_every_ms = 1000000 };
	struct run r;

	fake_start(&f, script);
	fake_run(&f);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 0);
	/* One line per state (the second syncing poll is within the
	 * rate limit), no terminal codes. */
	assert_string_equal(r.out,
		"web1: protection accepted, standby on hostB\n"
		"web1 starting\n"
		"web1 syncing: 250 B of 1000 B (25%), 100 B/s, ETA 5 s\n"
		"web1: protected (standby hostB:7790)\n");
	assert_string_equal(r.err, "");
	run_free(&r);
	fake_stop(&f);
	assert_int_equal(f.nreq, 5);
	assert_string_equal(f.req[0], "{\"cmd\":\"protect\",\"domain\":\"web1\","
				      "\"standby\":\"hostB\"}");
	for (int i = 1; i < 5; i++)
		assert_string_equal(f.req[i], st);
}

static void test_protect_wait_tty(void **state)
{
	struct fake f;
	const char *script[] = { ACCEPTED, SYNCING(500), PROTECTED, NULL };
	struct remusctl_io io = { .tty = true, .columns = 120 };
	struct run r;

	fake_start(&f, script);
	fake_run(&f);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out,
		"web1: protection accepted, standby on hostB\n"
		"\r\033[K[###############---------------] 500 B / 1000 B  50.0%  100 B/s  "
		"ETA 5 s  syncing\n"
		"web1: protected (standby hostB:7790)\n");
	run_free(&r);
	fake_stop(&f);
}

/* The redrawn line fits the terminal: the bar shrinks, then goes, then
 * the text is cut. */
static void test_protect_wait_narrow_tty(void **state)
{
	struct fake f;
	const char *script[] = { ACCEPTED, SYNCING(500), SYNCING(600), PROTECTED, NULL };
	struct remusctl_io io = { .tty = true, .columns = 72 };
	struct run r;
	char *line;

	fake_start(&f, script);
	fake_run(&f);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 0);
	line = strstr(r.out, "\r\033[K");
	assert_non_null(line);
	/* 71 characters each: a 20-cell bar instead of 30. */
	assert_string_equal(line,
		"\r\033[K[##########----------] 500 B / 1000 B  50.0%  100 B/s  ETA 5 s  syncing"
		"\r\033[K[############--------] 600 B / 1000 B  60.0%  100 B/s  ETA 5 s  syncing\n"
		"web1: protected (standby hostB:7790)\n");
	run_free(&r);
	fake_stop(&f);

	io.columns = 40;
	fake_start(&f, script);
	fake_run(&f);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 0);
	line = strstr(r.out, "\r\033[K");
	assert_non_null(line);
	assert_string_equal(line,
		"\r\033[Ksyncing: 500 B of 1000 B (50%), 100 B/s"
		"\r\033[Ksyncing: 600 B of 1000 B (60%), 100 B/s\n"
		"web1: protected (standby hostB:7790)\n");
	run_free(&r);
	fake_stop(&f);
}

/* The engine's shapes through remusd serve: initial_sync with ram_bytes
 * and copied_bytes; protected as a boolean while the state may read
 * "checkpoint"; last_failure as an object; "failed" while remusd
 * restarts the engine is not the end. */
static void test_protect_engine_shapes(void **state)
{
	struct fake f;
	const char *script[] = {
		ACCEPTED,
		"{\"ok\":true,\"domain\":\"web1\",\"state\":\"syncing\",\"protected\":false,"
		"\"initial_sync\":{\"ram_bytes\":1000,\"copied_bytes\":400,\"rate_bps\":100,"
		"\"eta_s\":6},\"disks\":[{\"target\":\"vda\",\"format\":\"raw\",\"total\":5000}]}",
		"{\"ok\":true,\"domain\":\"web1\",\"state\":\"failed\",\"host_state\":"
		"\"restarting\",\"protected\":false}",
		"{\"ok\":true,\"domain\":\"web1\",\"state\":\"checkpoint\",\"protected\":false}",
		"{\"ok\":true,\"domain\":\"web1\",\"state\":\"checkpoint\",\"protected\":true,"
		"\"peer\":\"hostB:7790\"}",
		ACCEPTED,
		"{\"ok\":true,\"domain\":\"web1\",\"state\":\"failed\",\"protected\":false,"
		"\"host_state\":\"failed\",\"last_failure\":{\"reason\":\"QEMU 7.2 has no switchover-ack\",\"time\":\"x\"}}",
		NULL };
	struct remusctl_io io = { .plain_every_ms = 1000000 };
	struct run r;

	fake_start(&f, script);
	fake_run(&f);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out,
		"web1: protection accepted, standby on hostB\n"
		"web1 syncing: 400 B of 1000 B (40%), 100 B/s, ETA 6 s\n"
		"web1 failed\n"
		"web1 checkpoint\n"
		"web1: protected (standby hostB:7790)\n");
	run_free(&r);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "remusctl: web1: protection failed: QEMU 7.2 has no "
				   "switchover-ack\n");
	run_free(&r);
	fake_stop(&f);
}

/* protect names the engine once it is chosen: v1 with its reason and fix
 * (the "v1: " of engine_reason not doubled), v2 with its RAM file; the
 * v1 an undecided engine reports is never shown as a choice, neither on
 * Ctrl-C nor after a failure. */
#define UNDECIDED(st) "{\"ok\":true,\"domain\":\"web1\",\"state\":\"" st "\"," \
	"\"protected\":false,\"engine\":\"v1\",\"engine_decided\":false,\"engine_reason\":" \
	"\"v1: finding the guest's RAM file for remusd ramfs\"}"
#define V1_WHY "remusd ramfs not running at /run/r.sock (No such file or directory); " \
	"start it on libvirt's memory_backing_dir before libvirtd and the domain web1"
#define V2_WHY "guest RAM of web1 (memory backend 'pc.ram') is /ram/pc.ram on remusd " \
	"ramfs (/run/r.sock), share=on"
#define ENGINE(st, prot, e, why) "{\"ok\":true,\"domain\":\"web1\",\"state\":\"" st "\"," \
	"\"peer\":\"hostB:7790\",\"protected\":" prot ",\"engine\":\"" e "\"," \
	"\"engine_decided\":true,\"engine_reason\":\"" e ": " why "\"}"

static void test_protect_names_engine(void **state)
{
	struct fake f;
	const char *script[] = {
		ACCEPTED, UNDECIDED("starting"), ENGINE("protected", "true", "v1", V1_WHY),
		ACCEPTED, ENGINE("protected", "true", "v2", V2_WHY),
		ACCEPTED, UNDECIDED("failed"),
		NULL };
	struct remusctl_io io = { .plain_every_ms = 1000000 };
	struct run r;

	fake_start(&f, script);
	fake_run(&f);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out,
		"web1: protection accepted, standby on hostB\n"
		"web1 starting\n"
		"web1: protected (standby hostB:7790)\n"
		"web1: engine v1: " V1_WHY "\n");
	run_free(&r);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out,
		"web1: protection accepted, standby on hostB\n"
		"web1: protected (standby hostB:7790)\n"
		"web1: engine v2: " V2_WHY "\n");
	run_free(&r);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "web1: protection accepted, standby on hostB\n");
	assert_string_equal(r.err, "remusctl: web1: protection failed: no reason given (see "
				   "remusd's log: journalctl -u remusd)\n");
	run_free(&r);
	fake_stop(&f);
}

/* Ctrl-C: the engine as far as it is known from the last status. */
static void test_protect_interrupted_engine(void **state)
{
	const char *undecided[] = { ACCEPTED, UNDECIDED("starting"), UNDECIDED("starting"),
				    NULL };
	const char *decided[] = { ACCEPTED, ENGINE("syncing", "false", "v2", V2_WHY),
				  ENGINE("syncing", "false", "v2", V2_WHY), NULL };
	const char *const *scripts[] = { undecided, decided };
	const char *want[] = {
		"web1: engine not decided yet: remusd picks v1 or v2 once it has checked the "
		"guest's RAM (remusctl status web1)\n",
		"web1: engine v2: " V2_WHY "\n" };

	for (int i = 0; i < 2; i++) {
		struct fake f;
		volatile sig_atomic_t flag = 0;
		struct remusctl_io io = { .interrupted = &flag, .plain_every_ms = 1000000 };
		struct run r;
		const char *tail;

		fake_start(&f, scripts[i]);
		f.interrupt = &flag;
		f.interrupt_after = 2;
		fake_run(&f);
		r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
					   f.path, NULL });
		assert_int_equal(r.rc, 0);
		assert_contains(r.out, "stopped waiting: remusd goes on protecting web1 "
				       "(remusctl status web1)\n");
		tail = strstr(r.out, "(remusctl status web1)\n") + strlen("(remusctl status web1)\n");
		assert_string_equal(tail, want[i]);
		run_free(&r);
		fake_stop(&f);
	}
}

static void test_protect_fails(void **state)
{
	struct fake f;
	const char *script[] = {
		ACCEPTED, STARTING,
		"{\"ok\":true,\"domain\":\"web1\",\"state\":\"failed\",\"last_failure\":"
		"\"hostB has no bridge br0 (create it there, or change the domain's NIC)\"}",
		ACCEPTED,
		"{\"ok\":false,\"error\":\"domain web1 is not protected\",\"code\":\"no-domain\"}",
		NULL };
	struct run r;

	fake_start(&f, script);
	fake_run(&f);
	r = RUN("protect", "web1", "--standby", "hostB", "--socket", f.path);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "remusctl: web1: protection failed: hostB has no bridge "
				   "br0 (create it there, or change the domain's NIC)\n");
	run_free(&r);
	r = RUN("protect", "web1", "--standby", "hostB", "--socket", f.path);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "remusctl: domain web1 is not protected (no-domain)\n");
	run_free(&r);
	fake_stop(&f);
	assert_int_equal(f.nreq, 5);
}

static void test_protect_remusd_vanishes(void **state)
{
	struct fake f;
	const char *script[] = { ACCEPTED, STARTING, NULL };
	struct run r;

	fake_start(&f, script);
	f.vanish = true;
	fake_run(&f);
	r = RUN("protect", "web1", "--standby", "hostB", "--socket", f.path);
	assert_int_equal(r.rc, 3);
	assert_contains(r.err, "lost track of web1 while waiting");
	run_free(&r);
	fake_stop(&f);
}

static void test_protect_interrupted(void **state)
{
	struct fake f;
	const char *script[] = { ACCEPTED, SYNCING(100), SYNCING(200), SYNCING(300),
				 SYNCING(400), NULL };
	volatile sig_atomic_t flag = 0;
	struct remusctl_io io = { .interrupted = &flag, .tty = true };
	struct run r;

	fake_start(&f, script);
	f.interrupt = &flag;
	f.interrupt_after = 3;
	fake_run(&f);
	r = run_io(io, (char *[]){ "protect", "web1", "--standby", "hostB", "--socket",
				   f.path, NULL });
	assert_int_equal(r.rc, 0);
	assert_contains(r.out, "\nstopped waiting: remusd goes on protecting web1 "
			       "(remusctl status web1)\n");
	run_free(&r);
	fake_stop(&f);
	/* No request after the interrupt was seen. */
	assert_int_equal(f.nreq, 3);
}

static void test_socket_sources(void **state)
{
	struct fake f, g;
	const char *ok[] = { "{\"ok\":true}", "{\"ok\":true}", NULL };
	char conf[160];
	struct run r;
	FILE *file;

	fake_start(&f, ok);
	fake_start(&g, ok);
	fake_run(&f);
	fake_run(&g);
	/* $REMUS_CTL without --socket. */
	r = run_io((struct remusctl_io){ .env_ctl = f.path }, (char *[]){ "list", NULL });
	assert_int_equal(r.rc, 0);
	run_free(&r);
	/* --socket beats $REMUS_CTL. */
	r = run_io((struct remusctl_io){ .env_ctl = "/nonexistent" },
		   (char *[]){ "list", "--socket", g.path, NULL });
	assert_int_equal(r.rc, 0);
	run_free(&r);
	/* The config file's ctl key. */
	snprintf(conf, sizeof(conf), "%s/remusd.conf", f.dir);
	file = fopen(conf, "w");
	assert_non_null(file);
	fprintf(file, "# test\nlisten = 0.0.0.0:7790\nctl = %s\n", g.path);
	fclose(file);
	r = RUN("--config", conf, "list");
	assert_int_equal(r.rc, 0);
	run_free(&r);
	/* $REMUS_CTL beats the config file. */
	r = run_io((struct remusctl_io){ .env_ctl = f.path },
		   (char *[]){ "--config", conf, "list", NULL });
	assert_int_equal(r.rc, 0);
	run_free(&r);
	fake_stop(&f);
	fake_stop(&g);
	assert_int_equal(f.nreq, 2);
	assert_int_equal(g.nreq, 2);

	file = fopen(conf, "w");
	assert_non_null(file);
	fprintf(file, "ctl /run/x\n");
	fclose(file);
	r = RUN("--config", conf, "list");
	assert_int_equal(r.rc, 1);
	assert_contains(r.err, "remusd.conf: line 1 is not 'key = value' (fix the file, or "
			       "give --socket PATH)");
	run_free(&r);
	unlink(conf);
	r = RUN("--config", conf, "list");
	assert_int_equal(r.rc, 2);
	assert_contains(r.err, "cannot read the config file");
	run_free(&r);
}

static void test_usage_help_version(void **state)
{
	struct run r = RUN("status", "--frob");

	assert_int_equal(r.rc, 2);
	assert_string_equal(r.out, "");
	assert_contains(r.err, "remusctl: unknown option '--frob' for remusctl status\n"
			       "usage:\n  remusctl status [DOMAIN] [--json]\n");
	run_free(&r);
	r = RUN("set-interval", "web1", "fast");
	assert_int_equal(r.rc, 2);
	assert_contains(r.err, "usage:\n  remusctl set-interval DOMAIN MS\n");
	run_free(&r);
	r = RUN("failover", "--help");
	assert_int_equal(r.rc, 0);
	assert_contains(r.out, "usage:\n  remusctl failover DOMAIN\n");
	assert_string_equal(r.err, "");
	run_free(&r);
	r = RUN("--version");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "remusctl " REMUS_VERSION "\n");
	run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_requests_exact),
		cmocka_unit_test(test_unprotect_answers),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_refused_before_reading),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_protect_wait_plain),
		cmocka_unit_test(test_protect_wait_tty),
		cmocka_unit_test(test_protect_wait_narrow_tty),
		cmocka_unit_test(test_protect_engine_shapes),
		cmocka_unit_test(test_protect_names_engine),
		cmocka_unit_test(test_protect_interrupted_engine),
		cmocka_unit_test(test_protect_fails),
		cmocka_unit_test(test_protect_remusd_vanishes),
		cmocka_unit_test(test_protect_interrupted),
		cmocka_unit_test(test_socket_sources),
		cmocka_unit_test(test_usage_help_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
