#!/usr/bin/env bash
# Upload throughput: one ~200 MB WAV sent with curl to chorus's tus
# endpoint and, in the same run, the same file with `curl -T` to nginx's
# WebDAV PUT, alternating in pairs.
#
#   bench/upload.sh [--reps N] [--mb MB] [--expect "off on"] [--cold]
#
# The file (BENCH_UPLOAD_MB, default 200, 16-bit stereo noise written
# by bench/serve/mkwav.py) is made in the run dir at bench time; nginx's
# root, its client_body_temp_path and chorus's data dir (origin dir:DATA/
# origin) are in the run dir too: one file system for all (BENCH_DIR,
# default build/bench-upload; BENCH_DIR=/dev/shm/x for tmpfs). The script
# prints which.
#
# Per rep, for each Expect mode (off: `-H 'Expect:'`; on: `-H 'Expect:
# 100-continue'`; the same curl arguments for both servers), nginx and
# chorus in turn (which goes first alternates):
#
#   nginx:  curl -T FILE http://127.0.0.1:PORT/x.wav   (dav_methods PUT,
#           client_max_body_size 0) then `sync x.wav ROOT` (fsync of the
#           file and its directory), timed apart: "plain" ends at the 201,
#           "durable" after the fsync.
#   chorus: POST /api/v1/uploads (Tus-Resumable, Upload-Length,
#           Upload-Metadata filename) then curl -X PATCH -T FILE (Upload-
#           Offset: 0, application/offset+octet-stream, an admin key),
#           timed from the POST to the 204: every byte sealed and fsynced
#           in the origin by then. Then, apart, the time from the 204 until
#           GET /api/v1/uploads/ID says "done" (the ingest), and its CPU.
#
# Before each timed run the previous outputs are removed and the file
# system synced (untimed), so no run writes back another's pages. A few
# bytes of the file's samples change between reps (the same file for both
# servers in a rep) so that chorus's ingest never meets a duplicate.
# --cold drops the source file from the page cache (posix_fadvise) before
# every run; by default it is read once and stays cached.
#
# CPU is utime+stime of the server's processes (/proc/PID/stat; nginx:
# master + workers; chorus: the whole process) around the timed requests.
# Prints every run, the medians, the per-pair ratios, and as the last line
#
#   upload ratio=R ratio_plain=P ...
#
# R: median over the pairs of chorus MB/s / nginx-durable MB/s in the
# first Expect mode (goal >= 0.8, chorus being durable at its 204);
# P: the same against plain nginx.
#
# Environment: CHORUS_BIN, BENCH_DIR, BENCH_REPS (6), BENCH_UPLOAD_MB,
# BENCH_EXPECT ("off on"), BENCH_COLD=1, BENCH_KEEP_RUN=1, BENCH_PERF=FILE
# (perf record -g of the node during the last chorus PATCH), and
# BENCH_SERVE_ARGS: more `chorus serve` arguments.
set -eu
REPS=${BENCH_REPS:-6}
MB=${BENCH_UPLOAD_MB:-200}
EXPECT=${BENCH_EXPECT:-off on}
COLD=${BENCH_COLD:-0}
while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift ;;
	--mb) MB=$2; shift ;;
	--expect) EXPECT=$2; shift ;;
	--cold) COLD=1 ;;
	-h|--help) sed -n '2,50p' "$0"; exit 0 ;;
	*) echo "upload.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/bench-upload}
. "$(dirname "$0")/serve/lib.sh"

BYTES=$((MB * 1000000))
BYTES=$((BYTES - (BYTES - 44) % 4))
SRC=$RUN/src/upload001.wav
NGROOT=$RUN/nginx/root
DATA=$RUN/data

