#!/usr/bin/python3
"""The console (web/console/, docs/console.md) in a real browser: Debian's
Chromium, headless, driven through playwright-core by console_browser.mjs,
on three nodes on a real PostgreSQL (tests/system/pg.py) behind haproxy as
deploy/haproxy/haproxy.cfg.in configures it. The browser loads the console
through haproxy, as an operator would.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_console.py [NAME...]

The tests run in order on one cluster, each one step of an operator's
session: log in and see three nodes alive, kill -9 one (dead on the page
within 3 s; a second page loaded from that very node carries on with
another member), drain another from the page (haproxy stops sending it new
streams, a stream running on it finishes byte-exact), make a join token on
the page and join a fourth node with it, charts with data, the layout at
1280x800 and 390x844, a listener who sees no admin action, and at the end
no page error, no request outside the cluster, and every node stopping
cleanly. Times are printed as TAP comments.

Screenshots of every step go to build/test-output/test_console/
($CHORUS_TEST_OUTPUT, when set).
"""

import atexit
import contextlib
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
import chorus_test  # noqa: E402
from chorus_test import (  # noqa: E402
    CHORUS_BIN, Node, RawConn, bearer, check, check_eq, chorus_env, fail, http_request,
    ingest_ok, main, make_key, sha256_file, test, wait_for, wav_library)
from haproxy import HAPROXY, Haproxy, free_port  # noqa: E402
from console_page import (  # noqa: E402
    CHROMIUM, DESKTOP, NODE_JS, PHONE, PLAYWRIGHT, Browser, Page, output_dir,
    overflow_and_controls)

OUT = output_dir("test_console")
BIG = 1_500_000  # frames: 6 MB tracks, more than the sockets hold
ADMIN, ADMIN_PW = "ops", "console-admin-pw-1"
LISTENER, LISTENER_PW = "lena", "console-listener-pw-1"


def row_state(node_id):
    """An expression: the state badge's text in node_id's row of the table."""
    return (f"(document.querySelector('#nodes tr[data-key=\"{node_id}\"] td.state .badge')"
            f" || {{}}).textContent")


# ---------------------------------------------------------------- haproxy

# ---------------------------------------------------------------- the cluster, for every test

def user_add(data, db, name, role, password):
    """`chorus user add NAME --role ROLE`, the password on stdin."""
    p = subprocess.run([CHORUS_BIN, "user", "add", name, "--role", role, "--data", str(data),
                        "--db", db], input=password + "\n", capture_output=True, text=True,
                       env=chorus_env(), timeout=60)
    check_eq(p.returncode, 0, f"chorus user add {name}: {p.stdout} {p.stderr}")


