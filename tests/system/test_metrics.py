#!/usr/bin/python3
"""System tests of /metrics (docs/console.md): Prometheus text 0.0.4 behind
the admin key and on --metrics-listen's scrape-only listener, checked by
`promtool check metrics`; each family's counter moving when its event
happens and only then; a two-node cluster on a real PostgreSQL (peer reads
and serves, replication, plays shipped); and a real Prometheus scraping one
node through --metrics-listen and one with a bearer token.

    CHORUS_BIN=build/asan/chorus /usr/bin/python3 tests/system/test_metrics.py [NAME...]

The counters are read through --metrics-listen where exact deltas matter:
that listener is a server of its own, so reading the figures there moves
none of the main listener's.
"""

import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from chorus_test import (  # noqa: E402
    Node, audio_library, bearer, check, check_eq, fail, http_request, ingest_ok, main,
    test, wait_for)
from cluster_lib import score  # noqa: E402

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
SEAL_TAG = 16
JSON_CT = {"Content-Type": "application/json"}

# docs/console.md's table: family -> (type, label names).
FAMILIES = {
    "chorus_build_info": ("gauge", {"version"}),
    "chorus_start_time_seconds": ("gauge", set()),
    "chorus_http_requests_total": ("counter", {"route", "code"}),
    "chorus_http_request_duration_seconds": ("histogram", {"route"}),
    "chorus_stream_ttfb_seconds": ("histogram", set()),
    "chorus_http_response_bytes_total": ("counter", {"route"}),
    "chorus_http_connections": ("gauge", set()),
    "chorus_http_connections_accepted_total": ("counter", set()),
    "chorus_cache_hits_total": ("counter", set()),
    "chorus_cache_misses_total": ("counter", set()),
    "chorus_cache_fills_total": ("counter", set()),
    "chorus_cache_evictions_total": ("counter", set()),
    "chorus_cache_bytes": ("gauge", set()),
    "chorus_cache_budget_bytes": ("gauge", set()),
    "chorus_cache_chunks": ("gauge", set()),
    "chorus_origin_reads_total": ("counter", set()),
    "chorus_origin_read_errors_total": ("counter", set()),
    "chorus_origin_read_bytes_total": ("counter", set()),
    "chorus_peer_reads_total": ("counter", set()),
    "chorus_peer_read_bytes_total": ("counter", set()),
    "chorus_peer_served_total": ("counter", set()),
    "chorus_peer_served_bytes_total": ("counter", set()),
    "chorus_replication_lag_seconds": ("gauge", set()),
    "chorus_replication_connected": ("gauge", set()),
    "chorus_plays_accepted_total": ("counter", set()),
    "chorus_plays_queued": ("gauge", set()),
    "chorus_plays_shipped_total": ("counter", set()),
    "chorus_cluster_nodes": ("gauge", {"state"}),
    "chorus_node_drained": ("gauge", set()),
    "chorus_log_messages_total": ("counter", {"level"}),
    "chorus_upload_bytes_total": ("counter", set()),
    "chorus_uploads_ingested_total": ("counter", {"outcome"}),
}
# Only with a database (docs: "cluster: ...").
CLUSTER_ONLY = {"chorus_replication_lag_seconds", "chorus_replication_connected",
                "chorus_plays_queued", "chorus_plays_shipped_total"}
ROUTES = {"console", "health", "session", "catalog", "search", "stream", "plays", "reports",
          "admin", "cluster", "internal", "metrics", "uploads", "stores", "other"}
LABEL_VALUES = {"route": ROUTES, "code": {"1xx", "2xx", "3xx", "4xx", "5xx"},
                "state": {"alive", "suspect", "dead"}, "level": {"warn", "error"},
                "outcome": {"done", "failed"}}

# Six one-chunk FLAC tracks of noise (each its own length, so its own size).
TRACKS = [(f"m{i}.flac", 1.0 + 0.25 * i,
           {"title": f"Metric {i}", "artist": "Gauge Band", "album": "Counters",
            "track": str(i + 1)}) for i in range(6)]


def library():
    return audio_library("metrics-lib", TRACKS, ingest=True)


def fresh_data(tmp):
    """A copy of the ingested library's data directory, its cache empty."""
    d = tmp / "data"
    shutil.copytree(library()["data"], d, ignore=shutil.ignore_patterns("cache"))
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the text format

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class Scrape:
    """One /metrics body: samples {(name, ((label, value), ...)): float},
    types {family: type}."""

    def __init__(self, body):
        self.text = body.decode("utf-8")
        self.samples, self.types, self.order = {}, {}, []
        for ln in self.text.splitlines():
            if ln.startswith("# TYPE "):
                _, _, name, typ = ln.split(" ", 3)
                self.types[name] = typ
                continue
            if not ln or ln.startswith("#"):
                continue
            m = _SAMPLE.match(ln)
            if not m:
                fail(f"not a sample line: {ln!r}")
            labels, rest = [], m.group(2) or ""
            while rest:
                lm = _LABEL.match(rest)
                if not lm:
                    fail(f"bad labels in {ln!r}")
                labels.append((lm.group(1), lm.group(2)))
                rest = rest[lm.end():]
            key = (m.group(1), tuple(labels))
            if key in self.samples:
                fail(f"sample twice: {ln!r}")
            self.samples[key] = float(m.group(3))
            self.order.append(key)

    def get(self, name, **labels):
        """The value of the sample name{labels} (exactly those labels)."""
        for (n, ls), v in self.samples.items():
            if n == name and dict(ls) == labels:
                return v
        fail(f"no sample {name}{labels}")

    def has(self, name, **labels):
        return any(n == name and dict(ls) == labels for n, ls in self.samples)

    def family_samples(self, fam):
        typ = self.types.get(fam)
        names = {fam} if typ != "histogram" else {fam + "_bucket", fam + "_sum", fam + "_count"}
        return {k: v for k, v in self.samples.items() if k[0] in names}


