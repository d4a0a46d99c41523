#!/usr/bin/env bash
# Benchmark: `extpy layout --out` of 8 ExternalPython VUs (one node, eight cores) beside
# `cp -r` of the same distribution eight times, in one run. extpy also checks every source
# file against the seal, reads every written file back and compares it, and renames each VU
# into place only when it matched. Rounds alternate the two, and each round's ratio is
# kept, so the result is a median ratio with its spread.
#
#   RUNS=5 scripts/bench-layout.sh
#   EXTPY_BASE=/path/to/an/earlier/extpy RUNS=7 scripts/bench-layout.sh  # before/after, same rounds
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
start_mirror

M=(--manifest "$WORK/mirror/manifest.yaml" --cache-dir "$WORK/extpy-cache" -q)
"$EXTPY" "${M[@]}" build "$WORK/dist" # the real ten wheels, built once
cat >"$WORK/topology-8.yaml" <<'YAML'
schema: 1
nodes:
  - name: HAC1
    vu_root: 'D:\SCP\vu'
    cores: [Core1, Core2, Core3, Core4, Core5, Core6, Core7, Core8]
YAML

cp_eight() {
  for i in 1 2 3 4 5 6 7 8; do
    mkdir -p "$WORK/cp-out/ExternalPython$i/Python"
    cp -r "$WORK/dist" "$WORK/cp-out/ExternalPython$i/Python/External"
  done
}
extpy_layout() { "$EXTPY" "${M[@]}" layout "$WORK/topology-8.yaml" --out "$WORK/extpy-out" --dist "$WORK/dist"; }
base_layout() { "$EXTPY_BASE" "${M[@]}" layout "$WORK/topology-8.yaml" --out "$WORK/extpy-out" --dist "$WORK/dist"; }
extpy_verify() { "$EXTPY" "${M[@]}" verify --topology "$WORK/topology-8.yaml" --out "$WORK/extpy-out"; }

timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); echo "$t1 - $t0" | bc -l; }
# The outputs of a round are moved aside and deleted after the last round, not before the
# next: ext4 without a journal skips every inode deleted in the last minute when it creates
# a file, one by one, so a round right after deleting 2,800 files measured that scan (up to
# 10x the copy) rather than the copy.
TRASH="$WORK/trash-$$"
trap 'kill $MIRROR_PID 2>/dev/null || true; rm -rf "$TRASH"' EXIT
set_aside() { mkdir -p "$TRASH"; for d in "$@"; do [ ! -e "$d" ] || mv "$d" "$TRASH/$(basename "$d")-$RANDOM$RANDOM"; done; }
CP=() LAYOUT=() RATIO=() BASE=() BASE_RATIO=()
for _ in $(seq "$RUNS"); do
  set_aside "$WORK/cp-out" "$WORK/extpy-out"
  sync
  c=$(timed cp_eight)
  if [ -n "${EXTPY_BASE:-}" ]; then
    sync
    b=$(timed base_layout)
    BASE+=("$b") BASE_RATIO+=("$(echo "$b / $c" | bc -l)")
    set_aside "$WORK/extpy-out"
  fi
  sync
  l=$(timed extpy_layout)
  CP+=("$c") LAYOUT+=("$l") RATIO+=("$(echo "$l / $c" | bc -l)")
done
rm -rf "$TRASH"
spread() { printf '%s\n' "$@" | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
printf '%-28s median %.3fs (%ss)\n' "cp -r (8 VUs)" "$(printf '%s\n' "${CP[@]}" | median)" "$(spread "${CP[@]}")"
printf '%-28s median %.3fs (%ss)\n' "extpy layout --out (8 VUs)" "$(printf '%s\n' "${LAYOUT[@]}" | median)" "$(spread "${LAYOUT[@]}")"
if [ -n "${EXTPY_BASE:-}" ]; then
  printf '%-28s median %.3fs (%ss)\n' "EXTPY_BASE layout --out" "$(printf '%s\n' "${BASE[@]}" | median)" "$(spread "${BASE[@]}")"
fi
measure "extpy layout (again, no-op)" ':' extpy_layout
measure "extpy verify --topology" ':' extpy_verify

echo
echo "extpy layout (copy + verify of 8 VUs) takes $(printf '%s\n' "${RATIO[@]}" | median | xargs printf '%.2f')x the time of cp -r (copy only), per round $(spread "${RATIO[@]}")x"
if [ -n "${EXTPY_BASE:-}" ]; then
  echo "EXTPY_BASE's layout took $(printf '%s\n' "${BASE_RATIO[@]}" | median | xargs printf '%.2f')x the time of cp -r in the same rounds, per round $(spread "${BASE_RATIO[@]}")x"
fi
echo "a second extpy layout (verifies all 8, copies nothing) takes $(echo "${T[extpy layout (again, no-op)]} / $(printf '%s\n' "${CP[@]}" | median)" | bc -l | xargs printf '%.2f')x the time of cp -r"
