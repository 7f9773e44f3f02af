#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   chaos-kill-primary.sh NETBUFFER FAULTS SCENARIOS [WORKLOAD [FENCE]]
#                         NETBUFFER: qemu | off; WORKLOAD: memory (default) | disk
#                         FENCE: off (default) | lab (the standby powers the
#                         old primary's host off before it takes over)
#
# remus-chaos end to end (doc/man/remus-chaos.1): the lab in network
# namespaces, the kvstore guest protected h0 -> h1, remus-chaos-client's
# sessions from the client host, FAULTS faults drawn from SCENARIOS
# (kill-primary, kill-remusd, kill-standby, kill-standby-sync,
# kill-standby-initial, partition, stall, slow-link; FAULTS
# "each": one of each, in that order, NAME*N for N in a row)
# at random points of an epoch with
# re-protection in between, then remus-chaos-check on the history.  With
# WORKLOAD disk, kvstore logs every write to its replicated disk before it
# acknowledges it, and the log on the last primary's image must be valid
# and equal to the client's final reads.
#
#   NETBUFFER qemu  the run must pass: every fault taken over, 0 violations,
#                   acknowledged operations before and after every fault
#   NETBUFFER off   the negative control: no output commit, so the client
#                   sees writes of epochs the standby never got; the checker
#                   must report violations (remus-chaos exits 0 only then)
#   partition or stall, FENCE off  the other negative control: the
#                   network splits (or the primary stalls and wakes), each
#                   side's clients reach their side's host, and without a
#                   fence both hosts run the guest: the checker must report
#                   a split brain (two primaries acknowledging writes), and
#                   the report must say why a fence is needed
#
# REMUS_CHAOS_STACK (default remusd: QEMU and remusd primary/standby by
# hand, every scenario) or libvirt (chaos-libvirt.sh: libvirtd and remusd
# serve on each host, the domain protected once with remusctl protect; then
# every fault, the last one too, must be followed by remusd serve's own
# re-protection, seen in remusctl status on both hosts: the report has a
# re-protection time for each).
#
# The seed is printed; REMUS_TEST_SEED=N replays the schedule.  Needs root.
source "$(dirname "$0")/../../lib/remus.sh"

netbuffer=${1:?netbuffer: qemu or off}
faults=${2:?faults}
scenarios=${3:?scenarios}
workload=${4:-memory}
fence=${5:-off}
stack=${REMUS_CHAOS_STACK:-remusd}
require_root "network namespaces"
need REMUSD REMUS_CHAOS REMUS_CHAOS_CLIENT REMUS_CHAOS_CHECK REMUS_GUEST_KERNEL
extra=()
if [ "$stack" = libvirt ]; then
	need REMUSCTL
	[ -x "${LIBVIRTD:-/usr/sbin/libvirtd}" ] || skip "no libvirtd (install libvirt-daemon)"
	extra=(--reprotect-last)
