# Streaming notifications drive the Exchange -> Apple mirror: with the
# periodic resync set to an hour, only the stream can bring a change in.
# Dropped streams, expired subscriptions and invalid sync states each
# converge with nothing lost and nothing doubled.
[ "$(authority_of alice@example.org)" = exchange ] ||
    cb cutover --person "$ALICE" >/dev/null
streams_only "$WORK/calbridge.conf"
sim_control "heartbeat=300&minute=2500"
cb_bg sync >"$WORK/stream.out" 2>&1 &
daemon=$!
wait_for() {   # wait_for SECONDS COMMAND...: 0 once COMMAND succeeds
    n=$(($1 * 10)); shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
    return 1
}
in_apple() { apple_summaries "$ALICE" | grep -q "	$1\$"; }
streams_open() { [ "$(sim_log | awk -F'\t' '$4 == "stream-open"' | wc -l)" -ge "$1" ]; }
wait_for 10 streams_open 1 || not_ok "no GetStreamingEvents connection was opened"
sleep 1
ews_create alice@example.org "Streamed 1" 2030-02-04T09:00:00Z 2030-02-04T10:00:00Z >/dev/null
wait_for 10 in_apple "Streamed 1" && ok "a notification brought an Exchange change into Apple" || not_ok "Streamed 1 never reached Apple"
check "notifications came as stream data" "$(sim_log | awk -F'\t' '$4 == "stream-data"' | wc -l | awk '{print ($1 > 0)}')" 1

opened=$(sim_log | awk -F'\t' '$4 == "stream-open"' | wc -l)
sim_control "dropstream=1"
wait_for 10 streams_open $((opened + 1)) && ok "a stream cut mid-envelope was re-opened" || not_ok "no reconnect after a dropped stream"
ews_create alice@example.org "Streamed 2" 2030-02-05T09:00:00Z 2030-02-05T10:00:00Z >/dev/null
wait_for 10 in_apple "Streamed 2" && ok "changes flow after the drop" || not_ok "Streamed 2 never reached Apple"

subs=$(sim_log | awk -F'\t' '$2 == "Subscribe"' | wc -l)
sim_control "expire=1"
ews_create alice@example.org "Streamed 3" 2030-02-06T09:00:00Z 2030-02-06T10:00:00Z >/dev/null
wait_for 10 in_apple "Streamed 3" && ok "an expired subscription was renewed and the change caught up" || not_ok "Streamed 3 never reached Apple"
check "the expired subscriptions were subscribed again" "$(sim_log | awk -F'\t' '$2 == "Subscribe"' | wc -l | awk -v b="$subs" '{print ($1 > b)}')" 1

sim_control "badsync=1"
ews_create alice@example.org "Streamed 4" 2030-02-07T09:00:00Z 2030-02-07T10:00:00Z >/dev/null
wait_for 10 in_apple "Streamed 4" && ok "an invalid sync state led to a full resync" || not_ok "Streamed 4 never reached Apple"
check "Exchange did refuse a stored sync state" "$(sim_log | awk -F'\t' '$2 == "SyncFolderItems" && $4 == "item-error"' | wc -l | awk '{print ($1 > 0)}')" 1
check "nothing doubled in Apple" "$(apple_summaries "$ALICE" | cut -f2 | grep '^Streamed' | sort | uniq -d | wc -l)" 0
check "each streamed item once" "$(apple_summaries "$ALICE" | cut -f2 | grep -c '^Streamed')" 4

closed=$(sim_log | awk -F'\t' '$4 == "stream-closed"' | wc -l)
check "ConnectionStatus Closed ended connections, and they were re-opened" "$([ "$closed" -ge 1 ] && streams_open $((closed + 1)) && echo yes)" yes
kill -TERM $daemon
wait_for 5 sh -c "! kill -0 $daemon 2>/dev/null" && ok "the service stopped on SIGTERM with streams open" || not_ok "the service did not stop"
wait $daemon 2>/dev/null
grep -q "cycle stopped" "$WORK/stream.out" && { not_ok "a cycle failed"; cat "$WORK/stream.out"; }
sed -i '/^\[coexistence\]/,$d' "$WORK/calbridge.conf"
