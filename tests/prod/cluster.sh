#!/usr/bin/env bash
# cluster: redisfs on Redis Cluster (3 masters, 1 replica each;
# tests/prod/topology.sh). One filesystem lives in one slot through its
# hash tag (DESIGN.md, decision 11):
#   - '{fs1}' is mounted through a node that does not serve its slot (the
#     client follows MOVED) and does real file work; a second filesystem,
#     whose tag hashes to another master, is mounted too;
#   - redisfs-snap copies '{fs1}' to '{fs1}-snap' (same slot: on the server)
#     and to a third tag on the third master (through the client); a copy
#     taken while the mount appends (copy-on-write, the mount's scripts
#     told of it by COW) is one instant of the writer; dump ->
#     restore round trips under a same-slot and an other-slot prefix give
#     the same records; list shows filesystems on every master; fsck is
#     clean everywhere;
#   - a prefix without a hash tag is refused, by redisfs and redisfs-snap,
#     with a message that says so;
#   - '{fs1}''s slot moves to another master (MIGRATING/IMPORTING, MIGRATE,
#     SETSLOT NODE) under a writer that fsyncs every file: no error, every
#     acknowledged write intact, fsck clean;
#   - the master of the second filesystem is SIGKILLed under a writer
#     (--sync-replicas 1): its replica takes over, the writer sees no error,
#     every acknowledged write survives.
# Outages cost latency, not errors (decision 12): the slowest call across
# each event is printed, never asserted.
#
# REDISFS_PROD_INFRA_ONLY=1 stops after the checks of the topology itself
# (the same failures, on raw keys, watched with redis-cli): for a quick run
# while redisfs cannot talk to this topology.
. "$(dirname "$0")/topology.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 jq diff
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN

W=$TOPO_HERE/ack_writer.py

# ------------------------------------------------------------------ topology
t0=$(now)
start_cluster
note "cluster up in $(since "$t0") s: masters ${CLUSTER_MASTERS[*]}, replicas ${CLUSTER_REPLICAS[*]}"

TAG1=fs1
S1=$(slot_of "{$TAG1}")
M1=$(master_of_slot "$S1")
TAG2=$(pick_tag fs2 "$M1")
S2=$(slot_of "{$TAG2}")
M2=$(master_of_slot "$S2")
TAG3=$(pick_tag fs3 "$M1" "$M2")
S3=$(slot_of "{$TAG3}")
M3=$(master_of_slot "$S3")
P1="{$TAG1}" P2="{$TAG2}" P3="{$TAG3}"
note "$P1: slot $S1 on $M1; $P2: slot $S2 on $M2; $P3: slot $S3 on $M3"
[[ $(slot_of "$P1:SB") == "$S1" && $(slot_of "$P1-snap:INODE:1") == "$S1" ]] || fail "the tag does not decide the slot"

# a node that does not serve $P1's slot, and what it answers
VIA=$(other_master "$S1")
out=$(rc_at "$VIA" exists "$P1:SB" 2>&1) || true
[[ $out == "MOVED $S1 127.0.0.1:$M1" ]] || fail "$VIA answers '$out' for $P1:SB, expected MOVED to $M1"
# keys land on the master of their tag, and nowhere else
redis-cli -c -h 127.0.0.1 -p "$VIA" set "$P1:probe" 1 >/dev/null
[[ $(rc_at "$M1" exists "$P1:probe") == 1 ]] || fail "$P1:probe is not on $M1"
rc_at "$M1" del "$P1:probe" >/dev/null
for m in "$M1" "$M2" "$M3"; do
  [[ $(rc_at "$m" dbsize) == 0 ]] || fail "master $m is not empty"
done
if [[ ${REDISFS_PROD_INFRA_ONLY:-0} == 1 ]]; then
  # the events of this test, on raw keys, watched with redis-cli only
  exercise_cluster "$TAG1"
  note "REDISFS_PROD_INFRA_ONLY=1: stopping after the topology checks"
  exit 0
