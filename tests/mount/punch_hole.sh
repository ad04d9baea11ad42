#!/usr/bin/env bash
# punch_hole: fallocate(2) with FALLOC_FL_PUNCH_HOLE (redisfs(1), NOTES,
# Sparse files), each case against the same punches on a local file:
# - a range inside one block (zeros in place), across block edges (edge
#   blocks cut short or zeroed, the blocks covered whole removed), past
#   the end of the file (nothing past it): the same bytes as the local
#   file, the same size, the blocks gone from the server, the bytes
#   counted off (df, fsck), mtime and ctime moved;
# - a range of holes only moves the times; one at or past the end changes
#   nothing (as ext4);
# - what an open wrote and has not closed yet (the daemon gathers a new
#   file's writes until its close) lands first, then the hole;
# - another mount reads the zeros;
# - reserving space (fallocate's mode 0 and KEEP_SIZE alone) is
#   EOPNOTSUPP (posix_fallocate(3) then writes the zeros itself), and a
#   punch after it still works (not ENOSYS, after which the kernel would
#   refuse every fallocate of the mount);
# - setuid and setgid go when a user punches, and stay when root does, as
#   on the local file;
# - a range longer than a step (1024 blocks) is punched in steps, and one
#   of a 1 PiB file with data at both ends only costs its data (the
#   round trips are printed, not asserted);
# - on a writeback mount the kernel's dirty pages of the range are written
#   back first and the hole is on the server after a remount.
# The filesystem is consistent at the end (fsck's byte counts included).
. "$(dirname "$0")/lib.sh"
need_tools fallocate setpriv cmp

mount_fs -o allow_other # (a user punches too)
BS=$(rcli hget "$PREFIX:SB" block_size)
[[ $BS =~ ^[0-9]+$ ]] || fail "no block size in the superblock: '$BS'"
L=$T/local
mkdir "$L"

# both NAME FALLOCATE-ARGS...: the same fallocate on $MNT/NAME and $L/NAME
both() {
  local name=$1
  shift
  fallocate "$@" "$MNT/$name" || fail "fallocate $* $name on the mount"
  fallocate "$@" "$L/$name" || fail "fallocate $* $name on the local filesystem"
}
# same NAME WHAT: the mount's file holds the local file's bytes and size
same() {
  cmp "$MNT/$1" "$L/$1" || fail "$2: $1 differs from the local file"
  [[ $(stat -c %s "$MNT/$1") == $(stat -c %s "$L/$1") ]] || fail "$2: $1's size differs from the local file's"
}
blk() { rcli strlen "$PREFIX:BLK:$1:$2"; }
times_of() { stat -c '%.9Y %.9Z' "$1"; }

