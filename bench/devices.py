#!/usr/bin/env python3
"""The simulated store devices of bench/devices.sh (not a benchmark itself).

  devices.py setup URL ADMIN_KEY N OUT
      Through the API of the node at URL, with the admin key: a location
      (Europe/Berlin, interactive), a zone, a playlist of every track, an
      all-day schedule of it every day, and N store keys bound to the zone
      (POST /api/v1/keys over CONNS keep-alive connections at once). Writes
      OUT/zone (its id), OUT/keys (one key a line), OUT/schedule.json and
      OUT/schedule2.json (the same week with another separation: a change
      to PUT), and prints one line: "setup zone=.. keys=N keys_s=S ...".

  devices.py hold --sse HOST:PORT --zone ID --keys FILE --n N
                  [--idle HOST:PORT --idle-path PATH --idle-n M]
                  [--admin KEY --put FILE]
      Opens N event streams (GET /api/v1/zones/ID/events, device i with
      key i of FILE, one a line, reused round-robin when FILE has fewer),
      each checked for a 200 text/event-stream and its "hello"; and M
      keep-alive connections to the idle server that each GET PATH once,
      read the whole answer and sit idle. Then prints
      "ready sse=N idle=M open_s=S" and reads commands from stdin, one a
      line, answering each with one line:
        fanout FILE   PUT FILE as the zone's schedule (with the admin key)
                      and time, from just before the PUT is written, until
                      every stream has had "event: changed":
                      "fanout n=N got=G put_ms=.. p50_ms=.. p90_ms=..
                      p99_ms=.. max_ms=.." (G < N: the rest had none
                      within 30 s)
        status        "status sse_open=.. idle_open=.. changed_outside=.."
                      (streams or connections the servers closed, and
                      "changed" events that came outside a fan-out)
        quit
      Stops when stdin closes.

Raw sockets and asyncio protocols (no HTTP library: the per-event cost of
the client is what bounds the fan-out timing it can see), one process.
"""
import asyncio
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


# ---- setup ----------------------------------------------------------------

class Api:
    def __init__(self, url, key):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.key = key
        self.c = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method, path, body=None, want=(200, 201)):
        h = {"Authorization": "Bearer " + self.key}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.c.request(method, path, body=data, headers=h)
        r = self.c.getresponse()
        text = r.read()
        if r.status not in want:
            raise SystemExit("%s %s: %d %s" % (method, path, r.status, text[:300]))
        return json.loads(text) if text.strip() else None


def setup(url, admin, n, out, conns=4):
    api = Api(url, admin)
    tracks, off = [], 0
    while True:
        page = api.call("GET", "/api/v1/tracks?limit=500&offset=%d" % off)
        tracks += page["tracks"]
        off += len(page["tracks"])
        if not page["tracks"] or off >= page["total"]:
            break
    tracks.sort(key=lambda t: t["title"])
    suffix = "%d" % os.getpid()
    loc = api.call("POST", "/api/v1/locations",
                   {"name": "Bench store " + suffix, "timezone": "Europe/Berlin",
                    "country": "DE", "licence": "interactive"})
    zone = api.call("POST", "/api/v1/zones", {"location_id": loc["id"], "name": "Floor"})
    pl = api.call("POST", "/api/v1/playlists",
                  {"name": "Bench all day " + suffix, "tracks": [t["id"] for t in tracks],
                   "shuffle": True})
    week = {"dayparts": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                          "from": "00:00", "to": "24:00", "playlist_id": pl["id"]}],
            "separation_minutes": 30}
    api.call("PUT", "/api/v1/zones/%s/schedule" % zone["id"], week)
    week2 = dict(week, separation_minutes=20)
    with open(os.path.join(out, "schedule.json"), "w") as f:
        json.dump(week, f)
    with open(os.path.join(out, "schedule2.json"), "w") as f:
        json.dump(week2, f)
    with open(os.path.join(out, "zone"), "w") as f:
        f.write(zone["id"] + "\n")

    keys = [None] * n
    t0 = time.monotonic()

    def worker(w):
        a = Api(url, admin)
        for i in range(w, n, conns):
            r = a.call("POST", "/api/v1/keys",
                       {"role": "store", "location": loc["id"], "zone": zone["id"],
                        "name": "device-%05d" % i})
            keys[i] = r["key"]

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.monotonic() - t0
    if any(k is None for k in keys):
        raise SystemExit("some keys were not made")
    with open(os.path.join(out, "keys"), "w") as f:
        f.write("\n".join(keys) + "\n")
    print("setup zone=%s location=%s playlist=%s tracks=%d keys=%d keys_s=%.2f keys_per_s=%.0f"
          % (zone["id"], loc["id"], pl["id"], len(tracks), n, secs, n / secs), flush=True)


# ---- hold -----------------------------------------------------------------

class State:
    def __init__(self):
        self.sse_open = 0
        self.idle_open = 0
        self.changed_outside = 0
        self.fan = None  # the current fan-out: {"t0", "times", "n", "done"}


ST = State()


