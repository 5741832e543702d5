#!/usr/bin/python3
"""The ingest identity rules on PostgreSQL, checked against SQLite.

Each scenario runs the same steps (changes to a library, then ingests)
into two fresh stores: a SQLite data directory (DATA/catalog.db) and a
PostgreSQL database (`--db`; one throwaway server for the whole file,
tests/system/pg.py, one database per scenario). The steps are interleaved,
each ingest run once per store on the very same files, so paths, sizes and
mtimes are equal. After each ingest the two must agree on:

  - artists, albums and covers, ids included (derived from names);
  - tracks, by (source path, tags, content hash, stream properties);
    track ids are random, so each track is named by where and when it
    first appeared, which also checks that an id stays the same across
    steps exactly when SQLite's does; blobs are named the same way;
  - the pending and garbage ledgers, and what went through them during
    the step: after the first ingest the test adds to each store a log
    table filled by triggers on pending and garbage (test_ledger_log),
    which sees a blob go to the garbage even though the end of the run
    sweeps it;
  - what ingest printed: the summary counts and the "same audio as"
    lines (CHORUS_DEBUG=1).

Every finished run must also leave its store clean: no pending or garbage
row, an origin holding exactly the chunks of the tracks (right sizes, no
temporary file, no blob directory of no track). Each scenario then checks
its own expectations.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_ingest_pg.py [NAME...]

CHORUS_TEST_SEED repeats the crash scenario's kill delay.
"""

import collections
import glob
import json
import os
import pathlib
import random
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    CHORUS_BIN, SANITIZER_MARKS, SEAL_TAG, Catalog, check, check_consistent, check_eq, chunk_key,
    fail, main, make_audio, make_wav, origin_files, parse_summary, retag, run_chorus,
    sha256_file, start_chorus, test, wait_for)

SERVER = None  # the pg.Server of this file (started under __main__)
RUN_LOCK_CLASS = 6514802  # src/sql/pg_driver.c: a run's session advisory lock
DEBUG_ENV = {"CHORUS_DEBUG": "1"}  # for the "same audio as" lines

TRACK_COLS = ("source_path", "title", "artist", "album", "album_artist", "content_hash",
              "track_number", "disc_number", "year", "genre", "isrc", "label", "duration_ms",
              "codec", "mime_type", "bitrate", "sample_rate", "channels", "size",
              "chunk_size", "chunk_count", "source_size", "source_mtime_ns")
TRACKS_SQL = ("SELECT t.id, t.blob, " + ", ".join(
    "t." + c for c in TRACK_COLS if c not in ("artist", "album", "album_artist")) +
    ", ar.name AS artist, al.title AS album, aa.name AS album_artist"
    " FROM tracks t JOIN artists ar ON ar.id = t.artist_id"
    " JOIN albums al ON al.id = t.album_id JOIN artists aa ON aa.id = al.artist_id")
DUP_LINE = re.compile(r"^\S+ debug: ingest: (.*): same audio as (.*)$")
# What else CHORUS_DEBUG shows: libav's own messages, PostgreSQL's notices,
# and the schema made on a first connection. A warning or an error fails.
ALLOWED_ERR = re.compile(r"^(\S+ debug: (ingest: .*: same audio as |postgres: |libav: )"
                         r"|\S+ info: postgres: schema upgraded from version 0 to \d+$"
                         r"|\[[\w,]+ @ 0x[0-9a-f]+\] )")

# The audit log of the ledgers: one row per insert, update (a pending row
# reused by another run) and delete on pending and garbage.
SQLITE_AUDIT = """
CREATE TABLE test_ledger_log (n INTEGER PRIMARY KEY, tbl TEXT, op TEXT, blob TEXT,
                              content_hash TEXT, chunk_count INTEGER, run TEXT);
CREATE TRIGGER test_log_pi AFTER INSERT ON pending BEGIN
  INSERT INTO test_ledger_log (tbl, op, blob, content_hash, chunk_count, run)
  VALUES ('pending', 'insert', new.blob, new.content_hash, new.chunk_count, new.run); END;
CREATE TRIGGER test_log_pu AFTER UPDATE ON pending BEGIN
  INSERT INTO test_ledger_log (tbl, op, blob, content_hash, chunk_count, run)
  VALUES ('pending', 'update', new.blob, new.content_hash, new.chunk_count, new.run); END;
CREATE TRIGGER test_log_pd AFTER DELETE ON pending BEGIN
  INSERT INTO test_ledger_log (tbl, op, blob, content_hash, chunk_count, run)
  VALUES ('pending', 'delete', old.blob, old.content_hash, old.chunk_count, old.run); END;
CREATE TRIGGER test_log_gi AFTER INSERT ON garbage BEGIN
  INSERT INTO test_ledger_log (tbl, op, blob, chunk_count)
  VALUES ('garbage', 'insert', new.blob, new.chunk_count); END;
CREATE TRIGGER test_log_gd AFTER DELETE ON garbage BEGIN
  INSERT INTO test_ledger_log (tbl, op, blob, chunk_count)
  VALUES ('garbage', 'delete', old.blob, old.chunk_count); END;
"""
PG_AUDIT = """
CREATE TABLE test_ledger_log (n bigserial PRIMARY KEY, tbl text, op text, blob text,
                              content_hash text, chunk_count integer, run text);
CREATE FUNCTION test_log_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
BEGIN
  INSERT INTO test_ledger_log (tbl, op, blob, content_hash, chunk_count, run)
  VALUES (TG_TABLE_NAME, lower(TG_OP), r->>'blob', r->>'content_hash',
          (r->>'chunk_count')::integer, r->>'run');
  RETURN NULL;
END $$;
CREATE TRIGGER test_log_pending AFTER INSERT OR UPDATE OR DELETE ON pending
  FOR EACH ROW EXECUTE FUNCTION test_log_ledger();
CREATE TRIGGER test_log_garbage AFTER INSERT OR DELETE ON garbage
  FOR EACH ROW EXECUTE FUNCTION test_log_ledger();
"""


def diag(msg):
    print(f"# {msg}", flush=True)


def real(p):
    return os.path.realpath(p)


# ---------------------------------------------------------------- the two stores

_DB_SEQ = [0]


