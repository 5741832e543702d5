#!/usr/bin/env bash
# Replication lag: how long after a commit in PostgreSQL a new track is
# visible on a cluster node following the change feed, under a steady
# ingest, against PostgreSQL's own LISTEN/NOTIFY round trip for the same
# commits, in the same run.
#
#   bench/replication_lag.sh [--tracks N] [--rate R]... [--seconds S]
#
# 1. A throwaway PostgreSQL 15 (fsync and synchronous_commit on), the chorus
#    schema made by the binary, a base catalog of N tracks (default
#    100,000; bench/cluster/catalog_gen.py, loaded through the triggers),
#    and one node: `chorus serve --db CONNINFO --data EMPTY` (bootstrapped,
#    CHORUS_DEBUG=1 for its per-pass log lines).
# 2. For each rate (default 10 and 50 tracks/s, S seconds each, default 60
#    and 20): bench/cluster/lag.py inserts new tracks at that fixed rate
#    straight into PostgreSQL's tables, one transaction per track (every
#    10th with a new album, some with a new artist), through chorus's
#    triggers: not `chorus ingest`, whose commit time is not visible from
#    outside. Per track it records the clock just before COMMIT is sent
#    (c0) and when it returns (c1), then polls GET /api/v1/tracks/{id} on
#    the node (with an admin API key) every 0.5 ms until it answers 200.
#    The reference: a second process LISTENing on chorus_catalog, timing
#    the arrival of each commit's notification: the floor for any replica
#    that learns of changes by NOTIFY.
# 3. Checks: every track visible (none missing), the node's track count
#    equals PostgreSQL's at the end.
#
# Figures: p50/p99/max of (visible - c1) for chorus and (notified - c1)
# for the reference, and the same from c0. The ratio is chorus's p50 from
# c0 over NOTIFY's p50 from c0 (from c1 the notification often arrives
# before the COMMIT's answer: a ratio over about 0 ms means nothing).
# The last stdout line:
#
#   replication_lag ratio=R chorus_p50_ms=.. chorus_p99_ms=.. chorus_max_ms=..
#     notify_p50_ms=.. ... (the first rate) rate2_...=.. (the others)
#
# Environment: CHORUS_BIN, BENCH_DIR (build/bench-cluster: generated CSV
# kept), LAG_TRACKS, LAG_RATES ("10 50"), LAG_SECONDS ("60 20"),
# BENCH_KEEP_WORK=1.
set -eu
BENCH_NAME=replication_lag
source "$(dirname "$0")/cluster/lib.sh"

BENCH_DIR=${BENCH_DIR:-$ROOT/build/bench-cluster}
TRACKS=${LAG_TRACKS:-100000}
RATES=${LAG_RATES:-}
SECS=${LAG_SECONDS:-}
while [ $# -gt 0 ]; do
	case $1 in
	--tracks) TRACKS=$2; shift ;;
	--rate) RATES="$RATES $2"; shift ;;
	--seconds) SECS="$SECS $2"; shift ;;
	-h|--help) sed -n '2,42p' "$0"; exit 0 ;;
	*) log "replication_lag.sh: unknown argument $1"; exit 2 ;;
	esac
	shift
done
RATES=${RATES:-10 50}
SECS=${SECS:-60 20}

log "replication_lag: binary $CHORUS_BIN; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
pg_init
chorus_schema
catalog_load "$TRACKS" "$BENCH_DIR/catalog-$TRACKS"
log "pg: $TRACKS tracks loaded through the triggers in $LOAD_S s (port $PGPORT)"
CHORUS_DEBUG=1 node_start node "$WORK/node"
log "node: serving on 127.0.0.1:$NODE_PORT after $NODE_START_S s (bootstrap)"

set -- $SECS
SUMMARY=
k=0
for rate in $RATES; do
	k=$((k + 1))
	secs=${1:-20}
	[ $# -gt 0 ] && shift
	log ""
	mark=$(wc -l <"$WORK/node.err")
	out=$("$PY" "$ROOT/bench/cluster/lag.py" --conninfo "$CONNINFO" --port "$NODE_PORT" --key "$CHORUS_KEY" \
		--rate "$rate" --seconds "$secs" --tag "r$rate" --samples "$WORK/samples-$rate.tsv") ||
		{ log "replication_lag: lag.py failed: $out"; exit 1; }
	# The node's passes during this run: rows applied and time per pass.
	tail -n +"$((mark + 1))" "$WORK/node.err" |
		sed -n 's/.*replica: applied \([0-9]*\) changes up to [0-9]* in \([0-9]*\) ms.*/\1 \2/p' |
		sort -k2 -n | awk '{n++; r += $1; v[n] = $2} END {if (n) { i = int(n * 0.99) + 1; if (i > n) i = n
			printf "node: %d passes, %.2f changes each; pass time (ms, whole ms) p50 %d, p99 %d, max %d\n", n, r / n, v[int(n * 0.5) + 1], v[i], v[n] }}' >&2
	kv=$(echo "$out" | sed 's/^lag //')
	if [ $k = 1 ]; then
		FIRST=$kv
	else
		SUMMARY="$SUMMARY $(echo "$kv" | tr ' ' '\n' | grep -v '^tag=' | sed "s/^/rate${rate}_/" | tr '\n' ' ')"
	fi
done

# Checks: the node holds every track PostgreSQL has.
sleep 0.5
pg_n=$(pgval "SELECT count(*) FROM tracks")
node_n=$(sqlite3 "$WORK/node/catalog.db" "SELECT count(*) FROM tracks")
[ "$pg_n" = "$node_n" ] || { log "replication_lag: the node holds $node_n tracks, PostgreSQL $pg_n"; exit 1; }
log ""
log "checks: the node holds all $node_n tracks; replication: $(node_json "$NODE_PORT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["replication"])')"

get() { echo "$FIRST" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
ratio=$(calc %.2f "$(get chorus_c0_p50_ms) / $(get notify_c0_p50_ms)")
log "rate $(get rate)/s: chorus p50 $(get chorus_p50_ms) ms, p99 $(get chorus_p99_ms) ms, max $(get chorus_max_ms) ms after the commit; NOTIFY p50 $(get notify_p50_ms) ms; from COMMIT sent: chorus p50 $(get chorus_c0_p50_ms) ms, NOTIFY $(get notify_c0_p50_ms) ms: ${ratio}x"
echo "replication_lag ratio=$ratio tracks=$TRACKS $(echo "$FIRST" | sed 's/^tag=[^ ]* //')$SUMMARY" | sed 's/ *$//'
