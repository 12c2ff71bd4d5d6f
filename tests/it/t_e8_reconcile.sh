# Items can leave Exchange without any change SyncFolderItems reports (a
# mailbox restored from an older backup, an administrator's purge): only a
# full read finds them. [coexistence] reconcile_interval reads every
# Exchange calendar in full that often; what vanished is written again from
# Apple for people still on Apple, and leaves Apple for people on Exchange.
RE=0000000-0000-0000-0000-00000000000
VIC=b${RE}a
VAL=b${RE}b
RD=$(it_subenv reconcile "$VIC,vic@example.org,1,user" "$VAL,val@example.org,2,user")
# Under injected faults (IT_CHAOS) passes take longer: a longer interval,
# so that "before the interval" still is.
RI=$([ -n "${IT_CHAOS:-}" ] && echo 12 || echo 2)
printf "[coexistence]\nreconcile_interval = %s\n" "$RI" >>"$RD/conf"
cbr() { $B/calbridge -c "$RD/conf" "$@" 2>/dev/null; }
load put "$VIC" "$SHARED/ccs/ics/OneEvent.ics" vic-one.ics
load put "$VIC" "$SHARED/ccs/ics/ThirdEvent.ics" vic-third.ics
cbr sync --once >/dev/null
cbr cutover --person "$VAL" >/dev/null
ews_create val@example.org "Val in Outlook" 2030-09-01T09:00:00Z 2030-09-01T10:00:00Z >/dev/null
cbr sync --once >/dev/null
check "vic's events are in Exchange" "$(calendar_items vic@example.org | wc -l)" 2
check "val's item is in Apple" "$(apple_summaries "$VAL" | grep -c 'Val in Outlook')" 1

sim_control "vanish=vic@example.org"
sim_control "vanish=val@example.org"
cbr sync --once >/dev/null
check "before the interval nothing notices (no change was reported)" "$(calendar_items vic@example.org | wc -l)" 0
sleep "$RI.2"
cbr sync --once >"$RD/full.out"
check "the full read wrote vic's events again from Apple" "$(calendar_items vic@example.org | wc -l)" 2
check "each once, linked to its new item" "$(cbr status | awk '$2 == "vic@example.org" {print $7}')" 2
check "val's item left Apple: Exchange, her authority, no longer has it" "$(apple_summaries "$VAL" | grep -c 'Val in Outlook')" 0
check "the next pass is idle" "$(cbr sync --once | awk '/items (created|updated|deleted)|written into Apple|deleted from Apple/ {s += $NF} END {print s + 0}')" 0
