#!/usr/bin/env bash
# deferred_create: on a -o writeback mount (the only mount of its
# filesystem), a file created in a directory whose every name the mount
# knows, or under a name it removed, is answered without the server: the
# create waits with the file's writes and attribute changes and reaches
# the server with them at close(2) (or fsync),
# in one round trip (store_gather.cpp, defer_create). What must hold:
#   - close(2) returns once the name, the data and the attributes are on
#     the server;
#   - before that, this mount sees the file (stat, fstat, read) and
#     every operation that reaches the server sends the create first: a
#     listing, the parent's stat (its mtime moved), a lookup the server
#     answers, a mkdir beside it, rename, link, unlink, rmdir of the parent
#     (ENOTEMPTY), an xattr, a snapshot (copy) of the busy mount;
#   - a create the server refuses at close (a damaged filesystem) is
#     close(2)'s error (or fsync's), logged, and nothing of the name stays;
#   - a create that meets a snapshot's freeze lands with its data after it;
#   - a daemon killed with such a file open leaves a consistent filesystem
#     without it.
. "$(dirname "$0")/lib.sh"
need_binary REDISFS_SNAP_BIN
export PYTHONPATH=$HERE

# (a long entry timeout: what the mount knows of a directory's names lasts
# as long, and a loaded machine cannot make a create here go at once)
mount_fs -o writeback,entry_timeout=600 --log-level debug
mkdir "$MNT/d"
read -r n0 rt0 < <(trips create)
read -r f0 frt0 < <(trips flush)

python3 - "$MNT" "$PREFIX" "$SOCK" <<'PY' || fail "deferred creates"
import errno, os, sys, time
from check_consistency import Redis
mnt, prefix, sock = sys.argv[1:]
r = Redis(sock)
d = f"{mnt}/d"
dino = os.stat(d).st_ino

def on_server(name):
    return r.call("HGET", f"{prefix}:DIR:{dino}", name) is not None

