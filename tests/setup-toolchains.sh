#!/usr/bin/env bash
# Installs what the tests need beyond Rust, idempotently, under $INTERSTATE_TOOLS
# (default ~/.cache/interstate/tools), and writes tests/toolchains.env for the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${INTERSTATE_TOOLS:-$HOME/.cache/interstate/tools}"
mkdir -p "$TOOLS"

rustup target add wasm32-wasip2 >/dev/null

cat > tests/toolchains.env <<ENV
export INTERSTATE_TOOLS="$TOOLS"
ENV
echo "toolchains ready under $TOOLS"
