#!/usr/bin/python3
"""Answer quality for bench/search.sh, on a sample of the query set.

    bench/search_recall.py --queries Q.tsv --every 10 --limit 10
        --chorus 127.0.0.1:PORT --psql "psql -X -At -h 127.0.0.1 -p P -U postgres -d bench"
        [--key KEY]

For every EVERY-th query (line numbers = ids of PostgreSQL's bench_queries),
asks chorus (GET /api/v1/search) and PostgreSQL (search(q, limit)) and
prints, per tier, how often the name being typed (the target) is among the
answer's artist names, album titles and track titles ("found"), and how
often the answer is empty. Names are compared as given (the generator's
names are unique enough; a same-named other entity counts as found).
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import urllib.parse


def names(ans):
    out = set()
    for a in ans.get("artists", []):
        out.add(a.get("name"))
    for a in ans.get("albums", []):
        out.add(a.get("title"))
    for t in ans.get("tracks", []):
        out.add(t.get("title"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", required=True)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--chorus", required=True)
    ap.add_argument("--psql", required=True)
    ap.add_argument("--key", default=os.environ.get("CHORUS_KEY"),
                    help="an admin API key (default: $CHORUS_KEY)")
    a = ap.parse_args()

    sample = []
    with open(a.queries, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if i % a.every == 0:
                tier, q, target = line.rstrip("\n").split("\t")
                sample.append((i, tier, q, target))

    host, port = a.chorus.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    ch = {}
    for i, tier, q, target in sample:
        conn.request("GET", "/api/v1/search?q=%s&limit=%d&_=recall" % (urllib.parse.quote(q), a.limit),
                     headers={"Authorization": "Bearer %s" % a.key} if a.key else {})
        r = conn.getresponse()
        body = r.read()
        if r.status in (401, 403):
            sys.exit("search_recall: chorus answered %d: %s" % (r.status, body[:200]))
        ch[i] = json.loads(body) if r.status == 200 else None

    ids = ",".join(str(s[0]) for s in sample)
    sql = ("SELECT id || E'\\t' || search(q, %d)::text FROM bench_queries WHERE id IN (%s) ORDER BY id"
           % (a.limit, ids))
    out = subprocess.run(a.psql.split() + ["-c", sql], capture_output=True, text=True, check=True)
    pg = {}
    for line in out.stdout.splitlines():
        k, v = line.split("\t", 1)
        pg[int(k)] = json.loads(v)

    tiers = []
    for s in sample:
        if s[1] not in tiers:
            tiers.append(s[1])
    print("%-9s %6s  %14s %14s  %14s %14s" % ("tier", "n", "chorus found", "pg found",
                                               "chorus empty", "pg empty"))
    tot = [0, 0, 0, 0, 0, 0]
    for t in tiers:
        rows = [s for s in sample if s[1] == t]
        c = [0] * 6
        for i, _, q, target in rows:
            c[0] += 1
            if ch[i] is None:
                c[4] += 1
            else:
                c[1] += target in names(ch[i])
                c[3] += not names(ch[i])
            c[2] += target in names(pg[i])
            c[5] += not names(pg[i])
        n = c[0]
        print("%-9s %6d  %13.0f%% %13.0f%%  %13.0f%% %13.0f%%" % (
            t, n, 100 * c[1] / n, 100 * c[2] / n, 100 * c[3] / n, 100 * c[5] / n))
        for k in range(6):
            tot[k] += c[k]
    n = tot[0]
    print("%-9s %6d  %13.0f%% %13.0f%%  %13.0f%% %13.0f%%" % (
        "all", n, 100 * tot[1] / n, 100 * tot[2] / n, 100 * tot[3] / n, 100 * tot[5] / n))
    if tot[4]:
        print("chorus: %d queries answered with an error" % tot[4])


if __name__ == "__main__":
    main()
