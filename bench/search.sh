#!/usr/bin/env bash
# Search as you type: chorus's GET /api/v1/search against PostgreSQL 15
# full-text search on the same data, in the same run.
#
#   bench/search.sh [--keep-data] [--tracks N] [--queries N] [--conns N]
#                   [--seconds S] [--tier-seconds S] [--dir DIR]
#
# 1. Data. A fresh chorus data directory (the schema made by the binary
#    itself), filled by bench/search_gen.py with a synthetic catalog:
#    1,000,000 tracks, 100,000 artists, 120,000 albums, names from Debian's
#    wamerican word list, about 5% accented and 3% Japanese/Cyrillic/Greek;
#    and a query set of 10,000 prefixes as people type them (tiers p1,
#    prefix, two, typo, accent, nonlatin). The rows go in at schema
#    version 1 (search_gen.py --as-v1), so `chorus serve`'s v1 -> v2
#    migration builds the whole search index (FTS5 tables and the typo
#    terms): timed from start to listening, sized with dbstat.
# 2. PostgreSQL 15 (Debian's), a throwaway cluster under /tmp, loaded with
#    the same artists, albums and tracks (COPY of a CSV export of the SQLite
#    file). Index: tsvector (`simple` + unaccent) + GIN per list (tracks:
#    title, artist and album; albums: title and artist; artists: name),
#    prefix queries (`'word':*`), typos through a pg_trgm GIN index over the
#    table of distinct words (ts_stat), the pattern of PostgreSQL's manual.
#    The same answer shape as chorus: top-N artists, albums and tracks as
#    JSON objects with the same fields. Build time and size reported.
# 3. Load: the whole query set, queries picked at random, closed loop with
#    CONNS connections (default 16) for SECONDS (default 30) each: wrk (one
#    thread, bench/search.lua) against chorus's HTTP API, pgbench (one
#    thread, -M prepared) against a PL/pgSQL function. Then each tier on its
#    own for TIER_SECONDS (default 5). chorus's requests carry an admin API
#    key (`chorus key create`). The machine's 2 cores are shared by
#    server and client on both sides. Also reported: server CPU per query
#    (from /proc), and how often the target name is in the answer (recall,
#    on a sample).
#
# The last stdout line:
#
#   search_vs_pg ratio=R chorus_qps=C pg_qps=P chorus_p50_ms=.. chorus_p99_ms=..
#     pg_p50_ms=.. pg_p99_ms=.. goal_ratio=3 goal_p99_ms=10 met=yes|no ...
#
# Environment:
#   CHORUS_BIN      binary to measure (default: `make VARIANT=release`, then
#                   build/release/chorus)
#   BENCH_DIR       scratch directory (default build/bench-search)
#   SEARCH_TRACKS, SEARCH_QUERIES, SEARCH_CONNS, SEARCH_SECONDS,
#   SEARCH_TIER_SECONDS, SEARCH_KEEP_DATA=1 (keep the generated catalog and
#   query set, and reuse them on the next run)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$ROOT/build/bench-search}
TRACKS=${SEARCH_TRACKS:-1000000}
NQUERIES=${SEARCH_QUERIES:-10000}
CONNS=${SEARCH_CONNS:-16}
SECONDS_RUN=${SEARCH_SECONDS:-30}
TIER_SECONDS=${SEARCH_TIER_SECONDS:-5}
KEEP=${SEARCH_KEEP_DATA:-0}
LIMIT=10
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3

while [ $# -gt 0 ]; do
	case $1 in
	--keep-data) KEEP=1 ;;
	--tracks) TRACKS=$2; shift ;;
	--queries) NQUERIES=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	--seconds) SECONDS_RUN=$2; shift ;;
	--tier-seconds) TIER_SECONDS=$2; shift ;;
	--dir) BENCH_DIR=$2; shift ;;
	-h|--help) sed -n '2,50p' "$0"; exit 0 ;;
	*) echo "search.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
ARTISTS=$((TRACKS / 10))
ALBUMS=$((TRACKS * 12 / 100))

mb() { awk "BEGIN{printf \"%.0f\", $1 / 1048576}"; }
log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.2f\", $(now) - $1}"; }

if [ -z "${CHORUS_BIN:-}" ]; then
	(cd "$ROOT" && make -s VARIANT=release)
	CHORUS_BIN=$ROOT/build/release/chorus
