#!/usr/bin/env bash
# Interstate against interstate_love_song 2.0.3, side by side, on this machine.
#
#   bench/run.sh                  # the whole comparison, 10 s per cell (about 5 minutes)
#   SECONDS_PER_CELL=3 bench/run.sh
#
# Both brokers get the same settings.json (SimpleMapper, one user, the ILS PBKDF2 hash), the same
# RSA-2048 certificate, and the same fake PCoIP agent (a real HTTPS server on 127.0.0.2:60443,
# the port ILS hard-codes). ILS runs under gunicorn + gevent with 2 workers, as its README says.
# `interstate bench` drives both: the QueryBrokerClient hello (`--mode probe`) on kept-alive
# connections and whole flows with a new
# TLS connection per flow, at 1, 8 and 32 clients; server CPU comes from /proc/<pid>/stat of
# every server process (gunicorn master and workers included). Then 100,000 idle sessions are
# opened on a fresh Interstate and its RSS is read from /proc.
#
# Nothing is installed into the repository: ILS goes into a venv under $ILS_DIR (default
# /tmp/ils) with the workarounds of reference/ils-howto.md applied to the installed copy.
# Output: a markdown table on stdout and in $WORK/results.md, raw JSON lines in
# $WORK/results.jsonl.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/interstate/target}"
ILS_DIR="${ILS_DIR:-/tmp/ils}"
WORK="${WORK:-$(mktemp -d /tmp/interstate-bench.XXXXXX)}"
mkdir -p "$WORK"
SECONDS_PER_CELL="${SECONDS_PER_CELL:-10}"
IDLE_SESSIONS="${IDLE_SESSIONS:-100000}"
AGENT_ADDR=127.0.0.2:60443
OUR_PORT=60501
ILS_PORT=60502
IDLE_PORT=60503
USER_NAME=kolmogorov
export INTERSTATE_PASSWORD='bench-password<&>'

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

command -v openssl >/dev/null || die "openssl is needed for the shared RSA-2048 certificate"
command -v python3 >/dev/null || die "python3 is needed to run interstate_love_song"

log "building the release broker"
(cd "$REPO" && cargo build --release -p interstate-cli --quiet)
BIN="$CARGO_TARGET_DIR/release/interstate"
[[ -x "$BIN" ]] || die "no $BIN after the build"

log "installing interstate_love_song 2.0.3 into $ILS_DIR/venv (once)"
if [[ ! -x "$ILS_DIR/venv/bin/python" ]] || ! "$ILS_DIR/venv/bin/python" -c 'import interstate_love_song' 2>/dev/null; then
    mkdir -p "$ILS_DIR"
    python3 -m venv "$ILS_DIR/venv"
    "$ILS_DIR/venv/bin/pip" install --quiet interstate-love-song==2.0.3 falcon==2.0.0 beaker==1.14.1 \
        falcon-middleware-beaker==0.0.1 defusedxml==0.6.0 requests==2.34.2 urllib3==2.8.0 \
        gunicorn==27.0.1 gevent==26.9.0 greenlet==3.5.6 packaging==26.3 'setuptools<81' \
        || true
fi
SITE="$("$ILS_DIR/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ILS_PKG="$SITE/interstate_love_song"
[[ -d "$ILS_PKG" ]] || die "interstate_love_song is not installed in $ILS_DIR/venv (pip failed?)"
# Workaround 1 of ils-howto.md: Python 3.11 refuses mutable dataclass defaults unless hashable.
for spec in "settings.py:BeakerSettings" "settings.py:LoggingSettings" "plugins/simple.py:SimpleMapperSettings"; do
    file="$ILS_PKG/${spec%%:*}"
    class="${spec##*:}"
    python3 - "$file" "$class" <<'EOF'
import re, sys
path, cls = sys.argv[1], sys.argv[2]
text = open(path).read()
patched = re.sub(r"@dataclass(\(\))?\nclass " + cls + r"\b", "@dataclass(unsafe_hash=True)\nclass " + cls, text)
if patched != text:
    open(path, "w").write(patched)
EOF
done
"$ILS_DIR/venv/bin/python" -c 'import interstate_love_song.__main__' 2>/dev/null \
    || die "interstate_love_song still does not import; see reference/ils-howto.md"

