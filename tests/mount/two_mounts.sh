#!/usr/bin/env bash
# two_mounts: one filesystem mounted twice at once (as two hosts would).
# With attribute and entry caching off, a change made through one mount is
# seen at once through the other; two churners making random, colliding
# changes through both leave a consistent tree that both mounts list alike;
# a file one mount has open survives an unlink through the other.
. "$(dirname "$0")/lib.sh"

A=$T/a
B=$T/b
mount_at "$A" -o attr_timeout=0,entry_timeout=0
mount_at "$B" -o attr_timeout=0,entry_timeout=0
[[ $(fs_keys 'MOUNT:*' | wc -l) == 2 ]] || fail "want two session keys: $(fs_keys 'MOUNT:*')"

echo one >"$A/f"
[[ $(cat "$B/f") == one ]] || fail "B does not see A's new file"
echo two >"$A/f"
[[ $(cat "$B/f") == two ]] || fail "B reads stale content after A rewrote the file"
mkdir "$B/dir"
[[ -d $A/dir ]] || fail "A does not see B's mkdir"
mv "$A/f" "$A/dir/g"
[[ ! -e $B/f && $(cat "$B/dir/g") == two ]] || fail "B does not see A's rename"
chmod 600 "$B/dir/g"
[[ $(stat -c %a "$A/dir/g") == 600 ]] || fail "A does not see B's chmod"
setfattr -n user.x -v 1 "$A/dir/g"
[[ $(getfattr --only-values -n user.x "$B/dir/g") == 1 ]] || fail "B does not see A's xattr"
ln "$B/dir/g" "$B/h"
[[ $(stat -c %h "$A/dir/g") == 2 ]] || fail "A sees nlink $(stat -c %h "$A/dir/g") after B's link"
rm "$A/h" "$A/dir/g"
[[ ! -e $B/dir/g && ! -e $B/h ]] || fail "B still sees files A removed"
rmdir "$B/dir"
[[ -z $(ls -A "$A") ]] || fail "A not empty: $(ls -A "$A")"

# both at once, colliding
mkdir "$A/shared"
python3 "$HERE/churn.py" "$A" --own own-a --seed 11 --ops 200 >"$T/churn-a" 2>&1 &
pa=$!
python3 "$HERE/churn.py" "$B" --own own-b --seed 22 --ops 200 >"$T/churn-b" 2>&1 &
pb=$!
ra=0 rb=0
wait "$pa" || ra=$?
wait "$pb" || rb=$?
cat "$T/churn-a" "$T/churn-b"
((ra == 0 && rb == 0)) || fail "a churner hit an unexpected error"

# and a second round, both in the same own directory names
python3 "$HERE/churn.py" "$A" --own own-a --seed 33 --ops 200 >"$T/churn-a" 2>&1 &
pa=$!
python3 "$HERE/churn.py" "$B" --own own-a --seed 44 --ops 200 >"$T/churn-b" 2>&1 &
pb=$!
ra=0 rb=0
wait "$pa" || ra=$?
wait "$pb" || rb=$?
cat "$T/churn-a" "$T/churn-b"
((ra == 0 && rb == 0)) || fail "a churner hit an unexpected error"

check_consistency
python3 "$HERE/manifest.py" "$A" >"$T/list-a"
python3 "$HERE/manifest.py" "$B" >"$T/list-b"
diff -u "$T/list-a" "$T/list-b" || fail "the two mounts show different trees"

# a file open on B is unlinked on A: B keeps reading and writing it (as
# one host would), and it is freed once B closes it
head -c 100000 /dev/urandom >"$A/open"
ino=$(stat -c %i "$A/open")
exec 3<>"$B/open"
rm "$A/open"
sleep 0.2  # let A's kernel forget the inode: A's purge must hand it to B
out=$(head -c 100000 <&3 | wc -c) || true
[[ $out == 100000 ]] || fail "B cannot read its open file after A unlinked it (read $out bytes)"
printf 'more' >&3 || fail "B cannot write its open file after A unlinked it"
exec 3>&-
for ((i = 0; i < 200; i++)); do
  [[ $(rcli exists "$PREFIX:INODE:$ino") == 0 ]] && break
  sleep 0.05
done
[[ $(rcli exists "$PREFIX:INODE:$ino") == 0 ]] || fail "inode $ino not freed after B closed it"
[[ $(rcli exists "$PREFIX:OPEN:$ino") == 0 ]] || fail "open count of inode $ino left behind"

unmount_fs "$A"
unmount_fs "$B"
check_consistency --no-orphans
[[ -z $(fs_keys 'MOUNT:*') ]] || fail "session keys left after both unmounts: $(fs_keys 'MOUNT:*')"
