#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The standby dies mid-epoch (its remusd and QEMU SIGKILLed): the primary
# must keep the guest running, unprotected, and say so; a new standby on
# the same address must be picked up and resynced from a full epoch
# (protection resumes by itself); a failover to that new standby must then
# resume the guest from its last checkpoint.  Both ends run --insecure
# (plaintext, on purpose: this path must keep working), and each says so
# at every session: the primary twice, each standby once.
source "$(dirname "$0")/../../lib/remus.sh"
interval=500

port=$(free_port)
start_guest pri "remus.run=tick"
pri_qemu=$QEMU_PID

start_standby() { # NAME
	start_guest "$1" "remus.run=tick" --incoming "unix:$T/$1.in.sock"
	sby_qemu=$QEMU_PID
	start_remusd "$1" standby --qmp "$T/$1.qmp" --incoming "$T/$1.in.sock" \
		--listen "127.0.0.1:$port" --ctl "$T/$1.ctl" --report "$T/$1.report.json" --insecure
	sby_d=$REMUSD_PID
}
start_standby sbyA
wait_serial pri GUEST-UP 90 "the primary guest to boot"
start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" --interval $interval \
	--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" --reconnect 300 --insecure
prid=$REMUSD_PID
epochs() { count_lines "$T/metrics.jsonl"; }
at_least() { [ "$(epochs)" -ge "$1" ]; }
wait_for 60 "5 committed epochs" at_least 5
# The keys of remusctl status only remusd knows (daemon/ctl.c), and the
# histograms remusd serve serves (common/prom.h's JSON form).
st=$(ctl "$T/pri.ctl" status)
for k in pause_p50_ms pause_p99_ms commit_p50_ms lag_ms heartbeat_age_ms pause_seconds.count \
	 commit_seconds.count; do
	[[ $(json_get "$st" "$k") =~ ^[0-9.]+$ ]] || fail "the primary's status has no number $k: $st"
done
[ "$(json_get "$st" pause_seconds.count)" -ge 5 ] ||
	fail "the pause histogram counts fewer than the 5 epochs committed: $st"

sleep 0.2
kill_now "$sby_d" "$sby_qemu"
state() { json_get "$(ctl "$T/pri.ctl" status)" "$1"; }
wait_for 5 "the primary to report the standby lost" in_state "$T/pri.ctl" "$ST_UNPROTECTED"
echo "primary after losing the standby: $(ctl "$T/pri.ctl" status)"
[ -n "$(state last_error)" ] || fail "the primary gives no reason for being unprotected"
ticks_now() { ticks pri | tail -1; }
t0=$(ticks_now)
sleep 3
t1=$(ticks_now)
[ "$t1" -ge $((t0 + 2)) ] || fail "the primary guest stalled without a standby (tick $t0 -> $t1)"
kill -0 "$prid" || fail "the primary remusd died with its standby"

# A fresh standby on the same address: protection resumes with a new
# session that starts from a full epoch.
before=$(epochs)
start_standby sbyB
is_resynced() { [ "$(state state)" = "$ST_PROTECTED" ] && [ "$(state sessions)" -ge 2 ] &&
	[ "$(epochs)" -ge $((before + 3)) ]; }
wait_for 60 "protection to resume on the new standby" is_resynced
full=$(sed -n "$((before + 1))p" "$T/metrics.jsonl")
echo "first epoch of the new session: $full"
[ "$(json_get "$full" epoch)" = 0 ] || fail "the new session did not start at epoch 0"
is_full "$full" ||
	fail "the resync epoch was not full: $full"

sleep 0.3
kill_now "$prid" "$pri_qemu"
wait_takeover "$T/sbyB.report.json" "the new standby"
sleep 3
! has_serial sbyB GUEST-UP || fail "the standby guest booted again"
check_ticks pri sbyB $interval
plain() { grep -c "neither encrypted nor authenticated" "$T/$1.log" || true; }
[ "$(plain primary)" = 2 ] || fail "the primary warned $(plain primary) times of plaintext, not once per session (2)"
[ "$(plain sbyA)" = 1 ] && [ "$(plain sbyB)" = 1 ] ||
	fail "the standbys warned $(plain sbyA) and $(plain sbyB) times of plaintext, not once each"
echo "standby loss: primary kept running unprotected, resynced to a new standby, failover ok"
