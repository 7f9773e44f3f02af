#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-network: a domain whose NIC is on a libvirt network, not a bridge
# (<interface type='network'>), keeps it across protect and failover, and
# after the failover it is a normal libvirt domain on sby down to `virsh
# console`.  The network "lan" is <forward mode='bridge'/> over each host's
# br0 (hosts.sh host_network), so the client reaches the guest as on a
# bridged NIC, and libvirt needs no dnsmasq.
#   1. sby lacks "lan": protect is refused naming host, network, MAC,
#      domain and the fix (code no-bridge), and nothing changed on sby
#      (libvirt's domains, remusd's list, its state and run directories)
#      nor on pri (web1 runs unprotected on its file disk);
#   2. "lan" defined on sby: protect works; sby's standby domain has the
#      same MAC and type='network' on "lan", without pri's portid or bridge;
#   3. pri killed 20-80 % into an epoch: web1 runs on sby from the last
#      checkpoint (lib.sh check_continuity), still on "lan" with its MAC,
#      and the client reaches its address;
#   4. `virsh console --force web1` on sby, under a pty, shows the guest's
#      serial output live (diskrec lines newer than the log had), detaches
#      with ^]; then `virsh destroy` stops it.
# (libvirt-failover covers suspend and resume on the survivor.)
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

NET=lan
t_start=$(now_ms)
lab_up
host_network pri "$NET"
web1_up --network "$NET"
# nic_xml HOST [--inactive]: web1's NIC in HOST's XML, "TYPE ATTR=V...
# mac=MAC" with <source>'s attributes but its portid (nic_port prints
# that).  Live, libvirt shows a NIC on a <forward mode='bridge'/> network
# as type 'bridge' with the network's name, port and bridge in <source>;
# the definition (--inactive) keeps type 'network'.
nic_xml() { _nic HOST "$@"; }
nic_port() { _nic PORT "$@"; }
_nic() {
	local what=$1 host=$2
	shift 2
	host_exec "$host" virsh dumpxml "$@" "$DOM" | python3 -c 'import sys, xml.etree.ElementTree as E
for i in E.parse(sys.stdin).getroot().iter("interface"):
    src = dict(i.find("source").attrib)
    port = src.pop("portid", "")
    if sys.argv[1] == "PORT":
        print(port)
    else:
        print(i.get("type"), " ".join("%s=%s" % kv for kv in sorted(src.items())),
              "mac=%s" % i.find("mac").get("address"))' "$what"
}
mac=$LAB_GUEST_MAC
[ "$(nic_xml pri --inactive)" = "network network=$NET mac=$mac" ] ||
	fail "web1 on pri is not defined on network $NET with MAC $mac: $(nic_xml pri --inactive)"
pri_port=$(nic_port pri)
[ -n "$pri_port" ] || fail "pri's libvirt gave web1's NIC no port of network $NET: $(nic_xml pri)"
echo "web1 runs on pri; its NIC live: $(nic_xml pri) portid=$pri_port; defined: $(nic_xml pri --inactive)"

# 1. sby has no network lan.
sby_look() {
	host_exec sby virsh -q list --all
	remusctl_on sby list --json
	(cd "$(host_path sby /var/lib/remus)" && find . | sort)
	(cd "$(host_path sby /run/remus)" && find . | sort)
}
before=$(sby_look)
rc=0
remusctl_on pri protect "$DOM" --standby sby --interval "$INTERVAL" >"$T/refused.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "protect with no network $NET on sby exited $rc, not 1: $(cat "$T/refused.out")"
for w in "host sby" "network $NET" "$mac" "domain $DOM" "virsh net-start $NET"; do
	grep -qF -- "$w" "$T/refused.out" || fail "the refusal does not name '$w': $(cat "$T/refused.out")"
done
answer=$(remusd_request pri "{\"cmd\": \"protect\", \"domain\": \"$DOM\", \"standby\": \"sby\", \"interval_ms\": $INTERVAL}")
{ [ "$(json_get "$answer" ok)" = false ] && [ "$(json_get "$answer" code)" = no-bridge ]; } ||
	fail "the raw protect request got $answer, not code no-bridge"
