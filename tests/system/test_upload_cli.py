#!/usr/bin/python3
"""System tests for `chorus upload` (a tus 1.0.0 client) against an
independent tus server, @tus/server with @tus/file-store from build/npm
(tus_server.mjs: it can cut a connection, fail a PATCH, slow the client
down, ask for a key), and for `chorus ingest`'s line per file on a pipe.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_upload_cli.py [NAME...]
"""

import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chorus_test import (  # noqa: E402
    CHORUS_BIN, REPO, check, check_eq, check_summary, fail, main, make_audio, make_wav,
    run_chorus, skip, start_chorus, test, wait_for)

SERVER = pathlib.Path(__file__).with_name("tus_server.mjs")
TUS_PKG = REPO / "build" / "npm" / "node_modules" / "@tus" / "server"
NODE = shutil.which("node")
KEY = "chorus_k3y1d_s3cr3tVALUEnotInAnyOutput"
LINE = re.compile(r"^upload: (/\S.*): (ingested|uploaded|failed), (\d+) bytes, sent (\d+),"
                  r" ([0-9.]+) s(?:, resumed at (\d+))?(?:, (\d+) retr(?:y|ies))?(?:: (.*))?$")


class TusServer:
    """tus_server.mjs in its own session, on an ephemeral loopback port."""

    def __init__(self, tmp, *flags):
        if not NODE or not TUS_PKG.exists():
            skip("node or @tus/server (build/npm) missing: scripts/deps.sh test installs them")
        self.dir = pathlib.Path(tmp) / f"tus{time.monotonic_ns()}"
        self.store = self.dir / "store"
        self.store.mkdir(parents=True)
        self.log_path = self.dir / "requests.jsonl"
        self.out = self.dir / "server.out"
        self.err = self.dir / "server.err"
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(
                [NODE, str(SERVER), "--dir", str(self.store), "--log", str(self.log_path)]
                + [str(f) for f in flags],
                stdin=subprocess.DEVNULL, stdout=o, stderr=e, start_new_session=True)
        port, _ = wait_for("tus server listening", self._port, 20, context=self._logs)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.endpoint = self.base + "/api/v1/uploads"

    def _port(self):
        if self.proc.poll() is not None:
            fail("tus server exited", self._logs())
        m = re.search(r"^port (\d+)$", self.out.read_text(), re.M)
        return int(m.group(1)) if m else None

    def _logs(self):
        return f"server stdout: {self.out.read_text()}\nserver stderr: {self.err.read_text()}"

    def requests(self):
        if not self.log_path.exists():
            return []
        return [json.loads(ln) for ln in self.log_path.read_text().splitlines() if ln.strip()]

    def stored(self):
        """{filename: (path of the bytes, size, offset)} of every upload."""
        out = {}
        for meta in self.store.glob("*.json"):
            info = json.loads(meta.read_text())
            data = self.store / info["id"]
            out[info["metadata"]["filename"]] = (data, info["size"], data.stat().st_size)
        return out

    def close(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def env_for(tmp, key=KEY):
    """The state file under tmp (never the tester's own), and the key."""
    e = {"XDG_STATE_HOME": pathlib.Path(tmp) / "state", "HOME": pathlib.Path(tmp) / "home"}
    if key is not None:
        e["CHORUS_KEY"] = key
    return e


def state_lines(tmp):
    p = pathlib.Path(tmp) / "state" / "chorus" / "uploads"
    return [ln for ln in p.read_text().splitlines() if ln.strip()] if p.exists() else []


def upload(tmp, url, *paths, key=KEY, extra=(), timeout=180):
    return run_chorus(["upload", url] + list(extra) + [str(p) for p in paths],
                      env=env_for(tmp, key), timeout=timeout)


def lines_of(res):
    """{path: match} of the per-file lines on stdout."""
    out = {}
    for ln in res.out.splitlines():
        m = LINE.match(ln)
        if m:
            out[m.group(1)] = m
    return out


def check_no_key(res, key=KEY):
    check(key not in res.out and key not in res.err, "the key is in chorus's output", res)


def check_exact(srv, files):
    """Each file's bytes, on the server, byte for byte, under its name."""
    stored = srv.stored()
    for f in files:
        f = pathlib.Path(f)
        got = stored.get(f.name)
        if got is None:
            fail(f"{f.name} is not on the server (it has {sorted(stored)})")
        data, size, have = got
        check_eq((size, have), (f.stat().st_size, f.stat().st_size),
                 f"{f.name}: (Upload-Length, bytes stored)")
        check(data.read_bytes() == f.read_bytes(), f"{f.name}: stored bytes differ")


@test("audio files (mp3, flac, ogg) reach an independent tus server byte for byte")
def _(tmp):
    files = [make_audio(tmp / "in" / "Song One.mp3", "mp3", 3, {"title": "One"}),
             make_audio(tmp / "in" / "Ünïcödé, two.flac", "flac", 3, {"title": "Two"}),
             make_audio(tmp / "in" / "three.ogg", "ogg", 3, {"title": "Three"})]
    with TusServer(tmp, "--key", KEY) as srv:
        # The base URL form: /api/v1/uploads is appended.
        res = upload(tmp, srv.base, *files, extra=["--chunk-size", "16K"])
        check_eq(res.rc, 0, "exit status", res)
        check_exact(srv, files)
        reqs = srv.requests()
        check(all(r.get("auth") for r in reqs if "method" in r),
              "a request without the key", reqs)
        check(reqs and reqs[0]["method"] == "OPTIONS", "OPTIONS first", reqs)
        check_eq(sum(r.get("method") == "POST" for r in reqs), 3, "POSTs", reqs)
        check(sum(r.get("method") == "PATCH" for r in reqs) > 3, "one PATCH per 16K chunk", reqs)
    lines = lines_of(res)
    check_eq(sorted(lines), sorted(str(f) for f in files), "per-file lines on stdout", res)
    for f in files:
        m = lines[str(f)]
        # @tus/server has no status endpoint: "uploaded", without waiting.
        check_eq((m.group(2), int(m.group(3)), int(m.group(4))),
                 ("uploaded", f.stat().st_size, f.stat().st_size), f"{f.name}'s line", res)
    check(re.search(r"^upload: 3 uploaded, 0 failed \(3 files", res.out, re.M),
          "the summary", res)
    check_eq(res.err.strip(), "", "stderr", res)
    check_no_key(res)
    check_eq(state_lines(tmp), [], "the state file once every upload is done")


@test("a folder: walked recursively, audio and zip/tar archives sent, other files skipped")
def _(tmp):
    lib = tmp / "Album"
    a = make_audio(lib / "01 a.flac", "flac", 2, {"title": "A"})
    b = make_audio(lib / "CD2" / "02 b.mp3", "mp3", 2, {"title": "B"})
    c = make_audio(tmp / "src" / "c.opus", "opus", 2, {"title": "C"})
    (lib / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 a cover")
    (lib / "notes.txt").write_text("liner notes\n")
    with zipfile.ZipFile(lib / "bonus.zip", "w") as z:
        z.write(c, "c.opus")
    with tarfile.open(lib / "CD2" / "extra.tar.gz", "w:gz") as t:
        t.add(c, "c.opus")
    sent = [a, b, lib / "bonus.zip", lib / "CD2" / "extra.tar.gz"]
    with TusServer(tmp, "--key", KEY) as srv:
        res = upload(tmp, srv.endpoint, lib)
        check_eq(res.rc, 0, "exit status", res)
        check_eq(sorted(srv.stored()), sorted(p.name for p in sent), "files on the server", res)
        check_exact(srv, sent)
    check_eq(sorted(lines_of(res)), sorted(os.path.realpath(p) for p in sent), "lines", res)
    check_no_key(res)


def server_saw(srv, method):
    return [r for r in srv.requests() if r.get("method") == method]


@test("kill -9 in the middle of a 50 MB upload: the same command again resumes it")
def _(tmp):
    big = make_wav(tmp / "in" / "long.wav", file_size=44 + 4 * 12_500_000, seed=5)
    size = big.stat().st_size
    # 20 MB/s: the upload takes 2.5 s, long enough to be killed in its middle.
    with TusServer(tmp, "--key", KEY, "--rate", 20_000_000) as srv:
        args = ["upload", srv.base, "--chunk-size", "8M", big]
        bg = start_chorus(args, tmp / "logs", env=env_for(tmp), tag="killed")

        def half_way():
            stored = srv.stored().get(big.name)
            return stored and stored[2] >= 12 << 20

        wait_for("12 MiB on the server", half_way, 60, context=lambda: bg.result())
        first = bg.kill()
        check(first.rc == -9, "the upload finished before the kill", first)
        had = srv.stored()[big.name][2]
        check(0 < had < size, f"the server has {had} of {size} bytes after the kill")
        check_eq(len(state_lines(tmp)), 1, "upload URLs remembered after the kill")
        before = len(srv.requests())
        res = upload(tmp, srv.base, "--chunk-size", "8M", big)
        check_eq(res.rc, 0, "exit status of the second run", res)
        check_exact(srv, [big])
        second = [r for r in srv.requests()[before:] if "method" in r]
        check_eq(sum(r["method"] == "POST" for r in second), 0, "POSTs in the second run",
                 second)
        check(second and any(r["method"] == "HEAD" for r in second), "no HEAD", second)
        patches = [r for r in second if r["method"] == "PATCH"]
        check(patches and patches[0]["offset_in"] > 0,
              "the second run's first PATCH starts from 0", second)
    m = lines_of(res).get(str(big))
    check(m, "no line for the file", res)
    resumed, sent = int(m.group(6) or 0), int(m.group(4))
    check(resumed > 0, "the line does not say where it resumed", res)
    check(sent <= size - resumed and sent < size, f"sent {sent} of {size} bytes again", res)
    check_eq(len(srv.stored()), 1, "uploads on the server")
    check_eq(state_lines(tmp), [], "the state file once done")
    check_no_key(res)
    check_no_key(first)


@test("a connection cut mid-PATCH and a 500: resumed within the same run (HEAD, then on)")
def _(tmp):
    f = make_wav(tmp / "in" / "six.wav", file_size=44 + 4 * 1_500_000, seed=6)
    with TusServer(tmp, "--key", KEY, "--drop-after", 2_500_000, "--fail-patch", 4) as srv:
        res = upload(tmp, srv.base, "--chunk-size", "1M", f)
        check_eq(res.rc, 0, "exit status", res)
        check_exact(srv, [f])
        reqs = srv.requests()
        check(any(r.get("event") == "drop" for r in reqs), "the server cut nothing", reqs)
        check(any(r.get("status") == 500 for r in reqs), "no 500 answered", reqs)
        # After each failure, a HEAD before the next PATCH.
        methods = [r["method"] for r in reqs if "method" in r]
        heads = sum(m == "HEAD" for m in methods)
        check(heads >= 2, f"HEADs after the failures: {methods}")
    m = lines_of(res)[str(f)]
    check_eq(m.group(2), "uploaded", "result", res)
    check(int(m.group(7) or 0) >= 2, "the line does not count the retries", res)
    check_no_key(res)


@test("a server offering sha256 checksums gets one per PATCH, right; a 460 is sent again")
def _(tmp):
    f = make_wav(tmp / "in" / "sum.wav", file_size=44 + 4 * 700_000, seed=11)
    with TusServer(tmp, "--checksum", "--fail-checksum", 2) as srv:
        res = upload(tmp, srv.base, "--chunk-size", "512K", f)
        check_eq(res.rc, 0, "exit status", res)
        check_exact(srv, [f])
        patches = [r for r in srv.requests() if r.get("method") == "PATCH"]
        check(len(patches) >= 6 and all(r["checksum"] for r in patches),
              "a PATCH without Upload-Checksum", patches)
        stored = [r for r in patches if r["status"] == 204]
        check(all(r.get("checksum_ok") for r in stored), "a wrong checksum", patches)
        check_eq(sum(r["status"] == 460 for r in patches), 1, "460 answers", patches)
    check_eq(int(lines_of(res)[str(f)].group(7) or 0), 1, "retries", res)


@test("an upload the server has forgotten (404 on HEAD) is sent again from its start")
def _(tmp):
    big = make_wav(tmp / "in" / "gone.wav", file_size=44 + 4 * 5_000_000, seed=12)
    with TusServer(tmp, "--rate", 10_000_000) as srv:
        bg = start_chorus(["upload", srv.base, "--chunk-size", "2M", big], tmp / "logs",
                          env=env_for(tmp), tag="killed")
        wait_for("4 MiB on the server",
                 lambda: (srv.stored().get(big.name) or (0, 0, 0))[2] >= 4 << 20, 60,
                 context=lambda: bg.result())
        bg.kill()
        for p in srv.store.iterdir():
            p.unlink()
        res = upload(tmp, srv.base, "--chunk-size", "2M", big)
        check_eq(res.rc, 0, "exit status", res)
        check_exact(srv, [big])
        heads = [r for r in srv.requests() if r.get("method") == "HEAD"]
        check(heads and heads[0]["status"] == 404, "no HEAD answered 404", heads)
    m = lines_of(res)[str(big)]
    check_eq((m.group(6), int(m.group(4))), (None, big.stat().st_size),
             "(resumed at, bytes sent)", res)


@test("a refused key (401): a clear message, no retry, exit 1, the key in no output")
def _(tmp):
    f = make_audio(tmp / "in" / "a.mp3", "mp3", 1, {})
    g = make_audio(tmp / "in" / "b.mp3", "mp3", 1, {})
    with TusServer(tmp, "--key", KEY) as srv:
        wrong = "chorus_wrong_K3Ynotprinted"
        res = upload(tmp, srv.base, f, g, key=wrong)
        check_eq(res.rc, 1, "exit status", res)
        check("HTTP 401" in res.err and "refused the API key" in res.err,
              "no clear message", res)
        check_no_key(res, wrong)
        check_eq(len(srv.requests()), 1, "requests after a 401 (no retry)", srv.requests())
        check_eq(srv.stored(), {}, "uploads on the server")
        res = upload(tmp, srv.base, f, key=None)
        check_eq(res.rc, 1, "exit status without a key", res)
        check("set CHORUS_KEY" in res.err, "no hint to set CHORUS_KEY", res)
        # --key-file: the first line of the file; --key works too.
        (tmp / "key").write_text(KEY + "\n")
        res = upload(tmp, srv.base, f, key=None, extra=["--key-file", tmp / "key"])
        check_eq(res.rc, 0, "exit status with --key-file", res)
        check_no_key(res)
        res = upload(tmp, srv.base, g, key=None, extra=["--key", KEY])
        check_eq(res.rc, 0, "exit status with --key", res)
        check_no_key(res)
        check_exact(srv, [f, g])


@test("over the node's limit (413, or Tus-Max-Size): reported, the next file goes on")
def _(tmp):
    big = make_wav(tmp / "in" / "big.wav", file_size=44 + 4 * 300_000, seed=8)
    small = make_audio(tmp / "in" / "small.mp3", "mp3", 1, {})
    for flags in (["--no-options"], []):  # 413 on POST; the limit said by OPTIONS
        with TusServer(tmp, "--max-size", 1_000_000, *flags) as srv:
            res = upload(tmp, srv.base, big, small)
            check_eq(res.rc, 1, f"exit status {flags}", res)
            check(re.search(r"big\.wav: file over the node's limit", res.err),
                  "no message for the large file", res)
            lines = lines_of(res)
            check_eq(lines[str(big)].group(2), "failed", "the large file's result", res)
            check_eq(lines[str(small)].group(2), "uploaded", "the small file's result", res)
            check_eq(sorted(srv.stored()), ["small.mp3"], "files on the server", res)


@test("--wait polls each upload's status: tracks when ingested, the reason when not")
def _(tmp):
    good = make_audio(tmp / "in" / "good.flac", "flac", 1, {})
    bad = make_wav(tmp / "in" / "bad.wav", file_size=44 + 4 * 1000, seed=9)
    with TusServer(tmp, "--key", KEY, "--status", "--relative") as srv:
        res = upload(tmp, srv.base, good, bad)
        check_eq(res.rc, 1, "exit status (one failed on the node)", res)
        lines = lines_of(res)
        check_eq(lines[str(good)].group(2), "ingested", "good's result", res)
        check(re.match(r"tracks \d+$", lines[str(good)].group(8) or ""), "good's tracks", res)
        check_eq(lines[str(bad)].group(2), "failed", "bad's result", res)
        check("could not ingest it: not audio" in res.err, "bad's reason", res)
        check("\x1b" not in res.out + res.err, "the node's text drives the terminal", res)
        polls = [r for r in srv.requests() if r.get("url", "").endswith("/status")]
        check(len(polls) >= 4, "status polled until done", polls)
        check_exact(srv, [good, bad])
        check_eq(state_lines(tmp), [], "the state file")
        # --no-wait: nothing polled.
        before = len(srv.requests())
        res = upload(tmp, srv.base, "--no-wait", good)
        check_eq(res.rc, 0, "exit status with --no-wait", res)
        check(not any(r.get("url", "").endswith("/status") for r in srv.requests()[before:]),
              "polled with --no-wait")


@test("usage errors exit 2")
def _(tmp):
    f = make_audio(tmp / "a.mp3", "mp3", 1, {})
    for args in (["upload"], ["upload", "http://127.0.0.1:1"], ["upload", "ftp://x", f],
                 ["upload", "--chunk-size", "1", "http://127.0.0.1:1", f],
                 ["upload", "--retries", "x", "http://127.0.0.1:1", f]):
        res = run_chorus(args, env=env_for(tmp))
        check_eq(res.rc, 2, f"exit status of {args[1:]}", res)
    res = run_chorus(["upload", "http://127.0.0.1:1", f], env=env_for(tmp, "two words"))
    check_eq(res.rc, 2, "exit status with a key holding a space", res)
    check("two words" not in res.err, "the bad key printed", res)


@test("a node that cannot be reached: retries with backoff, then exit 1")
def _(tmp):
    f = make_audio(tmp / "a.mp3", "mp3", 1, {})
    t0 = time.monotonic()
    res = upload(tmp, "http://127.0.0.1:9", f, extra=["--retries", "2"])
    el = time.monotonic() - t0
    check_eq(res.rc, 1, "exit status", res)
    check("gave up after 3 failures" in res.err, "no 'gave up' message", res)
    check(1.4 < el < 30, f"{el:.1f} s: not the backoff of 0.5 + 1 s", res)


@test("ingest on a pipe: a line per file (added, duplicate, failed with why; bytes, ms)")
def _(tmp):
    lib = tmp / "lib"
    a = make_audio(lib / "a.flac", "flac", 1, {"title": "A"})
    dup = lib / "b-copy.flac"
    shutil.copyfile(a, dup)
    broken = lib / "broken.mp3"
    broken.write_bytes(os.urandom(4000))
    res = run_chorus(["ingest", "--data", tmp / "data", lib])
    check_eq(res.rc, 1, "exit status", res)
    check_summary(res, added=1, unchanged=1, failed=1, files=3)
    got = {}
    for ln in res.out.splitlines():
        m = re.match(r"^ingest: (/.*): (added|updated|unchanged|duplicate|failed),"
                     r" (\d+) bytes, (\d+) ms(?:: (.*))?$", ln)
        if m:
            got[m.group(1)] = m
    real = {p: os.path.realpath(p) for p in (a, dup, broken)}
    check_eq(sorted(got), sorted(real.values()), "files with a line", res)
    results = sorted(got[real[p]].group(2) for p in (a, dup))
    check_eq(results, ["added", "duplicate"], "results of the two copies", res)
    d = next(m for m in got.values() if m.group(2) == "duplicate")
    check((d.group(5) or "").startswith("same audio as /"), "the duplicate's detail", res)
    m = got[real[broken]]
    check_eq((m.group(2), int(m.group(3))), ("failed", 4000), "broken's line", res)
    check(m.group(5), "broken's reason", res)
    check_eq(int(got[real[a]].group(3)), a.stat().st_size, "a's bytes", res)
    # Again, the copy that was added (the workers race for the two):
    # unchanged. On a terminal: the progress line, no line per file.
    added = next(p for p in (a, dup) if got[real[p]].group(2) == "added")
    res = run_chorus(["ingest", "--data", tmp / "data", added])
    check(re.search(r"^ingest: /.*: unchanged, \d+ bytes, \d+ ms$", res.out, re.M),
          "no 'unchanged' line", res)
    cmd = " ".join(shlex.quote(str(x)) for x in [CHORUS_BIN, "ingest", "--data", tmp / "data",
                                                 added])
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    check("ingest: 0 added" in out, "no summary on the terminal", out)
    check(": unchanged," not in out, "a per-file line on the terminal", out)


@test("on a terminal upload redraws one progress line (files, MB, rate, ETA)")
def _(tmp):
    f = make_wav(tmp / "in" / "p.wav", file_size=44 + 4 * 2_000_000, seed=10)
    with TusServer(tmp, "--rate", 8_000_000) as srv:
        cmd = " ".join(shlex.quote(str(x)) for x in [CHORUS_BIN, "upload", "--chunk-size",
                                                     "1M", srv.base, f])
        env = dict(os.environ)
        env.update({k: str(v) for k, v in env_for(tmp).items()})
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=120, env=env)
        out = p.stdout.decode("utf-8", "replace")
        check_eq(p.returncode, 0, "exit status", out)
        check(re.search(r"\r\x1b\[K\d/1 files +[0-9.]+/8\.0 MB +[0-9.]+ MB/s +ETA \d+:\d\d", out),
              "no progress line", out[-2000:])
        check("upload: 1 uploaded, 0 failed" in out, "no summary", out[-2000:])
        check(": uploaded," not in out, "a per-file line on the terminal", out[-2000:])
        check(KEY not in out, "the key on the terminal")
        check_exact(srv, [f])


if __name__ == "__main__":
    main()
