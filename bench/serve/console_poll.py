#!/usr/bin/env python3
"""One open console page, as web/console's loops poll (bench/serve_console.sh).

    console_poll.py URL USER PASSWORD STATS

Logs in (POST /api/v1/session, the chorus_session cookie, as the page
does), then runs the page's polling loops against the node at URL, the one
that "served the page". Each loop runs its function, then again `every`
seconds after it finished (console.js's loop()):

    overview  1 s   GET /api/v1/overview
    series    5 s   GET /api/v1/nodes/{id}/series[?since=T] for every answered
                    node of the last overview (since: the last second it has)
    live      2 s   GET /api/v1/live
    log       3 s   GET /api/v1/nodes/{id}/log[?since=SEQ] (the first node)
    cluster  10 s   GET /api/v1/cluster

The page runs overview and cluster always, series only on its overview
view, live on its "playing now" view, log on its log view; this runs all
of them at once: an upper bound of any one view. Requests go one at a time
over one keep-alive connection (the page would use a few in parallel).

Starts paused. SIGUSR2 resumes (every loop due at once, as the page's
visibilitychange does), SIGUSR1 pauses (the loops' state, since= and the
log's seq, is kept: a hidden page). On each pause and at SIGTERM, writes
STATS (JSON, cumulative): per endpoint, requests, answers by status, and
seconds spent waiting for answers, bytes of the bodies, and for overview
and live the nodes that did not answer the fan-out (summed over answers);
plus this process's CPU seconds.
"""
import http.client
import json
import os
import signal
import sys
import time

url, user, password, stats_path = sys.argv[1:5]
host, port = url.split("//", 1)[1].rstrip("/").split(":")
port = int(port)

running = False
stop = False
stats = {}


def on_pause(*_):
    global running
    running = False


def on_resume(*_):
    global running
    running = True


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGUSR1, on_pause)
signal.signal(signal.SIGUSR2, on_resume)
signal.signal(signal.SIGTERM, on_term)

conn = None
cookie = None


def request(method, path, body=None, name=None):
    """One request; returns (status, parsed JSON or None)."""
    global conn
    headers = {"Accept": "application/json"}
    if cookie:
        headers["Cookie"] = "chorus_session=" + cookie
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    t0 = time.monotonic()
    for attempt in (0, 1):
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=6)
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            status = r.status
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            break
        except (http.client.HTTPException, OSError):
            if conn is not None:
                conn.close()
            conn = None
            if attempt == 1:
                status, data, r = 0, b"", None
    dt = time.monotonic() - t0
    if name:
        s = stats.setdefault(name, {"requests": 0, "codes": {}, "seconds": 0.0, "bytes": 0})
        s["requests"] += 1
        s["codes"][str(status)] = s["codes"].get(str(status), 0) + 1
        s["seconds"] += dt
        s["bytes"] += len(data)
    try:
        return status, json.loads(data) if data else None, r
    except ValueError:
        return status, None, r


status, me, r = request("POST", "/api/v1/session", {"user": user, "password": password})
if status != 200:
    sys.exit("console_poll: login to %s failed: %s" % (url, status))
for part in (r.getheader("Set-Cookie") or "").split(";"):
    part = part.strip()
    if part.startswith("chorus_session="):
        cookie = part.split("=", 1)[1]
if not cookie:
    sys.exit("console_poll: no chorus_session cookie from %s" % url)

nodes = []  # the last overview's nodes
series_since = {}  # node id -> last t
log_next = 0
log_node = None


def poll_overview():
    global nodes
    st, o, _ = request("GET", "/api/v1/overview", name="overview")
    if st == 200 and o:
        nodes = o["nodes"]
        stats["overview"]["unanswered"] = stats["overview"].get("unanswered", 0) + \
            sum(1 for n in nodes if not n["answered"])


def poll_series():
    for n in nodes:
        if n["state"] == "dead" or not n["answered"]:
            continue
        since = series_since.get(n["id"], 0)
        path = "/api/v1/nodes/%s/series%s" % (n["id"], "?since=%d" % since if since else "")
        st, d, _ = request("GET", path, name="series")
        if st == 200 and d and d["t"]:
            series_since[n["id"]] = d["t"][-1]


def poll_live():
    st, d, _ = request("GET", "/api/v1/live", name="live")
    if st == 200 and d:
        stats["live"]["unanswered"] = stats["live"].get("unanswered", 0) + len(d["unanswered"])


def poll_log():
    global log_next, log_node
    if log_node is None:
        if not nodes:
            return
        log_node = nodes[0]["id"]
    path = "/api/v1/nodes/%s/log%s" % (log_node, "?since=%d" % log_next if log_next else "")
    st, d, _ = request("GET", path, name="log")
    if st == 200 and d:
        log_next = d["next"]


def poll_cluster():
    request("GET", "/api/v1/cluster", name="cluster")


# Ordered as console.js declares its loops; all due at once on a resume.
loops = [[1.0, poll_overview, 0.0], [5.0, poll_series, 0.0], [2.0, poll_live, 0.0],
         [3.0, poll_log, 0.0], [10.0, poll_cluster, 0.0]]


def write_stats():
    t = os.times()
    out = {"endpoints": stats, "cpu_s": t.user + t.system}
    tmp = stats_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, stats_path)


write_stats()
was_running = False
while not stop:
    if running and not was_running:
        now = time.monotonic()
        for l in loops:
            l[2] = now
    if not running and was_running:
        write_stats()
    was_running = running
    if not running:
        time.sleep(0.1)
        continue
    now = time.monotonic()
    due = min(loops, key=lambda l: l[2])
    if due[2] > now:
        time.sleep(min(due[2] - now, 0.2))
        continue
    due[1]()
    due[2] = time.monotonic() + due[0]
write_stats()
