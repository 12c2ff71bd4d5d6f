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
# IT_ONLY=pattern runs only the matching tests (while working on one).
for t in tests/it/t_*${IT_ONLY:-}*.sh; do
    echo "# $(basename "$t")"
    . "$t"
done
if [ "$FAILS" -ne 0 ]; then echo "integration tests: $FAILS failed"; exit 1; fi
echo "integration tests: all passed"
