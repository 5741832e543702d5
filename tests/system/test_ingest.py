#!/usr/bin/python3
"""System tests for `chorus ingest`, driving the real binary ($CHORUS_BIN).

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_ingest.py [NAME...]
"""

import hashlib
import math
import os
import pathlib
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chorus_test import (  # noqa: E402
    CHUNK_SIZE, SEAL_TAG, Catalog, check, check_consistent, check_eq, check_summary, chunk_key,
    fail, main, make_audio, make_wav, origin_files, origin_opacity_problems, parse_summary,
    retag, run_chorus, run_ffmpeg, sha256_file, shared_dir, start_chorus, test)


def ingest(data, *paths, env=None, cwd=None, timeout=120, extra=()):
    args = ["ingest"]
    if data is not None:
        args += ["--data", data]
    return run_chorus(args + list(extra) + list(paths), env=env, cwd=cwd, timeout=timeout)


def expect_ok(res, **summary):
    check_eq(res.rc, 0, "exit status", res)
    check_eq(res.err.strip(), "", "stderr", res)
    return check_summary(res, **summary)


def real(p):
    return os.path.realpath(p)


def track_by_path(cat, path):
    rows = [t for t in cat.tracks() if t["source_path"] == real(path)]
    check_eq(len(rows), 1, f"tracks with source_path {real(path)}")
    return rows[0]


# ------------------------------------------------------------------ formats and tags

FULL = {
    # fmt: (tags written, what the catalog must hold)
    "mp3": ({"title": "Crazy in Love — Beyoncé Mix", "artist": "Beyoncé",
             "album": "Dangerously in Löve", "album_artist": "Beyoncé Knowles",
             "track": "1/15", "disc": "1/2", "date": "2003", "genre": "R&B",
             "TSRC": "USSM10303601", "publisher": "Columbia Récords"},
            {"isrc": "USSM10303601", "label": "Columbia Récords", "codec": "mp3",
             "mime_type": "audio/mpeg", "sample_rate": 44100, "channels": 2}),
    "flac": ({"title": "Svefn-g-englar", "artist": "Sigur Rós", "album": "Ágætis byrjun",
              "album_artist": "Sigur Rós", "track": "2/10", "disc": "1/1", "date": "1999",
              "genre": "Post-Rock", "ISRC": "IS-A12-99-00002", "LABEL": "Smekkleysa"},
             {"isrc": "ISA129900002", "label": "Smekkleysa", "codec": "flac",
              "mime_type": "audio/flac", "sample_rate": 44100, "channels": 2}),
    "ogg": ({"title": "群青日和", "artist": "東京事変", "album": "東京の夜",
             "album_artist": "東京事変 & 椎名林檎", "track": "3", "disc": "2",
             "date": "2004-09-08", "genre": "J-Rock", "ISRC": "JPTO00400001",
             "LABEL": "東芝EMI"},
            {"isrc": "JPTO00400001", "label": "東芝EMI", "codec": "vorbis",
             "mime_type": "audio/ogg", "sample_rate": 44100, "channels": 2}),
    "opus": ({"title": "Утекай", "artist": "Мумий Тролль", "album": "Морская",
              "album_artist": "Мумий Тролль", "track": "4/11", "disc": "1", "date": "1997",
              "genre": "Рок", "ISRC": "RUA019700004", "LABEL": "Rec Records"},
             {"isrc": "RUA019700004", "label": "Rec Records", "codec": "opus",
              "mime_type": "audio/ogg; codecs=opus", "sample_rate": 48000, "channels": 2}),
    "m4a": ({"title": "Jóga", "artist": "Björk", "album": "Homogenic",
             "album_artist": "Björk Guðmundsdóttir", "track": "5/10", "disc": "1/1",
             "date": "1997", "genre": "Electronic"},
            {"isrc": None, "label": None, "codec": "aac", "mime_type": "audio/mp4",
             "sample_rate": 44100, "channels": 2}),
    # RIFF INFO has title, artist, album, genre, date and track only.
    "wav": ({"title": "Ünder Cöver", "artist": "Motörhead", "album": "Ace of Spädes",
             "track": "6", "date": "1980", "genre": "Heavy Metal"},
            {"isrc": None, "label": None, "codec": "pcm_s16le", "mime_type": "audio/wav",
             "sample_rate": 44100, "channels": 1}),
}
SECONDS = 1.5


