#!/usr/bin/python3
"""Origin egress with peer fill, and the time to detect a dead peer.

    bench/cluster/egress.py [--nodes 1,3,5] [--listeners 300] [--kills 5]

For each cluster size N: a fresh PostgreSQL, the S3 origin of the tests
(s3rver behind the signature-checking proxy), 30 two-chunk tracks ingested,
N nodes with empty caches; then LISTENERS concurrent listeners, spread
over the nodes, each streaming one track whole (track i % 30 on node
(i // 30) % N, so every node plays every track). Figure: the origin's
sealed bytes (summed over the nodes' cache.origin_bytes) / the unique
sealed bytes streamed. The reference, without peer fill, is N (each node
reads every chunk once); with it the goal is 1.0, whatever N.

Then, with 3 nodes, KILLS times: kill -9 one node right after one of its
heartbeats and time until another node's /api/v1/cluster says dead
(polled every 10 ms), and until a stream on the survivors no longer waits
on it. Last line:

    cluster_egress n1=R1 n3=R3 n5=R5 detect_p50_ms=D detect_max_ms=M
"""
import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))
os.environ.setdefault("CHORUS_BIN", str(ROOT / "build" / "release" / "chorus"))

import pg  # noqa: E402
from chorus_test import Node, run_chorus  # noqa: E402
from cluster_lib import NTRACKS, library, sealed_size  # noqa: E402
from s3 import S3Server  # noqa: E402


def start_cluster(tmp, db, s3, n, prefix):
    origin = s3.spec(prefix)
    src, files = library()
    r = run_chorus(["ingest", "--no-progress", "--data", tmp / "ingest", "--db", db.conninfo,
                    "--origin", origin, src], env=s3.env(), timeout=600, sanitizers=False)
    if r.rc != 0:
        sys.exit(f"ingest failed: {r}")
    nodes = [Node(tmp / f"n{i}", tmp / "logs", args=["--db", db.conninfo, "--origin", origin],
                  env=s3.env(), tag=f"n{i}") for i in range(n)]
    deadline = time.monotonic() + 20
    while any(sum(m["state"] == "alive" for m in nd.get_json("/api/v1/cluster")["nodes"]) != n
              for nd in nodes):
        if time.monotonic() > deadline:
            sys.exit("nodes did not see each other")
        time.sleep(0.1)
    by_size = {f.stat().st_size: f for f in files}
    tracks = nodes[0].get_json("/api/v1/tracks?limit=100")["tracks"]
    want = {t["id"]: hashlib.sha256(by_size[t["size_bytes"]].read_bytes()).hexdigest()
            for t in tracks}
    return nodes, tracks, want


def egress(n, listeners, s3):
    with tempfile.TemporaryDirectory(prefix="bench-egress-") as d, pg.server() as db:
        tmp = pathlib.Path(d)
        nodes, tracks, want = start_cluster(tmp, db, s3, n, f"egress-{n}-{os.getpid()}")
        bad = []

        def listener(i):
            t = tracks[i % NTRACKS]
            nd = nodes[(i // NTRACKS) % n]
            r = nd.get(f"/api/v1/tracks/{t['id']}/stream", timeout=120)
            if r.status != 200 or hashlib.sha256(r.body).hexdigest() != want[t["id"]]:
                bad.append(i)

        t0 = time.monotonic()
        threads = [threading.Thread(target=listener, args=(i,)) for i in range(listeners)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        took = time.monotonic() - t0
        origin = sum(nd.get_json("/api/v1/node")["cache"]["origin_bytes"] for nd in nodes)
        unique = sum(sealed_size(t["size_bytes"]) for t in tracks)
        for nd in nodes:
            nd.stop()
        if os.environ.get("BENCH_SHOW_WARNINGS"):
            for f in sorted((tmp / "logs").glob("*.err")):
                for line in f.read_text().splitlines():
                    if " warn: " in line or " error: " in line:
                        print(f.name.split(".")[0], line)
        if bad:
            sys.exit(f"{len(bad)} listens failed or differed")
        print(f"nodes={n} listeners={listeners} seconds={took:.1f} origin_bytes={origin} "
              f"unique_bytes={unique} ratio={origin / unique:.3f} (without peer fill: {n})",
              flush=True)
        return origin / unique


def detect(kills, s3):
    times = []
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as d, pg.server() as db:
        tmp = pathlib.Path(d)
        nodes, tracks, want = start_cluster(tmp, db, s3, 3, f"detect-{os.getpid()}")
        for k in range(kills):
            victim = nodes[2]
            vid = next(m["id"] for m in victim.get_json("/api/v1/cluster")["nodes"] if m["self"])
            # Right after a heartbeat: the worst case for detection.
            while True:
                m = next(m for m in nodes[0].get_json("/api/v1/cluster")["nodes"]
                         if m["id"] == vid)
                if m["heartbeat_age_ms"] < 100:
                    break
                time.sleep(0.01)
            victim.kill9()
            t0 = time.monotonic()
            while next(m for m in nodes[0].get_json("/api/v1/cluster")["nodes"]
                       if m["id"] == vid)["state"] != "dead":
                time.sleep(0.01)
            ms = (time.monotonic() - t0) * 1000
            times.append(ms)
            print(f"kill {k + 1}: dead for the others after {ms:.0f} ms", flush=True)
            nodes[2] = Node(tmp / "n2", tmp / "logs",
                            args=["--db", db.conninfo, "--origin", s3.spec(f"detect-{os.getpid()}")],
                            env=s3.env(), tag=f"n2-{k}")
            time.sleep(1.5)
        for nd in nodes:
            nd.stop()
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", default="1,3,5")
    ap.add_argument("--listeners", type=int, default=300)
    ap.add_argument("--kills", type=int, default=5)
    a = ap.parse_args()
    s3 = S3Server.shared()
    ratios = {n: egress(n, a.listeners, s3) for n in map(int, a.nodes.split(","))}
    times = detect(a.kills, s3) if a.kills else [0]
    print("cluster_egress " + " ".join(f"n{n}={r:.3f}" for n, r in ratios.items()) +
          f" detect_p50_ms={statistics.median(times):.0f} detect_max_ms={max(times):.0f}")


if __name__ == "__main__":
    main()
