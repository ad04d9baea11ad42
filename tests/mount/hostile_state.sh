#!/usr/bin/env bash
# hostile_state: a mounted filesystem damaged on the server, step by step,
# by someone else (hostile_state.py: keys deleted or of the wrong type,
# fields missing or malformed, entries naming garbage, loops, a hostile COW),
# with every kind of call made through the mount after each step. The
# daemon must stay up, keep serving what is not damaged (a new directory
# and file work after every seed), and exit 0 at unmount; fsck must report
# the damage as problems (exit 0 or 1, no crash), and a filesystem fsck
# --repair went over must mount and take a new file. Run it under ASan
# (build-asan) too: the generator is the same.
. "$(dirname "$0")/lib.sh"
need_binary REDISFS_SNAP_BIN

for seed in 1 2 3 4 5 6; do
  PREFIX=H$seed$RANDOM
  note "seed $seed"
  mount_fs -o attr_timeout=0,entry_timeout=0
  pid=$DAEMON_PID
  timeout 300 python3 "$HERE/hostile_state.py" "$seed" "$MNT" "$SOCK" "$PREFIX" 8 >"$T/gen.$seed" 2>&1 ||
    fail "seed $seed: the generator failed ($?): $(tail -5 "$T/gen.$seed")"
  sed 's/^/-- /' "$T/gen.$seed"
  kill -0 "$pid" 2>/dev/null || fail "seed $seed: the daemon died: $(tail -5 "${MOUNT_LOGS[$MNT]}")"
  mkdir "$MNT/fresh" || fail "seed $seed: a new directory fails on the damaged filesystem"
  echo sound >"$MNT/fresh/file" || fail "seed $seed: a new file fails on the damaged filesystem"
  [[ $(cat "$MNT/fresh/file") == sound ]] || fail "seed $seed: a new file does not read back"
  unmount_fs
  [[ $LAST_DAEMON_RC == 0 ]] || fail "seed $seed: the daemon exited $LAST_DAEMON_RC: $(tail -5 "${MOUNT_LOGS[$MNT]}")"
  if grep -E 'AddressSanitizer|runtime error|LeakSanitizer' "${MOUNT_LOGS[$MNT]}"; then
    fail "seed $seed: a sanitizer report"
  fi

  rc=0
  "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" fsck "$PREFIX" >"$T/fsck.$seed" 2>&1 || rc=$?
  ((rc <= 1)) || fail "seed $seed: fsck exited $rc: $(tail -3 "$T/fsck.$seed")"
  ! grep -E 'AddressSanitizer|runtime error|WRONGTYPE' "$T/fsck.$seed" ||
    fail "seed $seed: fsck crashed or passed on a server error"
  rc=0
  "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" fsck "$PREFIX" --repair >"$T/repair.$seed" 2>&1 || rc=$?
  ((rc <= 1)) || fail "seed $seed: fsck --repair exited $rc: $(tail -3 "$T/repair.$seed")"
  ! grep -E 'AddressSanitizer|runtime error|WRONGTYPE' "$T/repair.$seed" ||
    fail "seed $seed: fsck --repair crashed or passed on a server error"
  mount_fs
  mkdir "$MNT/after-repair" && echo sound >"$MNT/after-repair/file" ||
    fail "seed $seed: the repaired filesystem does not take a new file"
  [[ $(cat "$MNT/after-repair/file") == sound ]] || fail "seed $seed: a new file after the repair does not read back"
  unmount_fs
  [[ $LAST_DAEMON_RC == 0 ]] || fail "seed $seed: the daemon on the repaired filesystem exited $LAST_DAEMON_RC"
done
