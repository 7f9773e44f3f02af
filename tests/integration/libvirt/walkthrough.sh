#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# walkthrough: issue 10's acceptance, "the user's view", in one run on the
# lab (lib.sh: pri and sby, each with its own libvirtd and remusd serve,
# and the client cli), each step's commands and their output (trimmed)
# written to a transcript, each step checked so that the test fails when
# a step does not do what it says:
#
#   1 protect a running domain (file disk + bridged NIC): remusctl protect
#     exits 0, both hosts report it protected, sby's virsh shows the
#     standby paused, pri's disk is on remusd's export
#   2 status and list, text and --json, on both hosts (documented keys)
#   3 set-interval: status shows the new interval, epochs go on
#   4 guest-checked failover: pri dies, web1 runs in sby's libvirt, its
#     disk records continue from the last checkpoint (check_continuity)
#   5 automatic re-protection back to the restarted pri, then a second
#     failover (sby dies) onto pri, guest-checked again
#   6 planned failover: sby restarted and re-protected, then `remusctl
#     failover web1` moves it to sby, guest-checked
#   7 unprotect: a running unprotected domain on its file, no record, no
#     standby domain left
#   8 bad inputs: each refused with its message and exit code, nothing
#     changed (the full set, bridges and disk formats included, is
#     libvirt-bad-input.sh)
#
# The transcript is $T/walkthrough.txt; WALKTHROUGH_TRANSCRIPT=PATH also
# copies it to PATH on every way out (so a failed run shows how far it got).
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

TR=$T/walkthrough.txt
: >"$TR"
copy_transcript() {
	[ -z "${WALKTHROUGH_TRANSCRIPT:-}" ] || cp "$TR" "$WALKTHROUGH_TRANSCRIPT" || true
}
at_cleanup copy_transcript

# step TITLE: a heading in the transcript.
step() { printf '\n=== %s\n' "$*" | tee -a "$TR"; }
# note TEXT: a checked fact, in the transcript.
note() { printf '  -> %s\n' "$*" | tee -a "$TR" >/dev/null; echo "  -> $*"; }
# run_on HOST CMD...: runs CMD on HOST; its output in $OUT, exit code in $RC,
# both (the output cut to its first 25 and last 5 lines) in the transcript.
run_on() {
	local host=$1 n
	shift
	RC=0
	OUT=$(host_exec "$host" "$@" 2>&1) || RC=$?
	printf '[%s]# %s\n' "$host" "$(printf '%q ' "$@" | sed "s#$REMUSCTL#remusctl#g; s/ $//")" >>"$TR"
	n=$(printf '%s\n' "$OUT" | wc -l)
	if [ "$n" -gt 30 ]; then
		printf '%s\n' "$OUT" | head -n 25 >>"$TR"
		printf '  [... %d lines ...]\n' $((n - 30)) >>"$TR"
		printf '%s\n' "$OUT" | tail -n 5 >>"$TR"
	elif [ -n "$OUT" ]; then
		printf '%s\n' "$OUT" >>"$TR"
	fi
	printf '(exit %d)\n' "$RC" >>"$TR"
}
rctl() { local h=$1; shift; run_on "$h" "$REMUSCTL" "$@"; }
expect_rc() { [ "$RC" = "$1" ] || fail "$2: exit $RC, not $1: $OUT"; }
expect_out() { grep -Eq -- "$1" <<<"$OUT" || fail "$2: the output does not match '$1': $OUT"; }

lab_up
web1_up
step "0. the lab: pri $PRI_IP and sby $SBY_IP (own libvirtd + remusd serve each), cli $CLI_IP; web1 runs on pri"
run_on pri virsh list --all
run_on pri virsh domblklist web1 --details
run_on pri virsh domiflist web1
expect_out "bridge +br0" "web1's NIC"

# ---------------------------------------------------------------------------
step "1. protect a running domain (file disk + bridged NIC)"
t0=$(now_ms)
rctl pri protect "$DOM" --standby sby --interval "$INTERVAL"
expect_rc 0 "remusctl protect"
expect_out "protected" "remusctl protect's last words"
note "protect returned after $(($(now_ms) - t0)) ms"
is_protected pri primary || fail "after protect, pri's status is $(status_json pri)"
wait_for 30 "sby to report $DOM protected as standby" is_protected sby standby
run_on sby virsh list --all
expect_out "$DOM +paused" "sby's virsh list"
note "the standby is a paused libvirt domain on sby"
run_on pri virsh domblklist "$DOM" --details
expect_out "network +disk +vda" "pri's disk while protected"
run_on pri virsh domblklist "$DOM" --details --inactive
expect_out "network +disk +vda" "pri's persistent definition while protected"
note "pri's vda is on remusd's NBD export while protected, live and persistent (docs/ARCHITECTURE.md says why)"

