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
trap stop_pids_and_cleanup EXIT

TELEMETRY=$'WSGITelemetryService unix:@DIR@/telemetry.sock interval=1\nWSGISlowRequests 5'
log "telemetry off: $N1 and $N2 requests under callgrind"
instructions_per_request "$OUR_MODULE" ""; OFF=$PER_ALL HOFF=$PER_HANDLER
log "telemetry on: $N1 and $N2 requests under callgrind"
instructions_per_request "$OUR_MODULE" "$TELEMETRY"; ON=$PER_ALL HON=$PER_HANDLER
echo
echo "hello-world in one apache2 -X process under callgrind, instructions per request ((I($N2) - I($N1)) / $((N2 - N1)))"
awk -v off="$OFF" -v on="$ON" -v hoff="$HOFF" -v hon="$HON" 'BEGIN {
  printf "%-44s %10s %10s\n", "", "off", "on"
  printf "%-44s %10.0f %10.0f\n", "whole process (reporter thread included)", off, on
  printf "%-44s %10.0f %10.0f\n", "request handler (inclusive)", hoff, hon
  printf "telemetry adds %.0f instructions per request in the handler (%.1f%% of the process'"'"'s %.0f):\n", hon - hoff, (hon - hoff) * 100 / off, off
  printf "req/s on / off at equal cost per instruction: %.3f (target >= 0.97; whole process: %.3f)\n", off / (off + hon - hoff), off / on
}'
