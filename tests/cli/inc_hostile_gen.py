#!/usr/bin/env python3
"""inc_hostile_gen.py: hostile incremental dumps from a real one (issue 11).

    inc_hostile_gen.py INC.json OUTDIR
    inc_hostile_gen.py INC.json OUTDIR COUNT SEED BASE.json

Reads INC.json (an incremental dump, version 2, written by `redisfs-snap
dump SNAP --since BASE` of the filesystem tests/cli/snap_inc_hostile.sh
builds) and writes OUTDIR/<name>.json, each INC with its records rewritten
so that every record is still well formed (the record rules pass) but the
filesystem the dump leaves once applied to its base is not one fsck finds
clean; and OUTDIR/manifest.tsv: "<name>.json<TAB>what was done". The
trailer (records, bytes, SHA-256 of the canonical framing: a deletion is
its key, 0x00, 'd') is recomputed by hostile_gen.py's writer, so each gets past
the checksum to the checks after it. The header (base id and digest) is
kept: each applies to the real base. First, INC written back unchanged must
give INC's own trailer (the framing here is the tool's).

With COUNT and SEED (and BASE.json, the full dump INC applies to, whose keys
a deletion can name), the seeded random mode instead: OUTDIR/NNN.json, each
INC with one to four mutations drawn from RANDOM (records dropped,
duplicated, reordered, retyped, turned into deletions and back; bytes
flipped in keys, fields and values; sizes, block indexes and the
superblock changed; the header's base, version and prefix changed; the
trailer, the base64, the JSON text and its compression damaged), and
OUTDIR/manifest.tsv: "NNN.json<TAB>kind[,kind...]<TAB>what was done". Such a
dump may be refused or applied: snap_inc_hostile.sh (INC_HOSTILE_SEED)
checks whichever it is. Deterministic: the same INC, COUNT and SEED give the
same mutations.

Python 3 standard library only.
"""
import base64
import gzip
import json
import os
import random
import sys

sys.dont_write_bytecode = True  # (no __pycache__ in the source tree)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_gen import EXTREMES, decode_bytes, retype, write_dump  # noqa: E402  (the codec of the full dumps' generator)


def read_dump(path):
    with open(path, 'rb') as f:
        doc = json.load(f)
    records = []
    for r in doc['records']:
        if r.get('delete'):
            records.append([r['key'], 'delete', None])
        elif 'string' in r:
            records.append([r['key'], 'string', decode_bytes(r['string'])])
        else:
            records.append([r['key'], 'hash', [[decode_bytes(f), decode_bytes(v)] for f, v in r['hash']]])
    header = {k: v for k, v in doc.items() if k not in ('records', 'trailer')}
    return header, records, doc['trailer']


def find(records, key):
    for r in records:
        if r[0] == key:
            return r
    sys.exit('inc_hostile_gen.py: %s has no record %s' % (sys.argv[1], key))


def set_field(records, key, field, value):
    fields = find(records, key)[2]
    for pair in fields:
        if pair[0] == field:
            pair[1] = value
            return
    fields.append([field, value])


# Each mutation: (name, what, function of the records). The dump they start
# from (snap_inc_hostile.sh): hello.txt (inode 2) deleted with its block and
# xattrs, sub/new.txt (inode 6, one block) created, data.bin (inode 3)
# changed; the symlink `link` (inode 5) untouched.
def _dangling(r):
    find(r, 'DIR:1')[2].append([b'ghost', b'2'])


def _deleted_named(r):
    r.append(['INODE:5', 'delete', None])


def _nlink(r):
    set_field(r, 'INODE:6', b'nlink', b'2')


def _orphan_live(r):
    r.append(['ORPHANS', 'hash', [[b'6', b'feedfacefeedface']]])


def _past_size(r):
    r.append(['BLK:6:3', 'string', b'x' * 100])


def _empty_past_size(r):
    r.append(['BLK:6:7', 'string', b''])  # (Redis keeps an empty string: it is a key)


def _empty_stray_block(r):
    r.append(['BLK:1:1000', 'string', b''])


def _stray_block(r):
    r[:] = [x for x in r if not (x[0] == 'BLK:2:0' and x[1] == 'delete')]


def _counter(r):
    set_field(r, 'SB', b'inodes', b'9')


def _dir_loses_parent(r):
    find(r, 'DIR:1')[2][:] = [p for p in find(r, 'DIR:1')[2] if p[0] != b'sub']


