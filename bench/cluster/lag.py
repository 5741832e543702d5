#!/usr/bin/python3
"""Replication lag of a cluster node under a steady ingest, for
bench/replication_lag.sh, against PostgreSQL's own LISTEN/NOTIFY.

    bench/cluster/lag.py --conninfo CONNINFO --port NODE_PORT --rate 10 --seconds 60
                         [--warmup 20] [--poll-ms 0.5] [--seed 2] [--tag T] [--key KEY]

The ingest: new tracks go into PostgreSQL's catalog tables at a fixed rate
(the schedule is absolute: a late commit does not shift the next ones; the
writer is a thread of its own, so a track slow to appear on the node does
not hold the next commits back),
one transaction each, through chorus's triggers (seq stamped, one NOTIFY
on chorus_catalog per transaction). Every 10th track starts a new album,
every 3rd new album a new artist, in the same transaction, as an ingest of
an album would. Names come from bench/search_gen.py's generator.

Per track, on CLOCK_MONOTONIC (shared by the processes):
  c0  just before COMMIT is sent,  c1  when COMMIT is acknowledged;
  vis when GET /api/v1/tracks/{id} on the node first answers 200 (the
      answer's arrival; the node is polled on one keep-alive connection
      every POLL_MS from c1 on, the tracks in commit order, each request
      with the admin key --key);
  ntf when a separate process LISTENing on chorus_catalog (psycopg2,
      select() on its socket) receives the notification of that commit:
      the floor for any replica that learns of changes by NOTIFY.
Lag "from commit" is measured from c1, "from COMMIT sent" from c0.

Prints a table on stderr and one line on stdout:
  lag tag=T n=N missing=M commit_ms_p50=.. chorus_p50_ms=.. chorus_p99_ms=..
      chorus_max_ms=.. notify_p50_ms=.. ... (both from c1 and from c0)
and writes the samples to --samples FILE (TSV) when given.
"""
import argparse
import http.client
import multiprocessing as mp
import os
import queue
import random
import select
import sys
import threading
import time

import psycopg2
import psycopg2.extensions

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from search_gen import CODECS, GENRES, Names, album_id, artist_id, name_key  # noqa: E402

CHANNEL = "chorus_catalog"


def listener(conninfo, ready, stop, out):
    conn = psycopg2.connect(conninfo)
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    cur = conn.cursor()
    cur.execute("LISTEN " + CHANNEL)
    times = []
    ready.set()
    while not stop.is_set():
        if select.select([conn], [], [], 0.1)[0]:
            conn.poll()
            t = time.monotonic()
            while conn.notifies:
                conn.notifies.pop(0)
                times.append(t)
    out.send(times)
    conn.close()


