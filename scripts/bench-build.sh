#!/usr/bin/env bash
# Benchmark: `extpy build` (warm cache) beside `pip install --target` and
# `uv pip install --target` of the same real ten wheels, in one run.
#
#   RUNS=5 scripts/bench-build.sh
#
# extpy does more than the peers here: it also extracts the embeddable CPython, checks
# every file against RECORD, edits ._pth and writes the seal. pip runs with --no-compile
# (extpy writes no bytecode either); uv is installed from the package index into a venv.
# uv is measured twice: with its warm cache (where wheels are already unpacked, so it only
# links files) and with a cold one (it unpacks the wheels, as extpy does each time).
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
start_mirror

if [ ! -x "$WORK/uv-venv/bin/uv" ]; then
  python3 -m venv "$WORK/uv-venv"
  "$WORK/uv-venv/bin/pip" install --quiet uv
fi
UV=$WORK/uv-venv/bin/uv
"$UV" --version

extpy_build() { "$EXTPY" --manifest "$WORK/mirror/manifest.yaml" --cache-dir "$WORK/extpy-cache" -q --offline build "$WORK/extpy-out"; }
pip_target() {
  python3 -m pip --isolated install --quiet --no-compile --no-deps --no-index --only-binary=:all: \
    --platform win_amd64 --python-version 3.12 --find-links "$WORK/wheels" --target "$WORK/pip-out" "${PINS[@]}"
}
uv_target() {
  "$UV" pip install --quiet --no-deps --no-index --find-links "$WORK/wheels" --python-platform x86_64-pc-windows-msvc \
    --python-version 3.12 --cache-dir "$WORK/uv-cache" --target "$WORK/uv-out" "${PINS[@]}"
}

"$EXTPY" --manifest "$WORK/mirror/manifest.yaml" --cache-dir "$WORK/extpy-cache" -q fetch # warm extpy's cache
uv_target # warm uv's cache
measure "pip install --target" 'rm -rf "$WORK/pip-out"' pip_target
measure "uv pip install --target" 'rm -rf "$WORK/uv-out"' uv_target
measure "uv (cold cache)" 'rm -rf "$WORK/uv-out" "$WORK/uv-cache"' uv_target
measure "extpy build (warm cache)" 'rm -rf "$WORK/extpy-out"' extpy_build
measure "extpy build (replace)" ':' extpy_build

echo
echo "extpy build is $(ratio "pip install --target" "extpy build (warm cache)")x faster than pip install --target"
echo "extpy build takes $(echo "${T[extpy build (warm cache)]} / ${T[uv pip install --target]}" | bc -l | xargs printf '%.2f')x the time of uv pip install --target (uv's cache holds the wheels unpacked)"
echo "extpy build takes $(echo "${T[extpy build (warm cache)]} / ${T[uv (cold cache)]}" | bc -l | xargs printf '%.2f')x the time of uv with a cold cache (unpacking the same wheels)"
