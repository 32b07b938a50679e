#!/usr/bin/env bash
# Benchmark (not a test): WSGIPerInterpreterGIL, one Apache child with 16 threads serving two
# application groups of the same app, load split evenly between them (two wrk processes at
# once, one per group's URL), with the groups on their own GILs (WSGIPerInterpreterGIL On)
# and on the shared GIL (Off), in one run:
#   - a CPU-bound page (pure-Python loop): own-GIL / shared-GIL throughput (issue 11: >= 1.8 on 2 cores)
#   - hello world: own-GIL / shared-GIL (>= 0.95)
# Prints the figures and ratios; no pass/fail.
#
# Environment:
#   BENCH_PYTHON=3.12        the engine (WSGIPythonHome /opt/mod_wsgi-rs/python/X.Y; scripts/pythons X.Y)
#   BENCH_THREADS=16         ThreadsPerChild
#   BENCH_CONNECTIONS=8      wrk -c per group (two wrk processes)
#   BENCH_DURATION=8s        wrk -d per measurement
#   BENCH_WARMUP=2s          wrk -d of the warm-up per URL
#   BENCH_SKIP_BUILD=1       do not run scripts/build first
#   BENCH_KEEP=1             keep the temp dirs
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=${BENCH_PYTHON:-3.12}
HOME_DIR=/opt/mod_wsgi-rs/python/$VERSION
THREADS=${BENCH_THREADS:-16}
CONNECTIONS=${BENCH_CONNECTIONS:-8}
DURATION=${BENCH_DURATION:-8s}
WARMUP=${BENCH_WARMUP:-2s}
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
WRK_LOG=$(mktemp "${TMPDIR:-/tmp}/bench-own-gil-wrk.XXXXXX")

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

need=()
[ -x "$HTTPD" ] || need+=(apache2)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
install_packages "${need[@]}"
build_module
[ -d "$HOME_DIR" ] && [ -f "$REPO/target/modules/mod_wsgi-engine-py$VERSION.so" ] \
  || die "no Python $VERSION engine: run scripts/pythons $VERSION"

DIRS=()
trap 'cleanup; rm -f "$WRK_LOG"' EXIT
# A private copy of the modules: a rebuild during the run cannot pull a file from under Apache.
MODDIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-own-gil-modules.XXXXXX")
DIRS+=("$MODDIR")
cp "$REPO"/target/modules/*.so "$MODDIR/"
chmod 755 "$MODDIR" "$MODDIR"/*.so

APP='
def work():
    total = 0
    for i in range(30000):
        total += i * i % 7
    return total

def application(environ, start_response):
    if environ["PATH_INFO"] == "/cpu":
        body = b"%d\n" % work()
    else:
        body = b"Hello World!\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'

# make_server On|Off -> prints "dir port"
make_server() {
  local mode=$1 dir port
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-own-gil.XXXXXX")
  chmod 755 "$dir"
  port=$(free_port)
  printf '%s' "$APP" >"$dir/app.wsgi"
  chmod 644 "$dir/app.wsgi"
  {
    httpd_base_conf "$dir" "$port" "$MODDIR/mod_wsgi.so" info
    cat <<CONF
<Directory $dir>
  Require all granted
</Directory>
WSGIPythonHome $HOME_DIR
WSGIPerInterpreterGIL $mode
WSGIScriptAlias /one $dir/app.wsgi application-group=one
WSGIScriptAlias /two $dir/app.wsgi application-group=two
CONF
  } >"$dir/httpd.conf"
  echo "$dir $port"
}

# pair URL1 URL2 -> total req/s of two wrk processes run at the same time
pair() {
  local a b
  a=$(mktemp) b=$(mktemp)
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$1" >"$a" &
  local pa=$!
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$2" >"$b" &
  local pb=$!
  wait "$pa" "$pb"
  cat "$a" "$b" >>"$WRK_LOG"
  for f in "$a" "$b"; do
    if grep -q "Non-2xx" "$f"; then log "warning: $(grep Non-2xx "$f") from ${f}"; fi
  done
  awk '/Requests\/sec:/ { s += $2 } END { printf "%.1f\n", s }' "$a" "$b"
  rm -f "$a" "$b"
}

declare -A RATE
for mode in On Off; do
  read -r dir port < <(make_server "$mode")
  DIRS+=("$dir")
  start_server "$dir" "http://127.0.0.1:$port/one/hello"
  wait_ready "$dir" "http://127.0.0.1:$port/two/hello"
  for page in cpu hello; do
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:$port/one/$page" >/dev/null
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:$port/two/$page" >/dev/null
    RATE[$mode-$page]=$(pair "http://127.0.0.1:$port/one/$page" "http://127.0.0.1:$port/two/$page")
    log "WSGIPerInterpreterGIL $mode, $page: ${RATE[$mode-$page]} req/s"
  done
  log "$mode: $(grep -c "with own GIL" "$dir/error.log" || true) interpreter(s) created with own GIL"
  if grep -E "Segmentation fault|Fatal Python error|exit signal|panicked" "$dir/error.log" >&2; then
    log "warning: crash lines in $dir/error.log"
  fi
  kill "$(cat "$dir/httpd.pid")"
  for _ in $(seq 100); do [ -f "$dir/httpd.pid" ] || break; sleep 0.1; done
done

ratio() { "$PY" -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
echo
echo "One child x $THREADS threads, two groups, Python $VERSION, 2 x wrk -c$CONNECTIONS -d$DURATION ($(nproc) cores)"
printf '%-22s %12s %12s %8s\n' "" "own GIL" "shared GIL" "ratio"
printf '%-22s %12s %12s %8s\n' "CPU-bound page req/s" "${RATE[On-cpu]}" "${RATE[Off-cpu]}" "$(ratio "${RATE[On-cpu]}" "${RATE[Off-cpu]}")"
printf '%-22s %12s %12s %8s\n' "hello world req/s" "${RATE[On-hello]}" "${RATE[Off-hello]}" "$(ratio "${RATE[On-hello]}" "${RATE[Off-hello]}")"
