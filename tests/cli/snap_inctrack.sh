#!/usr/bin/env bash
# Per-block change tracking on real mounts (keys.hpp CHANGED; redisfs(1)
# PREFIX:CHANGED): each snapshot of a mounted filesystem takes its record of
# the blocks written or cut since the snapshot before, and `dump --since`
# compares only those. Every incremental dump (one link, two links, after a
# rollback, with a missing, overflowed, hostile or "written" record) is byte
# for byte the one the full comparison writes (REDISFS_FAULT=inc-compare-all);
# fsck reports a malformed record (not as an unknown key) and --repair
# deletes it; delete leaves none behind; a dump carries none.
. "$(dirname "$0")/../mount/lib.sh"

need_snap -q
need_tools jq
bitops() { command_calls bitop; }

# both_ways SNAP BASE: the tracked and the full comparison give the same
# file; sets TRACKED and ALL to the blocks each compared on the server.
both_ways() {
  local b0 b1 b2
  b0=$(bitops)
  snap dump "$1" --since "$2" -o "$T/tracked.json"
  b1=$(bitops)
  REDISFS_FAULT=inc-compare-all snap dump "$1" --since "$2" -o "$T/all.json"
  b2=$(bitops)
  cmp -s "$T/tracked.json" "$T/all.json" || fail "dump $1 --since $2: the tracked comparison wrote another document"
  TRACKED=$((b1 - b0))
  ALL=$((b2 - b1))
}
tracked_less() {
  both_ways "$1" "$2"
  ((ALL > 0 && TRACKED < ALL)) || fail "dump $1 --since $2 compared $TRACKED blocks tracked, $ALL in full"
}
tracked_none() {
  both_ways "$1" "$2"
  ((TRACKED == ALL)) || fail "dump $1 --since $2 should have compared every block ($TRACKED of $ALL)"
}

mount_fs
B=65536
note "populate, then MON (no record yet: nothing was tracked before it)"
mkdir -p "$MNT/d"
head -c $((24 * B)) /dev/urandom >"$MNT/d/big"
head -c $((6 * B + 7)) /dev/urandom >"$MNT/d/cut"
head -c $((2 * B)) /dev/urandom >"$MNT/d/gone"
echo small >"$MNT/d/small"
snap copy "$PREFIX" MON
[[ $(rcli type MON:CHANGED) == none ]] || fail "MON has a record, but nothing was tracked before it"
MON_ID=$(rcli hget MON:SB snapshot_id)
[[ $(rcli smembers "$PREFIX:CHANGED") == "since:$MON_ID" ]] || fail "the live record after MON: $(rcli smembers "$PREFIX:CHANGED")"

note "round 1: overwrite, truncate (cut and dropped blocks), extend, a hole filled, rename, unlink, new file"
printf 'X' | dd of="$MNT/d/big" bs=1 seek=$((5 * B + 3)) conv=notrunc status=none
truncate -s $((2 * B + 100)) "$MNT/d/cut"
truncate -s $((40 * B)) "$MNT/d/big"
printf 'hole' | dd of="$MNT/d/big" bs=1 seek=$((33 * B)) conv=notrunc status=none
mv "$MNT/d/small" "$MNT/d/renamed"
rm "$MNT/d/gone"
head -c $((3 * B)) /dev/urandom >"$MNT/d/new"
snap copy "$PREFIX" TUE
TUE_ID=$(rcli hget TUE:SB snapshot_id)
BIG=$(stat -c %i "$MNT/d/big")
CUT=$(stat -c %i "$MNT/d/cut")
members=$(rcli smembers TUE:CHANGED)
for m in "since:$MON_ID" "$BIG:5" "$BIG:33" "$CUT:2"; do
  grep -qx "$m" <<<"$members" || fail "TUE's record lacks $m: $members"
done
! grep -qx "$CUT:3" <<<"$members" || fail "a dropped block is recorded"

note "round 2: more writes, then WED"
printf 'Y' | dd of="$MNT/d/big" bs=1 seek=$((9 * B)) conv=notrunc status=none
echo appended >>"$MNT/d/new"
snap copy "$PREFIX" WED
unmount_fs

note "incrementals: one link, two links, the later link"
tracked_less TUE MON
tracked_less WED MON
tracked_less WED TUE
snap dump WED -o "$T/full.json"
! jq -e '.records[] | select(.key == "CHANGED")' "$T/full.json" >/dev/null || fail "a dump carries CHANGED"

note "fallbacks: a record missing, overflowed, hostile, a writable mount of the base"
rcli rename TUE:CHANGED SAVED >/dev/null
tracked_none WED MON
rcli set TUE:CHANGED overflow >/dev/null
tracked_none WED MON
rcli del TUE:CHANGED >/dev/null
rcli hset TUE:CHANGED since "$MON_ID" >/dev/null
tracked_none WED MON
rcli del TUE:CHANGED >/dev/null
rcli rename SAVED TUE:CHANGED >/dev/null
rcli sadd WED:CHANGED "not a block" "99999:1" >/dev/null
tracked_less WED TUE

note "fsck: a malformed record is reported, --repair deletes it, and only then"
out=$(snap fsck WED 2>&1) && fail "fsck of WED with a malformed record found nothing"
grep -q "bad change record" <<<"$out" || fail "fsck does not report the malformed record: $out"
! grep -q "unknown key" <<<"$out" || fail "CHANGED reported as an unknown key: $out"
snap fsck WED --repair >/dev/null 2>&1 || true
[[ $(rcli exists WED:CHANGED) == 0 ]] || fail "fsck --repair left the malformed record"
snap fsck WED || fail "WED is not clean once its record is gone"
snap fsck TUE || fail "TUE's sound record is reported"
tracked_none WED TUE

note "a snapshot mounted writable is no longer its instant: its record says so"
mkdir -p "$T/w"
PREFIX=TUE mount_at "$T/w" --writable-snapshot
printf 'Z' | dd of="$T/w/d/big" bs=1 seek=$((12 * B)) conv=notrunc status=none
unmount_fs "$T/w"
[[ $(rcli get TUE:CHANGED) == written ]] || fail "TUE's record after a writable mount: $(rcli type TUE:CHANGED)"
snap fsck TUE || fail "a written record is reported"
snap copy "$PREFIX" THU
tracked_none THU TUE

note "rollback, then snapshots, then incrementals"
snap rollback "$PREFIX" MON --discard
mount_fs
printf 'after' | dd of="$MNT/d/big" bs=1 seek=$((2 * B)) conv=notrunc status=none
head -c $((2 * B)) /dev/urandom >"$MNT/d/after-rollback"
snap copy "$PREFIX" FRI
printf 'later' | dd of="$MNT/d/big" bs=1 seek=$((15 * B)) conv=notrunc status=none
truncate -s $((B + 1)) "$MNT/d/cut"
snap copy "$PREFIX" SAT
unmount_fs
tracked_none FRI MON  # the rollback left no record: FRI has none
tracked_less SAT FRI
tracked_none SAT MON

note "delete leaves no record behind"
snap delete SAT
[[ $(rcli exists SAT:CHANGED) == 0 ]] || fail "delete left SAT:CHANGED"
