#!/bin/sh
# make demo: a throwaway PostgreSQL with CalendarServer's tables and sample
# people and events, the EWS simulator, and the bridge running as a
# service: the initial sync, then wave 1 cut over, then changes flowing
# both ways, and a summary per person.
set -u
cd "$(dirname "$0")/.."
. tests/it/lib.sh
if [ ! -f "$SCHEMA" ]; then
    echo "demo: needs $SCHEMA (CalendarServer's schema, in ../shared)" >&2
    exit 1
fi
[ -f "$XSD" ] || XSD=/dev/null
it_setup
CAROL=10000000-0000-0000-0000-00000000000c
ROOM=10000000-0000-0000-0000-0000000000r1
cat >"$WORK/people.csv" <<CSV
owner_uid,smtp,wave,kind
$ALICE,alice@example.org,1,user
$BOB,bob@example.org,1,user
$CAROL,carol@example.org,2,user
$ROOM,room-blue@example.org,2,room
CSV
cat >>"$WORK/calbridge.conf" <<CONF
[coexistence]
debounce_ms = 300
CONF
daemon=
stop_service() { [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null; daemon=; }
start_service() { cb_bg sync >>"$WORK/service.log" 2>&1 & daemon=$!; }
trap 'stop_service; it_cleanup' EXIT INT TERM
wait_for() { n=$(($1 * 10)); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }

echo "== people (owner_uid, mailbox, wave, kind)"
tail -n +2 "$WORK/people.csv" | sed 's/^/   /'
echo "== loading sample events into CalendarServer's tables"
for f in OneEvent AnotherEvent ThirdEvent PayDay home1-calendar_1-2 recurrance-Test-02A home_bad-calendar_bad-1; do
    [ -f "$SHARED/ccs/ics/$f.ics" ] && load put "$ALICE" "$SHARED/ccs/ics/$f.ics"
done
load bulk "$BOB" 200 standup >/dev/null
load bulk "$CAROL" 40 review >/dev/null
load bulk "$ROOM" 25 booking >/dev/null
echo "   alice: sample files from CalendarServer's tests; bob 200, carol 40, room-blue 25 generated events"

echo "== the simulated Exchange is not kind: as a loaded server does, it answers"
echo "   3 requests ErrorServerBusy (back off 500 ms), 2 with HTTP 503 (Retry-After 1 s),"
echo "   15 items ErrorServerBusy inside an HTTP 200, and loses the answer to one request"
echo "   after applying it; it keeps times in UTC and changes ChangeKeys by itself"
sim_control "busy=3&backoff=500&unavailable=2&retryafter=1&itembusy=15&dropafter=1"
echo "== calbridge sync (the service) starts: initial Apple -> Exchange sync"
start_service
synced() { [ "$(sim_dump | awk -F'\t' '$2 == "calendar"' | wc -l)" -ge 270 ]; }
wait_for 60 synced && echo "   $(sim_dump | awk -F'\t' '$2 == "calendar"' | wc -l) items in Exchange"
stop_service

echo "   Exchange then changes every item of bob's by itself (new ChangeKeys, as a reminder firing does)"
sim_control "touch=bob@example.org"
echo "== calbridge cutover --wave 1 (alice, bob): final delta, comparison, flip"
cb cutover --wave 1 | sed 's/^/   /'
start_service

echo "== alice now works in Outlook: a meeting made in Exchange reaches her Apple home"
t0=$(date +%s%N)
ews_create alice@example.org "Budget review (made in Outlook)" 2030-03-04T13:00:00Z 2030-03-04T14:00:00Z >/dev/null
in_apple() { apple_summaries "$ALICE" | grep -q 'Budget review'; }
wait_for 20 in_apple && echo "   in CalendarServer after $(( ($(date +%s%N) - t0) / 1000000 )) ms (streaming notification -> SyncFolderItems -> GetItem -> tables)"

echo "== carol still works in Apple Calendar: her edit reaches Exchange"
t0=$(date +%s%N)
load put "$CAROL" "$SHARED/ccs/ics/ThirdEvent.ics" carol-new.ics
in_exchange() { calendar_items carol@example.org | grep -q '/carol-new.ics'; }
wait_for 20 in_exchange && echo "   in Exchange after $(( ($(date +%s%N) - t0) / 1000000 )) ms"

echo "== someone edits alice's Apple copy (her mirror): Exchange's version wins, reported"
name=$(apple_summaries "$ALICE" | awk -F'\t' '/Budget review/ {print $1}')
pg_psql "$WORK/pg" -At -c "SELECT ICALENDAR_TEXT FROM CALENDAR_OBJECT WHERE RESOURCE_NAME = '$name'" |
    sed 's/^SUMMARY:.*/SUMMARY:Edited on the Apple side/' >"$WORK/edited.ics"
load put "$ALICE" "$WORK/edited.ics" "$name"
restored() { apple_summaries "$ALICE" | grep -q 'Budget review'; }
sleep 1
wait_for 20 restored && echo "   restored: $(apple_summaries "$ALICE" | awk -F'\t' -v n="$name" '$1 == n {print $2}')"
sleep 1
stop_service

echo "== summary"
cb status | sed -n '/^people/,/^links/p'
echo "   Exchange's faults met on the way (from its log): $(sim_log | awk -F'\t' '$4 != "ok" {n[$4]++} END {for (k in n) printf "%s %d; ", k, n[k]}')"
echo "   Exchange items per mailbox (the simulator's calendar folders):"
sim_dump | awk -F'\t' '$2 == "calendar" {n[$1]++} END {for (m in n) printf "     %-24s %d\n", m, n[m]}' | sort
cb status --conflicts | sed 's/^/   /'
echo "   service log:"
sed 's/^/     /' "$WORK/service.log" | tail -n 8
