#!/usr/bin/env bash
# Benchmark (not a test): the cost of application groups (one sub-interpreter each) in ONE Apache
# child (event MPM, 1 child x 8 threads) serving 20 minimal Django 3.2 projects, site01..site20,
# each mounted at /siteNN and put in its own group (<Location /siteNN> WSGIApplicationGroup siteNN),
# through
#   (a) mod_wsgi-rs (target/modules/mod_wsgi.so),
#   (b) Debian's mod_wsgi (libapache2-mod-wsgi-py3, /usr/lib/apache2/modules/mod_wsgi.so).
# Measured per run:
#   memory    VmRSS of the Apache child after the first request to site01 (1 group) and after
#             the first request to each of site02..site20 (20 groups); (RSS20 - RSS1) / 19 is the
#             memory of one extra group.
#   latency   time_total of the first request to each of site02..site20 (a new group: create the
#             sub-interpreter, import Django, set it up); median and max. Also the first request
#             to site01 and a second (warm) request to site20, for reference.
# Every response must be the site's own name. Each run uses a freshly generated temp dir and a
# freshly started Apache; BENCH_RUNS runs per module, alternating (ours, Debian, ours, Debian, ...),
# one server at a time; the medians over the runs are printed.
#
# Every wsgi.py ASSIGNS os.environ['DJANGO_SETTINGS_MODULE'] (instead of Django's setdefault):
# mod_wsgi 4.9 gives a new sub-interpreter the process environment as it is at that moment, so
# with setdefault the second site would inherit the first site's settings module there.
#
# Environment:
#   BENCH_SITES=20          number of Django projects / application groups (>= 2)
#   BENCH_RUNS=2            runs per module (alternating)
#   BENCH_SKIP_BUILD=1      do not run scripts/build first
#   BENCH_KEEP=1            keep the temp dirs (configs, sites, error logs) after the run
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SITES=${BENCH_SITES:-20}
RUNS=${BENCH_RUNS:-2}
THREADS=8
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
DEBIAN_MODULE=$MODULES/mod_wsgi.so

[ "$SITES" -ge 2 ] || { echo "bench: error: BENCH_SITES must be >= 2" >&2; exit 1; }

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

# --- prerequisites ---------------------------------------------------------------------------
require_packages apache2 libapache2-mod-wsgi-py3 curl python3-django
[ -x "$PY" ] || die "$PY not found"
build_module

DEBIAN_VERSION=$(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null | sed 's/-.*//;s/^\([0-9]*\.[0-9]*\).*/\1/' || true)
DEBIAN_LABEL="Debian mod_wsgi ${DEBIAN_VERSION:-?}"
DJANGO_VERSION=$("$PY" -c 'import django; print(django.get_version())' 2>/dev/null || echo '?')

DIRS=()
ALL_DIRS=()
trap cleanup EXIT

