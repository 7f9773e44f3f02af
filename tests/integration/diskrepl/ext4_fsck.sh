#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   ext4_fsck.sh INTERVAL_MS ROUNDS
#
# ext4 survives failovers: ROUNDS failovers in a row on one file system.
# remusd cannot re-protect a survivor yet (the standby that took over does
# not become a primary with a new standby), so each round is a fresh
# primary/standby pair whose primary image is the previous round's
# survivor:
#
#   round 1 primary image: mkfs.ext4, 64 MiB; round r > 1: the survivor of
#   round r - 1.  Standby image: sparse, filled by remusd's initial sync.
#   fswork (vm-images/guest/fswork.c) creates, appends, renames and
#   replaces files with fsync and every 20 ops drops the page cache and
#   checks names, sizes and bytes read back from the disk against its
#   memory.  The primary QEMU and remusd are SIGKILLed 20-80 % into an
#   epoch, two epochs after fswork started; the standby guest must finish
#   its 25 s run with no FSWORK-VIOLATION (its disk matches its memory after
#   the failover), unmount and power off; then the standby remusd is
#   stopped and `fsck.ext4 -n -f` must find the survivor image clean.
#
# Exits 77 (skipped) while `remusd primary --help` has no --disk.
source "$(dirname "$0")/lib.sh"

interval=${1:?interval ms}
rounds=${2:?rounds}
secs=25
if ! remusd_has_disk; then
	echo "SKIP: $REMUSD primary --help has no --disk yet (disk replication not wired into remusd)"
	exit 77
fi

fs_lines() { serial "$1" | grep -c '^fswork op=.* ok$' || true; }
fs_lines_at_least() { [ "$(fs_lines "$1")" -ge "$2" ]; }
# The kill closes the replication link, which the standby notices at once;
# heartbeats only guard against a stall, and on a loaded two-core machine
# 5 x 100 ms of silence happens without any failure (false failovers seen
# in 2 of 4 runs), so allow 3 s: this test is not about detection time.
hb=(--heartbeat 200 --miss 15)
survivor=
summary=()

