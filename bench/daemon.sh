#!/usr/bin/env bash
# Benchmark (not a test) of daemon mode (WSGIDaemonProcess + WSGIProcessGroup), one run, side by side:
#   1. hello world   in a daemon group of 2 processes x 16 threads: mod_wsgi-rs
#                    (target/modules/mod_wsgi.so, loaded from a private copy) vs Debian's mod_wsgi
#                    (libapache2-mod-wsgi-py3) in the same configuration; and Apache's own rate for
#                    a 13-byte static file (the same Apache as ours), for reference.
#   2. Django page   bench/django_page (20 rows from SQLite rendered by a template, the default
#                    middleware) in 2 daemon processes x 16 threads, ours vs Debian's mod_wsgi, and
#                    vs granian (--interface wsgi, 2 workers x 16 blocking threads) on the same
#                    project. granian is pip-installed into a venv made with
#                    `/usr/bin/python3 -m venv --system-site-packages` (so it sees Debian's Django).
#   3. memory        4 sites (the Django project in 4 daemon groups of one process x 16 threads),
#                    after load on each site: the sum of VmRSS (and of Pss, which divides shared
#                    pages among the processes sharing them) of Apache's children and of the
#                    daemons, ours vs Debian's. Apache's parent is shown but not counted.
# Each measurement is one wrk -t2 -cBENCH_CONNECTIONS -dBENCH_DURATION after a warm-up; the servers
# run side by side (each in its own Apache; the two modules share the name wsgi_module) and are
# measured one at a time. Apache: event MPM, one child x BENCH_THREADS threads, unlimited
# keep-alive, and WSGIRestrictEmbedded On (Python only in the daemons), for both modules.
# Daemons are told apart from Apache's children by their display-name, "(wsgi:GROUP)".
#
# Environment:
#   BENCH_THREADS=32        Apache's ThreadsPerChild / ThreadLimit / MaxRequestWorkers
#   BENCH_CONNECTIONS=32    wrk -c
#   BENCH_DURATION=10s      wrk -d per measurement
#   BENCH_WARMUP=3s         wrk -d of the warm-up before each measurement
#   BENCH_SITE_LOAD=2s      wrk -d of the load on each of the 4 sites before their memory is read
#   BENCH_VENV=target/bench-venv   the venv that holds granian (made and filled when missing)
#   BENCH_SKIP_BUILD=1      do not run scripts/build first
#   BENCH_KEEP=1            keep the temp dirs (configs, error logs, wrk.log) after the run
#   BENCH_OURS_CONFIG=...   extra configuration lines for our servers only (an experiment, e.g.
#                           "WSGIPythonConcurrency 1"); printed with the results
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
THREADS=${BENCH_THREADS:-32}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-3s}
SITE_LOAD=${BENCH_SITE_LOAD:-2s}
VENV=${BENCH_VENV:-$REPO/target/bench-venv}
DAEMON_PROCESSES=2
DAEMON_THREADS=16
SITES=4
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
DEBIAN_MODULE=$MODULES/mod_wsgi.so
EXPECTED=$'Hello World!\n'

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

# --- prerequisites ---------------------------------------------------------------------------
require_packages apache2 wrk libapache2-mod-wsgi-py3 curl python3-django
[ -x "$VENV/bin/granian" ] || require_packages python3-venv
[ -x "$PY" ] || die "$PY not found"
build_module

if [ ! -x "$VENV/bin/granian" ]; then
  log "installing granian into $VENV"
  "$PY" -m venv --system-site-packages "$VENV" >&2 || die "cannot create the venv $VENV"
  "$VENV/bin/pip" install -q granian >&2 || die "pip install granian failed"
fi
GRANIAN_VERSION=$("$VENV/bin/granian" --version 2>/dev/null | awk '{ print $NF }')
"$VENV/bin/python" -c 'import django' 2>/dev/null || die "Django is not visible from $VENV (made without --system-site-packages?)"

