# After each batch it writes into CalendarServer, calbridge tells it, so
# that Apple clients hear now rather than at their next poll (up to ~45
# minutes with its PROPFIND cache) and push reaches their devices
# (ccs-write-path.md 2-3): a PROPPATCH per calendar through CalendarServer
# (here tests/caldavsim.py, which answers as it does), or, without CalDAV
# access, CalendarServer's own push jobs queued in its database.
NINA=e0000000-0000-0000-0000-000000000001
OSCAR=e0000000-0000-0000-0000-000000000002
NT=$(it_subenv notify "$NINA,nina@example.org,1,user" "$OSCAR,oscar@example.org,1,user")
printf 'admin-secret\n' >"$NT/caldav.secret"
chmod 600 "$NT/caldav.secret"
python3 tests/caldavsim.py 0 "$NT/caldav.log" calbridge-admin:admin-secret --dsn "$DSN" --fail 1 \
    >"$NT/caldav.port" 2>"$NT/caldav.err" &
CALDAV_PID=$!
for _ in $(seq 50); do [ -s "$NT/caldav.port" ] && break; sleep 0.1; done
cp "$NT/conf" "$NT/conf.queue"
cat >>"$NT/conf" <<CONF
[apple]
caldav_url = http://127.0.0.1:$(cat "$NT/caldav.port")
caldav_user = calbridge-admin
caldav_password_file = $NT/caldav.secret
CONF
cat >>"$NT/conf.queue" <<CONF
[apple]
notify = queue
server_hostname = calendar.example.org
CONF
cbn() { $B/calbridge -c "$NT/conf" "$@"; }
load home "$NINA" >/dev/null
load home "$OSCAR" >/dev/null
cbn sync --once >/dev/null 2>&1
cbn cutover --person "$NINA" >/dev/null 2>&1
cbn cutover --person "$OSCAR" >/dev/null 2>&1
: >"$NT/caldav.log"
told() { grep -c "^$1 PROPPATCH /calendars/__uids__/$2/calendar/ {urn:x-calbridge:}mirrored\$" "$NT/caldav.log"; }

# Two people, two batches in one pass; CalendarServer refuses the first
# PROPPATCH (503, restarting): the next batch tells it of both.
ews_create nina@example.org "Told late" 2030-06-01T09:00:00Z 2030-06-01T10:00:00Z >/dev/null
ews_create oscar@example.org "Told late" 2030-06-02T09:00:00Z 2030-06-02T10:00:00Z >/dev/null
cbn sync --once >/dev/null 2>"$NT/err1"
check "CalendarServer away: the writes are committed all the same" "$(sql "SELECT count(*) FROM CALENDAR_OBJECT WHERE ICALENDAR_TEXT LIKE '%SUMMARY:Told late%'" | tr -d ' ')" 2
check "one PROPPATCH refused, naming one of their calendars" "$(( $(told 503 "$NINA") + $(told 503 "$OSCAR") ))" 1
check "the missed news reported, once" "$(grep -c "CalendarServer not told of the change to .*'s calendar calendar (PROPPATCH: HTTP 503)" "$NT/err1")" 1
check "the next batch told it of both calendars" "$(told 207 "$NINA")$(told 207 "$OSCAR")" 11
check "CalendarServer bumped the calendar's MODIFIED (its notifyChanged)" "$(sql "SELECT count(*) FROM CALENDAR_METADATA m JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = m.RESOURCE_ID JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID WHERE h.OWNER_UID = '$OSCAR' AND b.CALENDAR_RESOURCE_NAME = 'calendar' AND m.MODIFIED > m.CREATED" | tr -d ' ')" 1
kill "$CALDAV_PID" 2>/dev/null
wait "$CALDAV_PID" 2>/dev/null

# Without CalDAV access: CalendarServer's own push jobs, as its notifier
# queues them (both schema versions' JOB tables take them).
ews_create nina@example.org "Pushed" 2030-06-03T09:00:00Z 2030-06-03T10:00:00Z >/dev/null
$B/calbridge -c "$NT/conf.queue" sync --once >/dev/null 2>&1
check "push queued for Nina's calendar and her home" "$(sql "SELECT string_agg(w.PUSH_ID || ' ' || w.PUSH_PRIORITY || ' ' || j.PRIORITY || ' ' || j.WEIGHT || ' ' || j.WORK_TYPE, ',' ORDER BY w.PUSH_ID) FROM PUSH_NOTIFICATION_WORK w JOIN JOB j ON j.JOB_ID = w.JOB_ID WHERE w.PUSH_ID LIKE '%$NINA%'" | sed 's/^ *//')" "/CalDAV/calendar.example.org/$NINA/ 10 2 1 PUSH_NOTIFICATION_WORK,/CalDAV/calendar.example.org/$NINA/calendar/ 10 2 1 PUSH_NOTIFICATION_WORK"
check "due within seconds, as its notifier's coalescing has it" "$(sql "SELECT bool_and(NOT_BEFORE BETWEEN timezone('UTC', now()) - interval '1 minute' AND timezone('UTC', now()) + interval '10 seconds') FROM JOB WHERE WORK_TYPE = 'PUSH_NOTIFICATION_WORK'" | tr -d ' ')" t
