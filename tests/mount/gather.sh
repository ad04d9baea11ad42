#!/usr/bin/env bash
# gather: a file this mount created and holds open has its writes and
# attribute changes gathered until close(2) (store_gather.cpp). What the
# README promises of it, checked through two mounts of one filesystem and
# on the server itself:
#   - close-to-open: once close(2) returns, another mount reads every byte
#     and attribute; before it, the server may not have them;
#   - the writing mount sees its own changes at once (fstat, stat, read
#     through another descriptor, ls -l);
#   - fsync sends them; an error the server answers on the way is
#     close(2)'s (ENOSPC);
#   - unlink, rename and link of a file being gathered keep every byte;
#   - -o write_through (and O_APPEND) send every write before write(2)
#     returns.
#   - a snapshot taken meanwhile has what the server had.
# Also: unlink frees a small file nobody holds open at once (no orphan).
. "$(dirname "$0")/lib.sh"
need_binary REDISFS_SNAP_BIN

A=$T/a
B=$T/b
mount_at "$A" -o attr_timeout=0,entry_timeout=0
mount_at "$B" -o attr_timeout=0,entry_timeout=0

# The checks below read the server over a socket of their own (the Redis
# class of check_consistency.py): a subprocess (fork + exec) would close the
# writer's descriptors in the child, and each close(2) is a FLUSH.
export PYTHONPATH=$HERE

