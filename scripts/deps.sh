#!/bin/sh
# Installs the Debian 12 packages chorus needs to build, test and benchmark.
# Idempotent: does nothing (not even apt-get update) when all are present.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libsqlite3-dev libssl-dev libavformat-dev libavcodec-dev libavutil-dev
libcurl4-openssl-dev libpq-dev libjansson-dev
ffmpeg sqlite3 curl python3 nginx wrk procps
wamerican postgresql"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
