# A real EWS client (python3-exchangelib) reads alice's calendar from the
# simulator and finds the items calbridge created.
want=$(calendar_items alice@example.org | wc -l)
got=$(/usr/bin/python3 tests/it/exchangelib_view.py "$SIM/EWS/Exchange.asmx" alice@example.org 2>"$WORK/exl.err")
check "exchangelib sees every item calbridge created" "$got" "$want"
[ -s "$WORK/exl.err" ] && sed 's/^/    exchangelib: /' "$WORK/exl.err" | tail -5
