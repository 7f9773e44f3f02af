#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Writes corpus/seed-*: fuzz_v2stream's input layout (chunk, 8-byte dirty
# bitmap, batch, stream) around an x-ignore-shared stream of a stopped
# guest, as in tests/unit/controller/test_v2stream.c: RAM block "mem" of
# 64 pages (shared: no pages in the stream), "vga.vram" of 4 pages.
import os, struct

def s8(x):
    return bytes([len(x)]) + x

def stream(caps=True):
    b = struct.pack('>II', 0x5145564d, 3)
    cfg = b'\x07' + struct.pack('>I', 2) + b'pc'
    if caps:
        cfg += b'\x05' + s8(b'configuration/capabilities') + struct.pack('>II', 1, 1) + s8(b'x-ignore-shared')
    b += cfg + b'\x08\x00\x01\x00\x00'
    b += b'\x01' + struct.pack('>I', 2) + s8(b'ram') + struct.pack('>II', 0, 4)
    b += struct.pack('>Q', (64 + 4) * 4096 | 4)
    for name, pages, addr in ((b'mem', 64, 0), (b'vga.vram', 4, 0xfd000000)):
        b += s8(name) + struct.pack('>Q', pages * 4096) + (struct.pack('>Q', addr) if caps else b'')
    b += struct.pack('>Q', 0x10) + b'\x7e' + struct.pack('>I', 2)
    b += b'\x03' + struct.pack('>I', 2) + struct.pack('>Q', 4096 | 8) + s8(b'vga.vram') + b'\x5a' * 4096
    b += struct.pack('>Q', 0x10) + b'\x7e' + struct.pack('>I', 2)
    b += b'\x04' + struct.pack('>I', 3) + s8(b'timer') + struct.pack('>II', 0, 2) + b'devicestate'
    b += b'\x7e' + struct.pack('>I', 3) + b'\x00' + b'\x06' + struct.pack('>I', 2) + b'{}'
    return b

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
os.makedirs(d, exist_ok=True)
for name, data in (('seed-all', b'\x00' + struct.pack('<Q', 0x8000000000000023) + b'\x00' + stream()),
                   ('seed-chunked', b'\x07' + struct.pack('<Q', 0xff) + b'\x03' + stream()),
                   ('seed-nocaps', b'\x00' + struct.pack('<Q', 1) + b'\x01' + stream(False))):
    open(os.path.join(d, name), 'wb').write(data)
