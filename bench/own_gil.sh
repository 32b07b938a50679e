#!/usr/bin/env bash
# Benchmark (not a test): WSGIPerInterpreterGIL, one Apache child with 16 threads serving two
# application groups of the same app, load split evenly between them (two wrk processes at
# once, one per group's URL), in one run, the servers side by side, measured in alternating
# rounds:
#   ours with the groups on their own GILs (WSGIPerInterpreterGIL On), ours on the shared GIL
#   (Off), and mod_wsgi 6.1.1 (pip install mod_wsgi for the same Python) with On:
#   - a CPU-bound page (pure-Python loop): own-GIL / shared-GIL throughput (issue 11: >= 1.8 on
#     2 cores), and ours / mod_wsgi 6.1.1's own-GIL groups (>= 1.15)
#   - hello world: own-GIL / shared-GIL (>= 0.95)
# With each rate, where the cores went: the child's CPU per request, the cores it kept busy,
# how busy the machine was. Prints the figures and ratios; no pass/fail.
#
# Environment:
#   BENCH_PYTHON=3.12        the Python (/opt/mod_wsgi-rs/python/X.Y; scripts/pythons X.Y)
#   BENCH_VENV=target/bench-venv-X.Y   venv with mod_wsgi 6.1.1 (made when missing)
#   BENCH_THREADS=16         ThreadsPerChild
#   BENCH_CONNECTIONS=8      wrk -c per group (two wrk processes)
#   BENCH_DURATION=8s        wrk -d per measurement
#   BENCH_WARMUP=2s          wrk -d of the warm-up per URL
#   BENCH_ROUNDS=3           rounds over the servers (medians printed); every other round in
#                            the reverse order
#   BENCH_PAGES="cpu hello"  the pages measured, in this order within a round
#   BENCH_SKIP_BUILD=1       do not run scripts/build first
#   BENCH_KEEP=1             keep the temp dirs
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=${BENCH_PYTHON:-3.12}
HOME_DIR=/opt/mod_wsgi-rs/python/$VERSION
VENV=${BENCH_VENV:-$REPO/target/bench-venv-$VERSION}
ROUNDS=${BENCH_ROUNDS:-3}
[ "$ROUNDS" -ge 1 ] || { echo "bench: BENCH_ROUNDS must be at least 1" >&2; exit 1; }
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

require_packages apache2 apache2-dev wrk curl
build_module
[ -d "$HOME_DIR" ] && [ -f "$REPO/target/modules/mod_wsgi-engine-py$VERSION.so" ] \
  || die "no Python $VERSION engine: run scripts/pythons $VERSION"
read -r -a PAGES <<<"${BENCH_PAGES:-cpu hello}"
[ "${#PAGES[@]}" -ge 1 ] || die "BENCH_PAGES: no page (cpu, hello)"
for page in "${PAGES[@]}"; do
  [ "$page" = cpu ] || [ "$page" = hello ] || die "BENCH_PAGES: unknown page '$page' (cpu, hello)"
done
make_venv "$VERSION" "$VENV"
THEIR_MODULE=$("$VENV/bin/mod_wsgi-express" module-location)
THEIR_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mod_wsgi"))')

