#!/usr/bin/env bash
# The memory store against the Redis store, same machine, same run, driven by `interstate bench`.
#
#   bench/stores.sh                     # 10 s per cell, 100,000 idle sessions (about 3 minutes)
#   SECONDS_PER_CELL=5 IDLE_SESSIONS=20000 bench/stores.sh
#
# One release broker per store (SimpleMapper, one user, the ILS PBKDF2 hash, the same RSA-2048
# certificate), one fake PCoIP agent (a real HTTPS server on 127.0.0.2:60443), and a
# `redis-server` of its own on a free loopback port (no persistence). The cells alternate
# memory, redis, memory, redis so that noise from other processes lands on both:
# - whole flows (probe, hello, authenticate, list, allocate, bye; a new TLS connection per flow)
#   at 8 clients: flows/s, p99 and server CPU per flow;
# - a real hello repeated on kept-alive connections (`--mode hello`) at 8 clients: server CPU per
#   hello (broker process only; for Redis, the redis-server's CPU is reported apart);
# Then 100,000 idle sessions on a fresh broker of each kind: the broker's RSS, and Redis's
# `used_memory`.
# Output: a markdown table on stdout and in $WORK/results.md; raw JSON lines in $WORK.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/interstate/target}"
WORK="${WORK:-$(mktemp -d /tmp/interstate-stores.XXXXXX)}"
mkdir -p "$WORK"
SECONDS_PER_CELL="${SECONDS_PER_CELL:-10}"
IDLE_SESSIONS="${IDLE_SESSIONS:-100000}"
AGENT_ADDR=127.0.0.2:60443
export INTERSTATE_PASSWORD='bench-password<&>'

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench/stores.sh: %s\n' "$*" >&2; exit 1; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

command -v redis-server >/dev/null || die "redis-server is needed (bash tests/setup-toolchains.sh)"
command -v openssl >/dev/null || die "openssl is needed for the RSA-2048 certificate"

log "building the release broker"
(cd "$REPO" && cargo build --release -p interstate-cli --quiet)
BIN="$CARGO_TARGET_DIR/release/interstate"
[[ -x "$BIN" ]] || die "no $BIN after the build"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

cd "$WORK"
log "work directory $WORK"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout selfsign.key -out selfsign.crt 2>/dev/null
HASH="$(printf '%s\n' "$INTERSTATE_PASSWORD" | "$BIN" hash-password --ils)"
"$BIN" session-key new session.key >/dev/null

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning \
    > redis.log 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

write_settings() { # FILE STORE MAX_UNAUTH_PER_ADDRESS
    python3 - "$@" "$HASH" "$REDIS_PORT" <<'PY'
import json, sys
path, store, per_address, hash_, redis_port = sys.argv[1:6]
session = {"max_unauthenticated_per_address": int(per_address)}
if store == "redis":
    session.update({"store": "redis", "key_file": "session.key",
                    "redis": {"url": f"redis://127.0.0.1:{redis_port}", "key_prefix": path.split('.')[0] + ":"}})
json.dump({
    "logging": {"level": "WARNING"},
    "mapper": {"plugin": "SimpleMapper", "settings": {
        "username": "kolmogorov", "password_hash": hash_,
        "resources": [{"name": "Elisabeth Taylor", "hostname": "127.0.0.2"}],
        "domains": ["EXAMPLE"]}},
    "session": session,
    "security": {"auth_failures_per_user": 1000000, "auth_failures_per_address": 1000000},
}, open(path, "w"), indent=2)
PY
}

wait_ready() { # URL
    for _ in $(seq 1 100); do
        if "$BIN" bench "$1" --mode probe -c 1 -n 1 -d 2 --timeout-s 2 --json-only >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    die "$1 did not come up"
}

start_broker() { # NAME STORE PER_ADDRESS -> sets BROKER_PID, BROKER_URL
    local port
    port=$(free_port)
    write_settings "$1.json" "$2" "$3"
    "$BIN" serve --host 127.0.0.1 -p "$port" --config "$1.json" --cert selfsign.crt --key selfsign.key \
        > "$1.log" 2>&1 &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    BROKER_URL="https://127.0.0.1:$port"
    wait_ready "$BROKER_URL"
}

log "fake agent on $AGENT_ADDR"
"$BIN" bench --fake-agent "$AGENT_ADDR" > agent.log 2>&1 &
PIDS+=($!)

start_broker memory memory 256
MEM_PID=$BROKER_PID MEM_URL=$BROKER_URL
start_broker redis redis 256
RED_PID=$BROKER_PID RED_URL=$BROKER_URL