# nginx with the dav module: PUT only, no body size limit, its temporary
# files on the same file system as the root (a rename, not a copy).
start_nginx_dav() {
	local dir=$RUN/nginx port user=
	port=$(free_port)
	mkdir -p "$dir/logs" "$dir/tmp" "$NGROOT"
	[ "$(id -u)" = 0 ] && user="user root root;"
	cat >"$dir/nginx.conf" <<NGX
$user
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; use epoll; }
http {
	default_type application/octet-stream;
	access_log off;
	sendfile on;
	tcp_nodelay on;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	server {
		listen 127.0.0.1:$port;
		root $NGROOT;
		client_max_body_size 0;
		location = /health { default_type application/json; return 200 '{"status":"ok"}\n'; }
		location / { dav_methods PUT; create_full_put_path on; }
	}
}
NGX
	nginx_launch "$dir" "$port" http CURL
}

now() { echo "$EPOCHREALTIME"; }
expect_hdr() { if [ "$1" = on ]; then echo 'Expect: 100-continue'; else echo 'Expect:'; fi; }
# The source file out of the page cache (clean first), or read into it.
prepare_src() {
	if [ "$COLD" = 1 ]; then
		sync "$SRC"
		$PY -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$SRC"
	else
		cat "$SRC" >/dev/null
	fi
}
# Nothing dirty from the previous run, nothing of it left.
settle() {
	rm -f "$NGROOT/x.wav"
	sync -f "$RUN"
	prepare_src
}

# nginx_run MODE: "plain_s durable_s cpu_s"
nginx_run() {
	local c0 c1 t0 t1 t2 out
	settle
	c0=$(cpu_seconds nginx)
	t0=$(now)
	out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{size_upload}' -H "$(expect_hdr "$1")" \
		-T "$SRC" "$NGINX_URL/x.wav") || die "curl PUT to nginx failed"
	t1=$(now)
	sync "$NGROOT/x.wav" "$NGROOT"
	t2=$(now)
	c1=$(cpu_seconds nginx)
	[ "$out" = "201 $BYTES" ] || [ "$out" = "204 $BYTES" ] || die "nginx PUT: $out"
	echo "$(calc '%.3f' "$t1 - $t0") $(calc '%.3f' "$t2 - $t0") $(calc '%.2f' "$c1 - $c0")"
}

# chorus_run MODE [perf-file]: "total_s post_ms cpu_s done_s ingest_cpu_s"
chorus_run() {
	local c0 c1 c2 t0 t1 t2 t3 hdrs loc out state perf_pid=
	settle
	if [ -n "${2:-}" ]; then
		perf record -g -o "$2" -p "$CHORUS_PID" >"$RUN/perf.log" 2>&1 &
		perf_pid=$!
		sleep 0.5
	fi
	c0=$(cpu_seconds chorus)
	t0=$(now)
	hdrs=$("${CURL[@]}" -D - -o /dev/null -X POST "${AUTH[@]}" -H 'Tus-Resumable: 1.0.0' \
		-H "Upload-Length: $BYTES" -H "Upload-Metadata: filename $(printf x.wav | base64)" \
		"$CHORUS_URL/api/v1/uploads") || die "POST /api/v1/uploads failed"
	t1=$(now)
	loc=$(printf '%s\n' "$hdrs" | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
	[ -n "$loc" ] || { printf '%s\n' "$hdrs" >&2; die "POST /api/v1/uploads: no Location"; }
	out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{size_upload}' -X PATCH -T "$SRC" "${AUTH[@]}" \
		-H 'Content-Type: application/offset+octet-stream' -H 'Upload-Offset: 0' \
		-H 'Tus-Resumable: 1.0.0' -H "$(expect_hdr "$1")" "$CHORUS_URL$loc") ||
		die "curl PATCH to chorus failed"
	t2=$(now)
	c1=$(cpu_seconds chorus)
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid"
		wait "$perf_pid" || true
	fi
	[ "$out" = "204 $BYTES" ] || die "chorus PATCH: $out"
	for _ in $(seq 1200); do
		state=$("${CURL[@]}" "${AUTH[@]}" "$CHORUS_URL$loc" | $PY -c 'import json, sys; print(json.load(sys.stdin)["state"])')
		case $state in "done") break ;; failed) die "the upload's ingest failed: $("${CURL[@]}" "${AUTH[@]}" "$CHORUS_URL$loc")" ;; esac
		sleep 0.05
	done
	[ "$state" = "done" ] || die "the upload is $state after 60 s"
	t3=$(now)
	c2=$(cpu_seconds chorus)
	echo "$(calc '%.3f' "$t2 - $t0") $(calc '%.1f' "($t1 - $t0) * 1000") $(calc '%.2f' "$c1 - $c0") $(calc '%.3f' "$t3 - $t2") $(calc '%.2f' "$c2 - $c1")"
}

