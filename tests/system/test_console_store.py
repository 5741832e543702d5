#!/usr/bin/python3
"""The console's Stores and Devices views (web/console/, docs/console.md;
the API in docs/api.md, "In the store") in a real browser: Debian's
Chromium, headless, driven through playwright-core by
console_browser.mjs, on one standalone node with a generated library
(real audio made with ffmpeg: six "Morning" tracks of three artists, six
Jazz tracks of the 1990s of three others, one explicit, and a jingle).

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_console_store.py [NAME...]

The tests run in order on one node and one page, each a step of an
editor's session: log in (Stores and Devices among the tabs); make a
location (in a time zone where it is now between 09:30 and 10:29, so
that the week's morning covers the next hour whatever the hour here) and
a zone; a playlist of tracks chosen by search and one of rules (genre,
years, no explicit), their track counts and lengths on the page; a week
drawn in the grid (dayparts Mon-Fri and Sat-Sun, the separation, an
override closing two dates and one with other hours, an announcement
every 30 minutes and one at fixed times on Saturdays, with a spot track)
and saved, the next hour of the queue shown; an overlapping
daypart refused by the node (422) with its reason next to the grid; a
simulated device (an SSE client of GET /api/v1/zones/{id}/events with a
store key bound to the zone) told `changed` when the operator moves
today's morning to the other playlist in the grid and saves, and its
refetched queue playing the new playlist: the time from the click to
that queue is printed and must be under 2 s; Skip and volume reach the
device; the device's status (POST /api/v1/zones/{id}/status) on the
Devices view, online, what it plays, hours buffered; the device gone:
offline on the page as the API says (after its online window, which is
150 s: the test does not wait for it), and a box last heard ten minutes
ago (its row aged in the database) offline since then; a listener's page without the
store views and without a refused request; at the end no page error and
no request outside the node.

Screenshots go to build/test-output/test_console_store/
($CHORUS_TEST_OUTPUT, when set). Times are printed as TAP comments.
"""

import atexit
import datetime
import http.client
import json
import os
import pathlib
import queue
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chorus_test  # noqa: E402
from chorus_test import (  # noqa: E402
    CHORUS_BIN, Node, bearer, check, check_eq, chorus_env, fail, ingest_ok, main, make_audio,
    make_key, test, wait_for)
from console_page import (  # noqa: E402
    DESKTOP, PHONE, Browser, Page, browser_missing, output_dir, overflow_and_controls)

OUT = output_dir("test_console_store")
EDITOR, EDITOR_PW = "edna", "console-store-editor-pw-1"
LISTENER, LISTENER_PW = "lou", "console-store-listener-pw-1"
LOCATION, ZONE = "Harbour Street", "Shop floor"
MORNING, EVENING = "Morning mix", "Jazz nineties"
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Real zones of whole-hour offsets, -11 to +14: one of them is at 10:xx now.
ZONES = ["Pacific/Niue", "Pacific/Honolulu", "Pacific/Gambier", "Pacific/Pitcairn", "America/Phoenix",
         "America/Guatemala", "America/Bogota", "America/La_Paz", "America/Sao_Paulo",
         "America/Noronha", "Atlantic/Cape_Verde", "Africa/Abidjan", "Africa/Lagos",
         "Africa/Johannesburg", "Europe/Moscow", "Asia/Dubai", "Asia/Tashkent", "Asia/Dhaka",
         "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Brisbane", "Pacific/Noumea",
         "Pacific/Tarawa", "Pacific/Tongatapu", "Pacific/Kiritimati"]
SECONDS = 40  # each track's length


def user_add(data, name, role, password):
    """`chorus user add NAME --role ROLE --data DATA`, the password on stdin."""
    p = subprocess.run([CHORUS_BIN, "user", "add", name, "--role", role, "--data", str(data)],
                       input=password + "\n", capture_output=True, text=True,
                       env=chorus_env(), timeout=60)
    check_eq(p.returncode, 0, f"chorus user add {name}: {p.stdout} {p.stderr}")


