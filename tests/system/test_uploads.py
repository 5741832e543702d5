#!/usr/bin/python3
"""Uploads from anywhere: tus 1.0.0 at /api/v1/uploads.

An independent client (tus-js-client, npm, driven by tus_client.mjs)
uploads real audio of every format and the tracks stream byte-exact; the
same bytes twice make one track; an album's archive becomes its tracks.
A node killed with -9 at a random point of a 200 MB upload resumes, once
restarted, from the last acknowledged offset, byte-exact; in a three-node
cluster (PostgreSQL, S3, haproxy in front) the upload goes on on another
node when the receiving one is killed, and its parts leave the bucket
(awscli) once ingested. Hostile uploads each get their clear error and
change nothing already stored; an unfinished upload expires.
"""

import base64
import concurrent.futures
import hashlib
import io
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    CHORUS_BIN, Node, RawConn, catalog, check, check_eq, chorus_env, fail, http_request, main, make_audio,
    make_key, make_wav, sha256_file, test, wait_for)
from haproxy import Haproxy  # noqa: E402
from s3 import S3Server  # noqa: E402

NODE_JS = shutil.which("node")
CLIENT = pathlib.Path(__file__).with_name("tus_client.mjs")
TUS = {"Tus-Resumable": "1.0.0"}
FORMATS = ("mp3", "flac", "ogg", "opus", "m4a")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def editor_key(node, db=None):
    return make_key(node.data, role="editor", db=db, name="uploader")


def tus_client(endpoint, key, files, logdir, env=None):
    """tus_client.mjs in the background: (process, its stdout path)."""
    out = pathlib.Path(logdir) / f"tus-{time.monotonic_ns()}.out"
    out.parent.mkdir(parents=True, exist_ok=True)
    e = dict(os.environ, CHORUS_KEY=key, **(env or {}))
    with open(out, "wb") as f:
        proc = subprocess.Popen([NODE_JS, str(CLIENT), endpoint] + [str(p) for p in files],
                                stdout=f, stderr=subprocess.STDOUT, env=e)
    return proc, out


def events(out):
    evs = []
    for ln in pathlib.Path(out).read_text(errors="replace").splitlines():
        try:
            evs.append(json.loads(ln))
        except ValueError:
            pass
    return evs


def run_client(endpoint, key, files, logdir, env=None, timeout=300):
    proc, out = tus_client(endpoint, key, files, logdir, env)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("tus-js-client did not finish", out.read_text(errors="replace")[-3000:])
    evs = events(out)
    check_eq(rc, 0, "tus-js-client's exit status", out.read_text(errors="replace")[-3000:])
    return {e["file"]: e["url"] for e in evs if e["event"] == "done"}


def upload_id(url):
    return url.rstrip("/").rsplit("/", 1)[1]


def status_of(node, uid, key):
    r = http_request(node.port, "GET", f"/api/v1/uploads/{uid}/status",
                     {"Authorization": f"Bearer {key}"})
    check_eq(r.status, 200, f"status of {uid}", r)
    return r.json()


def wait_finished(node, uid, key, timeout=120):
    """The upload's status once done or failed."""
    got = {}

    def finished():
        got["s"] = status_of(node, uid, key)
        return got["s"]["state"] in ("done", "failed")
    wait_for(f"upload {uid} finished", finished, timeout, step=0.1,
             context=lambda: got.get("s"))
    return got["s"]


def stream(node, tid, key):
    r = http_request(node.port, "GET", f"/api/v1/tracks/{tid}/stream",
                     {"Authorization": f"Bearer {key}"}, timeout=120)
    check_eq(r.status, 200, f"stream of {tid}", r)
    return r.body


def tus(node, method, path, key, headers=None, body=None):
    h = {"Authorization": f"Bearer {key}", **TUS, **(headers or {})}
    return http_request(node.port, method, path, h, body)


