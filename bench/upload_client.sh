#!/usr/bin/env bash
# `chorus upload` against tus-js-client (npm), the reference tus client,
# both sending the same file to the same independent tus server
# (@tus/server + @tus/file-store, tests/system/tus_server.mjs) on
# loopback, in the same run, with the same chunk size (64 MiB).
#
#   bench/upload_client.sh [--reps N] [--mb N] [--dir DIR]
#
# Prints, per run, wall seconds and the client's CPU seconds (user + sys)
# and peak RSS, the medians, and as the last line:
#
#   upload_vs_tusjs cpu_ratio=R chorus_cpu_s=C tusjs_cpu_s=T chorus_s=W tusjs_s=V \
#     chorus_sha256_cpu_s=S mb=N reps=N
#
# On loopback the server (node writing the file) is the bottleneck of the
# wall time; what the client costs is its CPU. chorus_sha256_cpu_s is
# chorus against a server offering sha256 checksums (one hash per PATCH).
#
# Environment: CHORUS_BIN (default: make VARIANT=release, build/release/chorus),
# BENCH_DIR (default build/bench), BENCH_REPS (3), BENCH_MB (512).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$ROOT/build/bench}
REPS=${BENCH_REPS:-3}
MB=${BENCH_MB:-512}
NPM=$ROOT/build/npm/node_modules

while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift ;;
	--mb) MB=$2; shift ;;
	--dir) BENCH_DIR=$2; shift ;;
	-h|--help) sed -n '2,22p' "$0"; exit 0 ;;
	*) echo "upload_client.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

log() { printf '%s\n' "$*" >&2; }

if [ -z "${CHORUS_BIN:-}" ]; then
	(cd "$ROOT" && make -s VARIANT=release)
	CHORUS_BIN=$ROOT/build/release/chorus
fi
[ -x "$CHORUS_BIN" ] || { log "upload_client.sh: no binary at $CHORUS_BIN"; exit 1; }
[ -d "$NPM/@tus/server" ] && [ -d "$NPM/tus-js-client" ] ||
	{ log "upload_client.sh: @tus/server and tus-js-client missing: scripts/deps.sh test"; exit 1; }

RUN=$BENCH_DIR/upload.$$
mkdir -p "$RUN"
SERVER_PID=
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
	rm -rf "$RUN"
}
trap cleanup EXIT
FILE=$RUN/bench.wav
head -c $((MB << 20)) /dev/urandom >"$FILE"

start_server() { # flags...
	rm -rf "$RUN/store" "$RUN/server.out"
	mkdir -p "$RUN/store"
	setsid node "$ROOT/tests/system/tus_server.mjs" --dir "$RUN/store" --log "$RUN/requests.jsonl" "$@" \
		>"$RUN/server.out" 2>"$RUN/server.err" </dev/null &
	SERVER_PID=$!
	for _ in $(seq 100); do
		PORT=$(awk '/^port/{print $2}' "$RUN/server.out")
		[ -n "$PORT" ] && return 0
		sleep 0.05
	done
	log "upload_client.sh: the tus server did not start: $(cat "$RUN/server.err")"
	exit 1
}
stop_server() {
	kill "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# One upload; prints "WALL CPU RSS_KB".
measure() { # client
	local t=$RUN/time.out
	case $1 in
	chorus | chorus_sha256)
		XDG_STATE_HOME=$RUN/state /usr/bin/time -o "$t" -f '%e %U %S %M' \
			"$CHORUS_BIN" upload --no-progress --no-wait "http://127.0.0.1:$PORT" "$FILE" \
			</dev/null >"$RUN/client.out" 2>&1 || { cat "$RUN/client.out" >&2; exit 1; } ;;
	tusjs)
		/usr/bin/time -o "$t" -f '%e %U %S %M' node "$ROOT/bench/upload_tusjs.cjs" "$NPM" \
			"http://127.0.0.1:$PORT/api/v1/uploads" "$FILE" $((64 << 20)) \
			</dev/null >"$RUN/client.out" 2>&1 || { cat "$RUN/client.out" >&2; exit 1; } ;;
	esac
	cmp -s "$FILE" "$(ls -d "$RUN"/store/* | grep -v '\.json$' | head -1)" ||
		{ log "upload_client.sh: $1: the stored bytes differ"; exit 1; }
	awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$t"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

cat "$FILE" >/dev/null # both start from the page cache
CW=() CC=() TW=() TC=() SC=()
printf '%-4s %-14s %8s %8s %8s\n' run client wall_s cpu_s rss_kb >&2
for r in $(seq 1 "$REPS"); do
	if [ $((r % 2)) = 1 ]; then order="chorus tusjs"; else order="tusjs chorus"; fi
	for c in $order chorus_sha256; do
		if [ "$c" = chorus_sha256 ]; then start_server --checksum; else start_server; fi
		read -r w cpu rss < <(measure "$c") || true
		stop_server
		[ -n "${rss:-}" ] || { log "upload_client.sh: $c failed"; exit 1; }
		case $c in
		chorus) CW+=("$w"); CC+=("$cpu") ;;
		tusjs) TW+=("$w"); TC+=("$cpu") ;;
		chorus_sha256) SC+=("$cpu") ;;
		esac
		printf '%-4s %-14s %8s %8s %8s\n' "$r" "$c" "$w" "$cpu" "$rss" >&2
	done
done
cw=$(median "${CW[@]}") cc=$(median "${CC[@]}") tw=$(median "${TW[@]}") tc=$(median "${TC[@]}")
sc=$(median "${SC[@]}")
ratio=$(awk "BEGIN{printf \"%.2f\", $cc / $tc}")
log "median: chorus ${cw} s, ${cc} CPU-s; tus-js-client ${tw} s, ${tc} CPU-s; chorus with sha256 ${sc} CPU-s ($MB MiB)"
echo "upload_vs_tusjs cpu_ratio=$ratio chorus_cpu_s=$cc tusjs_cpu_s=$tc chorus_s=$cw tusjs_s=$tw chorus_sha256_cpu_s=$sc mb=$MB reps=$REPS"
