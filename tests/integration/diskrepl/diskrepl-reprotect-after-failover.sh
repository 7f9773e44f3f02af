#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The role switch after a failover, with a guest writing to its disk
# (diskrec: O_DIRECT records, checked against the guest's memory):
#
#   host A primary --kill--> host B takes over --ctl protect--> standby C
#   on host A's old image (resynced by extent hashes, not copied) --kill-->
#   C takes over.
#
# Checks: no DISKREC-VIOLATION in any guest (disk and memory agree after
# each failover); the guest's sequence goes on across both failovers; the
# resync to C sends only the extents that changed, a small part of the
# disk; and C's image, checked on the host after the end, holds a valid
# ring up to the last record the guest wrote (diskrec mode=verify).
source "$REMUS_SOURCE_DIR/tests/integration/engine/lib.sh"

DISKREC=$REMUS_BUILD_DIR/vm-images/guest/diskrec
size=$((64 << 20))
truncate -s $size "$T/a.raw" "$T/b.raw"
guest="remus.run=diskrec remus.args=dev=/dev/vda,ms=20,slots=2048,scan=200,every=25"
hb=(--heartbeat 200 --miss 10)

blk() { echo "-blockdev driver=nbd,node-name=vda,server.type=unix,server.path=$1,export=vda"
	echo "-device virtio-blk-pci,drive=vda"; }

# standby NAME IMAGE PORT: a standby remusd + QEMU named NAME
standby() {
	local name=$1 img=$2 port=$3
	"$REMUSD" standby --qmp "$T/$name.qmp" --incoming "$T/$name.in" --listen "127.0.0.1:$port" \
		--ctl "$T/$name.ctl" "${hb[@]}" --metrics "$T/$name.metrics" --netbuffer off \
		--interval 500 --disk "vda,image=$img,socket=$T/$name.nbd" >"$T/$name.log" 2>&1 &
	SBY=$!
	track "$SBY"
	watch_daemon "$SBY" "$name remusd" "$T/$name.log"
	wait_for 10 "$name's NBD socket" test -S "$T/$name.nbd"
	# shellcheck disable=SC2046
	start_qemu "$name" "$guest" $(blk "$T/$name.nbd") -incoming "unix:$T/$name.in"
	SBY_QEMU=$QEMU_PID
}
state() { json_get "$(ctl "$T/$1.ctl" status)" state; }
is_state() { [ "$(state "$1")" = "$2" ]; }
epochs_of() { count_lines "$T/$1.metrics"; }
epochs_past() { [ "$(epochs_of "$1")" -ge "$2" ]; }
last_seq() { serial "$1" | grep -o 'diskrec seq=[0-9]*' | tail -1 | grep -o '[0-9]*$' || echo 0; }
no_violation() {
	if serial "$1" | grep -q DISKREC-VIOLATION; then
		fail "$1: $(serial "$1" | grep DISKREC-VIOLATION | head -3)"
	fi
}
kill_mid_epoch() { # kill_mid_epoch PIDS...: at a random point of a 500 ms epoch
	sleep "$(python3 -c 'import random; print(random.uniform(0.1, 0.4))')"
	kill -9 "$@"
}

pa=$(free_port) pb=$(free_port)
standby b "$T/b.raw" "$pa"
b_remusd=$SBY b_qemu=$SBY_QEMU
"$REMUSD" primary --qmp "$T/a.qmp" --standby "127.0.0.1:$pa" --interval 500 "${hb[@]}" \
	--ctl "$T/a.ctl" --metrics "$T/a.metrics" --netbuffer off \
	--disk "vda,image=$T/a.raw,socket=$T/a.nbd" >"$T/a.log" 2>&1 &
a_remusd=$!
track "$a_remusd"
watch_daemon "$a_remusd" "a remusd" "$T/a.log"
wait_for 10 "a's NBD socket" test -S "$T/a.nbd"
# shellcheck disable=SC2046
start_qemu a "$guest" $(blk "$T/a.nbd")
a_qemu=$QEMU_PID
wait_for 90 "the guest on A to write records" has_serial a 'diskrec seq=50 ok'
wait_for 60 "6 epochs on A" epochs_past a 6

# Host A dies.
unwatch_daemon "$a_remusd"
kill_mid_epoch "$a_remusd" "$a_qemu"
a_last=$(last_seq a)
wait_for 30 "B to take over" is_state b active
b_ran() { [ "$(last_seq b)" -gt "$a_last" ]; }
wait_for 30 "the guest on B to write past A's last record ($a_last)" b_ran
no_violation a
no_violation b
echo "failover A->B: A's last record $a_last, B continues at $(last_seq b)"

# Host A comes back as the standby on its old image; B protects to it.
rm -f "$T/c.in"
standby c "$T/a.raw" "$pb"
c_remusd=$SBY c_qemu=$SBY_QEMU
ctl "$T/b.ctl" protect "127.0.0.1:$pb" >/dev/null
wait_for 60 "B to protect to C" epochs_past b 4
disks=$(ctl "$T/b.ctl" status)
sent=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["disks"][0]["resync_sent_extents"])' "$disks")
compared=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["disks"][0]["resync_compared"])' "$disks")
echo "resync B->C: $sent of $compared extents sent"
[ "$compared" -eq $((size / 65536)) ] || fail "resync compared $compared extents, expected all $((size / 65536))"
[ "$sent" -ge 1 ] || fail "resync sent nothing, but B wrote after the failover"
[ "$sent" -le $((compared / 8)) ] || fail "resync sent $sent extents: more than an incremental resync should"
wait_for 30 "more epochs B->C" epochs_past b 8

# Host B dies.
unwatch_daemon "$b_remusd"
kill_mid_epoch "$b_remusd" "$b_qemu"
b_last=$(last_seq b)
wait_for 30 "C to take over" is_state c active
c_ran() { [ "$(last_seq c)" -gt "$b_last" ]; }
wait_for 30 "the guest on C to write past B's last record ($b_last)" c_ran
sleep 2
no_violation b
no_violation c
c_last=$(last_seq c)
echo "failover B->C: B's last record $b_last, C continues at $c_last"

# The image on C's host, checked on the host once the guest is gone.
kill -9 "$c_qemu"
wait "$c_qemu" 2>/dev/null || true
"$DISKREC" mode=verify dev="$T/a.raw" slots=2048 seq=0 min="$c_last" direct=0 >"$T/verify.log" 2>&1 ||
	fail "C's image does not hold a valid ring up to $c_last: $(tail -n 3 "$T/verify.log")"
echo "verify: $(tail -n 1 "$T/verify.log")"
echo PASS
