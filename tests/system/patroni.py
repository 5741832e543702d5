"""A three-member Patroni + etcd PostgreSQL 15 cluster on 127.0.0.1 for the
system tests (stdlib only, /usr/bin/python3).

Its configuration is generated from the deploy files, so that the tests
exercise them: deploy/patroni/etcd.env.in (one etcd member each),
deploy/patroni/patroni.yml.in and deploy/patroni/chorus-bootstrap.sql.in.
The only test-only changes are for speed: fsync off, initdb and
pg_basebackup --no-sync. Authentication is the deploy one (scram-sha-256
from the "cluster network", here 127.0.0.1/32), with random passwords.

    from patroni import PatroniCluster, missing_binaries

    c = PatroniCluster(workdir)      # everything lives under workdir
    try:
        c.start()                    # one leader, two streaming replicas, db chorus
        psql(c.conninfo(), "SELECT 1")
        old = c.kill_leader()        # kill -9 its Patroni and postmaster
        new = c.wait_leader(other_than=old)
        c.restart_member(old)        # comes back as a replica (pg_rewind)
        c.wait_streaming([old])
    finally:
        c.stop()                     # every process it started, by pid

Processes run as the `postgres` user (when we are root; else as ourselves,
the PostgreSQL superuser then being named after us),
each in its own session with output to a log file under workdir/logs, and
are ended by their process ids (their descendants found through /proc).
"""

import http.client
import json
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "patroni"
PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
ETCD = shutil.which("etcd", path=SYSTEM_PATH) or "/usr/bin/etcd"
PATRONI = shutil.which("patroni", path=SYSTEM_PATH) or "/usr/bin/patroni"
PATRONICTL = shutil.which("patronictl", path=SYSTEM_PATH) or "/usr/bin/patronictl"
PSQL = str(PG_BIN / "psql")

MEMBERS = ("pg1", "pg2", "pg3")
RUN_AS = "postgres"


def missing_binaries():
    """The programs the cluster needs that are not installed (empty: all there)."""
    need = [ETCD, PATRONI, PATRONICTL] + [str(PG_BIN / p) for p in
                                          ("postgres", "initdb", "pg_ctl", "psql", "pg_rewind",
                                           "pg_basebackup")]
    return [p for p in need if not os.access(p, os.X_OK)]


def render(template, values):
    """template (a Path) with every @KEY@ replaced by values[KEY]; fails when
    a placeholder is left without a value."""
    import re
    text = pathlib.Path(template).read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = sorted(set(re.findall(r"@([A-Z][A-Z0-9_]*)@", text)))
    if left:
        raise ValueError(f"{template}: no value for {', '.join(left)}")
    return text


