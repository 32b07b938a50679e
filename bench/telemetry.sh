#!/usr/bin/env bash
# Benchmark (not a test): what telemetry costs on hello-world (issue 14's target: >= 0.97).
#   (a) mod_wsgi-rs, no telemetry directive (the status board counts regardless)
#   (b) mod_wsgi-rs with WSGITelemetryService (interval=1) and WSGISlowRequests 5, a receiver
#       draining the datagrams (a Python loop on the Unix socket, as the ingester reads them)
#   (c) Debian's mod_wsgi 4.9, for scale
# Each in its own Apache with one child, measured alternately (BENCH_ROUNDS rounds of
# a -> b -> c after a warm-up); medians printed with the ratio b / a, and the CPU time Apache's
# child spent per request in each (from /proc: steadier than the rate on a shared machine).
#
# Environment: BENCH_THREADS=16, BENCH_CONNECTIONS=16, BENCH_DURATION=5s, BENCH_ROUNDS=3,
# BENCH_WARMUP=2s, BENCH_SKIP_BUILD=1, BENCH_KEEP=1 (as bench/hello.sh).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
THREADS=${BENCH_THREADS:-16}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
DURATION=${BENCH_DURATION:-5s}
ROUNDS=${BENCH_ROUNDS:-3}
[ "$ROUNDS" -ge 1 ] || { echo "bench: BENCH_ROUNDS must be at least 1" >&2; exit 1; }
[[ $DURATION =~ ^[0-9]+s$ ]] || { echo "bench: BENCH_DURATION must be in seconds (e.g. 5s)" >&2; exit 1; }
WARMUP=${BENCH_WARMUP:-2s}
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
DEBIAN_MODULE=$MODULES/mod_wsgi.so

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

require_packages apache2 wrk libapache2-mod-wsgi-py3 curl
build_module

DIRS=()
RECEIVER=""
stop_all() {
  [ -n "$RECEIVER" ] && kill "$RECEIVER" 2>/dev/null || true
  cleanup
}
trap stop_all EXIT

out=$(make_hello_server bench-telemetry "$OUR_MODULE");                 read -r DIR_A PORT_A <<<"$out"; DIRS+=("$DIR_A")
out=$(make_hello_server bench-telemetry "$OUR_MODULE" $'WSGITelemetryService unix:@DIR@/telemetry.sock interval=1\nWSGISlowRequests 5'); read -r DIR_B PORT_B <<<"$out"; DIRS+=("$DIR_B")
out=$(make_hello_server bench-telemetry "$DEBIAN_MODULE");              read -r DIR_C PORT_C <<<"$out"; DIRS+=("$DIR_C")

# The receiver: drains datagrams and counts them (printed at the end).
"$PY" - "$DIR_B/telemetry.sock" "$DIR_B/received" <<'EOF' &
import os, signal, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
n = 0
def stop(*_):
    open(out, "w").write(str(n))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    if s.recv(65536)[:4] == b"WSGI":
        n += 1
EOF
RECEIVER=$!
for _ in $(seq 50); do [ -S "$DIR_B/telemetry.sock" ] && break; sleep 0.1; done

URLS=("http://127.0.0.1:$PORT_A/hello" "http://127.0.0.1:$PORT_B/hello" "http://127.0.0.1:$PORT_C/hello")
NAMES=(off on debian)
start_server "$DIR_A" "${URLS[0]}"
start_server "$DIR_B" "${URLS[1]}"
start_server "$DIR_C" "${URLS[2]}"
WRK_LOG=$DIR_A/wrk.log
declare -A RPS CPU
CHILD_PIDS=("$(child_pid "$(cat "$DIR_A/httpd.pid")")" "$(child_pid "$(cat "$DIR_B/httpd.pid")")" "$(child_pid "$(cat "$DIR_C/httpd.pid")")")
TICK_US=$((1000000 / $(getconf CLK_TCK)))

log "warm-up ($WARMUP each)"
for i in 0 1 2; do run_wrk "${URLS[$i]}" "$WARMUP" >/dev/null; done
for r in $(seq "$ROUNDS"); do
  for i in 0 1 2; do
    before=$(cpu_ticks "${CHILD_PIDS[$i]}")
    read -r rps p99 errs _ <<<"$(run_wrk "${URLS[$i]}" "$DURATION")"
    used=$(( ($(cpu_ticks "${CHILD_PIDS[$i]}") - before) * TICK_US ))
    RPS[${NAMES[$i]}]+="$rps "
    # µs of the child's CPU per request (the rate times the duration is the request count).
    per=$("$PY" -c 'import sys; r, d, u = float(sys.argv[1]), float(sys.argv[2].rstrip("s")), float(sys.argv[3]); print("%.1f" % (u / (r * d)) if r > 0 else 0)' "$rps" "$DURATION" "$used")
    CPU[${NAMES[$i]}]+="$per "
    log "round $r/$ROUNDS ${NAMES[$i]}: $rps req/s, p99 $p99 ms, child CPU $per us/request"
  done
done
kill "$RECEIVER"; wait "$RECEIVER" 2>/dev/null || true; RECEIVER=""
received=$(cat "$DIR_B/received" 2>/dev/null || echo 0)

# shellcheck disable=SC2086
{ OFF=$(median ${RPS[off]}); ON=$(median ${RPS[on]}); DEB=$(median ${RPS[debian]}); }
echo
echo "hello-world, 1 child x $THREADS threads, wrk -t2 -c$CONNECTIONS, $ROUNDS rounds of $DURATION (medians)"
awk -v a="$OFF" -v b="$ON" -v c="$DEB" -v n="$received" 'BEGIN {
  printf "%-34s%10.1f req/s\n", "mod_wsgi-rs, telemetry off", a
  printf "%-34s%10.1f req/s  (%d datagrams received)\n", "mod_wsgi-rs, telemetry on", b, n
  printf "%-34s%10.1f req/s\n", "Debian mod_wsgi 4.9", c
  printf "ratio on / off:  %5.3f (target >= 0.97)\n", (a > 0 ? b / a : 0)
}'
# The same ratio taken within each round (the two measured a few seconds apart, so a change in
# the machine's load hits both): their median is the steadier figure on a busy machine.
# shellcheck disable=SC2086
PAIRED=$("$PY" -c 'import sys, statistics; a, b = sys.argv[1].split(), sys.argv[2].split(); print("%.3f" % statistics.median(float(y) / float(x) for x, y in zip(a, b) if float(x) > 0))' "${RPS[off]}" "${RPS[on]}")
echo "ratio on / off, median of the rounds' own ratios:  $PAIRED"
# shellcheck disable=SC2086
{ COFF=$(median ${CPU[off]}); CON=$(median ${CPU[on]}); CDEB=$(median ${CPU[debian]}); }
awk -v a="$COFF" -v b="$CON" -v c="$CDEB" 'BEGIN {
  printf "Apache child CPU per request (medians): off %.1f us, on %.1f us, Debian %.1f us; on / off %.3f\n", a, b, c, (a > 0 ? b / a : 0)
}'
