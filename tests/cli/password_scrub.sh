#!/usr/bin/env bash
# password_scrub: a password given in --redis (or -o redis=, the fstab
# spelling) leaves the process's argv at start, so /proc/PID/cmdline of a running redisfs-snap (a restore waiting
# on a FIFO) and of a running redisfs (a mount in the foreground) shows
# stars, while both still authenticate with it. The server is a private
# one that wants a password: its default user has one, and the commands
# log in as an ACL user with the README's recommended minimal rights, so
# the documented ACL is exercised too. The mount part needs FUSE; without
# it only the redisfs-snap part runs.
# shellcheck source=tests/common.sh
. "$(dirname "$0")/../common.sh"

need_tools redis-server redis-cli mkfifo
need_binary REDISFS_SNAP_BIN

unset REDISFS_URL REDISFS_PASSWORD REDISFS_PREFIX

T=$(mktemp -d /tmp/redisfs-scrub.XXXXXX)
route_sanitizer_reports
chmod 0755 "$T"
SOCK=$T/redis.sock
ADMIN_PW=Admin-$RANDOM$RANDOM
PW=Scrub-Me-$RANDOM$RANDOM
P=SCRUB$RANDOM
MNT=$T/mnt
BG_PIDS=()

cleanup() {
  local pid
  set +eE
  trap - ERR  # (nothing here may end the cleanup early: tests/cli/snap_lib.sh)
  exec 3>&-
  if command -v mountpoint >/dev/null && mountpoint -q "$MNT" 2>/dev/null; then
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
  fi
  for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
    stop_pid "$pid"
  done
  if [[ -s $T/redis.pid ]]; then
    stop_pid "$(cat "$T/redis.pid")"
  fi
  remove_tmp
}
trap cleanup EXIT
trap 'on_error $LINENO' ERR

rcli() {
  redis-cli --no-auth-warning -a "$ADMIN_PW" -s "$SOCK" "$@"
}

redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --save '' --appendonly no \
  --requirepass "$ADMIN_PW" --daemonize yes --pidfile "$T/redis.pid" --dir "$T" --logfile "$T/redis.log" \
  >/dev/null || fail "redis-server did not start"
for ((i = 0; i < 200; i++)); do
  [[ -S $SOCK && -s $T/redis.pid && $(rcli ping 2>/dev/null) == PONG ]] && break
  sleep 0.05
done
[[ $(rcli ping 2>/dev/null) == PONG ]] || fail "redis-server does not answer on $SOCK"

# The recommended minimal ACL (README, Production), for two prefixes.
rcli acl setuser fsuser on ">$PW" resetkeys "~$P:*" "~$P~*" "~${P}2:*" "~${P}2~*" "${FSUSER_ACL_COMMANDS[@]}" >/dev/null
URL="unix://fsuser:$PW@$SOCK"

# A filesystem to work on, written by the default user.
rcli hset "$P:SB" format redisfs version 1 block_size 4096 root 1 next_inode 100 inodes 2 bytes 6 \
  created "$(date +%s%N)" >/dev/null
rcli hset "$P:INODE:1" type dir mode 0755 uid 0 gid 0 size 0 nlink 2 rdev 0 bytes 0 parent 1 \
  atime 1 mtime 1 ctime 1 >/dev/null
rcli hset "$P:DIR:1" hello 2 >/dev/null
rcli hset "$P:INODE:2" type file mode 0644 uid 0 gid 0 size 6 nlink 1 rdev 0 bytes 6 \
  atime 1 mtime 1 ctime 1 >/dev/null
rcli set "$P:BLK:2:0" "hello" >/dev/null
rcli setrange "$P:BLK:2:0" 5 $'\n' >/dev/null

# argv_of PID: its command line, arguments separated by spaces.
argv_of() {
  tr '\0' ' ' <"/proc/$1/cmdline"
}

# check_scrubbed PID BINARY: PID runs BINARY (once the background shell
# has exec'd it) and within 10 s (at once, in fact) its command line shows
# the user but stars for the password.
check_scrubbed() {
  local pid=$1 bin=$2 i cmdline=
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || fail "${bin##*/} exited early"
    cmdline=$(argv_of "$pid")
    [[ $cmdline != "$bin "* || $cmdline == *"$PW"* ]] || break
    sleep 0.05
  done
  [[ $cmdline == "$bin "* ]] || fail "process $pid is not ${bin##*/}: $cmdline"
  [[ $cmdline != *"$PW"* ]] || fail "${bin##*/} still shows the password in /proc/$pid/cmdline: $cmdline"
  [[ $cmdline == *"unix://fsuser:${PW//?/*}@$SOCK"* ]] || fail "${bin##*/}: unexpected command line: $cmdline"
  note "${bin##*/}: $cmdline"
}

