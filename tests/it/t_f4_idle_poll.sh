# An idle poll is one round trip: one prepared statement that reads the
# changes and the snapshot that decides the cursor (issue 16), where it was
# BEGIN, the snapshot, the query and ROLLBACK, each planned again. Seen
# from PostgreSQL's side: this configuration's sessions log every statement
# (log_statement, which the tests' superuser may set for its own session),
# and nothing else does.
IDU=f4000000-0000-0000-0000-000000000001
ID=$(it_subenv idle "$IDU,ida@example.org,1,user")
sed -i "s|^dsn = .*|dsn = $DSN options='-c log_statement=all'|" "$ID/conf"
load put "$IDU" "$SHARED/ccs/ics/OneEvent.ics" ida-one.ics
PGLOG=$WORK/pg/sock/server.log
statements() { tail -n +"$1" "$PGLOG" | grep -E 'LOG:  (statement|execute)'; }
$B/calbridge -c "$ID/conf" sync >"$ID/out" 2>&1 &
idle=$!
for _ in $(seq 100); do calendar_items ida@example.org | grep -q . && break; sleep 0.1; done
sleep 1   # the first cycle's own reads and writes are done
mark=$(($(wc -l <"$PGLOG") + 1))
for _ in $(seq 150); do   # 5 polls at 200 ms, or a cycle's other work first
    [ "$(statements "$mark" | grep -c 'execute calbridge_poll')" -ge 5 ] && break
    sleep 0.1
done
statements "$mark" >"$ID/idle.sql"
polls=$(grep -c 'execute calbridge_poll' "$ID/idle.sql")
check "idle polls ran" "$((polls >= 5))" 1
[ "$polls" -ge 5 ] || tail -20 "$ID/out"
check "each of them one prepared statement, and nothing else was sent" "$(grep -vc 'execute calbridge_poll' "$ID/idle.sql")" 0
# And a change still arrives through it.
load put "$IDU" "$SHARED/ccs/ics/AnotherEvent.ics" ida-another.ics
for _ in $(seq 100); do [ "$(calendar_items ida@example.org | wc -l)" = 2 ] && break; sleep 0.1; done
check "a change made meanwhile is carried" "$(calendar_items ida@example.org | wc -l)" 2
kill -TERM $idle
wait $idle 2>/dev/null