@test("every format (mp3 flac ogg opus m4a wav): tags, stream properties, chunks, opaque origin")
def _(tmp):
    lib = tmp / "lib"
    files = {}
    for fmt, (tags, want) in FULL.items():
        files[fmt] = make_audio(lib / f"track.{fmt}", fmt, SECONDS, tags,
                                channels=want["channels"])
    (lib / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    res = ingest(tmp / "data", lib)
    expect_ok(res, added=6, files=6)
    problems = []
    with Catalog(tmp / "data") as cat:
        for fmt, path in files.items():
            tags, want = FULL[fmt]
            t = track_by_path(cat, path)
            exp = {
                "title": tags["title"], "artist": tags["artist"], "album": tags["album"],
                "album_artist": tags.get("album_artist", tags["artist"]),
                "track_number": int(tags["track"].split("/")[0]),
                "disc_number": int(tags["disc"].split("/")[0]) if "disc" in tags else None,
                "year": int(tags["date"][:4]), "album_year": int(tags["date"][:4]),
                "genre": tags["genre"], "isrc": want["isrc"], "label": want["label"],
                "codec": want["codec"], "mime_type": want["mime_type"],
                "sample_rate": want["sample_rate"], "channels": want["channels"],
                "size": path.stat().st_size, "content_hash": sha256_file(path),
                "chunk_size": CHUNK_SIZE,
                "chunk_count": math.ceil(path.stat().st_size / CHUNK_SIZE),
                "source_path": real(path), "source_size": path.stat().st_size,
            }
            for k, v in exp.items():
                if t[k] != v:
                    problems.append(f"{fmt}: {k} = {t[k]!r}, want {v!r}")
            if abs(t["duration_ms"] - SECONDS * 1000) > 100:
                problems.append(f"{fmt}: duration_ms {t['duration_ms']}, want {SECONDS * 1000}"
                                f" +-100")
            if not t["bitrate"] or t["bitrate"] <= 0:
                problems.append(f"{fmt}: bitrate {t['bitrate']!r}")
            if fmt == "wav" and abs(t["bitrate"] - 44100 * 16) > 44100 * 16 // 50:
                problems.append(f"wav: bitrate {t['bitrate']}, want ~{44100 * 16}")
            if t["source_mtime_ns"] != path.stat().st_mtime_ns:
                problems.append(f"{fmt}: source_mtime_ns {t['source_mtime_ns']}")
        check_eq(cat.value("SELECT count(*) FROM tracks"), 6, "track count")
    if problems:
        fail("catalog does not match the tags written:\n  " + "\n  ".join(problems))
    check_consistent(tmp / "data", sources=list(files.values()))
    opaque = origin_opacity_problems(tmp / "data" / "origin", list(files.values()), step=257)
    if opaque:
        fail("origin files are recognisable:\n  " + "\n  ".join(opaque[:10]))


@test("missing tags: title from the file name, Unknown Artist / Unknown Album")
def _(tmp):
    lib = tmp / "lib"
    a = make_audio(lib / "My Song (live).flac", "flac", 1, {})
    b = make_audio(lib / "another.one.mp3", "mp3", 1, {}, extra=["-id3v2_version", "0"])
    c = make_audio(lib / "only title.ogg", "ogg", 1, {"title": "Just A Title"})
    d = make_audio(lib / "blank.opus", "opus", 1, {"title": "   ", "artist": " \t "})
    expect_ok(ingest(tmp / "data", lib), added=4)
    with Catalog(tmp / "data") as cat:
        for path, title in ((a, "My Song (live)"), (b, "another.one"), (c, "Just A Title"),
                            (d, "blank")):
            t = track_by_path(cat, path)
            got = (t["title"], t["artist"], t["album"], t["album_artist"], t["track_number"],
                   t["disc_number"], t["year"], t["genre"], t["isrc"], t["label"])
            want = (title, "Unknown Artist", "Unknown Album", "Unknown Artist", None, None,
                    None, None, None, None)
            check_eq(got, want, f"{path.name}: (title, artist, album, album artist, track,"
                     " disc, year, genre, isrc, label)")
        check_eq(cat.value("SELECT count(*) FROM artists"), 1, "artists")
        check_eq(cat.value("SELECT count(*) FROM albums"), 1, "albums")


@test("file names that are not UTF-8: the title taken from the name is valid UTF-8")
def _(tmp):
    lib = tmp / "lib"
    lib.mkdir()
    names = {b"caf\xe9 na\xefve.flac": "café naïve", "Ünïcödé ✓.flac".encode(): "Ünïcödé ✓"}
    paths = []
    for raw, title in names.items():
        tmpf = make_audio(tmp / "x.flac", "flac", 0.5, {})
        p = os.path.join(os.fsencode(lib), raw)
        os.rename(tmpf, p)
        paths.append(pathlib.Path(os.fsdecode(p)))
    expect_ok(ingest(tmp / "data", lib), added=2)
    with Catalog(tmp / "data") as cat:  # decodes titles strictly
        got = sorted(t["title"] for t in cat.tracks())
    check_eq(got, sorted(names.values()), "titles")
    check_consistent(tmp / "data", sources=paths)


@test("chunk boundaries: files of exactly 1 MiB and 2 MiB + 4 bytes")
def _(tmp):
    lib = tmp / "lib"
    one = make_wav(lib / "one.wav", file_size=CHUNK_SIZE, seed=1)
    three = make_wav(lib / "three.wav", file_size=2 * CHUNK_SIZE + 4, seed=2)
    expect_ok(ingest(tmp / "data", lib), added=2)
    with Catalog(tmp / "data") as cat:
        got = {os.path.basename(t["source_path"]): (t["size"], t["chunk_count"])
               for t in cat.tracks()}
        blobs = {os.path.basename(t["source_path"]): t["blob"] for t in cat.tracks()}
    check_eq(got, {"one.wav": (CHUNK_SIZE, 1), "three.wav": (2 * CHUNK_SIZE + 4, 3)},
             "(size, chunk_count)")
    files = origin_files(tmp / "data" / "origin")
    sizes = [files.get(chunk_key(blobs["three.wav"], i), (None,))[0] for i in range(3)]
    check_eq(sizes, [CHUNK_SIZE + SEAL_TAG, CHUNK_SIZE + SEAL_TAG, 4 + SEAL_TAG],
             "sealed chunk sizes of three.wav")
    check_consistent(tmp / "data", sources=[one, three])


def id3v2_latin1(frames):
    """An ID3v2.3 tag whose text frames are ISO-8859-1 (encoding byte 0)."""
    body = b""
    for fid, text in frames.items():
        payload = b"\x00" + text.encode("latin-1")
        body += fid.encode() + len(payload).to_bytes(4, "big") + b"\x00\x00" + payload
    size = len(body)
    syncsafe = bytes([(size >> 21) & 0x7f, (size >> 14) & 0x7f, (size >> 7) & 0x7f, size & 0x7f])
    return b"ID3\x03\x00\x00" + syncsafe + body


def id3v1_latin1(title, artist, album, year, track, genre=17):
    def field(s, n):
        return s.encode("latin-1")[:n].ljust(n, b"\x00")
    return (b"TAG" + field(title, 30) + field(artist, 30) + field(album, 30) +
            year.encode() + b"\x00" * 28 + b"\x00" + bytes([track]) + bytes([genre]))


@test("Latin-1 ID3v2.3 and ID3v1 text is stored as valid UTF-8")
def _(tmp):
    lib = tmp / "lib"
    raw = make_audio(tmp / "raw.mp3", "mp3", 1, {}, extra=["-id3v2_version", "0",
                                                           "-write_xing", "0"])
    audio = raw.read_bytes()
    check(not audio.startswith(b"ID3"), "ffmpeg wrote an ID3v2 tag")
    v2 = lib / "v2.mp3"
    v2.parent.mkdir(parents=True)
    v2.write_bytes(id3v2_latin1({"TIT2": "Café Noir", "TPE1": "Beyoncé", "TALB": "Été à Paris",
                                 "TPE2": "Beyoncé", "TRCK": "7", "TCON": "Chanson",
                                 "TYER": "1998", "TPUB": "Éditions Ça"}) + audio)
    raw2 = make_audio(tmp / "raw2.mp3", "mp3", 1, {}, extra=["-id3v2_version", "0",
                                                             "-write_xing", "0"])
    v1 = lib / "v1.mp3"
    v1.write_bytes(raw2.read_bytes() + id3v1_latin1("Señor Niño", "Mötley Crüe", "Ñandú",
                                                    "1989", 9))
    expect_ok(ingest(tmp / "data", lib), added=2)
    with Catalog(tmp / "data") as cat:  # Catalog decodes every text column strictly
        t = track_by_path(cat, v2)
        got = (t["title"], t["artist"], t["album"], t["album_artist"], t["track_number"],
               t["genre"], t["year"], t["label"])
        check_eq(got, ("Café Noir", "Beyoncé", "Été à Paris", "Beyoncé", 7, "Chanson", 1998,
                       "Éditions Ça"), "ID3v2.3 Latin-1 tags")
        t = track_by_path(cat, v1)
        got = (t["title"], t["artist"], t["album"], t["track_number"], t["year"])
        check_eq(got, ("Señor Niño", "Mötley Crüe", "Ñandú", 9, 1989), "ID3v1 tags")
        raw_bytes = cat.db.execute("SELECT title FROM tracks WHERE title LIKE 'Caf%'").fetchone()
        check_eq(raw_bytes[0], "Café Noir".encode("utf-8"), "stored title bytes")


def extract_cover(path, out):
    run_ffmpeg(["-i", path, "-map", "0:v", "-c", "copy", "-f", "image2", out])
    return pathlib.Path(out).read_bytes()


@test("embedded cover art is stored once per album (JPEG and PNG), bytes intact")
def _(tmp):
    lib = tmp / "lib"
    alb = {"album": "Covered", "artist": "Painter", "date": "2010"}
    a = make_audio(lib / "a.mp3", "mp3", 1, dict(alb, title="One", track="1"), cover=True)
    make_audio(lib / "b.mp3", "mp3", 1, dict(alb, title="Two", track="2"), cover=True)
    make_audio(lib / "c.flac", "flac", 1, dict(alb, title="Three", track="3"), cover=True)
    make_audio(lib / "d.m4a", "m4a", 1, dict(alb, title="Four", track="4"), cover=True)
    p = make_audio(lib / "png.flac", "flac", 1, {"album": "Pictures", "artist": "Painter",
                                                 "title": "Png"}, cover=True,
                   cover_codec="png")
    make_audio(lib / "none.flac", "flac", 1, {"album": "Bare", "artist": "Painter",
                                              "title": "None"})
    expect_ok(ingest(tmp / "data", lib), added=6)
    jpeg = extract_cover(a, tmp / "a.jpg")
    png = extract_cover(p, tmp / "p.png")
    with Catalog(tmp / "data") as cat:
        rows = cat.rows("SELECT c.mime, c.sha256, c.data, a.title FROM covers c"
                        " JOIN albums a ON a.id = c.album_id ORDER BY a.title")
        check_eq([(r["title"], r["mime"]) for r in rows],
                 [("Covered", "image/jpeg"), ("Pictures", "image/png")], "covers rows")
        jr, pr = rows
        check(jr["data"].startswith(b"\xff\xd8\xff") and jr["data"].endswith(b"\xff\xd9"),
              f"JPEG cover is not a JPEG: {jr['data'][:8]!r}...{jr['data'][-4:]!r}")
        check(pr["data"].startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in pr["data"][-12:],
              f"PNG cover is not a PNG: {pr['data'][:8]!r}")
        check_eq(jr["data"], jpeg, "JPEG cover bytes (as embedded in a.mp3)")
        check_eq(pr["data"], png, "PNG cover bytes (as embedded in png.flac)")
        for r in rows:
            check_eq(r["sha256"], hashlib.sha256(r["data"]).hexdigest(), "covers.sha256")
        check_eq(cat.value("SELECT count(*) FROM albums"), 3, "albums")


@test("multi-disc album: one album row, disc and track numbers kept")
def _(tmp):
    lib = tmp / "lib"
    base = {"album": "Double Album", "artist": "The Band", "album_artist": "The Band",
            "date": "1979"}
    files = []
    layout = [(1, 1, "Intro"), (1, 2, "Side A"), (2, 1, "Intro"), (2, 2, "Side C"),
              (2, 3, "Outro")]
    for disc, track, title in layout:
        files.append(make_audio(lib / f"CD{disc}" / f"{track:02d} {title}.flac", "flac", 0.5,
                                dict(base, title=title, track=f"{track}/3", disc=f"{disc}/2")))
    expect_ok(ingest(tmp / "data", lib), added=5)
    with Catalog(tmp / "data") as cat:
        check_eq(cat.value("SELECT count(*) FROM albums"), 1, "albums")
        check_eq(cat.value("SELECT count(*) FROM artists"), 1, "artists")
        got = sorted((t["disc_number"], t["track_number"], t["title"], t["album"])
                     for t in cat.tracks())
        check_eq(got, sorted((d, n, ti, "Double Album") for d, n, ti in layout),
                 "(disc, track, title, album)")
    check_consistent(tmp / "data", sources=files)


@test("artist and album names differing in case or surrounding white space are one entity")
def _(tmp):
    lib = tmp / "lib"
    variants = [("Sigur Rós", "Ágætis byrjun", "Various Artists"),
                ("sigur rós", "ÁGÆTIS BYRJUN", "various artists"),
                ("  SIGUR RÓS ", " ágætis byrjun  ", "  VARIOUS ARTISTS"),
                ("\tSigur Rós\t", "Ágætis Byrjun\t", "Various Artists \t"),
                ("Sigur Rós", "ágætis byrjun", None)]
    for i, (artist, album, aa) in enumerate(variants):
        tags = {"title": f"Song {i}", "artist": artist, "album": album, "track": str(i + 1)}
        if aa:
            tags["album_artist"] = aa
        make_audio(lib / f"{i}.flac", "flac", 0.5, tags)
    expect_ok(ingest(tmp / "data", lib), added=5)
    with Catalog(tmp / "data") as cat:
        artists = [r["name"] for r in cat.rows("SELECT name FROM artists ORDER BY name")]
        albums = cat.rows("SELECT al.title, ar.name FROM albums al JOIN artists ar"
                          " ON ar.id = al.artist_id ORDER BY al.title")
        trk = cat.tracks()
    for n in artists + [a["title"] for a in albums]:
        check_eq(n, n.strip(" \t"), "stored name keeps no surrounding white space")
    check_eq(sorted(a.lower() for a in artists), ["sigur rós", "various artists"],
             "artists (one per name, case and spaces ignored)")
    # Four tracks name an album artist, one does not (its album artist is the
    # track artist): two albums called Ágætis byrjun.
    check_eq(sorted((a["title"].lower(), a["name"].lower()) for a in albums),
             [("ágætis byrjun", "sigur rós"), ("ágætis byrjun", "various artists")],
             "albums (title, album artist)")
    check_eq(len({t["album_id"] for t in trk if t["title"] != "Song 4"}), 1,
             "album ids of the tracks tagged Various Artists")
    check_eq(len({t["artist_id"] for t in trk}), 1, "artist ids of the tracks")


@test("non-audio files in folders are skipped quietly and not counted")
def _(tmp):
    lib = tmp / "lib"
    a = make_audio(lib / "Album" / "01.mp3", "mp3", 0.5, {"title": "x"})
    (lib / "Album" / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(500))
    (lib / "Album" / "playlist.m3u").write_text("01.mp3\n")
    (lib / "Album" / "notes.txt").write_text("liner notes\n")
    (lib / "Album" / "folder.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    (lib / "Album" / "._01.mp3").write_bytes(b"\x00\x05\x16\x07" + os.urandom(100))
    (lib / "Album" / "README").write_text("no extension\n")
    res = ingest(tmp / "data", lib)
    expect_ok(res, added=1, failed=0, files=1)
    with Catalog(tmp / "data") as cat:
        check_eq([t["source_path"] for t in cat.tracks()], [real(a)], "tracks")
    # Named on the command line, a non-audio file is still no failure.
    res = ingest(tmp / "data", lib / "Album" / "notes.txt", lib / "Album" / "cover.jpg")
    check_eq(res.rc, 0, "exit status for non-audio files named on the command line", res)
    check_summary(res, files=0)


@test("empty folders: nothing to do, exit 0")
def _(tmp):
    (tmp / "lib" / "empty sub").mkdir(parents=True)
    (tmp / "empty").mkdir()
    res = ingest(tmp / "data", tmp / "empty")
    expect_ok(res, files=0)
    res = ingest(tmp / "data", tmp / "lib")
    expect_ok(res, files=0)
    check_consistent(tmp / "data", sources=[])


def make_broken(lib, good_flac):
    broken = {}
    for i, n in enumerate((4096, 150_000, 900_000)):
        p = lib / f"random{i}.mp3"
        p.write_bytes(random.Random(1000 + i).randbytes(n))
        broken[p] = None
    data = good_flac.read_bytes()
    p = lib / "truncated.flac"
    p.write_bytes(data[:len(data) // 2])
    broken[p] = None
    p = lib / "empty.ogg"
    p.write_bytes(b"")
    broken[p] = None
    p = lib / "garbage.m4a"
    p.write_bytes(b"\x00\x00\x00\x20ftypM4A " + random.Random(7).randbytes(20000))
    broken[p] = None
    return list(broken)


@test("broken files are reported with path and reason, exit 1, the rest is ingested")
def _(tmp):
    lib = tmp / "lib"
    good = [make_audio(lib / "good.flac", "flac", 4, {"title": "Good"}),
            make_audio(lib / "good.mp3", "mp3", 1, {"title": "Good too"})]
    broken = make_broken(lib, good[0])
    res = ingest(tmp / "data", lib)
    check_eq(res.rc, 1, "exit status", res)
    check_summary(res, added=2, failed=len(broken), files=len(broken) + 2)
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    for p in broken:
        pat = re.compile(r"^chorus: ingest: " + re.escape(real(p)) + r": \S.*$")
        hits = [ln for ln in lines if pat.match(ln)]
        check_eq(len(hits), 1, f"messages for {p.name}", res)
    check_eq(len(lines), len(broken), "stderr lines (one per broken file)", res)
    check(not any("good" in ln for ln in lines), "a good file was reported", res)
    with Catalog(tmp / "data") as cat:
        check_eq(sorted(t["source_path"] for t in cat.tracks()), sorted(real(g) for g in good),
                 "tracks")
    check_consistent(tmp / "data", sources=good)
    # A re-run reports them again and adds nothing.
    res = ingest(tmp / "data", lib)
    check_eq(res.rc, 1, "exit status of the re-run", res)
    check_summary(res, unchanged=2, failed=len(broken))


def idempotency_setup(tmp):
    lib = tmp / "lib"
    files = [make_audio(lib / "a.mp3", "mp3", 1, {"title": "A", "artist": "X", "album": "Y"},
                        cover=True),
             make_audio(lib / "b.flac", "flac", 1, {"title": "B", "artist": "X", "album": "Y"}),
             make_audio(lib / "sub" / "c.ogg", "ogg", 1, {"title": "C"}),
             make_audio(lib / "sub" / "d.opus", "opus", 1, {"title": "D"})]
    expect_ok(ingest(tmp / "data", lib), added=4)
    time.sleep(0.05)
    return lib, files


def data_state(data):
    """The data directory's files (but the lock) with size and mtime."""
    out = {}
    for dp, _, fns in os.walk(data):
        for fn in fns:
            p = pathlib.Path(dp) / fn
            if fn != "ingest.lock":
                st = p.stat()
                out[str(p.relative_to(data))] = (st.st_size, st.st_mtime_ns)
    return out


# The record of runs: every run adds its row, changed or not.
RUN_TABLES = ("ingests", "ingest_errors")


@test("idempotent re-run: all unchanged, same catalog rows, same origin files")
def _(tmp):
    lib, files = idempotency_setup(tmp)
    data = tmp / "data"
    with Catalog(data) as cat:
        before = cat.dump()
    origin_before = origin_files(data / "origin")
    res = ingest(data, lib)
    expect_ok(res, unchanged=4, files=4)
    res = ingest(data, *files)  # files named one by one are the same files
    expect_ok(res, unchanged=4, files=4)
    with Catalog(data) as cat:
        after = cat.dump()
        runs = cat.rows("SELECT added, unchanged, failed FROM ingests ORDER BY started_at")
    for table in before:
        if table not in RUN_TABLES:
            check_eq(after[table], before[table], f"table {table} after re-runs")
    check_eq(runs, [{"added": 4, "unchanged": 0, "failed": 0},
                    {"added": 0, "unchanged": 4, "failed": 0},
                    {"added": 0, "unchanged": 4, "failed": 0}], "the runs recorded")
    check_eq(origin_files(data / "origin"), origin_before, "origin files (size, mtime)")
    check_consistent(data, sources=files)


@test("idempotent re-run writes only its record: no other row, no other file changed")
def _(tmp):
    lib, files = idempotency_setup(tmp)
    data = tmp / "data"
    before = data_state(data)
    with Catalog(data) as cat:
        rows = cat.dump()
    expect_ok(ingest(data, lib), unchanged=4)
    with Catalog(data) as cat:
        now = cat.dump()
    changed = sorted(t for t in set(rows) | set(now) if rows.get(t) != now.get(t))
    check_eq(changed, ["ingests"], "tables with rows changed by the re-run")
    check_eq(len(now["ingests"]), len(rows["ingests"]) + 1, "runs recorded")
    after = data_state(data)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)
                     and not k.startswith("catalog.db"))
    check_eq(changed, [], "files but the catalog's whose size or mtime changed")


@test("re-tagged file with the same ISRC updates its track in place; old chunks removed")
def _(tmp):
    lib = tmp / "lib"
    data = tmp / "data"
    tags = {"title": "Old Title", "artist": "Somebody", "album": "Record", "track": "1",
            "ISRC": "GBAYE0601498"}
    f = make_audio(lib / "song.flac", "flac", 2, tags)
    other = make_audio(lib / "other.flac", "flac", 1, {"title": "Other", "ISRC": "GBAYE0601499"})
    expect_ok(ingest(data, lib), added=2)
    with Catalog(data) as cat:
        old = track_by_path(cat, f)
    old_chunks = [k for k in origin_files(data / "origin") if f"/{old['blob']}/" in k]
    check_eq(len(old_chunks), old["chunk_count"], "old chunks in the origin")
    time.sleep(0.01)
    retag(f, tmp / "new.flac", dict(tags, title="New Title", genre="Added Genre"))
    os.replace(tmp / "new.flac", f)
    res = ingest(data, lib)
    expect_ok(res, updated=1, unchanged=1)
    with Catalog(data) as cat:
        new = track_by_path(cat, f)
        check_eq(cat.value("SELECT count(*) FROM tracks"), 2, "tracks")
    check_eq(new["id"], old["id"], "track id")
    check_eq((new["title"], new["genre"], new["isrc"]), ("New Title", "Added Genre",
                                                         "GBAYE0601498"), "new tags")
    check_eq(new["content_hash"], sha256_file(f), "content_hash")
    check(new["content_hash"] != old["content_hash"], "content_hash did not change")
    check(new["blob"] != old["blob"], "blob did not change")
    left = [k for k in origin_files(data / "origin") if f"/{old['blob']}/" in k]
    check_eq(left, [], "old blob's chunks left in the origin")
    check(not (data / "origin" / "c" / old["blob"][:2] / old["blob"]).exists(),
          "old blob directory left in the origin")
    check_consistent(data, sources=[f, other])
    expect_ok(ingest(data, lib), unchanged=2)


@test("a re-tag that moves a track to another album drops the emptied album, cover, artist")
def _(tmp):
    lib = tmp / "lib"
    data = tmp / "data"
    tags = {"title": "Nomad", "artist": "Old Artist", "album": "Old Album",
            "ISRC": "GBAYE0601400"}
    f = make_audio(lib / "a.flac", "flac", 1, tags, cover=True)
    keep = make_audio(lib / "b.flac", "flac", 1, {"title": "Stays", "artist": "Keeper",
                                                  "album": "Kept"}, cover=True)
    expect_ok(ingest(data, lib), added=2)
    with Catalog(data) as cat:
        old = track_by_path(cat, f)
    retag(f, tmp / "new.flac", dict(tags, artist="New Artist", album="New Album"))
    os.replace(tmp / "new.flac", f)
    expect_ok(ingest(data, lib), updated=1, unchanged=1)
    with Catalog(data) as cat:
        new = track_by_path(cat, f)
        artists = sorted(r["name"] for r in cat.rows("SELECT name FROM artists"))
        albums = sorted(r["title"] for r in cat.rows("SELECT title FROM albums"))
        covers = sorted(r["title"] for r in cat.rows(
            "SELECT a.title FROM covers c JOIN albums a ON a.id = c.album_id"))
        check_eq(cat.value("SELECT count(*) FROM covers"), 2, "covers rows")
    check_eq(new["id"], old["id"], "track id")
    check_eq((new["artist"], new["album"]), ("New Artist", "New Album"), "new names")
    check_eq(artists, ["Keeper", "New Artist"], "artists")
    check_eq(albums, ["Kept", "New Album"], "albums")
    check_eq(covers, ["Kept", "New Album"], "albums with a cover")
    check_consistent(data, sources=[f, keep])


@test("same recording re-encoded at the same path (same tags, new audio) updates in place")
def _(tmp):
    lib = tmp / "lib"
    data = tmp / "data"
    tags = {"title": "Take Five", "artist": "Quartet", "album": "Time Out", "track": "3",
            "disc": "1"}
    f = make_audio(lib / "take.mp3", "mp3", 1, tags, seed=11)
    expect_ok(ingest(data, lib), added=1)
    with Catalog(data) as cat:
        old = track_by_path(cat, f)
    make_audio(tmp / "re.mp3", "mp3", 1.2, tags, seed=12)
    os.replace(tmp / "re.mp3", f)
    expect_ok(ingest(data, lib), updated=1)
    with Catalog(data) as cat:
        new = track_by_path(cat, f)
        check_eq(cat.value("SELECT count(*) FROM tracks"), 1, "tracks")
    check_eq(new["id"], old["id"], "track id")
    check_eq(new["content_hash"], sha256_file(f), "content_hash")
    check(abs(new["duration_ms"] - 1200) <= 100, f"duration_ms {new['duration_ms']}")
    check(not (data / "origin" / "c" / old["blob"][:2] / old["blob"]).exists(),
          "old blob directory left in the origin")
    check_consistent(data, sources=[f])


@test("a moved file stays the same track: unchanged, source_path follows, no origin write")
def _(tmp):
    data = tmp / "data"
    f = make_audio(tmp / "a" / "x.flac", "flac", 1, {"title": "Wanderer"})
    expect_ok(ingest(data, tmp / "a"), added=1)
    with Catalog(data) as cat:
        old = track_by_path(cat, f)
    origin_before = origin_files(data / "origin")
    (tmp / "b" / "deeper").mkdir(parents=True)
    moved = tmp / "b" / "deeper" / "renamed.flac"
    os.rename(f, moved)
    (tmp / "a" / "notes.txt").write_text("keeps a/ from being empty\n")
    expect_ok(ingest(data, tmp / "b"), unchanged=1)
    with Catalog(data) as cat:
        new = track_by_path(cat, moved)
        check_eq(cat.value("SELECT count(*) FROM tracks"), 1, "tracks")
    check_eq((new["id"], new["blob"], new["content_hash"], new["title"]),
             (old["id"], old["blob"], old["content_hash"], old["title"]), "track after the move")
    check_eq(origin_files(data / "origin"), origin_before, "origin files")
    expect_ok(ingest(data, tmp / "b", tmp / "a"), unchanged=1)


@test("data directory: --data, then $CHORUS_DATA, then ./chorus-data; --origin dir:PATH")
def _(tmp):
    f = make_audio(tmp / "lib" / "x.ogg", "ogg", 0.5, {"title": "Where"})
    cwd = tmp / "cwd"
    cwd.mkdir()
    expect_ok(ingest(None, f, cwd=cwd), added=1)
    check((cwd / "chorus-data" / "catalog.db").is_file(), "no ./chorus-data/catalog.db")
    check_consistent(cwd / "chorus-data", sources=[f])

    env_dir = tmp / "env-data"
    expect_ok(ingest(None, f, cwd=cwd, env={"CHORUS_DATA": env_dir}), added=1)
    check((env_dir / "catalog.db").is_file(), "no $CHORUS_DATA/catalog.db")
    check_consistent(env_dir, sources=[f])

    flag_dir = tmp / "flag-data"
    expect_ok(ingest(flag_dir, f, cwd=cwd, env={"CHORUS_DATA": env_dir}), added=1)
    check((flag_dir / "catalog.db").is_file(), "--data did not win over $CHORUS_DATA")
    with Catalog(env_dir) as cat:
        check_eq(cat.value("SELECT count(*) FROM tracks"), 1, "tracks in $CHORUS_DATA")

    od = tmp / "elsewhere" / "origin"
    od_data = tmp / "od-data"
    expect_ok(ingest(od_data, f, extra=["--origin", f"dir:{od}"]), added=1)
    check_consistent(od_data, origin_dir=od, sources=[f])
    check_eq(origin_files(od_data / "origin"), {}, "chunks in DATA/origin with --origin")

    res = run_chorus(["ingest", "--data", tmp / "j", "--jobs", "0", f])
    check_eq(res.rc, 2, "exit status for --jobs 0", res)
    check("--jobs" in res.err, "no --jobs message", res)
    res = run_chorus(["ingest", "--data", tmp / "j"])
    check_eq(res.rc, 2, "exit status without PATH", res)
    res = run_chorus(["ingest", "--data", tmp / "j", tmp / "does-not-exist.mp3", f])
    check_eq(res.rc, 1, "exit status with a missing path", res)
    check(real(tmp / "does-not-exist.mp3") in res.err or "does-not-exist.mp3" in res.err,
          "missing path not reported", res)
    check_summary(res, added=1, failed=1)


# ------------------------------------------------------------------ crashes and concurrency

BULK_WAV, BULK_FLAC = 32, 8


def bulk_library():
    """~40 files of 1-2 MB each (shared by the crash and concurrency tests)."""
    lib = shared_dir("bulk") / "lib"
    if not lib.exists():
        files = []
        for i in range(BULK_WAV):
            files.append(make_wav(lib / "wav" / f"noise {i:02d}.wav", 10, seed=i))
        for i in range(BULK_FLAC):
            files.append(make_audio(lib / "flac" / f"{i:02d}.flac", "flac", 8,
                                    {"title": f"Crash {i}", "artist": "Crash Test",
                                     "album": "Dummies", "track": str(i + 1)}, seed=100 + i))
    return lib, sorted(p for p in lib.rglob("*") if p.is_file())


@test("kill -9 at random moments, then a re-run: consistent catalog, every chunk present")
def _(tmp):
    lib, files = bulk_library()
    data = tmp / "data"
    seed = os.environ.get("CHORUS_TEST_SEED") or str(time.time_ns())
    rnd = random.Random(seed)
    log = [f"seed {seed} (set CHORUS_TEST_SEED to repeat the delays)"]
    # Very early kills (before or while the catalog is created), then kills
    # at a random point of the estimated remaining time, so that some land
    # late (the last commits, the garbage sweep). Each run resumes.
    delays = [0.0, 0.005, 0.03]
    est = 1.0  # seconds the remaining work takes; refined from each run
    kills = 0
    for rnd_i in range(12):
        d = delays[rnd_i] if rnd_i < len(delays) else rnd.uniform(0.02, 1.1) * est
        with Catalog(data) if (data / "catalog.db").exists() else _null() as cat:
            before = cat.track_count() if cat else 0
        bg = start_chorus(["ingest", "--data", data, lib], tmp / "logs", tag="killed")
        time.sleep(d)
        res = bg.kill()
        if res.rc not in (0, -9):
            fail("killed ingest failed on its own", res, "\n".join(log))
        after = 0
        if (data / "catalog.db").exists():
            # Even mid-way: every track that exists has all its chunks.
            check_consistent(data, final=False, context="after a kill:\n" + "\n".join(log))
            with Catalog(data) as cat:
                after = cat.track_count()
        log.append(f"delay {d:.3f}s: rc {res.rc}, tracks {before} -> {after}"
                   f" {res.out.strip()}")
        if res.rc == 0:
            break  # finished before the kill: nothing left to interrupt
        kills += 1
        if rnd_i >= len(delays) - 1 and after > before:
            rate = (after - before) / max(d, 0.01)
            est = 0.1 + (len(files) - after) / rate
        if kills >= 8:
            break
    res = ingest(data, lib, timeout=300)
    ctx = "kills:\n  " + "\n  ".join(log) + f"\nfinal run: {res}"
    check_eq(res.rc, 0, "exit status of the re-run", ctx)
    s = parse_summary(res.out)
    check(s and s["failed"] == 0 and s["updated"] == 0 and
          s["added"] + s["unchanged"] == len(files), "summary of the re-run", ctx)
    check_consistent(data, sources=files, context=ctx)
    expect_ok(ingest(data, lib), unchanged=len(files))


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def tmp_files(origin):
    """Temporary files of the origin: its .tmp directory (and, to be sure,
    any *.tmp.* name elsewhere)."""
    return [k for k in origin_files(origin) if k.startswith(".tmp/") or ".tmp." in k]


@test("kill -9 while a chunk is written, file gone before the re-run: no orphan blob directory")
def _(tmp):
    lib = tmp / "lib"
    big = make_wav(lib / "big.wav", 60, seed=5)  # 10 MB: 11 chunks
    small = make_audio(lib / "small.flac", "flac", 0.5, {"title": "Small"})
    for attempt in range(15):
        data = tmp / f"data{attempt}"
        bg = start_chorus(["ingest", "--data", data, "--jobs", "1", big, small], tmp / "logs")
        seen = []
        deadline = time.monotonic() + 120
        while bg.running() and not seen and time.monotonic() < deadline:
            seen = tmp_files(data / "origin")
        res = bg.kill()
        left = tmp_files(data / "origin")
        if res.rc == -9 and left:
            break
    else:
        fail("never caught chorus writing a chunk (no temporary file seen at a kill)")
    ctx = f"temporary files left by the kill: {left}"
    big.unlink()
    res = ingest(data, lib)
    check_eq(res.rc, 0, "exit status of the re-run", res, ctx)
    check_consistent(data, sources=[small], context=ctx)


@test("a second ingest on the same data directory fails while the first runs")
def _(tmp):
    lib, files = bulk_library()
    for attempt in range(3):
        data = tmp / f"data{attempt}"
        first = start_chorus(["ingest", "--data", data, lib], tmp / "logs", tag="first")
        deadline = time.monotonic() + 60
        while not (data / "catalog.db").exists() and first.running() \
                and time.monotonic() < deadline:
            time.sleep(0.002)
        second = ingest(data, files[0])
        still_running = first.running()
        r1 = first.wait(timeout=300)
        if not still_running and second.rc == 0:
            continue  # the first was done before the second started: try again
        check_eq(second.rc, 1, "exit status of the second ingest", second)
        check("another ingest is running" in second.err,
              "no 'another ingest is running' message", second)
        check_eq(second.out.strip(), "", "stdout of the second ingest", second)
        check_eq(r1.rc, 0, "exit status of the first ingest", r1)
        check_summary(r1, added=len(files))
        check_consistent(data, sources=files)
        return
    fail("the first ingest always finished before the second one started")


@test("on a terminal ingest shows progress (files, MB/s, ETA); on a pipe it shows none")
def _(tmp):
    import shlex
    import subprocess
    from chorus_test import CHORUS_BIN
    lib, files = bulk_library()
    data = tmp / "data"
    # script(1) gives the command a pseudo-terminal as its stderr.
    cmd = " ".join(shlex.quote(str(a)) for a in
                   [CHORUS_BIN, "ingest", "--jobs", "1", "--data", data, lib])
    proc = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    out = proc.stdout.decode("utf-8", "replace")
    check_eq(proc.returncode, 0, "exit status under a terminal", out)
    check(re.search(r"\r\x1b\[K\d+/%d files +[0-9.]+ MB/s +ETA \d+:\d\d" % len(files), out),
          "no progress line on the terminal", out[-2000:])
    check("ingest: %d added" % len(files) in out, "no summary after the progress", out[-2000:])
    res = ingest(tmp / "data2", lib)  # a pipe: expect_ok checks stderr is empty
    expect_ok(res, added=len(files))


if __name__ == "__main__":
    main()
