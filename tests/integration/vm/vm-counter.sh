#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vm-counter: the guest's network path works end to end: virtio_net loads,
# /init configures eth0 from remus.ip=, and the counter program serves its
# TCP port.  QEMU's user-mode network (restrict=on: no way out of the test)
# forwards a free host port on 127.0.0.1 to the guest's port 7777; two reads
# a second apart must each get one line "counter N" and the second N must be
# larger (the counter runs every 100 ms).
source "$(dirname "$0")/../../lib/remus.sh"

# check_line < reply: exactly "counter N".
check_line() {
	grep -Ex 'counter [0-9]+' >/dev/null
}
self_test check_line 'counter 17\n' 'counter\n'
self_test check_line 'counter 0\n' 'counter 17 x\n'

# A host port nobody listens on (QEMU fails clearly if it races away).
port=
for _ in $(seq 20); do
	p=$((20000 + RANDOM % 40000))
	if ! (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || fail "no free TCP port found on 127.0.0.1"

# read_counter: one line from the forwarded port; retried while the guest's
# server is not up yet (slirp accepts, then closes without data).
read_counter() {
	local line _
	for _ in $(seq 30); do
		line=
		if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
			IFS= read -r -t 10 line <&3 || true
			exec 3<&-
		fi
		if [ -n "$line" ]; then
			printf '%s\n' "$line"
			return 0
		fi
		sleep 1
	done 2>/dev/null
	return 1
}

start_guest g "quiet remus.ip=10.0.2.15/24 remus.gw=10.0.2.2 remus.run=counter remus.args=ms=100,tcp=7777" \
	--user-net "tcp:127.0.0.1:$port-:7777"
echo "$TEST_NAME: QEMU pid $QEMU_PID, accel $ACCEL, host port $port, serial $T/g.serial"
wait_serial g '^GUEST-UP$' 120 "the GUEST-UP line"
wait_serial g '^counter start ' 30 "the counter to start"
first=$(read_counter) || fail "no reply from the counter on 127.0.0.1:$port"
printf '%s\n' "$first" | check_line || fail "malformed reply '$first'"
sleep 1
second=$(read_counter) || fail "no second reply from the counter"
printf '%s\n' "$second" | check_line || fail "malformed reply '$second'"
[ "${second#counter }" -gt "${first#counter }" ] ||
	fail "the counter did not advance in a second: '$first' then '$second'"
wait_serial g '^counter value=[0-9]+ udp_sent=0 udp_errors=0 tcp_served=[2-9]' 10 \
	"the guest's status line to show the TCP connections served"
echo "$TEST_NAME: PASS: '$first' then '$second' over virtio-net"