MUTATIONS = [
    ('dangling-entry', 'DIR:1 names inode 2, which the dump deletes', _dangling),
    ('deleted-still-named', 'INODE:5 deleted while DIR:1 still names it', _deleted_named),
    ('wrong-nlink', 'INODE:6 says nlink 2, one entry names it', _nlink),
    ('orphan-live', 'ORPHANS names inode 6, which an entry names', _orphan_live),
    ('block-past-size', 'BLK:6:3, past the end of inode 6', _past_size),
    ('empty-block-past-size', 'BLK:6:7, an empty string past the end of inode 6', _empty_past_size),
    ('empty-block-of-directory', 'BLK:1:1000, an empty string, a block of the root directory', _empty_stray_block),
    ('stray-block', 'the deletion of BLK:2:0 dropped: a block of a deleted inode stays', _stray_block),
    ('wrong-counter', 'SB says 9 inodes', _counter),
    ('lost-directory', 'DIR:1 no longer names sub (inode 4, with its file)', _dir_loses_parent),
]


# ---------------------------------------------------------------- random mode
# Each takes (inc, rng) and returns a description, or None when it does not
# apply to this dump. inc.records are INC's, inc.header its header,
# inc.base the records of the full dump it applies to; inc.doc_ops (on the
# JSON document, trailer computed) and inc.raw_ops (on the file's bytes)
# run after the writer, in order.

class Inc:
    def __init__(self, header, records, base):
        self.header = dict(header)
        self.records = records
        self.base = base
        self.doc_ops = []
        self.raw_ops = []

    def written(self):
        return [r for r in self.records if r[1] != 'delete']

    def blocks(self):
        return [r for r in self.records if r[0].startswith('BLK:') and r[1] == 'string']

    def hashes(self):
        return [r for r in self.records if r[1] == 'hash' and r[2]]


def _copy(r):
    return [r[0], r[1], [list(p) for p in r[2]] if r[1] == 'hash' else r[2]]


def _set(r, field, value):
    for pair in r[2]:
        if pair[0] == field:
            pair[1] = value
            return
    r[2].append([field, value])


def _flip(b, rng):
    if not b:
        return bytes([rng.randrange(256)])
    i = rng.randrange(len(b))
    return b[:i] + bytes([b[i] ^ rng.randrange(1, 256)]) + b[i + 1:]


def r_drop(inc, rng):
    if not inc.records:
        return None
    r = rng.choice(inc.records)
    inc.records.remove(r)
    return 'drop %s%s' % (r[0], ' (a deletion)' if r[1] == 'delete' else '')


def r_duplicate(inc, rng):
    if not inc.records:
        return None
    r = rng.choice(inc.records)
    inc.records.insert(rng.randrange(len(inc.records) + 1), _copy(r))
    return 'duplicate %s' % r[0]


def r_reorder(inc, rng):
    if not inc.records:
        return None
    if rng.random() < 0.5:
        rng.shuffle(inc.records)
        return 'records shuffled'
    r = inc.records.pop(rng.randrange(len(inc.records)))
    at = rng.randrange(len(inc.records) + 1)
    inc.records.insert(at, r)
    return '%s moved to record %d' % (r[0], at)


def r_flip_value(inc, rng):
    if not inc.blocks() + inc.hashes():
        return None
    r = rng.choice(inc.blocks() + inc.hashes())
    if r[1] == 'string':
        r[2] = _flip(r[2], rng)
        return 'a byte of %s flipped' % r[0]
    pair = rng.choice(r[2])
    i = rng.randrange(2)
    pair[i] = _flip(pair[i], rng)
    return 'a byte of %s %s %r flipped' % (r[0], ('field', 'value of')[i], pair[0][:20])


def r_flip_key(inc, rng):
    if not inc.records:
        return None
    r = rng.choice(inc.records)
    old = r[0]
    if rng.random() < 0.7 and any(c.isdigit() for c in old):
        i = rng.choice([i for i, c in enumerate(old) if c.isdigit()])
        r[0] = old[:i] + rng.choice('0123456789:x') + old[i + 1:]
    else:
        i = rng.randrange(len(old))
        r[0] = old[:i] + chr(ord(old[i]) ^ rng.randrange(1, 128)).replace('\0', '\1') + old[i + 1:]
    return 'key %s renamed %r' % (old, r[0])


def r_block_size(inc, rng):
    blocks = inc.blocks()
    if not blocks:
        return None
    r = rng.choice(blocks)
    n = rng.choice([0, 1, len(r[2]) - 1, len(r[2]) + 1, 4095, 4096, 4097, 65536, rng.randrange(8192)])
    n = max(n, 0)
    r[2] = ((r[2] or b'b') * (n + 1))[:n]
    return '%s now %d bytes' % (r[0], n)


