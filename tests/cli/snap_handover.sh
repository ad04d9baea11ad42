#!/usr/bin/env bash
# Who gets a dump's snapshot, and who waits (redisfs-snap(1), the dump's
# step 3): a dump whose output stalls hands its snapshot over to another
# dump begun meanwhile, and both dumps are the filesystem as it was. On a
# server without room for the blocks the stalled dump has not read (and a
# quarter more, above the margin), it keeps its snapshot and records why:
# an fsck --repair begun meanwhile waits for the dump's end, then repairs,
# and the dump holds the damage of its instant; when the dump outlasts the
# wait (30 s), the fsck --repair and a delete fail, each in one line that
# says why (the dump's record, shown escaped: it may be anyone's), with
# nothing repaired or deleted; when room appears meanwhile, the dump hands
# its snapshot over then, and the fsck --repair repairs while the dump
# still runs. The dump says it kept its snapshot from a
# waiting tool (a warning), and an interrupted dump leaves nothing behind.
. "$(dirname "$0")/snap_lib.sh"

used_memory() { rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
# little_room: 4 MiB free, less than the 10 MiB a handover of 8 MiB of
# blocks needs
little_room() {
  rcli config set maxmemory 0 >/dev/null
  rcli config set maxmemory $(($(used_memory) + (4 << 20))) >/dev/null
}
# same_as PREFIX REF: the dump restored at PREFIX (as it is: it holds the
# damage) is the filesystem REF, a copy taken before
same_as() {
  snap -q diff --force "$2" "$1" >"$T/out" || fail "diff $2 $1"
  [[ ! -s $T/out ]] || fail "$1 differs from $2: $(head -3 "$T/out")"
}
# tree PREFIX: fs_digest without the snapshot's record (its deadline moves)
tree() { fs_digest "$1" | grep -v '^COW '; }
nothing_staged() {
  local left
  left=$(rcli --scan --pattern 'SRC*~*' | sort | head -3 || true)
  [[ -z $left ]] || fail "$1 left staged keys: $left"
  [[ $(rcli exists {SRC,SRC2}:{COW,FREEZE,RESERVED}) == 0 ]] || fail "$1 left a snapshot, freeze or reservation record"
}

make_fs SRC
add_blocks SRC 3 0 2048
rcli hset SRC:INODE:3 size $((2048 * 4096)) bytes $((2048 * 4096)) >/dev/null
rcli hset SRC:SB bytes $((2048 * 4096 + 13)) >/dev/null
rcli hset SRC:INODE:1 nlink 9 >/dev/null # damage fsck --repair repairs: the root's link count
snap -q copy SRC REF

note "a dump begun while another's output stalls: the stalled dump hands its snapshot over"
REDISFS_FAULT=dump-stream-stall snap -q dump SRC -o "$T/first.json" 2>"$T/first.err" &
first=$!
wait_snapshot SRC dump >/dev/null
snap -q dump SRC -o "$T/second.json" || fail "the dump begun while another stalled failed"
kill -0 "$first" 2>/dev/null || fail "the stalled dump ended before the second: it handed nothing over"
wait "$first" || fail "the dump that handed its snapshot over failed: $(cat "$T/first.err")"
! grep -q "could not be handed over" "$T/first.err" || fail "the dump says it kept its snapshot: $(cat "$T/first.err")"
for d in first second; do
  snap -q restore --damaged "$T/$d.json" --prefix "R-$d"
  same_as "R-$d" REF
  snap -q delete "R-$d"
done
nothing_staged "the two dumps"

note "an fsck --repair begun while a dump stalls, with no room for the blocks the dump has not read: it waits for the dump"
little_room
REDISFS_FAULT=dump-stream-stall snap -q dump SRC -o "$T/kept.json" 2>"$T/kept.err" &
dumper=$!
staging=$(wait_snapshot SRC dump) || fail "the dump: $(cat "$T/kept.err")"
(
  rc=0
  snap fsck --repair SRC >"$T/fsck.out" 2>"$T/fsck.err" || rc=$?
  echo "$rc" >"$T/fsck.rc"
) &
fscker=$!
sleep 3
[[ $(rcli hget SRC:COW staging) == "$staging" ]] || fail "the dump handed its snapshot over without room"
[[ $(rcli hget SRC:COW wanted) == 1 ]] || fail "the waiting fsck --repair did not ask for the snapshot"
[[ $(rcli hget SRC:COW kept) == "the server has no room for the "*" of blocks it has not read, and a quarter more, above the "* ]] ||
  fail "the snapshot's record does not say why the dump keeps it: $(rcli hget SRC:COW kept)"
kill -0 "$fscker" 2>/dev/null || fail "the fsck --repair did not wait for the dump: $(cat "$T/fsck.err")"
[[ $(rcli hget SRC:INODE:1 nlink) == 9 ]] || fail "repaired while the dump's snapshot was live"
wait "$dumper" || fail "the dump that kept its snapshot failed: $(cat "$T/kept.err")"
# Once its output flows, what it has not read shrinks, and a handover may
# fit before it ends (tried again at each look): then it says nothing of
# the tool that waited; else it says it kept its snapshot, and why.
if grep -q "another tool waited" "$T/kept.err"; then
  grep -qF "another tool waited for this dump's snapshot, which could not be handed over: the server has no room for " "$T/kept.err" ||
    fail "the dump does not say why it kept its snapshot: $(cat "$T/kept.err")"
  note "the dump kept its snapshot to its end"
else
  note "the dump handed its snapshot over as its reading ended"
fi
wait "$fscker"
[[ $(cat "$T/fsck.rc") == 0 ]] || fail "the fsck --repair after the dump: exit $(cat "$T/fsck.rc"): $(cat "$T/fsck.err")"
grep -q '^wrong link count: SRC:INODE:1: .*(repaired' "$T/fsck.out" || fail "the repair: $(cat "$T/fsck.out")"
rcli config set maxmemory 0 >/dev/null
snap -q restore --damaged "$T/kept.json" --prefix R-kept
[[ $(rcli hget R-kept:INODE:1 nlink) == 9 ]] || fail "the dump holds the repair, not its instant's link count"
same_as R-kept REF
snap -q delete R-kept
nothing_staged "the dump and the repair"

note "room appears while an fsck --repair waits for a hung dump: the dump hands its snapshot over then"
rcli hset SRC:INODE:1 nlink 9 >/dev/null
little_room
# (the binary itself, not the snap function's subshell: it gets the signal)
REDISFS_FAULT=dump-stream-hang "$REDISFS_SNAP_BIN" --redis "$URL" -q dump SRC -o "$T/late.json" 2>"$T/late.err" &
dumper=$!
wait_snapshot SRC dump >/dev/null
(
  rc=0
  snap fsck --repair SRC >"$T/fsck.out" 2>"$T/fsck.err" || rc=$?
  echo "$rc" >"$T/fsck.rc"
) &
fscker=$!
for ((i = 0; i < 200; i++)); do
  [[ -z $(rcli hget SRC:COW kept) ]] || break
  sleep 0.05
done
[[ $(rcli hget SRC:COW kept) == "the server has no room for the "* ]] ||
  fail "the dump did not record why it keeps its snapshot: $(rcli hget SRC:COW kept)"
[[ $(rcli hget SRC:INODE:1 nlink) == 9 ]] || fail "repaired while the dump's snapshot was live"
rcli config set maxmemory 0 >/dev/null
wait "$fscker"
[[ $(cat "$T/fsck.rc") == 0 ]] ||
  fail "the fsck --repair waiting for the hung dump: exit $(cat "$T/fsck.rc"): $(cat "$T/fsck.err")"
grep -q '^wrong link count: SRC:INODE:1: .*(repaired' "$T/fsck.out" || fail "the repair: $(cat "$T/fsck.out")"
kill -0 "$dumper" 2>/dev/null || fail "the hung dump ended: $(cat "$T/late.err")"
kill -TERM "$dumper"
rc=0
wait "$dumper" || rc=$?
((rc == 1)) || fail "the interrupted dump exited $rc: $(cat "$T/late.err")"
nothing_staged "the dump that handed its snapshot over late"

note "dumps that outlast the 30 s wait: an fsck --repair and a delete fail, nothing repaired or deleted"
rcli hset SRC:INODE:1 nlink 9 >/dev/null
snap -q copy SRC SRC2
before=$(tree SRC)
before2=$(tree SRC2)
little_room
dumpers=()
for p in SRC SRC2; do
  # (the binary itself, not the snap function's subshell: it gets the signal)
  REDISFS_FAULT=dump-stream-hang "$REDISFS_SNAP_BIN" --redis "$URL" -q dump "$p" -o "$T/hung-$p.json" 2>"$T/hung-$p.err" &
  dumpers+=($!)
  wait_snapshot "$p" dump >/dev/null
done
for what in fsck delete; do
  (
    rc=0
    if [[ $what == fsck ]]; then
      snap fsck --repair SRC >"$T/hung-$what.out" 2>"$T/hung-$what.err" || rc=$?
    else
      snap -q delete SRC2 >"$T/hung-$what.out" 2>"$T/hung-$what.err" || rc=$?
    fi
    echo "$rc" >"$T/hung-$what.rc"
  ) &
done
# The record may be anyone's: SRC2's reason, once the dump wrote it, is
# replaced with control bytes, which the delete's refusal shows escaped
# on its one line.
for ((i = 0; i < 250; i++)); do
  [[ -n $(rcli hget SRC2:COW kept) ]] && break
  sleep 0.02
done
[[ -n $(rcli hget SRC2:COW kept) ]] || fail "the hung dump of SRC2 did not record why it keeps its snapshot"
rcli hset SRC2:COW kept "$(printf 'the server has no room for the \033[2J\nforged')" >/dev/null
wait_for=" keeps its snapshot (%s:COW), as it could not hand it over: the server has no room for the "
for what in fsck delete; do
  [[ $what == fsck ]] && p=SRC || p=SRC2
  while [[ ! -e $T/hung-$what.rc ]]; do
    kill -0 "${dumpers[@]}" 2>/dev/null || fail "a hung dump ended before the $what gave up"
    sleep 0.5
  done
  [[ $(cat "$T/hung-$what.rc") == 1 ]] || fail "the $what exited $(cat "$T/hung-$what.rc"): $(cat "$T/hung-$what.err")"
  # (the fsck, not -q, said what it waited for a second in)
  waits="^redisfs-snap: waiting for another snapshot of '$p' to end \\($p:COW: a dump's or a diff's"
  [[ $(grep -Ec "$waits" "$T/hung-$what.err") == $([[ $what == fsck ]] && echo 1 || echo 0) ]] ||
    fail "the $what's note of its wait: $(cat "$T/hung-$what.err")"
  [[ $(grep -Evc "$waits" "$T/hung-$what.err") == 1 ]] || fail "the $what's refusal is not one line: $(cat "$T/hung-$what.err")"
  # shellcheck disable=SC2059  # (the format is ours)
  grep -qF "a dump of '$p'$(printf "$wait_for" "$p")" "$T/hung-$what.err" ||
    fail "the $what's refusal: $(cat "$T/hung-$what.err")"
  note "$what: $(cat "$T/hung-$what.err")"
done
grep -qF 'no room for the \x1b[2J\x0aforged; try again when' "$T/hung-delete.err" ||
  fail "the forged reason is not shown escaped: $(cat "$T/hung-delete.err")"
[[ $(tree SRC) == "$before" ]] || fail "the refused fsck --repair changed SRC"
[[ $(tree SRC2) == "$before2" ]] || fail "the refused delete changed SRC2"
kill -TERM "${dumpers[@]}"
for pid in "${dumpers[@]}"; do
  rc=0
  wait "$pid" || rc=$?
  ((rc == 1)) || fail "an interrupted dump exited $rc"
done
grep -q "interrupted" "$T/hung-SRC.err" || fail "the interrupted dump: $(cat "$T/hung-SRC.err")"
note "dump: $(cat "$T/hung-SRC.err")"
[[ ! -e $T/hung-SRC.json && ! -e $T/hung-SRC2.json ]] || fail "an interrupted dump wrote its file"
rcli config set maxmemory 0 >/dev/null
nothing_staged "the interrupted dumps"
snap -q fsck --repair SRC >/dev/null || fail "the repair once the dump was gone"
[[ $(rcli hget SRC:INODE:1 nlink) == 3 ]] || fail "the repair once the dump was gone left the link count"
snap -q delete SRC2 || fail "the delete once the dump was gone"
note "ok"
