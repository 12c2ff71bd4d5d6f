# What one person can do to another through content they can edit: nothing.
# mallory is on Exchange; her items' calbridge stamps are hers to edit, and
# must not decide whose calendar is written (defect: an item stamped with
# victor's calendar overwrote victor's event on both sides, and deleting it
# deleted his).
MALLORY=30000000-0000-0000-0000-00000000000a
VICTOR=30000000-0000-0000-0000-00000000000b
SEC=$(it_subenv security "$MALLORY,mallory@example.org,1,user" "$VICTOR,victor@example.org,2,user")
cbs() { $B/calbridge -c "$SEC/conf" "$@"; }
load put "$VICTOR" "$SHARED/ccs/ics/OneEvent.ics" victor-own.ics
load put "$MALLORY" "$SHARED/ccs/ics/OneEvent.ics" mallory-own.ics
cbs sync --once >/dev/null
cbs cutover --person "$MALLORY" >/dev/null
victor_cal=$(pg_psql "$WORK/pg" -At -c "SELECT b.CALENDAR_RESOURCE_ID FROM CALENDAR_BIND b JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID WHERE h.OWNER_UID = '$VICTOR' AND b.CALENDAR_RESOURCE_NAME = 'calendar'")
victor_md5() { pg_psql "$WORK/pg" -At -c "SELECT MD5 FROM CALENDAR_OBJECT WHERE CALENDAR_RESOURCE_ID = $victor_cal AND RESOURCE_NAME = 'victor-own.ics'"; }
victor_item() { calendar_items victor@example.org | awk -F'\t' '$5 ~ /victor-own.ics$/ {print $3 "|" $8}'; }
md5_before=$(victor_md5)
item_before=$(victor_item)
[ -n "$md5_before" ] && [ -n "$item_before" ] && ok "victor's event is on both sides" || not_ok "victor's event is missing before the attack"

stamp() {   # an extended property in calbridge's property set
    echo "<t:ExtendedProperty><t:ExtendedFieldURI PropertySetId=\"3c8d6a0e-5f1b-4b7e-9a2d-c41b0e7f5a19\" PropertyName=\"$1\" PropertyType=\"String\"/><t:Value>$2</t:Value></t:ExtendedProperty>"
}
hijack=$(ews_post mallory@example.org "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Hijacked</t:Subject>$(stamp calbridge-source "$MALLORY/$victor_cal/victor-own.ics")$(stamp calbridge-tag 0123456789abcdef0123456789abcdef)<t:Start>2030-02-01T09:00:00Z</t:Start><t:End>2030-02-01T10:00:00Z</t:End></t:CalendarItem></m:Items></m:CreateItem>" |
    grep -o '<t:ItemId Id="[^"]*"' | head -n 1 | cut -d'"' -f2)
cbs sync --once >"$SEC/sync1.out"
check "a stamp naming victor's calendar does not touch his Apple event" "$(victor_md5)" "$md5_before"
check "nor his Exchange item" "$(victor_item)" "$item_before"
check "the item lands in mallory's own Apple home" "$(apple_summaries "$MALLORY" | grep -c Hijacked)" 1
check "nothing of it in victor's home" "$(apple_summaries "$VICTOR" | grep -c Hijacked)" 0
ews_delete mallory@example.org "$hijack"
cbs sync --once >/dev/null
check "deleting it leaves victor's Apple event" "$(victor_md5)" "$md5_before"
check "and his Exchange item" "$(victor_item)" "$item_before"
check "and removes it from mallory's home" "$(apple_summaries "$MALLORY" | grep -c Hijacked)" 0

# The Apple writer itself refuses a calendar outside the person's home.
CCSLOAD_CALENDAR=$victor_cal load put "$MALLORY" "$SHARED/ccs/ics/OneEvent.ics" victor-own.ics 2>"$SEC/load.err"; rc=$?
check "the writer refuses another person's calendar" "$rc" 1
check "and says why" "$(grep -c "not in $MALLORY's own home" "$SEC/load.err")" 1
check "victor's event is still his" "$(victor_md5)" "$md5_before"

# One bad Apple event fails alone, named with its reason, and stays listed
# in status until it is carried or gone (defect: an alarm five years early
# or a year-0001 start faulted the person's whole CreateItem, every pass).
evt() {   # evt UID SUMMARY DTSTART [extra lines]
    printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:%s\r\nDURATION:PT1H\r\nSUMMARY:%s\r\n%bEND:VEVENT\r\nEND:VCALENDAR\r\n' "$1" "$3" "$2" "${4:-}"
}
evt far-alarm "Far alarm" 20300301T090000Z "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;VALUE=DATE-TIME:20200101T000000Z\r\nEND:VALARM\r\n" >"$SEC/far.ics"
evt year-one "Year one" 00010101T090000Z >"$SEC/y1.ics"
evt poison "Poison REJECTME" 20300302T090000Z >"$SEC/poison.ics"
evt good-1 "Good one" 20300303T090000Z >"$SEC/g1.ics"
evt good-2 "Good two" 20300304T090000Z >"$SEC/g2.ics"
for f in far y1 poison g1 g2; do load put "$VICTOR" "$SEC/$f.ics" "$f.ics"; done
sim_control reject=REJECTME
cbs sync --once >"$SEC/bad.out"; rc=$?
check "bad Apple events: exit 3" "$rc" 3
victor_subjects() { calendar_items victor@example.org | cut -f8 | sort | tr '\n' '|'; }
check "the good events and the clamped alarm reached Exchange" "$(victor_subjects | grep -o 'Far alarm|Good one|Good two|' )" "Far alarm|Good one|Good two|"
far_id=$(calendar_items victor@example.org | awk -F'\t' '$8 == "Far alarm" {print $3}')
check "the early alarm carries Exchange's longest reminder" "$(ews_post victor@example.org "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id=\"$far_id\"/></m:ItemIds></m:GetItem>" | grep -o '<t:ReminderMinutesBeforeStart>[0-9]*' | cut -d'>' -f2)" 2629800
check "the year-0001 event is named with its reason" "$(grep -c 'y1.ics.*outside the years Exchange stores' "$SEC/bad.out")" 1
check "the event Exchange refused is named, alone" "$(grep -c 'poison.ics.*refused by Exchange: .*ErrorSchemaValidation' "$SEC/bad.out")" 1
check "status lists both as not carried" "$(cbs status | awk '/^not carried/ {print $3}')" 2
sim_control reject=
evt poison "Poison fixed" 20300302T090000Z >"$SEC/poison.ics"
load put "$VICTOR" "$SEC/poison.ics" poison.ics
load delete "$VICTOR" y1.ics
cbs sync --once >/dev/null
check "once fixed it is carried" "$(victor_subjects | grep -c 'Poison fixed')" 1
check "carried or gone: status lists nothing" "$(cbs status | awk '/^not carried/ {print $3}')" 0

