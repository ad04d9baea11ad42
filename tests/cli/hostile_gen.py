#!/usr/bin/env python3
"""hostile_gen.py: hostile redisfs dumps from a valid one (issue 8).

    hostile_gen.py BASE.json OUTDIR COUNT [SEED]

Reads BASE.json (a dump written by `redisfs-snap dump`, redisfs-dump(5)),
and writes COUNT dumps OUTDIR/NNN.json, each BASE with one to three
semantic mutations (field values at extremes or garbage, dropped or
duplicated records and fields, keys of the wrong type, huge and invalid
names, dangling entries, directory cycles, bad symlink targets and
attributes, blocks out of place, a header announcing any record count...),
and OUTDIR/manifest.tsv, one line per dump:
"NNN.json<TAB>kind[,kind...]<TAB>what was done". The trailer (record
count, byte count, SHA-256 of the canonical framing) is recomputed, so a
restore gets past the checksum to its own checks: every dump here is a
well-formed dump of a hostile filesystem.

Deterministic: the same BASE, COUNT and SEED give the same files. Python 3
standard library only.
"""
import base64
import hashlib
import json
import os
import random
import struct
import sys

# ---------------------------------------------------------------- codec


def decode_bytes(v):
    if isinstance(v, dict):
        return base64.b64decode(v['base64'])
    return v.encode('utf-8')


def encode_bytes(b):
    try:
        return b.decode('utf-8')
    except UnicodeDecodeError:
        return {'base64': base64.b64encode(b).decode('ascii')}


def read_dump(path):
    with open(path, 'rb') as f:
        doc = json.load(f)
    records = []
    for r in doc['records']:
        key = r['key']
        if 'string' in r:
            records.append([key, 'string', decode_bytes(r['string'])])
        else:
            records.append([key, 'hash', [[decode_bytes(f), decode_bytes(v)] for f, v in r['hash']]])
    header = {k: v for k, v in doc.items() if k not in ('records', 'trailer')}
    return header, records


def u64(n):
    return struct.pack('<Q', n)


def write_dump(path, header, records):
    """Writes the dump with a trailer that matches its records, and returns
    the trailer. A record of kind 'delete' (an incremental dump's deletion,
    inc_hostile_gen.py) is framed as its key, 0x00, 'd'."""
    sha = hashlib.sha256()
    nbytes = 0
    out = []
    for key, kind, val in records:
        sha.update(key.encode('utf-8', 'surrogateescape') + b'\0')
        if kind == 'delete':
            sha.update(b'd')
            out.append({'key': key, 'delete': True})
        elif kind == 'string':
            sha.update(b's' + u64(len(val)) + val)
            nbytes += len(val)
            out.append({'key': key, 'string': encode_bytes(val)})
        else:
            sha.update(b'h')
            for f, v in val:
                sha.update(b'p' + u64(len(f)) + f + u64(len(v)) + v)
                nbytes += len(f) + len(v)
            sha.update(b'e' + u64(len(val)))
            out.append({'key': key, 'hash': [[encode_bytes(f), encode_bytes(v)] for f, v in val]})
    doc = dict(header)
    doc['records'] = out
    doc['trailer'] = {'records': len(records), 'bytes': nbytes, 'sha256': sha.hexdigest()}
    with open(path, 'w') as f:
        json.dump(doc, f)
    return doc['trailer']


# ---------------------------------------------------------------- helpers

EXTREMES = [
    b'', b'0', b'1', b'-1', b'-0', b'01', b' 1', b'1 ', b'+1', b'1.5', b'1e9', b'0x10', b'abc', b'\x00',
    b'\xff\xfe', b'4294967295', b'4294967296', b'9007199254740991', b'9007199254740992',
    b'9007199254740993', b'1125899906842624', b'1125899906842625', b'9223372036854775807',
    b'9223372036854775808', b'-9223372036854775808', b'18446744073709551615', b'18446744073709551616',
    b'99999999999999999999999999', b'a' * 5000,
]
INODE_FIELDS = [b'type', b'mode', b'uid', b'gid', b'size', b'nlink', b'rdev', b'bytes', b'atime', b'mtime',
                b'ctime', b'parent', b'gen', b'target']
SB_FIELDS = [b'format', b'version', b'block_size', b'root', b'next_inode', b'inodes', b'bytes', b'created',
             b'read_only', b'security_xattrs', b'origin', b'snapshot_created']
TYPES = [b'file', b'dir', b'symlink', b'fifo', b'chr', b'blk', b'sock', b'', b'FILE', b'weird']
BAD_NAMES = [b'', b'.', b'..', b'a/b', b'/', b'a\x00b', b'n' * 256, b'n' * 70000, b'\xff\xfe', b'\n',
             b'lost+found']