def delta(before, after):
    """{(name, labels): after - before} of the samples that changed."""
    keys = set(before.samples) | set(after.samples)
    out = {}
    for k in keys:
        d = after.samples.get(k, 0.0) - before.samples.get(k, 0.0)
        if d:
            out[k] = d
    return out


def fmt_delta(d):
    return "\n  ".join(f"{n}{dict(ls) if ls else ''} {v:+g}" for (n, ls), v in sorted(d.items()))


def scrape(port, headers=None):
    """GET /metrics; (Resp, Scrape)."""
    r = http_request(port, "GET", "/metrics", headers or {})
    if r.status != 200:
        fail(f"GET /metrics on port {port}: {r.status}", r)
    return r, Scrape(r.body)


def promtool(body, what):
    """`promtool check metrics` on body: its output (printed); fails unless it exits 0."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
    print(f"# promtool check metrics ({what}, {len(body)} bytes): exit {p.returncode}"
          + (f", output: {out}" if out else ", no output"))
    check_eq(p.returncode, 0, f"promtool check metrics exit status ({what}): {out}")
    return out


def check_histograms(s):
    """Each histogram: buckets cumulative in ascending le, +Inf == _count."""
    for fam, typ in s.types.items():
        if typ != "histogram":
            continue
        series = {}
        for (n, ls), v in s.samples.items():
            if n == fam + "_bucket":
                d = dict(ls)
                le = d.pop("le")
                series.setdefault(tuple(sorted(d.items())), []).append(
                    (float("inf") if le == "+Inf" else float(le), v))
        check(series, f"{fam}: no buckets")
        for ls, buckets in series.items():
            les = [b[0] for b in buckets]
            counts = [b[1] for b in buckets]
            check(les == sorted(les) and les[-1] == float("inf"),
                  f"{fam}{dict(ls)}: buckets out of order or no +Inf: {les}")
            check(all(a <= b for a, b in zip(counts, counts[1:])),
                  f"{fam}{dict(ls)}: buckets not cumulative: {counts}")
            check_eq(counts[-1], s.get(fam + "_count", **dict(ls)),
                     f"{fam}{dict(ls)}: +Inf bucket vs _count")
            check(s.has(fam + "_sum", **dict(ls)), f"{fam}{dict(ls)}: no _sum")


def check_families(s, cluster):
    """Every family of docs/console.md with its type and labels; no other."""
    for fam, (typ, labels) in FAMILIES.items():
        if fam in CLUSTER_ONLY and not cluster:
            continue
        check_eq(s.types.get(fam), typ, f"# TYPE of {fam}")
        samples = s.family_samples(fam)
        if fam != "chorus_replication_lag_seconds":  # absent while the lag is unknown
            check(samples, f"{fam}: no samples")
        for (n, ls), _ in samples.items():
            names = {k for k, _ in ls} - ({"le"} if n.endswith("_bucket") else set())
            check_eq(names, labels, f"label names of {n}")
    extra = set(s.types) - set(FAMILIES)
    check(not extra, f"families not in docs/console.md: {sorted(extra)}")
    for n, _ in s.samples:
        check(n.startswith("chorus_"), f"sample {n} without the chorus_ prefix")
        fam = next((f for f in s.types if n == f or (s.types[f] == "histogram" and n in (
            f + "_bucket", f + "_sum", f + "_count"))), None)
        check(fam, f"sample {n} of no declared family")
        if s.types[fam] == "counter":
            check(n.endswith("_total"), f"counter {n} without _total")


def check_labels(s, secrets=()):
    """Labels only from the documented sets; none of secrets (track ids,
    users, keys, addresses) anywhere in the body."""
    for (n, ls), _ in s.samples.items():
        for k, v in ls:
            if k in LABEL_VALUES:
                check(v in LABEL_VALUES[k], f"{n}: label {k}={v!r} not a documented value")
            elif k == "le":
                check(v == "+Inf" or re.fullmatch(r"[0-9.e+-]+", v), f"{n}: le={v!r}")
            elif k == "version":
                check(re.fullmatch(r"\d+\.\d+\.\d+\S*", v), f"{n}: version={v!r}")
            else:
                fail(f"{n}: label {k} not in docs/console.md")
            check(not re.search(r"\d+\.\d+\.\d+\.\d+|[0-9a-f]{12,}|:\d+", v),
                  f"{n}: label {k}={v!r} looks like an address or an id")
    for sec in secrets:
        check(sec not in s.text, f"{sec!r} appears in /metrics")


# ---------------------------------------------------------------- raw requests

def raw_get(port, path, headers=b""):
    """GET path with Connection: close; (status, body, bytes received in all)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sk:
        sk.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
                   + headers + b"\r\n")
        data = b""
        while True:
            d = sk.recv(1 << 16)
            if not d:
                break
            data += d
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    check(m, f"no status line: {data[:100]!r}")
    cl = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    check(cl and int(cl.group(1)) == len(body), f"body of {len(body)} bytes vs {head!r}")
    return int(m.group(1)), body, len(data)


