"""A throwaway PostgreSQL server for system tests.

    with pg.server() as db:            # initdb'd (from a cached template), started
        db.conninfo                    # "host=127.0.0.1 port=P dbname=chorus user=postgres"
        db.query("SELECT count(*) FROM tracks")   # rows as lists of strings
        db.stop(); db.start()          # an outage and its end

The server runs as the `postgres` user (initdb refuses root) on a free
loopback port, fully detached, with fsync off: these are tests of chorus,
not of PostgreSQL's durability. A template cluster is made once per
checkout (build/pg-template) and copied, which takes 0.3 s instead of 1.3 s.
"""

import contextlib
import glob
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "build" / "pg-template"


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found (run scripts/deps.sh)")
    return found[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)


def _chown_tree(path, user="postgres"):
    pw = pwd.getpwnam(user)
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for f in filenames:
            os.chown(os.path.join(dirpath, f), pw.pw_uid, pw.pw_gid)


def _template():
    """initdb once into build/pg-template (atomically: made aside, renamed)."""
    if (TEMPLATE / "PG_VERSION").exists():
        return TEMPLATE
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pg-template-", dir=TEMPLATE.parent))
    os.chmod(tmp, 0o700)
    _chown_tree(tmp)
    r = _as_postgres([pg_bin("initdb"), "-A", "trust", "--no-sync", "-E", "UTF8",
                      "--locale=C", "-U", "postgres", "-D", tmp])
    if r.returncode != 0:
        raise RuntimeError(f"initdb failed: {r.stderr}")
    with open(tmp / "postgresql.conf", "a") as f:
        f.write("\nfsync = off\nfull_page_writes = off\nsynchronous_commit = on\n"
                "max_connections = 200\nshared_buffers = 128MB\n")
    try:
        tmp.rename(TEMPLATE)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process made it first
    return TEMPLATE


class Server:
    def __init__(self, workdir):
        self.dir = pathlib.Path(workdir) / "pg"
        self.sock = pathlib.Path(workdir) / "pgsock"
        self.port = free_port()
        self.running = False

    @property
    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} dbname=chorus user=postgres connect_timeout=2"

    def create(self):
        shutil.copytree(_template(), self.dir, symlinks=True)
        os.chmod(self.dir, 0o700)
        self.sock.mkdir(exist_ok=True)
        os.chmod(self.dir.parent, 0o755)
        _chown_tree(self.dir)
        _chown_tree(self.sock)
        self.start()
        self.psql("postgres", "CREATE DATABASE chorus")

    def start(self, timeout=30):
        r = _as_postgres([pg_bin("pg_ctl"), "-D", self.dir, "-l", self.dir / "log", "-w",
                          "-t", timeout, "-o",
                          f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1",
                          "start"], timeout=timeout + 10)
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {r.stdout} {r.stderr}")
        self.running = True

    def stop(self, mode="fast"):
        if not self.running:
            return
        _as_postgres([pg_bin("pg_ctl"), "-D", self.dir, "-m", mode, "-w", "stop"], timeout=60)
        self.running = False

    def kill9(self):
        """The postmaster and every backend, at once."""
        pid = int((self.dir / "postmaster.pid").read_text().split()[0])
        subprocess.run(["pkill", "-9", "-P", str(pid)])
        os.kill(pid, 9)
        self.running = False

    def psql(self, db, sql, timeout=120):
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-F", "\t", "-c", sql],
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {sql}: {r.stderr}")
        return r.stdout

    def query(self, sql, timeout=120):
        out = self.psql("chorus", sql, timeout=timeout)
        return [line.split("\t") for line in out.splitlines() if line]

    def value(self, sql):
        rows = self.query(sql)
        return rows[0][0] if rows else None

    def log(self):
        p = self.dir / "log"
        return p.read_text(errors="replace") if p.exists() else ""


@contextlib.contextmanager
def server():
    work = pathlib.Path(tempfile.mkdtemp(prefix="chorus-pg-"))
    s = Server(work)
    try:
        s.create()
        yield s
    finally:
        try:
            s.stop("immediate")
        finally:
            shutil.rmtree(work, ignore_errors=True)
