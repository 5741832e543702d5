#!/usr/bin/python3
"""System tests of the console's API (docs/console.md) on a cluster of
three nodes on a real PostgreSQL: the overview from any node, another
node's figures through this one, a drain from afar (its health check
fails, new streams go elsewhere, a running one finishes byte-exact, the
audit trail has it), the streams in flight, a node killed and seen dead,
a join token made through the API and a fourth node joined with it, the
peer side's signature check, and the overview with PostgreSQL down.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_console_api.py [NAME...]
"""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    CHORUS_BIN, Node, RawConn, bearer, check, check_eq, chorus_env, ingest_ok, main, make_key,
    sha256_file, test, wait_for, wav_library)

BIG = 1_500_000  # frames: 6 MB tracks, more than the sockets buffer


def library():
    return wav_library("console-api-lib", 3, BIG, 997, seed=300)


class Cluster:
    def __init__(self, tmp, db, n=3):
        self.tmp, self.db = tmp, db
        self.src, self.files = library()
        self.origin = f"dir:{tmp / 'origin'}"
        ingest_ok(tmp / "ing", self.src, db=db.conninfo, origin=self.origin)
        self.nodes = [self.start(f"n{i}") for i in range(n)]
        self.ids = [n.get_json("/api/v1/node")["id"] for n in self.nodes]
        a = self.nodes[0]
        wait_for("every node alive in the overview",
                 lambda: a.get_json("/api/v1/overview")["health"]["alive"] == n, 10)
        self.tracks = a.get_json("/api/v1/tracks")["tracks"]

    def start(self, name, args=()):
        return Node(self.tmp / name, self.tmp / "logs", tag=name,
                    args=["--db", self.db.conninfo, "--origin", self.origin] + list(args))

    def stop(self):
        for n in self.nodes:
            if n.running():
                n.stop()

    def file_of(self, track):
        return next(f for f in self.files if f.stat().st_size == track["size_bytes"])


def overview_row(node, nid):
    rows = [r for r in node.get_json("/api/v1/overview")["nodes"] if r["id"] == nid]
    check_eq(len(rows), 1, f"node {nid} in the overview")
    return rows[0]


@test("the overview from any node: three alive, each with its figures, database and origin reachable")
def _(tmp):
    with pg.server() as db:
        c = Cluster(tmp, db)
        for i, n in enumerate(c.nodes):
            o = n.get_json("/api/v1/overview")
            h = o["health"]
            check_eq((h["alive"], h["suspect"], h["dead"]), (3, 0, 0), f"health from node {i}", o)
            check_eq(h["database"], {"kind": "postgres", "reachable": True}, "database", o)
            check_eq(h["origin"], {"kind": "dir", "reachable": True}, "origin", o)
            check(h["replication_lag_ms"] is not None and h["replication_lag_ms"] >= 0,
                  "a replication lag", o)
            check_eq(sorted(r["id"] for r in o["nodes"]), sorted(c.ids), "the nodes", o)
            check_eq([r["id"] for r in o["nodes"] if r["self"]], [c.ids[i]], "self", o)
            for r in o["nodes"]:
                check(r["answered"] and r["state"] == "alive" and r["drained"] is False
                      and r["version"] == n.version and r["uptime_s"] >= 0
                      and r["connections"] >= 0 and r["cache_budget_bytes"] > 0
                      and r["plays_queued"] is not None and r["address"].startswith("http://"),
                      f"row of {r['id']} from node {i}", r)
        # Figures move: streams on node 1 show in its row as seen from node 0.
        t = c.tracks[0]
        for _ in range(3):
            r = c.nodes[1].get(f"/api/v1/tracks/{t['id']}/stream")
            check_eq(r.status, 200, "a stream on node 1", r)
        wait_for("node 1's bytes per second, seen from node 0",
                 lambda: (overview_row(c.nodes[0], c.ids[1])["bytes_out_per_s"] or 0) > 0, 5)
        row = overview_row(c.nodes[0], c.ids[1])
        check(row["cache_hit_ratio"] is not None and 0 < row["cache_hit_ratio"] < 1,
              "node 1's hit ratio (2 hits of 3 for each chunk)", row)
        print(f"# node 1 from node 0: {row['requests_per_s']:.2f} req/s, "
              f"{row['bytes_out_per_s']:.0f} B/s, hit ratio {row['cache_hit_ratio']:.2f}")
        c.stop()


