#!/usr/bin/env python3
# ns_fuzz.py: random namespace and metadata operations, each made twice,
# once in the filesystem under test and once in a native directory (a
# local filesystem), and the two results must agree: the value, or the
# errno's name. The operations: creates (with O_EXCL, O_TRUNC, O_APPEND),
# mkdir, rmdir, unlink, rename (plain, RENAME_NOREPLACE, RENAME_EXCHANGE),
# link, symlink, readlink, mkfifo, stat and lstat, truncate, chmod (set-id
# bits too), chown, utimes, xattrs (set with XATTR_CREATE/REPLACE, get,
# list, remove), listings, whole-file reads, writes into a file (which
# clear set-id bits when not root's), and files held open across
# the rest (writes, reads, fstat, ftruncate, fsync through the handle,
# also after the name is gone). Paths are drawn from a few names, up to
# three deep, through "..", "." and symlinks (whose targets stay inside
# the tree), so operations collide on purpose; now and then a name of
# 255 bytes, of 256, or with a newline, a tab, bytes that are no UTF-8.
#
# Every --check-every operations, and at the start and the end, the two
# whole trees are compared: each name's type, permission bits, links,
# owner, size, content, symlink target and user xattrs, and which names
# are hard links of one inode.
#
# With several --mount (one filesystem mounted more than once, with
# attr_timeout=0,entry_timeout=0), each operation goes to one of them at
# random, except while a file is held open: then every operation goes to
# the mount that holds it (close-to-open is the promise across mounts).
# All handles are closed before the end. Deterministic for a given --seed.
#
# With --others, some operations (no handles) are made by a child process
# as another user, some of them in the file's group: permission checks,
# sticky directories, set-id bits cleared by writes and chown, set-group-ID
# directories' inheritance.
#
# With --snap-every N and --snap-cmd (a command line whose {n} is the
# snapshot's number; the copy slowed by a test hook), now and then, with no
# file held open, a snapshot is begun in the background: once its instant
# is recorded (PREFIX:COW exists, asked of the server at --redis-socket),
# the native tree is copied to --snap-dir/native-{n}, and the operations go
# on while the snapshot copies, changing what it has not copied yet. The
# caller mounts each snapshot and compares it with that copy.
#
#   usage: ns_fuzz.py --seed N --ops N --native DIR --mount DIR [--mount DIR...]
#                     [--check-every N] [--others] [-v]
#                     [--snap-every N --snap-cmd CMD --redis-socket SOCK
#                      --prefix PREFIX --snap-dir DIR]
import argparse
import ctypes
import errno
import hashlib
import os
import random
import shlex
import socket
import stat
import subprocess
import sys
import time

NAMES = ["a", "b", "c", "d"]
# now and then a name of another kind: the longest there is, one too long,
# and bytes that JSON (dumps), the key schema and listings must carry
ODD_NAMES = ["L" * 255, "M" * 256, "sp ace", "new\nline", os.fsdecode(b"\xff\xfe"), "\u00e9t\u00e9", "back\\slash",
             "-dash", ".hidden", "tab\there", "x" * 100 + "\u2603"]
# (No set-group-ID without group execute: redisfs(1), Permissions.)
MODES_FILE = [0o644, 0o600, 0o755, 0o444, 0o4755, 0o2755, 0o6711, 0o1644, 0o666, 0o4777, 0o2777, 0o646]
MODES_DIR = [0o755, 0o700, 0o2775, 0o1777, 0o2755, 0o777, 0o2777, 0o3777]
OWNERS = [(0, 0), (1000, 1000), (0, 1000), (1000, 0), (123, 456), (1000, 456)]
# (uid, gid, supplementary groups) other users make some operations as
USERS = [(1000, 1000, []), (123, 456, []), (1000, 1000, [456])]
XNAMES = ["user.x", "user.y", "user.long." + "n" * 40]
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
SLOTS = 3
HANDLE_OPS = {"open", "close", "fdwrite", "fdread", "fdstat", "fdtrunc", "fdsync"}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]


