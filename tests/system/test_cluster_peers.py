#!/usr/bin/python3
"""System tests for peer fill: several nodes on loopback ports sharing a real
PostgreSQL (tests/system/pg.py) and an S3 origin that checks signatures
(tests/system/s3.py).

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_cluster_peers.py [NAME...]
"""

import hashlib
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    Node, check, check_eq, fail, ingest_ok, main, test, wait_for)
from cluster_lib import NTRACKS, library, score, sealed_size  # noqa: E402
from s3 import S3Server  # noqa: E402

class Cluster:
    """PostgreSQL, the S3 origin, a library ingested into them, n nodes."""

    def __init__(self, tmp, db, n, args=(), origin_timeout_ms=1500):
        self.tmp, self.db = tmp, db
        self.s3 = S3Server.shared()
        self.prefix = f"peers-{os.getpid()}-{random.randrange(1 << 30)}"
        self.origin = self.s3.spec(self.prefix) + f"&timeout_ms={origin_timeout_ms}"
        self.env = self.s3.env()
        self.src, self.files = library()
        ingest_ok(tmp / "ingest", self.src, db=db.conninfo, origin=self.origin, env=self.env)
        self.args = list(args)
        self.nodes = [self.start(i) for i in range(n)]
        self.wait_alive(n)
        self.tracks = self.nodes[0].get_json("/api/v1/tracks?limit=100")["tracks"]
        check_eq(len(self.tracks), NTRACKS, "tracks")
        by_size = {f.stat().st_size: f for f in self.files}  # sizes differ by design
        self.want = {}
        for t in self.tracks:
            t["data"] = by_size[t["size_bytes"]].read_bytes()
            self.want[t["id"]] = hashlib.sha256(t["data"]).hexdigest()

    def start(self, i):
        return Node(self.tmp / f"n{i}", self.tmp / "logs",
                    args=["--db", self.db.conninfo, "--origin", self.origin] + self.args,
                    env=self.env, tag=f"n{i}")

    def members(self, node):
        return {m["id"]: m for m in node.get_json("/api/v1/cluster")["nodes"]}

    def wait_alive(self, n, timeout=10):
        def views():
            return [self.members(nd).values() for nd in self.nodes if nd.running()]

        wait_for(f"{n} nodes alive on each",
                 lambda: all(sum(m["state"] == "alive" for m in v) == n for v in views()),
                 timeout, step=0.1,
                 context=lambda: [[(m["id"], m["state"], m["address"]) for m in v]
                                  for v in views()])

    def figures(self):
        out = {"origin_bytes": 0, "origin_reads": 0, "peer_reads": 0, "peer_served": 0}
        for nd in self.nodes:
            if nd.running():
                c = nd.get_json("/api/v1/node")["cache"]
                for k in out:
                    out[k] += c[k]
        return out

    def stop(self):
        for nd in self.nodes:
            if nd.running():
                nd.stop()


def listen(nodes, track, tries=20, chunk_pause=0.0):
    """A player that resumes the same byte range on the next node when a
    request fails: the client rule for players without haproxy."""
    data = b""
    size = track["size_bytes"]
    k = random.randrange(len(nodes))
    failures = 0
    while len(data) < size:
        nd = nodes[k % len(nodes)]
        try:
            r = nd.get(f"/api/v1/tracks/{track['id']}/stream",
                       {"Range": f"bytes={len(data)}-"}, timeout=10)
            if r.status not in (200, 206):
                raise IOError(f"status {r.status}")
            data += r.body
        except Exception:  # noqa: BLE001
            failures += 1
            if failures > tries:
                raise
            k += 1
            time.sleep(0.05)
        if chunk_pause:
            time.sleep(chunk_pause)
    return data, failures