BAD_XATTRS = [b'', b'user.', b'plain', b'user', b'user.a\x00b', b'user.' + b'a' * 251, b'other.x',
              b'security.selinux', b'system.posix_acl_access', b'trusted.t']


class Fs:
    """The records of a dump, indexed by key."""

    def __init__(self, records, header=None):
        self.records = records
        self.header = dict(header or {})

    def find(self, key):
        for r in self.records:
            if r[0] == key:
                return r
        return None

    def keys(self, prefix):
        return [r[0] for r in self.records if r[0].startswith(prefix)]

    def inodes(self):
        return [int(k.split(':')[1]) for k in self.keys('INODE:')]

    def inode_type(self, ino):
        r = self.find('INODE:%d' % ino)
        if r is None or r[1] != 'hash':
            return None
        for f, v in r[2]:
            if f == b'type':
                return v
        return None

    def of_type(self, t):
        return [i for i in self.inodes() if self.inode_type(i) == t]

    def set_field(self, key, field, value):
        r = self.find(key)
        if r is None or r[1] != 'hash':
            return False
        for pair in r[2]:
            if pair[0] == field:
                pair[1] = value
                return True
        r[2].append([field, value])
        return True

    def drop_field(self, key, field):
        r = self.find(key)
        if r is None or r[1] != 'hash':
            return False
        before = len(r[2])
        r[2] = [p for p in r[2] if p[0] != field]
        if not r[2]:
            self.records.remove(r)  # Redis has no empty hashes
        return len(r[2]) != before

    def hash_add(self, key, field, value):
        r = self.find(key)
        if r is None:
            self.records.append([key, 'hash', [[field, value]]])
            return True
        if r[1] != 'hash':
            return False
        for pair in r[2]:
            if pair[0] == field:
                pair[1] = value
                return True
        r[2].append([field, value])
        return True

    def max_ino(self):
        return max(self.inodes() or [1])


# ---------------------------------------------------------------- mutations
# Each takes (fs, rng) and returns a description, or None when it does not
# apply to this dump.


def m_inode_field(fs, rng):
    ino = rng.choice(fs.inodes())
    field = rng.choice(INODE_FIELDS)
    value = rng.choice(TYPES) if field == b'type' and rng.random() < 0.5 else rng.choice(EXTREMES)
    fs.set_field('INODE:%d' % ino, field, value)
    return 'INODE:%d %s=%r' % (ino, field.decode(), value[:40])


def m_sb_field(fs, rng):
    field = rng.choice(SB_FIELDS)
    value = rng.choice(EXTREMES + [b'redisfs', b'2', b'4096', b'65536', b'8192', b'131072', b'67108864'])
    fs.set_field('SB', field, value)
    return 'SB %s=%r' % (field.decode(), value[:40])


def m_next_inode(fs, rng):
    value = rng.choice([b'18446744073709551615', b'9007199254740992', b'9007199254740991', b'0', b'1', b'2',
                        str(fs.max_ino()).encode(), str(max(fs.max_ino() - 1, 1)).encode()])
    fs.set_field('SB', b'next_inode', value)
    return 'SB next_inode=%s' % value.decode()


def m_drop_field(fs, rng):
    key = rng.choice(fs.keys('INODE:') + ['SB'])
    field = rng.choice(INODE_FIELDS if key != 'SB' else SB_FIELDS)
    if not fs.drop_field(key, field):
        return None
    return '%s drop %s' % (key, field.decode())


def m_unknown_field(fs, rng):
    key = rng.choice(fs.keys('INODE:') + ['SB'])
    fs.set_field(key, b'future_' + str(rng.randrange(100)).encode(), rng.choice(EXTREMES))
    return '%s unknown field' % key


def m_drop_record(fs, rng):
    r = rng.choice(fs.records)
    fs.records.remove(r)
    return 'drop %s' % r[0]


def m_dup_inode(fs, rng):
    ino = rng.choice(fs.inodes())
    r = fs.find('INODE:%d' % ino)
    if r is None:
        return None
    new = fs.max_ino() + 1 + rng.randrange(3)
    # An earlier mutation may have made it a string (wrong type).
    value = r[2] if r[1] == 'string' else [list(p) for p in r[2]]
    fs.records.append(['INODE:%d' % new, r[1], value])
    return 'INODE:%d copied to INODE:%d' % (ino, new)


def m_dup_record(fs, rng):
    r = rng.choice(fs.records)
    fs.records.append([r[0], r[1], r[2] if r[1] == 'string' else [list(p) for p in r[2]]])
    return 'duplicate %s' % r[0]


def retype(r):
    """Record r as the other type (a string's bytes as one field's value,
    a hash's fields and values joined): what it says."""
    if r[1] == 'string':
        r[1], r[2] = 'hash', [[b'x', r[2] or b'y']]
    else:
        r[1], r[2] = 'string', b''.join(f + v for f, v in r[2])
    return '%s becomes a %s' % (r[0], r[1])


