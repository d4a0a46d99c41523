#!/usr/bin/env bash
# Benchmark on a shaped link: cold `extpy fetch`, `pip download`, cold `uv pip install
# --target` and cold `extpy build` side by side, through scripts/wan-relay.py (one-way latency
# on every chunk, one bandwidth cap shared by all connections, the TCP handshake paid per
# connection) in front of the local HTTPS mirror with the real ten wheels.
#
#   RUNS=3 LINKS="50:20 150:5" SETS="wheels full" scripts/bench-wan.sh   # one-way ms : Mbit/s
#
# Two sets of artifacts, each with the real ten wheels:
#   wheels  the mirror's 1.2 KiB synthetic embeddable zip: nearly the bytes pip and uv fetch,
#           so the three compare on the same download;
#   full    a stand-in embeddable zip of a real one's size (CPython 3.12's is about 10 MB,
#           about 21 MB unpacked; EMBED_MB sets it): the bytes a real `extpy fetch` downloads.
#           Its peer is what a user would script without extpy: the zip downloaded with curl
#           and unpacked, while `uv pip install --target` installs the wheels, at the same time.
#
# extpy runs with the mirror's manifest (wheels found through the index, as pip and uv find
# them) and with the same manifest locked, a `url:` and `size:` per artifact as `extpy lock`
# writes them (no index request at all). The reference row is curl fetching the same locked
# URLs in parallel, one connection each, verifying nothing: the best a client can do here.
#
# Each result is printed as a ratio to two limits of that link: the bytes the tool needs
# divided by the bandwidth, and that plus three round trips (TCP, TLS 1.3 and the request come
# before the first byte of any file: no cold HTTPS client can beat this floor). Rounds
# alternate the tools so that drift hits all of them alike.
set -euo pipefail
: "${BENCH_DIR:=$(cd "$(dirname "$0")/.." && pwd)/target/bench-wan}"
RUNS=${RUNS:-3}
. "$(dirname "$0")/bench-lib.sh"
LINKS=${LINKS:-"50:20 150:5"}
SETS=${SETS:-"wheels full"}
EMBED_MB=${EMBED_MB:-10}

if [ ! -x "$WORK/uv-venv/bin/uv" ]; then
  python3 -m venv "$WORK/uv-venv"
  "$WORK/uv-venv/bin/pip" install --quiet uv
fi
UV=$WORK/uv-venv/bin/uv
"$UV" --version
python3 -m pip --version | cut -d' ' -f1,2
if command -v curl >/dev/null; then CURL=$(command -v curl); curl --version | head -1 | cut -d' ' -f1,2; else CURL=; fi

RELAY_PID=
stop_relay() { if [ -n "$RELAY_PID" ]; then kill "$RELAY_PID" 2>/dev/null || true; wait "$RELAY_PID" 2>/dev/null || true; RELAY_PID=; fi; }
stop_mirror() { if [ -n "${MIRROR_PID:-}" ]; then kill "$MIRROR_PID" 2>/dev/null || true; wait "$MIRROR_PID" 2>/dev/null || true; MIRROR_PID=; fi; }
mirror_up() { start_mirror; trap 'stop_relay; stop_mirror' EXIT; } # (start_mirror sets its own trap)

start_relay() { # start_relay ONE_WAY_MS MBIT: sets RPORT
  rm -f "$WORK/relay.out" # (see start_mirror)
  python3 "$ROOT/scripts/wan-relay.py" --to "127.0.0.1:$MIRROR_PORT" --latency-ms "$1" --mbit "$2" \
    >"$WORK/relay.out" 2>>"$WORK/relay.log" &
  RELAY_PID=$!
  for _ in $(seq 100); do grep -q ready "$WORK/relay.out" 2>/dev/null && break; sleep 0.1; done
  RPORT=$(awk '/ready/ {print $2}' "$WORK/relay.out")
}

# standin_zip OUT: the mirror's synthetic embeddable with DLL-like members added until the zip
# is EMBED_MB MB; their bytes have half the entropy of random ones, so they deflate about 2:1,
# as the real zip's do. Made once per size (seeded: the same bytes every time).
standin_zip() {
  local out=$1 version
  [ -s "$out" ] && return
  version=$(awk '/^  version:/ {print $2; exit}' "$WORK/mirror/manifest.yaml")
  python3 - "${EXTPY_PYTHON_MIRROR}$version/python-$version-embed-amd64.zip" "$EXTPY_CA_CERT" "$out.tmp" "$EMBED_MB" <<'PY'
import io, random, ssl, sys, urllib.request, zipfile
url, ca, out, mb = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
small = urllib.request.urlopen(url, context=ssl.create_default_context(cafile=ca)).read()
rng = random.Random(312)
names = ["libcrypto-3.dll", "python312.dll.pad", "sqlite3.dll", "libssl-3.dll", "_decimal.pyd",
         "_hashlib.pyd", "unicodedata.pyd", "_ssl.pyd", "pyexpat.pyd", "_elementtree.pyd"]
with zipfile.ZipFile(io.BytesIO(small)) as z, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as w:
    for info in z.infolist():
        w.writestr(info, z.read(info.filename))
    i = 0
    while w.fp.tell() < mb * 1e6:
        w.writestr(names[i % len(names)] if i < len(names) else f"_ext{i}.pyd", rng.randbytes(1 << 20).hex().encode())
        i += 1
PY
  mv "$out.tmp" "$out"
}

