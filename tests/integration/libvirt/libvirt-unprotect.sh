#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-unprotect: `remusctl unprotect web1` on pri leaves a running,
# unprotected, working domain that needs no remus process: web1's disk
# goes back from remusd's NBD export to its own file while the guest
# writes (libvirt block copy, pivot), its disk checker reads and writes
# on with no violation, `virsh domblklist` and the persistent definition
# show the file again, pri's child and sby's child are gone, sby has no
# standby domain, neither host lists web1, its state file is gone, and
# status of web1 is refused as not protected.
#
# Both remusd serve copy disks at copy_rate 1024 KiB/s, so the 16 MiB disk
# takes about 16 s each way: longer than the fixed 10 s a child used to
# wait for its QMP socket, which failed such protections.  remusctl shows
# the progress of both copies.
#
#   libvirt-unprotect.sh [release]
#     release: `unprotect --release-disks` (the same as without it; kept
#     for scripts written when it was an option).
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"

mode=${1:-default}
case "$mode" in
default) opts=() ;;
release) opts=(--release-disks) ;;
*) fail "unknown mode '$mode': default or release" ;;
esac
RATE_KIB=1024
IMAGE=/var/lib/libvirt/images/$DOM.raw

host_up pri "$PRI_IP"
host_up sby "$SBY_IP"
host_libvirtd pri
host_libvirtd sby
host_remusd pri --copy-rate "$RATE_KIB"
host_remusd sby --copy-rate "$RATE_KIB"
web1_up

protect_web1
echo "protect with a disk copy at $RATE_KIB KiB/s took $PROTECT_MS ms"
[ "$PROTECT_MS" -gt 10000 ] || fail "protect took $PROTECT_MS ms: the disk copy was not slowed down (copy_rate)"
grep -q "MiB" "$T/protect.out" || fail "remusctl protect showed no disk copy progress: $(cat "$T/protect.out")"
sed -n '1,6p' "$T/protect.out"
epochs_pass pri 2
pri_child=$(status_of pri child_pid)
sby_child=$(status_of sby child_pid)
[ -n "$pri_child" ] && [ -n "$sby_child" ] || fail "no child pids in status: pri '$pri_child', sby '$sby_child'"
[ "$(host_exec pri virsh -q domblklist "$DOM" --details | awk '$3 == "vda" {print $1}')" = network ] ||
	fail "web1's disk is not on remusd's export while protected"

before=$(dom_last pri)
t0=$(now_ms)
rc=0
remusctl_on pri unprotect "$DOM" "${opts[@]+"${opts[@]}"}" >"$T/unprotect.out" 2>&1 || rc=$?
took=$(($(now_ms) - t0))
[ "$rc" = 0 ] || fail "remusctl unprotect exited $rc: $(cat "$T/unprotect.out")"
echo "remusctl unprotect took $took ms; it printed:"
cat "$T/unprotect.out"
grep -q "releasing disks" "$T/unprotect.out" || fail "remusctl unprotect showed no progress of the copy"
during=$(dom_last pri)
[ "$during" -gt "$before" ] || fail "web1's disk checker stood still during unprotect (seq $before -> $during)"

# Both copies outlasted the 10 s a child once waited for its QMP socket.
pivots=$(sed -n 's/.*disk vda pivoted onto its copy after \([0-9]*\) ms.*/\1/p' "$T/pri-remusd.log" | tr '\n' ' ')
echo "block copies of vda (protect, unprotect): $pivots ms"
# shellcheck disable=SC2086 # two numbers
set -- $pivots
[ "$#" = 2 ] && [ "$1" -gt 10000 ] && [ "$2" -gt 10000 ] ||
	fail "expected two block copies of over 10 s in pri's log, got: $pivots"

# The domain: running, on its own file, live and persistent.
dom_is pri running || fail "web1 on pri is '$(host_domstate pri "$DOM")' after unprotect"
disk=$(host_exec pri virsh -q domblklist "$DOM" --details | awk '$3 == "vda" {print $1 " " $4}')
echo "web1's disk now: $disk"
[ "$disk" = "file $IMAGE" ] || fail "after unprotect web1's disk is '$disk', not the file $IMAGE"
# (the XML read whole first: grep -q would end virsh with SIGPIPE, a
# failed pipeline under pipefail)
inactive=$(host_exec pri virsh dumpxml --inactive "$DOM")
grep -q "<source file='$IMAGE'/>" <<<"$inactive" ||
	fail "web1's persistent definition does not use $IMAGE: $(grep -A3 '<disk' <<<"$inactive")"

# No remus process, record or standby left for web1.
for p in "$pri_child" "$sby_child"; do
	! kill -0 "$p" 2>/dev/null || fail "the child $p of web1 still runs after unprotect: $(tr '\0' ' ' </proc/"$p"/cmdline)"
done
wait_for 30 "sby's standby domain to go" dom_is sby ""
for h in pri sby; do
	l=$(remusctl_on "$h" list)
	! grep -q "$DOM" <<<"$l" || fail "$h still lists $DOM: $l"
	[ ! -e "$(host_path "$h" "/var/lib/remus/domains/$DOM.json")" ] || fail "$h still has web1's state file"
done
rc=0
remusctl_on pri status "$DOM" >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "status of an unprotected domain exited $rc, not 1"

# The guest works on: its records are written to and read back from the
# file (diskrec reads each previous record before the next write and
# rescans the ring), with no violation.
last=$(dom_last pri)
wait_for 30 "web1's disk checker to go on" dom_reached pri $((last + 5 * EVERY))
sleep 2
no_violation pri
! host_has_serial pri "$DOM" GUEST-EXIT || fail "diskrec stopped in web1: $(host_serial pri "$DOM" | tail -n 3)"
echo "web1 runs on, unprotected, on $IMAGE: diskrec from seq $before to $(dom_last pri), no violation"
