"""Shared helpers for chorus system tests (stdlib only, /usr/bin/python3).

A test file registers functions with @test and ends with `main()`:

    from chorus_test import test, main, run_chorus, make_audio

    @test("ingest adds one file")
    def _(tmp):                      # tmp: a fresh directory, removed afterwards
        make_audio(tmp / "a.flac", "flac", 1, {"title": "A"})
        r = run_chorus(["ingest", "--data", tmp / "d", tmp / "a.flac"])
        check_eq(r.rc, 0, "exit status", r)

    if __name__ == "__main__":
        main()

Output is TAP-style: one "ok - NAME" or "not ok - NAME" line per test on
stdout, the failure details on stderr, then "# N passed, M failed, K
skipped". A test that cannot run here calls skip(why), which prints
"ok - NAME # SKIP why" (tests/run.sh counts and lists those). The process
exits with status 1 when any test failed. Command line arguments, when
given, select the tests whose names contain one of them.

The binary is $CHORUS_BIN, or <repo>/build/release/chorus.
"""

import contextlib
import hashlib
import inspect
import os
import pathlib
import random
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO = pathlib.Path(__file__).resolve().parents[2]
CHORUS_BIN = os.environ.get("CHORUS_BIN") or str(REPO / "build" / "release" / "chorus")
FFMPEG = shutil.which("ffmpeg", path="/usr/bin:/bin:/usr/local/bin") or "ffmpeg"

CHUNK_SIZE = 1 << 20  # chorus's default chunk size
SEAL_TAG = 16  # ChaCha20-Poly1305 tag after each sealed chunk

# Sanitizer reports on stderr fail the run even when the exit status is fine.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


class TestFailure(AssertionError):
    pass


class TestSkipped(Exception):
    pass


# ---------------------------------------------------------------- runner

_TESTS = []


def test(name):
    """Registers fn as a test case named `name`. A parameter called `tmp`
    receives a fresh pathlib.Path directory that is removed afterwards."""

    def register(fn):
        _TESTS.append((name, fn))
        return fn

    return register


def fail(msg, *context):
    """Raises a test failure; context objects (e.g. a Result) are appended."""
    parts = [msg] + [str(c) for c in context]
    raise TestFailure("\n".join(parts))


def skip(why):
    """Ends the test as skipped: what it needs is not here. Only for what
    scripts/deps.sh does not install (or a build run.sh does not make)."""
    raise TestSkipped(why)


def check(cond, msg, *context):
    if not cond:
        fail(msg, *context)


def check_eq(got, want, what, *context):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}", *context)


def wait_for(what, cond, timeout, step=0.02, context=None):
    """Polls cond() every step seconds until it returns a true value;
    returns (that value, seconds waited). After timeout seconds the test
    fails with "WHAT: not within T s" and context() (when given), the
    state that was waited on."""
    t0 = time.monotonic()
    while True:
        v = cond()
        if v:
            return v, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            fail(f"{what}: not within {timeout:g} s", *([context()] if context else []))
        time.sleep(step)


def _close_background():
    for bg in list(_BACKGROUND):
        bg.close()
    _BACKGROUND.clear()


def _run_one(name, fn):
    params = inspect.signature(fn).parameters
    started = time.monotonic()
    try:
        if "tmp" in params:
            with tempdir() as tmp:
                try:
                    fn(tmp)
                finally:  # before the directory (and its logs) is removed
                    _close_background()
        else:
            fn()
        ok, detail = True, ""
    except TestSkipped as e:
        ok, detail = None, " ".join(str(e).split())  # one line: the TAP directive's
    except TestFailure as e:
        ok, detail = False, str(e)
    except Exception:  # an unexpected error is a failure as well
        ok, detail = False, traceback.format_exc()
    _close_background()  # nothing a test started outlives it
    el = time.monotonic() - started
    if ok:
        print(f"ok - {name}  # {el:.1f}s", flush=True)
    elif ok is None:
        print(f"ok - {name} # SKIP {detail}", flush=True)
    else:
        print(f"not ok - {name}  # {el:.1f}s", flush=True)
        sys.stderr.write(f"--- {name}\n{detail.rstrip()}\n\n")
        sys.stderr.flush()
    return ok


