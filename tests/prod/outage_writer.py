#!/usr/bin/env python3
# outage_writer.py: file work through a mount while its server goes away,
# for tests/prod/outage.sh.
#
#   write ROOT JOURNAL STOPFILE: writes files ROOT/w<i> (deterministic
#       bytes, 1 B .. 256 KB), each open + write + fsync + close + stat,
#       until STOPFILE exists; every other one is also copied within the
#       mount to ROOT/c<i> (copy_file_range: done by the server) with a hole
#       punched in the copy (fallocate), then fsynced. Every file fsync
#       acknowledged gets a line
#       "ok <i> <size>" in JOURNAL (fsynced too); a failed call gets
#       "err <i> <op> <errno> <seconds> <strerror>" and the writer goes on
#       with the next file (1000 failures at most). Prints the slowest
#       single call at the end. Exit 0.
#   verify ROOT JOURNAL: every "ok" file (and its copy) reads back exactly.
#       Exit 1 if not.
#   probe ROOT TAG: two calls at once on names never used before (TAG
#       makes them unique): create+write+fsync of a new file, and stat of a
#       missing name; prints "<call> <errno, 0: success> <seconds>" each.
import ctypes
import os
import random
import sys
import threading
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
PUNCH = (4096, 5000)  # offset, length of the hole in a copy


def content(i):
    rnd = random.Random(i)
    size = rnd.choice((1, 4096, 65536, 65537, rnd.randrange(1, 262144)))
    return rnd.randbytes(size)


def copied(i):
    """What ROOT/c<i> holds, for an even i: w<i> with the hole punched."""
    data = bytearray(content(i))
    lo, hi = PUNCH[0], min(len(data), PUNCH[0] + PUNCH[1])
    if lo < hi:
        data[lo:hi] = bytes(hi - lo)
    return bytes(data)


def copy_all(fi, fo, n):
    done = 0
    while done < n:
        got = os.copy_file_range(fi, fo, n - done, done, done)
        if got == 0:
            raise OSError(0, "the source ended at %d bytes of %d" % (done, n))
        done += got


def punch(fd):
    if libc.fallocate(fd, 0x03, PUNCH[0], PUNCH[1]) != 0:  # PUNCH_HOLE | KEEP_SIZE
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def write(root, journal, stopfile):
    jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    slowest = [0.0, "none", -1, 0.0]  # seconds, call, file, when (seconds into the run)
    t_start = time.monotonic()
    oks = errs = 0
    i = 0
    cur = {"op": "", "t0": 0.0}

    def timed(op, fn, *a):
        cur["op"], cur["t0"] = op, time.monotonic()
        r = fn(*a)
        took = time.monotonic() - cur["t0"]
        if took > slowest[0]:
            slowest[:] = [took, op, i, cur["t0"] - t_start]
        return r

    def write_all(fd, data):
        done = 0
        while done < len(data):
            done += os.write(fd, data[done:])

    while not os.path.exists(stopfile) and errs < 1000:
        data = content(i)
        path = os.path.join(root, "w%d" % i)
        try:
            fd = timed("open", os.open, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                timed("write", write_all, fd, data)
                timed("fsync", os.fsync, fd)
            finally:
                timed("close", os.close, fd)
            st = timed("stat", os.stat, path)
            if st.st_size != len(data):
                raise OSError(0, "size %d after writing %d bytes" % (st.st_size, len(data)))
            if i % 2 == 0:
                fi = timed("open", os.open, path, os.O_RDONLY)
                try:
                    fo = timed("open", os.open, os.path.join(root, "c%d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                               0o644)
                    try:
                        timed("copy_file_range", copy_all, fi, fo, len(data))
                        timed("fallocate", punch, fo)
                        timed("fsync", os.fsync, fo)
                    finally:
                        timed("close", os.close, fo)
                finally:
                    timed("close", os.close, fi)
            os.write(jfd, b"ok %d %d\n" % (i, len(data)))
            os.fsync(jfd)
            oks += 1
        except OSError as e:
            took = time.monotonic() - cur["t0"]
            os.write(jfd, b"err %d %s %d %.3f %s\n" % (i, cur["op"].encode(), e.errno or 0, took,
                                                       (e.strerror or "").replace(" ", "_").encode()))
            os.fsync(jfd)
            errs += 1
            time.sleep(0.05)  # an outage: do not spin
        i += 1
    os.close(jfd)
    print("writer: %d files acknowledged, %d failed calls; slowest single call: %s of w%d, %.3f s "
          "(%.1f s into the run)" % (oks, errs, slowest[1], slowest[2], slowest[0], slowest[3]))
    return 0


def same(path, want, what):
    """True when the file at path holds want; else says why (stderr)."""
    try:
        with open(path, "rb") as fh:
            got = fh.read()
    except OSError as e:
        print("verify: %s: %s" % (what, e), file=sys.stderr)
        return False
    if got != want:
        print("verify: %s: %d bytes, want %d%s" % (what, len(got), len(want),
              "" if len(got) != len(want) else " (different bytes)"), file=sys.stderr)
        return False
    return True


def verify(root, journal):
    bad = n = 0
    with open(journal) as j:
        for line in j:
            f = line.split()
            if f[0] != "ok":
                continue
            n += 1
            i = int(f[1])
            if not same(os.path.join(root, "w%d" % i), content(i), "w%d" % i):
                bad += 1
            if i % 2 == 0 and not same(os.path.join(root, "c%d" % i), copied(i),
                                       "c%d (the copy of w%d, a hole punched)" % (i, i)):
                bad += 1
    print("verify: %d acknowledged files, %d bad" % (n, bad))
    return 1 if bad or n == 0 else 0


def probe(root, tag):
    results = {}

    def create():
        t0 = time.monotonic()
        try:
            fd = os.open(os.path.join(root, "probe-new-%s" % tag), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
            results["create"] = (0, time.monotonic() - t0)
        except OSError as e:
            results["create"] = (e.errno, time.monotonic() - t0)

    def stat():
        t0 = time.monotonic()
        try:
            os.stat(os.path.join(root, "probe-missing-%s" % tag))
            results["stat"] = (0, time.monotonic() - t0)
        except OSError as e:
            results["stat"] = (e.errno, time.monotonic() - t0)

    threads = [threading.Thread(target=create), threading.Thread(target=stat)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in ("create", "stat"):
        print("%s %d %.3f" % (k, results[k][0], results[k][1]))
    return 0


def main():
    mode = sys.argv[1]
    if mode == "write":
        return write(sys.argv[2], sys.argv[3], sys.argv[4])
    if mode == "verify":
        return verify(sys.argv[2], sys.argv[3])
    if mode == "probe":
        return probe(sys.argv[2], sys.argv[3])
    print("usage: outage_writer.py write|verify|probe ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
