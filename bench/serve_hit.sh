#!/usr/bin/env bash
# Figure 1: cache-hit whole-track streams against nginx serving the same
# original files with sendfile, in the same run.
#
#   bench/serve_hit.sh [--reps N] [--seconds S] [--conns "100 1000"]
#
# 20 WAV tracks of exactly 4 MiB (BENCH_TRACKS) are ingested; chorus's
# cache is warmed by fetching each track once; nginx serves the original
# files (read once, so both serve from the page cache). Then, for each
# connection count and REPS times (alternating which server goes first),
#
#   wrk -t 2 -c CONNS -d S  (bench/serve/paths.lua: round-robin over the tracks;
#                           S is BENCH_SECONDS_BIG, 15, from 1,000 connections)
#
# and the server's utime+stime (/proc/PID/stat; nginx: master + workers)
# before and after. Prints req/s, MB/s, CPU-seconds per GB served for
# every run, and as the last line:
#
#   serve_hit ratio=R cpu_ratio=C ...
#
# ratio: the lowest chorus÷nginx req/s over the connection counts (goal
# >= 1.0); cpu_ratio: the highest chorus÷nginx CPU-s/GB (goal <= 1.0).
#
# Environment: CHORUS_BIN (default build/release/chorus, built when
# unset), BENCH_DIR (default build/bench-serve), BENCH_TRACKS (20),
# BENCH_REPS (4), BENCH_SECONDS (6), BENCH_SECONDS_BIG (15),
# BENCH_KEEP_RUN=1 keeps the run dir.
set -eu
REPS=${BENCH_REPS:-4}
SECS=${BENCH_SECONDS:-6}
SECS_BIG=${BENCH_SECONDS_BIG:-15} # for >= 1000 connections: a 4 MiB request takes ~5 s there
CONNS="100 1000"
while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift ;;
	--seconds) SECS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	-h|--help) sed -n '2,30p' "$0"; exit 0 ;;
	*) echo "serve_hit.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/serve/lib.sh"

start_both_warm
node=$("${CURL[@]}" "${AUTH[@]}" "$CHORUS_URL/api/v1/node")
log "chorus node after warming: $node"
log "bench: $TRACKS tracks x $TRACK_BYTES bytes; binary $CHORUS_BIN; $(nproc) cores; wrk -t 2 -d ${SECS}s (${SECS_BIG}s from 1000 connections)"

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
			line=$(run_wrk "$s" "$url" "$paths" "$c" "$secs")
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
echo "serve_hit ratio=$min_ratio cpu_ratio=$max_cpu$summary reps=$REPS seconds=$SECS/$SECS_BIG"
