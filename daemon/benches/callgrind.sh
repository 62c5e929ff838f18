#!/usr/bin/env bash
# Instructions per `Set` in the core, by catalogue size, under callgrind:
# each size runs N and 2N sets, and the difference over N is one Set (the
# set-up — catalogue, value files, the first resolve — cancels out).
# Repeatable on a loaded machine, unlike wall time.
#
#   daemon/benches/callgrind.sh [BENCH_BINARY] [N]
#
# BENCH_BINARY defaults to the newest target/release/deps/write_path-*
# (`cargo bench -p cfgd --features bench-internals --bench write_path --no-run`
# builds it); N to 2000. SIZES="0 1000 10000" (total settings; 0 is the
# built-in catalogue alone). Needs valgrind (`apt-get install valgrind`).
set -euo pipefail

bin=${1:-$(ls -t target/release/deps/write_path-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)}
n=${2:-2000}
if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "no bench binary: build it with 'cargo bench -p cfgd --features bench-internals --bench write_path --no-run' or pass its path" >&2
    exit 2
fi
if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed: apt-get install valgrind" >&2
    exit 2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

instructions() {
    local total=$1 runs=$2 file="$out/cg.$RANDOM"
    valgrind --tool=callgrind --callgrind-out-file="$file" "$bin" --count "$total" "$runs" \
        >/dev/null 2>&1
    awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

printf '%-10s %14s\n' settings 'Ir per Set'
for total in ${SIZES:-0 1000 10000}; do
    one=$(instructions "$total" "$n")
    two=$(instructions "$total" $((2 * n)))
    printf '%-10s %14s\n' "$total" $(( (two - one) / n ))
done
