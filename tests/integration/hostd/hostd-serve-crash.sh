#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# hostd-serve-crash: what a remusd serve that dies does to a protected
# guest (issue 10; docs/ARCHITECTURE.md, "When remusd serve stops or
# dies").  web1 (tick guest, file disk, NIC on br0) runs on pri under
# pri's libvirtd, protected onto sby by `remusctl protect`.  Then pri's
# remusd serve is SIGKILLed: its QMP proxy, and so its primary child, go
# with it; sby's standby takes over and web1 runs there (never left
# paused: virsh says running, its ticks go on).  pri's copy of web1 is
# not stopped by anyone meanwhile (no remusd runs on pri to do it):
# libvirt still runs it, its disk on the dead child's NBD export; the
# test prints both copies every 2 s until sby's copy ticked 5 times (the
# documented window of two copies).  pri's remusd serve is started
# again: by the fence rule (hostd/fence.h) pri destroys its stale copy
# at once: before it starts a primary child on it, it asks sby (query),
# which runs web1 after a newer
# takeover (1 against pri's record's 0).  The test fails if a primary
# child started on pri before that FENCE line (before the query, it ran
# on the stale copy for about 10 s, its output and disk live again, until
# sby's re-protection or its refusal of pri's own create-standby said
# so).  sby's copy is never touched.  sby then re-protects onto pri by itself, pri keeps the
# standby (virsh: paused), and the guest ticks on.  Nothing is done by
# hand on either host.
source "$(dirname "$0")/../../lib/remus.sh"
source "$REMUS_SOURCE_DIR/tests/lib/hosts.sh"
need REMUSD REMUSCTL

DOM=web1
host_up pri 10.9.0.11
host_up sby 10.9.0.12
host_libvirtd pri
host_libvirtd sby

host_remusd pri
PRI_SERVE=$REMUSD_SERVE_PID
host_remusd sby

host_define_guest pri "$DOM" "remus.ip=10.9.0.100/24 remus.run=tick" --disk-size 16
host_start_guest pri "$DOM"
host_wait_serial pri "$DOM" GUEST-UP 180 "$DOM to boot on pri"

ticks() { host_serial "$1" "$DOM" | grep -ac '^tick ' || true; }
# field HOST KEY: one key of HOST's `remusctl status web1 --json` ("" if refused).
field() { json_get "$(remusctl_on "$1" status "$DOM" --json 2>/dev/null || echo '{}')" "$2"; }
protected_as() { [ "$(field "$1" role)" = "$2" ] && [ "$(field "$1" protected)" = true ]; }
dom_is() { [ "$(host_domstate "$1" "$DOM")" = "$2" ]; }
# Conditions for wait_for are functions: wait_for runs its arguments
# again and again, but a "$(...)" among them is expanded once, before
# wait_for starts (the stall earlier runs of this test reported was that:
# `wait_for 40 ... test "$(ticks sby)" -gt N` compared one old count).
role_is() { [ "$(field "$1" role)" = "$2" ]; }
ticks_over() { [ "$(ticks "$1")" -gt "$2" ]; }

remusctl_on pri protect "$DOM" --standby sby --interval 500 >"$T/protect.out" 2>&1 ||
	fail "remusctl protect failed: $(tail -n 5 "$T/protect.out")"
wait_for 60 "pri to protect $DOM" protected_as pri primary
wait_for 30 "sby to hold $DOM as standby" role_is sby standby
dom_is sby paused || fail "the standby domain on sby is '$(host_domstate sby "$DOM")'"
echo "protected: pri primary, sby standby (paused)"

