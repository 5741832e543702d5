#!/usr/bin/python3
"""Users and API keys: `chorus user ...` and `chorus key ...` on SQLite and
on a real PostgreSQL (tests/system/pg.py), the first start's admin, the
replication of keys and their revocation to every node's read model, one
admin from four nodes starting at once, the upgrade of catalogs and
databases made by an older chorus, and secrets kept out of logs, argv and
the audit trail."""

import os
import pathlib
import re
import sqlite3
import stat
import subprocess
import threading
import time

import pg
from chorus_test import (CHORUS_BIN, REPO, Node, check, check_eq, chorus_env, fail, main,
                         make_audio, run_chorus, skip, test, wait_for)

KEY_RE = re.compile(r"^chorus_([0-9a-f]{16})_([0-9a-f]{64})$")
# The release binary of commit 7e8a558, the last before users and keys:
# built from this repository's history once, into build/old-7e8a558/.
OLD_COMMIT = "7e8a558"
OLD_DIR = REPO / "build" / f"old-{OLD_COMMIT}"
_old_bin = None


def old_binary():
    """The old release binary, built on first use; skips the test where
    the history is not here (an exported tree)."""
    global _old_bin
    if _old_bin:
        return _old_bin
    binary = OLD_DIR / "build" / "release" / "chorus"
    if not binary.exists():
        have = subprocess.run(["git", "-C", REPO, "cat-file", "-e", f"{OLD_COMMIT}^{{commit}}"],
                              capture_output=True)
        if have.returncode != 0:
            skip(f"commit {OLD_COMMIT} is not in this checkout's history")
        tmp = OLD_DIR.with_name(OLD_DIR.name + ".tmp")
        subprocess.run(["rm", "-rf", tmp], check=True)
        tmp.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", REPO, "archive", OLD_COMMIT],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        b = subprocess.run(["make", "-s", "-j2", "VARIANT=release", "build/release/chorus"],
                           cwd=tmp, capture_output=True, timeout=900)
        if b.returncode != 0:
            fail(f"building {OLD_COMMIT}: {b.stderr.decode(errors='replace')[-2000:]}")
        subprocess.run(["rm", "-rf", OLD_DIR], check=True)
        tmp.rename(OLD_DIR)
    _old_bin = binary
    return binary


def chorus_in(args, stdin_text, env=None, timeout=60):
    """chorus with stdin_text on a pipe (not a terminal); (rc, out, err)."""
    p = subprocess.run([CHORUS_BIN] + [str(a) for a in args], input=stdin_text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=chorus_env(env),
                       timeout=timeout)
    out, err = p.stdout.decode(), p.stderr.decode()
    check("ERROR: AddressSanitizer" not in err and "runtime error:" not in err,
          f"sanitizer report from {args}", err)
    return p.returncode, out, err


def last_line(out):
    lines = out.rstrip("\n").split("\n")
    return lines[-1] if lines else ""


def key_create(where, *args):
    r = run_chorus(["key", "create"] + where + list(args))
    check_eq(r.rc, 0, "key create exit status", r)
    key = last_line(r.out)
    m = KEY_RE.match(key)
    check(m is not None, f"key create's last line is not a key: {key!r}", r)
    return key, m.group(1), m.group(2), r


