#!/usr/bin/python3
"""Editing the catalog: PATCH of tracks, albums and artists (422 with
every field's problem; edits kept across a re-ingest of the same file),
PUT of an album's cover (JPEG and PNG made by ffmpeg, garbage refused,
413 over 10 MiB), DELETE of tracks and albums (gone from the catalog,
search, streams, the origin and the cache; reports keep their plays),
who may do it, and two nodes on PostgreSQL and S3 (an edit and a
deletion on one seen on the other within a second; the deleted track's
objects gone from the bucket, checked with awscli, and from both caches).

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_edit.py [NAME...]
"""

import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    CHORUS_BIN, Node, RawConn, bearer, catalog, check, check_eq, chorus_env, fail, ingest_ok,
    main, make_audio, make_key, origin_files, retag, run_ffmpeg, test, wait_for)
from s3 import S3Server  # noqa: E402

JSON_CT = {"Content-Type": "application/json"}


def make_library(root):
    """Three tracks on two albums, tagged; returns {name: path}."""
    files = {
        "one": make_audio(root / "one.mp3", seconds=2.0, tags={
            "title": "Morning Song", "artist": "Ana Lima", "album": "Early",
            "album_artist": "Ana Lima", "track": "1", "date": "2001", "genre": "Jazz",
            "TSRC": "USRC17607839", "publisher": "Blue Label"}),
        "two": make_audio(root / "two.mp3", seconds=2.0, tags={
            "title": "Noon Song", "artist": "Ana Lima", "album": "Early", "track": "2",
            "date": "2001"}),
        "three": make_audio(root / "three.mp3", seconds=2.0, tags={
            "title": "Night Song", "artist": "Ben Ode", "album": "Late", "date": "2005"}),
    }
    return files


def by_title(node, headers=None):
    r = node.request("GET", "/api/v1/tracks", headers)
    check_eq(r.status, 200, "GET /api/v1/tracks", r)
    return {t["title"]: t for t in r.json()["tracks"]}


def patch(node, path, body, headers=None):
    h = dict(JSON_CT)
    h.update(headers or {})
    return node.request("PATCH", path, h, json.dumps(body) if not isinstance(body, str)
                        else body)


def search(node, q):
    return node.get_json("/api/v1/search?q=" + urllib.parse.quote(q))


def recent(seconds_ago=60):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


def post_play(node, track_id, ms=1000):
    p = {"track_id": track_id, "started_at": recent(), "ms_played": ms,
         "event_id": uuid.uuid4().hex}
    r = node.request("POST", "/api/v1/plays", JSON_CT, json.dumps([p]))
    check_eq(r.status, 201, "POST /api/v1/plays", r)


def auth_line(headers):
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items())


def cache_files(data, blob):
    d = pathlib.Path(data) / "cache" / blob[:2]
    return sorted(p.name for p in d.glob(blob + "-*")) if d.exists() else []


def blob_of(data, track_id):
    with catalog(data) as c:
        rows = c.rows("SELECT blob, chunk_count FROM tracks WHERE id = ?",
                      (int(track_id, 16),))
    check_eq(len(rows), 1, f"track {track_id} in the catalog")
    return rows[0]["blob"], rows[0]["chunk_count"]


def picture(tmp, name, codec, size="96x64"):
    out = tmp / name
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc=s={size}:d=1", "-frames:v", "1", "-c:v", codec,
                out])
    return out.read_bytes()


def standalone(tmp):
    src = tmp / "src"
    files = make_library(src)
    data = tmp / "data"
    ingest_ok(data, src)
    node = Node(data, tmp / "logs")
    return node, data, src, files


