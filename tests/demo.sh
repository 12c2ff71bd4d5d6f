#!/bin/sh
# make demo: a throwaway PostgreSQL with CalendarServer's tables and sample
# people and events, the EWS simulator, one real `calbridge sync --once`,
# then an edit and a deletion carried by a second pass, and a summary.
set -u
cd "$(dirname "$0")/.."
. tests/it/lib.sh
if [ ! -f "$SCHEMA" ]; then
    echo "demo: needs $SCHEMA (CalendarServer's schema, in ../shared)" >&2
    exit 1
fi
[ -f "$XSD" ] || XSD=/dev/null
it_setup
trap it_cleanup EXIT INT TERM
echo "== sample people"; tail -n +2 "$WORK/people.csv"
echo "== loading sample events into CalendarServer tables"
for f in OneEvent AnotherEvent ThirdEvent PayDay home1-calendar_1-2 recurrance-Test-02A home_bad-calendar_bad-1; do
    [ -f "$SHARED/ccs/ics/$f.ics" ] && load put "$ALICE" "$SHARED/ccs/ics/$f.ics"
done
load bulk "$BOB" 200 standup >/dev/null
echo "   alice: $(sql "SELECT count(*) FROM CALENDAR_OBJECT o JOIN CALENDAR_BIND b USING (CALENDAR_RESOURCE_ID) WHERE b.CALENDAR_RESOURCE_NAME = 'calendar' AND b.CALENDAR_HOME_RESOURCE_ID = (SELECT RESOURCE_ID FROM CALENDAR_HOME WHERE OWNER_UID = '$ALICE')") events, bob: 200 events"
echo "== calbridge sync --once (initial)"
cb sync --once
echo "== an edit and a deletion on the Apple side, then another pass"
sed 's/^SUMMARY:.*/SUMMARY:Moved to the big room/' "$SHARED/ccs/ics/OneEvent.ics" >"$WORK/edit.ics"
load put "$ALICE" "$WORK/edit.ics" OneEvent.ics
load delete "$ALICE" AnotherEvent.ics
cb sync --once
echo "== Exchange side (simulator): items per mailbox"
sim_dump | awk -F'\t' '$2 == "calendar" {n[$1]++} END {for (m in n) printf "   %-20s %d\n", m, n[m]}'
echo "== calbridge status"
cb status
