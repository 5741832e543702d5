#!/usr/bin/python3
"""System tests for the cluster's source of truth: chorus with --db, against
real PostgreSQL servers (tests/system/pg.py) and a real Patroni + etcd
cluster (tests/system/patroni.py), nodes on loopback ports.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_cluster_db.py [NAME...]

CHORUS_TEST_OUTAGE_S sets how long PostgreSQL stays down in the outage test
(default 30, as the issue asks).
"""

import json
import os
import random
import sqlite3
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
import patroni  # noqa: E402
from chorus_test import (  # noqa: E402
    Node, audio_library, check, check_eq, client_event_id, ingest_ok, main, make_audio, run_chorus,
    sha256_file, test, wait_for)

JSON_CT = {"Content-Type": "application/json"}
OUTAGE_S = float(os.environ.get("CHORUS_TEST_OUTAGE_S", "30"))

# One of each format, two albums.
TRACKS = [
    ("a1.mp3", {"title": "Harbour Lights", "artist": "Ada Lune", "album": "Tides", "track": "1"}),
    ("a2.flac", {"title": "Salt Wind", "artist": "Ada Lune", "album": "Tides", "track": "2"}),
    ("b1.ogg", {"title": "Paper Moon", "artist": "Brass Fable", "album": "Lanterns",
                "track": "1"}),
    ("b2.opus", {"title": "Quiet Engines", "artist": "Brass Fable", "album": "Lanterns",
                 "track": "2"}),
    ("b3.m4a", {"title": "Copper Skies", "artist": "Brass Fable", "album": "Lanterns",
                "track": "3"}),
]


def library():
    """Source files made once: {'dir': path, 'files': {title: path}}."""
    lib = audio_library("cluster-lib", [(name, 2.5, tags, {"cover": name == "a1.mp3"})
                                        for name, tags in TRACKS])
    return {"dir": lib["dir"],
            "files": {tags["title"]: lib["files"][name] for name, tags in TRACKS}}


def ingest(db, origin, paths, data):
    return ingest_ok(data, *paths, db=db, origin=origin)


def cluster_node(tmp, name, db, origin, args=()):
    return Node(tmp / name, tmp / "logs", args=["--db", db, "--origin", origin] + list(args),
                tag=name)


def all_pages(node, what):
    out, offset = [], 0
    while True:
        j = node.get_json(f"/api/v1/{what}?limit=500&offset={offset}")
        out += j[what]
        if len(j[what]) < 500:
            return out
        offset += 500


def catalog_view(node):
    return {w: all_pages(node, w) for w in ("artists", "albums", "tracks")}


def check_streams(node, lib, tracks):
    for t in tracks:
        r = node.get(f"/api/v1/tracks/{t['id']}/stream")
        check_eq(r.status, 200, f"stream of {t['title']}", r)
        want = lib["files"][t["title"]].read_bytes()
        check(r.body == want, f"stream of {t['title']} differs from its file")
        r = node.get(f"/api/v1/tracks/{t['id']}/stream", {"Range": "bytes=1000-1999"})
        check_eq(r.status, 206, "range status", r)
        check(r.body == want[1000:2000], f"range of {t['title']} differs")


def play(track_id, event_id=None):
    # A minute ago, for 2 of the track's 2.5 s: plays must be recent and
    # no longer than the track.
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    return {"track_id": track_id, "started_at": started, "ms_played": 2000,
            "event_id": event_id or uuid.uuid4().hex, "location": "store-7"}


def post_plays(node, plays):
    return node.request("POST", "/api/v1/plays", JSON_CT, json.dumps(plays), timeout=30)


def wait_for_plays(query, acked, timeout):
    """The event ids in PostgreSQL, once they include every acknowledged one
    (or at the timeout: the caller's checks then say what is missing)."""
    deadline = time.monotonic() + timeout
    while True:
        got = query()
        if acked <= got or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


def shipped(node):
    ps = node.get_json("/api/v1/node")["plays_shipping"]
    return ps["queued"] == 0 and ps["connected"]