fi

URL=redis://127.0.0.1:$VIA
snap() {
  "$REDISFS_SNAP_BIN" --redis "$URL" "$@"
}

steps() {  # JOURNAL: acknowledged steps so far (an error ends the writer)
  if [[ -f $1 ]]; then grep -cv '^error' "$1" || true; else echo 0; fi
}

# writer_progress JOURNAL PID N: waits until JOURNAL holds N steps; fails if
# the writer stopped (at its first error) or makes no progress.
writer_progress() {
  local j=$1 pid=$2 want=$3 i
  for ((i = 0; i < 1800; i++)); do
    (($(steps "$j") >= want)) && return 0
    kill -0 "$pid" 2>/dev/null || fail "the writer stopped: $(cat "$j.out")"
    sleep 0.1
  done
  fail "the writer is stuck at $(steps "$j") steps (waited 180 s for $want): $(cat "$j.out")"
}

# start_writer DIR JOURNAL: sets WRITER
start_writer() {
  ${ORPHAN_GUARD[@]+"${ORPHAN_GUARD[@]}"} python3 "$W" write "$1" "$2" --stop "$2.stop" >"$2.out" 2>&1 &
  WRITER=$!
  track_job "$WRITER"
  writer_progress "$2" "$WRITER" 20
}

stop_writer() {  # JOURNAL PID: the writer must end without having seen an error
  local rc=0
  touch "$1.stop"
  wait "$2" || rc=$?
  cat "$1.out"
  ((rc == 0)) || fail "the writer saw an error (exit $rc): $(grep '^error' "$1" || true)"
  ! grep -q '^error' "$1" || fail "the journal records an error: $(grep '^error' "$1")"
}

# ------------------------------------------------------------------ no tag, no mount
mkdir -p "$T/plain"
for p in plain 'a{b' '{}x'; do
  # -f: a mount that should not have happened ends with its timeout
  EXPECT_FAIL_SECS=30 expect_fail "hash tag" "$REDISFS_BIN" -f --redis "$URL" --prefix "$p" "$T/plain"
done
expect_fail "hash tag" "$REDISFS_SNAP_BIN" --redis "$URL" fsck plain
expect_fail "hash tag" "$REDISFS_SNAP_BIN" --redis "$URL" dump plain -o "$T/plain.json"
[[ ! -e $T/plain.json ]] || fail "a refused dump left a file"
note "a prefix without a hash tag is refused"

# ------------------------------------------------------------------ two filesystems, two masters
MNT1=$T/fs1
MNT2=$T/fs2
mount_at "$MNT1" --redis "$URL" --prefix "$P1" --sync-replicas 1
[[ $(rc_at "$M1" exists "$P1:SB") == 1 ]] || fail "$P1:SB is not on $M1, the master of slot $S1"
[[ $(rc_at "$VIA" dbsize) == 0 ]] || fail "keys landed on $VIA, which was only the node we named"

head -c 1000000 /dev/urandom >"$T/blob"
mkdir -p "$MNT1/tree/a/b" "$MNT1/w"
cp "$T/blob" "$MNT1/tree/blob"
cp "$T/blob" "$MNT1/tree/a/b/copy"
printf 'more' >>"$MNT1/tree/a/b/copy"
truncate -s 5000 "$MNT1/tree/a/b/copy"
ln "$MNT1/tree/blob" "$MNT1/tree/hard"
ln -s a/b/copy "$MNT1/tree/sym"
mkfifo "$MNT1/tree/fifo"
echo one >"$MNT1/tree/a/x"
mv "$MNT1/tree/a/x" "$MNT1/tree/a/b/y"
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.k", b"\x00v\xff")' "$MNT1/tree/blob"
chmod 0600 "$MNT1/tree/blob"
touch -d '2001-02-03 04:05:06.123456789' "$MNT1/tree/a"
for i in $(seq 1 50); do echo "$i" >"$MNT1/tree/a/f$i"; done
rm "$MNT1/tree/a/f7"
cmp "$T/blob" "$MNT1/tree/hard"
[[ $(stat -c %s:%h "$MNT1/tree/blob") == 1000000:2 ]] || fail "size or link count of tree/blob"
[[ $(cat "$MNT1/tree/a/b/y") == one && $(ls "$MNT1/tree/a" | wc -l) == 50 ]] || fail "tree/a"
sync
(($(rc_at "$M1" cluster countkeysinslot "$S1") > 50)) || fail "the filesystem's keys are not in slot $S1 on $M1"