def wait_delta(figures, before, want, what, timeout=3):
    """Waits until every sample of want moved by at least its value (a
    server counts a request once its last byte is written, which may be
    after the client read it), then checks each moved by exactly that,
    a moment later; returns the whole delta."""
    def got():
        d = delta(before, figures())
        return d if all(d.get(k, 0) >= v for k, v in want.items()) else None
    wait_for(what, got, timeout, step=0.05, context=lambda: fmt_delta(delta(before, figures())))
    time.sleep(0.1)  # anything more would come now
    d = delta(before, figures())
    for k, v in want.items():
        check_eq(d.get(k, 0), v, f"{what}: {k[0]}{dict(k[1])} moved", fmt_delta(d))
    return d


class Standalone:
    """One embedded node with --metrics-listen: figures read there move
    nothing on the main listener."""

    def __init__(self, tmp, args=()):
        self.data = fresh_data(tmp)
        self.mport = free_port()
        self.node = Node(self.data, tmp / "logs",
                         args=["--metrics-listen", f"127.0.0.1:{self.mport}"] + list(args))
        self.key = self.node.key
        self.tracks = self.node.get_json("/api/v1/tracks?limit=100")["tracks"]
        check_eq(len(self.tracks), len(TRACKS), "tracks in the library")
        for t in self.tracks:
            check(t["size_bytes"] < (1 << 20), f"track {t['id']} is one chunk")

    def figures(self):
        return scrape(self.mport)[1]

    def settled(self):
        """The figures once no connection is open on the main listener:
        the server closes a client's connection a moment after the client
        did, and that gauge must not move inside a delta."""
        wait_for("no connection open on the main listener",
                 lambda: self.figures().get("chorus_http_connections") == 0, 5, step=0.02)
        return self.figures()

    def wait_delta(self, before, want, what, timeout=3):
        return wait_delta(self.figures, before, want, what, timeout)

    def stream_raw(self, track):
        return raw_get(self.node.port, f"/api/v1/tracks/{track['id']}/stream",
                       f"Authorization: Bearer {self.key}\r\n".encode())


def K(name, **labels):
    return (name, tuple(labels.items()))


def http_moved(d, route):
    """The samples of d that a request of route moves on its own: its
    count, bytes, duration histogram, and the connection's accept."""
    return {k: v for k, v in d.items()
            if not ((k[0] == "chorus_http_requests_total" and dict(k[1])["route"] == route)
                    or (k[0] == "chorus_http_response_bytes_total" and dict(k[1])["route"] == route)
                    or (k[0].startswith("chorus_http_request_duration_seconds")
                        and dict(k[1]).get("route") == route)
                    or k[0] == "chorus_http_connections_accepted_total")}


# ---------------------------------------------------------------- tests

@test("standalone: /metrics 401 without credentials; 200 text 0.0.4 with the admin key; promtool clean; every documented family with its type; no track, user or address in a label")
def _(tmp):
    n = Standalone(tmp)
    node = n.node
    r = node.get("/metrics", auth=False)
    check_eq(r.status, 401, "GET /metrics without credentials", r)
    r = node.get("/metrics", {"Authorization": "Bearer chorus_0000_wrong"})
    check_eq(r.status, 401, "GET /metrics with a wrong key", r)
    # Real traffic first, so that labels could pick up what they must not.
    for t in n.tracks[:2]:
        check_eq(node.get(f"/api/v1/tracks/{t['id']}/stream").status, 200, "stream")
    node.get("/api/v1/tracks/ffffffffffff/stream")
    node.get("/no/such/path")
    r = node.get("/metrics")
    check_eq(r.status, 200, "GET /metrics with the admin key", r)
    ct = r.header("content-type", "")
    check(re.match(r"text/plain; *version=0\.0\.4(;|$)", ct), f"Content-Type {ct!r}", r)
    out = promtool(r.body, "standalone, admin key")
    s = Scrape(r.body)
    check_families(s, cluster=False)
    check_histograms(s)
    kid = node.key.split("_")[1]
    check_labels(s, secrets=[t["id"] for t in n.tracks] + [kid, node.key, "test-harness",
                                                             "127.0.0.1"])
    check_eq(s.get("chorus_build_info", version=node.version), 1.0, "chorus_build_info")
    st = s.get("chorus_start_time_seconds")
    check(abs(st - time.time()) < 120, f"chorus_start_time_seconds {st} is not about now")
    check_eq(s.get("chorus_cluster_nodes", state="alive"), 1.0, "a standalone node is alive")
    print(f"# {len(s.types)} families, {len(s.samples)} samples, {len(r.body)} bytes;"
          f" promtool: {out or 'nothing to say'}")
    node.stop()


