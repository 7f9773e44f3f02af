// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * plugtest: the plug netbuffer backend's full cycle, run as /bin/plugtest
 * inside the test guest (a Debian kernel with sch_plug, ifb, act_mirred,
 * sch_ingress, cls_u32, tun and veth loaded: remus.modules=tc,tun,veth).
 * Built statically and added to the guest's initramfs as an overlay by
 * this directory's CMakeLists.txt; driven by plug-guest.sh.
 *
 * Runs the refusals and the full cycle (plug_cycle.h) on a tun/tap device
 * "rtap0", the way QEMU's tap backend feeds a host, then the full cycle on
 * a veth pair "rveth0"/"rveth1".  Prints one PASS/FAIL line per check and
 * a summary; exits 0 only if every check passed.
 *
 * Arguments (key=value): only=tun|veth runs one kind of tap.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "plug_cycle.h"

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
		    (strcmp(argv[i] + 5, "tun") == 0 || strcmp(argv[i] + 5, "veth") == 0)) {
			only = argv[i] + 5;
		} else {
			fprintf(stderr, "plugtest: unknown argument '%s' (only=tun|veth)\n",
				argv[i]);
			return 2;
		}
	}
	/* The backend's own messages (expected refusals included) are
	 * warnings and errors; keep the console to those. */
	remus_log_set_level(REMUS_LOG_WARN);
	if (!only || strcmp(only, "tun") == 0)
		fails += run_tun();
	if (!only || strcmp(only, "veth") == 0)
		fails += run_veth();
	printf("plugtest: %d check(s) failed\n", fails);
	return fails ? 1 : 0;
}
