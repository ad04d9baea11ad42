#!/usr/bin/env bash
# A tool that stages a filesystem's keys in the server (copy, dump's
# temporary copy, restore of a full or an incremental dump, rollback)
# never runs the server out of memory under the mounts' writes
# (core/snap/room.hpp; redisfs-snap(1), PRODUCTION REDIS, Memory): whether
# the filesystem is data (blocks) or metadata (inodes; and diff's snapshot
# of a live filesystem's), each stops once the free memory falls below the
# margin the writers keep (5% of maxmemory), in one line saying what the
# server has (exit 1), leaving no staged key behind, the source untouched
# and the server writable; with room again, each works. A dump stages the
# metadata only (it streams the blocks through a batch at a time): it
# dumps 8 MiB of data on a server with 4 MiB free, the same filesystem as
# with room. (Nothing is refused from the superblock's counters: a damaged
# filesystem's may say anything: snap_hostile_gen.sh dumps such.)
. "$(dirname "$0")/snap_lib.sh"

used_memory() { rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
# no_staging: only the filesystems made here, and the filler, are left
no_staging() {  # WHAT
  local left
  left=$(rcli --scan | grep -E '~(copy|dump|restore|replaced)~|^(DST|RST)[:~]' | head -3 || true)
  [[ -z $left ]] || fail "$1 left keys behind: $left"
}
says() {
  grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1': $(cat "$T/err")"
}
# stops WORDS: `snap WORDS` (one string, split at blanks) stops for want
# of room: one line, exit 1, before the server answered OOM, nothing
# staged left, the server still writable.
stops() {
  local argv
  read -ra argv <<<"$1"
  expect_fail snap -q "${argv[@]}"
  [[ $(wc -l <"$T/err") == 1 ]] || fail "$1: not one line: $(cat "$T/err")"
  note "$(cat "$T/err")"
  says "stopped: the server is nearly out of memory (used "
  says " are kept for the mounts' writes): free memory in the server, or raise its maxmemory (CONFIG SET maxmemory), then run it again"
  ! grep -q OOM "$T/err" || fail "$1 ran the server out of memory: $(cat "$T/err")"
  no_staging "${argv[0]}"
  rcli set writable yes >/dev/null || fail "$1 left the server unwritable"
}

# add_inodes PREFIX N: N empty files in directory 4 (inodes 1000 on), and
# the superblock's counters to match (make_fs's 5 inodes before them).
add_inodes() {
  python3 - "$@" <<'PY' | redis-cli -s "$SOCK" --pipe >/dev/null
import sys
p, n = sys.argv[1].encode(), int(sys.argv[2])
out = []
def cmd(*args):
    out.append(b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in args))
for i in range(1000, 1000 + n):
    cmd(b'HSET', b'%s:INODE:%d' % (p, i), b'type', b'file', b'mode', b'0644', b'uid', b'0', b'gid', b'0', b'size', b'0',
        b'nlink', b'1', b'rdev', b'0', b'bytes', b'0', b'atime', b'1', b'mtime', b'1', b'ctime', b'1')
    cmd(b'HSET', b'%s:DIR:4' % p, b'f%d' % i, b'%d' % i)
cmd(b'HSET', b'%s:SB' % p, b'inodes', b'%d' % (n + 5), b'next_inode', b'%d' % (1000 + n))
sys.stdout.buffer.write(b''.join(out))
PY
}

note "data: 8 MiB of blocks on a server with 4 MiB free"
make_fs DATA
add_blocks DATA 3 0 2048
rcli hset DATA:INODE:3 size $((2048 * 4096)) bytes $((2048 * 4096)) >/dev/null
rcli hset DATA:SB bytes $((2048 * 4096 + 13)) >/dev/null
snap -q dump DATA -o "$T/data.json"
before=$(fs_digest DATA)
# within its margin already (2% free): nothing begun, not even the snapshot
rcli config set maxmemory $(($(used_memory) * 102 / 100)) >/dev/null
stops "copy DATA DST"
! grep -q "partial copy" "$T/err" || fail "a copy was begun on a server with no room: $(cat "$T/err")"
stops "dump DATA -o $T/no.json"
rcli config set maxmemory $(($(used_memory) + (4 << 20))) >/dev/null
stops "copy DATA DST"
says "copy DATA: the copy stopped: the server is nearly out of memory (used "
says " of maxmemory "
stops "restore $T/data.json --prefix RST"
says "$T/data.json: the restore stopped: "
[[ $(fs_digest DATA) == "$before" ]] || fail "a stopped tool changed DATA"
snap -q dump DATA -o "$T/small.json" 2>"$T/err" || fail "a dump of 8 MiB of data on a server with 4 MiB free: $(cat "$T/err")"
no_staging dump
rcli config set maxmemory 0 >/dev/null
snap -q restore "$T/small.json" --prefix RST
[[ $(fs_digest RST) == "$before" ]] || fail "the dump made with little room is not the filesystem"
snap -q delete RST
snap -q delete DATA

note "metadata: 20,000 inodes (no data) and a server whose free memory they overrun"
make_fs META
add_inodes META 20000
snap -q fsck META >"$T/out" || fail "the filesystem made is not clean: $(cat "$T/out")"
snap -q dump META -o "$T/meta.json"
snap -q copy META META-S
# an incremental dump of 20,000 new inodes, and its base restored
make_fs INC
snap -q copy INC INC-MON
snap -q dump INC-MON -o "$T/mon.json"
add_inodes INC 20000
snap -q copy INC INC-TUE
snap -q dump INC-TUE --since INC-MON -o "$T/tue.json"
for p in INC INC-MON INC-TUE; do snap -q delete "$p"; done
snap -q restore "$T/mon.json" --prefix RINC
base=$(fs_digest RINC)
before=$(fs_digest META)
rcli debug populate 20000 filler 1000 >/dev/null
rcli config set maxmemory $(($(used_memory) + (4 << 20))) >/dev/null
note "server: $(rcli info memory | grep -E '^(used_memory_human|maxmemory_human)' | tr -d '\r' | tr '\n' ' ')"
stops "copy META DST"
stops "dump META -o $T/no.json"
stops "restore $T/meta.json --prefix RST"
stops "diff META-S META"
says "diff META-S META: diff's snapshot stopped: "
stops "restore $T/tue.json --prefix RINC"
[[ $(fs_digest RINC) == "$base" ]] || fail "a stopped incremental restore changed its base"
stops "rollback META META-S"
says "rollback META: copy META-S: the copy stopped: "
kept=$(rcli --scan --pattern 'META*' | grep -Ev '^META(-S)?:' | head -3 || true)
[[ -z $kept ]] || fail "a stopped rollback left keys: $kept"
[[ $(rcli exists META:RESERVED) == 0 ]] || fail "a stopped rollback left its reservation"
[[ ! -e $T/no.json ]] || fail "a stopped dump wrote its file"
[[ $(fs_digest META) == "$before" ]] || fail "a stopped tool changed META"
rcli config set maxmemory 0 >/dev/null
snap -q copy META DST
snap -q restore "$T/meta.json" --prefix RST
snap -q restore "$T/tue.json" --prefix RINC
snap -q dump META -o "$T/again.json"
snap -q verify "$T/again.json" >/dev/null
snap -q diff META-S META >"$T/out"
[[ ! -s $T/out ]] || fail "a snapshot and its unchanged source differ: $(head -3 "$T/out")"
note "ok"
