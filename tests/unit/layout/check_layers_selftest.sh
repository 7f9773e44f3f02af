#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The layer checker must fail on each kind of breakage: this builds small
# trees in a temporary folder and expects the checker's verdict on each.
set -euo pipefail
check=$(dirname "$0")/check_layers.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

tree() {  # tree NAME TABLE-ROWS...: a tree with modules a, b and that table
	local t=$tmp/$1
	shift
	mkdir -p "$t/docs" "$t/a" "$t/b" "$t/tests"
	{
		printf '# x\n## Module layers\n| layer | module | what | may include |\n|---|---|---|---|\n'
		printf '%s\n' "$@"
		printf '\n## Next\n'
	} >"$t/docs/ARCHITECTURE.md"
	printf '#include "common/x.h"\n' >"$t/a/a.h"
	printf '#include "a/a.h"\n' >"$t/b/b.c"
	printf '#include "b/b.h"\n' >"$t/tests/t.c"   # tests may include anything
	echo "$t"
}

expect() {  # expect ok|fail PATTERN TREE
	local want=$1 pat=$2 t=$3 out rc=0
	out=$(python3 "$check" "$t" 2>&1) || rc=$?
	if [ "$want" = ok ] && [ $rc -eq 0 ]; then
		echo "ok: $(basename "$t")"
	elif [ "$want" = fail ] && [ $rc -ne 0 ] && grep -q -- "$pat" <<<"$out"; then
		echo "ok: $(basename "$t") fails: $(grep -- "$pat" <<<"$out" | head -1)"
	else
		echo "FAILED: $(basename "$t"): wanted $want /$pat/, got rc=$rc:"
		echo "$out"
		fails=$((fails + 1))
	fi
}

expect ok '' "$(tree good '| 0 | `a` | x | - |' '| 1 | `b` | x | `a` |')"
expect fail 'b/b.c:1: includes "a/a.h"' \
	"$(tree upward '| 1 | `a` | x | - |' '| 0 | `b` | x | - |')"
expect fail 'b/: a folder with C code' "$(tree unlisted '| 0 | `a` | x | - |')"
expect fail 'a module above it' \
	"$(tree layer '| 1 | `a` | x | - |' '| 0 | `b` | x | `a` |')"
expect fail 'form a cycle' \
	"$(tree cycle '| 0 | `a` | x | `b` |' '| 0 | `b` | x | `a` |')"
expect fail 'which is no module' \
	"$(tree ghost '| 0 | `a` | x | `zz` |' '| 1 | `b` | x | `a` |')"
t=$(tree notable '| 0 | `a` | x | - |'); sed -i 's/Module layers/Modules/' "$t/docs/ARCHITECTURE.md"
expect fail "no '## Module layers' section" "$t"

echo "layout selftest: $((7 - fails)) passed, $fails failed"
[ $fails -eq 0 ]
