#!/usr/bin/python3
"""The console's library panel, GET /api/v1/library: the catalog's counts,
duration and origin bytes against the catalog and the origin directory;
every `chorus ingest` run recorded (a broken file's path and reason, an
unchanged re-run, newest first); a run killed shows unfinished; on a
PostgreSQL cluster node the runs arrive through the read model and the
panel answers with PostgreSQL stopped; editors and admins only.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_library.py [NAME...]
"""

import datetime
import os
import signal
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    Catalog, Node, bearer, check, check_eq, make_audio, make_key, make_wav, origin_files,
    run_chorus, start_chorus, test, wait_for, main)

TRACKS = [
    ("a.mp3", {"title": "Alpha", "artist": "Arc", "album": "First"}, {"cover": True}),
    ("b.flac", {"title": "Beta", "artist": "Arc", "album": "First"}, {}),
    ("c.ogg", {"title": "Gamma", "artist": "Bow", "album": "Second"}, {}),
]


def make_library(root):
    for name, tags, opts in TRACKS:
        make_audio(root / name, None, 1.5, tags, **opts)
    return root


def garbage_mp3(path):
    """A file named .mp3 that holds no audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(20000))
    return path


def ingest(data, paths, db=None, want_rc=0):
    args = ["ingest", "--no-progress", "--data", data] + (["--db", db] if db else [])
    r = run_chorus(args + [str(p) for p in paths])
    check_eq(r.rc, want_rc, "ingest's exit status", r)
    return r


def rfc3339_ms(s):
    check(s.endswith("Z"), f"a UTC time: {s}")
    return int(datetime.datetime.fromisoformat(s[:-1] + "+00:00").timestamp() * 1000 + 0.5)


def check_figures(lib, data):
    """The counts and duration are the catalog's; origin_bytes is every
    chunk file of the origin, byte for byte (no garbage left after a
    clean run; covers live in the catalog, not the origin)."""
    with Catalog(data) as cat:
        want = {"artists": cat.value("SELECT count(*) FROM artists"),
                "albums": cat.value("SELECT count(*) FROM albums"),
                "tracks": cat.value("SELECT count(*) FROM tracks"),
                "duration_ms": cat.value("SELECT sum(duration_ms) FROM tracks")}
    check_eq({k: lib[k] for k in want}, want, "figures against the catalog")
    return want


def check_runs(runs, want):
    """runs (the answer's, newest first) against want: [(added, updated,
    unchanged, failed, [error paths])], oldest first."""
    got = [(r["added"], r["updated"], r["unchanged"], r["failed"],
            [e["path"] for e in r["errors"]]) for r in reversed(runs)]
    check_eq(got, want, "the ingest runs, oldest first")
    starts = [rfc3339_ms(r["started"]) for r in runs]
    check_eq(starts, sorted(starts, reverse=True), "runs newest first")
    check_eq(len({r["id"] for r in runs}), len(runs), "distinct run ids")
    for r in runs:
        check(len(r["id"]) == 16 and int(r["id"], 16) >= 0, f"a 16-hex-digit id: {r['id']}")
        check_eq(r["state"], "finished", "a finished run's state", r)
        check(rfc3339_ms(r["finished"]) >= rfc3339_ms(r["started"]), "finished after started", r)
        check_eq(r["host"], socket.gethostname(), "the run's host")
        for e in r["errors"]:
            check(e["message"], "an error's message", r)


@test("library: counts, duration and origin bytes match the catalog; runs newest first with a broken file's path")
def _(tmp):
    src = make_library(tmp / "src")
    data = tmp / "data"
    ingest(data, [src])
    bad = garbage_mp3(tmp / "src" / "broken.mp3")
    r = ingest(data, [src], want_rc=1)
    check(str(bad) in r.err, "the broken file reported on stderr", r)
    bad.unlink()
    ingest(data, [src])
    node = Node(data, tmp / "logs")
    lib = node.get_json("/api/v1/library")
    check_figures(lib, data)
    check_eq((lib["artists"], lib["albums"], lib["tracks"]), (2, 2, 3), "artists, albums, tracks")
    check(4000 <= lib["duration_ms"] <= 5000, "three tracks of 1.5 s", lib["duration_ms"])
    on_disk = sum(size for size, _ in origin_files(data / "origin").values())
    check_eq(lib["origin_bytes"], on_disk, "origin_bytes against the origin's chunk files")
    check_runs(lib["ingests"], [(3, 0, 0, 0, []), (0, 0, 3, 1, [str(bad)]),
                                (0, 0, 3, 0, [])])
    broken = lib["ingests"][1]["errors"][0]
    check("not a recognised audio format" in broken["message"], "the reason", broken)
    # The last 20 runs only.
    for _ in range(20):
        ingest(data, [src / "a.mp3"])
    runs = node.get_json("/api/v1/library")["ingests"]
    check_eq(len(runs), 20, "runs shown")
    check(all(r["unchanged"] == 1 for r in runs), "the 20 newest are the re-runs", runs)
    # A track more: the figures follow the catalog (the reader keeps
    # them only while nothing was committed).
    make_audio(src / "d.m4a", None, 1.0, {"title": "Delta", "artist": "Cue", "album": "Third"})
    ingest(data, [src])
    lib = node.get_json("/api/v1/library")
    check_eq((lib["artists"], lib["albums"], lib["tracks"]), (3, 3, 4), "after a track more")
    check_figures(lib, data)
    on_disk = sum(size for size, _ in origin_files(data / "origin").values())
    check_eq(lib["origin_bytes"], on_disk, "origin_bytes after a track more")
    node.stop()


@test("library: editors and admins only (listener and store 403, anonymous 401)")
def _(tmp):
    data = tmp / "data"
    ingest(data, [make_library(tmp / "src")])
    node = Node(data, tmp / "logs")
    for role, want in (("listener", 403), ("store", 403), ("editor", 200), ("admin", 200)):
        key = make_key(data, role, location="Shop" if role == "store" else None)
        r = node.request("GET", "/api/v1/library", bearer(key), auth=False)
        check_eq(r.status, want, f"GET /api/v1/library as {role}", r)
        if want == 403:
            check("editor" in r.json()["error"]["message"], "the refusal says who may", r)
    r = node.request("GET", "/api/v1/library", auth=False)
    check_eq(r.status, 401, "anonymous", r)
    check_eq(r.header("cache-control"), "no-store", "not cached")
    node.stop()


def run_rows(data):
    """(id, finished_at) of every run, read while an ingest may write."""
    db = sqlite3.connect(f"file:{data / 'catalog.db'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT id, finished_at FROM ingests").fetchall()
    except sqlite3.OperationalError:
        return []  # not made yet
    finally:
        db.close()


@test("library: an ingest killed mid-run shows running while it beats, then unfinished; the next run is recorded")
def _(tmp):
    data = tmp / "data"
    src = make_library(tmp / "src")
    ingest(data, [src])
    big = tmp / "big"
    for i in range(4):
        make_wav(big / f"w{i}.wav", seed=i + 1, file_size=16 << 20)
    bg = start_chorus(["ingest", "--no-progress", "--jobs", "1", "--data", data, big],
                      tmp / "logs", tag="killed")
    wait_for("the killed run's row", lambda: len(run_rows(data)) == 2 or not bg.running(), 30,
             step=0.005)
    os.kill(bg.pid, signal.SIGKILL)
    bg.wait()
    rows = run_rows(data)
    check_eq(len(rows), 2, "runs recorded (the killed one too)")
    check(any(f is None for _, f in rows), "the killed run never finished", rows)
    node = Node(data, tmp / "logs")
    runs = node.get_json("/api/v1/library")["ingests"]
    check_eq([(r["state"], r["finished"] is None) for r in runs],
             [("running", True), ("finished", False)], "a run heard from seconds ago")
    # A minute without a beat: what a killed run's row looks like later.
    db = sqlite3.connect(data / "catalog.db")
    db.execute("UPDATE ingests SET heartbeat_at = heartbeat_at - 61000"
               " WHERE finished_at IS NULL")
    db.commit()
    db.close()
    runs = node.get_json("/api/v1/library")["ingests"]
    check_eq([r["state"] for r in runs], ["unfinished", "finished"], "states after a minute")
    check_eq(runs[0]["finished"], None, "an unfinished run's finished")
    ingest(data, [big])
    runs = node.get_json("/api/v1/library")["ingests"]
    check_eq([r["state"] for r in runs], ["finished", "unfinished", "finished"],
             "the next run, the killed one, the first")
    check_eq(runs[0]["added"] + runs[0]["unchanged"], 4, "the next run's files", runs[0])
    node.stop()


def model_runs(node):
    with sqlite3.connect(f"file:{node.data / 'catalog.db'}?mode=ro", uri=True) as c:
        return c.execute("SELECT count(*) FROM ingests").fetchone()[0]


@test("library on a PostgreSQL cluster node: runs arrive through the read model, and it answers with PostgreSQL stopped")
def _(tmp):
    src = make_library(tmp / "src")
    origin = f"dir:{tmp / 'origin'}"
    with pg.server() as db:
        node = Node(tmp / "n1", tmp / "logs", args=["--db", db.conninfo, "--origin", origin])
        host = ["--origin", origin]
        r = run_chorus(["ingest", "--no-progress", "--data", tmp / "i", "--db", db.conninfo]
                       + host + [str(src)])
        check_eq(r.rc, 0, "first ingest", r)
        bad = garbage_mp3(tmp / "src" / "broken.mp3")
        r = run_chorus(["ingest", "--no-progress", "--data", tmp / "i", "--db", db.conninfo]
                       + host + [str(src)])
        check_eq(r.rc, 1, "ingest with a broken file", r)
        bad.unlink()
        t0 = time.monotonic()
        wait_for("both runs in the read model", lambda: model_runs(node) == 2, 5, step=0.01)
        print(f"# runs in the read model {time.monotonic() - t0:.3f} s after the ingest")
        check_eq(db.value("SELECT count(*) FROM ingests"), "2", "runs in PostgreSQL")
        check_eq(db.value("SELECT count(*) FROM ingest_errors"), "1", "errors in PostgreSQL")
        lib = node.get_json("/api/v1/library")
        check_figures(lib, node.data)
        check_runs(lib["ingests"], [(3, 0, 0, 0, []), (0, 0, 3, 1, [str(bad)])])
        on_disk = sum(size for size, _ in origin_files(tmp / "origin").values())
        check_eq(lib["origin_bytes"], on_disk, "origin_bytes against the origin's chunk files")
        # A node started now copies the runs with its bootstrap.
        n2 = Node(tmp / "n2", tmp / "logs", args=["--db", db.conninfo, "--origin", origin],
                  tag="n2")
        check_eq(n2.get_json("/api/v1/library"), lib, "the library on a bootstrapped node")
        n2.stop()
        # A table a newer binary added arrives whole on the first pass: a
        # model that lacks the rows (as one upgraded after they were
        # written) gets them back after a restart.
        node.stop()
        model = sqlite3.connect(tmp / "n1" / "catalog.db")
        model.execute("DELETE FROM ingest_errors")
        model.execute("DELETE FROM ingests")
        model.commit()
        model.close()
        node = Node(tmp / "n1", tmp / "logs", args=["--db", db.conninfo, "--origin", origin])
        wait_for("the runs read again", lambda: model_runs(node) == 2, 5, step=0.01)
        db.stop("immediate")
        wait_for("the node seeing PostgreSQL gone",
                 lambda: not node.get_json("/api/v1/node")["replication"]["connected"], 15)
        down = node.get_json("/api/v1/library")
        check_eq(down, lib, "the library with PostgreSQL stopped")
        db.start()
        node.stop()


if __name__ == "__main__":
    main()
