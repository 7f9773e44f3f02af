#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   diskrepl-ext4-fsck.sh INTERVAL_MS FAILOVERS [SECONDS_PER_ROUND]
#
# One guest, one ext4 file system, FAILOVERS failovers in a row, then fsck.
#
# fswork (vm-images/guest/fswork.c) creates, appends, renames and replaces
# files with fsync and, every 20 ops, drops the page cache and checks names,
# sizes and bytes read back from the disk against its memory.  Two hosts'
# images take turns: host 0 (mkfs.ext4, 64 MiB) protects to host 1 (sparse
# image, filled by the initial sync).  In each round the current primary's
# QEMU and remusd are SIGKILLed 20-80 % into an epoch, two epochs after
# protection started; the standby takes over, and (except after the last
# round) a new standby is started on the dead host's image and the survivor
# protects to it with `remusd ctl SOCK protect HOST:PORT` (the role switch:
# the stale image is resynced by extent hashes).  The guest must go on
# through every failover with no FSWORK-VIOLATION (disk == memory on each
# new host), no second boot and its checks still running, then finish its
# run, unmount and power off; `fsck.ext4 -n -f` must find the last
# survivor's image clean.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

interval=${1:?interval ms}
failovers=${2:?failovers}
# fswork's run must outlast every round (a boot, then per round an initial
# sync, two epochs and the kill: 5-10 s on a loaded machine, default 15 s
# each); a run that ends before the last kill fails and says so.
secs=$((30 + failovers * ${3:-15}))
app="remus.run=fswork remus.modules=ext4 remus.args=dev=/dev/vda,secs=$secs,verify=20"
# The kill closes the replication link, which the standby notices at once;
# heartbeats only guard against a stall, and on a loaded two-core machine
# 5 x 100 ms of silence happens without any failure, so allow 3 s: this
# test is not about detection time.
hb=(--heartbeat 200 --miss 15)
# Options a standby needs as well: it becomes a primary after the switch.
# The guest has no NIC: an output buffer would have nothing to hold.
role_opts=(--interval "$interval" "${hb[@]}" --netbuffer off)

img=("$T/host0.raw" "$T/host1.raw")
truncate -s 64M "${img[0]}" "${img[1]}"
mkfs.ext4 -q -F "${img[0]}"

# start_standby NAME IMAGE PORT: a standby remusd and its QEMU, named NAME
# (files $T/NAME.*); sets SBY and SBY_QEMU.
start_standby() {
	local name=$1 image=$2 port=$3
	start_remusd "$name" standby --qmp "$T/$name.qmp" --incoming "$T/$name.in" \
		--listen "127.0.0.1:$port" --ctl "$T/$name.ctl" --report "$T/$name.report" \
		--metrics "$T/$name.metrics" "${role_opts[@]}" \
		--disk "d0,image=$image,socket=$T/$name.nbd"
	SBY=$REMUSD_PID
	wait_for 30 "$name's NBD socket" test -S "$T/$name.nbd"
	start_guest "$name" "$app" --nbd "d0=$T/$name.nbd" --incoming "unix:$T/$name.in"
	SBY_QEMU=$QEMU_PID
}
fs_lines() { serial "$1" | grep -c '^fswork op=.* ok$' || true; }
last_verified() { serial "$1" | sed -n 's/^fswork op=.* verified=\([0-9]*\) ok$/\1/p' | tail -n1; }
check_guest() {
	no_violation "$1"
	if [ "$1" != h0 ] && has_serial "$1" GUEST-UP; then
		fail "$1: the guest booted again after a failover"
	fi
}

port=$(free_port)
start_standby h1 "${img[1]}" "$port"
start_remusd h0 primary --qmp "$T/h0.qmp" --standby "127.0.0.1:$port" --ctl "$T/h0.ctl" \
	--metrics "$T/h0.metrics" "${role_opts[@]}" \
	--disk "d0,image=${img[0]},socket=$T/h0.nbd"
cur=h0 cur_d=$REMUSD_PID next=h1 next_d=$SBY next_qemu=$SBY_QEMU
wait_for 30 "h0's NBD socket" test -S "$T/h0.nbd"
start_guest h0 "$app" --nbd "d0=$T/h0.nbd"
cur_qemu=$QEMU_PID
wait_serial h0 GUEST-UP 120 "the guest to boot on h0"

