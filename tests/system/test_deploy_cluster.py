#!/usr/bin/python3
"""System test of deploy/systemd and deploy/haproxy, following deploy/README.md
("Run a cluster on three servers") on one machine: PostgreSQL
(tests/system/pg.py), an S3 endpoint that checks signatures
(tests/system/s3.py), three chorus nodes and haproxy, all on 127.0.0.1.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_deploy_cluster.py [NAME...]

There is no systemd here, so the test does what systemd would with
deploy/systemd/chorus.service: it renders chorus.env.in into a file, reads
its variables as EnvironmentFile= does, expands the unit's ExecStart with
them (the binary and /var/lib/chorus being the only things replaced: by
$CHORUS_BIN and a directory per node), and starts that command with
NOTIFY_SOCKET naming a datagram socket the test reads, as systemd's. haproxy
runs deploy/haproxy/haproxy.cfg.in rendered with loopback addresses,
in the foreground (-db), its state read from its admin socket.

Figures (retries, detection times) are printed as TAP comments.
"""

import hashlib
import http.client
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    _BACKGROUND, CHORUS_BIN, REPO, Background, _check_sanitizers, check, check_eq, chorus_env,
    ingest_ok, main, render, run_chorus, skip, start_chorus, test, wait_for, wav_library)
from haproxy import HAPROXY, HAPROXY_IN, Haproxy, free_port  # noqa: E402
from s3 import S3Server  # noqa: E402

DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "chorus.service"
ENV_IN = DEPLOY / "systemd" / "chorus.env.in"
README = DEPLOY / "README.md"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze", path="/usr/bin:/bin")
STRACE = shutil.which("strace", path="/usr/bin:/bin")
# The binary the unit runs is a release build; sanitizers make system calls
# of their own, so the system call filter is checked against this one.
RELEASE_BIN = os.environ.get("CHORUS_RELEASE_BIN") or str(REPO / "build" / "release" / "chorus")
PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
NTRACKS = 10
LISTENERS = 60
_SERVING = re.compile(r"^chorus (\S+) serving (.*) on http://127\.0\.0\.1:(\d+)/$", re.M)


# ---------------------------------------------------------------- the files

def parse_unit(path):
    """{section: {key: [values]}} of a systemd unit file (no continuations)."""
    out, sec = {}, None
    for ln in pathlib.Path(path).read_text().splitlines():
        ln = ln.strip()
        if not ln or ln[0] in "#;":
            continue
        if ln.startswith("[") and ln.endswith("]"):
            sec = out.setdefault(ln[1:-1], {})
            continue
        check(sec is not None and "=" in ln and not ln.endswith("\\"),
              f"{path}: a line this test cannot read: {ln!r}")
        k, _, v = ln.partition("=")
        sec.setdefault(k.strip(), []).append(v.strip())
    return out


def unit_value(unit, key, section="Service"):
    vals = unit.get(section, {}).get(key)
    check(vals, f"{UNIT.name}: no {key}= in [{section}]")
    return vals[-1]


def parse_env(text):
    """EnvironmentFile= as systemd reads it, restricted to what both systemd
    and sh read alike: KEY='value' lines (no quote inside), comments."""
    env = {}
    for ln in text.splitlines():
        s = ln.strip()
        if not s or s[0] in "#;":
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)='([^']*)'", s)
        check(m, f"chorus.env: not a KEY='value' line: {ln!r}")
        env[m.group(1)] = m.group(2)
    return env


def exec_start(unit, env):
    """ExecStart split into words and expanded as systemd does: ${VAR} is
    replaced inside a word, a lone $VAR word splits on white space. A
    variable missing from env fails (systemd would pass an empty string)."""
    words = shlex.split(unit_value(unit, "ExecStart"))
    out = []

    def sub(m):
        check(m.group(1) in env, f"ExecStart uses ${{{m.group(1)}}}, not set by chorus.env")
        return env[m.group(1)]

    for w in words:
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            check(m.group(1) in env, f"ExecStart uses ${m.group(1)}, not set by chorus.env")
            out += env[m.group(1)].split()
        else:
            out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, w))
    return out


