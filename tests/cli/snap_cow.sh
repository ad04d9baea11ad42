#!/usr/bin/env bash
# Snapshots are copy-on-write: writers go on while copy or dump runs, and
# the copy or the dump is still one instant. A writer appends sequence
# numbers round-robin to 8 files (one write(2) each, O_APPEND) through a
# real mount during copies and dumps slowed by a test hook (a dump takes
# the blocks from the filesystem as it streams, so writes land between its
# instant and its reading them; one dump's output stalls for longer than
# the snapshot outlives a refresh, and hands its snapshot over to a copy
# begun meanwhile, which does not wait for the dump); it must complete
# writes while the
# snapshot is being taken (<prefix>:COW exists: with a freeze it could
# not), and every snapshot, and every dump restored, must be a cut of the
# sequence (numbers 0..M-1, each exactly once, none after). A hole punched
# while a copy or a dump runs is not in it (the blocks it removes and cuts
# are copied first), and is in the filesystem; so are blocks
# copy_file_range copies (the server's COPY) over a file's blocks and into
# a new file. Also: a copy or a dump that crashes midway leaves a snapshot
# the next one waits out, removes and replaces; nothing is left behind;
# a delete or an fsck --repair begun while a dump stalls is handed the
# snapshot, and the dump still completes with the filesystem as it was
# (the repair's damage included).
# The writer's longest write during the copies is printed (not asserted:
# the machine is shared).
. "$(dirname "$0")/../mount/lib.sh"

need_snap
need_tools fallocate

N=8
mount_fs

note "populate: $N logs and 2,000 small files"
mkdir "$MNT/logs" "$MNT/filler"
for ((k = 0; k < N; k++)); do
  : >"$MNT/logs/$k"
done
python3 - "$MNT/filler" <<'PY'
import os, sys
for i in range(2000):
    with open(os.path.join(sys.argv[1], f'x{i}'), 'w') as f:
        f.write(str(i) * 10)
PY

# The writer reads the server over a socket of its own (no subprocess: a
# fork would close its descriptors, each close(2) a FLUSH).
export PYTHONPATH=$HERE/../mount
python3 - "$MNT/logs" "$N" "$PREFIX" "$SOCK" "$T" <<'PY' &
import os, sys, time
from check_consistency import Redis
logs, n, prefix, sock, t = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
r = Redis(sock)
fds = [os.open(f"{logs}/{k}", os.O_WRONLY | os.O_APPEND) for k in range(n)]
seq = during = 0
longest = 0.0
while not os.path.exists(f"{t}/stop"):
    t0 = time.monotonic()
    os.write(fds[seq % n], b"%d\n" % seq)
    took = time.monotonic() - t0
    seq += 1
    if r.call("EXISTS", f"{prefix}:COW") == 1:
        during += 1
        longest = max(longest, took)
for fd in fds:
    os.close(fd)
with open(f"{t}/writer", "w") as f:
    f.write(f"{seq} {during} {longest * 1000:.1f}\n")
PY
writer_pid=$!
while [[ $(stat -c %s "$MNT/logs/$((N - 1))") == 0 ]]; do
  sleep 0.05
done

note "copies while the writer runs"
for round in 1 2 3; do
  REDISFS_FAULT=copy-staging-slow snap -q copy "$PREFIX" "SNAP$round"
done
note "dumps while the writer runs: one slowed, one whose output stalls for $((10 + 2)) s"
REDISFS_FAULT=dump-stream-slow snap -q dump "$PREFIX" -o "$T/dump4.json"
REDISFS_FAULT=dump-stream-stall snap -q dump "$PREFIX" -o "$T/dump5.json" &
dump_pid=$!
wait_snapshot "$PREFIX" dump >/dev/null
note "a copy begun meanwhile: the stalled dump hands its snapshot over"
snap -q copy "$PREFIX" SNAP6 || fail "the copy begun while a dump stalled failed"
kill -0 "$dump_pid" 2>/dev/null || fail "the dump ended before the copy: it handed nothing over"
wait "$dump_pid" || fail "the dump that handed its snapshot over failed"
touch "$T/stop"
wait "$writer_pid"
read -r total during longest <"$T/writer"
note "the writer wrote $total times, $during of them while a snapshot was being taken (longest: $longest ms)"
((during > 0)) || fail "no write completed while a snapshot was being taken: writers paused"

# verify_cut DIR: the logs hold 0..M-1, each once, in the round-robin files
verify_cut() {
  python3 - "$1/logs" "$N" <<'PY' || fail "$1: not one instant of the writer"
import sys
logs, n = sys.argv[1], int(sys.argv[2])
seen = []
for k in range(n):
    with open(f"{logs}/{k}", "rb") as f:
        nums = [int(x) for x in f.read().split()]
    assert all(x % n == k for x in nums), f"file {k} holds another file's numbers"
    assert nums == sorted(nums), f"file {k} is out of order"
    seen += nums
seen.sort()
assert seen == list(range(len(seen))), f"not a cut: {len(seen)} numbers up to {seen[-1] if seen else None}"
PY
}
for round in 4 5; do
  snap -q restore "$T/dump$round.json" --prefix "SNAP$round"
