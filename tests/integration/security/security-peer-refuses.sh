#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# What a peer that is not a trusted host can do to remusd serve's peer
# port (issue 12): nothing.  Two remusd serve on libvirt's test driver
# (no QEMU): one with libvirt-layout certificates, one with a
# pre-shared key.  Refused, each with a log line naming the peer and
# nothing created (no record, nothing listed): a plaintext peer, one
# with a certificate of another CA, an expired one, one with the wrong
# key.  Dropped at
# the handshake deadline (peer_timeout): a peer that connects and says
# nothing, and one that dribbles its handshake byte by byte.  Bounded: handshakes at once (max_handshakes) and
# authenticated sessions at once (max_peer_sessions = 2: the third is
# closed, logged, the two first stay).  Authorised: a peer with a good
# certificate of the same CA but another name asking for a domain
# another identity owns (create-standby of its name or its UUID,
# failover, destroy-standby) is refused as not-owner, logged naming
# peer and domain, the record unchanged.  A peer with the right
# credentials is answered (the test could not fail otherwise), and with
# insecure = yes plaintext is, with a warning for every session.
source "$(dirname "$0")/../../lib/remus.sh"
need REMUSD REMUSCTL TLS_PROBE PEER_PROBE

HS_MS=2000
UUID=6f2b5c1e-3d4a-4b8e-9c1f-0a1b2c3d4e5f
pki=$(test_pki)
psk=$(test_psk)

# serve NAME KEY=VALUE...: a remusd serve on 127.0.0.1 with its own
# directories and config file; sets PORT_<NAME>.
serve() {
	local name=$1 port
	shift
	port=$(free_port)
	mkdir -p "$T/$name/run" "$T/$name/state/domains"
	chmod 700 "$T/$name/run" "$T/$name/state" "$T/$name/state/domains"
	{
		echo "name = $name"
		printf '%s\n' "$@"
	} >"$T/$name.conf"
	"$REMUSD" serve --config "$T/$name.conf" --ctl "$T/$name/remusd.sock" \
		--run-dir "$T/$name/run" --state-dir "$T/$name/state" \
		--listen "127.0.0.1:$port" --connect test:///default >>"$T/$name.log" 2>&1 &
	track $!
	WATCHED+=("$!:remusd serve $name:$T/$name.log")
	printf -v "PORT_$name" '%s' "$port"
	wait_for 15 "remusd serve $name" test -S "$T/$name/remusd.sock"
}

# The x509 host already has web1 as a primary that hostB protects onto
# (owner: hostB's certificate DN, CN=localhost in the test PKI).
mkdir -p "$T/x509/state/domains"
chmod 700 "$T/x509/state" "$T/x509/state/domains"
cat >"$T/x509/state/domains/web1.json" <<EOF2
{"format":"remus-domain-state","version":1,"domain":"web1","uuid":"$UUID","role":"primary","peer":"hostB","peer_port":7790,"repl_port":7800,"interval_ms":200,"pause_budget_ms":300,"netbuffer":"qemu","reprotect":"manual","since_ms":1764613800123,"owner":"CN=localhost","disks":[]}
EOF2
chmod 600 "$T/x509/state/domains/web1.json"
cp "$T/x509/state/domains/web1.json" "$T/web1.before"
serve x509 "tls_x509_dir = $pki/good" "max_handshakes = 3" "peer_timeout = $HS_MS"
# Long enough for sessions held without a request (peer_timeout drops them).
serve psk "tls_psk = $psk" "max_peer_sessions = 2" "peer_timeout = 10000"

# nothing_created NAME WHAT: no record but web1's, nothing listed but it.
nothing_created() {
	local recs list
	recs=$(cd "$T/$1/state/domains" && ls)
	[ -z "$recs" ] || [ "$recs" = web1.json ] || fail "$2: records appeared on $1: $recs"
	list=$("$REMUSCTL" --socket "$T/$1/remusd.sock" list --json)
	case "$list" in *'"domain":"web'[!1]*) fail "$2: remusd serve $1 lists more: $list" ;; esac
	cmp -s "$T/web1.before" "$T/x509/state/domains/web1.json" ||
		fail "$2: web1's record changed: $(cat "$T/x509/state/domains/web1.json")"
}

