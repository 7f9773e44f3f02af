# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# What the libvirt acceptance tests share (sourced after remus.sh): the lab
# of issue 10's user's view, built with tests/lib/hosts.sh.
#
#     pri 10.9.0.11   libvirtd + remusd serve; domain web1 runs here
#     sby 10.9.0.12   libvirtd + remusd serve; the standby host
#     cli 10.9.0.2    the client (no daemon)
#
# web1 is the test guest (direct kernel boot) with a 16 MiB raw disk on
# pri (/var/lib/libvirt/images/web1.raw), a virtio NIC on pri's br0 with
# address 10.9.0.100, running diskrec on its disk: a ring of checksummed
# records, each write preceded by reading back the previous record, which
# prints "diskrec seq=N ok" every $EVERY records and DISKREC-VIOLATION if
# the disk and its memory disagree (tests/integration/diskrepl/lib.sh says
# more).  Its console is read on whichever host runs it (host_serial).

source "$REMUS_SOURCE_DIR/tests/lib/hosts.sh"
need REMUSD REMUSCTL DISKREC

DOM=web1
PRI_IP=10.9.0.11 SBY_IP=10.9.0.12 CLI_IP=10.9.0.2 GUEST_IP=10.9.0.100
# diskrec: a record every MS ms, a line every EVERY records, SLOTS slots.
MS=20 EVERY=10 SLOTS=256
INTERVAL=${INTERVAL:-500}

# lab_up: the three hosts, libvirtd and remusd serve on pri and sby.
lab_up() {
	host_up pri "$PRI_IP"
	host_up sby "$SBY_IP"
	host_up cli "$CLI_IP"
	host_libvirtd pri
	host_libvirtd sby
	host_remusd pri
	host_remusd sby
}

# shellcheck disable=SC2120 # callers may add host_define_guest options
# web1_up [OPTION...]: defines and starts web1 on pri, returns once diskrec runs.
web1_up() {
	host_define_guest pri "$DOM" \
		"remus.ip=$GUEST_IP/24 remus.run=diskrec remus.args=dev=/dev/vda,ms=$MS,slots=$SLOTS,scan=50,every=$EVERY" \
		--disk-size 16 "$@"
	host_start_guest pri "$DOM"
	host_wait_serial pri "$DOM" GUEST-UP 180 "$DOM to boot on pri"
	wait_for 60 "diskrec to run in $DOM" dom_reached pri "$EVERY"
}

# cli_reaches_guest: the client gets an answer from web1's address (a
# connect to port 22: accepted or refused, the guest's kernel answered),
# retried for about 10 s.
cli_reaches_guest() {
	host_exec cli "$REMUS_PYTHON" -c 'import socket, sys
for i in range(50):
    s = socket.socket()
    s.settimeout(0.2)
    if s.connect_ex((sys.argv[1], 22)) in (0, 111):   # any answer: connected or refused
        sys.exit(0)
    s.close()
sys.exit("no answer from %s" % sys.argv[1])' "$GUEST_IP"
}

# dom_seqs HOST: the seqs of web1's "diskrec seq=N ok" lines on HOST.
dom_seqs() { host_serial "$1" "$DOM" | sed -n 's/^diskrec seq=\([0-9]*\) ok$/\1/p'; }
dom_last() { dom_seqs "$1" | tail -n 1; }
dom_reached() {
	local last
	last=$(dom_last "$1")
	[ -n "$last" ] && [ "$last" -ge "$2" ]
}

# no_violation HOST: web1's disk checker found nothing wrong on HOST.
no_violation() {
	! host_has_serial "$1" "$DOM" VIOLATION ||
		fail "$DOM on $1: the disk does not match the guest's memory: $(host_serial "$1" "$DOM" | grep VIOLATION | head -n 3)"
}

# status_json HOST: `remusctl status web1 --json` on HOST ({} if refused).
status_json() { remusctl_on "$1" status "$DOM" --json 2>/dev/null || echo '{}'; }
# status_of HOST KEY: one key of it.
status_of() { json_get "$(status_json "$1")" "$2"; }
# is_protected HOST ROLE: web1 is protected on HOST in ROLE: a primary
# whose standby holds a committed checkpoint (status "protected": true; its
# state reads protected, also during a checkpoint), or a standby receiving
# checkpoints (remusctl(8)).
is_protected() {
	local s
	s=$(status_json "$1")
	[ "$(json_get "$s" role)" = "$2" ] || return 1
	case "$2" in
	primary) [ "$(json_get "$s" protected)" = true ] ;;
	standby) [ "$(json_get "$s" state)" = receiving ] ;;
	esac
}
# status_is HOST KEY VALUE: one key of HOST's status is VALUE (for wait_for).
status_is() { [ "$(status_of "$1" "$2")" = "$3" ]; }
# dom_is HOST STATE: virsh domstate of web1 on HOST is STATE ("" unknown).
dom_is() { [ "$(host_domstate "$1" "$DOM")" = "$2" ]; }

# shellcheck disable=SC2120 # callers may add remusctl protect options
# protect_web1 [OPTION...]: `remusctl protect web1 --standby sby` on pri
# (its output in $T/protect.out), then both hosts agree it is protected.
protect_web1() {
	local t0 rc=0
	t0=$(now_ms)
	remusctl_on pri protect "$DOM" --standby sby --interval "$INTERVAL" "$@" >"$T/protect.out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || fail "remusctl protect exited $rc: $(tail -n 5 "$T/protect.out")"
	# shellcheck disable=SC2034 # for the caller
	PROTECT_MS=$(($(now_ms) - t0))
	is_protected pri primary || fail "after protect, pri's status is $(status_json pri)"
	wait_for 30 "sby to report $DOM protected as standby" is_protected sby standby
}

