#!/usr/bin/env bash
# restore while the server keeps refusing commands with BUSY (another
# client's scripts running past busy-reply-threshold). The Connection sends
# a refused command again after the commands pipelined behind it have run
# (redis.hpp), so the server runs a restore's staging writes out of order
# at every refusal that ends mid-pipeline. Checked:
#  - each restore ends with what a plain restore gives, and fsck finds it
#    clean: no false "duplicate key" from an EXISTS sent again after its own
#    hash was written (staging_writes.hpp: a doubt, settled by the index);
#  - it ends at all: the thousands of commands a refusal hits are sent again
#    at the pace of round trips once the server runs one (before, each
#    waited out a back-off of its own, and the restore gave up after 30 s);
#  - an interrupted restore under the same refusals leaves every staged key
#    with its TTL (a PEXPIRE that ran before its key was made is sent
#    again), and --resume finishes it;
#  - a copy (snapshot) under them is its source;
#  - the toolkit's MULTI/EXEC steps (moving a filesystem in place, marking
#    a superblock) are sent again whole when a refused command aborted
#    them (they failed the copy or restore before): twenty small copies,
#    restores over a filesystem and deletes all succeed.
# Three restores and a resume: in most runs a refusal ends between two
# commands of one record in at least one of them.
. "$(dirname "$0")/snap_lib.sh"

# 5,000 empty files with an xattr each in the root: 10,003 hash records.
python3 - SRC 5000 <<'PY' | rcli --pipe >/dev/null
import sys, time
prefix, n = sys.argv[1], int(sys.argv[2])
now = str(time.time_ns())
out = sys.stdout.buffer
def cmd(*a):
    a = [x.encode() for x in a]
    out.write(b'*%d\r\n' % len(a) + b''.join(b'$%d\r\n%s\r\n' % (len(x), x) for x in a))
cmd('HSET', prefix + ':SB', 'format', 'redisfs', 'version', '1', 'block_size', '4096', 'root', '1',
    'next_inode', str(n + 100), 'inodes', str(n + 1), 'bytes', '0', 'created', now)
inode = ['mode', '0644', 'uid', '0', 'gid', '0', 'size', '0', 'rdev', '0', 'bytes', '0',
         'atime', now, 'mtime', now, 'ctime', now]
cmd('HSET', prefix + ':INODE:1', 'type', 'dir', 'nlink', '2', 'parent', '1', *inode)
for i in range(2, n + 2):
    cmd('HSET', prefix + ':DIR:1', 'f%d' % i, str(i))
    cmd('HSET', prefix + ':INODE:%d' % i, 'type', 'file', 'nlink', '1', *inode)
    cmd('HSET', prefix + ':XATTR:%d' % i, 'user.n', str(i))
cmd('SADD', 'redisfs~FILESYSTEMS', prefix)
PY
snap -q fsck SRC >/dev/null || fail "SRC is not clean: $(snap fsck SRC 2>&1 | head -3)"
snap -q dump SRC -o "$T/full.json"
size=$(stat -c %s "$T/full.json")
snap -q restore "$T/full.json" --prefix PLAIN
plain=$(fs_digest PLAIN)
plain_sb=$(sb_content PLAIN)
make_fs SMALL
snap -q dump SMALL -o "$T/small.json"
snap -q restore "$T/small.json" --prefix SMALL-R
small=$(fs_digest SMALL)

busy_scripts_start "$SOCK"

same_as_plain() {
  [[ $(fs_digest "$1") == "$plain" ]] || fail "$1 differs from a plain restore"
  [[ $(sb_content "$1") == "$plain_sb" ]] || fail "$1's superblock differs from a plain restore's"
}

for i in 1 2 3; do
  note "restore $i under BUSY refusals"
  snap -q restore "$T/full.json" --prefix "DST$i" 2>"$T/err" || fail "restore $i: $(cat "$T/err")"
done
note "a copy under BUSY refusals"
snap -q copy SRC SNAP 2>"$T/err" || fail "copy: $(cat "$T/err")"
note "small copies, restores over a filesystem (--force) and deletes under BUSY refusals"
for i in $(seq 1 20); do
  snap -q copy SMALL "SMALL-$i" 2>"$T/err" || fail "copy $i: $(cat "$T/err")"
  snap -q restore "$T/small.json" --prefix SMALL-R --force 2>"$T/err" || fail "restore --force $i: $(cat "$T/err")"
  snap -q delete "SMALL-$i" 2>"$T/err" || fail "delete $i: $(cat "$T/err")"
done
note "a restore interrupted under BUSY refusals: every staged key expires"
rc=0
head -c $((size / 2)) "$T/full.json" | snap -q restore - --prefix CUT 2>"$T/err" || rc=$?
busy_scripts_stop  # (what the restores left is read without refusals)
((rc == 1)) || fail "the interrupted restore exited $rc: $(cat "$T/err")"
grep -q "'restore --resume'" "$T/err" || fail "no hint to resume: $(cat "$T/err")"
staged=$(rcli --scan --pattern 'CUT~*')
(($(wc -l <<<"$staged") > 1000)) || fail "only $(wc -l <<<"$staged") staged keys"
no_ttl=$(paste -d' ' <(cat <<<"$staged") <(sed 's/^/pttl /' <<<"$staged" | rcli) | awk '$2 <= 0')
[[ -z $no_ttl ]] || fail "staged keys without a TTL: $(head -3 <<<"$no_ttl")"
for i in 1 2 3; do
  same_as_plain "DST$i"
done
[[ $(fs_digest SNAP) == $(fs_digest SRC) ]] || fail "the copy differs from its source"
[[ $(fs_digest SMALL-R) == "$small" ]] || fail "the small restore differs from its source"
[[ -z $(rcli --scan --pattern 'SMALL-[0-9]*') ]] || fail "a deleted copy left keys"

note "the interrupted restore resumed under BUSY refusals"
busy_scripts_start "$SOCK"
snap -q restore --resume "$T/full.json" --prefix CUT 2>"$T/err" || fail "resume: $(cat "$T/err")"
busy_scripts_stop
same_as_plain CUT
for p in DST1 DST2 DST3 CUT SNAP SMALL-R; do
  snap -q fsck "$p" >/dev/null || fail "$p is not clean: $(snap fsck "$p" 2>&1 | head -3)"
done
[[ -z $(rcli --scan --pattern '*~restore~*') ]] || fail "staging keys left behind"
note "ok"