extpy_env() { # MANIFEST: the manifest to use (the mirror's by default)
  EXTPY_PYTHON_MIRROR="https://127.0.0.1:$RPORT/python/" EXTPY_INDEX_URL="https://127.0.0.1:$RPORT/simple/" \
    "$EXTPY" --manifest "${MANIFEST:-$WORK/mirror/manifest.yaml}" --cache-dir "$WORK/extpy-cache" -q "$@"
}
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
  awk '$1 == "url:" {print $2}' "$WORK/locked.yaml" >"$WORK/locked.urls"
}
curl_parallel() {
  mkdir -p "$WORK/curl-out"
  # shellcheck disable=SC2046 # one argument per URL
  "$CURL" --no-progress-meter --fail --cacert "$EXTPY_CA_CERT" --parallel --parallel-immediate \
    --output-dir "$WORK/curl-out" --remote-name-all $(cat "$WORK/locked.urls")
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
# The same job without extpy: the embeddable zip downloaded and unpacked while uv installs the wheels.
curl_and_uv() {
  local zip_url
  zip_url=$(grep /python/ "$WORK/locked.urls")
  { "$CURL" --no-progress-meter --fail --cacert "$EXTPY_CA_CERT" -o "$WORK/embed.zip" "$zip_url" &&
    python3 -m zipfile -e "$WORK/embed.zip" "$WORK/uv-out"; } &
  local zip_pid=$!
  uv_target
  wait "$zip_pid"
}
clean() { rm -rf "$WORK/extpy-cache" "$WORK/extpy-out" "$WORK/pip-out" "$WORK/uv-out" "$WORK/uv-cache" "$WORK/curl-out" "$WORK/embed.zip"; }

REF="curl --parallel (reference)"
run_tool() {
  case $1 in
    "$REF") curl_parallel ;;
    "extpy fetch") extpy_env fetch ;;
    "extpy fetch, locked") extpy_locked fetch ;;
    "pip download") pip_download ;;
    "uv pip install --target") uv_target ;;
    "curl + unzip with uv --target") curl_and_uv ;;
    "extpy build") extpy_env build "$WORK/extpy-out" ;;
    "extpy build, locked") extpy_locked build "$WORK/extpy-out" ;;
  esac
}

WHEEL_BYTES=$(cat "$WORK"/wheels/*.whl | wc -c)
SUMMARY=()
for set in $SETS; do
  stop_mirror
  MIRROR_EXTRA_BASE=${MIRROR_EXTRA:-}
  case $set in
    wheels)
      mirror_up
      PEER="uv pip install --target"
      TOOLS=("extpy fetch" "extpy fetch, locked" "pip download" "$PEER" "extpy build" "extpy build, locked")
      ;;
    full)
      mirror_up # the synthetic zip the stand-in grows from
      standin_zip "$WORK/standin-$EMBED_MB.zip"
      stop_mirror
      MIRROR_EXTRA="$MIRROR_EXTRA_BASE --python-zip $WORK/standin-$EMBED_MB.zip" mirror_up
      PEER="curl + unzip with uv --target"
      TOOLS=("extpy fetch" "extpy fetch, locked" "$PEER" "extpy build" "extpy build, locked")
      ;;
    *) echo "unknown set $set (wheels, full)" >&2; exit 2 ;;
  esac
  if [ -n "$CURL" ]; then TOOLS=("$REF" "${TOOLS[@]}"); fi
  for link in $LINKS; do
    ms=${link%%:*} mbit=${link##*:}
    start_relay "$ms" "$mbit"
    clean
    EXTPY_BYTES=$(extpy_env --json fetch | python3 -c 'import json,sys; print(json.load(sys.stdin)["downloaded_bytes"])')
    lock_manifest
    rtt=$(echo "2 * $ms / 1000" | bc -l)
    echo
    echo "set $set, link ${ms} ms one way, ${mbit} Mbit/s shared (relay port $RPORT): extpy and curl need $EXTPY_BYTES bytes, pip and uv alone $WHEEL_BYTES"
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
      case $tool in "pip download" | "uv pip install --target") bytes=$WHEEL_BYTES ;; *) bytes=$EXTPY_BYTES ;; esac
      limit=$(echo "$bytes * 8 / ($mbit * 1000000)" | bc -l)
      floor=$(echo "$limit + 3 * $rtt" | bc -l)
      # shellcheck disable=SC2086
      med=$(printf '%s\n' ${S[$tool]} | median)
      # shellcheck disable=SC2086
      spread=$(printf '%s\n' ${S[$tool]} | sort -g | awk -v l="$limit" '{r[NR]=$1/l} END {printf "%.2f-%.2f", r[1], r[NR]}')
      line=$(printf '%-6s %3s ms %2s Mbit/s  %-30s median %6.2fs  bytes/bw %5.2fs: %5.2fx (runs %s)  +3 RTT %5.2fs: %5.2fx' \
        "$set" "$ms" "$mbit" "$tool" "$med" "$limit" "$(echo "$med / $limit" | bc -l)" "$spread" "$floor" "$(echo "$med / $floor" | bc -l)")
      echo "$line"
      SUMMARY+=("$line")
      T["$set $link $tool"]=$med
    done
    for b in "extpy build" "extpy build, locked"; do
      line="$(printf '%-6s %3s ms %2s Mbit/s  %-30s takes %.2fx the time of cold %s' "$set" "$ms" "$mbit" "$b" \
        "$(echo "${T["$set $link $b"]} / ${T["$set $link $PEER"]}" | bc -l)" "$PEER")"
      echo "$line"
      SUMMARY+=("$line")
    done
    unset S
    stop_relay
  done
  MIRROR_EXTRA=$MIRROR_EXTRA_BASE
done
echo
printf '%s\n' "${SUMMARY[@]}"
