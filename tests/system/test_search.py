#!/usr/bin/python3
"""System tests for search (GET /api/v1/search), driving the real binary
($CHORUS_BIN) over real sockets on 127.0.0.1, with a library made by ffmpeg.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_search.py [NAME...]
"""

import json
import os
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chorus_test import (  # noqa: E402
    Node, audio_library, check, check_eq, fail, ingest_ok, main, make_audio, test)

# (file, title, artist, album)
LIBRARY = [
    ("help.flac", "Help!", "The Beatles", "Help!"),
    ("yesterday.flac", "Yesterday", "The Beatles", "Help!"),
    ("crazy.mp3", "Crazy in Love", "Beyoncé", "Dangerously in Love"),
    ("hoppipolla.ogg", "Hoppípolla", "Sigur Rós", "Takk"),
    ("gunjo.ogg", "群青日和", "東京事変", "東京の夜"),
    ("beatit.flac", "Beat It", "Michael Jackson", "Thriller"),
    ("song.flac", "Beatles Song", "Tribute Band", "Covers"),
]


def tags(title, artist, album):
    return {"title": title, "artist": artist, "album": album, "album_artist": artist}


def make_file(dirpath, name, title, artist, album):
    return make_audio(dirpath / name, None, 0.3, tags(title, artist, album))


def library():
    """The shared library, made and ingested once: its data directory."""
    return audio_library("search-lib", [(f, 0.3, tags(title, artist, album))
                                        for f, title, artist, album in LIBRARY],
                         ingest=True)["data"]


def search(node, q, limit=None, status=200, raw=None):
    """GET /api/v1/search for q (percent-encoded here, or raw as given);
    the parsed JSON body."""
    qs = raw if raw is not None else "q=" + urllib.parse.quote(q, safe="")
    if limit is not None:
        qs += f"&limit={limit}"
    r = node.get("/api/v1/search?" + qs)
    if r.status != status:
        fail(f"search {q if raw is None else raw[:80]!r}: status {r.status}, want {status}", r)
    ct = r.header("content-type", "")
    check(ct.startswith("application/json"), f"Content-Type {ct!r}", r)
    j = r.json()
    if status == 200:
        check_eq(sorted(j), ["albums", "artists", "top", "tracks"], "search answer keys")
    else:
        check_eq(j.get("error", {}).get("status"), status, "error status in the body")
    return j


def names(j, kind):
    key = "name" if kind == "artists" else "title"
    return [o[key] for o in j[kind]]


def tracks(j):
    return [(t["title"], t["artist"]) for t in j["tracks"]]


# ------------------------------------------------------------------ matching

@test("search: every word matches as a prefix, words may match different fields")
def _(tmp):
    node = Node(library(), tmp)
    j = search(node, "beat")
    check("The Beatles" in names(j, "artists"), f"'beat' finds The Beatles: {j}")
    j = search(node, "beatles help")
    check(tracks(j) and tracks(j)[0] == ("Help!", "The Beatles"),
          f"'beatles help' finds Help! by The Beatles first: {tracks(j)}")
    check_eq(names(j, "albums"), ["Help!"], "'beatles help' albums")
    j = search(node, "bea hel")
    check(("Help!", "The Beatles") in tracks(j), f"'bea hel' finds Help!: {tracks(j)}")
    j = search(node, "thrill jack")
    check_eq(tracks(j), [("Beat It", "Michael Jackson")], "'thrill jack' (album + artist)")
    j = search(node, "beatles zzz")
    check_eq((j["artists"], j["albums"], j["tracks"], j["top"]), ([], [], [], None),
             "every word must match")
    node.stop()


@test("search: case and accents do not matter")
def _(tmp):
    node = Node(library(), tmp)
    for q in ("beyonce", "BEYONCE", "Beyoncé", "beyoncé"):
        j = search(node, q)
        check_eq(names(j, "artists"), ["Beyoncé"], f"artists for {q!r}")
        check_eq(tracks(j), [("Crazy in Love", "Beyoncé")], f"tracks for {q!r}")
    for q in ("sigur ros", "SIGUR RÓS", "sigur rós"):
        j = search(node, q)
        check_eq(names(j, "artists"), ["Sigur Rós"], f"artists for {q!r}")
    j = search(node, "hoppipolla")
    check_eq(tracks(j), [("Hoppípolla", "Sigur Rós")], "'hoppipolla'")
    node.stop()


@test("search: one typo forgiven in words of five letters or more")
def _(tmp):
    node = Node(library(), tmp)
    for q in ("beatels", "beatlse", "beatls", "beattles", "baetles"):
        j = search(node, q)
        check_eq(names(j, "artists"), ["The Beatles"], f"artists for {q!r}")
    j = search(node, "beyonse")
    check_eq(names(j, "artists"), ["Beyoncé"], "'beyonse'")
    j = search(node, "beatels help")
    check(tracks(j) and tracks(j)[0] == ("Help!", "The Beatles"), f"'beatels help': {j}")
    # Two typos, or a typo in a word of four letters: nothing.
    j = search(node, "baetels")
    check_eq(names(j, "artists"), [], "two typos")
    j = search(node, "hlep")
    check_eq((names(j, "albums"), tracks(j)), ([], []), "a typo in a 4-letter word")
    node.stop()