mount_at "$MNT2" --redis "redis://127.0.0.1:$M1" --prefix "$P2" --sync-replicas 1
cp -a "$MNT1/tree" "$MNT2/tree"
same_tree "$MNT1/tree" "$MNT2/tree"
mkdir "$MNT2/w"
[[ $(rc_at "$M2" exists "$P2:SB") == 1 ]] || fail "$P2:SB is not on $M2"
note "$P1 (through $VIA) and $P2 (through $M1) mounted; file work done"

# ------------------------------------------------------------------ snapshots
copies_on() {  # PORT: COPY commands the server has run
  rc_at "$1" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_copy:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0
}
copies=$(copies_on "$M1")
snap copy "$P1" "$P1-snap" || fail "copy $P1 $P1-snap (same slot)"
# same slot: copied on the server (COPY), not through the client
(($(copies_on "$M1") - copies >= $(rc_at "$M1" cluster countkeysinslot "$S1") / 3)) ||
  fail "copy $P1 $P1-snap ran $(($(copies_on "$M1") - copies)) COPY commands on $M1: not a server-side copy"
snap copy "$P1" "$P3" || fail "copy $P1 $P3 (another slot, through the client)"
[[ $(rc_at "$M1" exists "$P1-snap:SB") == 1 ]] || fail "$P1-snap is not on $M1"
[[ $(rc_at "$M3" exists "$P3:SB") == 1 ]] || fail "$P3 is not on $M3"
# each got a snapshot id, appended to the source's lineage (the frozen path
# to another slot too)
id_snap=$(rc_at "$M1" hget "$P1-snap:SB" snapshot_id)
id_3=$(rc_at "$M3" hget "$P3:SB" snapshot_id)
[[ $id_snap =~ ^[0-9a-f]{32}$ && $id_3 =~ ^[0-9a-f]{32}$ ]] || fail "snapshot ids: '$id_snap' '$id_3'"
[[ $(rc_at "$M1" hget "$P1:SB" lineage) == "$id_snap $id_3" ]] || fail "$P1's lineage: $(rc_at "$M1" hget "$P1:SB" lineage)"
[[ $(rc_at "$M3" hget "$P3:SB" lineage) == "$id_snap $id_3" ]] || fail "$P3's lineage"
# change tracking (keys.hpp, CHANGED): the same-slot snapshot took the
# source's record over at its instant (the first: an empty one); the
# cross-slot one cannot have one, and the source starts afresh from it
[[ $(rc_at "$M1" type "$P1-snap:CHANGED") == none && $(rc_at "$M3" type "$P3:CHANGED") == none ]] ||
  fail "a first or cross-slot snapshot has a change record"
[[ $(rc_at "$M1" smembers "$P1:CHANGED") == "since:$id_3" ]] || fail "$P1's change record: $(rc_at "$M1" smembers "$P1:CHANGED")"
expect_fail "hash tag" "$REDISFS_SNAP_BIN" --redis "$URL" copy "$P1" plain
for p in "$P1-snap" "$P3"; do
  mount_at "$T/ro" --redis "$URL" --prefix "$p" --read-only
  same_tree "$MNT1/tree" "$T/ro/tree"
  fs_unmount "$T/ro"
done
fsck_clean "$P1" "$P1-snap" "$P2" "$P3"

