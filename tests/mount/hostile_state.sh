#!/usr/bin/env bash
# hostile_state: a mounted filesystem damaged on the server, step by step,
# by someone else (hostile_state.py: keys deleted or of the wrong type,
# fields missing or malformed, entries naming garbage, loops, a hostile COW),
# with every kind of call made through the mount after each step. The
# daemon must stay up, keep serving what is not damaged (a new directory
# and file work after every seed), and exit 0 at unmount; fsck must report
# the damage as problems (exit 0 or 1, no crash), and a dump of it (made
# under the mount) warn that restore refuses it exactly when verify of
# the file says so; a
# check after fsck --repair must find just what the repair left
# unrepaired, the repair must change or remove no block but where its line
# says it deleted data there, and the filesystem must mount and take a new
# file; a repair made under the mount (--force) must crash neither. The
# same seeds run
# on a -o writeback mount too: its long caches, the creates it answers
# itself (store_gather.cpp, defer_create) and its claim (WRITEBACK), which
# its unmount must release whatever else is damaged. Run it under ASan
# (build-asan) too: the generator is the same. HOSTILE_STATE_SEEDS (default
# "1 2 3 4 5 6 104 398"; 104 and 398 made a parent of -1 and an nlink no
# repair converged on)
# chooses the seeds, for a longer campaign by hand.
. "$(dirname "$0")/lib.sh"
need_binary REDISFS_SNAP_BIN

# Every block key of the filesystem and a digest of what it holds, sorted.
block_digests() {
  local key
  rcli --scan --pattern "$PREFIX:BLK:*" | sort | while read -r key; do
    echo "$key $(rcli --no-raw dump "$key" | sha1sum | cut -c1-16)"
  done
}

