#!/bin/sh
# make bench: initial-sync throughput of 2,000 events against the simulator,
# and translation throughput, measured in one run on this machine.
set -u
cd "$(dirname "$0")/.."
. tests/it/lib.sh
[ -f "$SCHEMA" ] || { echo "bench: needs ../shared"; exit 1; }
it_setup
trap it_cleanup EXIT INT TERM
load bulk "$BOB" 2000 bench >/dev/null
t0=$(date +%s.%N); cb sync --once >/dev/null; t1=$(date +%s.%N)
t2=$(date +%s.%N)
for i in $(seq 200); do cb translate "$SHARED/ccs/ics/OneEvent.ics" >/dev/null; done
t3=$(date +%s.%N)
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
awk -v a="$t0" -v b="$t1" 'BEGIN {printf "initial sync: 2000 events in %.2f s = %.0f events/s (batch 10, simulator on loopback)\n", b - a, 2000 / (b - a)}'
awk -v a="$t2" -v b="$t3" 'BEGIN {printf "translate (whole process, incl. CLDR load): %.1f ms per file\n", (b - a) * 1000 / 200}'