@test("PATCH a track: GET and search show the fields at once; the audit names who and what")
def _(tmp):
    node, data, _, _ = standalone(tmp)
    editor = bearer(make_key(data, "editor", name="ed"))
    t = by_title(node)["Morning Song"]
    body = {"title": "Sunrise Waltz", "artist": "Carla Diaz", "album": "Dawn",
            "album_artist": "Carla Diaz", "track_number": 7, "disc_number": 2, "year": 1999,
            "genre": "Waltz", "isrc": "gb-aaa-99-00001", "label": "Red Label",
            "explicit": True}
    r = patch(node, f"/api/v1/tracks/{t['id']}", body, editor)
    check_eq(r.status, 200, "PATCH", r)
    got = r.json()
    want = dict(body, isrc="GBAAA9900001")
    for k, v in want.items():
        check_eq(got[k], v, f"the answer's {k}")
    check_eq(got["id"], t["id"], "the track keeps its id")
    again = node.get_json(f"/api/v1/tracks/{t['id']}")
    for k, v in want.items():
        check_eq(again[k], v, f"GET's {k}")
    album = node.get_json(f"/api/v1/albums/{got['album_id']}")
    check_eq((album["title"], album["artist"]), ("Dawn", "Carla Diaz"), "the new album")
    hits = search(node, "sunrise waltz")
    check_eq([x["id"] for x in hits["tracks"]], [t["id"]], "search finds the new title")
    check_eq(hits["tracks"][0]["artist"], "Carla Diaz", "search shows the new artist")
    check_eq(search(node, "carla")["artists"][0]["name"], "Carla Diaz", "the artist is found")
    check_eq([x["id"] for x in search(node, "morning")["tracks"]], [],
             "the old title is not found")
    # The old album keeps its other track; its old artist still has it.
    early = [a for a in node.get_json("/api/v1/albums")["albums"] if a["title"] == "Early"]
    check_eq(early[0]["track_count"], 1, "Early keeps Noon Song")
    # Clearing what may be unknown.
    r = patch(node, f"/api/v1/tracks/{t['id']}", {"genre": None, "isrc": None,
                                                   "explicit": None, "track_number": None},
              editor)
    check_eq(r.status, 200, "PATCH to null", r)
    for k in ("genre", "isrc", "explicit", "track_number"):
        check_eq(r.json()[k], None, f"{k} cleared")
    audit = node.get_json("/api/v1/audit")["audit"]
    edits = [a for a in audit if a["action"] == "track.edit"]
    check_eq(len(edits), 2, "two audit rows", audit)
    check_eq(edits[-1]["object"], t["id"], "the audit names the track")
    check(edits[-1]["actor"].startswith("key:"), "the audit names the key", edits[-1])
    check_eq(edits[-1]["detail"]["title"], "Sunrise Waltz", "the audit's detail")
    node.stop()


@test("bad PATCH bodies: 422 with every field's problem, 400 for non-JSON, 415, 404; nothing changes")
def _(tmp):
    node, data, _, _ = standalone(tmp)
    t = by_title(node)["Noon Song"]
    path = f"/api/v1/tracks/{t['id']}"
    before = node.get_json(path)
    r = patch(node, path, {"year": "abc", "track_number": -1, "title": "x" * 1025,
                           "bogus": 1, "isrc": "nope", "explicit": "yes", "title2": None})
    check_eq(r.status, 422, "422", r)
    e = r.json()["error"]
    check_eq(e["status"], 422, "the error's status")
    check(e["message"], "a message", e)
    check_eq(sorted(e["fields"]), sorted(["year", "track_number", "title", "bogus", "isrc",
                                          "explicit", "title2"]), "every field listed", e)
    check_eq(e["fields"]["year"], "must be 1000-9999, or null", "year's message")
    check_eq(e["fields"]["bogus"], "unknown field", "an unknown field")
    for body, field in (({"title": ""}, "title"), ({"title": "   "}, "title"),
                        ({"title": None}, "title"), ({"artist": "a\u0001b"}, "artist"),
                        ({"year": 999}, "year"), ({"year": 2001.5}, "year"),
                        ({"disc_number": 0}, "disc_number"), ({"isrc": "US-RC1-76-0783"}, "isrc"),
                        ({"name": "x"}, "name")):
        r = patch(node, path, body)
        check_eq(r.status, 422, f"{body}", r)
        check_eq(list(r.json()["error"]["fields"]), [field], f"{body}: the field", r)
    check_eq(patch(node, path, {}).status, 422, "an empty edit")
    for bad in ("not json", "[1]", '{"title":"a","title":"b"}'):
        r = patch(node, path, bad)
        check_eq(r.status, 400, f"{bad!r}", r)
    r = node.request("PATCH", path, {"Content-Type": "text/plain"}, '{"title":"x"}')
    check_eq(r.status, 415, "text/plain", r)
    r = patch(node, "/api/v1/tracks/00000000000000aa", {"title": "x"})
    check_eq(r.status, 404, "an unknown track", r)
    r = patch(node, "/api/v1/albums/" + t["album_id"], {"track_number": 3})
    check_eq(r.status, 422, "a track's field on an album", r)
    check_eq(node.get_json(path), before, "nothing changed")
    node.stop()


