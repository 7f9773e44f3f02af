#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Disk replication end to end, with the guest running (tick) on a disk
# that remusd serves over NBD, and writes made through the primary's NBD
# export with qemu-io (what a guest write looks like to remusd):
#
# 1. Initial sync: the primary image has 3 MiB of random data in three
#    places, the standby's is a new sparse file.  Protection starts only
#    after the resync, which must send exactly the 48 non-zero 64 KiB
#    extents; the standby image then equals the primary's byte for byte.
# 2. Replication: a 1 MiB write while protected reaches the standby image
#    with the next committed epoch (images equal again).
# 3. Incremental resync: the standby remusd and QEMU are killed; a 512 KiB
#    write is made while unprotected; a new standby on the old image
#    receives only the 8 extents that changed (not the 64 MiB disk), and
#    the images are equal again.
# 4. A zero write while protected is replicated as such.
source "$(dirname "$0")/../../lib/remus.sh"

command -v qemu-io >/dev/null || fail "qemu-io is missing (apt-get install qemu-utils)"
size=$((64 << 20))
P=$T/pri.raw S=$T/sby.raw
truncate -s $size "$P" "$S"
for at in 1 17 40; do # MiB offsets: 1 MiB of random data each
	dd if=/dev/urandom of="$P" bs=1M seek=$at count=1 conv=notrunc status=none
done

port=$(free_port)

start_standby() {
	start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
		--ctl "$T/sby.ctl" --heartbeat 200 --miss 10 --disk "vda,image=$S,socket=$T/sby.nbd"
	SBY_PID=$REMUSD_PID
	wait_for 10 "the standby's NBD socket" test -S "$T/sby.nbd"
	start_guest sby "remus.run=tick" --nbd "vda=$T/sby.nbd" --incoming "unix:$T/in.sock"
	SBY_QEMU=$QEMU_PID
}

start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" --interval 500 \
	--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" --netbuffer off --reconnect 300 --heartbeat 200 --miss 10 \
	--disk "vda,image=$P,socket=$T/pri.nbd"
wait_for 10 "the primary's NBD socket" test -S "$T/pri.nbd"
start_guest pri "remus.run=tick" --nbd "vda=$T/pri.nbd"
wait_serial pri GUEST-UP 90 "the primary guest to boot"
start_standby

# A value of the first disk in the primary's status.
disk0() { json_get "$(ctl "$T/pri.ctl" status)" "disks.0.$1"; }
epochs() { count_lines "$T/metrics.jsonl"; }
epochs_past() { [ "$(epochs)" -ge "$1" ]; }

wait_for 120 "protection after the initial sync" epochs_past 2
sent=$(disk0 last_resync_bytes)
extents=$(disk0 resync_sent_extents)
echo "initial sync: $extents extents, $sent bytes, $(disk0 last_resync_ms) ms"
[ "$extents" -eq 48 ] || fail "initial sync sent $extents extents, expected the 48 non-zero ones"
[ "$sent" -eq $((3 << 20)) ] || fail "initial sync sent $sent bytes, expected 3 MiB"
grep -q 'resync done' "$T/primary.log" || fail "no resync completion in the primary's log"
cmp "$P" "$S" || fail "after the initial sync the standby image differs"

io() { qemu-io -f raw "nbd+unix:///vda?socket=$T/pri.nbd" -c "$1" >>"$T/qemu-io.log" 2>&1 ||
	fail "qemu-io '$1' failed: $(tail -n 2 "$T/qemu-io.log")"; }
settle() { # a full epoch committed after now
	local n
	n=$(epochs)
	wait_for 30 "two more committed epochs" epochs_past $((n + 2))
}

io "write -P 0xa5 $((30 << 20)) 1M"
settle
cmp "$P" "$S" || fail "a write made while protected did not reach the standby image"
echo "replication: 1 MiB write committed to the standby"

io "write -z $((17 << 20)) 256k"
settle
cmp "$P" "$S" || fail "a zero write made while protected did not reach the standby image"
echo "replication: zero write committed to the standby"

# Standby host lost: its remusd and QEMU die.
kill_now "$SBY_PID" "$SBY_QEMU"
wait_for 20 "the primary to notice the standby is gone" in_state "$T/pri.ctl" "$ST_UNPROTECTED"
io "write -P 0x3c $((50 << 20)) 512k"
[ "$(disk0 local_only_ops)" -ge 1 ] || fail "the unprotected write was not counted as local only"
cmp -s "$P" "$S" && fail "the images should differ while the standby is down"

# the dead standby's sockets: waiting for them must see the new ones
rm -f "$T/in.sock" "$T/sby.qmp" "$T/sby.nbd"
start_standby
n=$(epochs)
wait_for 120 "protection again" epochs_past $((n + 2))
extents=$(disk0 resync_sent_extents)
sent=$(disk0 last_resync_bytes)
echo "incremental resync: $extents extents, $sent bytes, $(disk0 last_resync_ms) ms"
[ "$extents" -eq 8 ] || fail "resync sent $extents extents, expected the 8 that changed"
cmp "$P" "$S" || fail "after the incremental resync the standby image differs"
echo "PASS"
