#!/usr/bin/env bash
# Plays shipped per second into PostgreSQL: a node's queue of N plays,
# taken while PostgreSQL was down, drained once it is back, against
# `psql \copy plays FROM file` of the same N rows into the same PostgreSQL,
# in the same run.
#
#   bench/plays_ship.sh [--plays N] [--reps R]
#
# 1. A throwaway PostgreSQL 15 (fsync and synchronous_commit on), the chorus
#    schema made by the binary, a catalog of 1,000 tracks, one node
#    (`chorus serve --db CONNINFO --data EMPTY`, bootstrapped).
# 2. Each repetition (default 2): TRUNCATE plays; stop PostgreSQL
#    (pg_ctl -m fast); POST N plays (default 1,000,000) to the node in
#    batches of 1,000 on 2 connections with an admin API key, which has no
#    per-minute play quota (bench/cluster/post_plays.py; every batch
#    acknowledged, so N rows sit in the node's plays.db); start
#    PostgreSQL; from the moment pg_ctl says it accepts connections, poll
#    GET /api/v1/node every 20 ms (bench/cluster/wait_shipped.py, one
#    process) until plays_shipping.shipped reaches N and queued is 0. PostgreSQL must then hold exactly N rows, all of the
#    posted event ids.
#      plays/s  = N / (done - PostgreSQL up)       the figure
#      steady   = rows after the first batch / (done - first batch committed)
#    (the difference is the shipper's reconnection back-off, up to 5 s.)
# 3. Reference: the N rows exported (\copy plays TO FILE, not timed), then
#    `psql -c "\copy plays_ref FROM FILE"` into a fresh table made with
#    CREATE TABLE plays_ref (LIKE plays INCLUDING ALL): the same columns,
#    primary key and index, one COPY, one transaction, the same PostgreSQL.
#
# The ratio is chorus's plays/s over the reference's. The last stdout line:
#
#   plays_ship ratio=R chorus_pps=.. steady_pps=.. copy_pps=.. plays=N ...
#
# Environment: CHORUS_BIN, SHIP_PLAYS, SHIP_REPS, BENCH_KEEP_WORK=1.
set -eu
BENCH_NAME=plays_ship
source "$(dirname "$0")/cluster/lib.sh"

BENCH_DIR=${BENCH_DIR:-$ROOT/build/bench-cluster}
N=${SHIP_PLAYS:-1000000}
REPS=${SHIP_REPS:-2}
while [ $# -gt 0 ]; do
	case $1 in
	--plays) N=$2; shift ;;
	--reps) REPS=$2; shift ;;
	-h|--help) sed -n '2,36p' "$0"; exit 0 ;;
	*) log "plays_ship.sh: unknown argument $1"; exit 2 ;;
	esac
	shift
done

log "plays_ship: binary $CHORUS_BIN; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
pg_init
chorus_schema
catalog_load 1000 "$BENCH_DIR/catalog-1000"
node_start node "$WORK/node"
log "node: serving on 127.0.0.1:$NODE_PORT (PostgreSQL on $PGPORT)"
# ID:DURATION_MS: a play's ms_played must not pass its track's duration.
TRACK_IDS=$(pgval "SELECT string_agg(lpad(to_hex(id), 16, '0') || ':' || duration_ms, ',') FROM (SELECT id, duration_ms FROM tracks ORDER BY id LIMIT 100) t")

