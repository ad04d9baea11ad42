#!/usr/bin/env python3
# dirlist.py: directory listings through libc's opendir/readdir/telldir/
# seekdir (ctypes), for readdir_cursor.sh.
#
#   dirlist.py seek DIR         telldir after each entry of one listing
#                               gives distinct values; seekdir to 200 of
#                               them (shuffled, on the same handle) goes on
#                               with exactly the names that followed
#   dirlist.py stable DIR N     while other processes add and remove names
#                               "churn-*", N listings each return every
#                               other name of DIR (present throughout)
#                               exactly once
#   dirlist.py hold DIR PID K   reads DIR to its end through K handles
#                               held open together, and prints how many kB
#                               the VmRSS of process PID (the daemon) grew
#                               meanwhile
#   dirlist.py make DIR PREFIX N   N empty files PREFIX%06d, four at a time
#   dirlist.py across DIR FIRST READY GO   one listing (getdents64, a
#                               few entries at a time), paused after FIRST
#                               entries (READY created, then waits for GO:
#                               the server restarts meanwhile) and read to
#                               its end; then lseek to the offset after
#                               entry FIRST/2, and the rest from there.
#                               Prints the names of each, one a line, the
#                               two parts apart by a "--" line
#   dirlist.py renamed ROOT     in ROOT/d (files f0..f3) and ROOT/e: for
#                               each file, a listing of d (its attributes:
#                               the kernel asks for d's at the next fstat),
#                               an opendir and fstat of d (the getattr that
#                               may read its first page), the file renamed
#                               to e, then getdents64 on that handle: the
#                               listing may show the name or not (POSIX),
#                               but a stat of it in d must then fail; then
#                               in ROOT/big (300 files): a listing read a
#                               few entries at a time, the names not read
#                               yet renamed to ROOT/e after the first
#                               getdents64, then the rest: none of those
#                               is a name in big any more
#   dirlist.py tree FS INO NDIRS NFILES   on stdout, for redis-cli --pipe:
#                               the commands that add directories d0000...
#                               of NFILES empty files f000000... each to the
#                               root of filesystem FS (its key prefix), with
#                               inode numbers from INO (above the superblock's
#                               next_inode, which they move past), as a
#                               restore would write them (bench/walk.sh too)
import ctypes
import os
import random
import sys

_libc = ctypes.CDLL(None, use_errno=True)
_libc.opendir.restype = ctypes.c_void_p
_libc.opendir.argtypes = [ctypes.c_char_p]
_libc.readdir64.restype = ctypes.c_void_p
_libc.readdir64.argtypes = [ctypes.c_void_p]
_libc.telldir.restype = ctypes.c_long
_libc.telldir.argtypes = [ctypes.c_void_p]
_libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
_libc.closedir.argtypes = [ctypes.c_void_p]
_libc.rewinddir.argtypes = [ctypes.c_void_p]
_NAME_AT = 19  # struct dirent64: d_ino 8, d_off 8, d_reclen 2, d_type 1, d_name


def fail(msg):
    sys.exit("dirlist.py: " + msg)


def _next(d):
    ctypes.set_errno(0)
    p = _libc.readdir64(d)
    if not p:
        if ctypes.get_errno():
            fail("readdir: " + os.strerror(ctypes.get_errno()))
        return None
    return ctypes.string_at(p + _NAME_AT).decode()


def _rest(d):
    out = []
    while (name := _next(d)) is not None:
        out.append(name)
    return out


def _open(path):
    d = _libc.opendir(os.fsencode(path))
    if not d:
        fail("opendir %s: %s" % (path, os.strerror(ctypes.get_errno())))
    return d