def local_zone():
    """A zone where it is between 09:30 and 10:29 now: every day's morning
    (from 09:00 at the latest to 12:00) holds the next hour and the
    minutes the test takes. (name, its local now)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    want = 10 if now.minute < 30 else 9
    for z in ZONES:
        t = now.astimezone(zoneinfo.ZoneInfo(z))
        if t.hour == want:
            return z, t
    fail(f"no zone of the list is at {want}:{now.minute:02d} at {now.isoformat()}")


class Device:
    """A store's player as far as the console is concerned: an SSE client
    of the zone's events (a thread of its own), every event with the
    monotonic time it arrived; on `changed` it asks for the queue again
    at once, as a player does, and keeps the answer with its time."""

    def __init__(self, port, zone, key):
        self.port, self.zone, self.key = port, zone, key
        self.events = queue.Queue()  # (time, name, data)
        self.queues = queue.Queue()  # (time asked, time answered, queue)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", f"/api/v1/zones/{zone}/events",
                          headers={**bearer(key), "Accept": "text/event-stream"})
        self.sock = self.conn.sock  # the response keeps it; the connection may let go
        self.resp = self.conn.getresponse()
        check_eq(self.resp.status, 200, "the device's events stream",
                 self.resp.status == 200 or self.resp.read()[:300])
        ct = self.resp.getheader("content-type", "")
        check(ct.startswith("text/event-stream"), f"events Content-Type {ct!r}")
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        name, data = "message", []
        try:
            while True:
                line = self.resp.fp.readline()
                if not line:
                    break
                line = line.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if data:
                        t = time.monotonic()
                        d = json.loads("\n".join(data)) if data else None
                        self.events.put((t, name, d))
                        if name == "changed":
                            self.queues.put((t, *self._fetch()))
                    name, data = "message", []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
        except (OSError, ValueError):
            pass
        self.events.put((time.monotonic(), "closed", None))

    def _fetch(self):
        r = chorus_test.http_request(self.port, "GET", f"/api/v1/zones/{self.zone}/queue?hours=1",
                                     bearer(self.key))
        return time.monotonic(), (r.json() if r.status == 200 else {"status": r.status})

    def next_event(self, want, timeout):
        """The next event named `want` (others are skipped): (time, data)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"the device got no {want} event within {timeout:g} s (got {seen})")
            try:
                t, name, data = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if name == want:
                return t, data
            seen.append(name)

    def drain(self):
        while not self.events.empty():
            self.events.get_nowait()
        while not self.queues.empty():
            self.queues.get_nowait()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.shutdown(2)
            except OSError:
                pass
            self.resp.close()
            self.conn.close()


class Setup:
    """The node, its library and the browser, for every test of the file
    (off the harness's list of background processes so that it outlives
    the test that started it); stopped by the last test, or at exit."""

    def __init__(self):
        atexit.register(self.close, clean=False)
        self.node = self.browser = self.device = None
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="chorus-test-console-store-"))
        self.data = self.tmp / "data"
        src = self.tmp / "src"
        self.titles = {}
        for i, artist in enumerate(["Anna Field", "Ben Moss", "Cleo Park"] * 2):
            t = f"Morning Song {i + 1}"
            make_audio(src / f"m{i}.mp3", None, SECONDS, {"title": t, "artist": artist, "album": "Mornings",
                                                          "genre": "Pop", "date": "2015"}, seed=300 + i)
        for i, artist in enumerate(["Dee Jones", "Eli Stone", "Fay Lin"] * 2):
            make_audio(src / f"j{i}.mp3", None, SECONDS, {"title": f"Late Blue {i + 1}", "artist": artist,
                                                          "album": "Blue Nineties", "genre": "Jazz",
                                                          "date": str(1991 + i)}, seed=400 + i)
        # Jazz of 2005: not in the nineties' rule.
        make_audio(src / "j9.mp3", None, SECONDS, {"title": "New Blue", "artist": "Gus Hall",
                                                   "album": "Later", "genre": "Jazz", "date": "2005"},
                   seed=499)
        make_audio(src / "spot.mp3", None, 5, {"title": "Harbour Jingle", "artist": "Chorus Ads",
                                               "album": "Spots", "genre": "Spot"}, seed=500)
        ingest_ok(self.data, src)
        user_add(self.data, EDITOR, "editor", EDITOR_PW)
        user_add(self.data, LISTENER, "listener", LISTENER_PW)
        self.node = Node(self.data, self.tmp / "logs")
        chorus_test._BACKGROUND.remove(self.node.bg)
        self.url = f"http://127.0.0.1:{self.node.port}/"
        self.tz, self.local_now = local_zone()
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        self.browser = Browser(self.tmp / "chromium", OUT)
        self.page = Page(self.browser, "editor", DESKTOP)
        self.loc = self.zone = None
        self.playlists = {}  # name -> id

    def close(self, clean=True):
        res = None
        if self.device:
            self.device.close()
            self.device = None
        if self.browser:
            self.browser.close()
            self.browser = None
        if self.node:
            res = self.node.stop() if clean and self.node.running() else self.node.bg.close()
            self.node = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        return res

    def api(self, method, path, body=None, status=200):
        r = self.node.request(method, path, {"Content-Type": "application/json"} if body is not None else {},
                              json.dumps(body).encode() if body is not None else None)
        check_eq(r.status, status, f"{method} {path}", r)
        return r.json() if r.body else None


_SETUP = []