def create(node, key, length, name="x.flac", extra=None):
    r = tus(node, "POST", "/api/v1/uploads", key,
            {"Upload-Length": str(length), "Upload-Metadata": f"filename {b64(name)}",
             **(extra or {})})
    return r


def patch(node, key, url, offset, body, extra=None):
    return tus(node, "PATCH", url, key,
               {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
                **(extra or {})}, body)


def check_error(r, status, what, words=None):
    check_eq(r.status, status, what, r)
    e = r.json().get("error", {})
    check(e.get("status") == status and e.get("message"), f"{what}: a JSON error body", r)
    if words:
        check(words in e["message"], f"{what}: the message says {words!r}", r)
    return e["message"]


def stored(db):
    """The catalog's tables but the uploads' own (which record the refusals)."""
    return {t: rows for t, rows in db.dump().items() if not t.startswith("upload")}


def origin_parts(data):
    u = pathlib.Path(data) / "origin" / "u"
    return sorted(str(p.relative_to(u)) for p in u.rglob("*") if p.is_file()) if u.exists() else []


@test("tus-js-client uploads two files of every format; each streams byte-exact; the same bytes again make no new track")
def _(tmp):
    node = Node(tmp / "d", tmp / "logs")
    key = editor_key(node)
    src = []
    for i, fmt in enumerate(FORMATS * 2):
        src.append(make_audio(tmp / "src" / f"t{i}.{fmt}", seconds=2 + i % 3,
                              tags={"title": f"Upload {i}", "artist": "Tus Band",
                                    "album": f"Formats {fmt}"}))
    r = http_request(node.port, "OPTIONS", "/api/v1/uploads")
    check_eq(r.status, 204, "OPTIONS", r)
    check_eq(r.header("tus-version"), "1.0.0", "Tus-Version", r)
    check(set(r.header("tus-extension", "").split(",")) >=
          {"creation", "creation-with-upload", "termination", "checksum", "expiration"},
          "Tus-Extension", r)
    t0 = time.monotonic()
    urls = run_client(f"http://127.0.0.1:{node.port}/api/v1/uploads", key, src, tmp / "logs",
                      env={"TUS_PARALLEL": "3"})
    check_eq(len(urls), len(src), "every file uploaded", urls)
    tracks = {}
    for f in src:
        s = wait_finished(node, upload_id(urls[str(f)]), key)
        check_eq(s["state"], "done", f"{f.name} ingested", s)
        check_eq(len(s["track_ids"]), 1, f"{f.name}: one track", s)
        check_eq(s["filename"], f.name, "the filename from Upload-Metadata", s)
        tracks[f] = s["track_ids"][0]
    print(f"# {len(src)} files ({sum(f.stat().st_size for f in src)} bytes) uploaded and"
          f" ingested in {time.monotonic() - t0:.2f}s")
    check_eq(len(set(tracks.values())), len(src), "one track per file")
    for f, tid in tracks.items():
        got = stream(node, tid, key)
        check(got == f.read_bytes(), f"{f.name}: the stream is the file, byte for byte")
        meta = node.get_json(f"/api/v1/tracks/{tid}")
        check_eq(meta["artist"], "Tus Band", f"{f.name}: its tags", meta)
    check_eq(origin_parts(node.data), [], "no part is left in the origin once ingested")
    with catalog(node.data) as db:
        check_eq(db.value("SELECT count(*) FROM upload_parts"), 0, "no part row left")
        n = db.track_count()
    # The same bytes again: one track, the same one.
    urls2 = run_client(f"http://127.0.0.1:{node.port}/api/v1/uploads", key, src[:1],
                       tmp / "logs")
    s = wait_finished(node, upload_id(urls2[str(src[0])]), key)
    check_eq((s["state"], s["track_ids"]), ("done", [tracks[src[0]]]), "a second upload", s)
    with catalog(node.data) as db:
        check_eq(db.track_count(), n, "no new track")
    # /metrics counts them.
    m = node.get("/metrics").body.decode()
    got = {ln.split()[0]: float(ln.split()[1]) for ln in m.splitlines()
           if ln.startswith("chorus_upload")}
    check_eq(got.get('chorus_uploads_ingested_total{outcome="done"}'), float(len(src) + 1),
             "uploads ingested in /metrics", got)
    check_eq(got.get("chorus_upload_bytes_total"),
             float(sum(f.stat().st_size for f in src) + src[0].stat().st_size),
             "upload bytes in /metrics", got)
    # The list shows them, newest first.
    lst = node.get_json("/api/v1/uploads?limit=50")["uploads"]
    check_eq(len(lst), len(src) + 1, "the list", lst)
    node.stop()


