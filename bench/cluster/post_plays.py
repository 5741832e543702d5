#!/usr/bin/python3
"""Queues N plays on a node: POST /api/v1/plays in batches (default 1,000,
the API's maximum), for bench/plays_ship.sh.

    bench/cluster/post_plays.py --port P --n N --tracks ID[:MS],ID[:MS],...
                                [--batch 1000] [--conns 2] [--prefix RUN] [--key KEY]

Plays look like bench/plays/post.lua's (event ids unique per run, prefix-i;
location, zone, device set; started_at spread over a day, the day before
the last two hours, as the API takes plays of the last 30 days only;
ms_played at most the track's duration MS when given). They are posted
with --key, an admin API key (admins have no per-minute play quota). Every
batch must be acknowledged (2xx). Prints `posted n=N seconds=S` on stdout.
"""
import argparse
import http.client
import os
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
    ap.add_argument("--key", default=os.environ.get("CHORUS_KEY"),
                    help="an admin API key (default: $CHORUS_KEY)")
    a = ap.parse_args()
    tracks = [t.partition(":")[0] for t in a.tracks.split(",")]
    durations = [int(t.partition(":")[2] or 1 << 62) for t in a.tracks.split(",")]
    # One stamp per second of a day ending two hours ago (on the hour).
    day0 = int(time.time()) // 3600 * 3600 - 2 * 3600 - 86400
    stamps = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day0 + s)) for s in range(86400)]
    headers = {"Content-Type": "application/json"}
    if a.key:
        headers["Authorization"] = "Bearer " + a.key
    nb = (a.n + a.batch - 1) // a.batch
    lock = threading.Lock()
    state = {"next": 0, "posted": 0, "error": None}

    def body(b):
        first = b * a.batch
        items = []
        for i in range(first, min(a.n, first + a.batch)):
            t = i % len(tracks)
            items.append('{"track_id":"%s","started_at":"%s",'
                         '"ms_played":%d,"event_id":"%s-%d","location":"Shop %d","zone":"Bar",'
                         '"device":"pi-%d","offline":%s}' %
                         (tracks[t], stamps[i % 86400],
                          min(1000 + i % 300000, durations[t]), a.prefix, i, i % 50, i % 8,
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
            c.request("POST", "/api/v1/plays", data, headers)
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
