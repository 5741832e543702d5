#!/usr/bin/python3
"""System tests for cluster membership: nodes heartbeat through a real
PostgreSQL server (tests/system/pg.py), judge each other alive, suspect or
dead, probe each other directly while PostgreSQL is down, and show it all
in GET /api/v1/cluster and `chorus status`. Nodes on loopback ports.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_cluster_nodes.py [NAME...]

Detection times are printed as TAP comments ("# dead after X s").
"""

import json
import os
import re
import signal
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import Node, check, check_eq, fail, main, run_chorus, test, wait_for  # noqa: E402

DEAD_AFTER_S = 2.0
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def start(tmp, name, db, args=()):
    return Node(tmp / name, tmp / "logs", args=["--db", db] + [str(a) for a in args], tag=name)


def node_id(node):
    return (node.data / "node.id").read_text().strip()


def view(node):
    """{id: node object} from the node's /api/v1/cluster."""
    return {n["id"]: n for n in node.get_json("/api/v1/cluster")["nodes"]}


def states(node):
    return {i: n["state"] for i, n in view(node).items()}


def all_alive(observers, ids):
    return all(all(states(o).get(i) == "alive" for i in ids) for o in observers)


def seen_as(observers, target_id, state):
    return all(states(o).get(target_id) == state for o in observers)


def three(tmp, db, extra=None):
    """Three nodes, sites eu-1, eu-1, us-1, all seeing each other alive."""
    extra = extra or {}
    nodes = [start(tmp, f"n{i}", db, ["--site", site] + extra.get(i, []))
             for i, site in ((1, "eu-1"), (2, "eu-1"), (3, "us-1"))]
    ids = [node_id(n) for n in nodes]
    _, took = wait_for("three nodes alive on each", lambda: all_alive(nodes, ids), 10)
    return nodes, ids, took


@test("three nodes on one PostgreSQL see each other alive within 2 s, with their addresses, sites and figures; chorus status lists them")
def _(tmp):
    with pg.server() as db:
        n1 = start(tmp, "n1", db.conninfo, ["--site", "eu-1"])
        n2 = start(tmp, "n2", db.conninfo, ["--site", "eu-1"])
        n3 = start(tmp, "n3", db.conninfo, ["--site", "us-1"])
        nodes = [n1, n2, n3]
        ids = [node_id(n) for n in nodes]
        _, took = wait_for("three nodes alive on each", lambda: all_alive(nodes, ids),
                           DEAD_AFTER_S)
        print(f"# all three alive on every node {took:.3f} s after the third listened")
        check(len(set(ids)) == 3, f"three distinct ids: {ids}")
        sites = {ids[0]: "eu-1", ids[1]: "eu-1", ids[2]: "us-1"}
        for n, me in zip(nodes, ids):
            j = n.get_json("/api/v1/cluster")
            check_eq(j["postgres_connected"], True, "postgres_connected")
            check_eq(len(j["nodes"]), 3, "nodes listed")
            for m in j["nodes"]:
                owner = nodes[ids.index(m["id"])]
                check_eq(m["address"], f"http://127.0.0.1:{owner.port}", "address")
                check_eq(m["site"], sites[m["id"]], "site")
                check_eq(m["self"], m["id"] == me, "self")
                check(RFC3339_MS.match(m["last_heartbeat"] or ""),
                      f"last_heartbeat {m['last_heartbeat']!r}")
                check(0 <= m["heartbeat_age_ms"] < 1500, f"heartbeat_age_ms {m}")
                check(m["cache"]["budget_bytes"] == 1 << 30, f"cache figures: {m}")
                for k in ("bytes", "chunks", "hits", "misses", "origin_reads",
                          "origin_bytes", "evictions"):
                    check(isinstance(m["cache"][k], int), f"cache.{k}: {m}")
                check(isinstance(m["replication_lag_ms"], int), f"replication_lag_ms: {m}")
            order = [(m["site"], m["address"]) for m in j["nodes"]]
            check_eq(order, sorted(order), "nodes sorted by site, address")
        rows = db.query("SELECT id, address, site FROM nodes ORDER BY id")
        check_eq(sorted(rows), sorted([[i, f"http://127.0.0.1:{n.port}", sites[i]]
                                       for i, n in zip(ids, nodes)]), "rows in PostgreSQL")

        # The node's identity file.
        for n in nodes:
            p = n.data / "node.id"
            check_eq(stat.S_IMODE(p.stat().st_mode), 0o600, f"mode of {p}")
            check(re.fullmatch(r"[0-9a-f]{16}\n", p.read_text()), f"{p}: {p.read_text()!r}")

        # Stable over a few heartbeats: no flapping.
        for _ in range(30):
            for n in nodes:
                st = states(n)
                check(all(st[i] == "alive" for i in ids), f"a live node not alive: {st}")
            time.sleep(0.1)

        r = run_chorus(["status", "--url", f"http://127.0.0.1:{n2.port}/"])
        check_eq(r.rc, 1, "chorus status without a key", r)
        check("set CHORUS_KEY to an admin" in r.err, "says what it needs", r)
        r = run_chorus(["status", "--url", f"http://127.0.0.1:{n2.port}/"],
                       env={"CHORUS_KEY": n2.key})
        check_eq(r.rc, 0, "chorus status", r)
        for i, n in zip(ids, nodes):
            check(i in r.out and f"http://127.0.0.1:{n.port}" in r.out,
                  f"chorus status lists {i}", r)
        check("*" + ids[1] in r.out, "chorus status marks the node asked", r)
        check("3 nodes: 3 alive, 0 suspect, 0 dead" in r.out, "chorus status summary", r)
        print("# " + "\n# ".join(r.out.rstrip().splitlines()))
        r = run_chorus(["status", "--url", "http://127.0.0.1:1"])
        check_eq(r.rc, 1, "chorus status of nothing", r)
        check("cannot reach the node at http://127.0.0.1:1" in r.err, "a clear message", r)
        for n in nodes:
            n.stop()