@test("an album's zip and tar.gz (sent with creation-with-upload) become its tracks; its cover and notes are passed over")
def _(tmp):
    node = Node(tmp / "d", tmp / "logs")
    key = editor_key(node)
    songs = [make_audio(tmp / "alb" / f"{i:02d} Song {i}.flac", seconds=1.5,
                        tags={"title": f"Song {i}", "artist": "Archive Band",
                              "album": "Zipped", "track": str(i)}) for i in (1, 2, 3)]
    z = tmp / "album.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for s in songs:
            zf.write(s, f"Zipped/{s.name}")
        zf.writestr("Zipped/cover.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
        zf.writestr("Zipped/notes.txt", "liner notes")
        zf.writestr("__MACOSX/Zipped/._01 Song 1.flac", b"resource fork")
    t = tmp / "album.tar.gz"
    songs2 = [make_audio(tmp / "alb2" / f"{i}.ogg", seconds=1.0,
                         tags={"title": f"Tar {i}", "artist": "Archive Band",
                               "album": "Tarred"}) for i in (1, 2)]
    with tarfile.open(t, "w:gz") as tf:
        for s in songs2:
            tf.add(s, f"Tarred/{s.name}")
    # These two with their bytes in the POST (creation-with-upload).
    urls = run_client(f"http://127.0.0.1:{node.port}/api/v1/uploads", key, [z, t],
                      tmp / "logs", env={"TUS_WITH_CREATION": "1"})
    sz = wait_finished(node, upload_id(urls[str(z)]), key)
    check_eq((sz["state"], len(sz["track_ids"])), ("done", 3), "the zip's tracks", sz)
    check("error" not in sz, "nothing failed in the zip", sz)
    st = wait_finished(node, upload_id(urls[str(t)]), key)
    check_eq((st["state"], len(st["track_ids"])), ("done", 2), "the tar.gz's tracks", st)
    titles = sorted(node.get_json(f"/api/v1/tracks/{tid}")["title"]
                    for tid in sz["track_ids"] + st["track_ids"])
    check_eq(titles, ["Song 1", "Song 2", "Song 3", "Tar 1", "Tar 2"], "the titles")
    by_title = {node.get_json(f"/api/v1/tracks/{tid}")["title"]: tid for tid in sz["track_ids"]}
    check(stream(node, by_title["Song 2"], key) == songs[1].read_bytes(),
          "a zipped track streams as the file it was")
    node.stop()


@test("hostile uploads: wrong offset 409, bad checksum 460, over the limit 413, garbage, a zip bomb, ../ paths, a 1 MB header, 1,000 unfinished: each a clear error, nothing stored changes")
def _(tmp):
    node = Node(tmp / "d", tmp / "logs", args=["--upload-max", "40M"])
    key = editor_key(node)
    keep = make_audio(tmp / "keep.flac", seconds=2, tags={"title": "Keep Me"})
    urls = run_client(f"http://127.0.0.1:{node.port}/api/v1/uploads", key, [keep], tmp / "logs")
    kept = wait_finished(node, upload_id(urls[str(keep)]), key)["track_ids"][0]
    with catalog(node.data) as db:
        before = stored(db)
    data = keep.read_bytes()

    r = create(node, key, len(data))
    check_eq(r.status, 201, "create", r)
    url = r.header("location")
    check_error(patch(node, key, url, 5, data[:100]), 409, "a PATCH at the wrong offset",
                "Upload-Offset is 5")
    check_error(patch(node, key, url, 5, b""), 409, "an empty PATCH at the wrong offset")
    r = patch(node, key, url, 0, b"")
    check_eq((r.status, r.header("upload-offset")), (204, "0"), "an empty PATCH", r)
    bad = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    check_error(patch(node, key, url, 0, data[:1000], {"Upload-Checksum": f"sha256 {bad}"}),
                460, "a PATCH whose checksum does not match")
    check_eq(tus(node, "HEAD", url, key).header("upload-offset"), "0",
             "a refused PATCH keeps nothing")
    good = base64.b64encode(hashlib.sha256(data[:1000]).digest()).decode()
    r = patch(node, key, url, 0, data[:1000], {"Upload-Checksum": f"sha256 {good}"})
    check_eq((r.status, r.header("upload-offset")), (204, "1000"), "a good checksum", r)
    check_error(patch(node, key, url, 1000, data[1000:] + b"extra"), 413,
                "a body past Upload-Length")
    check_error(tus(node, "PATCH", url, key, {"Upload-Offset": "1000",
                                             "Content-Type": "application/json"}, b"{}"),
                415, "a PATCH of the wrong type")
    check_error(http_request(node.port, "PATCH", url, {"Authorization": f"Bearer {key}",
                                                       "Upload-Offset": "1000"}, b"x"),
                412, "no Tus-Resumable")
    check_error(create(node, key, 41 << 20), 413, "an upload over --upload-max", "limit")
    check_error(tus(node, "POST", "/api/v1/uploads", key,
                    {"Upload-Length": "100", "Upload-Metadata": "filename %%%"}),
                400, "metadata that is not base64")
    check_error(tus(node, "POST", "/api/v1/uploads", key, {"Upload-Length": "-5"}), 400,
                "a negative length")
    check_error(tus(node, "POST", "/api/v1/uploads", key, {"Upload-Defer-Length": "1"}), 400,
                "a deferred length")
    check_error(tus(node, "GET", "/api/v1/uploads/" + "ab" * 16 + "/status", key), 404,
                "an unknown upload")
    # A metadata header of 1 MB: refused by the HTTP parser, the node lives.
    c = RawConn(node.port)
    c.send(b"POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
           b"Upload-Length: 10\r\nUpload-Metadata: filename " + b"A" * (1 << 20) + b"\r\n\r\n")
    try:
        head = c.sock.recv(4096)
    except OSError:
        head = b""
    check(head.startswith(b"HTTP/1.1 431"), "a 1 MB header: 431", head[:200])

    def upload_and_wait(name, blob):
        r = create(node, key, len(blob), name)
        check_eq(r.status, 201, f"create {name}", r)
        url = r.header("location")
        r = patch(node, key, url, 0, blob)
        check_eq(r.status, 204, f"PATCH {name}", r)
        return wait_finished(node, upload_id(url), key)

    s = upload_and_wait("garbage.mp3", random.Random(7).randbytes(300_000))
    check_eq(s["state"], "failed", "garbage is refused", s)
    check(s.get("error"), "with its reason", s)
    print(f"# garbage: {s['error']}")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.wav", b"\0" * (200 << 20))
    s = upload_and_wait("bomb.zip", bomb.getvalue())
    check_eq(s["state"], "failed", f"a zip bomb ({len(bomb.getvalue())} bytes) is refused", s)
    check("unpacks to more than" in s.get("error", ""), "because it unpacks too large", s)
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("fine.flac", data)
        zf.writestr("../../evil.flac", data)
    s = upload_and_wait("evil.zip", evil.getvalue())
    check_eq(s["state"], "failed", "an archive with ../ is refused whole", s)
    check("outside the archive" in s.get("error", ""), "because of its path", s)
    check(not (tmp / "evil.flac").exists() and not (node.data.parent / "evil.flac").exists(),
          "nothing written outside")
    # 1,000 unfinished uploads at once: the first 200 of one owner are
    # taken, the rest get a 429 that says why.
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        codes = list(ex.map(lambda i: create(node, key, 1000 + i, f"u{i}.flac"), range(1000)))
    by = {}
    for r in codes:
        by[r.status] = by.get(r.status, 0) + 1
    check_eq(by, {201: 199, 429: 801}, "1,000 creations (one of this owner's is open already)")
    msg = check_error(next(r for r in codes if r.status == 429), 429, "the 429")
    print(f"# 1,000 unfinished: {by}; {msg}")
    # Nothing stored changed: the catalog as before, the kept track whole.
    with catalog(node.data) as db:
        after = stored(db)
    check_eq(after, before, "the catalog after every hostile upload")
    check(stream(node, kept, key) == data, "the track stored before streams as it was")
    check(node.running(), "the node is up")
    node.stop()


@test("chorus upload sends a folder and an archive to a node (checksummed 12 MiB PATCHes): each file ingested, its tracks printed, byte-exact")
def _(tmp):
    node = Node(tmp / "d", tmp / "logs")
    key = editor_key(node)
    src = [make_audio(tmp / "up" / f"s{i}.{fmt}", seconds=1.5,
                      tags={"title": f"Sent {i}", "artist": "CLI Band"})
           for i, fmt in enumerate(("mp3", "flac", "m4a"))]
    # 20 MB in PATCHes of 12 MiB, each with a sha256 checksum: parts of
    # 8 MiB held until their PATCH's digest matched.
    src.append(make_wav(tmp / "up" / "s3.wav", file_size=20_000_044, seed=3))
    z = tmp / "up" / "album.zip"
    inner = make_audio(tmp / "inner.ogg", seconds=1.0, tags={"title": "Zipped One"})
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(inner, "Album/inner.ogg")
    r = subprocess.run([CHORUS_BIN, "upload", "--chunk-size", "12M",
                        f"http://127.0.0.1:{node.port}", tmp / "up"],
                       capture_output=True, text=True, timeout=300,
                       env=chorus_env({"CHORUS_KEY": key,
                                       "XDG_STATE_HOME": str(tmp / "state")}))
    check_eq(r.returncode, 0, "chorus upload's exit status", r.stdout, r.stderr)
    check(key not in r.stdout + r.stderr, "the key is in no output")
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("upload: /")]
    check_eq(len(lines), 5, "one line per file", r.stdout)
    check(all(": ingested" in ln for ln in lines), "every file ingested", r.stdout)
    with catalog(node.data) as db:
        check_eq(db.track_count(), 5, "five tracks")
    titles = {t["title"]: t["id"] for t in node.get_json("/api/v1/tracks")["tracks"]}
    check_eq(sorted(titles), ["Sent 0", "Sent 1", "Sent 2", "Zipped One", "s3"], "the titles")
    for i, f in enumerate(src):
        check(stream(node, titles[f"Sent {i}" if i < 3 else "s3"], key) == f.read_bytes(),
              f"{f.name} streams byte-exact")
    node.stop()


