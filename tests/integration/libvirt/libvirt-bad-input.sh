#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-bad-input: every refused `remusctl protect` gives its error and
# changes nothing.  Each case goes once through remusctl (exit 1, a message
# on stderr naming the object) and once as the raw control request (the
# answer's code), then both hosts must look exactly as before: remusd's
# lists, both libvirts' domains and states, the disks of pri's domains.
#   unknown domain               no-domain         names the domain
#   a defined, shut-off domain   not-running       names the domain
#   standby host without remusd  peer-unreachable  names the host
#   NIC on a bridge sby lacks    no-bridge         names the bridge
#   a vmdk disk                  bad-disk          names the disk
#   web1 protected twice         exists            says its state
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

lab_up
web1_up

# What must not change: remusd's view and both libvirts'.
look() {
	local h d
	for h in pri sby; do
		echo "== $h"
		remusctl_on "$h" list --json | python3 -c 'import json, sys
for d in json.load(sys.stdin).get("domains", []):
    print(d.get("domain"), d.get("role"), d.get("state"), d.get("peer"))'
		for d in $(host_exec "$h" virsh -q list --all --name); do
			echo "$d $(host_domstate "$h" "$d")"
			host_exec "$h" virsh -q domblklist "$d" --details
		done
	done
}

# refused CODE ERE ARG...: `remusctl protect ARG...` on pri exits 1 with
# ERE matching its message, the raw request gets CODE, nothing changes.
refused() {
	local code=$1 word=$2 before after rc=0 req answer
	shift 2
	before=$(look)
	remusctl_on pri protect "$@" >"$T/refused.out" 2>&1 || rc=$?
	[ "$rc" = 1 ] || fail "remusctl protect $* exited $rc, not 1: $(cat "$T/refused.out")"
	grep -Eq -- "$word" "$T/refused.out" || fail "remusctl protect $*: the message does not name '$word': $(cat "$T/refused.out")"
	req=$(python3 -c 'import json, sys
a = sys.argv[1:]
r = {"cmd": "protect", "domain": a[0]}
i = 1
while i < len(a):
    r[a[i].lstrip("-").replace("-", "_")] = a[i + 1]
    i += 2
if "interval" in r:
    r["interval_ms"] = int(r.pop("interval"))
print(json.dumps(r))' "$@")
	answer=$(remusd_request pri "$req")
	{ [ "$(json_get "$answer" ok)" = false ] && [ "$(json_get "$answer" code)" = "$code" ]; } ||
		fail "request $req: answer $answer, expected code $code"
	after=$(look)
	[ "$before" = "$after" ] || fail "protect $* changed something:
$before
---- after:
$after"
	echo "protect $*: refused ($code): $(head -n 1 "$T/refused.out")"
}

refused no-domain nosuch nosuch --standby sby

host_define_guest pri web2 "remus.run=tick" --disk none --mac 52:54:00:4c:41:02 --mem 128
refused not-running web2 web2 --standby sby

refused peer-unreachable cli "$DOM" --standby cli

# A running domain on a bridge that only pri has.
ip -n "$NS-pri" link add br1 type bridge
ip -n "$NS-pri" link set br1 up
host_define_guest pri web3 "remus.run=tick" --disk none --mac 52:54:00:4c:41:03 --mem 128 --bridge br1
host_start_guest pri web3
refused no-bridge br1 web3 --standby sby
host_exec pri virsh -q destroy web3 >/dev/null

# A running domain with a disk format remusd cannot replicate.
host_define_guest pri web4 "remus.run=tick" --disk-format vmdk --mac 52:54:00:4c:41:04 --mem 128
host_start_guest pri web4
refused bad-disk vda web4 --standby sby
host_exec pri virsh -q destroy web4 >/dev/null

# A second protect of a protected domain names its state.
protect_web1
refused exists 'protected|checkpoint' "$DOM" --standby sby
no_violation pri
