#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Failover of a guest that writes its disk, checked by the guest itself:
#
#   failover.sh diskrec INTERVAL_MS EPOCHS
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
#     Exits 77 (skipped) while `remusd primary --help` has no --disk.
#
#   failover.sh shared INTERVAL_MS EPOCHS
#     The negative control: the same run with memory replication only and
#     one image file shared by both QEMUs, i.e. the disk keeps the writes
#     of the epoch that was lost.  The standby guest must report "record
#     past the checkpoint" (and exit 3): the check above can fail.
source "$(dirname "$0")/lib.sh"

mode=${1:?mode: diskrec or shared}
interval=${2:?interval ms}
epochs=${3:?epochs}
ms=20 every=10 slots=256
case "$mode" in
diskrec)
	if ! remusd_has_disk; then
		echo "SKIP: $REMUSD primary --help has no --disk yet (disk replication not wired into remusd)"
		exit 77
	fi
	;;
shared) ;;
*) fail "unknown mode '$mode': diskrec or shared" ;;
esac

P=$T/pri.raw S=$T/sby.raw
truncate -s 16M "$P"
app=$(append_diskrec ms=$ms slots=$slots scan=50 every=$every)
port=$(free_port)
# The kill closes the replication link, which the standby notices at once;
# heartbeats only guard against a stall, and on a loaded two-core machine
# 5 x 100 ms of silence happens without any failure (false failovers seen
# in 2 of 4 runs), so allow 3 s: this test is not about detection time.
hb=(--heartbeat 200 --miss 15)

if [ "$mode" = diskrec ]; then
	# The standby image starts sparse: the initial sync fills it.
	truncate -s 16M "$S"
	"$REMUSD" standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
		--ctl "$T/sby.ctl" --report "$T/report.json" "${hb[@]}" \
		--disk "d0,image=$S,socket=$T/sby.nbd" >"$T/standby.log" 2>&1 &
	sby_d=$!
	track "$sby_d"
	watch_daemon "$sby_d" "standby remusd" "$T/standby.log"
	wait_for 30 "the standby's NBD socket" test -S "$T/sby.nbd"
	# shellcheck disable=SC2046 # the drive options are words on purpose
	start_qemu sby "$app" $(drive_nbd d0 "$T/sby.nbd") -incoming "unix:$T/in.sock"
	sby_qemu=$QEMU_PID
	# shellcheck disable=SC2046
	"$REMUSD" primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" --interval "$interval" \
		--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" "${hb[@]}" $(primary_nb_opts) \
		--disk "d0,image=$P,socket=$T/pri.nbd" >"$T/primary.log" 2>&1 &
	prid=$!
	track "$prid"
	watch_daemon "$prid" "primary remusd" "$T/primary.log"
	wait_for 30 "the primary's NBD socket" test -S "$T/pri.nbd"
	# shellcheck disable=SC2046
	start_qemu pri "$app" $(drive_nbd d0 "$T/pri.nbd")
	pri_qemu=$QEMU_PID
	wait_for 120 "the primary guest to boot" has_serial pri GUEST-UP
else
	# shellcheck disable=SC2046
	start_qemu pri "$app" $(drive_plain "$P")
	pri_qemu=$QEMU_PID
	# shellcheck disable=SC2046
	start_qemu sby "$app" $(drive_plain "$P") -incoming "unix:$T/in.sock"
	sby_qemu=$QEMU_PID
	"$REMUSD" standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
		--ctl "$T/sby.ctl" --report "$T/report.json" "${hb[@]}" >"$T/standby.log" 2>&1 &
	sby_d=$!
	track "$sby_d"
	watch_daemon "$sby_d" "standby remusd" "$T/standby.log"
	wait_for 120 "the primary guest to boot" has_serial pri GUEST-UP
	# shellcheck disable=SC2046
	"$REMUSD" primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" --interval "$interval" \
		--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" "${hb[@]}" $(primary_nb_opts) \
		>"$T/primary.log" 2>&1 &
	prid=$!
	track "$prid"
	watch_daemon "$prid" "primary remusd" "$T/primary.log"
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
n1=$(count_lines "$T/metrics.jsonl")
until [ "$(count_lines "$T/metrics.jsonl")" -gt "$n1" ]; do check_daemons; sleep 0.02; done
sleep "$(python3 -c "import random; print(random.uniform(0.2, 0.8) * $interval / 1000)")"
no_early_failover
unwatch_daemon "$prid"
kill -9 "$prid" "$pri_qemu"
wait "$prid" "$pri_qemu" 2>/dev/null || true
pri_last=$(diskrec_last pri)
# shellcheck disable=SC2046
check_consecutive "primary guest" $every $(diskrec_seqs pri)
serial pri | grep -q VIOLATION && fail "the primary guest saw a violation before the failover: $(serial pri | grep VIOLATION)"

wait_for 30 "the standby's failover report" test -s "$T/report.json"
report=$(cat "$T/report.json")
[ "$(json_get "$report" state)" = active ] || fail "standby did not take over: $report"
fo_ms=$(json_get "$report" failover.failover_ms)
epoch=$(json_get "$report" failover.epoch)

if [ "$mode" = shared ]; then
	# Its QEMU powers off after the violation; the standby remusd may go too.
	unwatch_daemon "$sby_d"
	# The lost epoch's records are on the shared disk: the resumed guest
	# must see them at its next record.
	wait_for 30 "the standby guest to report the records of the lost epoch" \
		has_serial sby "DISKREC-VIOLATION record past the checkpoint"
	wait_for 30 "the standby guest to stop on the violation" has_serial sby "GUEST-EXIT status=3"
	echo "shared disk (negative control): primary printed seq $pri_last, standby resumed from epoch $epoch and reported: $(serial sby | grep VIOLATION)"
	exit 0
fi

# Let the standby guest run 6 s on the failed-over disk.
sleep 6
check_daemons
kill -0 "$sby_qemu" 2>/dev/null || fail "the standby QEMU exited after the failover: $(tail -n 3 "$T/sby.qemu.log")"
serial sby | grep -q VIOLATION && fail "the standby's disk does not match the checkpoint: $(serial sby | grep VIOLATION)"
serial sby | grep -q GUEST-UP && fail "the standby guest booted again"
serial sby | grep -q GUEST-EXIT && fail "diskrec stopped on the standby: $(serial sby | tail -n 3)"
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
kill -9 "$sby_qemu"
wait "$sby_qemu" 2>/dev/null || true
unwatch_daemon "$sby_d"
kill -TERM "$sby_d"
wait "$sby_d" 2>/dev/null || true
out=$("$DISKREC" mode=verify dev="$S" slots=$slots min="$sby_last" 2>&1) ||
	fail "the standby's image after the failover: $out"

pauses=$(python3 -c "import json,statistics
p=[json.loads(l)['pause_ms'] for l in open('$T/metrics.jsonl')]
print('pause ms p50 %.1f max %.1f over %d epochs' % (statistics.median(p), max(p), len(p)))")
if [ "$sby_first" -le "$pri_last" ]; then
	lost="records $sby_first..$pri_last were written by the primary after the last checkpoint, discarded and rewritten"
else
	lost="the primary printed no line after the last checkpoint"
fi
echo "record continuity: primary printed up to seq $pri_last, standby first $sby_first, last $sby_last, no violation; $lost; image: $out"
echo "standby status after failover: $status"
echo "diskrec $interval ms: $pauses; failover ${fo_ms} ms from epoch $epoch"
