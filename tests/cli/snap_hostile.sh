#!/usr/bin/env bash
# redisfs-snap restore against hostile and broken dumps. Dumps are built by
# an independent Python writer of the format (redisfs-dump(5): JSON, base64
# for binary, SHA-256 of the canonical framing), so a valid checksum gets
# every hostile record past the integrity check to the schema checks. Every
# case must exit 1 with a one-line message, and leave the target (here also
# an existing filesystem restored over with --force) and the whole server's
# key count exactly as they were; --dry-run must refuse it too, and so must
# `verify`, with no server, for the same reason (same_reason, snap_lib.sh):
# the two apply one set of rules, and this keeps them from drifting.
. "$(dirname "$0")/snap_lib.sh"

make_fs SKX
make_fs EXIST
exist_digest=$(fs_digest EXIST)
exist_sb=$(sb_digest EXIST)
snap -q dump SKX -o "$T/good.json"

cat >"$T/gen.py" <<'PY'
import base64, hashlib, json, struct, sys

def u64(n):
    return struct.pack('<Q', n)

def enc(b):
    try:
        return b.decode('utf-8')
    except UnicodeDecodeError:
        return {'base64': base64.b64encode(b).decode('ascii')}

def write(path, records, prefix='SRC', version=1, tamper=None):
    h = hashlib.sha256()
    nbytes = 0
    recs = []
    for key, kind, val in records:
        h.update(key.encode() + b'\0')
        if kind == 'string':
            h.update(b's' + u64(len(val)) + val)
            nbytes += len(val)
            recs.append({'key': key, 'string': enc(val)})
        else:
            h.update(b'h')
            for f, v in val:
                h.update(b'p' + u64(len(f)) + f + u64(len(v)) + v)
                nbytes += len(f) + len(v)
            h.update(b'e' + u64(len(val)))
            recs.append({'key': key, 'hash': [[enc(f), enc(v)] for f, v in val]})
    doc = {'format': 'redisfs-dump', 'version': version, 'prefix': prefix,
           'created': '2026-01-01T00:00:00.000Z', 'tool': 'gen.py', 'records': recs,
           'trailer': {'records': len(records), 'bytes': nbytes, 'sha256': h.hexdigest()}}
    text = json.dumps(doc)
    if tamper:
        text = tamper(text)
    with open(path, 'w') as f:
        f.write(text)

def sb(**kw):
    fields = {'format': 'redisfs', 'version': '1', 'block_size': '4096', 'root': '1',
              'next_inode': '3', 'inodes': '2', 'bytes': '7', 'created': '1'}
    fields.update(kw)
    return ('SB', 'hash', [(k.encode(), v.encode()) for k, v in fields.items()])

def base(**kw):
    return [sb(**kw),
            ('INODE:1', 'hash', [(b'type', b'dir'), (b'mode', b'0755'), (b'uid', b'0'), (b'gid', b'0'),
                                 (b'size', b'0'), (b'nlink', b'2'), (b'rdev', b'0'), (b'bytes', b'0'),
                                 (b'parent', b'1'), (b'atime', b'1'), (b'mtime', b'1'), (b'ctime', b'1')]),
            ('DIR:1', 'hash', [(b'f', b'2'), (b'\xff\xfe', b'2')]),
            ('INODE:2', 'hash', [(b'type', b'file'), (b'mode', b'0644'), (b'uid', b'0'), (b'gid', b'0'),
                                 (b'size', b'7'), (b'nlink', b'2'), (b'rdev', b'0'), (b'bytes', b'7'),
                                 (b'atime', b'1'), (b'mtime', b'1'), (b'ctime', b'1')]),
            ('BLK:2:0', 'string', b'\x00\x01hello')]

