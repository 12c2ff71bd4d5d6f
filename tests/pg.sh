#!/bin/sh
# A throwaway PostgreSQL cluster with CalendarServer's tables, for tests and
# the demo. Sourced by the test scripts; run as `tests/pg.sh start DIR
# [SCHEMA.sql]` / `tests/pg.sh stop DIR` by hand.
#
# PostgreSQL refuses to run as root, so when we are root the cluster belongs
# to the unprivileged "postgres" user (created by Debian's package). The
# server listens only on a Unix socket inside DIR; the DSN is written to
# DIR/dsn.


pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
    dir=$1 schema=${2:-}
    bin=$(pg_bin)
    [ -n "$bin" ] || { echo "pg.sh: PostgreSQL server binaries not found" >&2; return 1; }
    mkdir -p "$dir/data" "$dir/sock"
    chmod 755 "$dir" "$dir/sock"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/data" "$dir/sock"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U caldav --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    port=$(( 20000 + $$ % 20000 ))
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/sock/server.log" -w -o \
        "-c listen_addresses='' -c unix_socket_directories=$dir/sock -p $port -c fsync=off -c max_connections=50" \
        start >/dev/null || { cat "$dir/sock/server.log" >&2; return 1; }
    echo "host=$dir/sock port=$port user=caldav dbname=caldav" >"$dir/dsn"
    psql -q -h "$dir/sock" -p "$port" -U caldav -d postgres -c "CREATE DATABASE caldav" >/dev/null
    if [ -n "$schema" ]; then
        psql -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U caldav -d caldav -f "$schema" >/dev/null 2>"$dir/schema.log" \
            || { cat "$dir/schema.log" >&2; return 1; }
    fi
}

pg_stop() {
    dir=$1
    [ -d "$dir/data" ] || return 0
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
}

# A restart as an administrator would do it: connections are cut. The
# server goes on logging where it did (a test reads that log).
pg_restart() {
    dir=$1
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/sock/server.log" -m fast -w restart \
        >/dev/null 2>&1
}

pg_psql() {
    dir=$1
    shift
    psql -X -q -At -v ON_ERROR_STOP=1 "$(cat "$dir/dsn")" "$@"
}

case "${1:-}" in
    start) set -eu; shift; pg_start "$@"; echo "PostgreSQL: psql \"$(cat "$1/dsn")\"" ;;
    stop) shift; pg_stop "$@" ;;
esac
