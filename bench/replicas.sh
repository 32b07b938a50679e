#!/usr/bin/env bash
# Benchmark (not a test) of replicas (issue 11): one application group served by N own-GIL
# interpreters of ONE Apache child, in one run, side by side:
#   1. CPU-bound page (pure-Python loop), one child x 16 threads, one URL, wrk -c16:
#        ours, one own-GIL group / ours, 2 replicas                        (target >= 1.85)
#        mod_wsgi 6.1.1 (pip install mod_wsgi into a venv of the same Python 3.12), its
#        recipe: two own-GIL groups chosen per request by a WSGIDispatchScript (round robin);
#        ours with 2 replicas / that                                      (target >= 1.15)
#   2. the Django page of bench/django_page (Django 4.2 from PyPI), one child x 32 threads:
#      ours with 2 replicas / ours with one shared-GIL group               (target >= 1.8)
#      on Python 3.13 (BENCH_DJANGO_PYTHON): on 3.12 Django cannot run on an own GIL at all
#      (zoneinfo needs _datetime, whose init is single-phase there).
# Prints figures and ratios; no pass/fail. Needs a quiet machine (2 cores here).
#
# Environment:
#   BENCH_PYTHON=3.12        the Python (/opt/mod_wsgi-rs/python/X.Y; scripts/pythons X.Y)
#   BENCH_VENV=target/bench-venv-X.Y   venv with mod_wsgi 6.1.1 and Django (made when missing)
#   BENCH_DJANGO_PYTHON=3.13 the Python of part 2 (its venv: target/bench-venv-X.Y as well)
#   BENCH_DURATION=8s        wrk -d per measurement
#   BENCH_ROUNDS=3           rounds: the servers of a part run side by side, measured in turn
#                            once per round; medians are printed
#   BENCH_WARMUP=3s          wrk -d of the warm-up
#   BENCH_SKIP_BUILD=1       do not run scripts/build first
#   BENCH_KEEP=1             keep the temp dirs
#   BENCH_OURS_CONFIG=...    extra configuration lines for our servers only (an experiment,
#                            e.g. "WSGIPythonConcurrency 1"); printed with the results
#   BENCH_ONLY=cpu|django    run one part only
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=${BENCH_PYTHON:-3.12}
PYHOME=/opt/mod_wsgi-rs/python/$VERSION
VENV=${BENCH_VENV:-$REPO/target/bench-venv-$VERSION}
DJANGO_PY=${BENCH_DJANGO_PYTHON:-3.13}
DJANGO_VENV=$REPO/target/bench-venv-$DJANGO_PY
DURATION=${BENCH_DURATION:-8s}
WARMUP=${BENCH_WARMUP:-3s}
ROUNDS=${BENCH_ROUNDS:-3}
[ "$ROUNDS" -ge 1 ] || { echo "bench: BENCH_ROUNDS must be at least 1" >&2; exit 1; }
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
WRK_LOG=$(mktemp "${TMPDIR:-/tmp}/bench-replicas-wrk.XXXXXX")

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

require_packages apache2 apache2-dev wrk curl
build_module
[ -x "$PYHOME/bin/python$VERSION" ] && [ -f "$REPO/target/modules/mod_wsgi-engine-py$VERSION.so" ] \
  || die "no Python $VERSION engine: run scripts/pythons $VERSION"

make_venv "$VERSION" "$VENV"
make_venv "$DJANGO_PY" "$DJANGO_VENV"
THEIR_MODULE=$("$VENV/bin/mod_wsgi-express" module-location)
THEIR_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mod_wsgi"))')
DJANGO_VERSION=$("$DJANGO_VENV/bin/python" -c 'import django; print(django.get_version())')

