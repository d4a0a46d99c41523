#!/usr/bin/env bash
# Benchmark: `extpy layout` of 8 ExternalPython VUs (one node, eight cores) beside `cp -r`
# of the same distribution eight times, in one run. extpy also verifies every copy against
# the seal (it reads each file back) and renames each VU into place only when it matched.
#
#   RUNS=5 scripts/bench-layout.sh
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
extpy_layout() { "$EXTPY" "${M[@]}" layout "$WORK/topology-8.yaml" --node HAC1 --vu-root "$WORK/extpy-out" --dist "$WORK/dist"; }
extpy_verify() { "$EXTPY" "${M[@]}" verify --topology "$WORK/topology-8.yaml" --node HAC1 --vu-root "$WORK/extpy-out"; }

measure "cp -r (8 VUs)" 'rm -rf "$WORK/cp-out"' cp_eight
measure "extpy layout (8 VUs)" 'rm -rf "$WORK/extpy-out"' extpy_layout
measure "extpy layout (again, no-op)" ':' extpy_layout
measure "extpy verify --topology" ':' extpy_verify

echo
echo "extpy layout (copy + verify of 8 VUs) takes $(echo "${T[extpy layout (8 VUs)]} / ${T[cp -r (8 VUs)]}" | bc -l | xargs printf '%.2f')x the time of cp -r (copy only)"
echo "a second extpy layout (verifies all 8, copies nothing) takes $(echo "${T[extpy layout (again, no-op)]} / ${T[cp -r (8 VUs)]}" | bc -l | xargs printf '%.2f')x the time of cp -r"
