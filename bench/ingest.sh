#!/usr/bin/env bash
# Ingest throughput against `cp -r && sync` of the same files to the same
# disk, in the same run.
#
#   bench/ingest.sh [--keep-library] [--reps N] [--tracks N] [--dir DIR] [-- INGEST_ARGS...]
#
# Generates a library of real audio files (MP3 320k, FLAC, Ogg Vorbis, Opus,
# M4A/AAC; noise-like content so FLAC stays large, every file with different
# bytes since ingest de-duplicates identical content), reads it once so both
# contenders start from the page cache, then runs, alternating the order,
#
#   cp -r LIB DST && sync
#   chorus ingest --data DATA LIB && sync     (fresh DATA every run)
#
# REPS times each and prints MB/s of audio for every run and the median, and
# as the last line:
#
#   ingest_vs_cp ratio=R chorus_mbps=C cp_mbps=P
#
# Environment:
#   CHORUS_BIN     binary to measure; when unset, `make -s VARIANT=release`
#                  is run and build/release/chorus used
#   BENCH_DIR      scratch directory (default build/bench in the repo); it
#                  must be on the disk you want measured: library, cp copy
#                  and chorus data all live there
#   BENCH_REPS     repetitions per contender (default 3)
#   BENCH_TRACKS   number of tracks, a multiple of 5 (default 60, ~0.7 GB)
#   BENCH_KEEP_LIBRARY=1   keep (and reuse on the next run) the library
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$ROOT/build/bench}
REPS=${BENCH_REPS:-3}
TRACKS=${BENCH_TRACKS:-60}
KEEP=${BENCH_KEEP_LIBRARY:-0}
EXTRA=()

while [ $# -gt 0 ]; do
	case $1 in
	--keep-library) KEEP=1 ;;
	--reps) REPS=$2; shift ;;
	--tracks) TRACKS=$2; shift ;;
	--dir) BENCH_DIR=$2; shift ;;
	--) shift; EXTRA=("$@"); break ;;
	-h|--help) sed -n '2,30p' "$0"; exit 0 ;;
	*) echo "ingest.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }

if [ -z "${CHORUS_BIN:-}" ]; then
	(cd "$ROOT" && make -s VARIANT=release)
	CHORUS_BIN=$ROOT/build/release/chorus
