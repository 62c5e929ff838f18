# Shared by the callgrind scripts (sdk/benches/callgrind.sh,
# daemon/benches/callgrind.sh): sourced, not run. A bench binary with a
# fixed-count mode (`BIN --count CASE RUNS`) is run under callgrind N and 2N
# times; the difference over N is one run, the set-up cancelling out.
# Repeatable on a loaded machine, unlike wall time.

# callgrind_setup BIN HOW_TO_BUILD: checks the binary and valgrind, and
# makes the temp dir the counts go to.
callgrind_setup() {
    bin=$1
    if [[ -z "$bin" || ! -x "$bin" ]]; then
        echo "no bench binary: build it with '$2' or pass its path" >&2
        exit 2
    fi
    if ! command -v valgrind >/dev/null; then
        echo "valgrind is not installed: apt-get install valgrind" >&2
        exit 2
    fi
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
}

# instructions CASE RUNS: total instructions of one callgrind run of CASE
# repeated RUNS times.
instructions() {
    local case=$1 runs=$2 file="$out/cg.$RANDOM"
    valgrind --tool=callgrind --callgrind-out-file="$file" "$bin" --count "$case" "$runs" \
        >/dev/null 2>&1
    awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

# per_run CASE N: instructions of one run of CASE.
per_run() {
    local one two
    one=$(instructions "$1" "$2")
    two=$(instructions "$1" $((2 * $2)))
    echo $(( (two - one) / $2 ))
}