# Apache maps the module and the engine from a private copy: scripts/build (cp -f) rewrites
# target/modules in place, and a concurrent build must not change them between runs.
MODCOPY=$(mktemp -d "${TMPDIR:-/tmp}/bench-groups-modules.XXXXXX")
ALL_DIRS+=("$MODCOPY")
cp "$OUR_MODULE" "$(dirname "$OUR_MODULE")"/mod_wsgi-engine-py*.so "$MODCOPY/"
chmod 755 "$MODCOPY"; chmod 644 "$MODCOPY"/*
OUR_MODULE=$MODCOPY/mod_wsgi.so

site_name() { printf 'site%02d' "$1"; }

# make_site DIR NAME : a minimal Django project, package NAME, in DIR/NAME.
make_site() {
  local dir=$1 name=$2 pkg=$1/$2/$2
  mkdir -p "$pkg"
  : >"$pkg/__init__.py"
  cat >"$pkg/settings.py" <<EOF
SECRET_KEY = 'bench-groups-$name-not-secret'
DEBUG = False
ALLOWED_HOSTS = ['*']
ROOT_URLCONF = '$name.urls'
INSTALLED_APPS = ['django.contrib.contenttypes', 'django.contrib.auth']
MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]
DATABASES = {}
USE_TZ = True
EOF
  cat >"$pkg/views.py" <<EOF
from django.http import HttpResponse


def index(request):
    return HttpResponse('$name\n', content_type='text/plain')
EOF
  cat >"$pkg/urls.py" <<EOF
from django.urls import path

from . import views

urlpatterns = [path('', views.index)]
EOF
  cat >"$dir/$name/wsgi.py" <<EOF
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Assignment, not setdefault: see bench/groups.sh.
os.environ['DJANGO_SETTINGS_MODULE'] = '$name.settings'

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
EOF
}

# make_server MODULE_PATH TAG -> prints "dir port"
make_server() {
  local module=$1 tag=$2 dir port i name
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-groups-$tag.XXXXXX")
  port=$(free_port)
  printf 'ready\n' >"$dir/ready.txt"
  {
    cat <<EOF
$(httpd_base_conf "$dir" "$port" "$module")
<Directory $dir>
    Require all granted
</Directory>
EOF
    for i in $(seq "$SITES"); do
      name=$(site_name "$i")
      make_site "$dir" "$name"
      printf 'WSGIScriptAlias /%s %s/%s/wsgi.py\n' "$name" "$dir" "$name"
      printf '<Location /%s>\n    WSGIApplicationGroup %s\n</Location>\n' "$name" "$name"
    done
  } >"$dir/httpd.conf"
  find "$dir" -type d -exec chmod 755 {} +
  find "$dir" -type f -exec chmod 644 {} +
  echo "$dir $port"
}

# stop_server DIR : kill the pidfile's PID and wait (up to 15 s) for it to exit.
stop_server() {
  local dir=$1 pid
  pid=$(cat "$dir/httpd.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  log "warning: apache2 $pid ($dir) still running after 15s"
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# fetch URL NAME -> prints time_total (s); fails (and records it) unless 200 with body "NAME\n".
fetch() {
  local url=$1 name=$2 out code t body
  out=$(curl -s --max-time 60 -w $'\n%{http_code} %{time_total}' "$url") || die "curl failed for $url"
  read -r code t <<<"${out##*$'\n'}"
  body=${out%$'\n'*}
  if [ "$code" != 200 ] || [ "$body" != "$name"$'\n' ]; then
    printf '%s -> %s %q\n' "$url" "$code" "${body:0:200}" >>"$CUR_DIR/failed.txt"
    log "FAIL $url -> status $code, body $(printf %q "${body:0:200}")"
    echo "$t"
    return 1
  fi
  echo "$t"
}

# --- one run ---------------------------------------------------------------------------------
# run_one MODULE TAG KEY : fresh dir + Apache, measures, stores results in R_* arrays under KEY.
declare -A R_RSS1 R_RSS20 R_PER R_MED R_MAX R_FIRST1 R_WARM R_NOK R_CURVE
CUR_DIR=""
run_one() {
  local module=$1 tag=$2 key=$3 out dir port parent child rss1 rss20 i name t lat=() ok=0 curve
  out=$(make_server "$module" "$tag"); read -r dir port <<<"$out"
  DIRS=("$dir"); ALL_DIRS+=("$dir"); CUR_DIR=$dir
  start_server "$dir" "http://127.0.0.1:$port/ready.txt"
  parent=$(cat "$dir/httpd.pid")
  child=$(child_pid "$parent") || exit 1
  log "$key: apache2 $parent, child $child, port $port, RSS before any WSGI request $(( $(rss_kib "$child") / 1024 )) MiB"

  t=$(fetch "http://127.0.0.1:$port/site01/" site01) && ok=$((ok + 1))
  R_FIRST1[$key]=$t
  rss1=$(rss_kib "$child"); curve="$rss1"
  for i in $(seq 2 "$SITES"); do
    name=$(site_name "$i")
    if t=$(fetch "http://127.0.0.1:$port/$name/" "$name"); then
      ok=$((ok + 1)); lat+=("$t")
    fi
    curve+=" $(rss_kib "$child")"
  done
  rss20=$(rss_kib "$child")
  name=$(site_name "$SITES")
  R_WARM[$key]=$(fetch "http://127.0.0.1:$port/$name/" "$name" || true)
  [ "$(child_pid "$parent")" = "$child" ] || log "warning: $key: the Apache child changed during the run"

  R_RSS1[$key]=$rss1; R_RSS20[$key]=$rss20; R_NOK[$key]=$ok; R_CURVE[$key]=$curve
  R_PER[$key]=$(awk -v a="$rss1" -v b="$rss20" -v n="$SITES" 'BEGIN { printf "%.3f", (b - a) / (n - 1) / 1024 }')
  if [ "${#lat[@]}" -gt 0 ]; then
    R_MED[$key]=$(median "${lat[@]}")
    R_MAX[$key]=$(printf '%s\n' "${lat[@]}" | sort -g | tail -1)
  else
    R_MED[$key]=nan; R_MAX[$key]=nan
  fi
  log "$key: new-group latencies (s): ${lat[*]}"
  log "$key: RSS after each site (KiB): $curve"
  log "$key: $ok/$SITES sites OK; RSS $((rss1 / 1024)) -> $((rss20 / 1024)) MiB (${R_PER[$key]} MiB/group);" \
      "new-group latency median ${R_MED[$key]} s, max ${R_MAX[$key]} s; site01 first ${R_FIRST1[$key]} s; warm ${R_WARM[$key]} s"

  stop_server "$dir"
  DIRS=()
}

# --- measuring -------------------------------------------------------------------------------
log "Django $DJANGO_VERSION, $SITES sites, $RUNS runs per module (alternating)"
for r in $(seq "$RUNS"); do
  run_one "$OUR_MODULE" ours "ours$r"
  run_one "$DEBIAN_MODULE" debian "debian$r"
done

# --- error logs ------------------------------------------------------------------------------
declare -A TB ERRS
for d in "${ALL_DIRS[@]}"; do
  case $d in *bench-groups-ours*) m=ours ;; *bench-groups-debian*) m=debian ;; *) continue ;; esac
  n=$(grep -c 'Traceback' "$d/error.log" 2>/dev/null || true)
  TB[$m]=$(( ${TB[$m]:-0} + ${n:-0} ))
  # AH00046 (child SIGKILLed at stop) is expected for Debian's mod_wsgi and not counted.
  e=$(grep -iE 'error|segfault|exit signal' "$d/error.log" 2>/dev/null | grep -vc AH00046 || true)
  ERRS[$m]=$(( ${ERRS[$m]:-0} + ${e:-0} ))
  if [ "${e:-0}" -gt 0 ] || [ "${n:-0}" -gt 0 ]; then
    log "note: $d/error.log:"
    grep -iE -A3 'traceback|error|segfault|exit signal' "$d/error.log" | grep -v AH00046 | head -20 >&2 || true
  fi
done
FAILED=$(cat "${ALL_DIRS[@]/%//failed.txt}" 2>/dev/null || true)
DIRS=("${ALL_DIRS[@]}")   # cleanup removes them all (servers are already stopped)

# --- report ----------------------------------------------------------------------------------
col() {  # col ARRAY_NAME MODULE -> the values of the runs of MODULE
  local -n arr=$1; local r s=""
  for r in $(seq "$RUNS"); do s+="${arr[$2$r]} "; done
  echo "$s"
}
# shellcheck disable=SC2046
stat_of() { median $(col "$1" "$2"); }
mean_of() { "$PY" -c 'import sys, statistics; print(statistics.mean(float(x) for x in sys.argv[1:]))' $(col "$1" "$2"); }

echo
echo "application groups: 1 Apache child x $THREADS threads (event MPM), $SITES Django $DJANGO_VERSION sites, one group each"
echo "$RUNS fresh servers per module, alternating; per-run values, then median (= mean for 2 runs)"
for m in ours debian; do
  [ $m = ours ] && label=mod_wsgi-rs || label=$DEBIAN_LABEL
  for r in $(seq "$RUNS"); do
    k=$m$r
    awk -v l="$label run $r" -v ok="${R_NOK[$k]}" -v n="$SITES" -v a="${R_RSS1[$k]}" -v b="${R_RSS20[$k]}" \
        -v p="${R_PER[$k]}" -v md="${R_MED[$k]}" -v mx="${R_MAX[$k]}" -v f="${R_FIRST1[$k]}" -v w="${R_WARM[$k]}" 'BEGIN {
      printf "  %-26s sites OK %2d/%d  RSS1 %6.1f MiB  RSS%d %6.1f MiB  %5.2f MiB/group  new group median %6.1f ms max %6.1f ms  site01 first %6.1f ms  warm %5.2f ms\n",
        l, ok, n, a / 1024, n, b / 1024, p, md * 1000, mx * 1000, f * 1000, w * 1000
    }'
  done
done
echo
A_RSS1=$(stat_of R_RSS1 ours);   B_RSS1=$(stat_of R_RSS1 debian)
A_RSS20=$(stat_of R_RSS20 ours); B_RSS20=$(stat_of R_RSS20 debian)
A_PER=$(stat_of R_PER ours);     B_PER=$(stat_of R_PER debian)
A_MED=$(stat_of R_MED ours);     B_MED=$(stat_of R_MED debian)
A_MAX=$(stat_of R_MAX ours);     B_MAX=$(stat_of R_MAX debian)
A_FIRST=$(stat_of R_FIRST1 ours); B_FIRST=$(stat_of R_FIRST1 debian)
A_WARM=$(stat_of R_WARM ours);   B_WARM=$(stat_of R_WARM debian)
A_PERM=$(mean_of R_PER ours);    B_PERM=$(mean_of R_PER debian)
awk -v bl="$DEBIAN_LABEL" -v n="$SITES" \
    -v a1="$A_RSS1" -v b1="$B_RSS1" -v a20="$A_RSS20" -v b20="$B_RSS20" -v ap="$A_PER" -v bp="$B_PER" \
    -v apm="$A_PERM" -v bpm="$B_PERM" -v amd="$A_MED" -v bmd="$B_MED" -v amx="$A_MAX" -v bmx="$B_MAX" \
    -v af="$A_FIRST" -v bf="$B_FIRST" -v aw="$A_WARM" -v bw="$B_WARM" \
    -v atb="${TB[ours]:-0}" -v btb="${TB[debian]:-0}" -v ae="${ERRS[ours]:-0}" -v be="${ERRS[debian]:-0}" 'BEGIN {
  r = "%-34s%14s  %20s  %12s\n"
  printf r, "", "mod_wsgi-rs", bl, "ours/mod_wsgi"
  f = "%-34s%14.1f  %20.1f  %12.2f\n"
  printf f, "RSS after 1 group (MiB)", a1 / 1024, b1 / 1024, (b1 > 0 ? a1 / b1 : 0)
  printf f, "RSS after " n " groups (MiB)", a20 / 1024, b20 / 1024, (b20 > 0 ? a20 / b20 : 0)
  g = "%-34s%14.2f  %20.2f  %12.2f\n"
  printf g, "MiB per extra group (median)", ap, bp, (bp > 0 ? ap / bp : 0)
  printf g, "MiB per extra group (mean)", apm, bpm, (bpm > 0 ? apm / bpm : 0)
  printf f, "new-group first request, median ms", amd * 1000, bmd * 1000, (bmd > 0 ? amd / bmd : 0)
  printf f, "new-group first request, max ms", amx * 1000, bmx * 1000, (bmx > 0 ? amx / bmx : 0)
  printf f, "site01 first request ms", af * 1000, bf * 1000, (bf > 0 ? af / bf : 0)
  printf g, "warm request ms", aw * 1000, bw * 1000, (bw > 0 ? aw / bw : 0)
  printf "%-34s%14d  %20d\n", "Tracebacks in error logs", atb, btb
  printf "%-34s%14d  %20d\n", "other error-log lines (error etc.)", ae, be
}'
if [ -n "$FAILED" ]; then
  echo
  echo "failed requests:"
  printf '%s\n' "$FAILED"
fi
