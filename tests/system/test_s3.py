#!/usr/bin/python3
"""System tests for the S3 origin: chorus ingest and serve against s3rver
behind a SigV4-verifying proxy (tests/system/s3.py), so every request
chorus makes has its signature checked. The byte-exactness checks run for
the dir backend too: both origins must pass the same tests.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_s3.py [NAME...]
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chorus_test import (  # noqa: E402
    CHUNK_SIZE, FFPROBE, SEAL_TAG, Catalog, Node, check, check_eq, check_summary, chunk_key,
    fail, main, make_audio, node_stream, origin_opacity_problems, retag, run_chorus, shared_dir,
    test)
from s3 import S3Server  # noqa: E402

PROMPT = 3.0  # seconds within which an unavailable chunk must be a 503


def server():
    return S3Server.shared()


def fresh_prefix(what):
    return f"{what}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------ the audio

def audio():
    """Four real files, made once: two of several chunks, two of one."""
    root = shared_dir("s3-audio")
    files = [root / "a.wav", root / "b.flac", root / "c.mp3", root / "d.ogg"]
    if not all(f.exists() for f in files):
        make_audio(files[0], "wav", 13, {"title": "Alpha", "artist": "S3"})   # 3 chunks
        make_audio(files[1], "flac", 8, {"title": "Bravo", "artist": "S3"})   # 2 chunks
        make_audio(files[2], "mp3", 4, {"title": "Charlie", "artist": "S3"})  # 1 chunk
        make_audio(files[3], "ogg", 3, {"title": "Delta", "artist": "S3"})    # 1 chunk
    return files


# ------------------------------------------------------------------ helpers

class Backend:
    """Where a test's chunks go: a fresh S3 prefix, or the data dir."""

    def __init__(self, kind, tmp, secret=None, **params):
        self.kind, self.data = kind, tmp / "data"
        if kind == "s3":
            self.prefix = fresh_prefix("t")
            self.spec = server().spec(self.prefix, **params)
            self.env = server().env(secret=secret)
            self.args = ["--origin", self.spec]
        else:
            self.prefix = self.spec = None
            self.env = {}
            self.args = []

    def ingest(self, files, env=None, args=()):
        return run_chorus(["ingest", "--data", self.data] + self.args + list(args) + files,
                          env=env or self.env, timeout=300)

    def serve(self, tmp, env=None, spec=None, tag="serve"):
        args = ["--origin", spec] if spec else self.args
        return Node(self.data, tmp / "logs", args=args, env=env or self.env, tag=tag)


def tracks_by_source(data):
    with Catalog(data) as cat:
        rows = cat.rows("SELECT id, blob, size, chunk_size, chunk_count, source_path FROM tracks")
    for r in rows:
        r["id"] = "%016x" % (r["id"] & (2**64 - 1))  # the API's form of the id
    return {pathlib.Path(r["source_path"]).name: r for r in rows}


def expected_objects(data, prefix):
    """{object key: sealed size} of every chunk the catalog names."""
    out = {}
    for t in tracks_by_source(data).values():
        for i in range(t["chunk_count"]):
            plain = min(t["chunk_size"], t["size"] - i * t["chunk_size"])
            out[f"{prefix}/{chunk_key(t['blob'], i)}"] = plain + SEAL_TAG
    return out


def requests_since(mark, prefix=None):
    reqs = server().requests()[mark:]
    if prefix:
        reqs = [r for r in reqs if f"/{prefix}/" in r["path"]]
    return reqs


def stream_ok(node, track, src, what):
    r = node_stream(node, track["id"])
    check_eq(r.status, 200, f"{what}: status", r)
    if r.body != pathlib.Path(src).read_bytes():
        fail(f"{what}: {len(r.body)} bytes streamed differ from the source's"
             f" {pathlib.Path(src).stat().st_size}")


def stream_503(node, track, what):
    """An uncached chunk the origin will not give: a prompt 503 in JSON."""
    started = time.monotonic()
    r = node_stream(node, track["id"], conn=node.conn(timeout=30))
    el = time.monotonic() - started
    check_eq(r.status, 503, f"{what}: status", r)
    check(el < PROMPT, f"{what}: the 503 took {el:.2f}s (want < {PROMPT}s)", r)
    check(r.header("content-type", "").startswith("application/json"),
          f"{what}: the 503 is not JSON", r)
    check_eq(r.json().get("error", {}).get("status"), 503, f"{what}: JSON error status", r)
    check(r.header("retry-after") is not None, f"{what}: no Retry-After", r)
    check(node.running(), f"{what}: chorus serve died", node.result())
    return r


# ------------------------------------------------------------------ the harness itself

