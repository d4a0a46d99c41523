#!/usr/bin/env bash
# A bounded fault soak on loopback. Many concurrent `extpy fetch`, `build` and `layout` runs
# share one cache, one build DEST and one layout folder, while the test mirror
# (examples/mirror.rs --chaos) gives a share of its answers a random fault (connection
# resets, truncated bodies, 500/502/503, stalls before and during a body, wrong bytes) and a
# random running extpy is killed (SIGKILL) every few seconds. Then it checks:
#   - the DEST holds a complete distribution that verifies against the seal the manifest
#     produces, or its previous state (parked by a killed swap, restored by the next run);
#   - every VU folder that exists verifies the same way;
#   - the cache's content-addressed store holds only blobs whose sha256 is their name, and
#     a cached build verifies (the runs of each SOAK_ROUND_SECONDS share one cache, which
#     starts empty, so that downloads and their faults go on all the time);
#   - after one more (fault-free) run of build and layout, no temporary folder is left;
#   - no run ended in a way it must not (usage errors, local failures, a layout that found a
#     damaged VU, a panic).
# It prints the counts (runs, faults injected, kills, outcomes) and exits non-zero on any
# violation.
#
#   scripts/soak.sh                 # ~75 s of faults
#   SOAK_SECONDS=600 scripts/soak.sh
# Also: SOAK_WORKERS (6), SOAK_CHAOS (percent of requests faulted, 35), SOAK_ROUND_SECONDS (6), SOAK_SEED, SOAK_KEEP=1
# (keep the work folder for a look).
set -uo pipefail
cd "$(dirname "$0")/.."

DURATION=${SOAK_SECONDS:-75}
WORKERS=${SOAK_WORKERS:-6}
CHAOS=${SOAK_CHAOS:-35}
SEED=${SOAK_SEED:-$(( (RANDOM << 15) | RANDOM ))}

cargo build --locked --quiet --bin extpy --example mirror || exit 2
EXTPY="$PWD/target/debug/extpy"
MIRROR="$PWD/target/debug/examples/mirror"

W=$(mktemp -d "${TMPDIR:-/tmp}/extpy-soak.XXXXXX")
MPID=""
KPID=""
cleanup() {
  [ -n "$KPID" ] && kill "$KPID" 2>/dev/null
  [ -n "$MPID" ] && kill "$MPID" 2>/dev/null
  wait 2>/dev/null
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak: work folder kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

mkdir -p "$W/pids" "$W/logs" "$W/results" "$W/wheels"
# An embeddable zip with a 3 MiB member, so that faults land in the middle of large bodies
# (resets, truncations and stalls after some bytes, resumed with Range requests).
python3 - "$W/python.zip" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("python.exe", b"MZ soak python")
    z.writestr("python312._pth", b"python312.zip\r\n.\r\n\r\n#import site\r\n")
    z.writestr(zipfile.ZipInfo("python312.zip"), os.urandom(3 << 20), zipfile.ZIP_STORED)
PY
"$MIRROR" --out "$W/mirror" --python-zip "$W/python.zip" --chaos "$CHAOS" --seed "$SEED" >"$W/mirror.log" 2>&1 &
MPID=$!
for _ in $(seq 1 600); do
  grep -q '^ready' "$W/mirror.log" 2>/dev/null && break
  kill -0 "$MPID" 2>/dev/null || { cat "$W/mirror.log"; echo "soak: the mirror did not start"; exit 2; }
  sleep 0.1
done
grep -q '^ready' "$W/mirror.log" || { echo "soak: the mirror did not start"; exit 2; }
set -a
# shellcheck disable=SC1091
. "$W/mirror/env"
set +a
export EXTPY_MANIFEST="$W/mirror/manifest.yaml" EXTPY_NO_PROGRESS=1 \
  EXTPY_TIMEOUT=2 EXTPY_RETRIES=2 EXTPY_JOBS=2
unset EXTPY_OFFLINE EXTPY_JSON HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy

DEST="$W/dest"
STAGE="$W/stage"
TOPO="$W/topology.yaml"
printf "schema: 1\nnodes:\n  - name: HAC1\n    vu_root: 'D:\\\\SCP\\\\vu'\n    cores: [Core1, Core2, Core3, Core4]\n" >"$TOPO"

# The mirror's control endpoints, through Python (no curl needed): chaos percentage, counts.
control() {
  python3 - "$MIRROR_URL/_soak/$1" "$EXTPY_CA_CERT" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=30).read().decode())
PY
}

START=$(date +%s)
DEADLINE=$(( START + DURATION ))
# The soak runs in rounds: every round's runs share one cache, which starts empty, so that
# downloads (and the faults on them) go on all the time; DEST and the layout live on.
ROUND=${SOAK_ROUND_SECONDS:-6}
cache_now() { echo "$W/cache-$(( ($(date +%s) - START) / ROUND ))"; }

worker() {
  local id=$1 n=0 cmd rc pid
  while [ "$(date +%s)" -lt "$DEADLINE" ]; do
    n=$((n + 1))
    case $((RANDOM % 3)) in
      0) cmd=(fetch) ;;
      1) cmd=(build "$DEST") ;;
      *) cmd=(layout "$TOPO" --out "$STAGE") ;;
    esac
    EXTPY_CACHE_DIR=$(cache_now) "$EXTPY" "${cmd[@]}" >"$W/logs/$id.$n.out" 2>"$W/logs/$id.$n.err" &
    pid=$!
    : >"$W/pids/$pid"
    wait "$pid" 2>/dev/null
    rc=$?
    rm -f "$W/pids/$pid"
    echo "${cmd[0]} $rc $id.$n" >>"$W/results/$id"
  done
}

