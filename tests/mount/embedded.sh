#!/usr/bin/env bash
# embedded: with no --redis, redisfs starts a private redis-server in
# $XDG_DATA_HOME/redisfs (unix socket only, persistence on), a second mount
# attaches to it, data survives unmount + mount (the server is stopped in
# between, so it comes back from disk), and after the last unmount no
# server of that data directory is left running.
REDIS_AUTOSTART=0
. "$(dirname "$0")/lib.sh"

export HOME=$T/home XDG_DATA_HOME=$T/xdg
mkdir -p "$HOME"
data=$XDG_DATA_HOME/redisfs
esock=$data/redis.sock
EXTRA_SOCKS+=("$esock")

server_pid() {
  [[ -s $data/redis.pid ]] && cat "$data/redis.pid"
}

server_gone() {  # pid
  local i
  for ((i = 0; i < 200; i++)); do
    if ! kill -0 "$1" 2>/dev/null && [[ $(redis-cli -s "$esock" ping 2>/dev/null) != PONG ]]; then
      return 0
    fi
    sleep 0.05
  done
  fail "the embedded redis-server ($1) still runs after the last unmount"
}

mount_daemon_at "$MNT"
[[ -S $esock ]] || fail "no socket $esock"
[[ $(redis-cli -s "$esock" ping) == PONG ]] || fail "the embedded server does not answer on $esock"
[[ $(redis-cli -s "$esock" config get port | tail -1) == 0 ]] || fail "the embedded server listens on TCP"
[[ $(redis-cli -s "$esock" config get appendonly | tail -1) == yes ]] || fail "the embedded server has no AOF"
# what the manual says of its durability: the AOF, flushed to disk once a
# second
[[ $(redis-cli -s "$esock" config get appendfsync | tail -1) == everysec ]] ||
  fail "the embedded server flushes its AOF otherwise than the manual says"
[[ $(stat -c %a "$data") == 700 ]] || fail "the data dir is mode $(stat -c %a "$data"), want 700"
pid=$(server_pid) || fail "no pid file in $data"
head -c 300000 /dev/urandom >"$T/data"
cp "$T/data" "$MNT/file"
mkdir "$MNT/dir"
setfattr -n user.k -v kept "$MNT/dir"

# a second mount attaches to the same server
mount_daemon_at "$T/second"
[[ $(server_pid) == "$pid" ]] || fail "the second mount started another server"
cmp "$T/data" "$T/second/file" || fail "the second mount reads different data"
unmount_fs "$T/second"
kill -0 "$pid" 2>/dev/null || fail "the server stopped while a mount still uses it"
[[ $(cat "$MNT/dir/../file" | wc -c) == 300000 ]] || fail "the first mount lost its server"
unmount_fs
server_gone "$pid"
note "server $pid stopped at the last unmount"

# a new server, from the AOF
mount_daemon_at "$MNT"
pid2=$(server_pid) || fail "no pid file in $data after the second start"
[[ $pid2 != "$pid" ]] || fail "same server pid $pid2 after a stop"
cmp "$T/data" "$MNT/file" || fail "data lost across unmount + server restart"
[[ $(getfattr --only-values -n user.k "$MNT/dir") == kept ]] || fail "xattr lost"
# the same store, seen by redisfs-snap when it is there
if [[ -n ${REDISFS_SNAP_BIN:-} && -x $REDISFS_SNAP_BIN ]]; then
  "$REDISFS_SNAP_BIN" list >"$T/snap-list" 2>&1 || fail "redisfs-snap list on the embedded store failed: $(cat "$T/snap-list")"
fi
SOCK=$esock PREFIX=SKX check_consistency
unmount_fs
server_gone "$pid2"
[[ -z $(pgrep -f "$data" || true) ]] || fail "a process still mentions $data: $(pgrep -af "$data")"