@test("two nodes follow PostgreSQL: identical catalogs, exact streams, a late track on both within 2 s")
def _(tmp):
    lib = library()
    origin = f"dir:{tmp / 'origin'}"
    with pg.server() as db:
        ingest(db.conninfo, origin, [lib["dir"]], tmp / "ingest-host")
        check_eq(db.value("SELECT count(*) FROM tracks"), "5", "tracks in PostgreSQL")
        n1 = cluster_node(tmp, "n1", db.conninfo, origin)
        n2 = cluster_node(tmp, "n2", db.conninfo, origin)
        v1, v2 = catalog_view(n1), catalog_view(n2)
        check_eq(len(v1["tracks"]), 5, "tracks on node 1")
        check(v1 == v2, "the two nodes' catalogs differ", json.dumps(v1)[:500],
              json.dumps(v2)[:500])
        check_streams(n1, lib, v1["tracks"])
        check_streams(n2, lib, v2["tracks"])
        rep = n1.get_json("/api/v1/node")["replication"]
        check(rep["last_seq"] > 0 and rep["lag_ms"] == 0 and rep["connected"],
              f"replication figures: {rep}")

        # A track ingested later, from another host's data directory.
        late = tmp / "late" / "c1.flac"
        make_audio(late, "flac", 2.0, {"title": "Northern Late", "artist": "Cold Harbour",
                                       "album": "After"})
        lib["files"]["Northern Late"] = late
        ingest(db.conninfo, origin, [late.parent], tmp / "other-host")
        t0 = time.monotonic()
        found = {}
        for n in (n1, n2):
            found[n], _ = wait_for("the late track on a node",
                                   lambda n=n: n.get_json("/api/v1/search?q=northern")["tracks"],
                                   2.0, step=0.01)
        print(f"# late track visible on both nodes {time.monotonic() - t0:.3f} s after "
              f"its ingest returned")
        for n in (n1, n2):
            check_streams(n, lib, found[n])
        check(catalog_view(n1) == catalog_view(n2), "catalogs differ after the late ingest")
        n1.stop()
        n2.stop()


@test("a data directory with a catalog of its own is refused as a cluster node")
def _(tmp):
    lib = library()
    ingest_ok(tmp / "solo", lib["dir"], what="standalone ingest")
    with pg.server() as db:
        r = run_chorus(["serve", "--data", tmp / "solo", "--listen", "127.0.0.1:0", "--db",
                        db.conninfo], timeout=30)
        check(r.rc != 0, "serve --db on a standalone catalog must fail", r)
        check("catalog of its own" in r.err, "the refusal must say why", r)
        check_eq(db.value("SELECT to_regclass('public.tracks') IS NULL"), "t",
                 "nothing written to PostgreSQL")