DEBIAN_VERSION=$(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null | sed 's/-.*//;s/^\([0-9]*\.[0-9]*\).*/\1/' || true)
DEBIAN_LABEL="Debian mod_wsgi ${DEBIAN_VERSION:-?}"
DJANGO_VERSION=$("$PY" -c 'import django; print(django.get_version())' 2>/dev/null || echo '?')

DIRS=()
trap cleanup EXIT

# One temp dir shared by all servers: the module, the apps and the Django project (with its
# SQLite DB).
APPS=$(mktemp -d "${TMPDIR:-/tmp}/bench-daemon-apps.XXXXXX")
DIRS+=("$APPS")

# Apache maps the module and the engine from a private copy: scripts/build (cp -f) rewrites
# target/modules/*.so in place, and a rebuild during the run would crash the running processes.
mkdir "$APPS/modules"
cp "$OUR_MODULE" "$(dirname "$OUR_MODULE")"/mod_wsgi-engine-py*.so "$APPS/modules/"
OUR_MODULE_COPY=$APPS/modules/mod_wsgi.so

# --- the applications ------------------------------------------------------------------------
# hello.wsgi answers "?group" with its process group: proof that a server runs it in a daemon.
cat >"$APPS/hello.wsgi" <<'EOF'
def application(environ, start_response):
    if environ.get("QUERY_STRING") == "group":
        body = environ.get("mod_wsgi.process_group", "?").encode() or b"(embedded)"
    else:
        body = b"Hello World!\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
EOF
printf 'Hello World!\n' >"$APPS/hello.txt"
setup_django_page "$APPS/django" "$PY"
# Apache's children and the daemons run as nobody when started as root: everything readable
# (the DB is made writable by setup_django_page).
chmod -R a+rX "$APPS"
DJANGO_WSGI=$APPS/django/benchsite/wsgi.py

# --- servers ---------------------------------------------------------------------------------
declare -A MODULE_OF=([ours]=$OUR_MODULE_COPY [debian]=$DEBIAN_MODULE)
declare -A LABEL=([ours]="mod_wsgi-rs" [debian]=$DEBIAN_LABEL [static]="static file (Apache)"
                  [granian]="granian ${GRANIAN_VERSION:-?}")

