#!/bin/sh
# make torture: kill -9 at 100 random points spread over every phase, then
# let each phase finish and count: nothing lost, nothing doubled, and a
# further run changes nothing.
#   initial sync to Exchange (25), mirror writes into Apple (25),
#   cutover (20), the service's streaming catch-up (15), recovery itself
#   right after a kill that left intents (1 + 14).
set -u
cd "$(dirname "$0")/.."
. tests/it/lib.sh
[ -f "$SCHEMA" ] || { echo "SKIP torture: $SHARED (CalendarServer schema, EWS schemas) is absent"; exit 0; }
it_setup
trap it_cleanup EXIT INT TERM
CAROL=10000000-0000-0000-0000-00000000000c
cat >"$WORK/people.csv" <<CSV
owner_uid,smtp,wave,kind
$ALICE,alice@example.org,1,user
$BOB,bob@example.org,2,user
$CAROL,carol@example.org,3,user
CSV
cat >>"$WORK/calbridge.conf" <<CONF
[coexistence]
debounce_ms = 100
heartbeat_ms = 2000
CONF
sim_control "heartbeat=500&minute=5000"
kills=0
phase() {   # phase NAME TIMES MAX_TENTHS ARGS...: kills, then counted
    name=$1 times=$2
    shift
    kill9_randomly "$@"
    kills=$((kills + times))
    echo "# $name: $times kills"
}
no_doubles() { calendar_items "$1" | cut -f5,8 | sort | uniq -d | wc -l; }
apple_count() { apple_summaries "$1" | wc -l; }
ex_count() { calendar_items "$1" | wc -l; }

# 1. Initial sync of 400 Apple events (bob) and 100 (carol).
load bulk "$BOB" 400 bob >/dev/null
load bulk "$CAROL" 100 carol >/dev/null
phase "initial sync" 25 6 sync --once
cb sync --once >/dev/null 2>&1
check "initial sync: every bob event in Exchange once" "$(ex_count bob@example.org)/$(no_doubles bob@example.org)" "400/0"
check "initial sync: every carol event in Exchange once" "$(ex_count carol@example.org)/$(no_doubles carol@example.org)" "100/0"

# 2. Mirror writes: alice moved, 300 items made in her Exchange calendar.
cb cutover --person "$ALICE" >/dev/null 2>&1
for batch in 0 1 2; do
    items=""
    for i in $(seq 1 100); do
        n=$((batch * 100 + i))
        items="$items<t:CalendarItem><t:Subject>Item $n</t:Subject><t:Start>2030-04-01T0$((n % 9)):00:00Z</t:Start><t:End>2030-04-01T0$((n % 9)):30:00Z</t:End></t:CalendarItem>"
    done
    ews_post alice@example.org "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items>$items</m:Items></m:CreateItem>" >/dev/null
done
phase "mirror writes" 25 6 sync --once
cb sync --once >/dev/null 2>&1
check "mirror: every alice item in Apple once" "$(apple_count "$ALICE")/$(apple_summaries "$ALICE" | cut -f2 | sort | uniq -d | wc -l)" "$(ex_count alice@example.org)/0"

# 3. Cutover of bob, killed.
ids_before=$(calendar_items bob@example.org | cut -f3 | sort | md5sum)
phase "cutover" 20 8 cutover --person "$BOB"
cb cutover --person "$BOB" >/dev/null 2>&1; rc=$?
check "cutover: completes after the kills" "$rc" 0
check "cutover: bob's ItemIds unchanged" "$(calendar_items bob@example.org | cut -f3 | sort | md5sum)" "$ids_before"
check "cutover: bob's Apple home not doubled" "$(apple_count "$BOB")" 400

# 4. Streaming catch-up: alice renames 100 items while the service is killed.
for id in $(calendar_items alice@example.org | awk -F'\t' '$8 ~ /^Item [0-9]$|^Item [0-9][0-9]$/ {print $3}' | head -n 100); do
    ews_set_subject alice@example.org "$id" "Renamed $id"
done
phase "streaming catch-up" 15 15 sync
cb sync --once >/dev/null 2>&1
check "catch-up: every rename reached Apple" "$(apple_summaries "$ALICE" | grep -c 'Renamed ')" "$(calendar_items alice@example.org | grep -c 'Renamed ')"

# 5. Recovery itself: intents left by a killed sync, then killed again early.
load bulk "$CAROL" 300 carol2 >/dev/null
phase "leaving intents" 1 4 sync --once
phase "recovery" 14 3 sync --once
cb sync --once >/dev/null 2>&1
check "recovery: every carol event in Exchange once" "$(ex_count carol@example.org)/$(no_doubles carol@example.org)" "400/0"

cb sync --once >"$WORK/last.out" 2>&1
check "a further run changes nothing" "$(awk '/items (created|updated|deleted)|written into Apple|deleted from Apple/ {s += $NF} END {print s + 0}' "$WORK/last.out")" 0
check "no pending intent" "$(cb status 2>/dev/null | awk '/pending intents/ {print $3}')" 0
echo "torture: $kills kill -9 points"
if [ "$FAILS" -ne 0 ]; then echo "torture: $FAILS failed"; exit 1; fi
echo "torture: all passed"