done
for round in 1 2 3 4 5 6; do
  PREFIX=SNAP$round mount_at "$T/snap$round" --read-only
  verify_cut "$T/snap$round"
  [[ $(find "$T/snap$round/filler" -type f | wc -l) == 2000 ]] || fail "SNAP$round: filler files missing"
  unmount_fs "$T/snap$round"
done

# copy_range SRC DST LEN SRC_OFFSET DST_OFFSET, by copy_file_range(2)
copy_range() {
  python3 -c 'import os, sys
fi, fo = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
n, soff, doff = map(int, sys.argv[3:6])
while n:
    got = os.copy_file_range(fi, fo, n, soff, doff)
    assert got, "short source"
    n, soff, doff = n - got, soff + got, doff + got' "$@"
}
# punch_during copy|dump: a hole punched and a copy_file_range made in
# directory D-<what> while a copy or a dump of the filesystem runs; the
# snapshot (the dump, restored) holds neither
punch_during() {
  local what=$1 d=$MNT/D-$1 pid
  note "a hole punched and a copy_file_range made while a $what runs"
  mkdir "$d"
  cp "$T/punched" "$d/punched"
  cp "$T/over" "$d/over"
  if [[ $what == copy ]]; then
    REDISFS_FAULT=copy-staging-slow snap -q copy "$PREFIX" PUNCHED &
  else
    REDISFS_FAULT=dump-stream-slow snap -q dump "$PREFIX" -o "$T/punched.json" &
  fi
  pid=$!
  wait_snapshot "$PREFIX" "$what" >/dev/null
  fallocate --punch-hole -o $((B + 5)) -l $((5 * B)) "$d/punched" # 1 cut, 2-5 gone, 6 zeroed
  # the server copies blocks 0-4 of punched whole over blocks 2-6 of over
  # (COPY ... REPLACE), and all of it into a new file
  copy_range "$d/punched" "$d/over" $((5 * B)) 0 $((2 * B))
  copy_range "$d/punched" "$d/copied" $((8 * B)) 0 0
  [[ $(rcli exists "$PREFIX:COW") == 1 ]] || fail "the $what ended before the punch and copies: too fast to tell anything"
  wait "$pid" || fail "the $what during the punch and copies failed"
  cmp "$d/punched" "$T/punched-local" || fail "the punched file is not as punched"
  cmp "$d/over" "$T/over-local" || fail "the file copied over is not as copied"
  cmp "$d/copied" "$T/punched-local" || fail "the new copy is not as copied"
  if [[ $what == dump ]]; then
    snap -q delete PUNCHED
    snap -q restore "$T/punched.json" --prefix PUNCHED
  fi
  PREFIX=PUNCHED mount_at "$T/punched-snap" --read-only
  cmp "$T/punched-snap/D-$what/punched" "$T/punched" || fail "the $what holds the hole punched after its instant"
  cmp "$T/punched-snap/D-$what/over" "$T/over" || fail "the $what holds the blocks copied over after its instant"
  [[ ! -e $T/punched-snap/D-$what/copied ]] || fail "the $what holds the file copied into after its instant"
  unmount_fs "$T/punched-snap"
}
B=$(rcli hget "$PREFIX:SB" block_size)
head -c $((8 * B)) /dev/urandom >"$T/punched"
head -c $((8 * B)) /dev/urandom >"$T/over"
cp "$T/punched" "$T/punched-local"
fallocate --punch-hole -o $((B + 5)) -l $((5 * B)) "$T/punched-local"
cp "$T/over" "$T/over-local"
copy_range "$T/punched-local" "$T/over-local" $((5 * B)) 0 $((2 * B))
punch_during copy
punch_during dump

note "a crashed copy is waited out and removed by the next one"
if REDISFS_FAULT=copy-staging-crash snap -q copy "$PREFIX" CRASHED 2>/dev/null; then
  fail "the crash hook did not crash the copy"
fi
staging=$(rcli hget "$PREFIX:COW" staging)
[[ $staging == "$PREFIX~copy~"* ]] || fail "no snapshot left by the crashed copy (COW staging: '$staging')"
[[ -n $(rcli --scan --pattern "$staging:*" | head -1) ]] || fail "the crashed copy left no staged keys"
echo change >>"$MNT/logs/0"  # writers still work (the dead snapshot lapses)
snap -q copy "$PREFIX" AFTER
[[ -z $(rcli --scan --pattern "$staging:*" | head -1) ]] || fail "the crashed copy's keys are still there"
[[ $(rcli exists "$staging~index") == 0 ]] || fail "the crashed copy's index is still there"
[[ $(rcli exists "$PREFIX:COW") == 0 ]] || fail "a snapshot record is left behind"
[[ -z $(rcli --scan --pattern "$PREFIX~*" | head -1) ]] || fail "a staging prefix is left behind"
[[ $(rcli exists CRASHED:SB) == 0 ]] || fail "the crashed copy was installed"
PREFIX=AFTER mount_at "$T/after" --read-only
tail -1 "$T/after/logs/0" | grep -qx change || fail "the copy after the crash misses a change made before it"
unmount_fs "$T/after"

