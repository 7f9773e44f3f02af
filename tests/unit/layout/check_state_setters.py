#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks that state machines change state in their checked setter only.

    check_state_setters.py SOURCE_DIR FILE...
    check_state_setters.py --selftest

Each FILE (relative to SOURCE_DIR) holds one state machine of
common/state.h.  This fails (exit 1, one line per problem) when
  - a FILE does not call remus_state_change() (its setter went away);
  - a FILE, or any other .c file of a module that calls
    remus_state_change(), assigns `->state =` or `.state =` outside a
    function named set_state().
Function bodies are found by the house layout: a definition starts at
column 0 and its body ends with a `}` at column 0.
"""
import os
import re
import sys
import tempfile

EXEMPT = {"tests", "bench", "vm-images", "build", "docs"}
ASSIGN = re.compile(r"(->|\.)state\s*=(?!=)")
DEFINITION = re.compile(r"^[A-Za-z_][\w \t\*]*?\b(\w+)\s*\(")
SETTER = "set_state"


def strip_comments(text):
    """Blanks comments and string literals, keeping line numbers."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('"' + " " * (min(j, n) - i - 1) + '"')
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def check_file(path, name, must_have_setter):
    text = strip_comments(open(path, encoding="utf-8").read())
    problems = []
    if must_have_setter and "remus_state_change(" not in text:
        problems.append(f"{name}: does not call remus_state_change(): its state "
                        f"changes are not checked")
    func = None
    for no, line in enumerate(text.splitlines(), 1):
        if line.startswith("}"):
            func = None
            continue
        m = DEFINITION.match(line)
        if m and not line.rstrip().endswith(";"):
            func = m.group(1)
        if ASSIGN.search(line) and func != SETTER:
            problems.append(f"{name}:{no}: assigns the state outside {SETTER}() "
                            f"(in {func or 'file scope'}()): use the setter")
    return problems


def check(src, files):
    problems = []
    listed = set(files)
    for f in files:
        p = os.path.join(src, f)
        if not os.path.isfile(p):
            problems.append(f"{f}: no such file")
            continue
        problems += check_file(p, f, True)
    for top in sorted(os.listdir(src)):
        d = os.path.join(src, top)
        if top in EXEMPT or top.startswith(".") or not os.path.isdir(d):
            continue
        if os.path.exists(os.path.join(d, "CMakeCache.txt")):
            continue  # a build directory inside the tree
        for root, _, names in os.walk(d):
            for n in sorted(names):
                rel = os.path.relpath(os.path.join(root, n), src)
                if not n.endswith(".c") or rel in listed:
                    continue
                text = open(os.path.join(src, rel), encoding="utf-8").read()
                if "remus_state_change(" in strip_comments(text):
                    problems += check_file(os.path.join(src, rel), rel, True)
    return problems


GOOD = """// SPDX
/* a comment that says e->state = X */
static int set_state(struct m *e, int to, const char *why)
{
	if (remus_state_change(&machine, e->state, to, why) == 0) {
		e->state = to;
		return 0;
	}
	return -1;
}

static void step(struct m *e)
{
	if (e->state == 1)
		set_state(e, 2, "step");
	log("e->state = %d", e->state);
}
"""
BAD = GOOD.replace('set_state(e, 2, "step");', "e->state = 2;")
UNCHECKED = GOOD.replace("remus_state_change", "allowed")
HIDDEN = GOOD.replace("static void step", "static void other(void)\n{\n\tx.state = 3;\n}\n\n"
                      "static void step")


def selftest():
    fails = 0
    with tempfile.TemporaryDirectory() as t:
        os.makedirs(os.path.join(t, "mod"))
        cases = [("good", GOOD, []), ("bad", BAD, ["mod/m.c:15: assigns the state outside set_state() (in step())"]),
                 ("unchecked", UNCHECKED, ["does not call remus_state_change()"]),
                 ("hidden", HIDDEN, ["assigns the state outside set_state() (in other())"])]
        for name, text, want in cases:
            with open(os.path.join(t, "mod", "m.c"), "w", encoding="utf-8") as f:
                f.write(text)
            got = check(t, ["mod/m.c"])
            ok = len(got) == len(want) and all(any(w in g for g in got) for w in want)
            print(f"{'ok' if ok else 'FAILED'}: {name}: {got}")
            fails += not ok
        # An unlisted file that calls remus_state_change() is checked too.
        with open(os.path.join(t, "mod", "m.c"), "w", encoding="utf-8") as f:
            f.write(GOOD)
        with open(os.path.join(t, "mod", "n.c"), "w", encoding="utf-8") as f:
            f.write(BAD)
        got = check(t, ["mod/m.c"])
        ok = len(got) == 1 and "mod/n.c:15" in got[0]
        print(f"{'ok' if ok else 'FAILED'}: unlisted: {got}")
        fails += not ok
    print(f"state setter selftest: {5 - fails} passed, {fails} failed")
    return 1 if fails else 0


def main(argv):
    if argv[1:] == ["--selftest"]:
        return selftest()
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(argv[1], argv[2:])
    for p in problems:
        print(p)
    print(f"state setters: {len(problems)} problem(s) in {len(argv) - 2} machine file(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
