# common.sh: what every shell test case shares, whatever it tests. The
# suite libraries (tests/mount/lib.sh, tests/cli/snap_lib.sh) source it
# first; it gives strict mode, the case's name, skip/fail/note, tool checks,
# and on_error, which the libraries install as the ERR trap once their own
# EXIT trap is in place: a failing command is named with its line and the
# calls that led to it (mold's on_error habit).
#
# Exit codes: 0 pass, 1 fail, 77 skipped (printed as "skipped: <why>").
set -Eeuo pipefail

TEST_NAME=$(basename "$0" .sh)

skip() {
  echo "skipped: $TEST_NAME: $*"
  exit 77
}

fail() {
  echo "FAIL: $TEST_NAME: $*" >&2
  exit 1
}

note() {
  echo "-- $TEST_NAME: $*"
}

on_error() {
  local code=$? i
  echo "FAIL: $TEST_NAME: line $1: '$BASH_COMMAND' exited with $code" >&2
  for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
    echo "  in ${FUNCNAME[$i]}, called from line ${BASH_LINENO[$i]}" >&2
  done
  exit 1
}

# need_tools TOOL...: skips the case unless every TOOL is on the PATH.
need_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || skip "$tool not found"
  done
}

# need_binary VAR: skips the case unless $VAR names an executable (the
# binaries under test come from CTest's environment).
need_binary() {
  local value=${!1:-}
  [[ -n $value ]] || skip "$1 is not set"
  [[ -x $value ]] || skip "$1=$value is not an executable"
}

# stop_pid PID: SIGTERM, up to 5 s to go, then SIGKILL (for cleanup traps:
# never fails, a process already gone is fine).
stop_pid() {
  local i
  kill -TERM "$1" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -KILL "$1" 2>/dev/null || true
}
