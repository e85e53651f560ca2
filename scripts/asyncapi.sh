#!/usr/bin/env bash
# The AsyncAPI parser the schema tests check generated documents with: @asyncapi/parser from
# npm, at the version pinned in scripts/asyncapi/package.json and package-lock.json, installed
# with `npm ci` into scripts/asyncapi/node_modules/ (git-ignored) and run by node through
# scripts/asyncapi/validate.mjs (pubsub-core/tests/asyncapi.rs, tests/asyncapi.rs). An install
# that matches the lock file is reused.
#
# As a command:
#   ./scripts/asyncapi.sh install          install (or check) the parser
#   ./scripts/asyncapi.sh check FILE       install or reuse it, then validate FILE (- for stdin)
#
# As a library (scripts/test.sh does this):
#   . scripts/asyncapi.sh
#   asyncapi_prepare || exit 1   # exports PUBSUB_ASYNCAPI_VALIDATOR=.../validate.mjs
#
# Under CI (the CI variable set to anything but "", "0" or "false") a parser that cannot be
# installed is an error; elsewhere it is a warning and the tests that need it skip. Needs node
# (18 or later) and npm. npm's log is target/asyncapi/install.log.

ASYNCAPI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASYNCAPI_DIR="$ASYNCAPI_ROOT/scripts/asyncapi"
ASYNCAPI_LOG_DIR="$ASYNCAPI_ROOT/target/asyncapi"
ASYNCAPI_STAMP="$ASYNCAPI_DIR/node_modules/.package-lock.sha256"

# shellcheck source=scripts/ci.sh
. "$ASYNCAPI_ROOT/scripts/ci.sh"

asyncapi_warn() { echo "asyncapi: $*" >&2; }

# True when node_modules/ was installed from the current lock file and the parser loads.
asyncapi_ready() {
  [ -f "$ASYNCAPI_STAMP" ] || return 1
  [ "$(cat "$ASYNCAPI_STAMP")" = "$(sha256sum "$ASYNCAPI_DIR/package-lock.json" | cut -d' ' -f1)" ] || return 1
  (cd "$ASYNCAPI_DIR" && node -e 'import("@asyncapi/parser").then(() => {}, () => process.exit(1))') >/dev/null 2>&1
}

# Installs the pinned parser, or reuses it. Returns non-zero, having said why, when it cannot.
asyncapi_install() {
  if asyncapi_ready; then
    return 0
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    asyncapi_warn "node and npm are needed to check AsyncAPI documents (Debian: apt install nodejs npm)"
    return 1
  fi
  mkdir -p "$ASYNCAPI_LOG_DIR"
  echo "== asyncapi: npm ci (@asyncapi/parser, pinned; log in target/asyncapi/install.log)"
  # No install scripts: the parser needs none, and one of its dependencies would phone home.
  if ! (cd "$ASYNCAPI_DIR" && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund) \
    >"$ASYNCAPI_LOG_DIR/install.log" 2>&1; then
    asyncapi_warn "npm ci failed; see $ASYNCAPI_LOG_DIR/install.log"
    return 1
  fi
  sha256sum "$ASYNCAPI_DIR/package-lock.json" | cut -d' ' -f1 >"$ASYNCAPI_STAMP"
  asyncapi_ready || { asyncapi_warn "the parser was installed but does not load"; return 1; }
}

# Installs or reuses the parser and exports PUBSUB_ASYNCAPI_VALIDATOR; under CI, a failure is
# the caller's error.
asyncapi_prepare() {
  if asyncapi_install; then
    export PUBSUB_ASYNCAPI_VALIDATOR="$ASYNCAPI_DIR/validate.mjs"
    return 0
  fi
  if is_ci; then
    asyncapi_warn "CI is set: the AsyncAPI parser is required"
    return 1
  fi
  asyncapi_warn "the AsyncAPI validity tests will skip"
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    install) asyncapi_install ;;
    check)
      asyncapi_install
      exec node "$ASYNCAPI_DIR/validate.mjs" "${2:--}"
      ;;
    *)
      echo "usage: $0 install | check FILE" >&2
      exit 2
      ;;
  esac
fi
