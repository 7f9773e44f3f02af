#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-multidisk: a domain with two disks, one of them a qcow2 overlay
# on a backing file (as real VMs have), through protect, unprotect on its
# own host, protect again, a failover and unprotect on the survivor.
# web1 has vda raw (diskrec writes on it) and vdb, a qcow2 whose backing
# file is another qcow2; the guest's view of vdb is known before it starts
# (made with qemu-io, checked against a flat image built separately):
#
#     0-1 MiB   backing data (0xa1)       1-2 MiB  overlay data (0xb2)
#     2-3 MiB   backing data (0xa1)       3-4 MiB  overlay zero clusters
#     4-8 MiB   backing data (0xa1)                over backing data
#
# The zero clusters are the trap: a copy that leaves a region out because
# the guest reads zeros there, onto a file that has the backing file
# below it, shows the backing's 0xa1 there again.
#
#  0. web2, whose vda is a good raw file and whose vdb is read-only: its
#     protect is refused (bad-disk, naming vdb) and nothing moved.
#  1. `remusctl protect`: both disks on remusd's NBD exports, live and
#     persistent; status lists both, with their formats and sizes, on both
#     hosts; sby's standby domain has both disks on sby's exports.
#  2. `remusctl unprotect` on pri: both disks back on their own files in
#     their own formats (vda raw, vdb qcow2 on its backing file, as
#     remusd documents: the file the disk was on, written over in place),
#     live and persistent; vdb's content through its backing chain is
#     what was written; no record, no child.
#  3. protect again, pri killed: the guest-checked failover
#     (check_continuity), then `remusctl unprotect` on sby: both disks on
#     new raw files STATE_DIR/web1/TARGET.released.raw (remusd's rule for a
#     domain that came by a failover), vdb's content what was written,
#     the guest writes on vda with no violation, no record, no child; pri
#     being dead, remusctl warns that its copy could not be destroyed.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

IMAGES=/var/lib/libvirt/images
IMAGE=$IMAGES/$DOM.raw
VDB=$IMAGES/$DOM-b.qcow2
BASE=$IMAGES/$DOM-b-base.qcow2
STATE=/var/lib/remus
MIB=1048576

lab_up

# --- web1: vda raw, vdb qcow2 on a qcow2 backing file, content known ------------
host_define_guest pri "$DOM" \
	"remus.ip=$GUEST_IP/24 remus.run=diskrec remus.args=dev=/dev/vda,ms=$MS,slots=$SLOTS,scan=50,every=$EVERY" \
	--disk-size 16
host_exec pri qemu-img create -q -f qcow2 "$BASE" 8M || fail "cannot create vdb's backing file"
host_exec pri qemu-io -f qcow2 -c "write -q -P 0xa1 0 8M" "$BASE" >/dev/null ||
	fail "cannot write vdb's backing file"
host_exec pri qemu-img create -q -f qcow2 -b "$BASE" -F qcow2 "$VDB" ||
	fail "cannot create vdb's overlay"
host_exec pri qemu-io -f qcow2 -c "write -q -P 0xb2 1M 1M" -c "write -q -z 3M 1M" "$VDB" >/dev/null ||
	fail "cannot write vdb's overlay"
# The guest's view of vdb, built without QEMU.
python3 - "$T/vdb.expected" <<'PY'
import sys
M = 1 << 20
img = bytearray(b"\xa1" * (8 * M))
img[1 * M:2 * M] = b"\xb2" * M
img[3 * M:4 * M] = bytes(M)
open(sys.argv[1], "wb").write(img)
PY
# same_as_expected HOST PATH FMT: vdb's content at PATH on HOST, read as
# FMT through its backing chain (the domain may hold it: -U), is the
# expected image.
same_as_expected() {
	host_exec "$1" qemu-img compare -q -U -f "$3" -F raw "$2" "$T/vdb.expected"
}
same_as_expected pri "$VDB" qcow2 || fail "the test's vdb is not what it should be: $(qemu-img compare -U "$(host_path pri "$VDB")" "$T/vdb.expected" 2>&1)"
host_exec pri virsh -q attach-disk "$DOM" "$VDB" vdb --subdriver qcow2 --config >/dev/null ||
	fail "cannot add vdb to $DOM"
host_start_guest pri "$DOM"
host_wait_serial pri "$DOM" GUEST-UP 180 "$DOM to boot on pri"
wait_for 60 "diskrec to run in $DOM" dom_reached pri "$EVERY"

