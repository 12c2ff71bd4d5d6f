# The Apple writer leaves what CalendarServer owns as CalendarServer would:
# the attachment quota untouched, privacy carried in ACCESS, scheduling
# columns renewed, property rows removed with their object.
WENDY=50000000-0000-0000-0000-00000000000a
VERA=50000000-0000-0000-0000-00000000000b
AW=$(it_subenv applewriter "$WENDY,wendy@example.org,1,user" "$VERA,vera@example.org,2,user")
cbw2() { $B/calbridge -c "$AW/conf" "$@" 2>/dev/null; }
load put "$WENDY" "$SHARED/ccs/ics/OneEvent.ics" wendy-own.ics
cbw2 sync --once >/dev/null
cbw2 cutover --person "$WENDY" >/dev/null
home_sql="SELECT RESOURCE_ID FROM CALENDAR_HOME WHERE OWNER_UID = '$WENDY'"
obj_sql="SELECT o.RESOURCE_ID FROM CALENDAR_OBJECT o JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID WHERE h.OWNER_UID = '$WENDY'"
col() { pg_psql "$WORK/pg" -At -c "SELECT $1 FROM CALENDAR_OBJECT WHERE RESOURCE_ID = $2"; }

# Quota: CalendarServer counts attachments there, never event text.
sql "UPDATE CALENDAR_HOME_METADATA SET QUOTA_USED_BYTES = 12345 WHERE RESOURCE_ID = ($home_sql)" >/dev/null
id=$(ews_create wendy@example.org "Quota check" 2030-05-01T09:00:00Z 2030-05-01T10:00:00Z)
cbw2 sync --once >/dev/null
ews_set_subject wendy@example.org "$id" "Quota check, renamed"
cbw2 sync --once >/dev/null
ews_delete wendy@example.org "$id"
cbw2 sync --once >/dev/null
check "mirrored create, update, delete leave the attachment quota" "$(pg_psql "$WORK/pg" -At -c "SELECT QUOTA_USED_BYTES FROM CALENDAR_HOME_METADATA WHERE RESOURCE_ID = ($home_sql)")" 12345

# Privacy: an Exchange Private item is hidden from Apple sharees (ACCESS).
ews_post wendy@example.org "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Doctor</t:Subject><t:Sensitivity>Private</t:Sensitivity><t:Start>2030-05-02T09:00:00Z</t:Start><t:End>2030-05-02T10:00:00Z</t:End></t:CalendarItem></m:Items></m:CreateItem>" >/dev/null
cbw2 sync --once >/dev/null
doc=$(pg_psql "$WORK/pg" -At -c "$obj_sql AND o.ICALENDAR_TEXT LIKE '%SUMMARY:Doctor%'")
check "a Private Exchange item: ACCESS is CONFIDENTIAL (3)" "$(col ACCESS "$doc")" 3
check "and the text says so to CalendarServer" "$(col ICALENDAR_TEXT "$doc" | grep -c '^X-CALENDARSERVER-ACCESS:CONFIDENTIAL')" 1
# ... and an Apple-private event is Private in Exchange.
printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//Mac OS X 10.9//EN\r\nX-CALENDARSERVER-ACCESS:CONFIDENTIAL\r\nBEGIN:VEVENT\r\nUID:vera-private\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20300503T090000Z\r\nDURATION:PT1H\r\nSUMMARY:Therapy\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' >"$AW/private.ics"
load put "$VERA" "$AW/private.ics" private.ics
cbw2 sync --once >/dev/null
vid=$(calendar_items vera@example.org | awk -F'\t' '$8 == "Therapy" {print $3}')
check "an Apple-private event is Private in Exchange" "$(ews_post vera@example.org "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id=\"$vid\"/></m:ItemIds></m:GetItem>" | grep -o '<t:Sensitivity>[A-Za-z]*' | cut -d'>' -f2)" Private