class Cluster:
    """Three nodes on PostgreSQL behind haproxy, a library of three 6 MB
    tracks, two users, a store key, plays; and the browser. Made by the
    first test that needs it, it lives for every test of the file (the
    harness ends what a test started, so the nodes are taken off its list)
    and is stopped by the last one, or at exit."""

    def __init__(self):
        self.stack = contextlib.ExitStack()
        atexit.register(self.close, clean=False)
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="chorus-test-console-"))
        self.stack.callback(shutil.rmtree, self.tmp, ignore_errors=True)
        self.db = self.stack.enter_context(pg.server())
        self.src, self.files = wav_library("console-lib", 3, BIG, 997, seed=500)
        self.origin = f"dir:{self.tmp / 'origin'}"
        ingest_ok(self.tmp / "ing", self.src, db=self.db.conninfo, origin=self.origin)
        self.nodes = [self.start(f"node{i}") for i in (1, 2, 3)]
        self.ids = [n.get_json("/api/v1/node")["id"] for n in self.nodes]
        wait_for("three nodes alive in the overview",
                 lambda: self.nodes[0].get_json("/api/v1/overview")["health"]["alive"] == 3, 10)
        self.tracks = self.nodes[0].get_json("/api/v1/tracks")["tracks"]
        self.hap = Haproxy(self.tmp / "haproxy", [n.port for n in self.nodes])
        self.url = f"http://127.0.0.1:{self.hap.port}/"
        wait_for("haproxy: three nodes UP",
                 lambda: self.hap.status() == {"node1": "UP", "node2": "UP", "node3": "UP"}, 10,
                 step=0.1, context=self.hap.status)
        user_add(self.tmp / "cli", self.db.conninfo, ADMIN, "admin", ADMIN_PW)
        user_add(self.tmp / "cli", self.db.conninfo, LISTENER, "listener", LISTENER_PW)
        self.store = make_key(self.tmp / "cli", "store", db=self.db.conninfo, location="Shop A",
                              zone="Bar", name="till-1")
        wait_for("the store key on every node",
                 lambda: all(http_request(n.port, "GET", "/api/v1/session",
                                          bearer(self.store)).status == 200
                             for n in self.nodes), 10)
        self.traffic()
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        self.browser = Browser(self.tmp / "chromium", OUT)
        self.pages, self.closed_events = {}, {}

    def start(self, name, args=None):
        n = Node(self.tmp / name, self.tmp / "logs", tag=name,
                 args=args if args is not None else
                 ["--db", self.db.conninfo, "--origin", self.origin])
        # This node outlives the test that started it (see the class).
        chorus_test._BACKGROUND.remove(n.bg)
        return n

    def file_of(self, track):
        return next(f for f in self.files if f.stat().st_size == track["size_bytes"])

    def traffic(self):
        """Streams through haproxy (each track twice: misses, then hits),
        and a store's plays, so that charts and reports have something."""
        for t in self.tracks * 2:
            r = http_request(self.hap.port, "GET", f"/api/v1/tracks/{t['id']}/stream",
                             bearer(self.store), timeout=30)
            check_eq(r.status, 200, "a stream through haproxy", r)
        now = time.time()
        plays = [{"event_id": f"console-{i}", "track_id": self.tracks[i % 3]["id"],
                  "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                              time.gmtime(now - 3600 * (i % 5) - 60)),
                  "ms_played": 10_000 + 1000 * i, "location": "Shop A", "zone": "Bar"}
                 for i in range(12)]
        r = http_request(self.hap.port, "POST", "/api/v1/plays",
                         {**bearer(self.store), "Content-Type": "application/json"},
                         json.dumps(plays).encode())
        check_eq(r.status, 201, "plays through haproxy", r)

    def page(self, name, size=DESKTOP):
        if name not in self.pages:
            self.pages[name] = Page(self.browser, name, size)
        return self.pages[name]

    def close_page(self, name):
        if name in self.pages:
            self.closed_events[name] = self.pages[name].events()
            self.browser("close", page=name)
            del self.pages[name]

    def events(self):
        """{page: its errors and the origins it asked}, closed pages too."""
        return {**self.closed_events, **{name: p.events() for name, p in self.pages.items()}}

    def close(self, clean=True):
        """Everything, by process id: the nodes with SIGTERM when clean
        (the last test), else SIGKILL (at exit, after a failure). The
        results: {node name: Result} of the nodes stopped cleanly."""
        res = {}
        if getattr(self, "browser", None):
            self.browser.close()
            self.browser = None
        if getattr(self, "hap", None):
            self.hap.close()
            self.hap = None
        for n in getattr(self, "nodes", []):
            if n.running() and clean:
                os.kill(n.pid, signal.SIGTERM)
                res[n.data.name] = n.bg.wait(60)
            else:
                n.bg.close()
        self.stack.close()
        return res


_CLUSTER = []
_SETUP_FAILED = []


def cluster():
    for path, what in ((CHROMIUM, "Chromium"), (HAPROXY, "haproxy"), (NODE_JS, "Node.js"),
                       (PLAYWRIGHT, "playwright-core")):
        if not path or not os.path.exists(path):
            fail(f"{what} is not installed (scripts/deps.sh test installs it)")
    if _SETUP_FAILED:
        fail(f"the cluster could not be set up: {_SETUP_FAILED[0]}")
    if not _CLUSTER:
        try:
            _CLUSTER.append(Cluster())
        except BaseException as e:
            _SETUP_FAILED.append(str(e).splitlines()[0] if str(e) else repr(e))
            raise
    return _CLUSTER[0]


def admin_page():
    c = cluster()
    if "admin" not in c.pages:
        p = c.page("admin")
        p.login(c.url, ADMIN, ADMIN_PW)
    return c.pages["admin"]


# ---------------------------------------------------------------- the steps

