# Initial sync of every fixture in ../shared/ccs/ics: exactly one stamped
# item per mapped event, a named reason for every other one.
n=0
for f in "$SHARED"/ccs/ics/*.ics; do load put "$ALICE" "$f" && n=$((n + 1)); done
cb sync --once >"$WORK/fixtures.out"
rc=$?
check "first sync exits 0 or 3 (some events not mappable)" "$([ $rc = 0 ] || [ $rc = 3 ] && echo yes)" yes
objects=$(sql "SELECT count(*) FROM CALENDAR_OBJECT o JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID WHERE h.OWNER_UID = '$ALICE'")
created=$(awk '/items created/ {print $3}' "$WORK/fixtures.out")
failed=$(awk '/^  errors/ {print $2}' "$WORK/fixtures.out")
skipped=$(awk '/skipped/ {print $4}' "$WORK/fixtures.out")
items=$(calendar_items alice@example.org | wc -l)
check "every object is created, failed with a reason, or skipped" "$((created + failed + skipped))" "$objects"
check "the simulator holds one item per created event" "$items" "$created"
dups=$(calendar_items alice@example.org | cut -f5 | sort | uniq -d | wc -l)
check "no source key appears twice" "$dups" 0
unstamped=$(calendar_items alice@example.org | awk -F'\t' '$5 !~ /^'"$ALICE"'\//' | wc -l)
check "every item carries its source key" "$unstamped" 0
reasons=$(grep -c "^    $ALICE/.*: " "$WORK/fixtures.out")
check "every failure names the event and the reason" "$([ "$reasons" -ge "$failed" ] && echo yes)" yes
check "no request failed schema validation" "$(sim_log | awk -F'\t' '$4 == "schema"' | wc -l)" 0
check "only SendToNone was ever sent" "$(sim_log | awk -F'\t' '$2 ~ /^(Create|Update|Delete)Item$/ && $6 != "SendToNone"' | wc -l)" 0
check "X-AnchorMailbox matched the impersonated mailbox" "$(sim_log | awk -F'\t' '$5 == "missing" || $5 == "mismatch"' | wc -l)" 0
grep -q "home_bad-calendar_bad-1.ics.*FREQ=HOURLY" "$WORK/fixtures.out" && ok "a malformed event is reported by name" || not_ok "home_bad-1 not reported"
cb sync --once >"$WORK/again.out"
check "a second run creates nothing" "$(awk '/items created/ {print $3}' "$WORK/again.out")" 0
check "a second run changes nothing in Exchange" "$(sim_log | awk -F'\t' '$2 ~ /(Create|Update|Delete)Item/' | wc -l)" "$(sim_log | awk -F'\t' '$2 ~ /(Create|Update|Delete)Item/' | wc -l)"