@test("s3 harness: the proxy checks SigV4 (awscli's signatures pass, a wrong secret fails)")
def _():
    s3 = server()
    r = s3.aws("s3api", "list-objects-v2", "--bucket", s3.bucket, "--max-items", "1")
    check_eq(r.returncode, 0, f"awscli with the right secret: {r.stderr.decode()}")
    r = s3.aws("s3api", "list-objects-v2", "--bucket", s3.bucket, secret="not-the-secret")
    check(r.returncode != 0 and b"SignatureDoesNotMatch" in r.stderr,
          f"awscli with a wrong secret was not refused: {r.returncode} {r.stderr.decode()}")
    codes = [q["code"] for q in s3.requests()[-2:]]
    check_eq(codes, ["", "SignatureDoesNotMatch"], "what the proxy answered")


# ------------------------------------------------------------------ ingest

@test("s3 ingest: awscli lists exactly the chunk objects ingest wrote, none of them playable")
def _(tmp):
    s3, files = server(), audio()
    b = Backend("s3", tmp)
    mark = len(s3.requests())
    r = b.ingest(files)
    check_eq(r.rc, 0, "ingest exit status", r)
    check_summary(r, added=len(files))
    want = expected_objects(b.data, b.prefix)
    nchunks = sum(t["chunk_count"] for t in tracks_by_source(b.data).values())
    check(nchunks > len(files), f"only {nchunks} chunks: no file spans several")
    listed = s3.ls_recursive(b.prefix + "/")
    check_eq(len(listed), nchunks, "objects listed by aws s3 ls --recursive")
    check_eq(listed, want, "objects (key: size) under the prefix")

    reqs = requests_since(mark, b.prefix)
    puts = [q for q in reqs if q["method"] == "PUT"]
    check_eq(len(puts), nchunks, "PUTs the proxy verified (one per chunk)")
    bad = [q for q in requests_since(mark) if q["status"] >= 300 and q["method"] != "HEAD"]
    check(not bad, f"requests refused or failed: {bad[:5]}")

    # Sealed: no container magic, no run of a source file, nothing ffprobe reads.
    dl = tmp / "download"
    rr = s3.aws("s3", "cp", "--recursive", f"s3://{s3.bucket}/{b.prefix}/", dl)
    check_eq(rr.returncode, 0, f"aws s3 cp --recursive: {rr.stderr.decode()}")
    got = sorted(p for p in dl.rglob("*") if p.is_file())
    check_eq(len(got), nchunks, "objects downloaded")
    problems = origin_opacity_problems(dl, files)
    check(not problems, "an object looks like audio:\n  " + "\n  ".join(problems[:10]))
    for p in got:
        pr = subprocess.run([FFPROBE, "-v", "error", p], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(pr.returncode != 0, f"ffprobe reads object {p.relative_to(dl)}")


@test("s3 ingest: a track's chunks are uploaded in parallel")
def _(tmp):
    s3 = server()
    big = make_audio(tmp / "big.wav", "wav", 36, {"title": "Big"})  # 7 chunks
    b = Backend("s3", tmp)
    mark = len(s3.requests())
    r = b.ingest([big], args=["--jobs", "1"])
    check_eq(r.rc, 0, "ingest exit status", r)
    puts = [q for q in requests_since(mark, b.prefix) if q["method"] == "PUT"]
    check_eq(len(puts), tracks_by_source(b.data)["big.wav"]["chunk_count"], "PUTs")
    most = max(q["inflight"] for q in puts)
    check(most >= 2, f"at most {most} request in flight at the proxy: the puts of one track"
          " ran one after the other")


@test("s3 ingest: a re-run uploads nothing new")
def _(tmp):
    s3, files = server(), audio()
    b = Backend("s3", tmp)
    check_eq(b.ingest(files).rc, 0, "first ingest exit status")
    before = s3.list(b.prefix + "/")
    mark = len(s3.requests())
    r = b.ingest(files)
    check_eq(r.rc, 0, "re-run exit status", r)
    check_summary(r, unchanged=len(files))
    writes = [q for q in requests_since(mark) if q["method"] in ("PUT", "DELETE", "POST")]
    check(not writes, f"the re-run wrote to S3: {writes[:5]}")
    check_eq(s3.list(b.prefix + "/"), before, "objects (keys, ETags, dates) after the re-run")


@test("s3 ingest: a re-tagged file's new chunks replace the old, which are deleted")
def _(tmp):
    s3 = server()
    src = tmp / "in" / "song.flac"
    src.parent.mkdir()
    shutil.copyfile(audio()[1], src)
    b = Backend("s3", tmp)
    check_eq(b.ingest([src]).rc, 0, "first ingest exit status")
    old = set(s3.ls_recursive(b.prefix + "/"))
    retag(audio()[1], tmp / "retagged.flac", {"title": "Bravo", "artist": "S3", "genre": "New"})
    os.replace(tmp / "retagged.flac", src)
    mark = len(s3.requests())
    r = b.ingest([src])
    check_eq(r.rc, 0, "re-ingest exit status", r)
    check_summary(r, updated=1)
    now = s3.ls_recursive(b.prefix + "/")
    check_eq(now, expected_objects(b.data, b.prefix), "objects after the update")
    check(not (old & set(now)), "the old blob's chunks are still there")
    deletes = [q for q in requests_since(mark, b.prefix) if q["method"] == "DELETE"]
    check_eq(len(deletes), len(old), "DELETEs (one per old chunk)")
    check(all(q["status"] in (200, 204) for q in deletes), f"failed deletes: {deletes}")


@test("s3 ingest: a wrong secret fails as an authentication failure and commits nothing")
def _(tmp):
    s3, files = server(), audio()
    b = Backend("s3", tmp, secret="not-the-secret")
    started = time.monotonic()
    r = b.ingest(files)
    check(r.rc != 0, "ingest with a wrong secret exited 0", r)
    check("authentication failed" in r.err, "stderr does not say authentication failed", r)
    low = r.err.lower()
    check("not found" not in low and "no such file" not in low,
          "stderr calls it a missing object", r)
    check_eq(r.err.count("authentication failed"), 1, "authentication failures logged", r)
    check("SignatureDoesNotMatch" in r.err and s3.endpoint in r.err,
          "the message lacks the S3 error code or the endpoint", r)
    check(time.monotonic() - started < 30, "refused credentials were retried", r)
    with Catalog(b.data) as cat:
        check_eq(cat.value("SELECT count(*) FROM tracks"), 0, "tracks committed")
    check_eq(s3.ls_recursive(b.prefix + "/"), {}, "objects under the prefix")


@test("s3 ingest: AWS_SESSION_TOKEN goes as a signed x-amz-security-token")
def _(tmp):
    s3 = server()
    b = Backend("s3", tmp)
    mark = len(s3.requests())
    # The proxy refuses any x-amz-* header left out of the signature.
    r = b.ingest(audio()[2:3], env=s3.env(token="FwoGZXIvYXdzE-test-token"))
    check_eq(r.rc, 0, "ingest exit status", r)
    reqs = requests_since(mark, b.prefix)
    check(reqs, "no request reached the proxy")
    check(all(q["token"] == "FwoGZXIvYXdzE-test-token" and q["status"] == 200 for q in reqs),
          f"requests without the token, or refused: {reqs[:5]}")


@test("s3 origin: missing credentials and bad specs are clear errors at open")
def _(tmp):
    files = audio()[:1]
    s3 = server()
    env = {k: None for k in os.environ if k.startswith("AWS_")}
    r = run_chorus(["ingest", "--data", tmp / "d", "--origin", s3.spec("x")] + files, env=env)
    check(r.rc != 0 and "AWS_ACCESS_KEY_ID" in r.err, "no credentials: no clear error", r)
    r = run_chorus(["serve", "--data", tmp / "d", "--listen", "127.0.0.1:0", "--origin",
                    s3.spec("x")], env=env, timeout=30)
    check(r.rc != 0 and "AWS_ACCESS_KEY_ID" in r.err, "serve without credentials", r)
    r = run_chorus(["ingest", "--data", tmp / "d", "--origin", "s3://Bad_Bucket"] + files,
                   env=s3.env())
    check(r.rc != 0 and "bucket" in r.err, "a bad bucket name: no clear error", r)
    r = run_chorus(["ingest", "--data", tmp / "d", "--origin", "ftp://x"] + files)
    check(r.rc != 0 and "dir:PATH" in r.err and "s3://BUCKET" in r.err,
          "an unknown origin does not list both forms", r)


# ------------------------------------------------------------------ serving: both backends

RANGES = [(0, 0), (0, 99), (CHUNK_SIZE - 10, CHUNK_SIZE + 9), (CHUNK_SIZE, CHUNK_SIZE),
          (CHUNK_SIZE - 1, 2 * CHUNK_SIZE), (12345, 654321), ("suffix", 500), ("from", -1)]


def check_ranges(node, track, src):
    data = pathlib.Path(src).read_bytes()
    size = len(data)
    for a, b in RANGES:
        if a == "suffix":
            hdr, first, last = f"bytes=-{b}", size - b, size - 1
        elif a == "from":
            hdr, first, last = f"bytes={size - 7}-", size - 7, size - 1
        else:
            if a >= size:
                continue
            hdr, first, last = f"bytes={a}-{b}", a, min(b, size - 1)
        r = node_stream(node, track["id"], {"Range": hdr})
        check_eq(r.status, 206, f"{src.name} {hdr}: status", r)
        check_eq(r.header("content-range"), f"bytes {first}-{last}/{size}",
                 f"{src.name} {hdr}: Content-Range", r)
        if r.body != data[first:last + 1]:
            fail(f"{src.name} {hdr}: {len(r.body)} bytes differ from the source's range")


for _kind in ("dir", "s3"):
    def _exact(tmp, kind=_kind):
        s3, files = server(), audio()
        b = Backend(kind, tmp)
        check_eq(b.ingest(files).rc, 0, "ingest exit status")
        tracks = tracks_by_source(b.data)
        mark = len(s3.requests())
        node = b.serve(tmp)
        for f in files:
            stream_ok(node, tracks[f.name], f, f"{kind}: {f.name}")
            check_ranges(node, tracks[f.name], f)
        if kind == "s3":
            gets = [q for q in requests_since(mark, b.prefix) if q["method"] == "GET"]
            nchunks = sum(t["chunk_count"] for t in tracks.values())
            check_eq(len(gets), nchunks, "chunks read from S3 (each once, then cached)")
            check(all(q["status"] == 200 for q in gets), f"failed reads: {gets}")
            conns = len({q["peer"] for q in gets})
            check(conns < len(gets), f"{len(gets)} reads on {conns} connections: none reused")
        node.stop()

    test(f"{_kind} backend: streams are byte-exact, Range requests exact")(_exact)


# ------------------------------------------------------------------ serving when S3 fails

def two_tracks(tmp, **params):
    """An s3 backend with a.wav and c.mp3 ingested: (backend, tracks, files)."""
    files = [audio()[0], audio()[2]]
    b = Backend("s3", tmp, **params)
    check_eq(b.ingest(files).rc, 0, "ingest exit status")
    return b, tracks_by_source(b.data), files


@test("s3 serve with a wrong secret: an uncached chunk is a prompt 503, cached ones stream")
def _(tmp):
    b, tracks, (a, c) = two_tracks(tmp)
    node = b.serve(tmp, tag="warm")
    stream_ok(node, tracks[a.name], a, "warming the cache")
    node.stop()
    # The cache stays warm across the restart; the secret is now wrong.
    node = b.serve(tmp, env=server().env(secret="not-the-secret"), tag="wrong")
    stream_503(node, tracks[c.name], "uncached track, wrong secret")
    stream_ok(node, tracks[a.name], a, "cached track, wrong secret")
    stream_503(node, tracks[c.name], "uncached track again")
    res = node.stop()
    check_eq(res.err.count("authentication failed"), 1, "authentication failures logged", res)
    check("not found" not in res.err.lower(), "the log calls it a missing object", res)


@test("s3 serve when S3 starts refusing: 503 at once, and streams again when it stops")
def _(tmp):
    s3 = server()
    b, tracks, (a, c) = two_tracks(tmp)
    node = b.serve(tmp)
    stream_ok(node, tracks[a.name], a, "before")
    try:
        s3.set_mode("refuse")
        stream_503(node, tracks[c.name], "uncached track, S3 refusing")
        stream_ok(node, tracks[a.name], a, "cached track, S3 refusing")
    finally:
        s3.set_mode("pass")
    stream_ok(node, tracks[c.name], c, "after S3 accepts again")
    node.stop()


@test("s3 serve when S3 is down: 503 promptly, no hang, no crash, back when S3 is")
def _(tmp):
    s3 = server()
    b, tracks, (a, c) = two_tracks(tmp)
    node = b.serve(tmp)
    stream_ok(node, tracks[a.name], a, "before")
    try:
        s3.kill_proxy()
        stream_503(node, tracks[c.name], "uncached track, S3 down")
        stream_ok(node, tracks[a.name], a, "cached track, S3 down")
        stream_503(node, tracks[c.name], "uncached track, S3 still down")
    finally:
        s3.start_proxy()
    stream_ok(node, tracks[c.name], c, "after S3 is back")
    node.stop()


@test("s3 serve when S3 stalls: the timeout ends the read, 503, no hang")
def _(tmp):
    s3 = server()
    b, tracks, (a, c) = two_tracks(tmp, timeout_ms=1500)
    node = b.serve(tmp)
    stream_ok(node, tracks[a.name], a, "before")
    try:
        s3.set_mode("stall")
        stream_503(node, tracks[c.name], "uncached track, S3 stalled")
        stream_ok(node, tracks[a.name], a, "cached track, S3 stalled")
    finally:
        s3.set_mode("pass")
    stream_ok(node, tracks[c.name], c, "after S3 answers again")
    res = node.stop()
    check("timed out" in res.err.lower() or "timeout" in res.err.lower(),
          "the log does not say the read timed out", res)


if __name__ == "__main__":
    main()
