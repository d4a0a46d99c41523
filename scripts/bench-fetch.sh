#!/usr/bin/env bash
# Benchmark: `extpy fetch` beside `pip download --no-deps` for the real ten OAuth wheels,
# both served by the same local HTTPS mirror (loopback, no internet in the measurement).
#
#   scripts/bench-fetch.sh [RUNS]
#
# Needs: cargo, python3 with pip. The wheels are taken once from the package index with
# `pip download` (the pins of manifests/python-3.12-win-amd64.yaml), then served locally.
# The mirror also serves a synthetic embeddable zip (python.org is not needed), so extpy
# fetches 11 files where pip fetches 10.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
WORK=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$WORK"
echo "work folder: $WORK"

cargo build --release --quiet --bin extpy --example mirror
EXTPY=$PWD/target/release/extpy

# The pinned wheels, once, from the index.
mapfile -t PINS < <(sed -n 's/^  - file: \(.*\)\.whl$/\1/p' manifests/python-3.12-win-amd64.yaml |
  awk -F- '{print $1"=="$2}')
if [ "$(ls "$WORK"/wheels/*.whl 2>/dev/null | wc -l)" -lt 10 ]; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform win_amd64 \
    --python-version 3.12 -d "$WORK/wheels" "${PINS[@]}"
fi

./target/release/examples/mirror --out "$WORK/mirror" --wheels "$WORK/wheels" >"$WORK/mirror.log" 2>&1 &
MIRROR_PID=$!
trap 'kill $MIRROR_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q ready "$WORK/mirror.log" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1091
set -a; . "$WORK/mirror/env"; set +a
PORT=${MIRROR_URL##*:}
PIP_INDEX="https://localhost:$PORT/simple/"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

pip_download() { # $1: cache option
  # --isolated: no user config or PIP_* variables (this machine sets some); loopback mirror.
  python3 -m pip --isolated download --quiet --no-deps --only-binary=:all: --platform win_amd64 \
    --python-version 3.12 --index-url "$PIP_INDEX" --trusted-host localhost $1 \
    -d "$WORK/pip-out" "${PINS[@]}"
}

declare -A T
measure() { # name, command...
  local name=$1; shift
  local samples=()
  for _ in $(seq "$RUNS"); do
    [ "$name" = "extpy-cold" ] && rm -rf "$WORK/extpy-cache"
    [ "$name" = "pip-cold" ] && rm -rf "$WORK/pip-out"
    [ "$name" = "pip-warm" ] && rm -rf "$WORK/pip-out"
    local t0; t0=$(now); "$@" >/dev/null; local t1; t1=$(now)
    samples+=("$(echo "$t1 - $t0" | bc -l)")
  done
  T[$name]=$(printf '%s\n' "${samples[@]}" | median)
  printf '%-12s median %.3fs over %d runs\n' "$name" "${T[$name]}" "$RUNS"
}

extpy_fetch() { "$EXTPY" --manifest "$WORK/mirror/manifest.yaml" --cache-dir "$WORK/extpy-cache" -q fetch; }

measure pip-cold pip_download --no-cache-dir
pip_download "--cache-dir $WORK/pip-cache" # warm pip's HTTP cache once
measure pip-warm pip_download "--cache-dir $WORK/pip-cache"
measure extpy-cold extpy_fetch
measure extpy-warm extpy_fetch

echo
printf 'cold: extpy fetch is %.1fx faster than pip download (%.3fs vs %.3fs)\n' \
  "$(echo "${T[pip-cold]} / ${T[extpy-cold]}" | bc -l)" "${T[extpy-cold]}" "${T[pip-cold]}"
printf 'warm: extpy fetch is %.1fx faster than pip download with its cache (%.3fs vs %.3fs)\n' \
  "$(echo "${T[pip-warm]} / ${T[extpy-warm]}" | bc -l)" "${T[extpy-warm]}" "${T[pip-warm]}"
