#!/usr/bin/python3
"""Synthetic catalog and as-you-type query set for bench/search.sh.

    bench/search_gen.py --db DATA/catalog.db --queries OUT.tsv
                        [--tracks 1000000] [--artists 100000] [--albums 120000]
                        [--nqueries 10000] [--seed 1] [--words /usr/share/dict/american-english]

The catalog must already exist (made by `chorus` itself, so the schema is
the binary's current version) and be empty. Rows go straight into
artists, albums and tracks with Python's sqlite3, in one transaction:

- artist and album ids derived as src/catalog/model.c does
  (catalog_artist_id(name_key), catalog_album_id(artist_id, title_key):
  the first 63 bits of SHA-256), track ids random 63-bit; name keys are
  trimmed and lower-cased like text_name_key;
- names of 1-4 words from the word list (alphabetic words only), mixed
  case; about 5% with accented Latin letters (é ó ü ñ ø ...) and 3%
  non-Latin (Japanese, Cyrillic, Greek);
- every NOT NULL column filled with plausible values (codec, mime type,
  size, 1 MiB chunks, a 32-byte key, a unique blob name and content hash).

Triggers on the catalog tables (search index) fire as for any insert, but
the typo terms table is filled from C (ingest, migration): --as-v1 drops
the search tables and triggers and sets the schema back to version 1, so
that the next chorus to open the catalog indexes every row (its v1 -> v2
migration), which bench/search.sh times. The insert time is printed as
`gen: insert_s=...` on stderr.

The query set is a TSV file, `tier<TAB>query<TAB>target`, one query a line,
as users type them: every prefix of a target name's first word, then of
its second word; a typo in a 5+ letter word; accented names typed without
accents; non-Latin names. Tiers: p1 (one character), prefix (one word,
2+ characters), two (two words), typo, accent (typed without accents),
nonlatin. The file is sorted by tier (the load scripts pick a tier by a
line range) and `OUT.tsv.tiers` lists `tier first last` (1-based lines).
"""
import argparse
import hashlib
import os
import random
import sqlite3
import sys
import time
import unicodedata


def hash63(s):
    v = int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big") & (2**63 - 1)
    return v or 1


def artist_id(name_key):
    return hash63("artist\n" + name_key)


def album_id(aid, title_key):
    return hash63("album\n%d\n%s" % (aid, title_key))


def name_key(s):
    # text_name_key: trimmed, lower-cased (towlower in C.UTF-8).
    return s.strip().lower()


ACCENTS = {
    "a": "áàâäåã", "e": "éèêë", "i": "íìîï", "o": "óòôöøõ", "u": "úùûü",
    "n": "ñ", "c": "ç", "y": "ýÿ", "s": "ś", "z": "ž",
}

# Lower-case Cyrillic and Greek transliterations of Latin letters; the
# names keep their capital first letter through str.capitalize().
CYR = dict(zip("abvgdezijklmnoprstufhcy", "абвгдезийклмнопрстуфхцы"))
CYR.update({"w": "в", "x": "кс", "q": "к"})
GRK = dict(zip("abgdezhiklmnxoprstufcyw", "αβγδεζηικλμνξοπρστυφχψω"))
GRK.update({"v": "β", "j": "ι", "q": "κ"})
KATA = list("アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
            "ガギグゲゴザジズゼゾダデドバビブベボパピプペポ")
HIRA = list("あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわん")
KANJI = list("東京大阪花月星空海山川風雨雪光夜夢愛心恋歌声音色青赤白黒春夏秋冬桜森島鳥道時人生命未来")


def strip_accents(s):
    # What a user types for an accented name. ø has no decomposition.
    s = s.replace("ø", "o").replace("Ø", "O")
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


