#!/usr/bin/env bash
# persist_remount: what is written survives an unmount and a mount again,
# bit for bit (content, stat, xattrs); and an orphan that a killed daemon
# left behind (a file unlinked while open) is freed by a later mount once
# the dead mount's session key has expired.
. "$(dirname "$0")/lib.sh"

# the first mount daemonizes, as users run it
mount_daemon_at "$MNT" --redis "unix://$SOCK" --prefix "$PREFIX"
mkdir -p "$MNT/d/sub" "$MNT/empty"
head -c 1000000 /dev/urandom >"$MNT/d/random"
printf 'small\n' >"$MNT/small"
: >"$MNT/empty-file"
truncate -s 5000000 "$MNT/sparse"
printf 'X' | dd of="$MNT/sparse" bs=1 seek=3000000 conv=notrunc status=none
ln "$MNT/small" "$MNT/d/sub/hardlink"
ln -s ../small "$MNT/d/symlink"
ln -s "dangling target" "$MNT/dangling"
mkfifo "$MNT/fifo"
mknod "$MNT/chr" c 1 3
printf 'odd name' >"$MNT/$(printf 'sp ace\nnl\xff')"
setfattr -n user.a -v 'value a' "$MNT/small"
setfattr -n user.bin -v 0x00ff00 "$MNT/d/random"
setfattr -n user.dir -v d "$MNT/d"
chmod 2750 "$MNT/d/sub"
chmod 4711 "$MNT/empty-file"
chown 1234:5678 "$MNT/d/random"
touch -h -d '2001-02-03 04:05:06.123456789' "$MNT/d/symlink"
touch -d '1999-12-31 23:59:59.999999999' "$MNT/small"
python3 "$HERE/manifest.py" "$MNT" >"$T/before"
[[ $(wc -l <"$T/before") -ge 13 ]] || fail "manifest too short: $(cat "$T/before")"
unmount_fs
check_consistency --no-orphans

mount_fs
python3 "$HERE/manifest.py" "$MNT" >"$T/after"
diff -u "$T/before" "$T/after" || fail "the tree changed across unmount + mount"
unmount_fs

mount_fs -o attr_timeout=0
python3 "$HERE/manifest.py" "$MNT" >"$T/after2"
diff -u "$T/before" "$T/after2" || fail "the tree changed across a second remount"

# an orphan left by a killed daemon
head -c 200000 /dev/urandom >"$MNT/orphan"
setfattr -n user.o -v 1 "$MNT/orphan"
ino=$(stat -c %i "$MNT/orphan")
exec 3<"$MNT/orphan"
rm "$MNT/orphan"
[[ $(rcli hexists "$PREFIX:ORPHANS" "$ino") == 1 ]] || fail "inode $ino not in ORPHANS while open"
sessions=$(fs_keys 'MOUNT:*')
[[ $(wc -l <<<"$sessions") == 1 && -n $sessions ]] || fail "want one session key, found: $sessions"
ttl=$(rcli pttl "$sessions")
((ttl > 0)) || fail "session key $sessions has no expiry (pttl $ttl): a crashed mount would keep its orphans forever"
kill_daemon
exec 3<&-
[[ $(rcli hexists "$PREFIX:ORPHANS" "$ino") == 1 ]] || fail "the orphan vanished with the daemon: nothing left to test"

# while the dead mount's session key lives, its orphans are left alone
# (another host may still hold the file open under that session)
mount_fs
[[ $(rcli exists "$PREFIX:INODE:$ino") == 1 ]] || fail "orphan $ino purged while its session key is still alive"
unmount_fs

# the key expires (as it would 30 s after the crash): the next mount frees it
rcli pexpire "$sessions" 1 >/dev/null
for ((i = 0; i < 100; i++)); do
  [[ $(rcli exists "$sessions") == 0 ]] && break
  sleep 0.05
done
mount_fs
for ((i = 0; i < 200; i++)); do
  [[ $(rcli hexists "$PREFIX:ORPHANS" "$ino") == 0 ]] && break
  sleep 0.05
done
[[ $(rcli hexists "$PREFIX:ORPHANS" "$ino") == 0 ]] || fail "orphan $ino still in ORPHANS after the next mount"
left=$({ fs_keys "INODE:$ino"; fs_keys "BLK:$ino:*"; fs_keys "XATTR:$ino"; } | tr '\n' ' ')
[[ -z ${left// /} ]] || fail "keys of orphan $ino left: $left"
python3 "$HERE/manifest.py" "$MNT" >"$T/after3"
diff -u "$T/before" "$T/after3" || fail "the tree changed after the crash"
unmount_fs
check_consistency --no-orphans
