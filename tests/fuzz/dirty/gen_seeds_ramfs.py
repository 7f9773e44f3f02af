#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Writes the seed corpus of fuzz_ramfs (corpus_ramfs/): what libvirt and
# QEMU make the kernel send to remusd ramfs (mkdir, chown, create, size,
# writes, reads, readdir, unlink, forget, rmdir), in the target's framing
# (byte 0 flags, then u16 little-endian length + request), and control
# messages.  Struct layouts from <linux/fuse.h> (protocol 7.38).
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_ramfs')
OP = dict(LOOKUP=1, FORGET=2, GETATTR=3, SETATTR=4, MKNOD=8, MKDIR=9,
          UNLINK=10, RMDIR=11, OPEN=14, READ=15, WRITE=16, STATFS=17,
          RELEASE=18, FSYNC=20, SETXATTR=21, GETXATTR=22, FLUSH=25, INIT=26,
          OPENDIR=27, READDIR=28, RELEASEDIR=29, ACCESS=34, CREATE=35,
          INTERRUPT=36, BATCH_FORGET=42)


def req(op, nodeid, body, uid=0):
    return struct.pack('<IIQQIIIHH', 40 + len(body), OP[op], 7, nodeid,
                       uid, uid, 0, 0, 0) + body


def frame(*reqs, flags=0):
    out = bytes([flags])
    for r in reqs:
        out += struct.pack('<H', len(r)) + r
    return out


def setattr(node, valid, size=0, mode=0, uid=0):
    # valid padding fh size lock_owner atime mtime ctime atimensec
    # mtimensec ctimensec mode unused4 uid gid unused5
    return req('SETATTR', node, struct.pack('<IIQQQQQQIIIIIIII', valid, 0, 0,
                                            size, 0, 0, 0, 0, 0, 0, 0, mode,
                                            0, uid, uid, 0))


def rw(op, node, off, data=b'', size=0):
    return req(op, node, struct.pack('<QQIIQII', 0, off, size or len(data),
                                     0, 0, 0, 0) + data)


libvirt = [
    req('MKDIR', 1, struct.pack('<II', 0o755, 0o22) + b'1-web1\0'),
    setattr(2, 2 | 4 | 1, mode=0o750, uid=64055),   # FATTR_MODE|UID|GID
    req('SETXATTR', 2, struct.pack('<IIII', 2, 0, 0, 0) + b'a\0b\0'),
    req('CREATE', 2, struct.pack('<IIII', 0o102, 0o100600, 0o22, 0)
        + b'pc.ram\0', uid=64055),
    setattr(3, 8, size=64 * 4096),                  # FATTR_SIZE
    rw('WRITE', 3, 4096 * 3 - 2, bytes(range(256)) * 20),
    rw('READ', 3, 4096 * 3, size=4096),
    req('FSYNC', 3, struct.pack('<QII', 0, 0, 0)),
    req('OPENDIR', 2, struct.pack('<II', 0, 0)),
    rw('READDIR', 2, 0, size=4096),
    req('RELEASEDIR', 2, struct.pack('<QIIQ', 0, 0, 0, 0)),
    req('UNLINK', 2, b'pc.ram\0'),
    req('RELEASE', 3, struct.pack('<QIIQ', 0, 0, 0, 0)),
    req('FORGET', 3, struct.pack('<Q', 1)),
    req('RMDIR', 1, b'1-web1\0'),
    req('BATCH_FORGET', 0, struct.pack('<II', 1, 0) + struct.pack('<QQ', 2, 1)),
]
seeds = {
    'libvirt': frame(*libvirt),
    'libvirt-fixlen': frame(*libvirt, flags=2),
    'mknod-lookup-statfs': frame(
        req('MKNOD', 1, struct.pack('<IIII', 0o100600, 0, 0, 0) + b'f\0'),
        req('LOOKUP', 1, b'f\0'), req('GETATTR', 2, bytes(16)),
        req('ACCESS', 2, struct.pack('<II', 4, 0)), req('STATFS', 1, b''),
        req('GETXATTR', 2, bytes(8) + b'a\0'), req('INTERRUPT', 0, bytes(8))),
    'ctl-attach': struct.pack('<IHHQQ', 0x52414d46, 1, 1, 3, 40),
    'ctl-stat': struct.pack('<IHHQQ', 0x52414d46, 1, 2, 0, 0),
    'ctl-reply': struct.pack('<IHHiIQQQ', 0x52414d46, 1, 1, -16, 0, 4096, 0, 0),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(data)
print(f'{len(seeds)} seeds in {OUT}')
