#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-v2: engine v2 by default for a libvirt domain under remusd serve
# (issue 13), checked by the guest.  Every lab host runs remusd ramfs on
# libvirt's memory_backing_dir before its libvirtd (hosts.sh host_ramfs).
#   - web1 has <memoryBacking><source type='file'/><access mode='shared'/>
#     and runs the dirtier (32 MiB rewritten at 8 MiB/s, every page's
#     content a function of its seq, a checksum line per pass): after
#     remusctl protect its primary child found the RAM file on pri's ramfs
#     on its own: protect and status show engine v2, the reason names the
#     file, and v2_checkpoints grows; list shows v2.
#   - web2 (no memoryBacking) in the same lab runs v1, and its protect and
#     status say why (anonymous memory, the fix); then it is unprotected.
#   - host pri dies inside an epoch: web1 runs on sby with the dirtier's
#     sequence continuing, the sums of each seq equal to pri's, and no
#     MISMATCH from its own full-memory check.
#   - pri comes back, sby re-protects web1 towards it (reprotect auto): the
#     new primary's RAM is the standby domain's file on sby's ramfs, and it
#     runs v2 too, with committed v2 checkpoints.
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

INTERVAL=300

# v2_checkpoints_grow HOST EPOCHS MIN WHO RAM-FILE-RE: HOST's primary runs
# engine v2, its engine_reason matches RAM-FILE-RE (names the RAM file),
# and its v2_checkpoints grow by MIN or more over EPOCHS epochs; the
# reason and the counts before and after in WHY, V2A, V2B.
v2_checkpoints_grow() {
	local host=$1 epochs=$2 min=$3 who=$4 file=$5 s
	s=$(status_json "$host")
	WHY=$(json_get "$s" engine_reason)
	[ "$(json_get "$s" engine)" = v2 ] || fail "$who does not run v2: $WHY"
	grep -q "$file" <<<"$WHY" || fail "$who: engine_reason does not name its RAM file: $WHY"
	V2A=$(json_get "$s" v2_checkpoints)
	epochs_pass "$host" "$epochs"
	V2B=$(status_of "$host" v2_checkpoints)
	[ "$V2B" -ge $((V2A + min)) ] ||
		fail "$who: v2_checkpoints went from $V2A to $V2B over $epochs epochs"
}

lab_up

# web2 first: v1, with the reason.
host_define_guest pri web2 "remus.run=tick" --disk-size 8 --mac 52:54:00:4c:41:02 --mem 128
host_start_guest pri web2
host_wait_serial pri web2 'tick 2$' 180 "web2 to boot on pri"
remusctl_on pri protect web2 --standby sby --interval 1000 >"$T/protect-web2.out" 2>&1 ||
	fail "remusctl protect web2: $(tail -n 5 "$T/protect-web2.out")"
grep -q "^web2: engine v1: guest RAM of web2 is anonymous memory .*<access mode='shared'/>" \
	"$T/protect-web2.out" || fail "remusctl protect web2 does not name engine v1 and the fix: \
$(cat "$T/protect-web2.out")"
s=$(remusctl_on pri status web2 --json)
[ "$(json_get "$s" engine)" = v1 ] || fail "web2 (anonymous RAM) does not run v1: $s"
why=$(json_get "$s" engine_reason)
grep -q "guest RAM of web2 is anonymous memory (memory backend 'pc.ram' has no mem-path)" <<<"$why" &&
	grep -q "<access mode='shared'/>" <<<"$why" ||
	fail "web2's engine_reason does not name the object and the fix: $why"
remusctl_on pri status web2 | grep -q "^  engine: *v1 (v1: guest RAM of web2 is anonymous memory" ||
	fail "remusctl status web2 does not show the engine: $(remusctl_on pri status web2)"
echo "web2: engine v1, reason: $why"
remusctl_on pri unprotect web2 >"$T/unprotect-web2.out" 2>&1 ||
	fail "remusctl unprotect web2: $(cat "$T/unprotect-web2.out")"
host_exec pri virsh -q destroy web2 >/dev/null || fail "virsh destroy web2"

# web1: v2, found by the child itself.
host_define_guest pri "$DOM" "remus.ip=$GUEST_IP/24 remus.run=dirty remus.args=mb=32,mbps=8,seed=7" \
	--disk-size 8 --memory-backing file
