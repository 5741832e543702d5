#!/usr/bin/python3
"""Spot checks of a cluster node against PostgreSQL, for bench/bootstrap.sh.

    bench/cluster/spot_check.py --port P --conninfo CONNINFO [--n 5] [--seed 1] [--key KEY]

Picks n random tracks in PostgreSQL; each must answer GET /api/v1/tracks/{id}
with the same title, artist, album and duration, and a search for its
title (titles of 3+ words, so the name is close to unique) must list it.
Prints one line per check on stderr and `spot ok=K of=N` on stdout; exits 1
when any check fails.
"""
import argparse
import json
import os
import random
import sys
import urllib.parse
import urllib.request

import psycopg2


def get(port, path, key):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 headers={"Authorization": "Bearer %s" % key} if key else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conninfo", required=True)
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--key", default=os.environ.get("CHORUS_KEY"),
                    help="an admin API key (default: $CHORUS_KEY)")
    a = ap.parse_args()
    db = psycopg2.connect(a.conninfo)
    cur = db.cursor()
    rng = random.Random(a.seed)
    rows = []
    # Random points in the id space (ids are random 63-bit numbers), the
    # next track from each with a 3+ word title.
    for _ in range(a.n):
        cur.execute("""SELECT lpad(to_hex(t.id), 16, '0'), t.title, ar.name, al.title,
                t.duration_ms FROM tracks t
            JOIN albums al ON al.id = t.album_id JOIN artists ar ON ar.id = t.artist_id
            WHERE t.id >= %s AND t.title ~ '^[A-Za-z]+ [A-Za-z]+ [A-Za-z]+'
            ORDER BY t.id LIMIT 1""", (rng.getrandbits(62),))
        rows += cur.fetchall()
    ok = 0
    for tid, title, artist, album, dur in rows:
        t = get(a.port, "/api/v1/tracks/" + tid, a.key)
        good = (t.get("title"), t.get("artist"), t.get("album"), t.get("duration_ms")) == \
            (title, artist, album, dur)
        s = get(a.port, "/api/v1/search?limit=20&q=" + urllib.parse.quote(title), a.key)
        found = any(x.get("id") == tid for x in s.get("tracks", []))
        print("spot: %s %r by %r: fields %s, search %s" %
              (tid, title, artist, "ok" if good else "DIFFER: %r" % t,
               "found" if found else "NOT FOUND"), file=sys.stderr)
        ok += good and found
    print("spot ok=%d of=%d" % (ok, len(rows)))
    sys.exit(0 if ok == len(rows) and rows else 1)


if __name__ == "__main__":
    main()