def main(argv=None):
    """Runs the registered tests (those matching argv, if any) and exits."""
    argv = sys.argv[1:] if argv is None else argv
    if not os.access(CHORUS_BIN, os.X_OK):
        print(f"not ok - chorus binary {CHORUS_BIN} is missing (set CHORUS_BIN)")
        sys.exit(1)
    selected = [(n, f) for n, f in _TESTS if not argv or any(a in n for a in argv)]
    started = time.monotonic()
    passed = failed = skipped = 0
    for name, fn in selected:
        ok = _run_one(name, fn)
        if ok:
            passed += 1
        elif ok is None:
            skipped += 1
        else:
            failed += 1
    _cleanup_shared()
    print(f"# {passed} passed, {failed} failed, {skipped} skipped in "
          f"{time.monotonic() - started:.1f}s ({CHORUS_BIN})", flush=True)
    sys.exit(1 if failed else 0)


# ---------------------------------------------------------------- temp dirs

_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def render(template, values):
    """A deploy/ template with every @NAME@ replaced, as the README's sed
    does; fails on a placeholder left or a value the template does not
    use."""
    template = pathlib.Path(template)
    text = template.read_text()
    check_eq(set(_PLACEHOLDER.findall(text)), set(values), f"placeholders of {template.name}")
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    check(not _PLACEHOLDER.search(text), f"{template.name}: placeholder left after rendering")
    return text


@contextlib.contextmanager
def tempdir(prefix="chorus-test-"):
    """A fresh directory (pathlib.Path), removed with everything in it."""
    d = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


_SHARED = {}


def shared_dir(name):
    """A directory kept for the whole test process (for inputs that several
    tests share and that are slow to make), removed at the end of main()."""
    if name not in _SHARED:
        _SHARED[name] = pathlib.Path(tempfile.mkdtemp(prefix=f"chorus-test-{name}-"))
    return _SHARED[name]


def _cleanup_shared():
    for d in _SHARED.values():
        shutil.rmtree(d, ignore_errors=True)
    _SHARED.clear()


# ---------------------------------------------------------------- running chorus

class Result:
    def __init__(self, args, rc, out, err, elapsed):
        self.args, self.rc, self.out, self.err, self.elapsed = args, rc, out, err, elapsed

    def __str__(self):
        return (f"$ {' '.join(self.args)}\n  exit status {self.rc} after {self.elapsed:.2f}s\n"
                f"  stdout: {self.out.rstrip()!s}\n  stderr: {self.err.rstrip()!s}")


def chorus_env(env=None):
    """The environment for chorus: ours without CHORUS_* settings, plus env
    (a None value removes a variable)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    return e


def _check_sanitizers(res):
    if any(m in res.err for m in SANITIZER_MARKS):
        fail("sanitizer report from chorus", res)


def run_chorus(args, env=None, timeout=120, cwd=None, sanitizers=True):
    """Runs chorus with args (str/Path items) and returns a Result with
    rc, out, err. A sanitizer report or a timeout fails the test."""
    args = [CHORUS_BIN] + [str(a) for a in args]
    started = time.monotonic()
    try:
        p = subprocess.run(args, env=chorus_env(env), cwd=cwd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        fail(f"chorus timed out after {timeout}s: {' '.join(args)}\n"
             f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}")
    res = Result(args, p.returncode, p.stdout.decode("utf-8", "replace"),
                 p.stderr.decode("utf-8", "replace"), time.monotonic() - started)
    if sanitizers:
        _check_sanitizers(res)
    return res


_BACKGROUND = []


class Background:
    """chorus running in its own session, output to files in logdir."""

    def __init__(self, args, logdir, env=None, cwd=None, tag="bg"):
        logdir = pathlib.Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        self.args = [CHORUS_BIN] + [str(a) for a in args]
        self.out_path = logdir / f"{tag}.{os.getpid()}.{id(self)}.out"
        self.err_path = logdir / f"{tag}.{os.getpid()}.{id(self)}.err"
        self.started = time.monotonic()
        with open(self.out_path, "wb") as o, open(self.err_path, "wb") as e:
            self.proc = subprocess.Popen(self.args, env=chorus_env(env), cwd=cwd,
                                         stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                         start_new_session=True)
        _BACKGROUND.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Sends sig to the process (only this one, by its id) and reaps it."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        self.proc.wait()
        return self.result()

    def wait(self, timeout=120):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail(f"chorus timed out after {timeout}s", self.result())
        return self.result()

    def result(self):
        rc = self.proc.poll()
        out = self.out_path.read_bytes().decode("utf-8", "replace")
        err = self.err_path.read_bytes().decode("utf-8", "replace")
        return Result(self.args, rc, out, err, time.monotonic() - self.started)

    def close(self):
        """Ends the process (if still running) without reading its logs,
        which may be gone with the test's temporary directory."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()


