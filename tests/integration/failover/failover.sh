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
#   failover.sh dirty INTERVAL_MS EPOCHS
#     the dirtier's sequence continues, every sum the standby prints for
#     a seq equals the primary's for that seq (content is a pure function
#     of seq), and the guest's own full-memory check finds no MISMATCH
#
# Prints the failover time reported by the standby.
source "$REMUS_SOURCE_DIR/tests/integration/engine/lib.sh"

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
start_qemu pri "$append"
pri_qemu=$QEMU_PID
start_qemu sby "$append" -incoming "unix:$T/in.sock"

"$REMUSD" standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
	--ctl "$T/sby.ctl" --report "$T/report.json" --heartbeat 100 --miss 5 \
	>"$T/standby.log" 2>&1 &
track $!
watch_daemon $! "standby remusd" "$T/standby.log"
wait_for 90 "the primary guest to boot" has_serial pri GUEST-UP

"$REMUSD" primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" --interval "$interval" \
	--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" --heartbeat 100 --miss 5 \
	>"$T/primary.log" 2>&1 &
prid=$!
track "$prid"
watch_daemon "$prid" "primary remusd" "$T/primary.log"

committed() { [ "$(count_lines "$T/metrics.jsonl")" -ge "$epochs" ]; }
wait_for $((60 + epochs * interval / 250)) "$epochs committed epochs" committed

# Kill somewhere inside the next epoch, not at its boundary.
sleep "$(python3 -c "import random; print(random.uniform(0.2, 0.8) * $interval / 1000)")"
unwatch_daemon "$prid"
if [ "$how" = freeze ]; then
	kill -STOP "$prid" "$pri_qemu"
else
	kill -9 "$prid" "$pri_qemu"
	wait "$prid" "$pri_qemu" 2>/dev/null || true
fi

wait_for 30 "the standby's failover report" test -s "$T/report.json"
report=$(cat "$T/report.json")
[ "$(json_get "$report" state)" = active ] || fail "standby did not take over: $report"
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
[ "$(serial sby | grep -c GUEST-UP)" -eq 0 ] || fail "the standby guest booted again"

if [ "$guest" = tick ]; then
	check_ticks pri sby "$interval"
else
	serial sby | grep -q MISMATCH && fail "the standby guest found torn memory: $(serial sby | grep MISMATCH)"
	pri_seqs=$(serial pri | grep -o 'dirty seq=[0-9]* sum=[0-9a-f]*' || true)
	sby_seqs=$(serial sby | grep -o 'dirty seq=[0-9]* sum=[0-9a-f]*' || true)
	[ -n "$sby_seqs" ] || fail "the standby guest printed no checksum"
	pri_last=$(echo "$pri_seqs" | tail -1 | sed 's/.*seq=\([0-9]*\).*/\1/')
	sby_first=$(echo "$sby_seqs" | head -1 | sed 's/.*seq=\([0-9]*\).*/\1/')
	[ "$sby_first" -le $((pri_last + 1)) ] ||
		fail "standby resumed at seq $sby_first, after the primary's last seq $pri_last"
	# Same seq, same sum: the standby's memory is the primary's at that point.
	while read -r line; do
		s=$(echo "$line" | sed 's/.*seq=\([0-9]*\).*/\1/')
		p=$(echo "$pri_seqs" | grep "seq=$s " || true)
		[ -z "$p" ] || [ "$p" = "$line" ] || fail "seq $s: primary '$p' vs standby '$line'"
	done <<<"$sby_seqs"
	echo "memory continuity: primary last seq $pri_last, standby first seq $sby_first, no MISMATCH"
fi
pauses=$(python3 -c "import json,statistics
p=[json.loads(l)['pause_ms'] for l in open('$T/metrics.jsonl')]
print('pause ms p50 %.1f max %.1f over %d epochs' % (statistics.median(p), max(p), len(p)))")
echo "$guest $interval ms: $pauses; failover ${fo_ms} ms (heartbeat lost -> guest running) from epoch $epoch"