def renameat2(a, b, flags):
    if _libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), flags) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def digest(b):
    return hashlib.sha256(b).hexdigest()[:16]


def stat_fields(st):
    """What must match across filesystems: times, inode numbers, blocks
    and a directory's size are each filesystem's own."""
    f = "%s %o nlink=%d uid=%d gid=%d" % (stat.filemode(st.st_mode)[0], stat.S_IMODE(st.st_mode), st.st_nlink,
                                          st.st_uid, st.st_gid)
    if not stat.S_ISDIR(st.st_mode):
        f += " size=%d" % st.st_size
    return f


# ------------------------------------------------------------------ ops


def rand_path(rng, depth=3, up=True):
    """A path of names, with now and then "." or ".." after a name. A
    symlink's target holds no "..", so it resolves below its own directory,
    and ".." after a name never leaves the tree."""
    parts = []
    for i in range(rng.randint(1, depth)):
        parts.append(rng.choice(ODD_NAMES) if rng.random() < 0.03 else rng.choice(NAMES))
        r = rng.random()
        if r < 0.04 and i + 1 < depth and up:
            parts.append("..")
        elif r < 0.07:
            parts.append(".")
    p = "/".join(parts)
    if rng.random() < 0.03:
        p += "/"
    return p


def rand_target(rng):
    r = rng.random()
    if r < 0.8:
        return rand_path(rng, up=False).rstrip("/")
    if r < 0.9:
        return "nothing/here"
    return "t" * rng.choice([1, 200, 1000, 4000])


def rand_data(rng):
    n = rng.choice([0, 1, 100, 4095, 4096, 5000, 70000, 140000])
    return rng.randbytes(n)


def gen_op(rng, slots_open, others):
    """One operation, as data, so that both sides make the same one. With
    `others`, now and then one made as another user (no handles)."""
    if others and rng.random() < 0.15:
        op = gen_op(rng, set(), False)
        while op[0] in HANDLE_OPS:
            op = gen_op(rng, set(), False)
        return ("as", rng.choice(USERS), op)
    r = rng.random()
    p = rand_path(rng)
    if r < 0.12:
        flags = os.O_WRONLY | os.O_CREAT | rng.choice([0, os.O_EXCL, os.O_TRUNC, os.O_APPEND, os.O_EXCL | os.O_TRUNC])
        return ("create", p, flags, rng.choice(MODES_FILE), rand_data(rng))
    if r < 0.19:
        return ("mkdir", p, rng.choice(MODES_DIR))
    if r < 0.23:
        return ("rmdir", p)
    if r < 0.28:
        return ("unlink", p)
    if r < 0.36:
        return ("rename", p, rand_path(rng), rng.choice([0, 0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE]))
    if r < 0.40:
        return ("link", p, rand_path(rng))
    if r < 0.44:
        return ("symlink", rand_target(rng), p)
    if r < 0.46:
        return ("readlink", p)
    if r < 0.47:
        return ("mkfifo", p)
    if r < 0.53:
        return ("stat", p, rng.random() < 0.5)
    if r < 0.56:
        return ("truncate", p, rng.choice([0, 1, 4096, 5000, 100000]))
    if r < 0.59:
        return ("chmod", p, rng.choice(MODES_FILE + MODES_DIR))
    if r < 0.61:
        return ("chown", p, rng.choice(OWNERS), rng.random() < 0.5)
    if r < 0.63:
        t = rng.randint(1, 2**33) * 1_000_000_000 + rng.randint(0, 999_999_999)
        return ("utime", p, t, t + rng.randint(-10**12, 10**12))
    if r < 0.67:
        return ("setxattr", p, rng.choice(XNAMES), rng.randbytes(rng.choice([0, 1, 50])),
                rng.choice([0, 0, os.XATTR_CREATE, os.XATTR_REPLACE]))
    if r < 0.69:
        return ("getxattr", p, rng.choice(XNAMES))
    if r < 0.70:
        return ("removexattr", p, rng.choice(XNAMES))
    if r < 0.71:
        return ("listxattr", p)
    if r < 0.75:
        return ("readdir", p)
    if r < 0.77:
        return ("read", p)
    if r < 0.785:
        return ("touch", p)
    if r < 0.80:
        return ("write", p, rng.choice([0, 1, 4096, 70000]), rng.randbytes(rng.choice([1, 3000])))
    # handles
    s = rng.randrange(SLOTS)
    if s not in slots_open or r < 0.83:
        if s in slots_open:
            return ("close", s)
        flags = rng.choice([os.O_RDWR, os.O_RDONLY, os.O_WRONLY | os.O_APPEND, os.O_RDWR | os.O_CREAT,
                            os.O_RDWR | os.O_CREAT | os.O_TRUNC, os.O_RDONLY | os.O_DIRECTORY])
        return ("open", s, p, flags, rng.choice(MODES_FILE))
    if r < 0.89:
        return ("fdwrite", s, rng.choice([0, 1, 4095, 4096, 10000, 200000]), rand_data(rng)[:20000])
    if r < 0.93:
        return ("fdread", s, rng.choice([0, 1, 4096, 10000]), rng.choice([1, 5000, 300000]))
    if r < 0.96:
        return ("fdstat", s)
    if r < 0.98:
        return ("fdtrunc", s, rng.choice([0, 3, 4096, 9000]))
    return ("fdsync", s)


