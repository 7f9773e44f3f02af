#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A standby remusd (with its -incoming QEMU) faces peers it must not
# take as its primary: a plaintext one, one with a certificate of another
# CA, one with an expired certificate, one of our CA for another host
# (not the domain's owner, --tls-peer-identity), one with the wrong
# pre-shared key, one that connects and says nothing, one that dribbles a handshake byte
# by byte.  Each is refused or dropped (the last two within the
# handshake deadline) with a log line naming it and what was wrong, and
# nothing changes: the standby still waits, nothing committed, no byte
# to its QEMU, no takeover.  A peer with the right credentials is then
# taken (the test could not fail otherwise).  Two standbys: one with
# libvirt-layout certificates (tests/support/tls_pki.c), one with the
# test's pre-shared key (the harness default).
source "$(dirname "$0")/../../lib/remus.sh"
need TLS_PROBE

HS_MS=2000
pki=$(test_pki)
px=$(free_port)
pp=$(free_port)
start_guest sbyx "remus.run=tick" --incoming "unix:$T/inx.sock"
start_guest sbyp "remus.run=tick" --incoming "unix:$T/inp.sock"
start_remusd x509 standby --qmp "$T/sbyx.qmp" --incoming "$T/inx.sock" --listen "127.0.0.1:$px" \
	--ctl "$T/x509.ctl" --tls-x509-dir "$pki/good" --tls-handshake-timeout "$HS_MS" \
	--tls-peer-identity "CN=localhost"
start_remusd psk standby --qmp "$T/sbyp.qmp" --incoming "$T/inp.sock" --listen "127.0.0.1:$pp" \
	--ctl "$T/psk.ctl" --tls-handshake-timeout "$HS_MS"
wait_for 30 "the standbys' control sockets" test -S "$T/x509.ctl" -a -S "$T/psk.ctl"

# unchanged CTL WHAT: the standby still waits for a primary and nothing
# reached it.
unchanged() {
	local st
	st=$(ctl "$1" status)
	[ "$(json_get "$st" state)" = "$ST_WAITING" ] || fail "$2: standby state is not '$ST_WAITING': $st"
	[ -z "$(json_get "$st" committed_epoch)" ] || fail "$2: an epoch was committed: $st"
	[ "$(json_get "$st" qemu_bytes_written)" = 0 ] || fail "$2: bytes reached the standby QEMU: $st"
	[ "$(json_get "$st" qemu_bytes_queued)" = 0 ] || fail "$2: bytes queued for the standby QEMU: $st"
	[ -z "$(json_get "$st" primary)" ] || fail "$2: the standby has a primary: $st"
}

# refused NAME LOG LOG_ERE PROBE_ARGS...: the probe is refused, the
# standby logged LOG_ERE on a "refusing primary" line, nothing changed.
refused() {
	local name=$1 log=$2 ere=$3 out ctl=$T/${2%.log}.ctl
	shift 3
	out=$("$TLS_PROBE" "$@") || fail "$name: tls_probe failed: $out"
	echo "$name: probe says: $out"
	case "$out" in refused:*) ;; *) fail "$name: the standby did not refuse: $out" ;; esac
	wait_for 5 "the $name refusal in $log" grep -qE "refusing primary 127\.0\.0\.1:[0-9]+: .*$ere" "$T/$log"
	echo "$name: standby says: $(grep -E "refusing primary .*$ere" "$T/$log" | tail -1 | cut -c25-)"
	unchanged "$ctl" "$name"
}

refused plaintext x509.log "speaking TLS" 127.0.0.1 "$px" plain
refused other-ca x509.log "issuer is unknown" 127.0.0.1 "$px" x509 "$pki/otherca" "$pki/good/cacert.pem"
refused expired x509.log "expired" 127.0.0.1 "$px" x509 "$pki/expired" "$pki/good/cacert.pem"
# Our CA, but another host: not the primary this standby is for (the
# domain's owner, which remusd serve passes as --tls-peer-identity).
refused not-owner x509.log "'CN=elsewhere.invalid' is not the primary this standby is for" \
	127.0.0.1 "$px" x509 "$pki/wrongname"
"$REMUSD" keygen "$T/wrong.psk" >/dev/null
refused wrong-psk psk.log "same key file" 127.0.0.1 "$pp" psk "$T/wrong.psk"
refused plaintext-psk psk.log "speaking TLS" 127.0.0.1 "$pp" plain

# dropped NAME MODE: the probe is closed within the handshake deadline
# (and not long before it), logged, nothing changed.
dropped() {
	local out ms
	out=$("$TLS_PROBE" 127.0.0.1 "$px" "$2") || fail "$1: tls_probe failed: $out"
	echo "$1: probe says: $out"
	ms=$(echo "$out" | sed -n 's/^closed after \([0-9]*\) ms.*/\1/p')
	[ -n "$ms" ] || fail "$1: the standby kept the connection open: $out"
	[ "$ms" -ge $((HS_MS - 100)) ] || fail "$1: dropped after $ms ms, before the $HS_MS ms deadline"
	[ "$ms" -le $((HS_MS + 1000)) ] || fail "$1: dropped only after $ms ms (deadline $HS_MS ms)"
	grep -qE "dropping primary 127\.0\.0\.1:[0-9]+: no TLS handshake within $HS_MS ms \($3" \
		"$T/x509.log" || fail "$1: no log line for the drop"
	unchanged "$T/x509.ctl" "$1"
}
dropped silent silent "0 bytes"
dropped slowloris slowloris "[1-9][0-9]* bytes"

# Everyone at once, more than --max-handshakes (4): the extra ones are
# refused at once, and the standby still takes a good primary after.
for i in 1 2 3 4 5 6; do
	"$TLS_PROBE" 127.0.0.1 "$px" silent >"$T/flood$i.out" &
	track $!
done
wait_for 10 "the flood to be refused" grep -q "TLS handshakes already under way" "$T/x509.log"
sleep $((HS_MS / 1000 + 1))
unchanged "$T/x509.ctl" flood

# The right credentials are taken: the refusals above were about them.
out=$("$TLS_PROBE" 127.0.0.1 "$px" x509 "$pki/good")
[ "$out" = accepted ] || fail "a primary with a good certificate was not accepted: $out"
out=$("$TLS_PROBE" 127.0.0.1 "$pp" psk "$(test_psk)")
[ "$out" = accepted ] || fail "a primary with the right key was not accepted: $out"
grep -q "authenticated: .*CN=localhost" "$T/x509.log" || fail "no log line for the good certificate"
# The probes left without a checkpoint: no takeover, the standbys wait.
sleep 1
for c in x509 psk; do
	st=$(ctl "$T/$c.ctl" status)
	[ "$(json_get "$st" state)" = "$ST_WAITING" ] || fail "$c: the standby left '$ST_WAITING': $st"
	[ -z "$(json_get "$st" committed_epoch)" ] || fail "$c: an epoch was committed: $st"
done
! grep -q FAILOVER "$T/x509.log" "$T/psk.log" || fail "a standby started a takeover"
echo "security: plaintext, another CA, expired, not the owner, wrong key, silent, slowloris and a flood refused; nothing changed"
