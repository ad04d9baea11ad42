#!/usr/bin/env bash
# atime: relatime, as Linux mounts by default, decided by the server
# (touch_atime.lua) in the read's own round trip (Store::read_pieces):
#   - a read records an access when the last one is not newer than the
#     last change, and not again until the file changes (or a day passes);
#   - a read costs one Redis round trip (the daemon's counters, SIGUSR1),
#     also when it records an access;
#   - a noatime mount never writes an atime (a --read-only one neither:
#     readonly.sh).
. "$(dirname "$0")/lib.sh"

# read_stats PID LOG: SIGUSR1 to the daemon, then its read requests so far
# and the round trips they made ("0 0" when none), from the stats it logged.
read_stats() {
  local pid=$1 log=$2 i before
  before=$(grep -c 'stats: .* requests in ' "$log" || true)
  kill -USR1 "$pid"
  for ((i = 0; i < 100; i++)); do
    (($(grep -c 'stats: .* requests in ' "$log" || true) > before)) && break
    sleep 0.05
  done
  sleep 0.1  # the per-op lines follow the header
  awk '/stats: .* requests in /{n = 0; t = 0}
       /stats: read /{n = $4; sub(/ round trips.*/, ""); t = $NF}
       END {printf "%d %.0f\n", n, n * t}' "$log"
}

mount_fs
printf 'hello\n' >"$MNT/f"
ino=$(stat -c %i "$MNT/f")
atime() { rcli HGET "$PREFIX:INODE:$ino" atime; }
mtime=$(rcli HGET "$PREFIX:INODE:$ino" mtime)
a0=$(atime)
((a0 <= mtime)) || fail "a new file's atime $a0 is after its mtime $mtime"

# reads (each open drops the page cache of a read-write mount: one READ each)
read_file() { python3 -c 'import sys; open(sys.argv[1], "rb").read()' "$MNT/f"; }
# (the first scripts a connection sends may cost a SCRIPT LOAD: counted from here)
printf 'x\n' >"$MNT/warm"
for _ in 1 2 3 4 5 6; do python3 -c 'import sys; open(sys.argv[1], "rb").read()' "$MNT/warm"; done
read -r reads0 trips0 < <(read_stats "$DAEMON_PID" "${MOUNT_LOGS[$MNT]}")
read_file
a1=$(atime)
((a1 > mtime)) || fail "a read of a file changed since its last access left atime at $a1 (mtime $mtime)"
read_file
[[ $(atime) == "$a1" ]] || fail "a second read moved atime from $a1 to $(atime): relatime records one access per change"
printf 'more\n' >>"$MNT/f"
read_file
a2=$(atime)
((a2 > a1 && a2 > $(rcli HGET "$PREFIX:INODE:$ino" mtime))) || fail "a read after a write left atime at $a2"

read -r reads1 trips1 < <(read_stats "$DAEMON_PID" "${MOUNT_LOGS[$MNT]}")
((reads1 - reads0 == 3)) || fail "3 reads of a small file made $((reads1 - reads0)) READ requests"
((trips1 - trips0 == 3)) ||
  fail "3 reads (2 recording an access) cost $((trips1 - trips0)) Redis round trips, not 3 (the access time in a round trip of its own?)"
unmount_fs

# noatime: reads never write an atime
mount_fs -o noatime
printf 'x\n' >"$MNT/g"
ino=$(stat -c %i "$MNT/g")
a0=$(atime)
read_file() { python3 -c 'import sys; open(sys.argv[1], "rb").read()' "$MNT/g"; }
read_file
[[ $(atime) == "$a0" ]] || fail "a noatime mount moved atime from $a0 to $(atime)"
unmount_fs
