#!/usr/bin/env bash
# frozen_writer: while <prefix>:FREEZE is held (a delete, an install, a
# copy across Cluster slots), a change waits and retries, reads go on, and
# a change still frozen out after the limit fails with EBUSY (README: "give
# up with EBUSY after 120 s"; REDISFS_FAULT=short-freeze-wait makes it 2 s
# here), logged with what froze it; once the freeze lapses, changes go on
# and nothing was half made.
. "$(dirname "$0")/lib.sh"

REDISFS_FAULT=short-freeze-wait mount_fs
mkdir "$MNT/dir"
printf 'before the freeze\n' >"$MNT/dir/kept"

# A freeze that its holder keeps refreshing (a lapsed one is ignored).
(
  while [[ ! -e $T/thaw ]]; do
    rcli set "$PREFIX:FREEZE" frozen-by-the-test PX 5000 >/dev/null || exit 0
    sleep 0.5
  done
  rcli del "$PREFIX:FREEZE" >/dev/null
) &
HOLDER=$!  # (killed by the cleanup if this case dies first)
while [[ $(rcli exists "$PREFIX:FREEZE") != 1 ]]; do sleep 0.05; done

note "a change waits under the freeze, then fails with EBUSY; reads go on"
start=$(date +%s%N)
expect_fail "Device or resource busy" sh -c "printf new >'$MNT/dir/new'"
waited=$((($(date +%s%N) - start) / 1000000))
((waited >= 2000)) || fail "the change gave up after $waited ms, before the limit"
expect_fail "Device or resource busy" mkdir "$MNT/dir/sub"
expect_fail "Device or resource busy" mv "$MNT/dir/kept" "$MNT/dir/moved"
[[ $(cat "$MNT/dir/kept") == 'before the freeze' ]] || fail "a read under the freeze"
ls "$MNT/dir" >/dev/null || fail "a listing under the freeze"
grep -q "frozen (a snapshot, a delete, an install) for over 2 s" "${MOUNT_LOGS[$MNT]}" ||
  fail "the daemon's log does not say why: $(tail -5 "${MOUNT_LOGS[$MNT]}")"

note "after the freeze: changes go on, nothing half made"
touch "$T/thaw"
wait "$HOLDER"
HOLDER=
printf new >"$MNT/dir/new"
mkdir "$MNT/dir/sub"
mv "$MNT/dir/kept" "$MNT/dir/moved"
[[ $(ls "$MNT/dir" | tr '\n' ' ') == 'moved new sub ' ]] || fail "after the freeze: $(ls "$MNT/dir")"
unmount_fs
check_consistency
note "ok"