@test("kill -9: the others see the node dead within 2.5 s; restarted on its data directory it is the same node, alive again")
def _(tmp):
    with pg.server() as db:
        nodes, ids, _ = three(tmp, db.conninfo, {2: ["--dead-after", "1500"]})
        n1, n2, n3 = nodes
        # Killed just after its first heartbeat (three() returns as soon as
        # it is seen): the worst case, dead_after after that heartbeat.
        n3.kill9()
        t0 = time.monotonic()
        took = {}
        while len(took) < 2:
            for name, n in (("n1 (2000 ms)", n1), ("n2 (1500 ms)", n2)):
                if name not in took and states(n).get(ids[2]) == "dead":
                    took[name] = time.monotonic() - t0
            if time.monotonic() - t0 > 5:
                fail(f"the killed node is not dead everywhere after 5 s: {took}")
            time.sleep(0.01)
        for name, t in took.items():
            print(f"# dead after {t:.3f} s as seen by {name}")
        check(took["n1 (2000 ms)"] <= 2.5, f"dead after {took['n1 (2000 ms)']:.3f} s")
        check(took["n2 (1500 ms)"] <= 2.0, f"dead after {took['n2 (1500 ms)']:.3f} s")
        for n in (n1, n2):
            check(all(states(n)[i] == "alive" for i in ids[:2]), "the others stay alive")

        n3b = start(tmp, "n3", db.conninfo, ["--site", "us-1"])
        check_eq(node_id(n3b), ids[2], "the restarted node's id")
        _, took = wait_for("the restarted node alive on every node",
                           lambda: all_alive([n1, n2, n3b], ids), 5)
        print(f"# restarted node alive everywhere {took:.3f} s after it listened")
        for n in (n1, n2, n3b):
            v = view(n)
            check_eq(len(v), 3, "still three nodes")
            check_eq(v[ids[2]]["address"], f"http://127.0.0.1:{n3b.port}", "its new address")
        for n in (n1, n2, n3b):
            n.stop()


