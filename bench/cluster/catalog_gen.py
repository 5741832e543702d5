#!/usr/bin/python3
"""The synthetic catalog of bench/search_gen.py, as CSV files for PostgreSQL.

    bench/cluster/catalog_gen.py --out DIR [--tracks N] [--artists N] [--albums N]
                                 [--seed 1] [--words /usr/share/dict/american-english]

Writes DIR/artists.csv, DIR/albums.csv and DIR/tracks.csv, ready for
`\\copy artists (id, name, name_key) FROM ... CSV`, `\\copy albums (id, title,
title_key, artist_id, year) ...` and `\\copy tracks (<the 28 catalog columns
of src/sql/pg.c, no seq>) ...`. The rows are those search_gen.py writes
into SQLite with the same arguments and seed (its Names class, id
derivation and column values, drawn in the same order): names of 1-4
dictionary words, mostly Title Case, about 5% accented and 3% Japanese,
Cyrillic or Greek; every NOT NULL column filled (codec, sizes, 1 MiB chunks,
a 32-byte key as bytea hex, unique blob and content hash). Default artists
and albums: tracks / 10 and tracks * 12 / 100, as bench/search.sh.
"""
import argparse
import csv
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from search_gen import CODECS, GENRES, Names, album_id, artist_id, name_key  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--tracks", type=int, default=100000)
    ap.add_argument("--artists", type=int)
    ap.add_argument("--albums", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--words", default="/usr/share/dict/american-english")
    a = ap.parse_args()
    n_tracks = a.tracks
    n_artists = a.artists or max(1, n_tracks // 10)
    n_albums = a.albums or max(n_artists, n_tracks * 12 // 100)
    if n_albums < n_artists or n_tracks < n_albums:
        sys.exit("catalog_gen: need artists <= albums <= tracks")
    with open(a.words, encoding="utf-8") as f:
        words = sorted({w.strip() for w in f if w.strip().isascii() and w.strip().isalpha()})
    rng = random.Random(a.seed)
    names = Names(rng, words)
    t0 = time.monotonic()
    os.makedirs(a.out, exist_ok=True)

    # As search_gen.generate, draw for draw.
    artists = []
    seen = set()
    while len(artists) < n_artists:
        name, _ = names.make(1, 3, "artist")
        k = name_key(name)
        if k in seen:
            continue
        seen.add(k)
        artists.append((artist_id(k), name, k))
    albums = []
    seen = set()
    owners = list(range(n_artists)) + [rng.randrange(n_artists) for _ in range(n_albums - n_artists)]
    for ai in owners:
        aid = artists[ai][0]
        while True:
            title, _ = names.make(1, 4, "album")
            k = name_key(title)
            if (aid, k) not in seen:
                break
        seen.add((aid, k))
        albums.append((album_id(aid, k), title, k, aid, rng.randint(1960, 2024)))
    per = [1] * len(albums)
    for _ in range(n_tracks - len(albums)):
        per[rng.randrange(len(albums))] += 1

    with open(os.path.join(a.out, "artists.csv"), "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(artists)
    with open(os.path.join(a.out, "albums.csv"), "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(albums)

    now = int(time.time())
    ids = set()
    n = 0
    with open(os.path.join(a.out, "tracks.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        for ai, alb in enumerate(albums):
            genre = rng.choice(GENRES)
            codec, mime, br = rng.choice(CODECS)
            for tn in range(1, per[ai] + 1):
                title, _ = names.make(1, 4, "track")
                while True:
                    tid = rng.getrandbits(63)
                    if tid and tid not in ids:
                        break
                ids.add(tid)
                dur = rng.randint(60000, 540000)
                size = dur * br // 8000 + rng.randint(1000, 200000)
                created = now - rng.randint(0, 3 * 365 * 86400)
                # NULL is an unquoted empty field in PostgreSQL's CSV.
                w.writerow((tid, title, name_key(title), alb[3], alb[0], tn, 1, alb[4],
                            genre or "", "", "", dur, codec, mime, br, 44100, 2, size, 1 << 20,
                            (size + (1 << 20) - 1) >> 20, "\\x" + rng.randbytes(32).hex(),
                            "%032x" % rng.getrandbits(128), "%064x" % rng.getrandbits(256),
                            "", "", "", created, created))
                n += 1
    print("gen: %d artists, %d albums, %d tracks in %.1f s -> %s" %
          (len(artists), len(albums), n, time.monotonic() - t0, a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
