#!/bin/sh
# make bench: initial-sync throughput of 2,000 events against the simulator,
# translation throughput on one core, and the latency of single changes
# through the running service in both directions (p50/p99), measured in one
# run on this machine.
set -u
cd "$(dirname "$0")/.."
. tests/it/lib.sh
[ -f "$SCHEMA" ] || { echo "bench: needs ../shared"; exit 1; }
it_setup
trap it_cleanup EXIT INT TERM
load bulk "$BOB" 2000 bench >/dev/null
t0=$(date +%s.%N); cb sync --once >/dev/null; t1=$(date +%s.%N)

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

echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
awk -v a="$t0" -v b="$t1" 'BEGIN {printf "initial sync: 2000 events in %.2f s = %.0f events/s (batch 10, simulator on loopback)\n", b - a, 2000 / (b - a)}'
awk -v s0="$t0" -v s1="$t1" -v a="$t2" -v b="$t3" -v c="$t4" 'BEGIN {
  per = (c - b) - (b - a)
  printf "translate, one core: 4000 events (5 shapes) in %.2f s = %.0f events/s\n", c - b, 4000 / (c - b)
  printf "  process start-up and CLDR load: %.0f ms; mapping alone: %.0f events/s\n", (b - a) * 1000, 4000 / per
  printf "  one event costs %.2fx the time in the initial sync that it costs in the mapping\n", ((s1 - s0) / 2000) / (per / 4000)
}'

# Latency of single changes through the running service: alice is cut over
# (Exchange -> Apple), bob is not (Apple -> Exchange). Each change is timed
# from the moment its commit returned to the moment the other side shows it
# (polled every 20 ms), one change at a time.
cat >>"$WORK/calbridge.conf" <<CONF
[coexistence]
debounce_ms = 100
CONF
cb cutover --person "$ALICE" >/dev/null
cb_bg sync >"$WORK/bench-service.log" 2>&1 &
svc=$!
sleep 2
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
poll() { for _ in $(seq 500); do "$@" && return 0; sleep 0.02; done; return 1; }
N=${BENCH_CHANGES:-40}
: >"$WORK/lat-to-exchange"; : >"$WORK/lat-to-apple"
for i in $(seq "$N"); do
    sed "s/^UID:.*/UID:lat-$i/; s/^SUMMARY:.*/SUMMARY:Latency $i/" "$SHARED/ccs/ics/OneEvent.ics" >"$WORK/lat.ics"
    load put "$BOB" "$WORK/lat.ics" "lat-$i.ics"; t=$(now_ms)
    seen() { sim_dump | grep -q "/lat-$i.ics"; }
    poll seen && echo $(( $(now_ms) - t )) >>"$WORK/lat-to-exchange"
    # A name of its own: bob's "Latency $i" is already in the Apple tables,
    # and matching it measured only psql's start-up.
    ews_create alice@example.org "Outlook latency $i" 2031-05-01T09:00:00Z 2031-05-01T09:30:00Z >/dev/null; t=$(now_ms)
    there() { [ "$(sql "SELECT count(*) FROM CALENDAR_OBJECT WHERE ICALENDAR_TEXT ~ 'SUMMARY:Outlook latency ${i}[^0-9]'")" -gt 0 ]; }
    poll there && echo $(( $(now_ms) - t )) >>"$WORK/lat-to-apple"
done
kill -TERM $svc; wait $svc 2>/dev/null
pct() { sort -n "$1" | awk -v p="$2" '{v[NR] = $1} END {i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i]}'; }
for d in to-exchange to-apple; do
    printf "latency %-12s %d changes: p50 %s ms, p99 %s ms\n" "$d" "$(wc -l <"$WORK/lat-$d")" \
        "$(pct "$WORK/lat-$d" 50)" "$(pct "$WORK/lat-$d" 99)"
done
echo "  (poll_interval 200 ms, debounce 100 ms, simulator stream tick 100 ms; the defaults are 5 s and 2 s)"
awk -v a="$(pct "$WORK/lat-to-apple" 50)" -v b="$(pct "$WORK/lat-to-exchange" 50)" 'BEGIN {
  if (b > 0) printf "  Exchange -> Apple p50 is %.1fx the Apple -> Exchange p50\n", a / b }'
