#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The guest-side checkers of the disk replication tests, without any
# replication: a plain raw image (-drive cache=none) under one QEMU.  This
# proves that the checkers pass on a correct disk and fail on a wrong one,
# with exactly the two faults a broken replication produces:
#
# 1. kill: a diskrec writer is SIGKILLed; the image (read on the host with
#    the same diskrec binary) holds a consistent ring whose newest record is
#    at least the last one the guest printed.  An exact verify against an
#    older seq must fail ("record past the checkpoint"): the host check can
#    fail too.
# 2. restart + future record: a new guest resumes the ring (resume=1) from
#    the newest record; the guest is paused (QMP stop, which drains its
#    I/O), the host forges the next three records, the guest is resumed:
#    it must report "record past the checkpoint" and exit 3.
# 3. lost writes: another resumed writer is paused, the image copied, the
#    guest runs on for 40 records, is paused again and the old copy is put
#    back under it: "record missing before the checkpoint", exit 3.
# 4. bench: diskrec mode=bench prints throughput and IOPS.
# 5. fswork: ext4 (mkfs.ext4 on the host) with the same rewind as in 3
#    under a running fswork must end in FSWORK-VIOLATION (or an ext4 error
#    that stops fswork: never in "ok" lines only); and a clean run of 8 s
#    unmounts an image that fsck.ext4 -n -f finds clean.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

slots=64
img=$T/ring.img
truncate -s 16M "$img"
writer() { append_diskrec ms=20 slots=$slots scan=20 every=10 "$@"; }
# boot NAME APPEND IMAGE: a guest on IMAGE; waits for GUEST-UP.
boot() {
	start_guest "$1" "$2" --image "$3"
	wait_serial "$1" GUEST-UP 120 "guest $1 to boot"
}
# wait_exit NAME STATUS: the guest's program exited with STATUS and QEMU
# powered off.
wait_exit() {
	wait_for 60 "guest $1 to exit with status $2" has_serial "$1" "GUEST-EXIT status=$2"
	wait_for 30 "QEMU of guest $1 to power off" gone "$QEMU_PID"
}

# --- 1. kill -------------------------------------------------------------------
boot w1 "$(writer)" "$img"
wait_for 90 "w1 to write 100 records" diskrec_reached w1 100
kill_now "$QEMU_PID"
no_violation w1
printed=$(diskrec_last w1)
# shellcheck disable=SC2046 # one seq per word
check_consecutive "w1" 10 $(diskrec_seqs w1)
last=$("$DISKREC" mode=verify dev="$img" slots=$slots min="$printed" 2>&1 |
	sed -n 's/^diskrec verify last=\([0-9]*\) ok$/\1/p')
[ -n "$last" ] || fail "after SIGKILL the ring is not consistent up to the printed seq $printed: $("$DISKREC" mode=verify dev="$img" slots=$slots min="$printed" 2>&1 | head -3)"
out=$("$DISKREC" mode=verify dev="$img" slots=$slots seq=$((last - 1)) 2>&1) &&
	fail "verify against seq $((last - 1)) passed although record $last is on disk: $out"
echo "$out" | grep -q "record past the checkpoint" ||
	fail "verify against an older seq did not report a record past the checkpoint: $out"
echo "1. kill: guest printed seq $printed, image holds a consistent ring up to $last; exact check of $((last - 1)) fails as it must"

# --- 2. restart + a record from the future -----------------------------------
boot w2 "$(writer resume=1)" "$img"
wait_serial w2 "diskrec start .* last=$last\$" 30 "w2 to resume after record $last"
wait_for 90 "w2 to write 60 records" diskrec_reached w2 $((last + 60))
qmp "$T/w2.qmp" stop >/dev/null
l2=$(host_last "$img" $slots)
for k in 1 2 3; do
	"$DISKREC" mode=forge dev="$img" slots=$slots seq=$((l2 + k)) >/dev/null
