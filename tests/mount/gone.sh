#!/usr/bin/env bash
# gone: when the filesystem under a mount is deleted (`redisfs-snap delete
# --force`) or replaced by another one under the same prefix, the mount
# notices (within a few seconds, or at once when an op finds an inode it had
# missing), logs one line, and answers every op with ESTALE, root getattr
# included; the hour-long caches of a read-only snapshot mount are dropped
# (a file open there stops reading its old contents), no key is left under
# the deleted prefix, and the mount unmounts cleanly.
. "$(dirname "$0")/lib.sh"
need_snap -q

# wait_stale SECONDS PATH: stat PATH fails with ESTALE within SECONDS
wait_stale() {
  local i out
  for ((i = 0; i < $1 * 10; i++)); do
    out=$(stat "$2" 2>&1) || [[ $out != *"Stale file handle"* ]] || return 0
    sleep 0.1
  done
  fail "stat $2 does not fail with ESTALE after $1 s: $out"
}

# stale COMMAND...: fails with "Stale file handle"
stale() {
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  ((rc != 0)) || fail "'$*' succeeded on a gone filesystem: $out"
  [[ $out == *"Stale file handle"* ]] || fail "'$*' failed without ESTALE: $out"
}

mount_fs
mkdir "$MNT/dir"
echo "old contents" >"$MNT/f"
echo "inner" >"$MNT/dir/g"
unmount_fs

# --- a read-only mount of a snapshot, deleted under it
SNAP=${PREFIX}-snap
snap copy "$PREFIX" "$SNAP"
S=$T/snap
ORIG=$PREFIX
# without default_permissions: no getattr of the root on each path walk
# hides what the kernel caches of the names below it
PREFIX=$SNAP mount_at "$S" --read-only --no-default-permissions
PREFIX=$ORIG
[[ $(cat "$S/f") == "old contents" ]] || fail "the snapshot does not read"
ls -l "$S/dir" >/dev/null
! stat "$S/absent" >/dev/null 2>&1 || fail "a name absent from the snapshot is found"
exec 3<"$S/f"
snap delete --force "$SNAP"
wait_stale 10 "$S"
sleep 1  # the kernel is told to drop its caches right after
stale stat "$S/f"
stale cat "$S/f"
stale cat "$S/dir/g"
stale stat "$S/no-such-name"
stale stat "$S/absent"  # the kernel kept it absent for an hour
stale ls "$S"
out=$(cat <&3 2>&1) && fail "a file open on the deleted snapshot still reads: $out"
[[ $out == *"Stale file handle"* ]] || fail "reading an open file of a deleted snapshot: $out"
exec 3<&-
sleep 0.5
n=$(grep -c "the filesystem under this mount was deleted" "${MOUNT_LOGS[$S]}" || true)
((n == 1)) || fail "want one log line saying the filesystem was deleted, got $n: $(cat "${MOUNT_LOGS[$S]}")"
left=$(rcli --scan --pattern "$SNAP:*")
[[ -z $left ]] || fail "keys left under the deleted snapshot: $left"
unmount_fs "$S"
note "snapshot mount: $(grep deleted "${MOUNT_LOGS[$S]}")"

# --- a read-write mount without caches: an op that finds its inode
# missing asks at once (no wait for the watcher)
W=$T/w
mount_at "$W" -o attr_timeout=0,entry_timeout=0
[[ $(cat "$W/f") == "old contents" ]] || fail "the filesystem does not read"
snap delete --force "$PREFIX"
stale stat "$W/f"
stale stat "$W"
stale touch "$W/new"
unmount_fs "$W"
left=$(fs_keys)
[[ -z $left ]] || fail "keys left under the deleted filesystem: $left"

# --- replaced: another filesystem made under the same prefix
mount_fs
echo one >"$MNT/one"
rcli hset "$PREFIX:SB" created 1 >/dev/null  # as a restore --force would leave it
wait_stale 10 "$MNT"
stale cat "$MNT/one"
grep -q "the filesystem under this mount was replaced" "${MOUNT_LOGS[$MNT]}" || fail "no log line saying it was replaced"
unmount_fs