DIRS=()
trap 'cleanup; rm -f "$WRK_LOG"' EXIT
# Everything Apache's user reads, in one world-readable temp dir: the modules (a private copy,
# so that a rebuild cannot pull a file from under Apache), the venv (copied: root's home,
# where it may live, is not readable by nobody), the apps.
SHARE=$(mktemp -d "${TMPDIR:-/tmp}/bench-replicas.XXXXXX")
DIRS+=("$SHARE")
mkdir "$SHARE/modules"
cp "$REPO"/target/modules/*.so "$THEIR_MODULE" "$SHARE/modules/"
THEIR_MODULE=$SHARE/modules/$(basename "$THEIR_MODULE")
cp -a "$VENV" "$SHARE/venv"
VENV_COPY=$SHARE/venv
cp -a "$DJANGO_VENV" "$SHARE/django-venv"
DJANGO_VENV_COPY=$SHARE/django-venv
# A venv's interpreter is a symlink to the base Python; both must be readable (they are
# under /opt).

cat >"$SHARE/cpu.wsgi" <<'EOF'
def work():
    total = 0
    for i in range(30000):
        total += i * i % 7
    return total

def application(environ, start_response):
    body = b"%d\n" % work()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
EOF
# mod_wsgi 6's recipe for one app in several own-GIL interpreters: a dispatch script that
# picks the application group per request.
cat >"$SHARE/dispatch.py" <<'EOF'
import itertools
_next = itertools.count()

def application_group(environ):
    return 'cpu-%d' % (next(_next) % 2)
EOF
setup_django_page "$SHARE/django" "$DJANGO_VENV_COPY/bin/python"
chmod -R a+rX "$SHARE"

# make_server NAME THREADS MODULE CONFIG [HOME] -> prints "dir port"
make_server() {
  local name=$1 home=${5:-$VENV_COPY} dir port
  THREADS=$2
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-replicas-$name.XXXXXX")
  chmod 755 "$dir"
  port=$(free_port)
  {
    httpd_base_conf "$dir" "$port" "$3" info
    cat <<CONF
KeepAlive On
MaxKeepAliveRequests 0
<Directory $SHARE>
  Require all granted
</Directory>
WSGIPythonHome $home
$4
$([ "$3" = "$SHARE/modules/mod_wsgi.so" ] && printf '%s\n' "${BENCH_OURS_CONFIG:-}")
CONF
  } >"$dir/httpd.conf"
  echo "$dir $port"
}

declare -A RATE SAMPLES PORTS PATHS
ORDER=()
# serve NAME THREADS MODULE URLPATH CONFIG [HOME]: starts the server and warms it up; it is
# measured in the rounds below, alternately with the others of its part.
serve() {
  local name=$1 threads=$2 dir port
  read -r dir port < <(make_server "$name" "$threads" "$3" "$5" "${6:-}")
  DIRS+=("$dir")
  start_server "$dir" "http://127.0.0.1:$port$4"
  PORTS[$name]=$port; PATHS[$name]=$4; SAMPLES[$name]=""; CONNS[$name]=$threads
  CHILD[$name]=$(child_pid "$(cat "$dir/httpd.pid")"); CPU_PER[$name]=""; CORES[$name]=""; BUSY[$name]=""
  ORDER+=("$name")
  wrk -t2 -c"$threads" -d"$WARMUP" "http://127.0.0.1:$port$4" >/dev/null
  log "$name: started ($(grep -c "with own GIL" "$dir/error.log" || true) own-GIL interpreters)"
}
declare -A CONNS CHILD CPU_PER CORES BUSY

# rounds: BENCH_ROUNDS rounds over the servers started (one wrk run each, in turn: a load
# change on the machine hits them all alike), then their medians, and the servers stopped.
rounds() {
  local r name rps dir
  for r in $(seq "$ROUNDS"); do
    for name in $(round_order "$r" "${ORDER[@]}"); do
      CONNECTIONS=${CONNS[$name]}
      cores_begin "${CHILD[$name]}"
      read -r rps _ <<<"$(run_wrk "http://127.0.0.1:${PORTS[$name]}${PATHS[$name]}" "$DURATION")"
      [ -n "$rps" ] || die "wrk failed against $name (round $r)"
      SAMPLES[$name]+=" $rps"
      cores_record "$name" "${CHILD[$name]}" "$rps" "$DURATION"
      log "round $r/$ROUNDS $name: $rps req/s, $CORES_LINE"
    done
  done
  for name in "${ORDER[@]}"; do
    # shellcheck disable=SC2086
    RATE[$name]=$(median ${SAMPLES[$name]})
  done
  for dir in "${DIRS[@]}"; do
    [ -f "$dir/httpd.pid" ] || continue
    if grep -E "Segmentation fault|Fatal Python error|exit signal|panicked" "$dir/error.log" >&2; then
      log "warning: crash lines in $dir/error.log"
    fi
    kill "$(cat "$dir/httpd.pid")"
    for _ in $(seq 100); do [ -f "$dir/httpd.pid" ] || break; sleep 0.1; done
  done
  ORDER=()
}

CPU_ALIAS="WSGIScriptAlias /cpu $SHARE/cpu.wsgi"
for k in ours-one ours-replicas theirs-one theirs-recipe django-shared django-replicas; do RATE[$k]=0; done
if [ "${BENCH_ONLY:-cpu}" = cpu ] || [ -z "${BENCH_ONLY:-}" ]; then
log "1. CPU-bound page, one child x 16 threads"
serve ours-one 16 "$SHARE/modules/mod_wsgi.so" /cpu "WSGIPerInterpreterGIL On
$CPU_ALIAS application-group=cpu"
serve ours-replicas 16 "$SHARE/modules/mod_wsgi.so" /cpu "WSGIPerInterpreterGIL On
$CPU_ALIAS application-group=cpu replicas=2"
serve theirs-one 16 "$THEIR_MODULE" /cpu "WSGIPerInterpreterGIL On
$CPU_ALIAS application-group=cpu"
serve theirs-recipe 16 "$THEIR_MODULE" /cpu "WSGIPerInterpreterGIL On
WSGIDispatchScript $SHARE/dispatch.py
$CPU_ALIAS"
rounds
fi

if [ "${BENCH_ONLY:-django}" = django ]; then
log "2. Django page, one child x 32 threads"
DJANGO_ALIAS="WSGIScriptAlias / $SHARE/django/benchsite/wsgi.py"
serve django-shared 32 "$SHARE/modules/mod_wsgi.so" / "$DJANGO_ALIAS application-group=site" "$DJANGO_VENV_COPY"
serve django-replicas 32 "$SHARE/modules/mod_wsgi.so" / "WSGIPerInterpreterGIL On
$DJANGO_ALIAS application-group=site replicas=2" "$DJANGO_VENV_COPY"
rounds
fi

echo
echo "Replicas, one Apache child, Python $VERSION (Django: $DJANGO_PY), wrk -t2 -c(threads), medians of $ROUNDS alternating rounds of $DURATION ($(nproc) cores); mod_wsgi $THEIR_VERSION, Django $DJANGO_VERSION"
[ -n "${BENCH_OURS_CONFIG:-}" ] && echo "ours with: ${BENCH_OURS_CONFIG}"
printf '%-52s %10s\n' "" "req/s"
printf '%-52s %10s\n' "CPU page, ours, one own-GIL group" "${RATE[ours-one]}"
printf '%-52s %10s\n' "CPU page, ours, 2 replicas" "${RATE[ours-replicas]}"
printf '%-52s %10s\n' "CPU page, mod_wsgi $THEIR_VERSION, one own-GIL group" "${RATE[theirs-one]}"
printf '%-52s %10s\n' "CPU page, mod_wsgi $THEIR_VERSION, dispatch recipe (2 groups)" "${RATE[theirs-recipe]}"
printf '%-52s %10s\n' "Django page x 32 threads, ours, one shared-GIL group" "${RATE[django-shared]}"
printf '%-52s %10s\n' "Django page x 32 threads, ours, 2 replicas" "${RATE[django-replicas]}"
echo "  CPU: 2 replicas / one group:               $(ratio "${RATE[ours-replicas]}" "${RATE[ours-one]}")   (target 1.85)"
echo "  CPU: 2 replicas / mod_wsgi's recipe:        $(ratio "${RATE[ours-replicas]}" "${RATE[theirs-recipe]}")   (target 1.15)"
echo "  CPU: mod_wsgi's recipe / its one group:     $(ratio "${RATE[theirs-recipe]}" "${RATE[theirs-one]}")"
echo "  Django: 2 replicas / one shared-GIL group:  $(ratio "${RATE[django-replicas]}" "${RATE[django-shared]}")   (target 1.8)"
echo "Where the cores went (medians): Apache child's CPU per request, cores it used, machine busy"
for name in ours-one ours-replicas theirs-one theirs-recipe django-shared django-replicas; do
  [ -n "${CPU_PER[$name]:-}" ] || continue
  # shellcheck disable=SC2086
  printf '  %-16s %6.0f us/request  %5.2f cores  %3.0f%% busy\n' "$name" "$(median ${CPU_PER[$name]})" "$(median ${CORES[$name]})" "$(median ${BUSY[$name]})"
done
echo "Per round:"
echo "  CPU: 2 replicas / one group:               $(round_ratios "${SAMPLES[ours-replicas]:-}" "${SAMPLES[ours-one]:-}")"
echo "  CPU: 2 replicas / mod_wsgi's recipe:        $(round_ratios "${SAMPLES[ours-replicas]:-}" "${SAMPLES[theirs-recipe]:-}")"
echo "  Django: 2 replicas / one shared-GIL group:  $(round_ratios "${SAMPLES[django-replicas]:-}" "${SAMPLES[django-shared]:-}")"