@test("search: non-Latin scripts")
def _(tmp):
    node = Node(library(), tmp)
    j = search(node, "東京")
    check_eq(names(j, "albums"), ["東京の夜"], "'東京' albums")
    check_eq(names(j, "artists"), ["東京事変"], "'東京' artists")
    check_eq(tracks(j), [("群青日和", "東京事変")], "'東京' tracks")
    j = search(node, "群青日和")
    check_eq(j["top"]["kind"], "track", "'群青日和' top")
    node.stop()


# ------------------------------------------------------------------ ranking and shape

@test("search: whole words above prefixes, the artist on top for its name")
def _(tmp):
    node = Node(library(), tmp)
    j = search(node, "beat")
    got = tracks(j)
    check(got and got[0] == ("Beat It", "Michael Jackson"),
          f"'beat': the whole word 'Beat It' before the Beatles' prefix matches: {got}")
    check(("Help!", "The Beatles") in got, f"'beat' finds the Beatles' tracks too: {got}")
    for q in ("the beatles", "beatles", "The Beatles"):
        j = search(node, q)
        check_eq(names(j, "artists")[:1], ["The Beatles"], f"artists for {q!r}")
        check_eq(j["top"], {"kind": "artist", "id": j["artists"][0]["id"]}, f"top for {q!r}")
    # The track named after the query ranks above the artist's own tracks.
    j = search(node, "beatles")
    check_eq(tracks(j)[0], ("Beatles Song", "Tribute Band"), "'beatles' first track")
    check_eq(sorted(tracks(j)[1:]), [("Help!", "The Beatles"), ("Yesterday", "The Beatles")],
             "'beatles' other tracks")
    j = search(node, "help")
    check_eq(tracks(j), [("Help!", "The Beatles"), ("Yesterday", "The Beatles")],
             "'help': the title before the album")
    check_eq(j["top"]["kind"], "album", "'help' top (an album named Help!)")
    j = search(node, "sigur ros")
    check_eq(j["top"], {"kind": "artist", "id": j["artists"][0]["id"]}, "'sigur ros' top")
    node.stop()


@test("search: objects are the catalog endpoints' objects; limit")
def _(tmp):
    node = Node(library(), tmp)
    j = search(node, "beatles help")
    for kind, objs in (("tracks", j["tracks"]), ("albums", j["albums"])):
        for o in objs:
            one = node.get_json(f"/api/v1/{kind}/{o['id']}")
            one.pop("tracks", None)
            check_eq(o, one, f"search {kind} object vs /api/v1/{kind}/ID")
    j = search(node, "beatles")
    one = node.get_json(f"/api/v1/artists/{j['artists'][0]['id']}")
    one.pop("albums", None)
    check_eq(j["artists"][0], one, "search artist object vs /api/v1/artists/ID")
    # "t": The Beatles, Takk, Thriller, Tribute Band.
    j = search(node, "t", limit=1)
    for kind in ("artists", "albums", "tracks"):
        check_eq(len(j[kind]), 1, f"{kind} with limit=1")
    j = search(node, "t")
    check_eq(len(j["tracks"]), 5, "'t': tracks")
    check_eq(len(search(node, "t", limit=50)["tracks"]), 5, "'t' with limit=50")
    for bad in ("0", "51", "-1", "abc", "", "1e3", "99999999999999999999"):
        search(node, "e", limit=bad, status=400)
    node.stop()


# ------------------------------------------------------------------ following ingest

@test("search: the index follows ingest while the node runs")
def _(tmp):
    lib = tmp / "lib"
    make_file(lib, "help.flac", "Help!", "The Beatles", "Help!")
    ingest_ok(tmp / "data", lib)
    node = Node(tmp / "data", tmp)
    j = search(node, "ticket")
    check_eq(tracks(j), [], "'ticket' before")
    j = search(node, "beatles")
    check_eq(tracks(j), [("Help!", "The Beatles")], "'beatles' before")
    before = [a["track_count"] for a in j["albums"] if a["title"] == "Help!"]
    check_eq(before, [1], "the album's track_count before")
    make_file(tmp / "more", "ticket.flac", "Ticket to Ride", "The Beatles", "Help!")
    make_file(tmp / "more", "zzz.flac", "Glósóli", "Sigur Rós", "Takk")
    ingest_ok(tmp / "data", tmp / "more")
    j = search(node, "ticket")
    check_eq(tracks(j), [("Ticket to Ride", "The Beatles")], "'ticket' after ingest")
    j = search(node, "beatles")  # answered before: the memo must not keep it
    check_eq(sorted(tracks(j)), [("Help!", "The Beatles"), ("Ticket to Ride", "The Beatles")],
             "'beatles' after ingest")
    # Objects rendered for the first answer must not be served stale.
    after = [a["track_count"] for a in j["albums"] if a["title"] == "Help!"]
    check_eq(after, [2], "the album's track_count after ingest")
    j = search(node, "tikcet")  # typo terms of the new track too
    check_eq(tracks(j), [("Ticket to Ride", "The Beatles")], "'tikcet' after ingest")
    j = search(node, "glosoli")
    check_eq(names(j, "artists"), [], "'glosoli' is no artist")
    check_eq(tracks(j), [("Glósóli", "Sigur Rós")], "'glosoli' after ingest")
    j = search(node, "sigur")
    check_eq(names(j, "artists"), ["Sigur Rós"], "a new artist after ingest")
    node.stop()