fi
case $CHORUS_BIN in /*) ;; *) CHORUS_BIN=$ROOT/$CHORUS_BIN ;; esac
[ -x "$CHORUS_BIN" ] || { log "search.sh: no binary at $CHORUS_BIN"; exit 1; }
for t in wrk pgbench psql sqlite3 "$PGBIN/initdb" /usr/share/dict/american-english; do
	[ -e "$t" ] || command -v "$t" >/dev/null ||
		{ log "search.sh: $t is missing (scripts/deps.sh installs it)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { log "search.sh: runs PostgreSQL as user postgres: run as root"; exit 1; }

mkdir -p "$BENCH_DIR"
DATA=$BENCH_DIR/data
Q=$BENCH_DIR/queries.tsv
PGTMP=$(mktemp -d /tmp/chorus-search-pg.XXXXXX)
chown postgres: "$PGTMP"
PGPORT=$((20000 + RANDOM % 20000))
CHORUS_PID=
cleanup() {
	[ -n "$CHORUS_PID" ] && kill "$CHORUS_PID" 2>/dev/null && wait "$CHORUS_PID" 2>/dev/null
	if [ -f "$PGTMP/data/postmaster.pid" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$PGTMP"
	[ "$KEEP" = 1 ] || rm -rf "$DATA" "$Q" "$Q.tiers"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "search: binary $CHORUS_BIN; $(nproc) cores (server and load generator share them)"

# --- 1. the catalog ------------------------------------------------------------

sq() { sqlite3 -batch -noheader "$DATA/catalog.db" "$@"; }
# Bytes of the search index: FTS5 tables with their shadow tables, the
# terms table and its indexes (dbstat).
chorus_index_bytes() {
	sq "SELECT coalesce(sum(pgsize),0) FROM dbstat WHERE name LIKE 'search%' OR name LIKE 'terms%'
	    OR name IN (SELECT name FROM sqlite_master WHERE tbl_name LIKE 'search%' OR tbl_name LIKE 'terms%')"
}
# Starts chorus serve on a free port; sets CHORUS_PID and CHORUS_PORT.
start_chorus() {
	local log_file=$BENCH_DIR/serve.log i
	: >"$log_file"
	setsid "$CHORUS_BIN" serve --data "$DATA" --listen 127.0.0.1:0 >"$log_file" 2>&1 </dev/null &
	CHORUS_PID=$!
	for i in $(seq 1 6000); do
		CHORUS_PORT=$(sed -n 's|.*serving .* on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log_file")
		[ -n "$CHORUS_PORT" ] && return 0
		kill -0 "$CHORUS_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "search: chorus serve did not start:"
	cat "$log_file" >&2
	exit 1
}
stop_chorus() {
	kill "$CHORUS_PID" 2>/dev/null || true
	wait "$CHORUS_PID" 2>/dev/null || true
	CHORUS_PID=
}

# The search schema this binary makes: kept data made by another one
# (other FTS5 options, say) is generated again.
schema_of() { sqlite3 -batch -noheader "$1" "SELECT group_concat(sql, ';') FROM
	(SELECT sql FROM sqlite_master WHERE name LIKE 'search%' ORDER BY name)" | sha256sum | cut -c1-16; }
rm -rf "$PGTMP/empty"
"$CHORUS_BIN" ingest --no-progress --data "$PGTMP/empty" /nonexistent >/dev/null 2>&1 || true
SCHEMA=$(schema_of "$PGTMP/empty/catalog.db")
rm -rf "$PGTMP/empty"

INDEX_NOTE=
if [ "$KEEP" = 1 ] && [ -f "$DATA/.complete-$TRACKS-$SCHEMA" ] && [ -f "$Q" ]; then
	log "data: reusing $DATA"
	CH_BUILD_S=$(cat "$DATA/.build_s")
	INDEX_NOTE=$(cat "$DATA/.build_note")
else
	rm -rf "$DATA"
	mkdir -p "$DATA"
	"$CHORUS_BIN" ingest --no-progress --data "$DATA" /nonexistent >/dev/null 2>&1 || true
	[ -f "$DATA/catalog.db" ] || { log "search: chorus made no catalog"; exit 1; }
	[ "$(sq 'PRAGMA user_version')" -ge 2 ] ||
		{ log "search: the catalog is at schema v$(sq 'PRAGMA user_version'): this chorus has no search"; exit 1; }
	log "data: generating $TRACKS tracks, $ARTISTS artists, $ALBUMS albums, $NQUERIES queries..."
	t0=$(now)
	# --as-v1: rows go into a schema v1 catalog (no search tables), so that
	# the v1 -> v2 migration of `chorus serve` indexes them all: FTS5
	# tables and the typo terms, the complete index, timed on its own.
	"$PY" "$ROOT/bench/search_gen.py" --as-v1 --db "$DATA/catalog.db" --queries "$Q" \
		--tracks "$TRACKS" --artists "$ARTISTS" --albums "$ALBUMS" --nqueries "$NQUERIES" \
		2>"$BENCH_DIR/gen.log" || { cat "$BENCH_DIR/gen.log" >&2; exit 1; }
	cat "$BENCH_DIR/gen.log" >&2
	log "data: generated in $(since "$t0") s"
	sq "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
	CH_DB0=$(stat -c %s "$DATA/catalog.db")
	t0=$(now)
	start_chorus
	CH_BUILD_S=$(since "$t0")
	stop_chorus
	INDEX_NOTE="v1 -> v2 migration at serve start: FTS5 tables + terms, one transaction, single thread; catalog.db $(mb "$CH_DB0") MiB before"
	[ "$(sq 'PRAGMA user_version')" -ge 2 ] ||
		{ log "search: the catalog is at schema v$(sq 'PRAGMA user_version'): this chorus has no search"; exit 1; }
	sq "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
	echo "$CH_BUILD_S" >"$DATA/.build_s"
	echo "$INDEX_NOTE" >"$DATA/.build_note"
	[ "$(schema_of "$DATA/catalog.db")" = "$SCHEMA" ] || { log "search: the migrated schema differs from a new one"; exit 1; }
	touch "$DATA/.complete-$TRACKS-$SCHEMA"
fi
CH_DB_BYTES=$(stat -c %s "$DATA/catalog.db")
CH_INDEX_BYTES=$(chorus_index_bytes)
log "chorus: catalog.db $(mb "$CH_DB_BYTES") MiB, search index $(mb "$CH_INDEX_BYTES") MiB, built in $CH_BUILD_S s ($INDEX_NOTE)"
sq "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'search%' OR name LIKE 'terms%' GROUP BY name ORDER BY 2 DESC" \
	| awk -F'|' '{printf "chorus:   %-28s %6.1f MiB\n", $1, $2 / 1048576}' >&2
NQ=$(wc -l <"$Q")
log "queries: $NQ ($(cut -f2 "$Q" | sort -u | wc -l) distinct): $(awk '{printf "%s %d  ", $1, $3 - $2 + 1}' "$Q.tiers")"

# --- 2. PostgreSQL -------------------------------------------------------------

pg() { runuser -u postgres -- "$@"; }
psqlq() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d bench "$@"; }

log "pg: initdb + start (port $PGPORT, $PGTMP)"
pg "$PGBIN/initdb" -D "$PGTMP/data" -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$PGTMP/initdb.log" 2>&1 ||
	{ cat "$PGTMP/initdb.log" >&2; exit 1; }
# Tuned for a read-only benchmark on 2 cores and 24 GB: everything in
# shared buffers, no parallel query (16 clients on 2 cores), no JIT.
pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/pg.log" -w start -o "-p $PGPORT -k $PGTMP \
	-c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=4GB \
	-c work_mem=32MB -c maintenance_work_mem=2GB -c effective_cache_size=16GB \
	-c random_page_cost=1.1 -c max_parallel_workers_per_gather=0 \
	-c max_parallel_maintenance_workers=1 -c jit=off -c fsync=off \
	-c synchronous_commit=off -c full_page_writes=off -c max_wal_size=8GB \
	-c checkpoint_timeout=1h" >/dev/null
psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE bench"

psqlq <<'EOF'
CREATE EXTENSION unaccent;
CREATE EXTENSION pg_trgm;
CREATE EXTENSION pg_prewarm;
-- simple + unaccent: lower case, accents removed, no stemming, no stop words
CREATE TEXT SEARCH CONFIGURATION su (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION su ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple;
CREATE TABLE artists (id bigint PRIMARY KEY, name text NOT NULL, name_key text NOT NULL UNIQUE);
CREATE TABLE albums (id bigint PRIMARY KEY, title text NOT NULL, title_key text NOT NULL,
	artist_id bigint NOT NULL, year int);
CREATE TABLE tracks (id bigint PRIMARY KEY, title text NOT NULL, title_key text NOT NULL,
	artist_id bigint NOT NULL, album_id bigint NOT NULL, track_number int, disc_number int,
	year int, genre text, isrc text, label text, duration_ms bigint NOT NULL, codec text NOT NULL,
	mime_type text NOT NULL, bitrate int, sample_rate int, channels int, size bigint NOT NULL,
	chunk_size int NOT NULL, chunk_count int NOT NULL, key bytea NOT NULL, blob text NOT NULL,
	content_hash text NOT NULL, source_path text, source_size bigint, source_mtime_ns bigint,
	created_at bigint NOT NULL, updated_at bigint NOT NULL);
EOF
t0=$(now)
sq -csv "SELECT id, name, name_key FROM artists" | psqlq -c "\copy artists FROM STDIN CSV"
sq -csv "SELECT id, title, title_key, artist_id, year FROM albums" | psqlq -c "\copy albums FROM STDIN CSV"
sq -csv "SELECT id, title, title_key, artist_id, album_id, track_number, disc_number, year, genre,
	isrc, label, duration_ms, codec, mime_type, bitrate, sample_rate, channels, size, chunk_size,
	chunk_count, '\\x' || hex(key), blob, content_hash, source_path, source_size, source_mtime_ns,
	created_at, updated_at FROM tracks" | psqlq -c "\copy tracks FROM STDIN CSV"
# The catalog's own secondary indexes (the answers' counts and joins use them).
psqlq <<'EOF'
CREATE UNIQUE INDEX albums_identity ON albums (artist_id, title_key);
CREATE INDEX albums_title ON albums (title_key);
CREATE INDEX tracks_album ON tracks (album_id, disc_number, track_number);
CREATE INDEX tracks_artist ON tracks (artist_id);
CREATE INDEX tracks_title ON tracks (title_key);
CREATE UNIQUE INDEX tracks_blob ON tracks (blob);
CREATE INDEX tracks_hash ON tracks (content_hash);
VACUUM ANALYZE;
EOF
PG_LOAD_S=$(since "$t0")
log "pg: loaded and indexed the catalog in $PG_LOAD_S s"

# The search index, timed: one tsvector table per list (like chorus's FTS5
# tables: tracks by title + artist + album, albums by title + artist),
# GIN on each, and the distinct words with a trigram GIN index for typos.
t0=$(now)
psqlq <<'EOF'
-- Weights: A the name (title), B the artist, C the album.
CREATE TABLE search_artists AS
	SELECT id, setweight(to_tsvector('su', name), 'A') AS tsv FROM artists;
CREATE TABLE search_albums AS
	SELECT al.id, setweight(to_tsvector('su', al.title), 'A') ||
		setweight(to_tsvector('su', ar.name), 'B') AS tsv
	FROM albums al JOIN artists ar ON ar.id = al.artist_id;
CREATE TABLE search_tracks AS
	SELECT t.id, setweight(to_tsvector('su', t.title), 'A') ||
		setweight(to_tsvector('su', ar.name), 'B') || setweight(to_tsvector('su', al.title), 'C') AS tsv
	FROM tracks t JOIN artists ar ON ar.id = t.artist_id JOIN albums al ON al.id = t.album_id;
ALTER TABLE search_artists ADD PRIMARY KEY (id);
ALTER TABLE search_albums ADD PRIMARY KEY (id);
ALTER TABLE search_tracks ADD PRIMARY KEY (id);
CREATE INDEX search_artists_tsv ON search_artists USING gin (tsv) WITH (fastupdate = off);
CREATE INDEX search_albums_tsv ON search_albums USING gin (tsv) WITH (fastupdate = off);
CREATE INDEX search_tracks_tsv ON search_tracks USING gin (tsv) WITH (fastupdate = off);
CREATE TABLE words AS
	SELECT word, ndoc FROM ts_stat('SELECT tsv FROM search_artists UNION ALL
		SELECT tsv FROM search_albums UNION ALL SELECT tsv FROM search_tracks');
CREATE UNIQUE INDEX words_word ON words (word COLLATE "C");
CREATE INDEX words_trgm ON words USING gin (word gin_trgm_ops) WITH (fastupdate = off);
VACUUM ANALYZE search_artists, search_albums, search_tracks, words;
EOF
PG_BUILD_S=$(since "$t0")
PG_INDEX_BYTES=$(psqlq -At -c "SELECT sum(pg_total_relation_size(c)) FROM unnest(
	array['search_artists','search_albums','search_tracks','words']::regclass[]) c")
PG_DB_BYTES=$(psqlq -At -c "SELECT pg_database_size('bench')")
log "pg: database $(mb "$PG_DB_BYTES") MiB, search index $(mb "$PG_INDEX_BYTES") MiB (tsvector tables + GIN + words + trigram GIN), built in $PG_BUILD_S s"
psqlq -At -F' ' -c "SELECT c, pg_total_relation_size(c), pg_relation_size(c) FROM unnest(
	array['search_artists','search_albums','search_tracks','words','search_artists_tsv',
	'search_albums_tsv','search_tracks_tsv','words_trgm']::regclass[]) c" |
	awk '{printf "pg:   %-28s %6.1f MiB\n", $1, $3 / 1048576}' >&2

# The query, as chorus answers it (src/catalog/search.c): every word must
# match, as a whole word first, then as a prefix, then with a typo (the
# next tier only while fewer than N were found); each tier's candidates
# bounded to SEARCH_CANDIDATES rows a list (the name column's too for one
# word), ranked, top N. The answers carry the same objects as chorus's
# catalog endpoints. The candidate bound is read from src/catalog/search.h.
CANDIDATES=$(sed -n 's/^#define SEARCH_CANDIDATES \([0-9]*\).*/\1/p' "$ROOT/src/catalog/search.h")
CANDIDATES=${CANDIDATES:-32}
sed "s/CANDIDATES_PER_TIER/$CANDIDATES/" <<'EOF' | psqlq
CREATE EXTENSION fuzzystrmatch;
-- Candidate ids of one list for a tsquery, at most n (no order: like FTS5's
-- rowid order, the first rows the index gives).
CREATE FUNCTION bench_cands(list int, tsq tsquery, n int) RETURNS SETOF bigint
LANGUAGE plpgsql STABLE AS $f$
BEGIN
	IF list = 0 THEN
		RETURN QUERY SELECT s.id FROM search_artists s WHERE s.tsv @@ tsq LIMIT n;
	ELSIF list = 1 THEN
		RETURN QUERY SELECT s.id FROM search_albums s WHERE s.tsv @@ tsq LIMIT n;
	ELSE
		RETURN QUERY SELECT s.id FROM search_tracks s WHERE s.tsv @@ tsq LIMIT n;
	END IF;
