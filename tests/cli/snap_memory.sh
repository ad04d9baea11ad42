#!/usr/bin/env bash
# snap_memory: what redisfs-snap(1) says the tools hold in memory, measured.
# A filesystem of 100,000 inodes (100 directories of 1,000 files) and one
# file of 64 MiB, written on the server as a restore would, beside a tiny
# one; each command's peak resident size on the big one, less its peak on
# the tiny one, must stay within what the manual promises (dump and verify:
# about 80 bytes an inode, never the data; verify of a full dump that an
# incremental follows: about 150 bytes more a metadata key, its share of
# the state digest; du: a record per directory, none
# per file; diff: a few dozen bytes per inode of each state; fsck: under
# 100 bytes an inode) and what streaming allows restore. The bounds are
# twice the measured growth or more: memory, not time, and the same
# allocator on every machine, so a regression that holds the data (64 MiB)
# or a few hundred bytes more an inode fails them.
. "$(dirname "$0")/snap_lib.sh"
# (ASan keeps 256 MiB of freed memory in quarantine and pads every block:
# a tool's peak says nothing of what it holds)
skip_when_sanitized "peak memory under a sanitizer's allocator measures the sanitizer"

DIRLIST=$(dirname "$0")/../mount/dirlist.py
N=100000

# bigfile PREFIX INO: a 64 MiB file "big" in the root (16,384 blocks of 4 KiB)
bigfile() {
  python3 - "$1" "$2" <<'PY' | rcli --pipe >/dev/null
import os, sys, time
out = sys.stdout.buffer
def cmd(*a):
    b = [b"*%d\r\n" % len(a)]
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        b.append(b"$%d\r\n%s\r\n" % (len(x), x))
    out.write(b"".join(b))
fs, ino, n, now = sys.argv[1], int(sys.argv[2]), 16384, time.time_ns()
cmd("HSET", "%s:INODE:%d" % (fs, ino), "type", "file", "mode", "0644", "uid", 0, "gid", 0, "size", n * 4096,
    "nlink", 1, "rdev", 0, "bytes", n * 4096, "atime", now, "mtime", now, "ctime", now)
block = os.urandom(4096)
for i in range(n):
    cmd("SET", "%s:BLK:%d:%d" % (fs, ino, i), block[i % 64:] + block[:i % 64])
cmd("HSET", "%s:DIR:1" % fs, "big", ino)
cmd("HINCRBY", "%s:SB" % fs, "inodes", 1)
cmd("HINCRBY", "%s:SB" % fs, "bytes", n * 4096)
PY
}

# peak_kb CMD...: the command's exit code and peak resident size (KiB)
peak_kb() {
  python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}

make_fs TINY
make_fs BIG
python3 "$DIRLIST" tree BIG 1000 100 1000 | rcli --pipe >/dev/null
bigfile BIG 900
snap fsck BIG >"$T/fsck" 2>&1 || fail "the big filesystem is not consistent: $(tail -3 "$T/fsck")"
snap -q copy TINY TINY2
snap -q copy BIG BIG2
# A second snapshot of each and the incremental dump from the first: a
# chain for verify, which then holds each metadata key's share of the
# state digest of the full dump before the incremental.
snap -q copy TINY TINY3
snap -q copy BIG BIG3
for p in TINY BIG; do
  snap -q dump ${p}2 -o "$T/${p}2.json"
  snap -q dump ${p}3 --since ${p}2 -o "$T/${p}3.json"
done

declare -A grown
measure() {  # NAME ARGS... (with @ for the prefix, or the dump's name)
  local name=$1 p rc kb
  shift
  declare -A got
  for p in TINY BIG; do
    read -r rc kb < <(peak_kb "${@//@/$p}")
    ((rc == 0)) || fail "$name of $p exited $rc"
    got[$p]=$kb
  done
  grown[$name]=$((got[BIG] - got[TINY]))
  note "$name: peak ${got[TINY]} KiB on the tiny filesystem, ${got[BIG]} KiB on $N inodes and 64 MiB"
}
at_most() {  # NAME BYTES-AN-INODE MORE-KIB WHAT
  local limit=$((N * $2 / 1024 + $3))
  ((grown[$1] <= limit)) || fail "$1 grew by ${grown[$1]} KiB on $N inodes and 64 MiB of data, want at most $limit ($4)"
}

measure dump "$REDISFS_SNAP_BIN" --redis "$URL" -q dump @ -o "$T/@.json"
measure verify "$REDISFS_SNAP_BIN" verify "$T/@.json"
measure verify_chain "$REDISFS_SNAP_BIN" verify "$T/@2.json" "$T/@3.json"
measure restore "$REDISFS_SNAP_BIN" --redis "$URL" -q restore "$T/@.json" --prefix R@
measure fsck "$REDISFS_SNAP_BIN" --redis "$URL" fsck @
measure du "$REDISFS_SNAP_BIN" --redis "$URL" du @
measure diff "$REDISFS_SNAP_BIN" --redis "$URL" diff @ @2

at_most dump 160 8192 "about 80 bytes an inode, never the data"
at_most verify 100 4096 "one small record per inode, never the data"
at_most verify_chain 400 8192 "a record per inode and about 150 bytes a metadata key"
at_most restore 200 16384 "streamed, never the data whole"
at_most fsck 100 4096 "under 100 bytes an inode"
at_most du 0 2048 "a record per directory, none per file"
at_most diff 128 8192 "a few dozen bytes per inode of each state"
note "ok"
