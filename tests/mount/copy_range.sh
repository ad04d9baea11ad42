#!/usr/bin/env bash
# copy_range: copy_file_range(2) is done by the server (redisfs(1), NOTES,
# Copies), each case against the same copy on a local file:
# - cp of a file within the mount goes through copy_file_range, answered
#   by the daemon (counted), and the copy holds the same bytes; its blocks
#   are on the server and counted (fsck);
# - a sparse file's holes stay holes in the copy (no block for them);
# - copies at offsets that are not block aligned, into the middle and
#   past the end of a file, and within one file (ranges apart): the same
#   bytes and size as the local file;
# - a copy into a file whose writes this mount has not sent yet (a new
#   file still open) lands over them;
# - a copy longer than one step (1024 pieces) is answered short and the
#   caller's loop gets the rest;
# - a copy out of a snapshot's view into the live tree works (the kernel
#   copies through read and write), one into a view is EROFS;
# - a user's copy into a setuid file drops setuid and setgid, root's
#   keeps them, as on the local file;
# - another mount reads the copy; on a writeback mount what the kernel
#   holds of the source (not written back yet) is copied;
# - the source records its access, as a read does (relatime), but on a
#   noatime mount.
# The filesystem is consistent at the end.
. "$(dirname "$0")/lib.sh"
need_snap -q
need_tools setpriv cmp

# copy SRC DST LEN SRC_OFF DST_OFF: copy_file_range in a loop (short copies
# are allowed) until LEN bytes or the source's end (0 copied); prints the
# calls it took
copy() {
  python3 - "$@" <<'PY'
import os, sys
src, dst, n, soff, doff = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
fi = os.open(src, os.O_RDONLY)
fo = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
done = calls = 0
while done < n:
    got = os.copy_file_range(fi, fo, n - done, soff + done, doff + done)
    calls += 1
    if got == 0:
        break
    done += got
print(calls)
PY
}
# both ARGS...: copy on the mount ($MNT) and on the local filesystem ($L)
# with the same arguments (file names relative to each)
both() {
  local src=$1 dst=$2
  shift 2
  copy "$MNT/$src" "$MNT/$dst" "$@" >/dev/null || fail "copy $src $dst $* on the mount"
  copy "$L/$src" "$L/$dst" "$@" >/dev/null || fail "copy $src $dst $* on the local filesystem"
}
same() {
  cmp "$MNT/$1" "$L/$1" || fail "$2: $1 differs from the local file"
  [[ $(stat -c %s "$MNT/$1") == $(stat -c %s "$L/$1") ]] || fail "$2: $1's size differs from the local file's"
}
blocks_of() { rcli --scan --pattern "$PREFIX:BLK:$(stat -c %i "$1"):*" | wc -l; }

mount_fs -o allow_other # (a user copies too)
BS=$(rcli hget "$PREFIX:SB" block_size)
[[ $BS =~ ^[0-9]+$ ]] || fail "no block size in the superblock: '$BS'"
L=$T/local
mkdir "$L"

head -c $((5 * BS + 77)) /dev/urandom >"$L/a"
cp "$L/a" "$MNT/a"
read -r n0 _ < <(trips copy_file_range)
cp "$MNT/a" "$MNT/a.copy"
read -r n1 _ < <(trips copy_file_range)
((n1 > n0)) || fail "cp within the mount did not reach the daemon's copy_file_range"
cmp "$MNT/a.copy" "$L/a" || fail "cp's copy differs"
[[ $(blocks_of "$MNT/a.copy") == 6 ]] || fail "the copy has $(blocks_of "$MNT/a.copy") blocks on the server, 6 expected"
note "cp within the mount: $((n1 - n0)) copy_file_range requests, the bytes copied by the server"
ino=$(stat -c %i "$MNT/a")
read -r at mt < <(rcli HMGET "$PREFIX:INODE:$ino" atime mtime | xargs)
((at > mt)) || fail "cp read the source but its atime $at is not after its mtime $mt (relatime records the access)"
note "the copy's source records its access (relatime)"

truncate -s $((50 * BS)) "$MNT/sparse"
printf 'middle' | dd of="$MNT/sparse" bs=1 seek=$((20 * BS + 3)) conv=notrunc status=none
printf 'end' | dd of="$MNT/sparse" bs=1 seek=$((50 * BS - 3)) conv=notrunc status=none
cp "$MNT/sparse" "$L/sparse"
copy "$MNT/sparse" "$MNT/sparse.copy" $((50 * BS)) 0 0 >/dev/null
cmp "$MNT/sparse.copy" "$L/sparse" || fail "the copy of a sparse file differs"
[[ $(blocks_of "$MNT/sparse.copy") == 2 ]] ||
  fail "the copy of a sparse file has $(blocks_of "$MNT/sparse.copy") blocks on the server, 2 expected"
note "a sparse file's copy keeps its holes"

