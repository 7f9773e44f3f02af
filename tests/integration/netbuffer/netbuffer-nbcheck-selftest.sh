#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# netbuffer-nbcheck-selftest.sh NBCHECK: the output-commit checker judges synthetic client
# logs the way the failover tests rely on: a clean failover passes, and
# each way output can leak from an uncommitted epoch (a repeated UDP value,
# a value going back, a TCP value newer than the standby's first output)
# is a violation (exit 1), missing data cannot pass (exit 2), loss after
# the failover beyond --max-loss is reported (exit 4).  A checker that
# cannot fail makes the failover tests worthless, hence this test.
set -euo pipefail
nbcheck=${1:?usage: netbuffer-nbcheck-selftest.sh PATH_TO_NBCHECK}
T=$(mktemp -d /tmp/remus-nbcheck-XXXXXX)
trap 'rm -rf "$T"' EXIT
split=2000000
fails=0

# udp A B TS0: values A..B, one per ms from TS0 (us).
udp() { local v ts=$3; for ((v = $1; v <= $2; v++)); do echo "udp $v $ts"; ts=$((ts + 1000)); done; }

# expect NAME RC [nbcheck check options] < log
expect() {
	local name=$1 want=$2 out rc
	shift 2
	cat >"$T/log"
	set +e
	out=$("$nbcheck" check --log "$T/log" --split "$split" "$@")
	rc=$?
	set -e
	if [ "$rc" != "$want" ]; then
		echo "selftest: $name: exit $rc, expected $want: $out" >&2
		fails=$((fails + 1))
	else
		echo "selftest: $name: exit $rc as expected: $out"
	fi
}

# A clean failover: 1..50 before (TCP 20, 45), 61..80 after (TCP 70);
# the uncommitted epoch's 51..60 never reached the client.
good() {
	echo "start 900000"
	udp 1 20 1000000
	echo "tcp 20 1020500 1.0 2.0"
	udp 21 50 1021000
	echo "tcp 45 1060000 1.0 2.0"
	udp 61 70 2010000
	echo "tcp 70 2025000 1.0 2.0"
	udp 71 80 2030000
	echo "stop 2100000"
}
good | expect clean-failover 0 --protected-from 1010000
out=$(good >"$T/g" && "$nbcheck" check --log "$T/g" --split "$split")
for kv in '"max_before":50' '"first_after":61' '"boundary_skip":10' '"violations":0' \
	'"udp_before":50' '"udp_after":20' '"tcp_before":2' '"tcp_after":1'; do
	case "$out" in *"$kv"*) ;; *) echo "selftest: summary lacks $kv: $out" >&2; fails=$((fails + 1)) ;; esac
done

# Without output commit: the client saw 51..58 from the uncommitted
# epoch, the standby resumed at 50 and sent 51 again.
{ udp 1 58 1000000; udp 51 70 2010000; } | expect repeat-after-failover 1
{ udp 1 58 1000000; udp 45 70 2010000; } | expect went-back-after-failover 1
# UDP continuous, but a TCP reply before the failover showed 65: the
# primary's uncommitted state leaked through TCP.
{ udp 1 50 1000000; echo "tcp 65 1900000 1 2"; udp 61 70 2010000; echo "tcp 70 2050000 1 2"; } |
	expect tcp-leak-before 1
# A TCP reply after the failover older than a UDP value seen before.
{ udp 1 50 1000000; echo "tcp 20 1300000 1 2"; udp 61 70 2010000; echo "tcp 40 2050000 1 2"; } |
	expect tcp-older-after 1
# A repeat without any failover still counts.
{ udp 1 30 1000000; udp 30 30 1100000; udp 61 70 2010000; } | expect repeat-before 1
# A TCP reply that arrived before the split but was logged after post-split
# datagrams (the recorder ran late) is judged by its timestamp: still clean;
# TCP replies themselves are judged in poll order (one poll at a time).
{ udp 1 50 1000000; udp 61 65 2010000; echo "tcp 48 1999000 1 2"; echo "tcp 61 2030000 1 2"; echo "tcp 44 1500000 1 2"; } |
	expect tcp-went-back-in-poll-order 1
{ udp 1 50 1000000; echo "tcp 44 1500000 1 2"; udp 61 65 2010000; echo "tcp 48 1999000 1 2"; echo "tcp 61 2030000 1 2"; } |
	expect late-logged-tcp 0

# Cannot judge: nothing after the split, nothing before, no protected
# window, TCP only on one side.
udp 1 50 1000000 | expect nothing-after 2
udp 61 70 2010000 | expect nothing-before 2
udp 1 50 1000000 | { cat; udp 61 70 2010000; } | expect nothing-protected 2 --protected-from 1900000
{ udp 1 50 1000000; echo "tcp 30 1500000 1 2"; udp 61 70 2010000; } | expect tcp-only-before 2

# Loss after the failover: 61..70 then 72..80.
{ udp 1 50 1000000; udp 61 70 2010000; udp 72 80 2030000; } | expect loss-after 4
{ udp 1 50 1000000; udp 61 70 2010000; udp 72 80 2030000; } | expect loss-after-tolerated 0 --max-loss 1
# Loss before the failover is reported, not judged.
{ udp 1 20 1000000; udp 25 50 1100000; udp 61 70 2010000; } | expect loss-before 0

# Malformed input is a usage error, not a pass.
printf 'udp x\n' | expect malformed 3

[ "$fails" -eq 0 ] || { echo "selftest: $fails case(s) judged wrongly" >&2; exit 1; }
echo "selftest: all cases judged as expected"