@test("--metrics-listen: /metrics with no credentials 200, the same families; other paths 404, POST 405; the main listener still wants the key")
def _(tmp):
    n = Standalone(tmp)
    r = http_request(n.mport, "GET", "/metrics")
    check_eq(r.status, 200, "GET /metrics on the metrics listener, no credentials", r)
    ct = r.header("content-type", "")
    check(re.match(r"text/plain; *version=0\.0\.4(;|$)", ct), f"Content-Type {ct!r}", r)
    promtool(r.body, "--metrics-listen")
    s = Scrape(r.body)
    check_families(s, cluster=False)
    main_s = Scrape(n.node.get("/metrics").body)
    check_eq(sorted(s.types.items()), sorted(main_s.types.items()), "families on both listeners")
    check_eq(sorted(s.samples), sorted(main_s.samples), "series on both listeners")
    for path in ("/", "/health", "/api/v1/tracks", "/metrics/", "/metricsx", "/api/v1/node"):
        r = http_request(n.mport, "GET", path, bearer(n.key))
        check_eq(r.status, 404, f"GET {path} on the metrics listener", r)
    r = http_request(n.mport, "POST", "/metrics", {}, b"x")
    check_eq(r.status, 405, "POST /metrics on the metrics listener", r)
    check_eq(n.node.get("/metrics", auth=False).status, 401, "main listener, no credentials")
    check_eq(n.node.get("/api/v1/tracks", auth=False).status, 401, "catalog, no credentials")
    # Scraping here moves nothing on the main listener.
    a = n.figures()
    for _ in range(5):
        n.figures()
    b = n.figures()
    check_eq(fmt_delta(delta(a, b)), "", "main listener's figures after 6 scrapes elsewhere")
    n.node.stop()


@test("http figures: a 404 is route=other 4xx; a stream is route=stream 2xx with its ttfb; bytes exact; durations counted; connections open and accepted")
def _(tmp):
    n = Standalone(tmp)
    port = n.node.port
    # A 404, exactly.
    a = n.settled()
    status, body, nbytes = raw_get(port, "/no/such/path")
    check_eq(status, 404, "GET /no/such/path")
    d = n.wait_delta(a, {K("chorus_http_requests_total", route="other", code="4xx"): 1,
                         K("chorus_http_response_bytes_total", route="other"): nbytes,
                         K("chorus_http_request_duration_seconds_count", route="other"): 1,
                         K("chorus_http_connections_accepted_total"): 1}, "a 404")
    rest = {k: v for k, v in http_moved(d, "other").items()}
    check(not rest, "a 404 moved more than route other's figures:\n  " + fmt_delta(rest))
    print(f"# 404: {nbytes} bytes on the wire, counted "
          f"{d[K('chorus_http_response_bytes_total', route='other')]:g}")
    # A stream, exactly.
    t = n.tracks[0]
    a = n.settled()
    status, body, nbytes = n.stream_raw(t)
    check_eq(status, 200, "a stream")
    check_eq(len(body), t["size_bytes"], "stream body")
    d = n.wait_delta(a, {K("chorus_http_requests_total", route="stream", code="2xx"): 1,
                         K("chorus_http_response_bytes_total", route="stream"): nbytes,
                         K("chorus_http_request_duration_seconds_count", route="stream"): 1,
                         K("chorus_stream_ttfb_seconds_count"): 1,
                         K("chorus_http_connections_accepted_total"): 1}, "a stream")
    others = {k: v for k, v in http_moved(d, "stream").items()
              if not k[0].startswith(("chorus_stream_ttfb", "chorus_cache", "chorus_origin"))}
    check(not others, "a stream moved another route's figures:\n  " + fmt_delta(others))
    ttfb = d.get(K("chorus_stream_ttfb_seconds_sum"), 0)
    dur = d.get(K("chorus_http_request_duration_seconds_sum", route="stream"), 0)
    check(0 < ttfb <= dur + 1e-6, f"ttfb {ttfb} s of a stream whose duration is {dur} s")
    print(f"# stream: {len(body)} body bytes, {nbytes} on the wire, counted "
          f"{d[K('chorus_http_response_bytes_total', route='stream')]:g}; ttfb {ttfb * 1e3:.2f} ms,"
          f" duration {dur * 1e3:.2f} ms")
    # Catalog and the 4xx of an unknown track's stream.
    a = n.figures()
    check_eq(n.node.get("/api/v1/tracks").status, 200, "catalog")
    check_eq(n.node.get("/api/v1/tracks/7fffffffffff/stream").status, 404, "unknown track")
    check_eq(n.node.get("/health", auth=False).status, 200, "health")
    d = n.wait_delta(a, {K("chorus_http_requests_total", route="catalog", code="2xx"): 1,
                         K("chorus_http_requests_total", route="health", code="2xx"): 1,
                         K("chorus_http_request_duration_seconds_count", route="catalog"): 1,
                         K("chorus_http_request_duration_seconds_count", route="health"): 1},
                     "catalog and health")
    fours = {k: v for k, v in d.items() if k[0] == "chorus_http_requests_total"
             and dict(k[1])["code"] == "4xx"}
    check_eq(sum(fours.values()), 1, "one 4xx for the unknown track", fmt_delta(d))
    print(f"# the unknown track's 404 counted as {[dict(k[1]) for k in fours]}")
    # A malformed request is route=other; a refused one (no key) one 4xx.
    a = n.figures()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sk:
        sk.sendall(b"BLAH\r\n\r\n")
        got = sk.recv(4096)
    check(got.startswith(b"HTTP/1.1 400 "), f"a malformed request: {got[:60]!r}")
    n.wait_delta(a, {K("chorus_http_requests_total", route="other", code="4xx"): 1},
                 "a malformed request")
    a = n.figures()
    check_eq(raw_get(port, "/api/v1/tracks")[0], 401, "the catalog without a key")
    d = n.wait_delta(a, {}, "a refused request")
    fours = {dict(k[1])["route"]: v for k, v in d.items()
             if k[0] == "chorus_http_requests_total" and dict(k[1])["code"] == "4xx"}
    check_eq(sum(fours.values()), 1, "4xx answers counted for one 401", fmt_delta(d))
    print(f"# a malformed request counted as route=other 4xx; a 401 on the catalog as"
          f" route={list(fours)[0]} 4xx")
    # Connections: two held open, then closed.
    a = n.figures()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        wait_for("chorus_http_connections 2",
                 lambda: n.figures().get("chorus_http_connections") == 2, 3,
                 context=lambda: n.figures().get("chorus_http_connections"))
    finally:
        for sk in socks:
            sk.close()
    wait_for("chorus_http_connections 0",
             lambda: n.figures().get("chorus_http_connections") == 0, 3,
             context=lambda: n.figures().get("chorus_http_connections"))
    d = delta(a, n.figures())
    check_eq(d, {K("chorus_http_connections_accepted_total"): 2}, "two idle connections moved")
    n.node.stop()


