#!/usr/bin/env bash
# Hostile incremental dumps (issue 11): an incremental whose records are
# each well formed but that leaves a filesystem fsck does not find clean is
# refused by restore before anything is applied, and by verify of the chain
# for the same reason; and one whose header names the right base snapshot
# but another base digest is refused by both, saying which link and why; so
# is one that deletes the superblock (redisfs-dump(5)), and one whose
# superblock says another block size than its base's.
#
# A real incremental (tests/cli/inc_hostile_gen.py rewrites it, trailer
# recomputed): a filesystem built with raw commands (make_fs), snapshot MON,
# then hello.txt deleted with its block and xattrs, sub/new.txt created,
# data.bin changed, snapshot TUE; `dump TUE --since MON`. Each hostile one
# is restored onto MON's full dump restored as BASE: refused in one line
# naming the first problem, BASE as it was (every key's digest, its
# superblock's too), no staging key left (SCAN); `verify mon.json X` says
# the same (same_reason, snap_lib.sh). One that writes and deletes a key
# applies with the write (deletions first), and verify's chain digest is
# the state restore left. The real one then applies.
#
# INC_HOSTILE_SEED (unset: none) and INC_HOSTILE_COUNT (default 100): that
# many random hostile incrementals too (inc_hostile_gen.py's random mode),
# each either refused by restore in one line, BASE untouched and no key
# of the server added or gone, and by verify (for the same reason, but
# when restore refused the base before reading a record); or applied: then
# verify finds the chain sound, fsck finds BASE clean, a dump of BASE
# is mon.json with the incremental's records applied (deletions first),
# and verify finds the chain sound on to an incremental of a snapshot of
# BASE since BASE (its base digest is the state restore left). BASE is
# then restored from mon.json again for the next one.
. "$(dirname "$0")/snap_lib.sh"

GEN=$(dirname "$0")/inc_hostile_gen.py
B=4096

make_fs SKX
snap -q copy SKX MON
now=$(date +%s%N)
rcli hdel SKX:DIR:1 hello.txt >/dev/null
rcli del SKX:INODE:2 SKX:BLK:2:0 SKX:XATTR:2 >/dev/null
rcli hset SKX:INODE:6 type file mode 0644 uid 0 gid 0 size 100 nlink 1 rdev 0 bytes 100 \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
head -c 100 /dev/urandom | rcli -x set SKX:BLK:6:0 >/dev/null
rcli hset SKX:DIR:4 new.txt 6 >/dev/null
head -c $B /dev/urandom | rcli -x set SKX:BLK:3:0 >/dev/null
rcli hset SKX:INODE:3 mtime "$now" ctime "$now" >/dev/null
rcli hset SKX:INODE:1 mtime "$now" ctime "$now" >/dev/null
rcli hset SKX:SB bytes $((8205 - 13 + 100)) >/dev/null
# These changes bypass write.lua: record their blocks as it would
# (keys.hpp, CHANGED), or the incremental would rightly not carry them.
rcli sadd SKX:CHANGED 6:0 3:0 >/dev/null
snap -q fsck SKX >/dev/null || fail "the changed filesystem is not clean: $(snap fsck SKX 2>&1 | head -5)"
snap -q copy SKX TUE
snap -q dump MON -o "$T/mon.json"
snap -q dump TUE --since MON -o "$T/tue.json"
[[ $(jq .version "$T/tue.json") == 2 ]] || fail "tue.json is not an incremental dump"
python3 "$GEN" "$T/tue.json" "$T/hostile" || fail "inc_hostile_gen.py failed"

snap -q restore "$T/mon.json" --prefix BASE
base_keys=$(fs_digest BASE)
base_sb=$(sb_digest BASE)

# unchanged: BASE is as it was, and no staging key of a restore into it is left.
unchanged() {
  [[ $(fs_digest BASE) == "$base_keys" && $(sb_digest BASE) == "$base_sb" ]] || fail "$1 changed BASE"
  [[ -z $(rcli --scan --pattern 'BASE~*') ]] || fail "$1 left staging keys: $(rcli --scan --pattern 'BASE~*' | head -3)"
}