# Scheduling columns of an Apple-era row are renewed by a mirrored write.
own=$(pg_psql "$WORK/pg" -At -c "$obj_sql AND o.RESOURCE_NAME = 'wendy-own.ics'")
sql "UPDATE CALENDAR_OBJECT SET SCHEDULE_OBJECT = true, SCHEDULE_TAG = 'apple-era', SCHEDULE_ETAGS = '\"e1\"' WHERE RESOURCE_ID = $own" >/dev/null
own_id=$(calendar_items wendy@example.org | awk -F'\t' '$5 ~ /wendy-own.ics$/ {print $3}')
ews_set_subject wendy@example.org "$own_id" "Edited in Outlook"
cbw2 sync --once >/dev/null
tag=$(col SCHEDULE_TAG "$own")
check "a new Schedule-Tag" "$(test "$tag" != apple-era && test ${#tag} -eq 36 && echo new)" new
check "the collected ETags cleared" "$(col "coalesce(SCHEDULE_ETAGS, 'null')" "$own")" ""
check "MD5 over text and tag, as CalendarServer has it" "$(col "MD5 = md5(ICALENDAR_TEXT || SCHEDULE_TAG)" "$own")" t

# A deleted object's WebDAV properties go with it.
sql "INSERT INTO RESOURCE_PROPERTY (RESOURCE_ID, NAME, VALUE, VIEWER_UID) VALUES ($own, '{DAV:}x', 'v', '')" >/dev/null
ews_delete wendy@example.org "$own_id"
cbw2 sync --once >/dev/null
check "the object is deleted in Apple" "$(pg_psql "$WORK/pg" -At -c "SELECT count(*) FROM CALENDAR_OBJECT WHERE RESOURCE_ID = $own")" 0
check "and its property rows with it" "$(pg_psql "$WORK/pg" -At -c "SELECT count(*) FROM RESOURCE_PROPERTY WHERE RESOURCE_ID = $own")" 0

# A mirror write's revision is taken after its data committed, in a short
# transaction of its own: a client that synced while the batch was open
# (after CalendarServer committed a later change) still sees it. Taken
# with the write, inside the long batch, it landed below that client's
# token and was never reported (ccs-write-path.md 6.9).
check "a write lands above a sync token taken while its batch was open" "$($B/revorder "$DSN" d0000000-0000-0000-0000-00000000000a | cut -d' ' -f1)" seen
check "taken with the write, as before, it is missed" "$($B/revorder "$DSN" d0000000-0000-0000-0000-00000000000b --immediate | cut -d' ' -f1)" missed

# Indexed as CalendarServer indexes (ccs-write-path.md 1.3): a series from
# a year back to a year ahead, RECURRANCE_MAX saying where it was cut so
# that CalendarServer expands further itself when a query needs it (before:
# 200 weeks of rows, and a NULL that says "complete"); more than its
# MaxAllowedInstances in that window is refused, as CalendarServer refuses
# such a PUT.
ser() {   # ser UID DTSTART RRULE
    printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//Mac OS X 10.9//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:%s\r\nDURATION:PT1H\r\nSUMMARY:%s\r\nRRULE:%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' "$1" "$2" "$1" "$3" >"$AW/$1.ics"
}
ser long-weekly "$(date -u -d '-30 days' +%Y%m%dT090000Z)" "FREQ=WEEKLY;COUNT=200"
load put "$WENDY" "$AW/long-weekly.ics" long-weekly.ics
rows=$(sql "SELECT count(*) FROM TIME_RANGE t JOIN CALENDAR_OBJECT o ON o.RESOURCE_ID = t.CALENDAR_OBJECT_RESOURCE_ID WHERE o.RESOURCE_NAME = 'long-weekly.ics'")
check "a 200-week series is indexed to a year ahead ($rows rows)" "$([ "$rows" -ge 56 ] && [ "$rows" -le 58 ] && echo yes)" yes
check "RECURRANCE_MAX says where it was cut" "$(sql "SELECT RECURRANCE_MAX FROM CALENDAR_OBJECT WHERE RESOURCE_NAME = 'long-weekly.ics'")" "$(date -u -d '+365 days' +%Y-%m-%d)"
ser dense "$(date -u -d '-7 days' +%Y%m%dT090000Z)" "FREQ=HOURLY;INTERVAL=2;COUNT=5000"
check "over 3000 occurrences in CalendarServer's window: refused, said why" "$(CCSLOAD_STRICT=1 load put "$WENDY" "$AW/dense.ics" dense.ics 2>&1 | grep -c 'CalendarServer refuses more than 3000')" 1
check "and nothing of it written" "$(sql "SELECT count(*) FROM CALENDAR_OBJECT WHERE RESOURCE_NAME = 'dense.ics'")" 0

