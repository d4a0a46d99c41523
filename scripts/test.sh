#!/usr/bin/env bash
# Runs every test. The rollout tests drive a real ansible-playbook, so the first run installs
# the pinned Ansible (with the ansible.windows collection) and the CycloneDX schema validator
# into target/test-venv; the runbook's browser test drives Debian's chromium, installed here
# when missing (as root or with sudo -n; the script fails when it cannot).
#
#   scripts/test.sh [cargo test arguments…]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/test-venv
# A venv copied or moved from elsewhere points at a Python that may be gone: check it runs.
if ! "$VENV/bin/python" -c "import ansible, cyclonedx.validation.json, tree_sitter_powershell" >/dev/null 2>&1 || [ ! -x "$VENV/bin/ansible-playbook" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/test-requirements.txt
fi
export EXTPY_TEST_ANSIBLE_BIN="$PWD/$VENV/bin"
. scripts/apt-install.sh
# osslsigncode signs the PE files of tests/signatures.rs (its digest is the reference);
# minisign checks what extpy signs, and signs what extpy checks (tests/sign.rs).
apt_install chromium osslsigncode openssl minisign
# The runtime_trust test runs requests with truststore under a real CPython: the shipped
# manifest's own wheels, fetched by pip with their pinned sha256 (once; kept in target/).
WHEELS=target/test-wheels
python3 scripts/pinned-wheels.py manifests/python-3.12-win-amd64.yaml \
  truststore requests urllib3 idna certifi charset_normalizer >target/test-wheels.txt
if ! cmp -s target/test-wheels.txt "$WHEELS/requirements.txt"; then
  rm -rf "$WHEELS" "$WHEELS.partial"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform win_amd64 --python-version 3.12 --implementation cp --abi cp312 \
    --require-hashes -r target/test-wheels.txt -d "$WHEELS.partial"
  cp target/test-wheels.txt "$WHEELS.partial/requirements.txt"
  mv "$WHEELS.partial" "$WHEELS"
fi
export EXTPY_TEST_REAL_WHEELS="$PWD/$WHEELS"
# The shipped 3.13 and 3.14 manifests are built with every wheel they pin, for their CPython
# (tests/runtime_trust.rs), fetched the same way into target/test-wheels-upgrade/<line>.
UPGRADE=target/test-wheels-upgrade
for line in 3.13 3.14; do
  python3 scripts/pinned-wheels.py "manifests/python-$line-win-amd64.yaml" \
    msal requests cryptography cffi pycparser pyjwt certifi charset_normalizer idna urllib3 \
    >"target/test-wheels-$line.txt"
  if ! cmp -s "target/test-wheels-$line.txt" "$UPGRADE/$line/requirements.txt"; then
    rm -rf "${UPGRADE:?}/$line" "$UPGRADE/$line.partial"
    mkdir -p "$UPGRADE"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform win_amd64 --python-version "$line" --implementation cp --abi "cp${line/./}" \
      --require-hashes -r "target/test-wheels-$line.txt" -d "$UPGRADE/$line.partial"
    cp "target/test-wheels-$line.txt" "$UPGRADE/$line.partial/requirements.txt"
    mv "$UPGRADE/$line.partial" "$UPGRADE/$line"
  fi
done
export EXTPY_TEST_UPGRADE_WHEELS="$PWD/$UPGRADE"
# Tests that need pip or a tmpfs are #[ignore = "..."] so that a plain `cargo test` on a
# machine without them stays green; here they all run, and fail if what they need is missing.
case " $* " in
  *" -- "*) cargo test --locked "$@" --include-ignored ;;
  *) cargo test --locked "$@" -- --include-ignored ;;
esac
# The fault soak (bounded, loopback only): concurrent fetch/build/layout runs under injected
# faults and kills; SOAK_SECONDS lengthens it. A run limited to some tests skips it.
if [ $# -eq 0 ]; then
  scripts/soak.sh
fi