def round_trip(where, audit_rows, logs):
    """The CLI's round trips against where (["--data", D] or ["--db", C]);
    audit_rows() returns the audit table as text. Secrets seen go to logs'
    checks: returns them."""
    secrets = []
    # A password from standard input, never from argv: while the command
    # waits for it, its command line holds no secret.
    p = subprocess.Popen([CHORUS_BIN, "user", "add", "ana", "--role", "editor"] + where,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=chorus_env())
    time.sleep(0.1)
    cmdline = pathlib.Path(f"/proc/{p.pid}/cmdline").read_bytes()
    out, err = p.communicate(b"correct horse battery\n", timeout=60)
    check_eq(p.returncode, 0, "user add exit status", out, err)
    check(b"correct horse" not in cmdline, "the password in the command line")
    secrets.append("correct horse battery")

    rc, out, err = chorus_in(["user", "add", "ANA", "--role", "listener"] + where, "x\n")
    check(rc != 0 and "exists already" in err, "a duplicate name (case folded) is refused",
          out, err)
    rc, out, err = chorus_in(["user", "add", "zed", "--role", "god"] + where, "x\n")
    check(rc != 0 and "unknown role" in err, "a bad role is refused", out, err)
    rc, out, err = chorus_in(["user", "add", "bad name", "--role", "editor"] + where, "x\n")
    check(rc != 0 and "user name" in err, "a bad name is refused", out, err)
    rc, out, err = chorus_in(["user", "add", "bob", "--role", "listener"] + where, "")
    check(rc != 0 and "no password" in err, "an empty standard input is refused", out, err)
    rc, out, err = chorus_in(["user", "passwd", "nobody"] + where, "x\n")
    check(rc != 0 and "no user" in err, "passwd of an unknown user is refused", out, err)
    r = run_chorus(["user", "remove", "nobody"] + where)
    check(r.rc != 0 and "no user" in r.err, "remove of an unknown user is refused", r)
    r = run_chorus(["user", "add", "carl"] + where)
    check(r.rc == 2 and "--role" in r.err, "user add without --role", r)

    rc, out, err = chorus_in(["user", "add", "b.o_b@x-y", "--role", "listener"] + where,
                             "second-secret\n")
    check_eq(rc, 0, "user add bob", out, err)
    secrets.append("second-secret")
    rc, out, err = chorus_in(["user", "passwd", "Ana"] + where, "third-secret\n")
    check_eq(rc, 0, "user passwd", out, err)
    secrets.append("third-secret")
    r = run_chorus(["user", "list"] + where)
    check_eq(r.rc, 0, "user list", r)
    names = [ln.split()[0] for ln in r.out.splitlines()[1:]]
    check("ana" in names and "b.o_b@x-y" in names, f"user list: {names}", r)
    check("argon2" not in r.out and "secret" not in r.out, "user list shows a password", r)
    r = run_chorus(["user", "remove", "b.o_b@x-y"] + where)
    check_eq(r.rc, 0, "user remove", r)
    r = run_chorus(["user", "list"] + where)
    check("b.o_b@x-y" not in r.out, "a removed user is still listed", r)

    r = run_chorus(["location", "add", "Paris 1", "--timezone", "Europe/Paris", "--country",
                    "FR"] + where)
    check_eq(r.rc, 0, "location add", r)
    paris = r.out.strip()
    r = run_chorus(["key", "create", "--role", "store", "--location", "Paris 2"] + where)
    check(r.rc != 0 and "no location" in r.err, "a store key for a location that is not", r)
    key, kid, secret, r = key_create(where, "--role", "store", "--location", "paris 1",
                                     "--name", "till 3")
    secrets.append(secret)
    logs.append(r.err)
    key2, kid2, secret2, r = key_create(where, "--role", "listener")
    secrets.append(secret2)
    r = run_chorus(["key", "create", "--role", "store"] + where)
    check(r.rc != 0 and "--location" in r.err, "a store key without a location", r)
    r = run_chorus(["key", "create", "--role", "editor", "--location", "X"] + where)
    check(r.rc != 0 and "store keys only" in r.err, "a location on an editor key", r)
    r = run_chorus(["key", "create", "--role", "boss"] + where)
    check(r.rc != 0 and "unknown role" in r.err, "a key of a bad role", r)
    r = run_chorus(["key", "list"] + where)
    check_eq(r.rc, 0, "key list", r)
    check(kid in r.out and kid2 in r.out and paris in r.out, "key list lacks a key", r)
    check(secret not in r.out and secret2 not in r.out, "key list shows a secret", r)
    check(not re.search(r"[0-9a-f]{64}", r.out), "key list shows a 64-digit hash", r)
    r = run_chorus(["key", "revoke", kid2] + where)
    check_eq(r.rc, 0, "key revoke", r)
    r = run_chorus(["key", "revoke", kid2] + where)
    check(r.rc != 0 and "revoked already" in r.err, "a second revoke must fail", r)
    r = run_chorus(["key", "revoke", "0123456789abcdef"] + where)
    check(r.rc != 0 and "no key" in r.err, "revoke of an unknown key", r)
    r = run_chorus(["key", "revoke", "nothex"] + where)
    check(r.rc != 0 and "hex" in r.err, "revoke of a malformed id", r)
    r = run_chorus(["key", "list"] + where)
    row = [ln for ln in r.out.splitlines() if ln.startswith(kid2)]
    check(row and "Z" in row[0].split()[5:7][-1], f"the revoked key's row: {row}", r)

    rows = audit_rows()
    actions = [a for a in re.findall(r"(user\.\w+|key\.\w+)", rows)]
    check_eq(actions, ["user.add", "user.add", "user.passwd", "user.remove", "key.create",
                       "key.create", "key.revoke"], "audit actions", rows)
    for s in secrets:
        check(s not in rows, "a secret in the audit trail", rows)
    check("argon2" not in rows and not re.search(r"[0-9a-f]{64}", rows),
          "a hash in the audit trail", rows)
    return secrets, (key, kid)


