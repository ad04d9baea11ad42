#!/usr/bin/env bash
# cluster_room: on a Redis Cluster (3 masters, 1 replica each), a tool's
# room guard (core/snap/room.hpp; redisfs-snap(1), PRODUCTION REDIS,
# Memory) looks at the master it stages in, not at the node it was given,
# and so do the tools' and the daemon's refusal of a server that evicts.
# The tools talk to a master with room; the filesystem's master, then the
# master of another slot, has 4 MiB free for 8 MiB of blocks:
#   - a copy within the slot (copy-on-write, staged on the filesystem's
#     master), and a restore into a prefix of that slot, stop before they
#     take the room the mounts' writes need there: one line, exit 1,
#     nothing staged left; a dump (it stages the metadata only) works;
#   - a copy into the other slot (frozen, staged on that slot's master)
#     and a restore into it stop alike;
#   - a copy or a restore into another slot whose master evicts keys is
#     refused (as on the node the tools talk to; a restore without
#     --prefix too, into the prefix its dump names), unless allowed, and so
#     is a read-write mount of a filesystem there;
#   - with room again, each works, and fsck is clean.
. "$(dirname "$0")/topology.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN

start_cluster
P1="{roomfs}"
M1=$(master_of_key "$P1")
TAGX=$(pick_tag roomx "$M1")
PX="{$TAGX}"
MX=$(master_of_key "$PX")
VIA=$(masters_now | grep -vx -e "$M1" -e "$MX" | sed -n 1p)
[[ -n $VIA ]] || fail "no third master"
note "$P1 on $M1, $PX on $MX, tools through $VIA"
URL=redis://127.0.0.1:$VIA
snap() {
  "$REDISFS_SNAP_BIN" --redis "$URL" "$@"
}

used_at() {  # PORT: used_memory
  rc_at "$1" info memory | tr -d '\r' | sed -n 's/^used_memory:\([0-9]*\)$/\1/p'
}
# little_room PORT: that master has 4 MiB free (maxmemory); every other
# master no limit
little_room() {
  local m
  for m in $(masters_now); do
    rc_at "$m" config set maxmemory 0 >/dev/null
  done
  rc_at "$1" config set maxmemory $(($(used_at "$1") + (4 << 20))) >/dev/null
}
# stops WHERE ARGS...: `snap ARGS` stops for want of room on WHERE: one
# line, exit 1, before that master answered OOM, nothing staged left
stops() {
  local where=$1 rc=0
  shift
  snap -q "$@" >/dev/null 2>"$T/err" || rc=$?
  ((rc == 1)) || fail "'$*' exited $rc with 4 MiB free on $where: $(cat "$T/err")"
  [[ $(wc -l <"$T/err") == 1 ]] || fail "'$*': not one line: $(cat "$T/err")"
  grep -q "stopped: the server is nearly out of memory (used " "$T/err" || fail "'$*': $(cat "$T/err")"
  ! grep -q OOM "$T/err" || fail "'$*' ran $where out of memory: $(cat "$T/err")"
  note "$(cat "$T/err")"
  no_temp_keys "'$*'"
}

MNT=$T/fs
mount_at "$MNT" --redis "$URL" --prefix "$P1"
head -c $((8 << 20)) /dev/urandom >"$MNT/big"
echo small >"$MNT/small"
fs_unmount "$MNT"
snap -q dump "$P1" -o "$T/full.json"
# a dump of a filesystem in the other slot: restored without --prefix, its
# target is known only at its header; and an incremental dump of a
# snapshot there (restored, it applies onto the prefix it names)
snap -q restore "$T/full.json" --prefix "$PX-d" || fail "restore --prefix $PX-d"
snap -q dump "$PX-d" -o "$T/named.json" || fail "dump $PX-d"
snap -q delete "$PX-d" || fail "delete $PX-d"
PY="{$(pick_tag roomy "$M1" "$VIA")}"  # (on MX, as PX)
snap -q restore "$T/full.json" --prefix "$PY" || fail "restore --prefix $PY"
snap -q copy "$PY" "$PY-s1" || fail "copy $PY $PY-s1"
snap -q copy "$PY" "$PY-s2" || fail "copy $PY $PY-s2"
snap -q dump "$PY-s2" --since "$PY-s1" -o "$T/inc.json" || fail "an incremental dump of $PY-s2"

