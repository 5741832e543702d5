#!/usr/bin/env bash
# A cluster node joining: `chorus serve --db` on an empty data directory,
# from exec to its "serving" line (the bootstrap from PostgreSQL comes
# first), against reading the same catalog out of PostgreSQL with psql, in
# the same run, on the same data.
#
#   bench/bootstrap.sh [--tracks N]... [--reps R]
#
# For each catalog size (default 100,000 and 1,000,000 tracks):
# 1. Data: a fresh database in a throwaway PostgreSQL 15 (fsync on, 1 GB of
#    shared buffers), the chorus schema made by the binary (`chorus report
#    --db`), then the synthetic catalog of bench/search_gen.py (same
#    generator and seed: dictionary-word names, 5% accented, 3% non-Latin;
#    tracks/10 artists, tracks*12/100 albums) copied in with \copy ... CSV,
#    so the triggers stamp every row's seq; VACUUM ANALYZE, CHECKPOINT.
# 2. R repetitions (default 2), alternating which goes first:
#    - chorus: `chorus serve --db CONNINFO --data EMPTY --listen 127.0.0.1:0`
#      with CHORUS_DEBUG=1, timed from exec to "serving" on stdout (polled
#      every 20 ms); also bootstrap_ms from GET /api/v1/node, the phases
#      from the log (rows copied, base indexes, search index) and the peak
#      RSS. Then the checks: the node's catalog.db holds as many artists,
#      albums and tracks as PostgreSQL, and 5 random tracks answer
#      GET /api/v1/tracks/{id} with PostgreSQL's fields and are found by a
#      search for their title (bench/cluster/spot_check.py).
#    - reference: one psql running the bootstrap's own queries (the same
#      columns, WHERE seq > 0 ORDER BY key, in one REPEATABLE READ
#      transaction) as \copy (...) TO FILE CSV: the raw cost of reading the
#      catalog out of PostgreSQL. Then, also timed, `sqlite3` importing
#      those files into the same tables (journal off, .import --csv) and
#      building the same secondary indexes: what chorus does minus the
#      search index, with the sqlite3 shell.
#    The ratio is chorus's time to serving / psql's export time.
#
# Goal (the issue): a node joining a 1M-track catalog serves within 60 s.
# The last stdout line:
#
#   bootstrap ratio=R tracks=N chorus_s=.. bootstrap_ms=.. pg_export_s=..
#     sqlite_import_s=.. sqlite_index_s=.. goal_s=60 met=yes|no ... (the largest size)
#
# Environment: CHORUS_BIN (default: builds build/release/chorus),
# BENCH_DIR (generated CSV files, kept: build/bench-cluster),
# BOOTSTRAP_TRACKS ("100000 1000000"), BOOTSTRAP_REPS (2),
# BENCH_KEEP_WORK=1 (keep the scratch directory under /tmp).
set -eu
BENCH_NAME=bootstrap
source "$(dirname "$0")/cluster/lib.sh"

BENCH_DIR=${BENCH_DIR:-$ROOT/build/bench-cluster}
SIZES=${BOOTSTRAP_TRACKS:-}
REPS=${BOOTSTRAP_REPS:-2}
while [ $# -gt 0 ]; do
	case $1 in
	--tracks) SIZES="$SIZES $2"; shift ;;
	--reps) REPS=$2; shift ;;
	-h|--help) sed -n '2,45p' "$0"; exit 0 ;;
	*) log "bootstrap.sh: unknown argument $1"; exit 2 ;;
	esac
	shift
done
SIZES=${SIZES:-100000 1000000}

log "bootstrap: binary $CHORUS_BIN; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
pg_init
log "pg: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT ($WORK/pg)"

# The bootstrap's queries (src/catalog/replica.c: tables[], bootstrap()).
COLS_artists="id, name, name_key"
COLS_albums="id, title, title_key, artist_id, year"
COLS_covers="album_id, mime, sha256, data"
COLS_tracks="id, title, title_key, artist_id, album_id, track_number, disc_number, year, genre, isrc, label, duration_ms, codec, mime_type, bitrate, sample_rate, channels, size, chunk_size, chunk_count, key, blob, content_hash, source_path, source_size, source_mtime_ns, created_at, updated_at"
KEY_covers=album_id
{
	echo "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
	for t in artists albums covers tracks; do
		cols=COLS_$t key=KEY_$t
		echo "\\copy (SELECT ${!cols}, seq FROM $t WHERE seq > 0 ORDER BY ${!key:-id}) TO '$WORK/ref/$t.csv' CSV"
	done
	echo "SELECT coalesce(max(seq), 0) FROM deletions;"
	echo "COMMIT;"
} >"$WORK/export.sql"

