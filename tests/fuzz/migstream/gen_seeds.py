#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of fuzz_migstream (outputs are committed).

Each seed is: chunk size byte, mode byte (see fuzz_migstream.c), then a
small QEMU 10.0-style stream.  Run from this directory: ./gen_seeds.py
"""
import os
import struct

be8 = lambda v: struct.pack('>B', v)
be16 = lambda v: struct.pack('>H', v)
be32 = lambda v: struct.pack('>I', v)
be64 = lambda v: struct.pack('>Q', v)
s8 = lambda s: be8(len(s)) + s


def config(page_bits=None, caps=(), uuid=False):
    b = b'\x07' + be32(2) + b'pc'
    if page_bits is not None:
        b += b'\x05' + s8(b'configuration/target-page-bits') + be32(1) + be32(page_bits)
    if caps:
        b += b'\x05' + s8(b'configuration/capabilities') + be32(1) + be32(len(caps))
        b += b''.join(s8(c) for c in caps)
    if uuid:
        b += b'\x05' + s8(b'configuration/uuid') + be32(1) + bytes(range(16))
    return b


def stream(page_bits=12, with_page=False, ignore_shared=False, vmdesc=True):
    ps = 1 << page_bits
    sid = 2
    b = be32(0x5145564d) + be32(3)
    b += config(page_bits if page_bits != 12 else None,
                [b'x-ignore-shared'] if ignore_shared else [], uuid=True)
    b += b'\x08' + be16(1) + be16(0)
    b += b'\x08' + be16(2) + be16(4) + be32(7)
    b += b'\x01' + be32(sid) + s8(b'ram') + be32(0) + be32(4)
    blocks = [(b'pc.ram', 8 * ps), (b'rom', 2 * ps)]
    b += be64(sum(l for _, l in blocks) | 0x4)
    for name, length in blocks:
        b += s8(name) + be64(length) + (be64(0x100000) if ignore_shared else b'')
    b += be64(0x10) + b'\x7e' + be32(sid)
    b += b'\x02' + be32(sid)
    if with_page:
        b += be64(0 | 0x8) + s8(b'pc.ram') + bytes((i * 3) & 0xff for i in range(ps))
        b += be64(1 * ps | 0x22) + b'\x00'
    else:
        b += be64(0 | 0x2) + s8(b'pc.ram') + b'\x00'
        b += be64(1 * ps | 0x22) + b'\x00'
    b += be64(1 * ps | 0x2) + s8(b'rom') + b'\x00'
    b += be64(0x10) + b'\x7e' + be32(sid)
    b += b'\x08' + be16(11) + be16(0)
    b += b'\x03' + be32(sid) + be64(5 * ps | 0x2) + s8(b'pc.ram') + b'\x00'
    b += be64(0x10) + b'\x7e' + be32(sid)
    b += b'\x04' + be32(3) + s8(b'timer') + be32(0) + be32(2)
    b += b'\x00\x06\x00\x00\x00\x02{}' + b'\x7e' + be32(3) + b'\x00'
    if vmdesc:
        j = b'{"page_size": %d, "devices": []}' % ps
        b += b'\x06' + be32(len(j)) + j
    return b


seeds = {
    'first-whole': (0, 1, stream()),
    'later-chunk1': (1, 0, stream()),
    'first-chunk7-drop-zero': (7, 1 | 4, stream()),
    'first-page1k-drop': (5, 1 | 2 | 16, stream(page_bits=10, with_page=True)),
    'later-page1k': (64, 16, stream(page_bits=10, with_page=True)),
    'ignore-shared': (3, 1, stream(ignore_shared=True)),
    'no-vmdesc': (9, 1 | 8, stream(vmdesc=False)),
    'open-channel': (2, 1 | 32, stream()[:150]),
    'dedup-page1k': (11, 1 | 16 | 64, stream(page_bits=10, with_page=True)),
}
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(here, 'corpus'), exist_ok=True)
for name, (chunk, mode, data) in seeds.items():
    with open(os.path.join(here, 'corpus', name), 'wb') as f:
        f.write(bytes([chunk, mode]) + data)