@test("three nodes, 300 listeners: every byte exact, each chunk read from the origin about once")
def _(tmp):
    with pg.server() as db:
        cl = Cluster(tmp, db, 3)
        try:
            results, errors = [], []
            lock = threading.Lock()

            def listener(i):
                t = cl.tracks[i % NTRACKS]
                nd = cl.nodes[i % 3]
                try:
                    r = nd.get(f"/api/v1/tracks/{t['id']}/stream", timeout=60)
                    ok = r.status == 200 and hashlib.sha256(r.body).hexdigest() == cl.want[t["id"]]
                except Exception as e:  # noqa: BLE001
                    ok, r = False, e
                with lock:
                    (results if ok else errors).append((i, str(r)[:200]))

            threads = [threading.Thread(target=listener, args=(i,)) for i in range(300)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            check(not errors, f"{len(errors)} listens failed or differed: {errors[:3]}")
            f = cl.figures()
            unique = sum(sealed_size(t["size_bytes"]) for t in cl.tracks)
            ratio = f["origin_bytes"] / unique
            print(f"# origin bytes {f['origin_bytes']} for {unique} unique sealed bytes: "
                  f"{ratio:.3f}x; {f['origin_reads']} origin reads, {f['peer_reads']} peer "
                  f"reads, {f['peer_served']} chunks served to peers")
            if ratio > 1.05:
                logs = "".join(f.read_text()[-2000:] for f in (tmp / "logs").glob("*.err"))
                fail(f"origin egress {ratio:.3f}x the unique bytes (want <= 1.05)", logs)
        finally:
            cl.stop()


@test("kill -9 of one node while listeners stream: no failed listen, the dead node is skipped within 2 s, it rejoins")
def _(tmp):
    with pg.server() as db:
        cl = Cluster(tmp, db, 3)
        try:
            errors, done = [], []
            lock = threading.Lock()

            def listener(i):
                t = cl.tracks[i % NTRACKS]
                try:
                    data, fails = listen(cl.nodes, t, chunk_pause=0.01)
                    ok = hashlib.sha256(data).hexdigest() == cl.want[t["id"]]
                except Exception as e:  # noqa: BLE001
                    ok, fails = False, repr(e)
                with lock:
                    (done if ok else errors).append((i, fails))

            threads = [threading.Thread(target=listener, args=(i,)) for i in range(60)]
            for th in threads:
                th.start()
            time.sleep(0.3)
            victim = cl.nodes[2]
            vid = next(m["id"] for m in cl.members(victim).values() if m["self"])
            victim.kill9()
            state, took = wait_for("the killed node no longer alive for the others",
                                   lambda: (cl.members(cl.nodes[0])[vid]["state"] != "alive"
                                            and cl.members(cl.nodes[0])[vid]["state"]),
                                   5, step=0.05)
            print(f"# the others saw the killed node {state} after {took:.2f} s")
            check(took <= 2.5, "dead node skipped within 2 s (+ polling)")
            _, more = wait_for("the killed node dead for the others",
                               lambda: cl.members(cl.nodes[0])[vid]["state"] == "dead",
                               5 - took, step=0.05)
            print(f"# ... and dead after {took + more:.2f} s")
            for th in threads:
                th.join()
            check(not errors, f"{len(errors)} listens failed: {errors[:3]}")
            # After the death, streams on the survivors do not wait on it.
            t = cl.tracks[0]
            s = time.monotonic()
            data, _ = listen(cl.nodes[:2], t)
            check(hashlib.sha256(data).hexdigest() == cl.want[t["id"]], "exact after the death")
            check(time.monotonic() - s < 5, "a stream after the death took too long")
            cl.nodes[2] = cl.start(2)
            try:
                cl.wait_alive(3)
            except Exception:
                print("#", cl.nodes[2].bg.err_path.read_text()[-1500:].replace("\n", "\n# "))
                raise
        finally:
            cl.stop()


def flip_bit(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x20]))


