#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# netbuffer-plug-guest OVERLAY: boots the test guest with OVERLAY (a cpio
# holding /bin/plugtest, built by this directory's CMakeLists.txt) appended
# to its initramfs, runs plugtest with the tc, tun and veth modules loaded
# (the plug primitives on a tun tap and a veth pair, then the public
# netbuffer interface on two taps), and passes only if every expected check
# printed PASS, none printed FAIL and the guest reported "GUEST-EXIT
# status=0".  The list of checks is fixed here, so a check that silently
# stops running fails the test.
# QEMU is stopped by PID on every path (guest-lib.sh, EXIT trap).
set -euo pipefail
name=netbuffer-plug-guest
[ $# -eq 1 ] || { echo "usage: $0 OVERLAY.cpio.gz" >&2; exit 2; }
overlay=$1
for v in REMUS_GUEST_KERNEL REMUS_GUEST_INITRD REMUS_SOURCE_DIR; do
	if [ -z "${!v:-}" ]; then
		echo "$name: $v is not set; run this through ctest (ctest -L netbuffer) or export it" >&2
		exit 2
	fi
done
for f in "$overlay" "$REMUS_GUEST_KERNEL" "$REMUS_GUEST_INITRD"; do
	if [ ! -r "$f" ]; then
		echo "$name: $f is missing; build the targets netbuffer_plug_overlay and vm-images" >&2
		exit 2
	fi
done
# shellcheck source=../../../vm-images/guest-lib.sh
. "$REMUS_SOURCE_DIR/vm-images/guest-lib.sh"
accel=$(guest_accel "$(dirname "$REMUS_GUEST_KERNEL")")
dir=$(mktemp -d "${TMPDIR:-/tmp}/remus-$name.XXXXXX")
trap 'guest_stop_all; rm -rf "$dir"' EXIT

fail() {
	echo "$name: FAIL: $*" >&2
	if [ -s "$dir/g.serial" ]; then
		echo "$name: the guest's serial console:" >&2
		guest_serial "$dir/g" | tail -n 60 | sed 's/^/    | /' >&2
	fi
	exit 1
}

checks_for() {
	local kind=$1 c
	for c in open installed held-before-barrier commit-releases-epoch \
		later-epoch-held next-commit-releases-it two-barriers-first-commit-exact \
		merged-epoch-not-early merged-epoch-released-next release-all-passes-through \
		barrier-holds-again hold-again-commit close-releases-held close-restores-host \
		limit-drops limit-keeps-first limit-close-restores-host crash-leaves-leftovers \
		reopen-replaces-leftovers reopen-works reopen-close-restores-host; do
		echo "$kind/$c"
	done
}
expected=$(
	for c in refuse-missing-tap refuse-foreign-ifb-name refuse-foreign-ingress-filter \
		refuse-foreign-ingress-empty refuse-clsact; do
		echo "tun/$c"
	done
	checks_for tun
	checks_for veth
	for c in new-refusals new-without-qmp setup-async setup-installed \
		held-before-barrier commit-releases-epoch later-epoch-held commit-older-of-two \
		merged-epoch-not-early merged-epoch-released-next commit-unknown-ignored \
		status-json lost-release-flushes lost-passes-through lost-barrier-passes \
		protect-holds-again protect-first-commit-exact protect-second-commit \
		teardown-releases-held teardown-restores-host hold-setup lost-hold-keeps \
		lost-hold-commit-releases lost-hold-next-commit limit-drops teardown-norelease \
		setup-failure-rolls-back failed-refuses-barrier; do
		echo "api/$c"
	done
)

# check_log < serial: every expected check PASSed, nothing FAILed, and the
# program exited 0.  Prints what is wrong.
check_log() {
	local log c bad=0
	log=$(cat)
	for c in $expected; do
		if ! grep -qxF -- "$c" <<<"$(sed -n 's/^PASS \([^:]*\):.*/\1/p' <<<"$log")"; then
			echo "no PASS line for $c"
			bad=1
		fi
	done
	if grep -q '^FAIL ' <<<"$log"; then
		grep '^FAIL ' <<<"$log"
		bad=1
	fi
	if ! grep -qx 'GUEST-EXIT status=0' <<<"$log"; then
		echo "no 'GUEST-EXIT status=0'"
		bad=1
	fi
	return $bad
}
# The checker must be able to fail: a good log passes, logs with one PASS
# missing, one FAIL, or a non-zero exit do not.
good=$(printf 'GUEST-UP\n'; for c in $expected; do echo "PASS $c: ok"; done; echo 'GUEST-EXIT status=0')
check_log <<<"$good" >/dev/null || { echo "$name: self-test: checker rejects a good log" >&2; exit 1; }
if sed '/^PASS veth\/limit-drops:/d' <<<"$good" | check_log >/dev/null ||
	sed '/^PASS api\/protect-first-commit-exact:/d' <<<"$good" | check_log >/dev/null ||
	sed 's/^PASS tun\/installed:/FAIL tun\/installed:/' <<<"$good" | check_log >/dev/null ||
	{ echo "$good"; echo 'FAIL tun/extra: x'; } | check_log >/dev/null ||
	check_log <<<"${good//status=0/status=1}" >/dev/null; then
	echo "$name: self-test: checker accepts a bad log" >&2
	exit 1
fi

mkdir "$dir/vm"
ln -s "$(realpath "$REMUS_GUEST_KERNEL")" "$dir/vm/vmlinuz"
cat "$REMUS_GUEST_INITRD" "$overlay" >"$dir/vm/initrd.gz"
guest_boot "$dir/g" "$dir/vm" "$accel" "quiet remus.run=plugtest remus.modules=tc,tun,veth"
echo "$name: QEMU pid $GUEST_PID, accel $accel, serial $dir/g.serial"
guest_wait "$dir/g" '^GUEST-UP$' 180 || fail "no GUEST-UP line"
start=$SECONDS
guest_wait "$dir/g" '^GUEST-(EXIT status=[0-9]+|ERROR.*)$' 300 || fail "plugtest did not finish"
guest_serial "$dir/g" | grep -E '^(PASS|FAIL) ' || true
why=$(guest_serial "$dir/g" | check_log) || fail "$why"
echo "$name: PASS: $(wc -w <<<"$expected") checks passed in the guest in $((SECONDS - start)) s"
