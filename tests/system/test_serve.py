#!/usr/bin/python3
"""System tests for `chorus serve`, driving the real binary ($CHORUS_BIN) over
real sockets on 127.0.0.1.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_serve.py [NAME...]
"""

import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chorus_test import (  # noqa: E402
    CHUNK_SIZE, FFMPEG, FFPROBE, Catalog, Node, RawConn, check, check_eq, fail, ingest_ok, main,
    make_audio, make_wav, node_stream, noproxy_env, run_chorus, run_ffmpeg, shared_dir, stream_url,
    test)


# ------------------------------------------------------------------ the shared library

# fmt: (tags written, what the API must show)
FORMATS = {
    "mp3": ({"title": "Crazy in Löve — Mix", "artist": "Beyoncé", "album": "Dangerously in Löve",
             "album_artist": "Beyoncé", "track": "1/15", "disc": "1/2", "date": "2003",
             "genre": "R&B", "TSRC": "USSM10303601"},
            {"isrc": "USSM10303601", "codec": "mp3", "mime_type": "audio/mpeg",
             "cover": "jpg"}),
    "flac": ({"title": "Svefn-g-englar", "artist": "Sigur Rós", "album": "Ágætis byrjun",
              "album_artist": "Sigur Rós", "track": "2/10", "disc": "1/1", "date": "1999",
              "genre": "Post-Rock", "ISRC": "ISA129900002"},
             {"isrc": "ISA129900002", "codec": "flac", "mime_type": "audio/flac",
              "cover": "png"}),
    "ogg": ({"title": "群青日和", "artist": "東京事変", "album": "東京の夜",
             "album_artist": "東京事変 & 椎名林檎", "track": "3", "disc": "2",
             "date": "2004-09-08", "genre": "J-Rock", "ISRC": "JPTO00400001"},
            {"isrc": "JPTO00400001", "codec": "vorbis", "mime_type": "audio/ogg", "cover": None}),
    "opus": ({"title": "Утекай", "artist": "Мумий Тролль", "album": "Морская",
              "album_artist": "Мумий Тролль", "track": "4/11", "disc": "1", "date": "1997",
              "genre": "Рок", "ISRC": "RUA019700004"},
             {"isrc": "RUA019700004", "codec": "opus", "mime_type": "audio/ogg; codecs=opus",
              "cover": None}),
    "m4a": ({"title": "Jóga", "artist": "Björk", "album": "Homogenic",
             "album_artist": "Björk Guðmundsdóttir", "track": "5/10", "disc": "1/1",
             "date": "1997", "genre": "Electronic"},
            {"isrc": None, "codec": "aac", "mime_type": "audio/mp4", "cover": None}),
    "wav": ({"title": "Ünder Cöver", "artist": "Motörhead", "album": "Ace of Spädes",
             "track": "6", "date": "1980", "genre": "Heavy Metal"},
            {"isrc": None, "codec": "pcm_s16le", "mime_type": "audio/wav", "cover": None}),
}
SECONDS = 1.5

# The ordered album: (disc, track, title), written in this (scrambled) order.
ORDERED = [(2, 1, "Zeta"), (1, 10, "Alpha"), (2, 3, "Aardvark"), (1, 2, "Beta"),
           (1, 1, "Ω Omega")]
SEEK_FORMATS = ("mp3", "flac", "ogg")
SEEK_SECONDS = 14


def _library():
    """Builds the shared library once and ingests it: {'data', 'files':
    {key: path}, 'covers': {key: bytes}}."""
    root = shared_dir("serve-lib")
    state = root / "state.json"
    if state.exists():
        s = json.loads(state.read_text())
        s["files"] = {k: root / v for k, v in s["files"].items()}
        s["covers"] = {k: (root / v).read_bytes() for k, v in s["covers"].items()}
        s["data"] = root / "data"
        return s
    lib = root / "lib"
    covers = {}
    for ext, color, codec in (("jpg", "blue", ["-c:v", "mjpeg"]), ("png", "green", [])):
        p = root / f"cover.{ext}"
        run_ffmpeg(["-f", "lavfi", "-i", f"color=c={color}:s=48x40:d=1", "-frames:v", "1"]
                   + codec + [p])
        covers[ext] = p
    files = {}
    for fmt, (tags, want) in FORMATS.items():
        dst = lib / "formats" / f"track.{fmt}"
        if want["cover"]:
            plain = make_audio(root / f"plain.{fmt}", fmt, SECONDS, tags)
            dst.parent.mkdir(parents=True, exist_ok=True)
            run_ffmpeg(["-i", plain, "-i", covers[want["cover"]], "-map", "0:a", "-map", "1:v",
                        "-c", "copy", "-disposition:v", "attached_pic", dst])
            plain.unlink()
        else:
            make_audio(dst, fmt, SECONDS, tags)
        files[fmt] = dst
    for disc, track, title in ORDERED:
        files[f"ord-{disc}-{track}"] = make_audio(
            lib / "ordered" / f"{disc}-{track}.flac", "flac", 0.3,
            {"title": title, "artist": "Order Artist", "album": "Ordered Album",
             "album_artist": "Order Artist", "track": str(track), "disc": str(disc),
             "date": "2010"})
    files["earlier"] = make_audio(lib / "ordered" / "earlier.flac", "flac", 0.3,
                                  {"title": "Old One", "artist": "Order Artist",
                                   "album": "Earlier Album", "date": "1990"})
    for fmt in SEEK_FORMATS:
        files[f"seek-{fmt}"] = make_audio(lib / "seek" / f"long.{fmt}", fmt, SEEK_SECONDS,
                                          {"title": f"Seek {fmt}", "artist": "Seeker",
                                           "album": "Seeking"})
    files["big"] = make_wav(lib / "big" / "big.wav", file_size=2 * CHUNK_SIZE + 300_044, seed=7)
    ingest_ok(root / "data", lib)
    state.write_text(json.dumps({
        "files": {k: str(v.relative_to(root)) for k, v in files.items()},
        "covers": {k: str(v.relative_to(root)) for k, v in covers.items()},
        "ids": {}}))
    return _library()


def library():
    s = _library()
    if not s.get("by_path"):
        with Catalog(s["data"]) as cat:
            rows = cat.rows("SELECT id, source_path FROM tracks")
        by_path = {r["source_path"]: "%016x" % r["id"] for r in rows}
        s["ids"] = {k: by_path[os.path.realpath(p)] for k, p in s["files"].items()}
        s["by_path"] = True
    return s


_LIB = {}


def lib():
    if "s" not in _LIB:
        _LIB["s"] = library()
    return _LIB["s"]


def all_pages(node, kind, limit):
    items, offset, total = [], 0, None
    while True:
        j = node.get_json(f"/api/v1/{kind}?limit={limit}&offset={offset}")
        check_eq(sorted(j), sorted([kind, "total", "limit", "offset"]), f"{kind} page keys")
        check_eq((j["limit"], j["offset"]), (limit, offset), f"{kind} page limit/offset")
        if total is None:
            total = j["total"]
        check_eq(j["total"], total, f"{kind} total across pages")
        check(len(j[kind]) <= limit, f"{kind}: {len(j[kind])} items for limit {limit}")
        items += j[kind]
        if len(j[kind]) < limit:
            break
        offset += limit
    check_eq(len(items), total, f"{kind}: items over all pages vs total")
    check_eq(len({i["id"] for i in items}), total, f"{kind}: distinct ids over all pages")
    return items


# ------------------------------------------------------------------ API

