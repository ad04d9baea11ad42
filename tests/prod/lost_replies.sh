#!/usr/bin/env bash
# lost_replies: replies lost at random cost nothing (outages cost latency,
# not errors). A mount through tests/lost_reply_proxy.py, armed every 10 to
# 90 ms to drop the replies of the next script call and close the
# connection (a network that breaks after the server ran the call, and
# every call pipelined with it), unpacks a tree, writes, chmods and
# removes files, copies the tree and removes the copy, then syncs: nothing fails, the daemon logs no error, the
# tree reads back equal through a mount on the server itself, and fsck is
# clean. Once on a default mount, once on a writeback mount (which
# pipelines its unlinks and directory changes). How many connections the
# proxy broke is printed, not asserted.
. "$(dirname "$0")/lib.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 tar
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN

start_plain_redis_tcp s
URL=redis://127.0.0.1:${SRV_PORT[s]}
M=$T/m
start_reply_proxy s "$T/arm"
tar -C "$HERE/../.." -cf "$T/src.tar" core
mkdir "$T/src"
tar -C "$T/src" -xf "$T/src.tar"

for mode in default writeback; do
  P=L$RANDOM$RANDOM
  opts=()
  [[ $mode == writeback ]] && opts=(-o writeback)
  fs_mount "$M" --redis "redis://127.0.0.1:$PROXY_PORT" --prefix "$P" "${opts[@]}"
  LOG=${MOUNT_LOGS[$M]}
  start_reply_armer "$T/arm"
  before=$(connections_taken s)
  tar -C "$M" -xf "$T/src.tar" || fail "tar x through lost replies failed ($mode mount)"
  mkdir "$M/x"
  for i in $(seq 200); do
    echo "$i" >"$M/x/$i" || fail "a write through lost replies failed ($mode mount)"
    chmod 600 "$M/x/$i" || fail "a chmod through lost replies failed ($mode mount)"
  done
  rm "$M/x/1"* || fail "rm through lost replies failed ($mode mount)"
  cp -r "$M/core" "$M/copy" || fail "cp -r through lost replies failed ($mode mount)"
  rm -r "$M/copy" || fail "rm -r through lost replies failed ($mode mount)"
  sync -f "$M" || fail "syncfs through lost replies failed ($mode mount)"
  stop_reply_armer "$T/arm"
  lost=$(($(connections_taken s) - before))
  fs_unmount "$M"
  ! grep -Ei 'error|reply was lost' "$LOG" || fail "the $mode mount logged an error: $(grep -Ei -m1 'error|reply was lost' "$LOG")"

  fs_mount "$M" --redis "$URL" --prefix "$P"
  diff -r "$T/src/core" "$M/core" >"$T/diff" || fail "the tree unpacked through lost replies differs: $(head -3 "$T/diff")"
  [[ $(find "$M/x" -type f -perm 600 | wc -l) == 89 ]] ||
    fail "the files written through lost replies: $(find "$M/x" -type f -perm 600 | wc -l) of mode 600, not 89"
  fs_unmount "$M"
  "$REDISFS_SNAP_BIN" --redis "$URL" fsck "$P" || fail "fsck after the $mode mount's lost replies"
  note "$mode mount: about $lost connections broken with their replies lost; nothing failed, the tree is whole"
done
stop_reply_proxy
