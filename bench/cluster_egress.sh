#!/usr/bin/env bash
# Origin egress with peer fill (1, 3 and 5 nodes under the same load) and
# the time to detect a dead peer: see bench/cluster/egress.py. Runs real
# PostgreSQL and s3rver on loopback; the load generator (Python threads)
# shares the machine's cores with the nodes.
#
#   bench/cluster_egress.sh [--nodes 1,3,5] [--listeners 300] [--kills 5]
#
# Environment: CHORUS_BIN (default build/release/chorus, built when unset).
set -eu
cd "$(dirname "$0")/.."
if [ -z "${CHORUS_BIN:-}" ]; then
	make -s -j2 >/dev/null
	export CHORUS_BIN="$PWD/build/release/chorus"
fi
exec /usr/bin/python3 bench/cluster/egress.py "$@"
