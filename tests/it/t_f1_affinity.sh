# Streaming for many mailboxes as Microsoft documents it ("Maintain
# affinity between a group of subscriptions and the Mailbox server"): the
# simulator has two sites with two mailbox servers each, and a request
# without the X-BackEndOverrideCookie reaches either server of its anchor's
# site. calbridge groups people by Autodiscover's GroupingInformation,
# subscribes each group through its anchor with the cookie, opens one
# connection per group, keeps its subscriptions across a restart, and
# catches up after ErrorMissedNotificationEvents without re-subscribing.
AF_PEOPLE=""
for i in 1 2 3 4 5 6 7 8 9 10; do
    AF_PEOPLE="$AF_PEOPLE f1000000-0000-0000-0000-0000000000$(printf %02d $i),f1p$i@example.org,1,user"
done
# shellcheck disable=SC2086
AF=$(it_subenv affinity $AF_PEOPLE)
streams_only "$AF/conf"
cba() { $B/calbridge -c "$AF/conf" "$@"; }
for p in $AF_PEOPLE; do load home "${p%%,*}" >/dev/null; done
cba sync --once >/dev/null 2>&1
for p in $AF_PEOPLE; do cba cutover --person "${p%%,*}" >/dev/null 2>&1; done
sim_control "heartbeat=300&minute=2500"
af_uid() { echo "f1000000-0000-0000-0000-0000000000$(printf %02d "$1")"; }
af_in_apple() { apple_summaries "$(af_uid "$1")" | grep -q "	$2\$"; }
since() { sim_log | tail -n +$(($1 + 1)); }
count() { since "$1" | awk -F'\t' -v op="$2" -v out="$3" '$2 == op && $4 == out' | wc -l; }
af_wait() {   # af_wait SECONDS COMMAND...
    n=$(($1 * 10)); shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
    return 1
}
af_streams() { [ "$(count "$1" GetStreamingEvents stream-open)" -ge "$2" ]; }

af_start() {   # af_start OUT: the service, once both groups' streams are open
    mark=$(sim_log | wc -l)
    $B/calbridge -c "$AF/conf" sync >"$AF/$1" 2>&1 &
    daemon=$!
    af_wait 15 af_streams "$mark" 2 || not_ok "no GetStreamingEvents connections were opened ($1)"
    sleep 2
}
af_start run1.out
check "Autodiscover asked where each mailbox lives" "$(count "$mark" GetUserSettings ok)" 10
check "its answer put them on two sites" "$(since "$mark" | awk -F'\t' '$2 == "GetUserSettings" {print $6}' | sort -u | wc -l)" 2
check "each mailbox subscribed once" "$(count "$mark" Subscribe ok)" 10
check "each group's subscriptions on one server, one per group" "$(since "$mark" | awk -F'\t' '$2 == "Subscribe" && $4 == "ok" {print $6}' | sort -u | wc -l)" 2
check "the connections went to those servers" "$(since "$mark" | awk -F'\t' '$2 == "Subscribe" && $4 == "ok" {print $6}' | sort -u | tr '\n' ' ')" "$(since "$mark" | awk -F'\t' '$4 == "stream-open" {print $6}' | sort -u | tr '\n' ' ')"
check "no subscription was missing on its connection" "$(count "$mark" GetStreamingEvents subscription-not-found)" 0
check "one connection per group: no churn" "$(count "$mark" GetStreamingEvents stream-open)" 2
ews_create f1p2@example.org "Affine A" 2030-07-01T09:00:00Z 2030-07-01T10:00:00Z >/dev/null
ews_create f1p9@example.org "Affine B" 2030-07-01T09:00:00Z 2030-07-01T10:00:00Z >/dev/null
af_wait 10 af_in_apple 2 "Affine A" && af_wait 10 af_in_apple 9 "Affine B" &&
    ok "a change in each group came in through the stream" || not_ok "a streamed change did not reach Apple"

subs=$(count "$mark" Subscribe ok)
sim_control "missed=1"
ews_create f1p4@example.org "Missed" 2030-07-02T09:00:00Z 2030-07-02T10:00:00Z >/dev/null
af_wait 10 af_in_apple 4 "Missed" && ok "ErrorMissedNotificationEvents: the person was read again" ||
    not_ok "the missed change never reached Apple"
check "Exchange did lose that notification" "$(count "$mark" GetStreamingEvents stream-missed)" 1
check "and nobody was subscribed again for it" "$(count "$mark" Subscribe ok)" "$subs"

kill -TERM $daemon
wait $daemon 2>/dev/null
af_start run2.out
check "a restart subscribes nobody anew (EWSMaxSubscriptions)" "$(count "$mark" Subscribe ok)" 0
ews_create f1p7@example.org "After restart" 2030-07-03T09:00:00Z 2030-07-03T10:00:00Z >/dev/null
af_wait 10 af_in_apple 7 "After restart" && ok "the kept subscriptions still deliver" ||
    not_ok "no notification after the restart"
kill -TERM $daemon
wait $daemon 2>/dev/null
grep -q "streams: 2 groups, 0 subscribed (10 kept from the last run" "$AF/run2.out" &&
    ok "the service says what it kept" || { not_ok "no stream summary"; tail -3 "$AF/run2.out"; }
grep -q "cycle stopped" "$AF/run1.out" "$AF/run2.out" && not_ok "a cycle failed"
sim_control "heartbeat=5000&minute=60000"
