#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-lab: the lab of the libvirt tests (tests/lib/hosts.sh) does what
# the other tests rely on, and leaves nothing behind.
#
# 1. A run killed by SIGKILL (a child run of this script: host x with its
#    libvirtd and a process started with host_exec) leaves namespaces,
#    mounts and processes; hosts_reap_stale removes all of them.
# 2. A normal run (another child run): hosts pri and sby each with its own
#    libvirtd, the client cli; a domain (the test guest, file disk, NIC on
#    br0) runs on pri, a second one is defined on sby; each host's virsh
#    sees only its own; names resolve per host; the client reaches the
#    guest's TCP service over the bridge; the other faults do what they
#    say (partition, freeze/thaw, a slow link); host_kill pri stops pri's guest
#    and daemon while sby's libvirtd goes on.  It prints how long a
#    libvirtd takes to answer (the first host: QEMU capability probe, or seeded from
#    REMUS_LAB_CAPS; the second: seeded by the first).
# 3. After that run exited, nothing of it is left: no namespace, no mount,
#    no process it recorded, no directory.
#
# Needs root (namespaces); exit 77 without.

source "$(dirname "$0")/../../lib/remus.sh"

GUEST_IP=10.9.0.100
TCP_PORT=7777

# Child run "crash STATE": a lab host with its daemons, then waits to be
# killed; STATE gets "NS T LIBVIRTD_PID SLEEP_PID" once all runs.
crash_run() {
	source "$REMUS_SOURCE_DIR/tests/lib/hosts.sh"
	host_up x 10.9.0.31
	host_libvirtd x
	host_spawn x "$T/x-sleep.log" sleep 600
	echo "$NS $T $LIBVIRTD_PID $SPAWN_PID" >"$1.tmp"
	mv "$1.tmp" "$1"
	# exec: the SIGKILL of this run must not leave a sleep behind (a
	# child sleep outlived it by 10 min, holding whatever it inherited,
	# such as the lock of `flock LOCK ctest ...`).
	exec sleep 600
}

