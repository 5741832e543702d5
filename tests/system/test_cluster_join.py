#!/usr/bin/python3
"""System tests for joining a cluster with a token: `chorus cluster token` on
a member, `chorus serve --join URL --token TOKEN` on a new node. A member
with a real PostgreSQL (tests/system/pg.py; a role with a password in the
conninfo) and an S3 origin that checks signatures (tests/system/s3.py).

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_cluster_join.py [NAME...]

The join to serving and to a stream's first byte are printed as TAP
comments ("# join to serving: X s").
"""

import atexit
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import socket
import stat
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    Node, catalog, check, check_eq, fail, ingest_ok, main, run_chorus, test, wait_for,
    wav_library)
from s3 import S3Server  # noqa: E402

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402

NTRACKS = 3
AWS_KEY = "S3RVER"  # the one key id s3rver knows; the proxy checks the secret
AWS_SECRET = "join-test-secret-" + secrets.token_hex(12)
NO_AWS = {k: None for k in os.environ if k.startswith("AWS_")}
TOKEN_RE = re.compile(r"^chorus1\.([0-9a-f]{32})\.([0-9a-f]{64})$")

_S3 = []


def s3():
    """An S3 endpoint of our own, with distinctive credentials to look for."""
    if not _S3:
        _S3.append(S3Server(key=AWS_KEY, secret=AWS_SECRET))
        atexit.register(_S3[0].close)
    return _S3[0]


def library():
    return wav_library("join-lib", NTRACKS, 150_000, 991, seed=100)


# ------------------------------------------------------------------ the protocol, in Python

def token_parts(token):
    m = TOKEN_RE.match(token)
    check(m, f"a token: {token!r}")
    return bytes.fromhex(m.group(1)), bytes.fromhex(m.group(2))


def make_token(key, expires):
    t = struct.pack(">Q", expires) + os.urandom(8)
    mac = hmac.new(key, b"chorus join token" + t, hashlib.sha256).digest()
    return f"chorus1.{t.hex()}.{mac.hex()}"


def join_body(token, port=0, now=None, nonce=None, mac=None):
    t, real_mac = token_parts(token)
    mac = mac or real_mac
    nonce = nonce or os.urandom(16).hex()
    now = int(time.time()) if now is None else now
    proof = hmac.new(mac, f"join\n{nonce}\n{now}\n{port}".encode(), hashlib.sha256).hexdigest()
    return json.dumps({"t": t.hex(), "nonce": nonce, "time": now, "port": port,
                       "proof": proof}).encode(), nonce


def open_answer(token, nonce, answer):
    _, mac = token_parts(token)
    key = hmac.new(mac, f"join config\n{nonce}\n{answer['nonce_member']}".encode(),
                   hashlib.sha256).digest()
    plain = ChaCha20Poly1305(key).decrypt(b"\0" * 12, bytes.fromhex(answer["sealed"]),
                                          b"chorus-chunk-v1")
    return json.loads(plain)


def post_join(port, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", "/internal/join", body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ------------------------------------------------------------------ a recording relay

class Relay:
    """127.0.0.1:PORT forwarded to 127.0.0.1:target, every byte recorded."""

    def __init__(self, target):
        self.target = target
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.up, self.down = [], []  # client to server, server to client
        self.lock = threading.Lock()
        self.socks = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [c, s]
            threading.Thread(target=self._pump, args=(c, s, self.up), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, self.down), daemon=True).start()

    def _pump(self, src, dst, record):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                with self.lock:
                    record.append(d)
                dst.sendall(d)
        except OSError:
            pass
        finally:
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def capture(self):
        with self.lock:
            return b"".join(self.up), b"".join(self.down)

    def close(self):
        self.closed = True
        self.lsock.close()
        for s in self.socks:
            s.close()


# ------------------------------------------------------------------ a member

