#!/usr/bin/env bash
# Instructions per message of the in-process pipeline, by stage (issue 16): runs the example
# pubsub-core/examples/cost_per_message.rs in release at 1 and at 1 + ROUNDS rounds of 2,000
# messages under valgrind's callgrind (or `perf stat -e instructions:u` with TOOL=perf, where
# the machine has hardware counters: this VM has none), and divides
# the difference by the extra messages, so that start-up and the first round (warm-up) do not
# count. The modes are cumulative; each stage is the difference of two of them:
#
#   codec    = encode (produce_batch to a publisher that drops it) + the typed decode of the bodies
#   broker   = publish to the embedded broker (SNS notification), receive, delete
#   dispatch = the Dispatcher (unwrap, decode, handler, outcome), less the decode counted in codec
#   settle   = the daemon around it: poller, permits, handler tasks, settler batches
#   log      = the per-message info line, formatted and written to a sink (pubsub_core::logging)
#
# The example runs on tokio's current-thread runtime, so that counts are steady (within about
# 1%); the bench's multi-threaded runtime adds the workers' wake-ups and moves by several %.
#
# Usage: scripts/cost-per-message.sh [ROUNDS]   (default 3: 6,000 messages counted per mode;
# about two minutes). Under perf each count is the median of REPEAT runs (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
REPEAT=${REPEAT:-3}
TOOL=${TOOL:-callgrind}
MESSAGES_PER_ROUND=2000

# BINARY=path counts a build made earlier (another commit's, for a before/after comparison).
if [ -n "${BINARY:-}" ]; then
    binary=$BINARY
else
    cargo build --release --quiet -p pubsub-core --example cost_per_message
    target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    binary="$target_dir/release/examples/cost_per_message"
fi

# Instructions (user space) of one run of MODE at R rounds.
count() {
    local mode=$1 rounds=$2
    if [ "$TOOL" = callgrind ]; then
        local out
        out=$(mktemp)
        valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" "$mode" "$rounds" 2>&1 >/dev/null \
            | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
        rm -f "$out"
    else
        perf stat -x, -e instructions:u "$binary" "$mode" "$rounds" 2>&1 >/dev/null \
            | awk -F, '/instructions/ {print $1}'
    fi
}

# Median over REPEAT runs (one run under callgrind, which is deterministic enough and slow).
median() {
    local mode=$1 rounds=$2 runs=$REPEAT
    [ "$TOOL" = callgrind ] && runs=1
    for _ in $(seq "$runs"); do count "$mode" "$rounds"; done | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}

declare -A per_message
for mode in encode broker decode dispatch daemon pipeline; do
    low=$(median "$mode" 1)
    high=$(median "$mode" $((ROUNDS + 1)))
    per_message[$mode]=$(( (high - low) / (ROUNDS * MESSAGES_PER_ROUND) ))
done

encode=${per_message[encode]} broker=${per_message[broker]} decode=${per_message[decode]}
dispatch=${per_message[dispatch]} daemon=${per_message[daemon]} pipeline=${per_message[pipeline]}
printf '%-10s %14s\n' stage "instr/message"
printf '%-10s %14d\n' codec $(( encode + decode - broker ))
printf '%-10s %14d\n' broker $(( broker - encode ))
printf '%-10s %14d\n' dispatch $(( dispatch - decode ))
printf '%-10s %14d\n' settle $(( daemon - dispatch ))
printf '%-10s %14d\n' log $(( pipeline - daemon ))
printf '%-10s %14d\n' total "$pipeline"
