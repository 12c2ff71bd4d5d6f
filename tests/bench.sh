#!/bin/sh
# make bench: calbridge measured against its goals (issue 16) in one run on
# this machine, each figure beside its target:
#   - an initial sync of BENCH_EVENTS events (default 20,000) over
#     BENCH_PEOPLE people (default 50) against the simulator: events/s,
#     calbridge's CPU per event, its peak memory;
#   - the floor: reading and parsing the same rows alone (tests/readparse.c);
#   - a naive Python script doing the same job on the same data
#     (tests/bench_naive.py: psycopg2, icalendar, exchangelib);
#   - translate on one core; the idle poll; the latency of single changes
#     through the running service at the default settings.
# make bench BENCH_EVENTS=1000000 BENCH_PEOPLE=10000 is the million-event
# run (about ten minutes); BENCH_NAIVE=0 skips the Python script.
set -u
cd "$(dirname "$0")/.."
. tests/it/lib.sh
[ -f "$SCHEMA" ] || { echo "bench: needs ../shared"; exit 1; }
it_setup
trap it_cleanup EXIT INT TERM
NP=${BENCH_PEOPLE:-50}
NE=${BENCH_EVENTS:-20000}
PER=$(( (NE + NP - 1) / NP ))
NE=$((PER * NP))

# The people and their homes as CalendarServer provisions them; their
# events written by SQL in bulk (one-hour events in UTC, rows of
# CALENDAR_OBJECT and CALENDAR_OBJECT_REVISIONS as CalendarServer's; the
# free/busy index is not written, nothing here reads it).
echo "owner_uid,smtp,wave,kind" >"$WORK/people.csv"
seq "$NP" | awk '{printf "%08d-0000-0000-0000-00000000be00\n", $1}' >"$WORK/uids"
awk '{printf "%s,p%d@example.org,1,user\n", $1, NR}' "$WORK/uids" >>"$WORK/people.csv"
$B/ccsload -d "$DSN" homes - <"$WORK/uids" >"$WORK/homes" || exit 1
pg_psql "$WORK/pg" <<SQL || exit 1
CREATE TEMP TABLE hc(uid text, cal bigint);
\\copy hc FROM '$WORK/homes' (DELIMITER ' ')
INSERT INTO CALENDAR_OBJECT (CALENDAR_RESOURCE_ID, RESOURCE_NAME, ICALENDAR_TEXT, ICALENDAR_UID,
                             ICALENDAR_TYPE, MD5)
SELECT hc.cal, 'bench-' || lpad(i::text, 7, '0') || '.ics', t.body, hc.uid || '-' || i, 'VEVENT',
       md5(t.body)
  FROM hc CROSS JOIN generate_series(0, $PER - 1) i
  CROSS JOIN LATERAL (SELECT format(E'BEGIN:VCALENDAR\\r\\nVERSION:2.0\\r\\nPRODID:-//calbridge//bench//EN\\r\\n'
        'BEGIN:VEVENT\\r\\nUID:%s-%s\\r\\nDTSTAMP:20260101T000000Z\\r\\nDTSTART:%s\\r\\n'
        'DURATION:PT1H\\r\\nSUMMARY:Bench event %s\\r\\nEND:VEVENT\\r\\nEND:VCALENDAR\\r\\n', hc.uid, i,
        to_char(timestamp '2027-01-04 08:00' + (i % 2000) * interval '5 hours',
                'YYYYMMDD"T"HH24MISS"Z"'), i) AS body) t;
INSERT INTO CALENDAR_OBJECT_REVISIONS (CALENDAR_HOME_RESOURCE_ID, CALENDAR_RESOURCE_ID,
                                       RESOURCE_NAME, DELETED)
SELECT b.CALENDAR_HOME_RESOURCE_ID, o.CALENDAR_RESOURCE_ID, o.RESOURCE_NAME, false
  FROM CALENDAR_OBJECT o JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID
       AND b.BIND_MODE = 0;
ANALYZE;
SQL
[ "$(sql 'SELECT count(*) FROM CALENDAR_OBJECT')" = "$NE" ] || { echo "bench: the load failed"; exit 1; }

floor=$($B/readparse -d "$DSN" "$WORK/people.csv")
set -- $(/usr/bin/python3 tests/bench_measure.py "$B/calbridge" -c "$WORK/calbridge.conf" sync --once)
for kv in "$@"; do eval "cb_$kv"; done
cb_items=$(sim_dump | awk -F'\t' '$2 == "calendar"' | wc -l)
if [ "${BENCH_NAIVE:-1}" = 1 ]; then
    sim_reset
    t0=$(date +%s.%N)
    naive_items=$(/usr/bin/python3 tests/bench_naive.py "$DSN" "$SIM/EWS/Exchange.asmx" \
        "$WORK/people.csv" svc secret 2>"$WORK/naive.err")
    t1=$(date +%s.%N)
    naive_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
    [ "$naive_items" = "$NE" ] || { echo "bench: the Python script created '$naive_items' items:"; tail -3 "$WORK/naive.err"; }