class Member:
    """PostgreSQL with a password role, the S3 origin, a library ingested, and
    one member node serving it."""

    def __init__(self, tmp, db):
        self.tmp, self.db = tmp, db
        self.password = "pg-secret-" + secrets.token_hex(10)
        db.psql("postgres", f"CREATE ROLE chorus_app LOGIN PASSWORD '{self.password}'")
        db.psql("postgres", "ALTER DATABASE chorus OWNER TO chorus_app")
        db.query("ALTER SCHEMA public OWNER TO chorus_app")
        self.conninfo = (f"host=127.0.0.1 port={db.port} dbname=chorus user=chorus_app"
                         f" password={self.password} connect_timeout=2")
        self.s3 = s3()
        self.origin = self.s3.spec(f"join-{os.getpid()}-{secrets.token_hex(4)}")
        self.env = self.s3.env()
        self.src, self.files = library()
        ingest_ok(tmp / "ingest", self.src, db=self.conninfo, origin=self.origin, env=self.env)
        self.node = Node(tmp / "member", tmp / "logs",
                         args=["--db", self.conninfo, "--origin", self.origin],
                         env=self.env, tag="member")
        self.url = f"http://127.0.0.1:{self.node.port}"

    def token(self, *args):
        r = run_chorus(["cluster", "token", "--data", self.node.data] + list(args))
        check_eq(r.rc, 0, "chorus cluster token", r)
        tok = r.out.rstrip("\n").splitlines()[-1]
        token_parts(tok)
        return tok

    def cluster_key(self):
        with catalog(self.node.data) as cat:
            return bytes(cat.value("SELECT cluster_key FROM replica"))

    def view(self):
        return {n["id"]: n for n in self.node.get_json("/api/v1/cluster")["nodes"]}


def node_id(data):
    return (data / "node.id").read_text().strip()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def refused_join(tmp, url, token, what, want):
    d = tmp / f"refused-{secrets.token_hex(3)}"
    r = run_chorus(["serve", "--data", d, "--listen", "127.0.0.1:0", "--join", url,
                    "--token", token], env=NO_AWS, timeout=60)
    check_eq(r.rc, 1, f"{what}: exit status", r)
    check(re.search(want, r.err), f"{what}: a clear message ({want})", r)
    check("serving" not in r.out, f"{what}: nothing served", r)
    check(not d.exists(), f"{what}: nothing written ({d} exists)", r)
    print(f"# {what}: {r.err.strip().splitlines()[-1]}")


# ------------------------------------------------------------------ tests

@test("chorus cluster token: a token on the last line, made with the cluster key; refused where there is no cluster key")
def _(tmp):
    with pg.server() as db:
        m = Member(tmp, db)
        key = m.cluster_key()
        check_eq(len(key), 32, "the cluster key in the member's catalog")
        check_eq(db.value("SELECT encode(cluster_key, 'hex') FROM chorus_schema"), key.hex(),
                 "the same key in PostgreSQL")
        now = int(time.time())
        for args, hours in (([], 24), (["--ttl", "2"], 2)):
            tok = m.token(*args)
            t, mac = token_parts(tok)
            check_eq(mac, hmac.new(key, b"chorus join token" + t, hashlib.sha256).digest(),
                     "the token's mac")
            exp = struct.unpack(">Q", t[:8])[0]
            check(abs(exp - (now + hours * 3600)) <= 5, f"expiry {exp}, want now + {hours} h")
        check(m.token() != m.token(), "two tokens differ")
        r = run_chorus(["cluster", "token", "--data", tmp / "nothing"])
        check_eq(r.rc, 1, "no data directory", r)
        check("no catalog" in r.err, "a clear message", r)
        solo = Node(tmp / "solo", tmp / "logs", tag="solo")
        r = run_chorus(["cluster", "token", "--data", solo.data])
        check_eq(r.rc, 1, "a standalone node's data directory", r)
        check("not a cluster member" in r.err and "no cluster key" in r.err,
              "a clear message", r)
        check_eq(r.out, "", "no token printed", r)
        r = run_chorus(["cluster", "token", "--data", m.node.data, "--ttl", "0"])
        check_eq(r.rc, 2, "--ttl 0", r)
        r = run_chorus(["cluster", "frobnicate"])
        check_eq(r.rc, 2, "an unknown cluster subcommand", r)
        solo.stop()
        m.node.stop()


@test("refused joins (wrong, malformed or expired token, unreachable member, a member outside any cluster): exit 1, a clear message, nothing written")
def _(tmp):
    with pg.server() as db:
        m = Member(tmp, db)
        tok = m.token()
        t, mac = token_parts(tok)
        wrong = f"chorus1.{t.hex()}.{bytes(b ^ 1 for b in mac).hex()}"
        refused_join(tmp, m.url, wrong, "a wrong token", r"refused the join.*wrong or expired")
        other_key = make_token(os.urandom(32), int(time.time()) + 3600)
        refused_join(tmp, m.url, other_key, "another cluster's token",
                     r"refused the join.*wrong or expired")
        expired = make_token(m.cluster_key(), int(time.time()) - 10)
        refused_join(tmp, m.url, expired, "an expired token", r"token expired at")
        refused_join(tmp, m.url, "chorus1.nope", "a malformed token", r"not a join token")
        refused_join(tmp, "http://127.0.0.1:1", tok, "an unreachable member",
                     r"cannot reach the member at http://127\.0\.0\.1:1")
        solo = Node(tmp / "solo", tmp / "logs", tag="solo")
        refused_join(tmp, f"http://127.0.0.1:{solo.port}", tok, "a standalone node",
                     r"not a member of a cluster")
        solo.stop()
        r = run_chorus(["serve", "--data", tmp / "x", "--join", m.url])
        check_eq(r.rc, 2, "--join without --token", r)
        check("go together" in r.err, "a clear message", r)
        check(not (tmp / "x").exists(), "nothing written")
        # The member refused each without a trace of them in its view.
        check_eq(len(m.view()), 1, "the member alone in its cluster")
        m.node.stop()