def setup():
    missing = browser_missing()
    if missing:
        fail(f"{missing} is not installed (scripts/deps.sh test installs it)")
    if not _SETUP:
        _SETUP.append(Setup())
    return _SETUP[0]


def logged_in(s):
    p = s.page
    if not p.js("!!document.querySelector('#app') && !document.querySelector('#app').hidden"):
        p.login(s.url, EDITOR, EDITOR_PW)
    return p


def open_zone(p, s):
    """#stores/LOCATION/ZONE: the zone's week on the page."""
    p.js(f"location.hash = '#stores/{s.loc}/{s.zone}'")
    p.wait(selector="#view-stores.on")
    p.until("the zone's week", "!document.querySelector('#week-card').hidden && "
            "document.querySelectorAll('#week .daycol').length === 7", 10)


def need(s, *what):
    """Steps after the first need what the earlier ones made."""
    for w in what:
        check(getattr(s, w), f"an earlier step did not make the {w}")


def set_days(p, box, days):
    """Checks exactly `days` in a row of day boxes, by clicking them."""
    for d in DAYS:
        sel = f"{box} input[value={d}]"
        if p.js(f"document.querySelector('{sel}').checked") != (d in days):
            p.click(selector=sel)


def add_daypart(p, days, frm, to, playlist):
    set_days(p, "#dp-days", days)
    p.fill(selector="#dp-from", value=frm)
    p.fill(selector="#dp-to", value=to)
    p.select(selector="#dp-playlist", value=playlist)
    before = int(p.js("document.querySelector('#week').dataset.dayparts || '0'"))
    p.click(selector="#dp-add")
    p.until(f"the daypart {days} {frm}-{to} in the grid",
            f"Number(document.querySelector('#week').dataset.dayparts) === {before + 1}", 5)


def save_week(p):
    p.click(selector="#sched-save")
    v, _ = p.until("the week saved or refused",
                   "(!document.querySelector('#sched-err').hidden && 'refused: ' + "
                   "document.querySelector('#sched-err').innerText) || "
                   "(document.querySelector('#sched-status').textContent.startsWith('Saved') && "
                   "document.querySelector('#sched-status').textContent)", 10)
    return v


def queue_playlists(p):
    """The playlists' names in the page's next-hour preview (announcements left out)."""
    return p.js("[...document.querySelectorAll('#queue tbody tr')].filter(tr => "
                "!tr.querySelector('.badge')).map(tr => (tr.querySelector('.qpl') || {}).textContent)")


def no_notes(p):
    """The notes of earlier actions off the screen (an operator clicks them away)."""
    p.js("document.querySelector('#results').replaceChildren()")


def shots(p, name, full=True):
    """Screenshots at 1280x800 and 390x844, each checked for horizontal overflow."""
    no_notes(p)
    for size in (DESKTOP, PHONE):
        p.viewport(width=size[0], height=size[1])
        time.sleep(0.3)
        over, _ = overflow_and_controls(p, [])
        p.screenshot(f"{name}-{size[0]}x{size[1]}", full=full)
        check(over <= 0, f"{name} at {size[0]}x{size[1]}: {over} px of horizontal overflow")
    p.viewport(width=DESKTOP[0], height=DESKTOP[1])


def week_shots(p, name):
    """The week card in sight (under the sticky header) at a desktop's
    size tall enough for the whole grid, and on a phone."""
    no_notes(p)
    for w, h in ((1280, 1180), PHONE):
        p.viewport(width=w, height=h)
        time.sleep(0.3)
        over, _ = overflow_and_controls(p, [])
        p.js("window.scrollTo(0, document.querySelector('#week-card').getBoundingClientRect().top + scrollY - "
             "document.querySelector('header').offsetHeight - 8)")
        p.screenshot(f"{name}-{w}x{h}", full=False)
        check(over <= 0, f"{name} at {w}x{h}: {over} px of horizontal overflow")
    p.viewport(width=DESKTOP[0], height=DESKTOP[1])


# ---------------------------------------------------------------- the steps

@test("an editor logs in: Stores and Devices among the tabs, no location yet")
def _():
    s = setup()
    p = s.page
    p.login(s.url, EDITOR, EDITOR_PW)
    tabs = p.js("[...document.querySelectorAll('nav a')].map(a => a.textContent)")
    check("Stores" in tabs and "Devices" in tabs, f"the editor's tabs: {tabs}")
    p.view("stores")
    p.until("the locations read", "document.querySelector('#locations').textContent.includes('None')")
    check(p.js("document.querySelector('#stores-denied').hidden"), "the store API refused the editor")


