# What an operator gets wrong, caught before it costs anything: a writer
# role without the privileges mirroring needs (found at start and before a
# cutover flips anyone, not after), a wave that is not a number, a secret
# file or state directory others can read or write, refused credentials
# (no login storm against an account-lockout policy), HTTP throttling.
OPP=40000000-0000-0000-0000-00000000000a
OP=$(it_subenv operator "$OPP,olga@example.org,1,user")
cbo() { $B/calbridge -c "$OP/conf" "$@"; }
load put "$OPP" "$SHARED/ccs/ics/OneEvent.ics" olga.ics
cbo sync --once >/dev/null 2>&1

check "cutover --wave one is refused" "$(cbo cutover --wave one 2>&1 >/dev/null | grep -c "takes a wave number, not 'one'")" 1
cbo cutover --wave one >/dev/null 2>&1; check "with exit 2" "$?" 2

sql "CREATE ROLE calbridge_ro LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO calbridge_ro" >/dev/null
sed "/^dsn = /a write_dsn = $DSN user=calbridge_ro" "$OP/conf" >"$OP/ro.conf"
$B/calbridge -c "$OP/ro.conf" cutover --person "$OPP" >"$OP/ro.out" 2>&1; rc=$?
check "a SELECT-only writer: the cutover refuses, exit 1" "$rc" 1
check "naming what is missing" "$(grep -c 'writer.s role (calbridge_ro) lacks INSERT on calendar_home' "$OP/ro.out")" 1
check "olga stays on Apple" "$($B/calbridge -c "$OP/ro.conf" status | awk '$2 == "olga@example.org" {print $5}')" apple
$B/calbridge -c "$OP/ro.conf" sync --once >"$OP/ro-sync.out" 2>&1; rc=$?
check "nobody on Exchange yet: sync runs, with a warning" "$rc$(grep -c 'warning: the Apple writer' "$OP/ro-sync.out")" 01
cbo cutover --person "$OPP" >/dev/null 2>&1
$B/calbridge -c "$OP/ro.conf" sync --once >"$OP/ro-sync2.out" 2>&1; rc=$?
check "olga on Exchange: sync with that writer refuses to start" "$rc$(grep -c 'lacks INSERT' "$OP/ro-sync2.out")" 11

printf 'secret\n' >"$OP/pw"
chmod 644 "$OP/pw"
sed "s|^password_file = .*|password_file = $OP/pw|" "$OP/conf" >"$OP/pw.conf"
check "a password file others can read is refused" "$($B/calbridge -c "$OP/pw.conf" status 2>&1 | grep -c 'chmod 600')" 1
chmod 777 "$OP/state"
check "a state directory others can write is refused" "$(cbo status 2>&1 | grep -c 'chmod 700')" 1
chmod 700 "$OP/state"
check "plain HTTP runs only with allow_insecure, and warns" "$(cbo sync --once 2>&1 | grep -c 'warning: \[exchange\] url is http://')" 1

# Credentials refused: one burst of 401s, then a pause, not a login storm.
printf 'wrong\n' >"$OP/badpw"
chmod 600 "$OP/badpw"
sed "s|^password_file = .*|password_file = $OP/badpw|" "$OP/conf" >"$OP/bad.conf"
log_before=$(sim_log | wc -l)
(cb_bg_bad() { exec $B/calbridge -c "$OP/bad.conf" sync; }; cb_bg_bad) 2>"$OP/bad.err" &
bad=$!
sleep 6
kill -TERM $bad 2>/dev/null; wait $bad 2>/dev/null
n401=$(sim_log | tail -n +$((log_before + 1)) | grep -c unauthorized)
check "refused credentials: at most a handful of logins in 6 s (30 polls)" "$(test "$n401" -ge 1 && test "$n401" -le 4 && echo yes)" yes
check "and it says it is pausing" "$(grep -c 'no login is tried for' "$OP/bad.err" | awk '{print ($1 > 0)}')" 1

# HTTP 503 with Retry-After: the next attempt waits as asked.
ews_create olga@example.org "After the 503" 2030-03-01T09:00:00Z 2030-03-01T10:00:00Z >/dev/null
sim_control "unavailable=1&retryafter=2"
log_before=$(sim_log | wc -l)
cbo sync --once >/dev/null 2>&1; rc=$?
check "after a 503 the pass completes" "$rc" 0
check "the change arrived" "$(apple_summaries "$OPP" | grep -c 'After the 503')" 1
gap=$(sim_log | tail -n +$((log_before + 1)) | awk -F'\t' '$4 == "http503" {t = $1; next} t && !g {g = $1 - t} END {print g + 0}')
check "the retry came after Retry-After (2 s)" "$(test "$gap" -ge 1900 && echo yes)" yes

# HTTP 429 Too Many Requests with Retry-After, likewise.
ews_create olga@example.org "After the 429" 2030-03-02T09:00:00Z 2030-03-02T10:00:00Z >/dev/null
sim_control "unavailable=1&retryafter=2&status=429"
log_before=$(sim_log | wc -l)
cbo sync --once >/dev/null 2>&1; rc=$?
sim_control "status=503"
check "after a 429 the pass completes" "$rc$(apple_summaries "$OPP" | grep -c 'After the 429')" 01
gap=$(sim_log | tail -n +$((log_before + 1)) | awk -F'\t' '$4 == "http429" {t = $1; next} t && !g {g = $1 - t} END {print g + 0}')
check "the retry came after its Retry-After (2 s)" "$(test "$gap" -ge 1900 && echo yes)" yes
