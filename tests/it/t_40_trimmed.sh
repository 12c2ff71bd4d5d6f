# CalendarServer trimmed the revisions the cursor needs: the rescan matches
# the links instead of creating duplicates, and carries the deletion.
count_before=$(calendar_items alice@example.org | wc -l)
load delete "$ALICE" ThirdEvent.ics
head=$(sql "SELECT max(REVISION) FROM CALENDAR_OBJECT_REVISIONS")
sql "DELETE FROM CALENDAR_OBJECT_REVISIONS WHERE DELETED; UPDATE CALENDARSERVER SET VALUE = '$((head + 1))' WHERE NAME = 'MIN-VALID-REVISION'" >/dev/null
cb sync --once >"$WORK/trim.out"
check "rescan created nothing" "$(awk '/items created/ {print $3}' "$WORK/trim.out")" 0
check "rescan deleted the vanished event" "$(calendar_items alice@example.org | wc -l)" "$((count_before - 1))"
check "no source key twice after the rescan" "$(calendar_items alice@example.org | cut -f5 | sort | uniq -d | wc -l)" 0