def pct(v, p):
    if not v:
        return float("nan")
    s = sorted(v)
    return s[min(len(s) - 1, int(len(s) * p / 100.0))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conninfo", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", default=os.environ.get("CHORUS_KEY"),
                    help="an admin API key (default: $CHORUS_KEY)")
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--poll-ms", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--tag", default="")
    ap.add_argument("--samples")
    ap.add_argument("--words", default="/usr/share/dict/american-english")
    a = ap.parse_args()

    with open(a.words, encoding="utf-8") as f:
        words = sorted({w.strip() for w in f if w.strip().isascii() and w.strip().isalpha()})
    rng = random.Random(a.seed * 1000 + int(a.rate))
    names = Names(rng, words)

    ctx = mp.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    rx, tx = ctx.Pipe(duplex=False)
    lp = ctx.Process(target=listener, args=(a.conninfo, ready, stop, tx), daemon=True)
    lp.start()
    ready.wait(10)

    db = psycopg2.connect(a.conninfo)
    cur = db.cursor()
    node = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
    poll_s = a.poll_ms / 1000.0
    auth = {"Authorization": "Bearer %s" % a.key} if a.key else {}

    state = {"artist": None, "album": None, "tn": 0, "year": 2024}

    def insert_track():
        if state["album"] is None or state["tn"] >= 10:
            if state["artist"] is None or rng.random() < 1 / 3:
                nm, _ = names.make(1, 3, "artist")
                nm += " %d" % rng.randrange(10**6)
                aid = artist_id(name_key(nm))
                cur.execute("INSERT INTO artists (id, name, name_key) VALUES (%s, %s, %s)"
                            " ON CONFLICT DO NOTHING", (aid, nm, name_key(nm)))
                state["artist"] = aid
            ti, _ = names.make(1, 4, "album")
            ti += " %d" % rng.randrange(10**6)
            alid = album_id(state["artist"], name_key(ti))
            state["year"] = rng.randint(1960, 2024)
            cur.execute("INSERT INTO albums (id, title, title_key, artist_id, year)"
                        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (alid, ti, name_key(ti), state["artist"], state["year"]))
            state["album"], state["tn"] = alid, 0
        state["tn"] += 1
        title, _ = names.make(1, 4, "track")
        tid = rng.getrandbits(63) or 1
        codec, mime, br = rng.choice(CODECS)
        dur = rng.randint(60000, 540000)
        size = dur * br // 8000 + rng.randint(1000, 200000)
        now = int(time.time())
        cur.execute(
            "INSERT INTO tracks (id, title, title_key, artist_id, album_id, track_number,"
            " disc_number, year, genre, duration_ms, codec, mime_type, bitrate, sample_rate,"
            " channels, size, chunk_size, chunk_count, key, blob, content_hash, created_at,"
            " updated_at) VALUES (%s,%s,%s,%s,%s,%s,1,%s,%s,%s,%s,%s,%s,44100,2,%s,%s,%s,%s,%s,%s,"
            "%s,%s)",
            (tid, title, name_key(title), state["artist"], state["album"], state["tn"],
             state["year"], rng.choice(GENRES), dur, codec, mime, br, size, 1 << 20,
             (size + (1 << 20) - 1) >> 20, psycopg2.Binary(rng.randbytes(32)),
             "%032x" % rng.getrandbits(128), "%064x" % rng.getrandbits(256), now, now))
        return tid

    def visible(tid, deadline):
        path = "/api/v1/tracks/%016x" % tid
        polls = 0
        while True:
            node.request("GET", path, headers=auth)
            r = node.getresponse()
            r.read()
            polls += 1
            if r.status == 200:
                return time.monotonic(), polls
            if r.status != 404:
                sys.exit("lag: GET %s: %d" % (path, r.status))
            if time.monotonic() > deadline:
                return None, polls
            time.sleep(poll_s)

    # The writer commits on its schedule in a thread of its own; the main
    # thread polls the node for each committed track in commit order (a
    # pass applies every change of its snapshot, in order, so a track is
    # never visible before an earlier one): a slow track does not hold
    # the ingest back.
    n = int(a.rate * a.seconds)
    committed = queue.Queue()
    wend = []
    t_start = time.monotonic() + 0.2

    def writer():
        for i in range(-a.warmup, n):
            slot = t_start + (i + a.warmup) / a.rate
            d = slot - time.monotonic()
            if d > 0:
                time.sleep(d)
            tid = insert_track()
            c0 = time.monotonic()
            db.commit()
            c1 = time.monotonic()
            committed.put((i, tid, c0, c1))
        wend.append(time.monotonic())
        committed.put(None)

    sys.setswitchinterval(0.0002)
    wt = threading.Thread(target=writer)
    wt.start()
    samples = []  # (i, tid, c0, c1, vis, polls)
    while True:
        item = committed.get()
        if item is None:
            break
        i, tid, c0, c1 = item
        vis, polls = visible(tid, c1 + a.timeout)
        if i >= 0:
            samples.append((i, tid, c0, c1, vis, polls))
    wt.join()
    late = wend[0] - (t_start + (n + a.warmup - 1) / a.rate)
    time.sleep(0.3)
    stop.set()
    ntimes = rx.recv()
    lp.join(5)

    # Each commit's notification: the first one received after its COMMIT
    # was sent (one per transaction; nothing else writes the catalog).
    ntimes.sort()
    j = 0
    rows = []
    for (i, tid, c0, c1, vis, polls) in samples:
        while j < len(ntimes) and ntimes[j] < c0:
            j += 1
        ntf = ntimes[j] if j < len(ntimes) else None
        if ntf is not None:
            j += 1
        rows.append((i, tid, c0, c1, vis, ntf, polls))

    ms = lambda x: x * 1000.0  # noqa: E731
    ok = [r for r in rows if r[4] is not None]
    missing = len(rows) - len(ok)
    ch1 = [ms(r[4] - r[3]) for r in ok]
    ch0 = [ms(r[4] - r[2]) for r in ok]
    nt = [r for r in rows if r[5] is not None]
    nt1 = [ms(r[5] - r[3]) for r in nt]
    nt0 = [ms(r[5] - r[2]) for r in nt]
    commit = [ms(r[3] - r[2]) for r in rows]
    polls = [r[6] for r in ok]
    if a.samples:
        with open(a.samples, "w") as f:
            f.write("i\tid\tcommit_ms\tchorus_ms_from_c1\tnotify_ms_from_c1\tpolls\n")
            for r in rows:
                f.write("%d\t%016x\t%.3f\t%s\t%s\t%d\n" % (
                    r[0], r[1], ms(r[3] - r[2]),
                    "%.3f" % ms(r[4] - r[3]) if r[4] else "", "%.3f" % ms(r[5] - r[3]) if r[5] else "",
                    r[6]))

    def line(label, v):
        print("%-34s %8.2f %8.2f %8.2f %8.2f %8.2f" % (label, pct(v, 50), pct(v, 90), pct(v, 99),
                                                      max(v) if v else float("nan"),
                                                      sum(v) / len(v) if v else float("nan")),
              file=sys.stderr)

    print("lag %s: %d tracks at %.0f/s (%d warm-up first), %d not visible within %.0f s, "
          "%d notifications for %d commits; the ingest ended %.0f ms behind its schedule" %
          (a.tag, len(rows), a.rate, a.warmup, missing, a.timeout, len(ntimes) - a.warmup,
           len(rows), max(0.0, ms(late))), file=sys.stderr)
    print("%-34s %8s %8s %8s %8s %8s" % ("ms", "p50", "p90", "p99", "max", "mean"), file=sys.stderr)
    line("COMMIT round trip (c1 - c0)", commit)
    line("chorus: visible on the node - c1", ch1)
    line("NOTIFY received - c1", nt1)
    line("chorus: visible - c0", ch0)
    line("NOTIFY received - c0", nt0)
    print("polls per track: mean %.1f, max %d" % (sum(polls) / max(1, len(polls)),
                                                  max(polls) if polls else 0), file=sys.stderr)
    f = lambda v, p: "%.2f" % pct(v, p)  # noqa: E731
    print("lag tag=%s n=%d missing=%d rate=%g commit_ms_p50=%s chorus_p50_ms=%s chorus_p99_ms=%s "
          "chorus_max_ms=%.2f notify_p50_ms=%s notify_p99_ms=%s notify_max_ms=%.2f "
          "chorus_c0_p50_ms=%s chorus_c0_p99_ms=%s chorus_c0_max_ms=%.2f notify_c0_p50_ms=%s "
          "notify_c0_p99_ms=%s notify_c0_max_ms=%.2f" %
          (a.tag, len(rows), missing, a.rate, f(commit, 50), f(ch1, 50), f(ch1, 99),
           max(ch1) if ch1 else float("nan"), f(nt1, 50), f(nt1, 99),
           max(nt1) if nt1 else float("nan"), f(ch0, 50), f(ch0, 99),
           max(ch0) if ch0 else float("nan"), f(nt0, 50), f(nt0, 99),
           max(nt0) if nt0 else float("nan")))
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
