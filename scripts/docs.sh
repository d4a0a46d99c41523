#!/usr/bin/env bash
# Builds the user guide (docs/) with the pinned mdBook, run by .ci/run. mdBook is installed by
# `cargo install --locked` into target/ci-tools once, without its serve/watch/search features
# (the book is read from files; about 3 minutes to compile on 2 cores). The guide's commands
# and links are checked by tests/guide.rs, which scripts/test.sh runs.
#
#   scripts/docs.sh            # writes docs/book/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=$PWD/target/ci-tools
MDBOOK_VERSION=0.5.4
if ! cargo install --list --root "$TOOLS" | grep -qx "mdbook v$MDBOOK_VERSION:"; then
  echo "docs: installing mdbook $MDBOOK_VERSION into $TOOLS" >&2
  cargo install --locked --quiet --no-default-features --root "$TOOLS" mdbook --version "$MDBOOK_VERSION"
fi
"$TOOLS/bin/mdbook" build docs
echo "docs: the guide is in docs/book/index.html" >&2