def start_chorus(args, logdir, env=None, cwd=None, tag="bg"):
    return Background(args, logdir, env=env, cwd=cwd, tag=tag)


def parse_summary(out):
    """{'added': A, 'updated': U, 'unchanged': N, 'failed': F, 'files': n} from
    chorus ingest's last stdout line, or None."""
    import re
    m = None
    for line in out.splitlines():
        mm = re.match(r"ingest: (\d+) added, (\d+) updated, (\d+) unchanged, (\d+) failed"
                      r" \((\d+) files", line)
        if mm:
            m = mm
    if not m:
        return None
    return dict(zip(("added", "updated", "unchanged", "failed", "files"),
                    (int(x) for x in m.groups())))


def check_summary(res, added=0, updated=0, unchanged=0, failed=0, files=None):
    s = parse_summary(res.out)
    if s is None:
        fail("no summary line on stdout", res)
    want = {"added": added, "updated": updated, "unchanged": unchanged, "failed": failed}
    got = {k: s[k] for k in want}
    if files is not None:
        want["files"], got["files"] = files, s["files"]
    if got != want:
        fail(f"summary: got {got}, want {want}", res)
    return s


def ingest_ok(data, *paths, db=None, origin=None, env=None, timeout=300, what="ingest"):
    """`chorus ingest --data DATA [--db DB] [--origin ORIGIN] PATHS`, which
    must exit 0; its Result."""
    args = ["ingest", "--no-progress", "--data", data]
    if db:
        args += ["--db", db]
    if origin:
        args += ["--origin", origin]
    r = run_chorus(args + list(paths), env=env, timeout=timeout)
    check_eq(r.rc, 0, f"{what}: exit status", r)
    return r


# ---------------------------------------------------------------- audio files

CODECS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libvorbis"],
    "oga": ["-c:a", "libvorbis", "-f", "ogg"],
    "opus": ["-c:a", "libopus", "-b:a", "64k"],
    "m4a": ["-c:a", "aac", "-b:a", "128k"],
    "wav": ["-c:a", "pcm_s16le"],
}
COVER_FORMATS = ("mp3", "flac", "m4a")


def run_ffmpeg(args, timeout=60):
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + [str(a) for a in args]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        fail(f"ffmpeg failed ({p.returncode}): {' '.join(cmd)}\n"
             f"{p.stderr.decode('utf-8', 'replace')}")


def make_audio(path, fmt=None, seconds=1.0, tags=None, cover=False, noise=True, seed=None,
               sample_rate=44100, channels=2, cover_codec="mjpeg", extra=()):
    """Writes a real audio file with ffmpeg and returns its Path.

    fmt: mp3, flac, ogg, oga, opus, m4a or wav (default: the extension).
    tags: {ffmpeg metadata key: value}; written as given (use "TSRC" for an
    MP3 ISRC, "ISRC"/"LABEL" for Vorbis comments, "publisher" for ID3 TPUB).
    cover: embed a 64x64 red picture (mp3, flac, m4a; cover_codec mjpeg or
    png). noise: white noise from a random seed (distinct bytes each call)
    or, when False, a 440 Hz sine (the same samples each call)."""
    path = pathlib.Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in CODECS:
        raise ValueError(f"make_audio: unknown format {fmt}")
    if fmt == "opus":
        sample_rate = 48000
    if noise:
        if seed is None:
            seed = random.randrange(1, 2**31 - 1)
        src = f"anoisesrc=d={seconds}:c=white:r={sample_rate}:a=0.3:seed={seed}"
    else:
        src = f"sine=frequency=440:duration={seconds}:sample_rate={sample_rate}"
    args = ["-f", "lavfi", "-i", src]
    if cover:
        if fmt not in COVER_FORMATS:
            raise ValueError(f"make_audio: no cover art in {fmt} files")
        args += ["-f", "lavfi", "-i", "color=c=red:s=64x64:d=1",
                 "-map", "0:a", "-map", "1:v", "-frames:v", "1", "-c:v", cover_codec,
                 "-disposition:v", "attached_pic"]
    else:
        args += ["-map", "0:a"]
    args += ["-ac", str(channels)] + CODECS[fmt]
    args += ["-map_metadata", "-1", "-fflags", "+bitexact"]
    for k, v in (tags or {}).items():
        args += ["-metadata", f"{k}={v}"]
    args += list(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(args + [path])
    return path


def make_wav(path, seconds=1.0, sample_rate=44100, channels=2, seed=None, file_size=None):
    """A 16-bit PCM WAV of white noise written directly (fast, for bulk
    inputs). file_size: the exact size of the file (44 + a multiple of
    channels * 2) instead of seconds."""
    rnd = random.Random(seed)
    if file_size is not None:
        if (file_size - 44) % (channels * 2) or file_size <= 44:
            raise ValueError(f"make_wav: no WAV of {file_size} bytes")
        data = rnd.randbytes(file_size - 44)
    else:
        data = rnd.randbytes(int(seconds * sample_rate) * channels * 2)
    hdr = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    hdr += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate,
                                 sample_rate * channels * 2, channels * 2, 16)
    hdr += b"data" + struct.pack("<I", len(data))
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(hdr + data)
    return path


