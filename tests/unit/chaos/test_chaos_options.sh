#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   test_chaos_options.sh REMUS_CHAOS
#
# Every path option of `remus-chaos run` that names something missing or
# unusable is refused before anything is built: exit 2 (usage), one line
# on stderr naming the option, the value and the fix ("give --remusd
# ..."), never a Python traceback, no output directory made, no lab
# built.  Each case is wrong in one option only, the others valid (fake
# programs that would fail later), so the test fails if any one option
# goes unchecked.  No root needed: the paths are checked before it is.
set -euo pipefail
chaos=$(realpath "${1:?remus-chaos}")
T=$(mktemp -d "${TMPDIR:-/tmp}/test_chaos_options.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "test_chaos_options: FAIL: $*" >&2; exit 1; }
mkdir -p "$T/vm" "$T/adir"
: >"$T/vm/vmlinuz"
: >"$T/vm/initrd.gz"
: >"$T/psk"
printf '#!/bin/sh\nexit 3\n' >"$T/prog"
chmod +x "$T/prog"
: >"$T/notexec"
: >"$T/afile"
# The valid values; a case replaces one.
valid=(--vm-dir "$T/vm" --remusd "$T/prog" --qemu "$T/prog" --client "$T/prog"
       --checker "$T/prog" --tls-psk "$T/psk" --remusctl "$T/prog" --libvirtd "$T/prog")
n=0
# expect NEEDLE FIX OPTION VALUE: that option wrong; stderr must hold NEEDLE
# (the option and its value) and FIX.
expect() {
	local needle=$1 fix=$2 opt=$3 val=$4 args=() i rc out
	for ((i = 0; i < ${#valid[@]}; i += 2)); do
		[ "${valid[i]}" = "$opt" ] || args+=("${valid[i]}" "${valid[i + 1]}")
	done
	set +e
	env -u REMUSD -u REMUS_QEMU -u REMUS_CHAOS_CLIENT -u REMUS_CHAOS_CHECK -u REMUSCTL \
		-u LIBVIRTD "$chaos" run "${args[@]}" "$opt" "$val" ${out_opt:---out "$T/run$n"} \
		>"$T/out" 2>"$T/err"
	rc=$?
	set -e
	out=$(cat "$T/err")
	[ "$rc" -eq 2 ] || fail "$opt $val: exit $rc, want 2: $out $(cat "$T/out")"
	! grep -q Traceback "$T/err" || fail "$opt $val: a traceback: $out"
	grep -qF -- "$needle" "$T/err" || fail "$opt $val: '$needle' not in: $out"
	grep -qF -- "$fix" "$T/err" || fail "$opt $val: no fix ('$fix') in: $out"
	[ "$(wc -l <"$T/err")" -eq 1 ] || fail "$opt $val: more than one line: $out"
	! grep -q "building the lab" "$T/out" || fail "$opt $val: the lab was built"
	[ ! -e "$T/run$n" ] || fail "$opt $val: the output directory was made"
	echo "$opt $val: $out"
	n=$((n + 1))
}
expect "--remusd /missing/path: no such file" "give --remusd the path of remusd" \
	--remusd /missing/path
expect "--remusd $T/adir: a directory" "give --remusd" --remusd "$T/adir"
expect "--remusd $T/notexec: not executable" "give --remusd" --remusd "$T/notexec"
expect "--qemu /missing/qemu: no such file" "give --qemu" --qemu /missing/qemu
expect "--qemu no-such-qemu-x: no-such-qemu-x is not in PATH" "give --qemu" \
	--qemu no-such-qemu-x
expect "--client /missing/client: no such file" "give --client" --client /missing/client
expect "--checker /missing/check: no such file" "give --checker" --checker /missing/check
expect "--vm-dir /missing/vm: no test guest in /missing/vm (missing vmlinuz and initrd.gz)" \
	"give --vm-dir" --vm-dir /missing/vm
expect "--tls-psk /missing/psk: no such file" "give --tls-psk" --tls-psk /missing/psk
# The libvirt stack's programs (the default stack).
expect "--remusctl /missing/ctl: no such file" "give --remusctl" --remusctl /missing/ctl
expect "--libvirtd /missing/libvirtd: no such file" "give --libvirtd" --libvirtd /missing/libvirtd
out_opt=" " expect "--out $T/afile: exists and is not a directory" "give --out" --out "$T/afile"
out_opt=" " expect "--out $T/afile/sub: cannot be made" "give --out" --out "$T/afile/sub"
# The environment is checked as strictly as the options.
set +e
REMUSD=/missing/env-remusd "$chaos" run --vm-dir "$T/vm" --qemu "$T/prog" --client "$T/prog" \
	--checker "$T/prog" --tls-psk "$T/psk" --out "$T/envrun" \
	>"$T/out" 2>"$T/err"
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -qF '$REMUSD=/missing/env-remusd: no such file; set $REMUSD' "$T/err" &&
	! grep -q Traceback "$T/err" || fail "REMUSD=/missing: exit $rc: $(cat "$T/err")"
echo "REMUSD=/missing/env-remusd: $(cat "$T/err")"
# The plain command, nothing else given: the option is named first.
set +e
(cd "$T" && env -u REMUSD -u REMUS_BUILD_DIR -u REMUS_GUEST_KERNEL \
	"$chaos" run --remusd /missing/path >"$T/out" 2>"$T/err")
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -qF -- '--remusd /missing/path: no such file; give --remusd' "$T/err" &&
	! grep -q Traceback "$T/err" || fail "run --remusd /missing/path: exit $rc: $(cat "$T/err")"
echo "run --remusd /missing/path: $(cat "$T/err")"
# --tls x509: the certificate maker (--tls-pki, $TLS_PKI) is checked too.
x509=(--vm-dir "$T/vm" --remusd "$T/prog" --qemu "$T/prog" --client "$T/prog"
      --checker "$T/prog" --remusctl "$T/prog" --libvirtd "$T/prog" --tls x509)
for case in opt env none; do
	set +e
	case $case in
	opt) env -u TLS_PKI "$chaos" run "${x509[@]}" --tls-pki /missing/pki --out "$T/x$case" ;;
	env) TLS_PKI=/missing/env-pki "$chaos" run "${x509[@]}" --out "$T/x$case" ;;
	none) env -u TLS_PKI -u REMUS_BUILD_DIR "$chaos" run "${x509[@]}" --out "$T/x$case" ;;
	esac >"$T/out" 2>"$T/err"
	rc=$?
	set -e
	want=$(case $case in
		opt) echo "--tls-pki /missing/pki: no such file; give --tls-pki" ;;
		env) echo '$TLS_PKI=/missing/env-pki: no such file; set $TLS_PKI' ;;
		none) echo "--tls x509: no certificate maker: give --tls-pki PATH" ;;
		esac)
	[ "$rc" -eq 2 ] && grep -qF -- "$want" "$T/err" && ! grep -q Traceback "$T/err" &&
		[ ! -e "$T/x$case" ] || fail "--tls x509 ($case): exit $rc: $(cat "$T/err")"
	echo "--tls x509 ($case): $(cat "$T/err")"
done
echo "test_chaos_options: all $((n + 5)) refused with the option and its fix"