grep -q "<memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>" "$LAB/pri/$DOM.xml" ||
	fail "host_guest_xml --memory-backing file did not add the memoryBacking"
host_start_guest pri "$DOM"
host_wait_serial pri "$DOM" 'dirty seq=1 ' 180 "the dirtier to run in $DOM on pri"
protect_web1
grep -q "^web1: engine v2: guest RAM of web1 (memory backend '[^']*') is /var/lib/libvirt/qemu/ram/" \
	"$T/protect.out" || fail "remusctl protect web1 does not name engine v2: $(cat "$T/protect.out")"
v2_checkpoints_grow pri 10 8 "web1 (shared file RAM on pri's ramfs)" \
	"is /var/lib/libvirt/qemu/ram/[0-9]*-$DOM/pc.ram on remusd ramfs ($LAB_RAMFS_SOCKET), share=on"
why=$WHY v2a=$V2A v2b=$V2B
remusctl_on pri list | grep -q "^$DOM  *primary  *protected  *v2 " ||
	fail "remusctl list does not show web1 on v2: $(remusctl_on pri list)"
echo "web1 on pri: engine v2 ($why), v2 checkpoints $v2a -> $v2b over 10 epochs"

# pri dies inside an epoch; the guest checks its own memory on sby.
sleep_into_epoch "$INTERVAL"
host_kill pri
t0=$(now_ms)
wait_for 60 "$DOM to run on sby" dom_is sby running
echo "$DOM running in sby's libvirt $(($(now_ms) - t0)) ms after pri died"
sby_checksums() { [ "$(host_serial sby "$DOM" | grep -c 'dirty seq=' || true)" -ge "$1" ]; }
wait_for 60 "the dirtier to print 3 checksums on sby" sby_checksums 3
! host_has_serial sby "$DOM" MISMATCH ||
	fail "$DOM on sby found torn memory: $(host_serial sby "$DOM" | grep MISMATCH | head -n 3)"
! host_has_serial sby "$DOM" GUEST-UP || fail "$DOM booted again on sby"
pri_seqs=$(host_serial pri "$DOM" | grep -o 'dirty seq=[0-9]* sum=[0-9a-f]*' || true)
sby_seqs=$(host_serial sby "$DOM" | grep -o 'dirty seq=[0-9]* sum=[0-9a-f]*' || true)
pri_last=$(tail -n 1 <<<"$pri_seqs" | sed 's/.*seq=\([0-9]*\).*/\1/')
sby_first=$(head -n 1 <<<"$sby_seqs" | sed 's/.*seq=\([0-9]*\).*/\1/')
[ -n "$pri_last" ] && [ -n "$sby_first" ] || fail "no checksums to compare: pri '$pri_last', sby '$sby_first'"
[ "$sby_first" -le $((pri_last + 1)) ] ||
	fail "$DOM resumed on sby at seq $sby_first, after pri's last seq $pri_last"
while read -r line; do
	sq=$(sed 's/.*seq=\([0-9]*\).*/\1/' <<<"$line")
	p=$(grep "seq=$sq " <<<"$pri_seqs" || true)
	[ -z "$p" ] || [ "$p" = "$line" ] || fail "seq $sq: pri '$p', sby '$line'"
done <<<"$sby_seqs"
echo "memory continuity: pri's last seq $pri_last, sby's first $sby_first, same sums, no MISMATCH"

# pri comes back; sby's new primary (its RAM on sby's ramfs) runs v2.
host_boot pri
host_remusd pri
reprotected() { is_protected sby primary && [[ "$(status_of sby peer)" == pri* ]]; }
wait_for 300 "sby to protect web1 again with pri as standby" reprotected
v2_checkpoints_grow sby 5 4 "the new primary on sby" \
	"on remusd ramfs ($LAB_RAMFS_SOCKET), share=on"
why=$WHY v2a=$V2A v2b=$V2B
! host_has_serial sby "$DOM" MISMATCH || fail "$DOM on sby found torn memory after re-protection"
echo "web1 on sby: engine v2 ($why), v2 checkpoints $v2a -> $v2b over 5 epochs"
