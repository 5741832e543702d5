# Shared by bench/bootstrap.sh, bench/replication_lag.sh and bench/plays_ship.sh:
# a throwaway PostgreSQL cluster (Debian's 15, run as user postgres on a
# loopback port, fully detached), chorus cluster nodes (`chorus serve --db`,
# detached, stopped by pid), an admin API key they accept (every endpoint
# but /health, / and POST /api/v1/session wants one) and small helpers.
# Source it after setting BENCH_NAME; it sets ROOT, PY, CHORUS_BIN
# (building build/release/chorus when unset), WORK (a scratch directory
# removed at exit) and installs the cleanup trap.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.3f\", $(now) - $1}"; }
calc() { awk "BEGIN{printf \"$1\", $2}"; }
mb() { awk "BEGIN{printf \"%.0f\", $1 / 1048576}"; }

if [ -z "${CHORUS_BIN:-}" ]; then
	(cd "$ROOT" && make -s VARIANT=release >&2)
	CHORUS_BIN=$ROOT/build/release/chorus
fi
case $CHORUS_BIN in /*) ;; *) CHORUS_BIN=$ROOT/$CHORUS_BIN ;; esac
[ -x "$CHORUS_BIN" ] || { log "$BENCH_NAME: no binary at $CHORUS_BIN"; exit 1; }
[ "$(id -u)" = 0 ] || { log "$BENCH_NAME: runs PostgreSQL as user postgres: run as root"; exit 1; }
for t in psql sqlite3 curl "$PGBIN/initdb" "$PGBIN/pg_ctl"; do
	[ -e "$t" ] || command -v "$t" >/dev/null ||
		{ log "$BENCH_NAME: $t is missing (scripts/deps.sh installs it)"; exit 1; }
done
"$PY" -c 'import psycopg2' 2>/dev/null ||
	{ log "$BENCH_NAME: python3-psycopg2 is missing"; exit 1; }

WORK=$(mktemp -d "/tmp/chorus-$BENCH_NAME.XXXXXX")
chmod 755 "$WORK"
PGDATA_DIR=$WORK/pg
PGPORT=
NODE_PIDS=()

cleanup() {
	local p
	for p in "${NODE_PIDS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	[ "${BENCH_KEEP_WORK:-0}" = 1 ] && { log "$BENCH_NAME: kept $WORK"; return; }
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# pg_init: initdb (trust, C locale) with settings for a durable server on
# this 2-core, 24 GB machine: fsync and synchronous_commit on (as in
# production), 1 GB of shared buffers, checkpoints kept out of the way.
pg_init() {
	PGPORT=$(free_port)
	mkdir -p "$PGDATA_DIR"
	chown postgres: "$PGDATA_DIR"
	chmod 700 "$PGDATA_DIR"
	runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA_DIR" -A trust --no-sync -E UTF8 \
		--locale=C -U postgres >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; exit 1; }
	cat >>"$PGDATA_DIR/postgresql.conf" <<EOF
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA_DIR'
max_connections = 100
shared_buffers = 1GB
maintenance_work_mem = 512MB
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 8GB
checkpoint_timeout = 30min
jit = off
EOF
	pg_start
	psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE chorus"
	CONNINFO="host=127.0.0.1 port=$PGPORT dbname=chorus user=postgres"
}
pg_start() {
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 start >/dev/null ||
		{ tail -20 "$PGDATA_DIR/server.log" >&2; exit 1; }
}
pg_stop() {
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null
}
psqlq() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d chorus "$@"; }
pgval() { psqlq -At -c "$1"; }

# chorus_schema: the cluster schema as this binary makes it (tables,
# triggers), by running a command that connects once. A new database has
# no keys: the next node_start makes one.
chorus_schema() {
	"$CHORUS_BIN" report --db "$CONNINFO" --data "$WORK/schema-node" >/dev/null 2>"$WORK/schema.log" ||
		{ cat "$WORK/schema.log" >&2; exit 1; }
	rm -rf "$WORK/schema-node"
	CHORUS_KEY=
}

# node_key PORT: CHORUS_KEY, an admin API key in the cluster's database
# (`chorus key create --db`, its last stdout line; made once per database),
# once the node on PORT accepts it (GET /api/v1/session answers 200: a new
# key reaches a node's read model within about a second).
CHORUS_KEY=
node_key() {
	local out code=
	if [ -z "$CHORUS_KEY" ]; then
		out=$("$CHORUS_BIN" key create --role admin --name bench --db "$CONNINFO" --data "$WORK/key-node" 2>"$WORK/key.log") ||
			{ cat "$WORK/key.log" >&2; exit 1; }
		rm -rf "$WORK/key-node"
		CHORUS_KEY=$(printf '%s\n' "$out" | tail -1)
	fi
	for _ in $(seq 1 200); do
		code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CHORUS_KEY" \
			"http://127.0.0.1:$1/api/v1/session") || true
		[ "$code" = 200 ] && return 0
		sleep 0.05
	done
	log "$BENCH_NAME: the node on port $1 does not accept the admin key (GET /api/v1/session: $code)"
	exit 1
}

# node_start NAME DATADIR [extra serve args...]: a cluster node, detached;
# returns once it printed its "serving" line (after the bootstrap) and
# accepts CHORUS_KEY (node_key, not timed). Sets NODE_PID, NODE_PORT and
# NODE_START_S (seconds from exec to "serving", 20 ms resolution).
node_start() {
	local name=$1 dir=$2 i t0
	shift 2
	: >"$WORK/$name.out"
	t0=$(now)
	setsid "$CHORUS_BIN" serve --db "$CONNINFO" --data "$dir" --listen 127.0.0.1:0 "$@" \
		>"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
	NODE_PID=$!
	NODE_PIDS+=("$NODE_PID")
	for i in $(seq 1 30000); do
		NODE_PORT=$(sed -n 's|.*serving .* on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$WORK/$name.out")
		if [ -n "$NODE_PORT" ]; then
			NODE_START_S=$(since "$t0")
			node_key "$NODE_PORT"
			return 0
		fi
		kill -0 "$NODE_PID" 2>/dev/null || break
		sleep 0.02
	done
	log "$BENCH_NAME: chorus serve ($name) did not start:"
	cat "$WORK/$name.err" >&2
	exit 1
}
node_stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
node_json() { curl -s -H "Authorization: Bearer $CHORUS_KEY" "http://127.0.0.1:$1/api/v1/node"; }

# catalog_load N DIR: fills PostgreSQL's catalog tables with the synthetic
# catalog of N tracks (bench/cluster/catalog_gen.py, made once into DIR and
# reused), through COPY, so the triggers number every row. Sets LOAD_S.
catalog_load() {
	local n=$1 dir=$2 t0
	if [ ! -f "$dir/.complete" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		log "data: generating $n tracks into $dir..."
		"$PY" "$ROOT/bench/cluster/catalog_gen.py" --tracks "$n" --out "$dir" >&2 || exit 1
		touch "$dir/.complete"
	fi
	t0=$(now)
	psqlq <<EOF
\\copy artists (id, name, name_key) FROM '$dir/artists.csv' CSV
\\copy albums (id, title, title_key, artist_id, year) FROM '$dir/albums.csv' CSV
\\copy tracks (id, title, title_key, artist_id, album_id, track_number, disc_number, year, genre, isrc, label, duration_ms, codec, mime_type, bitrate, sample_rate, channels, size, chunk_size, chunk_count, key, blob, content_hash, source_path, source_size, source_mtime_ns, created_at, updated_at) FROM '$dir/tracks.csv' CSV
VACUUM ANALYZE;
CHECKPOINT;
EOF
	LOAD_S=$(since "$t0")
}
