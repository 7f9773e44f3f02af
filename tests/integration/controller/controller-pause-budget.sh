#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The pause budget (issue 14), end to end on a dirtying 256 MiB guest.
#
# The fault: the primary QEMU has the migration capability
# pause-before-switchover on (set through a second QMP monitor, as an
# operator or a management tool could), so every checkpoint stops in
# status pre-switchover waiting for a migrate-continue that never comes.
# Each one must be abandoned within the budget: migrate_cancel, the guest
# resumed as soon as QEMU shows `cancelled`, the session ended with a
# CLOSE saying why (the standby does not take over), retried with a
# growing delay, each new migration only after the last one ended.  With
# the capability off again (in a retry's gap, when no migration runs)
# protection resumes by itself.  Then:
#  - every pause in the metrics file (committed or not) stays within its
#    budget plus a small margin; no log says "Invalid argument"; status
#    names the failure;
#  - set-pause-budget changes the budget of later checkpoints;
#  - a failover resumes the guest from the last commit with its memory
#    intact (the dirtier's own check).
source "$(dirname "$0")/../../lib/remus.sh"
interval=500
budget=100
margin_ms=60

append="remus.run=dirty remus.args=mb=32,mbps=4,seed=5"
port=$(free_port)
start_guest pri "$append" -- -qmp "unix:$T/pri.test.qmp,server=on,wait=off"
pri_qemu=$QEMU_PID
start_guest sby "$append" --incoming "unix:$T/in.sock"
start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" \
	--listen "127.0.0.1:$port" --ctl "$T/sby.ctl" --report "$T/report.json"
wait_serial pri 'dirty seq=0 ' 90 "the primary guest's dirtier to start"

# pause_before_switchover on|off: through the test's own QMP monitor;
# refused by QEMU while a migration runs, so retried for up to 30 s.
pause_before_switchover() {
	python3 - "$T/pri.test.qmp" "$1" <<'EOF'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
def call(cmd, args=None):
    f.write(json.dumps({"execute": cmd, "arguments": args or {}}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
json.loads(f.readline())
call("qmp_capabilities")
caps = {"capabilities": [{"capability": "pause-before-switchover",
                          "state": sys.argv[2] == "on"}]}
end = time.time() + 30
while True:
    r = call("migrate-set-capabilities", caps)
    if "return" in r:
        sys.exit(0)
    if time.time() > end:
        sys.exit("migrate-set-capabilities: %s" % r["error"]["desc"])
    time.sleep(0.005)
EOF
}
pause_before_switchover on

start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" \
	--interval $interval --ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" --reconnect 200 \
	--pause-budget $budget
prid=$REMUSD_PID

# committed / abandoned lines of the metrics file
count() { # true|false
	[ -f "$T/metrics.jsonl" ] || { echo 0; return; }
	grep -c "\"committed\":$1" "$T/metrics.jsonl" || true
}
at_least() { [ "$(count "$1")" -ge "$2" ]; }
status() { ctl "$T/pri.ctl" status; }
state() { json_get "$(status)" "$1"; }

wait_for 60 "3 abandoned checkpoints" at_least false 3
st=$(status)
echo "primary while its checkpoints are abandoned: $st"
[ "$(count true)" = 0 ] || fail "a checkpoint was committed in status pre-switchover"
json_get "$st" last_failure.reason | grep -q "abandoned.*pause budget of $budget ms" ||
	fail "status does not say why the last session failed: $st"
[ "$(json_get "$st" epochs_abandoned)" -ge 3 ] || fail "status counts no abandoned epoch: $st"
[ "$(json_get "$st" failures)" -ge 3 ] || fail "status counts no failed session: $st"
[ "$(json_get "$st" protected)" = false ] || fail "status claims protection: $st"
grep -q "QEMU's migration was pre-switchover when the pause budget ran out" "$T/primary.log" ||
	fail "the primary log does not name QEMU's status"
grep -q "pause budget of $budget ms" "$T/standby.log" ||
	fail "the standby was not told why the epoch was abandoned"
[ ! -e "$T/report.json" ] || fail "the standby took over after an abandoned epoch"

pause_before_switchover off
ctl "$T/pri.ctl" set-pause-budget 300 >/dev/null
wait_for 60 "3 committed epochs" at_least true 3
wait_for 10 "the primary to report protection" in_state "$T/pri.ctl" "$ST_PROTECTED"
[ "$(state pause_budget_ms)" = 300 ] || fail "set-pause-budget did not change the budget"
grep -q '"committed":true,"pause_budget_ms":300' "$T/metrics.jsonl" ||
	fail "the committed epochs did not run under the new budget"

# Every pause within its budget plus the margin; the abandoned ones too.
python3 - "$T/metrics.jsonl" "$margin_ms" <<'EOF' || fail "a pause exceeded its budget"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
margin = float(sys.argv[2])
bad = [m for m in lines if m["pause_ms"] > m["pause_budget_ms"] + margin]
ab = [m["pause_ms"] for m in lines if not m["committed"]]
ok = [m["pause_ms"] for m in lines if m["committed"]]
print("pauses: %d committed (max %.1f ms), %d abandoned (max %.1f ms)" %
      (len(ok), max(ok), len(ab), max(ab)))
for m in bad:
    print("over budget:", m)
sys.exit(1 if bad else 0)
EOF
! grep -n "Invalid argument" "$T/primary.log" "$T/standby.log" ||
	fail "a migration failed with 'Invalid argument'"
grep -q "cancelling the migration to resume the guest" "$T/primary.log" ||
	fail "the primary did not say it cancelled the checkpoint"

# Failover: the standby runs the guest from the last commit, memory intact.
sleep 0.3
kill_now "$prid" "$pri_qemu"
wait_takeover "$T/report.json"
sleep 4
! has_serial sby GUEST-UP || fail "the standby guest booted again"
check_dirty_continuity pri sby
echo "pause budget: abandoned checkpoints within budget, protection resumed, failover ok"