# disks HOST [--inactive]: "TARGET TYPE FORMAT SOURCE" of each disk of web1
# (SOURCE: the file, or nbd:SOCKET for a network disk).
disks() {
	local h=$1 x
	shift
	x=$(host_exec "$h" virsh dumpxml "$@" "$DOM") || fail "virsh dumpxml $* $DOM on $h failed"
	python3 -c 'import sys, xml.etree.ElementTree as E
for d in E.fromstring(sys.stdin.read()).iter("disk"):
    s, drv = d.find("source"), d.find("driver")
    src = "-" if s is None else s.get("file") or "%s:%s" % (s.get("protocol", ""), ",".join(h.get("socket", "") for h in s.iter("host")))
    print(d.find("target").get("dev"), d.get("type"), drv.get("type") if drv is not None else "-", src)' <<<"$x"
}
# on_exports HOST [--inactive]: both disks on NBD exports of HOST's remusd.
on_exports() {
	local l
	l=$(disks "$@")
	echo "$l" | awk '$1 == "vda" && $2 == "network" && $3 == "raw" && $4 ~ /^nbd:.*web1\.vda\.nbd$/ { a = 1 }
		$1 == "vdb" && $2 == "network" && $3 == "raw" && $4 ~ /^nbd:.*web1\.vdb\.nbd$/ { b = 1 }
		END { exit !(a && b && NR == 2) }' ||
		fail "web1's disks on $1 ${2:-(live)} are not both on remusd's exports: $(tr '\n' ';' <<<"$l")"
}
# status_disks HOST: "TARGET FORMAT TOTAL STATE" of each disk in HOST's status.
status_disks() {
	python3 -c 'import json, sys
for d in json.loads(sys.argv[1]).get("disks") or []:
    print(d.get("target"), d.get("format"), d.get("total"), d.get("state"))' "$(status_json "$1")"
}
# gone_everywhere: no child, record, standby or listing of web1 is left
# on HOST... (the children's pids first).
gone_on() {
	local h=$1 l
	l=$(remusctl_on "$h" list)
	! grep -q "$DOM" <<<"$l" || fail "$h still lists $DOM: $l"
	[ ! -e "$(host_path "$h" "$STATE/domains/$DOM.json")" ] || fail "$h still has web1's state file"
}
child_gone() {
	! kill -0 "$1" 2>/dev/null || fail "the child $1 of web1 still runs after unprotect: $(tr '\0' ' ' </proc/"$1"/cmdline)"
}

# --- 0. a bad second disk is refused before the good first one moves -------------
# web2: vda a writable raw file, vdb read-only; running in libvirt is all
# protect's checks need (the guest need not have booted).
host_define_guest pri web2 "remus.run=tick" --disk-size 8 --mac 52:54:00:4c:41:02 --mem 128
host_exec pri qemu-img create -q -f raw "$IMAGES/web2-b.raw" 4M
host_exec pri virsh -q attach-disk web2 "$IMAGES/web2-b.raw" vdb --subdriver raw --mode readonly --config >/dev/null ||
	fail "cannot add a read-only vdb to web2"
host_start_guest pri web2
web2_before=$(DOM=web2 disks pri)
rc=0
remusctl_on pri protect web2 --standby sby >"$T/refused.out" 2>&1 || rc=$?
echo "remusctl protect web2 (vdb read-only) exited $rc: $(cat "$T/refused.out")"
[ "$rc" = 1 ] || fail "protect of a domain with a read-only second disk exited $rc, not 1"
grep -q "disk vdb of domain web2 .*read-only" "$T/refused.out" || fail "the refusal does not name vdb as read-only"
answer=$(remusd_request pri '{"cmd":"protect","domain":"web2","standby":"sby"}')
[ "$(json_get "$answer" code)" = bad-disk ] || fail "the raw request's answer: $answer, expected code bad-disk"
[ "$(DOM=web2 disks pri)" = "$web2_before" ] || fail "the refused protect moved web2's disks: $(DOM=web2 disks pri)"
! grep -q "web2" <<<"$(remusctl_on pri list)" || fail "pri lists web2 after the refusal"
[ -z "$(host_domstate sby web2)" ] || fail "sby has a web2 domain after the refusal"
host_exec pri virsh -q destroy web2 >/dev/null || fail "cannot stop web2"

