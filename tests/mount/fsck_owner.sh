#!/usr/bin/env bash
# fsck_owner: an owner or a mode damaged on the server (redisfs-snap(1),
# fsck --repair). A mount fails only the calls that need the inode (EIO;
# a setuid file whose owner is missing is not served as root's);
# fsck --repair never guesses them: it sets them so that only root may
# reach the inode (owner 0, mode 0000, also the setuid mode of a file
# whose owner it sets: no setuid file becomes root's), the data is kept,
# and chown and chmod on a mount set them again. Run as root, with a user
# (nobody) who must be refused until then.
. "$(dirname "$0")/lib.sh"
need_snap
need_tools setpriv

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

mount_fs -o allow_other
head -c 100000 /dev/urandom >"$T/data"
cp "$T/data" "$MNT/suid"
cp "$T/data" "$MNT/moded"
cp "$T/data" "$MNT/nouid"
chown 65534:65534 "$MNT/suid" "$MNT/moded" "$MNT/nouid"
chmod 4755 "$MNT/suid" "$MNT/nouid"
chmod 0644 "$MNT/moded"
as_nobody cat "$MNT/suid" >/dev/null || fail "nobody cannot read its own file before the damage"
suid=$(stat -c %i "$MNT/suid")
moded=$(stat -c %i "$MNT/moded")
nouid=$(stat -c %i "$MNT/nouid")
unmount_fs

rcli hset "$PREFIX:INODE:$suid" uid "nobody" >/dev/null
rcli hset "$PREFIX:INODE:$moded" mode "rw-r--r--" >/dev/null
rcli hdel "$PREFIX:INODE:$nouid" uid >/dev/null
mount_fs -o allow_other,attr_timeout=0,entry_timeout=0
expect_fail "Input/output error" stat "$MNT/suid"
expect_fail "Input/output error" stat "$MNT/nouid"
unmount_fs

out=$(snap fsck "$PREFIX" --repair 2>&1) || fail "fsck --repair: $out"
expect_said "$out" "INODE:$suid: inode $suid: malformed field 'uid' (the repair sets 0, root, and the mode 0000" \
  "INODE:$suid: inode $suid: mode 4755 (its owner cannot be read: the repair sets the mode 0000 with it" \
  "INODE:$nouid: inode $nouid: no 'uid' field (the repair sets 0, root, and the mode 0000" \
  "INODE:$nouid: inode $nouid: mode 4755 (its owner cannot be read" \
  "INODE:$moded: inode $moded: malformed field 'mode' (the repair sets 0000"
snap -q fsck "$PREFIX" || fail "not clean after the repair"
note "fsck --repair: $(tail -1 <<<"$out")"

mount_fs -o allow_other
for f in suid nouid; do
  [[ $(stat -c '%a %u %g' "$MNT/$f") == "0 0 65534" ]] ||
    fail "after the repair $f is $(stat -c '%a %u %g' "$MNT/$f"), want mode 0, owner 0 (root), group kept"
done
[[ $(stat -c '%a %u %g' "$MNT/moded") == "0 65534 65534" ]] ||
  fail "after the repair moded is $(stat -c '%a %u %g' "$MNT/moded"), want mode 0, owner and group kept"
cmp "$MNT/suid" "$T/data" || fail "root does not read the repaired file's data"
cmp "$MNT/moded" "$T/data" || fail "root does not read the repaired file's data"
cmp "$MNT/nouid" "$T/data" || fail "root does not read the repaired file's data"
for f in suid moded nouid; do
  out=$(as_nobody cat "$MNT/$f" 2>&1 >/dev/null) && fail "nobody reads $f after the repair (mode 0000)"
  [[ $out == *"Permission denied"* ]] || fail "nobody's read of $f after the repair: $out"
done
as_nobody chmod 0600 "$MNT/moded" || fail "the owner cannot chmod its file after the repair"
chown 65534 "$MNT/suid" || fail "root's chown after the repair"
chmod 0700 "$MNT/suid" || fail "root's chmod after the repair"
for f in suid moded; do
  as_nobody cmp "$MNT/$f" "$T/data" || fail "nobody does not read $f once chown and chmod set it again"
done
unmount_fs
check_consistency || fail "inconsistent at the end"
