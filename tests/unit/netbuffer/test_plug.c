// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The plug backend against the running kernel, inside a private network
 * namespace with a veth pair standing in for the guest's tap (so the host
 * is never touched).  The checks themselves are shared with the guest test
 * (tests/support/plug_cycle.c, compiled into this file
 * because this directory's CMakeLists.txt lists one source).
 *
 *   - argument checks and the IFB name;
 *   - refusals that leave the host unchanged: no such tap (-ENODEV), a
 *     foreign device under the IFB's name (-EEXIST), a foreign ingress or
 *     clsact qdisc on the tap (-EBUSY);
 *   - whether the kernel has sch_plug is decided independently, by asking
 *     iproute2's tc to add a plug qdisc.  Without it (these build
 *     machines): open fails with -ENOENT, and `ip -d link`, `tc qdisc` and
 *     `tc filter` print the same before and after (the IFB it created on
 *     the way is gone again).  With it: the full cycle, as in the guest.
 *
 * A build without libnl must answer -ENOTSUP.  Needs root (CAP_NET_ADMIN);
 * skipped otherwise.
 */
#include <errno.h>
#include <net/if.h>
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

/* libnl's headers are on the include path only when the backend is built
 * (remus_netbuffer links PkgConfig::LIBNL publicly). */
#if __has_include(<netlink/netlink.h>)
#define HAVE_LIBNL 1
#include "support/plug_cycle.c"
#else
#define HAVE_LIBNL 0
#endif

#define DEV "remus-plug0"
#define PEER "remus-plug1"

static bool in_netns;
#if HAVE_LIBNL
static struct plug_tap tap;
#endif

#if HAVE_LIBNL
static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* What iproute2 shows of links, qdiscs and the tap's filters, without the
 * carrier/operstate words that change by themselves after a link is up. */
static char *iproute_show(void)
{
	FILE *f = popen("{ ip -d -o link show; tc qdisc show; tc filter show dev " DEV
			" ingress; } 2>&1 | sed -E 's/<[^>]*>//; s/ state [A-Z]+//'", "r");
	char *out = calloc(1, 16384);
	size_t got;

	assert_non_null(f);
	assert_non_null(out);
	got = fread(out, 1, 16383, f);
	out[got] = 0;
	pclose(f);
	return out;
}
#endif

static int setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	if (unshare(CLONE_NEWNET) != 0)
		return -1;
	in_netns = true;
#if HAVE_LIBNL
	if (plug_tap_create_veth(&tap, DEV, PEER) < 0)
		return -1;
#endif
	return 0;
}

static int teardown(void **state)
{
#if HAVE_LIBNL
	if (in_netns)
		plug_tap_destroy(&tap);
#endif
	return 0;
}

static void test_bad_args(void **state)
{
	struct remus_netbuffer_plug *p = NULL;
	char ifb[IF_NAMESIZE];

	if (!remus_netbuffer_plug_built()) {
		assert_int_equal(remus_netbuffer_plug_open(DEV, 1000, &p), -ENOTSUP);
		assert_null(p);
		assert_int_equal(remus_netbuffer_plug_barrier(NULL), -ENOTSUP);
		assert_int_equal(remus_netbuffer_plug_release_all(NULL), -ENOTSUP);
		remus_netbuffer_plug_free(NULL);
		return;
	}
	assert_int_equal(remus_netbuffer_plug_ifb_name("vnet0", ifb, sizeof(ifb)), 0);
	assert_string_equal(ifb, "rnb-vnet0");
	assert_int_equal(remus_netbuffer_plug_ifb_name("tap-123456789ab", ifb, sizeof(ifb)), 0);
	assert_string_equal(ifb, "rnb-tap-1234567");
	assert_int_equal(remus_netbuffer_plug_ifb_name("a-name-longer-than-ifnamsiz", ifb,
						       sizeof(ifb)), -EINVAL);
	assert_int_equal(remus_netbuffer_plug_ifb_name("vnet0", ifb, 8), -EINVAL);
	if (!in_netns)
		skip();
	assert_int_equal(remus_netbuffer_plug_open(DEV, 0, &p), -EINVAL);
	assert_int_equal(remus_netbuffer_plug_open(DEV, (uint32_t)INT32_MAX + 1, &p), -EINVAL);
	assert_int_equal(remus_netbuffer_plug_open("a-name-longer-than-ifnamsiz", 10, &p),
			 -EINVAL);
	assert_int_equal(remus_netbuffer_plug_open("", 10, &p), -EINVAL);
	assert_null(p);
	remus_netbuffer_plug_free(NULL);
}

static void test_refusals_leave_host_unchanged(void **state)
{
#if HAVE_LIBNL
	if (!in_netns)
		skip();
	assert_int_equal(plug_checks_refusals(&tap), 0);
#else
	skip();
#endif
}

static void test_cycle_or_clean_refusal(void **state)
{
#if HAVE_LIBNL
	char *before, *after;
	bool kernel_has_plug;

	if (!in_netns)
		skip();
	/* Independent probe, on the peer: does the kernel take a plug qdisc? */
	kernel_has_plug = run("tc qdisc add dev " PEER " root handle 1: plug >/dev/null 2>&1"
			      " && tc qdisc del dev " PEER " root") == 0;
	if (kernel_has_plug) {
		assert_int_equal(plug_checks_cycle(&tap), 0);
		return;
	}
	before = iproute_show();
	assert_non_null(strstr(before, DEV));
	assert_int_equal(plug_checks_no_plug(&tap), 0);
	after = iproute_show();
	assert_string_equal(before, after);
	assert_null(strstr(after, "rnb-"));
	free(before);
	free(after);
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_refusals_leave_host_unchanged),
		cmocka_unit_test(test_cycle_or_clean_refusal),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
