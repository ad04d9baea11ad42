#!/usr/bin/env bash
# gather_open: on a writeback mount (-o writeback, the only mount of its
# filesystem) the writes and attribute changes of any file open for
# writing, not only one it created, wait in the mount until fsync, close
# or release (store_gather.cpp), and the file gathers on after an fsync.
# What redisfs(1) promises of it, checked on the server itself:
#   - what fsync(2) returned for is on the server, byte for byte, however
#     the writes overlapped, crossed blocks, left holes or grew the file,
#     and the kernel's WRITEs cost no round trip of their own (the
#     sqlite-like transactions below: one round trip an fsync);
#   - close(2) sends the rest (a forked child's close of the descriptor
#     too, and the file gathers on; another descriptor's close, a
#     reader's, leaves the writer's waiting); a truncation, O_APPEND,
#     more than 256 KiB waiting, a read, a rename, a link and an unlink
#     keep every byte;
#   - this mount sees its own changes at once (fstat, stat);
#   - a crash loses what was written after the last fsync, all of it, and
#     nothing fsync returned for;
#   - a snapshot (copy) has every write made before it, also to a file
#     still open.
. "$(dirname "$0")/lib.sh"
need_binary REDISFS_SNAP_BIN

# The checks read the server over a socket of their own (check_consistency's
# Redis class): a subprocess would close the writer's descriptors in the
# child, and each close(2) is a FLUSH.
export PYTHONPATH=$HERE
cat >"$T/server.py" <<'PY'
import os
from check_consistency import Redis

class Mirror:
    """A file open for reading and writing, and the bytes it must hold."""
    def __init__(self, path):
        self.want = bytearray(open(path, "rb").read())
        self.fd = os.open(path, os.O_RDWR)
    def put(self, off, data):
        os.pwrite(self.fd, data, off)
        self.want[len(self.want):off] = bytes(max(0, off - len(self.want)))
        self.want[off:off + len(data)] = data

