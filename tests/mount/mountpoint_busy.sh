#!/usr/bin/env bash
# mountpoint_busy: redisfs refuses a mount point that something is already
# mounted on (a live redisfs mount, any other filesystem) with exit 1 and
# "already mounted", instead of stacking a second daemon that one unmount
# would leave behind; and on a dead mount (its daemon killed: every access
# is "Transport endpoint is not connected") it says so and how to get rid
# of it, not "Not a directory".
. "$(dirname "$0")/lib.sh"

# try_mount MOUNTPOINT: runs redisfs (daemon mode) on it; sets RC and OUT.
try_mount() {
  RC=0
  OUT=$(timeout 60 "$REDISFS_BIN" --redis "unix://$SOCK" --prefix "$PREFIX" "$1" 2>&1) || RC=$?
}

mount_fs
echo one >"$MNT/f"
first=$DAEMON_PID
try_mount "$MNT"
((RC == 1)) || fail "a second mount on a live mount exited with $RC, want 1: $OUT"
[[ $OUT == *"$MNT is already mounted"* ]] || fail "no 'already mounted' message: $OUT"
(($(printf '%s\n' "$OUT" | wc -l) == 1)) || fail "more than one line: $OUT"
n=$(awk -v m="$MNT" '$2 == m' /proc/self/mounts | wc -l)
((n == 1)) || fail "$n mounts on $MNT after the refused one"
pid=$(_find_daemon "$MNT")
[[ $pid == "$first" ]] || fail "a second daemon runs for $MNT: $pid (first $first)"
note "live mount: $OUT"
# through a relative path and a trailing slash too
(cd "$T" && try_mount "mnt/")
((RC == 1)) && [[ $OUT == *"already mounted"* ]] || fail "mnt/ from $T was not refused ($RC): $OUT"
[[ $(cat "$MNT/f") == one ]] || fail "the first mount stopped working"
unmount_fs

# any filesystem type
mkdir -p "$T/tmpfs"
mount -t tmpfs none "$T/tmpfs" 2>/dev/null || skip "cannot mount a tmpfs"
try_mount "$T/tmpfs"
umount "$T/tmpfs"
((RC == 1)) || fail "a mount on a tmpfs exited with $RC, want 1: $OUT"
[[ $OUT == *"already mounted"* && $OUT == *tmpfs* ]] || fail "tmpfs: no 'already mounted (tmpfs ...)' message: $OUT"
note "tmpfs: $OUT"

# a dead mount: SIGKILL the daemon and leave its mount behind
mount_fs
pid=$DAEMON_PID
kill -KILL "$pid"
wait_gone "$pid" 10 || fail "redisfs $pid survives SIGKILL"
wait "$pid" 2>/dev/null || true
unset "MOUNT_PIDS[$MNT]"
is_mounted "$MNT" || fail "the dead mount is gone already"
try_mount "$MNT"
((RC == 1)) || fail "a mount on a dead mount exited with $RC, want 1: $OUT"
[[ $OUT != *"Not a directory"* ]] || fail "a dead mount is called 'Not a directory': $OUT"
[[ $OUT == *"dead mount"* && $OUT == *"fusermount3 -u $MNT"* ]] || fail "no hint to unmount the dead mount: $OUT"
note "dead mount: $OUT"
fusermount3 -u "$MNT"
! is_mounted "$MNT" || fail "fusermount3 -u did not remove the dead mount"
# and then it mounts again
mount_fs
[[ $(cat "$MNT/f") == one ]] || fail "the file is gone after remounting"
unmount_fs