mkdir -p "$RUN/src"
log "file: $BYTES bytes of WAV in $RUN/src"
$PY "$SB/mkwav.py" "$RUN/src" 1 "$BYTES" upload
[ "$(stat -c %s "$SRC")" = "$BYTES" ] || die "mkwav.py wrote $(stat -c %s "$SRC") bytes"
mkdir -p "$DATA"
# shellcheck disable=SC2086
start_chorus "$DATA" ${BENCH_SERVE_ARGS:-}
start_nginx_dav

# Both keep the bytes: nginx's file and chorus's ingested track are the
# source, byte for byte (checked once, outside the timing).
cat "$SRC" >/dev/null
read -r _ _ _ <<<"$(nginx_run off)"
cmp -s "$SRC" "$NGROOT/x.wav" || die "nginx stored different bytes"
read -r _ _ _ _ _ <<<"$(chorus_run off)"
tid=$("${CURL[@]}" "${AUTH[@]}" "$CHORUS_URL/api/v1/uploads" | $PY -c '
import json, sys
d = json.load(sys.stdin)
us = d["uploads"] if isinstance(d, dict) else d
print(us[0]["track_ids"][0])')
sum_src=$(sha256sum <"$SRC")
sum_ch=$("${CURL[@]}" "${AUTH[@]}" "$CHORUS_URL/api/v1/tracks/$tid/stream" | sha256sum)
[ "$sum_src" = "$sum_ch" ] || die "chorus streams different bytes for the uploaded track $tid"

fs=$(findmnt -n -o FSTYPE,SOURCE -T "$RUN" | head -1 | tr -s " ")
log "bench: $BYTES bytes, $REPS reps, Expect: $EXPECT, source file $([ "$COLD" = 1 ] && echo cold || echo in the page cache); $RUN on $fs; binary $CHORUS_BIN ${BENCH_SERVE_ARGS:-}; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

printf '%-6s %-4s %-7s %8s %8s %8s %9s %7s %8s %9s\n' expect rep server time_s MB/s durab_s durab_MB/s cpu_s cpu_s/GB done_s >&2
summary=""
first_mode=${EXPECT%% *}
for mode in $EXPECT; do
	declare -A V=()
	for r in $(seq 1 "$REPS"); do
		# A few samples change (not the header): chorus never ingests a duplicate.
		printf '%08d' "$r$RANDOM" | dd of="$SRC" bs=1 seek=$((BYTES / 2)) conv=notrunc status=none
		if [ $((r % 2)) = 1 ]; then order="nginx chorus"; else order="chorus nginx"; fi
		for s in $order; do
			if [ "$s" = nginx ]; then
				read -r tp td cpu <<<"$(nginx_run "$mode")"
				cpg=$(calc '%.3f' "$cpu / ($BYTES / 1e9)")
				V[ng_p]="${V[ng_p]:-} $(calc '%.1f' "$BYTES / 1e6 / $tp")"
				V[ng_d]="${V[ng_d]:-} $(calc '%.1f' "$BYTES / 1e6 / $td")"
				V[ng_c]="${V[ng_c]:-} $cpg"
				V[ng_p$r]=$tp V[ng_d$r]=$td
				printf '%-6s %-4s %-7s %8s %8s %8s %9s %7s %8s %9s\n' "$mode" "$r" nginx "$tp" \
					"$(calc '%.1f' "$BYTES / 1e6 / $tp")" "$td" "$(calc '%.1f' "$BYTES / 1e6 / $td")" "$cpu" "$cpg" - >&2
			else
				perf=
				[ -n "${BENCH_PERF:-}" ] && [ "$r" = "$REPS" ] && [ "$mode" = "$first_mode" ] && perf=$BENCH_PERF
				read -r tt pms cpu dn icpu <<<"$(chorus_run "$mode" "$perf")"
				cpg=$(calc '%.3f' "$cpu / ($BYTES / 1e9)")
				V[ch]="${V[ch]:-} $(calc '%.1f' "$BYTES / 1e6 / $tt")"
				V[ch_c]="${V[ch_c]:-} $cpg"
				V[ch_done]="${V[ch_done]:-} $dn"
				V[ch_ic]="${V[ch_ic]:-} $icpu"
				V[ch$r]=$tt
				printf '%-6s %-4s %-7s %8s %8s %8s %9s %7s %8s %9s  (POST %s ms, ingest %s CPU-s)\n' "$mode" "$r" chorus "$tt" \
					"$(calc '%.1f' "$BYTES / 1e6 / $tt")" "$tt" "$(calc '%.1f' "$BYTES / 1e6 / $tt")" "$cpu" "$cpg" "$dn" "$pms" "$icpu" >&2
			fi
		done
		# chorus MB/s / nginx MB/s = nginx time / chorus time
		V[pr_p]="${V[pr_p]:-} $(calc '%.3f' "${V[ng_p$r]} / ${V[ch$r]}")"
		V[pr_d]="${V[pr_d]:-} $(calc '%.3f' "${V[ng_d$r]} / ${V[ch$r]}")"
	done
	# shellcheck disable=SC2086
	{
		ch=$(median ${V[ch]}) ngp=$(median ${V[ng_p]}) ngd=$(median ${V[ng_d]})
		chc=$(median ${V[ch_c]}) ngc=$(median ${V[ng_c]})
		rp=$(median ${V[pr_p]}) rd=$(median ${V[pr_d]})
		dn=$(median ${V[ch_done]}) ic=$(median ${V[ch_ic]})
	}
	log "median Expect $mode: chorus $ch MB/s to the 204 ($chc CPU-s/GB, then $dn s and $ic CPU-s to done); nginx $ngp MB/s plain, $ngd MB/s with the fsync ($ngc CPU-s/GB)"
	log "  per pair chorus/nginx: plain${V[pr_p]}; durable${V[pr_d]}"
	log "  ratio (median of pairs): $rp against plain nginx, $rd against nginx + fsync; medians' ratio $(calc '%.3f' "$ch / $ngp") / $(calc '%.3f' "$ch / $ngd"); CPU/GB ratio $(calc '%.2f' "$chc / $ngc")"
	if [ "$mode" = "$first_mode" ]; then
		summary="ratio=$rd ratio_plain=$rp$summary"
	fi
	summary="$summary ${mode}_durable=$rd ${mode}_plain=$rp ${mode}_pairs_durable=$(printf '%s' "${V[pr_d]# }" | tr ' ' ,) ${mode}_pairs_plain=$(printf '%s' "${V[pr_p]# }" | tr ' ' ,) ${mode}_chorus_mbps=$ch ${mode}_nginx_mbps=$ngp ${mode}_nginx_durable_mbps=$ngd ${mode}_chorus_cpugb=$chc ${mode}_nginx_cpugb=$ngc ${mode}_done_s=$dn"
	unset V
done
echo "upload $summary bytes=$BYTES reps=$REPS fs=${fs%% *} cold=$COLD"
