# Shared by bench/cluster_hit.sh and bench/serve_console.sh (sourced after
# bench/serve/lib.sh): a throwaway PostgreSQL (Debian's newest, as user
# postgres, on a loopback port, in a /tmp directory that user can reach:
# not under build/). pg_setup NAME makes the directory; pg_start starts
# the server and sets CONNINFO and PG_PID; pg_cleanup (from the script's
# cleanup) stops it and removes the directory.

[ "$(id -u)" = 0 ] || die "runs PostgreSQL as user postgres: run as root"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || die "PostgreSQL is required (scripts/deps.sh installs it)"
PGWORK=

pg_setup() { # NAME
	PGWORK=$(mktemp -d "/tmp/chorus-$1.XXXXXX")
	chmod 755 "$PGWORK"
}

pg_cleanup() {
	[ -n "$PGWORK" ] || return 0
	if [ -f "$PGWORK/pg/postmaster.pid" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGWORK/pg" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$PGWORK"
}

pg_start() {
	local port
	port=$(free_port)
	install -d -o postgres -g postgres -m 700 "$PGWORK/pg"
	runuser -u postgres -- "$PGBIN/initdb" -D "$PGWORK/pg" -A trust --no-sync -E UTF8 \
		--locale=C -U postgres >"$RUN/initdb.log" 2>&1 || { cat "$RUN/initdb.log" >&2; die "initdb failed"; }
	printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n" \
		"$port" "$PGWORK/pg" >>"$PGWORK/pg/postgresql.conf"
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGWORK/pg" -l "$PGWORK/pg/log" -w -t 60 start >/dev/null ||
		{ tail -20 "$PGWORK/pg/log" >&2; die "PostgreSQL did not start"; }
	psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE chorus"
	CONNINFO="host=127.0.0.1 port=$port dbname=chorus user=postgres"
	PG_PID=$(head -1 "$PGWORK/pg/postmaster.pid")
}