@test("a location and a zone made on the page")
def _():
    s = setup()
    p = logged_in(s)
    p.view("stores")
    p.click(selector="#loc-new")
    p.wait(selector="#loc-dialog[open]")
    p.fill(selector="#loc-form [name=name]", value=LOCATION)
    p.fill(selector="#loc-form [name=timezone]", value=s.tz)
    p.fill(selector="#loc-form [name=country]", value="pt")
    p.fill(selector="#loc-form [name=address]", value="12 Harbour Street")
    p.select(selector="#loc-form [name=licence]", value="interactive")
    p.click(selector="#loc-save")
    p.until("the location's zones", "!document.querySelector('#zones-card').hidden && "
            f"document.querySelector('#zones-title').textContent.includes({json.dumps(LOCATION)})")
    locs = s.api("GET", "/api/v1/locations")["items"]
    check_eq([(l["name"], l["timezone"], l["country"], l["licence"]) for l in locs],
             [(LOCATION, s.tz, "PT", "interactive")], "the locations on the node")
    s.loc = locs[0]["id"]
    print(f"# location {s.loc} in {s.tz} (local now {s.local_now:%a %H:%M})")
    p.fill(selector="#zone-name", value=ZONE)
    p.click(selector="#zone-add")
    p.until("the zone's week", "!document.querySelector('#week-card').hidden && "
            "document.querySelectorAll('#week .daycol').length === 7")
    zones = s.api("GET", f"/api/v1/zones?location_id={s.loc}")["items"]
    check_eq([z["name"] for z in zones], [ZONE], "the zones on the node")
    s.zone = zones[0]["id"]
    check(p.js(f"location.hash === '#stores/{s.loc}/{s.zone}'"), "the zone's address in the page")


@test("two playlists: tracks chosen by search, and rules (genre, years, no explicit); their counts and lengths shown")
def _():
    s = setup()
    need(s, "zone")
    p = logged_in(s)
    # A track the rules leave out: marked explicit.
    late = s.node.get_json("/api/v1/search?q=late+blue+6&limit=5")["tracks"]
    check(late, "the track to mark explicit")
    r = s.node.request("PATCH", f"/api/v1/tracks/{late[0]['id']}", {"Content-Type": "application/json"},
                       json.dumps({"explicit": True}).encode())
    check_eq(r.status, 200, "a Jazz track marked explicit", r)
    p.click(selector="#pl-new")
    p.wait(selector="#pl-dialog[open]")
    p.fill(selector="#pl-name", value=MORNING)
    p.fill(selector="#pl-tracks-q", value="morning song")
    p.until("six search results", "document.querySelectorAll('#pl-tracks-found li button').length === 6")
    for i in range(6):
        p.click(selector=f"#pl-tracks-found li:nth-child({i + 1}) button")
    p.until("six chosen", "document.querySelectorAll('#pl-tracks-chosen li').length === 6")
    p.click(selector="#pl-shuffle")
    p.screenshot("01-playlist-tracks")
    p.click(selector="#pl-save")
    p.until("the dialog closed", "!document.querySelector('#pl-dialog').open", 5)
    p.click(selector="#pl-new")
    p.wait(selector="#pl-dialog[open]")
    p.fill(selector="#pl-name", value=EVENING)
    p.click(selector="#pl-kind-rules")
    p.fill(selector="#pl-genres", value="Jazz")
    p.fill(selector="#pl-year-from", value="1990")
    p.fill(selector="#pl-year-to", value="1999")
    p.click(selector="#pl-noexplicit")
    p.screenshot("02-playlist-rules")
    p.click(selector="#pl-save")
    p.until("the dialog closed", "!document.querySelector('#pl-dialog').open", 5)
    p.until("both playlists listed", "document.querySelectorAll('#playlists tbody tr').length === 2", 5)
    rows = p.js("[...document.querySelectorAll('#playlists tbody tr')].map(tr => "
                "[...tr.cells].slice(1, 5).map(c => c.textContent))")
    print(f"# playlists on the page: {rows}")
    items = {x["name"]: x for x in s.api("GET", "/api/v1/playlists")["items"]}
    check_eq(sorted(items), sorted([MORNING, EVENING]), "the playlists on the node")
    check_eq((items[MORNING]["kind"], items[MORNING]["shuffle"], items[MORNING]["track_count"]),
             ("tracks", True, 6), "the chosen tracks' playlist")
    # Late Blue 1-6 of 1991-1996, less the explicit one; not New Blue (2005).
    check_eq((items[EVENING]["kind"], items[EVENING]["track_count"]), ("rules", 5), "the rules' playlist")
    for name, x in items.items():
        s.playlists[name] = x["id"]
        row = next((r for r in rows if r[0] == name), None)
        check(row and row[2] == str(x["track_count"]), f"{name}'s track count on the page: {row}")
        check(row[3] not in ("", "—", "0s"), f"{name}'s length on the page: {row}")
        check_eq(abs(x["duration_ms"] - x["track_count"] * SECONDS * 1000) < x["track_count"] * 1500, True,
                 f"{name}'s duration_ms {x['duration_ms']}")


