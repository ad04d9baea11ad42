#!/usr/bin/env python3
# churn.py: a burst of random namespace changes (create, write, rename over,
# link, unlink, mkdir, rmdir, rename dirs, RENAME_EXCHANGE) and data changes
# done by the server (hole punches, copy_file_range) in ROOT/shared,
# which other churners change at the same time (from another mount), and in
# ROOT/<own>. Names come from a small set, so the churners collide on
# purpose. Losing a race is fine (ENOENT, EEXIST, ENOTEMPTY, ...); any other
# error (EIO above all) fails the run. (EPERM: a link of what turned out
# to be a directory.) Deterministic for a given --seed.
#
#   usage: churn.py ROOT --own NAME [--seed N] [--ops N]
import argparse
import collections
import ctypes
import errno
import os
import random
import sys

RACES = {errno.ENOENT, errno.EEXIST, errno.EPERM, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR, errno.ESTALE, errno.EINVAL}

_libc = ctypes.CDLL(None, use_errno=True)


def exchange(a, b):
    f = _libc.renameat2
    f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if f(-100, os.fsencode(a), -100, os.fsencode(b), 2) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def punch(path, off, n):
    fd = os.open(path, os.O_WRONLY)
    try:
        f = _libc.fallocate
        f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        if f(fd, 3, off, n) < 0:  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    finally:
        os.close(fd)


def copy(src, dst, n, soff, doff):
    fi = os.open(src, os.O_RDONLY)
    try:
        fo = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.copy_file_range(fi, fo, n, soff, doff)
        finally:
            os.close(fo)
    finally:
        os.close(fi)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--own", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ops", type=int, default=200)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    shared = os.path.join(args.root, "shared")
    own = os.path.join(args.root, args.own)
    os.makedirs(shared, exist_ok=True)
    os.makedirs(own, exist_ok=True)

    def name(d, kind):
        return os.path.join(d, "%s%d" % (kind, rnd.randrange(12)))

    def pick(d):
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return os.path.join(d, "none")
        return os.path.join(d, rnd.choice(names)) if names else os.path.join(d, "none")

    def create(d):
        fd = os.open(name(d, "f"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, rnd.randbytes(rnd.randrange(1, 3000)))
        finally:
            os.close(fd)

    def append(d):
        fd = os.open(pick(d), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"more data\n")
        finally:
            os.close(fd)

    ops = [
        ("create shared", lambda: create(shared)),
        ("create own", lambda: create(own)),
        ("append", lambda: append(shared)),
        ("rename over", lambda: os.rename(pick(shared), name(shared, "f"))),
        ("rename own to shared", lambda: os.rename(pick(own), name(shared, "f"))),
        ("rename shared to own", lambda: os.rename(pick(shared), name(own, "f"))),
        ("link", lambda: os.link(pick(shared), name(shared, "h"))),
        ("unlink", lambda: os.unlink(pick(shared))),
        ("mkdir", lambda: os.mkdir(name(shared, "d"))),
        ("mkdir nested", lambda: os.mkdir(os.path.join(name(shared, "d"), "sub"))),
        ("rmdir", lambda: os.rmdir(name(shared, "d"))),
        ("rename dir", lambda: os.rename(name(shared, "d"), name(shared, "d"))),
        ("move dir into dir", lambda: os.rename(name(shared, "d"), os.path.join(name(shared, "d"), "in"))),
        ("exchange", lambda: exchange(pick(shared), pick(shared))),
        ("stat", lambda: os.stat(pick(shared))),
        ("punch", lambda: punch(pick(shared), rnd.randrange(2000), rnd.randrange(1, 2000))),
        ("copy", lambda: copy(pick(shared), name(shared, "f"), rnd.randrange(1, 3000), rnd.randrange(100),
                              rnd.randrange(3000))),
    ]
    seen = collections.Counter()
    unexpected = []
    for i in range(args.ops):
        label, op = rnd.choice(ops)
        try:
            op()
            seen["ok"] += 1
        except OSError as e:
            seen[errno.errorcode.get(e.errno, str(e.errno))] += 1
            if e.errno not in RACES:
                unexpected.append("op %d %s: %s" % (i, label, e))
            if e.errno == errno.ENOTCONN:
                break  # the daemon is gone
    print("churn %s: %s" % (args.own, ", ".join("%s %d" % kv for kv in sorted(seen.items()))))
    for u in unexpected:
        print("churn %s: unexpected error: %s" % (args.own, u), file=sys.stderr)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
