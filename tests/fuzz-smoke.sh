#!/usr/bin/env bash
# Fuzz smoke test: builds every cargo-fuzz target and runs each for a short time, failing on any
# crash or broken invariant. Installs what it needs (nightly via rustup, cargo-fuzz), idempotently.
#
#   tests/fuzz-smoke.sh [SECONDS]      # SECONDS per target, default 20
#   FUZZ_TARGETS="client_request" tests/fuzz-smoke.sh 600
#
# The working corpus lives in fuzz/corpus/<target> (gitignored) and grows across runs; the
# committed seeds in fuzz/seeds/<target> are read on every run. A crash leaves its input in
# fuzz/artifacts/<target>/; replay it with `cargo +nightly fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac
targets="${FUZZ_TARGETS:-client_request agent_response settings}"
# A target dir of its own: sanitizer flags would otherwise invalidate the broker's build cache.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${HOME}/.cache/interstate/fuzz-target}"

if ! command -v rustup >/dev/null; then
    echo "error: rustup is needed to install the nightly toolchain cargo-fuzz requires" >&2
    exit 1
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "== installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (about a minute)"
    cargo install cargo-fuzz --locked
fi

cd fuzz
echo "== building the fuzz targets (nightly, AddressSanitizer)"
cargo +nightly fuzz build

status=0
for target in $targets; do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s"
    log="$(mktemp)"
    if cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" || true
        grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -n 1 || true
    else
        status=1
        echo "FAILED: $target (input saved under fuzz/artifacts/$target/)" >&2
        tail -n 60 "$log" >&2
    fi
    rm -f "$log"
done
exit "$status"
