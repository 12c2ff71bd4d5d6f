#!/bin/sh
# make env / make env-stop: the test PostgreSQL and the simulator, left
# running for debugging. State lives in /tmp/calbridge-env.
set -u
cd "$(dirname "$0")/.."
. tests/pg.sh
DIR=/tmp/calbridge-env
case "${1:-}" in
start)
    [ -d "$DIR" ] && { echo "already running: make env-stop first"; exit 1; }
    mkdir -p "$DIR"; chmod 755 "$DIR"
    pg_start "$DIR/pg" ../shared/ccs/schema/v58-calendarserver-7.1.sql || exit 1
    build/ewssim --port 0 --port-file "$DIR/sim.port" --schema ../shared/ews/schema/libxml2/ews.xsd \
        --user svc:secret 2>"$DIR/sim.log" &
    echo $! >"$DIR/sim.pid"
    sleep 0.5
    echo "PostgreSQL: psql \"$(cat "$DIR/pg/dsn")\""
    echo "EWS simulator: http://127.0.0.1:$(cat "$DIR/sim.port")/EWS/Exchange.asmx (Basic svc:secret)"
    echo "  items: curl http://127.0.0.1:$(cat "$DIR/sim.port")/sim/dump"
    echo "load events: build/ccsload -d \"$(cat "$DIR/pg/dsn")\" put OWNER_UID FILE.ics"
    ;;
stop)
    [ -f "$DIR/sim.pid" ] && kill "$(cat "$DIR/sim.pid")" 2>/dev/null
    pg_stop "$DIR/pg"
    rm -rf "$DIR"
    echo "stopped"
    ;;
esac
