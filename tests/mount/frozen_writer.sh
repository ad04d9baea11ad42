#!/usr/bin/env bash
# frozen_writer: while <prefix>:FREEZE is held (a delete, an install, a
# copy across Cluster slots), a change waits and retries, reads go on, and
# a change still frozen out after the limit fails with EBUSY (README: "give
# up with EBUSY after 120 s"; REDISFS_FAULT=short-freeze-wait makes it 2 s
# here), logged with what froze it; a change that waits past a second says
# so in the log, and once the freeze lapses, changes go on, the log says
# the freeze is over, and nothing was half made.
. "$(dirname "$0")/lib.sh"

REDISFS_FAULT=short-freeze-wait mount_fs
mkdir "$MNT/dir"
printf 'before the freeze\n' >"$MNT/dir/kept"

# A freeze that its holder keeps refreshing (a lapsed one is ignored),
# until $T/thaw exists.
freeze() {
  rm -f "$T/thaw"
  (
    while [[ ! -e $T/thaw ]]; do
      rcli set "$PREFIX:FREEZE" frozen-by-the-test PX 5000 >/dev/null || exit 0
      sleep 0.1  # (a thaw comes within 0.1 s: part 3's changes give up after 2 s)
    done
    rcli del "$PREFIX:FREEZE" >/dev/null
  ) &
  HOLDER=$!  # (killed by the cleanup if this case dies first)
  while [[ $(rcli exists "$PREFIX:FREEZE") != 1 ]]; do sleep 0.05; done
}
thaw() {
  touch "$T/thaw"
  wait "$HOLDER"
  HOLDER=
}
LOG=${MOUNT_LOGS[$MNT]}
WAIT_NOTE="warning: changes wait for the end of the filesystem's freeze (a delete, an install or a snapshot), each up to 2 s"
OVER_NOTE="the filesystem's freeze is over, [0-9.]+ s after the first change that waited for it"

freeze

note "a change waits under the freeze, then fails with EBUSY; reads go on"
start=$(date +%s%N)
expect_fail "Device or resource busy" sh -c "printf new >'$MNT/dir/new'"
waited=$((($(date +%s%N) - start) / 1000000))
((waited >= 2000)) || fail "the change gave up after $waited ms, before the limit"
expect_fail "Device or resource busy" mkdir "$MNT/dir/sub"
expect_fail "Device or resource busy" mv "$MNT/dir/kept" "$MNT/dir/moved"
[[ $(cat "$MNT/dir/kept") == 'before the freeze' ]] || fail "a read under the freeze"
ls "$MNT/dir" >/dev/null || fail "a listing under the freeze"
grep -q "frozen (a delete, an install or a snapshot) for over 2 s" "$LOG" ||
  fail "the daemon's log does not say why: $(tail -5 "$LOG")"
# Each change waited alone, past a second, and gave up: each said so once
# when it began to wait (one said by another is not said again).
[[ $(grep -c "$WAIT_NOTE" "$LOG") == 3 ]] || fail "the waits' notes: $(grep -i freeze "$LOG")"
! grep -Eq "$OVER_NOTE" "$LOG" || fail "a freeze said over while it lasted: $(grep -i freeze "$LOG")"

note "after the freeze: changes go on, nothing half made"
thaw
printf new >"$MNT/dir/new"
mkdir "$MNT/dir/sub"
mv "$MNT/dir/kept" "$MNT/dir/moved"
[[ $(ls "$MNT/dir" | tr '\n' ' ') == 'moved new sub ' ]] || fail "after the freeze: $(ls "$MNT/dir")"
[[ $(grep -c "$WAIT_NOTE" "$LOG") == 3 ]] || fail "a change not frozen out said it waits: $(grep -i freeze "$LOG")"

note "changes that outlast a second of freeze say so once, and once that it is over"
freeze
printf 'waited\n' >"$MNT/dir/late" &
first=$!
mkdir "$MNT/dir/late-dir" &
second=$!
# (thawed once the daemon said the wait, not after a fixed sleep: a busy
# machine may start the two late; 20 s at most, then the count below fails)
for ((i = 0; i < 200; i++)); do
  [[ $(grep -c "$WAIT_NOTE" "$LOG") == 4 ]] && break
  sleep 0.1
done
sleep 0.2  # (the second change waits on too)
thaw
wait "$first" || fail "a write that waited out a freeze failed"
wait "$second" || fail "a mkdir that waited out a freeze failed"
[[ $(cat "$MNT/dir/late") == waited && -d $MNT/dir/late-dir ]] || fail "what waited out the freeze: $(ls "$MNT/dir")"
[[ $(grep -c "$WAIT_NOTE" "$LOG") == 4 ]] || fail "two changes waiting together: $(grep -i freeze "$LOG")"
[[ $(grep -Ec "$OVER_NOTE" "$LOG") == 1 ]] || fail "the freeze's end: $(grep -i freeze "$LOG")"
unmount_fs
check_consistency
note "ok"