@test("another node's figures, series, log and streams through this one; unknown ids 404")
def _(tmp):
    with pg.server() as db:
        c = Cluster(tmp, db)
        a, b = c.nodes[0], c.nodes[1]
        t = c.tracks[0]
        check_eq(b.get(f"/api/v1/tracks/{t['id']}/stream").status, 200, "a stream on node 1")
        f = a.get_json(f"/api/v1/nodes/{c.ids[1]}")
        check_eq(f["id"], c.ids[1], "node 1's figures through node 0", f)
        check(f["cache"]["fills"] >= 1 and f["cache"]["misses"] >= 1, "node 1's fills", f)
        wait_for("node 1's second with the stream in its series, through node 0",
                 lambda: sum(a.get_json(f"/api/v1/nodes/{c.ids[1]}/series")["bytes_out"])
                 >= t["size_bytes"], 5)
        s = a.get_json(f"/api/v1/nodes/{c.ids[1]}/series")
        n = len(s["t"])
        for col in ("requests", "bytes_out", "errors_4xx", "errors_5xx", "cache_hits",
                    "cache_misses", "latency_p50_ms", "latency_p99_ms", "ttfb_p50_ms",
                    "ttfb_p99_ms"):
            check_eq(len(s[col]), n, f"series column {col}", s)
        check(any(v is not None and v > 0 for v in s["ttfb_p50_ms"]), "a stream's ttfb", s)
        since = s["t"][-1]
        s2 = a.get_json(f"/api/v1/nodes/{c.ids[1]}/series?since={since}")
        check(all(x > since for x in s2["t"]), "?since gives later seconds only", s2)
        lg = a.get_json(f"/api/v1/nodes/{c.ids[1]}/log")
        check_eq(lg["node"], c.ids[1], "node 1's log", lg)
        check(isinstance(lg["entries"], list) and isinstance(lg["next"], int), "log shape", lg)
        live = a.get_json(f"/api/v1/nodes/{c.ids[1]}/live")
        check_eq(live, {"node": c.ids[1], "streams": []}, "no stream on node 1 now")
        for path in ("/api/v1/nodes/0123456789abcdef", "/api/v1/nodes/xyz/series",
                     f"/api/v1/nodes/{c.ids[1]}/nope"):
            r = a.get(path)
            check_eq(r.status, 404, path, r)
            check(r.json()["error"]["message"], "an error message", r)
        r = a.request("GET", f"/api/v1/nodes/{c.ids[1]}/drain")
        check_eq(r.status, 405, "GET of a drain", r)
        c.stop()


