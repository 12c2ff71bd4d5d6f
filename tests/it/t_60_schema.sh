# The simulator is held to the official schema: a request with two
# elements swapped is refused the way Exchange refuses it.
bad=$SHARED/ews/schema/examples/createitem-calendaritem-bad-order.xml
code=$(curl -s -o "$WORK/bad.out" -w '%{http_code}' -u svc:secret --data-binary @"$bad" "$SIM/EWS/Exchange.asmx")
check "schema violation answered with HTTP 500" "$code" 500
grep -q "a:ErrorSchemaValidation" "$WORK/bad.out" && ok "fault is ErrorSchemaValidation" || not_ok "no ErrorSchemaValidation fault"
code=$(curl -s -o /dev/null -w '%{http_code}' -u svc:wrong --data-binary @"$bad" "$SIM/EWS/Exchange.asmx")
check "wrong password refused" "$code" 401