def _patch(text, anchor, new_lines, after=True):
    """Inserts new_lines after (or before) the single line equal to anchor."""
    lines = text.split("\n")
    at = [i for i, ln in enumerate(lines) if ln == anchor]
    if len(at) != 1:
        raise ValueError(f"patroni.yml.in: {len(at)} lines {anchor!r}, want 1")
    i = at[0] + (1 if after else 0)
    return "\n".join(lines[:i] + list(new_lines) + lines[i:])


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def clean_env(extra=None):
    """A minimal environment: no PG*, proxy or locale surprises."""
    e = {"PATH": f"{PG_BIN}:{SYSTEM_PATH}", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    for k in ("TZ",):
        if k in os.environ:
            e[k] = os.environ[k]
    e.update(extra or {})
    return e


def psql(conninfo, sql, timeout=10):
    """Runs sql with psql on conninfo (-X -A -t, ON_ERROR_STOP); returns a
    CompletedProcess with text stdout/stderr. A timeout gives rc -9."""
    args = [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql]
    try:
        return subprocess.run(args, env=clean_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(args, -9, e.stdout or "", f"timed out after {timeout}s")


def _children():
    """{ppid: [pid, ...]} for every process, from /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _descendants(pid):
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _kill(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _get(port, path, timeout=1.0):
    """(status, parsed JSON or None) of GET http://127.0.0.1:port/path, or
    (None, None) when nothing answers."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        try:
            return r.status, json.loads(body.decode("utf-8"))
        except ValueError:
            return r.status, None
    except (OSError, http.client.HTTPException):
        return None, None
    finally:
        c.close()


class PatroniCluster:
    """Three etcd members and three Patroni-managed PostgreSQL 15 members
    (pg1, pg2, pg3) on free 127.0.0.1 ports, all under workdir."""

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logdir = self.workdir / "logs"
        self.passwords = {k: secrets.token_hex(12) for k in
                          ("SUPERUSER_PASSWORD", "REPLICATION_PASSWORD", "REWIND_PASSWORD",
                           "RESTAPI_PASSWORD", "CHORUS_PASSWORD")}
        ports = free_ports(12)
        self.members = {}
        for i, name in enumerate(MEMBERS):
            d = self.workdir / name
            self.members[name] = {
                "dir": d, "config": d / "patroni.yml", "data": d / "data",
                "pg_port": ports[i], "rest_port": ports[3 + i],
                "etcd": f"etcd{i + 1}", "etcd_dir": self.workdir / f"etcd{i + 1}",
                "etcd_client": ports[6 + i], "etcd_peer": ports[9 + i],
            }
        self.synchronous = "synchronous_mode: true" in (DEPLOY / "patroni.yml.in").read_text()
        self._procs = {}  # ("etcd" | "patroni", member) -> Popen
        self.killed = set()
        self.started_in = None  # seconds start() took
        if os.geteuid() == 0:
            pw = pwd.getpwnam(RUN_AS)
            self._user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            self._uid, self._gid, self._home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        else:
            self._user = {}
            self._uid, self._gid = os.geteuid(), os.getegid()
            self._home = str(self.workdir)
        self._os_user = pwd.getpwuid(self._uid).pw_name

    # ------------------------------------------------------------ configuration

    def _write_configs(self):
        etcd_hosts = ",".join(f"127.0.0.1:{m['etcd_client']}" for m in self.members.values())
        initial = ",".join(f"{m['etcd']}=http://127.0.0.1:{m['etcd_peer']}"
                           for m in self.members.values())
        self.logdir.mkdir(exist_ok=True)
        for name, m in self.members.items():
            m["dir"].mkdir(exist_ok=True)
            m["etcd_dir"].mkdir(exist_ok=True)
            env_text = render(DEPLOY / "etcd.env.in", {
                "ETCD_NAME": m["etcd"], "ETCD_DATA_DIR": m["etcd_dir"] / "data",
                "HOST": "127.0.0.1", "ETCD_PEER_PORT": m["etcd_peer"],
                "ETCD_CLIENT_PORT": m["etcd_client"], "ETCD_INITIAL_CLUSTER": initial})
            (m["etcd_dir"] / "etcd.env").write_text(env_text)
            m["etcd_env"] = self._parse_env(env_text)

            values = dict(self.passwords, NAME=name, HOST="127.0.0.1",
                          REST_PORT=m["rest_port"], PG_PORT=m["pg_port"], ETCD_HOSTS=etcd_hosts,
                          CONF_DIR=m["dir"], DATA_DIR=m["data"], SOCKET_DIR=m["dir"],
                          NETWORK="127.0.0.1/32")
            text = render(DEPLOY / "patroni.yml.in", values)
            # Test-only speed-ups, never in the deploy files.
            text = _patch(text, "  initdb:", ["    - no-sync"])
            text = _patch(text, "  basebackup:", ["    - no-sync"])
            text = _patch(text, "  parameters:", ['    fsync: "off"'])
            if self._os_user != "postgres":  # peer auth maps the OS user to the superuser
                for a, b in (("      username: postgres", f"      username: {self._os_user}"),
                             ("    - local all postgres peer",
                              f"    - local all {self._os_user} peer")):
                    if text.count(a) != 1:
                        raise ValueError(f"patroni.yml.in: want one line {a!r}")
                    text = text.replace(a, b)
            m["config"].write_text(text)
            os.chmod(m["config"], 0o600)
            sql = m["dir"] / "chorus-bootstrap.sql"
            sql.write_text(render(DEPLOY / "chorus-bootstrap.sql.in", self.passwords))
            os.chmod(sql, 0o600)
        self._make_reachable()
        for root, dirs, files in os.walk(self.workdir):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, self._uid, self._gid)

    @staticmethod
    def _parse_env(text):
        env = {}
        for ln in text.splitlines():
            ln = ln.strip()
            if ln and not ln.startswith("#"):
                k, _, v = ln.partition("=")
                env[k.strip()] = v.strip()
        return env

    def _make_reachable(self):
        """The postgres user must reach workdir: ancestors of ours (under the
        temp directory) lacking o+x get it."""
        import tempfile
        tmp = pathlib.Path(tempfile.gettempdir()).resolve()
        for d in self.workdir.parents:
            if d == tmp or tmp not in d.parents:
                break
            st = d.stat()
            if st.st_uid == os.geteuid() and not st.st_mode & 0o001:
                os.chmod(d, (st.st_mode & 0o7777) | 0o001)
        os.chmod(self.workdir, 0o755)

    # ------------------------------------------------------------ processes

    def _spawn(self, kind, name, args, env):
        log = open(self.logdir / f"{name if kind == 'patroni' else self.members[name]['etcd']}.log",
                   "ab")
        try:
            p = subprocess.Popen(args, env=env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                 **self._user)
        finally:
            log.close()
        self._procs[(kind, name)] = p
        return p

    def _start_etcd(self, name):
        m = self.members[name]
        env = clean_env(dict(m["etcd_env"], HOME=self._home))
        return self._spawn("etcd", name, [ETCD], env)

    def _start_patroni(self, name):
        m = self.members[name]
        env = clean_env({"HOME": self._home, "PATRONI_LOG_LEVEL": "INFO"})
        return self._spawn("patroni", name, [PATRONI, str(m["config"])], env)

    def _postmaster_pid(self, name):
        """The member's running postmaster's pid (from postmaster.pid), or None."""
        try:
            pid = int((self.members[name]["data"] / "postmaster.pid").read_text().split("\n")[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _comm(pid) in ("postgres", "postmaster") else None

    def _kill_member(self, name, etcd=False):
        """kill -9 the member's Patroni (and what it started) and its
        postmaster with its children; its etcd too when etcd is true."""
        pids = []
        p = self._procs.get(("patroni", name))
        if p is not None and p.poll() is None:
            pids += [p.pid] + _descendants(p.pid)
        pm = self._postmaster_pid(name)
        if pm is not None:
            pids += [pm] + _descendants(pm)
        e = self._procs.get(("etcd", name)) if etcd else None
        if e is not None and e.poll() is None:
            pids += [e.pid] + _descendants(e.pid)
        for pid in dict.fromkeys(pids):  # Patroni first, then the postmaster
            _kill(pid)
        for key in (("patroni", name),) + ((("etcd", name),) if etcd else ()):
            proc = self._procs.get(key)
            if proc is not None:
                proc.wait()

    # ------------------------------------------------------------ the API

    def start(self, timeout=60):
        """Starts 3 etcd and 3 Patroni members; returns when one leader and
        two streaming replicas are up and the database chorus answers."""
        started = time.monotonic()
        deadline = started + timeout
        self._write_configs()
        for name in MEMBERS:
            self._start_etcd(name)
        self._wait(lambda: all(_get(m["etcd_client"], "/health")[1] == {"health": "true"}
                               for m in self.members.values()),
                   deadline, "etcd cluster healthy")
        for name in MEMBERS:
            self._start_patroni(name)
        self.wait_streaming(timeout=max(1, deadline - time.monotonic()))
        self._wait(lambda: psql(self.conninfo(), "SELECT current_database()", 5).stdout.strip()
                   == "chorus", deadline, "database chorus reachable through conninfo()")
        self.started_in = time.monotonic() - started
        return self

    def conninfo(self):
        """The multi-host libpq string chorus would use (role chorus)."""
        hosts = ",".join("127.0.0.1" for _ in MEMBERS)
        ports = ",".join(str(self.members[n]["pg_port"]) for n in MEMBERS)
        return (f"host={hosts} port={ports} dbname=chorus user=chorus "
                f"password={self.passwords['CHORUS_PASSWORD']} "
                f"target_session_attrs=read-write connect_timeout=2")

    def member_conninfo(self, name):
        """role chorus on one member only (a replica answers read-only)."""
        return (f"host=127.0.0.1 port={self.members[name]['pg_port']} dbname=chorus user=chorus "
                f"password={self.passwords['CHORUS_PASSWORD']} connect_timeout=2")

    def alive(self):
        return [n for n in MEMBERS if n not in self.killed]

    def cluster(self):
        """GET /cluster from the first live member that answers, or None."""
        for n in self.alive():
            st, body = _get(self.members[n]["rest_port"], "/cluster")
            if st == 200 and body:
                return body
        return None

    def status(self, name):
        """GET /patroni of one member (None when it does not answer)."""
        return _get(self.members[name]["rest_port"], "/patroni")[1]

    def leader(self):
        """The leader's member name according to Patroni, or None when no
        live member reports a running leader."""
        c = self.cluster()
        for m in (c or {}).get("members", []):
            if m.get("role") == "leader" and m.get("state") == "running" \
                    and m["name"] not in self.killed:
                return m["name"]
        return None

    def kill_leader(self):
        """kill -9 the leader's Patroni and postmaster (and the postmaster's
        children, as when its server dies); returns its name."""
        name = self.leader()
        if name is None:
            raise RuntimeError("kill_leader: no leader\n" + self.log_tail())
        self.killed.add(name)
        self._kill_member(name)
        return name

    def wait_leader(self, timeout=30, other_than=None):
        """Waits for a running leader (not other_than) whose Patroni answers
        200 on /primary; returns its name."""
        deadline = time.monotonic() + timeout
        found = []

        def ok():
            n = self.leader()
            if n is None or n == other_than:
                return False
            if _get(self.members[n]["rest_port"], "/primary")[0] != 200:
                return False
            found.append(n)
            return True

        self._wait(ok, deadline, f"a leader other than {other_than}", interval=0.05)
        return found[-1]

    def restart_member(self, name):
        """Starts the Patroni of a killed member again; it rejoins as a
        replica (pg_rewind when its timeline diverged)."""
        self._kill_member(name)  # nothing left of it (no-op when already dead)
        self.killed.discard(name)
        self._start_patroni(name)

    def replicas_streaming(self):
        """{member: sync_state} of the replicas streaming from the leader."""
        lead = self.leader()
        if lead is None:
            return {}
        st = self.status(lead) or {}
        if st.get("role") != "master":
            return {}
        return {r.get("application_name"): r.get("sync_state")
                for r in st.get("replication") or [] if r.get("state") == "streaming"}

    def wait_streaming(self, names=None, timeout=30):
        """Waits until there is a leader and the members names (default: all
        others) stream from it as replicas (with a synchronous standby among
        them when the template enables synchronous_mode)."""
        deadline = time.monotonic() + timeout

        def ok():
            lead = self.leader()
            if lead is None:
                return False
            want = set(names or [n for n in self.alive() if n != lead])
            streaming = self.replicas_streaming()
            if not want <= set(streaming):
                return False
            c = self.cluster() or {}
            roles = {m["name"]: (m.get("role"), m.get("state")) for m in c.get("members", [])}
            if any(roles.get(n, (None, None))[0] not in ("replica", "sync_standby")
                   or roles[n][1] != "running" for n in want):
                return False
            # Commits wait for the synchronous standby once PostgreSQL has
            # one ("sync" in pg_stat_replication); only when Patroni has
            # also recorded it in etcd (role sync_standby) may it be
            # promoted in its place.
            if self.synchronous and not any(
                    r == "sync_standby" and streaming.get(n) == "sync"
                    for n, (r, _) in roles.items()):
                return False
            return True

        self._wait(ok, deadline, f"streaming replicas {names or 'all'}")

    def patronictl(self, *args, timeout=20):
        """patronictl -c <pg1's config> ARGS; a CompletedProcess (text)."""
        cfg = self.members[self.alive()[0] if self.alive() else MEMBERS[0]]["config"]
        return subprocess.run([PATRONICTL, "-c", str(cfg)] + list(args),
                              env=clean_env({"HOME": str(self.workdir)}),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)

    def stop(self):
        """Kills everything started, by pid (Patroni, postmasters and their
        children, etcd). Safe to call more than once and after failures."""
        for name in MEMBERS:
            try:
                self._kill_member(name)
            except Exception:  # go on with the others
                pass
        for name in MEMBERS:
            try:
                self._kill_member(name, etcd=True)
            except Exception:
                pass
        for p in self._procs.values():
            if p.poll() is None:
                _kill(p.pid)
                p.wait()

    # ------------------------------------------------------------ diagnostics

    def log_tail(self, lines=25):
        """The last lines of every log (etcd, Patroni, PostgreSQL)."""
        out = []
        logs = sorted(self.logdir.glob("*.log")) if self.logdir.exists() else []
        for name in MEMBERS:
            logs += sorted((self.members[name]["data"] / "log").glob("*.log")) \
                if (self.members[name]["data"] / "log").is_dir() else []
        for f in logs:
            try:
                t = f.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- {f}\n" + "\n".join(t))
        return "\n".join(out)

    def _wait(self, cond, deadline, what, interval=0.1):
        while True:
            if cond():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}\ncluster: "
                                   f"{json.dumps(self.cluster())}\n{self.log_tail()}")
            dead = [k for k, p in self._procs.items()
                    if p.poll() is not None and k[1] not in self.killed]
            if dead:
                raise RuntimeError(f"exited while waiting for {what}: {dead}\n{self.log_tail()}")
            time.sleep(interval)
