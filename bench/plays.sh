#!/usr/bin/env bash
# Plays: acknowledged plays per second on POST /api/v1/plays, against a
# local PostgreSQL 15 taking the same events at the same durability, in
# the same run.
#
#   bench/plays.sh [--seconds S] [--conns N]
#
# chorus: a catalog of 3 tiny WAV tracks, `chorus serve` (one loop per
# core), an admin API key (`chorus key create`: admins have no per-minute
# play quota), then
#
#   wrk -t 2 -c 64 -d S -s bench/plays/post.lua -H 'Authorization: Bearer KEY'
#                                                 (batches of 100 unique events)
#
# acknowledged plays/s = 2xx answers x 100 / seconds; afterwards plays.db
# must hold at least that many rows.
#
# PostgreSQL: a throwaway server (initdb -A trust, run as user postgres
# when root; fsync=on, synchronous_commit=on: the defaults), the same table
# as plays.db's (event_id UNIQUE, no other index; INSERT ... ON CONFLICT
# DO NOTHING), then
#
#   pgbench -n -M prepared -c 64 -j 2 -T S -f INSERT-of-100-rows.sql
#
# plays/s = tps x 100. The last line:
#
#   plays chorus_pps=N pg_pps=M ratio=R      (goal: N >= 50000, R >= 1.0)
#
# Environment: CHORUS_BIN (default build/release/chorus, built when unset),
# BENCH_DIR (default build/bench-plays), BENCH_SECONDS (10), PG_BIN
# (/usr/lib/postgresql/15/bin), BENCH_KEEP_RUN=1 keeps the run dir.
set -eu
SECS=${BENCH_SECONDS:-10}
CONNS=64
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) SECS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	-h|--help) sed -n '2,30p' "$0"; exit 0 ;;
	*) echo "plays.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BENCH_DIR=${BENCH_DIR:-$ROOT/build/bench-plays}
CURL=(curl -s --noproxy '*')
PY=/usr/bin/python3
log() { printf '%s\n' "$*" >&2; }
die() { log "plays.sh: $*"; exit 1; }
calc() { awk "BEGIN{printf \"$1\", $2}"; }
kv() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

if [ -z "${CHORUS_BIN:-}" ]; then
	(cd "$ROOT" && make -s VARIANT=release) >&2
	CHORUS_BIN=$ROOT/build/release/chorus
