#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-unprotect-fail: an unprotect whose disk cannot go back to its
# file.  While web1 is protected its disk runs on remusd's NBD export, and
# its own file (/var/lib/libvirt/images/web1.raw) is not open; an operator
# moved it away and left a directory in its place.  Then `remusctl
# unprotect web1`:
#   - exits 1 with a message naming the domain, the disk, the path and the
#     fix ("move it away") and saying that remusd keeps serving the export;
#   - loses nothing: web1 is still recorded (list, status, its state file),
#     its disk is still on the export and the child that serves it runs,
#     and the guest keeps writing with no violation;
#   - can be asked again once the path is fixed: the retry moves the disk
#     back to the file, web1 runs on unprotected, the record and the
#     standby domain on sby are gone.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

IMAGE=/var/lib/libvirt/images/$DOM.raw

lab_up
web1_up
protect_web1
epochs_pass pri 2
host_exec pri mv "$IMAGE" "$IMAGE.away"
host_exec pri mkdir "$IMAGE"

rc=0
remusctl_on pri unprotect "$DOM" >"$T/unprotect.out" 2>&1 || rc=$?
echo "remusctl unprotect (its file replaced by a directory) exited $rc:"
cat "$T/unprotect.out"
[ "$rc" = 1 ] || fail "an unprotect whose disk cannot go back exited $rc, not 1"
for w in "$DOM" "disk vda" "$IMAGE" "not a plain file" "move it away" "remusctl unprotect $DOM again"; do
	grep -qF -- "$w" "$T/unprotect.out" || fail "the error does not say '$w'"
done

# Nothing lost: the record, the export and its child, the guest.
remusctl_on pri list | grep -q "^$DOM " || fail "pri no longer lists $DOM: $(remusctl_on pri list)"
[ -e "$(host_path pri "/var/lib/remus/domains/$DOM.json")" ] || fail "web1's state file is gone"
s=$(status_json pri)
echo "pri's status now: state $(json_get "$s" state), last_failure: $(json_get "$s" last_failure)"
[ "$(json_get "$s" state)" = failed ] || fail "pri's status after the failed unprotect: $s"
json_get "$s" last_failure | grep -q "vda" || fail "status does not say what failed: $s"
child=$(json_get "$s" child_pid)
[ -n "$child" ] && kill -0 "$child" 2>/dev/null || fail "the child that serves web1's export is gone: $s"
[ "$(host_exec pri virsh -q domblklist "$DOM" --details | awk '$3 == "vda" {print $1}')" = network ] ||
	fail "web1's disk left the export though unprotect failed"
before=$(dom_last pri)
wait_for 30 "web1's disk checker to go on on the export" dom_reached pri $((before + 5 * EVERY))
no_violation pri

# The fix, then the retry.
host_exec pri rmdir "$IMAGE"
host_exec pri mv "$IMAGE.away" "$IMAGE"
rc=0
remusctl_on pri unprotect "$DOM" >"$T/unprotect2.out" 2>&1 || rc=$?
echo "the retry exited $rc: $(cat "$T/unprotect2.out")"
[ "$rc" = 0 ] || fail "the retry of unprotect failed"
disk=$(host_exec pri virsh -q domblklist "$DOM" --details | awk '$3 == "vda" {print $1 " " $4}')
[ "$disk" = "file $IMAGE" ] || fail "after the retry web1's disk is '$disk'"
! remusctl_on pri list | grep -q "^$DOM " || fail "pri still lists $DOM"
[ ! -e "$(host_path pri "/var/lib/remus/domains/$DOM.json")" ] || fail "web1's state file is still there"
wait_for 30 "sby's standby domain to go" dom_is sby ""
! kill -0 "$child" 2>/dev/null || fail "the child $child still runs"
last=$(dom_last pri)
wait_for 30 "web1's disk checker to go on" dom_reached pri $((last + 5 * EVERY))
sleep 1
no_violation pri
dom_is pri running || fail "web1 is '$(host_domstate pri "$DOM")'"
echo "web1 runs on its file, unprotected, diskrec from seq $before to $(dom_last pri), no violation"