@test("an unfinished upload expires: its parts leave the origin, HEAD says 404")
def _(tmp):
    node = Node(tmp / "d", tmp / "logs", args=["--upload-expiry", "2"])
    key = editor_key(node)
    r = create(node, key, 5_000_000)
    url = r.header("location")
    r = patch(node, key, url, 0, os.urandom(3_000_000))
    check_eq((r.status, r.header("upload-offset")), (204, "3000000"), "half of it", r)
    check(r.header("upload-expires", "").endswith("GMT"), "Upload-Expires", r)
    check(origin_parts(node.data), "its part is in the origin")
    secs = wait_for("the upload expired", lambda: tus(node, "HEAD", url, key).status == 404,
                    20, step=0.2)[1]
    print(f"# expired and removed {secs:.1f}s after a 2 s expiry")
    check_eq(origin_parts(node.data), [], "its parts are gone from the origin")
    node.stop()


def resumed_at(evs):
    """Where the client went on after the connection broke: the first
    progress figure below the one before it (tus-js-client counts from the
    offset its HEAD got)."""
    last = 0
    for e in evs:
        if e["event"] != "progress":
            continue
        if e["sent"] < last:
            return e["sent"]
        last = e["sent"]
    return None


def big_upload_until(tmp, endpoint, key, path, at_fraction, on_point, logdir):
    """tus-js-client uploading path; on_point() once it sent at_fraction of
    it; returns the client's done URL."""
    proc, out = tus_client(endpoint, key, [path], logdir)
    total = path.stat().st_size
    fired = False
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        evs = events(out)
        sent = max([e["sent"] for e in evs if e["event"] == "progress"] or [0])
        if not fired and sent >= at_fraction * total:
            on_point(sent)
            fired = True
        time.sleep(0.01)
    rc = proc.wait(600)
    check_eq(rc, 0, "tus-js-client's exit status", out.read_text(errors="replace")[-3000:])
    check(fired, "the kill happened mid-upload")
    done = [e for e in events(out) if e["event"] == "done"]
    check_eq(len(done), 1, "one upload done", out.read_text(errors="replace")[-2000:])
    return done[0]["url"], events(out)


