#!/usr/bin/env bash
# enospc: a full server (maxmemory, noeviction) is ENOSPC, not corruption.
# A 40 MB write into 20 MB fails with "No space left on device", the
# filesystem stays consistent, and once the file is deleted writes work.
REDIS_ARGS=(--maxmemory 20mb --maxmemory-policy noeviction)
. "$(dirname "$0")/lib.sh"

mount_fs
echo before >"$MNT/small"
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

rm "$MNT/big"
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
check_consistency --no-orphans
