#!/usr/bin/env bash
# snapdir: the snapshots of a filesystem browsed inside its mount
# (redisfs(1), SNAPSHOTS IN THE MOUNT). .snapshots lists the read-only
# snapshots whose origin is the mounted prefix, hidden from the root's
# listing unless -o snapdir=visible; a view reads like the snapshot (ls,
# cat, cp -a out of it, xattrs, symlinks, statfs), every change in it fails
# with EROFS, its inode numbers collide with no live one and no other
# view's; a snapshot taken while mounted shows up in every mount; a real
# entry named .snapshots wins; a snapshot deleted while a file of it is
# open and a process sits in it answers ESTALE/ENOENT and leaves the
# listing; one replaced under its name gives its old handles ESTALE and a
# new lookup the new one; a mount of a snapshot lists no snapshots;
# ls -l of .snapshots sends no LOOKUP per snapshot (readdirplus carries
# each one's attributes); a view's permissions are the snapshot's, checked
# for another user as in the live tree; a view of a snapshot mounted
# --writable-snapshot reads its files again at each open.
. "$(dirname "$0")/lib.sh"
need_snap -q

# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds.
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "$what: not within $secs s"
}

listed() {  # DIR NAME: NAME is in the listing of DIR
  local names
  names=$(ls -a "$1") && grep -qxF -- "$2" <<<"$names"
}

# count_listed DIR NAME: how many times NAME is in the listing of DIR
count_listed() {
  local names
  names=$(ls -a "$1")
  grep -cxF -- "$2" <<<"$names" || true
}

# pread_fd FD: reads the open file FD from offset 0 (not where a read left it)
pread_fd() {
  python3 -c 'import os, sys; sys.stdout.write(os.pread(int(sys.argv[1]), 4096, 0).decode())' "$1"
}

# fails_with TEXT COMMAND...: COMMAND fails, saying TEXT.
fails_with() {
  local text=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  ((rc != 0)) || fail "'$*' succeeded, expected '$text'"
  [[ $out == *"$text"* ]] || fail "'$*' failed ($rc) without '$text': $out"
}

mkdir "$T/bad"
expect_fail "-o snapdir: 'hidden' or 'visible', not 'bogus'" \
  "$REDISFS_BIN" -f --redis "unix://$SOCK" --prefix "$PREFIX" -o snapdir=bogus "$T/bad"

mount_fs
mkdir -p "$MNT/tree/sub dir"
echo "monday's text" >"$MNT/tree/file"
head -c 300000 /dev/urandom >"$MNT/tree/sub dir/binary"
ln -s "sub dir/binary" "$MNT/tree/link"
ln "$MNT/tree/file" "$MNT/tree/hardlink"
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.note", b"monday")' "$MNT/tree/file"
chmod 0640 "$MNT/tree/file"
cp -a "$MNT/tree" "$T/expect"

# --- a snapshot taken while mounted shows in the mount, hidden from the root's listing
MON=$PREFIX-mon
snap copy "$PREFIX" "$MON"
V=$MNT/.snapshots/$MON
wait_for 5 "$MON in .snapshots" listed "$MNT/.snapshots" "$MON"
! listed "$MNT" .snapshots || fail ".snapshots is listed in the root without -o snapdir=visible"
[[ -d $MNT/.snapshots ]] || fail ".snapshots is not a directory"
[[ $(stat -c %a "$MNT/.snapshots") == 555 ]] || fail ".snapshots is not 0555: $(stat -c %a "$MNT/.snapshots")"

