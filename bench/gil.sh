#!/usr/bin/env bash
# Benchmark (not a test) of the GIL scheduler: requests/sec and p99 latency of ONE Apache child
# with BENCH_THREADS threads (event MPM), under wrk -t2 -c BENCH_CONNECTIONS, for
#   ours, auto            mod_wsgi-rs, WSGIPythonConcurrency auto
#   ours, fixed 2         mod_wsgi-rs, WSGIPythonConcurrency 2
#   ours, scheduler off   mod_wsgi-rs, WSGIPythonConcurrency off
#   Debian mod_wsgi       libapache2-mod-wsgi-py3 (/usr/lib/apache2/modules/mod_wsgi.so)
# and four workloads (issue 11: `auto` must reach 1.6x mod_wsgi on the first and never fall
# below 0.97 of `off` on any):
#   django page   a Django 3.2 page (bench/django_page: the default middleware of a new
#                 project, 20 rows from SQLite rendered by a template)
#   django 2x16   the same page in 2 children x BENCH_THREADS/2 threads
#   sleep 20 ms   time.sleep(0.02) with the GIL released, then b"ok" (a database call)
#   mixed pages   9 of 10 requests a fast page (a little Python), every 10th a slow one that
#                 waits 100 ms with the GIL released
# (BENCH_WORKLOADS picks some: "django sleep").
# Each variant/workload is its own Apache on its own port (the two modules share the name
# wsgi_module); all run at once but are measured one at a time: a warm-up per variant, then
# BENCH_ROUNDS rounds of all variants in turn; the medians are printed, with the N that `auto`
# settled on (mod_wsgi.process_metrics() at /__metrics__).
#
# Environment:
#   BENCH_THREADS=32        ThreadsPerChild / ThreadLimit / MaxRequestWorkers
#   BENCH_CONNECTIONS=32    wrk -c
#   BENCH_DURATION=10s      wrk -d per measurement
#   BENCH_ROUNDS=3          rounds of all variants
#   BENCH_WARMUP=5s         wrk -d of the warm-up per variant (auto adapts N during it)
#   BENCH_SKIP_BUILD=1      do not run scripts/build first
#   BENCH_KEEP=1            keep the temp dirs (configs, error logs, wrk.log) after the run
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
THREADS=${BENCH_THREADS:-32}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-5s}
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
DEBIAN_MODULE=$MODULES/mod_wsgi.so

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

# --- prerequisites ---------------------------------------------------------------------------
require_packages apache2 wrk libapache2-mod-wsgi-py3 curl python3-django
[ -x "$PY" ] || die "$PY not found"
build_module

DEBIAN_VERSION=$(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null | sed 's/-.*//;s/^\([0-9]*\.[0-9]*\).*/\1/' || true)
DEBIAN_LABEL="Debian mod_wsgi ${DEBIAN_VERSION:-?}"

DIRS=()
trap cleanup EXIT

# One temp dir shared by all servers: the module, the Django project (with its SQLite DB) and
# the sleep app.
APPS=$(mktemp -d "${TMPDIR:-/tmp}/bench-gil-apps.XXXXXX")
DIRS+=("$APPS")

# Apache maps the module and the engine from a private copy: scripts/build (cp -f) rewrites
# target/modules/*.so in place, and a rebuild during the run would crash the running children
# (SIGBUS/SIGSEGV) and every child forked after it.
mkdir "$APPS/modules"
cp "$OUR_MODULE" "$(dirname "$OUR_MODULE")"/mod_wsgi-engine-py*.so "$APPS/modules/"
OUR_MODULE_COPY=$APPS/modules/mod_wsgi.so

# --- the applications ------------------------------------------------------------------------
setup_django_page "$APPS/django" "$PY"
cat >"$APPS/sleep.wsgi" <<'EOF'
import json
import time


