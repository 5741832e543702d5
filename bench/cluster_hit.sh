#!/usr/bin/env bash
# Cache-hit throughput of three cluster nodes behind haproxy against one
# node, in the same run on the same warmed tracks:
#
#   bench/cluster_hit.sh [--reps N] [--seconds S] [--conns "100 1000"]
#
# A throwaway PostgreSQL (Debian's, as user postgres, loopback port), the
# library of bench/serve/lib.sh (20 WAV tracks of exactly 4 MiB) ingested
# with --db into a directory origin that all nodes share, three nodes
# (`chorus serve --db`, 4G cache each), and haproxy running
# deploy/haproxy/haproxy.cfg.in rendered with the three nodes. Every node's
# cache is warmed by fetching every track from it once. Then, for each
# connection count, REPS times, in a rotating order:
#
#   direct    wrk -> node 1                       (one node, no haproxy)
#   haproxy1  wrk -> haproxy -> node 1            (nodes 2 and 3 put in
#                                                  maintenance through the
#                                                  admin socket: haproxy's cost)
#   haproxy3  wrk -> haproxy -> nodes 1, 2, 3     (the cluster)
#
#   wrk -t 2 -c CONNS -d S -s bench/serve/paths.lua (round-robin over the tracks)
#
# Every request carries an admin API key (`chorus key create --db`, made
# once the nodes are up): haproxy passes the header on to the nodes.
#
# with the utime+stime of the serving processes (the nodes used, and
# haproxy) before and after. The load generator, haproxy and the nodes
# share this machine's cores (`nproc`, 2 on the test machines): three nodes
# cannot be faster here than one in any way that would hold on three
# servers; what this measures is what haproxy costs, and that three nodes
# behind it serve at least what one does. Prints req/s, MB/s, CPU-s/GB per
# run, and as the last line:
#
#   cluster_hit ratio=R3 haproxy1_ratio=R1 ... (medians; ratios against direct)
#
# Environment: CHORUS_BIN (default build/release/chorus, built when unset),
# BENCH_DIR (build/bench-serve: the library is kept there), BENCH_TRACKS
# (20), BENCH_REPS (3), BENCH_SECONDS (8), BENCH_KEEP_RUN=1.
set -eu
REPS=${BENCH_REPS:-3}
SECS=${BENCH_SECONDS:-8}
CONNS="100"
while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift ;;
	--seconds) SECS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	-h|--help) sed -n '2,38p' "$0"; exit 0 ;;
	*) echo "cluster_hit.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/serve/lib.sh"
. "$(dirname "$0")/serve/pg.sh"
command -v haproxy >/dev/null || die "haproxy is required (scripts/deps.sh installs it)"

pg_setup cluster-hit
cleanup() {
	stop_all
	pg_cleanup
	if [ "${BENCH_KEEP_RUN:-0}" = 1 ]; then log "kept $RUN"; else rm -rf "$RUN"; fi
}

# node_start I: node I (1-3) on a free port; sets N_PID[I], N_URL[I].
declare -A N_PID=() N_URL=()
node_start() {
	local i=$1 port
	port=$(free_port)
	setsid "$CHORUS_BIN" serve --db "$CONNINFO" --origin "dir:$RUN/origin" --data "$RUN/n$i" \
		--listen "127.0.0.1:$port" --advertise "http://127.0.0.1:$port" --cache-size 4G \
		>"$RUN/n$i.out" 2>"$RUN/n$i.err" </dev/null &
	N_PID[$i]=$!
	PIDS+=("${N_PID[$i]}")
	N_URL[$i]=http://127.0.0.1:$port
	for _ in $(seq 600); do
		grep -q "serving .* on http://127.0.0.1:$port/" "$RUN/n$i.out" 2>/dev/null && return 0
		kill -0 "${N_PID[$i]}" 2>/dev/null || break
		sleep 0.05
	done
	cat "$RUN/n$i.out" "$RUN/n$i.err" >&2
	die "node $i did not start"
}

hap_cmd() { # COMMAND: through haproxy's admin socket
	$PY -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    d = s.recv(65536)
    if not d: break
    out += d
sys.stdout.write(out.decode())' "$RUN/haproxy.sock" "$1"
}
# hap_up: the servers haproxy has UP, "node1 node2 ..." (show stat's status).
hap_up() { hap_cmd "show stat" 2>/dev/null | awk -F, '$1 == "chorus_nodes" && $2 ~ /^node/ && $18 == "UP" {printf "%s ", $2}'; }
hap_wait() { # "node1 node2 node3 "
	for _ in $(seq 100); do
		[ "$(hap_up)" = "$1" ] && return 0
		sleep 0.1
	done
	die "haproxy: UP is \"$(hap_up)\", want \"$1\""
}
hap_start() {
	local port sport
	port=$(free_port) sport=$(free_port)
	sed -e "s|@BIND@|127.0.0.1:$port|" \
		-e "s|@STATS_SOCKET@|$RUN/haproxy.sock|" \
		-e "s|@STATS_BIND@|127.0.0.1:$sport|" \
		-e "s|@NODE1@|${N_URL[1]#http://}|" \
		-e "s|@NODE2@|${N_URL[2]#http://}|" \
		-e "s|@NODE3@|${N_URL[3]#http://}|" \
		"$ROOT/deploy/haproxy/haproxy.cfg.in" >"$RUN/haproxy.cfg"
	haproxy -c -q -f "$RUN/haproxy.cfg" || die "haproxy -c failed"
	setsid haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/haproxy.log" 2>&1 </dev/null &
	HAP_PID=$!
	PIDS+=("$HAP_PID")
	HAP_URL=http://127.0.0.1:$port
	hap_wait "node1 node2 node3 "
}

