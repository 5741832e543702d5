#!/usr/bin/python3
"""A node cut off from the others: one node runs in a network namespace
made by this test (veth to the host), PostgreSQL, the S3 origin and two
more nodes on the host; the link goes down for 20 s.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_cluster_netns.py

Needs root (ip netns). Traffic stays on the veth pair this test made and
on loopback: PostgreSQL and the S3 proxy are reached from the namespace
through relays bound to the host's end of the veth.
"""

import hashlib
import os
import random
import re
import select
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    CHORUS_BIN, Node, check, check_eq, chorus_env, fail, ingest_ok, main, test, wait_for)
from s3 import S3Server  # noqa: E402
from cluster_lib import NTRACKS, library  # noqa: E402

CUT_S = float(os.environ.get("CHORUS_TEST_CUT_S", "20"))
NS = f"chorus-t{os.getpid()}"
HOST_IF, NS_IF = f"chv{os.getpid() % 100000}h", f"chv{os.getpid() % 100000}n"
HOST_IP, NS_IP = "10.231.7.1", "10.231.7.2"


def sh(*args, check_rc=True):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: {r.stderr}")
    return r


def netns_up():
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    sh("ip", "link", "set", NS_IF, "netns", NS)
    sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF)
    sh("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
    sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
    sh("ip", "netns", "exec", NS, "ip", "route", "add", "default", "via", HOST_IP)


def netns_down():
    sh("ip", "link", "del", HOST_IF, check_rc=False)
    sh("ip", "netns", "del", NS, check_rc=False)


class Relay:
    """HOST_IP:port -> 127.0.0.1:target, both ways, a thread per connection."""

    def __init__(self, target):
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST_IP, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.pipe, args=(c,), daemon=True).start()

    def pipe(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            c.close()
            return
        socks = [c, u]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 60)
                if not r:
                    break
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (u if s is c else c).sendall(data)
        except OSError:
            pass
        finally:
            c.close()
            u.close()

    def close(self):
        self.sock.close()


def ns_get(port, path, timeout=10):
    """GET from inside the namespace (the cut node's own clients)."""
    r = subprocess.run(["ip", "netns", "exec", NS, "curl", "-s", "-o", "-", "-w", "\n%{http_code}",
                        "--max-time", str(timeout), f"http://{NS_IP}:{port}{path}"],
                       capture_output=True)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code or b"0"), body


