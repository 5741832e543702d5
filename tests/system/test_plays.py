#!/usr/bin/python3
"""System tests for plays: POST /api/v1/plays, GET /api/v1/reports/plays and
`chorus report`, driving the real binary ($CHORUS_BIN) on 127.0.0.1.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_plays.py [NAME...]
"""

import csv
import datetime
import io
import json
import os
import shutil
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chorus_test import (  # noqa: E402
    Node, RawConn, audio_library, check, check_eq, client_event_id, main, run_chorus, test)

JSON_CT = {"Content-Type": "application/json"}

# Plays must have started within the last 30 days: three days from ten
# days ago (UTC), for reports grouped by day.
_BASE = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=10)
D1, D2, D3 = (str(_BASE + datetime.timedelta(days=i)) for i in range(3))

# (file, tags): two artists, two albums, three tracks.
TRACKS = [
    ("a1.mp3", {"title": "Song, One", "artist": "Ärtist A", "album": "Album X", "TSRC":
                "USAAA2400001", "publisher": "Label \"Q\"", "track": "1"}),
    ("a2.mp3", {"title": "Song Two", "artist": "Ärtist A", "album": "Album X", "TSRC":
                "USAAA2400002", "publisher": "Label \"Q\"", "track": "2"}),
    ("b1.mp3", {"title": "Other \"Line\"", "artist": "Band B", "album": "Album Y", "TSRC":
                "GBBBB2400001", "track": "1"}),
]


def library():
    """An ingested catalog, built once: {'data': dir, 'tracks': {title: track json}}."""
    data = audio_library("plays-lib", [(name, 1.0, tags) for name, tags in TRACKS],
                         ingest=True)["data"]
    node = Node(data, data.parent / "logs", tag="lib")
    try:
        tracks = node.get_json("/api/v1/tracks?limit=10")["tracks"]
    finally:
        node.stop()
    check_eq(len(tracks), 3, "tracks in the library")
    return {"data": data, "tracks": {t["title"]: t for t in tracks}}


def fresh(tmp):
    """A data dir with the library's catalog and no plays; (node, lib)."""
    lib = library()
    d = tmp / "data"
    d.mkdir()
    for f in ("catalog.db", "catalog.db-wal"):
        if (lib["data"] / f).exists():
            shutil.copyfile(lib["data"] / f, d / f)
    return d, lib


def ago(seconds):
    """RFC 3339 for seconds before now."""
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def play(track, event_id=None, started=f"{D1}T10:00:00Z", ms=900, **kw):
    p = {"track_id": track["id"], "started_at": started, "ms_played": ms,
         "event_id": event_id or uuid.uuid4().hex}
    p.update(kw)
    return p


def post(node, body, headers=JSON_CT, conn=None):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return node.request("POST", "/api/v1/plays", headers, raw, conn=conn)