END $f$;

-- One word's typo alternatives (at most 8), as tsquery operands: words at
-- one edit (Levenshtein 1 or a swap of neighbours) found through the
-- trigram index; for the last word also prefixes of longer words within
-- one edit (a word still being typed).
CREATE FUNCTION bench_alts(w text, last bool) RETURNS text[]
LANGUAGE sql STABLE AS $f$
	SELECT array_agg(a) FROM (
		SELECT a FROM (
			SELECT quote_literal(c.word) AS a, 0 AS k, sim FROM (
				SELECT word, similarity(word, w) AS sim FROM words
				WHERE word % w AND word <> w AND abs(length(word) - length(w)) <= 1
				ORDER BY 2 DESC LIMIT 50) c
			WHERE levenshtein_less_equal(w, c.word, 2) <= 1
			   OR (length(c.word) = length(w) AND EXISTS (SELECT 1 FROM generate_series(1, length(w) - 1) i
				WHERE overlay(w PLACING substr(w, i + 1, 1) || substr(w, i, 1) FROM i FOR 2) = c.word))
			UNION ALL
			SELECT DISTINCT quote_literal(p.pre) || ':*', 1, 0 FROM (
				SELECT left(word, length(w)) AS pre FROM words
				WHERE last AND w <% word AND length(word) > length(w)
				ORDER BY word_similarity(w, word) DESC LIMIT 50) p
			WHERE p.pre <> w AND levenshtein_less_equal(w, p.pre, 2) <= 1
		) x ORDER BY k, sim DESC LIMIT 8) y
