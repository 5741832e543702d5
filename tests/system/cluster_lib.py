"""What the cluster system tests share: a library of WAV tracks, made once
per test process."""

from chorus_test import make_wav, shared_dir

CHUNK = 1 << 20
TAG = 16
NTRACKS = 30


def library():
    """30 WAV files of 2 chunks each, each of its own size: (dir, files)."""
    root = shared_dir("peers-lib")
    files = []
    for i in range(NTRACKS):
        p = root / "src" / f"t{i:02d}.wav"
        if not p.exists():
            make_wav(p, file_size=44 + 4 * (330_000 + 997 * i), seed=i)
        files.append(p)
    return root / "src", files


def sealed_size(size):
    """Bytes of a file's chunks in the origin: each chunk carries its tag."""
    chunks = (size + CHUNK - 1) // CHUNK
    return size + TAG * chunks