def show(op):
    """The operation, short enough to read."""
    out = []
    for x in op:
        if isinstance(x, tuple) and x and isinstance(x[0], str):
            out.append("(%s)" % show(x))
        elif isinstance(x, bytes):
            out.append("<%d bytes %s>" % (len(x), digest(x)[:8]))
        elif isinstance(x, str) and len(x) > 40:
            out.append("%r..(%d)" % (x[:20], len(x)))
        else:
            out.append(repr(x))
    return " ".join(out)


class Side:
    """One tree (the filesystem under test, or the native directory) and
    the handles held open in it."""

    def __init__(self, root):
        self.root = root
        self.fds = {}

    def path(self, p):
        return os.path.join(self.root, p)

    def run(self, op):
        if op[0] == "as":
            return self._run_as(*op[1:])
        try:
            return self._run(op)
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))

    def _run_as(self, user, op):
        """`op` made by a child process that is `user`."""
        uid, gid, groups = user
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)
                os.write(w, self.run(op).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read().decode()
        os.waitpid(pid, 0)
        return "as %d: %s" % (uid, out)

    def _run(self, op):
        kind, args = op[0], op[1:]
        P = self.path
        if kind == "create":
            p, flags, mode, data = args
            fd = os.open(P(p), flags | os.O_NONBLOCK, mode)
            try:
                for i in range(0, len(data), 65536):
                    os.write(fd, data[i:i + 65536])
            finally:
                os.close(fd)
            return "ok"
        if kind == "mkdir":
            os.mkdir(P(args[0]), args[1])
        elif kind == "rmdir":
            os.rmdir(P(args[0]))
        elif kind == "unlink":
            os.unlink(P(args[0]))
        elif kind == "rename":
            renameat2(P(args[0]), P(args[1]), args[2])
        elif kind == "link":
            os.link(P(args[0]), P(args[1]), follow_symlinks=False)
        elif kind == "symlink":
            os.symlink(args[0], P(args[1]))
        elif kind == "readlink":
            return os.readlink(P(args[0]))
        elif kind == "mkfifo":
            os.mkfifo(P(args[0]), 0o640)
        elif kind == "stat":
            return stat_fields(os.stat(P(args[0]), follow_symlinks=args[1]))
        elif kind == "truncate":
            os.truncate(P(args[0]), args[1])
        elif kind == "chmod":
            os.chmod(P(args[0]), args[1])
            return stat_fields(os.stat(P(args[0])))
        elif kind == "chown":
            (uid, gid), follow = args[1], args[2]
            os.chown(P(args[0]), uid, gid, follow_symlinks=follow)
            return stat_fields(os.stat(P(args[0]), follow_symlinks=follow))
        elif kind == "utime":
            os.utime(P(args[0]), ns=(args[1], args[2]))
            st = os.stat(P(args[0]))
            return "atime=%d mtime=%d" % (st.st_atime_ns, st.st_mtime_ns)
        elif kind == "setxattr":
            os.setxattr(P(args[0]), args[1], args[2], args[3])
        elif kind == "getxattr":
            return digest(os.getxattr(P(args[0]), args[1]))
        elif kind == "removexattr":
            os.removexattr(P(args[0]), args[1])
        elif kind == "listxattr":
            return " ".join(sorted(x for x in os.listxattr(P(args[0])) if x.startswith("user.")))
        elif kind == "readdir":
            return " ".join(sorted(os.listdir(P(args[0]))))
        elif kind == "touch":
            os.utime(P(args[0]))
        elif kind == "write":
            fd = os.open(P(args[0]), os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.pwrite(fd, args[2], args[1])
            finally:
                os.close(fd)
            return stat_fields(os.stat(P(args[0])))
        elif kind == "read":
            fd = os.open(P(args[0]), os.O_RDONLY | os.O_NONBLOCK)
            try:
                h, n = hashlib.sha256(), 0
                while b := os.read(fd, 1 << 20):
                    h.update(b)
                    n += len(b)
                return "%d %s" % (n, h.hexdigest()[:16])
            finally:
                os.close(fd)
        else:
            return self._run_handle(kind, args)
        return "ok"

    def _run_handle(self, kind, args):
        s = args[0]
        if kind == "open":
            self.fds[s] = os.open(self.path(args[1]), args[2] | os.O_NONBLOCK, args[3])
            return "ok"
        if s not in self.fds:
            return "no handle"
        fd = self.fds[s]
        if kind == "close":
            del self.fds[s]
            os.close(fd)
        elif kind == "fdwrite":
            return "wrote %d" % os.pwrite(fd, args[2], args[1])
        elif kind == "fdread":
            b = os.pread(fd, args[2], args[1])
            return "%d %s" % (len(b), digest(b))
        elif kind == "fdstat":
            return stat_fields(os.fstat(fd))
        elif kind == "fdtrunc":
            os.ftruncate(fd, args[1])
        elif kind == "fdsync":
            os.fsync(fd)
        else:
            raise AssertionError(kind)
        return "ok"

    def close_all(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


# ------------------------------------------------------------------ trees


def tree(root):
    """name -> what must match, and the hard-link groups."""
    out, inodes = {".": stat_fields(os.lstat(root))}, {}
    for d, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            f = stat_fields(st)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    f += " data=" + digest(fh.read())
            elif stat.S_ISLNK(st.st_mode):
                f += " target=" + digest(os.fsencode(os.readlink(p)))
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                for x in sorted(os.listxattr(p, follow_symlinks=False)):
                    if x.startswith("user."):
                        f += " %s=%s" % (x, digest(os.getxattr(p, x, follow_symlinks=False)))
            out[rel] = f
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                inodes.setdefault(st.st_ino, []).append(rel)
    groups = sorted(sorted(g) for g in inodes.values())
    return out, groups


def compare_trees(fs_root, native_root, when):
    a, ga = tree(fs_root)
    b, gb = tree(native_root)
    bad = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            bad.append("  %s: fs %s, native %s" % (k, a.get(k, "missing"), b.get(k, "missing")))
    if ga != gb:
        bad.append("  hard links: fs %s, native %s" % (ga, gb))
    if bad:
        print("ns_fuzz: the trees differ %s (%s):" % (when, fs_root), file=sys.stderr)
        print("\n".join(bad[:30]), file=sys.stderr)
        return False
    return True


# ------------------------------------------------------------------ snapshots


def key_exists(sock_path, key):
    with socket.socket(socket.AF_UNIX) as so:
        so.connect(sock_path)
        k = key.encode()
        so.sendall(b"*2\r\n$6\r\nEXISTS\r\n$%d\r\n%s\r\n" % (len(k), k))
        reply = so.recv(64)
    if not reply.startswith(b":"):
        raise RuntimeError("EXISTS %s: %r" % (key, reply))
    return reply.startswith(b":1")


class Snapshots:
    """Snapshots begun in the background, each with the native tree at
    its instant."""

    def __init__(self, a):
        self.a = a
        self.running = None  # (n, process)
        self.count = 0
        self.during = 0  # operations made while a snapshot was copying

    def copying(self):
        return self.running is not None and self.running[1].poll() is None

    def begin(self, native_root):
        self.finish()
        n = self.count
        self.count += 1
        proc = subprocess.Popen(shlex.split(self.a.snap_cmd.format(n=n)))
        cow = self.a.prefix + ":COW"
        deadline = time.monotonic() + 60
        while not key_exists(self.a.redis_socket, cow):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("snapshot %d: no %s seen (exit %s)" % (n, cow, proc.poll()))
            time.sleep(0.002)
        subprocess.run(["cp", "-a", native_root, os.path.join(self.a.snap_dir, "native-%d" % n)], check=True)
        self.running = (n, proc)

    def finish(self):
        if self.running:
            n, proc = self.running
            self.running = None
            if proc.wait() != 0:
                raise RuntimeError("snapshot %d failed (exit %d)" % (n, proc.returncode))


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--native", required=True)
    ap.add_argument("--mount", action="append", required=True)
    ap.add_argument("--check-every", type=int, default=250)
    ap.add_argument("--others", action="store_true", help="some operations as other users (the mount needs allow_other)")
    ap.add_argument("--snap-every", type=int, default=0)
    ap.add_argument("--snap-cmd")
    ap.add_argument("--redis-socket")
    ap.add_argument("--prefix")
    ap.add_argument("--snap-dir")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    snaps = Snapshots(a) if a.snap_every else None
    os.umask(0o022)
    rng = random.Random(a.seed)
    mounts = [Side(m) for m in a.mount]
    native = Side(a.native)
    if not compare_trees(a.mount[0], a.native, "at the start"):
        return 1
    try:
        return fuzz(a, rng, mounts, native, snaps)
    finally:
        if snaps and snaps.running:
            snaps.running[1].wait()


def fuzz(a, rng, mounts, native, snaps):
    cur = 0
    recent = []
    due = False
    for i in range(a.ops):
        if not native.fds and len(mounts) > 1:
            cur = rng.randrange(len(mounts))
        if snaps and i % a.snap_every == a.snap_every - 1:
            due = True
        if due and not native.fds:
            due = False
            snaps.begin(a.native)
            recent.append("#%d snapshot %d begun" % (i, snaps.count - 1))
        if snaps and snaps.copying():
            snaps.during += 1
        # (a snapshot due closes the files held open first)
        op = ("close", min(native.fds)) if due else gen_op(rng, set(native.fds), a.others)
        got = mounts[cur].run(op)
        want = native.run(op)
        recent.append("#%d m%d %s -> %s" % (i, cur, show(op), want))
        if a.v:
            print(recent[-1])
        if got != want:
            print("ns_fuzz: seed %d op #%d on mount %d: %s\n  filesystem: %s\n  native:     %s" %
                  (a.seed, i, cur, show(op), got, want),
                  file=sys.stderr)
            print("  the operations before it:\n    " + "\n    ".join(recent[-25:-1]), file=sys.stderr)
            return 1
        if (i + 1) % a.check_every == 0:
            for m in a.mount:
                if not compare_trees(m, a.native, "after op #%d (seed %d)" % (i, a.seed)):
                    print("  the operations before it:\n    " + "\n    ".join(recent[-25:]), file=sys.stderr)
                    return 1
        del recent[:-30]
    mounts[cur].close_all()
    native.close_all()
    if snaps:
        snaps.finish()
        print("ns_fuzz: %d snapshots taken, %d operations made while one was copying" % (snaps.count, snaps.during))
    for m in a.mount:
        if not compare_trees(m, a.native, "at the end (seed %d)" % a.seed):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
