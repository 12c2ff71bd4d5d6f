#!/bin/sh
# Runs every libFuzzer harness for SECONDS each (default 20); "seed=S"
# before it fixes the random seed (what `make check` does: the same inputs
# in the same order every time, as far as the time allows). Seeded from
# ../shared (CalendarServer's iCalendar, real EWS answers) and tests/fuzz/seeds
# (DTDs, deep nesting, huge numbers), the corpus kept in build/fuzz/corpus.
# Prints the executions per harness; exits 1 on any crash, leak or UBSan
# report (the input is kept in build/fuzz/artifacts).
set -u
cd "$(dirname "$0")/../.."
LIMIT=""
case ${1:-} in seed=*) LIMIT="-seed=${1#seed=}"; shift ;; esac
SECONDS_EACH=${1:-20}
SHARED=${SHARED:-../shared}
B=build/fuzz
mkdir -p "$B/artifacts"
total=0 failed=0
for h in fuzz_ical_in fuzz_ews_xml fuzz_ews_in fuzz_stream; do
    mkdir -p "$B/corpus/$h"
    seeds="tests/fuzz/seeds"
    case $h in
    fuzz_ical_in) [ -d "$SHARED/ccs/ics" ] && seeds="$seeds $SHARED/ccs/ics" ;;
    *) [ -d "$SHARED/ews/samples" ] && seeds="$seeds $SHARED/ews/samples" ;;
    esac
    # shellcheck disable=SC2086
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$B/$h" $LIMIT -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$h-" "$B/corpus/$h" $seeds \
        >"$B/$h.log" 2>&1
    rc=$?
    runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$B/$h.log")
    if [ "$rc" -ne 0 ]; then
        failed=$((failed + 1))
        echo "FAIL - $h: exit $rc after ${runs:-?} executions; see $B/$h.log"
        grep -m 3 -E 'ERROR|runtime error|SUMMARY' "$B/$h.log"
    else
        echo "ok   - $h: ${runs:-0} executions, no crash, leak or UBSan report"
    fi
    total=$((total + ${runs:-0}))
done
echo "fuzz: $total executions in all"
[ "$failed" -eq 0 ]
