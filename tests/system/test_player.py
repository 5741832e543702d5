#!/usr/bin/python3
"""The store player (web/player/, docs/player.md) in a real browser:
Debian's Chromium, headless with autoplay allowed, driven through
playwright-core by player_browser.mjs, on three nodes on one PostgreSQL.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_player.py

One test, in steps, on a library of six MP3s of 20-30 s: an admin makes a
location, a zone, a playlist and a schedule of all day every day; a store
key bound to the zone opens /player. Then:

  (a) it plays: the page's clock (seconds of audio played, sampled every
      100 ms in the page) advances with the wall clock, the hours ahead
      are in the Service Worker's cache;
  (b) the node the player uses is killed with SIGKILL: the clock never
      stands still for 1 s or more, and the player carries on with
      another node;
  (c) every node is stopped for two minutes: it plays on from its buffer
      across track boundaries, the clock never standing still for 1 s;
  (d) one node comes back: every play the page recorded (those of the
      outage marked offline) is in GET /api/v1/reports/plays?group=none
      exactly once, by event id, and nothing else of this key is.

Screenshots go to build/test-output/test_player/ ($CHORUS_TEST_OUTPUT).
"""

import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
import chorus_test  # noqa: E402
from chorus_test import (  # noqa: E402
    REPO, Node, bearer, check, check_eq, client_event_id, fail, http_request, ingest_ok,
    main, make_audio, make_key, shared_dir, skip, test, wait_for)
from console_page import CHROMIUM, NODE_JS, PLAYWRIGHT, output_dir  # noqa: E402

OUT = output_dir("test_player")
DRIVER = pathlib.Path(__file__).with_name("player_browser.mjs")
SECONDS = (20, 24, 28, 22, 26, 30)
OUTAGE_S = 120
STALL_MAX_S = 1.0
JSON_CT = {"Content-Type": "application/json"}


