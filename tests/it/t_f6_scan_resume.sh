# A first sync streams page by page (1,000 objects each), and the cursor
# says where the scan is: stopped half way (kill -9), the next run goes on
# from there instead of reading the home again, and nothing is doubled.
SRU=f6000000-0000-0000-0000-000000000001
SR=$(it_subenv resume "$SRU,rhea@example.org,1,user")
load bulk "$SRU" 2500 resume >/dev/null
calm   # counts requests exactly
$B/calbridge -c "$SR/conf" sync --once >"$SR/first.out" 2>&1 &
first=$!
# Once the first page is in Exchange, Exchange asks to back off: the sync
# waits there, its first page carried and its cursor stored.
for _ in $(seq 300); do
    [ "$(calendar_items rhea@example.org | wc -l)" -ge 1000 ] && break
    sleep 0.02
done
sim_control "busy=100000&backoff=60000"
cur=""
for _ in $(seq 100); do
    cur=$($B/calbridge -c "$SR/conf" status 2>/dev/null | awk '$1 == "cursor" {print $2}')
    [ "$cur" = scan ] && break
    sleep 0.05
done
kill -9 $first 2>/dev/null
wait $first 2>/dev/null
sim_control "busy=0"
check "the cursor said the scan was under way" "$cur" scan
before=$(calendar_items rhea@example.org | wc -l)
mark=$(sim_log | wc -l)
$B/calbridge -c "$SR/conf" sync --once >"$SR/second.out" 2>&1
stormy
read=$(awk '$1 == "events" && $2 == "read" {print $3}' "$SR/second.out")
echo "    ($before items before the restart; the restart read $read events)"
check "the restart did not read the first page again" "$((read <= 1500))" 1
check "every event is in Exchange" "$(calendar_items rhea@example.org | wc -l)" 2500
check "none doubled" "$(calendar_items rhea@example.org | cut -f5 | sort | uniq -d | wc -l)" 0
check "the cursor is the poll's again" "$($B/calbridge -c "$SR/conf" status | awk '$1 == "cursor" {print ($2 ~ /^[0-9]+$/)}')" 1