$f$;

CREATE FUNCTION search(q text, lim int) RETURNS json LANGUAGE plpgsql STABLE AS $f$
DECLARE
	ws text[];
	qn text;
	tq tsquery[];   -- per tier (0 whole words, 1 prefixes, 2 typos), any column
	tqn tsquery[];  -- the same on the name column (weight A)
	alts text[];
	tw text;
	typo_ops text[] := '{}';
	typo_ops_n text[] := '{}';
	any_alts bool := false;
	alts_done bool := false;
	ids bigint[];
	tiers int[];
	lists json[] := '{}';
	heads jsonb[] := '{}';
	lj json;
	hj jsonb;
	top json;
	cid bigint;
	li int;
	tier int;
	i int;
	n int;
	CAND constant int := CANDIDATES_PER_TIER;
BEGIN
	-- The words as the index folds them (lower case, no accents), in order.
	SELECT array_agg(u.lexeme ORDER BY p) INTO ws
	FROM unnest(to_tsvector('su', left(q, 256))) u, unnest(u.positions) p;
	IF ws IS NULL THEN
		RETURN json_build_object('artists', '[]'::json, 'albums', '[]'::json,
			'tracks', '[]'::json, 'top', NULL);
	END IF;
	qn := array_to_string(ws, ' ');
	tq[0] := array_to_string(array(SELECT quote_literal(w) FROM unnest(ws) w), ' & ')::tsquery;
	tqn[0] := array_to_string(array(SELECT quote_literal(w) || ':A' FROM unnest(ws) w), ' & ')::tsquery;
	tq[1] := array_to_string(array(SELECT quote_literal(w) || ':*' FROM unnest(ws) w), ' & ')::tsquery;
	tqn[1] := array_to_string(array(SELECT quote_literal(w) || ':*A' FROM unnest(ws) w), ' & ')::tsquery;
	FOR li IN 0..2 LOOP
		ids := '{}';
		tiers := '{}';
		FOR tier IN 0..2 LOOP
			EXIT WHEN cardinality(ids) >= lim;
			IF tier = 2 THEN
				IF NOT alts_done THEN
					alts_done := true;
					FOR i IN 1..cardinality(ws) LOOP
						tw := quote_literal(ws[i]) || ':*';
						alts := NULL;
						IF length(ws[i]) BETWEEN 5 AND 64 THEN
							alts := bench_alts(ws[i], i = cardinality(ws));
						END IF;
						IF alts IS NOT NULL THEN
							any_alts := true;
							typo_ops := typo_ops || ('(' || tw || ' | ' || array_to_string(alts, ' | ') || ')');
							typo_ops_n := typo_ops_n || ('(' || tw || 'A | ' ||
								array_to_string(array(SELECT a || CASE WHEN a LIKE '%:*' THEN 'A' ELSE ':A' END
									FROM unnest(alts) a), ' | ') || ')');
						ELSE
							typo_ops := typo_ops || tw;
							typo_ops_n := typo_ops_n || (tw || 'A');
						END IF;
					END LOOP;
					IF any_alts THEN
						tq[2] := array_to_string(typo_ops, ' & ')::tsquery;
						tqn[2] := array_to_string(typo_ops_n, ' & ')::tsquery;
					END IF;
				END IF;
				EXIT WHEN NOT any_alts;
			END IF;
			-- Up to CAND rows of any column; when there are more and the
			-- query is one word, the name column's matches too.
			n := 0;
			FOR cid IN SELECT * FROM bench_cands(li, tq[tier], CAND) LOOP
				n := n + 1;
				IF NOT cid = ANY (ids) THEN
					ids := ids || cid;
					tiers := tiers || tier;
				END IF;
			END LOOP;
			IF n = CAND AND li > 0 AND cardinality(ws) = 1 THEN
				FOR cid IN SELECT * FROM bench_cands(li, tqn[tier], CAND) LOOP
					IF NOT cid = ANY (ids) THEN
						ids := ids || cid;
						tiers := tiers || tier;
					END IF;
				END LOOP;
			END IF;
		END LOOP;
		-- Rank: tier, then the name is the query, then it starts with it,
		-- then ts_rank (name over artist over album), shorter first.
		IF li = 0 THEN
			SELECT json_agg(o ORDER BY r), (array_agg(h ORDER BY r))[1] INTO lj, hj FROM (
				SELECT json_build_object('id', lpad(to_hex(a.id), 16, '0'), 'name', a.name,
					'album_count', (SELECT count(*) FROM albums WHERE artist_id = a.id),
					'track_count', (SELECT count(*) FROM tracks WHERE artist_id = a.id)) AS o,
					jsonb_build_object('tier', c.tier, 'eq', c.eq, 'id', lpad(to_hex(a.id), 16, '0')) AS h,
					row_number() OVER (ORDER BY c.tier, c.eq DESC, c.st DESC, c.rk DESC, c.id) AS r
				FROM (SELECT c.id, c.tier, n.nm IN (qn, 'the ' || qn) AS eq, n.nm LIKE qn || '%' AS st,
						ts_rank('{0.1, 0.25, 0.5, 1.0}', s.tsv, tq[c.tier]) - length(s.tsv) * 0.001 AS rk
					FROM unnest(ids, tiers) c(id, tier) JOIN search_artists s ON s.id = c.id
					JOIN artists a0 ON a0.id = c.id,
					LATERAL (SELECT lower(unaccent(a0.name)) AS nm) n
					ORDER BY c.tier, 3 DESC, 4 DESC, 5 DESC, c.id LIMIT lim) c
				JOIN artists a ON a.id = c.id) x;
		ELSIF li = 1 THEN
			SELECT json_agg(o ORDER BY r), (array_agg(h ORDER BY r))[1] INTO lj, hj FROM (
				SELECT json_build_object('id', lpad(to_hex(al.id), 16, '0'), 'title', al.title,
					'artist', ar.name, 'artist_id', lpad(to_hex(ar.id), 16, '0'), 'year', al.year,
					'track_count', (SELECT count(*) FROM tracks WHERE album_id = al.id),
					'duration_ms', (SELECT coalesce(sum(duration_ms), 0) FROM tracks WHERE album_id = al.id),
					'cover_url', NULL) AS o,
					jsonb_build_object('tier', c.tier, 'eq', c.eq, 'id', lpad(to_hex(al.id), 16, '0')) AS h,
					row_number() OVER (ORDER BY c.tier, c.eq DESC, c.st DESC, c.rk DESC, c.id) AS r
				FROM (SELECT c.id, c.tier, n.nm IN (qn, 'the ' || qn) AS eq, n.nm LIKE qn || '%' AS st,
						ts_rank('{0.1, 0.25, 0.5, 1.0}', s.tsv, tq[c.tier]) - length(s.tsv) * 0.001 AS rk
					FROM unnest(ids, tiers) c(id, tier) JOIN search_albums s ON s.id = c.id
					JOIN albums a0 ON a0.id = c.id,
					LATERAL (SELECT lower(unaccent(a0.title)) AS nm) n
					ORDER BY c.tier, 3 DESC, 4 DESC, 5 DESC, c.id LIMIT lim) c
				JOIN albums al ON al.id = c.id JOIN artists ar ON ar.id = al.artist_id) x;
		ELSE
			SELECT json_agg(o ORDER BY r), (array_agg(h ORDER BY r))[1] INTO lj, hj FROM (
				SELECT json_build_object('id', lpad(to_hex(t.id), 16, '0'), 'title', t.title,
					'artist', ar.name, 'artist_id', lpad(to_hex(ar.id), 16, '0'),
					'album', al.title, 'album_id', lpad(to_hex(al.id), 16, '0'),
					'album_artist', aa.name, 'track_number', t.track_number,
					'disc_number', t.disc_number, 'year', t.year, 'genre', t.genre,
					'isrc', t.isrc, 'label', t.label, 'duration_ms', t.duration_ms,
					'codec', t.codec, 'mime_type', t.mime_type, 'bitrate', t.bitrate,
					'sample_rate', t.sample_rate, 'channels', t.channels, 'size_bytes', t.size,
					'stream_url', '/api/v1/tracks/' || lpad(to_hex(t.id), 16, '0') || '/stream',
					'etag', t.content_hash) AS o,
					jsonb_build_object('tier', c.tier, 'eq', c.eq, 'id', lpad(to_hex(t.id), 16, '0')) AS h,
					row_number() OVER (ORDER BY c.tier, c.eq DESC, c.st DESC, c.rk DESC, c.id) AS r
				FROM (SELECT c.id, c.tier, n.nm IN (qn, 'the ' || qn) AS eq, n.nm LIKE qn || '%' AS st,
						ts_rank('{0.1, 0.25, 0.5, 1.0}', s.tsv, tq[c.tier]) - length(s.tsv) * 0.001 AS rk
					FROM unnest(ids, tiers) c(id, tier) JOIN search_tracks s ON s.id = c.id
					JOIN tracks t0 ON t0.id = c.id,
					LATERAL (SELECT lower(unaccent(t0.title)) AS nm) n
					ORDER BY c.tier, 3 DESC, 4 DESC, 5 DESC, c.id LIMIT lim) c
				JOIN tracks t ON t.id = c.id JOIN artists ar ON ar.id = t.artist_id
				JOIN albums al ON al.id = t.album_id JOIN artists aa ON aa.id = al.artist_id) x;
		END IF;
		lists := lists || coalesce(lj, '[]'::json);
		heads := heads || hj;
	END LOOP;
	-- "top": a name equal to the query, artists first; else the best tier.
	SELECT json_build_object('kind', (ARRAY['artist', 'album', 'track'])[k], 'id', h->>'id') INTO top
	FROM unnest(heads) WITH ORDINALITY u(h, k) WHERE h IS NOT NULL
	ORDER BY (h->>'eq')::bool DESC, CASE WHEN (h->>'eq')::bool THEN 0 ELSE (h->>'tier')::int END, k LIMIT 1;
	RETURN json_build_object('artists', lists[1], 'albums', lists[2], 'tracks', lists[3], 'top', top);