# close-to-open, and this mount's own view before close
python3 - "$A" "$B" "$PREFIX" "$SOCK" <<'PY' || fail "close-to-open through two mounts"
import os, sys
from check_consistency import Redis
a, b, prefix, sock = sys.argv[1:]
r = Redis(sock)
fd = os.open(f"{a}/f", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
ino = os.fstat(fd).st_ino
os.write(fd, b"hello ")
os.write(fd, b"world\n")
os.fchmod(fd, 0o600)
os.utime(fd, ns=(1_000_000_000_123, 2_000_000_000_456))
# this mount sees it all at once
st = os.fstat(fd)
assert st.st_size == 12, st
assert st.st_mode & 0o7777 == 0o600, oct(st.st_mode)
assert st.st_mtime_ns == 2_000_000_000_456, st.st_mtime_ns
st = os.stat(f"{a}/f")
assert st.st_size == 12 and st.st_mode & 0o7777 == 0o600, st
# ... and the server has not got it yet: it waits in the mount
assert r.call("HGET", f"{prefix}:INODE:{ino}", "size") == b"0", "the write reached the server before close"
assert r.call("HGET", f"{prefix}:INODE:{ino}", "mode") == b"0644"
os.close(fd)
# close(2) has returned: the other mount sees every byte and attribute
assert r.call("HGET", f"{prefix}:INODE:{ino}", "size") == b"12"
st = os.stat(f"{b}/f")
assert st.st_mode & 0o7777 == 0o600 and st.st_mtime_ns == 2_000_000_000_456, st
assert st.st_atime_ns == 1_000_000_000_123, st  # (before the read below moves it: relatime)
with open(f"{b}/f", "rb") as f:
    assert f.read() == b"hello world\n"
PY

# reading through another descriptor of the same mount sends what waits
python3 - "$A" <<'PY' || fail "a read through the writing mount does not see its writes"
import os, sys
a = sys.argv[1]
fd = os.open(f"{a}/g", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"x" * 5000)
with open(f"{a}/g", "rb") as f:
    assert f.read() == b"x" * 5000
os.pwrite(fd, b"yy", 10)
with open(f"{a}/g", "rb") as f:
    data = f.read()
    assert data[8:14] == b"xxyyxx" and len(data) == 5000, data[:20]
os.close(fd)
PY
[[ $(head -c 14 "$B/g" | tail -c 6) == xxyyxx ]] || fail "B reads g wrong"

# the pieces of a flush that replace all their block holds travel as TMP
# keys (RENAMEd into place), the others inside the script: every byte
# lands, whichever way it went, and no TMP key is left
python3 - "$A" <<'PY' || fail "a gathered file written in overlapping pieces"
import os, sys
a = sys.argv[1]
want = bytearray()
def put(fd, off, data):
    os.pwrite(fd, data, off)
    want[len(want):off] = bytes(max(0, off - len(want)))
    want[off:off + len(data)] = data
fd = os.open(f"{a}/pieces", os.O_CREAT | os.O_WRONLY, 0o644)
put(fd, 0, os.urandom(3000))         # a whole block's content: TMP
put(fd, 0, os.urandom(1500))         # shorter than what the block holds: inline
put(fd, 65536 - 700, os.urandom(2000))  # across a block boundary: the second piece whole
put(fd, 200000, os.urandom(1200))    # past a hole
put(fd, 65536, os.urandom(100))      # short, at a block's start
os.close(fd)
with open(f"{a}/pieces", "rb") as f:
    got = f.read()
assert got == bytes(want), (len(got), len(want))
PY
cmp <(cat "$A/pieces") "$B/pieces" || fail "B reads pieces differently"
[[ -z $(fs_keys "TMP:*") ]] || fail "a flush left TMP keys: $(fs_keys "TMP:*")"

# fsync sends what waits before close
python3 - "$A" "$PREFIX" "$SOCK" <<'PY' || fail "fsync of a file being gathered"
import os, sys
from check_consistency import Redis
a, prefix, sock = sys.argv[1:]
r = Redis(sock)
fd = os.open(f"{a}/s", os.O_CREAT | os.O_WRONLY, 0o644)
ino = os.fstat(fd).st_ino
os.write(fd, b"synced")
os.fsync(fd)
size = r.call("HGET", f"{prefix}:INODE:{ino}", "size")
assert size == b"6", size
os.close(fd)
PY

# unlink, rename and link of a file being gathered
python3 - "$A" <<'PY' || fail "unlink / rename / link of a file being gathered"
import os, sys
a = sys.argv[1]
fd = os.open(f"{a}/u", os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"still here")
os.unlink(f"{a}/u")
assert os.fstat(fd).st_nlink == 0
assert os.pread(fd, 100, 0) == b"still here"
os.close(fd)
fd = os.open(f"{a}/r1", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"renamed")
os.rename(f"{a}/r1", f"{a}/r2")
os.write(fd, b" twice")
os.link(f"{a}/r2", f"{a}/r3")
assert os.fstat(fd).st_nlink == 2
os.close(fd)
with open(f"{a}/r3", "rb") as f:
    assert f.read() == b"renamed twice"
PY
[[ $(cat "$B/r2") == "renamed twice" ]] || fail "B reads r2 wrong: $(cat "$B/r2")"

# a snapshot taken while a file's writes wait in the mount has the file as
# the server had it: made, empty. (The writer must not fork: the copy runs
# from here, while it waits on a FIFO.)
mkfifo "$T/go"
python3 - "$A" "$T/go" <<'PY' &
import os, sys
a, go = sys.argv[1:]
fd = os.open(f"{a}/snapme", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"after the snapshot")
with open(go + ".ready", "w"):
    pass
with open(go) as f:
    f.read()
os.close(fd)
PY
writer=$!
hold_wait "$T/go.ready"  # (the writer is ready)
"$REDISFS_SNAP_BIN" --redis "unix://$SOCK" --quiet copy "$PREFIX" "$PREFIX-snap" || fail "copy during a write"
echo >"$T/go"
wait "$writer" || fail "the writer failed"
ino=$(rcli hget "$PREFIX-snap:DIR:1" snapme)
[[ -n $ino && $(rcli hget "$PREFIX-snap:INODE:$ino" size) == 0 ]] ||
  fail "the snapshot has more of snapme than the server had: size $(rcli hget "$PREFIX-snap:INODE:$ino" size)"
[[ $(cat "$A/snapme") == "after the snapshot" ]] || fail "snapme after close: $(cat "$A/snapme")"
"$REDISFS_SNAP_BIN" --redis "unix://$SOCK" --quiet delete "$PREFIX-snap" || fail "delete of the snapshot"

# O_APPEND writes are never gathered
python3 - "$A" "$PREFIX" "$SOCK" <<'PY' || fail "O_APPEND write of a new file"
import os, sys
from check_consistency import Redis
a, prefix, sock = sys.argv[1:]
r = Redis(sock)
fd = os.open(f"{a}/log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
ino = os.fstat(fd).st_ino
os.write(fd, b"line\n")
size = r.call("HGET", f"{prefix}:INODE:{ino}", "size")
assert size == b"5", size
os.close(fd)
PY

# a small file nobody holds open is freed by the unlink itself
echo small >"$A/small"
ino=$(stat -c %i "$A/small")
rm "$A/small"
[[ -z $(fs_keys "INODE:$ino") && -z $(fs_keys "BLK:$ino:*") ]] || fail "rm left the keys of a closed small file"
[[ $(rcli hexists "$PREFIX:ORPHANS" "$ino") == 0 ]] || fail "rm of a closed small file made an orphan"
# a big one (past 16 blocks) is an orphan first, purged when the kernel forgets it
head -c $((17 * 65536 + 5)) /dev/urandom >"$A/big"
ino=$(stat -c %i "$A/big")
rm "$A/big"
for ((i = 0; i < 200; i++)); do
  [[ -z $(fs_keys "INODE:$ino") && -z $(fs_keys "BLK:$ino:*") ]] && break
  sleep 0.05
done
[[ -z $(fs_keys "INODE:$ino") && -z $(fs_keys "BLK:$ino:*") ]] || fail "the blocks of a big removed file stay"
check_consistency

unmount_fs "$B"

# close(2) reports what the server refused (ENOSPC), as NFS does, also
# when another operation (here an unlink) had to send the changes first
python3 - "$A" "$SOCK" <<'PY' || fail "close(2) of a file whose gathered writes do not fit"
import errno, os, sys
from check_consistency import Redis
a, sock = sys.argv[1:]
r = Redis(sock)
with open(f"{a}/victim", "w") as f:
    f.write("to be removed")
fd = os.open(f"{a}/full", os.O_CREAT | os.O_WRONLY, 0o644)
fd2 = os.open(f"{a}/full2", os.O_CREAT | os.O_WRONLY, 0o644)
fd3 = os.open(f"{a}/full3", os.O_CREAT | os.O_WRONLY, 0o644)
# the server fills up after the creates: a key of 1 MB, then a limit below
used = int(next(l for l in r.call("INFO", "memory").decode().split() if l.startswith("used_memory:")).split(":")[1])
r.call("SET", "filler-" + a, "x" * 1_000_000)
r.call("CONFIG", "SET", "maxmemory", used + 500_000)
os.write(fd, os.urandom(100_000))  # gathered: the writes themselves succeed
os.write(fd2, os.urandom(100_000))
os.write(fd3, os.urandom(100_000))
def closing_fails(fd):
    try:
        os.close(fd)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    else:
        raise SystemExit("close(2) succeeded on a full server")
closing_fails(fd)
os.unlink(f"{a}/victim")  # works on a full server; it sends full2's changes first, refused
closing_fails(fd2)
try:  # removing an xattr answers for itself (ENODATA here), not with full3's refused changes
    os.removexattr(fd3, "user.none")
except OSError as e:
    assert e.errno == errno.ENODATA, e
else:
    raise SystemExit("removexattr of a missing attribute succeeded")
closing_fails(fd3)  # ... which wait for the close
r.call("DEL", "filler-" + a)
PY
rcli config set maxmemory 0 >/dev/null
rm -f "$A/full" "$A/full2" "$A/full3"
check_consistency

# -o write_through: the server has every write when write(2) returns
unmount_fs "$A"
mount_at "$A" -o write_through
python3 - "$A" "$PREFIX" "$SOCK" <<'PY' || fail "-o write_through"
import os, sys
from check_consistency import Redis
a, prefix, sock = sys.argv[1:]
r = Redis(sock)
fd = os.open(f"{a}/w", os.O_CREAT | os.O_WRONLY, 0o644)
ino = os.fstat(fd).st_ino
os.write(fd, b"through")
size = r.call("HGET", f"{prefix}:INODE:{ino}", "size")
assert size == b"7", size
os.close(fd)
PY
unmount_fs "$A"
check_consistency
