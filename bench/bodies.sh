#!/usr/bin/env bash
# Benchmark (not a test): large request and response bodies through ONE Apache child (event MPM,
# 1 child x 8 threads, EnableSendfile On, LimitRequestBody 0) for
#   ours      mod_wsgi-rs (target/modules/mod_wsgi.so, loaded from a private copy)
#   mod_wsgi  Debian's mod_wsgi (libapache2-mod-wsgi-py3, /usr/lib/apache2/modules/mod_wsgi.so)
# Transfers of BENCH_SIZE_MB MiB (a file of random bytes generated once in the temp dir):
#   upload                 POST of the file (curl -T: streamed, Content-Length known); the app reads
#                          wsgi.input with read(65536) until b"", hashes it with hashlib.sha256 and
#                          returns the hex digest, which must equal sha256sum's
#   iterable download      the app yields the same 64 KiB bytes block repeatedly (Content-Length set)
#   file_wrapper download  the app returns wsgi.file_wrapper(open(file, 'rb')) (Content-Length set)
#   static                 Apache serves the file itself (Alias /static/big.bin)
# Each transfer is timed by curl (MB/s = MiB / time_total) and its size and status are checked.
# Memory: the Apache child's (the process whose parent is the pidfile's PID) VmHWM before and after
# each transfer, and its VmRSS sampled every 0.1 s during it; reported as the largest growth over
# the rounds: VmHWM delta / (max sampled VmRSS - VmRSS before), in MiB. VmHWM cannot be reset, so
# its delta is 0 once an earlier transfer has reached the same peak; the sampled value is not.
# The two servers run side by side and are measured one transfer at a time, alternately (per
# round and transfer kind: ours, then mod_wsgi); medians over the rounds are printed. After the
# rounds, one more (untimed) file_wrapper download per server is piped into sha256sum.
#
# Environment:
#   BENCH_SIZE_MB=1024              size of the body, MiB (the temp dir needs ~2x that free)
#   BENCH_ROUNDS=2                  rounds of all transfers on both servers
#   BENCH_DEBIAN_WSGI_SENDFILE=1    add "WSGIEnableSendfile On" to mod_wsgi's config (its default
#                                   is Off: wsgi.file_wrapper then reads the file through Python)
#   BENCH_SKIP_BUILD=1              do not run scripts/build first
#   BENCH_KEEP=1                    keep the temp dirs (configs, error logs; not the big file)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MB=${BENCH_SIZE_MB:-1024}
ROUNDS=${BENCH_ROUNDS:-2}
DEBIAN_WSGI_SENDFILE=${BENCH_DEBIAN_WSGI_SENDFILE:-0}
THREADS=8
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
DEBIAN_MODULE=$MODULES/mod_wsgi.so
CURL_TIMEOUT=900

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_MB must be a positive integer (got '$SIZE_MB')"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer (got '$ROUNDS')"
SIZE=$((SIZE_MB * 1048576))

# --- prerequisites ---------------------------------------------------------------------------
require_packages apache2 wrk libapache2-mod-wsgi-py3 curl
[ -x "$PY" ] || die "$PY not found"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found"
build_module

DEBIAN_VERSION=$(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null | sed 's/-.*//;s/^\([0-9]*\.[0-9]*\).*/\1/' || true)
DEBIAN_LABEL="mod_wsgi ${DEBIAN_VERSION:-?}"

DIRS=()
BIG=""
# The big file goes whatever BENCH_KEEP says; cleanup (bench/lib.sh) stops the servers.
bodies_cleanup() {
  [ -n "$BIG" ] && rm -f "$BIG"
  cleanup
}
trap bodies_cleanup EXIT

# One temp dir shared by both servers: the module copy, the application and the big file.
APPS=$(mktemp -d "${TMPDIR:-/tmp}/bench-bodies-apps.XXXXXX")
DIRS+=("$APPS")
chmod 755 "$APPS"

avail_kib=$(df -Pk "$APPS" | awk 'NR == 2 { print $4 }')
need_kib=$((2 * SIZE_MB * 1024))
[ "$avail_kib" -ge "$need_kib" ] ||
  die "not enough free space in $APPS: $((avail_kib / 1024)) MiB free, ~$((need_kib / 1024)) MiB needed (set TMPDIR or BENCH_SIZE_MB)"