END $f$;
EOF

# The query set, for pgbench (id = line number in the query file).
"$PY" - "$Q" >"$PGTMP/q.csv" <<'EOF'
import csv, sys
w = csv.writer(sys.stdout)
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    tier, q, target = line.rstrip("\n").split("\t")
    w.writerow([i, tier, q, target])
EOF
psqlq -c "CREATE TABLE bench_queries (id int PRIMARY KEY, tier text, q text, target text)"
psqlq -c "\copy bench_queries FROM '$PGTMP/q.csv' CSV"
psqlq -c "VACUUM ANALYZE bench_queries" -c "SELECT count(pg_prewarm(c.oid)) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't')" >/dev/null

# --- 3. load ------------------------------------------------------------------

# CPU seconds (user + system) of a process and its reaped children.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15 + $16 + $17) / hz}' "/proc/$1/stat"; }
PG_PID=$(head -1 "$PGTMP/data/postmaster.pid")

# run_chorus FIRST LAST SECONDS UNIQUE -> "qps p50 p99 cpu_ms_per_query errors"
run_chorus() {
	local c0 c1 out
	c0=$(cpu_s "$CHORUS_PID")
	out=$(SEARCH_QUERIES=$Q SEARCH_FIRST=$1 SEARCH_LAST=$2 SEARCH_LIMIT=$LIMIT SEARCH_UNIQUE=$4 \
		wrk -t1 -c"$CONNS" -d"$3"s --timeout 10s -s "$ROOT/bench/search.lua" \
		-H "Authorization: Bearer $KEY" "http://127.0.0.1:$CHORUS_PORT" | grep '^wrk_result')
	c1=$(cpu_s "$CHORUS_PID")
	echo "$out" | awk -v c="$(awk "BEGIN{print $c1 - $c0}")" '{
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%.0f %.2f %.2f %.3f %d\n", v["qps"], v["p50_ms"], v["p99_ms"],
			v["requests"] ? c * 1000 / v["requests"] : 0, v["non2xx"] + v["socket_errors"] }'
}

