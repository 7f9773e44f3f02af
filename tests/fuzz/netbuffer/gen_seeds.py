#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed corpus of fuzz_netbuffer_frame into corpus/ (or argv[1]).

Each seed is two control bytes (see fuzz_netbuffer_frame.c) and a stream in
QEMU's filter-redirector framing: be32 length, [be32 vnet_hdr_len], bytes.
"""
import os
import struct
import sys


def frame(data, vnet=None):
    hdr = struct.pack('>I', len(data))
    if vnet is not None:
        hdr += struct.pack('>I', vnet)
    return hdr + data


# An Ethernet + IPv4 header and the guest counter's UDP payload.
ETH = bytes.fromhex('525400123456525400abcdef0800') + b'\x45' + bytes(19) + b'counter 17\n'

SEEDS = {
    'user-vnet': bytes([0x80, 0]) + frame(ETH, 0) + frame(ETH, 0),
    'tap-vnet12-split3': bytes([0x83, 0]) + frame(bytes(12) + ETH, 12)
    + frame(bytes(12) + ETH[:20], 12),
    'no-vnet-bytewise': bytes([0x01, 0]) + frame(ETH) + frame(b'x'),
    'malformed-mix': bytes([0x85, 4]) + frame(b'ok', 0) + struct.pack('>II', 0, 0)
    + frame(b'abc', 9) + frame(bytes(80), 0) + frame(b'after', 2),
    'oversize-skip': bytes([0x80, 2]) + frame(bytes(40), 0) + frame(b'next', 0),
    'partial-tail': bytes([0x87, 0]) + frame(ETH, 0) + struct.pack('>II', 100, 0) + b'part',
    'empty': bytes([0x00, 0]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
