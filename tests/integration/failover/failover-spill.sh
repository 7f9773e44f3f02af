#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The standby's memory stays bounded while it protects a guest whose every
# epoch is bigger than its --epoch-mem (8 MiB here; a 256 MiB guest with
# 160 MiB of it non-zero, 16 MiB/s dirtied):
#  - the first epoch of the new stream goes to the standby QEMU as it
#    arrives; the primary remusd is killed in the middle of it, so the
#    standby cuts the stream cleanly, and the next primary resumes it
#    (HELLO_ACK RESUME at epoch 1: the standby QEMU is not restarted);
#  - later epochs, and the full epoch after an unprotect and a new
#    primary, spill to files and reach the standby QEMU from there;
#  - the standby's peak RSS stays below the bound it states (--epoch-mem
#    + 64 MiB), its loop never stalls for a heartbeat window, and neither
#    side misses a heartbeat;
#  - the primary dies: the standby takes over, and the dirtier's memory
#    check finds the guest's memory intact.
# Prints the standby's memory and stall figures.
source "$(dirname "$0")/../../lib/remus.sh"
epoch_mem=8
append="remus.run=dirty remus.args=mb=160,mbps=16,seed=3"

port=$(free_port)
start_guest pri "$append"
pri_qemu=$QEMU_PID
start_guest sby "$append" --incoming "unix:$T/in.sock"
start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" \
	--listen "127.0.0.1:$port" --ctl "$T/sby.ctl" --report "$T/report.json" \
	--heartbeat 100 --miss 5 --epoch-mem "$epoch_mem" --spill-dir "$T"
# The dirtier's initial fill (seq 0) makes its 160 MiB non-zero.
wait_serial pri 'dirty seq=0 ' 120 "the primary guest's memory to be filled"

sby() { json_get "$(ctl "$T/sby.ctl" status)" "$1"; }
protect() { # METRICS INTERVAL_MS
	start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" \
		--interval "$2" --ctl "$T/pri.ctl" --metrics "$1" --heartbeat 100 --miss 5
	prid=$REMUSD_PID
}
at_least() { [ "$(count_lines "$1")" -ge "$2" ]; }

# 1. The first epoch reaches the standby QEMU before it commits; the
# primary dies in the middle of it (4 s epochs leave the time).
protect "$T/m1.jsonl" 4000
streaming() { [ "$(sby qemu_bytes_written)" -gt $((32 << 20)) ]; }
wait_for 60 "the first epoch to reach the standby QEMU" streaming
st=$(ctl "$T/sby.ctl" status)
kill_now "$prid"
[ "$(json_get "$st" epochs_committed)" = 0 ] ||
	fail "the first epoch committed before the primary was killed: $st"
echo "first epoch: $(json_get "$st" qemu_bytes_written) bytes in the standby QEMU before its commit"
is_cut() { [ "$(sby stream_cuts)" -ge 1 ] && [ "$(sby state)" = "$ST_WAITING" ]; }
wait_for 10 "the standby to cut the stream" is_cut
grep "uncommitted epoch cut" "$T/standby.log" || true
# The heartbeat check below covers the sessions after this kill only: the
# standby may have noticed the killed primary as silence ("no word from")
# rather than as a closed link, when its input was paused for QEMU to
# catch up and the FIN sat unread behind it.
sby_log_from=$(($(count_lines "$T/standby.log") + 1))
pri_log_from=$(($(count_lines "$T/primary.log") + 1))
# The killed primary's migration has failed by now (its fd is gone).
sleep 1

# 2. A new primary resumes the cut stream with a full epoch, passed on as
# it comes (nothing is committed yet); later epochs spill.
protect "$T/m2.jsonl" 1000
wait_for 180 "6 committed epochs after the cut" at_least "$T/m2.jsonl" 6
grep -q "resuming the stream at epoch 1" "$T/standby.log" ||
	fail "the standby did not resume its cut stream at epoch 1"
first=$(head -1 "$T/m2.jsonl")
[ "$(json_get "$first" epoch)" = 1 ] || fail "the resumed stream did not continue at epoch 1: $first"
is_full "$first" || fail "the first epoch after the cut was not full: $first"
st=$(ctl "$T/sby.ctl" status)
[ "$(json_get "$st" epochs_direct)" = 1 ] || fail "epoch 1 did not go to QEMU as it came: $st"
[ "$(json_get "$st" epochs_spilled)" -ge 3 ] || fail "the later epochs did not spill: $st"

# 3. Unprotect and protect again: a full epoch after a commit spills too.
unwatch_daemon "$prid"
ctl "$T/pri.ctl" unprotect >/dev/null
wait_for 10 "the primary remusd to exit after unprotect" gone "$prid"
wait "$prid" || fail "the primary remusd exited with status $? after unprotect"
spilled0=$(sby bytes_spilled_total)
protect "$T/m3.jsonl" 1000
wait_for 180 "4 committed epochs after re-protecting" at_least "$T/m3.jsonl" 4
first=$(head -1 "$T/m3.jsonl")
is_full "$first" || fail "the first epoch after re-protecting was not full: $first"
spilled1=$(sby bytes_spilled_total)
[ $((spilled1 - spilled0)) -gt $((100 << 20)) ] ||
	fail "the full epoch did not spill ($spilled0 -> $spilled1 bytes spilled)"

# 4. Memory, stalls, heartbeats.
st=$(ctl "$T/sby.ctl" status)
echo "standby: $st"
peak=$(json_get "$st" peak_rss_kb)
bound=$(json_get "$st" memory_bound_kb)
stall=$(json_get "$st" loop_max_stall_ms)
[ "$bound" -eq $(((epoch_mem + 64) * 1024)) ] || fail "the stated bound is $bound kB"
[ "$peak" -lt "$bound" ] || fail "standby peak RSS $peak kB over its bound of $bound kB"
[ "$(json_get "$st" epoch_bytes_in_memory_peak)" -le $((epoch_mem << 20)) ] ||
	fail "epoch memory over --epoch-mem: $st"
python3 -c "import sys; sys.exit(0 if $stall < 500 else 1)" ||
	fail "the standby's loop stalled for $stall ms, a heartbeat window (5 x 100 ms)"
missed=$(tail -n "+$sby_log_from" "$T/standby.log" | grep "no word from";
	tail -n "+$pri_log_from" "$T/primary.log" | grep "no word from") || true
[ -z "$missed" ] || fail "a heartbeat was missed after the first kill: $missed"
pri_stall=$(json_get "$(ctl "$T/pri.ctl" status)" loop_max_stall_ms)

# 5. The primary dies: takeover from the last checkpoint, memory intact.
sleep_into_epoch 1000
host_dies kill "$prid" "$pri_qemu"
wait_takeover "$T/report.json"
report=$REPORT_JSON
sleep 4
! has_serial sby GUEST-UP || fail "the standby guest booted again"
check_dirty_continuity pri sby
echo "standby memory: peak RSS $peak kB, bound $bound kB (--epoch-mem $epoch_mem MiB);" \
	"epochs direct $(json_get "$st" epochs_direct), spilled $(json_get "$st" epochs_spilled)" \
	"($(json_get "$st" bytes_spilled_total) bytes); longest loop stall: standby $stall ms," \
	"primary $pri_stall ms; late beats $(json_get "$st" late_beats);" \
	"failover $(json_get "$report" failover.failover_ms) ms"
