# Series as Exchange keeps them ("Update a recurring series by using EWS";
# ResponseCodeType in the EWS reference): a deleted occurrence cannot be
# reached again, an index past the pattern is an error, and setting the
# pattern again drops every exception. calbridge reads a series before it
# updates it and sends only what differs: the pattern only when it changed
# (its exceptions then re-applied), no occurrence deleted twice; and an
# occurrence restored in Apple comes back in Exchange.
SE=0000000-0000-0000-0000-00000000000
SAL=9${SE}a
SD=$(it_subenv series "$SAL,sal@example.org,1,user")
cbs() { $B/calbridge -c "$SD/conf" "$@" 2>/dev/null; }
deleted_starts() {   # deleted_starts MAILBOX ITEMID: its DeletedOccurrences' starts
    ews_post "$1" "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id=\"$2\"/></m:ItemIds></m:GetItem>" |
        grep -o '<t:DeletedOccurrence><t:Start>[^<]*' | sed 's/.*<t:Start>//' | tr '\n' ' '
}
occ_post() {   # occ_post MAILBOX MASTER INDEX OPERATION-XML-PREFIX: the ResponseCode
    ews_post "$1" "<m:DeleteItem DeleteType=\"MoveToDeletedItems\" SendMeetingCancellations=\"SendToNone\"><m:ItemIds><t:OccurrenceItemId RecurringMasterId=\"$2\" InstanceIndex=\"$3\"/></m:ItemIds></m:DeleteItem>" |
        grep -o '<m:ResponseCode>[^<]*' | sed 's/.*>//'
}

# The simulator answers as the reference says.
rid=$(ews_create sal@example.org "Made in Outlook" 2030-03-04T09:00:00Z 2030-03-04T10:00:00Z "<t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:NumberedRecurrence><t:StartDate>2030-03-04</t:StartDate><t:NumberOfOccurrences>5</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence><t:StartTimeZone Id=\"UTC\"/><t:EndTimeZone Id=\"UTC\"/>")
check "deleting occurrence 2" "$(occ_post sal@example.org "$rid" 2)" NoError
check "deleting it again: gone from the recurrence" "$(occ_post sal@example.org "$rid" 2)" ErrorCalendarOccurrenceIsDeletedFromRecurrence
check "an index past the pattern" "$(occ_post sal@example.org "$rid" 9)" ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange
ews_post sal@example.org "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" SendMeetingInvitationsOrCancellations=\"SendToNone\"><m:ItemChanges><t:ItemChange><t:ItemId Id=\"$rid\"/><t:Updates><t:SetItemField><t:FieldURI FieldURI=\"calendar:Recurrence\"/><t:CalendarItem><t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:NumberedRecurrence><t:StartDate>2030-03-04</t:StartDate><t:NumberOfOccurrences>5</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>" >/dev/null
check "setting the pattern again drops its exceptions" "$(deleted_starts sal@example.org "$rid")" ""

