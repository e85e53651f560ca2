#!/usr/bin/env bash
# The one test command: every test of the workspace (unit, integration, trybuild, doc tests,
# benches in test mode), plus the format and lint checks. Works from a fresh clone.
#
#   ./scripts/test.sh            everything
#   SKIP_LINT=1 ./scripts/test.sh   tests only
set -euo pipefail
cd "$(dirname "$0")/.."

# The AWS SDK's default chain must never probe the instance-metadata address, and nothing
# here may reach a real AWS endpoint: give every test a region and dummy credentials.
export AWS_EC2_METADATA_DISABLED=true
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if [ -z "${SKIP_LINT:-}" ]; then
  echo "== cargo fmt --check"
  cargo fmt --all -- --check
  echo "== cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

echo "== benches, run once each as tests"
cargo test --workspace --benches --locked
echo "== cargo test (unit, integration, trybuild, doc tests)"
cargo test --workspace --locked