for r in $(seq "$rounds"); do
	P=$T/r$r-pri.raw S=$T/r$r-sby.raw
	if [ -z "$survivor" ]; then
		truncate -s 64M "$P"
		mkfs.ext4 -q -F "$P"
	else
		mv "$survivor" "$P"
	fi
	truncate -s 64M "$S"
	port=$(free_port)
	app="remus.run=fswork remus.modules=ext4 remus.args=dev=/dev/vda,secs=$secs,verify=20,seed=$r"

	"$REMUSD" standby --qmp "$T/r${r}sby.qmp" --incoming "$T/r$r-in.sock" \
		--listen "127.0.0.1:$port" --ctl "$T/r$r-sby.ctl" --report "$T/r$r-report.json" \
		"${hb[@]}" --disk "d0,image=$S,socket=$T/r$r-sby.nbd" >"$T/r$r-standby.log" 2>&1 &
	sby_d=$!
	track "$sby_d"
	watch_daemon "$sby_d" "round $r standby remusd" "$T/r$r-standby.log"
	wait_for 30 "round $r: the standby's NBD socket" test -S "$T/r$r-sby.nbd"
	# shellcheck disable=SC2046 # the drive options are words on purpose
	start_qemu "r${r}sby" "$app" $(drive_nbd d0 "$T/r$r-sby.nbd") -incoming "unix:$T/r$r-in.sock"
	sby_qemu=$QEMU_PID
	# shellcheck disable=SC2046
	"$REMUSD" primary --qmp "$T/r${r}pri.qmp" --standby "127.0.0.1:$port" \
		--interval "$interval" --metrics "$T/r$r-metrics.jsonl" "${hb[@]}" $(primary_nb_opts) \
		--disk "d0,image=$P,socket=$T/r$r-pri.nbd" >"$T/r$r-primary.log" 2>&1 &
	prid=$!
	track "$prid"
	watch_daemon "$prid" "round $r primary remusd" "$T/r$r-primary.log"
	wait_for 30 "round $r: the primary's NBD socket" test -S "$T/r$r-pri.nbd"
	# shellcheck disable=SC2046
	start_qemu "r${r}pri" "$app" $(drive_nbd d0 "$T/r$r-pri.nbd")
	pri_qemu=$QEMU_PID
	wait_for 120 "round $r: the primary guest to boot" has_serial "r${r}pri" GUEST-UP
	# A standby that takes over while the primary still runs (a false
	# failover) would make every check below fail for the wrong reason.
	no_early_failover() {
		[ ! -s "$T/r$r-report.json" ] ||
			fail "round $r: the standby took over before the primary was killed: $(json_get "$(cat "$T/r$r-report.json")" failover.reason)"
	}
	running() { no_early_failover; fs_lines_at_least "r${r}pri" 1; }
	wait_for 60 "round $r: fswork to run on the primary" running

	metrics=$T/r$r-metrics.jsonl
	n0=$(count_lines "$metrics")
	committed() { no_early_failover; [ "$(count_lines "$metrics")" -ge $((n0 + 2)) ]; }
	wait_for $((60 + interval / 100)) "round $r: 2 committed epochs" committed
	n1=$(count_lines "$metrics")
	until [ "$(count_lines "$metrics")" -gt "$n1" ]; do check_daemons; sleep 0.02; done
	sleep "$(python3 -c "import random; print(random.uniform(0.2, 0.8) * $interval / 1000)")"
	no_early_failover
	unwatch_daemon "$prid"
	kill -9 "$prid" "$pri_qemu"
	wait "$prid" "$pri_qemu" 2>/dev/null || true
	serial "r${r}pri" | grep -q '^fswork done' &&
		fail "round $r: fswork finished on the primary before the kill; raise secs ($secs)"
	serial "r${r}pri" | grep -q VIOLATION &&
		fail "round $r: the primary saw a violation: $(serial "r${r}pri" | grep VIOLATION)"
	pri_op=$(serial "r${r}pri" | sed -n 's/^fswork op=\([0-9]*\) .*/\1/p' | tail -n1)

	wait_for 30 "round $r: the standby's failover report" test -s "$T/r$r-report.json"
	report=$(cat "$T/r$r-report.json")
	[ "$(json_get "$report" state)" = active ] || fail "round $r: the standby did not take over: $report"
	gone() { ! kill -0 "$sby_qemu" 2>/dev/null; }
	# The standby guest finishes fswork, unmounts and powers off; its
	# remusd may leave with its QEMU, so it is watched only until then.
	unwatch_daemon "$sby_d"
	finished() {
		has_serial "r${r}sby" 'GUEST-EXIT status=' && return 0
		kill -0 "$sby_d" 2>/dev/null ||
			fail "round $r: the standby remusd exited under the running guest: $(tail -n 3 "$T/r$r-standby.log")"
		return 1
	}
	wait_for $((secs + 90)) "round $r: fswork to finish on the standby" finished
	serial "r${r}sby" | grep -q VIOLATION &&
		fail "round $r: after the failover the disk does not match memory: $(serial "r${r}sby" | grep VIOLATION)"
	serial "r${r}sby" | grep -q GUEST-UP && fail "round $r: the standby guest booted again"
	serial "r${r}sby" | grep -q 'GUEST-EXIT status=0' ||
		fail "round $r: fswork failed on the standby: $(serial "r${r}sby" | grep -E '^fswork|GUEST-EXIT' | tail -n 3)"
	done_line=$(serial "r${r}sby" | grep '^fswork done')
	wait_for 30 "round $r: the standby QEMU to power off" gone
	kill -TERM "$sby_d"
	wait "$sby_d" 2>/dev/null || true

	fsck=$(fsck.ext4 -n -f "$S" 2>&1) ||
		fail "round $r: fsck.ext4 -n -f of the survivor image is not clean: $fsck"
	summary+=("round $r: killed at op $pri_op, failover $(json_get "$report" failover.failover_ms) ms from epoch $(json_get "$report" failover.epoch), standby: $done_line, fsck clean ($(echo "$fsck" | tail -n1))")
	echo "${summary[-1]}"
	survivor=$S
done
echo "ext4: $rounds failovers in a row, every survivor image clean"