def seconds(v):
    m = re.fullmatch(r"(\d+)(s|min)?", v)
    check(m, f"a time span this test cannot read: {v!r}")
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def readme_section():
    text = README.read_text()
    i = text.find("\n## Run a cluster on three servers\n")
    check(i >= 0, "deploy/README.md has no section \"Run a cluster on three servers\"")
    j = text.find("\n## ", i + 5)
    return text[i:] if j < 0 else text[i:j]


def sed_placeholders(section, target):
    """The @NAME@ that the README's sed command ending in `> target`
    replaces."""
    m = re.search(r"sed ((?:-e \"s\|@[A-Z0-9_]+@\|[^\"]*\" \\\n\s*)+)(\S+) > "
                  + re.escape(target), section)
    check(m, f"deploy/README.md: no sed command writing {target}")
    return m.group(2), set(re.findall(r"s\|@([A-Z0-9_]+)@\|", m.group(1)))


# ---------------------------------------------------------------- the notify socket

class NotifySocket:
    """A datagram socket like systemd's NOTIFY_SOCKET; messages() returns
    every message received so far, with the time it arrived."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.got = []

    def poll(self, timeout=0.0):
        self.sock.settimeout(timeout)
        try:
            while True:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
                pid = None
                for lvl, typ, d in anc:
                    if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                        pid = int.from_bytes(d[:4], "little")
                self.got.append((time.monotonic(), data.decode(), pid))
                self.sock.settimeout(0)
        except (BlockingIOError, socket.timeout):
            pass
        return self.got

    def seen(self, line):
        """(time, message, pid) of the first message with line in it, waiting
        up to 50 ms for more; None when there is none yet."""
        for t, msg, pid in self.poll(0.05):
            if line in msg.split("\n"):
                return t, msg, pid
        return None

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- the cluster

def library():
    """NTRACKS WAV files of 16 to 20.5 MB (a few minutes of CD audio), made once."""
    return wav_library("deploy-lib", NTRACKS, 4_000_000, 125_013, seed=1000)


class Wrapped(Background):
    """chorus_test's Background for a command of our own (chorus under
    strace): the same files, cleanup and methods."""

    def __init__(self, cmd, logdir, env, tag):
        logdir = pathlib.Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        self.args = [str(a) for a in cmd]
        self.out_path = logdir / f"{tag}.{os.getpid()}.{id(self)}.out"
        self.err_path = logdir / f"{tag}.{os.getpid()}.{id(self)}.err"
        self.started = time.monotonic()
        with open(self.out_path, "wb") as o, open(self.err_path, "wb") as e:
            self.proc = subprocess.Popen(self.args, env=chorus_env(env),
                                         stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                         start_new_session=True)
        _BACKGROUND.append(self)


def node_warnings(cl):
    """Each node's warnings and errors, for a failure's context."""
    out = []
    for n in cl.nodes:
        if n.bg is None:
            continue
        lines = [ln for ln in n.bg.err_path.read_text(errors="replace").splitlines()
                 if " warn: " in ln or " error: " in ln]
        out.append(f"node{n.i}: " + ("\n  ".join(lines[-30:]) or "no warning"))
    return out


class DeployedNode:
    """One server's chorus: chorus.env rendered, the unit's ExecStart run
    with its variables and a notify socket."""

    def __init__(self, cl, i):
        self.cl, self.i = cl, i
        self.dir = cl.tmp / f"server{i}"
        self.dir.mkdir()
        self.port = free_port()
        self.data = self.dir / "var-lib-chorus"  # /var/lib/chorus
        vals = dict(cl.shared_values)
        vals.update({"LISTEN": f"127.0.0.1:{self.port}",
                     "ADVERTISE": f"http://127.0.0.1:{self.port}",
                     "CACHE_SIZE": "1G"})
        (self.dir / "chorus.env").write_text(render(ENV_IN, vals))
        self.env = parse_env((self.dir / "chorus.env").read_text())
        args = exec_start(cl.unit, self.env)
        check_eq(args[0], "/usr/local/bin/chorus", "ExecStart's binary")
        check_eq(args[1], "serve", "ExecStart's command")
        check(args.count("/var/lib/chorus") == 1 and
              args[args.index("/var/lib/chorus") - 1] == "--data",
              f"ExecStart serves --data /var/lib/chorus: {args}")
        self.args = [str(self.data) if a == "/var/lib/chorus" else a for a in args[1:]]
        self.bg = None
        self.notify = None

    def start(self, ready_timeout=60, wrap=None):
        """Starts it, as systemctl start does: returns once READY=1 came.
        wrap: a command (and binary) to run the node's arguments with."""
        if self.notify:
            self.notify.close()
        sock = self.dir / "notify.sock"
        if sock.exists():
            sock.unlink()
        self.notify = NotifySocket(sock)
        env = dict(self.env)
        env["NOTIFY_SOCKET"] = str(sock)
        # Only what chorus.env sets: no CHORUS_* or AWS_* from the test's environment.
        for k in os.environ:
            if (k.startswith("AWS_") or k.startswith("CHORUS_")) and k not in env:
                env[k] = None
        if wrap:
            self.bg = Wrapped(wrap + self.args, self.cl.tmp / "logs", env, f"node{self.i}")
        else:
            self.bg = start_chorus(self.args, self.cl.tmp / "logs", env=env,
                                   tag=f"node{self.i}")
        self.t_start = time.monotonic()
        (t, msg, pid), _ = wait_for(f"node{self.i}: READY=1", lambda: self.notify.seen("READY=1"),
                                    ready_timeout, step=0, context=self.bg.result)
        # Ready only once it serves: the serving line is out, it answers, and
        # its catalog (bootstrapped from PostgreSQL) is complete.
        out = self.bg.out_path.read_text()
        m = _SERVING.search(out)
        check(m and int(m.group(3)) == self.port,
              f"node{self.i}: READY=1 before the serving line", self.bg.result())
        if not wrap:
            check_eq(pid, self.bg.pid, "READY=1 from the main pid")
        check(pid, "READY=1 carries the sender's pid")
        self.main_pid = pid
        check_eq(self.tracks_count(), NTRACKS, f"node{self.i}: tracks in its catalog at READY=1")
        self.ready_s = t - self.t_start
        return self

    def tracks_count(self):
        st, body = http_get(self.port, "/api/v1/tracks?limit=1")
        return json.loads(body)["total"] if st == 200 else None

    def running(self):
        return self.bg is not None and self.bg.running()

    def kill9(self):
        self.bg.kill(signal.SIGKILL)

    def stop(self, timeout=60):
        """SIGTERM, as systemctl stop sends (KillSignal=): STOPPING=1, exit 0."""
        t0 = time.monotonic()
        os.kill(self.main_pid, signal.SIGTERM)
        got, _ = wait_for(f"node{self.i}: STOPPING=1 after SIGTERM",
                          lambda: self.notify.seen("STOPPING=1"), 10, step=0,
                          context=self.bg.result)
        res = self.bg.wait(timeout)
        _check_sanitizers(res)
        check_eq(res.rc, 0, f"node{self.i}: exit status after SIGTERM", res)
        return got[0] - t0, time.monotonic() - t0


