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
source "$(dirname "$0")/../../lib/remus.sh"

dirty_args="mb=8,mbps=4,count=4"
need DIRTY

# check_dirty < serial: one start line, seq 0..4 consecutive, well-formed.
check_dirty() { check_dirty_lines 0 5 5 1; }
good='dirty start mb=8\ndirty seq=0 sum=0123456789abcdef\ndirty seq=1 sum=0123456789abcdef\ndirty seq=2 sum=0123456789abcdef\ndirty seq=3 sum=0123456789abcdef\ndirty seq=4 sum=0123456789abcdef\n'
self_test check_dirty "$good" "${good/seq=3 sum=0123456789abcdef/seq=3 sum=0123456789abcdeg}"
self_test check_dirty "$good" "${good/seq=2/seq=7}"
self_test check_dirty "$good" "${good}dirty MISMATCH seq=5 sum=0 expected=1\n"

start_guest g "quiet remus.run=dirty remus.args=$dirty_args"
echo "$TEST_NAME: QEMU pid $QEMU_PID, accel $ACCEL, serial $T/g.serial"
# The host reference run takes count= seconds; do it while the guest boots.
"$DIRTY" ${dirty_args//,/ } >"$T/host.out" 2>&1 &
host_pid=$!
track "$host_pid"
wait_serial g '^GUEST-UP$' 120 "the GUEST-UP line"
wait_serial g '^GUEST-EXIT status=' 90 "dirty to finish its 4 seconds"
has_serial g '^GUEST-EXIT status=0$' || fail "dirty exited non-zero"
why=$(serial g | check_dirty) || fail "checksum lines are wrong: $why"
wait "$host_pid" || fail "the host reference run of $DIRTY failed: $(cat "$T/host.out")"
serial g | grep '^dirty seq=' >"$T/guest.sums"
grep '^dirty seq=' "$T/host.out" >"$T/host.sums"
diff -u "$T/host.sums" "$T/guest.sums" >&2 ||
	fail "the guest's sums differ from the host's for the same arguments ($dirty_args)"
# The guest powers off by itself after the program exits.
wait_for 20 "QEMU to exit after the guest's program exited" gone "$QEMU_PID"
echo "$TEST_NAME: PASS: $(wc -l <"$T/guest.sums") checksum lines, equal to the host's, guest powered off"
