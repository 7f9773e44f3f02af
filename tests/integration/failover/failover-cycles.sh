#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   failover-cycles.sh GUEST INTERVAL_MS CYCLES        GUEST: tick | dirty
#
# One guest through CYCLES failovers in a row, each at a random point: the
# guest starts on host h0, protected to h1.  In each cycle the current
# primary runs 1-4 more committed epochs, then dies at a random point of
# an epoch (anywhere in it: the checkpoint pause included), either SIGKILLed
# (the link drops) or frozen by SIGSTOP (only missed heartbeats tell); the
# standby takes over, a new standby (a fresh QEMU -incoming and remusd) is
# started on the next host, and the survivor protects to it with `remusd
# ctl SOCK protect HOST:PORT` (the role switch).  After every failover the
# guest must go on from the last checkpoint: tick continuity (tick), or the
# dirtier's sequence with equal sums and no MISMATCH (dirty), and no second
# boot.  The random choices come from a seed that is printed;
# REMUS_TEST_SEED=N replays them.
source "$(dirname "$0")/../../lib/remus.sh"

guest=${1:?guest: tick or dirty}
interval=${2:?interval ms}
cycles=${3:?cycles}
# progress: a line the guest prints as it runs; every cycle waits for one
# on the current host, so a continuity check never has nothing to compare.
case "$guest" in
tick) append="remus.run=tick" progress='tick [0-9]+' ;;
dirty) append="remus.run=dirty remus.args=mb=32,mbps=4,seed=7" progress='dirty seq=[0-9]+' ;;
*) fail "unknown guest '$guest'" ;;
esac
seed=${REMUS_TEST_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed
echo "$TEST_NAME: seed $seed (REMUS_TEST_SEED=$seed replays the kill points)"
# Every host can become the primary: the options of both roles.  2 s of
# silence before a takeover: a frozen primary is noticed, a loaded machine
# does not fake a failure.
role_opts=(--interval "$interval" --heartbeat 200 --miss 10)

# start_standby NAME PORT: a standby QEMU and remusd named NAME; sets SBY
# and SBY_QEMU.
start_standby() {
	start_guest "$1" "$append" --incoming "unix:$T/$1.in"
	SBY_QEMU=$QEMU_PID
	start_remusd "$1" standby --qmp "$T/$1.qmp" --incoming "$T/$1.in" \
		--listen "127.0.0.1:$2" --ctl "$T/$1.ctl" --report "$T/$1.report" \
		--metrics "$T/$1.metrics" "${role_opts[@]}"
	SBY=$REMUSD_PID
}

port=$(free_port)
start_guest h0 "$append"
cur=h0 cur_qemu=$QEMU_PID
start_standby h1 "$port"
next=h1 next_d=$SBY next_qemu=$SBY_QEMU
wait_serial h0 GUEST-UP 120 "the guest to boot on h0"
start_remusd h0 primary --qmp "$T/h0.qmp" --standby "127.0.0.1:$port" --ctl "$T/h0.ctl" \
	--metrics "$T/h0.metrics" "${role_opts[@]}"
cur_d=$REMUSD_PID

fo_ms=()
for r in $(seq "$cycles"); do
	# A takeover before the kill (a false failover) would make every
	# check below fail for the wrong reason: say so instead.
	no_early_failover() {
		[ ! -s "$T/$next.report" ] ||
			fail "cycle $r: $next took over before $cur died: $(json_get "$(cat "$T/$next.report")" failover.reason)"
	}
	epochs=$((1 + RANDOM % 4))
	frac=$((RANDOM % 100))
	how="kill" done=killed
	[ $((RANDOM % 4)) -ne 0 ] || how=freeze done=frozen
	wait_serial "$cur" "$progress" 60 "cycle $r: the guest to run on $cur"
	n0=$(count_lines "$T/$cur.metrics")
	committed() { no_early_failover; [ "$(count_lines "$T/$cur.metrics")" -ge $((n0 + epochs)) ]; }
	wait_for $((90 + epochs * interval / 250)) "cycle $r: $epochs epochs from $cur to $next" committed
	sleep "$(printf '%d.%03d' $((frac * interval / 100000)) $((frac * interval / 100 % 1000)))"
	no_early_failover
	host_dies "$how" "$cur_d" "$cur_qemu"

	wait_takeover "$T/$next.report" "cycle $r: $next"
	report=$REPORT_JSON
	# The frozen host is dead for good now.
	[ "$how" != freeze ] || kill_now "$cur_d" "$cur_qemu"
	sleep 3
	! has_serial "$next" GUEST-UP || fail "cycle $r: the guest booted again on $next"
	if [ "$guest" = tick ]; then
		check=$(check_ticks "$cur" "$next" "$interval")
	else
		check=$(check_dirty_continuity "$cur" "$next")
	fi
	fo_ms+=("$(json_get "$report" failover.failover_ms)")
	echo "cycle $r: $cur $done $frac % into an epoch after $epochs more; $next took over in" \
		"${fo_ms[-1]} ms from epoch $(json_get "$report" failover.epoch) ($(json_get "$report" failover.reason)); $check"

	cur=$next cur_d=$next_d cur_qemu=$next_qemu
	if [ "$r" -lt "$cycles" ]; then
		next=h$((r + 1))
		port=$(free_port)
		start_standby "$next" "$port"
		next_d=$SBY next_qemu=$SBY_QEMU
		wait_for 30 "$next's control socket" test -S "$T/$next.ctl"
		out=$(ctl "$T/$cur.ctl" protect "127.0.0.1:$port") ||
			fail "cycle $r: $cur refused to protect to $next: $out"
	fi
done
echo "$guest $interval ms: $cycles failovers in a row, failover ms: ${fo_ms[*]}"