# One object per UID per home, as CalendarServer keeps it: an Exchange item
# whose UID the home already holds (a copy CalendarServer delivered under
# its own name) is written into that object, not beside it, under
# CalendarServer's UID lock (ccs-write-path.md 6.7).
printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//CALENDARSERVER.ORG//NONSGML Version 1//EN\r\nBEGIN:VEVENT\r\nUID:shared-uid-1\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300601T090000Z\r\nDTEND:20300601T100000Z\r\nSUMMARY:Delivered by CalendarServer\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' >"$AW/delivered.ics"
load put "$WENDY" "$AW/delivered.ics" 5f2d1c0e9a-delivered.ics
ews_post wendy@example.org "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Same meeting from Exchange</t:Subject><t:UID>shared-uid-1</t:UID><t:Start>2030-06-01T09:00:00Z</t:Start><t:End>2030-06-01T10:00:00Z</t:End></t:CalendarItem></m:Items></m:CreateItem>" >/dev/null
cbw2 sync --once >/dev/null
check "one object holds the UID in wendy's home" "$(sql "SELECT count(*) FROM CALENDAR_OBJECT o JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID AND b.BIND_MODE = 0 JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID WHERE h.OWNER_UID = '$WENDY' AND o.ICALENDAR_UID = 'shared-uid-1'")" 1
check "the one CalendarServer named, now with Exchange's version" "$(sql "SELECT RESOURCE_NAME || ' ' || substring(ICALENDAR_TEXT from 'SUMMARY:([^\r\n]*)') FROM CALENDAR_OBJECT WHERE ICALENDAR_UID = 'shared-uid-1'")" "5f2d1c0e9a-delivered.ics Same meeting from Exchange"
check "the UID lock is not left behind" "$(sql "SELECT count(*) FROM NAMED_LOCK WHERE LOCK_NAME LIKE 'ImplicitUIDLock:%'")" 0