def r_block_index(inc, rng):
    blocks = [r for r in inc.records if r[0].startswith('BLK:')]
    if not blocks:
        return None
    r = rng.choice(blocks)
    parts = r[0].split(':')
    if len(parts) != 3 or not parts[2].isdigit():
        return None  # (renamed already)
    _, ino, index = parts
    if rng.random() < 0.7:
        index = str(rng.choice([0, 1, 2, 3, 7, int(index) + 1, 1000, 2 ** 40, 2 ** 63, 2 ** 64]))
    else:
        ino = str(rng.choice([1, 2, 3, 4, 5, 6, 7, 99, 2 ** 53]))
    old, r[0] = r[0], 'BLK:%s:%s' % (ino, index)
    return '%s now %s' % (old, r[0])


def r_inode_field(inc, rng):
    inodes = [r for r in inc.hashes() if r[0].startswith('INODE:')]
    if not inodes:
        return None
    r = rng.choice(inodes)
    field = rng.choice([b'size', b'size', b'bytes', b'nlink', b'mode', b'type', b'parent', b'ctime'])
    values = dict(r[2])
    near = []
    if values.get(field, b'').isdigit():
        n = int(values[field])
        near = [str(v).encode() for v in (n - 1, n + 1, n + 4096, n * 2, 0)]
    value = rng.choice(near + EXTREMES[:28] if near else EXTREMES[:28])
    _set(r, field, value)
    return '%s %s=%r' % (r[0], field.decode(), value[:40])


def r_field_shape(inc, rng):
    if not inc.hashes():
        return None
    r = rng.choice(inc.hashes())
    choice = rng.randrange(4)
    if choice == 0:
        pair = r[2].pop(rng.randrange(len(r[2])))
        return '%s drops field %r' % (r[0], pair[0][:20])
    if choice == 1:
        r[2].insert(rng.randrange(len(r[2]) + 1), list(rng.choice(r[2])))
        return '%s repeats a field' % r[0]
    if choice == 2:
        r[2].append([b'future_%d' % rng.randrange(100), rng.choice(EXTREMES[:28])])
        return '%s has an unknown field' % r[0]
    r[2] = []
    return '%s has no field' % r[0]


def r_retype(inc, rng):
    if not inc.written():
        return None
    return retype(rng.choice(inc.written()))


def r_delete_base_key(inc, rng):
    named = {r[0] for r in inc.records}
    keys = [r[0] for r in inc.base if r[0] not in named]
    if not keys:
        return None
    key = rng.choice(keys)
    inc.records.insert(rng.randrange(len(inc.records) + 1), [key, 'delete', None])
    return 'a deletion of %s, a key of the base' % key


def r_delete_absent(inc, rng):
    key = rng.choice(['BLK:3:5', 'BLK:6:1', 'INODE:77', 'DIR:77', 'XATTR:5', 'XATTR:6', 'ORPHANS', 'BLK:3:1',
                      'OPEN:2', 'MOUNT:x', 'CHANGED', 'junk', 'INODE:0', 'BLK:3:01'])
    inc.records.insert(rng.randrange(len(inc.records) + 1), [key, 'delete', None])
    return 'a deletion of %s, not in the base' % key


def r_write_to_delete(inc, rng):
    if not inc.written():
        return None
    r = rng.choice(inc.written())
    if r[0] == 'SB':
        return None
    r[1], r[2] = 'delete', None
    return '%s now deleted, not written' % r[0]


def r_delete_to_write(inc, rng):
    deletions = [r for r in inc.records if r[1] == 'delete']
    if not deletions:
        return None
    r = rng.choice(deletions)
    old = [b for b in inc.base if b[0] == r[0]]
    if old and rng.random() < 0.7:
        r[1], r[2] = old[0][1], _copy(old[0])[2]
        return '%s written as in the base, not deleted' % r[0]
    if r[0].startswith('BLK:'):
        r[1], r[2] = 'string', b'garbage'
    else:
        r[1], r[2] = 'hash', [[b'type', b'file'], [b'nlink', b'1']]
    return '%s written with garbage, not deleted' % r[0]


def r_write_and_delete(inc, rng):
    if not inc.written():
        return None
    r = rng.choice(inc.written())
    at = rng.randrange(len(inc.records) + 1)
    inc.records.insert(at, [r[0], 'delete', None])
    return '%s both written and deleted (the deletion at record %d)' % (r[0], at)


def r_base_record(inc, rng):
    named = {r[0] for r in inc.records}
    base = [r for r in inc.base if r[0] not in named]
    if not base:
        return None
    r = _copy(rng.choice(base))
    if rng.random() < 0.5:
        r[2] = _flip(r[2], rng) if r[1] == 'string' else r[2]
    inc.records.insert(rng.randrange(len(inc.records) + 1), r)
    return '%s of the base written again' % r[0]