def report(node, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    r = node.get("/api/v1/reports/plays" + ("?" + q if q else ""))
    check_eq(r.status, 200, f"report {q} status", r)
    return r


def rjson(node, **params):
    return report(node, **params).json()


def census(node):
    return rjson(node, group="none")["rows"]


def check_422(r, want):
    """want: list of (index, field) that must be in the error items."""
    check_eq(r.status, 422, "status", r)
    e = r.json()["error"]
    check_eq(e["status"], 422, "error.status", r)
    got = {(i["index"], i["field"]) for i in e["items"]}
    for w in want:
        check(w in got, f"error items lack {w}: {e['items']}", r)
    return e


@test("a single play and an array are stored and acknowledged with counts")
def _(tmp):
    d, lib = fresh(tmp)
    t = lib["tracks"]
    node = Node(d, tmp / "logs")
    r = post(node, play(t["Song Two"], "e-single", location="Shop 1", zone="Bar", device="pi-1",
                        offline=True))
    check_eq(r.status, 201, "single play status", r)
    check_eq(r.json(), {"accepted": 1, "duplicates": 0}, "single play answer", r)
    batch = [play(t["Song, One"], f"e-{i}", ms=1000 * i) for i in range(1, 6)]
    r = post(node, batch)
    check_eq(r.status, 201, "array status", r)
    check_eq(r.json(), {"accepted": 5, "duplicates": 0}, "array answer", r)
    rows = census(node)
    check_eq(len(rows), 6, "plays stored", rows)
    one = [x for x in rows if client_event_id(x["event_id"]) == "e-single"][0]
    check(one["event_id"].startswith("k"), "the stored event id names its poster", one)
    check_eq((one["title"], one["location"], one["zone"], one["device"], one["offline"],
              one["ms_played"], one["started_at"]),
             ("Song Two", "Shop 1", "Bar", "pi-1", True, 900, f"{D1}T10:00:00.000Z"),
             "stored play", one)
    node.stop()


@test("every validation rule gives 422 with per-item errors, and nothing is stored")
def _(tmp):
    d, lib = fresh(tmp)
    t = lib["tracks"]["Song Two"]
    node = Node(d, tmp / "logs")
    good = play(t, "ok-1")
    cases = [
        ({"track_id": "zz"}, "track_id"),
        ({"track_id": "00000000000000ff"}, "track_id"),  # well-formed, not in the catalog
        ({"track_id": 5}, "track_id"),
        ({"started_at": f"{D1}T10:00:00"}, "started_at"),
        ({"started_at": "1999-12-31T23:59:59Z"}, "started_at"),
        ({"started_at": "2999-01-01T00:00:00Z"}, "started_at"),
        ({"started_at": ago(31 * 86400)}, "started_at"),  # older than 30 days
        ({"started_at": ago(-3600)}, "started_at"),  # an hour from now
        ({"ms_played": 8000}, "ms_played"),  # the track lasts 1 s
        ({"started_at": "2024-02-30T10:00:00Z"}, "started_at"),
        ({"ms_played": -1}, "ms_played"),
        ({"ms_played": 86400001}, "ms_played"),
        ({"ms_played": 1.5}, "ms_played"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"location": "x" * 257}, "location"),
        ({"zone": 3}, "zone"),
        ({"device": ["a"]}, "device"),
        ({"offline": "no"}, "offline"),
        ({"extra": 1}, "extra"),
    ]
    for change, field in cases:
        bad = dict(play(t), **change)
        r = post(node, [good, bad])
        e = check_422(r, [(1, field)])
        check(all(i["index"] == 1 for i in e["items"]), f"errors only on item 1: {e}", r)
    # Missing required fields, all listed for one item.
    r = post(node, [good, {"location": "x"}])
    check_422(r, [(1, "track_id"), (1, "started_at"), (1, "ms_played"), (1, "event_id")])
    r = post(node, [good, 7])
    check_422(r, [(1, None)])
    # Shape of the body.
    r = post(node, [])
    check_eq(r.status, 422, "empty array", r)
    r = post(node, [play(t) for _ in range(1001)])
    check_eq(r.status, 422, "1001 plays", r)
    r = post(node, "42")
    check_eq(r.status, 422, "a number", r)
    r = post(node, "[{")
    check_eq(r.status, 400, "not JSON", r)
    check_eq(r.json()["error"]["status"], 400, "400 body", r)
    r = post(node, json.dumps(good), headers={"Content-Type": "text/plain"})
    check_eq(r.status, 415, "text/plain", r)
    r = post(node, json.dumps(good), headers={})
    check_eq(r.status, 415, "no Content-Type", r)
    # Over the server's 1 MiB cap: refused from the head, before the body.
    rc = RawConn(node.port)
    rc.send(b"POST /api/v1/plays HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n[" % ((1 << 20) + 2))
    r = rc.read_response()
    rc.close()
    check_eq(r.status, 413, "body over 1 MiB", r)
    node2 = node
    r = node2.get("/api/v1/plays")
    check_eq(r.status, 405, "GET /plays", r)
    check_eq(r.header("allow"), "POST", "Allow", r)
    check_eq(census(node2), [], "plays stored after rejected batches")
    # The good play alone goes in: the rejections were not about it.
    r = post(node, [good])
    check_eq(r.status, 201, "good play", r)
    node.stop()


