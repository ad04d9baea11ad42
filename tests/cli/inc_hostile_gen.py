#!/usr/bin/env python3
"""inc_hostile_gen.py: hostile incremental dumps from a real one (issue 11).

    inc_hostile_gen.py INC.json OUTDIR

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

Python 3 standard library only.
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # (no __pycache__ in the source tree)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_gen import decode_bytes, write_dump  # noqa: E402  (the codec of the full dumps' generator)


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


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    header, records, trailer = read_dump(src)
    if header.get('version') != 2:
        sys.exit('inc_hostile_gen.py: %s is not an incremental dump' % src)
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
