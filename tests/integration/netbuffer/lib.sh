# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Shared helpers of the netbuffer tests and bench/netbuffer (sourced).
#
# The test bed of ARCHITECTURE.md ("Test bed on one machine") in four
# network namespaces named after this shell's pid, so parallel runs never
# meet:
#
#     $NS-cli                 $NS-sw                $NS-pri / $NS-sby
#     up0 10.9.0.2 ------- cli  br0  pri ------- up0 --+
#                                    sby ------- up0   br0 10.9.1.1 / .2
#                                                tap0 -+  (replication link)
#                                                  |
#                                      QEMU -netdev tap,ifname=tap0
#                                      guest eth0 10.9.0.100, MAC $GUEST_MAC
#
# The primary's and the standby's QEMU get the same tap name, MAC and guest
# IP: after a failover the standby's announce-self moves the MAC in the
# switch.  remusd primary (in pri) reaches remusd standby (in sby) over
# 10.9.1.0/24 through the same switch, so "the primary host died" is:
# SIGKILL its processes and take its up0 down.
#
# Every process is started by PID (`track`); the EXIT trap SIGKILLs those
# PIDs and deletes the namespaces on every path.  A run killed with
# SIGKILL cannot clean up: the next run reaps namespaces whose owner pid
# is gone (`reap_stale`), killing only processes inside them.

set -euo pipefail

: "${REMUS_BUILD_DIR:?run through ctest (REMUS_BUILD_DIR unset)}"
: "${REMUS_GUEST_KERNEL:?}" "${REMUS_GUEST_INITRD:?}"
QEMU=${REMUS_QEMU:-qemu-system-x86_64}
REMUSD=$REMUS_BUILD_DIR/daemon/remusd
NBCHECK=$REMUS_BUILD_DIR/tests/integration/netbuffer/nbcheck
ACCEL=${REMUS_ACCEL:-$(cat "$REMUS_BUILD_DIR/vm-images/accel" 2>/dev/null || echo tcg)}

NS=rnb$$
GUEST_IP=10.9.0.100
GUEST_MAC=52:54:00:4e:42:01
CLIENT_IP=10.9.0.2
PRI_IP=10.9.1.1
SBY_IP=10.9.1.2
UDP_PORT=9000
TCP_PORT=7777
BULK_PORT=7778
REPL_PORT=7000
# Generous: a full first epoch (100+ MB through the link) on a loaded
# two-core machine has starved a 5 x 100 ms heartbeat.  The kill closes
# the link, so detection does not wait for these in the common case.
HEARTBEAT_MS=200
HEARTBEAT_MISS=10

[ -x "$NBCHECK" ] || { echo "no $NBCHECK: build the tree first" >&2; exit 2; }
T=$(mktemp -d "/tmp/remus-nb-$$-XXXXXX")
PIDS=()
NAMESPACES=()

track() { PIDS+=("$1"); }

