#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Protect a guest for EPOCHS epochs of INTERVAL ms, SIGKILL the primary
# QEMU and the primary remusd at a random point inside an epoch, and check
# that the standby runs the guest from the last committed checkpoint:
#
#   failover.sh tick  INTERVAL_MS EPOCHS
#     first standby tick <= last primary tick + 1 (nothing from the future)
#     first standby tick >= last primary tick - (ticks in one epoch + 1)
#     (not an older checkpoint), ticks consecutive, no second boot
#   failover.sh tick  INTERVAL_MS EPOCHS freeze
#     the primary QEMU and remusd are frozen (SIGSTOP) instead of killed:
#     no connection reset reaches the standby, only silence, so it must
#     take over because heartbeats were missed
#   failover.sh tick  INTERVAL_MS EPOCHS qemu
#     only the primary QEMU is killed (its remusd lives on): the standby
#     must take over, even when the kill lands inside a migration, whose
#     cut stream remusd reads before it learns that QEMU is gone
#   failover.sh dirty INTERVAL_MS EPOCHS
#     the dirtier's sequence continues, every sum the standby prints for
#     a seq equals the primary's for that seq (content is a pure function
#     of seq), and the guest's own full-memory check finds no MISMATCH
#
# Prints the failover time reported by the standby.
source "$(dirname "$0")/../../lib/remus.sh"

guest=${1:?guest: tick or dirty}
interval=${2:?interval ms}
epochs=${3:?epochs}
how=${4:-kill}
case "$guest" in
tick) append="remus.run=tick" ;;
dirty) append="remus.run=dirty remus.args=mb=32,mbps=4,seed=7" ;;
*) fail "unknown guest '$guest'" ;;
esac

port=$(free_port)
start_guest pri "$append"
pri_qemu=$QEMU_PID
start_guest sby "$append" --incoming "unix:$T/in.sock"

start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
	--ctl "$T/sby.ctl" --report "$T/report.json" --heartbeat 100 --miss 5
wait_serial pri GUEST-UP 90 "the primary guest to boot"

start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" --interval "$interval" \
	--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" --heartbeat 100 --miss 5
prid=$REMUSD_PID

committed() { [ "$(count_lines "$T/metrics.jsonl")" -ge "$epochs" ]; }
wait_for $((60 + epochs * interval / 250)) "$epochs committed epochs" committed

# Kill somewhere inside the next epoch, not at its boundary.
sleep_into_epoch "$interval"
if [ "$how" = qemu ]; then
	unwatch_daemon "$prid" # it ends once it sees its QEMU gone
	kill_now "$pri_qemu"
else
	host_dies "$how" "$prid" "$pri_qemu"
fi

wait_takeover "$T/report.json"
report=$REPORT_JSON
fo_ms=$(json_get "$report" failover.failover_ms)
reason=$(json_get "$report" failover.reason)
echo "failover reason: $reason"
if [ "$how" = freeze ]; then
	echo "$reason" | grep -q "heartbeats of 100 ms missed" ||
		fail "a frozen primary must be detected by missed heartbeats, got: $reason"
	# The primary stays frozen (its tick log ends where it was stopped);
	# the cleanup SIGKILLs the stopped processes.
fi
epoch=$(json_get "$report" failover.epoch)
[ "$epoch" -ge $((epochs - 1)) ] || fail "standby resumed from epoch $epoch, expected >= $((epochs - 1))"

# Let the standby guest run a few seconds.
sleep 4
! has_serial sby GUEST-UP || fail "the standby guest booted again"

if [ "$guest" = tick ]; then
	check_ticks pri sby "$interval"
else
	check_dirty_continuity pri sby
fi
pauses=$(pause_summary "$T/metrics.jsonl")
echo "$guest $interval ms: $pauses; failover ${fo_ms} ms (heartbeat lost -> guest running) from epoch $epoch"