# blocks_as_said REPAIR_OUTPUT [live]: since block_digests wrote
# $T/blocks.before, a block changed or went only where a line of the repair
# says it deleted bytes of that very key, and no block was made. With
# "live" (a mount is up) a block whose inode did not exist then
# ($T/inodes.before) may go: the mount is finishing the purge of a file
# it freed (a FORGET the kernel sends when it likes, after syncfs too).
blocks_as_said() {
  local key made ino
  block_digests >"$T/blocks.after"
  while read -r key _; do
    ino=${key#"$PREFIX:BLK:"}
    ino=${ino%%:*}
    if [[ ${2:-} == live ]] && ! grep -qx "$PREFIX:INODE:$ino" "$T/inodes.before" &&
      ! grep -q "^$key " "$T/blocks.after"; then
      continue
    fi
    grep -F -- "$key: " "$1" | grep -q '(repaired: deleted ' ||
      fail "seed $seed ($mode): the repair changed block $key without saying it deleted data: $(cat "$1")"
  done < <(comm -23 "$T/blocks.before" "$T/blocks.after")
  made=$(comm -13 <(cut -d' ' -f1 "$T/blocks.before") <(cut -d' ' -f1 "$T/blocks.after"))
  [[ -z $made ]] || fail "seed $seed ($mode): the repair made blocks: $made"
}

# dump_as_verified: a dump of the damaged filesystem is whole (exit 0) or
# refused with redisfs-snap's lines (exit 1), and when whole, its warning
# that restore refuses it is given exactly when verify of the file refuses
# it (the dump's check is verify's, fed from the stream: DumpCheck).
dump_as_verified() {
  local rc=0 vrc=0 warned=0
  "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" -q dump "$PREFIX" -o "$T/dump.json" 2>"$T/dumped.$seed" || rc=$?
  ((rc <= 1)) || fail "seed $seed ($mode): dump exited $rc: $(tail -3 "$T/dumped.$seed")"
  ! grep -v '^redisfs-snap: ' "$T/dumped.$seed" || fail "seed $seed ($mode): dump said more than its lines"
  if ((rc != 0)); then
    note "dump refused: $(head -c 300 "$T/dumped.$seed")"
    return 0
  fi
  "$REDISFS_SNAP_BIN" verify "$T/dump.json" >"$T/verified.$seed" 2>&1 || vrc=$?
  ((vrc <= 1)) || fail "seed $seed ($mode): verify of the dump exited $vrc: $(tail -3 "$T/verified.$seed")"
  if grep -q 'the filesystem in the dump is not checked' "$T/dumped.$seed"; then
    fail "seed $seed ($mode): dump did not check: $(cat "$T/dumped.$seed")"
  fi
  if grep -q -e 'the filesystem in the dump is damaged (restore refuses it)' -e 'restore refuses this dump' \
    "$T/dumped.$seed"; then
    warned=1
  fi
  ((warned == vrc)) ||
    fail "seed $seed ($mode): dump warned $warned, verify exited $vrc: $(cat "$T/dumped.$seed" "$T/verified.$seed")"
  note "dump: $( ((warned == 1)) && echo "warned, as verify refuses it" || echo "sound, as verify says")"
  rm -f "$T/dump.json"
}

runs=()
for mode in default writeback; do
  for seed in ${HOSTILE_STATE_SEEDS:-1 2 3 4 5 6 104 398}; do
    runs+=("$seed $mode")
  done
done
for run in "${runs[@]}"; do
  read -r seed mode <<<"$run"
  PREFIX=H$seed$RANDOM
  note "seed $seed, $mode mount"
  if [[ $mode == writeback ]]; then
    mount_fs -o writeback
  else
    mount_fs -o attr_timeout=0,entry_timeout=0
  fi
  pid=$DAEMON_PID
  timeout 300 python3 "$HERE/hostile_state.py" "$seed" "$MNT" "$SOCK" "$PREFIX" 8 >"$T/gen.$seed" 2>&1 ||
    fail "seed $seed ($mode): the generator failed ($?): $(tail -5 "$T/gen.$seed")"
  sed 's/^/-- /' "$T/gen.$seed"
  kill -0 "$pid" 2>/dev/null || fail "seed $seed ($mode): the daemon died: $(tail -5 "${MOUNT_LOGS[$MNT]}")"
  mkdir "$MNT/fresh" || fail "seed $seed ($mode): a new directory fails on the damaged filesystem"
  echo sound >"$MNT/fresh/file" || fail "seed $seed ($mode): a new file fails on the damaged filesystem"
  [[ $(cat "$MNT/fresh/file") == sound ]] || fail "seed $seed ($mode): a new file does not read back"
  dump_as_verified  # (of the damage as the generator left it, mounted)
  # A repair under the live mount (--force: checked twice, each field
  # changed only if it holds what the check read): no crash of either.
  # With nothing of the mount's in flight the blocks change by the repair
  # alone: so on a default mount (every write is on the server when it
  # returns) once syncfs succeeds, never on a writeback mount (data the
  # kernel handed over, or a flush the damage refused, lands later, as
  # under ASan once the live repair removed a hostile COW record).
  synced=0
  if [[ $mode == default ]] && sync -f "$MNT/fresh/file" 2>/dev/null; then
    synced=1
    block_digests >"$T/blocks.before"
    rcli --scan --pattern "$PREFIX:INODE:*" >"$T/inodes.before"
  fi
  rc=0
  "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" fsck "$PREFIX" --repair --force >"$T/live.$seed" 2>&1 || rc=$?
  ((rc <= 1)) || fail "seed $seed ($mode): fsck --repair --force under the mount exited $rc: $(tail -3 "$T/live.$seed")"
  ! grep -E 'AddressSanitizer|runtime error|WRONGTYPE' "$T/live.$seed" ||
    fail "seed $seed ($mode): fsck --repair --force crashed or passed on a server error"
  ((synced == 0)) || blocks_as_said "$T/live.$seed" live
  kill -0 "$pid" 2>/dev/null || fail "seed $seed ($mode): the daemon died under the repair: $(tail -5 "${MOUNT_LOGS[$MNT]}")"
  note "repair under the mount: $(grep -c 'not repaired: one of two' "$T/live.$seed" || true) seen once; $(tail -1 "$T/live.$seed")"
  ls -R "$MNT" >/dev/null 2>&1 || true
  unmount_fs
  [[ $LAST_DAEMON_RC == 0 ]] || fail "seed $seed ($mode): the daemon exited $LAST_DAEMON_RC: $(tail -5 "${MOUNT_LOGS[$MNT]}")"
  if grep -E 'AddressSanitizer|runtime error|LeakSanitizer' "${MOUNT_LOGS[$MNT]}"; then
    fail "seed $seed ($mode): a sanitizer report"
  fi
  sanitizer_check "seed $seed ($mode)" "$T/live.$seed" "${MOUNT_LOGS[$MNT]}"

  rc=0
  "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" fsck "$PREFIX" >"$T/fsck.$seed" 2>&1 || rc=$?
  ((rc <= 1)) || fail "seed $seed ($mode): fsck exited $rc: $(tail -3 "$T/fsck.$seed")"
  ! grep -E 'AddressSanitizer|runtime error|WRONGTYPE' "$T/fsck.$seed" ||
    fail "seed $seed ($mode): fsck crashed or passed on a server error"
  block_digests >"$T/blocks.before"
  rc=0
  "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" fsck "$PREFIX" --repair >"$T/repair.$seed" 2>&1 || rc=$?
  ((rc <= 1)) || fail "seed $seed ($mode): fsck --repair exited $rc: $(tail -3 "$T/repair.$seed")"
  ! grep -E 'AddressSanitizer|runtime error|WRONGTYPE' "$T/repair.$seed" ||
    fail "seed $seed ($mode): fsck --repair crashed or passed on a server error"
  blocks_as_said "$T/repair.$seed"
  # The repair converges: a check after it finds just what it left.
  rc=0
  "$REDISFS_SNAP_BIN" --redis "unix://$SOCK" fsck "$PREFIX" >"$T/again.$seed" 2>&1 || rc=$?
  left=$({ grep -v -e '^fsck ' -e '^redisfs-snap: ' -e ' (repaired)$' -e ' (repaired: .*)$' "$T/repair.$seed" || :; } | sort)
  again=$({ grep -v -e '^fsck ' -e '^redisfs-snap: ' "$T/again.$seed" || :; } | sort)
  [[ $left == "$again" ]] ||
    fail "seed $seed ($mode): a check after the repair finds another set: $(diff <(echo "$left") <(echo "$again") || true)"
  mount_fs
  mkdir "$MNT/after-repair" && echo sound >"$MNT/after-repair/file" ||
    fail "seed $seed ($mode): the repaired filesystem does not take a new file"
  [[ $(cat "$MNT/after-repair/file") == sound ]] || fail "seed $seed ($mode): a new file after the repair does not read back"
  unmount_fs
  [[ $LAST_DAEMON_RC == 0 ]] || fail "seed $seed ($mode): the daemon on the repaired filesystem exited $LAST_DAEMON_RC"
done
