#!/usr/bin/env bash
# enospc: a full server (maxmemory, noeviction) is ENOSPC, not corruption.
# A 40 MB write into 20 MB fails with "No space left on device", the
# filesystem stays consistent, and once the file is deleted writes work.
# While the server is full, only growth fails: files open read-only (and
# read), truncate, chmod, rename, unlink, rmdir and a hole punched work
# (a copy within the mount is ENOSPC), a read-write mount starts,
# and every open is counted out again at its close (no OPEN key is left
# behind).
REDIS_ARGS=(--maxmemory 20mb --maxmemory-policy noeviction)
. "$(dirname "$0")/lib.sh"

mount_fs
echo before >"$MNT/small"
head -c 300000 /dev/urandom >"$MNT/trunc"
head -c 300000 /dev/urandom >"$MNT/shrink"
mkdir "$MNT/empty-dir"
out=$(dd if=/dev/urandom of="$MNT/big" bs=1M count=40 2>&1) && fail "a 40 MB write into a 20 MB server succeeded"
[[ $out == *"No space left on device"* ]] || fail "dd failed without ENOSPC: $out"
note "dd: $(tail -1 <<<"$out")"
check_consistency
[[ $(cat "$MNT/small") == before ]] || fail "an old file is unreadable on a full server"
size=$(stat -c %s "$MNT/big")
ino=$(stat -c %i "$MNT/big")
note "big is $size bytes"
out=$(touch "$MNT/new-while-full" 2>&1) || note "create on a full server: $out"
out=$(mkdir "$MNT/dir-while-full" 2>&1) || note "mkdir on a full server: $out"
check_consistency

# Make sure the server is over its limit (not just short of room for a
# block): every command that may grow memory is refused from here on.
used=$(rcli info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
rcli config set maxmemory $((used - 2 * 1024 * 1024)) >/dev/null
out=$(rcli set "$PREFIX-probe" x 2>&1) || true
[[ $out == *OOM* ]] || fail "the server is not full: SET answered $out"
out=$(echo more 2>&1 >>"$MNT/small") && fail "an append on a full server succeeded"
[[ $out == *"No space left on device"* ]] || fail "an append on a full server failed without ENOSPC: $out"
# reads and read-only opens
[[ $(cat "$MNT/small") == before ]] || fail "cat of an old file on a full server"
exec 3<"$MNT/small"
read -r line <&3
[[ $line == before ]] || fail "read through an O_RDONLY descriptor on a full server: $line"
exec 3<&-
python3 - "$MNT/small" <<'PY' || fail "open(O_RDONLY) on a full server"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.read(fd, 100) == b"before\n"
os.close(fd)
PY
# truncation (to zero and inside a block), chmod; growth by truncate fails
truncate -s 0 "$MNT/trunc" || fail "truncate -s 0 on a full server"
[[ $(stat -c %s "$MNT/trunc") == 0 ]] || fail "truncate -s 0 did not empty the file"
truncate -s 1000 "$MNT/shrink" || fail "truncate -s 1000 (inside a block) on a full server"
[[ $(stat -c %s "$MNT/shrink") == 1000 ]] || fail "truncate -s 1000 did not shrink the file"
out=$(truncate -s 50M "$MNT/small" 2>&1) && fail "growing a file with truncate on a full server succeeded"
[[ $out == *"No space left on device"* ]] || fail "truncate to grow failed without ENOSPC: $out"
chmod 0600 "$MNT/small" || fail "chmod on a full server"
mv "$MNT/small" "$MNT/renamed" || fail "rename on a full server"
mv "$MNT/renamed" "$MNT/small"
# unlink (also of a file held open), rmdir
exec 4<"$MNT/shrink"
rm "$MNT/shrink" || fail "unlink of an open file on a full server"
head -c 10 <&4 >/dev/null || fail "reading an unlinked open file on a full server"
exec 4<&-
rmdir "$MNT/empty-dir" || fail "rmdir on a full server"
# a hole punched frees space (punch.lua runs on a full server); a copy
# within the mount (copy_file_range: the server copies) grows it: ENOSPC
B=$(rcli hget "$PREFIX:SB" block_size)
((size >= 4 * B)) || fail "big holds $size bytes, too little to punch in"
n0=$(fs_keys "BLK:$ino:*" | wc -l)
fallocate --punch-hole -o "$B" -l $((2 * B)) "$MNT/big" || fail "a hole punched on a full server"
n1=$(fs_keys "BLK:$ino:*" | wc -l)
((n1 == n0 - 2)) || fail "a punch of two whole blocks on a full server left $n1 of $n0 blocks"
[[ $(stat -c %s "$MNT/big") == "$size" ]] || fail "a punch on a full server changed the size"
out=$(python3 -c '
import os, sys
fi, fo = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_WRONLY)
os.copy_file_range(fi, fo, 4 * int(sys.argv[3]), 0, 0)' "$MNT/big" "$MNT/trunc" "$B" 2>&1) &&
  fail "a copy_file_range on a full server succeeded"
[[ $out == *"No space left on device"* ]] || fail "a copy_file_range on a full server failed without ENOSPC: $out"
[[ $(stat -c %s "$MNT/trunc") == 0 ]] || fail "a refused copy_file_range changed its destination"
rm "$MNT/big" || fail "unlink on a full server"
# a second read-write mount starts on a full server (its session key is
# written), and the first one's session key stays refreshed
mount_at "$T/second"
[[ $(cat "$T/second/small") == before ]] || fail "a mount started on a full server does not read"
unmount_fs "$T/second"
# every close was counted on the server
for ((i = 0; i < 100; i++)); do
  [[ -z $(fs_keys 'OPEN:*') ]] && break
  sleep 0.05
done
[[ -z $(fs_keys 'OPEN:*') ]] || fail "open counts left after closing on a full server: $(fs_keys 'OPEN:*')"
check_consistency
rcli config set maxmemory 20mb >/dev/null

rm -f "$MNT/new-while-full"
rmdir "$MNT/dir-while-full" 2>/dev/null || true
for ((i = 0; i < 100; i++)); do
  [[ -z $(fs_keys "BLK:$ino:*") ]] && break
  sleep 0.05
done
[[ -z $(fs_keys "BLK:$ino:*") ]] || fail "blocks left after deleting the file: $(fs_keys "BLK:$ino:*" | wc -l)"
head -c 5000000 /dev/urandom >"$T/data"
cp "$T/data" "$MNT/after"
cmp "$T/data" "$MNT/after" || fail "a write after freeing space reads back wrong"
echo more >>"$MNT/small"
mkdir "$MNT/dir"
unmount_fs
check_consistency --no-orphans --no-opens