cleanup() {
	local rc=$? p n
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		wait "$p" 2>/dev/null || true
	done
	# Anything still inside the test's namespaces was started by this
	# test (a child of a tracked process): stop it by pid before the
	# namespaces go, or it would outlive the test.
	for n in "${NAMESPACES[@]+"${NAMESPACES[@]}"}"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null || true
		done
		ip netns del "$n" 2>/dev/null || true
	done
	if [ "$rc" -ne 0 ]; then
		echo "---- logs of the failed run ($T)"
		for p in "$T"/*.log; do
			[ -f "$p" ] || continue
			echo "== $p"
			tail -n 25 "$p" | tr -d '\r'
		done
	fi
	[ -n "${REMUS_TEST_KEEP:-}" ] || rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

now_ms() { date +%s%3N; }
# Wall clock in microseconds without a fork (bash 5's EPOCHREALTIME).
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

# Daemons whose death ends any wait at once: `watch_daemon PID NAME LOG`.
WATCHED=()
watch_daemon() { WATCHED+=("$1:$2:$3"); }
unwatch_daemon() {
	local w keep=()
	for w in "${WATCHED[@]+"${WATCHED[@]}"}"; do
		[ "${w%%:*}" = "$1" ] || keep+=("$w")
	done
	WATCHED=("${keep[@]+"${keep[@]}"}")
}
check_daemons() {
	local w pid rest
	for w in "${WATCHED[@]+"${WATCHED[@]}"}"; do
		pid=${w%%:*} rest=${w#*:}
		kill -0 "$pid" 2>/dev/null ||
			fail "${rest%%:*} exited early: $(tail -n 3 "${rest#*:}" 2>/dev/null)"
	done
}

# wait_for TIMEOUT_S DESCRIPTION COMMAND...: polls COMMAND every 100 ms.
wait_for() {
	local timeout=$1 what=$2 deadline
	shift 2
	deadline=$(($(now_ms) + timeout * 1000))
	until "$@"; do
		check_daemons
		[ "$(now_ms)" -lt "$deadline" ] || fail "timed out after ${timeout}s waiting for $what"
		sleep 0.1
	done
}

count_lines() {
	if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

json_get() {
	python3 -c 'import json,sys
d=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    d=d[k] if isinstance(d,dict) else None
print("" if d is None else d)' "$1" "$2"
}

serial() {
	[ -f "$T/$1.serial.log" ] || return 0
	tr -d '\r' <"$T/$1.serial.log"
}
has_serial() { serial "$1" | grep -q "$2"; }

# on HOST CMD...: runs CMD in the namespace of HOST (pri, sby, cli, sw).
# Not for background processes: `on ... &` forks a subshell whose pid is
# not the command's; those use `ip netns exec` (which execs) directly.
on() {
	local h=$1
	shift
	ip netns exec "$NS-$h" "$@"
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Namespaces and temp dirs of earlier runs whose shell is gone (killed by
# a timeout with SIGKILL, so its trap never ran): the processes inside
# those namespaces are that run's QEMUs and daemons.
reap_stale() {
	local n owner p
	for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^rnb[0-9]+-(sw|pri|sby|cli)$' || true); do
		owner=${n#rnb}
		owner=${owner%%-*}
		alive "$owner" && continue
		echo "removing namespace $n of a dead run (pid $owner)" >&2
		for p in $(ip netns pids "$n" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null || true
		done
		ip netns del "$n" 2>/dev/null || true
		rm -rf "/tmp/remus-nb-$owner-"*
	done
}

topo_up() {
	local h
	reap_stale
	for h in sw pri sby cli; do
		ip netns add "$NS-$h"
		NAMESPACES+=("$NS-$h")
		# No IPv6: no DAD or router solicitations in the logs and links.
		on "$h" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip -n "$NS-$h" link set lo up
	done
	ip -n "$NS-sw" link add br0 type bridge
	ip -n "$NS-sw" link set br0 up
	for h in pri sby cli; do
		ip -n "$NS-sw" link add "$h" type veth peer name up0 netns "$NS-$h"
		ip -n "$NS-sw" link set "$h" master br0 up
		ip -n "$NS-$h" link set up0 up
	done
	for h in pri sby; do
		ip -n "$NS-$h" link add br0 type bridge
		ip -n "$NS-$h" link set up0 master br0
		# Persistent tap made here, so it is in the bridge before QEMU
		# (script=no) attaches; it survives the QEMU that is killed.
		ip -n "$NS-$h" tuntap add dev tap0 mode tap vnet_hdr
		ip -n "$NS-$h" link set tap0 master br0 up
		ip -n "$NS-$h" link set br0 up
	done
	ip -n "$NS-pri" addr add "$PRI_IP/24" dev br0
	ip -n "$NS-sby" addr add "$SBY_IP/24" dev br0
	ip -n "$NS-cli" addr add "$CLIENT_IP/24" dev up0
}

# start_guest HOST NAME APPEND [EXTRA...]: the test guest in HOST's
# namespace on tap0, serial $T/NAME.serial.log, QMP $T/NAME.qmp; sets
# QEMU_PID.  ip netns exec execs QEMU itself, so the pid is QEMU's.
start_guest() {
	local h=$1 name=$2 append=$3
	shift 3
	ip netns exec "$NS-$h" "$QEMU" -accel "$ACCEL" -machine pc -m 256 -smp 1 \
		-nographic -nodefaults \
		-kernel "$REMUS_GUEST_KERNEL" -initrd "$REMUS_GUEST_INITRD" \
		-append "console=ttyS0 $append" \
		-netdev tap,id=hn0,ifname=tap0,script=no,downscript=no,vnet_hdr=on \
		-device "virtio-net-pci,netdev=hn0,mac=$GUEST_MAC" \
		-serial "file:$T/$name.serial.log" \
		-qmp "unix:$T/$name.qmp,server=on,wait=off" "$@" \
		>"$T/$name.qemu.log" 2>&1 &
	QEMU_PID=$!
	track "$QEMU_PID"
}

# The guest's kernel command line: the counter every 10 ms to the client.
counter_append() {
	echo "remus.ip=$GUEST_IP/24 remus.run=counter" \
		"remus.args=udp=$CLIENT_IP:$UDP_PORT,ms=10,tcp=$TCP_PORT,bulk=$BULK_PORT"
}

# The primary and the hot standby guest plus the standby remusd; returns
# when the primary's counter runs.  Sets PRI_QEMU, SBY_QEMU, SBY_REMUSD.
start_pair() {
	local append
	append=$(counter_append)
	start_guest pri pri "$append"
	PRI_QEMU=$QEMU_PID
	start_guest sby sby "$append" -incoming "unix:$T/in.sock"
	SBY_QEMU=$QEMU_PID
	ip netns exec "$NS-sby" "$REMUSD" standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" \
		--listen "$SBY_IP:$REPL_PORT" --ctl "$T/sby.ctl" --report "$T/report.json" \
		--heartbeat "$HEARTBEAT_MS" --miss "$HEARTBEAT_MISS" >"$T/standby.log" 2>&1 &
	SBY_REMUSD=$!
	track "$SBY_REMUSD"
	watch_daemon "$SBY_REMUSD" "standby remusd" "$T/standby.log"
	wait_for 180 "the primary guest to boot" has_serial pri GUEST-UP
	wait_for 60 "the guest's counter to start" has_serial pri 'counter start'
}

# remusd's --netbuffer option, if this remusd has it ("" otherwise: a
# remusd without a netbuffer behaves as --netbuffer off).
remusd_has_netbuffer() { "$REMUSD" --help 2>&1 | grep -q -- '--netbuffer'; }

# start_primary INTERVAL_MS MODE: remusd primary in pri with MODE one of
# qemu, plug, off; sets PRI_REMUSD.  metrics in $T/metrics.jsonl.
start_primary() {
	local interval=$1 mode=$2 nb=()
	if remusd_has_netbuffer; then
		nb=(--netbuffer "$mode")
		# plug holds the guest's tap (needs sch_plug: not on these hosts).
		[ "$mode" != plug ] || nb+=(--tap tap0)
	elif [ "$mode" != off ]; then
		fail "this remusd has no --netbuffer option: output commit is not wired into remusd yet ($REMUSD --help)"
	fi
	ip netns exec "$NS-pri" "$REMUSD" primary --qmp "$T/pri.qmp" --standby "$SBY_IP:$REPL_PORT" \
		--interval "$interval" --ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" \
		--heartbeat "$HEARTBEAT_MS" --miss "$HEARTBEAT_MISS" "${nb[@]}" >"$T/primary.log" 2>&1 &
	PRI_REMUSD=$!
	track "$PRI_REMUSD"
	watch_daemon "$PRI_REMUSD" "primary remusd" "$T/primary.log"
}

ctl() { "$REMUSD" ctl "$@"; }

# kill_point INTERVAL_MS LO HI: returns at a random point LO..HI (fractions)
# into the running part of an epoch of the primary, and prints
# "EPOCH FRACTION" (the fraction actually reached).  The primary logs
# "epoch N: pause ..." when its cont is answered, i.e. when epoch N+1
# starts running; the line's timestamp is the reference.  Waiting for the
# next line and sleeping a fraction of the interval from there keeps the
# point out of the checkpoint pause even when commits take long (the
# metrics line is written only at the standby's ack).
kill_point() {
	python3 - "$T/primary.log" "$1" "$2" "$3" <<'PY'
import datetime, random, re, sys, time
path, interval, lo, hi = sys.argv[1], int(sys.argv[2]) / 1000, float(sys.argv[3]), float(sys.argv[4])
pat = re.compile(r"^(\S+)Z .*\[engine\] epoch (\d+): pause ")
def conts():
    out = []
    with open(path) as f:
        for line in f:
            m = pat.match(line)
            if m:
                t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
                out.append((int(m.group(2)), t.timestamp()))
    return out
seen = len(conts())
deadline = time.time() + 30 + 5 * interval
while time.time() < deadline:
    c = conts()
    if len(c) > seen:
        epoch, t0 = c[-1]
        seen = len(c)
        frac = random.uniform(lo, hi)
        if time.time() < t0 + frac * interval:
            time.sleep(t0 + frac * interval - time.time())
            print(epoch + 1, round((time.time() - t0) / interval, 3))
            sys.exit(0)
    time.sleep(0.005)
sys.exit("no epoch started in time in %s (no '[engine] epoch N: pause' line)" % path)
PY
}

# check_netbuffer_status STATUS_JSON: the primary's netbuffer holds, has
# queued and released frames, let none pass unheld and dropped none.
# Prints the counters.
check_netbuffer_status() {
	python3 - "$1" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
nb = s.get("netbuffer")
if not isinstance(nb, dict):
    sys.exit("status has no \"netbuffer\" object: %s" % sys.argv[1])
st = nb.get("stats", nb)   # counters live in "stats"; flat is accepted too
bad = []
for k in ("queued_frames", "released_frames"):
    if not isinstance(st.get(k), int) or st[k] <= 0:
        bad.append("%s=%r (expected > 0)" % (k, st.get(k)))
for k in ("dropped_overflow", "dropped_malformed", "dropped_io", "passthrough_frames"):
    if st.get(k, 0) != 0:
        bad.append("%s=%r (expected 0)" % (k, st.get(k)))
for k in ("dropped_overflow", "dropped_malformed"):
    if k not in st:
        bad.append("%s missing" % k)
if nb.get("kind") not in ("qemu", "plug"):
    bad.append("kind=%r (expected qemu or plug)" % nb.get("kind"))
if nb.get("holding") is not True:
    bad.append("holding=%r (expected true)" % nb.get("holding"))
if bad:
    sys.exit("netbuffer counters not sane: " + ", ".join(bad) + ": " + json.dumps(nb))
print("netbuffer status before the kill: kind %s, queued %d, released %d, held %d, dropped 0, "
      "latency p50 %s ms max %s ms" % (nb.get("kind"), st["queued_frames"], st["released_frames"],
      st.get("held_frames", -1), st.get("latency_p50_ms"), st.get("latency_max_ms")))
PY
}
