#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# remusctl against a real `remusd serve` (no libvirt, no QEMU: what needs
# no domain): remusd serve starts on the key remusctl keygen made; list
# and status of nothing, in text and --json; unknown
# domains refused with no-domain and exit 1 for every command; then with
# remusd gone, exit 3.  The fake remusd of test_remusctl_run checks the
# details; this checks that the two programs, built together, agree.
#
#   remusctl-serve.sh REMUSD REMUSCTL
source "$(dirname "$0")/../../lib/remus.sh"
REMUSD=${1:?usage: remusctl-serve.sh REMUSD REMUSCTL}
REMUSCTL=${2:?usage: remusctl-serve.sh REMUSD REMUSCTL}
S=$T/remusd.sock
mkdir -p "$T/run" "$T/state"
chmod 700 "$T/run" "$T/state"   # remusd serve refuses directories others may write to
# The peer port is TLS (issue 12): the test's pre-shared key, made as a
# user makes it (remusctl keygen, with no remusd running yet), and its
# hint line is what goes into remusd.conf.
"$REMUSCTL" keygen "$T/peer.psk" >"$T/keygen.out" || fail "remusctl keygen failed"
grep -qx "  tls_psk = $T/peer.psk" "$T/keygen.out" ||
	fail "remusctl keygen does not say what to put in remusd.conf: $(cat "$T/keygen.out")"
sed -n 's/^  \(tls_psk = .*\)$/\1/p' "$T/keygen.out" >"$T/remusd.conf"
# A second keygen must not touch the key remusd will read.
cp "$T/peer.psk" "$T/peer.psk.orig"
rc=0
"$REMUSCTL" keygen "$T/peer.psk" >/dev/null 2>"$T/keygen.err" || rc=$?
[ "$rc" = 1 ] || fail "remusctl keygen over an existing key exited $rc, not 1"
grep -q "exists: refusing to overwrite" "$T/keygen.err" ||
	fail "remusctl keygen over an existing key said: $(cat "$T/keygen.err")"
cmp -s "$T/peer.psk" "$T/peer.psk.orig" || fail "remusctl keygen changed an existing key"

# A free port (the peer port must be given; nothing connects to it here).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$REMUSD" serve --config "$T/remusd.conf" --ctl "$S" --run-dir "$T/run" \
	--state-dir "$T/state" --listen "127.0.0.1:$port" --connect test:///default \
	>"$T/serve.log" 2>&1 &
pid=$!
track "$pid"
WATCHED+=("$pid:remusd serve:$T/serve.log")
wait_for 10 "remusd serve's control socket" test -S "$S"

# expect RC NEEDLE CMD...: CMD exits RC and NEEDLE is in its stdout+stderr.
expect() {
	local want=$1 needle=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>&1 || rc=$?
	[ "$rc" = "$want" ] || fail "'${*:2}' exited $rc, not $want: $(cat "$T/out")"
	grep -qF -- "$needle" "$T/out" || fail "'${*:2}' did not print '$needle': $(cat "$T/out")"
}

R=("$REMUSCTL" --socket "$S")
expect 0 "no protected domains" "${R[@]}" list
expect 0 "no protected domains" "${R[@]}" status
expect 0 '"domains":[]' "${R[@]}" list --json
expect 0 '"ok":true' "${R[@]}" status --json
for cmd in "status web9" "set-interval web9 100" "failover web9" "unprotect web9" \
	   "unprotect web9 --release-disks"; do
	# shellcheck disable=SC2086 # the command's words
	expect 1 "(no-domain)" "${R[@]}" $cmd
done
expect 1 '"code":"no-domain"' "${R[@]}" status web9 --json
# remusd serve here has no libvirt: protect is refused, with a reason.
expect 1 "remusctl: " "${R[@]}" protect web9 --standby 127.0.0.1:1 --no-wait
expect 2 "usage:" "${R[@]}" protect web9
REMUS_CTL=$S expect 0 "no protected domains" "$REMUSCTL" list

kill -TERM "$pid"
WATCHED=()
wait_for 10 "remusd serve to stop" gone "$pid"
expect 3 "cannot talk to remusd at $S" "${R[@]}" list
echo "remusctl and remusd serve agree: list, status, refusals, exit codes 0 1 2 3"