@test("an admin logs in through haproxy and sees three nodes alive, the health line and every node's figures")
def _():
    c = cluster()
    p = c.page("admin")
    p.goto(url=c.url)
    p.wait(selector="#login-user")
    p.screenshot("01-login")
    p.fill(selector="#login-user", value=ADMIN)
    p.fill(selector="#login-password", value="not the password")
    p.click(selector="#login-submit")
    v, _ = p.until("a wrong password refused", "document.querySelector('#login-err').textContent")
    check("Wrong user name or password" in v, f"the login's error: {v!r}")
    p.fill(selector="#login-password", value=ADMIN_PW)
    t0 = time.monotonic()
    p.click(selector="#login-submit")
    expr = " && ".join(f"{row_state(i)} === 'alive'" for i in c.ids)
    p.until("three nodes alive on the page", expr, 15)
    took = time.monotonic() - t0
    health, _ = p.until("the health line", "document.querySelector('#health').innerText")
    print(f"# logged in and three nodes alive on the page {took:.2f} s after the click; "
          f"health: {' · '.join(health.split(chr(10)))}")
    for want in ("3 alive", "0 suspect", "0 dead", "database postgres reachable",
                 "origin dir reachable", "replication lag"):
        check(want in health, f"the health line says {want!r}: {health!r}")
    rows = p.js("[...document.querySelectorAll('#nodes tbody tr')].map(tr => "
                "Object.fromEntries([...tr.cells].map(td => [td.dataset.label, td.innerText])))")
    check_eq(len(rows), 3, "rows in the nodes table", rows)
    addrs = {f"127.0.0.1:{n.port}" for n in c.nodes}
    for r in rows:
        check(any(a in r["Node"] for a in addrs), f"a node's address in its row: {r}")
        check_eq(r["Version"], c.nodes[0].version, "version", r)
        for col in ("Uptime", "Connections", "Requests/s", "Out/s", "Cache used", "Hit ratio",
                    "Lag", "Plays to ship"):
            check(r[col] and r[col] != "—", f"{col} shown: {r}")
    check(p.js("document.querySelector('#who').textContent") == f"{ADMIN} (admin)",
          "who is logged in, in the header")
    # Live: the figures change without a reload.
    up0 = p.js(f"document.querySelector('#nodes tr[data-key=\"{c.ids[0]}\"]').cells[3].innerText")
    p.until("the uptime moves without a reload",
            f"document.querySelector('#nodes tr[data-key=\"{c.ids[0]}\"]').cells[3].innerText"
            f" !== {json.dumps(up0)}", 4)
    p.screenshot("02-three-alive")


@test("kill -9 of a node: dead on the page within 3 s; a page loaded from that node moves to another member")
def _():
    c = cluster()
    p = admin_page()
    victim, vid = c.nodes[2], c.ids[2]
    # A second console loaded from the victim itself, not through haproxy.
    d = c.page("direct")
    d.login(f"http://127.0.0.1:{victim.port}/", ADMIN, ADMIN_PW)
    d.until("three nodes alive on the direct page",
            " && ".join(f"{row_state(i)} === 'alive'" for i in c.ids), 10)
    # It has its member list (asked every 10 s, at once at the start).
    time.sleep(0.5)
    victim.kill9()
    t0 = time.monotonic()
    p.until("the killed node dead on the page", f"{row_state(vid)} === 'dead'", 10)
    took = time.monotonic() - t0
    print(f"# the killed node shown dead on the page (through haproxy) {took:.2f} s after kill -9")
    h = p.js("document.querySelector('#health').innerText")
    check("2 alive" in h and "1 dead" in h, f"the health line after the kill: {h!r}")
    p.screenshot("03-node-dead")
    check(took <= 3.0, f"dead on the page after {took:.2f} s (want <= 3)")
    _, took2 = d.until("the direct page: the killed node dead, read from another member",
                       f"{row_state(vid)} === 'dead' && !document.querySelector('#banner').hidden",
                       10)
    banner = d.js("document.querySelector('#banner').textContent")
    print(f"# the page loaded from the killed node: dead {took2 + took:.2f} s after kill -9; "
          f"banner: {banner}")
    check(re.search(r"now reads from http://127\.0\.0\.1:\d+", banner) and
          str(victim.port) not in banner.split("now reads from")[1],
          f"the banner names another member: {banner!r}")
    # And it still acts: an admin page answers (users, through the other node).
    d.view("admin")
    d.wait(selector=f"#users tr[data-key=\"{ADMIN}\"]")
    d.screenshot("03-direct-page-moved")
    c.close_page("direct")