def r_superblock(inc, rng):
    field = rng.choice([b'snapshot_id', b'lineage', b'block_size', b'version', b'format', b'next_inode',
                        b'inodes', b'bytes', b'root', b'read_only', b'origin'])
    sbs = [r for r in inc.records if r[0] == 'SB' and r[1] == 'hash']
    if not sbs:
        return None
    sb = sbs[0]
    old = dict(sb[2]).get(field, b'')
    if field == b'lineage' and old and rng.random() < 0.6:
        ids = old.split(b' ')
        ids.pop(rng.randrange(len(ids)))
        value = b' '.join(ids)
    elif field == b'snapshot_id' and rng.random() < 0.5:
        value = _flip(old, rng) if old else b'0' * 32
    else:
        value = rng.choice(EXTREMES[:28] + [b'8192', b'65536', b'redisfs', b'2', old])
    _set(sb, field, value)
    return 'SB %s=%r' % (field.decode(), value[:40])


def h_base(inc, rng):
    member = rng.choice(['base_digest', 'base_snapshot_id'])
    old = inc.header.get(member, '')
    old = old if isinstance(old, str) else ''  # (an earlier one may have made it another JSON value)
    choice = rng.randrange(5)
    if choice == 0 and old:
        i = rng.randrange(len(old))
        value = old[:i] + rng.choice([c for c in '0123456789abcdef' if c != old[i]]) + old[i + 1:]
    elif choice == 1:
        value = old.upper()
    elif choice == 2:
        value = old[:-1]
    elif choice == 3:
        inc.header.pop(member, None)
        return 'no %s in the header' % member
    else:
        value = rng.choice(['', 'x', 0, None, old + '0'])
    inc.header[member] = value
    return 'header %s=%r' % (member, value if not isinstance(value, str) else value[:40])