# make_server VARIANT KIND -> prints "dir port"
make_server() {
  local variant=$1 kind=$2 dir port i
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-daemon-$kind-$variant.XXXXXX")
  chmod 755 "$dir"
  port=$(free_port)
  {
    httpd_base_conf "$dir" "$port" "${MODULE_OF[$variant]}"
    cat <<EOF
# Unlimited keep-alive requests: otherwise Apache closes each connection after 100 requests and
# wrk reports those closes as socket read errors (same for all servers).
KeepAlive On
MaxKeepAliveRequests 0
<Directory $APPS>
    Require all granted
</Directory>
WSGISocketPrefix $dir/wsgi
EOF
    echo "WSGIRestrictEmbedded On"
    [ "$variant" = ours ] && [ -n "${BENCH_OURS_CONFIG:-}" ] && printf '%s\n' "$BENCH_OURS_CONFIG"
    case $kind in
      hello)
        echo "WSGIDaemonProcess hello processes=$DAEMON_PROCESSES threads=$DAEMON_THREADS display-name=%{GROUP}"
        echo "WSGIProcessGroup hello"
        echo "WSGIScriptAlias /hello $APPS/hello.wsgi"
        echo "Alias /static/hello.txt $APPS/hello.txt" ;;
      django)
        echo "WSGIDaemonProcess django processes=$DAEMON_PROCESSES threads=$DAEMON_THREADS display-name=%{GROUP}"
        echo "WSGIProcessGroup django"
        echo "WSGIScriptAlias /__group__ $APPS/hello.wsgi"
        echo "WSGIScriptAlias / $DJANGO_WSGI" ;;
      sites)
        for i in $(seq "$SITES"); do
          echo "WSGIDaemonProcess site$i processes=1 threads=$DAEMON_THREADS display-name=%{GROUP}"
          echo "WSGIScriptAlias /__group$i $APPS/hello.wsgi process-group=site$i"
          echo "WSGIScriptAlias /site$i $DJANGO_WSGI process-group=site$i"
        done ;;
    esac
  } >"$dir/httpd.conf"
  chmod 644 "$dir"/*
  echo "$dir $port"
}

declare -A DIR URL
for kind in hello django sites; do
  for v in ours debian; do
    out=$(make_server "$v" "$kind"); read -r d port <<<"$out"
    DIRS+=("$d"); DIR[$kind.$v]=$d; URL[$kind.$v]=http://127.0.0.1:$port
  done
done
URL[static.ours]=${URL[hello.ours]}/static/hello.txt

for kind in hello django sites; do
  for v in ours debian; do
    log "starting $kind / ${LABEL[$v]} (${DIR[$kind.$v]})"
    case $kind in
      hello)  start_server "${DIR[$kind.$v]}" "${URL[$kind.$v]}/hello" ;;
      django) start_server "${DIR[$kind.$v]}" "${URL[$kind.$v]}/" ;;
      sites)  start_server "${DIR[$kind.$v]}" "${URL[$kind.$v]}/site1/" ;;
    esac
  done
done

# granian, on the same Django project; its PID goes to httpd.pid, where cleanup looks for it.
GDIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-daemon-granian.XXXXXX")
DIRS+=("$GDIR")
GPORT=$(free_port)
log "starting granian $GRANIAN_VERSION ($GDIR)"
"$VENV/bin/granian" --interface wsgi --host 127.0.0.1 --port "$GPORT" \
  --workers "$DAEMON_PROCESSES" --blocking-threads "$DAEMON_THREADS" \
  --no-ws --no-access-log --log-level warning --working-dir "$APPS/django" \
  benchsite.wsgi:application </dev/null >"$GDIR/error.log" 2>&1 &
echo $! >"$GDIR/httpd.pid"
URL[django.granian]=http://127.0.0.1:$GPORT
wait_ready "$GDIR" "${URL[django.granian]}/"

# --- checking the responses ------------------------------------------------------------------
# fetch URL -> the body; dies unless the status is 200
fetch() {
  local out code
  out=$(curl -s --max-time 10 -w '\n%{http_code}' "$1") || die "curl failed against $1"
  code=${out##*$'\n'}
  [ "$code" = 200 ] || die "status $code from $1: ${out%$'\n'*}"
  printf '%s' "${out%$'\n'*}"
}

# expect URL BODY : dies unless URL answers 200 with BODY
expect() {
  local body
  body=$(fetch "$1"; echo x); body=${body%x}
  [ "$body" = "$2" ] || die "unexpected body from $1: $(printf %q "$body") (expected $(printf %q "$2"))"
}

# check_django URL REFERENCE -> the page; dies unless it lists the 20 items (and equals REFERENCE
# when given)
check_django() {
  local body i
  body=$(fetch "$1")
  for i in $(seq -w 1 20); do
    [[ $body == *"<li>item-$i: 1$i</li>"* ]] || die "item-$i missing from the Django page at $1: $body"
  done
  [ -z "$2" ] || [ "$body" = "$2" ] || die "the Django page at $1 differs from the others"
  printf '%s' "$body"
}

page=""
for v in ours debian; do
  expect "${URL[hello.$v]}/hello" "$EXPECTED"
  expect "${URL[hello.$v]}/hello?group" hello
  expect "${URL[django.$v]}/__group__?group" django
  page=$(check_django "${URL[django.$v]}/" "$page")
  for i in $(seq "$SITES"); do
    expect "${URL[sites.$v]}/__group$i?group" "site$i"
    check_django "${URL[sites.$v]}/site$i/" "$page" >/dev/null
  done
done
expect "${URL[static.ours]}" "$EXPECTED"
check_django "${URL[django.granian]}/" "$page" >/dev/null
log "all servers answer (hello and the Django pages in their daemon groups, granian the same page)"

# --- measuring -------------------------------------------------------------------------------
WRK_LOG=$APPS/wrk.log
declare -A RPS P99
NOTES=()

# measure KEY URL : warm-up, then one measurement into RPS[KEY] / P99[KEY]
measure() {
  local key=$1 url=$2 out rps p99 errs bad
  run_wrk "$url" "$WARMUP" >/dev/null
  out=$(run_wrk "$url" "$DURATION")
  read -r rps p99 errs bad <<<"$out"
  RPS[$key]=$rps; P99[$key]=$p99
  log "$key: $rps req/s, p99 $p99 ms, socket errors $errs, non-2xx $bad"
  if [ "$errs" -gt 0 ] || [ "$bad" -gt 0 ]; then
    NOTES+=("$key: $errs socket errors, $bad non-2xx/3xx responses")
  fi
}

log "1. hello world (warm-up $WARMUP, then $DURATION each)"
measure hello.ours "${URL[hello.ours]}/hello"
measure hello.debian "${URL[hello.debian]}/hello"
measure static.ours "${URL[static.ours]}"

log "2. Django page (warm-up $WARMUP, then $DURATION each)"
measure django.ours "${URL[django.ours]}/"
measure django.debian "${URL[django.debian]}/"
measure django.granian "${URL[django.granian]}/"

# memory PARENT -> "parent_kib children_rss children_pss n_children daemons_rss daemons_pss n_daemons"
# (KiB) for the processes whose parent is PARENT: daemons are those whose argv[0] starts "(wsgi:".
memory() {
  "$PY" - "$1" <<'EOF'
import os, sys

parent = sys.argv[1]

def field(pid, name, path="status"):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

totals = {"child": [0, 0, 0], "daemon": [0, 0, 0]}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/stat") as f:
            ppid = f.read().rsplit(")", 1)[1].split()[1]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read()
    except OSError:
        continue
    if ppid != parent:
        continue
    t = totals["daemon" if argv0.startswith(b"(wsgi:") else "child"]
    t[0] += field(pid, "VmRSS")
    t[1] += field(pid, "Pss", "smaps_rollup")
    t[2] += 1
c, d = totals["child"], totals["daemon"]
print(field(parent, "VmRSS"), c[0], c[1], c[2], d[0], d[1], d[2])
EOF
}

gworkers=$(pgrep -c -P "$(cat "$GDIR/httpd.pid")" || true)
[ "$gworkers" = "$DAEMON_PROCESSES" ] || log "warning: granian has $gworkers worker processes, not $DAEMON_PROCESSES"

log "3. memory: $SITES sites, $SITE_LOAD of load on each"
declare -A MEM
for v in ours debian; do
  for i in $(seq "$SITES"); do run_wrk "${URL[sites.$v]}/site$i/" "$SITE_LOAD" >/dev/null; done
done
sleep 1
for v in ours debian; do
  MEM[$v]=$(memory "$(cat "${DIR[sites.$v]}/httpd.pid")")
  read -r _ _ _ nc _ _ nd <<<"${MEM[$v]}"
  [ "$nd" -eq "$SITES" ] || die "${LABEL[$v]}: expected $SITES daemons, found $nd"
  [ "$nc" -ge 1 ] || die "${LABEL[$v]}: no Apache child found"
  log "${LABEL[$v]}: parent RSS, children RSS PSS n, daemons RSS PSS n (KiB): ${MEM[$v]}"
done

# --- error logs ------------------------------------------------------------------------------
# AH00484 ("server reached MaxRequestWorkers") is expected with -c >= threads.
LOGS=()
for key in hello.ours hello.debian django.ours django.debian sites.ours sites.debian; do
  f=${DIR[$key]}/error.log
  LOGS+=("$(printf '%-28s %4s Traceback, %4s child crashes (exit signal)' "$key:" \
           "$(grep -c 'Traceback' "$f" 2>/dev/null || true)" "$(grep -c 'exit signal' "$f" 2>/dev/null || true)")")
  errs=$(grep -iE 'traceback|error|crit|alert|emerg|signal|segfault' "$f" 2>/dev/null | grep -v AH00484 || true)
  if [ -n "$errs" ]; then
    log "note: $key: $f mentions errors ($(printf '%s\n' "$errs" | wc -l) lines):"
    printf '%s\n' "$errs" | head -10 >&2
  fi
done
if grep -qiE 'traceback|error|panic' "$GDIR/error.log"; then
  log "note: granian's log ($GDIR/error.log) mentions errors:"
  grep -iE 'traceback|error|panic' "$GDIR/error.log" | head -10 >&2
fi

# --- report ----------------------------------------------------------------------------------
row() { printf '%-34s%10.1f  %8.2f\n' "$1" "${RPS[$2]}" "${P99[$2]}"; }
echo
echo "daemon mode, one run; Apache: event MPM, 1 child x $THREADS threads, WSGIRestrictEmbedded On;"
echo "wrk -t2 -c$CONNECTIONS -d$DURATION after a $WARMUP warm-up"
[ -z "${BENCH_OURS_CONFIG:-}" ] || echo "ours with: ${BENCH_OURS_CONFIG//$'\n'/; }"
echo
printf '%-34s%10s  %8s\n' "1. hello world, daemon $DAEMON_PROCESSES x $DAEMON_THREADS" "req/s" "p99 ms"
row "${LABEL[ours]}" hello.ours
row "${LABEL[debian]}" hello.debian
row "${LABEL[static]}" static.ours
printf '  %-30s%s\n' "ours / mod_wsgi:" "$(ratio "${RPS[hello.ours]}" "${RPS[hello.debian]}")"
printf '  %-30s%s\n' "ours / static:" "$(ratio "${RPS[hello.ours]}" "${RPS[static.ours]}")"
echo
printf '%-34s%10s  %8s\n' "2. Django $DJANGO_VERSION page, $DAEMON_PROCESSES x $DAEMON_THREADS" "req/s" "p99 ms"
row "${LABEL[ours]}" django.ours
row "${LABEL[debian]}" django.debian
row "${LABEL[granian]} (wsgi)" django.granian
printf '  %-30s%s\n' "ours / granian:" "$(ratio "${RPS[django.ours]}" "${RPS[django.granian]}")"
printf '  %-30s%s\n' "ours / mod_wsgi:" "$(ratio "${RPS[django.ours]}" "${RPS[django.debian]}")"
printf '  %-30s%s\n' "mod_wsgi / granian:" "$(ratio "${RPS[django.debian]}" "${RPS[django.granian]}")"
echo
read -r op ocr ocp onc odr odp ond <<<"${MEM[ours]}"
read -r dp dcr dcp dnc ddr ddp dnd <<<"${MEM[debian]}"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
printf '3. memory, %d sites (1 daemon x %d threads each), MiB\n' "$SITES" "$DAEMON_THREADS"
printf '%-34s%12s%12s%8s\n' "" "ours" "mod_wsgi" "ratio"
mrow() { printf '%-34s%12s%12s%8s\n' "$1" "$(mib "$2")" "$(mib "$3")" "$(ratio "$2" "$3")"; }
mrow "Apache children RSS ($onc / $dnc)" "$ocr" "$dcr"
mrow "daemons RSS ($ond / $dnd)" "$odr" "$ddr"
mrow "children + daemons RSS" "$((ocr + odr))" "$((dcr + ddr))"
mrow "  per site" "$(( (ocr + odr) / SITES ))" "$(( (dcr + ddr) / SITES ))"
mrow "children + daemons PSS" "$((ocp + odp))" "$((dcp + ddp))"
mrow "  per site" "$(( (ocp + odp) / SITES ))" "$(( (dcp + ddp) / SITES ))"
mrow "Apache parent RSS (not counted)" "$op" "$dp"
if [ ${#NOTES[@]} -gt 0 ]; then
  echo "wrk errors:"
  printf '  %s\n' "${NOTES[@]}"
fi
echo "error logs:"
printf '  %s\n' "${LOGS[@]}"