# run_pg FIRST LAST SECONDS -> "qps p50 p99 cpu_ms_per_query errors"
run_pg() {
	local c0 c1 dir=$PGTMP/pgbench n
	rm -rf "$dir"
	mkdir -p "$dir"
	printf '\\set i random(%d, %d)\nSELECT search(q, %d) FROM bench_queries WHERE id = :i;\n' \
		"$1" "$2" "$LIMIT" >"$dir/script.sql"
	c0=$(cpu_s "$PG_PID")
	(cd "$dir" && pgbench -n -h 127.0.0.1 -p "$PGPORT" -U postgres -M prepared -c "$CONNS" -j 1 \
		-T "$3" -f script.sql -l --log-prefix=tx bench >"$dir/out" 2>&1) ||
		{ cat "$dir/out" >&2; exit 1; }
	sleep 1 # the backends' CPU time counts once the postmaster has reaped them
	c1=$(cpu_s "$PG_PID")
	n=$(cat "$dir"/tx* | wc -l)
	cat "$dir"/tx* | awk '{print $3}' | sort -n | awk -v n="$n" -v secs="$3" \
		-v c="$(awk "BEGIN{print $c1 - $c0}")" -v tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/out")" \
		-v fail="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$dir/out")" '
		{ v[NR] = $1 }
		END { p50 = v[int(n * 0.50) + 1]; p99 = v[int(n * 0.99) + 1]
			printf "%.0f %.2f %.2f %.3f %d\n", tps, p50 / 1000, p99 / 1000, c * 1000 / n, fail + 0 }'
}