# The SQLite tables and indexes as this binary makes them (an empty catalog).
"$CHORUS_BIN" ingest --no-progress --data "$WORK/empty" /nonexistent >/dev/null 2>&1 || true
[ -f "$WORK/empty/catalog.db" ] || { log "bootstrap: chorus made no catalog"; exit 1; }
{
	echo "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;"
	# sqlite3's .import reads an empty CSV field as '', never NULL: the
	# one UNIQUE column that is NULL here (source_path) is indexed without
	# UNIQUE in the index phase instead.
	sqlite3 "$WORK/empty/catalog.db" "SELECT sql || ';' FROM sqlite_master WHERE type = 'table'
		AND name IN ('artists', 'albums', 'covers', 'tracks')" | sed 's/source_path TEXT UNIQUE/source_path TEXT/'
	for t in artists albums covers tracks; do echo "ALTER TABLE $t ADD COLUMN seq INTEGER;"; done
} >"$WORK/ref-tables.sql"
{
	echo "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;"
	echo "BEGIN;"
	for t in artists albums covers tracks; do echo ".import --csv $WORK/ref/$t.csv $t"; done
	echo "COMMIT;"
} >"$WORK/ref-import.sql"
{
	echo "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;"
	sqlite3 "$WORK/empty/catalog.db" "SELECT sql || ';' FROM sqlite_master WHERE type = 'index'
		AND sql IS NOT NULL AND tbl_name IN ('artists', 'albums', 'covers', 'tracks')"
	echo "CREATE INDEX ref_source_path ON tracks(source_path);"
} >"$WORK/ref-indexes.sql"

