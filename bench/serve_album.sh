#!/usr/bin/env bash
# Figure 3: GET /api/v1/albums/{id} requests/s against nginx serving a
# static file with the same bytes, same run.
#
#   bench/serve_album.sh [--reps N] [--seconds S] [--conns N]
#
# The library (20 tracks, one album) is ingested; the album's JSON body as
# chorus answers it is saved to a file in nginx's root, so both send the
# same body (the heads differ a little). Then, REPS times alternating the
# order, wrk -t 2 -c CONNS -d S on one URL per server. Last line:
#
#   serve_album ratio=R chorus_rps=C nginx_rps=N body_bytes=B
#
# ratio: chorus req/s ÷ nginx req/s (goal >= 0.8). cpu_ratio: chorus ÷
# nginx requests per CPU-second of the server (utime+stime), which holds
# up better than req/s when other work on the machine steals the cores.
#
# Environment: as serve_hit.sh; BENCH_REPS (3), BENCH_SECONDS (8).
set -eu
REPS=${BENCH_REPS:-3}
SECS=${BENCH_SECONDS:-8}
CONNS=100
while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift ;;
	--seconds) SECS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	-h|--help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "serve_album.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/serve/lib.sh"

make_library
ingest_library "$RUN/data"
start_chorus "$RUN/data"
album=$("${CURL[@]}" "${AUTH[@]}" "$CHORUS_URL/api/v1/tracks?limit=1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["tracks"][0]["album_id"])')
mkdir -p "$RUN/www/albums"
"${CURL[@]}" "${AUTH[@]}" -o "$RUN/www/albums/$album.json" "$CHORUS_URL/api/v1/albums/$album"
body=$(stat -c %s "$RUN/www/albums/$album.json")
[ "$body" -gt 100 ] || die "album body of $body bytes"
start_nginx "$RUN/www"
echo "/api/v1/albums/$album" >"$RUN/chorus.paths"
echo "/albums/$album.json" >"$RUN/nginx.paths"
cmp -s <("${CURL[@]}" "${AUTH[@]}" "$CHORUS_URL/api/v1/albums/$album") <("${CURL[@]}" "$NGINX_URL/albums/$album.json") || die "bodies differ"
log "bench: album $album, $body bytes of JSON ($TRACKS tracks); binary $CHORUS_BIN; $(nproc) cores; wrk -t 2 -c $CONNS -d ${SECS}s"

printf '%-4s %-7s %9s %8s %10s %7s %9s\n' rep server req/s cpu_s req/cpu_s errors p99_ms >&2
declare -A RPS RPC
for r in $(seq 1 "$REPS"); do
	if [ $((r % 2)) = 1 ]; then order="nginx chorus"; else order="chorus nginx"; fi
	for s in $order; do
		if [ "$s" = chorus ]; then url=$CHORUS_URL; else url=$NGINX_URL; fi
		line=$(run_wrk "$s" "$url" "$RUN/$s.paths" "$CONNS" "$SECS")
		errs=$(($(kv "$line" errors_connect) + $(kv "$line" errors_read) + $(kv "$line" errors_write) + $(kv "$line" errors_timeout) + $(kv "$line" non2xx)))
		RPS[$s]="${RPS[$s]:-} $(kv "$line" rps)"
		rpc=$(calc '%.0f' "$(kv "$line" requests) / ($(kv "$line" cpu_s) + 0.005)")
		RPC[$s]="${RPC[$s]:-} $rpc"
		printf '%-4s %-7s %9s %8s %10s %7s %9s\n' "$r" "$s" "$(kv "$line" rps)" "$(kv "$line" cpu_s)" "$rpc" "$errs" "$(kv "$line" lat_p99_ms)" >&2
	done
done
# shellcheck disable=SC2086
ch=$(median ${RPS[chorus]}) ng=$(median ${RPS[nginx]})
# shellcheck disable=SC2086
chc=$(median ${RPC[chorus]}) ngc=$(median ${RPC[nginx]})
log "median: chorus $ch req/s ($chc per CPU-second), nginx $ng req/s ($ngc per CPU-second)"
echo "serve_album ratio=$(calc '%.2f' "$ch / $ng") chorus_rps=$ch nginx_rps=$ng cpu_ratio=$(calc '%.2f' "$chc / $ngc") chorus_req_per_cpu_s=$chc nginx_req_per_cpu_s=$ngc body_bytes=$body conns=$CONNS reps=$REPS seconds=$SECS"
