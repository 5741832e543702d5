#!/usr/bin/env bash
# Figure 4: cold-miss time to first byte against the time to read one
# sealed chunk file from the origin, same run, same page-cache state.
#
#   bench/serve_ttfb.sh [--rounds N] [--origin "warm cold"]
#
# The library (20 tracks of 4 MiB, 4 chunks each) is ingested. Two page-cache
# states of the origin, measured the same way for both contenders:
#
#   warm: every origin file is read first, so both find the origin in the
#         page cache: the figure is chorus's own overhead on a miss;
#   cold: the origin files' pages are dropped (posix_fadvise DONTNEED, no
#         privilege needed) before the reference reads and before chorus's
#         fetches, so both read the origin from the disk.
#
# Then ROUNDS times, for each state:
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
#   serve_ttfb ratio=R origin=warm warm_ratio=R warm_chorus_ttfb_ms=T
#       warm_origin_read_ms=O cold_ratio=... samples_per_state=N
#
# ratio: chorus TTFB ÷ origin chunk read (goal <= 1.5), for the first
# state (warm, the stricter one).
#
# Environment: as serve_hit.sh; BENCH_ROUNDS (4), BENCH_ORIGIN ("warm cold").
set -eu
ROUNDS=${BENCH_ROUNDS:-4}
STATES=${BENCH_ORIGIN:-"warm cold"}
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	--origin) STATES=$2; shift ;;
	-h|--help) sed -n '2,40p' "$0"; exit 0 ;;
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
log "bench: $TRACKS tracks, $ROUNDS rounds, origin states: $STATES; chunk 0 is $(stat -c %s "${CHUNK0[0]}") bytes sealed; binary $CHORUS_BIN"

evict_origin() { find "$DATA/origin" -type f -exec $PY "$SB/ttfb.py" evict x 0 {} +; }
warm_origin() { find "$DATA/origin" -type f -exec cat {} + >/dev/null; }
: >"$RUN/ttfb.warm"; : >"$RUN/ttfb.cold"; : >"$RUN/origin.warm"; : >"$RUN/origin.cold"
half=$((TRACKS / 2))
for r in $(seq 1 "$ROUNDS"); do
	for state in $STATES; do
		rm -rf "$DATA/cache"
		sync
		start_chorus "$DATA"
		port=${CHORUS_URL##*:}
		"${CURL[@]}" -o /dev/null "$CHORUS_URL/health"
		stream_paths "$CHORUS_URL" "$RUN/chorus.paths" "$RUN/nginx.paths"
		mapfile -t P <"$RUN/chorus.paths"
		# Origin reads and cold fetches interleaved by halves, so neither
		# always runs first; in the cold state the origin's pages are
		# dropped before each step.
		if [ "$state" = warm ]; then warm_origin; else evict_origin; fi
		$PY "$SB/ttfb.py" origin x 0 "${CHUNK0[@]:0:$half}" >>"$RUN/origin.$state"
		[ "$state" = cold ] && evict_origin
		CHORUS_KEY=$CHORUS_KEY $PY "$SB/ttfb.py" http 127.0.0.1 "$port" "${P[@]}" >"$RUN/ttfb.$r"
		[ "$state" = cold ] && evict_origin
		$PY "$SB/ttfb.py" origin x 0 "${CHUNK0[@]:$half}" >>"$RUN/origin.$state"
		bad=$(awk '$2 != 200' "$RUN/ttfb.$r" | wc -l)
		[ "$bad" = 0 ] || die "round $r: $bad answers were not 200"
		node=$("${CURL[@]}" "${AUTH[@]}" "$CHORUS_URL/api/v1/node")
		stop_pid "$CHORUS_PID"
		log "round $r $state: chorus ttfb median $(median $(awk '{print $1 * 1000}' "$RUN/ttfb.$r")) ms; node: $node"
		cat "$RUN/ttfb.$r" >>"$RUN/ttfb.$state"
	done
done
out="serve_ttfb"
for state in $STATES; do
	t=$(median $(awk '{print $1 * 1000}' "$RUN/ttfb.$state"))
	o=$(median $(awk '{print $1 * 1000}' "$RUN/origin.$state"))
	n=$(wc -l <"$RUN/ttfb.$state")
	log "$state origin: chorus cold-miss TTFB median $t ms (p10 $(sort -g "$RUN/ttfb.$state" | awk -v n="$n" 'NR == int(n * 0.1) + 1 {print $1 * 1000}'), p90 $(sort -g "$RUN/ttfb.$state" | awk -v n="$n" 'NR == int(n * 0.9) {print $1 * 1000}') ms, $n samples); origin chunk read median $o ms ($(wc -l <"$RUN/origin.$state") samples); ratio $(calc '%.2f' "$t / $o")"
	if [ "$out" = serve_ttfb ]; then out="$out ratio=$(calc '%.2f' "$t / $o") origin=$state"; fi
	out="$out ${state}_ratio=$(calc '%.2f' "$t / $o") ${state}_chorus_ttfb_ms=$(calc '%.3f' "$t") ${state}_origin_read_ms=$(calc '%.3f' "$o")"
done
echo "$out samples_per_state=$n"
