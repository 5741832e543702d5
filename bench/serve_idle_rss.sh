#!/usr/bin/env bash
# Figure 5: resident memory per idle keep-alive connection at 10,000
# connections, chorus and (for reference) nginx, same run.
#
#   bench/serve_idle_rss.sh [--conns N]
#
# For each server: start it, let bench/serve/hold.py open and close 500
# connections (each with one GET /health) so allocator arenas and the
# first-use costs are paid, read VmRSS (/proc/PID/status; nginx: master +
# workers), then open N keep-alive connections that each GET /health
# once and sit idle, check the server holds them (ss), read VmRSS again:
#
#   (RSS_after - RSS_before) / N
#
# Last line:
#
#   serve_idle_rss ratio=R chorus_bytes_per_conn=C nginx_bytes_per_conn=X
#
# ratio: chorus bytes per idle connection ÷ 4096 (the goal, <= 1.0);
# nginx's figure is the reference.
#
# Environment: as serve_hit.sh.
set -eu
CONNS=10000
while [ $# -gt 0 ]; do
	case $1 in
	--conns) CONNS=$2; shift ;;
	-h|--help) sed -n '2,22p' "$0"; exit 0 ;;
	*) echo "serve_idle_rss.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/serve/lib.sh"

make_library
ingest_library "$RUN/data"
mkdir -p "$RUN/www"

established() { # PORT
	ss -Htn state established "( sport = :$1 )" | wc -l
}

declare -A PER
for s in nginx chorus; do
	if [ "$s" = chorus ]; then start_chorus "$RUN/data"; url=$CHORUS_URL; pid=$CHORUS_PID
	else start_nginx "$RUN/www"; url=$NGINX_URL; pid=$NGINX_PID; fi
	port=${url##*:}
	"${CURL[@]}" -o /dev/null "$url/health"
	$PY "$SB/hold.py" 127.0.0.1 "$port" 0 /health 500 </dev/null >/dev/null
	sleep 1
	before=$(rss_kib "$s")
	mkfifo "$RUN/hold.in"
	$PY "$SB/hold.py" 127.0.0.1 "$port" "$CONNS" /health 0 <"$RUN/hold.in" >"$RUN/hold.out" 2>&1 &
	hold=$!
	exec 9>"$RUN/hold.in" # holds the client's stdin open
	for _ in $(seq 600); do
		grep -q '^ready' "$RUN/hold.out" && break
		kill -0 "$hold" 2>/dev/null || { cat "$RUN/hold.out" >&2; die "client failed"; }
		sleep 0.1
	done
	grep -q "^ready $CONNS" "$RUN/hold.out" || die "client not ready"
	sleep 1
	after=$(rss_kib "$s")
	est=$(established "$port")
	exec 9>&-
	wait "$hold" || true
	rm -f "$RUN/hold.in"
	[ "$est" -ge "$CONNS" ] || die "$s holds $est connections, not $CONNS"
	PER[$s]=$(calc '%.0f' "($after - $before) * 1024 / $CONNS")
	log "$s: VmRSS $before KiB before, $after KiB with $est idle connections held: ${PER[$s]} bytes per connection ($(server_pids "$s" | wc -w) processes)"
	stop_pid "$pid"
done
echo "serve_idle_rss ratio=$(calc '%.2f' "${PER[chorus]} / 4096") chorus_bytes_per_conn=${PER[chorus]} nginx_bytes_per_conn=${PER[nginx]} conns=$CONNS"
