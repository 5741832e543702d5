#!/bin/sh
# Runs every benchmark in bench/ (every bench/*.sh but this one), in order.
# Each prints a machine-readable summary as its last line on stdout.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
status=0
for b in "$dir"/*.sh; do
	[ "$(basename "$b")" = run.sh ] && continue
	echo "== $(basename "$b")" >&2
	"$b" || { echo "FAILED: $(basename "$b")" >&2; status=1; }
done
exit $status