cp "$L/a" "$L/b" && cp "$L/a" "$MNT/b"
both a b $((2 * BS + 10)) 5 $((BS + 1000))   # unaligned, into the middle
both a b 100 $((5 * BS)) $((7 * BS + 9))     # past the end (a hole before it), 77 bytes left in a
both b b $((BS + 3)) 0 $((3 * BS + 17))      # within one file, ranges apart
both sparse b $((3 * BS)) $((19 * BS)) $((BS / 2)) # holes over data
same b "unaligned copies, past the end, within one file, of holes"
python3 - "$MNT/a" "$MNT/open" "$L/a" "$L/open" "$BS" <<'PY'
import os, sys
bs = int(sys.argv[5])
for src, dst in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    fo = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fo, b'w' * (3 * bs))  # (still open: the writes wait in the daemon)
    fi = os.open(src, os.O_RDONLY)
    if os.copy_file_range(fi, fo, bs, 7, bs - 1) != bs:
        sys.exit('a short copy')
    os.close(fi)
    os.close(fo)
PY
same open "a copy into a file whose writes are not closed yet"
check_consistency || fail "inconsistent after the copies"
unmount_fs

# Steps, on 4 KiB blocks: 3,000 unaligned pieces.
PREFIX=$PREFIX-small
mount_fs --block-size 4096 -o allow_other
head -c $((1500 * 4096)) /dev/urandom >"$L/long"
cp "$L/long" "$MNT/long"
calls=$(copy "$MNT/long" "$MNT/long.copy" $((1500 * 4096 - 100)) 100 7)
copy "$L/long" "$L/long.copy" $((1500 * 4096 - 100)) 100 7 >/dev/null
same long.copy "a copy of 3,000 pieces"
((calls > 1)) || fail "a copy of 3,000 pieces was answered in one call"
note "a copy of 3,000 pieces took $calls calls (short answers, as copy_file_range allows)"

snap copy "$PREFIX" "$PREFIX-snap"
for ((i = 0; i < 50; i++)); do
  [[ -e $MNT/.snapshots/$PREFIX-snap/long ]] && break
  sleep 0.1
done
copy "$MNT/.snapshots/$PREFIX-snap/long" "$MNT/from-snapshot" $((1500 * 4096)) 0 0 >/dev/null ||
  fail "a copy out of a snapshot's view"
cmp "$MNT/from-snapshot" "$L/long" || fail "the copy out of a snapshot's view differs"
out=$(copy "$MNT/long" "$MNT/.snapshots/$PREFIX-snap/long" 10 0 0 2>&1) && fail "a copy into a snapshot's view worked"
[[ $out == *"Read-only file system"* ]] || fail "a copy into a snapshot's view did not fail with EROFS: $out"
note "out of a snapshot's view: copied by the kernel; into one: EROFS"

for who in user root; do
  for dir in "$MNT" "$L"; do
    head -c 4096 /dev/urandom >"$dir/suid-$who"
    chmod 6777 "$dir/suid-$who"
    as=()
    [[ $who == root ]] || as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    "${as[@]}" /usr/bin/python3 -c '
import os, sys
fi, fo = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_WRONLY)
os.copy_file_range(fi, fo, 10, 0, 0)' "$dir/long" "$dir/suid-$who" || fail "$who's copy into $dir/suid-$who"
  done
  want=$(stat -c %a "$L/suid-$who")
  [[ $(stat -c %a "$MNT/suid-$who") == "$want" ]] ||
    fail "after $who's copy the mode is $(stat -c %a "$MNT/suid-$who"), the local file's $want"
  note "$who's copy into a setuid and setgid file leaves mode $want, as on the local file"
done

mount_at "$T/m2"
cmp "$T/m2/long.copy" "$L/long.copy" || fail "another mount does not read the copy"
unmount_fs "$T/m2"
check_consistency || fail "inconsistent after the copies in steps"
unmount_fs

mount_fs -o writeback
python3 - "$MNT/wb" "$MNT/wb.copy" "$L/long" <<'PY'
import os, sys
with open(sys.argv[3], 'rb') as f:
    data = f.read(10 * 4096 + 5)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, data)  # (in the kernel's cache: not written back yet)
fo = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
done = 0
while done < len(data):
    got = os.copy_file_range(fd, fo, len(data) - done, done, done)
    if got == 0:
        sys.exit('the source ends at %d bytes for copy_file_range, %d written' % (done, len(data)))
    done += got
os.close(fo)
os.close(fd)
PY
head -c $((10 * 4096 + 5)) "$L/long" >"$L/wb.copy"
same wb.copy "a writeback mount's copy of what the kernel held"
unmount_fs
check_consistency || fail "inconsistent after the writeback mount's copy"
note "a writeback mount's copy sees what the kernel held of the source"

mount_fs -o noatime
printf 'new data' >>"$MNT/a"
ino=$(stat -c %i "$MNT/a")
read -r at0 mt < <(rcli HMGET "$PREFIX:INODE:$ino" atime mtime | xargs)
cp "$MNT/a" "$MNT/a.noatime"
[[ $(rcli HGET "$PREFIX:INODE:$ino" atime) == "$at0" ]] || fail "a noatime mount's copy recorded the source's access"
unmount_fs
note "a noatime mount's copy leaves the source's atime"
