#!/usr/bin/env bash
# The daemon's figures for the README: start to first receive (process start until
# /health/ready answers 200, which it does once a receive has come back) and resident memory
# when idle (VmRSS five seconds after the start, its one message handled), for the release
# `simple_daemon` on a real SQS queue (moto, started here on 127.0.0.1) holding one message,
# so that the first receive comes back at once; and on the embedded broker (--testing), whose
# first receive is a 200 ms long poll of an empty queue. Medians of RUNS runs (default 5).
#
#   ./scripts/daemon_figures.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"

export AWS_EC2_METADATA_DISABLED=true
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"

cargo build --release --locked --example simple_daemon --features aws
daemon=target/release/examples/simple_daemon

# shellcheck source=scripts/moto.sh
. scripts/moto.sh
trap 'moto_stop $?' EXIT
moto_prepare
moto_up
queue=$(.venv/bin/python -c "
import boto3
sqs = boto3.client('sqs', endpoint_url='$AWS_ENDPOINT_URL', region_name='$AWS_REGION')
print(sqs.create_queue(QueueName='daemon-figures-$$')['QueueUrl'])")
# One message waiting, so that the first receive does not wait.
send_one() {
  .venv/bin/python -c "
import boto3
sqs = boto3.client('sqs', endpoint_url='$AWS_ENDPOINT_URL', region_name='$AWS_REGION')
sqs.send_message(QueueUrl='$queue', MessageBody='{\"mediaType\": \"application/vnd.globality.pubsub.simple\", \"message\": \"hi\", \"timestamp\": 1.0}')"
}

free_port() {
  .venv/bin/python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

# The status of GET /health/ready, or nothing while no one listens.
ready_status() {
  local port=$1 line
  exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 0
  printf 'GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  read -r _ line _ <&3 || true
  exec 3<&-
  echo "$line"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

measure() {
  local label=$1
  shift
  local starts=() rss=()
  for _ in $(seq "$runs"); do
    [ "$label" = "SQS queue (moto)" ] && send_one
    local port
    port=$(free_port)
    local t0
    t0=$(date +%s%N)
    "$daemon" --health-addr "127.0.0.1:$port" --wait-seconds 1 "$@" 2>/dev/null &
    local pid=$!
    until [ "$(ready_status "$port")" = "200" ]; do sleep 0.005; done
    starts+=("$(( ($(date +%s%N) - t0) / 1000000 ))")
    sleep 5
    rss+=("$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")")
    kill -TERM "$pid"
    wait "$pid"
  done
  printf '%-28s start to first receive: %s ms (median of %s: %s); idle RSS: %s KiB (%s)\n' "$label" \
    "$(printf '%s\n' "${starts[@]}" | median)" "$runs" "${starts[*]}" \
    "$(printf '%s\n' "${rss[@]}" | median)" "${rss[*]}"
}

measure "embedded (--testing)" --testing
measure "SQS queue (moto)" --sqs-queue-url "$queue"