@test("a retried batch counts once; a repeated event_id in one batch counts once")
def _(tmp):
    d, lib = fresh(tmp)
    t = lib["tracks"]
    node = Node(d, tmp / "logs")
    batch = [play(t["Song Two"], f"r-{i}", ms=1000) for i in range(10)]
    r = post(node, batch)
    check_eq((r.status, r.json()), (201, {"accepted": 10, "duplicates": 0}), "first", r)
    before = rjson(node, group="track")
    r = post(node, batch)
    check_eq((r.status, r.json()), (200, {"accepted": 0, "duplicates": 10}), "retry", r)
    check_eq(rjson(node, group="track"), before, "report after the retry")
    r = post(node, batch[:3] + [play(t["Song Two"], "r-new"), play(t["Song Two"], "r-new")])
    check_eq((r.status, r.json()), (201, {"accepted": 1, "duplicates": 4}), "mixed", r)
    rows = rjson(node, group="track")["rows"]
    check_eq([(x["name"], x["plays"], x["ms_played"]) for x in rows],
             [("Song Two", 11, 10 * 1000 + 900)], "report rows")
    node.stop()


@test("concurrent posters: every batch acknowledged and stored (group commit)")
def _(tmp):
    d, lib = fresh(tmp)
    t = list(lib["tracks"].values())
    node = Node(d, tmp / "logs")
    results, errors = [], []

    def poster(k):
        conn = node.conn()
        try:
            for b in range(8):
                batch = [play(t[(k + i) % 3], f"c-{k}-{b}-{i}", ms=10) for i in range(50)]
                r = post(node, batch, conn=conn)
                results.append((r.status, r.json()))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=poster, args=(k,)) for k in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    check_eq(errors, [], "poster errors")
    check_eq(len(results), 128, "answers")
    check(all(s == 201 and j == {"accepted": 50, "duplicates": 0} for s, j in results),
          f"answers: {[x for x in results if x[0] != 201][:3]}")
    rows = rjson(node, group="track")["rows"]
    check_eq(sum(x["plays"] for x in rows), 6400, "plays in the report")
    check_eq(sum(x["ms_played"] for x in rows), 64000, "time in the report")
    node.stop()


def seed_report_plays(node, lib):
    """Plays at known times for the report tests."""
    t = lib["tracks"]
    plays = [
        play(t["Song, One"], "p1", f"{D1}T00:00:00Z", 1000, location="Shop 1"),
        play(t["Song, One"], "p2", f"{D1}T23:59:59.999Z", 2000, location="Shop 2"),
        play(t["Song Two"], "p3", f"{D2}T01:00:00+02:00", 3000, location="Shop 1",
             zone="Café, \"back\"\nroom"),
        play(t["Other \"Line\""], "p4", f"{D2}T12:00:00Z", 4000),
        play(t["Other \"Line\""], "p5", f"{D3}T00:00:00Z", 5000, location="Shop 1"),
    ]
    r = post(node, plays)
    check_eq(r.status, 201, "seed", r)


