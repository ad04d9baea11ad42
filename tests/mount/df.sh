#!/usr/bin/env bash
# df: statfs reports the filesystem's own data as used, not the server's
# memory: Used is the bytes the files hold rounded up to 4 KiB (the statfs
# unit), so writing N bytes moves it by N, block-rounded, and deleting them
# moves it back; Available is what the
# server can still hold (maxmemory - used_memory), and Size is Used +
# Available, never more than maxmemory.
REDIS_ARGS=(--maxmemory 256mb --maxmemory-policy noeviction)
. "$(dirname "$0")/lib.sh"
need_tools df

df_field() {  # FIELD: df's number in bytes for $MNT
  df -B1 --output="$1" "$MNT" | tail -1 | tr -d ' '
}
info_field() {
  rcli info memory | tr -d '\r' | awk -F: -v f="$1" '$1 == f { print $2 }'
}

mount_fs --write-through  # every write on the server when write(2) returns
echo seed >"$MNT/seed"  # 5 bytes: one unit
used0=$(df_field used)
((used0 == 4096)) || fail "Used is $used0 with 5 bytes stored, want 4096"
write=$((3 * 1024 * 1024 + 1000))
head -c $write /dev/urandom >"$MNT/data"
used1=$(df_field used)
want=$(((5 + write + 4095) / 4096 * 4096))  # all the data, rounded up once
((used1 == want)) || fail "Used is $used1 with 5 + $write bytes stored, want $want"
server=$(info_field used_memory)
((used1 < server - 4096)) || fail "Used ($used1) is the server's used_memory ($server)"
# (one statfs for the three: the server's memory moves between two calls)
read -r size used avail < <(df -B1 --output=size,used,avail "$MNT" | tail -1)
((size <= 256 * 1024 * 1024)) || fail "Size $size is more than maxmemory"
((size == used + avail)) || fail "Size $size is not Used $used + Available $avail"
left=$((256 * 1024 * 1024 - $(info_field used_memory)))
diff=$((avail - left))
((${diff#-} < 1024 * 1024)) || fail "Available $avail is not maxmemory - used_memory ($left)"
note "Used $used0 -> $used1 for $write bytes; Size $size, Available $avail; server used_memory $server"
rm "$MNT/data"
# The kernel's release of the file may follow the unlink: its data is freed then.
for ((i = 0; i < 200; i++)); do
  used2=$(df_field used)
  ((used2 == used0)) && break
  sleep 0.05
done
((used2 == used0)) || fail "Used is $used2 after the delete, want $used0"
unmount_fs
