#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""test_chaos_fsck.py REMUS_CHAOS KVSTORE

remus-chaos fsck, the disk workload's after-run check (the run's
disk_check does the same on the survivor's image), on ext4 images made
here with mkfs.ext4 and debugfs (no root, no QEMU): a clean file system
holding a valid kvstore log passes with its records counted; the same
image with its metadata corrupted (an inode's link count, a directory
block zeroed), or with a record of the log corrupted, or without the log
file, must fail; --fs none checks a bare log.  Each corrupted image must
be rejected, or the checker could not tell."""
import os
import shutil
import subprocess
import sys
import tempfile

chaos, kvstore = sys.argv[1], sys.argv[2]
REC = 4096


def fnv1a(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def record(seq, op, key, value, result):
    """A kvstore log record (vm-images/guest/kvstore.c's format)."""
    b = bytearray(REC)
    b[0:8] = b"KVREC001"
    for off, v in ((8, seq), (16, op), (24, value), (32, result)):
        b[off:off + 8] = v.to_bytes(8, "little")
    b[40:40 + len(key)] = key.encode()
    b[REC - 8:] = fnv1a(bytes(b[:REC - 8])).to_bytes(8, "little")
    return bytes(b)


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def fsck(img, *opts):
    p = run(chaos, "fsck", img, "--kvstore", kvstore, *opts)
    return p.returncode, (p.stdout + p.stderr).strip()


fails = []


def expect(what, got, rc, needle):
    code, out = got
    if code != rc or needle not in out:
        fails.append(f"{what}: exit {code} (want {rc}), output {out!r} (want {needle!r})")
    else:
        print(f"ok: {what}: {out[:160]}")


if not shutil.which("mkfs.ext4") or not shutil.which("debugfs"):
    print("test_chaos_fsck: no mkfs.ext4/debugfs (e2fsprogs)", file=sys.stderr)
    sys.exit(1)
T = tempfile.mkdtemp(prefix="test_chaos_fsck.")
try:
    log = os.path.join(T, "log")
    with open(log, "wb") as f:
        f.write(record(1, 1, "k0", 0, 1) + record(2, 2, "k1", 7, 1) +
                record(3, 1, "k0", 0, 2) + bytes(8 * REC))
    good = os.path.join(T, "good.img")
    with open(good, "wb") as f:
        f.truncate(16 << 20)
    for cmd in (["mkfs.ext4", "-q", "-F", good],
                ["debugfs", "-w", "-R", f"write {log} kvstore.log", good],
                ["debugfs", "-w", "-R", "mkdir d", good]):
        p = run(*cmd)
        if p.returncode != 0:
            sys.exit(f"{cmd}: {p.stderr}")
    expect("clean ext4 with a valid log", fsck(good), 0, "ext4 clean")
    expect("its records counted", fsck(good), 0, "3 records")

    def corrupt(name, *debugfs):
        img = os.path.join(T, name)
        shutil.copyfile(good, img)
        for req in debugfs:
            p = run("debugfs", "-w", "-R", req, img)
            if p.returncode != 0:
                sys.exit(f"debugfs {req}: {p.stderr}")
        return img

    expect("an inode's link count wrong",
           fsck(corrupt("links.img", "set_inode_field /kvstore.log links_count 5")), 1,
           "not clean")
    expect("a directory's block zeroed",
           fsck(corrupt("dir.img", "zap_block -f /d 0")), 1, "not clean")
    bad = os.path.join(T, "badlog")
    with open(log, "rb") as f:
        data = bytearray(f.read())
    data[REC + 30] ^= 0xFF     # record 2's result, under its checksum
    with open(bad, "wb") as f:
        f.write(data)
    expect("a record of the log corrupted",
           fsck(corrupt("rec.img", "rm kvstore.log", f"write {bad} kvstore.log")), 1,
           "DISK CHECK FAILED")
    expect("no log in the file system", fsck(corrupt("nolog.img", "rm kvstore.log")), 1,
           "DISK CHECK FAILED")
    expect("--fs none: a bare log", fsck(log, "--fs", "none"), 0, "3 records")
    expect("--fs none: a bare corrupted log", fsck(bad, "--fs", "none"), 1,
           "DISK CHECK FAILED")
    expect("not a file", fsck(os.path.join(T, "missing.img")), 2, "no such file")
finally:
    shutil.rmtree(T, ignore_errors=True)
if fails:
    print("test_chaos_fsck: FAIL:\n  " + "\n  ".join(fails), file=sys.stderr)
    sys.exit(1)
print("test_chaos_fsck: ok")
