#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `cmake --install BUILD --prefix P` gives a remusctl that runs from
# P/bin, the man pages in P/share/man/man8, the example config in the
# documentation directory, and a systemd unit whose ExecStart is P's
# remusd serve (checked with systemd-analyze verify where it exists).
#
#   remusctl-install.sh CMAKE BUILD-DIR
source "$(dirname "$0")/../../lib/remus.sh"
CMAKE=${1:?usage: remusctl-install.sh CMAKE BUILD-DIR}
BUILD=${2:?usage: remusctl-install.sh CMAKE BUILD-DIR}
P=$T/prefix

"$CMAKE" --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install failed"
[ -x "$P/bin/remusctl" ] || fail "no executable $P/bin/remusctl"
out=$("$P/bin/remusctl" --version) || fail "$P/bin/remusctl --version exited $?"
[[ $out == "remusctl "* ]] || fail "remusctl --version printed '$out'"
rc=0
"$P/bin/remusctl" --socket "$T/none.sock" list 2>"$T/list.err" || rc=$?
[ "$rc" = 3 ] || fail "remusctl list without a remusd exited $rc, not 3: $(cat "$T/list.err")"
for page in remusctl.8 remusd.8; do
	[ -s "$P/share/man/man8/$page" ] || fail "no $page in $P/share/man/man8"
done
[ -s "$P/share/doc/remus-qemu/remusd.conf" ] || fail "no example remusd.conf in share/doc"
unit=$P/lib/systemd/system/remusd.service
[ -s "$unit" ] || fail "no $unit; installed: $(cd "$P" && find . -type f)"
grep -qx "ExecStart=$P/bin/remusd serve" "$unit" ||
	fail "$unit does not run $P/bin/remusd serve: $(grep ExecStart "$unit")"
for key in Restart=on-failure RuntimeDirectory=remus StateDirectory=remus; do
	grep -qx "$key" "$unit" || fail "$unit lacks $key"
done
grep -q "^After=.*libvirtd.service" "$unit" || fail "$unit does not start after libvirtd"
if command -v systemd-analyze >/dev/null; then
	# Only our unit's problems: the host's own units may not parse.
	systemd-analyze verify --man=no "$unit" >"$T/verify.log" 2>&1 ||
		fail "systemd-analyze verify $unit: $(cat "$T/verify.log")"
	if grep -q "remusd.service" "$T/verify.log"; then
		fail "systemd-analyze verify warns about $unit: $(cat "$T/verify.log")"
	fi
	verified=", verified by systemd-analyze"
else
	verified=", not verified (no systemd-analyze)"
fi
echo "install: $P/bin/remusctl runs; man8 pages, example config, unit$verified"
