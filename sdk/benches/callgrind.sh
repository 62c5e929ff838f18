#!/usr/bin/env bash
# Instructions per operation of the retry bench's cases, under callgrind:
# each case runs N and 2N times, and the difference over N is one run (the
# set-up cancels out). Repeatable on a loaded machine, unlike wall time.
#
#   sdk/benches/callgrind.sh [BENCH_BINARY] [N]
#
# BENCH_BINARY defaults to the newest target/release/deps/retry-*
# (`cargo bench -p cfgd-sdk --bench retry --no-run` builds it); N to 20000.
# Needs valgrind (`apt-get install valgrind`).
set -euo pipefail

source "$(dirname "$0")/../../bench/callgrind-lib.sh"
callgrind_setup "${1:-$(ls -t target/release/deps/retry-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)}" \
    'cargo bench -p cfgd-sdk --bench retry --no-run'
n=${2:-20000}

printf '%-46s %14s %14s\n' case 'Ir/run' 'Ir/attempt'
for case in $("$bin" --count list); do
    per_run=$(per_run "$case" "$n")
    case $case in
        retry/failed_attempt*) per_attempt=$((per_run / 4)) ;;
        *) per_attempt=- ;;
    esac
    printf '%-46s %14s %14s\n' "$case" "$per_run" "$per_attempt"
done