@test("api: /health, /api/v1/node, tracks JSON matches the tags written (every format)")
def _(tmp):
    L = lib()
    node = Node(L["data"], tmp)
    j = node.get_json("/health")
    check_eq(j, {"status": "ok"}, "/health")
    n = node.get_json("/api/v1/node")
    for k in ("version", "uptime_s", "connections", "cache"):
        check(k in n, f"/api/v1/node lacks {k}: {n}")
    check_eq(n["version"], node.version, "node version vs the serving line")
    check(isinstance(n["uptime_s"], int) and 0 <= n["uptime_s"] < 120, f"uptime_s {n}")
    check(isinstance(n["connections"], int) and n["connections"] >= 1, f"connections {n}")
    for k in ("bytes", "budget_bytes", "hits", "misses", "origin_reads", "origin_bytes",
              "evictions"):
        check(isinstance(n["cache"].get(k), int), f"cache.{k} missing or not an integer: {n}")
    check_eq(n["cache"]["budget_bytes"], 1 << 30, "default cache budget")

    tracks = all_pages(node, "tracks", 7)
    check_eq(len(tracks), len(L["files"]), "tracks served")
    keys = [t["title"].lower() for t in tracks]
    check_eq(keys, sorted(keys), "tracks ordered by title (case-insensitive)")
    by_id = {t["id"]: t for t in tracks}
    problems = []
    for fmt, (tags, want) in FORMATS.items():
        path = L["files"][fmt]
        tid = L["ids"][fmt]
        t = by_id.get(tid)
        if t is None:
            problems.append(f"{fmt}: track {tid} not listed")
            continue
        one = node.get_json(f"/api/v1/tracks/{tid}")
        if one != t:
            problems.append(f"{fmt}: /tracks/{tid} differs from the list entry:\n"
                            f"    {one}\n    {t}")
        exp = {
            "id": tid, "title": tags["title"], "artist": tags["artist"], "album": tags["album"],
            "album_artist": tags.get("album_artist", tags["artist"]),
            "track_number": int(tags["track"].split("/")[0]),
            "disc_number": int(tags["disc"].split("/")[0]) if "disc" in tags else None,
            "year": int(tags["date"][:4]), "genre": tags["genre"], "isrc": want["isrc"],
            "codec": want["codec"], "mime_type": want["mime_type"],
            "size_bytes": path.stat().st_size,
        }
        if not re.fullmatch(rf"/api/v1/tracks/{tid}/stream\?exp=\d+&sig=[0-9a-zA-Z._-]+",
                            t.get("stream_url", "")):
            problems.append(f"{fmt}: stream_url {t.get('stream_url')!r} is not a signed URL")
        for k, v in exp.items():
            if t.get(k, "<missing>") != v:
                problems.append(f"{fmt}: {k} = {t.get(k, '<missing>')!r}, want {v!r}")
        if not isinstance(t.get("duration_ms"), int) or abs(t["duration_ms"] - SECONDS * 1000) > 100:
            problems.append(f"{fmt}: duration_ms {t.get('duration_ms')!r}, want 1500 +-100")
        for k in ("artist_id", "album_id"):
            if not re.fullmatch(r"[0-9a-f]{16}", str(t.get(k))):
                problems.append(f"{fmt}: {k} {t.get(k)!r} is not 16 hex digits")
        if t.get("etag", "").strip('"') != hashlib.sha256(path.read_bytes()).hexdigest():
            problems.append(f"{fmt}: etag {t.get('etag')!r} is not the file's sha256")
    if problems:
        fail("tracks JSON does not match the tags:\n  " + "\n  ".join(problems))
    node.stop()


@test("api: artists and albums lists (paging, order), album tracks by disc then track, covers")
def _(tmp):
    L = lib()
    node = Node(L["data"], tmp)
    artists = all_pages(node, "artists", 3)
    check_eq(all_pages(node, "artists", 500), artists, "artists with limit 500 vs pages of 3")
    names = [a["name"] for a in artists]
    want_names = {t[0]["artist"] for t in FORMATS.values()} | \
        {t[0].get("album_artist", t[0]["artist"]) for t in FORMATS.values()} | \
        {"Order Artist", "Seeker", "Unknown Artist"}
    check_eq(set(names), want_names, "artist names")
    check_eq(names, sorted(names, key=str.lower), "artists ordered by name")
    for a in artists:
        check_eq(sorted(a), ["album_count", "id", "name", "track_count"], f"artist keys {a}")
    albums = all_pages(node, "albums", 4)
    titles = [a["title"] for a in albums]
    check_eq(titles, sorted(titles, key=str.lower), "albums ordered by title")
    check_eq(set(titles), {t[0]["album"] for t in FORMATS.values()} |
             {"Ordered Album", "Earlier Album", "Seeking", "Unknown Album"}, "album titles")
    album_by_title = {a["title"]: a for a in albums}

    # The ordered album: tracks by disc, then track number (10 after 2).
    oa = album_by_title["Ordered Album"]
    detail = node.get_json(f"/api/v1/albums/{oa['id']}")
    check_eq({k: v for k, v in detail.items() if k != "tracks"}, oa, "album detail vs list entry")
    got = [(t["disc_number"], t["track_number"], t["title"]) for t in detail["tracks"]]
    check_eq(got, sorted(ORDERED), "album tracks in disc then track order")
    check_eq(oa["track_count"], len(ORDERED), "track_count")
    check_eq(oa["year"], 2010, "album year")
    check_eq(oa["artist"], "Order Artist", "album artist")
    check(abs(oa["duration_ms"] - 300 * len(ORDERED)) <= 100 * len(ORDERED),
          f"album duration_ms {oa['duration_ms']}")
    for t in detail["tracks"]:
        check_eq(node.get_json(f"/api/v1/tracks/{t['id']}"), t, "album track vs /tracks/{id}")

    # The artist with "albums" by year.
    art = [a for a in artists if a["name"] == "Order Artist"][0]
    ad = node.get_json(f"/api/v1/artists/{art['id']}")
    check_eq({k: v for k, v in ad.items() if k != "albums"}, art, "artist detail vs list entry")
    check_eq([a["title"] for a in ad["albums"]], ["Earlier Album", "Ordered Album"],
             "artist albums (by year)")
    check_eq((art["album_count"], art["track_count"]), (2, len(ORDERED) + 1),
             "artist album/track counts")
    check_eq(ad["albums"][1], oa, "artist's album entry vs albums list")

    # Covers: the embedded picture's bytes; 404 JSON without one.
    for fmt, (tags, want) in FORMATS.items():
        a = album_by_title[tags["album"]]
        url = f"/api/v1/albums/{a['id']}/cover"
        r = node.get(url)
        if want["cover"]:
            check_eq(a["cover_url"], url, f"{fmt}: cover_url")
            check_eq(r.status, 200, f"{fmt}: cover status", r)
            check_eq(r.body, L["covers"][want["cover"]], f"{fmt}: cover bytes")
            ct = {"jpg": "image/jpeg", "png": "image/png"}[want["cover"]]
            check_eq(r.header("content-type"), ct, f"{fmt}: cover Content-Type")
        else:
            check_eq(a["cover_url"], None, f"{fmt}: cover_url without a cover")
            check_eq(r.status, 404, f"{fmt}: cover status without a cover", r)
            check_eq(r.json()["error"]["status"], 404, "cover 404 body", r)
    node.stop()


def expect_error(node, method, path, status, body=None, headers=None):
    r = node.request(method, path, headers=headers, body=body)
    if r.status != status:
        return f"{method} {path}: status {r.status}, want {status}: {r.body[:150]!r}"
    if not r.header("content-type", "").startswith("application/json"):
        return f"{method} {path}: error Content-Type {r.header('content-type')!r}"
    try:
        j = json.loads(r.body)
        e = j["error"]
        ok = (set(j) == {"error"} and e["status"] == status and isinstance(e["message"], str)
              and e["message"])
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        return f"{method} {path}: error body {r.body[:200]!r}"
    if status == 405 and "GET" not in (r.header("allow") or ""):
        return f"{method} {path}: 405 without an Allow header: {r.headers}"
    return None


