#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vm-dirty-resume: the property dirty exists for.  Guest A runs dirty; after
# a few checksum lines it is stopped and migrated to a file (HMP "migrate
# file:"), then A is killed and guest B is started from that file with
# -incoming and continued.  B must carry on A's sequence: its first checksum
# line is A's last seq + 1, the next ones follow, none is a MISMATCH (so
# B re-read its whole region and found exactly what A had written), and
# each sum equals the host reference run of the same binary with the same
# arguments.  This is the check later Remus tests make after a failover.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

dirty_args="mb=8,mbps=4"
host_dirty=$vm/guest/dirty
[ -x "$host_dirty" ] || fail "$host_dirty is missing; cmake --build <build> --target vm-images"

# check_resumed FIRST < serial: seqs FIRST, FIRST+1, FIRST+2 (at least),
# well-formed, no MISMATCH.
check_resumed() {
	awk -v first="$1" '
		BEGIN { n = first; re = "^dirty seq=[0-9]+ sum="; for (i = 0; i < 16; i++) re = re "[0-9a-f]"; re = re "$" }
		/MISMATCH/ { print; exit 1 }
		/^dirty / {
			if ($0 !~ re) { print "malformed: " $0; exit 1 }
			split($2, s, "=")
			if (s[2] != n) { print "seq " s[2] " where " n " was expected"; exit 1 }
			n++
		}
		END { if (n < first + 3) { print "only " n - first " lines after the resume"; exit 1 } }'
}
self_test_resumed() { check_resumed 4; }
good='dirty seq=4 sum=0123456789abcdef\ndirty seq=5 sum=0123456789abcdef\ndirty seq=6 sum=0123456789abcdef\n'
self_test self_test_resumed "$good" "${good/seq=4/seq=0}"
self_test self_test_resumed "$good" "${good}dirty MISMATCH seq=7 sum=0 expected=1\n"

mkfifo "$dir/a.mon" "$dir/b.mon"
exec 5<>"$dir/a.mon" 6<>"$dir/b.mon"

GUEST_STDIN=$dir/a.mon guest_boot "$dir/a" "$vm" "$accel" \
	"quiet remus.run=dirty remus.args=$dirty_args" -monitor stdio
pid_a=$GUEST_PID
echo "$name: guest A: QEMU pid $pid_a, accel $accel"
guest_wait "$dir/a" '^dirty seq=2 ' 150 "$pid_a" || fail "guest A printed no 'dirty seq=2'"
guest_hmp 5 stop
guest_hmp 5 "migrate file:$dir/snapshot"
for _ in $(seq 60); do
	guest_hmp 5 "info migrate"
	guest_wait_qemu "$dir/a" '^Migration status: (completed|failed)' 1 "$pid_a" 2>/dev/null && break
done
guest_wait_qemu "$dir/a" '^Migration status: completed' 1 "$pid_a" ||
	fail "migrating guest A to $dir/snapshot did not complete: $(tail -n 5 "$dir/a.qemu")"
last=$(guest_serial "$dir/a" | sed -n 's/^dirty seq=\([0-9]*\) .*/\1/p' | tail -n1)
guest_stop "$pid_a"
echo "$name: guest A stopped after seq=$last, snapshot $(stat -c %s "$dir/snapshot") bytes"

GUEST_STDIN=$dir/b.mon guest_boot "$dir/g" "$vm" "$accel" \
	"quiet remus.run=dirty remus.args=$dirty_args" -monitor stdio \
	-incoming "file:$dir/snapshot"
pid_b=$GUEST_PID
echo "$name: guest B: QEMU pid $pid_b, resuming from the snapshot"
for _ in $(seq 60); do
	guest_hmp 6 "info status"
	guest_wait_qemu "$dir/g" '^VM status: (paused|running)' 1 "$pid_b" 2>/dev/null && break
done
guest_hmp 6 cont
first=$((last + 1))
guest_wait "$dir/g" "^dirty seq=$((first + 2)) " 60 "$pid_b" ||
	fail "guest B did not go on to seq=$((first + 2))"
why=$(guest_serial "$dir/g" | check_resumed "$first") || fail "guest B's checksum lines: $why"

"$host_dirty" ${dirty_args//,/ } count=$((first + 2)) >"$dir/host.out" 2>&1 ||
	fail "the host reference run of $host_dirty failed: $(cat "$dir/host.out")"
grep '^dirty seq=' "$dir/host.out" | tail -n +$((first + 1)) | head -n 3 >"$dir/host.sums"
guest_serial "$dir/g" | grep '^dirty seq=' | head -n 3 >"$dir/guest.sums"
diff -u "$dir/host.sums" "$dir/guest.sums" >&2 ||
	fail "guest B's sums differ from the host's for the same arguments ($dirty_args)"
echo "$name: PASS: A stopped at seq=$last; B resumed with seq=$first..$((first + 2)), memory verified, sums equal the host's"
