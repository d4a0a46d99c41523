#!/usr/bin/env bash
# Benchmark on a shaped link: cold `extpy fetch`, `pip download`, cold `uv pip install
# --target` and cold `extpy build` side by side, through scripts/wan-relay.py (one-way latency
# on every chunk, one bandwidth cap shared by all connections, the TCP handshake paid per
# connection) in front of the local HTTPS mirror with the real ten wheels.
#
#   RUNS=3 LINKS="50:20 150:5" scripts/bench-wan.sh      # one-way ms : Mbit/s
#
# extpy runs twice: with the mirror's manifest (wheels found through the index, as pip and uv
# find them) and with the same manifest locked, a `url:` and `size:` per artifact as
# `extpy lock` writes them (no index request at all).
#
# Each result is printed as a ratio to two limits of that link: the bytes the tool needs
# divided by the bandwidth (extpy: the ten wheels and the embeddable zip; pip and uv: the ten
# wheels), and that plus one round trip (a request must go out before the first byte can
# come back; no client can beat this floor). Rounds alternate the tools so that drift hits
# all of them alike.
set -euo pipefail
: "${BENCH_DIR:=$(cd "$(dirname "$0")/.." && pwd)/target/bench-wan}"
RUNS=${RUNS:-3}
. "$(dirname "$0")/bench-lib.sh"
start_mirror
LINKS=${LINKS:-"50:20 150:5"}

if [ ! -x "$WORK/uv-venv/bin/uv" ]; then
  python3 -m venv "$WORK/uv-venv"
  "$WORK/uv-venv/bin/pip" install --quiet uv
fi
UV=$WORK/uv-venv/bin/uv
"$UV" --version
python3 -m pip --version | cut -d' ' -f1,2

RELAY_PID=
stop_relay() { if [ -n "$RELAY_PID" ]; then kill "$RELAY_PID" 2>/dev/null || true; wait "$RELAY_PID" 2>/dev/null || true; RELAY_PID=; fi; }
trap 'stop_relay; kill $MIRROR_PID 2>/dev/null || true' EXIT

start_relay() { # start_relay ONE_WAY_MS MBIT: sets RPORT
  rm -f "$WORK/relay.out" # (see start_mirror)
  python3 "$ROOT/scripts/wan-relay.py" --to "127.0.0.1:$MIRROR_PORT" --latency-ms "$1" --mbit "$2" \
    >"$WORK/relay.out" 2>>"$WORK/relay.log" &
  RELAY_PID=$!
  for _ in $(seq 100); do grep -q ready "$WORK/relay.out" 2>/dev/null && break; sleep 0.1; done
  RPORT=$(awk '/ready/ {print $2}' "$WORK/relay.out")
}

extpy_env() { # MANIFEST: the manifest to use (the mirror's by default)
  EXTPY_PYTHON_MIRROR="https://127.0.0.1:$RPORT/python/" EXTPY_INDEX_URL="https://127.0.0.1:$RPORT/simple/" \
    "$EXTPY" --manifest "${MANIFEST:-$WORK/mirror/manifest.yaml}" --cache-dir "$WORK/extpy-cache" -q "$@"
}
extpy_fetch() { extpy_env fetch; }
extpy_build() { extpy_env build "$WORK/extpy-out"; }
extpy_locked() { MANIFEST=$WORK/locked.yaml extpy_env "$@"; }
# lock_manifest: the mirror's manifest with a url: (through the relay) and size: per artifact
# (the embeddable's size is what the first fetch downloaded beyond the wheels).
lock_manifest() {
  awk -v base="https://127.0.0.1:$RPORT" -v wheels="$WORK/wheels" -v zipsize="$((EXTPY_BYTES - WHEEL_BYTES))" '
    function size(f,   cmd, n) { cmd = "wc -c < \"" f "\""; cmd | getline n; close(cmd); return n + 0 }
    /^python:/ { inpy = 1 } /^  version:/ && inpy { version = $2; inpy = 0 }
    /^embeddable:/ { kind = "embed" } /^wheels:/ { kind = "wheel" }
    /file:/ { file = $NF }
    { print }
    /sha256:/ {
      indent = $0; sub(/sha256:.*/, "", indent)
      if (kind == "embed") { url = base "/python/" version "/" file; n = zipsize }
      else { url = base "/files/" file; n = size(wheels "/" file) }
      print indent "url: " url; print indent "size: " n
    }' "$WORK/mirror/manifest.yaml" >"$WORK/locked.yaml"
}
pip_download() {
  python3 -m pip --isolated download --quiet --no-cache-dir --no-deps --only-binary=:all: --platform win_amd64 \
    --python-version 3.12 --index-url "https://localhost:$RPORT/simple/" --trusted-host localhost \
    -d "$WORK/pip-out" "${PINS[@]}"
}
uv_target() {
  SSL_CERT_FILE=$EXTPY_CA_CERT "$UV" pip install --quiet --no-deps --index-url "https://localhost:$RPORT/simple/" \
    --python-platform x86_64-pc-windows-msvc --python-version 3.12 --cache-dir "$WORK/uv-cache" \
    --target "$WORK/uv-out" "${PINS[@]}"
}
clean() { rm -rf "$WORK/extpy-cache" "$WORK/extpy-out" "$WORK/pip-out" "$WORK/uv-out" "$WORK/uv-cache"; }

