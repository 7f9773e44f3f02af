// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * netbuffer-qemu: the qemu netbuffer backend against a real QEMU 10 guest.
 *
 * The test guest runs `counter`, which sends the UDP line "counter N" every
 * 50 ms, N = 1, 2, 3, ... with no value skipped (vm-images/guest/counter.c).
 * The test enters a network namespace of its own, so the guest's traffic
 * reaches only this process:
 *
 *   user  -netdev user: the guest (10.0.2.15) sends to 10.0.2.2:9000,
 *         which slirp delivers to 127.0.0.1:9000 in our namespace;
 *         the netbuffer discovers the netdev over QMP.
 *   tap   -netdev tap,vnet_hdr=on on a tap in our namespace (10.0.3.1),
 *         guest 10.0.3.2: frames carry virtio-net headers through the
 *         redirector; the netdev is named explicitly.
 *
 * It drives the public API on one loop as the engine would (QMP stop,
 * barrier, cont every 200 ms) and checks, in order:
 *   1. before setup the datagrams arrive directly (the guest's UDP path);
 *   2. after setup, through 6 epochs (~1.2 s) of barriers without a
 *      commit, nothing arrives;
 *   3. commit of the last epoch releases everything held before its
 *      barrier, and nothing after it; an epoch stays held until committed;
 *   4. standby_lost (policy release) passes frames through at once;
 *   5. teardown removes every object and chardev it added (qom-list
 *      /objects, query-chardev) and the traffic flows directly;
 *   6. across all of it, the values received are exactly N0, N0+1, ...:
 *      in order, no gap, no duplicate;
 *   7. a netbuffer freed without teardown (remusd killed) leaves QEMU's
 *      filter in place, which then swallows the guest's output (fail
 *      closed: nothing uncommitted leaves); the next setup removes those
 *      leftovers and succeeds, its commit releases, its teardown leaves
 *      nothing.
 * The status JSON shows the vnet_hdr_len QEMU sent: 0 for user, 12 (or
 * 10) for the tap with vnet_hdr=on, whose frames go back unchanged.
 * QEMU is started and killed by PID (tests/support/qemu_vm.h).  Needs root
 * (the namespace, the tap); skipped otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/loop.h"
#include "netbuffer/netbuffer.h"
#include "qmp/qmp.h"
#include "support/qemu_vm.h"

#define PORT 9000
#define PERIOD_MS 50
#define EPOCH_MS 200
#define MAXV 4096

static struct remus_test_qemu vm;
static struct remus_loop *loop;
static struct remus_qmp *qmp;
static const char *mode = "user";

static uint64_t vals[MAXV];
static size_t nvals;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "netbuffer-qemu[%s]: FAIL: ", mode);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	remus_test_qemu_dump(&vm, stderr, 2048);
	remus_test_qemu_stop(&vm);
	exit(1);
}

static void on_udp(struct remus_loop *l, int fd, unsigned ev, void *opaque)
{
	char buf[256];
	ssize_t r;
	uint64_t v;

	while ((r = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[r] = '\0';
		if (sscanf(buf, "counter %" SCNu64, &v) != 1)
			fail("unexpected datagram '%s'", buf);
		if (nvals == MAXV)
			fail("more than %d datagrams", MAXV);
		vals[nvals++] = v;
	}
}

static void run_ms(unsigned ms)
{
	uint64_t end = remus_now_ms() + ms;

	while (remus_now_ms() < end)
		remus_loop_run_once(loop, 10);
}

static struct json_object *qmp_run(const char *cmd, struct json_object *args)
{
	struct json_object *ret = NULL;
	char *err = NULL;

	if (remus_qmp_execute_sync(qmp, cmd, args, -1, 10000, &ret, &err) != 0)
		fail("QMP %s: %s", cmd, err ? err : "?");
	return ret;
}

/* Does `qom-list /objects` or `query-chardev` list anything of ours? */
static int count_ours(void)
{
	struct json_object *ret, *args = json_object_new_object(), *e, *v;
	int n = 0;
	size_t i;

	json_object_object_add(args, "path", json_object_new_string("/objects"));
	ret = qmp_run("qom-list", args);
	for (i = 0; i < json_object_array_length(ret); i++) {
		e = json_object_array_get_idx(ret, i);
		if (json_object_object_get_ex(e, "name", &v) &&
		    strncmp(json_object_get_string(v), "remus-nb-", 9) == 0)
			n++;
	}
	json_object_put(ret);
	ret = qmp_run("query-chardev", NULL);
	for (i = 0; i < json_object_array_length(ret); i++) {
		e = json_object_array_get_idx(ret, i);
		if (json_object_object_get_ex(e, "label", &v) &&
		    strncmp(json_object_get_string(v), "remus-nb-", 9) == 0)
			n++;
	}
	json_object_put(ret);
	return n;
}

struct done {
	int calls, rc;
	char msg[512];
};

static void on_done(void *opaque, int rc, const char *msg)
{
	struct done *d = opaque;

	d->calls++;
	d->rc = rc;
	snprintf(d->msg, sizeof(d->msg), "%s", msg ? msg : "");
}

static void wait_done(struct done *d, const char *what)
{
	uint64_t end = remus_now_ms() + 20000;

	while (d->calls == 0 && remus_now_ms() < end)
		remus_loop_run_once(loop, 10);
	if (d->calls != 1 || d->rc != 0)
		fail("%s: %s (rc %d, %d calls)", what, d->msg, d->rc, d->calls);
}

/* One checkpoint as the engine takes it: stop, barrier, cont. */
static uint64_t checkpoint(struct remus_netbuffer *nb, uint64_t epoch)
{
	uint64_t t0 = remus_now_ms();

	json_object_put(qmp_run("stop", NULL));
	if (remus_netbuffer_barrier(nb, epoch) != 0)
		fail("barrier %" PRIu64 " failed", epoch);
	json_object_put(qmp_run("cont", NULL));
	return remus_now_ms() - t0;
}

static void check_sequence(const char *when)
{
	size_t i;

	for (i = 1; i < nvals; i++)
		if (vals[i] != vals[i - 1] + 1)
			fail("%s: datagram %zu is 'counter %" PRIu64 "' after 'counter %" PRIu64
			     "': out of order, lost or duplicated", when, i, vals[i], vals[i - 1]);
}

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fprintf(stderr, "netbuffer-qemu[%s]: '%s' failed (%d)\n", mode, cmd, rc);
	return rc;
}

