#!/usr/bin/env bash
# two_mounts: one filesystem mounted twice at once (as two hosts would).
# With attribute and entry caching off, a change made through one mount is
# seen at once through the other; two churners making random, colliding
# changes through both leave a consistent tree that both mounts list alike;
# a file one mount has open survives an unlink through the other. Then the
# same churn with the default caching on.
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

# churn_pair OPS ROOT1 OWN1 SEED1 ROOT2 OWN2 SEED2: two churners at once.
churn_pair() {
  local ops=$1 r1=0 r2=0 p1 p2
  python3 "$HERE/churn.py" "$2" --own "$3" --seed "$4" --ops "$ops" >"$T/churn-1" 2>&1 &
  p1=$!
  python3 "$HERE/churn.py" "$5" --own "$6" --seed "$7" --ops "$ops" >"$T/churn-2" 2>&1 &
  p2=$!
  wait "$p1" || r1=$?
  wait "$p2" || r2=$?
  cat "$T/churn-1" "$T/churn-2"
  ((r1 == 0 && r2 == 0)) || fail "a churner hit an unexpected error (in $2 and $5)"
}

# both at once, colliding
mkdir "$A/shared"
churn_pair 200 "$A" own-a 11 "$B" own-b 22
# and a second round, both in the same own directory names
churn_pair 200 "$A" own-a 33 "$B" own-a 44

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

# files closed on B and removed on A at once, while B's releases still wait
# to be sent (Session's release thread gathers them for a few ms): each
# unlink finds the file open and leaves an orphan, which B's release then
# frees (it answers "purge"); nothing of them is left
inos=$(python3 - "$A" "$B" <<'PY'
import os, sys
a, b = sys.argv[1], sys.argv[2]
inos = []
for i in range(20):
    with open(os.path.join(b, "late%d" % i), "wb") as f:
        f.write(b"x" * 5000)
        inos.append(os.fstat(f.fileno()).st_ino)
    os.unlink(os.path.join(a, "late%d" % i))
print(" ".join(map(str, inos)))
PY
) || fail "files closed on B and removed on A"
for ino in $inos; do
  for ((i = 0; i < 200; i++)); do
    [[ $(rcli exists "$PREFIX:INODE:$ino" "$PREFIX:OPEN:$ino" "$PREFIX:BLK:$ino:0") == 0 ]] && break
    sleep 0.05
  done
  [[ $(rcli exists "$PREFIX:INODE:$ino" "$PREFIX:OPEN:$ino" "$PREFIX:BLK:$ino:0") == 0 ]] ||
    fail "inode $ino, closed on B and removed on A, left behind"
done
[[ $(rcli exists "$PREFIX:ORPHANS") == 0 ]] || fail "orphans left: $(rcli hgetall "$PREFIX:ORPHANS")"

unmount_fs "$A"
unmount_fs "$B"
check_consistency --no-orphans
[[ -z $(fs_keys 'MOUNT:*') ]] || fail "session keys left after both unmounts: $(fs_keys 'MOUNT:*')"

# Again with the default caching (1 s), in directories made through C: C
# answers new names there from the names it knows (DirNames) until B's
# changes show in the directory's count. Colliding churn must still only
# lose races, and once the caches have expired both mounts list one tree.
C=$T/c
D=$T/d
mount_at "$C" -o allow_other
mount_at "$D"
mkdir "$C/cached"
mkdir "$C/cached/shared"
churn_pair 300 "$C/cached" own-c 55 "$D/cached" own-d 66
# a name D makes in a directory C made and fills is seen by C within the
# entry timeout
mkdir "$C/cached/fresh"
touch "$C/cached/fresh/mine"
ls "$C/cached/fresh/theirs" >/dev/null 2>&1 && fail "a name nobody made exists"
touch "$D/cached/fresh/theirs"
sleep 1.2
[[ -e $C/cached/fresh/theirs ]] || fail "C does not see D's new file after the entry timeout"
touch "$C/cached/fresh/mine2"
[[ -e $C/cached/fresh/theirs ]] || fail "C lost D's new file after its own create"
# open(O_CREAT) in a directory C fills, of a name D made after C's list
# said it was absent: C's CREATE finds the name taken, and the open goes
# on as the open of an existing file (the VFS looks again), so the kernel
# checks permissions and applies O_TRUNC as for any existing file
mkdir -m 0777 "$C/cached/race"
printf theirs >"$D/cached/race/x"
printf theirs >"$D/cached/race/y"
chmod 0644 "$D/cached/race/x" "$D/cached/race/y"
python3 - "$C/cached/race" <<'PY' || fail "open(O_CREAT) of a name another mount made"
import errno, os, sys
d = sys.argv[1]
pid = os.fork()
if pid == 0:  # a user who may create in the directory but not write root's file
    os.setgroups([])
    os.setresgid(1234, 1234, 1234)
    os.setresuid(1234, 1234, 1234)
    try:
        os.open(os.path.join(d, "x"), os.O_CREAT | os.O_WRONLY, 0o666)
        os._exit(3)
    except OSError as e:
        os._exit(0 if e.errno == errno.EACCES else 4)
_, status = os.waitpid(pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit("user 1234 opened root's 0644 file for writing: %d" % os.waitstatus_to_exitcode(status))
try:
    os.open(os.path.join(d, "x"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    sys.exit("O_EXCL create of an existing name succeeded")
except FileExistsError:
    pass
fd = os.open(os.path.join(d, "y"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.close(fd)
if os.stat(os.path.join(d, "y")).st_size != 0:
    sys.exit("O_TRUNC not applied to the existing file")
PY
[[ $(cat "$C/cached/race/x") == theirs ]] || fail "x changed"
[[ ! -s $C/cached/race/y ]] || fail "y is not empty after O_TRUNC"

# C still has the name of a file that D removed and freed: C's open finds
# it gone and looks again (ENOENT), rather than opening a freed inode
printf gone >"$C/cached/race/z"
stat "$C/cached/race/z" >/dev/null
rm "$D/cached/race/z"
sleep 0.2  # D's kernel forgets the inode and D frees it
if out=$(cat "$C/cached/race/z" 2>&1); then
  fail "C opened a file D had removed and freed: '$out'"
fi
[[ $out == *"No such file"* ]] || fail "opening a file another mount freed: $out"

check_consistency
sleep 1.2  # the mounts' caches expire: both must then list one tree
python3 "$HERE/manifest.py" "$C" >"$T/list-c"
python3 "$HERE/manifest.py" "$D" >"$T/list-d"
diff -u "$T/list-c" "$T/list-d" || fail "with caching on, the two mounts show different trees"
unmount_fs "$C"
unmount_fs "$D"
check_consistency --no-orphans
