#!/usr/bin/env bash
# seek_holes: lseek(2)'s SEEK_DATA and SEEK_HOLE answer from the blocks on
# the server (redisfs(1), NOTES, Sparse files): a block never written (or
# truncated away) is a hole, a written one data, the end of the file a
# hole; ENXIO at or past the end, and for SEEK_DATA when only holes
# follow.
# - a sparse file's data runs, block by block, and single lseeks inside
#   data and holes, at the end and past it; a block written with zeros
#   is data;
# - what an open wrote and has not closed yet (gathered in the daemon)
#   counts: it goes to the server first;
# - a truncate down cuts the runs; another mount's write shows at once;
# - the data of a 16 GiB file and of a 1 PiB one, one block at their
#   ends, is found (past 1 Mi blocks of holes a SCAN of the keys finds
#   it); the round trips are printed, not asserted;
# - cp copies a sparse file sparse (coreutils looks for the data with
#   SEEK_DATA), and tar --sparse stores its data only, byte for byte
#   (punching holes: punch_hole.sh);
# - a snapshot's view (.snapshots) answers the same map;
# - a writeback mount does not answer (the kernel may hold dirty pages
#   it does not write back first): the kernel's own answer, the whole
#   file data.
. "$(dirname "$0")/lib.sh"
need_binary REDISFS_SNAP_BIN
S=$HERE/seek_holes.py

mount_fs
BS=$(rcli hget "$PREFIX:SB" block_size)
[[ $BS =~ ^[0-9]+$ ]] || fail "no block size in the superblock: '$BS'"

# expect WHAT WANT GOT
expect() {
  [[ $3 == "$2" ]] || fail "$1: got '$3', want '$2'"
}

F=$MNT/sparse
SIZE=$((100 * BS + 7))
truncate -s "$SIZE" "$F"
python3 -c '
import os, sys
bs = int(sys.argv[2])
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"a" * 10, 5 * bs + 3)
os.pwrite(fd, b"b" * (2 * bs), 40 * bs)
os.pwrite(fd, b"c" * 7, 100 * bs)
os.close(fd)' "$F" "$BS"
expect "the map of a sparse file" "$((5 * BS)) $((6 * BS))
$((40 * BS)) $((42 * BS))
$((100 * BS)) $SIZE
end none" "$(python3 "$S" map "$F")"
expect "SEEK_DATA inside data" $((5 * BS + 1)) "$(python3 "$S" at "$F" data $((5 * BS + 1)))"
expect "SEEK_HOLE inside data" $((42 * BS)) "$(python3 "$S" at "$F" hole $((40 * BS + 5)))"
expect "SEEK_DATA inside a hole" $((40 * BS)) "$(python3 "$S" at "$F" data $((6 * BS)))"
expect "SEEK_HOLE inside a hole" 7 "$(python3 "$S" at "$F" hole 7)"
expect "SEEK_DATA at the end" ENXIO "$(python3 "$S" at "$F" data "$SIZE")"
expect "SEEK_HOLE at the end" ENXIO "$(python3 "$S" at "$F" hole "$SIZE")"
expect "SEEK_DATA past the end" ENXIO "$(python3 "$S" at "$F" data $((SIZE + BS)))"
expect "SEEK_HOLE in the last block" "$SIZE" "$(python3 "$S" at "$F" hole $((100 * BS + 1)))"
dd if=/dev/zero of="$MNT/zeros" bs="$BS" seek=2 count=1 status=none
expect "the map of a file whose one block holds zeros (written: data)" "$((2 * BS)) $((3 * BS))
end none" "$(python3 "$S" map "$MNT/zeros")"

expect "SEEK_DATA of a file written and not closed yet" $((3 * BS)) \
  "$(python3 "$S" open-write "$MNT/open" "$BS")"
