# Helpers shared by the benchmarks (bench/*.sh); sourced, not run.
# The sourcing script sets `set -euo pipefail` and these variables before calling them:
#   REPO         the repository root
#   PY           the Python used for small helpers (/usr/bin/python3)
#   HTTPD        the apache2 binary
#   MODULES      Apache's module directory (/usr/lib/apache2/modules)
#   OUR_MODULE   target/modules/mod_wsgi.so
#   CONNECTIONS  wrk -c
#   WRK_LOG      file that collects every wrk output
#   DIRS         array of server dirs (each may hold httpd.pid) that cleanup stops and removes
# and installs the clean-up with `trap cleanup EXIT`.

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

# install_packages PKG... : installs the missing Debian packages (root only); no-op without args.
install_packages() {
  [ $# -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages: $* (run as root to install them)"
  log "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y "$@" >&2; then
    apt-get update >&2
    apt-get install -y "$@" >&2
  fi
}

# require_packages PKG... : installs the Debian packages of PKG... that are missing, each
# known by what it puts on the machine: apache2 ($HTTPD), apache2-dev (apxs),
# libapache2-mod-wsgi-py3 ($MODULES/mod_wsgi.so), python3-django (Debian's Django),
# python3-venv (ensurepip for $PY); any other by the command of its name.
require_packages() {
  local need=() p
  for p in "$@"; do
    case $p in
      apache2) [ -x "$HTTPD" ] || need+=("$p") ;;
      apache2-dev) command -v apxs >/dev/null 2>&1 || need+=("$p") ;;
      libapache2-mod-wsgi-py3) [ -e "$MODULES/mod_wsgi.so" ] || need+=("$p") ;;
      python3-django) [ -d /usr/lib/python3/dist-packages/django ] || need+=("$p") ;;
      python3-venv) "$PY" -c 'import ensurepip' 2>/dev/null || need+=("$p") ;;
      *) command -v "$p" >/dev/null 2>&1 || need+=("$p") ;;
    esac
  done
  install_packages "${need[@]}"
}

# build_module : runs scripts/build unless BENCH_SKIP_BUILD=1, then checks OUR_MODULE exists.
build_module() {
  local build_out
  if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building (scripts/build)"
    if ! build_out=$("$REPO/scripts/build" 2>&1); then
      printf '%s\n' "$build_out" >&2
      die "scripts/build failed"
    fi
  fi
  [ -f "$OUR_MODULE" ] || die "$OUR_MODULE not found (run scripts/build)"
}

# cleanup : stops the Apaches started from DIRS (by pidfile only) and removes DIRS.
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

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server DIR URL : starts the Apache of DIR/httpd.conf and waits for a 200 from URL
# (printing the error log and exiting on failure).
start_server() {
  local dir=$1 url=$2
  "$HTTPD" -f "$dir/httpd.conf" -k start >&2 || { cat "$dir/error.log" >&2 2>/dev/null || true; die "apache2 failed to start ($dir)"; }
  wait_ready "$dir" "$url"
}

# wait_ready DIR URL : waits (up to 20 s) for a 200 from URL, the server started from DIR; on
# failure prints DIR/error.log and exits.
wait_ready() {
  local dir=$1 url=$2 code=""
  for _ in $(seq 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  echo "--- $dir/error.log ---" >&2
  cat "$dir/error.log" >&2 2>/dev/null || true
  die "no 200 from $url within 20s (last status: ${code:-none})"
}

# run_wrk URL DURATION -> prints "req_per_sec p99_ms socket_errors non_2xx_3xx"
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
      printf "%s %s %d %d\n", rps, p99, errs, bad
    }' || die "could not parse wrk output for $1"
}

# setup_django_page DIR PYTHON : copies bench/django_page to DIR and, with PYTHON, makes its
# SQLite DB and fills it (20 items); the DB and its directory are left writable by Apache's user
# (children and daemons run as nobody when started as root; the page only reads).
setup_django_page() {
  local dir=$1 python=$2
  cp -r "$REPO/bench/django_page" "$dir"
  mkdir "$dir/data"
  log "setting up the Django project ($dir): migrate, 20 items"
  (
    cd "$dir"
    "$python" manage.py makemigrations items -v0
    "$python" manage.py migrate -v0
    "$python" manage.py shell -c 'import items.populate'
  ) >&2 || die "Django set-up failed"
  chmod 777 "$dir/data"
  chmod 666 "$dir/data/db.sqlite3"
}

