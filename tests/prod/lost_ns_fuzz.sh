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

connections() {
  rcli s info stats | tr -d '\r' | sed -n 's/^total_connections_received://p'
}

for mode in default writeback; do
  P=L$RANDOM$RANDOM
  opts=()
  [[ $mode == writeback ]] && opts=(-o writeback)
  rm -rf "$T/native" && mkdir -m 0755 "$T/native"
  fs_mount "$M" --redis "redis://127.0.0.1:$PROXY_PORT" --prefix "$P" -o allow_other "${opts[@]}"
  LOG=${MOUNT_LOGS[$M]}
  rm -f "$T/stop"
  (
    n=0
    while [[ -d $T && ! -e $T/stop ]]; do
      # (a reply lost, or one time in four the call itself)
      if ((++n % 4)); then
        echo -n 'EVALSHA [0-9a-f]' >"$T/arm" 2>/dev/null
      else
        echo -n '-EVALSHA [0-9a-f]' >"$T/arm" 2>/dev/null
      fi
      sleep "0.0$((RANDOM % 9 + 1))"
    done
  ) &
  ARMER=$!
  record_pid $ARMER
  before=$(connections)
  python3 "$FUZZ" --others --seed "$seed" --ops "$ops" --native "$T/native" --mount "$M" ||
    fail "through lost replies the $mode mount answered otherwise than a native directory (seed $seed)"
  touch "$T/stop"
  wait "$ARMER"
  lost=$(($(connections) - before))
  rm -f "$T/arm"
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