start_chorus
log "chorus: serving on 127.0.0.1:$CHORUS_PORT"
# Every request to chorus carries an admin key (written to the catalog the
# node reads: good at once).
KEY=$("$CHORUS_BIN" key create --role admin --name bench --data "$DATA" 2>"$BENCH_DIR/key.log" | tail -1)
case $KEY in chorus_*) ;; *) cat "$BENCH_DIR/key.log" >&2; log "search: chorus key create failed"; exit 1 ;; esac
cat "$DATA/catalog.db" >/dev/null
# The answers must be search answers before anything is measured.
probe=$(curl -s -H "Authorization: Bearer $KEY" "http://127.0.0.1:$CHORUS_PORT/api/v1/search?q=the&limit=$LIMIT")
case $probe in *'"tracks"'*) ;; *) log "search: chorus answered: $probe"; exit 1 ;; esac

log "warm-up: ${TIER_SECONDS} s each"
run_chorus 1 "$NQ" "$TIER_SECONDS" 1 >/dev/null
run_pg 1 "$NQ" "$TIER_SECONDS" >/dev/null

fmt() { # label "qps p50 p99 cpu err"
	set -- "$1" $2
	printf '%-22s %8s %9s %9s %12s %6s\n' "$1" "$2" "$3" "$4" "$5" "$6" >&2
}
log ""
log "all queries, $CONNS connections, ${SECONDS_RUN} s each (2 cores shared with the client):"
printf '%-22s %8s %9s %9s %12s %6s\n' run qps p50_ms p99_ms cpu_ms/query errors >&2
CH=$(run_chorus 1 "$NQ" "$SECONDS_RUN" 0); fmt "chorus" "$CH"
PG=$(run_pg 1 "$NQ" "$SECONDS_RUN"); fmt "postgresql" "$PG"
CHU=$(run_chorus 1 "$NQ" "$SECONDS_RUN" 1); fmt "chorus (memo bypassed)" "$CHU"

