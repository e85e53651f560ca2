#!/usr/bin/env bash
# The Python peers of the interop tests: microcosm-pubsub with OpenTelemetry's botocore and
# boto3sqs instrumentations and its SDK (pubsub-aws/tests/otel_interop.rs), and AWS's extended
# clients for SNS and SQS, which offload large payloads to S3 (pubsub-aws/tests/extended_interop.rs).
#
# They come from PyPI, at the versions pinned in scripts/requirements-interop.txt, installed into
# a virtual environment at .venv-interop/ (repository root, git-ignored; moto keeps its own
# .venv/). A .venv-interop/ that already has exactly that set is reused, so only the first run
# pays for the install.
#
# As a command:
#   ./scripts/interop.sh install          install (or check) the pinned set in .venv-interop/
#   ./scripts/interop.sh run CMD [ARG]... install or reuse it, run CMD with PUBSUB_INTEROP_PYTHON
#                                         exported; with the emulator, e.g.
#     ./scripts/moto.sh run ./scripts/interop.sh run \
#       cargo test -p pubsub-aws --features otel --test otel_interop
#
# As a library (scripts/test.sh does this):
#   . scripts/interop.sh
#   interop_prepare || exit 1   # exports PUBSUB_INTEROP_PYTHON=.../.venv-interop/bin/python
#
# Under CI (the CI variable set to anything but "", "0" or "false") a set that cannot be
# installed is an error; elsewhere it is a warning, PUBSUB_INTEROP_PYTHON is left unset, and the
# interop test skips (unless .venv-interop/ works already).
#
# Files: pip's log is target/interop/install.log.
#
# Knobs: PYTHON (the interpreter that creates .venv-interop/; default python3; 3.9 to 3.11:
# microcosm-pubsub 3.0.0 imports distutils, gone from 3.12).

INTEROP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP_VENV="$INTEROP_ROOT/.venv-interop"
INTEROP_REQUIREMENTS="$INTEROP_ROOT/scripts/requirements-interop.txt"
INTEROP_DIR="$INTEROP_ROOT/target/interop"
INTEROP_INSTALL_LOG="$INTEROP_DIR/install.log"
INTEROP_STAMP="$INTEROP_VENV/.interop-requirements.sha256"

# shellcheck source=scripts/ci.sh
. "$INTEROP_ROOT/scripts/ci.sh"

interop_say() { echo "== interop: $*"; }
interop_warn() { echo "interop: $*" >&2; }

# What the installed set must match: the requirements file and the interpreter's version.
interop_wanted_stamp() {
  "$INTEROP_VENV/bin/python" - "$INTEROP_REQUIREMENTS" <<'PY'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
print(f"{digest} python{sys.version_info[0]}.{sys.version_info[1]}")
PY
}

# Imports what the peers use (what the Rust test checks too).
interop_imports() {
  "$INTEROP_VENV/bin/python" -c '
import microcosm_pubsub.consumer, microcosm_pubsub.producer  # noqa: F401
import opentelemetry.instrumentation.boto3sqs, opentelemetry.instrumentation.botocore  # noqa: F401
import opentelemetry.sdk.trace  # noqa: F401
import sns_extended_client, sqs_extended_client  # noqa: F401'
}

# True when .venv-interop/ runs, holds the pinned set, and its packages import.
interop_venv_ready() {
  [ -x "$INTEROP_VENV/bin/python" ] || return 1
  [ -f "$INTEROP_STAMP" ] || return 1
  [ "$(cat "$INTEROP_STAMP")" = "$(interop_wanted_stamp 2>/dev/null)" ] || return 1
  interop_imports >/dev/null 2>&1
}

