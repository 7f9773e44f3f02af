#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The chaos suite's output files are replaced atomically, mode 0644.

    test_chaos_report_files.py REMUS_CHAOS REMUS_CHAOS_CHECK

remus-chaos writes report.json, report.txt, history.jsonl and lab.json,
remus-chaos-check its --json and --html reports; both through their
write_atomic (a temporary file in the same directory, fsync, rename,
fsync of the directory).  For each program's write_atomic, and for the
checker's --json and --html end to end:

  - an existing file of mode 0600 (or 0666) is replaced by one of mode
    0644, whatever the umask (umask 0 and 077 here);
  - a symlink at the path is replaced by a regular file, its target
    left untouched (a link planted in a shared output directory cannot
    redirect the write);
  - a process that dies in the middle of the write (os._exit in the
    fsync before the rename) leaves the old report whole, and an error
    there (EIO) leaves it too, with no temporary file behind.

Each of these failed with the open(path, "w") the programs used before.
No QEMU, no root.
"""
import importlib.machinery
import importlib.util
import json
import os
import stat
import subprocess
import sys
import tempfile

CHAOS, CHECKER = sys.argv[1], sys.argv[2]
failures = []


def load(path, name):
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def check(name, cond, why):
    if cond:
        print(f"{name}: ok")
    else:
        failures.append(f"{name}: {why}")


def leftovers(d, keep):
    return sorted(set(os.listdir(d)) - set(keep))


def cases(prog, path):
    mod = load(path, prog.replace("-", "_"))
    for umask in (0, 0o077):
        old = os.umask(umask)
        try:
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "report.json")
                with open(p, "w") as f:
                    f.write("old\n")
                os.chmod(p, 0o600)
                mod.write_atomic(p, b"new\n")
                check(f"{prog} umask {umask:03o} over a 0600 file", mode(p) == 0o644 and
                      open(p).read() == "new\n", f"mode {mode(p):o}, text {open(p).read()!r}")
                os.chmod(p, 0o666)
                mod.write_atomic(p, b"newer\n")
                check(f"{prog} umask {umask:03o} over a 0666 file", mode(p) == 0o644,
                      f"mode {mode(p):o}")
                q = os.path.join(d, "fresh.txt")
                mod.write_atomic(q, b"x")
                check(f"{prog} umask {umask:03o} new file", mode(q) == 0o644, f"mode {mode(q):o}")
                check(f"{prog} umask {umask:03o} no temporary file",
                      not leftovers(d, ["report.json", "fresh.txt"]), f"left {leftovers(d, [])}")
        finally:
            os.umask(old)

    with tempfile.TemporaryDirectory() as d:
        victim = os.path.join(d, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        os.chmod(victim, 0o600)
        p = os.path.join(d, "report.txt")
        os.symlink(victim, p)
        mod.write_atomic(p, b"report\n")
        check(f"{prog} symlink not followed",
              not os.path.islink(p) and open(p).read() == "report\n" and
              open(victim).read() == "precious\n" and mode(victim) == 0o600,
              f"link {os.path.islink(p)}, victim {open(victim).read()!r} mode {mode(victim):o}")

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "report.json")
        with open(p, "w") as f:
            f.write('{"old": true}\n')
        # Killed in the middle: the data written, not yet renamed.
        code = ("import importlib.machinery, importlib.util, os, sys\n"
                "l = importlib.machinery.SourceFileLoader('m', sys.argv[1])\n"
                "s = importlib.util.spec_from_loader('m', l)\n"
                "m = importlib.util.module_from_spec(s); l.exec_module(m)\n"
                "m.os.fsync = lambda fd: os._exit(9)\n"
                "m.write_atomic(sys.argv[2], b'{\"new\": tr')\n")
        r = subprocess.run([sys.executable, "-c", code, path, p], timeout=60)
        check(f"{prog} killed mid-write keeps the old report",
              r.returncode == 9 and open(p).read() == '{"old": true}\n',
              f"exit {r.returncode}, report {open(p).read()!r}")
        # An error there: the old report, and nothing else, is left.
        for f in leftovers(d, ["report.json"]):
            os.unlink(os.path.join(d, f))
        real = mod.os.fsync

        def eio(fd):
            raise OSError(5, "Input/output error")
        mod.os.fsync = eio
        try:
            mod.write_atomic(p, b"new\n")
            failures.append(f"{prog} an fsync error was not raised")
        except OSError:
            pass
        finally:
            mod.os.fsync = real
        check(f"{prog} an error mid-write keeps the old report",
              open(p).read() == '{"old": true}\n' and not leftovers(d, ["report.json"]),
              f"report {open(p).read()!r}, left {leftovers(d, ['report.json'])}")


cases("remus-chaos", CHAOS)
cases("remus-chaos-check", CHECKER)

# The checker end to end: --json and --html over a 0600 file and a symlink.
with tempfile.TemporaryDirectory() as d:
    h = os.path.join(d, "h.jsonl")
    with open(h, "w") as f:
        f.write(json.dumps({"session": 1, "op": "inc", "key": "a", "value": None,
                            "invoke_us": 0, "complete_us": 1000, "result": "ok",
                            "out": 1}) + "\n")
    js, html, victim = (os.path.join(d, n) for n in ("check.json", "report.html", "victim"))
    with open(js, "w") as f:
        f.write("old")
    os.chmod(js, 0o600)
    with open(victim, "w") as f:
        f.write("precious\n")
    os.symlink(victim, html)
    p = subprocess.run([sys.executable, CHECKER, h, "--json", js, "--html", html, "--quiet"],
                       capture_output=True, text=True, timeout=60)
    ok = p.returncode == 0 and mode(js) == 0o644 and json.load(open(js))["valid"] is True \
        and not os.path.islink(html) and mode(html) == 0o644 \
        and open(html, "rb").read().startswith(b"<") and open(victim).read() == "precious\n"
    check("remus-chaos-check --json over 0600, --html over a symlink", ok,
          f"exit {p.returncode} {p.stderr}, json mode {mode(js):o}, html link "
          f"{os.path.islink(html)}, victim {open(victim).read()!r}")
    # A directory it cannot write to: refused with a message, no traceback.
    p = subprocess.run([sys.executable, CHECKER, h, "--json", os.path.join(d, "no", "r.json")],
                       capture_output=True, text=True, timeout=60)
    check("remus-chaos-check unwritable --json", p.returncode == 2 and "Traceback" not in
          p.stderr and "cannot write" in p.stderr, f"exit {p.returncode}: {p.stderr}")

if failures:
    print("\n".join(["FAILED:"] + failures))
    sys.exit(1)
print("chaos report files: all passed")