# The admin key the cluster's requests carry (Cluster makes it).
AUTH = {}


def http_get(port, path, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=AUTH)
        r = c.getresponse()
        return r.status, r.read()
    except OSError as e:
        return None, repr(e).encode()
    finally:
        c.close()


class Cluster:
    """deploy/README.md's three servers, on one machine."""

    def __init__(self, tmp, db, wrap=None):
        """wrap: {node number: command to start it with} (DeployedNode.start)."""
        try:
            self._bring_up(tmp, db, wrap or {})
        except BaseException:
            try:
                self.close()  # haproxy is not one of chorus_test's Backgrounds
            except Exception:  # noqa: BLE001 (the first failure is the one to report)
                pass
            raise

    def _bring_up(self, tmp, db, wrap):
        self.tmp = tmp
        self.unit = parse_unit(UNIT)
        # Step 4's shared values (the Patroni section's A,B,C: one server here).
        # The role and database as deploy/patroni's bootstrap SQL makes them.
        db.psql("postgres", "DROP DATABASE chorus")
        sql = render(DEPLOY / "patroni" / "chorus-bootstrap.sql.in",
                     {"CHORUS_PASSWORD": "chorus-test-password"})
        for stmt in re.sub(r"--[^\n]*", "", sql).split(";"):
            if stmt.strip():
                db.psql("postgres", stmt.strip())
        self.s3 = S3Server.shared()
        self.shared_values = {
            "DB_HOSTS": "127.0.0.1,127.0.0.1,127.0.0.1",
            "DB_PORTS": f"{db.port},{db.port},{db.port}",
            "CHORUS_PASSWORD": "chorus-test-password",
            "S3_BUCKET": self.s3.bucket, "S3_ENDPOINT": self.s3.endpoint,
            "S3_REGION": self.s3.region, "AWS_ACCESS_KEY_ID": self.s3.key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret}
        self.nodes = [DeployedNode(self, i) for i in (1, 2, 3)]
        # Step 5: the library, with the first server's chorus.env loaded.
        self.src, files = library()
        r = ingest_ok(tmp / "root-chorus-ingest", self.src, env=self.nodes[0].env,
                      what="chorus ingest with chorus.env's settings")
        check(f"ingest: {NTRACKS} added" in r.out, "every track added", r)
        # The operator's admin key, as deploy/README.md makes it.
        r = run_chorus(["key", "create", "--role", "admin", "--name", "operator", "--data",
                        tmp / "root-chorus-key"], env=self.nodes[0].env)
        check_eq(r.rc, 0, "chorus key create with chorus.env's settings", r)
        AUTH["Authorization"] = "Bearer " + r.out.strip().splitlines()[-1]
        self.want = {}
        # Step 6, on each server.
        for n in self.nodes:
            n.start(wrap=wrap.get(n.i))
            print(f"# node{n.i}: READY=1 {n.ready_s:.2f} s after exec")
        self.wait_alive()
        st, body = http_get(self.nodes[0].port, "/api/v1/tracks?limit=500")
        self.tracks = json.loads(body)["tracks"]
        check_eq(len(self.tracks), NTRACKS, "tracks")
        by_size = {f.stat().st_size: f for f in files}
        for t in self.tracks:
            self.want[t["id"]] = hashlib.sha256(by_size[t["size_bytes"]].read_bytes()).hexdigest()
        # Step 7.
        self.hap = Haproxy(self.tmp / "haproxy", [n.port for n in self.nodes])
        took = self.hap.wait_states({"node1": "UP", "node2": "UP", "node3": "UP"}, 10)
        print(f"# haproxy: three nodes UP {took:.2f} s after it started")

    def cluster_states(self, node):
        st, body = http_get(node.port, "/api/v1/cluster")
        check_eq(st, 200, "GET /api/v1/cluster")
        return {m["address"]: m["state"] for m in json.loads(body)["nodes"]}

    def wait_alive(self, timeout=10):
        want = {f"http://127.0.0.1:{n.port}": "alive" for n in self.nodes}

        def views():
            return [self.cluster_states(n) for n in self.nodes if n.running()]

        wait_for("three nodes alive on each", lambda: all(v == want for v in views()), timeout,
                 step=0.1, context=views)

    def close(self):
        if getattr(self, "hap", None):
            self.hap.close()
            self.hap = None
        for n in getattr(self, "nodes", []):
            try:
                if n.running():
                    n.stop()
            finally:
                if n.notify:
                    n.notify.close()
                    n.notify = None