# ---------------------------------------------------------------------------
step "2. status and list, text and --json"
epochs_pass pri 2
rctl pri status "$DOM"
expect_rc 0 "status"
for w in "role: +primary" "state: +(protected|checkpoint)" "peer: +sby" "epoch:" "pause:" \
	"commit latency:" "lag:" "heartbeat age:" "held frames:" "disks:"; do
	expect_out "$w" "status text"
done
rctl pri status "$DOM" --json
expect_rc 0 "status --json"
python3 -c 'import json, sys
d = json.loads(sys.argv[1])
keys = "domain uuid role state peer since epoch interval_ms pause_budget_ms pause_p50_ms pause_p99_ms commit_p50_ms lag_ms heartbeat_age_ms held_frames failures last_failure reprotect initial_sync disks".split()
missing = [k for k in keys if k not in d]
assert not missing, "missing keys %s" % missing
assert d["role"] == "primary" and d["domain"] == "web1" and d["epoch"] >= 1, d
assert d["disks"] and d["disks"][0]["target"] == "vda", d["disks"]' "$OUT" ||
	fail "status --json lacks what remusctl(8) documents"
note "status --json has every documented key"
rctl pri list
expect_out "$DOM +primary" "pri's list"
rctl sby list
expect_out "$DOM +standby" "sby's list"
rctl sby list --json
python3 -c 'import json, sys
d = json.loads(sys.argv[1])["domains"]
assert [x["role"] for x in d if x["domain"] == "web1"] == ["standby"], d' "$OUT" || fail "sby's list --json"
rctl sby status "$DOM"
expect_out "role: +standby" "sby's status"
rctl pri protect "$DOM" --standby sby
expect_rc 1 "a second protect"
expect_out "already protected here: primary, state" "a second protect"
note "a second protect is refused with the current state"

# ---------------------------------------------------------------------------
step "3. set-interval"
NEW=300
rctl pri set-interval "$DOM" "$NEW"
expect_rc 0 "set-interval"
wait_for 10 "the interval to read $NEW" status_is pri interval_ms "$NEW"
INTERVAL=$NEW
epochs_pass pri 3
rctl pri status "$DOM"
expect_out "interval: +$NEW ms" "status after set-interval"
note "the interval is $NEW ms and epochs go on (epoch $(epoch_of pri))"

# ---------------------------------------------------------------------------
step "4. failover: host pri dies"
sleep_into_epoch "$INTERVAL"
host_kill pri
t0=$(now_ms)
pri_last=$(dom_last pri)
note "pri killed (links down, every process SIGKILLed); web1's last record there: seq $pri_last"
wait_for 60 "web1 to run on sby" dom_is sby running
note "web1 running in sby's libvirt $(($(now_ms) - t0)) ms after host_kill returned (virsh polled every 100 ms)"
run_on sby virsh list --all
expect_out "$DOM +running" "sby's virsh list after the failover"
c=$(check_continuity pri sby "$pri_last")
note "$c"
rctl sby status "$DOM"
expect_out "role: +primary" "sby's status after the failover"

# ---------------------------------------------------------------------------
step "5. automatic re-protection back to the restarted pri, then a second failover"
t0=$(now_ms)
host_boot pri
host_remusd pri
note "pri booted again (libvirtd, remusd serve; no remusctl command)"
reprotected_onto() { is_protected "$1" primary && [[ "$(status_of "$1" peer)" == "$2"* ]]; }
wait_for 300 "sby to protect web1 again with pri as standby" reprotected_onto sby pri
wait_for 30 "pri's status to show web1 as standby" is_protected pri standby
note "re-protected back to pri $(($(now_ms) - t0)) ms after pri came back"
rctl sby list
expect_out "$DOM +primary" "sby's list"
rctl pri list
expect_out "$DOM +standby" "pri's list"
run_on pri virsh list --all
expect_out "$DOM +paused" "pri's virsh list (the standby)"
epochs_pass sby 3
sleep_into_epoch "$INTERVAL"
host_kill sby
sby_last=$(dom_last sby)
note "sby killed; web1's last record there: seq $sby_last"
wait_for 60 "web1 to run on pri again" dom_is pri running
run_on pri virsh list --all
expect_out "$DOM +running" "pri's virsh list after the second failover"
c=$(check_continuity sby pri "$sby_last")
note "$c"