class Names:
    def __init__(self, rng, words):
        self.rng = rng
        self.words = words
        # Names use common-looking words more: short lower-case dictionary
        # words most of the time, any word (proper nouns too) otherwise.
        self.common = [w for w in words if w.islower() and 3 <= len(w) <= 8]

    def word(self):
        r = self.rng
        w = r.choice(self.common) if r.random() < 0.75 else r.choice(self.words)
        return w

    def case(self, ws):
        r = self.rng.random()
        if r < 0.80:
            return [w[:1].upper() + w[1:] for w in ws]
        if r < 0.90:
            return [w.lower() for w in ws]
        if r < 0.95:
            return [w.upper() for w in ws]
        return [w[:1].upper() + w[1:] if i == 0 else w.lower() for i, w in enumerate(ws)]

    def accent(self, ws):
        r = self.rng
        out = []
        done = False
        for w in ws:
            chars = list(w)
            idx = [i for i, c in enumerate(chars) if c.lower() in ACCENTS]
            if idx and (not done or r.random() < 0.3):
                i = r.choice(idx)
                a = r.choice(ACCENTS[chars[i].lower()])
                chars[i] = a.upper() if chars[i].isupper() else a
                done = True
            out.append("".join(chars))
        return out if done else None

    def nonlatin(self, n):
        r = self.rng
        kind = r.random()
        if kind < 0.4:  # Japanese: one or two runs of kana/kanji
            out = []
            for _ in range(min(n, 2)):
                k = r.random()
                if k < 0.4:
                    out.append("".join(r.choice(KATA) for _ in range(r.randint(2, 6))))
                elif k < 0.7:
                    out.append("".join(r.choice(HIRA) for _ in range(r.randint(2, 5))))
                else:
                    out.append("".join(r.choice(KANJI) for _ in range(r.randint(1, 3))))
            return out
        table = CYR if kind < 0.75 else GRK
        ws = []
        for _ in range(n):
            w = r.choice(self.common).lower()
            t = "".join(table.get(c, "") for c in w)
            if len(t) >= 2:
                ws.append(t.capitalize())
        return ws or None

    def make(self, nmin, nmax, kind):
        """(name, flavour) with flavour in latin/accent/nonlatin."""
        r = self.rng
        n = r.choice([w for w in range(nmin, nmax + 1) for _ in range(nmax + 1 - w)])
        x = r.random()
        if x < 0.03:
            ws = self.nonlatin(n)
            if ws:
                return " ".join(ws), "nonlatin"
        ws = [self.word() for _ in range(n)]
        if kind == "artist" and n >= 2 and r.random() < 0.12:
            ws = ["The"] + ws[1:]
        ws = self.case(ws)
        if x >= 0.03 and x < 0.08:
            a = self.accent(ws)
            if a:
                return " ".join(a), "accent"
        name = " ".join(ws)
        if kind == "track" and r.random() < 0.04:
            name += r.choice([" (Remix)", " (Live)", " (Acoustic)", " - Remastered"])
        return name, "latin"


CODECS = [("mp3", "audio/mpeg", 320000), ("flac", "audio/flac", 900000),
          ("vorbis", "audio/ogg", 192000), ("opus", "audio/ogg", 160000),
          ("aac", "audio/mp4", 256000)]
GENRES = ["Rock", "Pop", "Jazz", "Electronic", "Hip-Hop", "Classical", "Folk", "Metal",
          "Soul", "Blues", "Reggae", "Country", "Ambient", "Punk", None]