@test("drain a node from the page: haproxy stops sending it new streams, a stream running on it finishes byte-exact")
def _():
    c = cluster()
    p = admin_page()
    node, nid = c.nodes[1], c.ids[1]
    t = c.tracks[0]
    want = sha256_file(c.file_of(t))
    # A slow reader of a 6 MB track on the node: a small receive buffer,
    # nothing read until the drain is done.
    slow = RawConn(node.port, timeout=60, rcvbuf=4096)
    slow.send(f"GET /api/v1/tracks/{t['id']}/stream HTTP/1.1\r\nHost: x\r\n"
              f"Authorization: Bearer {c.store}\r\n\r\n".encode())
    # The page shows it playing, at its store's location.
    p.view("live")
    p.until("the stream under Shop A on the page",
            "[...document.querySelectorAll('#live .group')].some(g => "
            "g.querySelector('h3').textContent === 'Shop A' && g.innerText.includes('Bar'))", 10)
    p.screenshot("04-playing-now")
    p.view("overview")
    before = c.hap.streams_served()
    btn = f"#nodes tr[data-key=\"{nid}\"] [data-action=drain]"
    p.click(selector=btn)
    v, _ = p.until("the drain button asks to confirm", f"document.querySelector('{btn}').textContent")
    check_eq(v, "Confirm drain", "the armed button")
    t0 = time.monotonic()
    p.click(selector=btn)
    note, _ = p.until("the drain's result on screen",
                      "[...document.querySelectorAll('#results div')].map(d => d.textContent)"
                      ".find(s => s.includes('drained')) || ''", 5)
    print(f"# on screen: {note}")
    check(f"127.0.0.1:{node.port} drained" in note, f"the drain's note: {note!r}")
    p.until("the drained badge in the node's row",
            f"document.querySelector('#nodes tr[data-key=\"{nid}\"] td.state').innerText"
            ".includes('drained')", 5)
    p.screenshot("04-drained")
    # The stream is still in flight on the node, as the node says.
    live = c.nodes[0].get_json(f"/api/v1/nodes/{nid}/live")
    check(any(s["track_id"] == t["id"] for s in live["streams"]),
          "the slow stream in flight on the drained node after the drain", live)
    r = node.get("/health", auth=False)
    check_eq(r.status, 503, "the drained node's /health", r)
    wait_for("haproxy takes the drained node out", lambda: c.hap.status().get("node2") != "UP",
             5, step=0.05, context=c.hap.status)
    out_s = time.monotonic() - t0
    mid = c.hap.streams_served()
    # New streams through haproxy: none on the drained node.
    for tr in c.tracks * 2:
        r = http_request(c.hap.port, "GET", f"/api/v1/tracks/{tr['id']}/stream",
                         bearer(c.store), timeout=30)
        check_eq(r.status, 200, "a new stream through haproxy", r)
        check_eq(hashlib.sha256(r.body).hexdigest(), sha256_file(c.file_of(tr)),
                 "a new stream's bytes")
    after = c.hap.streams_served()
    sent = {k: after[k] - mid[k] for k in after}
    print(f"# haproxy took the drained node out {out_s:.2f} s after the click "
          f"(it had {mid['node2'] - before['node2']} requests meanwhile); "
          f"requests while {len(c.tracks) * 2} new streams were sent: {sent}")
    check_eq(sent["node2"], 0, "requests haproxy sent to the drained node")
    check(sent["node1"] >= len(c.tracks) * 2, f"the new streams landed on node1: {sent}")
    # The running stream finishes, whole.
    got = slow.read_response()
    slow.close()
    check_eq(got.status, 200, "the slow stream", got)
    check_eq(len(got.body), t["size_bytes"], "the slow stream's length")
    check_eq(hashlib.sha256(got.body).hexdigest(), want, "the slow stream's bytes")
    print(f"# the stream running on the drained node finished: {len(got.body)} bytes, "
          f"sha256 equal to the file's, {time.monotonic() - t0:.2f} s after the drain")
    p.view("admin")
    p.until("the drain in the audit trail",
            f"[...document.querySelectorAll('#audit tbody tr')].some(tr => "
            f"tr.innerText.includes('node.drain') && tr.innerText.includes('{nid}'))", 10)