"$REDISFS_SNAP_BIN" --redis="$URL" dump "$P" -o "$T/dump.json" 2>"$T/dump.err" ||
  fail "dump as fsuser failed: $(cat "$T/dump.err")"
grep -q "$PW" "$T/dump.err" && fail "the password shows in dump's output"

note "redisfs-snap restore, waiting on a FIFO"
mkfifo "$T/fifo"
exec 3<>"$T/fifo"  # held open: the restore blocks reading until we write
"$REDISFS_SNAP_BIN" --redis "$URL" restore --prefix "${P}2" - <"$T/fifo" >"$T/restore.out" 2>&1 3>&- &
RESTORE_PID=$!
BG_PIDS+=("$RESTORE_PID")
check_scrubbed "$RESTORE_PID" "$REDISFS_SNAP_BIN"
cat "$T/dump.json" >&3
exec 3>&-
rc=0
wait "$RESTORE_PID" || rc=$?
((rc == 0)) || fail "restore as fsuser failed ($rc): $(cat "$T/restore.out")"
grep -q "$PW" "$T/restore.out" && fail "the password shows in restore's output"
[[ $(rcli hget "${P}2:SB" format) == redisfs ]] || fail "the restore wrote no filesystem"
[[ $(rcli get "${P}2:BLK:2:0") == hello ]] || fail "the restored file differs"

if [[ ! -c /dev/fuse ]] || ! command -v fusermount3 >/dev/null || ! command -v mountpoint >/dev/null ||
  [[ ! -x ${REDISFS_BIN:-} ]]; then
  note "no FUSE (or no REDISFS_BIN): the redisfs part is not run"
  exit 0
fi

# mount_fg OUTPUT ARGS...: `redisfs -f ARGS` in the background (output in
# OUTPUT, pid in MOUNT_PID); returns once $MNT is mounted.
mount_fg() {
  local out=$1 i
  shift
  "$REDISFS_BIN" -f "$@" >"$out" 2>&1 3>&- &
  MOUNT_PID=$!
  BG_PIDS+=("$MOUNT_PID")
  for ((i = 0; i < 200; i++)); do
    mountpoint -q "$MNT" && return 0
    kill -0 "$MOUNT_PID" 2>/dev/null || fail "redisfs exited: $(cat "$out")"
    sleep 0.05
  done
  fail "redisfs did not mount: $(cat "$out")"
}

note "redisfs -f, mounted"
mkdir "$MNT"
mount_fg "$T/mount.out" --redis="$URL" --prefix "${P}2" "$MNT"
check_scrubbed "$MOUNT_PID" "$REDISFS_BIN"
[[ $(cat "$MNT/hello") == hello ]] || fail "the mount does not read the file"
echo written >"$MNT/new"
[[ $(cat "$MNT/new") == written ]] || fail "the mount does not write"
rcli client list | grep -q "user=fsuser" || fail "no connection of fsuser: $(rcli client list)"
fusermount3 -u "$MNT"
rc=0
wait "$MOUNT_PID" || rc=$?
((rc == 0)) || fail "redisfs exited $rc after the unmount: $(cat "$T/mount.out")"
grep -q "$PW" "$T/mount.out" && fail "the password shows in redisfs's output"

note "redisfs -f PREFIX MOUNTPOINT -o redis=URL (as mount(8) runs it for an fstab line), mounted"
mount_fg "$T/mount2.out" "${P}2" "$MNT" -o "rw,redis=$URL,_netdev"
check_scrubbed "$MOUNT_PID" "$REDISFS_BIN"
[[ $(cat "$MNT/new") == written ]] || fail "the -o redis= mount does not read the file"
fusermount3 -u "$MNT"
rc=0
wait "$MOUNT_PID" || rc=$?
((rc == 0)) || fail "redisfs exited $rc after the unmount: $(cat "$T/mount2.out")"
note "ok"