/* Own network namespace with lo up (and the tap), so nothing leaves it. */
static void enter_netns(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	if (unshare(CLONE_NEWNET) < 0)
		fail("unshare(CLONE_NEWNET): %s (the test needs root)", strerror(errno));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		fail("lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		fail("bringing lo up: %s", strerror(errno));
	close(fd);
	if (strcmp(mode, "tap") == 0 &&
	    (sh("ip tuntap add dev rnbtap0 mode tap vnet_hdr") != 0 ||
	     sh("ip addr add 10.0.3.1/24 dev rnbtap0") != 0 ||
	     sh("ip link set rnbtap0 up") != 0))
		fail("cannot create the tap rnbtap0 in the test's namespace");
}

static int udp_listen(const char *addr)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int big = 1 << 20;

	inet_pton(AF_INET, addr, &a.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail("UDP %s:%d: %s", addr, PORT, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return fd;
}

int main(int argc, char **argv)
{
	static const char *const tap_devs[] = { "n0" };
	bool tap = argc > 1 && strcmp(argv[1], "tap") == 0;
	const char *user_args[] = { "-netdev", "user,id=n0", "-device",
				    "virtio-net-pci,netdev=n0,id=nic0", NULL };
	const char *tap_args[] = { "-netdev",
				   "tap,id=n0,ifname=rnbtap0,script=no,downscript=no,vnet_hdr=on",
				   "-device", "virtio-net-pci,netdev=n0,id=nic0", NULL };
	char append[512];
	struct remus_test_qemu_opts opts = { 0 };
	struct remus_netbuffer_config cfg = { .kind = REMUS_NETBUFFER_QEMU };
	struct remus_netbuffer *nb = NULL;
	struct remus_netbuffer_stats st;
	struct done d = { 0 };
	size_t n_setup, n_held, n_commit, n;
	uint64_t epoch = 0, pause_max = 0, pause, t_hold;
	int ufd, rc;
	struct json_object *st_obj;
	const char *js;

	mode = tap ? "tap" : "user";
	/* 77: ctest's SKIP_RETURN_CODE for integration tests. */
	if (geteuid() != 0) {
		printf("netbuffer-qemu[%s]: SKIP: needs root (a network namespace of its own%s); "
		       "run it as root, e.g. sudo -E ctest -R '^test_netbuffer_qemu'\n", mode,
		       tap ? " with a tap" : "");
		return 77;
	}
	if (!remus_test_guest_available()) {
		fprintf(stderr, "netbuffer-qemu: REMUS_GUEST_KERNEL/INITRD not set or missing; "
			"build the guest: cmake --build <build> --target vm-images\n");
		return 1;
	}
	remus_log_set_level(REMUS_LOG_WARN);
	enter_netns();
	ufd = udp_listen(tap ? "10.0.3.1" : "127.0.0.1");
	snprintf(append, sizeof(append),
		 "console=ttyS0 quiet remus.ip=%s/24 remus.gw=%s remus.run=counter "
		 "remus.args=udp=%s:%d,ms=%d,tcp=0",
		 tap ? "10.0.3.2" : "10.0.2.15", tap ? "10.0.3.1" : "10.0.2.2",
		 tap ? "10.0.3.1" : "10.0.2.2", PORT, PERIOD_MS);
	opts.extra_args = tap ? tap_args : user_args;
	opts.append = append;
	if ((rc = remus_loop_new(&loop)) < 0 ||
	    remus_loop_add_fd(loop, ufd, REMUS_EV_READ, on_udp, NULL) < 0)
		fail("loop: %s", strerror(-rc));
	if ((rc = remus_test_qemu_start(&vm, &opts)) < 0)
		fail("starting QEMU: %s", strerror(-rc));
	printf("netbuffer-qemu[%s]: QEMU pid %d, accel %s\n", mode, (int)vm.pid,
	       remus_test_accel());
	if (remus_test_qemu_wait_serial(&vm, "counter start", 1, 180000) < 0)
		fail("the guest's counter did not start");
	if (remus_qmp_connect(loop, vm.qmp_path, NULL, NULL, NULL, &qmp) < 0 ||
	    remus_qmp_wait_ready(qmp, 10000) < 0)
		fail("QMP %s: not ready", vm.qmp_path);

	/* 1. The guest's datagrams reach us directly. */
	run_ms(1500);
	if (nvals < 5)
		fail("only %zu datagrams in 1.5 s before the netbuffer: the guest's UDP "
		     "path (counter udp=) does not work", nvals);
	check_sequence("before setup");

	/* Setup; then let what the guest sent before it arrive. */
	cfg.devices = tap ? tap_devs : NULL; /* user: discover over QMP */
	cfg.ndevices = tap ? 1 : 0;
	cfg.on_lost = REMUS_NETBUFFER_LOST_RELEASE;
	if ((rc = remus_netbuffer_new(loop, qmp, &cfg, &nb)) < 0)
		fail("remus_netbuffer_new: %s", strerror(-rc));
	t_hold = remus_now_ms();
	remus_netbuffer_setup(nb, on_done, &d);
	wait_done(&d, "setup");
	printf("netbuffer-qemu[%s]: setup took %" PRIu64 " ms\n", mode, remus_now_ms() - t_hold);
	if (count_ours() != 3)
		fail("after setup QEMU lists %d remus-nb-* objects and chardevs, want 3",
		     count_ours());
	run_ms(200);
	n_setup = nvals;

	/* 2. Six epochs without a commit: nothing leaves. */
	t_hold = remus_now_ms();
	while (remus_now_ms() - t_hold < 6 * EPOCH_MS) {
		run_ms(EPOCH_MS);
		pause = checkpoint(nb, ++epoch);
		pause_max = pause > pause_max ? pause : pause_max;
	}
	run_ms(100);
	if (nvals != n_setup)
		fail("%zu datagrams arrived while held (before any commit)", nvals - n_setup);
	remus_netbuffer_get_stats(nb, &st);
	if (st.held_frames < 5)
		fail("only %" PRIu64 " frames held in %" PRIu64 " ms", st.held_frames,
		     remus_now_ms() - t_hold);
	n_held = st.held_frames;

	/* 3. Commit the last epoch: all of it arrives, in order, no gap. */
	remus_netbuffer_commit(nb, epoch);
	run_ms(300);
	n_commit = nvals - n_setup;
	if (n_commit < 5)
		fail("commit of epoch %" PRIu64 " released %zu datagrams", epoch, n_commit);
	check_sequence("after commit");
	/* One more epoch: held until its commit, then released. */
	run_ms(EPOCH_MS);
	checkpoint(nb, ++epoch);
	n = nvals;
	run_ms(300);
	if (nvals != n)
		fail("epoch %" PRIu64 " leaked %zu datagrams before its commit", epoch, nvals - n);
	remus_netbuffer_commit(nb, epoch);
	run_ms(300);
	if (nvals <= n)
		fail("commit of epoch %" PRIu64 " released nothing", epoch);
	remus_netbuffer_get_stats(nb, &st);
	printf("netbuffer-qemu[%s]: 6 epochs held, their commit released %zu datagrams; "
	       "frames held %" PRIu64 " released %" PRIu64 " malformed %" PRIu64
	       " overflow %" PRIu64 "; hold p50 %.1f ms max %.1f ms; pause max %" PRIu64 " ms\n",
	       mode, n_commit, n_held, st.released_frames, st.dropped_malformed,
	       st.dropped_overflow, st.latency_p50_ms, st.latency_max_ms, pause_max);
	if (st.dropped_malformed || st.dropped_overflow || st.dropped_io)
		fail("frames dropped: malformed %" PRIu64 " overflow %" PRIu64 " io %" PRIu64,
		     st.dropped_malformed, st.dropped_overflow, st.dropped_io);

	/* 4. Standby lost, policy release: held frames go, then pass-through. */
	remus_netbuffer_standby_lost(nb);
	n = nvals;
	run_ms(1000);
	if (nvals < n + 5)
		fail("standby_lost(release): %zu datagrams in 1 s", nvals - n);
	check_sequence("pass-through");
	st_obj = remus_netbuffer_status_json(nb);
	js = st_obj ? json_object_to_json_string_ext(st_obj, JSON_C_TO_STRING_PLAIN) : NULL;
	printf("netbuffer-qemu[%s]: status %s\n", mode, js ? js : "(null)");
	if (!js || !strstr(js, "\"holding\":false") || !strstr(js, "\"devices\":[\"n0\"]"))
		fail("status JSON does not show pass-through on n0");
	if (!tap && !strstr(js, "\"vnet_hdr_len\":0"))
		fail("-netdev user: QEMU should send vnet_hdr_len 0");
	if (tap && !strstr(js, "\"vnet_hdr_len\":12") && !strstr(js, "\"vnet_hdr_len\":10"))
		fail("-netdev tap,vnet_hdr=on: QEMU should send a virtio-net header length");
	json_object_put(st_obj);

	/* 5. Teardown: nothing of ours left in QEMU, traffic flows directly. */
	memset(&d, 0, sizeof(d));
	remus_netbuffer_teardown(nb, true, on_done, &d);
	wait_done(&d, "teardown");
	if ((rc = count_ours()) != 0)
		fail("after teardown QEMU still lists %d remus-nb-* objects/chardevs", rc);
	remus_netbuffer_free(nb);
	n = nvals;
	run_ms(1000);
	if (nvals < n + 5)
		fail("after teardown only %zu datagrams in 1 s", nvals - n);

	/* 6. The whole run: every value once, in order. */
	check_sequence("whole run");
	printf("netbuffer-qemu[%s]: counter %" PRIu64 "..%" PRIu64 " (%zu datagrams) "
	       "received in order without gap or duplicate\n", mode, vals[0], vals[nvals - 1],
	       nvals);

	/* 7. remusd dies: the netbuffer is freed without teardown.  Frames
	 * held at that moment are lost (a gap is fine from here on). */
	nb = NULL;
	if ((rc = remus_netbuffer_new(loop, qmp, &cfg, &nb)) < 0)
		fail("remus_netbuffer_new: %s", strerror(-rc));
	memset(&d, 0, sizeof(d));
	remus_netbuffer_setup(nb, on_done, &d);
	wait_done(&d, "second setup");
	remus_netbuffer_free(nb);
	n = nvals;
	run_ms(1000);
	if ((rc = count_ours()) != 3)
		fail("after free without teardown QEMU lists %d of ours, want 3 leftovers", rc);
	if (nvals != n)
		fail("a filter whose sockets were closed let %zu datagrams through", nvals - n);
	if ((rc = remus_netbuffer_new(loop, qmp, &cfg, &nb)) < 0)
		fail("remus_netbuffer_new: %s", strerror(-rc));
	memset(&d, 0, sizeof(d));
	remus_netbuffer_setup(nb, on_done, &d);
	wait_done(&d, "setup over leftovers");
	if ((rc = count_ours()) != 3)
		fail("setup over leftovers: QEMU lists %d of ours, want 3", rc);
	run_ms(EPOCH_MS);
	checkpoint(nb, 1);
	remus_netbuffer_commit(nb, 1);
	run_ms(300);
	if (nvals < n + 2)
		fail("setup over leftovers: its commit released %zu datagrams", nvals - n);
	memset(&d, 0, sizeof(d));
	remus_netbuffer_teardown(nb, true, on_done, &d);
	wait_done(&d, "last teardown");
	remus_netbuffer_free(nb);
	if ((rc = count_ours()) != 0)
		fail("after the last teardown QEMU still lists %d of ours", rc);
	run_ms(500);
	for (; n + 1 < nvals; n++)
		if (vals[n + 1] <= vals[n])
			fail("after the restart: 'counter %" PRIu64 "' after 'counter %" PRIu64 "'",
			     vals[n + 1], vals[n]);
	printf("netbuffer-qemu[%s]: PASS (leftovers of a dead run removed; %zu datagrams "
	       "in all)\n", mode, nvals);
	remus_qmp_free(qmp);
	remus_test_qemu_stop(&vm);
	remus_loop_del_fd(loop, ufd);
	close(ufd);
	remus_loop_free(loop);
	return 0;
}
