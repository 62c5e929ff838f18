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

bin=${1:-$(ls -t target/release/deps/retry-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)}
n=${2:-20000}
if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "no bench binary: build it with 'cargo bench -p cfgd-sdk --bench retry --no-run' or pass its path" >&2
    exit 2
fi
if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed: apt-get install valgrind" >&2
    exit 2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Total instructions of one callgrind run of `case` repeated `runs` times.
instructions() {
    local case=$1 runs=$2 file="$out/cg.$RANDOM"
    valgrind --tool=callgrind --callgrind-out-file="$file" "$bin" --count "$case" "$runs" \
        >/dev/null 2>&1
    awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

printf '%-46s %14s %14s\n' case 'Ir/run' 'Ir/attempt'
for case in $("$bin" --count list); do
    one=$(instructions "$case" "$n")
    two=$(instructions "$case" $((2 * n)))
    per_run=$(( (two - one) / n ))
    case $case in
        retry/failed_attempt*) per_attempt=$((per_run / 4)) ;;
        *) per_attempt=- ;;
    esac
    printf '%-46s %14s %14s\n' "$case" "$per_run" "$per_attempt"
done
