#!/usr/bin/env python3
# fsx.py: a file-data exerciser in the habit of fsx (xfstests): random
# writes, reads, truncates, appends, vectored writes, shared mmap writes and
# reads, copy_file_range, fsync, reopens (some with O_TRUNC) on a few files
# at once, each checked against a model of what the file must hold. Every
# read compares, every op checks the size; a mismatch prints the op, the
# first differing offset and the ops that led to it, and exits 1.
#
# With two mount points of one filesystem (--mount A --mount B), the
# writer moves from one mount to the other now and then, after closing
# every file (close-to-open: the next open must see what the other mount
# wrote, whatever the first mount's kernel cached). --save DIR writes
# what each file must hold (the model) to DIR, for a check after a
# remount (tests/mount/fsx.sh). Deterministic for a given --seed.
#
#   usage: fsx.py --mount DIR [--mount DIR] [--seed N] [--ops N]
#                 [--files N] [--max-size BYTES] [--block BYTES] [--save DIR]
import argparse
import ctypes
import errno
import mmap
import os
import random
import sys

OPS = (  # name, weight
    ('write', 24), ('read', 18), ('truncate', 7), ('append', 5), ('writev', 4),
    ('mmap_write', 5), ('mmap_read', 4), ('copy_range', 3), ('fsync', 3),
    ('reopen', 5), ('reopen_trunc', 1), ('switch', 3), ('verify', 3),
    ('punch', 4), ('holes', 2),
)

FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)


def punch_hole(fd, off, n):
    if _libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n) != 0:
        e = ctypes.get_errno()
        raise OSError(e, 'fallocate(PUNCH_HOLE) %d+%d: %s' % (off, n, os.strerror(e)))


class Mismatch(Exception):
    pass