def server_bytes(r, prefix, ino):
    """The file's bytes as the server has them: its size, its blocks."""
    size = int(r.call("HGET", f"{prefix}:INODE:{ino}", "size"))
    bs = int(r.call("HGET", f"{prefix}:SB", "block_size"))
    out = bytearray()
    for b in range((size + bs - 1) // bs):
        blk = r.call("GET", f"{prefix}:BLK:{ino}:{b}") or b""
        want = min(bs, size - b * bs)
        out += blk[:want] + bytes(want - min(len(blk), want))
    return bytes(out)
PY

# write_trips: the WRITEs so far and the round trips they made, less the
# superblock's security flag's checks (its HEXISTS, Store::drop_capability
# and getxattr: once a second, on whichever request comes first), which a
# WRITE makes whether it is gathered or not: a step that runs for more than
# a second (a loaded machine) has one. So a step's count may go down.
write_trips() {
  local n rt
  read -r n rt < <(trips write)
  echo "$n $((rt - $(command_calls hexists)))"
}

mount_fs -o writeback
head -c 300000 /dev/urandom >"$MNT/db"
ino=$(stat -c %i "$MNT/db")

# sqlite-like transactions on a file that exists: a few pages here and
# there, overlapping, one past the end, then fsync
read -r writes0 write_trips0 < <(write_trips)
read -r fsyncs0 fsync_trips0 < <(trips fsync)
python3 - "$MNT" "$PREFIX" "$SOCK" "$ino" "$T/server.py" <<'PY' || fail "transactions on an existing file"
import os, random, sys
mnt, prefix, sock, ino, helper = sys.argv[1:]
exec(open(helper).read())
r = Redis(sock)
path = f"{mnt}/db"
m = Mirror(path)
fd, want, put = m.fd, m.want, m.put
rng = random.Random(7)
for t in range(20):
    before = server_bytes(r, prefix, ino)
    for _ in range(3):
        put(rng.randrange(0, len(want) // 4096) * 4096, os.urandom(4096))
    put(rng.randrange(0, len(want)), os.urandom(rng.randrange(1, 9000)))  # unaligned, maybe across a block
    if t % 5 == 4:
        put(len(want) + rng.randrange(0, 70000), os.urandom(5000))  # past the end, past a hole
    st = os.fstat(fd)
    assert st.st_size == len(want), (st.st_size, len(want))
    os.fsync(fd)
    got = server_bytes(r, prefix, ino)
    assert got == bytes(want), f"transaction {t}: the server has {len(got)} bytes, {len(want)} written"
    assert before != got, f"transaction {t} changed nothing on the server"
    assert os.stat(path).st_size == len(want)
os.close(fd)
assert server_bytes(r, prefix, ino) == bytes(want)
PY
read -r writes1 write_trips1 < <(write_trips)
read -r fsyncs1 fsync_trips1 < <(trips fsync)
((writes1 > writes0)) || fail "the kernel sent no WRITE: this case tests nothing"
((write_trips1 <= write_trips0)) ||
  fail "the WRITEs of a file open on a writeback mount made $((write_trips1 - write_trips0)) round trips of their own ($((writes1 - writes0)) WRITEs): not gathered"
((fsyncs1 - fsyncs0 == 20 && fsync_trips1 - fsync_trips0 <= 20)) ||
  fail "20 fsyncs made $((fsync_trips1 - fsync_trips0)) round trips ($((fsyncs1 - fsyncs0)) FSYNCs): more than one each"

# A close(2) of one descriptor of the open, not the last (a forked child
# exits): what waits goes, and the writes that follow still wait.
read -r writes0 write_trips0 < <(write_trips)
python3 - "$MNT" "$PREFIX" "$SOCK" "$ino" "$T/server.py" <<'PY' || fail "a forked child's close of the descriptor"
import os, sys
mnt, prefix, sock, ino, helper = sys.argv[1:]
exec(open(helper).read())
r = Redis(sock)
m = Mirror(f"{mnt}/db")
m.put(4096, os.urandom(8192))
pid = os.fork()
if pid == 0:
    os._exit(0)  # (its copy of the descriptor closes: a FLUSH)
os.waitpid(pid, 0)
assert server_bytes(r, prefix, ino) == bytes(m.want), "the child's close(2) did not send what waited"
before = server_bytes(r, prefix, ino)
for i in range(10):
    m.put(i * 12288, os.urandom(4096))
assert server_bytes(r, prefix, ino) == before, "writes after the child's close went to the server at once"
os.fsync(m.fd)
assert server_bytes(r, prefix, ino) == bytes(m.want)
os.close(m.fd)
PY
read -r writes1 write_trips1 < <(write_trips)
((writes1 - writes0 >= 10)) || fail "the kernel sent $((writes1 - writes0)) WRITEs: this case tests nothing"
((write_trips1 <= write_trips0)) ||
  fail "after a forked child's close(2), $((write_trips1 - write_trips0)) WRITEs went to the server at once: not gathered"

# Another descriptor of the file (a reader's, opened before the writer's)
# closed while the writer's is open: its RELEASE is not the file's last,
# so the writer's writes still wait.
read -r writes0 write_trips0 < <(write_trips)
python3 - "$MNT" "$PREFIX" "$SOCK" "$ino" "$T/server.py" <<'PY' || fail "a reader's close beside the writer"
import os, sys, time
mnt, prefix, sock, ino, helper = sys.argv[1:]
exec(open(helper).read())
r = Redis(sock)
time.sleep(0.3)  # (the step before's RELEASE lands first: a RELEASE comes after close(2) returned)
reader = os.open(f"{mnt}/db", os.O_RDONLY)
os.read(reader, 100)
fd = os.open(f"{mnt}/db", os.O_RDWR)
want = bytearray(server_bytes(r, prefix, ino))  # (all of it: the step before closed the file)
def put(off, data):
    os.pwrite(fd, data, off)
    want[off:off + len(data)] = data
put(0, os.urandom(4096))
os.close(reader)
time.sleep(0.3)  # (its RELEASE lands)
for i in range(10):
    put(i * 12288 + 4096, os.urandom(4096))
os.fsync(fd)
assert server_bytes(r, prefix, ino) == bytes(want)
os.close(fd)
PY
read -r writes1 write_trips1 < <(write_trips)
((writes1 - writes0 >= 10)) || fail "the kernel sent $((writes1 - writes0)) WRITEs: this case tests nothing"
((write_trips1 <= write_trips0)) ||
  fail "after a reader's close(2), $((write_trips1 - write_trips0)) of the writer's WRITEs went to the server at once"

# what waits, whatever comes between: a read, more than the 256 KiB bound,
# a truncation (down and up), chmod and utimes, a rename; then close
python3 - "$MNT" "$PREFIX" "$SOCK" "$ino" "$T/server.py" <<'PY' || fail "an existing file's writes with other changes between"
import os, sys
mnt, prefix, sock, ino, helper = sys.argv[1:]
exec(open(helper).read())
r = Redis(sock)
path = f"{mnt}/db"
m = Mirror(path)
fd, want, put = m.fd, m.want, m.put
put(10, b"first")
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # (all clean since the fsync: the kernel drops them)
put(20, b"second")  # (a part of a page it no longer holds: it READs the page first)
assert os.pread(fd, 6, 20) == b"second"
assert os.pread(fd, 5, 262144) == bytes(want[262144:262149])  # (a READ)
for i in range(100):  # 400 KiB in pieces that do not follow each other
    put((i * 7919) % 600000, os.urandom(4096))
os.ftruncate(fd, 150000)
del want[150000:]
put(160000, b"after a hole")
os.ftruncate(fd, 170000)
want[len(want):170000] = bytes(170000 - len(want))
os.fchmod(fd, 0o600)
os.utime(fd, ns=(1_000_000_000_123, 2_000_000_000_456))
os.rename(path, f"{mnt}/db2")
put(0, b"renamed")
st = os.fstat(fd)
assert st.st_size == len(want) and st.st_mode & 0o7777 == 0o600, st
os.close(fd)
assert server_bytes(r, prefix, ino) == bytes(want), "close(2) did not leave the file's bytes on the server"
assert r.call("HGET", f"{prefix}:INODE:{ino}", "mode") == b"0600"
st = os.stat(f"{mnt}/db2")
assert st.st_size == len(want) and st.st_mtime_ns != 2_000_000_000_456, st  # (the write after utimes moved it)
with open(f"{mnt}/db2", "rb") as f:
    assert f.read() == bytes(want)
PY

# O_APPEND through the writeback cache, and a link and an unlink of a file open
python3 - "$MNT" "$PREFIX" "$SOCK" "$ino" "$T/server.py" <<'PY' || fail "O_APPEND, link and unlink of an existing file open"
import os, sys
mnt, prefix, sock, ino, helper = sys.argv[1:]
exec(open(helper).read())
r = Redis(sock)
with open(f"{mnt}/log", "wb") as f:
    f.write(b"one\n")
fd = os.open(f"{mnt}/log", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"two\n")
os.fsync(fd)
os.write(fd, b"three\n")
os.close(fd)
with open(f"{mnt}/log", "rb") as f:
    assert f.read() == b"one\ntwo\nthree\n"
fd = os.open(f"{mnt}/db2", os.O_RDWR)
os.pwrite(fd, b"linked", 0)
os.fsync(fd)
os.pwrite(fd, b"LINKED", 6)
os.link(f"{mnt}/db2", f"{mnt}/db3")  # sends what waits; the file's writes go at once after it
assert os.fstat(fd).st_nlink == 2
os.pwrite(fd, b"after", 12)
os.fsync(fd)
head = server_bytes(r, prefix, ino)[:17]
assert head == b"linkedLINKEDafter", head
os.unlink(f"{mnt}/db3")
assert os.fstat(fd).st_nlink == 1
os.pwrite(fd, b"unlinked", 0)
os.unlink(f"{mnt}/db2")
os.pwrite(fd, b"UNLINKED", 8)
assert os.pread(fd, 16, 0) == b"unlinkedUNLINKED"
assert os.fstat(fd).st_nlink == 0
os.close(fd)
PY
check_consistency

# a snapshot has what was written to a file still open before it
printf 'x%.0s' {1..5000} >"$MNT/snapme"
snap_ino=$(stat -c %i "$MNT/snapme")
mkfifo "$T/go"
python3 - "$MNT/snapme" "$T/go" "$T/snapped" <<'PY' &
import os, sys
path, go, snapped = sys.argv[1:]
fd = os.open(path, os.O_RDWR)
os.pwrite(fd, b"before the snapshot", 100)
os.pwrite(fd, os.urandom(200000), 3000)  # (many pages: the kernel's writes last past syncfs)
with open(snapped, "wb") as f:
    f.write(os.pread(fd, 300000, 0))
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
python3 - "$PREFIX-snap" "$SOCK" "$snap_ino" "$T/server.py" "$T/snapped" <<'PY' ||
import sys
prefix, sock, ino, helper, snapped = sys.argv[1:]
exec(open(helper).read())
got = server_bytes(Redis(sock), prefix, ino)
assert got == open(snapped, "rb").read(), f"{len(got)} bytes, the first 200: {got[:200]}"
PY
  fail "the snapshot lacks what was written before it to a file still open"
"$REDISFS_SNAP_BIN" --redis "unix://$SOCK" --quiet delete "$PREFIX-snap" || fail "delete of the snapshot"

# a crash: what fsync returned for stays, what was written after it goes,
# all of it (the writer waits, the file open, while the daemon is killed)
head -c 200000 /dev/urandom >"$MNT/crash"
crash_ino=$(stat -c %i "$MNT/crash")
python3 - "$MNT/crash" "$T/synced" "$T/crash" <<'PY' &
import os, sys, time
path, synced, tag = sys.argv[1:]
fd = os.open(path, os.O_RDWR)
os.pwrite(fd, b"S" * 10000, 5000)
os.fsync(fd)
with open(synced, "wb") as f:
    f.write(os.pread(fd, 200000, 0))
os.pwrite(fd, b"U" * 10000, 50000)
os.pwrite(fd, b"U" * 100, 199990)
open(tag + ".ready", "w").close()
time.sleep(600)  # killed below
PY
writer=$!
hold_wait "$T/crash.ready"  # (the writer is ready)
sync -f "$MNT"  # (the kernel sends its pages: they wait in the mount)
sleep 0.5
kill_daemon
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null || true  # (killed)
rcli pexpire "$PREFIX:WRITEBACK" 1 >/dev/null
expire_sessions
python3 - "$PREFIX" "$SOCK" "$crash_ino" "$T/server.py" "$T/synced" <<'PY' || fail "a crash after fsync"
import sys
prefix, sock, ino, helper, synced = sys.argv[1:]
exec(open(helper).read())
r = Redis(sock)
got = server_bytes(r, prefix, ino)
want = open(synced, "rb").read()
assert got == want, "the server has not exactly what fsync returned for: " + (
    "unsynced bytes reached it" if b"U" * 100 in got else f"{len(got)} bytes, {len(want)} synced")
PY
mount_fs
cmp -s "$T/synced" "$MNT/crash" || fail "a new mount does not read what fsync returned for"
unmount_fs
check_consistency
