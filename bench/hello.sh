#!/usr/bin/env bash
# Benchmark (not a test): hello-world requests/sec through
#   (a) mod_wsgi-rs (target/modules/mod_wsgi.so),
#   (b) Debian's mod_wsgi (libapache2-mod-wsgi-py3, /usr/lib/apache2/modules/mod_wsgi.so),
#   (c) a 13-byte static file served by the same Apache as (a).
# Two Apache servers run side by side (the two modules share the name wsgi_module), each with one
# child process and a fixed thread count; they are measured alternately, one at a time
# (BENCH_ROUNDS rounds of a -> b -> c after a warm-up), and the medians are printed.
#
# Environment:
#   BENCH_THREADS=16        ThreadsPerChild / ThreadLimit / MaxRequestWorkers
#   BENCH_CONNECTIONS=16    wrk -c
#   BENCH_DURATION=5s       wrk -d per measurement
#   BENCH_ROUNDS=3          rounds of a -> b -> c
#   BENCH_WARMUP=2s         wrk -d of the warm-up run against each URL
#   BENCH_SKIP_BUILD=1      do not run scripts/build first
#   BENCH_KEEP=1            keep the temp dirs (configs, error logs) after the run
#   BENCH_OURS_DIRECTIVES   extra directives for our server (e.g. "WSGIPythonConcurrency auto")
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
THREADS=${BENCH_THREADS:-16}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
DURATION=${BENCH_DURATION:-5s}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2s}
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
DEBIAN_MODULE=$MODULES/mod_wsgi.so
EXPECTED=$'Hello World!\n'

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

# --- prerequisites ---------------------------------------------------------------------------
require_packages apache2 wrk libapache2-mod-wsgi-py3 curl
[ -x "$PY" ] || die "$PY not found"

build_module

DEBIAN_VERSION=$(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null | sed 's/-.*//' || true)
DEBIAN_LABEL="Debian mod_wsgi ${DEBIAN_VERSION:-?}"

# --- servers ---------------------------------------------------------------------------------
DIRS=()
trap cleanup EXIT

check_body() {
  local url=$1 body
  body=$(curl -s --max-time 5 "$url"; echo x)   # keep the trailing newline
  body=${body%x}
  [ "$body" = "$EXPECTED" ] || die "unexpected body from $url: $(printf %q "$body")"
}

out=$(make_hello_server bench-hello "$OUR_MODULE" "${BENCH_OURS_DIRECTIVES:-}");    read -r DIR_A PORT_A <<<"$out"; DIRS+=("$DIR_A")
out=$(make_hello_server bench-hello "$DEBIAN_MODULE"); read -r DIR_B PORT_B <<<"$out"; DIRS+=("$DIR_B")
URL_A=http://127.0.0.1:$PORT_A/hello
URL_B=http://127.0.0.1:$PORT_B/hello
URL_C=http://127.0.0.1:$PORT_A/static/hello.txt

log "starting servers (ours: $DIR_A, Debian: $DIR_B)"
start_server "$DIR_A" "$URL_A"
start_server "$DIR_B" "$URL_B"
for u in "$URL_A" "$URL_B" "$URL_C"; do check_body "$u"; done

# --- measuring -------------------------------------------------------------------------------
WRK_LOG=$DIR_A/wrk.log
NAMES=(ours debian static)
URLS=("$URL_A" "$URL_B" "$URL_C")
declare -A RPS P99

log "warm-up ($WARMUP each)"
for i in 0 1 2; do run_wrk "${URLS[$i]}" "$WARMUP" >/dev/null; done

for r in $(seq "$ROUNDS"); do
  for i in 0 1 2; do
    out=$(run_wrk "${URLS[$i]}" "$DURATION")
    read -r rps p99 errs _ <<<"$out"
    RPS[${NAMES[$i]}]+="$rps "
    P99[${NAMES[$i]}]+="$p99 "
    log "round $r/$ROUNDS ${NAMES[$i]}: $rps req/s, p99 $p99 ms, socket errors $errs"
  done
done

# shellcheck disable=SC2086
{
  M_RPS_A=$(median ${RPS[ours]});   M_P99_A=$(median ${P99[ours]})
  M_RPS_B=$(median ${RPS[debian]}); M_P99_B=$(median ${P99[debian]})
  M_RPS_C=$(median ${RPS[static]}); M_P99_C=$(median ${P99[static]})
}

# --- error logs ------------------------------------------------------------------------------
# AH00484 ("server reached MaxRequestWorkers") is expected with -c >= threads and is not shown.
for d in "$DIR_A" "$DIR_B"; do
  errs=$(grep -iE 'traceback|error' "$d/error.log" 2>/dev/null | grep -v AH00484 || true)
  if [ -n "$errs" ]; then
    log "note: $d/error.log mentions errors:"
    printf '%s\n' "$errs" | head -10 >&2
  fi
done

# --- report ----------------------------------------------------------------------------------
echo
echo "hello-world, 1 child x $THREADS threads, wrk -t2 -c$CONNECTIONS, $ROUNDS rounds of $DURATION (medians)"
awk -v a="$M_RPS_A" -v ap="$M_P99_A" -v b="$M_RPS_B" -v bp="$M_P99_B" \
    -v c="$M_RPS_C" -v cp="$M_P99_C" -v bl="$DEBIAN_LABEL" 'BEGIN {
  printf "%-24s%10s  %8s\n", "", "req/s", "p99 ms"
  printf "%-24s%10.1f  %8.2f\n", "mod_wsgi-rs", a, ap
  printf "%-24s%10.1f  %8.2f\n", bl, b, bp
  printf "%-24s%10.1f  %8.2f\n", "static file", c, cp
  printf "ratio ours / mod_wsgi:   %5.2f\n", (b > 0 ? a / b : 0)
  printf "ratio ours / static:     %5.2f\n", (c > 0 ? a / c : 0)
  printf "ratio mod_wsgi / static: %5.2f\n", (c > 0 ? b / c : 0)
}'
