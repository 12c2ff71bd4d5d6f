# Shared set-up for the integration tests and the demo: a throwaway
# PostgreSQL with CalendarServer's schema, the EWS simulator, and a
# calbridge configuration pointing at both. Everything lives in $WORK and is
# removed by it_cleanup.
. tests/pg.sh   # every caller runs from the project root

SHARED=${SHARED:-../shared}
# CCS_SCHEMA=v66-current runs everything against the current schema.
SCHEMA=$SHARED/ccs/schema/${CCS_SCHEMA:-v58-calendarserver-7.1}.sql
XSD=$SHARED/ews/schema/libxml2/ews.xsd
B=${BIN:-build}   # BIN=build/asan runs the tests against sanitized programs
ALICE=10000000-0000-0000-0000-00000000000a
BOB=10000000-0000-0000-0000-00000000000b

sim_start() {   # sim_start PORT (0: any): the simulator, its port in $WORK/sim.port
    rm -f "$WORK/sim.port"
    $B/ewssim --port "$1" --port-file "$WORK/sim.port" --schema "$XSD" --user svc:secret \
        --client calbridge-app:app-secret \
        2>>"$WORK/sim.log" &
    SIM_PID=$!
    for _ in $(seq 50); do [ -s "$WORK/sim.port" ] && break; sleep 0.1; done
}

# The simulator stops and starts again on its port with nothing in it: an
# Exchange whose store was lost or replaced (new ItemIds, every SyncState
# and subscription of the old one unknown). The faults a run set are set
# again.
sim_restart() {
    kill "$SIM_PID" 2>/dev/null
    wait "$SIM_PID" 2>/dev/null
    sim_start "$(cat "$WORK/sim.port")"
    stormy
}

it_setup() {
    WORK=$(mktemp -d /tmp/calbridge-it.XXXXXX)
    chmod 755 "$WORK"
    pg_start "$WORK/pg" "$SCHEMA"
    DSN=$(cat "$WORK/pg/dsn")
    sim_start 0
    SIM=http://127.0.0.1:$(cat "$WORK/sim.port")
    printf 'secret\n' >"$WORK/password"
    chmod 600 "$WORK/password"   # calbridge refuses a secret others can read
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
# The simulator speaks plain HTTP on loopback.
allow_insecure = yes
batch_size = 10
timeout = 20
[state]
dir = $WORK/state
[people]
map = $WORK/people.csv
default_timezone = Europe/Berlin
CONF
}

# it_subenv NAME 'uid,smtp,wave,kind'...: a configuration of its own (people
# map, state directory) beside the shared PostgreSQL and simulator, in
# $WORK/NAME; prints that directory (its configuration is DIR/conf).
it_subenv() {
    d=$WORK/$1
    shift
    mkdir -p "$d"
    echo "owner_uid,smtp,wave,kind" >"$d/people.csv"
    for p in "$@"; do echo "$p" >>"$d/people.csv"; done
    sed -e "s|^map = .*|map = $d/people.csv|" -e "s|^dir = .*|dir = $d/state|" \
        "$WORK/calbridge.conf" >"$d/conf"
    echo "$d"
}

it_cleanup() {
    [ -n "${SIM_PID:-}" ] && kill "$SIM_PID" 2>/dev/null
    [ -n "${WORK:-}" ] && pkill -f "caldavsim.py .*$WORK" 2>/dev/null
    [ -n "${WORK:-}" ] && pg_stop "$WORK/pg" && rm -rf "$WORK"
}

cb() { $B/calbridge -c "$WORK/calbridge.conf" "$@"; }
# For `cb_bg ... &`: exec makes $! the calbridge process itself, not a
# subshell around it, so that kill reaches calbridge.
cb_bg() { exec $B/calbridge -c "$WORK/calbridge.conf" "$@"; }
load() { $B/ccsload -d "$DSN" "$@"; }
sim_dump() { curl -sf "$SIM/sim/dump"; }
sim_log() { curl -sf "$SIM/sim/log"; }
sim_control() { curl -sf -X POST "$SIM/sim/control?$1" >/dev/null; }
sim_reset() { curl -sf -X POST "$SIM/sim/reset" >/dev/null; }
sql() { pg_psql "$WORK/pg" -c "$1"; }
calendar_items() { sim_dump | awk -F'\t' -v m="$1" '$1 == m && $2 == "calendar"'; }

