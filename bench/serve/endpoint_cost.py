#!/usr/bin/env python3
"""N sequential GETs of one path over one keep-alive connection, logged in
as the console is (bench/serve_console.sh measures the nodes' CPU around it).

    endpoint_cost.py URL USER PASSWORD PATH N

Prints "requests=N seconds=S bytes=B non200=K". Exits 1 on a failed login.
"""
import http.client
import json
import sys
import time

url, user, password, path, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
host, port = url.split("//", 1)[1].rstrip("/").split(":")
c = http.client.HTTPConnection(host, int(port), timeout=10)
c.request("POST", "/api/v1/session", body=json.dumps({"user": user, "password": password}),
          headers={"Content-Type": "application/json"})
r = c.getresponse()
r.read()
cookie = None
for part in (r.getheader("Set-Cookie") or "").split(";"):
    part = part.strip()
    if part.startswith("chorus_session="):
        cookie = part.split("=", 1)[1]
if r.status != 200 or not cookie:
    sys.exit("endpoint_cost: login failed: %d" % r.status)
h = {"Cookie": "chorus_session=" + cookie, "Accept": "application/json"}
bad = 0
size = 0
t0 = time.monotonic()
for _ in range(n):
    c.request("GET", path, headers=h)
    r = c.getresponse()
    size += len(r.read())
    bad += r.status != 200
print("requests=%d seconds=%.3f bytes=%d non200=%d" % (n, time.monotonic() - t0, size, bad))
