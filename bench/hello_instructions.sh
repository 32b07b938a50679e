#!/usr/bin/env bash
# Benchmark (not a test): what a hello-world request costs in instructions, ours against
# mod_wsgi 6.1.1 (pip install mod_wsgi for the same Python), counted rather than timed: each
# module in one Apache process (`apache2 -X`) under valgrind's callgrind, serving N1 and then
# N2 requests on one keep-alive connection; the instructions per request are
# (I(N2) - I(N1)) / (N2 - N1), so start-up and shutdown cancel out. Whole process (Apache,
# the module, Python). Instruction counts do not move with other tenants' load, where req/s on
# this shared machine moves by +-30%. Debian's mod_wsgi 4.9 is not in it: under valgrind its
# `apache2 -X` never exits on SIGTERM, so callgrind never writes its counts. About 4 minutes.
#
# Environment: BENCH_PYTHON=3.12 (/opt/mod_wsgi-rs/python/X.Y; scripts/pythons X.Y),
# BENCH_VENV=target/bench-venv-X.Y, BENCH_N1=300, BENCH_N2=1300, BENCH_SKIP_BUILD=1,
# BENCH_KEEP=1.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=${BENCH_PYTHON:-3.12}
HOME_DIR=/opt/mod_wsgi-rs/python/$VERSION
VENV=${BENCH_VENV:-$REPO/target/bench-venv-$VERSION}
PY=/usr/bin/python3
HTTPD=/usr/sbin/apache2
MODULES=/usr/lib/apache2/modules
OUR_MODULE=$REPO/target/modules/mod_wsgi.so
N1=${BENCH_N1:-300}
N2=${BENCH_N2:-1300}
THREADS=4

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

require_packages apache2 apache2-dev valgrind curl
build_module
[ "$N2" -gt "$N1" ] || die "BENCH_N2 ($N2) must be more than BENCH_N1 ($N1)"
[ -d "$HOME_DIR" ] && [ -f "$REPO/target/modules/mod_wsgi-engine-py$VERSION.so" ] \
  || die "no Python $VERSION engine: run scripts/pythons $VERSION"
make_venv "$VERSION" "$VENV"
THEIR_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mod_wsgi"))')

DIRS=()
PIDS=()
trap stop_pids_and_cleanup EXIT
# Apache's process runs as nobody when started as root: a readable copy of their module.
MODDIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-ir-modules.XXXXXX")
DIRS+=("$MODDIR")
THEIR_SOURCE=$("$VENV/bin/mod_wsgi-express" module-location)
cp "$THEIR_SOURCE" "$MODDIR/"
chmod -R a+rX "$MODDIR"
THEIR_MODULE=$MODDIR/$(ls "$MODDIR")

CONF="WSGIPythonHome $HOME_DIR"
log "mod_wsgi-rs: $N1 and $N2 requests under callgrind"
instructions_per_request "$OUR_MODULE" "$CONF"; OURS=$PER_ALL
log "mod_wsgi $THEIR_VERSION: $N1 and $N2 requests under callgrind"
instructions_per_request "$THEIR_MODULE" "$CONF"; THEIRS=$PER_ALL
echo
echo "hello world in one apache2 -X process under callgrind, Python $VERSION, instructions per request ((I($N2) - I($N1)) / $((N2 - N1)))"
awk -v ours="$OURS" -v theirs="$THEIRS" -v v="$THEIR_VERSION" 'BEGIN {
  printf "%-24s %10.0f\n", "mod_wsgi-rs", ours
  printf "%-24s %10.0f\n", "mod_wsgi " v, theirs
  printf "ours / theirs: %.3f (fewer is better; req/s at equal cost per instruction: %.2f)\n", ours / theirs, theirs / ours
}'
