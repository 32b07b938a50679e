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

need=()
[ -x "$HTTPD" ] || need+=(apache2)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
command -v curl >/dev/null 2>&1 || need+=(curl)
install_packages "${need[@]}"
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

# instructions EXTRA N: sets IR_ALL and IR_HANDLER to the instructions callgrind counted for an
# `apache2 -X` that served exactly N hello requests (one keep-alive connection) with EXTRA
# configuration (@DIR@: its directory): the whole process's, and those of the request handler
# (inclusive; the reporter thread's work goes with time, which valgrind stretches some
# 50-fold, so the handler's is the per-request cost). Runs in this shell (no subshell), so
# that a failure stops the script and the EXIT trap stops what it started.
instructions() {
  local extra=$1 n=$2 out dir port pid receiver="" args=()
  out=$(make_hello_server bench-telemetry-ir "$OUR_MODULE" "$extra")
  read -r dir port <<<"$out"
  DIRS+=("$dir")
  # Apache's process runs as nobody when started as root, and callgrind writes its file at
  # the end as that user: a file it may open, made now (an existing file keeps its mode).
  : >"$dir/callgrind.out"
  chmod 666 "$dir/callgrind.out"
  if [[ $extra == *WSGITelemetryService* ]]; then
    "$PY" -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
while True: s.recv(65536)' "$dir/telemetry.sock" >/dev/null 2>&1 &
    receiver=$!
    PIDS+=("$receiver")
  fi
  valgrind --tool=callgrind --vgdb=no --callgrind-out-file="$dir/callgrind.out" --trace-children=no \
    "$HTTPD" -X -f "$dir/httpd.conf" >/dev/null 2>"$dir/valgrind.log" &
  pid=$!
  PIDS+=("$pid")
  # Ready when it accepts connections: no HTTP request before the N counted ones.
  for _ in $(seq 600); do
    "$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$port" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/valgrind.log" "$dir/error.log" >&2 2>/dev/null; die "apache2 -X under callgrind exited ($dir)"; }
    sleep 0.1
  done
  for _ in $(seq "$n"); do args+=(-o /dev/null "http://127.0.0.1:$port/hello"); done
  curl -sf "${args[@]}" || die "a request failed ($dir/error.log)"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  if [ -n "$receiver" ]; then kill "$receiver" 2>/dev/null || true; wait "$receiver" 2>/dev/null || true; fi
  IR_ALL=$(grep -o 'summary: [0-9]*' "$dir/callgrind.out" | awk '{ s += $2 } END { print s + 0 }')
  IR_HANDLER=$(callgrind_annotate --inclusive=yes "$dir/callgrind.out" 2>/dev/null \
    | awk '/:mod_wsgi::module::handler::handler / { gsub(",", "", $1); if ($1 > m) m = $1 } END { print m + 0 }')
  [ "$IR_ALL" -gt 0 ] && [ "$IR_HANDLER" -gt 0 ] || die "no instruction counts in $dir/callgrind.out (BENCH_KEEP=1 keeps it)"
}

TELEMETRY=$'WSGITelemetryService unix:@DIR@/telemetry.sock interval=1\nWSGISlowRequests 5'
log "telemetry off: $N1 and $N2 requests under callgrind"
instructions "" "$N1"; OFF1=$IR_ALL HOFF1=$IR_HANDLER
instructions "" "$N2"; OFF2=$IR_ALL HOFF2=$IR_HANDLER
log "telemetry on: $N1 and $N2 requests under callgrind"
instructions "$TELEMETRY" "$N1"; ON1=$IR_ALL HON1=$IR_HANDLER
instructions "$TELEMETRY" "$N2"; ON2=$IR_ALL HON2=$IR_HANDLER
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