@test("api errors: 404 unknown/malformed ids and paths, 400 bad paging, 405 other methods")
def _(tmp):
    L = lib()
    node = Node(L["data"], tmp)
    tid = L["ids"]["mp3"]
    albums = node.get_json("/api/v1/albums?limit=500")["albums"]
    aid = albums[0]["id"]
    probs = []
    bad_ids = ["0123456789abcdef", "7fffffffffffffff", "xyz", "0123456789ABCDEF",
               "0000000000000000", "0123456789abcdef0", "0123456789abcde", "ffffffffffffffff",
               "%30123456789abcde", "-123456789abcdef"]
    for bid in bad_ids:
        for p in (f"/api/v1/tracks/{bid}", f"/api/v1/artists/{bid}", f"/api/v1/albums/{bid}",
                  f"/api/v1/tracks/{bid}/stream", f"/api/v1/albums/{bid}/cover"):
            probs.append(expect_error(node, "GET", p, 404))
    for p in ("/nope", "/api", "/api/v1", "/api/v2/tracks", "/api/v1/nope",
              f"/api/v1/tracks/{tid}/nope", f"/api/v1/tracks/{tid}/stream/x",
              f"/api/v1/albums/{aid}/cover/x", "/api/v1/node/x", "/health/x", "/healthz"):
        probs.append(expect_error(node, "GET", p, 404))
    for kind in ("artists", "albums", "tracks"):
        for q in ("limit=0", "limit=501", "limit=-1", "limit=abc", "limit=1e3", "limit=",
                  "limit=10x", "limit=99999999999999999999", "offset=-1", "offset=abc",
                  "offset=1e3", "offset=", "limit=5&offset=-5"):
            probs.append(expect_error(node, "GET", f"/api/v1/{kind}?{q}", 400))
        # The bounds themselves are fine.
        for q in ("limit=1", "limit=500", "offset=0", "offset=100000"):
            r = node.get(f"/api/v1/{kind}?{q}")
            if r.status != 200:
                probs.append(f"GET /api/v1/{kind}?{q}: status {r.status}, want 200")
    # The editors' writes are routes of these paths (test_edit.py): not
    # sent here, where they would change the shared library.
    editing = {("PATCH", f"/api/v1/tracks/{tid}"), ("DELETE", f"/api/v1/tracks/{tid}"),
               ("PATCH", f"/api/v1/albums/{aid}"), ("DELETE", f"/api/v1/albums/{aid}"),
               ("PUT", f"/api/v1/albums/{aid}/cover")}
    for m in ("POST", "PUT", "DELETE", "PATCH"):
        for p in ("/api/v1/tracks", f"/api/v1/tracks/{tid}", f"/api/v1/tracks/{tid}/stream",
                  "/api/v1/artists", "/api/v1/albums", f"/api/v1/albums/{aid}",
                  f"/api/v1/albums/{aid}/cover", "/api/v1/node"):
            if (m, p) not in editing:
                probs.append(expect_error(node, m, p, 405,
                                          body=b"" if m != "DELETE" else None))
    probs = [p for p in probs if p]
    if probs:
        fail(f"{len(probs)} wrong error answers:\n  " + "\n  ".join(probs[:40]))
    check_eq(node.get_json("/health"), {"status": "ok"}, "/health after the errors")
    node.stop()


# ------------------------------------------------------------------ streams

def check_range_resp(r, data, first, last, what):
    size = len(data)
    if r.status != 206:
        fail(f"{what}: status {r.status}, want 206", r)
    check_eq(r.header("content-range"), f"bytes {first}-{last}/{size}", f"{what}: Content-Range")
    check_eq(r.header("content-length"), str(last - first + 1), f"{what}: Content-Length")
    if r.body != data[first:last + 1]:
        fail(f"{what}: body of {len(r.body)} bytes differs from the source bytes "
             f"{first}-{last}")


