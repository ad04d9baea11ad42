#!/usr/bin/env bash
# A tool that waits for another tool holding the filesystem says so: a
# copy begun while another snapshot of its source is being taken waits for
# as long as that one lives, and a delete (which freezes) waits for it up
# to 30 s; a copy begun under a freeze waits for it. Once such a wait has
# lasted a second, redisfs-snap says on stderr what it waits for (which
# key, which copy, how far along), and that it ended; -q says nothing,
# and neither is a warning. A snapshot record someone else wrote is shown
# escaped, on one line. (The mounts' side, changes waiting out a
# freeze: tests/mount/frozen_writer.sh.)
. "$(dirname "$0")/snap_lib.sh"

make_fs BIG
# 3000 more blocks: a copy slowed by REDISFS_FAULT=copy-staging-slow takes
# seconds.
add_blocks BIG 3 3 3000
rcli hset BIG:INODE:3 size $((3003 * 4096)) bytes $((8192 + 3000 * 4096)) >/dev/null
rcli hset BIG:SB bytes $((13 + 8192 + 3000 * 4096)) >/dev/null
big=$(fs_digest BIG)

WAITS="^redisfs-snap: waiting for another snapshot of 'BIG' to end \(BIG:COW: a copy to 'SLOW[0-9]*'(, [0-9]+% done)?\)$"
ENDED="^redisfs-snap: another snapshot of 'BIG' ended; waited [0-9.]+ s$"

# slow_copy DST: a slowed copy of BIG in the background (its pid in
# slow_pid), once its snapshot is the live one.
slow_copy() {
  REDISFS_FAULT=copy-staging-slow "$REDISFS_SNAP_BIN" --redis "$URL" -q copy BIG "$1" 2>"$T/slow.err" &
  slow_pid=$!
  wait_snapshot BIG copy >/dev/null
}
# said_once RE: $T/err has one line matching RE.
said_once() {
  [[ $(grep -Ec "$1" "$T/err") == 1 ]] || fail "stderr has not one line /$1/: $(cat "$T/err")"
}

note "a copy begun while another copy runs says what it waits for, and when it ends"
slow_copy SLOW1
start=$(date +%s%N)
snap copy BIG WAITED 2>"$T/err" >/dev/null || fail "the copy that waited: $(cat "$T/err")"
waited=$((($(date +%s%N) - start) / 1000000))
wait "$slow_pid" || fail "the slowed copy: $(cat "$T/slow.err")"
((waited > 1000)) || fail "the slowed copy took only $waited ms: nothing to say"
said_once "$WAITS"
said_once "$ENDED"
! grep -q warning "$T/err" || fail "waiting for another tool is no fault: $(cat "$T/err")"
for p in SLOW1 WAITED; do
  [[ $(fs_digest "$p") == "$big" ]] || fail "$p is not BIG"
done

note "-q: the same wait says nothing"
slow_copy SLOW2
snap -q copy BIG QUIET 2>"$T/err" || fail "the quiet copy: $(cat "$T/err")"
wait "$slow_pid" || fail "the slowed copy: $(cat "$T/slow.err")"
[[ ! -s $T/err ]] || fail "-q printed: $(cat "$T/err")"

note "a delete waits for a copy of what it deletes, and says so"
snap -q copy BIG DOOMED
REDISFS_FAULT=copy-staging-slow "$REDISFS_SNAP_BIN" --redis "$URL" -q copy DOOMED SLOW3 2>"$T/slow.err" &
slow_pid=$!
wait_snapshot DOOMED copy >/dev/null
snap delete DOOMED 2>"$T/err" >/dev/null || fail "the delete that waited: $(cat "$T/err")"
wait "$slow_pid" || fail "the slowed copy of DOOMED: $(cat "$T/slow.err")"
said_once "${WAITS//BIG/DOOMED}"
said_once "${ENDED//BIG/DOOMED}"
[[ $(fs_digest SLOW3) == "$big" ]] || fail "the copy of what was deleted after it is not BIG"
[[ $(key_count DOOMED) == 0 ]] || fail "the delete left $(key_count DOOMED) keys"

note "a copy begun under a freeze says what it waits for, and when it ends"
rcli set BIG:FREEZE held-by-the-test PX 2500 >/dev/null
snap copy BIG THAWED 2>"$T/err" >/dev/null || fail "the copy under a freeze: $(cat "$T/err")"
said_once "^redisfs-snap: waiting for the freeze of 'BIG' to end \(BIG:FREEZE: a delete, an install, a repair or a copy across Cluster slots\)$"
said_once "^redisfs-snap: the freeze of 'BIG' ended; waited [0-9.]+ s$"
[[ $(fs_digest THAWED) == "$big" ]] || fail "THAWED is not BIG"
note "a snapshot record written by someone else: its words shown escaped, on one line"
# (a live deadline 3 s ahead, never refreshed: it lapses, and the copy goes on)
now_ms=$(rcli time | head -1)000
rcli hset BIG:COW staging "BIG~copy~0123456789abcdef" token forged deadline $((now_ms + 3000)) \
  dst "$(printf 'evil\033[2J\nname')" "done" 9223372036854775807 total 9223372036854775807 >/dev/null
snap copy BIG FORGED 2>"$T/err" >/dev/null || fail "the copy behind a forged record: $(cat "$T/err")"
said_once "^redisfs-snap: waiting for another snapshot of 'BIG' to end \(BIG:COW: a copy to 'evil\\\\x1b\[2J\\\\x0aname', 100% done\)$"
said_once "$ENDED"
[[ $(grep -Evc '^(redisfs-snap: |copied BIG -> FORGED )' "$T/err") == 0 ]] ||
  fail "the forged record's words broke a line: $(cat -v "$T/err")"
[[ $(fs_digest FORGED) == "$big" ]] || fail "FORGED is not BIG"
note "ok"
