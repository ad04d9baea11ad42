#!/usr/bin/env python3
"""Damages a mounted filesystem on the server, step by step, and works through
the mount after each step: the generator behind tests/mount/hostile_state.sh.

usage: hostile_state.py SEED MOUNTPOINT SOCKET PREFIX STEPS

It builds a small tree under MOUNTPOINT/t (directories, files of 0 B to
200 KB, a symlink, a fifo, a device, an extended attribute), then STEPS
times: one to three damages of random keys of the tree (a key deleted or
of the wrong type, an inode field missing or malformed, a directory entry
naming garbage, an existing inode or a directory above it, a block of the
wrong size, stray inodes and blocks, a type changed under the kernel,
names, targets and attribute values the kernel cannot take, a
hostile ORPHANS, OPEN, XATTR, CHANGED, MOUNTS, WRITEBACK or COW), then stat, read, write,
truncate, hole punch, copy_file_range, chmod, rename, unlink, link, list, readlink and xattr calls on
everything it can reach. A call may fail (that is the damage); what the
caller judges is the daemon: it must stay up and keep serving what is not
damaged. The superblock and the root are left alone, so that a fresh
directory must still work. The same SEED makes the same damages and calls.
Prints one line a step: the damages made, and how many calls failed."""
import ctypes
import os
import random
import stat
import subprocess
import sys

seed, mnt, sock, prefix, steps = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
rnd = random.Random(seed)


def rcli(*args, data=None):
    cmd = ['redis-cli', '-s', sock] + (['-x'] if data is not None else []) + [str(a) for a in args]
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout.decode(errors='replace')


def tree_keys():
    keys = [k for k in rcli('--scan', '--pattern', prefix + ':*').split('\n') if k]
    spared = (':SB', ':INODE:1', ':DIR:1')
    return sorted(k for k in keys if not k.endswith(spared) and ':MOUNT' not in k and ':OPLOG' not in k)


def build():
    top = mnt + '/t'
    os.makedirs(top + '/a/b')
    for i in range(12):
        with open(f'{top}/a/f{i}', 'wb') as f:
            f.write(rnd.randbytes(rnd.choice([0, 1, 100, 4096, 65536, 70000, 200000])))
    os.symlink('a/f1', top + '/sl')
    os.mkfifo(top + '/fifo')
    os.mknod(top + '/null', 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    os.setxattr(top + '/a/f2', 'user.x', b'v')


BAD = ['', 'x', '-1', '99999999999999999999', '1.5', '0', '18446744073709551616', '\x01', 'dir', 'file',
       '-9223372036854775808', '7777777', ' 1', 'T' * 5000]
# entry names: usable ones, and ones the kernel cannot take (a listing
# leaves them out)
NAMES = ['f1', 'zz', 'b', 'a', 'x/y', '', '.', '..', 'N' * 256]
FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'nlink', 'rdev', 'atime', 'mtime', 'ctime', 'bytes', 'parent',
          'target', 'gen']