def m_retype(fs, rng):
    return retype(rng.choice(fs.records))


def m_bad_entry_name(fs, rng):
    dirs = fs.keys('DIR:')
    if not dirs:
        return None
    key = rng.choice(dirs)
    name = rng.choice(BAD_NAMES)
    target = rng.choice(fs.inodes())
    if rng.random() < 0.5:
        # rename an existing entry: what it named keeps one name fewer
        r = fs.find(key)
        if r[1] == 'hash' and r[2]:
            pair = rng.choice(r[2])
            if all(p[0] != name for p in r[2]):
                old = pair[0]
                pair[0] = name
                return '%s entry %r renamed %r' % (key, old[:20], name[:20])
    fs.hash_add(key, name, str(target).encode())
    return '%s entry %r -> %d' % (key, name[:20], target)


def m_dangling_entry(fs, rng):
    dirs = fs.keys('DIR:')
    if not dirs:
        return None
    key = rng.choice(dirs)
    value = rng.choice([b'999999', b'0', b'abc', b'9007199254740993', b'18446744073709551615', b'', b'01', b'-1'])
    fs.hash_add(key, b'dangling%d' % rng.randrange(100), value)
    return '%s dangling -> %r' % (key, value)


def m_cycle(fs, rng):
    dirs = fs.of_type(b'dir')
    if not dirs:
        return None
    d = rng.choice(dirs)
    target = rng.choice(dirs)
    fs.hash_add('DIR:%d' % d, b'loop', str(target).encode())
    if rng.random() < 0.5:
        fs.set_field('INODE:%d' % target, b'parent', str(d).encode())
    return 'DIR:%d loop -> %d' % (d, target)


def m_xattr(fs, rng):
    ino = rng.choice(fs.inodes())
    name = rng.choice(BAD_XATTRS)
    value = rng.choice([b'v', b'', b'\x00\xff', b'x' * (64 * 1024), b'x' * (64 * 1024 + 1), b'y' * 200000])
    fs.hash_add('XATTR:%d' % ino, name, value)
    return 'XATTR:%d %r = %d bytes' % (ino, name[:20], len(value))


def m_symlink(fs, rng):
    links = fs.of_type(b'symlink')
    if not links:
        return None
    ino = rng.choice(links)
    target = rng.choice([b'', b'a' * 4095, b'a' * 4096, b'a' * 70000, b'a\x00b', b'/', b'\xff'])
    if rng.random() < 0.2:
        fs.drop_field('INODE:%d' % ino, b'target')
        return 'INODE:%d no target' % ino
    fs.set_field('INODE:%d' % ino, b'target', target)
    if rng.random() < 0.5:
        fs.set_field('INODE:%d' % ino, b'size', str(len(target)).encode())
    return 'INODE:%d target of %d bytes' % (ino, len(target))


def m_block(fs, rng):
    files = fs.of_type(b'file') or fs.inodes()
    ino = rng.choice(files + fs.inodes())
    index = rng.choice([0, 1, 2, 7, 1000, 2 ** 40, 9999999999999999999])
    data = rng.choice([b'', b'z', b'z' * 4096, b'z' * 4097, b'z' * 70000])
    fs.records = [r for r in fs.records if r[0] != 'BLK:%d:%d' % (ino, index)]
    fs.records.append(['BLK:%d:%d' % (ino, index), 'string', data])
    return 'BLK:%d:%d of %d bytes' % (ino, index, len(data))


def m_huge_ino(fs, rng):
    files = [i for i in fs.inodes() if i != 1]
    if not files:
        return None
    ino = rng.choice(files)
    new = rng.choice([2 ** 53, 2 ** 53 + 1, 2 ** 63, 9999999999999999999])
    for r in fs.records:
        k = r[0]
        for kind in ('INODE:', 'DIR:', 'XATTR:'):
            if k == '%s%d' % (kind, ino):
                r[0] = '%s%d' % (kind, new)
        if k.startswith('BLK:%d:' % ino):
            r[0] = 'BLK:%d:%s' % (new, k.split(':')[2])
        if r[0].startswith('DIR:') and r[1] == 'hash':
            for p in r[2]:
                if p[1] == str(ino).encode():
                    p[1] = str(new).encode()
    return 'inode %d renumbered %d' % (ino, new)


def m_orphans(fs, rng):
    field = rng.choice([b'0', b'abc', b'999999', str(rng.choice(fs.inodes())).encode(), b'', b'01'])
    fs.hash_add('ORPHANS', field, rng.choice([b'session', b'', b'x' * 1000]))
    return 'ORPHANS %r' % field