@test("the exchange: the answer opens only with the token; stale, replayed, forged and expired requests get 401")
def _(tmp):
    with pg.server() as db:
        m = Member(tmp, db)
        tok = m.token()
        port = m.node.port
        body, nonce = join_body(tok, port=4321)
        st, raw = post_join(port, body)
        check_eq(st, 200, "a right request", raw)
        answer = json.loads(raw)
        check_eq(sorted(answer), ["nonce_member", "sealed"], "the answer's members")
        cfg = open_answer(tok, nonce, answer)
        check_eq(cfg["db"], m.conninfo, "db")
        check_eq(cfg["origin"], m.origin, "origin")
        check_eq((cfg["aws_access_key_id"], cfg["aws_secret_access_key"]),
                 (AWS_KEY, AWS_SECRET), "the origin's credentials")
        check_eq(cfg["address"], "127.0.0.1", "the address the member saw")
        check("cluster_key" not in json.dumps(cfg), "no cluster key handed out")
        for secret in (m.password, AWS_SECRET, tok, token_parts(tok)[1].hex()):
            check(secret.encode() not in raw, "nothing secret in the clear")
        # Another nonce than the request's: the answer does not open.
        try:
            open_answer(tok, os.urandom(16).hex(), answer)
            fail("an answer opened under another nonce")
        except Exception as e:  # noqa: BLE001 (cryptography's InvalidTag)
            check(type(e).__name__ == "InvalidTag", f"InvalidTag, not {e!r}")

        refusals = {}
        st, raw = post_join(port, body)
        refusals["replayed"] = (st, raw)
        refusals["stale"] = post_join(port, join_body(tok, now=int(time.time()) - 90)[0])
        refusals["from the future"] = post_join(port,
                                                join_body(tok, now=int(time.time()) + 90)[0])
        refusals["forged proof"] = post_join(port, join_body(tok, mac=os.urandom(32))[0])
        # Well past: a clock stepped back a second (seen on these VMs) must
        # not make it current again.
        expired = make_token(m.cluster_key(), int(time.time()) - 30)
        refusals["expired"] = post_join(port, join_body(expired)[0])
        refusals["another cluster"] = post_join(
            port, join_body(make_token(os.urandom(32), int(time.time()) + 60))[0])
        msgs = set()
        for what, (st, raw) in refusals.items():
            check_eq(st, 401, f"{what} request", raw)
            msgs.add(json.loads(raw)["error"]["message"])
        check_eq(len(msgs), 1, f"one message for every refusal: {msgs}")
        print(f"# refused: {sorted(refusals)} -> 401 {msgs.pop()!r}")
        for bad in (b"", b"{}", b"[1]", body[:-1], body.replace(b'"port"', b'"port2"')):
            st, raw = post_join(port, bad)
            check_eq(st, 400, f"a malformed request {bad[:30]!r}", raw)
        st, _ = http_get_status(port, "/internal/join")
        check_eq(st, 405, "GET /internal/join")
        m.node.stop()