note "the filesystem's master with 4 MiB free"
little_room "$M1"
stops "$M1" copy "$P1" "$P1-c"
stops "$M1" restore "$T/full.json" --prefix "$P1-r"
snap -q dump "$P1" -o "$T/little.json" 2>"$T/err" || fail "the dump with 4 MiB free on $M1: $(cat "$T/err")"
snap -q verify "$T/little.json" >/dev/null || fail "the dump made with 4 MiB free on $M1 does not verify"
no_temp_keys "the dump"

note "another slot's master with 4 MiB free"
little_room "$MX"
stops "$MX" copy "$P1" "$PX-c"
stops "$MX" restore "$T/full.json" --prefix "$PX-r"

note "another slot's master evicts keys (allkeys-lru), the tools' node does not"
for m in $(masters_now); do
  rc_at "$m" config set maxmemory 0 >/dev/null
done
rc_at "$MX" config set maxmemory-policy allkeys-lru >/dev/null
for cmd in "copy $P1 $PX-c" "restore $T/full.json --prefix $PX-r" "restore $T/named.json" "restore $T/inc.json"; do
  read -ra argv <<<"$cmd"
  rc=0
  snap -q "${argv[@]}" >/dev/null 2>"$T/err" || rc=$?
  ((rc == 1)) && [[ $(wc -l <"$T/err") == 1 ]] || fail "$cmd into an evicting master: exit $rc: $(cat "$T/err")"
  grep -q "^redisfs-snap: error: refusing to ${argv[0]} (on the master of '\\($PX-.\\|$PY-s2\\)'): the server's maxmemory-policy is allkeys-lru" "$T/err" ||
    fail "$cmd into an evicting master: $(cat "$T/err")"
  note "$(cat "$T/err")"
done
mkdir "$T/evicting"
rc=0
timeout 20 "$REDISFS_BIN" -f --redis "$URL" --prefix "$PX-m" "$T/evicting" >/dev/null 2>"$T/err" || rc=$?
((rc == 1)) || fail "a read-write mount of $PX-m on an evicting master: exit $rc: $(cat "$T/err")"
grep -q "refusing a read-write mount: the server's maxmemory-policy is allkeys-lru" "$T/err" ||
  fail "a read-write mount of $PX-m on an evicting master: $(cat "$T/err")"
note "mount: $(tail -1 "$T/err")"
[[ -z $(rc_at "$MX" --scan --pattern "$PX-*") ]] || fail "a refused tool or mount wrote into $MX"
[[ -z $(rc_at "$MX" --scan --pattern "$PY~*") ]] || fail "the refused incremental restore staged into $MX"
snap -q --allow-evicting-server restore "$T/full.json" --prefix "$PX-e" || fail "restore with --allow-evicting-server"
snap -q delete "$PX-e"
rc_at "$MX" config set maxmemory-policy noeviction >/dev/null

note "room again"
for m in $(masters_now); do
  rc_at "$m" config set maxmemory 0 >/dev/null
done
snap -q copy "$P1" "$P1-c" || fail "copy within the slot with room"
snap -q copy "$P1" "$PX-c" || fail "copy into another slot with room"
snap -q restore "$T/little.json" --prefix "$PX-r" || fail "restore of the dump made with little room"
for p in "$P1-c" "$PX-c" "$PX-r"; do
  snap -q fsck "$p" >/dev/null || fail "$p is not clean"
  [[ $(rc_at "$(master_of_key "$p")" hget "$p:INODE:$(rc_at "$(master_of_key "$p")" hget "$p:DIR:1" big)" size) == $((8 << 20)) ]] ||
    fail "$p lacks the 8 MiB file"
done
no_temp_keys "the tools with room"
note "ok"
