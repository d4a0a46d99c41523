#!/usr/bin/env bash
# The Windows lane: extpy.exe (scripts/build-windows.sh) run under Wine, with Windows paths
# on a D: drive, against the Linux extpy of the same commit as the reference. Also compiles
# and runs the unit tests for Windows under Wine, and runs clippy for the Windows target.
#
# Installs what it needs (Wine, the mingw-w64 compiler) from the package registry when it
# is missing, and fails loudly when it cannot. Every check prints one PASS or FAIL line; the
# last line is the summary `windows-lane: N passed, M failed`, and the exit code is non-zero
# when anything failed.
#
# What Wine cannot show (and the Linux tests cover instead): HTTPS through the Windows
# certificate verifier (Wine's crypt32 rejects the CryptoAPI chain engine rustls-platform-
# verifier creates), sharing violations of a real NTFS volume, PowerShell (get-py.ps1), the
# scheduled tasks of `watch install` (Wine's powershell.exe is a stub that runs nothing, and
# its schtasks.exe refuses /Create /TR: the lane asserts the commands through
# EXTPY_WATCH_RUNNER), and the self-test's probe in a real CPython (Wine starts a Linux
# python3 handed to CreateProcess, but not as a Windows process: its output bypasses the
# pipes and its handle never ends).
#
#   scripts/test-windows.sh [--skip-unit]   (--skip-unit: only the end-to-end flows)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/windows/common.sh

SKIP_UNIT=
for a in "$@"; do
  case $a in
    --skip-unit) SKIP_UNIT=1 ;;
    *) win_die "unknown argument $a
help: scripts/test-windows.sh [--skip-unit]" ;;
  esac
done

set -e
apt_install wine64 gcc-mingw-w64-x86-64
WINE=/usr/lib/wine/wine64
WINESERVER=/usr/lib/wine/wineserver
[ -x "$WINE" ] || win_die "$WINE is missing although wine64 is installed
help: reinstall it: apt-get install --reinstall wine64"

# The reference: the Linux extpy and the fixture mirror of this commit, built by the host
# toolchain (the debug profile, which the test suite has already built in CI).
cargo build --locked --quiet --bin extpy --example mirror
LINUX_EXTPY=$ROOT/target/debug/extpy
MIRROR_BIN=$ROOT/target/debug/examples/mirror
# The exe the release archive ships.
scripts/build-windows.sh
EXE=$ROOT/target/windows/$WIN_TARGET/release/extpy.exe

# A Wine prefix of the lane's own, no display, no Wine chatter, and no Gecko/Mono installers.
W=$ROOT/target/wine
export WINEPREFIX=$W/prefix WINEDEBUG=-all DISPLAY= WINEDLLOVERRIDES="mscoree,mshtml="
unset WAYLAND_DISPLAY
mkdir -p "$W"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "creating the Wine prefix $WINEPREFIX" >&2
  "$WINE" wineboot --init >/dev/null 2>&1 || true
  "$WINESERVER" -w
  [ -f "$WINEPREFIX/system.reg" ] || win_die "wineboot did not create $WINEPREFIX
help: run WINEPREFIX=$WINEPREFIX $WINE wineboot --init and read its output"
fi
# Wine 8 has no bcryptprimitives.dll, whose ProcessPrng Rust's standard library imports.
"$WIN_MINGW_CC" -shared -O2 -s -o "$W/bcryptprimitives.dll" scripts/windows/bcryptprimitives.c -ladvapi32
cp "$W/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
cleanup() {
  for p in ${MIRROR_PIDS:-}; do kill "$p" 2>/dev/null || true; done
  "$WINESERVER" -k 2>/dev/null || true
}
trap cleanup EXIT

# D: is a folder of the lane, fresh every run.
D=$W/d
rm -rf "$D" "$W/out"
mkdir -p "$D" "$W/out"
ln -sfn "$D" "$WINEPREFIX/dosdevices/d:"
OUT=$W/out
set +e

PASSED=0
FAILED=0
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() {
  echo "FAIL $1"
  FAILED=$((FAILED + 1))
  [ -n "${2:-}" ] && [ -s "$2" ] && sed 's/^/    | /' "$2" | tail -15
  return 0
}
# check NAME COMMAND...: PASS when the command succeeds.
check() {
  local name=$1
  shift
  if "$@" >"$OUT/check.log" 2>&1; then pass "$name"; else fail "$name" "$OUT/check.log"; fi
}

# dpath REL: the Windows path of $D/REL.
dpath() { printf 'D:\\%s' "${1//\//\\}"; }
# winepath_w UNIXPATH: the Windows path Wine gives a unix path outside D: (Z:\...).
winepath_w() { "$WINE" winepath -w "$1" 2>/dev/null | tr -d '\r'; }

