#!/usr/bin/env bash
# Builds the JavaScript example mapper into a wasm component with componentize-js (StarlingMonkey).
#
#   ./build.sh [OUT.wasm]        default: dist/mapper-js.wasm
#
# Needs `npm ci` in this folder first (componentize-js 0.22.0 and jco 1.35.0 are pinned in
# package-lock.json).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/dist/mapper-js.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

componentize="$here/node_modules/.bin/componentize-js"
wasi_wit="$here/node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12"
if [[ ! -x "$componentize" || ! -d "$wasi_wit" ]]; then
    echo "error: componentize-js and jco are not installed in $here/node_modules." >&2
    echo "       Install the pinned toolchain first:  (cd '$here' && npm ci)" >&2
    exit 1
fi

# The world: wit/world.wit (interstate:mapper/mapper@0.2.0 + wasi:http/outgoing-handler), with the
# mapper contract from the repository's wit/ and jco's WASI 0.2.12 WIT as its deps.
wit=$(mktemp -d)
trap 'rm -rf "$wit"' EXIT
mkdir -p "$wit/deps/interstate-mapper"
cp "$here/wit/world.wit" "$wit/"
cp "$here/../../wit/mapper.wit" "$wit/deps/interstate-mapper/"
cp -r "$wasi_wit"/. "$wit/deps/"

mkdir -p "$(dirname "$out")"
cd "$here"
# StarlingMonkey rather than QuickJS (jco componentize --backend quickjs): componentize-qjs 0.4.5
# pre-initialises the module with every unknown import stubbed but wasi:io real, so a world that
# imports wasi:http fails to build ("instance export `io-error` has the wrong type").
# -d fetch-event: no incoming-handler export; wasi:http stays, operate needs its outgoing half.
"$componentize" mapper.js --wit "$wit" -n mapper-js -d fetch-event -o "$out"
