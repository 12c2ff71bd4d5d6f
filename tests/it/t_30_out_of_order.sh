# Two transactions commit their revisions in reverse order: the one holding
# the lower revision commits after a sync has seen the higher one.
load home "$BOB"
cp "$SHARED/ccs/ics/ThirdEvent.ics" "$WORK/late.ics"
CCSLOAD_HOLD=3 $B/ccsload -d "$DSN" put "$BOB" "$WORK/late.ics" late.ics &
hold=$!
sleep 1
load put "$BOB" "$SHARED/ccs/ics/OneEvent.ics" early.ics
low=$(sql "SELECT max(REVISION) FROM CALENDAR_OBJECT_REVISIONS")
cb sync --once >/dev/null
check "the committed (higher) revision is carried" "$(calendar_items bob@example.org | grep -c '/early.ics')" 1
wait $hold
cb sync --once >/dev/null
check "the late commit of the lower revision is not lost" "$(calendar_items bob@example.org | grep -c '/late.ics')" 1
late_rev=$(sql "SELECT r.REVISION FROM CALENDAR_OBJECT_REVISIONS r WHERE RESOURCE_NAME = 'late.ics'")
check "it really was the lower revision" "$([ "$late_rev" -lt "$low" ] && echo yes)" yes
