#!/usr/bin/env bash
# Figure 6: cache-hit whole-track streams over HTTPS against nginx with TLS
# on the same certificate and the same files, in the same run.
#
#   bench/serve_tls.sh [--reps N] [--seconds S] [--conns "100 1000"]
#
# A self-signed P-256 certificate is made in the run dir; chorus serves
# it (serve --tls-cert/--tls-key) and nginx too (ssl_certificate), both
# with TLS 1.2 and 1.3 and the same suites in the same order (TLS 1.3
# AES-128-GCM is what both negotiate; the script prints it). 20 WAV tracks
# of exactly 4 MiB (BENCH_TRACKS) are ingested; chorus's cache is warmed
# by fetching each track once; nginx serves the original files (read once,
# so both serve from the page cache; nginx cannot use sendfile under TLS
# either: it reads into its buffers and SSL_writes, as chorus does). Then,
# for each connection count and REPS times (alternating which server goes
# first),
#
#   wrk -t 2 -c CONNS -d S -H "Authorization: Bearer KEY"  (https; the key
#       is an admin API key from `chorus key create`, sent to nginx too)
#
# and the server's utime+stime (/proc/PID/stat; nginx: master + workers)
# before and after. Prints req/s, MB/s, CPU-seconds per GB served for
# every run, and as the last line:
#
#   serve_tls ratio=R cpu_ratio=C ...
#
# ratio: the lowest chorus÷nginx req/s over the connection counts (goal
# >= 0.9); cpu_ratio: the highest chorus÷nginx CPU-s/GB (goal <= 1.1).
#
# Environment: as bench/serve_hit.sh (CHORUS_BIN, BENCH_DIR, BENCH_TRACKS,
# BENCH_REPS (4), BENCH_SECONDS (6), BENCH_SECONDS_BIG (15),
# BENCH_KEEP_RUN=1); BENCH_SERVE_ARGS: more `chorus serve` arguments.
set -eu
REPS=${BENCH_REPS:-4}
SECS=${BENCH_SECONDS:-6}
SECS_BIG=${BENCH_SECONDS_BIG:-15}
CONNS="100 1000"
while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift ;;
	--seconds) SECS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	-h|--help) sed -n '2,32p' "$0"; exit 0 ;;
	*) echo "serve_tls.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/serve/lib.sh"
command -v openssl >/dev/null || die "openssl is required"

CERT=$RUN/tls.crt
KEY=$RUN/tls.key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "$KEY" -out "$CERT" \
	>"$RUN/openssl.log" 2>&1 || { cat "$RUN/openssl.log" >&2; die "openssl req failed"; }
TCURL=("${CURL[@]}" --cacert "$CERT")
# The suites src/http/tls.c sets, for nginx.
TLS12="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
TLS13="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

start_chorus_tls() { # DATA: sets CHORUS_PID, CHORUS_URL, API_KEY
	local data=$1 port
	port=$(free_port)
	# shellcheck disable=SC2086
	setsid "$CHORUS_BIN" serve --data "$data" --listen "127.0.0.1:$port" --cache-size 4G \
		--tls-cert "$CERT" --tls-key "$KEY" ${BENCH_SERVE_ARGS:-} \
		>"$RUN/chorus.out" 2>"$RUN/chorus.err" </dev/null &
	CHORUS_PID=$!
	PIDS+=("$CHORUS_PID")
	CHORUS_URL=https://127.0.0.1:$port
	for _ in $(seq 100); do
		if grep -q "serving .* on https://127.0.0.1:$port/" "$RUN/chorus.out" 2>/dev/null; then
			API_KEY=$("$CHORUS_BIN" key create --role admin --name bench --data "$data" | tail -1)
			return 0
		fi
		kill -0 "$CHORUS_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$RUN/chorus.out" "$RUN/chorus.err" >&2
	die "chorus did not start"
}

# nginx as bench/serve/lib.sh starts it, with TLS on the same pair and
# suites, a 16 KiB ssl_buffer_size (its default, a full record).
start_nginx_tls() { # ROOTDIR: sets NGINX_PID, NGINX_URL
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
		listen 127.0.0.1:$port ssl backlog=4096 reuseport;
		ssl_certificate $CERT;
		ssl_certificate_key $KEY;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_ciphers $TLS12;
		ssl_conf_command Ciphersuites $TLS13;
		ssl_prefer_server_ciphers on;
		ssl_session_cache shared:SSL:10m;
		root $root;
		location = /health { default_type application/json; return 200 '{"status":"ok"}\n'; }
	}
}
NGX
	nginx_launch "$dir" "$port" https TCURL
}

negotiated() { # URL: "TLSv1.3 TLS_AES_128_GCM_SHA256"
	$PY -c '
import socket, ssl, sys
host, port = sys.argv[1].split(":")
c = ssl.create_default_context(cafile=sys.argv[2])
with c.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host) as t:
    print(t.version(), t.cipher()[0])
' "${1#https://}" "$CERT"
}