for r in $(seq "$failovers"); do
	# $cur protects to $next; the guest runs on $cur's image.
	# A standby that takes over while the primary still runs (a false
	# failover) would make every check below fail for the wrong reason.
	no_early_failover() {
		[ ! -s "$T/$next.report" ] ||
			fail "round $r: $next took over before $cur was killed: $(json_get "$(cat "$T/$next.report")" failover.reason)"
	}
	running() { no_early_failover; [ "$(fs_lines "$cur")" -ge 1 ]; }
	wait_for 60 "round $r: fswork to run on $cur" running
	n0=$(count_lines "$T/$cur.metrics")
	committed() { no_early_failover; [ "$(count_lines "$T/$cur.metrics")" -ge $((n0 + 2)) ]; }
	wait_for $((60 + interval / 100)) "round $r: 2 epochs from $cur to $next" committed
	next_epoch "$T/$cur.metrics"
	sleep_into_epoch "$interval"
	no_early_failover
	kill_now "$cur_d" "$cur_qemu"
	! has_serial "$cur" '^fswork done' ||
		fail "round $r: fswork finished on $cur before the kill; raise secs ($secs)"
	check_guest "$cur"
	cur_verified=$(last_verified "$cur")

	wait_takeover "$T/$next.report" "round $r: $next"
	report=$REPORT_JSON
	# The guest goes on there, checking the new disk against its memory.
	checked() { check_guest "$next"; v=$(last_verified "$next"); [ -n "$v" ] && [ "$v" -gt "${cur_verified:-0}" ]; }
	wait_for 60 "round $r: fswork to verify its files on $next" checked
	line="round $r: $cur killed at $(serial "$cur" | grep '^fswork op=' | tail -n1 | cut -d' ' -f2);"
	line+=" $next took over in $(json_get "$report" failover.failover_ms) ms from epoch"
	line+=" $(json_get "$report" failover.epoch), fswork verified=$(last_verified "$next") there"

	dead=$cur
	cur=$next cur_d=$next_d cur_qemu=$next_qemu
	if [ "$r" -lt "$failovers" ]; then
		# The dead host comes back as the standby on its old image.
		next=h$((r + 1))
		port=$(free_port)
		start_standby "$next" "${img[$(((r + 1) % 2))]}" "$port"
		next_d=$SBY next_qemu=$SBY_QEMU
		out=$(ctl "$T/$cur.ctl" protect "127.0.0.1:$port") ||
			fail "round $r: $cur refused to protect to $next: $out"
		m0=$(count_lines "$T/$cur.metrics")
		switched() { [ "$(count_lines "$T/$cur.metrics")" -gt "$m0" ]; }
		wait_for 60 "round $r: $cur to commit an epoch to $next" switched
		st=$(ctl "$T/$cur.ctl" status)
		resync="resync $(json_get "$st" disks.0.resync_sent_extents) of $(json_get "$st" disks.0.resync_compared) extents"
		line+="; $cur protects to $next on $dead's old image ($resync)"
	fi
	echo "$line"
done

# The last survivor finishes the run: verify, unmount, power off.
unwatch_daemon "$cur_d"
finished() {
	has_serial "$cur" 'GUEST-EXIT status=' && return 0
	kill -0 "$cur_d" 2>/dev/null ||
		fail "$cur remusd exited under the running guest: $(tail -n 3 "$T/$cur.log")"
	return 1
}
wait_for $((secs + 90)) "fswork to finish on $cur" finished
check_guest "$cur"
has_serial "$cur" 'GUEST-EXIT status=0' ||
	fail "fswork failed on $cur: $(serial "$cur" | grep -E '^fswork|GUEST-EXIT' | tail -n 3)"
wait_for 30 "$cur's QEMU to power off" gone "$cur_qemu"
kill -TERM "$cur_d"
wait "$cur_d" 2>/dev/null || true
survivor=${img[$((failovers % 2))]}
fsck=$(fsck.ext4 -n -f "$survivor" 2>&1) ||
	fail "fsck.ext4 -n -f of the last survivor's image $survivor is not clean: $fsck"
echo "ext4: $failovers failovers in a row, $cur: $(serial "$cur" | grep '^fswork done'); fsck.ext4 -n -f clean: $(echo "$fsck" | tail -n1)"