@test("re-ingest: edited fields stay, the others follow the file (touched, then re-tagged)")
def _(tmp):
    node, data, src, files = standalone(tmp)
    t = by_title(node)["Morning Song"]
    r = patch(node, f"/api/v1/tracks/{t['id']}", {"title": "Kept Title", "year": 1980,
                                                   "artist": "Kept Artist"})
    check_eq(r.status, 200, "PATCH", r)
    # Touched: read again, the same bytes: nothing changes.
    st = files["one"].stat()
    os.utime(files["one"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ingest_ok(data, src)
    got = node.get_json(f"/api/v1/tracks/{t['id']}")
    check_eq((got["title"], got["year"], got["artist"]), ("Kept Title", 1980, "Kept Artist"),
             "after a touch")
    # Re-tagged: another genre and label, a new title too; the edited
    # title, year and artist stay, genre and label follow the file.
    tmpf = tmp / "retagged.mp3"
    retag(files["one"], tmpf, {"title": "File Title", "artist": "Ana Lima", "album": "Early",
                               "album_artist": "Ana Lima", "track": "1", "date": "2002",
                               "genre": "Bossa", "TSRC": "USRC17607839",
                               "publisher": "Green Label"})
    shutil.move(tmpf, files["one"])
    r = ingest_ok(data, src)
    check("1 updated" in r.out or "1 updated" in r.err, "the file updated its track", r)
    got = node.get_json(f"/api/v1/tracks/{t['id']}")
    check_eq((got["title"], got["year"], got["artist"]), ("Kept Title", 1980, "Kept Artist"),
             "edited fields after a re-tag")
    check_eq((got["genre"], got["label"]), ("Bossa", "Green Label"), "unedited fields follow")
    check_eq(got["album"], "Early", "the album follows the file")
    titles = by_title(node)
    check_eq(sorted(titles), ["Kept Title", "Night Song", "Noon Song"], "no second track")
    check_eq([a["name"] for a in node.get_json("/api/v1/artists")["artists"]
              if a["track_count"] == 0 and a["album_count"] == 0], [],
             "no empty artist left behind")
    # An album renamed keeps its tracks through a re-ingest too.
    al = titles["Noon Song"]["album_id"]
    r = patch(node, f"/api/v1/albums/{al}", {"title": "Early Works", "year": 1977})
    check_eq(r.status, 200, "PATCH album", r)
    check_eq(r.json()["title"], "Early Works", "album title")
    check_eq(sorted(x["title"] for x in r.json()["tracks"]), ["Kept Title", "Noon Song"],
             "both tracks moved")
    new_al = r.json()["id"]
    check(node.get(f"/api/v1/albums/{al}").status == 404, "the old album id is gone")
    ingest_ok(data, src)
    st = files["two"].stat()
    retag(files["two"], tmpf, {"title": "Noon Song", "artist": "Ana Lima", "album": "Early",
                               "track": "2", "date": "2001", "genre": "Samba"})
    shutil.move(tmpf, files["two"])
    ingest_ok(data, src)
    got = by_title(node)["Noon Song"]
    check_eq((got["album"], got["album_id"], got["genre"]), ("Early Works", new_al, "Samba"),
             "the renamed album stays")
    r = patch(node, f"/api/v1/artists/{got['artist_id']}", {"name": "Ana Lima-Souza"})
    check_eq(r.status, 200, "PATCH artist", r)
    check_eq(r.json()["name"], "Ana Lima-Souza", "artist renamed")
    check_eq(by_title(node)["Noon Song"]["artist"], "Ana Lima-Souza", "its track shows it")
    node.stop()


@test("PUT a cover: JPEG and PNG taken and served back; garbage 422, wrong type 415, over 10 MiB 413")
def _(tmp):
    node, data, _, _ = standalone(tmp)
    editor = bearer(make_key(data, "editor"))
    al = node.get_json("/api/v1/albums")["albums"][0]
    path = f"/api/v1/albums/{al['id']}/cover"
    check_eq(al["cover_url"], None, "no cover yet")
    jpeg = picture(tmp, "c.jpg", "mjpeg")
    png = picture(tmp, "c.png", "png", "300x200")
    for data_, ctype in ((jpeg, "image/jpeg"), (png, "image/png")):
        h = dict(editor, **{"Content-Type": ctype})
        r = node.request("PUT", path, h, data_)
        check_eq(r.status, 200, f"PUT {ctype}", r)
        check_eq(r.json()["cover_url"], path, "the album has a cover")
        g = node.get(path)
        check_eq(g.status, 200, "GET cover", g)
        check_eq(g.header("content-type"), ctype, "its type")
        check(g.body == data_, f"GET returns the {ctype} bytes")
    for body, ctype, want in ((b"not an image at all", "image/jpeg", 422),
                              (png, "image/jpeg", 422), (jpeg[:40], "image/jpeg", 422),
                              (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png", 422),
                              (b"", "image/png", 422), (jpeg, "image/gif", 415),
                              (jpeg, None, 415)):
        h = dict(editor)
        if ctype:
            h["Content-Type"] = ctype
        r = node.request("PUT", path, h, body)
        check_eq(r.status, want, f"{ctype} of {len(body)} bytes", r)
        check_eq(r.json()["error"]["status"], want, "a JSON error", r)
    # Over 10 MiB: refused from the head, before a byte of the body.
    rc = RawConn(node.port)
    rc.send(f"PUT {path} HTTP/1.1\r\nHost: x\r\n{auth_line(editor)}"
            f"Content-Type: image/png\r\nContent-Length: {(10 << 20) + 1}\r\n\r\n".encode())
    r = rc.read_response()
    rc.close()
    check_eq(r.status, 413, "10 MiB + 1 byte", r)
    # Exactly 10 MiB is taken (a PNG with trailing bytes after its IEND
    # is still that PNG's header).
    big = png + b"\0" * ((10 << 20) - len(png))
    r = node.request("PUT", path, dict(editor, **{"Content-Type": "image/png"}), big)
    check_eq(r.status, 200, "10 MiB", r)
    check(node.get(path).body == big, "the 10 MiB cover served back")
    r = node.request("PUT", path, dict(editor, **{"Content-Type": "image/png"}), png)
    check_eq(r.status, 200, "PUT the PNG again", r)
    r = node.request("PUT", "/api/v1/albums/00000000000000aa/cover",
                     dict(editor, **{"Content-Type": "image/png"}), png)
    check_eq(r.status, 404, "an unknown album", r)
    # Other routes keep the server's 1 MiB, refused from the head.
    rc = RawConn(node.port)
    rc.send(f"PATCH /api/v1/albums/{al['id']} HTTP/1.1\r\nHost: x\r\n{auth_line(editor)}"
            f"Content-Type: application/json\r\nContent-Length: {(1 << 20) + 1}"
            "\r\n\r\n".encode())
    r = rc.read_response()
    rc.close()
    check_eq(r.status, 413, "a PATCH body over 1 MiB", r)
    node.stop()


@test("DELETE a track and an album: gone from GET, search and streams, from the origin and the cache; reports keep the plays")
def _(tmp):
    node, data, _, _ = standalone(tmp)
    editor = bearer(make_key(data, "editor"))
    titles = by_title(node)
    t = titles["Night Song"]
    blob, chunks = blob_of(data, t["id"])
    r = node.get(f"/api/v1/tracks/{t['id']}/stream")
    check_eq(r.status, 200, "stream before", r)
    wait_for("the chunk in the cache", lambda: len(cache_files(data, blob)) == chunks, 5)
    check(any(blob in k for k in origin_files(data / "origin")), "the blob in the origin")
    post_play(node, t["id"], 1500)
    post_play(node, t["id"], 500)
    r = node.request("DELETE", f"/api/v1/tracks/{t['id']}", editor)
    check_eq(r.status, 200, "DELETE track", r)
    check_eq(r.json(), {"deleted": "track", "id": t["id"], "tracks": 1}, "its answer")
    check_eq(node.get(f"/api/v1/tracks/{t['id']}").status, 404, "GET after")
    check_eq(node.get(f"/api/v1/tracks/{t['id']}/stream").status, 404, "stream after")
    check_eq(node.get(f"/api/v1/albums/{t['album_id']}").status, 404, "its album went with it")
    check_eq(search(node, "night")["tracks"], [], "search after")
    check_eq(search(node, "ben ode")["artists"], [], "its artist went too")
    check(not any(blob in k for k in origin_files(data / "origin")), "gone from the origin")
    wait_for("gone from the cache", lambda: cache_files(data, blob) == [], 2)
    check_eq(node.request("DELETE", f"/api/v1/tracks/{t['id']}", editor).status, 404,
             "DELETE again")
    rows = node.get_json("/api/v1/reports/plays?group=track")["rows"]
    row = [x for x in rows if x["id"] == t["id"]]
    check_eq(len(row), 1, "the report has the deleted track", rows)
    check_eq((row[0]["name"], row[0]["plays"], row[0]["ms_played"]), ("Night Song", 2, 2000),
             "its plays and title")
    census = node.get("/api/v1/reports/plays?group=none&format=csv").body.decode()
    lines = [ln for ln in census.splitlines() if t["id"] in ln]
    check_eq(len(lines), 2, "two census lines", census)
    check(lines[0].startswith("Ben Ode,Night Song,"), "the census names it", lines[0])
    # The album: both its tracks, its cover.
    al = titles["Noon Song"]["album_id"]
    png = picture(tmp, "c.png", "png")
    node.request("PUT", f"/api/v1/albums/{al}/cover", dict(editor, **{"Content-Type":
                                                                     "image/png"}), png)
    blobs = [blob_of(data, titles[n]["id"])[0] for n in ("Noon Song", "Morning Song")]
    for n in ("Noon Song", "Morning Song"):
        check_eq(node.get(f"/api/v1/tracks/{titles[n]['id']}/stream").status, 200, "stream")
    r = node.request("DELETE", f"/api/v1/albums/{al}", editor)
    check_eq(r.status, 200, "DELETE album", r)
    check_eq(r.json()["tracks"], 2, "two tracks deleted", r)
    check_eq(node.get(f"/api/v1/albums/{al}").status, 404, "the album")
    check_eq(node.get(f"/api/v1/albums/{al}/cover").status, 404, "its cover")
    check_eq(node.get_json("/api/v1/tracks")["tracks"], [], "no track left")
    check_eq(origin_files(data / "origin"), {}, "the origin is empty")
    for b in blobs:
        wait_for("the album's chunks gone from the cache", lambda: cache_files(data, b) == [], 2)
    audit = [a["action"] for a in node.get_json("/api/v1/audit")["audit"]]
    check("track.delete" in audit and "album.delete" in audit and "album.cover" in audit,
          "audit rows", audit)
    node.stop()


@test("who may edit: anonymous 401, listener and store keys 403, editor and admin ok; an editor's session needs its CSRF token")
def _(tmp):
    node, data, _, _ = standalone(tmp)
    p = subprocess.run([CHORUS_BIN, "user", "add", "eddie", "--role", "editor", "--data", data],
                       input=b"eddie-password-1\n", capture_output=True, env=chorus_env(),
                       timeout=60)
    check_eq(p.returncode, 0, f"user add: {p.stderr.decode()}")
    r = node.request("POST", "/api/v1/session", JSON_CT,
                     json.dumps({"user": "eddie", "password": "eddie-password-1"}), auth=False)
    check_eq(r.status, 200, "the editor logs in", r)
    cookie = {"Cookie": r.header("set-cookie").split(";")[0]}
    csrf = r.json()["csrf_token"]
    t = by_title(node)["Noon Song"]
    path = f"/api/v1/tracks/{t['id']}"
    listener = bearer(make_key(data, "listener"))
    store = bearer(make_key(data, "store", location="Shop"))
    for who, h, want in (("anonymous", {}, 401), ("listener", listener, 403),
                         ("store", store, 403),
                         ("editor", bearer(make_key(data, "editor")), 200),
                         ("admin", node.auth(), 200)):
        r = node.request("PATCH", path, dict(h, **JSON_CT), json.dumps({"genre": who}),
                         auth=False)
        check_eq(r.status, want, f"PATCH as {who}", r)
        r = node.request("DELETE", "/api/v1/tracks/00000000000000aa", h, auth=False)
        check_eq(r.status, 404 if want == 200 else want, f"DELETE as {who}", r)
    check_eq(node.get_json(path)["genre"], "admin", "the last good edit")
    r = node.request("PATCH", path, dict(cookie, **JSON_CT), json.dumps({"genre": "c"}),
                     auth=False)
    check_eq(r.status, 403, "a session's PATCH without X-CSRF-Token", r)
    r = node.request("DELETE", path, cookie, auth=False)
    check_eq(r.status, 403, "a session's DELETE without X-CSRF-Token", r)
    r = node.request("PATCH", path, dict(cookie, **JSON_CT, **{"X-CSRF-Token": csrf}),
                     json.dumps({"genre": "session"}), auth=False)
    check_eq(r.status, 200, "with it", r)
    check_eq(node.get_json(path)["genre"], "session", "the session's edit")
    audit = node.get_json("/api/v1/audit")["audit"]
    check_eq(audit[0]["actor"], "eddie", "the audit names the user", audit[0])
    node.stop()


@test("a catalog from before editing (SQLite 6, PostgreSQL 5) is upgraded in place: tracks kept, PATCH and DELETE work")
def _(tmp):
    import sqlite3
    src = tmp / "src"
    make_library(src)
    data = tmp / "data"
    ingest_ok(data, src)
    # What the version before this one wrote: no explicit or edited
    # column, no deleted_tracks.
    with sqlite3.connect(data / "catalog.db") as c:
        c.execute("ALTER TABLE tracks DROP COLUMN explicit")
        c.execute("ALTER TABLE tracks DROP COLUMN edited")
        c.execute("DROP TABLE deleted_tracks")
        for t in ("locations", "zones", "playlists", "devices"):
            c.execute(f"DROP TABLE {t}")
        c.execute("PRAGMA user_version = 6")
    node = Node(data, tmp / "logs")
    with sqlite3.connect(data / "catalog.db") as c:
        check_eq(c.execute("PRAGMA user_version").fetchone()[0], 8, "upgraded")
        cols = [r[1] for r in c.execute("PRAGMA table_info(tracks)")]
        check(cols[-2:] == ["explicit", "edited"], "the columns added", cols)
    t = by_title(node)
    check_eq(sorted(t), ["Morning Song", "Night Song", "Noon Song"], "tracks kept")
    check_eq(t["Noon Song"]["explicit"], None, "explicit unknown")
    r = patch(node, f"/api/v1/tracks/{t['Noon Song']['id']}", {"title": "Upgraded"})
    check_eq(r.status, 200, "PATCH after the upgrade", r)
    r = node.request("DELETE", f"/api/v1/tracks/{t['Night Song']['id']}")
    check_eq(r.status, 200, "DELETE after the upgrade", r)
    node.stop()
    with pg.server() as db:
        origin = f"dir:{tmp / 'origin'}"
        ingest_ok(tmp / "i", src, db=db.conninfo, origin=origin)
        db.query("ALTER TABLE tracks DROP COLUMN explicit; ALTER TABLE tracks DROP COLUMN edited;"
                 " DROP TABLE deleted_tracks; DROP TABLE locations; DROP TABLE zones;"
                 " DROP TABLE playlists; DROP TABLE devices; UPDATE chorus_schema SET version = 5")
        n = Node(tmp / "n1", tmp / "logs", args=["--db", db.conninfo, "--origin", origin])
        check_eq(db.value("SELECT version FROM chorus_schema"), "7", "PostgreSQL upgraded")
        check_eq(db.value("SELECT count(*) FROM tracks WHERE edited = 0"), "3", "edited = 0")
        t = by_title(n)
        r = patch(n, f"/api/v1/tracks/{t['Noon Song']['id']}", {"explicit": False})
        check_eq(r.status, 200, "PATCH after the upgrade", r)
        check_eq(r.json()["explicit"], False, "explicit on the node")
        r = n.request("DELETE", f"/api/v1/tracks/{t['Night Song']['id']}")
        check_eq(r.status, 200, "DELETE after the upgrade", r)
        check_eq(db.value("SELECT title FROM deleted_tracks"), "Night Song", "its tombstone")
        n.stop()


# ---------------------------------------------------------------- a cluster

def cluster(tmp, db):
    s3 = S3Server.shared()
    prefix = f"edit-{os.getpid()}-{random.randrange(1 << 30)}"
    origin = s3.spec(prefix)
    env = s3.env()
    src = tmp / "src"
    make_library(src)
    ingest_ok(tmp / "ingest", src, db=db.conninfo, origin=origin, env=env)
    nodes = [Node(tmp / f"n{i}", tmp / "logs", args=["--db", db.conninfo, "--origin", origin],
                  env=env, tag=f"n{i}") for i in range(2)]

    def reingest():
        ingest_ok(tmp / "ingest", src, db=db.conninfo, origin=origin, env=env)
    return s3, prefix, nodes, src, reingest


def until(what, cond, timeout=5.0):
    """Seconds until cond() held (polled every 2 ms)."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            fail(f"{what}: not within {timeout} s")
        time.sleep(0.002)
    return time.monotonic() - t0


@test("two nodes on PostgreSQL and S3: an edit and a deletion on A are on B within 1 s; the objects leave the bucket and both caches")
def _(tmp):
    with pg.server() as db:
        s3, prefix, (a, b), src, reingest = cluster(tmp, db)
        editor = bearer(make_key(a.data, "editor", db=db.conninfo))
        wait_for("B knows the editor's key",
                 lambda: b.request("GET", "/api/v1/session", editor, auth=False).status == 200,
                 5)
        t = by_title(a)["Morning Song"]
        # Both nodes stream it: its chunk is in both caches.
        for nd in (a, b):
            r = nd.get(f"/api/v1/tracks/{t['id']}/stream")
            check_eq(r.status, 200, "stream", r)
        blob, chunks = blob_of(a.data, t["id"])
        for nd in (a, b):
            wait_for("the chunk cached", lambda: len(cache_files(nd.data, blob)) == chunks, 5)
        objs = [o["Key"] for o in s3.list(prefix)]
        check(any(blob in k for k in objs), "the blob in the bucket", objs)

        # Times from the request to A: its answer (A waits for its own read
        # model), then B's GET and B's search showing the change.
        t0 = time.monotonic()
        r = patch(a, f"/api/v1/tracks/{t['id']}", {"title": "Cluster Edit", "year": 1990},
                  editor)
        answer_s = time.monotonic() - t0
        check_eq(r.status, 200, "PATCH on A", r)
        check_eq(a.get_json(f"/api/v1/tracks/{t['id']}")["title"], "Cluster Edit",
                 "A shows it when it answers")
        until("B shows the edit", lambda: b.get_json(
            f"/api/v1/tracks/{t['id']}")["title"] == "Cluster Edit")
        edit_s = time.monotonic() - t0
        until("B's search finds it", lambda: [
            x["id"] for x in search(b, "cluster edit")["tracks"]] == [t["id"]])
        search_s = time.monotonic() - t0
        print(f"# edit: A answered in {answer_s * 1000:.1f} ms; B's GET showed it"
              f" {edit_s * 1000:.1f} ms after the request, B's search {search_s * 1000:.1f} ms")
        check(search_s < 1.0, f"the edit reached B in {search_s:.3f} s")

        # An album renamed, an artist renamed, a cover: PostgreSQL's rows
        # (a bytea among them) through B's read model.
        noon = by_title(a)["Noon Song"]
        r = patch(a, f"/api/v1/albums/{noon['album_id']}", {"title": "Early Works",
                                                             "genre": "Bossa"}, editor)
        check_eq(r.status, 200, "PATCH album on A", r)
        new_al = r.json()["id"]
        check(new_al != noon["album_id"], "a new title, a new album id", r)
        until("B shows the renamed album", lambda: b.get(f"/api/v1/albums/{new_al}").status
              == 200)
        got = b.get_json(f"/api/v1/albums/{new_al}")
        check_eq(sorted(x["title"] for x in got["tracks"]), ["Cluster Edit", "Noon Song"],
                 "its tracks on B")
        check_eq({x["genre"] for x in got["tracks"]}, {"Bossa"}, "the album's genre on B")
        check_eq(b.get(f"/api/v1/albums/{noon['album_id']}").status, 404, "the old id on B")
        # Re-tagged and ingested again into PostgreSQL: the edits stay (the
        # album's new title, its genre), the label follows the file, and
        # the bytes it replaced leave B's cache.
        check_eq(b.get(f"/api/v1/tracks/{noon['id']}/stream").status, 200, "stream on B")
        old_blob, old_chunks = blob_of(b.data, noon["id"])
        wait_for("B caches it", lambda: len(cache_files(b.data, old_blob)) == old_chunks, 5)
        retag(src / "two.mp3", tmp / "two.mp3", {
            "title": "Noon Song", "artist": "Ana Lima", "album": "Early", "track": "2",
            "date": "2001", "genre": "Samba", "publisher": "Noon Label"})
        shutil.move(tmp / "two.mp3", src / "two.mp3")
        reingest()
        until("B shows the re-ingested label",
              lambda: by_title(b)["Noon Song"]["label"] == "Noon Label")
        got = by_title(b)["Noon Song"]
        check_eq((got["album"], got["album_id"], got["genre"]), ("Early Works", new_al, "Bossa"),
                 "the edits after a re-ingest into PostgreSQL")
        check(blob_of(b.data, noon["id"])[0] != old_blob, "a new blob")
        until("B's cache drops the replaced blob", lambda: cache_files(b.data, old_blob) == [],
              2.0)
        night = by_title(a)["Night Song"]
        r = patch(a, f"/api/v1/artists/{night['artist_id']}", {"name": "Ben Odell"}, editor)
        check_eq(r.status, 200, "PATCH artist on A", r)
        until("B shows the renamed artist",
              lambda: by_title(b)["Night Song"]["artist"] == "Ben Odell")
        check_eq(by_title(b)["Night Song"]["album_artist"], "Ben Odell", "and as album artist")
        png = picture(tmp, "c.png", "png")
        r = a.request("PUT", f"/api/v1/albums/{new_al}/cover",
                      dict(editor, **{"Content-Type": "image/png"}), png)
        check_eq(r.status, 200, "PUT cover on A", r)
        until("B serves the cover",
              lambda: b.get(f"/api/v1/albums/{new_al}/cover").body == png)

        post_play(b, t["id"], 700)  # shipped to PostgreSQL, reported from there
        t0 = time.monotonic()
        r = a.request("DELETE", f"/api/v1/tracks/{t['id']}", editor)
        answer_s = time.monotonic() - t0
        check_eq(r.status, 200, "DELETE on A", r)
        check_eq(a.get(f"/api/v1/tracks/{t['id']}").status, 404, "gone on A when it answers")
        until("B forgets the track", lambda: b.get(f"/api/v1/tracks/{t['id']}").status == 404)
        del_s = time.monotonic() - t0
        check_eq(search(b, "cluster edit")["tracks"], [], "B's search")
        check_eq(b.get(f"/api/v1/tracks/{t['id']}/stream").status, 404, "B's stream")
        print(f"# deletion: A answered in {answer_s * 1000:.1f} ms (objects removed from S3"
              f" first); B's GET was 404 {del_s * 1000:.1f} ms after the request")
        check(del_s < 1.0, f"the deletion reached B in {del_s:.3f} s")
        objs = [o["Key"] for o in s3.list(prefix)]
        check(not any(blob in k for k in objs), "the blob left the bucket (awscli)", objs)
        check(len(objs) > 0, "the other tracks' objects stay", objs)
        for nd in (a, b):
            gone_s = until(f"{nd.data.name}'s cache drops the blob",
                           lambda: cache_files(nd.data, blob) == [], 2.0)
            print(f"# {nd.data.name}: cache files gone after {gone_s * 1000:.1f} ms more")
        rows = db.query("SELECT title FROM deleted_tracks")
        check("Cluster Edit" in str(rows), "PostgreSQL keeps the tombstone", rows)

        def reported():
            r = a.get("/api/v1/reports/plays?group=track")
            return r.status == 200 and [
                (x["name"], x["plays"]) for x in r.json()["rows"] if x["id"] == t["id"]]
        wait_for("the deleted track's play in PostgreSQL's report",
                 lambda: reported() == [("Cluster Edit", 1)], 15, step=0.2,
                 context=reported)
        census = a.get("/api/v1/reports/plays?group=none&format=csv").body.decode()
        check(any(ln.startswith("Ana Lima,Cluster Edit,USRC17607839,")
                  for ln in census.splitlines()), "the census names it", census)
        for nd in (a, b):
            nd.stop()


if __name__ == "__main__":
    main()
