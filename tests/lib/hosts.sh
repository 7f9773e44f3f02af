# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Hypervisor hosts of one test: the lab of the libvirt tests (label
# libvirt) and of the chaos suite (sourced after remus.sh; it sources
# netns.sh, so it needs root and skips without it).
#
# A host NAME is two namespaces the test owns:
#   - the network namespace $NS-NAME (netns.sh), with a bridge br0 that
#     holds the host's uplink up0 and the host's address, so guests with
#     <interface type='bridge'><source bridge='br0'/> sit on the lab's LAN;
#   - a persistent mount namespace and UTS namespace (`unshare
#     --mount=FILE --uts=FILE`, files $LAB/ns/NAME.mnt and .uts on a private
#     mount of the test; hostname NAME), in which
#     the host's own directories are bind-mounted over /run,
#     /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt, /etc/libvirt,
#     /var/lib/remus and /etc/remus, and the lab's hosts file over
#     /etc/hosts (every host resolves every other by name), with /sys
#     remounted so that it shows the host's network devices.  `ip netns
#     exec` would make a fresh mount namespace each time, losing these
#     mounts: host_exec enters both namespaces with nsenter instead.
# The outside view of a host's file PATH is `host_path NAME PATH`
# ($LAB/NAME/PATH for the private directories): the harness reads guests'
# consoles and daemons' state there.
#
#     $NS-sw: br0 --- veth NAME <-> up0 --- br0 (ADDR/24) in $NS-NAME
#                                             \-- vnetN of the host's guests
#
# Each hypervisor runs its own `remusd ramfs` (unless LAB_RAMFS=0), mounted
# on libvirt's memory_backing_dir /var/lib/libvirt/qemu/ram in the host's
# mount namespace and started before its libvirtd (as a host's boot
# does), control socket /run/remus/ramfs.sock (the host's own /run): a
# domain with a shared file memoryBacking has its RAM there and its
# primary runs engine v2 (remusd serve's ramfs_socket names the socket).
# Each hypervisor runs its own real libvirtd (host_libvirtd; the monolithic
# daemon over /run/libvirt/libvirt-sock, what users run), so
# `host_exec pri virsh list` talks to pri's daemon only.  Its qemu.conf is
# the one measured in /work/shared/LIBVIRT.md (root, no cgroups, no
# namespaces, no security driver); it logs to $T/NAME-libvirtd.log.
#
# Faults: host_kill NAME (the chaos default for "host NAME dies": its
# links down, then every process in its network namespace SIGKILLed), and
# host_boot NAME after it (links up, /run emptied as a reboot does,
# libvirtd started again; /var and /etc survive like a disk);
# host_freeze/host_thaw NAME (a stall: SIGSTOP/SIGCONT), lab_partition/
# lab_heal A B (A and B cut from each other, both still reach the rest),
# lab_rate NAME RATE/lab_rate_clear NAME (a slow uplink).
#
# Teardown: every process of a host lives in its network namespace (libvirtd
# and the QEMUs it forks, daemons started with host_exec), so a host is
# stopped by killing the processes `ip netns pids` lists (by PID), then its
# mount namespace file is unmounted and netns.sh deletes the namespace.
# This runs on every way out of the test (a remus.sh cleanup hook).  A run
# killed by SIGKILL leaves namespaces named after its dead shell's pid and
# mounts below its dead private directory: the next run reaps both
# (hosts_reap_stale, then netns.sh's netns_reap_stale), never looking
# anything up by process name.
#
# Outside the test's directory the lab only creates the mount points it
# needs if the machine lacks them: empty directories /etc/remus,
# /var/lib/remus, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt,
# /etc/libvirt (an installed remus-qemu and libvirt have them anyway).
#
#   source "$(dirname "$0")/../../lib/remus.sh"
#   source "$REMUS_SOURCE_DIR/tests/lib/hosts.sh"
#   host_up pri 10.9.0.11; host_libvirtd pri
#   host_up cli 10.9.0.2
#   host_exec pri virsh list --all

# shellcheck source=netns.sh
. "$REMUS_SOURCE_DIR/tests/lib/netns.sh"

LIBVIRTD=${LIBVIRTD:-/usr/sbin/libvirtd}
LAB=$T/lab
# Hosts up, in order, and their addresses (for /etc/hosts).
HOSTS=()
declare -A HOST_ADDR=()
# The private directories of a host, bind-mounted in its mount namespace.
HOST_DIRS=(/run /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt
	/var/lib/remus /etc/remus)
