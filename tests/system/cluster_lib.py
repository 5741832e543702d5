"""What the cluster system tests share: a library of WAV tracks, made once
per test process."""

from chorus_test import wav_library

CHUNK = 1 << 20
TAG = 16
NTRACKS = 30


def library():
    """30 WAV files of 2 chunks each, each of its own size: (dir, files)."""
    return wav_library("peers-lib", NTRACKS, 330_000, 997, seed=0)


def sealed_size(size):
    """Bytes of a file's chunks in the origin: each chunk carries its tag."""
    chunks = (size + CHUNK - 1) // CHUNK
    return size + TAG * chunks
