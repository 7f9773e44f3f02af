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
# QEMU is stopped by PID on every path (tests/lib/remus.sh).
source "$(dirname "$0")/../../lib/remus.sh"
[ $# -eq 1 ] || fail "usage: $0 OVERLAY.cpio.gz"
overlay=$1
need REMUS_GUEST_KERNEL REMUS_GUEST_INITRD
[ -r "$overlay" ] || fail "$overlay is missing; build the target netbuffer_plug_overlay"

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
check_log <<<"$good" >/dev/null || fail "self-test: the checker rejects a good log"
if sed '/^PASS veth\/limit-drops:/d' <<<"$good" | check_log >/dev/null ||
	sed '/^PASS api\/protect-first-commit-exact:/d' <<<"$good" | check_log >/dev/null ||
	sed 's/^PASS tun\/installed:/FAIL tun\/installed:/' <<<"$good" | check_log >/dev/null ||
	{ echo "$good"; echo 'FAIL tun/extra: x'; } | check_log >/dev/null ||
	check_log <<<"${good//status=0/status=1}" >/dev/null; then
	fail "self-test: the checker accepts a bad log"
fi

mkdir "$T/vm"
ln -s "$(realpath "$REMUS_GUEST_KERNEL")" "$T/vm/vmlinuz"
cat "$REMUS_GUEST_INITRD" "$overlay" >"$T/vm/initrd.gz"
ACCEL=$(guest_accel "$(dirname "$REMUS_GUEST_KERNEL")")
start_guest g "quiet remus.run=plugtest remus.modules=tc,tun,veth" --vm "$T/vm"
echo "$TEST_NAME: QEMU pid $QEMU_PID, accel $ACCEL, serial $T/g.serial"
wait_serial g '^GUEST-UP$' 180 "the GUEST-UP line"
start=$SECONDS
wait_serial g '^GUEST-(EXIT status=[0-9]+|ERROR.*)$' 300 "plugtest to finish"
serial g | grep -E '^(PASS|FAIL) ' || true
why=$(serial g | check_log) || fail "$why"
echo "$TEST_NAME: PASS: $(wc -w <<<"$expected") checks passed in the guest in $((SECONDS - start)) s"