@test("nodes starting together on a new database create the schema once")
def _(tmp):
    import subprocess
    from chorus_test import CHORUS_BIN, chorus_env
    with pg.server() as db:
        procs = [subprocess.Popen([CHORUS_BIN, "report", "--db", db.conninfo, "--data",
                                   tmp / f"d{i}"], env=chorus_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for i in range(4)]
        for p in procs:
            out, err = p.communicate(timeout=60)
            check_eq(p.returncode, 0, f"report on a new database: {err.decode()}")
            check(json.loads(out)["rows"] == [], "an empty report")
        check_eq(db.value("SELECT version FROM chorus_schema"), "7", "schema version")
        check_eq(db.value("SELECT count(*) FROM chorus_schema"), "1", "one schema row")


@test(f"PostgreSQL down for {OUTAGE_S:.0f} s under load: reads and streams answer, plays are acknowledged and shipped once")
def _(tmp):
    lib = library()
    origin = f"dir:{tmp / 'origin'}"
    with pg.server() as db:
        ingest(db.conninfo, origin, [lib["dir"]], tmp / "ingest-host")
        node = cluster_node(tmp, "n1", db.conninfo, origin)
        tracks = node.get_json("/api/v1/tracks")["tracks"]
        acked, failures, counts = set(), [], {"reads": 0, "posts": 0}
        stop = threading.Event()
        lock = threading.Lock()

        def reader():
            rnd = random.Random(1)
            conn = node.conn()
            while not stop.is_set():
                t = rnd.choice(tracks)
                for path, want in ((f"/api/v1/tracks/{t['id']}", 200),
                                   ("/api/v1/search?q=" + t["title"].split()[0], 200),
                                   (f"/api/v1/tracks/{t['id']}/stream", 200)):
                    try:
                        r = node.get(path, conn=conn)
                        ok = r.status == want
                    except Exception as e:  # noqa: BLE001
                        ok, r = False, e
                        conn = node.conn()
                    with lock:
                        counts["reads"] += 1
                        if not ok:
                            failures.append(f"{path}: {r}")

        def poster():
            rnd = random.Random(2)
            conn = node.conn()
            while not stop.is_set():
                batch = [play(rnd.choice(tracks)["id"]) for _ in range(rnd.randint(1, 20))]
                try:
                    r = post_plays(node, batch)
                    ok = r.status in (200, 201)
                except Exception as e:  # noqa: BLE001
                    ok, r = False, e
                    conn = node.conn()
                with lock:
                    counts["posts"] += 1
                    if ok:
                        acked.update(p["event_id"] for p in batch)
                    else:
                        failures.append(f"plays: {r}")
                # A retry of an acknowledged batch: a duplicate, never a second play.
                if ok and rnd.random() < 0.2:
                    post_plays(node, batch)
                time.sleep(0.01)

        threads = [threading.Thread(target=f) for f in (reader, reader, poster)]
        for t in threads:
            t.start()
        try:
            time.sleep(2)
            db.stop(os.environ.get("CHORUS_TEST_PG_STOP", "immediate"))
            down_at = time.monotonic()
            wait_for("the node noticing PostgreSQL is gone",
                     lambda: not node.get_json("/api/v1/node")["plays_shipping"]["connected"]
                     or node.get_json("/api/v1/node")["plays_shipping"]["queued"] > 0, 10)
            while time.monotonic() - down_at < OUTAGE_S:
                time.sleep(0.5)
            with lock:
                during = len(acked)
            db.start()
            time.sleep(2)
        finally:
            stop.set()
            for t in threads:
                t.join()
        check(not failures, f"{len(failures)} failed requests during the outage: {failures[:5]}")
        print(f"# {counts['reads']} reads and {counts['posts']} plays posts, all answered; "
              f"{len(acked)} plays acknowledged ({during} by the end of the outage)")
        got = wait_for_plays(
            lambda: {client_event_id(r[0]) for r in db.query("SELECT event_id FROM plays")},
            acked, 30)
        check_eq(len(got - acked), 0, "plays in PostgreSQL that were never acknowledged")
        check_eq(len(acked - got), 0, "acknowledged plays missing from PostgreSQL")
        rows = db.query("SELECT count(*), count(DISTINCT event_id) FROM plays")
        check_eq(rows[0][0], rows[0][1], "plays stored twice")
        wait_for("the node's queue empty", lambda: shipped(node), 10, step=0.2)
        rep = node.get_json("/api/v1/reports/plays?group=location")["rows"]
        check_eq(rep and rep[0]["plays"], len(acked), "plays in the HTTP report", rep)
        node.stop()


def make_big_catalog(db, n):
    """n tracks (n/10 albums, n/100 artists) written straight into PostgreSQL,
    through the change triggers like any writer."""
    r = run_chorus(["report", "--db", db.conninfo, "--data", "/nonexistent"])  # the schema
    check_eq(r.rc, 0, "chorus report on a new database", r)
    db.query(f"""
        INSERT INTO artists (id, name, name_key)
          SELECT g, 'Artist ' || g, 'artist ' || g FROM generate_series(1, {n // 100}) g;
        INSERT INTO albums (id, title, title_key, artist_id, year)
          SELECT g, 'Album ' || g, 'album ' || g, 1 + g % {n // 100}, 1990 + g % 30
          FROM generate_series(1, {n // 10}) g;
        INSERT INTO tracks (id, title, title_key, artist_id, album_id, track_number,
            duration_ms, codec, mime_type, size, chunk_size, chunk_count, key, blob,
            content_hash, created_at, updated_at)
          SELECT g, 'Track ' || g || ' ' || substr(md5(g::text), 1, 8),
            'track ' || g || ' ' || substr(md5(g::text), 1, 8),
            1 + (1 + g % {n // 10}) % {n // 100}, 1 + g % {n // 10}, 1 + g % 12,
            180000 + g % 60000, 'mp3', 'audio/mpeg', 4000000, 1048576, 4,
            decode(md5(g::text) || md5('k' || g), 'hex'), md5('b' || g),
            md5(g::text) || md5('h' || g), 1700000000, 1700000000
          FROM generate_series(1, {n}) g;
        DELETE FROM tracks WHERE id % 1000 = 7;
    """, timeout=600)


@test("a node with an empty data directory bootstraps a 100,000-track catalog and answers correctly")
def _(tmp):
    n = 100_000
    with pg.server() as db:
        make_big_catalog(db, n)
        want = int(db.value("SELECT count(*) FROM tracks"))
        t0 = time.monotonic()
        node = cluster_node(tmp, "n1", db.conninfo, f"dir:{tmp / 'origin'}")
        elapsed = time.monotonic() - t0
        rep = node.get_json("/api/v1/node")["replication"]
        print(f"# bootstrap of {want} tracks: {elapsed:.1f} s to serving "
              f"({rep['bootstrap_ms'] / 1000:.1f} s in the bootstrap itself)")
        with sqlite3.connect(tmp / "n1" / "catalog.db") as c:
            check_eq(c.execute("SELECT count(*) FROM tracks").fetchone()[0], want,
                     "tracks in the read model")
        for tid in random.Random(3).sample(range(1, n + 1), 20):
            row = db.query(f"SELECT title, album_id, duration_ms FROM tracks WHERE id = {tid}")
            r = node.get(f"/api/v1/tracks/{tid:016x}")
            if not row:
                check_eq(r.status, 404, f"deleted track {tid}", r)
                continue
            check_eq(r.status, 200, f"track {tid}", r)
            j = r.json()
            check_eq(j["title"], row[0][0], f"title of track {tid}")
            check_eq(j["duration_ms"], int(row[0][2]), f"duration of track {tid}")
        title = db.value("SELECT title FROM tracks WHERE id = 4242")
        s = node.get_json("/api/v1/search?q=" + title.split()[-1])
        check(any(t["title"] == title for t in s["tracks"]), f"search finds {title}: {s}")
        # A change after the bootstrap flows in as usual.
        db.query("UPDATE tracks SET title = 'Renamed Sparrow' WHERE id = 4242")
        wait_for("the rename", lambda: node.get_json("/api/v1/search?q=sparrow")["tracks"], 2)
        node.stop()


@test("Patroni failover while plays are posted: none acknowledged is lost, the node reconnects by itself")
def _(tmp):
    missing = patroni.missing_binaries()
    if missing:
        fail(f"Patroni cluster binaries missing: {missing}")
    lib = library()
    origin = f"dir:{tmp / 'origin'}"
    cluster = patroni.PatroniCluster(tmp / "patroni")
    try:
        cluster.start()
        conninfo = cluster.conninfo()
        ingest(conninfo, origin, [lib["dir"]], tmp / "ingest-host")
        node = cluster_node(tmp, "n1", conninfo, origin)
        tracks = node.get_json("/api/v1/tracks")["tracks"]
        acked, failures = set(), []
        stop = threading.Event()

        def poster():
            rnd = random.Random(4)
            while not stop.is_set():
                batch = [play(rnd.choice(tracks)["id"]) for _ in range(rnd.randint(1, 10))]
                try:
                    r = post_plays(node, batch)
                    if r.status in (200, 201):
                        acked.update(p["event_id"] for p in batch)
                    else:
                        failures.append(str(r))
                except Exception as e:  # noqa: BLE001
                    failures.append(repr(e))
                time.sleep(0.02)

        t = threading.Thread(target=poster)
        t.start()
        try:
            wait_for("plays shipped before the failover",
                     lambda: node.get_json("/api/v1/node")["plays_shipping"]["shipped"] > 0, 20)
            old = cluster.kill_leader()
            t0 = time.monotonic()
            new = cluster.wait_leader(timeout=60, other_than=old)
            print(f"# {new} leads {time.monotonic() - t0:.1f} s after {old} was killed")
            time.sleep(3)
        finally:
            stop.set()
            t.join()
        check(not failures, f"plays refused during the failover: {failures[:5]}")
        got = wait_for_plays(
            lambda: {client_event_id(r[0])
                     for r in patroni_rows(conninfo, "SELECT event_id FROM plays")},
            acked, 60)
        check_eq(len(acked - got), 0, "acknowledged plays lost in the failover")
        check_eq(len(got - acked), 0, "plays stored that were never acknowledged")
        print(f"# {len(acked)} plays acknowledged, all in PostgreSQL after the failover")
        # The read model follows the new leader, without a restart.
        late = tmp / "late" / "f1.mp3"
        make_audio(late, "mp3", 1.5, {"title": "Failover Song", "artist": "After", "album": "A"})
        ingest(conninfo, origin, [late.parent], tmp / "ingest-host")
        wait_for("a track ingested after the failover",
                 lambda: node.get_json("/api/v1/search?q=failover")["tracks"], 15)
        check(node.get_json("/api/v1/node")["replication"]["connected"], "replica reconnected")
        node.stop()
    finally:
        cluster.stop()


def patroni_rows(conninfo, sql, timeout=30):
    """Rows from the leader. Just after a failover Patroni may name a leader
    whose server is still read-only for a moment: retried until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        r = patroni.psql(conninfo, sql, 60)
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    check_eq(r.returncode, 0, f"psql {sql}: {r.stderr}")
    return [line.split("|") for line in r.stdout.splitlines() if line]


if __name__ == "__main__":
    main()