@test("search: a catalog written by schema version 1 is indexed on upgrade")
def _(tmp):
    lib = tmp / "lib"
    for f, title, artist, album in LIBRARY[:3]:
        make_file(lib, f, title, artist, album)
    ingest_ok(tmp / "data", lib)
    # Back to what version 1 wrote: no search tables or triggers.
    db = sqlite3.connect(tmp / "data" / "catalog.db")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                              " AND name LIKE 'search_%'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    for t in ("search_artists", "search_albums", "search_tracks", "search_terms"):
        db.execute(f"DROP TABLE {t}")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    node = Node(tmp / "data", tmp)
    j = search(node, "beatles help")
    check(tracks(j) and tracks(j)[0] == ("Help!", "The Beatles"), f"after upgrade: {j}")
    j = search(node, "beyonse")
    check_eq(names(j, "artists"), ["Beyoncé"], "typo terms after upgrade")
    node.stop()
    db = sqlite3.connect(tmp / "data" / "catalog.db")
    check_eq(db.execute("PRAGMA user_version").fetchone()[0], 8, "schema version")
    db.close()


# ------------------------------------------------------------------ bad queries

@test("search: bad queries get 400 or an empty answer, never 500, and the node stays up")
def _(tmp):
    node = Node(library(), tmp)
    before = node.get_json("/api/v1/tracks")["total"]
    # Required, not empty, not only white space, at most 256 bytes, UTF-8.
    search(node, None, raw="", status=400)
    search(node, None, raw="limit=3", status=400)
    search(node, None, raw="q", status=400)
    search(node, None, raw="q=", status=400)
    search(node, "   ", status=400)
    search(node, "\t\n", status=400)
    search(node, None, raw="q=+++", status=400)
    search(node, "a" * 257, status=400)
    search(node, "é" * 129, status=400)
    search(node, "x" * 5000, status=400)
    search(node, None, raw="q=%FF%FE", status=400)
    search(node, None, raw="q=%zz", status=400)
    search(node, None, raw="q=a%00b", status=400)
    # 10 KB, percent-encoded: the request line is over the server's limit.
    r = node.get("/api/v1/search?q=" + urllib.parse.quote("é" * 5000, safe=""))
    check(r.status in (400, 414), f"10 KB query: status {r.status}", r)
    check(search(node, "a" * 256) is not None, "256 bytes is allowed")
    # Punctuation and FTS5 / SQL syntax: no error, at most an empty answer.
    empty = ("!!!", "...", "\"", "*", "^", ":", "(", ")", "-", "+", "\"\"\"", "((((", "))",
             "NEAR(", "NEAR(a b", "OR", "AND", "NOT", "a OR", "OR a", "\"unbalanced",
             "'; DROP TABLE tracks; --", "{title}:x", "title:help", "help*", "-help",
             "help AND", "^help", "x\"y", "%", "_", "\\", "?")
    for q in empty:
        r = node.get("/api/v1/search?q=" + urllib.parse.quote(q, safe=""))
        check(r.status in (200, 400), f"{q!r}: status {r.status}", r)
        j = r.json()
        if r.status == 200:
            for kind in ("artists", "albums", "tracks"):
                check(isinstance(j[kind], list), f"{q!r}: {kind} is not a list: {j}")
        check(node.running(), f"node died on {q!r}")
    # Syntax characters do not change what the words find.
    for q in ("help*", "^help", "-help", "\"help\"", "(help)", "help:", "+help"):
        j = search(node, q)
        got = [t for t in tracks(j) if t[0] == "Help!"]
        check(got, f"{q!r} still finds Help!: {tracks(j)}")
    for q in ("OR", "AND", "NEAR(", "'; DROP TABLE tracks; --", "\"", "*", "!!!"):
        j = search(node, q)
        check_eq(j["tracks"], [], f"{q!r} tracks")
    check_eq(node.get_json("/health"), {"status": "ok"}, "/health after the bad queries")
    check_eq(node.get_json("/api/v1/tracks")["total"], before, "tracks still all there")
    node.stop()


if __name__ == "__main__":
    main()