# Latency without queueing: one connection per chorus event loop (and two
# PostgreSQL backends). Under the saturating load above, latency is mostly
# time spent waiting behind the other connections' queries.
log ""
log "light load, 2 connections, $((SECONDS_RUN / 2)) s each:"
printf '%-22s %8s %9s %9s %12s %6s\n' run qps p50_ms p99_ms cpu_ms/query errors >&2
SAVED_CONNS=$CONNS
CONNS=2
CHL=$(run_chorus 1 "$NQ" "$((SECONDS_RUN / 2))" 1); fmt "chorus (memo bypassed)" "$CHL"
PGL=$(run_pg 1 "$NQ" "$((SECONDS_RUN / 2))"); fmt "postgresql" "$PGL"
CONNS=$SAVED_CONNS

log ""
log "per tier, ${TIER_SECONDS} s each (chorus with its memo bypassed):"
printf '%-22s %8s %9s %9s %12s %6s\n' tier qps p50_ms p99_ms cpu_ms/query errors >&2
while read -r tier first last; do
	fmt "chorus $tier" "$(run_chorus "$first" "$last" "$TIER_SECONDS" 1)"
	fmt "pg     $tier" "$(run_pg "$first" "$last" "$TIER_SECONDS")"
done <"$Q.tiers"

# Recall: is the name being typed among the answer's names? (A sample.)
log ""
log "recall on every 10th query (target name in the answer's lists):"
"$PY" "$ROOT/bench/search_recall.py" --queries "$Q" --every 10 --limit "$LIMIT" --key "$KEY" \
	--chorus "127.0.0.1:$CHORUS_PORT" --psql "psql -X -At -h 127.0.0.1 -p $PGPORT -U postgres -d bench" >&2

read -r ch_qps ch_p50 ch_p99 ch_cpu ch_err <<<"$CH"
read -r pg_qps pg_p50 pg_p99 pg_cpu pg_err <<<"$PG"
read -r chu_qps chu_p50 chu_p99 chu_cpu chu_err <<<"$CHU"
read -r chl_qps chl_p50 chl_p99 chl_cpu chl_err <<<"$CHL"
read -r pgl_qps pgl_p50 pgl_p99 pgl_cpu pgl_err <<<"$PGL"
ratio=$(awk "BEGIN{printf \"%.2f\", $ch_qps / $pg_qps}")
ratio_u=$(awk "BEGIN{printf \"%.2f\", $chu_qps / $pg_qps}")
met=$(awk "BEGIN{print ($ch_qps >= 3 * $pg_qps && $ch_p99 <= 10) ? \"yes\" : \"no\"}")
log ""
log "chorus ${ch_qps} q/s (p50 ${ch_p50} ms, p99 ${ch_p99} ms), memo bypassed ${chu_qps} q/s (p99 ${chu_p99} ms); PostgreSQL ${pg_qps} q/s (p50 ${pg_p50} ms, p99 ${pg_p99} ms)"
log "light load (2 connections): chorus p50 ${chl_p50} ms, p99 ${chl_p99} ms; PostgreSQL p50 ${pgl_p50} ms, p99 ${pgl_p99} ms"
log "index: chorus $(mb "$CH_INDEX_BYTES") MiB in ${CH_BUILD_S} s; PostgreSQL $(mb "$PG_INDEX_BYTES") MiB in ${PG_BUILD_S} s"
cpu_ratio=$(awk "BEGIN{printf \"%.2f\", $pg_cpu / $ch_cpu}")
log "server CPU per query: chorus ${ch_cpu} ms (memo bypassed ${chu_cpu} ms), PostgreSQL ${pg_cpu} ms: ${cpu_ratio}x"
echo "search_vs_pg ratio=$ratio chorus_qps=$ch_qps pg_qps=$pg_qps chorus_p50_ms=$ch_p50 chorus_p99_ms=$ch_p99 pg_p50_ms=$pg_p50 pg_p99_ms=$pg_p99 cpu_ratio=$cpu_ratio ratio_nomemo=$ratio_u chorus_nomemo_qps=$chu_qps chorus_nomemo_p99_ms=$chu_p99 chorus_light_p99_ms=$chl_p99 pg_light_p99_ms=$pgl_p99 chorus_index_mib=$(mb "$CH_INDEX_BYTES") chorus_build_s=$CH_BUILD_S pg_index_mib=$(mb "$PG_INDEX_BYTES") pg_build_s=$PG_BUILD_S errors=$((ch_err + pg_err + chu_err + chl_err + pgl_err)) goal_ratio=3 goal_p99_ms=10 met=$met"
