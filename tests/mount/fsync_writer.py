#!/usr/bin/env python3
# fsync_writer.py: writes to files and keeps a journal, outside the mount,
# of what fsync confirmed; `verify` later checks every confirmed byte.
#
#   write ROOT JOURNAL [--files N] [--max N]: appends chunks of
#       deterministic random bytes (1 B .. 300 KB) to ROOT/f<i>, one pwrite
#       + fsync each, then appends "<file> <offset> <length> <record>" to the
#       journal and fsyncs it. Stops (exit 0) at the first error: the
#       daemon is killed under it on purpose.
#   verify ROOT JOURNAL: every journaled chunk must read back exactly; a
#       file may be longer (writes that were never confirmed).
import argparse
import os
import random
import sys


def chunk(record, length):
    return random.Random(record).randbytes(length)


def write(root, journal, files, limit):
    rnd = random.Random(7)
    ends = [0] * files
    jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    fds = {}
    record = 0
    try:
        while limit == 0 or record < limit:
            i = rnd.randrange(files)
            length = rnd.choice((1, 4096, 65536, 65537, rnd.randrange(1, 300000)))
            data = chunk(record, length)
            if i not in fds:
                fds[i] = os.open(os.path.join(root, "f%d" % i), os.O_WRONLY | os.O_CREAT, 0o644)
            done = 0
            while done < length:
                done += os.pwrite(fds[i], data[done:], ends[i] + done)
            os.fsync(fds[i])
            os.write(jfd, b"%d %d %d %d\n" % (i, ends[i], length, record))
            os.fsync(jfd)
            ends[i] += length
            record += 1
    except OSError as e:
        print("fsync_writer: stopped after %d confirmed records: %s" % (record, e))
        return 0
    finally:
        os.close(jfd)
    print("fsync_writer: %d records" % record)
    return 0


def verify(root, journal):
    with open(journal, "rb") as j:
        lines = j.read().splitlines()
    bad = 0
    files = {}
    for line in lines:
        i, off, length, record = map(int, line.split())
        if i not in files:
            with open(os.path.join(root, "f%d" % i), "rb") as f:
                files[i] = f.read()
        got = files[i][off:off + length]
        if got != chunk(record, length):
            bad += 1
            print("verify: f%d record %d [%d, +%d): %s" % (
                i, record, off, length, "short" if len(got) < length else "different bytes"), file=sys.stderr)
    print("verify: %d confirmed records, %d bad" % (len(lines), bad))
    return 1 if bad or not lines else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("write", "verify"))
    ap.add_argument("root")
    ap.add_argument("journal")
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--max", type=int, default=0)
    a = ap.parse_args()
    if a.mode == "write":
        return write(a.root, a.journal, a.files, a.max)
    return verify(a.root, a.journal)


if __name__ == "__main__":
    sys.exit(main())