log "work directory $WORK"
cd "$WORK"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout selfsign.key -out selfsign.crt 2>/dev/null
HASH="$(printf '%s\n' "$INTERSTATE_PASSWORD" | "$BIN" hash-password --ils)"
ILS_HASH="$("$ILS_DIR/venv/bin/python" -m interstate_love_song.plugins.simple "$INTERSTATE_PASSWORD" | tail -n1)"
[[ "$HASH" == "$ILS_HASH" ]] || die "the two brokers hash the password differently: $HASH vs $ILS_HASH"
mkdir -p beaker
cat > settings.json <<EOF
{
  "logging": {"level": "INFO"},
  "beaker": {"type": "file", "data_dir": "$WORK/beaker"},
  "mapper": {
    "plugin": "SimpleMapper",
    "settings": {
      "username": "$USER_NAME",
      "password_hash": "$HASH",
      "resources": [
        {"name": "Elisabeth Taylor", "hostname": "127.0.0.2"},
        {"name": "James Dean", "hostname": "127.0.0.2"}
      ],
      "domains": ["EXAMPLE"]
    }
  }
}
EOF

wait_ready() { # URL
    for _ in $(seq 1 100); do
        if "$BIN" bench "$1" --mode probe -c 1 -n 1 -d 2 --timeout-s 2 --json-only >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    die "$1 did not come up"
}

log "fake agent on $AGENT_ADDR"
"$BIN" bench --fake-agent "$AGENT_ADDR" > agent.log 2>&1 &
PIDS+=($!)

log "interstate on 127.0.0.1:$OUR_PORT"
"$BIN" serve --host 127.0.0.1 -p "$OUR_PORT" --config settings.json --cert selfsign.crt --key selfsign.key \
    > interstate.log 2>&1 &
OUR_PID=$!
PIDS+=("$OUR_PID")

log "interstate_love_song on 127.0.0.1:$ILS_PORT (gunicorn + gevent, 2 workers)"
"$ILS_DIR/venv/bin/python" -m interstate_love_song -s gunicorn --host 127.0.0.1 -p "$ILS_PORT" \
    --config settings.json --cert selfsign.crt --key selfsign.key --gunicorn-workers 2 --no-splash \
    > ils.log 2>&1 &
ILS_PID=$!
PIDS+=("$ILS_PID")

wait_ready "https://127.0.0.1:$OUR_PORT"
wait_ready "https://127.0.0.1:$ILS_PORT"
ILS_WORKERS="$(pgrep -P "$ILS_PID" | tr '\n' ' ')"
[[ -n "$ILS_WORKERS" ]] || die "no gunicorn workers under pid $ILS_PID"

log "probe of each broker (informational)"
"$BIN" probe "https://127.0.0.1:$OUR_PORT" --user "$USER_NAME" --insecure > probe-interstate.txt 2>&1 || true
"$BIN" probe "https://127.0.0.1:$ILS_PORT" --user "$USER_NAME" --insecure > probe-ils.txt 2>&1 || true
tail -n1 probe-interstate.txt | sed 's/^/   interstate: /' >&2
tail -n1 probe-ils.txt | sed 's/^/   ils: /' >&2

pid_args() { for pid in "$@"; do printf -- '--pid %s ' "$pid"; done; }
run_cell() { # LABEL PORT MODE CLIENTS PIDS...
    local label=$1 port=$2 mode=$3 clients=$4
    shift 4
    local extra=()
    if [[ "$mode" == flow ]]; then
        extra=(--user "$USER_NAME" --domain EXAMPLE --new-connection-per-flow -n 100000)
    else
        extra=(-n 10000000)
    fi
    log "$label $mode -c $clients (${SECONDS_PER_CELL}s)"
    # shellcheck disable=SC2046
    "$BIN" bench "https://127.0.0.1:$port" --label "$label" --mode "$mode" -c "$clients" \
        -d "$SECONDS_PER_CELL" --timeout-s 10 "${extra[@]}" $(pid_args "$@") --json-only \
        >> results.jsonl || true
}

: > results.jsonl
for mode in probe flow; do
    for clients in 1 8 32; do
        run_cell interstate "$OUR_PORT" "$mode" "$clients" "$OUR_PID"
        # shellcheck disable=SC2086
        run_cell ils "$ILS_PORT" "$mode" "$clients" "$ILS_PID" $ILS_WORKERS
    done
done

