#!/usr/bin/env bash
# nonempty: a mount point with something in it is refused (a mount would
# hide what is there) with one line that says so and names -o nonempty,
# and exit status 2, in the foreground and as a daemon; nothing is mounted
# and the directory keeps its entries. With -o nonempty the mount goes on
# over them, and they are back after the unmount.
. "$(dirname "$0")/lib.sh"

echo precious >"$MNT/work.txt"
for mode in -f ""; do
  rc=0
  # shellcheck disable=SC2086  # $mode: no word or one
  out=$(timeout 60 "$REDISFS_BIN" $mode --redis "unix://$SOCK" --prefix "$PREFIX" "$MNT" 2>&1) || rc=$?
  ((rc == 2)) || fail "mount${mode:+ $mode} on a non-empty directory exited $rc, want 2: $out"
  [[ $out == *"$MNT is not empty"* && $out == *"-o nonempty"* ]] || fail "no clear refusal: $out"
  (($(printf '%s\n' "$out" | wc -l) == 1)) || fail "more than one line: $out"
  ! is_mounted "$MNT" || fail "$MNT was mounted over its entries"
  note "${mode:-daemon}: $out"
done
[[ $(cat "$MNT/work.txt") == precious ]] || fail "the directory lost its file"
# a hidden file counts too
rm "$MNT/work.txt"
touch "$MNT/.hidden"
rc=0
out=$(timeout 60 "$REDISFS_BIN" --redis "unix://$SOCK" --prefix "$PREFIX" "$MNT" 2>&1) || rc=$?
((rc == 2)) || fail "a directory holding only a dot file was not refused ($rc): $out"
rm "$MNT/.hidden"
echo precious >"$MNT/work.txt"

mount_fs -o nonempty
[[ ! -e $MNT/work.txt ]] || fail "the mount does not cover the directory"
echo on-redis >"$MNT/new"
unmount_fs
[[ $(cat "$MNT/work.txt") == precious && ! -e $MNT/new ]] || fail "the directory's own entries did not come back"
