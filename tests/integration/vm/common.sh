# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Shared setup of the vm tests: checks the environment that
# tests/CMakeLists.txt gives integration tests, loads guest-lib.sh, makes
# the private temp dir and the EXIT trap that stops every QEMU started (by
# PID) and removes the dir.  Sets: vm (dir of vmlinuz/initrd.gz), accel,
# dir, and name (the test's name, for messages).

name=$(basename "$0")
for v in REMUS_GUEST_KERNEL REMUS_GUEST_INITRD REMUS_SOURCE_DIR REMUS_BUILD_DIR; do
	if [ -z "${!v:-}" ]; then
		echo "$name: $v is not set; run this through ctest (ctest -L vm) or export it" >&2
		exit 2
	fi
done
vm=$(dirname "$REMUS_GUEST_KERNEL")
if [ "$(dirname "$REMUS_GUEST_INITRD")" != "$vm" ]; then
	echo "$name: REMUS_GUEST_KERNEL and REMUS_GUEST_INITRD must be in one directory (a vm-images build)" >&2
	exit 2
fi
# shellcheck source=../../../vm-images/guest-lib.sh
. "$REMUS_SOURCE_DIR/vm-images/guest-lib.sh"
accel=$(guest_accel "$vm")
dir=$(mktemp -d "${TMPDIR:-/tmp}/remus-$name.XXXXXX")
trap 'guest_stop_all; rm -rf "$dir"' EXIT

# fail MESSAGE: print it and the serial log's tail of guest $dir/g, exit 1.
fail() {
	echo "$name: FAIL: $*" >&2
	if [ -s "$dir/g.serial" ]; then
		echo "$name: last lines of the guest's serial console:" >&2
		guest_serial "$dir/g" | tail -n 20 | sed 's/^/    | /' >&2
	fi
	exit 1
}

# self_test FUNC GOOD_INPUT BAD_INPUT: the checker FUNC must accept GOOD and
# reject BAD (fed on stdin), so a checker that cannot fail fails the test.
self_test() {
	if ! printf '%b' "$2" | "$1" >/dev/null 2>&1; then
		echo "$name: self-test: $1 rejects a good log" >&2
		exit 1
	fi
	if printf '%b' "$3" | "$1" >/dev/null 2>&1; then
		echo "$name: self-test: $1 accepts a bad log" >&2
		exit 1
	fi
}