def http_get_status(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@test("join over plain HTTP through a recording relay: serving within 10 s, in the cluster, no secret on the wire; cluster.json 0600; restarts need no flags")
def _(tmp):
    with pg.server() as db:
        m = Member(tmp, db)
        tok = m.token()
        t, mac = token_parts(tok)
        relay = Relay(m.node.port)
        try:
            new_dir = tmp / "new"
            t0 = time.monotonic()
            new = Node(new_dir, tmp / "logs", args=["--join", f"http://127.0.0.1:{relay.port}/",
                                                    "--token", tok],
                       env=NO_AWS, tag="new", timeout=30)
            serving = time.monotonic() - t0
            tracks = new.get_json("/api/v1/tracks")["tracks"]
            check_eq(len(tracks), NTRACKS, "the new node's catalog, bootstrapped")
            by_size = {f.stat().st_size: f for f in m.files}
            tr = tracks[0]
            c = new.conn()
            c.request("GET", f"/api/v1/tracks/{tr['id']}/stream", headers=new.auth())
            r = c.getresponse()
            first = r.read(1)
            first_byte = time.monotonic() - t0
            data = first + r.read()
            c.close()
            check_eq(r.status, 200, "a stream from the new node")
            check_eq(sha(data), sha(by_size[tr["size_bytes"]].read_bytes()), "the stream's bytes")
            print(f"# join to serving: {serving:.2f} s")
            print(f"# join to first byte: {first_byte:.2f} s")
            check(serving < 10, f"serving after {serving:.2f} s, want within 10 s")

            # In the cluster, at the address the member saw plus its port.
            me = node_id(new_dir)
            v, took = wait_for("the new node alive on the member",
                               lambda: m.view().get(me, {}).get("state") == "alive" and m.view(),
                               5)
            check_eq(v[me]["address"], f"http://127.0.0.1:{new.port}", "its advertised address")
            check_eq(db.value(f"SELECT address FROM nodes WHERE id = '{me}'"),
                     f"http://127.0.0.1:{new.port}", "its row in PostgreSQL")

            # The wire.
            up, down = relay.capture()
            wire = up + down
            check(b"POST /internal/join" in up and b"200 OK" in down,
                  "the exchange went through the relay")
            secrets_ = {"the token": tok.encode(), "its mac (hex)": mac.hex().encode(),
                        "its mac (bytes)": mac, "the PostgreSQL password": m.password.encode(),
                        "the conninfo": m.conninfo.encode(),
                        "the AWS secret key": AWS_SECRET.encode(),
                        "the AWS key id": AWS_KEY.encode(),
                        "the cluster key": m.cluster_key(),
                        "the cluster key (hex)": m.cluster_key().hex().encode()}
            for what, s in secrets_.items():
                check(s not in wire, f"{what} on the wire")
            print(f"# the capture: {len(up)} bytes up, {len(down)} bytes down, none of: "
                  f"{', '.join(secrets_)}")

            # Replayed as captured: refused.
            body = up.split(b"\r\n\r\n", 1)[1]
            st, raw = post_join(m.node.port, body)
            check_eq(st, 401, "the captured request sent again", raw)

            # What the node keeps.
            cj = new_dir / "cluster.json"
            check_eq(stat.S_IMODE(cj.stat().st_mode), 0o600, "cluster.json's mode")
            cfg = json.loads(cj.read_text())
            check_eq((cfg["db"], cfg["origin"], cfg["aws_secret_access_key"], cfg["address"]),
                     (m.conninfo, m.origin, AWS_SECRET, "127.0.0.1"), "cluster.json")
            check(tok not in cj.read_text(), "the token is not kept")
            new.stop()

            # Restarted with only --data and --listen: the same node, back in the cluster.
            t0 = time.monotonic()
            again = Node(new_dir, tmp / "logs", env=NO_AWS, tag="again")
            print(f"# restart to serving: {time.monotonic() - t0:.2f} s")
            check_eq(node_id(new_dir), me, "the same id")
            v, _ = wait_for("the restarted node alive on the member",
                            lambda: m.view().get(me, {}).get("state") == "alive"
                            and m.view()[me]["address"] == f"http://127.0.0.1:{again.port}"
                            and m.view(), 5)
            check_eq(len(v), 2, "two nodes")
            # With the member gone, the origin's credentials from cluster.json serve.
            m.node.stop()
            for tr in tracks[1:]:
                r = again.get(f"/api/v1/tracks/{tr['id']}/stream")
                check_eq(r.status, 200, "a stream after the restart", r)
                check_eq(sha(r.body), sha(by_size[tr["size_bytes"]].read_bytes()),
                         "its bytes")
            check(again.stats()["origin_reads"] >= NTRACKS - 1, "read from the origin")
            # The flags still win over the file; --join once joined is ignored
            # (a unit file may keep it), whatever its token has become.
            again.stop()
            n3 = Node(new_dir, tmp / "logs", args=["--advertise", "http://music.example:1/",
                                                   "--join", "http://127.0.0.1:1",
                                                   "--token", "expired-long-ago"],
                      env=NO_AWS, tag="n3")
            check("--join is ignored" in n3.result().err, "a note that --join is ignored",
                  n3.result())
            wait_for("--advertise over cluster.json",
                     lambda: db.value(f"SELECT address FROM nodes WHERE id = '{me}'")
                     == "http://music.example:1", 5)
            n3.stop()
        finally:
            relay.close()


if __name__ == "__main__":
    main()
