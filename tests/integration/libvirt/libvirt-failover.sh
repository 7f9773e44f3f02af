#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-failover: the primary hypervisor dies and the guest goes on,
# checked by the guest.  web1 is protected (interval $INTERVAL ms); after
# a few epochs, host pri is killed (links down, then every process SIGKILLed)
# 20-80 % into an epoch.  Then:
#   - sby's virsh shows web1 running (a normal libvirt domain there:
#     suspend and resume work);
#   - the guest's disk checker continued from the last checkpoint with no
#     violation, no reboot, consecutive records (lib.sh check_continuity);
#   - the client reaches web1's address over the lab's bridge at sby;
#   - sby's remusd reports web1 as its primary, with pri as its peer, and
#     the interval last set on pri (set-interval after protect), not
#     protect's.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

lab_up
web1_up
protect_web1
set_interval_web1 300
epochs_pass pri 4
kill_pri_fail_over

# A normal libvirt domain on sby now.
host_exec sby virsh -q suspend "$DOM" >/dev/null || fail "virsh suspend on sby"
dom_is sby paused || fail "web1 did not pause on sby"
host_exec sby virsh -q resume "$DOM" >/dev/null || fail "virsh resume on sby"
dom_is sby running || fail "web1 did not resume on sby"
last=$(dom_last sby)
wait_for 10 "diskrec to go on after resume" dom_reached sby $((last + EVERY))
no_violation sby

# The guest's NIC moved with it: the client reaches its address.
cli_reaches_guest || fail "cli cannot reach web1 at sby"

s=$(status_json sby)
[ "$(json_get "$s" role)" = primary ] || fail "sby's status after the failover: $s"
[ "$(json_get "$s" interval_ms)" = "$INTERVAL" ] ||
	fail "sby's interval after the failover is $(json_get "$s" interval_ms) ms, not the $INTERVAL ms set on pri: $s"
echo "sby's status after the failover: $s"
