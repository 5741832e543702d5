#!/usr/bin/python3
"""System test of deploy/patroni: three etcd and three Patroni-managed
PostgreSQL 15 members brought up on 127.0.0.1 from the deploy templates
(tests/system/patroni.py), then a failover seen through the multi-host
connection string chorus uses.

    /usr/bin/python3 tests/system/test_patroni_deploy.py

TAP output: "1..N", then "ok K - ..." / "not ok K - ..." per step, with
diagnostics ("# failover: N.N s") in between. The steps build on each other:
after a failed step the rest are reported "not ok" without running. Skips
("1..0 # SKIP") only when Patroni, etcd or PostgreSQL 15 is not installed.
PATRONI_TEST_KEEP=1 keeps the working directory (logs, data) afterwards.
"""

import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from patroni import PatroniCluster, missing_binaries, psql  # noqa: E402


class StepFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise StepFailure(msg)


def diag(msg):
    for ln in str(msg).splitlines():
        print(f"# {ln}", flush=True)


class Writer(threading.Thread):
    """Inserts ids 1001, 1002, ... through conninfo, one psql each, until
    stopped; records (start, end, ok, id) of every attempt."""

    def __init__(self, conninfo):
        super().__init__(daemon=True)
        self.conninfo = conninfo
        self.attempts = []
        self.stopping = threading.Event()

    def run(self):
        k = 1000
        while not self.stopping.is_set():
            k += 1
            t0 = time.monotonic()
            r = psql(self.conninfo, f"INSERT INTO t (id, note) VALUES ({k}, 'writer')", timeout=5)
            self.attempts.append((t0, time.monotonic(), r.returncode == 0, k))
            if r.returncode != 0:
                time.sleep(0.05)

    def acked(self):
        return [k for _, _, ok, k in self.attempts if ok]

    def first_ok_started_after(self, t):
        for t0, t1, ok, k in list(self.attempts):
            if ok and t0 > t:
                return t1
        return None


