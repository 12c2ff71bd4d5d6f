#!/bin/sh
# make bench: initial-sync throughput of 2,000 events against the simulator,
# and translation throughput on one core, measured in one run on this machine.
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
  printf "  one event costs %.0fx more time in the initial sync than in the mapping\n", ((s1 - s0) / 2000) / (per / 4000)
}'