@test("a week drawn in the grid (dayparts, separation, overrides, announcements) and saved; the next hour shown")
def _():
    s = setup()
    need(s, "zone", "playlists")
    p = logged_in(s)
    open_zone(p, s)
    p.until("the grid", "document.querySelectorAll('#week .daycol').length === 7")
    m, e = s.playlists[MORNING], s.playlists[EVENING]
    add_daypart(p, DAYS[:5], "08:00", "12:00", m)
    add_daypart(p, DAYS[:5], "12:00", "20:00", e)
    add_daypart(p, ["sat", "sun"], "09:00", "12:00", m)
    add_daypart(p, ["sat"], "12:00", "18:00", e)
    p.fill(selector="#sched-sep", value="0")
    p.js("document.querySelector('#sched-sep').dispatchEvent(new Event('change'))")
    # Closed over two dates of next Christmas.
    year = s.local_now.year + 1
    p.fill(selector="#ov-date", value=f"{year}-12-25")
    p.fill(selector="#ov-to", value=f"{year}-12-26")
    p.click(selector="#ov-add")
    p.until("the override listed", "document.querySelectorAll('#ov-list li').length === 1", 5)
    # Black Friday: other hours, the jazz all day.
    p.fill(selector="#ov-date", value=f"{year}-11-26")
    p.click(selector="#ov-closed")
    p.wait(selector="#ov-dp-rows .ov-dp")
    p.fill(selector="#ov-dp-rows .ov-from", value="10:00")
    p.fill(selector="#ov-dp-rows .ov-to", value="16:00")
    p.select(selector="#ov-dp-rows select", value=e)
    p.click(selector="#ov-add")
    p.until("the second override listed", "document.querySelectorAll('#ov-list li').length === 2", 5)
    # The jingle every 30 minutes in the shop's hours.
    p.fill(selector="#an-every", value="30")
    p.fill(selector="#an-from", value="09:00")
    p.fill(selector="#an-to", value="18:00")
    p.fill(selector="#an-spots-q", value="harbour jingle")
    p.until("the jingle found", "document.querySelectorAll('#an-spots-found li button').length === 1")
    p.click(selector="#an-spots-found li button")
    p.click(selector="#an-add")
    p.until("the announcement listed", "document.querySelectorAll('#an-list li').length === 1", 5)
    # And at noon and half past five on Saturdays.
    p.select(selector="#an-kind", value="at")
    p.fill(selector="#an-at", value="12:00, 17:30")
    set_days(p, "#an-days", ["sat"])
    p.fill(selector="#an-spots-q", value="harbour jingle")
    p.until("the jingle found", "document.querySelectorAll('#an-spots-found li button').length === 1")
    p.click(selector="#an-spots-found li button")
    p.click(selector="#an-add")
    p.until("the second announcement listed", "document.querySelectorAll('#an-list li').length === 2", 5)
    got = save_week(p)
    print(f"# saved: {got}")
    check(got.startswith("Saved"), f"the week not saved: {got}")
    w = s.api("GET", f"/api/v1/zones/{s.zone}/schedule")
    check_eq([(d["days"], d["from"], d["to"], d["playlist_id"]) for d in w["dayparts"]],
             [(DAYS[:5], "08:00", "12:00", m), (DAYS[:5], "12:00", "20:00", e),
              (["sat", "sun"], "09:00", "12:00", m), (["sat"], "12:00", "18:00", e)],
             "the dayparts on the node")
    check_eq(w["separation_minutes"], 0, "the separation on the node")
    check_eq(sorted((o["date"], o.get("to_date"), bool(o.get("closed")),
                     [(d["from"], d["to"], d["playlist_id"]) for d in o.get("dayparts") or []])
                    for o in w["overrides"]),
             [(f"{year}-11-26", None, False, [("10:00", "16:00", e)]),
              (f"{year}-12-25", f"{year}-12-26", True, [])], "the overrides on the node")
    check_eq([(a.get("every_minutes"), a.get("from"), a.get("to"), a.get("at"), len(a["tracks"]))
              for a in w["announcements"]],
             [(30, "09:00", "18:00", None, 1), (None, None, None, ["12:00", "17:30"], 1)],
             "the announcements on the node")
    check_eq((w["announcements"][1].get("days")), ["sat"], "the second announcement's days")
    blocks = p.js("document.querySelectorAll('#week .dp').length")
    check_eq(blocks, 5 * 2 + 2 + 1, "blocks drawn in the grid")
    names, _ = p.until("the next hour: the morning's playlist", "(() => { const n = [...document.querySelectorAll("
                       "'#queue tbody tr')].filter(tr => !tr.querySelector('.badge')).map(tr => "
                       "(tr.querySelector('.qpl') || {}).textContent); return n.length && n; })()", 10)
    check(set(names) == {MORNING}, f"the next hour's playlists on the page: {set(names)}")
    print(f"# the next hour on the page: {len(names)} tracks of {MORNING}")
    week_shots(p, "03-week")
    p.js("window.scrollTo(0, 0)")
    shots(p, "04-stores", full=False)


