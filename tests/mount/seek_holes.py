#!/usr/bin/env python3
"""seek_holes.py: SEEK_DATA and SEEK_HOLE on a mount (seek_holes.sh).

  seek_holes.py map FILE          the file's data runs, one "start end" a
                                  line (SEEK_DATA then SEEK_HOLE from 0),
                                  then "end ENXIO" (what SEEK_DATA said
                                  past the last run) or "end none"
  seek_holes.py at FILE WHENCE OFF  one lseek: its offset, or the errno's name
  seek_holes.py open-write FILE BS  makes FILE, writes 100 bytes at 3 * BS +
                                  10 and, still open (the daemon gathers
                                  what a new file's open writes until its
                                  close), prints SEEK_DATA from 0, then
                                  closes it
"""
import errno
import os
import sys


def at(fd, whence, off):
    try:
        return str(os.lseek(fd, off, whence))
    except OSError as e:
        return errno.errorcode[e.errno]


def data_map(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        off, lines = 0, []
        while off < size:
            start = at(fd, os.SEEK_DATA, off)
            if not start.isdigit():
                lines.append("end " + start)
                break
            end = int(at(fd, os.SEEK_HOLE, int(start)))
            lines.append("%s %d" % (start, end))
            off = end
        else:
            lines.append("end none")
        return lines
    finally:
        os.close(fd)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "map":
        print("\n".join(data_map(path)))
    elif cmd == "at":
        whence = {"data": os.SEEK_DATA, "hole": os.SEEK_HOLE}[sys.argv[3]]
        fd = os.open(path, os.O_RDONLY)
        print(at(fd, whence, int(sys.argv[4])))
        os.close(fd)
    elif cmd == "open-write":
        bs = int(sys.argv[3])
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        os.pwrite(fd, b"x" * 100, 3 * bs + 10)
        print(at(fd, os.SEEK_DATA, 0))
        os.close(fd)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
