#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libvirt-x509: protection, an unplanned failover and the automatic
# re-protection between real hosts over x509 certificates (LAB_TLS=x509:
# a CA of the test, one certificate per lab host naming it, libvirt's
# layout in each host's /etc/remus/pki), so that the owner binding of
# `--tls-peer-identity` is exercised by real children, not only by the
# unit tests' fake ones.
#   1. web1 protected pri -> sby: sby's record of web1 is owned by
#      CN=pri, its standby child runs with --tls-peer-identity CN=pri,
#      and that child authenticated the primary as CN=pri.
#   2. pri killed: web1 runs on sby, no disk violation.
#   3. pri comes back: sby protects web1 to it by itself; pri's record
#      is owned by CN=sby, its child takes only CN=sby, and did.
#   4. A host whose certificate comes from another CA (a "rogue" client
#      certificate, trusting the lab's CA so only the server can refuse)
#      asks sby to create a standby: refused at the handshake, with a
#      log line naming the peer and the unknown issuer; no domain, no
#      record created.
# shellcheck disable=SC2034 # read by tests/lib/hosts.sh
LAB_TLS=x509
source "$(dirname "$0")/../../lib/remus.sh"
source "$(dirname "$0")/lib.sh"
need TLS_PKI PEER_PROBE

# child_identity HOST: the --tls-peer-identity of web1's child on HOST
# ("" if it has none or does not run).
child_identity() {
	local pid args
	for pid in $(ip netns pids "$NS-$1" 2>/dev/null); do
		args=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || continue
		if ! grep -qx -- "--name" <<<"$args" || ! grep -qx "$DOM" <<<"$args" ||
			! grep -qx standby <<<"$args"; then
			continue
		fi
		grep -A1 -x -- "--tls-peer-identity" <<<"$args" | tail -n 1
		return 0
	done
}
# record_owner HOST: the owner in HOST's state record of web1.
record_owner() { json_get "$(cat "$(host_path "$1" "/var/lib/remus/domains/$DOM.json")")" owner; }
# owned_by STANDBY_HOST PRIMARY_HOST: the standby's record and child
# belong to the primary's certificate DN, and the child authenticated it.
owned_by() {
	local sby=$1 pri=$2 owner id
	owner=$(record_owner "$sby")
	[ "$owner" = "CN=$pri" ] || fail "$sby's record of $DOM is owned by '$owner', not CN=$pri"
	id=$(child_identity "$sby")
	[ "$id" = "CN=$pri" ] || fail "$sby's standby child takes '--tls-peer-identity $id', not CN=$pri"
	wait_for 10 "$sby's standby child to authenticate $pri" grep -qE \
		"primary ${HOST_ADDR[$pri]}:[0-9]+ authenticated: .*CN=$pri" "$T/$sby-remusd.log"
	echo "$sby: standby of $DOM owned by CN=$pri, child --tls-peer-identity CN=$pri:" \
		"$(grep -oE "primary ${HOST_ADDR[$pri]}:[0-9]+ authenticated: .*" "$T/$sby-remusd.log" | tail -n 1)"
}

lab_up
grep -q "x509" "$T/pri-remusd.log" || fail "pri's remusd serve does not say it uses x509: $(head -n 5 "$T/pri-remusd.log")"
web1_up
protect_web1
echo "protected over x509 in $PROTECT_MS ms"
owned_by sby pri

# 2. The unplanned failover.
epochs_pass pri 2
host_kill pri
wait_for 60 "web1 to run on sby" dom_is sby running
no_violation sby

# 3. Re-protection back to pri, over x509, by sby's remusd serve alone.
t0=$(now_ms)
host_boot pri
host_remusd pri
reprotected() { is_protected sby primary && [[ "$(status_of sby peer)" == pri* ]]; }
wait_for 120 "sby to protect web1 again with pri as standby" reprotected
wait_for 30 "pri's status to show web1 as standby" is_protected pri standby
echo "re-protected back to pri over x509 $(($(now_ms) - t0)) ms after pri came back"
owned_by pri sby
no_violation sby

# 4. A certificate of another CA: refused, nothing created.
mkdir "$T/other-pki"
"$TLS_PKI" --hosts "$T/other-pki" "some other CA" "rogue=$CLI_IP" || fail "tls_pki --hosts (other CA) failed"
rogue=$T/other-pki/rogue
cp "$(lab_pki)/sby/cacert.pem" "$rogue/cacert.pem"   # it trusts sby: only sby can refuse
before=$(host_exec sby virsh list --all --name | sort | tr '\n' ' ')
records=$(ls "$(host_path sby /var/lib/remus/domains)")
req='{"req":"create-standby","id":1,"domain":"web2","uuid":"0b3f1c2e-4d5a-4b6c-8d7e-9f0a1b2c3d4e","xml":"<domain/>","disks":[],"options":{"interval_ms":200,"pause_budget_ms":300,"netbuffer":"qemu","reprotect":"auto","heartbeat_ms":100,"miss":5},"primary":"rogue","primary_port":7790}'
out=$(host_exec cli "$PEER_PROBE" sby 7790 x509 "$rogue" ask "$req")
case "$out" in failed:*) ;; *) fail "sby answered a peer with another CA's certificate: $out" ;; esac
wait_for 5 "sby's log line refusing the rogue" \
	grep -qE "refusing peer $CLI_IP:[0-9]+: .*issuer is unknown" "$T/sby-remusd.log"
echo "other CA: $out; sby: $(grep -oE "refusing peer $CLI_IP:[0-9]+: .*issuer is unknown.*" "$T/sby-remusd.log" | tail -n 1)"
after=$(host_exec sby virsh list --all --name | sort | tr '\n' ' ')
[ "$after" = "$before" ] || fail "domains on sby changed after the rogue's request: '$before' -> '$after'"
[ "$(ls "$(host_path sby /var/lib/remus/domains)")" = "$records" ] ||
	fail "records on sby changed after the rogue's request: $(ls "$(host_path sby /var/lib/remus/domains)")"
is_protected sby primary || fail "web1 is no longer protected after the rogue's request: $(status_json sby)"
echo "libvirt-x509: protect, failover and re-protection over x509 with owner binding; another CA refused, nothing created"
