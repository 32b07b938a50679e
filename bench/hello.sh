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

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

# --- prerequisites ---------------------------------------------------------------------------
need=()
[ -x "$HTTPD" ] || need+=(apache2)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ -e "$DEBIAN_MODULE" ] || need+=(libapache2-mod-wsgi-py3)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing packages: ${need[*]} (run as root to install them)"
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y "${need[@]}" >&2; then
    apt-get update >&2
    apt-get install -y "${need[@]}" >&2
  fi
fi
[ -x "$PY" ] || die "$PY not found"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building (scripts/build)"
  if ! build_out=$("$REPO/scripts/build" 2>&1); then
    printf '%s\n' "$build_out" >&2
    die "scripts/build failed"
  fi
fi
[ -f "$OUR_MODULE" ] || die "$OUR_MODULE not found (run scripts/build)"

DEBIAN_VERSION=$(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null | sed 's/-.*//' || true)
DEBIAN_LABEL="Debian mod_wsgi ${DEBIAN_VERSION:-?}"

# --- servers ---------------------------------------------------------------------------------
DIRS=()
cleanup() {
  local d pid pids=()
  for d in "${DIRS[@]}"; do
    pid=$(cat "$d/httpd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then pids+=("$pid"); fi
  done
  # Apache SIGKILLs a child that ignores SIGTERM after ~10s (Debian's mod_wsgi needs that long).
  for pid in "${pids[@]}"; do
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "kept ${DIRS[*]}"
  else
    for d in "${DIRS[@]}"; do rm -rf "$d"; done
  fi
}
trap cleanup EXIT

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# make_server MODULE_PATH -> prints "dir port"
make_server() {
  local module=$1 dir port user=""
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-hello.XXXXXX")
  chmod 755 "$dir"
  port=$(free_port)
  [ "$(id -u)" -eq 0 ] && user=$'User nobody\nGroup nogroup'
  cat >"$dir/hello.wsgi" <<'EOF'
def application(environ, start_response):
    body = b"Hello World!\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
EOF
  printf 'Hello World!\n' >"$dir/hello.txt"
  cat >"$dir/httpd.conf" <<EOF
ServerRoot $dir
DefaultRuntimeDir $dir
PidFile $dir/httpd.pid
ErrorLog $dir/error.log
LogLevel warn
Listen 127.0.0.1:$port
ServerName localhost
DocumentRoot $dir
$user
LoadModule mpm_event_module $MODULES/mod_mpm_event.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule alias_module $MODULES/mod_alias.so
LoadModule wsgi_module $module
StartServers 1
ServerLimit 1
ThreadsPerChild $THREADS
ThreadLimit $THREADS
MaxRequestWorkers $THREADS
MinSpareThreads 1
MaxSpareThreads $THREADS
# Unlimited keep-alive requests: otherwise Apache closes each connection after 100 requests and
# wrk reports those closes as socket read errors (same for all three measurements).
KeepAlive On
MaxKeepAliveRequests 0
<Directory $dir>
    Require all granted
</Directory>
WSGIScriptAlias /hello $dir/hello.wsgi
Alias /static/hello.txt $dir/hello.txt
EOF
  chmod 644 "$dir"/*
  echo "$dir $port"
}

start_server() {
  local dir=$1 url=$2 code=""
  "$HTTPD" -f "$dir/httpd.conf" -k start >&2 || { cat "$dir/error.log" >&2 2>/dev/null || true; die "apache2 failed to start ($dir)"; }
  for _ in $(seq 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  echo "--- $dir/error.log ---" >&2
  cat "$dir/error.log" >&2 2>/dev/null || true
  die "no 200 from $url within 20s (last status: ${code:-none})"
}

check_body() {
  local url=$1 body
  body=$(curl -s --max-time 5 "$url"; echo x)   # keep the trailing newline
  body=${body%x}
  [ "$body" = "$EXPECTED" ] || die "unexpected body from $url: $(printf %q "$body")"
}

out=$(make_server "$OUR_MODULE");    read -r DIR_A PORT_A <<<"$out"; DIRS+=("$DIR_A")
out=$(make_server "$DEBIAN_MODULE"); read -r DIR_B PORT_B <<<"$out"; DIRS+=("$DIR_B")
URL_A=http://127.0.0.1:$PORT_A/hello
URL_B=http://127.0.0.1:$PORT_B/hello
URL_C=http://127.0.0.1:$PORT_A/static/hello.txt

log "starting servers (ours: $DIR_A, Debian: $DIR_B)"
start_server "$DIR_A" "$URL_A"
start_server "$DIR_B" "$URL_B"
for u in "$URL_A" "$URL_B" "$URL_C"; do check_body "$u"; done

# --- measuring -------------------------------------------------------------------------------
# run_wrk URL DURATION -> prints "req_per_sec p99_ms socket_errors"
# Socket read errors are expected when connections >= threads: the event MPM closes idle
# keep-alive connections while all worker threads are busy.
run_wrk() {
  local out
  out=$(wrk -t2 -c"$CONNECTIONS" -d"$2" --latency "$1") || die "wrk failed against $1"
  printf '%s\n' "$out" >>"$WRK_LOG"
  printf '%s\n' "$out" | awk '
    function ms(v) {
      if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
      if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
      if (v ~ /m$/)  { sub(/m$/, "", v);  return v * 60000 }
      if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
      return v + 0
    }
    /Requests\/sec:/ { rps = $2 }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { bad += $NF }
    /Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
    END {
      if (bad > 0) print "bench: warning: " bad " non-2xx/3xx responses" > "/dev/stderr"
      if (rps == "" || p99 == "") exit 1
      printf "%s %s %d\n", rps, p99, errs
    }' || die "could not parse wrk output for $1"
}

WRK_LOG=$DIR_A/wrk.log
NAMES=(ours debian static)
URLS=("$URL_A" "$URL_B" "$URL_C")
declare -A RPS P99

log "warm-up ($WARMUP each)"
for i in 0 1 2; do run_wrk "${URLS[$i]}" "$WARMUP" >/dev/null; done

for r in $(seq "$ROUNDS"); do
  for i in 0 1 2; do
    out=$(run_wrk "${URLS[$i]}" "$DURATION")
    read -r rps p99 errs <<<"$out"
    RPS[${NAMES[$i]}]+="$rps "
    P99[${NAMES[$i]}]+="$p99 "
    log "round $r/$ROUNDS ${NAMES[$i]}: $rps req/s, p99 $p99 ms, socket errors $errs"
  done
done

median() { "$PY" -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
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