# win TAG DIR ARGS...: extpy.exe in the unix folder DIR (seen by Windows under D:), with the
# lane's settings as Windows paths. Output in $OUT/TAG.out and .err, exit code in RC.
win() {
  local tag=$1 dir=$2
  shift 2
  (cd "$dir" && env EXTPY_CACHE_DIR="${WIN_CACHE:-$(dpath cache)}" EXTPY_MANIFEST="$(dpath manifest.yaml)" \
    "$WINE" "$EXE" "$@") >"$OUT/$tag.out" 2>"$OUT/$tag.err"
  RC=$?
  # Wine ends a process's output with a CR LF pair only where the program wrote one.
  return 0
}
# lin TAG DIR ARGS...: the Linux extpy, same settings as unix paths.
lin() {
  local tag=$1 dir=$2
  shift 2
  (cd "$dir" && env EXTPY_CACHE_DIR="${LIN_CACHE:-$D/cache}" EXTPY_MANIFEST="$D/manifest.yaml" \
    "$LINUX_EXTPY" "$@") >"$OUT/$tag.out" 2>"$OUT/$tag.err"
  RC=$?
  return 0
}
# expect_rc TAG WANT WHAT: the last run's exit code.
expect_rc() {
  if [ "$RC" = "$2" ]; then pass "$3 (exit $RC)"; else fail "$3: exit $RC, expected $2" "$OUT/$1.err"; fi
}
# The seal digest of a built folder (unix path).
seal_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$1/extpy-seal.json" 2>/dev/null; }

# start_mirror NAME ARGS...: a plain-HTTP fixture mirror; its settings in $D/NAME/env.
MIRROR_PIDS=
start_mirror() {
  local name=$1
  shift
  "$MIRROR_BIN" --plain --out "$D/$name" "$@" >"$OUT/$name.log" 2>&1 &
  MIRROR_PIDS="$MIRROR_PIDS $!"
  for _ in $(seq 100); do grep -q ready "$OUT/$name.log" 2>/dev/null && return 0; sleep 0.1; done
  fail "mirror $name started" "$OUT/$name.log"
  return 1
}
mirror_env() { sed -n "s/^$2=//p" "$D/$1/env"; }

echo "== windows lane: $EXE under $("$WINE" --version), D: = $D"
PY=3.12.10
ZIP_PATH=/python/$PY/python-$PY-embed-amd64.zip

# --- fetch from a plain http:// loopback mirror: Windows sockets, retries, resume ---------
start_mirror mirror \
  --fault "$ZIP_PATH=reset:600" \
  --fault "/files/alpha-1.0-py3-none-any.whl=status:503" \
  --fault "/files/beta_pkg-2.1-py3-none-any.whl=too-many:1" || true
cp "$D/mirror/manifest.yaml" "$D/manifest.yaml"
export EXTPY_PYTHON_MIRROR EXTPY_INDEX_URL
EXTPY_PYTHON_MIRROR=$(mirror_env mirror EXTPY_PYTHON_MIRROR)
EXTPY_INDEX_URL=$(mirror_env mirror EXTPY_INDEX_URL)
win fetch "$D" fetch --json
expect_rc fetch 0 "fetch over http:// on Windows sockets"
check "fetch resumed the reset download of the embeddable zip with a Range request" \
  python3 - "$OUT/fetch.out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
a = {x["file"]: x for x in doc["artifacts"]}
z = next(x for f, x in a.items() if f.endswith("embed-amd64.zip"))
assert z["resumed"] and z["attempts"] >= 2, z
assert a["alpha-1.0-py3-none-any.whl"]["attempts"] >= 2, a["alpha-1.0-py3-none-any.whl"]
assert a["beta_pkg-2.1-py3-none-any.whl"]["attempts"] >= 2, a["beta_pkg-2.1-py3-none-any.whl"]
assert all(x["from"] == "network" for x in doc["artifacts"]), doc
PY
check "fetch retried the 503 and the 429 (said so on stderr)" grep -q "retrying in" "$OUT/fetch.err"
win fetch-warm "$D" fetch --json
check "a second fetch is served from the cache" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert all(x["from"]=="cache" for x in d["artifacts"]), d' "$OUT/fetch-warm.out"

# --- the OS gate reads the running Windows version --------------------------------------
# A fresh Wine prefix says Windows 7; the gate must refuse CPython 3.12 there (exit 2, with the
# lines that run) and write nothing. Every check after this runs as Windows 10 (a CEM node).
win_version() { "$WINE" winecfg /v "$1" >/dev/null 2>&1; "$WINESERVER" -w; }
win_version win7
mkdir -p "$D/gate"
win gate "$D/gate" build --offline
expect_rc gate 2 "build of CPython 3.12 on Windows 7 is refused by the OS gate"
check "the gate named Windows 7 and what runs there" grep -q "Windows 7" "$OUT/gate.err"
check "the refused build wrote nothing" test ! -e "$D/gate/contents"
win_version win10

# --- build with no argument in D:\install\7.0.12.0\Python for CEM, from the cache --------
INST="install/7.0.12.0/Python for CEM"
mkdir -p "$D/$INST"
win build1 "$D/$INST" build --offline
expect_rc build1 0 "build with no argument in $(dpath "$INST"), offline from the cache"
GEN="Generating python at location: $(dpath "$INST/contents/Python/external")"
check "build printed: $GEN" grep -qxF "$GEN" "$OUT/build1.err" "$OUT/build1.out"
WTREE=$D/$INST/contents/Python/external
WSEAL=$(seal_of "$WTREE")
check "the Windows build is sealed" test -n "$WSEAL"
echo "stray" >"$WTREE/stray.txt"
win build2 "$D/$INST" build --offline
expect_rc build2 0 "a second build replaces the first"
check "the second build left nothing of the first (stray file gone, same seal)" \
  bash -c '[ ! -e "$1/stray.txt" ] && [ "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"digest\"])" "$1/extpy-seal.json")" = "$2" ]' _ "$WTREE" "$WSEAL"
check "no temporary folder is left beside the build" \
  bash -c '! ls -A "$1" | grep -v "^external$" | grep -v "^\.external\.extpy-lock$" | grep -q .' _ "$D/$INST/contents/Python"

