#!/usr/bin/env bash
# Store devices: N simulated devices (5,000) on one node, each holding its
# zone's event stream and asking its queue, against nginx answering the
# same requests from a static file with N idle keep-alive connections
# held, same run, same client.
#
#   bench/devices.sh [--devices N] [--conns C] [--seconds S] [--reps R]
#
# Set-up: 24 WAV tracks of 3:00-3:59 (8 kHz mono, ffmpeg sine tones, all
# different; kept under BENCH_DIR/devices-library between runs) ingested;
# `chorus serve --max-conns 12000`; through the API with an admin key
# (bench/devices.py setup): a location, a zone, a shuffled playlist of
# every track, an all-day schedule of it every day, and N store keys
# bound to the zone (POST /api/v1/keys over 4 keep-alive connections;
# one key per device). The queue asked is
# GET /api/v1/zones/Z/queue?hours=8&from=F, F the start of the hour the
# run began (fixed for the run): about 140 items, 52 KB, each with a
# stream URL signed for the asking key. Its body as chorus answers device
# 1 is saved as nginx's static file (nginx: 2 workers, as
# bench/serve/lib.sh starts it).
#
# Phase 1: after a warm-up (wrk on both for 3 s, 500 event streams opened
# and closed), the node's VmRSS (/proc/PID/status) is read; then
# bench/devices.py hold opens the N event streams (device i with key i,
# each checked for 200 text/event-stream and its "hello") and N idle
# keep-alive connections to nginx (each GETs the file once), and the RSS
# is read again, 3 s later: (after - before) / N is the RSS per device.
#
# Phase 2: with every stream and idle connection held, R times
# alternating which server goes first,
#
#   wrk -t 2 -c C -d S  (bench/serve/devices.lua: the same queue path,
#                        request i with key i mod N, to both servers)
#
# req/s, p50 and p99 latency, errors, the server's CPU-seconds. The
# ratio is the median chorus req/s over the median nginx req/s (goal >=
# 0.8); every stream must still be open after each run.
#
# Fan-out: R times, the holder PUTs the zone's schedule (alternating two
# weeks that differ in separation_minutes) and times, from just before
# the PUT is written, until each of the N streams has had
# "event: changed": p50, p99, max over the N (the events loop looks every
# 200 ms; the Python client reads the N events one after another, which
# adds its own few tens of ms to the tail).
#
# Last line:
#
#   devices ratio=R chorus_rps=.. nginx_rps=.. chorus_p50_ms=.. chorus_p99_ms=..
#           nginx_p50_ms=.. nginx_p99_ms=.. rss_per_device_bytes=..
#           fanout_p50_ms=.. fanout_p99_ms=.. fanout_max_ms=.. ...
#
# Environment: as serve_hit.sh (CHORUS_BIN, BENCH_DIR, BENCH_KEEP_RUN);
# BENCH_DEVICES (5000), BENCH_CONNS (300), BENCH_SECONDS (20),
# BENCH_REPS (3).
set -eu
DEVICES=${BENCH_DEVICES:-5000}
CONNS=${BENCH_CONNS:-300}
SECS=${BENCH_SECONDS:-20}
REPS=${BENCH_REPS:-3}
while [ $# -gt 0 ]; do
	case $1 in
	--devices) DEVICES=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	--seconds) SECS=$2; shift ;;
	--reps) REPS=$2; shift ;;
	-h|--help) sed -n '2,55p' "$0"; exit 0 ;;
	*) echo "devices.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/serve/lib.sh"
command -v ffmpeg >/dev/null || die "ffmpeg is required"

DLIB=$BENCH_DIR/devices-library
if [ ! -f "$DLIB/.complete" ]; then
	rm -rf "$DLIB"
	mkdir -p "$DLIB"
	log "library: 24 WAV tracks of 3:00-3:59 (ffmpeg)"
	for i in $(seq 1 24); do
		ffmpeg -nostdin -loglevel error -f lavfi \
			-i "sine=frequency=$((200 + i * 37)):sample_rate=8000:duration=$((180 + (i * 7) % 60))" \
			-ac 1 -c:a pcm_u8 -metadata title="Track $(printf %02d "$i")" \
			-metadata artist="Artist $(printf %02d "$i")" -metadata album="Bench Album" \
			"$DLIB/track$(printf %02d "$i").wav"
	done
	touch "$DLIB/.complete"
fi
rm -rf "$RUN/data"
"$CHORUS_BIN" ingest --no-progress --data "$RUN/data" "$DLIB" >"$RUN/ingest.log" 2>&1 ||
	{ cat "$RUN/ingest.log" >&2; die "ingest failed"; }
grep -q "^ingest: 24 added" "$RUN/ingest.log" || { cat "$RUN/ingest.log" >&2; die "ingest did not add every track"; }

start_chorus "$RUN/data" --max-conns 12000
$PY "$ROOT/bench/devices.py" setup "$CHORUS_URL" "$CHORUS_KEY" "$DEVICES" "$RUN" >"$RUN/setup.out" ||
	die "set-up failed"
