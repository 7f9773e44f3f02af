#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-planned-failover: `remusctl failover web1`, run on the standby
# host, moves web1 to sby with both hosts alive.  sby's virsh then shows
# web1 running and its remusd reports itself primary; the guest's disk
# checker goes on from where it was on pri with no violation and no reboot;
# web1 is no longer running on pri.  Re-protection (auto) then makes pri
# its standby, and sby's engine runs with the interval last set on pri
# (set-interval after protect), not protect's nor remusd's default.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

lab_up
web1_up
protect_web1
set_interval_web1 300
epochs_pass pri 3

# pri's console log is rewritten when pri gets a standby again: keep a copy.
host_spawn cli "$T/pri-console.copy" tail -n +1 -F "$(host_path pri "/var/log/libvirt/qemu/$DOM.serial")"
t0=$(now_ms)
remusctl_on sby failover "$DOM" >"$T/failover.out" 2>&1 ||
	fail "remusctl failover on sby failed: $(cat "$T/failover.out")"
echo "remusctl failover took $(($(now_ms) - t0)) ms: $(cat "$T/failover.out")"
wait_for 60 "web1 to run on sby" dom_is sby running
wait_for 30 "sby to report itself primary" status_is sby role primary
! dom_is pri running || fail "web1 still runs on pri after the failover"
pri_last=$(sed -n 's/^diskrec seq=\([0-9]*\) ok\r\{0,1\}$/\1/p' "$T/pri-console.copy" | tail -n 1)
check_continuity pri sby "$pri_last"

wait_for 120 "pri to become web1's standby" is_protected pri standby
is_protected sby primary || fail "sby's status: $(status_json sby)"
[[ "$(status_of sby peer)" == pri* ]] || fail "sby's peer is '$(status_of sby peer)'"
wait_for 10 "sby's engine to run at the interval set on pri ($INTERVAL ms)" status_is sby interval_ms "$INTERVAL"
echo "after the planned failover: sby $(status_of sby state) with peer $(status_of sby peer), interval $(status_of sby interval_ms) ms"