# --- verify, both ways --------------------------------------------------------------------
win verify-w "$D" verify "$(dpath "$INST/contents/Python/external")"
expect_rc verify-w 0 "verify on Windows"
mkdir -p "$D/linux"
lin build-l "$D/linux" build --offline "$D/linux/external"
expect_rc build-l 0 "build on Linux from the same cache"
check "Linux and Windows builds have the same seal ($WSEAL)" test "$(seal_of "$D/linux/external")" = "$WSEAL"
check "Linux and Windows seals are byte-identical files" cmp "$D/linux/external/extpy-seal.json" "$WTREE/extpy-seal.json"
lin verify-wl "$D" verify "$WTREE"
expect_rc verify-wl 0 "the tree built on Windows verifies on Linux"
win verify-lw "$D" verify "$(dpath linux/external)"
expect_rc verify-lw 0 "the tree built on Linux verifies on Windows"
printf 'x' >>"$D/linux/external/python312._pth"
win verify-bad "$D" verify "$(dpath linux/external)"
expect_rc verify-bad 3 "verify on Windows of a changed file"
check "verify named the changed file" grep -q "python312._pth" "$OUT/verify-bad.out" "$OUT/verify-bad.err"

mkdir -p "$D/foreign/Python for CEM/contents/Python/external"
echo "not extpy's" >"$D/foreign/Python for CEM/contents/Python/external/keep.txt"
win build-foreign "$D/foreign/Python for CEM" build --offline
expect_rc build-foreign 2 "build refuses a non-empty folder extpy did not build"
check "the refused folder is untouched" test -f "$D/foreign/Python for CEM/contents/Python/external/keep.txt"

# --- layout on the node, idempotent, tampered, repaired, verify --topology ---------------
cat >"$D/topology.yaml" <<'EOF'
schema: 1
system: Windows lane
manifest: manifest.yaml
nodes:
  - name: HAC1
    vu_root: 'D:\SCP\vu'
    cores: [Core1, Core2]
EOF
TOPO=$(dpath topology.yaml)
win layout1 "$D" layout "$TOPO" --node HAC1 --vu-root 'D:\SCP\vu' --offline
expect_rc layout1 0 "layout --node HAC1 --vu-root D:\\SCP\\vu"
VU1=$D/SCP/vu/ExternalPython1/Python/External
check "both VUs hold the distribution with the build's seal" \
  bash -c '[ "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"digest\"])" "$1/extpy-seal.json")" = "$3" ] && [ -f "$2/extpy-seal.json" ]' _ "$VU1" "$D/SCP/vu/ExternalPython2/Python/External" "$WSEAL"
check "the layout table names the External Python Directory as a Windows path" \
  grep -qF 'D:\SCP\vu\ExternalPython1\Python\External' "$OUT/layout1.out"
snapshot() { (cd "$D/SCP/vu" && find . -printf '%p %s %T@\n' | sort); }
snapshot >"$OUT/vu-before"
win layout2 "$D" layout "$TOPO" --node HAC1 --vu-root 'D:\SCP\vu' --offline
expect_rc layout2 0 "layout re-run"
check "the re-run said there was nothing to do" grep -q "nothing to do: all 2 VU folders already match" "$OUT/layout2.out" "$OUT/layout2.err"
snapshot >"$OUT/vu-after"
check "the re-run touched no file (names, sizes, times)" cmp "$OUT/vu-before" "$OUT/vu-after"
printf 'tampered' >>"$VU1/python312._pth"
win layout3 "$D" layout "$TOPO" --node HAC1 --vu-root 'D:\SCP\vu' --offline
expect_rc layout3 3 "layout reports the tampered VU"
check "the tampered VU is named and left as it was" \
  bash -c 'grep -q ExternalPython1 "$1" "$2" && tail -c 8 "$3" | grep -q tampered' _ "$OUT/layout3.out" "$OUT/layout3.err" "$VU1/python312._pth"
win vtopo-bad "$D" verify --topology "$TOPO" --node HAC1 --vu-root 'D:\SCP\vu'
expect_rc vtopo-bad 3 "verify --topology reports the tampered VU"
win layout4 "$D" layout "$TOPO" --node HAC1 --vu-root 'D:\SCP\vu' --offline --repair
expect_rc layout4 0 "layout --repair"
check "--repair replaced the tampered VU and only it" \
  bash -c 'grep -q "ExternalPython1.*repaired" "$1" && grep -q "ExternalPython2.*unchanged" "$1" && ! grep -q tampered "$2"' _ "$OUT/layout4.out" "$VU1/python312._pth"
win vtopo "$D" verify --topology "$TOPO" --node HAC1 --vu-root 'D:\SCP\vu'
expect_rc vtopo 0 "verify --topology after the repair"
lin vtopo-l "$D" verify --topology "$D/topology.yaml" --node HAC1 --vu-root "$D/SCP/vu"
expect_rc vtopo-l 0 "the VUs laid out on Windows verify on Linux"

