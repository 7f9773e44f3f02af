#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Robustness of remus-chaos-check on malformed history files.

    fuzz_history.py CHECKER CORPUS_DIR [SECONDS]

A history file is input the checker did not write (a client on another
machine, a run cut short, a disk that filled up), so no file may make it
crash: every corpus file and every mutation of one (bytes flipped,
inserted, deleted, lines cut, duplicated or swapped, numbers and strings
replaced by other JSON values) must end in exit 0, 1 (judged, and its
HTML report written and well-formed XML) or 2 (refused, with a message),
never a traceback, within a few seconds.  The
mutations come from a seed printed at the start (REMUS_FUZZ_SEED replays);
SECONDS (default 3, or REMUS_FUZZ_SECONDS) bounds the run.  The checker is
loaded once and called in-process, so thousands of cases run per second.
"""
import importlib.machinery
import importlib.util
import io
import json
import os
import random
import sys
import tempfile
import time
import contextlib
import xml.etree.ElementTree as ET

checker_path, corpus = sys.argv[1], sys.argv[2]
seconds = float(sys.argv[3] if len(sys.argv) > 3 else os.environ.get("REMUS_FUZZ_SECONDS", 3))
seed = int(os.environ.get("REMUS_FUZZ_SEED", random.randrange(1 << 30)))
print(f"fuzz_history: seed {seed} (REMUS_FUZZ_SEED={seed} replays), {seconds} s")
rng = random.Random(seed)

loader = importlib.machinery.SourceFileLoader("remus_chaos_check", checker_path)
spec = importlib.util.spec_from_loader("remus_chaos_check", loader)
check = importlib.util.module_from_spec(spec)
loader.exec_module(check)

seeds = []
for name in sorted(os.listdir(corpus)):
    with open(os.path.join(corpus, name), "rb") as f:
        seeds.append((name, f.read()))
if not seeds:
    sys.exit(f"fuzz_history: no corpus in {corpus}")

VALUES = [b"null", b"true", b"-1", b"0", b"1e400", b"18446744073709551616", b'"x"', b"[]",
          b"{}", b"[[[[1]]]]", b"1.5", b'"\\u0000"', b"NaN", b"Infinity"]


def mutate(data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        k = rng.randrange(7)
        if k == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif k == 1:
            b[rng.randrange(len(b) + 1):0] = bytes([rng.randrange(256)])
        elif k == 2 and b:
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 16)]
        elif k == 3:
            lines = bytes(b).split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            if rng.random() < 0.5:
                lines.insert(i, lines[j])
            b = bytearray(b"\n".join(lines))
        elif k == 4:
            # A number or a string replaced by another JSON value.
            s = bytes(b)
            spots = [i for i in range(len(s)) if s[i:i + 1] in (b":", b",", b"[")]
            if spots:
                i = rng.choice(spots) + 1
                j = i
                while j < len(s) and s[j:j + 1] not in (b",", b"}", b"]"):
                    j += 1
                b = bytearray(s[:i] + rng.choice(VALUES) + s[j:])
        elif k == 5 and b:
            b = b[:rng.randrange(len(b))]
        elif k == 6:
            # A field's value taken from another line (times, keys, results).
            lines = bytes(b).split(b"\n")
            try:
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                a, c = json.loads(lines[i]), json.loads(lines[j])
                f = rng.choice(sorted(a))
                c[f] = a[f]
                lines[j] = json.dumps(c).encode()
                b = bytearray(b"\n".join(lines))
            except (ValueError, IndexError, TypeError, AttributeError):
                pass
    return bytes(b)


def run(data, path):
    with open(path, "wb") as f:
        f.write(data)
    out, err = io.StringIO(), io.StringIO()
    t = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = check.main([path, "--quiet", "--html", path + ".html"])
        except SystemExit as e:   # argparse
            rc = e.code
        except Exception as e:   # noqa: BLE001 - any crash is the finding
            return f"crashed: {type(e).__name__}: {e}"
    if rc not in (0, 1, 2):
        return f"exit {rc}"
    if rc == 2 and "remus-chaos-check:" not in err.getvalue():
        return "refused without a message"
    if rc in (0, 1):
        # A judged history also gets its HTML report, which must parse.
        try:
            with open(path + ".html", "rb") as f:
                ET.fromstring(f.read())
        except (OSError, ET.ParseError) as e:
            return f"an HTML report that does not parse: {e}"
        os.unlink(path + ".html")
    if time.monotonic() - t > 5:
        return f"took {time.monotonic() - t:.1f} s"
    return None


with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "h.jsonl")
    n = 0
    for name, data in seeds:
        bad = run(data, path)
        if bad:
            sys.exit(f"fuzz_history: corpus file {name}: {bad}")
        n += 1
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        name, data = rng.choice(seeds)
        m = mutate(data)
        bad = run(m, path)
        if bad:
            crash = os.path.join(tempfile.gettempdir(), f"fuzz_history-crash-{seed}")
            with open(crash, "wb") as f:
                f.write(m)
            sys.exit(f"fuzz_history: a mutation of {name} {bad}; input saved in {crash}")
        n += 1
print(f"fuzz_history: {n} histories, no crash")
