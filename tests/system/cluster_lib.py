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


def score(node_id, blob, index):
    """cluster/peer.c's rendezvous score (FNV-1a, then splitmix64's finaliser)."""
    m = (1 << 64) - 1
    h = 0xcbf29ce484222325
    for b in node_id.encode() + b"/" + blob.encode() + index.to_bytes(4, "little"):
        h = ((h ^ b) * 0x100000001b3) & m
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & m
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & m
    return h ^ (h >> 31)