# Apache maps the module and the engine from a private copy: scripts/build rewrites
# target/modules while we run, and a rebuild must not change what the children have mapped.
mkdir "$APPS/modules"
cp "$OUR_MODULE" "$(dirname "$OUR_MODULE")"/mod_wsgi-engine-py*.so "$APPS/modules/"
chmod 755 "$APPS/modules"; chmod 644 "$APPS/modules"/*
OUR_MODULE_COPY=$APPS/modules/mod_wsgi.so

# --- the big file and the application --------------------------------------------------------
BIG=$APPS/big.bin
log "generating $SIZE_MB MiB of random bytes ($BIG)"
head -c "$SIZE" /dev/urandom >"$BIG"
chmod 644 "$BIG"
[ "$(stat -c %s "$BIG")" = "$SIZE" ] || die "$BIG is not $SIZE bytes"
EXPECTED_SHA=$(sha256sum "$BIG" | cut -d' ' -f1)
log "sha256 $EXPECTED_SHA"

cat >"$APPS/bodies.wsgi" <<EOF
import hashlib
import os

BIG = '$BIG'
SIZE = $SIZE
BLOCK = bytes(range(256)) * 256     # 64 KiB, made once


def chunks(n):
    full, rest = divmod(n, len(BLOCK))
    for _ in range(full):
        yield BLOCK
    if rest:
        yield BLOCK[:rest]


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/upload':
        h = hashlib.sha256()
        n = 0
        read = environ['wsgi.input'].read
        while True:
            block = read(65536)
            if not block:
                break
            h.update(block)
            n += len(block)
        body = ('%s %d %s\n' % (h.hexdigest(), n, environ.get('CONTENT_LENGTH', '-'))).encode()
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    if path == '/iter':
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(SIZE))])
        return chunks(SIZE)
    if path == '/file':
        f = open(BIG, 'rb')
        size = os.fstat(f.fileno()).st_size
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(size))])
        return environ['wsgi.file_wrapper'](f, 65536)
    body = b'ok\n'
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
EOF
chmod 644 "$APPS/bodies.wsgi"

# --- servers ---------------------------------------------------------------------------------
# make_server MODULE_PATH TAG EXTRA_DIRECTIVES -> prints "dir port"
make_server() {
  local module=$1 tag=$2 extra=$3 dir port
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-bodies-$tag.XXXXXX")
  chmod 755 "$dir"
  port=$(free_port)
  cat >"$dir/httpd.conf" <<EOF
$(httpd_base_conf "$dir" "$port" "$module")
EnableSendfile On
LimitRequestBody 0
<Directory $APPS>
    Require all granted
</Directory>
$extra
WSGIScriptAlias /app $APPS/bodies.wsgi
Alias /static/big.bin $BIG
EOF
  chmod 644 "$dir"/*
  echo "$dir $port"
}

SERVERS=(ours debian)
declare -A LABEL=([ours]="mod_wsgi-rs" [debian]=$DEBIAN_LABEL)
declare -A DIR BASE PARENT
debian_extra=""
[ "$DEBIAN_WSGI_SENDFILE" = 1 ] && debian_extra="WSGIEnableSendfile On"
out=$(make_server "$OUR_MODULE_COPY" ours ""); read -r DIR[ours] port <<<"$out"
BASE[ours]=http://127.0.0.1:$port
out=$(make_server "$DEBIAN_MODULE" debian "$debian_extra"); read -r DIR[debian] port <<<"$out"
BASE[debian]=http://127.0.0.1:$port
DIRS+=("${DIR[ours]}" "${DIR[debian]}")

# status_kib PID FIELD -> the value (kB) of FIELD (VmRSS, VmHWM) in /proc/PID/status, or "".
status_kib() {
  local k v _
  while read -r k v _; do
    [ "$k" = "$2:" ] && { echo "$v"; return 0; }
  done 2>/dev/null <"/proc/$1/status" || true
  echo ""
}

for s in "${SERVERS[@]}"; do
  log "starting ${LABEL[$s]} (${DIR[$s]})"
  # The ready URL is the WSGI app itself: the interpreter and the script are loaded before any
  # memory is measured.
  start_server "${DIR[$s]}" "${BASE[$s]}/app/ready"
  PARENT[$s]=$(cat "${DIR[$s]}/httpd.pid")
done
declare -A CHILD
for s in "${SERVERS[@]}"; do
  CHILD[$s]=$(child_pid "${PARENT[$s]}")
  log "${LABEL[$s]}: apache2 ${PARENT[$s]}, child ${CHILD[$s]}, VmRSS $(( $(status_kib "${CHILD[$s]}" VmRSS) / 1024 )) MiB"
done

# --- measuring -------------------------------------------------------------------------------
KINDS=(upload iter file static)
declare -A TITLE=([upload]="upload" [iter]="iterable download" [file]="file_wrapper download" [static]="static")
declare -A PATH_OF=([upload]=/app/upload [iter]=/app/iter [file]=/app/file [static]=/static/big.bin)
declare -A MBS HWM_MAX RSS_MAX
FAILURES=()

# sampler PID STOPFILE OUTFILE : the largest VmRSS (kB) of PID, sampled every 0.1 s until
# STOPFILE exists (and once more after), written to OUTFILE.
sampler() {
  local pid=$1 stop=$2 outf=$3 max=0 v
  while :; do
    v=$(status_kib "$pid" VmRSS)
    [ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v
    [ -e "$stop" ] && break
    sleep 0.1
  done
  echo "$max" >"$outf"
}

# transfer SERVER KIND ROUND : one timed transfer with the memory sampled; records MB/s and growth.
transfer() {
  local s=$1 kind=$2 r=$3 url child hwm0 rss0 hwm1 spid stop outf out code size t rssmax body
  local hwm_d rss_d mbs
  url=${BASE[$s]}${PATH_OF[$kind]}
  child=${CHILD[$s]}
  kill -0 "$child" 2>/dev/null || die "${LABEL[$s]}: the Apache child $child is gone"
  hwm0=$(status_kib "$child" VmHWM); rss0=$(status_kib "$child" VmRSS)
  stop=${DIR[$s]}/sampler.stop; outf=${DIR[$s]}/sampler.out
  rm -f "$stop" "$outf"
  sampler "$child" "$stop" "$outf" &
  spid=$!
  if [ "$kind" = upload ]; then
    # -T streams the file (--data-binary @file would read it all into curl's memory first);
    # -X POST makes it a POST; no "Expect: 100-continue" round trip.
    out=$(curl -sS --max-time "$CURL_TIMEOUT" -X POST -T "$BIG" \
            -H 'Content-Type: application/octet-stream' -H 'Expect:' \
            -w '\n%{http_code} %{size_upload} %{time_total}' "$url" 2>&1) || true
  else
    out=$(curl -sS --max-time "$CURL_TIMEOUT" -o /dev/null \
            -w '%{http_code} %{size_download} %{time_total}' "$url" 2>&1) || true
  fi
  touch "$stop"
  wait "$spid" || true
  rssmax=$(cat "$outf" 2>/dev/null || echo 0)
  hwm1=$(status_kib "$child" VmHWM)
  read -r code size t <<<"${out##*$'\n'}"
  body=${out%$'\n'*}
  body=${body%$'\n'}          # the app's own newline
  [ "$kind" = upload ] || body=""
  if ! kill -0 "$child" 2>/dev/null || [ "$(child_pid "${PARENT[$s]}")" != "$child" ]; then
    FAILURES+=("${LABEL[$s]} ${TITLE[$kind]} round $r: the Apache child $child died (curl: $out)")
    log "FAIL ${LABEL[$s]} ${TITLE[$kind]}: the child $child died; error log tail:"
    tail -5 "${DIR[$s]}/error.log" >&2 || true
    die "${LABEL[$s]}: child crashed"
  fi
  if [ "${code:-}" != 200 ] || [ "${size:-}" != "$SIZE" ]; then
    FAILURES+=("${LABEL[$s]} ${TITLE[$kind]} round $r: status ${code:-?}, $size bytes of $SIZE (curl: ${out:0:300})")
    log "FAIL ${LABEL[$s]} ${TITLE[$kind]} round $r: status ${code:-?}, ${size:-?} bytes (curl: ${out:0:300})"
    return 0
  fi
  if [ "$kind" = upload ] && [ "$body" != "$EXPECTED_SHA $SIZE $SIZE" ]; then
    FAILURES+=("${LABEL[$s]} upload round $r: the app answered '${body:0:200}', expected '$EXPECTED_SHA $SIZE $SIZE'")
    log "FAIL ${LABEL[$s]} upload round $r: wrong answer '${body:0:200}'"
    return 0
  fi
  mbs=$(awk -v b="$SIZE" -v t="$t" 'BEGIN { printf "%.1f", (t > 0 ? b / 1048576 / t : 0) }')
  hwm_d=$(( (hwm1 - hwm0) ))
  rss_d=$(( rssmax > rss0 ? rssmax - rss0 : 0 ))
  MBS[$s.$kind]+="$mbs "
  [ "$hwm_d" -gt "${HWM_MAX[$s.$kind]:-0}" ] && HWM_MAX[$s.$kind]=$hwm_d
  [ "$rss_d" -gt "${RSS_MAX[$s.$kind]:-0}" ] && RSS_MAX[$s.$kind]=$rss_d
  log "round $r/$ROUNDS ${LABEL[$s]} ${TITLE[$kind]}: $mbs MB/s (${t}s), VmRSS before $((rss0 / 1024)) MiB, VmHWM +$((hwm_d / 1024)) MiB, sampled VmRSS +$((rss_d / 1024)) MiB$( [ "$kind" = upload ] && echo ", sha256 ok")"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
  for kind in "${KINDS[@]}"; do
    for s in "${SERVERS[@]}"; do
      transfer "$s" "$kind" "$r"
    done
  done
done

# --- the bytes of a file_wrapper download ----------------------------------------------------
declare -A FILE_SHA_OK
for s in "${SERVERS[@]}"; do
  hdr=${DIR[$s]}/file.headers
  got=$(curl -sS --max-time "$CURL_TIMEOUT" -D "$hdr" "${BASE[$s]}/app/file" | sha256sum | cut -d' ' -f1) || got="curl failed"
  status=$(awk 'NR == 1 { print $2 }' "$hdr" 2>/dev/null || true)
  if [ "$got" = "$EXPECTED_SHA" ] && [ "$status" = 200 ]; then
    FILE_SHA_OK[$s]=ok
  else
    FILE_SHA_OK[$s]="MISMATCH (status ${status:-?}, sha256 $got)"
    FAILURES+=("${LABEL[$s]} file_wrapper download: status ${status:-?}, sha256 $got, expected $EXPECTED_SHA")
  fi
  log "${LABEL[$s]}: sha256 of a file_wrapper download: ${FILE_SHA_OK[$s]}"
done

# --- error logs ------------------------------------------------------------------------------
declare -A LOGSUM
for s in "${SERVERS[@]}"; do
  f=${DIR[$s]}/error.log
  LOGSUM[$s]="$(grep -c 'Traceback' "$f" 2>/dev/null || true) Traceback, $(grep -c 'exit signal' "$f" 2>/dev/null || true) child crashes (exit signal)"
  errs=$(grep -iE 'traceback|error|crit|alert|emerg|signal|segfault' "$f" 2>/dev/null || true)
  if [ -n "$errs" ]; then
    log "note: ${LABEL[$s]}: $f mentions errors ($(printf '%s\n' "$errs" | wc -l) lines):"
    printf '%s\n' "$errs" | head -10 >&2
  fi
done

# --- report ----------------------------------------------------------------------------------
fmt_mbs() { [ -n "$1" ] && printf '%.1f' "$1" || printf 'FAIL'; }
fmt_mem() { awk -v h="$1" -v r="$2" 'BEGIN { printf "%.1f / %.1f", h / 1024, r / 1024 }'; }

declare -A M
for s in "${SERVERS[@]}"; do
  for kind in "${KINDS[@]}"; do M[$s.$kind]=$(med "${MBS[$s.$kind]:-}"); done
done

echo
echo "bodies of $SIZE_MB MiB, 1 child x $THREADS threads (event MPM), EnableSendfile On, $ROUNDS round(s), medians; MB = 2^20 bytes"
[ "$DEBIAN_WSGI_SENDFILE" = 1 ] && echo "(${DEBIAN_LABEL} with WSGIEnableSendfile On)"
echo "load average (1/5/15 min) before the rounds: $LOAD_START, after: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores: other work skews MB/s)"
echo "RSS growth of the Apache child, max over the rounds, MiB: VmHWM delta / (max sampled VmRSS - VmRSS before)"
printf '%-23s %10s %14s %14s %20s %20s\n' "" "ours MB/s" "mod_wsgi MB/s" "ours/mod_wsgi" "ours RSS+ MiB" "mod_wsgi RSS+ MiB"
for kind in "${KINDS[@]}"; do
  printf '%-23s %10s %14s %14s %20s %20s\n' "${TITLE[$kind]}" \
    "$(fmt_mbs "${M[ours.$kind]}")" "$(fmt_mbs "${M[debian.$kind]}")" \
    "$(ratio "${M[ours.$kind]}" "${M[debian.$kind]}")" \
    "$(fmt_mem "${HWM_MAX[ours.$kind]:-0}" "${RSS_MAX[ours.$kind]:-0}")" \
    "$(fmt_mem "${HWM_MAX[debian.$kind]:-0}" "${RSS_MAX[debian.$kind]:-0}")"
done
echo
printf 'file_wrapper / static, ours:      %s   (target >= 0.90)\n' "$(ratio "${M[ours.file]}" "${M[ours.static]}")"
printf 'file_wrapper / static, mod_wsgi:  %s\n' "$(ratio "${M[debian.file]}" "${M[debian.static]}")"
worst=0
for kind in upload iter file; do
  for v in "${HWM_MAX[ours.$kind]:-0}" "${RSS_MAX[ours.$kind]:-0}"; do [ "$v" -gt "$worst" ] && worst=$v; done
done
printf 'ours, largest RSS growth of a WSGI transfer: %.1f MiB   (target < 32)\n' "$(awk -v w="$worst" 'BEGIN { print w / 1024 }')"
printf 'upload sha256 checked on every upload; file_wrapper download sha256: ours %s, mod_wsgi %s\n' \
  "${FILE_SHA_OK[ours]}" "${FILE_SHA_OK[debian]}"
echo "error logs: ours ${LOGSUM[ours]}; mod_wsgi ${LOGSUM[debian]}"
if [ ${#FAILURES[@]} -gt 0 ]; then
  echo "FAILURES:"
  printf '  %s\n' "${FAILURES[@]}"
  exit 1
fi
