#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vm-dirty: the dirty program runs in the guest and prints well-formed
# checksum lines "dirty seq=N sum=<16 hex digits>" for seq 0, 1, 2, ...
# with no MISMATCH, exits 0 after count= seconds and the guest powers off.
# Because the region's content is a pure function of the arguments and seq,
# the same static binary run on the host with the same arguments must print
# the same sums: that checks the checksum lines are not just well-formed but
# right, and that the guest's memory held what was written.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

dirty_args="mb=8,mbps=4,count=4"
host_dirty=$vm/guest/dirty

# check_dirty < serial: one start line, seq 0..4 consecutive, well-formed.
check_dirty() {
	# No {16}: mawk, Debian's default awk, has no interval expressions.
	awk '
		BEGIN { re = "^dirty seq=[0-9]+ sum="; for (i = 0; i < 16; i++) re = re "[0-9a-f]"; re = re "$" }
		/^dirty start / { start++; next }
		/MISMATCH/ { print; exit 1 }
		/^dirty / {
			if ($0 !~ re) { print "malformed: " $0; exit 1 }
			split($2, s, "=")
			if (s[2] != n) { print "seq " s[2] " where " n " was expected"; exit 1 }
			n++
		}
		END { if (start != 1 || n != 5) { print "start lines=" start " seqs=" n; exit 1 } }'
}
good='dirty start mb=8\ndirty seq=0 sum=0123456789abcdef\ndirty seq=1 sum=0123456789abcdef\ndirty seq=2 sum=0123456789abcdef\ndirty seq=3 sum=0123456789abcdef\ndirty seq=4 sum=0123456789abcdef\n'
self_test check_dirty "$good" "${good/seq=3 sum=0123456789abcdef/seq=3 sum=0123456789abcdeg}"
self_test check_dirty "$good" "${good/seq=2/seq=7}"
self_test check_dirty "$good" "${good}dirty MISMATCH seq=5 sum=0 expected=1\n"

[ -x "$host_dirty" ] || fail "$host_dirty is missing; cmake --build <build> --target vm-images"
guest_boot "$dir/g" "$vm" "$accel" "quiet remus.run=dirty remus.args=$dirty_args"
echo "$name: QEMU pid $GUEST_PID, accel $accel, serial $dir/g.serial"
# The host reference run takes count= seconds; do it while the guest boots.
"$host_dirty" ${dirty_args//,/ } >"$dir/host.out" 2>&1 &
host_pid=$!
guest_wait "$dir/g" '^GUEST-UP$' 120 || fail "no GUEST-UP line"
guest_wait "$dir/g" '^GUEST-EXIT status=' 90 || fail "dirty did not finish its 4 seconds"
guest_serial "$dir/g" | grep '^GUEST-EXIT status=0$' >/dev/null || fail "dirty exited non-zero"
why=$(guest_serial "$dir/g" | check_dirty) || fail "checksum lines are wrong: $why"
wait "$host_pid" || fail "the host reference run of $host_dirty failed: $(cat "$dir/host.out")"
guest_serial "$dir/g" | grep '^dirty seq=' >"$dir/guest.sums"
grep '^dirty seq=' "$dir/host.out" >"$dir/host.sums"
diff -u "$dir/host.sums" "$dir/guest.sums" >&2 ||
	fail "the guest's sums differ from the host's for the same arguments ($dirty_args)"
# The guest powers off by itself after the program exits.
for _ in $(seq 100); do kill -0 "$GUEST_PID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$GUEST_PID" 2>/dev/null && fail "QEMU still runs 20 s after the guest's program exited"
echo "$name: PASS: $(wc -l <"$dir/guest.sums") checksum lines, equal to the host's, guest powered off"
