#!/bin/sh
# Installs the Debian 12 packages chorus needs, in two sets:
#
#   scripts/deps.sh run    what `make run` needs: build chorus, make the demo
#                          library (ffmpeg), ingest and serve it
#   scripts/deps.sh test   the run set and everything the tests and the
#                          benchmarks use, and the npm packages the tests
#                          use (into build/npm); the default
#
# Idempotent: does nothing (not even apt-get update) when all are present.
set -eu

usage() {
	echo "usage: scripts/deps.sh [run|test]" >&2
	exit 2
}
[ $# -le 1 ] || usage
set_name=${1:-test}

# Building (Makefile: cc, make, pkg-config and the libraries it names) and
# scripts/demo-library.sh (ffmpeg). scripts/demo.sh and scripts/embed.sh
# need nothing else that a Debian system lacks (sh, od, sed, nproc).
RUN_PKGS="build-essential pkg-config
libsqlite3-dev libssl-dev libavformat-dev libavcodec-dev libavutil-dev
libcurl4-openssl-dev libpq-dev libjansson-dev libargon2-dev
ffmpeg"

# Who uses what (so the list can be checked against the tests):
#   clang libclang-rt-14-dev  tests/run.sh's clang and libFuzzer builds
#   clang-format              tests/run.sh format (the tree against .clang-format)
#   python3                   tests/system/*.py, bench/*.py (/usr/bin/python3)
#   sqlite3                   bench (the sqlite3 shell as a reference)
#   curl                      test_cluster_netns (inside the namespace), bench
#   procps                    pkill (tests/system/pg.py), free, pgrep (bench)
#   iproute2                  ip netns (test_cluster_netns), ss (bench)
#   strace systemd            test_deploy_cluster: the unit's system call
#                             filter (strace, systemd-analyze syscall-filter)
#                             and systemd-analyze verify of the unit
#   postgresql                PostgreSQL 15 and psql (pg.py, patroni.py, bench)
#   patroni etcd-server etcd-client  test_patroni_deploy, test_cluster_db
#   awscli                    tests/system/s3.py (aws s3api)
#   haproxy                   test_deploy_cluster, bench/cluster_hit.sh
#   prometheus                test_metrics: promtool check metrics on every
#                             node's /metrics, and a real Prometheus scraping
#                             --metrics-listen and a bearer-token target
#   nginx wrk wamerican       bench (the reference server, the load, words)
#   ca-certificates           npm's downloads (only Recommended by nodejs)
#   nodejs npm                s3rver, below (any npm will do)
TEST_PKGS="clang libclang-rt-14-dev clang-format python3 sqlite3 curl procps iproute2 strace systemd
postgresql patroni etcd-server etcd-client awscli haproxy prometheus nginx wrk wamerican ca-certificates"

case $set_name in
run) pkgs=$RUN_PKGS ;;
test) pkgs="$RUN_PKGS $TEST_PKGS" ;;
*) usage ;;
esac

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
# Node.js may come from elsewhere than Debian; any npm will do.
if [ "$set_name" = test ] && ! command -v npm >/dev/null 2>&1; then
	missing="$missing nodejs npm"
fi

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing packages:$missing (run as root to install)" >&2
		exit 1
	fi
	echo "deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

[ "$set_name" = test ] || exit 0

# The S3 protocol server the tests run on loopback, pinned.
root=$(cd "$(dirname "$0")/.." && pwd)
npmdir="$root/build/npm"
if [ ! -x "$npmdir/node_modules/.bin/s3rver" ]; then
	echo "deps: installing s3rver into $npmdir" >&2
	mkdir -p "$npmdir"
	cp "$root/scripts/package.json" "$npmdir/package.json"
	(cd "$npmdir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