killer() {
  while :; do
    sleep "$(( 1 + RANDOM % 3 )).$(( RANDOM % 10 ))"
    # shellcheck disable=SC2012
    victim=$(ls "$W/pids" 2>/dev/null | shuf -n 1 2>/dev/null)
    if [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null; then
      echo "$victim" >>"$W/kills"
    fi
  done
}

echo "soak: ${DURATION}s, $WORKERS workers, ${CHAOS}% of requests faulted (seed $SEED), in $W"
killer &
KPID=$!
for i in $(seq 1 "$WORKERS"); do worker "$i" & done
for job in $(jobs -p); do [ "$job" != "$KPID" ] && [ "$job" != "$MPID" ] && wait "$job"; done
kill "$KPID" 2>/dev/null
wait "$KPID" 2>/dev/null
KPID=""

VIOLATIONS=0
violation() { echo "VIOLATION: $*"; VIOLATIONS=$((VIOLATIONS + 1)); }

# Outcomes: 0 ok, 3 verification (wrong bytes served), 4 network (faults outlasted the
# retries), 137 killed. Anything else is a violation, and so is a layout that found a VU
# differing from its seal (a half-written VU in place) or any panic.
cat "$W"/results/* >"$W/all-results"
while read -r cmd rc run; do
  case "$rc" in
    0 | 3 | 4 | 137) ;;
    *) violation "$cmd ($run) exited $rc: $(head -c 600 "$W/logs/$run.err")" ;;
  esac
  if grep -q "panicked" "$W/logs/$run.err"; then violation "$cmd ($run) panicked: $(head -c 600 "$W/logs/$run.err")"; fi
  if [ "$cmd" = layout ] && grep -q "differ from their seal" "$W/logs/$run.err" "$W/logs/$run.out"; then
    violation "layout ($run) found a damaged VU: $(head -c 600 "$W/logs/$run.out")"
  fi
done <"$W/all-results"

FAULTS=$(control faults)
control chaos/0 >/dev/null

# The state the soak left, before any further run.
verify_dir() { "$EXTPY" verify "$1" >"$W/verify.out" 2>&1 || { violation "$2: $(head -c 800 "$W/verify.out")"; return 1; }; }
DEST_STATE="absent (never built)"
if [ -d "$DEST" ]; then
  verify_dir "$DEST" "DEST does not verify against the seal the manifest produces" && DEST_STATE="a complete verified distribution"
else
  parked=$(ls -d "$W"/.dest.extpy-old-* 2>/dev/null | head -n 1)
  if [ -n "$parked" ]; then
    verify_dir "$parked" "the parked previous DEST does not verify" && DEST_STATE="its previous state, parked by a killed swap"
  elif grep -q '^build 0 ' "$W/all-results"; then
    violation "DEST is gone although a build completed, and no previous copy is parked"
  fi
fi
VUS=0
for vu in "$STAGE"/HAC1/ExternalPython*/Python/External; do
  [ -d "$vu" ] || continue
  VUS=$((VUS + 1))
  verify_dir "$vu" "VU $vu does not verify against the seal the manifest produces"
done
export EXTPY_CACHE_DIR="$W/cache-final"
BLOBS=0
CACHES=$(ls -d "$W"/cache-* 2>/dev/null | wc -l)
for blob in "$W"/cache-*/sha256/*; do
  [ -f "$blob" ] || continue
  BLOBS=$((BLOBS + 1))
  [ "$(sha256sum "$blob" | cut -d' ' -f1)" = "$(basename "$blob")" ] || violation "cache blob $(basename "$blob") does not hash to its name"
done
for b in "$W"/cache-*/builds/*/; do
  [ -d "$b" ] && verify_dir "$b" "cached build $b does not verify"
done

# The next run (no faults) completes, and leaves no temporary folder anywhere.
"$EXTPY" build "$DEST" >"$W/final-build.log" 2>&1 || violation "the next build failed: $(tail -c 800 "$W/final-build.log")"
"$EXTPY" layout "$TOPO" --out "$STAGE" >"$W/final-layout.log" 2>&1 || violation "the next layout failed: $(tail -c 800 "$W/final-layout.log")"
"$EXTPY" verify --topology "$TOPO" --out "$STAGE" >"$W/final-verify.log" 2>&1 || violation "the layout does not verify: $(tail -c 800 "$W/final-verify.log")"
verify_dir "$DEST" "DEST does not verify after the next run"
LEFT=$(find "$W" -path "$W/logs" -prune -o \( -name '*.extpy-tmp-*' -o -name '*.extpy-old-*' -o -name 'extpy-bundle-*' -o -name 'extpy-layout-*' \) -print)
[ -z "$LEFT" ] || violation "temporary folders left after the next run: $LEFT"

PARTIALS=$(find "$W"/cache-*/partial -type f 2>/dev/null | wc -l)
RUNS=$(wc -l <"$W/all-results")
KILLS=$( [ -f "$W/kills" ] && wc -l <"$W/kills" || echo 0)
echo "soak: $RUNS runs in ${DURATION}s ($WORKERS at a time), $KILLS killed"
echo "soak: faults injected by the mirror: $FAULTS"
echo "soak: outcomes (command exit-code count; 0 ok, 3 verification, 4 network, 137 killed):"
awk '{ n[$1 " " $2]++ } END { for (k in n) printf "  %-12s %5d\n", k, n[k] }' "$W/all-results" | sort
echo "soak: end state: DEST $DEST_STATE; $VUS VU folders verified; $BLOBS blobs in $CACHES caches, each hashing to its name ($PARTIALS partial downloads kept apart for resuming)"
if [ "$VIOLATIONS" -gt 0 ]; then
  echo "soak: $VIOLATIONS violation(s)"
  SOAK_KEEP=1
  exit 1
fi
echo "soak: no violation"