ship() { node_json "$NODE_PORT" | "$PY" -c 'import json, sys
s = json.load(sys.stdin)["plays_shipping"]
print(s["queued"], s["shipped"], s["batches"], int(s["connected"]))'; }

printf '%-4s %-10s %10s %10s %10s %12s %12s %10s\n' rep who plays post_s wait_s ship_s plays_per_s steady >&2
CH=() ST=() RF=()
for rep in $(seq 1 "$REPS"); do
	psqlq -c "TRUNCATE plays" -c "DROP TABLE IF EXISTS plays_ref"
	read -r _ shipped0 _ _ <<<"$(ship)"
	pg_stop
	post=$("$PY" "$ROOT/bench/cluster/post_plays.py" --port "$NODE_PORT" --key "$CHORUS_KEY" --n "$N" \
		--tracks "$TRACK_IDS" --prefix "r$rep-$RANDOM") || exit 1
	post_s=$(echo "$post" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')
	q=$(sqlite3 "$WORK/node/plays.db" "SELECT count(*) FROM plays")
	[ "$q" = "$N" ] || { log "plays_ship: the node's queue holds $q plays, not $N"; exit 1; }

	pg_start
	t0=$(now)
	w=$("$PY" "$ROOT/bench/cluster/wait_shipped.py" --port "$NODE_PORT" --key "$CHORUS_KEY" --n "$N" --shipped0 "$shipped0" \
		--since "$t0") || exit 1
	total=$(echo "$w" | sed -n 's/.*done_s=\([0-9.]*\).*/\1/p')
	wait_s=$(echo "$w" | sed -n 's/.*first_s=\([0-9.]*\).*/\1/p')
	first_rows=$(echo "$w" | sed -n 's/.*first_rows=\([0-9]*\).*/\1/p')
	read -r pg_n pg_distinct <<<"$(pgval "SELECT count(*), count(DISTINCT event_id) FROM plays" | tr '|' ' ')"
	[ "$pg_n" = "$N" ] && [ "$pg_distinct" = "$N" ] ||
		{ log "plays_ship: PostgreSQL holds $pg_n plays ($pg_distinct distinct), not $N"; exit 1; }
	pps=$(calc %.0f "$N / $total")
	if [ "$first_rows" -lt "$N" ]; then
		steady=$(calc %.0f "($N - $first_rows) / ($total - $wait_s)")
	else
		steady=$pps # one batch: no rate after the first
	fi
	CH+=("$pps") ST+=("$steady")
	printf '%-4s %-10s %10s %10s %10s %12s %12s %10s\n' "$rep" chorus "$N" "$post_s" "$wait_s" "$total" "$pps" "$steady" >&2

	# The reference: the same rows, one COPY into a fresh table like plays.
	psqlq -c "\\copy plays TO '$WORK/plays.copy'"
	psqlq -c "CREATE TABLE plays_ref (LIKE plays INCLUDING ALL)" -c "CHECKPOINT"
	t0=$(now)
	psqlq -c "\\copy plays_ref FROM '$WORK/plays.copy'"
	ref_s=$(since "$t0")
	[ "$(pgval "SELECT count(*) FROM plays_ref")" = "$N" ] || { log "plays_ship: the reference lost rows"; exit 1; }
	ref=$(calc %.0f "$N / $ref_s")
	RF+=("$ref")
	printf '%-4s %-10s %10s %10s %10s %12s %12s %10s\n' "$rep" "psql copy" "$N" "" "" "$ref_s" "$ref" "" >&2
	rm -f "$WORK/plays.copy"
done
log "node: $(node_json "$NODE_PORT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["plays_shipping"])')"

med() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ch=$(med "${CH[@]}") st=$(med "${ST[@]}") rf=$(med "${RF[@]}")
ratio=$(calc %.2f "$ch / $rf")
log "median: chorus $ch plays/s from PostgreSQL's restart ($st plays/s once shipping), psql COPY $rf plays/s: ${ratio}x (${ratio_st:=$(calc %.2f "$st / $rf")}x steady)"
echo "plays_ship ratio=$ratio chorus_pps=$ch steady_pps=$st copy_pps=$rf ratio_steady=$ratio_st plays=$N reps=$REPS runs_chorus=$(IFS=,; echo "${CH[*]}") runs_steady=$(IFS=,; echo "${ST[*]}") runs_copy=$(IFS=,; echo "${RF[*]}")"