@test("streams: GET whole file byte-exact for every format, HEAD headers without a body")
def _(tmp):
    L = lib()
    node = Node(L["data"], tmp)
    conn = node.conn()
    for key, path in sorted(L["files"].items()):
        tid = L["ids"][key]
        data = path.read_bytes()
        meta = node.get_json(f"/api/v1/tracks/{tid}", conn=conn)
        r = node_stream(node, tid, conn=conn)
        check_eq(r.status, 200, f"{key}: stream status", r)
        if r.body != data:
            fail(f"{key}: streamed {len(r.body)} bytes differ from the {len(data)}-byte file")
        check_eq(r.header("content-length"), str(len(data)), f"{key}: Content-Length")
        check_eq(r.header("content-type"), meta["mime_type"], f"{key}: Content-Type")
        check_eq(r.header("accept-ranges"), "bytes", f"{key}: Accept-Ranges")
        check_eq(r.header("etag"), '"' + hashlib.sha256(data).hexdigest() + '"', f"{key}: ETag")
        h = node.request("HEAD", f"/api/v1/tracks/{tid}/stream", conn=conn)
        check_eq(h.status, 200, f"{key}: HEAD status", h)
        for k in ("content-length", "content-type", "accept-ranges", "etag"):
            check_eq(h.header(k), r.header(k), f"{key}: HEAD {k} vs GET")
        check_eq(h.body, b"", f"{key}: HEAD body")
    for fmt in FORMATS:
        check_eq(FORMATS[fmt][1]["mime_type"],
                 node_stream(node, L["ids"][fmt], {"Range": "bytes=0-0"}).header("content-type"),
                 f"{fmt}: stream Content-Type of the codec")
    # HEAD really sends no body: the next response on the connection follows at once.
    tid = L["ids"]["big"]
    rc = RawConn(node.port)
    au = node.auth_line().decode()
    rc.send(f"HEAD /api/v1/tracks/{tid}/stream HTTP/1.1\r\nHost: t\r\n{au}\r\n"
            f"HEAD /api/v1/tracks/{tid}/stream HTTP/1.1\r\nHost: t\r\n{au}Range: bytes=5-9\r\n\r\n"
            "GET /health HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    a = rc.read_response(head=True)
    b = rc.read_response(head=True)
    c = rc.read_response()
    check_eq((a.status, a.header("content-length")),
             (200, str(L["files"]["big"].stat().st_size)), "raw HEAD", a)
    check_eq((b.status, b.header("content-length"), b.header("content-range")),
             (206, "5", f"bytes 5-9/{L['files']['big'].stat().st_size}"), "raw HEAD with Range", b)
    check_eq((c.status, c.body), (200, b'{"status":"ok"}\n'), "GET /health after two HEADs", c)
    rc.close()
    node.stop()


@test("streams: 400 random ranges (a-b, -n, a-), probes, multi-range, 416, If-Range")
def _(tmp):
    L = lib()
    node = Node(L["data"], tmp)
    rnd = random.Random(1234)
    conn = node.conn()
    checked = 0
    for key in ("big", "seek-flac", "mp3", "ogg", "wav"):
        tid = L["ids"][key]
        data = L["files"][key].read_bytes()
        size = len(data)
        n = 300 if key == "big" else 25
        for _ in range(n):
            kind = rnd.random()
            if kind < 0.45:
                a = rnd.randrange(size)
                b = a + rnd.randrange(5000)
            elif kind < 0.65:  # around chunk boundaries
                k = rnd.randrange(1, max(2, (size + CHUNK_SIZE - 1) // CHUNK_SIZE + 1))
                a = max(0, k * CHUNK_SIZE - rnd.randrange(200))
                b = a + rnd.randrange(400)
                if a >= size:
                    a, b = size - 1, size + 10
            elif kind < 0.75:
                a = rnd.randrange(size)
                b = a + rnd.randrange(CHUNK_SIZE + CHUNK_SIZE // 2)
            elif kind < 0.85:  # suffix
                sfx = rnd.choice([1, 2, rnd.randrange(1, size + 1), size, size + 7,
                                  rnd.randrange(1, 5000)])
                r = node_stream(node, tid, {"Range": f"bytes=-{sfx}"}, conn=conn)
                check_range_resp(r, data, max(0, size - sfx), size - 1, f"{key} bytes=-{sfx}")
                checked += 1
                continue
            else:  # open
                a = rnd.choice([rnd.randrange(size), size - 1, max(0, size - rnd.randrange(3000))])
                r = node_stream(node, tid, {"Range": f"bytes={a}-"}, conn=conn)
                check_range_resp(r, data, a, size - 1, f"{key} bytes={a}-")
                checked += 1
                continue
            r = node_stream(node, tid, {"Range": f"bytes={a}-{b}"}, conn=conn)
            check_range_resp(r, data, a, min(b, size - 1), f"{key} bytes={a}-{b}")
            checked += 1
    check(checked >= 400, f"only {checked} ranges checked")

    tid = L["ids"]["big"]
    data = L["files"]["big"].read_bytes()
    size = len(data)
    etag = '"' + hashlib.sha256(data).hexdigest() + '"'
    # Safari's probe and Chrome's first request.
    check_range_resp(node_stream(node, tid, {"Range": "bytes=0-1"}), data, 0, 1, "Safari bytes=0-1")
    check_range_resp(node_stream(node, tid, {"Range": "bytes=0-"}), data, 0, size - 1,
                     "Chrome bytes=0-")
    # Multi-range: answered with the whole file.
    for mr in ("bytes=0-10,20-30", "bytes=0-0,-1", f"bytes=100-200, {CHUNK_SIZE}-{CHUNK_SIZE + 5}",
               "bytes=0-100,50-150"):
        r = node_stream(node, tid, {"Range": mr}, conn=conn)
        if r.status == 200:
            check_eq(r.body == data, True, f"{mr}: 200 body is the whole file")
            check_eq(r.header("content-length"), str(size), f"{mr}: Content-Length")
        else:
            fail(f"{mr}: status {r.status}, want 200 with the whole file", r)
    # Unsatisfiable.
    for ur in (f"bytes={size}-", f"bytes={size}-{size + 100}", f"bytes={size + 1000}-",
               "bytes=-0", f"bytes={size}-,{size + 5}-"):
        r = node_stream(node, tid, {"Range": ur}, conn=conn)
        check_eq(r.status, 416, f"{ur}: status", r)
        check_eq(r.header("content-range"), f"bytes */{size}", f"{ur}: Content-Range")
        check_eq(r.json()["error"]["status"], 416, f"{ur}: error body")
    # Invalid syntax is ignored: 200 with everything.
    for ir in ("bytes=5-1", "items=0-5", "bytes=abc", "bytes=-", "bytes 0-5"):
        r = node_stream(node, tid, {"Range": ir}, conn=conn)
        check_eq((r.status, r.body == data), (200, True), f"{ir}: ignored, whole file")
    # If-Range.
    r = node_stream(node, tid, {"Range": "bytes=100-199", "If-Range": etag}, conn=conn)
    check_range_resp(r, data, 100, 199, "If-Range with the ETag")
    check_eq(r.header("etag"), etag, "ETag header")
    for other in ('"0000"', etag.strip('"'), "W/" + etag, "Wed, 21 Oct 2015 07:28:00 GMT"):
        r = node_stream(node, tid, {"Range": "bytes=100-199", "If-Range": other}, conn=conn)
        check_eq((r.status, len(r.body), r.body == data), (200, size, True),
                 f"If-Range {other}: 200 with the whole file")
    node.stop()


@test("streams: keep-alive (10 requests on one connection) and pipelining (3 in one write)")
def _(tmp):
    L = lib()
    node = Node(L["data"], tmp)
    tid = L["ids"]["big"]
    data = L["files"]["big"].read_bytes()
    size = len(data)
    rc = RawConn(node.port)
    au = node.auth_line().decode()
    port_before = rc.sock.getsockname()
    for i in range(10):
        a = i * 200_000
        rc.send(f"GET /api/v1/tracks/{tid}/stream HTTP/1.1\r\nHost: t\r\n{au}"
                f"Range: bytes={a}-{a + 99_999}\r\n\r\n".encode())
        r = rc.read_response()
        check_range_resp(r, data, a, a + 99_999, f"keep-alive request {i}")
        check(r.header("connection", "").lower() != "close", f"request {i}: Connection: close")
    rc.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
    check_eq(rc.read_response().body, b'{"status":"ok"}\n', "health on the same connection")
    check_eq(rc.sock.getsockname(), port_before, "same connection")
    check(not rc.closed_by_peer(0.3), "connection closed after keep-alive requests")
    rc.close()

    rc = RawConn(node.port)
    reqs = (f"GET /api/v1/tracks/{tid}/stream HTTP/1.1\r\nHost: t\r\n{au}Range: bytes=-70000\r\n\r\n"
            f"GET /api/v1/tracks/{tid} HTTP/1.1\r\nHost: t\r\n{au}\r\n"
            f"GET /api/v1/tracks/{tid}/stream HTTP/1.1\r\nHost: t\r\n{au}\r\n"
            f"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    rc.send(reqs.encode())
    r1 = rc.read_response()
    check_range_resp(r1, data, size - 70000, size - 1, "pipelined 1 (suffix range)")
    r2 = rc.read_response()
    check_eq((r2.status, r2.json()["id"]), (200, tid), "pipelined 2 (track JSON)", r2)
    r3 = rc.read_response()
    check_eq((r3.status, r3.body == data), (200, True), "pipelined 3 (whole file)")
    r4 = rc.read_response()
    check_eq((r4.status, r4.body), (200, b'{"status":"ok"}\n'), "pipelined 4 (health)")
    check_eq(r4.header("connection"), "close", "Connection: close honoured")
    check(rc.closed_by_peer(3), "connection not closed after Connection: close")
    rc.close()
    # HTTP/1.0 without keep-alive: one response, then close.
    rc = RawConn(node.port)
    rc.send(b"GET /health HTTP/1.0\r\n\r\n")
    check_eq(rc.read_response().status, 200, "HTTP/1.0 request")
    check(rc.closed_by_peer(3), "HTTP/1.0 connection not closed")
    rc.close()
    node.stop()


@test("streams: ffprobe duration and ffmpeg -ss 10 seeking over HTTP (mp3 flac ogg)")
def _(tmp):
    L = lib()
    log = tmp / "access.log"
    node = Node(L["data"], tmp, ["--access-log", log])
    env = noproxy_env()
    problems = []
    for fmt in SEEK_FORMATS:
        tid = L["ids"][f"seek-{fmt}"]
        url = stream_url(node, tid)  # signed: ffmpeg sends no credentials
        p = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of",
                            "csv=p=0", url], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
        try:
            dur = float(p.stdout.decode().strip())
        except ValueError:
            dur = None
        if p.returncode != 0 or dur is None or abs(dur - SEEK_SECONDS) > 0.2:
            problems.append(f"{fmt}: ffprobe rc {p.returncode}, duration {p.stdout!r}, want "
                            f"{SEEK_SECONDS}; {p.stderr.decode(errors='replace')[-300:]}")
        before = len(log.read_text().splitlines()) if log.exists() else 0
        p = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-ss", "10", "-i", url, "-t", "1",
                            "-ac", "1", "-ar", "8000", "-f", "s16le", "-"], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if p.returncode != 0 or p.stderr.strip():
            problems.append(f"{fmt}: ffmpeg -ss 10 rc {p.returncode}: "
                            f"{p.stderr.decode(errors='replace')[-400:]}")
        elif abs(len(p.stdout) - 16000) > 1600:
            problems.append(f"{fmt}: ffmpeg -ss 10 -t 1 decoded {len(p.stdout)} bytes, want "
                            f"~16000 (1 s)")
        time.sleep(0.1)  # the access log line follows the response
        lines = log.read_text().splitlines()[before:]
        if not any(re.search(r'" 206 ', ln) for ln in lines):
            problems.append(f"{fmt}: seeking made no 206 answer: {lines}")
    if problems:
        fail("seeking over HTTP:\n  " + "\n  ".join(problems))
    node.stop()


# ------------------------------------------------------------------ cache

def fetch_all(port, tid, n, want, barrier=None, headers=None):
    """n threads each GET the stream; returns a list of problems."""
    problems = []
    lock = threading.Lock()

    def one(i):
        try:
            if barrier:
                barrier.wait(30)
            from chorus_test import http_request
            r = http_request(port, "GET", f"/api/v1/tracks/{tid}/stream", headers, timeout=60)
            if r.status != 200 or r.body != want:
                with lock:
                    problems.append(f"client {i}: status {r.status}, {len(r.body)} bytes, "
                                    f"equal {r.body == want}")
        except Exception as e:  # noqa: BLE001
            with lock:
                problems.append(f"client {i}: {e!r}")

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return problems


def track_id_of(data, path):
    with Catalog(data) as cat:
        rows = cat.rows("SELECT id, source_path FROM tracks")
    ids = [r["id"] for r in rows if r["source_path"] == os.path.realpath(path)]
    check_eq(len(ids), 1, f"tracks for {path}")
    return "%016x" % ids[0]


@test("cache: 50 concurrent cold clients on a 4-chunk track get exact bytes, one origin read per chunk")
def _(tmp):
    wav = make_wav(tmp / "lib" / "four.wav", file_size=3 * CHUNK_SIZE + 500_004, seed=11)
    ingest_ok(tmp / "data", tmp / "lib")
    tid = track_id_of(tmp / "data", wav)
    want = wav.read_bytes()
    node = Node(tmp / "data", tmp)
    s0 = node.stats()
    check_eq((s0["origin_reads"], s0["bytes"], s0["hits"]), (0, 0, 0), "cold cache stats")
    problems = fetch_all(node.port, tid, 50, want, threading.Barrier(50), node.auth())
    if problems:
        fail(f"{len(problems)} of 50 clients got wrong answers:\n  " + "\n  ".join(problems[:10]))
    s = node.stats()
    check_eq(s["origin_reads"], 4, f"origin_reads for 4 chunks and 50 clients (stats {s})")
    check_eq(s["origin_bytes"], len(want) + 4 * 16, f"origin_bytes (sealed) (stats {s})")
    check_eq(s["bytes"], len(want), f"cache bytes (stats {s})")
    check_eq(s["evictions"], 0, "evictions")
    check(s["hits"] + s["misses"] >= 50, f"hits + misses below 50 requests: {s}")
    node.stop()


@test("cache: warm after a restart (SIGTERM, start again): no new origin read, hits > 0")
def _(tmp):
    wav = make_wav(tmp / "lib" / "three.wav", file_size=2 * CHUNK_SIZE + 100_000, seed=12)
    mp3 = make_audio(tmp / "lib" / "small.mp3", "mp3", 1, {"title": "Small"})
    ingest_ok(tmp / "data", tmp / "lib")
    ids = {p: track_id_of(tmp / "data", p) for p in (wav, mp3)}
    node = Node(tmp / "data", tmp)
    for p, tid in ids.items():
        r = node_stream(node, tid)
        check_eq((r.status, r.body == p.read_bytes()), (200, True), f"first fetch of {p.name}")
    s1 = node.stats()
    check_eq(s1["origin_reads"], 4, f"origin reads of the first node {s1}")
    node.stop()
    node = Node(tmp / "data", tmp, tag="second")
    s2 = node.stats()
    check_eq((s2["origin_reads"], s2["bytes"]), (0, s1["bytes"]), f"restarted node {s2}")
    for p, tid in ids.items():
        r = node_stream(node, tid)
        check_eq((r.status, r.body == p.read_bytes()), (200, True), f"warm fetch of {p.name}")
        data = p.read_bytes()
        check_range_resp(node_stream(node, tid, {"Range": "bytes=1000-"}), data, 1000,
                         len(data) - 1, f"{p.name} warm range")
    s3 = node.stats()
    check_eq(s3["origin_reads"], 0, f"origin reads after the restart {s3}")
    check(s3["hits"] > 0, f"no hits after the restart: {s3}")
    check_eq(s3["misses"], 0, f"misses after the restart: {s3}")
    node.stop()


@test("cache: a 3M --cache-size evicts, stays within budget, every stream stays byte-exact")
def _(tmp):
    files = [make_wav(tmp / "lib" / f"t{i}.wav", file_size=CHUNK_SIZE + 400_000 + 4 * i, seed=20 + i)
             for i in range(4)]
    ingest_ok(tmp / "data", tmp / "lib")
    ids = [track_id_of(tmp / "data", p) for p in files]
    node = Node(tmp / "data", tmp, ["--cache-size", "3M"])
    rnd = random.Random(5)
    conn = node.conn()
    for rnd_i in range(3):
        for p, tid in zip(files, ids):
            data = p.read_bytes()
            r = node_stream(node, tid, conn=conn)
            check_eq((r.status, r.body == data), (200, True), f"round {rnd_i}: {p.name}")
            a = rnd.randrange(len(data))
            b = a + rnd.randrange(CHUNK_SIZE)
            check_range_resp(node_stream(node, tid, {"Range": f"bytes={a}-{b}"}, conn=conn), data,
                             a, min(b, len(data) - 1), f"round {rnd_i}: {p.name} {a}-{b}")
            s = node.stats()
            check(s["bytes"] <= s["budget_bytes"], f"cache over budget: {s}")
    s = node.stats()
    check_eq(s["budget_bytes"], 3 << 20, "budget_bytes")
    check(s["evictions"] > 0, f"no evictions: {s}")
    check(s["bytes"] <= 3 << 20, f"bytes over budget: {s}")
    cached = sum(f.stat().st_size - 16 for f in (tmp / "data" / "cache").rglob("*-*")
                 if f.is_file())  # plaintext; each file ends with its tag
    check(cached <= 3 << 20, f"cache directory holds {cached} bytes, over 3M")
    # Concurrent clients on all tracks with the small cache.
    probs = []
    for p, tid in zip(files, ids):
        probs += fetch_all(node.port, tid, 6, p.read_bytes(), headers=node.auth())
    if probs:
        fail("concurrent fetches with a small cache:\n  " + "\n  ".join(probs[:10]))
    node.stop()


def cache_files_problems(data):
    """Every chunk file at its final name in DATA/cache must be the exact
    plaintext chunk of its track, followed by its 16-byte tag."""
    with Catalog(data) as cat:
        rows = cat.rows("SELECT blob, source_path FROM tracks")
    src = {r["blob"]: r["source_path"] for r in rows}
    problems, n = [], 0
    for f in (data / "cache").rglob("*"):
        m = re.fullmatch(r"([0-9a-f]+)-([0-9a-f]{8})", f.name)
        if not f.is_file() or not m:
            continue
        blob, idx = m.group(1), int(m.group(2), 16)
        if blob not in src:
            problems.append(f"cache file {f.name}: unknown blob")
            continue
        with open(src[blob], "rb") as s:
            s.seek(idx * CHUNK_SIZE)
            want = s.read(CHUNK_SIZE)
        n += 1
        got = f.read_bytes()
        if len(got) != len(want) + 16 or got[:len(want)] != want:
            problems.append(f"cache file {f.relative_to(data)} ({f.stat().st_size} bytes) is not "
                            f"chunk {idx} of {src[blob]} ({len(want)} bytes)")
    return problems, n


@test("cache: kill -9 while fills are in flight, then restart: every stream byte-exact")
def _(tmp):
    files = [make_wav(tmp / "lib" / f"k{i}.wav", file_size=2 * CHUNK_SIZE + 200_000 + 8 * i,
                      seed=40 + i) for i in range(6)]
    ingest_ok(tmp / "data", tmp / "lib")
    ids = [track_id_of(tmp / "data", p) for p in files]
    rnd = random.Random(9)
    for round_i in range(3):
        node = Node(tmp / "data", tmp, ["--cache-size", "8M"], tag=f"k{round_i}")
        stop = threading.Event()

        def client():
            while not stop.is_set():
                tid = rnd.choice(ids)
                try:
                    c = node.conn(timeout=5)
                    c.request("GET", f"/api/v1/tracks/{tid}/stream",
                              headers={"Range": f"bytes={rnd.randrange(2 * CHUNK_SIZE)}-"})
                    c.getresponse().read()
                    c.close()
                except Exception:  # noqa: BLE001 - the node is killed under us
                    pass

        ts = [threading.Thread(target=client) for _ in range(24)]
        for t in ts:
            t.start()
        time.sleep(0.15 + 0.2 * round_i)
        node.kill9()
        stop.set()
        for t in ts:
            t.join(30)
        problems, n = cache_files_problems(tmp / "data")
        if problems:
            fail(f"after kill -9 (round {round_i}) cached chunks are wrong:\n  "
                 + "\n  ".join(problems[:10]))
    node = Node(tmp / "data", tmp, ["--cache-size", "8M"], tag="after")
    conn = node.conn()
    for p, tid in zip(files, ids):
        data = p.read_bytes()
        r = node_stream(node, tid, conn=conn)
        check_eq((r.status, len(r.body), r.body == data), (200, len(data), True),
                 f"{p.name} after kill -9 and restart")
        for _ in range(5):
            a = rnd.randrange(len(data))
            check_range_resp(node_stream(node, tid, {"Range": f"bytes={a}-"}, conn=conn), data, a,
                             len(data) - 1, f"{p.name} range after restart")
    check(not list((tmp / "data" / "cache").rglob("*.tmp")), "temporary fill files left")
    node.stop()
    problems, n = cache_files_problems(tmp / "data")
    check(not problems, "cache files after the final run:\n  " + "\n  ".join(problems[:10]))


# ------------------------------------------------------------------ hostile clients

def expect_refusal(port, payload, status, what, closes=True):
    rc = RawConn(port, timeout=10)
    try:
        rc.send(payload)
        try:
            r = rc.read_response()
        except (EOFError, ConnectionResetError) as e:
            return f"{what}: no response ({e!r})"
        statuses = status if isinstance(status, tuple) else (status,)
        if r.status not in statuses:
            return f"{what}: status {r.status}, want {status}: {r.body[:120]!r}"
        try:
            j = json.loads(r.body)
            if j["error"]["status"] != r.status:
                return f"{what}: error body {r.body!r}"
        except (ValueError, KeyError, TypeError):
            return f"{what}: error body {r.body!r}"
        if closes and not rc.closed_by_peer(3):
            return f"{what}: connection left open after {r.status}"
        return None
    finally:
        rc.close()


class GoodClient(threading.Thread):
    """Keeps asking for /health and a range of a track, checking each answer."""

    def __init__(self, port, tid, data, auth):
        super().__init__(daemon=True)
        self.port, self.tid, self.data, self.auth = port, tid, data, auth
        self.stop = threading.Event()
        self.ok = 0
        self.worst = (0.0, "")  # the slowest answer (seconds, when)
        self.problems = []
        self.rnd = random.Random(77)

    def run(self):
        from chorus_test import http_request
        conn = None
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                if conn is None:
                    import http.client
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                h = http_request(self.port, "GET", "/health", conn=conn)
                a = self.rnd.randrange(len(self.data))
                b = a + self.rnd.randrange(300_000)
                r = http_request(self.port, "GET", f"/api/v1/tracks/{self.tid}/stream",
                                 {"Range": f"bytes={a}-{b}", **self.auth}, conn=conn)
                if h.status != 200 or r.status != 206 or r.body != self.data[a:b + 1]:
                    self.problems.append(f"{time.strftime('%T')}: health {h.status}, range "
                                         f"{a}-{b}: {r.status} ({len(r.body)} bytes)")
                else:
                    self.ok += 1
                    lat = time.monotonic() - t0
                    if lat > self.worst[0]:
                        self.worst = (lat, time.strftime("%T"))
            except Exception as e:  # noqa: BLE001
                self.problems.append(f"{time.strftime('%T')}: {e!r}")
                conn = None
            time.sleep(0.02)


def slowloris(port, out):
    """The request line, then one header byte a second until the server
    cuts the connection (or 25 s pass). Fills out: elapsed, got, sent."""
    rc = RawConn(port, timeout=1)
    started = time.monotonic()
    rc.send(b"GET /health HTTP/1.1\r\n")
    got = b""
    hdr = b"X-Slow: " + b"a" * 40
    i = 0
    while time.monotonic() - started < 25:
        try:
            d = rc.sock.recv(4096)
            if not d:
                break
            got += d
            continue
        except socket.timeout:
            pass
        except ConnectionResetError:
            break
        try:
            rc.sock.send(hdr[i % len(hdr):i % len(hdr) + 1])
            i += 1
        except (BrokenPipeError, ConnectionResetError):
            break
    out["elapsed"] = time.monotonic() - started
    out["got"] = got
    out["sent"] = i
    rc.close()


def lazy_readers(port, tid, auth_line, n=3):
    """Connections that ask for a whole track and never read."""
    lazy = []
    for _ in range(n):
        rc = RawConn(port, rcvbuf=4096)
        rc.send(f"GET /api/v1/tracks/{tid}/stream HTTP/1.1\r\nHost: t\r\n".encode()
                + auth_line + b"\r\n")
        lazy.append(rc)
    return lazy


def finish_hostile(node, good, lazy, probs, tid, data):
    """The common end of the hostile tests: a fresh client gets the whole
    stream, the well-behaved one never failed, /health answers."""
    try:
        fresh = node_stream(node, tid)
        if fresh.status != 200 or fresh.body != data:
            probs.append(f"whole stream while lazy readers block: {fresh.status}, "
                         f"{len(fresh.body)} bytes")
    except OSError as e:
        probs.append(f"whole stream while lazy readers block: {e!r}")
    n0, deadline = good.ok, time.monotonic() + 5
    while good.ok < n0 + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    if good.ok < n0 + 3:
        probs.append(f"the well-behaved client got no answers after the hostile traffic "
                     f"({good.ok} in all)")
    good.stop.set()
    good.join(10)
    for rc in lazy:
        rc.close()
    if good.problems:
        probs.append(f"the well-behaved client had {len(good.problems)} failures: "
                     f"{good.problems[:5]}")
    if good.ok < 5:
        probs.append(f"the well-behaved client got only {good.ok} answers")
    if good.worst[0] > 2:
        probs.append(f"the well-behaved client waited {good.worst[0]:.1f}s for an answer "
                     f"(at {good.worst[1]})")
    print(f"# good client: {good.ok} answers, slowest {good.worst[0]:.3f}s", flush=True)
    for attempt in range(3):
        try:
            h = node.get("/health")
            if h.status != 200 or h.json() != {"status": "ok"}:
                probs.append(f"/health after the hostile clients (attempt {attempt}): {h}")
        except OSError as e:
            probs.append(f"/health after the hostile clients (attempt {attempt}): {e!r}")
    if probs:
        time.sleep(1)  # a sanitizer report takes a moment to print
        fail("hostile clients:\n  " + "\n  ".join(probs), node.result())
    node.stop()


@test("hostile clients: garbage 400, 414, 431, 501 (TE, method), 505, non-readers; others served")
def _(tmp):
    L = lib()
    tid = L["ids"]["big"]
    data = L["files"]["big"].read_bytes()
    node = Node(L["data"], tmp, ["--threads", "2", "--drain-timeout", "5"])
    port = node.port
    good = GoodClient(port, tid, data, node.auth())
    good.start()
    lazy = lazy_readers(port, tid, node.auth_line())
    probs = []
    host = b"Host: t\r\n"
    probs.append(expect_refusal(port, bytes(random.Random(3).randrange(256) for _ in range(2000))
                                .replace(b" ", b"\x00").replace(b"\n", b"\x01")
                                .replace(b"\r", b"\x02") + b"\r\n\r\n", 400, "garbage bytes"))
    probs.append(expect_refusal(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100,
                                400, "a TLS ClientHello"))
    probs.append(expect_refusal(port, b"GET / HTTP/1.1\n\n", 400, "bare LF line ends"))
    # Exactly 8192 bytes with no line end: the server reads them all, so its
    # close cannot reset the connection before we read the answer.
    line = b"GET /" + b"a" * (8192 - 5)
    probs.append(expect_refusal(port, line, 414, "request line of 8 KiB"))
    probs.append(expect_refusal(port, b"GET /" + b"b" * 9000 + b" HTTP/1.1\r\n" + host + b"\r\n",
                                414, "request line over 8 KiB, complete"))
    head = b"GET /health HTTP/1.1\r\n" + host
    while len(head) < 16384:
        head += b"X-Fill: " + b"f" * 990 + b"\r\n"
    probs.append(expect_refusal(port, head[:16384], 431, "a head over 16 KiB"))
    many = b"GET /health HTTP/1.1\r\n" + host + b"".join(b"X-H%d: v\r\n" % i for i in range(64))
    probs.append(expect_refusal(port, many + b"\r\n", 431, "65 header lines"))
    ok64 = b"GET /health HTTP/1.1\r\n" + host + b"".join(b"X-H%d: v\r\n" % i for i in range(63))
    rc = RawConn(port)
    rc.send(ok64 + b"\r\n")
    r = rc.read_response()
    rc.close()
    if r.status != 200:
        probs.append(f"64 header lines: status {r.status}, want 200")
    probs.append(expect_refusal(port, b"POST /api/v1/tracks HTTP/1.1\r\n" + host +
                                b"Transfer-Encoding: chunked\r\n\r\n", 501, "Transfer-Encoding"))
    probs.append(expect_refusal(port, b"GET /health HTTP/1.1\r\n" + host +
                                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501,
                                "GET with Transfer-Encoding"))
    probs.append(expect_refusal(port, b"BREW /health HTTP/1.1\r\n" + host + b"\r\n", 501,
                                "an unknown method", closes=False))
    probs.append(expect_refusal(port, b"GET /health HTTP/2.0\r\n" + host + b"\r\n", 505,
                                "HTTP/2.0"))
    probs.append(expect_refusal(port, b"GET /health HTTP/1.1\r\n\r\n", 400, "no Host"))
    probs.append(expect_refusal(port, b"GET /health HTTP/1.1\r\n" + host +
                                b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
                                "two Content-Lengths"))
    probs.append(expect_refusal(port, b"GET http://x/health HTTP/1.1\r\n" + host + b"\r\n", 400,
                                "absolute-form target"))
    probs.append(expect_refusal(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (400, 505),
                                "the HTTP/2 preface"))
    # Many connections that ask for a stream and go away at once.
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", port))
        s.send(b"GET /api/v1/tracks/" + tid.encode() + b"/stream HTTP/1.1\r\nHost: t\r\n"
               + node.auth_line() + b"\r\n")
        s.close()
    time.sleep(0.5)
    finish_hostile(node, good, lazy, [p for p in probs if p], tid, data)


@test("hostile clients: a slowloris client is cut off (408 or close) after the 10 s header timeout")
def _(tmp):
    L = lib()
    tid = L["ids"]["big"]
    data = L["files"]["big"].read_bytes()
    node = Node(L["data"], tmp, ["--threads", "2", "--drain-timeout", "5"])
    good = GoodClient(node.port, tid, data, node.auth())
    good.start()
    lazy = lazy_readers(node.port, tid, node.auth_line(), 2)
    slow = {}
    st = threading.Thread(target=slowloris, args=(node.port, slow))
    st.start()
    st.join(40)
    probs = []
    el = slow.get("elapsed", 99)
    if not (8.5 <= el <= 14.5):
        probs.append(f"slowloris cut off after {el:.1f}s (sent {slow.get('sent')} bytes), "
                     f"want ~10-12s")
    if slow.get("got") and not slow["got"].startswith(b"HTTP/1.1 408 "):
        probs.append(f"slowloris got {slow['got'][:80]!r}, want 408 or a close")
    time.sleep(0.5)
    finish_hostile(node, good, lazy, probs, tid, data)


@test("hostile clients: --max-conns 20 and 25 connections: the extra 5 get 503, node serves after")
def _(tmp):
    L = lib()
    node = Node(L["data"], tmp, ["--max-conns", "20", "--threads", "2"])
    conns = []
    for _ in range(25):
        conns.append(RawConn(node.port, timeout=3))
        time.sleep(0.02)
    time.sleep(0.5)
    refused, open_ = [], []
    for rc in conns:
        rc.sock.setblocking(False)
        try:
            d = rc.sock.recv(4096)
            refused.append(d)
        except BlockingIOError:
            open_.append(rc)
        except ConnectionResetError:
            refused.append(b"")
    check_eq((len(open_), len(refused)), (20, 5), "(accepted, refused) connections")
    for d in refused:
        check(d == b"" or d.startswith(b"HTTP/1.1 503 "), f"refusal answer: {d[:100]!r}")
    check(node.running(), "node died with 25 connections")
    # An accepted connection is served.
    open_[0].sock.settimeout(10)
    open_[0].send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
    check_eq(open_[0].read_response().status, 200, "request on an accepted connection")
    # While full, a new client is refused.
    r = RawConn(node.port, timeout=3)
    check(r.closed_by_peer(3), "a 26th connection was not refused")
    r.close()
    for rc in conns:
        rc.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            j = node.get_json("/api/v1/node")
            if j["connections"] <= 1:
                break
        except Exception:  # noqa: BLE001
            pass
        if time.monotonic() > deadline:
            fail("the node does not serve again after the connections closed")
        time.sleep(0.1)
    check_eq(node.get_json("/health"), {"status": "ok"}, "/health after")
    node.stop()


# ------------------------------------------------------------------ shutdown and logs

def big_track(tmp, name, seed):
    """A track bigger than the kernel's socket buffers (4 MiB at most on
    each side), so a response is really in flight: its file and id."""
    wav = make_wav(tmp / "lib" / name, file_size=12 * CHUNK_SIZE + 4, seed=seed)
    ingest_ok(tmp / "data", tmp / "lib")
    return wav, track_id_of(tmp / "data", wav)


def start_download(node, tid):
    """A stream of tid on a small receive buffer, read up to 300 kB: the
    connection and what it read."""
    rc = RawConn(node.port, rcvbuf=32768)
    rc.send(f"GET /api/v1/tracks/{tid}/stream HTTP/1.1\r\nHost: t\r\n".encode()
            + node.auth_line() + b"\r\n")
    got = b""
    while len(got) < 300_000:
        got += rc.sock.recv(16384)
    return rc, got


@test("SIGTERM during a slow download: the response completes, new connections refused, exit 0")
def _(tmp):
    wav, tid = big_track(tmp, "slow.wav", 61)
    data = wav.read_bytes()
    node = Node(tmp / "data", tmp, ["--drain-timeout", "30"])
    idle = RawConn(node.port)
    idle.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
    check_eq(idle.read_response().status, 200, "idle keep-alive connection's request")
    rc, got = start_download(node, tid)
    os.kill(node.pid, signal.SIGTERM)
    refused = False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", node.port), timeout=1)
        except (ConnectionRefusedError, ConnectionResetError):
            # Reset: it reached the backlog as the listener closed.
            refused = True
            break
        s.close()
        time.sleep(0.05)
    check(refused, "new connections still accepted after SIGTERM")
    check(idle.closed_by_peer(3), "an idle keep-alive connection stays open while draining")
    # Read the rest slowly (about 2 s); the node must wait for it.
    mid = False
    while True:
        try:
            d = rc.sock.recv(65536)
        except ConnectionResetError as e:
            fail(f"download reset after {len(got)} bytes: {e}", node.result())
        if not d:
            break
        got += d
        if len(got) > 7 * CHUNK_SIZE and not mid:
            # At least 1 MiB is not in any socket buffer yet.
            mid = True
            check(node.running(), "node exited before the download finished", node.result())
        time.sleep(0.01)
    head, _, body = got.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200 "), f"download head {head[:100]!r}")
    check_eq(len(body), len(data), "bytes downloaded during the drain")
    check(body == data, "download bytes differ from the file")
    res = node.stop(timeout=40)
    check(res.elapsed < 60, f"node took {res.elapsed:.1f}s to exit")
    rc.close()
    idle.close()


@test("SIGTERM with a stalled download past the drain deadline: it is cut, the node exits 0")
def _(tmp):
    wav, tid = big_track(tmp, "stall.wav", 62)
    node = Node(tmp / "data", tmp, ["--drain-timeout", "1"])
    rc, got = start_download(node, tid)
    # The client stops reading: the response cannot finish in the drain
    # time, so the node must close it itself, with the cache still open
    # under it, and exit cleanly (the sanitizers see any use after free).
    os.kill(node.pid, signal.SIGTERM)
    res = node.stop(timeout=30)
    check(res.elapsed < 20, f"node took {res.elapsed:.1f}s to exit")
    check("still open at the drain deadline" in res.err, "no log line for the cut download",
          res)
    rest = b""
    try:
        while True:
            d = rc.sock.recv(1 << 20)
            if not d:
                break
            rest += d
    except (ConnectionResetError, socket.timeout):
        pass
    check(len(got) + len(rest) < len(wav.read_bytes()), "the stalled download was not cut")
    rc.close()


@test("--access-log FILE: one line per request; --access-log - to stdout")
def _(tmp):
    L = lib()
    log = tmp / "access.log"
    node = Node(L["data"], tmp, ["--access-log", log])
    tid = L["ids"]["big"]
    reqs = [("GET", "/health", {}, 200), ("GET", "/api/v1/tracks?limit=1", {}, 200),
            ("HEAD", f"/api/v1/tracks/{tid}/stream", {}, 200),
            ("GET", f"/api/v1/tracks/{tid}/stream", {"Range": "bytes=0-1"}, 206),
            ("GET", "/nope", {}, 404), ("POST", "/api/v1/tracks", {}, 405),
            ("GET", "/api/v1/tracks?limit=0", {}, 400),
            ("GET", f"/api/v1/tracks/{tid}/stream", {"Range": "bytes=999999999-"}, 416)]
    conn = node.conn()
    for m, p, h, st in reqs:
        r = node.request(m, p, h, body=b"" if m == "POST" else None, conn=conn)
        check_eq(r.status, st, f"{m} {p}")
    conn.close()
    node.stop()
    lines = log.read_text().splitlines()
    check_eq(len(lines), len(reqs), f"access log lines: {lines}")
    for ln, (m, p, h, st) in zip(lines, reqs):
        mm = re.fullmatch(r'127\.0\.0\.1 \[[^\]]+\] "(.*)" (\d{3}) (\d+) (\d+)ms', ln)
        check(mm, f"access log line format: {ln!r}")
        check_eq((mm.group(1), int(mm.group(2))), (f"{m} {p} HTTP/1.1", st), "access log entry")
    node = Node(L["data"], tmp, ["--access-log", "-"], tag="stdout")
    node.get_json("/health")
    res = node.stop()
    out = res.out.splitlines()
    check_eq(len(out), 2, f"stdout with --access-log -: {out}")
    check(out[1].endswith('"GET /health HTTP/1.1" 200 ' + out[1].split()[-2] + " " +
                          out[1].split()[-1]), f"stdout log line {out[1]!r}")


@test("a bad --listen: exit 2 with what is wrong, before anything is created or joined")
def _(tmp):
    data, log = tmp / "data", tmp / "access.log"
    for listen, says in (("127.0.0.1:99999", "port 99999 is out of range (0-65535)"),
                         ("127.0.0.1:http", 'port "http" is not a number'),
                         ("127.0.0.1", "has no port"),
                         ("localhost:8080", "host names are not looked up"),
                         ("::1:8080", "an IPv6 address goes in brackets")):
        # --join first: the listen address is checked before any member is asked.
        r = run_chorus(["serve", "--data", data, "--access-log", log, "--join",
                        "http://127.0.0.1:1", "--token", "x", "--listen", listen], timeout=30)
        check_eq(r.rc, 2, f"exit status for --listen {listen}", r)
        check(r.err.startswith(f'chorus: serve: --listen "{listen}": ') and says in r.err,
              f"the message for --listen {listen}", r)
        check("join" not in r.err, "no join tried", r)
        check(not data.exists(), f"a data directory made for --listen {listen}", r)
        check(not log.exists(), f"an access log made for --listen {listen}", r)



@test("a port another process listens on: exit 1 with a clear message; the first node serves on")
def _(tmp):
    first = Node(tmp / "a", tmp, tag="first")
    data, log = tmp / "b", tmp / "access.log"
    listen = f"127.0.0.1:{first.port}"
    r = run_chorus(["serve", "--data", data, "--access-log", log, "--listen", listen], timeout=30)
    check_eq(r.rc, 1, "exit status of a second node on a port in use", r)
    check(f"port {first.port} is already in use: another process listens on {listen}" in r.err,
          "the message for a port in use", r)
    check(not data.exists() and not log.exists(), "something was created before the refusal", r)
    # Not even a plain socket of someone else's may share it.
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    r = run_chorus(["serve", "--data", data, "--listen",
                    f"127.0.0.1:{other.getsockname()[1]}"], timeout=30)
    other.close()
    check_eq(r.rc, 1, "exit status on a port a plain listener holds", r)
    check("already in use" in r.err, "the message for a port a plain listener holds", r)
    for _ in range(20):
        check_eq(first.get_json("/health"), {"status": "ok"}, "the first node after the refusals")
    first.stop()

if __name__ == "__main__":
    main()