# same_block_size RESTORE_ERR VERIFY_OUT: both refuse the incremental for
# its block size, the same one, each against its base in its own words
# (restore: the target's; verify: what the files before it leave).
same_block_size() {
  local size
  [[ $(cat "$1") =~ "the dump's block size "([0-9]+)" is not the target's (4096)" ]] || return 1
  size=${BASH_REMATCH[1]}
  [[ $(wc -l <"$2") == 1 ]] && grep -q ": its block size $size is not that of what .*mon.json leaves (4096)" "$2"
}

# tue_with OUT 'PYTHON': tue.json with PYTHON run on its `header` and
# `records` (inc_hostile_gen.py's read_dump; set_field at hand), written to
# OUT by hostile_gen.py's writer (trailer recomputed).
tue_with() {
  python3 - "$T/tue.json" "$1" "$(dirname "$GEN")" "$2" <<'PY'
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[3])
from inc_hostile_gen import read_dump, set_field  # noqa: E402,F401
from hostile_gen import write_dump  # noqa: E402
header, records, _ = read_dump(sys.argv[1])
exec(sys.argv[4])
write_dump(sys.argv[2], header, records)
PY
}

note "hostile incrementals: refused by restore and by verify of the chain, BASE untouched"
n=0
while IFS=$'\t' read -r file what; do
  n=$((n + 1))
  expect_fail snap -q restore "$T/hostile/$file" --prefix BASE
  ((LAST_RC == 1)) || fail "restore $file ($what) exited $LAST_RC"
  [[ $(wc -l <"$T/err") == 1 ]] || fail "restore $file ($what): not one line: $(cat "$T/err")"
  grep -q 'the incremental dump would leave a damaged filesystem: ' "$T/err" ||
    fail "restore $file ($what) was refused, but not by its result's fsck: $(cat "$T/err")"
  unchanged "restore $file ($what)"
  cp "$T/err" "$T/restore.err"
  rc=0
  "$REDISFS_SNAP_BIN" -q verify "$T/mon.json" "$T/hostile/$file" >"$T/verify.out" 2>"$T/verify.err" || rc=$?
  ((rc == 1)) || fail "verify of mon.json $file ($what) exited $rc: $(head -3 "$T/verify.out" "$T/verify.err")"
  same_reason "$T/restore.err" "$T/verify.out" "$T/hostile/$file" ||
    fail "$file ($what): restore says '$(cat "$T/restore.err")', verify says '$(head -c 2000 "$T/verify.out")'"
done <"$T/hostile/manifest.tsv"
((n >= 10)) || fail "only $n hostile dumps"

note "an incremental that deletes the superblock: refused by restore and by verify, BASE untouched"
tue_with "$T/sb-deleted.json" "records.append(['SB', 'delete', None])"  # (well formed: a schema key's deletion)
expect_fail snap -q restore "$T/sb-deleted.json" --prefix BASE
[[ $(wc -l <"$T/err") == 1 ]] && grep -q "a deletion of the superblock" "$T/err" ||
  fail "restore of an incremental that deletes the superblock: $(cat "$T/err")"
unchanged "restore of an incremental that deletes the superblock"
rc=0
out=$("$REDISFS_SNAP_BIN" -q verify "$T/mon.json" "$T/sb-deleted.json" 2>&1) || rc=$?
((rc == 1)) && grep -q "a deletion of the superblock" <<<"$out" ||
  fail "verify of an incremental that deletes the superblock exited $rc: $out"

