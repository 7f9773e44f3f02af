#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# virt/domain.h against real libvirt (the embedded QEMU driver, one root
# per simulated host, a, b) and the test guest running diskrec (a ring of
# checksummed records on /dev/vda, checked against the guest's memory
# before every write and by a full scan every 50):
#
#   1. host a starts the domain on a raw file disk; `check` accepts it
#      (running, disks, libvirt >= 8.2, QEMU >= 8.1);
#   2. its disk is moved live onto an NBD export (tests' nbd_serve) with
#      virDomainBlockCopy + pivot while diskrec writes: progress lines
#      reach the total, libvirt then shows a network disk, and the guest
#      goes on writing and reading its records without a violation;
#   3. the standby XML derived from the live XML is created paused on host
#      b: libvirt says paused/user, QEMU inmigrate, listening on the
#      -incoming socket; a second create is refused with "exists";
#   4. host a's QEMU migrates into it (QMP passthrough); host b's libvirt
#      resumes it only once query-migrate says completed and then reports
#      running; the guest goes on on host b with its disk intact;
#   5. the disk is released back onto a plain file (block copy + pivot),
#      diskrec still clean; after the guest stops, the file on the host
#      holds a consistent ring up to the last record the guest printed.
#   And the refusals: an unknown domain (no-domain), a paused one
#   (not-running), a second standby (exists), a resume before the stream
#   is in.  (Every bad-disk case is in the unit tests: QEMU would not even
#   start most of them here.)
#
#   virt-domain-libvirt.sh VIRTDOM_DRIVE [raw|qcow2]
#     raw: a transient domain (virsh create) on a raw disk; qcow2: a
#     persistent one (virsh define + start) on a qcow2 disk, released to a
#     qcow2 file, and once migrated away and shut off on host a, refused
#     as not-running there.  The NBD export is raw either way (it holds
#     what the guest sees).
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/../diskrepl/lib.sh"

DRIVE=${1:?the virtdom_drive binary}
fmt=${2:-raw}
case "$fmt" in raw | qcow2) ;; *) fail "format '$fmt': raw or qcow2" ;; esac
need NBD_SERVE REMUS_GUEST_KERNEL REMUS_GUEST_INITRD
require_root "libvirt's embedded QEMU driver runs QEMU as root here (qemu.conf)"

slots=256
app=$(append_diskrec ms=20 slots=$slots scan=50 every=10)
name=vd$$
uuid=$(cat /proc/sys/kernel/random/uuid)

# A "host": an embedded libvirt root with the qemu.conf of LIBVIRT.md.
mkroot() {
	mkdir -p "$1/etc"
	cat >"$1/etc/qemu.conf" <<-'EOF'
		user = "root"
		group = "root"
		cgroup_controllers = [ ]
		namespaces = [ ]
		stdio_handler = "file"
		security_driver = "none"
		remember_owner = 0
	EOF
}
A=$T/a B=$T/b
mkroot "$A"
mkroot "$B"
drv() { # drv ROOT COMMAND ARG...
	local root=$1
	shift
	"$DRIVE" "qemu:///embed?root=$root" "$@" 2>>"$T/drive.log"
}

# libvirt's QEMUs are not this shell's children (the embedded driver
# daemonises them): stop them by the PIDs in the roots' pid files, each
# checked to be a QEMU of this test's directory first.
stop_domains() {
	local f pid
	for f in "$A"/run/qemu/*.pid "$B"/run/qemu/*.pid; do
		case "$f" in */driver.pid) continue ;; esac
		# (libvirt writes no newline after the PID: read would fail)
		pid=$(cat "$f" 2>/dev/null) || continue
		case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
		*"$T/"*) kill -9 "$pid" 2>/dev/null || true ;;
		esac
	done
}
at_cleanup stop_domains

# The guest name for the harness's serial helpers: QEMU's pid in $T/NAME.pid.
pid_of() { # pid_of ROOT GUEST
	wait_for 30 "the pid file of $name in $1" test -s "$1/run/qemu/$name.pid"
	cp "$1/run/qemu/$name.pid" "$T/$2.pid"
}