@test(f"a node cut off for {CUT_S:.0f} s serves its cached tracks to its own clients; the others route around it; it comes back intact")
def _(tmp):
    if os.geteuid() != 0:
        fail("needs root for ip netns")
    netns_down()
    netns_up()
    s3 = S3Server.shared()
    relays, cut = [], None
    try:
        with pg.server() as db:
            pg_relay, s3_relay = Relay(db.port), Relay(s3.port)
            relays += [pg_relay, s3_relay]
            src, files = library()
            prefix = f"netns-{os.getpid()}-{random.randrange(1 << 30)}"
            origin = s3.spec(prefix) + "&timeout_ms=1500"
            ingest_ok(tmp / "ingest", src, db=db.conninfo, origin=origin, env=s3.env())
            # The host's nodes listen on every address: the namespace reaches
            # them at the machine's own address through its default route.
            hosts = [Node(tmp / f"h{i}", tmp / "logs",
                          args=["--listen", "0.0.0.0:0", "--db", db.conninfo, "--origin", origin],
                          env=s3.env(), tag=f"h{i}") for i in range(2)]
            ns_conninfo = re.sub(r"host=\S+", f"host={HOST_IP}",
                                 re.sub(r"port=\d+", f"port={pg_relay.port}", db.conninfo))
            ns_origin = origin.replace(f"127.0.0.1:{s3.port}", f"{HOST_IP}:{s3_relay.port}")
            log = open(tmp / "logs" / "cut.err", "wb")
            cut = subprocess.Popen(
                ["ip", "netns", "exec", NS, CHORUS_BIN, "serve", "--data", tmp / "cut",
                 "--listen", f"{NS_IP}:0", "--db", ns_conninfo, "--origin", ns_origin],
                env=chorus_env(s3.env()), stdout=subprocess.PIPE, stderr=log,
                stdin=subprocess.DEVNULL, start_new_session=True)
            line = cut.stdout.readline().decode()
            m = re.search(r":(\d+)/\s*$", line)
            check(m, f"the cut node did not start: {line!r}")
            port = int(m.group(1))

            def states(node):
                return {n["address"]: n["state"] for n in node.get_json("/api/v1/cluster")["nodes"]}

            cut_addr = f"http://{NS_IP}:{port}"
            wait_for("three nodes alive",
                     lambda: states(hosts[0]).get(cut_addr) == "alive" and
                     sum(s == "alive" for s in states(hosts[0]).values()) == 3, 10, step=0.1,
                     context=lambda: states(hosts[0]))
            tracks = hosts[0].get_json("/api/v1/tracks?limit=100")["tracks"]
            by_size = {f.stat().st_size: f for f in files}
            want = {t["id"]: hashlib.sha256(by_size[t["size_bytes"]].read_bytes()).hexdigest()
                    for t in tracks}
            mine = tracks[:5]  # played on the cut node before the cut: in its cache
            for t in mine:
                code, body = ns_get(port, t["stream_url"])  # signed: no key on the wire
                check_eq(code, 200, "a stream on the cut node before the cut")
                check(hashlib.sha256(body).hexdigest() == want[t["id"]], "exact before the cut")

            sh("ip", "link", "set", HOST_IF, "down")
            cut_at = time.monotonic()
            others_ok, own_ok, seen_dead = 0, 0, None
            rnd = random.Random(5)
            while time.monotonic() - cut_at < CUT_S:
                t = rnd.choice(tracks)
                nd = hosts[rnd.randrange(2)]
                r = nd.get(f"/api/v1/tracks/{t['id']}/stream", timeout=20)
                check_eq(r.status, 200, "a stream on a host node during the cut", r)
                check(hashlib.sha256(r.body).hexdigest() == want[t["id"]], "exact during the cut")
                others_ok += 1
                t = rnd.choice(mine)
                code, body = ns_get(port, t["stream_url"])  # signed: no key on the wire
                check_eq(code, 200, "the cut node serving its cache to its own clients")
                check(hashlib.sha256(body).hexdigest() == want[t["id"]], "exact on the cut node")
                own_ok += 1
                if seen_dead is None and states(hosts[0]).get(cut_addr) == "dead":
                    seen_dead = time.monotonic() - cut_at
            print(f"# during the cut: {others_ok} streams on the host nodes and {own_ok} on the "
                  f"cut node, all exact; the others saw it dead after {seen_dead:.2f} s"
                  if seen_dead is not None else "# the cut node was never seen dead")
            check(seen_dead is not None and seen_dead <= 3.0, "the cut node seen dead within 3 s")
            sh("ip", "link", "set", HOST_IF, "up")
            wait_for("the cut node alive again after the link returned",
                     lambda: states(hosts[0]).get(cut_addr) == "alive", 15, step=0.2,
                     context=lambda: states(hosts[0]))
            print(f"# alive again {time.monotonic() - cut_at - CUT_S:.1f} s after the link returned")
            for t in tracks[:NTRACKS:3]:
                code, body = ns_get(port, t["stream_url"])  # signed: no key on the wire
                check_eq(code, 200, "a stream on the cut node after the cut")
                check(hashlib.sha256(body).hexdigest() == want[t["id"]], "exact after the cut")
            for nd in hosts:
                nd.stop()
    finally:
        if cut and cut.poll() is None:
            cut.terminate()
            try:
                cut.wait(20)
            except subprocess.TimeoutExpired:
                cut.kill()
        for r in relays:
            r.close()
        netns_down()


if __name__ == "__main__":
    main()
