#!/usr/bin/env bash
# Builds the Python example mapper into a wasm component with componentize-py.
#
#   ./build.sh [OUT.wasm]                default: dist/mapper-py.wasm
#   ./build.sh --directory [OUT.wasm]    the directory example (directory_app.py),
#                                        default: dist/directory-py.wasm
#
# Needs componentize-py 0.25.1 on PATH (see requirements.txt).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
app=app
default=mapper-py.wasm
if [[ "${1:-}" == "--directory" ]]; then
    app=directory_app
    default=directory-py.wasm
    shift
fi
out="${1:-$here/dist/$default}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

if ! command -v componentize-py >/dev/null 2>&1; then
    echo "error: componentize-py is not on PATH. Install the pinned toolchain, for example:" >&2
    echo "       python3 -m venv \$HOME/.cache/interstate/venv" >&2
    echo "       \$HOME/.cache/interstate/venv/bin/pip install -r '$here/requirements.txt'" >&2
    echo "       export PATH=\$HOME/.cache/interstate/venv/bin:\$PATH" >&2
    exit 1
fi

mkdir -p "$(dirname "$out")"
cd "$here"
if [[ $app == app ]]; then
    # The world wit/world.wit: interstate:mapper/mapper@0.2.0 from the repository's wit/, plus
    # wasi:http/outgoing-handler from the WASI 0.2.12 WIT vendored in wit/deps/.
    # WASI stays linked (no --stub-wasi): operate calls the power API over wasi:http.
    componentize-py -d ../../wit -d wit -w interstate:example-mapper-py/mapper-py \
        componentize app -p . -o "$out"
else
    # The directory example needs the mapper world only (its directory is the host's).
    componentize-py -d ../../wit -w mapper componentize "$app" -p . -o "$out"
fi
