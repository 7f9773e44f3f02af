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
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

size=$((64 << 20))
truncate -s $size "$T/a.raw" "$T/b.raw"
guest=$(append_diskrec ms=20 slots=2048 scan=200 every=25)
# Options a standby needs as well: it becomes a primary after the switch.
# The guest has no NIC: an output buffer would have nothing to hold.
role_opts=(--interval 500 --heartbeat 200 --miss 10 --netbuffer off)

# standby NAME IMAGE PORT: a standby remusd + QEMU named NAME
standby() {
	local name=$1 img=$2 port=$3
	start_remusd "$name" standby --qmp "$T/$name.qmp" --incoming "$T/$name.in" \
		--listen "127.0.0.1:$port" --ctl "$T/$name.ctl" --metrics "$T/$name.metrics" \
		"${role_opts[@]}" --disk "vda,image=$img,socket=$T/$name.nbd"
	SBY=$REMUSD_PID
	wait_for 10 "$name's NBD socket" test -S "$T/$name.nbd"
	start_guest "$name" "$guest" --nbd "vda=$T/$name.nbd" --incoming "unix:$T/$name.in"
	SBY_QEMU=$QEMU_PID
}
epochs_of() { count_lines "$T/$1.metrics"; }
epochs_past() { [ "$(epochs_of "$1")" -ge "$2" ]; }
last_seq() { diskrec_last "$1" | grep . || echo 0; }
# fail_over FROM FROM_REMUSD FROM_QEMU TO: host FROM dies at a random point
# of a 500 ms epoch; TO takes over and its guest writes past FROM's last
# record, neither guest having seen its disk differ from its memory.
# Prints a line, sets LAST (FROM's last record) and NOW (TO's).
fail_over() {
	local from=$1 to=$4
	sleep_into_epoch 500 0.2 0.8
	kill_now "$2" "$3"
	LAST=$(last_seq "$from")
	wait_for 30 "${to^^} to take over" in_state "$T/$to.ctl" "$ST_ACTIVE"
	wrote_past() { [ "$(last_seq "$to")" -gt "$LAST" ]; }
	wait_for 30 "the guest on ${to^^} to write past ${from^^}'s last record ($LAST)" wrote_past
	sleep 2
	no_violation "$from"
	no_violation "$to"
	NOW=$(last_seq "$to")
	echo "failover ${from^^}->${to^^}: ${from^^}'s last record $LAST, ${to^^} continues at $NOW"
}

pa=$(free_port) pb=$(free_port)
standby b "$T/b.raw" "$pa"
b_remusd=$SBY b_qemu=$SBY_QEMU
start_remusd a primary --qmp "$T/a.qmp" --standby "127.0.0.1:$pa" --ctl "$T/a.ctl" \
	--metrics "$T/a.metrics" "${role_opts[@]}" --disk "vda,image=$T/a.raw,socket=$T/a.nbd"
a_remusd=$REMUSD_PID
wait_for 10 "a's NBD socket" test -S "$T/a.nbd"
start_guest a "$guest" --nbd "vda=$T/a.nbd"
a_qemu=$QEMU_PID
wait_serial a 'diskrec seq=50 ok' 90 "the guest on A to write records"
wait_for 60 "6 epochs on A" epochs_past a 6

# Host A dies.
fail_over a "$a_remusd" "$a_qemu" b

# Host A comes back as the standby on its old image; B protects to it.
rm -f "$T/c.in"
standby c "$T/a.raw" "$pb"
c_qemu=$SBY_QEMU
ctl "$T/b.ctl" protect "127.0.0.1:$pb" >/dev/null
wait_for 60 "B to protect to C" epochs_past b 4
st=$(ctl "$T/b.ctl" status)
sent=$(json_get "$st" disks.0.resync_sent_extents)
compared=$(json_get "$st" disks.0.resync_compared)
echo "resync B->C: $sent of $compared extents sent"
[ "$compared" -eq $((size / 65536)) ] || fail "resync compared $compared extents, expected all $((size / 65536))"
[ "$sent" -ge 1 ] || fail "resync sent nothing, but B wrote after the failover"
[ "$sent" -le $((compared / 8)) ] || fail "resync sent $sent extents: more than an incremental resync should"
wait_for 30 "more epochs B->C" epochs_past b 8

# Host B dies.
fail_over b "$b_remusd" "$b_qemu" c
c_last=$NOW

# The image on C's host, checked on the host once the guest is gone.
kill_now "$c_qemu"
"$DISKREC" mode=verify dev="$T/a.raw" slots=2048 seq=0 min="$c_last" direct=0 >"$T/verify.log" 2>&1 ||
	fail "C's image does not hold a valid ring up to $c_last: $(tail -n 3 "$T/verify.log")"
echo "verify: $(tail -n 1 "$T/verify.log")"
echo PASS