# ---------------------------------------------------------------- listeners

class Listeners:
    """LISTENERS players listening to whole tracks through haproxy, reading
    at a pace (so that streams are in flight when a node dies), until
    stopped. Two kinds, as players are: two in three ask for the whole file
    (GET, one response), one in three asks for it 1 MiB at a time (Range
    requests on a keep-alive connection, as some media stacks do), so that
    new requests keep arriving while a node dies. A player whose request
    fails asks again through haproxy for the same byte range (Range:
    bytes=N-, If-Range with the ETag), as a player would, and counts a
    retry; a listen fails only when it cannot be completed in 10 tries or a
    byte differs."""

    RANGE = 1 << 20

    def __init__(self, cl, port, pause=0.02, block=65536):
        self.cl, self.port, self.pause, self.block = cl, port, pause, block
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.listens = 0
        self.requests = 0
        self.failed = []
        self.retries = []  # (when, what)
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(LISTENERS)]

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def stop(self):
        self.stopping.set()
        for th in self.threads:
            th.join(120)
        check(not any(th.is_alive() for th in self.threads), "listeners did not finish")

    def listen(self, track, ranged):
        size = track["size_bytes"]
        h = hashlib.sha256()
        got, tries, etag, c = 0, 0, None, None
        path = f"/api/v1/tracks/{track['id']}/stream"
        while got < size:
            if c is None:
                c = PlayerConnection("127.0.0.1", self.port, timeout=15)
            try:
                if ranged:
                    end = min(size, got + self.RANGE)
                    hdrs, want = {"Range": f"bytes={got}-{end - 1}"}, 206
                else:
                    end = size
                    hdrs, want = ({"Range": f"bytes={got}-"}, 206) if got else ({}, 200)
                if etag:
                    hdrs["If-Range"] = etag
                with self.lock:
                    self.requests += 1
                c.request("GET", path, headers={**hdrs, **AUTH})
                r = c.getresponse()
                if r.status != want:
                    raise IOError(f"status {r.status} (want {want}): {r.read(200)!r}")
                etag = etag or r.getheader("ETag")
                while got < end:
                    d = r.read(min(self.block, end - got))
                    if not d:
                        raise IOError(f"stream ended at byte {got} of {size}")
                    h.update(d)
                    got += len(d)
                    if self.pause:
                        time.sleep(self.pause)
            except (OSError, http.client.HTTPException) as e:
                tries += 1
                with self.lock:
                    self.retries.append((time.monotonic(), f"{type(e).__name__}: {e}"[:160]))
                c.close()
                c = None
                if tries >= 10:
                    raise
                time.sleep(0.1)
        if c is not None:
            c.close()
        return h.hexdigest()

    def run(self, i):
        k = i
        while not self.stopping.is_set():
            t = self.cl.tracks[k % len(self.cl.tracks)]
            k += 7
            try:
                ok = self.listen(t, ranged=i % 3 == 0) == self.cl.want[t["id"]]
                why = "bytes differ"
            except Exception as e:  # noqa: BLE001
                ok, why = False, repr(e)
            with self.lock:
                self.listens += 1
                if not ok:
                    self.failed.append((t["id"], why))


