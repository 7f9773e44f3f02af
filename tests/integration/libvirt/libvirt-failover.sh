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
sby_took_over
