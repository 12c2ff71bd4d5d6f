# The simulator is held to the official schema: a request with two
# elements swapped is refused the way Exchange refuses it.
bad=$SHARED/ews/schema/examples/createitem-calendaritem-bad-order.xml
code=$(curl -s -o "$WORK/bad.out" -w '%{http_code}' -u svc:secret --data-binary @"$bad" "$SIM/EWS/Exchange.asmx")
check "schema violation answered with HTTP 500" "$code" 500
grep -q "a:ErrorSchemaValidation" "$WORK/bad.out" && ok "fault is ErrorSchemaValidation" || not_ok "no ErrorSchemaValidation fault"
code=$(curl -s -o /dev/null -w '%{http_code}' -u svc:wrong --data-binary @"$bad" "$SIM/EWS/Exchange.asmx")
check "wrong password refused" "$code" 401

# The schema version is read at start: a CalendarServer calbridge does not
# know is refused before anything is read or written.
v=$(sql "SELECT VALUE FROM CALENDARSERVER WHERE NAME = 'VERSION'")
sql "UPDATE CALENDARSERVER SET VALUE = '99' WHERE NAME = 'VERSION'" >/dev/null
out=$(cb sync --once 2>&1); rc=$?
sql "UPDATE CALENDARSERVER SET VALUE = '$v' WHERE NAME = 'VERSION'" >/dev/null
check "an unknown CalendarServer schema (99) is refused at start" "$rc" 1
check "with the versions calbridge knows" "$(echo "$out" | grep -c 'schema version 99; calbridge knows 58 to 66')" 1
check "the version this suite runs on ($v) is one of them" "$([ "$v" -ge 58 ] && [ "$v" -le 66 ] && echo yes)" yes
