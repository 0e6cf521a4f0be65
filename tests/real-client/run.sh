#!/usr/bin/env bash
# Logs in to Interstate with HP's own PCoIP client library (HP Anyware PCoIP Client 24.07.3
# broker library, under wine64) and gets a desktop, for the SimpleMapper and every example
# mapper. See README.md beside this file for where the library comes from: it is HP's and is
# never committed, so CI cannot run this; run it by hand after changing anything the client
# parses.
#
#   tests/real-client/run.sh DLL_DIR [CASE...]
#
# DLL_DIR holds broker_client.dll, wolfssl.dll and broker_client_example.exe. CASES (default:
# all) are simple, rust, go, js, python. Everything listens on loopback: the broker on
# 127.0.0.1, the fake agents (`interstate bench --fake-agent`) on 127.0.0.2 and 127.0.0.3:60443.
#
# With STORE=redis every broker keeps its sessions in a redis-server of the script's own (on a
# free loopback port), sealed under a fresh key file: the same flows through the shared store.
#
# Per mapper: the example program's password flow ("Connected Successfully."), then login.exe
# for a password user; for the example mappers (contract 0.2) bob through the disclaimer,
# alice's MFA login (disclaimer, then the code dialog with its buttons) with the right TOTP code,
# and with a wrong code then the right one; and, with probe2.exe (PROBE2, default
# ../shared/tools/real-client/probe2.c), bob's power-down, then a power-up that answers "try
# again" then succeeds, against a fake power API on 127.0.0.1. Closes with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

