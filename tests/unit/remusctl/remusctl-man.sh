#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The man pages (doc/man/*.8) render without a single warning: with
# man -l if man is installed (what users run), else groff, else mandoc;
# with none of them the test is skipped, saying so.
#
#   remusctl-man.sh SOURCE-DIR
source "$(dirname "$0")/../../lib/remus.sh"
SRC=${1:?usage: remusctl-man.sh SOURCE-DIR}
pages=("$SRC"/doc/man/*.8)
[ -e "${pages[0]}" ] || fail "no man pages in $SRC/doc/man"

if command -v man >/dev/null; then
	tool=man
elif command -v groff >/dev/null; then
	tool=groff
elif command -v mandoc >/dev/null; then
	tool=mandoc
else
	skip "neither man, groff nor mandoc is installed: cannot render the man pages"
fi

for page in "${pages[@]}"; do
	name=$(basename "$page")
	case $tool in
	man) LC_ALL=C.UTF-8 MANWIDTH=80 MAN_KEEP_FORMATTING= man --warnings -l "$page" \
		>"$T/$name.txt" 2>"$T/$name.err" || fail "man -l $page exited $?" ;;
	groff) groff -man -Tutf8 -ww "$page" >"$T/$name.txt" 2>"$T/$name.err" ||
		fail "groff $page exited $?" ;;
	mandoc) mandoc -Tlint -Wwarning "$page" >"$T/$name.err" 2>&1 ||
		fail "mandoc -Tlint $page: $(cat "$T/$name.err")"
		mandoc -Tutf8 "$page" >"$T/$name.txt" ;;
	esac
	[ ! -s "$T/$name.err" ] || fail "$tool warns about $page: $(cat "$T/$name.err")"
	for section in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" "SEE ALSO"; do
		grep -q "^$section" "$T/$name.txt" ||
			fail "$name rendered by $tool has no $section section"
	done
	echo "$name: rendered by $tool without warnings ($(wc -l <"$T/$name.txt") lines)"
done
