#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Failover of a guest that writes its disk, checked by the guest itself:
#
#   diskrepl-failover.sh diskrec INTERVAL_MS EPOCHS
#     The disk is served and replicated by remusd (--disk on both sides,
#     QEMU on -blockdev nbd).  diskrec writes a 4 KiB record every 20 ms and
#     before each write reads back the previous record (must be there) and
#     the next slot (must not hold a newer record).  The primary QEMU and
#     remusd are SIGKILLed 20-80 % into an epoch, EPOCHS epochs after
#     diskrec started.  The standby guest must then run on for 6 s with no
#     DISKREC-VIOLATION (its disk is exactly the last checkpoint's: every
#     write its memory saw complete, none of the lost epoch), no second
#     boot, progress lines consecutive, its first line no later than the
#     primary's last + one step and no older than two epochs of records
#     before it, and its seq past the primary's last printed one (so past
#     the last committed one).  Finally the standby's image, read on the
#     host after the standby is stopped, holds a consistent ring up to at
#     least the last seq the standby guest printed.
#
#   diskrepl-failover.sh shared INTERVAL_MS EPOCHS
#     The negative control: the same run with memory replication only and
#     one image file shared by both QEMUs, i.e. the disk keeps the writes
#     of the epoch that was lost.  The standby guest must report "record
#     past the checkpoint" (and exit 3): the check above can fail.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

mode=${1:?mode: diskrec or shared}
interval=${2:?interval ms}
epochs=${3:?epochs}
ms=20 every=10 slots=256
case "$mode" in diskrec | shared) ;; *) fail "unknown mode '$mode': diskrec or shared" ;; esac

P=$T/pri.raw S=$T/sby.raw
truncate -s 16M "$P"
app=$(append_diskrec ms=$ms slots=$slots scan=50 every=$every)
port=$(free_port)
# The kill closes the replication link, which the standby notices at once;
# heartbeats only guard against a stall, and on a loaded two-core machine
# 5 x 100 ms of silence happens without any failure (false failovers seen
# in 2 of 4 runs), so allow 3 s: this test is not about detection time.
hb=(--heartbeat 200 --miss 15)

# The guests have no NIC: an output buffer would have nothing to hold.
pri_opts=(--interval "$interval" "${hb[@]}" --netbuffer off)
if [ "$mode" = diskrec ]; then
	# The standby image starts sparse: the initial sync fills it.
	truncate -s 16M "$S"
	start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
		--ctl "$T/sby.ctl" --report "$T/report.json" "${hb[@]}" \
		--disk "d0,image=$S,socket=$T/sby.nbd"
	sby_d=$REMUSD_PID
	wait_for 30 "the standby's NBD socket" test -S "$T/sby.nbd"
	start_guest sby "$app" --nbd "d0=$T/sby.nbd" --incoming "unix:$T/in.sock"
	sby_qemu=$QEMU_PID
	start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" \
		--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" "${pri_opts[@]}" \
		--disk "d0,image=$P,socket=$T/pri.nbd"
	prid=$REMUSD_PID
	wait_for 30 "the primary's NBD socket" test -S "$T/pri.nbd"
	start_guest pri "$app" --nbd "d0=$T/pri.nbd"
	pri_qemu=$QEMU_PID
	wait_serial pri GUEST-UP 120 "the primary guest to boot"
else
	start_guest pri "$app" --image "$P"
	pri_qemu=$QEMU_PID
	start_guest sby "$app" --image "$P" --incoming "unix:$T/in.sock"
	sby_qemu=$QEMU_PID
	start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
		--ctl "$T/sby.ctl" --report "$T/report.json" "${hb[@]}"
	sby_d=$REMUSD_PID
	wait_serial pri GUEST-UP 120 "the primary guest to boot"
	start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" \
		--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" "${pri_opts[@]}"
	prid=$REMUSD_PID
fi

