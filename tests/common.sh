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

# skip_when_sanitized WHY: skips the case when $REDISFS_SNAP_BIN is built
# with a sanitizer (ASan, TSan), whose allocator is not glibc's: for cases
# that measure memory or fail allocations.
skip_when_sanitized() {
  if ldd "$REDISFS_SNAP_BIN" 2>/dev/null | grep -Eq 'libasan|libtsan'; then
    skip "$1"
  fi
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

# stop_jobs: for cleanup traps, the case's background jobs (writers, a
# tool left waiting) and the commands its subshell jobs run, SIGTERM, but
# not the mount daemons (unmounted after): a tool left waiting on a server
# the trap stops would wait out its outage budget. Never fails.
stop_jobs() {
  local pid mnt daemon
  for pid in $(jobs -pr); do
    daemon=
    for mnt in "${!MOUNT_PIDS[@]}"; do
      [[ ${MOUNT_PIDS[$mnt]} == "$pid" ]] && daemon=1
    done
    [[ -n $daemon ]] && continue
    # (|| true: a job whose children are gone is no failure; an ERR trap
    # left set would end the caller's cleanup here)
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done
  return 0
}

# ------------------------------------------------------------------ mounts
# Shared by the suite libraries (tests/mount/lib.sh, tests/prod/lib.sh,
# tests/prod/topology.sh): one way to start a foreground daemon, wait for
# a process and unmount.

declare -A MOUNT_PIDS=()  # mountpoint -> pid of its redisfs daemon
declare -A MOUNT_LOGS=()  # mountpoint -> the daemon's output
MOUNT_SEQ=0

wait_gone() {  # PID SECONDS: 0 once the process is gone, 1 if it outlives SECONDS
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  return 1
}

is_mounted() {  # never blocks on a hung daemon, unlike mountpoint(1)
  awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

# start_daemon SECONDS MOUNTPOINT REDISFS-ARGS...: `$REDISFS_BIN -f ARGS
# MOUNTPOINT` in the background (output in ${MOUNT_LOGS[MOUNTPOINT]}, pid
# in ${MOUNT_PIDS[MOUNTPOINT]} and DAEMON_PID; a suite library that
# defines record_pid hears of it); returns once mounted, fails the case
# with the daemon's last words if it exits first or takes SECONDS.
start_daemon() {
  local secs=$1 mnt=$2 i rc pid log
  shift 2
  mkdir -p "$mnt"
  log=$T/daemon.$((++MOUNT_SEQ)).log
  "$REDISFS_BIN" -f "$@" "$mnt" </dev/null >"$log" 2>&1 &
  pid=$!
  ! declare -F record_pid >/dev/null || record_pid "$pid"
  MOUNT_PIDS[$mnt]=$pid
  MOUNT_LOGS[$mnt]=$log
  # shellcheck disable=SC2034  # for a case to signal
  DAEMON_PID=$pid
  for ((i = 0; i < secs * 20; i++)); do
    is_mounted "$mnt" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      rc=0
      wait "$pid" || rc=$?
      unset "MOUNT_PIDS[$mnt]"
      fail "redisfs exited with $rc before mounting $mnt: $(tail -5 "$log")"
    fi
    sleep 0.05
  done
  fail "$mnt is not mounted after $secs s: $(tail -5 "$log")"
}

# unmount_at MOUNTPOINT [SECONDS]: fusermount3 -u (-uz if it stays busy),
# then waits up to SECONDS (default 30) for the daemon, SIGKILL after.
# LAST_DAEMON_RC: its exit status (empty when it was not our child).
unmount_at() {
  local mnt=$1 secs=${2:-30} pid=${MOUNT_PIDS[$1]:-} i
  if is_mounted "$mnt"; then
    for ((i = 0; i < 20; i++)); do
      fusermount3 -u "$mnt" 2>/dev/null && break
      sleep 0.1
    done
    if is_mounted "$mnt"; then
      echo "warning: $mnt stays busy; lazy unmount" >&2
      fusermount3 -uz "$mnt" || true
    fi
  fi
  LAST_DAEMON_RC=
  [[ -n $pid ]] || return 0
  if ! wait_gone "$pid" "$secs"; then
    echo "warning: redisfs $pid still running $secs s after unmounting $mnt; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || true
  fi
  if wait "$pid" 2>/dev/null; then
    LAST_DAEMON_RC=0
  else
    LAST_DAEMON_RC=$?
    # 127: not our child (a daemonized mount); its status is unknown
    [[ $LAST_DAEMON_RC != 127 ]] || LAST_DAEMON_RC=
  fi
  unset "MOUNT_PIDS[$mnt]"
}

# fs_unmount MOUNTPOINT [SECONDS]: unmount_at, and the daemon must exit with 0.
fs_unmount() {
  local mnt=$1
  unmount_at "$@"
  [[ -z $LAST_DAEMON_RC || $LAST_DAEMON_RC == 0 ]] ||
    fail "redisfs exited with $LAST_DAEMON_RC after unmounting $mnt: $(tail -5 "${MOUNT_LOGS[$mnt]}")"
  ! is_mounted "$mnt" || fail "$mnt is still mounted"
}

# unmount_everything: every mount we started, and anything else mounted
# under $T (a daemon we did not track). For the suites' EXIT traps.
unmount_everything() {
  local mnt
  for mnt in "${!MOUNT_PIDS[@]}"; do
    unmount_at "$mnt"
  done
  while read -r _ mnt _; do
    if [[ $mnt == "$T"/* ]]; then
      fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
    fi
  done </proc/self/mounts
}

# show_daemon_logs RC: after a failed case (RC neither 0 nor 77), the last
# lines of every daemon's output, to stderr.
show_daemon_logs() {
  local mnt
  ((${1} != 0 && ${1} != 77)) || return 0
  for mnt in "${!MOUNT_LOGS[@]}"; do
    if [[ -s ${MOUNT_LOGS[$mnt]} ]]; then
      echo "--- redisfs output ($mnt, ${MOUNT_LOGS[$mnt]##*/}):" >&2
      tail -20 "${MOUNT_LOGS[$mnt]}" >&2
    fi
  done
}

# wait_snapshot PREFIX KIND: waits (10 s at most) until a KIND's (copy or
# dump) snapshot of PREFIX is the live one (its COW record's staging is
# <PREFIX>~KIND~...), and prints that staging prefix; fails the case if
# none came. (rcli: the suite library's, on its server.)
wait_snapshot() {
  local staging i
  for ((i = 0; i < 500; i++)); do
    staging=$(rcli hget "$1:COW" staging)
    if [[ $staging == "$1~$2~"* ]]; then
      echo "$staging"
      return 0
    fi
    sleep 0.02
  done
  fail "no $2's snapshot of $1 began (COW record: $(rcli hgetall "$1:COW" | tr '\n' ' '))"
}

# start_appender LOG STOPFILE: appends "0\n", "1\n", ... to LOG (made if
# need be), one write(2) each, until STOPFILE exists; sets appender_pid and
# returns once LOG holds its first line (fails after 10 s). The point-in-time
# tests read a snapshot of LOG back as 0..n-1, each once.
start_appender() {
  python3 - "$1" "$2" <<'PY' &
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
i = 0
while not os.path.exists(sys.argv[2]):
    os.write(fd, b"%d\n" % i)
    i += 1
os.close(fd)
PY
  appender_pid=$!
  local i
  for ((i = 0; i < 200; i++)); do
    [[ -s $1 ]] && return 0
    sleep 0.05
  done
  fail "the appender wrote nothing to $1 in 10 s"
}

# busy_scripts_start SOCK: another client's scripts keep the server at SOCK
# busy, 30 ms each, 20 ms apart, its other clients answered BUSY after 5 ms
# (busy-reply-threshold), until busy_scripts_stop (which both suite
# libraries' EXIT traps call); it returns once the server answers again.
BUSY_PID=
BUSY_SOCK=
busy_scripts_start() {
  local sock=$1
  redis-cli -s "$sock" config set busy-reply-threshold 5 >/dev/null
  rm -f "$T/busy.stop"
  (
    while [[ ! -e $T/busy.stop && -S $sock ]]; do
      redis-cli -s "$sock" eval "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2]
        repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - s > 30000 return 1" 0 >/dev/null 2>&1 || true
      sleep 0.02
    done
  ) &
  BUSY_PID=$!
  BUSY_SOCK=$sock
}
busy_scripts_stop() {
  [[ -n $BUSY_PID ]] || return 0
  touch "$T/busy.stop"
  wait "$BUSY_PID" 2>/dev/null || true
  BUSY_PID=
  local i
  for ((i = 0; i < 500; i++)); do
    [[ -S $BUSY_SOCK && $(redis-cli -s "$BUSY_SOCK" ping 2>/dev/null) != PONG ]] || return 0
    sleep 0.01
  done
}

# Sanitizer reports. With binaries built with -fsanitize=address,undefined
# (a campaign's build-asan; CI's build has none) or -fsanitize=thread, a
# report is easy to miss: a case that expects a failure accepts ASan's exit
# status 1, and a case that checks a message reads past it. So a case
# fails when any program it ran reported: at its end (remove_tmp), or
# sooner where it calls sanitizer_check.
# - route_sanitizer_reports (once $T exists) sends the ASan, LSan and TSan
#   reports of every program the case runs, the daemons' too, to files
#   under $T/sanitizer (log_path, which adds the pid; the directory is
#   writable by the other users some cases run as). Options already in
#   the environment are kept.
# - GCC's UBSan beside ASan ignores log_path (its runtime is a library of
#   its own, and its report path is never set): its reports stay on
#   stderr, which the cases keep in files under $T, so the last check
#   reads every text file there for one.
route_sanitizer_reports() {
  mkdir -p "$T/sanitizer"
  chmod 1777 "$T/sanitizer"
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer/report"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer/report"
  export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$T/sanitizer/report"
}

SANITIZER_REPORT_RE=': runtime error: |^==[0-9]+==ERROR: [A-Za-z]+Sanitizer|^WARNING: ThreadSanitizer'

# sanitizer_reports [FILE|DIR...]: the files holding a report, one path a
# line: those under $T/sanitizer, and those of FILE or DIR (every text
# file under it) that hold one.
sanitizer_reports() {
  local f
  for f in "$T"/sanitizer/report.*; do
    [[ -s $f ]] && echo "$f"
  done
  if (($# > 0)); then
    grep -rlIE --exclude-dir=sanitizer "$SANITIZER_REPORT_RE" "$@" 2>/dev/null || true
  fi
}

# sanitizer_check WHAT [FILE|DIR...]: fails the case, naming WHAT, when a
# program it ran wrote a report (sanitizer_reports); $T stays, with them.
sanitizer_check() {
  local what=$1 f
  shift
  f=$(sanitizer_reports "$@" | head -1)
  [[ -z $f ]] && return 0
  KEEP_TMP=1
  fail "$what: a sanitizer report in $f ($(sanitizer_reports "$@" | wc -l) files in all): $(grep -m3 -E "$SANITIZER_REPORT_RE|SUMMARY" "$f" | tr '\n' ' ')"
}

# remove_tmp: removes $T, unless something is still mounted under it (then
# it stays, with a warning) or KEEP_TMP is set. A sanitizer report under it
# fails the case (sanitizer_check), and $T stays.
remove_tmp() {
  if awk -v t="$T/" 'index($2, t) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    echo "warning: something is still mounted under $T; not removing it" >&2
    return 0
  fi
  [[ -d $T ]] && sanitizer_check "at the end" "$T"
  if [[ -n ${KEEP_TMP:-} ]]; then
    echo "kept $T" >&2
  else
    rm -rf "$T"
  fi
}

# The ACL of a restricted redisfs user, in one place: the one README.md
# and redisfs(1) recommend (prod/acl.sh checks them word for word): keys
# under its prefixes only (P:* and the temporary P~* of dumps, restores
# and copies), no channels, the data commands,
# scripts by EVAL/EVALSHA/SCRIPT LOAD, and what the client asks the server
# about itself and its topology. Changes from the issue's first draft:
#   +time, +@transaction    the scripts' clock (prelude.lua; TIME is only
#                           @fast) and the MULTI/EXEC the daemon and tools send;
#   -@dangerous -@admin     +@write/+@keyspace carry FLUSHALL, FLUSHDB and
#   -function               SWAPDB, FUNCTION FLUSH/DELETE/LOAD, +@connection
#                           CLIENT KILL/PAUSE/NO-EVICT: a "restricted" user
#                           could wipe or stall every tenant. INFO, CONFIG
#                           GET, ROLE are granted again by name after it;
#   scripting by name       +@scripting also gives SCRIPT FLUSH/KILL and
#                           FUNCTION FLUSH/DELETE/LOAD (server-wide).
FSUSER_ACL_COMMANDS=(resetchannels -@all +@read +@write +@keyspace +@connection +@transaction
  -@dangerous -@admin -function
  +eval +evalsha +eval_ro +evalsha_ro '+script|load' '+script|exists'
  +time +info '+config|get' '+client|setname' '+client|id' +role +wait
  '+cluster|slots' '+cluster|info' '+cluster|shards' +readonly +asking)
