#!/usr/bin/env python3
# ack_writer.py: writes through a mount while the servers behind it fail
# over, and keeps a journal, outside the mount, of every write fsync
# acknowledged, with its checksum and how long its slowest call took.
#
#   write ROOT JOURNAL --stop FILE [--pause S] [--seed N]
#       until FILE exists: creates ROOT/n<k> (1 B .. 160 KB of random
#       bytes; open, write, fsync, close) and, every third round, appends a
#       chunk to ROOT/log (write + fsync); every third file is also copied
#       within the mount to ROOT/c<k> (copy_file_range: done by the server)
#       with a hole punched in the copy (fallocate), then fsynced, a step
#       of its own journaled as a new file. Each acknowledged step becomes a
#       journal line:
#         new NAME SIZE SHA256 START END SLOWEST OP
#         append log OFFSET SIZE SHA256 START END SLOWEST OP
#       (times from time.time(); SLOWEST: the slowest call, OP: which).
#       Any error: an "error START END OP MESSAGE" line, a message, exit 1.
#       Calls are allowed to be slow, never to fail.
#   verify ROOT JOURNAL: every journaled file and chunk reads back with its
#       checksum (the log may be longer: an append done but not journaled).
#   latency JOURNAL T0 T1: the slowest call among the steps that ran
#       between T0 and T1 (time.time() values), and how many ran then.
#   count JOURNAL: the number of acknowledged steps.
import argparse
import ctypes
import errno
import hashlib
import os
import random
import sys
import time


class Step:
    def __init__(self):
        self.start = time.time()
        self.slowest = 0.0
        self.op = "-"

    def call(self, op, fn, *args):
        t = time.monotonic()
        try:
            return fn(*args)
        finally:
            d = time.monotonic() - t
            if d > self.slowest:
                self.slowest, self.op = d, op


class FsyncRefused(Exception):
    """fsync said EIO: the step is not acknowledged (see main loop)."""


def fsync_or_refused(step, fd):
    try:
        step.call("fsync", os.fsync, fd)
    except OSError as e:
        if e.errno != errno.EIO:
            raise
        raise FsyncRefused() from e


libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
HOLE = (1000, 5000)  # offset, length of the hole punched in a copy