@test("a flipped bit in a peer's cache file or in an origin object is never served; the next source is")
def _(tmp):
    with pg.server() as db:
        cl = Cluster(tmp, db, 3)
        try:
            ids = [next(m["id"] for m in cl.members(nd).values() if m["self"]) for nd in cl.nodes]
            blob_of = {r[0]: r[1] for r in db.query("SELECT id, blob FROM tracks")}
            # A track whose chunk 0 node 0 owns and node 2 ranks after it.
            pick = None
            for t in cl.tracks:
                blob = blob_of[str(int(t["id"], 16))]
                order = sorted(range(3), key=lambda k: -score(ids[k], blob, 0))
                if order[0] == 0 and order.index(2) > 0:
                    pick, pick_blob = t, blob
                    break
            check(pick is not None, "no track with the wanted ranking")
            r = cl.nodes[0].get(f"/api/v1/tracks/{pick['id']}/stream")
            check_eq(r.status, 200, "first play on the owner", r)
            owner_file = tmp / "n0" / "cache" / pick_blob[:2] / f"{pick_blob}-00000000"
            check(owner_file.exists(), f"{owner_file} cached on the owner")
            flip_bit(owner_file, 1000)
            before = cl.nodes[2].get_json("/api/v1/node")["cache"]
            total_before = cl.figures()
            r = cl.nodes[2].get(f"/api/v1/tracks/{pick['id']}/stream")
            check_eq(r.status, 200, "stream on another node after the flip", r)
            check(hashlib.sha256(r.body).hexdigest() == cl.want[pick["id"]],
                  "the damaged copy reached a listener")
            after = cl.nodes[2].get_json("/api/v1/node")["cache"]
            check(after["peer_reads"] > before["peer_reads"], "the owner was asked first")
            check(cl.figures()["origin_reads"] > total_before["origin_reads"],
                  "then the origin (through the next peer, or directly)")
            check(not owner_file.exists(), "the owner dropped its damaged file")

            # An origin object flipped: a chunk cached on a peer still plays
            # exactly (node 1 asks the owner); one cached nowhere gets 503.
            def origin_object(blob, index):
                key = f"c/{blob[:2]}/{blob}/{index:08x}"
                hits = [p for p in (cl.s3.root / "data").rglob("*")
                        if p.is_file() and key in str(p) and "metadata" not in p.name
                        and p.stat().st_size > 1000]
                check_eq(len(hits), 1, f"the origin object of {key}")
                return hits[0]
            flip_bit(origin_object(pick_blob, 0), 500)
            r = cl.nodes[1].get(f"/api/v1/tracks/{pick['id']}/stream")
            check_eq(r.status, 200, "a chunk cached on a peer, its origin copy damaged", r)
            check(hashlib.sha256(r.body).hexdigest() == cl.want[pick["id"]], "exact via the peer")
            cold = next(t for t in cl.tracks if t is not pick)
            cold_blob = blob_of[str(int(cold["id"], 16))]
            flip_bit(origin_object(cold_blob, 0), 500)
            r = cl.nodes[1].get(f"/api/v1/tracks/{cold['id']}/stream")
            check_eq(r.status, 503, "a damaged chunk cached nowhere", r)
        finally:
            cl.stop()


@test("origin down: chunks cached anywhere are served through peers; uncached ones get 503 with Retry-After within 2 s")
def _(tmp):
    with pg.server() as db:
        # Each source gives up on a dead origin within 700 ms: the owner,
        # then this node, inside the 2 s the issue allows.
        cl = Cluster(tmp, db, 3, origin_timeout_ms=700)
        try:
            warm = cl.tracks[:5]
            for t in warm:  # cached on node 0 (and on each chunk's owner)
                r = cl.nodes[0].get(f"/api/v1/tracks/{t['id']}/stream")
                check_eq(r.status, 200, "warm-up stream", r)
            cl.s3.kill_proxy()
            try:
                for nd in cl.nodes:
                    for t in warm:
                        r = nd.get(f"/api/v1/tracks/{t['id']}/stream", timeout=10)
                        check_eq(r.status, 200, "a chunk cached elsewhere, origin down", r)
                        check(hashlib.sha256(r.body).hexdigest() == cl.want[t["id"]],
                              "exact through peers")
                cold = cl.tracks[-1]
                s = time.monotonic()
                r = cl.nodes[1].get(f"/api/v1/tracks/{cold['id']}/stream", timeout=10)
                took = time.monotonic() - s
                check_eq(r.status, 503, "uncached chunk with the origin down", r)
                check(r.header("Retry-After"), "503 carries Retry-After", r)
                print(f"# 503 for an uncached chunk after {took:.2f} s")
                check(took <= 2.0, f"503 after {took:.2f} s (want <= 2)")
            finally:
                cl.s3.start_proxy()
        finally:
            cl.stop()


if __name__ == "__main__":
    main()
