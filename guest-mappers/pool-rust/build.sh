#!/usr/bin/env bash
# Builds the pool mapper into a wasm component (wasm32-wasip2 emits one directly).
#
#   ./build.sh [OUT.wasm]        default: dist/mapper-pool.wasm
#
# Needs only Rust and `rustup target add wasm32-wasip2`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/dist/mapper-pool.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "error: the wasm32-wasip2 target is missing: rustup target add wasm32-wasip2" >&2
    exit 1
fi

target_dir="${CARGO_TARGET_DIR:-$here/../target}"
cargo build --release --target wasm32-wasip2 -p interstate-pool-mapper \
    --manifest-path "$here/../Cargo.toml" --target-dir "$target_dir"
mkdir -p "$(dirname "$out")"
cp "$target_dir/wasm32-wasip2/release/interstate_pool_mapper.wasm" "$out"
echo "built $out ($(wc -c <"$out") bytes)"
