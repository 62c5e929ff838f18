#!/usr/bin/env bash
# Runs every benchmark of issue 6 in one go: cfgd side by side with etcd
# (what a user would pick instead) and a bare tonic echo server (the floor),
# on loopback only, and writes bench/results/latest.md and latest.json.
#
#   bench/run.sh            # 3 runs of everything
#   RUNS=1 bench/run.sh     # one run (quicker, no spread)
#   RUNS=1 bench/run.sh --only fleet   # one section (arguments go to loadgen)
#
# The fleet section starts its own 3-member etcd cluster and three cfgd
# daemons on it (--store etcd://…), beside a single daemon, in a temp dir.
#
# It installs etcd from Debian's packages when absent (etcd-server,
# etcd-client), builds the release binaries, runs the criterion benches
# once per run, starts etcd, cfgd and the echo server with their data in a
# temp dir, runs `loadgen all`, and stops everything it started on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
STARTED=$SECONDS

say() { printf '[bench %4ds] %s\n' "$((SECONDS - STARTED))" "$*" >&2; }

# --- etcd -------------------------------------------------------------------
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    say "installing etcd from Debian's packages"
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q >/dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server etcd-client >/dev/null
fi
ETCD=$(command -v etcd)
ETCDCTL=$(command -v etcdctl)

# --- build ------------------------------------------------------------------
PACKAGES=(-p cfgd -p cfgd-bench)
HAVE_CLI=0
if [ -f cli/Cargo.toml ] && grep -q '"cli"' Cargo.toml; then
    PACKAGES+=(-p cfgd-cli)
    HAVE_CLI=1
fi
say "building ${PACKAGES[*]} (release)"
cargo build --release --bins "${PACKAGES[@]}"
CFG_ARGS=()
if [ "$HAVE_CLI" = 1 ] && [ -x "$BIN/cfg" ]; then
    CFG_ARGS=(--cfg-bin "$BIN/cfg")
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cfgd-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        # A negative id is a process group (loadgen and the daemons it started).
        kill -- "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "${pid#-}" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- criterion: SDK read (this crate) and retry engine (the SDK's bench) ----
CRITERION_ARGS=(--warm-up-time 0.3 --measurement-time 1 --sample-size 20 --noplot)
CRITERION_DIRS=()
# `--only` without sdk or retry: the criterion benches are not wanted.
CRITERION_RUNS=$RUNS
ONLY=$(printf '%s\n' "$@" | sed -n 's/^--only=//p; /^--only$/{n;p}' | head -1)
if [ -n "$ONLY" ] && ! printf '%s' "$ONLY" | grep -Eq '(^|,)(sdk|retry)(,|$)'; then
    CRITERION_RUNS=0
fi
for i in $(seq 1 "$CRITERION_RUNS"); do
    dir=$WORK/criterion-$i
    say "criterion benches, run $i of $RUNS"
    ok=1
    CRITERION_HOME=$dir cargo bench -p cfgd-bench --bench sdk_read -- "${CRITERION_ARGS[@]}" \
        >>"$WORK/criterion-$i.log" 2>&1 || ok=0
    if [ -f sdk/benches/retry.rs ]; then
        CRITERION_HOME=$dir cargo bench -p cfgd-sdk --bench retry -- failed_attempt "${CRITERION_ARGS[@]}" \
            >>"$WORK/criterion-$i.log" 2>&1 || ok=0
    fi
    grep -E '^(sdk_read|retry)/|time:' "$WORK/criterion-$i.log" >&2 || true
    if [ "$ok" = 1 ]; then
        CRITERION_DIRS+=("$dir")
    else
        tail -20 "$WORK/criterion-$i.log" >&2
        say "criterion run $i failed; its figures are left out"
    fi
done

# --- daemons ----------------------------------------------------------------
wait_line() { # FILE PATTERN: prints the first matching line, waiting up to 20 s
    local i
    for i in $(seq 1 200); do
        if grep -m1 "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1" >&2
    return 1
}

CLIENT_PORT=$("$BIN/loadgen" free-port)
PEER_PORT=$("$BIN/loadgen" free-port)
ETCD_URL=http://127.0.0.1:$CLIENT_PORT
say "starting etcd on $ETCD_URL"
"$ETCD" --name bench --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "bench=http://127.0.0.1:$PEER_PORT" \
    >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
PIDS+=("$ETCD_PID")

mkdir -p "$WORK/cfgd-config"
"$BIN/cfgd" --listen 127.0.0.1:0 --http 127.0.0.1:0 --config-dir "$WORK/cfgd-config" \
    --state-dir "$WORK/cfgd-state" --debounce-ms 50 --max-connections 4096 \
    >"$WORK/cfgd.out" 2>"$WORK/cfgd.log" &
CFGD_PID=$!
PIDS+=("$CFGD_PID")
CFGD_URL=http://$(wait_line "$WORK/cfgd.out" 'cfgd listening on' | sed 's/.* on //')
# The console section: the same daemon, quiet and with its console open.
CONSOLE_URL=$(wait_line "$WORK/cfgd.out" 'cfgd console on' | sed 's/.* on //')
say "cfgd on $CFGD_URL, console on $CONSOLE_URL"

"$BIN/loadgen" echo-server --listen 127.0.0.1:0 >"$WORK/echo.out" 2>&1 &
ECHO_PID=$!
PIDS+=("$ECHO_PID")
ECHO_URL=http://$(wait_line "$WORK/echo.out" 'echo listening on' | sed 's/.* on //')
say "echo server on $ECHO_URL"

for i in $(seq 1 200); do
    if ETCDCTL_API=3 "$ETCDCTL" --endpoints="$ETCD_URL" endpoint health >/dev/null 2>&1; then
        break
    fi
    [ "$i" = 200 ] && { tail -5 "$WORK/etcd.log" >&2; echo "etcd did not become healthy" >&2; exit 1; }
    sleep 0.1
done

# --- measurements -----------------------------------------------------------
say "measuring ($RUNS runs)"
mkdir -p bench/results
CRITERION_LIST=$(IFS=,; echo "${CRITERION_DIRS[*]:-}")
# Its own process group, so the daemons it starts go with it on cleanup.
setsid "$BIN/loadgen" all \
    --cfgd "$CFGD_URL" --console "$CONSOLE_URL" --etcd "$ETCD_URL" --echo "$ECHO_URL" \
    --cfgd-pid "$CFGD_PID" --etcd-pid "$ETCD_PID" --echo-pid "$ECHO_PID" \
    --cfgd-bin "$BIN/cfgd" --etcd-bin "$ETCD" --etcdctl-bin "$ETCDCTL" \
    "${CFG_ARGS[@]}" \
    --runs "$RUNS" ${CRITERION_LIST:+--criterion-runs "$CRITERION_LIST"} \
    --markdown bench/results/latest.md --json bench/results/latest.json \
    "$@" &
LOADGEN=$!
PIDS+=(-"$LOADGEN")
wait "$LOADGEN"
say "done: bench/results/latest.md, bench/results/latest.json"