TOOLS=("extpy fetch" "extpy fetch, locked" "pip download" "uv pip install --target" "extpy build" "extpy build, locked")
run_tool() {
  case $1 in
    "extpy fetch") extpy_fetch ;;
    "extpy fetch, locked") extpy_locked fetch ;;
    "pip download") pip_download ;;
    "uv pip install --target") uv_target ;;
    "extpy build") extpy_build ;;
    "extpy build, locked") extpy_locked build "$WORK/extpy-out" ;;
  esac
}

WHEEL_BYTES=$(cat "$WORK"/wheels/*.whl | wc -c)
SUMMARY=()
for link in $LINKS; do
  ms=${link%%:*} mbit=${link##*:}
  start_relay "$ms" "$mbit"
  clean
  EXTPY_BYTES=$(extpy_env --json fetch | python3 -c 'import json,sys; print(json.load(sys.stdin)["downloaded_bytes"])')
  lock_manifest
  rtt=$(echo "2 * $ms / 1000" | bc -l)
  echo
  echo "link: ${ms} ms one way, ${mbit} Mbit/s shared (relay port $RPORT); extpy needs $EXTPY_BYTES bytes, pip and uv $WHEEL_BYTES"
  declare -A S=()
  for _ in $(seq "$RUNS"); do
    for tool in "${TOOLS[@]}"; do
      clean
      t0=$(now)
      run_tool "$tool" >/dev/null
      t1=$(now)
      S[$tool]+="$(echo "$t1 - $t0" | bc -l) "
    done
  done
  for tool in "${TOOLS[@]}"; do
    case $tool in extpy*) bytes=$EXTPY_BYTES ;; *) bytes=$WHEEL_BYTES ;; esac
    limit=$(echo "$bytes * 8 / ($mbit * 1000000)" | bc -l)
    floor=$(echo "$limit + $rtt" | bc -l)
    # shellcheck disable=SC2086
    med=$(printf '%s\n' ${S[$tool]} | median)
    # shellcheck disable=SC2086
    spread=$(printf '%s\n' ${S[$tool]} | sort -g | awk -v l="$limit" '{r[NR]=$1/l} END {printf "%.2f-%.2f", r[1], r[NR]}')
    line=$(printf '%-4s ms %3s Mbit/s  %-26s median %6.2fs  bytes/bw %5.2fs: %5.2fx (runs %s)  +1 RTT %5.2fs: %5.2fx' \
      "$ms" "$mbit" "$tool" "$med" "$limit" "$(echo "$med / $limit" | bc -l)" "$spread" "$floor" "$(echo "$med / $floor" | bc -l)")
    echo "$line"
    SUMMARY+=("$line")
    T["$link $tool"]=$med
  done
  for b in "extpy build" "extpy build, locked"; do
    line="$(printf '%-4s ms %3s Mbit/s  %-26s takes %.2fx the time of cold uv pip install --target' "$ms" "$mbit" "$b" \
      "$(echo "${T["$link $b"]} / ${T["$link uv pip install --target"]}" | bc -l)")"
    echo "$line"
    SUMMARY+=("$line")
  done
  unset S
  stop_relay
done
echo
printf '%s\n' "${SUMMARY[@]}"