fi
sim_reset
rm -rf "$WORK/state"
load bulk "$BOB" 200 bench >/dev/null   # for the latency part: bob on Apple
cb sync --once >/dev/null 2>&1

# 4,000 events of five shapes: single, weekly series with a deleted and a
# moved occurrence, Apple's first-weekend-day rule, all-day, travel time.
big="$WORK/bench.ics"
awk 'BEGIN {
  printf "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n"
  for (i = 0; i < 800; i++) {
    d = sprintf("2026%02d%02d", i % 12 + 1, i % 28 + 1)
    printf "BEGIN:VEVENT\r\nUID:s%d\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Single %d\r\nDTSTART;TZID=Europe/Berlin:%sT090000\r\nDURATION:PT1H\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:a%d@example.org\r\nEND:VEVENT\r\n", i, i, d, i
    printf "BEGIN:VEVENT\r\nUID:w%d\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Weekly %d\r\nDTSTART;TZID=America/New_York:20260105T100000\r\nDURATION:PT30M\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=40\r\nEXDATE;TZID=America/New_York:20260112T100000\r\nEND:VEVENT\r\n", i, i
    printf "BEGIN:VEVENT\r\nUID:w%d\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID;TZID=America/New_York:20260107T100000\r\nSUMMARY:Weekly %d moved\r\nDTSTART;TZID=America/New_York:20260107T150000\r\nDURATION:PT30M\r\nEND:VEVENT\r\n", i, i
    printf "BEGIN:VEVENT\r\nUID:m%d\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Weekend %d\r\nDTSTART;TZID=Europe/London:20260103T110000\r\nDURATION:PT2H\r\nRRULE:FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=1\r\nEND:VEVENT\r\n", i, i
    printf "BEGIN:VEVENT\r\nUID:a%d\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:All day %d\r\nDTSTART;VALUE=DATE:%s\r\nDTEND;VALUE=DATE:%s\r\nEND:VEVENT\r\n", i, i, d, d
    printf "BEGIN:VEVENT\r\nUID:t%d\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Visit %d\r\nDTSTART;TZID=Europe/Berlin:%sT140000\r\nDURATION:PT1H\r\nX-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT30M\r\nEND:VEVENT\r\n", i, i, d
  }
  printf "END:VCALENDAR\r\n"
}' > "$big"
one="$SHARED/ccs/ics/OneEvent.ics"
pin=""; command -v taskset >/dev/null && pin="taskset -c 0"
t2=$(date +%s.%N); $pin "$B/calbridge" translate "$one" >/dev/null 2>&1; t3=$(date +%s.%N)
$pin "$B/calbridge" translate "$big" >/dev/null 2>&1; t4=$(date +%s.%N)

# Latency of single changes through the running service at the default
# settings (a poll every second, a 500 ms debounce after a notification):
# alice is cut over (Exchange -> Apple), bob is not (Apple -> Exchange).
# Each change is timed from the moment its commit returned to the moment the
# other side shows it (looked for every 20 ms), one change at a time, each
# under a name no earlier event has.
printf 'owner_uid,smtp,wave,kind\n%s,alice@example.org,1,user\n%s,bob@example.org,1,user\n' \
    "$ALICE" "$BOB" >"$WORK/people.csv"
sed -i '/^poll_interval_ms/d' "$WORK/calbridge.conf"
cb cutover --person "$ALICE" >/dev/null
cb_bg sync >"$WORK/bench-service.log" 2>&1 &
svc=$!
sleep 3
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
poll() { for _ in $(seq 500); do "$@" && return 0; sleep 0.02; done; return 1; }
N=${BENCH_CHANGES:-40}
: >"$WORK/lat-to-exchange"; : >"$WORK/lat-to-apple"
for i in $(seq "$N"); do
    sed "s/^UID:.*/UID:lat-$i/; s/^SUMMARY:.*/SUMMARY:Latency $i/" "$SHARED/ccs/ics/OneEvent.ics" >"$WORK/lat.ics"
    load put "$BOB" "$WORK/lat.ics" "lat-$i.ics"; t=$(now_ms)
    seen() { sim_dump | grep -q "/lat-$i.ics"; }
    poll seen && echo $(( $(now_ms) - t )) >>"$WORK/lat-to-exchange"
    ews_create alice@example.org "Outlook latency $i" 2031-05-01T09:00:00Z 2031-05-01T09:30:00Z >/dev/null; t=$(now_ms)
    there() { [ "$(sql "SELECT count(*) FROM CALENDAR_OBJECT WHERE ICALENDAR_TEXT ~ 'SUMMARY:Outlook latency ${i}[^0-9]'")" -gt 0 ]; }
    poll there && echo $(( $(now_ms) - t )) >>"$WORK/lat-to-apple"
