#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Self-tests of remus-chaos-check: hand-made histories.

    test_chaos_check.py CHECKER

A checker that cannot fail proves nothing: each kind of violation has a
small history that must be reported with that kind (and only the expected
kinds), each valid shape (concurrent writes, operations left unknown at a
failover that did or did not take effect, failed writes, a cut last line)
must pass, and malformed histories must be refused with exit 2 and a
message naming the line, never a traceback.  Times are in ms here and
written as microseconds.
"""
import json
import os
import subprocess
import sys
import tempfile

CHECKER = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "../../../chaos/remus-chaos-check")
failures = []


def op(session, kind, key, t0, t1, result="ok", value=None, out=None, counter=None,
       lst=None, final=False):
    o = {"session": session, "op": kind, "key": key, "value": value,
         "invoke_us": t0 * 1000, "complete_us": t1 * 1000, "result": result}
    if out is not None:
        o["out"] = out
    if counter is not None:
        o["counter"] = counter
        o["list"] = lst or []
    if final:
        o["final"] = True
    return o


def run(text, extra=()):
    with tempfile.TemporaryDirectory() as d:
        h = os.path.join(d, "h.jsonl")
        rep = os.path.join(d, "r.json")
        with open(h, "w") as f:
            f.write(text)
        p = subprocess.run([sys.executable, CHECKER, h, "--json", rep, *extra],
                           capture_output=True, text=True, timeout=60)
        r = json.load(open(rep)) if os.path.exists(rep) else None
        return p, r


def lines(ops):
    return "".join(json.dumps(o) + "\n" for o in ops)


def expect(name, ops, kinds, extra=()):
    """kinds: the violation kinds that must be reported (empty: valid)."""
    p, r = run(lines(ops), extra)
    want_rc = 1 if kinds else 0
    if "Traceback" in p.stderr or p.returncode != want_rc or r is None:
        failures.append(f"{name}: exit {p.returncode} (want {want_rc}): {p.stdout}{p.stderr}")
        return None
    got = {k for k, n in r["violation_counts"].items() if n}
    if got != set(kinds):
        failures.append(f"{name}: kinds {sorted(got)}, want {sorted(kinds)}: {p.stdout}")
    print(f"{name}: ok ({', '.join(sorted(got)) or 'valid'})")
    return r


def expect_bad(name, text, needle):
    p, _ = run(text)
    if p.returncode != 2 or "Traceback" in p.stderr or needle not in p.stderr:
        failures.append(f"{name}: exit {p.returncode}, stderr {p.stderr!r} (want 2 and {needle!r})")
    else:
        print(f"{name}: refused ok ({p.stderr.strip()})")


# --- valid histories ----------------------------------------------------------
expect("valid-sequential", [
    op(1, "inc", "a", 0, 1, out=1),
    op(1, "append", "a", 2, 3, value=11, out=1),
    op(1, "read", "a", 4, 5, counter=1, lst=[11]),
    op(2, "inc", "a", 6, 7, out=2),
    op(2, "read", "a", 8, 9, counter=2, lst=[11]),
], [])

# Concurrent: a read overlapping an increment may see it or not, an
# overlapping append may be there or not.
expect("valid-concurrent", [
    op(1, "inc", "a", 0, 10, out=1),
    op(2, "read", "a", 1, 2, counter=0, lst=[]),
    op(3, "read", "a", 3, 4, counter=1, lst=[21]),
    op(4, "append", "a", 2, 12, value=21, out=1),
    op(2, "read", "a", 13, 14, counter=1, lst=[21]),
], [])

# A failover: an increment and an append left unknown that took effect,
# and one of each that did not; a failed write that did nothing.
expect("valid-unknown-at-failover", [
    op(1, "inc", "a", 0, 1, out=1),
    op(1, "inc", "a", 2, 3000, result="unknown"),        # applied
    op(2, "inc", "a", 5, 3000, result="unknown"),        # lost with the epoch
    op(3, "append", "a", 6, 3000, result="unknown", value=31),   # applied
    op(4, "append", "a", 7, 3000, result="unknown", value=41),   # lost
    op(5, "inc", "a", 8, 9, result="fail"),
    op(5, "append", "a", 10, 11, result="fail", value=51),
    op(1, "read", "a", 3100, 3101, counter=2, lst=[31]),
    op(1, "inc", "a", 3102, 3103, out=3),
    op(1, "read", "a", 3200, 3201, counter=3, lst=[31], final=True),
], [])

# Unknown operations that are never observed, and a history with the
# faults file: the window around the fault is measured.
with tempfile.TemporaryDirectory() as d:
    fpath = os.path.join(d, "faults.jsonl")
    with open(fpath, "w") as f:
        f.write(json.dumps({"time_us": 1500 * 1000, "kind": "kill-primary"}) + "\n")
    r = expect("valid-window", [
        op(1, "inc", "a", 0, 1000, out=1),
        op(1, "inc", "a", 1001, 4000, result="unknown"),
        op(2, "read", "a", 1002, 4500, counter=2),
        op(2, "read", "a", 4501, 4600, counter=2),
    ], [], ["--faults", fpath])
    if r:
        f0 = r["faults"][0]
        w = r["unavailability_windows"]
        if f0["unavailable_ms"] != 3500.0 or f0["recovered_after_ms"] != 3000.0 or len(w) != 1:
            failures.append(f"valid-window: measured {f0} {w}")

# A cut last line (a client killed while writing) is not an operation.
p, r = run(lines([op(1, "inc", "a", 0, 1, out=1)]) + '{"session":1,"op":"re')
if p.returncode != 0 or "cut last line" not in p.stderr:
    failures.append(f"cut-last-line: exit {p.returncode}: {p.stderr}")
else:
    print("cut-last-line: ok")

# --- each violation kind ---------------------------------------------------------
expect("lost-increment", [
    op(1, "inc", "a", 0, 1, out=1),
    op(1, "inc", "a", 2, 3, out=2),
    op(2, "read", "a", 4, 5, counter=1),
], ["lost-write", "stale-read"])

expect("lost-increment-no-earlier-read", [
    op(1, "inc", "a", 0, 1, out=1),
    op(2, "read", "a", 4, 5, counter=0),
], ["lost-write", "stale-read"])

expect("lost-append", [
    op(1, "append", "a", 0, 1, value=11, out=1),
    op(1, "append", "a", 2, 3, value=12, out=2),
    op(2, "read", "a", 4, 5, counter=0, lst=[11]),
], ["lost-write", "stale-read"])

expect("stale-read-counter", [
    op(1, "inc", "a", 0, 10, result="unknown"),
    op(2, "read", "a", 1, 2, counter=1),
    op(3, "read", "a", 3, 4, counter=0),
], ["stale-read"])

expect("stale-read-list", [
    op(1, "append", "a", 0, 10, value=11, result="unknown"),
    op(2, "read", "a", 1, 2, counter=0, lst=[11]),
    op(3, "read", "a", 3, 4, counter=0, lst=[]),
], ["stale-read"])

expect("phantom-counter", [
    op(1, "inc", "a", 0, 1, out=1),
    op(2, "read", "a", 2, 3, counter=2),
], ["phantom"])

expect("phantom-value", [
    op(1, "append", "a", 0, 1, value=11, out=1),
    op(2, "read", "a", 2, 3, counter=0, lst=[11, 99]),
], ["phantom"])

expect("phantom-other-key", [
    op(1, "append", "b", 0, 1, value=11, out=1),
    op(2, "read", "a", 2, 3, counter=0, lst=[11]),
], ["phantom"])

expect("phantom-failed-write", [
    op(1, "append", "a", 0, 1, value=11, result="fail"),
    op(2, "read", "a", 2, 3, counter=0, lst=[11]),
], ["phantom"])

expect("phantom-before-write", [
    op(2, "read", "a", 0, 1, counter=0, lst=[11]),
    op(1, "append", "a", 2, 3, value=11, out=1),
], ["phantom"])

# Split brain: two primaries each took an append after [11].
expect("divergence", [
    op(1, "append", "a", 0, 1, value=11, out=1),
    op(1, "append", "a", 2, 3, value=12, out=2, result="unknown"),
    op(2, "append", "a", 2, 3, value=13, out=2, result="unknown"),
    op(3, "read", "a", 4, 5, counter=0, lst=[11, 12]),
    op(4, "read", "a", 4, 5, counter=0, lst=[11, 13]),
], ["divergence"])

# A partition without fencing: sessions 1-2 keep writing to the old primary,
# 5-6 to the new one, both acknowledged, read alternately: split brain.
expect("split-brain", [
    op(1, "append", "a", 0, 1, value=11, out=1),
    op(1, "append", "a", 2, 3, value=12, out=2),
    op(5, "append", "a", 2, 3, value=13, out=2),
    op(2, "read", "a", 4, 5, counter=0, lst=[11, 12]),
    op(6, "read", "a", 6, 7, counter=0, lst=[11, 13]),
    op(1, "append", "a", 8, 9, value=14, out=3),
    op(2, "read", "a", 10, 11, counter=0, lst=[11, 12, 14]),
    op(6, "read", "a", 12, 13, counter=0, lst=[11, 13]),
], ["divergence", "split-brain", "lost-write", "stale-read"])

# The netbuffer-off shape: a branch seen, then rolled back for good and
# written anew; not read alternately, so a rollback, not two primaries.
expect("rollback-not-split-brain", [
    op(1, "append", "a", 0, 1, value=11, out=1),
    op(1, "append", "a", 2, 3, value=12, out=2),
    op(2, "read", "a", 4, 5, counter=0, lst=[11, 12]),
    op(5, "append", "a", 10, 11, value=13, out=2),
    op(6, "read", "a", 12, 13, counter=0, lst=[11, 13]),
    op(2, "read", "a", 14, 15, counter=0, lst=[11, 13]),
], ["divergence", "lost-write"])

# A rollback then new writes: the old acknowledged position is reused.
expect("rollback-reuse", [
    op(1, "append", "a", 0, 1, value=11, out=1),
    op(1, "append", "a", 2, 3, value=12, out=2),
    op(2, "append", "a", 10, 11, value=13, out=2),
    op(2, "read", "a", 12, 13, counter=0, lst=[11, 13]),
], ["lost-write"])

# An acknowledged position that later reads do not give the value.
expect("position-moved", [
    op(1, "append", "a", 0, 1, value=11, out=1),
    op(1, "append", "a", 2, 3, value=12, out=2),
    op(2, "append", "a", 2, 4, value=13, out=2),
    op(2, "read", "a", 12, 13, counter=0, lst=[11, 13, 12]),
], ["divergence"])

expect("duplicate", [
    op(1, "append", "a", 0, 1, value=11, out=1),
    op(2, "read", "a", 2, 3, counter=0, lst=[11, 11]),
], ["duplicate"])

# --- the HTML report ------------------------------------------------------------
# Written as XHTML so that a strict XML parser checks it; self-contained (no
# script, link, image or external reference, ASCII only); a violation is
# highlighted in the timeline and in the tables, a valid history has no
# highlight at all.  Violations go to the fault they were seen after.
import xml.etree.ElementTree as ET

XH = "{http://www.w3.org/1999/xhtml}"
SV = "{http://www.w3.org/2000/svg}"


def html_of(ops, faults=None, extra=()):
    with tempfile.TemporaryDirectory() as d:
        h, out, rep = (os.path.join(d, n) for n in ("h.jsonl", "r.html", "r.json"))
        with open(h, "w") as f:
            f.write(lines(ops))
        args = [sys.executable, CHECKER, h, "--html", out, "--json", rep, *extra]
        if faults:
            fp = os.path.join(d, "f.jsonl")
            with open(fp, "w") as f:
                f.write(lines(faults))
            args += ["--faults", fp]
        p = subprocess.run(args, capture_output=True, text=True, timeout=60)
        data = open(out, "rb").read() if os.path.exists(out) else b""
        r = json.load(open(rep)) if os.path.exists(rep) else None
        return p, data, r


def classes(e):
    return (e.get("class") or "").split()


def check_html(name, data):
    """Strictly parsed and self-contained; returns the root or None."""
    try:
        data.decode("ascii")
        root = ET.fromstring(data)
    except (UnicodeDecodeError, ET.ParseError) as e:
        failures.append(f"{name}: not ASCII XHTML: {e}")
        return None
    bad = []
    if root.tag != XH + "html" or root.find(XH + "head/" + XH + "title") is None \
            or root.find(XH + "body") is None:
        bad.append(f"root {root.tag}: not html with head/title and body")
    for e in root.iter():
        local = e.tag.split("}")[-1]
        if local in ("script", "link", "img", "iframe", "object", "embed", "image", "use"):
            bad.append(f"<{local}> element")
        for k, v in e.attrib.items():
            if k.split("}")[-1] in ("href", "src") and not v.startswith("#"):
                bad.append(f"external reference {k}={v}")
            if k == "style" or "url(" in v:
                bad.append(f"attribute {k}={v}")
    if b"url(" in data or b"@import" in data:
        bad.append("url( or @import in the style")
    if len(root.findall(".//" + SV + "svg")) != 1:
        bad.append("not exactly one inline svg")
    if bad:
        failures.append(f"{name}: {'; '.join(bad)}")
        return None
    return root


F0 = 10 ** 12 // 1000    # the histories start at a realistic epoch time (ms)
viol_ops = [
    op(1, "append", "k<&\u00e9>", F0 + 0, F0 + 1, value=11, out=1),
    op(1, "append", "k<&\u00e9>", F0 + 2, F0 + 3, value=12, out=2),
    op(2, "read", "k<&\u00e9>", F0 + 500, F0 + 501, counter=0, lst=[11, 12]),
    op(1, "inc", "b", F0 + 600, F0 + 601, out=1),
    op(2, "read", "k<&\u00e9>", F0 + 4000, F0 + 4005, counter=0, lst=[11]),
    op(2, "read", "b", F0 + 4010, F0 + 4011, counter=1),
]
two_faults = [{"time_us": (F0 + 300) * 1000, "kind": "kill-primary", "n": 1,
               "detection_ms": 2000, "failover_ms": 30},
              {"time_us": (F0 + 1000) * 1000, "kind": "kill-remusd", "n": 2,
               "detection_ms": 5, "failover_ms": 25}]
p, data, r = html_of(viol_ops, two_faults)
root = check_html("html-violation", data) if p.returncode == 1 else None
if p.returncode != 1:
    failures.append(f"html-violation: exit {p.returncode}: {p.stderr}")
if root is not None:
    svg = root.find(".//" + SV + "svg")
    marks = [e for e in svg.iter() if "violation" in classes(e)]
    rows = [e for e in root.iter(XH + "tr") if "violation" in classes(e)]
    vt = root.find(".//" + XH + "table[@class='violations']")
    ft = root.find(".//" + XH + "table[@class='faults']")
    nk = len(r["violations"])
    frows = ft.findall(XH + "tr") if ft is not None else []
    verdict = root.find(".//" + XH + "p[@class='verdict fail']")
    if nk != 2 or len([e for e in marks if e.tag == SV + "rect"]) != nk:
        failures.append(f"html-violation: {nk} violations, {len(marks)} marks in the svg")
    elif vt is None or len([e for e in vt if "violation" in classes(e)]) != nk:
        failures.append("html-violation: violations table rows not highlighted")
    elif len(frows) != 3 or "violation" in classes(frows[1]) or \
            "violation" not in classes(frows[2]):
        failures.append("html-violation: the violations are not on fault 2's row alone")
    elif [f["violations"] for f in r["faults"]] != [0, 2] or \
            r["violations_before_faults"] != 0:
        failures.append(f"html-violation: attributed {[f['violations'] for f in r['faults']]}")
    elif verdict is None:
        failures.append("html-violation: no failing verdict")
    elif len([e for e in svg.iter(SV + "line") if "fault" in classes(e)]) != 2 or \
            len([e for e in svg.iter(SV + "line") if "failover" in classes(e)]) != 2:
        failures.append("html-violation: faults and failovers not marked")
    elif "k<&\u00e9>" not in "".join(vt.itertext()):
        failures.append("html-violation: the key is not shown as written")
    elif "line 5: session 2 read" not in "".join(vt.itertext()):
        failures.append("html-violation: the operations involved are not listed")
    elif not any(e.get("class") == "throughput" and len(e.get("points").split()) >= 5
                 for e in svg.iter(SV + "polyline")):
        failures.append("html-violation: no throughput curve")
    elif not rows:
        failures.append("html-violation: no highlighted row")
    else:
        print(f"html-violation: ok ({nk} violations highlighted, after fault 2)")
    # The same history with the run's report (remus-chaos's report.json):
    # its verdict and per-fault figures are shown, the history not judged
    # again; a malformed one is refused with exit 2.
    with tempfile.TemporaryDirectory() as d:
        h, rp, out = (os.path.join(d, n) for n in ("h.jsonl", "report.json", "r.html"))
        open(h, "w").write(lines(viol_ops))
        faults = [dict(f, reprotect_ms=4321, violations=v["violations"],
                       violation_refs=v["violation_refs"])
                  for f, v in zip(two_faults, r["faults"])]
        run_rep = {"seed": 77, "config": {"netbuffer": "qemu", "interval": 300}, "ok": False,
                   "verdict": "2 violations", "schedule": ["kill-primary", "kill-remusd"],
                   "faults": faults, "totals": {"faults": 2, "failovers": 2, "epochs": 99},
                   "check": r}
        json.dump(run_rep, open(rp, "w"))
        p = subprocess.run([sys.executable, CHECKER, h, "--report", rp, "--html", out,
                            "--quiet"], capture_output=True, text=True, timeout=60)
        root2 = check_html("html-run-report", open(out, "rb").read()) \
            if os.path.exists(out) else None
        text = "".join(root2.itertext()) if root2 is not None else ""
        if p.returncode != 1 or "seed 77" not in text or "4321" not in text:
            failures.append(f"html-run-report: exit {p.returncode} {p.stderr}")
        else:
            print("html-run-report: ok")
        for what, broken in (("no check", {"seed": 1}), ("bad check", dict(run_rep, check={
                **r, "violations": [{"kind": "x"}]})), ("not json", None)):
            if broken is None:
                open(rp, "w").write("{oops")
            else:
                json.dump(broken, open(rp, "w"))
            p = subprocess.run([sys.executable, CHECKER, h, "--report", rp, "--html", out],
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 2 or "Traceback" in p.stderr or "report.json" not in p.stderr:
                failures.append(f"html-run-report {what}: exit {p.returncode} {p.stderr}")
            else:
                print(f"html-run-report {what}: refused ok")

valid_ops = [op(1, "inc", "a", F0 + i * 50, F0 + i * 50 + 3, out=i + 1) for i in range(40)] + \
    [op(2, "read", "a", F0 + 2100, F0 + 2101, counter=40, lst=[])]
p, data, r = html_of(valid_ops, two_faults[:1])
root = check_html("html-valid", data) if p.returncode == 0 else None
if p.returncode != 0:
    failures.append(f"html-valid: exit {p.returncode}: {p.stderr}")
if root is not None:
    hl = [e for e in root.iter() if any("violation" in c for c in classes(e))]
    if hl or root.find(".//" + XH + "p[@class='verdict pass']") is None:
        failures.append(f"html-valid: {len(hl)} highlighted elements in a valid history")
    else:
        print("html-valid: ok (nothing highlighted)")

# --- malformed histories -------------------------------------------------------
good = json.dumps(op(1, "inc", "a", 0, 1, out=1))
expect_bad("empty", "", "no operation")
expect_bad("not-json", good + "\n{oops\n" + good + "\n", "line 2")
expect_bad("not-object", "[1,2]\n" + good + "\n", "line 1")
expect_bad("bad-op", good.replace('"inc"', '"dec"') + "\n" + good + "\n", "\"op\"")
expect_bad("time-backwards", json.dumps(op(1, "inc", "a", 5, 1, out=1)) + "\n" + good + "\n",
           "complete_us")
expect_bad("bool-as-int", good.replace('"session": 1', '"session": true') + "\n" + good + "\n",
           "session")
expect_bad("read-without-list", json.dumps(
    {**op(1, "read", "a", 0, 1, counter=0), "list": "x"}) + "\n" + good + "\n", "list")
expect_bad("deep", "[" * 100000 + "\n" + good + "\n", "line 1")
expect_bad("twice-appended", lines([op(1, "append", "a", 0, 1, value=5, out=1),
                                     op(2, "append", "a", 0, 1, value=5, out=2)]),
           "appended twice")
expect_bad("binary", "\xff\xfe\n" + good + "\n", "line 1")

if failures:
    print("\n".join(["FAILED:"] + failures))
    sys.exit(1)
print("remus-chaos-check self-tests: all passed")
