#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vm-cpumem-host: the guest's cpumem, run on the host (no QEMU).  Its
# counts are bench/engine's guest speed, so they must be there, grow, and
# stop with the run: port=0 secs=1 prints a start line and growing counts
# of run 1 and exits 0; port=P runs only while a client holds a connection
# (nothing counted before the first one, "cpumem stop run=1" at its EOF,
# run 2 continues the count of run 1), and a bad argument exits 2.
source "$(dirname "$0")/../../lib/remus.sh"
need CPUMEM

# growing RUN FILE: the counts of run RUN in FILE, at least 2, increasing.
growing() {
	python3 -c '
import re, sys
run, text = sys.argv[1], open(sys.argv[2]).read()
n = [int(x) for x in re.findall(r"^cpumem run=%s ops=(\d+)$" % run, text, re.M)]
if len(n) < 2 or any(b <= a for a, b in zip(n, n[1:])) or n[0] <= 0:
    sys.exit("run %s: counts %s are not >= 2 increasing positive numbers" % (run, n))
print(n[-1])' "$1" "$2"
}
growing_run1() { growing 1 /dev/stdin; }
self_test growing_run1 "$(printf 'cpumem run=1 ops=4096\ncpumem run=1 ops=8192\n')" \
	"$(printf 'cpumem run=1 ops=4096\ncpumem run=1 ops=4096\n')"

"$CPUMEM" mb=4 ms=100 secs=1 >"$T/once.out" 2>&1 || fail "cpumem secs=1 failed: $(cat "$T/once.out")"
grep -q '^cpumem start mb=4 ms=100 port=0 seed=1$' "$T/once.out" || fail "no start line: $(head -n 2 "$T/once.out")"
growing 1 "$T/once.out" >/dev/null || fail "port=0: $(cat "$T/once.out")"

rc=0
"$CPUMEM" mb=4 speed=1 >"$T/bad.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "an unknown key exited $rc, not 2"

port=$(free_port)
"$CPUMEM" mb=4 ms=50 port="$port" >"$T/port.out" 2>&1 &
pid=$!
track "$pid"
wait_for 10 "cpumem's start line" grep -q '^cpumem start' "$T/port.out"
sleep 0.5
! grep -q 'ops=' "$T/port.out" || fail "port mode counted before any client: $(cat "$T/port.out")"
python3 - "$port" <<'PY'
import socket, sys, time
for _ in range(2):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    time.sleep(0.6)
    s.close()
    time.sleep(0.4)
PY
wait_for 10 "the second run to stop" grep -q '^cpumem stop run=2 ' "$T/port.out"
last1=$(growing 1 "$T/port.out") || fail "run 1: $(cat "$T/port.out")"
first2=$(grep -o '^cpumem run=2 ops=[0-9]*' "$T/port.out" | head -n 1 | sed 's/.*=//')
[ "$first2" -gt "$last1" ] || fail "run 2 starts at $first2, not after run 1's $last1"
growing 2 "$T/port.out" >/dev/null || fail "run 2: $(cat "$T/port.out")"
kill "$pid"
echo "$TEST_NAME: ok ($(grep -c 'ops=' "$T/port.out") count lines in port mode)"