out = sys.argv[1]
write(f'{out}/valid.json', base())
cases = {
    'fs-version-3': base(version='3'),  # 2 is change tracking's
    'fs-version-huge': base(version='9' * 40),
    'fs-version-float': base(version='1.0'),
    'format-ext4': base(format='ext4'),
    'block-size-huge': base(block_size='9' * 30),
    'block-size-odd': base(block_size='5000'),
    'block-size-zero': base(block_size='0'),
    'no-sb': base()[1:],
    'dup-sb': base() + [sb()],
    'dup-key-hash': base() + [('INODE:1', 'hash', [(b'x', b'y')])],
    # restore hears of it from the server only after ~8192 commands more:
    'dup-key-early': base() + [('INODE:1', 'hash', [(b'x', b'y')])] +
                     [(f'BLK:2:{i}', 'string', b'x') for i in range(1, 6000)],
    'dup-key-string': base() + [('BLK:2:0', 'string', b'again')],
    'dup-key-mixed': base() + [('INODE:2', 'string', b'x')],
    'dup-field': [r if r[0] != 'DIR:1' else ('DIR:1', 'hash', r[2] + [(b'f', b'9')]) for r in base()],
    'dup-field-far': [r if r[0] != 'DIR:1' else
                      ('DIR:1', 'hash', r[2] + [(b'n%d' % i, b'2') for i in range(3000)] + [(b'n5', b'2')])
                      for r in base()],
    'empty-hash': base() + [('XATTR:2', 'hash', [])],
    'inode-as-string': base() + [('INODE:7', 'string', b'x')],
    'blk-as-hash': base() + [('BLK:2:1', 'hash', [(b'a', b'b')])],
    'sb-as-string': [('SB', 'string', b'redisfs')] + base()[1:],
    'block-too-long': base()[:4] + [('BLK:2:0', 'string', b'x' * 5000)],
}
for key in ['INODE:../1', '../SB', 'DIR:1/../2', 'INODE:*', 'DIR:[1]', 'SB?', 'BLK:*:0', 'OTHER:INODE:1',
            'SRC:INODE:1', 'SKX:SB', 'FREEZE', 'MOUNT:abc', 'OPLOG:abc', 'RESERVED', 'INSTALLING', 'INODE:01', 'INODE:0', 'INODE:-1', 'BLK:2:-1',
            'INODE:18446744073709551616', 'NOPE', ' SB', 'SB ', 'inode:1', 'INODE:1\n']:
    name = 'key-' + base64.b32encode(key.encode()).decode().rstrip('=')
    cases[name + '-s'] = base() + [(key, 'string', b'x')]
    cases[name + '-h'] = base() + [(key, 'hash', [(b'a', b'b')])]
for name, recs in cases.items():
    write(f'{out}/{name}.json', recs)
write(f'{out}/header-prefix-colon.json', base(), prefix='a:b')
write(f'{out}/header-prefix-glob.json', base(), prefix='a*')
write(f'{out}/header-prefix-empty.json', base(), prefix='')
write(f'{out}/dump-version-2.json', base(), version=2)
write(f'{out}/dump-version-huge.json', base(), version=10 ** 30)
write(f'{out}/trailer-records-huge.json', base(),
      tamper=lambda t: t.replace('"records": 5,', '"records": 99999999999999999999999999,'))
write(f'{out}/trailer-records-wrong.json', base(), tamper=lambda t: t.replace('"records": 5,', '"records": 6,'))
write(f'{out}/trailer-bytes-wrong.json', base(), tamper=lambda t: t.replace('"bytes": ', '"bytes": 1'))
write(f'{out}/trailer-sha-wrong.json', base(), tamper=lambda t: t.replace('"sha256": "', '"sha256": "0'))
write(f'{out}/no-trailer.json', base(), tamper=lambda t: t[:t.index(', "trailer"')] + '}')
write(f'{out}/trailing-garbage.json', base(), tamper=lambda t: t + ' x')
write(f'{out}/bad-base64.json', base(), tamper=lambda t: t.replace('"base64": "', '"base64": "*'))
PY
mkdir "$T/cases"
python3 "$T/gen.py" "$T/cases"

note "an independently written valid dump restores, and verifies"
"$REDISFS_SNAP_BIN" -q verify "$T/cases/valid.json" || fail "verify refuses valid.json"
snap -q restore "$T/cases/valid.json" --prefix VALID
[[ $(key_count VALID) == 5 ]] || fail "valid.json restored $(key_count VALID) keys"
[[ $(rcli hget VALID:DIR:1 f) == 2 ]] || fail "valid.json content"
snap -q delete VALID

# Truncations and flipped bytes of a real dump.
good=$T/good.json
size=$(stat -c %s "$good")
for ((i = 1; i <= 60; i++)); do
  cut=$((size * i / 61))
  head -c "$cut" "$good" >"$T/cases/cut-$cut.json"
done
head -c $((size - 2)) "$good" >"$T/cases/cut-last-byte.json"  # drops "}\n"
: >"$T/cases/empty.json"
printf 'hello' >"$T/cases/not-json.json"
cat "$good" "$good" >"$T/cases/two-documents.json"
records_at=$(grep -bo '"records"' "$good" | head -1 | cut -d: -f1)
for ((i = 0; i < 40; i++)); do
  at=$((records_at + (size - records_at - 2) * i / 40))
  python3 - "$good" "$T/cases/flip-$at.json" "$at" <<'PY'
