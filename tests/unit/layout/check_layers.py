#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks the module layering of the tree against docs/ARCHITECTURE.md.

    check_layers.py SOURCE_DIR

The table under "## Module layers" in SOURCE_DIR/docs/ARCHITECTURE.md says,
for every module (a top-level folder with C code), which other modules its
files may include.  This fails (exit 1, one line per problem) when:
  - a file of module A includes "B/..." and B is not in A's row;
  - a top-level folder with .c or .h files has no row (a new module must
    say where it sits);
  - a row names a module that does not exist, or the rows form a cycle;
  - a module's layer number is below that of a module it may include.
tests/, bench/ and vm-images/ are not modules and may include anything.
"""
import os
import re
import sys

EXEMPT = {"tests", "bench", "vm-images", "build", "docs"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"', re.M)


def parse_table(doc):
    text = open(doc, encoding="utf-8").read()
    m = re.search(r"^## Module layers.*?$(.*?)(?=^## )", text, re.M | re.S)
    if not m:
        raise SystemExit(f"{doc}: no '## Module layers' section")
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].isdigit():
            continue
        mod = cells[1].strip("`")
        allowed = set(re.findall(r"`([^`]+)`", cells[3]))
        rows[mod] = (int(cells[0]), allowed)
    if not rows:
        raise SystemExit(f"{doc}: the Module layers table has no rows")
    return rows


def find_cycle(rows):
    state = {}

    def visit(n, path):
        state[n] = 1
        for d in sorted(rows.get(n, (0, set()))[1]):
            if state.get(d) == 1:
                return path + [n, d]
            if d in rows and not state.get(d):
                c = visit(d, path + [n])
                if c:
                    return c
        state[n] = 2
        return None

    for n in sorted(rows):
        if not state.get(n):
            c = visit(n, [])
            if c:
                return c
    return None


def main(top):
    rows = parse_table(os.path.join(top, "docs", "ARCHITECTURE.md"))
    problems = []
    modules = set()
    for d in sorted(os.listdir(top)):
        p = os.path.join(top, d)
        if d.startswith(".") or d in EXEMPT or not os.path.isdir(p):
            continue
        if os.path.exists(os.path.join(p, "CMakeCache.txt")):
            continue  # a build tree (build-asan, ...), not a module
        has_c = any(f.endswith((".c", ".h"))
                    for _, _, fs in os.walk(p) for f in fs)
        if has_c:
            modules.add(d)
    for mod in sorted(modules - rows.keys()):
        problems.append(f"{mod}/: a folder with C code that docs/ARCHITECTURE.md's "
                        "Module layers table does not list; add its row")
    for mod, (layer, allowed) in sorted(rows.items()):
        for dep in sorted(allowed):
            if dep not in rows:
                problems.append(f"table: {mod} may include '{dep}', which is no module")
            elif rows[dep][0] > layer:
                problems.append(f"table: {mod} (layer {layer}) may include {dep} "
                                f"(layer {rows[dep][0]}), a module above it")
    cycle = find_cycle(rows)
    if cycle:
        problems.append("table: the modules form a cycle: " + " -> ".join(cycle))
    for mod in sorted(modules & rows.keys()):
        allowed = rows[mod][1] | {mod}
        for root, _, files in os.walk(os.path.join(top, mod)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, f)
                text = open(path, encoding="utf-8", errors="replace").read()
                for m in INCLUDE.finditer(text):
                    dep = m.group(1)
                    if dep in rows and dep not in allowed:
                        line = text.count("\n", 0, m.start()) + 1
                        rel = os.path.relpath(path, top)
                        problems.append(f"{rel}:{line}: includes {m.group(0).split()[-1]}"
                                        f", but {mod} may include only "
                                        f"{' '.join(sorted(rows[mod][1])) or 'nothing'}")
    for p in problems:
        print(p)
    print(f"layers: {len(modules)} modules, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: check_layers.py SOURCE_DIR")
    sys.exit(main(sys.argv[1]))
