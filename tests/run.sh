#!/bin/sh
# Runs every test: builds (gcc release, clang, ASan+UBSan, libFuzzer), then
# the unit tests under both gcc builds, the system tests against the
# sanitizer build, and a short run of every fuzz harness. Test programs
# print TAP-style lines: "ok - NAME", "not ok - NAME", numbered ones
# ("ok 3 - NAME"), skips ("ok - NAME # SKIP why") and "1..0 # SKIP why" for
# a program that ran nothing. This script counts them, lists what failed
# and what was skipped by name, and ends with "N passed, N failed, N skipped".
#
#   tests/run.sh                 everything
#   tests/run.sh unit|system|fuzz|format  one part (builds what it needs)
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
skipped=0
failures=""
skips=""
NL='
'

# The results in a TAP log, one a line: "pass NAME", "fail NAME" or
# "skip NAME # why". A number after ok ("ok 3 - x") is dropped; a skip on
# a "not ok" line is still a failure; "1..0 # SKIP why" (a program that
# ran none of its tests) is one skip.
results() { # logfile
	awk '
	function skip_reason(s) {
		sub(/^[^#]*#[ \t]*[Ss][Kk][Ii][Pp][A-Za-z]*[ \t:]*/, "", s)
		return s
	}
	/^1\.\.0/ && $0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/ {
		print "skip (all its tests) # " skip_reason($0)
		next
	}
	/^(not )?ok([ \t]|$)/ {
		st = $1 == "not" ? "fail" : "pass"
		s = $0
		sub(/^(not )?ok[ \t]*/, "", s)
		sub(/^[0-9]+[ \t]*/, "", s)
		sub(/^-[ \t]*/, "", s)
		if (st == "pass" && match(s, /#[ \t]*[Ss][Kk][Ii][Pp]/)) {
			name = substr(s, 1, RSTART - 1)
			sub(/[ \t]+$/, "", name)
			print "skip " name " # " skip_reason(s)
			next
		}
		print st " " s
	}' "$1"
}

count() { # name logfile rc
	r=$(results "$2")
	p=$(printf '%s\n' "$r" | grep -c '^pass ')
	f=$(printf '%s\n' "$r" | grep -c '^fail ')
	s=$(printf '%s\n' "$r" | grep -c '^skip ')
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $1 exited with status $3" >>"$2"
	elif [ $((p + f + s)) -eq 0 ]; then
		# A program that ran nothing and said nothing hides its tests.
		f=1
		echo "not ok - $1 reported no test results" >>"$2"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	[ "$f" -gt 0 ] && failures="$failures $1"
	[ "$s" -gt 0 ] && skips="$skips$(printf '%s\n' "$r" | sed -n "s|^skip |  [$1] |p")$NL"
	grep -E '^((not )?ok([ 	]|$)|1\.\.0)' "$2" | sed "s|^|[$1] |"
}

summary() {
	[ -n "$skips" ] && printf 'skipped:\n%s' "$skips"
	[ -n "$failures" ] && echo "failed:$failures (logs in $LOG)"
	echo "$passed passed, $failed failed, $skipped skipped"
}

build() {
	make -s -j"$JOBS" "$@" >"$LOG/build.log" 2>&1 || {
		cat "$LOG/build.log"
		echo "not ok - build $*"
		failed=$((failed + 1))
		failures="$failures build"
		summary
		exit 1
	}
}

# Every C file as .clang-format has it (make format rewrites them): one
# result, or one failure per file that differs with its first lines.
if [ "$part" = all ] || [ "$part" = format ]; then
	: >"$LOG/format.log"
	nfiles=0
	for f in src/*.c src/*/*.[ch] tests/*/*.[ch]; do
		nfiles=$((nfiles + 1))
		clang-format "$f" | cmp -s - "$f" && continue
		echo "not ok - format: $f differs from .clang-format (make format)" >>"$LOG/format.log"
		clang-format "$f" | diff "$f" - | head -8 | sed 's/^/#   /' >>"$LOG/format.log"
	done
	grep -q '^not ok' "$LOG/format.log" ||
		echo "ok - format: $nfiles C files as .clang-format has them" >>"$LOG/format.log"
	count format "$LOG/format.log" 0
fi

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
	# test_deploy_cluster traces the release build (the binary the unit
	# runs): it must be this tree's, not a stale one or none.
	build VARIANT=release
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
		else
			# What it found, where CI shows it: the report and the
			# input (a clean clone's logs are gone after the run).
			grep -E '^(==[0-9]+==ERROR|SUMMARY|    #[0-9]+ |.*runtime error|MS: |Base64: |artifact_prefix|Test unit written)' \
				"$LOG/$n.log" | head -60 | sed "s|^|[fuzz/$n] |"
		fi
		count "fuzz/$n" "$LOG/$n.log" $rc
	done
fi

summary
[ "$failed" -eq 0 ]
