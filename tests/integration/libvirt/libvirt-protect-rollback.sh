#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-protect-rollback: a protect that fails on a domain's second disk
# changes nothing on the domain.  web1 gets a second file disk vdb on which
# another block job runs (a copy left in its mirroring phase, as a backup
# tool would), so remusd's copy of vdb is refused by libvirt after vda was
# moved onto remusd's export and pivoted.  Then:
#   - remusctl protect exits 1 naming vdb and saying vda is back on its file;
#   - vda is back on its own file, live (domblklist) and persistent
#     (dumpxml --inactive), and vdb never left its file;
#   - the guest ran on and its disk checker (diskrec on vda: each write
#     reads back the previous record, the ring is rescanned) found no
#     violation: the writes made while vda was on the export came back;
#   - `remusctl unprotect web1` clears what remusd made (pri's record, the
#     standby domain on sby), and once the other job is gone a protect of
#     the same domain works.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

IMAGE=/var/lib/libvirt/images/$DOM.raw
VDB=/var/lib/libvirt/images/$DOM-b.raw

lab_up
# web1_up with a second disk (the lab's guests have no PCI hotplug).
host_define_guest pri "$DOM" \
	"remus.ip=$GUEST_IP/24 remus.run=diskrec remus.args=dev=/dev/vda,ms=$MS,slots=$SLOTS,scan=50,every=$EVERY" \
	--disk-size 16
host_exec pri qemu-img create -q -f raw "$VDB" 8M
host_exec pri virsh -q attach-disk "$DOM" "$VDB" vdb --subdriver raw --config >/dev/null ||
	fail "cannot add a second disk to $DOM"
host_start_guest pri "$DOM"
host_wait_serial pri "$DOM" GUEST-UP 180 "$DOM to boot on pri"
wait_for 60 "diskrec to run in $DOM" dom_reached pri "$EVERY"
host_exec pri virsh -q blockcopy "$DOM" vdb /var/lib/libvirt/images/backup-b.raw --transient-job \
	>/dev/null || fail "cannot start the other block job on vdb"
host_exec pri virsh -q blockjob "$DOM" vdb --info >"$T/job.out" 2>&1 || true
echo "the other job on vdb: $(cat "$T/job.out")"

# disks HOST [--inactive]: "TARGET TYPE SOURCE" of each disk of web1.
disks() {
	local x
	x=$(host_exec pri virsh dumpxml "$@" "$DOM")
	python3 -c 'import sys, xml.etree.ElementTree as E
for d in E.fromstring(sys.stdin.read()).iter("disk"):
    s = d.find("source")
    src = (s.get("file") or s.get("protocol", "") + ":" + ",".join(h.get("socket", "") for h in s.iter("host"))) if s is not None else "-"
    print(d.find("target").get("dev"), d.get("type"), src)' <<<"$x"
}
before_live=$(disks)
before_inactive=$(disks --inactive)
echo "before: live: $(tr '\n' ';' <<<"$before_live") persistent: $(tr '\n' ';' <<<"$before_inactive")"

seq0=$(dom_last pri)
rc=0
remusctl_on pri protect "$DOM" --standby sby --interval "$INTERVAL" >"$T/protect.out" 2>&1 || rc=$?
echo "remusctl protect exited $rc:"
cat "$T/protect.out"
[ "$rc" = 1 ] || fail "a protect whose second disk cannot be copied exited $rc, not 1"
grep -q "vdb" "$T/protect.out" || fail "the error does not name the disk vdb"
grep -q "vda.*back on their files" "$T/protect.out" || fail "the error does not say vda went back to its file"
grep -q "disk vda pivoted onto its copy" "$T/pri-remusd.log" ||
	fail "vda was never moved onto the export: the test did not reach the rollback"
grep -q "disk vda is back on $IMAGE" "$T/pri-remusd.log" || fail "pri's log does not show vda moved back"

after_live=$(disks)
after_inactive=$(disks --inactive)
echo "after: live: $(tr '\n' ';' <<<"$after_live") persistent: $(tr '\n' ';' <<<"$after_inactive")"
[ "$after_live" = "$before_live" ] || fail "the live disks changed: $after_live"
[ "$after_inactive" = "$before_inactive" ] || fail "the persistent disks changed: $after_inactive"
dom_is pri running || fail "$DOM is '$(host_domstate pri "$DOM")' after the failed protect"

# The guest writes on, and what it wrote while on the export is on the file.
wait_for 30 "$DOM's disk checker to go on" dom_reached pri $((seq0 + 10 * EVERY))
sleep 2
no_violation pri
! host_has_serial pri "$DOM" GUEST-EXIT || fail "diskrec stopped: $(host_serial pri "$DOM" | tail -n 3)"
echo "diskrec from seq $seq0 to $(dom_last pri), no violation"

# What remusd made is cleared by unprotect; then protection works.
status_json pri | tee "$T/status.json" >/dev/null
[ "$(json_get "$(cat "$T/status.json")" state)" = failed ] || fail "pri's status after the failed protect: $(cat "$T/status.json")"
remusctl_on pri unprotect "$DOM" >"$T/unprotect.out" 2>&1 || fail "unprotect after the failed protect: $(cat "$T/unprotect.out")"
wait_for 30 "sby's standby domain to go" dom_is sby ""
[ "$(disks)" = "$before_live" ] || fail "unprotect changed the disks: $(disks)"
host_exec pri virsh -q blockjob "$DOM" vdb --abort >/dev/null || fail "cannot end the other job on vdb"
protect_web1
echo "protected once the other job was gone ($PROTECT_MS ms)"
epochs_pass pri 2