class Browser:
    """player_browser.mjs: one JSON request a line, one answer a line."""

    def __init__(self, profile, out):
        self.out = pathlib.Path(out)
        self.log = open(self.out / "browser.log", "wb")
        self.proc = subprocess.Popen([NODE_JS, str(DRIVER), str(profile)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True)
        self.n = 0

    def __call__(self, cmd, **kw):
        self.n += 1
        self.proc.stdin.write(json.dumps({"id": self.n, "cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            fail(f"the browser driver exited during {cmd}: "
                 f"{(self.out / 'browser.log').read_text(errors='replace')[-2000:]}")
        a = json.loads(line)
        if not a["ok"]:
            fail(f"browser: {cmd} {json.dumps(kw)[:300]}: {a['error']}")
        return a["value"]

    def js(self, expr):
        return self("eval", expr=expr)

    def state(self):
        return self.js("window.chorusPlayer ? chorusPlayer.state() : null")

    def shot(self, name):
        p = self.out / f"{name}.png"
        self("shot", path=str(p))
        print(f"# screenshot {p.relative_to(REPO) if p.is_relative_to(REPO) else p}", flush=True)
        return p

    def close(self):
        if self.proc.poll() is None:
            try:
                self("quit")
                self.proc.wait(15)
            except Exception:  # noqa: BLE001 (then by force, by its id)
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def library():
    """Six MP3s of noise, 20-30 s, each its own artist: (dir, files)."""
    root = shared_dir("player-lib") / "src"
    files = []
    for i, s in enumerate(SECONDS):
        p = root / f"p{i}.mp3"
        if not p.exists():
            make_audio(p, "mp3", s, {"title": f"Song {i}", "artist": f"Band {i}",
                                     "album": "Store"}, seed=700 + i)
        files.append(p)
    return root, files


# The page's clock (chorusPlayer.clock(): seconds of audio played), sampled
# every 100 ms: [performance.now() ms, clock s].
SAMPLER = """(() => {
  window.__samples = [];
  setInterval(() => __samples.push([performance.now(), chorusPlayer.clock()]), 100);
  return true;
})()"""


def samples_since(b, t_ms):
    return b.js(f"__samples.filter(s => s[0] >= {t_ms})")


def stall(samples):
    """The longest time (s) the clock did not advance, and the clock's gain."""
    if len(samples) < 2:
        return None, 0
    worst, last_t, last_v = 0.0, samples[0][0], samples[0][1]
    for t, v in samples[1:]:
        if v > last_v + 1e-4:
            last_t, last_v = t, v
        worst = max(worst, (t - last_t) / 1000)
    return worst, samples[-1][1] - samples[0][1]


def page_now(b):
    return b.js("performance.now()")


@test("the store player: plays, survives a node's SIGKILL and a 2-minute outage, every play once")
def _(tmp):
    for path, what in ((CHROMIUM, "Chromium"), (NODE_JS, "Node.js"),
                       (PLAYWRIGHT, "playwright-core")):
        if not path or not os.path.exists(path):
            fail(f"{what} is not installed (scripts/deps.sh test installs it)")
    t_start = time.monotonic()
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(pg.server())
        src, _files = library()
        origin = f"dir:{tmp / 'origin'}"
        ingest_ok(tmp / "ing", src, db=db.conninfo, origin=origin)
        ports = [pg.free_port() for _ in range(3)]

        def start(i):
            return Node(tmp / f"node{i}", tmp / "logs", tag=f"node{i}",
                        args=["--db", db.conninfo, "--origin", origin,
                              "--listen", f"127.0.0.1:{ports[i]}"])

        nodes = [start(i) for i in range(3)]
        n0 = nodes[0]
        wait_for("three nodes alive", lambda: sum(
            m["state"] == "alive" for m in n0.get_json("/api/v1/cluster")["nodes"]) == 3, 15)
        tracks = n0.get_json("/api/v1/tracks")["tracks"]
        check_eq(len(tracks), len(SECONDS), "tracks in the catalog")

        # The store: a location, a zone, a playlist, a week of all day.
        def post(path, body, status=201, method="POST"):
            r = n0.request(method, path, JSON_CT, json.dumps(body))
            if r.status != status:
                fail(f"{method} {path}: {r.status}, want {status}", r)
            return r.json()

        loc = post("/api/v1/locations", {"name": "Shop P", "timezone": "Europe/Berlin",
                                         "country": "DE", "licence": "interactive"})
        zone = post("/api/v1/zones", {"location_id": loc["id"], "name": "Floor"})
        pl = post("/api/v1/playlists", {"name": "All day", "tracks": [t["id"] for t in tracks]})
        days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        post(f"/api/v1/zones/{zone['id']}/schedule",
             {"dayparts": [{"days": days, "from": "00:00", "to": "24:00",
                            "playlist_id": pl["id"]}], "separation_minutes": 0},
             status=200, method="PUT")
        key = make_key(tmp / "cli", "store", db=db.conninfo, location=loc["id"], zone=zone["id"],
                       name="till-p")
        key_id = key.split("_")[1]
        wait_for("the store key and its queue on every node", lambda: all(
            http_request(n.port, "GET", f"/api/v1/zones/{zone['id']}/queue?hours=1",
                         bearer(key)).status == 200 for n in nodes), 15)
        q = json.loads(http_request(n0.port, "GET", f"/api/v1/zones/{zone['id']}/queue?hours=1",
                                    bearer(key)).body)
        check(len(q["items"]) > 100, "an hour's queue of 20-30 s tracks", q)
        print(f"# set up in {time.monotonic() - t_start:.1f} s", flush=True)

        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        b = Browser(tmp / "chromium", OUT)
        stack.callback(b.close)
        b("page", width=900, height=1000)
        b("goto", url=f"http://127.0.0.1:{n0.port}/player#key={key}")

        # (a) it plays, from the cache, the hours ahead kept.
        try:
            b("until", expr="window.chorusPlayer && chorusPlayer.state().playing &&"
                            " chorusPlayer.clock() > 1", timeout=20000)
        except chorus_test.TestFailure:
            b.shot("a-not-playing")
            fail("the player is not playing within 20 s", b.state())
        check(not b.js("location.hash"), "the key is removed from the address")
        b.js(SAMPLER)
        t0 = page_now(b)
        time.sleep(3)
        st = b.state()
        worst, gain = stall(samples_since(b, t0))
        print(f"# (a) playing {st['playing']['track_id']} at {st['playing']['position']:.1f} s "
              f"on {st['node']}; clock +{gain:.2f} s in 3 s; buffered {st['buffered_s']} s; "
              f"cached {len(st['cached'])} tracks", flush=True)
        check(st["sw"], "the Service Worker controls the page", st)
        check(2.0 < gain < 4.0, f"the clock advanced {gain:.2f} s in 3 s", st)
        check(worst < STALL_MAX_S, f"a stall of {worst:.2f} s while playing", st)
        check(st["location"] == loc["id"] and st["zone"] == zone["id"],
              "the key's location and zone", st)
        wait_for("every track of the playlist in the cache",
                 lambda: len(b.state()["cached"]) == len(SECONDS), 30, step=0.5,
                 context=b.state)
        check(b.state()["buffered_s"] > 3600, "more than an hour buffered", b.state())
        b.shot("a-playing")

        def device():
            r = n0.get(f"/api/v1/devices?location_id={loc['id']}")
            check_eq(r.status, 200, "GET /api/v1/devices", r)
            return next((d for d in r.json()["items"] if d.get("name") == "till-p"), None)

        def device_playing():
            d = device()
            return d if d and d.get("online") and d.get("playing") and \
                (d.get("buffered_s") or 0) > 3600 else None

        d, _ = wait_for("the device's status in GET /api/v1/devices", device_playing, 40,
                        step=0.5, context=device)
        print(f"# (a) the device as the console sees it: playing "
              f"{d['playing'].get('track_id')}, buffered {d['buffered_s']} s, "
              f"last error {d.get('last_error')!r}", flush=True)

        # (b) the node the player uses dies.
        used = b.state()["node"]
        victim = next(n for n in nodes if used.endswith(f":{n.port}"))
        t_kill = page_now(b)
        victim.kill9()
        time.sleep(8)
        st = b.state()
        worst, gain = stall(samples_since(b, t_kill))
        print(f"# (b) killed {used}: longest stall {worst:.2f} s, clock +{gain:.2f} s in 8 s; "
              f"now on {st['node']}, events on {st['eventsNode']}", flush=True)
        check(worst < STALL_MAX_S, f"a stall of {worst:.2f} s after the node's SIGKILL", st)
        check(gain > 6.5, f"the clock advanced {gain:.2f} s in 8 s", st)
        wait_for("the player on another node", lambda: (
            (s := b.state())["eventsNode"] and s["eventsNode"] != used and s["node"] != used),
            20, step=0.5, context=b.state)
        b.shot("b-after-kill")
        stall_b = worst

        # (c) every node gone for two minutes.
        before = {p["event_id"] for p in b.js("chorusPlayer.plays()")}
        t_out = page_now(b)
        for n in nodes:
            if n.running():
                n.stop()
        t_end = time.monotonic() + OUTAGE_S
        shot_taken = False
        while time.monotonic() < t_end:
            time.sleep(min(10, max(0, t_end - time.monotonic())))
            if not shot_taken and not b.state()["online"]:
                b.shot("c-offline")
                shot_taken = True
        st = b.state()
        worst, gain = stall(samples_since(b, t_out))
        outage_plays = [p for p in b.js("chorusPlayer.plays()") if p["event_id"] not in before]
        print(f"# (c) {OUTAGE_S} s with no node: longest stall {worst:.2f} s, clock +{gain:.1f} s;"
              f" {len(outage_plays)} plays recorded ({sum(p['offline'] for p in outage_plays)}"
              f" offline); online {st['online']}", flush=True)
        check(shot_taken, "the page said offline during the outage", st)
        check(worst < STALL_MAX_S, f"a stall of {worst:.2f} s in the outage", st)
        check(gain > OUTAGE_S - 5, f"the clock advanced {gain:.1f} s in {OUTAGE_S} s", st)
        check(len(outage_plays) >= 3, "track boundaries crossed in the outage", outage_plays)
        check(sum(p["offline"] for p in outage_plays) >= 3, "the outage's plays marked offline",
              outage_plays)
        stall_c = worst

        # (d) one node back (the one killed: its unshipped plays too).
        t_back = page_now(b)
        back = start(nodes.index(victim))
        wait_for("the page's plays all sent", lambda: b.state()["pending"] == 0, 30, step=0.5,
                 context=b.state)
        recorded = b.js("chorusPlayer.plays()")
        want = collections.Counter(p["event_id"] for p in recorded)
        check(all(c == 1 for c in want.values()), "the page's event ids are unique", recorded)

        def report():
            r = back.get(f"/api/v1/reports/plays?group=none&format=json")
            if r.status != 200:
                return None
            mine = [row for row in r.json()["rows"]
                    if str(row.get("event_id", "")).startswith(f"k{key_id}/")]
            return mine

        def complete():
            rows = report()
            got = rows and {client_event_id(r["event_id"]) for r in rows}
            return rows if got and set(want) <= got else None

        rows, _ = wait_for("every recorded play in the report", complete, 30, step=0.5,
                           context=lambda: (len(report() or []), len(want)))
        counts = collections.Counter(client_event_id(r["event_id"]) for r in rows)
        dup = {e: c for e, c in counts.items() if c != 1}
        extra = set(counts) - set(want)
        offline_rows = [r for r in rows if r.get("offline") in (True, "true", 1)]
        print(f"# (d) {len(want)} plays recorded by the page, {len(rows)} rows of this key in "
              f"the report, {len(offline_rows)} offline; duplicates {len(dup)}, unknown "
              f"{len(extra)}", flush=True)
        check_eq(dup, {}, "plays counted more than once")
        check_eq(extra, set(), "plays in the report the page never recorded")
        for p in outage_plays:
            row = next(r for r in rows if client_event_id(r["event_id"]) == p["event_id"])
            check(row.get("offline") in (True, "true", 1), "an outage play stored as offline",
                  row)
            # Stored with the names the shop has (docs/api.md, "Keys").
            check_eq((row.get("location"), row.get("zone")), ("Shop P", "Floor"),
                     "a play's location and zone", row)
        worst, gain = stall(samples_since(b, t_back))
        check(worst < STALL_MAX_S, f"a stall of {worst:.2f} s once a node came back")
        wait_for("the page online again", lambda: b.state()["online"], 20, step=0.5,
                 context=b.state)
        b.shot("d-back")
        ev = b("events")
        page_errors = [e for e in ev["errors"] if e.startswith("pageerror")]
        check_eq(page_errors, [], "uncaught errors on the page")
        outside = [o for o in ev["origins"] if not o.startswith("http://127.0.0.1:")]
        check_eq(outside, [], "requests outside the cluster")
        print(f"# stall max: {max(stall_b, stall_c):.2f} s; plays {len(want)} recorded, "
              f"{len(rows)} stored once each; {time.monotonic() - t_start:.0f} s in all",
              flush=True)
        back.stop()


# The music the page holds in the Cache API (its own page and worker
# aside): what a radio-style licence forbids.
CACHED_AUDIO = """(async () => {
  let n = 0;
  for (const k of await caches.keys())
    for (const r of await (await caches.open(k)).keys())
      if (new URL(r.url).pathname.startsWith("/player/audio/")) n++;
  return n;
})()"""


@test("a non-interactive shop: no music stored, no queue past 15 min; a playlist changed, a volume"
      " and a skip reach the playing page within 2 s")
def _(tmp):
    src, _files = library()
    data = tmp / "data"
    ingest_ok(data, src)
    n = Node(data, tmp / "logs")
    tracks = n.get_json("/api/v1/tracks")["tracks"]

    def call(method, path, body, status):
        r = n.request(method, path, JSON_CT, json.dumps(body))
        if r.status != status:
            fail(f"{method} {path}: {r.status}, want {status}", r)
        return r.json() if r.body else None

    loc = call("POST", "/api/v1/locations", {"name": "Radio R", "timezone": "America/New_York",
                                             "country": "US", "licence": "non-interactive"}, 201)
    zone = call("POST", "/api/v1/zones", {"location_id": loc["id"], "name": "Floor"}, 201)
    every = call("POST", "/api/v1/playlists",
                 {"name": "Every", "tracks": [t["id"] for t in tracks]}, 201)
    two = call("POST", "/api/v1/playlists",
               {"name": "Two", "tracks": [t["id"] for t in tracks[:2]]}, 201)
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    def week(pl):
        return {"dayparts": [{"days": days, "from": "00:00", "to": "24:00",
                              "playlist_id": pl["id"]}], "separation_minutes": 0}

    call("PUT", f"/api/v1/zones/{zone['id']}/schedule", week(every), 200)
    key = make_key(data, "store", location=loc["id"], zone=zone["id"], name="radio")
    t_now = time.time() * 1000
    q = json.loads(http_request(n.port, "GET", f"/api/v1/zones/{zone['id']}/queue?hours=8",
                                bearer(key)).body)
    check(q["to"] <= t_now + 15 * 60_000 + 1000 and q["items"],
          "a non-interactive queue reaches no further than now + 15 min", q["to"] - t_now)
    out = OUT.parent / "test_player_radio"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    b = Browser(tmp / "chromium", out)
    try:
        b("page", width=900, height=1000)
        b("goto", url=f"http://127.0.0.1:{n.port}/player#key={key}")
        b("until", expr="window.chorusPlayer && chorusPlayer.state().playing &&"
                        " chorusPlayer.clock() > 1", timeout=20000)
        st = b.state()
        check_eq(st["licence"], "non-interactive", "the page knows its licence")
        time.sleep(3)  # time to fill whatever it would
        check_eq(b.js(CACHED_AUDIO), 0, "tracks stored in the Cache API under a radio licence")
        check(len(b.state()["blobs"]) <= 2, "at most the current and the next track in memory",
              b.state())
        b.shot("radio-playing")

        # The console's writes (its API): each must reach the page in 2 s.
        lat = {}
        t0 = time.monotonic()
        call("POST", f"/api/v1/zones/{zone['id']}/commands", {"type": "volume", "volume": 30},
             202)
        wait_for("the volume on the page", lambda: b.state()["volume"] == 30, 2, step=0.05)
        lat["volume"] = time.monotonic() - t0
        before = b.state()["playing"]
        t0 = time.monotonic()
        call("POST", f"/api/v1/zones/{zone['id']}/commands", {"type": "skip"}, 202)
        wait_for("the skip on the page", lambda: (b.state()["playing"] or {}).get(
            "starts_at") != before["starts_at"], 2, step=0.05)
        lat["skip"] = time.monotonic() - t0
        t0 = time.monotonic()
        call("PUT", f"/api/v1/zones/{zone['id']}/schedule", week(two), 200)
        want = {t["id"] for t in tracks[:2]}
        new_version = json.loads(http_request(n.port, "GET", f"/api/v1/zones/{zone['id']}",
                                              bearer(key)).body)["version"]
        wait_for("the page's queue from the new playlist",
                 lambda: b.state()["version"] == new_version and b.state()["next"] in want,
                 2, step=0.05, context=b.state)
        lat["playlist changed"] = time.monotonic() - t0
        b.shot("radio-changed")
        print("# reached the playing page: " +
              ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in lat.items()), flush=True)
        page_errors = [e for e in b("events")["errors"] if e.startswith("pageerror")]
        check_eq(page_errors, [], "uncaught errors on the page")
    finally:
        b.close()
    n.stop()


if __name__ == "__main__":
    main()
