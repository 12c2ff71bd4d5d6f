# A fault confined to one mailbox (impersonation refused) holds that person
# back, reported, while everyone else goes on; nothing of theirs is lost
# (before: the pass failed for everyone, and with a create pending every
# later pass stopped at recovery).
ANN=70000000-0000-0000-0000-00000000000a
BEN=70000000-0000-0000-0000-00000000000b
MB=$(it_subenv mailbox "$ANN,ann@example.org,1,user" "$BEN,ben@example.org,1,user")
cbm() { $B/calbridge -c "$MB/conf" "$@" 2>/dev/null; }
ev() {   # ev UID SUMMARY DAY
    printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:203007%02dT090000Z\r\nDURATION:PT1H\r\nSUMMARY:%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' "$1" "$3" "$2" >"$MB/$1.ics"
}
ev ann-1 "Ann one" 1; ev ben-1 "Ben one" 2
load put "$ANN" "$MB/ann-1.ics" ann-1.ics
load put "$BEN" "$MB/ben-1.ics" ben-1.ics
sim_control faultmailbox=ben@example.org
cbm sync --once >"$MB/s1.out"; rc=$?
check "one mailbox refused: exit 3, not a failed pass" "$rc" 3
# (both engines read his mailbox in the first cycle, and each says so)
check "ben is held back, with the reason" "$(grep -c 'ben@example.org: held back: .*ErrorImpersonateUserDenied' "$MB/s1.out" | awk '{print ($1 >= 1)}')" 1
check "ann went on" "$(calendar_items ann@example.org | grep -c 'Ann one')" 1
ev ann-2 "Ann two" 3
load put "$ANN" "$MB/ann-2.ics" ann-2.ics
cbm sync --once >/dev/null
check "while ben is held, ann's next change goes through" "$(calendar_items ann@example.org | grep -c 'Ann two')" 1
sim_control faultmailbox=
cbm sync --once >"$MB/s3.out"; rc=$?
check "once ben's mailbox works: exit 0" "$rc" 0
check "ben's event arrives, once" "$(calendar_items ben@example.org | grep -c 'Ben one')" 1
check "ann's are not doubled" "$(calendar_items ann@example.org | wc -l)" 2

# The same on the way back: ann moved to Exchange, her mailbox refused.
cbm cutover --person "$ANN" >/dev/null
ews_create ann@example.org "Made in Outlook" 2030-07-10T09:00:00Z 2030-07-10T10:00:00Z >/dev/null
sim_control faultmailbox=ann@example.org
ev ben-2 "Ben two" 4
load put "$BEN" "$MB/ben-2.ics" ben-2.ics
cbm sync --once >"$MB/s4.out"; rc=$?
check "mirror: ann held back, exit 3" "$rc$(grep -c 'ann@example.org: held back' "$MB/s4.out")" 31
check "ben went on" "$(calendar_items ben@example.org | grep -c 'Ben two')" 1
sim_control faultmailbox=
cbm sync --once >/dev/null
check "ann's Outlook item reaches Apple afterwards" "$(apple_summaries "$ANN" | grep -c 'Made in Outlook')" 1