# CalendarServer's other limits, and where new events go: more than its
# MaxAttendeesPerInstance (100) is refused for calbridge's writes, and a
# home without a default calendar gets events in its first calendar that
# holds events, never a to-do list that free/busy ignores.
att() {   # att N: an event with N attendees
    { printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//Mac OS X 10.9//EN\r\nBEGIN:VEVENT\r\nUID:crowd-%s\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300701T090000Z\r\nDTEND:20300701T100000Z\r\nSUMMARY:Crowd\r\nORGANIZER:mailto:wendy@example.org\r\n' "$1"
      for i in $(seq "$1"); do printf 'ATTENDEE:mailto:p%s@example.org\r\n' "$i"; done
      printf 'END:VEVENT\r\nEND:VCALENDAR\r\n'; } >"$AW/crowd$1.ics"
}
att 101
att 100
check "101 attendees: refused, said why" "$(CCSLOAD_STRICT=1 load put "$WENDY" "$AW/crowd101.ics" crowd101.ics 2>&1 | grep -c 'CalendarServer allows 100')" 1
check "100 attendees: written" "$(CCSLOAD_STRICT=1 load put "$WENDY" "$AW/crowd100.ics" crowd100.ics 2>&1 | wc -l)$(sql "SELECT count(*) FROM CALENDAR_OBJECT WHERE RESOURCE_NAME = 'crowd100.ics'")" 01
TOD=50000000-0000-0000-0000-00000000000c
load home "$TOD" >/dev/null
sql "UPDATE CALENDAR_HOME_METADATA SET DEFAULT_EVENTS = NULL WHERE RESOURCE_ID = (SELECT RESOURCE_ID FROM CALENDAR_HOME WHERE OWNER_UID = '$TOD')" >/dev/null
sql "UPDATE CALENDAR_METADATA SET SUPPORTED_COMPONENTS = 'VTODO' WHERE RESOURCE_ID IN (SELECT CALENDAR_RESOURCE_ID FROM CALENDAR_BIND b JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID WHERE h.OWNER_UID = '$TOD' AND b.CALENDAR_RESOURCE_NAME <> 'inbox')" >/dev/null
sql "WITH c AS (INSERT INTO CALENDAR DEFAULT VALUES RETURNING RESOURCE_ID), m AS (INSERT INTO CALENDAR_METADATA (RESOURCE_ID, SUPPORTED_COMPONENTS) SELECT RESOURCE_ID, 'VEVENT' FROM c RETURNING RESOURCE_ID) INSERT INTO CALENDAR_BIND (CALENDAR_HOME_RESOURCE_ID, CALENDAR_RESOURCE_ID, CALENDAR_RESOURCE_NAME, BIND_MODE, BIND_STATUS) SELECT h.RESOURCE_ID, m.RESOURCE_ID, 'events', 0, 1 FROM m, CALENDAR_HOME h WHERE h.OWNER_UID = '$TOD'" >/dev/null
load put "$TOD" "$AW/crowd100.ics" tod-event.ics
check "no default calendar: the event goes to the one that holds events, not the to-do list" "$(sql "SELECT b.CALENDAR_RESOURCE_NAME FROM CALENDAR_OBJECT o JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID AND b.BIND_MODE = 0 WHERE o.RESOURCE_NAME = 'tod-event.ics'")" events

# A home the writer has to create is created as CalendarServer provisions
# one (ccs-write-path.md 1.7): its DATAVERSION, "calendar", "tasks" and
# "polls" with their defaults, a transparent inbox; a home the person has
# in another state is not doubled.
UMA=50000000-0000-0000-0000-00000000000d
load home "$UMA" >/dev/null
hm="(SELECT RESOURCE_ID FROM CALENDAR_HOME WHERE OWNER_UID = '$UMA')"
check "DATAVERSION as CalendarServer's" "$(sql "SELECT DATAVERSION FROM CALENDAR_HOME WHERE OWNER_UID = '$UMA'")" "$(sql "SELECT VALUE FROM CALENDARSERVER WHERE NAME = 'CALENDAR-DATAVERSION'")"
check "one calendar per component, and the inbox" "$(sql "SELECT string_agg(b.CALENDAR_RESOURCE_NAME || ':' || COALESCE(m.SUPPORTED_COMPONENTS, '-') || ':' || b.TRANSP, ' ' ORDER BY b.CALENDAR_RESOURCE_NAME) FROM CALENDAR_BIND b JOIN CALENDAR_METADATA m ON m.RESOURCE_ID = b.CALENDAR_RESOURCE_ID WHERE b.CALENDAR_HOME_RESOURCE_ID = $hm")" "calendar:VEVENT:0 inbox:-:1 polls:VPOLL:0 tasks:VTODO:0"
check "each the default of its kind" "$(sql "SELECT (DEFAULT_EVENTS IS NOT NULL)::int + (DEFAULT_TASKS IS NOT NULL)::int + (DEFAULT_POLLS IS NOT NULL)::int FROM CALENDAR_HOME_METADATA WHERE RESOURCE_ID = $hm")" 3
VAL2=50000000-0000-0000-0000-00000000000e
sql "INSERT INTO CALENDAR_HOME (OWNER_UID, STATUS) VALUES ('$VAL2', 2)" >/dev/null
check "a home in another state: refused, not doubled" "$(load home "$VAL2" 2>&1 | grep -c 'not active (status 2)')$(sql "SELECT count(*) FROM CALENDAR_HOME WHERE OWNER_UID = '$VAL2'")" 11