def retag(src, dst, tags, drop_cover=False):
    """Copies src to dst with new tags and the same audio (stream copy)."""
    args = ["-i", src, "-map", "0:a" if drop_cover else "0", "-c", "copy",
            "-map_metadata", "-1", "-fflags", "+bitexact"]
    for k, v in tags.items():
        args += ["-metadata", f"{k}={v}"]
    run_ffmpeg(args + [dst])


def wav_library(name, count, frames, step, seed):
    """count WAV files of noise, made once per test process in
    shared_dir(name)/src: tNN.wav holds 44 + 4 * (frames + step * NN)
    bytes (each its own size, so a size names its file) from seed + NN.
    Returns (the directory, [the files])."""
    root = shared_dir(name) / "src"
    files = []
    for i in range(count):
        p = root / f"t{i:02d}.wav"
        if not p.exists():
            make_wav(p, file_size=44 + 4 * (frames + step * i), seed=seed + i)
        files.append(p)
    return root, files


def audio_library(name, tracks, ingest=False):
    """Tagged audio files, made once per test process in
    shared_dir(name)/src with make_audio: tracks is [(relative path,
    seconds, tags)] or [(relative path, seconds, tags, {make_audio's
    options})]. With ingest, ingested once into shared_dir(name)/data.
    Returns {"dir": .../src, "files": {relative path: Path}, "data":
    .../data or None}."""
    root = shared_dir(name)
    files = {}
    for t in tracks:
        rel, seconds, tags = t[:3]
        p = root / "src" / rel
        if not p.exists():
            make_audio(p, None, seconds, tags, **(t[3] if len(t) > 3 else {}))
        files[rel] = p
    data = root / "data" if ingest else None
    if ingest and not (root / "ingested").exists():
        ingest_ok(data, root / "src")
        (root / "ingested").write_text("")
    return {"dir": root / "src", "files": files, "data": data}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------- catalog

