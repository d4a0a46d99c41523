#!/usr/bin/env bash
# The supply chain of extpy itself, run by .ci/run:
#   1. cargo deny checks the dependency tree against deny.toml: licences, banned crates
#      (OpenSSL, native-tls) and sources (the crate registry only). Advisories are checked
#      only when cargo deny's advisory database is already on this machine (it is a git
#      repository, not something the crate registry serves); otherwise a loud note says so.
#   2. cargo auditable builds the release executable with its dependency list embedded (a
#      compressed JSON section, .dep-v0, that `cargo audit bin` and other scanners read), and
#      the script reads that section back and checks it against Cargo.lock.
# The two tools are installed by `cargo install --locked` into target/ci-tools, once.
#
#   scripts/supply-chain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=$PWD/target/ci-tools
DENY_VERSION=0.20.2
AUDITABLE_VERSION=0.7.7
export PATH="$TOOLS/bin:$PATH"

# tool NAME VERSION: installs the cargo subcommand unless that version is already there.
tool() {
  if ! cargo install --list --root "$TOOLS" | grep -qx "$1 v$2:"; then
    echo "supply-chain: installing $1 $2 into $TOOLS" >&2
    cargo install --locked --quiet --root "$TOOLS" "$1" --version "$2"
  fi
}
tool cargo-deny "$DENY_VERSION"
tool cargo-auditable "$AUDITABLE_VERSION"

echo "supply-chain: cargo deny check licenses bans sources" >&2
cargo deny --locked check licenses bans sources

db_home=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs
if compgen -G "$db_home/advisory-db-*/crates" >/dev/null; then
  echo "supply-chain: cargo deny check advisories (the database in $db_home, not refreshed)" >&2
  cargo deny --offline --locked check advisories
else
  cat >&2 <<NOTE
supply-chain: ****************************************************************************
supply-chain: NOT CHECKED: known vulnerabilities of extpy's own dependencies (advisories).
supply-chain: cargo deny's advisory database is a git repository this machine cannot reach,
supply-chain: and no copy is in $db_home.
supply-chain: help: on a connected machine run \`cargo deny fetch\` and copy $db_home here.
supply-chain: ****************************************************************************
NOTE
fi

echo "supply-chain: cargo auditable build --release" >&2
cargo auditable build --release --locked --quiet --bin extpy
python3 scripts/audit-data.py target/release/extpy Cargo.lock