def sqlite_audit(data):
    def rows():
        with sqlite3.connect(data / "catalog.db") as c:
            return "\n".join("|".join(str(v) for v in r)
                             for r in c.execute("SELECT * FROM audit ORDER BY id"))
    return rows


@test("user and key round trips on SQLite: errors, no secret listed or audited or in argv")
def _(tmp):
    data = tmp / "d"
    logs = []
    secrets, _ = round_trip(["--data", data], sqlite_audit(data), logs)
    with sqlite3.connect(data / "catalog.db") as c:
        check_eq(c.execute("PRAGMA user_version").fetchone()[0], 8, "catalog schema version")
    for s in secrets:
        for log in logs:
            check(s not in log, "a secret in a log", log)


@test("user and key round trips on PostgreSQL (--db and CHORUS_DB)")
def _(tmp):
    with pg.server() as db:
        logs = []
        secrets, _ = round_trip(["--db", db.conninfo, "--data", tmp / "d"],
                                lambda: "\n".join("|".join(r) for r in
                                                  db.query("SELECT * FROM audit ORDER BY id")),
                                logs)
        r = run_chorus(["key", "list"], env={"CHORUS_DB": db.conninfo})
        check_eq(r.rc, 0, "key list with $CHORUS_DB", r)
        check_eq(len(r.out.splitlines()), 3, "keys listed with $CHORUS_DB", r)
        check_eq(db.value("SELECT version FROM chorus_schema"), "7", "PostgreSQL schema")
        try:
            db.query("DELETE FROM api_keys")
            fail("PostgreSQL let an API key be deleted")
        except RuntimeError as e:
            check("never deleted" in str(e), f"delete refused: {e}")
        pglog = db.log()
        for s in secrets:
            check(s not in pglog, "a secret in PostgreSQL's log", pglog[-2000:])
        check(not (tmp / "d" / "catalog.db").exists(), "--db wrote a catalog.db")


@test("a fresh node prints the admin password once, writes DATA/admin-password 0600; passwd removes it")
def _(tmp):
    data = tmp / "d"
    n = Node(data, tmp / "logs")
    res = n.stop()
    found = re.findall(r"^admin password: (\S+)$", res.out, re.M)
    check_eq(len(found), 1, "admin password lines", res)
    pw = found[0]
    f = data / "admin-password"
    check(f.exists(), "no DATA/admin-password", res)
    check_eq(stat.S_IMODE(f.stat().st_mode), 0o600, "admin-password's mode")
    check_eq(f.read_text(), pw + "\n", "admin-password's content")
    check(pw not in res.err, "the admin password in the log", res)
    with sqlite3.connect(data / "catalog.db") as c:
        row = c.execute("SELECT name, role, substr(password, 1, 10) FROM users").fetchall()
        check_eq(row, [("admin", "admin", "$argon2id$")], "the users")
        audit = "\n".join(str(r) for r in c.execute("SELECT * FROM audit"))
        check(pw not in audit and "first-start" in audit, "the first start's audit row", audit)
    n2 = Node(data, tmp / "logs")
    res2 = n2.stop()
    check("admin password" not in res2.out, "a second start printed a password", res2)
    check(f.exists(), "the second start removed admin-password")
    rc, out, err = chorus_in(["user", "passwd", "admin", "--data", data], "new-admin-pw\n")
    check_eq(rc, 0, "user passwd admin", out, err)
    check(not f.exists(), "user passwd admin kept DATA/admin-password", out)
    n3 = Node(data, tmp / "logs")
    res3 = n3.stop()
    check("admin password" not in res3.out and not f.exists(),
          "a start after the change made another admin", res3)


