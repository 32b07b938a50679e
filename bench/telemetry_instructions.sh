#!/usr/bin/env bash
# Benchmark (not a test) of what telemetry costs per request, in instructions: the hello app in
# one Apache process (`apache2 -X`) under valgrind's callgrind, telemetry off and on (with a
# receiver, as bench/telemetry.sh), each serving N1 and then N2 requests; the instructions per
# request are (I(N2) - I(N1)) / (N2 - N1), so start-up and shutdown cancel out. Instruction
# counts do not move with other tenants' load, where req/s on this shared 2-core machine moves
# by +-30% between rounds (bench/telemetry.sh). About 3 minutes.
#
# Environment: BENCH_N1=300, BENCH_N2=1300 (requests), BENCH_SKIP_BUILD=1.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
N1=${BENCH_N1:-300}
N2=${BENCH_N2:-1300}
THREADS=4

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

require_packages apache2 valgrind curl
build_module

[ "$N2" -gt "$N1" ] || die "BENCH_N2 ($N2) must be more than BENCH_N1 ($N1)"

DIRS=()
PIDS=()
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  cleanup
}
trap stop_all EXIT

TELEMETRY=$'WSGITelemetryService unix:@DIR@/telemetry.sock interval=1\nWSGISlowRequests 5'
log "telemetry off: $N1 and $N2 requests under callgrind"
instructions "$OUR_MODULE" "" "$N1"; OFF1=$IR_ALL HOFF1=$IR_HANDLER
instructions "$OUR_MODULE" "" "$N2"; OFF2=$IR_ALL HOFF2=$IR_HANDLER
log "telemetry on: $N1 and $N2 requests under callgrind"
instructions "$OUR_MODULE" "$TELEMETRY" "$N1"; ON1=$IR_ALL HON1=$IR_HANDLER
instructions "$OUR_MODULE" "$TELEMETRY" "$N2"; ON2=$IR_ALL HON2=$IR_HANDLER
echo
echo "hello-world in one apache2 -X process under callgrind, instructions per request ((I($N2) - I($N1)) / $((N2 - N1)))"
awk -v a1="$OFF1" -v a2="$OFF2" -v b1="$ON1" -v b2="$ON2" -v h1="$HOFF1" -v h2="$HOFF2" -v k1="$HON1" -v k2="$HON2" -v n="$((N2 - N1))" 'BEGIN {
  off = (a2 - a1) / n; on = (b2 - b1) / n; hoff = (h2 - h1) / n; hon = (k2 - k1) / n
  printf "%-44s %10s %10s\n", "", "off", "on"
  printf "%-44s %10.0f %10.0f\n", "whole process (reporter thread included)", off, on
  printf "%-44s %10.0f %10.0f\n", "request handler (inclusive)", hoff, hon
  printf "telemetry adds %.0f instructions per request in the handler (%.1f%% of the process'"'"'s %.0f):\n", hon - hoff, (hon - hoff) * 100 / off, off
  printf "req/s on / off at equal cost per instruction: %.3f (target >= 0.97; whole process: %.3f)\n", off / (off + hon - hoff), off / on
}'
