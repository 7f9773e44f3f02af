#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A libvirt-started guest protected by the unchanged `remusd primary`
# through the QMP proxy (virt/qmp_proxy.h), then its host dies:
#
#   virt-proxy-failover.sh tick|dirty INTERVAL_MS EPOCHS
#
# libvirt_host opens an embedded libvirt root (qemu:///embed?root=$T/lv,
# qemu.conf as in LIBVIRT.md), starts the test guest as a transient
# domain (direct kernel boot, the same machine as start_guest's) and
# serves its QMP proxy on $T/pri.qmp.  The standby is a hand-started QEMU
# with `remusd standby`, as in failover/failover.sh.  After EPOCHS
# committed epochs the primary host dies (its QEMU, found by libvirt's pid
# file, the proxy process and remusd primary: SIGKILL) and the standby
# must run the guest on from the last checkpoint (check_ticks or
# check_dirty_continuity).  Also checked: every QMP command went through
# the proxy (its counters), and no migration event crossed it (the
# engine turns QEMU's `events` capability off; LIBVIRT.md's
# MIGRATION_PASS flood would show here as thousands of events).
# Prints the proxy's added latency per command.
source "$(dirname "$0")/../../lib/remus.sh"

guest=${1:?guest: tick or dirty}
interval=${2:?interval ms}
epochs=${3:?epochs}
case "$guest" in
tick) append="remus.run=tick" ;;
dirty) append="remus.run=dirty remus.args=mb=32,mbps=4,seed=7" ;;
*) fail "unknown guest '$guest'" ;;
esac

source "$(dirname "$0")/lib.sh"

port=$(free_port)
start_guest sby "$append" --incoming "unix:$T/in.sock"
start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
	--ctl "$T/sby.ctl" --report "$T/report.json" --heartbeat 100 --miss 5

virt_start_host pri "$append" --stats "$T/proxy.json"
host_pid=$HOST_PID
pri_qemu=$DOMAIN_QEMU_PID
echo "domain pri: QEMU pid $pri_qemu, started by libvirt"
wait_serial pri GUEST-UP 90 "the libvirt guest to boot"

start_remusd primary primary --qmp "$T/pri.qmp" --standby "127.0.0.1:$port" --interval "$interval" \
	--ctl "$T/pri.ctl" --metrics "$T/metrics.jsonl" --heartbeat 100 --miss 5
prid=$REMUSD_PID

committed() { [ "$(count_lines "$T/metrics.jsonl")" -ge "$epochs" ]; }
wait_for $((90 + epochs * interval / 250)) "$epochs committed epochs" committed

# The proxy's counters so far (SIGUSR1: it goes on serving).
kill -USR1 "$host_pid"
wait_for 10 "the proxy's counters" test -s "$T/proxy.json"
sleep_into_epoch "$interval"
# The host dies: its QEMU, remusd primary, what is left of the proxy.
kill -9 "$pri_qemu" 2>/dev/null || true
host_dies kill "$prid" "$host_pid"

wait_takeover "$T/report.json"
report=$REPORT_JSON
fo_ms=$(json_get "$report" failover.failover_ms)
epoch=$(json_get "$report" failover.epoch)
[ "$epoch" -ge $((epochs - 1)) ] || fail "standby resumed from epoch $epoch, expected >= $((epochs - 1))"

sleep 4
! has_serial sby GUEST-UP || fail "the standby guest booted again"
if [ "$guest" = tick ]; then
	check_ticks pri sby "$interval"
else
	check_dirty_continuity pri sby
fi

stats=$(cat "$T/proxy.json")
commands=$(json_get "$stats" commands)
events=$(json_get "$stats" events)
# Each epoch is at least stop, query-migrate, cont: the engine spoke
# only through the proxy.
[ "$commands" -ge $((3 * epochs)) ] || fail "the proxy forwarded only $commands commands for $epochs epochs"
# With `events` off QEMU sends STOP/RESUME per epoch and no
# MIGRATION_PASS: a few per epoch, not thousands.
[ "$events" -le $((10 * epochs + 50)) ] ||
	fail "$events QMP events crossed the proxy in $epochs epochs: the MIGRATION_PASS flood (events capability on?)"
python3 - "$T/metrics.jsonl" "$T/proxy.json" <<'EOF'
import json, statistics, sys
p = [json.loads(l)["pause_ms"] for l in open(sys.argv[1]) if l.strip()]
s = json.loads(open(sys.argv[2]).read())
print("proxy: %d commands, %d events, %d local answers; per command mean %.0f us, "
      "of which libvirt+QEMU %.0f us, added by the proxy %.0f us; max %.1f ms"
      % (s["commands"], s["events"], s["local"], s["mean_total_us"], s["mean_backend_us"],
         s["mean_added_us"], s["max_total_us"] / 1000))
print("pause ms p50 %.1f max %.1f over %d epochs" % (statistics.median(p), max(p), len(p)))
EOF
echo "$guest $interval ms through libvirt's QMP passthrough: failover ${fo_ms} ms from epoch $epoch"