DIRS=()
trap 'cleanup; rm -f "$WRK_LOG"' EXIT
# A private copy of the modules: a rebuild during the run cannot pull a file from under Apache.
MODDIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-own-gil-modules.XXXXXX")
DIRS+=("$MODDIR")
cp "$REPO"/target/modules/*.so "$THEIR_MODULE" "$MODDIR/"
chmod 755 "$MODDIR" "$MODDIR"/*.so
THEIR_MODULE=$MODDIR/$(basename "$THEIR_MODULE")

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

# make_server MODULE On|Off -> prints "dir port"
make_server() {
  local module=$1 mode=$2 dir port
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-own-gil.XXXXXX")
  chmod 755 "$dir"
  port=$(free_port)
  printf '%s' "$APP" >"$dir/app.wsgi"
  chmod 644 "$dir/app.wsgi"
  {
    httpd_base_conf "$dir" "$port" "$module" info
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

# pair URL1 URL2 -> total req/s of two wrk processes run at the same time; nothing (and a
# failure) when either wrk fails.
pair() {
  local a b pa pb ok=1
  a=$(mktemp) b=$(mktemp)
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$1" >"$a" &
  pa=$!
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$2" >"$b" &
  pb=$!
  wait "$pa" || ok=0
  wait "$pb" || ok=0
  if [ "$ok" = 0 ] || [ "$(grep -c 'Requests/sec:' "$a" "$b" | awk -F: '{ s += $2 } END { print s }')" != 2 ]; then
    rm -f "$a" "$b"
    return 1
  fi
  cat "$a" "$b" >>"$WRK_LOG"
  for f in "$a" "$b"; do
    if grep -q "Non-2xx" "$f"; then log "warning: $(grep Non-2xx "$f") from ${f}"; fi
  done
  awk '/Requests\/sec:/ { s += $2 } END { printf "%.1f\n", s }' "$a" "$b"
  rm -f "$a" "$b"
}

# The three servers run side by side; each round measures each in turn (a change in the
# machine's load then hits them all alike).
NAMES=(ours-own ours-shared theirs-own)
declare -A MODULE_OF=([ours-own]="$MODDIR/mod_wsgi.so" [ours-shared]="$MODDIR/mod_wsgi.so" [theirs-own]="$THEIR_MODULE")
declare -A MODE_OF=([ours-own]=On [ours-shared]=Off [theirs-own]=On)
declare -A PORT CHILD SAMPLES CPU_PER CORES BUSY

for name in "${NAMES[@]}"; do
  read -r dir port < <(make_server "${MODULE_OF[$name]}" "${MODE_OF[$name]}")
  DIRS+=("$dir")
  start_server "$dir" "http://127.0.0.1:$port/one/hello"
  wait_ready "$dir" "http://127.0.0.1:$port/two/hello"
  PORT[$name]=$port
  CHILD[$name]=$(child_pid "$(cat "$dir/httpd.pid")")
  for page in cpu hello; do
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:$port/one/$page" >/dev/null
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:$port/two/$page" >/dev/null
  done
  log "$name: started ($(grep -ci "own GIL" "$dir/error.log" || true) own-GIL log lines)"
done
for r in $(seq "$ROUNDS"); do
  for page in "${PAGES[@]}"; do
    for name in $(round_order "$r" "${NAMES[@]}"); do
      port=${PORT[$name]}
      cores_begin "${CHILD[$name]}"
      rps=$(pair "http://127.0.0.1:$port/one/$page" "http://127.0.0.1:$port/two/$page") \
        || die "wrk failed against $name /$page (round $r)"
      cores_record "$name-$page" "${CHILD[$name]}" "$rps" "$DURATION"
      SAMPLES[$name-$page]+=" $rps"
      log "round $r/$ROUNDS $name $page: $rps req/s, $CORES_LINE"
    done
  done
done
for dir in "${DIRS[@]}"; do
  [ -f "$dir/error.log" ] || continue
  if grep -E "Segmentation fault|Fatal Python error|exit signal|panicked" "$dir/error.log" >&2; then
    log "warning: crash lines in $dir/error.log"
  fi
done

echo
echo "One child x $THREADS threads, two groups, Python $VERSION, 2 x wrk -c$CONNECTIONS, medians of $ROUNDS alternating rounds of $DURATION ($(nproc) cores); mod_wsgi $THEIR_VERSION"
printf '%-34s %10s %12s %8s %6s\n' "" "req/s" "us/request" "cores" "busy"
for page in "${PAGES[@]}"; do
  for name in "${NAMES[@]}"; do
    printf '%-34s %10.1f %12.0f %8.2f %5.0f%%\n' "$page, $name" "$(med "${SAMPLES[$name-$page]}")" \
      "$(med "${CPU_PER[$name-$page]}")" "$(med "${CORES[$name-$page]}")" "$(med "${BUSY[$name-$page]}")"
  done
done
echo "Ratios of the medians (and each round's own ratio):"
for page in "${PAGES[@]}"; do
  if [ "$page" = cpu ]; then label="CPU page" target_shared="(target 1.8) " target_theirs="(target 1.15)"
  else label="hello" target_shared="(target 0.95)" target_theirs="             "
  fi
  own=${SAMPLES[ours-own-$page]} shared=${SAMPLES[ours-shared-$page]} theirs=${SAMPLES[theirs-own-$page]}
  printf '  %-44s %5s   %s  %s\n' "$label, own GIL / shared GIL:" "$(ratio "$(med "$own")" "$(med "$shared")")" "$target_shared" "$(round_ratios "$own" "$shared")"
  printf '  %-44s %5s   %s  %s\n' "$label, ours / mod_wsgi $THEIR_VERSION, own GIL:" "$(ratio "$(med "$own")" "$(med "$theirs")")" "$target_theirs" "$(round_ratios "$own" "$theirs")"
done