@test("cache figures: a track's first stream misses and fills once (one origin read of its sealed bytes), the second hits")
def _(tmp):
    n = Standalone(tmp)
    for t in n.tracks[:3]:
        a = n.figures()
        status, body, _ = n.stream_raw(t)
        check_eq(status, 200, "first stream")
        sealed = t["size_bytes"] + SEAL_TAG
        d = n.wait_delta(a, {K("chorus_cache_misses_total"): 1, K("chorus_cache_fills_total"): 1,
                             K("chorus_origin_reads_total"): 1,
                             K("chorus_origin_read_bytes_total"): sealed,
                             K("chorus_cache_chunks"): 1,
                             K("chorus_cache_bytes"): t["size_bytes"]}, "first stream")
        check_eq(d.get(K("chorus_cache_hits_total"), 0), 0, "hits on a first stream")
        check_eq(d.get(K("chorus_origin_read_errors_total"), 0), 0, "origin read errors")
        a = n.figures()
        status, body2, _ = n.stream_raw(t)
        check_eq((status, body2 == body), (200, True), "second stream, the same bytes")
        d = n.wait_delta(a, {K("chorus_cache_hits_total"): 1}, "second stream")
        for f in ("misses", "fills"):
            check_eq(d.get(K(f"chorus_cache_{f}_total"), 0), 0, f"cache {f} on a second stream")
        check_eq(d.get(K("chorus_origin_reads_total"), 0), 0, "origin reads on a second stream")
        print(f"# track of {t['size_bytes']} bytes: first stream 1 miss, 1 fill, 1 origin read"
              f" of {sealed} sealed bytes; second stream 1 hit")
    n.node.stop()


@test("cache evictions: with --cache-size 900K, streaming six tracks evicts exactly as the LRU budget says; bytes and chunks gauges follow")
def _(tmp):
    budget = 900 << 10
    n = Standalone(tmp, ["--cache-size", "900K"])
    s = n.figures()
    check_eq(s.get("chorus_cache_budget_bytes"), float(budget), "chorus_cache_budget_bytes")
    lru, evicted = [], 0  # the model: (track id, size), most recent last
    for t in n.tracks:
        a = n.figures()
        status, _, _ = n.stream_raw(t)
        check_eq(status, 200, "stream")
        lru.append((t["id"], t["size_bytes"]))
        ev = 0
        while sum(sz for _, sz in lru) > budget:
            lru.pop(0)
            ev += 1
        evicted += ev
        d = n.wait_delta(a, {K("chorus_cache_fills_total"): 1}, "a fill")
        check_eq(d.get(K("chorus_cache_evictions_total"), 0), ev, f"evictions streaming {t['id']}",
                 fmt_delta(d))
        s = n.figures()
        check_eq(s.get("chorus_cache_bytes"), float(sum(sz for _, sz in lru)), "chorus_cache_bytes")
        check_eq(s.get("chorus_cache_chunks"), float(len(lru)), "chorus_cache_chunks")
    check(evicted >= 2, f"the library evicts only {evicted} chunks under {budget} bytes")
    print(f"# sizes {[t['size_bytes'] for t in n.tracks]} under a budget of {budget}: "
          f"{evicted} evictions, {len(lru)} chunks ({sum(sz for _, sz in lru)} bytes) left")
    n.node.stop()


