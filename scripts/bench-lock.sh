#!/usr/bin/env bash
# Benchmark: `extpy lock` of the shipped manifest's requires: beside
# `uv pip compile --generate-hashes` for the same target (CPython 3.12, win_amd64), both
# resolving against the same local HTTPS mirror of the real wheels (with PEP 658 metadata
# files, as the public index serves them), cold and warm caches, in one run.
#
#   RUNS=5 scripts/bench-lock.sh
#
# Needs cargo, python3 with pip, bc. The wheels are taken once from the package index
# (`pip download` of the pins), uv is installed with pip into a venv under target/.
# It also checks that extpy's lock holds the very files `pip download` picks from the mirror.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"

VENV=$ROOT/target/bench-uv-venv
if [ ! -x "$VENV/bin/uv" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet uv
fi
UV=$VENV/bin/uv
echo "uv: $("$UV" --version)"

MIRROR_EXTRA=--metadata start_mirror
INDEX="https://localhost:$MIRROR_PORT/simple/"
MANIFEST=$ROOT/manifests/python-3.12-win-amd64.yaml
# The requirements, for uv, from the manifest's requires: block.
sed -n '/^requires:/,/^[a-z]/p' "$MANIFEST" | sed -n 's/^  - \([^#]*\).*/\1/p' |
  sed 's/[[:space:]]*$//; s/^"\(.*\)"$/\1/' >"$WORK/requirements.in"
echo "requirements: $(tr '\n' ' ' <"$WORK/requirements.in")"

extpy_lock() {
  "$EXTPY" --manifest "$MANIFEST" --cache-dir "$WORK/extpy-cache" --index-url "$INDEX" -q \
    lock --out "$WORK/locked.yaml"
}
uv_compile() {
  SSL_CERT_FILE=$EXTPY_CA_CERT "$UV" pip compile --quiet --generate-hashes \
    --python-platform x86_64-pc-windows-msvc --python-version 3.12 --index-url "$INDEX" \
    --cache-dir "$WORK/uv-cache" -o "$WORK/uv.txt" "$WORK/requirements.in"
}

# Same answer first: extpy's pins, uv's pins and pip's picks from this mirror.
extpy_lock
uv_compile
python3 -m pip --isolated download --quiet --no-cache-dir --only-binary=:all: --platform win_amd64 \
  --python-version 3.12 --index-url "$INDEX" --trusted-host localhost -d "$WORK/pip-picks" \
  -r "$WORK/requirements.in"
ours=$(sed -n 's/^  - file: \(.*\)$/\1/p' "$WORK/locked.yaml" | sort -f)
pips=$(ls "$WORK/pip-picks" | sort -f)
uvs=$(sed -n 's/^\([A-Za-z0-9_.-]*\)==\([^ ]*\).*/\1 \2/p' "$WORK/uv.txt" | tr 'A-Z_' 'a-z-' | sort)
oursv=$(echo "$ours" | awk -F- '{print $1" "$2}' | tr 'A-Z_' 'a-z-' | sort)
if [ "$ours" != "$pips" ]; then
  echo "extpy lock and pip download disagree:"; diff <(echo "$ours") <(echo "$pips") || true; exit 1
fi
if [ "$oursv" != "$uvs" ]; then
  echo "extpy lock and uv pip compile disagree:"; diff <(echo "$oursv") <(echo "$uvs") || true; exit 1
fi
echo "same $(echo "$ours" | wc -l) pins from extpy lock, uv pip compile and pip download"

measure "uv pip compile (cold cache)" 'rm -rf "$WORK/uv-cache"' uv_compile
measure "extpy lock (cold cache)" 'rm -rf "$WORK/extpy-cache"' extpy_lock
uv_compile
extpy_lock
measure "uv pip compile (warm cache)" ':' uv_compile
measure "extpy lock (warm cache)" ':' extpy_lock

echo
echo "cold: extpy lock is $(ratio "uv pip compile (cold cache)" "extpy lock (cold cache)")x as fast as uv pip compile"
echo "warm: extpy lock is $(ratio "uv pip compile (warm cache)" "extpy lock (warm cache)")x as fast as uv pip compile"
