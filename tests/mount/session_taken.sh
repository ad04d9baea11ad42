#!/usr/bin/env bash
# session_taken: a mount whose session lapsed (an outage longer than the
# session's 30 s, a partition, a failover that lost its key) while a mount
# that excludes it took the filesystem must not go on serving beside it.
# At its next heartbeat it stops: every operation fails with ESTALE, the
# log says why, and the other mount's hold is left as it is. Both ways:
#   - a shared mount finds a writeback mount holding its filesystem (it
#     would serve writes the writeback mount's caches hide, and the other
#     would take its open files for a dead mount's and free them);
#   - a writeback mount finds another mount live on its filesystem.
# A session that lapsed with nobody taking the filesystem is registered
# again and the mount goes on (tests/prod/outage.sh: outages cost latency);
# so does a mount that finds a writeback claim of a mount the register does
# not list (damage for fsck, or a stale claim that lapses), which only
# costs its refresh a warning.
# What such a mount still holds unsent (a file's gathered writes) is
# dropped and logged at its unmount, not written into a filesystem another
# mount holds.
. "$(dirname "$0")/lib.sh"

SHARED=$PREFIX
WB=${PREFIX}w
ODD=${PREFIX}o
W=$T/w
O=$T/o
mount_fs
echo one >"$MNT/a"
start_daemon 20 "$W" --redis "unix://$SOCK" --prefix "$WB" -o writeback
echo two >"$W/b"
sync -f "$W"
start_daemon 20 "$O" --redis "unix://$SOCK" --prefix "$ODD"
echo three >"$O/c"
rcli set "$ODD:WRITEBACK" ghost PX 60000 >/dev/null

# session_of PREFIX: the session id of the one mount of PREFIX
session_of() {
  local ids
  ids=$(rcli hkeys "$1:MOUNTS")
  [[ $(wc -l <<<"$ids") == 1 && -n $ids ]] || fail "$1 has not exactly one mount registered: $ids"
  echo "$ids"
}
shared_id=$(session_of "$SHARED")
# a file created on the shared mount and held open: its writes wait in the
# daemon until the close (store_gather.cpp)
printf 'never sent' >"$T/held.data"
hold_open "$T/held" "$MNT/held" "$T/held.data"
held_ino=$(stat -c %i "$MNT/held")
[[ $(rcli hget "$SHARED:INODE:$held_ino" size) == 0 ]] ||
  fail "the held file's writes reached the server before its close: this case needs them to wait"

wb_id=$(session_of "$WB")

# Both sessions lapse, and another mount takes each filesystem first (what
# its daemon would write: session.lua).
rcli del "$SHARED:MOUNT:$shared_id" "$WB:MOUNT:$wb_id" "$WB:WRITEBACK" >/dev/null
rcli hdel "$SHARED:MOUNTS" "$shared_id" >/dev/null
rcli hdel "$WB:MOUNTS" "$wb_id" >/dev/null
rcli set "$SHARED:MOUNT:other-wb" "v2 otherhost:1 /elsewhere" PX 60000 >/dev/null
rcli hset "$SHARED:MOUNTS" other-wb "v2 otherhost:1 /elsewhere" >/dev/null
rcli set "$SHARED:WRITEBACK" other-wb PX 60000 >/dev/null
rcli set "$WB:MOUNT:other-rw" "v2 otherhost:2 /elsewhere" PX 60000 >/dev/null
rcli hset "$WB:MOUNTS" other-rw "v2 otherhost:2 /elsewhere" >/dev/null

# (the heartbeat comes every 10 s)
for ((i = 0; i < 300; i++)); do
  stale=0
  stat "$MNT/a" >/dev/null 2>"$T/err.a" || stale=$((stale + 1))
  stat "$W/b" >/dev/null 2>"$T/err.b" || stale=$((stale + 1))
  ((stale == 2)) && break
  sleep 0.1
done
((stale == 2)) || fail "after 30 s, $stale of the 2 mounts whose filesystem another mount took still serve"
grep -q 'Stale file handle' "$T/err.a" || fail "the shared mount's stat failed otherwise: $(cat "$T/err.a")"
grep -q 'Stale file handle' "$T/err.b" || fail "the writeback mount's stat failed otherwise: $(cat "$T/err.b")"
expect_stale() {  # what [command...]
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    fail "$what succeeded on a mount that stopped serving"
  fi
  [[ $out == *"Stale file handle"* ]] || fail "$what failed otherwise than with ESTALE: $out"
}
expect_stale "a new file" touch "$MNT/new"
expect_stale "a read" cat "$W/b"
grep -q "session of this mount lapsed.* and the writeback mount other-wb .*took '$SHARED' meanwhile: every operation on this mount now fails with ESTALE; unmount it$" "${MOUNT_LOGS[$MNT]}" ||
  fail "the shared mount did not log why it stopped: $(tail -3 "${MOUNT_LOGS[$MNT]}")"
grep -q "session of this mount lapsed.* and mount other-rw .*came up meanwhile on '$WB', which this writeback mount must hold alone: every operation on this mount now fails with ESTALE; unmount it$" "${MOUNT_LOGS[$W]}" ||
  fail "the writeback mount did not log why it stopped: $(tail -3 "${MOUNT_LOGS[$W]}")"

# the holds of the mounts that took them are as they were
[[ $(rcli get "$SHARED:WRITEBACK") == other-wb ]] || fail "the writeback claim of the mount that took $SHARED is gone"
[[ $(rcli exists "$SHARED:MOUNT:other-wb" "$WB:MOUNT:other-rw") == 2 ]] ||
  fail "the session keys of the mounts that took the filesystems are gone"
[[ $(rcli exists "$SHARED:MOUNT:$shared_id" "$WB:MOUNT:$wb_id") == 0 ]] ||
  fail "a mount that stopped serving registered again"

# the claim of a mount nobody registered costs a warning, not the mount
for ((i = 0; i < 300; i++)); do
  grep -q "heartbeat: cannot refresh.*writeback mount ghost" "${MOUNT_LOGS[$O]}" && break
  sleep 0.1
done
grep -q "heartbeat: cannot refresh.*writeback mount ghost" "${MOUNT_LOGS[$O]}" ||
  fail "the mount under an unregistered claim logged no refused refresh: $(tail -3 "${MOUNT_LOGS[$O]}")"
[[ $(cat "$O/c") == three ]] && echo four >"$O/d" ||
  fail "a claim of a mount nobody registered stopped a live mount"

# the held file's close fails (the mount stopped serving); its writes are
# dropped at the unmount, with a line in the log
touch "$T/held.done"
if wait "$HOLDER"; then
  fail "the close of a file held open across the takeover succeeded"
fi
HOLDER=
unmount_fs
[[ $(rcli hget "$SHARED:INODE:$held_ino" size) == 0 ]] ||
  fail "a mount that stopped serving sent a held file's writes at its unmount, into a filesystem another mount holds"
grep -q "unmount: this mount stopped serving .*dropped the unsent changes of 1 file (0 of them not on the server yet), 0 directory attribute changes and 0 unlinks$" "${MOUNT_LOGS[$MNT]}" ||
  fail "the unmount did not log what it dropped: $(tail -3 "${MOUNT_LOGS[$MNT]}")"
unmount_fs "$W"
rcli del "$ODD:WRITEBACK" >/dev/null
unmount_fs "$O"
