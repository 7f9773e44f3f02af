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
source "$(dirname "$0")/../../lib/remus.sh"

dirty_args="mb=8,mbps=4"
need DIRTY

# check_resumed FIRST < serial: seqs FIRST, FIRST+1, FIRST+2 (at least),
# well-formed, no MISMATCH, no new start.
check_resumed() { check_dirty_lines "$1" 3 "" 0; }
self_test_resumed() { check_resumed 4; }
good='dirty seq=4 sum=0123456789abcdef\ndirty seq=5 sum=0123456789abcdef\ndirty seq=6 sum=0123456789abcdef\n'
self_test self_test_resumed "$good" "${good/seq=4/seq=0}"
self_test self_test_resumed "$good" "${good}dirty MISMATCH seq=7 sum=0 expected=1\n"

mkfifo "$T/a.mon" "$T/b.mon"
exec 5<>"$T/a.mon" 6<>"$T/b.mon"

start_guest a "quiet remus.run=dirty remus.args=$dirty_args" --monitor "$T/a.mon"
pid_a=$QEMU_PID
echo "$TEST_NAME: guest A: QEMU pid $pid_a, accel $ACCEL"
wait_serial a '^dirty seq=2 ' 150 "guest A to print 'dirty seq=2'"
guest_hmp 5 stop
guest_hmp 5 "migrate file:$T/snapshot"
for _ in $(seq 60); do
	guest_hmp 5 "info migrate"
	guest_wait_qemu "$T/a" '^Migration status: (completed|failed)' 1 "$pid_a" 2>/dev/null && break
done
guest_wait_qemu "$T/a" '^Migration status: completed' 1 "$pid_a" ||
	fail "migrating guest A to $T/snapshot did not complete: $(tail -n 5 "$T/a.qemu")"
last=$(serial a | sed -n 's/^dirty seq=\([0-9]*\) .*/\1/p' | tail -n1)
guest_stop "$pid_a"
echo "$TEST_NAME: guest A stopped after seq=$last, snapshot $(stat -c %s "$T/snapshot") bytes"

start_guest g "quiet remus.run=dirty remus.args=$dirty_args" --monitor "$T/b.mon" \
	--incoming "file:$T/snapshot"
pid_b=$QEMU_PID
echo "$TEST_NAME: guest B: QEMU pid $pid_b, resuming from the snapshot"
for _ in $(seq 60); do
	guest_hmp 6 "info status"
	guest_wait_qemu "$T/g" '^VM status: (paused|running)' 1 "$pid_b" 2>/dev/null && break
done
guest_hmp 6 cont
first=$((last + 1))
wait_serial g "^dirty seq=$((first + 2)) " 60 "guest B to go on to seq=$((first + 2))"
why=$(serial g | check_resumed "$first") || fail "guest B's checksum lines: $why"

"$DIRTY" ${dirty_args//,/ } count=$((first + 2)) >"$T/host.out" 2>&1 ||
	fail "the host reference run of $DIRTY failed: $(cat "$T/host.out")"
grep '^dirty seq=' "$T/host.out" | tail -n +$((first + 1)) | head -n 3 >"$T/host.sums"
serial g | grep '^dirty seq=' | head -n 3 >"$T/guest.sums"
diff -u "$T/host.sums" "$T/guest.sums" >&2 ||
	fail "guest B's sums differ from the host's for the same arguments ($dirty_args)"
echo "$TEST_NAME: PASS: A stopped at seq=$last; B resumed with seq=$first..$((first + 2)), memory verified, sums equal the host's"