import sys
data = bytearray(open(sys.argv[1], 'rb').read())
data[int(sys.argv[3])] ^= 0x01
open(sys.argv[2], 'wb').write(data)
PY
done

total=$(dbsize)
n=0
for f in "$T"/cases/*.json; do
  name=$(basename "$f" .json)
  [[ $name == valid ]] && continue
  n=$((n + 1))
  expect_fail snap restore "$f" --prefix TARGET
  [[ $LAST_RC == 1 ]] || fail "$name: exit $LAST_RC"
  [[ $(wc -l <"$T/err") == 1 ]] || fail "$name: the error is not one line: $(cat "$T/err")"
  grep -q '^redisfs-snap: error: ' "$T/err" || fail "$name: $(cat "$T/err")"
  [[ $(dbsize) == "$total" ]] || fail "$name: the server now holds $(dbsize) keys, not $total"
  [[ $(key_count TARGET) == 0 ]] || fail "$name: TARGET has keys"
  cp "$T/err" "$T/restore.err"
  expect_fail "$REDISFS_SNAP_BIN" verify "$f"  # no server
  [[ $LAST_RC == 1 ]] || fail "$name: verify exited $LAST_RC: $(cat "$T/err")"
  same_reason "$T/restore.err" "$T/out" "$f" ||
    fail "$name: restore says '$(cat "$T/restore.err")', verify says '$(cat "$T/out")'"

  expect_fail snap restore "$f" --prefix EXIST --force
  [[ $(dbsize) == "$total" ]] || fail "$name (--force): the server now holds $(dbsize) keys"
  expect_fail snap restore --dry-run "$f" --prefix TARGET
  [[ $(dbsize) == "$total" ]] || fail "$name (--dry-run): the server now holds $(dbsize) keys"
done
[[ $(fs_digest EXIST) == "$exist_digest" && $(sb_digest EXIST) == "$exist_sb" ]] ||
  fail "a refused restore changed EXIST"
[[ $(rcli --scan --pattern '*~restore~*' | wc -l) == 0 ]] || fail "staging keys left behind"
note "$n hostile dumps refused, by restore and by verify, for the same reasons"

note "messages say what and where"
snap restore "$T/cases/dup-key-hash.json" --prefix TARGET 2>"$T/err" || true
grep -q "duplicate key 'INODE:1'" "$T/err" || fail "dup key message: $(cat "$T/err")"
snap restore "$T/cases/dup-key-early.json" --prefix TARGET 2>"$T/err" || true
grep -qF 'record 6 (key "INODE:1"): duplicate key '"'INODE:1'" "$T/err" ||
  fail "a duplicate found a batch later does not name its own record: $(cat "$T/err")"
snap restore "$T/cases/cut-last-byte.json" --prefix TARGET 2>"$T/err" || true
grep -q "truncated at byte" "$T/err" || fail "truncation message: $(cat "$T/err")"
snap restore "$T/cases/blk-as-hash.json" --prefix TARGET 2>"$T/err" || true
grep -q "'BLK:2:1' must be a string" "$T/err" || fail "type message: $(cat "$T/err")"
snap restore "$T/cases/fs-version-3.json" --prefix TARGET 2>"$T/err" || true
grep -q "unsupported filesystem version '3'" "$T/err" || fail "version message: $(cat "$T/err")"
snap restore "$T/cases/trailer-sha-wrong.json" --prefix TARGET 2>"$T/err" || true
grep -qi "sha256\|checksum" "$T/err" || fail "checksum message: $(cat "$T/err")"

note "a message is one bounded line, whatever the dump holds"
python3 - "$T/huge-key.json" <<'PY'
import json, sys
key = 'NOPE:' + 'x' * (1 << 20) + '\n'
doc = {'format': 'redisfs-dump', 'version': 1, 'prefix': 'SRC', 'created': '2026-01-01T00:00:00.000Z',
       'tool': 'x', 'records': [{'key': key, 'string': 'x'}],
       'trailer': {'records': 1, 'bytes': 1, 'sha256': '0' * 64}}
open(sys.argv[1], 'w').write(json.dumps(doc))
PY
snap restore "$T/huge-key.json" --prefix TARGET 2>"$T/err" || true
[[ $(wc -l <"$T/err") == 1 && $(wc -c <"$T/err") -lt 1000 ]] || fail "a 1 MB key made a $(wc -c <"$T/err")-byte message"
grep -q "not a key of the redisfs schema" "$T/err" || fail "huge key message: $(head -c 300 "$T/err")"

note "ok"