fi
seed=${REMUS_TEST_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "$TEST_NAME: seed $seed (REMUS_TEST_SEED=$seed replays the schedule)"

# remus-chaos tears its lab down on every way out it sees; if this test is
# SIGKILLed with it, its namespaces are a dead run's, reaped here.
reap() { "$REMUS_CHAOS" reap >/dev/null 2>&1 || true; }
at_cleanup reap

if [ "$faults" = each ]; then
	# NAME*N is N of them in a row (remus-chaos run --schedule).
	what=(--schedule "$scenarios")
	faults=$(python3 -c 'import sys
print(sum(int(x.partition("*")[2] or 1) for x in sys.argv[1].split(",") if x))' "$scenarios")
else
	what=(--faults "$faults" --scenarios "$scenarios")
fi
set +e
"$REMUS_CHAOS" run --stack "$stack" "${what[@]}" "${extra[@]+"${extra[@]}"}" --seed "$seed" \
	--netbuffer "$netbuffer" --workload "$workload" --fence "$fence" \
	--out "$T/run" 2>&1 | tee "$T/chaos.log"
rc=${PIPESTATUS[0]}
set -e
[ -s "$T/run/report.json" ] || fail "remus-chaos wrote no report (exit $rc)"
report=$(cat "$T/run/report.json")
[ -z "$(json_get "$report" lab_error)" ] || fail "the lab failed: $(json_get "$report" lab_error)"
[ "$(json_get "$report" config.stack)" = "$stack" ] || fail "the run was not on stack $stack"
[ "$(json_get "$report" totals.faults)" = "$faults" ] ||
	fail "$faults faults scheduled, $(json_get "$report" totals.faults) applied"
takeovers=$(python3 -c 'import json,sys; print(sum(not f["kind"].startswith("kill-standby") and f["kind"] != "slow-link" for f in json.load(open(sys.argv[1]))["faults"]))' "$T/run/report.json")
[ "$(json_get "$report" totals.failovers)" = "$takeovers" ] ||
	fail "$takeovers faults that need a takeover but $(json_get "$report" totals.failovers) failovers"
# The HTML report: well-formed XHTML, one red line per fault, one
# highlighted row per kept violation (none when there is none).
python3 - "$T/run/report.html" "$T/run/report.json" <<'PY' || fail "report.html"
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
rep = json.load(open(sys.argv[2]))
S, X = "{http://www.w3.org/2000/svg}", "{http://www.w3.org/1999/xhtml}"
faults = [e for e in root.iter(S + "line") if e.get("class") == "fault"]
rows = [e for e in root.iter(X + "tr") if e.get("id", "").startswith("v")]
if len(faults) != len(rep["faults"]) or len(rows) != len(rep["check"]["violations"]):
    sys.exit(f"report.html: {len(faults)} fault lines, {len(rows)} violation rows")
print(f"report.html: {len(faults)} faults, {len(rows)} violations shown")
PY
ops=$(json_get "$report" totals.operations)
[ "$ops" -ge 100 ] || fail "only $ops operations in the history: the workload did not run"
violations=$(json_get "$report" totals.violations)
if [ "$fence" = off ] && [ "$stack" = libvirt ] && [ "$scenarios" = stall ]; then
	# The libvirt stack's stall without a fence: the survivor's
	# re-protection waits on the stalled host's peer port, so when it
	# wakes its remusd serve's fence rule destroys its copy (a late fence
	# of its own); then no client need see two primaries.  Either that
	# with 0 violations, or a split brain reported.
	python3 - "$T/run/report.json" "$rc" <<'PY' || fail "stall without a fence: $(json_get "$report" verdict)"
import json, sys
r = json.load(open(sys.argv[1]))
f = r["faults"][0]
sb = r["check"]["split_brain"]
v = r["totals"]["violations"]
if sys.argv[2] != "0":
    sys.exit(f"exit {sys.argv[2]}")
if sb:
    print(f"negative control: split brain on {sb['keys']} keys reported without a fence ({v} "
          "violations)")
elif f.get("fenced") == "fence-rule" and v == 0:
    print(f"no fence: the woken old primary's copy destroyed by its remusd serve's fence rule "
          f"{f['two_primaries_ms']} ms after the stall began (stalled {f['stall_ms']} ms), "
          "0 violations")
else:
    sys.exit(f"neither a split brain nor the fence rule: {f}, {v} violations")
PY
	grep -q "must fence the old primary" "$T/run/report.txt" ||
		fail "the report does not say why a fence is needed"
elif [ "$fence" = off ] && [[ ,$scenarios, == *,partition,* || ,$scenarios, == *,stall,* ]]; then
	split=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["check"]["split_brain"]; print(s["keys"] if s else 0)' "$T/run/report.json")
	[ "$rc" -eq 0 ] && [ "$split" -gt 0 ] ||
		fail "no split brain reported in a $scenarios without a fence (exit $rc, $violations violations)"
	grep -q "must fence the old primary" "$T/run/report.txt" ||
		fail "the report does not say why a fence is needed"
	echo "negative control: split brain on $split keys reported without a fence ($violations violations)"
elif [ "$netbuffer" = off ]; then
	[ "$rc" -eq 0 ] && [ "$violations" -gt 0 ] ||
		fail "negative control: no violation reported without output commit (exit $rc)"
	echo "negative control: $violations violations reported without output commit"
else
	[ "$rc" -eq 0 ] && [ "$violations" -eq 0 ] ||
		fail "violations or a failed run (exit $rc, $violations violations)"
	# Every fault: the service answered again afterwards.
	python3 - "$T/run/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for f in r["faults"]:
    if f.get("recovered_after_ms") is None:
        sys.exit(f"fault {f['n']}: no acknowledged operation after it")
    if f["kind"] == "kill-standby-initial":
        # Killed while the first sync ran; the guest lived on; protected
        # once the host came back.
        if not f["during_sync"] or not f["guest_alive"] or f.get("reprotect_ms") is None:
            sys.exit(f"kill-standby-initial: {f}")
        print(f"kill-standby-initial: {f['after_sync_start_ms']} ms into the first sync "
              f"(state {f['state_at_kill']}), noticed after {f['detection_ms']} ms, "
              f"protected {f['reprotect_ms']} ms after the host came back")
    if f["kind"] in ("kill-standby-sync", "kill-standby-initial") and not f["during_sync"]:
        sys.exit(f"{f['kind']}: the standby was not killed during a sync: {f}")
    if f["kind"] == "slow-link":
        # No false failover (remus-chaos fails the run on one), and the
        # link really slowed the checkpoints: the lag (oldest checkpoint
        # not committed) at least doubled and passed an interval.  The
        # epochs themselves keep their interval (the engine pipelines
        # checkpoints on the link), so they are printed, not required.
        q = f.get("qdisc") or {}
        if f["false_failover"] or not f["stretched"]:
            sys.exit(f"slow-link: the link did not slow the checkpoints: {f}")
        print(f"slow-link at {f['rate']} ({f['link_bytes_per_s_before']} B/s before): lag max "
              f"{f['lag_ms_before']['max']} -> {f['lag_ms_during']['max']} ms, epochs p50 "
              f"{f['epoch_ms_before']['p50']} -> {f['epoch_ms_during']['p50']} ms, tbf "
              f"{q.get('bytes')} B {q.get('overlimits')} overlimits, {f['slow_ms']} ms, no "
              "false failover")
print("per fault unavailability ms:", [f["unavailable_ms"] for f in r["faults"]])
d = r.get("disk_check")
if r["config"]["workload"] == "disk":
    if not d or not d["ok"]:
        sys.exit(f"disk check failed: {d}")
    print(f"disk: {d['records']} records on {d['image']}, equal to the final reads")
PY
fi
if [ "$stack" = libvirt ]; then
	# Re-protection is remusd serve's (remus-chaos only brings the host
	# back and reads remusctl status): after every fault, each timed.
	python3 - "$T/run/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
# slow-link takes nothing down: nothing to re-protect.
ms = [f.get("reprotect_ms") for f in r["faults"] if f["kind"] != "slow-link"]
if None in ms:
    sys.exit(f"a fault without re-protection: {ms}")
print("re-protected by remusd serve after every fault, ms:", ms)
for f in r["faults"]:
    if f.get("fenced") is True and f.get("fence_ms") is None:
        sys.exit(f"fault {f['n']} ({f['kind']}): fenced, but no fence in the takeover: {f}")
    if f.get("fence_ms") is not None:
        print(f"fault {f['n']} ({f['kind']}): the standby fenced {f['host']} "
              f"{f['fence_ms']} ms after it declared it lost; detection {f['detection_ms']} ms, "
              f"failover {f['failover_ms']} ms")
    if f["kind"] == "kill-remusd" and f.get("fence_ms") is None:
        # QEMU is libvirtd's: the old copy outlives the takeover, and
        # the restarted remusd serve's fence rule destroys it.
        if not f.get("old_qemu_alive_at_takeover") or not f.get("stale_copy_fenced"):
            sys.exit(f"kill-remusd: {f}")
        print(f"kill-remusd: old copy {f['old_domain_at_takeover']!r} at the takeover "
              f"({f['failover_ms']} ms), {f['old_domain_before_restart']!r} before remusd "
              f"serve restarted; then: {f['stale_copy_fenced']}")
PY
fi
