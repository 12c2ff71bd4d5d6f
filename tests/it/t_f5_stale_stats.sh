# A home loaded after PostgreSQL last analysed the tables (a wave's people
# imported into CalendarServer, or a copy of its database restored) is
# scanned in work that follows its size: the statistics say the home is
# empty, and a join planned from them looped over a revisions index once per
# object, filtering the whole calendar each time (issue 16: 25 M rows read
# for 5,000 objects). Counted by PostgreSQL itself: the revision rows it
# fetched for the first sync.
SSU=f5000000-0000-0000-0000-000000000001
SS=$(it_subenv stale "$SSU,sten@example.org,1,user")
sql "ANALYZE" >/dev/null   # the statistics of before the load
load bulk "$SSU" 2000 stale >/dev/null
revs_read() {
    sql "SELECT COALESCE(idx_tup_fetch, 0) + COALESCE(seq_tup_read, 0) FROM pg_stat_user_tables
          WHERE relname = 'calendar_object_revisions'"
}
before=$(revs_read)
$B/calbridge -c "$SS/conf" sync --once >"$SS/out" 2>&1
sleep 1   # the server publishes a finished session's counters
read=$(( $(revs_read) - before ))
echo "    (the first sync of 2,000 events read $read revision rows)"
check "the first sync read each revision row about once" "$((read <= 3 * 2000))" 1
check "and carried the home" "$(calendar_items sten@example.org | wc -l)" 2000
$B/calbridge -c "$SS/conf" status --plan >"$SS/plan"
sed -n '/^rescan plan/,$p' "$SS/plan" >"$SS/rescan"
grep -qi "calendar_home_resource_id = ANY" "$SS/rescan" &&
    ok "status --plan shows the rescan reading revisions by home" ||
    { not_ok "rescan plan does not read by home"; cat "$SS/plan"; }