# mkimg PATH: an empty 16 MiB image in $fmt.
mkimg() {
	if [ "$fmt" = raw ]; then
		truncate -s 16M "$1"
	else
		qemu-img create -q -f qcow2 "$1" 16M
	fi
}
mkimg "$T/disk.img"
cat >"$T/pri.xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <uuid>$uuid</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$REMUS_GUEST_KERNEL</kernel>
    <initrd>$REMUS_GUEST_INITRD</initrd>
    <cmdline>console=ttyS0 $app</cmdline>
  </os>
  <on_reboot>destroy</on_reboot>
  <devices>
    <emulator>$(command -v "${REMUS_QEMU:-qemu-system-x86_64}")</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='$fmt' cache='none' io='native'/>
      <source file='$T/disk.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'><source path='$T/pri.serial'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF

# --- refusals before anything runs ----------------------------------------------
expect_refusal() { # expect_refusal CODE WORD ROOT COMMAND ARG...
	local code=$1 word=$2 out
	shift 2
	if out=$("$DRIVE" "qemu:///embed?root=$1" "${@:2}" 2>&1 >/dev/null); then
		fail "'${*:2}' succeeded; expected $code"
	fi
	out=$(echo "$out" | grep -E '^[a-z-]+: ' | tail -n1)
	case "$out" in
	"$code: "*"$word"*) echo "refused as expected: $out" ;;
	*) fail "'${*:2}': expected '$code: ...$word...', got '$out'" ;;
	esac
}
expect_refusal no-domain "no domain nosuch$$" "$A" check "nosuch$$"

# --- 1. the domain on host a --------------------------------------------------------
start=create
[ "$fmt" = raw ] || start=define-start
drv "$A" "$start" "$T/pri.xml" || fail "cannot start the domain: $(tail -n 3 "$T/drive.log")"
pid_of "$A" pri
wait_serial pri GUEST-UP 120 "the guest to boot under libvirt"
wait_for 60 "diskrec to write" diskrec_reached pri 20
out=$(drv "$A" check "$name") || fail "check refused the running domain: $(tail -n 2 "$T/drive.log")"
echo "check: $out"
case "$out" in "ok $name $uuid 1 disk(s) 0 nic(s)") ;; *) fail "check printed '$out'" ;; esac

# --- 2. the disk moved live onto NBD -------------------------------------------------
truncate -s 16M "$T/nbd.raw"
"$NBD_SERVE" "$T/nbd.sock" "vda=$T/nbd.raw" >"$T/nbd.log" 2>&1 &
nbd_pid=$!
track "$nbd_pid"
watch_daemon "$nbd_pid" nbd_serve "$T/nbd.log"
wait_for 10 "the NBD socket" test -S "$T/nbd.sock"
before=$(diskrec_last pri)
# 4 MiB/s: the 16 MiB copy takes seconds, so the guest writes during it
# (diskrec writes ~200 KiB/s: the mirror still converges).
drv "$A" copy-nbd "$name" vda "$T/nbd.sock" vda $((4 << 20)) >"$T/copy.out" ||
	fail "the block copy to NBD failed: $(tail -n 3 "$T/drive.log")"
after=$(diskrec_last pri)
cat "$T/copy.out"
tail -n1 "$T/copy.out" | grep -qx "network vda" || fail "after the pivot the disk is $(tail -n1 "$T/copy.out")"
grep '^progress' "$T/copy.out" | tail -n1 | awk '$3 != $4 || $4 == 0 { exit 1 }' ||
	fail "the last progress line is not complete: $(grep '^progress' "$T/copy.out" | tail -n1)"
echo "diskrec went from seq $before to $after during the copy"
[ "$after" -gt "$before" ] || fail "the guest wrote nothing during the copy (seq $before .. $after)"
wait_for 30 "diskrec to go on on NBD" diskrec_reached pri $((after + 60))
no_violation pri

# --- 3. the standby, created paused on host b ---------------------------------------
drv "$A" xml "$name" >"$T/live.xml" || fail "no live XML"
"$DRIVE" - standby-xml "$T/live.xml" "unix:$T/in.sock" "vda=$T/nbd.sock:vda" >"$T/sby.xml" ||
	fail "standby-xml: $(tail -n 2 "$T/drive.log")"