@test("kill -9 at a random point of a 200 MB upload, restart: tus-js-client resumes from the last acknowledged offset, byte-exact")
def _(tmp):
    data_dir = tmp / "d"
    node = Node(data_dir, tmp / "logs", tag="first")
    port = node.port
    key = editor_key(node)
    big = make_wav(tmp / "big.wav", file_size=200_000_044, seed=5)
    want = sha256_file(big)
    frac = random.Random().uniform(0.2, 0.8)
    state = {}

    def kill(sent):
        node.kill9()
        state["sent"] = sent
        time.sleep(0.5)  # the client sees the node gone, and retries
        state["node"] = Node(data_dir, tmp / "logs", tag="second",
                             args=["--listen", f"127.0.0.1:{port}"])
    url, evs = big_upload_until(tmp, f"http://127.0.0.1:{port}/api/v1/uploads", key, big,
                                frac, kill, tmp / "logs")
    n2 = state["node"]
    s = wait_finished(n2, upload_id(url), key, timeout=300)
    check_eq(s["state"], "done", "ingested after the restart", s)
    got = hashlib.sha256(stream(n2, s["track_ids"][0], key)).hexdigest()
    check_eq(got, want, "the track is the file, byte for byte")
    print(f"# killed at {state['sent'] / 1e6:.1f} MB sent ({frac:.0%}); resumed and"
          f" ingested byte-exact")
    resumed = resumed_at(evs)
    check(resumed is not None and 8 << 20 <= resumed <= state["sent"],
          f"the client went on from the acknowledged offset, not from 0 (resumed at {resumed},"
          f" {state['sent']} sent when killed)")
    print(f"# resumed at {resumed / 1e6:.1f} MB: {state['sent'] - resumed} bytes sent again")
    check_eq(origin_parts(data_dir), [], "no part left in the origin")
    n2.stop()