setup=$(cat "$RUN/setup.out")
log "$setup"
zone=$(cat "$RUN/zone")
from=$(( $(date +%s) / 3600 * 3600 * 1000 ))
qpath="/api/v1/zones/$zone/queue?hours=8&from=$from"
key1=$(head -1 "$RUN/keys")
mkdir -p "$RUN/www"
"${CURL[@]}" -f -H "Authorization: Bearer $key1" -o "$RUN/www/queue.json" "$CHORUS_URL$qpath" ||
	die "GET $qpath failed"
body=$(stat -c %s "$RUN/www/queue.json")
items=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$RUN/www/queue.json")
[ "$items" -gt 50 ] || die "the queue has $items items"
keyn=$(tail -1 "$RUN/keys")
code=$("${CURL[@]}" -o "$RUN/queue-last.json" -w '%{http_code}' -H "Authorization: Bearer $keyn" "$CHORUS_URL$qpath")
[ "$code" = 200 ] || die "the last device's queue: $code"
start_nginx "$RUN/www"
cmp -s "$RUN/www/queue.json" <("${CURL[@]}" "$NGINX_URL/queue.json") || die "nginx's body differs"
log "bench: $DEVICES devices, 1 key each; queue $qpath: $items items, $body bytes (device $DEVICES's: $(stat -c %s "$RUN/queue-last.json")); binary $CHORUS_BIN; $(nproc) cores; wrk -t 2 -c $CONNS -d ${SECS}s, $REPS reps"

# wrk_run NAME: one wrk run on NAME's server; prints the WRK line and cpu_s.
wrk_run() { # chorus|nginx SECONDS
	local name=$1 secs=$2 url path c0 c1 line
	if [ "$name" = chorus ]; then url=$CHORUS_URL path=$qpath; else url=$NGINX_URL path=/queue.json; fi
	c0=$(cpu_seconds "$name")
	WRK_KEYS=$RUN/keys WRK_PATH=$path wrk -t 2 -c "$CONNS" -d "${secs}s" --timeout 30s \
		-s "$SB/devices.lua" "$url" >"$RUN/wrk-$name.out" 2>&1 ||
		{ cat "$RUN/wrk-$name.out" >&2; die "wrk failed"; }
	c1=$(cpu_seconds "$name")
	line=$(grep '^WRK ' "$RUN/wrk-$name.out" | tail -1)
	[ -n "$line" ] || { cat "$RUN/wrk-$name.out" >&2; die "wrk printed no summary"; }
	echo "${line#WRK } cpu_s=$(calc '%.2f' "$c1 - $c0")"
}

# The holder: started with its stdin on a fifo (fd 9 here), answering on
# $RUN/hold.out; ask CMD waits for its one-line answer.
HOLD=""
hold_start() { # hold args...
	rm -f "$RUN/hold.in" "$RUN/hold.out"
	mkfifo "$RUN/hold.in"
	$PY "$ROOT/bench/devices.py" hold "$@" <"$RUN/hold.in" >"$RUN/hold.out" 2>"$RUN/hold.err" &
	HOLD=$!
	PIDS+=("$HOLD")
	exec 9>"$RUN/hold.in"
	for _ in $(seq 1200); do
		grep -q '^ready' "$RUN/hold.out" && break
		kill -0 "$HOLD" 2>/dev/null || { cat "$RUN/hold.err" >&2; die "the holder failed"; }
		sleep 0.1
	done
	grep -q '^ready' "$RUN/hold.out" || die "the holder is not ready after 120 s"
}
ask() { # CMD...: the holder's answer
	local n
	n=$(wc -l <"$RUN/hold.out")
	echo "$*" >&9
	for _ in $(seq 600); do
		[ "$(wc -l <"$RUN/hold.out")" -gt "$n" ] && { tail -1 "$RUN/hold.out"; return 0; }
		kill -0 "$HOLD" 2>/dev/null || { cat "$RUN/hold.err" >&2; die "the holder died"; }
		sleep 0.1
	done
	die "the holder did not answer $*"
}
hold_stop() {
	echo quit >&9 || true
	exec 9>&-
	wait "$HOLD" || true
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$HOLD" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
	HOLD=""
}
established() { # PORT
	ss -Htn state established "( sport = :$1 )" | wc -l
}

# Warm-up: both servers answer the queue for a few seconds; chorus opens
# and closes 500 event streams (allocator arenas, first-use costs).
wrk_run chorus 3 >/dev/null
wrk_run nginx 3 >/dev/null
hold_start --sse "${CHORUS_URL#http://}" --zone "$zone" --keys "$RUN/keys" --n 500
hold_stop
sleep 3

# Phase 1: the streams held.
rss0=$(rss_kib chorus)
ngrss0=$(rss_kib nginx)
hold_start --sse "${CHORUS_URL#http://}" --zone "$zone" --keys "$RUN/keys" --n "$DEVICES" \
	--idle "${NGINX_URL#http://}" --idle-path /queue.json --idle-n "$DEVICES" --admin "$CHORUS_KEY"