@test("a catalog made by the release binary of 7e8a558 opens, migrates and keeps its tracks")
def _(tmp):
    old = old_binary()
    src = tmp / "src" / "a.flac"
    make_audio(src, "flac", 1.0, {"title": "Old Song", "artist": "Old Band", "album": "Old"})
    data = tmp / "d"
    p = subprocess.run([old, "ingest", "--no-progress", "--data", data, src.parent],
                       capture_output=True, env=chorus_env(), timeout=120)
    check_eq(p.returncode, 0, "the old binary's ingest", p.stderr.decode())
    with sqlite3.connect(data / "catalog.db") as c:
        check_eq(c.execute("PRAGMA user_version").fetchone()[0], 3, "the old catalog's version")
    n = Node(data, tmp / "logs")
    tracks = n.get_json("/api/v1/tracks")["tracks"]
    res = n.stop()
    check_eq([t["title"] for t in tracks], ["Old Song"], "tracks after the upgrade")
    check_eq(len(re.findall(r"^admin password: ", res.out, re.M)), 1,
             "the upgraded node's first start made an admin", res)
    with sqlite3.connect(data / "catalog.db") as c:
        check_eq(c.execute("PRAGMA user_version").fetchone()[0], 8, "the upgraded version")
        check_eq(c.execute("SELECT count(*) FROM users").fetchone()[0], 1, "users")
    key, kid, secret, _ = key_create(["--data", data], "--role", "listener")


def model_key(node, kid):
    """(present, revoked) of key kid in node's read model."""
    with sqlite3.connect(f"file:{node.data / 'catalog.db'}?mode=ro", uri=True) as c:
        r = c.execute("SELECT revoked_at FROM api_keys WHERE id = ?", (kid,)).fetchone()
    return (r is not None, r is not None and r[0] is not None)


@test("two nodes on PostgreSQL: a key and its revocation reach both read models within 2 s")
def _(tmp):
    origin = f"dir:{tmp / 'origin'}"
    with pg.server() as db:
        n1 = Node(tmp / "n1", tmp / "logs", args=["--db", db.conninfo, "--origin", origin],
                  tag="n1")
        n2 = Node(tmp / "n2", tmp / "logs", args=["--db", db.conninfo, "--origin", origin],
                  tag="n2")
        where = ["--db", db.conninfo, "--data", tmp / "cli"]
        r = run_chorus(["location", "add", "Lyon", "--timezone", "Europe/Paris", "--country",
                        "FR"] + where)
        check_eq(r.rc, 0, "location add", r)
        key, kid, secret, _ = key_create(where, "--role", "store", "--location", "Lyon")
        t0 = time.monotonic()
        for n in (n1, n2):
            wait_for("the key in a read model", lambda n=n: model_key(n, kid) == (True, False),
                     2.0, step=0.01)
        print(f"# key on both nodes {time.monotonic() - t0:.3f} s after key create returned")
        r = run_chorus(["key", "revoke", kid] + where)
        check_eq(r.rc, 0, "key revoke", r)
        t0 = time.monotonic()
        for n in (n1, n2):
            wait_for("the revocation in a read model",
                     lambda n=n: model_key(n, kid) == (True, True), 2.0, step=0.01)
        print(f"# revocation on both nodes {time.monotonic() - t0:.3f} s after key revoke")
        # Users travel too; the audit stays in PostgreSQL.
        rc, out, err = chorus_in(["user", "add", "eve", "--role", "listener"] + where,
                                 "eve-password\n")
        check_eq(rc, 0, "user add", out, err)
        for n in (n1, n2):
            def has_eve(n=n):
                with sqlite3.connect(f"file:{n.data / 'catalog.db'}?mode=ro", uri=True) as c:
                    return c.execute("SELECT count(*) FROM users WHERE name = 'eve'"
                                     ).fetchone()[0] == 1
            wait_for("a user in a read model", has_eve, 2.0, step=0.01)
        r = run_chorus(["user", "remove", "eve"] + where)
        check_eq(r.rc, 0, "user remove", r)
        for n in (n1, n2):
            def no_eve(n=n):
                with sqlite3.connect(f"file:{n.data / 'catalog.db'}?mode=ro", uri=True) as c:
                    return c.execute("SELECT count(*) FROM users WHERE name = 'eve'"
                                     ).fetchone()[0] == 0
            wait_for("a removed user gone from a read model", no_eve, 2.0, step=0.01)
            with sqlite3.connect(f"file:{n.data / 'catalog.db'}?mode=ro", uri=True) as c:
                check_eq(c.execute("SELECT count(*) FROM audit").fetchone()[0], 0,
                         "audit rows in a read model")
        outs = []
        for n in (n1, n2):
            cmdline = pathlib.Path(f"/proc/{n.pid}/cmdline").read_bytes().decode()
            res = n.stop()
            outs.append(res)
            for s in (secret, "eve-password"):
                check(s not in res.err and s not in res.out and s not in cmdline,
                      "a secret in a node's log or command line", res)
        admins = sum(len(re.findall(r"^admin password: ", r.out, re.M)) for r in outs)
        check_eq(admins, 1, "admin passwords printed by the two nodes")
        check("eve-password" not in db.log() and secret not in db.log(),
              "a secret in PostgreSQL's log")


