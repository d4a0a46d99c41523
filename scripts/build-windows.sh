#!/usr/bin/env bash
# Builds extpy.exe for Windows (x86_64-pc-windows-gnu) on Linux, and its release archive:
#   target/windows/x86_64-pc-windows-gnu/release/extpy.exe
#   target/windows/dist/extpy-<version>-x86_64-pc-windows-gnu.zip  (+ .sha256)
# The zip holds extpy.exe, README.md, LICENSE and get-py.ps1; its bytes depend only on those
# files (entry times are the last commit's).
#
# With rustup, the target's prebuilt standard library is added (`rustup target add`); where
# rustup cannot reach its server, Debian's packaged rustc/cargo build the standard library
# from source (slower: about 12 minutes cold on 2 cores). Either way the mingw-w64 linker is
# installed from the package registry if missing. EXTPY_WINDOWS_TOOLCHAIN=debian forces the
# packaged toolchain.
#
#   scripts/build-windows.sh [--profile release|dev]   (default release)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/windows/common.sh

PROFILE=release
while [ $# -gt 0 ]; do
  case $1 in
    --profile) PROFILE=${2:?--profile needs release or dev}; shift 2 ;;
    *) win_die "unknown argument $1
help: scripts/build-windows.sh [--profile release|dev]" ;;
  esac
done
case $PROFILE in
  release) PROFILE_DIR=release ;;
  dev) PROFILE_DIR=debug ;;
  *) win_die "unknown profile $PROFILE
help: use --profile release or --profile dev" ;;
esac

win_toolchain
# A target dir of its own: the host build and the Windows build never invalidate each other.
export CARGO_TARGET_DIR=$PWD/target/windows
# The release exe is what customers' servers run: it carries its dependency list (cargo
# auditable's .dep-v0 section) when cargo-auditable is at hand, as scripts/supply-chain.sh
# (run before the lane by .ci/run) installs it into target/ci-tools. Without it the exe is
# built plain and the script says so loudly.
AUDITABLE=()
if [ "$PROFILE" = release ]; then
  export PATH="$PWD/target/ci-tools/bin:$PATH"
  if [ "$WIN_TOOLCHAIN_KIND" = rustup ] && command -v cargo-auditable >/dev/null 2>&1; then
    AUDITABLE=(auditable)
  else
    echo "build-windows: ***************************************************************" >&2
    echo "build-windows: NOT EMBEDDED: extpy.exe is built without its dependency list" >&2
    echo "build-windows: (cargo-auditable is not in target/ci-tools, or the toolchain is Debian's)." >&2
    echo "build-windows: help: run scripts/supply-chain.sh first, which installs it." >&2
    echo "build-windows: ***************************************************************" >&2
  fi
fi
echo "building extpy.exe ($WIN_TOOLCHAIN_KIND toolchain, $PROFILE profile${AUDITABLE:+, auditable})" >&2
"$WIN_CARGO" "${AUDITABLE[@]}" build --locked --profile "$PROFILE" --target "$WIN_TARGET" "${WIN_BUILD_STD[@]}" --bin extpy

EXE=$CARGO_TARGET_DIR/$WIN_TARGET/$PROFILE_DIR/extpy.exe
if [ ${#AUDITABLE[@]} -gt 0 ]; then
  python3 scripts/audit-data.py "$EXE" Cargo.lock
fi
VERSION=$(win_crate_version)
[ -n "$VERSION" ] || win_die "no version in Cargo.toml's [package] table"
DIST=$CARGO_TARGET_DIR/dist
NAME=extpy-$VERSION-$WIN_TARGET
mkdir -p "$DIST"
EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 315532800)
python3 - "$EXE" "$DIST/$NAME.zip" "$EPOCH" <<'PY'
import struct, sys, time, zipfile, os
exe, out, epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(exe, "rb") as f:
    head = f.read(4096)
pe = struct.unpack_from("<I", head, 0x3C)[0] if head[:2] == b"MZ" else None
if pe is None or head[pe:pe + 4] != b"PE\0\0" or struct.unpack_from("<H", head, pe + 24)[0] != 0x20B \
        or struct.unpack_from("<H", head, pe + 4)[0] != 0x8664:
    sys.exit(f"error: {exe} is not a PE32+ x86-64 executable\nhelp: rebuild it; check the linker")
stamp = time.gmtime(max(epoch, 315532800))[:6]
tmp = out + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for src, name in [(exe, "extpy.exe"), ("README.md", "README.md"), ("LICENSE", "LICENSE"),
                      ("scripts/get-py.ps1", "get-py.ps1")]:
        info = zipfile.ZipInfo(name, stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        with open(src, "rb") as f:
            z.writestr(info, f.read())
os.replace(tmp, out)
PY
(cd "$DIST" && sha256sum "$NAME.zip" >"$NAME.zip.sha256.tmp" && mv "$NAME.zip.sha256.tmp" "$NAME.zip.sha256")
echo "extpy.exe (PE32+ x86-64): $EXE"
echo "release archive: $DIST/$NAME.zip"
echo "sha256: $(cut -d' ' -f1 "$DIST/$NAME.zip.sha256")"
