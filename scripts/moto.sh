#!/usr/bin/env bash
# The SNS/SQS emulator for the AWS-transport tests: moto in server mode, on 127.0.0.1 only.
#
# moto comes from PyPI, at the versions pinned in scripts/requirements-moto.txt, installed into
# a virtual environment at .venv/ (repository root, git-ignored). A .venv/ that already has
# exactly that set is reused, so only the first run pays for the install.
#
# As a command:
#   ./scripts/moto.sh install          install (or check) the pinned moto in .venv/
#   ./scripts/moto.sh run CMD [ARG]... start moto, run CMD with AWS_ENDPOINT_URL and friends
#                                      exported, stop moto; exits with CMD's status, e.g.
#                                      ./scripts/moto.sh run cargo test -p pubsub-aws
#
# As a library (scripts/test.sh does this):
#   . scripts/moto.sh
#   trap 'moto_stop $?' EXIT
#   moto_prepare || exit 1   # optional: install early
#   moto_up || exit 1        # start; exports AWS_ENDPOINT_URL=http://127.0.0.1:PORT
#
# Under CI (the CI variable set to anything but "", "0" or "false") an emulator that cannot be
# installed or started is an error; elsewhere it is a warning, AWS_ENDPOINT_URL is left unset,
# and the emulator tests skip (see pubsub-aws/tests/support/mod.rs).
#
# Files: the server's log is target/moto/server.log, pip's is target/moto/install.log.
#
# Knobs: PYTHON (the interpreter that creates .venv/; default python3), MOTO_START_TRIES (how
# many times to poll the server before giving up, every 0.2 s; default 150).

MOTO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOTO_VENV="$MOTO_ROOT/.venv"
MOTO_REQUIREMENTS="$MOTO_ROOT/scripts/requirements-moto.txt"
MOTO_DIR="$MOTO_ROOT/target/moto"
MOTO_LOG="$MOTO_DIR/server.log"
MOTO_INSTALL_LOG="$MOTO_DIR/install.log"
MOTO_STAMP="$MOTO_VENV/.moto-requirements.sha256"
MOTO_PID=""
MOTO_PORT=""
MOTO_INSTALLED=""
MOTO_UNAVAILABLE=""

# shellcheck source=scripts/ci.sh
. "$MOTO_ROOT/scripts/ci.sh"

moto_say() { echo "== moto: $*"; }
moto_warn() { echo "moto: $*" >&2; }

# The moto version pinned in the requirements file.
moto_pinned_version() {
  sed -n 's/^moto\[server\]==\([^[:space:]]*\).*/\1/p' "$MOTO_REQUIREMENTS" | head -n 1
}

# What the installed set must match: the requirements file and the interpreter's version.
moto_wanted_stamp() {
  "$MOTO_VENV/bin/python" - "$MOTO_REQUIREMENTS" <<'PY'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
print(f"{digest} python{sys.version_info[0]}.{sys.version_info[1]}")
PY
}

# True when .venv/ runs and already holds the pinned set.
moto_venv_ready() {
  local pinned
  pinned="$(moto_pinned_version)"
  [ -x "$MOTO_VENV/bin/python" ] || return 1
  [ -f "$MOTO_STAMP" ] || return 1
  [ "$(cat "$MOTO_STAMP")" = "$(moto_wanted_stamp 2>/dev/null)" ] || return 1
  "$MOTO_VENV/bin/python" - "$pinned" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
import flask, flask_cors, moto.server  # noqa: F401  (the server's own imports)
sys.exit(0 if version("moto") == sys.argv[1] else 1)
PY
}

