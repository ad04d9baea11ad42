#!/usr/bin/env bash
# basic: the POSIX parity suite. posix_parity.py makes every call on the
# mount and on a native directory and fails on any errno or stat mismatch;
# allow_other lets its forked children (other uids) reach the mount. The
# keys left behind must then form a consistent filesystem. SIGUSR1 then
# makes the daemon log what it has served (op_stats.hpp), and the mount
# goes on.
. "$(dirname "$0")/lib.sh"

mount_fs -o allow_other
python3 "$HERE/posix_parity.py" "$MNT"
check_consistency

log=${MOUNT_LOGS[$MNT]}
kill -USR1 "$DAEMON_PID"
for ((i = 0; i < 100; i++)); do
  grep -q 'stats: create ' "$log" && break
  sleep 0.05
done
grep -q 'stats: [0-9]* requests in [0-9]* s; redis: [0-9]* round trips' "$log" || fail "no stats after SIGUSR1: $(tail -3 "$log")"
grep -Eq 'stats: lookup +[0-9]+ requests, mean +[0-9.]+ us' "$log" || fail "no lookup count in the stats"
touch "$MNT/after-stats" || fail "the mount stopped working after SIGUSR1"
unmount_fs
check_consistency --no-orphans