make_library
ingest_library "$RUN/data"
start_chorus_tls "$RUN/data"
start_nginx_tls "$LIB"
AUTH="Authorization: Bearer $API_KEY"
"${TCURL[@]}" -H "$AUTH" "$CHORUS_URL/api/v1/tracks?limit=500" | $PY -c '
import json, sys
ts = sorted(json.load(sys.stdin)["tracks"], key=lambda t: t["title"])
with open(sys.argv[1], "w") as a, open(sys.argv[2], "w") as b:
    for t in ts:
        a.write(t["stream_url"] + "\n")
        b.write("/" + t["title"] + ".wav\n")
' "$RUN/chorus.paths" "$RUN/nginx.paths"
[ "$(wc -l <"$RUN/chorus.paths")" = "$TRACKS" ] || die "chorus lists $(wc -l <"$RUN/chorus.paths") tracks, not $TRACKS"
while read -r p; do "${TCURL[@]}" -H "$AUTH" -o /dev/null "$CHORUS_URL$p"; done <"$RUN/chorus.paths"
while read -r p; do "${TCURL[@]}" -o /dev/null "$NGINX_URL$p"; done <"$RUN/nginx.paths"
# Byte-exact over TLS from both before anything is timed.
p1=$(head -1 "$RUN/chorus.paths") p2=$(head -1 "$RUN/nginx.paths")
[ "$("${TCURL[@]}" -H "$AUTH" "$CHORUS_URL$p1" | sha256sum)" = "$("${TCURL[@]}" "$NGINX_URL$p2" | sha256sum)" ] ||
	die "chorus and nginx serve different bytes for $p2"
node=$("${TCURL[@]}" -H "$AUTH" "$CHORUS_URL/api/v1/node")
log "chorus node after warming: $node"
log "negotiated: chorus $(negotiated "$CHORUS_URL"), nginx $(negotiated "$NGINX_URL")"
log "bench: $TRACKS tracks x $TRACK_BYTES bytes over TLS; binary $CHORUS_BIN ${BENCH_SERVE_ARGS:-}; $(nproc) cores; wrk -t 2 -d ${SECS}s (${SECS_BIG}s from 1000 connections)"

printf '%-6s %-4s %-7s %9s %9s %8s %9s %6s %s\n' conns rep server req/s MB/s cpu_s cpu_s/GB errors p99_ms >&2
summary=""
min_ratio=""
max_cpu=""
for c in $CONNS; do
	declare -A RPS=() CPG=()
	for r in $(seq 1 "$REPS"); do
		if [ $((r % 2)) = 1 ]; then order="nginx chorus"; else order="chorus nginx"; fi
		for s in $order; do
			if [ "$s" = chorus ]; then url=$CHORUS_URL paths=$RUN/chorus.paths; else url=$NGINX_URL paths=$RUN/nginx.paths; fi
			secs=$SECS
			[ "$c" -lt 1000 ] || secs=$SECS_BIG
			line=$(run_wrk "$s" "$url" "$paths" "$c" "$secs" -H "$AUTH")
			bytes=$(kv "$line" bytes) cpu=$(kv "$line" cpu_s)
			cpg=$(calc '%.3f' "$cpu / ($bytes / 1e9)")
			errs=$(($(kv "$line" errors_connect) + $(kv "$line" errors_read) + $(kv "$line" errors_write) + $(kv "$line" errors_timeout) + $(kv "$line" non2xx)))
			RPS[$s]="${RPS[$s]:-} $(kv "$line" rps)"
			CPG[$s]="${CPG[$s]:-} $cpg"
			printf '%-6s %-4s %-7s %9s %9s %8s %9s %6s %s\n' "$c" "$r" "$s" "$(kv "$line" rps)" "$(kv "$line" mbps)" "$cpu" "$cpg" "$errs" "$(kv "$line" lat_p99_ms)" >&2
			[ "$errs" = 0 ] || log "  errors: $line"
		done
	done
	# shellcheck disable=SC2086
	ch_rps=$(median ${RPS[chorus]}) ng_rps=$(median ${RPS[nginx]})
	# shellcheck disable=SC2086
	ch_cpg=$(median ${CPG[chorus]}) ng_cpg=$(median ${CPG[nginx]})
	tr=$(calc '%.2f' "$ch_rps / $ng_rps")
	cr=$(calc '%.2f' "$ch_cpg / $ng_cpg")
	log "median c=$c: chorus $ch_rps req/s ($(calc '%.0f' "$ch_rps * $TRACK_BYTES / 1e6") MB/s) $ch_cpg CPU-s/GB; nginx $ng_rps req/s ($(calc '%.0f' "$ng_rps * $TRACK_BYTES / 1e6") MB/s) $ng_cpg CPU-s/GB; throughput ratio $tr, CPU/GB ratio $cr"
	summary="$summary tput_c$c=$tr cpu_c$c=$cr chorus_rps_c$c=$ch_rps nginx_rps_c$c=$ng_rps chorus_cpugb_c$c=$ch_cpg nginx_cpugb_c$c=$ng_cpg"
	[ -z "$min_ratio" ] || [ "$(calc "%d" "($tr < $min_ratio)")" = 1 ] && min_ratio=$tr
	[ -z "$max_cpu" ] || [ "$(calc "%d" "($cr > $max_cpu)")" = 1 ] && max_cpu=$cr
	unset RPS CPG
done
echo "serve_tls ratio=$min_ratio cpu_ratio=$max_cpu$summary reps=$REPS seconds=$SECS/$SECS_BIG"