done
qmp "$T/w2.qmp" cont >/dev/null
wait_serial w2 "DISKREC-VIOLATION record past the checkpoint" 30 "w2 to notice the forged records"
wait_exit w2 3
echo "2. restart resumed after $last; forged records $((l2 + 1))..$((l2 + 3)) reported: $(serial w2 | grep VIOLATION)"

# --- 3. lost writes: an older image under a running guest ---------------------
boot w3 "$(writer resume=1)" "$img"
wait_for 90 "w3 to write 30 records" diskrec_reached w3 $((l2 + 3 + 30))
qmp "$T/w3.qmp" stop >/dev/null
l3=$(host_last "$img" $slots)
cp "$img" "$T/old.img"
qmp "$T/w3.qmp" cont >/dev/null
wait_for 60 "w3 to write 40 more records" diskrec_reached w3 $((l3 + 40))
qmp "$T/w3.qmp" stop >/dev/null
dd if="$T/old.img" of="$img" bs=1M conv=notrunc status=none
qmp "$T/w3.qmp" cont >/dev/null
wait_serial w3 "DISKREC-VIOLATION record missing before the checkpoint" 30 "w3 to notice the lost records"
wait_exit w3 3
echo "3. image rewound to record $l3 under the guest: $(serial w3 | grep VIOLATION)"

# --- 4. bench --------------------------------------------------------------------
boot b4 "remus.run=diskrec remus.args=mode=bench,dev=/dev/vda,pattern=rand,bs=65536,secs=3" "$img"
wait_exit b4 0
line=$(serial b4 | grep '^diskrec bench ' || true)
echo "$line" | grep -Eq 'ops=[1-9][0-9]* MBps=[0-9.]+ iops=[0-9.]+$' ||
	fail "bench printed no throughput line: '$line'"
echo "4. $line"

# --- 5. fswork on ext4 ------------------------------------------------------------
fs=$T/fs.img
mkfs.ext4 -q -F "$fs" 64M
fswork() { echo "remus.run=fswork remus.modules=ext4 remus.args=dev=/dev/vda,verify=10,$1"; }
fs_ops() { serial "$1" | grep -c '^fswork op=.* ok$' || true; }
fs_ops_at_least() { [ "$(fs_ops "$1")" -ge "$2" ]; }
boot f5 "$(fswork secs=0)" "$fs"
wait_for 60 "f5 to print 2 progress lines" fs_ops_at_least f5 2
qmp "$T/f5.qmp" stop >/dev/null
cp "$fs" "$T/fs-old.img"
qmp "$T/f5.qmp" cont >/dev/null
n=$(fs_ops f5)
wait_for 60 "f5 to run 3 more seconds" fs_ops_at_least f5 $((n + 3))
qmp "$T/f5.qmp" stop >/dev/null
dd if="$T/fs-old.img" of="$fs" bs=1M conv=notrunc status=none
qmp "$T/f5.qmp" cont >/dev/null
wait_serial f5 'GUEST-EXIT status=[0-9]' 60 "fswork to stop on the rewound file system"
! has_serial f5 'GUEST-EXIT status=0' || fail "fswork exited 0 on a rewound file system"
why=$(serial f5 | grep -E 'FSWORK-VIOLATION|^fswork: ' | head -n1)
[ -n "$why" ] || fail "fswork stopped on the rewound file system without saying why"
echo "5. ext4 rewound under fswork: $why"

mkfs.ext4 -q -F "$fs" 64M
boot f6 "$(fswork secs=8)" "$fs"
wait_exit f6 0
no_violation f6
has_serial f6 '^fswork done op=' || fail "fswork did not finish cleanly"
fsck=$(fsck.ext4 -n -f "$fs" 2>&1) || fail "fsck.ext4 -n -f after a clean fswork run: $fsck"
echo "5. clean fswork run: $(serial f6 | grep '^fswork done'), fsck.ext4 -n -f clean"
