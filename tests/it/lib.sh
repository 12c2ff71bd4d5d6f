# Shared set-up for the integration tests and the demo: a throwaway
# PostgreSQL with CalendarServer's schema, the EWS simulator, and a
# calbridge configuration pointing at both. Everything lives in $WORK and is
# removed by it_cleanup.
. tests/pg.sh   # every caller runs from the project root

SHARED=${SHARED:-../shared}
SCHEMA=$SHARED/ccs/schema/v58-calendarserver-7.1.sql
XSD=$SHARED/ews/schema/libxml2/ews.xsd
B=build
ALICE=10000000-0000-0000-0000-00000000000a
BOB=10000000-0000-0000-0000-00000000000b

it_setup() {
    WORK=$(mktemp -d /tmp/calbridge-it.XXXXXX)
    chmod 755 "$WORK"
    pg_start "$WORK/pg" "$SCHEMA"
    DSN=$(cat "$WORK/pg/dsn")
    $B/ewssim --port 0 --port-file "$WORK/sim.port" --schema "$XSD" --user svc:secret \
        2>"$WORK/sim.log" &
    SIM_PID=$!
    for _ in $(seq 50); do [ -s "$WORK/sim.port" ] && break; sleep 0.1; done
    SIM=http://127.0.0.1:$(cat "$WORK/sim.port")
    printf 'secret\n' >"$WORK/password"
    cat >"$WORK/people.csv" <<CSV
owner_uid,smtp,wave,kind
$ALICE,alice@example.org,1,user
$BOB,bob@example.org,1,user
CSV
    cat >"$WORK/calbridge.conf" <<CONF
[apple]
dsn = $DSN
poll_interval_ms = 200
[exchange]
url = $SIM/EWS/Exchange.asmx
auth = basic
username = svc
password_file = $WORK/password
impersonation = yes
batch_size = 10
timeout = 20
[state]
dir = $WORK/state
[people]
map = $WORK/people.csv
default_timezone = Europe/Berlin
CONF
}

it_cleanup() {
    [ -n "${SIM_PID:-}" ] && kill "$SIM_PID" 2>/dev/null
    [ -n "${WORK:-}" ] && pg_stop "$WORK/pg" && rm -rf "$WORK"
}

cb() { $B/calbridge -c "$WORK/calbridge.conf" "$@"; }
load() { $B/ccsload -d "$DSN" "$@"; }
sim_dump() { curl -sf "$SIM/sim/dump"; }
sim_log() { curl -sf "$SIM/sim/log"; }
sim_control() { curl -sf -X POST "$SIM/sim/control?$1" >/dev/null; }
sim_reset() { curl -sf -X POST "$SIM/sim/reset" >/dev/null; }
sql() { pg_psql "$WORK/pg" -c "$1"; }
calendar_items() { sim_dump | awk -F'\t' -v m="$1" '$1 == m && $2 == "calendar"'; }

FAILS=0
ok() { echo "ok   - $*"; }
not_ok() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$3', got '$2')"; fi; }