# reference -> "export_s import_s index_s export_mib"
run_reference() {
	local t0 e i x
	rm -rf "$WORK/ref" "$WORK/ref.db"
	mkdir -p "$WORK/ref"
	t0=$(now)
	psqlq -o /dev/null -f "$WORK/export.sql"
	e=$(since "$t0")
	sqlite3 "$WORK/ref.db" <"$WORK/ref-tables.sql" >/dev/null
	t0=$(now)
	sqlite3 "$WORK/ref.db" <"$WORK/ref-import.sql" >/dev/null
	i=$(since "$t0")
	t0=$(now)
	sqlite3 "$WORK/ref.db" <"$WORK/ref-indexes.sql" >/dev/null
	x=$(since "$t0")
	[ "$(sqlite3 "$WORK/ref.db" "SELECT count(*) FROM tracks")" = "$PG_TRACKS" ] ||
		{ log "bootstrap: the reference imported $(sqlite3 "$WORK/ref.db" "SELECT count(*) FROM tracks") tracks, not $PG_TRACKS"; exit 1; }
	echo "$e $i $x $(mb "$(du -cb "$WORK"/ref/*.csv | tail -1 | cut -f1)")"
}

# chorus REP -> "serving_s bootstrap_ms copy_ms index_ms search_ms hwm_mib db_mib"
run_chorus() {
	local dir=$WORK/node-$1 j bms copy idx srch hwm nt na nb
	rm -rf "$dir"
	CHORUS_DEBUG=1 node_start "node-$1" "$dir"
	j=$(node_json "$NODE_PORT")
	bms=$(echo "$j" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["replication"]["bootstrap_ms"])')
	hwm=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$NODE_PID/status")
	copy=$(sed -n 's/.*replica: bootstrap: [0-9]* rows copied in \([0-9]*\) ms.*/\1/p' "$WORK/node-$1.err")
	idx=$(sed -n 's/.*replica: bootstrap: indexed in \([0-9]*\) ms.*/\1/p' "$WORK/node-$1.err")
	srch=$(sed -n 's/.*replica: bootstrap: search indexed in \([0-9]*\) ms.*/\1/p' "$WORK/node-$1.err")
	# Correctness: every row there, and the API answers as PostgreSQL says.
	read -r na nb nt <<<"$(sqlite3 "$dir/catalog.db" "SELECT (SELECT count(*) FROM artists),
		(SELECT count(*) FROM albums), (SELECT count(*) FROM tracks)" | tr '|' ' ')"
	if [ "$na $nb $nt" != "$PG_ARTISTS $PG_ALBUMS $PG_TRACKS" ]; then
		log "bootstrap: the node holds $na artists, $nb albums, $nt tracks; PostgreSQL $PG_ARTISTS, $PG_ALBUMS, $PG_TRACKS"
		exit 1
	fi
	"$PY" "$ROOT/bench/cluster/spot_check.py" --port "$NODE_PORT" --key "$CHORUS_KEY" --conninfo "$CONNINFO" --seed "$1" >/dev/null ||
		{ log "bootstrap: spot checks failed"; exit 1; }
	node_stop "$NODE_PID"
	echo "$NODE_START_S $bms ${copy:-0} ${idx:-0} ${srch:-0} $hwm $(mb "$(stat -c %s "$dir/catalog.db")")"
	rm -rf "$dir"
}

SUMMARY=
for N in $SIZES; do
	log ""
	log "=== $N tracks ==="
	psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
		-c "DROP DATABASE IF EXISTS chorus" -c "CREATE DATABASE chorus"
	chorus_schema
	catalog_load "$N" "$BENCH_DIR/catalog-$N"
	read -r PG_ARTISTS PG_ALBUMS PG_TRACKS PG_SEQ <<<"$(pgval "SELECT (SELECT count(*) FROM artists),
		(SELECT count(*) FROM albums), (SELECT count(*) FROM tracks), (SELECT last_value FROM catalog_seq)" | tr '|' ' ')"
	log "pg: $PG_ARTISTS artists, $PG_ALBUMS albums, $PG_TRACKS tracks (seq up to $PG_SEQ) loaded through the triggers in $LOAD_S s; database $(mb "$(pgval "SELECT pg_database_size('chorus')")") MiB"
	[ "$PG_TRACKS" = "$N" ] || { log "bootstrap: PostgreSQL holds $PG_TRACKS tracks, not $N"; exit 1; }
	# Warm: both sides read from memory (the first reader of a table also
	# pays nothing for hint bits, set by the VACUUM).
	run_reference >/dev/null

	printf '%-5s %-9s %10s %13s %9s %9s %9s %8s %8s\n' rep who serving_s bootstrap_ms copy_ms index_ms search_ms rss_mib db_mib >&2
	CH_ALL=() REF_ALL=()
	for rep in $(seq 1 "$REPS"); do
		if [ $((rep % 2)) = 1 ]; then order="ref chorus"; else order="chorus ref"; fi
		for who in $order; do
			if [ "$who" = ref ]; then
				R=$(run_reference)
				REF_ALL+=("$R")
				read -r e i x emib <<<"$R"
				printf '%-5s %-9s %10s   psql export %s s (%s MiB CSV); sqlite3 import %s s, indexes %s s\n' \
					"$rep" reference "" "$e" "$emib" "$i" "$x" >&2
			else
				C=$(run_chorus "$rep")
				CH_ALL+=("$C")
				read -r s b c ix sr hwm dbm <<<"$C"
				printf '%-5s %-9s %10s %13s %9s %9s %9s %8s %8s\n' "$rep" chorus "$s" "$b" "$c" \
					"$((ix - c))" "$((sr - ix))" "$hwm" "$dbm" >&2
			fi
		done
	done
	# Medians over the repetitions.
	med() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
	ch_s=$(printf '%s\n' "${CH_ALL[@]}" | cut -d' ' -f1 | med)
	ch_b=$(printf '%s\n' "${CH_ALL[@]}" | cut -d' ' -f2 | med)
	ch_c=$(printf '%s\n' "${CH_ALL[@]}" | cut -d' ' -f3 | med)
	ref_e=$(printf '%s\n' "${REF_ALL[@]}" | cut -d' ' -f1 | med)
	ref_i=$(printf '%s\n' "${REF_ALL[@]}" | cut -d' ' -f2 | med)
	ref_x=$(printf '%s\n' "${REF_ALL[@]}" | cut -d' ' -f3 | med)
	ratio=$(calc %.2f "$ch_s / $ref_e")
	ratio_full=$(calc %.2f "$ch_s / ($ref_e + $ref_i + $ref_x)")
	met=$(awk "BEGIN{print ($ch_s <= 60) ? \"yes\" : \"no\"}")
	log "median: chorus serving after $ch_s s (bootstrap_ms $ch_b, rows copied in $ch_c ms); psql export $ref_e s: ${ratio}x; export + sqlite3 import + indexes $(calc %.2f "$ref_e + $ref_i + $ref_x") s: ${ratio_full}x; within 60 s: $met"
	LAST="ratio=$ratio tracks=$N chorus_s=$ch_s bootstrap_ms=$ch_b copy_ms=$ch_c pg_export_s=$ref_e sqlite_import_s=$ref_i sqlite_index_s=$ref_x ratio_vs_export_import_index=$ratio_full goal_s=60 met=$met"
	SUMMARY="$SUMMARY ratio_$N=$ratio chorus_s_$N=$ch_s pg_export_s_$N=$ref_e"
done
# The largest (last) size's figures first: the goal is about 1M tracks.
echo "bootstrap $LAST reps=$REPS$SUMMARY"