@test("an overlapping daypart: the node refuses the week (422) and its reason shows next to the grid")
def _():
    s = setup()
    need(s, "zone", "playlists")
    p = logged_in(s)
    open_zone(p, s)
    p.until("the grid", "document.querySelectorAll('#week .dp').length > 0")
    add_daypart(p, ["fri"], "11:00", "14:00", s.playlists[EVENING])
    check(p.js("document.querySelectorAll('#week .dp.clash').length") >= 2, "the overlap marked in the grid")
    got = save_week(p)
    print(f"# on the page: {got!r}")
    check(got.startswith("refused: "), f"the overlapping week was not refused: {got}")
    # The reason the API gives for the same week, word for word on the page.
    w = s.api("GET", f"/api/v1/zones/{s.zone}/schedule")
    w = {k: v for k, v in w.items() if k in ("dayparts", "overrides", "announcements", "separation_minutes")}
    w["dayparts"].append({"days": ["fri"], "from": "11:00", "to": "14:00", "playlist_id": s.playlists[EVENING]})
    r = s.node.request("PUT", f"/api/v1/zones/{s.zone}/schedule", {"Content-Type": "application/json"},
                       json.dumps(w).encode())
    check_eq(r.status, 422, "the same week PUT by the API", r)
    reason = r.json()["error"]["message"]
    print(f"# the node's reason: {reason!r}")
    check("422" in got and reason in got, f"the 422 and its reason {reason!r} on the page: {got!r}")
    week_shots(p, "05-week-refused")
    # Undone on the page: the saved week again, no error.
    p.click(selector="#week .dp[data-day=fri][data-index='4']")
    p.click(selector="#dp-delete")
    p.until("the overlap gone", "document.querySelectorAll('#week .dp.clash').length === 0", 5)
    got = save_week(p)
    check(got.startswith("Saved"), f"the week without the overlap: {got}")


@test("a device on the zone's events: the operator moves today's morning to the other playlist in the grid, Save: `changed` and the new queue in under 2 s")
def _():
    s = setup()
    need(s, "zone", "playlists")
    p = logged_in(s)
    key = make_key(s.data, "store", location=s.loc, zone=s.zone, name="shop-floor-box")
    s.key = key
    s.key_id = key.split("_")[1]
    s.device = Device(s.node.port, s.zone, key)
    _, hello = s.device.next_event("hello", 5)
    check_eq(hello.get("zone_id"), s.zone, "hello's zone")
    q0 = chorus_test.http_request(s.node.port, "GET", f"/api/v1/zones/{s.zone}/queue?hours=1", bearer(key)).json()
    before = {it["playlist_id"] for it in q0["items"] if not it["announcement"]}
    check_eq(before, {s.playlists[MORNING]}, "the device's queue before the change")
    open_zone(p, s)
    today = DAYS[s.local_now.weekday()]
    block = f"#week .dp[data-day={today}][data-playlist='{s.playlists[MORNING]}']"
    p.until("today's morning in the grid", f"document.querySelector(\"{block}\")", 5)
    p.click(selector=block)
    p.until("the daypart in the form", "document.querySelector('#dp-delete').hidden === false", 5)
    p.select(selector="#dp-playlist", value=s.playlists[EVENING])
    p.click(selector="#dp-add")
    p.until("the block recoloured", f"!document.querySelector(\"{block}\")", 5)
    s.device.drain()
    t_click = time.monotonic()
    p.click(selector="#sched-save")
    t_changed, changed = s.device.next_event("changed", 5)
    deadline = time.monotonic() + 5
    while True:
        try:
            _, t_answer, q = s.device.queues.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            fail("the device's queue never showed the new playlist within 5 s")
        got = {it["playlist_id"] for it in q.get("items", []) if not it["announcement"]}
        if got == {s.playlists[EVENING]}:
            break
    ms_changed = (t_changed - t_click) * 1000
    ms_queue = (t_answer - t_click) * 1000
    print(f"# console Save click -> device `changed` {ms_changed:.0f} ms; -> its refetched queue "
          f"playing {EVENING!r} {ms_queue:.0f} ms (version {changed.get('version')})")
    check(ms_queue < 2000, f"click to the device's new queue took {ms_queue:.0f} ms, want < 2000")
    p.until("the page saved", "document.querySelector('#sched-status').textContent.startsWith('Saved')", 5)
    p.until("the next hour on the page: the new playlist",
            f"(() => {{ const n = [...document.querySelectorAll('#queue tbody tr')].filter(tr => "
            f"!tr.querySelector('.badge')).map(tr => (tr.querySelector('.qpl') || {{}}).textContent); "
            f"return n.length && n.every(x => x === {json.dumps(EVENING)}); }})()", 5)


