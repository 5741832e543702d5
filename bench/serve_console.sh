#!/usr/bin/env bash
# What an open console costs the serving path: cache-hit streams on a
# cluster with one console open on every node, against none, in the same
# run on the same warmed tracks (issue 12: goal >= 0.98x):
#
#   bench/serve_console.sh [--reps N] [--seconds S] [--conns C] [--nodes N]
#
# A throwaway PostgreSQL (Debian's, as user postgres, loopback port), the
# library of bench/serve/lib.sh (20 WAV tracks of exactly 4 MiB) ingested
# with --db into a directory origin the nodes share, N nodes (3; `chorus
# serve --db`, 4G cache each), every node's cache warmed by fetching every
# track from it once. An admin user (`chorus user add --db`) for the
# consoles, an admin API key for wrk.
#
# The consoles: one bench/serve/console_poll.py per node, logged in with a
# password (the session cookie, as the page), polling that node the way
# web/console's loops do: overview every 1 s, series?since= of every node
# every 5 s, live every 2 s, the first node's log?since= every 3 s, the
# member list every 10 s (all loops at once: the page runs some of them
# only on their view, so this is an upper bound of one page). The node
# asks the others for overview, live and another node's series and log.
# The pollers start once and are paused (SIGUSR1) and resumed (SIGUSR2)
# between runs, so their since= state is kept, as a page left open.
#
# Then REPS times, alternating which goes first (ABBA...):
#
#   none      the pollers paused
#   console   the pollers running (resumed 1.5 s before wrk starts)
#
#   one wrk per node, each -t 1 -c C/N -d S -s bench/serve/paths.lua, all at once
#
# with the utime+stime of every node, of PostgreSQL's processes and of
# the pollers before and after. Prints req/s (the wrks' sum), MB/s,
# CPU-s of the nodes, CPU-s/GB (nodes), PostgreSQL's and the pollers'
# CPU-s, per run; every poller request must be a 200 and every fan-out
# answered by every node (else the bench fails). Last line:
#
#   serve_console ratio=R cpu_ratio=C ...
#
# ratio: median console req/s / median none req/s (goal >= 0.98);
# cpu_ratio: the same for the nodes' CPU-s/GB. pair_ratio: the median of
# each rep's console/none (the two runs next to each other).
#
# The 2 cores are shared by the wrks, the nodes, PostgreSQL and the
# pollers: what the pollers' own CPU takes from the others is printed
# (poll_cpu_s) and is part of what "console" costs here; on a real
# cluster the page runs in the operator's browser, elsewhere.
#
# After the runs, with no streams and the pollers paused, each console
# endpoint is asked BENCH_ENDPOINT_N (1000) times in a row of node 1 and
# the nodes' CPU per request printed (less their idle CPU), with what the
# consoles' request rates make of it (console_cpu_ms_per_s).
# BENCH_PERF=PREFIX records the nodes (perf record -g) during each
# endpoint's requests into PREFIX.NAME (the CPU figures then include
# perf's own overhead).
#
# Environment: CHORUS_BIN (default build/release/chorus, built when
# unset), BENCH_DIR (build/bench-serve: the library is kept there),
# BENCH_TRACKS (20), BENCH_REPS (6), BENCH_SECONDS (8), BENCH_KEEP_RUN=1.
set -eu
REPS=${BENCH_REPS:-6}
SECS=${BENCH_SECONDS:-8}
CONNS=99
NODES=3
while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift ;;
	--seconds) SECS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	--nodes) NODES=$2; shift ;;
	-h|--help) sed -n '2,59p' "$0"; exit 0 ;;
	*) echo "serve_console.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/serve/lib.sh"
. "$(dirname "$0")/serve/pg.sh"
[ "$NODES" -ge 1 ] && [ "$CONNS" -ge "$NODES" ] || die "--conns must be at least --nodes"
PER=$((CONNS / NODES))

