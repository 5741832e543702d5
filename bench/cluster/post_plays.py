#!/usr/bin/python3
"""Queues N plays on a node: POST /api/v1/plays in batches (default 1,000,
the API's maximum), for bench/plays_ship.sh.

    bench/cluster/post_plays.py --port P --n N --tracks ID,ID,... [--batch 1000]
                                [--conns 2] [--prefix RUN]

Plays look like bench/plays/post.lua's (event ids unique per run, prefix-i;
location, zone, device set; started_at spread over a day). Every batch must
be acknowledged (2xx). Prints `posted n=N seconds=S` on stdout.
"""
import argparse
import http.client
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--tracks", required=True)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=2)
    ap.add_argument("--prefix", default="ship")
    a = ap.parse_args()
    tracks = a.tracks.split(",")
    nb = (a.n + a.batch - 1) // a.batch
    lock = threading.Lock()
    state = {"next": 0, "posted": 0, "error": None}

    def body(b):
        first = b * a.batch
        items = []
        for i in range(first, min(a.n, first + a.batch)):
            items.append('{"track_id":"%s","started_at":"2025-06-01T%02d:%02d:%02dZ",'
                         '"ms_played":%d,"event_id":"%s-%d","location":"Shop %d","zone":"Bar",'
                         '"device":"pi-%d","offline":%s}' %
                         (tracks[i % len(tracks)], (i // 3600) % 24, (i // 60) % 60, i % 60,
                          1000 + i % 300000, a.prefix, i, i % 50, i % 8,
                          "true" if i % 10 == 0 else "false"))
        return "[" + ",".join(items) + "]", len(items)

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        while True:
            with lock:
                b = state["next"]
                state["next"] += 1
            if b >= nb or state["error"]:
                return
            data, k = body(b)
            c.request("POST", "/api/v1/plays", data, {"Content-Type": "application/json"})
            r = c.getresponse()
            text = r.read()
            if r.status // 100 != 2:
                state["error"] = "batch %d: %d %s" % (b, r.status, text[:300])
                return
            with lock:
                state["posted"] += k

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(a.conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if state["error"]:
        sys.exit("post_plays: " + state["error"])
    print("posted n=%d seconds=%.2f" % (state["posted"], time.monotonic() - t0))


if __name__ == "__main__":
    main()
