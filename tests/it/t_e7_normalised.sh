# Exchange stores what it is given in its own form: times in UTC whatever
# the client sent, and ChangeKeys that move with its own processing (a
# reminder firing) while the content stays. Neither may look like an edit
# to calbridge: no write, no conflict, in either direction; and an all-day
# item Exchange answers in UTC must still be all-day on that date in Apple.
NE=0000000-0000-0000-0000-00000000000
NAT=a${NE}a
NED=a${NE}b
ND=$(it_subenv normalised "$NAT,nat@example.org,1,user" "$NED,ned@example.org,2,user")
cbn() { $B/calbridge -c "$ND/conf" "$@" 2>/dev/null; }
writes() { awk '/items (created|updated|deleted)|written into Apple|deleted from Apple/ {s += $NF} END {print s + 0}' "$1"; }
load put "$NAT" "$SHARED/ccs/ics/OneEvent.ics" nat-one.ics
load put "$NED" "$SHARED/ccs/ics/OneEvent.ics" ned-one.ics
printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//Mac OS X 10.9//EN\r\nBEGIN:VEVENT\r\nUID:ned-allday\r\nDTSTAMP:20300101T000000Z\r\nDTSTART;VALUE=DATE:20300710\r\nDTEND;VALUE=DATE:20300711\r\nSUMMARY:Ned all day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' >"$ND/ad.ics"
load put "$NED" "$ND/ad.ics" ned-allday.ics
# A series with an exception of its own (moved, renamed): Exchange answers
# the master with the exception's times only; its subject comes from a
# GetItem of the exception's ItemId, without which a touched ChangeKey
# looked like an edit.
printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//Mac OS X 10.9//EN\r\nBEGIN:VEVENT\r\nUID:ned-weekly\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300903T080000Z\r\nDTEND:20300903T090000Z\r\nRRULE:FREQ=WEEKLY;COUNT=5\r\nSUMMARY:Ned weekly\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:ned-weekly\r\nDTSTAMP:20300101T000000Z\r\nRECURRENCE-ID:20300910T080000Z\r\nDTSTART:20300910T090000Z\r\nDTEND:20300910T100000Z\r\nSUMMARY:Ned weekly (moved)\r\nLOCATION:Room 2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' >"$ND/wk.ics"
load put "$NED" "$ND/wk.ics" ned-weekly.ics
cbn sync --once >/dev/null
cbn cutover --person "$NAT" >/dev/null
check "Exchange answers times in UTC, whatever was sent" "$(calendar_items ned@example.org | awk -F'\t' '$8 == "Ned all day" {print substr($9, length($9))}')" Z

# An all-day item made in Outlook, sent as wall time in Berlin.
ews_post nat@example.org "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Nat holiday</t:Subject><t:Start>2030-08-05T00:00:00</t:Start><t:End>2030-08-06T00:00:00</t:End><t:IsAllDayEvent>true</t:IsAllDayEvent><t:LegacyFreeBusyStatus>OOF</t:LegacyFreeBusyStatus><t:StartTimeZone Id=\"W. Europe Standard Time\"/><t:EndTimeZone Id=\"W. Europe Standard Time\"/></t:CalendarItem></m:Items></m:CreateItem>" >/dev/null
check "the simulator keeps it in UTC" "$(calendar_items nat@example.org | awk -F'\t' '$8 == "Nat holiday" {print $9}')" 2030-08-04T22:00:00Z
cbn sync --once >/dev/null
check "it is all-day on that date in Apple" "$(pg_psql "$WORK/pg" -At -c "SELECT substring(ICALENDAR_TEXT from 'BEGIN:VEVENT.*?(DTSTART[^\r\n]*)\r') FROM CALENDAR_OBJECT WHERE ICALENDAR_TEXT LIKE '%Nat holiday%'")" "DTSTART;VALUE=DATE:20300805"

# Exchange's own processing touches every item of both mailboxes.
cbn sync --once >/dev/null
sim_control "touch=nat@example.org"
sim_control "touch=ned@example.org"
cbn sync --once >"$ND/touched.out"
check "new ChangeKeys alone: nothing written anywhere" "$(writes "$ND/touched.out")" 0
check "and no conflict recorded" "$(cbn status --conflicts | tail -1)" "0 conflicts"
check "they were read and recognised" "$(awk '/Exchange changes read/ {print ($NF >= 3)}' "$ND/touched.out")" 1
check "the next pass is idle" "$(cbn sync --once | writes /dev/stdin)" 0

# An exception made in Outlook carries its own subject and place to Apple.
ews_post nat@example.org "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Nat daily</t:Subject><t:Start>2030-09-02T07:00:00Z</t:Start><t:End>2030-09-02T07:30:00Z</t:End><t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:NumberedRecurrence><t:StartDate>2030-09-02Z</t:StartDate><t:NumberOfOccurrences>4</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence></t:CalendarItem></m:Items></m:CreateItem>" >/dev/null
nat_daily=$(calendar_items nat@example.org | awk -F'\t' '$8 == "Nat daily" {print $3}')
cbn sync --once >/dev/null
ews_post nat@example.org "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" SendMeetingInvitationsOrCancellations=\"SendToNone\"><m:ItemChanges><t:ItemChange><t:OccurrenceItemId RecurringMasterId=\"$nat_daily\" InstanceIndex=\"3\"/><t:Updates><t:SetItemField><t:FieldURI FieldURI=\"item:Subject\"/><t:CalendarItem><t:Subject>Nat daily, with the board</t:Subject></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI=\"calendar:Location\"/><t:CalendarItem><t:Location>Board room</t:Location></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>" >/dev/null
cbn sync --once >/dev/null
nat_text=$(pg_psql "$WORK/pg" -At -c "SELECT ICALENDAR_TEXT FROM CALENDAR_OBJECT WHERE ICALENDAR_TEXT LIKE '%Nat daily%'" | tr -d '\r')
check "the exception's subject reached Apple" "$(echo "$nat_text" | grep -c '^SUMMARY:Nat daily\\, with the board$')" 1
check "with its place, on that occurrence" "$(echo "$nat_text" | awk '/^BEGIN:VEVENT/ {r = ""; l = 0} /^RECURRENCE-ID/ {r = $0} /^LOCATION:Board room/ {l = 1} /^END:VEVENT/ && l {print r}' | sed 's/.*://')" 20300904T070000Z
check "the series' own subject unchanged" "$(echo "$nat_text" | grep -c '^SUMMARY:Nat daily$')" 1
