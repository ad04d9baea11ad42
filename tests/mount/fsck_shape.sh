#!/usr/bin/env bash
# fsck_shape: a type, a size or a parent damaged on the server
# (redisfs-snap(1), fsck --repair). A mount fails the calls that need the
# inode (EIO), and a directory whose type is gone hides all it holds;
# fsck --repair sets them from what the other keys tell: a type (a file's
# from its data, a directory's from its parent field and entries, the
# root's), then checks those inodes again; a file's size to where the data
# of its blocks ends (every byte kept; a hole at the end is not), a
# symlink's to its target's length, a directory's parent from the entry
# naming it, a file's parent removed. Then the mount serves them again, the
# data byte for byte.
. "$(dirname "$0")/lib.sh"
need_snap

mount_fs
head -c 100003 /dev/urandom >"$T/data"
cp "$T/data" "$MNT/data"
# a file whose end is a hole: 10,003 bytes of data, then 1 MiB of nothing
printf 'end' | dd of="$MNT/tail" bs=1 seek=10000 conv=notrunc status=none
truncate -s 1M "$MNT/tail"
head -c 10000 /dev/zero >"$T/tail"
printf 'end' >>"$T/tail"
mkdir -p "$MNT/sub/deeper" "$MNT/typeless/in"
echo inside >"$MNT/sub/deeper/f"
ln -s sub/deeper/f "$MNT/link"
echo held >"$MNT/typeless/in/f"
cp "$T/data" "$MNT/typed"
declare -A ino
for f in data tail sub link typeless typed; do
  ino[$f]=$(stat -c %i "$MNT/$f")
done
unmount_fs

rcli hset "$PREFIX:INODE:${ino[data]}" size "100003 bytes" >/dev/null
rcli hset "$PREFIX:INODE:${ino[data]}" parent "/" >/dev/null
rcli hdel "$PREFIX:INODE:${ino[tail]}" size >/dev/null
rcli hset "$PREFIX:INODE:${ino[sub]}" parent "1.0" >/dev/null
rcli hset "$PREFIX:INODE:${ino[link]}" size "" >/dev/null
rcli hdel "$PREFIX:INODE:${ino[typeless]}" type >/dev/null
rcli hset "$PREFIX:INODE:${ino[typed]}" type regular nlink 3 >/dev/null
mount_fs -o attr_timeout=0,entry_timeout=0
for f in data tail sub link typeless typeless/in/f typed; do
  expect_fail "Input/output error" stat "$MNT/$f"
done
unmount_fs
# the root's type gone: the whole tree is out of reach
rcli hdel "$PREFIX:INODE:1" type >/dev/null
mount_fs -o attr_timeout=0,entry_timeout=0
expect_fail "Input/output error" ls "$MNT/sub"
unmount_fs

out=$(snap fsck "$PREFIX" --repair 2>&1) || fail "fsck --repair: $out"
expect_said "$out" "INODE:${ino[data]}: inode ${ino[data]}: malformed field 'size' (the repair sets 100003, where the data" \
  "INODE:${ino[data]}: inode ${ino[data]}: malformed field 'parent' (the repair removes it: only a directory" \
  "INODE:${ino[tail]}: inode ${ino[tail]}: no 'size' field (the repair sets 10003, where the data of its blocks ends: a hole at its end" \
  "INODE:${ino[sub]}: parent cannot be read, but the directory is named by 'sub' in directory 1" \
  "INODE:${ino[link]}: inode ${ino[link]}: malformed field 'size' (the repair sets 12, its target's length)" \
  "INODE:1: inode 1: no 'type' field (the repair sets type dir, which a parent field, being the root and directory entries tell, and the inode is then checked again) (repaired)" \
  "INODE:${ino[typeless]}: inode ${ino[typeless]}: no 'type' field (the repair sets type dir, which a parent field and directory entries tell" \
  "INODE:${ino[typed]}: inode ${ino[typed]}: unknown type 'regular' (the repair sets type file, which a size and data blocks tell" \
  "INODE:${ino[typed]}: nlink is 3, but 1 entry names it (repaired)"
[[ $out != *"delete"* ]] || fail "fsck --repair deleted something: $out"
snap -q fsck "$PREFIX" || fail "not clean after the repair"
note "fsck --repair: $(tail -1 <<<"$out")"

mount_fs
cmp "$MNT/data" "$T/data" || fail "the file whose size was damaged does not read back"
cmp "$MNT/tail" "$T/tail" || fail "the file whose size was missing does not read back its data"
[[ $(stat -c %s "$MNT/tail") == 10003 ]] || fail "the file's size is $(stat -c %s "$MNT/tail"), want 10003"
[[ $(cat "$MNT/link") == inside ]] || fail "the symlink does not lead to its file"
cmp "$MNT/typed" "$T/data" || fail "the file whose type was damaged does not read back"
[[ $(stat -c %F:%h "$MNT/typed") == "regular file:1" ]] || fail "typed: $(stat -c %F:%h "$MNT/typed")"
[[ $(cat "$MNT/typeless/in/f") == held ]] || fail "what the directory whose type was gone holds does not read back"
[[ $(stat -c %F "$MNT/typeless") == directory ]] || fail "typeless: $(stat -c %F "$MNT/typeless")"
[[ $(stat -c %i "$MNT/sub/..") == "$(stat -c %i "$MNT")" ]] || fail "sub/.. is not the root"
[[ $(cd "$MNT/sub/deeper/.." && pwd -P) == "$MNT/sub" ]] || fail "sub/deeper/.. is not sub"
echo more >>"$MNT/data"
unmount_fs
check_consistency || fail "inconsistent at the end"