done
kill -TERM $svc; wait $svc 2>/dev/null

# The idle poll, seen from PostgreSQL (every statement of calbridge's
# sessions logged) and from the state directory (its bytes and mtime).
sed -i "s|^dsn = .*|dsn = $DSN options='-c log_statement=all'|" "$WORK/calbridge.conf"
echo "poll_interval_ms = 200" >"$WORK/poll.ini"
sed -i "/^\[apple\]/r $WORK/poll.ini" "$WORK/calbridge.conf"
cb_bg sync >/dev/null 2>&1 &
svc=$!
sleep 3
PGLOG=$WORK/pg/sock/server.log
mark=$(($(wc -l <"$PGLOG") + 1))
st0=$(stat -c '%s %Y' "$WORK/state/data.mdb")
sleep 5
kill -TERM $svc; wait $svc 2>/dev/null
tail -n +"$mark" "$PGLOG" | grep -E 'LOG:  (statement|execute)' | sed 's/^.*LOG:  //' >"$WORK/idle.sql"
idle_polls=$(grep -c '^execute calbridge_poll' "$WORK/idle.sql")
idle_other=$(grep -vc '^execute calbridge_poll' "$WORK/idle.sql")
idle_state=$([ "$(stat -c '%s %Y' "$WORK/state/data.mdb")" = "$st0" ] && echo unchanged || echo written)

pct() { sort -n "$1" | awk -v p="$2" '{v[NR] = $1} END {i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i]}'; }
floor_us=$(echo "$floor" | awk '{print $(NF - 3)}')
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "initial sync: $NE events over $NP people (batch 10, simulator on loopback), exit $cb_rc, $cb_items items in Exchange"
echo "read + parse alone (tests/readparse): $floor"
[ "${BENCH_NAIVE:-1}" = 1 ] && echo "naive Python script (tests/bench_naive.py): $naive_items items in $naive_s s"
echo
awk -v ne="$NE" -v w="$cb_wall" -v c="$cb_cpu" -v anon="$cb_anon_mb" -v rss="$cb_rss_mb" \
    -v fl="$floor_us" -v nv="${naive_s:-0}" -v tb="$t3" -v ta="$t2" -v tc="$t4" \
    -v ip="$idle_polls" -v io="$idle_other" -v is="$idle_state" \
    -v le50="$(pct "$WORK/lat-to-exchange" 50)" -v le99="$(pct "$WORK/lat-to-exchange" 99)" \
    -v la50="$(pct "$WORK/lat-to-apple" 50)" -v la99="$(pct "$WORK/lat-to-apple" 99)" '
function row(goal, target, got, met) { printf "%-44s %-22s %-46s %s\n", goal, target, got, met ? "met" : "NOT MET" }
BEGIN {
  printf "%-44s %-22s %-46s %s\n", "goal (issue 16)", "target", "measured", ""
  us = c * 1e6 / ne
  row("initial sync throughput", ">= 10,000 events/s", sprintf("%.0f events/s (%.1f s)", ne / w, w), ne / w >= 10000)
  row("calbridge CPU per event", "<= 30 us", sprintf("%.1f us", us), us <= 30)
  row("  against read + parse alone", "<= 4x", sprintf("%.1fx (floor %.1f us)", us / fl, fl), us / fl <= 4)
  row("peak memory, allocated (RssAnon)", "<= 64 MB", sprintf("%.1f MB", anon), anon <= 64)
  row("peak memory, with the mapped state (RSS)", "<= 64 MB", sprintf("%.1f MB", rss), rss <= 64)
  if (nv > 0) row("against the naive Python script", ">= 10x", sprintf("%.1fx (%.0f events/s)", (ne / w) / (ne / nv), ne / nv), (ne / w) / (ne / nv) >= 10)
  per = (tc - tb) - (tb - ta)
  row("translate, one core", ">= 50,000 events/s", sprintf("%.0f events/s (mapping alone)", 4000 / per), 4000 / per >= 50000)
  row("idle poll", "1 statement, no write", sprintf("%d polls: %d other statements, state %s", ip, io, is), ip > 0 && io == 0 && is == "unchanged")
  row("latency Apple -> Exchange, p99", "<= 2,000 ms", sprintf("%d ms (p50 %d ms)", le99, le50), le99 <= 2000)
  row("latency Exchange -> Apple, p99", "<= 2,000 ms", sprintf("%d ms (p50 %d ms)", la99, la50), la99 <= 2000)
  printf "\ntranslate: 4000 events (5 shapes) in %.2f s with start-up; start-up and CLDR load %.0f ms\n", tc - tb, (tb - ta) * 1000
}'