truncate -s $((8 * BS)) "$MNT/open"
[[ $(python3 "$S" map "$MNT/open") == "$((3 * BS)) $((4 * BS))
end ENXIO" ]] || fail "the map of a file with a tail hole: $(python3 "$S" map "$MNT/open")"

truncate -s $((41 * BS + 5)) "$F"
expect "the map after a truncate into data" "$((5 * BS)) $((6 * BS))
$((40 * BS)) $((41 * BS + 5))
end none" "$(python3 "$S" map "$F")"
mount_at "$T/m2"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, b"d", int(sys.argv[2])); os.close(fd)' \
  "$T/m2/sparse" $((20 * BS + 100))
expect "SEEK_DATA after another mount's write" $((20 * BS)) "$(python3 "$S" at "$F" data $((6 * BS)))"
unmount_fs "$T/m2"
note "SEEK_DATA and SEEK_HOLE: data runs, single seeks, an open's writes, a truncate, another mount's write"

BIG=$MNT/big
BIG_SIZE=$((16 << 30))
truncate -s "$BIG_SIZE" "$BIG"
printf 'tail' | dd of="$BIG" bs=1 seek=$((BIG_SIZE - 4)) conv=notrunc status=none
read -r n0 t0 < <(trips lseek)
expect "SEEK_DATA of a 16 GiB file with data at its end" $((BIG_SIZE - BS)) "$(python3 "$S" at "$BIG" data 0)"
read -r n1 t1 < <(trips lseek)
expect "lseeks the daemon answered" $((n0 + 1)) "$n1"
note "SEEK_DATA found the data of a 16 GiB file ($((BIG_SIZE / BS)) blocks) in about $((t1 - t0)) round trips"
rm "$BIG"
# (past 1 Mi blocks of holes, more than the server has keys: a SCAN)
HUGE_SIZE=$((1 << 50))
truncate -s "$HUGE_SIZE" "$BIG"
printf 'tail' | dd of="$BIG" bs=1 seek=$((HUGE_SIZE - 4)) conv=notrunc status=none
read -r n0 t0 < <(trips lseek)
expect "SEEK_DATA of a 1 PiB file with data at its end" $((HUGE_SIZE - BS)) "$(python3 "$S" at "$BIG" data 1)"
expect "SEEK_HOLE of a 1 PiB file with data at its end" 1 "$(python3 "$S" at "$BIG" hole 1)"
expect "SEEK_HOLE in its last block" "$HUGE_SIZE" "$(python3 "$S" at "$BIG" hole $((HUGE_SIZE - BS)))"
read -r n1 t1 < <(trips lseek)
note "SEEK_DATA found the data of a 1 PiB file ($((HUGE_SIZE / BS)) blocks) in about $((t1 - t0)) round trips (with a SEEK_HOLE)"
rm "$BIG"

cp "$F" "$T/copy"
cmp "$F" "$T/copy" || fail "cp of a sparse file differs"
(($(stat -c %b "$T/copy") * 512 < 8 * BS)) ||
  fail "cp wrote the holes of a sparse file: $(stat -c %b "$T/copy") blocks of 512 for $((41 * BS + 5)) bytes"
note "cp copies a sparse file sparse: $(stat -c %b "$T/copy") blocks of 512 for $((41 * BS + 5)) bytes"
tar -C "$MNT" --sparse -cf "$T/sparse.tar" sparse
(($(stat -c %s "$T/sparse.tar") < 8 * BS)) || fail "tar --sparse stored the holes: $(stat -c %s "$T/sparse.tar") bytes"
mkdir "$T/untar"
tar -C "$T/untar" -xf "$T/sparse.tar"
cmp "$F" "$T/untar/sparse" || fail "tar --sparse of a sparse file differs"
note "tar --sparse stores a sparse file's data only: $(stat -c %s "$T/sparse.tar") bytes"

SNAPSHOT=$PREFIX-seek
"$REDISFS_SNAP_BIN" --redis "unix://$SOCK" --quiet copy "$PREFIX" "$SNAPSHOT"
for ((i = 0; i < 50; i++)); do
  [[ -e $MNT/.snapshots/$SNAPSHOT/sparse ]] && break
  sleep 0.1
done
expect "the map of a snapshot's view" "$(python3 "$S" map "$F")" "$(python3 "$S" map "$MNT/.snapshots/$SNAPSHOT/sparse")"
unmount_fs
note "a snapshot's view answers the same map"

mount_fs -o writeback
expect "the map on a writeback mount (the kernel's answer)" "0 $((41 * BS + 5))
end none" "$(python3 "$S" map "$F")"
unmount_fs
note "a writeback mount leaves SEEK_DATA and SEEK_HOLE to the kernel: the whole file data"