# The processes serving each configuration (for their CPU time).
server_pids() {
	case $1 in
	direct) echo "${N_PID[1]}" ;;
	haproxy1) echo "${N_PID[1]}" "$HAP_PID" ;;
	haproxy3) echo "${N_PID[1]}" "${N_PID[2]}" "${N_PID[3]}" "$HAP_PID" ;;
	esac
}
use() { # CONFIG: haproxy's servers for it
	case $1 in
	haproxy1)
		hap_cmd "disable server chorus_nodes/node2" >/dev/null
		hap_cmd "disable server chorus_nodes/node3" >/dev/null
		hap_wait "node1 " ;;
	haproxy3)
		hap_cmd "enable server chorus_nodes/node2" >/dev/null
		hap_cmd "enable server chorus_nodes/node3" >/dev/null
		hap_wait "node1 node2 node3 " ;;
	esac
}

make_library
pg_start
"$CHORUS_BIN" ingest --no-progress --db "$CONNINFO" --origin "dir:$RUN/origin" --data "$RUN/ingest" "$LIB" \
	>"$RUN/ingest.log" 2>&1 || { cat "$RUN/ingest.log" >&2; die "ingest failed"; }
grep -q "^ingest: $TRACKS added" "$RUN/ingest.log" || { cat "$RUN/ingest.log" >&2; die "ingest did not add every track"; }
for i in 1 2 3; do node_start "$i"; done
# One admin key for the cluster (in PostgreSQL), once every node has it.
chorus_key "$RUN/ingest" --db "$CONNINFO"
for i in 1 2 3; do key_wait "${N_URL[$i]}"; done
hap_start
stream_paths "${N_URL[1]}" "$RUN/chorus.paths" "$RUN/unused.paths"
for i in 1 2 3; do
	while read -r p; do "${CURL[@]}" "${AUTH[@]}" -o /dev/null "${N_URL[$i]}$p"; done <"$RUN/chorus.paths"
done
for i in 1 2 3; do
	log "node $i after warming: $("${CURL[@]}" "${AUTH[@]}" "${N_URL[$i]}/api/v1/node" | $PY -c 'import json,sys; c=json.load(sys.stdin)["cache"]; print("cache", c["bytes"], "bytes,", c["hits"], "hits,", c["misses"], "misses")')"
done
log "bench: $TRACKS tracks x $TRACK_BYTES bytes; binary $CHORUS_BIN; $(nproc) cores shared by wrk, haproxy and the nodes; $(haproxy -v | head -1); wrk -t 2 -d ${SECS}s"

printf '%-6s %-4s %-9s %9s %9s %8s %9s %6s %s\n' conns rep config req/s MB/s cpu_s cpu_s/GB errors p99_ms >&2
summary=""
CONFIGS=(direct haproxy1 haproxy3)
for c in $CONNS; do
	declare -A RPS=() CPG=()
	for r in $(seq 1 "$REPS"); do
		for k in 0 1 2; do
			s=${CONFIGS[$(((k + r - 1) % 3))]}
			use "$s"
			if [ "$s" = direct ]; then url=${N_URL[1]}; else url=$HAP_URL; fi
			line=$(run_wrk "$s" "$url" "$RUN/chorus.paths" "$c" "$SECS")
			bytes=$(kv "$line" bytes) cpu=$(kv "$line" cpu_s)
			cpg=$(calc '%.3f' "$cpu / ($bytes / 1e9)")
			errs=$(($(kv "$line" errors_connect) + $(kv "$line" errors_read) + $(kv "$line" errors_write) + $(kv "$line" errors_timeout) + $(kv "$line" non2xx)))
			RPS[$s]="${RPS[$s]:-} $(kv "$line" rps)"
			CPG[$s]="${CPG[$s]:-} $cpg"
			printf '%-6s %-4s %-9s %9s %9s %8s %9s %6s %s\n' "$c" "$r" "$s" "$(kv "$line" rps)" "$(kv "$line" mbps)" "$cpu" "$cpg" "$errs" "$(kv "$line" lat_p99_ms)" >&2
			[ "$errs" = 0 ] || log "  errors: $line"
		done
	done
	# shellcheck disable=SC2086
	d=$(median ${RPS[direct]}) h1=$(median ${RPS[haproxy1]}) h3=$(median ${RPS[haproxy3]})
	# shellcheck disable=SC2086
	dc=$(median ${CPG[direct]}) h1c=$(median ${CPG[haproxy1]}) h3c=$(median ${CPG[haproxy3]})
	r3=$(calc '%.2f' "$h3 / $d") r1=$(calc '%.2f' "$h1 / $d") r31=$(calc '%.2f' "$h3 / $h1")
	log "median c=$c: direct $d req/s ($(calc '%.0f' "$d * $TRACK_BYTES / 1e6") MB/s, $dc CPU-s/GB); haproxy + 1 node $h1 req/s ($h1c CPU-s/GB); haproxy + 3 nodes $h3 req/s ($h3c CPU-s/GB); 3 nodes / direct $r3, 1 node via haproxy / direct $r1, 3 nodes / 1 node via haproxy $r31"
	summary="$summary ratio_c$c=$r3 haproxy1_ratio_c$c=$r1 three_vs_one_haproxy_c$c=$r31 direct_rps_c$c=$d haproxy1_rps_c$c=$h1 haproxy3_rps_c$c=$h3 direct_cpugb_c$c=$dc haproxy1_cpugb_c$c=$h1c haproxy3_cpugb_c$c=$h3c"
	[ -n "${first_r3:-}" ] || { first_r3=$r3 first_r1=$r1; }
	unset RPS CPG
done
echo "cluster_hit ratio=$first_r3 haproxy1_ratio=$first_r1$summary cores=$(nproc) reps=$REPS seconds=$SECS"