class Sse(asyncio.Protocol):
    def __init__(self, req, ready):
        self.req, self.ready = req, ready
        self.buf = b""
        self.head = False
        self.tail = b""
        self.waiting = False

    def connection_made(self, tr):
        self.tr = tr
        tr.write(self.req)

    def data_received(self, data):
        now = time.monotonic()
        if not self.head:
            if self.ready.done():
                return
            self.buf += data
            if b"\r\n\r\n" not in self.buf:
                return
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200") or b"text/event-stream" not in head:
                self.ready.set_exception(RuntimeError("events answer: %r" % head[:200]))
                return
            if b"event: hello" not in rest:
                return  # the hello is yet to come
            self.head = True
            self.buf = b""
            ST.sse_open += 1
            self.ready.set_result(self)
            data = rest.split(b"event: hello", 1)[1]
        s = self.tail + data
        if b"event: changed" in s:
            f = ST.fan
            if self.waiting and f is not None:
                self.waiting = False
                f["times"].append(now - f["t0"])
                if len(f["times"]) == f["n"] and not f["done"].done():
                    f["done"].set_result(None)
            else:
                ST.changed_outside += 1
        self.tail = s[-16:]

    def connection_lost(self, exc):
        if self.head:
            ST.sse_open -= 1
        elif not self.ready.done():
            self.ready.set_exception(RuntimeError("events stream closed before hello: %r"
                                                  % self.buf[:200]))


class Idle(asyncio.Protocol):
    def __init__(self, req, ready):
        self.req, self.ready = req, ready
        self.buf = b""
        self.need = None
        self.ok = False

    def connection_made(self, tr):
        tr.write(self.req)

    def data_received(self, data):
        if self.ok or self.ready.done():
            return
        self.buf += data
        if self.need is None:
            if b"\r\n\r\n" not in self.buf:
                return
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                self.ready.set_exception(RuntimeError("idle answer: %r" % head[:200]))
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            self.need = len(head) + 4 + length
        if len(self.buf) >= self.need:
            self.ok = True
            self.buf = b""
            ST.idle_open += 1
            self.ready.set_result(self)

    def connection_lost(self, exc):
        if self.ok:
            ST.idle_open -= 1
        elif not self.ready.done():
            self.ready.set_exception(RuntimeError("idle connection closed early"))


async def open_all(host, port, make, n, par=200):
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(par)
    out = [None] * n

    async def one(i):
        async with sem:
            ready = loop.create_future()
            await loop.create_connection(lambda: make(i, ready), host, port)
            out[i] = await asyncio.wait_for(ready, 60)

    await asyncio.gather(*(one(i) for i in range(n)))
    return out


async def put_schedule(host, port, zone, admin, body):
    r, w = await asyncio.open_connection(host, port)
    w.write(("PUT /api/v1/zones/%s/schedule HTTP/1.1\r\nHost: %s:%d\r\n"
             "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\nConnection: close\r\n\r\n"
             % (zone, host, port, admin, len(body))).encode() + body)
    head = await r.readuntil(b"\r\n\r\n")
    rest = await r.read()
    w.close()
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("PUT schedule: %r %r" % (head[:100], rest[:200]))


def hostport(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


async def hold(a):
    loop = asyncio.get_running_loop()
    host, port = hostport(a["--sse"])
    zone = a["--zone"]
    keys = [k for k in open(a["--keys"]).read().split() if k]
    n = int(a["--n"])
    t0 = time.monotonic()

    def make_sse(i, ready):
        return Sse(("GET /api/v1/zones/%s/events HTTP/1.1\r\nHost: %s:%d\r\n"
                    "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n"
                    % (zone, host, port, keys[i % len(keys)])).encode(), ready)

    streams = await open_all(host, port, make_sse, n)
    idle = []
    m = int(a.get("--idle-n", "0"))
    if m and a.get("--idle"):
        ih, ip = hostport(a["--idle"])
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (a["--idle-path"], ih, ip)).encode()
        idle = await open_all(ih, ip, lambda i, ready: Idle(req, ready), m)
    print("ready sse=%d idle=%d open_s=%.2f" % (ST.sse_open, ST.idle_open, time.monotonic() - t0),
          flush=True)

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "quit":
            return
        if cmd[0] == "status":
            print("status sse_open=%d idle_open=%d changed_outside=%d"
                  % (ST.sse_open, ST.idle_open, ST.changed_outside), flush=True)
        elif cmd[0] == "fanout":
            body = open(cmd[1], "rb").read()
            live = [s for s in streams if not s.tr.is_closing()]
            for s in live:
                s.waiting = True
            ST.fan = {"t0": 0.0, "times": [], "n": len(live), "done": loop.create_future()}
            ST.fan["t0"] = time.monotonic()
            await put_schedule(host, port, zone, a["--admin"], body)
            put_ms = (time.monotonic() - ST.fan["t0"]) * 1e3
            try:
                await asyncio.wait_for(asyncio.shield(ST.fan["done"]), 30)
            except asyncio.TimeoutError:
                pass
            v = [t * 1e3 for t in ST.fan["times"]]
            for s in live:
                s.waiting = False
            ST.fan = None
            print("fanout n=%d got=%d put_ms=%.1f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f"
                  % (len(live), len(v), put_ms, pct(v, 50), pct(v, 90), pct(v, 99),
                     max(v) if v else float("nan")), flush=True)
        else:
            print("error unknown command %r" % cmd[0], flush=True)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "setup":
        url, admin, n, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
        conns = int(sys.argv[6]) if len(sys.argv) > 6 else 4
        setup(url, admin, n, out, conns)
    elif len(sys.argv) >= 2 and sys.argv[1] == "hold":
        args = sys.argv[2:]
        a = dict(zip(args[0::2], args[1::2]))
        asyncio.run(hold(a))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
