// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * plugtest: the plug netbuffer backend's full cycle, run as /bin/plugtest
 * inside the test guest (a Debian kernel with sch_plug, ifb, act_mirred,
 * sch_ingress, cls_u32, tun and veth loaded: remus.modules=tc,tun,veth).
 * Built statically and added to the guest's initramfs as an overlay by
 * this directory's CMakeLists.txt; driven by netbuffer-plug-guest.sh.
 *
 * Runs the refusals and the full cycle (plug_cycle.h) on a tun/tap device
 * "rtap0", the way QEMU's tap backend feeds a host, then the full cycle on
 * a veth pair "rveth0"/"rveth1", then the public netbuffer interface
 * (netbuffer_api.h) with the plug backend on two taps "rapi0"/"rapi1".
 * Prints one PASS/FAIL line per check and a summary; exits 0 only if
 * every check passed.
 *
 * Arguments (key=value): only=tun|veth|api runs one phase.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "netbuffer_api.h"
#include "support/plug_cycle.h"

/* Every device created from now on (the backend's IFBs above all) starts
 * without IPv6.  An IFB with IPv6 sends its own router solicitations out
 * of its plug qdisc, where they are counted as held frames at times the
 * checks cannot predict (the IFB drops them on release: they were not
 * redirected).  Returns 0 or -errno. */
static int no_ipv6_on_new_devices(void)
{
	const char *path = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* a kernel without IPv6 */
	if (write(fd, "1", 1) != 1)
		rc = -errno;
	close(fd);
	if (rc)
		fprintf(stderr, "plugtest: cannot write %s: %s\n", path, strerror(-rc));
	return rc;
}

static int run_tun(void)
{
	struct plug_tap t;
	int fails;

	if (plug_tap_create_tun(&t, "rtap0") < 0) {
		printf("FAIL tun/setup: cannot create the tap rtap0\n");
		plug_tap_destroy(&t);
		return 1;
	}
	fails = plug_checks_refusals(&t);
	fails += plug_checks_cycle(&t);
	plug_tap_destroy(&t);
	return fails;
}

static int run_veth(void)
{
	struct plug_tap t;
	int fails;

	if (plug_tap_create_veth(&t, "rveth0", "rveth1") < 0) {
		printf("FAIL veth/setup: cannot create the veth pair rveth0/rveth1\n");
		plug_tap_destroy(&t);
		return 1;
	}
	fails = plug_checks_cycle(&t);
	plug_tap_destroy(&t);
	return fails;
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	int i, fails = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		if (strncmp(argv[i], "only=", 5) == 0 &&
		    (strcmp(argv[i] + 5, "tun") == 0 || strcmp(argv[i] + 5, "veth") == 0 ||
		     strcmp(argv[i] + 5, "api") == 0)) {
			only = argv[i] + 5;
		} else {
			fprintf(stderr, "plugtest: unknown argument '%s' (only=tun|veth|api)\n",
				argv[i]);
			return 2;
		}
	}
	/* The backend's own messages (expected refusals included) are
	 * warnings and errors; keep the console to those. */
	remus_log_set_level(REMUS_LOG_WARN);
	if (no_ipv6_on_new_devices() < 0)
		return 1;
	for (i = 0; i < 3; i++) {
		static const char *const names[] = { "tun", "veth", "api" };
		static int (*const phases[])(void) = { run_tun, run_veth, netbuffer_api_checks };
		long long start = plug_now_ms();
		int f;

		if (only && strcmp(only, names[i]) != 0)
			continue;
		f = phases[i]();
		/* The run's cost under TCG, for keeping it short. */
		printf("plugtest: phase %s: %d failed, %lld ms\n", names[i], f,
		       plug_now_ms() - start);
		fails += f;
	}
	printf("plugtest: %d check(s) failed\n", fails);
	return fails ? 1 : 0;
}
