# Exchange Online takes OAuth2 only: auth = oauth2 gets tokens with the
# client credentials grant from the tenant's token endpoint (the simulator
# plays the Microsoft identity platform), refreshes them before they
# expire, and after a 401 fetches one new token and sends the request once
# more instead of pausing. A refused client secret is said plainly, and no
# EWS request is sent without a token.
OA=0000000-0000-0000-0000-00000000000
OLA=c${OA}a
OD=$(it_subenv oauth2 "$OLA,ola@example.org,1,user")
printf 'app-secret\n' >"$OD/client_secret"
chmod 600 "$OD/client_secret"
sed -i -e 's/^auth = .*/auth = oauth2/' -e '/^username = /d' -e '/^password_file = /d' "$OD/conf"
sed -i "s|^\[exchange\]$|[exchange]\nclient_id = calbridge-app\nclient_secret_file = $OD/client_secret\ntoken_url = $SIM/contoso.example/oauth2/v2.0/token|" "$OD/conf"
grep -q '^auth = oauth2' "$OD/conf" || sed -i "s|^\[exchange\]$|[exchange]\nauth = oauth2|" "$OD/conf"
cbo() { $B/calbridge -c "$OD/conf" "$@"; }
tokens() { sim_log | awk -F'\t' '$2 == "token" && $4 == "issued"' | wc -l; }
load put "$OLA" "$SHARED/ccs/ics/OneEvent.ics" ola-one.ics
t0=$(tokens)
cbo sync --once >"$OD/first.out" 2>&1
check "with a token from the endpoint, the event reached Exchange" "$(calendar_items ola@example.org | wc -l)" 1
check "one token for the whole run" "$(( $(tokens) - t0 ))" 1

# The token is revoked (or expires early) under the running service: one
# 401, one new token, the request again; no pause, nothing lost.
cbo_bg() { exec $B/calbridge -c "$OD/conf" "$@"; }
two() { [ "$(calendar_items ola@example.org | wc -l)" = 2 ]; }
calm   # counted below: exactly one 401 (a retried request would add one)
cbo_bg sync >"$OD/daemon.out" 2>&1 &
daemon=$!
sleep 1
sim_control "expiretokens=1"
log_before=$(sim_log | wc -l)
load put "$OLA" "$SHARED/ccs/ics/ThirdEvent.ics" ola-third.ics
for _ in $(seq 100); do two && break; sleep 0.1; done
after_401=$(sim_log | tail -n +$((log_before + 1)) | awk -F'\t' '$4 == "token-expired"' | wc -l | tr -d ' ')$(sim_log | tail -n +$((log_before + 1)) | awk -F'\t' '$2 == "token" && $4 == "issued"' | wc -l | tr -d ' ')
# A stream cut after its token expired reconnects with a fresh token; the
# client does not pause (it did: every stream 401 paused logins a minute).
sim_control "expiretokens=1"
opened=$(sim_log | awk -F'\t' '$4 == "stream-open"' | wc -l)
sim_control "dropstream=1"
for _ in $(seq 150); do
    [ "$(sim_log | awk -F'\t' '$4 == "stream-open"' | wc -l)" -gt "$opened" ] && break
    sleep 0.1
done
check "a stream cut after its token expired is open again" "$([ "$(sim_log | awk -F'\t' '$4 == "stream-open"' | wc -l)" -gt "$opened" ] && echo yes)" yes
kill -TERM $daemon; wait $daemon 2>/dev/null
check "a token refused mid-run: the second event still reached Exchange" "$(calendar_items ola@example.org | wc -l)" 2
check "one 401, then one fresh token" "$after_401" 11
stormy
check "and no pause of the client" "$(grep -c 'credentials were refused' "$OD/daemon.out")" 0

# A wrong client secret: refused at the endpoint, said as it said it, and
# Exchange never sees a request.
printf 'not-the-secret\n' >"$OD/client_secret"
log_before=$(sim_log | wc -l)
cbo sync --once >"$OD/bad.out" 2>&1; rc=$?
check "a refused client secret fails the run" "$([ "$rc" != 0 ] && echo failed)" failed
check "with the endpoint's own words" "$(grep -c 'invalid_client: AADSTS7000215' "$OD/bad.out" | awk '{print ($1 > 0)}')" 1
check "and no EWS request went out" "$(sim_log | tail -n +$((log_before + 1)) | awk -F'\t' '$2 != "token"' | wc -l)" 0
