#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   netbuffer-failover.sh INTERVAL_MS EPOCHS MODE     MODE: qemu | plug | off
#
# Output commit end to end (ARCHITECTURE.md "Output commit").  The guest's
# counter (vm-images/guest/counter.c, every 10 ms) sends each value as a
# UDP datagram to a client in its own namespace and serves it on TCP; the
# client (nbcheck record) logs every value it receives with the kernel's
# receive time.  remusd protects the guest for EPOCHS epochs of
# INTERVAL_MS with the netbuffer MODE, then the primary hypervisor dies at
# a random point 20-80 % into an epoch: SIGKILL of the primary QEMU and
# remusd by PID, its link to the switch down.  The standby takes over,
# the client keeps receiving from the standby's guest for a few seconds,
# and nbcheck check judges the log around the kill time:
#
#   MODE qemu/plug  the checker must pass: no value the client saw before
#                   the failover is newer than the standby's first output
#                   (nothing left an uncommitted epoch), the sequence goes
#                   on after the failover without loss, output did flow
#                   while protected, and the primary's netbuffer counters
#                   were sane before the kill (queued and released > 0,
#                   nothing dropped)
#   MODE off        the same scenario without output commit: the checker
#                   must report a violation (the client saw values from
#                   the uncommitted epoch again) - proof that the check
#                   can fail; a pass or an unjudgeable run fails the test
#
# Prints the checker's JSON summary and the failover time.  Needs root
# (network namespaces); skipped otherwise.
here=$(dirname "$0")
source "$here/../../lib/remus.sh"
source "$here/../../lib/netns.sh"
source "$here/lib.sh"

interval=${1:?interval ms}
epochs=${2:?epochs}
mode=${3:?mode: qemu, plug or off}
case "$mode" in qemu | plug | off) ;; *) fail "unknown mode '$mode': qemu, plug or off" ;; esac

# The checker itself must be able to fail (cheap; no QEMU).
"$here/netbuffer-nbcheck-selftest.sh" "$NBCHECK" >"$T/selftest.log" 2>&1 ||
	fail "nbcheck's self-test failed: $(tail -n 3 "$T/selftest.log")"

topo_up
start_pair

ip netns exec "$NS-cli" "$NBCHECK" record --udp-port "$UDP_PORT" --tcp "$GUEST_IP:$TCP_PORT" --poll-ms 100 \
	--out "$T/client.log" </dev/null >"$T/client.err.log" 2>&1 &
client=$!
track "$client"
watch_daemon "$client" "the client (nbcheck record)" "$T/client.err.log"
udp_values() { local n; n=$(grep -c '^udp ' "$T/client.log" 2>/dev/null) || true; echo "${n:-0}"; }
receiving() { [ "$(udp_values)" -ge 20 ]; }
wait_for 60 "the client to receive the guest's datagrams (unprotected)" receiving

start_primary "$interval" "$mode"
committed() { [ "$(count_lines "$T/metrics.jsonl")" -ge "$1" ]; }
wait_for $((90 + epochs * interval / 250)) "the first committed epoch" committed 1
protected_from=$(now_us)
wait_for $((90 + epochs * interval / 250)) "$epochs committed epochs" committed "$epochs"
check_daemons

if [ "$mode" != off ]; then
	status=$(ctl "$T/pri.ctl" status) || fail "ctl status of the primary failed: $status"
	check_netbuffer_status "$status" || fail "the primary's netbuffer status is not sane"
fi

# Kill somewhere 20-80 % into the running part of the next epoch.
point=$(kill_point "$interval" 0.2 0.8) || fail "cannot place the kill inside an epoch: $point"
# The host dies at once: both processes, then its link.  split is taken
# right after the kill (no fork): a frame the dead primary released still
# carries an earlier kernel receive time at the client.
unwatch_daemon "$PRI_REMUSD"
kill -9 "$PRI_REMUSD" "$PRI_QEMU"
split=$(now_us)
ip -n "$NS-pri" link set up0 down
kill_now "$PRI_REMUSD" "$PRI_QEMU"
echo "killed the primary at $split (us), ${point#* } of the way into epoch ${point% *}; $(count_lines "$T/metrics.jsonl") epochs committed"

wait_takeover "$T/report.json"
report=$REPORT_JSON
fo_ms=$(json_get "$report" failover.failover_ms)
fo_epoch=$(json_get "$report" failover.epoch)

# The standby's guest talks to the client for a while.
after_from=$(udp_values)
sleep 5
[ "$(udp_values)" -gt "$after_from" ] ||
	fail "the client received nothing from the standby's guest after the failover"
unwatch_daemon "$client"
kill -TERM "$client"
wait "$client" || fail "the client (nbcheck record) failed: $(cat "$T/client.err.log")"
! has_serial sby GUEST-UP || fail "the standby guest booted again instead of resuming"

set +e
summary=$("$NBCHECK" check --log "$T/client.log" --split "$split" --protected-from "$protected_from")
rc=$?
set -e
echo "checker: $summary"
echo "failover: ${fo_ms} ms (primary lost -> standby guest running), from epoch $fo_epoch; interval $interval ms, netbuffer $mode"
if [ "$mode" = off ]; then
	[ "$rc" -eq 1 ] ||
		fail "without output commit the checker must report a violation, it exited $rc: $summary"
	echo "negative control: the violation was detected ($(json_get "$summary" first_violation))"
else
	[ "$rc" -eq 0 ] || fail "output commit violated or not shown (checker exit $rc): $summary"
fi