# ---------------------------------------------------------------------------
step "6. planned failover (remusctl failover)"
host_boot sby
host_remusd sby
wait_for 300 "pri to protect web1 again with sby as standby" reprotected_onto pri sby
wait_for 30 "sby's status to show web1 as standby" is_protected sby standby
note "sby booted again; pri re-protected web1 onto it"
epochs_pass pri 3
host_spawn cli "$T/pri-console.copy" tail -n +1 -F "$(host_path pri "/var/log/libvirt/qemu/$DOM.serial")"
t0=$(now_ms)
rctl pri failover "$DOM"
expect_rc 0 "remusctl failover"
note "remusctl failover took $(($(now_ms) - t0)) ms"
wait_for 60 "web1 to run on sby" dom_is sby running
wait_for 30 "sby to report itself primary" status_is sby role primary
! dom_is pri running || fail "web1 still runs on pri after the planned failover"
sleep 1
pri_last=$(sed -n 's/^diskrec seq=\([0-9]*\) ok\r\{0,1\}$/\1/p' "$T/pri-console.copy" | tail -n 1)
c=$(check_continuity pri sby "$pri_last")
note "$c"
run_on sby virsh list --all
expect_out "$DOM +running" "sby's virsh list after the planned failover"
run_on pri virsh list --all
wait_for 120 "pri to become web1's standby" is_protected pri standby
rctl sby status "$DOM"
expect_out "role: +primary" "sby's status after the planned failover"
expect_out "peer: +pri" "sby's peer after the planned failover"

# ---------------------------------------------------------------------------
step "7. unprotect leaves a running, unprotected domain"
epochs_pass sby 2
before=$(dom_last sby)
rctl sby unprotect "$DOM"
expect_rc 0 "remusctl unprotect"
dom_is sby running || fail "web1 on sby is '$(host_domstate sby "$DOM")' after unprotect"
run_on sby virsh domblklist "$DOM" --details
expect_out "file +disk +vda" "sby's disk after unprotect"
rctl sby list
! grep -q "$DOM" <<<"$OUT" || fail "sby still lists web1: $OUT"
rctl sby status "$DOM"
expect_rc 1 "status of an unprotected domain"
not_paused() { ! dom_is "$1" paused; }
not_listed() { ! remusctl_on "$1" list | grep -q "$DOM"; }
wait_for 30 "pri's standby domain to go" not_paused pri
wait_for 30 "pri to forget web1" not_listed pri
rctl pri list
run_on pri virsh list --all
[ ! -e "$(host_path sby "/var/lib/remus/domains/$DOM.json")" ] || fail "sby still has web1's state file"
wait_for 30 "web1's disk checker to go on" dom_reached sby $((before + 5 * EVERY))
no_violation sby
note "web1 runs on sby, unprotected, on a plain file: diskrec from seq $before to $(dom_last sby), no violation"

# ---------------------------------------------------------------------------
step "8. bad inputs: each refused, nothing changed"
look() {
	local h
	for h in pri sby; do
		remusctl_on "$h" list
		host_exec "$h" virsh -q list --all
		host_exec "$h" virsh -q domblklist "$DOM" --details 2>/dev/null || true
	done
}
before=$(look)
rctl sby protect nosuch --standby pri
expect_rc 1 "protect of an unknown domain"
expect_out "no domain nosuch" "protect of an unknown domain"
rctl pri protect "$DOM" --standby sby
expect_rc 1 "protect of a shut-off domain"
expect_out "web1 is shut off" "protect of a shut-off domain"
rctl sby protect "$DOM" --standby cli
expect_rc 1 "protect towards a host without remusd"
expect_out "cli" "protect towards a host without remusd"
rctl sby protect "$DOM" --standby sby --interval 0
expect_rc 2 "protect with interval 0"
rctl sby set-interval nosuch 100
expect_rc 1 "set-interval of an unprotected domain"
expect_out "nosuch" "set-interval of an unprotected domain"
rctl sby unprotect "$DOM"
expect_rc 1 "unprotect of an unprotected domain"
rctl sby failover "$DOM"
expect_rc 1 "failover of an unprotected domain"
rctl sby frobnicate
expect_rc 2 "an unknown command"
after=$(look)
[ "$before" = "$after" ] || fail "a refused request changed something:
$before
--- after:
$after"
note "every refusal named its object; remusd's lists and both libvirts are as before"
dom_is sby running || fail "web1 on sby is '$(host_domstate sby "$DOM")' after the bad inputs"

step "done: every step checked"
echo "transcript: $TR"