@test("SIGTERM: the others see the node dead at once")
def _(tmp):
    with pg.server() as db:
        nodes, ids, _ = three(tmp, db.conninfo)
        n1, n2, n3 = nodes
        os.kill(n3.pid, signal.SIGTERM)
        _, took = wait_for("the stopped node dead on the others",
                           lambda: seen_as([n1, n2], ids[2], "dead"), 2)
        print(f"# dead after {took:.3f} s (SIGTERM, as seen by both others)")
        check(took < 1.0, f"dead after {took:.3f} s, want at once")
        n3.stop()
        for n in (n1, n2):
            m = view(n)[ids[2]]
            check_eq((m["state"], m["last_heartbeat"], m["heartbeat_age_ms"]),
                     ("dead", None, None), "a node that left")
        # Long after: still listed, still dead.
        time.sleep(DEAD_AFTER_S + 0.5)
        check_eq(states(n1), {ids[0]: "alive", ids[1]: "alive", ids[2]: "dead"}, "states")
        n1.stop()
        n2.stop()


@test("PostgreSQL stopped: nodes keep the list and probe each other; a node killed meanwhile is dead by probes")
def _(tmp):
    with pg.server() as db:
        nodes, ids, _ = three(tmp, db.conninfo)
        n1, n2, n3 = nodes
        db.stop()
        t0 = time.monotonic()
        wait_for("nodes notice PostgreSQL is gone",
                 lambda: all(not n.get_json("/api/v1/cluster")["postgres_connected"]
                             for n in nodes), 5)
        # Over three dead intervals, every node keeps seeing every node alive.
        while time.monotonic() - t0 < 3 * DEAD_AFTER_S:
            for n in nodes:
                st = states(n)
                check_eq(st, {i: "alive" for i in ids},
                         f"the view on :{n.port}, {time.monotonic() - t0:.2f} s after"
                         f" PostgreSQL stopped")
            time.sleep(0.05)

        n3.kill9()
        t0 = time.monotonic()
        _, took = wait_for("the killed node dead on the others by probes",
                           lambda: seen_as([n1, n2], ids[2], "dead"), 5, step=0.01)
        print(f"# dead after {took:.3f} s (PostgreSQL down: direct probes)")
        check(took <= 2.5, f"dead after {took:.3f} s")
        for n in (n1, n2):
            check_eq(states(n), {ids[0]: "alive", ids[1]: "alive", ids[2]: "dead"}, "states")
        r = run_chorus(["status", "--url", f"http://127.0.0.1:{n1.port}"],
                       env={"CHORUS_KEY": n1.key})
        check_eq(r.rc, 0, "chorus status", r)
        check("2 alive, 0 suspect, 1 dead" in r.out and "PostgreSQL unreachable" in r.out,
              "chorus status while PostgreSQL is down", r)

        # PostgreSQL back: its rows rule again, and agree.
        db.start()
        _, took = wait_for("nodes back on PostgreSQL",
                           lambda: all(n.get_json("/api/v1/cluster")["postgres_connected"]
                                       for n in (n1, n2)), 10)
        print(f"# back on PostgreSQL {took:.3f} s after it started")
        time.sleep(0.5)
        for n in (n1, n2):
            check_eq(states(n), {ids[0]: "alive", ids[1]: "alive", ids[2]: "dead"},
                     "states with PostgreSQL back")
        n1.stop()
        n2.stop()


