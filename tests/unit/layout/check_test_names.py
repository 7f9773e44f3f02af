#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks that every test is named after the file that defines it.

    check_test_names.py CTEST BUILD_DIR
    check_test_names.py --selftest

Reads the tests of BUILD_DIR (ctest --show-only=json-v1) and fails (exit 1,
one line per test) when a test's name is neither the stem of the file it
runs nor that stem followed by "-VARIANT" (tests/README.md, "Names").  The
file is the command itself (a script, or a program built from STEM.c), or
the script an interpreter runs (python3 SCRIPT), also behind env VAR=VALUE.  Fixtures that only build
something (cmake --build, named ...-build) are exempt.
"""
import json
import os
import subprocess
import sys

INTERPRETERS = ("python", "python3", "bash", "sh")


def stem(path):
    base = os.path.basename(path)
    for ext in (".sh", ".py"):
        if base.endswith(ext):
            return base[: -len(ext)]
    return base


def problems(tests):
    out = []
    for t in tests:
        name, cmd = t["name"], t.get("command") or []
        if not cmd:
            out.append(f"{name}: no command")
            continue
        prog = cmd[0]
        if os.path.basename(prog).startswith("cmake") and name.endswith("-build"):
            continue
        # env VAR=VALUE... COMMAND: the file is COMMAND's.
        if os.path.basename(prog) == "env":
            rest = [a for a in cmd[1:] if "=" not in a]
            cmd = rest or cmd
            prog = cmd[0]
        if os.path.basename(prog).rstrip("0123456789.") in INTERPRETERS and len(cmd) > 1:
            prog = cmd[1]
        s = stem(prog)
        if name != s and not name.startswith(s + "-"):
            out.append(f"{name}: runs {prog}; name it {s} or {s}-VARIANT, or rename the file")
    return out


def selftest():
    """The check must be able to fail: good names pass, each bad one is
    reported."""
    good = [
        {"name": "test_qmp", "command": ["/b/tests/unit/qmp/test_qmp"]},
        {"name": "failover-tick-300", "command": ["/s/failover/failover.sh", "tick", "300"]},
        {"name": "check_layers", "command": ["/usr/bin/python3", "/s/check_layers.py", "/s"]},
        {"name": "fuzz_nbd-replay", "command": ["/b/fuzz_nbd", "/s/corpus"]},
        {"name": "vm-images-build", "command": ["/usr/bin/cmake", "--build", "/b"]},
        {"name": "failover-v2-dirty-1g",
         "command": ["/usr/bin/env", "REMUS_V2_MEM=1024", "/s/failover-v2.sh", "dirty"]},
    ]
    bad = [
        {"name": "engine-failover-tick-300", "command": ["/s/failover/failover.sh", "tick"]},
        {"name": "layout-layers", "command": ["/usr/bin/python3", "/s/check_layers.py"]},
        {"name": "test_qmpx", "command": ["/b/test_qmp"]},
        {"name": "netbuffer-qemu", "command": ["/b/test_netbuffer_qemu", "user"]},
        {"name": "v2-dirty", "command": ["/usr/bin/env", "X=1", "/s/failover-v2.sh"]},
    ]
    ok = not problems(good) and len(problems(bad)) == len(bad)
    print("test names selftest: " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--selftest"]:
        return selftest()
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ctest, build = sys.argv[1], sys.argv[2]
    js = subprocess.run([ctest, "--test-dir", build, "--show-only=json-v1"],
                        check=True, capture_output=True, text=True).stdout
    tests = json.loads(js)["tests"]
    bad = problems(tests)
    for line in bad:
        print(line)
    print(f"test names: {len(tests)} tests, {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