# Per-user data, as CalendarServer keeps it (ccs-write-path.md 1.1 step 7,
# 1.3): Wendy's reminder, her "free" and her X- properties go into her
# X-CALENDARSERVER-PERUSER block, not the shared event her sharees and
# delegates see; where her view differs from the index, her PERUSER row says
# so; a sharee's own block survives her next change.
obj_text() { sql "SELECT ICALENDAR_TEXT FROM CALENDAR_OBJECT WHERE ICALENDAR_TEXT LIKE '%SUMMARY:$1%'" | tr -d '\r'; }
ews_post wendy@example.org "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Focus time</t:Subject><t:ReminderIsSet>true</t:ReminderIsSet><t:ReminderMinutesBeforeStart>15</t:ReminderMinutesBeforeStart><t:Start>2030-05-04T09:00:00Z</t:Start><t:End>2030-05-04T10:00:00Z</t:End><t:LegacyFreeBusyStatus>Free</t:LegacyFreeBusyStatus></t:CalendarItem></m:Items></m:CreateItem>" >/dev/null
cbw2 sync --once >/dev/null
txt=$(obj_text "Focus time")
check "the shared event holds no reminder, TRANSP or X- property of hers" "$(printf '%s\n' "$txt" | sed -n '/^BEGIN:VEVENT/,/^END:VEVENT/p' | grep -c '^BEGIN:VALARM\|^TRANSP\|^X-')" 0
check "her block holds them" "$(printf '%s\n' "$txt" | sed -n '/^BEGIN:X-CALENDARSERVER-PERUSER/,/^END:X-CALENDARSERVER-PERUSER/p' | grep -c "^X-CALENDARSERVER-PERUSER-UID:$WENDY\|^TRANSP:TRANSPARENT\|^TRIGGER:-PT15M\|^X-MICROSOFT-CDO-BUSYSTATUS:FREE")" 4
peruser_of() { sql "SELECT string_agg(p.USER_ID || ':' || p.TRANSPARENT || ':' || COALESCE(to_char(p.ADJUSTED_START_DATE, 'HH24:MI'), '-') || ':' || COALESCE(to_char(p.ADJUSTED_END_DATE, 'HH24:MI'), '-'), ' ' ORDER BY p.USER_ID) FROM PERUSER p JOIN TIME_RANGE t ON t.INSTANCE_ID = p.TIME_RANGE_INSTANCE_ID JOIN CALENDAR_OBJECT o ON o.RESOURCE_ID = t.CALENDAR_OBJECT_RESOURCE_ID WHERE o.ICALENDAR_TEXT LIKE '%SUMMARY:$1%'"; }
check "free for her alone: her PERUSER row, the index row busy" "$(peruser_of "Focus time") $(sql "SELECT t.TRANSPARENT FROM TIME_RANGE t JOIN CALENDAR_OBJECT o ON o.RESOURCE_ID = t.CALENDAR_OBJECT_RESOURCE_ID WHERE o.ICALENDAR_TEXT LIKE '%SUMMARY:Focus time%'")" "$WENDY:true:-:- f"
sql "UPDATE CALENDAR_OBJECT SET ICALENDAR_TEXT = replace(ICALENDAR_TEXT, E'END:VCALENDAR\r\n', E'BEGIN:X-CALENDARSERVER-PERUSER\r\nX-CALENDARSERVER-PERUSER-UID:sharee-9\r\nBEGIN:X-CALENDARSERVER-PERINSTANCE\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:mine\r\nTRIGGER:-PT7M\r\nEND:VALARM\r\nEND:X-CALENDARSERVER-PERINSTANCE\r\nEND:X-CALENDARSERVER-PERUSER\r\nEND:VCALENDAR\r\n') WHERE ICALENDAR_TEXT LIKE '%SUMMARY:Focus time%'" >/dev/null
fid=$(calendar_items wendy@example.org | awk -F'\t' '$8 == "Focus time" {print $3}')
ews_set_subject wendy@example.org "$fid" "Focus time longer"
cbw2 sync --once >/dev/null
txt=$(obj_text "Focus time longer")
check "a sharee's own alarm survives her change" "$(printf '%s\n' "$txt" | grep -c '^X-CALENDARSERVER-PERUSER-UID:sharee-9\|^TRIGGER:-PT7M')" 2
check "and hers is written once, anew" "$(printf '%s\n' "$txt" | grep -c "^X-CALENDARSERVER-PERUSER-UID:$WENDY")$(printf '%s\n' "$txt" | grep -c '^TRIGGER:-PT15M')" 11

