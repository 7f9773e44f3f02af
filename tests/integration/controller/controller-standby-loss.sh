#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The standby dies mid-epoch (its remusd and QEMU SIGKILLed): the primary
# must keep the guest running, unprotected, and say so; a new standby on
# the same address must be picked up and resynced from a full epoch
# (protection resumes by itself); a failover to that new standby must then
# resume the guest from its last checkpoint.
source "$REMUS_SOURCE_DIR/tests/integration/engine/lib.sh"
interval=500

port=$(free_port)
start_qemu pri "remus.run=tick"
pri_qemu=$QEMU_PID

start_standby() { # NAME
	start_qemu "$1" "remus.run=tick" -incoming "unix:$T/$1.in.sock"
	sby_qemu=$QEMU_PID
	"$REMUSD" standby --qmp "$T/$1.qmp" --incoming "$T/$1.in.sock" \
		--listen "127.0.0.1:$port" --ctl "$T/$1.ctl" --report "$T/$1.report.json" \
		>"$T/$1.log" 2>&1 &
	sby_d=$!
	track "$sby_d"
	watch_daemon "$sby_d" "standby remusd $1" "$T/$1.log"
}
start_standby sbyA
wait_for 90 "the primary guest to boot" has_serial pri GUEST-UP
"$REMUSD" primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" --interval $interval \
	--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" --reconnect 300 >"$T/primary.log" 2>&1 &
prid=$!
track "$prid"
watch_daemon "$prid" "primary remusd" "$T/primary.log"
epochs() { count_lines "$T/metrics.jsonl"; }
at_least() { [ "$(epochs)" -ge "$1" ]; }
wait_for 60 "5 committed epochs" at_least 5

sleep 0.2
unwatch_daemon "$sby_d"
kill -9 "$sby_d" "$sby_qemu"
wait "$sby_d" "$sby_qemu" 2>/dev/null || true
state() { json_get "$(ctl "$T/pri.ctl" status)" "$1"; }
is_unprotected() { [ "$(state state)" = unprotected ]; }
wait_for 5 "the primary to report the standby lost" is_unprotected
echo "primary after losing the standby: $(ctl "$T/pri.ctl" status)"
[ -n "$(state last_error)" ] || fail "the primary gives no reason for being unprotected"
ticks_now() { serial pri | grep -o 'tick [0-9]*' | tail -1 | cut -d' ' -f2; }
t0=$(ticks_now)
sleep 3
t1=$(ticks_now)
[ "$t1" -ge $((t0 + 2)) ] || fail "the primary guest stalled without a standby (tick $t0 -> $t1)"
kill -0 "$prid" || fail "the primary remusd died with its standby"

# A fresh standby on the same address: protection resumes with a new
# session that starts from a full epoch.
before=$(epochs)
start_standby sbyB
is_resynced() { [ "$(state state)" = protected ] && [ "$(state sessions)" -ge 2 ] &&
	[ "$(epochs)" -ge $((before + 3)) ]; }
wait_for 60 "protection to resume on the new standby" is_resynced
full=$(sed -n "$((before + 1))p" "$T/metrics.jsonl")
echo "first epoch of the new session: $full"
[ "$(json_get "$full" epoch)" = 0 ] || fail "the new session did not start at epoch 0"
is_full "$full" ||
	fail "the resync epoch was not full: $full"

sleep 0.3
unwatch_daemon "$prid"
kill -9 "$prid" "$pri_qemu"
wait "$prid" "$pri_qemu" 2>/dev/null || true
wait_for 30 "the new standby's failover report" test -s "$T/sbyB.report.json"
[ "$(json_get "$(cat "$T/sbyB.report.json")" state)" = active ] ||
	fail "the new standby did not take over: $(cat "$T/sbyB.report.json")"
sleep 3
[ "$(serial sbyB | grep -c GUEST-UP)" -eq 0 ] || fail "the standby guest booted again"
check_ticks pri sbyB $interval
echo "standby loss: primary kept running unprotected, resynced to a new standby, failover ok"