pg_setup serve-console
POLL_PIDS=()
cleanup() {
	local p
	for p in "${POLL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	stop_all
	pg_cleanup
	if [ "${BENCH_KEEP_RUN:-0}" = 1 ]; then log "kept $RUN"; else rm -rf "$RUN"; fi
}

# node_start I: node I on a free port; sets N_PID[I], N_URL[I].
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

pids_cpu() { # PID...: utime+stime in seconds
	local p t=0
	for p in "$@"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	calc '%.2f' "$t / $HZ"
}
# PostgreSQL: the postmaster and its children now (backends come and go:
# a backend that exited between the readings is not counted).
pg_cpu() { pids_cpu "$PG_PID" $(pgrep -P "$PG_PID"); }
nodes_cpu() { pids_cpu "${N_PID[@]}"; }
poll_cpu() { pids_cpu "${POLL_PIDS[@]}"; }

# pollers running|paused
pollers() {
	local p sig=USR1
	[ "$1" = running ] && sig=USR2
	for p in "${POLL_PIDS[@]}"; do kill -"$sig" "$p"; done
}
# poll_totals: "requests non200 unanswered" over every poller's STATS.
poll_totals() {
	$PY -c '
import json, sys
req = bad = un = 0
for p in sys.argv[1:]:
    for e in json.load(open(p))["endpoints"].values():
        req += e["requests"]
        bad += sum(n for c, n in e["codes"].items() if c != "200")
        un += e.get("unanswered", 0)
print(req, bad, un)' "$RUN"/poll-*.json
}

