# Shared by scripts/build-windows.sh and scripts/test-windows.sh (sourced, not run).
# Installs what the Windows build and lane need, once, and fails loudly when it cannot.

WIN_TARGET=x86_64-pc-windows-gnu
WIN_MINGW_CC=x86_64-w64-mingw32-gcc

win_die() {
  echo "error: $*" >&2
  exit 1
}

. "$(dirname "${BASH_SOURCE[0]}")/../apt-install.sh"

# win_toolchain: picks how to build for the Windows target and exports
#   WIN_CARGO (the cargo to run), WIN_BUILD_STD (extra cargo arguments) and the environment
#   both need. rustup's prebuilt standard library when `rustup target add` works (what a
#   developer machine does); otherwise Debian's packaged rustc/cargo with the standard library
#   built from its source (an offline build host). EXTPY_WINDOWS_TOOLCHAIN=debian forces the
#   second path.
win_toolchain() {
  apt_install "gcc-mingw-w64-x86-64"
  export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=$WIN_MINGW_CC
  export CC_x86_64_pc_windows_gnu=$WIN_MINGW_CC
  WIN_BUILD_STD=()
  if [ "${EXTPY_WINDOWS_TOOLCHAIN:-}" != debian ] && command -v rustup >/dev/null &&
    { rustup target list --installed 2>/dev/null | grep -qx "$WIN_TARGET" ||
      timeout 300 rustup target add "$WIN_TARGET" >&2; }; then
    WIN_CARGO=cargo
    WIN_TOOLCHAIN_KIND=rustup
    return 0
  fi
  echo "rustup cannot provide $WIN_TARGET here; using the packaged toolchain with -Zbuild-std" >&2
  apt_install rustc-web cargo-web rust-web-src
  [ -d /usr/lib/rustlib/src/rust/library ] ||
    win_die "the standard library's source is not at /usr/lib/rustlib/src/rust/library
help: apt-get install rust-web-src"
  WIN_CARGO=/usr/bin/cargo
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
  # build-std is unstable; the packaged stable compiler accepts it only in bootstrap mode.
  export RUSTC_BOOTSTRAP=1
  WIN_BUILD_STD=(-Zbuild-std=std,panic_abort)
  WIN_TOOLCHAIN_KIND=debian
}

# win_clippy: clippy for every target of the crate compiled for Windows, warnings denied
# (after win_toolchain). The packaged toolchain needs Debian's clippy for it.
win_clippy() {
  if [ "$WIN_TOOLCHAIN_KIND" = debian ]; then
    apt_install rust-web-clippy
  else
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy >&2 ||
      win_die "rustup cannot add clippy
help: rustup component add clippy"
  fi
  "$WIN_CARGO" clippy --locked --target "$WIN_TARGET" "${WIN_BUILD_STD[@]}" --all-targets -- -D warnings
}

# The crate's version, from the [package] table of Cargo.toml.
win_crate_version() {
  sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1
}