# Read the other way: what an Apple client stored in per-user form (here
# written by the test loader, split as CalendarServer splits a PUT) reaches
# Exchange with the owner's reminder, transparency and travel time.
printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//Mac OS X 10.9//EN\r\nBEGIN:VEVENT\r\nUID:vera-offsite\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20300506T090000Z\r\nDTEND:20300506T100000Z\r\nSUMMARY:Vera offsite\r\nTRANSP:TRANSPARENT\r\nX-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT45M\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:r\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' >"$AW/offsite.ics"
load put "$VERA" "$AW/offsite.ics" offsite.ics
check "stored split: Vera's data in her block" "$(obj_text "Vera offsite" | sed -n '/^BEGIN:X-CALENDARSERVER-PERUSER/,$p' | grep -c "^X-CALENDARSERVER-PERUSER-UID:$VERA\|^TRIGGER:-PT10M\|^X-APPLE-TRAVEL-DURATION")" 3
check "her travel time moves her start in the index (PERUSER)" "$(peruser_of "Vera offsite")" "$VERA:true:08:15:-"
cbw2 sync --once >/dev/null
oid=$(calendar_items vera@example.org | awk -F'\t' '$8 == "Vera offsite" {print $3}')
check "in Exchange with her reminder and her Free" "$(ews_post vera@example.org "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id=\"$oid\"/></m:ItemIds></m:GetItem>" | grep -o '<t:ReminderMinutesBeforeStart>[0-9]*\|<t:LegacyFreeBusyStatus>[A-Za-z]*' | cut -d'>' -f2 | tr '\n' ' ')" "10 Free "
check "and her travel time as an OOF appointment before it" "$(calendar_items vera@example.org | awk -F'\t' '$8 == "Travel time: Vera offsite" {print $9 " " $10}')" "2030-05-06T08:15:00Z 2030-05-06T09:00:00Z"
# It follows its event: moved when the travel time changes, gone with it.
sed 's/PT45M/PT30M/' "$AW/offsite.ics" >"$AW/offsite2.ics"
load put "$VERA" "$AW/offsite2.ics" offsite.ics
cbw2 sync --once >/dev/null
check "travel time changed in Apple: the appointment moves, not doubled" "$(calendar_items vera@example.org | awk -F'\t' '$8 == "Travel time: Vera offsite" {print $9}' | tr '\n' ' ')" "2030-05-06T08:30:00Z "
grep -v '^X-APPLE-TRAVEL' "$AW/offsite2.ics" >"$AW/offsite3.ics"
load put "$VERA" "$AW/offsite3.ics" offsite.ics
cbw2 sync --once >/dev/null
check "travel time removed: the appointment goes" "$(calendar_items vera@example.org | awk -F'\t' '$8 ~ /Vera offsite/' | wc -l)" 1
load put "$VERA" "$AW/offsite.ics" offsite.ics
cbw2 sync --once >/dev/null
load delete "$VERA" offsite.ics
cbw2 sync --once >/dev/null
check "the event deleted: its travel time with it" "$(calendar_items vera@example.org | awk -F'\t' '$8 ~ /Vera offsite/' | wc -l)" 0
check "and no run reported Exchange's own copy as a conflict" "$(cbw2 status 2>&1 | grep -c 'Travel time')" 0