@test("Skip and volume from the page reach the device")
def _():
    s = setup()
    need(s, "device")
    p = logged_in(s)
    s.device.drain()
    t0 = time.monotonic()
    p.click(selector="#zone-skip")
    t, _ = s.device.next_event("skip", 5)
    print(f"# Skip: at the device {1000 * (t - t0):.0f} ms after the click")
    p.js("(() => { const r = document.querySelector('#zone-vol'); r.value = '35'; "
         "r.dispatchEvent(new Event('input')); })()")
    t0 = time.monotonic()
    p.click(selector="#zone-vol-send")
    t, v = s.device.next_event("volume", 5)
    check_eq(v.get("volume"), 35, "the volume at the device")
    print(f"# volume 35: at the device {1000 * (t - t0):.0f} ms after the click")


@test("the device's status on the Devices view: online, what it plays, hours buffered; gone: offline as the API says")
def _():
    s = setup()
    need(s, "device")
    p = logged_in(s)
    q = chorus_test.http_request(s.node.port, "GET", f"/api/v1/zones/{s.zone}/queue?hours=1",
                                 bearer(s.key)).json()
    first = next(it for it in q["items"] if not it["announcement"])
    status = {"playing": first["track_id"], "position_ms": 12000, "buffered_s": 9000,
              "error": "cache: 1 chunk retried", "version": q["version"]}
    r = chorus_test.http_request(s.node.port, "POST", f"/api/v1/zones/{s.zone}/status",
                                 {**bearer(s.key), "Content-Type": "application/json"},
                                 json.dumps(status).encode())
    check_eq(r.status, 204, "the device's status", r)
    p.view("devices")
    row = f"#devices tr[data-key='{s.key_id}']"
    want = f"{first['title']} — {first['artist']}"
    _, took = p.until("the device online, playing, on the page",
                      f"(() => {{ const r = document.querySelector(\"{row}\"); return r && "
                      f"r.querySelector('td.state').textContent === 'online' && "
                      f"r.innerText.includes({json.dumps(want)}); }})()", 10)
    cells = p.js(f"[...document.querySelector(\"{row}\").cells].map(c => c.innerText)")
    print(f"# on the Devices view {took:.1f} s after the status: {cells}")
    check("2.5 h" in cells[4], f"hours buffered: {cells[4]!r}")
    check("1 chunk retried" in cells[5], f"the last error: {cells[5]!r}")
    check(LOCATION in cells[1] and ZONE in cells[1], f"where: {cells[1]!r}")
    shots(p, "06-devices", full=False)
    # The device goes away: its stream closed.
    s.device.close()
    t0 = time.monotonic()
    api_dev, _ = wait_for("the device known offline, or within its online window",
                          lambda: next((d for d in s.api("GET", "/api/v1/devices")["items"]
                                        if d["key"] == s.key_id), None), 5)
    time.sleep(4)  # a poll of the page or more
    api_dev = next(d for d in s.api("GET", "/api/v1/devices")["items"] if d["key"] == s.key_id)
    state = p.js(f"document.querySelector(\"{row} td.state\").textContent")
    print(f"# {time.monotonic() - t0:.1f} s after the stream closed: API online={api_dev['online']} "
          f"offline_since={api_dev['offline_since']}; page: {state!r}")
    if api_dev["online"]:
        # Its last status is within the 150 s window: still online, on both.
        check_eq(state, "online", "the page as the API says")
    else:
        check(state.startswith("offline since"), f"the page says {state!r}, the API offline")
    # A box last heard ten minutes ago (its row as a node that died leaves
    # it, aged past the 150 s window without waiting for it): offline since
    # then, on the API and on the page.
    old = make_key(s.data, "store", location=s.loc, zone=s.zone, name="back-office-box")
    old_id = old.split("_")[1]
    node_id = s.node.get_json("/api/v1/node")["id"]
    heard = int(time.time() * 1000) - 600_000
    db = sqlite3.connect(s.data / "catalog.db", timeout=10)
    with db:
        db.execute("INSERT INTO devices (key_id, zone_id, node, connected, last_seen_at, offline_since, playing,"
                   " position_ms, buffered_s, last_error, version, updated_at)"
                   " VALUES (?, ?, ?, 0, ?, NULL, NULL, 0, 0, 'no network', '', ?)",
                   (old_id, int(s.zone, 16), node_id, heard, heard))
    db.close()
    api_old, _ = wait_for("the aged box on the API", lambda: next(
        (d for d in s.api("GET", "/api/v1/devices")["items"] if d["key"] == old_id and d["last_seen_at"]), None), 10)
    check_eq((api_old["online"], api_old["offline_since"]), (False, heard), "the aged box on the API")
    old_row = f"#devices tr[data-key='{old_id}']"
    want = p.js(f"new Date({heard}).toLocaleString('en-GB', {{dateStyle: 'short', timeStyle: 'medium'}})")
    state, took = p.until("the aged box offline since, on the page",
                          f"(() => {{ const c = document.querySelector(\"{old_row} td.state\"); "
                          f"return c && c.textContent.startsWith('offline since') && c.textContent; }})()", 10)
    print(f"# the box heard 10 minutes ago, on the page {took:.1f} s later: {state!r}")
    check_eq(state, f"offline since {want}", "its state on the page")
    check("no network" in p.js(f"document.querySelector(\"{old_row}\").innerText"), "its last error on the page")
    shots(p, "07-devices-offline", full=False)


