#!/bin/sh
# Installs the Debian 12 packages chorus needs to build, test and benchmark,
# and the npm packages the tests use (into build/npm). Idempotent: does
# nothing (not even apt-get update) when all are present.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libsqlite3-dev libssl-dev libavformat-dev libavcodec-dev libavutil-dev
libcurl4-openssl-dev libpq-dev libjansson-dev libargon2-dev
ffmpeg sqlite3 curl python3 nginx wrk procps
wamerican postgresql patroni etcd-server etcd-client awscli haproxy"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
# Node.js may come from elsewhere than Debian; any npm will do.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"

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

# The S3 protocol server the tests run on loopback, pinned.
root=$(cd "$(dirname "$0")/.." && pwd)
npmdir="$root/build/npm"
if [ ! -x "$npmdir/node_modules/.bin/s3rver" ]; then
	echo "deps: installing s3rver into $npmdir" >&2
	mkdir -p "$npmdir"
	cp "$root/scripts/package.json" "$npmdir/package.json"
	(cd "$npmdir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
