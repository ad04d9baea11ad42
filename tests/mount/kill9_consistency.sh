#!/usr/bin/env bash
# kill9_consistency: SIGKILL the daemon in the middle of a write loop that
# fsyncs every chunk. After a lazy unmount and a new mount the filesystem
# is consistent and every byte that fsync confirmed is there. A second
# round kills it during namespace churn.
. "$(dirname "$0")/lib.sh"

mount_fs
mkdir "$MNT/w"
python3 "$HERE/fsync_writer.py" write "$MNT/w" "$T/journal" --files 4 >"$T/writer.out" 2>&1 &
writer=$!
for ((i = 0; i < 600; i++)); do
  [[ -f $T/journal && $(wc -l <"$T/journal") -ge 40 ]] && break
  kill -0 "$writer" 2>/dev/null || break
  sleep 0.05
done
[[ $(wc -l <"$T/journal") -ge 40 ]] || fail "the writer did not get going: $(cat "$T/writer.out")"
kill_daemon
rc=0
wait "$writer" || rc=$?
cat "$T/writer.out"
((rc == 0)) || fail "fsync_writer exited with $rc"

mount_fs
check_consistency
python3 "$HERE/fsync_writer.py" verify "$MNT/w" "$T/journal"

# the same during namespace churn
mkdir "$MNT/shared"
python3 "$HERE/churn.py" "$MNT" --own own --seed 5 --ops 100000 >"$T/churn.out" 2>&1 &
churner=$!
for ((i = 0; i < 100; i++)); do
  [[ $(ls "$MNT/shared" 2>/dev/null | wc -l) -ge 5 ]] && break
  sleep 0.05
done
kill_daemon
wait "$churner" || true
mount_fs
check_consistency
python3 "$HERE/fsync_writer.py" verify "$MNT/w" "$T/journal"
unmount_fs
# an unlink just before the kill may have left an orphan under the dead
# session; once its key expires, a mount frees it
expire_sessions
mount_fs
unmount_fs
check_consistency --no-orphans
