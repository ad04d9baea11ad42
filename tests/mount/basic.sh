#!/usr/bin/env bash
# basic: the POSIX parity suite. posix_parity.py makes every call on the
# mount and on a native directory and fails on any errno or stat mismatch;
# allow_other lets its forked children (other uids) reach the mount. The
# keys left behind must then form a consistent filesystem. SIGUSR1 then
# makes the daemon log what it has served (op_stats.hpp), and the mount
# goes on. The mount shows its default source and type; a remount with
# fsname= and subtype= shows those; --no-default-permissions lets any user
# read a 0600 file, which a default mount refuses.
. "$(dirname "$0")/lib.sh"

mount_fs -o allow_other
# what mount(8) and df(1) show (redisfs(1), fsname= and subtype=: by
# default redisfs:PREFIX and fuse.redisfs)
[[ $(findmnt -n -o SOURCE,FSTYPE "$MNT" | tr -s ' ') == "redisfs:$PREFIX fuse.redisfs" ]] ||
  fail "the mount shows as '$(findmnt -n -o SOURCE,FSTYPE "$MNT")', not 'redisfs:$PREFIX fuse.redisfs'"
[[ $(df --output=source "$MNT" | tail -1) == "redisfs:$PREFIX" ]] || fail "df shows '$(df --output=source "$MNT" | tail -1)'"
# files up to 1 PiB (redisfs(1), LIMITS): a file that size takes writes
# up to its last byte (a write across the limit is cut short there, as
# under RLIMIT_FSIZE), and a byte more is EFBIG, by truncate and by write
python3 - "$MNT/huge" <<'PY' || fail "the 1 PiB file size limit"
import errno, os, sys
PIB = 1 << 50
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
os.ftruncate(fd, PIB)
assert os.fstat(fd).st_size == PIB, os.fstat(fd).st_size
assert os.pwrite(fd, b"xy", PIB - 1) == 1
assert os.pread(fd, 2, PIB - 1) == b"x"
for what, call in (("truncate", lambda: os.ftruncate(fd, PIB + 1)), ("write", lambda: os.pwrite(fd, b"z", PIB))):
    try:
        call()
    except OSError as e:
        assert e.errno == errno.EFBIG, (what, e)
    else:
        raise AssertionError(what + " past 1 PiB succeeded")
os.close(fd)
assert os.stat(sys.argv[1]).st_size == PIB, os.stat(sys.argv[1]).st_size
with open(sys.argv[1], "rb") as f:
    f.seek(PIB - 1)
    assert f.read() == b"x"
os.unlink(sys.argv[1])
PY
python3 "$HERE/posix_parity.py" "$MNT"
check_consistency

log=${MOUNT_LOGS[$MNT]}
kill -USR1 "$DAEMON_PID"
for ((i = 0; i < 100; i++)); do
  grep -q 'stats: caches: ' "$log" && break  # (the last line)
  sleep 0.05
done
grep -q 'stats: [0-9]* requests in [0-9]* s; redis: [0-9]* round trips' "$log" || fail "no stats after SIGUSR1: $(tail -3 "$log")"
grep -Eq 'stats: lookup +[0-9]+ requests, mean +[0-9.]+ us' "$log" || fail "no lookup count in the stats"
# what the caches hold, against the bounds of a default mount
grep -Eq 'stats: caches: attributes of [0-9]+ of 4096 inodes, names of listed directories [0-9]+ of 65536, names removed [0-9]+ of [0-9]+$' "$log" ||
  fail "no caches line in the stats: $(grep 'stats: caches' "$log")"
touch "$MNT/after-stats" || fail "the mount stopped working after SIGUSR1"
unmount_fs
check_consistency --no-orphans

mount_fs -o fsname=shared-data,subtype=rfs
[[ $(findmnt -n -o SOURCE,FSTYPE "$MNT" | tr -s ' ') == "shared-data fuse.rfs" ]] ||
  fail "with fsname= and subtype=, the mount shows as '$(findmnt -n -o SOURCE,FSTYPE "$MNT")'"
unmount_fs

# --no-default-permissions (redisfs(1)): neither the kernel nor redisfs
# checks permissions, so any user who reaches the mount reads a 0600 file;
# by default the kernel refuses them
mount_fs -o allow_other
printf secret >"$MNT/private"
chmod 0600 "$MNT/private"
if setpriv --reuid=65534 --regid=65534 --clear-groups cat "$MNT/private" >/dev/null 2>&1; then
  fail "another user read a 0600 file on a default mount"
fi
unmount_fs
mount_fs -o allow_other --no-default-permissions
[[ $(setpriv --reuid=65534 --regid=65534 --clear-groups cat "$MNT/private" 2>&1) == secret ]] ||
  fail "with --no-default-permissions another user cannot read a 0600 file"
unmount_fs