@test("a drain from another node: health 503, new streams 503 and go elsewhere, a running one finishes byte-exact; audited; undrained")
def _(tmp):
    with pg.server() as db:
        c = Cluster(tmp, db)
        a, b = c.nodes[0], c.nodes[1]
        t = c.tracks[0]
        want = sha256_file(c.file_of(t))
        # A slow reader on node 1 holds its stream open: a small receive
        # buffer, nothing read until after the drain.
        slow = RawConn(b.port, timeout=30, rcvbuf=4096)
        slow.send(f"GET /api/v1/tracks/{t['id']}/stream HTTP/1.1\r\nHost: x\r\n".encode()
                  + b.auth_line() + b"\r\n")
        store = make_key(tmp / "cli", "store", db=db.conninfo, location="Shop A", zone="Bar")
        wait_for("the store key on node 1",
                 lambda: b.request("GET", "/api/v1/session", bearer(store)).status == 200, 5)
        wait_for("node 1's stream in /api/v1/live",
                 lambda: any(s["location"] == "" for n in a.get_json("/api/v1/live")["nodes"]
                             if n["node"] == c.ids[1] for s in n["streams"]), 5)
        r = a.request("POST", f"/api/v1/nodes/{c.ids[1]}/drain")
        check_eq((r.status, r.json()), (200, {"node": c.ids[1], "drained": True}), "drain", r)
        r = b.request("GET", "/health", auth=False)
        check_eq((r.status, r.json()), (503, {"status": "drained"}), "node 1's health", r)
        r = b.request("GET", f"/api/v1/tracks/{t['id']}/stream", bearer(store))
        check_eq(r.status, 503, "a new stream on the drained node", r)
        check_eq(r.header("retry-after"), "5", "Retry-After", r)
        r = c.nodes[2].request("GET", f"/api/v1/tracks/{t['id']}/stream", bearer(store))
        check_eq(r.status, 200, "the same stream on node 2", r)
        check_eq(hashlib.sha256(r.body).hexdigest(), want, "node 2's bytes")
        check_eq(overview_row(a, c.ids[1])["drained"], True, "the overview shows the drain")
        # The running stream finishes whole.
        got = slow.read_response()
        check_eq(got.status, 200, "the slow stream", got)
        check_eq(hashlib.sha256(got.body).hexdigest(), want, "the slow stream's bytes")
        audit = a.get_json("/api/v1/audit")["audit"]
        check(audit[0]["action"] == "node.drain" and audit[0]["object"] == c.ids[1]
              and audit[0]["actor"].startswith("key:"), "the drain in the audit trail", audit[:2])
        r = a.request("DELETE", f"/api/v1/nodes/{c.ids[1]}/drain")
        check_eq((r.status, r.json()), (200, {"node": c.ids[1], "drained": False}), "undrain", r)
        check_eq(b.request("GET", "/health", auth=False).status, 200, "node 1 healthy again")
        check_eq(b.request("GET", f"/api/v1/tracks/{t['id']}/stream", bearer(store)).status,
                 200, "node 1 streams again")
        check_eq(a.get_json("/api/v1/audit")["audit"][0]["action"], "node.undrain",
                 "the undrain in the audit trail")
        c.stop()


@test("a store's stream in flight shows in /api/v1/live with its location and zone")
def _(tmp):
    with pg.server() as db:
        c = Cluster(tmp, db)
        a, b = c.nodes[0], c.nodes[2]
        t = c.tracks[1]
        store = make_key(tmp / "cli", "store", db=db.conninfo, location="Shop A", zone="Bar")
        wait_for("the store key on node 2",
                 lambda: b.request("GET", "/api/v1/session", bearer(store)).status == 200, 5)
        slow = RawConn(b.port, timeout=30, rcvbuf=4096)
        slow.send(f"GET /api/v1/tracks/{t['id']}/stream HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {store}\r\n\r\n".encode())

        def mine():
            for n in a.get_json("/api/v1/live")["nodes"]:
                for s in n["streams"]:
                    if n["node"] == c.ids[2] and s["location"] == "Shop A":
                        return s
            return None
        wait_for("the store's stream in /api/v1/live", mine, 5)
        s = mine()
        check(s["track_id"] == t["id"] and s["zone"] == "Bar" and s["who"].startswith("key:")
              and abs(s["started"] - time.time()) < 30, "the stream's entry", s)
        got = slow.read_response()
        check_eq(got.status, 200, "the stream", got)
        wait_for("the stream gone from /api/v1/live", lambda: mine() is None, 5)
        check_eq(a.get_json("/api/v1/live")["unanswered"], [], "every node answered")
        c.stop()


