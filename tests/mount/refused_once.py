#!/usr/bin/env python3
# refused_once.py: a writeback mount's change that the server refuses when
# it is sent, after the call that made it returned (core/store/
# store_dirs.cpp): damages the server (HSET KEY FIELD VALUE), makes the
# change through DIR (opened first: a lookup may fail after the damage),
# then waits until the daemon's log says REFUSAL, and checks that the
# next fsync of DIR fails with EIO and the one after it succeeds (the
# refusal is reported once). Exits non-zero, saying why, otherwise.
#
#   usage: refused_once.py DIR LOG REFUSAL SOCKET KEY FIELD VALUE ACTION
#   ACTION: chmod:MODE (octal, of DIR), unlink:NAME or rmdir:NAME (in DIR)
import errno
import os
import subprocess
import sys
import time


def main():
    d, log, refusal, sock, key, field, value, action = sys.argv[1:]
    fd = os.open(d, os.O_RDONLY)
    subprocess.run(["redis-cli", "-s", sock, "hset", key, field, value], check=True, stdout=subprocess.DEVNULL)
    kind, _, arg = action.partition(":")
    if kind == "chmod":
        os.fchmod(fd, int(arg, 8))
    elif kind == "unlink":
        os.unlink(os.path.join(d, arg))
    elif kind == "rmdir":
        os.rmdir(os.path.join(d, arg))
    else:
        sys.exit(f"unknown action {action!r}")
    for _ in range(100):
        if refusal in open(log).read():
            break
        time.sleep(0.1)
    else:
        sys.exit(f"a refused {kind} was not logged")
    try:
        os.fsync(fd)
        sys.exit(f"the fsync after a refused {kind} succeeded")
    except OSError as e:
        if e.errno != errno.EIO:
            sys.exit(f"the fsync after a refused {kind} failed with {e}, not EIO")
    os.fsync(fd)  # (reported once)


if __name__ == "__main__":
    main()