note "a dump that crashes with blocks taken and others not is removed by the next one"
if REDISFS_FAULT=dump-stream-crash snap -q dump "$PREFIX" -o "$T/crashed.json" 2>/dev/null; then
  fail "the crash hook did not crash the dump"
fi
staging=$(rcli hget "$PREFIX:COW" staging)
[[ $staging == "$PREFIX~dump~"* ]] || fail "no snapshot left by the crashed dump (COW staging: '$staging')"
[[ -n $(rcli --scan --pattern "$staging:*" | head -1) ]] || fail "the crashed dump left no staged keys"
echo again >>"$MNT/logs/0"
snap -q dump "$PREFIX" -o "$T/after.json"
[[ -z $(rcli --scan --pattern "$PREFIX~*" | head -1) ]] || fail "a staging prefix is left behind: $(rcli --scan --pattern "$PREFIX~*" | head -3)"
[[ $(rcli exists "$staging~index") == 0 ]] || fail "the crashed dump's index is still there"
[[ $(rcli exists "$PREFIX:COW") == 0 ]] || fail "a snapshot record is left behind"
snap -q restore "$T/after.json" --prefix AFTER-D
PREFIX=AFTER-D mount_at "$T/after-d" --read-only
tail -1 "$T/after-d/logs/0" | grep -qx again || fail "the dump after the crash misses a change made before it"
unmount_fs "$T/after-d"

note "a delete begun while a dump's output stalls: the dump hands its snapshot over, and completes"
snap -q copy "$PREFIX" DEL-SRC
snap -q copy DEL-SRC DEL-REF
REDISFS_FAULT=dump-stream-stall snap -q dump DEL-SRC -o "$T/deleted.json" &
dump_pid=$!
wait_snapshot DEL-SRC dump >/dev/null
snap -q delete DEL-SRC || fail "the delete begun while a dump stalled failed"
kill -0 "$dump_pid" 2>/dev/null || fail "the dump ended before the delete: it handed nothing over"
wait "$dump_pid" || fail "the dump whose source was deleted after the handover failed"
snap -q restore "$T/deleted.json" --prefix DEL-RST
snap -q diff --force DEL-REF DEL-RST >"$T/out" || fail "diff DEL-REF DEL-RST"
[[ ! -s $T/out ]] || fail "the dump handed over differs from the filesystem: $(head -3 "$T/out")"
[[ -z $(rcli --scan --pattern 'DEL-SRC*' | head -1) ]] || fail "keys of DEL-SRC are left: $(rcli --scan --pattern 'DEL-SRC*' | head -3)"

note "an fsck --repair begun while a dump's output stalls: the dump hands its snapshot over, the repair runs"
snap -q copy "$PREFIX" REP-SRC
rcli hset REP-SRC:INODE:1 nlink 9 >/dev/null  # damage the repair fixes: the root's link count
snap -q copy REP-SRC REP-REF
note "an fsck --repair while a copy's snapshot is live: refused at once, nothing repaired"
if REDISFS_FAULT=copy-staging-crash snap -q copy REP-SRC REP-CRASH 2>/dev/null; then
  fail "the crash hook did not crash the copy"
fi
if snap fsck --repair REP-SRC >"$T/out" 2>"$T/err"; then
  fail "fsck --repair ran while a copy's snapshot was live: $(cat "$T/out")"
fi
grep -q "a snapshot of 'REP-SRC' is being taken" "$T/err" || fail "the refusal: $(cat "$T/err")"
[[ $(rcli hget REP-SRC:INODE:1 nlink) == 9 ]] || fail "the refused repair changed the filesystem"
REDISFS_FAULT=dump-stream-stall snap -q dump REP-SRC -o "$T/repaired.json" &
dump_pid=$!
wait_snapshot REP-SRC dump >/dev/null
snap fsck --repair REP-SRC >"$T/out" 2>"$T/err" || fail "the fsck --repair begun while a dump stalled failed: $(cat "$T/err")"
grep -q '^wrong link count: REP-SRC:INODE:1: .*(repaired' "$T/out" || fail "the repair: $(cat "$T/out")"
kill -0 "$dump_pid" 2>/dev/null || fail "the dump ended before the repair: it handed nothing over"
wait "$dump_pid" || fail "the dump whose source was repaired after the handover failed"
snap -q fsck REP-SRC || fail "REP-SRC is not clean after the repair"
snap -q restore --damaged "$T/repaired.json" --prefix REP-RST
[[ $(rcli hget REP-RST:INODE:1 nlink) == 9 ]] || fail "the dump holds the repair, not its instant's link count"
snap -q diff --force REP-REF REP-RST >"$T/out" || fail "diff REP-REF REP-RST"
[[ ! -s $T/out ]] || fail "the dump handed over differs from the filesystem: $(head -3 "$T/out")"
note "ok"
