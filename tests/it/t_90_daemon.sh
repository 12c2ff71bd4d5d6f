# `calbridge sync` keeps running and carries a later change within seconds,
# then stops cleanly on SIGTERM.
cb_bg sync >"$WORK/daemon.out" 2>&1 &
daemon=$!
sleep 1
load put "$ALICE" "$SHARED/ccs/ics/OneEvent.ics" live.ics
seen=no
for _ in $(seq 50); do
    calendar_items alice@example.org | grep -q '/live.ics' && { seen=yes; break; }
    sleep 0.1
done
check "the running service carried a new event within 5 s" "$seen" yes
kill -TERM $daemon
for _ in $(seq 50); do kill -0 $daemon 2>/dev/null || break; sleep 0.1; done
check "it stopped on SIGTERM" "$(kill -0 $daemon 2>/dev/null && echo running || echo stopped)" stopped
wait $daemon 2>/dev/null
