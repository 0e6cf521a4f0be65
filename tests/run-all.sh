#!/usr/bin/env bash
# The whole test suite: installs the guest toolchains it needs (idempotent), then runs every
# test: the Rust workspace (unit, protocol, mapper host, e2e with real TLS, real components and a
# fake agent on 127.0.0.2, CLI), the guests' own unit tests in each language, and a short fuzz
# smoke run. This is the README's test command, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

bash tests/setup-toolchains.sh
# shellcheck source=/dev/null
source tests/toolchains.env

failed=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
    local name=$1
    shift
    echo "== $name"
    if ! "$@" 2>&1 | tee -a "$log"; then
        failed+=("$name")
    fi
}

run "cargo test (workspace)" cargo test --workspace --locked --no-fail-fast
run "guest unit tests: Rust mappers (host target)" \
    bash -c 'cd guest-mappers && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/guests-host" cargo test --locked \
        --target x86_64-unknown-linux-gnu -p interstate-simple-mapper -p interstate-webservice-mapper -p interstate-example-mapper -p interstate-pool-mapper -p interstate-directory-mapper -p interstate-mapper-sdk'
run "guest unit tests: JavaScript" bash -c 'cd guest-mappers/js && node --test'
run "guest unit tests: Python" bash -c 'cd guest-mappers/python && python3 -m unittest -q'
run "guest unit tests: Go" bash -c 'cd guest-mappers/go && go test -v ./mapper/ ./sdk/mapper/'
run "fuzz smoke" bash tests/fuzz-smoke.sh "${FUZZ_SECONDS:-20}"

# One closing line for every runner above: cargo's "test result" lines, node's "# pass/# fail",
# Python's "Ran N tests" (with "FAILED (failures=N" on failure) and go's "--- PASS/--- FAIL".
totals=$(awk '
    /^test result: / { p += $4; f += $6 }
    /^# pass / { p += $3 } /^# fail / { f += $3 }
    /^Ran [0-9]+ tests? in/ { ran = $2 }
    /^FAILED \((failures|errors)=/ { match($0, /[0-9]+/); pf += substr($0, RSTART, RLENGTH) }
    /^--- PASS/ { p++ } /^--- FAIL/ { f++ }
    END { print p + ran - pf, f + pf }' "$log")
read -r passed failed_tests <<<"$totals"
if ((${#failed[@]})); then
    printf 'FAILED group: %s\n' "${failed[@]}"
    echo "tests: $passed passed, $failed_tests failed"
    exit 1
fi
echo "tests: $passed passed, $failed_tests failed"