def fresh(name, data=b"data\n"):
    fd = os.open(f"{d}/{name}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
    if data:
        os.write(fd, data)
    assert not on_server(name), f"{name}: the create reached the server before close"
    return fd

# the plain case: nothing on the server until close, everything after it
for i in range(20):
    fd = fresh(f"f{i}", b"x" * i)
    os.fchmod(fd, 0o600)
    st = os.fstat(fd)
    assert st.st_size == i and st.st_mode & 0o7777 == 0o600, st
    os.close(fd)
    assert on_server(f"f{i}"), f"f{i}: not on the server after close"
    ino = os.stat(f"{d}/f{i}").st_ino
    assert r.call("HGET", f"{prefix}:INODE:{ino}", "size") == str(i).encode()
    assert r.call("HGET", f"{prefix}:INODE:{ino}", "mode") == b"0600"

# this mount sees a file whose create waits
fd = fresh("seen")
assert os.stat(f"{d}/seen").st_size == 5
with open(f"{d}/seen", "rb") as f:  # a read sends what waits first
    assert f.read() == b"data\n"
assert on_server("seen"), "a read did not send the create first"
os.close(fd)

# each operation that reaches the server sends the create first (each in a
# directory of its own: a link or a rename ends what the mount knows of the
# names of its directory, and creates there go to the server at once)
def check(what, op, name):
    global d, dino
    d = f"{mnt}/{name}.dir"
    os.mkdir(d)
    dino = os.stat(d).st_ino
    fd = fresh(name)
    try:
        op(name)
        assert on_server(name) or what in ("unlink", "rename"), f"{what}: the create did not go first"
    finally:
        os.close(fd)

check("listing", lambda n: os.listdir(d).index(n), "p")
check("a lookup the server answers", lambda n: os.path.exists(f"{mnt}/absent.{n}"), "k")
d = f"{mnt}/q.dir"
os.mkdir(d)
dino = os.stat(d).st_ino
before = os.stat(d).st_mtime_ns
time.sleep(0.01)
fd = fresh("q")
assert os.stat(d).st_mtime_ns > before, "the parent's mtime did not move with the create"
assert on_server("q"), "the parent's stat did not send the create first"
os.close(fd)
check("mkdir beside it", lambda n: os.mkdir(f"{d}/sub"), "s")
check("link", lambda n: os.link(f"{d}/{n}", f"{d}/{n}.link"), "l")
assert os.stat(f"{d}/l").st_nlink == 2 and open(f"{d}/l.link", "rb").read() == b"data\n"
check("rename", lambda n: os.rename(f"{d}/{n}", f"{d}/{n}.moved"), "m")
assert open(f"{d}/m.moved", "rb").read() == b"data\n" and not os.path.exists(f"{d}/m")
check("unlink", lambda n: os.unlink(f"{d}/{n}"), "u")
assert not os.path.exists(f"{d}/u") and not on_server("u")
check("xattr", lambda n: os.setxattr(f"{d}/{n}", "user.k", b"v"), "x")
assert os.getxattr(f"{d}/x", "user.k") == b"v"

d = f"{mnt}/d"
os.mkdir(f"{d}/e")
eino = os.stat(f"{d}/e").st_ino
fd = os.open(f"{d}/e/only", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
assert r.call("HGET", f"{prefix}:DIR:{eino}", "only") is None, "the create in e/ reached the server before close"
try:
    os.rmdir(f"{d}/e")
    raise AssertionError("rmdir of a directory holding a file whose create waits succeeded")
except OSError as e:
    assert e.errno == errno.ENOTEMPTY, e
os.close(fd)
PY

# what the counters say: the 30 creates above made no round trip of their
# own, and each close at most one (the create and the data together)
read -r n1 rt1 < <(trips create)
read -r f1 frt1 < <(trips flush)
((n1 - n0 == 30)) || fail "$((n1 - n0)) creates counted, want 30"
((rt1 - rt0 == 0)) || fail "30 deferred creates made $((rt1 - rt0)) round trips of their own, want none"
((frt1 - frt0 <= f1 - f0)) || fail "$((f1 - f0)) flushes made $((frt1 - frt0)) round trips, want at most one each"

# a name the mount removed is known absent, in any directory (here the
# root, whose names it does not all know): made again, as sqlite makes its
# journal at every commit, its create waits for the file's fsync or close
python3 - "$MNT" "$PREFIX" "$SOCK" <<'PY' || fail "a deferred create of a name the mount removed"
import os, sys
from check_consistency import Redis
mnt, prefix, sock = sys.argv[1:]
r = Redis(sock)
def on_server(name):
    return r.call("HGET", f"{prefix}:DIR:1", name) is not None
with open(f"{mnt}/journal", "wb") as f:
    f.write(b"first")
assert on_server("journal")
for i in range(5):
    os.unlink(f"{mnt}/journal")
    fd = os.open(f"{mnt}/journal", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    os.write(fd, b"commit %d" % i)
    assert not on_server("journal"), f"commit {i}: the create of a removed name reached the server before fsync"
    os.fsync(fd)
    assert on_server("journal"), f"commit {i}: not on the server after fsync"
    os.close(fd)
    with open(f"{mnt}/journal", "rb") as f:
        assert f.read() == b"commit %d" % i
PY

# a snapshot of the busy mount has the file whose create waited (a process
# of its own holds the only descriptor: hold_open, lib.sh)
mkdir "$MNT/d2"
d2=$(stat -c %i "$MNT/d2")
printf 'busy\n' >"$T/busy.data"
hold_open "$T/busy" "$MNT/d2/busy" "$T/busy.data"
waiting=$(rcli hkeys "$PREFIX:DIR:$d2")
rc=0
"$REDISFS_SNAP_BIN" --redis "unix://$SOCK" --quiet copy "$PREFIX" "$PREFIX-snap" || rc=$?
hold_end "$T/busy"
((rc == 0)) || fail "copy of the busy mount exited $rc"
[[ -z $waiting ]] || fail "the create of d2/busy reached the server before close: $waiting"
PREFIX=$PREFIX-snap mount_at "$T/snap" --read-only
[[ $(cat "$T/snap/d2/busy") == busy ]] || fail "the snapshot lacks the file whose create waited: $(ls "$T/snap/d2")"
unmount_fs "$T/snap"
"$REDISFS_SNAP_BIN" --redis "unix://$SOCK" --quiet delete --force "$PREFIX-snap"

# a create that meets a freeze lands after it, with its data
python3 - "$MNT" "$PREFIX" "$SOCK" <<'PY' || fail "a deferred create under a freeze"
import os, sys, time
from check_consistency import Redis
mnt, prefix, sock = sys.argv[1:]
r = Redis(sock)
fd = os.open(f"{mnt}/d2/frozen", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, b"after the freeze\n")
r.call("SET", f"{prefix}:FREEZE", "test", "PX", "400")
t = time.monotonic()
os.close(fd)
assert time.monotonic() - t > 0.2, "close did not wait for the freeze"
assert open(f"{mnt}/d2/frozen", "rb").read() == b"after the freeze\n"
PY

# a create the server refuses at close: the inode number it was given is
# taken on the server (a damaged filesystem, or a hand's)
python3 - "$MNT" "$PREFIX" "$SOCK" <<'PY' || fail "a refused deferred create"
import errno, os, sys
from check_consistency import Redis
mnt, prefix, sock = sys.argv[1:]
r = Redis(sock)
d = f"{mnt}/d2"
fd = os.open(f"{d}/probe", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
ino = os.fstat(fd).st_ino
os.close(fd)
taken = ino + 1
r.call("HSET", f"{prefix}:INODE:{taken}", "type", "file")
fd = os.open(f"{d}/refused", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
assert os.fstat(fd).st_ino == taken, (os.fstat(fd).st_ino, taken)
os.write(fd, b"lost\n")
try:
    os.close(fd)
    raise AssertionError("close of a file whose create the server refused succeeded")
except OSError as e:
    assert e.errno == errno.EIO, e
r.call("DEL", f"{prefix}:INODE:{taken}")
assert "refused" not in os.listdir(d), os.listdir(d)
assert r.call("HGET", f"{prefix}:DIR:{os.stat(d).st_ino}", "refused") is None
# ... and at fsync, that fsync's error (a name the mount removed: the
# refusal above ended what it knew of the directory's names)
fd = os.open(f"{d}/again", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
taken = os.fstat(fd).st_ino + 1
os.close(fd)
os.unlink(f"{d}/again")
r.call("HSET", f"{prefix}:INODE:{taken}", "type", "file")
fd = os.open(f"{d}/again", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
assert os.fstat(fd).st_ino == taken, (os.fstat(fd).st_ino, taken)
os.write(fd, b"lost\n")
try:
    os.fsync(fd)
    raise AssertionError("fsync of a file whose create the server refused succeeded")
except OSError as e:
    assert e.errno == errno.EIO, e
try:
    os.close(fd)  # (may fail too: the kernel's times of a file the server never had)
except OSError as e:
    assert e.errno == errno.EIO, e
r.call("DEL", f"{prefix}:INODE:{taken}")
assert "again" not in os.listdir(d), os.listdir(d)
PY
grep -q "create of 'refused' in directory .*inode number already in use" "${MOUNT_LOGS[$MNT]}" ||
  fail "the refused create is not logged: $(grep -i refused "${MOUNT_LOGS[$MNT]}" | tail -3)"

# a daemon killed with a file whose create waits: no trace of it (a
# process of its own holds the descriptor, as above)
mkdir "$MNT/d3"
d3=$(stat -c %i "$MNT/d3")
printf 'never\n' >"$T/never.data"
hold_open "$T/never" "$MNT/d3/never" "$T/never.data"
on_server=$(rcli hkeys "$PREFIX:DIR:$d3")
kill_daemon
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
HOLDER=
[[ -z $on_server ]] || fail "the create reached the server before close: $on_server"
check_consistency --no-orphans
rcli pexpire "$PREFIX:WRITEBACK" 1 >/dev/null
expire_sessions
mount_fs -o writeback
[[ ! -e $MNT/d3/never ]] || fail "a create that never reached the server shows after the restart"
[[ $(cat "$MNT/d/f5") == xxxxx ]] || fail "f5 lost"
unmount_fs
check_consistency --no-orphans