@test("four nodes starting at once on an empty PostgreSQL make exactly one admin")
def _(tmp):
    origin = f"dir:{tmp / 'origin'}"
    with pg.server() as db:
        nodes, errors = [None] * 4, []

        def start(i):
            try:
                nodes[i] = Node(tmp / f"n{i}", tmp / "logs",
                                args=["--db", db.conninfo, "--origin", origin], tag=f"n{i}")
            except BaseException as e:  # noqa: B036 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=start, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            for n in nodes:
                if n:
                    n.kill9()
            raise errors[0]
        check_eq(db.value("SELECT count(*) FROM users"), "1", "users in PostgreSQL")
        check_eq(db.value("SELECT count(*) FROM audit WHERE action = 'user.add'"), "1",
                 "user.add audit rows")
        results = [n.stop() for n in nodes]
        printed = [r for r in results if re.search(r"^admin password: ", r.out, re.M)]
        check_eq(len(printed), 1, "nodes that printed an admin password")
        pw = re.search(r"^admin password: (\S+)$", printed[0].out, re.M).group(1)
        files = [i for i in range(4) if (tmp / f"n{i}" / "admin-password").exists()]
        check_eq(len(files), 1, "data directories with admin-password")
        for r in results:
            check(pw not in r.err, "the admin password in a node's log", r)


@test("a database made by the release binary of 7e8a558 is upgraded: schema 7, tracks kept")
def _(tmp):
    old = old_binary()
    src = tmp / "src" / "a.flac"
    make_audio(src, "flac", 1.0, {"title": "Old Song", "artist": "Old Band", "album": "Old"})
    origin = f"dir:{tmp / 'origin'}"
    with pg.server() as db:
        p = subprocess.run([old, "ingest", "--no-progress", "--data", tmp / "i", "--db",
                            db.conninfo, "--origin", origin, src.parent],
                           capture_output=True, env=chorus_env(), timeout=120)
        check_eq(p.returncode, 0, "the old binary's ingest", p.stderr.decode())
        check_eq(db.value("SELECT version FROM chorus_schema"), "2", "the old schema")
        n = Node(tmp / "n1", tmp / "logs", args=["--db", db.conninfo, "--origin", origin])
        check_eq(db.value("SELECT version FROM chorus_schema"), "7", "the upgraded schema")
        titles = [t["title"] for t in n.get_json("/api/v1/tracks")["tracks"]]
        check_eq(titles, ["Old Song"], "tracks on the node")
        key, kid, secret, _ = key_create(["--db", db.conninfo], "--role", "admin")
        wait_for("the key in the read model", lambda: model_key(n, kid) == (True, False), 2.0,
                 step=0.01)
        res = n.stop()
        check_eq(len(re.findall(r"^admin password: ", res.out, re.M)), 1,
                 "the upgraded database's admin", res)


if __name__ == "__main__":
    main()
