# ErrorServerBusy with BackOffMilliseconds, HTTP 500s and a dropped
# connection: the sync completes and the back-off is honoured.
for i in 1 2 3 4 5 6; do load put "$BOB" "$SHARED/ccs/ics/OneEvent.ics" "busy$i.ics"; done
log_before=$(sim_log | wc -l)
sim_control "busy=1&backoff=700&fail500=2&drop=1"
cb sync --once >"$WORK/busy.out"
check "the sync completed despite the faults" "$(awk '/items created/ {print $3}' "$WORK/busy.out")" 6
sim_log | tail -n +$((log_before + 1)) >"$WORK/busy.log"
gap=$(awk -F'\t' '$4 == "busy" {t = $1; next} t && $3 == "bob@example.org" {print $1 - t; exit}' "$WORK/busy.log")
check "the next request to that mailbox waited BackOffMilliseconds" "$([ -n "$gap" ] && [ "$gap" -ge 700 ] && echo yes)" yes
check "both 500s and the drop were met and retried" "$(awk -F'\t' '$4 == "http500" || $4 == "drop"' "$WORK/busy.log" | wc -l)" 3
check "nothing doubled" "$(calendar_items bob@example.org | cut -f5 | sort | uniq -d | wc -l)" 0

# A throttling policy's budget: Bob's mailbox may make 2 requests a
# second; beyond, ErrorServerBusy with the time left. Every request of his
# waits its turn, and all 12 events arrive once.
for i in $(seq 12); do load put "$BOB" "$SHARED/ccs/ics/OneEvent.ics" "budget$i.ics"; done
log_before=$(sim_log | wc -l)
sim_control "budget=2&window=1000"
cb sync --once >"$WORK/budget.out"
sim_control "budget=0"
sim_log | tail -n +$((log_before + 1)) >"$WORK/budget.log"
check "over budget: the sync completed" "$(awk '/items created/ {print $3}' "$WORK/budget.out")" 12
check "Exchange did refuse some requests for the budget" "$(awk -F'\t' '$4 == "budget"' "$WORK/budget.log" | wc -l | awk '{print ($1 > 0)}')" 1
check "after a refusal the back-off was waited out: never two in a row" "$(awk -F'\t' '$3 == "bob@example.org" {if ($4 == "budget" && last == "budget") n++; last = $4} END {print n + 0}' "$WORK/budget.log")" 0
check "nothing doubled" "$(calendar_items bob@example.org | cut -f5 | sort | uniq -d | wc -l)" 0
