# Shared by the bench-*.sh scripts: the real pinned wheels, a local HTTPS mirror serving
# them, and a timing helper that reports the median of several runs.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
WORK=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$WORK"
echo "work folder: $WORK ($RUNS runs each)"

(cd "$ROOT" && cargo build --release --quiet --bin extpy --example mirror)
EXTPY=${EXTPY_BIN:-$ROOT/target/release/extpy} # EXTPY_BIN: measure another build

# The pins of the shipped manifest, as name==version.
mapfile -t PINS < <(sed -n 's/^  - file: \(.*\)\.whl$/\1/p' "$ROOT/manifests/python-3.12-win-amd64.yaml" |
  awk -F- '{print $1"=="$2}')

# The real wheels, once, from the package index.
if [ "$(find "$WORK/wheels" -name '*.whl' 2>/dev/null | wc -l)" -lt "${#PINS[@]}" ]; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform win_amd64 \
    --python-version 3.12 -d "$WORK/wheels" "${PINS[@]}"
fi

start_mirror() {
  # The redirection below happens in the child, after `&` returns: a log or env left by an
  # earlier run would be read as this mirror's.
  rm -f "$WORK/mirror.log" "$WORK/mirror/env"
  # shellcheck disable=SC2086 # MIRROR_EXTRA: extra mirror flags, word-split on purpose
  "$ROOT/target/release/examples/mirror" --out "$WORK/mirror" --wheels "$WORK/wheels" ${MIRROR_EXTRA:-} >"$WORK/mirror.log" 2>&1 &
  MIRROR_PID=$!
  trap 'kill $MIRROR_PID 2>/dev/null || true' EXIT
  for _ in $(seq 100); do grep -q ready "$WORK/mirror.log" 2>/dev/null && break; sleep 0.1; done
  set -a
  # shellcheck disable=SC1091
  . "$WORK/mirror/env"
  set +a
  MIRROR_PORT=${MIRROR_URL##*:}
}

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A T
# measure NAME SETUP COMMAND...: runs SETUP (untimed) then COMMAND, RUNS times; median in T[NAME].
measure() {
  local name=$1 setup=$2
  shift 2
  local samples=()
  for _ in $(seq "$RUNS"); do
    eval "$setup"
    local t0 t1
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    samples+=("$(echo "$t1 - $t0" | bc -l)")
  done
  T[$name]=$(printf '%s\n' "${samples[@]}" | median)
  printf '%-28s median %.3fs\n' "$name" "${T[$name]}"
}

# ratio SLOW FAST: how many times faster FAST is.
ratio() { echo "${T[$1]} / ${T[$2]}" | bc -l | xargs printf '%.1f'; }