@test("three nodes behind haproxy (PostgreSQL, S3): the receiving node killed mid-upload, the upload goes on on another, byte-exact; its parts leave the bucket")
def _(tmp):
    s3 = S3Server.shared()
    prefix = f"up-{random.randrange(1 << 30):x}"
    with pg.server() as db:
        origin = s3.spec(prefix)
        env = chorus_env(s3.env())
        nodes = [Node(tmp / f"n{i}", tmp / "logs", tag=f"n{i}", env=env,
                      args=["--db", db.conninfo, "--origin", origin]) for i in (1, 2, 3)]
        key = make_key(nodes[0].data, role="editor", db=db.conninfo, name="uploader")
        wait_for("the key on every node", lambda: all(
            http_request(n.port, "GET", "/api/v1/session",
                         {"Authorization": f"Bearer {key}"}).status == 200 for n in nodes), 10)
        hap = Haproxy(tmp / "hap", [n.port for n in nodes])
        try:
            hap.wait_states({"node1": "UP", "node2": "UP", "node3": "UP"}, 10)
            big = make_wav(tmp / "big.wav", file_size=48_000_044, seed=9)
            want = sha256_file(big)
            victim = {}

            def kill(sent):
                # The receiving node: the one haproxy has a session open to.
                def busy():
                    for name, st in hap.stat().items():
                        if name.startswith("node") and int(st.get("scur") or 0) >= 1:
                            victim["i"] = int(name[4:]) - 1
                            return True
                    return False
                wait_for("the receiving node", busy, 10, step=0.01)
                nodes[victim["i"]].kill9()
                victim["sent"] = sent
            url, evs = big_upload_until(tmp, f"http://127.0.0.1:{hap.port}/api/v1/uploads",
                                        key, big, random.Random().uniform(0.25, 0.6), kill,
                                        tmp / "logs")
            alive = [n for n in nodes if n.running()]
            check_eq(len(alive), 2, "two nodes left")
            s = wait_finished(alive[0], upload_id(url), key, timeout=300)
            check_eq(s["state"], "done", "ingested by a node left", s)
            check(s["node"], "the ingesting node is named", s)
            tid = s["track_ids"][0]
            wait_for("the track on every node left", lambda: all(
                http_request(n.port, "GET", f"/api/v1/tracks/{tid}",
                             {"Authorization": f"Bearer {key}"}).status == 200
                for n in alive), 10)
            for n in alive:
                got = hashlib.sha256(stream(n, tid, key)).hexdigest()
                check_eq(got, want, f"node {n.port}: the track, byte for byte")
            parts = [o["Key"] for o in s3.list(prefix + "/u/")]
            check_eq(parts, [], "no part left in the bucket (aws s3api list-objects-v2)")
            resumed = resumed_at(evs)
            check(resumed is not None and resumed <= victim["sent"],
                  f"resumed at the acknowledged offset ({resumed})")
            print(f"# resumed at {resumed / 1e6:.1f} MB")
            print(f"# node{victim['i'] + 1} killed at {victim['sent'] / 1e6:.1f} MB of 48 MB;"
                  f" finished through haproxy on another, byte-exact on both left")
        finally:
            hap.close()
            for n in nodes:
                if n.running():
                    n.stop()


