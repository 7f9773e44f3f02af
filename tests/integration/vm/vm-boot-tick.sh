#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vm-boot-tick: the test guest boots under QEMU, prints GUEST-UP on ttyS0
# and then ticks: at least 3 lines "tick N" numbered 1, 2, 3, ... with no
# gap or repeat.  The checker is first run on a good and a bad log so it
# provably can fail.
source "$(dirname "$0")/../../lib/remus.sh"

# check_boot_ticks < serial: GUEST-UP, then >= 3 ticks numbered 1..n.
check_boot_ticks() {
	awk '
		$0 == "GUEST-UP" { up = 1; next }
		/^tick [0-9]+$/ {
			if (!up) { print "tick before GUEST-UP"; exit 1 }
			if ($2 != n + 1) { print "tick " $2 " after tick " n; exit 1 }
			n = $2
		}
		END { if (!up || n < 3) { print "GUEST-UP=" up " ticks=" n; exit 1 } }'
}
self_test check_boot_ticks 'GUEST-UP\ntick 1\ntick 2\ntick 3\n' 'GUEST-UP\ntick 1\ntick 3\ntick 4\n'
self_test check_boot_ticks 'x\nGUEST-UP\ntick 1\ntick 2\ntick 3\ntick 4\n' 'GUEST-UP\ntick 1\ntick 2\n'

start_guest g "quiet remus.run=tick"
echo "$TEST_NAME: QEMU pid $QEMU_PID, accel $ACCEL, serial $T/g.serial"
wait_serial g '^GUEST-UP$' 120 "the GUEST-UP line"
wait_serial g '^tick 4$' 30 "a 4th tick after GUEST-UP"
why=$(serial g | check_boot_ticks) || fail "ticks are wrong: $why"
echo "$TEST_NAME: PASS: GUEST-UP and ticks $(serial g | sed -n 's/^tick //p' | tr '\n' ' ')"