def play(track, ms=500):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    return {"event_id": uuid.uuid4().hex, "track_id": track["id"],
            "started_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "ms_played": ms}


def post_plays(node, batch):
    r = node.request("POST", "/api/v1/plays", JSON_CT, json.dumps(batch))
    check(r.status in (200, 201), f"POST /api/v1/plays: {r.status}", r)
    return r.json()


@test("plays figures: a batch of 7 moves chorus_plays_accepted_total by 7, the same batch again by 0, a refused one by 0")
def _(tmp):
    n = Standalone(tmp)
    batch = [play(n.tracks[i % len(n.tracks)]) for i in range(7)]
    a = n.figures()
    check_eq(post_plays(n.node, batch), {"accepted": 7, "duplicates": 0}, "the answer")
    n.wait_delta(a, {K("chorus_plays_accepted_total"): 7,
                     K("chorus_http_requests_total", route="plays", code="2xx"): 1}, "7 plays")
    a = n.figures()
    check_eq(post_plays(n.node, batch), {"accepted": 0, "duplicates": 7}, "the batch again")
    d = n.wait_delta(a, {K("chorus_http_requests_total", route="plays", code="2xx"): 1},
                     "the retried batch")
    check_eq(d.get(K("chorus_plays_accepted_total"), 0), 0, "plays accepted by a retried batch")
    a = n.figures()
    bad = [play(n.tracks[0]), dict(play(n.tracks[1]), ms_played=-1)]
    r = n.node.request("POST", "/api/v1/plays", JSON_CT, json.dumps(bad))
    check_eq(r.status, 422, "a batch with a bad play", r)
    d = n.wait_delta(a, {K("chorus_http_requests_total", route="plays", code="4xx"): 1},
                     "the refused batch")
    check_eq(d.get(K("chorus_plays_accepted_total"), 0), 0, "plays accepted by a refused batch")
    print(f"# plays accepted: 7, then 0 (7 duplicates), then 0 (422)")
    n.node.stop()


@test("log and origin error figures: a flipped bit in an origin chunk is one failed origin read and warnings counted as the node's log has them; a clean stream is neither")
def _(tmp):
    n = Standalone(tmp)
    a = n.figures()
    check_eq(n.stream_raw(n.tracks[0])[0], 200, "a clean stream")
    d = n.wait_delta(a, {K("chorus_cache_fills_total"): 1}, "a clean stream")
    check_eq(d.get(K("chorus_log_messages_total", level="warn"), 0), 0, "warnings, clean stream")
    check_eq(d.get(K("chorus_origin_read_errors_total"), 0), 0, "origin errors, clean stream")
    t = n.tracks[1]
    blobs = [p for p in (n.data / "origin" / "c").rglob("*")
             if p.is_file() and p.stat().st_size == t["size_bytes"] + SEAL_TAG]
    check_eq(len(blobs), 1, f"the origin chunk of a track of {t['size_bytes']} bytes")
    with open(blobs[0], "r+b") as f:
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 0x20]))
    seq = n.node.get_json("/api/v1/node/log")["next"]
    a = n.figures()
    status, _, _ = n.stream_raw(t)
    check_eq(status, 503, "a stream of a damaged chunk")
    d = n.wait_delta(a, {K("chorus_origin_reads_total"): 1,
                         K("chorus_origin_read_errors_total"): 1,
                         K("chorus_http_requests_total", route="stream", code="5xx"): 1},
                     "a damaged chunk")
    check_eq(d.get(K("chorus_cache_fills_total"), 0), 0, "fills of a damaged chunk")
    log = n.node.get_json(f"/api/v1/node/log?since={seq}")["entries"]
    check(any("failed verification" in e["message"] for e in log), f"the warning: {log}")
    for level in ("warn", "error"):
        check_eq(d.get(K("chorus_log_messages_total", level=level), 0),
                 sum(e["level"] == level for e in log),
                 f"chorus_log_messages_total{{level={level}}} vs the node's log", log)
    check(d.get(K("chorus_log_messages_total", level="warn"), 0) >= 1, "a warning counted")
    print(f"# damaged origin chunk: 1 failed origin read, {len(log)} warnings logged and counted:"
          f" {[e['message'][:90] for e in log]}")
    n.node.stop()


@test("drain figure: POST /api/v1/node/drain gives chorus_node_drained 1 and /health 503; DELETE gives 0 and 200")
def _(tmp):
    n = Standalone(tmp)
    check_eq(n.figures().get("chorus_node_drained"), 0.0, "chorus_node_drained at start")
    r = n.node.request("POST", "/api/v1/node/drain")
    check_eq((r.status, r.json().get("drained")), (200, True), "drain", r)
    check_eq(n.figures().get("chorus_node_drained"), 1.0, "chorus_node_drained while drained")
    check_eq(n.node.get("/health", auth=False).status, 503, "/health while drained")
    a = n.figures()
    check_eq(n.stream_raw(n.tracks[0])[0], 503, "a new stream while drained")
    n.wait_delta(a, {K("chorus_http_requests_total", route="stream", code="5xx"): 1},
                 "a refused stream")
    r = n.node.request("DELETE", "/api/v1/node/drain")
    check_eq((r.status, r.json().get("drained")), (200, False), "undrain", r)
    check_eq(n.figures().get("chorus_node_drained"), 0.0, "chorus_node_drained after undrain")
    check_eq(n.node.get("/health", auth=False).status, 200, "/health after undrain")
    n.node.stop()


# ---------------------------------------------------------------- a cluster

