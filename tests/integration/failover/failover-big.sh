#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# failover-big.sh GUEST_MIB [EPOCH_MEM_MIB]: a big guest, most of its
# memory non-zero (the dirtier holds 80 % of it, 4 MiB/s dirtied), under
# the standby's memory bound (label slow: minutes under TCG, twice
# GUEST_MIB of RAM for the two QEMUs and GUEST_MIB of disk for a spill
# file):
#  - protection is established (time to the first commit);
#  - a session is ended (unprotect) and a new primary's full epoch goes
#    through a spill file (--epoch-mem EPOCH_MEM_MIB, default 256);
#  - the standby's peak RSS stays below its stated bound, its loop never
#    stalls for a heartbeat window, no heartbeat is missed;
#  - the primary dies: the standby takes over with the guest's memory
#    check intact.
# Prints one JSON line of figures (standby peak RSS, longest loop stalls,
# time to first commit, longest pause).
#
# FIRST_INTERVAL_MS (default 1000) is the --interval until the first
# commit of each session; the engine's convergence gate lets that epoch
# run until its copy fits the pause budget anyway.
source "$(dirname "$0")/../../lib/remus.sh"
mem=${1:?guest MiB}
epoch_mem=${2:-256}
dirty_mb=$((mem * 8 / 10))
first_interval=${FIRST_INTERVAL_MS:-1000}
append="remus.run=dirty remus.args=mb=$dirty_mb,mbps=4,seed=5"

port=$(free_port)
start_guest pri "$append" --mem "$mem"
pri_qemu=$QEMU_PID
start_guest sby "$append" --mem "$mem" --incoming "unix:$T/in.sock"
start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" \
	--listen "127.0.0.1:$port" --ctl "$T/sby.ctl" --report "$T/report.json" \
	--heartbeat 200 --miss 20 --epoch-mem "$epoch_mem" --spill-dir "$T"
wait_serial pri 'dirty seq=0 ' 900 "the dirtier to fill $dirty_mb MiB"

sby() { json_get "$(ctl "$T/sby.ctl" status)" "$1"; }
protect() { # METRICS INTERVAL_MS
	start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" \
		--interval "$2" --ctl "$T/pri.ctl" --metrics "$1" --heartbeat 200 --miss 20
	prid=$REMUSD_PID
}
at_least() { [ "$(count_lines "$1")" -ge "$2" ]; }

t0=$(now_ms)
protect "$T/m1.jsonl" "$first_interval"
wait_for 1800 "the first commit" at_least "$T/m1.jsonl" 1
first_commit_ms=$(($(now_ms) - t0))
first_bytes=$(json_get "$(head -1 "$T/m1.jsonl")" sent_bytes)
ctl "$T/pri.ctl" set-interval 1000 >/dev/null
wait_for 600 "10 committed epochs" at_least "$T/m1.jsonl" 11

# A new session: its full epoch goes through a spill file.
unwatch_daemon "$prid"
ctl "$T/pri.ctl" unprotect >/dev/null
wait_for 30 "the primary remusd to exit after unprotect" gone "$prid"
wait "$prid" || fail "the primary remusd exited with status $? after unprotect"
spilled0=$(sby bytes_spilled_total)
t1=$(now_ms)
protect "$T/m2.jsonl" "$first_interval"
wait_for 1800 "the resumed session's first commit" at_least "$T/m2.jsonl" 1
resume_commit_ms=$(($(now_ms) - t1))
ctl "$T/pri.ctl" set-interval 1000 >/dev/null
wait_for 600 "5 committed epochs after resuming" at_least "$T/m2.jsonl" 6
spilled1=$(sby bytes_spilled_total)
[ $((spilled1 - spilled0)) -gt $((dirty_mb << 19)) ] ||
	fail "the resumed full epoch did not spill ($spilled0 -> $spilled1 bytes)"

st=$(ctl "$T/sby.ctl" status)
pri_st=$(ctl "$T/pri.ctl" status)
peak=$(json_get "$st" peak_rss_kb)
bound=$(json_get "$st" memory_bound_kb)
stall=$(json_get "$st" loop_max_stall_ms)
[ "$peak" -lt "$bound" ] || fail "standby peak RSS $peak kB over its bound of $bound kB: $st"
python3 -c "import sys; sys.exit(0 if $stall < 4000 else 1)" ||
	fail "the standby's loop stalled for $stall ms, a heartbeat window (20 x 200 ms)"
! grep "no word from" "$T/standby.log" "$T/primary.log" || fail "a heartbeat was missed"

sleep_into_epoch 1000
host_dies kill "$prid" "$pri_qemu"
wait_takeover "$T/report.json"
report=$REPORT_JSON
sleep 5
! has_serial sby GUEST-UP || fail "the standby guest booted again"
check_dirty_continuity pri sby

python3 - "$T/m1.jsonl" "$T/m2.jsonl" <<PY
import json, sys
s = [[json.loads(l) for l in open(f)] for f in sys.argv[1:]]
steady = [x["pause_ms"] for m in s for x in m[1:]]
budget = 300  # remusd's default --pause-budget
over = [(x["epoch"], x["pause_ms"]) for m in s for x in m if x["pause_ms"] > budget]
if over:
    sys.exit("pauses over the %d ms budget (epoch, ms): %s" % (budget, over))
print(json.dumps({
    "guest_mib": $mem, "dirty_mib": $dirty_mb, "epoch_mem_mib": $epoch_mem,
    "first_interval_ms": $first_interval,
    "first_commit_s": round($first_commit_ms / 1000, 1),
    "first_epoch_sent_bytes": $first_bytes,
    "resumed_full_epoch_commit_s": round($resume_commit_ms / 1000, 1),
    "resumed_full_epoch_spilled_bytes": $spilled1 - $spilled0,
    "standby_peak_rss_kb": $peak, "standby_memory_bound_kb": $bound,
    "standby_loop_max_stall_ms": round($stall, 1),
    "primary_loop_max_stall_ms": round($(json_get "$pri_st" loop_max_stall_ms), 1),
    "pause_ms_first_epochs": [round(m[0]["pause_ms"], 1) for m in s],
    "pause_ms_max_later_epochs": round(max(steady), 1),
    "late_beats": $(json_get "$st" late_beats),
    "failover_ms": round($(json_get "$report" failover.failover_ms), 1),
}))
PY