before=$(disks pri)
before_inactive=$(disks pri --inactive)
echo "web1's disks before protect: $(tr '\n' ';' <<<"$before")"
[ "$before" = "vda file raw $IMAGE
vdb file qcow2 $VDB" ] || fail "web1's disks are not set up as the test needs: $before"
[ "$before_inactive" = "$before" ] || fail "web1's persistent disks differ from its live ones: $before_inactive"

# --- 1. protect: both disks on the exports, the standby has both ------------------
t_start=$(now_ms)
protect_web1
echo "protect of a two-disk domain took $PROTECT_MS ms"
on_exports pri
on_exports pri --inactive
on_exports sby
echo "both disks on pri's exports, live and persistent; the standby on sby's: $(disks sby | tr '\n' ';')"
for h in pri sby; do
	role=replicated
	[ "$h" = sby ] && role=standby
	sd=$(status_disks "$h")
	[ "$sd" = "vda raw $((16 * MIB)) $role
vdb qcow2 $((8 * MIB)) $role" ] || fail "$h's status of web1's disks: $(tr '\n' ';' <<<"$sd")"
done
epochs_pass pri 2
pri_child=$(status_of pri child_pid)
sby_child=$(status_of sby child_pid)
[ -n "$pri_child" ] && [ -n "$sby_child" ] || fail "no child pids in status: pri '$pri_child', sby '$sby_child'"

# --- 2. unprotect on pri: both disks back on their files, their formats -----------
t0=$(now_ms)
remusctl_on pri unprotect "$DOM" >"$T/unprotect-pri.out" 2>&1 ||
	fail "remusctl unprotect on pri: $(cat "$T/unprotect-pri.out")"
echo "remusctl unprotect on pri took $(($(now_ms) - t0)) ms"
for t in vda vdb; do
	grep -q "moving disk $t from remusd's export back to .* (written over in place)" "$T/pri-remusd.log" ||
		fail "pri's log does not show disk $t written back over its own file"
done
after=$(disks pri)
after_inactive=$(disks pri --inactive)
echo "web1's disks after unprotect on pri: live $(tr '\n' ';' <<<"$after") persistent $(tr '\n' ';' <<<"$after_inactive")"
[ "$after" = "$before" ] || fail "after unprotect web1's live disks are not its own files: $after"
[ "$after_inactive" = "$before" ] || fail "after unprotect web1's persistent disks are not its own files: $after_inactive"
info=$(host_exec pri qemu-img info -U --output=json "$VDB")
fmt=$(json_get "$info" format)
backing=$(json_get "$info" backing-filename)
echo "vdb after unprotect: format $fmt, backing file '$backing', $(json_get "$info" actual-size) bytes allocated"
[ "$fmt" = qcow2 ] || fail "vdb was written back as $fmt, not qcow2"
same_as_expected pri "$VDB" qcow2 ||
	fail "vdb's content on pri after unprotect is not what was written: $(host_exec pri qemu-img compare -U -F raw "$VDB" "$T/vdb.expected" 2>&1)"
echo "vdb's content on pri after unprotect (through its backing chain): as written"
child_gone "$pri_child"
child_gone "$sby_child"
wait_for 30 "sby's standby domain to go" dom_is sby ""
gone_on pri
gone_on sby
dom_is pri running || fail "web1 on pri is '$(host_domstate pri "$DOM")' after unprotect"
last=$(dom_last pri)
wait_for 30 "web1's disk checker to go on" dom_reached pri $((last + 2 * EVERY))
no_violation pri

# --- 3. protect again, pri dies: the failover, then unprotect on sby --------------
protect_web1
echo "second protect took $PROTECT_MS ms"
on_exports pri
on_exports sby
epochs_pass pri 4
kill_pri_fail_over
wait_for 30 "sby to report itself primary" status_is sby role primary
on_exports sby
sd=$(status_disks sby)
[ "$sd" = "vda raw $((16 * MIB)) replicated
vdb qcow2 $((8 * MIB)) replicated" ] || fail "sby's status of web1's disks after the failover: $(tr '\n' ';' <<<"$sd")"
sby_child=$(status_of sby child_pid)

t0=$(now_ms)
rc=0
remusctl_on sby unprotect "$DOM" >"$T/unprotect-sby.out" 2>&1 || rc=$?
echo "remusctl unprotect on sby (pri dead) exited $rc after $(($(now_ms) - t0)) ms; it printed:"
cat "$T/unprotect-sby.out"
[ "$rc" = 0 ] || fail "remusctl unprotect on sby exited $rc"
grep -q "^remusctl: warning: $DOM: the standby could not be destroyed" "$T/unprotect-sby.out" ||
	fail "remusctl unprotect on sby did not warn that pri's copy could not be destroyed"
after=$(disks sby)
echo "web1's disks on sby after unprotect: $(tr '\n' ';' <<<"$after")"
[ "$after" = "vda file raw $STATE/$DOM/vda.released.raw
vdb file raw $STATE/$DOM/vdb.released.raw" ] ||
	fail "after unprotect on sby web1's disks are not on the released raw files: $after"
persistent=$(host_exec sby virsh -q dominfo "$DOM" | awk '$1 == "Persistent:" { print $2 }')
echo "web1 on sby is persistent: $persistent"
if [ "$persistent" = yes ]; then
	after_inactive=$(disks sby --inactive)
	[ "$after_inactive" = "$after" ] || fail "sby's persistent disks of web1 are not the released files: $after_inactive"
fi
same_as_expected sby "$STATE/$DOM/vdb.released.raw" raw ||
	fail "vdb's content on sby after unprotect is not what was written: $(host_exec sby qemu-img compare -U -f raw -F raw "$STATE/$DOM/vdb.released.raw" "$T/vdb.expected" 2>&1)"
echo "vdb's content on sby after the failover and unprotect: as written"
child_gone "$sby_child"
gone_on sby
dom_is sby running || fail "web1 on sby is '$(host_domstate sby "$DOM")' after unprotect"
last=$(dom_last sby)
wait_for 30 "web1's disk checker to go on on sby" dom_reached sby $((last + 5 * EVERY))
sleep 1
no_violation sby
! host_has_serial sby "$DOM" GUEST-EXIT || fail "diskrec stopped in web1: $(host_serial sby "$DOM" | tail -n 3)"
echo "web1 runs on sby, unprotected, on released raw files: diskrec from seq $last to $(dom_last sby), no violation"
echo "from the first protect to the end: $(($(now_ms) - t_start)) ms"