def h_other(inc, rng):
    member = rng.choice(['version', 'prefix', 'format', 'created', 'record_count', 'future'])
    value = rng.choice({
        'version': [1, 3, '2', 2.0, -2, 2 ** 53],
        'prefix': ['', 'a b', 'x:y', 'P' * 300, '\u00e9t\u00e9', None],
        'format': ['redisfs', 'redisfs-dump ', ''],
        'created': ['', 'yesterday', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z'],
        'record_count': [0, -1, 2 ** 63, 'many', 2 ** 64],
        'future': ['s', 1, [1], {'a': 1}, None, True],
    }[member])
    inc.header[member] = value
    return 'header %s=%r' % (member, value if not isinstance(value, str) else value[:40])


def d_trailer(inc, rng):
    choice = rng.randrange(5)
    delta = rng.choice([-1, 1, 2 ** 53])

    def op(doc):
        t = doc.get('trailer')
        if t is None:
            return  # (gone already)
        if choice == 0:
            t['records'] += delta
        elif choice == 1:
            t['bytes'] += delta
        elif choice == 2:
            t['sha256'] = ('0' if t['sha256'][0] != '0' else '1') + t['sha256'][1:]
        elif choice == 3:
            del doc['trailer']
        else:
            t['extra'] = 1
    inc.doc_ops.append(op)
    return 'trailer ' + ['records changed', 'bytes changed', 'sha256 changed', 'gone', 'has another member'][choice]


def d_base64(inc, rng):
    good = rng.random() < 0.6
    at = rng.random()

    def op(doc):
        recs = [r for r in doc['records'] if 'string' in r or r.get('hash')]
        if not recs:
            return
        r = recs[int(at * len(recs))]
        try:
            if 'string' in r:
                r['string'] = _b64(decode_bytes(r['string']), good)
            else:
                f, v = r['hash'][0]
                r['hash'][0] = [f, _b64(decode_bytes(v), good)]
        except ValueError:
            pass  # (damaged already)
    inc.doc_ops.append(op)
    return 'a value in base64' + ('' if good else ', damaged')


def _b64(v, good):
    text = base64.b64encode(v).decode('ascii')
    if good:
        return {'base64': text}
    return {'base64': text.rstrip('=') + '!' if text else '*'}


def d_text(inc, rng):
    choice = rng.randrange(4)
    if choice == 0:
        inc.doc_ops.append(lambda doc: doc.setdefault('_indent', 1))
        return 'the JSON indented (as jq . writes it)'
    junk = rng.choice([b' \n\t', b'x', b'{}', b'\x00', b'\n{"format":"redisfs-dump"}'])
    if choice == 1:
        inc.raw_ops.append(lambda data: data + junk)
        return 'then %r after the document' % junk
    cut = rng.random()
    if choice == 2:
        inc.raw_ops.append(lambda data: data[:int(cut * len(data))])
        return 'the file cut at %d%%' % int(cut * 100)
    inc.raw_ops.append(lambda data: data[:max(data.rfind(b'"trailer"'), 0) + int(cut * 30)])
    return 'the file cut in its trailer'


def d_gzip(inc, rng):
    cut = rng.choice([None, None, 10, 0.5, -1, -5])

    def op(data):
        z = gzip.compress(data, mtime=0)
        if cut is None:
            return z
        return z[:int(cut * len(z))] if isinstance(cut, float) else z[:cut]
    inc.raw_ops.append(op)
    return 'gzip' + ('' if cut is None else ', the stream cut at %r' % cut)


RANDOM = {
    'drop': (r_drop, 3),
    'duplicate': (r_duplicate, 2),
    'reorder': (r_reorder, 3),
    'flip-value': (r_flip_value, 4),
    'flip-key': (r_flip_key, 2),
    'block-size': (r_block_size, 2),
    'block-index': (r_block_index, 2),
    'inode-field': (r_inode_field, 4),
    'field-shape': (r_field_shape, 2),
    'retype': (r_retype, 1),
    'delete-base-key': (r_delete_base_key, 3),
    'delete-absent': (r_delete_absent, 1),
    'write-to-delete': (r_write_to_delete, 2),
    'delete-to-write': (r_delete_to_write, 2),
    'write-and-delete': (r_write_and_delete, 3),
    'base-record': (r_base_record, 2),
    'superblock': (r_superblock, 2),
    'header-base': (h_base, 2),
    'header-other': (h_other, 1),
    'trailer': (d_trailer, 1),
    'base64': (d_base64, 2),
    'text': (d_text, 1),
    'gzip': (d_gzip, 1),
}


def write_random(path, inc):
    write_dump(path, inc.header, inc.records)
    if inc.doc_ops:
        with open(path) as f:
            doc = json.load(f)
        for op in inc.doc_ops:
            op(doc)
        indent = doc.pop('_indent', None)
        with open(path, 'w') as f:
            json.dump(doc, f, indent=indent)
    if inc.raw_ops:
        with open(path, 'rb') as f:
            data = f.read()
        for op in inc.raw_ops:
            data = op(data)
        with open(path, 'wb') as f:
            f.write(data)


def main_random(src, outdir, count, seed, base_path):
    header, _, _ = read_dump(src)
    with open(base_path, 'rb') as f:
        base = [[r['key'], 'string', decode_bytes(r['string'])] if 'string' in r else
                [r['key'], 'hash', [[decode_bytes(f), decode_bytes(v)] for f, v in r['hash']]]
                for r in json.load(f)['records']]
    names = sorted(RANDOM)
    weights = [RANDOM[n][1] for n in names]
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, 'manifest.tsv'), 'w') as manifest:
        for i in range(count):
            rng = random.Random(seed * 1000003 + i)
            inc = Inc(header, read_dump(src)[1], base)
            kinds, what = [], []
            for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
                for _attempt in range(10):
                    name = rng.choices(names, weights)[0]
                    done = RANDOM[name][0](inc, rng)
                    if done is not None:
                        kinds.append(name)
                        what.append(done.replace('\t', ' ').replace('\n', ' '))
                        break
            path = '%03d.json' % i
            write_random(os.path.join(outdir, path), inc)
            manifest.write('%s\t%s\t%s\n' % (path, ','.join(kinds), '; '.join(what)))


def main():
    if len(sys.argv) not in (3, 6):
        sys.exit(__doc__)
    src, outdir = sys.argv[1], sys.argv[2]
    header, records, trailer = read_dump(src)
    if header.get('version') != 2:
        sys.exit('inc_hostile_gen.py: %s is not an incremental dump' % src)
    if len(sys.argv) == 6:
        main_random(src, outdir, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    os.makedirs(outdir, exist_ok=True)
    if write_dump(os.path.join(outdir, 'unchanged.json'), header, records) != trailer:
        sys.exit('inc_hostile_gen.py: the framing here does not give the trailer of %s' % src)
    os.remove(os.path.join(outdir, 'unchanged.json'))
    with open(os.path.join(outdir, 'manifest.tsv'), 'w') as manifest:
        for name, what, mutate in MUTATIONS:
            _, recs, _ = read_dump(src)
            mutate(recs)
            write_dump(os.path.join(outdir, name + '.json'), header, recs)
            manifest.write('%s.json\t%s\n' % (name, what))


if __name__ == '__main__':
    main()