# A standby that takes over while the primary still runs (a false
# failover) would make every check below fail for the wrong reason (or, on
# the shared image, fail on QEMU's image lock): say what happened instead.
no_early_failover() {
	[ ! -s "$T/report.json" ] ||
		fail "the standby took over before the primary was killed: $(json_get "$(cat "$T/report.json")" failover.reason)"
}
# EPOCHS committed epochs while diskrec writes, then the kill at a random
# point of the next one, timed from the moment its predecessor committed.
running() { no_early_failover; diskrec_reached pri $every; }
wait_for 60 "diskrec to run on the primary" running
n0=$(count_lines "$T/metrics.jsonl")
committed() { no_early_failover; [ "$(count_lines "$T/metrics.jsonl")" -ge $((n0 + epochs)) ]; }
wait_for $((60 + epochs * interval / 250)) "$epochs committed epochs" committed
next_epoch "$T/metrics.jsonl"
sleep_into_epoch "$interval"
no_early_failover
kill_now "$prid" "$pri_qemu"
pri_last=$(diskrec_last pri)
# shellcheck disable=SC2046
check_consecutive "primary guest" $every $(diskrec_seqs pri)
! has_serial pri VIOLATION || fail "the primary guest saw a violation before the failover: $(serial pri | grep VIOLATION)"

wait_takeover "$T/report.json"
report=$REPORT_JSON
fo_ms=$(json_get "$report" failover.failover_ms)
epoch=$(json_get "$report" failover.epoch)

if [ "$mode" = shared ]; then
	# Its QEMU powers off after the violation; the standby remusd may go too.
	unwatch_daemon "$sby_d"
	# The lost epoch's records are on the shared disk: the resumed guest
	# must see them at its next record.
	wait_serial sby "DISKREC-VIOLATION record past the checkpoint" 30 \
		"the standby guest to report the records of the lost epoch"
	wait_serial sby "GUEST-EXIT status=3" 30 "the standby guest to stop on the violation"
	echo "shared disk (negative control): primary printed seq $pri_last, standby resumed from epoch $epoch and reported: $(serial sby | grep VIOLATION)"
	exit 0
fi

# Let the standby guest run 6 s on the failed-over disk.
sleep 6
check_daemons
kill -0 "$sby_qemu" 2>/dev/null || fail "the standby QEMU exited after the failover: $(tail -n 3 "$T/sby.qemu")"
no_violation sby
! has_serial sby GUEST-UP || fail "the standby guest booted again"
! has_serial sby GUEST-EXIT || fail "diskrec stopped on the standby: $(serial sby | tail -n 3)"
sby_seqs=$(diskrec_seqs sby)
[ -n "$sby_seqs" ] || fail "the standby guest printed no progress in 6 s"
sby_first=$(echo "$sby_seqs" | head -n1)
sby_last=$(echo "$sby_seqs" | tail -n1)
# shellcheck disable=SC2086
check_consecutive "standby guest" $every $sby_seqs
[ "$sby_first" -le $((pri_last + every)) ] ||
	fail "standby resumed at seq $sby_first, after the primary's last line (seq $pri_last): a gap"
per_epoch=$((interval / ms))
[ "$sby_first" -ge $((pri_last - 2 * per_epoch)) ] ||
	fail "standby resumed at seq $sby_first: older than the last checkpoint (primary printed $pri_last, at most $per_epoch records per epoch)"
[ "$sby_last" -gt "$pri_last" ] ||
	fail "the standby's seq $sby_last did not pass the primary's last printed seq $pri_last"
status=$(ctl "$T/sby.ctl" status 2>/dev/null || echo '{}')

# The standby's image at rest: a consistent ring up to what its guest printed.
kill_now "$sby_qemu"
unwatch_daemon "$sby_d"
kill -TERM "$sby_d"
wait "$sby_d" 2>/dev/null || true
out=$("$DISKREC" mode=verify dev="$S" slots=$slots min="$sby_last" 2>&1) ||
	fail "the standby's image after the failover: $out"

pauses=$(pause_summary "$T/metrics.jsonl")
if [ "$sby_first" -le "$pri_last" ]; then
	lost="records $sby_first..$pri_last were written by the primary after the last checkpoint, discarded and rewritten"
else
	lost="the primary printed no line after the last checkpoint"
fi
echo "record continuity: primary printed up to seq $pri_last, standby first $sby_first, last $sby_last, no violation; $lost; image: $out"
echo "standby status after failover: $status"
echo "diskrec $interval ms: $pauses; failover ${fo_ms} ms from epoch $epoch"
