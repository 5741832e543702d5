#!/usr/bin/env bash
# Figure 2: 10,000 simultaneous connections downloading whole 4 MiB tracks
# (cache hits), chorus against nginx serving the original files, same run.
#
#   bench/serve_10k.sh [--conns N] [--seconds S]
#
# Same library, warming and servers as bench/serve_hit.sh; then for each
# server (nginx first)
#
#   wrk -t 2 -c 10000 -d S --timeout 60s  (paths.lua, round-robin)
#
# Success means no socket error of any kind (connect, read, write,
# timeout) and no non-2xx answer. Latency is wrk's per-request time (from
# sending the request to the last byte of the 4 MiB body) over the
# requests completed within S seconds; requests still running at the end
# are not counted, for either server. Last line:
#
#   serve_10k ratio=R ok=yes|no ...
#
# ratio: chorus p99 ÷ nginx p99 (goal <= 1.0, with ok=yes: 100 % success).
#
# Environment: as serve_hit.sh; BENCH_SECONDS (default 40).
set -eu
SECS=${BENCH_SECONDS:-40}
CONNS=10000
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) SECS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
	*) echo "serve_10k.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/serve/lib.sh"

start_both_warm
log "bench: $TRACKS tracks x $TRACK_BYTES bytes; binary $CHORUS_BIN; $(nproc) cores; wrk -t 2 -c $CONNS -d ${SECS}s"

printf '%-7s %8s %8s %8s %7s %7s %7s %7s %7s %9s %9s %9s %7s\n' server requests req/s MB/s connect read write timeout non2xx p50_ms p99_ms max_ms cpu_s >&2
declare -A P99 OK LINE
for s in nginx chorus; do
	if [ "$s" = chorus ]; then url=$CHORUS_URL paths=$RUN/chorus.paths; else url=$NGINX_URL paths=$RUN/nginx.paths; fi
	line=$(run_wrk "$s" "$url" "$paths" "$CONNS" "$SECS")
	LINE[$s]=$line
	errs=$(($(kv "$line" errors_connect) + $(kv "$line" errors_read) + $(kv "$line" errors_write) + $(kv "$line" errors_timeout) + $(kv "$line" non2xx)))
	P99[$s]=$(kv "$line" lat_p99_ms)
	if [ "$errs" = 0 ] && [ "$(kv "$line" requests)" -gt 0 ]; then OK[$s]=yes; else OK[$s]=no; fi
	printf '%-7s %8s %8s %8s %7s %7s %7s %7s %7s %9s %9s %9s %7s\n' "$s" "$(kv "$line" requests)" "$(kv "$line" rps)" "$(kv "$line" mbps)" \
		"$(kv "$line" errors_connect)" "$(kv "$line" errors_read)" "$(kv "$line" errors_write)" "$(kv "$line" errors_timeout)" "$(kv "$line" non2xx)" \
		"$(kv "$line" lat_p50_ms)" "$(kv "$line" lat_p99_ms)" "$(kv "$line" lat_max_ms)" "$(kv "$line" cpu_s)" >&2
	# let the connections wrk left open go away before the next server
	sleep 2
done
grep -E 'worker_connections|Too many open' "$RUN/nginx/logs/error.log" >&2 || true
grep -iE 'accept|warn|error' "$RUN/chorus.err" | tail -5 >&2 || true
ratio=$(calc '%.2f' "${P99[chorus]} / ${P99[nginx]}")
echo "serve_10k ratio=$ratio ok=${OK[chorus]} nginx_ok=${OK[nginx]} chorus_p99_ms=${P99[chorus]} nginx_p99_ms=${P99[nginx]} chorus_p50_ms=$(kv "${LINE[chorus]}" lat_p50_ms) nginx_p50_ms=$(kv "${LINE[nginx]}" lat_p50_ms) chorus_requests=$(kv "${LINE[chorus]}" requests) nginx_requests=$(kv "${LINE[nginx]}" requests) chorus_errors=$(kv "${LINE[chorus]}" errors_connect)/$(kv "${LINE[chorus]}" errors_read)/$(kv "${LINE[chorus]}" errors_write)/$(kv "${LINE[chorus]}" errors_timeout)/$(kv "${LINE[chorus]}" non2xx) conns=$CONNS seconds=$SECS"
