#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vm-boot-tick: the test guest boots under QEMU, prints GUEST-UP on ttyS0
# and then ticks: at least 3 lines "tick N" numbered 1, 2, 3, ... with no
# gap or repeat.  The checker is first run on a good and a bad log so it
# provably can fail.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

# check_ticks < serial: GUEST-UP, then >= 3 ticks numbered 1..n.
check_ticks() {
	awk '
		$0 == "GUEST-UP" { up = 1; next }
		/^tick [0-9]+$/ {
			if (!up) { print "tick before GUEST-UP"; exit 1 }
			if ($2 != n + 1) { print "tick " $2 " after tick " n; exit 1 }
			n = $2
		}
		END { if (!up || n < 3) { print "GUEST-UP=" up " ticks=" n; exit 1 } }'
}
self_test check_ticks 'GUEST-UP\ntick 1\ntick 2\ntick 3\n' 'GUEST-UP\ntick 1\ntick 3\ntick 4\n'
self_test check_ticks 'x\nGUEST-UP\ntick 1\ntick 2\ntick 3\ntick 4\n' 'GUEST-UP\ntick 1\ntick 2\n'

guest_boot "$dir/g" "$vm" "$accel" "quiet remus.run=tick"
echo "$name: QEMU pid $GUEST_PID, accel $accel, serial $dir/g.serial"
guest_wait "$dir/g" '^GUEST-UP$' 120 || fail "no GUEST-UP line"
guest_wait "$dir/g" '^tick 4$' 30 || fail "GUEST-UP but no 4th tick within 30 s"
why=$(guest_serial "$dir/g" | check_ticks) || fail "ticks are wrong: $why"
echo "$name: PASS: GUEST-UP and ticks $(guest_serial "$dir/g" | sed -n 's/^tick //p' | tr '\n' ' ')"