# Child run "lab STATE": scenario 2; STATE gets "NS T PID..." (the
# processes it started) before it ends.
lab_run() {
	local t0 cold warm boot pri_pid sby_pid qpid got
	source "$REMUS_SOURCE_DIR/tests/lib/hosts.sh"
	host_up pri 10.9.0.11
	host_up sby 10.9.0.12
	host_up cli 10.9.0.2
	t0=$(now_ms)
	host_libvirtd pri
	cold=$(($(now_ms) - t0))
	pri_pid=$LIBVIRTD_PID
	t0=$(now_ms)
	host_libvirtd sby
	warm=$(($(now_ms) - t0))
	sby_pid=$LIBVIRTD_PID
	t0=$(now_ms)
	host_exec sby virsh -q version >/dev/null || fail "virsh on sby"
	echo "libvirtd answers after ${cold} ms (first host: probed, or seeded from REMUS_LAB_CAPS), ${warm} ms (seeded by the first); a connect then takes $(($(now_ms) - t0)) ms"

	# Names and hostnames are per host.
	[ "$(host_exec sby hostname)" = sby ] || fail "sby's hostname is $(host_exec sby hostname)"
	[ "$(host_exec cli getent hosts sby | awk '{print $1}')" = 10.9.0.12 ] ||
		fail "cli does not resolve sby: $(host_exec cli cat /etc/hosts)"
	[ "$(host_exec pri getent hosts cli | awk '{print $1}')" = 10.9.0.2 ] || fail "pri does not resolve cli"

	t0=$(now_ms)
	host_define_guest pri web1 "remus.ip=$GUEST_IP/24 remus.run=counter remus.args=ms=100,tcp=$TCP_PORT" \
		--disk-format qcow2
	host_start_guest pri web1
	host_define_guest sby other "remus.run=tick" --disk none --mac 52:54:00:4c:41:02
	host_wait_serial pri web1 'counter start' 180 "web1 to boot on pri"
	boot=$(($(now_ms) - t0))
	echo "web1 booted in ${boot} ms (define, start, counter running)"

	# Each libvirtd sees its own domains only.
	got=$(host_exec pri virsh -q list --all --name | sed '/^$/d' | tr '\n' ' ')
	[ "$got" = "web1 " ] || fail "pri's virsh lists '$got', not only web1"
	got=$(host_exec sby virsh -q list --all --name | sed '/^$/d' | tr '\n' ' ')
	[ "$got" = "other " ] || fail "sby's virsh lists '$got', not only other"
	[ "$(host_domstate pri web1)" = running ] || fail "web1 is $(host_domstate pri web1) on pri"
	[ "$(host_domstate sby other)" = "shut off" ] || fail "other is $(host_domstate sby other) on sby"
	[ -z "$(host_domstate sby web1)" ] || fail "sby knows web1"
	[ -n "$(host_exec pri virsh -q domiflist web1 | awk '$3 == "br0"')" ] || fail "web1's NIC is not on br0"

	# The client reaches the guest over the lab's bridge.
	got=$(host_exec cli python3 -c 'import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10)
print(s.recv(64).decode().strip())' "$GUEST_IP" "$TCP_PORT") || fail "cli cannot reach web1's TCP port"
	[[ "$got" =~ ^counter\ [0-9]+$ ]] || fail "web1 answered '$got'"
	echo "cli got '$got' from web1 over the bridge"

	lab_faults

	qpid=$(host_guest_pid pri web1)
	{ [ -n "$qpid" ] && kill -0 "$qpid"; } || fail "no QEMU pid for web1"
	echo "$NS $T $pri_pid $sby_pid $qpid" >"$1"

	# A host dies; the other's daemon goes on.
	host_kill pri
	wait_for 10 "web1's QEMU to die with pri" gone "$qpid"
	gone "$pri_pid" || fail "pri's libvirtd survived host_kill"
	[ -z "$(ip netns pids "$NS-pri")" ] || fail "processes left in pri: $(ip netns pids "$NS-pri")"
	[ "$(host_exec sby virsh -q list --all --name | sed '/^$/d')" = other ] || fail "sby's libvirtd did not go on"
	echo "host_kill pri: its libvirtd and QEMU gone, sby's libvirtd answers"
}

# reach FROM TO: a TCP connection from host FROM to host TO's port 7000
# (by name) succeeds within 1 s; prints the seconds it took.
reach() {
	host_exec "$1" python3 -c 'import socket, sys, time
t = time.monotonic()
try:
    socket.create_connection((sys.argv[1], 7000), 1).close()
except OSError:
    sys.exit(1)
print("%.3f" % (time.monotonic() - t))' "$2"
}

_reach_quiet() { reach "$@" >/dev/null; }

# The lab's other faults: a partition, a stall, a slow link.
lab_faults() {
	local h t
	for h in pri sby cli; do
		host_spawn "$h" "$T/$h-listen.log" python3 -c 'import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000))
s.listen(16)
while True:
    s.accept()[0].close()'
	done
	host_spawn sby "$T/sby-sink.log" python3 -c 'import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7001))
s.listen(4)
while True:
    c = s.accept()[0]
    while c.recv(65536):
        pass
    c.close()'
	wait_for 10 "the listeners" _reach_quiet pri sby
	{ reach sby pri >/dev/null && reach cli pri >/dev/null && reach pri cli >/dev/null; } ||
		fail "the hosts do not reach each other"

	lab_partition pri sby
	! reach pri sby >/dev/null || fail "pri reaches sby across the partition"
	! reach sby pri >/dev/null || fail "sby reaches pri across the partition"
	{ reach cli pri >/dev/null && reach cli sby >/dev/null && reach pri cli >/dev/null &&
		reach sby cli >/dev/null; } || fail "the partition of pri and sby cut the client off"
	lab_heal pri sby
	reach pri sby >/dev/null || fail "pri does not reach sby after the heal"
	echo "lab_partition pri sby: pri and sby cut from each other, both reach cli; healed"

	host_freeze sby
	! timeout 3 nsenter --net="/run/netns/$NS-sby" --mount="$LAB/ns/sby.mnt" virsh -q version >/dev/null 2>&1 ||
		fail "sby's libvirtd answered while frozen"
	host_thaw sby
	host_exec sby virsh -q version >/dev/null || fail "sby's libvirtd does not answer after the thaw"
	echo "host_freeze sby: its libvirtd silent; host_thaw: it answers"

	# 256 KiB through 1 Mbit/s take about 2 s.
	lab_rate sby 1mbit
	t=$(send_to cli sby) || fail "cli cannot send to sby through the slow link"
	python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 1.5)' "$t" ||
		fail "256 KiB through 1 Mbit/s took only ${t} s"
	lab_rate_clear sby
	echo "lab_rate sby 1mbit: 256 KiB from cli took ${t} s; cleared: $(send_to cli sby) s"
}