class Fsx:

    def __init__(self, args):
        self.rng = random.Random(args.seed)
        self.mounts = args.mount
        self.block = args.block
        self.max_size = args.max_size
        self.names = ['fsx-%d-%d' % (args.seed, i) for i in range(args.files)]
        self.model = {n: bytearray() for n in self.names}
        self.fds = {}
        self.at = 0  # the mount the writer uses
        self.log = []
        self.copy_range = hasattr(os, 'copy_file_range')
        for n in self.names:
            self._open(n, os.O_CREAT | os.O_TRUNC)

    # ---------------------------------------------------------------- helpers

    def _path(self, name, at=None):
        return os.path.join(self.mounts[self.at if at is None else at], name)

    def _open(self, name, extra=0):
        self.fds[name] = os.open(self._path(name), os.O_RDWR | extra, 0o644)
        if extra & os.O_TRUNC:
            self.model[name] = bytearray()

    def _close_all(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def _offset(self, size, length):
        """An offset for an op of LENGTH bytes on a file of SIZE: often a
        block edge, now and then past the end (a hole), mostly inside."""
        r = self.rng.random()
        if r < 0.25:
            off = self.rng.randrange(0, self.max_size // self.block + 1) * self.block
            off += self.rng.choice((0, 0, -1, 1))
        elif r < 0.35:
            off = size + self.rng.choice((0, 0, 1, self.block, self.rng.randrange(1, 4 * self.block)))
        else:
            off = self.rng.randrange(0, max(size, 1) + self.block)
        return max(0, min(off, self.max_size - length))

    def _length(self):
        r = self.rng.random()
        if r < 0.4:
            return self.rng.randrange(1, 64)
        if r < 0.7:
            return self.rng.randrange(1, 2 * self.block)
        if r < 0.85:
            return self.rng.choice((1, 2, 4)) * self.block
        return self.rng.randrange(1, min(self.max_size, 8 * self.block))

    def _data(self, n):
        # no long runs of zeros, so a hole in the wrong place shows
        return self.rng.randbytes(n).replace(b'\0', b'\x5a')

    def _put(self, name, off, data):
        m = self.model[name]
        if off > len(m):
            m.extend(bytes(off - len(m)))
        m[off:off + len(data)] = data

    def _compare(self, name, off, got, what, n=None):
        """GOT, read at OFF, against the model's N bytes there (to the end
        without N)."""
        m = self.model[name]
        want = bytes(m[off:] if n is None else m[off:off + n])
        if got == want:
            return
        n = min(len(got), len(want))
        first = next((i for i in range(n) if got[i] != want[i]), n)
        raise Mismatch('%s of %s: %d bytes read at %d, %d expected; first difference at offset %d '
                       '(got %s, want %s)' % (what, name, len(got), off, len(want), off + first,
                                              got[first:first + 8].hex(), want[first:first + 8].hex()))

    def _check_size(self, name, what):
        size = os.fstat(self.fds[name]).st_size
        if size != len(self.model[name]):
            raise Mismatch('%s of %s: size %d, %d expected' % (what, name, size, len(self.model[name])))

    # -------------------------------------------------------------------- ops

    def op_write(self, name):
        n = self._length()
        off = self._offset(len(self.model[name]), n)
        data = self._data(n)
        self.log.append('write %s %d+%d' % (name, off, n))
        if os.pwrite(self.fds[name], data, off) != n:
            raise Mismatch('short write')
        self._put(name, off, data)

    def op_writev(self, name):
        parts = [self._data(self.rng.randrange(1, self.block + 2)) for _ in range(self.rng.randrange(2, 5))]
        n = sum(map(len, parts))
        off = self._offset(len(self.model[name]), n)
        self.log.append('writev %s %d+%s' % (name, off, [len(p) for p in parts]))
        if os.pwritev(self.fds[name], parts, off) != n:
            raise Mismatch('short writev')
        self._put(name, off, b''.join(parts))

    def op_append(self, name):
        data = self._data(self._length())
        if len(self.model[name]) + len(data) > self.max_size:
            return
        self.log.append('append %s +%d' % (name, len(data)))
        fd = os.open(self._path(name), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.model[name].extend(data)

    def op_read(self, name):
        size = len(self.model[name])
        n = self._length()
        off = self._offset(size, n)
        self.log.append('read %s %d+%d' % (name, off, n))
        self._compare(name, off, os.pread(self.fds[name], n, off), 'read', n)

    def op_truncate(self, name):
        size = len(self.model[name])
        r = self.rng.random()
        if r < 0.3:
            new = self.rng.randrange(0, size + 1)
        elif r < 0.6:
            new = self.rng.randrange(0, self.max_size // self.block + 1) * self.block
        else:
            new = min(self.max_size, size + self.rng.randrange(0, 3 * self.block))
        self.log.append('truncate %s %d -> %d' % (name, size, new))
        os.ftruncate(self.fds[name], new)
        m = self.model[name]
        if new < len(m):
            del m[new:]
        else:
            m.extend(bytes(new - len(m)))

    def op_punch(self, name):
        size = len(self.model[name])
        n = self._length()
        off = self._offset(size, n)
        self.log.append('punch %s %d+%d' % (name, off, n))
        punch_hole(self.fds[name], off, n)
        m = self.model[name]
        if off < len(m):
            end = min(off + n, len(m))
            m[off:end] = bytes(end - off)

    def op_holes(self, name):
        fd = self.fds[name]
        m = self.model[name]
        self.log.append('holes %s' % name)
        at = 0
        while at < len(m):
            hole = os.lseek(fd, at, os.SEEK_HOLE)
            try:
                at = os.lseek(fd, hole, os.SEEK_DATA)
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
                at = len(m)
            if hole < at and any(m[hole:at]):
                first = hole + next(i for i, b in enumerate(m[hole:at]) if b)
                raise Mismatch('holes of %s: %d-%d is a hole, but the model holds data at %d' % (name, hole, at, first))

    def _map(self, name):
        size = len(self.model[name])
        if size == 0:
            return None, 0, 0
        n = min(size, self._length())
        off = self.rng.randrange(0, size - n + 1)
        return mmap.mmap(self.fds[name], size), off, n

    def op_mmap_write(self, name):
        mm, off, n = self._map(name)
        if mm is None:
            return
        data = self._data(n)
        self.log.append('mmap_write %s %d+%d' % (name, off, n))
        with mm:
            mm[off:off + n] = data
            mm.flush()
        self._put(name, off, data)

    def op_mmap_read(self, name):
        mm, off, n = self._map(name)
        if mm is None:
            return
        self.log.append('mmap_read %s %d+%d' % (name, off, n))
        with mm:
            got = mm[off:off + n]
        self._compare(name, off, got, 'mmap read', n)

    def op_copy_range(self, name):
        if not self.copy_range:
            return self.op_write(name)
        # another file mostly, now and then the same one (ranges apart)
        same = len(self.names) < 2 or self.rng.random() < 0.15
        src = name if same else self.rng.choice([s for s in self.names if s != name])
        ssize = len(self.model[src])
        if ssize == 0:
            return
        if self.rng.random() < 0.1:
            n = self.rng.randrange(1, ssize + 1)  # (a large one: answered in steps)
        else:
            n = self.rng.randrange(1, min(ssize, 4 * self.block) + 1)
        soff = self.rng.randrange(0, ssize - n + 1)
        off = self._offset(len(self.model[name]), n)
        if same and off < soff + n and soff < off + n:
            return  # (overlapping ranges of one file: EINVAL)
        self.log.append('copy_range %s %d+%d -> %s %d' % (src, soff, n, name, off))
        data = bytes(self.model[src][soff:soff + n])
        done = 0
        while done < n:
            try:
                got = os.copy_file_range(self.fds[src], self.fds[name], n - done, soff + done, off + done)
            except OSError as e:
                if e.errno in (errno.EXDEV, errno.EOPNOTSUPP, errno.ENOSYS):
                    self.copy_range = False
                    self.log.append('  (copy_file_range: %s; not used again)' % errno.errorcode[e.errno])
                    return
                raise
            if got == 0:
                raise Mismatch('copy_file_range copied %d of %d bytes, then none' % (done, n))
            done += got
        self._put(name, off, data)

    def op_fsync(self, name):
        self.log.append('fsync %s' % name)
        (os.fsync if self.rng.random() < 0.5 else os.fdatasync)(self.fds[name])

    def op_reopen(self, name):
        self.log.append('reopen %s' % name)
        os.close(self.fds.pop(name))
        self._open(name)

    def op_reopen_trunc(self, name):
        self.log.append('reopen %s O_TRUNC' % name)
        os.close(self.fds.pop(name))
        self._open(name, os.O_TRUNC)

    def op_switch(self, name):
        if len(self.mounts) < 2:
            return self.op_reopen(name)
        self._close_all()
        self.at = (self.at + 1) % len(self.mounts)
        self.log.append('switch to mount %d' % self.at)
        for n in self.names:
            self._open(n)
        for n in self.names:
            self._verify(n, 'after the switch, whole file')

    def _verify(self, name, what):
        self._check_size(name, what)
        fd = self.fds[name]
        got = bytearray()
        while True:
            chunk = os.pread(fd, 1 << 20, len(got))
            if not chunk:
                break
            got += chunk
        self._compare(name, 0, bytes(got), what)

    def op_verify(self, name):
        self.log.append('verify %s' % name)
        self._verify(name, 'whole-file read')

    # ------------------------------------------------------------------- run

    def run(self, ops):
        names, weights = zip(*OPS)
        for i in range(ops):
            op = self.rng.choices(names, weights)[0]
            name = self.rng.choice(self.names)
            getattr(self, 'op_' + op)(name)
            if name in self.fds:
                self._check_size(name, 'op %d (%s)' % (i, op))
        for n in self.names:
            self._verify(n, 'final check')
        # the other mount sees it all once the files are closed
        self._close_all()
        for at in range(len(self.mounts)):
            self.at = at
            for n in self.names:
                self._open(n)
                self._verify(n, 'final check on mount %d' % at)
            self._close_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mount', action='append', required=True)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--ops', type=int, default=2000)
    ap.add_argument('--files', type=int, default=3)
    ap.add_argument('--max-size', type=int, default=256 * 1024)
    ap.add_argument('--block', type=int, default=4096)
    ap.add_argument('--save')
    args = ap.parse_args()
    fsx = Fsx(args)
    try:
        fsx.run(args.ops)
    except (Mismatch, OSError) as e:
        print('fsx seed %d: %s' % (args.seed, e), file=sys.stderr)
        print('the last ops:', file=sys.stderr)
        for line in fsx.log[-int(os.environ.get('FSX_LOG', '25')):]:
            print('  ' + line, file=sys.stderr)
        return 1
    if args.save:
        for n, m in fsx.model.items():
            with open(os.path.join(args.save, n), 'wb') as f:
                f.write(m)
    print('fsx seed %d: %d ops on %d files, %d bytes at the end, all reads as written' %
          (args.seed, args.ops, len(fsx.names), sum(map(len, fsx.model.values()))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