# --- bundles: the same bytes on both, and offline build/layout from one -------------------
win bundle-w "$D" bundle create "$(dpath bundle-win.zip)" --topology "$TOPO"
expect_rc bundle-w 0 "bundle create on Windows"
lin bundle-l "$D" bundle create "$D/bundle-linux.zip" --topology "$D/topology.yaml"
expect_rc bundle-l 0 "bundle create on Linux"
check "the Windows and Linux bundles are byte-identical" cmp "$D/bundle-win.zip" "$D/bundle-linux.zip"
win bundle-verify "$D" bundle verify "$(dpath bundle-linux.zip)"
expect_rc bundle-verify 0 "bundle verify on Windows of the Linux bundle"
cp "$D/bundle-win.zip" "$D/bundle-bad.zip"
python3 - "$D/bundle-bad.zip" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b"PK\x03\x04", 1)  # the second entry's header: corrupt a byte of the first entry's data
b[i - 1] ^= 0xFF
open(p, "wb").write(bytes(b))
PY
win bundle-bad "$D" bundle verify "$(dpath bundle-bad.zip)"
expect_rc bundle-bad 3 "bundle verify of a corrupted bundle"

# The exe for Windows nodes, bundled on Linux and taken from the bundle by the rollout.
lin bundle-exe "$D" bundle create "$D/bundle-exe.zip" --topology "$D/topology.yaml" --include-exe "$EXE"
expect_rc bundle-exe 0 "bundle create --include-exe extpy.exe on Linux"
lin rollout "$D" rollout --bundle "$D/bundle-exe.zip" --out "$D/rollout" --target windows
expect_rc rollout 0 "rollout --target windows with the exe from the bundle"
check "the rollout ships the very extpy.exe that was bundled" cmp "$EXE" "$D/rollout/files/extpy.exe"
EXE_SAVED=$EXE
EXE=$D/rollout/files/extpy.exe
win bundle-exe-verify "$D" bundle verify "$(dpath bundle-exe.zip)"
expect_rc bundle-exe-verify 0 "that extpy.exe runs on Windows and verifies the bundle that carried it"
EXE=$EXE_SAVED

# --- signed bundles: signed on Linux with a key made there, checked by extpy.exe -------------
lin key "$D" key generate --unencrypted "$D/site.key"
expect_rc key 0 "key generate on Linux"
lin bundle-signed "$D" bundle create "$D/bundle-signed.zip" --topology "$D/topology.yaml" --sign "$D/site.key"
expect_rc bundle-signed 0 "bundle create --sign on Linux"
win signed-verify "$D" bundle verify "$(dpath bundle-signed.zip)" --trusted-key "$(dpath site.pub)"
expect_rc signed-verify 0 "bundle verify --trusted-key on Windows of the bundle signed on Linux"
check "extpy.exe names the key that signed it" grep -q "signed by trusted key" "$OUT/signed-verify.out"
win unsigned-verify "$D" bundle verify "$(dpath bundle-linux.zip)" --trusted-key "$(dpath site.pub)"
expect_rc unsigned-verify 3 "bundle verify --trusted-key on Windows refuses an unsigned bundle"
check "extpy.exe says the bundle is not signed" grep -q "the bundle is not signed" "$OUT/unsigned-verify.out"

# Offline: an empty cache and the mirror settings pointing at a port nothing listens on.
DEAD="http://127.0.0.1:9/"
OFF="offline/7.0.12.0/Python for CEM"
mkdir -p "$D/$OFF" "$D/empty-cache"
WIN_CACHE=$(dpath empty-cache) EXTPY_PYTHON_MIRROR=$DEAD EXTPY_INDEX_URL=$DEAD \
  win build-b "$D/$OFF" build --bundle "$(dpath bundle-win.zip)" --offline
expect_rc build-b 0 "build --bundle with no argument, offline, empty cache"
check "build --bundle printed: Generating python at location: $(dpath "$OFF/contents/Python/external")" \
  grep -qxF "Generating python at location: $(dpath "$OFF/contents/Python/external")" "$OUT/build-b.err" "$OUT/build-b.out"
check "the build from the bundle has the same seal" test "$(seal_of "$D/$OFF/contents/Python/external")" = "$WSEAL"
WIN_CACHE=$(dpath empty-cache) EXTPY_PYTHON_MIRROR=$DEAD EXTPY_INDEX_URL=$DEAD \
  win layout-b "$D" layout "$TOPO" --node HAC1 --vu-root 'D:\SCP\vu2' --bundle "$(dpath bundle-win.zip)" --offline
expect_rc layout-b 0 "layout --bundle offline into D:\\SCP\\vu2"
win vtopo-b "$D" verify --topology "$TOPO" --node HAC1 --vu-root 'D:\SCP\vu2'
expect_rc vtopo-b 0 "verify --topology of the VUs laid out from the bundle"
win build-nob "$D/$OFF" build --bundle "$(dpath missing.zip)" --offline
expect_rc build-nob 2 "build --bundle naming a missing bundle"

# --- upgrade and rollback in a D:\ path with spaces ---------------------------------------
# Two distributions: the lane's CPython 3.12 (in the cache) and a 3.13 one served by a second
# mirror. Lay out 3.12, upgrade to 3.13 keeping the previous tree, verify says what is in
# place and kept, roll back, verify says 3.12 again, and nothing else changed.
start_mirror mirror313 --python 3.13.9 || true
UP="SCP upgrade"
mkdir -p "$D/$UP"
cp "$D/manifest.yaml" "$D/$UP/python-3.12.yaml"
cp "$D/mirror313/manifest.yaml" "$D/$UP/python-3.13.yaml"
cat >"$D/$UP/topology.yaml" <<'EOF'
schema: 1
system: Windows lane upgrade
manifest: python-3.12.yaml
nodes:
  - name: HAC1
    vu_root: 'D:\SCP upgrade\vu root'
    cores: [Core1, Core2]