@test("kill -9 a node: the overview marks it dead within 3 s; a join token from the API lets a fourth node in")
def _(tmp):
    with pg.server() as db:
        c = Cluster(tmp, db)
        a = c.nodes[0]
        c.nodes[2].kill9()
        t0 = time.monotonic()
        wait_for("node 2 dead in the overview",
                 lambda: overview_row(a, c.ids[2])["state"] == "dead", 3, step=0.05)
        took = time.monotonic() - t0
        print(f"# node 2 dead in node 0's overview {took:.2f} s after kill -9")
        o = a.get_json("/api/v1/overview")
        check_eq((o["health"]["alive"], o["health"]["dead"]), (2, 1), "health", o)
        row = overview_row(a, c.ids[2])
        check(row["answered"] is False and row["uptime_s"] is None, "no figures from it", row)
        r = a.get(f"/api/v1/nodes/{c.ids[2]}")
        check_eq(r.status, 502, "a dead node's figures", r)
        check("did not answer" in r.json()["error"]["message"], "the message", r)
        check_eq(a.get_json("/api/v1/live")["unanswered"], [], "a dead node is not asked")
        # A join token through the API, and a fourth node with it.
        r = a.request("POST", "/api/v1/cluster/tokens", {"Content-Type": "application/json"},
                      json.dumps({"ttl_hours": 2}))
        check_eq(r.status, 201, "POST /api/v1/cluster/tokens", r)
        tok = r.json()
        check(tok["token"].startswith("chorus1.") and tok["token"] in tok["command"]
              and f"--join {a.get_json('/api/v1/node')['address']}" in tok["command"],
              "the token and its command", tok)
        exp = time.mktime(time.strptime(tok["expires"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        check(abs(exp - (time.time() + 7200)) < 120, "expires in 2 hours", tok)
        audit = a.get_json("/api/v1/audit")["audit"][0]
        check(audit["action"] == "token.create" and tok["token"] not in json.dumps(audit),
              "the audit row, without the token", audit)
        for bad in ('{"ttl_hours": 0}', '{"ttl_hours": "x"}', "[1]", "{"):
            r = a.request("POST", "/api/v1/cluster/tokens", {"Content-Type": "application/json"},
                          bad)
            check_eq(r.status, 400, f"a bad body {bad}", r)
        d = Node(tmp / "n3", tmp / "logs", tag="n3",
                 args=["--join", a.get_json("/api/v1/node")["address"], "--token", tok["token"]])
        wait_for("four nodes, three alive, in the overview",
                 lambda: a.get_json("/api/v1/overview")["health"]["alive"] == 3
                 and len(a.get_json("/api/v1/overview")["nodes"]) == 4, 10)
        did = d.get_json("/api/v1/node")["id"]
        check(overview_row(a, did)["answered"], "the new node answers")
        d.stop()
        c.stop()


@test("the peer side: /internal/node wants a signature; PostgreSQL down, the overview still answers")
def _(tmp):
    with pg.server() as db:
        c = Cluster(tmp, db, n=2)
        a, b = c.nodes
        for m, p in (("GET", "/internal/node/node"), ("POST", "/internal/node/drain"),
                     ("GET", "/internal/node/series")):
            r = b.request(m, p, auth=False)
            check_eq(r.status, 401, f"{m} {p} unsigned", r)
            r = b.request(m, p, {"X-Chorus-Node": c.ids[0], "X-Chorus-Time": str(int(time.time())),
                                 "X-Chorus-Signature": hmac.new(b"x" * 32, b"m",
                                                                hashlib.sha256).hexdigest()})
            check_eq(r.status, 401, f"{m} {p} with a wrong signature", r)
        check_eq(b.request("GET", "/health", auth=False).status, 200, "not drained by any of it")
        db.kill9()
        wait_for("the database unreachable in the overview",
                 lambda: a.get_json("/api/v1/overview")["health"]["database"]["reachable"]
                 is False, 10)
        o = a.get_json("/api/v1/overview")
        check_eq(o["health"]["alive"], 2, "both alive (probed directly)", o)
        check(all(r["answered"] for r in o["nodes"]), "both answer", o)
        r = a.request("POST", f"/api/v1/nodes/{c.ids[1]}/drain")
        check_eq(r.status, 200, "a drain with PostgreSQL down", r)
        check_eq(b.request("GET", "/health", auth=False).status, 503, "node 1 drained")
        check_eq(a.request("DELETE", f"/api/v1/nodes/{c.ids[1]}/drain").status, 200, "undrain")
        c.stop()


@test("a standalone node: the overview of one, no join tokens (409), drain and undrain")
def _(tmp):
    src, _ = library()
    ingest_ok(tmp / "d", src)
    n = Node(tmp / "d", tmp / "logs")
    o = n.get_json("/api/v1/overview")
    check_eq((o["health"]["alive"], o["health"]["database"]["kind"], len(o["nodes"])),
             (1, "sqlite", 1), "the overview", o)
    r = n.request("POST", "/api/v1/cluster/tokens")
    check_eq(r.status, 409, "a token on a standalone node", r)
    check_eq(n.request("POST", "/api/v1/node/drain").json()["drained"], True, "drain")
    check_eq(n.request("GET", "/health", auth=False).status, 503, "health drained")
    check_eq(n.request("DELETE", "/api/v1/node/drain").json()["drained"], False, "undrain")
    check_eq(n.request("GET", "/health", auth=False).status, 200, "health back")
    n.stop()


@test("a console that moves: its login's token is a session on another node, cross-origin (CORS), with no CSRF token; a cookie still needs one")
def _(tmp):
    with pg.server() as db:
        c = Cluster(tmp, db, n=2)
        a, b = c.nodes
        p = subprocess.run([CHORUS_BIN, "user", "add", "olga", "--role", "admin", "--data",
                            str(tmp / "cli"), "--db", db.conninfo], input=b"olga-pass-123\n",
                           capture_output=True, env=chorus_env(), timeout=60)
        check_eq(p.returncode, 0, f"user add olga: {p.stderr!r}")
        ct = {"Content-Type": "application/json"}
        body = json.dumps({"user": "olga", "password": "olga-pass-123"})
        wait_for("olga on node 0", lambda: a.request("POST", "/api/v1/session", ct, body,
                                                     auth=False).status == 200, 5)
        r = a.request("POST", "/api/v1/session", ct, body, auth=False)
        s = r.json()
        check(s["token"] and s["token"] in r.header("set-cookie"), "the token is the session", s)
        origin = {"Origin": f"http://127.0.0.1:{a.port}"}
        # The browser's preflight for a write with the header, to node 1.
        r = b.request("OPTIONS", f"/api/v1/nodes/{c.ids[1]}/drain",
                      {**origin, "Access-Control-Request-Method": "POST",
                       "Access-Control-Request-Headers": "authorization"}, auth=False)
        check_eq(r.status, 204, "the preflight", r)
        check_eq(r.header("access-control-allow-origin"), "*", "any origin", r)
        check("POST" in r.header("access-control-allow-methods", "")
              and "Authorization" in r.header("access-control-allow-headers", ""),
              "the methods and headers", r)
        sess = {"Authorization": "Session " + s["token"]}
        r = b.request("GET", "/api/v1/overview", {**origin, **sess})
        check_eq(r.status, 200, "the overview from node 1 with the session header", r)
        check_eq(r.header("access-control-allow-origin"), "*", "CORS on the answer", r)
        check_eq(b.request("GET", "/api/v1/session", sess).json()["user"], "olga", "who")
        r = b.request("POST", f"/api/v1/nodes/{c.ids[0]}/drain", {**origin, **sess})
        check_eq(r.status, 200, "a write with the session header needs no CSRF token", r)
        check_eq(a.request("GET", "/health", auth=False).status, 503, "node 0 drained")
        cookie = {"Cookie": "chorus_session=" + s["token"]}
        r = b.request("DELETE", f"/api/v1/nodes/{c.ids[0]}/drain", cookie, auth=False)
        check_eq(r.status, 403, "the same session as a cookie without its CSRF token", r)
        r = b.request("DELETE", f"/api/v1/nodes/{c.ids[0]}/drain",
                      {**cookie, "X-CSRF-Token": s["csrf_token"]}, auth=False)
        check_eq(r.status, 200, "with it", r)
        r = b.request("GET", "/api/v1/overview", {"Authorization": "Session x.y.z"})
        check_eq(r.status, 401, "a forged session header", r)
        check("access-control-allow-origin" not in r.headers, "no CORS without an Origin", r)
        check_eq(b.request("GET", "/health", {**origin}, auth=False)
                 .header("access-control-allow-origin"), None, "none outside /api/")
        c.stop()


if __name__ == "__main__":
    main()