def damage():
    keys = tree_keys()
    key = rnd.choice(keys)
    rel = key[len(prefix) + 1:]
    inos = [k.rsplit(':', 1)[1] for k in keys if ':INODE:' in k]
    dirs = [k for k in keys if ':DIR:' in k]
    kind = rnd.randrange(15)
    if kind == 0:
        rcli('DEL', key)
        return 'deleted ' + rel
    if kind in (1, 2):
        rcli('DEL', key)
        rcli('SET' if kind == 1 else 'SADD', key, 'junk')
        return ('a string: ' if kind == 1 else 'a set: ') + rel
    if kind in (3, 4) and inos:
        ino, field = rnd.choice(inos), rnd.choice(FIELDS)
        if kind == 3:
            value = rnd.choice(BAD)
            rcli('HSET', f'{prefix}:INODE:{ino}', field, value)
            return f'INODE:{ino} {field}={value!r}'
        rcli('HDEL', f'{prefix}:INODE:{ino}', field)
        return f'INODE:{ino} without {field}'
    if kind == 5 and dirs:
        d = rnd.choice(dirs)
        rcli('HSET', d, rnd.choice(NAMES), rnd.choice(BAD + ['1', '2', '3', '999']))
        return 'an entry naming garbage in ' + d[len(prefix) + 1:]
    if kind == 6 and dirs and inos:
        d = rnd.choice(dirs)
        rcli('HSET', d, rnd.choice(['loop', 'f1', 'a', 'b', '.', '..', 'L' * 300]), rnd.choice(inos))
        return 'an entry naming an existing inode in ' + d[len(prefix) + 1:]
    if kind == 7 and inos:
        ino = rnd.choice(inos)
        rcli('HSET', f'{prefix}:INODE:{ino}', 'type', rnd.choice(['dir', 'file', 'symlink', 'fifo', 'chr', 'sock']))
        return f'INODE:{ino} another type'
    if kind == 8 and inos:
        ino = rnd.choice(inos)
        rcli('HSET', f'{prefix}:INODE:{ino}', 'parent', rnd.choice(inos + ['0', 'x']))
        return f'INODE:{ino} another parent'
    if kind == 9:
        blocks = [k for k in keys if ':BLK:' in k] or [f'{prefix}:BLK:{rnd.choice(inos or ["5"])}:0']
        b = rnd.choice(blocks)
        rcli('SET', b, data=rnd.randbytes(rnd.choice([1, 65536, 70000, 300000])))
        return 'a block of another size: ' + b[len(prefix) + 1:]
    if kind == 10:
        rcli('HSET', f'{prefix}:INODE:{rnd.randrange(2, 60)}', rnd.choice(FIELDS), rnd.choice(BAD))
        return 'a stray inode field'
    if kind == 11:
        rcli('SET', f'{prefix}:BLK:{rnd.randrange(2, 60)}:{rnd.choice([0, 1, 5, 1000000])}',
             data=b'y' * rnd.choice([1, 70000]))
        return 'a stray block'
    if kind == 12 and inos and rnd.randrange(2):
        # names and values the kernel cannot take: an attribute's, a target
        ino = rnd.choice(inos)
        if rnd.randrange(2):
            rcli('HSET', f'{prefix}:XATTR:{ino}', rnd.choice(['', 'plain', 'user.', 'user.' + 'a' * 260]), 'v')
            return f'an unusable attribute name on {ino}'
        rcli('HSET', f'{prefix}:XATTR:{ino}', 'user.big', data=b'v' * 70000)
        return f'an attribute value over 64 KiB on {ino}'
    if kind == 12 and inos:
        which = rnd.choice(['XATTR', 'OPEN'])
        k = f'{prefix}:{which}:{rnd.choice(inos)}'
        rcli('DEL', k)
        rcli(rnd.choice(['SET', 'SADD']), k, 'q')
        return f'{which} of the wrong type'
    if kind == 13:
        k = f'{prefix}:' + rnd.choice(['CHANGED', 'ORPHANS', 'MOUNTS', 'WRITEBACK'])
        rcli('DEL', k)
        rcli(rnd.choice(['SET', 'SADD', 'RPUSH']), k, 'e')
        return k[len(prefix) + 1:] + ' of the wrong type'
    if kind == 14:
        # (dead: a live record naming another filesystem stops every change
        # by design, which test_cow covers; the new directory here must work.
        # A deadline years ahead is dead too: no copier sets one, and this
        # filesystem's staging prefix names one fsck --repair must not wait for)
        rcli('HSET', f'{prefix}:COW', 'staging',
             rnd.choice(['X', prefix, prefix + ':x', '', prefix + '~copy~0123456789abcdef']), 'deadline',
             rnd.choice(['x', '1', '', '4102444800000', '9223372036854775807']), 'ttl',
             rnd.choice(['1000', 'x', '-1']), 'token', 't')
        return 'a hostile COW'
    rcli('HSET', f'{prefix}:ORPHANS', rnd.choice(inos or ['5']), rnd.choice(['x', '1', '']))
    return 'an ORPHANS entry'


_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)


def punch_hole(fd, off, n):
    if _libc.fallocate(fd, 3, off, n) != 0:  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def call(p, op):
    if op == 0:
        os.lstat(p)
    elif op == 1:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)  # (a fifo: no waiting for a writer)
        try:
            os.read(fd, 1 << 20)
            os.lseek(fd, rnd.choice([0, 5, 65536, 10**6]), rnd.choice([os.SEEK_DATA, os.SEEK_HOLE]))
        finally:
            os.close(fd)
    elif op == 2:
        fd = os.open(p, os.O_RDWR | os.O_NONBLOCK)
        try:
            os.pwrite(fd, b'hello' * rnd.choice([1, 20000]), rnd.choice([0, 5, 65535, 200000]))
            punch_hole(fd, rnd.choice([0, 3, 65530, 10**6]), rnd.choice([1, 70000, 2**40]))
            os.copy_file_range(fd, fd, rnd.choice([1, 70000, 2**30]), rnd.choice([0, 7]), rnd.choice([2**31, 10**6 + 3]))
        finally:
            os.close(fd)
    elif op == 3:
        os.truncate(p, rnd.choice([0, 3, 65537, 10**6]))
    elif op == 4:
        os.chmod(p, 0o4755)
    elif op == 5:
        os.rename(p, p + '.r')
    elif op == 6:
        os.unlink(p)
    elif op == 7:
        os.listdir(p)
    elif op == 8:
        os.readlink(p)
    elif op == 9:
        os.link(p, p + '.l')
    elif op == 10:
        os.listxattr(p)
        os.getxattr(p, 'user.x')
    else:
        # (O_NONBLOCK: the name may be a fifo by now, whose open for writing
        # would wait for a reader forever; it fails with ENXIO instead)
        fd = os.open(p + '.n', os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK, 0o644)
        try:
            os.write(fd, b'nnn')
        finally:
            os.close(fd)
        os.utime(p, (1, 2))


def exercise():
    failed = 0
    seen = set()
    for root, dirs, files in os.walk(mnt + '/t'):
        try:  # a directory named twice (a loop the damage made) is walked once
            st = os.lstat(root)
        except OSError:
            dirs[:] = []
            continue
        if st.st_ino in seen or len(seen) > 200:
            dirs[:] = []
            continue
        seen.add(st.st_ino)
        for name in sorted(dirs + files):
            p = os.path.join(root, name)
            try:
                if stat.S_ISFIFO(os.lstat(p).st_mode):
                    continue
            except OSError:
                continue
            for _ in range(3):
                try:
                    call(p, rnd.randrange(12))
                except OSError:
                    failed += 1
    return failed


build()
for step in range(steps):
    made = [damage() for _ in range(rnd.randrange(1, 4))]
    print(f'step {step}: {"; ".join(made)}: {exercise()} call(s) failed', flush=True)