# One bad Exchange item fails alone under its own savepoint, named with the
# mailbox and ItemId (defect: a 300-character UID rolled back the batch and
# the SyncState never moved).
long_uid=$(printf 'u%.0s' $(seq 300))
ews_post mallory@example.org "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Long UID</t:Subject><t:UID>$long_uid</t:UID><t:Start>2030-02-02T09:00:00Z</t:Start><t:End>2030-02-02T10:00:00Z</t:End></t:CalendarItem></m:Items></m:CreateItem>" >/dev/null
long_id=$(calendar_items mallory@example.org | awk -F'\t' '$8 == "Long UID" {print $3}')
ews_create mallory@example.org "Next to the long UID" 2030-02-02T11:00:00Z 2030-02-02T12:00:00Z >/dev/null
cbs sync --once >"$SEC/long.out"; rc=$?
check "a 300-character UID: exit 3" "$rc" 3
check "it is named with mailbox, ItemId and reason" "$(grep -c "mallory@example.org item $long_id: not written into Apple: UID of 300 characters" "$SEC/long.out")" 1
check "its neighbour reached Apple" "$(apple_summaries "$MALLORY" | grep -c 'Next to the long UID')" 1
check "status keeps it listed" "$(cbs status | grep -c "exchange:mallory@example.org/$long_id")" 1
calm   # a ChangeKey Exchange moves by itself would be read again, rightly:
cbs sync --once >/dev/null   # one pass reads what the faults' last touches moved
log_before=$(sim_log | wc -l)
cbs sync --once >"$SEC/long2.out"
check "the SyncState moved: the next pass reads nothing again" "$(sim_log | tail -n +$((log_before + 1)) | awk -F'\t' '$2 == "GetItem" && $3 == "mallory@example.org"' | wc -l)" 0
stormy
ews_delete mallory@example.org "$long_id"
cbs sync --once >/dev/null
check "deleted in Exchange: no longer listed" "$(cbs status | grep -c "exchange:mallory@example.org/$long_id")" 0

# A server that never ends SyncFolderItems: bounded (defect: 2,588 requests
# and 1.34 GB in 60 s). Requests are counted: no faults meanwhile (one
# sent again after a back-off would count twice).
calm
sim_control endless=1
log_before=$(sim_log | wc -l)
timeout 60 $B/calbridge -c "$SEC/conf" sync --once >/dev/null; rc=$?
check "endless answers without progress: the pass ends" "$rc" 0
check "after at most two pages per person" "$(sim_log | tail -n +$((log_before + 1)) | awk -F'\t' '$2 == "SyncFolderItems" && $3 == "mallory@example.org"' | wc -l | awk '{print ($1 <= 2)}')" 1
sim_control endless=2
log_before=$(sim_log | wc -l)
timeout 120 $B/calbridge -c "$SEC/conf" sync --once >"$SEC/endless.out"; rc=$?
check "endless answers with a new SyncState each time: the pass ends" "$rc" 0
check "after 100 pages" "$(sim_log | tail -n +$((log_before + 1)) | awk -F'\t' '$2 == "SyncFolderItems" && $3 == "mallory@example.org"' | wc -l)" 100
check "and says so" "$(grep -c 'mallory@example.org.*did not reach the end after 100 pages' "$SEC/endless.out")" 1
sim_control endless=0
stormy

# Hostile iCalendar that is merely slow: 20 MB in one unfolded DESCRIPTION
# line (66 s of libical CPU before). Over CalendarServer's MaxResourceSize
# it is not even read, and reported.
evt huge "Huge" 20300305T090000Z >"$SEC/huge.ics"
load put "$VICTOR" "$SEC/huge.ics" huge.ics
pg_psql "$WORK/pg" -q -c "UPDATE CALENDAR_OBJECT SET ICALENDAR_TEXT = replace(ICALENDAR_TEXT, E'SUMMARY:Huge\r\n', E'SUMMARY:Huge\r\nDESCRIPTION:' || repeat('x', 20000000) || E'\r\n') WHERE RESOURCE_NAME = 'huge.ics'; UPDATE CALENDAR_OBJECT_REVISIONS SET REVISION = nextval('REVISION_SEQ') WHERE RESOURCE_NAME = 'huge.ics'"
timeout 30 $B/calbridge -c "$SEC/conf" sync --once >"$SEC/huge.out"; rc=$?
check "a 20 MB event: the pass ends, exit 3" "$rc" 3
check "it is named: over MaxResourceSize" "$(grep -c "huge.ics.*MaxResourceSize" "$SEC/huge.out")" 1