EOF
UTOPO=$(dpath "$UP/topology.yaml")
M312=$(dpath "$UP/python-3.12.yaml")
M313=$(dpath "$UP/python-3.13.yaml")
UVU="$D/$UP/vu root/ExternalPython1/Python"
# Every file of the node's VU root with its size and sha256 (not its time: a rollback renames).
up_snapshot() { (cd "$D/$UP/vu root" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
win up1 "$D/$UP" layout "$UTOPO" --node HAC1 --manifest "$M312" --offline
expect_rc up1 0 "layout of CPython 3.12 into $(dpath "$UP/vu root")"
USEAL=$(seal_of "$UVU/External")
check "the 3.12 layout has the build's seal" test -n "$USEAL" -a "$USEAL" = "$WSEAL"
up_snapshot >"$OUT/up-before"
EXTPY_PYTHON_MIRROR=$(mirror_env mirror313 EXTPY_PYTHON_MIRROR) EXTPY_INDEX_URL=$(mirror_env mirror313 EXTPY_INDEX_URL) \
  win up2 "$D/$UP" layout "$UTOPO" --node HAC1 --manifest "$M313" --keep-previous
expect_rc up2 0 "layout --keep-previous of CPython 3.13 over it"
check "the upgrade said: updated, previous kept (both VUs)" \
  bash -c '[ "$(grep -c "updated, previous kept" "$1")" = 2 ]' _ "$OUT/up2.out"
check "3.13 is in place and the 3.12 tree is kept beside it as External.previous" \
  bash -c '[ -f "$1/External/python313._pth" ] && [ ! -e "$1/External/python312._pth" ] && [ "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"digest\"])" "$1/External.previous/extpy-seal.json")" = "$2" ]' _ "$UVU" "$USEAL"
win up-v1 "$D/$UP" verify --topology "$UTOPO" --node HAC1 --manifest "$M313"
expect_rc up-v1 0 "verify --topology against the 3.13 manifest"
check "verify says 3.13 is in place and 3.12 is kept, at its D:\\ path, matching its seal" \
  bash -c 'grep -q "in place: test-dist (CPython 3.13.9, seal " "$1" && grep -qF "previous copy kept: test-dist (CPython 3.12.10, seal " "$1" && grep -qF "at D:\\SCP upgrade\\vu root\\ExternalPython1\\Python\\External.previous, matching its seal" "$1"' _ "$OUT/up-v1.out"
win up-rb "$D/$UP" rollback "$UTOPO" --node HAC1
expect_rc up-rb 0 "rollback --node HAC1"
check "the rollback put 3.12 back in both VUs" \
  bash -c '[ "$(grep -c "rolled back; in place: test-dist (CPython 3.12.10" "$1")" = 2 ]' _ "$OUT/up-rb.out"
check "after the rollback the VU has the 3.12 seal again ($USEAL)" test "$(seal_of "$UVU/External")" = "$USEAL"
up_snapshot >"$OUT/up-after"
check "the rollback left every file of the VU root as it was before the upgrade" cmp "$OUT/up-before" "$OUT/up-after"
win up-v2 "$D/$UP" verify --topology "$UTOPO" --node HAC1 --manifest "$M312"
expect_rc up-v2 0 "verify --topology against the 3.12 manifest after the rollback"
check "verify says 3.12 is in place and no previous copy is kept" \
  bash -c 'grep -q "in place: test-dist (CPython 3.12.10, seal " "$1" && [ "$(grep -c "no previous copy kept" "$1")" = 2 ]' _ "$OUT/up-v2.out"
win up-rb2 "$D/$UP" rollback "$UTOPO" --node HAC1
expect_rc up-rb2 2 "a rollback with nothing kept is refused"
check "the refusal says no previous copy is kept, and the VUs are unchanged" \
  bash -c 'grep -q "no previous copy is kept" "$1" && [ "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"digest\"])" "$2/extpy-seal.json")" = "$3" ]' _ "$OUT/up-rb2.err" "$UVU/External" "$USEAL"

# --- selftest under Wine, on a distribution of real PE files -----------------------------
# Its programs and DLLs are PEs made here by mingw-w64: python.exe is a small program (not a
# CPython) that says so on stderr and exits 9; python312.dll and vcruntime140.dll are signed
# by osslsigncode with a throw-away certificate, the other four PEs are not. certifi is a
# stand-in wheel holding a CA bundle (selftest needs one to be about a complete build).
apt_install osslsigncode openssl
PE=$W/pe
rm -rf "$PE"
mkdir -p "$PE/wheels"
cat >"$PE/prog.c" <<'EOF'
#include <stdio.h>
int main(int argc, char **argv) {
  fprintf(stderr, "%s: the Windows lane's stand-in, not a CPython (%d arguments)\n", NAME, argc - 1);
  return 9;
}
EOF
cat >"$PE/lib.c" <<'EOF'
__declspec(dllexport) int lane_id(void) { return ID; }
EOF
pe_ok=1
for p in python.exe:1 pythonw.exe:2; do
  "$WIN_MINGW_CC" -O2 -s -DNAME="\"${p%%:*}\"" -o "$PE/${p%%:*}" "$PE/prog.c" || pe_ok=
done
for p in python312.dll:3 python3.dll:4 _socket.pyd:5 vcruntime140.dll:6; do
  "$WIN_MINGW_CC" -O2 -s -shared -DID="${p##*:}" -o "$PE/${p%%:*}" "$PE/lib.c" || pe_ok=
done
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=extpy lane signer" \
  -keyout "$PE/sign.key" -out "$PE/sign.pem" >"$OUT/sign.log" 2>&1 || pe_ok=
for f in python312.dll vcruntime140.dll; do
  osslsigncode sign -h sha256 -certs "$PE/sign.pem" -key "$PE/sign.key" -in "$PE/$f" -out "$PE/$f.signed" >>"$OUT/sign.log" 2>&1 &&
    mv "$PE/$f.signed" "$PE/$f" || pe_ok=
done
check "the PE files of the test distribution were compiled and two of them signed" test -n "$pe_ok"
python3 - "$PE" <<'PY'
import base64, hashlib, io, sys, zipfile
d = sys.argv[1]
def zip_of(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return b.getvalue()
pes = ["python.exe", "pythonw.exe", "python312.dll", "python3.dll", "_socket.pyd", "vcruntime140.dll"]
entries = [(n, open(f"{d}/{n}", "rb").read()) for n in pes]
entries += [
    ("python312.zip", zip_of([("os.pyc", b"fake os"), ("site.pyc", b"fake site")])),
    ("python312._pth", b"python312.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n"),
    ("LICENSE.txt", b"A. HISTORY OF THE SOFTWARE\n"),
]
open(f"{d}/python-3.12.10-embed-amd64.zip", "wb").write(zip_of(entries))
files = [
    ("certifi/__init__.py", b"import os\n\ndef where():\n    return os.path.join(os.path.dirname(__file__), 'cacert.pem')\n"),
    ("certifi/cacert.pem", open("/etc/ssl/certs/ca-certificates.crt", "rb").read()),
    ("certifi-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: certifi\nVersion: 1.0\n"),
    ("certifi-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nGenerator: extpy-lane\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
]
h = lambda b: "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()
record = "".join(f"{n},{h(b)},{len(b)}\n" for n, b in files) + "certifi-1.0.dist-info/RECORD,,\n"
files.append(("certifi-1.0.dist-info/RECORD", record.encode()))
open(f"{d}/wheels/certifi-1.0-py3-none-any.whl", "wb").write(zip_of(files))
PY
start_mirror petree --python-zip "$PE/python-3.12.10-embed-amd64.zip" --wheels "$PE/wheels" || true
PT="PE tree/Python for CEM"
mkdir -p "$D/$PT"
cp "$D/petree/manifest.yaml" "$D/PE tree/manifest.yaml"
PTM=$(dpath "PE tree/manifest.yaml")
PTREE=$(dpath "$PT/contents/Python/external")
WIN_CACHE=$(dpath pe-cache) EXTPY_PYTHON_MIRROR=$(mirror_env petree EXTPY_PYTHON_MIRROR) \
  EXTPY_INDEX_URL=$(mirror_env petree EXTPY_INDEX_URL) win pe-build "$D/$PT" build --manifest "$PTM"
expect_rc pe-build 0 "build of the distribution of real PE files in $(dpath "$PT")"

# selftest: Wine 8 does start a Linux program handed to CreateProcess, but not as a Windows
# process: its output bypasses the pipes and its handle never ends, so a Linux python3 cannot
# stand in for python.exe here (tests/selftest.rs runs the probe in a real CPython). What Wine
# shows: the folder's own python.exe is run, and what it did becomes the verdict.
win st-run "$D" selftest "$PTREE" --offline
expect_rc st-run 4 "selftest of a tree whose python.exe is not a CPython fails"
check "selftest ran the folder's own python.exe and quoted it: python_failed, exit code 9" \
  bash -c 'grep -qF "python.exe ended (exit code 9 / 0x00000009) without the self-test" "$1" && grep -qF "python.exe: the Windows lane'"'"'s stand-in, not a CPython" "$1" && grep -q "FAIL python_failed" "$1"' _ "$OUT/st-run.out"
win st-json "$D" --json selftest "$PTREE" --offline
check "selftest --json says the folder's python.exe ran (no stand-in) with the python_failed verdict" \
  python3 - "$OUT/st-json.out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
f = doc["folders"][0]
assert f["stand_in"] is False and f["interpreter"].endswith("\\python.exe"), f
assert not f["ok"] and [v["code"] for v in f["verdicts"]] == ["python_failed"], f
PY
rm -rf "$D/PE tree/nopython"
cp -r "$D/$PT/contents/Python/external" "$D/PE tree/nopython"
rm "$D/PE tree/nopython/python.exe"
win st-nopy "$D" selftest "$(dpath "PE tree/nopython")" --offline
expect_rc st-nopy 4 "selftest of a tree without python.exe fails"
check "selftest said no_python" grep -q "FAIL no_python" "$OUT/st-nopy.out"

# --- watch install / status / remove through the runner seam ---------------------------
# Wine 8's powershell.exe is a stub that runs nothing (and exits 0), and its schtasks.exe
# refuses /Create with /TR ("Unsupported argument"), so the commands go to a Windows program
# made here (EXTPY_WATCH_RUNNER) that logs each call's arguments as it received them, one
# call a line between `|`, and fails when the call holds $WATCH_FAIL.
cat >"$PE/runner.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
  const char *fail = getenv("WATCH_FAIL");
  char all[8192] = "";
  FILE *f = fopen(getenv("WATCH_LOG"), "ab");
  if (!f) return 70;
  for (int i = 1; i < argc; i++) {
    fprintf(f, "|%s", argv[i]);
    strncat(all, argv[i], sizeof all - strlen(all) - 2);
    strcat(all, " ");
  }
  fprintf(f, "\n");
  fclose(f);
  if (fail && *fail && strstr(all, fail)) { fprintf(stderr, "ERROR: Access is denied.\n"); return 1; }
  printf("SUCCESS: done\n");
  return 0;
}
EOF
"$WIN_MINGW_CC" -O2 -s -o "$PE/runner.exe" "$PE/runner.c"
check "the runner stand-in was compiled" test -f "$PE/runner.exe"
WLOG=$PE/runner.log
export WATCH_LOG EXTPY_WATCH_RUNNER
WATCH_LOG=$(winepath_w "$WLOG")
EXTPY_WATCH_RUNNER=$(winepath_w "$PE/runner.exe")
EXE_W=$(winepath_w "$EXE")
# The line both tasks run: the running extpy.exe, offline, on the topology with a space.
RUNS="$EXE_W --manifest D:\\manifest.yaml --cache-dir D:\\cache --offline --quiet watch run --topology \"D:\\SCP upgrade\\topology.yaml\" --node HAC1"
rm -f "$WLOG"
win w-inst "$D" watch install --topology "$UTOPO" --node HAC1
expect_rc w-inst 0 "watch install --topology $UTOPO --node HAC1 through the runner"
check "watch install said both tasks are installed and the first run started" \
  grep -q "watch installed for node HAC1: task extpy.watch-HAC1-daily (daily at 03:00) and task extpy.watch-HAC1-start (at start-up), run as SYSTEM" "$OUT/w-inst.out"
cat >"$OUT/w-expected" <<EOF
|powershell.exe|-NoProfile|-NonInteractive|-Command|if (-not [System.Diagnostics.EventLog]::SourceExists('extpy')) { New-EventLog -LogName Application -Source extpy }
|schtasks.exe|/Create|/TN|extpy\\watch-HAC1-daily|/TR|$RUNS|/SC|DAILY|/ST|03:00|/RU|SYSTEM|/RL|HIGHEST|/F
|schtasks.exe|/Create|/TN|extpy\\watch-HAC1-start|/TR|$RUNS|/SC|ONSTART|/RU|SYSTEM|/RL|HIGHEST|/F
|schtasks.exe|/Run|/TN|extpy\\watch-HAC1-daily
EOF
check "watch install ran exactly: register the event source, create both tasks as SYSTEM, run the daily one" \
  cmp "$OUT/w-expected" "$WLOG"
rm -f "$WLOG"
WATCH_FAIL="watch-HAC1-start /TR" win w-fail "$D" watch install --topology "$UTOPO" --node HAC1
expect_rc w-fail 1 "watch install whose second task cannot be created fails"
check "the failed install named schtasks' error and deleted the task it had created" \
  bash -c 'grep -q "cannot install the watch of node HAC1 (the tasks created before it were deleted again)" "$1" && grep -q "ERROR: Access is denied." "$1" && [ "$(sed -n 4p "$2")" = "|schtasks.exe|/Delete|/TN|extpy\\watch-HAC1-daily|/F" ] && [ "$(sed -n 5p "$2")" = "|schtasks.exe|/Delete|/TN|extpy\\watch-HAC1-start|/F" ] && [ "$(wc -l <"$2")" = 5 ]' _ "$OUT/w-fail.err" "$WLOG"
rm -f "$WLOG"
win w-stat "$D" watch status --node HAC1
expect_rc w-stat 0 "watch status with both tasks there"
check "watch status queried both tasks" \
  bash -c 'printf "%s\n" "|schtasks.exe|/Query|/TN|extpy\\watch-HAC1-daily|/V|/FO|LIST" "|schtasks.exe|/Query|/TN|extpy\\watch-HAC1-start|/V|/FO|LIST" | cmp - "$1"' _ "$WLOG"
WATCH_FAIL="watch-HAC1-start" win w-stat2 "$D" watch status --node HAC1
expect_rc w-stat2 3 "watch status with a task missing"
check "watch status named the missing task" \
  grep -qF 'the watch of node HAC1 is not installed: extpy\watch-HAC1-start missing' "$OUT/w-stat2.err"
rm -f "$WLOG"
win w-rm "$D" watch remove --node HAC1
expect_rc w-rm 0 "watch remove"
check "watch remove deleted both tasks, and only them" \
  bash -c 'grep -q "watch removed for node HAC1" "$2" && printf "%s\n" "|schtasks.exe|/Delete|/TN|extpy\\watch-HAC1-daily|/F" "|schtasks.exe|/Delete|/TN|extpy\\watch-HAC1-start|/F" | cmp - "$1"' _ "$WLOG" "$OUT/w-rm.out"
unset EXTPY_WATCH_RUNNER WATCH_LOG

# --- verify --signatures of the tree of real PE files, and its AppLocker rules -----------
# Every PE with its hash and whether it is signed; the hash rules for the unsigned ones. The
# reference is osslsigncode: its digest of each signed file, and of python.exe once signed.
win sig-bad "$D" verify "$PTREE" --signatures --applocker "$(dpath "PE tree/applocker.xml")"
expect_rc sig-bad 3 "verify --signatures --applocker against a manifest the tree was not built from"
check "no AppLocker policy is written for a tree that does not verify" \
  bash -c 'grep -q "was not written: rules made from a tree that does not verify" "$1" && [ ! -e "$2" ]' _ "$OUT/sig-bad.err" "$D/PE tree/applocker.xml"
WIN_CACHE=$(dpath pe-cache) win sig "$D" verify "$PTREE" --manifest "$PTM" --signatures --applocker "$(dpath "PE tree/applocker.xml")"
expect_rc sig 0 "verify --signatures --applocker of the tree against its manifest"
check "6 PE files: 2 signed, 4 unsigned" grep -q "6 PE files: 2 signed, 4 unsigned, 0 malformed" "$OUT/sig.out"
WIN_CACHE=$(dpath pe-cache) win sig-json "$D" --json verify "$PTREE" --manifest "$PTM" --signatures
check "python312.dll and vcruntime140.dll are signed with osslsigncode's Authenticode digest; python.exe is unsigned" \
  python3 - "$OUT/sig-json.out" "$D/$PT/contents/Python/external" <<'PY'
import hashlib, json, subprocess, sys
doc = json.load(open(sys.argv[1]))
files = {f["path"]: f for f in doc["signatures"][0]["files"]}
assert sorted(files) == ["_socket.pyd", "python.exe", "python3.dll", "python312.dll", "pythonw.exe", "vcruntime140.dll"], files
for name in ["python312.dll", "vcruntime140.dll"]:
    f = files[name]
    out = subprocess.run(["osslsigncode", "verify", "-in", f"{sys.argv[2]}/{name}"], capture_output=True, text=True).stdout
    digest = next(l.split(":")[1].strip().lower() for l in out.splitlines() if l.startswith("Calculated message digest"))
    assert f["signature"] == "signed" and f["authenticode_sha256"] == digest, (f, digest)
    assert f["sha256"] == hashlib.sha256(open(f"{sys.argv[2]}/{name}", "rb").read()).hexdigest(), f
for name in ["python.exe", "pythonw.exe", "python3.dll", "_socket.pyd"]:
    assert files[name]["signature"] == "unsigned", files[name]
PY
osslsigncode sign -h sha256 -certs "$PE/sign.pem" -key "$PE/sign.key" -in "$PE/python.exe" \
  -out "$PE/python-signed.exe" >>"$OUT/sign.log" 2>&1
PYHASH=$(osslsigncode verify -in "$PE/python-signed.exe" 2>/dev/null | sed -n 's/^Calculated message digest *: *//p' | tr -d ' ' | tr a-f A-F)
check "the AppLocker policy has python.exe's Authenticode hash (osslsigncode's, ${PYHASH:0:12}), 4 rules, none for the signed two" \
  python3 - "$D/PE tree/applocker.xml" "$OUT/sig-json.out" "$PYHASH" <<'PY'
import json, sys
xml = open(sys.argv[1], encoding="utf-8-sig").read()
files = {f["path"]: f for f in json.load(open(sys.argv[2]))["signatures"][0]["files"]}
h = sys.argv[3]
assert len(h) == 64 and files["python.exe"]["authenticode_sha256"].upper() == h, (h, files["python.exe"])
assert xml.count("<FileHashRule ") == 4, xml
assert f'Data="0x{h}" SourceFileName="python.exe"' in xml, xml
assert "python312.dll" not in xml and "vcruntime140.dll" not in xml, xml
PY

# --- failure paths of fetching ------------------------------------------------------------
WIN_CACHE=$(dpath empty-cache2) win fetch-off "$D" fetch --offline
expect_rc fetch-off 4 "fetch --offline with an empty cache"
check "fetch --offline named a missing file" grep -q "embed-amd64.zip" "$OUT/fetch-off.err"
WIN_CACHE=$(dpath empty-cache3) EXTPY_PYTHON_MIRROR=$DEAD EXTPY_INDEX_URL=$DEAD \
  win fetch-dead "$D" --retries 1 fetch
expect_rc fetch-dead 4 "fetch from a port nothing listens on"
start_mirror bad --fault "$ZIP_PATH=wrong-bytes" --fault "$ZIP_PATH=wrong-bytes" \
  --fault "$ZIP_PATH=wrong-bytes" --fault "$ZIP_PATH=wrong-bytes" --fault "$ZIP_PATH=wrong-bytes" || true
WIN_CACHE=$(dpath empty-cache4) EXTPY_PYTHON_MIRROR=$(mirror_env bad EXTPY_PYTHON_MIRROR) \
  EXTPY_INDEX_URL=$(mirror_env bad EXTPY_INDEX_URL) win fetch-wrong "$D" --retries 1 fetch
expect_rc fetch-wrong 3 "fetch of a file whose bytes do not match the pin"
check "nothing unverified entered the cache" \
  bash -c '! find "$1" -name "*embed-amd64.zip" -size +0 | grep -q .' _ "$D/empty-cache4"

# --- the unit tests for Windows, under Wine; clippy for the Windows target ---------------
if [ -z "$SKIP_UNIT" ]; then
  win_toolchain >/dev/null
  export CARGO_TARGET_DIR=$ROOT/target/windows
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$WINE "$WIN_CARGO" test --locked --target "$WIN_TARGET" \
    "${WIN_BUILD_STD[@]}" --lib >"$OUT/unit.out" 2>&1
  RC=$?
  expect_rc unit 0 "unit tests for Windows under Wine ($(grep -o '[0-9]* passed; [0-9]* failed; [0-9]* ignored' "$OUT/unit.out" | tail -1))"
  [ "$RC" = 0 ] || tail -40 "$OUT/unit.out"
  win_clippy >"$OUT/clippy.out" 2>&1
  RC=$?
  expect_rc clippy 0 "clippy --all-targets for $WIN_TARGET with -D warnings"
  [ "$RC" = 0 ] || tail -40 "$OUT/clippy.out"
  unset CARGO_TARGET_DIR
fi

echo "windows-lane: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