# Raw EWS as an Exchange user's client would send it (the simulator checks
# it against the schemas): ews_post MAILBOX '<m:Operation>...'.
ews_post() {
    curl -sf -u svc:secret -H 'Content-Type: text/xml; charset=utf-8' -H "X-AnchorMailbox: $1" \
        --data-binary @- "$SIM/EWS/Exchange.asmx" <<XML
<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"
 xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
<soap:Header><t:RequestServerVersion Version="Exchange2016"/>
<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>$1</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>
</soap:Header><soap:Body>$2</soap:Body></soap:Envelope>
XML
}
# ews_create MAILBOX SUBJECT START END [RECURRENCE_XML]: prints the ItemId.
ews_create() {
    ews_post "$1" "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>$2</t:Subject><t:Start>$3</t:Start><t:End>$4</t:End><t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus>${5:-}</t:CalendarItem></m:Items></m:CreateItem>" |
        grep -o '<t:ItemId Id="[^"]*"' | head -n 1 | cut -d'"' -f2
}
# ews_update MAILBOX ITEMID FIELD VALUE (calendar: field, e.g. Subject is item:Subject)
ews_set_subject() {
    ews_post "$1" "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" SendMeetingInvitationsOrCancellations=\"SendToNone\"><m:ItemChanges><t:ItemChange><t:ItemId Id=\"$2\"/><t:Updates><t:SetItemField><t:FieldURI FieldURI=\"item:Subject\"/><t:CalendarItem><t:Subject>$3</t:Subject></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>" >/dev/null
}
ews_delete() {
    ews_post "$1" "<m:DeleteItem DeleteType=\"MoveToDeletedItems\" SendMeetingCancellations=\"SendToNone\"><m:ItemIds><t:ItemId Id=\"$2\"/></m:ItemIds></m:DeleteItem>" >/dev/null
}
# The Apple side of a person: "resource_name<TAB>SUMMARY" per object.
apple_summaries() {
    pg_psql "$WORK/pg" -At -F "$(printf '\t')" -c "SELECT o.RESOURCE_NAME, substring(o.ICALENDAR_TEXT from 'SUMMARY:([^\r\n]*)') FROM CALENDAR_OBJECT o JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID AND b.BIND_MODE = 0 JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID WHERE h.OWNER_UID = '$1' AND b.CALENDAR_RESOURCE_NAME <> 'inbox' ORDER BY 1"
}

# kill9_randomly TIMES MAX_TENTHS ARGS...: runs calbridge ARGS TIMES times,
# each killed with SIGKILL after a random 0.1 .. MAX_TENTHS/10 seconds.
kill9_randomly() {
    times=$1 max=$2
    shift 2
    for _ in $(seq "$times"); do
        cb_bg "$@" >/dev/null 2>&1 &
        pid=$!
        r=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
        sleep "0.$((r % max + 1))"
        kill -9 $pid 2>/dev/null
        wait $pid 2>/dev/null
    done
}

# From `calbridge status`: a person's authority, and their linked items.
authority_of() { cb status | awk -v m="$1" '$2 == m {print $5}'; }
linked_of() { cb status | awk -v m="$1" '$2 == m {print $7}'; }

FAILS=0
# calm / stormy: around a step whose assertion counts exact requests, the
# injected faults (IT_CHAOS) pause and resume.
# streams_only CONF: only the stream can bring an Exchange change in (the
# periodic resync an hour away), with short connections and a quick
# heartbeat check, so that a test sees what streaming alone does.
streams_only() {
    cat >>"$1" <<CONF
[coexistence]
stream_minutes = 1
heartbeat = 3
debounce_ms = 200
resync_interval = 3600
CONF
}
calm() { [ -z "${IT_CHAOS:-}" ] || sim_control "chaos=0"; }
stormy() { [ -z "${IT_CHAOS:-}" ] || sim_control "chaos=$IT_CHAOS"; }
ok() { echo "ok   - $*"; }
not_ok() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$3', got '$2')"; fi; }