@test("a join token made on the page joins a fourth node, alive on the page")
def _():
    c = cluster()
    p = admin_page()
    p.view("admin")
    p.fill(selector="#token-ttl", value="2")
    p.click(selector="#token-create")
    cmd, _ = p.until("the join command on screen",
                     "(document.querySelector('#token-out .secret code') || {}).textContent", 10)
    note = p.js("[...document.querySelectorAll('#results div')].map(d => d.textContent).join(' | ')")
    check("Join token made" in note, f"the token's note: {note!r}")
    p.screenshot("05-join-token")
    m = re.fullmatch(r"chorus serve --data /var/lib/chorus --join (\S+) --token (chorus1\.\S+)", cmd)
    check(m, f"the command shown: {cmd!r}")
    url, token = m.groups()
    check(any(url.rstrip("/") == f"http://127.0.0.1:{n.port}" for n in c.nodes[:2]),
          f"the command joins a member that is up: {url}")
    t0 = time.monotonic()
    n4 = c.start("node4", ["--join", url, "--token", token])
    c.nodes.append(n4)
    nid = (n4.data / "node.id").read_text().strip()
    c.ids.append(nid)
    _, took = p.until("the fourth node alive on the page", f"{row_state(nid)} === 'alive'", 15)
    print(f"# fourth node: serving {n4.bg.result().elapsed:.2f} s after it started, alive on "
          f"the page {time.monotonic() - t0:.2f} s after it started")
    p.view("overview")
    p.until("four rows, the fourth alive",
            f"document.querySelectorAll('#nodes tbody tr').length === 4 && "
            f"{row_state(nid)} === 'alive'", 5)
    p.screenshot("05-four-nodes")


# Each chart's series colours (web/console/console.js, CHARTS).
BLUE, GREEN, AMBER, RED, VIOLET = (78, 161, 255), (62, 194, 122), (232, 181, 58), (240, 98, 93), \
    (180, 140, 255)
CHART_COLORS = {"requests": [BLUE], "bandwidth": [GREEN], "latency": [BLUE, AMBER, RED],
                "ttfb": [BLUE, AMBER, RED], "errors": [AMBER, RED], "hits": [VIOLET]}


def chart_figures(p):
    """{chart: {points, colored, now}}: the seconds with a value in its
    first series, the pixels of its canvas in one of its series' colours
    (percentiles of one second are often equal: the last drawn covers the
    others), and the figure its title shows."""
    return p.js("""(() => {
      const colors = %s, out = {};
      for (const [id, cols] of Object.entries(colors)) {
        const root = document.querySelector(`#chart-${id} .uplot`);
        if (!root) { out[id] = null; continue; }
        const cv = root.querySelector("canvas");
        const px = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
        let colored = 0;
        for (let i = 0; i < px.length; i += 4)
          if (px[i + 3] > 200 && cols.some(([r, g, b]) =>
                Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 40))
            colored++;
        out[id] = {points: Number(root.dataset.points), colored,
                   now: document.querySelector(`#chart-${id} .now`).textContent};
      }
      return out;
    })()""" % json.dumps(CHART_COLORS))


@test("the charts have data: the cluster's and a node's series drawn")
def _():
    c = cluster()
    p = admin_page()
    p.view("overview")
    p.until("series read", "Number((document.querySelector('#chart-requests .uplot') || "
            "{dataset: {}}).dataset.points) > 10", 10)
    figs = chart_figures(p)
    print(f"# cluster charts: {json.dumps(figs)}")
    for ch in ("requests", "bandwidth", "latency", "errors"):
        f = figs[ch]
        check(f and f["points"] > 0 and f["colored"] > 20,
              f"the {ch} chart has a drawn series: {f}")
    # Streams are few: their seconds are points, not lines.
    check(figs["ttfb"]["points"] >= 1 and figs["ttfb"]["colored"] > 0,
          f"streams' time to first byte charted: {figs['ttfb']}")
    p.screenshot("06-charts")
    # One node's: node1 took every stream since the drain.
    p.js(f"(() => {{ const s = document.querySelector('#chart-scope'); s.value = '{c.ids[0]}';"
         f" s.dispatchEvent(new Event('change')); }})()")
    p.until("node1's series drawn", "Number(document.querySelector('#chart-bandwidth .uplot')"
            ".dataset.points) > 0", 5)
    figs = chart_figures(p)
    print(f"# node1's charts: {json.dumps(figs)}")
    check(figs["bandwidth"]["colored"] > 20 and figs["hits"]["points"] > 0,
          f"node1's bandwidth and hit ratio drawn: {figs}")
    p.screenshot("06-charts-node1")
    p.js("(() => { const s = document.querySelector('#chart-scope'); s.value = 'cluster';"
         " s.dispatchEvent(new Event('change')); })()")


