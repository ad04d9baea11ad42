# shellcheck shell=bash
# Shared bash helpers of bench/run: a private redis-server, a redisfs mount,
# a passthrough_ll mount, and the cleanup registry.
#
# Everything started during a run is registered under $BENCH_TMP/cleanup
# (benchlib.py writes the same files for the servers and mounts a workload
# starts itself):
#   mount-<id>   line 1: mountpoint, line 2: daemon pid
#   server-<id>  line 1: pid
# bench_cleanup (the EXIT trap of bench/run) unmounts every registered mount,
# then stops every registered process, so no daemon or mount outlives a run,
# however it ends. Servers and daemons run in their own session (setsid, which
# keeps the pid as we are not a process group leader), so a Ctrl-C reaches
# only bench/run and the workload, and the cleanup stops them in order:
# mounts first, then the servers they use.

bench_log() {
  printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

bench_die() {
  printf 'bench/run: error: %s\n' "$*" >&2
  exit 1
}

_bench_wait_gone() {  # pid, tenths of a second
  local pid=$1 n=$2 i
  for ((i = 0; i < n; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

_bench_is_mounted() {
  awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

bench_unmount() {  # mountpoint [pid]
  local mnt=$1 pid=${2:-}
  if _bench_is_mounted "$mnt"; then
    fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null ||
      umount -l "$mnt" 2>/dev/null
  fi
  if [ -n "$pid" ] && ! _bench_wait_gone "$pid" 100; then
    bench_log "FUSE daemon (pid $pid) did not exit after unmount: killing it"
    kill "$pid" 2>/dev/null
    _bench_wait_gone "$pid" 50 || kill -9 "$pid" 2>/dev/null
  fi
}

bench_stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null
  _bench_wait_gone "$pid" 100 || kill -9 "$pid" 2>/dev/null
}

bench_cleanup() {
  local f
  [ -n "${BENCH_TMP:-}" ] && [ -d "$BENCH_TMP/cleanup" ] || return 0
  for f in "$BENCH_TMP"/cleanup/mount-*; do
    [ -f "$f" ] || continue
    bench_unmount "$(sed -n 1p "$f")" "$(sed -n 2p "$f")"
    rm -f "$f"
  done
  for f in "$BENCH_TMP"/cleanup/server-*; do
    [ -f "$f" ] || continue
    bench_stop_pid "$(sed -n 1p "$f")"
    rm -f "$f"
  done
  if [ -n "${BENCH_TMPFS_ROOT:-}" ] && _bench_is_mounted "$BENCH_TMPFS_ROOT"; then
    umount "$BENCH_TMPFS_ROOT" 2>/dev/null || umount -l "$BENCH_TMPFS_ROOT"
  fi
  rm -rf --one-file-system "$BENCH_TMP"
}

# Starts a redis-server without persistence in directory $1 (socket
# $1/redis.sock) and registers it as server-$2.
bench_start_redis() {
  local dir=$1 id=$2 pid
  mkdir -p "$dir"
  setsid redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --dir "$dir" \
    --save '' --appendonly no --daemonize no --logfile "$dir/redis.log" </dev/null &
  pid=$!
  echo "$pid" >"$BENCH_TMP/cleanup/server-$id"
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || break
    if [ -S "$dir/redis.sock" ] && [ "$(redis-cli -s "$dir/redis.sock" ping 2>/dev/null)" = PONG ]; then
      return 0
    fi
    sleep 0.05
  done
  tail -n 5 "$dir/redis.log" >&2 2>/dev/null
  bench_die "redis-server did not start in $dir"
}

# Runs FUSE daemon argv ($4...) in the foreground, in the background of this
# shell (log in $3), registers it as mount-$1-<pid> and waits until it has
# mounted $2.
_bench_mount_daemon() {
  local id=$1 mnt=$2 log=$3 pid reg
  shift 3
  mkdir -p "$mnt"
  setsid "$@" </dev/null >>"$log" 2>&1 &
  pid=$!
  reg="$BENCH_TMP/cleanup/mount-$id-$pid"
  printf '%s\n%s\n' "$mnt" "$pid" >"$reg"
  for _ in $(seq 200); do
    if _bench_is_mounted "$mnt"; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  tail -n 5 "$log" >&2
  bench_die "$id did not mount $mnt (log: $log)"
}

# Mounts prefix $2 of server URL $1 on $3 (redisfs -f, log in $4).
bench_mount() {
  _bench_mount_daemon "$2" "$3" "$4" "$REDISFS_BIN" -f --redis "$1" --prefix "$2" "$3"
}

# Mounts directory $2 on $3 with libfuse's example passthrough_ll (binary $1;
# -f, default options, log in $4).
bench_mount_passthrough() {
  _bench_mount_daemon passthrough_ll "$3" "$4" "$1" -f -o "source=$2" "$3"
}

# Builds (when missing or older than their source) bench/fuse_floor.cpp and
# libfuse's example passthrough_ll into directory $1 (bench/ is $2), and sets
# floor_bin and pt_bin to them.
bench_build_baselines() {
  local build_dir=$1 here=$2 pt_src
  floor_bin=$build_dir/fuse_floor
  if [ ! -x "$floor_bin" ] || [ "$here/fuse_floor.cpp" -nt "$floor_bin" ]; then
    mkdir -p "$build_dir"
    bench_log "building $floor_bin"
    # shellcheck disable=SC2046 # pkg-config prints several words
    g++ -O2 -std=c++20 -Wall -Wextra "$here/fuse_floor.cpp" $(pkg-config --cflags --libs fuse3) -lhiredis -o "$floor_bin" ||
      bench_die "cannot build fuse_floor (libfuse3-dev and libhiredis-dev installed?)"
  fi
  pt_src=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
  pt_bin=$build_dir/passthrough_ll
  [ -f "$pt_src" ] || bench_die "no $pt_src (install libfuse3-dev)"
  if [ ! -x "$pt_bin" ] || [ "$pt_src" -nt "$pt_bin" ]; then
    mkdir -p "$build_dir"
    bench_log "building $pt_bin from $pt_src"
    # compiled where Debian ships it (with passthrough_helpers.h beside it), as its header says
    # shellcheck disable=SC2046 # pkg-config prints several words
    gcc -O2 -Wall "$pt_src" $(pkg-config --cflags --libs fuse3) -o "$pt_bin" ||
      bench_die "cannot build passthrough_ll (libfuse3-dev installed?)"
  fi
}
