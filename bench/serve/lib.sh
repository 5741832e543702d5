# Shared by bench/serve_*.sh (sourced, not run): the binary, the library of
# 4 MiB tracks, chorus and nginx started and stopped by pid, an admin API
# key for chorus, CPU and RSS readings, wrk runs. Not a benchmark itself
# (bench/run.sh runs bench/*.sh only).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SB=$ROOT/bench/serve
BENCH_DIR=${BENCH_DIR:-$ROOT/build/bench-serve}
TRACKS=${BENCH_TRACKS:-20}
TRACK_BYTES=$((4 << 20))
CURL=(curl -s --noproxy '*')
PY=/usr/bin/python3
HZ=$(getconf CLK_TCK)

log() { printf '%s\n' "$*" >&2; }
die() { log "$(basename "$0"): $*"; exit 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
calc() { awk "BEGIN{printf \"$1\", $2}"; }

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ -z "${CHORUS_BIN:-}" ]; then
	(cd "$ROOT" && make -s VARIANT=release) >&2
	CHORUS_BIN=$ROOT/build/release/chorus
fi
case $CHORUS_BIN in /*) ;; *) CHORUS_BIN=$ROOT/$CHORUS_BIN ;; esac
[ -x "$CHORUS_BIN" ] || die "no binary at $CHORUS_BIN"
for t in wrk nginx curl; do command -v $t >/dev/null || die "$t is required"; done

RUN=$BENCH_DIR/run.$$
mkdir -p "$RUN"
PIDS=()
stop_all() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	PIDS=()
}
cleanup() {
	stop_all
	if [ "${BENCH_KEEP_RUN:-0}" = 1 ]; then log "kept $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The library: TRACKS WAV files of exactly 4 MiB (noise, all different),
# kept under BENCH_DIR/library-N between runs; ingested into a data dir
# under BENCH_DIR (ingest_library DATA).
LIB=$BENCH_DIR/library-$TRACKS
make_library() {
	if [ ! -f "$LIB/.complete" ]; then
		rm -rf "$LIB"
		log "library: writing $TRACKS WAV files of $TRACK_BYTES bytes"
		$PY "$SB/mkwav.py" "$LIB" "$TRACKS" "$TRACK_BYTES" track
		touch "$LIB/.complete"
	fi
}
ingest_library() { # DATA
	rm -rf "$1"
	unset "KEYS[$1]"
	"$CHORUS_BIN" ingest --no-progress --data "$1" "$LIB" >"$RUN/ingest.log" 2>&1 ||
		{ cat "$RUN/ingest.log" >&2; die "ingest failed"; }
	grep -q "^ingest: $TRACKS added" "$RUN/ingest.log" || { cat "$RUN/ingest.log" >&2; die "ingest did not add every track"; }
}

# Every chorus endpoint but /health, / and POST /api/v1/session wants
# credentials: the requests to chorus (never those to nginx) carry an admin
# key, "${AUTH[@]}" in curl's and wrk's arguments.
declare -A KEYS=()
AUTH=()
# chorus_key DATA [--db CONNINFO]: an admin API key in the catalog DATA
# (or the cluster's database) uses, made once per data directory with
# `chorus key create` (the key is its last stdout line); sets CHORUS_KEY
# and AUTH.
chorus_key() {
	local data=$1 out
	shift
	if [ -z "${KEYS[$data]:-}" ]; then
		out=$("$CHORUS_BIN" key create --role admin --name bench --data "$data" "$@" 2>"$RUN/key.err") ||
			{ cat "$RUN/key.err" >&2; die "chorus key create failed"; }
		KEYS[$data]=$(printf '%s\n' "$out" | tail -1)
	fi
	CHORUS_KEY=${KEYS[$data]}
	AUTH=(-H "Authorization: Bearer $CHORUS_KEY")
}
# key_wait URL: until the node at URL accepts CHORUS_KEY (GET
# /api/v1/session answers 200: at once for one node; a cluster's nodes
# learn of a new key from PostgreSQL within about a second).
key_wait() {
	local code
	for _ in $(seq 200); do
		code=$("${CURL[@]}" "${AUTH[@]}" -o /dev/null -w '%{http_code}' "$1/api/v1/session") || true
		[ "$code" = 200 ] && return 0
		sleep 0.05
	done
	die "$1 does not accept the admin key (GET /api/v1/session: $code)"
}

# start_chorus DATA [extra serve args]: sets CHORUS_PID, CHORUS_URL, and
# CHORUS_KEY and AUTH (chorus_key DATA, accepted by the node).
start_chorus() {
	local data=$1 port
	shift
	port=$(free_port)
	setsid "$CHORUS_BIN" serve --data "$data" --listen "127.0.0.1:$port" --cache-size 4G "$@" \
		>"$RUN/chorus.out" 2>"$RUN/chorus.err" </dev/null &
	CHORUS_PID=$!
	PIDS+=("$CHORUS_PID")
	CHORUS_URL=http://127.0.0.1:$port
	for _ in $(seq 100); do
		if grep -q "serving .* on http://127.0.0.1:$port/" "$RUN/chorus.out" 2>/dev/null; then
			chorus_key "$data"
			key_wait "$CHORUS_URL"
			return 0
		fi
		kill -0 "$CHORUS_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$RUN/chorus.out" "$RUN/chorus.err" >&2
	die "chorus did not start"
}
stop_pid() { # PID
	kill "$1" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
	kill -9 "$1" 2>/dev/null || true
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}
# Runs nginx on DIR/nginx.conf (written by the caller, listening on PORT,
# with a /health location) and waits until its workers answer /health
# through curl (the array CURL_VAR names; URL_SCHEME http or https): sets
# NGINX_PID and NGINX_URL.
nginx_launch() { # DIR PORT URL_SCHEME CURL_VAR
	local dir=$1 port=$2 scheme=$3
	local -n curl_cmd=$4
	setsid nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' \
		>"$RUN/nginx.out" 2>"$RUN/nginx.err" </dev/null &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	NGINX_URL=$scheme://127.0.0.1:$port
	for _ in $(seq 100); do
		"${curl_cmd[@]}" -o /dev/null "$NGINX_URL/health" && [ "$(pgrep -P "$NGINX_PID" | wc -l)" -ge 2 ] && return 0
		kill -0 "$NGINX_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$RUN/nginx.err" "$dir/logs/error.log" >&2
	die "nginx did not start"
}


# start_nginx ROOTDIR: 2 workers, sendfile, tcp_nopush, keep-alive, no
# access log; sets NGINX_PID (the master), NGINX_URL.
start_nginx() {
	local root=$1 port dir=$RUN/nginx user=
	port=$(free_port)
	mkdir -p "$dir/logs" "$dir/tmp"
	[ "$(id -u)" = 0 ] && user="user root root;"
	cat >"$dir/nginx.conf" <<NGX
$user
worker_processes 2;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 12000; use epoll; multi_accept on; }
http {
	types { audio/wav wav; application/json json; }
	default_type application/octet-stream;
	access_log off;
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_timeout 300s;
	keepalive_requests 1000000;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	server {
		listen 127.0.0.1:$port backlog=4096 reuseport;
		root $root;
		location = /health { default_type application/json; return 200 '{"status":"ok"}\n'; }
	}
}
NGX
	nginx_launch "$dir" "$port" http CURL
}

# Processes that make up a server: chorus is one process; nginx is its
# master and workers.
server_pids() { # chorus|nginx
	if [ "$1" = chorus ]; then echo "$CHORUS_PID"; else echo "$NGINX_PID" $(pgrep -P "$NGINX_PID"); fi
}
# utime+stime of the server's processes, in seconds.
cpu_seconds() { # chorus|nginx
	local p t=0
	for p in $(server_pids "$1"); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	calc '%.2f' "$t / $HZ"
}
# VmRSS of the server's processes, in KiB (nginx: master + workers).
rss_kib() { # chorus|nginx
	local p t=0
	for p in $(server_pids "$1"); do
		t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
	done
	echo "$t"
}

# stream_paths URL OUT: the tracks' stream paths, one a line, in the
# library's order (track001...), and a matching list of nginx paths. The
# paths drop the stream links' ?exp=..&sig=..: the requests send the key
# (a signed link is for players that cannot send a header).
stream_paths() { # CHORUS_URL OUT_CHORUS OUT_NGINX
	"${CURL[@]}" "${AUTH[@]}" "$1/api/v1/tracks?limit=500" | $PY -c '
import json, sys
ts = sorted(json.load(sys.stdin)["tracks"], key=lambda t: t["title"])
with open(sys.argv[1], "w") as a, open(sys.argv[2], "w") as b:
    for t in ts:
        a.write(t["stream_url"].split("?", 1)[0] + "\n")
        b.write("/" + t["title"] + ".wav\n")
' "$2" "$3"
	[ "$(wc -l <"$2")" = "$TRACKS" ] || die "chorus lists $(wc -l <"$2") tracks, not $TRACKS"
}

# run_wrk NAME URL PATHS CONNS SECONDS [wrk args]: runs wrk with the
# round-robin script, with the admin key unless NAME is nginx; prints the
# done() summary line (key=value pairs) and "cpu_s=" for the server NAME
# (chorus|nginx).
# start_both_warm: the library ingested, chorus and nginx started, the
# stream paths in $RUN/chorus.paths and $RUN/nginx.paths, and every track
# fetched once from each (chorus's cache and the page cache warm).
start_both_warm() {
	make_library
	ingest_library "$RUN/data"
	start_chorus "$RUN/data"
	start_nginx "$LIB"
	stream_paths "$CHORUS_URL" "$RUN/chorus.paths" "$RUN/nginx.paths"
	while read -r p; do "${CURL[@]}" "${AUTH[@]}" -o /dev/null "$CHORUS_URL$p"; done <"$RUN/chorus.paths"
	while read -r p; do "${CURL[@]}" -o /dev/null "$NGINX_URL$p"; done <"$RUN/nginx.paths"
}

run_wrk() {
	local name=$1 url=$2 paths=$3 conns=$4 secs=$5 c0 c1 line auth=()
	shift 5
	[ "$name" = nginx ] || auth=("${AUTH[@]}")
	c0=$(cpu_seconds "$name")
	WRK_PATHS=$paths wrk -t 2 -c "$conns" -d "${secs}s" --timeout 60s -s "$SB/paths.lua" "${auth[@]}" "$@" "$url" \
		>"$RUN/wrk-$name-$conns.out" 2>&1 || { cat "$RUN/wrk-$name-$conns.out" >&2; die "wrk failed"; }
	c1=$(cpu_seconds "$name")
	line=$(grep '^WRK ' "$RUN/wrk-$name-$conns.out" | tail -1)
	[ -n "$line" ] || { cat "$RUN/wrk-$name-$conns.out" >&2; die "wrk printed no summary"; }
	echo "${line#WRK } cpu_s=$(calc '%.2f' "$c1 - $c0")"
}
# kv LINE KEY: a value from a key=value line.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