@test("reports: every group, from inclusive and to exclusive, bad parameters 400")
def _(tmp):
    d, lib = fresh(tmp)
    t = lib["tracks"]
    node = Node(d, tmp / "logs")
    seed_report_plays(node, lib)
    a_id, x_id = t["Song, One"]["artist_id"], t["Song, One"]["album_id"]
    b_id, y_id = t["Other \"Line\""]["artist_id"], t["Other \"Line\""]["album_id"]

    def rows(**p):
        return [(r["id"], r["name"], r["plays"], r["ms_played"]) for r in rjson(node, **p)["rows"]]

    # p3 is D1T23:00:00Z; [D1, D2) holds p1, p2, p3.
    rng = {"from": f"{D1}T00:00:00Z", "to": f"{D2}T00:00:00Z"}
    check_eq(rows(group="track", **rng),
             [(t["Song, One"]["id"], "Song, One", 2, 3000), (t["Song Two"]["id"], "Song Two", 1,
                                                              3000)], "track")
    check_eq(rows(group="artist", **rng), [(a_id, "Ärtist A", 3, 6000)], "artist")
    check_eq(rows(group="album", **rng), [(x_id, "Album X", 3, 6000)], "album")
    check_eq(rows(group="location", **rng),
             [("Shop 1", "Shop 1", 2, 4000), ("Shop 2", "Shop 2", 1, 2000)], "location")
    check_eq(rows(group="day", **rng), [(f"{D1}", f"{D1}", 3, 6000)], "day")
    # By UTC hour: p1 at 00, p3 (01:00+02:00) at 23 the same day, p2 at 23:59.
    check_eq(rows(group="hour", **rng), [(f"{D1}T00", f"{D1}T00", 1, 1000),
                                         (f"{D1}T23", f"{D1}T23", 2, 5000)], "hour")
    # Everything: no bounds.
    check_eq(rows(group="day"), [(f"{D1}", f"{D1}", 3, 6000),
                                 (f"{D2}", f"{D2}", 1, 4000),
                                 (f"{D3}", f"{D3}", 1, 5000)], "days")
    check_eq(rows(group="artist"), [(a_id, "Ärtist A", 3, 6000), (b_id, "Band B", 2, 9000)],
             "artists")
    check_eq(rows(group="album"), [(x_id, "Album X", 3, 6000), (y_id, "Album Y", 2, 9000)],
             "albums")
    check_eq(rows(group="location"), [("Shop 1", "Shop 1", 3, 9000), (None, None, 1, 4000),
                                      ("Shop 2", "Shop 2", 1, 2000)], "locations")
    # from is inclusive, to exclusive, at millisecond precision.
    check_eq(rows(group="day", **{"from": f"{D3}T00:00:00Z"}),
             [(f"{D3}", f"{D3}", 1, 5000)], "from inclusive")
    check_eq(rows(group="day", to=f"{D3}T00:00:00Z")[-1][0], f"{D2}", "to exclusive")
    check_eq(rows(group="track", **{"from": f"{D1}T23:59:59.999Z",
                                     "to": f"{D2}T00:00:00.000Z"}),
             [(t["Song, One"]["id"], "Song, One", 1, 2000)], "a 1 ms window")
    # Offsets in the query: %2B, and a bare + (a space once decoded).
    j = rjson(node, group="day", **{"from": f"{D3}T02:00:00%2B02:00"})
    check_eq((j["from"], len(j["rows"])), (f"{D3}T00:00:00.000Z", 1), "from with %2B")
    j = rjson(node, group="day", **{"from": f"{D3}T02:00:00+02:00"})
    check_eq(j["from"], f"{D3}T00:00:00.000Z", "from with a bare +")
    j = rjson(node)
    check_eq((j["from"], j["to"], j["group"]), (None, None, "track"), "defaults")
    for bad in ("group=genre", "format=xml", "from=yesterday", f"to={D1}",
                f"from={D1}T00:00:00%00Z"):
        r = node.get("/api/v1/reports/plays?" + bad)
        check_eq(r.status, 400, f"bad parameter {bad}", r)
    r = node.request("POST", "/api/v1/reports/plays", JSON_CT, "{}")
    check_eq(r.status, 405, "POST to the report", r)
    node.stop()


@test("census CSV: header, columns, RFC 4180 quoting, UTC timestamps; grouped CSV")
def _(tmp):
    d, lib = fresh(tmp)
    t = lib["tracks"]
    node = Node(d, tmp / "logs")
    seed_report_plays(node, lib)
    r = report(node, group="none", format="csv")
    check(r.header("content-type", "").startswith("text/csv"), "CSV content type", r)
    text = r.body.decode("utf-8")
    check(text.endswith("\r\n"), "CRLF line ends", r)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    check_eq(rows[0], ["artist", "title", "isrc", "album", "label", "duration_ms", "ms_played",
                       "location", "zone", "started_at", "track_id", "event_id", "device",
                       "offline"], "header")
    check_eq(len(rows), 6, "one line per play")
    by_event = {client_event_id(r[11]): r for r in rows[1:]}
    p3 = by_event["p3"]
    check_eq(p3[:5] + p3[6:13],
             ["Ärtist A", "Song Two", "USAAA2400002", "Album X", "Label \"Q\"", "3000",
              "Shop 1", "Café, \"back\"\nroom", f"{D1}T23:00:00.000Z",
              t["Song Two"]["id"], node.key_id + "/p3", ""], "p3 columns")
    check_eq(p3[5], str(t["Song Two"]["duration_ms"]), "track duration")
    check_eq(by_event["p4"][1], "Other \"Line\"", "a title with quotes")
    check_eq([client_event_id(r[11]) for r in rows[1:]], ["p1", "p3", "p2", "p4", "p5"],
             "ordered by time")
    r = report(node, group="track", format="csv")
    rows = list(csv.reader(io.StringIO(r.body.decode("utf-8"), newline="")))
    check_eq(rows[0], ["id", "name", "plays", "ms_played"], "grouped header")
    check_eq(rows[1], [t["Other \"Line\""]["id"], "Other \"Line\"", "2", "9000"], "first row")
    node.stop()