# set_interval_web1 MS: `remusctl set-interval web1 MS` on pri, recorded on
# sby too (no "did not record" in its output), in pri's status; INTERVAL
# follows.
set_interval_web1() {
	remusctl_on pri set-interval "$DOM" "$1" >"$T/set-interval.out" 2>&1 ||
		fail "remusctl set-interval $1: $(cat "$T/set-interval.out")"
	! grep -q "did not record" "$T/set-interval.out" ||
		fail "sby did not record the interval: $(cat "$T/set-interval.out")"
	wait_for 10 "pri's status to show interval $1" status_is pri interval_ms "$1"
	INTERVAL=$1
}

# epoch_of HOST: the epoch in HOST's status of web1.
epoch_of() { status_of "$1" epoch; }
# epochs_pass HOST N: waits until N more epochs are committed on HOST.
epochs_pass() {
	local e0
	e0=$(epoch_of "$1")
	[ -n "$e0" ] || fail "$1's status of $DOM has no epoch: $(status_json "$1")"
	wait_for $((30 + $2 * INTERVAL / 200)) "$2 more epochs on $1" _epoch_past "$1" $((e0 + $2))
}
_epoch_past() {
	local e
	e=$(epoch_of "$1")
	[ -n "$e" ] && [ "$e" -ge "$2" ]
}

# kill_pri_fail_over: host pri dies inside an epoch (sleep_into_epoch), web1
# runs in sby's libvirt within 60 s, and its records go on from pri's last
# line (check_continuity).  Prints how long the failover took from the kill.
kill_pri_fail_over() {
	local t0 pri_last
	sleep_into_epoch "$INTERVAL"
	host_kill pri
	t0=$(now_ms)
	pri_last=$(dom_last pri)
	wait_for 60 "$DOM to run on sby" dom_is sby running
	echo "$DOM running in sby's libvirt $(($(now_ms) - t0)) ms after pri died"
	check_continuity pri sby "$pri_last"
}

# sby_took_over: after kill_pri_fail_over, web1 is a normal libvirt domain
# on sby (suspend and resume work, its disk checker goes on after them),
# the client reaches its address at sby over the lab's bridge, and sby's
# remusd reports web1 as its primary with the interval last set on pri
# ($INTERVAL: set_interval_web1 after protect).
sby_took_over() {
	local last s
	host_exec sby virsh -q suspend "$DOM" >/dev/null || fail "virsh suspend on sby"
	dom_is sby paused || fail "web1 did not pause on sby"
	host_exec sby virsh -q resume "$DOM" >/dev/null || fail "virsh resume on sby"
	dom_is sby running || fail "web1 did not resume on sby"
	last=$(dom_last sby)
	wait_for 10 "diskrec to go on after resume" dom_reached sby $((last + EVERY))
	no_violation sby

	cli_reaches_guest || fail "cli cannot reach web1 at sby"

	s=$(status_json sby)
	[ "$(json_get "$s" role)" = primary ] || fail "sby's status after the failover: $s"
	[ "$(json_get "$s" interval_ms)" = "$INTERVAL" ] ||
		fail "sby's interval after the failover is $(json_get "$s" interval_ms) ms, not the $INTERVAL ms set on pri: $s"
	echo "sby's status after the failover: $s"
}

# check_continuity FROM TO [LAST]: web1's guest resumed on host TO where it
# was on host FROM (whose last line was seq LAST, default: read from FROM's
# console now): its disk checker runs on for 6 s with no violation and no
# second boot, its lines are consecutive, its first line no later than
# FROM's last + one step and no older than two epochs of records before
# it, and it passed FROM's last line.  Prints the figures.
check_continuity() {
	local from=$1 to=$2 last=${3:-} seqs first tlast per_epoch
	[ -n "$last" ] || last=$(dom_last "$from")
	[ -n "$last" ] || fail "$DOM printed no line on $from"
	sleep 6
	no_violation "$to"
	! host_has_serial "$to" "$DOM" GUEST-UP || fail "$DOM booted again on $to"
	! host_has_serial "$to" "$DOM" GUEST-EXIT || fail "diskrec stopped on $to: $(host_serial "$to" "$DOM" | tail -n 3)"
	seqs=$(dom_seqs "$to")
	[ -n "$seqs" ] || fail "$DOM printed nothing on $to in 6 s"
	first=$(echo "$seqs" | head -n 1)
	tlast=$(echo "$seqs" | tail -n 1)
	echo "$seqs" | awk -v s="$EVERY" 'NR > 1 && $1 != prev + s { bad = 1 } { prev = $1 } END { exit bad }' ||
		fail "$DOM on $to: lines not consecutive: $(echo "$seqs" | tr '\n' ' ')"
	[ "$first" -le $((last + EVERY)) ] || fail "$DOM resumed on $to at seq $first, after $from's last line (seq $last): a gap"
	per_epoch=$((INTERVAL / MS))
	[ "$first" -ge $((last - 2 * per_epoch)) ] ||
		fail "$DOM resumed on $to at seq $first: older than the last checkpoint ($from printed $last)"
	[ "$tlast" -gt "$last" ] || fail "$DOM on $to did not pass $from's last seq $last"
	echo "record continuity $from -> $to: $from printed up to seq $last, $to from $first to $tlast, no violation, no reboot"
}
