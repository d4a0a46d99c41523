#!/usr/bin/env bash
# Benchmark: `extpy fetch` beside `pip download --no-deps` for the real ten OAuth wheels,
# both served by the same local HTTPS mirror (loopback, no internet in the measurement).
#
#   RUNS=5 scripts/bench-fetch.sh
#
# Needs cargo, python3 with pip, bc. The wheels are taken once from the package index
# (`pip download` of the pins in manifests/python-3.12-win-amd64.yaml), then served locally.
# The mirror also serves a synthetic embeddable zip, so extpy fetches 11 files, pip 10.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
start_mirror
PIP_INDEX="https://localhost:$MIRROR_PORT/simple/"

pip_download() { # --isolated: no user config or PIP_* variables; plain loopback mirror
  python3 -m pip --isolated download --quiet --no-deps --only-binary=:all: --platform win_amd64 \
    --python-version 3.12 --index-url "$PIP_INDEX" --trusted-host localhost "$@" \
    -d "$WORK/pip-out" "${PINS[@]}"
}
extpy_fetch() { "$EXTPY" --manifest "$WORK/mirror/manifest.yaml" --cache-dir "$WORK/extpy-cache" -q fetch; }

measure "pip download (no cache)" 'rm -rf "$WORK/pip-out"' pip_download --no-cache-dir
pip_download --cache-dir "$WORK/pip-cache" >/dev/null # warm pip's cache once
measure "pip download (warm cache)" 'rm -rf "$WORK/pip-out"' pip_download --cache-dir "$WORK/pip-cache"
measure "extpy fetch (cold cache)" 'rm -rf "$WORK/extpy-cache"' extpy_fetch
measure "extpy fetch (warm cache)" ':' extpy_fetch

echo
echo "cold: extpy fetch is $(ratio "pip download (no cache)" "extpy fetch (cold cache)")x faster than pip download"
echo "warm: extpy fetch is $(ratio "pip download (warm cache)" "extpy fetch (warm cache)")x faster than pip download with its cache"