# Installs the pinned moto into .venv/, or reuses it. Returns non-zero, having said why, when it
# cannot.
moto_install() {
  local python="${PYTHON:-python3}" pinned start lock_fd=""
  pinned="$(moto_pinned_version)"
  if [ -z "$pinned" ]; then
    moto_warn "no 'moto[server]==VERSION' line in $MOTO_REQUIREMENTS"
    return 1
  fi
  mkdir -p "$MOTO_DIR"
  # Two runs at once must not install into the same .venv/ together.
  if command -v flock >/dev/null 2>&1; then
    exec {lock_fd}>"$MOTO_DIR/install.lock"
    flock -w 900 "$lock_fd" || true
  fi
  if moto_venv_ready; then
    moto_say "reusing moto $pinned in .venv/"
    [ -n "$lock_fd" ] && exec {lock_fd}>&-
    return 0
  fi
  start=$SECONDS
  moto_say "installing moto $pinned from PyPI into .venv/ (first run only; log: target/moto/install.log)"
  : >"$MOTO_INSTALL_LOG"
  # A .venv/ whose interpreter no longer runs (moved, or its Python removed) is made anew.
  if [ -e "$MOTO_VENV" ] && ! "$MOTO_VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$MOTO_VENV"
  fi
  if [ ! -x "$MOTO_VENV/bin/python" ]; then
    if ! command -v "$python" >/dev/null 2>&1; then
      moto_warn "no '$python' to create .venv/ with (set PYTHON to a Python 3.9+ interpreter)"
      [ -n "$lock_fd" ] && exec {lock_fd}>&-
      return 1
    fi
    if ! "$python" -m venv "$MOTO_VENV" >>"$MOTO_INSTALL_LOG" 2>&1; then
      tail -n 20 "$MOTO_INSTALL_LOG" | cut -c 1-400 >&2
      moto_warn "'$python -m venv .venv' failed (on Debian: apt-get install python3-venv)"
      [ -n "$lock_fd" ] && exec {lock_fd}>&-
      return 1
    fi
  fi
  rm -f "$MOTO_STAMP"
  if ! "$MOTO_VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
    -r "$MOTO_REQUIREMENTS" >>"$MOTO_INSTALL_LOG" 2>&1; then
    tail -n 20 "$MOTO_INSTALL_LOG" | cut -c 1-400 >&2
    moto_warn "pip could not install $MOTO_REQUIREMENTS (is PyPI reachable?)"
    [ -n "$lock_fd" ] && exec {lock_fd}>&-
    return 1
  fi
  moto_wanted_stamp >"$MOTO_STAMP"
  if ! moto_venv_ready; then
    moto_warn "moto $pinned was installed but does not import; see target/moto/install.log"
    rm -f "$MOTO_STAMP"
    [ -n "$lock_fd" ] && exec {lock_fd}>&-
    return 1
  fi
  moto_say "installed moto $pinned in $((SECONDS - start)) s"
  [ -n "$lock_fd" ] && exec {lock_fd}>&-
  return 0
}

# A free TCP port on 127.0.0.1, as the kernel hands one out.
moto_free_port() {
  "$MOTO_VENV/bin/python" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# True when the server at 127.0.0.1:$1 answers its API.
moto_answers() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$1/moto-api/" 2>/dev/null
  else
    "$MOTO_VENV/bin/python" -c '
import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/moto-api/" % sys.argv[1], timeout=2).read()' \
      "$1" >/dev/null 2>&1
  fi
}

moto_print_log_tail() {
  if [ -s "$MOTO_LOG" ]; then
    echo "---- last lines of target/moto/server.log ----" >&2
    tail -n 30 "$MOTO_LOG" | sed 's/\x1b\[[0-9;]*m//g' | cut -c 1-400 >&2
    echo "----" >&2
  fi
}

