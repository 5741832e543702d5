#!/usr/bin/python3
"""Times a node's plays shipping, for bench/plays_ship.sh: polls
GET /api/v1/node every 20 ms (one process, one keep-alive connection, so
the polling costs next to nothing) until plays_shipping.shipped has grown
by N since --shipped0 and queued is 0.

    bench/cluster/wait_shipped.py --port P --n N --shipped0 S [--since T] [--timeout 600]
                                  [--key KEY]

GET /api/v1/node is for admins: --key is an admin API key.
Time 0 is --since (seconds since the epoch, e.g. `date +%s.%N` right
after PostgreSQL is up), or this program's start.
Prints `shipped first_s=.. first_rows=.. done_s=..` on stdout: when the
first batch was seen shipped, how many rows it counted then, and when all
were.
"""
import argparse
import http.client
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--shipped0", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--since", type=float, help="time 0, seconds since the epoch (default: now)")
    ap.add_argument("--key", default=os.environ.get("CHORUS_KEY"),
                    help="an admin API key (default: $CHORUS_KEY)")
    a = ap.parse_args()
    t0 = time.monotonic() - (time.time() - a.since if a.since else 0.0)
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
    first = first_rows = None
    while True:
        c.request("GET", "/api/v1/node", headers={"Authorization": "Bearer %s" % a.key} if a.key else {})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit("wait_shipped: GET /api/v1/node: %d %s" % (r.status, body[:300]))
        s = json.loads(body)["plays_shipping"]
        t = time.monotonic() - t0
        shipped = s["shipped"] - a.shipped0
        if first is None and shipped > 0:
            first, first_rows = t, shipped
        if shipped >= a.n and s["queued"] == 0:
            print("shipped first_s=%.3f first_rows=%d done_s=%.3f" % (first, first_rows, t))
            return
        if t > a.timeout:
            sys.exit("wait_shipped: not done after %.0f s: %r" % (t, s))
        time.sleep(0.02)


if __name__ == "__main__":
    main()
