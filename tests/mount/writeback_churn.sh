#!/usr/bin/env bash
# writeback_churn: two processes churn one writeback mount's namespace at
# once (churn.py: creates, writes, renames over, links, unlinks, mkdir,
# rmdir, exchanges, colliding names), with what such a mount answers
# itself (deferred creates and unlinks, directory attribute changes,
# gathered writes). What the mount showed must be what the server holds:
# the tree after a remount is the same, name for name (type, mode, links,
# owner, size, content, inode numbers, times), and the filesystem is
# consistent, nothing left behind. Regular files' times are the kernel's
# (its writeback cache keeps them, on a coarse clock, and writes them
# back): the server must store those, not its own. Nor may a change the
# mount answered itself (an unlink that waits) be refused when it lands
# (the daemon logs that): the name was another inode's, or gone.
. "$(dirname "$0")/lib.sh"

for seeds in "11 22" "33 44"; do
  read -r s1 s2 <<<"$seeds"
  mount_fs -o writeback
  mkdir -p "$MNT/shared"
  r1=0 r2=0
  python3 "$HERE/churn.py" "$MNT" --own "own-$s1" --seed "$s1" --ops 3000 >"$T/churn-1" 2>&1 &
  p1=$!
  python3 "$HERE/churn.py" "$MNT" --own "own-$s2" --seed "$s2" --ops 3000 >"$T/churn-2" 2>&1 &
  p2=$!
  wait "$p1" || r1=$?
  wait "$p2" || r2=$?
  cat "$T/churn-1" "$T/churn-2"
  ((r1 == 0 && r2 == 0)) || fail "a churner hit an unexpected error (seeds $seeds)"
  python3 "$HERE/manifest.py" "$MNT" >"$T/shown"
  log=${MOUNT_LOGS[$MNT]}
  unmount_fs
  ! grep "sent after its" "$log" ||
    fail "the mount answered a change the server then refused (seeds $seeds)"
  check_consistency --no-orphans || fail "inconsistent after the churn (seeds $seeds)"
  mount_fs
  python3 "$HERE/manifest.py" "$MNT" >"$T/stored"
  diff "$T/shown" "$T/stored" >"$T/delta" ||
    fail "the writeback mount showed another tree than the server holds (seeds $seeds): $(head -6 "$T/delta")"
  unmount_fs
done