def application(environ, start_response):
    if environ.get('PATH_INFO') == '/__metrics__':
        import mod_wsgi
        body = json.dumps(mod_wsgi.process_metrics()).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    time.sleep(0.02)    # a database call: the GIL is released while waiting
    body = b"ok"
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
EOF
cat >"$APPS/mix.wsgi" <<'EOF'
import itertools
import json
import time

COUNTER = itertools.count()


def application(environ, start_response):
    if environ.get('PATH_INFO') == '/__metrics__':
        import mod_wsgi
        body = json.dumps(mod_wsgi.process_metrics()).encode()
    elif next(COUNTER) % 10 == 0:
        time.sleep(0.1)     # a slow page: a remote call, the GIL released
        body = b"slow"
    else:
        body = str(sum(i * i for i in range(300))).encode()     # a fast page
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
EOF
# Apache's children run as nobody when started as root: everything readable (the DB is made
# writable by setup_django_page).
chmod -R a+rX "$APPS"

declare -A SCRIPT=([django]=$APPS/django/benchsite/wsgi.py [django2]=$APPS/django/benchsite/wsgi.py
                   [sleep]=$APPS/sleep.wsgi [mix]=$APPS/mix.wsgi)
declare -A TITLE=([django]="django page" [django2]="django 2x$((THREADS / 2))" [sleep]="sleep 20 ms" [mix]="mixed pages")
declare -A CHILDREN_OF=([django]=1 [django2]=2 [sleep]=1 [mix]=1)
# auto / mod_wsgi (issue 11: 1.6 on the Django page); auto / off must be >= 0.97 everywhere.
declare -A TARGET=([django]=1.6 [django2]="" [sleep]="" [mix]="")
TARGET_OFF=0.97
read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-django django2 sleep mix}"

# --- servers ---------------------------------------------------------------------------------
VARIANTS=(auto fixed2 off debian)
declare -A LABEL=([auto]="ours, auto" [fixed2]="ours, fixed 2" [off]="ours, scheduler off" [debian]=$DEBIAN_LABEL)
declare -A DIRECTIVE=([auto]="WSGIPythonConcurrency auto" [fixed2]="WSGIPythonConcurrency 2"
                      [off]="WSGIPythonConcurrency off" [debian]="")
declare -A MODULE_OF=([auto]=$OUR_MODULE_COPY [fixed2]=$OUR_MODULE_COPY [off]=$OUR_MODULE_COPY
                      [debian]=$DEBIAN_MODULE)

