# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# What the virt/ tests and bench/virt-qmp-proxy share beyond
# tests/lib/remus.sh (sourced after it): an embedded libvirt root, the
# test guest as a libvirt domain, and libvirt_host serving its QMP proxy.

need REMUS_BUILD_DIR REMUS_GUEST_KERNEL REMUS_GUEST_INITRD
LIBVIRT_HOST=${LIBVIRT_HOST:-$REMUS_BUILD_DIR/tests/integration/virt/libvirt_host}
[ -x "$LIBVIRT_HOST" ] || fail "$LIBVIRT_HOST is missing: build the libvirt_host target"

# virt_root DIR: an embedded libvirt root at DIR (qemu:///embed?root=DIR),
# with the qemu.conf measured to work here (/work/shared/LIBVIRT.md):
# QEMU as root, no cgroups, no namespaces, no security driver.
virt_root() {
	mkdir -p "$1/etc"
	cat >"$1/etc/qemu.conf" <<EOF
user = "root"
group = "root"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
security_driver = "none"
remember_owner = 0
EOF
}

# virt_domain_xml NAME APPEND: prints the XML of the test guest as domain
# NAME, its serial console in $T/NAME.serial (so serial/wait_serial/
# check_ticks work on it as on start_guest's guests).  The machine is
# start_guest's (vm-images/guest-lib.sh: -machine pc -m 256 -smp 1
# -nodefaults, ACPI on, the same accelerator) and nothing more: no USB
# controller, no balloon, no graphics; so a hand-started QEMU can take
# its migration stream.
virt_domain_xml() {
	local name=$1 append=$2 vm accel dtype qemu_bin
	vm=$(dirname "$REMUS_GUEST_KERNEL")
	accel=$(guest_accel "$vm")
	case "$accel" in
	tcg) dtype=qemu ;;
	*) dtype=kvm ;;
	esac
	qemu_bin=$(command -v "${REMUS_QEMU:-qemu-system-x86_64}")
	cat <<EOF
<domain type='$dtype'>
  <name>$name</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$REMUS_GUEST_KERNEL</kernel>
    <initrd>$REMUS_GUEST_INITRD</initrd>
    <cmdline>console=ttyS0 $append</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$qemu_bin</emulator>
    <serial type='file'><source path='$T/$name.serial'/><target port='0'/></serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# virt_start_host NAME APPEND [libvirt_host option...]: an embedded root in
# $T/lv, domain NAME booting the test guest with APPEND, its QMP proxy on
# $T/NAME.qmp; waits until the proxy serves.  Sets HOST_PID
# (libvirt_host, tracked; its output in $T/host.out, log in $T/host.log)
# and DOMAIN_QEMU_PID (the domain's QEMU from libvirt's pid file: not our
# child, killed by PID at cleanup), also in $T/NAME.pid, and links
# libvirt's log of the domain to $T/NAME.qemu, as start_guest would.
virt_start_host() {
	local name=$1 append=$2 pidfile
	shift 2
	virt_root "$T/lv"
	virt_domain_xml "$name" "$append" >"$T/$name.xml"
	"$LIBVIRT_HOST" --uri "qemu:///embed?root=$T/lv" --xml "$T/$name.xml" \
		--qmp "$T/$name.qmp" "$@" >"$T/host.out" 2>"$T/host.log" &
	HOST_PID=$!
	track "$HOST_PID"
	VIRT_NAME=$name
	# The first open of a root probes QEMU's capabilities (~8 s here).
	wait_for 120 "libvirt_host to serve the QMP proxy of $name" _virt_host_ready
	pidfile=$(find "$T/lv" -name "$name.pid" -print -quit)
	[ -n "$pidfile" ] || fail "no pid file of domain $name under $T/lv"
	DOMAIN_QEMU_PID=$(cat "$pidfile")
	kill -0 "$DOMAIN_QEMU_PID" || fail "the QEMU of domain $name (pid $DOMAIN_QEMU_PID) is not running"
	at_cleanup _virt_kill_domain
	# What start_guest leaves for wait_serial and the failure report:
	# the QEMU's pid and its output (libvirt's log of the domain).
	echo "$DOMAIN_QEMU_PID" >"$T/$name.pid"
	ln -sf "$T/lv/log/qemu/$name.log" "$T/$name.qemu"
}
_virt_host_ready() {
	grep -q "^READY $VIRT_NAME" "$T/host.out" && return 0
	kill -0 "$HOST_PID" 2>/dev/null ||
		fail "libvirt_host exited: $(tail -n 5 "$T/host.log" | tr '\n' ' ')"
	return 1
}
_virt_kill_domain() { kill -9 "$DOMAIN_QEMU_PID" 2>/dev/null || true; }
