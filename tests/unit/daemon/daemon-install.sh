#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `cmake --install BUILD --prefix P` gives a remusd that runs from P/bin
# (not from the build tree) and the documentation in P/share/doc.
#
#   daemon-install.sh CMAKE BUILD-DIR
source "$(dirname "$0")/../../lib/remus.sh"
CMAKE=${1:?usage: daemon-install.sh CMAKE BUILD-DIR}
BUILD=${2:?usage: daemon-install.sh CMAKE BUILD-DIR}
P=$T/prefix

"$CMAKE" --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install failed"
[ -x "$P/bin/remusd" ] || fail "no executable $P/bin/remusd; installed: $(cd "$P" && find . -type f)"
out=$("$P/bin/remusd" --help) || fail "$P/bin/remusd --help exited $?"
grep -q "remusd primary --qmp PATH" <<<"$out" || fail "$P/bin/remusd --help printed no usage: $out"
for doc in README.md ARCHITECTURE.md; do
	[ -s "$P/share/doc/remus-qemu/$doc" ] || fail "no $doc in $P/share/doc/remus-qemu"
done
echo "install: $P/bin/remusd runs; docs in share/doc/remus-qemu"