def m_root(fs, rng):
    choice = rng.randrange(4)
    if choice == 0:
        fs.records = [r for r in fs.records if r[0] != 'INODE:1']
        return 'no root'
    if choice == 1:
        fs.set_field('INODE:1', b'type', rng.choice([b'file', b'symlink', b'fifo']))
        return 'root type changed'
    if choice == 2:
        fs.records = [r for r in fs.records if r[0] != 'DIR:1']
        return 'root without entries'
    fs.set_field('INODE:1', b'parent', rng.choice([b'0', b'2', b'abc']))
    return 'root parent changed'


def m_odd_key(fs, rng):
    key = rng.choice(['INODE:01', 'INODE:0', 'DIR:0', 'BLK:2', 'BLK:2:01', 'XATTR:x', 'OPEN:2', 'MOUNT:x', 'OPLOG:x',
                      'FREEZE', 'TMP:x:1', 'junk', 'SB:2', 'INODE:18446744073709551615', 'K' * 70000])
    if rng.random() < 0.5:
        fs.records.append([key, 'string', b'x'])
    else:
        fs.records.append([key, 'hash', [[b'type', b'file'], [b'mode', b'0644']]])
    return 'odd key %s' % key[:30]


def m_swap_type(fs, rng):
    ino = rng.choice(fs.inodes())
    t = fs.inode_type(ino)
    new = rng.choice([x for x in TYPES[:7] if x != t])
    fs.set_field('INODE:%d' % ino, b'type', new)
    return 'INODE:%d type %r -> %r' % (ino, t, new)


def m_stray(fs, rng):
    kind = rng.choice(['DIR', 'XATTR'])
    ino = rng.choice(fs.inodes() + [424242])
    if kind == 'DIR':
        fs.hash_add('DIR:%d' % ino, b'stray', str(rng.choice(fs.inodes())).encode())
    else:
        fs.hash_add('XATTR:%d' % ino, b'user.stray', b'v')
    return '%s:%d added' % (kind, ino)


def m_hash_field_dup(fs, rng):
    hashes = [r for r in fs.records if r[1] == 'hash' and r[2]]
    r = rng.choice(hashes)
    r[2].append(list(rng.choice(r[2])))
    return '%s repeats a field' % r[0]


def m_record_count(fs, rng):
    # The header's announced count sizes verify's node table (a hint, capped:
    # util/reserve_hint.hpp): any value, true or not, must cost nothing more.
    n = rng.choice([0, 1, len(fs.records) - 1, len(fs.records) + 1, 2**24, 2**32, 2**53, 2**63 - 1,
                    2**64 - 1])
    fs.header['record_count'] = n
    return 'the header announces %d records' % n


MUTATIONS = {
    'inode-field': (m_inode_field, 6),
    'sb-field': (m_sb_field, 3),
    'next-inode': (m_next_inode, 2),
    'drop-field': (m_drop_field, 3),
    'unknown-field': (m_unknown_field, 1),
    'drop-record': (m_drop_record, 2),
    'dup-inode': (m_dup_inode, 1),
    'dup-record': (m_dup_record, 1),
    'retype': (m_retype, 1),
    'bad-entry-name': (m_bad_entry_name, 3),
    'dangling-entry': (m_dangling_entry, 2),
    'cycle': (m_cycle, 2),
    'xattr': (m_xattr, 3),
    'symlink': (m_symlink, 2),
    'block': (m_block, 3),
    'huge-ino': (m_huge_ino, 2),
    'orphans': (m_orphans, 1),
    'root': (m_root, 2),
    'odd-key': (m_odd_key, 1),
    'swap-type': (m_swap_type, 2),
    'stray': (m_stray, 1),
    'hash-field-dup': (m_hash_field_dup, 1),
    'record-count': (m_record_count, 1),
}


def main(argv):
    if len(argv) not in (4, 5):
        sys.stderr.write(__doc__)
        return 2
    base, outdir, count = argv[1], argv[2], int(argv[3])
    seed = int(argv[4]) if len(argv) == 5 else 8
    header, records = read_dump(base)
    names = sorted(MUTATIONS)
    weights = [MUTATIONS[n][1] for n in names]
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, 'manifest.tsv'), 'w') as manifest:
        for i in range(count):
            rng = random.Random(seed * 1000003 + i)
            fs = Fs([[k, t, v if t == 'string' else [list(p) for p in v]] for k, t, v in records], header)
            kinds, what = [], []
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                for _attempt in range(10):
                    name = rng.choices(names, weights)[0]
                    done = MUTATIONS[name][0](fs, rng)
                    if done is not None:
                        kinds.append(name)
                        what.append(done.replace('\t', ' ').replace('\n', ' '))
                        break
            rng.shuffle(fs.records)
            path = '%03d.json' % i
            write_dump(os.path.join(outdir, path), fs.header, fs.records)
            manifest.write('%s\t%s\t%s\n' % (path, ','.join(kinds), '; '.join(what)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
