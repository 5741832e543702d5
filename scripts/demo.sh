#!/bin/sh
# The main job: build chorus, make a demo library, ingest it, and serve it.
#   PORT=8080 DATA=./chorus-data scripts/demo.sh
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh run
make -s -j"$(nproc)" VARIANT=release
DATA=${DATA:-${CHORUS_DATA:-./chorus-data}}
PORT=${PORT:-8080}
echo "making the demo library in build/demo-library (ffmpeg)..."
./scripts/demo-library.sh build/demo-library
./build/release/chorus ingest --data "$DATA" build/demo-library
echo "starting the node: open the address it prints (Ctrl-C stops it)"
# The first start prints the admin's one-time password itself; later ones
# find it here until it is changed (chorus user passwd admin).
if [ -f "$DATA/admin-password" ]; then
	echo "admin password: $(cat "$DATA/admin-password") (user admin; kept in $DATA/admin-password until changed)"
fi
echo "console: http://127.0.0.1:$PORT/ (log in as admin)"
exec ./build/release/chorus serve --data "$DATA" --listen "127.0.0.1:$PORT"
