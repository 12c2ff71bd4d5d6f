# A migration of 30 people in 3 waves while both sides keep changing.
# After every step, for every person: free/busy per 30-minute slot over the
# next 60 days computed from CalendarServer's tables equals Exchange's
# GetUserAvailability, and every event expands to the same occurrences on
# both sides (tests/bothsides.c). The Apple side is read as CalendarServer's
# free/busy query reads it: the owner's PERUSER rows (travel time, their own
# transparency) included.
WV=$WORK/waves
mkdir -p "$WV"
echo "owner_uid,smtp,wave,kind" >"$WV/people.csv"
for i in $(seq 10 39); do
    echo "20000000-0000-0000-0000-0000000000$i,p$i@example.org,$((i % 3 + 1)),user" >>"$WV/people.csv"
done
sed -e "s|^map = .*|map = $WV/people.csv|" -e "s|^dir = .*|dir = $WV/state|" "$WORK/calbridge.conf" >"$WV/conf"
cat >>"$WV/conf" <<CONF
[coexistence]
debounce_ms = 200
resync_interval = 30
CONF
cbw() { $B/calbridge -c "$WV/conf" "$@"; }
cbw_bg() { exec $B/calbridge -c "$WV/conf" "$@"; }
owner() { echo "20000000-0000-0000-0000-0000000000$1"; }
day() { date -u -d "@$(( $(date +%s) / 86400 * 86400 + $1 * 86400 ))" +%Y%m%d; }
# The first weekend day of next month (Apple's "first weekend day" rule).
first_weekend() {
    m1=$(date -u -d "$(date -u +%Y-%m-01) +1 month" +%Y-%m-%d)
    dow=$(date -u -d "$m1" +%u)
    [ "$dow" -ge 6 ] && date -u -d "$m1" +%Y%m%d || date -u -d "$m1 +$((6 - dow)) days" +%Y%m%d
}
xsday() { date -u -d "@$(( $(date +%s) / 86400 * 86400 + $1 * 86400 ))" +%Y-%m-%d; }
ics() {   # ics UID BODY-LINES: a VCALENDAR with Berlin's zone
    printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//Mac OS X 10.9//EN\r\n%s\r\nEND:VCALENDAR\r\n' "$2" |
        sed 's/$/\r/; s/\r\r$/\r/'
}
ev() {   # ev UID DTSTART-LINE DTEND-LINE SUMMARY [EXTRA-LINES]
    printf 'BEGIN:VEVENT\nUID:%s\nDTSTAMP:20260101T000000Z\n%s\n%s\nSUMMARY:%s\n%s\nEND:VEVENT' "$1" "$2" "$3" "$4" "${5:-}" | sed '/^$/d'
}
seed_person() {
    i=$1 o=$(owner "$1") d1=$((i % 20 + 1)) d2=$((i % 5 + 2))
    ics x "$(ev "single-$i" "DTSTART;TZID=Europe/Berlin:$(day $d1)T090000" "DTEND;TZID=Europe/Berlin:$(day $d1)T100000" "Single $i")" >"$WV/s$i.ics"
    series="$(ev "series-$i" "DTSTART;TZID=Europe/Berlin:$(day $d2)T130000" "DTEND;TZID=Europe/Berlin:$(day $d2)T140000" "Weekly $i" "RRULE:FREQ=WEEKLY;COUNT=8
EXDATE;TZID=Europe/Berlin:$(day $((d2 + 14)))T130000")
$(ev "series-$i" "DTSTART;TZID=Europe/Berlin:$(day $((d2 + 22)))T150000" "DTEND;TZID=Europe/Berlin:$(day $((d2 + 22)))T163000" "Weekly $i moved" "RECURRENCE-ID;TZID=Europe/Berlin:$(day $((d2 + 21)))T130000")"
    ics x "$series" >"$WV/r$i.ics"
    ics x "$(ev "allday-$i" "DTSTART;VALUE=DATE:$(day $((i % 7 + 3)))" "DTEND;VALUE=DATE:$(day $((i % 7 + 4)))" "All day $i")" >"$WV/a$i.ics"
    ics x "$(ev "tentative-$i" "DTSTART:$(day 5)T110000Z" "DTEND:$(day 5)T120000Z" "Maybe $i" "STATUS:TENTATIVE")" >"$WV/t$i.ics"
    ics x "$(ev "free-$i" "DTSTART:$(day 6)T080000Z" "DTEND:$(day 6)T170000Z" "Free $i" "TRANSP:TRANSPARENT")" >"$WV/f$i.ics"
    ics x "$(ev "weekend-$i" "DTSTART;TZID=Europe/Berlin:$(first_weekend)T100000" "DTEND;TZID=Europe/Berlin:$(first_weekend)T110000" "First weekend day $i" "RRULE:FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=1;COUNT=3")" >"$WV/w$i.ics"
    # Travel time: Exchange has it as OOF appointments before and after;
    # CalendarServer as the owner's PERUSER row with the adjusted times.
    ics x "$(ev "travel-$i" "DTSTART;TZID=Europe/Berlin:$(day $((i % 9 + 2)))T140000" "DTEND;TZID=Europe/Berlin:$(day $((i % 9 + 2)))T150000" "Offsite $i" "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT1H
X-APPLE-TRAVEL-RETURN-DURATION;VALUE=DURATION:PT30M")" >"$WV/v$i.ics"
    for k in s r a t f w v; do load put "$o" "$WV/$k$i.ics" "$k$i.ics" 2>/dev/null; done
}
all_equal() {   # all_equal LABEL: every person agrees on both sides
    bad=0
    for i in $(seq 10 39); do
        $B/bothsides "$DSN" "$SIM/EWS/Exchange.asmx" svc:secret "$(owner "$i")" "p$i@example.org" 60 Europe/Berlin \
            >"$WV/both.$i" 2>&1 || bad=$((bad + 1))
    done
    [ "$bad" -eq 0 ]
}
converge() {   # converge LABEL: waits up to 30 s for both sides to agree
    # (90 s under injected faults: a cycle then waits out back-offs, and a
    # write applied in part is finished by the rewrite at its end)
    for _ in $(seq "$([ -n "${IT_CHAOS:-}" ] && echo 90 || echo 30)"); do all_equal && break; sleep 1; done
    if all_equal; then ok "$1: free/busy and occurrences equal for all 30 people"
    else not_ok "$1: $bad people differ"; cat "$WV"/both.* | grep DIFF | head -5; fi
}
cut_wave() { awk -F, -v w="$1" 'NR > 1 && $3 <= w {print substr($1, length($1) - 1)}' "$WV/people.csv"; }
edit_round() {   # edit_round R CUT [SKIP]: changes on each person's authoritative side
    r=$1 cut=$2 h=$(($1 % 10))
    for i in $(seq 10 39); do
        o=$(owner "$i") w=$((i % 3 + 1))
        [ "$w" = "${3:-}" ] && continue   # being cut over right now
        if [ "$w" -gt "$cut" ]; then   # Apple is authoritative: edit in Apple
            case $(( (i + r) % 3 )) in
            0) ics x "$(ev "single-$i" "DTSTART;TZID=Europe/Berlin:$(day $((i % 20 + 2)))T1${h}0000" "DTEND;TZID=Europe/Berlin:$(day $((i % 20 + 2)))T1${h}3000" "Single $i moved $r")" >"$WV/s$i.ics"
               load put "$o" "$WV/s$i.ics" "s$i.ics" ;;
            1) load delete "$o" "f$i.ics" 2>/dev/null ;;
            2) ics x "$(ev "added-$i-$r" "DTSTART:$(day $((h * 3 + 1)))T0${h}0000Z" "DTEND:$(day $((h * 3 + 1)))T0${h}4500Z" "Added $r")" >"$WV/n$i-$r.ics"
               load put "$o" "$WV/n$i-$r.ics" "n$i-$r.ics" ;;
            esac
        else                            # Exchange is authoritative: edit there
            m=p$i@example.org
            id=$(ews_create "$m" "Exchange $r" "$(xsday $((h + 8)))T1${h}:00:00Z" "$(xsday $((h + 8)))T1${h}:30:00Z")
            case $(( (i + r) % 3 )) in
            0) ews_set_subject "$m" "$id" "Exchange $r renamed" ;;
            1) ews_delete "$m" "$id" ;;
            2) start=$(xsday $((h + 15)))
               rid=$(ews_create "$m" "Exchange series $r" "${start}T07:00:00Z" "${start}T08:00:00Z" \
                   "<t:Recurrence><t:DailyRecurrence><t:Interval>2</t:Interval></t:DailyRecurrence><t:NumberedRecurrence><t:StartDate>$start</t:StartDate><t:NumberOfOccurrences>5</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence><t:StartTimeZone Id=\"UTC\"/><t:EndTimeZone Id=\"UTC\"/>")
               ews_post "$m" "<m:DeleteItem DeleteType=\"MoveToDeletedItems\" SendMeetingCancellations=\"SendToNone\"><m:ItemIds><t:OccurrenceItemId RecurringMasterId=\"$rid\" InstanceIndex=\"2\"/></m:ItemIds></m:DeleteItem>" >/dev/null ;;
            esac
        fi
    done
}

