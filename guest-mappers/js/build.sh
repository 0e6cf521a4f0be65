#!/usr/bin/env bash
# Builds the JavaScript example mapper into a wasm component with jco and the QuickJS engine.
#
#   ./build.sh [OUT.wasm]        default: dist/mapper-js.wasm
#
# Needs `npm ci` in this folder first (jco 1.35.0 is pinned in package-lock.json).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/dist/mapper-js.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

jco="$here/node_modules/.bin/jco"
if [[ ! -x "$jco" ]]; then
    echo "error: jco is not installed in $here/node_modules." >&2
    echo "       Install the pinned toolchain first:  (cd '$here' && npm ci)" >&2
    exit 1
fi

mkdir -p "$(dirname "$out")"
cd "$here"
# --backend-qjs-disable-async: the default QuickJS runtime uses the component-model async ABI
# (task.cancel, ...), which wasmtime 48 rejects unless the host turns on an experimental feature.
# WASI stays linked (no --backend-qjs-stub-wasi): the TOTP check needs the wall clock.
"$jco" componentize mapper.js \
    -w ../../wit -n mapper \
    --backend quickjs --backend-qjs-disable-async \
    -o "$out"
