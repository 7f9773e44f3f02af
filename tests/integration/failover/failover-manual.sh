#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Operator controls and hooks:
#   failover-manual.sh ok
#     set-interval at run time changes the epoch length; with --manual the
#     standby does not take over when the primary dies, "remusd ctl
#     failover" does; the fence command runs before, the activation hook
#     after, both with REMUS_EVENT and REMUS_EPOCH; the guest resumes from
#     the last checkpoint; the failover report (--report) replaces a
#     symlink planted at its path (mode 0644, the link's target untouched)
#   failover-manual.sh fence
#     the fence command fails: the standby must NOT run the guest (it could
#     still run on the primary) and says so
source "$(dirname "$0")/../../lib/remus.sh"
mode=${1:?ok or fence}
interval=1000

port=$(free_port)
start_guest pri "remus.run=tick"
pri_qemu=$QEMU_PID
start_guest sby "remus.run=tick" --incoming "unix:$T/in.sock"
if [ "$mode" = ok ]; then
	fence="echo \$REMUS_EVENT \$REMUS_EPOCH > $T/fenced"
else
	fence="echo refusing >&2; exit 3"
fi
# --report is replaced atomically, never written through: a symlink
# planted at its path must not redirect the report into its target.
echo precious >"$T/victim"
chmod 600 "$T/victim"
ln -s "$T/victim" "$T/report.json"
start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
	--ctl "$T/sby.ctl" --report "$T/report.json" --manual --fence "$fence" \
	--on-activate "echo \$REMUS_EVENT \$REMUS_EPOCH > $T/activated"
sby_d=$REMUSD_PID
wait_serial pri GUEST-UP 90 "the primary guest to boot"
start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" --interval $interval \
	--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl"
prid=$REMUSD_PID
lines() { count_lines "$T/metrics.jsonl"; }
at_least() { [ "$(lines)" -ge "$1" ]; }
wait_for 60 "3 committed epochs" at_least 3

if [ "$mode" = ok ]; then
	# 1000 ms -> 300 ms at run time: status says so, epochs come faster.
	ctl "$T/pri.ctl" set-interval 300 >/dev/null
	[ "$(json_get "$(ctl "$T/pri.ctl" status)" interval_ms)" = 300 ] ||
		fail "set-interval did not change the interval"
	out=$(ctl "$T/pri.ctl" set-interval 5 || true)
	[ "$(json_get "$out" ok)" = false ] || fail "set-interval accepted 5 ms: $out"
	n0=$(lines); t0=$(now_ms)
	wait_for 30 "10 more epochs" at_least $((n0 + 10))
	dt=$(($(now_ms) - t0))
	[ "$dt" -lt 8000 ] || fail "10 epochs took $dt ms after set-interval 300"
	echo "set-interval 300: 10 epochs in $dt ms"
fi

kill_now "$prid" "$pri_qemu"
sleep 2
st=$(ctl "$T/sby.ctl" status)
[ "$(json_get "$st" state)" = "$ST_WAITING" ] || fail "--manual standby took over by itself: $st"
[ -L "$T/report.json" ] && [ "$(cat "$T/victim")" = precious ] ||
	fail "--manual standby wrote a failover report by itself"

# A standby whose takeover failed exits non-zero (by design).
unwatch_daemon "$sby_d"
out=$(ctl "$T/sby.ctl" failover || true)
echo "failover request: $out"
report_written() { [ ! -L "$T/report.json" ] && [ -s "$T/report.json" ]; }
wait_for 30 "the failover report" report_written
report=$(cat "$T/report.json")
[ "$(cat "$T/victim")" = precious ] && [ "$(stat -c %a "$T/victim")" = 600 ] ||
	fail "the failover report was written through the symlink at its path: $(cat "$T/victim")"
rmode=$(stat -c %a "$T/report.json")
[ "$rmode" = 644 ] || fail "the failover report is mode $rmode, not 644"
if [ "$mode" = fence ]; then
	[ "$(json_get "$report" state)" = "$ST_FAILED" ] || fail "took over although fencing failed: $report"
	grep -q "NOT taking over" "$T/standby.log" || fail "no log line says the takeover was refused"
	sleep 2
	[ -z "$(ticks sby)" ] || fail "the standby guest runs without fencing"
	echo "fence failed: standby refused to take over, guest not started"
	exit 0
fi
[ "$(json_get "$report" state)" = "$ST_ACTIVE" ] || fail "manual failover failed: $report"
epoch=$(json_get "$report" failover.epoch)
[ "$(cat "$T/fenced")" = "fence $epoch" ] || fail "fence hook saw '$(cat "$T/fenced")'"
wait_for 5 "the activation hook" test -s "$T/activated"
[ "$(cat "$T/activated")" = "activated $epoch" ] || fail "activation hook saw '$(cat "$T/activated")'"
sleep 3
check_ticks pri sby 300
echo "manual failover from epoch $epoch: fenced, activated, $(json_get "$report" failover.failover_ms) ms"