# pri's host daemon dies.
unwatch_daemon "$PRI_SERVE"
kill -KILL "$PRI_SERVE"
t0=$(now_ms)
wait_for 30 "web1 to run on sby" dom_is sby running
echo "sby took over $(( $(now_ms) - t0 )) ms after pri's remusd serve died"
echo "pri's own copy of web1 meanwhile: $(host_domstate pri "$DOM")"
# show: both copies' last tick, when their console log last grew, and
# what libvirt and QEMU say (the stall seen in earlier runs, issue 10).
last_tick() { host_serial "$1" "$DOM" | grep -a '^tick ' | tail -n 1 | tr -d '\n'; }
show() {
	local h
	for h in sby pri; do
		printf '%s: %s (log %s) %s %s; ' "$h" "$(last_tick "$h")" \
			"$(date -r "$(host_path "$h" "/var/log/libvirt/qemu/$DOM.serial")" +%T.%N 2>/dev/null | cut -c1-12)" \
			"$(host_exec "$h" virsh -q domstate --reason "$DOM" 2>&1 | head -1)" \
			"$(host_exec "$h" virsh -q qemu-monitor-command "$DOM" '{"execute":"query-status"}' 2>&1 | grep -o '"status":"[a-z-]*"')"
	done
	echo "at $(date +%T.%N | cut -c1-12)"
}
# It ticks on there (a tick a second; 5 ticks within 20 s, TCG under
# load), shown every 2 s until then: not 20 s whatever happens.
n=$(ticks sby)
deadline=$(( $(now_ms) + 20000 ))
until ticks_over sby $((n + 5)); do
	[ "$(now_ms)" -lt "$deadline" ] ||
		fail "the guest ticked $(( $(ticks sby) - n )) times on sby in 20 s"
	sleep 2
	show
done
show
! host_has_serial sby "$DOM" GUEST-UP || fail "$DOM booted again on sby"

# pri's remusd serve comes back; protection comes back by itself.
before=$(wc -l <"$T/pri-remusd.log")
host_remusd pri
wait_for 90 "sby to protect $DOM onto pri again" protected_as sby primary
wait_for 30 "pri to hold $DOM as standby" role_is pri standby
wait_for 30 "pri's copy to be the paused standby" dom_is pri paused
dom_is sby running || fail "web1 on sby is '$(host_domstate sby "$DOM")'"
! host_has_serial sby "$DOM" GUEST-UP || fail "$DOM booted again on sby"
grep -q "FENCE: destroying the copy here" "$T/pri-remusd.log" ||
	fail "pri's remusd serve did not say it fenced its stale copy"
# The restarted pri asked sby first and fenced before any primary child
# started on its stale copy (or "resumed as primary" was said).
tail -n +"$((before + 1))" "$T/pri-remusd.log" >"$T/pri-restart.log"
# (grep finds nothing: "", not the end of the script under pipefail)
fence_at=$(grep -n -m1 "FENCE: destroying the copy here" "$T/pri-restart.log" | cut -d: -f1 ||
	true)
child_at=$(grep -n -m1 -E "primary child started|resumed as primary" "$T/pri-restart.log" |
	cut -d: -f1 || true)
[ -n "$fence_at" ] || fail "the restarted remusd serve on pri did not fence its stale copy"
[ -z "$child_at" ] || [ "$child_at" -gt "$fence_at" ] ||
	fail "pri resumed its primary child on the stale copy before the fence: $(sed -n "${child_at}p" "$T/pri-restart.log")"
grep -m1 "FENCE: destroying the copy here" "$T/pri-restart.log"
# The survivor's copy is never replaced (before the fence rule, pri's
# request for a new standby made sby destroy it).
! grep -E "FENCE|replacing what is left of it here \(primary" "$T/sby-remusd.log" ||
	fail "sby destroyed its own copy of $DOM"
n=$(ticks sby)
show
deadline=$(( $(now_ms) + 40000 ))
until ticks_over sby $((n + 2)) || [ "$(now_ms)" -gt "$deadline" ]; do
	sleep 2
	show
done
if ! ticks_over sby $((n + 2)); then
	host_exec sby ping -c 2 -W 1 10.9.0.100 || true
	host_exec sby virsh -q qemu-monitor-command "$DOM" --hmp 'info chardev' || true
	host_exec sby virsh -q qemu-monitor-command "$DOM" --hmp 'info registers' | head -5 || true
	fail "the guest did not tick on after re-protection"
fi
echo "re-protected: sby primary, pri standby; status on sby:"
remusctl_on sby status "$DOM"
