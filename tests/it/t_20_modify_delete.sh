# Modify and delete in PostgreSQL: same ItemIds updated in place, deleted
# events gone, nothing else touched.
before=$(calendar_items alice@example.org | sort)
mod_key=$(printf '%s\n' "$before" | awk -F'\t' '$5 ~ /\/OneEvent.ics$/ {print $3}')
del_key=$(printf '%s\n' "$before" | awk -F'\t' '$5 ~ /\/AnotherEvent.ics$/ {print $3}')
sed 's/^SUMMARY:.*/SUMMARY:Renamed by the test/' "$SHARED/ccs/ics/OneEvent.ics" >"$WORK/OneEvent.ics"
load put "$ALICE" "$WORK/OneEvent.ics" OneEvent.ics
load delete "$ALICE" AnotherEvent.ics
log_before=$(sim_log | wc -l)
cb sync --once >"$WORK/mod.out"
after=$(calendar_items alice@example.org | sort)
check "one item updated" "$(awk '/items updated/ {print $3}' "$WORK/mod.out")" 1
check "one item deleted" "$(awk '/items deleted/ {print $3}' "$WORK/mod.out")" 1
check "nothing created" "$(awk '/items created/ {print $3}' "$WORK/mod.out")" 0
check "the modified event kept its ItemId" "$(printf '%s\n' "$after" | awk -F'\t' -v id="$mod_key" '$3 == id {print $8}')" "Renamed by the test"
check "the deleted event's item left the calendar" "$(printf '%s\n' "$after" | awk -F'\t' -v id="$del_key" '$3 == id' | wc -l)" 0
unchanged_before=$(printf '%s\n' "$before" | awk -F'\t' -v a="$mod_key" -v b="$del_key" '$3 != a && $3 != b {print $3, $4}')
unchanged_after=$(printf '%s\n' "$after" | awk -F'\t' -v a="$mod_key" '$3 != a {print $3, $4}')
check "every other item kept its ChangeKey" "$unchanged_after" "$unchanged_before"
# The cycle also reads the folders back (SyncFolderItems): only reads, and
# the bridge's own writes are recognised there, never fetched again. One
# FindItem per batch looks for the events' travel-time appointments.
check "the update went out as UpdateItem, no Create" "$(sim_log | tail -n +$((log_before + 1)) | cut -f2 | grep -v '^SyncFolderItems$\|^-$' | sort -u | tr '\n' ' ')" "DeleteItem FindItem UpdateItem "
check "no echo: nothing fetched back" "$(sim_log | tail -n +$((log_before + 1)) | cut -f2 | grep -c '^GetItem$')" 0