def copy_and_punch(step, src, dst, size):
    """dst = src's size bytes with HOLE zeroed (within size); fsynced."""
    fi = step.call("open", os.open, src, os.O_RDONLY)
    try:
        fo = step.call("open", os.open, dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            n = 0
            while n < size:
                got = step.call("copy_file_range", os.copy_file_range, fi, fo, size - n, n, n)
                if got == 0:
                    raise OSError(0, "%s ended at %d bytes of %d" % (src, n, size))
                n += got

            def punch():
                if libc.fallocate(fo, 0x03, HOLE[0], HOLE[1]) != 0:  # PUNCH_HOLE | KEEP_SIZE
                    e = ctypes.get_errno()
                    raise OSError(e, os.strerror(e))
            step.call("fallocate", punch)
            fsync_or_refused(step, fo)
        finally:
            step.call("close", os.close, fo)
    finally:
        step.call("close", os.close, fi)


def punched(data):
    out = bytearray(data)
    lo, hi = HOLE[0], min(len(out), HOLE[0] + HOLE[1])
    if lo < hi:
        out[lo:hi] = bytes(hi - lo)
    return bytes(out)


def journal_line(jfd, text):
    os.write(jfd, (text + "\n").encode())
    os.fsync(jfd)


def write(root, journal, stop, pause, seed):
    rnd = random.Random(seed)
    jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    log_end = 0
    log_fd = None
    k = 0
    done = 0
    refused = 0
    while not os.path.exists(stop):
        step = Step()
        op = "?"
        try:
            if k % 3 == 2:
                size = rnd.choice((1, 100, 4096, 65536, rnd.randrange(1, 70000)))
                data = rnd.randbytes(size)
                if log_fd is None:
                    op = "open log"
                    log_fd = step.call("open", os.open, os.path.join(root, "log"),
                                       os.O_WRONLY | os.O_CREAT, 0o644)
                op = "append log"
                n = 0
                while n < size:
                    n += step.call("pwrite", os.pwrite, log_fd, data[n:], log_end + n)
                fsync_or_refused(step, log_fd)
                journal_line(jfd, "append log %d %d %s %.6f %.6f %.6f %s" % (
                    log_end, size, hashlib.sha256(data).hexdigest(), step.start, time.time(),
                    step.slowest, step.op))
                log_end += size
            else:
                name = "n%d" % k
                size = rnd.choice((0, 1, 4096, 65536, 65537, rnd.randrange(1, 160000)))
                data = rnd.randbytes(size)
                op = "create " + name
                fd = step.call("open", os.open, os.path.join(root, name),
                               os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    n = 0
                    while n < size:
                        n += step.call("write", os.write, fd, data[n:])
                    fsync_or_refused(step, fd)
                finally:
                    step.call("close", os.close, fd)
                journal_line(jfd, "new %s %d %s %.6f %.6f %.6f %s" % (
                    name, size, hashlib.sha256(data).hexdigest(), step.start, time.time(),
                    step.slowest, step.op))
                if k % 3 == 1:
                    done += 1
                    step = Step()
                    op = "copy %s to c%d" % (name, k)
                    copy_and_punch(step, os.path.join(root, name), os.path.join(root, "c%d" % k), size)
                    journal_line(jfd, "new c%d %d %s %.6f %.6f %.6f %s" % (
                        k, size, hashlib.sha256(punched(data)).hexdigest(), step.start, time.time(),
                        step.slowest, step.op))
        except FsyncRefused as e:
            # Not acknowledged (the master changed under it): what it wrote
            # may be lost, so it is written again (the log at the same
            # offset, a file under the next name). Not an error.
            refused += 1
            print("ack_writer: fsync refused after %d acknowledged steps: %s" % (done, e.__cause__), file=sys.stderr)
            k += 1
            continue
        except OSError as e:
            journal_line(jfd, "error %.6f %.6f %s %s" % (step.start, time.time(), op.replace(" ", "_"), e))
            print("ack_writer: %s failed after %d acknowledged steps: %s" % (op, done, e), file=sys.stderr)
            return 1
        done += 1
        k += 1
        if pause:
            time.sleep(pause)
    if log_fd is not None:
        os.close(log_fd)
    os.close(jfd)
    print("ack_writer: %d acknowledged steps, no error (%d fsync(s) refused and written again)" % (done, refused))
    return 0


def read_journal(journal):
    with open(journal) as j:
        return [line.split() for line in j.read().splitlines() if line.strip()]


def verify(root, journal):
    bad = 0
    steps = 0
    log = None
    for f in read_journal(journal):
        if f[0] == "error":
            continue
        steps += 1
        if f[0] == "new":
            name, size, digest = f[1], int(f[2]), f[3]
            try:
                with open(os.path.join(root, name), "rb") as fh:
                    got = fh.read()
            except OSError as e:
                print("verify: %s: %s" % (name, e), file=sys.stderr)
                bad += 1
                continue
            if len(got) != size or hashlib.sha256(got).hexdigest() != digest:
                print("verify: %s: %d bytes, expected %d%s" % (
                    name, len(got), size, "" if len(got) != size else " (different bytes)"), file=sys.stderr)
                bad += 1
        else:
            off, size, digest = int(f[2]), int(f[3]), f[4]
            if log is None:
                with open(os.path.join(root, "log"), "rb") as fh:
                    log = fh.read()
            got = log[off:off + size]
            if hashlib.sha256(got).hexdigest() != digest:
                print("verify: log [%d, +%d): %s" % (off, size, "short" if len(got) < size else "different bytes"),
                      file=sys.stderr)
                bad += 1
    print("verify: %d acknowledged steps, %d bad" % (steps, bad))
    return 1 if bad or not steps else 0


def latency(journal, t0, t1):
    worst, op, n = 0.0, "-", 0
    for f in read_journal(journal):
        if f[0] == "error":
            continue
        start, end, slowest, what = (float(f[-4]), float(f[-3]), float(f[-2]), f[-1])
        if end < t0 or start > t1:
            continue
        n += 1
        if slowest > worst:
            worst, op = slowest, what
    print("slowest call %.3f s (%s) among %d steps" % (worst, op, n))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("write", "verify", "latency", "count"))
    ap.add_argument("args", nargs="*")
    ap.add_argument("--stop")
    ap.add_argument("--pause", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.mode == "write":
        root, journal = a.args
        return write(root, journal, a.stop, a.pause, a.seed)
    if a.mode == "verify":
        root, journal = a.args
        return verify(root, journal)
    if a.mode == "latency":
        journal, t0, t1 = a.args
        return latency(journal, float(t0), float(t1))
    journal, = a.args
    print(sum(1 for f in read_journal(journal) if f[0] != "error") if os.path.exists(journal) else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
