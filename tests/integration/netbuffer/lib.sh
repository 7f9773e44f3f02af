# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# The output-commit test bed of netbuffer-failover.sh and bench/netbuffer
# (sourced after tests/lib/remus.sh and tests/lib/netns.sh).
#
# The test bed of ARCHITECTURE.md ("Test bed on one machine") in four
# network namespaces of the test:
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

need REMUSD NBCHECK
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

topo_up() {
	local h
	netns_add sw pri sby cli
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

# The guest's kernel command line: the counter every 10 ms to the client.
counter_append() {
	echo "remus.ip=$GUEST_IP/24 remus.run=counter" \
		"remus.args=udp=$CLIENT_IP:$UDP_PORT,ms=10,tcp=$TCP_PORT,bulk=$BULK_PORT"
}

# The primary and the hot standby guest (guests pri and sby, each on its
# host's tap0) plus the standby remusd; returns when the primary's counter
# runs.  Sets PRI_QEMU, SBY_QEMU, SBY_REMUSD.
start_pair() {
	local append
	append=$(counter_append)
	start_guest pri "$append" --netns pri --tap "tap0,$GUEST_MAC"
	PRI_QEMU=$QEMU_PID
	start_guest sby "$append" --netns sby --tap "tap0,$GUEST_MAC" --incoming "unix:$T/in.sock"
	SBY_QEMU=$QEMU_PID
	start_remusd --netns sby standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" \
		--listen "$SBY_IP:$REPL_PORT" --ctl "$T/sby.ctl" --report "$T/report.json" \
		--heartbeat "$HEARTBEAT_MS" --miss "$HEARTBEAT_MISS"
	SBY_REMUSD=$REMUSD_PID
	wait_serial pri GUEST-UP 180 "the primary guest to boot"
	wait_serial pri 'counter start' 60 "the guest's counter to start"
}

# start_primary INTERVAL_MS MODE: remusd primary in pri (log
# $T/primary.log, metrics $T/metrics.jsonl) with --netbuffer MODE: qemu,
# plug (holds the guest's tap: needs sch_plug, which these hosts lack) or
# off.  Sets PRI_REMUSD.
start_primary() {
	local interval=$1 mode=$2 nb=(--netbuffer "$2")
	[ "$mode" != plug ] || nb+=(--tap tap0)
	start_remusd --netns pri primary primary --qmp "$T/pri.qmp" --standby "$SBY_IP:$REPL_PORT" \
		--interval "$interval" --ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" \
		--heartbeat "$HEARTBEAT_MS" --miss "$HEARTBEAT_MISS" "${nb[@]}"
	PRI_REMUSD=$REMUSD_PID
}

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