# Starts moto on 127.0.0.1 at a free port and waits until it answers; exports
# AWS_ENDPOINT_URL. Returns non-zero, having said why, when it cannot.
moto_start() {
  local tries="${MOTO_START_TRIES:-150}" attempt i start=$SECONDS
  mkdir -p "$MOTO_DIR"
  # A port picked free can be taken before moto binds it: try a new one a few times.
  for attempt in 1 2 3; do
    MOTO_PORT="$(moto_free_port)" || {
      moto_warn "could not find a free port on 127.0.0.1"
      return 1
    }
    # No colours in the log; no stdin (CI has none).
    NO_COLOR=1 TERM=dumb "$MOTO_VENV/bin/python" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" \
      </dev/null >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    for ((i = 0; i < tries; i++)); do
      if moto_answers "$MOTO_PORT"; then
        export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
        moto_say "moto $(moto_pinned_version) listening on $AWS_ENDPOINT_URL (pid $MOTO_PID, up in $((SECONDS - start)) s; log: target/moto/server.log)"
        return 0
      fi
      kill -0 "$MOTO_PID" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$MOTO_PID" 2>/dev/null; then
      moto_warn "moto did not answer on 127.0.0.1:$MOTO_PORT after $tries tries"
      moto_stop 0
      moto_print_log_tail
      return 1
    fi
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=""
    moto_warn "moto exited at start (attempt $attempt, port $MOTO_PORT)"
    moto_print_log_tail
  done
  return 1
}

# Stops the server this shell started, if any. Silent on success, so that the last lines of a
# test run stay the test runner's. Given a non-zero exit status (from an EXIT trap), prints the
# tail of the server's log too.
moto_stop() {
  local status="${1:-0}" i
  if [ -n "$MOTO_PID" ]; then
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      moto_warn "the moto server (pid $MOTO_PID) had exited before the end of the run"
      status=1
    else
      kill -TERM "$MOTO_PID" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        kill -0 "$MOTO_PID" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$MOTO_PID" 2>/dev/null || true
    fi
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=""
    if [ "$status" != 0 ]; then
      moto_print_log_tail
    fi
  fi
  return 0
}

# What to do when the emulator cannot be had: under CI, say so and return 1; elsewhere warn,
# leave AWS_ENDPOINT_URL unset (the emulator tests then skip) and return 0.
moto_unavailable() {
  MOTO_UNAVAILABLE=1
  unset AWS_ENDPOINT_URL
  if is_ci; then
    echo "error: the SNS/SQS emulator (moto) could not be installed or started, and CI is set:" \
      "the AWS-transport tests must run under CI. See target/moto/*.log." >&2
    return 1
  fi
  echo "warning: the SNS/SQS emulator (moto) could not be installed or started; the AWS-transport" \
    "tests that need it will be skipped. See target/moto/*.log." >&2
  return 0
}

# Installs moto (or finds it installed), early, so that a run that cannot have it stops before
# the long steps under CI. Same failure rule as moto_up.
moto_prepare() {
  if moto_install; then
    MOTO_INSTALLED=1
    return 0
  fi
  moto_unavailable
}

# Installs (unless moto_prepare did) and starts moto, exporting AWS_ENDPOINT_URL. When that
# fails: under CI, says so and returns 1; elsewhere warns, leaves AWS_ENDPOINT_URL unset (the
# emulator tests then skip) and returns 0.
moto_up() {
  # Only the emulator started here may be the tests' endpoint: never an inherited one, and no
  # per-service override that would send one client elsewhere.
  unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SNS AWS_ENDPOINT_URL_SQS
  if [ -n "${MOTO_UNAVAILABLE:-}" ]; then
    echo "warning: no SNS/SQS emulator (see the warning above): the AWS-transport tests skip" >&2
    return 0
  fi
  if { [ -n "${MOTO_INSTALLED:-}" ] || moto_install; } && moto_start; then
    return 0
  fi
  moto_unavailable
}

moto_usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

moto_main() {
  set -euo pipefail
  case "${1:-}" in
    install)
      moto_install
      ;;
    run)
      shift
      if [ "$#" -eq 0 ]; then
        moto_usage
        exit 2
      fi
      export AWS_EC2_METADATA_DISABLED=true
      export AWS_REGION="${AWS_REGION:-us-east-1}"
      export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
      export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
      trap 'moto_stop $?' EXIT
      trap 'exit 130' INT
      trap 'exit 143' TERM
      moto_up || exit 1
      "$@"
      ;;
    *)
      moto_usage
      exit 2
      ;;
  esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  moto_main "$@"
fi