median() { "$PY" -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# med "v1 v2 ..." -> median of the words of one string (the samples scripts collect), or ""
# when there are none.
med() {
  [ -n "${1// /}" ] || { echo ""; return 0; }
  # shellcheck disable=SC2086
  median $1
}

# httpd_base_conf DIR PORT MODULE [LOGLEVEL]: what every bench server's httpd.conf starts with:
# its paths in DIR, 127.0.0.1:PORT, one event-MPM child with $THREADS threads (CHILDREN=N:
# N children, all kept), the modules (MODULE as wsgi_module), and User nobody when run as root.
# Each script appends its own part.
httpd_base_conf() {
  local dir=$1 port=$2 module=$3 loglevel=${4:-warn} user="" children=${CHILDREN:-1} min_spare=1
  [ "$children" -gt 1 ] && min_spare=$((THREADS * children))
  [ "$(id -u)" -eq 0 ] && user=$'User nobody\nGroup nogroup'
  cat <<CONF
ServerRoot $dir
DefaultRuntimeDir $dir
PidFile $dir/httpd.pid
ErrorLog $dir/error.log
LogLevel $loglevel
Listen 127.0.0.1:$port
ServerName localhost
DocumentRoot $dir
$user
LoadModule mpm_event_module $MODULES/mod_mpm_event.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule alias_module $MODULES/mod_alias.so
LoadModule wsgi_module $module
StartServers $children
ServerLimit $children
ThreadsPerChild $THREADS
ThreadLimit $THREADS
MaxRequestWorkers $((THREADS * children))
MinSpareThreads $min_spare
MaxSpareThreads $((THREADS * children))
CONF
}

# child_pid PARENT -> the PID of the (single) Apache child of PARENT.
child_pid() {
  local parent=$1 f stat rest ppid kids=()
  for f in /proc/[0-9]*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    rest=${stat##*) }            # fields after "(comm) "
    read -r _ ppid _ <<<"$rest"
    [ "$ppid" = "$parent" ] && kids+=("${f//[^0-9]/}")
  done
  [ "${#kids[@]}" -eq 1 ] || die "expected 1 child of apache2 $parent, found ${#kids[@]}: ${kids[*]}"
  echo "${kids[0]}"
}

# cpu_ticks PID -> the CPU time (user + system, clock ticks) process PID has used: what a
# request costs it, a steadier figure than the rate when other tenants share the machine.
# Fails (prints nothing) when the process is gone.
cpu_ticks() {
  local stat; local -a f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a f <<<"${stat##*) }"
  [ "${#f[@]}" -ge 13 ] || return 1
  echo $((f[11] + f[12]))
}

# machine_ticks -> "busy total": the whole machine's CPU time (clock ticks, all cores) from
# /proc/stat, busy (everything but idle and iowait) and in all; two readings give how busy
# the cores were in between.
machine_ticks() {
  local _cpu user nice system idle iowait irq softirq steal _rest
  read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# cores_begin PID ; (a wrk run) ; cores_end PID REQ_PER_S SECONDS -> "us_per_request cores busy%"
# Where the cores went during a measurement: the CPU time process PID (Apache's child) spent
# per request, how many cores it kept busy, and how busy the whole machine was (wrk, other
# tenants). A ratio of two rates is bounded by these: a child that keeps 1.15 cores busy
# with one GIL can gain at most 2 / 1.15 on two cores.
cores_begin() {
  CORES_CHILD0=$(cpu_ticks "$1") || die "process $1 (Apache's child) is gone"
  read -r CORES_BUSY0 CORES_ALL0 <<<"$(machine_ticks)"
}
# Prints nothing (and fails) when a figure cannot be had (the child gone, a bad duration):
# callers check for an empty answer, as a failure inside $(...) does not stop the script.
cores_end() {
  local busy1 all1 child1
  read -r busy1 all1 <<<"$(machine_ticks)" || return 1
  child1=$(cpu_ticks "$1") || return 1
  [ -n "$child1" ] && [ -n "$CORES_CHILD0" ] && [ "$child1" -ge "$CORES_CHILD0" ] || return 1
  "$PY" -c 'import sys, os
rps, child, busy, total, tick = (float(v) for v in sys.argv[1:6])
d = sys.argv[6]
dur = float(d[:-1]) * {"s": 1, "m": 60, "h": 3600}[d[-1]] if d[-1:] in ("s", "m", "h") else float(d)
n = os.cpu_count()
print("%.0f %.2f %.0f" % (child * tick / (rps * dur) if rps else 0, child / (total / n) if total else 0, 100 * busy / total if total else 0))' \
    "$2" "$((child1 - CORES_CHILD0))" "$((busy1 - CORES_BUSY0))" "$((all1 - CORES_ALL0))" "$((1000000 / $(getconf CLK_TCK)))" "$3"
}

# cores_record KEY PID REQ_PER_S DURATION : cores_end for PID, its figures appended to the
# caller's associative arrays CPU_PER, CORES and BUSY under KEY (medians are taken of them),
# and CORES_LINE set to them in words for the log. Stops the script when they cannot be had.
cores_record() {
  local per cores busy
  read -r per cores busy <<<"$(cores_end "$2" "$3" "$4")"
  [ -n "$busy" ] || die "no CPU figures for $1: is its child (pid $2) gone?"
  CPU_PER[$1]+=" $per"; CORES[$1]+=" $cores"; BUSY[$1]+=" $busy"
  CORES_LINE="child CPU $per us/request on $cores cores, machine $busy% busy"
}

# round_order ROUND NAME... -> the names in the order to measure them in round ROUND (from 1):
# as given in odd rounds, reversed in even ones, so that no server always follows the same
# one and neighbours stay neighbours.
round_order() {
  local r=$1; shift
  local names=("$@") i
  for i in $(seq 0 $(($# - 1))); do
    if [ $((r % 2)) = 1 ]; then echo "${names[$i]}"; else echo "${names[$(($# - 1 - i))]}"; fi
  done
}

# ratio A B -> A / B to two decimals, "-" when either is missing or B is not above 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b <= 0) printf "-"; else printf "%.2f", a / b }'; }

# round_ratios "A samples" "B samples" -> each round's own A/B (measured seconds apart, so a
# change in the machine's load hits both), then their median.
round_ratios() {
  "$PY" -c 'import sys, statistics
a, b = sys.argv[1].split(), sys.argv[2].split()
r = [float(x) / float(y) for x, y in zip(a, b) if float(y) > 0]
print(" ".join("%.2f" % v for v in r), "(median %.2f)" % statistics.median(r) if r else "-")' "$1" "$2"
}

# make_venv VERSION DIR : a venv of /opt/mod_wsgi-rs/python/VERSION (made by scripts/pythons)
# with mod_wsgi 6.1.1 (built by pip against Debian's Apache) and Django 4.2, made (or brought
# to mod_wsgi 6.1.1) when missing.
make_venv() {
  if [ ! -x "$2/bin/mod_wsgi-express" ] || ! "$2/bin/python" -c 'import django' 2>/dev/null \
    || [ "$("$2/bin/python" -c 'import importlib.metadata as m; print(m.version("mod_wsgi"))' 2>/dev/null)" != 6.1.1 ]; then
    [ -x "/opt/mod_wsgi-rs/python/$1/bin/python$1" ] && [ -f "$REPO/target/modules/mod_wsgi-engine-py$1.so" ] \
      || die "no Python $1 engine: run scripts/pythons $1"
    log "making $2: pip install mod_wsgi 'django<5' (builds mod_wsgi against Debian's Apache)"
    "/opt/mod_wsgi-rs/python/$1/bin/python$1" -m venv "$2" >&2 || die "cannot create $2"
    "$2/bin/pip" install -q 'mod_wsgi==6.1.1' 'django<5' >&2 || die "pip install mod_wsgi django failed"
  fi
}

# make_hello_server PREFIX MODULE [EXTRA] -> prints "dir port": a new server directory
# (mktemp PREFIX.XXXXXX) holding the hello-world app at /hello, Apache's own static copy of its
# body at /static/hello.txt, and an httpd.conf (httpd_base_conf with MODULE, unlimited
# keep-alive, then EXTRA with @DIR@ replaced by the directory). Not started.
#
# Callers run it in a command substitution, where `set -e` does not hold: every step checks
# its own failure, and nothing is written before the directory is known to exist (an empty
# one would put the files in / and chmod what is there).
make_hello_server() {
  local prefix=$1 module=$2 extra=${3:-} dir port
  local base
  dir=$(mktemp -d "${TMPDIR:-/tmp}/$prefix.XXXXXX") || return 1
  [ -n "$dir" ] && [ -d "$dir" ] || return 1
  # From here a failure removes the directory (known to be a new one) and fails.
  if ! { chmod 755 "$dir" && port=$(free_port) && base=$(httpd_base_conf "$dir" "$port" "$module"); }; then
    rm -rf "$dir"; return 1
  fi
  cat >"$dir/hello.wsgi" <<'EOF'
def application(environ, start_response):
    body = b"Hello World!\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
EOF
  [ $? -eq 0 ] || { rm -rf "$dir"; return 1; }
  printf 'Hello World!\n' >"$dir/hello.txt" || { rm -rf "$dir"; return 1; }
  cat >"$dir/httpd.conf" <<EOF
$base
# Unlimited keep-alive requests: otherwise Apache closes each connection after 100 requests and
# wrk reports those closes as socket read errors (the same for every server measured).
KeepAlive On
MaxKeepAliveRequests 0
<Directory $dir>
    Require all granted
</Directory>
${extra//@DIR@/$dir}
WSGIScriptAlias /hello $dir/hello.wsgi
Alias /static/hello.txt $dir/hello.txt
EOF
  [ $? -eq 0 ] || { rm -rf "$dir"; return 1; }
  chmod 644 "$dir/hello.wsgi" "$dir/hello.txt" "$dir/httpd.conf" || { rm -rf "$dir"; return 1; }
  echo "$dir $port"
}

# instructions MODULE EXTRA N: sets IR_ALL and IR_HANDLER to the instructions callgrind counted
# for an `apache2 -X` with MODULE as wsgi_module that served exactly N hello requests (one
# keep-alive connection) with EXTRA configuration (@DIR@: its directory): the whole process's,
# and those of our request handler (inclusive; the reporter thread's work goes with time,
# which valgrind stretches some 50-fold, so the handler's is the per-request cost; 0 for
# another module). Runs in this shell (no subshell), so that a failure stops the script; the
# caller keeps a PIDS array, which its EXIT trap kills, and DIRS (cleanup).
# With WSGITelemetryService in EXTRA, a receiver drains @DIR@/telemetry.sock.
instructions() {
  local module=$1 extra=$2 n=$3 out dir port pid receiver="" args=()
  out=$(make_hello_server bench-ir "$module" "$extra")
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
  # callgrind writes its counts when the process exits. (Debian's mod_wsgi 4.9 never exits
  # on SIGTERM under valgrind: measured here it would hang.)
  for _ in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    die "apache2 -X with $module did not exit within 120 s of SIGTERM under callgrind ($dir)"
  fi
  wait "$pid" 2>/dev/null || true
  if [ -n "$receiver" ]; then kill "$receiver" 2>/dev/null || true; wait "$receiver" 2>/dev/null || true; fi
  # Reaped: their numbers may be another process's by the time the EXIT trap runs.
  local kept=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || [ "$p" = "$receiver" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
  IR_ALL=$(grep -o 'summary: [0-9]*' "$dir/callgrind.out" | awk '{ s += $2 } END { print s + 0 }')
  IR_HANDLER=$(callgrind_annotate --inclusive=yes "$dir/callgrind.out" 2>/dev/null \
    | awk '/:mod_wsgi::module::handler::handler / { gsub(",", "", $1); if ($1 > m) m = $1 } END { print m + 0 }')
  [ "$IR_ALL" -gt 0 ] || die "no instruction counts in $dir/callgrind.out (BENCH_KEEP=1 keeps it)"
  [ "$module" != "$OUR_MODULE" ] || [ "$IR_HANDLER" -gt 0 ] || die "no count for our handler in $dir/callgrind.out (BENCH_KEEP=1 keeps it)"
}

# instructions_per_request MODULE EXTRA : sets PER_ALL and PER_HANDLER to what one request
# costs, (I(N2) - I(N1)) / (N2 - N1) of `instructions` run with N1 and then N2 requests (the
# caller's N1 < N2), so that start-up and shutdown cancel out.
instructions_per_request() {
  local all1 handler1
  instructions "$1" "$2" "$N1"; all1=$IR_ALL handler1=$IR_HANDLER
  instructions "$1" "$2" "$N2"
  PER_ALL=$(awk -v a="$all1" -v b="$IR_ALL" -v n="$((N2 - N1))" 'BEGIN { printf "%.1f", (b - a) / n }')
  PER_HANDLER=$(awk -v a="$handler1" -v b="$IR_HANDLER" -v n="$((N2 - N1))" 'BEGIN { printf "%.1f", (b - a) / n }')
}

# stop_pids_and_cleanup : the EXIT trap of a script that runs `instructions`: kills what is
# left in PIDS, then cleanup.
stop_pids_and_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  cleanup
}
