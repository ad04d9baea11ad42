# lib.sh: what every real-mount case shares. A case sources it first:
#
#   . "$(dirname "$0")/lib.sh"
#
# and gets: a temp dir $T (mode 0755, so other uids can reach the mount),
# a private redis-server on $SOCK (no TCP port, no persistence unless the
# case sets REDIS_ARGS before sourcing), a random $PREFIX, and helpers to
# mount and unmount. The EXIT trap unmounts everything a case mounted,
# waits for (or, as a last resort, kills) the daemons it started, stops the
# server and removes $T, whether the case passed or not; a failing command
# is named with its line by the ERR trap.
#
# Exit codes: 0 pass, 1 fail, 77 skipped (tests/common.sh). Sourced on its
# own (bash tests/mount/lib.sh, with REDISFS_BIN set), it checks itself: a
# mount comes up, works, and goes away without leaving a daemon.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/common.sh
. "$HERE/../common.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 redis-server redis-cli python3 mountpoint
need_binary REDISFS_BIN

# the environment must not pick another server, filesystem or password
unset REDISFS_URL REDISFS_PREFIX REDISFS_PASSWORD

T=$(mktemp -d /tmp/redisfs-mt.XXXXXX)
route_sanitizer_reports
chmod 0755 "$T"
SOCK=$T/redis.sock
MNT=$T/mnt
PREFIX=T$RANDOM$RANDOM
mkdir -p "$MNT"

REDIS_PID=
DAEMON_PID=                # daemon of the last mount
LAST_DAEMON_RC=            # exit status of the last daemon unmounted (when known)
EXTRA_SOCKS=()             # other servers to stop at exit (SHUTDOWN NOSAVE)

# ------------------------------------------------------------------ redis

# need_snap [OPTION...]: skips the case unless REDISFS_SNAP_BIN is set, and
# defines snap ARGS...: redisfs-snap on the test's server, with OPTIONs
# (-q: quiet) before ARGS.
# shellcheck disable=SC2120 # (OPTIONs are optional)
need_snap() {
  need_binary REDISFS_SNAP_BIN
  SNAP_OPTIONS=("$@")
}
snap() {
  "$REDISFS_SNAP_BIN" "${SNAP_OPTIONS[@]}" --redis "unix://$SOCK" "$@"
}

rcli() {
  redis-cli -s "$SOCK" "$@"
}

# command_calls NAME: the server's calls of command NAME so far (INFO
# commandstats; 0 before the first).
command_calls() {
  local n
  n=$(rcli info commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p")
  echo "${n:-0}"
}

# error_count NAME: the error replies NAME (NOSCRIPT, BUSY...) the server
# has sent so far (INFO errorstats; 0 before the first).
error_count() {
  local n
  n=$(rcli info errorstats | tr -d '\r' | sed -n "s/^errorstat_$1:count=\([0-9]*\).*/\1/p")
  echo "${n:-0}"
}

# Keys of this filesystem, one a line (binary-unsafe: for counting and
# matching only).
fs_keys() {
  rcli --scan --pattern "$PREFIX:${1:-*}"
}

_wait_ping() {  # socket, seconds
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    if [[ -S $1 ]] && [[ $(redis-cli -s "$1" ping 2>/dev/null) == PONG ]]; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# Starts the private server on $SOCK; extra arguments override the
# defaults (e.g. --appendonly yes, --maxmemory 20mb).
start_redis() {
  rm -f "$T/redis.pid"
  redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --save '' --appendonly no \
    --daemonize yes --pidfile "$T/redis.pid" --dir "$T" --logfile "$T/redis.log" "$@" ${REDIS_ARGS[@]+"${REDIS_ARGS[@]}"} \
    || fail "redis-server did not start"
  _wait_ping "$SOCK" 10 || fail "redis-server does not answer on $SOCK: $(tail -5 "$T/redis.log" 2>/dev/null)"
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $T/redis.pid ]] && break
    sleep 0.05
  done
  REDIS_PID=$(cat "$T/redis.pid")
}

# Stops the private server (SIGTERM: it writes its AOF if it has one).
stop_redis() {
  [[ -n $REDIS_PID ]] || return 0
  kill -TERM "$REDIS_PID" 2>/dev/null || true
  if ! wait_gone "$REDIS_PID" 10; then
    echo "warning: redis-server $REDIS_PID ignored SIGTERM; killing it" >&2
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait_gone "$REDIS_PID" 5 || true
  fi
  REDIS_PID=
}

# ------------------------------------------------------------------ mounts

# mount_at MOUNTPOINT [redisfs args...]: runs `redisfs -f` in the
# background on our server and $PREFIX, and returns once the mount is up.
mount_at() {
  local mnt=$1
  shift
  start_daemon 20 "$mnt" --redis "unix://$SOCK" --prefix "$PREFIX" "$@"
}

mount_fs() {
  mount_at "$MNT" "$@"
}

