#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A standby remusd (with its -incoming QEMU) faces a misbehaving primary:
# a wrong protocol version, a corrupted frame, an epoch whose end-to-end
# hash does not match, first-epoch data that is no migration stream, a
# frame cut off by a closed connection.  Each must
# end in a clear error and a consistent state: nothing committed, nothing
# written to the standby QEMU, no failover (nothing to take over from),
# and the standby still accepting the next primary.  The probe holds the
# test's key: this is what an authenticated primary that misbehaves can do
# (tests/integration/security has the unauthenticated ones).
source "$(dirname "$0")/../../lib/remus.sh"
need LINK_PROBE

port=$(free_port)
start_guest sby "remus.run=tick" --incoming "unix:$T/in.sock"
start_remusd standby standby --qmp "$T/sby.qmp" --incoming "$T/in.sock" --listen "127.0.0.1:$port" \
	--ctl "$T/sby.ctl"
sby_d=$REMUSD_PID
wait_for 30 "the standby's control socket" test -S "$T/sby.ctl"

consistent() {
	local st
	st=$(ctl "$T/sby.ctl" status)
	[ "$(json_get "$st" state)" = "$ST_WAITING" ] || fail "$1: standby state is not '$ST_WAITING': $st"
	[ -z "$(json_get "$st" committed_epoch)" ] || fail "$1: an epoch was committed: $st"
	[ "$(json_get "$st" qemu_bytes_written)" = 0 ] || fail "$1: bytes reached the standby QEMU: $st"
	[ "$(json_get "$st" qemu_bytes_queued)" = 0 ] || fail "$1: bytes queued for the standby QEMU: $st"
}

no_primary() { [ -z "$(json_get "$(ctl "$T/sby.ctl" status)" primary)" ]; }
for mode in version corrupt hash garbage truncated; do
	out=$("$LINK_PROBE" 127.0.0.1 "$port" "$mode" "$(test_psk)") || fail "$mode: $out"
	echo "$out" | tail -1
	# The standby notices a cut-off frame when the connection closes.
	wait_for 5 "the standby to end the $mode session" no_primary
	consistent "$mode"
done

# Each error was logged with what was wrong.
grep -q "version 1 expected, got 2" "$T/standby.log" || fail "no log line for the version"
grep -q "bad frame from primary" "$T/standby.log" || fail "no log line for the corrupt frame"
grep -qi "hash mismatch" "$T/standby.log" || fail "no log line for the hash mismatch"
grep -q "not a stream the standby QEMU can take" "$T/standby.log" ||
	fail "no log line for the data that is no migration stream"
kill -0 "$sby_d" || fail "the standby remusd died"
echo "bad input: 5 scenarios rejected, nothing committed, standby still waiting"
