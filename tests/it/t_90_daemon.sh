# `calbridge sync` keeps running and carries a later change within seconds,
# then stops cleanly on SIGTERM.
cb_bg sync >"$WORK/daemon.out" 2>&1 &
daemon=$!
sleep 1
load put "$ALICE" "$SHARED/ccs/ics/OneEvent.ics" live.ics
seen=no
# Under injected faults (IT_CHAOS) a back-off may come first: 20 s then.
for _ in $(seq "$([ -n "${IT_CHAOS:-}" ] && echo 200 || echo 50)"); do
    calendar_items alice@example.org | grep -q '/live.ics' && { seen=yes; break; }
    sleep 0.1
done
check "the running service carried a new event within seconds" "$seen" yes
kill -TERM $daemon
for _ in $(seq 50); do kill -0 $daemon 2>/dev/null || break; sleep 0.1; done
check "it stopped on SIGTERM" "$(kill -0 $daemon 2>/dev/null && echo running || echo stopped)" stopped
wait $daemon 2>/dev/null

# A stop in the middle of a long cycle (a big initial sync while Exchange
# asks to back off) does not wait for it: the service ends within seconds,
# and the next run finishes the work, nothing doubled.
DAN=10000000-0000-0000-0000-0000000000d9
DT=$(it_subenv daemonstop "$DAN,dan@example.org,1,user")
load bulk "$DAN" 1500 stop >/dev/null
calm   # its own faults only: a cycle cut short by another would end in the grace
sim_control "busy=100&backoff=500"
$B/calbridge -c "$DT/conf" sync >"$DT/out" 2>&1 &
daemon=$!
sleep 2
kill -TERM $daemon
for _ in $(seq 100); do kill -0 $daemon 2>/dev/null || break; sleep 0.1; done
check "stopped mid-cycle within 10 s of SIGTERM" "$(kill -0 $daemon 2>/dev/null && echo running || echo stopped)" stopped
wait $daemon
check "and said so, exit 0" "$?$(grep -c 'stopping in the middle of a cycle' "$DT/out")" 01
sim_control "busy=0"
stormy
$B/calbridge -c "$DT/conf" sync --once >/dev/null 2>&1
check "the next run carried all of it" "$(calendar_items dan@example.org | wc -l)" 1500
check "nothing doubled" "$(calendar_items dan@example.org | cut -f5 | sort | uniq -d | wc -l)" 0