@test("a standalone node lists itself; --advertise and --site are what it shows")
def _(tmp):
    n = Node(tmp / "solo", tmp / "logs", args=["--advertise", "http://music.example:9000/",
                                                "--site", "lab"])
    j = n.get_json("/api/v1/cluster")
    check_eq(j["postgres_connected"], None, "postgres_connected")
    check_eq(len(j["nodes"]), 1, "one node")
    m = j["nodes"][0]
    check_eq((m["id"], m["address"], m["site"], m["state"], m["self"]),
             (node_id(n), "http://music.example:9000", "lab", "alive", True), "itself")
    check(m["cache"]["budget_bytes"] == 1 << 30, f"its figures: {m}")
    r = run_chorus(["status", "--url", f"http://127.0.0.1:{n.port}"], env={"CHORUS_KEY": n.key})
    check_eq(r.rc, 0, "chorus status", r)
    check("1 node: 1 alive" in r.out and "standalone" in r.out, "status of a standalone node", r)
    first = node_id(n)
    n.stop()
    # Listening on every address: a non-loopback address of this machine.
    n = Node(tmp / "solo", tmp / "logs", args=["--listen", "0.0.0.0:0"])
    m = n.get_json("/api/v1/cluster")["nodes"][0]
    check_eq(m["id"], first, "the same id after a restart")
    mm = re.fullmatch(r"http://(\d+\.\d+\.\d+\.\d+):(\d+)", m["address"])
    check(mm and int(mm.group(2)) == n.port and mm.group(1) != "0.0.0.0",
          f"default address on 0.0.0.0: {m['address']}")
    print(f"# listening on 0.0.0.0 advertises {m['address']}")
    n.stop()
    r = run_chorus(["serve", "--data", tmp / "x", "--advertise", "ftp://x"])
    check_eq(r.rc, 2, "a bad --advertise", r)
    r = run_chorus(["serve", "--data", tmp / "x", "--dead-after", "100"])
    check_eq(r.rc, 2, "a too short --dead-after", r)


@test("chorus status finds the node: --url, else $CHORUS_URL, else the URL recorded in DATA/node.json, else 127.0.0.1:8080")
def _(tmp):
    data = tmp / "solo"
    n = Node(data, tmp / "logs")
    url = f"http://127.0.0.1:{n.port}"
    check_eq(json.loads((data / "node.json").read_text()), {"url": url}, "DATA/node.json")
    key = {"CHORUS_KEY": n.key}
    r = run_chorus(["status", "--data", data], env=key)
    check_eq(r.rc, 0, "chorus status --data", r)
    check(url in r.out and "1 node: 1 alive" in r.out, "status of the node serving DATA", r)
    r = run_chorus(["status"], env={"CHORUS_DATA": data, **key})
    check(r.rc == 0 and url in r.out, "status with $CHORUS_DATA", r)
    r = run_chorus(["status", "--data", data], env={"CHORUS_URL": "http://127.0.0.1:1", **key})
    check_eq(r.rc, 1, "$CHORUS_URL before the record", r)
    check("cannot reach the node at http://127.0.0.1:1 ($CHORUS_URL)" in r.err,
          "the message names $CHORUS_URL", r)
    r = run_chorus(["status", "--url", url, "--data", tmp / "none"],
                   env={"CHORUS_URL": "http://127.0.0.1:1", **key})
    check(r.rc == 0 and url in r.out, "--url before $CHORUS_URL", r)
    # Nothing recorded: the default (which something else on this machine may answer).
    r = run_chorus(["status", "--data", tmp / "none"])
    check(r.rc == 0 or "http://127.0.0.1:8080" in r.err, "the default URL", r)
    n.stop()
    r = run_chorus(["status", "--data", data])
    check_eq(r.rc, 1, "status of a stopped node", r)
    check(f"cannot reach the node at {url} (from {data}/node.json)" in r.err,
          "the message says where the URL came from", r)
    # Every address: the record names loopback, and a restart rewrites it.
    n = Node(data, tmp / "logs", args=["--listen", "0.0.0.0:0"])
    check_eq(json.loads((data / "node.json").read_text()), {"url": f"http://127.0.0.1:{n.port}"},
             "DATA/node.json of a node on 0.0.0.0")
    r = run_chorus(["status", "--data", data], env=key)
    check(r.rc == 0 and "1 node: 1 alive" in r.out, "status after a restart on another port", r)
    n.stop()
    (data / "node.json").write_text('{"url": 5}')
    r = run_chorus(["status", "--data", data])
    check(r.rc == 1 and "node.json holds no node URL" in r.err, "a broken record", r)


if __name__ == "__main__":
    main()