class Store:
    """One catalog that ingest writes: kind "sqlite" (DATA/catalog.db) or
    "pg" (a database of its own on SERVER). Its origin is DATA/origin
    unless given. It remembers what it has seen, to name tracks and blobs
    the same way in both stores."""

    def __init__(self, kind, root, data=None, origin=None, dbname=None):
        self.kind = kind
        self.root = pathlib.Path(real(root))
        self.data = data or root / f"data-{kind}"
        self.origin = origin or self.data / "origin"
        self.explicit_origin = origin is not None
        self.dbname = None
        if kind == "pg":
            if dbname is None:
                _DB_SEQ[0] += 1
                dbname = f"scenario{_DB_SEQ[0]}"
                SERVER.psql("postgres", f"CREATE DATABASE {dbname}")
            self.dbname = dbname
        self.births = {}  # track id -> "step N: PATH", where and when it first appeared
        self.blob_names = {}  # blob -> the same, for the blob
        self.blob_hash = {}  # blob -> its content hash (tracks and the ledger log)
        self.audit = False
        self.log_read = 0  # ledger log rows already read
        self.ledger_history = []  # every ledger log row read so far

    def __str__(self):
        return "SQLite" if self.kind == "sqlite" else "PostgreSQL"

    @property
    def conninfo(self):
        return SERVER.conninfo.replace("dbname=chorus", f"dbname={self.dbname}")

    def args(self, jobs=None):
        a = ["ingest", "--no-progress", "--data", self.data]
        if self.kind == "pg":
            a += ["--db", self.conninfo]
        if self.explicit_origin:
            a += ["--origin", f"dir:{self.origin}"]
        if jobs:
            a += ["--jobs", str(jobs)]
        return a

    def ingest(self, paths, jobs=None, timeout=120):
        return run_chorus(self.args(jobs) + [str(p) for p in paths], env=DEBUG_ENV,
                          timeout=timeout)

    def start(self, paths, logdir, jobs=None, tag="ingest"):
        return start_chorus(self.args(jobs) + [str(p) for p in paths], logdir, env=DEBUG_ENV,
                            tag=f"{tag}-{self.kind}")

    def query(self, sql):
        """Rows as dicts: integers as int, text as str, blobs as "\\x" + hex."""
        if self.kind == "pg":
            out = SERVER.psql(self.dbname,
                              f"SELECT coalesce(json_agg(q), '[]'::json) FROM ({sql}) q")
            return json.loads(out)
        with Catalog(self.data) as cat:
            rows = cat.rows(sql)
        for r in rows:
            for k, v in r.items():
                if isinstance(v, bytes):
                    r[k] = "\\x" + v.hex()
        return rows

    def execute(self, script):
        if self.kind == "pg":
            SERVER.psql(self.dbname, script)
            return
        import sqlite3
        db = sqlite3.connect(self.data / "catalog.db")
        try:
            db.executescript(script)
            db.commit()
        finally:
            db.close()

    def install_audit(self):
        self.execute(PG_AUDIT if self.kind == "pg" else SQLITE_AUDIT)
        self.audit = True

    def new_ledger_rows(self):
        if not self.audit:
            return []
        rows = self.query("SELECT n, tbl, op, blob, content_hash, chunk_count, run"
                          f" FROM test_ledger_log WHERE n > {self.log_read} ORDER BY n")
        if rows:
            self.log_read = rows[-1]["n"]
        self.ledger_history += rows
        return rows

    def run_lock_holders(self):
        rows = self.query(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'"
            f" AND classid = {RUN_LOCK_CLASS}"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
        return rows[0]["n"]

    def rel(self, path):
        return os.path.relpath(path, self.root) if path else None

    def observe(self, step, res=None, names=True):
        """The store's state after a step, in terms both stores share."""
        tracks = self.query(TRACKS_SQL)
        pending = self.query("SELECT blob, content_hash, chunk_count, run FROM pending")
        garbage = self.query("SELECT blob, chunk_count FROM garbage")
        ledger = self.new_ledger_rows()
        for t in tracks:
            where = f"step {step}: {self.rel(t['source_path'])}"
            self.births.setdefault(t["id"], where)
            self.blob_names.setdefault(t["blob"], where)
            self.blob_hash[t["blob"]] = t["content_hash"]
        for r in ledger + pending:
            if r.get("content_hash"):
                self.blob_hash[r["blob"]] = r["content_hash"]

        def track_row(t):
            row = tuple(self.rel(t[c]) if c == "source_path" else t[c] for c in TRACK_COLS)
            if names:
                row = (self.births[t["id"]], self.blob_names[t["blob"]]) + row
            return row

        v = {
            "artists": sorted((r["id"], r["name"], r["name_key"]) for r in
                              self.query("SELECT id, name, name_key FROM artists")),
            "albums": sorted((r["id"], r["title"], r["title_key"], r["artist_id"], r["year"])
                             for r in self.query("SELECT id, title, title_key, artist_id, year"
                                                 " FROM albums")),
            "covers": sorted((r["album_id"], r["mime"], r["sha256"], r["data"]) for r in
                             self.query("SELECT album_id, mime, sha256, data FROM covers")),
            "tracks": sorted(track_row(t) for t in tracks),
            "pending": sorted((r["content_hash"], r["chunk_count"]) for r in pending),
            "garbage": sorted((self.blob_hash.get(r["blob"], "?"), r["chunk_count"])
                              for r in garbage),
            "ledger": sorted((r["tbl"], r["op"], self.blob_hash.get(r["blob"], "?"),
                              r["chunk_count"]) for r in ledger),
        }
        if res is not None:
            s = parse_summary(res.out)
            v["summary"] = s and {k: s[k] for k in ("added", "updated", "unchanged", "failed",
                                                   "files")}
            v["duplicates"] = duplicates(self, res)
        v["_raw"] = {"tracks": tracks, "pending": pending, "garbage": garbage,
                     "ledger": ledger}
        return v


def duplicates(store, res):
    """The "same audio as" lines: [(path, the other path)], relative."""
    return sorted(tuple(store.rel(p) for p in m.groups()) for m in
                  (DUP_LINE.match(ln) for ln in res.err.splitlines()) if m)


def pair(tmp):
    return [Store("sqlite", tmp), Store("pg", tmp)]


# ---------------------------------------------------------------- checks

def differences(a, b, keys=None):
    """What differs between two observations, as lines."""
    out = []
    for k in keys or [k for k in a if not k.startswith("_")]:
        x, y = a.get(k), b.get(k)
        if x == y:
            continue
        if isinstance(x, list) and isinstance(y, list):
            cx, cy = collections.Counter(x), collections.Counter(y)
            only_x = list((cx - cy).elements())
            only_y = list((cy - cx).elements())
            out.append(f"{k}: {len(x)} rows in SQLite, {len(y)} in PostgreSQL")
            out += [f"  only in SQLite:     {short(r)}" for r in only_x[:6]]
            out += [f"  only in PostgreSQL: {short(r)}" for r in only_y[:6]]
        else:
            out.append(f"{k}: SQLite {short(x)}, PostgreSQL {short(y)}")
    return out


def short(v, n=400):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


def check_same(views, what, keys=None):
    d = differences(views[0], views[1], keys)
    if d:
        fail(f"{what}: SQLite and PostgreSQL disagree:\n  " + "\n  ".join(d))


def origin_problems(store, tracks, final=True, pending=(), garbage=()):
    """The origin against the tracks: every chunk present with its sealed
    size; no two tracks sharing a content hash, blob or path. final: also
    no file or blob directory that is not a track's (a crashed run may
    leave those of pending and garbage blobs and temporaries)."""
    files = origin_files(store.origin)
    problems, expected = [], set()
    for kind in ("content_hash", "blob", "source_path"):
        vals = [t[kind] for t in tracks if t[kind] is not None]
        dups = sorted({v for v in vals if vals.count(v) > 1})
        if dups:
            problems.append(f"tracks share a {kind}: {dups[:5]}")
    for t in tracks:
        cs, size, n = t["chunk_size"], t["size"], t["chunk_count"]
        if cs <= 0 or n != (size + cs - 1) // cs:
            problems.append(f"track {t['source_path']}: chunk_count {n} for size {size}/{cs}")
            continue
        for i in range(n):
            key = chunk_key(t["blob"], i)
            expected.add(key)
            want = min(cs, size - i * cs) + SEAL_TAG
            got = files.get(key)
            if got is None:
                problems.append(f"track {store.rel(t['source_path'])}: chunk {key} missing")
            elif got[0] != want:
                problems.append(f"track {store.rel(t['source_path'])}: chunk {key} is"
                                f" {got[0]} bytes, want {want}")
    allowed_blobs = {t["blob"] for t in tracks}
    if not final:
        allowed_blobs |= {r["blob"] for r in list(pending) + list(garbage)}
    extra = sorted(k for k in set(files) - expected
                   if final or not (k.startswith(".tmp/") or
                                    (k.startswith("c/") and k.split("/")[2] in allowed_blobs)))
    if extra:
        problems.append(f"{len(extra)} origin files of no track"
                        f"{'' if final else ', pending or garbage blob'}: {extra[:6]}")
    cdir = store.origin / "c"
    if cdir.exists():
        for fan in cdir.iterdir():
            for b in fan.iterdir():
                if b.name not in allowed_blobs:
                    problems.append(f"blob directory c/{fan.name}/{b.name} of no track")
    return problems


def check_clean(store, view):
    """A finished run: no ledger rows, the origin exactly the tracks'
    chunks, no track whose blob was ever in the garbage."""
    raw = view["_raw"]
    problems = origin_problems(store, raw["tracks"])
    if raw["pending"]:
        problems.append(f"{len(raw['pending'])} pending rows left: {short(raw['pending'])}")
    if raw["garbage"]:
        problems.append(f"{len(raw['garbage'])} garbage rows left: {short(raw['garbage'])}")
    trashed = {r["blob"] for r in store.ledger_history
               if r["tbl"] == "garbage" and r["op"] == "insert"}
    live = [t for t in raw["tracks"] if t["blob"] in trashed]
    if live:
        problems.append(f"tracks whose blob went to the garbage: "
                        f"{[store.rel(t['source_path']) for t in live]}")
    if problems:
        fail(f"{store}: the store is not clean after the run:\n  " + "\n  ".join(problems))
    if store.kind == "sqlite":
        check_consistent(store.data)


def check_run(store, res, want, what):
    """Exit status 0, only debug lines on stderr, the summary counts."""
    if any(m in res.err for m in SANITIZER_MARKS):
        fail(f"{store}: {what}: sanitizer report", res)
    check_eq(res.rc, 0, f"{store}: {what}: exit status", res)
    other = [ln for ln in res.err.splitlines() if ln.strip() and not ALLOWED_ERR.match(ln)]
    check_eq(other, [], f"{store}: {what}: stderr lines", res)
    s = parse_summary(res.out)
    if s is None:
        fail(f"{store}: {what}: no summary line", res)
    if want is not None:
        got = {k: s[k] for k in want}
        check_eq(got, want, f"{store}: {what}: summary", res)


def ingest_both(stores, step, paths, want, jobs=None, what=None):
    """Ingests paths into each store in turn; checks each run and the
    store's state, then compares the two. Returns both observations."""
    what = what or f"step {step}"
    views = []
    for s in stores:
        res = s.ingest(paths, jobs=jobs)
        check_run(s, res, want, what)
        v = s.observe(step, res)
        check_clean(s, v)
        views.append(v)
    check_same(views, what)
    return views


def first_ingest(stores, paths, want, jobs=None):
    """Step 1, then the ledger log installed in both stores."""
    views = ingest_both(stores, 1, paths, want, jobs=jobs, what="first ingest")
    for s in stores:
        s.install_audit()
    return views


def track_at(store, view, path):
    rows = [t for t in view["_raw"]["tracks"] if t["source_path"] == real(path)]
    check_eq(len(rows), 1, f"{store}: tracks at {store.rel(real(path))}")
    return rows[0]


def ledger_ops(view):
    """[(table, op, content hash)] of the step, sorted."""
    return sorted(r[:3] for r in view["ledger"])


def blob_dir(store, blob):
    return store.origin / "c" / blob[:2] / blob


def data_state(store):
    """Every file of the data directory but the lock: (size, mtime)."""
    out = {}
    for dp, _, fns in os.walk(store.data):
        for fn in fns:
            if fn != "ingest.lock":
                p = os.path.join(dp, fn)
                st = os.stat(p)
                out[os.path.relpath(p, store.data)] = (st.st_size, st.st_mtime_ns)
    return out


def sqlite_rows(store):
    """SQLite: every row of every table."""
    with Catalog(store.data) as cat:
        return cat.dump()


def row_versions(store):
    """PostgreSQL: every row of every table with its xmin and ctid, which
    any write (even an UPDATE to the same values) changes."""
    out = {}
    for t in store.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
        name = t["tablename"]
        out[name] = sorted(
            (r["xmin"], r["ctid"], r["row"]) for r in
            store.query(f"SELECT xmin::text AS xmin, ctid::text AS ctid, q::text AS row"
                        f" FROM {name} q"))
    return out


# ---------------------------------------------------------------- scenarios

ALBUMS = [
    ("a1.mp3", {"title": "Harbour Lights", "artist": "Ada Lune", "album": "Tides",
                "track": "1", "date": "2011", "TSRC": "GBAYE1100001"}, {"cover": True}),
    ("a2.flac", {"title": "Salt Wind", "artist": "Ada Lune", "album": "Tides", "track": "2",
                 "disc": "1", "ISRC": "GBAYE1100002", "LABEL": "Tide Records"}, {}),
    ("b1.ogg", {"title": "Paper Moon", "artist": "Brass Fable", "album": "Lanterns",
                "album_artist": "Various Fables", "track": "1", "genre": "Jazz"}, {}),
    ("b2.opus", {"title": "Quiet Engines", "artist": "Brass Fable", "album": "Lanterns",
                 "album_artist": "Various Fables", "track": "2"}, {}),
    ("sub/b3.m4a", {"title": "Copper Skies", "artist": "Other Fable", "album": "Lanterns",
                    "album_artist": "Various Fables", "track": "3"}, {"cover": True}),
    ("sub/untagged.wav", {}, {}),
    # One artist and one album whatever the case: the first file's spelling
    # (one worker: the larger file, the FLAC, goes first).
    ("c1.flac", {"title": "Svefn-g-englar", "artist": "Sigur Rós", "album": "Ágætis byrjun",
                 "track": "1", "date": "1999"}, {}),
    ("c2.mp3", {"title": "Starálfur", "artist": "sigur rós", "album": "ÁGÆTIS BYRJUN",
                "track": "2"}, {}),
]


@test("1. first ingest, then a re-run with nothing changed writes only its record (all unchanged)")
def _(tmp):
    lib = tmp / "lib"
    for rel, tags, opts in ALBUMS:
        make_audio(lib / rel, None, 1.0, tags, **opts)
    stores = pair(tmp)
    n = len(ALBUMS)
    views = first_ingest(stores, [lib], {"added": n, "updated": 0, "unchanged": 0,
                                         "failed": 0, "files": n}, jobs=1)
    v = views[0]
    check_eq(sorted(r[1] for r in v["artists"]),
             ["Ada Lune", "Brass Fable", "Other Fable", "Sigur Rós", "Unknown Artist",
              "Various Fables"], "artists")
    check_eq(sorted((r[1], r[4]) for r in v["albums"]),
             [("Lanterns", None), ("Tides", 2011), ("Unknown Album", None),
              ("Ágætis byrjun", 1999)], "albums (title, year)")
    check_eq(len(v["covers"]), 2, "covers")
    before = {s.kind: (data_state(s), row_versions(s) if s.kind == "pg" else
                       sqlite_rows(s)) for s in stores}
    time.sleep(0.02)
    views = ingest_both(stores, 2, [lib], {"added": 0, "updated": 0, "unchanged": n,
                                           "failed": 0, "files": n}, what="re-run")
    for s, v in zip(stores, views):
        check_eq(v["ledger"], [], f"{s}: ledger rows written by the re-run")
        files, rows = before[s.kind]
        now = data_state(s)
        changed = sorted(k for k in set(files) | set(now) if files.get(k) != now.get(k)
                         and not k.startswith("catalog.db"))
        check_eq(changed, [], f"{s}: files but the catalog's whose size or mtime changed")
        after = row_versions(s) if s.kind == "pg" else sqlite_rows(s)
        changed = sorted(t for t in set(rows) | set(after) if rows.get(t) != after.get(t))
        check_eq(changed, ["ingests"], f"{s}: tables with a row written (the run's own)")
        runs = s.query("SELECT added, unchanged, failed, finished_at IS NOT NULL AS done"
                       " FROM ingests ORDER BY started_at")
        check_eq(runs, [{"added": n, "unchanged": 0, "failed": 0, "done": True},
                        {"added": 0, "unchanged": n, "failed": 0, "done": True}],
                 f"{s}: the runs recorded")
    check_eq({t[0] for t in views[0]["tracks"]}, {"step 1: " + os.path.join("lib", r)
                                                  for r, _, _ in ALBUMS},
             "tracks (by where and when they first appeared)")


@test("2. a re-tagged file (same ISRC, new title) updates its track in place, old blob swept")
def _(tmp):
    lib = tmp / "lib"
    tags = {"title": "Old Title", "artist": "Somebody", "album": "Record", "track": "1",
            "ISRC": "GBAYE0601498"}
    f = make_audio(lib / "song.flac", "flac", 2, tags)
    make_audio(lib / "other.flac", "flac", 1, {"title": "Other", "ISRC": "GBAYE0601499"})
    stores = pair(tmp)
    views = first_ingest(stores, [lib], {"added": 2, "updated": 0, "unchanged": 0})
    old = {s.kind: track_at(s, v, f) for s, v in zip(stores, views)}
    old_chunks = {s.kind: sorted(k for k in origin_files(s.origin)
                                 if k.startswith(f"c/{old[s.kind]['blob'][:2]}/"
                                                 f"{old[s.kind]['blob']}/")) for s in stores}
    for s in stores:
        check_eq(len(old_chunks[s.kind]), old[s.kind]["chunk_count"],
                 f"{s}: chunk files of the old blob")
    retag(f, tmp / "new.flac", dict(tags, title="New Title", genre="Added Genre"))
    os.replace(tmp / "new.flac", f)
    views = ingest_both(stores, 2, [lib], {"added": 0, "updated": 1, "unchanged": 1},
                        what="after the re-tag")
    new_hash = sha256_file(f)
    for s, v in zip(stores, views):
        o, n = old[s.kind], track_at(s, v, f)
        check_eq(n["id"], o["id"], f"{s}: track id after the re-tag")
        check_eq((n["title"], n["genre"], n["isrc"], n["content_hash"]),
                 ("New Title", "Added Genre", "GBAYE0601498", new_hash), f"{s}: the track")
        check(n["blob"] != o["blob"], f"{s}: the blob did not change")
        check_eq(ledger_ops(v), sorted([
            ("pending", "insert", new_hash), ("pending", "delete", new_hash),
            ("garbage", "insert", o["content_hash"]), ("garbage", "delete", o["content_hash"])]),
            f"{s}: the ledgers during the re-tag's ingest")
        left = [k for k in old_chunks[s.kind] if k in origin_files(s.origin)]
        check_eq(left, [], f"{s}: chunk files of the old blob left in the origin")
        check(not blob_dir(s, o["blob"]).exists(), f"{s}: old blob directory left")
        check_eq(len(v["_raw"]["tracks"]), 2, f"{s}: tracks")
    check_eq(sorted(t[0] for t in views[0]["tracks"]),
             ["step 1: lib/other.flac", "step 1: lib/song.flac"], "tracks' first appearance")
    ingest_both(stores, 3, [lib], {"added": 0, "updated": 0, "unchanged": 2}, what="re-run")


@test("3. a file moved to another path is the same track: path followed, nothing uploaded")
def _(tmp):
    lib = tmp / "lib"
    f = make_audio(lib / "a" / "x.flac", "flac", 1, {"title": "Wanderer", "artist": "Walker"})
    make_audio(lib / "y.flac", "flac", 1, {"title": "Stayer", "artist": "Walker"})
    stores = pair(tmp)
    views = first_ingest(stores, [lib], {"added": 2, "updated": 0, "unchanged": 0})
    old = {s.kind: track_at(s, v, f) for s, v in zip(stores, views)}
    origin_before = {s.kind: origin_files(s.origin) for s in stores}
    moved = lib / "b" / "deeper" / "renamed.flac"
    moved.parent.mkdir(parents=True)
    os.rename(f, moved)
    views = ingest_both(stores, 2, [lib], {"added": 0, "updated": 0, "unchanged": 2},
                        what="after the move")
    for s, v in zip(stores, views):
        n = track_at(s, v, moved)
        o = old[s.kind]
        check_eq((n["id"], n["blob"], n["content_hash"], n["title"]),
                 (o["id"], o["blob"], o["content_hash"], o["title"]), f"{s}: the moved track")
        check_eq(v["ledger"], [], f"{s}: ledger rows written for a move")
        check_eq(origin_files(s.origin), origin_before[s.kind], f"{s}: origin files")
        check_eq(v["duplicates"], [], f"{s}: duplicates reported")
    check(("step 1: lib/a/x.flac", "step 1: lib/a/x.flac", "lib/b/deeper/renamed.flac")
          == views[0]["tracks"][0][:3], "the moved track: first seen at a/x.flac, now at"
          f" b/deeper/renamed.flac: {views[0]['tracks'][0][:3]}")
    # Moved back, and named twice on the command line: still one track.
    os.rename(moved, f)
    ingest_both(stores, 3, [lib, f], {"added": 0, "updated": 0, "unchanged": 3, "files": 3},
                what="moved back")


@test("4. a byte-identical copy at a second path is reported as a duplicate, one track")
def _(tmp):
    lib = tmp / "lib"
    orig = make_audio(lib / "orig.flac", "flac", 1, {"title": "Twin", "artist": "Mirror"})
    make_audio(lib / "other.mp3", "mp3", 1, {"title": "Single", "artist": "Mirror"})
    stores = pair(tmp)
    views = first_ingest(stores, [lib], {"added": 2, "updated": 0, "unchanged": 0})
    first = {s.kind: track_at(s, v, orig) for s, v in zip(stores, views)}
    copy = lib / "sub" / "copy.flac"
    copy.parent.mkdir()
    shutil.copyfile(orig, copy)
    views = ingest_both(stores, 2, [lib], {"added": 0, "updated": 0, "unchanged": 3},
                        what="with the copy")
    for s, v in zip(stores, views):
        check_eq(v["duplicates"], [("lib/sub/copy.flac", "lib/orig.flac")],
                 f"{s}: duplicates reported")
        check_eq(track_at(s, v, orig)["id"], first[s.kind]["id"], f"{s}: the track's id")
        check_eq(len(v["_raw"]["tracks"]), 2, f"{s}: tracks")
        check_eq(v["ledger"], [], f"{s}: ledger rows (a duplicate uploads nothing)")
    # Two new identical files in one run (one worker: a fixed order).
    n1 = make_wav(lib / "new1.wav", 1.0, seed=41)
    n2 = lib / "new2.wav"
    shutil.copyfile(n1, n2)
    views = ingest_both(stores, 3, [lib], {"added": 1, "updated": 0, "unchanged": 4},
                        jobs=1, what="two new identical files")
    for s, v in zip(stores, views):
        check_eq(v["duplicates"], [("lib/new2.wav", "lib/new1.wav"),
                                   ("lib/sub/copy.flac", "lib/orig.flac")],
                 f"{s}: duplicates reported")
        check_eq(len(v["_raw"]["tracks"]), 3, f"{s}: tracks")
    # The original removed: its track follows the copy.
    orig.unlink()
    views = ingest_both(stores, 4, [lib], {"added": 0, "updated": 0, "unchanged": 4},
                        what="the original removed")
    for s, v in zip(stores, views):
        t = track_at(s, v, copy)
        check_eq(t["id"], first[s.kind]["id"], f"{s}: the track's id after the original went")
        check_eq(v["duplicates"], [("lib/new2.wav", "lib/new1.wav")],
                 f"{s}: duplicates reported")


@test("5. an album change drops the emptied album (and its cover, then its artist)")
def _(tmp):
    lib = tmp / "lib"
    t1 = {"title": "Nomad", "artist": "Old Artist", "album": "Old Album", "track": "1",
          "ISRC": "GBAYE0601401"}
    t2 = {"title": "Drifter", "artist": "Old Artist", "album": "Old Album", "track": "2",
          "ISRC": "GBAYE0601402"}
    a1 = make_audio(lib / "a1.flac", "flac", 1, t1, cover=True)
    a2 = make_audio(lib / "a2.flac", "flac", 1, t2)
    make_audio(lib / "b.flac", "flac", 1, {"title": "Stays", "artist": "Keeper",
                                           "album": "Kept"}, cover=True)
    stores = pair(tmp)
    views = first_ingest(stores, [lib], {"added": 3, "updated": 0, "unchanged": 0})
    ids = {s.kind: {p: track_at(s, v, p)["id"] for p in (a1, a2)}
           for s, v in zip(stores, views)}

    def names(v):
        artists = {r[0]: r[1] for r in v["artists"]}
        albums = sorted((artists[r[3]], r[1]) for r in v["albums"])
        album_of = {r[0]: (artists[r[3]], r[1]) for r in v["albums"]}
        covers = sorted(album_of[r[0]] for r in v["covers"])
        return sorted(artists.values()), albums, covers

    def step(n, path, tags, want):
        tmpf = tmp / ("new" + path.suffix)
        retag(path, tmpf, tags)
        os.replace(tmpf, path)
        views = ingest_both(stores, n, [lib], {"added": 0, "updated": 1, "unchanged": 2},
                            what=f"step {n} ({path.name} re-tagged)")
        for s, v in zip(stores, views):
            check_eq(names(v), want, f"{s}: step {n}: (artists, albums, albums with a cover)")
            for p in (a1, a2):
                check_eq(track_at(s, v, p)["id"], ids[s.kind][p], f"{s}: id of {p.name}")

    # One of two tracks leaves Old Album: it stays for the other one.
    step(2, a1, dict(t1, album="New Album"),
         (["Keeper", "Old Artist"],
          [("Keeper", "Kept"), ("Old Artist", "New Album"), ("Old Artist", "Old Album")],
          [("Keeper", "Kept"), ("Old Artist", "New Album"), ("Old Artist", "Old Album")]))
    # The last one leaves: Old Album and its cover go; Old Artist stays (a1).
    step(3, a2, dict(t2, artist="New Artist", album="New Album"),
         (["Keeper", "New Artist", "Old Artist"],
          [("Keeper", "Kept"), ("New Artist", "New Album"), ("Old Artist", "New Album")],
          [("Keeper", "Kept"), ("Old Artist", "New Album")]))
    # a1 follows: its album and Old Artist go; New Album gets a1's cover.
    step(4, a1, dict(t1, artist="New Artist", album="New Album"),
         (["Keeper", "New Artist"],
          [("Keeper", "Kept"), ("New Artist", "New Album")],
          [("Keeper", "Kept"), ("New Artist", "New Album")]))


def crash_library(lib):
    """~45 MB: multi-chunk WAVs, and a tagged album."""
    files = [make_wav(lib / "wav" / f"noise {i:02d}.wav", file_size=44 + 4 * (700_000 + 997 * i),
                      seed=600 + i) for i in range(16)]
    files += [make_audio(lib / "album" / f"{i:02d}.flac", "flac", 3,
                         {"title": f"Crash {i}", "artist": "Crash Test", "album": "Dummies",
                          "track": str(i + 1)}, seed=700 + i) for i in range(4)]
    return files


def crashed_store(kind, tmp, lib, seed_dir, rnd, attempt):
    """A fresh store of kind with one track (and the ledger log), then an
    ingest of lib killed mid-upload: a random delay after its first chunk,
    at the next moment a chunk is being written (a temporary file in the
    origin), or 0.1 s later. Returns (store, its state after the kill,
    a note), or None when the run ended before the kill."""
    s = Store(kind, tmp, data=tmp / f"data-{kind}-{attempt}")
    check_run(s, s.ingest([seed_dir]), {"added": 1}, "seed ingest")
    check_clean(s, s.observe(1))
    s.install_audit()
    before = set(origin_files(s.origin))
    bg = s.start([lib], tmp / "logs", tag=f"killed{attempt}")
    wait_for(f"{s}: the first chunk of the run to kill",
             lambda: set(origin_files(s.origin)) - before or not bg.running(), 60, step=0.002)
    delay = rnd.uniform(0, 0.06)
    time.sleep(delay)
    deadline = time.monotonic() + 0.1
    while bg.running() and time.monotonic() < deadline and \
            not any(k.startswith(".tmp/") for k in origin_files(s.origin)):
        pass
    res = bg.kill()
    if any(m in res.err for m in SANITIZER_MARKS):
        fail(f"{s}: sanitizer report from the killed run", res)
    if res.rc != -9:
        check_run(s, res, None, "the run that was to be killed")
        return None
    note = f"{s}: killed {delay * 1000:.0f} ms after the first chunk"
    if s.kind == "pg":
        # The killed run is alive for PostgreSQL until its session ends.
        _, waited = wait_for("PostgreSQL: the killed run's session to end",
                             lambda: s.run_lock_holders() == 0, 10)
        note += f" (its session ended {waited * 1000:.0f} ms after)"
    crashed = s.observe(2, names=False)
    raw = crashed["_raw"]
    problems = origin_problems(s, raw["tracks"], final=False, pending=raw["pending"],
                               garbage=raw["garbage"])
    if problems:
        fail(f"{s}: after the kill:\n  " + "\n  ".join(problems))
    return s, crashed, note


@test("6. kill -9 mid-upload, re-runs: pending reused or swept, no orphan chunk, each track once")
def _(tmp):
    lib = tmp / "lib"
    files = crash_library(lib)
    seed_file = make_audio(tmp / "seed" / "seed.flac", "flac", 0.5, {"title": "Seed"})
    hashes = {real(p): sha256_file(p) for p in files}
    seed = os.environ.get("CHORUS_TEST_SEED") or str(time.time_ns())
    rnd = random.Random(seed)
    diag(f"kill delays from seed {seed} (CHORUS_TEST_SEED repeats them)")
    finals, notes = [], []
    for kind in ("sqlite", "pg"):
        # Until a kill leaves two uploads pending (one then left out of the
        # first re-run, to be swept), or at least one at the last attempts.
        got = None
        for attempt in range(8):
            c = crashed_store(kind, tmp, lib, seed_file.parent, rnd, attempt)
            if c is None:
                notes.append(f"{kind}: attempt {attempt}: the run ended before the kill")
                continue
            n = len(c[1]["_raw"]["pending"])
            if n >= 2 or (n == 1 and attempt >= 3):
                got = c
                break
            notes.append(f"{kind}: attempt {attempt}: {n} uploads pending at the kill")
        if got is None:
            fail(f"{kind}: no kill left an upload pending", "\n".join(notes))
        s, crashed, note = got
        raw = crashed["_raw"]
        crashed_pending = {r["blob"]: r["content_hash"] for r in raw["pending"]}
        crashed_ids = {t["id"]: t["content_hash"] for t in raw["tracks"]}
        # The first re-run leaves out one pending upload's file: the killed
        # run's upload of it must be swept; the others reused.
        left_out = []
        if len(crashed_pending) >= 2:
            h = sorted(crashed_pending.values())[0]
            left_out = [p for p in files if hashes[real(p)] == h]
        subset = [p for p in files if p not in left_out]
        res = s.ingest(subset)
        check_run(s, res, None, "the first re-run")
        v = s.observe(3, res, names=False)
        check_clean(s, v)
        summ = v["summary"]
        committed = {h for t in raw["tracks"] for h in [t["content_hash"]]}
        want_added = sum(1 for p in subset if hashes[real(p)] not in committed)
        check_eq(summ, {"added": want_added, "updated": 0, "unchanged": len(subset) - want_added,
                        "failed": 0, "files": len(subset)}, f"{s}: summary of the first re-run",
                 res)
        tracks = v["_raw"]["tracks"]
        blobs = {t["blob"] for t in tracks}
        ledger = v["_raw"]["ledger"]
        reclaimed = {r["blob"] for r in ledger if r["tbl"] == "pending" and r["op"] == "update"}
        swept = {r["blob"] for r in ledger if r["tbl"] == "garbage" and r["op"] == "delete"}
        for b, h in crashed_pending.items():
            if left_out and h == hashes[real(left_out[0])]:
                check(b in swept and b not in blobs,
                      f"{s}: the killed run's upload of the left-out file was not swept")
            else:
                check(b in reclaimed and b in blobs,
                      f"{s}: the killed run's upload {b} of {h[:12]} was not reused"
                      f" (reclaimed {b in reclaimed}, a track's blob {b in blobs})")
            check(b in blobs or not blob_dir(s, b).exists(),
                  f"{s}: swept upload {b} left its directory in the origin")
        now_ids = {t["id"]: t["content_hash"] for t in tracks}
        check_eq({i: now_ids.get(i) for i in crashed_ids}, crashed_ids,
                 f"{s}: tracks committed before the kill (id: content hash) after the re-run")
        notes.append(f"{note}: {len(raw['tracks']) - 1} of {len(files)} tracks committed,"
                     f" {len(crashed_pending)} uploads pending; the first re-run reused"
                     f" {len(reclaimed)}, swept {len(swept & set(crashed_pending))}")
        # The whole library: the left-out file comes in, nothing else changes.
        res = s.ingest([lib])
        check_run(s, res, {"added": len(left_out), "updated": 0,
                           "unchanged": len(files) - len(left_out), "failed": 0,
                           "files": len(files)}, "the second re-run")
        v = s.observe(4, res, names=False)
        check_clean(s, v)
        tracks = v["_raw"]["tracks"]
        by_path = collections.Counter(t["source_path"] for t in tracks)
        want = collections.Counter([real(p) for p in files] + [real(seed_file)])
        check_eq(by_path, want, f"{s}: tracks by source path")
        for t in tracks:
            if t["source_path"] != real(seed_file):
                check_eq(t["content_hash"], hashes[t["source_path"]],
                         f"{s}: content hash of {s.rel(t['source_path'])}")
        finals.append(v)
    for n in notes:
        diag(n)
    check_same(finals, "after the re-runs",
               keys=["artists", "albums", "covers", "tracks", "pending", "garbage"])


def two_libraries(tmp):
    """Two hosts' libraries sharing a folder (the same paths in both runs,
    the largest files, so both runs start on them) and one file (a
    byte-identical copy at a path of each). Host B has more to do after
    the shared files, so that host A ends, and sweeps, while B uploads."""
    shared = tmp / "shared"
    a, b = tmp / "lib-a", tmp / "lib-b"
    files = {"shared": [], "a": [], "b": []}
    for i in range(6):
        files["shared"].append(make_wav(shared / f"big {i}.wav",
                                        file_size=44 + 4 * (650_000 + 331 * i), seed=800 + i))
    for i in range(2):
        files["shared"].append(make_audio(shared / f"common {i}.flac", "flac", 1.5,
                                          {"title": f"Common {i}", "artist": "Both Sides",
                                           "album": "Common Ground", "track": str(i + 1)}))
    for i in range(2):
        files["a"].append(make_wav(a / f"a {i}.wav", 1.0, seed=820 + i))
    files["a"].append(make_audio(a / "a.flac", "flac", 1, {
        "title": "From A", "artist": "Both Sides", "album": "Common Ground", "track": "3"}))
    for i in range(8):
        files["b"].append(make_wav(b / f"b {i:02d}.wav", file_size=44 + 4 * (500_000 + 17 * i),
                                   seed=840 + i))
    files["b"].append(make_audio(b / "b.flac", "flac", 1, {
        "title": "From B", "artist": "Both Sides", "album": "Common Ground", "track": "4"}))
    files["b"].append(make_audio(b / "bee.mp3", "mp3", 1, {
        "title": "Buzz", "artist": "Bee", "album": "Bee Album"}, cover=True))
    copy_a = make_wav(a / "copy.wav", 2.0, seed=860)
    copy_b = b / "copy.wav"
    shutil.copyfile(copy_a, copy_b)
    return {"a": [a, shared], "b": [b, shared], "dirs": {"a": a, "b": b}, "files": files,
            "copies": [copy_a, copy_b]}


def more_files(libs, rnd):
    """New files for a later round: two small ones for A, eight of 2 MB for B."""
    for i in range(2):
        libs["files"]["a"].append(make_wav(libs["dirs"]["a"] / f"round {rnd}" / f"{i}.wav",
                                           0.5, seed=1000 * rnd + i))
    for i in range(8):
        libs["files"]["b"].append(make_wav(libs["dirs"]["b"] / f"round {rnd}" / f"{i}.wav",
                                           file_size=44 + 4 * (500_000 + 13 * i),
                                           seed=1000 * rnd + 100 + i))


def run_together(runs, timeout=120):
    """Starts the (store, paths, tag) runs at once. Returns their Results,
    whether all were seen running at the same moment, and the pending rows
    of the runs still going when the first one ended."""
    bgs = [s.start(paths, s.root / "logs", tag=tag) for s, paths, tag in runs]
    together, pending_at_first_end = False, None
    deadline = time.monotonic() + timeout
    while any(bg.running() for bg in bgs) and time.monotonic() < deadline:
        up = [bg.running() for bg in bgs]
        together = together or all(up)
        if together and pending_at_first_end is None and not all(up):
            pending_at_first_end = runs[0][0].query("SELECT count(*) AS n FROM pending")[0]["n"]
        time.sleep(0.002)
    return [bg.wait(timeout=5) for bg in bgs], together, pending_at_first_end


@test("7. PostgreSQL: two ingests at once into one database: every file once, nothing pending")
def _(tmp):
    libs = two_libraries(tmp)
    origin = tmp / "origin"
    host_a = Store("pg", tmp, data=tmp / "host-a", origin=origin)
    host_b = Store("pg", tmp, data=tmp / "host-b", origin=origin, dbname=host_a.dbname)
    # The schema first (chorus report creates it), so the ledger log can
    # watch the race; a fresh database's schema race is test_cluster_db's.
    r = run_chorus(["report", "--db", host_a.conninfo, "--data", tmp / "report"])
    check_eq(r.rc, 0, "chorus report (creates the schema)", r)
    host_a.install_audit()
    copies = {real(p) for p in libs["copies"]}
    notes = []
    distinct_before, final = 0, None
    # Rounds 1-3 race (round 1 on everything, 2 and 3 on new files, B's
    # uploads going on after A's end); round 4 has nothing to do.
    for rnd in (1, 2, 3, 4):
        if rnd in (2, 3):
            more_files(libs, rnd)
        distinct = sum(len(libs["files"][k]) for k in ("shared", "a", "b")) + 1
        n_a = len(libs["files"]["shared"]) + len(libs["files"]["a"]) + 1
        n_b = len(libs["files"]["shared"]) + len(libs["files"]["b"]) + 1
        (ra, rb), together, pend = run_together([(host_a, libs["a"], f"a{rnd}"),
                                                 (host_b, libs["b"], f"b{rnd}")])
        check(together, f"round {rnd}: the two ingests never ran at the same time", ra, rb)
        check_run(host_a, ra, None, f"round {rnd}: host A")
        check_run(host_b, rb, None, f"round {rnd}: host B")
        sa, sb = parse_summary(ra.out), parse_summary(rb.out)
        check_eq((sa["files"], sb["files"]), (n_a, n_b), f"round {rnd}: files seen")
        check_eq((sa["updated"], sb["updated"], sa["failed"], sb["failed"]), (0, 0, 0, 0),
                 f"round {rnd}: updated and failed", ra, rb)
        check_eq(sa["added"] + sb["added"], distinct - distinct_before,
                 f"round {rnd}: tracks added by the two runs", ra, rb)
        distinct_before = distinct
        check_eq(sa["added"] + sa["unchanged"], n_a, f"round {rnd}: host A's outcomes", ra)
        check_eq(sb["added"] + sb["unchanged"], n_b, f"round {rnd}: host B's outcomes", rb)
        v = host_a.observe(rnd, ra)
        check_clean(host_a, v)
        check_eq(host_a.run_lock_holders(), 0, f"round {rnd}: run locks held after both runs")
        tracks = v["_raw"]["tracks"]
        by_path = collections.Counter(t["source_path"] for t in tracks)
        want = collections.Counter(real(p) for k in ("shared", "a", "b")
                                   for p in libs["files"][k])
        got = collections.Counter(p for p in by_path.elements() if p not in copies)
        check_eq(got, want, f"round {rnd}: tracks by source path (the copies aside)")
        at_copies = [t for t in tracks if t["source_path"] in copies]
        check_eq(len(at_copies), 1, f"round {rnd}: tracks at either copy")
        check_eq(len({t["content_hash"] for t in tracks}), len(tracks),
                 f"round {rnd}: tracks with distinct content")
        dups = v["duplicates"] + duplicates(host_b, rb)
        check_eq(len(dups), 1, f"round {rnd}: duplicates reported ({dups})")
        check_eq(sorted(r[1] for r in v["artists"]), ["Bee", "Both Sides", "Unknown Artist"],
                 f"round {rnd}: artists")
        check_eq(sorted(r[1] for r in v["albums"]),
                 ["Bee Album", "Common Ground", "Unknown Album"], f"round {rnd}: albums")
        lost = [r for r in v["_raw"]["ledger"] if r["tbl"] == "garbage" and r["op"] == "insert"]
        notes.append(f"round {rnd}: host A added {sa['added']}, host B {sb['added']};"
                     f" {len(lost)} uploads lost a race and were swept; {pend} uploads"
                     " pending just after the first run ended")
        if rnd == 4:
            check_eq(v["ledger"], [], "round 4: ledger rows written by two unchanged runs")
            check_same([final, v], "round 4 against round 3",
                       keys=["artists", "albums", "covers", "tracks"])
        final = v
    for n in notes:
        diag(n)

    # The same libraries one after the other into SQLite: the same catalog
    # (which copy holds the shared file is the race's to decide).
    lite = Store("sqlite", tmp)
    for paths in (libs["a"], libs["b"]):
        res = lite.ingest(paths)
        check_run(lite, res, None, "SQLite reference")
    ref = lite.observe(1, names=False)
    check_clean(lite, ref)
    pgv = host_a.observe(5, names=False)

    def no_copy_path(view):
        return dict(view, tracks=sorted(
            ("a copy" if real(os.path.join(lite.root, t[0])) in copies else t[0],) + t[1:]
            for t in view["tracks"]))

    check_same([no_copy_path(ref), no_copy_path(pgv)], "SQLite (one run after the other)"
               " against PostgreSQL (two at once)", keys=["artists", "albums", "covers", "tracks"])


@test("8. a re-encoded moved file keeps its track (ISRC, tags); live files with equal tags: 2 tracks")
def _(tmp):
    lib = tmp / "lib"
    take = {"title": "Take Five", "artist": "Quartet", "album": "Time Out", "track": "3"}
    isrc = {"title": "Isrc Song", "artist": "Coder", "album": "Codes", "ISRC": "USRC17607839"}
    twin = {"title": "Same", "artist": "Twin", "album": "Pair", "track": "1"}
    r1 = make_audio(lib / "r1.mp3", "mp3", 1, take, seed=11)
    i1 = make_audio(lib / "i1.flac", "flac", 1, isrc, seed=12)
    make_audio(lib / "y0.flac", "flac", 1, {"title": "Yearless", "artist": "Z",
                                            "album": "Years"}, seed=13)
    t1 = make_audio(lib / "t1.ogg", "ogg", 1, twin, seed=14)
    make_audio(lib / "t2.ogg", "ogg", 1, twin, seed=15)
    stores = pair(tmp)
    views = first_ingest(stores, [lib], {"added": 5, "updated": 0, "unchanged": 0})
    ids = {s.kind: {p: track_at(s, v, p)["id"] for p in (r1, i1, t1)}
           for s, v in zip(stores, views)}
    check_eq([r[4] for r in views[0]["albums"] if r[1] == "Years"], [None], "Years' year")
    old_hash = {p: sha256_file(p) for p in (r1, i1)}

    # r1 re-encoded (new audio, same tags, no disc number, no ISRC) and moved;
    # i1 re-tagged and moved (same ISRC); a second track of Years has a year.
    r1.unlink()
    r1n = make_audio(lib / "moved" / "r1 new.mp3", "mp3", 1.2, take, seed=21)
    i1n = lib / "moved" / "i1 new.flac"
    retag(i1, i1n, dict(isrc, title="Isrc Song (Remaster)"))
    i1.unlink()
    make_audio(lib / "y1.flac", "flac", 1, {"title": "Other", "artist": "Z", "album": "Years",
                                            "date": "2001"}, seed=22)
    views = ingest_both(stores, 2, [lib], {"added": 1, "updated": 2, "unchanged": 3},
                        what="re-encoded and moved")
    for s, v in zip(stores, views):
        check_eq(track_at(s, v, r1n)["id"], ids[s.kind][r1], f"{s}: id of the re-encoded file")
        check_eq(track_at(s, v, i1n)["id"], ids[s.kind][i1], f"{s}: id of the re-tagged file")
        check_eq(len(v["_raw"]["tracks"]), 6, f"{s}: tracks")
        check_eq([op for op in ledger_ops(v) if op[0] == "garbage"],
                 sorted(("garbage", op, old_hash[p]) for op in ("insert", "delete")
                        for p in (r1, i1)), f"{s}: the garbage ledger during the step")
    check_eq([r[4] for r in views[0]["albums"] if r[1] == "Years"], [2001], "Years' year")

    # A third file with the twins' tags while both live: a track of its own.
    make_audio(lib / "t3.ogg", "ogg", 1, twin, seed=23)
    ingest_both(stores, 3, [lib], {"added": 1, "updated": 0, "unchanged": 6},
                what="a third file with equal tags")
    # t1 gone, a new file with the same tags: it takes t1's track, not t2's or t3's.
    t1.unlink()
    t4 = make_audio(lib / "t4.ogg", "ogg", 1, twin, seed=24)
    views = ingest_both(stores, 4, [lib], {"added": 0, "updated": 1, "unchanged": 6},
                        what="t1 replaced by t4")
    for s, v in zip(stores, views):
        check_eq(track_at(s, v, t4)["id"], ids[s.kind][t1], f"{s}: id of t4 (t1's track)")
        check_eq(len(v["_raw"]["tracks"]), 7, f"{s}: tracks")


def missing_postgresql():
    need = [n for n in ("initdb", "pg_ctl") if not glob.glob(f"/usr/lib/postgresql/*/bin/{n}")]
    if not shutil.which("psql"):
        need.append("psql")
    return need


if __name__ == "__main__":
    missing = missing_postgresql()
    if missing:
        print(f"1..0 # SKIP PostgreSQL not installed: {', '.join(missing)}")
        sys.exit(0)
    if not os.access(CHORUS_BIN, os.X_OK):
        main()  # says what is missing
    with pg.server() as srv:
        SERVER = srv
        main()
