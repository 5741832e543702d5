#!/usr/bin/env bash
# Time from `chorus serve --join URL --token T` to the first byte served,
# against a node started with its settings as flags: bench/cluster/join.py.
#
#   bench/cluster_join.sh [--reps 5]
set -eu
cd "$(dirname "$0")/.."
if [ -z "${CHORUS_BIN:-}" ]; then
	make -s -j2 >/dev/null
	export CHORUS_BIN="$PWD/build/release/chorus"
fi
exec /usr/bin/python3 bench/cluster/join.py "$@"