def generate(db_path, n_artists, n_albums, n_tracks, rng, words, as_v1):
    names = Names(rng, words)
    t0 = time.monotonic()
    artists = []  # (id, name, key, flavour)
    seen = set()
    while len(artists) < n_artists:
        name, fl = names.make(1, 3, "artist")
        k = name_key(name)
        if k in seen:
            continue
        seen.add(k)
        artists.append((artist_id(k), name, k, fl))
    albums = []  # (id, title, key, artist_id, year, flavour)
    seen = set()
    owners = list(range(n_artists)) + [rng.randrange(n_artists) for _ in range(n_albums - n_artists)]
    for ai in owners:
        aid = artists[ai][0]
        while True:
            title, fl = names.make(1, 4, "album")
            k = name_key(title)
            if (aid, k) not in seen:
                break
        seen.add((aid, k))
        albums.append((album_id(aid, k), title, k, aid, rng.randint(1960, 2024), fl))
    # Tracks per album: at least one, the rest spread at random.
    per = [1] * len(albums)
    for _ in range(n_tracks - len(albums)):
        per[rng.randrange(len(albums))] += 1
    gen_s = time.monotonic() - t0

    db = sqlite3.connect(db_path, isolation_level=None)
    if as_v1:
        # A catalog at schema version 1 is its six tables alone; every
        # later version adds tables (2: the search_* tables and triggers,
        # 3: replica, 4: principals). Without them the next chorus to open
        # it migrates from version 1 and indexes every row for search
        # (search_schema_fill). Whatever a version after 1 added goes.
        v1 = ("artists", "albums", "covers", "tracks", "pending", "garbage")
        v = db.execute("PRAGMA user_version").fetchone()[0]
        if v < 2:
            sys.exit("search_gen: --as-v1 needs a catalog made by chorus (version >= 2), not %d" % v)
        db.execute("BEGIN")
        later = [n for (n,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
            " AND name NOT LIKE 'search%'").fetchall() if n not in v1]
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                  " AND name NOT LIKE 'search%'").fetchall():
            db.execute('DROP TRIGGER "%s"' % name)
        for name in later:
            db.execute('DROP TABLE "%s"' % name)
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                  " AND name LIKE 'search%'").fetchall():
            db.execute('DROP TRIGGER "%s"' % name)
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND"
                                  " name IN ('search_artists', 'search_albums',"
                                  " 'search_tracks', 'search_terms')").fetchall():
            db.execute('DROP TABLE "%s"' % name)
        left = db.execute("SELECT group_concat(name) FROM sqlite_master"
                          " WHERE name LIKE 'search%'").fetchone()[0]
        if left:
            sys.exit("search_gen: --as-v1: left behind: %s" % left)
        db.execute("PRAGMA user_version = 1")
        db.execute("COMMIT")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    n = db.execute("SELECT (SELECT count(*) FROM artists)+(SELECT count(*) FROM tracks)").fetchone()[0]
    if n:
        sys.exit("search_gen: %s is not empty" % db_path)
    t1 = time.monotonic()
    db.execute("BEGIN")
    db.executemany("INSERT INTO artists (id, name, name_key) VALUES (?,?,?)",
                   ((a[0], a[1], a[2]) for a in artists))
    db.executemany("INSERT INTO albums (id, title, title_key, artist_id, year) VALUES (?,?,?,?,?)",
                   (a[:5] for a in albums))
    now = int(time.time())
    tracks = []  # (title, flavour) kept for the query set
    ids = set()

    def track_rows():
        for ai, alb in enumerate(albums):
            genre = rng.choice(GENRES)
            codec, mime, br = rng.choice(CODECS)
            for tn in range(1, per[ai] + 1):
                title, fl = names.make(1, 4, "track")
                tracks.append((title, fl))
                while True:
                    tid = rng.getrandbits(63)
                    if tid and tid not in ids:
                        break
                ids.add(tid)
                dur = rng.randint(60000, 540000)
                size = dur * br // 8000 + rng.randint(1000, 200000)
                created = now - rng.randint(0, 3 * 365 * 86400)
                yield (tid, title, name_key(title), alb[3], alb[0], tn, 1, alb[4], genre,
                       None, None, dur, codec, mime, br, 44100, 2, size, 1 << 20,
                       (size + (1 << 20) - 1) >> 20, rng.randbytes(32),
                       "%032x" % rng.getrandbits(128), "%064x" % rng.getrandbits(256),
                       created, created)

    db.executemany(
        "INSERT INTO tracks (id, title, title_key, artist_id, album_id, track_number,"
        " disc_number, year, genre, isrc, label, duration_ms, codec, mime_type, bitrate,"
        " sample_rate, channels, size, chunk_size, chunk_count, key, blob, content_hash,"
        " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        track_rows())
    db.execute("COMMIT")
    insert_s = time.monotonic() - t1
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print("gen: %d artists, %d albums, %d tracks; names %.1f s, insert_s=%.1f" %
          (len(artists), len(albums), len(tracks), gen_s, insert_s), file=sys.stderr)
    return artists, albums, tracks


def typo(rng, w):
    """One edit in a word of 5+ letters, away from its first letter."""
    i = rng.randrange(1, len(w))
    k = rng.random()
    letters = "abcdefghijklmnopqrstuvwxyz"
    if k < 0.3 and i < len(w) - 1:
        return w[:i] + w[i + 1] + w[i] + w[i + 2:]  # transposition
    if k < 0.55:
        return w[:i] + w[i + 1:]  # deletion
    if k < 0.8:
        return w[:i] + rng.choice(letters) + w[i + 1:]  # substitution
    return w[:i] + rng.choice(letters) + w[i:]  # insertion


def typed_prefixes(ws, rng, tier_single, tier_two):
    """As typed: every prefix of the first word, then of the second word up
    to a point where the user would have found it."""
    out = []
    first = ws[0]
    for i in range(1, len(first) + 1):
        out.append((("p1" if i == 1 else tier_single), first[:i]))
    if len(ws) > 1:
        second = ws[1]
        stop = rng.randint(min(2, len(second)), len(second))
        for i in range(1, stop + 1):
            out.append((tier_two, first + " " + second[:i]))
    return out


def queries(artists, albums, tracks, n, rng):
    pool = ([(a[1], a[3]) for a in artists] + [(a[1], a[5]) for a in albums] +
            [(t[0], t[1]) for t in tracks])
    by_fl = {"latin": [], "accent": [], "nonlatin": []}
    for name, fl in pool:
        by_fl[fl].append(name)
    out = []
    # Share of queries by kind; the typo ones come from Latin names.
    want = {"plain": 0.70, "typo": 0.10, "accent": 0.10, "nonlatin": 0.10}
    got = {k: 0 for k in want}
    while len(out) < n:
        kind = min(want, key=lambda k: got[k] / n - want[k])
        if kind == "nonlatin":
            name = rng.choice(by_fl["nonlatin"])
            ws = name.split()
            q = [("nonlatin", s) for _, s in typed_prefixes(ws, rng, "", "")]
        elif kind == "accent":
            name = rng.choice(by_fl["accent"])
            plain = strip_accents(name)
            ws = plain.split()
            # Typed without accents: the prefixes that reach an accented
            # letter (the others are ordinary Latin prefixes).
            q = [("accent", s) for _, s in typed_prefixes(plain.split(), rng, "", "")
                 if name[:len(s)] != s]
        elif kind == "typo":
            name = rng.choice(by_fl["latin"])
            ws = name.split()
            long = [i for i, w in enumerate(ws[:2]) if len(w) >= 5 and w.isalpha()]
            if not long:
                continue
            i = rng.choice(long)
            bad = typo(rng, ws[i])
            head = " ".join(ws[:i])
            d = next((j for j in range(min(len(bad), len(ws[i]))) if bad[j] != ws[i][j]),
                     min(len(bad), len(ws[i])))
            # The word typed with the mistake, from the letter that is wrong
            # (and at least 5 letters) to its end.
            q = [("typo", (head + " " + bad[:j]).strip())
                 for j in range(max(5, d + 1), len(bad) + 1)]
        else:
            name = rng.choice(by_fl["latin"])
            q = typed_prefixes(name.split(), rng, "prefix", "two")
        # Most people type in lower case.
        low = rng.random() < 0.85
        q = [(t, s.lower() if low else s, name) for t, s in q if s.strip()]
        out.extend(q)
        got[kind] += len(q)
    return out[:n]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--artists", type=int, default=100000)
    ap.add_argument("--albums", type=int, default=120000)
    ap.add_argument("--tracks", type=int, default=1000000)
    ap.add_argument("--nqueries", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--words", default="/usr/share/dict/american-english")
    ap.add_argument("--as-v1", action="store_true",
                    help="drop the search tables and triggers first (schema v2 -> v1), so"
                    " the next chorus to open the catalog indexes it all, timed")
    a = ap.parse_args()
    if a.albums < a.artists or a.tracks < a.albums:
        sys.exit("search_gen: need artists <= albums <= tracks")
    with open(a.words, encoding="utf-8") as f:
        words = sorted({w.strip() for w in f if w.strip().isascii() and w.strip().isalpha()})
    rng = random.Random(a.seed)
    artists, albums, tracks = generate(a.db, a.artists, a.albums, a.tracks, rng, words, a.as_v1)
    qs = queries(artists, albums, tracks, a.nqueries, rng)
    order = ["p1", "prefix", "two", "typo", "accent", "nonlatin"]
    qs.sort(key=lambda x: order.index(x[0]))
    tmp = a.queries + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for t, s, name in qs:
            f.write("%s\t%s\t%s\n" % (t, s, name))
    os.replace(tmp, a.queries)
    with open(a.queries + ".tiers", "w") as f:
        line = 1
        for t in order:
            c = sum(1 for x in qs if x[0] == t)
            if c:
                f.write("%s %d %d\n" % (t, line, line + c - 1))
            line += c
    fl = {k: sum(1 for x in artists if x[3] == k) for k in ("accent", "nonlatin")}
    print("gen: %d queries (%d distinct), tiers %s; artists accented %d, non-Latin %d" %
          (len(qs), len({x[1] for x in qs}),
           " ".join("%s=%d" % (t, sum(1 for x in qs if x[0] == t)) for t in order),
           fl["accent"], fl["nonlatin"]), file=sys.stderr)


if __name__ == "__main__":
    main()
