#!/bin/sh
# Integration tests: a real PostgreSQL, the EWS simulator, calbridge.
set -u
cd "$(dirname "$0")/../.."
. tests/it/lib.sh
if [ ! -f "$SCHEMA" ] || [ ! -f "$XSD" ]; then
    echo "SKIP integration tests: $SHARED (CalendarServer schema, EWS schemas) is absent"
    exit 0
fi
it_setup
trap it_cleanup EXIT INT TERM
# IT_CHAOS=N: every test against a simulator where N per mille of requests
# meet a fault Exchange sends under load, and ChangeKeys change by
# themselves (ewssim's chaos knob; make it-chaos).
if [ -n "${IT_CHAOS:-}" ]; then
    sim_control "chaos=$IT_CHAOS&seed=${IT_SEED:-1}"
    echo "# chaos: $IT_CHAOS per mille of requests meet a fault (seed ${IT_SEED:-1})"
fi
# IT_ONLY=pattern runs only the matching tests (while working on one).
for t in tests/it/t_*${IT_ONLY:-}*.sh; do
    echo "# $(basename "$t")"
    . "$t"
done
if [ "$FAILS" -ne 0 ]; then echo "integration tests: $FAILS failed"; exit 1; fi
echo "integration tests: all passed"
