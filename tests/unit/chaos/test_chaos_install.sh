#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
#   test_chaos_install.sh BUILD_DIR
#
# The chaos suite is a tool users run, so it is checked as installed:
# `cmake --install` into a scratch prefix puts remus-chaos,
# remus-chaos-check and remus-chaos-client in bin/ and remus-chaos.1 in
# share/man/man1; each answers --help; the installed remus-chaos finds the
# installed checker next to it (`remus-chaos check`); the man page renders
# without a groff warning.
set -euo pipefail
build=${1:?build dir}
P=$(mktemp -d "${TMPDIR:-/tmp}/test_chaos_install.XXXXXX")
trap 'rm -rf "$P"' EXIT
fail() { echo "test_chaos_install: FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$P" >/dev/null || fail "cmake --install failed"
for f in bin/remus-chaos bin/remus-chaos-check bin/remus-chaos-client share/man/man1/remus-chaos.1; do
	[ -e "$P/$f" ] || fail "$f is not installed"
done
for t in remus-chaos remus-chaos-check remus-chaos-client; do
	"$P/bin/$t" --help >"$P/help" 2>&1 || fail "$t --help failed: $(cat "$P/help")"
	grep -q "$t" "$P/help" || fail "$t --help does not name the program"
done
"$P/bin/remus-chaos" run --help | grep -q -- '--netbuffer' || fail "remus-chaos run --help lacks --netbuffer"
rc=0
"$P/bin/remus-chaos-client" --sessions 0 --server 1.2.3.4:5 --out /dev/null 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "remus-chaos-client --sessions 0 exited $rc, want 2 (usage)"
printf '%s\n' '{"session":1,"op":"inc","key":"a","value":null,"invoke_us":1,"complete_us":2,"result":"ok","out":1}' >"$P/h.jsonl"
env -u REMUS_CHAOS_CHECK PATH=/usr/bin:/bin "$P/bin/remus-chaos" check "$P/h.jsonl" >"$P/out" ||
	fail "remus-chaos check on a valid history: $(cat "$P/out")"
grep -q "valid" "$P/out" || fail "remus-chaos check printed no verdict: $(cat "$P/out")"
if command -v groff >/dev/null; then
	w=$(groff -man -ww -z "$P/share/man/man1/remus-chaos.1" 2>&1) || fail "groff: $w"
	[ -z "$w" ] || fail "remus-chaos.1 has groff warnings: $w"
else
	echo "groff not installed: the man page's rendering is not checked"
fi
echo "test_chaos_install: installed and answering: remus-chaos, remus-chaos-check, remus-chaos-client, remus-chaos.1"