# make_server VARIANT WORKLOAD -> prints "dir port"
make_server() {
  local variant=$1 workload=$2 dir port loglevel="warn"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-gil-$workload-$variant.XXXXXX")
  chmod 755 "$dir"
  port=$(free_port)
  local children=${CHILDREN_OF[$workload]} threads=$THREADS
  [ "$children" -gt 1 ] && threads=$((THREADS / children))
  # Ours logs each change of the auto tuner at debug level (one line per change, not per request).
  [ "$variant" != debian ] && loglevel="warn wsgi:debug"
  cat >"$dir/httpd.conf" <<EOF
$(THREADS=$threads CHILDREN=$children httpd_base_conf "$dir" "$port" "${MODULE_OF[$variant]}" "$loglevel")
# Unlimited keep-alive requests: otherwise Apache closes each connection after 100 requests and
# wrk reports those closes as socket read errors (same for all variants).
KeepAlive On
MaxKeepAliveRequests 0
<Directory $APPS>
    Require all granted
</Directory>
${DIRECTIVE[$variant]}
WSGIScriptAlias / ${SCRIPT[$workload]}
EOF
  chmod 644 "$dir"/*
  echo "$dir $port"
}

declare -A DIR URL
for w in "${WORKLOADS[@]}"; do
  for v in "${VARIANTS[@]}"; do
    out=$(make_server "$v" "$w"); read -r d port <<<"$out"
    DIRS+=("$d"); DIR[$w.$v]=$d; URL[$w.$v]=http://127.0.0.1:$port/
  done
done
for w in "${WORKLOADS[@]}"; do
  for v in "${VARIANTS[@]}"; do
    log "starting $w / ${LABEL[$v]} (${DIR[$w.$v]})"
    start_server "${DIR[$w.$v]}" "${URL[$w.$v]}"
  done
done

# --- checking the responses ------------------------------------------------------------------
# fetch URL -> the body; dies unless the status is 200
fetch() {
  local out code
  out=$(curl -s --max-time 10 -w '\n%{http_code}' "$1") || die "curl failed against $1"
  code=${out##*$'\n'}
  [ "$code" = 200 ] || die "status $code from $1: ${out%$'\n'*}"
  printf '%s' "${out%$'\n'*}"
}

reference=""
for v in "${VARIANTS[@]}"; do
  for w in "${WORKLOADS[@]}"; do
    body=$(fetch "${URL[$w.$v]}")
    case $w in
      django*)
        for i in $(seq -w 1 20); do
          [[ $body == *"<li>item-$i: 1$i</li>"* ]] || die "item-$i missing from the $w page of ${LABEL[$v]}: $body"
        done
        [ -z "$reference" ] && reference=$body
        [ "$body" = "$reference" ] || die "the $w page of ${LABEL[$v]} differs from the first Django page" ;;
      sleep) [ "$body" = ok ] || die "unexpected body from the sleep app of ${LABEL[$v]}: $(printf %q "$body")" ;;
      mix) [[ $body =~ ^(slow|[0-9]+)$ ]] || die "unexpected body from the mixed app of ${LABEL[$v]}: $(printf %q "$body")" ;;
    esac
  done
done
log "all variants serve every workload (the Django page: 200, 20 items, identical)"

# metrics WORKLOAD VARIANT -> "N peak_active peak_queued mode" from mod_wsgi.process_metrics(),
# or "? ? ? ?" (with the reason on stderr) when it cannot be had.
metrics() {
  local body
  if body=$(curl -sf --max-time 10 "${URL[$1.$2]}__metrics__") && "$PY" -c '
import json, sys
m = json.loads(sys.argv[1])
print(m["python_concurrency"], m["python_peak_active"], m["python_peak_queued"], m["python_concurrency_mode"])' "$body"; then
    return 0
  fi
  log "warning: no metrics from ${URL[$1.$2]}__metrics__ (${body:-no response})"
  echo "? ? ? ?"
}

# --- measuring -------------------------------------------------------------------------------
declare -A RPS P99 MED_RPS MED_P99 CHOSEN
NOTES=()
for w in "${WORKLOADS[@]}"; do
  WRK_LOG=${DIR[$w.auto]}/wrk.log
  log "$w: warm-up ($WARMUP per variant)"
  for v in "${VARIANTS[@]}"; do run_wrk "${URL[$w.$v]}" "$WARMUP" >/dev/null; done
  read -r n _ <<<"$(metrics "$w" auto)"
  log "$w: after the warm-up, auto is at N=$n"
  for r in $(seq "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
      out=$(run_wrk "${URL[$w.$v]}" "$DURATION")
      read -r rps p99 errs bad <<<"$out"
      RPS[$w.$v]+="$rps "
      P99[$w.$v]+="$p99 "
      log "$w round $r/$ROUNDS ${LABEL[$v]}: $rps req/s, p99 $p99 ms, socket errors $errs, non-2xx $bad"
      if [ "$errs" -gt 0 ] || [ "$bad" -gt 0 ]; then
        NOTES+=("$w, ${LABEL[$v]}, round $r: $errs socket errors, $bad non-2xx/3xx responses")
      fi
    done
  done
  for v in "${VARIANTS[@]}"; do
    # shellcheck disable=SC2086
    MED_RPS[$w.$v]=$(median ${RPS[$w.$v]})
    # shellcheck disable=SC2086
    MED_P99[$w.$v]=$(median ${P99[$w.$v]})
  done
  read -r n peak_active peak_queued mode <<<"$(metrics "$w" auto)"
  [ "$mode" = auto ] || [ "$mode" = "?" ] || log "warning: $w: python_concurrency_mode is '$mode', not auto"
  CHOSEN[$w]="auto chose N=$n (peak active $peak_active, peak queued $peak_queued)"
done

# --- error logs ------------------------------------------------------------------------------
# AH00484 ("server reached MaxRequestWorkers") is expected with -c >= threads; the auto tuner's
# debug lines are summarised, not shown.
TRACEBACKS=()
for w in "${WORKLOADS[@]}"; do
  for v in "${VARIANTS[@]}"; do
    f=${DIR[$w.$v]}/error.log
    TRACEBACKS+=("$(printf '%-34s %4s Traceback, %4s child crashes (exit signal)' "$w, ${LABEL[$v]}:" \
                 "$(grep -c 'Traceback' "$f" 2>/dev/null || true)" "$(grep -c 'exit signal' "$f" 2>/dev/null || true)")")
    errs=$(grep -iE 'traceback|error|crit|alert|emerg|signal|segfault' "$f" 2>/dev/null \
           | grep -v -e AH00484 -e 'WSGIPythonConcurrency auto:' || true)
    if [ -n "$errs" ]; then
      log "note: $w / ${LABEL[$v]}: $f mentions errors ($(printf '%s\n' "$errs" | wc -l) lines):"
      printf '%s\n' "$errs" | head -10 >&2
    fi
  done
  steps=$(grep -o 'WSGIPythonConcurrency auto: [0-9]* -> [0-9]*' "${DIR[$w.auto]}/error.log" 2>/dev/null \
          | awk '{ print $NF }' | tr '\n' ' ' || true)
  log "$w: the auto tuner changed N $(wc -w <<<"$steps") times; N after each change (last 40): $(tr ' ' '\n' <<<"$steps" | grep . | tail -40 | tr '\n' ' ')"
done

# --- report ----------------------------------------------------------------------------------
echo
echo "one child x $THREADS threads (django 2x: two children x $((THREADS / 2))), wrk -t2 -c$CONNECTIONS, $ROUNDS rounds of $DURATION (medians)"
for w in "${WORKLOADS[@]}"; do
  printf '%-22s%10s  %8s\n' "${TITLE[$w]}" "req/s" "p99 ms"
  for v in "${VARIANTS[@]}"; do
    printf '%-22s%10.1f  %8.2f\n' "${LABEL[$v]}" "${MED_RPS[$w.$v]}" "${MED_P99[$w.$v]}"
  done
  printf '  %-28s%s%s\n' "ours auto / mod_wsgi:" "$(ratio "${MED_RPS[$w.auto]}" "${MED_RPS[$w.debian]}")" "${TARGET[$w]:+   (target >= ${TARGET[$w]})}"
  printf '  %-28s%s   (target >= %s)\n' "ours auto / ours off:" "$(ratio "${MED_RPS[$w.auto]}" "${MED_RPS[$w.off]}")" "$TARGET_OFF"
  printf '  %-28s%s\n' "ours fixed 2 / mod_wsgi:" "$(ratio "${MED_RPS[$w.fixed2]}" "${MED_RPS[$w.debian]}")"
  printf '  %-28s%s\n' "ours off / mod_wsgi:" "$(ratio "${MED_RPS[$w.off]}" "${MED_RPS[$w.debian]}")"
  printf '  %s\n' "${CHOSEN[$w]}"
done
if [ ${#NOTES[@]} -gt 0 ]; then
  echo "wrk errors:"
  printf '  %s\n' "${NOTES[@]}"
fi
echo "error logs (during the measurements):"
printf '  %s\n' "${TRACEBACKS[@]}"