@test("at 1280x800 and 390x844: no horizontal overflow, the key controls visible")
def _():
    c = cluster()
    p = admin_page()
    views = {
        "overview": ["#health", "#logout", "nav a", "#nodes td.actions button",
                     "#chart-requests canvas", "#chart-scope"],
        "admin": ["#token-create", "#token-ttl", "#user-form button", "#key-form button",
                  "#users td.actions button"],
        "plays": ["#plays-period", "#plays-hourly canvas", "#plays-top td"],
        "live": ["#live p"],
        "search": ["#search-q"],
        "log": ["#log-node", "#log > *"],
        "library": ["#library > *", "#browse td.actions button", "#browse-q"],
        "upload": ["#up-drop", "#up-drop label.button", "#up-recent > *"],
    }
    for size in (DESKTOP, PHONE):
        p.viewport(width=size[0], height=size[1])
        for view, controls in views.items():
            p.view(view)
            if view == "search":
                p.fill(selector="#search-q", value="t0")
                p.until("search results", "document.querySelectorAll('#search-results li').length", 5)
            if view == "plays":
                p.until("plays charted", "(document.querySelector('#plays-total') || {})"
                        ".textContent", 10)
            if view == "library":
                p.until("the library's tracks", "document.querySelectorAll('#browse tbody tr').length", 10)
            if view == "upload":
                p.until("recent uploads read", "document.querySelector('#up-recent').children.length", 10)
            if view in ("log", "library"):
                p.until(f"the {view} view filled", f"document.querySelector('#{view}')"
                        f".innerText.length > 0 && !document.querySelector('#{view}')"
                        f".innerText.includes('Reading')", 10)
            time.sleep(0.4)  # the charts take their width from a resize
            over, bad = overflow_and_controls(p, controls)
            p.screenshot(f"07-{view}-{size[0]}x{size[1]}")
            if size == PHONE:  # the first screen, as the phone shows it
                p.js("window.scrollTo(0, 0)")
                p.screenshot(f"07-{view}-{size[0]}x{size[1]}-screen", full=False)
            check(over <= 0, f"{view} at {size[0]}x{size[1]}: {over} px of horizontal overflow")
            check(not bad, f"{view} at {size[0]}x{size[1]}: controls not visible: {bad}")
    p.viewport(width=DESKTOP[0], height=DESKTOP[1])
    text = p.js("document.querySelector('#plays-total').textContent")
    print(f"# plays view: {text}")
    check(text.startswith("12 plays"), f"the plays posted are in the report: {text!r}")
    lib = p.js("document.querySelector('#library').innerText")
    print(f"# library view: {lib[:200]!r}")


@test("a listener logs in and sees no admin action: no nodes, drain, tokens, users, keys or log")
def _():
    c = cluster()
    p = c.page("listener", PHONE)
    p.login(c.url, LISTENER, LISTENER_PW)
    p.until("the search view", "document.querySelector('#view-search.on')", 5)
    tabs = p.js("[...document.querySelectorAll('nav a')].map(a => a.textContent)")
    check_eq(tabs, ["Search"], "the listener's tabs")
    present = p.js("""['#view-overview', '#view-admin', '#view-log', '#view-live', '#view-plays',
        '#view-library', '#view-upload', '#nodes', '#token-form', '#user-form', '#key-form',
        '[data-action]']
        .filter(s => document.querySelector(s))""")
    check_eq(present, [], "admin parts in the listener's page")
    check(p.js("document.querySelector('#health').hidden"), "no health line for a listener")
    p.fill(selector="#search-q", value="t0")
    p.until("the listener's search answers", "document.querySelectorAll('#search-results li').length", 5)
    time.sleep(1.5)  # a second of polling: none of it may ask what a listener may not
    p.screenshot("08-listener")
    ev = p.events()
    # One 401: the page asking who it is before the login.
    refused = [e for e in ev["errors"] if "status of 403" in e]
    check(not refused, f"the listener's page asked for what it may not: {refused}")
    check(len([e for e in ev["errors"] if "status of 401" in e]) <= 1,
          f"the listener's page was refused: {ev['errors']}")
    c.close_page("listener")