after=$(sby_look)
[ "$before" = "$after" ] || fail "the refused protect changed sby:
$before
---- after:
$after"
[ "$(remusctl_on pri list --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin).get("domains", [])))')" = 0 ] ||
	fail "pri keeps a record after the refusal: $(remusctl_on pri list)"
dom_is pri running || fail "web1 is not running on pri after the refusal"
[ "$(host_exec pri virsh -q domblklist "$DOM" --details | awk '$3 == "vda" {print $1}')" = file ] ||
	fail "web1's disk on pri is not its file after the refusal: $(host_exec pri virsh -q domblklist "$DOM" --details)"
echo "protect without $NET on sby: refused (no-bridge), sby unchanged: $(head -n 1 "$T/refused.out")"

# 2. With the network on sby.
host_network sby "$NET"
protect_web1
echo "protect: $PROTECT_MS ms: $(tail -n 1 "$T/protect.out")"
# sby's libvirt took the standby's NIC as one on its own network lan (a
# NIC of type 'bridge' would show no network) with a port of its own.
sby_def=$(nic_xml sby --inactive)
[ "$sby_def" = "network network=$NET mac=$mac" ] ||
	fail "sby's standby is not defined on network $NET with MAC $mac: $sby_def"
sby_live=$(nic_xml sby)
[ "$sby_live" = "bridge bridge=br0 network=$NET mac=$mac" ] ||
	fail "sby's standby NIC is not on sby's network $NET: $sby_live"
sby_port=$(nic_port sby)
{ [ -n "$sby_port" ] && [ "$sby_port" != "$pri_port" ]; } ||
	fail "sby's standby has port '$sby_port' of network $NET, not one of its own (pri's is $pri_port)"
echo "sby's standby NIC defined: $sby_def; live: $sby_live portid=$sby_port (pri's: $pri_port)"

# 3. Failover.
epochs_pass pri 3
kill_pri_fail_over
echo "sby's NIC after the failover: $(host_exec sby virsh -q domiflist "$DOM" | tr -s ' ')"
[ "$(nic_xml sby)" = "$sby_live" ] || fail "web1's NIC on sby changed in the failover: $(nic_xml sby)"
cli_reaches_guest || fail "cli cannot reach web1 at sby over network $NET"
echo "cli reaches web1 ($GUEST_IP) on sby over $NET"

# 4. virsh console on the survivor: a pty as virsh needs, read until a
# diskrec line newer than the console log had, then ^] (virsh's escape).
seen=$(dom_last sby)
host_exec sby python3 - "$DOM" "$seen" 20 >"$T/console.out" 2>&1 <<'EOF' || fail "virsh console on sby: $(tail -n 5 "$T/console.out")"
import os, pty, re, select, signal, sys, time
dom, seen, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pid, fd = pty.fork()
if pid == 0:
    os.execvp("virsh", ["virsh", "-c", "qemu:///system", "console", "--force", dom])
t0, out, got = time.monotonic(), b"", None
while got is None and time.monotonic() - t0 < limit:
    if not select.select([fd], [], [], 0.2)[0]:
        continue
    try:
        b = os.read(fd, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
    newer = [int(s) for s in re.findall(rb"diskrec seq=(\d+) ok", out) if int(s) > seen]
    if newer:
        got = newer[0]
ms = int((time.monotonic() - t0) * 1000)
os.write(fd, b"\x1d")
for _ in range(50):
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.1)
else:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    sys.exit("virsh console did not detach on ^]")
head = out.decode(errors="replace").replace("\r", "").splitlines()
print("virsh console: %s" % " | ".join(l for l in head[:2] if l))
if got is None:
    sys.exit("no diskrec line after seq %d in %.0f s; it printed: %r" % (seen, limit, out[-300:]))
print("virsh console: diskrec seq=%d ok (log had up to %d) %d ms after it opened; detached, exit %d"
      % (got, seen, ms, os.waitstatus_to_exitcode(status)))
EOF
cat "$T/console.out"
no_violation sby

host_exec sby virsh -q destroy "$DOM" >/dev/null || fail "virsh destroy on sby"
dom_is sby running && fail "web1 still runs on sby after virsh destroy"
echo "virsh destroy on sby: web1 is '$(host_domstate sby "$DOM")' there now"
echo "libvirt-network: $(($(now_ms) - t_start)) ms"
