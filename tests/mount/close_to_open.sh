#!/usr/bin/env bash
# close_to_open: an open sees what another mount's close left, size and
# bytes, whatever the opening mount's kernel still caches of the file
# (README: "close-to-open", as on NFS). The kernel reads no byte past the
# size it holds, for attr_timeout: B and C cache attributes for a minute
# here, so that a size kept across an open shows as a short, cut read
# (each case also passes the file between the mounts within a second,
# the default attr_timeout). A grows, shrinks and rewrites files that B
# (read-write) and C (read-only, of the live filesystem) looked at by
# stat, by a listing (readdirplus), by reading, and by reading past the
# end (the kernel then cuts its size itself); B's and C's next open must
# show the new size to fstat and read every byte.
. "$(dirname "$0")/lib.sh"

A=$T/a B=$T/b C=$T/c
mount_at "$A"
mount_at "$B" -o attr_timeout=60,entry_timeout=60
mount_at "$C" --read-only -o attr_timeout=60,entry_timeout=60

python3 - "$A" "$B" "$C" <<'PY' || fail "an open did not see what the other mount's close left (above)"
import os
import sys

A, B, C = sys.argv[1:]
bad = []


def put(path, data, trunc=True):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if trunc else 0), 0o644)
    os.write(fd, data)
    os.close(fd)


def shown(path, flags):
    fd = os.open(path, flags)
    try:
        size = os.fstat(fd).st_size
        data = b''
        while chunk := os.read(fd, 1 << 16):
            data += chunk
        return size, data
    finally:
        os.close(fd)


def check(case, mount, name, flags, want):
    size, data = shown(os.path.join(mount, name), flags)
    if (size, data) != (len(want), want):
        bad.append('%s: %s shows size %d and %d bytes %r..., want %d bytes %r...' %
                   (case, mount, size, len(data), data[:24], len(want), want[:24]))


for m, how in ((B, os.O_RDONLY), (B, os.O_RDWR), (C, os.O_RDONLY)):
    tag = '%s %s' % (os.path.basename(m), 'O_RDWR' if how == os.O_RDWR else 'O_RDONLY')
    n = 'f-%s-%d' % (os.path.basename(m), how)
    # stat only, then A grows it
    put(os.path.join(A, n), b'short\n')
    os.stat(os.path.join(m, n))
    put(os.path.join(A, n), b'a longer line, written by A\n')
    check('grown after a stat (%s)' % tag, m, n, how, b'a longer line, written by A\n')
    # then A shrinks it
    put(os.path.join(A, n), b'tiny\n')
    check('shrunk (%s)' % tag, m, n, how, b'tiny\n')
    # the same size, other bytes
    put(os.path.join(A, n), b'TINY\n')
    check('rewritten at the same size (%s)' % tag, m, n, how, b'TINY\n')
    # read past the end (the kernel cuts its size there), then grown back
    put(os.path.join(A, n), bytes(range(256)) * 40)
    check('grown to 10240 bytes (%s)' % tag, m, n, how, bytes(range(256)) * 40)
    put(os.path.join(A, n), b'x' * 100)
    check('shrunk to 100 bytes (%s)' % tag, m, n, how, b'x' * 100)
    put(os.path.join(A, n), b'y' * 10240)
    check('grown back to the size read before (%s)' % tag, m, n, how, b'y' * 10240)
    # appended to, without O_TRUNC
    put(os.path.join(A, n), b'z' * 5000, trunc=False)
    check('partly overwritten (%s)' % tag, m, n, how, b'z' * 5000 + b'y' * 5240)

# seen by a listing with attributes (readdirplus), then grown
os.mkdir(os.path.join(A, 'd'))
for i in range(5):
    put(os.path.join(A, 'd', 'g%d' % i), b'%d\n' % i)
for m in (B, C):
    os.listdir(os.path.join(m, 'd'))
    for i in range(5):
        os.lstat(os.path.join(m, 'd', 'g%d' % i))
for i in range(5):
    put(os.path.join(A, 'd', 'g%d' % i), b'file %d, grown by A after the listing\n' % i)
for m in (B, C):
    for i in range(5):
        check('grown after a listing', m, os.path.join('d', 'g%d' % i), os.O_RDONLY,
              b'file %d, grown by A after the listing\n' % i)

for line in bad:
    print(line)
sys.exit(1 if bad else 0)
PY
note "an open shows another mount's last close, whatever its kernel cached"
