#!/bin/sh
# Installs the Debian 12 packages chorus needs, in two sets:
#
#   scripts/deps.sh run    what `make run` needs: build chorus (with the
#                          console's npm packages, into build/npm), make the
#                          demo library (ffmpeg), ingest and serve it
#   scripts/deps.sh test   the run set and everything the tests and the
#                          benchmarks use, and the npm packages the tests
#                          use (into build/npm too); the default
#
# Idempotent: does nothing (not even apt-get update, nor npm install) when
# all are present.
set -eu

usage() {
	echo "usage: scripts/deps.sh [run|test]" >&2
	exit 2
}
[ $# -le 1 ] || usage
set_name=${1:-test}

# Building (Makefile: cc, make, pkg-config and the libraries it names; npm
# for the console's uPlot and tus-js-client, which the binary embeds, and ca-certificates for
# its downloads, only Recommended by nodejs) and scripts/demo-library.sh
# (ffmpeg). scripts/demo.sh, scripts/embed.sh and scripts/web-bundle.sh
# need nothing else that a Debian system lacks (sh, od, sed, awk, nproc).
RUN_PKGS="build-essential pkg-config
libsqlite3-dev libssl-dev libavformat-dev libavcodec-dev libavutil-dev
libcurl4-openssl-dev libpq-dev libjansson-dev libargon2-dev libarchive-dev
ffmpeg ca-certificates"

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
#   chromium                  test_console: the console in a real browser,
#                             driven by playwright-core (npm, below)
#   (npm, devDependencies)    s3rver (tests/system/s3.py), playwright-core,
#                             @tus/server + @tus/file-store (an independent
#                             tus server for chorus upload, test_upload_cli)
#                             (tests/system/console_browser.mjs)
TEST_PKGS="clang libclang-rt-14-dev clang-format python3 sqlite3 curl procps iproute2 strace systemd
postgresql patroni etcd-server etcd-client awscli haproxy prometheus nginx wrk wamerican chromium"

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
# Node.js may come from elsewhere than Debian; any npm will do. Both sets
# need it: the build bundles uPlot and tus-js-client from build/npm into the binary.
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
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

# The npm packages, pinned in scripts/package.json, into build/npm: its
# "dependencies" are the run set's (built into the binary: uPlot, tus-js-client), its
# "devDependencies" only the test set's. npm runs only when one of the
# set's packages is absent or at another version than the pinned one.
root=$(cd "$(dirname "$0")/.." && pwd)
npmdir="$root/build/npm"
case $set_name in
run) fields=dependencies omit="--omit=dev" ;;
*) fields="dependencies devDependencies" omit="" ;;
esac
# shellcheck disable=SC2086
npm_missing=$(node -e '
	const fs = require("fs"), path = require("path");
	const [pkg, dir, ...fields] = process.argv.slice(1);
	const want = JSON.parse(fs.readFileSync(pkg, "utf8"));
	const miss = [];
	for (const f of fields)
		for (const [name, version] of Object.entries(want[f] || {})) {
			let got = null;
			try {
				got = JSON.parse(fs.readFileSync(
					path.join(dir, "node_modules", name, "package.json"), "utf8")).version;
			} catch (e) { /* not installed */ }
			if (got !== version) miss.push(name + "@" + version);
		}
	process.stdout.write(miss.join(" "));
' "$root/scripts/package.json" "$npmdir" $fields)
if [ -n "$npm_missing" ]; then
	echo "deps: installing $npm_missing into $npmdir (npm)" >&2
	mkdir -p "$npmdir"
	cp "$root/scripts/package.json" "$npmdir/package.json"
	# shellcheck disable=SC2086
	(cd "$npmdir" && npm install $omit --no-audit --no-fund --loglevel=error >/dev/null)
fi
