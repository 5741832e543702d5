#!/usr/bin/env bash
# Figure 4: cold-miss time to first byte against the time to read one
# sealed chunk file from the origin, same run, same page-cache state.
#
#   bench/serve_ttfb.sh [--rounds N]
#
# The library (20 tracks of 4 MiB, 4 chunks each) is ingested. Every origin
# file is read once first, so both measurements find the origin in the page
# cache ("warm"): the figure is chorus's own overhead on a miss, not the
# disk's. Then ROUNDS times:
#
#   - chorus is started with an empty cache (DATA/cache removed), and
#     answers /health and the track list once (so no sample pays for the
#     first connection or the catalog's first query);
#   - every track is fetched once, in order, by bench/serve/ttfb.py: the
#     time from connect() to the first byte of the answer (the first chunk
#     is a miss: fetched from the origin, verified, decrypted and written
#     to the cache before the head is sent), and the body is read to the
#     end before the next track;
#   - every track's chunk 0 in the origin (DATA/origin/c/BB/BLOB/00000000,
#     1 MiB + 16 bytes) is read by the same Python process's peer
#     (open, read to EOF, close).
#
# The figures are the medians. Last line:
#
#   serve_ttfb ratio=R chorus_ttfb_ms=T origin_read_ms=O samples=N
#
# ratio: chorus TTFB ÷ origin chunk read (goal <= 1.5).
#
# Environment: as serve_hit.sh; BENCH_ROUNDS (5).
set -eu
ROUNDS=${BENCH_ROUNDS:-5}
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	-h|--help) sed -n '2,31p' "$0"; exit 0 ;;
	*) echo "serve_ttfb.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/serve/lib.sh"

make_library
DATA=$RUN/data
ingest_library "$DATA"
mapfile -t CHUNK0 < <(find "$DATA/origin/c" -name 00000000 | sort)
[ "${#CHUNK0[@]}" = "$TRACKS" ] || die "found ${#CHUNK0[@]} chunk-0 files for $TRACKS tracks"
find "$DATA/origin" -type f -exec cat {} + >/dev/null
log "bench: $TRACKS tracks, $ROUNDS rounds, origin in page cache (warm); chunk 0 is $(stat -c %s "${CHUNK0[0]}") bytes sealed; binary $CHORUS_BIN"

TT=() OR=()
for r in $(seq 1 "$ROUNDS"); do
	rm -rf "$DATA/cache"
	start_chorus "$DATA"
	port=${CHORUS_URL##*:}
	"${CURL[@]}" -o /dev/null "$CHORUS_URL/health"
	stream_paths "$CHORUS_URL" "$RUN/chorus.paths" "$RUN/nginx.paths"
	mapfile -t P <"$RUN/chorus.paths"
	# origin reads and cold fetches, interleaved by halves so neither
	# always runs first
	half=$((TRACKS / 2))
	$PY "$SB/ttfb.py" origin 127.0.0.1 0 "${CHUNK0[@]:0:$half}" >>"$RUN/origin.txt"
	$PY "$SB/ttfb.py" http 127.0.0.1 "$port" "${P[@]}" >"$RUN/ttfb.$r"
	$PY "$SB/ttfb.py" origin 127.0.0.1 0 "${CHUNK0[@]:$half}" >>"$RUN/origin.txt"
	bad=$(awk '$2 != 200' "$RUN/ttfb.$r" | wc -l)
	[ "$bad" = 0 ] || die "round $r: $bad answers were not 200"
	node=$("${CURL[@]}" "$CHORUS_URL/api/v1/node")
	stop_pid "$CHORUS_PID"
	log "round $r: ttfb median $(median $(awk '{print $1 * 1000}' "$RUN/ttfb.$r")) ms; node: $node"
	cat "$RUN/ttfb.$r" >>"$RUN/ttfb.txt"
done
t=$(median $(awk '{print $1 * 1000}' "$RUN/ttfb.txt"))
o=$(median $(awk '{print $1 * 1000}' "$RUN/origin.txt"))
n=$(wc -l <"$RUN/ttfb.txt")
log "chorus cold TTFB: median $t ms, p10 $(sort -g "$RUN/ttfb.txt" | awk -v n="$n" 'NR == int(n * 0.1) + 1 {print $1 * 1000}') ms, p90 $(sort -g "$RUN/ttfb.txt" | awk -v n="$n" 'NR == int(n * 0.9) {print $1 * 1000}') ms ($n samples)"
log "origin chunk read: median $o ms ($(wc -l <"$RUN/origin.txt") samples)"
echo "serve_ttfb ratio=$(calc '%.2f' "$t / $o") chorus_ttfb_ms=$(calc '%.3f' "$t") origin_read_ms=$(calc '%.3f' "$o") samples=$n origin=warm"