dlls=${1:?usage: tests/real-client/run.sh DLL_DIR [simple|rust|go|js|python ...]}
shift
cases=("$@")
((${#cases[@]})) || cases=(simple rust go js python)
for file in broker_client.dll wolfssl.dll broker_client_example.exe; do
    [[ -f $dlls/$file ]] || {
        echo "error: $dlls/$file is missing (see tests/real-client/README.md)" >&2
        exit 1
    }
done
wine=${WINE64:-/usr/lib/wine/wine64}
[[ -x $wine ]] || wine=$(command -v wine64 || true)
[[ -n $wine ]] || {
    echo "error: wine64 is missing: apt-get install -y --no-install-recommends wine64" >&2
    exit 1
}
command -v x86_64-w64-mingw32-gcc >/dev/null || {
    echo "error: mingw is missing: apt-get install -y gcc-mingw-w64-x86-64-posix" >&2
    exit 1
}

work=$(mktemp -d /tmp/interstate-real-client.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
export WINEPREFIX=${WINEPREFIX:-$work/wineprefix} WINEDEBUG=-all
cp "$dlls"/broker_client.dll "$dlls"/wolfssl.dll "$dlls"/broker_client_example.exe "$work/"
x86_64-w64-mingw32-gcc -O1 -Wall -o "$work/login.exe" tests/real-client/login.c
probe2=${PROBE2:-$root/../shared/tools/real-client/probe2.c}
if [[ -f $probe2 ]]; then
    x86_64-w64-mingw32-gcc -O1 -o "$work/probe2.exe" "$probe2"
else
    echo "note: $probe2 is missing: the operation checks are skipped" >&2
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build -q -p interstate-cli
interstate=$CARGO_TARGET_DIR/debug/interstate

# Two agents: the example mappers derive desktop ids from host names, so their two desktops
# need two addresses.
for agent in 127.0.0.2 127.0.0.3; do
    "$interstate" bench --fake-agent "$agent:60443" >"$work/agent-$agent.log" 2>&1 &
    pids+=($!)
done

# A fake power API for the example mappers' operate: GET /machines/M answers its state, a POST
# of power-up boots it by the next GET.
power_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$power_port" >"$work/power.log" 2>&1 <<'EOF' &
import http.server, json, sys
states = {}
class Power(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        machine = self.path.removeprefix("/machines/")
        self.answer(200, {"state": states.get(machine, "stopped")})
    def do_POST(self):
        machine, _, action = self.path.removeprefix("/machines/").rpartition("/")
        if action == "power-up":
            states[machine] = "running"
        elif action == "power-down":
            states[machine] = "stopped"
        self.answer(202, {})
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Power).serve_forever()
EOF
pids+=($!)

passed=0
failed=0
check() { # NAME LOG PATTERN
    if grep -q -- "$3" "$2"; then
        echo "PASS $1"
        passed=$((passed + 1))
    else
        echo "FAIL $1 (no '$3' in $2)"
        failed=$((failed + 1))
    fi
}

# The current TOTP code of the example mappers' alice (RFC 6238, SHA-1, 30 s, 6 digits).
totp() {
    python3 - "$@" <<'EOF'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode("JBSWY3DPEHPK3PXP")
step = int(time.time()) // 30 + int(sys.argv[1] if len(sys.argv) > 1 else 0)
mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
offset = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000))
EOF
}

# A code that is wrong now and in the steps either side.
wrong_code() {
    local now prev next code=0
    now=$(totp 0) prev=$(totp -1) next=$(totp 1)
    while :; do
        candidate=$(printf '%06d' "$code")
        [[ $candidate != "$now" && $candidate != "$prev" && $candidate != "$next" ]] && break
        code=$((code + 1))
    done
    echo "$candidate"
}

if [[ ${STORE:-memory} == redis ]]; then
    command -v redis-server >/dev/null || { echo "error: STORE=redis needs redis-server" >&2; exit 1; }
    redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        >"$work/redis.log" 2>&1 &
    pids+=($!)
    "$interstate" session-key new "$work/session.key" >/dev/null
fi

port=60600
serve() { # NAME SETTINGS.json -> starts a broker on 127.0.0.1:$port
    port=$((port + 1))
    if [[ ${STORE:-memory} == redis ]]; then
        python3 - "$2" "$redis_port" "$work/session.key" "$1" <<'EOF'
import json, sys
path, port, key, name = sys.argv[1:5]
settings = json.load(open(path))
settings["session"] = {"store": "redis", "key_file": key,
                       "redis": {"url": f"redis://127.0.0.1:{port}", "key_prefix": f"{name}:"}}
json.dump(settings, open(path, "w"))
EOF
    fi
    "$interstate" serve --config "$2" --host 127.0.0.1 -p "$port" >"$work/$1-broker.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.2
    done
    echo "error: the broker for $1 did not start:" >&2
    cat "$work/$1-broker.log" >&2
    exit 1
}

example() { # NAME USER PASSWORD DOMAIN [DESKTOP]
    echo "127.0.0.1:$port $4 $2 $3 ${5:-}" >"$work/login.txt"
    (cd "$work" && timeout 60 "$wine" broker_client_example.exe -i login.txt >"$work/$1-example.log" 2>&1) || true
    check "$1: the example program connects $2" "$work/$1-example.log" "Connected Successfully"
}

login() { # NAME USER PASSWORD DOMAIN [ANSWERS]
    (cd "$work" && timeout 120 "$wine" login.exe "127.0.0.1:$port" "$2" "$4" "$3" "${5:-123456}" \
        >"$work/$1.log" 2>&1) || true
    check "$1" "$work/$1.log" "LOGIN: CONNECTED"
}

for case in "${cases[@]}"; do
    case $case in
    simple)
        for domains in with without; do
            python3 - "$work/simple-$domains.json" "$domains" <<'EOF'
import json, sys
# ILS's SimpleMapper; the hash is ILS's format of "test-pw":
# hashlib.pbkdf2_hmac("sha256", b"test-pw", b"IGNORED", 100000).hex()
json.dump({"mapper": {"plugin": "SimpleMapper", "settings": {
    "username": "kolmogorov",
    "password_hash": "49942cfe8425e6847d7c3d8bfdd501b2c782728d349ce245cd4e47527502a672",
    "resources": [{"name": "TestDesktop", "hostname": "127.0.0.2"}],
    "domains": ["EXAMPLE"] if sys.argv[2] == "with" else []}}}, open(sys.argv[1], "w"))
EOF
            serve "simple-$domains" "$work/simple-$domains.json"
            if [[ $domains == with ]]; then
                example simple kolmogorov test-pw EXAMPLE TestDesktop
                login "simple: login.exe" kolmogorov test-pw EXAMPLE
            else
                login "simple: login.exe (the mapper offers no domains)" kolmogorov test-pw ""
            fi
        done
        ;;
    rust | go | js | python)
        bash tests/setup-toolchains.sh >/dev/null
        # shellcheck source=/dev/null
        source tests/toolchains.env
        dir=guest-mappers/$case
        [[ $case == rust ]] && dir=guest-mappers/example-rust
        bash "$dir/build.sh" "$work/mapper-$case.wasm" >"$work/$case-build.log" 2>&1
        python3 - "$dir/example.settings.json" "$work/mapper-$case.wasm" "$work/$case" "$power_port" <<'EOF'