# refused NAME HOST ERE PROBE_ARGS...: tls_probe is refused, remusd serve
# logged ERE on a "refusing peer" line, nothing created.
refused() {
	local name=$1 host=$2 ere=$3 out
	shift 3
	out=$("$TLS_PROBE" "$@") || fail "$name: tls_probe failed: $out"
	case "$out" in refused:*) ;; *) fail "$name: remusd serve did not refuse: $out" ;; esac
	wait_for 5 "the $name refusal in $host.log" \
		grep -qE "refusing peer 127\.0\.0\.1:[0-9]+: .*$ere" "$T/$host.log"
	echo "$name: refused: $(grep -E "refusing peer .*$ere" "$T/$host.log" | tail -1 | cut -c25-)"
	nothing_created "$host" "$name"
}
refused plaintext x509 "speaking TLS" 127.0.0.1 "$PORT_x509" plain
refused other-ca x509 "issuer is unknown" 127.0.0.1 "$PORT_x509" x509 "$pki/otherca" \
	"$pki/good/cacert.pem"
refused expired x509 "expired" 127.0.0.1 "$PORT_x509" x509 "$pki/expired" "$pki/good/cacert.pem"
"$REMUSD" keygen "$T/wrong.psk" >/dev/null
refused wrong-psk psk "same key file" 127.0.0.1 "$PORT_psk" psk "$T/wrong.psk"
refused plaintext-psk psk "speaking TLS" 127.0.0.1 "$PORT_psk" plain

# A plaintext create-standby through the real client: never answered.
out=$("$PEER_PROBE" 127.0.0.1 "$PORT_psk" plain ask \
	"{\"req\":\"create-standby\",\"id\":1,\"domain\":\"web7\",\"uuid\":\"$UUID\",\"xml\":\"<domain/>\",\"disks\":[],\"options\":{\"interval_ms\":200,\"pause_budget_ms\":300,\"netbuffer\":\"qemu\",\"reprotect\":\"auto\",\"heartbeat_ms\":100,\"miss\":5},\"primary\":\"evil\",\"primary_port\":7790}")
case "$out" in failed:*) echo "plaintext create-standby: $out" ;;
*) fail "a plaintext create-standby got an answer: $out" ;; esac
nothing_created psk plaintext-create

# Silent, and a slowloris (a handshake byte by byte): each dropped at the
# handshake deadline (peer_timeout), not before, logged, nothing created.
dropped() {
	local out ms
	out=$("$TLS_PROBE" 127.0.0.1 "$PORT_x509" "$1")
	ms=$(echo "$out" | sed -n 's/^closed after \([0-9]*\) ms.*/\1/p')
	[ -n "$ms" ] || fail "$1: remusd serve kept the connection open: $out"
	[ "$ms" -ge $((HS_MS - 100)) ] || fail "$1: dropped after $ms ms, before the $HS_MS ms deadline"
	[ "$ms" -le $((HS_MS + 1000)) ] || fail "$1: dropped only after $ms ms (deadline $HS_MS ms)"
	grep -qE "dropping peer 127\.0\.0\.1:[0-9]+: no TLS handshake within $HS_MS ms \($2" \
		"$T/x509.log" || fail "$1: no log line for the drop"
	nothing_created x509 "$1"
	echo "$1: closed after $ms ms (deadline $HS_MS ms)"
}
dropped silent "0 bytes"
dropped slowloris "[1-9][0-9]* bytes"

# Handshakes at once: max_handshakes = 3; six silent peers, three refused at once.
for i in 1 2 3 4 5 6; do
	"$TLS_PROBE" 127.0.0.1 "$PORT_x509" silent >"$T/flood$i.out" &
	track $!
done
wait_for 10 "the flood to be refused" grep -q "3 TLS handshakes already under way" "$T/x509.log"
echo "flood: $(grep -c "TLS handshakes already under way" "$T/x509.log") refused at accept"
sleep $((HS_MS / 1000 + 1))