for i in $(seq 10 39); do seed_person "$i"; done
cbw_bg sync >"$WV/daemon.out" 2>&1 &
daemon=$!
converge "initial sync"

for wave in 1 2 3; do
    edit_round "$wave" $((wave - 1))
    kill -TERM $daemon; wait $daemon 2>/dev/null
    ( sleep 0.3; edit_round "$wave$wave" $((wave - 1)) "$wave" ) &
    editor=$!
    cbw cutover --wave "$wave" >"$WV/cut$wave.out" 2>&1; rc=$?
    wait $editor
    check "wave $wave: cutover exit 0" "$rc" 0
    [ "$rc" = 0 ] || cat "$WV/cut$wave.out"
    check "wave $wave: its 10 people are on Exchange" "$(cbw status | awk '$5 == "exchange"' | wc -l)" $((wave * 10))
    cbw_bg sync >>"$WV/daemon.out" 2>&1 &
    daemon=$!
    edit_round "$wave$wave$wave" "$wave"
    converge "after wave $wave"
done
check "no item doubled in any mailbox" "$(sim_dump | awk -F'\t' '$1 ~ /^p[0-9]+@/ && $2 == "calendar" && $5 != "" {print $1, $5}' | sort | uniq -d | wc -l)" 0
check "conflicts: none expected (every edit was made on the authoritative side)" "$(cbw status --conflicts | tail -1)" "0 conflicts"
[ "$(cbw status --conflicts | tail -1)" = "0 conflicts" ] || cbw status --conflicts | head -8
kill -TERM $daemon; wait $daemon 2>/dev/null
grep -q "cycle stopped" "$WV/daemon.out" && { not_ok "a cycle failed"; grep "cycle stopped" "$WV/daemon.out" | head -3; }