# send_to FROM TO: sends 256 KiB from host FROM to TO's port 7001 (which
# reads it all) and prints the seconds until TO had it all.
send_to() {
	host_exec "$1" python3 -c 'import socket, sys, time
t = time.monotonic()
s = socket.create_connection((sys.argv[1], 7001), 10)
s.sendall(b"x" * 262144)
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
s.recv(1)
print("%.3f" % (time.monotonic() - t))' "$2"
}

# left_of NS T PID...: what run NS/T left behind (namespaces, mounts,
# directory, live processes), nothing if all is gone.
left_of() {
	local ns=$1 t=$2 p
	shift 2
	ip netns list | awk '{print $1}' | grep -E "^$ns-" || true
	awk '{print $5}' /proc/self/mountinfo | grep -F "$t" || true
	[ ! -e "$t" ] || echo "$t"
	for p in "$@"; do
		! alive "$p" || echo "pid $p"
	done
}

case "${1:-}" in
crash) crash_run "$2"; exit ;;
lab) lab_run "$2"; exit ;;
esac

source "$REMUS_SOURCE_DIR/tests/lib/hosts.sh"
need REMUS_GUEST_KERNEL REMUS_GUEST_INITRD

# 1. A killed run, reaped.
# The child runs clean up after themselves even when this run is kept.
env -u REMUS_TEST_KEEP bash "$0" crash "$T/crash.state" >"$T/crash.log" 2>&1 &
crash=$!
track "$crash"
wait_for 120 "the crash run's lab" test -s "$T/crash.state"
read -r cns ct clv csl <"$T/crash.state"
kill -9 "$crash"
wait "$crash" 2>/dev/null || true
[ -n "$(left_of "$cns" "$ct" "$clv" "$csl")" ] || fail "the killed run left nothing: the check cannot fail"
hosts_reap_stale 2>"$T/reap.log"
wait_for 10 "the killed run's processes to go" gone "$clv"
left=$(left_of "$cns" "$ct" "$clv" "$csl")
[ -z "$left" ] || fail "after reaping, the killed run left: $left"
echo "a run killed by SIGKILL: $(wc -l <"$T/reap.log") leftovers reaped, nothing left"

# 2. and 3. A normal run, then nothing of it left.
env -u REMUS_TEST_KEEP bash "$0" lab "$T/lab.state" >"$T/lab.log" 2>&1 || { cat "$T/lab.log"; fail "the lab run failed"; }
cat "$T/lab.log"
read -r lns lt pids <"$T/lab.state"
# shellcheck disable=SC2086 # the pids, split on purpose
left=$(left_of "$lns" "$lt" $pids)
[ -z "$left" ] || fail "the lab run left: $left"
echo "the lab run left nothing behind"