# Each host's remusd ramfs (host_ramfs): 1 (default) or 0 (none: every
# domain's primary runs engine v1).  Its mount point is libvirt's default
# memory_backing_dir; its pid per host.
LAB_RAMFS=${LAB_RAMFS:-1}
LAB_RAMFS_DIR=/var/lib/libvirt/qemu/ram
LAB_RAMFS_SOCKET=/run/remus/ramfs.sock
# -g: hosts.sh may be sourced in a function (libvirt-lab), and the cleanup
# that reads it runs after that function returned.
declare -gA HOST_RAMFS_PID=()

# --- reaping what a killed run left ---------------------------------------------

# hosts_reap_stale: unmount what runs killed by SIGKILL left mounted below
# their private directories (mount namespace files, the private mount that
# holds them), then netns.sh reaps their namespaces and directories.  A
# directory is a dead run's when the pid in its name (remus-TEST-PID.XXXXXX)
# is gone.
hosts_reap_stale() {
	local mp owner dir tmp=${TMPDIR:-/tmp}
	# Deepest first: the namespace files before the mount that holds them.
	for mp in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^$tmp/remus-[^/]*-[0-9]+\.[A-Za-z0-9]{6}/" | sort -r || true); do
		dir=${mp#"$tmp"/}
		dir=${dir%%/*}
		owner=${dir%.*}
		owner=${owner##*-}
		alive "$owner" && continue
		echo "unmounting $mp of a dead run (pid $owner)" >&2
		umount -l "$mp" 2>/dev/null || true
	done
	netns_reap_stale
}

# --- the lab: switch, hosts file, namespace files -------------------------------

_lab_init() {
	[ ! -d "$LAB" ] || return 0
	hosts_reap_stale
	netns_add sw
	at_cleanup _lab_cleanup
	mkdir -p "$LAB/ns"
	# unshare --mount=FILE needs FILE on a mount that does not propagate
	# (or the new namespace would see its own file): a private bind of
	# the directory onto itself.
	mount --bind "$LAB/ns" "$LAB/ns"
	mount --make-private "$LAB/ns"
	printf '127.0.0.1\tlocalhost\n' >"$LAB/hosts"
	ip -n "$NS-sw" link add br0 type bridge
	ip -n "$NS-sw" link set br0 up
}

# Rewrites the lab's hosts file in place (every host has it bind-mounted:
# a new inode would not be seen).
_lab_hosts_file() {
	local h
	{
		printf '127.0.0.1\tlocalhost\n'
		for h in "${HOSTS[@]}"; do
			printf '%s\t%s\n' "${HOST_ADDR[$h]}" "$h"
		done
	} >"$LAB/hosts.new"
	cat "$LAB/hosts.new" >"$LAB/hosts"
	rm -f "$LAB/hosts.new"
}

# Kills every process of host NAME (SIGKILL, by the pids in its network
# namespace; repeated while new ones appear: libvirtd may be forking).  Its
# remusd ramfs is signalled last in each round: QEMUs and the engines' trackers
# map files it serves (a dead server first would fault them).
_host_kill_procs() {
	local n=$NS-$1 p pids _ ramfs=${HOST_RAMFS_PID[$1]:-}
	for _ in 1 2 3 4 5; do
		pids=$(ip netns pids "$n" 2>/dev/null || true)
		[ -n "$pids" ] || break
		for p in $pids; do
			[ "$p" != "$ramfs" ] || continue
			unwatch_daemon "$p"
			kill -9 "$p" 2>/dev/null || true
		done
		if [ -n "$ramfs" ]; then
			unwatch_daemon "$ramfs"
			kill -9 "$ramfs" 2>/dev/null || true
		fi
		# Reap those that are this shell's children (the others are
		# reparented: libvirt daemonizes QEMU).
		for p in $pids; do
			! _ours "$p" || wait "$p" 2>/dev/null || true
		done
		sleep 0.05
	done
	unset "HOST_RAMFS_PID[$1]"
}

_lab_cleanup() {
	local h
	for h in "${HOSTS[@]+"${HOSTS[@]}"}"; do
		_host_kill_procs "$h"
		umount -l "$LAB/ns/$h.mnt" "$LAB/ns/$h.uts" 2>/dev/null || true
	done
	umount -l "$LAB/ns" 2>/dev/null || true
}

# --- hosts ------------------------------------------------------------------------

# host_path NAME PATH: where file PATH of host NAME is seen from the test
# (PATH itself outside the host's private directories).
host_path() {
	local d
	for d in "${HOST_DIRS[@]}"; do
		case "$2" in
		"$d" | "$d"/*) echo "$LAB/$1$2"; return 0 ;;
		esac
	done
	echo "$2"
}

# host_up NAME ADDR: host NAME with address ADDR (/24) on the lab's LAN,
# its namespaces and private directories, a minimal libvirt configuration,
# and every host's name in /etc/hosts.  No daemon yet (host_libvirtd).
host_up() {
	local name=$1 addr=$2 h=$LAB/$1 d
	_lab_init
	[ -z "${HOST_ADDR[$name]+x}" ] || fail "host_up: host $name is up already"
	netns_add "$name"
	HOSTS+=("$name")
	HOST_ADDR[$name]=$addr
	for d in "${HOST_DIRS[@]}"; do
		mkdir -p "$h$d"
		[ -d "$d" ] || mkdir -p "$d"
	done
	mkdir -p "$h/etc/libvirt/qemu/networks" "$h/var/lib/libvirt/images" \
		"$h/var/log/libvirt/qemu" "$h/run/lock"
	# remusd serve refuses a state directory others may write to, whatever
	# the umask made it.
	chmod 700 "$h/var/lib/remus"
	_host_libvirt_conf "$h/etc/libvirt"
	_lab_hosts_file

	ip -n "$NS-sw" link add "$name" type veth peer name up0 netns "$NS-$name"
	ip -n "$NS-sw" link set "$name" master br0 up
	ip -n "$NS-$name" link add br0 type bridge
	# A fixed address, derived from the host's: a bridge without one
	# takes the lowest of its ports', and veth addresses are random, so
	# about once in a hundred up0's was above the tap libvirt adds for a
	# guest (fe:54:00:..., the same on every host for one guest MAC).
	# The standby host's bridge then took the address the primary host's
	# bridge has as a local port, and the primary delivered its frames
	# for the standby to itself: answers lost, "No route to host".
	# shellcheck disable=SC2086 # the address's four octets
	ip -n "$NS-$name" link set br0 address "$(printf '02:00:%02x:%02x:%02x:%02x' ${addr//./ })"
	ip -n "$NS-$name" link set up0 master br0 up
	ip -n "$NS-$name" link set br0 up
	ip -n "$NS-$name" addr add "$addr/24" dev br0

	# The mount namespace, made from inside the network namespace so that
	# its /sys shows this host's devices.
	touch "$LAB/ns/$name.mnt" "$LAB/ns/$name.uts"
	# shellcheck disable=SC2016 # the script expands its own arguments
	nsenter --net="/run/netns/$NS-$name" -- \
		unshare --mount="$LAB/ns/$name.mnt" --uts="$LAB/ns/$name.uts" --propagation private \
		bash -euc '
			h=$1 hosts=$2 name=$3
			shift 3
			hostname "$name"
			for d in "$@"; do mount --bind "$h$d" "$d"; done
			mount --bind "$hosts" /etc/hosts
			umount -l /sys
			mount -t sysfs sysfs /sys' \
		host-setup "$h" "$LAB/hosts" "$name" "${HOST_DIRS[@]}" ||
		fail "host_up: cannot make the mount namespace of host $name"
}

# The configuration of a host's libvirtd: its sockets open to root only
# (the tests run as root), no authentication, and the qemu.conf of
# LIBVIRT.md.
_host_libvirt_conf() {
	cat >"$1/libvirtd.conf" <<'EOF'
# remus-qemu test lab (tests/lib/hosts.sh): this host's own libvirtd.
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
EOF
	cat >"$1/qemu.conf" <<'EOF'
# remus-qemu test lab (tests/lib/hosts.sh): what works in namespaces
# without cgroups or a security driver (/work/shared/LIBVIRT.md).
user = "root"
group = "root"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
security_driver = "none"
remember_owner = 0
EOF
}

# host_exec NAME CMD...: runs CMD in host NAME (its namespaces), in the
# current directory, in the foreground.  Not for background processes:
# `host_exec ... &` forks a subshell whose pid is not CMD's; use host_spawn.
host_exec() {
	local name=$1
	shift
	_host_known "$name"
	nsenter --net="/run/netns/$NS-$name" --mount="$LAB/ns/$name.mnt" \
		--uts="$LAB/ns/$name.uts" --wd="$PWD" -- "$@"
}

# host_spawn NAME LOG CMD...: starts CMD in host NAME in the background,
# output appended to LOG; sets SPAWN_PID, CMD's own pid (nsenter execs it),
# tracked.  `watch_daemon "$SPAWN_PID" ...` makes its death fail waits.
host_spawn() {
	local name=$1 log=$2
	shift 2
	_host_known "$name"
	nsenter --net="/run/netns/$NS-$name" --mount="$LAB/ns/$name.mnt" \
		--uts="$LAB/ns/$name.uts" --wd="$PWD" -- "$@" >>"$log" 2>&1 &
	SPAWN_PID=$!
	track "$SPAWN_PID"
	echo "$SPAWN_PID" >>"$LAB/$name/pids"
}

_host_known() {
	[ -n "${HOST_ADDR[$1]+x}" ] || fail "no host $1 (host_up first)"
}

# host_ramfs NAME: starts host NAME's `remusd ramfs --mount
# $LAB_RAMFS_DIR --socket $LAB_RAMFS_SOCKET` (tracked, watched, log
# $T/NAME-ramfs.log; HOST_RAMFS_PID[NAME]) and waits for its socket and
# mount.  A dead one's mount (after host_kill) is lazily unmounted first.
host_ramfs() {
	local name=$1
	need REMUSD
	mkdir -p "$LAB/$name$LAB_RAMFS_DIR" "$LAB/$name/run/remus"
	host_exec "$name" umount -l "$LAB_RAMFS_DIR" 2>/dev/null || true
	host_spawn "$name" "$T/$name-ramfs.log" "$REMUSD" ramfs --mount "$LAB_RAMFS_DIR" \
		--socket "$LAB_RAMFS_SOCKET"
	HOST_RAMFS_PID[$name]=$SPAWN_PID
	watch_daemon "$SPAWN_PID" "remusd ramfs of host $name" "$T/$name-ramfs.log"
	wait_for 30 "remusd ramfs of host $name to serve $LAB_RAMFS_DIR" _host_ramfs_ok "$name"
}
_host_ramfs_ok() {
	[ -S "$(host_path "$1" "$LAB_RAMFS_SOCKET")" ] &&
		host_exec "$1" findmnt -n -o FSTYPE --mountpoint "$LAB_RAMFS_DIR" 2>/dev/null | grep -q '^fuse'
}

# host_libvirtd NAME: starts host NAME's libvirtd (tracked, watched, log
# $T/NAME-libvirtd.log), after its remusd ramfs (LAB_RAMFS=1, host_ramfs),
# and waits until `virsh` gets an answer from it.  Sets LIBVIRTD_PID.
host_libvirtd() {
	local name=$1
	local caps=$LAB/$1/var/cache/libvirt/qemu/capabilities
	[ "$LAB_RAMFS" != 1 ] || [ -n "${HOST_RAMFS_PID[$name]:-}" ] || host_ramfs "$name"
	[ -x "$LIBVIRTD" ] || fail "$LIBVIRTD is missing: install libvirt-daemon (.ci/setup does)"
	# QEMU's capabilities, probed by the first libvirtd of the run (about
	# 4 s under load here), are given to the others: libvirtd checks the
	# cache against QEMU's binary and its own and probes again if it is
	# stale.  The first host of a run takes them from REMUS_LAB_CAPS
	# (BUILD/lab-caps under ctest), what an earlier run of the build left.
	if [ ! -d "$caps" ]; then
		_lab_caps_copy "$LAB/caps" "$caps" || _lab_caps_copy "${REMUS_LAB_CAPS:-}" "$caps" || true
	fi
	host_spawn "$name" "$T/$name-libvirtd.log" "$LIBVIRTD" -f /etc/libvirt/libvirtd.conf
	LIBVIRTD_PID=$SPAWN_PID
	watch_daemon "$LIBVIRTD_PID" "libvirtd of host $name" "$T/$name-libvirtd.log"
	wait_for 90 "libvirtd of host $name to answer" _host_virsh_ok "$name"
	if [ ! -d "$LAB/caps" ] && [ -d "$caps" ]; then
		_lab_caps_copy "$caps" "$LAB/caps" || true
		# Refreshed for the next runs (a stale copy would be probed
		# again by every run, never replaced).
		[ -z "${REMUS_LAB_CAPS:-}" ] || _lab_caps_copy "$caps" "$REMUS_LAB_CAPS" || true
	fi
}

# _lab_caps_copy FROM TO: FROM's capability files (*.xml) into TO, each
# renamed into place (runs of other builds may read TO meanwhile); false
# if FROM has none.
_lab_caps_copy() {
	local f n=0
	[ -n "$1" ] && [ -d "$1" ] || return 1
	mkdir -p "$2"
	for f in "$1"/*.xml; do
		[ -f "$f" ] || continue
		cp "$f" "$2/.${f##*/}.$BASHPID" && mv -f "$2/.${f##*/}.$BASHPID" "$2/${f##*/}" && n=$((n + 1))
	done
	[ "$n" -gt 0 ]
}

_host_virsh_ok() { host_exec "$1" virsh -q version >/dev/null 2>&1; }

# host_kill NAME: host NAME dies like a powered-off one: its links go
# down first, so that nothing it sends afterwards leaves it (no FIN or RST
# of its dying sockets: its peers see only silence and must miss their
# heartbeats), then every process in it is stopped at once (SIGSTOP) and
# SIGKILLed.  Its files stay.  Stopped before the kill because a dead
# host's processes do not see each other die: killed one by one, a
# primary remusd outlived its QEMU by a moment, saw its migration stream
# fail and told its standby CLOSE (a clean end: no takeover), which no
# dead host ever says.  remus-chaos's lab kill-host does the same.
host_kill() {
	ip -n "$NS-sw" link set "$1" down 2>/dev/null || true
	ip -n "$NS-$1" link set up0 down 2>/dev/null || true
	_host_signal "$1" STOP
	_host_kill_procs "$1"
}

# host_freeze NAME / host_thaw NAME: host NAME stalls (SIGSTOP of every
# process in it; its links stay up, so only silence tells) and goes on
# (SIGCONT).  Frozen processes stay watched (they are alive) and are
# killed by the cleanup like the others.
host_freeze() { _host_signal "$1" STOP; }
host_thaw() { _host_signal "$1" CONT; }
_host_signal() {
	local p
	for p in $(ip netns pids "$NS-$1" 2>/dev/null || true); do
		kill -s "$2" "$p" 2>/dev/null || true
	done
}

# lab_partition A B / lab_heal A B: hosts A and B cannot reach each other
# any more / again, while both still reach every other host (the switch's
# ports of A and B are isolated: isolated bridge ports only talk to ports
# that are not).  Partitions of more than one pair share the same ports.
lab_partition() {
	local h
	for h in "$1" "$2"; do
		bridge -n "$NS-sw" link set dev "$h" isolated on
	done
}
lab_heal() {
	local h
	for h in "$1" "$2"; do
		bridge -n "$NS-sw" link set dev "$h" isolated off
	done
}

# lab_rate NAME RATE / lab_rate_clear NAME: a slow link to host NAME (a
# token bucket, tc tbf, on both ends of its uplink: `lab_rate sby 10mbit`).
# Delay and loss would need tc netem, which this machine's kernel lacks
# (CONFIG_NET_SCH_NETEM is not set).
lab_rate() {
	tc -n "$NS-sw" qdisc replace dev "$1" root tbf rate "$2" burst 16kb latency 500ms
	tc -n "$NS-$1" qdisc replace dev up0 root tbf rate "$2" burst 16kb latency 500ms
}
lab_rate_clear() {
	tc -n "$NS-sw" qdisc del dev "$1" root 2>/dev/null || true
	tc -n "$NS-$1" qdisc del dev up0 root 2>/dev/null || true
}

# host_boot NAME: host NAME comes back after host_kill: links up, /run
# emptied (a tmpfs on a real host), libvirtd started again.
host_boot() {
	local name=$1
	_host_kill_procs "$name"
	find "$LAB/$name/run" -mindepth 1 -delete
	mkdir -p "$LAB/$name/run/lock"
	ip -n "$NS-$name" link set up0 up
	ip -n "$NS-sw" link set "$name" up
	host_libvirtd "$name"
}

# host_down NAME: host NAME is gone for good: its processes killed, its
# mount namespace released, its network namespace deleted.
host_down() {
	local name=$1 h keep=()
	_host_kill_procs "$name"
	umount -l "$LAB/ns/$name.mnt" "$LAB/ns/$name.uts" 2>/dev/null || true
	ip netns del "$NS-$name" 2>/dev/null || true
	for h in "${HOSTS[@]}"; do
		[ "$h" = "$name" ] || keep+=("$h")
	done
	HOSTS=("${keep[@]+"${keep[@]}"}")
	unset "HOST_ADDR[$name]"
	_lab_hosts_file
}

# --- the test guest as a libvirt domain -------------------------------------------

# The guest's NIC, unless a test gives another (--mac).
LAB_GUEST_MAC=52:54:00:4c:41:01

_xml_escape() {
	local s=$1
	s=${s//&/&amp;}
	s=${s//</&lt;}
	s=${s//>/&gt;}
	s=${s//\'/&apos;}
	printf '%s' "$s"
}

# host_guest_xml NAME APPEND [OPTION...]: prints the test guest's domain XML
# (tests/lib/domain.xml.in) with kernel command line "console=ttyS0 APPEND".
# Options:
#   --mem MB             memory (default 256, as start_guest)
#   --disk PATH          the virtio disk's file, as the host sees it (default
#                        /var/lib/libvirt/images/NAME.FORMAT); none: no disk
#   --disk-format FMT    raw (default) or qcow2
#   --mac MAC            the NIC's MAC (default $LAB_GUEST_MAC)
#   --bridge BR          the host bridge the NIC is on (default br0)
#   --network NET        the NIC is on libvirt network NET instead
#                        (<interface type='network'>; host_network makes one)
#   --type TYPE          kvm or qemu (default: kvm where vm-images' accel
#                        probe found KVM working, else qemu, i.e. TCG)
#   --memory-backing file   guest RAM a shared file in libvirt's
#                        memory_backing_dir (<memoryBacking><source
#                        type='file'/><access mode='shared'/>): on the
#                        host's remusd ramfs, so its primary runs engine v2;
#                        default none (anonymous RAM: engine v1)
host_guest_xml() {
	local name=$1 append=$2 mem=256 disk="" fmt=raw mac=$LAB_GUEST_MAC nic=bridge src=br0 type="" vm xml
	local memback=none
	shift 2
	while [ $# -gt 0 ]; do
		case "$1" in
		--mem) mem=$2 ;;
		--disk) disk=$2 ;;
		--disk-format) fmt=$2 ;;
		--mac) mac=$2 ;;
		--bridge) nic=bridge src=$2 ;;
		--network) nic=network src=$2 ;;
		--type) type=$2 ;;
		--memory-backing) memback=$2 ;;
		*) fail "host_guest_xml: unknown option '$1'" ;;
		esac
		shift 2
	done
	need REMUS_GUEST_KERNEL REMUS_GUEST_INITRD
	vm=$(dirname "$REMUS_GUEST_KERNEL")
	if [ -z "$type" ]; then
		type=$(guest_accel "$vm") || fail "host_guest_xml: no accelerator"
		[ "$type" = kvm ] || type=qemu
	fi
	[ -n "$disk" ] || disk=/var/lib/libvirt/images/$name.$fmt
	xml=$(<"$REMUS_SOURCE_DIR/tests/lib/domain.xml.in")
	[ "$disk" != none ] || xml=$(printf '%s\n' "$xml" | grep -v '@DISK@')
	# Quoted replacements: bash 5.2 would expand & in them.
	xml=${xml//@TYPE@/"$type"}
	xml=${xml//@NAME@/"$(_xml_escape "$name")"}
	xml=${xml//@MEM@/"$mem"}
	xml=${xml//@KERNEL@/"$(_xml_escape "$REMUS_GUEST_KERNEL")"}
	xml=${xml//@INITRD@/"$(_xml_escape "$REMUS_GUEST_INITRD")"}
	xml=${xml//@APPEND@/"$(_xml_escape "$append")"}
	xml=${xml//@DISK_FORMAT@/"$fmt"}
	xml=${xml//@DISK@/"$(_xml_escape "$disk")"}
	xml=${xml//@NIC_TYPE@/"$nic"}
	xml=${xml//@NIC_SOURCE@/"$(_xml_escape "$src")"}
	xml=${xml//@MAC@/"$mac"}
	xml=${xml//@SERIAL@/"$(_xml_escape "/var/log/libvirt/qemu/$name.serial")"}
	case "$memback" in
	none) ;;
	file) xml=${xml//"  <devices>"/"  <memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>
  <devices>"} ;;
	*) fail "host_guest_xml: --memory-backing none or file, not '$memback'" ;;
	esac
	printf '%s\n' "$xml"
}

# host_define_guest HOST NAME APPEND [OPTION...]: defines domain NAME (the
# test guest, host_guest_xml's options) in HOST's libvirtd; its XML is kept
# in $LAB/HOST/NAME.xml.  Unless --disk is given, first creates its disk
# /var/lib/libvirt/images/NAME.FORMAT in HOST, of --disk-size MB (default
# 64) in --disk-format (default raw).
host_define_guest() {
	local host=$1 name=$2 append=$3 size=64 fmt=raw disk="" opts=()
	shift 3
	while [ $# -gt 0 ]; do
		case "$1" in
		--disk-size) size=$2 ;;
		--disk-format) fmt=$2; opts+=("$1" "$2") ;;
		--disk) disk=$2; opts+=("$1" "$2") ;;
		*) opts+=("$1" "$2") ;;
		esac
		shift 2
	done
	if [ -z "$disk" ]; then
		host_exec "$host" qemu-img create -q -f "$fmt" "/var/lib/libvirt/images/$name.$fmt" "${size}M" ||
			fail "host_define_guest: cannot create the disk of $name on $host"
	fi
	host_guest_xml "$name" "$append" "${opts[@]+"${opts[@]}"}" >"$LAB/$host/$name.xml"
	host_exec "$host" virsh -q define "$LAB/$host/$name.xml" >/dev/null ||
		fail "host_define_guest: $host's libvirtd refused domain $name ($LAB/$host/$name.xml)"
}

# host_start_guest HOST NAME: starts defined domain NAME on HOST.
host_start_guest() {
	host_exec "$1" virsh -q start "$2" >/dev/null || fail "host_start_guest: cannot start $2 on $1"
}

# host_network HOST NET [BRIDGE]: libvirt network NET on HOST, defined and
# started: <forward mode='bridge'/> over the host's bridge BRIDGE (default
# br0), so a guest's NIC on NET sits on the lab's LAN like one on br0 and
# libvirt needs neither dnsmasq nor firewall rules for it.  Needs
# libvirt's network driver (libvirt-daemon-driver-network; .ci/setup
# installs it): without it libvirtd knows no networks at all.
host_network() {
	local host=$1 net=$2 br=${3:-br0} f
	f=$LAB/$host/net-$net.xml
	printf "<network><name>%s</name><forward mode='bridge'/><bridge name='%s'/></network>\n" \
		"$(_xml_escape "$net")" "$(_xml_escape "$br")" >"$f"
	host_exec "$host" virsh -q net-define "$f" >"$T/net-define.out" 2>&1 ||
		fail "host_network: $host's libvirtd refused network $net ($f): $(cat "$T/net-define.out")$(
			compgen -G "/usr/lib/*/libvirt/connection-driver/libvirt_driver_network.so" >/dev/null ||
				echo "; libvirt's network driver is not installed: apt-get install libvirt-daemon-driver-network (.ci/setup does)")"
	host_exec "$host" virsh -q net-start "$net" >"$T/net-define.out" 2>&1 ||
		fail "host_network: cannot start network $net on $host: $(cat "$T/net-define.out")"
}

# host_domstate HOST NAME: the domain's state as `virsh domstate` prints it
# (running, paused, shut off, ...), "" if HOST does not know it.
host_domstate() { host_exec "$1" virsh -q domstate "$2" 2>/dev/null | head -n 1 || true; }

# host_guest_pid HOST NAME: the pid of domain NAME's QEMU on HOST, "" when
# it does not run there.
host_guest_pid() {
	local f
	f=$(host_path "$1" "/run/libvirt/qemu/$2.pid")
	if [ -s "$f" ]; then cat "$f"; fi
}

# host_serial HOST NAME: domain NAME's console output on HOST so far, clean
# text (guest-lib.sh's guest_serial over the pty's log file).
host_serial() { guest_serial "$(host_path "$1" "/var/log/libvirt/qemu/$2")"; }

# host_has_serial HOST NAME ERE: the console has a line matching ERE.
host_has_serial() { host_serial "$1" "$2" | grep -aE -- "$3" >/dev/null; }

# host_wait_serial HOST NAME ERE TIMEOUT_S [DESCRIPTION]: wait_for a console
# line; fails at once if the domain's QEMU is gone without printing it.
host_wait_serial() {
	wait_for "$4" "${5:-domain $2 on $1 to print /$3/}" _host_serial_or_gone "$1" "$2" "$3"
}
_host_serial_or_gone() {
	local pid
	host_has_serial "$1" "$2" "$3" && return 0
	pid=$(host_guest_pid "$1" "$2")
	{ [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; } ||
		fail "domain $2 on $1 stopped before /$3/ appeared: $(tail -n 3 "$(host_path "$1" "/var/log/libvirt/qemu/$2.log")" 2>/dev/null | tr '\n' ' ')"
	return 1
}

# --- remusd serve and remusctl ------------------------------------------------------

# Failure detection of the lab's remusd: generous, because a loaded two-core
# machine has starved 5 x 100 ms heartbeats without any failure; a killed
# host closes its links, which is seen at once anyway.
LAB_HEARTBEAT_MS=200
LAB_HEARTBEAT_MISS=10

# The links between the lab's hosts are TLS, as by default: LAB_TLS=psk
# (the default) gives every host the test's pre-shared key (lab_psk);
# LAB_TLS=x509
# gives each host its own certificates, from a CA of the test
# (lab_pki), in libvirt's layout in the host's /etc/remus/pki: a host
# then proves its name, and the DN CN=NAME is its identity (the owner of
# the standbys it creates, remusd(8)).
LAB_TLS=${LAB_TLS:-psk}

# lab_psk: the test's pre-shared key, $T/remus.psk, made on first use with
# `remusctl keygen` as a user sets up a pair of hosts (remusctl(8)); the
# by-hand tests' test_psk (remus.sh) then finds it and uses the same file,
# and makes its own with `remusd keygen` when no lab made one.  Prints it.
lab_psk() {
	need REMUSCTL
	if [ ! -e "$T/remus.psk" ]; then
		"$REMUSCTL" keygen "$T/remus.psk" >"$T/keygen.out" 2>&1 ||
			fail "remusctl keygen $T/remus.psk failed: $(cat "$T/keygen.out")"
		[ "$(stat -c %a "$T/remus.psk")" = 600 ] ||
			fail "remusctl keygen wrote $T/remus.psk with mode $(stat -c %a "$T/remus.psk"), not 600"
	fi
	test_psk
}

# lab_pki: the lab's CA and a certificate set per host up now (name and
# address), made with tls_pki on first use under $T/lab-pki; prints it.
lab_pki() {
	local h hosts=()
	need TLS_PKI
	if [ ! -d "$T/lab-pki" ]; then
		for h in "${HOSTS[@]}"; do hosts+=("$h=${HOST_ADDR[$h]}"); done
		mkdir "$T/lab-pki"
		"$TLS_PKI" --hosts "$T/lab-pki" "remus lab CA" "${hosts[@]}" ||
			fail "tls_pki --hosts $T/lab-pki failed"
	fi
	echo "$T/lab-pki"
}

# host_tls_conf NAME: host NAME's TLS lines of remusd.conf (LAB_TLS); with
# x509, its certificates copied into its /etc/remus/pki first.
host_tls_conf() {
	local pki dest
	case "$LAB_TLS" in
	psk) echo "tls_psk = $(lab_psk)" ;;
	x509)
		pki=$(lab_pki)
		[ -d "$pki/$1" ] || fail "no lab certificate for host $1 (lab_pki ran before it was up)"
		dest=$(host_path "$1" /etc/remus/pki)
		[ -d "$dest" ] || cp -a "$pki/$1" "$dest"
		echo "tls_x509_dir = /etc/remus/pki" ;;
	*) fail "LAB_TLS=$LAB_TLS: psk or x509" ;;
	esac
}

# host_remusd NAME [--KEY VALUE]...: starts host NAME's host daemon, `remusd
# serve` (tracked, watched, log $T/NAME-remusd.log), with its config file
# /etc/remus/remusd.conf (the host's name, the lab's heartbeat, the TLS of
# LAB_TLS for the peer port and the replication links;
# options given here override it on the command line), and waits until
# `remusctl list` gets an answer from it.  Sets REMUSD_SERVE_PID.
host_remusd() {
	local name=$1 tls
	shift
	need REMUSD REMUSCTL
	tls=$(host_tls_conf "$name")
	cat >"$(host_path "$name" /etc/remus/remusd.conf)" <<-EOF2
		# remus-qemu test lab (tests/lib/hosts.sh): host $name.
		name = $name
		heartbeat = $LAB_HEARTBEAT_MS
		miss = $LAB_HEARTBEAT_MISS
		ramfs_socket = $([ "$LAB_RAMFS" = 1 ] && echo "$LAB_RAMFS_SOCKET" || echo off)
		$tls
	EOF2
	host_spawn "$name" "$T/$name-remusd.log" "$REMUSD" serve "$@"
	REMUSD_SERVE_PID=$SPAWN_PID
	watch_daemon "$REMUSD_SERVE_PID" "remusd serve of host $name" "$T/$name-remusd.log"
	wait_for 60 "remusd serve of host $name to answer" _host_remusd_ok "$name"
}

_host_remusd_ok() { host_exec "$1" "$REMUSCTL" list >/dev/null 2>&1; }

# remusctl_on NAME ARG...: remusctl ARG... on host NAME (its control socket).
remusctl_on() {
	local name=$1
	shift
	host_exec "$name" "$REMUSCTL" "$@"
}

# remusd_request NAME JSON: sends one control request line to host NAME's
# remusd serve (/run/remus/remusd.sock) and prints its answer line: what
# remusctl sends, without remusctl (for the codes of refused requests).
remusd_request() {
	host_exec "$1" "$REMUS_PYTHON" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect("/run/remus/remusd.sock")
s.sendall(sys.argv[1].encode() + b"\n")
out = b""
while not out.endswith(b"\n"):
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())' "$2"
}
