#!/usr/bin/env bash
# The one test command: every test of the workspace (unit, integration, trybuild, doc tests,
# benches in test mode, the README's snippets), plus the format, lint and rust-version checks.
# Works from a fresh clone.
#
#   ./scripts/test.sh            everything
#   SKIP_LINT=1 ./scripts/test.sh   tests only
#
# The AWS-transport tests (pubsub-aws) run against moto, an SNS/SQS emulator that
# scripts/moto.sh installs (pinned, into .venv/) and starts on 127.0.0.1 for the whole run, then
# stops. Under CI an emulator that cannot be had fails the run; elsewhere its tests skip. The same
# goes for the Python peers of the interop tests (scripts/interop.sh, .venv-interop/) and for
# AsyncAPI's parser from npm (scripts/asyncapi.sh, scripts/asyncapi/node_modules/; needs node).
set -euo pipefail
cd "$(dirname "$0")/.."

# The AWS SDK's default chain must never probe the instance-metadata address, and nothing
# here may reach a real AWS endpoint: give every test a region and dummy credentials.
export AWS_EC2_METADATA_DISABLED=true
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A CI machine builds once from nothing: incremental compilation would only write files that
# are never read again.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi

# Each step's heading says how long the run has taken so far, so a slow step shows in CI's log.
step() { echo "== [${SECONDS}s] $*"; }

# The SNS/SQS emulator (moto), the Python interop peers (pubsub-aws's extended_interop runs in
# the workspace step, otel_interop in the OpenTelemetry one) and AsyncAPI's parser (npm, for
# pubsub-core's tests/asyncapi.rs): installed while the lint runs (they wait on the network, the
# lint on the CPU), and each checked again before the first test, which exports what the tests
# read (PUBSUB_INTEROP_PYTHON, PUBSUB_ASYNCAPI_VALIDATOR) and fails the run, under CI, for one
# that cannot be had. The emulator is started before the tests and stopped however the script
# ends.
# shellcheck source=scripts/moto.sh
. scripts/moto.sh
# shellcheck source=scripts/interop.sh
. scripts/interop.sh
# shellcheck source=scripts/asyncapi.sh
. scripts/asyncapi.sh
# (The installs' job has ended by the tests; `|| true`: under `set -e` a failed kill would be the
# run's exit status.)
trap 'status=$?; echo "== [${SECONDS}s] end (status $status)"; kill "${installs:-}" 2>/dev/null || true; moto_stop $status' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p target
step "moto, the Python interop peers and AsyncAPI's parser: install (in the background; log in target/installs.log)"
(moto_prepare && interop_prepare && asyncapi_prepare) >target/installs.log 2>&1 &
installs=$!

if [ -z "${SKIP_LINT:-}" ]; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "cargo clippy"
  cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
  step "cargo doc (a broken or private link is an error)"
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked
  step "rust-version covers the dependencies"
  ./scripts/msrv.sh
fi

step "moto, the Python interop peers and AsyncAPI's parser: ready"
wait "$installs" || true
cat target/installs.log
moto_prepare || exit 1
interop_prepare || exit 1 # exports PUBSUB_INTEROP_PYTHON
asyncapi_prepare || exit 1 # exports PUBSUB_ASYNCAPI_VALIDATOR

step "SNS/SQS emulator (moto): start"
moto_up || exit 1 # exports AWS_ENDPOINT_URL=http://127.0.0.1:PORT (loopback only)

step "benches, run once each as tests"
cargo test --workspace --benches --locked
step "cargo test (unit, integration, trybuild, doc tests)"
# pubsub-lambda's tests run here too: tests/handler.rs on recorded SQS and SNS events (its
# visibility test against moto), and tests/bootstrap.rs, which builds the root's
# examples/simple_lambda.rs itself (--features pubsub-suite/lambda) and runs it against a Lambda
# Runtime API of its own on 127.0.0.1.
# pubsub-aws's default feature `s3` is on here: large_payloads_aws (S3ObjectStore, offloading
# through SNS, SQS and S3 on moto, the CLI's --large-payload-bucket) and extended_interop (AWS's
# Python extended clients, both ways) run in this step.
cargo test --workspace --locked
# The OpenTelemetry code is behind pubsub-core's `otel` feature, which the step above leaves off.
step "OpenTelemetry (pubsub-core --features otlp: unit tests, tests/telemetry.rs, the otel benches once each, the export docs)"
cargo test -p pubsub-core --features otlp --lib --test telemetry --bench pipeline --bench otel_spans --locked
cargo test -p pubsub-core --features otlp --doc --locked telemetry::
# The health server is behind pubsub-core's `health` feature too (the health state is not).
step "Health endpoints (pubsub-core --features health: tests/health.rs over HTTP on 127.0.0.1, the server docs)"
cargo test -p pubsub-core --features health --test health --locked
cargo test -p pubsub-core --features health --doc --locked health::
# pubsub-aws's OpenTelemetry tests, built once with `otlp` (which includes `otel`):
# - telemetry_aws: trace context through moto, raw and enveloped delivery;
# - otlp_export: the binaries export over OTLP to a receiver of the test's own (simple_daemon
#   is built by the test itself: cargo build -p pubsub-suite --example simple_daemon ...);
# - otel_interop: trace context against OpenTelemetry's own Python instrumentation
#   (microcosm-pubsub under the botocore and boto3sqs instrumentations), installed by
#   scripts/interop.sh into .venv-interop/; under CI a set that cannot be installed fails the run.
step "OpenTelemetry through SNS/SQS, OTLP export, interop with Python (pubsub-aws --features otlp)"
cargo test -p pubsub-aws --features otlp --test telemetry_aws --test otlp_export --test otel_interop --locked
# The README's snippets are doc tests of the root package; those that use pubsub-aws compile
# only under its `aws` feature (the export snippet under `otel`, the Lambda one under
# `lambda`), which the steps above leave off.
step "README snippets that need pubsub-aws, OTLP export or pubsub-lambda (doc tests, --features aws,otel,lambda)"
cargo test -p pubsub-suite --features aws,otel,lambda --doc --locked
