#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Writes the seed corpus of fuzz_dirty: the requests a mount, an open, a
# few writes and reads, fsync and close produce, in the target's framing
# (u16 little-endian length, then the request).  Struct layouts from
# <linux/fuse.h> (protocol 7.38).
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OP = dict(LOOKUP=1, FORGET=2, GETATTR=3, SETATTR=4, OPEN=14, READ=15,
          WRITE=16, STATFS=17, RELEASE=18, FSYNC=20, GETXATTR=22, FLUSH=25,
          INIT=26, INTERRUPT=36)


def req(op, nodeid, body, unique=7):
    return struct.pack('<IIQQIIIHH', 40 + len(body), OP[op], unique, nodeid,
                       0, 0, 0, 0, 0) + body


def frame(*reqs):
    out = b'\x00'  # byte 0 even: the target sends INIT itself
    for r in reqs:
        out += struct.pack('<H', len(r)) + r
    return out


def write(off, data):
    return req('WRITE', 2, struct.pack('<QQIIQII', 0, off, len(data), 0, 0,
                                       0, 0) + data)


def read(off, size):
    return req('READ', 2, struct.pack('<QQIIQII', 0, off, size, 0, 0, 0, 0))


seeds = {
    'open-write-read': frame(
        req('LOOKUP', 1, b'guest.ram\0'),
        req('OPEN', 2, struct.pack('<II', 2, 0)),
        write(4096 * 3 - 2, bytes(range(256)) * 20),
        read(4096 * 3, 4096), read(4096 * 63, 1 << 20),
        req('FSYNC', 2, struct.pack('<QII', 0, 0, 0)),
        req('FLUSH', 2, struct.pack('<QIIQ', 0, 0, 0, 0)),
        req('RELEASE', 2, struct.pack('<QIIQ', 0, 0, 0, 0))),
    'attrs': frame(
        req('GETATTR', 1, struct.pack('<IIQ', 0, 0, 0)),
        req('GETATTR', 2, struct.pack('<IIQ', 0, 0, 0)),
        req('SETATTR', 2, struct.pack('<II', 8, 0) + bytes(80)),
        req('STATFS', 1, b''), req('GETXATTR', 2, b'\0' * 8 + b'a\0'),
        req('FORGET', 2, struct.pack('<Q', 1))),
    'bad-writes': frame(
        write(64 * 4096 - 1, b'xy'), write(2**63, b'z'),
        req('WRITE', 2, struct.pack('<QQIIQII', 0, 0, 100, 0, 0, 0, 0)),
        req('LOOKUP', 1, b'guest'), b'\x01\x02'),
    'no-init': b'\x01' + struct.pack('<H', 50) + read(0, 4096)[:50],
}
os.makedirs(os.path.join(HERE, 'corpus'), exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, 'corpus', name), 'wb') as f:
        f.write(data)
