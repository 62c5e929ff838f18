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

source "$(dirname "$0")/../../bench/callgrind-lib.sh"
callgrind_setup "${1:-$(ls -t target/release/deps/write_path-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)}" \
    'cargo bench -p cfgd --features bench-internals --bench write_path --no-run'
n=${2:-2000}

printf '%-10s %14s\n' settings 'Ir per Set'
for total in ${SIZES:-0 1000 10000}; do
    printf '%-10s %14s\n' "$total" "$(per_run "$total" "$n")"
done
