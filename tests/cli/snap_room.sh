#!/usr/bin/env bash
# A tool that stages a filesystem's keys in the server (copy, dump's
# temporary copy, restore) never runs the server out of memory under the
# mounts' writes (core/snap/room.hpp; redisfs-snap(1), PRODUCTION REDIS,
# Memory): with less free memory than the filesystem's data it refuses up
# front, and one whose staging the data did not foretell (metadata: and
# diff's snapshot of a live filesystem) stops
# once the free memory falls below the margin the writers keep (5% of
# maxmemory), each in one line saying what the server has (exit 1),
# leaving no staged key behind, the source untouched and the server
# writable; with room again, each works.
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
one_line() {
  [[ $(wc -l <"$T/err") == 1 ]] || fail "$1: not one line: $(cat "$T/err")"
}

note "up front: 8 MiB of data on a server with 4 MiB free"
make_fs DATA
add_blocks DATA 3 0 2048
rcli hset DATA:INODE:3 size $((2048 * 4096)) bytes $((2048 * 4096)) >/dev/null
rcli hset DATA:SB bytes $((2048 * 4096 + 13)) >/dev/null
snap -q dump DATA -o "$T/data.json"
before=$(fs_digest DATA)
rcli config set maxmemory $(($(used_memory) + (4 << 20))) >/dev/null
expect_fail snap -q copy DATA DST
one_line copy
says "copy DATA: the copy needs at least 8.0 MiB of the server's memory (the data of 'DATA'), and the server has "
says "free (used "
says "of maxmemory "
says "kept for the mounts' writes): free memory in the server, or raise its maxmemory (CONFIG SET maxmemory)"
no_staging copy
expect_fail snap -q dump DATA -o "$T/no.json"
one_line dump
says "dump DATA: the dump's temporary copy needs at least 8.0 MiB of the server's memory"
[[ ! -e $T/no.json ]] || fail "a refused dump wrote its file"
no_staging dump
expect_fail snap -q restore "$T/data.json" --prefix RST
one_line restore
says "$T/data.json: the restore stopped: the server is nearly out of memory (used "
no_staging restore
[[ $(fs_digest DATA) == "$before" ]] || fail "a refused tool changed DATA"
rcli set writable yes >/dev/null || fail "the server is left unwritable"
snap -q delete DATA
rcli config set maxmemory 0 >/dev/null

note "midway: 20,000 inodes (no data) and a server whose free memory they overrun"
make_fs META
python3 - <<'PY' | redis-cli -s "$SOCK" --pipe >/dev/null
n = 20000
out = []
def cmd(*args):
    out.append(b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in args))
for i in range(1000, 1000 + n):
    cmd(b'HSET', b'META:INODE:%d' % i, b'type', b'file', b'mode', b'0644', b'uid', b'0', b'gid', b'0', b'size', b'0',
        b'nlink', b'1', b'rdev', b'0', b'bytes', b'0', b'atime', b'1', b'mtime', b'1', b'ctime', b'1')
    cmd(b'HSET', b'META:DIR:4', b'f%d' % i, b'%d' % i)
cmd(b'HSET', b'META:SB', b'inodes', b'%d' % (n + 5), b'next_inode', b'%d' % (1000 + n))
import sys
sys.stdout.buffer.write(b''.join(out))
PY
snap -q fsck META >"$T/out" || fail "the filesystem made is not clean: $(cat "$T/out")"
snap -q dump META -o "$T/meta.json"
snap -q copy META META-S
before=$(fs_digest META)
rcli debug populate 20000 filler 1000 >/dev/null
rcli config set maxmemory $(($(used_memory) + (4 << 20))) >/dev/null
note "server: $(rcli info memory | grep -E '^(used_memory_human|maxmemory_human)' | tr -d '\r' | tr '\n' ' ')"
for cmd in "copy META DST" "dump META -o $T/no.json" "restore $T/meta.json --prefix RST" "diff META-S META"; do
  read -ra argv <<<"$cmd"
  expect_fail snap -q "${argv[@]}"
  one_line "$cmd"
  note "$(cat "$T/err")"
  says "stopped: the server is nearly out of memory (used "
  ! grep -q OOM "$T/err" || fail "$cmd ran the server out of memory: $(cat "$T/err")"
  no_staging "${argv[0]}"
  rcli set writable yes >/dev/null || fail "$cmd left the server unwritable"
done
[[ ! -e $T/no.json ]] || fail "a stopped dump wrote its file"
[[ $(fs_digest META) == "$before" ]] || fail "a stopped tool changed META"
rcli config set maxmemory 0 >/dev/null
snap -q copy META DST
snap -q restore "$T/meta.json" --prefix RST
snap -q dump META -o "$T/again.json"
snap -q verify "$T/again.json" >/dev/null
snap -q diff META-S META >"$T/out"
[[ ! -s $T/out ]] || fail "a snapshot and its unchanged source differ: $(head -3 "$T/out")"
note "ok"