@test("PostgreSQL down: the page goes on, the database unreachable in the health line, the nodes alive and live")
def _():
    c = cluster()
    p = admin_page()
    p.view("overview")
    alive = [i for i, n in zip(c.ids, c.nodes) if n.running()]
    c.db.stop()
    try:
        t0 = time.monotonic()
        p.until("the health line says the database is unreachable",
                "document.querySelector('#health').innerText.includes('database postgres unreachable')",
                15)
        print(f"# database unreachable on the page {time.monotonic() - t0:.2f} s after "
              f"PostgreSQL stopped")
        up = p.js(f"document.querySelector('#nodes tr[data-key=\"{alive[0]}\"]').cells[3].innerText")
        p.until("the figures still move", f"document.querySelector('#nodes tr[data-key="
                f"\"{alive[0]}\"]').cells[3].innerText !== {json.dumps(up)}", 5)
        time.sleep(2.5)  # past the dead interval: nobody is judged dead for want of heartbeats
        states = p.js("Object.fromEntries([...document.querySelectorAll('#nodes tbody tr')]"
                      ".map(tr => [tr.dataset.key, tr.querySelector('td.state .badge').textContent]))")
        names = {i: n.data.name for i, n in zip(c.ids, c.nodes)}
        check(all(states.get(i) == "alive" for i in alive),
              "the running nodes alive with PostgreSQL down: "
              f"{ {names[i]: s for i, s in states.items()} }")
        p.screenshot("09-postgres-down")
        # A node's log is one click away: its warnings about the outage.
        p.click(selector=f"#nodes tr[data-key=\"{alive[0]}\"] td.actions button")
        p.wait(selector="#view-log.on")
        check_eq(p.js("document.querySelector('#log-node').value"), alive[0], "the log's node")
        warn, _ = p.until("a warning in the node's log", "[...document.querySelectorAll("
                          "'#log .lvl-warn, #log .lvl-error')].map(d => d.textContent)[0]", 10)
        print(f"# the node's log, one click from its row: {warn[:160]}")
        p.screenshot("09-log-postgres-down", full=False)
        # Reports read PostgreSQL: the page says why there are none.
        p.view("plays")
        msg, _ = p.until("the plays view's error", "(document.querySelector('#plays-hourly .err')"
                         " || {}).textContent", 10)
        print(f"# plays view with PostgreSQL down: {msg}")
        p.screenshot("09-plays-postgres-down", full=False)
    finally:
        c.db.start()
    p.view("overview")
    p.until("the database reachable again",
            "document.querySelector('#health').innerText.includes('database postgres reachable')",
            15)
    # And the reports are back: plays per hour drawn again in the error's place.
    p.view("plays")
    p.until("plays per hour again", "((document.querySelector('#plays-total') || {}).textContent"
            " || '').startsWith('12 plays')", 15)


@test("no page error, no request outside the cluster; every node stops cleanly")
def _():
    c = cluster()
    ev = c.events()
    allowed = {c.url.rstrip("/")} | {f"http://127.0.0.1:{n.port}" for n in c.nodes}
    for name, e in ev.items():
        print(f"# page {name}: requests to {e['origins']}")
        outside = [o for o in e["origins"] if o not in allowed]
        check(not outside, f"page {name} asked outside the cluster: {outside}")
        # Chromium logs every answer that is not a success ("Failed to load
        # resource": the first GET /api/v1/session is a 401 by design, a
        # killed node's refused connections, an endpoint not there); the
        # page itself must throw or log nothing.
        failed = [x for x in e["errors"] if "Failed to load resource" in x]
        errors = [x for x in e["errors"] if x not in failed]
        print(f"# page {name}: {len(failed)} answers not a success: "
              f"{sorted(set(x.split('resource: ')[-1] for x in failed))}")
        check(not errors, f"page {name}: errors {errors}")
    _CLUSTER.clear()
    res = c.close()
    for name, r in res.items():
        chorus_test._check_sanitizers(r)
        check_eq(r.rc, 0, f"{name}: exit status after SIGTERM", r)


if __name__ == "__main__":
    main()