@test("chorus report prints exactly what the HTTP report answers")
def _(tmp):
    d, lib = fresh(tmp)
    node = Node(d, tmp / "logs")
    seed_report_plays(node, lib)
    combos = [{}, {"group": "artist"}, {"group": "location", "format": "csv"},
              {"group": "day", "from": f"{D1}T12:00:00Z", "to": f"{D3}T00:00:00Z"},
              {"group": "none", "format": "csv"}, {"group": "none", "format": "json"}]
    for p in combos:
        http = report(node, **p).body.decode("utf-8")
        args = ["report", "--data", d]
        for k, v in p.items():
            args += [f"--{k}", v]
        r = run_chorus(args)
        check_eq(r.rc, 0, f"chorus report {p} exit status", r)
        check_eq(r.out, http, f"chorus report {p} vs HTTP")
    r = run_chorus(["report", "--data", d, "--group", "genre"])
    check_eq(r.rc, 2, "bad group exit status", r)
    check("group must be" in r.err, "bad group message", r)
    node.stop()
    # With the node stopped the file is still readable.
    r = run_chorus(["report", "--data", d, "--group", "day"])
    check_eq((r.rc, len(json.loads(r.out)["rows"])), (0, 3), "report with the node stopped", r)


@test("kill -9 while posting: after restart every acknowledged play is there exactly once")
def _(tmp):
    d, lib = fresh(tmp)
    t = list(lib["tracks"].values())
    acked, sent, odd = {}, {}, []
    for rnd in range(2):
        node = Node(d, tmp / "logs", tag=f"serve{rnd}")
        stop = threading.Event()
        lock = threading.Lock()

        def poster(k, node=node, stop=stop, rnd=rnd):
            n = 0
            while not stop.is_set():
                batch = [play(t[i % 3], f"k{rnd}-{k}-{n}-{i}", ms=i) for i in range(40)]
                with lock:
                    sent[(rnd, k, n)] = batch
                n += 1
                try:
                    r = post(node, batch)
                except Exception:  # noqa: BLE001 - the node is killed under us
                    return
                if 200 <= r.status < 300:
                    with lock:
                        acked[(rnd, k, n - 1)] = batch
                elif r.status != 503:
                    odd.append(str(r))

        threads = [threading.Thread(target=poster, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        time.sleep(1.5)
        node.kill9()
        stop.set()
        for th in threads:
            th.join()
    check_eq(odd[:3], [], "answers other than 2xx or 503")
    check(len(acked) > 4, f"only {len(acked)} batches were acknowledged")
    node = Node(d, tmp / "logs", tag="after")
    ids = [client_event_id(r["event_id"]) for r in census(node)]
    check_eq(len(ids), len(set(ids)), "no play twice")
    have = set(ids)
    missing = [p["event_id"] for b in acked.values() for p in b if p["event_id"] not in have]
    check_eq(missing[:5], [], f"acknowledged plays missing ({len(missing)})")
    # Every batch sent again (as a client retrying after the crash would):
    # acknowledged ones are all duplicates, and still nothing counts twice.
    for key, batch in sent.items():
        r = post(node, batch)
        check(r.status in (200, 201), f"retry {key}", r)
        if key in acked:
            check_eq(r.json(), {"accepted": 0, "duplicates": 40}, f"retry of acked {key}", r)
    ids = [client_event_id(r["event_id"]) for r in census(node)]
    check_eq(len(ids), sum(len(b) for b in sent.values()), "every sent play once after retries")
    check_eq(len(ids), len(set(ids)), "no play twice after retries")
    node.stop()


if __name__ == "__main__":
    main()