note "duplicate keys and fields: refused by restore and by verify (with no server) alike, BASE untouched"
python3 - "$T/tue.json" "$T" "$(dirname "$GEN")" <<'PY'
import copy
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[3])
from inc_hostile_gen import find, read_dump  # noqa: E402
from hostile_gen import write_dump  # noqa: E402
header, records, _ = read_dump(sys.argv[1])
write_dump(sys.argv[2] + '/dup-key.json', header, records + [copy.deepcopy(find(records, 'INODE:6'))])
inode = find(records, 'INODE:6')
inode[2].append(list(inode[2][0]))
write_dump(sys.argv[2] + '/dup-field.json', header, records)
PY
for dup in "dup-key:duplicate key 'INODE:6'" "dup-field:duplicate field in hash 'INODE:6'"; do
  file=${dup%%:*} want=${dup#*:}
  expect_fail snap -q restore "$T/$file.json" --prefix BASE
  [[ $(wc -l <"$T/err") == 1 ]] && grep -qF "$want" "$T/err" || fail "restore of $file.json: $(cat "$T/err")"
  unchanged "restore of $file.json"
  rc=0
  out=$("$REDISFS_SNAP_BIN" -q verify "$T/mon.json" "$T/$file.json" 2>&1) || rc=$?
  ((rc == 1)) && grep -qF "$want" <<<"$out" || fail "verify of $file.json exited $rc: $out"
done

note "the right base id, another base digest: verify names the link, restore refuses"
python3 - "$T/tue.json" "$T/digest.json" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def other(m):
    return m.group(1) + ('0' if m.group(2) != '0' else '1')
open(sys.argv[2], 'w').write(re.sub(r'("base_digest":"[0-9a-f]{63})([0-9a-f])', other, text, count=1))
PY
[[ $(jq -r .base_snapshot_id "$T/digest.json") == "$(jq -r .base_snapshot_id "$T/tue.json")" &&
  $(jq -r .base_digest "$T/digest.json") != "$(jq -r .base_digest "$T/tue.json")" ]] || fail "digest.json"
rc=0
out=$("$REDISFS_SNAP_BIN" -q verify "$T/mon.json" "$T/digest.json" 2>/dev/null) || rc=$?
((rc == 1)) || fail "verify of a link with another base digest exited $rc"
[[ $(grep -c . <<<"$out") == 1 && $out == "$T/digest.json: its base digest "*" is not the state digest of what $T/mon.json leaves"* ]] ||
  fail "verify of a link with another base digest: $out"
expect_fail snap -q restore "$T/digest.json" --prefix BASE
[[ $(wc -l <"$T/err") == 1 ]] && grep -q "state digest is not the dump's base_digest" "$T/err" ||
  fail "restore of a dump with another base digest: $(cat "$T/err")"
unchanged "restore of digest.json"

if [[ -n ${INC_HOSTILE_SEED:-} ]]; then
  note "random hostile incrementals (seed $INC_HOSTILE_SEED): refused, BASE untouched, or applied as they say"
  python3 "$GEN" "$T/tue.json" "$T/random" "${INC_HOSTILE_COUNT:-100}" "$INC_HOSTILE_SEED" "$T/mon.json" ||
    fail "inc_hostile_gen.py's random mode failed"
  server_keys=$(rcli --scan | sort)
  accepted=0 refused=0 broken=() other_reason=()
  while IFS=$'\t' read -r file kinds what; do
    d="$file ($kinds: $what)"
    rc=0
    snap -q restore "$T/random/$file" --prefix BASE >"$T/out" 2>"$T/err" || rc=$?
    ((rc <= 1)) || fail "restore $d exited $rc: $(head -c 2000 "$T/err")"
    ! grep -q 'Sanitizer\|runtime error:' "$T/err" || fail "restore $d: $(grep -m3 'Sanitizer\|runtime error:' "$T/err")"
    vrc=0
    "$REDISFS_SNAP_BIN" -q verify "$T/mon.json" "$T/random/$file" >"$T/verify.out" 2>"$T/verify.err" || vrc=$?
    ((vrc <= 1)) || fail "verify of mon.json $d exited $vrc: $(head -c 2000 "$T/verify.err")"
    ! grep -q 'Sanitizer\|runtime error:' "$T/verify.err" ||
      fail "verify of mon.json $d: $(grep -m3 'Sanitizer\|runtime error:' "$T/verify.err")"
    sanitizer_check "restore or verify of $d" "$T/err" "$T/verify.err"
    says="restore says '$(sed "s|$T/random/||" "$T/err")', verify says '$(sed "s|$T/random/||" "$T/verify.out" | head -c 500)'"
    if ((rc == 1)); then
      refused=$((refused + 1))
      unchanged "restore $d"
      [[ $(rcli --scan | sort) == "$server_keys" ]] ||
        fail "restore $d changed the server's keys: $({ diff <(echo "$server_keys") <(rcli --scan | sort) || true; } | head -5)"
      if [[ $(wc -l <"$T/err") != 1 ]]; then
        broken+=("$d: restore refused it in more than one line: $(head -c 500 "$T/err")")
      elif ((vrc != 1)); then
        broken+=("$d: restore refused it, verify finds the chain sound: $says")
      elif ! grep -q "refusing to apply the incremental dump to 'BASE': " "$T/err" &&
        ! same_block_size "$T/err" "$T/verify.out" && ! same_reason "$T/err" "$T/verify.out" "$T/random/$file"; then
        # Restore refuses a dump for another base from its header on, and
        # verify reads the whole document before it checks the link; the
        # block size, a link too, each says in its own words (the target's,
        # what the files before it leave); else the same reason, in the same
        # words, where included.
        # Of a dump with two problems, each may name another first (restore
        # learns of a duplicate from the server a batch later): listed.
        if [[ $kinds == *,* ]]; then
          other_reason+=("$d: $says")
        else
          broken+=("$d: not refused for the same reason: $says")
        fi
      fi
      continue
    fi
    accepted=$((accepted + 1))
    if ((vrc != 0)); then
      broken+=("$d: restore applied it, verify refuses the chain: $says")
    elif ! snap -q fsck BASE >"$T/fsck.out" 2>&1; then
      broken+=("$d: restore applied it, fsck finds BASE damaged: $(head -3 "$T/fsck.out")")
    elif ! snap -q dump BASE -o "$T/applied.json" 2>"$T/dump.err" || [[ -s $T/dump.err ]]; then
      broken+=("$d: restore applied it, fsck finds BASE clean, dump of BASE says: $(head -c 500 "$T/dump.err")")
    elif ! python3 - "$T/mon.json" "$T/random/$file" "$T/applied.json" "$(dirname "$GEN")" >"$T/compare.out" <<'PY'; then
import gzip
import json
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[4])
from hostile_gen import decode_bytes  # noqa: E402
# The superblock's fields that are its state (the state digest's), and its lineage.
SB = {b'format', b'version', b'block_size', b'root', b'next_inode', b'inodes', b'bytes', b'created',
      b'security_xattrs', b'snapshot_id', b'lineage'}