# copy-on-write through the cluster: the mount's scripts learn of the
# snapshot (COW) and copy into its staging prefix, in the filesystem's slot
start_appender "$MNT1/w/log" "$T/stop-cow"
cow_writer=$appender_pid
REDISFS_FAULT=copy-staging-slow snap copy "$P1" "$P1-live" || fail "copy $P1 $P1-live while a writer appends"
touch "$T/stop-cow"
wait "$cow_writer" || fail "the writer failed while a snapshot was being taken"
mount_at "$T/ro" --redis "$URL" --prefix "$P1-live" --read-only
python3 - "$T/ro/w/log" <<'PY' || fail "the snapshot of $P1 is not one instant of the writer"
import sys
nums = [int(x) for x in open(sys.argv[1], "rb").read().split()]
assert nums and nums == list(range(len(nums))), (len(nums), nums[-3:])
PY
fs_unmount "$T/ro"
[[ $(rc_at "$M1" exists "$P1:COW") == 0 ]] || fail "the snapshot record of $P1 is left behind"
fsck_clean "$P1-live"
snap -q delete "$P1-live" || fail "delete $P1-live"
note "a snapshot taken while a writer appended is one instant"

# dump -> restore round trips (same slot, another slot), record for record
snap dump "$P1" -o "$T/fs1.json" || fail "dump $P1"
jq -e --arg p "$P1" '.format == "redisfs-dump" and .prefix == $p and .trailer.records == (.records | length)' \
  "$T/fs1.json" >/dev/null || fail "the dump of $P1 is incomplete"
TAG4=$(pick_tag fs4 "$M1")
for p in "$P1-restored" "{$TAG4}"; do
  snap restore "$T/fs1.json" --prefix "$p" || fail "restore under $p"
  snap dump "$p" -o "$T/again.json" || fail "dump $p"
  cmp <(records "$T/fs1.json") <(records "$T/again.json") || fail "dump -> restore -> dump under $p changed records"
  fsck_clean "$p"
done
expect_fail "hash tag" "$REDISFS_SNAP_BIN" --redis "$URL" restore "$T/fs1.json" --prefix plain
note "copies (same slot, cross slot) and dump/restore round trips: ok"

# list: every master holds a filesystem, and list shows them all
snap list --json >"$T/list.json" || fail "list"
for p in "$P1" "$P1-snap" "$P2" "$P3" "$P1-restored" "{$TAG4}"; do
  jq -e --arg p "$p" 'any(.[]; .prefix == $p)' "$T/list.json" >/dev/null || fail "list lacks $p: $(cat "$T/list.json")"
done
listed_on=$(jq -r '.[].prefix' "$T/list.json" | while read -r p; do master_of_key "$p:SB"; done | sort -u | paste -sd' ')
[[ $listed_on == "$(masters_now | paste -sd' ')" ]] || fail "list shows filesystems on masters '$listed_on', not on every one"

# ------------------------------------------------------------------ move $P1's slot under a writer
start_writer "$MNT1/w" "$T/j1"
w1=$WRITER
DST=$M3  # the master that serves neither $P1 nor $P2
t0=$(now)
# small batches, a pause between them: the writer meets ASK and TRYAGAIN
reshard_slot "$S1" "$DST" 10 0.1
note "slot $S1 moved from $M1 to $DST ($MOVED_KEYS keys) in $(since "$t0") s under the writer"
writer_progress "$T/j1" "$w1" $(($(steps "$T/j1") + 20))
note "slot migration: $(python3 "$W" latency "$T/j1" "$t0" "$(now)")"
stop_writer "$T/j1" "$w1"
# a slot that migrates loses nothing: no fsync is refused for a changed master
grep -q "(0 fsync(s) refused" "$T/j1.out" || fail "fsync was refused while $P1's slot migrated: $(cat "$T/j1.out")"
[[ $(rc_at "$M1" cluster countkeysinslot "$S1") == 0 ]] || fail "keys of slot $S1 left on $M1"
[[ $(rc_at "$DST" exists "$P1:SB" "$P1-snap:SB" "$P1-restored:SB") == 3 ]] || fail "$P1 and its snapshots are not all on $DST"
python3 "$W" verify "$MNT1/w" "$T/j1" || fail "acknowledged writes to $P1 are wrong or missing after the slot moved"
cmp "$T/blob" "$MNT1/tree/blob"
fsck_clean "$P1" "$P1-snap" "$P1-restored"