def seek(path):
    d = _open(path)
    names, places = [], []
    while (name := _next(d)) is not None:
        names.append(name)
        places.append(_libc.telldir(d))
    if len(set(names)) != len(names):
        fail("a name listed twice in an unchanging directory")
    if len(set(places)) != len(places):
        fail("telldir gave %d distinct values for %d entries" % (len(set(places)), len(places)))
    # 200 places in a shuffled order, the first and last among them; from
    # each, the next 600 names (across pages), and all of them from some
    order = random.Random(7).sample(range(len(places)), min(200, len(places)))
    order += [0, len(places) - 1]
    for k, i in enumerate(order):
        _libc.seekdir(d, places[i])
        got, limit = [], len(names) if k % 20 == 0 else 600
        while len(got) < limit and (name := _next(d)) is not None:
            got.append(name)
        if got != names[i + 1:i + 1 + limit]:
            fail("after seekdir to the place after entry %d of %d (%s): %d names, want %d; first %s, want %s" % (
                i, len(names), names[i], len(got), len(names[i + 1:i + 1 + limit]), got[:2], names[i + 1:i + 3]))
    _libc.rewinddir(d)
    if _rest(d) != names:
        fail("rewinddir does not list the same names again")
    _libc.closedir(d)
    print("seek: %d entries, every telldir value resumes exactly" % len(names))


def stable(path, rounds):
    want = {n for n in os.listdir(path) if not n.startswith("churn-")}
    for r in range(rounds):
        d = _open(path)
        got = [n for n in _rest(d) if not n.startswith("churn-") and n not in (".", "..")]
        _libc.closedir(d)
        dup = sorted({n for n in got if got.count(n) > 1}) if len(got) != len(set(got)) else []
        missing = sorted(want - set(got))
        extra = sorted(set(got) - want)
        if dup or missing or extra:
            fail("listing %d: %d duplicated %s, %d missing %s, %d unknown %s" % (
                r, len(dup), dup[:3], len(missing), missing[:3], len(extra), extra[:3]))
    print("stable: %d listings of %d stable names while others changed, each name once" % (rounds, len(want)))


