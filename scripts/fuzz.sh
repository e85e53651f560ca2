#!/usr/bin/env bash
# Runs a coverage-guided fuzz target of fuzz/ for a number of inputs.
#
# Usage: scripts/fuzz.sh [TARGET] [RUNS]
#   TARGET  decode (default; arbitrary SQS bodies) or decode_sns (arbitrary SNS `Message`s)
#   RUNS    how many inputs to execute (default 1000000)
#
# Installs cargo-fuzz if missing, builds on the stable toolchain (--sanitizer none), fuzzes
# from fuzz/corpus/TARGET with fuzz/decode.dict and prints the number of inputs executed.
# Extra libFuzzer flags go in FUZZ_ARGS, e.g. FUZZ_ARGS="-max_total_time=600".
#
# Then it minimises the corpus, which is committed: `cargo fuzz cmin` keeps the fewest inputs
# that cover every edge reached (hit counts aside), and if that is more than FUZZ_KEEP files
# (default 300), the FUZZ_KEEP that cover the most edges are kept (greedy, needs python3).
# FUZZ_CMIN=0 skips minimising; FUZZ_KEEP=0 keeps all of cmin's output.
#
# A crash leaves its input in fuzz/artifacts/TARGET/ and the script fails; minimise it with
# `cargo fuzz tmin --sanitizer none TARGET <input>` and keep it in fuzz/regressions/TARGET/,
# where tests/fuzz_corpus.rs replays it with the corpus.
set -euo pipefail

target="${1:-decode}"
runs="${2:-1000000}"
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

corpus="fuzz/corpus/$target"
mkdir -p "$corpus"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

status=0
start=$SECONDS
# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
cargo fuzz run "$target" --sanitizer none "$corpus" -- \
    -runs="$runs" -dict=fuzz/decode.dict -print_final_stats=1 ${FUZZ_ARGS:-} 2>&1 | tee "$log" ||
    status=$?
elapsed=$((SECONDS - start))

# Keeps the $1 inputs of the corpus that cover the most edges, read from a libFuzzer merge.
keep_best() {
    local keep="$1" binary work
    binary="fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release/$target"
    work="$(mktemp -d)"
    mkdir "$work/out"
    "$binary" -merge=1 -use_counters=0 -merge_control_file="$work/control" "$work/out" "$corpus" \
        >"$work/log" 2>&1 || { tail -n 20 "$work/log"; exit 1; }
    python3 - "$work/control" "$keep" <<'PY'
import heapq, os, sys

# The control file: file count, count in the first (empty) corpus, the paths, then per input
# "STARTED <index> <size>" and "COV <index> <edges...>".
lines = open(sys.argv[1]).read().splitlines()
count, keep = int(lines[0]), int(sys.argv[2])
paths = lines[2 : 2 + count]
edges, sizes = {}, {}
for line in lines[2 + count :]:
    kind, index, *rest = line.split()
    if kind == "STARTED":
        sizes[int(index)] = int(rest[0])
    elif kind == "COV":
        edges[int(index)] = set(map(int, rest))
# Lazy greedy set cover: a stale gain only ever overestimates, so recheck the best one.
heap = [(-len(e), sizes.get(i, 0), i) for i, e in edges.items()]
heapq.heapify(heap)
covered, kept = set(), set()
while heap and len(kept) < keep:
    _, size, index = heapq.heappop(heap)
    gain = len(edges[index] - covered)
    if gain == 0:
        continue
    if heap and gain < -heap[0][0]:
        heapq.heappush(heap, (-gain, size, index))
        continue
    kept.add(index)
    covered |= edges[index]
total = len(set().union(*edges.values())) if edges else 0
for index, path in enumerate(paths):
    if index not in kept:
        os.remove(path)
print(f"kept {len(kept)} of {count} inputs, covering {len(covered)} of {total} edges")
PY
    rm -rf "$work"
}

if [ "$status" -eq 0 ] && [ "${FUZZ_CMIN:-1}" != 0 ]; then
    cargo fuzz cmin "$target" --sanitizer none "$corpus" -- -use_counters=0 2>&1 | tail -n 1
    keep="${FUZZ_KEEP:-300}"
    if [ "$keep" -gt 0 ] && [ "$(find "$corpus" -type f | wc -l)" -gt "$keep" ]; then
        keep_best "$keep"
    fi
fi

executed="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
echo "fuzz target $target: ${executed:-unknown} inputs executed in ${elapsed}s," \
    "corpus $(find "$corpus" -type f | wc -l) files"
exit "$status"