@test("a two-node cluster on PostgreSQL: promtool clean on both, 2 alive on each, peer reads and serves exact, replication lag present, plays queued while PostgreSQL is down and shipped after")
def _(tmp):
    lib = library()
    with pg.server() as db:
        origin = f"dir:{tmp / 'origin'}"
        ingest_ok(tmp / "ing", lib["dir"], db=db.conninfo, origin=origin)
        nodes = [Node(tmp / name, tmp / "logs", tag=name,
                      args=["--db", db.conninfo, "--origin", origin]) for name in ("a", "b")]
        ids = [nd.get_json("/api/v1/node")["id"] for nd in nodes]

        def figs(nd):
            return scrape(nd.port, nd.auth())[1]

        for nd in nodes:
            wait_for(f"chorus_cluster_nodes{{state=alive}} 2 on {nd.data.name}",
                     lambda nd=nd: figs(nd).get("chorus_cluster_nodes", state="alive") == 2, 10,
                     step=0.1, context=lambda nd=nd: figs(nd).family_samples("chorus_cluster_nodes"))
            _, took = wait_for(f"chorus_replication_lag_seconds on {nd.data.name}",
                               lambda nd=nd: figs(nd).has("chorus_replication_lag_seconds"), 10,
                               step=0.1)
            s = figs(nd)
            lag = s.get("chorus_replication_lag_seconds")
            check(0 <= lag < 10, f"replication lag {lag} s")
            check_eq(s.get("chorus_replication_connected"), 1.0, "chorus_replication_connected")
            r = nd.get("/metrics")
            promtool(r.body, f"cluster node {nd.data.name}")
            s = Scrape(r.body)
            check_families(s, cluster=True)
            check_histograms(s)
            check_labels(s, secrets=ids + ["127.0.0.1", nd.key])
            print(f"# node {nd.data.name}: 2 alive, lag {lag:g} s (present after {took:.2f} s)")

        # Each track first on the node that ranks first for its chunk,
        # then on the other, which asks the first (a peer read), which
        # serves it from its cache.
        tracks = nodes[0].get_json("/api/v1/tracks?limit=100")["tracks"]
        blob_of = {r[0]: r[1] for r in db.query("SELECT id, blob FROM tracks")}
        asks = [0, 0]
        for t in tracks:
            blob = blob_of[str(int(t["id"], 16))]
            first = max((0, 1), key=lambda k: score(ids[k], blob, 0))
            second = 1 - first
            sealed = t["size_bytes"] + SEAL_TAG
            b0 = [figs(nd) for nd in nodes]
            check_eq(nodes[first].get(f"/api/v1/tracks/{t['id']}/stream").status, 200,
                     "stream on the first-ranked node")
            r = nodes[second].get(f"/api/v1/tracks/{t['id']}/stream")
            check_eq(r.status, 200, "stream on the other node")
            check_eq(len(r.body), t["size_bytes"], "the other node's body")
            want_first = {"chorus_origin_reads_total": 1, "chorus_origin_read_bytes_total": sealed,
                          "chorus_peer_served_total": 1, "chorus_peer_served_bytes_total": sealed,
                          "chorus_peer_reads_total": 0, "chorus_cache_fills_total": 1,
                          "chorus_cache_misses_total": 1, "chorus_cache_hits_total": 1}
            want_second = {"chorus_origin_reads_total": 0, "chorus_peer_reads_total": 1,
                           "chorus_peer_read_bytes_total": sealed, "chorus_peer_served_total": 0,
                           "chorus_cache_fills_total": 1, "chorus_cache_misses_total": 1}
            for k, want in ((first, want_first), (second, want_second)):
                wait_delta(lambda k=k: figs(nodes[k]), b0[k], {K(n): v for n, v in want.items()},
                           f"node {nodes[k].data.name} (track {t['id']},"
                           f" {'first' if k == first else 'second'})")
            asks[second] += 1
        print(f"# peer reads: node a asked b {asks[0]} times, b asked a {asks[1]} times;"
              f" each exact in chunks and sealed bytes")

        # Plays: shipped at once with PostgreSQL up; queued while it is down.
        a = nodes[0]
        b0 = figs(a)
        check_eq(post_plays(a, [play(t) for t in tracks[:5]]), {"accepted": 5, "duplicates": 0},
                 "5 plays")
        wait_for("5 plays shipped",
                 lambda: delta(b0, figs(a)).get(K("chorus_plays_shipped_total"), 0) >= 5, 10,
                 step=0.05, context=lambda: fmt_delta(delta(b0, figs(a))))
        s = figs(a)
        d = delta(b0, s)
        check_eq(d.get(K("chorus_plays_accepted_total"), 0), 5, "plays accepted")
        check_eq(d.get(K("chorus_plays_shipped_total"), 0), 5, "plays shipped")
        check_eq(s.get("chorus_plays_queued"), 0.0, "plays queued after shipping")
        check_eq(int(db.value("SELECT count(*) FROM plays")), 5, "plays in PostgreSQL")
        seq = a.get_json("/api/v1/node/log")["next"]
        b1 = figs(a)
        db.stop()
        try:
            check_eq(post_plays(a, [play(t) for t in tracks[:3]]), {"accepted": 3, "duplicates": 0},
                     "3 plays with PostgreSQL down")
            wait_for("chorus_plays_queued 3", lambda: figs(a).get("chorus_plays_queued") == 3, 5,
                     step=0.05, context=lambda: figs(a).get("chorus_plays_queued"))
            _, took = wait_for("chorus_replication_connected 0",
                               lambda: figs(a).get("chorus_replication_connected") == 0, 10,
                               step=0.1)
            # The outage is logged (the replica's "retrying", the shipper's
            # "plays stay queued"), and counted as the node's log has it.
            warn = K("chorus_log_messages_total", level="warn")
            _, wtook = wait_for("a warning with PostgreSQL down",
                                lambda: delta(b1, figs(a)).get(warn, 0) >= 1, 10, step=0.1)
            lo = delta(b1, figs(a))
            log = a.get_json(f"/api/v1/node/log?since={seq}")["entries"]
            d = delta(b1, figs(a))
            for level in ("warn", "error"):
                n_log = sum(e["level"] == level for e in log)
                k = K("chorus_log_messages_total", level=level)
                check(lo.get(k, 0) <= n_log <= d.get(k, 0),
                      f"{level}: {n_log} in the node's log, counted {lo.get(k, 0):g} before"
                      f" reading it and {d.get(k, 0):g} after", log)
            check_eq(d.get(K("chorus_plays_shipped_total"), 0), 0, "shipped with PostgreSQL down")
            check_eq(d.get(K("chorus_plays_accepted_total"), 0), 3, "accepted with it down")
            print(f"# PostgreSQL down: 3 plays queued, replication_connected 0 after {took:.2f} s,"
                  f" a warning after {wtook:.2f} s; log: {[e['message'][:70] for e in log]}")
        finally:
            db.start()
        _, took = wait_for("3 more plays shipped",
                           lambda: delta(b1, figs(a)).get(K("chorus_plays_shipped_total"), 0) >= 3,
                           20, step=0.1, context=lambda: fmt_delta(delta(b1, figs(a))))
        s = figs(a)
        check_eq(delta(b1, s).get(K("chorus_plays_shipped_total"), 0), 3, "plays shipped")
        check_eq(s.get("chorus_plays_queued"), 0.0, "plays queued once shipped")
        check_eq(int(db.value("SELECT count(*) FROM plays")), 8, "plays in PostgreSQL")
        wait_for("chorus_replication_connected 1 again",
                 lambda: figs(a).get("chorus_replication_connected") == 1, 10, step=0.1)
        print(f"# PostgreSQL back: 3 plays shipped after {took:.2f} s, queue 0")
        for nd in nodes:
            nd.stop()


