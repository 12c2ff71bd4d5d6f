# A SyncState that Exchange no longer accepts means a full read, and a full
# read lists only the items there are (as Exchange: never a Delete). An item
# deleted meanwhile must leave the other side too, behind the mass-delete
# guard (before: it stayed in Apple for good, a ghost).
GH=0000000-0000-0000-0000-00000000000
GINA=8${GH}a
GUS=8${GH}b
GD=$(it_subenv ghosts "$GINA,gina@example.org,1,user" "$GUS,gus@example.org,1,user")
cbg() { $B/calbridge -c "$GD/conf" "$@" 2>/dev/null; }
load put "$GUS" "$SHARED/ccs/ics/OneEvent.ics" gus-own.ics
cbg sync --once >/dev/null
cbg cutover --person "$GINA" >/dev/null
keep=$(ews_create gina@example.org "Ghost keeper" 2030-08-01T09:00:00Z 2030-08-01T10:00:00Z)
gone=$(ews_create gina@example.org "Ghost to be" 2030-08-02T09:00:00Z 2030-08-02T10:00:00Z)
cbg sync --once >/dev/null
check "both of gina's items are in Apple" "$(apple_summaries "$GINA" | grep -c 'Ghost ')" 2
sim_control "badsync=1"
ews_delete gina@example.org "$gone"
gus_id=$(calendar_items gus@example.org | awk -F'\t' '$5 ~ /gus-own.ics$/ {print $3}')
ews_delete gus@example.org "$gus_id"
cbg sync --once >"$GD/full.out"
check "the stored SyncStates were refused: a full read" "$(grep -c 'refused the stored sync state' "$GD/full.out" | awk '{print ($1 > 0)}')" 1
check "the item deleted meanwhile left gina's Apple home" "$(apple_summaries "$GINA" | cut -f2 | tr '\n' '|')" "Ghost keeper|"
check "gus (on Apple): his deleted item was put back from Apple" "$(calendar_items gus@example.org | grep -c 'gus-own.ics')" 1
check "and the deletion is listed as a conflict" "$(cbg status --conflicts | grep -c "$GUS/.*/gus-own.ics")" 1
check "a further pass changes nothing" "$(cbg sync --once | awk '/items (created|updated|deleted)|written into Apple|deleted from Apple/ {s += $NF} END {print s + 0}')" 0

# An idle pass (nothing changed on either side) writes nothing to the state:
# no cursor or SyncState rewritten and fsynced every poll (before: about
# 0.8 GB a day of writes at the default interval).
calm   # Exchange moving a ChangeKey by itself is a change, rightly recorded:
cbg sync --once >/dev/null   # one pass takes in what the faults' last touches moved
sum_before=$(md5sum <"$GD/state/data.mdb")
cbg sync --once >/dev/null
check "an idle pass leaves the state file byte for byte" "$(md5sum <"$GD/state/data.mdb")" "$sum_before"
stormy