fi
case $CHORUS_BIN in /*) ;; *) CHORUS_BIN=$ROOT/$CHORUS_BIN ;; esac
[ -x "$CHORUS_BIN" ] || { log "ingest.sh: no binary at $CHORUS_BIN"; exit 1; }
command -v ffmpeg >/dev/null || { log "ingest.sh: ffmpeg is required"; exit 1; }

LIB=$BENCH_DIR/library
RUNS=$BENCH_DIR/runs
mkdir -p "$BENCH_DIR"
cleanup() {
	rm -rf "$RUNS"
	[ "$KEEP" = 1 ] || rm -rf "$LIB"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the library -----------------------------------------------------------

# name:extension:encoder options
CODECS=(
	"mp3:mp3:-c:a libmp3lame -b:a 320k"
	"flac:flac:-c:a flac"
	"vorbis:ogg:-c:a libvorbis -q:a 6"
	"opus:opus:-c:a libopus -b:a 160k"
	"aac:m4a:-c:a aac -b:a 256k"
)
BASES=2 # distinct encodes per codec; the other tracks re-tag them

# Stereo noise with independent channels, band-limited like music, with a
# slow tremolo so it is not stationary.
encode_base() { # out seed seconds opts...
	local out=$1 seed=$2 dur=$3
	shift 3
	ffmpeg -nostdin -loglevel error -y \
		-f lavfi -i "anoisesrc=color=pink:sample_rate=44100:amplitude=0.35:seed=$seed:duration=$dur" \
		-f lavfi -i "anoisesrc=color=pink:sample_rate=44100:amplitude=0.35:seed=$((seed + 7919)):duration=$dur" \
		-filter_complex "[0][1]amerge=inputs=2,lowpass=f=15000,tremolo=f=0.5:d=0.4" \
		"$@" "$out"
}

generate_library() {
	local stamp=$LIB/.complete-$TRACKS base tmp
	if [ -f "$stamp" ]; then
		log "library: reusing $LIB"
		return
	fi
	rm -rf "$LIB"
	tmp=$BENCH_DIR/bases
	rm -rf "$tmp"
	mkdir -p "$LIB" "$tmp"
	log "library: encoding $((${#CODECS[@]} * BASES)) base tracks..."
	local t0 pids=() i=0
	t0=$(now)
	for c in "${CODECS[@]}"; do
		IFS=: read -r name ext opts <<<"$c"
		for b in $(seq 1 $BASES); do
			# 3:10 and 3:45, different noise per file
			# shellcheck disable=SC2086
			encode_base "$tmp/$name-$b.$ext" $((i * 100 + b)) $((155 + 35 * b)) $opts &
			pids+=($!)
			i=$((i + 1))
			if [ ${#pids[@]} -ge "$(nproc)" ]; then
				wait "${pids[0]}"
				pids=("${pids[@]:1}")
			fi
		done
	done
	for p in "${pids[@]}"; do wait "$p"; done
	log "library: re-tagging into $TRACKS tracks..."
	local per=$((TRACKS / ${#CODECS[@]})) n=0
	for c in "${CODECS[@]}"; do
		IFS=: read -r name ext opts <<<"$c"
		for k in $(seq 1 "$per"); do
			n=$((n + 1))
			base=$tmp/$name-$(((k - 1) % BASES + 1)).$ext
			local album=$((k % 4 + 1))
			local dir="$LIB/Artist $((n % 6 + 1))/Album $name $album"
			mkdir -p "$dir"
			ffmpeg -nostdin -loglevel error -y -i "$base" -map 0:a -c copy -map_metadata -1 \
				-metadata title="Bench Track $n ($name)" \
				-metadata artist="Artist $((n % 6 + 1))" \
				-metadata album="Album $name $album" \
				-metadata track="$k" -metadata date="$((1970 + n))" \
				-metadata genre="Noise" \
				"$dir/$(printf %02d "$k") Bench Track $n.$ext"
		done
	done
	rm -rf "$tmp"
	local dups
	dups=$(find "$LIB" -type f -exec sha256sum {} + | cut -d' ' -f1 | sort | uniq -d | wc -l)
	if [ "$dups" != 0 ]; then
		log "library: $dups files share their bytes; ingest would de-duplicate them"
		exit 1
	fi
	touch "$stamp"
	log "library: done in $(awk "BEGIN{printf \"%.0f\", $(now) - $t0}") s"
}

generate_library
# The stamp file is not audio: walk skips it, and it is not counted.
FILES=$(find "$LIB" -type f \( -name '*.mp3' -o -name '*.flac' -o -name '*.ogg' -o -name '*.opus' -o -name '*.m4a' \) | wc -l)
BYTES=$(find "$LIB" -type f \( -name '*.mp3' -o -name '*.flac' -o -name '*.ogg' -o -name '*.opus' -o -name '*.m4a' \) -printf '%s\n' | awk '{s+=$1} END {print s}')
MB=$(awk "BEGIN{printf \"%.1f\", $BYTES / 1e6}")

log "bench: $FILES files, $MB MB; binary $CHORUS_BIN ${EXTRA[*]:-}"
log "bench: $(nproc) cores; disk: $(df -h "$BENCH_DIR" | awk 'NR==2 {print $1, $2, "fs"}') $(findmnt -no FSTYPE -T "$BENCH_DIR" 2>/dev/null || stat -f -c %T "$BENCH_DIR")"

# --- the runs ----------------------------------------------------------------

# Every run starts the same way: no output of a previous run left, nothing
# dirty in the page cache, and the library's pages in cache.
prepare() {
	rm -rf "$RUNS"
	mkdir -p "$RUNS"
	sync
	find "$LIB" -type f -exec cat {} + >/dev/null
}

# Prints the elapsed seconds of "$@" && sync.
timed() {
	local t0 t1
	t0=$(now)
	"$@" >"$BENCH_DIR/last.out" 2>&1 || {
		log "bench: failed: $*"
		cat "$BENCH_DIR/last.out" >&2
		exit 1
	}
	sync
	t1=$(now)
	awk "BEGIN{printf \"%.3f\", $t1 - $t0}"
}

run_cp() {
	prepare
	timed cp -r "$LIB" "$RUNS/copy"
}

run_chorus() {
	local s
	prepare
	s=$(timed "$CHORUS_BIN" ingest --no-progress --data "$RUNS/data" "${EXTRA[@]}" "$LIB")
	if ! grep -q "^ingest: $FILES added, 0 updated, 0 unchanged, 0 failed" "$BENCH_DIR/last.out"; then
		log "bench: chorus did not add every file:"
		cat "$BENCH_DIR/last.out" >&2
		exit 1
	fi
	echo "$s"
}

mbps() { awk "BEGIN{printf \"%.1f\", $BYTES / 1e6 / $1}"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

CP=()
CH=()
printf '%-4s %-8s %10s %10s\n' run tool seconds MB/s >&2
for r in $(seq 1 "$REPS"); do
	# Alternate which contender goes first.
	if [ $((r % 2)) = 1 ]; then order="cp chorus"; else order="chorus cp"; fi
	for tool in $order; do
		s=$(run_"$tool")
		if [ "$tool" = cp ]; then CP+=("$s"); else CH+=("$s"); fi
		printf '%-4s %-8s %10s %10s\n' "$r" "$tool" "$s" "$(mbps "$s")" >&2
	done
done
rm -f "$BENCH_DIR/last.out"

cp_s=$(median "${CP[@]}")
ch_s=$(median "${CH[@]}")
cp_mbps=$(mbps "$cp_s")
ch_mbps=$(mbps "$ch_s")
ratio=$(awk "BEGIN{printf \"%.2f\", $cp_s / $ch_s}")
log "median: cp+sync ${cp_s} s ($cp_mbps MB/s), chorus ingest+sync ${ch_s} s ($ch_mbps MB/s)"
echo "ingest_vs_cp ratio=$ratio chorus_mbps=$ch_mbps cp_mbps=$cp_mbps files=$FILES mb=$MB reps=$REPS"