def main():
    missing = missing_binaries()
    if missing:
        print(f"1..0 # SKIP not installed: {', '.join(missing)}")
        return 0

    work = tempfile.mkdtemp(prefix="chorus-patroni-")
    cluster = PatroniCluster(work)
    state = {}
    started = time.monotonic()

    def bring_up():
        cluster.start(timeout=60)
        diag(f"bring-up: {cluster.started_in:.1f} s (synchronous_mode: "
             f"{'on' if cluster.synchronous else 'off'})")

    def one_leader_two_replicas():
        c = cluster.cluster() or {}
        roles = sorted((m["role"], m["state"]) for m in c.get("members", []))
        leaders = [m["name"] for m in c["members"] if m["role"] == "leader"]
        check(len(leaders) == 1 and len(roles) == 3, f"members: {c}")
        reps = [r for r in roles if r[0] in ("replica", "sync_standby") and r[1] == "running"]
        check(len(reps) == 2, f"replicas: {c}")
        streaming = cluster.replicas_streaming()
        check(len(streaming) == 2, f"streaming from {leaders[0]}: {streaming}")
        if cluster.synchronous:
            check(sorted(streaming.values()) == ["async", "sync"], f"sync states: {streaming}")
        out = cluster.patronictl("list")
        check(out.returncode == 0, f"patronictl list: {out.returncode} {out.stderr}")
        lines = out.stdout.splitlines()
        n_leader = sum(1 for ln in lines if "| Leader " in ln)
        n_replica = sum(1 for ln in lines if "| Replica " in ln or "| Sync Standby " in ln)
        check(n_leader == 1 and n_replica == 2, f"patronictl list:\n{out.stdout}")
        diag(out.stdout.rstrip())
        state["leader"] = leaders[0]

    def write_through_conninfo():
        r = psql(cluster.conninfo(), "CREATE TABLE t (id int PRIMARY KEY, note text);"
                 " INSERT INTO t VALUES (1, 'before failover');"
                 " SELECT inet_server_port()")
        check(r.returncode == 0, f"psql: {r.returncode} {r.stderr}")
        port = int(r.stdout.strip())
        check(port == cluster.members[state["leader"]]["pg_port"],
              f"written on port {port}, not on the leader {state['leader']}")

    def failover():
        w = Writer(cluster.conninfo())
        state["writer"] = w
        w.start()
        deadline = time.monotonic() + 5
        while len(w.acked()) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        check(len(w.acked()) >= 5, f"writer: {w.attempts[-5:]}")
        t_kill = time.monotonic()
        old = cluster.kill_leader()
        state["old"] = old
        new = cluster.wait_leader(timeout=30, other_than=old)
        t_leader = time.monotonic() - t_kill
        deadline = time.monotonic() + 15
        while w.first_ok_started_after(t_kill) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        t_ok = w.first_ok_started_after(t_kill)
        time.sleep(0.5)  # a few more writes on the new leader
        w.stopping.set()
        w.join(10)
        check(t_ok is not None, f"no write succeeded within 15 s of Patroni naming {new}")
        state["new"] = new
        diag(f"failover: {t_ok - t_kill:.1f} s")
        diag(f"killed {old}; Patroni named {new} leader after {t_leader:.1f} s;"
             f" {len(w.acked())} of {len(w.attempts)} writes acknowledged")
        r = psql(cluster.conninfo(), "SELECT inet_server_port()")
        check(r.returncode == 0 and int(r.stdout) == cluster.members[new]["pg_port"],
              f"conninfo reaches port {r.stdout.strip()} {r.stderr}, not {new}")

    def no_acked_write_lost():
        r = psql(cluster.conninfo(), "SELECT id FROM t ORDER BY id")
        check(r.returncode == 0, f"psql: {r.stderr}")
        ids = {int(x) for x in r.stdout.split()}
        check(1 in ids, "the row written before the failover is gone")
        lost = sorted(set(state["writer"].acked()) - ids)
        check(not lost, f"acknowledged writes lost: {lost}")
        state["count"] = len(ids)

    def rejoin():
        old = state["old"]
        t0 = time.monotonic()
        cluster.restart_member(old)
        cluster.wait_streaming([old], timeout=40)
        c = cluster.cluster()
        role = {m["name"]: m["role"] for m in c["members"]}
        check(role[old] in ("replica", "sync_standby") and role[state["new"]] == "leader",
              f"roles after rejoin: {role}")
        deadline = time.monotonic() + 10
        while True:
            r = psql(cluster.member_conninfo(old),
                     "SELECT pg_is_in_recovery(), count(*) FROM t")
            if r.returncode == 0 and r.stdout.strip() == f"t|{state['count']}":
                break
            check(time.monotonic() < deadline,
                  f"{old} as replica: {r.stdout.strip()} {r.stderr.strip()},"
                  f" want t|{state['count']}")
            time.sleep(0.1)
        diag(f"rejoin: {time.monotonic() - t0:.1f} s ({old} streams from {state['new']} as "
             f"{role[old]})")

    steps = [
        ("3 etcd + 3 Patroni members up from deploy/patroni templates", bring_up),
        ("one leader and two streaming replicas (REST API, patronictl list)",
         one_leader_two_replicas),
        ("write through the multi-host conninfo lands on the leader", write_through_conninfo),
        ("after kill -9 of the leader's Patroni and postmaster, writes succeed on a new leader",
         failover),
        ("no acknowledged write lost in the failover", no_acked_write_lost),
        ("the killed member rejoins as a streaming replica with every row", rejoin),
    ]
    print(f"1..{len(steps)}", flush=True)
    failed_at = None
    passed = 0
    try:
        for i, (name, fn) in enumerate(steps, 1):
            if failed_at is not None:
                print(f"not ok {i} - {name} # not run: step {failed_at} failed", flush=True)
                continue
            t0 = time.monotonic()
            try:
                fn()
                print(f"ok {i} - {name} # {time.monotonic() - t0:.1f}s", flush=True)
                passed += 1
            except Exception as e:
                failed_at = i
                print(f"not ok {i} - {name} # {time.monotonic() - t0:.1f}s", flush=True)
                detail = str(e) if isinstance(e, StepFailure) else traceback.format_exc()
                sys.stderr.write(f"--- {name}\n{detail.rstrip()}\n")
                if not isinstance(e, (TimeoutError, RuntimeError)):  # those carry the logs
                    sys.stderr.write(cluster.log_tail() + "\n")
                sys.stderr.flush()
    finally:
        cluster.stop()
        if os.environ.get("PATRONI_TEST_KEEP"):
            diag(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"# {passed} passed, {len(steps) - passed} failed in "
          f"{time.monotonic() - started:.1f}s", flush=True)
    return 0 if failed_at is None else 1


if __name__ == "__main__":
    sys.exit(main())
