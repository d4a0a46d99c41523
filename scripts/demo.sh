#!/usr/bin/env bash
# Builds extpy and runs its main job end to end on this machine, with no internet: a local
# HTTPS mirror (examples/mirror.rs, the one the tests use) serves a synthetic embeddable
# CPython and three small wheels behind a CA made on the spot; extpy fetches and verifies
# them, builds the External Python (as get-py.ps1 did) and checks it against its seal, lays
# out the example topology's VUs, writes the runbook and an offline bundle, and shows what
# `extpy doctor` says about the mirror with and without its CA.
#
#   scripts/demo.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"

cargo build --release --quiet --bin extpy --example mirror
EXTPY=$PWD/target/release/extpy

./target/release/examples/mirror --out "$WORK/mirror" >"$WORK/mirror.log" 2>&1 &
MIRROR_PID=$!
trap 'kill $MIRROR_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q ready "$WORK/mirror.log" 2>/dev/null && break; sleep 0.1; done
# The mirror writes EXTPY_PYTHON_MIRROR, EXTPY_INDEX_URL and EXTPY_CA_CERT.
set -a; . "$WORK/mirror/env"; set +a
export EXTPY_MANIFEST=$WORK/mirror/manifest.yaml EXTPY_CACHE_DIR=$WORK/cache

echo "== extpy doctor (the mirror's CA is trusted through EXTPY_CA_CERT)"
"$EXTPY" doctor "$MIRROR_URL/simple/" | head -1
echo "== extpy doctor without that CA: the verdict and the fix"
env -u EXTPY_CA_CERT "$EXTPY" doctor "$MIRROR_URL/simple/" | sed -n '1p;/fix/,/probe/p' || true
echo "== extpy fetch (cold cache)"
"$EXTPY" fetch
echo "== extpy build (warm cache: no network), in $WORK/install"
mkdir -p "$WORK/install"
(cd "$WORK/install" && "$EXTPY" build)
echo "== extpy verify"
"$EXTPY" verify "$WORK/install/contents/Python/external"
echo "== extpy layout of the example topology (staged; D:\\SCP\\vu is where it goes on the node)"
"$EXTPY" layout manifests/topology.example.yaml --out "$WORK/stage"
echo "== extpy verify --topology (the vendor's copy check, one line per VU)"
"$EXTPY" verify --topology manifests/topology.example.yaml --node HAC1 --vu-root "$WORK/stage/HAC1"
echo "== extpy plan (the runbook; also --format json|yaml|html)"
"$EXTPY" plan manifests/topology.example.yaml --out "$WORK/runbook.md"
echo "== extpy bundle create, twice: the same bytes"
"$EXTPY" bundle create "$WORK/b.zip" --topology manifests/topology.example.yaml | tail -1
"$EXTPY" bundle create "$WORK/b.zip" --topology manifests/topology.example.yaml | tail -1
"$EXTPY" bundle verify "$WORK/b.zip"
echo "demo folder: $WORK"
