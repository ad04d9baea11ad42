#!/usr/bin/env bash
# redis_restart: the server goes away and comes back (same socket, its AOF
# reloaded) under a live mount. Operations work again: the first one or
# two may fail with EIO (a connection found dead), none after that, and
# the Lua scripts, forgotten by the new server, are loaded again (NOSCRIPT).
# A SCRIPT FLUSH alone must not cost a single failed operation.
REDIS_ARGS=(--appendonly yes --appendfsync always)
. "$(dirname "$0")/lib.sh"

mount_fs -o attr_timeout=0,entry_timeout=0
head -c 500000 /dev/urandom >"$T/data"
cp "$T/data" "$MNT/before"
mkdir "$MNT/dir"
sync

# every one of these must work the first time
all_ops() {  # tag
  local t=$1
  cmp "$T/data" "$MNT/before"
  cp "$T/data" "$MNT/new-$t"
  cmp "$T/data" "$MNT/new-$t"
  printf 'more' >>"$MNT/new-$t"
  mkdir "$MNT/dir/d-$t"
  mv "$MNT/new-$t" "$MNT/dir/d-$t/moved"
  ln "$MNT/dir/d-$t/moved" "$MNT/dir/link-$t"
  ln -s target "$MNT/dir/sym-$t"
  setfattr -n user.t -v "$t" "$MNT/dir/link-$t"
  truncate -s 1000 "$MNT/dir/link-$t"
  chmod 600 "$MNT/dir/link-$t"
  touch -d @1000000000 "$MNT/dir/link-$t"
  rm "$MNT/dir/link-$t"
  ls -l "$MNT/dir" >/dev/null
  [[ $(stat -c %s "$MNT/dir/d-$t/moved") == 1000 ]]
}

rcli script flush >/dev/null
all_ops flushed
note "SCRIPT FLUSH: every operation worked"

stop_redis
start_redis
[[ $(rcli exists "$PREFIX:SB") == 1 ]] || fail "the server lost the filesystem across its restart (AOF)"

# warm-up: a few operations may fail with EIO, then they must work
eio=0 ok=0
for ((i = 0; i < 10 && ok < 3; i++)); do
  if out=$(stat -c %s "$MNT/before" 2>&1); then
    ok=$((ok + 1))
  else
    [[ $out == *"Input/output error"* ]] || fail "after the restart, stat failed with something else than EIO: $out"
    eio=$((eio + 1))
    ok=0
  fi
done
((ok == 3)) || fail "operations still fail after the restart ($eio EIO)"
note "$eio operation(s) failed with EIO right after the restart"
all_ops restarted
note "after the restart: every operation worked"

# and a second restart, this time while idle for a moment
stop_redis
start_redis
for ((i = 0; i < 10; i++)); do
  ls "$MNT" >/dev/null 2>&1 && break
done
all_ops again
unmount_fs
check_consistency --no-orphans
