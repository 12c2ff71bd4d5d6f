# Cutover of one person, then Exchange -> Apple mirroring: items made in
# Exchange reach the Apple home, nothing echoes back, edits on the mirror
# side are overwritten and listed.
load put "$ALICE" "$SHARED/ccs/ics/OneEvent.ics" a0-alice.ics
load put "$BOB" "$SHARED/ccs/ics/OneEvent.ics" a0-bob.ics
cb sync --once >/dev/null
ids_before=$(calendar_items alice@example.org | cut -f3 | sort)
cb cutover --person "$ALICE" --dry-run >"$WORK/dry.out"; rc=$?
check "dry run: exit 0" "$rc" 0
check "dry run: alice's sides are equal" "$(grep -c 'alice@example.org .* equal' "$WORK/dry.out")" 1
check "dry run changed nothing" "$(authority_of alice@example.org)" apple
log_before=$(sim_log | wc -l)
cb cutover --person "$ALICE" >"$WORK/cut.out"; rc=$?
check "cutover: exit 0" "$rc" 0
check "alice's authority is exchange" "$(authority_of alice@example.org)" exchange
check "bob's authority stays apple" "$(authority_of bob@example.org)" apple
check "same ItemIds after the cutover: nothing re-created" "$(calendar_items alice@example.org | cut -f3 | sort)" "$ids_before"
check "the cutover wrote nothing to Exchange" "$(sim_log | tail -n +$((log_before + 1)) | cut -f2 | grep -c -E '^(CreateItem|UpdateItem|DeleteItem)$')" 0

# An item made in Exchange appears in alice's Apple home.
new_id=$(ews_create alice@example.org "Made in Exchange" 2030-01-07T09:00:00Z 2030-01-07T10:00:00Z)
cb sync --once >"$WORK/m1.out"
check "the Exchange item reached Apple" "$(apple_summaries "$ALICE" | grep -c 'Made in Exchange')" 1
check "one item written into Apple" "$(awk '/written into Apple/ {print $NF}' "$WORK/m1.out")" 1
log_before=$(sim_log | wc -l)
cb sync --once >"$WORK/m2.out"
check "no echo: a second cycle writes nothing anywhere" "$(awk '/written into Apple/ {print $NF}' "$WORK/m2.out")$(awk '/items created/ {print $3}' "$WORK/m2.out")$(awk '/items updated/ {print $3}' "$WORK/m2.out")" "000"
check "no echo: no write reached Exchange" "$(sim_log | tail -n +$((log_before + 1)) | cut -f2 | grep -c -E '^(CreateItem|UpdateItem|DeleteItem)$')" 0

ews_set_subject alice@example.org "$new_id" "Renamed in Exchange"
cb sync --once >/dev/null
check "an Exchange edit reached Apple" "$(apple_summaries "$ALICE" | grep -c 'Renamed in Exchange')" 1

# An edit on alice's Apple side (her mirror) is overwritten and listed.
name=$(apple_summaries "$ALICE" | awk -F'\t' '/Renamed in Exchange/ {print $1}')
pg_psql "$WORK/pg" -At -c "SELECT ICALENDAR_TEXT FROM CALENDAR_OBJECT WHERE RESOURCE_NAME = '$name'" |
    sed 's/^SUMMARY:.*/SUMMARY:Edited in Apple/' >"$WORK/edited.ics"
load put "$ALICE" "$WORK/edited.ics" "$name"
cb sync --once >/dev/null
check "the Apple-side edit was overwritten" "$(apple_summaries "$ALICE" | awk -F'\t' -v n="$name" '$1 == n {print $2}')" "Renamed in Exchange"
check "the conflict is listed" "$(cb status --conflicts | grep -c "$name")" 1

# An edit in Exchange for bob (authority apple) is overwritten there.
bob_item=$(calendar_items bob@example.org | awk -F'\t' '$5 ~ /a0-bob.ics$/')
bob_id=$(printf '%s' "$bob_item" | cut -f3)
bob_subject=$(printf '%s' "$bob_item" | cut -f8)
ews_set_subject bob@example.org "$bob_id" "Edited in Exchange"
cb sync --once >/dev/null
check "bob's Exchange edit was overwritten by Apple's version" "$(calendar_items bob@example.org | awk -F'\t' -v id="$bob_id" '$3 == id {print $8}')" "$bob_subject"
check "bob's conflict is listed" "$(cb status --conflicts | grep -c "$BOB/.*/a0-bob.ics")" 1

ews_delete alice@example.org "$new_id"
cb sync --once >/dev/null
check "an Exchange delete reached Apple" "$(apple_summaries "$ALICE" | grep -c 'Renamed in Exchange')" 0

# A hostile Exchange item (no Start, no End) fails alone and is named; the
# good item fetched in the same batch still reaches Apple.
ews_post alice@example.org "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>No times at all</t:Subject></t:CalendarItem></m:Items></m:CreateItem>" >/dev/null
ews_create alice@example.org "Good neighbour" 2030-01-08T09:00:00Z 2030-01-08T10:00:00Z >/dev/null
cb sync --once >"$WORK/bad.out"; rc=$?
check "a bad Exchange item: exit 3" "$rc" 3
check "the bad item is named with its reason" "$(grep -c 'Exchange item: a calendar item lacks Start or End' "$WORK/bad.out")" 1
check "its good neighbour reached Apple" "$(apple_summaries "$ALICE" | grep -c 'Good neighbour')" 1
