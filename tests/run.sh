#!/bin/sh
# Runs every test: builds (gcc release, clang, ASan+UBSan, libFuzzer), then
# the unit tests under both gcc builds, the system tests against the
# sanitizer build, and a short run of every fuzz harness. Test programs
# print TAP-style "ok - NAME" / "not ok - NAME" lines; this script counts
# them and ends with "N passed, N failed".
#
#   tests/run.sh                 everything
#   tests/run.sh unit|system|fuzz  one part (builds what it needs)
#   FUZZ_SECONDS=N               seconds per fuzz harness (default 8)
set -u
cd "$(dirname "$0")/.."
part=${1:-all}
JOBS=$(nproc 2>/dev/null || echo 2)
PY=/usr/bin/python3
LOG=build/test-logs
mkdir -p "$LOG"
passed=0
failed=0
failures=""

count() { # name logfile rc
	p=$(grep -c '^ok - ' "$2")
	f=$(grep -c '^not ok - ' "$2")
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $1 exited with status $3" >>"$2"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -gt 0 ] && failures="$failures $1"
	grep -E '^(not )?ok - ' "$2" | sed "s|^|[$1] |"
}

build() {
	make -s -j"$JOBS" "$@" >"$LOG/build.log" 2>&1 || {
		cat "$LOG/build.log"
		echo "not ok - build $*"
		echo "0 passed, 1 failed"
		exit 1
	}
}

if [ "$part" = all ] || [ "$part" = unit ]; then
	build VARIANT=release
	build VARIANT=clang
	build VARIANT=asan
	for v in release asan; do
		for t in build/$v/tests/test_*; do
			n="$v/$(basename "$t")"
			"$t" >"$LOG/$(basename "$t").$v.log" 2>&1
			count "$n" "$LOG/$(basename "$t").$v.log" $?
		done
	done
fi

if [ "$part" = all ] || [ "$part" = system ]; then
	build VARIANT=asan
	export CHORUS_BIN="$PWD/build/asan/chorus"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	for t in tests/system/test_*.py; do
		n=$(basename "$t" .py)
		"$PY" "$t" >"$LOG/$n.log" 2>&1
		count "system/$n" "$LOG/$n.log" $?
	done
fi

if [ "$part" = all ] || [ "$part" = fuzz ]; then
	build fuzz
	secs=${FUZZ_SECONDS:-8}
	for f in build/fuzz/fuzz_*; do
		n=$(basename "$f")
		corpus="build/fuzz-corpus/$n"
		mkdir -p "$corpus"
		seeds=""
		[ -d "tests/fuzz/corpus/$n" ] && seeds="tests/fuzz/corpus/$n"
		dict=""
		[ -f "tests/fuzz/$n.dict" ] && dict="-dict=tests/fuzz/$n.dict"
		# shellcheck disable=SC2086
		"$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 $dict "$corpus" $seeds \
			>"$LOG/$n.log" 2>&1
		rc=$?
		if [ $rc -eq 0 ]; then
			echo "ok - $n ran ${secs}s: $(grep -o 'Done [0-9]* runs' "$LOG/$n.log")" >>"$LOG/$n.log"
		fi
		count "fuzz/$n" "$LOG/$n.log" $rc
	done
fi

[ -n "$failures" ] && echo "failed:$failures (logs in $LOG)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