def load(path):
    with open(path, 'rb') as f:
        data = f.read()
    if data[:2] == b'\x1f\x8b':
        data = gzip.decompress(data)
    state, deleted = {}, set()
    for r in json.loads(data)['records']:
        if r.get('delete'):
            deleted.add(r['key'])
        elif 'string' in r:
            state[r['key']] = decode_bytes(r['string'])
        else:
            state[r['key']] = sorted((decode_bytes(f), decode_bytes(v)) for f, v in r['hash']
                                     if r['key'] != 'SB' or decode_bytes(f) in SB)
    return state, deleted
want, _ = load(sys.argv[1])
written, deleted = load(sys.argv[2])
for key in deleted:
    want.pop(key, None)
want.update(written)
got, _ = load(sys.argv[3])
for key in sorted(set(want) | set(got)):
    if want.get(key) != got.get(key):
        print('%s: %r, not %r' % (key, str(got.get(key))[:200], str(want.get(key))[:200]))
sys.exit(1 if want != got else 0)
PY
      broken+=("$d: restore applied it, but BASE is not mon.json with its records: $(head -3 "$T/compare.out")")
    elif ! { snap -q copy BASE NEXT && snap -q dump NEXT --since BASE -o "$T/next.json"; } >"$T/next.err" 2>&1; then
      broken+=("$d: restore applied it, but an incremental since it cannot be taken: $(head -3 "$T/next.err")")
    elif ! "$REDISFS_SNAP_BIN" -q verify "$T/mon.json" "$T/random/$file" "$T/next.json" >"$T/verify.out" 2>&1; then
      # the state digest restore leaves (NEXT's base_digest) must be the one verify says the chain leaves
      broken+=("$d: restore applied it, verify refuses the chain on to an incremental since: $(head -c 500 "$T/verify.out")")
    fi
    # BASE as mon.json leaves it, for the next
    rcli eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('UNLINK', k) end" 0 "NEXT:*" >/dev/null
    rcli eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('UNLINK', k) end" 0 "BASE:*" >/dev/null
    snap -q restore "$T/mon.json" --prefix BASE
    base_keys=$(fs_digest BASE)
    base_sb=$(sb_digest BASE)
    server_keys=$(rcli --scan | sort)
  done <"$T/random/manifest.tsv"
  note "$((accepted + refused)) random hostile incrementals: $refused refused, $accepted applied"
  if ((${#other_reason[@]} > 0)); then
    note "${#other_reason[@]} with more than one mutation refused by restore and verify for other reasons:"
    printf '   %s\n' "${other_reason[@]}" | cut -c1-600
  fi
  if ((${#broken[@]} > 0)); then
    printf '   %s\n' "${broken[@]}" | cut -c1-800
    fail "${#broken[@]} random hostile incrementals (seed $INC_HOSTILE_SEED) were not refused or applied as they should"
  fi
fi

note "a key written and deleted by one incremental: the write wins, in restore and in verify's chain alike"
tue_with "$T/write-delete.json" "records.append(['INODE:6', 'delete', None])"  # (tue.json writes it)
snap -q restore "$T/write-delete.json" --prefix BASE
[[ $(fs_digest BASE) == "$(fs_digest TUE)" ]] || fail "BASE is not TUE after an incremental that writes and deletes INODE:6"
snap -q copy BASE NEXT
snap -q dump NEXT --since BASE -o "$T/next.json"
out=$("$REDISFS_SNAP_BIN" -q verify "$T/mon.json" "$T/write-delete.json" "$T/next.json" 2>&1) ||
  fail "verify's chain digest is not the state restore left: $out"
rcli eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('UNLINK', k) end" 0 "NEXT:*" >/dev/null
rcli eval "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('UNLINK', k) end" 0 "BASE:*" >/dev/null
snap -q restore "$T/mon.json" --prefix BASE

note "another block size than its base's: refused by restore and by verify of the chain"
tue_with "$T/block-size.json" "set_field(records, 'SB', b'block_size', b'8192')"
expect_fail snap -q restore "$T/block-size.json" --prefix BASE
grep -q "the dump's block size 8192 is not the target's (4096)" "$T/err" || fail "restore of another block size: $(cat "$T/err")"
unchanged "restore of an incremental of another block size"
rc=0
out=$("$REDISFS_SNAP_BIN" -q verify "$T/mon.json" "$T/block-size.json" 2>&1) || rc=$?
((rc == 1)) && grep -q "block-size.json: its block size 8192 is not that of what .*mon.json leaves (4096)" <<<"$out" ||
  fail "verify of an incremental of another block size exited $rc: $out"

note "the real incremental: verify of the chain is sound, restore applies it"
"$REDISFS_SNAP_BIN" -q verify "$T/mon.json" "$T/tue.json" >"$T/vout" || fail "verify of the real chain: $(cat "$T/vout")"
snap -q restore "$T/tue.json" --prefix BASE
snap -q fsck BASE >/dev/null || fail "fsck after the real incremental: $(snap fsck BASE 2>&1 | head -3)"
[[ $(fs_digest BASE) == "$(fs_digest TUE)" ]] || fail "BASE is not TUE after the incremental"
note "ok"