log "holder: $(grep '^ready' "$RUN/hold.out")"
sleep 3
rss1=$(rss_kib chorus)
ngrss1=$(rss_kib nginx)
est=$(established "${CHORUS_URL##*:}")
[ "$est" -ge "$DEVICES" ] || die "chorus holds $est connections, not $DEVICES"
per=$(calc '%.0f' "($rss1 - $rss0) * 1024 / $DEVICES")
ngper=$(calc '%.0f' "($ngrss1 - $ngrss0) * 1024 / $DEVICES")
log "chorus VmRSS $rss0 KiB before, $rss1 KiB with $DEVICES event streams ($est connections): $per bytes per device; nginx $ngrss0 -> $ngrss1 KiB with $DEVICES idle connections: $ngper bytes each"

# Phase 2: the queue asked at full speed, everything held.
printf '%-4s %-7s %9s %8s %8s %8s %7s %10s %7s\n' rep server req/s p50_ms p99_ms max_ms cpu_s req/cpu_s errors >&2
declare -A RPS P50 P99 RPC
for r in $(seq 1 "$REPS"); do
	if [ $((r % 2)) = 1 ]; then order="nginx chorus"; else order="chorus nginx"; fi
	for s in $order; do
		line=$(wrk_run "$s" "$SECS")
		errs=$(($(kv "$line" errors_connect) + $(kv "$line" errors_read) + $(kv "$line" errors_write) + $(kv "$line" errors_timeout) + $(kv "$line" non2xx)))
		RPS[$s]="${RPS[$s]:-} $(kv "$line" rps)"
		P50[$s]="${P50[$s]:-} $(kv "$line" lat_p50_ms)"
		P99[$s]="${P99[$s]:-} $(kv "$line" lat_p99_ms)"
		rpc=$(calc '%.0f' "$(kv "$line" requests) / ($(kv "$line" cpu_s) + 0.005)")
		RPC[$s]="${RPC[$s]:-} $rpc"
		printf '%-4s %-7s %9s %8s %8s %8s %7s %10s %7s\n' "$r" "$s" "$(kv "$line" rps)" "$(kv "$line" lat_p50_ms)" \
			"$(kv "$line" lat_p99_ms)" "$(kv "$line" lat_max_ms)" "$(kv "$line" cpu_s)" "$rpc" "$errs" >&2
		[ "$errs" = 0 ] || log "  errors: $line"
	done
	st=$(ask status)
	[ "$(kv "$st" sse_open)" = "$DEVICES" ] && [ "$(kv "$st" idle_open)" = "$DEVICES" ] ||
		die "connections lost: $st"
done
rss2=$(rss_kib chorus)
log "chorus VmRSS after the queue runs: $rss2 KiB; holder: $(ask status)"

# Fan-out: a schedule change reaching every stream.
declare -a F50 F99 FMAX
for r in $(seq 1 "$REPS"); do
	if [ $((r % 2)) = 1 ]; then week=$RUN/schedule2.json; else week=$RUN/schedule.json; fi
	f=$(ask fanout "$week")
	log "fan-out $r: $f"
	[ "$(kv "$f" got)" = "$DEVICES" ] || die "not every stream had \"changed\": $f"
	F50+=("$(kv "$f" p50_ms)") F99+=("$(kv "$f" p99_ms)") FMAX+=("$(kv "$f" max_ms)")
	sleep 1
done
st=$(ask status)
log "holder: $st"
hold_stop

# shellcheck disable=SC2086
ch=$(median ${RPS[chorus]}) ng=$(median ${RPS[nginx]})
# shellcheck disable=SC2086
chc=$(median ${RPC[chorus]}) ngc=$(median ${RPC[nginx]})
# shellcheck disable=SC2086
ch50=$(median ${P50[chorus]}) ch99=$(median ${P99[chorus]}) ng50=$(median ${P50[nginx]}) ng99=$(median ${P99[nginx]})
f50=$(median "${F50[@]}") f99=$(median "${F99[@]}") fmax=$(printf '%s\n' "${FMAX[@]}" | sort -g | tail -1)
log "median: chorus $ch req/s (p50 $ch50 ms, p99 $ch99 ms; $chc per CPU-second), nginx $ng req/s (p50 $ng50 ms, p99 $ng99 ms; $ngc per CPU-second); fan-out to $DEVICES streams: p50 $f50 ms, p99 $f99 ms, max $fmax ms (medians of $REPS; max of all)"
echo "devices ratio=$(calc '%.2f' "$ch / $ng") chorus_rps=$ch nginx_rps=$ng chorus_p50_ms=$ch50 chorus_p99_ms=$ch99 nginx_p50_ms=$ng50 nginx_p99_ms=$ng99 cpu_ratio=$(calc '%.3f' "$chc / $ngc") chorus_req_per_cpu_s=$chc nginx_req_per_cpu_s=$ngc rss_per_device_bytes=$per chorus_rss_kib=$rss0/$rss1/$rss2 nginx_bytes_per_idle_conn=$ngper fanout_p50_ms=$f50 fanout_p99_ms=$f99 fanout_max_ms=$fmax changed_outside=$(kv "$st" changed_outside) devices=$DEVICES conns=$CONNS seconds=$SECS reps=$REPS queue_bytes=$body queue_items=$items"