# ---------------------------------------------------------------- Prometheus

def prom_query(port, q):
    import urllib.parse
    r = http_request(port, "GET", "/api/v1/query?query=" + urllib.parse.quote(q))
    if r.status != 200:
        return None
    return r.json()["data"]["result"]


@test("a real Prometheus scrapes one node through --metrics-listen and one with a bearer token: up == 1 for both, chorus_http_requests_total has series")
def _(tmp):
    if not os.access(PROMETHEUS, os.X_OK):
        fail(f"{PROMETHEUS} missing (scripts/deps.sh test installs prometheus)")
    n1 = Standalone(tmp / "one")
    data2 = tmp / "two"
    data2.mkdir()
    n2 = Node(fresh_data(data2), tmp / "logs", tag="two")
    keyfile = tmp / "key"
    keyfile.write_text(n2.key + "\n")
    pport = free_port()
    (tmp / "prometheus.yml").write_text(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: listener
    static_configs:
      - targets: ['127.0.0.1:{n1.mport}']
  - job_name: bearer
    authorization:
      type: Bearer
      credentials_file: {keyfile}
    static_configs:
      - targets: ['127.0.0.1:{n2.port}']
""")
    log = open(tmp / "prometheus.log", "wb")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{pport}"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    try:
        def ups():
            if proc.poll() is not None:
                fail("prometheus exited", (tmp / "prometheus.log").read_text()[-3000:])
            try:
                res = prom_query(pport, "up")
            except OSError:
                return None
            got = {r["metric"]["job"]: r["value"][1] for r in res or []}
            return got if got == {"listener": "1", "bearer": "1"} else None

        started = time.monotonic()
        _, took = wait_for("up == 1 for both targets", ups, 20, step=0.2,
                           context=lambda: ((prom_query(pport, "up") if proc.poll() is None
                                             else None),
                                            (tmp / "prometheus.log").read_text()[-3000:]))
        res, _ = wait_for("chorus_http_requests_total series of both jobs",
                          lambda: (lambda r: r if r and {x["metric"]["job"] for x in r} ==
                                   {"listener", "bearer"} else None)(
                              prom_query(pport, "chorus_http_requests_total")), 10, step=0.2)
        # The bearer job's scrapes are /metrics requests on n2's main
        # listener, admitted: route="metrics" 2xx grows there, 4xx does not.
        q_ok = 'chorus_http_requests_total{job="bearer",route="metrics",code="2xx"} >= 1'
        ok, _ = wait_for("an admitted scrape counted on the bearer job's node",
                         lambda: prom_query(pport, q_ok), 10, step=0.2)
        refused = prom_query(pport, 'chorus_http_requests_total{job="bearer",route="metrics",code="4xx"}')
        check(ok and float(ok[0]["value"][1]) >= 1, f"admitted scrapes: {ok}")
        check_eq(float(refused[0]["value"][1]), 0.0, "refused scrapes of the bearer job")
        targets = json.loads(http_request(pport, "GET", "/api/v1/targets").body)
        health = {t["labels"]["job"]: (t["health"], t["lastError"])
                  for t in targets["data"]["activeTargets"]}
        check_eq(health, {"listener": ("up", ""), "bearer": ("up", "")}, "targets' health")
        print(f"# prometheus: up == 1 for both after {took:.2f} s"
              f" ({time.monotonic() - started:.1f} s in all); {len(res)} series of"
              f" chorus_http_requests_total; bearer scrapes admitted {ok[0]['value'][1]}")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    n1.node.stop()
    n2.stop()


if __name__ == "__main__":
    main()
