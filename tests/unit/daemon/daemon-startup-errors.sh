#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# remusd start-up never exits silently: with a broken input it exits
# nonzero, and its message names the option, the object (path) and the
# error.  No QEMU: every case fails before a monitor would be used,
# except the missing QMP socket, which waits its 10 s in the background.
#
#   daemon-startup-errors.sh REMUSD
source "$(dirname "$0")/../../lib/remus.sh"
REMUSD=${1:?usage: daemon-startup-errors.sh PATH-TO-REMUSD}

# expect NAME WANT_RC|nonzero OUT -- ARGS...: runs remusd ARGS with its
# stderr in OUT and checks the exit status.
expect() {
	local name=$1 want=$2 out=$3 rc=0
	shift 4
	timeout 60 "$REMUSD" "$@" >"$out.stdout" 2>"$out" || rc=$?
	if [ "$want" = nonzero ]; then
		[ "$rc" -ne 0 ] || fail "$name: remusd exited 0: $(cat "$out")"
	else
		[ "$rc" -eq "$want" ] || fail "$name: exit status $rc, not $want: $(cat "$out")"
	fi
	[ "$rc" -ne 124 ] || fail "$name: remusd did not exit within 60 s"
	[ -s "$out" ] || fail "$name: exit status $rc and nothing on stderr"
}

# says NAME OUT TEXT...: every TEXT is in OUT.
says() {
	local name=$1 out=$2 t
	shift 2
	for t in "$@"; do
		grep -qF -- "$t" "$out" || fail "$name: the message does not name '$t': $(cat "$out")"
	done
}

STANDBY=(--standby 127.0.0.1:9 --insecure)

# The missing QMP socket costs remusd's 10 s connect timeout: run it in
# the background while the other cases run.
"$REMUSD" primary --qmp "$T/no-such.qmp" "${STANDBY[@]}" >/dev/null 2>"$T/qmp.err" &
BG=$!
track "$BG"

# A metrics file in a directory that does not exist.
expect metrics nonzero "$T/metrics.err" -- primary --qmp "$T/q" "${STANDBY[@]}" \
	--metrics "$T/no-dir/epochs.jsonl"
says metrics "$T/metrics.err" --metrics "$T/no-dir/epochs.jsonl" "No such file or directory"

# Under umask 0 the metrics file is still not writable by others (it is
# made before the wait for QEMU, which fails here after 100 ms).
(umask 0 && timeout 60 "$REMUSD" primary --qmp "$T/q" "${STANDBY[@]}" --qmp-wait 100 \
	--metrics "$T/m0.jsonl" >/dev/null 2>"$T/metrics-mode0.err") || true
[ -e "$T/m0.jsonl" ] || fail "metrics-mode: no metrics file made: $(cat "$T/metrics-mode0.err")"
mode=$(stat -c %a "$T/m0.jsonl")
[ "$mode" = 644 ] || fail "metrics-mode: the metrics file is mode $mode under umask 0, not 644"

# A control socket in a directory that does not exist, and one whose
# "directory" is a file; both refused before the wait for QEMU.
expect ctl-dir nonzero "$T/ctl.err" -- primary --qmp "$T/q" "${STANDBY[@]}" \
	--ctl "$T/no-dir/p.ctl"
says ctl-dir "$T/ctl.err" --ctl "$T/no-dir/p.ctl" "No such file or directory"
touch "$T/file"
expect ctl-notdir nonzero "$T/ctl2.err" -- standby --qmp "$T/q" --incoming "$T/in" \
	--listen 9 --ctl "$T/file/s.ctl" --insecure
says ctl-notdir "$T/ctl2.err" --ctl "$T/file/s.ctl" "Not a directory"
long=$T/$(printf 'c%.0s' {1..120}).ctl
expect ctl-long nonzero "$T/ctl3.err" -- primary --qmp "$T/q" "${STANDBY[@]}" --ctl "$long"
says ctl-long "$T/ctl3.err" --ctl "$long" "shorter path"

# Disk images that are missing or cannot be read as one.
expect disk-missing nonzero "$T/disk.err" -- primary --qmp "$T/q" "${STANDBY[@]}" \
	--disk "vda,image=$T/no-such.raw,socket=$T/vda.sock"
says disk-missing "$T/disk.err" "disk vda" "$T/no-such.raw" "No such file or directory" --disk
mkdir "$T/dir.raw"
expect disk-dir nonzero "$T/disk2.err" -- standby --qmp "$T/q" --incoming "$T/in" --listen 9 \
	--disk "vdb,image=$T/dir.raw,socket=$T/vdb.sock" --insecure
says disk-dir "$T/disk2.err" "disk vdb" "$T/dir.raw" --disk
[ ! -e "$T/vdb.sock" ] || fail "disk-dir: the NBD socket was left behind"

# No TLS and no --insecure: refused, saying how to set TLS up; a key
# file that is missing, or that others can read, is named.
expect no-tls 1 "$T/tls.err" -- standby --qmp "$T/q" --incoming "$T/in" --listen 9
says no-tls "$T/tls.err" --tls-psk "remusctl keygen FILE" "remusd keygen" --tls-x509-dir /etc/pki/libvirt --insecure
expect no-key 1 "$T/key.err" -- primary --qmp "$T/q" --standby 127.0.0.1:9 --tls-psk "$T/no.psk"
says no-key "$T/key.err" "$T/no.psk" "No such file or directory" "remusctl keygen" "remusd keygen"
"$REMUSD" keygen "$T/k.psk" >/dev/null
chmod 644 "$T/k.psk"
expect open-key 1 "$T/key2.err" -- primary --qmp "$T/q" --standby 127.0.0.1:9 --tls-psk "$T/k.psk"
says open-key "$T/key2.err" "$T/k.psk" "chmod 600"
expect no-ca 1 "$T/ca.err" -- standby --qmp "$T/q" --incoming "$T/in" --listen 9 \
	--tls-x509-dir "$T/pki" --tls-ca "$T/none.pem"
says no-ca "$T/ca.err" "$T/none.pem" "CA certificate" --tls-ca
expect tls-both 2 "$T/both.err" -- primary --qmp "$T/q" --standby 127.0.0.1:9 \
	--tls-psk "$T/k.psk" --insecure
says tls-both "$T/both.err" --insecure --tls-psk

# The command line: exit status 2 and the option named.
expect cmdline 2 "$T/cmd.err" -- primary --qmp "$T/q" --standby nohost
says cmdline "$T/cmd.err" --standby "'nohost'" "HOST:PORT"
expect no-role 2 "$T/role.err" -- sideways
says no-role "$T/role.err" "'sideways'" "primary, standby or ctl"

# The control client: a socket nobody listens on.
expect ctl-client 1 "$T/cli.err" -- ctl "$T/nobody.ctl" status
says ctl-client "$T/cli.err" "$T/nobody.ctl" "No such file or directory"

rc=0
wait "$BG" || rc=$?
[ "$rc" -ne 0 ] || fail "qmp: remusd exited 0 without a QEMU monitor: $(cat "$T/qmp.err")"
says qmp "$T/qmp.err" --qmp "$T/no-such.qmp" "No such file or directory" "-qmp unix:"
echo "startup errors: every broken input named, nonzero exit status"
