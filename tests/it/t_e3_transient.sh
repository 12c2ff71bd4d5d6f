# Exchange as it behaves under load: per-item ErrorServerBusy inside a 200
# answer (those items sent again after the back-off, in the same pass), and
# a CreateItem applied whose answer is lost (looked up by tag before
# anything is sent again). Nothing dropped, nothing doubled (before:
# the busy items' changes were lost until edited again, and a lost answer
# re-sent the CreateItem: two items).
TOM=60000000-0000-0000-0000-00000000000a
TR=$(it_subenv transient "$TOM,tom@example.org,1,user")
cbt() { $B/calbridge -c "$TR/conf" "$@" 2>/dev/null; }
for i in 1 2 3 4; do
    printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:tom-%s\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:2030060%sT090000Z\r\nDURATION:PT1H\r\nSUMMARY:Tom %s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' "$i" "$i" "$i" >"$TR/$i.ics"
    load put "$TOM" "$TR/$i.ics" "tom-$i.ics"
done
# This test sets its faults one by one and counts what they cause: none
# other meanwhile (under IT_CHAOS).
calm
sim_control itembusy=2
busy_from=$(sim_log | wc -l)
cbt sync --once >"$TR/busy.out"; rc=$?
tom_items() { calendar_items tom@example.org | cut -f8 | sort | tr '\n' ' '; }
check "items answered ErrorServerBusy: sent again in the same pass, which completes" "$rc" 0
check "each event once" "$(tom_items)" "Tom 1 Tom 2 Tom 3 Tom 4 "
check "the items went again only after Exchange's back-off" "$(sim_log | tail -n +$((busy_from + 1)) | awk -F'\t' '$2 == "CreateItem" && $3 == "tom@example.org" {if (!t0) t0 = $1; else if (!t1) t1 = $1} END {print (t1 - t0 >= 900) ? "waited" : "at once (" t1 - t0 " ms)"}')" waited
check "nothing listed as not carried" "$(cbt status | awk '/^not carried/ {print $3}')" 0

printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:tom-5\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20300605T090000Z\r\nDURATION:PT1H\r\nSUMMARY:Tom 5\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' >"$TR/5.ics"
load put "$TOM" "$TR/5.ics" tom-5.ics
sim_control dropafter=1
cbt sync --once >"$TR/adopt.out"; rc=$?
check "a CreateItem applied, its answer lost: the pass completes" "$rc" 0
check "it was sent once, and looked up by its tag instead of sent again" "$(sim_log | awk -F'\t' '$2 == "CreateItem" && $3 == "tom@example.org"' | grep -c applied-dropped)$(awk '/adopted/ {print $NF}' "$TR/adopt.out")" 11
check "Tom 5 exists once" "$(calendar_items tom@example.org | grep -c 'Tom 5')" 1
check "a further pass changes nothing" "$(cbt sync --once | awk '/items (created|updated|deleted)/ {s += $3} END {print s}')" 0

# A series with a moved occurrence whose CreateItem answer is lost: the
# master is adopted, and its exception, which was to follow the answer,
# is still sent (before: adopted as it was, the exception never went out
# until the event changed; the wave test met it under injected faults).
printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:tom-weekly\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20300701T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nSUMMARY:Tom weekly\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:tom-weekly\r\nDTSTAMP:20250101T000000Z\r\nRECURRENCE-ID:20300708T090000Z\r\nDTSTART:20300708T130000Z\r\nDURATION:PT1H\r\nSUMMARY:Tom weekly\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' >"$TR/6.ics"
load put "$TOM" "$TR/6.ics" tom-6.ics
sim_control dropafter=1
cbt sync --once >"$TR/adopt2.out"
weekly=$(calendar_items tom@example.org | awk -F'\t' '$8 == "Tom weekly" {print $3}')
check "the lost answer was a series' CreateItem, adopted" "$(calendar_items tom@example.org | grep -c 'Tom weekly')$(awk '/adopted/ {print $NF}' "$TR/adopt2.out")" 11
check "its moved occurrence reached Exchange all the same" "$(ews_post tom@example.org "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI=\"calendar:ModifiedOccurrences\"/></t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id=\"$weekly\"/></m:ItemIds></m:GetItem>" | grep -o '<t:Start>2030-07-08T13:00:00Z</t:Start>' | wc -l)" 1
stormy