class Catalog:
    """A read-only look at DATA/catalog.db through a private copy (the
    database and its WAL), so that reading never touches chorus's files."""

    def __init__(self, data_dir):
        self._dir = pathlib.Path(tempfile.mkdtemp(prefix="chorus-test-cat-"))
        src = pathlib.Path(data_dir) / "catalog.db"
        if not src.exists():
            shutil.rmtree(self._dir, ignore_errors=True)
            fail(f"no catalog at {src}")
        for suffix in ("", "-wal"):
            s = pathlib.Path(str(src) + suffix)
            if s.exists():
                shutil.copyfile(s, self._dir / ("catalog.db" + suffix))
        self.db = sqlite3.connect(self._dir / "catalog.db")
        self.db.text_factory = bytes  # decoded by hand: invalid UTF-8 is a finding

    def close(self):
        self.db.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def rows(self, sql, params=()):
        """Rows as dicts; text columns decoded as strict UTF-8."""
        cur = self.db.execute(sql, params)
        names = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            row = {}
            for n, v in zip(names, r):
                if isinstance(v, bytes) and n == "source_path":
                    v = os.fsdecode(v)  # a file system path, as the OS has it
                elif isinstance(v, bytes) and n not in ("key", "data"):
                    try:
                        v = v.decode("utf-8")
                    except UnicodeDecodeError:
                        fail(f"catalog column {n} is not valid UTF-8: {v!r}")
                row[n] = v
            out.append(row)
        return out

    def has_schema(self):
        """Whether the catalog's tables exist (a process killed while it
        created the file leaves it empty)."""
        return self.value("SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                          " AND name = 'tracks'") == 1

    def track_count(self):
        return self.value("SELECT count(*) FROM tracks") if self.has_schema() else 0

    def value(self, sql, params=()):
        r = self.db.execute(sql, params).fetchone()
        return r[0] if r else None

    def tracks(self):
        """Tracks joined with their artist, album and album artist names."""
        return self.rows(
            "SELECT t.*, ar.name AS artist, al.title AS album, aa.name AS album_artist,"
            " al.year AS album_year FROM tracks t JOIN artists ar ON ar.id = t.artist_id"
            " JOIN albums al ON al.id = t.album_id JOIN artists aa ON aa.id = al.artist_id"
            " ORDER BY t.source_path")

    def dump(self):
        """Every table's rows, sorted: equal dumps mean equal catalogs."""
        out = {}
        for (t,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                    " ORDER BY name").fetchall():
            t = t.decode() if isinstance(t, bytes) else t
            out[t] = sorted(self.db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
        return out


def catalog(data_dir):
    return Catalog(data_dir)


# ---------------------------------------------------------------- origin

def origin_files(origin_dir):
    """{relative path: (size, mtime_ns)} of every file under the origin."""
    root = pathlib.Path(origin_dir)
    out = {}
    if not root.exists():
        return out
    for dp, dns, fns in os.walk(root):
        for fn in fns:
            p = pathlib.Path(dp) / fn
            try:
                st = p.stat()
            except FileNotFoundError:  # renamed or removed meanwhile
                continue
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def chunk_key(blob, index):
    return f"c/{blob[:2]}/{blob}/{index:08x}"


MAGICS_AT_START = (b"ID3", b"fLaC", b"OggS", b"RIFF")
MAGICS_ANYWHERE = (b"fLaC\x00", b"OggS\x00", b"ftypM4A", b"ftypisom", b"ID3\x03\x00",
                   b"ID3\x04\x00", b"WAVEfmt ", b"LAME3.", b"Lavf5", b"Lavc5", b"vorbis",
                   b"OpusHead")


def origin_opacity_problems(origin_dir, sources, window=64, step=1531):
    """Problems if any origin file looks like audio: a container magic, or
    a 64-byte run of a source file (sampled every `step` bytes)."""
    problems = []
    blobs = []
    for rel in origin_files(origin_dir):
        data = (pathlib.Path(origin_dir) / rel).read_bytes()
        if data.startswith(MAGICS_AT_START) or data[4:8] == b"ftyp":
            problems.append(f"origin file {rel} starts with an audio magic: {data[:12]!r}")
        for m in MAGICS_ANYWHERE:
            if m in data:
                problems.append(f"origin file {rel} contains {m!r}")
        blobs.append((rel, data))
    for src in sources:
        sdata = pathlib.Path(src).read_bytes()
        runs = [sdata[o:o + window] for o in range(0, max(len(sdata) - window, 0) + 1, step)]
        runs = [r for r in runs if len(r) == window and len(set(r)) > 4]  # skip silence/padding
        for rel, data in blobs:
            for r in runs:
                if r in data:
                    problems.append(f"origin file {rel} holds plaintext of {src}")
                    break
    return problems


# ---------------------------------------------------------------- consistency

def consistency_problems(data_dir, origin_dir=None, final=True, sources=None):
    """Checks the catalog against the origin; returns a list of problems.

    Always: integrity, every track's chunk_count/size agree and every chunk
    is in the origin with size min(chunk_size, rest) + 16, no two tracks
    with the same content_hash, blob or source_path, artists/albums exist.
    final (a finished run): also no pending or garbage rows, no origin file
    that is not a chunk of a track (orphan blob directories, stray
    temporary files, chunks past the end).
    sources: the source files; then one track per distinct content, with
    the file's sha256 and size."""
    data_dir = pathlib.Path(data_dir)
    origin_dir = pathlib.Path(origin_dir) if origin_dir else data_dir / "origin"
    problems = []
    files = origin_files(origin_dir)
    with Catalog(data_dir) as cat:
        ic = cat.value("PRAGMA integrity_check")
        if ic not in (b"ok", "ok"):
            problems.append(f"integrity_check: {ic!r}")
        fk = cat.rows("PRAGMA foreign_key_check")
        if fk:
            problems.append(f"foreign_key_check: {fk}")
        if cat.has_schema():
            tracks = cat.rows("SELECT id, blob, size, chunk_size, chunk_count, content_hash,"
                              " source_path, source_size, length(key) AS keylen FROM tracks")
            pending = cat.rows("SELECT blob, content_hash, chunk_count FROM pending")
            garbage = cat.rows("SELECT blob, chunk_count FROM garbage")
        else:
            # Killed before its first migration committed: an empty file,
            # which the next run migrates. Nothing in it, nothing missing.
            tracks, pending, garbage = [], [], []
    expected = set()
    for kind in ("content_hash", "blob", "source_path"):
        vals = [t[kind] for t in tracks if t[kind] is not None]
        dups = {v for v in vals if vals.count(v) > 1}
        if dups:
            problems.append(f"tracks share a {kind}: {sorted(dups)[:5]}")
    for t in tracks:
        cs, size, n = t["chunk_size"], t["size"], t["chunk_count"]
        if t["keylen"] != 32:
            problems.append(f"track {t['id']}: key is {t['keylen']} bytes")
        if cs <= 0 or n != (size + cs - 1) // cs:
            problems.append(f"track {t['id']}: chunk_count {n} for size {size}/{cs}")
            continue
        total = 0
        for i in range(n):
            key = chunk_key(t["blob"], i)
            plain = min(cs, size - i * cs)
            expected.add(key)
            got = files.get(key)
            if got is None:
                problems.append(f"track {t['id']} ({t['source_path']}): chunk {key} missing")
            elif got[0] != plain + SEAL_TAG:
                problems.append(f"track {t['id']}: chunk {key} is {got[0]} bytes,"
                                f" want {plain + SEAL_TAG}")
            total += plain
        if total != size:
            problems.append(f"track {t['id']}: chunks hold {total} bytes, size {size}")
    if final:
        if pending:
            problems.append(f"{len(pending)} pending rows left: {pending[:3]}")
        if garbage:
            problems.append(f"{len(garbage)} garbage rows left: {garbage[:3]}")
        extra = sorted(set(files) - expected)
        if extra:
            problems.append(f"{len(extra)} origin files no track refers to: {extra[:8]}")
        tracked_dirs = {t["blob"] for t in tracks}
        cdir = origin_dir / "c"
        if cdir.exists():
            for fan in cdir.iterdir():
                for b in fan.iterdir():
                    if b.name not in tracked_dirs:
                        problems.append(f"orphan blob directory c/{fan.name}/{b.name}"
                                        f" ({len(list(b.iterdir()))} files)")
                if not any(fan.iterdir()):
                    pass  # an empty fan-out directory holds nothing
    if sources is not None:
        by_hash = {}
        for s in sources:
            by_hash.setdefault(sha256_file(s), []).append(pathlib.Path(s))
        hashes = {t["content_hash"] for t in tracks}
        if len(tracks) != len(by_hash):
            problems.append(f"{len(tracks)} tracks for {len(by_hash)} distinct source files")
        missing = set(by_hash) - hashes
        if missing:
            problems.append(f"no track for {[str(by_hash[h][0]) for h in missing][:5]}")
        for t in tracks:
            srcs = by_hash.get(t["content_hash"])
            if not srcs:
                problems.append(f"track {t['id']}: content_hash matches no source file")
                continue
            if t["size"] != srcs[0].stat().st_size:
                problems.append(f"track {t['id']}: size {t['size']} but {srcs[0]} is"
                                f" {srcs[0].stat().st_size} bytes")
            if t["source_path"] not in {os.path.realpath(s) for s in srcs}:
                problems.append(f"track {t['id']}: source_path {t['source_path']} is not"
                                f" {srcs[0]}")
    return problems


def check_consistent(data_dir, origin_dir=None, final=True, sources=None, context=None):
    problems = consistency_problems(data_dir, origin_dir, final, sources)
    if problems:
        fail("inconsistent catalog/origin:\n  " + "\n  ".join(problems[:20]),
             *([context] if context else []))


# ---------------------------------------------------------------- serving (HTTP)
#
# Always 127.0.0.1, never "localhost"; http.client directly (urllib would
# honour the proxy settings of the environment).

import http.client  # noqa: E402
import json  # noqa: E402
import re as _re  # noqa: E402
import socket  # noqa: E402

FFPROBE = shutil.which("ffprobe", path="/usr/bin:/bin:/usr/local/bin") or "ffprobe"
_SERVING = _re.compile(r"^chorus (\S+) serving (.*) on http://127\.0\.0\.1:(\d+)/$", _re.M)


def noproxy_env():
    """Our environment without proxy settings (for ffmpeg/ffprobe on URLs)."""
    e = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    e["no_proxy"] = e["NO_PROXY"] = "127.0.0.1"
    return e


class Resp:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            fail(f"response body is not JSON ({e}): {self.body[:300]!r}")

    def __str__(self):
        return (f"HTTP {self.status} {self.reason}; headers {self.headers}; "
                f"body {len(self.body)} bytes: {self.body[:200]!r}")


def _resp_of(r, body):
    hdrs = {}
    for k, v in r.getheaders():
        k = k.lower()
        hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
    return Resp(r.status, r.reason, hdrs, body)


def http_request(port, method, path, headers=None, body=None, timeout=30, conn=None):
    """One request (on conn, a keep-alive http.client connection, when
    given); returns a Resp with the whole body read."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return _resp_of(r, r.read())
    finally:
        if own:
            conn.close()


# Admin API keys the harness made, by the store they live in (a database
# a cluster shares, or one node's data directory), so nodes of one
# cluster and a restarted node reuse one.
_ADMIN_KEYS = {}
_KEYS_LOCK = threading.Lock()


def _node_db(data, args, env):
    """The PostgreSQL conninfo a node serves from: --db, its cluster.json
    (a joined node), $CHORUS_DB; None for an embedded node."""
    args = [str(a) for a in args]
    if "--db" in args:
        return args[args.index("--db") + 1]
    try:
        db = json.loads((pathlib.Path(data) / "cluster.json").read_text()).get("db")
        if db:
            return db
    except (OSError, ValueError):
        pass
    return (env or {}).get("CHORUS_DB") or None


def make_place(data, location, zone=None, db=None, timezone="Europe/Berlin", country="DE"):
    """`chorus location add` and `chorus zone add`, unless they exist: the
    location's id (a store key is bound to a place that exists)."""
    base = ["--data", data] + (["--db", db] if db else [])
    r = run_chorus(["location", "add", location, "--timezone", timezone, "--country", country]
                   + base)
    if r.rc != 0 and "exists already" not in r.err:
        fail("chorus location add failed", r)
    if zone:
        z = run_chorus(["zone", "add", zone, "--location", location] + base)
        if z.rc != 0 and "already" not in z.err:
            fail("chorus zone add failed", z)
    return r.out.strip() if r.rc == 0 else None


def make_key(data, role="admin", db=None, location=None, zone=None, name=None):
    """`chorus key create`: the new key (its last stdout line). A store
    key's location (and zone), by name, is made first when it is new."""
    if role == "store" and location and not re.fullmatch(r"[0-9a-f]{16}", location):
        make_place(data, location, zone, db)
    args = ["key", "create", "--role", role, "--data", data]
    for flag, v in (("--db", db), ("--location", location), ("--zone", zone), ("--name", name)):
        if v:
            args += [flag, v]
    r = run_chorus(args)
    if r.rc != 0:
        fail("chorus key create failed", r)
    return r.out.strip().splitlines()[-1]


def client_event_id(stored):
    """A play's event id as its client sent it: stored ids are scoped by
    the principal that posted them ("k<key id>/<event id>")."""
    return stored.split("/", 1)[-1]


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


class Node:
    """`chorus serve --data DATA --listen 127.0.0.1:0 ARGS` in the background,
    ready (its port known) when the constructor returns.

    Requests carry an admin API key unless auth=False or the caller sends
    its own Authorization: the harness makes one (`chorus key create`) at
    the first request that needs it, and waits until the node accepts it
    (in a cluster, until it has reached the node's read model)."""

    def __init__(self, data, logdir, args=(), env=None, tag="serve", timeout=60):
        self.data = pathlib.Path(data)
        self._args, self._env, self._key = list(args), env, None
        self.bg = start_chorus(["serve", "--data", data, "--listen", "127.0.0.1:0"]
                               + [str(a) for a in args], logdir, env=env, tag=tag)
        deadline = time.monotonic() + timeout
        while True:
            out = self.bg.out_path.read_bytes().decode("utf-8", "replace")
            m = _SERVING.search(out)
            if m:
                self.version, self.port = m.group(1), int(m.group(3))
                break
            if not self.bg.running():
                fail("chorus serve exited before listening", self.bg.result())
            if time.monotonic() > deadline:
                self.bg.kill()
                fail(f"chorus serve not listening after {timeout}s", self.bg.result())
            time.sleep(0.02)

    @property
    def key(self):
        """The harness's admin key, accepted by this node."""
        with _KEYS_LOCK:  # test threads share one key
            return self._key or self._make_key()

    def _make_key(self):
        db = _node_db(self.data, self._args, self._env)
        ident = ("db", db) if db else ("data", str(self.data.resolve()))
        for attempt in (1, 2):
            if ident not in _ADMIN_KEYS:
                _ADMIN_KEYS[ident] = make_key(self.data, db=db, name="test-harness")
            key = _ADMIN_KEYS[ident]
            if not db:
                # Written to the catalog file the node reads: no wait.
                self._key = key
                return key
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                r = http_request(self.port, "GET", "/api/v1/session", bearer(key))
                if r.status == 200:
                    self._key = key
                    return key
                time.sleep(0.05)
            del _ADMIN_KEYS[ident]  # a store made anew since: make another
        fail("the node does not accept the harness's admin key", r)

    def auth(self):
        """The headers that authenticate as the harness's admin."""
        return bearer(self.key)

    @property
    def key_id(self):
        """"k<id>": what the harness key's plays are scoped by."""
        return "k" + self.key.split("_")[1]

    def auth_line(self):
        """The same as a raw header line, for RawConn requests."""
        return f"Authorization: Bearer {self.key}\r\n".encode()

    @property
    def pid(self):
        return self.bg.pid

    def running(self):
        return self.bg.running()

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, headers=None, body=None, timeout=30, conn=None, auth=True):
        headers = dict(headers or {})
        if auth and not any(k.lower() == "authorization" for k in headers):
            headers.update(self.auth())
        return http_request(self.port, method, path, headers, body, timeout, conn)

    def get(self, path, headers=None, **kw):
        return self.request("GET", path, headers, **kw)

    def get_json(self, path, status=200, conn=None, auth=True):
        r = self.request("GET", path, conn=conn, auth=auth)
        if r.status != status:
            fail(f"GET {path}: status {r.status}, want {status}", r)
        ct = r.header("content-type", "")
        if not ct.startswith("application/json"):
            fail(f"GET {path}: Content-Type {ct!r}, want application/json", r)
        return r.json()

    def stats(self):
        return self.get_json("/api/v1/node")["cache"]

    def stop(self, timeout=60, sig=signal.SIGTERM):
        """SIGTERM; the node must exit 0 without sanitizer reports."""
        if self.bg.running():
            os.kill(self.bg.pid, sig)
        res = self.bg.wait(timeout)
        _check_sanitizers(res)
        if res.rc != 0:
            fail(f"chorus serve exit status {res.rc} after SIGTERM, want 0", res)
        return res

    def kill9(self):
        return self.bg.kill(signal.SIGKILL)

    def result(self):
        return self.bg.result()


class RawConn:
    """A plain socket to a node, for what http.client will not send."""

    def __init__(self, port, timeout=10, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("connection closed by the server")
        self.buf += d

    def read_response(self, head=False):
        """Reads one response (the body by Content-Length; none for HEAD)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        h, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = h.decode("latin-1").split("\r\n")
        m = _re.match(r"HTTP/1\.1 (\d{3}) (.*)$", lines[0])
        if not m:
            fail(f"bad status line {lines[0]!r}")
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = 0 if head else int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return Resp(int(m.group(1)), m.group(2), hdrs, body)

    def closed_by_peer(self, timeout=3):
        """True when the server closes within timeout (EOF or reset), any
        bytes before that being discarded; False when it stays open."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def node_stream(node, track_id, headers=None, conn=None):
    return node.get(f"/api/v1/tracks/{track_id}/stream", headers, conn=conn)


def stream_url(node, track_id):
    """The track's signed stream URL as the node hands it to this admin:
    for a client that sends no headers (ffmpeg, an <audio> element)."""
    t = node.get_json(f"/api/v1/tracks/{track_id}")
    return f"http://127.0.0.1:{node.port}{t['stream_url']}"
