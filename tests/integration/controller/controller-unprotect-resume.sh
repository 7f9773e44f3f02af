#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Unprotect and protect again against the same standby:
#  - "remusd ctl unprotect" ends the primary cleanly; the standby reads
#    CLOSE and must NOT take over (the primary guest keeps running);
#  - a new primary remusd on the same VM is told to resume the standby's
#    stream: its first epoch is numbered after the last committed one and
#    is full, and the standby QEMU is not restarted;
#  - a failover after that resumes the guest from the newest checkpoint.
source "$(dirname "$0")/../../lib/remus.sh"
interval=500

port=$(free_port)
start_guest pri "remus.run=tick"
pri_qemu=$QEMU_PID
start_guest sby "remus.run=tick" --incoming "unix:$T/in.sock"
sby_qemu=$QEMU_PID
start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
	--ctl "$T/sby.ctl" --report "$T/report.json"
wait_serial pri GUEST-UP 90 "the primary guest to boot"

protect() { # METRICS
	start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" \
		--interval $interval --ctl "$T/pri.ctl" --metrics "$1"
	prid=$REMUSD_PID
}
lines() { count_lines "$1"; }
at_least() { [ "$(lines "$1")" -ge "$2" ]; }

protect "$T/m1.jsonl"
wait_for 60 "4 committed epochs" at_least "$T/m1.jsonl" 4
unwatch_daemon "$prid"
ctl "$T/pri.ctl" unprotect >/dev/null
wait_for 10 "the primary remusd to exit after unprotect" gone "$prid"
wait "$prid" || fail "the primary remusd exited with status $? after unprotect"
st=$(ctl "$T/sby.ctl" status)
echo "standby after unprotect: $st"
[ "$(json_get "$st" state)" = "$ST_WAITING" ] || fail "the standby did not go back to waiting: $st"
[ ! -e "$T/report.json" ] || fail "the standby took over after a clean unprotect"
last=$(json_get "$st" committed_epoch)
t0=$(ticks pri | tail -1)
sleep 2
t1=$(ticks pri | tail -1)
[ "$t1" -gt "$t0" ] || fail "the primary guest does not run after unprotect"

protect "$T/m2.jsonl"
wait_for 60 "4 epochs after re-protecting" at_least "$T/m2.jsonl" 4
first=$(head -1 "$T/m2.jsonl")
echo "first epoch after re-protecting: $first"
[ "$(json_get "$first" epoch)" = $((last + 1)) ] ||
	fail "the resumed stream did not continue at epoch $((last + 1))"
is_full "$first" ||
	fail "the first resumed epoch was not full"
grep -q "resuming the stream" "$T/standby.log" || fail "the standby did not resume its stream"
kill -0 "$sby_qemu" || fail "the standby QEMU is gone"

sleep 0.2
kill_now "$prid" "$pri_qemu"
wait_takeover "$T/report.json"
sleep 3
! has_serial sby GUEST-UP || fail "the standby guest booted again"
check_ticks pri sby $interval
echo "resume: clean unprotect without takeover, stream resumed at epoch $((last + 1)), failover ok"