# calbridge keeps an Apple series' exceptions through an update. The
# requests are listed and their outcomes counted: faults paused meanwhile.
calm
log_before=$(sim_log | wc -l)
series() {   # series SUMMARY EXDATE-LINE
    printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//Mac OS X 10.9//EN\r\nBEGIN:VEVENT\r\nUID:sal-series\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300311T090000Z\r\nDTEND:20300311T100000Z\r\nSUMMARY:%s\r\nRRULE:FREQ=DAILY;COUNT=5\r\n%bEND:VEVENT\r\nEND:VCALENDAR\r\n' "$1" "$2" >"$SD/s.ics"
    load put "$SAL" "$SD/s.ics" sal-series.ics
}
series "Stand-up" "EXDATE:20300313T090000Z\r\n"
cbs sync --once >/dev/null
sid=$(calendar_items sal@example.org | awk -F'\t' '$8 == "Stand-up" {print $3}')
check "the series reached Exchange with its deleted occurrence" "$(deleted_starts sal@example.org "$sid")" "2030-03-13T09:00:00Z "
series "Stand-up, renamed" "EXDATE:20300313T090000Z\r\n"
rename_from=$(sim_log | wc -l)
cbs sync --once >/dev/null
# Only what differs is sent (ews-production-gaps.md 2.6): the pattern is not
# set again (which would drop the exceptions) and the deleted occurrence is
# not deleted twice.
check "renamed in Apple: only the subject goes out, the pattern and its deletion left alone" "$(sim_log | tail -n +$((rename_from + 1)) | awk -F'\t' '$3 == "sal@example.org" {print $2}' | grep -v '^SyncFolderItems$' | sort -u | tr '\n' ' ')" "FindItem GetItem UpdateItem "
check "renamed in Apple: the deletion survives the pattern being set again" "$(deleted_starts sal@example.org "$sid")" "2030-03-13T09:00:00Z "
check "and it is the same item" "$(calendar_items sal@example.org | awk -F'\t' '$3 == "'"$sid"'" {print $8}')" "Stand-up, renamed"
series "Stand-up, renamed" ""
cbs sync --once >/dev/null
check "the occurrence restored in Apple is back in Exchange" "$(deleted_starts sal@example.org "$sid")" ""
check "no occurrence change was refused" "$(sim_log | tail -n +$((log_before + 1)) | awk -F'\t' '$3 == "sal@example.org" && $4 != "ok"' | wc -l)" 0
stormy

# An occurrence moved onto the day of its neighbour: the simulator refuses it
# as Exchange does (ErrorOccurrenceCrossingBoundary), and calbridge never
# asks: such a series is one Exchange cannot hold (carried as single items,
# reported).
occ_move() {   # occ_move MAILBOX MASTER INDEX START END: the ResponseCode
    ews_post "$1" "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" SendMeetingInvitationsOrCancellations=\"SendToNone\"><m:ItemChanges><t:ItemChange><t:OccurrenceItemId RecurringMasterId=\"$2\" InstanceIndex=\"$3\"/><t:Updates><t:SetItemField><t:FieldURI FieldURI=\"calendar:Start\"/><t:CalendarItem><t:Start>$4</t:Start></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI=\"calendar:End\"/><t:CalendarItem><t:End>$5</t:End></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>" |
        grep -o '<m:ResponseCode>[^<]*' | sed 's/.*>//'
}
check "moving occurrence 3 onto occurrence 4's day" "$(occ_move sal@example.org "$rid" 3 2030-03-07T15:00:00Z 2030-03-07T16:00:00Z)" ErrorOccurrenceCrossingBoundary
check "moving it within its own day" "$(occ_move sal@example.org "$rid" 3 2030-03-06T15:00:00Z 2030-03-06T16:00:00Z)" NoError
printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//Mac OS X 10.9//EN\r\nBEGIN:VEVENT\r\nUID:sal-series\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300311T090000Z\r\nDTEND:20300311T100000Z\r\nSUMMARY:Stand-up, renamed\r\nRRULE:FREQ=DAILY;COUNT=5\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:sal-series\r\nDTSTAMP:20300101T000000Z\r\nRECURRENCE-ID:20300312T090000Z\r\nDTSTART:20300313T150000Z\r\nDTEND:20300313T160000Z\r\nSUMMARY:Stand-up, late\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' >"$SD/s.ics"
load put "$SAL" "$SD/s.ics" sal-series.ics
cross_from=$(sim_log | wc -l)
cbs sync --once >"$SD/cross.out" 2>&1
check "calbridge: reported as a series Exchange would refuse, nothing sent" "$(grep -c 'moves onto or past a neighbouring one' "$SD/cross.out")$(sim_log | tail -n +$((cross_from + 1)) | awk -F'\t' '$3 == "sal@example.org" {print $2}' | grep -c 'UpdateItem')" 10