import json, sys
settings = json.load(open(sys.argv[1]))
for n, desktops in enumerate(settings["groups"].values()):
    for desktop in desktops:
        desktop["hostname"] = "127.0.0.%d" % (2 + n % 2)
        desktop.pop("agent_port", None)
power = "http://127.0.0.1:%s" % sys.argv[4]
settings["power_api"] = power
mapper = {"plugin": sys.argv[2], "settings": settings, "allowed_hosts": [power]}
json.dump({"mapper": mapper}, open(sys.argv[3] + ".json", "w"))
# The example program answers password steps only: a copy without the disclaimer.
plain = dict(settings)
del plain["disclaimer"]
json.dump({"mapper": dict(mapper, settings=plain)}, open(sys.argv[3] + "-plain.json", "w"))
EOF
        serve "$case-plain" "$work/$case-plain.json"
        example "$case" bob bob-pw EXAMPLE
        serve "$case" "$work/$case.json"
        login "$case: login.exe bob (disclaimer, password)" bob bob-pw EXAMPLE
        check "$case: the disclaimer was shown" "$work/$case: login.exe bob (disclaimer, password).log" "LOGIN: disclaimer 'This workstation"
        if [[ -f $work/probe2.exe ]]; then
            (cd "$work" && timeout 120 "$wine" probe2.exe "127.0.0.1:$port" bob EXAMPLE bob-pw ops:1,2,2 \
                >"$work/$case-ops.log" 2>&1) || true
            check "$case: bob's desktops offer power up" "$work/$case-ops.log" "op 2 allowed rc=0 val=1"
            check "$case: power up answers try again first" "$work/$case-ops.log" "OP_FAILED_TO_EXECUTE"
            check "$case: power up then succeeds" "$work/$case-ops.log" "perform_desktop_operation(id='127-0-0-2', op=2) rc=0"
            check "$case: the session goes on after the operations" "$work/$case-ops.log" "request_desktop_list (after ops) rc=0"
        fi
        code=$(totp)
        login "$case: login.exe alice (disclaimer, password, right TOTP code)" alice alice-pw EXAMPLE "$code"
        # The same code again: the host's verify-totp accepts a code once per time step.
        (cd "$work" && timeout 120 "$wine" login.exe "127.0.0.1:$port" alice EXAMPLE alice-pw \
            "$code" >"$work/$case-replayed.log" 2>&1) || true
        check "$case: a replayed code is refused" "$work/$case-replayed.log" \
            "error-text='That code was already used, wait for the next one'"
        # The code of the next time step (within the one step of drift the host allows) is unspent.
        login "$case: login.exe alice (password, wrong code, right code)" alice alice-pw EXAMPLE \
            "$(wrong_code),$(totp 1)"
        check "$case: the wrong code re-prompted with its error text" \
            "$work/$case: login.exe alice (password, wrong code, right code).log" "error-text='Wrong code, try again'"
        wrong=$(wrong_code)
        (cd "$work" && timeout 120 "$wine" login.exe "127.0.0.1:$port" alice EXAMPLE alice-pw \
            "$wrong,$wrong,$wrong" >"$work/$case-three-wrong.log" 2>&1) || true
        check "$case: three wrong codes end the login with AUTH_FAILED_DIALOG_INVALID_USER_ENTRY" \
            "$work/$case-three-wrong.log" "AUTH_FAILED_DIALOG_INVALID_USER_ENTRY"
        ;;
    *)
        echo "error: unknown case $case" >&2
        exit 2
        ;;
    esac
done
echo "logs: $work"
echo "$passed passed, $failed failed"
((failed == 0))
