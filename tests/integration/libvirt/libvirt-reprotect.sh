#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-reprotect: automatic re-protection back to the restarted old
# host, then a second failover the other way.
#   1. web1 protected pri -> sby, its interval changed (set-interval);
#      pri killed mid-epoch; web1 runs on sby, a normal libvirt domain
#      there with the interval set on pri, reached by the client
#      (lib.sh sby_took_over: libvirt-failover's checks, which this
#      test runs in the default suite).
#   2. pri boots again (links up, /run empty, its libvirtd, its remusd
#      serve; its disk and /var/lib/remus kept): with no command, sby's
#      remusd protects web1 again with pri as standby (sby's status:
#      primary, protected, peer pri; pri's virsh: web1 paused, made over
#      pri's own shut-off definition of web1, which its remusd recorded,
#      and which stays defined).
#   3. sby killed mid-epoch: web1 runs on pri again, the guest's disk
#      checker continued from the last checkpoint (check_continuity).
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

lab_up
web1_up
protect_web1
set_interval_web1 300
epochs_pass pri 4
kill_pri_fail_over
sby_took_over

# 2. The old host comes back; protection comes back by itself.
t0=$(now_ms)
host_boot pri
host_remusd pri
reprotected() { is_protected sby primary && [[ "$(status_of sby peer)" == pri* ]]; }
wait_for 300 "sby to protect web1 again with pri as standby" reprotected
echo "re-protected back to pri $(($(now_ms) - t0)) ms after pri came back"
wait_for 30 "pri's status to show web1 as standby" is_protected pri standby
dom_is pri paused || fail "web1 on pri is '$(host_domstate pri "$DOM")', not paused (the standby)"
# pri still had web1 defined (shut off, same UUID, recorded by its remusd):
# the standby was made over that definition, which stays as it was.
grep -q "web1: the standby replaces its definition here" "$T/pri-remusd.log" ||
	fail "pri's remusd did not say it replaced its old definition of web1"
info=$(host_exec pri virsh dominfo "$DOM")
grep -q '^Persistent: *yes' <<<"$info" || fail "web1 on pri lost its definition: $info"
no_violation sby

# 3. The second failover, back to pri.
epochs_pass sby 3
sleep_into_epoch "$INTERVAL"
host_kill sby
sby_last=$(dom_last sby)
wait_for 60 "web1 to run on pri again" dom_is pri running
check_continuity sby pri "$sby_last"
[ "$(status_of pri role)" = primary ] || fail "pri's status after the second failover: $(status_json pri)"