@test("the location edited and the zone renamed in their forms (PATCH), a 422 under its field")
def _():
    s = setup()
    need(s, "zone")
    p = logged_in(s)
    open_zone(p, s)
    p.click(selector="#locations button[data-action=edit]")
    p.wait(selector="#loc-dialog[open]")
    p.fill(selector="#loc-form [name=country]", value="12")
    p.click(selector="#loc-save")
    err, _ = p.until("the country refused", "document.querySelector('#loc-err').textContent", 5)
    ferr = p.js("document.querySelector('#loc-form label[data-field=country] .ferr').textContent")
    print(f"# a country of digits: {err!r}, under the field: {ferr!r}")
    check(err.startswith("Not saved: "), f"the refusal in the form: {err!r}")
    check(ferr and ferr in err, f"the problem under the country: {ferr!r}")
    check(p.js("document.querySelector('#loc-dialog').open"), "the form stays open after a 422")
    p.fill(selector="#loc-form [name=country]", value="pt")
    p.fill(selector="#loc-form [name=address]", value="14 Harbour Street")
    p.click(selector="#loc-save")
    p.until("the form closed", "!document.querySelector('#loc-dialog').open", 5)
    p.until("the new address listed", "document.querySelector('#locations').textContent.includes('14 Harbour Street')", 5)
    loc = s.api("GET", f"/api/v1/locations/{s.loc}")
    check_eq((loc["address"], loc["country"]), ("14 Harbour Street", "PT"), "the location on the node")
    p.click(selector="#zones button[data-action=rename]")
    p.wait(selector="#zone-dialog[open]")
    p.fill(selector="#zone-edit-form [name=name]", value=ZONE + " east")
    p.fill(selector="#zone-edit-form [name=volume]", value="70")
    p.click(selector="#zone-edit-save")
    p.until("the form closed", "!document.querySelector('#zone-dialog').open", 5)
    p.until("the zone renamed on the page", f"document.querySelector('#zones').textContent.includes({json.dumps(ZONE + ' east')})", 5)
    z = s.api("GET", f"/api/v1/zones/{s.zone}")
    check_eq((z["name"], z["volume"]), (ZONE + " east", 70), "the zone on the node")


@test("a listener's page: no Stores or Devices view, no refused request")
def _():
    s = setup()
    p = Page(s.browser, "listener", PHONE)
    p.login(s.url, LISTENER, LISTENER_PW)
    tabs = p.js("[...document.querySelectorAll('nav a')].map(a => a.textContent)")
    check("Stores" not in tabs and "Devices" not in tabs, f"the listener's tabs: {tabs}")
    check(not p.js("document.querySelector('#view-stores, #view-devices')"), "store views in the listener's page")
    p.js("location.hash = '#stores'")
    time.sleep(1.5)
    ev = p.events()
    refused = [e for e in ev["errors"] if "status of 403" in e]
    check(not refused, f"the listener's page asked for what it may not: {refused}")
    p.close()


@test("no page error, no request outside the node; the node stops cleanly")
def _():
    s = setup()
    ev = s.page.events()
    origin = s.url.rstrip("/")
    print(f"# requests to {ev['origins']}")
    outside = [o for o in ev["origins"] if o != origin]
    check(not outside, f"the page asked outside the node: {outside}")
    failed = [x for x in ev["errors"] if "Failed to load resource" in x]
    errors = [x for x in ev["errors"] if x not in failed]
    print(f"# {len(failed)} answers not a success: {sorted(set(x.split('resource: ')[-1] for x in failed))}")
    check(not errors, f"page errors {errors}")
    _SETUP.clear()
    t0 = time.monotonic()
    s.close()
    print(f"# the node stopped {time.monotonic() - t0:.2f} s after SIGTERM")


if __name__ == "__main__":
    main()