# run_all MODE: the wrks at once, one per node; prints a key=value line.
run_all() {
	local mode=$1 i c0 p0 g0 c1 p1 g1 w wrks=() ok=1
	c0=$(nodes_cpu) p0=$(poll_cpu) g0=$(pg_cpu)
	for i in $(seq 1 "$NODES"); do
		WRK_PATHS=$RUN/chorus.paths wrk -t 1 -c "$PER" -d "${SECS}s" --timeout 60s -s "$SB/paths.lua" \
			"${AUTH[@]}" "${N_URL[$i]}" >"$RUN/wrk-$mode-$i.out" 2>&1 &
		wrks+=($!)
	done
	for w in "${wrks[@]}"; do wait "$w" || ok=0; done
	c1=$(nodes_cpu) p1=$(poll_cpu) g1=$(pg_cpu)
	[ $ok = 1 ] || { cat "$RUN"/wrk-"$mode"-*.out >&2; die "wrk failed"; }
	for i in $(seq 1 "$NODES"); do
		grep '^WRK ' "$RUN/wrk-$mode-$i.out" | tail -1 | grep . || { cat "$RUN/wrk-$mode-$i.out" >&2; die "wrk printed no summary"; }
	done | $PY -c '
import sys
tot = {}
p99 = 0.0
for line in sys.stdin:
    kv = dict(x.split("=", 1) for x in line.split()[1:])
    for k in ("requests", "bytes", "rps", "errors_connect", "errors_read", "errors_write", "errors_timeout", "non2xx"):
        tot[k] = tot.get(k, 0.0) + float(kv[k])
    p99 = max(p99, float(kv["lat_p99_ms"]))
errs = sum(tot[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout", "non2xx"))
print("requests=%.0f bytes=%.0f rps=%.1f mbps=%.1f errors=%.0f p99_ms=%.1f" % (
    tot["requests"], tot["bytes"], tot["rps"], tot["bytes"] / float(sys.argv[1]) / 1e6, errs, p99))' "$SECS" |
		tr '\n' ' '
	echo "cpu_s=$(calc '%.2f' "$c1 - $c0") pg_cpu_s=$(calc '%.2f' "$g1 - $g0") poll_cpu_s=$(calc '%.2f' "$p1 - $p0")"
}

make_library
pg_start
"$CHORUS_BIN" ingest --no-progress --db "$CONNINFO" --origin "dir:$RUN/origin" --data "$RUN/ingest" "$LIB" \
	>"$RUN/ingest.log" 2>&1 || { cat "$RUN/ingest.log" >&2; die "ingest failed"; }
grep -q "^ingest: $TRACKS added" "$RUN/ingest.log" || { cat "$RUN/ingest.log" >&2; die "ingest did not add every track"; }
for i in $(seq 1 "$NODES"); do node_start "$i"; done
chorus_key "$RUN/ingest" --db "$CONNINFO"
for i in $(seq 1 "$NODES"); do key_wait "${N_URL[$i]}"; done
# The consoles' user: an admin with a password, as a person logs in.
CONSOLE_PW=bench-$$-$RANDOM$RANDOM
printf '%s\n' "$CONSOLE_PW" | "$CHORUS_BIN" user add console --role admin --db "$CONNINFO" --data "$RUN/user-node" \
	>"$RUN/user.log" 2>&1 || { cat "$RUN/user.log" >&2; die "chorus user add failed"; }
for i in $(seq 1 "$NODES"); do
	for _ in $(seq 200); do
		code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
			-d "{\"user\": \"console\", \"password\": \"$CONSOLE_PW\"}" "${N_URL[$i]}/api/v1/session") || true
		[ "$code" = 200 ] && break
		sleep 0.05
	done
	[ "$code" = 200 ] || die "node $i does not log the console user in ($code)"
done
stream_paths "${N_URL[1]}" "$RUN/chorus.paths" "$RUN/unused.paths"
for i in $(seq 1 "$NODES"); do
	while read -r p; do "${CURL[@]}" "${AUTH[@]}" -o /dev/null "${N_URL[$i]}$p"; done <"$RUN/chorus.paths"
	log "node $i after warming: $("${CURL[@]}" "${AUTH[@]}" "${N_URL[$i]}/api/v1/node" | $PY -c 'import json,sys; c=json.load(sys.stdin)["cache"]; print("cache", c["bytes"], "bytes,", c["hits"], "hits,", c["misses"], "misses")')"
done
# Every node must see every other alive before the consoles' fan-out counts.
for _ in $(seq 100); do
	alive=$("${CURL[@]}" "${AUTH[@]}" "${N_URL[1]}/api/v1/overview" | $PY -c 'import json,sys; print(json.load(sys.stdin)["health"]["alive"])')
	[ "$alive" = "$NODES" ] && break
	sleep 0.1
done
[ "$alive" = "$NODES" ] || die "node 1 sees $alive nodes alive, not $NODES"
for i in $(seq 1 "$NODES"); do
	$PY "$SB/console_poll.py" "${N_URL[$i]}" console "$CONSOLE_PW" "$RUN/poll-$i.json" \
		>"$RUN/poll-$i.out" 2>&1 </dev/null &
	POLL_PIDS+=($!)
done
for i in $(seq 1 "$NODES"); do
	for _ in $(seq 100); do [ -f "$RUN/poll-$i.json" ] && break; sleep 0.05; done
	[ -f "$RUN/poll-$i.json" ] || { cat "$RUN/poll-$i.out" >&2; die "poller $i did not log in"; }
done
log "bench: $NODES nodes, $TRACKS tracks x $TRACK_BYTES bytes; binary $CHORUS_BIN; $(nproc) cores shared by the wrks, the nodes, PostgreSQL and the pollers; $NODES x wrk -t 1 -c $PER -d ${SECS}s"

printf '%-4s %-8s %9s %9s %7s %9s %6s %8s %7s %8s %9s\n' rep mode req/s MB/s cpu_s cpu_s/GB errors p99_ms pg_cpu poll_cpu poll_reqs >&2
declare -A RPS=() CPG=()
PAIRS="" CPAIRS=""
prev=$(poll_totals)
for r in $(seq 1 "$REPS"); do
	if [ $((r % 2)) = 1 ]; then order="none console"; else order="console none"; fi
	declare -A R1=() C1=()
	for m in $order; do
		if [ "$m" = console ]; then pollers running; t_on=$(date +%s.%N); else pollers paused; fi
		sleep 1.5
		line=$(run_all "$m")
		if [ "$m" = console ]; then
			pollers paused
			POLL_WALL=$(calc '%.3f' "${POLL_WALL:-0} + $(date +%s.%N) - $t_on")
			sleep 1
		fi
		now=$(poll_totals)
		set -- $prev
		p_req=$1 p_bad=$2 p_un=$3
		set -- $now
		n_req=$(($1 - p_req)) n_bad=$(($2 - p_bad)) n_un=$(($3 - p_un))
		prev=$now
		bytes=$(kv "$line" bytes) cpu=$(kv "$line" cpu_s)
		cpg=$(calc '%.4f' "$cpu / ($bytes / 1e9)")
		RPS[$m]="${RPS[$m]:-} $(kv "$line" rps)" CPG[$m]="${CPG[$m]:-} $cpg"
		R1[$m]=$(kv "$line" rps) C1[$m]=$cpg
		printf '%-4s %-8s %9s %9s %7s %9s %6s %8s %7s %8s %9s\n' "$r" "$m" "$(kv "$line" rps)" "$(kv "$line" mbps)" \
			"$cpu" "$cpg" "$(kv "$line" errors)" "$(kv "$line" p99_ms)" "$(kv "$line" pg_cpu_s)" "$(kv "$line" poll_cpu_s)" "$n_req" >&2
		[ "$(kv "$line" errors)" = 0 ] || log "  wrk errors: $line"
		[ "$n_bad" = 0 ] || die "rep $r $m: $n_bad console requests were not answered 200 ($RUN/poll-*.json)"
		[ "$n_un" = 0 ] || die "rep $r $m: $n_un fan-out answers left a node unanswered"
		[ "$m" = none ] && [ "$n_req" != 0 ] && die "rep $r: the paused pollers made $n_req requests"
		[ "$m" = console ] && [ "$n_req" -lt $((NODES * SECS)) ] && die "rep $r: only $n_req console requests in ${SECS}s"
	done
	PAIRS="$PAIRS $(calc '%.4f' "${R1[console]} / ${R1[none]}")"
	CPAIRS="$CPAIRS $(calc '%.4f' "${C1[console]} / ${C1[none]}")"
	unset R1 C1
done
# shellcheck disable=SC2086
n_rps=$(median ${RPS[none]}) c_rps=$(median ${RPS[console]}) n_cpg=$(median ${CPG[none]}) c_cpg=$(median ${CPG[console]})
# shellcheck disable=SC2086
pr=$(median $PAIRS) pc=$(median $CPAIRS)
ratio=$(calc '%.3f' "$c_rps / $n_rps") cratio=$(calc '%.3f' "$c_cpg / $n_cpg")
log "per rep console/none req/s:$PAIRS; CPU-s/GB:$CPAIRS"
log "per endpoint, every poller, whole bench (requests, mean seconds to answer, mean body bytes):"
$PY -c '
import json, sys
agg = {}
for p in sys.argv[1:]:
    for k, e in json.load(open(p))["endpoints"].items():
        a = agg.setdefault(k, [0, 0.0, 0])
        a[0] += e["requests"]; a[1] += e["seconds"]; a[2] += e["bytes"]
for k, (n, s, b) in sorted(agg.items()):
    print("  %-9s %6d  %7.2f ms  %8.0f B" % (k, n, 1e3 * s / n, b / n))' "$RUN"/poll-*.json >&2

# What each endpoint costs the nodes: with the streams stopped and the
# pollers paused, ENDPOINT_N sequential requests of each of the console's
# paths to node 1 (bench/serve/endpoint_cost.py, logged in as the
# console), the CPU of every node around them less what the nodes burn idle
# (heartbeats, the replica) over the same time; /health as the floor.
EN=${BENCH_ENDPOINT_N:-1000}
ids=$("${CURL[@]}" "${AUTH[@]}" "${N_URL[1]}/api/v1/overview" | $PY -c 'import json,sys
ns = json.load(sys.stdin)["nodes"]
print(next(n["id"] for n in ns if n["self"]), next((n["id"] for n in ns if not n["self"]), ""))')
set -- $ids
SELF=$1 OTHER=${2:-$1}
c0=$(nodes_cpu) t0=$(date +%s.%N)
sleep 5
IDLE=$(calc '%.5f' "($(nodes_cpu) - $c0) / ($(date +%s.%N) - $t0)")
log "endpoint cost: node 1 = $SELF, another = $OTHER; the nodes idle: $IDLE CPU-s/s; $EN requests each"
printf '%-30s %8s %10s %10s %9s
' path requests wall_ms/req cpu_ms/req bytes/req >&2
since=$(($(date +%s) - 5))
COSTS=""
for e in health:/health node:/api/v1/node overview:/api/v1/overview live:/api/v1/live \
	cluster:/api/v1/cluster series_self:/api/v1/nodes/$SELF/series?since=$since \
	series_other:/api/v1/nodes/$OTHER/series?since=$since log_self:/api/v1/nodes/$SELF/log \
	log_other:/api/v1/nodes/$OTHER/log; do
	name=${e%%:*} path=${e#*:}
	if [ -n "${BENCH_PERF:-}" ]; then
		perf record -q -g -p "$(IFS=,; echo "${N_PID[*]}")" -o "$BENCH_PERF.$name" >/dev/null 2>&1 &
		perf_pid=$!
		sleep 0.5
	fi
	c0=$(nodes_cpu)
	out=$($PY "$SB/endpoint_cost.py" "${N_URL[1]}" console "$CONSOLE_PW" "$path" "$EN") || die "endpoint_cost $path failed"
	c1=$(nodes_cpu)
	[ -z "${BENCH_PERF:-}" ] || { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
	secs=$(kv "$out" seconds)
	[ "$(kv "$out" non200)" = 0 ] || die "$path: $(kv "$out" non200) answers not 200"
	ms=$(calc '%.3f' "1e3 * (($c1 - $c0) - $IDLE * $secs) / $EN")
	COSTS="$COSTS $name=$ms"
	printf '%-30s %8s %10s %10s %9s
' "$name" "$EN" "$(calc '%.3f' "1e3 * $secs / $EN")" "$ms" "$(calc '%.0f' "$(kv "$out" bytes) / $EN")" >&2
done
# The consoles' cost per second from these costs and the pollers' request
# counts over the time they ran (a series or log is for this node or
# another: counted as self for 1 in NODES).
est=$($PY -c '
import json, sys
costs = dict(kv.split("=") for kv in sys.argv[3].split())
costs = {k: float(v) for k, v in costs.items()}
n, wall = int(sys.argv[1]), float(sys.argv[2])
cnt = {}
for p in sys.argv[4:]:
    for k, e in json.load(open(p))["endpoints"].items():
        cnt[k] = cnt.get(k, 0) + e["requests"]
mix = lambda a, b: (costs[a] + (n - 1) * costs[b]) / n
per = {"overview": costs["overview"], "live": costs["live"], "cluster": costs["cluster"],
       "series": mix("series_self", "series_other"), "log": mix("log_self", "log_other")}
ms = sum(cnt.get(k, 0) * v for k, v in per.items()) / wall
print("%.2f" % ms)' "$NODES" "$POLL_WALL" "$COSTS" "$RUN"/poll-*.json)
log "the consoles at these costs: $est CPU-ms per second of the nodes (pollers ran ${POLL_WALL}s in all)"

log "median: none $n_rps req/s ($n_cpg CPU-s/GB), console $c_rps req/s ($c_cpg CPU-s/GB); console/none req/s $ratio (pairs $pr), CPU-s/GB $cratio (pairs $pc)"
echo "serve_console ratio=$ratio cpu_ratio=$cratio pair_ratio=$pr pair_cpu_ratio=$pc none_rps=$n_rps console_rps=$c_rps none_cpugb=$n_cpg console_cpugb=$c_cpg console_cpu_ms_per_s=$est$COSTS nodes=$NODES conns=$CONNS cores=$(nproc) reps=$REPS seconds=$SECS"
