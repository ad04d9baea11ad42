#!/usr/bin/env bash
# walk.sh: what a walk of a large tree costs, by size (issue 10: "costs that
# grow faster than the work"). Makes NDIRS directories of NFILES empty files
# on a private redis-server in a temp dir (written on the server directly,
# as a restore would: creating a million files through FUSE takes too long),
# then times each workload on a fresh mount (page cache dropped when root)
# and prints the daemon's counters for it (SIGUSR1): LOOKUPs, readdir and
# readdirplus requests, Redis round trips, and the daemon's peak RSS.
#
#   bench/walk.sh [NDIRS [NFILES [WORKLOADS]]]     defaults: 100 1000 "find du walk"
#   bench/walk.sh 1000 1000                         a million inodes
#   bench/walk.sh 1 200000 "lsf lsl lsf"            one directory of 200,000 names
#
# Workloads: find (find | wc -l), du (du -s), walk (os.walk + lstat of every
# file), lsf / lsl (ls -f / ls -l of the first directory; these share one
# mount, so a second lsf shows what a repeated listing keeps; their counts
# add up). Binary:
# $REDISFS_BIN (default build/fs/redisfs). Nothing is asserted.
set -euo pipefail
ND=${1:-100}
NF=${2:-1000}
WORKLOADS=${3:-find du walk}
BIN=${REDISFS_BIN:-build/fs/redisfs}
T=$(mktemp -d /tmp/redisfs-walk.XXXXXX)
SOCK=$T/redis.sock
MNT=$T/mnt
mkdir -p "$MNT"
PID=

cleanup() {
  if mountpoint -q "$MNT"; then fusermount3 -u "$MNT" || fusermount3 -uz "$MNT"; fi
  if [[ -n $PID ]]; then wait "$PID" 2>/dev/null || true; fi
  redis-cli -s "$SOCK" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT

redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no --daemonize yes \
  --pidfile "$T/redis.pid" --dir "$T" --logfile "$T/redis.log"
for _ in $(seq 100); do [[ $(redis-cli -s "$SOCK" ping 2>/dev/null) == PONG ]] && break; sleep 0.05; done

mount_fs() {
  "$BIN" -f --redis "unix://$SOCK" --prefix W "$MNT" 2>"$T/log" &
  PID=$!
  for _ in $(seq 200); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
  echo "walk.sh: no mount: $(tail -3 "$T/log")" >&2
  exit 1
}
unmount_fs() {
  fusermount3 -u "$MNT"
  wait "$PID" || true
  PID=
}

mount_fs  # makes the filesystem
unmount_fs
python3 "$(dirname "$0")/../tests/mount/dirlist.py" tree W 1000000 "$ND" "$NF" | redis-cli -s "$SOCK" --pipe >/dev/null
echo "$ND directories of $NF files ($((ND * NF + ND)) inodes), $("$BIN" --version 2>/dev/null | head -1 || echo "$BIN")"

count() {  # op name: its count in the stats the daemon logged last
  awk -v op="$1" '$0 ~ "stats: " op " " {sub(".*stats: " op " +", ""); n = $1} END {print n + 0}' "$T/log"
}

mounted=
for w in $WORKLOADS; do
  if [[ $w != ls* || -z $mounted ]]; then
    [[ -z $mounted ]] || unmount_fs
    mount_fs
    mounted=1
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  fi
  t0=$(date +%s.%N)
  case $w in
    find) find "$MNT" | wc -l >/dev/null ;;
    du) du -s "$MNT" >/dev/null ;;
    walk) python3 -c 'import os, sys
for r, ds, fs in os.walk(sys.argv[1]):
    for f in fs: os.lstat(os.path.join(r, f))' "$MNT" ;;
    lsf) ls -f "$MNT/d0000" | wc -l >/dev/null ;;
    lsl) ls -l "$MNT/d0000" | wc -l >/dev/null ;;
    *) echo "walk.sh: unknown workload $w" >&2; exit 2 ;;
  esac
  t1=$(date +%s.%N)
  kill -USR1 "$PID"
  sleep 0.3
  printf '%-5s %8.2f s  lookup %-8s readdir %-6s readdirplus %-6s getattr %-7s round trips %-8s RSS %s kB (peak %s)\n' \
    "$w" "$(echo "$t1 - $t0" | bc)" "$(count lookup)" "$(count readdir)" "$(count readdirplus)" "$(count getattr)" \
    "$(awk '/round trips/{sub(/.*redis: /, ""); n = $1} END {print n + 0}' "$T/log")" \
    "$(awk '/^VmRSS/{print $2}' "/proc/$PID/status")" "$(awk '/^VmHWM/{print $2}' "/proc/$PID/status")"
  if [[ $w != ls* ]]; then
    unmount_fs
    mounted=
  fi
done