# ------------------------------------------------------------------ kill $P2's master under a writer
start_writer "$MNT2/w" "$T/j2"
w2=$WRITER
t0=$(now)
cluster_kill_master "$M2"
M2B=$NEW_MASTER_PORT
note "SIGKILL master $M2: replica $M2B serves slot $S2 after $(since "$t0") s"
# the dead master comes back as a replica: --sync-replicas 1 has one to wait for
restart_node "$M2"
wait_for 60 "$M2 does not come back as a replica of $M2B" _replica_of_port "$M2" "$M2B"
note "$M2 is back as a replica of $M2B after $(since "$t0") s"
writer_progress "$T/j2" "$w2" $(($(steps "$T/j2") + 20))
note "master failover: $(python3 "$W" latency "$T/j2" "$t0" "$(now)")"
stop_writer "$T/j2" "$w2"
python3 "$W" verify "$MNT2/w" "$T/j2" || fail "acknowledged writes to $P2 are wrong or missing after the failover"
same_tree "$MNT1/tree" "$MNT2/tree"
# the other filesystem lived through the failover too
cmp "$T/blob" "$MNT1/tree/blob"
echo after >"$MNT1/tree/after"

# ------------------------------------------------------------------ cold checks
fs_unmount "$MNT2"
fs_unmount "$MNT1"
# $P2's mount (through $M1, not $P2's master) saw its master change and
# removed the open counts whose closes the dead master may have lost;
# $P1's master never changed
grep -q "the server changed during the mount" "${MOUNT_LOGS[$MNT2]}" ||
  fail "the mount of $P2 did not see its master fail over"
! grep -q "the server changed during the mount" "${MOUNT_LOGS[$MNT1]}" ||
  fail "the mount of $P1 took $P2's failover for a change of its own master"
mount_at "$T/ro2" --redis "redis://127.0.0.1:$M2B" --prefix "$P2" --read-only
python3 "$W" verify "$T/ro2/w" "$T/j2" || fail "acknowledged writes to $P2 are missing after a remount"
fs_unmount "$T/ro2"
mount_at "$T/ro1" --redis "redis://127.0.0.1:$M2B" --prefix "$P1" --read-only
python3 "$W" verify "$T/ro1/w" "$T/j1" || fail "acknowledged writes to $P1 are missing after a remount"
[[ $(cat "$T/ro1/tree/after") == after ]] || fail "$P1 lost a write made after the failover"
fs_unmount "$T/ro1"
fsck_clean "$P1" "$P1-snap" "$P2" "$P3" "$P1-restored" "{$TAG4}"
snap list --json >"$T/list.json" || fail "list after the failover"
[[ $(jq length "$T/list.json") == 6 ]] || fail "list shows $(jq length "$T/list.json") filesystems, expected 6"
# delete, through a node that does not serve the prefix either
M4=$(master_of_key "{$TAG4}")
"$REDISFS_SNAP_BIN" --redis "redis://127.0.0.1:$(other_master "$(slot_of "{$TAG4}")")" delete "{$TAG4}" ||
  fail "delete {$TAG4}"
[[ $(rc_at "$M4" cluster countkeysinslot "$(slot_of "{$TAG4}")") == 0 ]] || fail "delete left keys of {$TAG4} on $M4"
[[ $(snap list --json | jq length) == 5 ]] || fail "list after delete: $(snap list)"
note "ok"