fi
case $CHORUS_BIN in /*) ;; *) CHORUS_BIN=$ROOT/$CHORUS_BIN ;; esac
[ -x "$CHORUS_BIN" ] || die "no binary at $CHORUS_BIN"
for t in wrk curl sqlite3 pgbench "$PG_BIN/initdb" "$PG_BIN/pg_ctl"; do
	command -v "$t" >/dev/null || die "$t is required (scripts/deps.sh)"
done

RUN=$BENCH_DIR/run.$$
mkdir -p "$RUN"
CHORUS_PID=
PGDIR=
AS_PG=()
[ "$(id -u)" = 0 ] && AS_PG=(runuser -u postgres --)
cleanup() {
	if [ -n "$CHORUS_PID" ]; then
		kill "$CHORUS_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$CHORUS_PID" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$CHORUS_PID" 2>/dev/null || true
	fi
	if [ -n "$PGDIR" ] && [ -f "$PGDIR/data/postmaster.pid" ]; then
		"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	[ -n "$PGDIR" ] && rm -rf "$PGDIR"
	if [ "${BENCH_KEEP_RUN:-0}" = 1 ]; then log "kept $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- chorus
$PY "$ROOT/bench/serve/mkwav.py" "$RUN/lib" 3 65580 track
"$CHORUS_BIN" ingest --no-progress --data "$RUN/data" "$RUN/lib" >"$RUN/ingest.log" 2>&1 ||
	{ cat "$RUN/ingest.log" >&2; die "ingest failed"; }
port=$(free_port)
setsid "$CHORUS_BIN" serve --data "$RUN/data" --listen "127.0.0.1:$port" \
	>"$RUN/chorus.out" 2>"$RUN/chorus.err" </dev/null &
CHORUS_PID=$!
for _ in $(seq 100); do
	grep -q "on http://127.0.0.1:$port/" "$RUN/chorus.out" 2>/dev/null && break
	sleep 0.05
done
URL=http://127.0.0.1:$port
key=$("$CHORUS_BIN" key create --role admin --name bench --data "$RUN/data" 2>"$RUN/key.err" | tail -1)
case $key in chorus_*) ;; *) cat "$RUN/key.err" >&2; die "chorus key create failed" ;; esac
AUTH=(-H "Authorization: Bearer $key")
# ID:DURATION_MS: a play's ms_played must not pass its track's duration.
tracks=$("${CURL[@]}" "${AUTH[@]}" "$URL/api/v1/tracks" | $PY -c 'import json,sys; print(",".join("%s:%d" % (t["id"], t["duration_ms"]) for t in json.load(sys.stdin)["tracks"]))')
[ -n "$tracks" ] || die "no tracks served"
log "bench: $(nproc) cores; binary $CHORUS_BIN; $CONNS connections x batches of 100 for ${SECS}s"
line=$(PLAYS_TRACKS=$tracks PLAYS_RUN=$$ wrk -t 2 -c "$CONNS" -d "${SECS}s" --timeout 10s \
	-s "$ROOT/bench/plays/post.lua" "${AUTH[@]}" "$URL/api/v1/plays" | grep '^wrk ')
log "chorus: $line"
reqs=$(kv "$line" requests) non2xx=$(kv "$line" non2xx) us=$(kv "$line" duration_us)
acked=$(( (reqs - non2xx) * 100 ))
chorus_pps=$(calc '%.0f' "$acked / ($us / 1e6)")
rows=$(sqlite3 "$RUN/data/plays.db" 'SELECT COUNT(*) FROM plays')
[ "$rows" -ge "$acked" ] || die "plays.db holds $rows rows, fewer than the $acked acknowledged"
cpu=$(awk '{print ($14 + $15)}' "/proc/$CHORUS_PID/stat")
log "chorus: $acked plays acknowledged ($rows rows in plays.db, $non2xx non-2xx answers), $chorus_pps plays/s, p99 $(kv "$line" lat_p99_ms) ms, server CPU $(calc '%.1f' "$cpu / $(getconf CLK_TCK)") s"
[ -n "${PLAYS_ONLY_CHORUS:-}" ] && exit 0 # profiling: chorus alone
kill "$CHORUS_PID"; wait "$CHORUS_PID" 2>/dev/null || true; CHORUS_PID=

# ---- PostgreSQL
PGDIR=$(mktemp -d /tmp/chorus-bench-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
pgport=$(free_port)
"${AS_PG[@]}" "$PG_BIN/initdb" -A trust --no-sync -U postgres -D "$PGDIR/data" >"$RUN/initdb.log" 2>&1 ||
	{ cat "$RUN/initdb.log" >&2; die "initdb failed"; }
"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/pg.log" \
	-o "-p $pgport -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=on -c synchronous_commit=on" \
	-w start >/dev/null || { cat "$PGDIR/pg.log" >&2; die "postgres did not start"; }
PSQL=(psql -X -q -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "CREATE TABLE plays (id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
	track_id BIGINT NOT NULL, started_at BIGINT NOT NULL, ms_played BIGINT NOT NULL,
	location TEXT, zone TEXT, device TEXT, offline BOOLEAN NOT NULL DEFAULT false,
	received_at BIGINT NOT NULL, shipped BOOLEAN NOT NULL DEFAULT false);"
log "postgres: $("${PSQL[@]}" -At -c 'SELECT version()' | cut -c1-40); fsync=$("${PSQL[@]}" -At -c 'SHOW fsync') synchronous_commit=$("${PSQL[@]}" -At -c 'SHOW synchronous_commit')"
# One transaction: a multi-row INSERT of 100 events, ids unique per client
# and transaction (a random 53-bit base; ON CONFLICT would absorb a clash),
# started an hour or two ago, ms_played as post.lua sends it.
first=${tracks%%,*}
tid=$((16#${first%%:*})) dur=${first#*:}
t0_ms=$(( ($(date +%s) / 3600 * 3600 - 2 * 3600) * 1000 ))
{
	echo '\set base random(1, 9000000000000000)'
	printf 'INSERT INTO plays (event_id, track_id, started_at, ms_played, location, zone, device, offline, received_at) VALUES\n'
	for i in $(seq 1 100); do
		sep=","; [ "$i" = 100 ] && sep=""
		printf "(:client_id || '-' || :base || '-%d', %d, %d, %d, 'Shop %d', 'Bar', 'pi-%d', false, %d)%s\n" \
			"$i" "$tid" $((t0_ms + i * 1000)) $((1000 + i < dur ? 1000 + i : dur)) $((i % 10)) $((i % 4)) $((t0_ms + 3600000)) "$sep"
	done
	echo 'ON CONFLICT (event_id) DO NOTHING;'
} >"$RUN/insert.sql"
out=$(pgbench -n -M prepared -c "$CONNS" -j 2 -T "$SECS" -h 127.0.0.1 -p "$pgport" -U postgres \
	-f "$RUN/insert.sql" postgres 2>&1) || { printf '%s\n' "$out" >&2; die "pgbench failed"; }
tps=$(printf '%s\n' "$out" | awk -F'[ =]+' '/^tps/ {print $2; exit}')
pgrows=$("${PSQL[@]}" -At -c 'SELECT count(*) FROM plays')
pg_pps=$(calc '%.0f' "$tps * 100")
log "postgres: $(printf '%s\n' "$out" | grep -E '^(latency average|tps)' | tr '\n' ' ')-> $pg_pps plays/s ($pgrows rows)"
echo "plays chorus_pps=$chorus_pps pg_pps=$pg_pps ratio=$(calc '%.2f' "$chorus_pps / $pg_pps") seconds=$SECS conns=$CONNS batch=100"