head -c $((10 * BS + 123)) /dev/urandom >"$L/f"
cp "$L/f" "$MNT/f"
INO=$(stat -c %i "$MNT/f")
bytes0=$(rcli hget "$PREFIX:SB" bytes)
before=$(times_of "$MNT/f")
sleep 0.05
both f --punch-hole -o 5 -l 10                             # inside block 0
both f --punch-hole -o $((BS - 3)) -l 7                    # block 0's last bytes, block 1's first
both f --punch-hole -o $((2 * BS)) -l "$BS"                # block 2, whole
both f --punch-hole -o $((3 * BS + 100)) -l $((3 * BS))    # 3 cut, 4 and 5 whole, 6's first bytes
both f --punch-hole -o $((9 * BS + 50)) -l $((10 * BS))    # 9 cut, 10 whole, past the end
same f "punches"
after=$(times_of "$MNT/f")
[[ ${after% *} > ${before% *} && ${after#* } > ${before#* } ]] || fail "mtime and ctime did not move: $before -> $after"
for b in 2 4 5 10; do
  [[ $(blk "$INO" "$b") == 0 ]] || fail "block $b, covered whole, is still on the server"
done
[[ $(blk "$INO" 0) == $((BS - 3)) && $(blk "$INO" 3) == 100 && $(blk "$INO" 9) == 50 ]] ||
  fail "the edge blocks are not cut where the hole starts: $(blk "$INO" 0) $(blk "$INO" 3) $(blk "$INO" 9)"
[[ $(blk "$INO" 1) == "$BS" && $(blk "$INO" 6) == "$BS" ]] || fail "a block with data after the hole was cut"
freed=$((3 * BS + 123 + 3 + (BS - 100) + (BS - 50)))
[[ $(rcli hget "$PREFIX:SB" bytes) == $((bytes0 - freed)) ]] ||
  fail "the superblock counts $(rcli hget "$PREFIX:SB" bytes) bytes, $((bytes0 - freed)) expected"
[[ $(rcli hget "$PREFIX:INODE:$INO" bytes) == $((10 * BS + 123 - freed)) ]] || fail "the inode's byte count"
note "punches inside a block, across edges and past the end: the local file's bytes, $freed bytes freed"

before=$(times_of "$MNT/f")
sleep 0.05
both f --punch-hole -o $((4 * BS)) -l $((2 * BS)) # holes only
after=$(times_of "$MNT/f")
[[ $after != "$before" ]] || fail "a punch of holes only did not move the times"
before=$after
both f --punch-hole -o $((10 * BS + 123)) -l 5 # at the end
both f --punch-hole -o $((30 * BS)) -l "$BS"   # past it
[[ $(times_of "$MNT/f") == "$before" ]] || fail "a punch at or past the end moved the times"
same f "punches of holes, at and past the end"

python3 - "$MNT/open" "$L/open" "$BS" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
bs = int(sys.argv[3])
for path in sys.argv[1:3]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b'a' * (3 * bs))
    if libc.fallocate(fd, 3, bs - 1, bs + 2) != 0:  # (still open: the writes wait in the daemon)
        sys.exit('fallocate: ' + os.strerror(ctypes.get_errno()))
    os.close(fd)
PY
same open "a punch after writes not closed yet"
note "what an open wrote and has not closed yet lands before the hole"

mount_at "$T/m2"
both f --punch-hole -o 7 -l $((BS + 9))
cmp "$T/m2/f" "$L/f" || fail "another mount does not read the hole"
unmount_fs "$T/m2"

for how in "-l $BS" "-n -l $BS"; do
  # shellcheck disable=SC2086  # (the options, split)
  out=$(fallocate $how "$MNT/f" 2>&1) && fail "fallocate $how succeeded"
  [[ $out =~ (not supported|unsupported) ]] || fail "fallocate $how did not fail with EOPNOTSUPP: $out"
done
both f --punch-hole -o 1 -l 1
same f "a punch after a refused reservation"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644); os.posix_fallocate(fd, 0, int(sys.argv[2]))' \
  "$MNT/reserved" $((2 * BS + 5)) || fail "posix_fallocate failed"
[[ $(stat -c %s "$MNT/reserved") == $((2 * BS + 5)) ]] || fail "posix_fallocate left $(stat -c %s "$MNT/reserved") bytes"
cmp "$MNT/reserved" <(head -c $((2 * BS + 5)) /dev/zero) || fail "posix_fallocate's file is not zeros"
note "reserving space is EOPNOTSUPP (posix_fallocate writes the zeros itself), and punching still works after it"

for who in user root; do
  for dir in "$MNT" "$L"; do
    head -c "$BS" /dev/urandom >"$dir/suid-$who"
    chmod 6777 "$dir/suid-$who"
    if [[ $who == user ]]; then
      setpriv --reuid=65534 --regid=65534 --clear-groups fallocate -p -o 0 -l 10 "$dir/suid-$who" ||
        fail "a user's punch of $dir/suid-$who"
    else
      fallocate -p -o 0 -l 10 "$dir/suid-$who"
    fi
  done
  want=$(stat -c %a "$L/suid-$who")
  [[ $(stat -c %a "$MNT/suid-$who") == "$want" ]] ||
    fail "after $who's punch the mode is $(stat -c %a "$MNT/suid-$who"), the local file's $want"
  [[ $(rcli hget "$PREFIX:INODE:$(stat -c %i "$MNT/suid-$who")" mode) == "$(printf %04o "0$want")" ]] ||
    fail "after $who's punch the server holds mode $(rcli hget "$PREFIX:INODE:$(stat -c %i "$MNT/suid-$who")" mode)"
  note "$who's punch of a setuid and setgid file leaves mode $want, as on the local file"
done
check_consistency || fail "inconsistent after the punches"
unmount_fs

# Steps, and the cost of a sparse range, on 4 KiB blocks.
PREFIX=$PREFIX-small
mount_fs --block-size 4096
head -c $((2600 * 4096 + 11)) /dev/urandom >"$L/long"
cp "$L/long" "$MNT/long"
INO=$(stat -c %i "$MNT/long")
read -r n0 t0 < <(trips fallocate)
both long --punch-hole -o $((10 * 4096 + 5)) -l $((2580 * 4096))
read -r n1 t1 < <(trips fallocate)
((n1 == n0 + 1)) || fail "the daemon answered $((n1 - n0)) fallocate requests, 1 expected"
same long "a punch of 2,579 blocks"
[[ $(rcli --scan --pattern "$PREFIX:BLK:$INO:*" | wc -l) == 22 ]] ||
  fail "$(rcli --scan --pattern "$PREFIX:BLK:$INO:*" | wc -l) blocks left, 22 expected (0-10, 2590-2600)"
note "a punch of 2,579 blocks in steps of 1,024: about $((t1 - t0)) round trips"

HUGE=$((1 << 50))
truncate -s "$HUGE" "$MNT/huge"
printf 'head of the file' | dd of="$MNT/huge" conv=notrunc status=none
printf 'tail' | dd of="$MNT/huge" bs=1 seek=$((HUGE - 4)) conv=notrunc status=none
INO=$(stat -c %i "$MNT/huge")
read -r n0 t0 < <(trips fallocate)
fallocate -p -o 4 -l $((HUGE - 6)) "$MNT/huge"
read -r n1 t1 < <(trips fallocate)
((n1 == n0 + 1)) || fail "the daemon answered $((n1 - n0)) fallocate requests, 1 expected"
[[ $(head -c 16 "$MNT/huge" | od -An -c | tr -d ' \n') == 'head\0\0\0\0\0\0\0\0\0\0\0\0' ]] ||
  fail "the head of the 1 PiB file: $(head -c 16 "$MNT/huge" | od -An -c)"
[[ $(tail -c 4 "$MNT/huge" | od -An -c | tr -d ' \n') == '\0\0il' ]] ||
  fail "the tail of the 1 PiB file: $(tail -c 4 "$MNT/huge" | od -An -c)"
[[ $(stat -c %s "$MNT/huge") == "$HUGE" ]] || fail "the 1 PiB file's size moved"
[[ $(rcli strlen "$PREFIX:BLK:$INO:0") == 4 && $(rcli strlen "$PREFIX:BLK:$INO:$((HUGE / 4096 - 1))") == 4096 ]] ||
  fail "the 1 PiB file's blocks are not cut and zeroed as the range says"
note "a punch over a 1 PiB file with data at both ends: about $((t1 - t0)) round trips"
rm "$MNT/huge"
check_consistency || fail "inconsistent after the punches in steps"
unmount_fs

mount_fs -o writeback
head -c $((4 * 4096)) /dev/urandom >"$L/wb"
python3 - "$MNT/wb" "$L/wb" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
with open(sys.argv[2], 'rb') as f:
    data = f.read()
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, data)  # (in the kernel's cache: not written back yet)
if libc.fallocate(fd, 3, 4096 + 7, 2 * 4096) != 0:
    sys.exit('fallocate: ' + os.strerror(ctypes.get_errno()))
os.close(fd)
fd = os.open(sys.argv[2], os.O_RDWR)
libc.fallocate(fd, 3, 4096 + 7, 2 * 4096)
os.close(fd)
PY
same wb "a writeback mount's punch"
unmount_fs
mount_fs
same wb "a writeback mount's punch, after a remount"
[[ $(rcli exists "$PREFIX:BLK:$(stat -c %i "$MNT/wb"):2") == 0 ]] || fail "the block covered whole is on the server"
unmount_fs
check_consistency || fail "inconsistent after the writeback mount's punch"
note "a writeback mount's dirty pages are written back before the hole"
