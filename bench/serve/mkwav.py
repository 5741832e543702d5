#!/usr/bin/env python3
"""Writes N WAV files of exactly SIZE bytes (16-bit stereo 44.1 kHz noise,
every file with different bytes): mkwav.py DIR N [SIZE] [PREFIX]."""
import os, struct, sys

out, n = sys.argv[1], int(sys.argv[2])
size = int(sys.argv[3]) if len(sys.argv) > 3 else 4 << 20
prefix = sys.argv[4] if len(sys.argv) > 4 else "track"
data_len = size - 44
data_len -= data_len % 4  # whole stereo frames
assert data_len + 44 == size, "SIZE - 44 must be a multiple of 4"
os.makedirs(out, exist_ok=True)
for i in range(1, n + 1):
    hdr = b"RIFF" + struct.pack("<I", 36 + data_len) + b"WAVE"
    hdr += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 44100 * 4, 4, 16)
    hdr += b"data" + struct.pack("<I", data_len)
    path = os.path.join(out, "%s%03d.wav" % (prefix, i))
    with open(path, "wb") as f:
        f.write(hdr)
        f.write(os.urandom(data_len))  # noise; every file different
    assert os.path.getsize(path) == size
