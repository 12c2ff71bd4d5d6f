# The mass-delete guard in both directions, PostgreSQL restarted under the
# running service, and a cutover killed at random points.
wait_for() { n=$(($1 * 10)); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }
[ "$(authority_of alice@example.org)" = exchange ] || cb cutover --person "$ALICE" >/dev/null
# Apple -> Exchange: deleting a third of bob's events at once is held back.
cb sync --once >/dev/null
kb=$(( $(linked_of bob@example.org) / 3 + 12 ))
load bulk "$BOB" "$kb" guard >/dev/null
cb sync --once >/dev/null
bob_before=$(calendar_items bob@example.org | wc -l)
names=$(seq 0 $((kb - 1)) | awk '{printf "guard-%05d.ics ", $1}')
# shellcheck disable=SC2086
load delete "$BOB" $names
cb sync --once >"$WORK/guard1.out"; rc=$?
check "guard (to Exchange): bob is held back and reported" "$(grep -c 'bob@example.org: held back' "$WORK/guard1.out")" 1
check "guard (to Exchange): exit 3" "$rc" 3
check "guard (to Exchange): nothing was deleted" "$(calendar_items bob@example.org | wc -l)" "$bob_before"
cb sync --once --force-delete >"$WORK/guard2.out"
check "guard (to Exchange): --force-delete carries the $kb deletions" "$(calendar_items bob@example.org | wc -l)" $((bob_before - kb))

# Exchange -> Apple: deleting most of alice's items in Exchange likewise.
links=$(linked_of alice@example.org)
k=$((links / 3 + 12))
for j in $(seq "$k"); do ews_create alice@example.org "Guard $j" 2031-03-01T09:00:00Z 2031-03-01T09:30:00Z; done >"$WORK/guard.ids"
cb sync --once >/dev/null
apple_before=$(apple_summaries "$ALICE" | wc -l)
while read -r id; do ews_delete alice@example.org "$id"; done <"$WORK/guard.ids"
cb sync --once >"$WORK/guard3.out"
check "guard (to Apple): alice is held back and reported" "$(grep -c 'alice@example.org: held back' "$WORK/guard3.out")" 1
check "guard (to Apple): nothing was deleted in Apple" "$(apple_summaries "$ALICE" | wc -l)" "$apple_before"
cb sync --once --force-delete >/dev/null
check "guard (to Apple): --force-delete carries them" "$(apple_summaries "$ALICE" | wc -l)" $((apple_before - k))

# PostgreSQL restarted under the running service: both directions resume.
cb_bg sync >"$WORK/pgrestart.out" 2>&1 &
daemon=$!
sleep 1
pg_restart "$WORK/pg"
load put "$BOB" "$SHARED/ccs/ics/OneEvent.ics" after-restart.ics
ews_create alice@example.org "After restart" 2031-04-01T09:00:00Z 2031-04-01T09:30:00Z >/dev/null
to_exchange() { calendar_items bob@example.org | grep -q '/after-restart.ics'; }
to_apple() { apple_summaries "$ALICE" | grep -q 'After restart'; }
wait_for 15 to_exchange && ok "after a PostgreSQL restart an Apple change reached Exchange" || not_ok "Apple change lost after the restart"
wait_for 15 to_apple && ok "after a PostgreSQL restart an Exchange change reached Apple" || not_ok "Exchange change lost after the restart"
kill -TERM $daemon; wait $daemon 2>/dev/null

# A cutover killed at random points, then run again: it completes, bob's
# items keep their ItemIds, nothing is doubled on either side.
ids_before=$(calendar_items bob@example.org | cut -f3 | sort)
apple_before=$(apple_summaries "$BOB" | wc -l)
kill9_randomly 3 5 cutover --person "$BOB"
cb cutover --person "$BOB" >"$WORK/cutkill.out"; rc=$?
check "the cutover resumed after kills: exit 0" "$rc" 0
check "bob's authority is exchange" "$(authority_of bob@example.org)" exchange
check "bob's items kept their ItemIds: nothing re-created" "$(calendar_items bob@example.org | cut -f3 | sort)" "$ids_before"
check "nothing doubled in bob's Apple home" "$(apple_summaries "$BOB" | wc -l)" "$apple_before"