_find_daemon() {  # mountpoint: pid of the redisfs whose last argument it is
  local p args
  for p in /proc/[0-9]*; do
    [[ -r $p/cmdline ]] || continue
    mapfile -d '' args <"$p/cmdline" 2>/dev/null || continue
    ((${#args[@]} > 1)) || continue
    if [[ ${args[0]##*/} == redisfs && ${args[-1]} == "$1" ]]; then
      echo "${p#/proc/}"
      return 0
    fi
  done
  return 1
}

# mount_daemon_at MOUNTPOINT [args...]: without -f: redisfs must return 0
# with the mount ready, its daemon left running.
mount_daemon_at() {
  local mnt=$1
  shift
  mkdir -p "$mnt"
  local log=$T/daemon.$((++MOUNT_SEQ)).log rc=0
  "$REDISFS_BIN" "$@" "$mnt" >"$log" 2>&1 || rc=$?
  MOUNT_LOGS[$mnt]=$log
  local pid
  pid=$(_find_daemon "$mnt") || pid=
  if [[ -n $pid ]]; then
    MOUNT_PIDS[$mnt]=$pid
    DAEMON_PID=$pid
  fi
  ((rc == 0)) || fail "redisfs exited with $rc: $(tail -5 "$log")"
  is_mounted "$mnt" || fail "redisfs returned but $mnt is not mounted"
  [[ -n $pid ]] || fail "no redisfs daemon found for $mnt"
}


# op_stats PID LOG OP: SIGUSR1 to the daemon, then what the counters it
# logged (fs/op_stats.hpp) say of request type OP since it mounted: its
# request count and the Redis round trips per request ("0 0" when it lists
# none).
op_stats() {
  local pid=$1 log=$2 op=$3 i before
  before=$(grep -c 'stats: caches: ' "$log" || true)
  kill -USR1 "$pid"
  for ((i = 0; i < 100; i++)); do
    (($(grep -c 'stats: caches: ' "$log" || true) > before)) && break # (the last line)
    sleep 0.05
  done
  # Not needed to read the report (complete with its last line), but kept:
  # the tests were written with this pause between their steps, and one
  # leaned on it without saying so (writeback_unlink: a directory change
  # still waiting kept an rmdir from waiting, 2 runs in 5 on a loaded
  # machine without the pause; it now sends that change itself).
  sleep 0.1
  awk -v op="$op" '/stats: .* requests in /{n = 0; rt = 0}
    $0 ~ "stats: " op " " {sub(".*stats: " op " +", ""); n = $1; rt = $NF == "trips" ? $(NF - 2) : 0}
    END {print n + 0, rt + 0}' "$log"
}

# trips OP [MOUNTPOINT]: op_stats of the mount's daemon ($MNT by default) as
# the requests of type OP so far and the Redis round trips they made in all.
trips() {
  local n rt mnt=${2:-$MNT}
  read -r n rt < <(op_stats "${MOUNT_PIDS[$mnt]}" "${MOUNT_LOGS[$mnt]}" "$1")
  awk -v n="$n" -v rt="$rt" 'BEGIN {printf "%d %.0f\n", n, n * rt}'
}

# unmount_fs [MOUNTPOINT]: fs_unmount (common.sh) of $MNT by default.
unmount_fs() {
  fs_unmount "${1:-$MNT}" 20
}

# kill_daemon [MOUNTPOINT]: SIGKILL the daemon, then detach the dead mount.
kill_daemon() {
  local mnt=${1:-$MNT} pid=${MOUNT_PIDS[${1:-$MNT}]}
  kill -KILL "$pid"
  wait_gone "$pid" 10 || fail "redisfs $pid survives SIGKILL"
  wait "$pid" 2>/dev/null || true
  unset "MOUNT_PIDS[$mnt]"
  fusermount3 -uz "$mnt" 2>/dev/null || true
  ! is_mounted "$mnt" || fail "$mnt is still mounted after the daemon was killed"
}

# expire_sessions: expire every MOUNT:* key at once, as 30 s without a
# heartbeat would (call it with nothing mounted).
expire_sessions() {
  local k i
  for k in $(fs_keys 'MOUNT:*'); do
    rcli pexpire "$k" 1 >/dev/null
  done
  for ((i = 0; i < 100; i++)); do
    [[ -z $(fs_keys 'MOUNT:*') ]] && return 0
    sleep 0.05
  done
  fail "session keys do not expire: $(fs_keys 'MOUNT:*')"
}

# install_to DIR: `cmake --install` of the build under test into DIR (as
# --prefix): DIR/bin/redisfs, the man pages, the systemd unit. Skips the
# case when CTest did not say where the build is.
install_to() {
  [[ -n ${REDISFS_BUILD_DIR:-} && -f $REDISFS_BUILD_DIR/cmake_install.cmake ]] || skip "REDISFS_BUILD_DIR is not a build"
  need_tools cmake
  cmake --install "$REDISFS_BUILD_DIR" --prefix "$1" >"$T/install.log" || fail "cmake --install: $(tail -3 "$T/install.log")"
  [[ -x $1/bin/redisfs && -x $1/bin/redisfs-snap ]] || fail "cmake --install left no binaries in $1/bin"
}

# ------------------------------------------------------------------ checks

check_consistency() {
  python3 "$HERE/check_consistency.py" --socket "$SOCK" --prefix "$PREFIX" "$@"
}

# expect_fail TEXT COMMAND...: the command must fail and say TEXT.
expect_fail() {
  local text=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  ((rc != 0)) || fail "'$*' succeeded, expected a failure saying '$text'"
  [[ ${out,,} == *"${text,,}"* ]] || fail "'$*' failed ($rc) without saying '$text': $out"
}

# expect_said OUT WANT...: OUT (what a command said) holds every WANT.
expect_said() {
  local out=$1 want
  shift
  for want in "$@"; do
    [[ $out == *"$want"* ]] || fail "does not say '$want': $out"
  done
}

# rename_writer N: until $T/stop exists, moves $MNT/a/f<k> to $MNT/b/f<k>
# and back, k = 0..N-1 in turn, appending one 64-byte record ("%08d" and
# padding) to $MNT/log after each move: at any instant every file is in a/
# or b/ exactly once, and the log holds only whole, consecutive records,
# which a snapshot of one instant shows (snap_mount.sh, snap_diff.sh).
rename_writer() {
  local n=$1 i=0 k
  while [[ ! -e $T/stop ]]; do
    k=$((i % n))
    if [[ -e $MNT/a/f$k ]]; then
      mv "$MNT/a/f$k" "$MNT/b/f$k"
    else
      mv "$MNT/b/f$k" "$MNT/a/f$k"
    fi
    printf '%08d %54s\n' "$i" payload >>"$MNT/log"
    i=$((i + 1))
  done
}

# hold_open TAG FILE [DATA...]: a process of its own (its pid in HOLDER)
# creates FILE and keeps the only descriptor of it open, so nothing closes
# it behind the case's back: every close(2) is a FLUSH that sends what the
# mount holds of the file, a duplicate's too, and bash's exec 4>file,
# printf >&4 and cat >&4 close duplicates of theirs. It writes the bytes of
# each DATA file in turn: the first at once, the k-th once $TAG.go<k>
# exists; it touches $TAG.0 once FILE is open and $TAG.<k> after each
# (hold_wait waits for one), and closes FILE once $TAG.done exists
# (hold_end), or after 60 s. hold_open returns once the first bytes are
# written.
HOLDER=
hold_open() {
  local tag=$1 file=$2
  shift 2
  python3 -c '
import os, sys, time
tag, path, data = sys.argv[1], sys.argv[2], sys.argv[3:]
def wait(p):
    for _ in range(1200):
        if os.path.exists(p):
            return
        time.sleep(0.05)
fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
open(f"{tag}.0", "w").close()
for k, d in enumerate(data, 1):
    if k > 1:
        wait(f"{tag}.go{k}")
    os.write(fd, open(d, "rb").read())
    open(f"{tag}.{k}", "w").close()
wait(tag + ".done")
os.close(fd)
' "$tag" "$file" "$@" 2>"$tag.err" &
  HOLDER=$!
  hold_wait "$tag.$(($# > 0 ? 1 : 0))"  # (its first bytes written)
}

# hold_wait PATH: waits (up to 10 s) until the holder touched PATH.
hold_wait() {
  local i
  for ((i = 0; i < 200; i++)); do
    [[ -e $1 ]] && return 0
    sleep 0.05
  done
  fail "the holder did not reach $1: $(cat "${1%.*}.err" 2>/dev/null)"
}

# hold_end TAG: the holder closes its file and must have succeeded.
hold_end() {
  touch "$1.done"
  wait "$HOLDER" || fail "the holder of $1 failed: $(cat "$1.err" 2>/dev/null)"
  HOLDER=
}

# ------------------------------------------------------------------ cleanup

_cleanup() {
  local rc=$?
  set +eE
  trap - ERR
  cd /
  # a case may die holding files open on a mount: that would keep it busy
  exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
  [[ -z $HOLDER ]] || kill "$HOLDER" 2>/dev/null
  stop_jobs
  busy_scripts_stop
  local mnt pid s
  unmount_everything
  for s in "${EXTRA_SOCKS[@]+"${EXTRA_SOCKS[@]}"}"; do
    if [[ -S $s ]] && [[ $(redis-cli -s "$s" ping 2>/dev/null) == PONG ]]; then
      redis-cli -s "$s" shutdown nosave >/dev/null 2>&1
    fi
  done
  show_daemon_logs "$rc"
  stop_redis
  remove_tmp
  exit "$rc"
}

trap _cleanup EXIT
trap 'on_error $LINENO' ERR
cd "$T"

if [[ ${REDIS_AUTOSTART:-1} == 1 ]]; then
  start_redis
fi

# ------------------------------------------------------------------ self-test
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  mount_fs
  echo hello >"$MNT/x"
  [[ $(cat "$MNT/x") == hello ]] || fail "read back"
  pid=$DAEMON_PID
  unmount_fs
  ! kill -0 "$pid" 2>/dev/null || fail "daemon $pid still running"
  check_consistency -q --no-orphans
  echo "lib.sh: ok"
fi