# Sessions at once: max_peer_sessions = 2.
out=$("$PEER_PROBE" 127.0.0.1 "$PORT_psk" psk "$psk" hold 3)
echo "$out" | sed 's/^/sessions: /'
echo "$out" | grep -qx "session 1: open" || fail "sessions: the first was not kept: $out"
echo "$out" | grep -qx "session 2: open" || fail "sessions: the second was not kept: $out"
echo "$out" | grep -q "^session 3: closed after" || fail "sessions: the third was kept: $out"
grep -qE "refusing peer 127\.0\.0\.1:[0-9]+ \(PSK identity remus\): 2 peer sessions already open" \
	"$T/psk.log" || fail "sessions: no log line for the refused session"

# Authenticated, but not the owner: a certificate of the same CA for
# another name (CN=elsewhere.invalid).
owner_refused() {
	local out
	out=$("$PEER_PROBE" 127.0.0.1 "$PORT_x509" x509 "$pki/wrongname" ask "$1")
	case "$out" in "answer: not-owner: "*) ;;
	*) fail "$2: not refused as not-owner: $out" ;; esac
	grep -qE "refusing $3 of $4 from peer probe \(CN=elsewhere.invalid\)" "$T/x509.log" ||
		fail "$2: no log line naming the peer and $4"
	echo "$2: $out"
	nothing_created x509 "$2"
}
create() {
	echo "{\"req\":\"create-standby\",\"id\":2,\"domain\":\"$1\",\"uuid\":\"$UUID\",\"xml\":\"<domain/>\",\"disks\":[],\"options\":{\"interval_ms\":200,\"pause_budget_ms\":300,\"netbuffer\":\"qemu\",\"reprotect\":\"auto\",\"heartbeat_ms\":100,\"miss\":5},\"primary\":\"hostB\",\"primary_port\":7790}"
}
owner_refused "$(create web1)" "replace web1" create-standby web1
owner_refused "$(create web9)" "web1's UUID as web9" create-standby web9
owner_refused '{"req":"failover","id":3,"domain":"web1"}' "failover web1" failover web1
owner_refused '{"req":"destroy-standby","id":4,"domain":"web1"}' "destroy web1" destroy-standby web1

# The right credentials are answered: the refusals above were about them.
out=$("$PEER_PROBE" 127.0.0.1 "$PORT_x509" x509 "$pki/good" ask '{"req":"ping","id":9}')
[ "$out" = "answer: ok" ] || fail "a peer with a good certificate was not answered: $out"
out=$("$PEER_PROBE" 127.0.0.1 "$PORT_psk" psk "$psk" ask '{"req":"ping","id":9}')
[ "$out" = "answer: ok" ] || fail "a peer with the right key was not answered: $out"

# Neither TLS nor insecure: remusd serve does not start, and says how.
mkdir -p "$T/none/run" "$T/none/state"
chmod 700 "$T/none/run" "$T/none/state"
echo "name = none" >"$T/none.conf"
rc=0
timeout 20 "$REMUSD" serve --config "$T/none.conf" --ctl "$T/none/remusd.sock" \
	--run-dir "$T/none/run" --state-dir "$T/none/state" --listen "127.0.0.1:$(free_port)" \
	--connect test:///default >"$T/none.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "no TLS: remusd serve exited $rc, not 1: $(cat "$T/none.log")"
grep -q "need TLS: set tls_psk = FILE" "$T/none.log" || fail "no TLS: no message saying how"
echo "no TLS settings: remusd serve refused to start: $(grep -o 'the peer port and the replication links need TLS[^(]*' "$T/none.log")"

# insecure = yes: plaintext is answered, and every session is warned about.
serve open "insecure = yes"
grep -q "insecure: the peer port and the replication links run without TLS" "$T/open.log" ||
	fail "insecure: no warning at start"
for i in 1 2; do
	out=$("$PEER_PROBE" 127.0.0.1 "$PORT_open" plain ask '{"req":"ping","id":9}')
	[ "$out" = "answer: ok" ] || fail "insecure: a plaintext ping was not answered: $out"
done
n=$(grep -c "insecure: this session runs without TLS" "$T/open.log")
[ "$n" = 2 ] || fail "insecure: $n session warnings for 2 sessions"
echo "insecure: 2 plaintext sessions answered, 2 warnings"
echo "security: the peer port refused plaintext, another CA, a wrong key, a silent peer, a slowloris, a flood, a session over the bound and a peer that owns nothing; nothing changed"
