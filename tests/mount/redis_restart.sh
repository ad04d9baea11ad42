#!/usr/bin/env bash
# redis_restart: the server goes away and comes back (same socket, its AOF
# reloaded) under a live mount. Operations work again: the first one or
# two may fail with EIO (a connection found dead), none after that, and
# the Lua scripts, forgotten by the new server, are loaded again (NOSCRIPT).
# A SCRIPT FLUSH alone must not cost a single failed operation. A listing
# that goes on across a restart lists every name (some twice).
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

# A listing that goes on across a restart: the new server hashes with
# another seed, so the HSCAN cursor the listing had means nothing to it.
# The listing begins again (DirReader): every name comes back, some twice,
# and the daemon says so in its log. A seekdir to a telldir value of
# before the restart resumes at the start of the new listing.
mkdir "$MNT/big"
python3 -c '
import os, sys
for i in range(3000):
    open(os.path.join(sys.argv[1], "f%05d" % i), "w").close()' "$MNT/big"
[[ $(rcli hlen "$PREFIX:DIR:$(stat -c %i "$MNT/big")") == 3000 ]] || fail "big: not 3000 entries"
# across_restart N: one listing, paused after N entries while the server
# restarts, then read to its end, then again from a telldir value of
# before the restart; every name must come back in both.
across_restart() {
  local n=$1 reader rc=0 part missing
  rm -f "$T/ready" "$T/go"
  python3 "$HERE/dirlist.py" across "$MNT/big" "$n" "$T/ready" "$T/go" >"$T/listed" 2>"$T/listed.err" &
  reader=$!
  for ((i = 0; i < 600; i++)); do
    [[ ! -e $T/ready ]] || break
    kill -0 "$reader" 2>/dev/null || fail "the listing ended early: $(cat "$T/listed.err")"
    sleep 0.05
  done
  [[ -e $T/ready ]] || fail "the listing did not reach $n entries"
  stop_redis
  start_redis
  for ((i = 0; i < 10; i++)); do
    stat "$MNT/before" >/dev/null 2>&1 && break
  done
  touch "$T/go"
  wait "$reader" || rc=$?
  ((rc == 0)) || fail "the listing across the restart failed: $(cat "$T/listed.err")"
  sed '/^--$/,$d' "$T/listed" >"$T/straight"
  sed '1,/^--$/d' "$T/listed" >"$T/again"
  for part in straight again; do
    missing=$(comm -23 <(seq -f 'f%05g' 0 2999) <(sort -u "$T/$part") | wc -l)
    ((missing == 0)) || fail "the listing across the restart after $n entries ($part) missed $missing of 3000 names"
  done
  note "a listing across the restart after $n entries: $(wc -l <"$T/straight") names listed, all 3000 among them;" \
    "from a telldir value of before it, $(wc -l <"$T/again"), all 3000 among them"
}
# (after 100 entries the daemon holds the first page of 256: the restart
# shows when it reads the second, and the offsets of the old first page
# and of the new one both name cursor 0; after 400, a later page)
across_restart 100
across_restart 400
grep -q "readdir of directory .*the server changed" "${MOUNT_LOGS[$MNT]}" ||
  fail "the daemon did not log that the listing began again"

unmount_fs
check_consistency --no-orphans