def _rss(pid):
    with open("/proc/%s/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def hold(path, pid, k):
    before = _rss(pid)
    handles = [_open(path) for _ in range(k)]
    for d in handles:
        if not _rest(d):
            fail("empty listing")
    grown = _rss(pid) - before
    for d in handles:
        _libc.closedir(d)
    print(grown)


def _getdents(fd, size):
    """One getdents64(2) of at most `size` bytes: [(name, d_off)]."""
    import struct
    buf = ctypes.create_string_buffer(size)
    n = _libc.syscall(217, fd, buf, size)  # SYS_getdents64 (x86_64)
    if n < 0:
        fail("getdents64: " + os.strerror(ctypes.get_errno()))
    out, at = [], 0
    while at < n:
        _, off, reclen = struct.unpack_from("<QqH", buf.raw, at)
        name = buf.raw[at + _NAME_AT:at + reclen].split(b"\0", 1)[0].decode()
        if name not in (".", ".."):
            out.append((name, off))
        at += reclen
    return out


def renamed(root):
    d, e = os.path.join(root, "d"), os.path.join(root, "e")
    for i in range(4):
        name = "f%d" % i
        os.listdir(d)
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fstat(fd)
        os.rename(os.path.join(d, name), os.path.join(e, name))
        listed = []
        while True:  # (not os.listdir(fd): its fdopendir's fstat would read the page again)
            got = _getdents(fd, 32768)
            if not got:
                break
            listed += [n for n, _ in got]
        os.close(fd)
        if os.path.lexists(os.path.join(d, name)):
            fail("%s renamed from d to e is still a name in d (listed: %s)" % (name, sorted(listed)))
    big = os.path.join(root, "big")
    fd = os.open(big, os.O_RDONLY | os.O_DIRECTORY)
    seen = {n for n, _ in _getdents(fd, 2048)}  # (the daemon holds a page of 256)
    moved = sorted(set(os.listdir(big)) - seen)
    for n in moved:
        os.rename(os.path.join(big, n), os.path.join(e, n))
    while True:
        got = _getdents(fd, 2048)
        if not got:
            break
    os.close(fd)
    left = [n for n in moved if os.path.lexists(os.path.join(big, n))]
    if left:
        fail("%d of %d names renamed from big during its listing are still names in it: %s" %
             (len(left), len(moved), left[:5]))


def across(path, first, ready, go):
    # getdents64 with a small buffer, not readdir(3): libc reads 32 KiB at
    # once, which would take the daemon past its first page of entries
    import time
    if os.uname().machine != "x86_64":
        fail("across: getdents64 is called by its x86_64 syscall number, not %s's" % os.uname().machine)
    _libc.syscall.restype = ctypes.c_long
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    names, mark, paused = [], None, False
    while got := _getdents(fd, 512):
        for name, off in got:
            names.append(name)
            if len(names) == first // 2:
                mark = off
        if len(names) >= first and not paused:
            paused = True
            open(ready, "w").close()
            deadline = time.monotonic() + 120
            while not os.path.exists(go):
                if time.monotonic() > deadline:
                    fail("across: no %s after 120 s" % go)
                time.sleep(0.05)
    if mark is None:
        fail("across: fewer than %d entries" % first)
    os.lseek(fd, mark, os.SEEK_SET)
    again = []
    while got := _getdents(fd, 512):
        again += [name for name, _ in got]
    os.close(fd)
    sys.stdout.write("".join(n + "\n" for n in names + ["--"] + again))


def make(path, prefix, n):
    kids = []
    for k in range(4):
        pid = os.fork()
        if pid == 0:
            for i in range(k, n, 4):
                os.close(os.open(os.path.join(path, "%s%06d" % (prefix, i)), os.O_WRONLY | os.O_CREAT, 0o644))
            os._exit(0)
        kids.append(pid)
    if any(os.waitpid(pid, 0)[1] for pid in kids):
        fail("a creator failed")


def tree(fs, ino, ndirs, nfiles):
    import time
    out = sys.stdout.buffer

    def cmd(*a):
        b = [b"*%d\r\n" % len(a)]
        for x in a:
            x = str(x).encode()
            b.append(b"$%d\r\n%s\r\n" % (len(x), x))
        out.write(b"".join(b))

    now, first = time.time_ns(), ino
    times = ["atime", now, "mtime", now, "ctime", now]
    for d in range(ndirs):
        dino, ino = ino, ino + 1
        cmd("HSET", "%s:INODE:%d" % (fs, dino), "type", "dir", "mode", "0755", "uid", 0, "gid", 0, "size", 0,
            "nlink", 2, "rdev", 0, "bytes", 0, "parent", 1, *times)
        pairs = []
        for f in range(nfiles):
            cmd("HSET", "%s:INODE:%d" % (fs, ino), "type", "file", "mode", "0644", "uid", 0, "gid", 0, "size", 0,
                "nlink", 1, "rdev", 0, "bytes", 0, *times)
            pairs += ["f%06d" % f, ino]
            ino += 1
            if len(pairs) >= 2000:
                cmd("HSET", "%s:DIR:%d" % (fs, dino), *pairs)
                pairs = []
        if pairs:
            cmd("HSET", "%s:DIR:%d" % (fs, dino), *pairs)
        cmd("HSET", "%s:DIR:1" % fs, "d%04d" % d, dino)
    cmd("HINCRBY", "%s:INODE:1" % fs, "nlink", ndirs)
    cmd("HINCRBY", "%s:INODE:1" % fs, "gen", 1)
    cmd("HINCRBY", "%s:SB" % fs, "inodes", ino - first)
    cmd("HSET", "%s:SB" % fs, "next_inode", ino + 1000)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "seek":
        seek(sys.argv[2])
    elif cmd == "stable":
        stable(sys.argv[2], int(sys.argv[3]))
    elif cmd == "hold":
        hold(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "tree":
        tree(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "across":
        across(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "renamed":
        renamed(sys.argv[2])
    elif cmd == "make":
        make(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        fail("unknown command " + cmd)
