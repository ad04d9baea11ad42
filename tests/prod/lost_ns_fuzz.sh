#!/usr/bin/env bash
# lost_ns_fuzz: the namespace fuzz (tests/mount/ns_fuzz.py: random
# creates, renames with their flags, links, xattrs with XATTR_CREATE and
# XATTR_REPLACE, set-id modes, other users, files held open) through
# lost replies. A mount through tests/lost_reply_proxy.py, armed every 10
# to 90 ms to lose the next script call's reply (the call ran) or, one
# time in four, the call itself (it never reached the server), must answer
# every operation as a native directory answers it: a change whose reply
# was lost is neither made twice nor answered otherwise when retried (an
# O_EXCL create, a RENAME_NOREPLACE, an rmdir, a link answer as if nothing
# was lost). The daemon logs no error; a mount on the server itself then
# shows the native tree, and fsck finds it clean. Once on a default mount,
# once on a writeback mount. How many connections the proxy broke is
# printed, not asserted.
#   NS_FUZZ_SEED=N NS_FUZZ_OPS=N: other seeds, more operations.
. "$(dirname "$0")/lib.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN

seed=${NS_FUZZ_SEED:-1}
ops=${NS_FUZZ_OPS:-1500}
FUZZ=$HERE/../mount/ns_fuzz.py
start_plain_redis_tcp s
URL=redis://127.0.0.1:${SRV_PORT[s]}
M=$T/m
start_reply_proxy s "$T/arm"

for mode in default writeback; do
  P=L$RANDOM$RANDOM
  opts=()
  [[ $mode == writeback ]] && opts=(-o writeback)
  rm -rf "$T/native" && mkdir -m 0755 "$T/native"
  fs_mount "$M" --redis "redis://127.0.0.1:$PROXY_PORT" --prefix "$P" -o allow_other "${opts[@]}"
  LOG=${MOUNT_LOGS[$M]}
  start_reply_armer "$T/arm" 4  # (a reply lost, or one time in four the call itself)
  before=$(connections_taken s)
  python3 "$FUZZ" --others --seed "$seed" --ops "$ops" --native "$T/native" --mount "$M" ||
    fail "through lost replies the $mode mount answered otherwise than a native directory (seed $seed)"
  stop_reply_armer "$T/arm"
  lost=$(($(connections_taken s) - before))
  fs_unmount "$M"
  ! grep -Ei 'error|reply was lost' "$LOG" || fail "the $mode mount logged an error: $(grep -Ei -m1 'error|reply was lost' "$LOG")"

  fs_mount "$M" --redis "$URL" --prefix "$P" -o allow_other
  python3 "$FUZZ" --ops 0 --native "$T/native" --mount "$M" ||
    fail "the server holds another tree than the $mode mount showed through lost replies (seed $seed)"
  fs_unmount "$M"
  "$REDISFS_SNAP_BIN" --redis "$URL" fsck "$P" >"$T/fsck" 2>&1 ||
    fail "fsck after the $mode mount's lost replies: $(cat "$T/fsck")"
  note "$mode mount: $ops operations as a native directory answers them, about $lost connections broken"
  seed=$((seed + 1))
done
stop_reply_proxy
