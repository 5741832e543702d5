#!/usr/bin/python3
"""Time from `chorus serve --join URL --token T` to the first byte of a
stream served by the new node, against a node given its settings on the
command line (`serve --db ... --origin ...`) in the same run.

    bench/cluster/join.py [--reps 5]

A member with PostgreSQL and the S3 origin of the tests, 30 tracks. Each
rep starts a node in an empty data directory both ways and times exec to
the first byte of a stream of a track it has not cached (its bootstrap,
membership and a peer or origin read included). Last line:

    cluster_join join_ms=P50 flags_ms=P50 ratio=R
"""
import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))
os.environ.setdefault("CHORUS_BIN", str(ROOT / "build" / "release" / "chorus"))

import pg  # noqa: E402
from chorus_test import CHORUS_BIN, Node, chorus_env, http_request, run_chorus  # noqa: E402
from cluster_lib import library  # noqa: E402
from s3 import S3Server  # noqa: E402


def first_byte(args, env, track_id):
    """Starts chorus serve with args; ms from exec to a stream's first byte."""
    t0 = time.monotonic()
    p = subprocess.Popen([CHORUS_BIN, "serve", "--listen", "127.0.0.1:0"] + args,
                         env=chorus_env(env), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        line = p.stdout.readline().decode()
        port = int(line.rstrip().rstrip("/").rsplit(":", 1)[1])
        r = http_request(port, "GET", f"/api/v1/tracks/{track_id}/stream",
                         {"Range": "bytes=0-0"})
        ms = (time.monotonic() - t0) * 1000
        if r.status != 206:
            sys.exit(f"stream answered {r.status}")
        return ms
    finally:
        p.terminate()
        p.wait(30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    s3 = S3Server.shared()
    with tempfile.TemporaryDirectory(prefix="bench-join-") as d, pg.server() as db:
        tmp = pathlib.Path(d)
        origin = s3.spec(f"join-{os.getpid()}")
        src, _ = library()
        r = run_chorus(["ingest", "--no-progress", "--data", tmp / "ingest", "--db", db.conninfo,
                        "--origin", origin, src], env=s3.env(), timeout=600, sanitizers=False)
        if r.rc != 0:
            sys.exit(f"ingest failed: {r}")
        member = Node(tmp / "member", tmp / "logs", args=["--db", db.conninfo, "--origin", origin],
                      env=s3.env(), tag="member")
        tracks = member.get_json("/api/v1/tracks?limit=100")["tracks"]
        tok = run_chorus(["cluster", "token", "--data", tmp / "member"], sanitizers=False)
        token = tok.out.strip().splitlines()[-1]
        url = f"http://127.0.0.1:{member.port}"
        joins, flags = [], []
        for i in range(a.reps):
            t = tracks[i % len(tracks)]
            joins.append(first_byte(["--data", tmp / f"j{i}", "--join", url, "--token", token],
                                    {}, t["id"]))
            flags.append(first_byte(["--data", tmp / f"f{i}", "--db", db.conninfo,
                                     "--origin", origin], s3.env(), tracks[-1 - i]["id"]))
            print(f"rep {i + 1}: join {joins[-1]:.0f} ms, flags {flags[-1]:.0f} ms", flush=True)
        member.stop()
    j, f = statistics.median(joins), statistics.median(flags)
    print(f"cluster_join join_ms={j:.0f} flags_ms={f:.0f} ratio={j / f:.2f}")


if __name__ == "__main__":
    main()