# Both "hosts" are this machine: the standby's console goes to its own file.
sed -i "s|$T/pri.serial|$T/sby.serial|g" "$T/sby.xml"
drv "$B" create-paused "$T/sby.xml" || fail "cannot create the standby: $(tail -n 3 "$T/drive.log")"
pid_of "$B" sby
st=$(drv "$B" state "$name")
echo "standby: $st"
[ "$st" = "paused user inmigrate" ] || fail "the standby is '$st', not 'paused user inmigrate'"
test -S "$T/in.sock" || fail "the standby QEMU does not listen on $T/in.sock"
expect_refusal exists "$name" "$B" create-paused "$T/sby.xml"
# A resume now would be a no-op that libvirt reports as success: it waits.
expect_refusal internal "still 'setup'" "$B" resume "$name" 300

# --- 4. the guest migrated into the standby, resumed by libvirt --------------------
last_pri=$(diskrec_last pri)
drv "$A" qmp "$name" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:$T/in.sock\"}}" >/dev/null ||
	fail "migrate: $(tail -n 2 "$T/drive.log")"
drv "$B" resume "$name" 60000 || fail "resume: $(tail -n 3 "$T/drive.log")"
st=$(drv "$B" state "$name")
echo "standby after the migration: $st"
[ "$st" = "running unpaused running" ] || fail "after the resume the standby is '$st'"
drv "$A" destroy "$name" || fail "cannot destroy the migrated source"
if [ "$fmt" = qcow2 ]; then
	expect_refusal not-running "is shut off" "$A" check "$name"
fi
wait_serial sby "diskrec seq=" 60 "the guest to go on on host b"
first=$(diskrec_seqs sby | head -n1)
echo "host a printed up to seq $last_pri before the migration, host b from seq $first"
[ "$first" -gt "$last_pri" ] || fail "host b's first seq $first is not past host a's $last_pri"
wait_for 30 "diskrec to go on on host b" diskrec_reached sby $((first + 50))
no_violation sby

# --- 5. released back onto a plain file -------------------------------------------
mkimg "$T/released.img"
drv "$B" copy-file "$name" vda "$T/released.img" "$fmt" >"$T/release.out" ||
	fail "the release to a file failed: $(tail -n 3 "$T/drive.log")"
tail -n1 "$T/release.out" | grep -qx "file $T/released.img" ||
	fail "after the release the disk is $(tail -n1 "$T/release.out")"
rel=$(diskrec_last sby)
wait_for 30 "diskrec to go on on the released file" diskrec_reached sby $((rel + 50))
no_violation sby
drv "$B" destroy "$name" || fail "cannot destroy the standby"
final=$(diskrec_last sby)
if [ "$fmt" = qcow2 ]; then
	fmtof=$(qemu-img info --output=json "$T/released.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')
	[ "$fmtof" = qcow2 ] || fail "the released image is $fmtof, not qcow2"
	qemu-img convert -f qcow2 -O raw "$T/released.img" "$T/released.raw"
else
	cp "$T/released.img" "$T/released.raw"
fi
on_disk=$(host_last "$T/released.raw" $slots)
echo "the guest printed up to seq $final; the released file holds a ring up to $on_disk"
[ "$on_disk" -ge "$final" ] || fail "the released file stops at seq $on_disk, the guest printed $final"

# --- a domain that is not running -------------------------------------------------
mkimg "$T/other.img"
sed -e "s|<name>$name</name>|<name>${name}b</name>|" -e "s|<uuid>$uuid</uuid>||" \
	-e "s|$T/disk.img|$T/other.img|" -e "s|$T/pri.serial|$T/other.serial|" "$T/pri.xml" >"$T/other.xml"
drv "$A" create-paused "$T/other.xml" || fail "cannot create a paused domain"
expect_refusal not-running "virsh resume ${name}b" "$A" check "${name}b"
drv "$A" destroy "${name}b" || fail "cannot destroy the paused domain"
echo "virt-domain-libvirt: ok"