log "$IDLE_SESSIONS idle sessions on a fresh interstate (127.0.0.1:$IDLE_PORT)"
# Every hello comes from one address and nobody logs in: lift the per-address cap of
# unauthenticated sessions (a flood defence) so that all of them stay for the measurement.
python3 - "$IDLE_SESSIONS" <<'PY'
import json, sys
settings = json.load(open("settings.json"))
settings["session"] = {"max_unauthenticated_per_address": int(sys.argv[1]) + 16}
json.dump(settings, open("settings-idle.json", "w"), indent=2)
PY
"$BIN" serve --host 127.0.0.1 -p "$IDLE_PORT" --config settings-idle.json --cert selfsign.crt --key selfsign.key \
    > interstate-idle.log 2>&1 &
IDLE_PID=$!
PIDS+=("$IDLE_PID")
wait_ready "https://127.0.0.1:$IDLE_PORT"
"$BIN" bench "https://127.0.0.1:$IDLE_PORT" --label interstate --mode sessions -c 16 \
    -n "$IDLE_SESSIONS" -d 300 --pid "$IDLE_PID" --json-only > sessions.json

python3 - "$WORK" "$(nproc)" "$SECONDS_PER_CELL" > results.md <<'EOF'
import json, sys
work, cores, secs = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(f"{work}/results.jsonl") if l.strip()]
cell = {(r["label"], r["mode"], r["concurrency"]): r for r in rows}
def p99(r):
    s = next((s for s in r["steps"] if s["step"] == "flow"), None)
    return s["p99_ms"] if s else float("nan")
def cpu(r):
    return r["server"]["cpu_s_per_1000_flows"] if r.get("server") else float("nan")
def errs(r):
    return sum(r["errors"].values())
print(f"Machine: {cores} cores; the load generator and both brokers share it. {secs} s per cell.")
print("`hello`: the QueryBrokerClient hello every client opens with (`--mode probe`), one per request on")
print("kept-alive connections. (`--mode hello`, a real hello repeated with the cookie, gets HTTP 500 from")
print("ILS from the second hello on: ILS accepts a hello only in its first state.) `flow`: probe, hello,")
print("authenticate (PBKDF2, 100,000 rounds), list, allocate (fake agent over HTTPS), bye, with a new")
print("TLS connection per flow (RSA-2048 certificate for both). CPU: server processes only.")
print()
print("| mode | clients | Interstate flows/s | ILS flows/s | ratio | Interstate p99 ms | ILS p99 ms | p99 ratio | Interstate CPU s / 1000 flows | ILS CPU s / 1000 flows | errors (ours / ILS) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for mode, name in (("probe", "hello"), ("flow", "flow")):
    for c in (1, 8, 32):
        a, b = cell.get(("interstate", mode, c)), cell.get(("ils", mode, c))
        if not a or not b:
            continue
        ratio = a["flows_per_s"] / b["flows_per_s"] if b["flows_per_s"] else float("inf")
        pr = p99(b) / p99(a) if p99(a) else float("inf")
        print(f"| {name} | {c} | {a['flows_per_s']:.0f} | {b['flows_per_s']:.1f} | {ratio:.1f}x | "
              f"{p99(a):.2f} | {p99(b):.1f} | 1/{pr:.0f} | {cpu(a):.3f} | {cpu(b):.3f} | {errs(a)} / {errs(b)} |")
flows = [r for r in rows if r["label"] == "interstate" and r["mode"] == "flow" and r.get("pbkdf2_ms")]
if flows:
    h = min(r["pbkdf2_ms"] for r in flows)
    print()
    print(f"One PBKDF2 hash (ILS format) costs {h:.1f} ms of CPU here. Interstate's server CPU per flow,")
    print("and what is left without the hash (the goal is at most 10% of the hash):")
    print()
    print("| clients | CPU ms / flow | without the hash | share of the hash |")
    print("|---:|---:|---:|---:|")
    for r in sorted(flows, key=lambda r: r["concurrency"]):
        per = cpu(r)
        print(f"| {r['concurrency']} | {per:.1f} | {per - h:.2f} | {100 * (per - h) / h:.1f}% |")
s = json.load(open(f"{work}/sessions.json"))
srv = s["server"]
print()
print(f"Idle sessions: {s['flows_ok']} hellos without the cookie (each leaves a session) in {s['elapsed_s']:.1f} s "
      f"({s['flows_per_s']:.0f}/s, {errs(s)} errors); Interstate RSS {srv['rss_before_mib']:.1f} MiB before, "
      f"{srv['rss_after_mib']:.1f} MiB after "
      f"({(srv['rss_after_mib'] - srv['rss_before_mib']) * 1024 * 1024 / max(s['flows_ok'], 1):.0f} bytes per session).")
EOF
cat results.md
log "raw figures: $WORK/results.jsonl, $WORK/sessions.json; logs in $WORK"