@test("a cluster node restarted while PostgreSQL is down serves; uploads answer 503 until it is back, then work")
def _(tmp):
    with pg.server() as db:
        origin = f"dir:{tmp / 'origin'}"
        args = ["--db", db.conninfo, "--origin", origin]
        node = Node(tmp / "n", tmp / "logs", tag="first", args=args)
        key = make_key(node.data, role="editor", db=db.conninfo, name="uploader")
        wait_for("the key", lambda: http_request(node.port, "GET", "/api/v1/session", {
            "Authorization": f"Bearer {key}"}).status == 200, 10)
        song = make_audio(tmp / "s.flac", seconds=1.0, tags={"title": "Before"})
        urls = run_client(f"http://127.0.0.1:{node.port}/api/v1/uploads", key, [song],
                          tmp / "logs")
        tid = wait_finished(node, upload_id(urls[str(song)]), key)["track_ids"][0]
        node.stop()
        db.stop()
        node = Node(tmp / "n", tmp / "logs", tag="second", args=args)
        check(stream(node, tid, key) == song.read_bytes(), "a stream with PostgreSQL down")
        check_error(create(node, key, 1000), 503, "an upload with PostgreSQL down")
        db.start()
        secs = wait_for("uploads taken again", lambda: create(node, key, 1000).status == 201,
                        30, step=0.2)[1]
        print(f"# PostgreSQL back: an upload taken {secs:.2f} s later")
        node.stop()


if __name__ == "__main__":
    main()