run_cell() { # LABEL URL PID MODE CLIENTS
    local before after
    before=$(cpu_ticks "$REDIS_PID")
    local extra=()
    [[ $4 == flow ]] && extra=(--new-connection-per-flow -u kolmogorov --domain EXAMPLE)
    "$BIN" bench "$2" --label "$1" --mode "$4" -c "$5" -d "$SECONDS_PER_CELL" --pid "$3" \
        "${extra[@]}" --json-only >> results.jsonl
    after=$(cpu_ticks "$REDIS_PID")
    echo "{\"label\": \"$1\", \"mode\": \"$4\", \"redis_cpu_ticks\": $((after - before))}" >> redis-cpu.jsonl
}

for round in 1 2; do
    for mode in flow hello; do
        log "round $round: $mode"
        run_cell memory "$MEM_URL" "$MEM_PID" "$mode" 8
        run_cell redis "$RED_URL" "$RED_PID" "$mode" 8
    done
done

log "$IDLE_SESSIONS idle sessions on a fresh broker of each kind"
redis-cli -p "$REDIS_PORT" flushall >/dev/null
start_broker idle-memory memory $((IDLE_SESSIONS + 16))
"$BIN" bench "$BROKER_URL" --label memory --mode sessions -c 16 -n "$IDLE_SESSIONS" -d 300 \
    --pid "$BROKER_PID" --json-only > sessions-memory.json
kill "$BROKER_PID"
USED_BEFORE=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
start_broker idle-redis redis $((IDLE_SESSIONS + 16))
"$BIN" bench "$BROKER_URL" --label redis --mode sessions -c 16 -n "$IDLE_SESSIONS" -d 300 \
    --pid "$BROKER_PID" --json-only > sessions-redis.json
USED_AFTER=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
KEYS=$(redis-cli -p "$REDIS_PORT" dbsize | tr -d '\r')

python3 - "$WORK" "$(getconf CLK_TCK)" "$USED_BEFORE" "$USED_AFTER" "$KEYS" "$SECONDS_PER_CELL" > results.md <<'EOF'
import json, sys, statistics
work, hz, used_before, used_after, keys, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
rows = [json.loads(l) for l in open(f"{work}/results.jsonl") if l.strip()]
redis_cpu = [json.loads(l) for l in open(f"{work}/redis-cpu.jsonl") if l.strip()]
def step(r, name):
    return next((s for s in r["steps"] if s["step"] == name), None)
def cell(label, mode):
    return [r for r in rows if r["label"] == label and r["mode"] == mode]
print(f"Two rounds of {secs} s per cell, alternating the stores; 8 clients; the load generator, both")
print("brokers, redis-server and the fake agent share the machine's 2 cores. Release build.")
print()
print("| mode | store | per s (each round) | p99 ms | broker CPU µs / request-or-flow | redis-server CPU µs / same | errors |")
print("|---|---|---|---:|---:|---:|---:|")
for mode in ("flow", "hello"):
    for label in ("memory", "redis"):
        rs = cell(label, mode)
        if not rs:
            continue
        per_s = [r["flows_per_s"] for r in rs]
        p99 = max((step(r, "flow") or r["steps"][0])["p99_ms"] for r in rs)
        done = sum(r["flows_ok"] for r in rs)
        cpu = sum(r["server"]["cpu_s"] for r in rs) / max(done, 1) * 1e6
        rticks = sum(c["redis_cpu_ticks"] for c in redis_cpu if c["label"] == label and c["mode"] == mode)
        rcpu = rticks / hz / max(done, 1) * 1e6
        errs = sum(sum(r["errors"].values()) for r in rs)
        print(f"| {mode} | {label} | {' / '.join(f'{x:.0f}' for x in per_s)} | {p99:.1f} | {cpu:.1f} | {rcpu:.1f} | {errs} |")
mem = sum(r["flows_per_s"] for r in cell("memory", "flow"))
red = sum(r["flows_per_s"] for r in cell("redis", "flow"))
if mem:
    print()
    print(f"Full flows/s, redis / memory: {red / mem:.2f} (goal: at least 0.8).")
for label in ("memory", "redis"):
    s = json.load(open(f"{work}/sessions-{label}.json"))
    srv = s["server"]
    print(f"Idle sessions ({label}): {s['flows_ok']} in {s['elapsed_s']:.1f} s ({s['flows_per_s']:.0f}/s, "
          f"{sum(s['errors'].values())} errors); broker RSS {srv['rss_before_mib']:.1f} MiB before, {srv['rss_after_mib']:.1f} MiB after.")
print(f"Redis used_memory: {used_before / 2**20:.1f} MiB before, {used_after / 2**20:.1f} MiB after the idle sessions "
      f"({(used_after - used_before) / max(int(json.load(open(f'{work}/sessions-redis.json'))['flows_ok']), 1):.0f} bytes per session; {keys} keys).")
EOF
cat results.md
log "raw figures: $WORK/results.jsonl, $WORK/sessions-*.json; logs in $WORK"