# the live tree moves on; the view does not
echo "tuesday's text" >"$MNT/tree/file"
rm "$MNT/tree/sub dir/binary"
[[ $(cat "$V/tree/file") == "monday's text" ]] || fail "the view's file: $(cat "$V/tree/file")"
[[ $(readlink "$V/tree/link") == "sub dir/binary" ]] || fail "the view's symlink"
cmp "$V/tree/sub dir/binary" "$T/expect/sub dir/binary" || fail "the view's binary file differs"
[[ $(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.note").decode())' "$V/tree/file") == monday ]] \
  || fail "the view's xattr"
python3 -c 'import os, sys; assert "user.note" in os.listxattr(sys.argv[1])' "$V/tree/file" || fail "listxattr in the view"
stat -f "$V/tree" >/dev/null || fail "statfs in the view"
[[ $(stat -c %h "$V/tree/file") == 2 ]] || fail "the view's hard link count"
[[ $(stat -c '%i' "$V/tree/file") == $(stat -c '%i' "$V/tree/hardlink") ]] || fail "a hard link in the view is another inode"
ls -lR "$V" >/dev/null
cp -a "$V/tree" "$T/restored"
diff -r "$T/expect" "$T/restored" || fail "cp -a out of the view differs from the tree snapshotted"
[[ $(stat -c %a "$T/restored/file") == 640 ]] || fail "cp -a kept no mode"
[[ $(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.note").decode())' "$T/restored/file") == monday ]] \
  || fail "cp -a kept no xattr"
! stat "$V/tree/absent" >/dev/null 2>&1 || fail "an absent name is found in the view"
! stat "$MNT/.snapshots/no-such-snapshot" >/dev/null 2>&1 || fail "an absent snapshot is found"

# --- every change in a view (and to .snapshots itself) is EROFS
TUE=$PREFIX-tue
snap copy "$PREFIX" "$TUE"
W=$MNT/.snapshots/$TUE
wait_for 5 "$TUE in .snapshots" listed "$MNT/.snapshots" "$TUE"
echo live >"$MNT/live"
mkdir "$MNT/livedir"
EROFS="Read-only file system"
while IFS= read -r cmd; do
  [[ -n $cmd ]] || continue
  fails_with "$EROFS" bash -c "$cmd"
done <<EOF
touch '$W/new'
echo x >'$W/new'
echo x >>'$W/tree/file'
echo x >'$W/tree/file'
truncate -s 0 '$W/tree/file'
mkdir '$W/newdir'
mkfifo '$W/fifo'
ln -s target '$W/symlink'
ln '$W/tree/file' '$W/tree/link2'
ln '$W/tree/file' '$MNT/link-out'
ln '$MNT/live' '$W/link-in'
rm '$W/tree/file'
rmdir '$W/tree/sub dir'
rm -r '$W/tree'
mv '$W/tree/file' '$W/tree/renamed'
mv '$W/tree/file' '$MNT/moved-out'
mv '$MNT/live' '$W/moved-in'
mv '$MNT/livedir' '$W/tree/moved-in'
chmod 0600 '$W/tree/file'
chown 1:1 '$W/tree/file'
touch -d 2001-01-01 '$W/tree/file'
python3 -c 'import os; os.setxattr("$W/tree/file", "user.x", b"1")'
python3 -c 'import os; os.removexattr("$W/tree/file", "user.note")'
mkdir '$MNT/.snapshots/new'
rmdir '$W'
mv '$W' '$MNT/.snapshots/renamed'
rmdir '$MNT/.snapshots'
mv '$MNT/.snapshots' '$MNT/renamed'
EOF
[[ $(cat "$W/tree/file") == "tuesday's text" ]] || fail "the view changed"
[[ -f $MNT/live && -d $MNT/livedir && ! -e $MNT/link-out ]] || fail "a refused change touched the live tree"

# --- inode numbers: none shared between the live tree, the views and .snapshots
python3 - "$MNT" "$V" "$W" <<'PY' || fail "inode numbers collide"
import os, sys
live, views = sys.argv[1], sys.argv[2:]
def inodes(top, skip=None):
    out = {os.lstat(top).st_ino}
    for d, dirs, files in os.walk(top):
        if skip in dirs:
            dirs.remove(skip)
        for n in dirs + files:
            out.add(os.lstat(os.path.join(d, n)).st_ino)
    return out
trees = [inodes(live, ".snapshots")] + [inodes(v) for v in views]
assert all(i < 2**53 for i in trees[0]), "a live inode number past 2^53"
assert all(i >= 2**53 for t in trees[1:] for i in t), "a view's inode number in the live range"
snapdir = os.lstat(os.path.join(live, ".snapshots")).st_ino
dev = os.lstat(live).st_dev
for v in views:
    assert os.lstat(v).st_dev == dev, "a view has another st_dev"
for i, a in enumerate(trees):
    assert snapdir not in a, ".snapshots shares its inode number"
    for b in trees[i + 1:]:
        shared = a & b
        assert not shared, "shared inode numbers: %s" % sorted(shared)[:5]
print("inodes: %s distinct over %d trees" % (sum(len(t) for t in trees), len(trees)))
PY

# --- -o snapdir=visible: a second mount lists it; a snapshot taken now shows in both
M2=$T/m2
mount_at "$M2" -o snapdir=visible
listed "$M2" .snapshots || fail ".snapshots is not listed in the root with -o snapdir=visible"
[[ $(count_listed "$M2" .snapshots) == 1 ]] || fail ".snapshots listed twice"
! listed "$MNT" .snapshots || fail ".snapshots became visible in the hidden mount"
WED=$PREFIX-wed
snap copy "$PREFIX" "$WED"
wait_for 5 "$WED in the first mount" listed "$MNT/.snapshots" "$WED"
wait_for 5 "$WED in the second mount" listed "$M2/.snapshots" "$WED"
[[ $(cat "$M2/.snapshots/$WED/tree/file") == "tuesday's text" ]] || fail "the second mount's view"
found=$(find "$M2" -xdev -name file)
grep -qxF "$M2/.snapshots/$WED/tree/file" <<<"$found" || fail "find -xdev does not descend into a visible .snapshots: $found"
found=$(find "$MNT" -xdev -name file)
! grep -qF "/.snapshots/" <<<"$found" || fail "find descends into a hidden .snapshots: $found"

# readdirplus of .snapshots hands each snapshot with its attributes: on a
# fresh mount, ls -l of the three sends no LOOKUP per entry. (A snapshot
# whose prefix holds a '/' is no file name: not listed, nothing else lost.)
snap -q copy "$PREFIX" "$PREFIX/slash"
M3=$T/m3
mount_at "$M3"
stat "$M3/.snapshots" >/dev/null
read -r before _ < <(op_stats "$DAEMON_PID" "${MOUNT_LOGS[$M3]}" lookup)
ls -l "$M3/.snapshots" >"$T/ls-l" || fail "ls -l .snapshots"
read -r after _ < <(op_stats "$DAEMON_PID" "${MOUNT_LOGS[$M3]}" lookup)
[[ $(grep -c "$PREFIX-" "$T/ls-l") == 3 ]] || fail "ls -l .snapshots: $(cat "$T/ls-l")"
((after == before)) || fail "ls -l of .snapshots (3 snapshots) sent $((after - before)) LOOKUPs, want 0"
[[ $(grep -c '^d' "$T/ls-l") == 3 ]] || fail "ls -l .snapshots shows entries that are not directories: $(cat "$T/ls-l")"
[[ $(stat -c %a "$M3/.snapshots/$WED") == $(stat -c %a "$MNT/.snapshots/$WED") ]] || fail "a snapshot's root mode"
! grep -q slash "$T/ls-l" || fail ".snapshots lists a prefix holding a '/': $(cat "$T/ls-l")"
unmount_fs "$M3"
snap -q delete "$PREFIX/slash"
snap delete "$WED"

# --- delete while browsing: an open file and a working directory inside
exec 3<"$V/tree/file"
[[ $(pread_fd 3) == "monday's text" ]] || fail "the open file of the view"
(cd "$V/tree/sub dir" && exec sleep 30) &
SLEEPER=$!
sleep 0.2
snap delete "$MON" || fail "delete of a snapshot browsed in a mount was refused"
wait_for 5 "$MON leaves the listing" bash -c "[[ \$(ls '$MNT/.snapshots') != *'$MON'* ]]"
sleep 2.5  # the watcher (every 2 s) has the kernel drop its caches of the view
out=$(pread_fd 3 2>&1) && fail "the open file of a deleted snapshot still reads: $out"
[[ $out == *"Stale file handle"* || $out == *"No such file"* ]] || fail "read of a deleted snapshot's file: $out"
out=$(ls "/proc/$SLEEPER/cwd/" 2>&1) && fail "the cwd in a deleted snapshot still lists: $out"
[[ $out == *"Stale file handle"* || $out == *"No such file"* ]] || fail "ls of the cwd in a deleted snapshot: $out"
! stat "$V" >/dev/null 2>&1 || fail "the deleted snapshot's view is still found"
exec 3<&-
kill "$SLEEPER" && wait "$SLEEPER" 2>/dev/null || true

# --- replaced under the same name: old handles ESTALE, a new lookup the new one
exec 4<"$W/tree/file"
[[ $(pread_fd 4) == "tuesday's text" ]] || fail "the open file of the view"
echo "thursday's text" >"$MNT/tree/file"
snap delete "$TUE"
snap copy "$PREFIX" "$TUE"
wait_for 5 "the new $TUE" bash -c "[[ \$(cat '$W/tree/file') == \"thursday's text\" ]]"
sleep 2.5
out=$(pread_fd 4 2>&1) && fail "the old view's open file still reads: $out"
[[ $out == *"Stale file handle"* ]] || fail "read of a replaced snapshot's file: $out"
exec 4<&-

# --- a real entry named .snapshots wins over the view (and is logged)
mkdir "$MNT/real"
echo mine >"$MNT/real/data"
mv -T "$MNT/real" "$MNT/.snapshots" || fail "a real directory cannot take the name .snapshots"
wait_for 5 "the real .snapshots" test -f "$MNT/.snapshots/data"
wait_for 5 "the real .snapshots in the other mount" test -f "$M2/.snapshots/data"
[[ $(count_listed "$M2" .snapshots) == 1 ]] || fail "a real .snapshots and the view are both listed"
! listed "$MNT/.snapshots" "$TUE" || fail "the view shows over a real .snapshots"
# (the mount that renamed it never looks the name up again: the other one does)
grep -q "real entry named .snapshots" "${MOUNT_LOGS[$M2]}" || fail "no log line for the shadowed .snapshots"
rm -r "$MNT/.snapshots"
wait_for 5 "the view back after the real .snapshots went" listed "$MNT/.snapshots" "$TUE"
unmount_fs "$M2"
unmount_fs

# --- a mount of a snapshot: its own .snapshots lists its snapshots (none)
ORIG=$PREFIX
PREFIX=$TUE mount_at "$T/ro" --read-only
PREFIX=$ORIG
[[ -d $T/ro/.snapshots && -z $(ls -A "$T/ro/.snapshots") ]] || fail "a snapshot's mount lists snapshots: $(ls -A "$T/ro/.snapshots")"
[[ $(cat "$T/ro/tree/file") == "thursday's text" ]] || fail "the snapshot's mount"
unmount_fs "$T/ro"

# --- a view's permissions are the snapshot's, checked as in the live tree
mount_fs -o allow_other
mkdir -m 0755 "$MNT/perm"
printf 'mine\n' >"$MNT/perm/private"
printf 'ours\n' >"$MNT/perm/shared"
chmod 0600 "$MNT/perm/private"
chmod 0644 "$MNT/perm/shared"
mkdir -m 0700 "$MNT/perm/closed"
echo inside >"$MNT/perm/closed/f"
PERM=$PREFIX-perm
snap copy "$PREFIX" "$PERM"
wait_for 5 "the snapshot $PERM" test -d "$MNT/.snapshots/$PERM/perm"
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
view=$MNT/.snapshots/$PERM/perm
[[ $("${nobody[@]}" cat "$view/shared" 2>&1) == ours ]] || fail "another user cannot read a 0644 file of a view"
for denied in "cat $view/private" "ls $view/closed" "cat $view/closed/f"; do
  # shellcheck disable=SC2086
  out=$("${nobody[@]}" $denied 2>&1) && fail "another user ran '$denied' in a view: $out"
  [[ $out == *"Permission denied"* ]] || fail "'$denied' as another user: $out"
done
[[ $(cat "$view/private") == mine ]] || fail "the owner cannot read its 0600 file in a view"

# --- a snapshot mounted writable: its view keeps no pages across opens
[[ $(cat "$view/shared") == ours ]] || fail "the view's file"  # (its pages are kept)
ORIG=$PREFIX
PREFIX=$PERM mount_at "$T/w" --writable-snapshot
PREFIX=$ORIG
old=$(stat -c %y "$T/w/perm/shared")
printf 'OURS\n' >"$T/w/perm/shared"
touch -d "$old" "$T/w/perm/shared"  # (the size and mtime as they were: only the open can tell)
sleep 1.2                           # (the view's attributes: a second)
[[ $(cat "$view/shared") == OURS ]] || fail "a view of a snapshot mounted writable shows its old pages"
grep -q "$PERM: the snapshot was mounted writable" "${MOUNT_LOGS[$MNT]}" || fail "no log line for the written snapshot"
unmount_fs "$T/w"
unmount_fs
note "ok"
