#!/usr/bin/env bash
# cluster_clocks: on a Redis Cluster (3 masters, 1 replica each) whose
# masters' clocks differ, one an hour ahead and one an hour behind the
# third (tests/prod/clock_shift.cpp preloaded into their redis-server), a
# filesystem on the third master. Its deadlines and times were set by its
# own master's clock (the scripts' TIME), and the tools compare them with
# that clock, whichever node --redis names (redisfs-snap(1), PRODUCTION
# REDIS). Through each skewed master:
#   - while a copy of the filesystem is being taken (copy-on-write), list
#     shows it as "copying N%", and fsck --repair of the filesystem is
#     refused (its changes would not be copied into the snapshot first):
#     one line, exit 1, the damage left for later;
#   - list's ages are the filesystem's: "just now" for it and for the
#     snapshot, whose instant is the source's;
#   - fsck --repair once the copy has ended repairs, and fsck is clean.
. "$(dirname "$0")/topology.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 jq
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN
[[ -n ${CLOCK_SHIFT_LIB:-} && -f $CLOCK_SHIFT_LIB ]] ||
  skip "CLOCK_SHIFT_LIB is not set (the library CMake builds from tests/prod/clock_shift.cpp)"

CLUSTER_NODE_ENV[1]="LD_PRELOAD=$CLOCK_SHIFT_LIB CLOCK_SHIFT_SECONDS=3600"
CLUSTER_NODE_ENV[2]="LD_PRELOAD=$CLOCK_SHIFT_LIB CLOCK_SHIFT_SECONDS=-3600"
start_cluster
AHEAD='' BEHIND='' ON_TIME=''
for m in $(masters_now); do
  off=$(($(rc_at "$m" time | head -1) - $(date +%s)))
  if ((off > 1800)); then
    AHEAD=$m
  elif ((off < -1800)); then
    BEHIND=$m
  else
    ON_TIME=$m
  fi
done
[[ -n $AHEAD && -n $BEHIND && -n $ON_TIME ]] ||
  fail "expected masters an hour ahead, an hour behind and on time; got '$AHEAD', '$BEHIND', '$ON_TIME'"
P="{$(pick_tag clockfs "$AHEAD" "$BEHIND")}"
note "$P on $ON_TIME; masters $AHEAD (+1 h) and $BEHIND (-1 h)"
rcli() { rc_at "$ON_TIME" "$@"; }
snap_via() {  # PORT ARGS...: redisfs-snap through the master on PORT
  local port=$1
  shift
  "$REDISFS_SNAP_BIN" --redis "redis://127.0.0.1:$port" "$@"
}
RE_P=${P//\{/\\\{}
RE_P=${RE_P//\}/\\\}}  # (for grep -E)

MNT=$T/mnt
mkdir -p "$MNT"
mount_at "$MNT" --redis "redis://127.0.0.1:$AHEAD" --prefix "$P"
for d in $(seq 1 30); do
  mkdir "$MNT/d$d"
  for f in $(seq 1 20); do
    echo "$d.$f" >"$MNT/d$d/f$f"
  done
done
sync -f "$MNT"
fs_unmount "$MNT"

# Damage for a repair to find: a directory's link count off by one.
ino=$(rcli hget "$P:DIR:1" d1)
rcli hincrby "$P:INODE:$ino" nlink 5 >/dev/null

# A copy-on-write snapshot being taken (slowed: a quarter second a page),
# through the master on time; the checks through the skewed ones.
# (the binary itself in the background: its pid is the one to signal)
REDISFS_FAULT=copy-staging-slow "$REDISFS_SNAP_BIN" --redis "redis://127.0.0.1:$ON_TIME" -q copy "$P" "$P-snap" &
copy_pid=$!
track_job "$copy_pid"
wait_snapshot "$P" copy >/dev/null
for via in "$AHEAD" "$BEHIND"; do
  snap_via "$via" list >"$T/list" || fail "list through $via: $(cat "$T/list")"
  grep -Eq "^ *[└├]─ $RE_P-snap +copying [0-9]+%" "$T/list" ||
    fail "list through $via does not show $P-snap being copied: $(cat "$T/list")"
  grep -Eq "^$RE_P .* just now " "$T/list" || fail "list through $via: $P not created 'just now': $(cat "$T/list")"
  rc=0
  snap_via "$via" fsck --repair "$P" >"$T/repair.out" 2>"$T/repair.err" || rc=$?
  if ((rc != 1)) || [[ $(wc -l <"$T/repair.err") != 1 ]] || ! grep -q "is being taken" "$T/repair.err"; then
    fail "fsck --repair through $via while $P is being copied: exit $rc, $(cat "$T/repair.out" "$T/repair.err")"
  fi
  [[ $(rcli hget "$P:INODE:$ino" nlink) -gt 5 ]] || fail "fsck --repair through $via repaired $P during the copy"
done
kill -0 "$copy_pid" 2>/dev/null || fail "the copy ended before the checks ran: give it more to copy"
note "through both skewed masters, a copy being taken is alive: listed as copying, fsck --repair refused"
wait "$copy_pid" || fail "copy $P $P-snap failed"

for via in "$AHEAD" "$BEHIND"; do
  snap_via "$via" list >"$T/list" || fail "list through $via: $(cat "$T/list")"
  grep -Eq "^ *[└├]─ $RE_P-snap +snapshot .* just now " "$T/list" ||
    fail "list through $via: $P-snap not a snapshot taken 'just now': $(cat "$T/list")"
done
snap_via "$BEHIND" fsck --repair "$P" >"$T/repair.out" 2>&1 || true
[[ $(rcli hget "$P:INODE:$ino" nlink) -le 5 ]] || fail "fsck --repair did not repair $P: $(cat "$T/repair.out")"
snap_via "$BEHIND" fsck "$P" >"$T/fsck.out" 2>&1 || fail "fsck $P is not clean after its repair: $(cat "$T/fsck.out")"
snap_via "$AHEAD" fsck "$P-snap" >"$T/fsck.out" 2>&1 && fail "the snapshot lost the damage of its instant"
note "after the copy: ages by the filesystem's clock; the repair runs"
note "ok"