class PlayerConnection(http.client.HTTPConnection):
    """A player's connection: a small receive buffer (64 KiB, as a player
    that reads what it plays), so that a paced stream stays in flight on
    the node instead of landing whole in the kernel's buffers."""

    def connect(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def haproxy_retries(hap):
    s = hap.stat().get("BACKEND", {})
    return int(s.get("wretr") or 0), int(s.get("wredis") or 0)


# ---------------------------------------------------------------- tests

@test("deploy/: the unit, chorus.env.in, haproxy.cfg.in and the README agree; systemd-analyze and haproxy -c accept them")
def _(tmp):
    unit = parse_unit(UNIT)
    sv = unit["Service"]
    for key, want in (("Type", "notify"), ("KillSignal", "SIGTERM"), ("Restart", "on-failure"),
                      ("User", "chorus"), ("EnvironmentFile", "/etc/chorus/chorus.env"),
                      ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                      ("LimitNOFILE", "65536"), ("StateDirectory", "chorus")):
        check_eq(sv.get(key, [None])[-1], want, f"chorus.service {key}=")
    check("/var/lib/chorus" in " ".join(sv.get("ReadWritePaths", [])).split(),
          "ReadWritePaths= holds /var/lib/chorus")
    placeholders = {k: "x" for k in PLACEHOLDER.findall(ENV_IN.read_text())}
    placeholders.update({"LISTEN": "127.0.0.1:0", "ADVERTISE": "http://127.0.0.1:8080",
                         "CACHE_SIZE": "50G"})
    env = parse_env(render(ENV_IN, placeholders))
    for k in ("CHORUS_DB", "CHORUS_ORIGIN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        check(k in env, f"chorus.env.in sets {k}")
    args = exec_start(unit, env)
    drain = int(args[args.index("--drain-timeout") + 1])
    stop = seconds(unit_value(unit, "TimeoutStopSec"))
    check(stop >= drain + 10, f"TimeoutStopSec={stop} s leaves the drain ({drain} s) no margin")
    print(f"# ExecStart: {' '.join(args)}")
    r = run_chorus(args[1:] + ["--help"])
    check_eq(r.rc, 0, "chorus accepts ExecStart's options", r)

    # The README fills exactly each template's placeholders and installs
    # files where the unit looks for them.
    sec = readme_section()
    src, used = sed_placeholders(sec, "/etc/chorus/chorus.env")
    check_eq(src, "$D/systemd/chorus.env.in", "the README renders chorus.env.in")
    check_eq(used, set(PLACEHOLDER.findall(ENV_IN.read_text())), "README's chorus.env placeholders")
    src, used = sed_placeholders(sec, "/etc/haproxy/haproxy.cfg")
    check_eq(src, "$D/haproxy/haproxy.cfg.in", "the README renders haproxy.cfg.in")
    check_eq(used, set(PLACEHOLDER.findall(HAPROXY_IN.read_text())), "README's haproxy placeholders")
    for want in ("install -m 755 build/release/chorus /usr/local/bin/chorus",
                 "install -m 644 $D/systemd/chorus.service /etc/systemd/system/chorus.service",
                 "systemctl enable --now chorus", "chorus status",
                 "/api/v1/cluster", "useradd --system --user-group", "### Players without haproxy"):
        check(want in sec, f"the README section says {want!r}")
    check("--user-group --home-dir /var/lib/chorus" in sec and
          unit_value(unit, "User") == "chorus", "the README's user is the unit's")

    check(SYSTEMD_ANALYZE, "systemd-analyze is not installed (scripts/deps.sh installs systemd)")
    # The unit as installed, but for the binary, which is not in /usr/local/bin here.
    d = tmp / "unit"
    d.mkdir()
    (d / "chorus.service").write_text(
        UNIT.read_text().replace("/usr/local/bin/chorus", os.path.abspath(CHORUS_BIN)))
    r = subprocess.run([SYSTEMD_ANALYZE, "verify", str(d / "chorus.service")],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    check(r.returncode == 0 and not r.stderr.strip(),
          f"systemd-analyze verify: {r.returncode} {r.stdout} {r.stderr}")
    check(HAPROXY, "haproxy is not installed (scripts/deps.sh installs it)")
    vals = {k: "127.0.0.1:1" for k in PLACEHOLDER.findall(HAPROXY_IN.read_text())}
    vals["STATS_SOCKET"] = str(tmp / "admin.sock")
    (tmp / "h.cfg").write_text(render(HAPROXY_IN, vals))
    r = subprocess.run([HAPROXY, "-c", "-f", str(tmp / "h.cfg")], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    check(r.returncode == 0 and "Configuration file is valid" in r.stdout + r.stderr,
          f"haproxy -c: {r.stdout} {r.stderr}")
    for want in ("option httpchk GET /health", "http-check expect status 200", "retries 3",
                 "option redispatch 1", "retry-on conn-failure empty-response response-timeout"):
        check(want in HAPROXY_IN.read_text(), f"haproxy.cfg.in has {want!r}")


@test("three nodes from deploy/ behind haproxy: READY=1 once serving; kill -9 of one while 60 listen: no failed listen, haproxy takes it out within 3 s; restarted, it is back in rotation")
def _(tmp):
    with pg.server() as db:
        cl = Cluster(tmp, db)
        try:
            hap = cl.hap
            # Warm: every track once through haproxy.
            for t in cl.tracks:
                st, body = http_get(hap.port, f"/api/v1/tracks/{t['id']}/stream")
                check(st == 200 and hashlib.sha256(body).hexdigest() == cl.want[t["id"]],
                      f"a stream through haproxy: {st}")
            r0, d0 = haproxy_retries(hap)
            ls = Listeners(cl, hap.port).start()
            time.sleep(2.0)
            victim = cl.nodes[2]
            busy = hap.stat()["node3"]["scur"]
            # Before the signal: kill9 returns once the process is reaped,
            # and the streams it cut are retried by then.
            t_kill = time.monotonic()
            victim.kill9()
            took = hap.wait_states({"node3": "DOWN"}, 5)
            print(f"# haproxy marked the killed node DOWN {took:.2f} s after kill -9 "
                  f"({busy} streams were on it)")
            check(took <= 3.0, f"node DOWN after {took:.2f} s (want <= 3)")
            check_eq(hap.servers(), {"node1": "UP", "node2": "UP", "node3": "DOWN"},
                     "the others stay UP")
            time.sleep(2.0)  # listeners go on against the two survivors
            ls.stop()
            r1, d1 = haproxy_retries(hap)
            after = [w for t, w in ls.retries if t >= t_kill]
            print(f"# {ls.listens} listens ({ls.requests} requests) by {LISTENERS} listeners, "
                  f"{len(ls.failed)} failed; {len(ls.retries)} requests retried by the player "
                  f"({len(after)} after the kill); haproxy retried {r1 - r0} connections, "
                  f"redispatched {d1 - d0}")
            for w in sorted(set(after))[:5]:
                print(f"#   player resumed after: {w}")
            check(not ls.failed, f"{len(ls.failed)} failed listens: {ls.failed[:3]}")
            check(ls.listens >= LISTENERS, f"only {ls.listens} listens")
            check(not [t for t, _ in ls.retries if t < t_kill],
                  f"retries before the kill: {ls.retries[:3]}", *node_warnings(cl))

            # Back: the same data directory and port; haproxy puts it back.
            victim.start()
            print(f"# restarted node READY=1 {victim.ready_s:.2f} s after exec")
            t0 = time.monotonic()
            took = hap.wait_states({"node1": "UP", "node2": "UP", "node3": "UP"}, 5)
            print(f"# haproxy: restarted node UP {took:.2f} s after READY=1")
            check(took <= 3.0, f"node UP after {took:.2f} s (want <= 3)")
            cl.wait_alive()
            before = int(hap.stat()["node3"]["stot"])
            for t in cl.tracks * 2:
                st, body = http_get(hap.port, f"/api/v1/tracks/{t['id']}/stream")
                check(st == 200 and hashlib.sha256(body).hexdigest() == cl.want[t["id"]],
                      f"a stream after the restart: {st}")
            served = int(hap.stat()["node3"]["stot"]) - before
            print(f"# the restarted node took {served} of {2 * len(cl.tracks)} requests "
                  f"({time.monotonic() - t0:.1f} s after it was ready)")
            check(served >= 2 * len(cl.tracks) // 6, f"restarted node took {served} requests")
        finally:
            cl.close()


@test("systemctl stop as the unit does it: SIGTERM drains a node while 60 listen through haproxy: STOPPING=1, exit 0, no failed listen")
def _(tmp):
    with pg.server() as db:
        cl = Cluster(tmp, db)
        try:
            hap = cl.hap
            r0, d0 = haproxy_retries(hap)
            ls = Listeners(cl, hap.port).start()
            time.sleep(2.0)
            stopping, exited = cl.nodes[1].stop()
            print(f"# SIGTERM: STOPPING=1 after {stopping * 1000:.0f} ms, exit 0 after "
                  f"{exited:.2f} s (drain)")
            check(stopping < 1.0, f"STOPPING=1 {stopping:.2f} s after SIGTERM")
            took = hap.wait_states({"node2": "DOWN"}, 5)
            print(f"# haproxy: stopped node DOWN {took:.2f} s after it exited")
            time.sleep(1.0)
            ls.stop()
            r1, d1 = haproxy_retries(hap)
            print(f"# {ls.listens} listens ({ls.requests} requests), {len(ls.failed)} failed;"
                  f" {len(ls.retries)} retried by the player; haproxy retried {r1 - r0},"
                  f" redispatched {d1 - d0}")
            for w in sorted(set(w for _, w in ls.retries))[:5]:
                print(f"#   player resumed after: {w}")
            check(not ls.failed, f"{len(ls.failed)} failed listens: {ls.failed[:3]}")
            check(not ls.retries, f"{len(ls.retries)} streams cut by a drain: {ls.retries[:3]}")
        finally:
            cl.close()


def syscall_filter(group):
    """The system calls a SystemCallFilter= group allows, as this machine's
    systemd expands it."""
    out = subprocess.run([SYSTEMD_ANALYZE, "syscall-filter"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL).stdout
    groups, cur = {}, None
    for ln in out.splitlines():
        if ln.startswith("@"):
            cur = groups.setdefault(ln.split()[0], [])
        elif ln.strip() and not ln.strip().startswith("#") and cur is not None:
            cur.append(ln.strip())

    def expand(g, seen):
        res = set()
        for m in groups.get(g, []):
            if m.startswith("@"):
                if m not in seen:
                    seen.add(m)
                    res |= expand(m, seen)
            else:
                res.add(m)
        return res

    check(group in groups, f"systemd-analyze knows no {group}")
    return expand(group, {group})


@test("every system call a node makes (serving, peer fill, plays, reports, a dead peer, the drain) is in the unit's SystemCallFilter")
def _(tmp):
    check(STRACE, "strace is not installed (scripts/deps.sh installs it)")
    check(SYSTEMD_ANALYZE, "systemd-analyze is not installed (scripts/deps.sh installs systemd)")
    if not os.access(RELEASE_BIN, os.X_OK):
        skip(f"no release build at {RELEASE_BIN} (make; tests/run.sh builds it)")
    unit = parse_unit(UNIT)
    groups = unit_value(unit, "SystemCallFilter").split()
    allowed = set()
    for g in groups:
        check(g.startswith("@"), f"SystemCallFilter={g}: only groups are checked here")
        allowed |= syscall_filter(g)
    counts = tmp / "strace.txt"
    with pg.server() as db:
        cl = Cluster(tmp, db, wrap={1: [STRACE, "-f", "-qq", "-c", "-U", "name,calls,errors",
                                        "-o", str(counts), RELEASE_BIN]})
        try:
            n1, n2, n3 = cl.nodes
            # Cold caches: node2 asks the owners (node1 among them) or the
            # origin; then node1 asks node2 and node3 for theirs.
            for n in (n2, n1):
                for t in cl.tracks:
                    st, body = http_get(n.port, f"/api/v1/tracks/{t['id']}/stream", timeout=60)
                    check(st == 200 and hashlib.sha256(body).hexdigest() == cl.want[t["id"]],
                          f"stream from node{n.i}: {st}")
            for path in ("/api/v1/search?q=t", "/api/v1/node", "/api/v1/cluster",
                         "/api/v1/reports/plays", "/", "/health"):
                st, _ = http_get(n1.port, path)
                check_eq(st, 200, f"GET {path} on node1")
            c = http.client.HTTPConnection("127.0.0.1", n1.port, timeout=10)
            started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
            c.request("POST", "/api/v1/plays",
                      headers={"Content-Type": "application/json", **AUTH},
                      body=('{"event_id":"deploy-1","track_id":"%s","ms_played":1000,'
                            '"started_at":"%s"}' % (cl.tracks[0]["id"], started)))
            r = c.getresponse()
            check_eq(r.status, 201, f"POST /api/v1/plays: {r.read()!r}")
            c.close()
            n3.kill9()  # node1 suspects it, probes it, sees it dead
            time.sleep(3)
            n1.stop()
        finally:
            cl.close()
    calls = {}
    for ln in counts.read_text().splitlines():
        f = ln.split()
        if len(f) >= 2 and f[1].isdigit() and re.fullmatch(r"[a-z_0-9]+", f[0]) \
                and f[0] != "total":
            calls[f[0]] = int(f[1])
    check(len(calls) > 20 and "sendfile" in calls and "epoll_wait" in calls,
          f"strace's counts: {counts.read_text()[:2000]}")
    outside = sorted(set(calls) - allowed)
    print(f"# {len(calls)} distinct system calls, {sum(calls.values())} calls; outside "
          f"SystemCallFilter={' '.join(groups)}: {outside or 'none'}")
    check(not outside, f"system calls the unit's filter refuses (EPERM): {outside}")


if __name__ == "__main__":
    main()
