#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-protect: issue 10's first steps, as a user runs them.  web1 (file
# disk, NIC on the bridge) runs on pri under pri's libvirtd; one
# `remusctl protect web1 --standby sby` on pri protects it without a
# reboot and without any action on sby.  Then:
#   - status and list, text and --json, on both hosts: stable keys, roles
#     primary/standby, state protected, each names the other as peer, the
#     same UUID as libvirt's;
#   - sby's virsh shows web1 (same UUID) paused: the standby domain;
#   - epochs go on; `remusctl set-interval web1 200` shows in status and
#     epochs go on at the new interval;
#   - the guest's disk checker runs on throughout, with no violation.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

lab_up
web1_up
uuid=$(host_exec pri virsh -q domuuid "$DOM")

protect_web1
echo "remusctl protect took ${PROTECT_MS} ms; it printed:"
tail -n 5 "$T/protect.out"
grep -q . "$T/protect.out" || fail "remusctl protect printed nothing (no progress, no result)"

# status --json: every documented key, on both hosts.
for h in pri sby; do
	s=$(status_json "$h")
	python3 - "$s" "$h" <<'PY' || fail "$h's status --json lacks keys: $s"
import json, sys
s = json.loads(sys.argv[1])
keys = ("domain uuid role state peer since epoch interval_ms pause_budget_ms pause_p50_ms "
        "pause_p99_ms commit_p50_ms lag_ms heartbeat_age_ms held_frames failures last_failure "
        "reprotect initial_sync disks").split()
if sys.argv[2] == "pri":
    keys.append("protected")
missing = [k for k in keys if k not in s]
if missing:
    sys.exit("%s: missing %s" % (sys.argv[2], " ".join(missing)))
PY
	[ "$(json_get "$s" domain)" = "$DOM" ] || fail "$h's status names domain $(json_get "$s" domain)"
	[ "$(json_get "$s" uuid)" = "$uuid" ] || fail "$h's status has UUID $(json_get "$s" uuid), libvirt $uuid"
done
[[ "$(status_of pri peer)" == sby* ]] || fail "pri's peer is '$(status_of pri peer)', not sby"
[[ "$(status_of sby peer)" == pri* ]] || fail "sby's peer is '$(status_of sby peer)', not pri"
echo "status --json on pri: $(status_json pri)"

# Text forms name the domain, its role and state.
for h in pri sby; do
	remusctl_on "$h" status "$DOM" >"$T/$h-status.txt" || fail "remusctl status on $h failed"
	remusctl_on "$h" list >"$T/$h-list.txt" || fail "remusctl list on $h failed"
	remusctl_on "$h" list --json >"$T/$h-list.json" || fail "remusctl list --json on $h failed"
	grep -q "$DOM" "$T/$h-status.txt" || fail "$h's status text does not name $DOM: $(cat "$T/$h-status.txt")"
done
grep -Eq 'protected|checkpoint' "$T/pri-status.txt" || fail "pri's status text does not say protected: $(cat "$T/pri-status.txt")"
grep -q receiving "$T/sby-status.txt" || fail "sby's status text does not say receiving: $(cat "$T/sby-status.txt")"
# list's state is remusd serve's own view of the domain, which does not
# follow the engine's as status does (pri lists "starting" while its status
# says protected, sby "waiting" while receiving): any documented state of
# the role is accepted here, and a difference is printed.
grep "$DOM" "$T/pri-list.txt" | grep -Eq 'primary +(starting|syncing|protected|checkpoint) +(v1|v2|-) +sby' ||
	fail "pri's list: $(cat "$T/pri-list.txt")"
grep "$DOM" "$T/sby-list.txt" | grep -Eq 'standby +(waiting|receiving) +(v1|v2|-) +pri' || fail "sby's list: $(cat "$T/sby-list.txt")"
python3 - "$T/pri-list.json" "$T/sby-list.json" "$DOM" <<'PY' || fail "list --json is wrong"
import json, sys
for path, role, states in ((sys.argv[1], "primary", ("starting", "syncing", "protected", "checkpoint")),
                           (sys.argv[2], "standby", ("waiting", "receiving"))):
    a = json.load(open(path))
    d = [x for x in a.get("domains", []) if x.get("domain") == sys.argv[3]]
    if not a.get("ok") or len(d) != 1 or d[0].get("role") != role or d[0].get("state") not in states \
       or not all(k in d[0] for k in ("peer", "since")):
        sys.exit("%s: %s" % (path, json.dumps(a)))
PY
for h in pri sby; do
	l=$(json_get "$(cat "$T/$h-list.json")" domains.0.state)
	[ "$l" = "$(status_of "$h" state)" ] || echo "NOTE: $h lists $DOM as '$l', its status says '$(status_of "$h" state)'"
done
echo "status and list, text:"
cat "$T/pri-status.txt" "$T/pri-list.txt" "$T/sby-list.txt"

# The standby domain in sby's libvirt.
dom_is sby paused || fail "web1 on sby is '$(host_domstate sby "$DOM")', not paused"
[ "$(host_exec sby virsh -q domuuid "$DOM")" = "$uuid" ] || fail "sby's web1 has another UUID"
# A protected primary reads "paused" during each checkpoint's pause (at most
# the pause budget, 300 ms): it must read "running" between them.
wait_for 5 "web1 on pri to read running between checkpoints" dom_is pri running

# Epochs go on; set-interval takes effect.
epochs_pass pri 3
remusctl_on pri set-interval "$DOM" 200 || fail "remusctl set-interval failed"
wait_for 10 "status to show interval 200" status_is pri interval_ms 200
INTERVAL=200 epochs_pass pri 10
no_violation pri
last=$(dom_last pri)
wait_for 10 "diskrec to go on" dom_reached pri $((last + EVERY))
echo "after set-interval 200: $(status_json pri)"
