# Exchange loses its store (the simulator restarts empty: a mailbox
# database restored from nothing, or replaced) under calbridge. Every
# SyncState and ItemId of the old one is unknown to the new one. What
# calbridge does, and what is lost:
#   - people on Apple: their events are written into Exchange again, once
#     each (Apple is their source of truth: nothing lost);
#   - people on Exchange: what only Exchange held is gone, so it leaves
#     their Apple calendar too, as any deletion on their side would; above
#     the mass-delete guard's threshold this stops for that person instead
#     and is reported (t_d0 tests the guard).
RS=f3000000-0000-0000-0000-00000000000
RITA=${RS}1
RON=${RS}2
RD3=$(it_subenv simrestart "$RITA,rita@example.org,1,user" "$RON,ron@example.org,2,user")
printf "[coexistence]\nreconcile_interval = 1\n" >>"$RD3/conf"
cbs() { $B/calbridge -c "$RD3/conf" "$@"; }
load put "$RITA" "$SHARED/ccs/ics/OneEvent.ics" rita-one.ics
load put "$RITA" "$SHARED/ccs/ics/ThirdEvent.ics" rita-third.ics
cbs sync --once >/dev/null 2>&1
cbs cutover --person "$RON" >/dev/null 2>&1
ews_create ron@example.org "Ron in Outlook" 2030-10-01T09:00:00Z 2030-10-01T10:00:00Z >/dev/null
cbs sync --once >/dev/null 2>&1
check "before: Rita's two events in Exchange" "$(calendar_items rita@example.org | wc -l)" 2
check "before: Ron's Outlook event in Apple" "$(apple_summaries "$RON" | grep -c 'Ron in Outlook')" 1

sim_restart
check "the new Exchange holds nothing" "$(sim_dump | wc -l)" 0
sleep 1.1   # reconcile_interval
cbs sync --once >"$RD3/after.out" 2>&1
cbs sync --once >>"$RD3/after.out" 2>&1
check "Rita's events are in Exchange again" "$(calendar_items rita@example.org | wc -l)" 2
check "once each" "$(calendar_items rita@example.org | cut -f8 | sort | uniq -d | wc -l)" 0
check "Ron's event, gone with Exchange's store, left Apple" "$(apple_summaries "$RON" | grep -c 'Ron in Outlook')" 0
check "Rita's Apple calendar untouched" "$(apple_summaries "$RITA" | wc -l)" 2
grep -q "cycle stopped" "$RD3/after.out" && { not_ok "a cycle failed"; tail -3 "$RD3/after.out"; }
check "status counts what exists" "$(cbs status | awk '$2 == "rita@example.org" {print $7}')" 2
