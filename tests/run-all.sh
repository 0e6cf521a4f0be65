#!/usr/bin/env bash
# The whole test suite: installs the guest toolchains it needs (idempotent), then runs every
# test. This is the README's test command, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

bash tests/setup-toolchains.sh
# shellcheck source=/dev/null
source tests/toolchains.env

echo "== cargo test (workspace)"
cargo test --workspace --locked --no-fail-fast