# Installs the pinned set into .venv-interop/, or reuses it. Returns non-zero, having said why,
# when it cannot.
interop_install() {
  local python="${PYTHON:-python3}" start lock_fd=""
  if [ ! -f "$INTEROP_REQUIREMENTS" ]; then
    interop_warn "no $INTEROP_REQUIREMENTS"
    return 1
  fi
  mkdir -p "$INTEROP_DIR"
  # Two runs at once must not install into the same .venv-interop/ together.
  if command -v flock >/dev/null 2>&1; then
    exec {lock_fd}>"$INTEROP_DIR/install.lock"
    flock -w 900 "$lock_fd" || true
  fi
  if interop_venv_ready; then
    interop_say "reusing the pinned set in .venv-interop/"
    [ -n "$lock_fd" ] && exec {lock_fd}>&-
    return 0
  fi
  start=$SECONDS
  interop_say "installing scripts/requirements-interop.txt from PyPI into .venv-interop/ (first run only; log: target/interop/install.log)"
  : >"$INTEROP_INSTALL_LOG"
  # A .venv-interop/ whose interpreter no longer runs (moved, or its Python removed) is made anew.
  if [ -e "$INTEROP_VENV" ] && ! "$INTEROP_VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$INTEROP_VENV"
  fi
  if [ ! -x "$INTEROP_VENV/bin/python" ]; then
    if ! command -v "$python" >/dev/null 2>&1; then
      interop_warn "no '$python' to create .venv-interop/ with (set PYTHON to a Python 3.9 to 3.11 interpreter)"
      [ -n "$lock_fd" ] && exec {lock_fd}>&-
      return 1
    fi
    if ! "$python" -m venv "$INTEROP_VENV" >>"$INTEROP_INSTALL_LOG" 2>&1; then
      tail -n 20 "$INTEROP_INSTALL_LOG" | cut -c 1-400 >&2
      interop_warn "'$python -m venv .venv-interop' failed (on Debian: apt-get install python3-venv)"
      [ -n "$lock_fd" ] && exec {lock_fd}>&-
      return 1
    fi
  fi
  rm -f "$INTEROP_STAMP"
  if ! "$INTEROP_VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
    -r "$INTEROP_REQUIREMENTS" >>"$INTEROP_INSTALL_LOG" 2>&1; then
    tail -n 20 "$INTEROP_INSTALL_LOG" | cut -c 1-400 >&2
    interop_warn "pip could not install $INTEROP_REQUIREMENTS (is PyPI reachable?)"
    [ -n "$lock_fd" ] && exec {lock_fd}>&-
    return 1
  fi
  interop_wanted_stamp >"$INTEROP_STAMP"
  if ! interop_venv_ready; then
    interop_imports >>"$INTEROP_INSTALL_LOG" 2>&1 || true
    tail -n 5 "$INTEROP_INSTALL_LOG" | cut -c 1-400 >&2
    # microcosm-pubsub 3.0.0 imports distutils, which Python 3.12 removed.
    interop_warn "the pinned set was installed but does not import (microcosm-pubsub 3.0.0 needs Python 3.11 or older; set PYTHON); see target/interop/install.log"
    rm -f "$INTEROP_STAMP"
    [ -n "$lock_fd" ] && exec {lock_fd}>&-
    return 1
  fi
  interop_say "installed the pinned set in $((SECONDS - start)) s"
  [ -n "$lock_fd" ] && exec {lock_fd}>&-
  return 0
}

# Installs (or reuses) the pinned set and exports PUBSUB_INTEROP_PYTHON, the interpreter the test
# runs its Python peers with. When that fails: under CI, says so and returns 1; elsewhere warns,
# leaves PUBSUB_INTEROP_PYTHON unset and returns 0.
interop_prepare() {
  if interop_install; then
    export PUBSUB_INTEROP_PYTHON="$INTEROP_VENV/bin/python"
    return 0
  fi
  unset PUBSUB_INTEROP_PYTHON
  if is_ci; then
    echo "error: the Python interop peers (scripts/requirements-interop.txt) could not be installed," \
      "and CI is set: the OpenTelemetry interop test must run under CI. See target/interop/install.log." >&2
    return 1
  fi
  echo "warning: the Python interop peers could not be installed; the OpenTelemetry interop test" \
    "will be skipped. See target/interop/install.log." >&2
  return 0
}

interop_usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

interop_main() {
  set -euo pipefail
  case "${1:-}" in
    install)
      interop_install
      ;;
    run)
      shift
      if [ "$#" -eq 0 ]; then
        interop_usage
        exit 2
      fi
      interop_prepare || exit 1
      exec "$@"
      ;;
    *)
      interop_usage
      exit 2
      ;;
  esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  interop_main "$@"
fi
