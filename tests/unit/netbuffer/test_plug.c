// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The plug backend against the running kernel, inside a private network
 * namespace with a veth pair (so the host is never touched).
 *
 * Whether the kernel has sch_plug is decided independently, by asking
 * iproute2's tc to add a plug qdisc.  Then:
 *   - with sch_plug: open installs a plug root qdisc (tc sees it), barrier
 *     and commit succeed, close removes it again;
 *   - without (these build machines): open fails with -ENOENT and leaves
 *     the device's qdisc as it was.
 * A build without libnl must answer -ENOTSUP.  Needs root (CAP_NET_ADMIN);
 * skipped otherwise.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "netbuffer/plug.h"

#define DEV "remus-plug0"

static bool in_netns;

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Output of "tc qdisc show dev DEV". */
static void qdisc_show(char *out, size_t n)
{
	FILE *f = popen("tc qdisc show dev " DEV " 2>&1", "r");
	size_t got;

	assert_non_null(f);
	got = fread(out, 1, n - 1, f);
	out[got] = 0;
	pclose(f);
}

static int setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	if (unshare(CLONE_NEWNET) != 0)
		return -1;
	in_netns = true;
	return run("ip link add " DEV " type veth peer name remus-plug1 && ip link set " DEV " up");
}

static void test_bad_args(void **state)
{
	struct remus_netbuffer_plug *p = NULL;

	if (!remus_netbuffer_plug_built()) {
		assert_int_equal(remus_netbuffer_plug_open(DEV, 1000, &p), -ENOTSUP);
		assert_null(p);
		return;
	}
	if (!in_netns)
		skip();
	assert_int_equal(remus_netbuffer_plug_open("remus-nodev", 1000, &p), -ENODEV);
	assert_int_equal(remus_netbuffer_plug_open(DEV, 0, &p), -EINVAL);
	assert_int_equal(remus_netbuffer_plug_open("a-name-longer-than-ifnamsiz", 10, &p),
			 -EINVAL);
	assert_null(p);
	remus_netbuffer_plug_close(NULL);
}

static void test_plug_cycle_or_clean_refusal(void **state)
{
	struct remus_netbuffer_plug *p = NULL;
	char before[512], after[512];
	bool kernel_has_plug;
	int rc;

	if (!remus_netbuffer_plug_built() || !in_netns)
		skip();
	/* Independent probe: does the kernel accept a plug qdisc at all? */
	kernel_has_plug = run("tc qdisc add dev " DEV " root handle 1: plug >/dev/null 2>&1"
			      " && tc qdisc del dev " DEV " root") == 0;
	qdisc_show(before, sizeof(before));
	assert_null(strstr(before, "plug"));

	rc = remus_netbuffer_plug_open(DEV, 64 * 1024, &p);
	if (!kernel_has_plug) {
		assert_int_equal(rc, -ENOENT);
		assert_null(p);
		qdisc_show(after, sizeof(after));
		assert_string_equal(before, after);
		return;
	}
	assert_int_equal(rc, 0);
	qdisc_show(after, sizeof(after));
	assert_non_null(strstr(after, "qdisc plug 52ed:"));
	assert_int_equal(remus_netbuffer_plug_barrier(p), 0);
	assert_int_equal(remus_netbuffer_plug_commit(p), 0);
	assert_int_equal(remus_netbuffer_plug_commit(p), 0);
	remus_netbuffer_plug_close(p);
	qdisc_show(after, sizeof(after));
	assert_null(strstr(after, "plug"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_plug_cycle_or_clean_refusal),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
